/* crypto.c: the digests, MAC and encodings that SigV4, S3 ETags and SQS MD5s need, as thin
 * wrappers over OpenSSL's libcrypto (never hand-written crypto). Stateless and thread-safe. */
#include "core/bm_rt.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

static bm_err digest(const EVP_MD *md, const void *p, size_t len, unsigned char *out)
{
    /* EVP_Digest only fails on allocation failure inside OpenSSL; map it like ours. */
    return EVP_Digest(p, len, out, NULL, md, NULL) == 1 ? BM_OK : BM_E_NOMEM;
}

bm_err bm_sha256(const void *p, size_t len, unsigned char out[BM_SHA256_LEN])
{
    return digest(EVP_sha256(), p, len, out);
}

bm_err bm_md5(const void *p, size_t len, unsigned char out[BM_MD5_LEN])
{
    return digest(EVP_md5(), p, len, out);
}

bm_err bm_hmac_sha256(const void *key, size_t key_len, const void *p, size_t len,
                      unsigned char out[BM_SHA256_LEN])
{
    unsigned int out_len = 0;
    if (key_len > INT32_MAX)
        return BM_E_TOO_LARGE;
    if (HMAC(EVP_sha256(), key, (int)key_len, p, len, out, &out_len) == NULL ||
        out_len != BM_SHA256_LEN)
        return BM_E_NOMEM;
    return BM_OK;
}

void bm_hex(const unsigned char *p, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * len] = '\0';
}

/* A digest of len bytes as lowercase hex into out (2 * n + 1 bytes). */
static bm_err digest_hex(const EVP_MD *md, const void *p, size_t len, char *out)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    bm_err rc = digest(md, p, len, d);
    if (rc == BM_OK)
        bm_hex(d, (size_t)EVP_MD_size(md), out);
    return rc;
}

bm_err bm_sha256_hex(const void *p, size_t len, char out[BM_SHA256_HEX_LEN + 1])
{
    return digest_hex(EVP_sha256(), p, len, out);
}

bm_err bm_md5_hex(const void *p, size_t len, char out[BM_MD5_HEX_LEN + 1])
{
    return digest_hex(EVP_md5(), p, len, out);
}

bool bm_crypto_equal(const void *a, const void *b, size_t len)
{
    /* Signatures are compared in constant time so a timing side channel cannot guess them. */
    return CRYPTO_memcmp(a, b, len) == 0;
}

bm_err bm_base64_encode(const void *p, size_t len, struct bm_buf *out)
{
    if (len > (SIZE_MAX / 4) * 3 - 3 || len > INT32_MAX)
        return BM_E_TOO_LARGE;
    size_t need = 4 * ((len + 2) / 3);
    bm_err rc = bm_buf_reserve(out, need);
    if (rc != BM_OK)
        return rc;
    int n = EVP_EncodeBlock((unsigned char *)out->data + out->len, p, (int)len);
    out->len += (size_t)n;
    out->data[out->len] = '\0';
    return BM_OK;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

bm_err bm_base64_decode(const char *s, size_t len, struct bm_buf *out)
{
    /* EVP_DecodeBlock accepts garbage padding and keeps the pad bytes as zeros, so validate
     * strictly here: canonical alphabet, length a multiple of 4, '=' only at the very end. */
    if (len % 4 != 0)
        return BM_E_BAD_REQUEST;
    size_t pad = 0;
    if (len > 0 && s[len - 1] == '=')
        pad++;
    if (len > 1 && s[len - 2] == '=')
        pad++;
    for (size_t i = 0; i < len - pad; i++) {
        if (b64_value((unsigned char)s[i]) < 0)
            return BM_E_BAD_REQUEST;
    }
    if (len > INT32_MAX)
        return BM_E_TOO_LARGE;
    size_t max = len / 4 * 3;
    bm_err rc = bm_buf_reserve(out, max);
    if (rc != BM_OK)
        return rc;
    int n =
        EVP_DecodeBlock((unsigned char *)out->data + out->len, (const unsigned char *)s, (int)len);
    if (n < 0 || (size_t)n < pad)
        return BM_E_BAD_REQUEST;
    out->len += (size_t)n - pad;
    out->data[out->len] = '\0';
    return BM_OK;
}
