/* err.c: the error table's accessors. Every switch is generated from BM_ERR_MAP, so a code
 * added to the table can never miss a case (STYLE.md G3). */
#include "core/bm_core.h"

#include <stdio.h>

const char *bm_err_wire(bm_err e)
{
    switch (e) {
    case BM_OK:
        return "OK";
#define BM_X_(name, wire, http, retry, msg)                                                        \
    case name:                                                                                     \
        return wire;
        BM_ERR_MAP(BM_X_)
#undef BM_X_
    case BM_E__COUNT:
        break;
    }
    return "BMAS-015";
}

int bm_err_http(bm_err e)
{
    switch (e) {
    case BM_OK:
        return 200;
#define BM_X_(name, wire, http, retry, msg)                                                        \
    case name:                                                                                     \
        return http;
        BM_ERR_MAP(BM_X_)
#undef BM_X_
    case BM_E__COUNT:
        break;
    }
    return 500;
}

bool bm_err_retry(bm_err e)
{
    switch (e) {
    case BM_OK:
        return false;
#define BM_X_(name, wire, http, retry, msg)                                                        \
    case name:                                                                                     \
        return retry;
        BM_ERR_MAP(BM_X_)
#undef BM_X_
    case BM_E__COUNT:
        break;
    }
    return false;
}

const char *bm_err_str(bm_err e)
{
    switch (e) {
    case BM_OK:
        return "ok";
#define BM_X_(name, wire, http, retry, msg)                                                        \
    case name:                                                                                     \
        return msg;
        BM_ERR_MAP(BM_X_)
#undef BM_X_
    case BM_E__COUNT:
        break;
    }
    return "unknown error";
}

int bm_err_wire_index(bm_err e)
{
    /* Wire codes are "BMAS-" followed by three digits; the index is the number minus one. */
    const char *w = bm_err_wire(e);
    if (w[0] != 'B' || w[4] != '-')
        return -1;
    int n = (w[5] - '0') * 100 + (w[6] - '0') * 10 + (w[7] - '0');
    return (n >= 1 && n <= BM_ERR_WIRE_N) ? n - 1 : -1;
}

const char *bm_err_wire_at(int idx)
{
    static const char *const wires[BM_ERR_WIRE_N] = {
        "BMAS-001", "BMAS-002", "BMAS-003", "BMAS-004", "BMAS-005", "BMAS-006", "BMAS-007",
        "BMAS-008", "BMAS-009", "BMAS-010", "BMAS-011", "BMAS-012", "BMAS-013", "BMAS-014",
        "BMAS-015", "BMAS-016", "BMAS-017", "BMAS-018", "BMAS-019", "BMAS-020", "BMAS-021",
    };
    return (idx >= 0 && idx < BM_ERR_WIRE_N) ? wires[idx] : "BMAS-015";
}

bm_err bm_errmsg_set(struct bm_errmsg *em, bm_err rc, const char *fmt, ...)
{
    if (em != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(em->text, sizeof em->text, fmt, ap);
        va_end(ap);
    }
    return rc;
}
