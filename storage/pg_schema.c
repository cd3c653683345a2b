/* pg_schema.c: the PostgreSQL store's schema as forward migrations (versioned in meta), the
 * exactly-once commit of one object, and the publisher lease that lets one instance of several
 * publish. Steps are only ever appended, as in schema.c. */
#include "storage/pg_int.h"
#include "storage/storage_int.h" /* bm__ptype_code: the stored profile-type codes */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The series key is stored as text, not as ids interned in a `str` table as SQLite does.
 * Several instances write one database: interned ids would need a shared table every commit
 * inserts into (a hot unique index, and a second round trip per new name) and a per-process
 * cache that must forget ids whose inserting transaction rolled back. Text keys make each
 * upsert self-contained; PostgreSQL's B-tree deduplication (13+) keeps the repeated names in
 * the indexes small. Token counts are bigint, like SQLite's int64. */
#define SERIES_DEF                                                                                 \
    "bucket bigint NOT NULL, model text NOT NULL, ptype smallint NOT NULL, "                       \
    "profile text NOT NULL, src text NOT NULL, inf text NOT NULL, op text NOT NULL, "              \
    "n bigint NOT NULL, i_s bigint NOT NULL, i_mn bigint NOT NULL, i_mx bigint NOT NULL, "         \
    "o_s bigint NOT NULL, o_mn bigint NOT NULL, o_mx bigint NOT NULL, "                            \
    "r_s bigint NOT NULL, r_mn bigint NOT NULL, r_mx bigint NOT NULL, "                            \
    "w_s bigint NOT NULL, w_mn bigint NOT NULL, w_mx bigint NOT NULL"
#define SERIES_KEY "bucket, model, ptype, profile, src, inf, op"

static const char *const migrations[] = {
    /* Version 1: the logical tables of SQLite's schema at its version 5 (schema.c): processed
     * objects, minute/hour/day/all-time aggregates, the outbox and its claims, failures,
     * counters and the CloudWatch series. */
    "CREATE TABLE meta (key text PRIMARY KEY, value bigint);"
    "CREATE TABLE processed (bucket text NOT NULL, key text NOT NULL, version text NOT NULL, "
    "  size bigint NOT NULL, records bigint NOT NULL, invalid bigint NOT NULL, "
    "  processed_at bigint NOT NULL, message_id text, PRIMARY KEY (bucket, key, version));"
    "CREATE INDEX processed_at ON processed (processed_at);"
    "CREATE TABLE agg (" SERIES_DEF ", PRIMARY KEY (" SERIES_KEY "));"
    "CREATE INDEX agg_model ON agg (model, bucket);"
    "CREATE TABLE agg_hour (" SERIES_DEF ", PRIMARY KEY (" SERIES_KEY "));"
    "CREATE TABLE agg_day (" SERIES_DEF ", PRIMARY KEY (" SERIES_KEY "));"
    /* Sums only, as in SQLite: pruning can subtract a sum but not take back a min/max. */
    "CREATE TABLE agg_all (model text NOT NULL, ptype smallint NOT NULL, profile text NOT NULL, "
    "  src text NOT NULL, inf text NOT NULL, op text NOT NULL, n bigint NOT NULL, "
    "  i_s bigint NOT NULL, o_s bigint NOT NULL, r_s bigint NOT NULL, w_s bigint NOT NULL, "
    "  PRIMARY KEY (model, ptype, profile, src, inf, op));"
    "CREATE TABLE outbox (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
    "  state smallint NOT NULL DEFAULT 0, created_at bigint NOT NULL, " SERIES_DEF ", "
    "  claim text);"
    "CREATE INDEX outbox_pending ON outbox (id) WHERE state = 0;"
    "CREATE INDEX outbox_done ON outbox (created_at) WHERE state <> 0;"
    "CREATE INDEX outbox_claimed ON outbox (claim, id) WHERE state = 4;"
    "CREATE TABLE outbox_claim (id text PRIMARY KEY, nreq bigint NOT NULL, sent bigint NOT NULL, "
    "  attempt bigint NOT NULL, rejected bigint NOT NULL, created_at bigint NOT NULL);"
    "CREATE TABLE failure (bucket text NOT NULL, key text NOT NULL, version text NOT NULL, "
    "  attempts bigint NOT NULL, code text NOT NULL, message text NOT NULL, "
    "  first_at bigint NOT NULL, last_at bigint NOT NULL, quarantined smallint NOT NULL, "
    "  PRIMARY KEY (bucket, key, version));"
    "CREATE INDEX failure_last ON failure (last_at);"
    "CREATE INDEX failure_quarantined ON failure (last_at) WHERE quarantined = 1;"
    "CREATE TABLE counter (name text PRIMARY KEY, value bigint NOT NULL);"
    "CREATE TABLE cw_series (dimset text NOT NULL, v1 text NOT NULL, v2 text NOT NULL, "
    "  v3 text NOT NULL, v4 text NOT NULL, v5 text NOT NULL, pub_at bigint NOT NULL, "
    "  held_at bigint NOT NULL, held_n bigint NOT NULL, month bigint NOT NULL, "
    "  hours bigint NOT NULL, last_hour bigint NOT NULL, "
    "  PRIMARY KEY (dimset, v1, v2, v3, v4, v5));"
    "CREATE INDEX cw_series_pub ON cw_series (pub_at);",

    /* Version 2: the publisher lease. Several instances share the outbox and exactly one may
     * send it: the lease's holder, until expires_at (epoch ms), renewed each flush interval;
     * a row rather than an advisory lock so that it survives a connection blip and /status
     * can show who holds it. */
    "CREATE TABLE publisher_lease (name text PRIMARY KEY, holder text NOT NULL, "
    "  expires_at bigint NOT NULL);",
};
#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))
/* pg_advisory_lock key of the migrations ("bmas" as an integer). */
#define MIGRATE_LOCK "1651335539"

int bm__pg_schema_version(void)
{
    return N_MIGRATIONS;
}

/* The version in meta; 0 when meta does not exist yet (to_regclass: no error to roll back). */
static bm_err read_version(struct bm__pg_tx *t, int *out, struct bm_errmsg *em)
{
    PGresult *r = NULL;
    bm_err e = bm__pg_exec(t,
                           "SELECT CASE WHEN to_regclass('meta') IS NULL THEN NULL ELSE "
                           "(SELECT 1) END",
                           NULL, &r, NULL, em);
    if (e != BM_OK)
        return e;
    bool has_meta = !PQgetisnull(r, 0, 0);
    PQclear(r);
    *out = 0;
    if (!has_meta)
        return BM_OK;
    if ((e = bm__pg_exec(t, "SELECT value FROM meta WHERE key = 'schema_version'", NULL, &r, NULL,
                         em)) != BM_OK)
        return e;
    if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
        *out = (int)strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return BM_OK;
}

static bm_err version_fn(struct bm__pg_tx *t, void *ctx, struct bm_errmsg *em)
{
    return read_version(t, ctx, em);
}

bm_err bm__pg_version(struct bm_pg *pg, int *out, struct bm_errmsg *em)
{
    int v = 0;
    bm_err e = bm__pg_tx_run(pg, NULL, version_fn, &v, em);
    if (e == BM_OK)
        *out = v;
    return e;
}

struct step {
    int v; /* the step from version v to v + 1 */
    bool applied;
};

/* One step, unless another instance applied it meanwhile (the version re-read inside). */
static bm_err step_fn(struct bm__pg_tx *t, void *ctx, struct bm_errmsg *em)
{
    struct step *s = ctx;
    struct bm__pg_params p = {0};
    int now = 0;
    s->applied = false;
    bm_err e = read_version(t, &now, em);
    if (e != BM_OK || now > s->v)
        return e;
    /* A simple query: the only way to send several statements at once. */
    PGresult *r = PQexec(t->conn, migrations[s->v]);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        char what[48];
        snprintf(what, sizeof what, "schema migration to version %d", s->v + 1);
        e = bm__pg_err(t->pg, t->conn, r, what, em);
        PQclear(r);
        return e;
    }
    PQclear(r);
    bm__pg_p_int(&p, s->v + 1);
    e = bm__pg_exec(t,
                    "INSERT INTO meta(key, value) VALUES('schema_version', $1::bigint) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    &p, NULL, NULL, em);
    s->applied = e == BM_OK;
    return e;
}

struct migration {
    int to;
};

/* Under a session-level advisory lock, so instances starting together migrate one at a time.
 * Not a transaction-level lock taken inside each step: a transaction that waited for it
 * still resolves table names from the catalog caches it had when it began (the lock is no
 * relation, so waiting for it processes no invalidations) and would not see the tables the
 * previous holder created; each step here begins after the lock is held. */
static bm_err migrate_fn(struct bm__pg_tx *t, void *ctx, struct bm_errmsg *em)
{
    struct migration *m = ctx;
    int v = 0;
    bm_err e = bm__pg_exec(t, "SELECT pg_advisory_lock(" MIGRATE_LOCK ")", NULL, NULL, NULL, em);
    if (e == BM_OK)
        e = bm__pg_tx_in(t, NULL, version_fn, &v, em);
    if (e != BM_OK)
        return e;
    if (v > N_MIGRATIONS)
        return bm_errmsg_set(em, BM_E_STORAGE,
                             "database %s has schema version %d, newer than this bmas knows "
                             "(%d): run a newer bmas or use another database",
                             bm__pg_desc(t->pg), v, N_MIGRATIONS);
    for (; v < m->to && v < N_MIGRATIONS; v++) {
        struct step s = {.v = v};
        if ((e = bm__pg_tx_in(t, NULL, step_fn, &s, em)) != BM_OK)
            return e;
        if (s.applied)
            BM_LOG(BM_INFO, "storage", v == 0 ? "schema_created" : "schema_migrated",
                   v == 0 ? "created database schema" : "migrated database schema",
                   BM_KV_STR("db", bm__pg_desc(t->pg)), BM_KV_INT("version", v + 1));
    }
    return BM_OK;
}

bm_err bm__pg_migrate(struct bm_pg *pg, int to, struct bm_errmsg *em)
{
    struct migration m = {to};
    return bm__pg_session(pg, migrate_fn, &m, em);
}

/* ---- Exactly-once commit ---------------------------------------------------------------- */

#define STAT_MERGE(p)                                                                              \
    p "_s = a." p "_s + excluded." p "_s, " p "_mn = least(a." p "_mn, excluded." p "_mn), " p     \
      "_mx = greatest(a." p "_mx, excluded." p "_mx)"
#define SERIES_COLS                                                                                \
    SERIES_KEY ", n, i_s, i_mn, i_mx, o_s, o_mn, o_mx, r_s, r_mn, r_mx, w_s, w_mn, w_mx"
#define SERIES_PARAMS                                                                              \
    "$1::bigint, $2, $3::smallint, $4, $5, $6, $7, $8::bigint, $9::bigint, $10::bigint, "          \
    "$11::bigint, $12::bigint, $13::bigint, $14::bigint, $15::bigint, $16::bigint, "               \
    "$17::bigint, $18::bigint, $19::bigint, $20::bigint"
#define AGG_UPSERT(table)                                                                          \
    "INSERT INTO " table " AS a (" SERIES_COLS ") VALUES (" SERIES_PARAMS ") "                     \
    "ON CONFLICT (" SERIES_KEY ") DO UPDATE SET n = a.n + excluded.n, " STAT_MERGE(                \
        "i") ", " STAT_MERGE("o") ", " STAT_MERGE("r") ", " STAT_MERGE("w")

static const char *const agg_upsert[3] = {AGG_UPSERT("agg"), AGG_UPSERT("agg_hour"),
                                          AGG_UPSERT("agg_day")};
static const char agg_all_upsert[] =
    "INSERT INTO agg_all AS a (model, ptype, profile, src, inf, op, n, i_s, o_s, r_s, w_s) "
    "VALUES ($1, $2::smallint, $3, $4, $5, $6, $7::bigint, $8::bigint, $9::bigint, $10::bigint, "
    "$11::bigint) ON CONFLICT (model, ptype, profile, src, inf, op) DO UPDATE SET "
    "n = a.n + excluded.n, i_s = a.i_s + excluded.i_s, o_s = a.o_s + excluded.o_s, "
    "r_s = a.r_s + excluded.r_s, w_s = a.w_s + excluded.w_s";
static const char outbox_put[] =
    "INSERT INTO outbox (created_at, " SERIES_COLS ") VALUES ($21::bigint, " SERIES_PARAMS ")";

static int64_t floor_to(int64_t t, int64_t width)
{
    return t - ((t % width) + width) % width;
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
}

static bm_err counter_add(struct bm__pg_tx *t, enum bm_db_counter c, int64_t v,
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
    const struct bm_str *sa[5] = {&a->key.model_id, &a->key.profile_id, &a->key.source_region,
                                  &a->key.inference_region, &a->key.operation};
    const struct bm_str *sb[5] = {&b->key.model_id, &b->key.profile_id, &b->key.source_region,
                                  &b->key.inference_region, &b->key.operation};
    for (int i = 0; i < 5; i++) {
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
    bool inserted;
};

static void p_object(struct bm__pg_params *p, const struct bm_db_object *o)
{
    bm__pg_p_str(p, o->bucket);
    bm__pg_p_str(p, o->key);
    bm__pg_p_str(p, o->version);
}

/* The effect of a newly processed object: what objects.c's apply does, in lock order. */
static bm_err apply(struct bm__pg_tx *t, const struct commit *c, struct bm_errmsg *em)
{
    struct bm__pg_params p = {0};
    size_t rows = 0;
    bm_err e = BM_OK;
    size_t n = c->delta != NULL ? bm_agg_count(c->delta) : 0;
    const struct bm_series **v = NULL;
    if (n > 0 && (v = bm_malloc(n * sizeof *v)) == NULL)
        return bm_errmsg_set(em, BM_E_NOMEM, "commit: out of memory");
    /* A series with no invocation has no min/max to combine and nothing to publish. */
    for (size_t i = 0; i < n; i++)
        if (bm_agg_at(c->delta, i)->c.invocations > 0)
            v[rows++] = bm_agg_at(c->delta, i);
    e = apply_series(t, v, rows, c->now, em);
    bm_free(v);
    p_object(&p, c->obj);
    if (e == BM_OK)
        e = bm__pg_exec(t, "DELETE FROM failure WHERE bucket = $1 AND key = $2 AND version = $3",
                        &p, NULL, NULL, em);
    if (e == BM_OK)
        e = counter_add(t, BM_DB_C_OBJECTS_PROCESSED, 1, em);
    if (e == BM_OK && rows > 0)
        e = counter_add(t, BM_DB_C_PUBLISH_PENDING, (int64_t)rows, em);
    const struct bm_ingest_stats *st = c->stats;
    if (st != NULL) {
        if (e == BM_OK && st->records > 0)
            e = counter_add(t, BM_DB_C_RECORDS_PROCESSED, (int64_t)st->records, em);
        if (e == BM_OK && st->invalid > 0)
            e = counter_add(t, BM_DB_C_RECORDS_INVALID, (int64_t)st->invalid, em);
        for (int i = 0; i < BM_ERR_WIRE_N && e == BM_OK; i++)
            if (st->errors[i] > 0)
                e = counter_add(t, (enum bm_db_counter)(BM_DB_C_ERRORS + i), (int64_t)st->errors[i],
                                em);
    }
    return e;
}

static bm_err commit_fn(struct bm__pg_tx *t, void *ctx, struct bm_errmsg *em)
{
    struct commit *c = ctx;
    struct bm__pg_params p = {0};
    int64_t rows = 0;
    c->inserted = false;
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
    return c->inserted ? apply(t, c, em) : counter_add(t, BM_DB_C_OBJECTS_DUPLICATES, 1, em);
}

bm_err bm__pg_commit_object(struct bm_pg *pg, const struct bm_db_object *obj,
                            const char *message_id, uint64_t size, const struct bm_agg *delta,
                            const struct bm_ingest_stats *stats, int64_t now,
                            enum bm_db_commit_result *result, struct bm_errmsg *em)
{
    struct commit c = {obj, message_id, size, delta, stats, now, false};
    /* READ COMMITTED suffices: every write is an upsert that re-reads the row it conflicts
     * with, so no read feeds a decision that another transaction could invalidate. Deadlocks
     * between commits that touch shared rows in different orders are retried. */
    bm_err e = bm__pg_tx_run(pg, "READ COMMITTED", commit_fn, &c, em);
    if (e == BM_OK)
        *result = c.inserted ? BM_DB_COMMITTED : BM_DB_DUPLICATE;
    return e;
}

struct one_value {
    const char *sql;
    struct bm__pg_params p;
    bool found;
    int64_t v;
};

static bm_err one_value_fn(struct bm__pg_tx *t, void *ctx, struct bm_errmsg *em)
{
    struct one_value *q = ctx;
    PGresult *r = NULL;
    bm_err e = bm__pg_exec(t, q->sql, &q->p, &r, NULL, em);
    if (e != BM_OK)
        return e;
    q->found = PQntuples(r) == 1 && !PQgetisnull(r, 0, 0);
    q->v = q->found ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    return BM_OK;
}

bm_err bm__pg_counter(struct bm_pg *pg, enum bm_db_counter c, int64_t *out, struct bm_errmsg *em)
{
    struct one_value q = {.sql = "SELECT value FROM counter WHERE name = $1"};
    const char *name = bm_db_counter_name(c);
    bm__pg_p_str(&q.p, (struct bm_str){name, strlen(name)});
    bm_err e = bm__pg_tx_run(pg, NULL, one_value_fn, &q, em);
    if (e == BM_OK)
        *out = q.v;
    return e;
}

/* ---- Publisher lease ---------------------------------------------------------------------- */

/* $3: the caller's now (ms), or NULL for the server's clock. */
#define LEASE_NOW "coalesce($3::bigint, (extract(epoch FROM clock_timestamp()) * 1000)::bigint)"

static void p_lease(struct bm__pg_params *p, const char *name, const char *holder, int64_t now_ms)
{
    bm__pg_p_str(p, (struct bm_str){name, strlen(name)});
    bm__pg_p_str(p, (struct bm_str){holder, strlen(holder)});
    if (now_ms == BM__PG_SERVER_CLOCK)
        bm__pg_p_null(p);
    else
        bm__pg_p_int(p, now_ms);
}

bm_err bm__pg_lease_acquire(struct bm_pg *pg, const char *name, const char *holder, int64_t now_ms,
                            int64_t ttl_ms, bool *held, struct bm_errmsg *em)
{
    /* One statement: a competing stand-by waits on the row lock and then re-checks the WHERE
     * against the winner's new row, so two instances never both see RETURNING a row. */
    struct one_value q = {
        .sql =
            "INSERT INTO publisher_lease AS l (name, holder, expires_at) VALUES ($1, $2, " LEASE_NOW
            " + $4::bigint) ON CONFLICT (name) DO UPDATE SET holder = "
            "excluded.holder, expires_at = excluded.expires_at WHERE l.holder = "
            "excluded.holder OR l.expires_at <= " LEASE_NOW " RETURNING 1"};
    p_lease(&q.p, name, holder, now_ms);
    bm__pg_p_int(&q.p, ttl_ms);
    bm_err e = bm__pg_tx_run(pg, NULL, one_value_fn, &q, em);
    if (e == BM_OK)
        *held = q.found;
    return e;
}

bm_err bm__pg_lease_release(struct bm_pg *pg, const char *name, const char *holder, bool *released,
                            struct bm_errmsg *em)
{
    struct one_value q = {.sql = "DELETE FROM publisher_lease WHERE name = $1 AND holder = $2 "
                                 "RETURNING 1"};
    bm__pg_p_str(&q.p, (struct bm_str){name, strlen(name)});
    bm__pg_p_str(&q.p, (struct bm_str){holder, strlen(holder)});
    bm_err e = bm__pg_tx_run(pg, NULL, one_value_fn, &q, em);
    if (e == BM_OK && released != NULL)
        *released = q.found;
    return e;
}

struct holder_q {
    struct bm__pg_params p;
    char holder[256];
    bool valid;
};

static bm_err holder_fn(struct bm__pg_tx *t, void *ctx, struct bm_errmsg *em)
{
    struct holder_q *q = ctx;
    PGresult *r = NULL;
    bm_err e = bm__pg_exec(t,
                           "SELECT holder, expires_at > " LEASE_NOW " FROM publisher_lease "
                           "WHERE name = $1 AND $2::text IS NOT NULL",
                           &q->p, &r, NULL, em);
    if (e != BM_OK)
        return e;
    bool found = PQntuples(r) == 1;
    snprintf(q->holder, sizeof q->holder, "%s", found ? PQgetvalue(r, 0, 0) : "");
    q->valid = found && strcmp(PQgetvalue(r, 0, 1), "t") == 0;
    PQclear(r);
    return BM_OK;
}

bm_err bm__pg_lease_holder(struct bm_pg *pg, const char *name, int64_t now_ms, char *holder,
                           size_t cap, bool *valid, struct bm_errmsg *em)
{
    struct holder_q q = {0};
    /* $2 is unused but keeps LEASE_NOW's $3 where the other lease statements have it. */
    p_lease(&q.p, name, "", now_ms);
    bm_err e = bm__pg_tx_run(pg, NULL, holder_fn, &q, em);
    if (e == BM_OK) {
        snprintf(holder, cap, "%s", q.holder);
        *valid = q.valid;
    }
    return e;
}
