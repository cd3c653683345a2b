/* bm_storage.h: the one public header of libbm_storage, the store behind bmas (an SQLite file,
 * or PostgreSQL for several instances sharing one store):
 * exactly-once accounting of log objects, the CloudWatch publish outbox, failure and quarantine
 * bookkeeping, persistent counters and the GET /aggregates queries. No SQL or sqlite3 type
 * crosses this header; every function returns a bm_err (BM_E_STORAGE_BUSY, BM_E_STORAGE,
 * BM_E_NOMEM, ...) and fills an optional struct bm_errmsg with the database's own message. */
#ifndef BM_STORAGE_H
#define BM_STORAGE_H

#include "core/bm_aws.h" /* the series and CloudWatch's dimension sets the outbox stores */

/* Thread-safety of everything below: one struct bm_db may be used by any number of threads at
 * once (HTTP thread pool, fetch workers, the publisher). Each call borrows one of a bounded pool
 * of connections for its duration. SQLite: writers are serialised; readers never wait for them
 * (WAL). PostgreSQL: writers of different rows run at once, from any number of instances, and
 * readers never wait for them (MVCC). Only bm_db_open and bm_db_close must not race with other
 * calls on the same handle. */
struct bm_db;

struct bm_db_options {
    /* Pool bound; 0 = 16 on SQLite, 8 on PostgreSQL. A call waits when all are in use; no
     * call holds one connection while it waits for another, so 1 works (serially). */
    int max_connections;
    int busy_timeout_ms; /* wait for a lock held by another process; 0 = 5000 */
    bool sync_full;      /* synchronous=FULL: durable across power loss (see db.c), slower */
    /* Distinct values kept per attribution key (BMAS_ATTRIBUTION_MAX_VALUES); a new value
     * past it is stored as "other". 0 = 100. */
    int attr_max_values;
};

/* Opens the store BMAS_DB names and migrates its schema to the current version, each step in
 * its own transaction. path is an SQLite file (created if needed, in WAL mode) or a
 * postgres:// or postgresql:// URL (a PostgreSQL database; a bad URL is BM_E_CONFIG, a server
 * away BM_E_STORAGE_BUSY, and a store this build cannot fully serve yet BM_E_CONFIG naming
 * the missing operation). opt may be NULL for the defaults. A database written by a newer
 * bmas (a higher schema version) is refused with BM_E_STORAGE and a message saying so. On
 * success the caller owns *out and releases it with bm_db_close. */
bm_err bm_db_open(const char *path, const struct bm_db_options *opt, struct bm_db **out,
                  struct bm_errmsg *em);
/* Flushes deferred counters, finalises every statement and closes every connection. Accepts
 * NULL. No other call on db may be running or start afterwards. */
void bm_db_close(struct bm_db *db);
/* The store for logs and /status: the SQLite file's path, or the PostgreSQL URL without its
 * password ("postgresql://user@host:port/db"). Valid while db is open. Thread-safe. */
const char *bm_db_describe(const struct bm_db *db);
/* The schema version this code writes (PRAGMA user_version). */
int bm_db_schema_version(void);

/* ------------------------------------------------------------------------------------------ */
/* An S3 object: (bucket, key, version). version is the S3 versionId when present, else the ETag
 * without quotes, else "": the same key with a new version or ETag is a new object. Borrowed
 * byte strings; bm_db_object_init fills one from notification fields. */
struct bm_db_object {
    struct bm_str bucket, key, version;
};
/* Slices bucket, key and the version rule above (version_id and etag may be NULL or ""). The
 * struct borrows the arguments, which must outlive its use. */
void bm_db_object_init(struct bm_db_object *o, const char *bucket, const char *key,
                       const char *version_id, const char *etag);

enum bm_db_commit_result {
    BM_DB_COMMITTED, /* first commit of this object: its delta was applied */
    BM_DB_DUPLICATE  /* already processed: nothing changed but objects.duplicates */
};

/* Exactly-once commit of one ingested object, in ONE transaction: records the object as
 * processed and, only if it was not already, adds delta to the aggregates (sums add, min/max
 * combine), appends one pending outbox row per series of delta, clears the object's failure
 * row and adds stats to the persistent counters (objects.processed, records.processed/invalid,
 * errors.BMAS-0xx). If the object was already processed, only objects.duplicates grows and
 * *result is BM_DB_DUPLICATE. Concurrent commits of one object: exactly one is COMMITTED. A
 * crash at any point leaves all of the object's effect or none. message_id (may be NULL) and
 * size are kept for diagnostics; stats may be NULL; now is epoch seconds. Retry on
 * BM_E_STORAGE_BUSY. *result is written only on success. Thread-safe. */
bm_err bm_db_commit_object(struct bm_db *db, const struct bm_db_object *obj, const char *message_id,
                           uint64_t size, const struct bm_agg *delta,
                           const struct bm_ingest_stats *stats, int64_t now,
                           enum bm_db_commit_result *result, struct bm_errmsg *em);
/* Sets *out to whether obj has a processed row: one indexed point lookup on a prepared
 * statement (microseconds), meant to run before fetching so duplicate deliveries never reach
 * S3. Thread-safe; never waits for writers. */
bm_err bm_db_is_processed(struct bm_db *db, const struct bm_db_object *obj, bool *out,
                          struct bm_errmsg *em);

/* ------------------------------------------------------------------------------------------ */
/* Persistent counters, reported by GET /status across restarts. Stored by name (the names
 * below, which are the /status JSON paths); errors are one counter per wire code,
 * "errors.BMAS-001" .. at BM_DB_C_ERRORS + bm_err_wire_index(code). */
enum bm_db_counter {
    BM_DB_C_OBJECTS_PROCESSED,   /* "objects.processed": committed objects */
    BM_DB_C_OBJECTS_DUPLICATES,  /* "objects.duplicates": deliveries of processed objects */
    BM_DB_C_OBJECTS_IGNORED,     /* "objects.ignored": TestEvent, non-log keys */
    BM_DB_C_OBJECTS_FAILED,      /* "objects.failed": failed attempts (bm_db_record_failure) */
    BM_DB_C_OBJECTS_QUARANTINED, /* "objects.quarantined": objects that reached the maximum */
    BM_DB_C_RECORDS_PROCESSED,   /* "records.processed": records aggregated */
    BM_DB_C_RECORDS_INVALID,     /* "records.invalid": records skipped */
    BM_DB_C_PUBLISH_PENDING,     /* "publish.pending": outbox rows not yet marked */
    BM_DB_C_PUBLISH_PUBLISHED,   /* "publish.published": datums CloudWatch accepted */
    BM_DB_C_PUBLISH_REQUESTS,    /* "publish.requests": PutMetricData calls that succeeded */
    BM_DB_C_PUBLISH_DROPPED,     /* "publish.dropped": outbox rows too old for CloudWatch */
    BM_DB_C_PUBLISH_REJECTED,    /* "publish.rejected": outbox rows CloudWatch refused */
    BM_DB_C_ERRORS,              /* first of BM_ERR_WIRE_N: "errors.BMAS-001", ... */
    BM_DB_C__COUNT = BM_DB_C_ERRORS + BM_ERR_WIRE_N
};
/* The stored name of counter c ("objects.processed", "errors.BMAS-007"); static storage. */
const char *bm_db_counter_name(enum bm_db_counter c);

/* Adds n to counter c in memory, cheaply (one atomic add, no I/O), for hot paths such as
 * duplicate deliveries caught by bm_db_is_processed at 10k/s. Deferred counts are written by
 * the next write transaction of any kind, by bm_db_flush_counters and by bm_db_close, and are
 * included in bm_db_status meanwhile; a crash loses at most the unwritten ones. Thread-safe. */
void bm_db_count(struct bm_db *db, enum bm_db_counter c, uint64_t n);
/* bm_db_count(db, BM_DB_C_OBJECTS_IGNORED, 1): an object acknowledged without ingest
 * (s3:TestEvent, a key that is no log). Thread-safe. */
void bm_db_count_ignored(struct bm_db *db);
/* Writes the deferred counts now (one transaction). Thread-safe. */
bm_err bm_db_flush_counters(struct bm_db *db, struct bm_errmsg *em);

struct bm_db_status {
    uint64_t c[BM_DB_C__COUNT]; /* by enum bm_db_counter: stored plus deferred */
};
/* Reads every counter: one scan of a table of a few dozen rows, no big table touched.
 * Thread-safe; never waits for writers. */
bm_err bm_db_status(struct bm_db *db, struct bm_db_status *out, struct bm_errmsg *em);

/* ------------------------------------------------------------------------------------------ */
/* Failures and quarantine. */
/* Records a failed attempt at obj: increments its attempt count, keeps code's wire code and
 * message (may be NULL) as the last error, and quarantines it when attempts reach max_attempts
 * (MAX_RETRY_ATTEMPTS; <= 0 means never). Counts objects.failed and errors.<wire code>, and
 * objects.quarantined when this attempt quarantined it. *attempts and *quarantined (each may
 * be NULL) get the new state. A later successful commit deletes the failure row. Thread-safe. */
bm_err bm_db_record_failure(struct bm_db *db, const struct bm_db_object *obj, bm_err code,
                            const char *message, int64_t now, long max_attempts, long *attempts,
                            bool *quarantined, struct bm_errmsg *em);
/* Sets *out to whether obj is quarantined (point lookup). Thread-safe. */
bm_err bm_db_is_quarantined(struct bm_db *db, const struct bm_db_object *obj, bool *out,
                            struct bm_errmsg *em);

struct bm_db_failure {
    struct bm_db_object obj; /* strings owned by the list, NUL-terminated */
    long attempts;
    bool quarantined;
    char code[12]; /* last wire code, "BMAS-001" */
    const char *message;
    int64_t first_at, last_at;
};
struct bm_db_failures {
    size_t n;
    struct bm_db_failure *v; /* most recent last_at first */
};
/* The max most recently failed quarantined objects, for /status. On success the caller owns
 * *out and frees it with bm_db_failures_free. Thread-safe. */
bm_err bm_db_quarantined(struct bm_db *db, size_t max, struct bm_db_failures **out,
                         struct bm_errmsg *em);
/* Frees a list from bm_db_quarantined; accepts NULL. */
void bm_db_failures_free(struct bm_db_failures *f);

/* ------------------------------------------------------------------------------------------ */
/* The publish outbox: one row per series of each committed object's delta, oldest first. */
enum bm_db_outbox_state {
    BM_DB_OUTBOX_PENDING,
    BM_DB_OUTBOX_PUBLISHED, /* CloudWatch accepted it: the row is deleted */
    BM_DB_OUTBOX_DROPPED,   /* too old for CloudWatch: kept for inspection until pruned */
    BM_DB_OUTBOX_REJECTED,  /* CloudWatch refused it for good: kept until pruned */
    BM_DB_OUTBOX_CLAIMED    /* carried by a claim (below): still pending, never fetched */
};
struct bm_db_outbox_row {
    int64_t id;
    int64_t created_at;
    struct bm_series s; /* key strings owned by the batch, NUL-terminated */
};
struct bm_db_outbox {
    size_t n;
    struct bm_db_outbox_row *rows; /* ascending id: oldest first */
};
/* Up to max_rows pending (not claimed) rows with id > after_id (0: from the start), oldest
 * first (an empty batch when none). On success the caller owns *out and frees it with
 * bm_db_outbox_free. Meant for the one publisher thread, but thread-safe. */
bm_err bm_db_outbox_fetch(struct bm_db *db, int64_t after_id, size_t max_rows,
                          struct bm_db_outbox **out, struct bm_errmsg *em);
/* Frees a batch from bm_db_outbox_fetch; accepts NULL. */
void bm_db_outbox_free(struct bm_db_outbox *ob);
/* Marks the n rows ids (still pending, not claimed) as state in one transaction: rows that no
 * call will carry (DROPPED: too old; REJECTED: nothing CloudWatch would take), or, for tools
 * and tests, rows published without a claim. PUBLISHED deletes the rows;
 * DROPPED and REJECTED keep them and count them in publish.dropped/rejected. datums and
 * requests are added to publish.published and publish.requests. Ids that are no longer pending
 * are skipped. Rows never marked stay pending across restarts. Thread-safe. */
bm_err bm_db_outbox_mark(struct bm_db *db, const int64_t *ids, size_t n,
                         enum bm_db_outbox_state state, uint64_t datums, uint64_t requests,
                         struct bm_errmsg *em);
/* Claims: how rows go to CloudWatch without a failing database multiplying them. The states:
 *
 *   pending --claim--> claimed(claim id; requests sent, attempt) --all requests answered-->
 *   deleted (or REJECTED when CloudWatch refused one of its calls for good)
 *
 * A claim is the rows of one plan (bm_cw_plan_make: requests 0..nreq-1, re-planned from its
 * rows alone into the same calls). Before request k is sent, bm_db_outbox_send_begin commits
 * attempt + 1; after CloudWatch answered, bm_db_outbox_send_done (accepted or refused) or
 * bm_db_outbox_send_failed (a failure: nothing was counted) commits the outcome. When any of
 * these cannot be written, the caller sends nothing more. A claim left with attempt > 0 (a
 * crash, or an outcome that could not be written) had request `sent` go out with no record of
 * the answer: re-sending it once is the one duplicate allowed; with attempt >= 2 it was
 * already re-sent once and the publisher skips it rather than send a third copy. Claim ids are
 * the caller's (unique, at most 47 bytes). All calls are one transaction each; thread-safe. */

/* Claims the n pending rows ids under claim (a plan of nreq >= 1 requests) at time now. All or
 * nothing: BM_E_INTERNAL (nothing claimed) when a row is no longer pending. */
bm_err bm_db_outbox_claim(struct bm_db *db, const char *claim, const int64_t *ids, size_t n,
                          size_t nreq, int64_t now, struct bm_errmsg *em);
/* Records that request req (which must be the claim's next, `sent`) is about to be sent:
 * attempt + 1, the new value in *attempt (may be NULL). BM_E_INTERNAL for another req or an
 * unknown claim. Send only when this returned BM_OK. */
bm_err bm_db_outbox_send_begin(struct bm_db *db, const char *claim, size_t req, int *attempt,
                               struct bm_errmsg *em);
/* CloudWatch answered request req: accepted (datums counted in publish.published, one call in
 * publish.requests) or refused for good (accepted false). sent = req + 1, attempt 0. After
 * the last request the claim ends: its rows are deleted (published), or kept as REJECTED
 * when any of its calls was refused, and leave publish.pending; *finished (may be NULL) says
 * whether it ended. */
bm_err bm_db_outbox_send_done(struct bm_db *db, const char *claim, size_t req, bool accepted,
                              uint64_t datums, bool *finished, struct bm_errmsg *em);
/* Request req failed (CloudWatch answered an error, or could not be reached, after the
 * sender's own retries): nothing of it was counted. With no request of the claim sent yet the
 * claim is released (its rows pending again, to be re-planned with newer rows; *released
 * true); else attempt returns to 0 and the claim waits to be resumed at req. */
bm_err bm_db_outbox_send_failed(struct bm_db *db, const char *claim, size_t req, bool *released,
                                struct bm_errmsg *em);
/* ---- The publisher lease --------------------------------------------------------------------
 * Several instances on one shared store: exactly one publishes the outbox on its schedule,
 * the lease's holder. bm_db_publisher_lease takes the lease for instance_id (free, already
 * its own, or the holder's expired) or renews it, for ttl_ms milliseconds of the store's clock;
 * *held says whether instance_id holds it now and holder (cap bytes, may be NULL) names who
 * does ("" when nobody). bm_db_publisher_release gives it up if instance_id holds it, so a
 * stand-by takes over at its next try. On PostgreSQL the lease is a row timed by the server's
 * clock (instances' clocks need not agree). On SQLite the instance always holds it: one file
 * is one machine's store, and processes sharing it are kept from sending a row twice by the
 * outbox claims above, so there is nobody to stand by for. Thread-safe. */
bm_err bm_db_publisher_lease(struct bm_db *db, const char *instance_id, int64_t ttl_ms, bool *held,
                             char *holder, size_t cap, struct bm_errmsg *em);
bm_err bm_db_publisher_release(struct bm_db *db, const char *instance_id, struct bm_errmsg *em);
/* "sqlite" or "postgresql": the kind of store db is, for /status. Thread-safe. */
const char *bm_db_store_kind(const struct bm_db *db);

struct bm_db_claim {
    char id[48];
    size_t nreq, sent;
    int attempt;
    struct bm_db_outbox *rows; /* the claimed rows, ascending id */
};
struct bm_db_claims {
    size_t n;
    struct bm_db_claim *v; /* oldest first */
};
/* Every open claim with its rows (after a crash: what was in flight). On success the caller
 * owns *out and frees it with bm_db_claims_free. */
bm_err bm_db_outbox_claims(struct bm_db *db, struct bm_db_claims **out, struct bm_errmsg *em);
/* Frees a list from bm_db_outbox_claims; accepts NULL. */
void bm_db_claims_free(struct bm_db_claims *c);

/* Whether writes work, for /healthz and /status: BM_OK while the latest write transaction
 * committed; else the error of the latest one that failed for storage reasons
 * (BM_E_STORAGE_BUSY: locked by another process past the busy timeout; BM_E_STORAGE:
 * read-only, full, I/O), *since (may be NULL) when writes started failing (epoch seconds)
 * and em (may be NULL) SQLite's message. Healthy again at the next commit of any kind.
 * Thread-safe; never touches the database. */
bm_err bm_db_write_health(struct bm_db *db, int64_t *since, struct bm_errmsg *em);

/* Number of pending outbox rows (a maintained counter, not a scan). Thread-safe. */
bm_err bm_db_outbox_pending(struct bm_db *db, uint64_t *out, struct bm_errmsg *em);

/* ------------------------------------------------------------------------------------------ */
/* GET /aggregates. */
#define BM_DB_QUERY_MAX_ROWS 20000 /* default row cap: two weeks of minutes of one series */
struct bm_db_query {
    int64_t from, to; /* half-open [from, to) on bucket start; BM_NO_BUCKET = unbounded */
    const char *model_id, *source_region, *inference_region; /* exact match; NULL = any */
    enum bm_profile_type profile_type;                       /* BM_PT__COUNT = any */
    struct bm_group_by group_by;
    size_t max_rows; /* 0 = BM_DB_QUERY_MAX_ROWS */
    /* Skip min/max (left 0): GET /aggregates shows sums only. Besides reading less, sums can
     * be subtracted, so a range may be read as a rollup minus its outside (all time from the
     * all-time table, a day ragged by an hour as the day minus that hour): often 10x fewer
     * rows. Min/max queries read only whole units inside the range. */
    bool sums_only;
};
/* Sets q to "everything, no filter" with the given grouping. */
void bm_db_query_init(struct bm_db_query *q, const struct bm_group_by *g);
/* GET /aggregates' n parameters (decoded; each name once, the HTTP layer refuses repeats) into
 * *q, sums only: from and to (RFC 3339, to not before from), model_id, profile_type,
 * source_region, inference_region (exact filters) and group_by (BM_GROUP_BY_DEFAULT when
 * absent). q borrows the filter values. BM_E_BAD_REQUEST with em naming the parameter for an
 * unknown name or a bad value; *q is written only on success. Pure; thread-safe. */
bm_err bm_db_query_parse(struct bm_db_query *q, const char *const *names, const char *const *values,
                         size_t n, struct bm_errmsg *em);
/* The same, with group_by also taking attr.<key> for the attribution keys (may be NULL). */
bm_err bm_db_query_parse_attrs(struct bm_db_query *q, const struct bm_attr_keys *keys,
                               const char *const *names, const char *const *values, size_t n,
                               struct bm_errmsg *em);
/* Aggregates matching q: exactly what the minute rows at or after the prune cutoff give, read
 * from the coarsest tables that answer exactly, grouped the way bm_agg_regroup would group them
 * (fields not in group_by empty, bucket truncated to the minute or BM_NO_BUCKET, type
 * BM_PT__COUNT when not grouped by profile_type) and sorted by bm_agg_sort, ready for
 * bm_agg_write_json. More than
 * max_rows result rows fail with BM_E_BAD_REQUEST and a message naming the cap (no truncated
 * totals). On success the caller owns *out (bm_agg_free). Thread-safe; never waits for
 * writers. */
bm_err bm_db_query(struct bm_db *db, const struct bm_db_query *q, struct bm_agg **out,
                   struct bm_errmsg *em);

/* ------------------------------------------------------------------------------------------ */
/* CloudWatch series (cw_series.c): what BMAS_MAX_SERIES caps and /status's budget counts. A
 * series is a dimension set (its names joined by ",", "()" for none) with its values (the
 * set's number of them; the rest empty). */
struct bm_db_cw_series {
    const char *set;
    struct bm_str v[BM_DIMSET_MAX_DIMS];
};
/* Receives one series (strings valid during the call only) and whether it was published at
 * or after `since` (else it was only held back then). */
typedef bm_err (*bm_db_cw_series_fn)(void *ctx, const struct bm_db_cw_series *s, bool published);
/* Calls fn for every series published, or held back, at or after since (epoch seconds); a
 * non-OK return from fn stops and is returned. Thread-safe; never waits for writers. */
bm_err bm_db_cw_series_recent(struct bm_db *db, int64_t since, bm_db_cw_series_fn fn, void *ctx,
                              struct bm_errmsg *em);
/* Records n series, in one transaction, as published at now (held false; the hour counted
 * once in the month that starts at month_start) or held back at now (held true). Series
 * neither published nor held back for 40 days are forgotten. Thread-safe. */
bm_err bm_db_cw_series_record(struct bm_db *db, const struct bm_db_cw_series *v, size_t n,
                              bool held, int64_t now, int64_t month_start, struct bm_errmsg *em);
/* Per dimension set seen since `since`: series published since then, and series held back
 * since then and not published since. */
typedef void (*bm_db_cw_set_fn)(void *ctx, const char *set, uint64_t published, uint64_t held);
struct bm_db_cw_budget {
    uint64_t series, held;    /* the sums over the sets */
    uint64_t series_hours;    /* (series, hour) pairs published in the month of month_start */
    uint64_t held_back_total; /* times a series was held back, all kept series */
};
/* Reads the budget: fn (may be NULL) once per set, in name order, and *out. Thread-safe;
 * never waits for writers. */
bm_err bm_db_cw_budget(struct bm_db *db, int64_t since, int64_t month_start, bm_db_cw_set_fn fn,
                       void *ctx, struct bm_db_cw_budget *out, struct bm_errmsg *em);

/* ------------------------------------------------------------------------------------------ */
/* Retention (METRICS_RETENTION_DAYS). */
struct bm_db_prune_stats {
    uint64_t aggregates, processed, outbox, failures; /* rows deleted */
};
/* Deletes aggregate rows with bucket start < cutoff (queries then never count anything before
 * cutoff), processed-object and failure rows last touched before cutoff, and finished
 * (dropped/rejected) outbox rows marked before cutoff. Works in small batches, each its own
 * short transaction, so ingest is never blocked for long. stats may be NULL. Thread-safe.
 * A redelivery of an object whose processed row was pruned counts it again: keep the
 * retention longer than the queue's (SQS keeps messages at most 14 days). */
bm_err bm_db_prune(struct bm_db *db, int64_t cutoff, struct bm_db_prune_stats *stats,
                   struct bm_errmsg *em);

#endif
