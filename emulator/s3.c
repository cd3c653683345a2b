/* s3.c: the S3 REST-XML API, path-style or virtual-hosted (bucket in the Host header):
 * routing of method, path and subresource to an operation, the bucket operations and
 * ListObjects(V2). Object operations live in s3_object.c, multipart uploads in s3_multipart.c,
 * notification configurations and events in s3_notify.c. */
#include "emulator/emu_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool bm__emu_s3_param(const struct emu_req *rq, const char *name, char *out, size_t cap)
{
    struct bm_url_pair p;
    size_t pos = 0, n = strlen(name);
    while (rq->query != NULL && bm_url_query_next(rq->query, rq->query_len, &pos, &p)) {
        if (p.name_len != n || memcmp(p.name, name, n) != 0)
            continue;
        struct bm_buf b;
        bm_buf_init(&b, cap - 1);
        bool ok = bm_url_decode(p.value, p.value_len, true, &b) == BM_OK;
        if (ok) {
            memcpy(out, b.data ? b.data : "", b.len);
            out[b.len] = '\0';
        }
        bm_buf_cleanup(&b);
        return ok;
    }
    return false;
}

/* Whether the query names a parameter (a subresource such as "?notification"). */
static bool has_sub(const struct emu_req *rq, const char *name)
{
    struct bm_url_pair p;
    size_t pos = 0, n = strlen(name);
    while (rq->query != NULL && bm_url_query_next(rq->query, rq->query_len, &pos, &p)) {
        if (p.name_len == n && memcmp(p.name, name, n) == 0)
            return true;
    }
    return false;
}

/* Object requests may carry these parameters; any other one is a subresource (?acl,
 * ?tagging, ?uploads ...) that is not emulated. */
static bool plain_object_query(const struct emu_req *rq)
{
    struct bm_url_pair p;
    size_t pos = 0;
    while (rq->query != NULL && bm_url_query_next(rq->query, rq->query_len, &pos, &p)) {
        bool ok = (p.name_len == 9 && memcmp(p.name, "versionId", 9) == 0) ||
                  (p.name_len == 4 && memcmp(p.name, "x-id", 4) == 0) ||
                  (p.name_len > 6 && memcmp(p.name, "X-Amz-", 6) == 0) ||
                  (p.name_len > 9 && memcmp(p.name, "response-", 9) == 0);
        if (!ok)
            return false;
    }
    return true;
}

/* The bucket named by a virtual-hosted-style Host header, as LocalStack and AWS accept them:
 * "BUCKET.s3.localhost.localstack.cloud:4566", "BUCKET.s3.us-east-1.amazonaws.com",
 * "BUCKET.localhost:4566". The last ".s3." splits (bucket names may hold dots). Returns the
 * bucket's length, 0 for a path-style host ("127.0.0.1:4566", "s3.localhost...", "localhost"). */
static size_t host_bucket(const struct emu_req *rq, const char **bucket)
{
    const char *h = bm__emu_header(rq, "Host");
    if (h == NULL)
        return 0;
    size_t n = strcspn(h, ":");
    const char *cut = NULL;
    for (const char *p = h; p + 4 <= h + n; p++) {
        if (strncasecmp(p, ".s3.", 4) == 0 || strncasecmp(p, ".s3-", 4) == 0)
            cut = p;
    }
    if (cut == NULL && n > 10 && strncasecmp(h + n - 10, ".localhost", 10) == 0)
        cut = h + n - 10;
    *bucket = h;
    return cut != NULL ? (size_t)(cut - h) : 0;
}

/* Splits the request into bucket and key, each percent-decoded once on its own (keys may hold
 * any byte): the bucket from the Host header when it names one, else the path's first
 * segment. The path is split BEFORE decoding, as S3 does: "/logs%2FAWSLogs/x" names a bucket
 * "logs/AWSLogs", which no bucket can be (BM_E_BAD_REQUEST: InvalidBucketName), never the
 * object AWSLogs/x of bucket "logs". */
static bm_err split_path(const struct emu_req *rq, struct emu_s3_target *t)
{
    memset(t, 0, sizeof *t);
    const char *hb;
    size_t hblen = host_bucket(rq, &hb);
    const char *p = rq->path, *end = rq->path + rq->path_len;
    if (p == end || *p != '/')
        return BM_E_BAD_REQUEST;
    p++;
    const char *bucket = hb, *key = p;
    size_t blen = hblen;
    bool bucket_encoded = false;
    if (hblen == 0) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        bucket = p;
        blen = slash ? (size_t)(slash - p) : (size_t)(end - p);
        bucket_encoded = true;
        key = slash ? slash + 1 : end;
        if (blen == 0 && key < end)
            return BM_E_BAD_REQUEST; /* "//key": an empty bucket name, not ListBuckets */
    }
    struct bm_buf d;
    bm_buf_init(&d, 64 * 1024);
    bm_err rc = BM_OK;
    if (blen > 0) {
        rc = bucket_encoded ? bm_url_decode(bucket, blen, false, &d)
                            : bm_buf_append(&d, bucket, blen);
        if (rc == BM_OK &&
            (memchr(d.data, '/', d.len) != NULL || memchr(d.data, '\0', d.len) != NULL))
            rc = BM_E_BAD_REQUEST;
        if (rc == BM_OK && (t->bucket = bm_strndup(d.data, d.len)) == NULL)
            rc = BM_E_NOMEM;
    }
    bm_buf_reset(&d);
    if (rc == BM_OK && key < end) {
        rc = bm_url_decode(key, (size_t)(end - key), false, &d);
        if (rc == BM_OK && d.len > 0) {
            t->key_len = d.len;
            if ((t->key = bm_strndup(d.data, d.len)) == NULL)
                rc = BM_E_NOMEM;
        }
    }
    bm_buf_cleanup(&d);
    if (rc != BM_OK) {
        BM_FREE(t->bucket);
        BM_FREE(t->key);
    }
    return rc;
}

void bm__emu_s3_resolve(struct emu_req *rq)
{
    struct emu_s3_target t;
    const char *m = rq->method;
    rq->op = NULL;
    if (split_path(rq, &t) != BM_OK)
        return;
    if (t.bucket == NULL) {
        rq->op = strcmp(m, "GET") == 0 ? "ListBuckets" : NULL;
    } else if (t.key == NULL) {
        if (strcmp(m, "PUT") == 0)
            rq->op = has_sub(rq, "notification") ? "PutBucketNotificationConfiguration"
                     : plain_object_query(rq)    ? "CreateBucket"
                                                 : NULL;
        else if (strcmp(m, "GET") == 0)
            rq->op = has_sub(rq, "notification") ? "GetBucketNotificationConfiguration"
                     : has_sub(rq, "uploads")    ? "ListMultipartUploads"
                     : has_sub(rq, "location")   ? "GetBucketLocation"
                     : has_sub(rq, "list-type")  ? "ListObjectsV2"
                                                 : "ListObjects";
        else if (strcmp(m, "HEAD") == 0)
            rq->op = "HeadBucket";
        else if (strcmp(m, "DELETE") == 0)
            rq->op = plain_object_query(rq) ? "DeleteBucket" : NULL;
        else if (strcmp(m, "POST") == 0)
            rq->op = has_sub(rq, "delete") ? "DeleteObjects" : NULL;
    } else if (has_sub(rq, "uploadId")) {
        /* UploadPartCopy (a PUT with x-amz-copy-source) is not emulated. */
        if (strcmp(m, "PUT") == 0)
            rq->op = bm__emu_header(rq, "x-amz-copy-source") ? NULL : "UploadPart";
        else if (strcmp(m, "POST") == 0)
            rq->op = "CompleteMultipartUpload";
        else if (strcmp(m, "DELETE") == 0)
            rq->op = "AbortMultipartUpload";
        else if (strcmp(m, "GET") == 0)
            rq->op = "ListParts";
    } else if (has_sub(rq, "uploads")) {
        rq->op = strcmp(m, "POST") == 0 ? "CreateMultipartUpload" : NULL;
    } else {
        if (!plain_object_query(rq))
            rq->op = NULL;
        else if (strcmp(m, "PUT") == 0)
            rq->op = bm__emu_header(rq, "x-amz-copy-source") ? "CopyObject" : "PutObject";
        else if (strcmp(m, "GET") == 0)
            rq->op = "GetObject";
        else if (strcmp(m, "HEAD") == 0)
            rq->op = "HeadObject";
        else if (strcmp(m, "DELETE") == 0)
            rq->op = "DeleteObject";
    }
    bm_free(t.bucket);
    bm_free(t.key);
}

struct emu_bucket *bm__emu_bucket_find(struct bm_emu *emu, const char *name)
{
    for (size_t i = 0; i < emu->n_buckets; i++) {
        if (strcmp(emu->buckets[i]->name, name) == 0)
            return emu->buckets[i];
    }
    return NULL;
}

static int key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c != 0 ? c : (alen < blen ? -1 : alen > blen);
}

struct emu_object *bm__emu_object_find(const struct emu_bucket *b, const char *key, size_t len,
                                       size_t *idx)
{
    size_t lo = 0, hi = b->n_objs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = key_cmp(b->objs[mid]->key, b->objs[mid]->key_len, key, len);
        if (c == 0) {
            if (idx)
                *idx = mid;
            return b->objs[mid];
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (idx)
        *idx = lo;
    return NULL;
}

bm_err bm__emu_s3_no_bucket(struct emu_req *rq, const char *name)
{
    snprintf(rq->err.res_name, sizeof rq->err.res_name, "BucketName");
    snprintf(rq->err.res_value, sizeof rq->err.res_value, "%s", name);
    return bm__emu_fail(rq, "NoSuchBucket", "The specified bucket does not exist");
}

/* Bucket naming rules of
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html (the parts that
 * matter for path-style requests). */
static bool valid_bucket_name(const char *n)
{
    size_t len = strlen(n);
    if (len < 3 || len > 63)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = n[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
            return false;
    }
    return n[0] != '-' && n[0] != '.' && n[len - 1] != '-' && n[len - 1] != '.' &&
           strstr(n, "..") == NULL;
}

/* The LocationConstraint of a CreateBucketConfiguration body into region: the emulator's own
 * region when there is no body or no constraint, as a request to its endpoint would get. S3
 * refuses a constraint of another region than the request was sent (signed) for:
 * IllegalLocationConstraintException. "EU" is S3's old name of eu-west-1. */
static bm_err location_constraint(struct emu_req *rq, char region[32])
{
    snprintf(region, 32, "%s", rq->emu->region);
    if (rq->body.len == 0)
        return BM_OK;
    struct emu_xml *x = NULL;
    bm_err rc = bm__emu_xml_parse(rq->body.data, rq->body.len, &x);
    if (rc == BM_E_NOMEM)
        return rc;
    if (rc != BM_OK || strcmp(x->name, "CreateBucketConfiguration") != 0) {
        bm__emu_xml_free(x);
        return bm__emu_fail(rq, "MalformedXML",
                            "The XML you provided was not well-formed or did not validate "
                            "against our published schema");
    }
    const struct emu_xml *lc = bm__emu_xml_child(x, "LocationConstraint");
    const char *want = lc && lc->text ? lc->text : "";
    if (strcmp(want, "EU") == 0)
        want = "eu-west-1";
    if (*want == '\0') {
        rc = BM_OK;
    } else if (!bm_region_valid(want)) {
        rc = bm__emu_fail(rq, "InvalidLocationConstraint",
                          "The specified location-constraint is not valid");
    } else if (rq->signed_region[0] != '\0' && strcmp(want, rq->signed_region) != 0) {
        rc = bm__emu_fail(rq, "IllegalLocationConstraintException",
                          "The %s location constraint is incompatible for the region specific "
                          "endpoint this request was sent to.",
                          want);
    } else {
        snprintf(region, 32, "%s", want);
    }
    bm__emu_xml_free(x);
    return rc;
}

/* S3 (path-style, https://docs.aws.amazon.com/AmazonS3/latest/API/API_Error.html and the SDKs'
 * region redirectors): a request sent to one region's endpoint for a bucket of another region
 * gets 301 PermanentRedirect with x-amz-bucket-region; one that reached the bucket's own
 * endpoint but is signed for another region gets 400 AuthorizationHeaderMalformed naming the
 * <Region> expected. The emulator is one endpoint: a request signed for its own region
 * (--region) was sent to "that region's endpoint" and gets the 301; one signed for a third
 * region gets the 400. CreateBucket, ListBuckets and GetBucketLocation answer from any
 * region, and so does an unsigned request (there is no region to compare). Counted as the
 * operation "RegionRedirect" in /_emulator/requests. */
bm_err bm__emu_s3_region_check(struct emu_req *rq, struct emu_resp *rs)
{
    const char *op = rq->op;
    if (op == NULL || rq->signed_region[0] == '\0' || strcmp(op, "CreateBucket") == 0 ||
        strcmp(op, "ListBuckets") == 0 || strcmp(op, "GetBucketLocation") == 0)
        return BM_OK;
    struct emu_s3_target t;
    bm_err rc = split_path(rq, &t);
    if (rc != BM_OK || t.bucket == NULL) {
        bm_free(t.bucket);
        bm_free(t.key);
        return rc == BM_E_NOMEM ? rc : BM_OK; /* the handler answers what is wrong */
    }
    char region[32] = "";
    pthread_mutex_lock(&rq->emu->mu);
    const struct emu_bucket *b = bm__emu_bucket_find(rq->emu, t.bucket);
    if (b != NULL)
        snprintf(region, sizeof region, "%s", b->region[0] ? b->region : rq->emu->region);
    pthread_mutex_unlock(&rq->emu->mu);
    if (region[0] != '\0' && strcmp(region, rq->signed_region) != 0) {
        rq->op = "RegionRedirect";
        if (strcmp(rq->signed_region, rq->emu->region) == 0) {
            rc = bm__emu_resp_header(rs, "x-amz-bucket-region", "%s", region);
            snprintf(rq->err.res_name, sizeof rq->err.res_name, "Endpoint");
            snprintf(rq->err.res_value, sizeof rq->err.res_value, "s3.%s.amazonaws.com", region);
            if (rc == BM_OK)
                rc = bm__emu_fail(rq, "PermanentRedirect",
                                  "The bucket you are attempting to access must be addressed "
                                  "using the specified endpoint. Please send all future "
                                  "requests to this endpoint.");
        } else {
            /* A HEAD answer has no body to carry <Region>: S3 names it in the header (the
             * SDKs' redirectors read HeadObject's 400 so). */
            if (strcmp(rq->method, "HEAD") == 0)
                rc = bm__emu_resp_header(rs, "x-amz-bucket-region", "%s", region);
            if (rc != BM_OK)
                goto out;
            snprintf(rq->err.res_name, sizeof rq->err.res_name, "Region");
            snprintf(rq->err.res_value, sizeof rq->err.res_value, "%s", region);
            rc = bm__emu_fail(rq, "AuthorizationHeaderMalformed",
                              "The authorization header is malformed; the region '%s' is "
                              "wrong; expecting '%s'",
                              rq->signed_region, region);
        }
        BM_LOG(BM_INFO, "emu", "s3_region_redirect", "bucket is in another region",
               BM_KV_STR("req_id", rq->req_id), BM_KV_STR("bucket", t.bucket),
               BM_KV_STR("region", region), BM_KV_STR("signed_for", rq->signed_region));
    }
out:
    bm_free(t.bucket);
    bm_free(t.key);
    return rc;
}

static bm_err create_bucket(struct emu_req *rq, struct emu_resp *rs, const char *name)
{
    struct bm_emu *emu = rq->emu;
    if (!valid_bucket_name(name)) {
        snprintf(rq->err.res_name, sizeof rq->err.res_name, "BucketName");
        snprintf(rq->err.res_value, sizeof rq->err.res_value, "%s", name);
        return bm__emu_fail(rq, "InvalidBucketName", "The specified bucket is not valid.");
    }
    char region[32];
    bm_err rc = location_constraint(rq, region);
    if (rc != BM_OK)
        return rc;
    pthread_mutex_lock(&emu->mu);
    if (bm__emu_bucket_find(emu, name) != NULL) {
        /* us-east-1 answers 200 to its owner re-creating a bucket; other regions 409. */
        if (strcmp(emu->region, "us-east-1") != 0)
            rc = bm__emu_fail(rq, "BucketAlreadyOwnedByYou",
                              "Your previous request to create the named bucket succeeded and "
                              "you already own it.");
    } else {
        struct emu_bucket *b = bm_calloc(1, sizeof *b);
        rc = b && (b->name = bm_strdup(name)) ? BM_OK : BM_E_NOMEM;
        if (rc == BM_OK)
            snprintf(b->region, sizeof b->region, "%s", region);
        if (rc == BM_OK)
            rc = bm__emu_grow(&emu->buckets, &emu->cap_buckets, emu->n_buckets + 1,
                              sizeof *emu->buckets);
        if (rc == BM_OK) {
            b->created_ms = rq->now_ms;
            emu->buckets[emu->n_buckets++] = b;
            bm__emu_dirty(emu);
        } else {
            bm__emu_bucket_free(b);
        }
    }
    pthread_mutex_unlock(&emu->mu);
    if (rc == BM_OK)
        rc = bm__emu_resp_header(rs, "Location", "/%s", name);
    return rc;
}

static bm_err delete_bucket(struct emu_req *rq, struct emu_resp *rs, const char *name)
{
    struct bm_emu *emu = rq->emu;
    bm_err rc = BM_OK;
    pthread_mutex_lock(&emu->mu);
    struct emu_bucket *b = bm__emu_bucket_find(emu, name);
    if (b == NULL) {
        rc = bm__emu_s3_no_bucket(rq, name);
    } else if (b->n_objs > 0) {
        rc = bm__emu_fail(rq, "BucketNotEmpty", "The bucket you tried to delete is not empty");
    } else {
        for (size_t i = 0; i < emu->n_buckets; i++) {
            if (emu->buckets[i] == b) {
                memmove(&emu->buckets[i], &emu->buckets[i + 1],
                        (emu->n_buckets - i - 1) * sizeof *emu->buckets);
                emu->n_buckets--;
                break;
            }
        }
        bm__emu_bucket_free(b);
        bm__emu_dirty(emu);
        rs->status = 204;
    }
    pthread_mutex_unlock(&emu->mu);
    return rc;
}

static bm_err list_buckets(struct emu_req *rq, struct emu_resp *rs)
{
    struct bm_emu *emu = rq->emu;
    struct bm_buf *b = &rs->body;
    bm_err rc =
        bm_buf_appendf(b,
                       EMU_S3_XML_DECL "<ListAllMyBucketsResult xmlns=\"%s\"><Owner><ID>%s</ID>"
                                       "<DisplayName>bmas</DisplayName></Owner><Buckets>",
                       EMU_S3_NS, EMU_ACCOUNT);
    pthread_mutex_lock(&emu->mu);
    for (size_t i = 0; i < emu->n_buckets && rc == BM_OK; i++) {
        char when[25];
        bm__emu_iso_ms(emu->buckets[i]->created_ms, when);
        if ((rc = bm_buf_append_str(b, "<Bucket>")) == BM_OK &&
            (rc = bm__emu_xml_elem(b, "Name", emu->buckets[i]->name,
                                   strlen(emu->buckets[i]->name))) == BM_OK)
            rc = bm_buf_appendf(b, "<CreationDate>%s</CreationDate></Bucket>", when);
    }
    pthread_mutex_unlock(&emu->mu);
    if (rc == BM_OK)
        rc = bm_buf_append_str(b, "</Buckets></ListAllMyBucketsResult>");
    rs->content_type = "application/xml";
    return rc;
}

/* ---- ListObjects(V2) ------------------------------------------------------------------ */
struct list_args {
    char prefix[1024], delim[64], token[2048], start_after[1024], marker[1024];
    long max_keys;
    bool url_encode, v2;
};

/* Appends <name>value</name>, URL-encoded as S3 does for EncodingType=url (form style, '/'
 * kept, which botocore decodes with unquote_plus). */
bm_err bm__emu_s3_key_elem(struct bm_buf *b, const char *name, const char *s, size_t len, bool enc)
{
    if (!enc)
        return bm__emu_xml_elem(b, name, s, len);
    struct bm_buf e;
    bm_buf_init(&e, 64 * 1024);
    bm_err rc = bm_url_encode(s, len, "/", true, &e);
    if (rc == BM_OK)
        rc = bm__emu_xml_elem(b, name, e.data ? e.data : "", e.len);
    bm_buf_cleanup(&e);
    return rc;
}

/* Continuation tokens are opaque to clients: base64 of 'K' + last key or 'P' + last prefix. */
static bm_err make_token(struct bm_buf *b, char kind, const char *s, size_t len)
{
    struct bm_buf raw, enc;
    bm_buf_init(&raw, 4096);
    bm_buf_init(&enc, 8192);
    bm_err rc;
    if ((rc = bm_buf_append_char(&raw, kind)) == BM_OK &&
        (rc = bm_buf_append(&raw, s, len)) == BM_OK &&
        (rc = bm_base64_encode(raw.data, raw.len, &enc)) == BM_OK)
        rc = bm__emu_xml_elem(b, "NextContinuationToken", enc.data, enc.len);
    bm_buf_cleanup(&raw);
    bm_buf_cleanup(&enc);
    return rc;
}

static bm_err list_objects(struct emu_req *rq, struct emu_resp *rs, const char *name, bool v2)
{
    struct bm_emu *emu = rq->emu;
    struct list_args a = {.max_keys = 1000, .v2 = v2};
    char num[32], enc[8];
    struct bm_buf tok, items;
    bm_err rc = BM_OK;
    bm__emu_s3_param(rq, "prefix", a.prefix, sizeof a.prefix);
    bm__emu_s3_param(rq, "delimiter", a.delim, sizeof a.delim);
    bm__emu_s3_param(rq, "start-after", a.start_after, sizeof a.start_after);
    bm__emu_s3_param(rq, "marker", a.marker, sizeof a.marker);
    a.url_encode =
        bm__emu_s3_param(rq, "encoding-type", enc, sizeof enc) && strcmp(enc, "url") == 0;
    if (bm__emu_s3_param(rq, "max-keys", num, sizeof num)) {
        char *end = NULL;
        a.max_keys = strtol(num, &end, 10);
        if (*end != '\0' || a.max_keys < 0)
            return bm__emu_fail(rq, "InvalidArgument",
                                "Provided max-keys not an integer or "
                                "within integer range");
        if (a.max_keys > 1000)
            a.max_keys = 1000;
    }
    bm_buf_init(&tok, 4096);
    bm_buf_init(&items, rs->body.max);
    char kind = 'K';
    const char *from = v2 ? a.start_after : a.marker;
    if (v2 && bm__emu_s3_param(rq, "continuation-token", a.token, sizeof a.token)) {
        if (bm_base64_decode(a.token, strlen(a.token), &tok) != BM_OK || tok.len == 0 ||
            (tok.data[0] != 'K' && tok.data[0] != 'P')) {
            bm_buf_cleanup(&tok);
            bm_buf_cleanup(&items);
            return bm__emu_fail(rq, "InvalidArgument",
                                "The continuation token provided is "
                                "incorrect");
        }
        kind = tok.data[0];
        from = tok.data + 1;
    }
    size_t from_len = strlen(from), plen = strlen(a.prefix), dlen = strlen(a.delim);
    long count = 0;
    bool truncated = false;
    const char *last = NULL, *last_prefix = NULL;
    size_t last_len = 0, last_prefix_len = 0;

    pthread_mutex_lock(&emu->mu);
    struct emu_bucket *b = bm__emu_bucket_find(emu, name);
    if (b == NULL) {
        rc = bm__emu_s3_no_bucket(rq, name);
        goto unlock;
    }
    size_t i = 0;
    bm__emu_object_find(b, from, from_len, &i);
    for (; i < b->n_objs && rc == BM_OK; i++) {
        const struct emu_object *o = b->objs[i];
        if (from_len > 0 && key_cmp(o->key, o->key_len, from, from_len) <= 0)
            continue;
        /* A token that ended on a common prefix resumes after every key under it. */
        if (kind == 'P' && o->key_len >= from_len && memcmp(o->key, from, from_len) == 0)
            continue;
        if (o->key_len < plen || memcmp(o->key, a.prefix, plen) != 0)
            continue;
        const char *d = NULL;
        if (dlen > 0) {
            for (size_t k = plen; k + dlen <= o->key_len && d == NULL; k++) {
                if (memcmp(o->key + k, a.delim, dlen) == 0)
                    d = o->key + k;
            }
        }
        size_t cp_len = d ? (size_t)(d - o->key) + dlen : 0;
        if (d != NULL && last_prefix != NULL && cp_len == last_prefix_len &&
            memcmp(o->key, last_prefix, cp_len) == 0)
            continue; /* same common prefix as the previous key */
        if (count == a.max_keys) {
            truncated = true;
            break;
        }
        count++;
        if (d != NULL) {
            last_prefix = o->key;
            last_prefix_len = cp_len;
            last = NULL;
            if ((rc = bm_buf_append_str(&items, "<CommonPrefixes>")) == BM_OK &&
                (rc = bm__emu_s3_key_elem(&items, "Prefix", o->key, cp_len, a.url_encode)) == BM_OK)
                rc = bm_buf_append_str(&items, "</CommonPrefixes>");
            continue;
        }
        char when[25];
        last = o->key;
        last_len = o->key_len;
        bm__emu_iso_ms(o->mtime_ms, when);
        if ((rc = bm_buf_append_str(&items, "<Contents>")) == BM_OK &&
            (rc = bm__emu_s3_key_elem(&items, "Key", o->key, o->key_len, a.url_encode)) == BM_OK)
            rc = bm_buf_appendf(&items,
                                "<LastModified>%s</LastModified><ETag>&quot;%s&quot;</ETag>"
                                "<Size>%zu</Size><StorageClass>STANDARD</StorageClass>"
                                "</Contents>",
                                when, o->etag, o->len);
    }
    struct bm_buf *out = &rs->body;
    if (rc != BM_OK)
        goto unlock;
    rc = bm_buf_appendf(out, EMU_S3_XML_DECL "<ListBucketResult xmlns=\"%s\">", EMU_S3_NS);
    if (rc == BM_OK)
        rc = bm__emu_xml_elem(out, "Name", name, strlen(name));
    if (rc == BM_OK)
        rc = bm__emu_s3_key_elem(out, "Prefix", a.prefix, plen, a.url_encode);
    if (rc == BM_OK && dlen > 0)
        rc = bm__emu_s3_key_elem(out, "Delimiter", a.delim, dlen, a.url_encode);
    if (rc == BM_OK)
        rc = bm_buf_appendf(out, "<MaxKeys>%ld</MaxKeys>%s<IsTruncated>%s</IsTruncated>",
                            a.max_keys, a.url_encode ? "<EncodingType>url</EncodingType>" : "",
                            truncated ? "true" : "false");
    if (rc == BM_OK && v2) {
        rc = bm_buf_appendf(out, "<KeyCount>%ld</KeyCount>", count);
        if (rc == BM_OK && a.token[0] != '\0')
            rc = bm__emu_xml_elem(out, "ContinuationToken", a.token, strlen(a.token));
        if (rc == BM_OK && a.start_after[0] != '\0')
            rc = bm__emu_s3_key_elem(out, "StartAfter", a.start_after, strlen(a.start_after),
                                     a.url_encode);
        if (rc == BM_OK && truncated)
            rc = last ? make_token(out, 'K', last, last_len)
                      : make_token(out, 'P', last_prefix, last_prefix_len);
    } else if (rc == BM_OK) {
        rc = bm__emu_s3_key_elem(out, "Marker", a.marker, strlen(a.marker), a.url_encode);
        if (rc == BM_OK && truncated && dlen > 0)
            rc = last ? bm__emu_s3_key_elem(out, "NextMarker", last, last_len, a.url_encode)
                      : bm__emu_s3_key_elem(out, "NextMarker", last_prefix, last_prefix_len,
                                            a.url_encode);
    }
    if (rc == BM_OK)
        rc = bm_buf_append(out, items.data ? items.data : "", items.len);
    if (rc == BM_OK)
        rc = bm_buf_append_str(out, "</ListBucketResult>");
unlock:
    pthread_mutex_unlock(&emu->mu);
    rs->content_type = "application/xml";
    bm_buf_cleanup(&tok);
    bm_buf_cleanup(&items);
    return rc;
}

/* BM_OK and the bucket's region when it exists. */
static bm_err bucket_exists(struct emu_req *rq, const char *name, char region[32])
{
    pthread_mutex_lock(&rq->emu->mu);
    const struct emu_bucket *b = bm__emu_bucket_find(rq->emu, name);
    if (b != NULL)
        snprintf(region, 32, "%s", b->region[0] ? b->region : rq->emu->region);
    pthread_mutex_unlock(&rq->emu->mu);
    return b != NULL ? BM_OK : bm__emu_s3_no_bucket(rq, name);
}

bm_err bm__emu_s3_handle(struct emu_req *rq, struct emu_resp *rs)
{
    struct emu_s3_target t;
    bm_err rc = split_path(rq, &t);
    const char *op = rq->op;
    if (rc == BM_E_NOMEM)
        return rc;
    if (rc != BM_OK)
        return bm__emu_fail(rq, "InvalidBucketName",
                            "The specified bucket is not valid (or the URI cannot be parsed).");
    if (op == NULL) {
        rc = bm__emu_fail(rq, "NotImplemented",
                          "A header or query you provided implies functionality that is not "
                          "implemented by bmas-emulator");
    } else if (strcmp(op, "ListBuckets") == 0) {
        rc = list_buckets(rq, rs);
    } else if (strcmp(op, "CreateBucket") == 0) {
        rc = create_bucket(rq, rs, t.bucket);
    } else if (strcmp(op, "DeleteBucket") == 0) {
        rc = delete_bucket(rq, rs, t.bucket);
    } else if (strcmp(op, "HeadBucket") == 0) {
        char region[32];
        rc = bucket_exists(rq, t.bucket, region);
        if (rc == BM_OK)
            rc = bm__emu_resp_header(rs, "x-amz-bucket-region", "%s", region);
    } else if (strcmp(op, "GetBucketLocation") == 0) {
        char region[32];
        rc = bucket_exists(rq, t.bucket, region);
        rs->content_type = "application/xml";
        /* us-east-1 is the empty constraint. */
        if (rc == BM_OK)
            rc = bm_buf_appendf(&rs->body,
                                EMU_S3_XML_DECL "<LocationConstraint xmlns=\"%s\">%s"
                                                "</LocationConstraint>",
                                EMU_S3_NS, strcmp(region, "us-east-1") ? region : "");
    } else if (strcmp(op, "ListObjectsV2") == 0 || strcmp(op, "ListObjects") == 0) {
        rc = list_objects(rq, rs, t.bucket, strcmp(op, "ListObjectsV2") == 0);
    } else if (strcmp(op, "PutBucketNotificationConfiguration") == 0) {
        rc = bm__emu_s3_put_notification(rq, t.bucket);
    } else if (strcmp(op, "GetBucketNotificationConfiguration") == 0) {
        rc = bm__emu_s3_get_notification(rq, rs, t.bucket);
    } else if (strcmp(op, "DeleteObjects") == 0) {
        rc = bm__emu_s3_delete_objects(rq, rs, &t);
    } else if (strcmp(op, "PutObject") == 0) {
        rc = bm__emu_s3_put_object(rq, rs, &t);
    } else if (strcmp(op, "CopyObject") == 0) {
        rc = bm__emu_s3_copy_object(rq, rs, &t);
    } else if (strcmp(op, "GetObject") == 0 || strcmp(op, "HeadObject") == 0) {
        rc = bm__emu_s3_get_object(rq, rs, &t, strcmp(op, "HeadObject") == 0);
    } else if (strcmp(op, "DeleteObject") == 0) {
        rc = bm__emu_s3_delete_object(rq, rs, &t);
    } else {
        rc = bm__emu_s3_multipart(rq, rs, &t); /* BM_E_INTERNAL for an op it lacks too */
    }
    bm_free(t.bucket);
    bm_free(t.key);
    return rc;
}
