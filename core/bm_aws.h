/* bm_aws.h: bmas's AWS side (libbm_core): the HTTP transport and its one call path,
 * credentials, S3, CloudWatch (and the pure PutMetricData planner), SQS, and the event
 * envelopes AWS delivers (SQS, SNS, EventBridge, S3 notifications). The planner works on
 * bm_ingest.h's series, hence that include. */
#ifndef BM_AWS_H
#define BM_AWS_H

#include "core/bm_ingest.h"

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
/* The metrics each series carries in a PutMetricData plan: InvocationCount and the four token
 * counts, plus EstimatedCostUSD and ResidencyViolations when published. What CloudWatch bills
 * per series (the budget on /status uses it too). */
int bm_cw_metrics_per_series(bool publish_cost, bool publish_residency);
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

#endif
