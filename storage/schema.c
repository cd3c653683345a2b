/* schema.c: the schema as a list of forward migrations, versioned by PRAGMA user_version. Each
 * step runs in its own transaction; a database newer than this code is refused. Steps are only
 * ever appended: a released step never changes, since databases in the field already ran it. */
#include "storage/storage_int.h"

#include <stdio.h>

/* The columns of one aggregate table: the series key as integers (strings are interned in
 * `str`: model, profile and region names repeat in every row and every index entry, and
 * integer keys make the rows about a third as large and GROUP BY compare integers), then
 * invocations and per token count the sum, minimum and maximum per invocation. WITHOUT ROWID
 * with the bucket first keeps each time window one contiguous range of the table. */
#define SERIES_DEF                                                                                 \
    "bucket INTEGER NOT NULL, model INTEGER NOT NULL, ptype INTEGER NOT NULL, "                    \
    "profile INTEGER NOT NULL, src INTEGER NOT NULL, inf INTEGER NOT NULL, op INTEGER NOT NULL, "  \
    "n INTEGER NOT NULL, i_s INTEGER NOT NULL, i_mn INTEGER NOT NULL, i_mx INTEGER NOT NULL, "     \
    "o_s INTEGER NOT NULL, o_mn INTEGER NOT NULL, o_mx INTEGER NOT NULL, "                         \
    "r_s INTEGER NOT NULL, r_mn INTEGER NOT NULL, r_mx INTEGER NOT NULL, "                         \
    "w_s INTEGER NOT NULL, w_mn INTEGER NOT NULL, w_mx INTEGER NOT NULL"
#define SERIES_PK "PRIMARY KEY (bucket, model, ptype, profile, src, inf, op)"
/* The all-time rollup's columns: the series key without a bucket, invocations and sums. */
#define ALL_DEF                                                                                    \
    "model INTEGER NOT NULL, ptype INTEGER NOT NULL, profile INTEGER NOT NULL, "                   \
    "src INTEGER NOT NULL, inf INTEGER NOT NULL, op INTEGER NOT NULL, n INTEGER NOT NULL, "        \
    "i_s INTEGER NOT NULL, o_s INTEGER NOT NULL, r_s INTEGER NOT NULL, w_s INTEGER NOT NULL"
#define ROLLUP_FROM(width, src)                                                                    \
    "SELECT bucket - ((bucket % " width ") + " width ") % " width                                  \
    ", model, ptype, profile, src, inf, op, sum(n), sum(i_s), min(i_mn), max(i_mx), sum(o_s), "    \
    "min(o_mn), max(o_mx), sum(r_s), min(r_mn), max(r_mx), sum(w_s), min(w_mn), max(w_mx) "        \
    "FROM " src " GROUP BY 1, 2, 3, 4, 5, 6, 7"

/* Version 6's columns, as the ALTERs added them, for version 7's rebuilt tables. */
#define COST_DEF                                                                                   \
    "c_u INTEGER NOT NULL DEFAULT 0, c_p INTEGER NOT NULL DEFAULT 0, "                             \
    "np INTEGER NOT NULL DEFAULT 0, rv INTEGER NOT NULL DEFAULT 0"
/* Rebuilds table t with columns cols plus a1..a3, its primary key pk plus a1..a3. */
#define REBUILD(t, cols, pk)                                                                       \
    "CREATE TABLE " t "_v6 (" cols ", a1 INTEGER NOT NULL DEFAULT 0, "                             \
    "a2 INTEGER NOT NULL DEFAULT 0, a3 INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (" pk               \
    ", a1, a2, a3)) WITHOUT ROWID;"                                                                \
    "INSERT INTO " t "_v6 SELECT *, 0, 0, 0 FROM " t ";"                                           \
    "DROP TABLE " t ";"                                                                            \
    "ALTER TABLE " t "_v6 RENAME TO " t ";"

static const char *const migrations[] = {
    /* Version 1: processed objects, aggregates per bucket, the outbox, failures, counters. */
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER) WITHOUT ROWID;"
    "CREATE TABLE str (id INTEGER PRIMARY KEY, s TEXT NOT NULL UNIQUE);"
    "CREATE TABLE processed (bucket TEXT NOT NULL, key TEXT NOT NULL, version TEXT NOT NULL, "
    "  size INTEGER NOT NULL, records INTEGER NOT NULL, invalid INTEGER NOT NULL, "
    "  processed_at INTEGER NOT NULL, message_id TEXT, "
    "  PRIMARY KEY (bucket, key, version)) WITHOUT ROWID;"
    "CREATE INDEX processed_at ON processed (processed_at);"
    "CREATE TABLE agg (" SERIES_DEF ", " SERIES_PK ") WITHOUT ROWID;"
    /* A model over a long window (a week by minute) reads only that model's rows, and the
     * counters are in the index so no row is looked up (8,000 lookups took 40 ms). */
    "CREATE INDEX agg_model ON agg (model, bucket, n, i_s, i_mn, i_mx, o_s, o_mn, o_mx, r_s, "
    "  r_mn, r_mx, w_s, w_mn, w_mx);"
    "CREATE TABLE outbox (id INTEGER PRIMARY KEY, state INTEGER NOT NULL DEFAULT 0, "
    "  created_at INTEGER NOT NULL, " SERIES_DEF ");"
    "CREATE INDEX outbox_pending ON outbox (id) WHERE state = 0;"
    "CREATE INDEX outbox_done ON outbox (created_at) WHERE state <> 0;"
    "CREATE TABLE failure (bucket TEXT NOT NULL, key TEXT NOT NULL, version TEXT NOT NULL, "
    "  attempts INTEGER NOT NULL, code TEXT NOT NULL, message TEXT NOT NULL, "
    "  first_at INTEGER NOT NULL, last_at INTEGER NOT NULL, quarantined INTEGER NOT NULL, "
    "  PRIMARY KEY (bucket, key, version)) WITHOUT ROWID;"
    "CREATE INDEX failure_last ON failure (last_at);"
    "CREATE INDEX failure_quarantined ON failure (last_at) WHERE quarantined = 1;"
    "CREATE TABLE counter (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;",

    /* Version 2: hourly and daily rollups, maintained by the commit, so that queries that are
     * not grouped by minute read a few thousand rows even over all time (a million minute rows
     * take about 100 ms to sum). Filled from the existing minute rows. */
    "CREATE TABLE agg_hour (" SERIES_DEF ", " SERIES_PK ") WITHOUT ROWID;"
    "CREATE TABLE agg_day (" SERIES_DEF ", " SERIES_PK ") WITHOUT ROWID;"
    "INSERT INTO agg_hour " ROLLUP_FROM("3600", "agg") ";"
                                                       "INSERT INTO agg_day " ROLLUP_FROM(
                                                           "86400", "agg_hour") ";",

    /* Version 3: the all-time rollup, one row per series, so that a query over all the data
     * reads a row per series instead of one per series and day (30 days of 300 series took
     * 2 ms to sum and 6 ms to group). It holds exactly the sum of the stored minute rows: the
     * commit adds to it, and bm_db_prune subtracts every minute row it deletes, in the same
     * transaction. Sums only: a minimum or maximum cannot be taken back out when pruning
     * removes the invocation that set it, and GET /aggregates shows sums; queries that want
     * min/max read the bucketed tables. Filled from the minute rows, the source of truth. */
    "CREATE TABLE agg_all (" ALL_DEF ", PRIMARY KEY (model, ptype, profile, src, inf, op)) "
    "  WITHOUT ROWID;"
    "INSERT INTO agg_all SELECT model, ptype, profile, src, inf, op, sum(n), sum(i_s), sum(o_s), "
    "  sum(r_s), sum(w_s) FROM agg GROUP BY 1, 2, 3, 4, 5, 6;",

    /* Version 4: claims. Before a PutMetricData call its rows are claimed (state 4, the claim's
     * id) in a committed transaction, so a database that cannot be written sends nothing, and
     * the claim row counts the calls of the claim that CloudWatch answered (sent) and the sends
     * begun of the next one whose outcome was not recorded yet (attempt): after a crash only
     * that call can go twice. */
    "ALTER TABLE outbox ADD COLUMN claim TEXT;"
    "CREATE INDEX outbox_claimed ON outbox (claim, id) WHERE state = 4;"
    "CREATE TABLE outbox_claim (id TEXT PRIMARY KEY, nreq INTEGER NOT NULL, "
    "  sent INTEGER NOT NULL, attempt INTEGER NOT NULL, rejected INTEGER NOT NULL, "
    "  created_at INTEGER NOT NULL) WITHOUT ROWID;",

    /* Version 5: the CloudWatch series published (BMAS_MAX_SERIES and the budget on /status):
     * one row per dimension set (its names joined by ",", "()" for none) and values, with the
     * last time it was published (pub_at) or held back by the cap (held_at, held_n times), and
     * the hours of the month (the month's first second) in which it was published, since
     * CloudWatch bills a custom metric by the hour it is sent in. */
    "CREATE TABLE cw_series (dimset TEXT NOT NULL, v1 TEXT NOT NULL, v2 TEXT NOT NULL, "
    "  v3 TEXT NOT NULL, v4 TEXT NOT NULL, v5 TEXT NOT NULL, pub_at INTEGER NOT NULL, "
    "  held_at INTEGER NOT NULL, held_n INTEGER NOT NULL, month INTEGER NOT NULL, "
    "  hours INTEGER NOT NULL, last_hour INTEGER NOT NULL, "
    "  PRIMARY KEY (dimset, v1, v2, v3, v4, v5)) WITHOUT ROWID;"
    "CREATE INDEX cw_series_pub ON cw_series (pub_at);",

    /* Version 6: cost (BMAS_PRICES). Integer money, summed exactly: c_u whole micro-dollars,
     * c_p the pico-dollars below a micro-dollar of each delta (their sum carries over when
     * read), np the invocations no price covered. Rows written before prices existed count 0
     * dollars and 0 unpriced: nothing is known of them. The model index gains the new columns
     * so that it still answers a model's query alone. */
    "ALTER TABLE agg ADD COLUMN c_u INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agg ADD COLUMN c_p INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agg ADD COLUMN np INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agg_hour ADD COLUMN c_u INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agg_hour ADD COLUMN c_p INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agg_hour ADD COLUMN np INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agg_day ADD COLUMN c_u INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agg_day ADD COLUMN c_p INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agg_day ADD COLUMN np INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agg_all ADD COLUMN c_u INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agg_all ADD COLUMN c_p INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agg_all ADD COLUMN np INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE outbox ADD COLUMN c_u INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE outbox ADD COLUMN c_p INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE outbox ADD COLUMN np INTEGER NOT NULL DEFAULT 0;"
    /* And rv, the invocations served outside BMAS_ALLOWED_INFERENCE_REGIONS, for the
     * ResidencyViolations metric. */
    "ALTER TABLE agg ADD COLUMN rv INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agg_hour ADD COLUMN rv INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agg_day ADD COLUMN rv INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agg_all ADD COLUMN rv INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE outbox ADD COLUMN rv INTEGER NOT NULL DEFAULT 0;"
    "DROP INDEX agg_model;"
    "CREATE INDEX agg_model ON agg (model, bucket, n, i_s, i_mn, i_mx, o_s, o_mn, o_mx, r_s, "
    "  r_mn, r_mx, w_s, w_mn, w_mx, c_u, c_p, np, rv);",

    /* Version 7: attribution (BMAS_ATTRIBUTION_KEYS). Three more parts of the series key,
     * a1..a3, the interned values of the keys in their order (0: no value); a key cannot be
     * added to a WITHOUT ROWID table's primary key, so each aggregate table is rebuilt, its rows
     * getting 0. attr_value holds the distinct values kept per key position
     * (BMAS_ATTRIBUTION_MAX_VALUES; a new value past it is stored as "other"). */
    /* clang-format off */
    REBUILD("agg", SERIES_DEF ", " COST_DEF, "bucket, model, ptype, profile, src, inf, op")
    "CREATE INDEX agg_model ON agg (model, bucket, n, i_s, i_mn, i_mx, o_s, o_mn, o_mx, r_s, "
    "  r_mn, r_mx, w_s, w_mn, w_mx, c_u, c_p, np, rv, a1, a2, a3);"
    REBUILD("agg_hour", SERIES_DEF ", " COST_DEF, "bucket, model, ptype, profile, src, inf, op")
    REBUILD("agg_day", SERIES_DEF ", " COST_DEF, "bucket, model, ptype, profile, src, inf, op")
    REBUILD("agg_all", ALL_DEF ", " COST_DEF, "model, ptype, profile, src, inf, op")
    "ALTER TABLE outbox ADD COLUMN a1 INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE outbox ADD COLUMN a2 INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE outbox ADD COLUMN a3 INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE attr_value (k INTEGER NOT NULL, v INTEGER NOT NULL, PRIMARY KEY (k, v)) "
    "  WITHOUT ROWID;",
    /* clang-format on */
};
#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

int bm_db_schema_version(void)
{
    return N_MIGRATIONS;
}

static bm_err user_version(struct bm__conn *c, int *out, struct bm_errmsg *em)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->h, "PRAGMA user_version", -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
        *out = sqlite3_column_int(st, 0);
    bm_err e = rc == SQLITE_ROW ? BM_OK : bm__sql_err(c, rc, "read schema version", em);
    sqlite3_finalize(st);
    return e;
}

/* Applies step v (to version v + 1) in one write transaction, unless another process did. */
static bm_err migrate_step(struct bm_db *db, int v, struct bm_errmsg *em)
{
    struct bm__conn *c = NULL;
    char sql[64];
    int now = 0;
    bm_err e = bm__tx_begin(db, &c, em);
    if (e != BM_OK)
        return e;
    if ((e = user_version(c, &now, em)) != BM_OK || now > v)
        goto done;
    int rc = sqlite3_exec(c->h, migrations[v], NULL, NULL, NULL);
    if (rc == SQLITE_OK) {
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", v + 1);
        rc = sqlite3_exec(c->h, sql, NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK) {
        e = bm__sql_err(c, rc, "schema migration", em);
        if (e == BM_E_STORAGE)
            bm_errmsg_set(em, e, "schema migration to version %d: %s", v + 1, sqlite3_errmsg(c->h));
    }
done:
    return bm__tx_end(db, c, e, em);
}

bm_err bm__migrate(struct bm_db *db, int to, struct bm_errmsg *em)
{
    struct bm__conn *c = NULL;
    int v = 0;
    bm_err e = bm__conn_get(db, &c, em);
    if (e == BM_OK)
        e = user_version(c, &v, em);
    bm__conn_put(db, c);
    if (e != BM_OK)
        return e;
    if (v > N_MIGRATIONS)
        return bm_errmsg_set(em, BM_E_STORAGE,
                             "database %s has schema version %d, newer than this bmas knows "
                             "(%d): run a newer bmas or use another database",
                             db->path, v, N_MIGRATIONS);
    for (; v < to && v < N_MIGRATIONS; v++) {
        if ((e = migrate_step(db, v, em)) != BM_OK)
            return e;
        if (v == 0)
            BM_LOG(BM_INFO, "storage", "schema_created", "created database",
                   BM_KV_STR("path", db->path));
        else
            BM_LOG(BM_INFO, "storage", "schema_migrated", "migrated database schema",
                   BM_KV_STR("path", db->path), BM_KV_INT("version", v + 1));
    }
    return BM_OK;
}
