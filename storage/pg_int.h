/* pg_int.h: the PostgreSQL store's private declarations (storage/ and its unit tests only): the
 * libpq layer of pg.c (URL check, connection pool, transactions retried on serialization
 * failures and deadlocks) and pg_exec.c (statements, the pipeline), and the schema,
 * exactly-once commit and publisher lease of pg_schema.c and pg_commit.c. No libpq type
 * leaves storage/: the public interface is bm_storage.h's, through pg_store.c. */
#ifndef BM_STORAGE_PG_INT_H
#define BM_STORAGE_PG_INT_H

#include "storage/bm_storage.h"

#include <libpq-fe.h>

/* ---- URL (pg.c) ---------------------------------------------------------------------------- */
/* Whether s names a PostgreSQL store (starts with postgres:// or postgresql://): what selects
 * this backend in BMAS_DB. Pure. */
bool bm__pg_url_is(const char *s);
/* Checks url (postgres:// or postgresql://, parsed by libpq) and writes a description without
 * the password ("postgresql://user@host:port/db") into desc (cap bytes), for messages and
 * /status. BM_E_CONFIG with em naming BMAS_DB, never the password. Pure; thread-safe. */
bm_err bm__pg_url_check(const char *url, char *desc, size_t cap, struct bm_errmsg *em);

/* ---- Pool and transactions (pg.c) ------------------------------------------------------- */
struct bm_pg_options {
    int max_connections;   /* pool bound; 0 = 8. A call waits when all are in use. */
    int max_attempts;      /* tries of a transaction on 40001/40P01; 0 = 8 */
    int connect_timeout_s; /* libpq connect_timeout; 0 = 5 */
    int attr_max_values;   /* distinct values kept per attribution key; 0 = 100 */
};
struct bm_pg;
/* Checks url (as bm__pg_url_check) and opens one connection to prove the server answers;
 * the pool opens the others on demand, up to max_connections. opt may be NULL. A server away
 * or refusing is BM_E_STORAGE_BUSY, bad credentials or database BM_E_STORAGE, a bad URL
 * BM_E_CONFIG; em names the server without the password. On success the caller owns *out
 * (bm__pg_close). */
bm_err bm__pg_open(const char *url, const struct bm_pg_options *opt, struct bm_pg **out,
                   struct bm_errmsg *em);
/* Closes every connection and zeroes the URL. Accepts NULL; no call may be running. */
void bm__pg_close(struct bm_pg *pg);
/* The server described without the password (static for the handle's life). */
const char *bm__pg_desc(const struct bm_pg *pg);
/* The handle's attr_max_values (defaulted). */
int bm__pg_attr_max(const struct bm_pg *pg);

/* Statements bm__pg_pipe sends before it reads their answers. */
#define BM__PG_PIPE_MAX 128
/* One transaction attempt, handed to a bm__pg_tx_fn: run statements with bm__pg_exec. */
struct bm__pg_tx {
    struct bm_pg *pg;
    PGconn *conn;
    int attempt;      /* 1 for the first try */
    char sqlstate[6]; /* of the statement that failed last ("" when none did) */
    int piped;        /* statements sent by bm__pg_pipe whose answers are not read yet */
    const char *pipe_sql[BM__PG_PIPE_MAX]; /* their text, to name the one that failed */
};
/* Does the transaction's work; a non-OK return rolls it back. It may run several times (each
 * attempt from scratch, after a rollback), so it must not keep effects outside the database
 * from an earlier attempt: reset its outputs at the start of each. */
typedef bm_err (*bm__pg_tx_fn)(struct bm__pg_tx *t, void *ctx, struct bm_errmsg *em);
/* Runs fn between BEGIN (at isolation level iso: "READ COMMITTED", "SERIALIZABLE"; NULL for
 * the server's default) and COMMIT on a pooled connection. A serialization failure (40001) or
 * deadlock (40P01), in fn or at COMMIT, rolls back and runs it again after a full-jitter
 * backoff, up to max_attempts in all (then BM_E_STORAGE_BUSY). A connection lost before the
 * transaction began is reopened once. Returns fn's error or the mapped server error.
 * Thread-safe. */
bm_err bm__pg_tx_run(struct bm_pg *pg, const char *iso, bm__pg_tx_fn fn, void *ctx,
                     struct bm_errmsg *em);

/* Runs fn, which must only read with ONE statement, on a pooled connection without BEGIN and
 * COMMIT (one round trip instead of three: the duplicate check on every delivery); on a
 * connection the server dropped, once more on a reopened one. Thread-safe. */
bm_err bm__pg_read(struct bm_pg *pg, bm__pg_tx_fn fn, void *ctx, struct bm_errmsg *em);
/* Transactions that lost a race (40001, 40P01) and were rolled back, since bm__pg_open (the
 * last attempt of one that gave up included). Thread-safe. */
uint64_t bm__pg_retries(struct bm_pg *pg);
/* Runs fn on one pooled connection outside any transaction: a session, for what must span
 * several transactions (a session-level advisory lock). fn runs its transactions with
 * bm__pg_tx_in(t, ...) and its session statements with bm__pg_exec(t, ...). Afterwards every
 * advisory lock of the session is released (or the connection closed). Thread-safe. */
bm_err bm__pg_session(struct bm_pg *pg, bm__pg_tx_fn fn, void *ctx, struct bm_errmsg *em);
/* bm__pg_tx_run on a session's connection (inside a bm__pg_session fn). */
bm_err bm__pg_tx_in(struct bm__pg_tx *session, const char *iso, bm__pg_tx_fn fn, void *ctx,
                    struct bm_errmsg *em);

/* ---- Statements (pg_exec.c) ---------------------------------------------------------------- */
/* Parameters of one statement: integers as decimal text, strings as binary text (length
 * given, so they need no NUL), NULL as NULL. */
#define BM__PG_MAXP 32
struct bm__pg_params {
    int n;
    const char *v[BM__PG_MAXP];
    int len[BM__PG_MAXP];
    int fmt[BM__PG_MAXP];
    char num[BM__PG_MAXP][24];
};
void bm__pg_p_int(struct bm__pg_params *p, int64_t v);
void bm__pg_p_str(struct bm__pg_params *p, struct bm_str s);
void bm__pg_p_null(struct bm__pg_params *p);
/* The n integers v as one bigint[] parameter (text form "{1,2,3}", written into b, which must
 * outlive the statement's sending): one statement for a set of rows (id = ANY($k::bigint[]))
 * where a statement per row was a round trip each. BM_E_NOMEM when b cannot grow. */
bm_err bm__pg_p_ints(struct bm__pg_params *p, const int64_t *v, size_t n, struct bm_buf *b,
                     struct bm_errmsg *em);
/* An object's bucket, key and version: three parameters, in that order. */
void bm__pg_p_object(struct bm__pg_params *p, const struct bm_db_object *o);
/* A value in text format (s NUL-terminated, not copied: it must outlive the statement's
 * sending), for what has no binary form here: arrays, as their literal "{...}". */
void bm__pg_p_text(struct bm__pg_params *p, const char *s);
/* Runs sql with params p (may be NULL) on t's connection. On success *res (may be NULL) owns
 * the result (PQclear) and *rows (may be NULL) is the number of rows it affected or returned.
 * A server error copies its SQLSTATE into t->sqlstate and is mapped by bm__pg_err. */
bm_err bm__pg_exec(struct bm__pg_tx *t, const char *sql, const struct bm__pg_params *p,
                   PGresult **res, int64_t *rows, struct bm_errmsg *em);
/* Sends sql with p in libpq's pipeline mode without waiting for its answer: for statements
 * whose only answer is success or failure (upserts, deletes), which a commit sends by the
 * dozen; one round trip then serves them all. The answers are read, in order, by
 * bm__pg_pipe_flush, which bm__pg_exec (COMMIT included) calls first, so statements still run
 * in the order given and a failure still fails the transaction; it is reported there (the
 * first one, its SQLSTATE in t->sqlstate, as bm__pg_exec would). Every BM__PG_PIPE_MAX
 * statements the answers are read, to bound what waits in the buffers. sql must outlive the
 * answers (a literal or a static array). */
bm_err bm__pg_pipe(struct bm__pg_tx *t, const char *sql, const struct bm__pg_params *p,
                   struct bm_errmsg *em);
/* Reads the answers of the statements bm__pg_pipe sent and leaves pipeline mode; BM_OK when
 * there were none. */
bm_err bm__pg_pipe_flush(struct bm__pg_tx *t, struct bm_errmsg *em);
/* A one-value query, for bm__pg_tx_run / bm__pg_read with bm__pg_one_fn as the function:
 * runs sql with p; found says whether a first row came with a non-NULL first column, v is that
 * column as an integer (0 when not found). */
struct bm__pg_one {
    const char *sql;
    struct bm__pg_params p;
    bool found;
    int64_t v;
};
bm_err bm__pg_one_fn(struct bm__pg_tx *t, void *ctx, struct bm_errmsg *em);
/* Maps a failed result (or, with r NULL, the connection's state) to bm_err with a message
 * naming what, the server's description and the server's message (never the password):
 * connection lost or refused, too many connections, lock timeouts, cancelled statements,
 * serialization failures and deadlocks -> BM_E_STORAGE_BUSY; out of memory in libpq ->
 * BM_E_NOMEM; anything else (authentication, constraint, syntax) -> BM_E_STORAGE. */
bm_err bm__pg_err(struct bm_pg *pg, PGconn *c, const PGresult *r, const char *what,
                  struct bm_errmsg *em);

/* ---- Schema, commit (pg_commit.c), lease (pg_schema.c) --------------------------------- */
/* The schema version this code writes (independent of SQLite's). */
int bm__pg_schema_version(void);
/* Migrates the database to version `to` (bm__pg_schema_version() normally), each step in its
 * own transaction, under an advisory lock so instances starting together migrate once. A
 * database at a newer version than this code knows is refused with BM_E_STORAGE. */
bm_err bm__pg_migrate(struct bm_pg *pg, int to, struct bm_errmsg *em);
/* The database's schema version into *out (0: empty database). */
bm_err bm__pg_version(struct bm_pg *pg, int *out, struct bm_errmsg *em);
/* bm_db_commit_object's contract (bm_storage.h) on PostgreSQL: one transaction records obj as
 * processed with INSERT ... ON CONFLICT DO NOTHING and, only when that inserted the row, adds
 * delta to the minute, hour, day and all-time tables (cost, residency and attribution
 * included; an attribution value past attr_max_values is stored as "other"), queues it in the
 * outbox, clears the object's failure and counts it; a duplicate only counts objects.duplicates.
 * Concurrent commits of one object, from any instance: exactly one is BM_DB_COMMITTED. Thread-safe.
 */
/* deferred[c] (BM_DB_C__COUNT counts, may be NULL) is added to each counter in the same
 * transaction: how bm_db_count's deferred counts ride along with a commit. */
bm_err bm__pg_commit_object(struct bm_pg *pg, const struct bm_db_object *obj,
                            const char *message_id, uint64_t size, const struct bm_agg *delta,
                            const struct bm_ingest_stats *stats, int64_t now,
                            const uint64_t *deferred, enum bm_db_commit_result *result,
                            struct bm_errmsg *em);
/* Adds v to the stored counter c inside transaction t (pg_commit.c). */
bm_err bm__pg_counter_add(struct bm__pg_tx *t, enum bm_db_counter c, int64_t v,
                          struct bm_errmsg *em);
/* bm_db_query's contract on PostgreSQL (pg_query.c). */
bm_err bm__pg_query(struct bm_pg *pg, const struct bm_db_query *q, struct bm_agg **out,
                    struct bm_errmsg *em);
/* The outbox operations of bm_storage.h on PostgreSQL, same contracts (pg_outbox.c). */
bm_err bm__pg_outbox_fetch(struct bm_pg *pg, int64_t after_id, size_t max_rows,
                           struct bm_db_outbox **out, struct bm_errmsg *em);
bm_err bm__pg_outbox_mark(struct bm_pg *pg, const int64_t *ids, size_t n,
                          enum bm_db_outbox_state state, uint64_t datums, uint64_t requests,
                          struct bm_errmsg *em);
bm_err bm__pg_outbox_claim(struct bm_pg *pg, const char *claim, const int64_t *ids, size_t n,
                           size_t nreq, int64_t now, struct bm_errmsg *em);
bm_err bm__pg_outbox_send_begin(struct bm_pg *pg, const char *claim, size_t req, int *attempt,
                                struct bm_errmsg *em);
bm_err bm__pg_outbox_send_done(struct bm_pg *pg, const char *claim, size_t req, bool accepted,
                               uint64_t datums, bool *finished, struct bm_errmsg *em);
bm_err bm__pg_outbox_send_failed(struct bm_pg *pg, const char *claim, size_t req, bool *released,
                                 struct bm_errmsg *em);
bm_err bm__pg_outbox_claims(struct bm_pg *pg, struct bm_db_claims **out, struct bm_errmsg *em);
/* The stored value of counter c into *out. */
bm_err bm__pg_counter(struct bm_pg *pg, enum bm_db_counter c, int64_t *out, struct bm_errmsg *em);

/* The publisher lease: one row per name; the holder publishes until expires_at (epoch ms). */
#define BM__PG_SERVER_CLOCK INT64_MIN /* as now_ms: use the database server's clock */
/* Takes or renews the lease name for holder until now_ms + ttl_ms: granted when nobody holds
 * it, holder already does, or the other holder's lease expired at or before now_ms. *held
 * says whether holder has it now. now_ms BM__PG_SERVER_CLOCK reads the server's clock, one
 * clock for every instance (no skew between machines). Thread-safe. */
bm_err bm__pg_lease_acquire(struct bm_pg *pg, const char *name, const char *holder, int64_t now_ms,
                            int64_t ttl_ms, bool *held, struct bm_errmsg *em);
/* Gives the lease up if holder has it (*released, may be NULL, says whether it did), so a
 * stand-by takes over at its next try instead of after the expiry. */
bm_err bm__pg_lease_release(struct bm_pg *pg, const char *name, const char *holder, bool *released,
                            struct bm_errmsg *em);
/* The current holder into holder (cap bytes, at most 255 used; "" when none) and whether its
 * lease is still valid at now_ms, for /status; both written only on success. */
bm_err bm__pg_lease_holder(struct bm_pg *pg, const char *name, int64_t now_ms, char *holder,
                           size_t cap, bool *valid, struct bm_errmsg *em);

#endif
