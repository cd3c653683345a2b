/* xml.c: just enough XML reading for AWS responses (S3 ListObjectsV2, error bodies): find the
 * text of an element, walk repeated elements, decode the five entities and numeric references.
 * AWS's response documents are machine-written and flat, so no general parser is needed. */
#include "core/core_int.h"

#include <stdlib.h>
#include <string.h>

/* Finds <name>text</name> in [p, end); sets *text to the raw text and returns the position
 * after the closing tag, or NULL. An empty element <name/> yields empty text. */
const char *bm__xml_find(const char *p, const char *end, const char *name, struct bm_str *text)
{
    size_t n = strlen(name);
    while (p < end) {
        const char *lt = memchr(p, '<', (size_t)(end - p));
        if (lt == NULL || (size_t)(end - lt) < n + 2)
            return NULL;
        const char *after = lt + 1 + n;
        if (memcmp(lt + 1, name, n) == 0 && (*after == '>' || *after == ' ' || *after == '/')) {
            const char *gt = memchr(after, '>', (size_t)(end - after));
            if (gt == NULL)
                return NULL;
            if (gt[-1] == '/') {
                *text = (struct bm_str){gt, 0};
                return gt + 1;
            }
            const char *start = gt + 1;
            for (const char *q = start; q < end; q++) {
                q = memchr(q, '<', (size_t)(end - q));
                if (q == NULL)
                    return NULL;
                if ((size_t)(end - q) >= n + 3 && q[1] == '/' && memcmp(q + 2, name, n) == 0 &&
                    q[2 + n] == '>') {
                    *text = (struct bm_str){start, (size_t)(q - start)};
                    return q + 3 + n;
                }
            }
            return NULL;
        }
        p = lt + 1;
    }
    return NULL;
}

static size_t put_utf8(char *o, unsigned long cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

bm_err bm__xml_text(struct bm_str t, struct bm_buf *out)
{
    bm_buf_reset(out);
    static const struct {
        const char *ent;
        char c;
    } ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    const char *p = t.p;
    const char *end = t.p + t.len;
    bm_err rc = BM_OK;
    while (rc == BM_OK && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        size_t run = amp ? (size_t)(amp - p) : (size_t)(end - p);
        if (run > 0 && (rc = bm_buf_append(out, p, run)) != BM_OK)
            break;
        if (amp == NULL)
            break;
        p = amp;
        bool done = false;
        for (size_t i = 0; i < sizeof ents / sizeof ents[0] && !done; i++) {
            size_t n = strlen(ents[i].ent);
            if ((size_t)(end - p) >= n && memcmp(p, ents[i].ent, n) == 0) {
                rc = bm_buf_append_char(out, ents[i].c);
                p += n;
                done = true;
            }
        }
        if (!done && end - p >= 4 && p[1] == '#') {
            /* &#NNN; or &#xHH; (S3 writes control characters in keys this way). */
            char num[16];
            const char *semi = memchr(p, ';', (size_t)(end - p) < 12 ? (size_t)(end - p) : 12);
            size_t nl = semi ? (size_t)(semi - p - 2) : 0;
            if (semi != NULL && nl > 0 && nl < sizeof num) {
                memcpy(num, p + 2, nl);
                num[nl] = '\0';
                bool hex = num[0] == 'x' || num[0] == 'X';
                char *e = NULL;
                unsigned long cp = strtoul(num + hex, &e, hex ? 16 : 10);
                if (e != NULL && *e == '\0' && cp > 0 && cp <= 0x10FFFF) {
                    char u[4];
                    rc = bm_buf_append(out, u, put_utf8(u, cp));
                    p = semi + 1;
                    done = true;
                }
            }
        }
        if (!done) {
            rc = bm_buf_append_char(out, '&'); /* not an entity: keep it as written */
            p++;
        }
    }
    if (rc == BM_OK && out->data == NULL)
        rc = bm_buf_append(out, "", 0);
    return rc;
}
