/* s3_names.c: what S3 accepts as a bucket name, an object key, a version id and an ETag,
 * checked before any URL is built or any fetch is made. Events are untrusted input: a name S3
 * could never have sent is refused here rather than turned into a host name, a path or a new
 * identity for an object already counted. */
#include "core/bm_aws.h"

#include <string.h>

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool has_prefix(const char *s, size_t len, const char *pre)
{
    size_t n = strlen(pre);
    return len >= n && memcmp(s, pre, n) == 0;
}

static bool has_suffix(const char *s, size_t len, const char *suf)
{
    size_t n = strlen(suf);
    return len >= n && memcmp(s + len - n, suf, n) == 0;
}

/* Four dot-separated groups of 1-3 digits: what S3 calls "formatted as an IP address". */
static bool looks_like_ipv4(const char *s, size_t len)
{
    int groups = 0, digits = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.') {
            if (digits == 0)
                return false;
            groups++;
            digits = 0;
        } else if (s[i] >= '0' && s[i] <= '9') {
            if (++digits > 3)
                return false;
        } else {
            return false;
        }
    }
    return digits > 0 && groups == 3;
}

const char *bm_s3_bucket_check(const char *name, size_t len)
{
    /* https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html */
    static const char *const bad_prefix[] = {"xn--", "sthree-", "amzn-s3-demo-"};
    static const char *const bad_suffix[] = {"-s3alias", "--ol-s3", ".mrap", "--x-s3",
                                             "--table-s3"};
    if (len < 3 || len > 63)
        return "a bucket name has 3 to 63 characters";
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!is_lower_alnum(c) && c != '.' && c != '-')
            return "a bucket name has only lowercase letters, digits, dots and hyphens";
        if (c == '.' && i > 0 && name[i - 1] == '.')
            return "a bucket name has no two adjacent dots";
    }
    if (!is_lower_alnum(name[0]) || !is_lower_alnum(name[len - 1]))
        return "a bucket name begins and ends with a letter or a digit";
    if (looks_like_ipv4(name, len))
        return "a bucket name is not an IP address";
    for (size_t i = 0; i < sizeof bad_prefix / sizeof bad_prefix[0]; i++)
        if (has_prefix(name, len, bad_prefix[i]))
            return "a bucket name does not start with a prefix S3 reserves";
    for (size_t i = 0; i < sizeof bad_suffix / sizeof bad_suffix[0]; i++)
        if (has_suffix(name, len, bad_suffix[i]))
            return "a bucket name does not end with a suffix S3 reserves";
    return NULL;
}

/* Length of the UTF-8 sequence at s (at most avail bytes), or 0 when it is not well formed
 * (overlong forms, surrogates and code points past U+10FFFF included). */
static size_t utf8_len(const unsigned char *s, size_t avail)
{
    unsigned c = s[0];
    size_t n;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    unsigned cp = c & (0x3F >> (n - 1));
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

const char *bm_s3_key_check(const char *key, size_t len)
{
    /* https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-keys.html: a UTF-8 string
     * of up to 1024 bytes. NUL is refused too: a C string would end there and name another
     * object. */
    if (len == 0)
        return "an object key is not empty";
    if (len > BM_S3_MAX_KEY)
        return "an object key has at most 1024 bytes";
    for (size_t i = 0; i < len;) {
        if (key[i] == '\0')
            return "an object key has no NUL byte";
        size_t n = utf8_len((const unsigned char *)key + i, len - i);
        if (n == 0)
            return "an object key is UTF-8";
        i += n;
    }
    return NULL;
}

const char *bm_s3_version_check(const char *v, size_t len)
{
    /* Version ids are opaque, URL-ready strings of at most 1024 bytes; the ones S3 issues are
     * letters, digits and "._-+/=" ("null" for objects written while unversioned). */
    if (len == 0 || len > BM_S3_MAX_KEY)
        return "a version id has 1 to 1024 characters";
    for (size_t i = 0; i < len; i++) {
        char c = v[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  strchr("._-+/=", c) != NULL;
        if (!ok || c == '\0')
            return "a version id has only letters, digits and ._-+/=";
    }
    return NULL;
}

const char *bm_s3_etag_normalize(const char *in, size_t len, char out[BM_S3_ETAG_MAX + 1])
{
    /* S3 sends the ETag quoted in headers and unquoted or quoted in events; a weak ETag
     * (W/"...") is an HTTP cache's, never S3's. The forms S3 makes: the MD5 of the bytes
     * (32 hex digits), or for a multipart upload the MD5 of the parts' MD5s, '-', the part
     * count (1..10000). Hex is lowercased so that case cannot make a second identity. */
    if (len >= 2 && in[0] == 'W' && in[1] == '/')
        return "a weak ETag (W/) is not an S3 ETag";
    if (len >= 2 && in[0] == '"' && in[len - 1] == '"') {
        in++;
        len -= 2;
    }
    if (len < 32 || len > BM_S3_ETAG_MAX)
        return "an S3 ETag is 32 hex digits, optionally -N for a multipart upload";
    for (size_t i = 0; i < 32; i++) {
        char c = in[i];
        if (c >= 'A' && c <= 'F')
            c = (char)(c - 'A' + 'a');
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return "an S3 ETag is 32 hex digits, optionally -N for a multipart upload";
        out[i] = c;
    }
    size_t n = 32;
    if (len > 32) {
        /* "-N": N from 1 to 10000, no leading zero. */
        if (in[32] != '-' || len == 33 || len > 38 || in[33] == '0')
            return "an S3 ETag is 32 hex digits, optionally -N for a multipart upload";
        unsigned parts = 0;
        for (size_t i = 33; i < len; i++) {
            if (in[i] < '0' || in[i] > '9')
                return "an S3 ETag is 32 hex digits, optionally -N for a multipart upload";
            parts = parts * 10 + (unsigned)(in[i] - '0');
        }
        if (parts > 10000)
            return "an S3 ETag's part count is at most 10000";
        memcpy(out + 32, in + 32, len - 32);
        n = len;
    }
    out[n] = '\0';
    return NULL;
}
