/* s3_multipart.c: S3 multipart uploads, which the AWS CLIs switch to for files over 8 MB:
 * CreateMultipartUpload, UploadPart, CompleteMultipartUpload (S3's checks on the parts list, the
 * "MD5 of the parts' MD5s"-N ETag, ObjectCreated:CompleteMultipartUpload events),
 * AbortMultipartUpload, ListParts and ListMultipartUploads. Pending uploads live in memory with
 * their bucket; only the assembled object is stored (and persisted) like any other. */
#include "emulator/emu_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* S3's limits: part numbers 1..10000, and every part but the last at least 5 MiB. */
#define MAX_PART_NUMBER 10000
#define MIN_PART_BYTES (5u * 1024 * 1024)
#define ID_CAP 64

void bm__emu_upload_free(struct emu_upload *u)
{
    if (u == NULL)
        return;
    for (size_t i = 0; i < u->n_parts; i++)
        bm_free(u->parts[i].data);
    bm_free(u->parts);
    bm__emu_object_free(u->tmpl);
    bm_free(u);
}

/* ---- lookups -------------------------------------------------------------------------- */
static bm_err no_upload(struct emu_req *rq, const char *id)
{
    snprintf(rq->err.res_name, sizeof rq->err.res_name, "UploadId");
    snprintf(rq->err.res_value, sizeof rq->err.res_value, "%s", id);
    return bm__emu_fail(rq, "NoSuchUpload",
                        "The specified upload does not exist. The upload ID may be invalid, or "
                        "the upload may have been aborted or completed.");
}

/* The uploadId parameter; an absent or oversized one names no upload. */
static bm_err upload_id(struct emu_req *rq, char id[ID_CAP])
{
    if (bm__emu_s3_param(rq, "uploadId", id, ID_CAP) && id[0] != '\0')
        return BM_OK;
    id[0] = '\0';
    return no_upload(rq, "");
}

/* The pending upload id of t's key (callers hold mu), with its bucket and its index in
 * b->uploads. An id is bound to the key it was created for, as in S3. */
static bm_err find_upload(struct emu_req *rq, const struct emu_s3_target *t, const char *id,
                          struct emu_bucket **bp, size_t *idx, struct emu_upload **out)
{
    struct emu_bucket *b = bm__emu_bucket_find(rq->emu, t->bucket);
    if (b == NULL)
        return bm__emu_s3_no_bucket(rq, t->bucket);
    for (size_t i = 0; i < b->n_uploads; i++) {
        struct emu_upload *u = b->uploads[i];
        if (strcmp(u->id, id) == 0 && u->tmpl->key_len == t->key_len &&
            memcmp(u->tmpl->key, t->key, t->key_len) == 0) {
            *bp = b;
            *idx = i;
            *out = u;
            return BM_OK;
        }
    }
    return no_upload(rq, id);
}

/* Takes an upload out of its bucket (callers hold mu): from then on no other request can
 * reach it, so it may be read and freed without the lock. */
static void detach(struct emu_bucket *b, size_t i)
{
    memmove(&b->uploads[i], &b->uploads[i + 1], (b->n_uploads - i - 1) * sizeof *b->uploads);
    b->n_uploads--;
}

/* The part numbered n, or NULL with *idx where it would be inserted (parts are sorted). */
static struct emu_part *part_find(const struct emu_upload *u, int n, size_t *idx)
{
    size_t lo = 0, hi = u->n_parts;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (u->parts[mid].number == n) {
            *idx = mid;
            return &u->parts[mid];
        }
        if (u->parts[mid].number < n)
            lo = mid + 1;
        else
            hi = mid;
    }
    *idx = lo;
    return NULL;
}

/* A decimal integer in [min, max]; false when it is anything else. */
static bool parse_int(const char *s, long min, long max, long *out)
{
    char *end = NULL;
    if (s == NULL || *s < '0' || *s > '9')
        return false;
    long v = strtol(s, &end, 10);
    if (*end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static bm_err owner_xml(struct bm_buf *b)
{
    return bm_buf_appendf(b,
                          "<Initiator><ID>%s</ID><DisplayName>bmas</DisplayName></Initiator>"
                          "<Owner><ID>%s</ID><DisplayName>bmas</DisplayName></Owner>"
                          "<StorageClass>STANDARD</StorageClass>",
                          EMU_ACCOUNT, EMU_ACCOUNT);
}

/* ---- CreateMultipartUpload ------------------------------------------------------------ */
static bm_err create_upload(struct emu_req *rq, struct emu_resp *rs, const struct emu_s3_target *t)
{
    struct bm_emu *emu = rq->emu;
    struct emu_upload *u = bm_calloc(1, sizeof *u);
    bm_err rc = u && (u->tmpl = bm__emu_s3_object_new(t, rq->now_ms)) ? BM_OK : BM_E_NOMEM;
    /* The object's headers and metadata come with the creation, not with the parts. */
    if (rc == BM_OK)
        rc = bm__emu_s3_take_headers(rq, u->tmpl);
    if (rc != BM_OK) {
        bm__emu_upload_free(u);
        return rc;
    }
    u->created_ms = rq->now_ms;
    char id[sizeof u->id];
    pthread_mutex_lock(&emu->mu);
    struct emu_bucket *b = bm__emu_bucket_find(emu, t->bucket);
    if (b == NULL)
        rc = bm__emu_s3_no_bucket(rq, t->bucket);
    else
        rc = bm__emu_grow(&b->uploads, &b->cap_uploads, b->n_uploads + 1, sizeof *b->uploads);
    if (rc == BM_OK) {
        bm__emu_uuid(emu, u->id);
        memcpy(id, u->id, sizeof id); /* u may be completed by another thread once unlocked */
        b->uploads[b->n_uploads++] = u;
    }
    pthread_mutex_unlock(&emu->mu);
    if (rc != BM_OK) {
        bm__emu_upload_free(u);
        return rc;
    }
    struct bm_buf *o = &rs->body;
    rs->content_type = "application/xml";
    rc = bm_buf_appendf(o, EMU_S3_XML_DECL "<InitiateMultipartUploadResult xmlns=\"%s\">",
                        EMU_S3_NS);
    if (rc == BM_OK)
        rc = bm__emu_xml_elem(o, "Bucket", t->bucket, strlen(t->bucket));
    if (rc == BM_OK)
        rc = bm__emu_xml_elem(o, "Key", t->key, t->key_len);
    if (rc == BM_OK)
        rc = bm_buf_appendf(o, "<UploadId>%s</UploadId></InitiateMultipartUploadResult>", id);
    return rc;
}

/* ---- UploadPart ----------------------------------------------------------------------- */
static bm_err upload_part(struct emu_req *rq, struct emu_resp *rs, const struct emu_s3_target *t)
{
    struct bm_emu *emu = rq->emu;
    char id[ID_CAP], num[16];
    long n = 0;
    bm_err rc = upload_id(rq, id);
    if (rc != BM_OK)
        return rc;
    if (!bm__emu_s3_param(rq, "partNumber", num, sizeof num) ||
        !parse_int(num, 1, MAX_PART_NUMBER, &n))
        return bm__emu_fail(rq, "InvalidArgument",
                            "Part number must be an integer between 1 and 10000, inclusive");
    size_t len = rq->body.len;
    if (len > emu->max_object)
        return bm__emu_fail(rq, "EntityTooLarge",
                            "Your proposed upload exceeds the maximum allowed size");
    /* The body is already de-chunked (aws-chunked) by the verifier, as for PutObject. */
    const char *data = rq->body.data ? rq->body.data : "";
    unsigned char md5[BM_MD5_LEN];
    if ((rc = bm__emu_s3_check_digests(rq, rs, data, len)) != BM_OK ||
        (rc = bm_md5(data, len, md5)) != BM_OK)
        return rc;

    pthread_mutex_lock(&emu->mu);
    struct emu_bucket *b;
    struct emu_upload *u;
    size_t ui, pi;
    rc = find_upload(rq, t, id, &b, &ui, &u);
    struct emu_part *p = rc == BM_OK ? part_find(u, (int)n, &pi) : NULL;
    /* Pending parts are held in memory: one upload may hold at most one object's worth. */
    if (rc == BM_OK && u->bytes - (p ? p->len : 0) + len > emu->max_object)
        rc = bm__emu_fail(rq, "EntityTooLarge",
                          "The parts of this upload exceed the maximum allowed object size");
    if (rc == BM_OK && p == NULL &&
        (rc = bm__emu_grow(&u->parts, &u->cap_parts, u->n_parts + 1, sizeof *u->parts)) == BM_OK) {
        memmove(&u->parts[pi + 1], &u->parts[pi], (u->n_parts - pi) * sizeof *u->parts);
        u->n_parts++;
        p = &u->parts[pi];
        memset(p, 0, sizeof *p);
        p->number = (int)n;
    }
    if (rc == BM_OK) {
        /* Uploading a part number again replaces that part, as in S3. */
        u->bytes = u->bytes - p->len + len;
        bm_free(p->data);
        p->data = len > 0 ? bm_buf_steal(&rq->body) : NULL;
        p->len = len;
        memcpy(p->md5, md5, sizeof md5);
        p->mtime_ms = rq->now_ms;
    }
    pthread_mutex_unlock(&emu->mu);
    if (rc != BM_OK)
        return rc;
    char hex[BM_MD5_HEX_LEN + 1];
    bm_hex(md5, sizeof md5, hex);
    return bm__emu_resp_header(rs, "ETag", "\"%s\"", hex);
}

/* ---- CompleteMultipartUpload ---------------------------------------------------------- */
struct want {
    long number;
    char etag[EMU_ETAG_MAX]; /* without quotes */
    struct emu_part *part;
};

static bm_err malformed(struct emu_req *rq)
{
    return bm__emu_fail(rq, "MalformedXML",
                        "The XML you provided was not well-formed or did not validate against "
                        "our published schema");
}

/* The parts list of the request body, checked for S3's ascending order. */
static bm_err parse_parts(struct emu_req *rq, struct want **out, size_t *n_out)
{
    struct emu_xml *root = NULL;
    struct want *w = NULL;
    size_t n = 0;
    bm_err rc = bm__emu_xml_parse(rq->body.data ? rq->body.data : "", rq->body.len, &root);
    if (rc == BM_E_NOMEM)
        return rc;
    if (rc != BM_OK || strcmp(root->name, "CompleteMultipartUpload") != 0) {
        bm__emu_xml_free(root);
        return malformed(rq);
    }
    for (struct emu_xml *e = root->child; e != NULL; e = e->next)
        n += strcmp(e->name, "Part") == 0;
    if (n == 0 || n > MAX_PART_NUMBER || (w = bm_calloc(n, sizeof *w)) == NULL) {
        bm__emu_xml_free(root);
        return n == 0 || n > MAX_PART_NUMBER ? malformed(rq) : BM_E_NOMEM;
    }
    size_t i = 0;
    for (struct emu_xml *e = root->child; e != NULL && rc == BM_OK; e = e->next) {
        if (strcmp(e->name, "Part") != 0)
            continue;
        struct emu_xml *num = bm__emu_xml_child(e, "PartNumber");
        struct emu_xml *tag = bm__emu_xml_child(e, "ETag");
        if (num == NULL || tag == NULL || !parse_int(num->text, 0, 1000000, &w[i].number)) {
            rc = malformed(rq);
            break;
        }
        const char *s = tag->text;
        size_t len = strlen(s);
        if (len >= 2 && s[0] == '"' && s[len - 1] == '"') {
            s++;
            len -= 2;
        }
        snprintf(w[i].etag, sizeof w[i].etag, "%.*s", (int)len, s);
        if (i > 0 && w[i].number <= w[i - 1].number)
            rc = bm__emu_fail(rq, "InvalidPartOrder",
                              "The list of parts was not in ascending order. The parts list "
                              "must be specified in order by part number.");
        i++;
    }
    bm__emu_xml_free(root);
    if (rc != BM_OK) {
        bm_free(w);
        return rc;
    }
    *out = w;
    *n_out = n;
    return BM_OK;
}

/* Checks the listed parts against the upload (callers hold mu) and sums their sizes. */
static bm_err check_parts(struct emu_req *rq, struct emu_upload *u, struct want *w, size_t n,
                          uint64_t *total)
{
    *total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t idx;
        struct emu_part *p =
            w[i].number <= MAX_PART_NUMBER ? part_find(u, (int)w[i].number, &idx) : NULL;
        char hex[BM_MD5_HEX_LEN + 1];
        if (p != NULL)
            bm_hex(p->md5, sizeof p->md5, hex);
        if (p == NULL || strcasecmp(hex, w[i].etag) != 0)
            return bm__emu_fail(rq, "InvalidPart",
                                "One or more of the specified parts could not be found. The "
                                "part may not have been uploaded, or the specified entity tag "
                                "may not match the part's entity tag.");
        if (i + 1 < n && p->len < MIN_PART_BYTES)
            return bm__emu_fail(rq, "EntityTooSmall",
                                "Your proposed upload is smaller than the minimum allowed size");
        w[i].part = p;
        *total += p->len;
    }
    return *total > rq->emu->max_object
               ? bm__emu_fail(rq, "EntityTooLarge",
                              "Your proposed upload exceeds the maximum allowed size")
               : BM_OK;
}

/* Concatenates the listed parts of a detached upload into its object, freeing each part's
 * data once copied, and sets S3's multipart ETag: hex MD5 of the parts' binary MD5s, "-N". */
static bm_err assemble(struct emu_upload *u, struct want *w, size_t n, uint64_t total,
                       int64_t now_ms)
{
    struct emu_object *o = u->tmpl;
    unsigned char *md5s = bm_malloc(n * BM_MD5_LEN), d[BM_MD5_LEN];
    o->data = bm_malloc((size_t)total + 1);
    if (md5s == NULL || o->data == NULL) {
        bm_free(md5s);
        return BM_E_NOMEM;
    }
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        struct emu_part *p = w[i].part;
        if (p->len > 0)
            memcpy(o->data + off, p->data, p->len);
        off += p->len;
        memcpy(md5s + i * BM_MD5_LEN, p->md5, BM_MD5_LEN);
        bm_free(p->data);
        p->data = NULL;
    }
    o->data[off] = '\0';
    o->len = off;
    o->mtime_ms = now_ms;
    bm_err rc = bm_md5(md5s, n * BM_MD5_LEN, d);
    bm_free(md5s);
    if (rc != BM_OK)
        return rc;
    char hex[BM_MD5_HEX_LEN + 1];
    bm_hex(d, sizeof d, hex);
    snprintf(o->etag, sizeof o->etag, "%s-%zu", hex, n);
    return BM_OK;
}

static bm_err complete_upload(struct emu_req *rq, struct emu_resp *rs,
                              const struct emu_s3_target *t)
{
    struct bm_emu *emu = rq->emu;
    char id[ID_CAP];
    struct want *w = NULL;
    size_t n = 0;
    uint64_t total = 0;
    bm_err rc = upload_id(rq, id);
    if (rc != BM_OK || (rc = parse_parts(rq, &w, &n)) != BM_OK)
        return rc;
    pthread_mutex_lock(&emu->mu);
    struct emu_bucket *b;
    struct emu_upload *u = NULL;
    size_t ui;
    rc = find_upload(rq, t, id, &b, &ui, &u);
    if (rc == BM_OK)
        rc = check_parts(rq, u, w, n, &total);
    if (rc == BM_OK)
        detach(b, ui); /* the copy below runs without the lock */
    pthread_mutex_unlock(&emu->mu);
    if (rc != BM_OK) {
        bm_free(w);
        return rc;
    }
    rc = assemble(u, w, n, total, rq->now_ms);
    bm_free(w);
    struct emu_object *o = u->tmpl;
    u->tmpl = NULL;
    bm__emu_upload_free(u); /* parts left out of the list are discarded, as in S3 */
    if (rc != BM_OK) {
        bm__emu_object_free(o);
        return rc;
    }
    char etag[EMU_ETAG_MAX];
    memcpy(etag, o->etag, sizeof etag);
    rc = bm__emu_s3_store_object(rq, t, o, "ObjectCreated:CompleteMultipartUpload");
    if (rc != BM_OK)
        return rc;

    struct bm_buf *out = &rs->body, loc;
    rs->content_type = "application/xml";
    bm_buf_init(&loc, 64 * 1024);
    if ((rc = bm_buf_appendf(&loc, "http://%s/", rq->host)) == BM_OK &&
        (rc = bm_url_encode(t->bucket, strlen(t->bucket), NULL, false, &loc)) == BM_OK &&
        (rc = bm_buf_append_char(&loc, '/')) == BM_OK)
        rc = bm_url_encode(t->key, t->key_len, "/", false, &loc);
    if (rc == BM_OK)
        rc = bm_buf_appendf(out, EMU_S3_XML_DECL "<CompleteMultipartUploadResult xmlns=\"%s\">",
                            EMU_S3_NS);
    if (rc == BM_OK)
        rc = bm__emu_xml_elem(out, "Location", loc.data, loc.len);
    if (rc == BM_OK)
        rc = bm__emu_xml_elem(out, "Bucket", t->bucket, strlen(t->bucket));
    if (rc == BM_OK)
        rc = bm__emu_xml_elem(out, "Key", t->key, t->key_len);
    if (rc == BM_OK)
        rc = bm_buf_appendf(out, "<ETag>&quot;%s&quot;</ETag></CompleteMultipartUploadResult>",
                            etag);
    bm_buf_cleanup(&loc);
    return rc;
}

/* ---- AbortMultipartUpload, ListParts -------------------------------------------------- */
static bm_err abort_upload(struct emu_req *rq, struct emu_resp *rs, const struct emu_s3_target *t)
{
    char id[ID_CAP];
    struct emu_bucket *b;
    struct emu_upload *u = NULL;
    size_t ui;
    bm_err rc = upload_id(rq, id);
    if (rc != BM_OK)
        return rc;
    pthread_mutex_lock(&rq->emu->mu);
    rc = find_upload(rq, t, id, &b, &ui, &u);
    if (rc == BM_OK)
        detach(b, ui);
    pthread_mutex_unlock(&rq->emu->mu);
    if (rc == BM_OK) {
        bm__emu_upload_free(u);
        rs->status = 204;
    }
    return rc;
}

/* An optional integer query parameter in [0, max_ok] (larger values are capped to cap);
 * InvalidArgument when it is not a number. */
static bm_err int_param(struct emu_req *rq, const char *name, long cap, long *out)
{
    char num[32];
    long v;
    if (!bm__emu_s3_param(rq, name, num, sizeof num))
        return BM_OK;
    if (!parse_int(num, 0, 2147483647L, &v))
        return bm__emu_fail(rq, "InvalidArgument",
                            "Provided %s not an integer or within "
                            "integer range",
                            name);
    *out = v > cap ? cap : v;
    return BM_OK;
}

static bm_err list_parts(struct emu_req *rq, struct emu_resp *rs, const struct emu_s3_target *t)
{
    char id[ID_CAP];
    long max = 1000, marker = 0;
    bm_err rc = upload_id(rq, id);
    if (rc != BM_OK || (rc = int_param(rq, "max-parts", 1000, &max)) != BM_OK ||
        (rc = int_param(rq, "part-number-marker", MAX_PART_NUMBER, &marker)) != BM_OK)
        return rc;
    struct bm_buf *o = &rs->body;
    struct emu_bucket *b;
    struct emu_upload *u;
    size_t ui, first;
    rs->content_type = "application/xml";
    pthread_mutex_lock(&rq->emu->mu);
    if ((rc = find_upload(rq, t, id, &b, &ui, &u)) != BM_OK)
        goto unlock;
    part_find(u, (int)marker + 1, &first); /* the first part after the marker */
    size_t count = u->n_parts - first < (size_t)max ? u->n_parts - first : (size_t)max;
    bool truncated = first + count < u->n_parts;
    rc = bm_buf_appendf(o, EMU_S3_XML_DECL "<ListPartsResult xmlns=\"%s\">", EMU_S3_NS);
    if (rc == BM_OK)
        rc = bm__emu_xml_elem(o, "Bucket", t->bucket, strlen(t->bucket));
    if (rc == BM_OK)
        rc = bm__emu_xml_elem(o, "Key", t->key, t->key_len);
    if (rc == BM_OK)
        rc = bm_buf_appendf(o,
                            "<UploadId>%s</UploadId><PartNumberMarker>%ld</PartNumberMarker>"
                            "<NextPartNumberMarker>%d</NextPartNumberMarker><MaxParts>%ld"
                            "</MaxParts><IsTruncated>%s</IsTruncated>",
                            u->id, marker, count ? u->parts[first + count - 1].number : 0, max,
                            truncated ? "true" : "false");
    for (size_t i = first; i < first + count && rc == BM_OK; i++) {
        const struct emu_part *p = &u->parts[i];
        char when[25], hex[BM_MD5_HEX_LEN + 1];
        bm__emu_iso_ms(p->mtime_ms, when);
        bm_hex(p->md5, sizeof p->md5, hex);
        rc = bm_buf_appendf(o,
                            "<Part><PartNumber>%d</PartNumber><LastModified>%s</LastModified>"
                            "<ETag>&quot;%s&quot;</ETag><Size>%zu</Size></Part>",
                            p->number, when, hex, p->len);
    }
    if (rc == BM_OK)
        rc = owner_xml(o);
    if (rc == BM_OK)
        rc = bm_buf_append_str(o, "</ListPartsResult>");
unlock:
    pthread_mutex_unlock(&rq->emu->mu);
    return rc;
}

/* ---- ListMultipartUploads ------------------------------------------------------------- */
struct listed {
    const struct emu_upload *u;
    size_t seq; /* creation order among uploads of the same key */
};

static int listed_cmp(const void *pa, const void *pb)
{
    const struct listed *a = pa, *b = pb;
    const struct emu_object *x = a->u->tmpl, *y = b->u->tmpl;
    int c = memcmp(x->key, y->key, x->key_len < y->key_len ? x->key_len : y->key_len);
    if (c == 0)
        c = x->key_len < y->key_len ? -1 : x->key_len > y->key_len;
    return c != 0 ? c : (a->seq < b->seq ? -1 : a->seq > b->seq);
}

static bm_err list_uploads(struct emu_req *rq, struct emu_resp *rs, const char *name)
{
    char prefix[1024] = "", kmark[1024] = "", umark[ID_CAP] = "", enc[8] = "", delim[8];
    long max = 1000;
    bm_err rc = int_param(rq, "max-uploads", 1000, &max);
    if (rc != BM_OK)
        return rc;
    if (bm__emu_s3_param(rq, "delimiter", delim, sizeof delim))
        return bm__emu_fail(rq, "NotImplemented",
                            "ListMultipartUploads with a delimiter is not implemented by "
                            "bmas-emulator");
    bm__emu_s3_param(rq, "prefix", prefix, sizeof prefix);
    bm__emu_s3_param(rq, "key-marker", kmark, sizeof kmark);
    bm__emu_s3_param(rq, "upload-id-marker", umark, sizeof umark);
    bool url = bm__emu_s3_param(rq, "encoding-type", enc, sizeof enc) && strcmp(enc, "url") == 0;
    size_t plen = strlen(prefix), klen = strlen(kmark);
    struct bm_buf *o = &rs->body;
    struct listed *l = NULL;
    rs->content_type = "application/xml";
    pthread_mutex_lock(&rq->emu->mu);
    struct emu_bucket *b = bm__emu_bucket_find(rq->emu, name);
    if (b == NULL) {
        rc = bm__emu_s3_no_bucket(rq, name);
        goto unlock;
    }
    if (b->n_uploads > 0 && (l = bm_calloc(b->n_uploads, sizeof *l)) == NULL) {
        rc = BM_E_NOMEM;
        goto unlock;
    }
    for (size_t i = 0; i < b->n_uploads; i++)
        l[i] = (struct listed){b->uploads[i], i};
    if (b->n_uploads > 1)
        qsort(l, b->n_uploads, sizeof *l, listed_cmp);
    /* Start after the key marker, or after the marked upload of that key (S3's pairing). */
    size_t from = 0;
    for (size_t i = 0; i < b->n_uploads && klen > 0; i++) {
        const struct emu_object *k = l[i].u->tmpl;
        int c = memcmp(k->key, kmark, k->key_len < klen ? k->key_len : klen);
        c = c != 0 ? c : (k->key_len < klen ? -1 : k->key_len > klen);
        if (c > 0)
            break;
        from = i + 1; /* a smaller key, or the marker key up to the marked upload */
        if (c == 0 && umark[0] != '\0' && strcmp(l[i].u->id, umark) == 0)
            break;
    }
    rc = bm_buf_appendf(o, EMU_S3_XML_DECL "<ListMultipartUploadsResult xmlns=\"%s\">", EMU_S3_NS);
    if (rc == BM_OK)
        rc = bm__emu_xml_elem(o, "Bucket", name, strlen(name));
    if (rc == BM_OK)
        rc = bm__emu_s3_key_elem(o, "KeyMarker", kmark, klen, url);
    if (rc == BM_OK)
        rc = bm__emu_xml_elem(o, "UploadIdMarker", umark, strlen(umark));
    if (rc == BM_OK)
        rc = bm__emu_s3_key_elem(o, "Prefix", prefix, plen, url);
    if (rc == BM_OK && url)
        rc = bm_buf_append_str(o, "<EncodingType>url</EncodingType>");
    if (rc == BM_OK)
        rc = bm_buf_appendf(o, "<MaxUploads>%ld</MaxUploads>", max);
    long count = 0;
    const struct emu_upload *last = NULL;
    bool truncated = false;
    for (size_t i = from; i < b->n_uploads && rc == BM_OK; i++) {
        const struct emu_upload *u = l[i].u;
        if (u->tmpl->key_len < plen || memcmp(u->tmpl->key, prefix, plen) != 0)
            continue;
        if (count == max) {
            truncated = true;
            break;
        }
        char when[25];
        bm__emu_iso_ms(u->created_ms, when);
        count++;
        last = u;
        if ((rc = bm_buf_append_str(o, "<Upload>")) == BM_OK &&
            (rc = bm__emu_s3_key_elem(o, "Key", u->tmpl->key, u->tmpl->key_len, url)) == BM_OK &&
            (rc = bm_buf_appendf(o, "<UploadId>%s</UploadId>", u->id)) == BM_OK &&
            (rc = owner_xml(o)) == BM_OK)
            rc = bm_buf_appendf(o, "<Initiated>%s</Initiated></Upload>", when);
    }
    if (rc == BM_OK && truncated && last != NULL &&
        (rc = bm__emu_s3_key_elem(o, "NextKeyMarker", last->tmpl->key, last->tmpl->key_len, url)) ==
            BM_OK)
        rc = bm_buf_appendf(o, "<NextUploadIdMarker>%s</NextUploadIdMarker>", last->id);
    if (rc == BM_OK)
        rc = bm_buf_appendf(o, "<IsTruncated>%s</IsTruncated></ListMultipartUploadsResult>",
                            truncated ? "true" : "false");
unlock:
    pthread_mutex_unlock(&rq->emu->mu);
    bm_free(l);
    return rc;
}

bm_err bm__emu_s3_multipart(struct emu_req *rq, struct emu_resp *rs, const struct emu_s3_target *t)
{
    const char *op = rq->op;
    if (strcmp(op, "ListMultipartUploads") == 0)
        return list_uploads(rq, rs, t->bucket);
    if (strcmp(op, "CreateMultipartUpload") == 0)
        return create_upload(rq, rs, t);
    if (strcmp(op, "UploadPart") == 0)
        return upload_part(rq, rs, t);
    if (strcmp(op, "CompleteMultipartUpload") == 0)
        return complete_upload(rq, rs, t);
    if (strcmp(op, "AbortMultipartUpload") == 0)
        return abort_upload(rq, rs, t);
    if (strcmp(op, "ListParts") == 0)
        return list_parts(rq, rs, t);
    return BM_E_INTERNAL;
}
