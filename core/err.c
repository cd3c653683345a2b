/* err.c: the error tables' accessors. Every switch and list is generated from BM_ERR_MAP and
 * BM_WIRE_MAP, so a code added to a table can never miss a case (docs/style.md G3). */
#include "core/bm_rt.h"

#include <stdio.h>

static const struct {
    const char *code, *title;
} wires[BM_W__COUNT] = {
#define BM_X_(name, code, title) [name] = {code, title},
    BM_WIRE_MAP(BM_X_)
#undef BM_X_
};

int bm_err_wire_index(bm_err e)
{
    switch (e) {
    case BM_OK:
        return -1;
#define BM_X_(name, wire, http, retry, msg)                                                        \
    case name:                                                                                     \
        return (int)wire;
        BM_ERR_MAP(BM_X_)
#undef BM_X_
    case BM_E__COUNT:
        break;
    }
    return (int)BM_W_015;
}

const char *bm_err_wire_at(int idx)
{
    return idx >= 0 && idx < BM_ERR_WIRE_N ? wires[idx].code : NULL;
}

const char *bm_err_wire_title(int idx)
{
    return idx >= 0 && idx < BM_ERR_WIRE_N ? wires[idx].title : NULL;
}

const char *bm_err_wire(bm_err e)
{
    return e == BM_OK ? "OK" : wires[bm_err_wire_index(e)].code;
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
