/* price.c: BMAS_PRICES, the price file (docs/configuration.md): a CSV of USD per million
 * tokens parsed into integer pico-dollars per token, the most specific row for a record, and
 * the exact integer cost of an invocation. */
#include "core/bm_ingest.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define PRICES_MAX_BYTES (4u << 20)
#define PRICES_MAX_ROWS 100000
#define CELL_MAX 256
/* USD per million tokens is micro-dollars per token, so 6 fractional digits of it are exact
 * pico-dollars per token. Prices above a million dollars per million tokens are a typo. */
#define FRAC_DIGITS 6
#define PRICE_MAX_USD 1000000ULL

enum col { C_MODEL, C_IN, C_OUT, C_CREAD, C_CWRITE, C_REGION, C_TYPE, C__COUNT };
static const char *const col_names[C__COUNT] = {
    "model_id", "input_per_mtok", "output_per_mtok", "cache_read_per_mtok", "cache_write_per_mtok",
    "region",   "profile_type",
};

void bm_cost_add(struct bm_cost *dst, const struct bm_cost *src)
{
    dst->micro += src->micro;
    dst->pico += src->pico;
    dst->micro += dst->pico / BM_PICO_PER_MICRO;
    dst->pico %= BM_PICO_PER_MICRO;
}

uint64_t bm_cost_micro_rounded(const struct bm_cost *c)
{
    uint64_t m = c->micro + c->pico / BM_PICO_PER_MICRO;
    return m + (c->pico % BM_PICO_PER_MICRO >= BM_PICO_PER_MICRO / 2);
}

bool bm_price_cost(const struct bm_price *pr, const uint64_t tokens[4], struct bm_cost *out)
{
    struct bm_cost c = {0, 0};
    for (int i = 0; i < 4; i++) {
        if (tokens[i] == 0)
            continue;
        if (!pr->has[i])
            return false;
        uint64_t pico;
        if (__builtin_mul_overflow(tokens[i], pr->pico[i], &pico))
            return false;
        struct bm_cost t = {pico / BM_PICO_PER_MICRO, pico % BM_PICO_PER_MICRO};
        bm_cost_add(&c, &t);
    }
    *out = c;
    return true;
}

const struct bm_price *bm_prices_find(const struct bm_prices *p, struct bm_str model_id,
                                      struct bm_str src, enum bm_profile_type t)
{
    const struct bm_price *best = NULL;
    int best_score = -1;
    for (size_t i = 0; p != NULL && i < p->n; i++) {
        const struct bm_price *r = &p->v[i];
        size_t rlen = r->region_len;
        if (r->model_len != model_id.len || memcmp(r->model_id, model_id.p, model_id.len) != 0)
            continue;
        if (rlen > 0 && (rlen != src.len || memcmp(r->region, src.p, rlen) != 0))
            continue;
        if (r->type != BM_PT__COUNT && r->type != t)
            continue;
        int score = (rlen > 0 ? 2 : 0) + (r->type != BM_PT__COUNT ? 1 : 0);
        if (score > best_score) {
            best = r;
            best_score = score;
        }
    }
    return best;
}

void bm_prices_free(struct bm_prices *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n; i++) {
        bm_free(p->v[i].model_id);
        bm_free(p->v[i].region);
    }
    bm_free(p->v);
    bm_free(p);
}

/* One parsed line: cells trimmed of blanks and of one pair of surrounding double quotes. */
struct cells {
    struct bm_str c[C__COUNT + 8];
    int n;
};

static bool split(const char *p, size_t len, struct cells *out)
{
    out->n = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && p[i] != ',')
            continue;
        if (out->n == (int)(sizeof out->c / sizeof out->c[0]))
            return false;
        const char *s = p + start;
        size_t n = i - start;
        while (n > 0 && (*s == ' ' || *s == '\t')) {
            s++;
            n--;
        }
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
            s++;
            n -= 2;
        }
        out->c[out->n++] = (struct bm_str){s, n};
        start = i + 1;
    }
    return true;
}

/* A decimal number of USD per million tokens into pico-dollars per token. */
static bool parse_price(struct bm_str s, uint64_t *out)
{
    uint64_t whole = 0, frac = 0;
    size_t i = 0;
    int nfrac = 0;
    bool digits = false;
    for (; i < s.len && s.p[i] >= '0' && s.p[i] <= '9'; i++) {
        whole = whole * 10 + (uint64_t)(s.p[i] - '0');
        digits = true;
        if (whole > PRICE_MAX_USD)
            return false;
    }
    if (i < s.len && s.p[i] == '.') {
        for (i++; i < s.len && s.p[i] >= '0' && s.p[i] <= '9'; i++) {
            if (++nfrac > FRAC_DIGITS)
                return false;
            frac = frac * 10 + (uint64_t)(s.p[i] - '0');
            digits = true;
        }
    }
    if (!digits || i != s.len)
        return false;
    for (; nfrac < FRAC_DIGITS; nfrac++)
        frac *= 10;
    *out = whole * 1000000ULL + frac;
    return true;
}

static bool same_key(const struct bm_price *a, const struct bm_price *b)
{
    return a->type == b->type && strcmp(a->model_id, b->model_id) == 0 &&
           strcmp(a->region, b->region) == 0;
}

/* Fills row from the cells of line `line` under the header map. */
static bm_err parse_row(const struct cells *cl, const int map[C__COUNT], int ncols,
                        struct bm_price *row, const char *name, unsigned line, struct bm_errmsg *em)
{
    if (cl->n != ncols)
        return bm_errmsg_set(em, BM_E_CONFIG, "%s:%u: %d cells where the header has %d", name, line,
                             cl->n, ncols);
    struct bm_str model = cl->c[map[C_MODEL]];
    if (model.len == 0 || model.len > CELL_MAX)
        return bm_errmsg_set(em, BM_E_CONFIG, "%s:%u: model_id is empty or too long", name, line);
    for (int k = 0; k < 4; k++) {
        struct bm_str v = cl->c[map[C_IN + k]];
        row->has[k] = v.len > 0;
        if (v.len > 0 && !parse_price(v, &row->pico[k]))
            return bm_errmsg_set(em, BM_E_CONFIG,
                                 "%s:%u: %s \"%.*s\" is not a price in USD per million tokens "
                                 "(a decimal, at most 6 fractional digits)",
                                 name, line, col_names[C_IN + k], (int)(v.len > 64 ? 64 : v.len),
                                 v.p);
    }
    if (!row->has[0] || !row->has[1])
        return bm_errmsg_set(em, BM_E_CONFIG,
                             "%s:%u: input_per_mtok and output_per_mtok are "
                             "required",
                             name, line);
    struct bm_str region = map[C_REGION] >= 0 ? cl->c[map[C_REGION]] : (struct bm_str){"", 0};
    if (region.len > 64)
        return bm_errmsg_set(em, BM_E_CONFIG, "%s:%u: region too long", name, line);
    row->type = BM_PT__COUNT;
    struct bm_str ty = map[C_TYPE] >= 0 ? cl->c[map[C_TYPE]] : (struct bm_str){"", 0};
    if (ty.len > 0 && !bm_profile_type_parse(ty.p, ty.len, &row->type))
        return bm_errmsg_set(em, BM_E_CONFIG,
                             "%s:%u: profile_type \"%.*s\" is none of OnDemand, CrossRegion, "
                             "GlobalCrossRegion, Application, Provisioned",
                             name, line, (int)(ty.len > 64 ? 64 : ty.len), ty.p);
    row->line = line;
    row->model_id = bm_strndup(model.p, model.len);
    row->region = bm_strndup(region.len ? region.p : "", region.len);
    row->model_len = model.len;
    row->region_len = region.len;
    if (row->model_id == NULL || row->region == NULL)
        return bm_errmsg_set(em, BM_E_NOMEM, "%s: out of memory", name);
    return BM_OK;
}

/* Maps the header's columns; every required one must be there, nothing unknown or twice. */
static bm_err parse_header(const struct cells *cl, int map[C__COUNT], const char *name,
                           unsigned line, struct bm_errmsg *em)
{
    for (int k = 0; k < C__COUNT; k++)
        map[k] = -1;
    for (int i = 0; i < cl->n; i++) {
        int found = -1;
        for (int k = 0; k < C__COUNT; k++)
            if (strlen(col_names[k]) == cl->c[i].len &&
                memcmp(col_names[k], cl->c[i].p, cl->c[i].len) == 0)
                found = k;
        if (found < 0 || map[found] >= 0)
            return bm_errmsg_set(em, BM_E_CONFIG, "%s:%u: header column \"%.*s\" is %s", name, line,
                                 (int)(cl->c[i].len > 64 ? 64 : cl->c[i].len), cl->c[i].p,
                                 found < 0 ? "unknown" : "given twice");
        map[found] = i;
    }
    for (int k = 0; k < C_REGION; k++)
        if (map[k] < 0)
            return bm_errmsg_set(em, BM_E_CONFIG,
                                 "%s:%u: the header lacks %s (it needs "
                                 "model_id,input_per_mtok,output_per_mtok,cache_read_per_mtok,"
                                 "cache_write_per_mtok)",
                                 name, line, col_names[k]);
    return BM_OK;
}

bm_err bm_prices_parse(const char *text, size_t len, const char *name, struct bm_prices **out,
                       struct bm_errmsg *em)
{
    struct bm_prices *p = bm_calloc(1, sizeof *p);
    size_t cap = 0;
    int map[C__COUNT];
    bool have_header = false;
    unsigned line = 0;
    bm_err rc = BM_OK;
    if (p == NULL)
        return bm_errmsg_set(em, BM_E_NOMEM, "%s: out of memory", name);
    for (size_t pos = 0; pos < len && rc == BM_OK;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len, n = end - pos;
        const char *s = text + pos;
        pos = end + 1;
        line++;
        if (n > 0 && s[n - 1] == '\r')
            n--;
        size_t lead = 0;
        while (lead < n && (s[lead] == ' ' || s[lead] == '\t'))
            lead++;
        if (lead == n || s[lead] == '#')
            continue;
        if (memchr(s, '\0', n) != NULL) {
            rc = bm_errmsg_set(em, BM_E_CONFIG, "%s:%u: a NUL byte", name, line);
            break;
        }
        struct cells cl;
        if (!split(s, n, &cl)) {
            rc = bm_errmsg_set(em, BM_E_CONFIG, "%s:%u: too many cells", name, line);
            break;
        }
        if (!have_header) {
            rc = parse_header(&cl, map, name, line, em);
            have_header = true;
            continue;
        }
        if (p->n == PRICES_MAX_ROWS) {
            rc = bm_errmsg_set(em, BM_E_CONFIG, "%s:%u: more than %d rows", name, line,
                               PRICES_MAX_ROWS);
            break;
        }
        if (p->n == cap) {
            size_t ncap = cap ? 2 * cap : 64;
            struct bm_price *v = bm_realloc(p->v, ncap * sizeof *v);
            if (v == NULL) {
                rc = bm_errmsg_set(em, BM_E_NOMEM, "%s: out of memory", name);
                break;
            }
            p->v = v;
            cap = ncap;
        }
        struct bm_price *row = &p->v[p->n];
        memset(row, 0, sizeof *row);
        p->n++; /* counted now so that bm_prices_free frees a half-built row */
        int ncols = 0;
        for (int k = 0; k < C__COUNT; k++)
            ncols += map[k] >= 0;
        rc = parse_row(&cl, map, ncols, row, name, line, em);
        for (size_t i = 0; rc == BM_OK && i + 1 < p->n; i++)
            if (same_key(&p->v[i], row))
                rc = bm_errmsg_set(em, BM_E_CONFIG,
                                   "%s:%u: the same model_id, region and profile_type as line %u",
                                   name, line, p->v[i].line);
    }
    if (rc == BM_OK && !have_header)
        rc = bm_errmsg_set(em, BM_E_CONFIG, "%s:%u: no header line", name, line);
    if (rc != BM_OK) {
        bm_prices_free(p);
        return rc;
    }
    *out = p;
    return BM_OK;
}

bm_err bm_prices_load(const char *path, struct bm_prices **out, struct bm_errmsg *em)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return bm_errmsg_set(em, BM_E_CONFIG, "%s:0: cannot open: %s", path, strerror(errno));
    struct bm_buf b;
    bm_buf_init(&b, PRICES_MAX_BYTES);
    bm_err rc = bm_buf_append_stream(&b, f);
    bool bad = ferror(f) != 0;
    fclose(f);
    if (rc == BM_E_TOO_LARGE || bad)
        rc = bm_errmsg_set(em, BM_E_CONFIG, "%s:0: %s", path,
                           bad ? "read error" : "larger than 4 MB");
    else if (rc != BM_OK)
        rc = bm_errmsg_set(em, rc, "%s: out of memory", path);
    if (rc == BM_OK)
        rc = bm_prices_parse(b.data ? b.data : "", b.len, path, out, em);
    bm_buf_cleanup(&b);
    return rc;
}
