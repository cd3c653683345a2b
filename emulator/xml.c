/* xml.c: XML escaping for every response the emulator writes, and a small non-validating
 * parser for the few XML request bodies S3 takes (notification configuration, CreateBucket). */
#include "emulator/emu_int.h"

#include <string.h>

bm_err bm__emu_xml_escape(struct bm_buf *b, const char *s, size_t len)
{
    bm_err rc = BM_OK;
    for (size_t i = 0; i < len && rc == BM_OK;) {
        size_t start = i;
        while (i < len && strchr("&<>\"'\r", s[i]) == NULL &&
               ((unsigned char)s[i] >= 0x20 || s[i] == '\n' || s[i] == '\t'))
            i++;
        if (i > start)
            rc = bm_buf_append(b, s + start, i - start);
        if (i >= len || rc != BM_OK)
            break;
        switch (s[i]) {
        case '&':
            rc = bm_buf_append_str(b, "&amp;");
            break;
        case '<':
            rc = bm_buf_append_str(b, "&lt;");
            break;
        case '>':
            rc = bm_buf_append_str(b, "&gt;");
            break;
        case '"':
            rc = bm_buf_append_str(b, "&quot;");
            break;
        case '\'':
            rc = bm_buf_append_str(b, "&apos;");
            break;
        default:
            /* \r and other control bytes as character references, so that an XML parser
             * gives back exactly what was stored (SQS keeps \r in bodies). */
            rc = bm_buf_appendf(b, "&#x%X;", (unsigned char)s[i]);
        }
        i++;
    }
    return rc;
}

bm_err bm__emu_xml_elem(struct bm_buf *b, const char *name, const char *s, size_t len)
{
    bm_err rc;
    if ((rc = bm_buf_appendf(b, "<%s>", name)) != BM_OK ||
        (rc = bm__emu_xml_escape(b, s, len)) != BM_OK)
        return rc;
    return bm_buf_appendf(b, "</%s>", name);
}

/* ---- parser --------------------------------------------------------------------------- */
struct xp {
    const char *s;
    size_t len, pos;
    int depth;
};

static void skip_space(struct xp *p)
{
    while (p->pos < p->len && strchr(" \t\r\n", p->s[p->pos]) != NULL)
        p->pos++;
}

static bool starts(const struct xp *p, const char *lit)
{
    size_t n = strlen(lit);
    return p->len - p->pos >= n && memcmp(p->s + p->pos, lit, n) == 0;
}

/* Skips a construct ending in lit (comments, processing instructions, DOCTYPE). */
static bool skip_past(struct xp *p, const char *lit)
{
    size_t n = strlen(lit);
    while (p->pos + n <= p->len) {
        if (memcmp(p->s + p->pos, lit, n) == 0) {
            p->pos += n;
            return true;
        }
        p->pos++;
    }
    return false;
}

/* Appends character data with the five predefined entities and character references decoded. */
static bm_err append_text(struct bm_buf *t, const char *s, size_t len)
{
    static const struct {
        const char *ent;
        char c;
    } ents[] = {{"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&quot;", '"'}, {"&apos;", '\''}};
    bm_err rc = BM_OK;
    for (size_t i = 0; i < len && rc == BM_OK; i++) {
        if (s[i] != '&') {
            rc = bm_buf_append_char(t, s[i]);
            continue;
        }
        const char *semi = memchr(s + i, ';', len - i);
        if (semi == NULL)
            return BM_E_BAD_REQUEST;
        size_t elen = (size_t)(semi - (s + i)) + 1;
        bool done = false;
        for (size_t k = 0; k < sizeof ents / sizeof ents[0] && !done; k++) {
            if (elen == strlen(ents[k].ent) && memcmp(s + i, ents[k].ent, elen) == 0) {
                rc = bm_buf_append_char(t, ents[k].c);
                done = true;
            }
        }
        if (!done && elen > 3 && s[i + 1] == '#') {
            bool hex = s[i + 2] == 'x';
            unsigned long cp = 0;
            for (size_t k = i + (hex ? 3 : 2); k < i + elen - 1; k++) {
                int d = -1;
                char c = s[k];
                if (c >= '0' && c <= '9')
                    d = c - '0';
                else if (hex && c >= 'a' && c <= 'f')
                    d = c - 'a' + 10;
                else if (hex && c >= 'A' && c <= 'F')
                    d = c - 'A' + 10;
                if (d < 0 || cp > 0x10FFFF)
                    return BM_E_BAD_REQUEST;
                cp = cp * (hex ? 16 : 10) + (unsigned long)d;
            }
            /* UTF-8 encode the code point. */
            unsigned char u[4];
            size_t n;
            if (cp < 0x80) {
                u[0] = (unsigned char)cp;
                n = 1;
            } else if (cp < 0x800) {
                u[0] = (unsigned char)(0xC0 | cp >> 6);
                u[1] = (unsigned char)(0x80 | (cp & 0x3F));
                n = 2;
            } else if (cp < 0x10000) {
                u[0] = (unsigned char)(0xE0 | cp >> 12);
                u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
                u[2] = (unsigned char)(0x80 | (cp & 0x3F));
                n = 3;
            } else if (cp <= 0x10FFFF) {
                u[0] = (unsigned char)(0xF0 | cp >> 18);
                u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
                u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
                u[3] = (unsigned char)(0x80 | (cp & 0x3F));
                n = 4;
            } else {
                return BM_E_BAD_REQUEST;
            }
            rc = bm_buf_append(t, u, n);
            done = true;
        }
        if (!done)
            return BM_E_BAD_REQUEST;
        i += elen - 1;
    }
    return rc;
}

static bool name_char(char c)
{
    return c != '\0' && strchr(" \t\r\n/>=", c) == NULL;
}

static bm_err parse_element(struct xp *p, struct emu_xml **out);

/* Parses the content of an element up to and including its end tag. */
static bm_err parse_content(struct xp *p, struct emu_xml *x, const char *name, size_t nlen)
{
    struct bm_buf text;
    struct emu_xml **tail = &x->child;
    bm_err rc = BM_OK;
    bm_buf_init(&text, 1 << 20);
    while (rc == BM_OK) {
        if (p->pos >= p->len) {
            rc = BM_E_BAD_REQUEST;
        } else if (starts(p, "</")) {
            p->pos += 2;
            if (p->len - p->pos < nlen || memcmp(p->s + p->pos, name, nlen) != 0) {
                rc = BM_E_BAD_REQUEST;
                break;
            }
            p->pos += nlen;
            skip_space(p);
            if (p->pos >= p->len || p->s[p->pos] != '>')
                rc = BM_E_BAD_REQUEST;
            p->pos++;
            break;
        } else if (starts(p, "<!--")) {
            rc = skip_past(p, "-->") ? BM_OK : BM_E_BAD_REQUEST;
        } else if (starts(p, "<![CDATA[")) {
            size_t start = p->pos + 9;
            if (!skip_past(p, "]]>"))
                rc = BM_E_BAD_REQUEST;
            else
                rc = bm_buf_append(&text, p->s + start, p->pos - 3 - start);
        } else if (starts(p, "<?")) {
            rc = skip_past(p, "?>") ? BM_OK : BM_E_BAD_REQUEST;
        } else if (p->s[p->pos] == '<') {
            rc = parse_element(p, tail);
            if (rc == BM_OK)
                tail = &(*tail)->next;
        } else {
            size_t start = p->pos;
            while (p->pos < p->len && p->s[p->pos] != '<')
                p->pos++;
            rc = append_text(&text, p->s + start, p->pos - start);
        }
    }
    if (rc == BM_OK) {
        /* Trim surrounding whitespace: these bodies hold names and values, not prose. */
        size_t a = 0, z = text.len;
        while (a < z && strchr(" \t\r\n", text.data[a]) != NULL)
            a++;
        while (z > a && strchr(" \t\r\n", text.data[z - 1]) != NULL)
            z--;
        x->text = bm_strndup(text.data ? text.data + a : "", z - a);
        if (x->text == NULL)
            rc = BM_E_NOMEM;
    }
    bm_buf_cleanup(&text);
    return rc;
}

static bm_err parse_element(struct xp *p, struct emu_xml **out)
{
    if (++p->depth > 32)
        return BM_E_BAD_REQUEST; /* no legitimate body nests this deep */
    p->pos++;                    /* '<' */
    size_t start = p->pos;
    while (p->pos < p->len && name_char(p->s[p->pos]))
        p->pos++;
    size_t nlen = p->pos - start;
    if (nlen == 0)
        return BM_E_BAD_REQUEST;
    const char *name = p->s + start;
    /* Attributes (xmlns) are skipped, honouring quotes. */
    bool empty = false;
    while (p->pos < p->len && p->s[p->pos] != '>') {
        char c = p->s[p->pos];
        if (c == '"' || c == '\'') {
            const char *q = memchr(p->s + p->pos + 1, c, p->len - p->pos - 1);
            if (q == NULL)
                return BM_E_BAD_REQUEST;
            p->pos = (size_t)(q - p->s);
        } else if (c == '/' && p->pos + 1 < p->len && p->s[p->pos + 1] == '>') {
            empty = true;
        }
        p->pos++;
    }
    if (p->pos >= p->len)
        return BM_E_BAD_REQUEST;
    p->pos++; /* '>' */
    struct emu_xml *x = bm_calloc(1, sizeof *x);
    if (x == NULL)
        return BM_E_NOMEM;
    *out = x; /* linked before parsing on, so the caller frees it on failure */
    const char *colon = memchr(name, ':', nlen);
    const char *local = colon ? colon + 1 : name;
    x->name = bm_strndup(local, nlen - (size_t)(local - name));
    if (x->name == NULL)
        return BM_E_NOMEM;
    bm_err rc = BM_OK;
    if (empty) {
        x->text = bm_strdup("");
        rc = x->text ? BM_OK : BM_E_NOMEM;
    } else {
        rc = parse_content(p, x, name, nlen);
    }
    p->depth--;
    return rc;
}

bm_err bm__emu_xml_parse(const char *s, size_t len, struct emu_xml **out)
{
    struct xp p = {.s = s, .len = len};
    struct emu_xml *root = NULL;
    bm_err rc = BM_OK;
    if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
        p.pos = 3; /* a UTF-8 byte order mark */
    for (;;) {
        skip_space(&p);
        if (starts(&p, "<?")) {
            if (!skip_past(&p, "?>"))
                return BM_E_BAD_REQUEST;
        } else if (starts(&p, "<!--")) {
            if (!skip_past(&p, "-->"))
                return BM_E_BAD_REQUEST;
        } else if (starts(&p, "<!")) {
            return BM_E_BAD_REQUEST; /* no DOCTYPE: no entity expansion games */
        } else {
            break;
        }
    }
    if (p.pos >= len || s[p.pos] != '<')
        return BM_E_BAD_REQUEST;
    rc = parse_element(&p, &root);
    skip_space(&p);
    if (rc == BM_OK && p.pos != len)
        rc = BM_E_BAD_REQUEST;
    if (rc != BM_OK) {
        bm__emu_xml_free(root);
        return rc;
    }
    *out = root;
    return BM_OK;
}

void bm__emu_xml_free(struct emu_xml *x)
{
    while (x != NULL) {
        struct emu_xml *next = x->next;
        bm__emu_xml_free(x->child);
        bm_free(x->name);
        bm_free(x->text);
        bm_free(x);
        x = next;
    }
}

struct emu_xml *bm__emu_xml_child(const struct emu_xml *x, const char *name)
{
    for (struct emu_xml *c = x ? x->child : NULL; c != NULL; c = c->next) {
        if (strcmp(c->name, name) == 0)
            return c;
    }
    return NULL;
}
