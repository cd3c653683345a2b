/* pg_prune.c: retention (METRICS_RETENTION_DAYS) on the PostgreSQL store, with outbox.c's
 * contract: the cutoff recorded first, then rows older than it deleted in short batches, each
 * its own transaction, the all-time rollup kept equal to the sum of the stored minute rows. */
#include "storage/pg_int.h"
#include "storage/storage_int.h"

#include <stdlib.h>
#include <string.h>

/* Rows per transaction: a few milliseconds of work, so a commit waits at most that long. */
#define PRUNE_BATCH 2000

/* $1 the cutoff, $2 the batch size. PostgreSQL's DELETE has no LIMIT: a batch is the rows of
 * a limited subquery, by ctid. */
static const char *const prune_sql[] = {
    "DELETE FROM agg_hour WHERE ctid IN (SELECT ctid FROM agg_hour WHERE bucket < $1::bigint "
    "LIMIT $2::bigint)",
    "DELETE FROM agg_day WHERE ctid IN (SELECT ctid FROM agg_day WHERE bucket < $1::bigint "
    "LIMIT $2::bigint)",
    "DELETE FROM processed WHERE ctid IN (SELECT ctid FROM processed WHERE processed_at < "
    "$1::bigint LIMIT $2::bigint)",
    "DELETE FROM failure WHERE ctid IN (SELECT ctid FROM failure WHERE last_at < $1::bigint "
    "LIMIT $2::bigint)",
    /* Finished rows only: claimed ones (state 4) are still to be sent. */
    "DELETE FROM outbox WHERE ctid IN (SELECT ctid FROM outbox WHERE state <> 0 AND state <> 4 "
    "AND created_at < $1::bigint LIMIT $2::bigint)",
};
#define N_PRUNE ((int)(sizeof prune_sql / sizeof prune_sql[0]))

/* The minute rows before $1, deleted and subtracted from the all-time rollup in ONE statement:
 * the subtraction is exactly what the delete removed, whatever commits run meanwhile (two
 * statements would each see their own snapshot at READ COMMITTED). */
static const char prune_minutes_sql[] =
    "WITH d AS (DELETE FROM agg WHERE bucket < $1::bigint RETURNING *), "
    "s AS (SELECT model, ptype, profile, src, inf, op, a1, a2, a3, sum(n) AS n, sum(i_s) AS i_s, "
    "sum(o_s) AS o_s, sum(r_s) AS r_s, sum(w_s) AS w_s, sum(c_u) AS c_u, sum(c_p) AS c_p, "
    "sum(np) AS np, sum(rv) AS rv, count(*) AS rows FROM d "
    "GROUP BY model, ptype, profile, src, inf, op, a1, a2, a3), "
    "u AS (UPDATE agg_all AS a SET n = a.n - s.n, i_s = a.i_s - s.i_s, o_s = a.o_s - s.o_s, "
    "r_s = a.r_s - s.r_s, w_s = a.w_s - s.w_s, c_u = a.c_u - s.c_u, c_p = a.c_p - s.c_p, "
    "np = a.np - s.np, rv = a.rv - s.rv FROM s WHERE a.model = s.model AND a.ptype = s.ptype "
    "AND a.profile = s.profile AND a.src = s.src AND a.inf = s.inf AND a.op = s.op "
    "AND a.a1 = s.a1 AND a.a2 = s.a2 AND a.a3 = s.a3 RETURNING 1) "
    "SELECT coalesce((SELECT sum(rows) FROM s), 0), (SELECT count(*) FROM u)";

struct step {
    const char *sql;
    int64_t a, b;
    int64_t changed; /* rows the statement changed, or its first column */
    bool has_row;
};

static bm_err step_fn(struct bm__pg_tx *t, void *ctx, struct bm_errmsg *em)
{
    struct step *s = ctx;
    struct bm__pg_params p = {0};
    PGresult *r = NULL;
    /* Only the parameters the statement uses: the server refuses others. */
    if (strstr(s->sql, "$1") != NULL)
        bm__pg_p_int(&p, s->a);
    if (strstr(s->sql, "$2") != NULL)
        bm__pg_p_int(&p, s->b);
    bm_err e = bm__pg_exec(t, s->sql, &p, &r, &s->changed, em);
    if (e != BM_OK)
        return e;
    s->has_row = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0;
    if (s->has_row)
        s->changed = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return BM_OK;
}

/* Runs one statement with $1 = a, $2 = b (the first, both or none) in its own transaction. */
static bm_err run(struct bm_db *db, const char *sql, int64_t a, int64_t b, struct step *out,
                  struct bm_errmsg *em)
{
    *out = (struct step){sql, a, b, 0, false};
    bm_err e = bm__pg_tx_run(db->pg, "READ COMMITTED", step_fn, out, em);
    bm__health_note(db, e, em);
    return e;
}

bm_err bm__pgs_prune(struct bm_db *db, int64_t cutoff, struct bm_db_prune_stats *stats,
                     struct bm_errmsg *em)
{
    struct bm_db_prune_stats s = {0};
    struct step st;
    /* Rollup rows go only once their whole hour or day is before the cutoff; the clamp keeps
     * queries from reading the older part of the one that straddles it. */
    const int64_t cut[N_PRUNE] = {cutoff - ((cutoff % 3600) + 3600) % 3600,
                                  cutoff - ((cutoff % 86400) + 86400) % 86400, cutoff, cutoff,
                                  cutoff};
    uint64_t rollups = 0; /* not reported: the minute rows are what was kept */
    uint64_t *count[N_PRUNE] = {&rollups, &rollups, &s.processed, &s.failures, &s.outbox};
    /* The cutoff first, in its own transaction: queries clamp to it from then on, so none sees
     * a half-pruned window. greatest(): an older cutoff never moves it back. */
    bm_err e = run(db,
                   "INSERT INTO meta AS m (key, value) VALUES ('pruned_before', $1::bigint) "
                   "ON CONFLICT (key) DO UPDATE SET value = greatest(m.value, excluded.value)",
                   cutoff, 0, &st, em);
    /* Minute rows in batches that end after a whole bucket. */
    bool more = true;
    while (e == BM_OK && more) {
        int64_t end = cutoff;
        e = run(db,
                "SELECT bucket FROM agg WHERE bucket < $1::bigint ORDER BY bucket LIMIT 1 "
                "OFFSET $2::bigint",
                cutoff, PRUNE_BATCH - 1, &st, em);
        more = e == BM_OK && st.has_row;
        if (more)
            end = st.changed + 1; /* that bucket whole: before cutoff, so no overflow */
        if (e == BM_OK && (e = run(db, prune_minutes_sql, end, 0, &st, em)) == BM_OK)
            s.aggregates += (uint64_t)st.changed;
    }
    if (e == BM_OK)
        e = run(db, "DELETE FROM agg_all WHERE n = 0", 0, 0, &st, em);
    for (int i = 0; i < N_PRUNE && e == BM_OK; i++) {
        st.changed = PRUNE_BATCH;
        while (e == BM_OK && st.changed >= PRUNE_BATCH)
            if ((e = run(db, prune_sql[i], cut[i], PRUNE_BATCH, &st, em)) == BM_OK)
                *count[i] += (uint64_t)st.changed;
    }
    if (stats != NULL)
        *stats = s;
    return e;
}
