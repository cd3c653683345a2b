/* pg_query.c: GET /aggregates on the PostgreSQL store: one GROUP BY over the minute rows at
 * or after the prune cutoff, grouped and filtered by the server. Correct first: it reads every
 * minute row of the range (SQLite's planner reads the hourly, daily and all-time rollups where
 * they answer exactly; pg_schema.c keeps the same rollups for a later planner here). */
#include "storage/pg_int.h"
#include "storage/storage_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Key columns of the result, in this order; when not grouped by a field its column is a
 * constant, so that every query reads the same result shape. */
enum { K_BUCKET, K_PTYPE, K_MODEL, K_PROFILE, K_SRC, K_INF, K_OP, K_A1, K_A2, K_A3, K__COUNT };
static const struct {
    enum bm_group g;
    const char *expr, *none;
} key_cols[K__COUNT] = {
    {BM_G_MINUTE, "bucket - ((bucket % 60) + 60) % 60", "0::bigint"},
    {BM_G_PROFILE_TYPE, "ptype", "(-1)::smallint"},
    {BM_G_MODEL_ID, "model", "''::text"},
    {BM_G_PROFILE_ID, "profile", "''::text"},
    {BM_G_SOURCE_REGION, "src", "''::text"},
    {BM_G_INFERENCE_REGION, "inf", "''::text"},
    {BM_G_OPERATION, "op", "''::text"},
    {BM_G_ATTR1, "a1", "''::text"},
    {BM_G_ATTR2, "a2", "''::text"},
    {BM_G_ATTR3, "a3", "''::text"},
};
/* Then n, the four token sums with their min/max, cost (micro, pico), unpriced, violations. */
static const char aggs[] =
    "sum(n), sum(i_s), min(i_mn), max(i_mx), sum(o_s), min(o_mn), max(o_mx), sum(r_s), "
    "min(r_mn), max(r_mx), sum(w_s), min(w_mn), max(w_mx), sum(c_u), sum(c_p), sum(np), sum(rv)";
/* $1, $2: the bucket range; $3..$6 the filters (NULL: any); $7 the row cap plus one. */
static const char where[] =
    " FROM agg WHERE bucket >= $1::bigint AND bucket < $2::bigint AND bucket >= "
    "coalesce((SELECT value FROM meta WHERE key = 'pruned_before'), $1::bigint) "
    "AND ($3::text IS NULL OR model = $3) AND ($4::smallint IS NULL OR ptype = $4::smallint) "
    "AND ($5::text IS NULL OR src = $5) AND ($6::text IS NULL OR inf = $6)";

struct query {
    const struct bm_db_query *q;
    size_t cap;
    unsigned gm;
    struct bm_agg *a;
};

static uint64_t u64(PGresult *r, int row, int col)
{
    /* Sums of bigint are numeric: exact, printed as integers. */
    return PQgetisnull(r, row, col) ? 0 : strtoull(PQgetvalue(r, row, col), NULL, 10);
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
        struct bm_counters cn = {.invocations = u64(r, i, c++)};
        struct bm_stat *stats[4] = {&cn.input, &cn.output, &cn.cache_read, &cn.cache_write};
        for (int j = 0; j < 4; j++, c += 3)
            *stats[j] = (struct bm_stat){u64(r, i, c), minmax ? u64(r, i, c + 1) : 0,
                                         minmax ? u64(r, i, c + 2) : 0};
        struct bm_cost cost = {u64(r, i, c), u64(r, i, c + 1)}; /* the pico-dollars carry */
        bm_cost_add(&cn.cost, &cost);
        cn.unpriced = u64(r, i, c + 2);
        cn.violations = u64(r, i, c + 3);
        if (cn.invocations == 0)
            continue;
        bm_err e = bm_agg_add(x->a, &k, &cn);
        if (e != BM_OK)
            return bm_errmsg_set(em, e, "aggregates query: out of memory");
    }
    return BM_OK;
}

static void p_opt_str(struct bm__pg_params *p, const char *s)
{
    if (s != NULL)
        bm__pg_p_str(p, (struct bm_str){s, strlen(s)});
    else
        bm__pg_p_null(p);
}

static bm_err query_fn(struct bm__pg_tx *t, void *ctx, struct bm_errmsg *em)
{
    struct query *x = ctx;
    const struct bm_db_query *q = x->q;
    struct bm__pg_params p = {0};
    struct bm_buf sql, groups;
    PGresult *r = NULL;
    bm_err e = BM_OK;
    bm_buf_init(&sql, 8192);
    bm_buf_init(&groups, 1024);
    /* A retried attempt starts from an empty result. */
    bm_agg_free(x->a);
    if ((x->a = bm_agg_new(0)) == NULL) {
        e = bm_errmsg_set(em, BM_E_NOMEM, "aggregates query: out of memory");
        goto done;
    }
    bm_err b = bm_buf_append_str(&sql, "SELECT ");
    for (int i = 0; i < K__COUNT && b == BM_OK; i++) {
        bool grouped = (x->gm & (1u << key_cols[i].g)) != 0;
        b = bm_buf_appendf(&sql, "%s, ", grouped ? key_cols[i].expr : key_cols[i].none);
        if (grouped && b == BM_OK)
            b = bm_buf_appendf(&groups, "%s%s", groups.len ? ", " : " GROUP BY ", key_cols[i].expr);
    }
    if (b == BM_OK)
        b = bm_buf_append_str(&sql, aggs);
    if (b == BM_OK)
        b = bm_buf_append_str(&sql, where);
    if (b == BM_OK && groups.len > 0)
        b = bm_buf_append(&sql, groups.data, groups.len);
    /* Ungrouped: one row, which sum() over no rows makes a row of NULLs (dropped below). */
    if (b == BM_OK)
        b = bm_buf_append_str(&sql, " LIMIT $7::bigint");
    if (b != BM_OK) {
        e = bm_errmsg_set(em, BM_E_NOMEM, "aggregates query: out of memory");
        goto done;
    }
    bm__pg_p_int(&p, q->from == BM_NO_BUCKET ? INT64_MIN : q->from);
    bm__pg_p_int(&p, q->to == BM_NO_BUCKET ? INT64_MAX : q->to);
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
    bm_buf_cleanup(&groups);
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
