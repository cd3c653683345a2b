/* events_answer.c: how POST /events answers, in the language of whoever posted the body
 * (docs/formats.md 5.2-5.4). Lambda reads batchItemFailures from a 200; an EventBridge API
 * destination (a rule's or a Pipe's target) reads only the status and Retry-After. */
#include "server/srv_int.h"

#include <stdio.h>
#include <string.h>

/* The Retry-After table. EventBridge API destinations retry 429 and 5xx, waiting the longer of
 * their retry policy and Retry-After, and do not retry 1xx-4xx otherwise (EventBridge User
 * Guide, "API destination error codes"). So a failure a retry can fix must answer 5xx with a
 * wait, and one it cannot must answer 4xx: retrying poison only delays the DLQ. With an SQS
 * source (a Pipe) a message is not deleted on any failure, so poison still reaches the
 * queue's DLQ after maxReceiveCount. The status is each code's own (BM_ERR_MAP), which is 5xx
 * exactly for the codes below that wait (test_server_errors holds the two tables together). */
int bm__retry_after_s(bm_err code)
{
    switch (code) {
    case BM_OK:
        return 0;
    /* Poison: the same body fails the same way however often it comes back. S3 has been
     * strongly consistent since 2020, so an object missing now stays missing; a denied read
     * needs a policy change (then redrive the DLQ); a bad log stays bad. */
    case BM_E_S3_NOT_FOUND:
    case BM_E_S3_DENIED:
    case BM_E_LOG_FORMAT:
    case BM_E_MSG_PARSE:
    case BM_E_NO_PROFILE:
    case BM_E_TOKENS:
    case BM_E_REGION:
    case BM_E_DIMENSIONS:
    case BM_E_TOO_LARGE:
    case BM_E_LINE_TOO_LONG:
    case BM_E_INFLATE_CAP:
    case BM_E_GZIP:
    case BM_E_BAD_REQUEST:
    case BM_E_UNAUTHORIZED:
    case BM_E_NO_ROUTE:
    case BM_E_METHOD:
    case BM_E_QUARANTINED:
    case BM_E_CONFIG:
    case BM_E_SUPERSEDED:
    case BM_E_RESIDENCY: /* a count, never an answer: the record is counted all the same */
    case BM_E_SERIES_CAP:
        return 0;
    /* bmas's own state, over within a second: a write lock, the body budget, memory. */
    case BM_E_STORAGE_BUSY:
    case BM_E_BUSY:
    case BM_E_NOMEM:
        return 1;
    /* AWS failed or throttled through MAX_RETRY_ATTEMPTS already, or bmas is stopping (a
     * request cut short by SIGTERM; a restart takes seconds): give it time. */
    case BM_E_UPSTREAM:
    case BM_E_PUBLISH:
    case BM_E_THROTTLED:
    case BM_E_CANCELLED:
        return 5;
    /* Waits for an operator (a full disk, missing credentials) or a fix; retried slowly so the
     * message stays in its queue meanwhile. BM_E_IO (a file of `bmas ingest`) never answers
     * /events, but its status is 500, so it says when too. */
    case BM_E_STORAGE:
    case BM_E_INTERNAL:
    case BM_E_NO_CREDENTIALS:
    case BM_E_IO:
        return 30;
    case BM_E__COUNT:
        break;
    }
    return 30;
}

/* A name echoed in an error body: at most DETAIL_MAX bytes (cut at a character boundary), so
 * the body stays small and valid JSON whatever the event carried. S3 names are far shorter. */
#define DETAIL_MAX 1100

static bm_err append_capped(struct bm_buf *b, const char *s)
{
    size_t len = strlen(s);
    if (len > DETAIL_MAX) {
        len = DETAIL_MAX;
        while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
            len--;
    }
    return bm_buf_append_json_str(b, s, len);
}

/* "batchItemFailures":[…]: only failed messages, each by its own messageId. */
static bm_err append_failures(struct bm_buf *out, const struct bm_event_batch *b,
                              const struct bm__msg_result *res)
{
    bm_err wr = bm_buf_append_str(out, "\"batchItemFailures\":[");
    bool first = true;
    for (size_t i = 0; wr == BM_OK && i < b->n; i++) {
        if (!res[i].failed)
            continue;
        wr = bm_buf_append_str(out, first ? "{\"itemIdentifier\":" : ",{\"itemIdentifier\":");
        if (wr == BM_OK)
            wr = append_capped(out, b->msgs[i].message_id);
        if (wr == BM_OK)
            wr = bm_buf_append_char(out, '}');
        first = false;
    }
    return wr == BM_OK ? bm_buf_append_char(out, ']') : wr;
}

/* A Lambda event: the partial-batch contract (docs/formats.md 5.2), always 200; an empty list
 * is complete success. An array (5.4): the same list, and a status that carries the verdict for
 * a sender that cannot read the list: 200 only when every message succeeded, else the worst
 * failure's, where one a retry can fix is worse than poison, so that the whole array comes back
 * (what succeeded comes back as duplicates, which count nothing). */
static void answer_batch(const struct bm_event_batch *b, const struct bm__msg_result *res,
                         const char *req_id, struct bm__reply *r)
{
    size_t worst = b->n, nfailed = 0;
    for (size_t i = 0; i < b->n; i++) {
        nfailed += res[i].failed;
        bool retry = res[i].failed && bm__retry_after_s(res[i].code) > 0;
        if (res[i].failed && (worst == b->n || (retry && bm__retry_after_s(res[worst].code) == 0)))
            worst = i;
    }
    r->status = 200;
    bm_err wr;
    if (b->form == BM_FORM_SQS_ARRAY && nfailed > 0) {
        const struct bm__msg_result *w = &res[worst];
        bm_err code = w->code != BM_OK ? w->code : BM_E_INTERNAL;
        char msg[sizeof w->em.text + 96];
        snprintf(msg, sizeof msg, "%zu of %zu messages failed; %s: %s", nfailed, b->n,
                 b->msgs[worst].message_id, w->em.text[0] ? w->em.text : bm_err_str(code));
        r->status = bm_err_http(code);
        r->retry_after_s = bm__retry_after_s(code);
        wr = bm_buf_appendf(&r->body, "{\"errorCode\":\"%s\",\"message\":", bm_err_wire(code));
        if (wr == BM_OK)
            wr = append_capped(&r->body, msg);
        if (wr == BM_OK)
            wr = bm_buf_appendf(&r->body, ",\"details\":{\"requestId\":\"%s\"},", req_id);
    } else {
        wr = bm_buf_append_char(&r->body, '{');
    }
    if (wr == BM_OK)
        wr = append_failures(&r->body, b, res);
    if (wr == BM_OK)
        wr = bm_buf_append_char(&r->body, '}');
    if (wr != BM_OK)
        bm__reply_error(r, wr, "response too large", NULL);
}

/* One record or a bare event: the status is the verdict (see bm__retry_after_s). */
static void answer_one(const struct bm_event_batch *b, const struct bm__msg_result *res,
                       const char *req_id, struct bm__reply *r)
{
    const struct bm_message *m = &b->msgs[0];
    if (!res[0].failed) {
        const char *st = res[0].processed    ? "processed"
                         : res[0].duplicates ? "duplicate"
                                             : "ignored";
        bm_err wr = bm_buf_appendf(
            &r->body,
            "{\"status\":\"%s\",\"objects\":{\"processed\":%u,\"duplicates\":%u,"
            "\"ignored\":%u,\"quarantined\":%u},\"records\":{\"processed\":%llu,"
            "\"invalid\":%llu}",
            st, res[0].processed, res[0].duplicates, res[0].ignored, res[0].quarantined,
            (unsigned long long)res[0].records, (unsigned long long)res[0].invalid);
        if (wr == BM_OK && b->is_sqs) {
            wr = bm_buf_append_str(&r->body, ",\"messageId\":");
            if (wr == BM_OK)
                wr = append_capped(&r->body, m->message_id);
        }
        if (wr == BM_OK)
            wr = bm_buf_append_char(&r->body, '}');
        r->status = 200;
        if (wr != BM_OK)
            bm__reply_error(r, wr, "response too large", NULL);
        return;
    }
    const struct bm_object_ref *ref = m->nrefs ? &m->refs[0] : NULL;
    struct bm_buf d;
    bm_buf_init(&d, 64 * 1024);
    bm_err dr = bm_buf_append_char(&d, '{');
    if (dr == BM_OK && ref != NULL) {
        dr = bm_buf_append_str(&d, "\"bucket\":");
        if (dr == BM_OK)
            dr = append_capped(&d, ref->bucket ? ref->bucket : "");
        if (dr == BM_OK)
            dr = bm_buf_append_str(&d, ",\"key\":");
        if (dr == BM_OK)
            dr = append_capped(&d, ref->key ? ref->key : "");
        if (dr == BM_OK)
            dr = bm_buf_append_char(&d, ',');
    }
    if (dr == BM_OK && b->is_sqs) {
        dr = bm_buf_append_str(&d, "\"messageId\":");
        if (dr == BM_OK)
            dr = append_capped(&d, m->message_id);
        if (dr == BM_OK)
            dr = bm_buf_append_char(&d, ',');
    }
    if (dr == BM_OK)
        dr = bm_buf_appendf(&d, "\"requestId\":\"%s\"}", req_id);
    bm_err code = res[0].code != BM_OK ? res[0].code : BM_E_INTERNAL;
    bm__reply_error(r, code, res[0].em.text, dr == BM_OK ? d.data : NULL);
    r->retry_after_s = bm__retry_after_s(code);
    bm_buf_cleanup(&d);
}

void bm__events_answer(const struct bm_event_batch *b, const struct bm__msg_result *res,
                       const char *req_id, struct bm__reply *r)
{
    switch (b->form) {
    case BM_FORM_LAMBDA:
    case BM_FORM_SQS_ARRAY:
        answer_batch(b, res, req_id, r);
        return;
    case BM_FORM_SQS_RECORD:
    case BM_FORM_BARE:
        answer_one(b, res, req_id, r);
        return;
    }
}
