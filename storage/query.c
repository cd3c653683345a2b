/* query.c: GET /aggregates in SQL. The time range is split into minute edges, hour edges and
 * whole days so that each part reads the coarsest table that answers it exactly; grouping and
 * filtering run in SQL over integer ids, and only result rows become strings. */
#include "storage/storage_int.h"

#include <string.h>

/* Bind positions: ?1 and ?2 the bucket range, ?3 the limit, then the filters in this order. */
enum { F_MODEL, F_PTYPE, F_SRC, F_INF, F__COUNT };
#define SUMS_ONLY (1u << F__COUNT) /* in the filter mask: the statement computes no min/max */
#define P_LIMIT 3
#define P_FILTER 4

/* Columns of the inner grouped query per group field; NULL when not grouped. */
static const char *const group_col[BM_G__COUNT] = {
    [BM_G_MINUTE] = "bucket - ((bucket % 60) + 60) % 60",
    [BM_G_MODEL_ID] = "model",
    [BM_G_PROFILE_TYPE] = "ptype",
    [BM_G_PROFILE_ID] = "profile",
    [BM_G_SOURCE_REGION] = "src",
    [BM_G_INFERENCE_REGION] = "inf",
    [BM_G_OPERATION] = "op",
};
static const char *const filter_sql[F__COUNT] = {
    [F_MODEL] = " AND model = (SELECT id FROM str WHERE s = ?4)",
    [F_PTYPE] = " AND ptype = ?5",
    [F_SRC] = " AND src = (SELECT id FROM str WHERE s = ?6)",
    [F_INF] = " AND inf = (SELECT id FROM str WHERE s = ?7)",
};

/* The parts of [lo, hi): minutes, hours, days, hours, minutes (empty parts have lo == hi). */
struct plan {
    int64_t r[5][2];
};
static const char *const tables[3] = {"agg", "agg_hour", "agg_day"};
static const int part_table[5] = {0, 1, 2, 1, 0};

static int64_t floor_to(int64_t t, int64_t w)
{
    if (t == INT64_MIN || t == INT64_MAX)
        return t; /* unbounded stays unbounded */
    return t - ((t % w) + w) % w;
}

static int64_t ceil_to(int64_t t, int64_t w)
{
    int64_t f = floor_to(t, w);
    return f == t ? t : (f > INT64_MAX - w ? INT64_MAX : f + w);
}

static void make_plan(int64_t lo, int64_t hi, bool by_minute, struct plan *p)
{
    memset(p, 0, sizeof *p);
    if (lo >= hi)
        return;
    int64_t h0 = ceil_to(lo, 3600), h1 = floor_to(hi, 3600);
    int64_t d0 = ceil_to(lo, 86400), d1 = floor_to(hi, 86400);
    /* Rollups sum whole hours and days, so they cannot answer a per-minute grouping. */
    if (by_minute || h0 >= h1) {
        p->r[0][0] = lo;
        p->r[0][1] = hi;
        return;
    }
    if (d0 >= d1)
        d0 = d1 = h1; /* no whole day: hours [h0, h1) */
    const int64_t edges[6] = {lo, h0, d0, d1, h1, hi};
    for (int i = 0; i < 5; i++) {
        p->r[i][0] = edges[i];
        p->r[i][1] = edges[i + 1];
    }
}

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

/* Builds the statement over table for a grouping and filter mask: grouped in SQL over integer
 * ids, then only the result rows look up their strings. */
static bm_err build_sql(unsigned gm, unsigned fm, const char *table, struct bm_buf *b)
{
    bm_err e = bm_buf_append_str(b, "SELECT g0, g2");
    for (int i = 0; e == BM_OK && i < BM_G__COUNT; i++)
        if (i != BM_G_MINUTE && i != BM_G_PROFILE_TYPE)
            e = gm & (1u << i) ? bm_buf_appendf(b, ", (SELECT s FROM str WHERE id = g%d)", i)
                               : bm_buf_append_str(b, ", NULL");
    if (e == BM_OK)
        e = bm_buf_append_str(b, ", n, i_s, i_mn, i_mx, o_s, o_mn, o_mx, r_s, r_mn, r_mx, w_s, "
                                 "w_mn, w_mx FROM (SELECT ");
    for (int i = 0; e == BM_OK && i < BM_G__COUNT; i++)
        e = bm_buf_appendf(b, "%s AS g%d, ", gm & (1u << i) ? group_col[i] : "NULL", i);
    /* Every aggregate costs per row read; sums-only queries skip the eight min/max ones. */
    if (e == BM_OK && (fm & SUMS_ONLY))
        e = bm_buf_append_str(b, "sum(n) AS n, sum(i_s) AS i_s, 0 AS i_mn, 0 AS i_mx, sum(o_s) AS "
                                 "o_s, 0 AS o_mn, 0 AS o_mx, sum(r_s) AS r_s, 0 AS r_mn, 0 AS "
                                 "r_mx, sum(w_s) AS w_s, 0 AS w_mn, 0 AS w_mx");
    else if (e == BM_OK)
        e = bm_buf_append_str(b, "sum(n) AS n, sum(i_s) AS i_s, min(i_mn) AS i_mn, max(i_mx) AS "
                                 "i_mx, sum(o_s) AS o_s, min(o_mn) AS o_mn, max(o_mx) AS o_mx, "
                                 "sum(r_s) AS r_s, min(r_mn) AS r_mn, max(r_mx) AS r_mx, "
                                 "sum(w_s) AS w_s, min(w_mn) AS w_mn, max(w_mx) AS w_mx");
    if (e == BM_OK)
        e = bm_buf_appendf(b, " FROM %s WHERE bucket >= ?1 AND bucket < ?2", table);
    for (int f = 0; e == BM_OK && f < F__COUNT; f++)
        if (fm & (1u << f))
            e = bm_buf_append_str(b, filter_sql[f]);
    for (int i = 0, n = 0; e == BM_OK && i < BM_G__COUNT; i++)
        if (gm & (1u << i))
            e = bm_buf_appendf(b, "%sg%d", n++ ? ", " : " GROUP BY ", i);
    if (e == BM_OK)
        e = bm_buf_appendf(b, " LIMIT ?%d)", P_LIMIT);
    return e;
}

/* The cached statement for (table, gm, fm) on c, prepared on first use. */
static bm_err query_stmt(struct bm__conn *c, int table, unsigned gm, unsigned fm,
                         sqlite3_stmt **out, struct bm_errmsg *em)
{
    uint32_t key = 1u << 24 | (uint32_t)table << 16 | fm << 8 | gm;
    for (int i = 0; i < BM__QCACHE_N; i++)
        if (c->qc[i].key == key) {
            *out = c->qc[i].st;
            return BM_OK;
        }
    struct bm_buf b;
    bm_buf_init(&b, 16384);
    sqlite3_stmt *st = NULL;
    bm_err e = build_sql(gm, fm, tables[table], &b);
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

static void bind_query(sqlite3_stmt *st, const struct bm_db_query *q, const int64_t range[2],
                       int64_t limit)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    sqlite3_bind_int64(st, 1, range[0]);
    sqlite3_bind_int64(st, 2, range[1]);
    sqlite3_bind_int64(st, P_LIMIT, limit);
    if (q->model_id)
        sqlite3_bind_text(st, P_FILTER + F_MODEL, q->model_id, -1, SQLITE_TRANSIENT);
    if (q->profile_type < BM_PT__COUNT)
        sqlite3_bind_int(st, P_FILTER + F_PTYPE, bm__ptype_code(q->profile_type));
    if (q->source_region)
        sqlite3_bind_text(st, P_FILTER + F_SRC, q->source_region, -1, SQLITE_TRANSIENT);
    if (q->inference_region)
        sqlite3_bind_text(st, P_FILTER + F_INF, q->inference_region, -1, SQLITE_TRANSIENT);
}

static struct bm_str text_col(sqlite3_stmt *st, int i)
{
    const char *p = (const char *)sqlite3_column_text(st, i);
    return p ? (struct bm_str){p, (size_t)sqlite3_column_bytes(st, i)} : (struct bm_str){"", 0};
}

/* Adds the current result row to a. */
static bm_err add_row(sqlite3_stmt *st, struct bm_agg *a)
{
    struct bm_series_key k = {
        .bucket =
            sqlite3_column_type(st, 0) == SQLITE_NULL ? BM_NO_BUCKET : sqlite3_column_int64(st, 0),
        .type = sqlite3_column_type(st, 1) == SQLITE_NULL
                    ? BM_PT__COUNT
                    : bm__ptype_from_code(sqlite3_column_int64(st, 1)),
        .model_id = text_col(st, 2),
        .profile_id = text_col(st, 3),
        .source_region = text_col(st, 4),
        .inference_region = text_col(st, 5),
        .operation = text_col(st, 6),
    };
    struct bm_counters c = {.invocations = (uint64_t)sqlite3_column_int64(st, 7)};
    struct bm_stat *stats[4] = {&c.input, &c.output, &c.cache_read, &c.cache_write};
    for (int i = 0; i < 4; i++) {
        stats[i]->sum = (uint64_t)sqlite3_column_int64(st, 8 + 3 * i);
        stats[i]->min = (uint64_t)sqlite3_column_int64(st, 9 + 3 * i);
        stats[i]->max = (uint64_t)sqlite3_column_int64(st, 10 + 3 * i);
    }
    /* An ungrouped query over no rows still returns one row of NULL sums: no series. */
    return c.invocations == 0 ? BM_OK : bm_agg_add(a, &k, &c);
}

void bm_db_query_init(struct bm_db_query *q, const struct bm_group_by *g)
{
    memset(q, 0, sizeof *q);
    q->from = q->to = BM_NO_BUCKET;
    q->profile_type = BM_PT__COUNT;
    if (g != NULL)
        q->group_by = *g;
}

static void query_plan(struct bm_db *db, const struct bm_db_query *q, struct plan *p)
{
    int64_t lo = q->from == BM_NO_BUCKET ? INT64_MIN : q->from;
    int64_t hi = q->to == BM_NO_BUCKET ? INT64_MAX : q->to;
    int64_t pruned = atomic_load(&db->pruned_before);
    make_plan(lo > pruned ? lo : pruned, hi, group_mask(&q->group_by) & (1u << BM_G_MINUTE), p);
}

/* Runs part i of plan p and adds its rows to a, failing once a holds more than cap rows. */
static bm_err run_part(struct bm__conn *c, const struct bm_db_query *q, const struct plan *p, int i,
                       struct bm_agg *a, size_t cap, struct bm_errmsg *em)
{
    sqlite3_stmt *st = NULL;
    int rc = SQLITE_DONE;
    bm_err e = query_stmt(c, part_table[i], group_mask(&q->group_by), filter_mask(q), &st, em);
    if (e != BM_OK)
        return e;
    bind_query(st, q, p->r[i], (int64_t)cap + 1);
    while (e == BM_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((e = add_row(st, a)) != BM_OK)
            bm_errmsg_set(em, e, "aggregates query: out of memory");
        else if (bm_agg_count(a) > cap)
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

bm_err bm_db_query(struct bm_db *db, const struct bm_db_query *q, struct bm_agg **out,
                   struct bm_errmsg *em)
{
    struct bm__conn *c = NULL;
    struct bm_agg *a = bm_agg_new(0);
    struct plan p;
    size_t cap = q->max_rows ? q->max_rows : BM_DB_QUERY_MAX_ROWS;
    bm_err e = BM_E_NOMEM;
    if (a == NULL) {
        bm_errmsg_set(em, e, "aggregates query: out of memory");
        goto fail;
    }
    if ((e = bm__conn_get(db, &c, em)) != BM_OK)
        goto fail;
    /* Each part is grouped in SQL and the parts' groups merged here (a hash add per result
     * row), which is cheaper than feeding every table row through one UNION ALL. One read
     * transaction gives all parts the same snapshot; in WAL mode it never blocks a writer. */
    query_plan(db, q, &p);
    sqlite3_stmt *st;
    if ((e = bm__stmt(c, BM__ST_BEGIN_READ, &st, em)) != BM_OK ||
        (e = bm__run(c, st, "begin read", em)) != BM_OK)
        goto fail;
    for (int i = 0; i < 5 && e == BM_OK; i++)
        if (p.r[i][0] < p.r[i][1])
            e = run_part(c, q, &p, i, a, cap, em);
    /* Ending a read transaction cannot lose anything; bm__conn_put cleans up after errors. */
    if (e == BM_OK && (e = bm__stmt(c, BM__ST_COMMIT, &st, em)) == BM_OK)
        e = bm__run(c, st, "end read", em);
    if (e == BM_OK && (e = bm_agg_sort(a, &q->group_by)) != BM_OK)
        bm_errmsg_set(em, e, "aggregates query: out of memory");
fail:
    bm__conn_put(db, c);
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
    struct plan p;
    bm_buf_init(&sql, 16384);
    bm_err e = bm__conn_get(db, &c, em);
    query_plan(db, q, &p);
    for (int i = 0; i < 5 && e == BM_OK; i++) {
        if (p.r[i][0] >= p.r[i][1])
            continue;
        bm_buf_reset(&sql);
        e = bm_buf_append_str(&sql, "EXPLAIN QUERY PLAN ");
        if (e == BM_OK)
            e = build_sql(group_mask(&q->group_by), filter_mask(q), tables[part_table[i]], &sql);
        int rc = e == BM_OK ? sqlite3_prepare_v2(c->h, sql.data, -1, &st, NULL) : SQLITE_OK;
        if (rc != SQLITE_OK)
            e = bm__sql_err(c, rc, "explain", em);
        if (e == BM_OK)
            bind_query(st, q, p.r[i], 1);
        while (e == BM_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
            e = bm_buf_appendf(b, "%s%s", b->len ? "; " : "", sqlite3_column_text(st, 3));
        sqlite3_finalize(st);
        st = NULL;
    }
    bm__conn_put(db, c);
    bm_buf_cleanup(&sql);
    return e;
}
