/* emu_int.h: private to emulator/ and its unit tests. The state of the emulated services, the
 * per-request and per-response structures, and the functions the emulator's files share. */
#ifndef BM_EMU_INT_H
#define BM_EMU_INT_H

#include "emulator/bm_emu.h"

#include <cjson/cJSON.h>
#include <pthread.h>

#define EMU_ACCOUNT "000000000000"
#define EMU_MAX_HEADERS 64
#define EMU_SQS_NS "http://queue.amazonaws.com/doc/2012-11-05/"
#define EMU_CW_NS "http://monitoring.amazonaws.com/doc/2010-08-01/"
#define EMU_S3_NS "http://s3.amazonaws.com/doc/2006-03-01/"
#define EMU_STS_NS "https://sts.amazonaws.com/doc/2011-06-15/"
#define EMU_S3_XML_DECL "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"

enum emu_svc { EMU_SVC_S3, EMU_SVC_SQS, EMU_SVC_CW, EMU_SVC_STS };
enum emu_proto { EMU_PROTO_REST, EMU_PROTO_QUERY, EMU_PROTO_JSON };

/* ---- state ---------------------------------------------------------------------------- */
struct emu_kv {
    char *k;
    char *v;
};

/* An ETag without quotes: the body's MD5 in hex, or for an object assembled by
 * CompleteMultipartUpload "<hex MD5 of the parts' MD5s>-<number of parts>" (up to 10000). */
#define EMU_ETAG_MAX 48

struct emu_object {
    char *key; /* raw bytes, NUL-terminated for convenience */
    size_t key_len;
    char *data;
    size_t len;
    char etag[EMU_ETAG_MAX];
    char *content_type, *content_encoding, *cache_control, *content_disposition;
    struct emu_kv *meta; /* x-amz-meta-* headers, names lowercase without the prefix */
    size_t n_meta;
    int64_t mtime_ms;
    char *file; /* body file name in <data>/objects, NULL when memory only */
};

/* One QueueConfiguration of a bucket's notification configuration. */
struct emu_qconf {
    char *id;
    char *queue_arn;
    char **events; /* "s3:ObjectCreated:*", ... */
    size_t n_events;
    char *prefix, *suffix; /* NULL when no such FilterRule */
};

/* One uploaded part of a pending multipart upload. */
struct emu_part {
    int number; /* 1..10000 */
    char *data; /* NULL when empty */
    size_t len;
    unsigned char md5[BM_MD5_LEN];
    int64_t mtime_ms;
};

/* A multipart upload between CreateMultipartUpload and Complete/Abort. Memory only: pending
 * uploads do not survive a restart (store.c never writes them). */
struct emu_upload {
    char id[37];
    struct emu_object *tmpl; /* key and the headers given at creation; no body yet */
    int64_t created_ms;
    struct emu_part *parts; /* sorted by number */
    size_t n_parts, cap_parts;
    uint64_t bytes; /* sum of the parts' sizes, bounded by --max-object-bytes */
};

struct emu_bucket {
    char *name;
    char region[32]; /* its LocationConstraint ("us-east-1" when none was given) */
    int64_t created_ms;
    struct emu_object **objs; /* sorted by key bytes, for ListObjectsV2 */
    size_t n_objs, cap_objs;
    struct emu_qconf *qconf;
    size_t n_qconf;
    uint64_t sequencer;          /* grows with every event of this bucket */
    struct emu_upload **uploads; /* in creation order */
    size_t n_uploads, cap_uploads;
};

struct emu_msg {
    struct emu_msg *next;
    char id[37];
    char *body;
    size_t body_len;
    char md5[BM_MD5_HEX_LEN + 1];
    char *attrs_json; /* MessageAttributes as sent (JSON object text), NULL when none */
    char attrs_md5[BM_MD5_HEX_LEN + 1];
    int64_t sent_ms, first_recv_ms, visible_ms;
    long recv_count;
    char receipt[96]; /* handle of the latest receive; "" before the first */
};

struct emu_queue {
    char *name;
    long visibility_s, delay_s, retention_s, wait_s, max_size;
    char *redrive;  /* RedrivePolicy JSON as last set, NULL when none */
    char *dlq_name; /* parsed from it */
    long max_receive;
    int64_t created_s, modified_s;
    struct emu_msg *head, *tail;
    size_t n_msgs;
};

struct emu_point {
    int64_t ts; /* seconds */
    double sum, count, min, max;
    int unit; /* index into the CloudWatch unit table, 0 = None */
};

struct emu_series {
    char *ns, *name;
    struct emu_kv *dims; /* sorted by name */
    size_t n_dims;
    struct emu_point *pts;
    size_t n_pts, cap_pts;
};

struct emu_fault {
    uint64_t id;
    char *service, *operation; /* NULL = any */
    int status;                /* 0 = latency only */
    char *code, *message;
    long remaining; /* -1 = no count limit */
    double rate;    /* probability per matching request; 1 when not given */
    long latency_ms;
    long hits;
};

struct emu_counter {
    const char *svc, *op; /* static strings */
    long count, faulted, errors;
};

struct emu_cred {
    char *akid;
    char *secret;
};

/* Temporary credentials issued by AssumeRoleWithWebIdentity or AssumeRole (sts.c). Memory only:
 * they do not survive a restart, as with a real STS session whose issuer forgot it. */
#define EMU_STS_MAX_SESSIONS 1024
#define EMU_STS_AKID_LEN 20 /* "ASIA" + 16 */
#define EMU_STS_SECRET_LEN 40
#define EMU_STS_TOKEN_LEN 384
#define EMU_STS_ARN_MAX 256 /* assumed-role ARN: role name and session name are 64 at most */
struct emu_session {
    char akid[EMU_STS_AKID_LEN + 1];
    char secret[EMU_STS_SECRET_LEN + 1];
    char token[EMU_STS_TOKEN_LEN + 1];
    int64_t expires_ms;
    char account[13];
    char arn[EMU_STS_ARN_MAX];     /* arn:aws:sts::ACCT:assumed-role/ROLE/SESSION */
    char user_id[EMU_STS_ARN_MAX]; /* AROA...:SESSION */
};

/* Who signed a request, for GetCallerIdentity. */
struct emu_caller {
    bool temporary; /* issued by STS (AssumeRole*); else a static credential */
    char account[13];
    char arn[EMU_STS_ARN_MAX];
    char user_id[EMU_STS_ARN_MAX];
};

struct bm_emu {
    /* Options, fixed after bm_emu_new. */
    char *listen_spec; /* --listen as given */
    struct sockaddr_storage listen_addr;
    socklen_t listen_len;
    char *data_dir;
    char *region;
    long skew_s;
    uint64_t max_object, max_body;
    struct emu_cred *creds;
    size_t n_creds, cap_creds;

    struct MHD_Daemon *mhd;
    uint16_t port;

    /* Everything below is guarded by mu. cv wakes long polls (a message arrived, or stop). */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping;
    uint64_t rng;
    uint64_t next_id;
    struct emu_bucket **buckets;
    size_t n_buckets, cap_buckets;
    struct emu_queue **queues;
    size_t n_queues, cap_queues;
    struct emu_series **series;
    size_t n_series, cap_series;
    struct emu_fault *faults;
    size_t n_faults, cap_faults;
    struct emu_counter *counters;
    size_t n_counters, cap_counters;
    struct emu_session *sessions; /* in issue order, at most EMU_STS_MAX_SESSIONS */
    /* CloudWatch dashboards and metric alarms (cw_dash.c): objects keyed by name, in name
     * order; a dashboard is {"body","modified_ms"}, an alarm its validated input members. */
    cJSON *cw_dashboards, *cw_alarms;
    size_t n_sessions, cap_sessions;

    /* Persistence: a saver thread writes the snapshot when dirty (store.c). */
    bool dirty;
    bool saver_running;
    pthread_t saver;
    pthread_cond_t saver_cv;
};

/* ---- requests and responses ----------------------------------------------------------- */
/* An AWS error chosen by a handler or the verifier, rendered in the protocol's own form. */
struct emu_awserr {
    int status; /* 0 = none */
    char code[64];
    char message[512];
    char res_name[16]; /* S3 extra element ("Key", "BucketName"), "" for none */
    char res_value[1024];
};

struct emu_req {
    struct bm_emu *emu;
    char *uri; /* the raw request target, split in place into path and query (owned) */
    const char *method;
    const char *path; /* raw path, still percent-encoded */
    size_t path_len;
    const char *query; /* raw query without '?', NULL when none */
    size_t query_len;
    struct bm_sigv4_header hdr[EMU_MAX_HEADERS]; /* borrowed from MHD for the request */
    size_t n_hdr;
    bool too_many_headers;
    struct bm_buf body;
    bool body_too_large;
    bool started; /* the first access-handler call (headers only) is done */
    bool faulted; /* a fault rule chose the error */
    enum emu_svc svc;
    enum emu_proto proto;
    const char *op; /* operation name (static string) */
    cJSON *in;      /* SQS/CloudWatch input, Query forms converted to the JSON shape */
    char req_id[37];
    char host[256];
    int64_t now_ms;
    struct emu_awserr err;
    struct emu_caller caller; /* filled once the signature is verified */
    char signed_region[32];   /* the credential scope's region, "" for anonymous requests */
};

#define EMU_RESP_MAX_HEADERS 24
struct emu_resp {
    int status;
    const char *content_type; /* static string */
    struct bm_buf body;
    char *hname[EMU_RESP_MAX_HEADERS];
    char *hvalue[EMU_RESP_MAX_HEADERS];
    size_t n_h;
    bool fixed_len; /* HEAD: announce len bytes without sending a body */
    uint64_t len;
};

/* Adds a response header (copied). BM_E_NOMEM, BM_E_TOO_LARGE past EMU_RESP_MAX_HEADERS. */
bm_err bm__emu_resp_header(struct emu_resp *rs, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The request header value (first of that name, case-insensitive) as a NUL-terminated string
 * borrowed from MHD, or NULL. */
const char *bm__emu_header(const struct emu_req *rq, const char *name);

/* Records an AWS error on rq (code looked up for status and wire names in wire.c's table) and
 * returns BM_E_BAD_REQUEST so handlers can `return bm__emu_fail(...)`. */
bm_err bm__emu_fail(struct emu_req *rq, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same with an explicit HTTP status (faults, codes outside the table). */
bm_err bm__emu_fail_status(struct emu_req *rq, int status, const char *code, const char *msg);

/* Renders rq->err into rs in the form of rq->svc and rq->proto (S3 XML, Query XML or JSON 1.0
 * with x-amzn-query-error). */
bm_err bm__emu_render_error(const struct emu_req *rq, struct emu_resp *rs);

/* ---- wire.c: Query/JSON input ---------------------------------------------------------- */
/* Converts a Query form body ("MetricData.member.1.Value=2") to the JSON input shape
 * ({"MetricData":[{"Value":"2"}]}): "member"/"entry"/numeric segments make arrays (1-based),
 * other segments objects; values stay strings. Action and Version are left out. *out is a new
 * cJSON tree (cJSON_Delete). BM_E_BAD_REQUEST on a malformed escape or index. */
bm_err bm__emu_query_to_json(const char *form, size_t len, cJSON **out);

/* Input accessors that accept both protocols' spellings (JSON numbers, Query strings). */
const char *bm__emu_in_str(const cJSON *o, const char *k);
/* false when k is present but not a finite number; *present says whether it was there. */
bool bm__emu_in_num(const cJSON *o, const char *k, double *out, bool *present);
/* Epoch seconds (JSON numbers) or ISO 8601 (Query) to milliseconds. */
bool bm__emu_in_time(const cJSON *v, int64_t *ms);
/* An integer parameter in [min, max] or absent (*out untouched); else InvalidParameterValue. */
bm_err bm__emu_in_long(struct emu_req *rq, const cJSON *o, const char *k, long min, long max,
                       long *out);

/* ---- writer.c: the dual XML/JSON response writer ---------------------------------------- */
struct emu_w {
    enum emu_proto proto;
    struct bm_buf *b;
    const char *action;
    bool result_open;
    bool no_result; /* the operation has no output: XML has no <ActionResult> at all */
    int depth;
    struct {
        char kind; /* 'o' object, 'l' list, 'm' map, 'e' map entry object */
        bool first;
        const char *xml_name; /* element to close ('o', wrapped 'l') */
        const char *xml_item; /* list item / map entry element */
    } st[16];
    bm_err rc; /* sticky: once a write fails every later call is a no-op */
};
/* Starts a Query XML (<ActionResponse xmlns=ns>, Result opened on the first member) or a JSON
 * 1.0 document in b. */
void bm__emu_w_begin(struct emu_w *w, enum emu_proto proto, const char *ns, const char *action,
                     struct bm_buf *b);
void bm__emu_w_str(struct emu_w *w, const char *name, const char *s);
void bm__emu_w_strn(struct emu_w *w, const char *name, const char *s, size_t len);
void bm__emu_w_num(struct emu_w *w, const char *name, double v);
void bm__emu_w_int(struct emu_w *w, const char *name, long long v);
/* JSON true/false; XML the same text. */
void bm__emu_w_bool(struct emu_w *w, const char *name, bool v);
/* XML: ISO 8601 UTC; JSON: epoch seconds. */
void bm__emu_w_time(struct emu_w *w, const char *name, int64_t ms);
void bm__emu_w_obj(struct emu_w *w, const char *name);
/* A list: JSON "json_name":[...]; XML <xml_name><xml_item>..</xml_item></xml_name>, or the
 * items flattened (SQS) when xml_name is NULL. Items are written with a NULL name. */
void bm__emu_w_list(struct emu_w *w, const char *json_name, const char *xml_name,
                    const char *xml_item);
/* A string map: JSON "json_name":{"k":"v"}; XML <xml_item><Name>k</Name><Value>v</Value>
 * </xml_item> flattened (SQS Attributes). */
void bm__emu_w_map(struct emu_w *w, const char *json_name, const char *xml_item);
void bm__emu_w_map_str(struct emu_w *w, const char *key, const char *value);
/* A map entry whose value is an object (SQS MessageAttributes); close it with w_end. */
void bm__emu_w_map_obj(struct emu_w *w, const char *key);
void bm__emu_w_end(struct emu_w *w);
/* Closes everything (XML adds ResponseMetadata/RequestId) and returns the sticky result. */
bm_err bm__emu_w_finish(struct emu_w *w, const char *req_id);

/* ---- xml.c ---------------------------------------------------------------------------- */
/* Appends s with &, <, >, " and ' escaped (and control characters as &#xN;). */
bm_err bm__emu_xml_escape(struct bm_buf *b, const char *s, size_t len);
/* <name>escaped text</name> */
bm_err bm__emu_xml_elem(struct bm_buf *b, const char *name, const char *s, size_t len);

/* A minimal XML tree: elements with text, no attributes kept (S3 request bodies only). */
struct emu_xml {
    char *name; /* local name, namespace prefix removed */
    char *text; /* concatenated character data, entities decoded, trimmed */
    struct emu_xml *child, *next;
};
/* Parses a document; BM_E_BAD_REQUEST when it is not well-formed. Free with
 * bm__emu_xml_free. */
bm_err bm__emu_xml_parse(const char *s, size_t len, struct emu_xml **out);
void bm__emu_xml_free(struct emu_xml *x);
/* The first child element named name, or NULL. */
struct emu_xml *bm__emu_xml_child(const struct emu_xml *x, const char *name);

/* ---- verify.c: SigV4 verification ----------------------------------------------------- */
enum emu_auth {
    EMU_AUTH_OK,
    EMU_AUTH_MISSING,     /* no Authorization and no X-Amz-Signature */
    EMU_AUTH_MALFORMED,   /* unparsable Authorization, credential or date */
    EMU_AUTH_UNKNOWN_KEY, /* access key id not among the credentials */
    EMU_AUTH_MISMATCH,    /* the signature we computed differs */
    EMU_AUTH_SKEW,        /* X-Amz-Date too far from now */
    EMU_AUTH_EXPIRED,     /* presigned URL past X-Amz-Expires */
    EMU_AUTH_BAD_HASH,    /* x-amz-content-sha256 does not match the body */
    EMU_AUTH_BAD_CHUNK,   /* aws-chunked body malformed or a chunk signature wrong */
};
struct emu_verify_in {
    const char *method;
    const char *path;
    size_t path_len;
    const char *query;
    size_t query_len;
    const struct bm_sigv4_header *hdr;
    size_t n_hdr;
    struct bm_buf *body; /* an aws-chunked body is replaced by its decoded content */
    const struct emu_cred *creds;
    size_t n_creds;
    int64_t now;
    long skew_s;
    /* Tests of the suite's unnormalised cases choose the path rules themselves; otherwise S3
     * signs the path as sent and every other service normalises and encodes it again. */
    bool path_rules_given;
    bool path_normalize, path_encode;
};
struct emu_verify_out {
    char service[32]; /* from the credential scope */
    char region[32];
    char akid[128];
    char detail[512]; /* for the error message: what differed */
};
/* Checks the request's SigV4 signature (header or presigned query). */
enum emu_auth bm__emu_verify(const struct emu_verify_in *in, struct emu_verify_out *out);
/* The credential scope's service of a request, without verifying anything ("" if none). */
void bm__emu_scope_service(const struct emu_req *rq, char out[32]);
/* The access key id a request claims (header or presigned form), "" if none. */
void bm__emu_scope_akid(const struct emu_req *rq, char out[128]);
/* Decodes an aws-chunked body in place. With a signing key (signed streaming) every chunk
 * signature is checked, chained from seed_sig. false when malformed or a signature differs. */
bool bm__emu_dechunk(struct bm_buf *body, const unsigned char *key, const char *amz_date,
                     const char *scope, const char *seed_sig);

/* ---- control.c ------------------------------------------------------------------------ */
/* The unsigned control routes (/_localstack/health, /_emulator/faults, /_emulator/requests). */
bm_err bm__emu_control(struct emu_req *rq, struct emu_resp *rs);

/* ---- faults.c ------------------------------------------------------------------------- */
/* Adds a rule from the control body; BM_E_BAD_REQUEST with em on a bad field. Locks mu. */
bm_err bm__emu_faults_add(struct bm_emu *emu, const char *body, size_t len, uint64_t *id,
                          struct bm_errmsg *em);
void bm__emu_faults_clear(struct bm_emu *emu);
bm_err bm__emu_faults_json(struct bm_emu *emu, struct bm_buf *b);
/* Applies the rules to one request (locks mu): returns the latency to add, and fills *err
 * (status != 0) when a rule injects an error. */
long bm__emu_faults_match(struct bm_emu *emu, const char *svc, const char *op,
                          struct emu_awserr *err);
/* Seedable PRNG (splitmix64); callers hold mu. */
uint64_t bm__emu_rand(struct bm_emu *emu);
/* A random UUID v4 string (37 bytes with NUL); callers hold mu. */
void bm__emu_uuid(struct bm_emu *emu, char out[37]);
/* Request counters per service and operation (locks mu). */
void bm__emu_count(struct bm_emu *emu, const char *svc, const char *op, bool faulted, bool error);
bm_err bm__emu_counters_json(struct bm_emu *emu, const char *svc, struct bm_buf *b);
void bm__emu_counters_reset(struct bm_emu *emu);

/* ---- services ------------------------------------------------------------------------- */
const char *bm__emu_svc_name(enum emu_svc svc);
/* Each resolves rq->op (NULL when unknown: the handler answers with the service's "unknown
 * operation" error), then handles the request with mu held inside. */
void bm__emu_s3_resolve(struct emu_req *rq);
bm_err bm__emu_s3_handle(struct emu_req *rq, struct emu_resp *rs);
bm_err bm__emu_sqs_handle(struct emu_req *rq, struct emu_resp *rs);
bm_err bm__emu_cw_handle(struct emu_req *rq, struct emu_resp *rs);
/* The static operation name for an SQS (or CloudWatch) action, NULL when unknown. */
const char *bm__emu_sqs_op(const char *action);
const char *bm__emu_cw_op(const char *action);
const char *bm__emu_sts_op(const char *action);

/* ---- sts.c ----------------------------------------------------------------------------- */
/* AssumeRoleWithWebIdentity's or AssumeRole's validated input. */
struct emu_sts_params {
    const char *role_arn, *session_name; /* borrowed from the input */
    const char *token;                   /* WebIdentityToken; NULL for AssumeRole */
    const char *external_id;             /* AssumeRole's optional ExternalId, else NULL */
    long duration_s;
    char account[13];
    char role_name[65];
};
/* Validates AssumeRoleWithWebIdentity's (web_identity) or AssumeRole's parameters as STS does
 * (ValidationError otherwise): both share RoleArn, RoleSessionName and DurationSeconds; then
 * WebIdentityToken is required, or ExternalId checked when given. */
bm_err bm__emu_sts_check(struct emu_req *rq, const cJSON *in, bool web_identity,
                         struct emu_sts_params *p);
/* Issues credentials for p valid from now_ms and copies them to *out. At the cap, expired
 * sessions go first, then the oldest. Locks mu. */
bm_err bm__emu_sts_issue(struct bm_emu *emu, const struct emu_sts_params *p, int64_t now_ms,
                         struct emu_session *out);
/* For an access key id STS issued: checks the request's X-Amz-Security-Token and the
 * expiration at rq->now_ms, copies the session to *s and fills rq->caller. *issued is false
 * (and BM_OK) when akid is not an issued one. BM_E_BAD_REQUEST with the service's error
 * (S3: InvalidAccessKeyId/InvalidToken/ExpiredToken; Query: InvalidClientTokenId/ExpiredToken).
 * Locks mu. */
bm_err bm__emu_sts_authorize(struct emu_req *rq, const char *akid, struct emu_session *s,
                             bool *issued);
/* The credentials a signed request is checked against: the static list, or for an access key
 * id that STS issued, that session alone once bm__emu_sts_authorize accepted its token and
 * expiration (then *creds points into *s and *cred, which the caller wipes after use). */
bm_err bm__emu_sts_credentials(struct emu_req *rq, struct emu_session *s, struct emu_cred *cred,
                               const struct emu_cred **creds, size_t *n_creds);
/* Forgets every session (teardown), wiping the secrets. Callers hold mu or own emu. */
void bm__emu_sts_clear(struct bm_emu *emu);
bm_err bm__emu_sts_handle(struct emu_req *rq, struct emu_resp *rs);

/* SQS internals used by S3 notifications and persistence; callers hold mu. */
struct emu_queue *bm__emu_queue_find(struct bm_emu *emu, const char *name);
bm_err bm__emu_queue_push(struct bm_emu *emu, struct emu_queue *q, const char *body, size_t len,
                          int64_t now_ms);
void bm__emu_queue_free(struct emu_queue *q);
/* Links m at the tail of q (no copy, no wake-up). */
void bm__emu_queue_append(struct emu_queue *q, struct emu_msg *m);
/* The queue a request names: its QueueUrl parameter, else the request path
 * ("/<account>/<name>"); fails with QueueDoesNotExist. Callers hold mu. */
bm_err bm__emu_sqs_queue(struct emu_req *rq, struct emu_queue **out);
/* Message operations (sqs_msg.c); callers hold mu and pass the SQS writer. */
bm_err bm__emu_sqs_send(struct emu_req *rq, struct emu_w *w);
bm_err bm__emu_sqs_send_batch(struct emu_req *rq, struct emu_w *w);
bm_err bm__emu_sqs_receive(struct emu_req *rq, struct emu_w *w);
bm_err bm__emu_sqs_delete(struct emu_req *rq, struct emu_w *w);
bm_err bm__emu_sqs_delete_batch(struct emu_req *rq, struct emu_w *w);
bm_err bm__emu_sqs_change_visibility(struct emu_req *rq, struct emu_w *w);
/* MD5OfMessageAttributes of a MessageAttributes JSON object (the SQS algorithm: names sorted,
 * each length-prefixed name, type, transport byte and value). BM_E_BAD_REQUEST when an
 * attribute is malformed. */
bm_err bm__emu_sqs_attrs_md5(const cJSON *attrs, char out[BM_MD5_HEX_LEN + 1]);
void bm__emu_msg_free(struct emu_msg *m);
void bm__emu_bucket_free(struct emu_bucket *b);
/* Frees what a notification configuration entry owns (not c itself). */
void bm__emu_qconf_cleanup(struct emu_qconf *c);
void bm__emu_object_free(struct emu_object *o);
void bm__emu_series_free(struct emu_series *s);

/* S3 internals shared by s3.c and s3_object.c. */
struct emu_s3_target {
    char *bucket; /* decoded; NULL for "/" */
    char *key;    /* decoded; NULL for bucket-level requests */
    size_t key_len;
};
/* Callers hold mu. */
struct emu_bucket *bm__emu_bucket_find(struct bm_emu *emu, const char *name);
/* The object with key, or NULL with *idx set to where it would be inserted. */
struct emu_object *bm__emu_object_find(const struct emu_bucket *b, const char *key, size_t len,
                                       size_t *idx);
/* A decoded query parameter of the request into out (cap bytes); false when absent. */
bool bm__emu_s3_param(const struct emu_req *rq, const char *name, char *out, size_t cap);
/* <name>s</name>, URL-encoded (form style, '/' kept) when enc (EncodingType=url). */
bm_err bm__emu_s3_key_elem(struct bm_buf *b, const char *name, const char *s, size_t len, bool enc);
/* NoSuchBucket naming the bucket; returns BM_E_BAD_REQUEST. */
/* A bucket in another region than the request was signed for, answered as S3 answers it
 * (s3.c). BM_OK when the request may go on. */
bm_err bm__emu_s3_region_check(struct emu_req *rq, struct emu_resp *rs);
bm_err bm__emu_s3_no_bucket(struct emu_req *rq, const char *name);
/* Put/GetBucketNotificationConfiguration (s3_notify.c); they lock mu themselves. */
bm_err bm__emu_s3_put_notification(struct emu_req *rq, const char *name);
bm_err bm__emu_s3_get_notification(struct emu_req *rq, struct emu_resp *rs, const char *name);
/* Sends the event to every queue whose configuration matches (callers hold mu). */
bm_err bm__emu_s3_notify(struct emu_req *rq, struct emu_bucket *b, const char *event_name,
                         const struct emu_object *o, const char *key, size_t key_len);
/* Object helpers (s3_object.c) shared with s3_multipart.c. check_digests validates
 * Content-MD5 and x-amz-checksum-crc32/-sha256 against data and echoes the checked ones. */
bm_err bm__emu_s3_check_digests(struct emu_req *rq, struct emu_resp *rs, const char *data,
                                size_t len);
/* A new object named by t's key with mtime now_ms (NULL when out of memory). */
struct emu_object *bm__emu_s3_object_new(const struct emu_s3_target *t, int64_t now_ms);
/* Content-* and x-amz-meta-* request headers into o. */
bm_err bm__emu_s3_take_headers(const struct emu_req *rq, struct emu_object *o);
/* Writes o's body file and inserts o (ownership taken, freed on failure) into t's bucket,
 * replacing an older version, then sends event_name notifications. Locks mu. */
bm_err bm__emu_s3_store_object(struct emu_req *rq, const struct emu_s3_target *t,
                               struct emu_object *o, const char *event_name);
/* Object operations (s3_object.c); they lock mu themselves. */
bm_err bm__emu_s3_put_object(struct emu_req *rq, struct emu_resp *rs,
                             const struct emu_s3_target *t);
bm_err bm__emu_s3_get_object(struct emu_req *rq, struct emu_resp *rs, const struct emu_s3_target *t,
                             bool head);
bm_err bm__emu_s3_delete_object(struct emu_req *rq, struct emu_resp *rs,
                                const struct emu_s3_target *t);
bm_err bm__emu_s3_delete_objects(struct emu_req *rq, struct emu_resp *rs,
                                 const struct emu_s3_target *t);
bm_err bm__emu_s3_copy_object(struct emu_req *rq, struct emu_resp *rs,
                              const struct emu_s3_target *t);
/* Multipart uploads (s3_multipart.c): CreateMultipartUpload, UploadPart,
 * CompleteMultipartUpload, AbortMultipartUpload, ListParts and ListMultipartUploads, chosen by
 * rq->op (BM_E_INTERNAL for any other). They lock mu themselves. */
bm_err bm__emu_s3_multipart(struct emu_req *rq, struct emu_resp *rs, const struct emu_s3_target *t);
void bm__emu_upload_free(struct emu_upload *u);

/* S3 event JSON for an object event (keys form-URL-encoded as S3 does); appended to b. */
struct emu_event {
    const char *region;
    const char *event_name; /* "ObjectCreated:Put" */
    int64_t time_ms;
    const char *config_id;
    const char *bucket;
    const char *key;
    size_t key_len;
    uint64_t size;
    const char *etag; /* NULL for removals */
    uint64_t sequencer;
    const char *request_id;
};
bm_err bm__emu_s3_event_json(const struct emu_event *ev, struct bm_buf *b);
/* Whether a notification configuration fires for an event on key. */
bool bm__emu_qconf_matches(const struct emu_qconf *c, const char *event_name, const char *key,
                           size_t key_len);

/* CloudWatch statistics over [start, end) in periods (exact, from stored aggregates). */
struct emu_stat {
    int64_t ts;
    double sum, count, min, max;
};
/* Aggregates s's points with the given unit (-1 = any) into *out (bm_free), sorted by time. */
bm_err bm__emu_cw_aggregate(const struct emu_series *s, int64_t start, int64_t end, long period,
                            int unit, struct emu_stat **out, size_t *n);
/* Index of a CloudWatch unit name, -1 when unknown; the name of an index; how many there are. */
int bm__emu_cw_unit(const char *name);
const char *bm__emu_cw_unit_name(int unit);
int bm__emu_cw_n_units(void);
/* CloudWatch internals shared by cloudwatch.c and cw_read.c. */
#define EMU_CW_MAX_DIMS 30
/* A Dimensions list's (name, value) pairs sorted by name, borrowed from list (out holds
 * EMU_CW_MAX_DIMS). */
size_t bm__emu_cw_read_dims(const cJSON *list, struct emu_kv *out);
/* Validates a Dimensions list (count, names, values, repeats); p names it in messages. */
bm_err bm__emu_cw_check_dims(struct emu_req *rq, const cJSON *dims, const char *p);
/* The series with exactly these sorted dimensions, or NULL (callers hold mu). */
struct emu_series *bm__emu_cw_series_find(struct bm_emu *emu, const char *ns, const char *name,
                                          const struct emu_kv *d, size_t n);
/* A list call's NextToken (the index of the next item, as the list calls write it) into *from;
 * 0 when absent; InvalidNextToken when it is not one of ours. */
bm_err bm__emu_cw_next_token(struct emu_req *rq, size_t *from);
bm_err bm__emu_cw_get_metric_statistics(struct emu_req *rq, struct emu_w *w);
bm_err bm__emu_cw_get_metric_data(struct emu_req *rq, struct emu_w *w);
bm_err bm__emu_cw_list_metrics(struct emu_req *rq, struct emu_w *w);
/* GetMetricData's SEARCH expressions (cw_search.c): a schema {Namespace,Dim...} and exact
 * Key="value" terms (MetricName or a schema dimension), the statistic and the period. */
#define EMU_SEARCH_MAX 10
#define EMU_SEARCH_LEN 256
struct emu_search_term {
    char k[EMU_SEARCH_LEN], v[EMU_SEARCH_LEN];
};
struct emu_search {
    char ns[EMU_SEARCH_LEN];
    char dims[EMU_SEARCH_MAX][EMU_SEARCH_LEN];
    size_t nd;
    struct emu_search_term terms[EMU_SEARCH_MAX];
    size_t nt;
    char stat[32];
    long period;
};
/* Parses expr into *out; false with err (cap bytes) saying what is wrong or not supported.
 * Pure. */
bool bm__emu_cw_search_parse(const char *expr, struct emu_search *out, char *err, size_t cap);
/* Whether series s is one q finds: its namespace, exactly the schema's dimension names, and
 * every term. Pure. */
bool bm__emu_cw_search_match(const struct emu_search *q, const struct emu_series *s);
/* Dashboards and alarms (cw_dash.c): whether op is one of them, and its handler. */
bool bm__emu_cw_dash_op(const char *op);
bm_err bm__emu_cw_dash_handle(struct emu_req *rq, struct emu_w *w);

/* ---- store.c: persistence ------------------------------------------------------------- */
bm_err bm__emu_store_load(struct bm_emu *emu, struct bm_errmsg *em);
/* Writes the snapshot now (takes mu to serialise). */
bm_err bm__emu_store_save(struct bm_emu *emu);
/* Writes an object body file under <data>/objects; *name is bm_malloc'd. No-op without data. */
bm_err bm__emu_store_put_body(struct bm_emu *emu, const char *data, size_t len, char **name);
void bm__emu_store_drop_body(struct bm_emu *emu, const char *name);
bm_err bm__emu_store_start(struct bm_emu *emu);
void bm__emu_store_stop(struct bm_emu *emu);
/* Marks the state changed (callers hold mu); the saver thread writes it soon. */
void bm__emu_dirty(struct bm_emu *emu);

/* Small helpers shared by the services. */
bm_err bm__emu_grow(void *arr_ptr, size_t *cap, size_t need, size_t elem);
int64_t bm__emu_now_ms(void);
/* "2026-04-20T00:22:05.482Z" */
void bm__emu_iso_ms(int64_t ms, char out[25]);

#endif
