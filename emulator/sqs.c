/* sqs.c: the SQS API (Query 2012-11-05 and JSON 1.0 AmazonSQS.*): queue operations and
 * attributes, RedrivePolicy, and dispatch. Message operations live in sqs_msg.c. LocalStack's
 * queue URL shape: http://HOST/<account>/<name>. */
#include "emulator/emu_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const ops[] = {
    "CreateQueue",        "GetQueueUrl",
    "GetQueueAttributes", "SetQueueAttributes",
    "SendMessage",        "SendMessageBatch",
    "ReceiveMessage",     "DeleteMessage",
    "DeleteMessageBatch", "ChangeMessageVisibility",
    "ListQueues",         "DeleteQueue",
    "PurgeQueue",
};

const char *bm__emu_sqs_op(const char *action)
{
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        if (strcmp(ops[i], action) == 0)
            return ops[i];
    }
    return NULL;
}

void bm__emu_msg_free(struct emu_msg *m)
{
    if (m == NULL)
        return;
    bm_free(m->body);
    bm_free(m->attrs_json);
    bm_free(m);
}

void bm__emu_queue_free(struct emu_queue *q)
{
    if (q == NULL)
        return;
    for (struct emu_msg *m = q->head, *next; m != NULL; m = next) {
        next = m->next;
        bm__emu_msg_free(m);
    }
    bm_free(q->name);
    bm_free(q->redrive);
    bm_free(q->dlq_name);
    bm_free(q);
}

struct emu_queue *bm__emu_queue_find(struct bm_emu *emu, const char *name)
{
    for (size_t i = 0; name != NULL && i < emu->n_queues; i++) {
        if (strcmp(emu->queues[i]->name, name) == 0)
            return emu->queues[i];
    }
    return NULL;
}

void bm__emu_queue_append(struct emu_queue *q, struct emu_msg *m)
{
    m->next = NULL;
    if (q->tail)
        q->tail->next = m;
    else
        q->head = m;
    q->tail = m;
    q->n_msgs++;
}

bm_err bm__emu_queue_push(struct bm_emu *emu, struct emu_queue *q, const char *body, size_t len,
                          int64_t now_ms)
{
    struct emu_msg *m = bm_calloc(1, sizeof *m);
    if (m == NULL || (m->body = bm_strndup(body, len)) == NULL) {
        bm__emu_msg_free(m);
        return BM_E_NOMEM;
    }
    m->body_len = len;
    bm_err rc = bm_md5_hex(body, len, m->md5);
    if (rc != BM_OK) {
        bm__emu_msg_free(m);
        return rc;
    }
    bm__emu_uuid(emu, m->id);
    m->sent_ms = now_ms;
    m->visible_ms = now_ms + q->delay_s * 1000;
    bm__emu_queue_append(q, m);
    bm__emu_dirty(emu);
    pthread_cond_broadcast(&emu->cv);
    return BM_OK;
}

/* The queue name from ".../<account>/<name>", or NULL. */
static const char *url_queue_name(const char *url)
{
    const char *slash = strrchr(url, '/');
    return slash && slash[1] ? slash + 1 : NULL;
}

bm_err bm__emu_sqs_queue(struct emu_req *rq, struct emu_queue **out)
{
    const char *url = bm__emu_in_str(rq->in, "QueueUrl");
    const char *name = url ? url_queue_name(url) : NULL;
    if (url == NULL && rq->path_len > 1)
        name = url_queue_name(rq->path);
    if (url == NULL && name == NULL)
        return bm__emu_fail(rq, "MissingParameter",
                            "The request must contain the parameter QueueUrl.");
    struct emu_queue *q = bm__emu_queue_find(rq->emu, name);
    if (q == NULL)
        return bm__emu_fail(rq, "QueueDoesNotExist", "The specified queue does not exist.");
    *out = q;
    return BM_OK;
}

static bool valid_queue_name(const char *n)
{
    size_t len = strlen(n);
    if (len < 1 || len > 80)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = n[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

/* ---- attributes ----------------------------------------------------------------------- */
struct attr_def {
    const char *name;
    long min, max;
    size_t off; /* offset of the long in struct emu_queue; 0 for non-numeric ones */
};
#define QOFF(f) offsetof(struct emu_queue, f)
static const struct attr_def num_attrs[] = {
    {"DelaySeconds", 0, 900, QOFF(delay_s)},
    {"MaximumMessageSize", 1024, 1048576, QOFF(max_size)},
    {"MessageRetentionPeriod", 60, 1209600, QOFF(retention_s)},
    {"ReceiveMessageWaitTimeSeconds", 0, 20, QOFF(wait_s)},
    {"VisibilityTimeout", 0, 43200, QOFF(visibility_s)},
};
/* Accepted and ignored (no encryption or policies are emulated). */
static const char *const ignored_attrs[] = {"Policy", "KmsMasterKeyId",
                                            "KmsDataKeyReusePeriodSeconds", "SqsManagedSseEnabled",
                                            "RedriveAllowPolicy"};

static bm_err invalid_value(struct emu_req *rq, const char *name)
{
    return bm__emu_fail(rq, "InvalidAttributeValue", "Invalid value for the parameter %s.", name);
}

/* Parses {"deadLetterTargetArn":"arn:aws:sqs:...:dlq","maxReceiveCount":"3"}; maxReceiveCount
 * may be a number or a string. */
static bm_err set_redrive(struct emu_req *rq, struct emu_queue *q, const char *v)
{
    if (*v == '\0') {
        BM_FREE(q->redrive);
        BM_FREE(q->dlq_name);
        q->max_receive = 0;
        return BM_OK;
    }
    cJSON *j = cJSON_Parse(v);
    const char *arn = bm__emu_in_str(j, "deadLetterTargetArn");
    double mrc = 0;
    bool present = false;
    bm_err rc = BM_OK;
    if (!cJSON_IsObject(j) || arn == NULL || strncmp(arn, "arn:aws:sqs:", 12) != 0 ||
        !bm__emu_in_num(j, "maxReceiveCount", &mrc, &present) || !present || mrc < 1 ||
        mrc > 1000 || mrc != (double)(long)mrc) {
        rc = bm__emu_fail(rq, "InvalidParameterValue",
                          "Value %s for parameter RedrivePolicy is invalid. Reason: Redrive "
                          "policy is not a valid JSON map of deadLetterTargetArn and "
                          "maxReceiveCount.",
                          v);
    } else if (bm__emu_queue_find(rq->emu, strrchr(arn, ':') + 1) == NULL) {
        rc = bm__emu_fail(rq, "InvalidParameterValue",
                          "Value %s for parameter RedrivePolicy is invalid. Reason: Dead letter "
                          "target does not exist.",
                          v);
    } else {
        char *copy = bm_strdup(v), *dlq = bm_strdup(strrchr(arn, ':') + 1);
        if (copy == NULL || dlq == NULL) {
            bm_free(copy);
            bm_free(dlq);
            rc = BM_E_NOMEM;
        } else {
            bm_free(q->redrive);
            bm_free(q->dlq_name);
            q->redrive = copy;
            q->dlq_name = dlq;
            q->max_receive = (long)mrc;
        }
    }
    cJSON_Delete(j);
    return rc;
}

/* Applies an Attributes map to q; all-or-nothing is not needed (validation comes first). */
static bm_err set_attrs(struct emu_req *rq, struct emu_queue *q, const cJSON *attrs, bool apply)
{
    const cJSON *a;
    cJSON_ArrayForEach(a, attrs)
    {
        const char *name = a->string;
        const char *v = cJSON_IsString(a) ? a->valuestring : NULL;
        bool done = false;
        if (v == NULL)
            return invalid_value(rq, name);
        for (size_t i = 0; i < sizeof num_attrs / sizeof num_attrs[0] && !done; i++) {
            if (strcmp(num_attrs[i].name, name) != 0)
                continue;
            char *end = NULL;
            long n = strtol(v, &end, 10);
            if (end == v || *end != '\0' || n < num_attrs[i].min || n > num_attrs[i].max)
                return invalid_value(rq, name);
            if (apply)
                *(long *)(void *)((char *)q + num_attrs[i].off) = n;
            done = true;
        }
        if (!done && strcmp(name, "RedrivePolicy") == 0) {
            struct emu_queue scratch = {0};
            bm_err rc = set_redrive(rq, apply ? q : &scratch, v);
            bm_free(scratch.redrive);
            bm_free(scratch.dlq_name);
            if (rc != BM_OK)
                return rc;
            done = true;
        }
        if (!done &&
            (strcmp(name, "FifoQueue") == 0 || strcmp(name, "ContentBasedDeduplication") == 0)) {
            if (strcmp(v, "false") != 0)
                return bm__emu_fail(rq, "InvalidAttributeName",
                                    "bmas-emulator does not emulate FIFO queues (%s).", name);
            done = true;
        }
        for (size_t i = 0; i < sizeof ignored_attrs / sizeof ignored_attrs[0] && !done; i++)
            done = strcmp(ignored_attrs[i], name) == 0;
        if (!done)
            return bm__emu_fail(rq, "InvalidAttributeName", "Unknown Attribute %s.", name);
    }
    if (apply)
        q->modified_s = rq->now_ms / 1000;
    return BM_OK;
}

static void queue_url(const struct emu_req *rq, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "http://%s/%s/%s", rq->host, EMU_ACCOUNT, name);
}

static bool same_attrs(const struct emu_queue *a, const struct emu_queue *b)
{
    return a->delay_s == b->delay_s && a->max_size == b->max_size &&
           a->retention_s == b->retention_s && a->wait_s == b->wait_s &&
           a->visibility_s == b->visibility_s &&
           ((a->redrive == NULL && b->redrive == NULL) ||
            (a->redrive && b->redrive && strcmp(a->redrive, b->redrive) == 0));
}

static bm_err create_queue(struct emu_req *rq, struct emu_w *w)
{
    struct bm_emu *emu = rq->emu;
    const char *name = bm__emu_in_str(rq->in, "QueueName");
    if (name == NULL)
        return bm__emu_fail(rq, "MissingParameter",
                            "The request must contain the parameter QueueName.");
    if (!valid_queue_name(name))
        return bm__emu_fail(rq, "InvalidParameterValue",
                            "Can only include alphanumeric characters, hyphens, or underscores. "
                            "1 to 80 in length");
    struct emu_queue *q = bm_calloc(1, sizeof *q);
    if (q == NULL || (q->name = bm_strdup(name)) == NULL) {
        bm__emu_queue_free(q);
        return BM_E_NOMEM;
    }
    q->visibility_s = 30;
    q->retention_s = 345600;
    q->max_size = 262144;
    q->created_s = q->modified_s = rq->now_ms / 1000;
    const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(rq->in, "Attributes");
    bm_err rc = set_attrs(rq, q, attrs, true);
    struct emu_queue *old = rc == BM_OK ? bm__emu_queue_find(emu, name) : NULL;
    if (old != NULL && !same_attrs(old, q))
        rc = bm__emu_fail(rq, "QueueNameExists",
                          "A queue already exists with the same name and a different value for "
                          "attribute(s) %s",
                          "VisibilityTimeout, DelaySeconds, RedrivePolicy ...");
    if (rc == BM_OK && old == NULL) {
        rc = bm__emu_grow(&emu->queues, &emu->cap_queues, emu->n_queues + 1, sizeof *emu->queues);
        if (rc == BM_OK) {
            emu->queues[emu->n_queues++] = q;
            q = NULL;
            bm__emu_dirty(emu);
        }
    }
    bm__emu_queue_free(q);
    if (rc == BM_OK) {
        char url[512];
        queue_url(rq, name, url, sizeof url);
        bm__emu_w_str(w, "QueueUrl", url);
    }
    return rc;
}

static bm_err get_queue_url(struct emu_req *rq, struct emu_w *w)
{
    const char *name = bm__emu_in_str(rq->in, "QueueName");
    if (name == NULL)
        return bm__emu_fail(rq, "MissingParameter",
                            "The request must contain the parameter QueueName.");
    if (bm__emu_queue_find(rq->emu, name) == NULL)
        return bm__emu_fail(rq, "QueueDoesNotExist", "The specified queue does not exist.");
    char url[512];
    queue_url(rq, name, url, sizeof url);
    bm__emu_w_str(w, "QueueUrl", url);
    return BM_OK;
}

static bool wants(const cJSON *names, const char *name)
{
    const cJSON *n;
    cJSON_ArrayForEach(n, names)
    {
        if (cJSON_IsString(n) &&
            (strcmp(n->valuestring, "All") == 0 || strcmp(n->valuestring, name) == 0))
            return true;
    }
    return false;
}

static bm_err get_queue_attrs(struct emu_req *rq, struct emu_w *w)
{
    struct emu_queue *q;
    bm_err rc = bm__emu_sqs_queue(rq, &q);
    if (rc != BM_OK)
        return rc;
    static const char *const readable[] = {"ApproximateNumberOfMessages",
                                           "ApproximateNumberOfMessagesNotVisible",
                                           "ApproximateNumberOfMessagesDelayed",
                                           "CreatedTimestamp",
                                           "LastModifiedTimestamp",
                                           "QueueArn",
                                           "RedrivePolicy",
                                           "DelaySeconds",
                                           "MaximumMessageSize",
                                           "MessageRetentionPeriod",
                                           "ReceiveMessageWaitTimeSeconds",
                                           "VisibilityTimeout"};
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(rq->in, "AttributeNames");
    const cJSON *n;
    cJSON_ArrayForEach(n, names)
    {
        bool ok = cJSON_IsString(n) && strcmp(n->valuestring, "All") == 0;
        for (size_t i = 0; cJSON_IsString(n) && i < sizeof readable / sizeof readable[0]; i++)
            ok = ok || strcmp(n->valuestring, readable[i]) == 0;
        for (size_t i = 0; cJSON_IsString(n) && i < sizeof ignored_attrs / sizeof ignored_attrs[0];
             i++)
            ok = ok || strcmp(n->valuestring, ignored_attrs[i]) == 0;
        if (!ok)
            return bm__emu_fail(rq, "InvalidAttributeName", "Unknown Attribute %s.",
                                cJSON_IsString(n) ? n->valuestring : "(not a string)");
    }
    long visible = 0, inflight = 0, delayed = 0;
    for (const struct emu_msg *m = q->head; m != NULL; m = m->next) {
        if (m->visible_ms <= rq->now_ms)
            visible++;
        else if (m->recv_count > 0)
            inflight++;
        else
            delayed++;
    }
    char v[64];
    bm__emu_w_map(w, "Attributes", "Attribute");
    const struct {
        const char *name;
        long long value;
    } nums[] = {{"ApproximateNumberOfMessages", visible},
                {"ApproximateNumberOfMessagesNotVisible", inflight},
                {"ApproximateNumberOfMessagesDelayed", delayed},
                {"CreatedTimestamp", q->created_s},
                {"LastModifiedTimestamp", q->modified_s},
                {"DelaySeconds", q->delay_s},
                {"MaximumMessageSize", q->max_size},
                {"MessageRetentionPeriod", q->retention_s},
                {"ReceiveMessageWaitTimeSeconds", q->wait_s},
                {"VisibilityTimeout", q->visibility_s}};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        if (!wants(names, nums[i].name))
            continue;
        snprintf(v, sizeof v, "%lld", nums[i].value);
        bm__emu_w_map_str(w, nums[i].name, v);
    }
    if (wants(names, "QueueArn")) {
        char arn[256];
        snprintf(arn, sizeof arn, "arn:aws:sqs:%s:%s:%s", rq->emu->region, EMU_ACCOUNT, q->name);
        bm__emu_w_map_str(w, "QueueArn", arn);
    }
    if (q->redrive != NULL && wants(names, "RedrivePolicy"))
        bm__emu_w_map_str(w, "RedrivePolicy", q->redrive);
    bm__emu_w_end(w);
    return BM_OK;
}

static bm_err set_queue_attrs(struct emu_req *rq, struct emu_w *w)
{
    (void)w;
    struct emu_queue *q;
    bm_err rc = bm__emu_sqs_queue(rq, &q);
    const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(rq->in, "Attributes");
    /* Validate everything first so that a bad attribute changes nothing. */
    if (rc == BM_OK && (rc = set_attrs(rq, q, attrs, false)) == BM_OK &&
        (rc = set_attrs(rq, q, attrs, true)) == BM_OK)
        bm__emu_dirty(rq->emu);
    return rc;
}

static bm_err list_queues(struct emu_req *rq, struct emu_w *w)
{
    const char *prefix = bm__emu_in_str(rq->in, "QueueNamePrefix");
    size_t plen = prefix ? strlen(prefix) : 0;
    bool any = false;
    for (size_t i = 0; i < rq->emu->n_queues; i++) {
        const char *name = rq->emu->queues[i]->name;
        if (plen > 0 && strncmp(name, prefix, plen) != 0)
            continue;
        if (!any)
            bm__emu_w_list(w, "QueueUrls", NULL, "QueueUrl");
        any = true;
        char url[512];
        queue_url(rq, name, url, sizeof url);
        bm__emu_w_str(w, NULL, url);
    }
    if (any)
        bm__emu_w_end(w);
    return BM_OK;
}

static bm_err delete_queue(struct emu_req *rq, struct emu_w *w)
{
    (void)w;
    struct bm_emu *emu = rq->emu;
    struct emu_queue *q;
    bm_err rc = bm__emu_sqs_queue(rq, &q);
    if (rc != BM_OK)
        return rc;
    for (size_t i = 0; i < emu->n_queues; i++) {
        if (emu->queues[i] == q) {
            memmove(&emu->queues[i], &emu->queues[i + 1],
                    (emu->n_queues - i - 1) * sizeof *emu->queues);
            emu->n_queues--;
            break;
        }
    }
    bm__emu_queue_free(q);
    bm__emu_dirty(emu);
    pthread_cond_broadcast(&emu->cv); /* long polls on it end */
    return BM_OK;
}

static bm_err purge_queue(struct emu_req *rq, struct emu_w *w)
{
    (void)w;
    struct emu_queue *q;
    bm_err rc = bm__emu_sqs_queue(rq, &q);
    if (rc != BM_OK)
        return rc;
    for (struct emu_msg *m = q->head, *next; m != NULL; m = next) {
        next = m->next;
        bm__emu_msg_free(m);
    }
    q->head = q->tail = NULL;
    q->n_msgs = 0;
    bm__emu_dirty(rq->emu);
    return BM_OK;
}

/* Query flattens maps and lists ("Attribute.1.Name"); rename them to the JSON shape. */
static bm_err rename_list(cJSON *o, const char *from, const char *to)
{
    cJSON *v = cJSON_DetachItemFromObjectCaseSensitive(o, from);
    if (v == NULL)
        return BM_OK;
    cJSON_DeleteItemFromObjectCaseSensitive(o, to);
    cJSON_AddItemToObject(o, to, v);
    return BM_OK;
}

/* [{"Name":n,"Value":v}] -> {n: v}. */
static bm_err pairs_to_map(cJSON *o, const char *from, const char *to)
{
    cJSON *list = cJSON_DetachItemFromObjectCaseSensitive(o, from);
    if (list == NULL)
        return BM_OK;
    cJSON *map = cJSON_CreateObject();
    cJSON *e;
    bm_err rc = map ? BM_OK : BM_E_NOMEM;
    cJSON_ArrayForEach(e, list)
    {
        const char *name = bm__emu_in_str(e, "Name");
        cJSON *val = cJSON_DetachItemFromObjectCaseSensitive(e, "Value");
        if (name == NULL || val == NULL) {
            cJSON_Delete(val);
            rc = BM_E_BAD_REQUEST;
            break;
        }
        cJSON_DeleteItemFromObjectCaseSensitive(map, name);
        cJSON_AddItemToObject(map, name, val);
    }
    cJSON_Delete(list);
    if (rc == BM_OK)
        cJSON_AddItemToObject(o, to, map);
    else
        cJSON_Delete(map);
    return rc;
}

static bm_err query_shape(cJSON *o)
{
    bm_err rc;
    if ((rc = pairs_to_map(o, "Attribute", "Attributes")) != BM_OK ||
        (rc = pairs_to_map(o, "MessageAttribute", "MessageAttributes")) != BM_OK ||
        (rc = rename_list(o, "AttributeName", "AttributeNames")) != BM_OK ||
        (rc = rename_list(o, "MessageAttributeName", "MessageAttributeNames")) != BM_OK ||
        (rc = rename_list(o, "MessageSystemAttributeName", "MessageSystemAttributeNames")) !=
            BM_OK ||
        (rc = rename_list(o, "SendMessageBatchRequestEntry", "Entries")) != BM_OK ||
        (rc = rename_list(o, "DeleteMessageBatchRequestEntry", "Entries")) != BM_OK)
        return rc;
    cJSON *entries = cJSON_GetObjectItemCaseSensitive(o, "Entries");
    cJSON *e;
    cJSON_ArrayForEach(e, entries)
    {
        if (cJSON_IsObject(e) && (rc = query_shape(e)) != BM_OK)
            return rc;
    }
    return BM_OK;
}

bm_err bm__emu_sqs_handle(struct emu_req *rq, struct emu_resp *rs)
{
    static const struct {
        const char *op;
        bm_err (*fn)(struct emu_req *, struct emu_w *);
    } table[] = {
        {"CreateQueue", create_queue},
        {"GetQueueUrl", get_queue_url},
        {"GetQueueAttributes", get_queue_attrs},
        {"SetQueueAttributes", set_queue_attrs},
        {"SendMessage", bm__emu_sqs_send},
        {"SendMessageBatch", bm__emu_sqs_send_batch},
        {"ReceiveMessage", bm__emu_sqs_receive},
        {"DeleteMessage", bm__emu_sqs_delete},
        {"DeleteMessageBatch", bm__emu_sqs_delete_batch},
        {"ChangeMessageVisibility", bm__emu_sqs_change_visibility},
        {"ListQueues", list_queues},
        {"DeleteQueue", delete_queue},
        {"PurgeQueue", purge_queue},
    };
    if (rq->proto == EMU_PROTO_QUERY) {
        bm_err rc = query_shape(rq->in);
        if (rc == BM_E_BAD_REQUEST)
            return bm__emu_fail(rq, "InvalidParameterValue",
                                "An attribute list has an entry without Name or Value.");
        if (rc != BM_OK)
            return rc;
    }
    struct emu_w w;
    bm__emu_w_begin(&w, rq->proto, EMU_SQS_NS, rq->op, &rs->body);
    w.no_result = strcmp(rq->op, "DeleteMessage") == 0 ||
                  strcmp(rq->op, "ChangeMessageVisibility") == 0 ||
                  strcmp(rq->op, "SetQueueAttributes") == 0 || strcmp(rq->op, "DeleteQueue") == 0 ||
                  strcmp(rq->op, "PurgeQueue") == 0;
    bm_err rc = BM_E_INTERNAL;
    pthread_mutex_lock(&rq->emu->mu);
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(table[i].op, rq->op) == 0) {
            rc = table[i].fn(rq, &w);
            break;
        }
    }
    pthread_mutex_unlock(&rq->emu->mu);
    if (rc != BM_OK)
        return rc;
    rs->content_type = rq->proto == EMU_PROTO_JSON ? "application/x-amz-json-1.0" : "text/xml";
    return bm__emu_w_finish(&w, rq->req_id);
}
