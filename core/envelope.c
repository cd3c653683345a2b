/* envelope.c: what arrives at POST /events turned into messages (docs/formats.md 5): a Lambda SQS
 * event {"Records":[{"messageId","body",…}]}, one SQS record or a JSON array of them (what an
 * EventBridge Pipe from SQS posts), or one event posted bare. The outer body, up to
 * BMAS_MAX_BODY_BYTES, is walked by the JSON scanner (json_scan.c) without building a tree:
 * a tree of 6 MiB of tiny elements would take hundreds of megabytes. Messages are counted and
 * typed in a first pass, so a batch over its cap allocates nothing; each message body is then
 * parsed on its own (envelope_msg.c). */
#include "core/core_int.h"

#include <stdlib.h>
#include <string.h>

void bm_message_cleanup(struct bm_message *m)
{
    for (size_t i = 0; i < m->nrefs; i++) {
        struct bm_object_ref *r = &m->refs[i];
        bm_free(r->bucket);
        bm_free(r->key);
        bm_free(r->version_id);
        bm_free(r->etag);
        bm_free(r->event_name);
    }
    bm_free(m->refs);
    bm_free(m->message_id);
    memset(m, 0, sizeof *m);
}

void bm_event_batch_free(struct bm_event_batch *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->n; i++)
        bm_message_cleanup(&b->msgs[i]);
    bm_free(b->msgs);
    bm_free(b);
}

bm_err bm_message_parse_body(const char *message_id, long receive_count, const char *body,
                             size_t len, struct bm_message *msg)
{
    memset(msg, 0, sizeof *msg);
    msg->message_id = bm_strdup(message_id ? message_id : "");
    msg->receive_count = receive_count;
    if (msg->message_id == NULL)
        return BM_E_NOMEM;
    return bm__message_parse(msg, body, len);
}

/* What the scan of one SQS record found. Positions point at values in the body. */
struct sqs_rec {
    const char *id;   /* the messageId string's opening quote, or NULL */
    const char *body; /* the body string's opening quote, or NULL */
    bool is_sqs_source;
    long receive_count;
    const char *problem; /* why the message fails (its id is still usable) */
};

/* ApproximateReceiveCount: a string of digits (docs/formats.md 5); anything else counts as 1. */
static long receive_count(const char *p, size_t len)
{
    char tmp[24];
    if (len == 0 || len >= sizeof tmp)
        return 1;
    memcpy(tmp, p, len);
    tmp[len] = '\0';
    char *end;
    long v = strtol(tmp, &end, 10);
    return *end == '\0' && v > 0 ? v : 1;
}

static bm_err scan_attributes(struct bm__scan *s, struct sqs_rec *r)
{
    struct bm__scan_iter it;
    struct bm__scan_key k;
    bool more, seen = false;
    if (*s->p != '{') {
        r->problem = "\"attributes\" is not an object";
        return bm__scan_skip_value(s);
    }
    bm_err rc = bm__scan_open(s, &it);
    while (rc == BM_OK && (rc = bm__scan_next(s, &it, &k, &more)) == BM_OK && more) {
        if (!bm__scan_key_is(&k, "ApproximateReceiveCount")) {
            rc = bm__scan_skip_value(s);
            continue;
        }
        if (seen)
            r->problem = "\"ApproximateReceiveCount\" appears twice";
        seen = true;
        if (*s->p != '"') {
            r->problem = "\"ApproximateReceiveCount\" is not a string";
            rc = bm__scan_skip_value(s);
            continue;
        }
        char scratch[64];
        const char *v;
        size_t len;
        rc = bm__scan_string(s, scratch, sizeof scratch, &v, &len);
        if (rc == BM_E_TOO_LARGE)
            rc = BM_OK; /* an escaped number of 64 bytes: not one */
        else if (rc == BM_OK)
            r->receive_count = receive_count(v, len);
    }
    return rc;
}

/* Scans one SQS record (s at its '{'): where its messageId and body are, its receive count, and
 * what is wrong with it. Only syntax errors are returned (the first pass has ruled them out). */
static bm_err scan_sqs_record(struct bm__scan *s, struct sqs_rec *r)
{
    struct bm__scan_iter it;
    struct bm__scan_key k;
    bool more, dup_id = false;
    memset(r, 0, sizeof *r);
    r->receive_count = 1;
    bm_err rc = bm__scan_open(s, &it);
    while (rc == BM_OK && (rc = bm__scan_next(s, &it, &k, &more)) == BM_OK && more) {
        if (bm__scan_key_is(&k, "messageId")) {
            dup_id = dup_id || r->id != NULL;
            r->id = *s->p == '"' ? s->p : NULL;
        } else if (bm__scan_key_is(&k, "body")) {
            if (r->body != NULL)
                r->problem = "\"body\" appears twice";
            r->body = *s->p == '"' ? s->p : NULL;
            if (r->body == NULL)
                r->problem = "SQS record without a string body";
        } else if (bm__scan_key_is(&k, "eventSource")) {
            r->is_sqs_source = s->end - s->p >= 9 && memcmp(s->p, "\"aws:sqs\"", 9) == 0;
        } else if (bm__scan_key_is(&k, "attributes")) {
            rc = scan_attributes(s, r);
            continue;
        }
        rc = bm__scan_skip_value(s);
    }
    if (dup_id)
        r->id = NULL; /* two ids: the message cannot be named */
    if (r->body == NULL && r->problem == NULL)
        r->problem = "SQS record without a string body";
    return rc;
}

/* A Lambda SQS event record: eventSource aws:sqs, or a messageId and a body. */
static bool looks_sqs(const struct sqs_rec *r)
{
    return r->is_sqs_source || (r->id != NULL && r->body != NULL);
}

/* One SQS record (s at its '{') appended to b as a message: its id copied, its body unescaped
 * and parsed. A record without a usable messageId fails the whole body: it cannot be named in
 * batchItemFailures, and an unknown id there fails the whole batch. */
static bm_err parse_record(struct bm__scan *s, struct bm_event_batch *b, struct bm_errmsg *em)
{
    struct sqs_rec r;
    bm_err rc = scan_sqs_record(s, &r);
    if (rc != BM_OK)
        return rc;
    char idbuf[BM_MAX_MESSAGE_ID + 1];
    const char *id = NULL;
    size_t idlen = 0;
    struct bm__scan is = {r.id, s->end, 0};
    if (r.id != NULL && bm__scan_string(&is, idbuf, sizeof idbuf - 1, &id, &idlen) != BM_OK)
        id = NULL;
    if (id == NULL || idlen == 0 || idlen > BM_MAX_MESSAGE_ID || memchr(id, '\0', idlen))
        return bm_errmsg_set(em, BM_E_MSG_PARSE,
                             "SQS record %zu has no messageId (one string of 1 to %d bytes)", b->n,
                             BM_MAX_MESSAGE_ID);
    struct bm_message *m = &b->msgs[b->n++];
    m->receive_count = r.receive_count;
    if ((m->message_id = bm_strndup(id, idlen)) == NULL)
        return BM_E_NOMEM;
    if (r.problem != NULL)
        return bm__message_fail(m, BM_E_MSG_PARSE, "%s", r.problem);
    /* Unescaping never grows a string, and shrinks it at most sixfold (\u0041 -> A). */
    struct bm__scan bs = {r.body, s->end, 0};
    bm_err brc = bm__scan_skip_value(&bs);
    size_t raw = (size_t)(bs.p - r.body) - 2;
    if (brc != BM_OK || raw > (size_t)6 * BM_MAX_MESSAGE_BYTES)
        return bm__message_fail(m, BM_E_TOO_LARGE,
                                "message body is over %d bytes (BM_MAX_MESSAGE_BYTES)",
                                BM_MAX_MESSAGE_BYTES);
    char *scratch = bm_malloc(raw + 1);
    const char *body;
    size_t blen;
    if (scratch == NULL)
        return BM_E_NOMEM;
    bs.p = r.body;
    rc = bm__scan_string(&bs, scratch, raw + 1, &body, &blen);
    if (rc == BM_OK)
        rc = bm__message_parse(m, body, blen);
    bm_free(scratch);
    return rc;
}

/* The n SQS records of an array (s at its '['), each parsed by parse_record. */
static bm_err parse_sqs(struct bm__scan *s, struct bm_event_batch *b, size_t n,
                        struct bm_errmsg *em)
{
    struct bm__scan_iter it;
    bool more;
    b->msgs = bm_calloc(n, sizeof *b->msgs);
    if (b->msgs == NULL)
        return BM_E_NOMEM;
    bm_err rc = bm__scan_open(s, &it);
    while (rc == BM_OK && (rc = bm__scan_next(s, &it, NULL, &more)) == BM_OK && more)
        rc = parse_record(s, b, em);
    return rc == BM_E_LOG_FORMAT ? bm_errmsg_set(em, BM_E_MSG_PARSE, "body is not JSON") : rc;
}

/* First pass over Records (s at its '['): every element an object, at most max of them. */
static bm_err count_sqs(struct bm__scan s, size_t max, size_t *n, struct bm_errmsg *em)
{
    struct bm__scan_iter it;
    bool more;
    *n = 0;
    bm_err rc = bm__scan_open(&s, &it);
    while (rc == BM_OK && (rc = bm__scan_next(&s, &it, NULL, &more)) == BM_OK && more) {
        if (*s.p != '{')
            return bm_errmsg_set(em, BM_E_MSG_PARSE, "SQS record %zu is not an object", *n);
        (*n)++;
        rc = bm__scan_skip_value(&s);
    }
    if (rc != BM_OK)
        return bm_errmsg_set(em, BM_E_MSG_PARSE, "body is not JSON");
    if (*n == 0)
        return bm_errmsg_set(em, BM_E_MSG_PARSE, "an array of no SQS records");
    if (*n > max)
        return bm_errmsg_set(em, BM_E_TOO_LARGE, "batch of %zu messages is over BATCH_SIZE (%zu)",
                             *n, max);
    return BM_OK;
}

/* Scans the top level: one JSON object or array, nothing after it. For an object, at most one
 * Records (its position into *records, NULL when absent); *is_array when it is an array. */
static bm_err scan_top(const char *body, size_t len, const char **records, bool *is_array,
                       struct bm_errmsg *em)
{
    struct bm__scan s = {body, body + len, 0};
    struct bm__scan_iter it;
    struct bm__scan_key k;
    bool more;
    *records = NULL;
    bm__scan_ws(&s);
    *is_array = s.p < s.end && *s.p == '[';
    if (s.p < s.end && *s.p != '{' && !*is_array && bm__scan_skip_value(&s) == BM_OK)
        return bm_errmsg_set(em, BM_E_MSG_PARSE, "body is neither a JSON object nor an array");
    bm_err rc = BM_OK;
    if (*is_array) {
        rc = bm__scan_skip_value(&s);
    } else {
        s.p = body;
        s.depth = 0;
        bm__scan_ws(&s);
        rc = bm__scan_open(&s, &it);
        while (rc == BM_OK && (rc = bm__scan_next(&s, &it, &k, &more)) == BM_OK && more) {
            if (bm__scan_key_is(&k, "Records")) {
                if (*records != NULL)
                    return bm_errmsg_set(em, BM_E_MSG_PARSE, "\"Records\" appears twice");
                *records = s.p;
            }
            rc = bm__scan_skip_value(&s);
        }
    }
    if (rc != BM_OK)
        return bm_errmsg_set(em, BM_E_MSG_PARSE, "body is not JSON");
    bm__scan_ws(&s);
    if (s.p != s.end)
        return bm_errmsg_set(em, BM_E_MSG_PARSE, "data after the body's JSON value");
    return BM_OK;
}

/* Whether the array at arr (its '[') starts with an SQS record. */
static bool is_sqs_array(const char *arr, const char *end)
{
    struct bm__scan s = {arr, end, 0};
    struct bm__scan_iter it;
    struct sqs_rec r;
    bool more;
    return bm__scan_open(&s, &it) == BM_OK && bm__scan_next(&s, &it, NULL, &more) == BM_OK &&
           more && *s.p == '{' && scan_sqs_record(&s, &r) == BM_OK && looks_sqs(&r);
}

/* Whether the object at obj (its '{') is itself an SQS record. No notification has a
 * messageId with a body, nor an eventSource of aws:sqs (SNS spells it MessageId). */
static bool is_sqs_record(const char *obj, const char *end)
{
    struct bm__scan s = {obj, end, 0};
    struct sqs_rec r;
    return scan_sqs_record(&s, &r) == BM_OK && looks_sqs(&r);
}

/* An array of SQS records, or a Lambda event's Records (s at the '['): counted against
 * max_messages before anything is built, then parsed. */
static bm_err parse_array(struct bm__scan s, size_t max_messages, enum bm_event_form form,
                          struct bm_event_batch **out, struct bm_errmsg *em)
{
    size_t n;
    bm_err rc = count_sqs(s, max_messages, &n, em);
    if (rc != BM_OK)
        return rc;
    if (!is_sqs_array(s.p, s.end))
        return bm_errmsg_set(em, BM_E_MSG_PARSE,
                             "an array whose first element is no SQS record (messageId, body)");
    struct bm_event_batch *b = bm_calloc(1, sizeof *b);
    if (b == NULL)
        return BM_E_NOMEM;
    b->form = form;
    b->is_sqs = true;
    *out = b;
    return parse_sqs(&s, b, n, em);
}

bm_err bm_envelope_parse(const char *body, size_t len, size_t max_messages,
                         struct bm_event_batch **out, struct bm_errmsg *em)
{
    const char *records;
    bool is_array;
    bm_err rc = scan_top(body, len, &records, &is_array, em);
    if (rc != BM_OK)
        return rc;
    const char *end = body + len;
    struct bm__scan top = {body, end, 0};
    bm__scan_ws(&top);
    struct bm_event_batch *b = NULL;
    if (is_array) {
        rc = parse_array(top, max_messages, BM_FORM_SQS_ARRAY, &b, em);
    } else if (records != NULL && *records == '[' && is_sqs_array(records, end)) {
        rc = parse_array((struct bm__scan){records, end, 0}, max_messages, BM_FORM_LAMBDA, &b, em);
    } else if (records == NULL && is_sqs_record(top.p, end)) {
        if ((b = bm_calloc(1, sizeof *b)) == NULL ||
            (b->msgs = bm_calloc(1, sizeof *b->msgs)) == NULL) {
            rc = BM_E_NOMEM;
        } else {
            b->form = BM_FORM_SQS_RECORD;
            b->is_sqs = true;
            rc = parse_record(&top, b, em);
            if (rc == BM_E_LOG_FORMAT)
                rc = bm_errmsg_set(em, BM_E_MSG_PARSE, "body is not JSON");
        }
    } else {
        /* A bare event: one message without an id, as big as one message may be. */
        if (len > BM_MAX_MESSAGE_BYTES)
            return bm_errmsg_set(em, BM_E_TOO_LARGE,
                                 "an event of %zu bytes is over %d (BM_MAX_MESSAGE_BYTES)", len,
                                 BM_MAX_MESSAGE_BYTES);
        if ((b = bm_calloc(1, sizeof *b)) == NULL ||
            (b->msgs = bm_calloc(1, sizeof *b->msgs)) == NULL)
            rc = BM_E_NOMEM;
        else
            rc = bm_message_parse_body("", 1, body, len, &b->msgs[0]);
        if (b != NULL && b->msgs != NULL)
            b->n = 1;
        if (rc == BM_OK && b->msgs[0].parse_err != BM_OK)
            rc = bm_errmsg_set(em, b->msgs[0].parse_err, "%s", b->msgs[0].parse_msg.text);
    }
    if (rc != BM_OK) {
        bm_event_batch_free(b);
        return rc;
    }
    *out = b;
    return BM_OK;
}
