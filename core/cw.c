/* cw.c: the CloudWatch side of publishing: BMAS_DIMENSION_SETS, and sending one PutMetricData
 * body (planned by cw_plan.c) over the Query protocol, retried alone. Which rows a call carries
 * and when they count as published is the server's publisher's business, with storage's
 * claims: nothing here reads or writes the outbox. */
#include "core/core_int.h"

#include <curl/curl.h>
#include <string.h>
#include <zlib.h>

/* Bodies over this are gzipped: CloudWatch accepts Content-Encoding: gzip (docs/formats.md 6). */
#define GZIP_OVER 16384
#define CW_BACKOFF_BASE_MS 250
#define CW_BACKOFF_CAP_MS 8000

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

/* The CloudWatch Query error code in an ErrorResponse body. */
static void cw_error_code(const struct bm_http_resp *rs, char *code, size_t cap)
{
    struct bm_str t;
    code[0] = '\0';
    if (rs->body.data != NULL &&
        bm__xml_find(rs->body.data, rs->body.data + rs->body.len, "Code", &t) != NULL) {
        size_t n = t.len < cap - 1 ? t.len : cap - 1;
        memcpy(code, t.p, n);
        code[n] = '\0';
    }
}

static bool is_throttling(long status, const char *code)
{
    return status == 429 || strcmp(code, "Throttling") == 0 ||
           strcmp(code, "ThrottlingException") == 0;
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
    struct bm_rng rng;
    bm_rng_seed(&rng, (uint64_t)aws->clock->now_ms(aws->clock->impl) ^ body->len);
    const char *headers[] = {"Content-Type: application/x-www-form-urlencoded; charset=utf-8",
                             "Content-Encoding: gzip"};
    bool refreshed = false;
    int max = (int)aws->cfg->max_retry_attempts;
    for (int n = 1; rc == BM_OK && n <= max; n++) {
        res->attempts = (uint64_t)n;
        struct bm_creds creds;
        struct bm_errmsg em = {{0}};
        struct bm_http_resp rs;
        bm_http_resp_init(&rs);
        bool retry = false;
        bm_err r = bm_creds_get(aws->creds, &creds, &em);
        if (r == BM_OK) {
            struct bm_http_req rq = {.method = "POST",
                                     .url = url.data,
                                     .service = "monitoring",
                                     .region = bm_cw_region(aws->cfg),
                                     .creds = &creds,
                                     .headers = headers,
                                     .nheaders = zipped ? 2 : 1,
                                     .body = zipped ? gz.data : body->data,
                                     .body_len = zipped ? gz.len : body->len,
                                     .max_body = 64 * 1024};
            r = aws->http->perform(aws->http->impl, &rq, &rs, &em);
            bm_secure_zero(&creds, sizeof creds);
        }
        char code[64] = "";
        res->answered = r == BM_OK;
        if (r == BM_OK) {
            cw_error_code(&rs, code, sizeof code);
            res->throttled = is_throttling(rs.status, code);
            if (rs.status >= 200 && rs.status < 300) {
                res->accepted = true;
            } else if (rs.status == 403 && !refreshed) {
                refreshed = true;
                bm_creds_invalidate(aws->creds);
                retry = true;
                n--;
            } else if (rs.status >= 500 || res->throttled || strcmp(code, "RequestExpired") == 0) {
                retry = true;
            } else if (rs.status == 400) {
                res->refused = true; /* InvalidParameterValue and friends: resending cannot help */
            }
            bm_errmsg_set(&res->em, BM_E_PUBLISH, "PutMetricData: %s (%ld) %s",
                          code[0] ? code : "error", rs.status, rs.request_id);
            if (code[0] != '\0')
                snprintf(res->error_type, sizeof res->error_type, "%s", code);
            else
                snprintf(res->error_type, sizeof res->error_type, "HTTP %ld", rs.status);
        } else {
            res->throttled = false;
            snprintf(res->error_type, sizeof res->error_type, "%s",
                     r == BM_E_NO_CREDENTIALS ? "NoCredentials" : "TransportError");
            retry = r == BM_E_UPSTREAM || r == BM_E_NO_CREDENTIALS;
            res->em = em;
        }
        bm_http_resp_cleanup(&rs);
        if (res->accepted || res->refused || !retry)
            break;
        res->failed_attempts++;
        BM_LOG(BM_WARN, "core", "cloudwatch_retry", "PutMetricData will be retried",
               BM_KV_INT("attempt", n), BM_KV_STR("detail", res->em.text));
        if (n < max)
            aws->clock->sleep_ms(aws->clock->impl,
                                 bm_backoff_ms(&rng, n, CW_BACKOFF_BASE_MS, CW_BACKOFF_CAP_MS));
    }
    if (rc != BM_OK) {
        bm_errmsg_set(&res->em, rc, "PutMetricData: %s", bm_err_str(rc));
        snprintf(res->error_type, sizeof res->error_type, "%s", "InternalError");
    }
    if (res->accepted)
        res->error_type[0] = '\0';
    bm_buf_cleanup(&url);
    bm_buf_cleanup(&gz);
    if (rc != BM_OK)
        return rc;
    if (res->accepted)
        return BM_OK;
    return res->throttled ? BM_E_THROTTLED : BM_E_PUBLISH;
}
