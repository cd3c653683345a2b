/* query.c: GET /aggregates. One read transaction takes the prune cutoff and the span of the
 * minute rows, query_plan.c cuts the range into signed parts over the minute, hourly, daily and
 * all-time tables, and each part's rows are summed here by integer ids in a hash table; only
 * the result rows become strings. */
#include "storage/storage_int.h"

#include <string.h>

/* Bind positions: ?1 and ?2 the bucket range (bucketed tables), then the filters. */
enum { F_MODEL, F_PTYPE, F_SRC, F_INF, F__COUNT };
#define SUMS_ONLY (1u << F__COUNT) /* in the filter mask: the statement reads no min/max */
#define P_FILTER 3

static const char *const tables[BM__QT__COUNT] = {"agg", "agg_hour", "agg_day", "agg_all"};
/* The column of each group field. A minute grouping reads the stored bucket (which may be finer
 * than a minute) and truncates it here. */
static const char *const group_col[BM_G__COUNT] = {
    [BM_G_MINUTE] = "bucket",      [BM_G_MODEL_ID] = "model",    [BM_G_PROFILE_TYPE] = "ptype",
    [BM_G_PROFILE_ID] = "profile", [BM_G_SOURCE_REGION] = "src", [BM_G_INFERENCE_REGION] = "inf",
    [BM_G_OPERATION] = "op",       [BM_G_ATTR1] = "a1",          [BM_G_ATTR2] = "a2",
    [BM_G_ATTR3] = "a3",
};
static const char *const filter_sql[F__COUNT] = {
    [F_MODEL] = " AND model = (SELECT id FROM str WHERE s = ?3)",
    [F_PTYPE] = " AND ptype = ?4",
    [F_SRC] = " AND src = (SELECT id FROM str WHERE s = ?5)",
    [F_INF] = " AND inf = (SELECT id FROM str WHERE s = ?6)",
};
/* n, the four token sums, then cost (micro, pico), unpriced invocations and residency
 * violations. */
#define NSUM 8
static const char *const sum_cols[2][NSUM + 1] = {
    {"n", "i_s", "o_s", "r_s", "w_s", "c_u", "c_p", "np", "rv"},
    {"sum(n)", "sum(i_s)", "sum(o_s)", "sum(r_s)", "sum(w_s)", "sum(c_u)", "sum(c_p)", "sum(np)",
     "sum(rv)"}};
static const char *const minmax_cols[2][8] = {
    {"i_mn", "i_mx", "o_mn", "o_mx", "r_mn", "r_mx", "w_mn", "w_mx"},
    {"min(i_mn)", "max(i_mx)", "min(o_mn)", "max(o_mx)", "min(r_mn)", "max(r_mx)", "min(w_mn)",
     "max(w_mx)"}};

static unsigned group_mask(const struct bm_group_by *g)
{
    unsigned m = 0;
    for (int i = 0; i < g->n; i++)
        m |= 1u << g->f[i];
    return m;
}

static unsigned filter_mask(const struct bm_db_query *q)
{
    return (q->model_id ? 1u << F_MODEL : 0) |
           (q->profile_type < BM_PT__COUNT ? 1u << F_PTYPE : 0) |
           (q->source_region ? 1u << F_SRC : 0) | (q->inference_region ? 1u << F_INF : 0) |
           (q->sums_only ? SUMS_ONLY : 0);
}

/* Whether SQLite sums the part itself: only when ungrouped (one row out, and sum() beats
 * handing every row over: 0.47 against 0.72 ms for 2,250 rows). Grouped parts hand their rows
 * to the hash table below: SQLite's GROUP BY sorts every row first unless the grouped columns
 * are a prefix of the table's key, and even then it costs about 1 us per group out (12 ms for
 * a week of minutes, 8,064 groups, against 3.4 ms to read the rows). */
static bool sql_groups(unsigned gm)
{
    return gm == 0;
}

/* The statement for one part: the grouped columns in enum order, then n and the eight sums (and
 * the eight min/max unless sums only), summed per group in SQL or one row per table row. */
static bm_err build_sql(enum bm__qtable t, unsigned gm, unsigned fm, struct bm_buf *b)
{
    int grouped = sql_groups(gm);
    const char *sep = "SELECT ";
    bm_err e = BM_OK;
    for (int i = 0; e == BM_OK && i < BM_G__COUNT; i++)
        if (gm & (1u << i)) {
            e = bm_buf_appendf(b, "%s%s", sep, group_col[i]);
            sep = ", ";
        }
    for (int i = 0; e == BM_OK && i < NSUM + 1; i++) {
        e = bm_buf_appendf(b, "%s%s", sep, sum_cols[grouped][i]);
        sep = ", ";
    }
    for (int i = 0; e == BM_OK && !(fm & SUMS_ONLY) && i < 8; i++)
        e = bm_buf_appendf(b, ", %s", minmax_cols[grouped][i]);
    if (e == BM_OK)
        e = bm_buf_appendf(b, " FROM %s WHERE %s", tables[t],
                           t == BM__QT_ALL ? "1" : "bucket >= ?1 AND bucket < ?2");
    for (int f = 0; e == BM_OK && f < F__COUNT; f++)
        if (fm & (1u << f))
            e = bm_buf_append_str(b, filter_sql[f]);
    sep = " GROUP BY ";
    for (int i = 0; e == BM_OK && grouped && i < BM_G__COUNT; i++)
        if (gm & (1u << i)) {
            e = bm_buf_appendf(b, "%s%s", sep, group_col[i]);
            sep = ", ";
        }
    return e;
}

/* The cached statement for (t, gm, fm) on c, prepared on first use. */
static bm_err part_stmt(struct bm__conn *c, enum bm__qtable t, unsigned gm, unsigned fm,
                        sqlite3_stmt **out, struct bm_errmsg *em)
{
    /* gm has BM_G__COUNT (10) bits, fm F__COUNT + 1 (5), t two. */
    uint32_t key = 1u << 30 | (uint32_t)t << 20 | fm << 12 | gm;
    for (int i = 0; i < BM__QCACHE_N; i++)
        if (c->qc[i].key == key) {
            *out = c->qc[i].st;
            return BM_OK;
        }
    struct bm_buf b;
    bm_buf_init(&b, 16384);
    sqlite3_stmt *st = NULL;
    bm_err e = build_sql(t, gm, fm, &b);
    if (e != BM_OK) {
        bm_errmsg_set(em, e, "aggregates query: out of memory");
        goto fail;
    }
    int rc = sqlite3_prepare_v3(c->h, b.data, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (rc != SQLITE_OK) {
        e = bm__sql_err(c, rc, "prepare aggregates query", em);
        goto fail;
    }
    /* Round-robin eviction: dashboards use a handful of shapes, all of which fit. */
    struct bm__qcache *slot = &c->qc[c->qnext++ % BM__QCACHE_N];
    sqlite3_finalize(slot->st);
    slot->key = key;
    slot->st = st;
    *out = st;
fail:
    bm_buf_cleanup(&b);
    return e;
}

static void bind_part(sqlite3_stmt *st, const struct bm_db_query *q, const struct bm__qpart *p)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (p->t != BM__QT_ALL) {
        sqlite3_bind_int64(st, 1, p->lo);
        sqlite3_bind_int64(st, 2, p->hi);
    }
    if (q->model_id)
        sqlite3_bind_text(st, P_FILTER + F_MODEL, q->model_id, -1, SQLITE_TRANSIENT);
    if (q->profile_type < BM_PT__COUNT)
        sqlite3_bind_int(st, P_FILTER + F_PTYPE, bm__ptype_code(q->profile_type));
    if (q->source_region)
        sqlite3_bind_text(st, P_FILTER + F_SRC, q->source_region, -1, SQLITE_TRANSIENT);
    if (q->inference_region)
        sqlite3_bind_text(st, P_FILTER + F_INF, q->inference_region, -1, SQLITE_TRANSIENT);
}

/* ---- Groups: signed sums by integer key ---------------------------------------------------- */
struct group {
    int64_t k[BM_G__COUNT]; /* grouped fields (minute start, type code, string ids); others 0 */
    /* Invocations and sums, added and subtracted modulo 2^64 (defined, unlike signed
     * overflow): exact whenever the true sums fit, which to_series checks. */
    uint64_t n, s[NSUM];
    int64_t mn[4], mx[4];
};
struct groups {
    struct group *v;
    size_t n, cap;
    uint32_t *slots; /* open addressing: index + 1 into v, 0 = empty */
    size_t nslots;   /* power of two */
};

static uint64_t key_hash(const int64_t k[BM_G__COUNT])
{
    uint64_t h = 0x9E3779B97F4A7C15ULL;
    for (int i = 0; i < BM_G__COUNT; i++) {
        h ^= (uint64_t)k[i] + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2);
        h ^= h >> 31;
        h *= 0xBF58476D1CE4E5B9ULL;
    }
    return h ^ (h >> 29);
}

static uint32_t *slot_of(const struct groups *g, const int64_t k[BM_G__COUNT])
{
    size_t mask = g->nslots - 1;
    for (size_t i = (size_t)key_hash(k) & mask;; i = (i + 1) & mask)
        if (g->slots[i] == 0 || memcmp(g->v[g->slots[i] - 1].k, k, sizeof g->v->k) == 0)
            return &g->slots[i];
}

static bool groups_grow(struct groups *g)
{
    size_t cap = g->cap ? 2 * g->cap : 256;
    if (cap > UINT32_MAX / 2)
        return false;
    struct group *v = bm_realloc(g->v, cap * sizeof *v);
    uint32_t *slots = bm_calloc(2 * cap, sizeof *slots);
    if (v != NULL)
        g->v = v;
    if (v == NULL || slots == NULL) {
        bm_free(slots);
        return false;
    }
    bm_free(g->slots);
    g->slots = slots;
    g->nslots = 2 * cap;
    g->cap = cap;
    for (size_t i = 0; i < g->n; i++)
        *slot_of(g, g->v[i].k) = (uint32_t)i + 1;
    return true;
}

static void groups_cleanup(struct groups *g)
{
    bm_free(g->v);
    bm_free(g->slots);
    *g = (struct groups){0};
}

/* The group of key k, created empty when new; NULL on allocation failure. */
static struct group *groups_at(struct groups *g, const int64_t k[BM_G__COUNT])
{
    if (g->n == g->cap && !groups_grow(g))
        return NULL;
    uint32_t *sl = slot_of(g, k);
    if (*sl == 0) {
        struct group *x = &g->v[g->n];
        memset(x, 0, sizeof *x);
        memcpy(x->k, k, sizeof x->k);
        *sl = (uint32_t)++g->n;
    }
    return &g->v[*sl - 1];
}

/* Adds (sign 1) or subtracts the current row of st to its group. Columns: the grouped fields
 * in enum order, n, the eight sums, then the eight min/max when minmax. */
static bm_err add_row(struct groups *g, sqlite3_stmt *st, unsigned gm, int sign, bool minmax)
{
    int64_t k[BM_G__COUNT] = {0};
    int col = 0;
    for (int i = 0; i < BM_G__COUNT; i++)
        if (gm & (1u << i))
            k[i] = sqlite3_column_int64(st, col++);
    if (gm & (1u << BM_G_MINUTE))
        k[BM_G_MINUTE] -= ((k[BM_G_MINUTE] % 60) + 60) % 60;
    int64_t n = sqlite3_column_int64(st, col);
    if (n == 0)
        return BM_OK; /* an ungrouped sum over no rows: NULLs */
    struct group *x = groups_at(g, k);
    if (x == NULL)
        return BM_E_NOMEM;
    bool first = x->n == 0;
    x->n = sign > 0 ? x->n + (uint64_t)n : x->n - (uint64_t)n;
    for (int i = 0; i < NSUM; i++) {
        uint64_t v = (uint64_t)sqlite3_column_int64(st, col + 1 + i);
        x->s[i] = sign > 0 ? x->s[i] + v : x->s[i] - v;
    }
    /* Only positive plans read min/max: a minimum cannot be subtracted. */
    for (int i = 0; minmax && i < 4; i++) {
        int64_t mn = sqlite3_column_int64(st, col + 1 + NSUM + 2 * i);
        int64_t mx = sqlite3_column_int64(st, col + 2 + NSUM + 2 * i);
        x->mn[i] = first || mn < x->mn[i] ? mn : x->mn[i];
        x->mx[i] = first || mx > x->mx[i] ? mx : x->mx[i];
    }
    return BM_OK;
}

/* Runs part p of q and adds its rows to g, failing once g holds more than cap groups. */
static bm_err run_part(struct bm__conn *c, const struct bm_db_query *q, const struct bm__qpart *p,
                       struct groups *g, size_t cap, struct bm_errmsg *em)
{
    sqlite3_stmt *st = NULL;
    int rc = SQLITE_DONE;
    unsigned gm = group_mask(&q->group_by), fm = filter_mask(q);
    bm_err e = part_stmt(c, p->t, gm, fm, &st, em);
    if (e != BM_OK)
        return e;
    bind_part(st, q, p);
    while (e == BM_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((e = add_row(g, st, gm, p->sign, !q->sums_only)) != BM_OK)
            bm_errmsg_set(em, e, "aggregates query: out of memory");
        else if (g->n > cap)
            e = bm_errmsg_set(em, BM_E_BAD_REQUEST,
                              "the query would return more than %zu rows: narrow from/to, add "
                              "a filter or group by fewer fields",
                              cap);
    }
    sqlite3_reset(st);
    if (e == BM_OK && rc != SQLITE_DONE)
        e = bm__sql_err(c, rc, "aggregates query", em);
    return e;
}

/* Turns the groups into series with strings (looked up by id) and drops the groups a
 * subtraction emptied. A negative count, or sums left without invocations, means the rollups
 * disagree with the minute rows: reported, never shown. */
static bm_err to_series(struct bm__conn *c, const struct groups *g, unsigned gm, bool minmax,
                        struct bm_agg *a, struct bm_errmsg *em)
{
    static const int str_field[8] = {
        BM_G_MODEL_ID,  BM_G_PROFILE_ID, BM_G_SOURCE_REGION, BM_G_INFERENCE_REGION,
        BM_G_OPERATION, BM_G_ATTR1,      BM_G_ATTR2,         BM_G_ATTR3};
    bm_err e = BM_OK;
    for (size_t i = 0; i < g->n && e == BM_OK; i++) {
        const struct group *x = &g->v[i];
        bm__names_room(&c->names, 8); /* the row's names stay valid until bm_agg_add copies */
        bool negative = x->n > INT64_MAX;
        uint64_t any = 0;
        for (int j = 0; j < NSUM; j++) {
            negative = negative || x->s[j] > INT64_MAX;
            any |= x->s[j];
        }
        if (negative || (x->n == 0 && any != 0))
            return bm_errmsg_set(em, BM_E_INTERNAL,
                                 "aggregates query: the rollups disagree with the minute rows");
        if (x->n == 0)
            continue;
        struct bm_series_key k = {
            .bucket = gm & (1u << BM_G_MINUTE) ? x->k[BM_G_MINUTE] : BM_NO_BUCKET,
            .type = gm & (1u << BM_G_PROFILE_TYPE) ? bm__ptype_from_code(x->k[BM_G_PROFILE_TYPE])
                                                   : BM_PT__COUNT,
        };
        struct bm_str *strs[8] = {&k.model_id,         &k.profile_id, &k.source_region,
                                  &k.inference_region, &k.operation,  &k.attr[0],
                                  &k.attr[1],          &k.attr[2]};
        for (int j = 0; j < 8 && e == BM_OK; j++)
            if (gm & (1u << str_field[j]))
                e = bm__name_of(c, x->k[str_field[j]], strs[j], em);
        struct bm_counters cn = {.invocations = x->n};
        struct bm_stat *stats[4] = {&cn.input, &cn.output, &cn.cache_read, &cn.cache_write};
        for (int j = 0; j < 4; j++)
            *stats[j] = (struct bm_stat){x->s[j], minmax ? (uint64_t)x->mn[j] : 0,
                                         minmax ? (uint64_t)x->mx[j] : 0};
        struct bm_cost cost = {x->s[4], x->s[5]}; /* the pico-dollars carry over here */
        bm_cost_add(&cn.cost, &cost);
        cn.unpriced = x->s[6];
        cn.violations = x->s[7];
        if (e == BM_OK && (e = bm_agg_add(a, &k, &cn)) != BM_OK)
            bm_errmsg_set(em, e, "aggregates query: out of memory");
    }
    return e;
}

void bm_db_query_init(struct bm_db_query *q, const struct bm_group_by *g)
{
    memset(q, 0, sizeof *q);
    q->from = q->to = BM_NO_BUCKET;
    q->profile_type = BM_PT__COUNT;
    if (g != NULL)
        q->group_by = *g;
}

/* Plans q in the current read transaction: the prune cutoff is read from the snapshot itself,
 * so a plan never mixes a cutoff with rows from another moment (or another process's prune). */
static bm_err make_plan(struct bm__conn *c, const struct bm_db_query *q, bool may_subtract,
                        struct bm__qplan *p, struct bm_errmsg *em)
{
    sqlite3_stmt *st;
    struct bm__qplan_in in = {
        .lo = q->from == BM_NO_BUCKET ? INT64_MIN : q->from,
        .hi = q->to == BM_NO_BUCKET ? INT64_MAX : q->to,
        .by_minute = (group_mask(&q->group_by) & (1u << BM_G_MINUTE)) != 0,
        .may_subtract = may_subtract && q->sums_only,
    };
    bm_err e = bm__stmt(c, BM__ST_QUERY_STATE, &st, em);
    if (e != BM_OK)
        return e;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        bool none = sqlite3_column_type(st, 1) == SQLITE_NULL;
        in.clamp =
            sqlite3_column_type(st, 0) == SQLITE_NULL ? INT64_MIN : sqlite3_column_int64(st, 0);
        in.first = none ? INT64_MAX : sqlite3_column_int64(st, 1);
        in.last = none ? INT64_MIN : sqlite3_column_int64(st, 2);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return bm__sql_err(c, rc, "aggregates query", em);
    bm__qplan_make(&in, p);
    return BM_OK;
}

/* Runs the plan into g; a plan with subtractions whose partial groups pass the row cap (a
 * grouping with many series outside the range) is run again without subtractions, whose
 * groups are the result's. */
static bm_err run_plan(struct bm__conn *c, const struct bm_db_query *q, struct groups *g,
                       size_t cap, struct bm_errmsg *em)
{
    struct bm__qplan p;
    bm_err e = BM_OK;
    for (int pass = 0; pass < 2; pass++) {
        bool subtracts = false;
        if ((e = make_plan(c, q, pass == 0, &p, em)) != BM_OK)
            return e;
        for (int i = 0; i < p.n; i++)
            subtracts = subtracts || p.p[i].sign < 0;
        for (int i = 0; i < p.n && e == BM_OK; i++)
            e = run_part(c, q, &p.p[i], g, cap, em);
        if (e != BM_E_BAD_REQUEST || !subtracts)
            break;
        g->n = 0; /* over the cap: slots were allocated */
        memset(g->slots, 0, g->nslots * sizeof *g->slots);
    }
    return e;
}

bm_err bm__sq_query(struct bm_db *db, const struct bm_db_query *q, struct bm_agg **out,
                    struct bm_errmsg *em)
{
    struct bm__conn *c = NULL;
    struct groups g = {0};
    struct bm_agg *a = bm_agg_new(0);
    size_t cap = q->max_rows ? q->max_rows : BM_DB_QUERY_MAX_ROWS;
    sqlite3_stmt *st;
    bm_err e = BM_E_NOMEM;
    if (a == NULL) {
        bm_errmsg_set(em, e, "aggregates query: out of memory");
        goto fail;
    }
    /* One read transaction gives the plan and all its parts the same snapshot; in WAL mode it
     * never blocks a writer. */
    if ((e = bm__conn_get(db, &c, em)) != BM_OK ||
        (e = bm__stmt(c, BM__ST_BEGIN_READ, &st, em)) != BM_OK ||
        (e = bm__run(c, st, "begin read", em)) != BM_OK)
        goto fail;
    if ((e = run_plan(c, q, &g, cap, em)) != BM_OK)
        goto fail;
    if ((e = to_series(c, &g, group_mask(&q->group_by), !q->sums_only, a, em)) != BM_OK)
        goto fail;
    /* Ending a read transaction cannot lose anything; bm__conn_put cleans up after errors. */
    if ((e = bm__stmt(c, BM__ST_COMMIT, &st, em)) == BM_OK)
        e = bm__run(c, st, "end read", em);
    if (e == BM_OK && (e = bm_agg_sort(a, &q->group_by)) != BM_OK)
        bm_errmsg_set(em, e, "aggregates query: out of memory");
fail:
    bm__conn_put(db, c);
    groups_cleanup(&g);
    if (e != BM_OK) {
        bm_agg_free(a);
        return e;
    }
    *out = a;
    return BM_OK;
}

bm_err bm__db_query_plan(struct bm_db *db, const struct bm_db_query *q, struct bm_buf *b,
                         struct bm_errmsg *em)
{
    struct bm__conn *c = NULL;
    struct bm_buf sql;
    sqlite3_stmt *st = NULL;
    struct bm__qplan p = {0};
    if (db->pg != NULL)
        return bm_errmsg_set(em, BM_E_INTERNAL, "query plan: SQLite stores only");
    bm_buf_init(&sql, 16384);
    bm_err e = bm__conn_get(db, &c, em);
    if (e == BM_OK)
        e = make_plan(c, q, true, &p, em);
    for (int i = 0; i < p.n && e == BM_OK; i++) {
        bm_buf_reset(&sql);
        e = bm_buf_append_str(&sql, "EXPLAIN QUERY PLAN ");
        if (e == BM_OK)
            e = build_sql(p.p[i].t, group_mask(&q->group_by), filter_mask(q), &sql);
        int rc = e == BM_OK ? sqlite3_prepare_v2(c->h, sql.data, -1, &st, NULL) : SQLITE_OK;
        if (rc != SQLITE_OK)
            e = bm__sql_err(c, rc, "explain", em);
        if (e == BM_OK) {
            bind_part(st, q, &p.p[i]);
            e = bm_buf_appendf(b, "%s%c", b->len ? "; " : "", p.p[i].sign > 0 ? '+' : '-');
        }
        while (e == BM_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
            e = bm_buf_appendf(b, " %s", sqlite3_column_text(st, 3));
        sqlite3_finalize(st);
        st = NULL;
    }
    bm__conn_put(db, c);
    bm_buf_cleanup(&sql);
    return e;
}
