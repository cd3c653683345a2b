/* verify.c: SigV4 verification of every emulated request, header and presigned-query forms,
 * recomputing the signature with core's canonicalisation (core/sigv4.c) from what arrived on
 * the wire, plus aws-chunked (streaming) bodies and their chunk signatures. */
#include "emulator/emu_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* What the Authorization header or the X-Amz-* query parameters say. */
struct auth {
    bool presigned;
    char akid[128];
    char date8[9];
    char region[32];
    char service[32];
    char signed_headers[1024];
    char signature[BM_SHA256_HEX_LEN + 1];
    char amz_date[17];
    long expires;
};

static const char *hdr_get(const struct emu_verify_in *in, const char *name, size_t *len)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < in->n_hdr; i++) {
        if (in->hdr[i].name_len == n && strncasecmp(in->hdr[i].name, name, n) == 0) {
            *len = in->hdr[i].value_len;
            return in->hdr[i].value;
        }
    }
    return NULL;
}

static bool copy_field(char *dst, size_t cap, const char *src, size_t len)
{
    if (len == 0 || len >= cap)
        return false;
    memcpy(dst, src, len);
    dst[len] = '\0';
    return true;
}

/* "AKID/20150830/us-east-1/service/aws4_request" */
static bool parse_credential(struct auth *a, const char *s, size_t len)
{
    const char *parts[5];
    size_t plen[5], n = 0;
    const char *p = s, *end = s + len;
    while (n < 5) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        parts[n] = p;
        plen[n++] = slash ? (size_t)(slash - p) : (size_t)(end - p);
        if (slash == NULL)
            break;
        p = slash + 1;
    }
    return n == 5 && plen[4] == 12 && memcmp(parts[4], "aws4_request", 12) == 0 &&
           copy_field(a->akid, sizeof a->akid, parts[0], plen[0]) && plen[1] == 8 &&
           copy_field(a->date8, sizeof a->date8, parts[1], plen[1]) &&
           copy_field(a->region, sizeof a->region, parts[2], plen[2]) &&
           copy_field(a->service, sizeof a->service, parts[3], plen[3]);
}

/* "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..." */
static bool parse_header_auth(struct auth *a, const char *v, size_t len)
{
    static const char alg[] = "AWS4-HMAC-SHA256";
    if (len <= sizeof alg || memcmp(v, alg, sizeof alg - 1) != 0 || v[sizeof alg - 1] != ' ')
        return false;
    const char *p = v + sizeof alg, *end = v + len;
    bool cred = false, sh = false, sig = false;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == ','))
            p++;
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        if (eq == NULL)
            break;
        size_t klen = (size_t)(eq - p), vlen = (size_t)(stop - eq - 1);
        while (vlen > 0 && eq[vlen] == ' ')
            vlen--;
        if (klen == 10 && memcmp(p, "Credential", 10) == 0)
            cred = parse_credential(a, eq + 1, vlen);
        else if (klen == 13 && memcmp(p, "SignedHeaders", 13) == 0)
            sh = copy_field(a->signed_headers, sizeof a->signed_headers, eq + 1, vlen);
        else if (klen == 9 && memcmp(p, "Signature", 9) == 0)
            sig = copy_field(a->signature, sizeof a->signature, eq + 1, vlen);
        p = stop;
    }
    return cred && sh && sig;
}

/* The decoded value of a query parameter into dst; false when absent or too long. */
static bool query_param(const struct emu_verify_in *in, const char *name, char *dst, size_t cap)
{
    struct bm_url_pair pair;
    size_t pos = 0, n = strlen(name);
    while (in->query != NULL && bm_url_query_next(in->query, in->query_len, &pos, &pair)) {
        if (pair.name_len != n || memcmp(pair.name, name, n) != 0)
            continue;
        struct bm_buf b;
        bm_buf_init(&b, cap - 1);
        bool ok = bm_url_decode(pair.value, pair.value_len, false, &b) == BM_OK && b.len > 0 &&
                  copy_field(dst, cap, b.data, b.len);
        bm_buf_cleanup(&b);
        return ok;
    }
    return false;
}

static bool parse_query_auth(const struct emu_verify_in *in, struct auth *a)
{
    char alg[32], cred[256], expires[16];
    if (!query_param(in, "X-Amz-Algorithm", alg, sizeof alg) ||
        strcmp(alg, "AWS4-HMAC-SHA256") != 0 ||
        !query_param(in, "X-Amz-Credential", cred, sizeof cred) ||
        !parse_credential(a, cred, strlen(cred)) ||
        !query_param(in, "X-Amz-Date", a->amz_date, sizeof a->amz_date) ||
        !query_param(in, "X-Amz-SignedHeaders", a->signed_headers, sizeof a->signed_headers) ||
        !query_param(in, "X-Amz-Signature", a->signature, sizeof a->signature))
        return false;
    a->expires = 604800; /* SigV4's longest presign when X-Amz-Expires is absent */
    if (query_param(in, "X-Amz-Expires", expires, sizeof expires)) {
        char *end = NULL;
        a->expires = strtol(expires, &end, 10);
        if (*end != '\0' || a->expires < 1 || a->expires > 604800)
            return false;
    }
    a->presigned = true;
    return true;
}

/* "20150830T123600Z" to epoch seconds. */
static bool parse_amz_date(const char *d, int64_t *t)
{
    if (strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z')
        return false;
    char iso[21];
    memcpy(iso, d, 4);
    iso[4] = '-';
    memcpy(iso + 5, d + 4, 2);
    iso[7] = '-';
    memcpy(iso + 8, d + 6, 2);
    iso[10] = 'T';
    memcpy(iso + 11, d + 9, 2);
    iso[13] = ':';
    memcpy(iso + 14, d + 11, 2);
    iso[16] = ':';
    memcpy(iso + 17, d + 13, 3); /* "SSZ" */
    return bm_time_parse(iso, 20, t);
}

static bool signed_list_has(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *semi = strchr(p, ';');
        size_t len = semi ? (size_t)(semi - p) : strlen(p);
        if (len == n && strncasecmp(p, name, n) == 0)
            return true;
        p += len + (semi ? 1 : 0);
    }
    return false;
}

static bool is_hex64(const char *s, size_t len)
{
    if (len != 64)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    }
    return true;
}

/* What a request's Authorization header or presigned query claims, without verifying it. */
static bool claimed_auth(const struct emu_req *rq, struct auth *a)
{
    struct emu_verify_in in = {
        .query = rq->query, .query_len = rq->query_len, .hdr = rq->hdr, .n_hdr = rq->n_hdr};
    size_t len;
    const char *h = hdr_get(&in, "Authorization", &len);
    memset(a, 0, sizeof *a);
    return (h != NULL && parse_header_auth(a, h, len)) || (h == NULL && parse_query_auth(&in, a));
}

void bm__emu_scope_service(const struct emu_req *rq, char out[32])
{
    struct auth a;
    out[0] = '\0';
    if (claimed_auth(rq, &a))
        memcpy(out, a.service, sizeof a.service);
}

void bm__emu_scope_akid(const struct emu_req *rq, char out[128])
{
    struct auth a;
    out[0] = '\0';
    if (claimed_auth(rq, &a))
        memcpy(out, a.akid, sizeof a.akid);
}

/* Reads one "hex[;chunk-signature=sig]\r\n" line; false when malformed. */
static bool chunk_header(const char *s, size_t len, size_t *pos, size_t *size, char *sig)
{
    const char *nl = memchr(s + *pos, '\n', len - *pos);
    if (nl == NULL || nl == s + *pos || nl[-1] != '\r')
        return false;
    const char *line = s + *pos, *eol = nl - 1;
    size_t v = 0, digits = 0;
    const char *p = line;
    for (; p < eol && digits < 16; p++, digits++) {
        char c = *p;
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            break;
        v = v * 16 + (size_t)d;
    }
    if (digits == 0)
        return false;
    sig[0] = '\0';
    static const char ext[] = ";chunk-signature=";
    if (p < eol) {
        if ((size_t)(eol - p) != sizeof ext - 1 + BM_SHA256_HEX_LEN ||
            memcmp(p, ext, sizeof ext - 1) != 0)
            return false;
        memcpy(sig, p + sizeof ext - 1, BM_SHA256_HEX_LEN);
        sig[BM_SHA256_HEX_LEN] = '\0';
    }
    *size = v;
    *pos = (size_t)(nl + 1 - s);
    return true;
}

bool bm__emu_dechunk(struct bm_buf *body, const unsigned char *key, const char *amz_date,
                     const char *scope, const char *seed_sig)
{
    char prev[BM_SHA256_HEX_LEN + 1], sig[BM_SHA256_HEX_LEN + 1];
    char *s = body->data;
    size_t len = body->len, pos = 0, out = 0;
    struct bm_buf sts;
    bool ok = false;
    if (s == NULL)
        return false;
    snprintf(prev, sizeof prev, "%s", seed_sig ? seed_sig : "");
    bm_buf_init(&sts, 4096);
    for (;;) {
        size_t size;
        if (!chunk_header(s, len, &pos, &size, sig) || size > len - pos)
            goto done;
        if (key != NULL) {
            /* https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html: each
             * chunk signs the previous signature and its data's hash. */
            char hash[BM_SHA256_HEX_LEN + 1], want[BM_SHA256_HEX_LEN + 1];
            bm_buf_reset(&sts);
            if (sig[0] == '\0' || bm_sha256_hex(s + pos, size, hash) != BM_OK ||
                bm_buf_appendf(&sts, "AWS4-HMAC-SHA256-PAYLOAD\n%s\n%s\n%s\n%s\n%s", amz_date,
                               scope, prev, EMPTY_SHA256, hash) != BM_OK ||
                bm_sigv4_signature(key, sts.data, sts.len, want) != BM_OK ||
                !bm_crypto_equal(want, sig, BM_SHA256_HEX_LEN))
                goto done;
            memcpy(prev, sig, sizeof prev);
        }
        memmove(s + out, s + pos, size);
        out += size;
        pos += size;
        if (size == 0)
            break;
        if (len - pos < 2 || s[pos] != '\r' || s[pos + 1] != '\n')
            goto done;
        pos += 2;
    }
    /* Trailers ("x-amz-checksum-crc32:...") up to an empty line; a final CRLF may be absent
     * when the trailer-less final chunk ended the body. */
    while (pos < len) {
        const char *nl = memchr(s + pos, '\n', len - pos);
        if (nl == NULL)
            goto done;
        bool empty = nl == s + pos || (nl == s + pos + 1 && s[pos] == '\r');
        pos = (size_t)(nl + 1 - s);
        if (empty)
            break;
    }
    ok = pos == len;
    body->len = out;
    body->data[out] = '\0';
done:
    bm_buf_cleanup(&sts);
    return ok;
}

enum emu_auth bm__emu_verify(const struct emu_verify_in *in, struct emu_verify_out *out)
{
    struct auth a;
    struct bm_buf canon, sts;
    unsigned char key[BM_SHA256_LEN];
    char got[BM_SHA256_HEX_LEN + 1], payload[80], scope[128];
    enum emu_auth res = EMU_AUTH_MALFORMED;
    size_t len;
    memset(&a, 0, sizeof a);
    memset(out, 0, sizeof *out);
    bm_buf_init(&canon, 1 << 20);
    bm_buf_init(&sts, 4096);

    const char *h = hdr_get(in, "Authorization", &len);
    if (h != NULL) {
        if (!parse_header_auth(&a, h, len)) {
            snprintf(out->detail, sizeof out->detail, "Authorization header is malformed");
            goto done;
        }
        const char *d = hdr_get(in, "X-Amz-Date", &len);
        if (d == NULL || !copy_field(a.amz_date, sizeof a.amz_date, d, len)) {
            snprintf(out->detail, sizeof out->detail, "X-Amz-Date header is missing or bad");
            goto done;
        }
    } else if (in->query != NULL && strstr(in->query, "X-Amz-Signature=") != NULL) {
        if (!parse_query_auth(in, &a)) {
            snprintf(out->detail, sizeof out->detail, "presigned query parameters are malformed");
            goto done;
        }
    } else {
        res = EMU_AUTH_MISSING;
        goto done;
    }
    memcpy(out->service, a.service, sizeof out->service);
    memcpy(out->region, a.region, sizeof out->region);
    memcpy(out->akid, a.akid, sizeof out->akid);
    int64_t t;
    if (!parse_amz_date(a.amz_date, &t) || memcmp(a.amz_date, a.date8, 8) != 0) {
        snprintf(out->detail, sizeof out->detail, "date %s does not match credential date %s",
                 a.amz_date, a.date8);
        goto done;
    }
    if (!signed_list_has(a.signed_headers, "host")) {
        snprintf(out->detail, sizeof out->detail, "host must be a signed header");
        goto done;
    }
    const struct emu_cred *cred = NULL;
    for (size_t i = 0; i < in->n_creds && cred == NULL; i++) {
        if (strcmp(in->creds[i].akid, a.akid) == 0)
            cred = &in->creds[i];
    }
    if (cred == NULL) {
        res = EMU_AUTH_UNKNOWN_KEY;
        goto done;
    }
    if (t > in->now + in->skew_s || (!a.presigned && t < in->now - in->skew_s)) {
        snprintf(out->detail, sizeof out->detail, "%s", a.amz_date);
        res = EMU_AUTH_SKEW;
        goto done;
    }
    if (a.presigned && in->now > t + a.expires) {
        res = EMU_AUTH_EXPIRED;
        goto done;
    }

    /* The payload hash: what x-amz-content-sha256 claims (checked against the body when it is a
     * hash), else S3's UNSIGNED-PAYLOAD for presigned URLs, else the body's own hash. */
    bool is_s3 = strcmp(a.service, "s3") == 0;
    const char *claim = hdr_get(in, "x-amz-content-sha256", &len);
    const char *body = in->body && in->body->data ? in->body->data : "";
    size_t body_len = in->body ? in->body->len : 0;
    bool streaming = false, streaming_signed = false;
    if (claim != NULL) {
        if (!copy_field(payload, sizeof payload, claim, len)) {
            res = EMU_AUTH_BAD_HASH;
            goto done;
        }
        streaming = strncmp(payload, "STREAMING-", 10) == 0;
        streaming_signed = strcmp(payload, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD") == 0 ||
                           strcmp(payload, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER") == 0;
        if (streaming && !streaming_signed &&
            strcmp(payload, "STREAMING-UNSIGNED-PAYLOAD-TRAILER") != 0) {
            res = EMU_AUTH_BAD_HASH;
            goto done;
        }
        if (!streaming && strcmp(payload, "UNSIGNED-PAYLOAD") != 0) {
            char actual[BM_SHA256_HEX_LEN + 1];
            if (!is_hex64(payload, strlen(payload)) ||
                bm_sha256_hex(body, body_len, actual) != BM_OK || strcmp(actual, payload) != 0) {
                snprintf(out->detail, sizeof out->detail, "%s", payload);
                res = EMU_AUTH_BAD_HASH;
                goto done;
            }
        }
    } else if (a.presigned && is_s3) {
        snprintf(payload, sizeof payload, "UNSIGNED-PAYLOAD");
    } else if (bm_sha256_hex(body, body_len, payload) != BM_OK) {
        goto done;
    }

    struct bm_sigv4_request rq = {
        .method = in->method,
        .path = in->path,
        .path_len = in->path_len,
        .path_normalize = in->path_rules_given ? in->path_normalize : !is_s3,
        .path_encode = in->path_rules_given ? in->path_encode : !is_s3,
        .query = in->query,
        .query_len = in->query_len,
        .query_skip = a.presigned ? "X-Amz-Signature" : NULL,
        .headers = in->hdr,
        .n_headers = in->n_hdr,
        .signed_headers = a.signed_headers,
        .payload_hash = payload,
    };
    snprintf(scope, sizeof scope, "%s/%s/%s/aws4_request", a.date8, a.region, a.service);
    if (bm_sigv4_canonical_request(&rq, &canon) != BM_OK ||
        bm_sigv4_string_to_sign(a.amz_date, scope, canon.data, canon.len, &sts) != BM_OK ||
        bm_sigv4_signing_key(cred->secret, a.date8, a.region, a.service, key) != BM_OK ||
        bm_sigv4_signature(key, sts.data, sts.len, got) != BM_OK) {
        snprintf(out->detail, sizeof out->detail, "cannot canonicalise the request");
        goto done;
    }
    if (strlen(a.signature) != BM_SHA256_HEX_LEN ||
        !bm_crypto_equal(got, a.signature, BM_SHA256_HEX_LEN)) {
        /* The canonical request is what a client author needs to compare with their own. */
        BM_LOG(BM_DEBUG, "emu", "sigv4_mismatch", "signature does not match",
               BM_KV_STR("canonical_request", canon.data), BM_KV_STR("akid", a.akid));
        res = EMU_AUTH_MISMATCH;
        goto done;
    }
    res = EMU_AUTH_OK;
    if (streaming) {
        if (!bm__emu_dechunk(in->body, streaming_signed ? key : NULL, a.amz_date, scope,
                             a.signature)) {
            res = EMU_AUTH_BAD_CHUNK;
            goto done;
        }
        const char *dl = hdr_get(in, "x-amz-decoded-content-length", &len);
        if (dl != NULL && strtoull(dl, NULL, 10) != in->body->len)
            res = EMU_AUTH_BAD_CHUNK;
    }
done:
    bm_secure_zero(key, sizeof key);
    bm_buf_cleanup(&canon);
    bm_buf_cleanup(&sts);
    return res;
}
