/* bm_core.h: the one public header of libbm_core (errors, logging, memory, buffers, config,
 * time, the streaming ingest pipeline, classification and aggregation). Other folders include
 * only this file; everything in the private core_int.h is private to core/ and its unit tests. */
#ifndef BM_CORE_H
#define BM_CORE_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* ------------------------------------------------------------------------------------------ */
/* Errors (docs/style.md G3). Two X-macro tables, the only place codes are written down:
 * BM_WIRE_MAP lists the wire codes users see (BMAS-001..010 from the spec, BMAS-011 onwards
 * ours), in order, each with its meaning; BM_ERR_MAP lists the internal codes, each naming its
 * wire code, HTTP status, whether a retry may help, and a short message. Several internal
 * codes share one wire code where the caller's reaction is the same. Both are only ever
 * appended to, never renumbered. Everything else (the wire list, counters per wire code,
 * /status keys, error bodies) is generated from them. */
#define BM_WIRE_MAP(X)                                                                             \
    X(BM_W_001, "BMAS-001", "S3 object not found")                                                 \
    X(BM_W_002, "BMAS-002", "S3 access denied")                                                    \
    X(BM_W_003, "BMAS-003", "invalid log format")                                                  \
    X(BM_W_004, "BMAS-004", "CloudWatch publish failed")                                           \
    X(BM_W_005, "BMAS-005", "SQS message parse error")                                             \
    X(BM_W_006, "BMAS-006", "inference profile not found")                                         \
    X(BM_W_007, "BMAS-007", "token count invalid")                                                 \
    X(BM_W_008, "BMAS-008", "region detection failed")                                             \
    X(BM_W_009, "BMAS-009", "metric dimension overflow")                                           \
    X(BM_W_010, "BMAS-010", "memory limit exceeded")                                               \
    X(BM_W_011, "BMAS-011", "bad request")                                                         \
    X(BM_W_012, "BMAS-012", "unauthorized")                                                        \
    X(BM_W_013, "BMAS-013", "storage busy")                                                        \
    X(BM_W_014, "BMAS-014", "storage error")                                                       \
    X(BM_W_015, "BMAS-015", "internal error")                                                      \
    X(BM_W_016, "BMAS-016", "cannot read source")                                                  \
    X(BM_W_017, "BMAS-017", "AWS request failed")                                                  \
    X(BM_W_018, "BMAS-018", "no such route")                                                       \
    X(BM_W_019, "BMAS-019", "method not allowed")                                                  \
    X(BM_W_020, "BMAS-020", "object quarantined")                                                  \
    X(BM_W_021, "BMAS-021", "invalid configuration")                                               \
    X(BM_W_022, "BMAS-022", "no AWS credentials")                                                  \
    X(BM_W_023, "BMAS-023", "object superseded")                                                   \
    X(BM_W_024, "BMAS-024", "server busy")                                                         \
    X(BM_W_025, "BMAS-025", "inference Region not allowed")                                        \
    X(BM_W_026, "BMAS-026", "CloudWatch series cap reached")

enum bm_wire {
#define BM_X_(name, code, title) name,
    BM_WIRE_MAP(BM_X_)
#undef BM_X_
        BM_W__COUNT
};
/* Number of wire codes: counters keyed by wire code have this many slots. */
#define BM_ERR_WIRE_N ((int)BM_W__COUNT)

#define BM_ERR_MAP(X)                                                                              \
    X(BM_E_S3_NOT_FOUND, BM_W_001, 404, 0, "S3 object not found")                                  \
    X(BM_E_S3_DENIED, BM_W_002, 403, 0, "S3 access denied")                                        \
    X(BM_E_LOG_FORMAT, BM_W_003, 422, 0, "invalid log format")                                     \
    X(BM_E_PUBLISH, BM_W_004, 502, 1, "CloudWatch publish failed")                                 \
    X(BM_E_MSG_PARSE, BM_W_005, 400, 0, "SQS message parse error")                                 \
    X(BM_E_NO_PROFILE, BM_W_006, 422, 0, "inference profile not found")                            \
    X(BM_E_TOKENS, BM_W_007, 422, 0, "token count invalid")                                        \
    X(BM_E_REGION, BM_W_008, 422, 0, "region detection failed")                                    \
    X(BM_E_DIMENSIONS, BM_W_009, 422, 0, "metric dimension overflow")                              \
    X(BM_E_TOO_LARGE, BM_W_010, 413, 0, "memory limit exceeded")                                   \
    X(BM_E_NOMEM, BM_W_010, 503, 1, "out of memory")                                               \
    X(BM_E_LINE_TOO_LONG, BM_W_010, 413, 0, "log line over the line cap")                          \
    X(BM_E_INFLATE_CAP, BM_W_010, 413, 0, "object inflates past the size cap")                     \
    X(BM_E_GZIP, BM_W_003, 422, 0, "corrupt or truncated gzip data")                               \
    X(BM_E_BAD_REQUEST, BM_W_011, 400, 0, "bad request")                                           \
    X(BM_E_UNAUTHORIZED, BM_W_012, 401, 0, "unauthorized")                                         \
    X(BM_E_STORAGE_BUSY, BM_W_013, 503, 1, "storage busy")                                         \
    X(BM_E_STORAGE, BM_W_014, 500, 1, "storage error")                                             \
    X(BM_E_INTERNAL, BM_W_015, 500, 1, "internal error")                                           \
    X(BM_E_IO, BM_W_016, 500, 0, "cannot read source")                                             \
    X(BM_E_UPSTREAM, BM_W_017, 502, 1, "AWS request failed")                                       \
    X(BM_E_NO_ROUTE, BM_W_018, 404, 0, "no such route")                                            \
    X(BM_E_METHOD, BM_W_019, 405, 0, "method not allowed")                                         \
    X(BM_E_QUARANTINED, BM_W_020, 422, 0, "object quarantined after repeated failures")            \
    X(BM_E_CONFIG, BM_W_021, 400, 0, "invalid configuration")                                      \
    X(BM_E_THROTTLED, BM_W_004, 503, 1, "CloudWatch throttled the request")                        \
    X(BM_E_NO_CREDENTIALS, BM_W_022, 500, 1, "no AWS credentials found")                           \
    X(BM_E_SUPERSEDED, BM_W_023, 409, 0,                                                           \
      "object changed since the event; its newer version counts")                                  \
    X(BM_E_BUSY, BM_W_024, 503, 1, "too many request bodies in flight; retry")                     \
    X(BM_E_CANCELLED, BM_W_024, 503, 1, "bmas is stopping; retry")                                 \
    X(BM_E_RESIDENCY, BM_W_025, 422, 0, "inference Region outside the allowed Regions")            \
    X(BM_E_SERIES_CAP, BM_W_026, 422, 0, "CloudWatch series over BMAS_MAX_SERIES: not published")

typedef enum {
    BM_OK = 0,
#define BM_X_(name, wire, http, retry, msg) name,
    BM_ERR_MAP(BM_X_)
#undef BM_X_
        BM_E__COUNT
} bm_err;

/* Wire code ("BMAS-001"), HTTP status, retry flag and English message of an error. Pure
 * functions over the tables; "OK"/200/false/"ok" for BM_OK. */
const char *bm_err_wire(bm_err e);
int bm_err_http(bm_err e);
bool bm_err_retry(bm_err e);
const char *bm_err_str(bm_err e);
/* The wire code of e as an index into the wire list (0 for BMAS-001, -1 for BM_OK), and the
 * wire list itself: the code and meaning at an index (NULL when out of range). */
int bm_err_wire_index(bm_err e);
const char *bm_err_wire_at(int idx);
const char *bm_err_wire_title(int idx);

/* Optional detail filled by a callee that fails (curl's error buffer): the caller decides
 * whether and where to log it. */
struct bm_errmsg {
    char text[256];
};
/* Formats into em when em is non-NULL; returns rc so callers can `return bm_errmsg_set(...)`. */
bm_err bm_errmsg_set(struct bm_errmsg *em, bm_err rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------------------------------------ */
/* Memory (docs/style.md G4). Every heap allocation goes through these so tests can inject failure.
 */
void *bm_malloc(size_t n);
void *bm_calloc(size_t n, size_t size);
void *bm_realloc(void *p, size_t n);
void bm_free(void *p);
char *bm_strdup(const char *s);
char *bm_strndup(const char *s, size_t len);
/* Test hook: the n-th allocation from now fails (0 = the next one), -1 disables. Process-wide;
 * meant for single-threaded unit tests only. */
void bm_alloc_fail_after(long n);
/* Number of allocations that failed because of bm_alloc_fail_after since the last call. */
long bm_alloc_failures(void);
#define BM_FREE(p)                                                                                 \
    do {                                                                                           \
        bm_free(p);                                                                                \
        (p) = NULL;                                                                                \
    } while (0)
/* Zeroes len bytes of a secret before its memory is reused (explicit_bzero semantics). */
void bm_secure_zero(void *p, size_t len);

/* ------------------------------------------------------------------------------------------ */
/* Growable byte buffer with a hard cap (curl dynbuf). data is always NUL-terminated when
 * non-NULL. Appends fail with BM_E_TOO_LARGE past max and BM_E_NOMEM on allocation failure,
 * leaving the buffer unchanged. */
struct bm_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
};
void bm_buf_init(struct bm_buf *b, size_t max);
void bm_buf_cleanup(struct bm_buf *b);
void bm_buf_reset(struct bm_buf *b);
bm_err bm_buf_reserve(struct bm_buf *b, size_t extra);
bm_err bm_buf_append(struct bm_buf *b, const void *p, size_t len);
bm_err bm_buf_append_str(struct bm_buf *b, const char *s);
bm_err bm_buf_append_char(struct bm_buf *b, char c);
bm_err bm_buf_appendf(struct bm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s (len bytes) as a quoted JSON string, escaping as RFC 8259 requires. Invalid UTF-8
 * bytes are replaced by U+FFFD so the output is always valid JSON. */
bm_err bm_buf_append_json_str(struct bm_buf *b, const char *s, size_t len);
/* Takes the data out (caller frees with bm_free) and resets the buffer. */
char *bm_buf_steal(struct bm_buf *b);

/* ------------------------------------------------------------------------------------------ */
/* Logging (docs/style.md G5): one JSON object per line on the sink fd (stderr by default), written
 * with a single write(). Arguments are evaluated only when the level is enabled. The line is the
 * replaced Lambda's format (docs/logging.md): "timestamp", "level", "requestId", "component" (the
 * module), "event", "message", then the values; BM_KV_ERR writes "errorCode" and "error", a value
 * named "req_id" or "requestId" becomes the line's "requestId", and a line carrying BMAS-002 at
 * WARN or above is written at CRITICAL (the guide's severity for access denied). */
enum bm_log_level {
    BM_DEBUG = 0,
    BM_INFO = 1,
    BM_WARN = 2,
    BM_ERROR = 3,
    BM_CRITICAL = 4,
    BM_LOG_OFF = 5
};
enum bm_kv_type { BM_KV_T_NONE, BM_KV_T_STR, BM_KV_T_INT, BM_KV_T_DBL, BM_KV_T_ERR, BM_KV_T_RAW };
struct bm_kv {
    const char *k;
    enum bm_kv_type type;
    union {
        const char *s;
        long long i;
        double d;
        bm_err e;
    } v;
};
#define BM_KV_STR(key, val) ((struct bm_kv){.k = (key), .type = BM_KV_T_STR, .v.s = (val)})
#define BM_KV_INT(key, val) ((struct bm_kv){.k = (key), .type = BM_KV_T_INT, .v.i = (val)})
#define BM_KV_DBL(key, val) ((struct bm_kv){.k = (key), .type = BM_KV_T_DBL, .v.d = (val)})
/* Adds "errorCode":"BMAS-0xx" and "error":"<message>". */
#define BM_KV_ERR(val) ((struct bm_kv){.k = "errorCode", .type = BM_KV_T_ERR, .v.e = (val)})
/* val is already valid JSON (an object or array built by the caller). */
#define BM_KV_RAW(key, val) ((struct bm_kv){.k = (key), .type = BM_KV_T_RAW, .v.s = (val)})
/* WARN and ERROR lines are also built when only CRITICAL is enabled: one carrying BMAS-002 is
 * promoted to it, and bm_log_write drops the others. */
#define BM_LOG(lvl, mod, event, msg, ...)                                                          \
    do {                                                                                           \
        if (bm_log_enabled(lvl) || ((lvl) >= BM_WARN && bm_log_enabled(BM_CRITICAL))) {            \
            const struct bm_kv bm_kv_[] = {{.type = BM_KV_T_NONE}, __VA_ARGS__};                   \
            bm_log_write((lvl), (mod), (event), (msg), bm_kv_, sizeof bm_kv_ / sizeof bm_kv_[0]);  \
        }                                                                                          \
    } while (0)
bool bm_log_enabled(enum bm_log_level lvl);
void bm_log_write(enum bm_log_level lvl, const char *mod, const char *event, const char *msg,
                  const struct bm_kv *kv, size_t n);
/* The log sink is the one mutable global (docs/style.md G1): set once in main() or a test. */
void bm_log_set_level(enum bm_log_level lvl);
void bm_log_set_fd(int fd);
/* The calling thread's request context: every line it writes carries request_id (unless the line
 * names its own) and the trace headers (ENABLE_TRACE). The strings are borrowed: the caller keeps
 * them alive until it sets another context or clears it with NULL. Thread-local, so a worker
 * takes over a request's context by setting a copy of it. */
struct bm_log_ctx {
    const char *request_id;
    const char *traceparent;   /* W3C traceparent header, or NULL */
    const char *amzn_trace_id; /* X-Amzn-Trace-Id header, or NULL */
};
void bm_log_ctx_set(const struct bm_log_ctx *ctx);
/* The calling thread's context (all NULL when none is set). */
struct bm_log_ctx bm_log_ctx_get(void);
/* True when v may be carried as a trace header (1..BM_TRACE_MAX printable ASCII characters, no
 * quote or backslash): anything else is not taken from a request. */
#define BM_TRACE_MAX 256
bool bm_log_trace_ok(const char *v);
/* Parses DEBUG|INFO|WARN|ERROR|CRITICAL|OFF (case-insensitive; WARNING too); false when
 * unknown. */
bool bm_log_level_parse(const char *s, enum bm_log_level *out);

/* ------------------------------------------------------------------------------------------ */
/* Time. Epoch seconds, UTC, no locale or TZ involved (gmtime is banned: not thread-safe). */
/* Parses RFC 3339 / ISO 8601 "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)" (also a space for
 * T, lowercase t/z). Fractions are truncated. Returns false on anything else. */
bool bm_time_parse(const char *s, size_t len, int64_t *out);
/* Writes "YYYY-MM-DDTHH:MM:SSZ" (20 chars + NUL) into out. */
void bm_time_format(int64_t t, char out[21]);
/* The same in the compact SigV4 form "YYYYMMDDTHHMMSSZ" (16 chars + NUL). */
void bm_time_format_compact(int64_t t, char out[17]);
/* Wall clock and a monotonic clock in milliseconds. */
int64_t bm_time_now(void);
int64_t bm_time_mono_ms(void);

/* ------------------------------------------------------------------------------------------ */
/* Listen addresses: "ADDR:PORT", "[v6]:PORT" or ":PORT" (numeric, or "localhost"; port 0 =
 * any free port) into a socket address. BM_E_CONFIG with em naming `what` (the setting). */
bm_err bm_listen_parse(const char *spec, const char *what, struct sockaddr_storage *out,
                       socklen_t *len, struct bm_errmsg *em);

/* ------------------------------------------------------------------------------------------ */
/* Configuration (docs/style.md G6): one table drives parsing, validation, --help and the start-up
 * log line. Loaded once in main() and passed down as const. */
struct bm_config {
    /* From the spec. */
    char *cloudwatch_namespace;
    enum bm_log_level log_level;
    char *aws_region;
    long batch_size;
    long metrics_retention_days;
    bool enable_cross_region_detection;
    bool enable_global_cross_region;
    bool dlq_enabled;
    long max_retry_attempts;
    bool enable_trace;
    /* Ours. */
    char *listen;
    char *db_path;
    char *auth_token;
    long flush_interval_s;
    long bucket_seconds;
    char *dimension_sets;
    char *cloudwatch_region; /* "" = aws_region */
    char *sqs_queue_url;
    char *app_profile_map;
    char *prices;                    /* BMAS_PRICES: path of the price file, "" = none */
    bool publish_cost;               /* BMAS_PUBLISH_COST: EstimatedCostUSD metric */
    char *allowed_inference_regions; /* BMAS_ALLOWED_INFERENCE_REGIONS: comma list, "" = any */
    bool publish_residency;          /* BMAS_PUBLISH_RESIDENCY: ResidencyViolations metric */
    char *attribution_keys;          /* BMAS_ATTRIBUTION_KEYS: "team,app,identity", "" = none */
    long attribution_max_values;     /* BMAS_ATTRIBUTION_MAX_VALUES: per key, then "other" */
    long fetch_concurrency;
    uint64_t max_line_bytes;
    uint64_t max_object_bytes;
    uint64_t max_body_bytes;
    uint64_t max_inflight_bytes;
    long max_connections;
    long max_connections_per_client;
    long header_timeout_s;
    long request_timeout_s;
    long keepalive_timeout_s;
    long sqs_wait_seconds;
    long aws_deadline_s;
    char *inflate; /* "auto", "isal", "zlib" */
    long ingest_threads;
    long metrics_max_series;       /* BMAS_METRICS_MAX_SERIES */
    long max_series;               /* BMAS_MAX_SERIES: 0 = no cap */
    char *cloudwatch_metric_price; /* BMAS_CLOUDWATCH_METRIC_PRICE, USD: "0.30" */
    /* AWS standard. */
    char *aws_access_key_id;
    char *aws_secret_access_key;
    char *aws_session_token;
    char *aws_profile;
    char *aws_shared_credentials_file;
    char *aws_config_file;
    char *aws_endpoint_url;
    char *aws_endpoint_url_s3;
    char *aws_endpoint_url_cloudwatch;
    char *aws_endpoint_url_sqs;
    char *aws_endpoint_url_sts;
    char *aws_web_identity_token_file;
    char *aws_role_arn;
    char *aws_role_session_name;
    char *aws_container_credentials_full_uri;
    char *aws_container_credentials_relative_uri;
    char *aws_container_authorization_token;
    char *aws_container_authorization_token_file;
    bool aws_ec2_metadata_disabled;
    char *aws_ec2_metadata_service_endpoint;
    char *home;
};
/* Environment lookup used by bm_config_load; main() passes getenv, tests pass a table. */
typedef const char *(*bm_getenv_fn)(const char *name);
/* Fills cfg with defaults, then the environment. On a bad value returns BM_E_CONFIG with em
 * naming the variable and the accepted values; cfg must still be cleaned up. */
bm_err bm_config_load(struct bm_config *cfg, bm_getenv_fn get, struct bm_errmsg *em);
/* Sets one variable by its env name (used for command-line flags such as --db). */
bm_err bm_config_set(struct bm_config *cfg, const char *name, const char *value,
                     struct bm_errmsg *em);
void bm_config_cleanup(struct bm_config *cfg);
/* Appends the variables table (name, default, help) for --help to b. */
bm_err bm_config_help(struct bm_buf *b);
/* Appends the effective configuration as a JSON object, secrets redacted. */
bm_err bm_config_json(const struct bm_config *cfg, struct bm_buf *b);
/* The replaced Lambda's variables (its deployment and troubleshooting guides) that are set in
 * get's environment but mean nothing for this command (service: serve, else bmas ingest):
 * logged once, as one WARN line naming each with the reason, so none is ignored silently.
 * Returns how many were named. */
int bm_config_warn_unused(bm_getenv_fn get, bool service);

/* ------------------------------------------------------------------------------------------ */
/* Classification of a record's modelId (docs/formats.md section 2). */
enum bm_profile_type {
    BM_PT_ON_DEMAND,    /* bare foundation model id or foundation-model/ ARN */
    BM_PT_CROSS_REGION, /* geographic system profile: us., eu., apac., any new geo prefix */
    BM_PT_GLOBAL,       /* global. system profile */
    BM_PT_APPLICATION,  /* application-inference-profile/ ARN */
    BM_PT_PROVISIONED,  /* provisioned-model/ ARN (Provisioned Throughput) */
    BM_PT__COUNT
};
/* "OnDemand", "CrossRegion", "GlobalCrossRegion", "Application", "Provisioned". */
const char *bm_profile_type_name(enum bm_profile_type t);
bool bm_profile_type_parse(const char *s, size_t len, enum bm_profile_type *out);

/* A borrowed byte string (not necessarily NUL-terminated). */
struct bm_str {
    const char *p;
    size_t len;
};

/* Application profile id -> model id, from BMAS_APP_PROFILE_MAP ("id=model,id=model"; an id
 * may also be given as the full profile ARN). */
struct bm_app_map;
/* Parses spec (may be empty); BM_E_CONFIG with em naming the bad pair. Caller frees. */
bm_err bm_app_map_parse(const char *spec, struct bm_app_map **out, struct bm_errmsg *em);
void bm_app_map_free(struct bm_app_map *m);

struct bm_classify_opts {
    bool cross_region;        /* ENABLE_CROSS_REGION_DETECTION */
    bool global_cross_region; /* ENABLE_GLOBAL_CROSS_REGION */
    const struct bm_app_map *app_map;
};
struct bm_classification {
    enum bm_profile_type type;
    struct bm_str model_id;   /* foundation model, ARN and geo prefix removed */
    struct bm_str profile_id; /* the id as the caller used it, ARN prefix removed */
    struct bm_str arn_region; /* region field of an ARN modelId, else empty */
    bool app_unmapped;        /* Application profile with no BMAS_APP_PROFILE_MAP entry */
};
/* Classifies id (len bytes). Slices in out point into id or the app map. BM_E_LOG_FORMAT for
 * an empty id or a malformed ARN. Pure; thread-safe. */
bm_err bm_classify(const char *id, size_t len, const struct bm_classify_opts *o,
                   struct bm_classification *out);
/* The <region> segment after BedrockModelInvocationLogs/ in an S3 key, if it looks like a
 * region; false otherwise. */
bool bm_region_from_key(const char *key, size_t len, struct bm_str *out);
/* Why an S3 object is not a log to ingest, or BM_KEY_LOG. */
enum bm_key_kind { BM_KEY_LOG, BM_KEY_DATA_BODY, BM_KEY_PERMISSION_CHECK, BM_KEY_FOLDER };
enum bm_key_kind bm_key_kind(const char *key, size_t len);
const char *bm_key_kind_name(enum bm_key_kind k);

/* ------------------------------------------------------------------------------------------ */
/* Aggregates: counters per (bucket, series). */
/* Attribution keys (BMAS_ATTRIBUTION_KEYS): requestMetadata keys, or "identity" for the
 * caller's identity.arn, each one more part of the series key. */
#define BM_ATTR_MAX 3
struct bm_series_key {
    int64_t bucket; /* bucket start, epoch seconds; BM_NO_BUCKET when not grouped by time */
    enum bm_profile_type type;
    struct bm_str model_id, profile_id, source_region, inference_region, operation;
    struct bm_str attr[BM_ATTR_MAX]; /* the attribution keys' values in their order; "" absent */
};
#define BM_NO_BUCKET INT64_MIN
/* Per metric: sum, and min/max per invocation (CloudWatch StatisticValues). */
struct bm_stat {
    uint64_t sum, min, max;
};
/* Money in integers, never floats (sums stay exact): whole micro-dollars plus the
 * pico-dollars below one micro-dollar (pico < BM_PICO_PER_MICRO once normalised). */
#define BM_PICO_PER_MICRO 1000000ULL
struct bm_cost {
    uint64_t micro, pico;
};
/* dst += src, carrying the pico-dollars into micro-dollars. */
void bm_cost_add(struct bm_cost *dst, const struct bm_cost *src);
/* The cost rounded to the nearest micro-dollar (half up). */
uint64_t bm_cost_micro_rounded(const struct bm_cost *c);
/* Appends that rounded cost in dollars as a JSON number in its shortest form ("0", "1.5",
 * "0.000123"): exact decimal digits of the integer, no float involved. */
bm_err bm_cost_append_usd(struct bm_buf *b, const struct bm_cost *c);
struct bm_counters {
    uint64_t invocations;
    struct bm_stat input, output, cache_read, cache_write;
    struct bm_cost cost; /* of the priced invocations (BMAS_PRICES) */
    uint64_t unpriced;   /* invocations no price row covered: counted, never guessed */
    uint64_t violations; /* invocations served outside BMAS_ALLOWED_INFERENCE_REGIONS */
};
/* Counters of one invocation. */
void bm_counters_one(struct bm_counters *c, uint64_t in, uint64_t out, uint64_t cache_read,
                     uint64_t cache_write);
/* dst += src; min/max combine. */
void bm_counters_merge(struct bm_counters *dst, const struct bm_counters *src);

struct bm_series {
    struct bm_series_key key; /* strings owned by the aggregate, NUL-terminated */
    struct bm_counters c;
};
struct bm_agg;
/* An empty aggregate holding at most max_series series (0: no cap). NULL on OOM. */
struct bm_agg *bm_agg_new(size_t max_series);
void bm_agg_free(struct bm_agg *a);
/* Adds c into the series k (copying k's strings on first sight). BM_E_TOO_LARGE past the
 * series cap, BM_E_NOMEM; on failure the aggregate is unchanged. */
bm_err bm_agg_add(struct bm_agg *a, const struct bm_series_key *k, const struct bm_counters *c);
bm_err bm_agg_merge(struct bm_agg *dst, const struct bm_agg *src);
/* True when series k is in the aggregate. */
bool bm_agg_contains(const struct bm_agg *a, const struct bm_series_key *k);
size_t bm_agg_count(const struct bm_agg *a);
/* Series i in insertion order (0 <= i < count). Valid until the next add or free. */
const struct bm_series *bm_agg_at(const struct bm_agg *a, size_t i);
/* Sum of all series. */
void bm_agg_totals(const struct bm_agg *a, struct bm_counters *out);

/* group_by fields of /aggregates and `bmas ingest --group-by`. */
enum bm_group {
    BM_G_MINUTE,
    BM_G_MODEL_ID,
    BM_G_PROFILE_TYPE,
    BM_G_PROFILE_ID,
    BM_G_SOURCE_REGION,
    BM_G_INFERENCE_REGION,
    BM_G_OPERATION,
    BM_G_ATTR1, /* the attribution keys, in BMAS_ATTRIBUTION_KEYS order: attr.<key> */
    BM_G_ATTR2,
    BM_G_ATTR3,
    BM_G__COUNT
};
/* The attribution keys' names (BMAS_ATTRIBUTION_KEYS), n of them. Borrowed strings. */
struct bm_attr_keys {
    int n;
    const char *name[BM_ATTR_MAX];
};
struct bm_group_by {
    int n;
    enum bm_group f[BM_G__COUNT];
    struct bm_attr_keys attrs; /* names of BM_G_ATTR1.. in output ("attr.<name>") */
};
#define BM_GROUP_BY_DEFAULT "model_id,profile_type,source_region,inference_region"
/* Parses a comma list ("" = no grouping: one total row). BM_E_BAD_REQUEST naming the field. */
bm_err bm_group_by_parse(const char *s, struct bm_group_by *out, struct bm_errmsg *em);
/* The same, also taking "attr.<key>" for each attribution key of keys (may be NULL: none);
 * out borrows keys' names. */
bm_err bm_group_by_parse_attrs(const char *s, const struct bm_attr_keys *keys,
                               struct bm_group_by *out, struct bm_errmsg *em);
/* Splits BMAS_ATTRIBUTION_KEYS (spec, borrowed by out's names: they point into buf, a copy the
 * caller keeps) into at most BM_ATTR_MAX keys of letters, digits, '_', '-', '.'.
 * BM_E_CONFIG naming the variable otherwise. */
bm_err bm_attr_keys_parse(const char *spec, char *buf, size_t cap, struct bm_attr_keys *out,
                          struct bm_errmsg *em);
const char *bm_group_name(enum bm_group g);
/* A new aggregate with src's series merged by the fields in g only (others emptied; the
 * bucket truncated to the minute or BM_NO_BUCKET). */
bm_err bm_agg_regroup(const struct bm_agg *src, const struct bm_group_by *g, struct bm_agg **out);
/* Sorts series by the fields of g in order (g may be NULL), then by the rest, for stable
 * output. BM_E_NOMEM leaves the order unchanged. */
bm_err bm_agg_sort(struct bm_agg *a, const struct bm_group_by *g);
/* Appends the GET /aggregates document {"from","to","group_by","rows","totals"} for an
 * aggregate already regrouped by g. from/to may be BM_NO_BUCKET (written as null). */
bm_err bm_agg_write_json(const struct bm_agg *a, const struct bm_group_by *g, int64_t from,
                         int64_t to, struct bm_buf *b);
/* Appends a fixed-width text table with a totals line, for people. */
bm_err bm_agg_write_table(const struct bm_agg *a, const struct bm_group_by *g, struct bm_buf *b);

/* ------------------------------------------------------------------------------------------ */
/* Prices (BMAS_PRICES, core/price.c): a CSV of USD per million tokens per model, optionally
 * per source region and profile type, held as integer pico-dollars per token. */
struct bm_price {
    char *model_id;
    char *region;                 /* "" matches any source region */
    size_t model_len, region_len; /* their lengths: compared first, once per record */
    enum bm_profile_type type;    /* BM_PT__COUNT matches any profile type */
    uint64_t pico[4];             /* per token: input, output, cache read, cache write */
    bool has[4];                  /* an empty cell: that price is unknown */
    unsigned line;                /* in the file, for messages */
};
struct bm_prices {
    struct bm_price *v;
    size_t n;
};
/* Parses the CSV text (len bytes) named name (for messages): '#' comment lines and blank lines
 * are skipped, the first other line is the header (model_id, input_per_mtok,
 * output_per_mtok, cache_read_per_mtok, cache_write_per_mtok in any order, optionally region
 * and profile_type), prices are decimals with at most 6 fractional digits. BM_E_CONFIG with
 * em naming name:line and the problem; BM_E_NOMEM. Caller frees *out with bm_prices_free. */
bm_err bm_prices_parse(const char *text, size_t len, const char *name, struct bm_prices **out,
                       struct bm_errmsg *em);
/* Reads and parses the file at path (at most 4 MB): BM_E_CONFIG also when it cannot be read. */
bm_err bm_prices_load(const char *path, struct bm_prices **out, struct bm_errmsg *em);
void bm_prices_free(struct bm_prices *p);
/* The most specific row for model_id served from source region src as profile type t: a row
 * naming the region beats one naming the profile type, which beats one naming neither; NULL
 * when none matches (p may be NULL). Pure; thread-safe. */
const struct bm_price *bm_prices_find(const struct bm_prices *p, struct bm_str model_id,
                                      struct bm_str src, enum bm_profile_type t);
/* The cost of one invocation's tokens (input, output, cache read, cache write) at price pr:
 * false (out untouched) when a token count is non-zero and its price unknown, or on overflow. */
bool bm_price_cost(const struct bm_price *pr, const uint64_t tokens[4], struct bm_cost *out);

/* ------------------------------------------------------------------------------------------ */
/* Streaming ingest of one log object: bytes in (any chunking), a delta aggregate out. */
/* The inflate engine (BMAS_INFLATE): ISA-L when the build has it (libisal found at build
 * time), else zlib; both give the same bytes, or the same BM_E_GZIP on corrupt input. */
enum bm_inflate { BM_INFLATE_AUTO, BM_INFLATE_ZLIB, BM_INFLATE_ISAL };
bool bm_inflate_has_isal(void);
/* "auto", "zlib", or "isal" when the build has it; false for anything else. */
bool bm_inflate_parse(const char *name, enum bm_inflate *out);
struct bm_ingest_opts {
    uint64_t max_line_bytes;   /* BMAS_MAX_LINE_BYTES */
    uint64_t max_object_bytes; /* BMAS_MAX_OBJECT_BYTES, uncompressed */
    long bucket_seconds;       /* BMAS_BUCKET_SECONDS */
    size_t max_series;         /* distinct series per object (memory bound) */
    enum bm_inflate inflate;   /* BMAS_INFLATE */
    int threads;               /* BMAS_INGEST_THREADS: 2 parses on a second thread; 0 or 1 not */
    struct bm_classify_opts cls;
    const struct bm_prices *prices; /* BMAS_PRICES, borrowed; NULL: every record unpriced */
    /* BMAS_ALLOWED_INFERENCE_REGIONS (borrowed; NULL or "": no check): a record served in
     * another inference Region, global profiles excepted, is a residency violation. */
    const char *allowed_regions;
    /* BMAS_ATTRIBUTION_KEYS (names borrowed; n = 0: none): series gain their values. */
    struct bm_attr_keys attrs;
};
/* Options from the configuration; app_map is borrowed and must outlive the ingests. */
void bm_ingest_opts_init(struct bm_ingest_opts *o, const struct bm_config *cfg,
                         const struct bm_app_map *app_map);

struct bm_ingest_stats {
    uint64_t bytes_in;  /* as received (compressed) */
    uint64_t bytes_out; /* after gunzip */
    bool gzip;
    uint64_t records; /* aggregated */
    uint64_t invalid; /* skipped: malformed, bad tokens, no region, over the line cap */
    uint64_t invocations_by_type[BM_PT__COUNT];
    /* Per wire code, record level: BMAS-003/007/008/010 for skipped records, BMAS-006 for
     * application-profile records with no model mapping and BMAS-025 for residency violations
     * (both counted, not skipped). */
    uint64_t errors[BM_ERR_WIRE_N];
    /* The first residency violation: its record number and "<model_id> in <region>". */
    uint64_t first_violation_record;
    char first_violation[192];
    /* The first skipped record, for a helpful message ("record 17: ..."). */
    uint64_t first_error_record;
    bm_err first_error;
    struct bm_errmsg first_error_msg;
    int threads; /* 2 when the object was parsed on a second thread (BMAS_INGEST_THREADS) */
};
struct bm_ingest;
/* key (may be NULL) is the object's S3 key or file path: the last fallback for the source
 * region. NULL on OOM. */
struct bm_ingest *bm_ingest_new(const struct bm_ingest_opts *o, const char *key);
void bm_ingest_free(struct bm_ingest *in);
/* Names the object's bucket in the ingest's DEBUG lines (one per skipped record, the first 20
 * of an object, then one line with the number left out). Borrowed: it must outlive in. */
void bm_ingest_set_bucket(struct bm_ingest *in, const char *bucket);
/* Feeds the next chunk. Record-level problems are counted in the stats and do not fail the
 * object; a returned error (BM_E_GZIP, BM_E_INFLATE_CAP, BM_E_TOO_LARGE for the series cap,
 * BM_E_NOMEM) fails the whole object, whose delta must then be discarded. */
bm_err bm_ingest_feed(struct bm_ingest *in, const void *data, size_t len);
/* Ends the object: flushes a last unterminated record; BM_E_GZIP when truncated. */
bm_err bm_ingest_finish(struct bm_ingest *in);
const struct bm_ingest_stats *bm_ingest_stats(const struct bm_ingest *in);
/* The object's delta; owned by the ingest. */
const struct bm_agg *bm_ingest_agg(const struct bm_ingest *in);

/* ------------------------------------------------------------------------------------------ */
/* The AWS wire: HTTP transport, credentials, S3, CloudWatch. Everything talks through
 * struct bm_http_ops so tests can swap the network for a fake (docs/style.md G8 seams). */

/* Receives a response body in pieces; a non-OK return aborts the transfer and is returned
 * by perform(). */
typedef bm_err (*bm_http_sink_fn)(void *ctx, const char *data, size_t len);

struct bm_creds {
    char akid[128];
    char secret[128];
    char token[4096]; /* session token, "" if none */
    int64_t expires;  /* epoch seconds, 0 = never */
    char source[32];  /* "env", "profile", "container", "imds", "static" */
};

struct bm_http_req {
    const char *method; /* GET, HEAD, POST, PUT */
    const char *url;    /* absolute; the query already sorted and RFC 3986 encoded */
    /* SigV4: service ("s3", "monitoring", "sqs") and region; NULL service = unsigned. */
    const char *service;
    const char *region;
    const struct bm_creds *creds;
    const char *const *headers; /* "Name: value" */
    size_t nheaders;
    const void *body;
    size_t body_len;
    /* 2xx bodies go to sink when set; other bodies (and 2xx without sink) are buffered in
     * the response, up to max_body bytes (then BM_E_TOO_LARGE). */
    bm_http_sink_fn sink;
    void *sink_ctx;
    size_t max_body;
    long timeout_ms; /* whole request; 0 = the transport's default */
    /* When set, the transfer ends (BM_E_CANCELLED) within 100 ms of the stop being set, and
     * does not start if it is set already: for waits with no side effect (SQS long polls). */
    const struct bm_stop *cancel;
};
struct bm_http_resp {
    long status;
    struct bm_buf body;
    char request_id[96];    /* x-amz-request-id or x-amzn-RequestId */
    char etag[128];         /* ETag without quotes */
    char version_id[256];   /* x-amz-version-id */
    char bucket_region[32]; /* x-amz-bucket-region (S3 names the bucket's region) */
    uint64_t content_length;
};
/* The caller initialises and cleans resp (bm_http_resp_init/cleanup). */
void bm_http_resp_init(struct bm_http_resp *r);
void bm_http_resp_cleanup(struct bm_http_resp *r);

struct bm_http_ops {
    /* BM_OK when an HTTP response arrived (any status); BM_E_UPSTREAM for transport errors
     * (connect, timeout, reset) with em saying which; a sink's error as returned by it. */
    bm_err (*perform)(void *impl, const struct bm_http_req *rq, struct bm_http_resp *rs,
                      struct bm_errmsg *em);
    void *impl;
};
/* libcurl transport with a pool of easy handles (connection reuse); thread-safe. Needs
 * curl_global_init() done by main() first. Timeouts: connect_ms, low-speed (stall) seconds,
 * default total. */
struct bm_http_curl_opts {
    long connect_timeout_ms;
    long total_timeout_ms;
    long stall_seconds;
    size_t pool_size;
};
bm_err bm_http_curl_new(const struct bm_http_curl_opts *o, struct bm_http_ops *out);
void bm_http_curl_free(struct bm_http_ops *ops);

/* Clock and randomness, swappable in tests. */
struct bm_clock_ops {
    int64_t (*now_ms)(void *impl);            /* wall clock, epoch milliseconds */
    void (*sleep_ms)(void *impl, int64_t ms); /* may return early on shutdown */
    void *impl;
};
/* The wall clock; its sleep returns early only when impl is a struct bm_stop that is set
 * (bm_stop_clock). */
extern const struct bm_clock_ops bm_clock_real;

/* A shutdown signal that waits watch (core/aws.c): set once, from any thread (not from a
 * signal handler: bmas takes signals with sigwait). Sleeps on its clock and transfers that
 * name it (bm_http_req.cancel) end as soon as it is set, instead of waiting out a backoff or a
 * 20 s long poll. */
struct bm_stop {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    atomic_bool set;
};
bm_err bm_stop_init(struct bm_stop *s);
void bm_stop_destroy(struct bm_stop *s);
void bm_stop_set(struct bm_stop *s);
bool bm_stop_is_set(const struct bm_stop *s); /* false for NULL */
/* Sleeps up to ms; true when the stop is set (at once if it is already). */
bool bm_stop_sleep(struct bm_stop *s, int64_t ms);
/* bm_clock_real whose sleep is bm_stop_sleep(s). */
struct bm_clock_ops bm_stop_clock(struct bm_stop *s);
/* xorshift64*: the C library generator is banned (not thread-safe, poor quality). */
struct bm_rng {
    uint64_t s;
};
void bm_rng_seed(struct bm_rng *r, uint64_t seed);
uint64_t bm_rng_next(struct bm_rng *r);
/* Full-jitter backoff before retry `attempt` (1-based): uniform in [0, min(cap, base*2^n)). */
int64_t bm_backoff_ms(struct bm_rng *r, int attempt, int64_t base_ms, int64_t cap_ms);

/* Credentials chain in the SDKs' order: environment, shared credentials/config files with
 * AWS_PROFILE, container credentials (ECS/EKS), EC2 IMDSv2. Cached, refreshed five minutes
 * before expiry; thread-safe. Secrets are never logged. */
struct bm_creds_provider;
/* cfg and http are borrowed and must outlive the provider. */
bm_err bm_creds_provider_new(const struct bm_config *cfg, const struct bm_http_ops *http,
                             const struct bm_clock_ops *clock, struct bm_creds_provider **out);
void bm_creds_provider_free(struct bm_creds_provider *p);
/* Copies current credentials into out; BM_E_NO_CREDENTIALS when no source has any. */
bm_err bm_creds_get(struct bm_creds_provider *p, struct bm_creds *out, struct bm_errmsg *em);
/* After an auth failure: forget cached credentials (at most once per minute). */
void bm_creds_invalidate(struct bm_creds_provider *p);

/* The region each S3 bucket answered from, learnt from S3's redirects (core/s3_region.c):
 * bounded (the least recently used entry goes), thread-safe. */
struct bm_s3_regions;
#define BM_S3_REGIONS_DEFAULT_CAP 256
struct bm_s3_regions *bm_s3_regions_new(size_t cap); /* NULL on OOM */
void bm_s3_regions_free(struct bm_s3_regions *c);
/* Copies bucket's region into out (cap >= 32) and returns true when it is known. */
bool bm_s3_regions_get(struct bm_s3_regions *c, const char *bucket, char *out, size_t cap);
/* Remembers bucket -> region (both checked: a bucket name S3 allows, a region of
 * bm_region_valid's shape); false when refused. */
bool bm_s3_regions_put(struct bm_s3_regions *c, const char *bucket, const char *region);
size_t bm_s3_regions_count(struct bm_s3_regions *c);
/* Whether s has the shape of an AWS region name ("us-east-1", "us-gov-west-1",
 * "ap-southeast-2", "cn-north-1"): lowercase words joined by '-', a number last, at most 31
 * bytes. Only such a value may go into a host name or a credential scope. */
bool bm_region_valid(const char *s);

/* What every AWS call needs; borrowed pointers, all thread-safe. */
struct bm_aws {
    const struct bm_config *cfg;
    const struct bm_http_ops *http;
    struct bm_creds_provider *creds;
    const struct bm_clock_ops *clock;
    /* Buckets' regions learnt from redirects; NULL: none kept (every request of a bucket in
     * another region then follows the redirect again). */
    struct bm_s3_regions *s3_regions;
    /* Shutdown (NULL: none): no retry starts once it is set, backoffs end at once, and long
     * polls are cancelled (core/aws_call.c). */
    const struct bm_stop *stop;
    /* Each call's operation, outcome and latency are counted here (NULL: not counted). */
    struct bm_metrics *metrics;
};
/* Base URL for service ("s3", "monitoring", "sqs"): AWS_ENDPOINT_URL_<SVC>, else
 * AWS_ENDPOINT_URL, else the public endpoint of the service's region (AWS_REGION;
 * BMAS_CLOUDWATCH_REGION for "monitoring" when set). *custom tells whether it was
 * configured. */
bm_err bm_aws_endpoint(const struct bm_config *cfg, const char *service, struct bm_buf *out,
                       bool *custom);
/* The same for an explicit region (an S3 bucket in another region). */
bm_err bm_aws_endpoint_in(const struct bm_config *cfg, const char *service, const char *region,
                          struct bm_buf *out, bool *custom);
/* The region CloudWatch calls are signed for and sent to: BMAS_CLOUDWATCH_REGION, else
 * AWS_REGION. */
const char *bm_cw_region(const struct bm_config *cfg);

/* ---- S3 ---- */
/* S3's own rules for the names an event carries (core/s3_names.c), applied before any URL is
 * built or fetch made. Each returns NULL when the name is valid, else a static sentence saying
 * which rule it breaks. Pure; thread-safe. */
#define BM_S3_MAX_KEY 1024 /* bytes of a key or a version id */
#define BM_S3_ETAG_MAX 38  /* 32 hex digits, '-', up to 5 digits of part count */
/* General-purpose bucket names: 3-63 of [a-z0-9.-], alphanumeric at both ends, no "..", not an
 * IPv4 address, none of S3's reserved prefixes and suffixes. */
const char *bm_s3_bucket_check(const char *name, size_t len);
/* Keys: 1-1024 bytes of well-formed UTF-8 with no NUL (after decoding the event's form). */
const char *bm_s3_key_check(const char *key, size_t len);
/* Version ids: 1-1024 of letters, digits and "._-+/=". */
const char *bm_s3_version_check(const char *v, size_t len);
/* ETags: strips one pair of quotes, refuses a weak W/ ETag and anything but 32 hex digits
 * with an optional -N part count (N 1..10000), and writes the lowercase form to out. */
const char *bm_s3_etag_normalize(const char *in, size_t len, char out[BM_S3_ETAG_MAX + 1]);

struct bm_s3_object_info {
    char etag[128];
    char version_id[256];
    uint64_t size;
    int attempts;
};
/* Called before each attempt, so that a retry after a partial body starts from a clean
 * state (a failed attempt must contribute nothing). */
typedef bm_err (*bm_s3_reset_fn)(void *ctx);
/* Streams bucket/key (version_id may be NULL or "") into sink, retrying 5xx, SlowDown,
 * throttling and transport errors with capped exponential backoff and full jitter, up to
 * MAX_RETRY_ATTEMPTS. 404 -> BM_E_S3_NOT_FOUND, 403 -> BM_E_S3_DENIED (not retried, but
 * an expired token refreshes credentials once), retries exhausted -> BM_E_UPSTREAM.
 * A bucket in another region is followed once per request (S3's 301 or 400 naming the
 * region: the request signed again for it, aws->s3_regions keeping it; docs/architecture.md). */
/* if_match (may be NULL or ""): the ETag the event named; when the object has changed since,
 * S3 answers 412 and this returns BM_E_SUPERSEDED (the newer object's own event counts it). */
bm_err bm_s3_get_object(const struct bm_aws *aws, const char *bucket, const char *key,
                        const char *version_id, const char *if_match, bm_s3_reset_fn reset,
                        bm_http_sink_fn sink, void *ctx, struct bm_s3_object_info *info,
                        struct bm_errmsg *em);
/* HeadObject of bucket/key: info gets the ETag, version id and size; retried, redirected and
 * mapped to errors as bm_s3_get_object is. */
bm_err bm_s3_head_object(const struct bm_aws *aws, const char *bucket, const char *key,
                         struct bm_s3_object_info *info, struct bm_errmsg *em);
/* One ListObjectsV2 page: keys (with size and etag) under prefix, after token (NULL for the
 * first page). fn is called per object; *next gets the continuation token ("" when done). */
typedef bm_err (*bm_s3_list_fn)(void *ctx, const char *key, uint64_t size, const char *etag);
bm_err bm_s3_list_page(const struct bm_aws *aws, const char *bucket, const char *prefix,
                       const char *token, bm_s3_list_fn fn, void *ctx, struct bm_buf *next,
                       struct bm_errmsg *em);
/* Fetches bucket/key into a new ingest (*out, caller frees with bm_ingest_free), retrying
 * as bm_s3_get_object does and starting the ingest afresh on every attempt. On failure
 * nothing is returned: the object contributes nothing. */
bm_err bm_fetch_object(const struct bm_aws *aws, const struct bm_ingest_opts *o, const char *bucket,
                       const char *key, const char *version_id, const char *if_match,
                       struct bm_ingest **out, struct bm_s3_object_info *info,
                       struct bm_errmsg *em);
/* Splits "s3://bucket/key" into bucket and key (key may be "" or end in '/'). */
bool bm_s3_parse_uri(const char *uri, struct bm_buf *bucket, struct bm_buf *key);

/* ---- CloudWatch publisher ---- */
/* BMAS_DIMENSION_SETS: sets split by ';', names by ','; "()" is the set without dimensions
 * (totals); the whole value "lambda-compat" is BM_DIMSETS_LAMBDA_COMPAT. */
enum bm_dim {
    BM_DIM_PROFILE_TYPE, /* InferenceProfileType */
    BM_DIM_MODEL_ID,     /* ModelId */
    BM_DIM_PROFILE_ID,   /* ProfileId */
    BM_DIM_SOURCE_REGION,
    BM_DIM_INFERENCE_REGION,
    BM_DIM_OPERATION,
    /* The replaced Lambda's names (docs/formats.md 7): */
    BM_DIM_INFERENCE_PROFILE, /* InferenceProfile: the profile type, as InferenceProfileType */
    BM_DIM_REGION,            /* Region: the source Region, as SourceRegion */
    BM_DIM_APPLICATION_ID,    /* ApplicationId: an application profile's id, else "None" */
    BM_DIM__COUNT
};
#define BM_DIMSETS_MAX 32
/* Dimensions in one set: a group key has five value slots (core/cw_plan.c). */
#define BM_DIMSET_MAX_DIMS 5
/* What the Lambda's dashboard and CLI examples read: InputTokens and OutputTokens by
 * InferenceProfile, InvocationCount by Region, and the totals without dimensions. */
#define BM_DIMSETS_LAMBDA_COMPAT "InferenceProfile;Region;()"
struct bm_dimsets {
    int n;
    struct {
        int n;
        enum bm_dim d[BM_DIM__COUNT];
    } set[BM_DIMSETS_MAX];
};
/* BM_E_CONFIG naming BMAS_DIMENSION_SETS and the bad name. */
bm_err bm_dimsets_parse(const char *spec, struct bm_dimsets *out, struct bm_errmsg *em);
const char *bm_dim_name(enum bm_dim d);

/* What one flush did (the server's publisher fills it; POST /flush and /status show it). */
struct bm_publish_result {
    uint64_t datums;   /* sent and accepted */
    uint64_t requests; /* successful PutMetricData calls */
    uint64_t failed_requests;
    uint64_t rows_published, rows_dropped, rows_rejected;
    uint64_t dimension_overflow; /* series skipped for BMAS-009 */
    bm_err last_error;
    struct bm_errmsg last_error_msg;
    /* The last failed PutMetricData call (BMAS-004): bm_cw_send_result's error_type and its
     * retries (attempts - 1); "" and 0 when no call failed. */
    char error_type[64];
    uint64_t retry_attempts;
};
/* Largest request body sent (bytes, before gzip) and datums per request: the API's limits. */
#define BM_CW_MAX_DATUMS 1000
#define BM_CW_MAX_BODY 1000000

/* ---- Planning PutMetricData requests (core/cw_plan.c): a pure function ---- */
/* One outbox row as the planner reads it: a per-series delta. Strings are borrowed. */
struct bm_cw_row {
    int64_t id;
    struct bm_series_key key;
    struct bm_counters c;
};
struct bm_cw_plan_opts {
    const struct bm_dimsets *dims; /* copied into the plan */
    const char *namespace_name;    /* CLOUDWATCH_NAMESPACE; copied */
    /* Epoch seconds, for CloudWatch's window (two weeks back, two hours ahead); BM_NO_BUCKET
     * skips the check (re-planning a claim whose rows were checked when it was made). */
    int64_t now;
    size_t max_datums; /* 0 = BM_CW_MAX_DATUMS */
    size_t max_body;   /* 0 = BM_CW_MAX_BODY: bytes of the form body, before gzip */
    /* BMAS_PUBLISH_COST: a datum per group more, EstimatedCostUSD (the cost in dollars);
     * BMAS_PUBLISH_RESIDENCY: one more, ResidencyViolations (a count). A claim must be
     * re-planned with the same settings to give the same calls. */
    bool publish_cost, publish_residency;
    /* BMAS_MAX_SERIES (NULL: every series goes): asked once per (row, dimension set) with the
     * group's key (values in the key's string slots in set order, the set index in `type`,
     * the bucket to be ignored); false leaves that set out for that row. */
    bool (*admit)(void *ctx, const struct bm_series_key *g);
    void *admit_ctx;
};
/* One PutMetricData call: groups [first_group, first_group + ngroups) of the plan, five
 * datums each (InvocationCount and the four token metrics), body_len bytes once encoded. */
struct bm_cw_request {
    size_t first_group, ngroups, ndatums, body_len;
};
struct bm_cw_plan {
    size_t nreq;
    struct bm_cw_request *req;
    uint64_t datums; /* in all requests */
    /* Rows by outcome, as indexes into the planned array, ascending: carried by the requests
     * (to claim), too old for CloudWatch (to drop), every dimension set over 255 characters
     * (nothing to send: rejected), and rows from the future (left pending; counted only). */
    size_t nsent, ndropped, nrejected, nwaiting;
    size_t *sent, *dropped, *rejected;
    uint64_t dimension_overflow; /* (row, dimension set) pairs skipped for BMAS-009 */
    /* Rows whose every dimension set was refused by admit (nothing to send, and nothing wrong
     * with them: to be marked done), and the (row, dimension set) pairs refused. */
    size_t nheld;
    size_t *held;
    uint64_t held_back;
    struct bm__cw_plan_int *impl;
};
/* Plans the calls that publish rows[0..n): every row's delta is merged per dimension set, value
 * and timestamp into one group first (so a datum is sent once however many rows feed it), then
 * groups are packed in the order they were first met into as few requests as the limits allow
 * (datums and exact encoded bytes). The same rows and options always give the same requests,
 * byte for byte, and rows that add no group (dropped, rejected, waiting) change nothing: a
 * claim is re-planned after a crash into exactly the calls it was made of. Pure: no I/O, no
 * clock. On success the caller owns *out (bm_cw_plan_free). BM_E_NOMEM. */
bm_err bm_cw_plan_make(const struct bm_cw_plan_opts *o, const struct bm_cw_row *rows, size_t n,
                       struct bm_cw_plan **out);
/* Appends request k's form body (Query protocol, exactly req[k].body_len bytes) to b. */
bm_err bm_cw_plan_body(const struct bm_cw_plan *p, size_t k, struct bm_buf *b);
/* Frees a plan; accepts NULL. */
void bm_cw_plan_free(struct bm_cw_plan *p);
/* The outcome of one call. answered: CloudWatch answered the last attempt (else it could not
 * be reached); refused: a 400 that resending cannot fix (InvalidParameterValue, ...);
 * throttled: the last answer was throttling. em says what failed last. */
struct bm_cw_send_result {
    bool accepted, refused, throttled, answered;
    uint64_t failed_attempts; /* attempts that were retried */
    uint64_t attempts;        /* calls made (a credentials refresh's repeat not counted) */
    /* What failed last: CloudWatch's error code ("Throttling", "InvalidParameterValue",
     * "InternalServiceError"), "HTTP <status>" for an answer without one, "TransportError" or
     * "NoCredentials" when no answer came; "" when accepted. */
    char error_type[64];
    struct bm_errmsg em;
};
/* Sends one PutMetricData form body (gzipped over 16 KB), retrying it alone on throttling,
 * 5xx, RequestExpired and transport errors with capped exponential backoff and full jitter,
 * up to MAX_RETRY_ATTEMPTS (an auth failure refreshes credentials once). BM_OK when
 * accepted; BM_E_THROTTLED when the retries ended throttled; BM_E_PUBLISH otherwise (refused,
 * or retries exhausted). Reads no outbox and marks nothing: the caller records the outcome.
 * Thread-safe with its own aws. */
bm_err bm_cw_send(const struct bm_aws *aws, const struct bm_buf *body,
                  struct bm_cw_send_result *res);

/* ------------------------------------------------------------------------------------------ */
/* Event envelopes (POST /events, the SQS consumer): Lambda SQS events, S3 notifications (also
 * wrapped in SNS), EventBridge "Object Created", s3:TestEvent -> the objects to ingest. */
enum bm_ref_kind {
    BM_REF_OBJECT,     /* an ObjectCreated log object to ingest */
    BM_REF_TEST_EVENT, /* s3:TestEvent: acknowledge */
    BM_REF_IGNORED,    /* another event type (ObjectRemoved, ...): acknowledge */
};
struct bm_object_ref {
    enum bm_ref_kind kind;
    char *bucket;     /* decoded */
    char *key;        /* decoded: form-URL for S3/SNS notifications, as given for EventBridge */
    char *version_id; /* "" when absent; checked by bm_s3_version_check */
    char *etag;       /* bm_s3_etag_normalize's form (unquoted, lowercase), "" when absent */
    uint64_t size;
    char *event_name; /* "ObjectCreated:Put", "Object Created", "s3:TestEvent", ...; "" when an
                       * S3 record has no eventName (counted as an ObjectCreated) */
};
/* One SQS message, or the single event of a bare envelope. */
struct bm_message {
    char *message_id; /* SQS messageId; "" for a bare event */
    long receive_count;
    bm_err parse_err; /* BM_E_MSG_PARSE when the body is no envelope we know */
    struct bm_errmsg parse_msg;
    struct bm_object_ref *refs;
    size_t nrefs;
};
/* The shape a POST /events body came in (docs/formats.md 5), which decides how it is answered. */
enum bm_event_form {
    BM_FORM_BARE,       /* one notification posted as it is (an EventBridge rule's target) */
    BM_FORM_LAMBDA,     /* {"Records":[SQS records]}: Lambda's SQS event */
    BM_FORM_SQS_RECORD, /* one SQS record: an EventBridge Pipe from SQS to an API destination */
    BM_FORM_SQS_ARRAY,  /* [SQS records]: what a batching Pipe hands its target */
};
struct bm_event_batch {
    enum bm_event_form form;
    bool is_sqs; /* the messages are SQS records, each with its messageId (every form but bare) */
    struct bm_message *msgs;
    size_t n;
};
/* Limits of what one envelope may hold, checked by a scan before anything is built. */
#define BM_MAX_MESSAGE_BYTES (256 * 1024) /* a message body (SQS, SNS, EventBridge maximum) */
#define BM_MAX_S3_RECORDS_PER_MESSAGE 100 /* S3 sends one record per notification */
#define BM_MAX_MESSAGE_ID 1024            /* bytes of an SQS messageId (S3 sends a UUID) */
/* Parses a POST /events body in memory proportional to one message, never to the body: the
 * outer event is scanned, not turned into a tree. The body is a Lambda SQS event, one SQS
 * record, a JSON array of SQS records, or a bare notification (b->form says which).
 * Whole-body errors (with em): BM_E_MSG_PARSE when the body is no known envelope, holds data
 * after its JSON value, a duplicate "Records", an empty array, a record that is not an object
 * or one without a messageId; BM_E_TOO_LARGE when an SQS event or array has more than
 * max_messages messages (nothing is allocated then) or a bare event is over a limit.
 * Per-message problems of an SQS record land in that message's parse_err instead
 * (BM_E_MSG_PARSE, or BM_E_TOO_LARGE past BM_MAX_MESSAGE_BYTES or
 * BM_MAX_S3_RECORDS_PER_MESSAGE), and such a message names no object, so the rest of the batch
 * still counts. BM_E_NOMEM. Caller frees *out with bm_event_batch_free. Thread-safe. */
bm_err bm_envelope_parse(const char *body, size_t len, size_t max_messages,
                         struct bm_event_batch **out, struct bm_errmsg *em);
/* Parses one SQS message body (what a queue consumer receives) into msg (fields owned by
 * msg, freed by bm_message_cleanup). Sets msg->parse_err rather than failing; returns only
 * BM_E_NOMEM or BM_OK. */
bm_err bm_message_parse_body(const char *message_id, long receive_count, const char *body,
                             size_t len, struct bm_message *msg);
void bm_message_cleanup(struct bm_message *m);
void bm_event_batch_free(struct bm_event_batch *b);

/* ---- SQS consumer side (JSON 1.0 protocol, X-Amz-Target: AmazonSQS.*) ---- */
struct bm_sqs_msg {
    char *id;
    char *receipt;
    char *body;
    size_t body_len;
    long receive_count; /* ApproximateReceiveCount */
};
struct bm_sqs_batch {
    struct bm_sqs_msg *m;
    size_t n;
};
/* Long-polls queue_url for up to max (1..10) messages, waiting up to wait_s seconds. An empty
 * batch is success. Errors: BM_E_UPSTREAM (network, 5xx, throttling: retry later),
 * BM_E_S3_DENIED-like auth failures are reported as BM_E_UPSTREAM with em naming the SQS
 * error code. Caller cleans *out with bm_sqs_batch_cleanup. */
bm_err bm_sqs_receive(const struct bm_aws *aws, const char *queue_url, int max, int wait_s,
                      struct bm_sqs_batch *out, struct bm_errmsg *em);
void bm_sqs_batch_cleanup(struct bm_sqs_batch *b);
/* Deletes up to 10 messages by receipt handle (DeleteMessageBatch); *deleted counts the ones
 * SQS confirmed. */
bm_err bm_sqs_delete(const struct bm_aws *aws, const char *queue_url, const char *const *receipts,
                     size_t n, size_t *deleted, struct bm_errmsg *em);

/* ------------------------------------------------------------------------------------------ */
/* ---- Crypto, URL and SigV4 (shared by the emulator and bmas) ---- */
/* Digests and MAC over OpenSSL's libcrypto (core/crypto.c). They fail only when OpenSSL cannot
 * allocate (BM_E_NOMEM). Thread-safe; out is written only on success. */
#define BM_SHA256_LEN 32
#define BM_SHA256_HEX_LEN 64
#define BM_MD5_LEN 16
#define BM_MD5_HEX_LEN 32
bm_err bm_sha256(const void *p, size_t len, unsigned char out[BM_SHA256_LEN]);
bm_err bm_md5(const void *p, size_t len, unsigned char out[BM_MD5_LEN]);
bm_err bm_hmac_sha256(const void *key, size_t key_len, const void *p, size_t len,
                      unsigned char out[BM_SHA256_LEN]);
/* Lowercase hex of len bytes into out (2 * len + 1 bytes, NUL-terminated). */
void bm_hex(const unsigned char *p, size_t len, char *out);
/* The digests as lowercase hex (S3 ETags, SQS MD5OfMessageBody, SigV4 payload hashes). */
bm_err bm_sha256_hex(const void *p, size_t len, char out[BM_SHA256_HEX_LEN + 1]);
bm_err bm_md5_hex(const void *p, size_t len, char out[BM_MD5_HEX_LEN + 1]);
/* Constant-time comparison of two len-byte secrets (signatures). */
bool bm_crypto_equal(const void *a, const void *b, size_t len);
/* Standard base64 (RFC 4648 section 4, padded), appended to out. Decoding is strict: a bad
 * character, length or padding is BM_E_BAD_REQUEST and out keeps its old content. */
bm_err bm_base64_encode(const void *p, size_t len, struct bm_buf *out);
bm_err bm_base64_decode(const char *s, size_t len, struct bm_buf *out);

/* Percent-decodes len bytes of s and appends the result to out (core/url.c). With form, '+'
 * is a space (application/x-www-form-urlencoded), decided in the same single left-to-right
 * pass as %XX so that "%2B" stays '+'. A malformed escape is BM_E_BAD_REQUEST (out unchanged). */
bm_err bm_url_decode(const char *s, size_t len, bool form, struct bm_buf *out);
/* RFC 3986 encoding appended to out: A-Za-z0-9 and "-._~" stay, and so do the characters in
 * safe (may be NULL; e.g. "/" for S3 keys); every other byte becomes %XX (uppercase hex). With
 * form, a space becomes '+' (S3 event keys, S3 EncodingType=url listings). */
bm_err bm_url_encode(const char *s, size_t len, const char *safe, bool form, struct bm_buf *out);
/* One "name=value" pair of a query string or form body, still encoded; borrowed from it. */
struct bm_url_pair {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
    bool has_value; /* false for a bare "name" without '=' */
};
/* Iterates over the '&'-separated pairs of s (len bytes) from *pos (start at 0), skipping empty
 * pieces. Returns false when there are no more. */
bool bm_url_query_next(const char *s, size_t len, size_t *pos, struct bm_url_pair *pair);

/* SigV4 (core/sigv4.c). A request as the signer saw it: every field is borrowed. */
struct bm_sigv4_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};
struct bm_sigv4_request {
    const char *method;
    const char *path; /* the path as sent on the wire, without the query */
    size_t path_len;
    /* Every service but S3 normalises the path (dot segments, "//") and URI-encodes it once
     * more ("double encoding"); S3 signs the path exactly as sent: both false. */
    bool path_normalize;
    bool path_encode;
    const char *query; /* raw query string without '?', or NULL */
    size_t query_len;
    const char *query_skip; /* a parameter left out ("X-Amz-Signature" when presigned), or NULL */
    const struct bm_sigv4_header *headers; /* all request headers, repeats allowed */
    size_t n_headers;
    const char *signed_headers; /* "host;x-amz-date": lowercase, ';'-separated, sorted */
    const char *payload_hash;   /* hex SHA-256 of the body, or "UNSIGNED-PAYLOAD", ... */
};
/* Appends the canonical request to out: query parameters decoded, strictly re-encoded and
 * sorted; signed headers lowercased, trimmed, inner whitespace collapsed, repeats joined with
 * ','. BM_E_BAD_REQUEST on a malformed %-escape, BM_E_TOO_LARGE past internal caps. */
bm_err bm_sigv4_canonical_request(const struct bm_sigv4_request *rq, struct bm_buf *out);
/* Appends "AWS4-HMAC-SHA256\n<amz_date>\n<scope>\n<hex sha256 of canonical>" to out;
 * scope is "<yyyymmdd>/<region>/<service>/aws4_request". */
bm_err bm_sigv4_string_to_sign(const char *amz_date, const char *scope, const char *canonical,
                               size_t len, struct bm_buf *out);
/* Derives the signing key from the secret, date (yyyymmdd), region and service; the
 * intermediate keys are zeroed. key is secret material: zero it after use. */
bm_err bm_sigv4_signing_key(const char *secret, const char *date8, const char *region,
                            const char *service, unsigned char key[BM_SHA256_LEN]);
/* The hex HMAC-SHA256 of the string to sign under key. */
bm_err bm_sigv4_signature(const unsigned char key[BM_SHA256_LEN], const char *sts, size_t len,
                          char out[BM_SHA256_HEX_LEN + 1]);

/* ------------------------------------------------------------------------------------------ */
/* Sample Bedrock invocation logs (core/sample.c, `bmas sample`): realistic records of every
 * modelId shape, with the writer's own totals, kept from the numbers it chose. */
enum { BM_SAMPLE_TYPES = 4 }; /* OnDemand, CrossRegion, GlobalCrossRegion, Application */
struct bm_sample_opts {
    int64_t start;       /* epoch seconds of the first record */
    int64_t span;        /* seconds the records spread over, evenly */
    uint64_t seed;       /* the same seed and options give the same bytes */
    uint64_t records;    /* records to write; 0: write `bytes` uncompressed bytes instead */
    uint64_t bytes;      /* uncompressed size to reach (last record crosses it) */
    const char *account; /* 12 digits, in records and the key */
    const char *region;  /* the source Region of every record, and the key's */
    bool plain;          /* JSON lines instead of gzip */
};
struct bm_sample_totals {
    uint64_t records, bytes, invocations, input_tokens, output_tokens, cache_read_tokens,
        cache_write_tokens;
    /* Per profile type as README's table classifies the ids (index: bm_sample_type_name). */
    uint64_t type_invocations[BM_SAMPLE_TYPES], type_input_tokens[BM_SAMPLE_TYPES],
        type_output_tokens[BM_SAMPLE_TYPES];
};
/* Receives the object's bytes in order; a non-BM_OK return stops the writer with that code. */
typedef bm_err (*bm_sample_write_fn)(void *ctx, const void *p, size_t len);
/* Defaults: 100 records over the 300 s before now, account 123456789012, us-east-1, gzip. */
void bm_sample_opts_init(struct bm_sample_opts *o, int64_t now);
/* Writes one object through fn and fills *out with its totals. BM_E_CONFIG on options that
 * make no object, BM_E_NOMEM, or fn's code. Thread-safe (no shared state). */
bm_err bm_sample_write(const struct bm_sample_opts *o, bm_sample_write_fn fn, void *ctx,
                       struct bm_sample_totals *out, struct bm_errmsg *em);
/* Appends the key Bedrock would deliver the object under (AWSLogs/ACCOUNT/
 * BedrockModelInvocationLogs/REGION/YYYY/MM/DD/HH/YYYYMMDDTHHMMSSZ_<hex>.json.gz, stamped at
 * the end of the span; the hex follows from seed and time). */
bm_err bm_sample_key(const struct bm_sample_opts *o, struct bm_buf *key);
/* Appends the options (seed, start, span, region) and totals as one JSON line, with "key"
 * when key is non-NULL. */
bm_err bm_sample_totals_json(const struct bm_sample_opts *o, const struct bm_sample_totals *t,
                             const char *key, struct bm_buf *b);
/* "OnDemand", "CrossRegion", "GlobalCrossRegion", "Application"; "" out of range. */
const char *bm_sample_type_name(int i);

/* ------------------------------------------------------------------------------------------ */
/* bmas's own metrics for GET /metrics (metrics.c, Prometheus text format 0.0.4). One struct
 * bm_metrics per service, updated with relaxed C11 atomics (no lock on any hot path) by the
 * HTTP layer, the ingest workers, the publisher and core/aws_call.c; rendered on demand. */
enum bm_metrics_route {
    BM_MR_EVENTS,
    BM_MR_FLUSH,
    BM_MR_STATUS,
    BM_MR_AGGREGATES,
    BM_MR_HEALTHZ,
    BM_MR_METRICS,
    BM_MR_DASHBOARD,
    BM_MR_OTHER, /* no such route: the path is not a label, so scanners add no series */
    BM_MR__COUNT
};
/* The label of a route: "/events", ..., "other". */
const char *bm_metrics_route_name(enum bm_metrics_route r);
struct bm_metrics;
/* A zeroed set of metrics; NULL on OOM. Freed with bm_metrics_free (accepts NULL). */
struct bm_metrics *bm_metrics_new(void);
void bm_metrics_free(struct bm_metrics *m);
/* Each records one event; m may be NULL (nothing recorded). Thread-safe, lock-free. */
void bm_metrics_http(struct bm_metrics *m, enum bm_metrics_route r, int status, int64_t dur_ms);
/* One log object fetched and ingested by the service: ok says whether it was counted (a
 * duplicate found only at commit is ok too); records and bytes (as received) are added. */
void bm_metrics_ingest(struct bm_metrics *m, bool ok, uint64_t records, uint64_t invalid,
                       uint64_t bytes, int64_t dur_ms);
/* One flush of the publisher (ok: it ended without an error). */
void bm_metrics_flush(struct bm_metrics *m, bool ok, int64_t dur_ms);
/* One AWS call through core/aws_call.c: op is the operation ("GetObject", "PutMetricData",
 * ...; others count under "other"), ok its outcome, retries the attempts after the first. */
void bm_metrics_aws(struct bm_metrics *m, const char *op, bool ok, unsigned retries,
                    int64_t dur_ms);
/* n new CloudWatch series not published because of BMAS_MAX_SERIES. */
void bm_metrics_held_back(struct bm_metrics *m, uint64_t n);
/* Appends every metric of m, each with its HELP and TYPE lines, to b. BM_E_NOMEM or the
 * buffer's cap. Reads the counters without stopping writers (each value is exact, the set is
 * not a snapshot). */
bm_err bm_metrics_write(const struct bm_metrics *m, struct bm_buf *b);
/* Appends the aggregate counters (bmas_invocations_total, bmas_input_tokens_total, ...) of a,
 * which must be grouped by profile type, model, source and inference Region: one series per
 * row for the first max_series rows (0: no cap), the rest folded into one series whose labels
 * are all "other"; *folded (may be NULL) gets how many rows were folded. */
bm_err bm_metrics_write_aggs(const struct bm_agg *a, size_t max_series, struct bm_buf *b,
                             size_t *folded);
/* Prometheus text format pieces: "# HELP name help\n# TYPE name type\n" (help escaped), and
 * a label value escaped (backslash, double quote, line feed) between double quotes. */
bm_err bm_prom_family(struct bm_buf *b, const char *name, const char *type, const char *help);
bm_err bm_prom_label_value(struct bm_buf *b, const char *s, size_t len);

#endif
