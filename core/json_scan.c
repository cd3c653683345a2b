/* json_scan.c: a validating JSON skipper and the few typed readers record.c needs. It exists
 * because a full DOM parse of every prompt body is the ingest bottleneck (docs/architecture.md):
 * strings, which are most of a record's bytes, are crossed with memchr instead of byte by byte. */
#include "core/core_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define FMT BM_E_LOG_FORMAT

void bm__scan_ws(struct bm__scan *s)
{
    const char *p = s->p;
    while (p < s->end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    s->p = p;
}

static bool hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = bm__hex_value((unsigned char)p[i]);
        if (h < 0)
            return false;
        v = (v << 4) | (unsigned)h;
    }
    *out = v;
    return true;
}

/* Length of the escape sequence at b ('\\'), or 0 when it is not a valid JSON escape. */
static size_t escape_len(const char *b, const char *end)
{
    if (end - b < 2)
        return 0;
    switch (b[1]) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
        return 2;
    case 'u': {
        unsigned cp;
        return end - b >= 6 && hex4(b + 2, &cp) ? 6 : 0;
    }
    default:
        return 0;
    }
}

/* First '"' or '\\' in [p, end), or NULL. One pass instead of two memchr calls: strings are
 * most of a record's bytes, so this loop is the parser's hot path. SSE2 is part of x86-64;
 * other targets take the portable loop. */
static const char *find_quote_or_backslash(const char *p, const char *end)
{
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i bslash = _mm_set1_epi8('\\');
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        int m =
            _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)));
        if (m != 0)
            return p + __builtin_ctz((unsigned)m);
        p += 16;
    }
#endif
    for (; p < end; p++)
        if (*p == '"' || *p == '\\')
            return p;
    return NULL;
}

/* Skips a string at s->p == '"', checking its escapes. */
static bm_err skip_string(struct bm__scan *s)
{
    const char *p = s->p + 1;
    const char *end = s->end;
    for (;;) {
        const char *q = find_quote_or_backslash(p, end);
        if (q == NULL)
            return FMT;
        if (*q == '"') {
            s->p = q + 1;
            return BM_OK;
        }
        size_t n = escape_len(q, end);
        if (n == 0)
            return FMT;
        p = q + n;
    }
}

static bm_err skip_literal(struct bm__scan *s, const char *lit, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
        return FMT;
    s->p += n;
    return BM_OK;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Checks the RFC 8259 number grammar; sets *is_int when there is no fraction or exponent. */
static bm_err skip_number(struct bm__scan *s, bool *is_int)
{
    const char *p = s->p;
    const char *end = s->end;
    *is_int = true;
    if (p < end && *p == '-')
        p++;
    if (p >= end || !is_digit(*p))
        return FMT;
    if (*p == '0')
        p++;
    else
        while (p < end && is_digit(*p))
            p++;
    if (p < end && *p == '.') {
        *is_int = false;
        p++;
        if (p >= end || !is_digit(*p))
            return FMT;
        while (p < end && is_digit(*p))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        *is_int = false;
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || !is_digit(*p))
            return FMT;
        while (p < end && is_digit(*p))
            p++;
    }
    s->p = p;
    return BM_OK;
}

static bm_err skip_container(struct bm__scan *s)
{
    const bool is_obj = *s->p == '{';
    const char close = is_obj ? '}' : ']';
    if (++s->depth > BM__SCAN_MAX_DEPTH)
        return FMT; /* adversarial nesting must not exhaust the stack */
    s->p++;
    bm__scan_ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        s->depth--;
        return BM_OK;
    }
    for (;;) {
        bm_err rc;
        if (is_obj) {
            if (s->p >= s->end || *s->p != '"' || (rc = skip_string(s)) != BM_OK)
                return FMT;
            bm__scan_ws(s);
            if (s->p >= s->end || *s->p != ':')
                return FMT;
            s->p++;
            bm__scan_ws(s);
        }
        if ((rc = bm__scan_skip_value(s)) != BM_OK)
            return rc;
        bm__scan_ws(s);
        if (s->p >= s->end)
            return FMT;
        if (*s->p == ',') {
            s->p++;
            bm__scan_ws(s);
            continue;
        }
        if (*s->p != close)
            return FMT;
        s->p++;
        s->depth--;
        return BM_OK;
    }
}

bm_err bm__scan_skip_value(struct bm__scan *s)
{
    bool is_int;
    if (s->p >= s->end)
        return FMT;
    switch (*s->p) {
    case '"':
        return skip_string(s);
    case '{':
    case '[':
        return skip_container(s);
    case 't':
        return skip_literal(s, "true", 4);
    case 'f':
        return skip_literal(s, "false", 5);
    case 'n':
        return skip_literal(s, "null", 4);
    default:
        return skip_number(s, &is_int);
    }
}

/* Appends code point cp as UTF-8 to out (room for 4 bytes checked by the caller). */
static size_t put_utf8(char *out, unsigned cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

bm_err bm__scan_string(struct bm__scan *s, char *scratch, size_t cap, const char **out, size_t *len)
{
    const char *start = s->p + 1;
    bm_err rc = skip_string(s);
    if (rc != BM_OK)
        return rc;
    const char *stop = s->p - 1; /* the closing quote */
    size_t raw = (size_t)(stop - start);
    if (memchr(start, '\\', raw) == NULL) {
        *out = start;
        *len = raw;
        return BM_OK;
    }
    /* Unescaping never grows the text, so raw bytes of room are always enough. */
    if (raw > cap)
        return BM_E_TOO_LARGE;
    size_t o = 0;
    for (const char *p = start; p < stop;) {
        if (*p != '\\') {
            scratch[o++] = *p++;
            continue;
        }
        char c = p[1];
        if (c != 'u') {
            static const char from[] = "\"\\/bfnrt";
            static const char to[] = "\"\\/\b\f\n\r\t";
            scratch[o++] = to[strchr(from, c) - from];
            p += 2;
            continue;
        }
        unsigned cp = 0xFFFD, lo;
        if (!hex4(p + 2, &cp)) /* cannot happen: skip_string validated every escape */
            cp = 0xFFFD;
        p += 6;
        if (cp >= 0xD800 && cp <= 0xDBFF && stop - p >= 6 && p[0] == '\\' && p[1] == 'u' &&
            hex4(p + 2, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            p += 6;
        } else if (cp >= 0xD800 && cp <= 0xDFFF) {
            cp = 0xFFFD; /* a lone surrogate cannot be UTF-8 */
        }
        o += put_utf8(scratch + o, cp);
    }
    *out = scratch;
    *len = o;
    return BM_OK;
}

bm_err bm__scan_uint(struct bm__scan *s, uint64_t *out)
{
    const char *start = s->p;
    if (s->p >= s->end)
        return FMT;
    char c = *s->p;
    if (c != '-' && !is_digit(c)) {
        /* A string, bool, null, object or array: well-formed JSON, wrong type. */
        bm_err rc = bm__scan_skip_value(s);
        return rc == BM_OK ? BM_E_TOKENS : rc;
    }
    bool is_int;
    bm_err rc = skip_number(s, &is_int);
    if (rc != BM_OK)
        return rc;
    size_t n = (size_t)(s->p - start);
    const uint64_t limit = (uint64_t)1 << 53; /* past this a JSON number is not exact */
    if (is_int) {
        const char *p = start;
        bool neg = *p == '-';
        p += neg;
        uint64_t v = 0;
        for (; p < s->p; p++) {
            v = v * 10 + (uint64_t)(*p - '0');
            if (v >= limit)
                return BM_E_TOKENS;
        }
        if (neg && v != 0)
            return BM_E_TOKENS;
        *out = v;
        return BM_OK;
    }
    /* 12.0 or 1.2e3 are integers written another way; 12.5 and -1 are not token counts. */
    char tmp[64];
    if (n >= sizeof tmp)
        return BM_E_TOKENS;
    memcpy(tmp, start, n);
    tmp[n] = '\0';
    double d = strtod(tmp, NULL);
    if (!isfinite(d) || d < 0 || d != floor(d) || d >= (double)limit)
        return BM_E_TOKENS;
    *out = (uint64_t)d;
    return BM_OK;
}

bm_err bm__scan_open(struct bm__scan *s, struct bm__scan_iter *it)
{
    if (s->p >= s->end || (*s->p != '{' && *s->p != '['))
        return FMT;
    if (++s->depth > BM__SCAN_MAX_DEPTH)
        return FMT;
    it->is_obj = *s->p == '{';
    it->first = true;
    s->p++;
    return BM_OK;
}

bm_err bm__scan_next(struct bm__scan *s, struct bm__scan_iter *it, struct bm__scan_key *key,
                     bool *more)
{
    const char close = it->is_obj ? '}' : ']';
    bm__scan_ws(s);
    if (s->p >= s->end)
        return FMT;
    if (*s->p == close) {
        s->p++;
        s->depth--;
        *more = false;
        return BM_OK;
    }
    if (!it->first) {
        if (*s->p != ',')
            return FMT;
        s->p++;
        bm__scan_ws(s);
        if (s->p >= s->end || *s->p == close)
            return FMT; /* "[1,]" */
    }
    it->first = false;
    if (it->is_obj) {
        if (*s->p != '"')
            return FMT;
        bm_err rc = bm__scan_string(s, key->buf, sizeof key->buf, &key->p, &key->len);
        if (rc == BM_E_TOO_LARGE) {
            key->p = NULL; /* skip_string already moved past it */
            key->len = 0;
        } else if (rc != BM_OK) {
            return rc;
        }
        bm__scan_ws(s);
        if (s->p >= s->end || *s->p != ':')
            return FMT;
        s->p++;
        bm__scan_ws(s);
    }
    if (s->p >= s->end)
        return FMT;
    *more = true;
    return BM_OK;
}

bool bm__scan_key_is(const struct bm__scan_key *key, const char *name)
{
    size_t n = strlen(name);
    return key->p != NULL && key->len == n && memcmp(key->p, name, n) == 0;
}
