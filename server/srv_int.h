/* srv_int.h: declarations private to server/ and its unit tests. */
#ifndef BM_SRV_INT_H
#define BM_SRV_INT_H

#include "server/bm_server.h"
#include "storage/bm_storage.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>

/* One `bmas ingest` run: the merged totals and counters, shared by the file reader and the
 * S3 backfill workers (all updates under mu). */
struct bm__ingest_run {
    const struct bm_config *cfg;
    struct bm_ingest_opts o;
    struct bm_agg *all;
    pthread_mutex_t mu;
    FILE *err;
    /* Counters for the summary line. */
    uint64_t sources, failed, ignored, records, invalid;
    uint64_t errors[BM_ERR_WIRE_N];
    /* Progress on a terminal. */
    bool tty;
    uint64_t objects_done, objects_seen, bytes;
    int64_t last_progress_ms;
    /* The AWS side, set up on the first s3:// source. */
    bool aws_ready;
    struct bm_http_ops http;
    struct bm_creds_provider *creds;
    struct bm_s3_regions *s3_regions;
    struct bm_aws aws;
};

/* Records one object's outcome: merges its delta into the totals when it was read whole,
 * prints what went wrong. in may be NULL (the object failed before it was read). Returns
 * rc, or the merge's error. Thread-safe. */
bm_err bm__ingest_account(struct bm__ingest_run *r, const char *name, struct bm_ingest *in,
                          bm_err rc, const struct bm_errmsg *em);
/* Prints the run's one-line summary (sources, records, and each wire code seen) to f. */
void bm__ingest_summary(const struct bm__ingest_run *r, FILE *f);
/* Reads every object behind an s3:// URI (one key, or all keys under a prefix ending in '/')
 * with BMAS_FETCH_CONCURRENCY workers. Returns BM_OK when all were read. */
bm_err bm__backfill(struct bm__ingest_run *r, const char *uri);

/* ---- The service (`bmas serve`) ---------------------------------------------------------- */
struct bm__pool;
struct bm__publisher;
struct bm__consumer;
struct bm__conns;

/* Everything the routes and threads share. Immutable after start except the atomics and the
 * objects with their own locks. */
struct bm_srv {
    const struct bm_config *cfg;
    struct bm_db *db;
    struct bm_http_ops http;
    struct bm_creds_provider *creds;
    struct bm_s3_regions *s3_regions; /* buckets' regions learnt from S3's redirects */
    /* Set with `stopping`: ends backoffs and the consumer's long poll at once (aws.stop). */
    struct bm_stop stop;
    struct bm_clock_ops clock; /* the wall clock, its sleeps ended by stop */
    struct bm_aws aws;
    struct bm_metrics *metrics; /* GET /metrics: bmas's own counters (lock-free) */
    struct bm_app_map *app_map;
    struct bm_prices *prices; /* BMAS_PRICES, NULL when unset */
    char attr_buf[256];       /* BMAS_ATTRIBUTION_KEYS, split: attrs' names point here */
    struct bm_attr_keys attrs;
    struct bm_ingest_opts iopts;
    struct bm_dimsets dims;
    struct bm__pool *pool;
    struct bm__publisher *pub;
    struct bm__consumer *consumer;
    int64_t started_ms;
    char instance_id[256]; /* BMAS_INSTANCE_ID, or hostname-pid */
    struct bm__conns *conns;
    atomic_long inflight;         /* HTTP requests being handled */
    atomic_ullong inflight_bytes; /* request body bytes held (BMAS_MAX_INFLIGHT_BYTES) */
    atomic_bool stopping;         /* SIGTERM: drain, then stop */
    atomic_ullong next_id;        /* request ids */
};

/* What happened to one message (an SQS message, or a bare event). */
struct bm__msg_result {
    bool failed; /* list it in batchItemFailures (or answer with an error) */
    bm_err code; /* the first failure's code */
    struct bm_errmsg em;
    unsigned processed, duplicates, ignored, quarantined;
    uint64_t records, invalid;
};

/* Processes messages (parsed envelopes) to the end: duplicates and non-logs answered from the
 * database, the rest fetched on the worker pool and committed exactly once. results[i] is
 * written for every message. req_id is for the logs. Thread-safe. */
void bm__process(struct bm_srv *s, struct bm_message *msgs, size_t n,
                 struct bm__msg_result *results, const char *req_id);

/* A fixed set of worker threads running jobs (object fetches). */
typedef void (*bm__job_fn)(void *arg);
bm_err bm__pool_new(size_t nthreads, struct bm__pool **out);
/* Queues fn(arg); never blocks for long (the queue is unbounded, callers are bounded by the
 * HTTP connection limit and batch sizes). */
bm_err bm__pool_submit(struct bm__pool *p, bm__job_fn fn, void *arg);
/* Finishes queued jobs, then joins the threads. */
void bm__pool_free(struct bm__pool *p);

/* The CloudWatch publisher thread: flushes the outbox every BMAS_FLUSH_INTERVAL seconds (or
 * only on demand when 0) and prunes old rows hourly. */
struct bm__flush_report {
    bm_err rc;
    struct bm_publish_result res;
    int64_t at; /* epoch seconds of the flush */
};
bm_err bm__publisher_start(struct bm_srv *s, struct bm__publisher **out);
/* Asks for a flush now and waits for it (up to timeout_ms); *out gets its report. */
bm_err bm__publisher_flush(struct bm__publisher *p, long timeout_ms, struct bm__flush_report *out);
/* The last flush's report (rc BM_OK and at 0 before the first). */
void bm__publisher_last(struct bm__publisher *p, struct bm__flush_report *out,
                        struct bm__flush_report *last_failure);
/* Whether this instance holds the publisher lease (bm_db_publisher_lease) as of its latest try,
 * and who does (cap bytes; "" when unknown or nobody): /status. Before the first try (or with
 * BMAS_FLUSH_INTERVAL 0, which never takes the lease) false and "". p may be NULL. */
void bm__publisher_role(struct bm__publisher *p, bool *publisher, char *holder, size_t cap);
/* Stops the thread, then the lease's (given up when held, so a stand-by takes over at once). */
void bm__publisher_stop(struct bm__publisher *p);

/* The publisher lease's thread (lease.c): tries every interval_s/4 to take or renew the lease
 * for 3/4 of the interval, so a dead holder is replaced within one interval; on_gain(ctx) runs
 * (on that thread) when this instance takes the lease over after its first try. */
struct bm__lease;
bm_err bm__lease_start(struct bm_srv *s, long interval_s, void (*on_gain)(void *ctx), void *ctx,
                       struct bm__lease **out);
/* Whether this instance holds the lease now (renewed, and not lapsed on its own clock). l may
 * be NULL (false). */
bool bm__lease_held(struct bm__lease *l);
/* bm__lease_held and the holder's name as of the latest try (cap bytes, "" unknown). */
void bm__lease_role(struct bm__lease *l, bool *publisher, char *holder, size_t cap);
/* Stops the thread; gives the lease up when this instance held it. l may be NULL. */
void bm__lease_stop(struct bm__lease *l);

/* The SQS consumer thread (BMAS_SQS_QUEUE_URL). */
struct bm__consumer_stats {
    uint64_t received, deleted, failed, polls;
    int64_t last_poll_at;
    bm_err last_error;
    struct bm_errmsg last_error_msg;
};
bm_err bm__consumer_start(struct bm_srv *s, struct bm__consumer **out);
void bm__consumer_stats(struct bm__consumer *c, struct bm__consumer_stats *out);
void bm__consumer_stop(struct bm__consumer *c);

/* Request deadlines libmicrohttpd lacks (conns.c): a reaper thread shuts down connections past
 * their deadline for the request line and headers, the whole request, or the next request
 * while idle. bm__conns_notify and bm__conns_uri are MHD's NOTIFY_CONNECTION and
 * URI_LOG_CALLBACK with the guard as their closure; the others move a connection between those
 * phases (and "being handled", which has no deadline). Thread-safe. */
bm_err bm__conns_new(const struct bm_config *cfg, struct bm__conns **out);
void bm__conns_free(struct bm__conns *g);
void bm__conns_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                      enum MHD_ConnectionNotificationCode code);
void *bm__conns_uri(void *cls, const char *uri, struct MHD_Connection *c);
void bm__conns_headers(struct bm__conns *g, struct MHD_Connection *c);
void bm__conns_handling(struct bm__conns *g, struct MHD_Connection *c);
void bm__conns_idle(struct bm__conns *g, struct MHD_Connection *c);
/* Connections shut down for a missed deadline since start, and connections open now. */
void bm__conns_stats(struct bm__conns *g, uint64_t *reaped, long *open);

/* BM_E_CONFIG naming BMAS_LISTEN unless spec is ADDR:PORT (checked before anything starts). */
bm_err bm__http_check_listen(const char *spec, struct bm_errmsg *em);
/* HTTP: starts libmicrohttpd on cfg->listen; *port gets the bound port (for port 0). */
struct MHD_Daemon;
bm_err bm__http_start(struct bm_srv *s, struct MHD_Daemon **out, int *port, struct bm_errmsg *em);
void bm__http_stop(struct bm_srv *s, struct MHD_Daemon *d, long drain_ms);

/* Route handlers: fill status and the JSON body b (an error body on failure). */
struct bm__reply {
    int status;
    struct bm_buf body;
    const char *content_type;
    const char *allow; /* for 405 */
    int retry_after_s; /* > 0: sent as Retry-After (a 503 without one says 1) */
    /* Cache-Control (NULL: no-store), and n_headers more headers as {name, value}. */
    const char *cache_control;
    const char *const (*headers)[2];
    size_t n_headers;
};
void bm__route_events(struct bm_srv *s, const char *body, size_t len, const char *req_id,
                      struct bm__reply *r);
void bm__route_status(struct bm_srv *s, struct bm__reply *r);
/* query: the raw query arguments as name/value pairs (n pairs). */
void bm__route_aggregates(struct bm_srv *s, const char *const *names, const char *const *values,
                          size_t n, struct bm__reply *r);
void bm__route_flush(struct bm_srv *s, struct bm__reply *r);
/* GET /healthz: 200 "ok" while the database takes writes; 503 with the storage error's BMAS
 * code (013 busy/locked, 014 read-only, full, I/O) while commits and claims fail. */
void bm__route_healthz(struct bm_srv *s, struct bm__reply *r);
/* GET /dashboard (webdash.c): the page with its CSP and ETag, or 304 with no body when
 * if_none_match (the request's If-None-Match, may be NULL) names that ETag. Thread-safe. */
void bm__route_webdash(const char *if_none_match, struct bm__reply *r);
/* The page (bm__webdash_page_len bytes and a NUL), its ETag (quoted) and its
 * Content-Security-Policy, generated at build time from server/dashboard/ by gen.js there. */
extern const unsigned char bm__webdash_page[];
extern const size_t bm__webdash_page_len;
extern const char bm__webdash_etag[];
extern const char bm__webdash_csp[];
/* The CloudWatch budget (cw_budget.c). A gate lives for one flush: it loads the series
 * published in the last 24 hours, admits each (dimension set, values) the planner meets (all
 * when BMAS_MAX_SERIES is 0; else the known ones and new ones while fewer than the cap were
 * published), records what it admitted and held back, and at the end counts and logs
 * (BMAS-026) what it held back. Used by the publisher thread only. */
struct bm__cw_gate;
bm_err bm__cw_gate_new(struct bm_srv *s, int64_t now, struct bm__cw_gate **out,
                       struct bm_errmsg *em);
/* bm_cw_plan_opts.admit, with the gate as ctx. */
bool bm__cw_gate_admit(void *ctx, const struct bm_series_key *key);
/* Stores the series admitted and held back since the last call (one transaction). */
bm_err bm__cw_gate_record(struct bm__cw_gate *g, struct bm_errmsg *em);
/* Counts and logs what the flush held back. */
void bm__cw_gate_end(struct bm__cw_gate *g);
void bm__cw_gate_free(struct bm__cw_gate *g);
/* BMAS_CLOUDWATCH_METRIC_PRICE ("0.30", USD) into micro-dollars; BM_E_CONFIG naming it. */
bm_err bm__cw_price_parse(const char *s, uint64_t *micro_usd, struct bm_errmsg *em);
/* /status's "cloudwatch" object, appended to b. */
bm_err bm__cw_budget_json(struct bm_srv *s, struct bm_buf *b, struct bm_errmsg *em);
/* The budget's gauges for GET /metrics, appended to b. */
bm_err bm__cw_budget_metrics(struct bm_srv *s, struct bm_buf *b);
/* GET /metrics: bmas's own counters and the aggregates in the Prometheus text format
 * (metrics_route.c). */
void bm__route_metrics(struct bm_srv *s, struct bm__reply *r);
/* Writes {"errorCode","message","details":{...}} with the code's HTTP status. details may be
 * NULL or a JSON object text. */
void bm__reply_error(struct bm__reply *r, bm_err code, const char *message, const char *details);
/* Seconds a sender should wait before retrying after code (the Retry-After of POST /events),
 * or 0 when no retry can fix it. Positive exactly when code's HTTP status is 429 or 5xx, the
 * statuses EventBridge API destinations retry (events_answer.c). Pure. */
int bm__retry_after_s(bm_err code);
/* The answer to POST /events for batch b whose messages' outcomes are res (b->n of them), in
 * the form the sender reads (docs/formats.md 5): batchItemFailures with 200 for a Lambda event
 * or an array (an array's status also says whether all of it succeeded), a status with an
 * EventResult or error body for one record or a bare event. */
void bm__events_answer(const struct bm_event_batch *b, const struct bm__msg_result *res,
                       const char *req_id, struct bm__reply *r);

#endif
