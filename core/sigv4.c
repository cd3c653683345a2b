/* sigv4.c: AWS Signature Version 4 building blocks (canonical request, string to sign, signing
 * key, signature), shared by bmas's signer and the emulator's verifier. The rules follow
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html and are checked
 * against the AWS signing test suite (tests/unit/test_core_sigv4.c). Pure and thread-safe. */
#include "core/bm_rt.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Caps on what one request may make us build: a canonical request is a few KiB in practice;
 * these only stop a hostile request from growing buffers without end. */
#define CANON_MAX (1024 * 1024)
#define MAX_QUERY_PARAMS 1024

/* Removes dot segments (RFC 3986 section 5.2.4) and empty segments ("//"), the normalisation
 * every service but S3 applies. A trailing '/' survives, and so does the one a final "." or
 * ".." leaves ("/a/b/.." is "/a/"). Writes into out, which has room for len + 1 bytes. */
static size_t normalize_path(const char *path, size_t len, char *out)
{
    size_t o = 0;
    bool trailing = false;
    for (size_t i = 0; i < len;) {
        while (i < len && path[i] == '/')
            i++;
        size_t start = i;
        while (i < len && path[i] != '/')
            i++;
        size_t seg = i - start;
        trailing = i >= len && (seg == 0 || (seg == 1 && path[start] == '.') ||
                                (seg == 2 && path[start] == '.' && path[start + 1] == '.'));
        if (seg == 0 || (seg == 1 && path[start] == '.'))
            continue;
        if (seg == 2 && path[start] == '.' && path[start + 1] == '.') {
            while (o > 0 && out[o - 1] != '/')
                o--; /* drop the last segment ... */
            if (o > 0)
                o--; /* ... and the '/' before it */
            continue;
        }
        out[o++] = '/';
        memcpy(out + o, path + start, seg);
        o += seg;
    }
    /* Segments are written as "/seg", so out never ends in '/' here: no "//" can appear. */
    if (o == 0 || trailing)
        out[o++] = '/';
    return o;
}

static bm_err canonical_uri(const struct bm_sigv4_request *rq, struct bm_buf *out)
{
    const char *path = rq->path_len > 0 ? rq->path : "/";
    size_t len = rq->path_len > 0 ? rq->path_len : 1;
    char *norm = NULL;
    bm_err rc = BM_OK;
    if (rq->path_normalize) {
        norm = bm_malloc(len + 2);
        if (norm == NULL)
            return BM_E_NOMEM;
        len = normalize_path(path, len, norm);
        path = norm;
    }
    if (rq->path_encode)
        rc = bm_url_encode(path, len, "/", false, out);
    else
        rc = bm_buf_append(out, path, len);
    bm_free(norm);
    return rc;
}

struct qparam {
    const char *p; /* "name=value", both RFC 3986 encoded */
    size_t name_len;
    size_t len;
};

static int qparam_cmp(const void *a, const void *b)
{
    const struct qparam *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->p, y->p, n);
    if (c != 0)
        return c;
    if (x->name_len != y->name_len)
        return x->name_len < y->name_len ? -1 : 1;
    /* Same name: order by value (the '=' at name_len is common to both). */
    n = x->len < y->len ? x->len : y->len;
    c = memcmp(x->p + x->name_len, y->p + y->name_len, n - x->name_len);
    if (c != 0)
        return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

/* Appends one parameter, decoded from the wire and encoded again in SigV4's strict form, to
 * enc; records its offset and name length in *qp. */
static bm_err encode_param(const struct bm_url_pair *pair, struct bm_buf *tmp, struct bm_buf *enc,
                           struct qparam *qp)
{
    bm_err rc;
    qp->p = (const char *)(uintptr_t)enc->len; /* an offset until enc stops moving */
    bm_buf_reset(tmp);
    if ((rc = bm_url_decode(pair->name, pair->name_len, false, tmp)) != BM_OK ||
        (rc = bm_url_encode(tmp->data ? tmp->data : "", tmp->len, NULL, false, enc)) != BM_OK)
        return rc;
    qp->name_len = enc->len - (size_t)(uintptr_t)qp->p;
    bm_buf_reset(tmp);
    if ((rc = bm_buf_append_char(enc, '=')) != BM_OK ||
        (rc = bm_url_decode(pair->value, pair->value_len, false, tmp)) != BM_OK ||
        (rc = bm_url_encode(tmp->data ? tmp->data : "", tmp->len, NULL, false, enc)) != BM_OK)
        return rc;
    qp->len = enc->len - (size_t)(uintptr_t)qp->p;
    return BM_OK;
}

static bool name_is(const struct bm_url_pair *pair, const char *name)
{
    return name != NULL && pair->name_len == strlen(name) &&
           memcmp(pair->name, name, pair->name_len) == 0;
}

static bm_err canonical_query(const struct bm_sigv4_request *rq, struct bm_buf *out)
{
    struct bm_buf enc, tmp;
    struct qparam *params = NULL;
    size_t n = 0, pos = 0;
    struct bm_url_pair pair;
    bm_err rc = BM_OK;
    bm_buf_init(&enc, CANON_MAX);
    bm_buf_init(&tmp, CANON_MAX);
    while (rq->query != NULL && bm_url_query_next(rq->query, rq->query_len, &pos, &pair)) {
        if (name_is(&pair, rq->query_skip))
            continue;
        if (n == MAX_QUERY_PARAMS) {
            rc = BM_E_TOO_LARGE;
            goto fail;
        }
        if (n % 16 == 0) {
            struct qparam *grown = bm_realloc(params, (n + 16) * sizeof *params);
            if (grown == NULL) {
                rc = BM_E_NOMEM;
                goto fail;
            }
            params = grown;
        }
        if ((rc = encode_param(&pair, &tmp, &enc, &params[n])) != BM_OK)
            goto fail;
        n++;
    }
    for (size_t i = 0; i < n; i++)
        params[i].p = enc.data + (size_t)(uintptr_t)params[i].p;
    if (n > 1)
        qsort(params, n, sizeof *params, qparam_cmp);
    for (size_t i = 0; i < n && rc == BM_OK; i++) {
        if (i > 0)
            rc = bm_buf_append_char(out, '&');
        if (rc == BM_OK)
            rc = bm_buf_append(out, params[i].p, params[i].len);
    }
fail:
    bm_free(params);
    bm_buf_cleanup(&enc);
    bm_buf_cleanup(&tmp);
    return rc;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Appends a header value trimmed, with every run of whitespace collapsed to one space (the
 * spec's Trimall, applied inside quotes too, as the suite's get-header-value-trim expects). */
static bm_err append_trimmed(struct bm_buf *out, const char *v, size_t len)
{
    while (len > 0 && is_space(v[0])) {
        v++;
        len--;
    }
    while (len > 0 && is_space(v[len - 1]))
        len--;
    bm_err rc = BM_OK;
    for (size_t i = 0; i < len && rc == BM_OK;) {
        size_t start = i;
        while (i < len && !is_space(v[i]))
            i++;
        rc = bm_buf_append(out, v + start, i - start);
        if (i < len && rc == BM_OK)
            rc = bm_buf_append_char(out, ' ');
        while (i < len && is_space(v[i]))
            i++;
    }
    return rc;
}

static bm_err canonical_headers(const struct bm_sigv4_request *rq, struct bm_buf *out)
{
    const char *sh = rq->signed_headers;
    bm_err rc = BM_OK;
    while (*sh != '\0' && rc == BM_OK) {
        const char *semi = strchr(sh, ';');
        size_t nlen = semi ? (size_t)(semi - sh) : strlen(sh);
        /* Names are lowercase in the canonical form whatever the signed list says. */
        for (size_t i = 0; i < nlen && rc == BM_OK; i++) {
            char c = sh[i];
            rc = bm_buf_append_char(out, c >= 'A' && c <= 'Z' ? (char)(c + 32) : c);
        }
        if (rc == BM_OK)
            rc = bm_buf_append_char(out, ':');
        /* Repeated headers are joined with ',' in the order they came (get-header-key-duplicate).
         */
        bool first = true;
        for (size_t i = 0; i < rq->n_headers && rc == BM_OK; i++) {
            const struct bm_sigv4_header *h = &rq->headers[i];
            if (h->name_len != nlen || strncasecmp(h->name, sh, nlen) != 0)
                continue;
            if (!first)
                rc = bm_buf_append_char(out, ',');
            first = false;
            if (rc == BM_OK)
                rc = append_trimmed(out, h->value, h->value_len);
        }
        if (rc == BM_OK)
            rc = bm_buf_append_char(out, '\n');
        sh += nlen + (semi ? 1 : 0);
    }
    return rc;
}

bm_err bm_sigv4_canonical_request(const struct bm_sigv4_request *rq, struct bm_buf *out)
{
    bm_err rc;
    if ((rc = bm_buf_append_str(out, rq->method)) != BM_OK ||
        (rc = bm_buf_append_char(out, '\n')) != BM_OK || (rc = canonical_uri(rq, out)) != BM_OK ||
        (rc = bm_buf_append_char(out, '\n')) != BM_OK || (rc = canonical_query(rq, out)) != BM_OK ||
        (rc = bm_buf_append_char(out, '\n')) != BM_OK ||
        (rc = canonical_headers(rq, out)) != BM_OK ||
        (rc = bm_buf_append_char(out, '\n')) != BM_OK ||
        (rc = bm_buf_append_str(out, rq->signed_headers)) != BM_OK ||
        (rc = bm_buf_append_char(out, '\n')) != BM_OK)
        return rc;
    return bm_buf_append_str(out, rq->payload_hash);
}

bm_err bm_sigv4_string_to_sign(const char *amz_date, const char *scope, const char *canonical,
                               size_t len, struct bm_buf *out)
{
    char hash[BM_SHA256_HEX_LEN + 1];
    bm_err rc = bm_sha256_hex(canonical, len, hash);
    if (rc != BM_OK)
        return rc;
    return bm_buf_appendf(out, "AWS4-HMAC-SHA256\n%s\n%s\n%s", amz_date, scope, hash);
}

bm_err bm_sigv4_signing_key(const char *secret, const char *date8, const char *region,
                            const char *service, unsigned char key[BM_SHA256_LEN])
{
    size_t slen = strlen(secret);
    char *k = bm_malloc(slen + 5);
    unsigned char a[BM_SHA256_LEN], b[BM_SHA256_LEN];
    bm_err rc;
    if (k == NULL)
        return BM_E_NOMEM;
    memcpy(k, "AWS4", 4);
    memcpy(k + 4, secret, slen + 1);
    /* kDate = HMAC("AWS4" + secret, date), then region, service and "aws4_request" in turn. */
    if ((rc = bm_hmac_sha256(k, slen + 4, date8, strlen(date8), a)) != BM_OK ||
        (rc = bm_hmac_sha256(a, sizeof a, region, strlen(region), b)) != BM_OK ||
        (rc = bm_hmac_sha256(b, sizeof b, service, strlen(service), a)) != BM_OK ||
        (rc = bm_hmac_sha256(a, sizeof a, "aws4_request", 12, key)) != BM_OK)
        goto fail;
fail:
    bm_secure_zero(k, slen + 4);
    bm_secure_zero(a, sizeof a);
    bm_secure_zero(b, sizeof b);
    bm_free(k);
    return rc;
}

bm_err bm_sigv4_signature(const unsigned char key[BM_SHA256_LEN], const char *sts, size_t len,
                          char out[BM_SHA256_HEX_LEN + 1])
{
    unsigned char mac[BM_SHA256_LEN];
    bm_err rc = bm_hmac_sha256(key, BM_SHA256_LEN, sts, len, mac);
    if (rc == BM_OK)
        bm_hex(mac, sizeof mac, out);
    return rc;
}
