/* pg_commit.c: the PostgreSQL store's exactly-once commit of one object: the processed row,
 * then the delta in the minute, hour, day and all-time tables and the outbox, with the cost,
 * residency and attribution columns of schema version 3, in one transaction. */
#include "storage/pg_int.h"
#include "storage/storage_int.h" /* bm__ptype_code: the stored profile-type codes */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The series key of the aggregate tables (pg_schema.c): version 1's columns plus version 3's
 * attribution values a1..a3 ("" for none). */
#define SERIES_KEY "bucket, model, ptype, profile, src, inf, op, a1, a2, a3"
#define ALL_KEY "model, ptype, profile, src, inf, op, a1, a2, a3"
/* pg_advisory_xact_lock key (with the key position) of new attribution values. */
#define ATTR_LOCK "1651335540"

#define STAT_MERGE(p)                                                                              \
    p "_s = a." p "_s + excluded." p "_s, " p "_mn = least(a." p "_mn, excluded." p "_mn), " p     \
      "_mx = greatest(a." p "_mx, excluded." p "_mx)"
/* Money as in SQLite: whole micro-dollars and the summed pico-dollar remainders (carried
 * over when read), the unpriced invocations and the residency violations; all plain sums. */
#define COST_MERGE                                                                                 \
    "c_u = a.c_u + excluded.c_u, c_p = a.c_p + excluded.c_p, np = a.np + excluded.np, "            \
    "rv = a.rv + excluded.rv"
/* The columns of a series row, in the order of apply_sql's arrays. */
#define SERIES_COLS                                                                                \
    "bucket, model, ptype, profile, src, inf, op, n, i_s, i_mn, i_mx, o_s, o_mn, o_mx, r_s, "      \
    "r_mn, r_mx, w_s, w_mn, w_mx, c_u, c_p, np, rv, a1, a2, a3"
/* clang-format off */
/* Sums of bigints are numeric in PostgreSQL: back to bigint. */
#define SUM(c) "sum(" c ")::bigint"
#define STAT_GROUP(p) SUM(p "_s") ", min(" p "_mn), max(" p "_mx)"
#define NAMES "model, profile, src, inf, op, a1, a2, a3, ptype"
/* One table's rows of the delta v: the series summed over buckets of `width` seconds (floored
 * toward minus infinity), in the table's key order, so that two commits lock shared rows in
 * the same order. One statement may not update a row twice: hence the grouping. */
#define GROUPED(width)                                                                         \
    "SELECT bucket - ((bucket % " width ") + " width ") % " width " AS fb, "                   \
    "model, ptype, profile, src, inf, op, " SUM("n") ", "                                     \
    STAT_GROUP("i") ", " STAT_GROUP("o") ", " STAT_GROUP("r") ", " STAT_GROUP("w") ", "       \
    SUM("c_u") ", " SUM("c_p") ", " SUM("np") ", " SUM("rv") ", a1, a2, a3 "                  \
    "FROM v GROUP BY fb, " NAMES " ORDER BY fb, " NAMES
#define AGG_INSERT(cte, table, width)                                                          \
    cte " AS (INSERT INTO " table " AS a (" SERIES_COLS ") " GROUPED(width) " "                \
    "ON CONFLICT (" SERIES_KEY ") DO UPDATE SET n = a.n + excluded.n, "                       \
    STAT_MERGE("i") ", " STAT_MERGE("o") ", " STAT_MERGE("r") ", " STAT_MERGE("w") ", "       \
    COST_MERGE ")"
#define ALL_INSERT                                                                             \
    "t AS (INSERT INTO agg_all AS a (model, ptype, profile, src, inf, op, n, i_s, o_s, r_s, "  \
    "w_s, c_u, c_p, np, rv, a1, a2, a3) "                                                     \
    "SELECT model, ptype, profile, src, inf, op, " SUM("n") ", " SUM("i_s") ", "              \
    SUM("o_s") ", " SUM("r_s") ", " SUM("w_s") ", " SUM("c_u") ", " SUM("c_p") ", "           \
    SUM("np") ", " SUM("rv") ", a1, a2, a3 FROM v GROUP BY " NAMES " ORDER BY " NAMES " "     \
    "ON CONFLICT (" ALL_KEY ") DO UPDATE SET n = a.n + excluded.n, "                          \
    "i_s = a.i_s + excluded.i_s, o_s = a.o_s + excluded.o_s, r_s = a.r_s + excluded.r_s, "    \
    "w_s = a.w_s + excluded.w_s, " COST_MERGE ")"

/* The whole delta in one statement, whatever its number of series: each column an array
 * ($1..$27 in SERIES_COLS order, text format) unnested into the rows v; from them the minute,
 * hour, day and all-time tables (each grouped to its width; every data-modifying WITH part
 * runs to completion) and the outbox ($28: the time of the commit). One round trip and one
 * parse per object, where a statement per series and table made a commit of 25 series 125
 * statements. */
static const char apply_sql[] =
    "WITH v AS (SELECT * FROM unnest($1::bigint[], $2::text[], $3::smallint[], $4::text[], "
    "$5::text[], $6::text[], $7::text[], $8::bigint[], $9::bigint[], $10::bigint[], "
    "$11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[], $16::bigint[], "
    "$17::bigint[], $18::bigint[], $19::bigint[], $20::bigint[], $21::bigint[], $22::bigint[], "
    "$23::bigint[], $24::bigint[], $25::text[], $26::text[], $27::text[]) "
    "AS v(" SERIES_COLS ")), "
    AGG_INSERT("m", "agg", "1") ", "
    AGG_INSERT("h", "agg_hour", "3600") ", "
    AGG_INSERT("d", "agg_day", "86400") ", "
    ALL_INSERT " "
    "INSERT INTO outbox (created_at, " SERIES_COLS ") "
    "SELECT $28::bigint, * FROM v ORDER BY bucket, " NAMES;
/* clang-format on */

bm_err bm__pg_counter_add(struct bm__pg_tx *t, enum bm_db_counter c, int64_t v,
                          struct bm_errmsg *em)
{
    struct bm__pg_params p = {0};
    const char *name = bm_db_counter_name(c);
    bm__pg_p_str(&p, bm_str_of(name));
    bm__pg_p_int(&p, v);
    /* The row of this session's shard (schema version 4): concurrent commits, on other
     * connections, mostly add to other rows and do not queue on one row until each other's
     * COMMIT is on disk. */
    return bm__pg_pipe(t,
                       "INSERT INTO counter_shard AS c (name, shard, value) VALUES ($1, "
                       "pg_backend_pid() % 64, $2::bigint) ON CONFLICT (name, shard) DO UPDATE "
                       "SET value = c.value + excluded.value",
                       &p, em);
}

/* One element of a PostgreSQL array literal (text format): a string double-quoted, with its
 * double quotes and backslashes escaped, so that commas, braces and spaces in a value (an
 * attribution value is anything a caller sent) stay inside it. */
static bm_err arr_str(struct bm_buf *b, struct bm_str s)
{
    bm_err e = bm_buf_append_char(b, '"');
    for (size_t i = 0; i < s.len && e == BM_OK; i++) {
        if (s.p[i] == '"' || s.p[i] == '\\')
            e = bm_buf_append_char(b, '\\');
        if (e == BM_OK)
            e = bm_buf_append_char(b, s.p[i]);
    }
    return e == BM_OK ? bm_buf_append_char(b, '"') : e;
}

enum { NCOL = 27 }; /* SERIES_COLS */

/* Appends series s as one element of each column's array (first: opens them). */
static bm_err add_row(struct bm_buf *col, const struct bm_series *s, bool first)
{
    const struct bm_stat *stats[4] = {&s->c.input, &s->c.output, &s->c.cache_read,
                                      &s->c.cache_write};
    const struct bm_str *names[4] = {&s->key.profile_id, &s->key.source_region,
                                     &s->key.inference_region, &s->key.operation};
    int64_t num[17];
    int k = 0;
    num[k++] = (int64_t)s->c.invocations;
    for (int i = 0; i < 4; i++) {
        num[k++] = (int64_t)stats[i]->sum;
        num[k++] = (int64_t)stats[i]->min;
        num[k++] = (int64_t)stats[i]->max;
    }
    num[k++] = (int64_t)s->c.cost.micro;
    num[k++] = (int64_t)s->c.cost.pico;
    num[k++] = (int64_t)s->c.unpriced;
    num[k++] = (int64_t)s->c.violations;
    bm_err e = BM_OK;
    for (int c = 0; c < NCOL && e == BM_OK; c++)
        e = bm_buf_append_char(&col[c], first ? '{' : ',');
    int c = 0;
    if (e == BM_OK)
        e = bm_buf_appendf(&col[c++], "%lld", (long long)s->key.bucket);
    if (e == BM_OK)
        e = arr_str(&col[c++], s->key.model_id);
    if (e == BM_OK)
        e = bm_buf_appendf(&col[c++], "%d", bm__ptype_code(s->key.type));
    for (int i = 0; i < 4 && e == BM_OK; i++)
        e = arr_str(&col[c++], *names[i]);
    for (int i = 0; i < k && e == BM_OK; i++)
        e = bm_buf_appendf(&col[c++], "%lld", (long long)num[i]);
    for (int i = 0; i < BM_ATTR_MAX && e == BM_OK; i++)
        e = arr_str(&col[c++], s->key.attr[i]);
    return e;
}

/* Adds the n series v (each with invocations) to the minute, hour, day and all-time tables
 * and the outbox: apply_sql, sent with the commit's other writes in one round trip
 * (bm__pg_pipe). */
static bm_err apply_series(struct bm__pg_tx *t, const struct bm_series **v, size_t n, int64_t now,
                           struct bm_errmsg *em)
{
    if (n == 0)
        return BM_OK;
    for (size_t i = 0; i < n; i++)
        if (bm__ptype_code(v[i]->key.type) < 0 || v[i]->key.bucket < INT64_MIN / 2 ||
            v[i]->key.bucket > INT64_MAX / 2)
            return bm_errmsg_set(em, BM_E_INTERNAL,
                                 "commit: series without bucket or profile type");
    struct bm_buf col[NCOL];
    bm_err e = BM_OK;
    for (int c = 0; c < NCOL; c++)
        bm_buf_init(&col[c], (size_t)1 << 30);
    for (size_t i = 0; i < n && e == BM_OK; i++)
        e = add_row(col, v[i], i == 0);
    for (int c = 0; c < NCOL && e == BM_OK; c++)
        e = bm_buf_append_char(&col[c], '}');
    if (e == BM_OK) {
        struct bm__pg_params p = {0};
        for (int c = 0; c < NCOL; c++)
            bm__pg_p_text(&p, col[c].data);
        bm__pg_p_int(&p, now);
        e = bm__pg_pipe(t, apply_sql, &p, em); /* libpq has copied the parameters */
    } else {
        e = bm_errmsg_set(em, e, "commit: out of memory for %zu series", n);
    }
    for (int c = 0; c < NCOL; c++)
        bm_buf_cleanup(&col[c]);
    return e;
}

struct commit {
    const struct bm_db_object *obj;
    const char *message_id;
    uint64_t size;
    const struct bm_agg *delta;
    const struct bm_ingest_stats *stats;
    int64_t now;
    int attr_max;
    const uint64_t *deferred; /* counts to add as well (may be NULL) */
    bool inserted;
    int64_t add[BM_DB_C__COUNT]; /* the counters this attempt adds */
};

/* The stored form of attribution value *v at key position pos (1..3): itself while the key
 * has fewer than cap distinct values (or already has this one), else "other", so that a key of
 * unbounded values (a request id put in requestMetadata) cannot grow the tables without bound.
 * A new value takes a transaction-level advisory lock per position before counting, so that
 * instances adding values at once do not both pass the cap; it is held to the commit, but
 * only commits that meet a new value of that key wait for it. */
static bm_err attr_value(struct bm__pg_tx *t, int pos, int cap, struct bm_str *v,
                         struct bm_errmsg *em)
{
    static const struct bm_str other = {"other", 5};
    struct bm__pg_params p = {0};
    PGresult *r = NULL;
    int64_t rows = 0;
    if (v->len == 0 || (v->len == other.len && memcmp(v->p, other.p, other.len) == 0))
        return BM_OK;
    bm__pg_p_int(&p, pos);
    bm__pg_p_str(&p, *v);
    bm_err e = bm__pg_exec(t, "SELECT 1 FROM attr_value WHERE k = $1::smallint AND v = $2", &p,
                           NULL, &rows, em);
    if (e != BM_OK || rows > 0)
        return e;
    p.n = 1;
    if ((e = bm__pg_exec(t, "SELECT pg_advisory_xact_lock(" ATTR_LOCK ", $1::int)", &p, NULL, NULL,
                         em)) != BM_OK ||
        (e = bm__pg_exec(t, "SELECT count(*) FROM attr_value WHERE k = $1::smallint", &p, &r, NULL,
                         em)) != BM_OK)
        return e;
    int64_t have = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    if (have >= cap) {
        /* Re-checked under the lock: the value may have come in meanwhile. */
        bm__pg_p_str(&p, *v);
        if ((e = bm__pg_exec(t, "SELECT 1 FROM attr_value WHERE k = $1::smallint AND v = $2", &p,
                             NULL, &rows, em)) == BM_OK &&
            rows == 0)
            *v = other;
        return e;
    }
    bm__pg_p_str(&p, *v);
    return bm__pg_exec(t,
                       "INSERT INTO attr_value (k, v) VALUES ($1::smallint, $2) "
                       "ON CONFLICT DO NOTHING",
                       &p, NULL, NULL, em);
}

/* The effect of a newly processed object: what objects.c's apply does, in lock order; its
 * counts go to c->add, which commit_fn writes last. */
static bm_err apply(struct bm__pg_tx *t, struct commit *c, struct bm_errmsg *em)
{
    struct bm__pg_params p = {0};
    size_t rows = 0;
    bm_err e = BM_OK;
    size_t n = c->delta != NULL ? bm_agg_count(c->delta) : 0;
    const struct bm_series **v = NULL;
    struct bm_series *cp = NULL;
    if (n > 0 &&
        ((v = bm_malloc(n * sizeof *v)) == NULL || (cp = bm_malloc(n * sizeof *cp)) == NULL)) {
        bm_free(v);
        return bm_errmsg_set(em, BM_E_NOMEM, "commit: out of memory");
    }
    /* A series with no invocation has no min/max to combine and nothing to publish. Copies,
     * since an attribution value past the cap is stored as "other". */
    for (size_t i = 0; i < n && e == BM_OK; i++) {
        if (bm_agg_at(c->delta, i)->c.invocations == 0)
            continue;
        cp[rows] = *bm_agg_at(c->delta, i);
        for (int k = 0; k < BM_ATTR_MAX && e == BM_OK; k++)
            e = attr_value(t, k + 1, c->attr_max, &cp[rows].key.attr[k], em);
        v[rows] = &cp[rows];
        rows++;
    }
    if (e == BM_OK)
        e = apply_series(t, v, rows, c->now, em);
    bm_free(v);
    bm_free(cp);
    bm__pg_p_object(&p, c->obj);
    if (e == BM_OK)
        e = bm__pg_pipe(t, "DELETE FROM failure WHERE bucket = $1 AND key = $2 AND version = $3",
                        &p, em);
    c->add[BM_DB_C_OBJECTS_PROCESSED] += 1;
    c->add[BM_DB_C_PUBLISH_PENDING] += (int64_t)rows;
    const struct bm_ingest_stats *st = c->stats;
    if (st != NULL) {
        c->add[BM_DB_C_RECORDS_PROCESSED] += (int64_t)st->records;
        c->add[BM_DB_C_RECORDS_INVALID] += (int64_t)st->invalid;
        for (int i = 0; i < BM_ERR_WIRE_N; i++)
            c->add[BM_DB_C_ERRORS + i] += (int64_t)st->errors[i];
    }
    return e;
}

static bm_err commit_fn(struct bm__pg_tx *t, void *ctx, struct bm_errmsg *em)
{
    struct commit *c = ctx;
    struct bm__pg_params p = {0};
    int64_t rows = 0;
    c->inserted = false;
    for (int i = 0; i < BM_DB_C__COUNT; i++)
        c->add[i] = c->deferred != NULL ? (int64_t)c->deferred[i] : 0;
    bm__pg_p_object(&p, c->obj);
    bm__pg_p_int(&p, (int64_t)c->size);
    bm__pg_p_int(&p, c->stats ? (int64_t)c->stats->records : 0);
    bm__pg_p_int(&p, c->stats ? (int64_t)c->stats->invalid : 0);
    bm__pg_p_int(&p, c->now);
    if (c->message_id != NULL)
        bm__pg_p_str(&p, bm_str_of(c->message_id));
    else
        bm__pg_p_null(&p);
    /* The processed row first. A concurrent insert of the same key, from any instance, waits
     * on the primary key until the first transaction ends, then does nothing (0 rows) if that
     * one committed: exactly one transaction goes on to apply the delta. */
    bm_err e = bm__pg_exec(t,
                           "INSERT INTO processed (bucket, key, version, size, records, invalid, "
                           "processed_at, message_id) VALUES ($1, $2, $3, $4::bigint, $5::bigint, "
                           "$6::bigint, $7::bigint, $8) ON CONFLICT DO NOTHING",
                           &p, NULL, &rows, em);
    if (e != BM_OK)
        return e;
    c->inserted = rows == 1;
    if (c->inserted)
        e = apply(t, c, em);
    else
        c->add[BM_DB_C_OBJECTS_DUPLICATES] += 1;
    /* The counters last and in one order (the enum's) for every commit: two commits then lock
     * the shared counter rows in the same order and cannot deadlock on them. */
    for (int i = 0; i < BM_DB_C__COUNT && e == BM_OK; i++)
        if (c->add[i] != 0)
            e = bm__pg_counter_add(t, (enum bm_db_counter)i, c->add[i], em);
    return e;
}

bm_err bm__pg_commit_object(struct bm_pg *pg, const struct bm_db_object *obj,
                            const char *message_id, uint64_t size, const struct bm_agg *delta,
                            const struct bm_ingest_stats *stats, int64_t now,
                            const uint64_t *deferred, enum bm_db_commit_result *result,
                            struct bm_errmsg *em)
{
    struct commit c = {obj, message_id,          size,     delta, stats,
                       now, bm__pg_attr_max(pg), deferred, false, {0}};
    /* READ COMMITTED suffices: every write is an upsert that re-reads the row it conflicts
     * with, so no read feeds a decision that another transaction could invalidate. Deadlocks
     * between commits that touch shared rows in different orders are retried. */
    bm_err e = bm__pg_tx_run(pg, "READ COMMITTED", commit_fn, &c, em);
    if (e == BM_OK)
        *result = c.inserted ? BM_DB_COMMITTED : BM_DB_DUPLICATE;
    return e;
}
