/* agg_out.c: the group_by list and the two ways aggregates are shown: the GET /aggregates
 * JSON document (also `bmas ingest --json`) and a text table for people. */
#include "core/bm_ingest.h"

#include <stdio.h>
#include <string.h>

static const char *const group_names[BM_G__COUNT] = {
    "minute",           "model_id",  "profile_type", "profile_id", "source_region",
    "inference_region", "operation", "attr1",        "attr2",      "attr3",
};

/* The output name of field f: "attr.<key>" for an attribution key (in tmp), else its own. */
static const char *out_name(const struct bm_group_by *g, enum bm_group f, char tmp[80])
{
    if (f >= BM_G_ATTR1 && f <= BM_G_ATTR3 && (int)(f - BM_G_ATTR1) < g->attrs.n) {
        snprintf(tmp, 80, "attr.%s", g->attrs.name[f - BM_G_ATTR1]);
        return tmp;
    }
    return group_names[f];
}

bm_err bm_attr_keys_parse(const char *spec, char *buf, size_t cap, struct bm_attr_keys *out,
                          struct bm_errmsg *em)
{
    struct bm_attr_keys k = {0};
    size_t len = strlen(spec);
    if (len >= cap)
        return bm_errmsg_set(em, BM_E_CONFIG, "BMAS_ATTRIBUTION_KEYS: too long");
    memcpy(buf, spec, len + 1);
    for (char *p = buf; *p != '\0';) {
        char *comma = strchr(p, ',');
        if (comma != NULL)
            *comma = '\0';
        size_t n = strlen(p);
        bool ok = n > 0 && n <= 64;
        for (size_t i = 0; ok && i < n; i++)
            ok = (p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') ||
                 (p[i] >= '0' && p[i] <= '9') || p[i] == '_' || p[i] == '-' || p[i] == '.';
        if (!ok)
            return bm_errmsg_set(em, BM_E_CONFIG,
                                 "BMAS_ATTRIBUTION_KEYS: \"%.64s\" is not a key (letters, "
                                 "digits, _ - . ; at most 64)",
                                 p);
        if (k.n == BM_ATTR_MAX)
            return bm_errmsg_set(em, BM_E_CONFIG, "BMAS_ATTRIBUTION_KEYS: at most %d keys",
                                 BM_ATTR_MAX);
        for (int i = 0; i < k.n; i++)
            if (strcmp(k.name[i], p) == 0)
                return bm_errmsg_set(em, BM_E_CONFIG, "BMAS_ATTRIBUTION_KEYS: \"%s\" given twice",
                                     p);
        k.name[k.n++] = p;
        p = comma ? comma + 1 : p + n;
    }
    *out = k;
    return BM_OK;
}

const char *bm_group_name(enum bm_group g)
{
    return (unsigned)g < BM_G__COUNT ? group_names[g] : "?";
}

bm_err bm_group_by_parse(const char *s, struct bm_group_by *out, struct bm_errmsg *em)
{
    return bm_group_by_parse_attrs(s, NULL, out, em);
}

bm_err bm_group_by_parse_attrs(const char *s, const struct bm_attr_keys *keys,
                               struct bm_group_by *out, struct bm_errmsg *em)
{
    struct bm_group_by g = {0};
    if (keys != NULL)
        g.attrs = *keys;
    const char *p = s;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len > 0 && *p == ' ') {
            p++;
            len--;
        }
        while (len > 0 && p[len - 1] == ' ')
            len--;
        if (len > 0) {
            int found = -1;
            for (int i = 0; i < BM_G_ATTR1; i++)
                if (strlen(group_names[i]) == len && memcmp(group_names[i], p, len) == 0)
                    found = i;
            for (int i = 0; i < g.attrs.n; i++)
                if (len == 5 + strlen(g.attrs.name[i]) && memcmp(p, "attr.", 5) == 0 &&
                    memcmp(p + 5, g.attrs.name[i], len - 5) == 0)
                    found = BM_G_ATTR1 + i;
            if (found < 0)
                return bm_errmsg_set(em, BM_E_BAD_REQUEST,
                                     "group_by: unknown field \"%.*s\" (use minute, model_id, "
                                     "profile_type, profile_id, source_region, "
                                     "inference_region, operation%s)",
                                     (int)len, p,
                                     g.attrs.n ? ", attr.<a key of BMAS_ATTRIBUTION_KEYS>" : "");
            for (int i = 0; i < g.n; i++)
                if (g.f[i] == (enum bm_group)found)
                    return bm_errmsg_set(em, BM_E_BAD_REQUEST, "group_by: \"%.*s\" given twice",
                                         (int)len, p);
            g.f[g.n++] = (enum bm_group)found;
        }
        p = comma ? comma + 1 : p + strlen(p);
    }
    *out = g;
    return BM_OK;
}

/* Appends v in decimal. By hand: vsnprintf per number was most of the cost of a large
 * document (a week of minutes, 8,064 rows of five numbers). */
static bm_err append_u64(struct bm_buf *b, uint64_t v)
{
    char tmp[20];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return bm_buf_append(b, tmp + i, sizeof tmp - i);
}

bm_err bm_cost_append_usd(struct bm_buf *b, const struct bm_cost *c)
{
    uint64_t m = bm_cost_micro_rounded(c);
    bm_err rc = append_u64(b, m / 1000000);
    uint64_t frac = m % 1000000;
    if (rc != BM_OK || frac == 0)
        return rc;
    char d[8] = {'.'};
    int n = 6;
    for (int i = 6; i >= 1; i--, frac /= 10)
        d[i] = (char)('0' + frac % 10);
    while (d[n] == '0')
        n--; /* the shortest form: 1.5, not 1.500000 */
    return bm_buf_append(b, d, (size_t)n + 1);
}

static bm_err write_counters(struct bm_buf *b, const struct bm_counters *c)
{
    static const char *const names[5] = {
        "\"invocations\":", ",\"input_tokens\":", ",\"output_tokens\":",
        ",\"cache_read_input_tokens\":", ",\"cache_write_input_tokens\":"};
    const uint64_t v[5] = {c->invocations, c->input.sum, c->output.sum, c->cache_read.sum,
                           c->cache_write.sum};
    bm_err rc = BM_OK;
    for (int i = 0; rc == BM_OK && i < 5; i++)
        if ((rc = bm_buf_append_str(b, names[i])) == BM_OK)
            rc = append_u64(b, v[i]);
    if (rc == BM_OK)
        rc = bm_buf_append_str(b, ",\"cost_usd\":");
    if (rc == BM_OK)
        rc = bm_cost_append_usd(b, &c->cost);
    if (rc == BM_OK)
        rc = bm_buf_append_str(b, ",\"unpriced_invocations\":");
    if (rc == BM_OK)
        rc = append_u64(b, c->unpriced);
    return rc;
}

/* The text of group field f of key k (minute as RFC 3339) in tmp or k's own strings. */
static struct bm_str field_text(const struct bm_series_key *k, enum bm_group f, char tmp[21])
{
    switch (f) {
    case BM_G_MINUTE:
        if (k->bucket == BM_NO_BUCKET)
            return (struct bm_str){"", 0};
        bm_time_format(k->bucket, tmp);
        return (struct bm_str){tmp, 20};
    case BM_G_MODEL_ID:
        return k->model_id;
    case BM_G_PROFILE_TYPE: {
        const char *t = k->type < BM_PT__COUNT ? bm_profile_type_name(k->type) : "";
        return bm_str_of(t);
    }
    case BM_G_PROFILE_ID:
        return k->profile_id;
    case BM_G_SOURCE_REGION:
        return k->source_region;
    case BM_G_INFERENCE_REGION:
        return k->inference_region;
    case BM_G_OPERATION:
        return k->operation;
    case BM_G_ATTR1:
    case BM_G_ATTR2:
    case BM_G_ATTR3:
        return k->attr[f - BM_G_ATTR1];
    case BM_G__COUNT:
        break;
    }
    return (struct bm_str){"", 0};
}

static bm_err write_time_or_null(struct bm_buf *b, int64_t t)
{
    if (t == BM_NO_BUCKET)
        return bm_buf_append_str(b, "null");
    char ts[21];
    bm_time_format(t, ts);
    return bm_buf_appendf(b, "\"%s\"", ts);
}

bm_err bm_agg_write_json(const struct bm_agg *a, const struct bm_group_by *g, int64_t from,
                         int64_t to, struct bm_buf *b)
{
    bm_err rc = bm_buf_append_str(b, "{\"from\":");
    if (rc == BM_OK)
        rc = write_time_or_null(b, from);
    if (rc == BM_OK)
        rc = bm_buf_append_str(b, ",\"to\":");
    if (rc == BM_OK)
        rc = write_time_or_null(b, to);
    if (rc == BM_OK)
        rc = bm_buf_append_str(b, ",\"group_by\":[");
    char nm[80];
    for (int i = 0; rc == BM_OK && i < g->n; i++)
        rc = bm_buf_appendf(b, "%s\"%s\"", i ? "," : "", out_name(g, g->f[i], nm));
    if (rc == BM_OK)
        rc = bm_buf_append_str(b, "],\"rows\":[");
    size_t n = bm_agg_count(a);
    for (size_t i = 0; rc == BM_OK && i < n; i++) {
        const struct bm_series *s = bm_agg_at(a, i);
        rc = bm_buf_append_str(b, i ? ",{" : "{");
        for (int j = 0; rc == BM_OK && j < g->n; j++) {
            char tmp[21];
            struct bm_str v = field_text(&s->key, g->f[j], tmp);
            rc = bm_buf_append_char(b, '"');
            if (rc == BM_OK)
                rc = bm_buf_append_str(b, out_name(g, g->f[j], nm));
            if (rc == BM_OK)
                rc = bm_buf_append_str(b, "\":");
            if (rc == BM_OK)
                rc = bm_buf_append_json_str(b, v.p, v.len);
            if (rc == BM_OK)
                rc = bm_buf_append_char(b, ',');
        }
        if (rc == BM_OK)
            rc = write_counters(b, &s->c);
        if (rc == BM_OK)
            rc = bm_buf_append_char(b, '}');
    }
    struct bm_counters t;
    bm_agg_totals(a, &t);
    if (rc == BM_OK)
        rc = bm_buf_append_str(b, "],\"totals\":{");
    if (rc == BM_OK)
        rc = write_counters(b, &t);
    if (rc == BM_OK)
        rc = bm_buf_append_str(b, "}}");
    return rc;
}

/* Display width of UTF-8 text: one column per code point (good enough for ids and regions). */
static size_t text_width(struct bm_str s)
{
    size_t w = 0;
    for (size_t i = 0; i < s.len; i++)
        w += ((unsigned char)s.p[i] & 0xC0) != 0x80;
    return w;
}

static bm_err pad(struct bm_buf *b, struct bm_str s, size_t width, bool right)
{
    size_t w = text_width(s);
    bm_err rc = BM_OK;
    for (size_t i = w; right && rc == BM_OK && i < width; i++)
        rc = bm_buf_append_char(b, ' ');
    if (rc == BM_OK)
        rc = bm_buf_append(b, s.p, s.len);
    for (size_t i = w; !right && rc == BM_OK && i < width; i++)
        rc = bm_buf_append_char(b, ' ');
    return rc;
}

#define NCOUNT 7
static const char *const count_heads[NCOUNT] = {"invocations", "input",    "output",  "cache_read",
                                                "cache_write", "cost_usd", "unpriced"};

static void counter_texts(const struct bm_counters *c, char out[NCOUNT][24])
{
    const uint64_t v[NCOUNT] = {c->invocations,    c->input.sum,       c->output.sum,
                                c->cache_read.sum, c->cache_write.sum, 0,
                                c->unpriced};
    for (int i = 0; i < NCOUNT; i++) {
        if (i == 5) {
            /* Dollars with six decimals; an unbounded buffer would not fit the table's cells. */
            struct bm_buf t;
            bm_buf_init(&t, 23);
            if (bm_cost_append_usd(&t, &c->cost) == BM_OK && t.len < 24)
                memcpy(out[i], t.data, t.len + 1);
            else
                memcpy(out[i], "?", 2);
            bm_buf_cleanup(&t);
            continue;
        }
        /* Digits written by hand: snprintf's width cannot be proven to -Wformat-truncation. */
        char tmp[24];
        int n = 0;
        uint64_t x = v[i];
        do {
            tmp[n++] = (char)('0' + x % 10);
            x /= 10;
        } while (x > 0);
        for (int j = 0; j < n; j++)
            out[i][j] = tmp[n - 1 - j];
        out[i][n] = '\0';
    }
}

static bm_err table_line(struct bm_buf *b, const struct bm_str *cells, const size_t *width,
                         int ncols, int nkeys)
{
    bm_err rc = BM_OK;
    for (int i = 0; rc == BM_OK && i < ncols; i++) {
        if (i > 0)
            rc = bm_buf_append_str(b, "  ");
        if (rc == BM_OK)
            rc = pad(b, cells[i], i == ncols - 1 && i < nkeys ? 0 : width[i], i >= nkeys);
    }
    return rc == BM_OK ? bm_buf_append_char(b, '\n') : rc;
}

bm_err bm_agg_write_table(const struct bm_agg *a, const struct bm_group_by *g, struct bm_buf *b)
{
    const int nkeys = g->n;
    const int ncols = nkeys + NCOUNT;
    size_t width[BM_G__COUNT + NCOUNT] = {0};
    struct bm_str cells[BM_G__COUNT + NCOUNT];
    char nums[NCOUNT][24];
    char tmp[21];
    char hn[BM_G__COUNT][80]; /* the key columns' names */
    struct bm_counters t;
    bm_agg_totals(a, &t);

    for (int i = 0; i < nkeys; i++)
        width[i] = strlen(out_name(g, g->f[i], hn[i]));
    if (nkeys > 0 && width[0] < 5)
        width[0] = 5; /* room for TOTAL */
    for (int i = 0; i < NCOUNT; i++)
        width[nkeys + i] = strlen(count_heads[i]);
    size_t n = bm_agg_count(a);
    for (size_t r = 0; r <= n; r++) {
        const struct bm_counters *c = r < n ? &bm_agg_at(a, r)->c : &t;
        for (int i = 0; r < n && i < nkeys; i++) {
            size_t w = text_width(field_text(&bm_agg_at(a, r)->key, g->f[i], tmp));
            width[i] = w > width[i] ? w : width[i];
        }
        counter_texts(c, nums);
        for (int i = 0; i < NCOUNT; i++)
            if (strlen(nums[i]) > width[nkeys + i])
                width[nkeys + i] = strlen(nums[i]);
    }

    for (int i = 0; i < ncols; i++) {
        const char *h = i < nkeys ? out_name(g, g->f[i], hn[i]) : count_heads[i - nkeys];
        cells[i] = bm_str_of(h);
    }
    bm_err rc = table_line(b, cells, width, ncols, nkeys);
    for (size_t r = 0; rc == BM_OK && r <= n; r++) {
        const struct bm_counters *c = r < n ? &bm_agg_at(a, r)->c : &t;
        for (int i = 0; i < nkeys; i++) {
            /* Each key cell needs its own scratch when it is a formatted minute. */
            static const struct bm_str total = {"TOTAL", 5};
            cells[i] = r < n ? field_text(&bm_agg_at(a, r)->key, g->f[i], tmp)
                             : (i == 0 ? total : (struct bm_str){"", 0});
        }
        counter_texts(c, nums);
        for (int i = 0; i < NCOUNT; i++)
            cells[nkeys + i] = (struct bm_str){nums[i], strlen(nums[i])};
        rc = table_line(b, cells, width, ncols, nkeys);
    }
    return rc;
}
