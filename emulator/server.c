/* server.c: libmicrohttpd front of the emulator. Collects each request (raw URI, headers,
 * capped body), routes it to S3, SQS, CloudWatch or STS, verifies SigV4 (with the session
 * tokens of STS-issued credentials), applies fault rules,
 * counts it, and answers the control routes (/_localstack/health, /_emulator/...). */
#include "emulator/emu_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <zlib.h>

/* Compressed PutMetricData bodies may inflate to this much (zip-bomb guard); the 1 MB AWS
 * limit applies to the request as sent. */
#define EMU_INFLATE_MAX (16u * 1024 * 1024)
#define EMU_CW_MAX_REQUEST (1024u * 1024)

static bool has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *con)
{
    (void)con;
    struct emu_req *rq = bm_calloc(1, sizeof *rq);
    if (rq == NULL)
        return NULL;
    rq->emu = cls;
    rq->uri = bm_strdup(uri);
    if (rq->uri == NULL) {
        bm_free(rq);
        return NULL;
    }
    return rq;
}

static void req_free(struct emu_req *rq)
{
    if (rq == NULL)
        return;
    bm_free(rq->uri);
    bm_buf_cleanup(&rq->body);
    cJSON_Delete(rq->in);
    bm_free(rq);
}

static void on_completed(void *cls, struct MHD_Connection *con, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)con;
    (void)toe;
    req_free(*con_cls);
    *con_cls = NULL;
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    (void)kind;
    struct emu_req *rq = cls;
    if (rq->n_hdr == EMU_MAX_HEADERS) {
        rq->too_many_headers = true;
        return MHD_NO;
    }
    struct bm_sigv4_header *h = &rq->hdr[rq->n_hdr++];
    h->name = key;
    h->name_len = strlen(key);
    h->value = value ? value : "";
    h->value_len = strlen(h->value);
    return MHD_YES;
}

/* Decides service and protocol from what is known before the body: X-Amz-Target, then the
 * credential scope's service (the most reliable tell for Query POSTs to "/"), else S3. */
static void route(struct emu_req *rq)
{
    const char *target = bm__emu_header(rq, "X-Amz-Target");
    char scope[32];
    rq->svc = EMU_SVC_S3;
    rq->proto = EMU_PROTO_REST;
    if (target != NULL && has_prefix(target, "AmazonSQS.")) {
        rq->svc = EMU_SVC_SQS;
        rq->proto = EMU_PROTO_JSON;
        return;
    }
    if (target != NULL && has_prefix(target, "GraniteServiceVersion20100801.")) {
        rq->svc = EMU_SVC_CW;
        rq->proto = EMU_PROTO_JSON;
        return;
    }
    bm__emu_scope_service(rq, scope);
    if (strcmp(scope, "sqs") == 0) {
        rq->svc = EMU_SVC_SQS;
        rq->proto = EMU_PROTO_QUERY;
    } else if (strcmp(scope, "monitoring") == 0) {
        rq->svc = EMU_SVC_CW;
        rq->proto = EMU_PROTO_QUERY;
    } else if (strcmp(scope, "sts") == 0) {
        rq->svc = EMU_SVC_STS;
        rq->proto = EMU_PROTO_QUERY;
    }
}

/* The Query Action of a request (form body of a POST, else the query string) into out. */
static bool query_action(const struct emu_req *rq, char *out, size_t cap)
{
    const char *ct = bm__emu_header(rq, "Content-Type");
    bool form = strcmp(rq->method, "POST") == 0 && ct != NULL &&
                has_prefix(ct, "application/x-www-form-urlencoded");
    const char *src = form ? rq->body.data : rq->query;
    size_t len = form ? rq->body.len : rq->query_len;
    struct bm_url_pair p;
    size_t pos = 0;
    while (src != NULL && bm_url_query_next(src, len, &pos, &p)) {
        if (p.name_len == 6 && memcmp(p.name, "Action", 6) == 0 && p.value_len < cap) {
            memcpy(out, p.value, p.value_len);
            out[p.value_len] = '\0';
            return true;
        }
    }
    return false;
}

/* Without a credential scope (an unsigned Query request), a form body naming a known Action
 * still tells the service, so the client gets that service's auth error. STS's
 * AssumeRoleWithWebIdentity is unsigned by design and may also come as a GET of "/?Action=..";
 * only STS actions are taken from a GET's query, so an S3 request is never mistaken. */
static void route_by_action(struct emu_req *rq)
{
    const char *ct = bm__emu_header(rq, "Content-Type");
    char action[64];
    if (rq->svc != EMU_SVC_S3)
        return;
    bool form = strcmp(rq->method, "POST") == 0 && ct != NULL &&
                has_prefix(ct, "application/x-www-form-urlencoded") && rq->body.data != NULL;
    bool get = strcmp(rq->method, "GET") == 0 && strcmp(rq->path, "/") == 0;
    if ((!form && !get) || !query_action(rq, action, sizeof action))
        return;
    if (bm__emu_sts_op(action) != NULL)
        rq->svc = EMU_SVC_STS;
    else if (form && bm__emu_sqs_op(action) != NULL)
        rq->svc = EMU_SVC_SQS;
    else if (form && bm__emu_cw_op(action) != NULL)
        rq->svc = EMU_SVC_CW;
    rq->proto = rq->svc == EMU_SVC_S3 ? EMU_PROTO_REST : EMU_PROTO_QUERY;
}

/* Inflates a gzip body in place, bounded by EMU_INFLATE_MAX. */
static bm_err gunzip_body(struct bm_buf *body)
{
    struct bm_buf out;
    z_stream z;
    bm_err rc = BM_OK;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
        return BM_E_NOMEM;
    bm_buf_init(&out, EMU_INFLATE_MAX);
    z.next_in = (unsigned char *)body->data;
    z.avail_in = (unsigned)body->len;
    int zr = Z_OK;
    while (zr != Z_STREAM_END && rc == BM_OK) {
        if ((rc = bm_buf_reserve(&out, 64 * 1024)) != BM_OK)
            break;
        z.next_out = (unsigned char *)out.data + out.len;
        z.avail_out = (unsigned)(out.cap - out.len - 1);
        size_t before = z.avail_out;
        zr = inflate(&z, Z_NO_FLUSH);
        out.len += before - z.avail_out;
        out.data[out.len] = '\0';
        if (zr != Z_OK && zr != Z_STREAM_END)
            rc = BM_E_GZIP;
        else if (zr == Z_OK && z.avail_in == 0 && before == z.avail_out)
            rc = BM_E_GZIP; /* truncated stream */
    }
    inflateEnd(&z);
    if (rc == BM_OK) {
        bm_buf_cleanup(body);
        *body = out;
    } else {
        bm_buf_cleanup(&out);
    }
    return rc;
}

/* Fills rq->op and rq->in for SQS and CloudWatch from the JSON body or the Query form. */
static bm_err parse_input(struct emu_req *rq)
{
    const char *(*lookup)(const char *) = rq->svc == EMU_SVC_SQS   ? bm__emu_sqs_op
                                          : rq->svc == EMU_SVC_STS ? bm__emu_sts_op
                                                                   : bm__emu_cw_op;
    /* "Each PutMetricData request is limited to 1 MB in size for HTTP POST requests": the
     * request as sent, compressed or not (API_PutMetricData). */
    if (rq->svc == EMU_SVC_CW && rq->body.len > EMU_CW_MAX_REQUEST)
        return bm__emu_fail(rq, "RequestEntityTooLarge", "Request size %zu exceeded %u bytes",
                            rq->body.len, EMU_CW_MAX_REQUEST);
    const char *enc = bm__emu_header(rq, "Content-Encoding");
    if (enc != NULL && strcasecmp(enc, "gzip") == 0 && rq->body.len > 0) {
        bm_err rc = gunzip_body(&rq->body);
        if (rc == BM_E_TOO_LARGE)
            return bm__emu_fail(rq, "RequestEntityTooLarge", "Request body inflates past %u bytes",
                                EMU_INFLATE_MAX);
        if (rc != BM_OK)
            return bm__emu_fail(rq,
                                rq->proto == EMU_PROTO_JSON ? "SerializationException"
                                                            : "InvalidParameterValue",
                                "The gzip Content-Encoding body could not be decoded");
    }
    if (rq->proto == EMU_PROTO_JSON) {
        const char *target = bm__emu_header(rq, "X-Amz-Target");
        const char *dot = strchr(target, '.');
        rq->op = lookup(dot + 1);
        if (rq->op == NULL)
            return bm__emu_fail(rq, "InvalidAction", "Unknown operation %s", dot + 1);
        rq->in = rq->body.len == 0 ? cJSON_CreateObject()
                                   : cJSON_ParseWithLength(rq->body.data, rq->body.len);
        if (!cJSON_IsObject(rq->in))
            return bm__emu_fail(rq, "SerializationException",
                                "The request body is not a JSON object");
        return BM_OK;
    }
    const char *ct = bm__emu_header(rq, "Content-Type");
    bool form = strcmp(rq->method, "POST") == 0 && ct != NULL &&
                has_prefix(ct, "application/x-www-form-urlencoded");
    const char *src = form ? rq->body.data : rq->query;
    size_t len = form ? rq->body.len : rq->query_len;
    char action[64] = "";
    if (!query_action(rq, action, sizeof action) || action[0] == '\0')
        return bm__emu_fail(rq, "MissingAction", "Missing Action");
    rq->op = lookup(action);
    if (rq->op == NULL)
        return bm__emu_fail(rq, "InvalidAction", "The action %s is not valid for this web service.",
                            action);
    bm_err rc = bm__emu_query_to_json(src ? src : "", len, &rq->in);
    if (rc == BM_E_NOMEM)
        return rc;
    if (rc != BM_OK)
        return bm__emu_fail(rq, "MalformedQueryString", "The query string is malformed");
    return BM_OK;
}

/* Maps a verifier result to the service's error. */
static bm_err auth_error(struct emu_req *rq, enum emu_auth a, const struct emu_verify_out *vo)
{
    bool s3 = rq->svc == EMU_SVC_S3;
    switch (a) {
    case EMU_AUTH_OK:
        return BM_OK;
    case EMU_AUTH_MISSING:
        return s3 ? bm__emu_fail(rq, "AccessDenied", "Access Denied")
                  : bm__emu_fail(rq, "MissingAuthenticationToken",
                                 "Request is missing Authentication Token");
    case EMU_AUTH_MALFORMED:
        return s3 ? bm__emu_fail(rq, "AuthorizationHeaderMalformed",
                                 "The authorization header is malformed; %s", vo->detail)
                  : bm__emu_fail(rq, "IncompleteSignature", "%s", vo->detail);
    case EMU_AUTH_UNKNOWN_KEY:
        return s3 ? bm__emu_fail(rq, "InvalidAccessKeyId",
                                 "The AWS Access Key Id you provided does not exist in our "
                                 "records.")
                  : bm__emu_fail(rq, "InvalidClientTokenId",
                                 "The security token included in the request is invalid.");
    case EMU_AUTH_MISMATCH:
        return bm__emu_fail(rq, "SignatureDoesNotMatch",
                            "The request signature we calculated does not match the signature "
                            "you provided. Check your %s and signing method.",
                            s3 ? "key" : "AWS Secret Access Key");
    case EMU_AUTH_SKEW:
        return s3 ? bm__emu_fail(rq, "RequestTimeTooSkewed",
                                 "The difference between the request time and the current time "
                                 "is too large.")
                  : bm__emu_fail(rq, "SignatureDoesNotMatch",
                                 "Signature expired: %s is now earlier or later than the "
                                 "allowed skew.",
                                 vo->detail);
    case EMU_AUTH_EXPIRED:
        return s3 ? bm__emu_fail(rq, "AccessDenied", "Request has expired")
                  : bm__emu_fail(rq, "RequestExpired", "Request has expired.");
    case EMU_AUTH_BAD_HASH:
        return bm__emu_fail(rq, s3 ? "XAmzContentSHA256Mismatch" : "SignatureDoesNotMatch",
                            "The provided 'x-amz-content-sha256' header does not match what was "
                            "computed.");
    case EMU_AUTH_BAD_CHUNK:
        return bm__emu_fail(rq, s3 ? "IncompleteBody" : "SignatureDoesNotMatch",
                            "The aws-chunked body is malformed or a chunk signature is wrong.");
    }
    return BM_E_INTERNAL;
}

static bm_err handle(struct emu_req *rq, struct emu_resp *rs)
{
    struct bm_emu *emu = rq->emu;
    bm_err rc;
    route(rq);
    route_by_action(rq);
    if (rq->too_many_headers)
        return bm__emu_fail(rq, rq->svc == EMU_SVC_S3 ? "InvalidRequest" : "InvalidParameterValue",
                            "Too many request headers");
    if (rq->body_too_large)
        return rq->svc == EMU_SVC_S3
                   ? bm__emu_fail(rq, "EntityTooLarge",
                                  "Your proposed upload exceeds the maximum allowed size")
                   : bm__emu_fail(rq, "RequestEntityTooLarge", "Request size exceeded %llu bytes",
                                  (unsigned long long)emu->max_body);

    /* AssumeRoleWithWebIdentity needs no AWS credentials (the web identity token stands for
     * them), so it is served unsigned, as STS does. */
    char action[64];
    bool anonymous = rq->svc == EMU_SVC_STS && query_action(rq, action, sizeof action) &&
                     strcmp(action, "AssumeRoleWithWebIdentity") == 0;
    const struct emu_cred *creds = emu->creds;
    size_t n_creds = emu->n_creds;
    struct emu_session session;
    struct emu_cred session_cred;
    if (!anonymous &&
        (rc = bm__emu_sts_credentials(rq, &session, &session_cred, &creds, &n_creds)) != BM_OK) {
        bm_secure_zero(&session, sizeof session);
        rq->op = "Auth";
        return rc;
    }
    struct emu_verify_in vi = {
        .method = rq->method,
        .path = rq->path,
        .path_len = rq->path_len,
        .query = rq->query,
        .query_len = rq->query_len,
        .hdr = rq->hdr,
        .n_hdr = rq->n_hdr,
        .body = &rq->body,
        .creds = creds,
        .n_creds = n_creds,
        .now = rq->now_ms / 1000,
        .skew_s = emu->skew_s,
    };
    struct emu_verify_out vo;
    enum emu_auth a = anonymous ? EMU_AUTH_OK : bm__emu_verify(&vi, &vo);
    bm_secure_zero(&session, sizeof session);
    if (a != EMU_AUTH_OK) {
        BM_LOG(BM_INFO, "emu", "auth_failed", "request rejected by SigV4 verification",
               BM_KV_STR("req_id", rq->req_id), BM_KV_STR("svc", bm__emu_svc_name(rq->svc)),
               BM_KV_STR("akid", vo.akid), BM_KV_INT("reason", a), BM_KV_STR("detail", vo.detail));
        rq->op = "Auth";
        return auth_error(rq, a, &vo);
    }
    if (!anonymous)
        snprintf(rq->signed_region, sizeof rq->signed_region, "%s", vo.region);
    if (rq->svc == EMU_SVC_S3) {
        bm__emu_s3_resolve(rq);
        if ((rc = bm__emu_s3_region_check(rq, rs)) != BM_OK)
            return rc;
    } else if ((rc = parse_input(rq)) != BM_OK) {
        return rc;
    }

    struct emu_awserr fault;
    long latency = bm__emu_faults_match(emu, bm__emu_svc_name(rq->svc), rq->op, &fault);
    if (latency > 0) {
        /* Injected latency is the point of the rule: this connection's thread just waits. */
        struct timespec ts = {latency / 1000, (latency % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            continue;
    }
    if (fault.status != 0) {
        rq->err = fault;
        rq->faulted = true;
        return BM_E_BAD_REQUEST;
    }
    switch (rq->svc) {
    case EMU_SVC_S3:
        return bm__emu_s3_handle(rq, rs);
    case EMU_SVC_SQS:
        return bm__emu_sqs_handle(rq, rs);
    case EMU_SVC_CW:
        return bm__emu_cw_handle(rq, rs);
    case EMU_SVC_STS:
        return bm__emu_sts_handle(rq, rs);
    }
    return BM_E_INTERNAL;
}

static ssize_t no_body(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)cls;
    (void)pos;
    (void)buf;
    (void)max;
    return MHD_CONTENT_READER_END_WITH_ERROR; /* HEAD responses never read their body */
}

static enum MHD_Result send_resp(struct MHD_Connection *con, const struct emu_req *rq,
                                 struct emu_resp *rs)
{
    struct MHD_Response *r;
    if (rs->fixed_len)
        r = MHD_create_response_from_callback(rs->len, 4096, no_body, NULL, NULL);
    else
        r = MHD_create_response_from_buffer(rs->body.len, rs->body.data ? rs->body.data : "",
                                            MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    if (rs->content_type != NULL)
        MHD_add_response_header(r, "Content-Type", rs->content_type);
    if (rq->svc == EMU_SVC_S3 && !has_prefix(rq->path, "/_")) {
        MHD_add_response_header(r, "x-amz-request-id", rq->req_id);
        MHD_add_response_header(r, "x-amz-id-2", rq->req_id);
    } else {
        MHD_add_response_header(r, "x-amzn-RequestId", rq->req_id);
    }
    for (size_t i = 0; i < rs->n_h; i++)
        MHD_add_response_header(r, rs->hname[i], rs->hvalue[i]);
    enum MHD_Result ret = MHD_queue_response(con, (unsigned)rs->status, r);
    MHD_destroy_response(r);
    return ret;
}

static void resp_cleanup(struct emu_resp *rs)
{
    bm_buf_cleanup(&rs->body);
    for (size_t i = 0; i < rs->n_h; i++) {
        bm_free(rs->hname[i]);
        bm_free(rs->hvalue[i]);
    }
}

/* The first call of a request: headers are in, the body is not. */
static enum MHD_Result start_request(struct MHD_Connection *con, struct emu_req *rq,
                                     const char *method)
{
    struct bm_emu *emu = rq->emu;
    rq->started = true;
    rq->method = method;
    rq->now_ms = bm__emu_now_ms();
    char *q = strchr(rq->uri, '?');
    if (q != NULL) {
        *q = '\0';
        rq->query = q + 1;
        rq->query_len = strlen(rq->query);
    }
    rq->path = rq->uri;
    rq->path_len = strlen(rq->uri);
    MHD_get_connection_values(con, MHD_HEADER_KIND, collect_header, rq);
    const char *host = bm__emu_header(rq, "Host");
    snprintf(rq->host, sizeof rq->host, "%s", host ? host : "localhost");
    pthread_mutex_lock(&emu->mu);
    bm__emu_uuid(emu, rq->req_id);
    pthread_mutex_unlock(&emu->mu);
    /* S3 object bodies may be large; aws-chunked framing adds a little on top. */
    uint64_t cap = emu->max_body;
    if (strcmp(method, "PUT") == 0 && !has_prefix(rq->path, "/_"))
        cap = emu->max_object + emu->max_object / 32 + 65536;
    bm_buf_init(&rq->body, (size_t)cap);
    const char *cl = bm__emu_header(rq, "Content-Length");
    if (cl != NULL && (uint64_t)strtoull(cl, NULL, 10) > cap)
        rq->body_too_large = true;
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)cls;
    (void)url;
    (void)version;
    struct emu_req *rq = *con_cls;
    if (rq == NULL)
        return MHD_NO; /* out of memory in on_uri: drop the connection */
    if (!rq->started) {
        start_request(con, rq, method);
        if (!rq->body_too_large)
            return MHD_YES;
        /* Answer now: MHD then closes the connection instead of reading the body. */
    } else if (*upload_data_size > 0) {
        if (!rq->body_too_large &&
            bm_buf_append(&rq->body, upload_data, *upload_data_size) != BM_OK) {
            rq->body_too_large = true;
            bm_buf_cleanup(&rq->body);
        }
        *upload_data_size = 0;
        return MHD_YES;
    }

    struct emu_resp rs = {.status = 200};
    bm_buf_init(&rs.body, (size_t)rq->emu->max_object + 1024 * 1024);
    bool control_route =
        has_prefix(rq->path, "/_localstack/") || has_prefix(rq->path, "/_emulator/");
    bm_err rc = control_route ? bm__emu_control(rq, &rs) : handle(rq, &rs);
    if (rc == BM_E_BAD_REQUEST && rq->err.status != 0)
        rc = bm__emu_render_error(rq, &rs);
    if (rc != BM_OK) {
        rq->err.status = 0;
        bm__emu_fail(rq, rq->svc == EMU_SVC_S3 ? "InternalError" : "InternalFailure",
                     "Internal error: %s", bm_err_str(rc));
        rq->err.status = 500;
        bm__emu_render_error(rq, &rs);
    }
    if (!control_route)
        bm__emu_count(rq->emu, bm__emu_svc_name(rq->svc), rq->op ? rq->op : "Unknown", rq->faulted,
                      rs.status >= 400);
    BM_LOG(BM_DEBUG, "emu", "request", "served", BM_KV_STR("req_id", rq->req_id),
           BM_KV_STR("method", method), BM_KV_STR("path", rq->path),
           BM_KV_STR("op", rq->op ? rq->op : ""), BM_KV_INT("status", rs.status),
           BM_KV_INT("dur_ms", bm__emu_now_ms() - rq->now_ms));
    enum MHD_Result ret = send_resp(con, rq, &rs);
    resp_cleanup(&rs);
    return ret;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n')
        msg[--n] = '\0';
    BM_LOG(BM_WARN, "emu", "mhd", msg);
}

bm_err bm_emu_start(struct bm_emu *emu, struct bm_errmsg *em)
{
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG;
    if (emu->listen_addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* One thread per connection: a ReceiveMessage long poll blocks its own thread for up to
     * 20 s, and with a thread pool it would stall every connection sharing that worker.
     * Suspend/resume would avoid the threads but needs timers and resumption bookkeeping;
     * an emulator serves tens of connections, so plain threads are the simpler correct choice. */
    emu->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, emu, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, emu,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&emu->listen_addr, MHD_OPTION_URI_LOG_CALLBACK,
        on_uri, emu, MHD_OPTION_NOTIFY_COMPLETED, on_completed, emu, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)512, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)300, MHD_OPTION_END);
    if (emu->mhd == NULL)
        return bm_errmsg_set(em, BM_E_IO, "cannot listen on %s", emu->listen_spec);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(emu->mhd, MHD_DAEMON_INFO_BIND_PORT);
    emu->port = info ? info->port : 0;
    return bm__emu_store_start(emu);
}

uint16_t bm_emu_port(const struct bm_emu *emu)
{
    return emu->port;
}

bm_err bm_emu_stop(struct bm_emu *emu)
{
    if (emu->mhd == NULL)
        return BM_OK;
    pthread_mutex_lock(&emu->mu);
    emu->stopping = true;
    pthread_cond_broadcast(&emu->cv); /* long polls return at once */
    pthread_mutex_unlock(&emu->mu);
    MHD_stop_daemon(emu->mhd);
    emu->mhd = NULL;
    bm__emu_store_stop(emu);
    return emu->data_dir ? bm__emu_store_save(emu) : BM_OK;
}
