/* db.c: the SQLite backend's handle: opening (pragmas, migrations), the bounded pool of connections
 * with their prepared statements, SQLite-to-bm_err mapping, and write transactions. */
#include "storage/storage_int.h"

#include <stdio.h>
#include <string.h>

/* Column lists shared by the three aggregate tables and the outbox: the series key as interned
 * ids, then invocations and sum/min/max of the four token counts (bind positions 1..20), then
 * the cost, unpriced invocations and residency violations (21..24, schema version 5), the
 * attribution values (25..27, version 6). */
#define SERIES_COLS                                                                                \
    "bucket, model, ptype, profile, src, inf, op, n, i_s, i_mn, i_mx, o_s, o_mn, o_mx, r_s, "      \
    "r_mn, r_mx, w_s, w_mn, w_mx, c_u, c_p, np, rv, a1, a2, a3"
#define SERIES_PARAMS                                                                              \
    "?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22,?23,?24,?25,"  \
    "?26,?27"
#define STAT_MERGE(p)                                                                              \
    p "_s = " p "_s + excluded." p "_s, " p "_mn = min(" p "_mn, excluded." p "_mn), " p           \
      "_mx = max(" p "_mx, excluded." p "_mx)"
#define COST_MERGE                                                                                 \
    "c_u = c_u + excluded.c_u, c_p = c_p + excluded.c_p, np = np + excluded.np, "                  \
    "rv = rv + excluded.rv"
#define AGG_UPSERT(table)                                                                          \
    "INSERT INTO " table "(" SERIES_COLS ") VALUES(" SERIES_PARAMS                                 \
    ") ON CONFLICT DO UPDATE SET n = n + excluded.n, " STAT_MERGE("i") ", " STAT_MERGE(            \
        "o") ", " STAT_MERGE("r") ", " STAT_MERGE("w") ", " COST_MERGE

static const char *const st_sql[BM__ST__COUNT] = {
    [BM__ST_BEGIN] = "BEGIN IMMEDIATE",
    [BM__ST_BEGIN_READ] = "BEGIN DEFERRED",
    [BM__ST_COMMIT] = "COMMIT",
    [BM__ST_ROLLBACK] = "ROLLBACK",
    [BM__ST_PROC_INSERT] = "INSERT INTO processed(bucket, key, version, size, records, invalid, "
                           "processed_at, message_id) VALUES(?1,?2,?3,?4,?5,?6,?7,?8) "
                           "ON CONFLICT DO NOTHING",
    [BM__ST_PROC_EXISTS] = "SELECT 1 FROM processed WHERE bucket = ?1 AND key = ?2 AND "
                           "version = ?3",
    [BM__ST_STR_GET] = "SELECT id FROM str WHERE s = ?1",
    [BM__ST_STR_PUT] = "INSERT INTO str(s) VALUES(?1)",
    [BM__ST_AGG_MIN] = AGG_UPSERT("agg"),
    [BM__ST_AGG_HOUR] = AGG_UPSERT("agg_hour"),
    [BM__ST_AGG_DAY] = AGG_UPSERT("agg_day"),
    [BM__ST_AGG_ALL] = "INSERT INTO agg_all(model, ptype, profile, src, inf, op, n, i_s, o_s, r_s, "
                       "w_s, c_u, c_p, np, rv, a1, a2, a3) "
                       "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18) "
                       "ON CONFLICT DO UPDATE SET "
                       "n = n + excluded.n, i_s = i_s + excluded.i_s, o_s = o_s + excluded.o_s, "
                       "r_s = r_s + excluded.r_s, w_s = w_s + excluded.w_s, " COST_MERGE,
    [BM__ST_OUTBOX_PUT] =
        "INSERT INTO outbox(created_at, " SERIES_COLS ") VALUES(?28, " SERIES_PARAMS ")",
    [BM__ST_FAIL_DELETE] = "DELETE FROM failure WHERE bucket = ?1 AND key = ?2 AND version = ?3",
    [BM__ST_FAIL_GET] = "SELECT attempts, quarantined FROM failure WHERE bucket = ?1 AND "
                        "key = ?2 AND version = ?3",
    [BM__ST_FAIL_PUT] = "INSERT INTO failure(bucket, key, version, attempts, code, message, "
                        "first_at, last_at, quarantined) VALUES(?1,?2,?3,?4,?5,?6,?7,?7,?8) "
                        "ON CONFLICT DO UPDATE SET attempts = excluded.attempts, "
                        "code = excluded.code, message = excluded.message, "
                        "last_at = excluded.last_at, quarantined = excluded.quarantined",
    [BM__ST_FAIL_LIST] = "SELECT bucket, key, version, attempts, quarantined, code, message, "
                         "first_at, last_at FROM failure WHERE quarantined = 1 "
                         "ORDER BY last_at DESC LIMIT ?1",
    [BM__ST_CTR_ADD] = "INSERT INTO counter(name, value) VALUES(?1, ?2) "
                       "ON CONFLICT DO UPDATE SET value = value + excluded.value",
    [BM__ST_CTR_ALL] = "SELECT name, value FROM counter",
    [BM__ST_CTR_GET] = "SELECT value FROM counter WHERE name = ?1",
    [BM__ST_OUTBOX_FETCH] =
        "SELECT o.id, o.created_at, o.bucket, o.ptype, m.s, p.s, sr.s, ir.s, op.s, o.n, "
        "o.i_s, o.i_mn, o.i_mx, o.o_s, o.o_mn, o.o_mx, o.r_s, o.r_mn, o.r_mx, o.w_s, o.w_mn, "
        "o.w_mx, o.c_u, o.c_p, o.np, o.rv FROM outbox o JOIN str m ON m.id = o.model "
        "JOIN str p ON p.id = o.profile "
        "JOIN str sr ON sr.id = o.src JOIN str ir ON ir.id = o.inf JOIN str op ON op.id = o.op "
        "WHERE o.state = 0 AND o.id > ?2 ORDER BY o.id LIMIT ?1",
    [BM__ST_OUTBOX_CLAIMED] =
        "SELECT o.id, o.created_at, o.bucket, o.ptype, m.s, p.s, sr.s, ir.s, op.s, o.n, "
        "o.i_s, o.i_mn, o.i_mx, o.o_s, o.o_mn, o.o_mx, o.r_s, o.r_mn, o.r_mx, o.w_s, o.w_mn, "
        "o.w_mx, o.c_u, o.c_p, o.np, o.rv FROM outbox o JOIN str m ON m.id = o.model "
        "JOIN str p ON p.id = o.profile "
        "JOIN str sr ON sr.id = o.src JOIN str ir ON ir.id = o.inf JOIN str op ON op.id = o.op "
        "WHERE o.state = 4 AND o.claim = ?1 ORDER BY o.id",
    [BM__ST_OUTBOX_CLAIM] = "UPDATE outbox SET state = 4, claim = ?2 WHERE id = ?1 AND state = 0",
    [BM__ST_CLAIM_PUT] = "INSERT INTO outbox_claim(id, nreq, sent, attempt, rejected, created_at) "
                         "VALUES(?1, ?2, 0, 0, 0, ?3)",
    [BM__ST_CLAIM_GET] = "SELECT nreq, sent, attempt, rejected FROM outbox_claim WHERE id = ?1",
    [BM__ST_CLAIM_SET] = "UPDATE outbox_claim SET sent = ?2, attempt = ?3, rejected = ?4 "
                         "WHERE id = ?1",
    [BM__ST_CLAIM_DELETE] = "DELETE FROM outbox_claim WHERE id = ?1",
    [BM__ST_CLAIM_LIST] = "SELECT id, nreq, sent, attempt FROM outbox_claim "
                          "ORDER BY created_at, id",
    [BM__ST_CLAIM_ROWS_DELETE] = "DELETE FROM outbox WHERE claim = ?1 AND state = 4",
    [BM__ST_CLAIM_ROWS_SET] = "UPDATE outbox SET state = ?2, claim = NULL "
                              "WHERE claim = ?1 AND state = 4",
    [BM__ST_OUTBOX_DELETE] = "DELETE FROM outbox WHERE id = ?1 AND state = 0",
    [BM__ST_OUTBOX_SET] = "UPDATE outbox SET state = ?2 WHERE id = ?1 AND state = 0",
    [BM__ST_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [BM__ST_META_SET] = "INSERT INTO meta(key, value) VALUES(?1, ?2) "
                        "ON CONFLICT DO UPDATE SET value = excluded.value",
    /* What a query plan needs from its snapshot: the prune cutoff and the span of the minute
     * rows (each subquery one index seek). */
    [BM__ST_QUERY_STATE] = "SELECT (SELECT value FROM meta WHERE key = 'pruned_before'), "
                           "(SELECT min(bucket) FROM agg), (SELECT max(bucket) FROM agg)",
    [BM__ST_STR_NAME] = "SELECT s FROM str WHERE id = ?1",
    [BM__ST_ATTR_HAS] = "SELECT 1 FROM attr_value WHERE k = ?1 AND v = ?2",
    [BM__ST_ATTR_COUNT] = "SELECT count(*) FROM attr_value WHERE k = ?1",
    [BM__ST_ATTR_PUT] = "INSERT INTO attr_value(k, v) VALUES(?1, ?2)",
};

bm_err bm__sql_err(struct bm__conn *c, int rc, const char *what, struct bm_errmsg *em)
{
    bm_err e;
    /* Extended codes are on: the primary code is the low byte. SQLITE_IOERR_NOMEM is an
     * allocation failure reported through the I/O layer. */
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        e = BM_E_STORAGE_BUSY;
        break;
    case SQLITE_NOMEM:
        e = BM_E_NOMEM;
        break;
    default:
        e = rc == SQLITE_IOERR_NOMEM ? BM_E_NOMEM : BM_E_STORAGE;
        break;
    }
    const char *msg = c != NULL && c->h != NULL ? sqlite3_errmsg(c->h) : sqlite3_errstr(rc);
    return bm_errmsg_set(em, e, "%s: %s (SQLite %d)", what, msg, rc);
}

int bm__bind_str(sqlite3_stmt *st, int i, struct bm_str s)
{
    return sqlite3_bind_text(st, i, s.len ? s.p : "", (int)s.len, SQLITE_TRANSIENT);
}

bm_err bm__stmt(struct bm__conn *c, enum bm__st id, sqlite3_stmt **out, struct bm_errmsg *em)
{
    if (c->st[id] == NULL) {
        int rc =
            sqlite3_prepare_v3(c->h, st_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &c->st[id], NULL);
        if (rc != SQLITE_OK)
            return bm__sql_err(c, rc, "prepare", em);
    }
    sqlite3_reset(c->st[id]);
    sqlite3_clear_bindings(c->st[id]);
    *out = c->st[id];
    return BM_OK;
}

bm_err bm__run(struct bm__conn *c, sqlite3_stmt *st, const char *what, struct bm_errmsg *em)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return bm__sql_err(c, rc, what, em);
    return BM_OK;
}

/* Rolls back with the statement prepared when the connection opened: preparing it now could
 * fail for want of memory, the very error being cleaned up. */
static void rollback(struct bm__conn *c)
{
    sqlite3_reset(c->st[BM__ST_ROLLBACK]);
    sqlite3_step(c->st[BM__ST_ROLLBACK]);
    sqlite3_reset(c->st[BM__ST_ROLLBACK]);
}

static void conn_free(struct bm__conn *c)
{
    if (c == NULL)
        return;
    /* Finalise every statement, ours and any other, so that close cannot fail with BUSY. */
    sqlite3_stmt *st;
    while (c->h != NULL && (st = sqlite3_next_stmt(c->h, NULL)) != NULL)
        sqlite3_finalize(st);
    sqlite3_close(c->h);
    bm__names_cleanup(&c->names);
    bm_free(c);
}

/* Runs one pragma; when want is given, its first result column must equal want. */
static bm_err pragma(struct bm__conn *c, const char *sql, const char *want, struct bm_errmsg *em)
{
    sqlite3_stmt *st = NULL;
    bm_err e = BM_OK;
    int rc = sqlite3_prepare_v2(c->h, sql, -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        e = bm__sql_err(c, rc, sql, em);
        goto fail;
    }
    if (want != NULL) {
        const char *got = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
        if (got == NULL || strcmp(got, want) != 0) {
            e = bm_errmsg_set(em, BM_E_STORAGE, "%s: got \"%s\", need \"%s\"", sql, got ? got : "",
                              want);
            goto fail;
        }
    }
fail:
    sqlite3_finalize(st);
    return e;
}

static bm_err conn_open(struct bm_db *db, struct bm__conn **out, struct bm_errmsg *em)
{
    struct bm__conn *c = bm_calloc(1, sizeof *c);
    bm_err e = BM_OK;
    if (c == NULL)
        return bm_errmsg_set(em, BM_E_NOMEM, "storage: out of memory");
    /* NOMUTEX: a connection is only ever used by the thread that borrowed it from the pool. */
    int rc = sqlite3_open_v2(
        db->path, &c->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        e = c->h == NULL ? bm_errmsg_set(em, BM_E_NOMEM, "open %s: out of memory", db->path)
                         : bm__sql_err(c, rc, "open database", em);
        goto fail;
    }
    sqlite3_extended_result_codes(c->h, 1);
    sqlite3_busy_timeout(c->h, db->opt.busy_timeout_ms);
    /* WAL lets readers (/status, /aggregates) run while one writer commits. synchronous=NORMAL
     * in WAL mode syncs only at checkpoints: a commit survives any crash of this process
     * (kill -9 included: it is in the OS once COMMIT returns), and after an OS crash or power
     * loss the database is still consistent, each object's transaction all or nothing, but the
     * last commits may roll back (an acknowledged object then goes uncounted, an outbox mark
     * is undone and those rows are sent again). sync_full closes that window with an fsync of
     * the WAL per commit. https://www.sqlite.org/pragma.html#pragma_synchronous */
    static const char *const setup[] = {
        "PRAGMA temp_store = MEMORY",
        "PRAGMA cache_size = -8192",
        /* Shared OS page cache across the pooled connections instead of 8 MiB each. */
        "PRAGMA mmap_size = 268435456",
        "PRAGMA journal_size_limit = 67108864",
    };
    if ((e = pragma(c, "PRAGMA journal_mode = WAL", "wal", em)) != BM_OK)
        goto fail;
    if ((e = pragma(c,
                    db->opt.sync_full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL",
                    NULL, em)) != BM_OK)
        goto fail;
    for (size_t i = 0; i < sizeof setup / sizeof setup[0]; i++)
        if ((e = pragma(c, setup[i], NULL, em)) != BM_OK)
            goto fail;
    sqlite3_stmt *st;
    if ((e = bm__stmt(c, BM__ST_ROLLBACK, &st, em)) != BM_OK)
        goto fail;
    *out = c;
    return BM_OK;
fail:
    conn_free(c);
    return e;
}

bm_err bm__conn_get(struct bm_db *db, struct bm__conn **out, struct bm_errmsg *em)
{
    pthread_mutex_lock(&db->lock);
    while (db->idle == NULL && db->nall >= db->opt.max_connections)
        pthread_cond_wait(&db->cond, &db->lock);
    struct bm__conn *c = db->idle;
    if (c != NULL) {
        db->idle = c->next;
        pthread_mutex_unlock(&db->lock);
        *out = c;
        return BM_OK;
    }
    /* Reserve a place under the bound, then open outside the lock: opening does file I/O. */
    db->nall++;
    pthread_mutex_unlock(&db->lock);
    bm_err e = conn_open(db, &c, em);
    pthread_mutex_lock(&db->lock);
    if (e == BM_OK) {
        db->all[db->nopen++] = c;
    } else {
        db->nall--;
        pthread_cond_signal(&db->cond);
    }
    pthread_mutex_unlock(&db->lock);
    if (e == BM_OK)
        *out = c;
    return e;
}

void bm__conn_put(struct bm_db *db, struct bm__conn *c)
{
    if (c == NULL)
        return;
    /* A statement left mid-step would pin its read snapshot (stale reads, WAL that cannot be
     * checkpointed); a transaction left open would hold the write lock. Neither may leak. */
    for (sqlite3_stmt *st = sqlite3_next_stmt(c->h, NULL); st; st = sqlite3_next_stmt(c->h, st))
        if (sqlite3_stmt_busy(st))
            sqlite3_reset(st);
    /* Only a ROLLBACK that itself failed (out of memory) leaves a transaction open: retry it,
     * and if the connection still cannot be cleaned, close it rather than reuse it. */
    if (!sqlite3_get_autocommit(c->h))
        rollback(c);
    bool broken = !sqlite3_get_autocommit(c->h);
    pthread_mutex_lock(&db->lock);
    if (broken) {
        for (int i = 0; i < db->nopen; i++)
            if (db->all[i] == c) {
                db->all[i] = db->all[--db->nopen];
                db->all[db->nopen] = NULL;
            }
        db->nall--;
    } else {
        c->next = db->idle;
        db->idle = c;
    }
    pthread_cond_signal(&db->cond);
    pthread_mutex_unlock(&db->lock);
    if (broken)
        conn_free(c);
}

bm_err bm__tx_begin(struct bm_db *db, struct bm__conn **out, struct bm_errmsg *em)
{
    struct bm__conn *c = NULL;
    sqlite3_stmt *st;
    /* The writer lock comes before the connection: writers queued on it then hold no pooled
     * connection, so at most one connection is a writer's and readers never wait for one. */
    pthread_mutex_lock(&db->wlock);
    bm_err e = bm__conn_get(db, &c, em);
    if (e == BM_OK && (e = bm__stmt(c, BM__ST_BEGIN, &st, em)) == BM_OK)
        e = bm__run(c, st, "begin transaction", em);
    if (e != BM_OK) {
        bm__conn_put(db, c);
        pthread_mutex_unlock(&db->wlock);
        bm__health_note(db, e, em);
        return e;
    }
    *out = c;
    return BM_OK;
}

bm_err bm__tx_end(struct bm_db *db, struct bm__conn *c, bm_err rc, struct bm_errmsg *em)
{
    uint64_t taken[BM_DB_C__COUNT] = {0};
    sqlite3_stmt *st;
    /* Deferred counters ride along with whatever transaction commits next. */
    if (rc == BM_OK)
        bm__deferred_take(db, taken);
    for (int i = 0; rc == BM_OK && i < BM_DB_C__COUNT; i++)
        if (taken[i] != 0)
            rc = bm__counter_add(c, (enum bm_db_counter)i, (int64_t)taken[i], em);
    if (rc == BM_OK && (rc = bm__stmt(c, BM__ST_COMMIT, &st, em)) == BM_OK)
        rc = bm__run(c, st, "commit", em);
    bm__interns_end(&db->interns, rc == BM_OK);
    if (rc != BM_OK) {
        /* Some errors (NOMEM, IOERR, FULL) already rolled back; ROLLBACK only what is open. */
        if (!sqlite3_get_autocommit(c->h))
            rollback(c);
        bm__deferred_give_back(db, taken);
    }
    bm__conn_put(db, c);
    pthread_mutex_unlock(&db->wlock);
    bm__health_note(db, rc, em);
    return rc;
}

static bm_err load_pruned_before(struct bm_db *db, struct bm__conn *c, struct bm_errmsg *em)
{
    sqlite3_stmt *st;
    bm_err e = bm__stmt(c, BM__ST_META_GET, &st, em);
    if (e != BM_OK)
        return e;
    sqlite3_bind_text(st, 1, "pruned_before", -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        atomic_store(&db->pruned_before, sqlite3_column_int64(st, 0));
    else if (rc != SQLITE_DONE)
        e = bm__sql_err(c, rc, "read meta", em);
    sqlite3_reset(st);
    return e;
}

static bm_err db_open(const char *path, const struct bm_db_options *opt, int version,
                      struct bm_db **out, struct bm_errmsg *em)
{
    struct bm__conn *c = NULL;
    struct bm_db *db = bm__db_new(opt);
    bm_err e = BM_E_NOMEM;
    if (db == NULL)
        return bm_errmsg_set(em, e, "storage: out of memory");
    db->ops = &bm__sq_ops;
    pthread_mutex_init(&db->lock, NULL);
    pthread_mutex_init(&db->wlock, NULL);
    pthread_cond_init(&db->cond, NULL);
    if (db->opt.max_connections <= 0)
        db->opt.max_connections = 16;
    if (db->opt.busy_timeout_ms <= 0)
        db->opt.busy_timeout_ms = 5000;
    db->path = bm_strdup(path);
    db->all = bm_calloc((size_t)db->opt.max_connections, sizeof *db->all);
    if (db->path == NULL || db->all == NULL) {
        bm_errmsg_set(em, e, "storage: out of memory");
        goto fail;
    }
    if ((e = bm__migrate(db, version, em)) != BM_OK)
        goto fail;
    if (version == bm_db_schema_version()) {
        if ((e = bm__conn_get(db, &c, em)) != BM_OK)
            goto fail;
        e = load_pruned_before(db, c, em);
        bm__conn_put(db, c);
        if (e != BM_OK)
            goto fail;
    }
    db->is_open = true;
    *out = db;
    return BM_OK;
fail:
    bm__sq_close(db);
    return e;
}

bm_err bm__sq_open(const char *path, const struct bm_db_options *opt, struct bm_db **out,
                   struct bm_errmsg *em)
{
    return db_open(path, opt, bm_db_schema_version(), out, em);
}

bm_err bm__db_create_at(const char *path, int version, struct bm_errmsg *em)
{
    struct bm_db *db = NULL;
    bm_err e = db_open(path, NULL, version, &db, em);
    bm__sq_close(db);
    return e;
}

void bm__sq_close(struct bm_db *db)
{
    if (db == NULL)
        return;
    if (db->is_open) {
        /* Best effort: a failure here only loses informational counts. */
        struct bm_errmsg em;
        if (bm__sq_flush_counters(db, &em) != BM_OK)
            BM_LOG(BM_WARN, "storage", "counter_flush_failed", em.text);
    }
    for (int i = 0; i < db->nopen; i++) {
        struct bm__conn *c = db->all[i];
        for (int j = 0; j < BM__QCACHE_N; j++)
            sqlite3_finalize(c->qc[j].st);
        for (int j = 0; j < BM__ST__COUNT; j++)
            sqlite3_finalize(c->st[j]);
        conn_free(c);
    }
    bm__interns_cleanup(&db->interns);
    pthread_cond_destroy(&db->cond);
    pthread_mutex_destroy(&db->wlock);
    pthread_mutex_destroy(&db->lock);
    bm_free(db->all);
    bm_free(db->path);
    bm__db_free(db);
}

/* The publisher lease (bm_storage.h): an SQLite file is one machine's store, so its instance
 * always holds it; nothing to record, nothing to migrate. */
static bm_err sq_publisher_lease(struct bm_db *db, const char *instance_id, int64_t ttl_ms,
                                 bool *held, char *holder, size_t cap, struct bm_errmsg *em)
{
    (void)db, (void)ttl_ms, (void)em;
    *held = true;
    if (holder != NULL && cap > 0)
        snprintf(holder, cap, "%s", instance_id);
    return BM_OK;
}

static bm_err sq_publisher_release(struct bm_db *db, const char *instance_id, struct bm_errmsg *em)
{
    (void)db, (void)instance_id, (void)em;
    return BM_OK;
}

const struct bm__store_ops bm__sq_ops = {
    .name = "SQLite",
    .close = bm__sq_close,
    .commit_object = bm__sq_commit_object,
    .is_processed = bm__sq_is_processed,
    .record_failure = bm__sq_record_failure,
    .is_quarantined = bm__sq_is_quarantined,
    .quarantined = bm__sq_quarantined,
    .flush_counters = bm__sq_flush_counters,
    .status = bm__sq_status,
    .outbox_pending = bm__sq_outbox_pending,
    .outbox_fetch = bm__sq_outbox_fetch,
    .outbox_mark = bm__sq_outbox_mark,
    .outbox_claim = bm__sq_outbox_claim,
    .outbox_send_begin = bm__sq_outbox_send_begin,
    .outbox_send_done = bm__sq_outbox_send_done,
    .outbox_send_failed = bm__sq_outbox_send_failed,
    .outbox_claims = bm__sq_outbox_claims,
    .prune = bm__sq_prune,
    .cw_series_recent = bm__sq_cw_series_recent,
    .cw_series_record = bm__sq_cw_series_record,
    .cw_budget = bm__sq_cw_budget,
    .query = bm__sq_query,
    .publisher_lease = sq_publisher_lease,
    .publisher_release = sq_publisher_release,
};

bm_err bm__db_exec(const char *path, const char *sql, struct bm_errmsg *em)
{
    struct bm__conn c = {0};
    int rc = sqlite3_open_v2(path, &c.h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(c.h, sql, NULL, NULL, NULL);
    bm_err e = rc == SQLITE_OK ? BM_OK : bm__sql_err(&c, rc, "exec", em);
    sqlite3_close(c.h);
    return e;
}
