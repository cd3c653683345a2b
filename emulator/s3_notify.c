/* s3_notify.c: S3 bucket notifications: Put/GetBucketNotificationConfiguration with SQS queue
 * targets and prefix/suffix filters, s3:TestEvent, and the real S3 event JSON (eventVersion
 * 2.1, keys form-URL-encoded as S3 does, eTag, growing sequencer) sent for matching events. */
#include "emulator/emu_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ---- events --------------------------------------------------------------------------- */
bm_err bm__emu_s3_event_json(const struct emu_event *ev, struct bm_buf *b)
{
    char when[25];
    struct bm_buf key;
    bm_err rc;
    bm__emu_iso_ms(ev->time_ms, when);
    bm_buf_init(&key, 16 * 1024);
    /* "The object key name value is URL encoded": form style, '/' kept (docs/formats.md 4.1). */
    if ((rc = bm_url_encode(ev->key, ev->key_len, "/", true, &key)) != BM_OK)
        goto done;
    if ((rc = bm_buf_appendf(b,
                             "{\"Records\":[{\"eventVersion\":\"2.1\",\"eventSource\":"
                             "\"aws:s3\",\"awsRegion\":\"%s\",\"eventTime\":\"%s\","
                             "\"eventName\":\"%s\",\"userIdentity\":{\"principalId\":"
                             "\"AWS:%s\"},\"requestParameters\":{\"sourceIPAddress\":"
                             "\"127.0.0.1\"},\"responseElements\":{\"x-amz-request-id\":"
                             "\"%s\",\"x-amz-id-2\":\"%s\"},\"s3\":{\"s3SchemaVersion\":"
                             "\"1.0\",\"configurationId\":",
                             ev->region, when, ev->event_name, EMU_ACCOUNT, ev->request_id,
                             ev->request_id)) != BM_OK ||
        (rc = bm_buf_append_json_str(b, ev->config_id, strlen(ev->config_id))) != BM_OK ||
        (rc = bm_buf_append_str(b, ",\"bucket\":{\"name\":")) != BM_OK ||
        (rc = bm_buf_append_json_str(b, ev->bucket, strlen(ev->bucket))) != BM_OK ||
        (rc = bm_buf_appendf(b,
                             ",\"ownerIdentity\":{\"principalId\":\"%s\"},\"arn\":"
                             "\"arn:aws:s3:::%s\"},\"object\":{\"key\":",
                             EMU_ACCOUNT, ev->bucket)) != BM_OK ||
        (rc = bm_buf_append_json_str(b, key.data ? key.data : "", key.len)) != BM_OK)
        goto done;
    if (ev->etag != NULL && (rc = bm_buf_appendf(b, ",\"size\":%llu,\"eTag\":\"%s\"",
                                                 (unsigned long long)ev->size, ev->etag)) != BM_OK)
        goto done;
    rc = bm_buf_appendf(b, ",\"sequencer\":\"%018llX\"}}}]}", (unsigned long long)ev->sequencer);
done:
    bm_buf_cleanup(&key);
    return rc;
}

bool bm__emu_qconf_matches(const struct emu_qconf *c, const char *event_name, const char *key,
                           size_t key_len)
{
    bool ev = false;
    for (size_t i = 0; i < c->n_events && !ev; i++) {
        const char *e = c->events[i];
        size_t n = strlen(e);
        if (strncmp(e, "s3:", 3) != 0)
            continue;
        e += 3;
        n -= 3;
        /* "ObjectCreated:*" covers every ObjectCreated:<kind>. */
        ev = (n >= 2 && strcmp(e + n - 2, ":*") == 0) ? strncmp(event_name, e, n - 1) == 0
                                                      : strcmp(event_name, e) == 0;
    }
    if (!ev)
        return false;
    size_t pl = c->prefix ? strlen(c->prefix) : 0, sl = c->suffix ? strlen(c->suffix) : 0;
    if (pl > 0 && (key_len < pl || memcmp(key, c->prefix, pl) != 0))
        return false;
    if (sl > 0 && (key_len < sl || memcmp(key + key_len - sl, c->suffix, sl) != 0))
        return false;
    return true;
}

bm_err bm__emu_s3_notify(struct emu_req *rq, struct emu_bucket *b, const char *event_name,
                         const struct emu_object *o, const char *key, size_t key_len)
{
    struct bm_emu *emu = rq->emu;
    bm_err rc = BM_OK;
    for (size_t i = 0; i < b->n_qconf && rc == BM_OK; i++) {
        const struct emu_qconf *c = &b->qconf[i];
        if (!bm__emu_qconf_matches(c, event_name, key, key_len))
            continue;
        const char *qname = strrchr(c->queue_arn, ':');
        struct emu_queue *q = qname ? bm__emu_queue_find(emu, qname + 1) : NULL;
        if (q == NULL) {
            BM_LOG(BM_WARN, "emu", "s3_notify_dropped", "notification queue no longer exists",
                   BM_KV_STR("queue_arn", c->queue_arn), BM_KV_STR("bucket", b->name));
            continue;
        }
        /* Sequencers only grow per bucket, across restarts too (time-based floor). */
        uint64_t floor_seq = (uint64_t)rq->now_ms * 1000;
        b->sequencer = b->sequencer + 1 > floor_seq ? b->sequencer + 1 : floor_seq;
        struct emu_event ev = {
            .region = b->region[0] ? b->region : emu->region,
            .event_name = event_name,
            .time_ms = rq->now_ms,
            .config_id = c->id,
            .bucket = b->name,
            .key = key,
            .key_len = key_len,
            .size = o ? o->len : 0,
            .etag = o ? o->etag : NULL,
            .sequencer = b->sequencer,
            .request_id = rq->req_id,
        };
        struct bm_buf body;
        bm_buf_init(&body, 256 * 1024);
        rc = bm__emu_s3_event_json(&ev, &body);
        if (rc == BM_OK)
            rc = bm__emu_queue_push(emu, q, body.data, body.len, rq->now_ms);
        bm_buf_cleanup(&body);
    }
    return rc;
}

/* ---- notification configuration ------------------------------------------------------- */
void bm__emu_qconf_cleanup(struct emu_qconf *c)
{
    bm_free(c->id);
    bm_free(c->queue_arn);
    for (size_t i = 0; i < c->n_events; i++)
        bm_free(c->events[i]);
    bm_free(c->events);
    bm_free(c->prefix);
    bm_free(c->suffix);
}

static void qconfs_free(struct emu_qconf *c, size_t n)
{
    for (size_t i = 0; c != NULL && i < n; i++)
        bm__emu_qconf_cleanup(&c[i]);
    bm_free(c);
}

static bool known_event(const char *e)
{
    static const char *const events[] = {
        "s3:ObjectCreated:*",
        "s3:ObjectCreated:Put",
        "s3:ObjectCreated:Post",
        "s3:ObjectCreated:Copy",
        "s3:ObjectCreated:CompleteMultipartUpload",
        "s3:ObjectRemoved:*",
        "s3:ObjectRemoved:Delete",
        "s3:ObjectRemoved:DeleteMarkerCreated",
    };
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
        if (strcmp(e, events[i]) == 0)
            return true;
    }
    return false;
}

/* The queue name of "arn:aws:sqs:REGION:ACCOUNT:NAME", or NULL. */
static const char *arn_queue(const char *arn)
{
    if (strncmp(arn, "arn:aws:sqs:", 12) != 0)
        return NULL;
    const char *p = strrchr(arn, ':');
    return p && p[1] ? p + 1 : NULL;
}

static bm_err parse_qconf(struct emu_req *rq, const struct emu_xml *x, struct emu_qconf *c)
{
    for (struct emu_xml *e = x->child; e != NULL; e = e->next) {
        char **slot = NULL;
        if (strcmp(e->name, "Id") == 0) {
            slot = &c->id;
        } else if (strcmp(e->name, "Queue") == 0) {
            slot = &c->queue_arn;
        } else if (strcmp(e->name, "Event") == 0) {
            if (!known_event(e->text))
                return bm__emu_fail(rq, "InvalidArgument",
                                    "The event is not supported for notifications");
            char **grown = bm_realloc(c->events, (c->n_events + 1) * sizeof *grown);
            if (grown == NULL)
                return BM_E_NOMEM;
            c->events = grown;
            if ((c->events[c->n_events] = bm_strdup(e->text)) == NULL)
                return BM_E_NOMEM;
            c->n_events++;
        } else if (strcmp(e->name, "Filter") == 0) {
            struct emu_xml *k = bm__emu_xml_child(e, "S3Key");
            for (struct emu_xml *r = k ? k->child : NULL; r != NULL; r = r->next) {
                struct emu_xml *n = bm__emu_xml_child(r, "Name");
                struct emu_xml *v = bm__emu_xml_child(r, "Value");
                char **fs = n == NULL                            ? NULL
                            : strcasecmp(n->text, "prefix") == 0 ? &c->prefix
                            : strcasecmp(n->text, "suffix") == 0 ? &c->suffix
                                                                 : NULL;
                if (strcmp(r->name, "FilterRule") != 0 || fs == NULL || v == NULL || *fs)
                    return bm__emu_fail(rq, "InvalidArgument",
                                        "Invalid filter rule: name must be prefix or suffix, "
                                        "each at most once");
                if ((*fs = bm_strdup(v->text)) == NULL)
                    return BM_E_NOMEM;
            }
            continue;
        } else {
            continue;
        }
        if (slot != NULL) {
            bm_free(*slot);
            if ((*slot = bm_strdup(e->text)) == NULL)
                return BM_E_NOMEM;
        }
    }
    if (c->queue_arn == NULL || c->n_events == 0)
        return bm__emu_fail(rq, "MalformedXML", "QueueConfiguration needs a Queue and an Event");
    if (c->id == NULL) {
        char id[37];
        pthread_mutex_lock(&rq->emu->mu);
        bm__emu_uuid(rq->emu, id);
        pthread_mutex_unlock(&rq->emu->mu);
        if ((c->id = bm_strdup(id)) == NULL)
            return BM_E_NOMEM;
    }
    return BM_OK;
}

bm_err bm__emu_s3_put_notification(struct emu_req *rq, const char *name)
{
    struct bm_emu *emu = rq->emu;
    struct emu_xml *root = NULL;
    struct emu_qconf *confs = NULL;
    size_t n = 0;
    bm_err rc = bm__emu_xml_parse(rq->body.data ? rq->body.data : "", rq->body.len, &root);
    if (rc == BM_E_BAD_REQUEST || (rc == BM_OK && strcmp(root->name, "NotificationConfiguration")))
        rc = bm__emu_fail(rq, "MalformedXML",
                          "The XML you provided was not well-formed or did "
                          "not validate against our published schema");
    for (struct emu_xml *e = root ? root->child : NULL; e != NULL && rc == BM_OK; e = e->next) {
        if (strcmp(e->name, "QueueConfiguration") == 0) {
            struct emu_qconf *grown = bm_realloc(confs, (n + 1) * sizeof *confs);
            if (grown == NULL) {
                rc = BM_E_NOMEM;
                break;
            }
            confs = grown;
            memset(&confs[n], 0, sizeof confs[n]);
            rc = parse_qconf(rq, e, &confs[n++]);
        } else if (strcmp(e->name, "EventBridgeConfiguration") != 0) {
            rc = bm__emu_fail(rq, "InvalidArgument",
                              "bmas-emulator supports only QueueConfiguration targets, not %s",
                              e->name);
        }
    }
    if (rc != BM_OK)
        goto done;
    pthread_mutex_lock(&emu->mu);
    struct emu_bucket *b = bm__emu_bucket_find(emu, name);
    for (size_t i = 0; b != NULL && i < n && rc == BM_OK; i++) {
        const char *q = arn_queue(confs[i].queue_arn);
        if (q == NULL || bm__emu_queue_find(emu, q) == NULL)
            rc = bm__emu_fail(rq, "InvalidArgument",
                              "Unable to validate the following destination configurations");
    }
    if (b == NULL)
        rc = bm__emu_s3_no_bucket(rq, name);
    if (rc == BM_OK) {
        qconfs_free(b->qconf, b->n_qconf);
        b->qconf = confs;
        b->n_qconf = n;
        confs = NULL;
        bm__emu_dirty(emu);
        /* S3 sends one s3:TestEvent to each destination once the configuration is stored. */
        char when[25];
        bm__emu_iso_ms(rq->now_ms, when);
        for (size_t i = 0; i < n && rc == BM_OK; i++) {
            bool dup = false;
            for (size_t j = 0; j < i; j++)
                dup = dup || strcmp(b->qconf[j].queue_arn, b->qconf[i].queue_arn) == 0;
            if (dup)
                continue;
            struct bm_buf ev;
            bm_buf_init(&ev, 4096);
            rc = bm_buf_appendf(&ev,
                                "{\"Service\":\"Amazon S3\",\"Event\":\"s3:TestEvent\","
                                "\"Time\":\"%s\",\"Bucket\":",
                                when);
            if (rc == BM_OK)
                rc = bm_buf_append_json_str(&ev, name, strlen(name));
            if (rc == BM_OK)
                rc = bm_buf_appendf(&ev, ",\"RequestId\":\"%s\",\"HostId\":\"%s\"}", rq->req_id,
                                    rq->req_id);
            if (rc == BM_OK)
                rc = bm__emu_queue_push(emu,
                                        bm__emu_queue_find(emu, arn_queue(b->qconf[i].queue_arn)),
                                        ev.data, ev.len, rq->now_ms);
            bm_buf_cleanup(&ev);
        }
    }
    pthread_mutex_unlock(&emu->mu);
done:
    qconfs_free(confs, n);
    bm__emu_xml_free(root);
    return rc;
}

bm_err bm__emu_s3_get_notification(struct emu_req *rq, struct emu_resp *rs, const char *name)
{
    struct bm_emu *emu = rq->emu;
    struct bm_buf *b = &rs->body;
    bm_err rc = BM_OK;
    rs->content_type = "application/xml";
    pthread_mutex_lock(&emu->mu);
    struct emu_bucket *bk = bm__emu_bucket_find(emu, name);
    if (bk == NULL) {
        rc = bm__emu_s3_no_bucket(rq, name);
        goto unlock;
    }
    rc = bm_buf_appendf(b, EMU_S3_XML_DECL "<NotificationConfiguration xmlns=\"%s\">", EMU_S3_NS);
    for (size_t i = 0; i < bk->n_qconf && rc == BM_OK; i++) {
        const struct emu_qconf *c = &bk->qconf[i];
        if ((rc = bm_buf_append_str(b, "<QueueConfiguration>")) != BM_OK ||
            (rc = bm__emu_xml_elem(b, "Id", c->id, strlen(c->id))) != BM_OK ||
            (rc = bm__emu_xml_elem(b, "Queue", c->queue_arn, strlen(c->queue_arn))) != BM_OK)
            break;
        for (size_t j = 0; j < c->n_events && rc == BM_OK; j++)
            rc = bm__emu_xml_elem(b, "Event", c->events[j], strlen(c->events[j]));
        if (rc == BM_OK && (c->prefix || c->suffix)) {
            rc = bm_buf_append_str(b, "<Filter><S3Key>");
            if (rc == BM_OK && c->prefix) {
                rc = bm_buf_append_str(b, "<FilterRule><Name>Prefix</Name>");
                if (rc == BM_OK)
                    rc = bm__emu_xml_elem(b, "Value", c->prefix, strlen(c->prefix));
                if (rc == BM_OK)
                    rc = bm_buf_append_str(b, "</FilterRule>");
            }
            if (rc == BM_OK && c->suffix) {
                rc = bm_buf_append_str(b, "<FilterRule><Name>Suffix</Name>");
                if (rc == BM_OK)
                    rc = bm__emu_xml_elem(b, "Value", c->suffix, strlen(c->suffix));
                if (rc == BM_OK)
                    rc = bm_buf_append_str(b, "</FilterRule>");
            }
            if (rc == BM_OK)
                rc = bm_buf_append_str(b, "</S3Key></Filter>");
        }
        if (rc == BM_OK)
            rc = bm_buf_append_str(b, "</QueueConfiguration>");
    }
    if (rc == BM_OK)
        rc = bm_buf_append_str(b, "</NotificationConfiguration>");
unlock:
    pthread_mutex_unlock(&emu->mu);
    return rc;
}

/* HeadBucket and GetBucketLocation: the bucket exists, nothing else to say. */
