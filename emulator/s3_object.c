/* s3_object.c: S3 object operations (Put, Get with Range, Head, Delete, DeleteObjects, Copy):
 * byte-for-byte storage with ETag = MD5 and checksum validation; each change notifies through
 * s3_notify.c. */
#include "emulator/emu_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

void bm__emu_object_free(struct emu_object *o)
{
    if (o == NULL)
        return;
    bm_free(o->key);
    bm_free(o->data);
    bm_free(o->content_type);
    bm_free(o->content_encoding);
    bm_free(o->cache_control);
    bm_free(o->content_disposition);
    for (size_t i = 0; i < o->n_meta; i++) {
        bm_free(o->meta[i].k);
        bm_free(o->meta[i].v);
    }
    bm_free(o->meta);
    bm_free(o->file);
    bm_free(o);
}

void bm__emu_bucket_free(struct emu_bucket *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->n_objs; i++)
        bm__emu_object_free(b->objs[i]);
    bm_free(b->objs);
    for (size_t i = 0; i < b->n_qconf; i++)
        bm__emu_qconf_cleanup(&b->qconf[i]);
    bm_free(b->qconf);
    /* Pending uploads go with their bucket (S3 aborts them when it deletes one). */
    for (size_t i = 0; i < b->n_uploads; i++)
        bm__emu_upload_free(b->uploads[i]);
    bm_free(b->uploads);
    bm_free(b->name);
    bm_free(b);
}

/* ---- helpers -------------------------------------------------------------------------- */
/* "Mon, 20 Apr 2026 00:22:05 GMT" (RFC 7231 IMF-fixdate). */
static void http_date(int64_t ms, char out[32])
{
    static const char *const days[] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    char iso[21];
    int64_t s = ms / 1000;
    bm_time_format(s, iso);
    int mon = (iso[5] - '0') * 10 + (iso[6] - '0');
    snprintf(out, 32, "%s, %.2s %s %.4s %.8s GMT", days[(s / 86400) % 7], iso + 8,
             months[(mon - 1) % 12], iso, iso + 11);
}

static bm_err s3_error_key(struct emu_req *rq, const char *code, const char *key)
{
    snprintf(rq->err.res_name, sizeof rq->err.res_name, "Key");
    snprintf(rq->err.res_value, sizeof rq->err.res_value, "%s", key);
    return bm__emu_fail(rq, code, "%s",
                        strcmp(code, "NoSuchKey") == 0 ? "The specified key does not exist."
                                                       : "The specified bucket does not exist");
}

/* Validates Content-MD5 and the x-amz-checksum-* headers S3 checks (CRC32, SHA256); others
 * (CRC32C, SHA1, CRC64NVME) are accepted unverified. Echoes checked checksums back. */
bm_err bm__emu_s3_check_digests(struct emu_req *rq, struct emu_resp *rs, const char *data,
                                size_t len)
{
    struct bm_buf want, got;
    bm_err rc = BM_OK;
    bm_buf_init(&want, 128);
    bm_buf_init(&got, 128);
    const char *md5 = bm__emu_header(rq, "Content-MD5");
    if (md5 != NULL) {
        unsigned char d[BM_MD5_LEN];
        if (bm_base64_decode(md5, strlen(md5), &want) != BM_OK || want.len != BM_MD5_LEN)
            rc = bm__emu_fail(rq, "InvalidDigest", "The Content-MD5 you specified was invalid.");
        else if ((rc = bm_md5(data, len, d)) == BM_OK && memcmp(d, want.data, BM_MD5_LEN) != 0)
            rc = bm__emu_fail(rq, "BadDigest",
                              "The Content-MD5 you specified did not match what we received.");
    }
    const char *crc = bm__emu_header(rq, "x-amz-checksum-crc32");
    if (rc == BM_OK && crc != NULL) {
        uLong c = crc32(0L, Z_NULL, 0);
        for (size_t off = 0; off < len;) {
            uInt n = len - off > (1u << 30) ? (1u << 30) : (uInt)(len - off);
            c = crc32(c, (const Bytef *)data + off, n);
            off += n;
        }
        unsigned char be[4] = {(unsigned char)(c >> 24), (unsigned char)(c >> 16),
                               (unsigned char)(c >> 8), (unsigned char)c};
        if ((rc = bm_base64_encode(be, 4, &got)) == BM_OK && strcmp(got.data, crc) != 0)
            rc = bm__emu_fail(rq, "BadDigest",
                              "The CRC32 you specified did not match the calculated checksum.");
        if (rc == BM_OK)
            rc = bm__emu_resp_header(rs, "x-amz-checksum-crc32", "%s", crc);
    }
    const char *sha = bm__emu_header(rq, "x-amz-checksum-sha256");
    if (rc == BM_OK && sha != NULL) {
        unsigned char d[BM_SHA256_LEN];
        bm_buf_reset(&got);
        if ((rc = bm_sha256(data, len, d)) == BM_OK &&
            (rc = bm_base64_encode(d, sizeof d, &got)) == BM_OK && strcmp(got.data, sha) != 0)
            rc = bm__emu_fail(rq, "BadDigest",
                              "The SHA256 you specified did not match the calculated checksum.");
        if (rc == BM_OK)
            rc = bm__emu_resp_header(rs, "x-amz-checksum-sha256", "%s", sha);
    }
    bm_buf_cleanup(&want);
    bm_buf_cleanup(&got);
    return rc;
}

static bm_err dup_header(const struct emu_req *rq, const char *name, char **out)
{
    const char *v = bm__emu_header(rq, name);
    if (v == NULL)
        return BM_OK;
    *out = bm_strdup(v);
    return *out ? BM_OK : BM_E_NOMEM;
}

/* Content-* headers and x-amz-meta-* from the request (PutObject, CopyObject REPLACE,
 * CreateMultipartUpload). */
bm_err bm__emu_s3_take_headers(const struct emu_req *rq, struct emu_object *o)
{
    bm_err rc;
    if ((rc = dup_header(rq, "Content-Type", &o->content_type)) != BM_OK ||
        (rc = dup_header(rq, "Cache-Control", &o->cache_control)) != BM_OK ||
        (rc = dup_header(rq, "Content-Disposition", &o->content_disposition)) != BM_OK)
        return rc;
    const char *enc = bm__emu_header(rq, "Content-Encoding");
    /* aws-chunked is transfer framing, not part of the object's stored encoding. */
    if (enc != NULL && strcasecmp(enc, "aws-chunked") != 0) {
        const char *p = enc;
        if (strncasecmp(p, "aws-chunked,", 12) == 0)
            p += 12;
        while (*p == ' ')
            p++;
        if ((o->content_encoding = bm_strdup(p)) == NULL)
            return BM_E_NOMEM;
    }
    for (size_t i = 0; i < rq->n_hdr; i++) {
        const struct bm_sigv4_header *h = &rq->hdr[i];
        if (h->name_len <= 11 || strncasecmp(h->name, "x-amz-meta-", 11) != 0)
            continue;
        struct emu_kv *grown = bm_realloc(o->meta, (o->n_meta + 1) * sizeof *grown);
        if (grown == NULL)
            return BM_E_NOMEM;
        o->meta = grown;
        struct emu_kv *kv = &o->meta[o->n_meta];
        kv->k = bm_strndup(h->name + 11, h->name_len - 11);
        kv->v = bm_strndup(h->value, h->value_len);
        if (kv->k == NULL || kv->v == NULL) {
            bm_free(kv->k);
            bm_free(kv->v);
            return BM_E_NOMEM;
        }
        for (char *c = kv->k; *c; c++)
            *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
        o->n_meta++;
    }
    return BM_OK;
}

/* Writes the body file, then inserts o (ownership taken, freed on failure) into the target
 * bucket, replacing an older version, and sends event_name notifications. */
bm_err bm__emu_s3_store_object(struct emu_req *rq, const struct emu_s3_target *t,
                               struct emu_object *o, const char *event_name)
{
    struct bm_emu *emu = rq->emu;
    bm_err rc = bm__emu_store_put_body(emu, o->data, o->len, &o->file);
    if (rc != BM_OK) {
        bm__emu_object_free(o);
        return rc;
    }
    pthread_mutex_lock(&emu->mu);
    struct emu_bucket *b = bm__emu_bucket_find(emu, t->bucket);
    size_t idx = 0;
    struct emu_object *old = b ? bm__emu_object_find(b, o->key, o->key_len, &idx) : NULL;
    if (b == NULL) {
        rc = s3_error_key(rq, "NoSuchBucket", t->bucket);
        snprintf(rq->err.res_name, sizeof rq->err.res_name, "BucketName");
    } else if (old != NULL) {
        bm__emu_store_drop_body(emu, old->file);
        bm__emu_object_free(old);
        b->objs[idx] = o;
    } else if ((rc = bm__emu_grow(&b->objs, &b->cap_objs, b->n_objs + 1, sizeof *b->objs)) ==
               BM_OK) {
        memmove(&b->objs[idx + 1], &b->objs[idx], (b->n_objs - idx) * sizeof *b->objs);
        b->objs[idx] = o;
        b->n_objs++;
    }
    if (rc == BM_OK) {
        bm__emu_dirty(emu);
        rc = bm__emu_s3_notify(rq, b, event_name, o, o->key, o->key_len);
    } else {
        bm__emu_store_drop_body(emu, o->file);
        bm__emu_object_free(o);
    }
    pthread_mutex_unlock(&emu->mu);
    return rc;
}

struct emu_object *bm__emu_s3_object_new(const struct emu_s3_target *t, int64_t now_ms)
{
    struct emu_object *o = bm_calloc(1, sizeof *o);
    if (o == NULL)
        return NULL;
    o->key = bm_strndup(t->key, t->key_len);
    o->key_len = t->key_len;
    o->mtime_ms = now_ms;
    if (o->key == NULL) {
        bm__emu_object_free(o);
        return NULL;
    }
    return o;
}

/* ---- operations ----------------------------------------------------------------------- */
bm_err bm__emu_s3_put_object(struct emu_req *rq, struct emu_resp *rs, const struct emu_s3_target *t)
{
    if (rq->body.len > rq->emu->max_object)
        return bm__emu_fail(rq, "EntityTooLarge",
                            "Your proposed upload exceeds the maximum allowed size");
    const char *data = rq->body.data ? rq->body.data : "";
    bm_err rc = bm__emu_s3_check_digests(rq, rs, data, rq->body.len);
    if (rc != BM_OK)
        return rc;
    struct emu_object *o = bm__emu_s3_object_new(t, rq->now_ms);
    if (o == NULL || (rc = bm_md5_hex(data, rq->body.len, o->etag)) != BM_OK ||
        (rc = bm__emu_s3_take_headers(rq, o)) != BM_OK) {
        bm__emu_object_free(o);
        return rc != BM_OK ? rc : BM_E_NOMEM;
    }
    /* The body moves into the object: stored byte for byte, never decoded. */
    o->len = rq->body.len;
    o->data = rq->body.data ? bm_buf_steal(&rq->body) : bm_strdup("");
    if (o->data == NULL) {
        bm__emu_object_free(o);
        return BM_E_NOMEM;
    }
    char etag[EMU_ETAG_MAX];
    memcpy(etag, o->etag, sizeof etag);
    rc = bm__emu_s3_store_object(rq, t, o, "ObjectCreated:Put");
    if (rc == BM_OK)
        rc = bm__emu_resp_header(rs, "ETag", "\"%s\"", etag);
    return rc;
}

/* Parses a single "bytes=a-b" / "bytes=a-" / "bytes=-n" range. 1 = use it, 0 = ignore the
 * header (malformed or several ranges, as S3 does), -1 = unsatisfiable. */
static int parse_range(const char *h, size_t size, size_t *from, size_t *to)
{
    if (strncmp(h, "bytes=", 6) != 0 || strchr(h, ',') != NULL)
        return 0;
    const char *p = h + 6, *dash = strchr(p, '-');
    if (dash == NULL)
        return 0;
    char *end;
    if (dash == p) {
        unsigned long long n = strtoull(dash + 1, &end, 10);
        if (*end != '\0' || end == dash + 1)
            return 0;
        if (n == 0 || size == 0)
            return -1;
        *from = n >= size ? 0 : size - (size_t)n;
        *to = size - 1;
        return 1;
    }
    unsigned long long a = strtoull(p, &end, 10);
    if (end != dash)
        return 0;
    unsigned long long b = size ? size - 1 : 0;
    if (dash[1] != '\0') {
        b = strtoull(dash + 1, &end, 10);
        if (*end != '\0' || b < a)
            return 0;
    }
    if (a >= size)
        return -1;
    *from = (size_t)a;
    *to = b >= size ? size - 1 : (size_t)b;
    return 1;
}

/* The decoded value of query parameter name into out: its length, -1 when absent; a value too
 * long for out is cut (callers compare with short constants only). */
static int query_value(const struct emu_req *rq, const char *name, char *out, size_t cap)
{
    struct bm_url_pair p;
    size_t pos = 0, n = strlen(name);
    while (rq->query != NULL && bm_url_query_next(rq->query, rq->query_len, &pos, &p)) {
        if (p.name_len != n || memcmp(p.name, name, n) != 0)
            continue;
        struct bm_buf d;
        bm_buf_init(&d, 4096);
        int len = 0;
        if (bm_url_decode(p.value, p.value_len, false, &d) == BM_OK && d.data != NULL) {
            len = (int)d.len;
            snprintf(out, cap, "%s", d.data);
        } else {
            snprintf(out, cap, "%s", p.value_len ? "?" : "");
            len = (int)p.value_len;
        }
        bm_buf_cleanup(&d);
        return len;
    }
    return -1;
}

bm_err bm__emu_s3_get_object(struct emu_req *rq, struct emu_resp *rs, const struct emu_s3_target *t,
                             bool head)
{
    struct bm_emu *emu = rq->emu;
    bm_err rc = BM_OK;
    pthread_mutex_lock(&emu->mu);
    struct emu_bucket *b = bm__emu_bucket_find(emu, t->bucket);
    struct emu_object *o = b ? bm__emu_object_find(b, t->key, t->key_len, NULL) : NULL;
    if (b == NULL || o == NULL) {
        rc = s3_error_key(rq, b ? "NoSuchKey" : "NoSuchBucket", b ? t->key : t->bucket);
        if (b == NULL)
            snprintf(rq->err.res_name, sizeof rq->err.res_name, "BucketName");
        goto unlock;
    }
    /* Buckets here are never versioned, and S3 answers an unversioned bucket as it has only
     * the "null" version: versionId=null reads the object, any other id is a 400. */
    char vid[16];
    int vq = query_value(rq, "versionId", vid, sizeof vid);
    if (vq > 0 && strcmp(vid, "null") != 0) {
        rc = bm__emu_fail(rq, "InvalidArgument", "Invalid version id specified");
        goto unlock;
    }
    if (vq == 0) {
        rc = bm__emu_fail(rq, "InvalidArgument", "Version id cannot be the empty string");
        goto unlock;
    }
    if (vq > 0)
        rc = bm__emu_resp_header(rs, "x-amz-version-id", "null");
    /* If-Match as S3 does it (RFC 7232 3.1): "*" or a list of quoted ETags; no match -> 412.
     * bmas sends the event's ETag so that an overwritten key is not counted twice. */
    const char *im = bm__emu_header(rq, "If-Match");
    if (im != NULL && strcmp(im, "*") != 0) {
        char want[80];
        snprintf(want, sizeof want, "\"%s\"", o->etag);
        if (strstr(im, want) == NULL && strcmp(im, o->etag) != 0) {
            rc = bm__emu_fail(rq, "PreconditionFailed",
                              "At least one of the pre-conditions you specified did not hold");
            goto unlock;
        }
    }
    size_t from = 0, to = o->len ? o->len - 1 : 0, n = o->len;
    const char *range = bm__emu_header(rq, "Range");
    int r = range ? parse_range(range, o->len, &from, &to) : 0;
    if (r < 0) {
        rc = bm__emu_fail(rq, "InvalidRange", "The requested range is not satisfiable");
        if (rc == BM_E_BAD_REQUEST)
            bm__emu_resp_header(rs, "Content-Range", "bytes */%zu", o->len);
        goto unlock;
    }
    if (r > 0) {
        n = to - from + 1;
        rs->status = 206;
        rc = bm__emu_resp_header(rs, "Content-Range", "bytes %zu-%zu/%zu", from, to, o->len);
    }
    char date[32];
    http_date(o->mtime_ms, date);
    rs->content_type = NULL;
    if (rc == BM_OK)
        rc = bm__emu_resp_header(rs, "Content-Type", "%s",
                                 o->content_type ? o->content_type : "binary/octet-stream");
    if (rc == BM_OK)
        rc = bm__emu_resp_header(rs, "ETag", "\"%s\"", o->etag);
    if (rc == BM_OK)
        rc = bm__emu_resp_header(rs, "Last-Modified", "%s", date);
    if (rc == BM_OK)
        rc = bm__emu_resp_header(rs, "Accept-Ranges", "bytes");
    const struct {
        const char *name, *value;
    } opt[] = {{"Content-Encoding", o->content_encoding},
               {"Cache-Control", o->cache_control},
               {"Content-Disposition", o->content_disposition}};
    for (size_t i = 0; i < sizeof opt / sizeof opt[0] && rc == BM_OK; i++) {
        if (opt[i].value != NULL)
            rc = bm__emu_resp_header(rs, opt[i].name, "%s", opt[i].value);
    }
    for (size_t i = 0; i < o->n_meta && rc == BM_OK; i++) {
        char name[256];
        snprintf(name, sizeof name, "x-amz-meta-%s", o->meta[i].k);
        rc = bm__emu_resp_header(rs, name, "%s", o->meta[i].v);
    }
    if (rc == BM_OK && head) {
        rs->fixed_len = true;
        rs->len = n;
    } else if (rc == BM_OK) {
        rc = bm_buf_append(&rs->body, o->data + from, n);
    }
unlock:
    pthread_mutex_unlock(&emu->mu);
    return rc;
}

/* Removes one key (callers hold mu); absent keys are fine, as in S3. */
static bm_err remove_key(struct emu_req *rq, struct emu_bucket *b, const char *key, size_t len)
{
    size_t idx;
    struct emu_object *o = bm__emu_object_find(b, key, len, &idx);
    if (o == NULL)
        return BM_OK;
    memmove(&b->objs[idx], &b->objs[idx + 1], (b->n_objs - idx - 1) * sizeof *b->objs);
    b->n_objs--;
    bm__emu_dirty(rq->emu);
    bm__emu_store_drop_body(rq->emu, o->file);
    bm_err rc = bm__emu_s3_notify(rq, b, "ObjectRemoved:Delete", NULL, o->key, o->key_len);
    bm__emu_object_free(o);
    return rc;
}

bm_err bm__emu_s3_delete_object(struct emu_req *rq, struct emu_resp *rs,
                                const struct emu_s3_target *t)
{
    struct bm_emu *emu = rq->emu;
    bm_err rc;
    pthread_mutex_lock(&emu->mu);
    struct emu_bucket *b = bm__emu_bucket_find(emu, t->bucket);
    if (b == NULL) {
        rc = s3_error_key(rq, "NoSuchBucket", t->bucket);
        snprintf(rq->err.res_name, sizeof rq->err.res_name, "BucketName");
    } else {
        rc = remove_key(rq, b, t->key, t->key_len);
        rs->status = 204;
    }
    pthread_mutex_unlock(&emu->mu);
    return rc;
}

bm_err bm__emu_s3_delete_objects(struct emu_req *rq, struct emu_resp *rs,
                                 const struct emu_s3_target *t)
{
    struct bm_emu *emu = rq->emu;
    struct emu_xml *root = NULL;
    bm_err rc = bm__emu_xml_parse(rq->body.data ? rq->body.data : "", rq->body.len, &root);
    if (rc == BM_E_NOMEM)
        return rc;
    if (rc != BM_OK || strcmp(root->name, "Delete") != 0) {
        bm__emu_xml_free(root);
        return bm__emu_fail(rq, "MalformedXML",
                            "The XML you provided was not well-formed or "
                            "did not validate against our published schema");
    }
    struct emu_xml *quiet = bm__emu_xml_child(root, "Quiet");
    bool is_quiet = quiet && strcasecmp(quiet->text, "true") == 0;
    struct bm_buf *out = &rs->body;
    rs->content_type = "application/xml";
    rc = bm_buf_appendf(out,
                        EMU_S3_XML_DECL "<DeleteResult "
                                        "xmlns=\"%s\">",
                        EMU_S3_NS);
    pthread_mutex_lock(&emu->mu);
    struct emu_bucket *b = bm__emu_bucket_find(emu, t->bucket);
    if (b == NULL) {
        bm_buf_reset(out);
        rc = s3_error_key(rq, "NoSuchBucket", t->bucket);
        snprintf(rq->err.res_name, sizeof rq->err.res_name, "BucketName");
    }
    for (struct emu_xml *e = root->child; b != NULL && e != NULL && rc == BM_OK; e = e->next) {
        struct emu_xml *k = strcmp(e->name, "Object") == 0 ? bm__emu_xml_child(e, "Key") : NULL;
        if (k == NULL)
            continue;
        rc = remove_key(rq, b, k->text, strlen(k->text));
        if (rc == BM_OK && !is_quiet && (rc = bm_buf_append_str(out, "<Deleted>")) == BM_OK &&
            (rc = bm__emu_xml_elem(out, "Key", k->text, strlen(k->text))) == BM_OK)
            rc = bm_buf_append_str(out, "</Deleted>");
    }
    pthread_mutex_unlock(&emu->mu);
    if (rc == BM_OK)
        rc = bm_buf_append_str(out, "</DeleteResult>");
    bm__emu_xml_free(root);
    return rc;
}

bm_err bm__emu_s3_copy_object(struct emu_req *rq, struct emu_resp *rs,
                              const struct emu_s3_target *t)
{
    struct bm_emu *emu = rq->emu;
    const char *src = bm__emu_header(rq, "x-amz-copy-source");
    struct bm_buf dec;
    bm_err rc;
    bm_buf_init(&dec, 64 * 1024);
    const char *q = strchr(src, '?'); /* "?versionId=": one version per key here */
    if ((rc = bm_url_decode(src, q ? (size_t)(q - src) : strlen(src), false, &dec)) != BM_OK ||
        dec.data == NULL) {
        bm_buf_cleanup(&dec);
        return rc == BM_E_NOMEM ? rc : bm__emu_fail(rq, "InvalidArgument", "Invalid copy source");
    }
    char *p = dec.data + (dec.data[0] == '/');
    char *slash = strchr(p, '/');
    if (slash == NULL || slash[1] == '\0') {
        bm_buf_cleanup(&dec);
        return bm__emu_fail(rq, "InvalidArgument", "Invalid copy source object key");
    }
    *slash = '\0';
    const char *skey = slash + 1;
    size_t skey_len = dec.len - (size_t)(skey - dec.data);
    const char *directive = bm__emu_header(rq, "x-amz-metadata-directive");
    bool replace = directive && strcasecmp(directive, "REPLACE") == 0;
    struct emu_object *o = bm__emu_s3_object_new(t, rq->now_ms);
    rc = o ? BM_OK : BM_E_NOMEM;

    pthread_mutex_lock(&emu->mu);
    struct emu_bucket *sb = rc == BM_OK ? bm__emu_bucket_find(emu, p) : NULL;
    struct emu_object *so = sb ? bm__emu_object_find(sb, skey, skey_len, NULL) : NULL;
    if (rc == BM_OK && so == NULL) {
        rc = s3_error_key(rq, sb ? "NoSuchKey" : "NoSuchBucket", sb ? skey : p);
    } else if (rc == BM_OK) {
        o->len = so->len;
        o->data = bm_malloc(so->len + 1);
        memcpy(o->etag, so->etag, sizeof o->etag);
        if (o->data == NULL) {
            rc = BM_E_NOMEM;
        } else {
            memcpy(o->data, so->data, so->len);
            if (!replace) {
                const char *const from[] = {so->content_type, so->content_encoding,
                                            so->cache_control, so->content_disposition};
                char **const to[] = {&o->content_type, &o->content_encoding, &o->cache_control,
                                     &o->content_disposition};
                for (size_t i = 0; i < 4 && rc == BM_OK; i++) {
                    if (from[i] != NULL && (*to[i] = bm_strdup(from[i])) == NULL)
                        rc = BM_E_NOMEM;
                }
                o->meta = so->n_meta ? bm_calloc(so->n_meta, sizeof *o->meta) : NULL;
                for (size_t i = 0; i < so->n_meta && rc == BM_OK && o->meta; i++) {
                    o->meta[i].k = bm_strdup(so->meta[i].k);
                    o->meta[i].v = bm_strdup(so->meta[i].v);
                    o->n_meta++;
                    if (o->meta[i].k == NULL || o->meta[i].v == NULL)
                        rc = BM_E_NOMEM;
                }
                if (so->n_meta && o->meta == NULL)
                    rc = BM_E_NOMEM;
            }
        }
    }
    pthread_mutex_unlock(&emu->mu);
    bm_buf_cleanup(&dec);
    if (rc == BM_OK && replace)
        rc = bm__emu_s3_take_headers(rq, o);
    /* A copy is written in one piece: a multipart source's "-N" ETag becomes the MD5. */
    if (rc == BM_OK && strchr(o->etag, '-') != NULL)
        rc = bm_md5_hex(o->data, o->len, o->etag);
    if (rc != BM_OK) {
        bm__emu_object_free(o);
        return rc;
    }
    char etag[EMU_ETAG_MAX], when[25];
    memcpy(etag, o->etag, sizeof etag);
    bm__emu_iso_ms(o->mtime_ms, when);
    rc = bm__emu_s3_store_object(rq, t, o, "ObjectCreated:Copy");
    rs->content_type = "application/xml";
    if (rc == BM_OK)
        rc = bm_buf_appendf(&rs->body,
                            EMU_S3_XML_DECL
                            "<CopyObjectResult "
                            "xmlns=\"%s\"><LastModified>%s</LastModified><ETag>&quot;%s&quot;"
                            "</ETag></CopyObjectResult>",
                            EMU_S3_NS, when, etag);
    return rc;
}
