/* log.c: JSON-lines logging in the replaced Lambda's format (docs/logging.md). The level and the
 * sink fd are the only mutable globals in core/ (docs/style.md G1), besides each thread's request
 * context; each line is built in memory and written with one write() so lines from concurrent
 * threads never interleave. */
#include "core/bm_rt.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = BM_INFO;
static atomic_int log_fd = 2;
static _Thread_local struct bm_log_ctx tl_ctx;

void bm_log_ctx_set(const struct bm_log_ctx *ctx)
{
    tl_ctx = ctx ? *ctx : (struct bm_log_ctx){0};
}

struct bm_log_ctx bm_log_ctx_get(void)
{
    return tl_ctx;
}

bool bm_log_trace_ok(const char *v)
{
    size_t n = 0;
    for (; v[n] != '\0'; n++) {
        unsigned char c = (unsigned char)v[n];
        if (n >= BM_TRACE_MAX || c < 0x20 || c > 0x7E || c == '"' || c == '\\')
            return false;
    }
    return n > 0;
}

bool bm_log_enabled(enum bm_log_level lvl)
{
    return (int)lvl >= atomic_load_explicit(&log_level, memory_order_relaxed);
}

void bm_log_set_level(enum bm_log_level lvl)
{
    atomic_store(&log_level, (int)lvl);
}

void bm_log_set_fd(int fd)
{
    atomic_store(&log_fd, fd);
}

bool bm_log_level_parse(const char *s, enum bm_log_level *out)
{
    static const struct {
        const char *name;
        enum bm_log_level lvl;
    } names[] = {{"DEBUG", BM_DEBUG},  {"INFO", BM_INFO},   {"WARN", BM_WARN},
                 {"WARNING", BM_WARN}, {"ERROR", BM_ERROR}, {"CRITICAL", BM_CRITICAL},
                 {"OFF", BM_LOG_OFF}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcasecmp(s, names[i].name) == 0) {
            *out = names[i].lvl;
            return true;
        }
    }
    return false;
}

static const char *level_name(enum bm_log_level lvl)
{
    switch (lvl) {
    case BM_DEBUG:
        return "DEBUG";
    case BM_INFO:
        return "INFO";
    case BM_WARN:
        return "WARN";
    case BM_ERROR:
        return "ERROR";
    case BM_CRITICAL:
        return "CRITICAL";
    case BM_LOG_OFF:
        break;
    }
    return "OFF";
}

static void write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* best effort: a logger must never take the process down */
        p += n;
        len -= (size_t)n;
    }
}

/* Longest string value a log line carries: past it the value is cut (at a character boundary)
 * and says how much was left out, so a hostile 16 KiB bucket name still leaves a line, with its
 * code, that a log pipeline can parse. */
#define LOG_VALUE_MAX 2048

static bm_err append_value(struct bm_buf *b, const char *s)
{
    size_t len = strlen(s);
    if (len <= LOG_VALUE_MAX)
        return bm_buf_append_json_str(b, s, len);
    size_t cut = LOG_VALUE_MAX;
    while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
        cut--; /* not inside a UTF-8 sequence */
    char tail[48];
    int tn = snprintf(tail, sizeof tail, "...(%zu more bytes)", len - cut);
    char buf[LOG_VALUE_MAX + sizeof tail];
    memcpy(buf, s, cut);
    memcpy(buf + cut, tail, (size_t)tn);
    return bm_buf_append_json_str(b, buf, cut + (size_t)tn);
}

static bm_err append_kv(struct bm_buf *b, const struct bm_kv *kv)
{
    bm_err rc = BM_OK;
    if (kv->type == BM_KV_T_NONE || (kv->type == BM_KV_T_STR && kv->v.s == NULL))
        return BM_OK; /* a value that is not known is left out, not written as null */
    if (kv->type == BM_KV_T_ERR) {
        rc = bm_buf_appendf(b, ",\"errorCode\":\"%s\",\"error\":", bm_err_wire(kv->v.e));
        return rc == BM_OK
                   ? bm_buf_append_json_str(b, bm_err_str(kv->v.e), strlen(bm_err_str(kv->v.e)))
                   : rc;
    }
    if ((rc = bm_buf_append_char(b, ',')) != BM_OK ||
        (rc = bm_buf_append_json_str(b, kv->k, strlen(kv->k))) != BM_OK ||
        (rc = bm_buf_append_char(b, ':')) != BM_OK)
        return rc;
    switch (kv->type) {
    case BM_KV_T_STR:
        return append_value(b, kv->v.s);
    case BM_KV_T_INT:
        return bm_buf_appendf(b, "%lld", kv->v.i);
    case BM_KV_T_DBL:
        return bm_buf_appendf(b, "%.3f", kv->v.d);
    case BM_KV_T_RAW:
        return bm_buf_append_str(b, kv->v.s ? kv->v.s : "null");
    case BM_KV_T_ERR:
    case BM_KV_T_NONE:
        break;
    }
    return BM_OK;
}

/* The line's own request id: a value named req_id (the name most call sites use) or requestId. */
static bool is_request_id(const struct bm_kv *kv)
{
    return kv->type == BM_KV_T_STR && kv->v.s != NULL &&
           (strcmp(kv->k, "req_id") == 0 || strcmp(kv->k, "requestId") == 0);
}

/* The guide's severity table: access denied (BMAS-002) is CRITICAL. Only lines already at WARN
 * or above are raised, so a skipped record's DEBUG line stays at DEBUG. */
static enum bm_log_level effective_level(enum bm_log_level lvl, const struct bm_kv *kv, size_t n)
{
    if (lvl < BM_WARN || lvl >= BM_CRITICAL)
        return lvl;
    for (size_t i = 0; i < n; i++)
        if (kv[i].type == BM_KV_T_ERR && bm_err_wire_index(kv[i].v.e) == 1)
            return BM_CRITICAL;
    return lvl;
}

static bm_err append_field(struct bm_buf *b, const char *name, const char *v)
{
    bm_err rc = bm_buf_appendf(b, ",\"%s\":", name);
    return rc == BM_OK ? append_value(b, v) : rc;
}

void bm_log_write(enum bm_log_level lvl, const char *mod, const char *event, const char *msg,
                  const struct bm_kv *kv, size_t n)
{
    lvl = effective_level(lvl, kv, n);
    if (!bm_log_enabled(lvl))
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char when[21];
    bm_time_format((int64_t)ts.tv_sec, when);
    when[19] = '\0'; /* drop the Z: milliseconds go before it */

    const char *rid = tl_ctx.request_id;
    for (size_t i = 0; i < n; i++) {
        if (is_request_id(&kv[i])) {
            rid = kv[i].v.s;
            break;
        }
    }
    struct bm_buf b;
    bm_buf_init(&b, 64 * 1024);
    bm_err rc = bm_buf_appendf(&b, "{\"timestamp\":\"%s.%03ldZ\",\"level\":\"%s\"", when,
                               ts.tv_nsec / 1000000, level_name(lvl));
    if (rc == BM_OK && rid != NULL)
        rc = append_field(&b, "requestId", rid);
    if (rc == BM_OK)
        rc = bm_buf_appendf(&b, ",\"component\":\"%s\",\"event\":\"%s\",\"message\":", mod, event);
    if (rc == BM_OK)
        rc = append_value(&b, msg ? msg : "");
    if (rc == BM_OK && tl_ctx.traceparent != NULL)
        rc = append_field(&b, "traceparent", tl_ctx.traceparent);
    if (rc == BM_OK && tl_ctx.amzn_trace_id != NULL)
        rc = append_field(&b, "amznTraceId", tl_ctx.amzn_trace_id);
    for (size_t i = 0; rc == BM_OK && i < n; i++)
        if (!is_request_id(&kv[i]))
            rc = append_kv(&b, &kv[i]);
    if (rc == BM_OK)
        rc = bm_buf_append(&b, "}\n", 2);
    int fd = atomic_load(&log_fd);
    if (rc == BM_OK) {
        write_all(fd, b.data, b.len);
    } else {
        /* Out of memory or too many values: still say what happened, with its code. */
        const char *code = "";
        for (size_t i = 0; i < n; i++)
            if (kv[i].type == BM_KV_T_ERR)
                code = bm_err_wire(kv[i].v.e);
        char line[320];
        int len =
            snprintf(line, sizeof line,
                     "{\"timestamp\":\"%s.%03ldZ\",\"level\":\"%s\",\"component\":\"%s\","
                     "\"event\":\"%s\",\"errorCode\":\"%s\","
                     "\"message\":\"(log line dropped: %s)\"}\n",
                     when, ts.tv_nsec / 1000000, level_name(lvl), mod, event, code, bm_err_str(rc));
        if (len > 0)
            write_all(fd, line, (size_t)len < sizeof line ? (size_t)len : sizeof line - 1);
    }
    bm_buf_cleanup(&b);
}
