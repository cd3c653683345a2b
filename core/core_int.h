/* core_int.h: declarations private to core/ and its unit tests (sqlite's *Int.h). Nothing
 * outside core/ and tests/unit/test_core_*.c includes this file. */
#ifndef BM_CORE_INT_H
#define BM_CORE_INT_H

#include "core/bm_rt.h"
#include "core/bm_ingest.h"
#include "core/bm_aws.h"

/* Value of a hex digit (either case), or -1 (url.c; shared by the JSON and URL decoders). */
int bm__hex_value(unsigned char c);

/* ---- JSON scanning (json_scan.c) -----------------------------------------------------------
 * A validating skipper for the parts of a record we do not keep. Strings are skipped with
 * memchr, which is what lets ingest run near zlib's speed on prompt-heavy records. Skipped
 * strings are checked for closing quotes and valid escapes, not for raw control characters
 * or UTF-8 validity (the bytes are never used). */
struct bm__scan {
    const char *p;
    const char *end;
    int depth;
};
#define BM__SCAN_MAX_DEPTH 512

/* Each returns BM_OK and advances p, or BM_E_LOG_FORMAT on malformed or truncated input. */
void bm__scan_ws(struct bm__scan *s);
bm_err bm__scan_skip_value(struct bm__scan *s);
/* Reads a string at p (which must be '"'). When it has no escapes, *out points into the
 * input; otherwise it is unescaped into scratch (cap bytes) and *out points there. len is in
 * bytes. BM_E_TOO_LARGE when an escaped string does not fit scratch. */
bm_err bm__scan_string(struct bm__scan *s, char *scratch, size_t cap, const char **out,
                       size_t *len);
/* Reads a JSON number that must be a non-negative integer below 2^53. BM_E_TOKENS when the
 * value is a valid JSON number but negative, fractional, or too big, or is a string, bool or
 * null-less non-number (the value is skipped in that case); BM_E_LOG_FORMAT when malformed. */
bm_err bm__scan_uint(struct bm__scan *s, uint64_t *out);
/* Containers one member at a time, for callers that must not build a tree (envelope.c walks
 * 6 MiB bodies of tiny elements). bm__scan_open enters the object or array at p (BM_E_LOG_FORMAT
 * when p is another value); each bm__scan_next moves to the next member and sets *more, false
 * once the closing bracket is consumed. For an object it reads the member's name into key and
 * leaves p at the value; the caller consumes every value (read or skip) before the next call. */
struct bm__scan_iter {
    bool is_obj;
    bool first;
};
/* A member name, unescaped. p is NULL when an escaped name does not fit buf: such a name is
 * longer than 80 bytes, so it can match none of the short names callers look for. */
struct bm__scan_key {
    char buf[512];
    const char *p;
    size_t len;
};
bm_err bm__scan_open(struct bm__scan *s, struct bm__scan_iter *it);
bm_err bm__scan_next(struct bm__scan *s, struct bm__scan_iter *it, struct bm__scan_key *key,
                     bool *more);
/* Whether key is exactly name. */
bool bm__scan_key_is(const struct bm__scan_key *key, const char *name);

/* ---- Envelopes (envelope.c: the outer Lambda SQS event; envelope_msg.c: one message) ---- */
/* Parses one message body (an S3 notification, SNS notification, EventBridge event or
 * s3:TestEvent) into m, whose message_id and receive_count the caller set. A body that is no
 * event bmas knows sets m->parse_err to BM_E_MSG_PARSE, one over a limit (BM_MAX_MESSAGE_BYTES,
 * BM_MAX_S3_RECORDS_PER_MESSAGE) to BM_E_TOO_LARGE, both with m->parse_msg; the records are
 * counted by a scan before any tree is built. Returns BM_E_NOMEM or BM_OK. */
bm_err bm__message_parse(struct bm_message *m, const char *body, size_t len);
/* Marks m as failed with code (first failure wins); returns BM_OK so parsers can return it. */
bm_err bm__message_fail(struct bm_message *m, bm_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- Framing (frame.c) ---------------------------------------------------------------------
 * Turns a stream of decompressed bytes into records: JSON lines (the real format), a JSON
 * array of records, or pretty-printed objects one after another. */
/* Called per record; rec == NULL (len 0) reports a record dropped for the line cap, in
 * stream order. */
typedef bm_err (*bm__record_fn)(void *ctx, const char *rec, size_t len);
enum bm__frame_mode { BM__FRAME_DETECT, BM__FRAME_LINES, BM__FRAME_VALUES, BM__FRAME_ARRAY };
struct bm__framer {
    enum bm__frame_mode mode;
    struct bm_buf carry; /* a record split across chunks; capped at max_line */
    bool skipping;       /* inside a record over the cap: drop bytes until its end */
    bool first_line_seen;
    bool bom_checked;
    /* Value-mode state machine (VALUES and ARRAY). */
    int depth;
    bool in_str;
    bool esc;
    uint64_t too_long;  /* records dropped for the cap */
    uint64_t reported;  /* of those, how many were passed to the record callback */
    uint64_t malformed; /* bytes between values that were no JSON (counted per run) */
};
void bm__framer_init(struct bm__framer *f, size_t max_line);
void bm__framer_cleanup(struct bm__framer *f);
/* Calls fn for every complete record in data. Errors from fn other than per-record ones stop
 * the stream and are returned. */
bm_err bm__framer_feed(struct bm__framer *f, const char *data, size_t len, bm__record_fn fn,
                       void *ctx);
/* Emits a last record without a trailing newline. */
bm_err bm__framer_finish(struct bm__framer *f, bm__record_fn fn, void *ctx);

/* zlib's allocator hooks (z_stream.zalloc / zfree), on bm_calloc and bm_free (alloc.c). */
void *bm__z_alloc(void *opaque, unsigned items, unsigned size);
void bm__z_free(void *opaque, void *p);

/* ---- Decompression (gunzip.c) --------------------------------------------------------------
 * Streaming gunzip, told by the 1f 8b magic (not the name or a header), multi-member, with a
 * cap on the total output. Plain input passes through unchanged. */
typedef bm_err (*bm__bytes_fn)(void *ctx, const char *data, size_t len);
struct bm__gunzip;
/* engine: BM_INFLATE_AUTO takes ISA-L when the build has it. */
struct bm__gunzip *bm__gunzip_new(uint64_t max_out, enum bm_inflate engine);
void bm__gunzip_free(struct bm__gunzip *g);
bm_err bm__gunzip_feed(struct bm__gunzip *g, const void *data, size_t len, bm__bytes_fn fn,
                       void *ctx);
/* BM_E_GZIP when the input stopped inside a gzip member (truncated object). */
bm_err bm__gunzip_finish(struct bm__gunzip *g, bm__bytes_fn fn, void *ctx);
bool bm__gunzip_is_gzip(const struct bm__gunzip *g);
uint64_t bm__gunzip_out_bytes(const struct bm__gunzip *g);

/* ---- The second stage on its own thread (pipe.c) ------------------------------------------
 * A ring of buffers between the thread that inflates an object and the one that parses it. */
struct bm__pipe;
/* Starts a thread calling fn(ctx, bytes, len) for what is written, in order; BM_E_BUSY when
 * the process already runs one fewer extra threads than CPUs (stay on one thread). */
bm_err bm__pipe_start(bm__bytes_fn fn, void *ctx, struct bm__pipe **out);
/* Copies the bytes in, waiting while the ring is full; the consumer's first error, if any. */
bm_err bm__pipe_write(struct bm__pipe *p, const char *data, size_t len);
/* Hands on what is left, waits for the thread, frees the pipe: the consumer's first error. */
bm_err bm__pipe_close(struct bm__pipe *p);
/* Stops the thread without reading what is left, and frees the pipe (NULL: nothing). */
void bm__pipe_abort(struct bm__pipe *p);

/* ---- Record parsing (record.c) ------------------------------------------------------------- */
struct bm__slice {
    const char *p;
    size_t len;
};
struct bm__record {
    struct bm__slice timestamp, region, inference_region, operation, model_id;
    uint64_t input_tokens, output_tokens, cache_read_tokens, cache_write_tokens;
    struct bm__slice attr[BM_ATTR_MAX]; /* values of attrs' keys (absent: empty) */
    /* Unescaped copies of string fields land here when a field carries escapes. */
    char scratch[4096];
    size_t scratch_used;
};
/* Parses one record. attrs: the attribution keys to read into r->attr (NULL or none: the
 * parser skips requestMetadata and identity unread). BM_E_LOG_FORMAT (BMAS-003) for
 * malformed JSON or a missing or non-string timestamp/modelId; BM_E_TOKENS (BMAS-007) for a
 * bad token count. em says where. */
bm_err bm__record_parse(const char *line, size_t len, const struct bm_attr_keys *attrs,
                        struct bm__record *r, struct bm_errmsg *em);

/* ---- XML (xml.c) ---------------------------------------------------------------------------
 * Minimal reading of AWS XML responses. */
/* Finds <name>text</name> in [p, end): sets *text (raw, entities not decoded) and returns the
 * position after the element, or NULL when there is none. */
const char *bm__xml_find(const char *p, const char *end, const char *name, struct bm_str *text);
/* Decodes entities of raw element text into out (reset first). */
bm_err bm__xml_text(struct bm_str t, struct bm_buf *out);

/* ---- one AWS call (aws_call.c) -----------------------------------------------------------
 * The one retry loop of every S3, SQS, CloudWatch and STS request. The shared rules, in order:
 * an expired or unrecognised credential (ExpiredToken, RequestExpired, InvalidClientTokenId...)
 * refreshes the credentials once without using up an attempt; then the caller's judge, if
 * any, decides; then 2xx is done, 5xx, 429 and the throttling and transient codes are retried,
 * anything else fails. Transport errors and credential sources that did not answer are
 * retried. Retries wait a capped exponential backoff with full jitter, up to
 * MAX_RETRY_ATTEMPTS attempts, and never past BMAS_AWS_DEADLINE (counted from the call's
 * start: each attempt's timeout is cut to what is left). Once aws->stop is set, no retry
 * starts, and a backoff ends at once. */
enum bm__aws_verdict {
    BM__AWS_DEFAULT, /* judge: leave it to the shared rules */
    BM__AWS_DONE,    /* the call ends: *rc says how */
    BM__AWS_FAIL,    /* the call ends: *rc and em say why */
    BM__AWS_RETRY,   /* worth another attempt, after a backoff */
    BM__AWS_AGAIN,   /* send again at once, not counted as an attempt (c->rq may be changed) */
};
enum bm__aws_on_stop {
    BM__AWS_FINISH, /* the first attempt goes even when stopping (a delete of processed messages) */
    BM__AWS_SKIP,   /* not sent once stopping; one in flight finishes (PutMetricData) */
    BM__AWS_ABORT,  /* not sent once stopping, and cancelled in flight (a long poll) */
};
struct bm__aws_call {
    const struct bm_aws *aws;
    const char *op; /* "GetObject": messages and logs */
    /* The request; creds, cancel and timeout_ms are set per attempt (a timeout_ms set here is
     * each attempt's limit, cut to the deadline). rq.service NULL: unsigned. */
    struct bm_http_req rq;
    /* Fixed keys to sign with (STS with a profile's source keys); NULL: aws->creds. */
    const struct bm_creds *signer;
    enum bm__aws_on_stop on_stop;
    int64_t backoff_base_ms, backoff_cap_ms; /* 0: 100 ms and 20 s */
    bm_err (*reset)(void *ctx); /* before each attempt (a sink starting over); may be NULL */
    /* Each HTTP answer, after the credential rule and before the shared ones; may be NULL. */
    enum bm__aws_verdict (*judge)(struct bm__aws_call *c, bm_err *rc, struct bm_errmsg *em);
    void *ctx;
    struct bm_http_resp *rs; /* the caller's (initialised): the last answer */
    /* Outcome. */
    int attempts;   /* attempts counted against MAX_RETRY_ATTEMPTS */
    int failed;     /* attempts that were followed by a retry */
    bool answered;  /* the last attempt got an HTTP answer (rs) */
    bool retryable; /* the last outcome was one to retry (retries ran out, or the deadline) */
    bool throttled; /* the last answer was throttling */
    char code[64];  /* the last answer's error code, "" when none */
};
/* BM_OK when the call succeeded (or the judge said so); else the error, with em. */
bm_err bm__aws_call(struct bm__aws_call *c, struct bm_errmsg *em);
/* The error code of an AWS error answer: the XML <Code> (S3, the Query protocol), else the
 * JSON protocol's __type without its namespace ("com.amazonaws.sqs#QueueDoesNotExist"). */
void bm__aws_error_code(const struct bm_http_resp *rs, char *code, size_t cap);

/* ---- credentials (creds.c, creds_profile.c) ------------------------------------------------
 * The sources of the chain, shared by the two files; secrets are zeroed by whoever drops them. */
struct bm__creds_src {
    const struct bm_config *cfg;
    const struct bm_http_ops *http;
    const struct bm_clock_ops *clock;
};
/* Copies len bytes (truncated to cap - 1) and terminates. */
void bm__creds_copy(char *dst, size_t cap, const char *src, size_t len);
/* Trims spaces, tabs and line ends at both ends, in place; returns the new start. */
char *bm__creds_trim(char *s);
/* The JSON of container endpoints, IMDS and credential_process ("process": Version 1 needed);
 * false when keys are missing or an Expiration is present but unreadable. */
bool bm__creds_parse_json(const char *body, size_t len, const char *source, struct bm_creds *c);
/* Reads a small secret file, trimmed; false when unreadable. */
bool bm__creds_read_token(const char *path, char *out, size_t cap);
bool bm__creds_env(const struct bm_config *cfg, struct bm_creds *c);
bm_err bm__creds_container(const struct bm__creds_src *p, struct bm_creds *c, struct bm_errmsg *em);
bm_err bm__creds_imds(const struct bm__creds_src *p, struct bm_creds *c, struct bm_errmsg *em);
/* The profile NAME of the shared files (credentials file values win over the config file's):
 * static keys, else role_arn (STS AssumeRole with the keys of source_profile or
 * credential_source), else credential_process. *found is false when the profile holds none of
 * these, and the chain goes on. */
bm_err bm__creds_profile(const struct bm__creds_src *p, const char *name, struct bm_creds *c,
                         bool *found, struct bm_errmsg *em);
/* AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN: STS AssumeRoleWithWebIdentity. */
bm_err bm__creds_web_identity(const struct bm__creds_src *p, struct bm_creds *c,
                              struct bm_errmsg *em);

#endif
