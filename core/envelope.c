/* envelope.c: what arrives at POST /events (and from the SQS consumer) turned into the
 * objects to ingest. Shapes (docs/formats.md 4-5): a Lambda SQS event whose message bodies are S3
 * notifications, SNS notifications wrapping one (Message is a JSON string), EventBridge
 * "Object Created" events, or s3:TestEvent; and each of those posted bare. Keys in S3 and SNS
 * notifications are form-URL-encoded; EventBridge keys are taken as given (moto#9060). */
#include "core/bm_core.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

/* S3 and SNS notifications carry form-URL-encoded keys; decoded in one pass (docs/formats.md 4.1).
 * NULL on OOM; "" plus a parse error when the key is not valid form encoding. */
static char *form_decode(const char *key)
{
    struct bm_buf b;
    bm_buf_init(&b, strlen(key) + 1);
    bm_err rc = bm_url_decode(key, strlen(key), true, &b);
    if (rc == BM_OK && b.data == NULL)
        rc = bm_buf_append(&b, "", 0);
    if (rc != BM_OK) {
        bm_buf_cleanup(&b);
        return rc == BM_E_NOMEM ? NULL : bm_strdup("");
    }
    return bm_buf_steal(&b);
}

static const char *str_item(const cJSON *obj, const char *name)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

static void ref_cleanup(struct bm_object_ref *r)
{
    bm_free(r->bucket);
    bm_free(r->key);
    bm_free(r->version_id);
    bm_free(r->etag);
    bm_free(r->event_name);
}

void bm_message_cleanup(struct bm_message *m)
{
    for (size_t i = 0; i < m->nrefs; i++)
        ref_cleanup(&m->refs[i]);
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

static struct bm_object_ref *add_ref(struct bm_message *m)
{
    struct bm_object_ref *refs = bm_realloc(m->refs, (m->nrefs + 1) * sizeof *refs);
    if (refs == NULL)
        return NULL;
    m->refs = refs;
    struct bm_object_ref *r = &refs[m->nrefs++];
    memset(r, 0, sizeof *r);
    return r;
}

/* Copies a string field, "" when absent; strips the quotes S3 sometimes leaves in ETags. */
static char *dup_or_empty(const char *s, bool strip_quotes)
{
    if (s == NULL)
        return bm_strdup("");
    size_t len = strlen(s);
    if (strip_quotes && len >= 2 && s[0] == '"' && s[len - 1] == '"')
        return bm_strndup(s + 1, len - 2);
    return bm_strdup(s);
}

static uint64_t size_item(const cJSON *obj)
{
    const cJSON *sz = cJSON_GetObjectItemCaseSensitive(obj, "size");
    return cJSON_IsNumber(sz) && sz->valuedouble > 0 ? (uint64_t)sz->valuedouble : 0;
}

static bm_err fail(struct bm_message *m, const char *what)
{
    m->parse_err = BM_E_MSG_PARSE;
    bm_errmsg_set(&m->parse_msg, BM_E_MSG_PARSE, "%s", what);
    return BM_OK;
}

/* S3 notification records: {"Records":[{"eventSource":"aws:s3","s3":{...}}]}. */
static bm_err parse_s3_records(const cJSON *records, struct bm_message *m)
{
    const cJSON *rec;
    cJSON_ArrayForEach(rec, records)
    {
        const char *ver = str_item(rec, "eventVersion");
        const char *name = str_item(rec, "eventName");
        const cJSON *s3 = cJSON_GetObjectItemCaseSensitive(rec, "s3");
        const cJSON *bucket = cJSON_GetObjectItemCaseSensitive(s3, "bucket");
        const cJSON *obj = cJSON_GetObjectItemCaseSensitive(s3, "object");
        /* "An equal-to comparison on the major version": 2.x only. */
        if (ver == NULL || strncmp(ver, "2.", 2) != 0)
            return fail(m, "S3 record with an eventVersion other than 2.x");
        if (name == NULL || !cJSON_IsObject(bucket) || !cJSON_IsObject(obj))
            return fail(m, "S3 record without eventName, s3.bucket or s3.object");
        const char *bname = str_item(bucket, "name");
        const char *key = str_item(obj, "key");
        if (bname == NULL || key == NULL)
            return fail(m, "S3 record without bucket name or object key");
        struct bm_object_ref *r = add_ref(m);
        if (r == NULL)
            return BM_E_NOMEM;
        r->kind = strncmp(name, "ObjectCreated:", 14) == 0 ? BM_REF_OBJECT : BM_REF_IGNORED;
        r->bucket = bm_strdup(bname);
        r->key = form_decode(key);
        r->version_id = dup_or_empty(str_item(obj, "versionId"), false);
        r->etag = dup_or_empty(str_item(obj, "eTag"), true);
        r->event_name = bm_strdup(name);
        r->size = size_item(obj);
        if (!r->bucket || !r->key || !r->version_id || !r->etag || !r->event_name)
            return BM_E_NOMEM;
        if (r->key[0] == '\0')
            return fail(m, "S3 record whose object key is empty or not URL-encoded");
    }
    return BM_OK;
}

static bm_err parse_event_json(const cJSON *j, struct bm_message *m, int depth);

/* One event document (not an SQS event): S3 notification, TestEvent, SNS, EventBridge. */
static bm_err parse_event_json(const cJSON *j, struct bm_message *m, int depth)
{
    if (!cJSON_IsObject(j))
        return fail(m, "body is not a JSON object");
    const cJSON *records = cJSON_GetObjectItemCaseSensitive(j, "Records");
    if (cJSON_IsArray(records)) {
        if (cJSON_GetArraySize(records) == 0)
            return fail(m, "S3 notification with no Records");
        return parse_s3_records(records, m);
    }
    const char *ev = str_item(j, "Event");
    if (ev != NULL && strcmp(ev, "s3:TestEvent") == 0) {
        struct bm_object_ref *r = add_ref(m);
        if (r == NULL)
            return BM_E_NOMEM;
        r->kind = BM_REF_TEST_EVENT;
        r->bucket = dup_or_empty(str_item(j, "Bucket"), false);
        r->event_name = bm_strdup("s3:TestEvent");
        return r->bucket && r->event_name ? BM_OK : BM_E_NOMEM;
    }
    const char *type = str_item(j, "Type");
    const char *msg = str_item(j, "Message");
    if (type != NULL && msg != NULL && depth == 0) {
        /* SNS: the S3 event travels as a JSON string. */
        if (strcmp(type, "Notification") != 0)
            return fail(m, "SNS message that is not a Notification (confirm subscriptions "
                           "out of band)");
        cJSON *inner = cJSON_ParseWithLength(msg, strlen(msg));
        if (inner == NULL)
            return fail(m, "SNS Message is not JSON");
        bm_err rc = parse_event_json(inner, m, depth + 1);
        cJSON_Delete(inner);
        return rc;
    }
    const char *dt = str_item(j, "detail-type");
    const char *src = str_item(j, "source");
    if (dt != NULL && src != NULL && strcmp(src, "aws.s3") == 0) {
        const cJSON *detail = cJSON_GetObjectItemCaseSensitive(j, "detail");
        const cJSON *bucket = cJSON_GetObjectItemCaseSensitive(detail, "bucket");
        const cJSON *obj = cJSON_GetObjectItemCaseSensitive(detail, "object");
        const char *bname = str_item(bucket, "name");
        const char *key = str_item(obj, "key");
        if (bname == NULL || key == NULL)
            return fail(m, "EventBridge S3 event without detail.bucket.name or object.key");
        struct bm_object_ref *r = add_ref(m);
        if (r == NULL)
            return BM_E_NOMEM;
        r->kind = strcmp(dt, "Object Created") == 0 ? BM_REF_OBJECT : BM_REF_IGNORED;
        r->bucket = bm_strdup(bname);
        r->key = bm_strdup(key); /* EventBridge keys are not form-encoded */
        r->version_id = dup_or_empty(str_item(obj, "version-id"), false);
        r->etag = dup_or_empty(str_item(obj, "etag"), true);
        r->event_name = bm_strdup(dt);
        r->size = size_item(obj);
        return r->bucket && r->key && r->version_id && r->etag && r->event_name ? BM_OK
                                                                                : BM_E_NOMEM;
    }
    return fail(m, "body is neither an S3 notification, an SNS notification, an EventBridge "
                   "S3 event nor s3:TestEvent");
}

bm_err bm_message_parse_body(const char *message_id, long receive_count, const char *body,
                             size_t len, struct bm_message *msg)
{
    memset(msg, 0, sizeof *msg);
    msg->message_id = bm_strdup(message_id ? message_id : "");
    msg->receive_count = receive_count;
    if (msg->message_id == NULL)
        return BM_E_NOMEM;
    cJSON *j = cJSON_ParseWithLength(body, len);
    if (j == NULL)
        return fail(msg, "message body is not JSON");
    bm_err rc = parse_event_json(j, msg, 0);
    cJSON_Delete(j);
    return rc;
}

/* A Lambda SQS event record: messageId, body (string), attributes.ApproximateReceiveCount. */
static bool is_sqs_record(const cJSON *rec)
{
    const char *src = str_item(rec, "eventSource");
    return (src != NULL && strcmp(src, "aws:sqs") == 0) ||
           (str_item(rec, "messageId") != NULL && str_item(rec, "body") != NULL);
}

bm_err bm_envelope_parse(const char *body, size_t len, struct bm_event_batch **out,
                         struct bm_errmsg *em)
{
    cJSON *j = cJSON_ParseWithLength(body, len);
    if (j == NULL)
        return bm_errmsg_set(em, BM_E_MSG_PARSE, "body is not JSON");
    struct bm_event_batch *b = bm_calloc(1, sizeof *b);
    bm_err rc = b ? BM_OK : BM_E_NOMEM;
    const cJSON *records = cJSON_GetObjectItemCaseSensitive(j, "Records");
    const cJSON *first = cJSON_IsArray(records) ? cJSON_GetArrayItem(records, 0) : NULL;
    if (rc == BM_OK && first != NULL && is_sqs_record(first)) {
        b->is_sqs = true;
        size_t n = (size_t)cJSON_GetArraySize(records);
        b->msgs = bm_calloc(n, sizeof *b->msgs);
        if (b->msgs == NULL)
            rc = BM_E_NOMEM;
        const cJSON *rec;
        cJSON_ArrayForEach(rec, records)
        {
            if (rc != BM_OK)
                break;
            const char *id = str_item(rec, "messageId");
            const char *mbody = str_item(rec, "body");
            /* Without a messageId the message cannot be named in batchItemFailures, and an
             * unknown id there fails the whole batch: refuse the request instead. */
            if (id == NULL || *id == '\0') {
                rc = bm_errmsg_set(em, BM_E_MSG_PARSE, "SQS record %zu has no messageId", b->n);
                break;
            }
            const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(rec, "attributes");
            const char *rc_s = str_item(attrs, "ApproximateReceiveCount");
            long count = rc_s ? strtol(rc_s, NULL, 10) : 1;
            struct bm_message *m = &b->msgs[b->n++];
            if (mbody == NULL) {
                memset(m, 0, sizeof *m);
                m->message_id = bm_strdup(id);
                m->receive_count = count;
                rc = m->message_id ? fail(m, "SQS record without a string body") : BM_E_NOMEM;
            } else {
                rc = bm_message_parse_body(id, count, mbody, strlen(mbody), m);
            }
        }
    } else if (rc == BM_OK) {
        /* A bare event: one message without an id. */
        b->msgs = bm_calloc(1, sizeof *b->msgs);
        if (b->msgs == NULL) {
            rc = BM_E_NOMEM;
        } else {
            b->n = 1;
            b->msgs[0].message_id = bm_strdup("");
            b->msgs[0].receive_count = 1;
            rc = b->msgs[0].message_id ? parse_event_json(j, &b->msgs[0], 0) : BM_E_NOMEM;
            if (rc == BM_OK && b->msgs[0].parse_err != BM_OK)
                rc = bm_errmsg_set(em, BM_E_MSG_PARSE, "%s", b->msgs[0].parse_msg.text);
        }
    }
    cJSON_Delete(j);
    if (rc != BM_OK) {
        bm_event_batch_free(b);
        return rc;
    }
    *out = b;
    return BM_OK;
}
