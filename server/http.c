/* http.c: libmicrohttpd glue: routing, bearer auth, body limits, request ids, responses.
 * MHD runs one thread per connection (MHD_USE_THREAD_PER_CONNECTION): a POST /events waits
 * for its objects without holding up anyone else, so GET /status never queues behind ingest.
 * The connection limit bounds the threads. */
#include "server/srv_int.h"

#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* MHD's own idle timeout: only a backstop, since conns.c enforces absolute deadlines. */
#define CONNECTION_TIMEOUT_S 300
/* Bodies of unknown length (chunked) are accounted against BMAS_MAX_INFLIGHT_BYTES in steps of
 * this much, so that the budget is not taken one small chunk at a time. */
#define RESERVE_STEP (256 * 1024)

enum route { R_NONE, R_EVENTS, R_FLUSH, R_STATUS, R_AGGREGATES, R_HEALTHZ, R_DASHBOARD, R_METRICS };

/* Per-request state, freed by the completion callback (docs/style.md G4). */
struct req {
    enum route route;
    bool counted;
    bool rejected; /* a response was queued before the body: ignore the rest */
    /* A refusal found while the body was arriving: MHD 0.9.75 cannot queue a response then, so
     * the rest of the body is read and dropped (up to a bound) and the refusal sent after it. */
    bm_err late;
    uint64_t dropped;
    uint64_t reserved; /* bytes of BMAS_MAX_INFLIGHT_BYTES this request holds */
    int64_t t0_ms;     /* headers received (monotonic), for bmas_http_request_duration */
    struct bm_buf body;
    char id[24];
    /* ENABLE_TRACE: the request's trace headers, into its log lines and back in the response
     * ("" when absent, not taken, or not a plain header value). */
    char traceparent[BM_TRACE_MAX + 1];
    char amzn_trace_id[BM_TRACE_MAX + 1];
};

static void take_trace(struct MHD_Connection *c, const char *name, char *out, size_t cap)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
    if (v != NULL && bm_log_trace_ok(v))
        snprintf(out, cap, "%s", v);
}

/* The calling thread's log context for q: its id and trace headers (docs/logging.md). */
static struct bm_log_ctx log_ctx(const struct req *q)
{
    return (struct bm_log_ctx){
        .request_id = q->id,
        .traceparent = q->traceparent[0] ? q->traceparent : NULL,
        .amzn_trace_id = q->amzn_trace_id[0] ? q->amzn_trace_id : NULL,
    };
}

void bm__reply_error(struct bm__reply *r, bm_err code, const char *message, const char *details)
{
    bm_buf_reset(&r->body);
    r->status = bm_err_http(code);
    bm_buf_appendf(&r->body, "{\"errorCode\":\"%s\",\"message\":", bm_err_wire(code));
    const char *m = message && *message ? message : bm_err_str(code);
    bm_buf_append_json_str(&r->body, m, strlen(m));
    bm_buf_appendf(&r->body, ",\"details\":%s}", details ? details : "{}");
}

static enum route route_of(const char *url, const char **allow)
{
    static const struct {
        const char *path;
        enum route r;
        const char *allow;
    } routes[] = {
        {"/events", R_EVENTS, "POST"},        {"/flush", R_FLUSH, "POST"},
        {"/status", R_STATUS, "GET, HEAD"},   {"/aggregates", R_AGGREGATES, "GET, HEAD"},
        {"/healthz", R_HEALTHZ, "GET, HEAD"}, {"/dashboard", R_DASHBOARD, "GET, HEAD"},
        {"/metrics", R_METRICS, "GET, HEAD"},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (strcmp(url, routes[i].path) == 0) {
            *allow = routes[i].allow;
            return routes[i].r;
        }
    }
    return R_NONE;
}

/* Compares in time independent of where the strings differ (and of the secret's length). */
static bool token_ok(const char *got, const char *want)
{
    size_t gl = strlen(got), wl = strlen(want);
    unsigned char diff = (unsigned char)(gl != wl);
    for (size_t i = 0; i < wl; i++)
        diff |= (unsigned char)(want[i] ^ (i < gl ? got[i] : 0));
    return diff == 0;
}

static enum bm_metrics_route metrics_route(enum route r)
{
    switch (r) {
    case R_EVENTS:
        return BM_MR_EVENTS;
    case R_FLUSH:
        return BM_MR_FLUSH;
    case R_STATUS:
        return BM_MR_STATUS;
    case R_AGGREGATES:
        return BM_MR_AGGREGATES;
    case R_HEALTHZ:
        return BM_MR_HEALTHZ;
    case R_METRICS:
        return BM_MR_METRICS;
    case R_DASHBOARD:
        return BM_MR_DASHBOARD;
    case R_NONE:
        break;
    }
    return BM_MR_OTHER;
}

/* Every answer goes through here, refusals included, so the request counters see them all. */
static enum MHD_Result send_reply(struct bm_srv *s, struct MHD_Connection *c, const struct req *q,
                                  struct bm__reply *r)
{
    bm_metrics_http(s->metrics, metrics_route(q->route), r->status, bm_time_mono_ms() - q->t0_ms);
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        r->body.len, r->body.data ? r->body.data : (void *)"", MHD_RESPMEM_MUST_COPY);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            r->content_type ? r->content_type : "application/json");
    MHD_add_response_header(resp, "X-Request-Id", q->id);
    if (q->traceparent[0] != '\0')
        MHD_add_response_header(resp, "traceparent", q->traceparent);
    if (q->amzn_trace_id[0] != '\0')
        MHD_add_response_header(resp, "X-Amzn-Trace-Id", q->amzn_trace_id);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
                            r->cache_control ? r->cache_control : "no-store");
    for (size_t i = 0; i < r->n_headers; i++)
        MHD_add_response_header(resp, r->headers[i][0], r->headers[i][1]);
    if (r->allow != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    if (r->status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    char after[16];
    snprintf(after, sizeof after, "%d", r->retry_after_s > 0 ? r->retry_after_s : 1);
    if (r->retry_after_s > 0 || r->status == 503)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, after);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result reply_now(struct bm_srv *s, struct MHD_Connection *c, struct req *q,
                                 bm_err code, const char *msg, const char *allow)
{
    struct bm__reply r = {.allow = allow};
    bm_buf_init(&r.body, 64 * 1024);
    bm__reply_error(&r, code, msg, NULL);
    enum MHD_Result ret = send_reply(s, c, q, &r);
    bm_buf_cleanup(&r.body);
    q->rejected = true;
    return ret;
}

struct args {
    const char *names[32];
    const char *values[32];
    size_t n;
    bool overflow;
    const char *repeated; /* a name given twice: which value was meant is unknowable */
};

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    struct args *a = cls;
    for (size_t i = 0; i < a->n; i++) {
        if (strcmp(a->names[i], key) == 0) {
            a->repeated = a->names[i];
            return MHD_NO;
        }
    }
    if (a->n == 32) {
        a->overflow = true;
        return MHD_NO;
    }
    a->names[a->n] = key;
    a->values[a->n] = value ? value : "";
    a->n++;
    return MHD_YES;
}

static void dispatch(struct bm_srv *s, struct MHD_Connection *c, struct req *q, struct bm__reply *r)
{
    switch (q->route) {
    case R_EVENTS:
        bm__route_events(s, q->body.data ? q->body.data : "", q->body.len, q->id, r);
        return;
    case R_FLUSH:
        bm__route_flush(s, r);
        return;
    case R_STATUS:
        bm__route_status(s, r);
        return;
    case R_AGGREGATES: {
        struct args a = {.n = 0};
        MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_arg, &a);
        if (a.repeated != NULL) {
            char msg[160];
            snprintf(msg, sizeof msg, "query parameter \"%.64s\" given more than once", a.repeated);
            bm__reply_error(r, BM_E_BAD_REQUEST, msg, NULL);
        } else if (a.overflow) {
            bm__reply_error(r, BM_E_BAD_REQUEST, "too many query parameters", NULL);
        } else
            bm__route_aggregates(s, a.names, a.values, a.n, r);
        return;
    }
    case R_HEALTHZ:
        bm__route_healthz(s, r);
        return;
    case R_DASHBOARD:
        bm__route_webdash(
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH), r);
        return;
    case R_METRICS:
        bm__route_metrics(s, r);
        return;
    case R_NONE:
        break;
    }
    bm__reply_error(r, BM_E_NO_ROUTE, "no such route", NULL);
}

/* Takes n more bytes of the in-flight body budget for q; false (nothing taken) past it. */
static bool reserve(struct bm_srv *s, struct req *q, uint64_t n)
{
    uint64_t max = s->cfg->max_inflight_bytes;
    uint64_t cur = atomic_load(&s->inflight_bytes);
    do {
        if (cur + n > max || cur + n < cur)
            return false;
    } while (!atomic_compare_exchange_weak(&s->inflight_bytes, &cur, cur + n));
    q->reserved += n;
    return true;
}

static void release_body(struct bm_srv *s, struct req *q)
{
    bm_buf_cleanup(&q->body);
    atomic_fetch_sub(&s->inflight_bytes, q->reserved);
    q->reserved = 0;
}

static void over_limit_msg(const struct bm_srv *s, bm_err code, char *msg, size_t cap)
{
    if (code == BM_E_BUSY)
        snprintf(msg, cap, "request bodies in flight over BMAS_MAX_INFLIGHT_BYTES (%llu); retry",
                 (unsigned long long)s->cfg->max_inflight_bytes);
    else
        snprintf(msg, cap, "body over BMAS_MAX_BODY_BYTES (%llu)",
                 (unsigned long long)s->cfg->max_body_bytes);
}

/* First call: headers only. Everything that does not need the body is decided here, so an
 * unauthenticated or oversized request is refused before a byte of its body is read. */
static enum MHD_Result on_headers(struct bm_srv *s, struct MHD_Connection *c, const char *url,
                                  const char *method, struct req *q)
{
    bm__conns_headers(s->conns, c);
    const char *allow = NULL;
    q->route = route_of(url, &allow);
    if (q->route == R_NONE)
        return reply_now(s, c, q, BM_E_NO_ROUTE, "no such route", NULL);
    bool is_get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    bool is_post = strcmp(method, "POST") == 0;
    if ((strcmp(allow, "POST") == 0 && !is_post) || (strcmp(allow, "POST") != 0 && !is_get))
        return reply_now(s, c, q, BM_E_METHOD, "method not allowed", allow);
    /* The dashboard page holds no data; it sends its token to the routes it reads. */
    if (q->route != R_HEALTHZ && q->route != R_DASHBOARD && s->cfg->auth_token[0] != '\0') {
        const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        if (h == NULL || strncmp(h, "Bearer ", 7) != 0 || !token_ok(h + 7, s->cfg->auth_token))
            return reply_now(s, c, q, BM_E_UNAUTHORIZED,
                             "missing or wrong Authorization: Bearer token", NULL);
    }
    if (atomic_load(&s->stopping))
        return reply_now(s, c, q, BM_E_STORAGE_BUSY, "shutting down; retry", NULL);
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    const char *te = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Transfer-Encoding");
    uint64_t len = 0;
    if (cl != NULL) {
        char *end = NULL;
        unsigned long long v = strtoull(cl, &end, 10);
        len = end != cl && *end == '\0' ? v : UINT64_MAX;
    }
    if (q->route != R_EVENTS && (len > 0 || te != NULL))
        return reply_now(s, c, q, BM_E_BAD_REQUEST, "this route takes no request body", NULL);
    char msg[160];
    if (len > s->cfg->max_body_bytes) {
        over_limit_msg(s, BM_E_TOO_LARGE, msg, sizeof msg);
        return reply_now(s, c, q, BM_E_TOO_LARGE, msg, NULL);
    }
    /* A declared length is taken from the budget whole, and the buffer sized once. */
    if (len > 0 && (!reserve(s, q, len) || bm_buf_reserve(&q->body, (size_t)len) != BM_OK)) {
        over_limit_msg(s, BM_E_BUSY, msg, sizeof msg);
        return reply_now(s, c, q, BM_E_BUSY, msg, NULL);
    }
    return MHD_YES;
}

/* A piece of the body: buffered within both limits, or dropped after a late refusal. */
static enum MHD_Result on_upload(struct bm_srv *s, struct req *q, const char *upload,
                                 size_t *upload_size)
{
    size_t n = *upload_size;
    *upload_size = 0;
    if (q->rejected || q->late != BM_OK) {
        /* Draining lets the refusal be answered; a client that keeps sending past twice the
         * limit is cut off instead. */
        q->dropped += n;
        return q->dropped > 2 * s->cfg->max_body_bytes + (1u << 20) ? MHD_NO : MHD_YES;
    }
    uint64_t need = (uint64_t)q->body.len + n;
    bm_err rc = need > s->cfg->max_body_bytes ? BM_E_TOO_LARGE : BM_OK;
    /* Bodies of unknown length take from the budget as they grow. */
    while (rc == BM_OK && need > q->reserved) {
        /* Steps of RESERVE_STEP, never past what one body may hold. */
        uint64_t room = s->cfg->max_body_bytes - q->reserved;
        uint64_t step = need - q->reserved;
        if (step < RESERVE_STEP)
            step = RESERVE_STEP < room ? RESERVE_STEP : room;
        if (!reserve(s, q, step))
            rc = BM_E_BUSY;
    }
    if (rc == BM_OK)
        rc = bm_buf_append(&q->body, upload, n);
    if (rc != BM_OK) {
        q->late = rc == BM_E_NOMEM ? BM_E_BUSY : rc;
        q->dropped = need;
        release_body(s, q);
    }
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    struct bm_srv *s = cls;
    struct req *q = *con_cls;
    if (q == NULL) {
        q = bm_calloc(1, sizeof *q);
        if (q == NULL)
            return MHD_NO;
        *con_cls = q;
        atomic_fetch_add(&s->inflight, 1);
        q->counted = true;
        q->t0_ms = bm_time_mono_ms();
        snprintf(q->id, sizeof q->id, "%016llx",
                 (unsigned long long)atomic_fetch_add(&s->next_id, 1) * 0x9E3779B97F4A7C15ULL);
        bm_buf_init(&q->body, (size_t)s->cfg->max_body_bytes);
        if (s->cfg->enable_trace) {
            take_trace(c, "traceparent", q->traceparent, sizeof q->traceparent);
            take_trace(c, "X-Amzn-Trace-Id", q->amzn_trace_id, sizeof q->amzn_trace_id);
        }
        return on_headers(s, c, url, method, q);
    }
    if (*upload_size > 0)
        return on_upload(s, q, upload, upload_size);
    if (q->rejected)
        return MHD_YES;
    bm__conns_handling(s->conns, c);
    if (q->late != BM_OK) {
        char msg[160];
        over_limit_msg(s, q->late, msg, sizeof msg);
        return reply_now(s, c, q, q->late, msg, NULL);
    }
    struct bm__reply r = {.status = 200};
    bm_buf_init(&r.body, (size_t)1 << 30);
    struct bm_log_ctx lc = log_ctx(q);
    bm_log_ctx_set(&lc);
    dispatch(s, c, q, &r);
    enum MHD_Result ret = send_reply(s, c, q, &r);
    if (r.status >= 500)
        BM_LOG(BM_WARN, "server", "request_failed", "request answered with an error",
               BM_KV_STR("req_id", q->id), BM_KV_STR("path", url), BM_KV_INT("status", r.status));
    bm_log_ctx_set(NULL);
    bm_buf_cleanup(&r.body);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    struct bm_srv *s = cls;
    struct req *q = *con_cls;
    bm__conns_idle(s->conns, c);
    if (q == NULL)
        return;
    if (q->counted)
        atomic_fetch_sub(&s->inflight, 1);
    release_body(s, q);
    bm_free(q);
    *con_cls = NULL;
}

bm_err bm__http_check_listen(const char *spec, struct bm_errmsg *em)
{
    struct sockaddr_storage ss;
    socklen_t len;
    return bm_listen_parse(spec, "BMAS_LISTEN", &ss, &len, em);
}

bm_err bm__http_start(struct bm_srv *s, struct MHD_Daemon **out, int *port, struct bm_errmsg *em)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    bm_err rc = bm_listen_parse(s->cfg->listen, "BMAS_LISTEN", &ss, &sl, em);
    if (rc != BM_OK)
        return rc;
    if ((rc = bm__conns_new(s->cfg, &s->conns)) != BM_OK)
        return bm_errmsg_set(em, rc, "cannot start the connection reaper");
    /* ITC: MHD_quiesce_daemon needs it in this threading mode. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* The per-client cap keeps room for everyone else (health checks included) when one
     * address opens connections by the hundred. */
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION,
        bm__conns_notify, s->conns, MHD_OPTION_URI_LOG_CALLBACK, bm__conns_uri, s->conns,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->cfg->max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)s->cfg->max_connections_per_client,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_TIMEOUT_S, MHD_OPTION_END);
    if (d == NULL) {
        bm__conns_free(s->conns);
        s->conns = NULL;
        return bm_errmsg_set(em, BM_E_CONFIG, "cannot listen on %s (in use, or not allowed)",
                             s->cfg->listen);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    *port = info ? (int)info->port : 0;
    *out = d;
    return BM_OK;
}

void bm__http_stop(struct bm_srv *s, struct MHD_Daemon *d, long drain_ms)
{
    if (d == NULL)
        return;
    /* Stop accepting, let requests in flight finish (up to drain_ms), then close. */
    MHD_quiesce_daemon(d);
    int64_t deadline = bm_time_mono_ms() + drain_ms;
    while (atomic_load(&s->inflight) > 0 && bm_time_mono_ms() < deadline)
        bm_clock_real.sleep_ms(NULL, 20);
    MHD_stop_daemon(d);
    bm__conns_free(s->conns);
    s->conns = NULL;
}
