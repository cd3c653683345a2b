/* aws_call.c: the one retry loop of S3, SQS, CloudWatch and STS requests (core_int.h says the
 * rules). One place decides what is retried, when credentials are refreshed, how long a call
 * may take in all and what a shutdown does to it, so the three clients cannot drift apart. */
#include "core/core_int.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#define DEFAULT_BACKOFF_BASE_MS 100
#define DEFAULT_BACKOFF_CAP_MS 20000

void bm__aws_error_code(const struct bm_http_resp *rs, char *code, size_t cap)
{
    code[0] = '\0';
    const char *p = rs->body.data, *end = p ? p + rs->body.len : NULL;
    if (p == NULL || cap == 0)
        return;
    struct bm_str t = {NULL, 0};
    cJSON *j = NULL;
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    if (p < end && *p == '{') {
        j = cJSON_ParseWithLength(rs->body.data, rs->body.len);
        const cJSON *ty = cJSON_GetObjectItemCaseSensitive(j, "__type");
        if (!cJSON_IsString(ty))
            ty = cJSON_GetObjectItemCaseSensitive(j, "code");
        if (cJSON_IsString(ty)) {
            const char *hash = strrchr(ty->valuestring, '#');
            t.p = hash ? hash + 1 : ty->valuestring;
            t.len = strlen(t.p);
        }
    } else {
        (void)bm__xml_find(p, end, "Code", &t);
    }
    if (t.p != NULL) {
        size_t n = t.len < cap - 1 ? t.len : cap - 1;
        memcpy(code, t.p, n);
        code[n] = '\0';
    }
    cJSON_Delete(j);
}

static bool in_list(const char *code, const char *const *list)
{
    for (; *list != NULL; list++)
        if (strcmp(code, *list) == 0)
            return true;
    return false;
}

/* The SDKs' standard retry mode: throttling codes (besides status 429). */
static const char *const throttling_codes[] = {"Throttling",
                                               "ThrottlingException",
                                               "ThrottledException",
                                               "RequestThrottledException",
                                               "RequestThrottled",
                                               "TooManyRequestsException",
                                               "ProvisionedThroughputExceededException",
                                               "TransactionInProgressException",
                                               "RequestLimitExceeded",
                                               "BandwidthLimitExceeded",
                                               "LimitExceededException",
                                               "SlowDown",
                                               "PriorRequestNotComplete",
                                               "EC2ThrottledException",
                                               NULL};
/* Transient errors that a 4xx status carries: S3's RequestTimeout is a 400 that AWS says to
 * retry; RequestExpired (a signature too old: clock skew or a slow queue) is signed afresh. */
static const char *const transient_codes[] = {"RequestTimeout", "RequestTimeoutException",
                                              "RequestExpired", "IDPCommunicationError", NULL};
/* Credentials that expired or are not (or no longer) known: fetched again once per call, which
 * picks up rotated keys and renewed session tokens. SignatureDoesNotMatch is not here: it is a
 * wrong secret or a bug, and the same keys would fail the same way. */
static const char *const refresh_codes[] = {"ExpiredToken",
                                            "ExpiredTokenException",
                                            "TokenRefreshRequired",
                                            "InvalidToken",
                                            "RequestExpired",
                                            "InvalidClientTokenId",
                                            "UnrecognizedClientException",
                                            "InvalidAccessKeyId",
                                            NULL};

static bool is_throttling(long status, const char *code)
{
    return status == 429 || in_list(code, throttling_codes);
}

/* One attempt: credentials, then the transport. */
static bm_err attempt(struct bm__aws_call *c, int64_t left_ms, struct bm_errmsg *em)
{
    const struct bm_aws *aws = c->aws;
    struct bm_http_req rq = c->rq;
    struct bm_creds creds;
    bm_err rc = BM_OK;
    rq.creds = NULL;
    if (rq.service != NULL) {
        if (c->signer != NULL)
            rq.creds = c->signer;
        else if ((rc = bm_creds_get(aws->creds, &creds, em)) == BM_OK)
            rq.creds = &creds;
        else
            return rc;
    }
    rq.cancel = c->on_stop == BM__AWS_ABORT ? aws->stop : NULL;
    if (rq.timeout_ms <= 0 || rq.timeout_ms > left_ms)
        rq.timeout_ms = left_ms > 0 ? (long)left_ms : 1;
    bm_http_resp_cleanup(c->rs);
    bm_http_resp_init(c->rs);
    rc = aws->http->perform(aws->http->impl, &rq, c->rs, em);
    if (rq.creds == &creds)
        bm_secure_zero(&creds, sizeof creds);
    return rc;
}

/* What an HTTP answer means: the shared rules around the caller's judge. */
static enum bm__aws_verdict judge_answer(struct bm__aws_call *c, bool *refreshed, bm_err *rc,
                                         struct bm_errmsg *em)
{
    const struct bm_http_resp *rs = c->rs;
    bm__aws_error_code(rs, c->code, sizeof c->code);
    c->throttled = is_throttling(rs->status, c->code);
    bool ok = rs->status >= 200 && rs->status < 300;
    *rc = ok ? BM_OK : BM_E_UPSTREAM;
    if (!ok)
        bm_errmsg_set(em, BM_E_UPSTREAM, "%s: %s (%ld)%s%s", c->op, c->code[0] ? c->code : "error",
                      rs->status, rs->request_id[0] ? " " : "", rs->request_id);
    if (!ok && !*refreshed && c->signer == NULL && c->rq.service != NULL && c->aws->creds != NULL &&
        in_list(c->code, refresh_codes)) {
        *refreshed = true;
        bm_creds_invalidate(c->aws->creds);
        return BM__AWS_AGAIN;
    }
    if (c->judge != NULL) {
        enum bm__aws_verdict v = c->judge(c, rc, em);
        if (v != BM__AWS_DEFAULT)
            return v;
    }
    if (ok)
        return BM__AWS_DONE;
    if (rs->status >= 500 || c->throttled || in_list(c->code, transient_codes))
        return BM__AWS_RETRY;
    return BM__AWS_FAIL;
}

/* Ends a call that was to be retried: the last error, with why it was not. */
static bm_err give_up(struct bm_errmsg *em, bm_err rc, const char *why)
{
    if (em != NULL) {
        struct bm_errmsg last = *em;
        bm_errmsg_set(em, rc, "%.200s (%s)", last.text, why);
    }
    return rc;
}

static bm_err call_loop(struct bm__aws_call *c, struct bm_errmsg *em)
{
    const struct bm_aws *aws = c->aws;
    const struct bm_clock_ops *clk = aws->clock;
    const int64_t start = clk->now_ms(clk->impl);
    const int64_t deadline = start + (int64_t)aws->cfg->aws_deadline_s * 1000;
    const int max = (int)aws->cfg->max_retry_attempts;
    struct bm_rng rng;
    bm_rng_seed(&rng, (uint64_t)start ^ (uint64_t)(uintptr_t)c);
    c->attempts = c->failed = 0;
    c->answered = c->retryable = c->throttled = false;
    c->code[0] = '\0';
    if (c->on_stop != BM__AWS_FINISH && bm_stop_is_set(aws->stop))
        return bm_errmsg_set(em, BM_E_CANCELLED, "%s: not sent: bmas is stopping", c->op);
    bool refreshed = false;
    for (int n = 1;; n++) {
        c->attempts = n;
        bm_err rc = c->reset != NULL ? c->reset(c->ctx) : BM_OK;
        if (rc != BM_OK)
            return rc;
        rc = attempt(c, deadline - clk->now_ms(clk->impl), em);
        enum bm__aws_verdict v;
        c->answered = rc == BM_OK;
        if (rc == BM_OK) {
            v = judge_answer(c, &refreshed, &rc, em);
        } else {
            c->throttled = false;
            c->code[0] = '\0';
            if (rc == BM_E_CANCELLED)
                return rc;
            /* A transport failure, or a credential source that did not answer: worth another
             * try. A sink's own error (bad gzip, a cap) is not a network problem. */
            v = rc == BM_E_UPSTREAM || rc == BM_E_NO_CREDENTIALS ? BM__AWS_RETRY : BM__AWS_FAIL;
        }
        c->retryable = v == BM__AWS_RETRY;
        if (v == BM__AWS_AGAIN) {
            n--; /* a refreshed credential or a redirect deserves a real attempt */
            continue;
        }
        if (v != BM__AWS_RETRY)
            return rc;
        if (n >= max)
            return rc;
        c->failed++;
        int64_t wait = bm_backoff_ms(
            &rng, n, c->backoff_base_ms ? c->backoff_base_ms : DEFAULT_BACKOFF_BASE_MS,
            c->backoff_cap_ms ? c->backoff_cap_ms : DEFAULT_BACKOFF_CAP_MS);
        if (clk->now_ms(clk->impl) + wait >= deadline)
            return give_up(em, rc, "given up: BMAS_AWS_DEADLINE reached");
        if (bm_stop_is_set(aws->stop))
            return give_up(em, rc, "not retried: bmas is stopping");
        BM_LOG(BM_WARN, "core", "aws_retry", "AWS request will be retried",
               BM_KV_STR("operation", c->op), BM_KV_INT("attempt", n),
               BM_KV_INT("waitMs", (long long)wait), BM_KV_STR("detail", em->text));
        clk->sleep_ms(clk->impl, wait);
        if (bm_stop_is_set(aws->stop))
            return give_up(em, rc, "not retried: bmas is stopping");
    }
}

bm_err bm__aws_call(struct bm__aws_call *c, struct bm_errmsg *em)
{
    /* Counted once per call, retries and backoffs inside: what a caller waited for. */
    int64_t t0 = bm_time_mono_ms();
    bm_err rc = call_loop(c, em);
    bm_metrics_aws(c->aws->metrics, c->op, rc == BM_OK, (unsigned)c->failed,
                   bm_time_mono_ms() - t0);
    return rc;
}
