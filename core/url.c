/* url.c: percent-encoding as SigV4, S3 keys and form bodies need it (RFC 3986 section 2,
 * application/x-www-form-urlencoded). Pure functions over caller buffers; thread-safe. */
#include "core/core_int.h"

#include <string.h>

int bm__hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bm_err bm_url_decode(const char *s, size_t len, bool form, struct bm_buf *out)
{
    size_t old_len = out->len;
    bm_err rc = bm_buf_reserve(out, len); /* decoding never grows the text */
    if (rc != BM_OK)
        return rc;
    /* One left-to-right pass: a '+' that came in as %2B must stay a '+', so '+' -> ' ' and
     * %XX -> byte are decided per input character, never as two passes (docs/formats.md 4.1). */
    char *d = out->data + out->len;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            int hi = i + 2 < len ? bm__hex_value((unsigned char)s[i + 1]) : -1;
            int lo = hi >= 0 ? bm__hex_value((unsigned char)s[i + 2]) : -1;
            if (lo < 0) {
                out->len = old_len;
                out->data[old_len] = '\0';
                return BM_E_BAD_REQUEST;
            }
            *d++ = (char)(hi << 4 | lo);
            i += 2;
        } else if (c == '+' && form) {
            *d++ = ' ';
        } else {
            *d++ = (char)c;
        }
    }
    out->len = (size_t)(d - out->data);
    out->data[out->len] = '\0';
    return BM_OK;
}

static bool is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

bm_err bm_url_encode(const char *s, size_t len, const char *safe, bool form, struct bm_buf *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t old_len = out->len;
    bm_err rc = BM_OK;
    for (size_t i = 0; i < len && rc == BM_OK;) {
        /* Copy the longest run of characters that stay as they are in one append. */
        size_t start = i;
        while (i < len && (is_unreserved((unsigned char)s[i]) ||
                           (s[i] != '\0' && safe != NULL && strchr(safe, s[i]) != NULL)))
            i++;
        if (i > start)
            rc = bm_buf_append(out, s + start, i - start);
        if (rc != BM_OK || i >= len)
            break;
        unsigned char c = (unsigned char)s[i++];
        if (c == ' ' && form) {
            rc = bm_buf_append_char(out, '+');
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = bm_buf_append(out, esc, 3);
        }
    }
    if (rc != BM_OK && out->data != NULL) {
        out->len = old_len;
        out->data[old_len] = '\0';
    }
    return rc;
}

bool bm_url_query_next(const char *s, size_t len, size_t *pos, struct bm_url_pair *pair)
{
    while (*pos < len) {
        size_t start = *pos;
        const char *amp = memchr(s + start, '&', len - start);
        size_t end = amp ? (size_t)(amp - s) : len;
        *pos = amp ? end + 1 : len;
        if (end == start)
            continue; /* "a=1&&b=2": empty pieces are no parameters */
        const char *eq = memchr(s + start, '=', end - start);
        pair->name = s + start;
        pair->name_len = eq ? (size_t)(eq - (s + start)) : end - start;
        pair->has_value = eq != NULL;
        pair->value = eq ? eq + 1 : s + end;
        pair->value_len = eq ? (size_t)(s + end - (eq + 1)) : 0;
        return true;
    }
    return false;
}
