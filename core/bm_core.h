/* bm_core.h: the one public header of libbm_core (errors, logging, memory, buffers, config,
 * time, the streaming ingest pipeline, classification and aggregation). Other folders include
 * only this file; everything in the private core_int.h is private to core/ and its unit tests. */
#ifndef BM_CORE_H
#define BM_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------------------------------ */
/* Errors (STYLE.md G3). Codes are only ever appended; the wire codes BMAS-001..010 come from the
 * spec, BMAS-011 onwards are ours (README "Error codes" lists them all). Several internal codes
 * share one wire code where the caller's reaction is the same. Columns: name, wire code, HTTP
 * status, whether a retry may help, short message. */
#define BM_ERR_MAP(X)                                                                          \
    X(BM_E_S3_NOT_FOUND, "BMAS-001", 404, 0, "S3 object not found")                            \
    X(BM_E_S3_DENIED, "BMAS-002", 403, 0, "S3 access denied")                                  \
    X(BM_E_LOG_FORMAT, "BMAS-003", 422, 0, "invalid log format")                               \
    X(BM_E_PUBLISH, "BMAS-004", 502, 1, "CloudWatch publish failed")                           \
    X(BM_E_MSG_PARSE, "BMAS-005", 400, 0, "SQS message parse error")                           \
    X(BM_E_NO_PROFILE, "BMAS-006", 422, 0, "inference profile not found")                      \
    X(BM_E_TOKENS, "BMAS-007", 422, 0, "token count invalid")                                  \
    X(BM_E_REGION, "BMAS-008", 422, 0, "region detection failed")                              \
    X(BM_E_DIMENSIONS, "BMAS-009", 422, 0, "metric dimension overflow")                        \
    X(BM_E_TOO_LARGE, "BMAS-010", 413, 0, "memory limit exceeded")                             \
    X(BM_E_NOMEM, "BMAS-010", 503, 1, "out of memory")                                         \
    X(BM_E_LINE_TOO_LONG, "BMAS-010", 413, 0, "log line over the line cap")                    \
    X(BM_E_INFLATE_CAP, "BMAS-010", 413, 0, "object inflates past the size cap")               \
    X(BM_E_GZIP, "BMAS-003", 422, 0, "corrupt or truncated gzip data")                         \
    X(BM_E_BAD_REQUEST, "BMAS-011", 400, 0, "bad request")                                     \
    X(BM_E_UNAUTHORIZED, "BMAS-012", 401, 0, "unauthorized")                                   \
    X(BM_E_STORAGE_BUSY, "BMAS-013", 503, 1, "storage busy")                                   \
    X(BM_E_STORAGE, "BMAS-014", 500, 1, "storage error")                                       \
    X(BM_E_INTERNAL, "BMAS-015", 500, 1, "internal error")                                     \
    X(BM_E_IO, "BMAS-016", 500, 0, "cannot read source")                                       \
    X(BM_E_UPSTREAM, "BMAS-017", 502, 1, "AWS request failed")                                 \
    X(BM_E_NO_ROUTE, "BMAS-018", 404, 0, "no such route")                                      \
    X(BM_E_METHOD, "BMAS-019", 405, 0, "method not allowed")                                   \
    X(BM_E_QUARANTINED, "BMAS-020", 422, 0, "object quarantined after repeated failures")      \
    X(BM_E_CONFIG, "BMAS-021", 400, 0, "invalid configuration")                                \
    X(BM_E_THROTTLED, "BMAS-004", 503, 1, "CloudWatch throttled the request")

typedef enum {
    BM_OK = 0,
#define BM_X_(name, wire, http, retry, msg) name,
    BM_ERR_MAP(BM_X_)
#undef BM_X_
        BM_E__COUNT
} bm_err;

/* Wire code ("BMAS-001"), HTTP status, retry flag and English message of an error. Pure
 * functions over a static table; "OK"/200/false/"ok" for BM_OK. */
const char *bm_err_wire(bm_err e);
int bm_err_http(bm_err e);
bool bm_err_retry(bm_err e);
const char *bm_err_str(bm_err e);
/* The spec's wire codes in order, for counters keyed by wire code: index of e's wire code in
 * bm_err_wire_list(), and that list (BM_ERR_WIRE_N entries, "BMAS-001".."BMAS-0nn"). */
#define BM_ERR_WIRE_N 21
int bm_err_wire_index(bm_err e);
const char *bm_err_wire_at(int idx);

/* Optional detail filled by a callee that fails (curl's error buffer): the caller decides
 * whether and where to log it. */
struct bm_errmsg {
    char text[256];
};
/* Formats into em when em is non-NULL; returns rc so callers can `return bm_errmsg_set(...)`. */
bm_err bm_errmsg_set(struct bm_errmsg *em, bm_err rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------------------------------------ */
/* Memory (STYLE.md G4). Every heap allocation goes through these so tests can inject failure. */
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
#define BM_FREE(p)                                                                             \
    do {                                                                                       \
        bm_free(p);                                                                            \
        (p) = NULL;                                                                            \
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
bm_err bm_buf_appendf(struct bm_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends s (len bytes) as a quoted JSON string, escaping as RFC 8259 requires. Invalid UTF-8
 * bytes are replaced by U+FFFD so the output is always valid JSON. */
bm_err bm_buf_append_json_str(struct bm_buf *b, const char *s, size_t len);
/* Takes the data out (caller frees with bm_free) and resets the buffer. */
char *bm_buf_steal(struct bm_buf *b);

/* ------------------------------------------------------------------------------------------ */
/* Logging (STYLE.md G5): one JSON object per line on the sink fd (stderr by default), written
 * with a single write(). Arguments are evaluated only when the level is enabled. */
enum bm_log_level { BM_DEBUG = 0, BM_INFO = 1, BM_WARN = 2, BM_ERROR = 3, BM_LOG_OFF = 4 };
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
/* Adds "code":"BMAS-0xx" and "error":"<message>". */
#define BM_KV_ERR(val) ((struct bm_kv){.k = "code", .type = BM_KV_T_ERR, .v.e = (val)})
/* val is already valid JSON (an object or array built by the caller). */
#define BM_KV_RAW(key, val) ((struct bm_kv){.k = (key), .type = BM_KV_T_RAW, .v.s = (val)})
#define BM_LOG(lvl, mod, event, msg, ...)                                                      \
    do {                                                                                       \
        if (bm_log_enabled(lvl)) {                                                             \
            const struct bm_kv bm_kv_[] = {{.type = BM_KV_T_NONE}, __VA_ARGS__};               \
            bm_log_write((lvl), (mod), (event), (msg), bm_kv_,                                 \
                         sizeof bm_kv_ / sizeof bm_kv_[0]);                                    \
        }                                                                                      \
    } while (0)
bool bm_log_enabled(enum bm_log_level lvl);
void bm_log_write(enum bm_log_level lvl, const char *mod, const char *event, const char *msg,
                  const struct bm_kv *kv, size_t n);
/* The log sink is the one mutable global (STYLE.md G1): set once in main() or a test. */
void bm_log_set_level(enum bm_log_level lvl);
void bm_log_set_fd(int fd);
/* Parses DEBUG|INFO|WARN|ERROR|OFF (case-insensitive); false when unknown. */
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
/* Configuration (STYLE.md G6): one table drives parsing, validation, --help and the start-up
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
    /* Ours. */
    char *listen;
    char *db_path;
    char *auth_token;
    long flush_interval_s;
    long bucket_seconds;
    char *dimension_sets;
    char *sqs_queue_url;
    char *app_profile_map;
    long fetch_concurrency;
    uint64_t max_line_bytes;
    uint64_t max_object_bytes;
    uint64_t max_body_bytes;
    long sqs_wait_seconds;
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

#endif
