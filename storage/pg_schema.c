/* pg_schema.c: the PostgreSQL store's schema as forward migrations (versioned in meta), the
 * stored counters and the publisher lease that lets one instance of several publish. Steps
 * are only ever appended, as in schema.c. */
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

/* Version 3's columns for table t, and for an aggregate table its key extended by them. */
#define PG_V3_COLS(t)                                                                              \
    "ALTER TABLE " t " ADD COLUMN c_u bigint NOT NULL DEFAULT 0, "                                 \
    "  ADD COLUMN c_p bigint NOT NULL DEFAULT 0, ADD COLUMN np bigint NOT NULL DEFAULT 0, "        \
    "  ADD COLUMN rv bigint NOT NULL DEFAULT 0, ADD COLUMN a1 text NOT NULL DEFAULT '', "          \
    "  ADD COLUMN a2 text NOT NULL DEFAULT '', ADD COLUMN a3 text NOT NULL DEFAULT '';"
#define PG_V3_TABLE(t, key)                                                                        \
    PG_V3_COLS(t)                                                                                  \
    "ALTER TABLE " t " DROP CONSTRAINT " t "_pkey, ADD PRIMARY KEY (" key ", a1, a2, a3);"

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

    /* Version 3: SQLite's versions 6 and 7. Cost (BMAS_PRICES) as integer money summed
     * exactly: c_u whole micro-dollars, c_p the pico-dollars below a micro-dollar of each
     * delta (their sum carries over when read), np the invocations no price covered, rv those
     * served outside BMAS_ALLOWED_INFERENCE_REGIONS. Attribution (BMAS_ATTRIBUTION_KEYS): a1..a3,
     * the keys' values in their order ("" for none), join each aggregate table's key; existing
     * rows get 0 and "". attr_value holds the distinct values kept per key position
     * (BMAS_ATTRIBUTION_MAX_VALUES; a new value past it is stored as "other"). A constant
     * default adds a column without rewriting the table (PostgreSQL 11+); each primary key is
     * rebuilt once. */
    /* clang-format off */
    PG_V3_TABLE("agg", SERIES_KEY)
    PG_V3_TABLE("agg_hour", SERIES_KEY)
    PG_V3_TABLE("agg_day", SERIES_KEY)
    PG_V3_TABLE("agg_all", "model, ptype, profile, src, inf, op")
    PG_V3_COLS("outbox")
    "CREATE TABLE attr_value (k smallint NOT NULL, v text NOT NULL, PRIMARY KEY (k, v));",
    /* clang-format on */

    /* Version 4: counters added in up to 64 rows each (counter_shard; shard: the writing
     * session's server process id mod 64), read as counter_total, the sums of both tables.
     * Every commit adds to the same few counters and holds their rows until its COMMIT is on
     * disk; with one row each, concurrent commits queued behind each other's flush instead of
     * sharing one. counter stays as it was, so an instance of an older bmas still running in
     * a rolling deploy keeps adding to it, and nothing of either is lost. */
    "CREATE TABLE counter_shard (name text NOT NULL, shard smallint NOT NULL, "
    "  value bigint NOT NULL, PRIMARY KEY (name, shard));"
    "CREATE VIEW counter_total AS SELECT name, sum(value)::bigint AS value FROM "
    "  (SELECT name, value FROM counter UNION ALL SELECT name, value FROM counter_shard) c "
    "  GROUP BY name;",
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

bm_err bm__pg_counter(struct bm_pg *pg, enum bm_db_counter c, int64_t *out, struct bm_errmsg *em)
{
    struct bm__pg_one q = {.sql = "SELECT value FROM counter_total WHERE name = $1"};
    const char *name = bm_db_counter_name(c);
    bm__pg_p_str(&q.p, bm_str_of(name));
    bm_err e = bm__pg_read(pg, bm__pg_one_fn, &q, em);
    if (e == BM_OK)
        *out = q.v;
    return e;
}

/* ---- Publisher lease ---------------------------------------------------------------------- */

/* $3: the caller's now (ms), or NULL for the server's clock. */
#define LEASE_NOW "coalesce($3::bigint, (extract(epoch FROM clock_timestamp()) * 1000)::bigint)"

static void p_lease(struct bm__pg_params *p, const char *name, const char *holder, int64_t now_ms)
{
    bm__pg_p_str(p, bm_str_of(name));
    bm__pg_p_str(p, bm_str_of(holder));
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
    struct bm__pg_one q = {
        .sql =
            "INSERT INTO publisher_lease AS l (name, holder, expires_at) VALUES ($1, $2, " LEASE_NOW
            " + $4::bigint) ON CONFLICT (name) DO UPDATE SET holder = "
            "excluded.holder, expires_at = excluded.expires_at WHERE l.holder = "
            "excluded.holder OR l.expires_at <= " LEASE_NOW " RETURNING 1"};
    p_lease(&q.p, name, holder, now_ms);
    bm__pg_p_int(&q.p, ttl_ms);
    bm_err e = bm__pg_tx_run(pg, NULL, bm__pg_one_fn, &q, em);
    if (e == BM_OK)
        *held = q.found;
    return e;
}

bm_err bm__pg_lease_release(struct bm_pg *pg, const char *name, const char *holder, bool *released,
                            struct bm_errmsg *em)
{
    struct bm__pg_one q = {.sql = "DELETE FROM publisher_lease WHERE name = $1 AND holder = $2 "
                                  "RETURNING 1"};
    bm__pg_p_str(&q.p, bm_str_of(name));
    bm__pg_p_str(&q.p, bm_str_of(holder));
    bm_err e = bm__pg_tx_run(pg, NULL, bm__pg_one_fn, &q, em);
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
