/* bm_rt.h: the runtime every part of bmas and the emulator builds on (libbm_core): errors,
 * memory, buffers, logging, time, listen addresses, configuration, crypto, URLs and SigV4, and
 * the service's own metrics. core/ has three public headers, one per library it holds: this
 * one, bm_ingest.h (the log pipeline and the data model) and bm_aws.h (the AWS clients and the
 * event envelopes); a file includes the ones it uses. core_int.h is private to core/. */
#ifndef BM_RT_H
#define BM_RT_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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
/* Appends everything f gives until its end: BM_E_TOO_LARGE past the buffer's cap, BM_E_NOMEM;
 * a read error stops it with BM_OK and ferror(f) set, for the caller to name. The staging
 * chunk is wiped (a credential process's output passes through it). */
bm_err bm_buf_append_stream(struct bm_buf *b, FILE *f);
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
/* Initialises cv for waits timed on the monotonic clock, so a step of the wall clock neither
 * stretches nor cuts them. Returns 0 or the pthread error. */
int bm_cond_init_mono(pthread_cond_t *cv);
/* The monotonic instant ms milliseconds from now (negative = now), as pthread_cond_timedwait
 * takes it for a condition variable of bm_cond_init_mono. */
void bm_mono_deadline(int64_t ms, struct timespec *out);

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
    long db_max_connections; /* BMAS_DB_MAX_CONNECTIONS, 0 = the store's default */
    char *auth_token;
    long flush_interval_s;
    char *instance_id; /* BMAS_INSTANCE_ID, "" = hostname-pid */
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
/* ---- Crypto, URL and SigV4 (shared by the emulator and bmas) ---- */
/* Whether s has the shape of an AWS region name ("us-east-1", "us-gov-west-1",
 * "ap-southeast-2", "cn-north-1"): lowercase words joined by '-', a number last, at most 31
 * bytes. Only such a value may go into a host name or a credential scope. */
bool bm_region_valid(const char *s);
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
/* Prometheus text format pieces: "# HELP name help\n# TYPE name type\n" (help escaped), and
 * a label value escaped (backslash, double quote, line feed) between double quotes. */
bm_err bm_prom_family(struct bm_buf *b, const char *name, const char *type, const char *help);
bm_err bm_prom_label_value(struct bm_buf *b, const char *s, size_t len);

#endif
