/* envelope_msg.c: one message body (an SQS message's body, or an event posted bare) turned into
 * the objects it names. Shapes (docs/formats.md 4): S3 notifications, SNS notifications wrapping
 * one (Message is a JSON string), EventBridge "Object Created" events and s3:TestEvent. Bodies are
 * untrusted: records are counted by a scan before cJSON builds a tree, a key that appears twice
 * or holds the wrong type fails the message, and every S3 name is checked as S3 would. Keys in
 * S3 and SNS notifications are form-URL-encoded; EventBridge keys are taken as given (moto#9060).
 */
#include "core/core_int.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

bm_err bm__message_fail(struct bm_message *m, bm_err code, const char *fmt, ...)
{
    if (m->parse_err != BM_OK)
        return BM_OK;
    m->parse_err = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->parse_msg.text, sizeof m->parse_msg.text, fmt, ap);
    va_end(ap);
    return BM_OK;
}

/* S3 and SNS notifications carry form-URL-encoded keys; decoded in one pass (docs/formats.md 4.1).
 * BM_E_MSG_PARSE when the key is not valid form encoding. */
static bm_err form_decode(const char *key, char **out, size_t *out_len)
{
    struct bm_buf b;
    bm_buf_init(&b, strlen(key) + 1);
    bm_err rc = bm_url_decode(key, strlen(key), true, &b);
    if (rc == BM_OK && b.data == NULL)
        rc = bm_buf_append(&b, "", 0);
    if (rc != BM_OK) {
        bm_buf_cleanup(&b);
        return rc == BM_E_NOMEM ? rc : BM_E_MSG_PARSE;
    }
    *out_len = b.len; /* %00 decodes to a NUL: the length, not strlen, is the key's */
    *out = bm_buf_steal(&b);
    return BM_OK;
}

enum jtype { J_STR, J_OBJ, J_ARR, J_NUM };

static bool has_type(const cJSON *it, enum jtype t)
{
    switch (t) {
    case J_STR:
        return cJSON_IsString(it);
    case J_OBJ:
        return cJSON_IsObject(it);
    case J_ARR:
        return cJSON_IsArray(it);
    case J_NUM:
        return cJSON_IsNumber(it);
    }
    return false;
}

static const char *type_name(enum jtype t)
{
    switch (t) {
    case J_STR:
        return "a string";
    case J_OBJ:
        return "an object";
    case J_ARR:
        return "an array";
    case J_NUM:
        return "a number";
    }
    return "?";
}

/* The member name of obj into *out (NULL when absent and !required). Fails m and returns
 * false when it is missing but required, of another type, or present twice: JSON parsers
 * disagree on which duplicate wins, so an event with two could name two objects. */
static bool get(struct bm_message *m, const cJSON *obj, const char *name, enum jtype t,
                bool required, const cJSON **out)
{
    const cJSON *found = NULL;
    for (const cJSON *c = obj ? obj->child : NULL; c != NULL; c = c->next) {
        if (c->string == NULL || strcmp(c->string, name) != 0)
            continue;
        if (found != NULL) {
            bm__message_fail(m, BM_E_MSG_PARSE, "\"%s\" appears twice", name);
            return false;
        }
        found = c;
    }
    if (found == NULL && required) {
        bm__message_fail(m, BM_E_MSG_PARSE, "no \"%s\"", name);
        return false;
    }
    if (found != NULL && !has_type(found, t)) {
        bm__message_fail(m, BM_E_MSG_PARSE, "\"%s\" is not %s", name, type_name(t));
        return false;
    }
    *out = found;
    return true;
}

/* Like get for an optional string: *out is NULL when absent. */
static bool get_str(struct bm_message *m, const cJSON *obj, const char *name, bool required,
                    const char **out)
{
    const cJSON *it = NULL;
    if (!get(m, obj, name, J_STR, required, &it))
        return false;
    *out = it ? it->valuestring : NULL;
    return true;
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

/* The names of one object as an event gives them, checked by S3's rules (s3_names.c) and
 * copied into a new ref. key_is_form: S3/SNS notification keys are form-URL-encoded. */
struct names {
    const char *bucket, *key, *version, *etag, *event;
    const cJSON *size;
    enum bm_ref_kind kind;
};

static bm_err add_object(struct bm_message *m, const struct names *n, bool key_is_form)
{
    char etag[BM_S3_ETAG_MAX + 1] = "";
    const char *why = bm_s3_bucket_check(n->bucket, strlen(n->bucket));
    if (why != NULL)
        return bm__message_fail(m, BM_E_MSG_PARSE, "bucket name refused: %s", why);
    /* An empty string is how some producers say "absent"; neither names another object. */
    if (n->version != NULL && n->version[0] != '\0' &&
        (why = bm_s3_version_check(n->version, strlen(n->version))) != NULL)
        return bm__message_fail(m, BM_E_MSG_PARSE, "versionId refused: %s", why);
    if (n->etag != NULL && n->etag[0] != '\0' &&
        (why = bm_s3_etag_normalize(n->etag, strlen(n->etag), etag)) != NULL)
        return bm__message_fail(m, BM_E_MSG_PARSE, "ETag refused: %s", why);
    char *key = NULL;
    size_t key_len = strlen(n->key);
    bm_err rc = key_is_form ? form_decode(n->key, &key, &key_len) : BM_OK;
    if (rc == BM_E_MSG_PARSE)
        return bm__message_fail(m, rc, "object key is not URL-encoded as S3 writes it");
    if (rc != BM_OK)
        return rc;
    if (key == NULL && (key = bm_strdup(n->key)) == NULL)
        return BM_E_NOMEM;
    /* Checked after decoding: that is the key S3 would be asked for. */
    if ((why = bm_s3_key_check(key, key_len)) != NULL) {
        bm_free(key);
        return bm__message_fail(m, BM_E_MSG_PARSE, "object key refused: %s", why);
    }
    struct bm_object_ref *r = add_ref(m);
    if (r == NULL) {
        bm_free(key);
        return BM_E_NOMEM;
    }
    r->kind = n->kind;
    r->key = key;
    r->bucket = bm_strdup(n->bucket);
    r->version_id = bm_strdup(n->version ? n->version : "");
    r->etag = bm_strdup(etag);
    r->event_name = bm_strdup(n->event);
    r->size = n->size && n->size->valuedouble > 0 ? (uint64_t)n->size->valuedouble : 0;
    return r->bucket && r->version_id && r->etag && r->event_name ? BM_OK : BM_E_NOMEM;
}

/* One S3 notification record: {"eventVersion":"2.x"?,"eventName":…?,"s3":{"bucket":{"name"},
 * "object":{"key","eTag"?,"versionId"?,"size"?}}}. An "s3" object naming a bucket and a key is
 * enough: hand-written events (the Lambda guide's "Test with Sample Event") carry nothing else.
 * eventVersion, when present, must be 2.x; eventName, when present, must be ObjectCreated:*
 * for the object to count, any other event is acknowledged without a fetch (BM_REF_IGNORED). */
static bm_err parse_s3_record(struct bm_message *m, const cJSON *rec)
{
    struct names n = {0};
    const char *ver;
    const cJSON *s3, *bucket, *obj;
    if (!cJSON_IsObject(rec))
        return bm__message_fail(m, BM_E_MSG_PARSE, "an S3 record is not an object");
    if (!get_str(m, rec, "eventVersion", false, &ver) ||
        !get_str(m, rec, "eventName", false, &n.event) || !get(m, rec, "s3", J_OBJ, true, &s3) ||
        !get(m, s3, "bucket", J_OBJ, true, &bucket) || !get(m, s3, "object", J_OBJ, true, &obj) ||
        !get_str(m, bucket, "name", true, &n.bucket) || !get_str(m, obj, "key", true, &n.key) ||
        !get_str(m, obj, "versionId", false, &n.version) ||
        !get_str(m, obj, "eTag", false, &n.etag) || !get(m, obj, "size", J_NUM, false, &n.size))
        return BM_OK;
    /* "An equal-to comparison on the major version": 2.x only. */
    if (ver != NULL && strncmp(ver, "2.", 2) != 0)
        return bm__message_fail(m, BM_E_MSG_PARSE, "S3 record with an eventVersion other than 2.x");
    if (n.event == NULL) {
        n.event = "";
        n.kind = BM_REF_OBJECT;
    } else {
        n.kind = strncmp(n.event, "ObjectCreated:", 14) == 0 ? BM_REF_OBJECT : BM_REF_IGNORED;
    }
    return add_object(m, &n, true);
}

static bm_err parse_eventbridge(struct bm_message *m, const cJSON *j, const char *dt)
{
    struct names n = {.event = dt};
    const cJSON *detail, *bucket, *obj;
    if (!get(m, j, "detail", J_OBJ, true, &detail) ||
        !get(m, detail, "bucket", J_OBJ, true, &bucket) ||
        !get(m, detail, "object", J_OBJ, true, &obj) ||
        !get_str(m, bucket, "name", true, &n.bucket) || !get_str(m, obj, "key", true, &n.key) ||
        !get_str(m, obj, "version-id", false, &n.version) ||
        !get_str(m, obj, "etag", false, &n.etag) || !get(m, obj, "size", J_NUM, false, &n.size))
        return BM_OK;
    n.kind = strcmp(dt, "Object Created") == 0 ? BM_REF_OBJECT : BM_REF_IGNORED;
    return add_object(m, &n, false); /* EventBridge keys are not form-encoded */
}

/* Whether body holds a NUL, raw or as \u0000. cJSON would end the string there, so
 * "a\u0000b" would name object "a" while another reader sees "a\0b"; no S3 event has one. */
static bool has_nul(const char *body, size_t len)
{
    if (memchr(body, '\0', len) != NULL)
        return true;
    for (const char *p = body, *end = body + len; (p = memchr(p, 'u', (size_t)(end - p)));) {
        size_t bs = 0;
        while (p - bs > body && p[-1 - (ptrdiff_t)bs] == '\\')
            bs++;
        if (bs % 2 == 1 && end - p >= 5 && memcmp(p + 1, "0000", 4) == 0)
            return true;
        p++;
    }
    return false;
}

/* Counts the Records of a body by a scan, before any tree is built: a body must be one JSON
 * object with nothing after it, and its Records (when present) an array of at most
 * BM_MAX_S3_RECORDS_PER_MESSAGE objects. */
static void precheck(struct bm_message *m, const char *body, size_t len)
{
    struct bm__scan s = {body, body + len, 0};
    struct bm__scan_iter it;
    struct bm__scan_key k;
    bool more, seen = false;
    if (has_nul(body, len)) {
        bm__message_fail(m, BM_E_MSG_PARSE, "message body holds a NUL character");
        return;
    }
    bm__scan_ws(&s);
    if (s.p < s.end && *s.p != '{') {
        bm__message_fail(m, BM_E_MSG_PARSE, "message body is not a JSON object");
        return;
    }
    if (bm__scan_open(&s, &it) != BM_OK)
        goto not_json;
    for (;;) {
        if (bm__scan_next(&s, &it, &k, &more) != BM_OK)
            goto not_json;
        if (!more)
            break;
        if (!bm__scan_key_is(&k, "Records") || *s.p != '[') {
            if (bm__scan_skip_value(&s) != BM_OK)
                goto not_json;
            seen = seen || bm__scan_key_is(&k, "Records");
            continue;
        }
        if (seen) {
            bm__message_fail(m, BM_E_MSG_PARSE, "\"Records\" appears twice");
            return;
        }
        seen = true;
        struct bm__scan_iter ai;
        size_t n = 0;
        if (bm__scan_open(&s, &ai) != BM_OK)
            goto not_json;
        for (;;) {
            if (bm__scan_next(&s, &ai, NULL, &more) != BM_OK)
                goto not_json;
            if (!more)
                break;
            if (*s.p != '{') {
                bm__message_fail(m, BM_E_MSG_PARSE, "S3 record %zu is not an object", n);
                return;
            }
            if (++n > BM_MAX_S3_RECORDS_PER_MESSAGE) {
                bm__message_fail(m, BM_E_TOO_LARGE,
                                 "more than %d S3 records in one message "
                                 "(BM_MAX_S3_RECORDS_PER_MESSAGE)",
                                 BM_MAX_S3_RECORDS_PER_MESSAGE);
                return;
            }
            if (bm__scan_skip_value(&s) != BM_OK)
                goto not_json;
        }
    }
    bm__scan_ws(&s);
    if (s.p != s.end)
        bm__message_fail(m, BM_E_MSG_PARSE, "data after the message body's JSON value");
    return;
not_json:
    bm__message_fail(m, BM_E_MSG_PARSE, "message body is not JSON");
}

static bm_err parse_body(struct bm_message *m, const char *body, size_t len, int depth);

/* One event document: S3 notification, TestEvent, SNS (depth 0 only), EventBridge. */
static bm_err parse_event(struct bm_message *m, const cJSON *j, int depth)
{
    const cJSON *records;
    const char *ev, *type, *msg, *dt, *src;
    if (!get(m, j, "Records", J_ARR, false, &records) || !get_str(m, j, "Event", false, &ev) ||
        !get_str(m, j, "Type", false, &type) || !get_str(m, j, "Message", false, &msg) ||
        !get_str(m, j, "detail-type", false, &dt) || !get_str(m, j, "source", false, &src))
        return BM_OK;
    if (records != NULL) {
        if (cJSON_GetArraySize(records) == 0)
            return bm__message_fail(m, BM_E_MSG_PARSE, "S3 notification with no Records");
        const cJSON *rec;
        cJSON_ArrayForEach(rec, records)
        {
            bm_err rc = parse_s3_record(m, rec);
            if (rc != BM_OK || m->parse_err != BM_OK)
                return rc;
        }
        return BM_OK;
    }
    if (ev != NULL && strcmp(ev, "s3:TestEvent") == 0) {
        const char *bucket;
        if (!get_str(m, j, "Bucket", false, &bucket))
            return BM_OK;
        struct bm_object_ref *r = add_ref(m);
        if (r == NULL)
            return BM_E_NOMEM;
        r->kind = BM_REF_TEST_EVENT;
        r->bucket = bm_strdup(bucket ? bucket : "");
        r->event_name = bm_strdup("s3:TestEvent");
        return r->bucket && r->event_name ? BM_OK : BM_E_NOMEM;
    }
    if (type != NULL && msg != NULL && depth == 0) {
        /* SNS: the S3 event travels as a JSON string. */
        if (strcmp(type, "Notification") != 0)
            return bm__message_fail(m, BM_E_MSG_PARSE,
                                    "SNS message that is not a Notification (confirm "
                                    "subscriptions out of band)");
        return parse_body(m, msg, strlen(msg), depth + 1);
    }
    if (dt != NULL && src != NULL && strcmp(src, "aws.s3") == 0)
        return parse_eventbridge(m, j, dt);
    return bm__message_fail(m, BM_E_MSG_PARSE,
                            "body is neither an S3 notification, an SNS notification, an "
                            "EventBridge S3 event nor s3:TestEvent");
}

static bm_err parse_body(struct bm_message *m, const char *body, size_t len, int depth)
{
    precheck(m, body, len);
    if (m->parse_err != BM_OK)
        return BM_OK;
    cJSON *j = cJSON_ParseWithLength(body, len);
    if (j == NULL)
        return bm__message_fail(m, BM_E_MSG_PARSE, "message body is not JSON");
    bm_err rc = parse_event(m, j, depth);
    cJSON_Delete(j);
    return rc;
}

bm_err bm__message_parse(struct bm_message *m, const char *body, size_t len)
{
    if (len > BM_MAX_MESSAGE_BYTES)
        return bm__message_fail(m, BM_E_TOO_LARGE,
                                "message body of %zu bytes is over %d (BM_MAX_MESSAGE_BYTES)", len,
                                BM_MAX_MESSAGE_BYTES);
    bm_err rc = parse_body(m, body, len, 0);
    if (rc == BM_OK && m->parse_err != BM_OK) {
        /* A failed message names no object: nothing of it may be fetched. */
        for (size_t i = 0; i < m->nrefs; i++) {
            struct bm_object_ref *r = &m->refs[i];
            bm_free(r->bucket);
            bm_free(r->key);
            bm_free(r->version_id);
            bm_free(r->etag);
            bm_free(r->event_name);
        }
        BM_FREE(m->refs);
        m->nrefs = 0;
    }
    return rc;
}
