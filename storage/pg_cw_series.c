/* pg_cw_series.c: the CloudWatch series published or held back (BMAS_MAX_SERIES) and the
 * budget on /status, on the PostgreSQL store, with cw_series.c's contracts. Orders are
 * COLLATE "C" (bytes, as SQLite compares), whatever the database's locale. */
#include "storage/pg_int.h"
#include "storage/storage_int.h"

#include <stdlib.h>
#include <string.h>

/* A series not published nor held back for this long is forgotten (cw_series.c says why). */
#define FORGET_AFTER_S (40 * 86400)

static const char sql_recent[] =
    "SELECT dimset, v1, v2, v3, v4, v5, pub_at >= $1::bigint FROM cw_series "
    "WHERE pub_at >= $1::bigint OR held_at >= $1::bigint "
    "ORDER BY dimset COLLATE \"C\", v1 COLLATE \"C\", v2 COLLATE \"C\", v3 COLLATE \"C\", "
    "v4 COLLATE \"C\", v5 COLLATE \"C\"";
static const char sql_publish[] =
    "INSERT INTO cw_series AS c (dimset, v1, v2, v3, v4, v5, pub_at, held_at, held_n, month, "
    "  hours, last_hour) VALUES ($1, $2, $3, $4, $5, $6, $7::bigint, 0, 0, $8::bigint, 1, "
    "  $9::bigint) "
    "ON CONFLICT (dimset, v1, v2, v3, v4, v5) DO UPDATE SET pub_at = excluded.pub_at, "
    "  hours = CASE WHEN c.month <> excluded.month THEN 1 "
    "    WHEN c.last_hour <> excluded.last_hour THEN c.hours + 1 ELSE c.hours END, "
    "  month = excluded.month, last_hour = excluded.last_hour";
static const char sql_hold[] =
    "INSERT INTO cw_series AS c (dimset, v1, v2, v3, v4, v5, pub_at, held_at, held_n, month, "
    "  hours, last_hour) VALUES ($1, $2, $3, $4, $5, $6, 0, $7::bigint, 1, 0, 0, 0) "
    "ON CONFLICT (dimset, v1, v2, v3, v4, v5) DO UPDATE SET held_at = excluded.held_at, "
    "  held_n = c.held_n + 1";
static const char sql_sets[] =
    "SELECT dimset, count(*) FILTER (WHERE pub_at >= $1::bigint), "
    "  count(*) FILTER (WHERE held_at >= $1::bigint AND pub_at < $1::bigint) FROM cw_series "
    "WHERE pub_at >= $1::bigint OR held_at >= $1::bigint GROUP BY dimset "
    "ORDER BY dimset COLLATE \"C\"";
static const char sql_totals[] =
    "SELECT coalesce(sum(CASE WHEN month = $1::bigint THEN hours ELSE 0 END), 0), "
    "  coalesce(sum(held_n), 0) FROM cw_series";

static struct bm_str col(PGresult *r, int row, int c)
{
    return (struct bm_str){PQgetvalue(r, row, c), (size_t)PQgetlength(r, row, c)};
}

/* One read statement with $1 = a; the result kept for after the transaction, so that the
 * caller's callbacks run once, never again on a retried attempt. */
struct read {
    const char *sql;
    int64_t a;
    PGresult *r;
};

static bm_err read_fn(struct bm__pg_tx *t, void *ctx, struct bm_errmsg *em)
{
    struct read *x = ctx;
    struct bm__pg_params p = {0};
    bm__pg_p_int(&p, x->a);
    PQclear(x->r);
    x->r = NULL;
    return bm__pg_exec(t, x->sql, &p, &x->r, NULL, em);
}

bm_err bm__pgs_cw_series_recent(struct bm_db *db, int64_t since, bm_db_cw_series_fn fn, void *ctx,
                                struct bm_errmsg *em)
{
    struct read x = {sql_recent, since, NULL};
    bm_err e = bm__pg_tx_run(db->pg, NULL, read_fn, &x, em);
    for (int i = 0; e == BM_OK && i < PQntuples(x.r); i++) {
        struct bm_db_cw_series s = {.set = PQgetvalue(x.r, i, 0)};
        for (int k = 0; k < BM_DIMSET_MAX_DIMS; k++)
            s.v[k] = col(x.r, i, 1 + k);
        e = fn(ctx, &s, strcmp(PQgetvalue(x.r, i, 6), "t") == 0);
    }
    PQclear(x.r);
    return e;
}

struct record {
    const struct bm_db_cw_series *v;
    size_t n;
    bool held;
    int64_t now, month_start;
};

static bm_err record_fn(struct bm__pg_tx *t, void *ctx, struct bm_errmsg *em)
{
    const struct record *x = ctx;
    struct bm__pg_params p;
    bm_err e = BM_OK;
    for (size_t i = 0; e == BM_OK && i < x->n; i++) {
        p.n = 0;
        bm__pg_p_str(&p, bm_str_of(x->v[i].set));
        for (int k = 0; k < BM_DIMSET_MAX_DIMS; k++)
            bm__pg_p_str(&p, x->v[i].v[k].p ? x->v[i].v[k] : (struct bm_str){"", 0});
        bm__pg_p_int(&p, x->now);
        if (!x->held) {
            bm__pg_p_int(&p, x->month_start);
            bm__pg_p_int(&p, x->now / 3600);
        }
        e = bm__pg_pipe(t, x->held ? sql_hold : sql_publish, &p, em);
    }
    if (e == BM_OK) {
        p.n = 0;
        bm__pg_p_int(&p, x->now - FORGET_AFTER_S);
        e = bm__pg_pipe(t, "DELETE FROM cw_series WHERE pub_at < $1::bigint AND held_at < $1", &p,
                        em);
    }
    return e; /* the pipelined upserts' answers come with COMMIT's: one round trip for all */
}

bm_err bm__pgs_cw_series_record(struct bm_db *db, const struct bm_db_cw_series *v, size_t n,
                                bool held, int64_t now, int64_t month_start, struct bm_errmsg *em)
{
    struct record x = {v, n, held, now, month_start};
    bm_err e = bm__pg_tx_run(db->pg, "READ COMMITTED", record_fn, &x, em);
    bm__health_note(db, e, em);
    return e;
}

struct budget {
    int64_t since, month_start;
    PGresult *sets;
    struct bm_db_cw_budget b;
};

static bm_err budget_fn(struct bm__pg_tx *t, void *ctx, struct bm_errmsg *em)
{
    struct budget *x = ctx;
    struct bm__pg_params p = {0};
    PGresult *r = NULL;
    PQclear(x->sets);
    x->sets = NULL;
    bm__pg_p_int(&p, x->since);
    bm_err e = bm__pg_exec(t, sql_sets, &p, &x->sets, NULL, em);
    if (e != BM_OK)
        return e;
    p.n = 0;
    bm__pg_p_int(&p, x->month_start);
    if ((e = bm__pg_exec(t, sql_totals, &p, &r, NULL, em)) != BM_OK)
        return e;
    x->b.series_hours = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    x->b.held_back_total = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    return BM_OK;
}

bm_err bm__pgs_cw_budget(struct bm_db *db, int64_t since, int64_t month_start, bm_db_cw_set_fn fn,
                         void *ctx, struct bm_db_cw_budget *out, struct bm_errmsg *em)
{
    struct budget x = {.since = since, .month_start = month_start};
    /* One snapshot for the sets and the totals. */
    bm_err e = bm__pg_tx_run(db->pg, "REPEATABLE READ, READ ONLY", budget_fn, &x, em);
    for (int i = 0; e == BM_OK && i < PQntuples(x.sets); i++) {
        uint64_t pub = strtoull(PQgetvalue(x.sets, i, 1), NULL, 10);
        uint64_t held = strtoull(PQgetvalue(x.sets, i, 2), NULL, 10);
        x.b.series += pub;
        x.b.held += held;
        if (fn != NULL)
            fn(ctx, PQgetvalue(x.sets, i, 0), pub, held);
    }
    PQclear(x.sets);
    if (e == BM_OK)
        *out = x.b;
    return e;
}
