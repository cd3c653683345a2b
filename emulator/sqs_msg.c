/* sqs_msg.c: SQS message operations: send (with MessageAttributes and their MD5), long-polling
 * receive with visibility timeouts and DLQ redrive, delete and visibility changes by receipt
 * handle, and the batch forms. Every function runs with mu held (sqs.c's dispatch). */
#include "emulator/emu_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- MessageAttributes ---------------------------------------------------------------- */
static int name_cmp(const void *a, const void *b)
{
    return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

static bm_err put_field(struct bm_buf *b, const void *p, size_t len)
{
    unsigned char be[4] = {(unsigned char)(len >> 24), (unsigned char)(len >> 16),
                           (unsigned char)(len >> 8), (unsigned char)len};
    bm_err rc = bm_buf_append(b, be, 4);
    return rc == BM_OK ? bm_buf_append(b, p, len) : rc;
}

bm_err bm__emu_sqs_attrs_md5(const cJSON *attrs, char out[BM_MD5_HEX_LEN + 1])
{
    /* https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/
     * sqs-message-metadata.html#sqs-attributes-md5-message-digest-calculation */
    size_t n = (size_t)cJSON_GetArraySize(attrs);
    const cJSON **sorted = bm_calloc(n ? n : 1, sizeof *sorted);
    struct bm_buf b, bin;
    bm_err rc = sorted ? BM_OK : BM_E_NOMEM;
    bm_buf_init(&b, 4 * 1024 * 1024);
    bm_buf_init(&bin, 1024 * 1024);
    size_t i = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, attrs)
    {
        if (rc == BM_OK)
            sorted[i++] = a;
    }
    if (rc == BM_OK && n > 1)
        qsort(sorted, n, sizeof *sorted, name_cmp);
    for (i = 0; i < n && rc == BM_OK; i++) {
        const char *type = bm__emu_in_str(sorted[i], "DataType");
        const char *sv = bm__emu_in_str(sorted[i], "StringValue");
        const char *bv = bm__emu_in_str(sorted[i], "BinaryValue");
        bool binary = type != NULL && strncmp(type, "Binary", 6) == 0;
        if (type == NULL || (binary ? bv == NULL : sv == NULL)) {
            rc = BM_E_BAD_REQUEST;
            break;
        }
        bm_buf_reset(&bin);
        if (binary && (rc = bm_base64_decode(bv, strlen(bv), &bin)) != BM_OK)
            break;
        unsigned char transport = binary ? 2 : 1;
        if ((rc = put_field(&b, sorted[i]->string, strlen(sorted[i]->string))) != BM_OK ||
            (rc = put_field(&b, type, strlen(type))) != BM_OK ||
            (rc = bm_buf_append(&b, &transport, 1)) != BM_OK)
            break;
        rc = binary ? put_field(&b, bin.data ? bin.data : "", bin.len)
                    : put_field(&b, sv, strlen(sv));
    }
    if (rc == BM_OK)
        rc = bm_md5_hex(b.data ? b.data : "", b.len, out);
    bm_free(sorted);
    bm_buf_cleanup(&b);
    bm_buf_cleanup(&bin);
    return rc;
}

/* Valid message characters: #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF (UTF-8). */
static bool valid_body(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        unsigned char c = p[i];
        uint32_t cp;
        size_t n;
        if (c < 0x80) {
            cp = c;
            n = 1;
        } else if (c >= 0xC2 && c <= 0xDF) {
            cp = c & 0x1F;
            n = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            cp = c & 0x0F;
            n = 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            cp = c & 0x07;
            n = 4;
        } else {
            return false;
        }
        if (i + n > len)
            return false;
        for (size_t k = 1; k < n; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + k] & 0x3F);
        }
        bool ok = cp == 0x9 || cp == 0xA || cp == 0xD || (cp >= 0x20 && cp <= 0xD7FF) ||
                  (cp >= 0xE000 && cp <= 0xFFFD) || (cp >= 0x10000 && cp <= 0x10FFFF);
        if (!ok || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000))
            return false;
        i += n;
    }
    return true;
}

/* ---- send ----------------------------------------------------------------------------- */
/* Validates and enqueues one message described by entry (SendMessage input or a batch entry);
 * on success *out is the new message (owned by the queue). */
static bm_err send_one(struct emu_req *rq, struct emu_queue *q, const cJSON *entry,
                       struct emu_msg **out)
{
    const char *body = bm__emu_in_str(entry, "MessageBody");
    if (body == NULL || *body == '\0')
        return bm__emu_fail(rq, "MissingParameter",
                            "The request must contain the parameter MessageBody.");
    size_t len = strlen(body);
    if ((long)len > q->max_size)
        return bm__emu_fail(rq, "InvalidParameterValue",
                            "One or more parameters are invalid. Reason: Message must be shorter "
                            "than %ld bytes.",
                            q->max_size);
    if (!valid_body(body, len))
        return bm__emu_fail(rq, "InvalidMessageContents",
                            "Invalid characters found. Valid unicode characters are #x9 | #xA | "
                            "#xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF");
    long delay = q->delay_s;
    bm_err rc = bm__emu_in_long(rq, entry, "DelaySeconds", 0, 900, &delay);
    if (rc != BM_OK)
        return rc;
    const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(entry, "MessageAttributes");
    char md5[BM_MD5_HEX_LEN + 1] = "";
    char *attrs_json = NULL;
    if (cJSON_GetArraySize(attrs) > 10)
        return bm__emu_fail(rq, "InvalidParameterValue",
                            "Number of message attributes [%d] exceeds the allowed maximum [10].",
                            cJSON_GetArraySize(attrs));
    if (cJSON_GetArraySize(attrs) > 0) {
        rc = bm__emu_sqs_attrs_md5(attrs, md5);
        if (rc == BM_E_BAD_REQUEST)
            return bm__emu_fail(rq, "InvalidParameterValue",
                                "The message attribute has no DataType or value, or a bad "
                                "BinaryValue.");
        if (rc != BM_OK)
            return rc;
        if ((attrs_json = cJSON_PrintUnformatted(attrs)) == NULL)
            return BM_E_NOMEM;
    }
    if ((rc = bm__emu_queue_push(rq->emu, q, body, len, rq->now_ms)) != BM_OK) {
        cJSON_free(attrs_json);
        return rc;
    }
    struct emu_msg *m = q->tail;
    m->visible_ms = rq->now_ms + delay * 1000;
    if (attrs_json != NULL) {
        m->attrs_json = bm_strdup(attrs_json);
        cJSON_free(attrs_json);
        if (m->attrs_json == NULL)
            return BM_E_NOMEM;
        memcpy(m->attrs_md5, md5, sizeof md5);
    }
    *out = m;
    return BM_OK;
}

bm_err bm__emu_sqs_send(struct emu_req *rq, struct emu_w *w)
{
    struct emu_queue *q;
    struct emu_msg *m;
    bm_err rc = bm__emu_sqs_queue(rq, &q);
    if (rc == BM_OK)
        rc = send_one(rq, q, rq->in, &m);
    if (rc != BM_OK)
        return rc;
    bm__emu_w_str(w, "MD5OfMessageBody", m->md5);
    if (m->attrs_json != NULL)
        bm__emu_w_str(w, "MD5OfMessageAttributes", m->attrs_md5);
    bm__emu_w_str(w, "MessageId", m->id);
    return BM_OK;
}

/* Checks a batch's Entries: 1..10, ids distinct, [A-Za-z0-9_-]{1,80}. */
static bm_err check_batch(struct emu_req *rq, const cJSON *entries)
{
    int n = cJSON_GetArraySize(entries);
    if (n == 0)
        return bm__emu_fail(rq, "EmptyBatchRequest",
                            "There should be at least one SendMessageBatchRequestEntry in the "
                            "request.");
    if (n > 10)
        return bm__emu_fail(rq, "TooManyEntriesInBatchRequest",
                            "Maximum number of entries per request are 10. You have sent %d.", n);
    for (int i = 0; i < n; i++) {
        const char *id = bm__emu_in_str(cJSON_GetArrayItem(entries, i), "Id");
        size_t len = id ? strlen(id) : 0;
        bool ok = len >= 1 && len <= 80;
        for (size_t k = 0; ok && k < len; k++) {
            char c = id[k];
            ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_';
        }
        if (!ok)
            return bm__emu_fail(rq, "InvalidBatchEntryId",
                                "A batch entry id can only contain alphanumeric characters, "
                                "hyphens and underscores. It can be at most 80 letters long.");
        for (int j = 0; j < i; j++) {
            if (strcmp(id, bm__emu_in_str(cJSON_GetArrayItem(entries, j), "Id")) == 0)
                return bm__emu_fail(rq, "BatchEntryIdsNotDistinct", "Id %s repeated.", id);
        }
    }
    return BM_OK;
}

/* Writes the Failed list of a batch from the entries whose error was recorded in errs. */
static void write_failed(struct emu_w *w, const cJSON *entries, const struct emu_awserr *errs)
{
    bool any = false;
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, entries)
    {
        const struct emu_awserr *err = &errs[i++];
        if (err->status == 0)
            continue;
        if (!any)
            bm__emu_w_list(w, "Failed", NULL, "BatchResultErrorEntry");
        any = true;
        bm__emu_w_obj(w, NULL);
        bm__emu_w_str(w, "Id", bm__emu_in_str(e, "Id"));
        bm__emu_w_str(w, "SenderFault", "true");
        bm__emu_w_str(w, "Code", err->code);
        bm__emu_w_str(w, "Message", err->message);
        bm__emu_w_end(w);
    }
    if (!any && w->proto == EMU_PROTO_JSON)
        bm__emu_w_list(w, "Failed", NULL, NULL); /* JSON always has the (empty) list */
    if (any || w->proto == EMU_PROTO_JSON)
        bm__emu_w_end(w);
}

/* ---- receive -------------------------------------------------------------------------- */
static void unlink_msg(struct emu_queue *q, struct emu_msg *prev, struct emu_msg *m)
{
    if (prev)
        prev->next = m->next;
    else
        q->head = m->next;
    if (q->tail == m)
        q->tail = prev;
    m->next = NULL;
    q->n_msgs--;
}

static bool name_wanted(const cJSON *names, const char *name)
{
    const cJSON *n;
    cJSON_ArrayForEach(n, names)
    {
        if (!cJSON_IsString(n))
            continue;
        const char *v = n->valuestring;
        size_t len = strlen(v);
        /* "All", ".*", an exact name, or a "prefix.*" pattern. */
        if (strcmp(v, "All") == 0 || strcmp(v, ".*") == 0 || strcmp(v, name) == 0 ||
            (len > 2 && strcmp(v + len - 2, ".*") == 0 && strncmp(name, v, len - 1) == 0))
            return true;
    }
    return false;
}

static void write_message(struct emu_req *rq, struct emu_w *w, const struct emu_msg *m)
{
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(rq->in, "AttributeNames");
    const cJSON *sys = cJSON_GetObjectItemCaseSensitive(rq->in, "MessageSystemAttributeNames");
    const cJSON *mnames = cJSON_GetObjectItemCaseSensitive(rq->in, "MessageAttributeNames");
    char v[32];
    bm__emu_w_obj(w, NULL);
    bm__emu_w_str(w, "MessageId", m->id);
    bm__emu_w_str(w, "ReceiptHandle", m->receipt);
    bm__emu_w_str(w, "MD5OfBody", m->md5);
    bm__emu_w_strn(w, "Body", m->body, m->body_len);
    const struct {
        const char *name;
        long long value;
    } attrs[] = {{"SenderId", -1},
                 {"SentTimestamp", m->sent_ms},
                 {"ApproximateReceiveCount", m->recv_count},
                 {"ApproximateFirstReceiveTimestamp", m->first_recv_ms}};
    bool open = false;
    for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++) {
        if (!name_wanted(names, attrs[i].name) && !name_wanted(sys, attrs[i].name))
            continue;
        if (!open)
            bm__emu_w_map(w, "Attributes", "Attribute");
        open = true;
        snprintf(v, sizeof v, "%lld", attrs[i].value);
        bm__emu_w_map_str(w, attrs[i].name, attrs[i].value < 0 ? EMU_ACCOUNT : v);
    }
    if (open)
        bm__emu_w_end(w);
    cJSON *ma = m->attrs_json ? cJSON_Parse(m->attrs_json) : NULL;
    const cJSON *a;
    open = false;
    cJSON_ArrayForEach(a, ma)
    {
        if (!name_wanted(mnames, a->string))
            continue;
        if (!open)
            bm__emu_w_map(w, "MessageAttributes", "MessageAttribute");
        open = true;
        bm__emu_w_map_obj(w, a->string);
        const char *fields[] = {"StringValue", "BinaryValue", "DataType"};
        for (size_t k = 0; k < 3; k++) {
            const char *fv = bm__emu_in_str(a, fields[k]);
            if (fv != NULL)
                bm__emu_w_str(w, fields[k], fv);
        }
        bm__emu_w_end(w);
    }
    if (open) {
        bm__emu_w_end(w);
        bm__emu_w_str(w, "MD5OfMessageAttributes", m->attrs_md5);
    }
    cJSON_Delete(ma);
    bm__emu_w_end(w);
}

/* Waits on cv until deadline_ms (absolute, CLOCK_REALTIME like the condvar). */
static void wait_until(struct bm_emu *emu, int64_t deadline_ms)
{
    struct timespec ts = {(time_t)(deadline_ms / 1000), (long)(deadline_ms % 1000) * 1000000L};
    int e = pthread_cond_timedwait(&emu->cv, &emu->mu, &ts);
    (void)e; /* timeouts and spurious wake-ups are both fine: the caller re-checks */
}

bm_err bm__emu_sqs_receive(struct emu_req *rq, struct emu_w *w)
{
    struct bm_emu *emu = rq->emu;
    struct emu_queue *q;
    bm_err rc = bm__emu_sqs_queue(rq, &q);
    if (rc != BM_OK)
        return rc;
    long max = 1, wait = q->wait_s, vis = q->visibility_s;
    if ((rc = bm__emu_in_long(rq, rq->in, "MaxNumberOfMessages", 1, 10, &max)) != BM_OK ||
        (rc = bm__emu_in_long(rq, rq->in, "WaitTimeSeconds", 0, 20, &wait)) != BM_OK ||
        (rc = bm__emu_in_long(rq, rq->in, "VisibilityTimeout", 0, 43200, &vis)) != BM_OK)
        return rc;
    char *name = bm_strdup(q->name);
    if (name == NULL)
        return BM_E_NOMEM;
    int64_t deadline = rq->now_ms + wait * 1000;
    long got = 0;
    for (;;) {
        int64_t now = bm__emu_now_ms();
        /* The queue may have been deleted while this request slept. */
        if ((q = bm__emu_queue_find(emu, name)) == NULL)
            break;
        struct emu_queue *dlq = q->dlq_name ? bm__emu_queue_find(emu, q->dlq_name) : NULL;
        int64_t next_visible = deadline;
        struct emu_msg *prev = NULL;
        for (struct emu_msg *m = q->head, *next; m != NULL && got < max; m = next) {
            next = m->next;
            if (m->sent_ms + q->retention_s * 1000 < now) {
                unlink_msg(q, prev, m); /* past the retention period */
                bm__emu_msg_free(m);
                bm__emu_dirty(emu);
                continue;
            }
            if (m->visible_ms > now) {
                if (m->visible_ms < next_visible)
                    next_visible = m->visible_ms;
                prev = m;
                continue;
            }
            if (dlq != NULL && dlq != q && m->recv_count >= q->max_receive) {
                /* This receive would exceed maxReceiveCount: SQS moves the message instead. */
                unlink_msg(q, prev, m);
                m->recv_count = 0;
                m->first_recv_ms = 0;
                m->receipt[0] = '\0';
                m->visible_ms = now;
                bm__emu_queue_append(dlq, m);
                bm__emu_dirty(emu);
                pthread_cond_broadcast(&emu->cv);
                continue;
            }
            m->recv_count++;
            if (m->first_recv_ms == 0)
                m->first_recv_ms = now;
            m->visible_ms = now + vis * 1000;
            uint64_t r1 = bm__emu_rand(emu), r2 = bm__emu_rand(emu);
            snprintf(m->receipt, sizeof m->receipt, "%016llx%016llx-%s", (unsigned long long)r1,
                     (unsigned long long)r2, m->id);
            if (got == 0)
                bm__emu_w_list(w, "Messages", NULL, "Message");
            write_message(rq, w, m);
            got++;
            bm__emu_dirty(emu);
            prev = m;
        }
        if (got > 0 || now >= deadline || emu->stopping)
            break;
        wait_until(emu, next_visible < deadline ? next_visible : deadline);
    }
    bm_free(name);
    if (got > 0)
        bm__emu_w_end(w);
    return BM_OK;
}

/* ---- delete and visibility ------------------------------------------------------------ */
/* Finds the message a receipt handle names; *stale when it is not the latest handle. */
static bm_err by_receipt(struct emu_req *rq, struct emu_queue *q, const char *handle,
                         struct emu_msg **out, struct emu_msg **prev_out, bool *stale)
{
    *out = NULL;
    if (handle == NULL)
        return bm__emu_fail(rq, "MissingParameter",
                            "The request must contain the parameter ReceiptHandle.");
    if (strlen(handle) != 32 + 1 + 36 || handle[32] != '-')
        return bm__emu_fail(rq, "ReceiptHandleIsInvalid",
                            "The input receipt handle \"%s\" is not a valid receipt handle.",
                            handle);
    struct emu_msg *prev = NULL;
    for (struct emu_msg *m = q->head; m != NULL; prev = m, m = m->next) {
        if (strcmp(m->id, handle + 33) == 0) {
            *out = m;
            *prev_out = prev;
            *stale = strcmp(m->receipt, handle) != 0;
            break;
        }
    }
    return BM_OK;
}

static bm_err delete_one(struct emu_req *rq, struct emu_queue *q, const char *handle)
{
    struct emu_msg *m, *prev = NULL;
    bool stale = false;
    bm_err rc = by_receipt(rq, q, handle, &m, &prev, &stale);
    if (rc != BM_OK || m == NULL)
        return rc; /* deleting an already deleted message succeeds */
    if (stale) {
        /* SQS: "You must provide the most recently received receipt handle ... otherwise,
         * the request succeeds, but the message might not be deleted". Here it never is, so
         * that a client relying on an old handle notices. */
        BM_LOG(BM_INFO, "emu", "sqs_stale_receipt", "DeleteMessage with an outdated handle",
               BM_KV_STR("queue", q->name), BM_KV_STR("message_id", m->id));
        return BM_OK;
    }
    unlink_msg(q, prev, m);
    bm__emu_msg_free(m);
    bm__emu_dirty(rq->emu);
    return BM_OK;
}

bm_err bm__emu_sqs_delete(struct emu_req *rq, struct emu_w *w)
{
    (void)w;
    struct emu_queue *q;
    bm_err rc = bm__emu_sqs_queue(rq, &q);
    return rc == BM_OK ? delete_one(rq, q, bm__emu_in_str(rq->in, "ReceiptHandle")) : rc;
}

/* One batch entry's operation; *sent is the message a send created (NULL otherwise). */
typedef bm_err (*batch_op)(struct emu_req *rq, struct emu_queue *q, const cJSON *entry,
                           struct emu_msg **sent);

static bm_err send_entry(struct emu_req *rq, struct emu_queue *q, const cJSON *entry,
                         struct emu_msg **sent)
{
    return send_one(rq, q, entry, sent);
}

static bm_err delete_entry(struct emu_req *rq, struct emu_queue *q, const cJSON *entry,
                           struct emu_msg **sent)
{
    *sent = NULL;
    return delete_one(rq, q, bm__emu_in_str(entry, "ReceiptHandle"));
}

/* Runs op on every entry: a failed entry goes to Failed with its error, the others to
 * Successful (under xml_item in Query XML). */
static bm_err run_batch(struct emu_req *rq, struct emu_w *w, const char *xml_item, batch_op op)
{
    struct emu_queue *q;
    const cJSON *entries = cJSON_GetObjectItemCaseSensitive(rq->in, "Entries");
    struct emu_awserr errs[10];
    bm_err rc = bm__emu_sqs_queue(rq, &q);
    if (rc == BM_OK)
        rc = check_batch(rq, entries);
    if (rc != BM_OK)
        return rc;
    bm__emu_w_list(w, "Successful", NULL, xml_item);
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, entries)
    {
        struct emu_msg *m = NULL;
        struct emu_awserr saved = rq->err;
        rq->err.status = 0;
        rc = op(rq, q, e, &m);
        errs[i++] = rq->err;
        rq->err = saved;
        if (rc == BM_E_BAD_REQUEST)
            continue;
        if (rc != BM_OK)
            return rc;
        bm__emu_w_obj(w, NULL);
        bm__emu_w_str(w, "Id", bm__emu_in_str(e, "Id"));
        if (m != NULL) {
            bm__emu_w_str(w, "MessageId", m->id);
            bm__emu_w_str(w, "MD5OfMessageBody", m->md5);
            if (m->attrs_json != NULL)
                bm__emu_w_str(w, "MD5OfMessageAttributes", m->attrs_md5);
        }
        bm__emu_w_end(w);
    }
    bm__emu_w_end(w);
    write_failed(w, entries, errs);
    return BM_OK;
}

bm_err bm__emu_sqs_send_batch(struct emu_req *rq, struct emu_w *w)
{
    return run_batch(rq, w, "SendMessageBatchResultEntry", send_entry);
}

bm_err bm__emu_sqs_delete_batch(struct emu_req *rq, struct emu_w *w)
{
    return run_batch(rq, w, "DeleteMessageBatchResultEntry", delete_entry);
}

bm_err bm__emu_sqs_change_visibility(struct emu_req *rq, struct emu_w *w)
{
    (void)w;
    struct emu_queue *q;
    struct emu_msg *m, *prev = NULL;
    bool stale = false;
    long vis = -1;
    bm_err rc = bm__emu_sqs_queue(rq, &q);
    if (rc == BM_OK)
        rc = bm__emu_in_long(rq, rq->in, "VisibilityTimeout", 0, 43200, &vis);
    if (rc == BM_OK && vis < 0)
        rc = bm__emu_fail(rq, "MissingParameter",
                          "The request must contain the parameter VisibilityTimeout.");
    if (rc == BM_OK)
        rc = by_receipt(rq, q, bm__emu_in_str(rq->in, "ReceiptHandle"), &m, &prev, &stale);
    if (rc != BM_OK)
        return rc;
    if (m == NULL || stale)
        return bm__emu_fail(rq, "ReceiptHandleIsInvalid",
                            "The input receipt handle is invalid or no longer current.");
    if (m->recv_count == 0 || m->visible_ms <= rq->now_ms)
        return bm__emu_fail(rq, "MessageNotInflight",
                            "Message does not exist or is not "
                            "available for visibility timeout change.");
    m->visible_ms = rq->now_ms + vis * 1000;
    bm__emu_dirty(rq->emu);
    pthread_cond_broadcast(&rq->emu->cv);
    return BM_OK;
}
