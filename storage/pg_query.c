/* pg_query.c: GET /aggregates on the PostgreSQL store. query_plan.c, SQLite's planner, cuts the
 * range into signed parts over the minute, hourly, daily and all-time tables (which pg_commit.c
 * and pg_prune.c keep exact); the parts become one statement, a UNION ALL of the parts (each
 * part's sums times its sign) grouped and filtered by the server. */
#include "storage/pg_int.h"
#include "storage/storage_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Key columns of the result, in this order, as the outer query groups them (over the parts'
 * columns of the same names); when not grouped by a field its column is a constant, so that
 * every query reads the same result shape. */
enum { K_BUCKET, K_PTYPE, K_MODEL, K_PROFILE, K_SRC, K_INF, K_OP, K_A1, K_A2, K_A3, K__COUNT };
static const struct {
    enum bm_group g;
    const char *expr, *none, *col;
} key_cols[K__COUNT] = {
    {BM_G_MINUTE, "bucket - ((bucket % 60) + 60) % 60", "0::bigint", "bucket"},
    {BM_G_PROFILE_TYPE, "ptype", "(-1)::smallint", "ptype"},
    {BM_G_MODEL_ID, "model", "''::text", "model"},
    {BM_G_PROFILE_ID, "profile", "''::text", "profile"},
    {BM_G_SOURCE_REGION, "src", "''::text", "src"},
    {BM_G_INFERENCE_REGION, "inf", "''::text", "inf"},
    {BM_G_OPERATION, "op", "''::text", "op"},
    {BM_G_ATTR1, "a1", "''::text", "a1"},
    {BM_G_ATTR2, "a2", "''::text", "a2"},
    {BM_G_ATTR3, "a3", "''::text", "a3"},
};
/* The outer query's values: n, the four token sums with their min/max, cost (micro, pico),
 * unpriced, violations. */
static const char aggs[] =
    "sum(n), sum(i_s), min(i_mn), max(i_mx), sum(o_s), min(o_mn), max(o_mx), sum(r_s), "
    "min(r_mn), max(r_mx), sum(w_s), min(w_mn), max(w_mx), sum(c_u), sum(c_p), sum(np), sum(rv)";
/* A part's sums, multiplied by its sign (%d twice per column), and min/max (only ever added:
 * the planner subtracts only for sums-only queries). */
static const char *const part_sums[] = {"n", "i_s", "o_s", "r_s", "w_s", "c_u", "c_p", "np", "rv"};
static const char *const part_minmax[] = {"i_mn", "i_mx", "o_mn", "o_mx",
                                          "r_mn", "r_mx", "w_mn", "w_mx"};
static const char *const tables[BM__QT__COUNT] = {"agg", "agg_hour", "agg_day", "agg_all"};
/* A part's filters: $1..$4 (NULL: any). */
static const char filters[] =
    " AND ($1::text IS NULL OR model = $1) AND ($2::smallint IS NULL OR ptype = $2::smallint) "
    "AND ($3::text IS NULL OR src = $3) AND ($4::text IS NULL OR inf = $4)";

struct query {
    const struct bm_db_query *q;
    size_t cap;
    unsigned gm;
    struct bm_agg *a;
};

static uint64_t u64(PGresult *r, int row, int col, bool *bad)
{
    /* Sums of bigint are numeric: exact, printed as integers. A negative one means the rollups
     * disagree with the minute rows they sum. */
    if (PQgetisnull(r, row, col))
        return 0;
    *bad = *bad || PQgetvalue(r, row, col)[0] == '-';
    return strtoull(PQgetvalue(r, row, col), NULL, 10);
}

static struct bm_str col(PGresult *r, int row, int c)
{
    return (struct bm_str){PQgetvalue(r, row, c), (size_t)PQgetlength(r, row, c)};
}

static bm_err add_rows(struct query *x, PGresult *r, struct bm_errmsg *em)
{
    bool minmax = !x->q->sums_only;
    for (int i = 0; i < PQntuples(r); i++) {
        struct bm_series_key k = {
            .bucket = x->gm & (1u << BM_G_MINUTE) ? strtoll(PQgetvalue(r, i, K_BUCKET), NULL, 10)
                                                  : BM_NO_BUCKET,
            .type = x->gm & (1u << BM_G_PROFILE_TYPE)
                        ? bm__ptype_from_code(strtoll(PQgetvalue(r, i, K_PTYPE), NULL, 10))
                        : BM_PT__COUNT,
            .model_id = col(r, i, K_MODEL),
            .profile_id = col(r, i, K_PROFILE),
            .source_region = col(r, i, K_SRC),
            .inference_region = col(r, i, K_INF),
            .operation = col(r, i, K_OP),
            .attr = {col(r, i, K_A1), col(r, i, K_A2), col(r, i, K_A3)},
        };
        int c = K__COUNT;
        bool bad = false;
        struct bm_counters cn = {.invocations = u64(r, i, c++, &bad)};
        struct bm_stat *stats[4] = {&cn.input, &cn.output, &cn.cache_read, &cn.cache_write};
        for (int j = 0; j < 4; j++, c += 3)
            *stats[j] = (struct bm_stat){u64(r, i, c, &bad), minmax ? u64(r, i, c + 1, &bad) : 0,
                                         minmax ? u64(r, i, c + 2, &bad) : 0};
        struct bm_cost cost = {u64(r, i, c, &bad), u64(r, i, c + 1, &bad)}; /* pico carries */
        bm_cost_add(&cn.cost, &cost);
        cn.unpriced = u64(r, i, c + 2, &bad);
        cn.violations = u64(r, i, c + 3, &bad);
        if (bad || cn.invocations == 0)
            return bm_errmsg_set(em, BM_E_INTERNAL,
                                 "aggregates query: the rollups disagree with the minute rows");
        bm_err e = bm_agg_add(x->a, &k, &cn);
        if (e != BM_OK)
            return bm_errmsg_set(em, e, "aggregates query: out of memory");
    }
    return BM_OK;
}

static void p_opt_str(struct bm__pg_params *p, const char *s)
{
    if (s != NULL)
        bm__pg_p_str(p, bm_str_of(s));
    else
        bm__pg_p_null(p);
}

/* The plan's inputs from the transaction's snapshot: the prune cutoff and the span of the
 * minute rows. */
static bm_err plan_in(struct bm__pg_tx *t, struct bm__qplan_in *in, struct bm_errmsg *em)
{
    PGresult *r = NULL;
    bm_err e = bm__pg_exec(t,
                           "SELECT (SELECT value FROM meta WHERE key = 'pruned_before'), "
                           "(SELECT min(bucket) FROM agg), (SELECT max(bucket) FROM agg)",
                           NULL, &r, NULL, em);
    if (e != BM_OK)
        return e;
    bool none = PQgetisnull(r, 0, 1);
    in->clamp = PQgetisnull(r, 0, 0) ? INT64_MIN : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    in->first = none ? INT64_MAX : strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    in->last = none ? INT64_MIN : strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    PQclear(r);
    return BM_OK;
}

/* Appends part p of the plan: its rows' keys and values (sums times its sign). */
static bm_err append_part(struct bm_buf *b, const struct bm__qpart *p, bool minmax)
{
    bool is_all = p->t == BM__QT_ALL;
    bm_err e = bm_buf_appendf(b, "SELECT %s AS bucket", is_all ? "0::bigint" : "bucket");
    for (int i = 1; e == BM_OK && i < K__COUNT; i++)
        e = bm_buf_appendf(b, ", %s", key_cols[i].col);
    for (size_t i = 0; e == BM_OK && i < sizeof part_sums / sizeof part_sums[0]; i++)
        e = bm_buf_appendf(b, ", %s * %d AS %s", part_sums[i], p->sign, part_sums[i]);
    /* agg_all keeps no min/max: only sums-only plans read it, and they read no min/max. */
    for (size_t i = 0; e == BM_OK && i < sizeof part_minmax / sizeof part_minmax[0]; i++)
        e = bm_buf_appendf(b, ", %s AS %s", minmax && !is_all ? part_minmax[i] : "0::bigint",
                           part_minmax[i]);
    if (e == BM_OK)
        e = bm_buf_appendf(b, " FROM %s WHERE true", tables[p->t]);
    if (e == BM_OK && !is_all && p->lo != INT64_MIN)
        e = bm_buf_appendf(b, " AND bucket >= %lld", (long long)p->lo);
    if (e == BM_OK && !is_all && p->hi != INT64_MAX)
        e = bm_buf_appendf(b, " AND bucket < %lld", (long long)p->hi);
    if (e == BM_OK)
        e = bm_buf_append_str(b, filters);
    return e;
}

/* The statement of plan pl: the parts' rows, grouped; groups a subtraction emptied left out
 * (a group with sums left but no invocation is kept, to be reported). */
static bm_err build(const struct query *x, const struct bm__qplan *pl, struct bm_buf *b)
{
    bm_err e = bm_buf_append_str(b, "SELECT ");
    for (int i = 0; e == BM_OK && i < K__COUNT; i++) {
        bool grouped = (x->gm & (1u << key_cols[i].g)) != 0;
        e = bm_buf_appendf(b, "%s, ", grouped ? key_cols[i].expr : key_cols[i].none);
    }
    if (e == BM_OK)
        e = bm_buf_appendf(b, "%s FROM (", aggs);
    for (int i = 0; e == BM_OK && i < pl->n; i++) {
        if (i > 0)
            e = bm_buf_append_str(b, " UNION ALL ");
        if (e == BM_OK)
            e = append_part(b, &pl->p[i], !x->q->sums_only);
    }
    if (e == BM_OK)
        e = bm_buf_append_str(b, ") AS p");
    const char *sep = " GROUP BY ";
    for (int i = 0; e == BM_OK && i < K__COUNT; i++)
        if (x->gm & (1u << key_cols[i].g)) {
            e = bm_buf_appendf(b, "%s%s", sep, key_cols[i].expr);
            sep = ", ";
        }
    if (e == BM_OK)
        e = bm_buf_append_str(b, " HAVING sum(n) <> 0 OR sum(i_s) <> 0 OR sum(o_s) <> 0 OR "
                                 "sum(r_s) <> 0 OR sum(w_s) <> 0 OR sum(c_u) <> 0 OR "
                                 "sum(c_p) <> 0 OR sum(np) <> 0 OR sum(rv) <> 0 LIMIT $5::bigint");
    return e;
}

static bm_err query_fn(struct bm__pg_tx *t, void *ctx, struct bm_errmsg *em)
{
    struct query *x = ctx;
    const struct bm_db_query *q = x->q;
    struct bm__pg_params p = {0};
    struct bm_buf sql;
    struct bm__qplan pl;
    PGresult *r = NULL;
    struct bm__qplan_in in = {
        .lo = q->from == BM_NO_BUCKET ? INT64_MIN : q->from,
        .hi = q->to == BM_NO_BUCKET ? INT64_MAX : q->to,
        .by_minute = (x->gm & (1u << BM_G_MINUTE)) != 0,
        .may_subtract = q->sums_only,
    };
    bm_buf_init(&sql, 1 << 20);
    /* A retried attempt starts from an empty result. */
    bm_agg_free(x->a);
    x->a = bm_agg_new(0);
    bm_err e = x->a == NULL ? bm_errmsg_set(em, BM_E_NOMEM, "aggregates query: out of memory")
                            : plan_in(t, &in, em);
    if (e != BM_OK)
        goto done;
    bm__qplan_make(&in, &pl);
    if (pl.n == 0) /* nothing can match (an empty range, or all of it pruned) */
        goto done;
    if (build(x, &pl, &sql) != BM_OK) {
        e = bm_errmsg_set(em, BM_E_NOMEM, "aggregates query: out of memory");
        goto done;
    }
    p_opt_str(&p, q->model_id);
    if (q->profile_type < BM_PT__COUNT)
        bm__pg_p_int(&p, bm__ptype_code(q->profile_type));
    else
        bm__pg_p_null(&p);
    p_opt_str(&p, q->source_region);
    p_opt_str(&p, q->inference_region);
    bm__pg_p_int(&p, (int64_t)x->cap + 1);
    if ((e = bm__pg_exec(t, sql.data, &p, &r, NULL, em)) != BM_OK)
        goto done;
    if ((size_t)PQntuples(r) > x->cap)
        e = bm_errmsg_set(em, BM_E_BAD_REQUEST,
                          "the query would return more than %zu rows: narrow from/to, add a "
                          "filter or group by fewer fields",
                          x->cap);
    else
        e = add_rows(x, r, em);
    PQclear(r);
done:
    bm_buf_cleanup(&sql);
    return e;
}

bm_err bm__pg_query(struct bm_pg *pg, const struct bm_db_query *q, struct bm_agg **out,
                    struct bm_errmsg *em)
{
    struct query x = {q, q->max_rows ? q->max_rows : BM_DB_QUERY_MAX_ROWS, 0, NULL};
    for (int i = 0; i < q->group_by.n; i++)
        x.gm |= 1u << q->group_by.f[i];
    /* REPEATABLE READ: the cutoff and the rows from one snapshot, as SQLite's read
     * transaction gives; a read-only transaction at this level never fails to serialize. */
    bm_err e = bm__pg_tx_run(pg, "REPEATABLE READ, READ ONLY", query_fn, &x, em);
    if (e == BM_OK && (e = bm_agg_sort(x.a, &q->group_by)) != BM_OK)
        bm_errmsg_set(em, e, "aggregates query: out of memory");
    if (e != BM_OK) {
        bm_agg_free(x.a);
        return e;
    }
    *out = x.a;
    return BM_OK;
}
