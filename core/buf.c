/* buf.c: a growable byte buffer with a hard cap (curl dynbuf's `toobig`), used for every
 * body, line carry-over and JSON document we build. */
#include "core/bm_rt.h"

#include <stdio.h>
#include <string.h>

void bm_buf_init(struct bm_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void bm_buf_cleanup(struct bm_buf *b)
{
    BM_FREE(b->data);
    b->len = 0;
    b->cap = 0;
}

void bm_buf_reset(struct bm_buf *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

bm_err bm_buf_reserve(struct bm_buf *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra)
        return BM_E_TOO_LARGE;
    size_t need = b->len + extra + 1; /* + NUL */
    if (need <= b->cap)
        return BM_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    char *p = bm_realloc(b->data, cap);
    if (p == NULL)
        return BM_E_NOMEM;
    b->data = p;
    b->cap = cap;
    return BM_OK;
}

bm_err bm_buf_append_stream(struct bm_buf *b, FILE *f)
{
    char chunk[8192];
    size_t n;
    bm_err rc = BM_OK;
    while (rc == BM_OK && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        rc = bm_buf_append(b, chunk, n);
    bm_secure_zero(chunk, sizeof chunk);
    return rc;
}

bm_err bm_buf_append(struct bm_buf *b, const void *p, size_t len)
{
    bm_err rc = bm_buf_reserve(b, len);
    if (rc != BM_OK)
        return rc;
    if (len > 0)
        memcpy(b->data + b->len, p, len);
    b->len += len;
    b->data[b->len] = '\0';
    return BM_OK;
}

bm_err bm_buf_append_str(struct bm_buf *b, const char *s)
{
    return bm_buf_append(b, s, strlen(s));
}

bm_err bm_buf_append_char(struct bm_buf *b, char c)
{
    return bm_buf_append(b, &c, 1);
}

bm_err bm_buf_appendf(struct bm_buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return BM_E_INTERNAL;
    if ((size_t)n < sizeof small)
        return bm_buf_append(b, small, (size_t)n);
    bm_err rc = bm_buf_reserve(b, (size_t)n);
    if (rc != BM_OK)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return BM_OK;
}

/* Length of the valid UTF-8 sequence starting at s (1..4), or 0 when it is not valid UTF-8
 * (overlongs, surrogates and code points past U+10FFFF rejected, RFC 3629). */
static size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

bm_err bm_buf_append_json_str(struct bm_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t old_len = b->len;
    bm_err rc = bm_buf_append_char(b, '"');
    size_t i = 0;
    while (rc == BM_OK && i < len) {
        /* Copy the longest run that needs no escaping in one append. */
        size_t start = i;
        while (i < len && p[i] >= 0x20 && p[i] < 0x80 && p[i] != '"' && p[i] != '\\')
            i++;
        if (i > start && (rc = bm_buf_append(b, p + start, i - start)) != BM_OK)
            break;
        if (i >= len)
            break;
        unsigned char c = p[i];
        if (c >= 0x80) {
            size_t n = utf8_seq_len(p + i, len - i);
            if (n == 0) {
                rc = bm_buf_append(b, "\xEF\xBF\xBD", 3); /* U+FFFD for a bad byte */
                i++;
            } else {
                rc = bm_buf_append(b, p + i, n);
                i += n;
            }
            continue;
        }
        char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t elen = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
        }
        rc = bm_buf_append(b, esc, elen);
        i++;
    }
    if (rc == BM_OK)
        rc = bm_buf_append_char(b, '"');
    if (rc != BM_OK && b->data != NULL) {
        b->len = old_len; /* all or nothing, like every other append */
        b->data[old_len] = '\0';
    }
    return rc;
}

char *bm_buf_steal(struct bm_buf *b)
{
    char *d = b->data;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return d;
}
