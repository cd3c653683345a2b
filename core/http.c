/* http.c: the libcurl transport behind struct bm_http_ops. SigV4 comes from libcurl itself
 * (CURLOPT_AWS_SIGV4); this file adds what libcurl 7.88 leaves to the caller (docs/testing.md):
 * x-amz-content-sha256 for S3, the session token header, CURLOPT_NOBODY for HEAD, and no
 * blanked default headers (curl would sign headers it does not send). Easy handles live in a
 * small pool so connections are reused across requests and threads. */
#include "core/bm_aws.h"

#include <curl/curl.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>

struct pool {
    pthread_mutex_t mu;
    CURL **idle;
    size_t nidle, cap;
    struct bm_http_curl_opts o;
};

struct xfer {
    CURL *h;
    const struct bm_http_req *rq;
    struct bm_http_resp *rs;
    bm_err sink_rc;
    size_t max_body;
};

void bm_http_resp_init(struct bm_http_resp *r)
{
    memset(r, 0, sizeof *r);
    bm_buf_init(&r->body, 1 << 20);
}

void bm_http_resp_cleanup(struct bm_http_resp *r)
{
    bm_buf_cleanup(&r->body);
}

static CURL *pool_get(struct pool *p)
{
    CURL *h = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->nidle > 0)
        h = p->idle[--p->nidle];
    pthread_mutex_unlock(&p->mu);
    return h ? h : curl_easy_init();
}

static void pool_put(struct pool *p, CURL *h)
{
    pthread_mutex_lock(&p->mu);
    if (p->nidle < p->cap) {
        p->idle[p->nidle++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    if (h != NULL)
        curl_easy_cleanup(h);
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *userp)
{
    struct xfer *x = userp;
    size_t len = size * nmemb;
    long status = 0;
    curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300 && x->rq->sink != NULL) {
        x->sink_rc = x->rq->sink(x->rq->sink_ctx, data, len);
    } else {
        /* Error bodies (and small documents) are kept whole, within the cap. */
        x->sink_rc = len > x->max_body - x->rs->body.len ? BM_E_TOO_LARGE
                                                         : bm_buf_append(&x->rs->body, data, len);
    }
    return x->sink_rc == BM_OK ? len : 0; /* 0 makes curl abort with CURLE_WRITE_ERROR */
}

/* Copies a header's value (trimmed, quotes removed) when its name matches. */
static void header_value(const char *line, size_t len, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    if (len <= n + 1 || strncasecmp(line, name, n) != 0 || line[n] != ':')
        return;
    const char *v = line + n + 1;
    const char *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t' || *v == '"'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '"'))
        end--;
    size_t vl = (size_t)(end - v) < cap - 1 ? (size_t)(end - v) : cap - 1;
    memcpy(out, v, vl);
    out[vl] = '\0';
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *userp)
{
    struct xfer *x = userp;
    size_t len = size * nmemb;
    struct bm_http_resp *r = x->rs;
    if (len > 5 && strncmp(line, "HTTP/", 5) == 0) {
        /* A new response (after 100-continue or a redirect): forget the previous headers. */
        r->request_id[0] = r->etag[0] = r->version_id[0] = r->bucket_region[0] = '\0';
        return len;
    }
    header_value(line, len, "x-amz-request-id", r->request_id, sizeof r->request_id);
    header_value(line, len, "x-amzn-RequestId", r->request_id, sizeof r->request_id);
    header_value(line, len, "ETag", r->etag, sizeof r->etag);
    header_value(line, len, "x-amz-version-id", r->version_id, sizeof r->version_id);
    header_value(line, len, "x-amz-bucket-region", r->bucket_region, sizeof r->bucket_region);
    return len;
}

static bm_err map_curl(CURLcode c, const char *errbuf, struct bm_errmsg *em)
{
    return bm_errmsg_set(em, c == CURLE_OUT_OF_MEMORY ? BM_E_NOMEM : BM_E_UPSTREAM, "%s: %s",
                         curl_easy_strerror(c), errbuf[0] ? errbuf : "no detail");
}

/* curl_easy_perform, except that the transfer ends within 100 ms of stop being set: the multi
 * interface lets the wait be cut into slices (a progress callback runs only about once a
 * second while a long poll is idle). *cancelled tells that it ended so. */
static CURLcode perform_until(CURL *h, const struct bm_stop *stop, bool *cancelled)
{
    CURLM *m = curl_multi_init();
    if (m == NULL)
        return CURLE_OUT_OF_MEMORY;
    if (curl_multi_add_handle(m, h) != CURLM_OK) {
        curl_multi_cleanup(m);
        return CURLE_FAILED_INIT;
    }
    CURLcode cc = CURLE_OK;
    int running = 1;
    while (running > 0) {
        if (bm_stop_is_set(stop)) {
            *cancelled = true;
            break;
        }
        CURLMcode mc = curl_multi_perform(m, &running);
        if (mc == CURLM_OK && running > 0)
            mc = curl_multi_poll(m, NULL, 0, 100, NULL);
        if (mc != CURLM_OK) {
            cc = mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_RECV_ERROR;
            break;
        }
    }
    int left;
    CURLMsg *msg;
    while (!*cancelled && (msg = curl_multi_info_read(m, &left)) != NULL)
        if (msg->msg == CURLMSG_DONE && msg->easy_handle == h)
            cc = msg->data.result;
    curl_multi_remove_handle(m, h);
    curl_multi_cleanup(m);
    return cc;
}

static bm_err curl_perform(void *impl, const struct bm_http_req *rq, struct bm_http_resp *rs,
                           struct bm_errmsg *em)
{
    if (bm_stop_is_set(rq->cancel))
        return bm_errmsg_set(em, BM_E_CANCELLED, "request not sent: bmas is stopping");
    struct pool *p = impl;
    struct curl_slist *hdrs = NULL;
    char *sigv4 = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    char line[4200];
    bm_err rc = BM_OK;
    CURL *h = pool_get(p);
    if (h == NULL)
        return BM_E_NOMEM;
    curl_easy_reset(h); /* keeps the connection cache, clears every option */

    struct xfer x = {.h = h, .rq = rq, .rs = rs, .max_body = rq->max_body ? rq->max_body : 1 << 20};
    rs->body.max = x.max_body;
    for (size_t i = 0; i < rq->nheaders; i++) {
        struct curl_slist *n = curl_slist_append(hdrs, rq->headers[i]);
        if (n == NULL) {
            rc = BM_E_NOMEM;
            goto fail;
        }
        hdrs = n;
    }
    if (rq->service != NULL) {
        const struct bm_creds *c = rq->creds;
        struct bm_buf b;
        bm_buf_init(&b, 256);
        rc = bm_buf_appendf(&b, "aws:amz:%s:%s", rq->region, rq->service);
        sigv4 = bm_buf_steal(&b);
        if (rc != BM_OK || sigv4 == NULL) {
            rc = BM_E_NOMEM;
            goto fail;
        }
        curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4);
        curl_easy_setopt(h, CURLOPT_USERNAME, c->akid);
        curl_easy_setopt(h, CURLOPT_PASSWORD, c->secret);
        if (strcmp(rq->service, "s3") == 0 && rq->body_len == 0) {
            /* S3 requires the payload hash header; curl signs it but does not add it. */
            struct curl_slist *n =
                curl_slist_append(hdrs, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
            if (n == NULL) {
                rc = BM_E_NOMEM;
                goto fail;
            }
            hdrs = n;
        }
        if (c->token[0] != '\0') {
            snprintf(line, sizeof line, "x-amz-security-token: %s", c->token);
            struct curl_slist *n = curl_slist_append(hdrs, line);
            bm_secure_zero(line, sizeof line);
            if (n == NULL) {
                rc = BM_E_NOMEM;
                goto fail;
            }
            hdrs = n;
        }
    }
    curl_easy_setopt(h, CURLOPT_URL, rq->url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, p->o.connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
                     rq->timeout_ms ? rq->timeout_ms : p->o.total_timeout_ms);
    /* A stalled transfer (under 1 KiB/s for stall_seconds) is a failure to retry, whatever
     * the total timeout allows. */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, p->o.stall_seconds);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "bmas/" BM_VERSION);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    /* S3 keys may hold "./" or "//": the URL must reach the server exactly as built. */
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    if (strcmp(rq->method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L); /* a custom "HEAD" would wait for a body */
    } else if (strcmp(rq->method, "POST") == 0 || strcmp(rq->method, "PUT") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
        if (rq->method[1] == 'U')
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
    } else if (strcmp(rq->method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
    }

    bool cancelled = false;
    CURLcode cc =
        rq->cancel != NULL ? perform_until(h, rq->cancel, &cancelled) : curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &rs->status);
    curl_off_t cl = 0;
    if (curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK && cl > 0)
        rs->content_length = (uint64_t)cl;
    if (cancelled)
        rc = bm_errmsg_set(em, BM_E_CANCELLED, "request cancelled: bmas is stopping");
    else if (cc == CURLE_WRITE_ERROR && x.sink_rc != BM_OK)
        rc = x.sink_rc; /* the sink stopped the transfer: its reason, not curl's */
    else if (cc != CURLE_OK)
        rc = map_curl(cc, errbuf, em);
fail:
    curl_easy_setopt(h, CURLOPT_PASSWORD, "");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdrs);
    bm_free(sigv4);
    pool_put(p, h);
    return rc;
}

bm_err bm_http_curl_new(const struct bm_http_curl_opts *o, struct bm_http_ops *out)
{
    struct pool *p = bm_calloc(1, sizeof *p);
    if (p == NULL)
        return BM_E_NOMEM;
    p->o = *o;
    if (p->o.pool_size == 0)
        p->o.pool_size = 16;
    if (p->o.connect_timeout_ms <= 0)
        p->o.connect_timeout_ms = 10000;
    if (p->o.stall_seconds <= 0)
        p->o.stall_seconds = 30;
    if (p->o.total_timeout_ms <= 0)
        p->o.total_timeout_ms = 15 * 60 * 1000; /* a large object on a slow link, not a hang */
    p->cap = p->o.pool_size;
    p->idle = bm_calloc(p->cap, sizeof *p->idle);
    if (p->idle == NULL || pthread_mutex_init(&p->mu, NULL) != 0) {
        bm_free(p->idle);
        bm_free(p);
        return BM_E_NOMEM;
    }
    out->perform = curl_perform;
    out->impl = p;
    return BM_OK;
}

void bm_http_curl_free(struct bm_http_ops *ops)
{
    struct pool *p = ops ? ops->impl : NULL;
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->nidle; i++)
        curl_easy_cleanup(p->idle[i]);
    pthread_mutex_destroy(&p->mu);
    bm_free(p->idle);
    bm_free(p);
    ops->impl = NULL;
}
