/* s3.c: S3 GetObject (streamed, retried) and ListObjectsV2, on libcurl's SigV4. Keys are
 * encoded segment by segment with bm_url_encode, which keeps only A-Za-z0-9-._~ and writes
 * uppercase hex: exactly S3's canonical URI form (docs/testing.md). Custom endpoints (LocalStack,
 * bmas-emulator) get path-style URLs; real AWS virtual-host style. */
#include "core/core_int.h"

#include <stdio.h>
#include <string.h>

#define S3_BACKOFF_BASE_MS 200
#define S3_BACKOFF_CAP_MS 5000

bool bm_s3_parse_uri(const char *uri, struct bm_buf *bucket, struct bm_buf *key)
{
    if (strncmp(uri, "s3://", 5) != 0)
        return false;
    const char *b = uri + 5;
    const char *slash = strchr(b, '/');
    size_t blen = slash ? (size_t)(slash - b) : strlen(b);
    if (blen == 0)
        return false;
    bm_buf_reset(bucket);
    bm_buf_reset(key);
    return bm_buf_append(bucket, b, blen) == BM_OK &&
           bm_buf_append_str(key, slash ? slash + 1 : "") == BM_OK;
}

/* Real AWS: virtual-host style, unless the bucket name has dots (the wildcard certificate
 * would not match) or the endpoint is custom. The bucket becomes part of a host name, so only a
 * name S3 itself could have (3-63 of [a-z0-9.-], not an IP address) gets that far: anything
 * else ("localhost:8080/#", "x@10.0.0.1", "[::1]") is refused before a connection is made. */
static bm_err object_url(const struct bm_aws *aws, const char *region, const char *bucket,
                         const char *key, struct bm_buf *url, struct bm_errmsg *em)
{
    const char *why = bm_s3_bucket_check(bucket, strlen(bucket));
    if (why == NULL && *key != '\0')
        why = bm_s3_key_check(key, strlen(key));
    if (why != NULL)
        return bm_errmsg_set(em, BM_E_MSG_PARSE, "refused before any request: %s", why);
    bool custom;
    struct bm_buf base;
    bm_buf_init(&base, 4096);
    bm_err rc = bm_aws_endpoint_in(aws->cfg, "s3", region, &base, &custom);
    bm_buf_reset(url);
    if (rc == BM_OK && !custom && strchr(bucket, '.') == NULL) {
        const char *host = base.data + strlen("https://");
        rc = bm_buf_appendf(url, "https://%s.%s/", bucket, host);
    } else if (rc == BM_OK) {
        rc = bm_buf_appendf(url, "%s/", base.data);
        if (rc == BM_OK)
            rc = bm_url_encode(bucket, strlen(bucket), NULL, false, url);
        /* Path style: "/bucket" for the bucket itself (ListObjectsV2), "/bucket/key" else. */
        if (rc == BM_OK && *key != '\0')
            rc = bm_buf_append_char(url, '/');
    }
    /* RFC 3986 with '/' kept: each key segment encoded on its own, as S3 signs it. */
    if (rc == BM_OK)
        rc = bm_url_encode(key, strlen(key), "/", false, url);
    bm_buf_cleanup(&base);
    return rc;
}

/* The region in an S3 endpoint host S3 named (a 307's <Endpoint>): "B.s3.REGION.amazonaws.com"
 * or the older "B.s3-REGION.amazonaws.com" (s3-external-1 is us-east-1's old name); "" for
 * the global "B.s3.amazonaws.com" or any other shape. */
static void endpoint_region(struct bm_str host, char *region, size_t cap)
{
    static const char *const suffix[] = {".amazonaws.com", ".amazonaws.com.cn"};
    region[0] = '\0';
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        size_t sl = strlen(suffix[i]);
        if (host.len <= sl || memcmp(host.p + host.len - sl, suffix[i], sl) != 0)
            continue;
        size_t end = host.len - sl, start = end;
        while (start > 0 && host.p[start - 1] != '.')
            start--;
        struct bm_str last = {host.p + start, end - start};
        bool dotted = start >= 4 && memcmp(host.p + start - 4, ".s3.", 4) == 0;
        bool dashed = last.len > 3 && memcmp(last.p, "s3-", 3) == 0;
        if (dashed) {
            last.p += 3;
            last.len -= 3;
        } else if (!dotted && !(start == 3 && memcmp(host.p, "s3.", 3) == 0)) {
            return;
        }
        if (last.len == 10 && memcmp(last.p, "external-1", 10) == 0)
            last = (struct bm_str){"us-east-1", 9};
        if (last.len > 0 && last.len < cap) {
            memcpy(region, last.p, last.len);
            region[last.len] = '\0';
        }
        return;
    }
}

/* A bucket in another region than the request was signed for. S3 says so with a 301
 * PermanentRedirect (a request sent to another region's endpoint), a 307 TemporaryRedirect
 * (the same, in the first hours of a new bucket) or a 400 AuthorizationHeaderMalformed (the
 * bucket's own endpoint, signed for another region; every path-style request to a custom
 * endpoint): the bucket's region is in the x-amz-bucket-region header, the error's <Region>,
 * or the host of a 307's <Endpoint> (docs/architecture.md, "Buckets in other regions"). A
 * HEAD error has no body, so a 400 with the header and no code counts too. True when the
 * answer is such a redirect; region gets what it named ("" when nothing). */
static bool region_redirect(const struct bm_http_resp *rs, const char *code, char *region,
                            size_t cap)
{
    bool moved = rs->status == 301 || rs->status == 307 ||
                 (rs->status == 400 && (strcmp(code, "AuthorizationHeaderMalformed") == 0 ||
                                        strcmp(code, "IllegalLocationConstraintException") == 0 ||
                                        (code[0] == '\0' && rs->bucket_region[0] != '\0')));
    region[0] = '\0';
    if (!moved)
        return false;
    struct bm_str t;
    if (rs->bucket_region[0] != '\0') {
        snprintf(region, cap, "%s", rs->bucket_region);
    } else if (rs->body.data != NULL &&
               bm__xml_find(rs->body.data, rs->body.data + rs->body.len, "Region", &t) != NULL) {
        size_t n = t.len < cap - 1 ? t.len : cap - 1;
        memcpy(region, t.p, n);
        region[n] = '\0';
    } else if (rs->status == 307 && rs->body.data != NULL &&
               bm__xml_find(rs->body.data, rs->body.data + rs->body.len, "Endpoint", &t) != NULL) {
        endpoint_region(t, region, cap);
    }
    /* A 400 AuthorizationHeaderMalformed without a region is a malformed header, no more; a
     * 307 without one (the global endpoint's) is not followed either. */
    return rs->status == 301 || region[0] != '\0';
}

/* For messages and logs: what S3 named, printable characters only. */
static void printable(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e || *s == '"' || *s == '\\')
            *s = '?';
}

struct attempt {
    const struct bm_aws *aws;
    const char *method; /* GET or HEAD */
    const char *bucket, *key;
    const char *query; /* NULL, "" or "?..." after the path, already encoded and sorted */
    const char *const *headers;
    size_t nheaders;
    bm_http_sink_fn sink;
    void *ctx;
    size_t max_body;
    struct bm_http_resp *rs;
    const char *what;
    bool versioned; /* a GetObject of a version id: a 400 may mean it does not exist */
};

/* The request's URL for region. */
static bm_err attempt_url(const struct attempt *a, const char *region, struct bm_buf *url,
                          struct bm_errmsg *em)
{
    bm_err rc = object_url(a->aws, region, a->bucket, a->key, url, em);
    return rc == BM_OK && a->query != NULL ? bm_buf_append_str(url, a->query) : rc;
}

/* One S3 request on the shared call path (core/aws_call.c), with what S3 alone means by its
 * answers: one region redirect followed (the request goes again, signed for the bucket's
 * region, which the cache keeps for the bucket's next requests; a second redirect is not
 * followed), 412 superseded, 404 and a versioned 400 InvalidArgument not found, 403 denied. */
struct s3_call {
    struct bm__aws_call c;
    const struct attempt *a;
    bm_s3_reset_fn reset;
    char region[32];
    struct bm_buf url;
    bool redirected;
};

static bm_err s3_reset(void *ctx)
{
    struct s3_call *sc = ctx;
    return sc->reset != NULL ? sc->reset(sc->a->ctx) : BM_OK;
}

static enum bm__aws_verdict s3_redirect(struct s3_call *sc, bm_err *rc, struct bm_errmsg *em)
{
    const struct attempt *a = sc->a;
    const struct bm_http_resp *rs = a->rs;
    const char *code = sc->c.code;
    char want[32];
    if (!region_redirect(rs, code, want, sizeof want))
        return BM__AWS_DEFAULT;
    printable(want);
    if (sc->redirected) {
        *rc = bm_errmsg_set(em, BM_E_UPSTREAM,
                            "%s: S3 redirected the request again (region \"%s\", signed for %s); "
                            "one redirect is followed, no more",
                            a->what, want, sc->region);
        return BM__AWS_FAIL;
    }
    if (strcmp(want, sc->region) == 0) {
        *rc = bm_errmsg_set(em, BM_E_UPSTREAM,
                            "%s: %s (%ld) names the region the request was signed for (%s): "
                            "nothing to follow",
                            a->what, code[0] ? code : "redirect", rs->status, sc->region);
        return BM__AWS_FAIL;
    }
    if (!bm_region_valid(want)) {
        *rc = bm_errmsg_set(em, BM_E_UPSTREAM,
                            "%s: %s (%ld) names no usable region (\"%s\"): redirect refused",
                            a->what, code[0] ? code : "redirect", rs->status, want);
        return BM__AWS_FAIL;
    }
    BM_LOG(BM_INFO, "core", "s3_region_redirect",
           "bucket lives in another region: request signed again for it",
           BM_KV_STR("bucket", a->bucket), BM_KV_STR("from", sc->region), BM_KV_STR("to", want),
           BM_KV_INT("status", rs->status));
    sc->redirected = true;
    snprintf(sc->region, sizeof sc->region, "%s", want);
    bm_s3_regions_put(a->aws->s3_regions, a->bucket, sc->region);
    if ((*rc = attempt_url(a, sc->region, &sc->url, em)) != BM_OK)
        return BM__AWS_FAIL;
    sc->c.rq.url = sc->url.data;
    sc->c.rq.region = sc->region;
    return BM__AWS_AGAIN;
}

static enum bm__aws_verdict s3_judge(struct bm__aws_call *c, bm_err *rc, struct bm_errmsg *em)
{
    struct s3_call *sc = c->ctx;
    const struct attempt *a = sc->a;
    const struct bm_http_resp *rs = a->rs;
    const char *code = c->code;
    enum bm__aws_verdict v = s3_redirect(sc, rc, em);
    if (v != BM__AWS_DEFAULT)
        return v;
    if (rs->status == 412) {
        *rc = bm_errmsg_set(em, BM_E_SUPERSEDED, "%s: the object's ETag is no longer the event's",
                            a->what);
        return BM__AWS_FAIL;
    }
    /* An unversioned bucket has only the "null" version: S3 answers any other id with 400
     * InvalidArgument, a versioned one with 404 NoSuchVersion. Either way the object the
     * event named does not exist. */
    if (rs->status == 400 && strcmp(code, "InvalidArgument") == 0 && a->versioned) {
        *rc = bm_errmsg_set(em, BM_E_S3_NOT_FOUND, "%s: no such version: InvalidArgument (400)",
                            a->what);
        return BM__AWS_FAIL;
    }
    if (rs->status == 404) {
        *rc = bm_errmsg_set(em, BM_E_S3_NOT_FOUND, "%s: %s (404)", a->what,
                            code[0] ? code : "NotFound");
        return BM__AWS_FAIL;
    }
    if (rs->status == 403) {
        *rc = bm_errmsg_set(em, BM_E_S3_DENIED, "%s: %s (403)", a->what,
                            code[0] ? code : "Forbidden");
        return BM__AWS_FAIL;
    }
    return BM__AWS_DEFAULT;
}

static bm_err with_retries(const struct attempt *a, bm_s3_reset_fn reset, int *attempts,
                           struct bm_errmsg *em)
{
    const struct bm_aws *aws = a->aws;
    struct s3_call sc = {.a = a, .reset = reset};
    if (!bm_s3_regions_get(aws->s3_regions, a->bucket, sc.region, sizeof sc.region))
        snprintf(sc.region, sizeof sc.region, "%s", aws->cfg->aws_region);
    bm_buf_init(&sc.url, 16384);
    bm_err rc = attempt_url(a, sc.region, &sc.url, em);
    if (rc == BM_OK) {
        sc.c = (struct bm__aws_call){.aws = aws,
                                     .op = a->what,
                                     .rq = {.method = a->method,
                                            .url = sc.url.data,
                                            .headers = a->headers,
                                            .nheaders = a->nheaders,
                                            .service = "s3",
                                            .region = sc.region,
                                            .sink = a->sink,
                                            .sink_ctx = a->ctx,
                                            .max_body = a->max_body},
                                     .backoff_base_ms = S3_BACKOFF_BASE_MS,
                                     .backoff_cap_ms = S3_BACKOFF_CAP_MS,
                                     .reset = s3_reset,
                                     .judge = s3_judge,
                                     .ctx = &sc,
                                     .rs = a->rs};
        rc = bm__aws_call(&sc.c, em);
        *attempts = sc.c.attempts;
    }
    bm_buf_cleanup(&sc.url);
    return rc;
}

/* The bucket and key refused before any request (object_url's checks), any region. */
static bm_err names_check(const char *bucket, const char *key, struct bm_errmsg *em)
{
    const char *why = bm_s3_bucket_check(bucket, strlen(bucket));
    if (why == NULL && *key != '\0')
        why = bm_s3_key_check(key, strlen(key));
    return why ? bm_errmsg_set(em, BM_E_MSG_PARSE, "refused before any request: %s", why) : BM_OK;
}

/* What S3 answered about the object (its identity and size), for a GetObject or a HeadObject;
 * info may be NULL. */
static void object_info(struct bm_s3_object_info *info, bm_err rc, int attempts,
                        const struct bm_http_resp *rs)
{
    if (info == NULL)
        return;
    memset(info, 0, sizeof *info);
    info->attempts = attempts;
    if (rc == BM_OK) {
        memcpy(info->etag, rs->etag, sizeof info->etag);
        memcpy(info->version_id, rs->version_id, sizeof info->version_id);
        info->size = rs->content_length;
    }
}

bm_err bm_s3_get_object(const struct bm_aws *aws, const char *bucket, const char *key,
                        const char *version_id, const char *if_match, bm_s3_reset_fn reset,
                        bm_http_sink_fn sink, void *ctx, struct bm_s3_object_info *info,
                        struct bm_errmsg *em)
{
    char cond[200];
    const char *headers[1] = {cond};
    size_t nheaders = 0;
    /* A version id names the bytes exactly; without one, If-Match makes sure the bytes are
     * the ones the event announced (a key overwritten since is counted by its own event). */
    if ((version_id == NULL || *version_id == '\0') && if_match != NULL && *if_match != '\0' &&
        strlen(if_match) < 150) {
        snprintf(cond, sizeof cond, "If-Match: \"%s\"", if_match);
        nheaders = 1;
    }
    struct bm_buf query;
    struct bm_http_resp rs;
    bm_buf_init(&query, 8192);
    bm_http_resp_init(&rs);
    bm_err rc = names_check(bucket, key, em);
    if (rc == BM_OK && version_id != NULL && *version_id != '\0') {
        rc = bm_buf_append_str(&query, "?versionId=");
        if (rc == BM_OK)
            rc = bm_url_encode(version_id, strlen(version_id), NULL, false, &query);
    }
    int attempts = 0;
    if (rc == BM_OK) {
        struct attempt a = {.aws = aws,
                            .method = "GET",
                            .bucket = bucket,
                            .key = key,
                            .query = query.data,
                            .headers = headers,
                            .nheaders = nheaders,
                            .sink = sink,
                            .ctx = ctx,
                            .max_body = 64 * 1024,
                            .rs = &rs,
                            .what = "GetObject",
                            .versioned = version_id && *version_id};
        rc = with_retries(&a, reset, &attempts, em);
    }
    object_info(info, rc, attempts, &rs);
    bm_http_resp_cleanup(&rs);
    bm_buf_cleanup(&query);
    return rc;
}

bm_err bm_s3_head_object(const struct bm_aws *aws, const char *bucket, const char *key,
                         struct bm_s3_object_info *info, struct bm_errmsg *em)
{
    struct bm_http_resp rs;
    bm_http_resp_init(&rs);
    int attempts = 0;
    bm_err rc = names_check(bucket, key, em);
    if (rc == BM_OK) {
        struct attempt a = {.aws = aws,
                            .method = "HEAD",
                            .bucket = bucket,
                            .key = key,
                            .query = "",
                            .max_body = 64 * 1024,
                            .rs = &rs,
                            .what = "HeadObject"};
        rc = with_retries(&a, NULL, &attempts, em);
    }
    object_info(info, rc, attempts, &rs);
    bm_http_resp_cleanup(&rs);
    return rc;
}

bm_err bm_s3_list_page(const struct bm_aws *aws, const char *bucket, const char *prefix,
                       const char *token, bm_s3_list_fn fn, void *ctx, struct bm_buf *next,
                       struct bm_errmsg *em)
{
    struct bm_buf query, key, etag;
    struct bm_http_resp rs;
    bm_buf_init(&query, 16384);
    bm_buf_init(&key, 4096);
    bm_buf_init(&etag, 256);
    bm_http_resp_init(&rs);
    /* The signed query must be sorted by name and RFC 3986-encoded (docs/testing.md). */
    bm_err rc = names_check(bucket, "", em);
    if (rc == BM_OK && token != NULL && *token != '\0') {
        rc = bm_buf_append_str(&query, "?continuation-token=");
        if (rc == BM_OK)
            rc = bm_url_encode(token, strlen(token), NULL, false, &query);
        if (rc == BM_OK)
            rc = bm_buf_append_str(&query, "&list-type=2");
    } else if (rc == BM_OK) {
        rc = bm_buf_append_str(&query, "?list-type=2");
    }
    if (rc == BM_OK && prefix != NULL && *prefix != '\0') {
        rc = bm_buf_append_str(&query, "&prefix=");
        if (rc == BM_OK)
            rc = bm_url_encode(prefix, strlen(prefix), NULL, false, &query);
    }
    int attempts;
    if (rc == BM_OK) {
        struct attempt a = {.aws = aws,
                            .method = "GET",
                            .bucket = bucket,
                            .key = "",
                            .query = query.data,
                            .max_body = 16u << 20,
                            .rs = &rs,
                            .what = "ListObjectsV2"};
        rc = with_retries(&a, NULL, &attempts, em);
    }
    bm_buf_reset(next);
    if (rc == BM_OK && rs.body.data != NULL) {
        const char *p = rs.body.data;
        const char *end = p + rs.body.len;
        struct bm_str c, t;
        while (rc == BM_OK && (p = bm__xml_find(p, end, "Contents", &c)) != NULL) {
            const char *ce = c.p + c.len;
            uint64_t size = 0;
            if (bm__xml_find(c.p, ce, "Key", &t) == NULL) {
                rc = bm_errmsg_set(em, BM_E_UPSTREAM, "ListObjectsV2: <Contents> without <Key>");
                break;
            }
            rc = bm__xml_text(t, &key);
            if (rc == BM_OK && bm__xml_find(c.p, ce, "Size", &t) != NULL)
                for (size_t i = 0; i < t.len && t.p[i] >= '0' && t.p[i] <= '9'; i++)
                    size = size * 10 + (uint64_t)(t.p[i] - '0');
            bm_buf_reset(&etag);
            if (rc == BM_OK && bm__xml_find(c.p, ce, "ETag", &t) != NULL)
                rc = bm__xml_text(t, &etag);
            if (rc == BM_OK && etag.data == NULL)
                rc = bm_buf_append(&etag, "", 0);
            if (rc == BM_OK) {
                /* ETags come quoted: "\"abc\"". */
                char *e = etag.data;
                size_t el = etag.len;
                if (el >= 2 && e[0] == '"' && e[el - 1] == '"') {
                    memmove(e, e + 1, el - 2);
                    e[el - 2] = '\0';
                }
                rc = fn(ctx, key.data, size, e);
            }
        }
        struct bm_str trunc, nt;
        if (rc == BM_OK && bm__xml_find(rs.body.data, end, "IsTruncated", &trunc) != NULL &&
            trunc.len == 4 && memcmp(trunc.p, "true", 4) == 0) {
            if (bm__xml_find(rs.body.data, end, "NextContinuationToken", &nt) == NULL)
                rc = bm_errmsg_set(em, BM_E_UPSTREAM, "ListObjectsV2: truncated without token");
            else
                rc = bm__xml_text(nt, next);
        }
    }
    bm_http_resp_cleanup(&rs);
    bm_buf_cleanup(&query);
    bm_buf_cleanup(&key);
    bm_buf_cleanup(&etag);
    return rc;
}
