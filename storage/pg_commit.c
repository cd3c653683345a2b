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
/* Parameters $1..$27 in this order (p_series). */
#define SERIES_COLS                                                                                \
    "bucket, model, ptype, profile, src, inf, op, n, i_s, i_mn, i_mx, o_s, o_mn, o_mx, r_s, "      \
    "r_mn, r_mx, w_s, w_mn, w_mx, c_u, c_p, np, rv, a1, a2, a3"
#define SERIES_PARAMS                                                                              \
    "$1::bigint, $2, $3::smallint, $4, $5, $6, $7, $8::bigint, $9::bigint, $10::bigint, "          \
    "$11::bigint, $12::bigint, $13::bigint, $14::bigint, $15::bigint, $16::bigint, "               \
    "$17::bigint, $18::bigint, $19::bigint, $20::bigint, $21::bigint, $22::bigint, "               \
    "$23::bigint, $24::bigint, $25, $26, $27"
#define AGG_UPSERT(table)                                                                          \
    "INSERT INTO " table " AS a (" SERIES_COLS ") VALUES (" SERIES_PARAMS ") "                     \
    "ON CONFLICT (" SERIES_KEY ") DO UPDATE SET n = a.n + excluded.n, " STAT_MERGE(                \
        "i") ", " STAT_MERGE("o") ", " STAT_MERGE("r") ", " STAT_MERGE("w") ", " COST_MERGE

static const char *const agg_upsert[3] = {AGG_UPSERT("agg"), AGG_UPSERT("agg_hour"),
                                          AGG_UPSERT("agg_day")};
static const char agg_all_upsert[] =
    "INSERT INTO agg_all AS a (model, ptype, profile, src, inf, op, n, i_s, o_s, r_s, w_s, c_u, "
    "c_p, np, rv, a1, a2, a3) VALUES ($1, $2::smallint, $3, $4, $5, $6, $7::bigint, $8::bigint, "
    "$9::bigint, $10::bigint, $11::bigint, $12::bigint, $13::bigint, $14::bigint, $15::bigint, "
    "$16, $17, $18) ON CONFLICT (" ALL_KEY ") DO UPDATE SET "
    "n = a.n + excluded.n, i_s = a.i_s + excluded.i_s, o_s = a.o_s + excluded.o_s, "
    "r_s = a.r_s + excluded.r_s, w_s = a.w_s + excluded.w_s, " COST_MERGE;
static const char outbox_put[] =
    "INSERT INTO outbox (created_at, " SERIES_COLS ") VALUES ($28::bigint, " SERIES_PARAMS ")";

static int64_t floor_to(int64_t t, int64_t width)
{
    return t - ((t % width) + width) % width;
}

/* The cost columns and the attribution values, after a row's sums. */
static void p_extra(struct bm__pg_params *p, const struct bm_series *s)
{
    bm__pg_p_int(p, (int64_t)s->c.cost.micro);
    bm__pg_p_int(p, (int64_t)s->c.cost.pico);
    bm__pg_p_int(p, (int64_t)s->c.unpriced);
    bm__pg_p_int(p, (int64_t)s->c.violations);
    for (int i = 0; i < BM_ATTR_MAX; i++)
        bm__pg_p_str(p, s->key.attr[i]);
}

static void p_series(struct bm__pg_params *p, int64_t bucket, int ptype, const struct bm_series *s)
{
    const struct bm_stat *stats[4] = {&s->c.input, &s->c.output, &s->c.cache_read,
                                      &s->c.cache_write};
    p->n = 0;
    bm__pg_p_int(p, bucket);
    bm__pg_p_str(p, s->key.model_id);
    bm__pg_p_int(p, ptype);
    bm__pg_p_str(p, s->key.profile_id);
    bm__pg_p_str(p, s->key.source_region);
    bm__pg_p_str(p, s->key.inference_region);
    bm__pg_p_str(p, s->key.operation);
    bm__pg_p_int(p, (int64_t)s->c.invocations);
    for (int i = 0; i < 4; i++) {
        bm__pg_p_int(p, (int64_t)stats[i]->sum);
        bm__pg_p_int(p, (int64_t)stats[i]->min);
        bm__pg_p_int(p, (int64_t)stats[i]->max);
    }
    p_extra(p, s);
}

bm_err bm__pg_counter_add(struct bm__pg_tx *t, enum bm_db_counter c, int64_t v,
                          struct bm_errmsg *em)
{
    struct bm__pg_params p = {0};
    const char *name = bm_db_counter_name(c);
    bm__pg_p_str(&p, (struct bm_str){name, strlen(name)});
    bm__pg_p_int(&p, v);
    /* One row per counter, which every commit updates: commits of different objects queue
     * on it for the rest of their transaction. Fine at the rates one SQS queue delivers;
     * per-instance rows summed on read are the way out if it ever is not. */
    return bm__pg_exec(t,
                       "INSERT INTO counter AS c (name, value) VALUES ($1, $2::bigint) "
                       "ON CONFLICT (name) DO UPDATE SET value = c.value + excluded.value",
                       &p, NULL, NULL, em);
}

/* Orders series by one table's key: the bucket floored to width (0: the all-time table, no
 * bucket), then the names and the profile type. Any total order will do, as long as every
 * transaction uses the same one. */
static int key_cmp(const struct bm_series *a, const struct bm_series *b, int64_t width)
{
    if (width > 0) {
        int64_t x = floor_to(a->key.bucket, width), y = floor_to(b->key.bucket, width);
        if (x != y)
            return x < y ? -1 : 1;
    }
    const struct bm_str *sa[8] = {
        &a->key.model_id,  &a->key.profile_id, &a->key.source_region, &a->key.inference_region,
        &a->key.operation, &a->key.attr[0],    &a->key.attr[1],       &a->key.attr[2]};
    const struct bm_str *sb[8] = {
        &b->key.model_id,  &b->key.profile_id, &b->key.source_region, &b->key.inference_region,
        &b->key.operation, &b->key.attr[0],    &b->key.attr[1],       &b->key.attr[2]};
    for (int i = 0; i < 8; i++) {
        size_t n = sa[i]->len < sb[i]->len ? sa[i]->len : sb[i]->len;
        int c = n > 0 ? memcmp(sa[i]->p, sb[i]->p, n) : 0;
        if (c != 0)
            return c;
        if (sa[i]->len != sb[i]->len)
            return sa[i]->len < sb[i]->len ? -1 : 1;
    }
    return (a->key.type > b->key.type) - (a->key.type < b->key.type);
}

#define CMP_FN(name, width)                                                                        \
    static int name(const void *a, const void *b)                                                  \
    {                                                                                              \
        return key_cmp(*(const struct bm_series *const *)a, *(const struct bm_series *const *)b,   \
                       width);                                                                     \
    }
CMP_FN(cmp_minute, 1)
CMP_FN(cmp_hour, 3600)
CMP_FN(cmp_day, 86400)
CMP_FN(cmp_all, 0)

static void p_all(struct bm__pg_params *p, int ptype, const struct bm_series *s)
{
    p->n = 0;
    bm__pg_p_str(p, s->key.model_id);
    bm__pg_p_int(p, ptype);
    bm__pg_p_str(p, s->key.profile_id);
    bm__pg_p_str(p, s->key.source_region);
    bm__pg_p_str(p, s->key.inference_region);
    bm__pg_p_str(p, s->key.operation);
    bm__pg_p_int(p, (int64_t)s->c.invocations);
    bm__pg_p_int(p, (int64_t)s->c.input.sum);
    bm__pg_p_int(p, (int64_t)s->c.output.sum);
    bm__pg_p_int(p, (int64_t)s->c.cache_read.sum);
    bm__pg_p_int(p, (int64_t)s->c.cache_write.sum);
    p_extra(p, s);
}

/* Adds the n series v (each with invocations) to the minute, hour, day and all-time tables
 * and the outbox. Table by table, each in its key order: two commits that share rows then
 * lock them in the same order and cannot deadlock (the counters come after, in a fixed
 * order too), where the delta's own order made concurrent commits deadlock and retry. */
static bm_err apply_series(struct bm__pg_tx *t, const struct bm_series **v, size_t n, int64_t now,
                           struct bm_errmsg *em)
{
    static const int64_t widths[3] = {1, 3600, 86400};
    static int (*const cmp[4])(const void *, const void *) = {cmp_minute, cmp_hour, cmp_day,
                                                              cmp_all};
    struct bm__pg_params p;
    bm_err e = BM_OK;
    if (n == 0)
        return BM_OK;
    for (size_t i = 0; i < n; i++)
        if (bm__ptype_code(v[i]->key.type) < 0 || v[i]->key.bucket < INT64_MIN / 2 ||
            v[i]->key.bucket > INT64_MAX / 2)
            return bm_errmsg_set(em, BM_E_INTERNAL,
                                 "commit: series without bucket or profile type");
    for (int tb = 0; tb < 4 && e == BM_OK; tb++) {
        qsort(v, n, sizeof *v, cmp[tb]);
        for (size_t i = 0; i < n && e == BM_OK; i++) {
            int ptype = bm__ptype_code(v[i]->key.type);
            if (tb < 3) {
                p_series(&p, floor_to(v[i]->key.bucket, widths[tb]), ptype, v[i]);
                e = bm__pg_exec(t, agg_upsert[tb], &p, NULL, NULL, em);
            } else {
                p_all(&p, ptype, v[i]);
                e = bm__pg_exec(t, agg_all_upsert, &p, NULL, NULL, em);
            }
        }
    }
    for (size_t i = 0; i < n && e == BM_OK; i++) {
        p_series(&p, v[i]->key.bucket, bm__ptype_code(v[i]->key.type), v[i]);
        bm__pg_p_int(&p, now);
        e = bm__pg_exec(t, outbox_put, &p, NULL, NULL, em);
    }
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

static void p_object(struct bm__pg_params *p, const struct bm_db_object *o)
{
    bm__pg_p_str(p, o->bucket);
    bm__pg_p_str(p, o->key);
    bm__pg_p_str(p, o->version);
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
    p_object(&p, c->obj);
    if (e == BM_OK)
        e = bm__pg_exec(t, "DELETE FROM failure WHERE bucket = $1 AND key = $2 AND version = $3",
                        &p, NULL, NULL, em);
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
    p_object(&p, c->obj);
    bm__pg_p_int(&p, (int64_t)c->size);
    bm__pg_p_int(&p, c->stats ? (int64_t)c->stats->records : 0);
    bm__pg_p_int(&p, c->stats ? (int64_t)c->stats->invalid : 0);
    bm__pg_p_int(&p, c->now);
    if (c->message_id != NULL)
        bm__pg_p_str(&p, (struct bm_str){c->message_id, strlen(c->message_id)});
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
                            enum bm_db_commit_result *result, struct bm_errmsg *em)
{
    return bm__pg_commit_with(pg, obj, message_id, size, delta, stats, now, NULL, result, em);
}

bm_err bm__pg_commit_with(struct bm_pg *pg, const struct bm_db_object *obj, const char *message_id,
                          uint64_t size, const struct bm_agg *delta,
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
