/* fake_http.h: a scripted struct bm_http_ops for unit tests (docs/style.md G8 seams). Each call
 * takes the next scripted response, records the request, and streams the body to the sink the
 * way libcurl would (in pieces), optionally failing after a partial body. */
#ifndef BM_FAKE_HTTP_H
#define BM_FAKE_HTTP_H

#include "tu.h"

#define FAKE_MAX 64

struct fake_resp {
    long status;
    const char *body;  /* NULL: empty */
    size_t body_len;   /* 0: strlen(body) */
    size_t fail_after; /* >0: deliver this many body bytes, then a transport error */
    bool transport_error;
    const char *etag;
    const char *bucket_region; /* x-amz-bucket-region */
};

struct fake_call {
    char method[8];
    char url[4096];
    char service[32];
    char akid[128];
    char token[256];
    char region[32];
    /* The Authorization header's credential scope as libcurl builds it from the request
     * ("AKID/<date>/<region>/<service>/aws4_request"; tests/unit/test_core_http_sigv4.c
     * checks that libcurl signs what the request names). */
    char scope[256];
    char headers[8][256];
    size_t nheaders;
    struct bm_buf body;
};

struct fake_http {
    struct fake_resp script[FAKE_MAX];
    size_t nscript, next;
    struct fake_call calls[FAKE_MAX];
    size_t ncalls;
};

static inline bm_err fake_perform(void *impl, const struct bm_http_req *rq, struct bm_http_resp *rs,
                                  struct bm_errmsg *em)
{
    struct fake_http *f = impl;
    assert_true(f->next < f->nscript); /* the test scripted too few responses */
    const struct fake_resp *r = &f->script[f->next++];
    struct fake_call *c = &f->calls[f->ncalls++];
    snprintf(c->method, sizeof c->method, "%s", rq->method);
    snprintf(c->url, sizeof c->url, "%s", rq->url);
    snprintf(c->service, sizeof c->service, "%s", rq->service ? rq->service : "");
    if (rq->creds != NULL) {
        snprintf(c->akid, sizeof c->akid, "%s", rq->creds->akid);
        snprintf(c->token, sizeof c->token, "%.255s", rq->creds->token);
    }
    snprintf(c->region, sizeof c->region, "%s", rq->region ? rq->region : "");
    if (rq->service != NULL && rq->creds != NULL)
        snprintf(c->scope, sizeof c->scope, "Credential=%.64s/DATE/%.31s/%.31s/aws4_request",
                 rq->creds->akid, rq->region ? rq->region : "", rq->service);
    c->nheaders = rq->nheaders < 8 ? rq->nheaders : 8;
    for (size_t i = 0; i < c->nheaders; i++)
        snprintf(c->headers[i], sizeof c->headers[i], "%s", rq->headers[i]);
    bm_buf_init(&c->body, 1 << 24);
    if (rq->body_len > 0)
        bm_buf_append(&c->body, rq->body, rq->body_len);
    if (r->transport_error && r->fail_after == 0)
        return bm_errmsg_set(em, BM_E_UPSTREAM, "fake: connection reset");
    rs->status = r->status;
    if (r->etag != NULL)
        snprintf(rs->etag, sizeof rs->etag, "%s", r->etag);
    if (r->bucket_region != NULL)
        snprintf(rs->bucket_region, sizeof rs->bucket_region, "%s", r->bucket_region);
    size_t len = r->body ? (r->body_len ? r->body_len : strlen(r->body)) : 0;
    size_t deliver = r->fail_after > 0 && r->fail_after < len ? r->fail_after : len;
    for (size_t off = 0; off < deliver;) {
        size_t n = deliver - off < 7 ? deliver - off : 7; /* small pieces, like a network */
        bm_err rc;
        if (rs->status >= 200 && rs->status < 300 && rq->sink != NULL)
            rc = rq->sink(rq->sink_ctx, r->body + off, n);
        else
            rc = bm_buf_append(&rs->body, r->body + off, n);
        if (rc != BM_OK)
            return rc;
        off += n;
    }
    if (r->fail_after > 0)
        return bm_errmsg_set(em, BM_E_UPSTREAM, "fake: reset after %zu bytes", deliver);
    rs->content_length = len;
    return BM_OK;
}

static inline void fake_push(struct fake_http *f, struct fake_resp r)
{
    assert_true(f->nscript < FAKE_MAX);
    f->script[f->nscript++] = r;
}

static inline void fake_cleanup(struct fake_http *f)
{
    for (size_t i = 0; i < f->ncalls; i++)
        bm_buf_cleanup(&f->calls[i].body);
    memset(f, 0, sizeof *f);
}

/* An STS answer with <Credentials> (AssumeRole, AssumeRoleWithWebIdentity: action names the
 * root element). secret and token are raw XML text (entities allowed). Rotating buffers, so a
 * test can script several answers at once. */
static inline const char *fake_sts_answer(const char *action, const char *akid, const char *secret,
                                          const char *token, const char *exp)
{
    static char buf[4][1024];
    static int n;
    char *b = buf[n++ % 4];
    snprintf(b, sizeof buf[0],
             "<%sResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><%sResult>"
             "<Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey>"
             "<SessionToken>%s</SessionToken><Expiration>%s</Expiration></Credentials>"
             "</%sResult></%sResponse>",
             action, action, akid, secret, token, exp, action, action);
    return b;
}

/* A clock that never sleeps but remembers how long it was asked to. */
struct fake_clock {
    int64_t now_ms;
    int64_t slept_ms;
    int sleeps;
};
static inline int64_t fake_now(void *impl)
{
    return ((struct fake_clock *)impl)->now_ms;
}
static inline void fake_sleep(void *impl, int64_t ms)
{
    struct fake_clock *c = impl;
    c->slept_ms += ms;
    c->now_ms += ms;
    c->sleeps++;
}

/* Test environment lookups from a NULL-terminated name/value list. */
static const char *const *fake_env_list;
static inline const char *fake_getenv(const char *name)
{
    for (size_t i = 0; fake_env_list && fake_env_list[i] != NULL; i += 2)
        if (strcmp(fake_env_list[i], name) == 0)
            return fake_env_list[i + 1];
    return NULL;
}

/* A whole AWS side on the fakes: configuration from a variable list, the scripted transport,
 * a clock that never sleeps, and a credentials provider over them. */
struct fake_aws {
    struct bm_config cfg;
    struct fake_http http;
    struct bm_http_ops ops;
    struct fake_clock clock;
    struct bm_clock_ops clock_ops;
    struct bm_creds_provider *creds;
    struct bm_s3_regions *regions;
    struct bm_aws aws;
};

static inline void fake_aws_setup(struct fake_aws *e, const char *const *vars, int64_t now_s)
{
    memset(e, 0, sizeof *e);
    fake_env_list = vars;
    struct bm_errmsg em;
    assert_int_equal(bm_config_load(&e->cfg, fake_getenv, &em), BM_OK);
    e->ops = (struct bm_http_ops){fake_perform, &e->http};
    e->clock.now_ms = now_s * 1000;
    e->clock_ops = (struct bm_clock_ops){fake_now, fake_sleep, &e->clock};
    assert_int_equal(bm_creds_provider_new(&e->cfg, &e->ops, &e->clock_ops, &e->creds), BM_OK);
    e->regions = bm_s3_regions_new(4);
    assert_non_null(e->regions);
    e->aws = (struct bm_aws){&e->cfg, &e->ops, e->creds, &e->clock_ops, e->regions, NULL, NULL};
}

static inline void fake_aws_teardown(struct fake_aws *e)
{
    bm_creds_provider_free(e->creds);
    bm_s3_regions_free(e->regions);
    fake_cleanup(&e->http);
    bm_config_cleanup(&e->cfg);
}

#endif
