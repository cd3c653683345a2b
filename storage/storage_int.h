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

struct bm_db {
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
