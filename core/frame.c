/* frame.c: splits a decompressed byte stream into records. Real objects are JSON lines; a
 * JSON array of records and pretty-printed objects (docs/formats.md 1.2, "defensive note") are
 * accepted too. A record split across chunks is carried in a capped buffer; one over the cap
 * is dropped while the stream goes on, so memory never depends on the object. */
#include "core/core_int.h"

#include <string.h>

void bm__framer_init(struct bm__framer *f, size_t max_line)
{
    memset(f, 0, sizeof *f);
    f->mode = BM__FRAME_DETECT;
    bm_buf_init(&f->carry, max_line);
}

void bm__framer_cleanup(struct bm__framer *f)
{
    bm_buf_cleanup(&f->carry);
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/* Reports records dropped for the cap, in stream order, as fn(ctx, NULL, 0). */
static bm_err flush_drops(struct bm__framer *f, bm__record_fn fn, void *ctx)
{
    for (; f->reported < f->too_long; f->reported++) {
        bm_err rc = fn(ctx, NULL, 0);
        if (rc != BM_OK)
            return rc;
    }
    return BM_OK;
}

/* Trims whitespace (CRLF endings included) and drops blank records. */
static bm_err emit(struct bm__framer *f, const char *rec, size_t len, bm__record_fn fn, void *ctx)
{
    bm_err rc = flush_drops(f, fn, ctx);
    if (rc != BM_OK)
        return rc;
    while (len > 0 && is_ws(rec[len - 1]))
        len--;
    while (len > 0 && is_ws(*rec)) {
        rec++;
        len--;
    }
    return len == 0 ? BM_OK : fn(ctx, rec, len);
}

/* Scans data inside a value, tracking strings and nesting. Returns the number of bytes up to
 * and including the byte that closes the value, or len when the value goes on. */
static size_t value_scan(struct bm__framer *f, const char *data, size_t len, bool *closed)
{
    *closed = false;
    for (size_t i = 0; i < len; i++) {
        char c = data[i];
        if (f->in_str) {
            if (f->esc) {
                f->esc = false;
            } else if (c == '\\') {
                f->esc = true;
            } else if (c == '"') {
                f->in_str = false;
            } else {
                /* Jump over plain string bytes to the next quote or backslash. */
                const char *q = memchr(data + i, '"', len - i);
                const char *b = memchr(data + i, '\\', (q ? (size_t)(q - data) : len) - i);
                const char *next = b ? b : q;
                if (next == NULL)
                    return len;
                i = (size_t)(next - data) - 1;
            }
            continue;
        }
        if (c == '"') {
            f->in_str = true;
        } else if (c == '{' || c == '[') {
            f->depth++;
        } else if (c == '}' || c == ']') {
            if (--f->depth == 0) {
                *closed = true;
                return i + 1;
            }
        }
    }
    return len;
}

/* Adds part of a record to the carry buffer, or starts skipping it when over the cap. */
static void carry_add(struct bm__framer *f, const char *p, size_t n)
{
    if (f->skipping)
        return;
    if (bm_buf_append(&f->carry, p, n) != BM_OK) {
        /* Over the cap (or out of memory, which the cap makes unlikely): drop the record. */
        f->skipping = true;
        f->too_long++;
        bm_buf_reset(&f->carry);
    }
}

static bm_err values_feed(struct bm__framer *f, const char *data, size_t len, bm__record_fn fn,
                          void *ctx)
{
    while (len > 0) {
        if (f->depth == 0) {
            char c = *data;
            if (is_ws(c) || (f->mode == BM__FRAME_ARRAY && (c == ',' || c == '[' || c == ']'))) {
                data++;
                len--;
                continue;
            }
            if (c != '{' && c != '[') {
                /* Not JSON: hand the rest of this line to the parser, which reports it. */
                const char *nl = memchr(data, '\n', len);
                size_t n = nl ? (size_t)(nl - data) : len;
                bm_err rc = emit(f, data, n, fn, ctx);
                if (rc != BM_OK)
                    return rc;
                data += n;
                len -= n;
                continue;
            }
            f->depth = 1;
            f->in_str = false;
            f->esc = false;
            f->skipping = false;
            bm_buf_reset(&f->carry);
            carry_add(f, data, 1);
            data++;
            len--;
            continue;
        }
        bool closed;
        size_t n = value_scan(f, data, len, &closed);
        if (f->carry.len + n > f->carry.max && !f->skipping) {
            f->skipping = true;
            f->too_long++;
            bm_buf_reset(&f->carry);
        }
        carry_add(f, data, n);
        data += n;
        len -= n;
        if (closed) {
            bm_err rc = f->skipping ? BM_OK : emit(f, f->carry.data, f->carry.len, fn, ctx);
            f->skipping = false;
            bm_buf_reset(&f->carry);
            if (rc != BM_OK)
                return rc;
        }
    }
    return BM_OK;
}

/* True when line holds the start of a JSON value that does not end on it: the first line of
 * a pretty-printed object ("{" alone, or `{"a": 1,`). */
static bool opens_multiline_value(const char *line, size_t len)
{
    struct bm__framer probe;
    memset(&probe, 0, sizeof probe);
    size_t i = 0;
    while (i < len && is_ws(line[i]))
        i++;
    if (i == len || line[i] != '{')
        return false;
    probe.depth = 1;
    bool closed;
    value_scan(&probe, line + i + 1, len - i - 1, &closed);
    return !closed;
}

static bm_err lines_feed(struct bm__framer *f, const char *data, size_t len, bm__record_fn fn,
                         void *ctx)
{
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t seg = nl ? (size_t)(nl - data) : len;
        if (f->skipping) {
            if (nl == NULL)
                return BM_OK;
            f->skipping = false;
        } else if (f->carry.len + seg > f->carry.max) {
            f->too_long++;
            bm_buf_reset(&f->carry);
            f->skipping = nl == NULL; /* the rest of this line is still to come */
        } else if (nl == NULL) {
            carry_add(f, data, seg);
        } else {
            const char *rec = data;
            size_t rlen = seg;
            if (f->carry.len > 0) {
                carry_add(f, data, seg);
                rec = f->carry.data;
                rlen = f->carry.len;
            }
            if (!f->first_line_seen && rlen > 0) {
                size_t k = 0;
                while (k < rlen && is_ws(rec[k]))
                    k++;
                if (k < rlen) {
                    f->first_line_seen = true;
                    if (opens_multiline_value(rec, rlen)) {
                        /* Pretty-printed objects: refeed this line and the rest by value. */
                        struct bm_buf first = f->carry;
                        bm_buf_init(&f->carry, first.max);
                        f->mode = BM__FRAME_VALUES;
                        bm_err rc = values_feed(f, rec, rlen, fn, ctx);
                        bm_buf_cleanup(&first);
                        if (rc == BM_OK)
                            rc = values_feed(f, nl, len - seg, fn, ctx);
                        return rc;
                    }
                }
            }
            bm_err rc = emit(f, rec, rlen, fn, ctx);
            bm_buf_reset(&f->carry);
            if (rc != BM_OK)
                return rc;
        }
        if (nl == NULL)
            return BM_OK;
        data += seg + 1;
        len -= seg + 1;
    }
    return BM_OK;
}

bm_err bm__framer_feed(struct bm__framer *f, const char *data, size_t len, bm__record_fn fn,
                       void *ctx)
{
    static const char bom[] = "\xEF\xBB\xBF";
    while (f->mode == BM__FRAME_DETECT && len > 0) {
        /* Skip a UTF-8 byte-order mark and leading whitespace; the first real byte decides. */
        unsigned char c = (unsigned char)*data;
        if (f->depth < 3 && c == (unsigned char)bom[f->depth]) {
            f->depth++;
        } else if (!is_ws((char)c)) {
            f->depth = 0;
            f->mode = c == '[' ? BM__FRAME_ARRAY : BM__FRAME_LINES;
            break;
        }
        data++;
        len--;
    }
    switch (f->mode) {
    case BM__FRAME_DETECT:
        return BM_OK;
    case BM__FRAME_LINES:
        return lines_feed(f, data, len, fn, ctx);
    case BM__FRAME_VALUES:
    case BM__FRAME_ARRAY:
        return values_feed(f, data, len, fn, ctx);
    }
    return BM_E_INTERNAL;
}

bm_err bm__framer_finish(struct bm__framer *f, bm__record_fn fn, void *ctx)
{
    bm_err rc = BM_OK;
    /* A last line without a newline, or a value cut off at the end (the parser reports it
     * as malformed). A record being skipped for length was counted already. */
    if (!f->skipping && f->carry.len > 0)
        rc = emit(f, f->carry.data, f->carry.len, fn, ctx);
    if (rc == BM_OK)
        rc = flush_drops(f, fn, ctx);
    bm_buf_reset(&f->carry);
    f->skipping = false;
    f->depth = 0;
    return rc;
}
