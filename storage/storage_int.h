/* storage_int.h: declarations private to storage/ and its unit tests (sqlite's *Int.h): the
 * connection pool, the prepared-statement table, write transactions and test hooks. Nothing
 * outside storage/ and tests/unit/test_storage_*.c includes this file. */
#ifndef BM_STORAGE_INT_H
#define BM_STORAGE_INT_H

#include "storage/bm_storage.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>

/* Hot statements, prepared lazily once per connection and reused (see the SQL in db.c). */
enum bm__st {
    BM__ST_BEGIN,
    BM__ST_BEGIN_READ,
    BM__ST_COMMIT,
    BM__ST_ROLLBACK,
    BM__ST_PROC_INSERT,
    BM__ST_PROC_EXISTS,
    BM__ST_STR_GET,
    BM__ST_STR_PUT,
    BM__ST_AGG_MIN,
    BM__ST_AGG_HOUR,
    BM__ST_AGG_DAY,
    BM__ST_AGG_ALL,
    BM__ST_OUTBOX_PUT,
    BM__ST_FAIL_DELETE,
    BM__ST_FAIL_GET,
    BM__ST_FAIL_PUT,
    BM__ST_FAIL_LIST,
    BM__ST_CTR_ADD,
    BM__ST_CTR_ALL,
    BM__ST_CTR_GET,
    BM__ST_OUTBOX_FETCH,
    BM__ST_OUTBOX_DELETE,
    BM__ST_OUTBOX_SET,
    BM__ST_META_GET,
    BM__ST_META_SET,
    BM__ST_QUERY_STATE,
    BM__ST_STR_NAME,
    BM__ST_OUTBOX_CLAIM,
    BM__ST_OUTBOX_CLAIMED,
    BM__ST_CLAIM_PUT,
    BM__ST_CLAIM_GET,
    BM__ST_CLAIM_SET,
    BM__ST_CLAIM_DELETE,
    BM__ST_CLAIM_LIST,
    BM__ST_CLAIM_ROWS_DELETE,
    BM__ST_CLAIM_ROWS_SET,
    BM__ST_ATTR_HAS,
    BM__ST_ATTR_COUNT,
    BM__ST_ATTR_PUT,
    BM__ST__COUNT
};

/* ---- GET /aggregates plans (query_plan.c) ------------------------------------------------ */
/* The tables a query reads, finest first: minute rows, hourly and daily rollups (bucket = unit
 * start), and the all-time rollup (no bucket). */
enum bm__qtable { BM__QT_MINUTE, BM__QT_HOUR, BM__QT_DAY, BM__QT_ALL, BM__QT__COUNT };
/* One read: the rows of t with lo <= bucket < hi (all of them for BM__QT_ALL), added to the
 * result (sign 1) or subtracted from it (sign -1). */
struct bm__qpart {
    enum bm__qtable t;
    int sign;
    int64_t lo, hi;
};
#define BM__QPLAN_MAX 64 /* the most parts the planner can make, ragged everywhere */
struct bm__qplan {
    int n;
    int64_t cost; /* estimated, in minute-rows */
    struct bm__qpart p[BM__QPLAN_MAX];
};
struct bm__qplan_in {
    int64_t lo, hi;      /* the query's range; INT64_MIN and INT64_MAX when open */
    int64_t clamp;       /* the prune cutoff (INT64_MIN: never pruned); nothing before it counts */
    int64_t first, last; /* the first and last minute bucket stored (first > last: none) */
    bool by_minute;      /* grouped by minute: only the minute table can answer */
    bool may_subtract;   /* sums only: a part may be subtracted (min/max cannot) */
};
/* The cheapest plan (by the estimate) whose signed parts sum to exactly the stored minute rows
 * with max(lo, clamp) <= bucket < hi, given that each rollup row sums the minute rows of its
 * unit unless the unit started before the clamp. */
void bm__qplan_make(const struct bm__qplan_in *in, struct bm__qplan *out);

/* Dynamic /aggregates statements cached per connection, keyed by grouping and filter mask. */
#define BM__QCACHE_N 64
struct bm__qcache {
    uint32_t key; /* 0 = empty slot */
    sqlite3_stmt *st;
};

/* Strings copied into chunks that never move, for results that point at them. */
struct bm__arena {
    struct bm__arena_chunk *head;
};

/* Names by interned id, per connection, for query results (committed ids never change).
 * Bounded: bm__names_room empties it when fewer than n entries are free, so the names looked
 * up after it stay valid until the next bm__names_room. */
struct bm__name_slot {
    int64_t id; /* 0 = empty (ids start at 1) */
    const char *s;
    size_t len;
};
struct bm__names {
    struct bm__name_slot *slots;
    size_t n;
    struct bm__arena arena;
};

/* One SQLite connection, used by one thread at a time (opened SQLITE_OPEN_NOMUTEX: the pool's
 * mutex hands it over, which orders all accesses). */
struct bm__conn {
    sqlite3 *h;
    sqlite3_stmt *st[BM__ST__COUNT];
    struct bm__qcache qc[BM__QCACHE_N];
    unsigned qnext;
    struct bm__names names;
    struct bm__conn *next; /* free list */
};

/* Strings `str` holds, by name: committed ones in an open-addressing table (slots with s NULL
 * are empty), and those met by the current write transaction, whose names the caller's delta
 * owns until bm__interns_end publishes them (commit) or forgets them (rollback). */
struct bm__intern_slot {
    uint64_t hash;
    int64_t id;
    const char *s;
    size_t len;
};
struct bm__interns {
    struct bm__intern_slot *slots;
    size_t nslots, n;
    struct bm__intern_slot *pending;
    size_t npending, cap_pending;
    struct bm__arena arena; /* the names of slots */
};

/* ---- The store interface (store.c) -------------------------------------------------------- */
/* What a backend implements: the bm_db_* operations of bm_storage.h that touch the database,
 * with the same contracts. bm_db_open picks the table by BMAS_DB (a postgres:// or
 * postgresql:// URL: PostgreSQL, else an SQLite file) and store.c's bm_db_* call through it.
 * Pure helpers (bm_db_object_init, bm_db_query_parse, the *_free functions) and what lives in
 * struct bm_db itself (deferred counters, write health) are shared, not per backend. A NULL
 * entry is an operation the backend does not have yet: bm_db_open refuses such a store. */
struct bm__store_ops {
    const char *name; /* "SQLite", "PostgreSQL": for messages */
    void (*close)(struct bm_db *db);
    bm_err (*commit_object)(struct bm_db *db, const struct bm_db_object *obj,
                            const char *message_id, uint64_t size, const struct bm_agg *delta,
                            const struct bm_ingest_stats *stats, int64_t now,
                            enum bm_db_commit_result *result, struct bm_errmsg *em);
    bm_err (*is_processed)(struct bm_db *db, const struct bm_db_object *obj, bool *out,
                           struct bm_errmsg *em);
    bm_err (*record_failure)(struct bm_db *db, const struct bm_db_object *obj, bm_err code,
                             const char *message, int64_t now, long max_attempts, long *attempts,
                             bool *quarantined, struct bm_errmsg *em);
    bm_err (*is_quarantined)(struct bm_db *db, const struct bm_db_object *obj, bool *out,
                             struct bm_errmsg *em);
    bm_err (*quarantined)(struct bm_db *db, size_t max, struct bm_db_failures **out,
                          struct bm_errmsg *em);
    bm_err (*flush_counters)(struct bm_db *db, struct bm_errmsg *em);
    bm_err (*status)(struct bm_db *db, struct bm_db_status *out, struct bm_errmsg *em);
    bm_err (*outbox_pending)(struct bm_db *db, uint64_t *out, struct bm_errmsg *em);
    bm_err (*outbox_fetch)(struct bm_db *db, int64_t after_id, size_t max_rows,
                           struct bm_db_outbox **out, struct bm_errmsg *em);
    bm_err (*outbox_mark)(struct bm_db *db, const int64_t *ids, size_t n,
                          enum bm_db_outbox_state state, uint64_t datums, uint64_t requests,
                          struct bm_errmsg *em);
    bm_err (*outbox_claim)(struct bm_db *db, const char *claim, const int64_t *ids, size_t n,
                           size_t nreq, int64_t now, struct bm_errmsg *em);
    bm_err (*outbox_send_begin)(struct bm_db *db, const char *claim, size_t req, int *attempt,
                                struct bm_errmsg *em);
    bm_err (*outbox_send_done)(struct bm_db *db, const char *claim, size_t req, bool accepted,
                               uint64_t datums, bool *finished, struct bm_errmsg *em);
    bm_err (*outbox_send_failed)(struct bm_db *db, const char *claim, size_t req, bool *released,
                                 struct bm_errmsg *em);
    bm_err (*outbox_claims)(struct bm_db *db, struct bm_db_claims **out, struct bm_errmsg *em);
    bm_err (*prune)(struct bm_db *db, int64_t cutoff, struct bm_db_prune_stats *stats,
                    struct bm_errmsg *em);
    bm_err (*cw_series_recent)(struct bm_db *db, int64_t since, bm_db_cw_series_fn fn, void *ctx,
                               struct bm_errmsg *em);
    bm_err (*cw_series_record)(struct bm_db *db, const struct bm_db_cw_series *v, size_t n,
                               bool held, int64_t now, int64_t month_start, struct bm_errmsg *em);
    bm_err (*cw_budget)(struct bm_db *db, int64_t since, int64_t month_start, bm_db_cw_set_fn fn,
                        void *ctx, struct bm_db_cw_budget *out, struct bm_errmsg *em);
    bm_err (*query)(struct bm_db *db, const struct bm_db_query *q, struct bm_agg **out,
                    struct bm_errmsg *em);
    bm_err (*publisher_lease)(struct bm_db *db, const char *instance_id, int64_t ttl_ms, bool *held,
                              char *holder, size_t cap, struct bm_errmsg *em);
    bm_err (*publisher_release)(struct bm_db *db, const char *instance_id, struct bm_errmsg *em);
};
/* The ops in declaration order with their names, for bm_db_open's completeness check: a
 * backend whose table lacks one is refused at open, so no call meets a NULL. */
#define BM__STORE_OP_NAMES                                                                         \
    X(close)                                                                                       \
    X(commit_object)                                                                               \
    X(is_processed)                                                                                \
    X(record_failure)                                                                              \
    X(is_quarantined)                                                                              \
    X(quarantined)                                                                                 \
    X(flush_counters)                                                                              \
    X(status)                                                                                      \
    X(outbox_pending)                                                                              \
    X(outbox_fetch)                                                                                \
    X(outbox_mark)                                                                                 \
    X(outbox_claim)                                                                                \
    X(outbox_send_begin)                                                                           \
    X(outbox_send_done)                                                                            \
    X(outbox_send_failed)                                                                          \
    X(outbox_claims)                                                                               \
    X(prune)                                                                                       \
    X(cw_series_recent)                                                                            \
    X(cw_series_record)                                                                            \
    X(cw_budget)                                                                                   \
    X(query)                                                                                       \
    X(publisher_lease)                                                                             \
    X(publisher_release)

struct bm_pg;

/* The handle: the fields every backend shares (ops, options, deferred counters, write health)
 * and the SQLite backend's own (path .. interns); the PostgreSQL backend uses pg instead. */
struct bm_db {
    const struct bm__store_ops *ops;
    struct bm_pg *pg; /* the PostgreSQL pool (pg_store.c); NULL for SQLite */
    char *path;
    struct bm_db_options opt;
    pthread_mutex_t lock; /* guards the pool below, never held across SQL */
    pthread_cond_t cond;
    struct bm__conn *idle;
    struct bm__conn **all; /* the nopen open connections */
    int nopen;
    int nall; /* open plus being opened: what max_connections bounds */
    /* Serialises this process's writers: a waiting writer sleeps on the mutex and is woken at
     * once, instead of polling SQLite's busy handler. Readers never take it. */
    pthread_mutex_t wlock;
    bool is_open; /* opened and migrated: close then writes the deferred counters */
    _Atomic uint64_t deferred[BM_DB_C__COUNT];
    struct bm__interns interns; /* used only by writers, under wlock */
    /* The latest prune cutoff recorded (meta holds it for every process, and queries read it
     * from their snapshot); bm_db_prune does not record an older one. */
    _Atomic int64_t pruned_before;
    /* Whether writes work (bm_db_write_health): the error of the latest write transaction
     * that failed for storage reasons, cleared by the next one that commits. Under hlock. */
    pthread_mutex_t hlock;
    bm_err herr;
    int64_t hsince;
    struct bm_errmsg hmsg;
};

/* ---- Shared by the backends (store.c) ------------------------------------------------------ */
/* A handle with the shared fields initialised (mutexes, no deferred counts, healthy, never
 * pruned) and opt applied (NULL: defaults); NULL when out of memory. bm__db_free releases
 * what bm__db_new made (the backend frees its own fields first); accepts NULL. */
struct bm_db *bm__db_new(const struct bm_db_options *opt);
void bm__db_free(struct bm_db *db);
/* Records the outcome of a write transaction for bm_db_write_health: a commit makes writes
 * healthy, a failure for storage reasons (BM_E_STORAGE_BUSY, BM_E_STORAGE) unhealthy since
 * now; other failures (the caller's own, out of memory) say nothing about the store. */
void bm__health_note(struct bm_db *db, bm_err rc, const struct bm_errmsg *em);
/* The deferred counters (bm_db_count) ride along with the next transaction: take moves them
 * all into taken (the handle's go to zero), give_back returns them when that transaction
 * failed, and add_to adds the ones not yet stored to a status read from the database. */
void bm__deferred_take(struct bm_db *db, uint64_t taken[BM_DB_C__COUNT]);
void bm__deferred_give_back(struct bm_db *db, const uint64_t taken[BM_DB_C__COUNT]);
void bm__deferred_add_to(struct bm_db *db, struct bm_db_status *s);

/* ---- The SQLite backend ---------------------------------------------------------------------- */
extern const struct bm__store_ops bm__sq_ops;
/* bm_db_open's SQLite half: path is a file. */
bm_err bm__sq_open(const char *path, const struct bm_db_options *opt, struct bm_db **out,
                   struct bm_errmsg *em);
void bm__sq_close(struct bm_db *db);
bm_err bm__sq_commit_object(struct bm_db *db, const struct bm_db_object *obj,
                            const char *message_id, uint64_t size, const struct bm_agg *delta,
                            const struct bm_ingest_stats *stats, int64_t now,
                            enum bm_db_commit_result *result, struct bm_errmsg *em);
bm_err bm__sq_is_processed(struct bm_db *db, const struct bm_db_object *obj, bool *out,
                           struct bm_errmsg *em);
bm_err bm__sq_record_failure(struct bm_db *db, const struct bm_db_object *obj, bm_err code,
                             const char *message, int64_t now, long max_attempts, long *attempts,
                             bool *quarantined, struct bm_errmsg *em);
bm_err bm__sq_is_quarantined(struct bm_db *db, const struct bm_db_object *obj, bool *out,
                             struct bm_errmsg *em);
bm_err bm__sq_quarantined(struct bm_db *db, size_t max, struct bm_db_failures **out,
                          struct bm_errmsg *em);
bm_err bm__sq_flush_counters(struct bm_db *db, struct bm_errmsg *em);
bm_err bm__sq_status(struct bm_db *db, struct bm_db_status *out, struct bm_errmsg *em);
bm_err bm__sq_outbox_pending(struct bm_db *db, uint64_t *out, struct bm_errmsg *em);
bm_err bm__sq_outbox_fetch(struct bm_db *db, int64_t after_id, size_t max_rows,
                           struct bm_db_outbox **out, struct bm_errmsg *em);
bm_err bm__sq_outbox_mark(struct bm_db *db, const int64_t *ids, size_t n,
                          enum bm_db_outbox_state state, uint64_t datums, uint64_t requests,
                          struct bm_errmsg *em);
bm_err bm__sq_outbox_claim(struct bm_db *db, const char *claim, const int64_t *ids, size_t n,
                           size_t nreq, int64_t now, struct bm_errmsg *em);
bm_err bm__sq_outbox_send_begin(struct bm_db *db, const char *claim, size_t req, int *attempt,
                                struct bm_errmsg *em);
bm_err bm__sq_outbox_send_done(struct bm_db *db, const char *claim, size_t req, bool accepted,
                               uint64_t datums, bool *finished, struct bm_errmsg *em);
bm_err bm__sq_outbox_send_failed(struct bm_db *db, const char *claim, size_t req, bool *released,
                                 struct bm_errmsg *em);
bm_err bm__sq_outbox_claims(struct bm_db *db, struct bm_db_claims **out, struct bm_errmsg *em);
bm_err bm__sq_prune(struct bm_db *db, int64_t cutoff, struct bm_db_prune_stats *stats,
                    struct bm_errmsg *em);
bm_err bm__sq_cw_series_recent(struct bm_db *db, int64_t since, bm_db_cw_series_fn fn, void *ctx,
                               struct bm_errmsg *em);
bm_err bm__sq_cw_series_record(struct bm_db *db, const struct bm_db_cw_series *v, size_t n,
                               bool held, int64_t now, int64_t month_start, struct bm_errmsg *em);
bm_err bm__sq_cw_budget(struct bm_db *db, int64_t since, int64_t month_start, bm_db_cw_set_fn fn,
                        void *ctx, struct bm_db_cw_budget *out, struct bm_errmsg *em);
bm_err bm__sq_query(struct bm_db *db, const struct bm_db_query *q, struct bm_agg **out,
                    struct bm_errmsg *em);

/* ---- The PostgreSQL backend (pg_store.c; pg_int.h has its libpq layer) -------------------- */
/* bm_db_open's PostgreSQL half: url is a postgres:// or postgresql:// URL. */
bm_err bm__pgs_open(const char *url, const struct bm_db_options *opt, struct bm_db **out,
                    struct bm_errmsg *em);
/* Its operations that take the handle (pg_prune.c, pg_cw_series.c). */
bm_err bm__pgs_prune(struct bm_db *db, int64_t cutoff, struct bm_db_prune_stats *stats,
                     struct bm_errmsg *em);
bm_err bm__pgs_cw_series_recent(struct bm_db *db, int64_t since, bm_db_cw_series_fn fn, void *ctx,
                                struct bm_errmsg *em);
bm_err bm__pgs_cw_series_record(struct bm_db *db, const struct bm_db_cw_series *v, size_t n,
                                bool held, int64_t now, int64_t month_start, struct bm_errmsg *em);
bm_err bm__pgs_cw_budget(struct bm_db *db, int64_t since, int64_t month_start, bm_db_cw_set_fn fn,
                         void *ctx, struct bm_db_cw_budget *out, struct bm_errmsg *em);
/* Results both backends build: the public struct first, so its pointer is the allocation,
 * then the strings it points at (freed by bm_db_failures_free, bm_db_outbox_free). */
struct bm__failures {
    struct bm_db_failures pub;
    struct bm__arena arena;
};
struct bm__outbox {
    struct bm_db_outbox pub;
    struct bm__arena arena;
};

/* Maps a SQLite result code to bm_err (BUSY/LOCKED -> BM_E_STORAGE_BUSY, NOMEM ->
 * BM_E_NOMEM, others BM_E_STORAGE) and copies the connection's message into em at once. */
bm_err bm__sql_err(struct bm__conn *c, int rc, const char *what, struct bm_errmsg *em);
/* Borrows a connection (opening one while under the pool bound, else waiting) / returns it,
 * resetting any statement left running so no read snapshot outlives a call. */
bm_err bm__conn_get(struct bm_db *db, struct bm__conn **out, struct bm_errmsg *em);
void bm__conn_put(struct bm_db *db, struct bm__conn *c);
/* The prepared statement id of c, reset with its bindings cleared. */
bm_err bm__stmt(struct bm__conn *c, enum bm__st id, sqlite3_stmt **out, struct bm_errmsg *em);
/* Steps a statement that returns no row (or whose rows are ignored) and resets it. */
bm_err bm__run(struct bm__conn *c, sqlite3_stmt *st, const char *what, struct bm_errmsg *em);
/* Binds a borrowed byte string (SQLITE_TRANSIENT: the caller's buffer may go away). */
int bm__bind_str(sqlite3_stmt *st, int i, struct bm_str s);
/* Write transactions: begin takes the writer lock, then a connection, and runs BEGIN
 * IMMEDIATE; end commits when rc is BM_OK (writing the deferred counters first) or rolls back,
 * returns the connection, releases the lock and returns rc or the commit's error. */
bm_err bm__tx_begin(struct bm_db *db, struct bm__conn **c, struct bm_errmsg *em);
bm_err bm__tx_end(struct bm_db *db, struct bm__conn *c, bm_err rc, struct bm_errmsg *em);
/* Adds v to the stored counter c inside the current write transaction. */
bm_err bm__counter_add(struct bm__conn *c, enum bm_db_counter ctr, int64_t v, struct bm_errmsg *em);
/* Runs the schema migrations on c up to version to (bm_db_schema_version() normally). */
bm_err bm__migrate(struct bm_db *db, int to, struct bm_errmsg *em);
/* The interned id of string s, inserting it when new (inside a write transaction, on the
 * connection c that holds it). s must stay valid until the transaction ends. */
bm_err bm__intern(struct bm_db *db, struct bm__conn *c, struct bm_str s, int64_t *id,
                  struct bm_errmsg *em);
/* Ends the current write transaction's use of the cache: committed publishes the ids it met,
 * otherwise they are forgotten. Called by bm__tx_end under the writer lock. */
void bm__interns_end(struct bm__interns *t, bool committed);
void bm__interns_cleanup(struct bm__interns *t);
/* The name of interned id (committed, read by a query on c) into *out, valid as above; an
 * unknown id gives "". */
bm_err bm__name_of(struct bm__conn *c, int64_t id, struct bm_str *out, struct bm_errmsg *em);
void bm__names_room(struct bm__names *t, size_t n);
void bm__names_cleanup(struct bm__names *t);
/* Stored code of a profile type and back (stable across enum changes). */
int bm__ptype_code(enum bm_profile_type t);
enum bm_profile_type bm__ptype_from_code(int64_t code);

/* Copies len bytes of p (plus a NUL) into a; NULL on allocation failure. */
const char *bm__arena_copy(struct bm__arena *a, const void *p, size_t len);
void bm__arena_free(struct bm__arena *a);

/* ---- Test hooks (unit tests only) --------------------------------------------------------- */
/* Creates or migrates the database at path to schema version `version` only (an old bmas). */
bm_err bm__db_create_at(const char *path, int version, struct bm_errmsg *em);
/* Runs SQL statements on the database at path with a private connection. */
bm_err bm__db_exec(const char *path, const char *sql, struct bm_errmsg *em);
/* Routes SQLite's allocator through a wrapper whose n-th allocation from now fails (-1 = off);
 * install must run before any other SQLite use in the process. */
void bm__db_fault_install(void);
void bm__db_fault_after(long n);
/* The plan of q as bm_db_query would run it now, in b: per part, "+" or "-" (added or
 * subtracted) and its EXPLAIN QUERY PLAN details; parts joined by "; ". */
bm_err bm__db_query_plan(struct bm_db *db, const struct bm_db_query *q, struct bm_buf *b,
                         struct bm_errmsg *em);

#endif
