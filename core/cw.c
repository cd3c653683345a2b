/* cw.c: the CloudWatch side of publishing: BMAS_DIMENSION_SETS, and sending one PutMetricData
 * body (planned by cw_plan.c) over the Query protocol, retried alone. Which rows a call carries
 * and when they count as published is the server's publisher's business, with storage's
 * claims: nothing here reads or writes the outbox. */
#include "core/core_int.h"

#include <stdio.h>
#include <string.h>
#include <zlib.h>

/* Bodies over this are gzipped: CloudWatch accepts Content-Encoding: gzip (docs/formats.md 6). */
#define GZIP_OVER 16384
#define CW_BACKOFF_BASE_MS 250
#define CW_BACKOFF_CAP_MS 8000
#define CW_TIMEOUT_MS 60000 /* one PutMetricData attempt */

static const char *const dim_names[BM_DIM__COUNT] = {
    "InferenceProfileType", "ModelId",         "ProfileId",
    "SourceRegion",         "InferenceRegion", "Operation",
    "InferenceProfile",     "Region",          "ApplicationId",
};

const char *bm_dim_name(enum bm_dim d)
{
    return (unsigned)d < BM_DIM__COUNT ? dim_names[d] : "?";
}

/* One set: names split by ','; "()" alone is the set without dimensions. */
static bm_err parse_set(const char *p, size_t slen, struct bm_dimsets *d, struct bm_errmsg *em)
{
    while (slen > 0 && *p == ' ') {
        p++;
        slen--;
    }
    while (slen > 0 && p[slen - 1] == ' ')
        slen--;
    if (slen == 0)
        return BM_OK; /* ";;" and a trailing ';' add nothing */
    if (d->n == BM_DIMSETS_MAX)
        return bm_errmsg_set(em, BM_E_CONFIG, "BMAS_DIMENSION_SETS: more than %d sets",
                             BM_DIMSETS_MAX);
    int n = 0;
    if (slen == 2 && memcmp(p, "()", 2) == 0) {
        d->set[d->n++].n = 0;
        return BM_OK;
    }
    for (const char *q = p; q < p + slen;) {
        const char *comma = memchr(q, ',', (size_t)(p + slen - q));
        size_t len = comma ? (size_t)(comma - q) : (size_t)(p + slen - q);
        const char *next = comma ? comma + 1 : p + slen;
        while (len > 0 && *q == ' ') {
            q++;
            len--;
        }
        while (len > 0 && q[len - 1] == ' ')
            len--;
        if (len > 0) {
            int found = -1;
            for (int i = 0; i < BM_DIM__COUNT; i++)
                if (strlen(dim_names[i]) == len && memcmp(dim_names[i], q, len) == 0)
                    found = i;
            if (found < 0)
                return bm_errmsg_set(em, BM_E_CONFIG,
                                     "BMAS_DIMENSION_SETS: unknown dimension \"%.*s\" (use "
                                     "InferenceProfileType, ModelId, ProfileId, SourceRegion, "
                                     "InferenceRegion, Operation, InferenceProfile, Region, "
                                     "ApplicationId; () for no dimensions; or the whole value "
                                     "lambda-compat)",
                                     (int)len, q);
            for (int i = 0; i < n; i++)
                if (d->set[d->n].d[i] == (enum bm_dim)found)
                    return bm_errmsg_set(em, BM_E_CONFIG,
                                         "BMAS_DIMENSION_SETS: \"%.*s\" twice in one set", (int)len,
                                         q);
            if (n == BM_DIMSET_MAX_DIMS)
                return bm_errmsg_set(em, BM_E_CONFIG,
                                     "BMAS_DIMENSION_SETS: more than %d dimensions in one set",
                                     BM_DIMSET_MAX_DIMS);
            d->set[d->n].d[n++] = (enum bm_dim)found;
        }
        q = next;
    }
    if (n > 0) {
        d->set[d->n].n = n;
        d->n++;
    }
    return BM_OK;
}

static bool same_set(const struct bm_dimsets *d, int a, int b)
{
    if (d->set[a].n != d->set[b].n)
        return false;
    for (int i = 0; i < d->set[a].n; i++) {
        bool in = false;
        for (int j = 0; j < d->set[b].n; j++)
            in = in || d->set[a].d[i] == d->set[b].d[j];
        if (!in)
            return false;
    }
    return true;
}

bm_err bm_dimsets_parse(const char *spec, struct bm_dimsets *out, struct bm_errmsg *em)
{
    struct bm_dimsets d;
    memset(&d, 0, sizeof d);
    if (strcmp(spec, "lambda-compat") == 0)
        spec = BM_DIMSETS_LAMBDA_COMPAT;
    const char *p = spec;
    while (*p) {
        const char *semi = strchr(p, ';');
        size_t slen = semi ? (size_t)(semi - p) : strlen(p);
        bm_err rc = parse_set(p, slen, &d, em);
        if (rc != BM_OK)
            return rc;
        p += slen + (semi != NULL);
    }
    /* The same set twice (in any order: CloudWatch ignores the order of dimensions) would
     * send every datum twice, and CloudWatch would count it twice. */
    for (int a = 0; a < d.n; a++)
        for (int b = a + 1; b < d.n; b++)
            if (same_set(&d, a, b))
                return bm_errmsg_set(em, BM_E_CONFIG, "BMAS_DIMENSION_SETS: set %d repeats set %d",
                                     b + 1, a + 1);
    *out = d;
    return BM_OK;
}

static bm_err gzip_body(const struct bm_buf *in, struct bm_buf *out)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    zs.zalloc = bm__z_alloc;
    zs.zfree = bm__z_free;
    if (deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return BM_E_NOMEM;
    size_t cap = deflateBound(&zs, (uLong)in->len) + 32;
    bm_buf_reset(out);
    bm_err rc = bm_buf_reserve(out, cap);
    if (rc == BM_OK) {
        zs.next_in = (unsigned char *)in->data;
        zs.avail_in = (uInt)in->len;
        zs.next_out = (unsigned char *)out->data;
        zs.avail_out = (uInt)cap;
        rc = deflate(&zs, Z_FINISH) == Z_STREAM_END ? BM_OK : BM_E_INTERNAL;
        out->len = cap - zs.avail_out;
    }
    deflateEnd(&zs);
    return rc;
}

bm_err bm_cw_send(const struct bm_aws *aws, const struct bm_buf *body,
                  struct bm_cw_send_result *res)
{
    memset(res, 0, sizeof *res);
    struct bm_buf url, gz;
    bm_buf_init(&url, 4096);
    bm_buf_init(&gz, BM_CW_MAX_BODY * 2);
    bool custom;
    bool zipped = body->len > GZIP_OVER;
    bm_err rc = bm_aws_endpoint(aws->cfg, "monitoring", &url, &custom);
    if (rc == BM_OK)
        rc = bm_buf_append_char(&url, '/');
    if (rc == BM_OK && zipped)
        rc = gzip_body(body, &gz);
    const char *headers[] = {"Content-Type: application/x-www-form-urlencoded; charset=utf-8",
                             "Content-Encoding: gzip"};
    struct bm_http_resp rs;
    bm_http_resp_init(&rs);
    /* Not started once bmas is stopping: the call counts as not sent, and its claim resumes at
     * it after the restart. One in flight is let finish. */
    struct bm__aws_call c = {.aws = aws,
                             .op = "PutMetricData",
                             .rq = {.method = "POST",
                                    .url = url.data,
                                    .service = "monitoring",
                                    .region = bm_cw_region(aws->cfg),
                                    .headers = headers,
                                    .nheaders = zipped ? 2 : 1,
                                    .body = zipped ? gz.data : body->data,
                                    .body_len = zipped ? gz.len : body->len,
                                    .max_body = 64 * 1024,
                                    .timeout_ms = CW_TIMEOUT_MS},
                             .on_stop = BM__AWS_SKIP,
                             .backoff_base_ms = CW_BACKOFF_BASE_MS,
                             .backoff_cap_ms = CW_BACKOFF_CAP_MS,
                             .rs = &rs};
    bm_err r = BM_OK;
    if (rc == BM_OK)
        r = bm__aws_call(&c, &res->em);
    res->attempts = (uint64_t)c.attempts;
    res->failed_attempts = (uint64_t)c.failed;
    res->answered = c.answered;
    res->throttled = c.answered && c.throttled;
    res->accepted = rc == BM_OK && r == BM_OK;
    /* A 400 that no retry could fix (InvalidParameterValue and friends): resending cannot help. */
    res->refused = !res->accepted && c.answered && !c.retryable && rs.status == 400;
    if (rc != BM_OK) {
        bm_errmsg_set(&res->em, rc, "PutMetricData: %s", bm_err_str(rc));
        snprintf(res->error_type, sizeof res->error_type, "%s", "InternalError");
    } else if (r == BM_E_CANCELLED) {
        rc = r;
        snprintf(res->error_type, sizeof res->error_type, "%s", "Cancelled");
    } else if (!res->accepted && c.answered) {
        if (c.code[0] != '\0')
            snprintf(res->error_type, sizeof res->error_type, "%s", c.code);
        else
            snprintf(res->error_type, sizeof res->error_type, "HTTP %ld", rs.status);
    } else if (!res->accepted) {
        snprintf(res->error_type, sizeof res->error_type, "%s",
                 r == BM_E_NO_CREDENTIALS ? "NoCredentials" : "TransportError");
    }
    bm_http_resp_cleanup(&rs);
    bm_buf_cleanup(&url);
    bm_buf_cleanup(&gz);
    if (rc != BM_OK)
        return rc;
    if (res->accepted)
        return BM_OK;
    return res->throttled ? BM_E_THROTTLED : BM_E_PUBLISH;
}
