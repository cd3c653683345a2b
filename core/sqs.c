/* sqs.c: the consumer side of SQS (BMAS_SQS_QUEUE_URL): ReceiveMessage with long polling and
 * DeleteMessageBatch, over the AWS JSON 1.0 protocol that current SDKs, SQS and LocalStack
 * speak. Requests go to the SQS endpoint with the queue URL in the body. */
#include "core/core_int.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A request body naming the queue; the callers add their members. cJSON calls accept NULL, so
 * an allocation failure anywhere surfaces once, when sqs_call prints the body. */
static cJSON *new_request(const char *queue_url)
{
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "QueueUrl", queue_url);
    return req;
}

/* Sends req (takes ownership, deleted even on failure) as AmazonSQS.<target> through the
 * shared call path (retries, credential refresh, deadline; on_stop says what a shutdown does). */
static bm_err sqs_call(const struct bm_aws *aws, const char *target, cJSON *req, long timeout_ms,
                       enum bm__aws_on_stop on_stop, struct bm_http_resp *rs, struct bm_errmsg *em)
{
    char *json = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    if (json == NULL)
        return BM_E_NOMEM;
    struct bm_buf url;
    bm_buf_init(&url, 4096);
    bool custom;
    bm_err rc = bm_aws_endpoint(aws->cfg, "sqs", &url, &custom);
    if (rc == BM_OK)
        rc = bm_buf_append_char(&url, '/');
    char th[128], op[64];
    snprintf(th, sizeof th, "X-Amz-Target: AmazonSQS.%s", target);
    snprintf(op, sizeof op, "SQS %s", target);
    const char *headers[] = {"Content-Type: application/x-amz-json-1.0", th};
    if (rc == BM_OK) {
        struct bm__aws_call c = {.aws = aws,
                                 .op = op,
                                 .rq = {.method = "POST",
                                        .url = url.data,
                                        .service = "sqs",
                                        .region = aws->cfg->aws_region,
                                        .headers = headers,
                                        .nheaders = 2,
                                        .body = json,
                                        .body_len = strlen(json),
                                        .max_body = 2u << 20,
                                        .timeout_ms = timeout_ms},
                                 .on_stop = on_stop,
                                 .rs = rs};
        rc = bm__aws_call(&c, em);
    }
    bm_buf_cleanup(&url);
    cJSON_free(json);
    return rc;
}

void bm_sqs_batch_cleanup(struct bm_sqs_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        bm_free(b->m[i].id);
        bm_free(b->m[i].receipt);
        bm_free(b->m[i].body);
    }
    bm_free(b->m);
    b->m = NULL;
    b->n = 0;
}

bm_err bm_sqs_receive(const struct bm_aws *aws, const char *queue_url, int max, int wait_s,
                      struct bm_sqs_batch *out, struct bm_errmsg *em)
{
    memset(out, 0, sizeof *out);
    cJSON *req = new_request(queue_url);
    cJSON_AddNumberToObject(req, "MaxNumberOfMessages", max < 1 ? 1 : max > 10 ? 10 : max);
    cJSON_AddNumberToObject(req, "WaitTimeSeconds", wait_s);
    cJSON *name = cJSON_CreateString("ApproximateReceiveCount");
    if (!cJSON_AddItemToArray(cJSON_AddArrayToObject(req, "AttributeNames"), name)) {
        cJSON_Delete(name);
        cJSON_Delete(req);
        return BM_E_NOMEM;
    }
    struct bm_http_resp rs;
    bm_http_resp_init(&rs);
    /* The HTTP timeout must outlast the long poll. */
    bm_err rc = sqs_call(aws, "ReceiveMessage", req, (wait_s + 15) * 1000L, BM__AWS_ABORT, &rs, em);
    cJSON *j = rc == BM_OK ? cJSON_ParseWithLength(rs.body.data ? rs.body.data : "{}",
                                                   rs.body.data ? rs.body.len : 2)
                           : NULL;
    if (rc == BM_OK && j == NULL)
        rc = bm_errmsg_set(em, BM_E_UPSTREAM, "SQS ReceiveMessage: response is not JSON");
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(j, "Messages");
    size_t n = cJSON_IsArray(msgs) ? (size_t)cJSON_GetArraySize(msgs) : 0;
    if (rc == BM_OK && n > 0 && (out->m = bm_calloc(n, sizeof *out->m)) == NULL)
        rc = BM_E_NOMEM;
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs)
    {
        if (rc != BM_OK)
            break;
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(m, "MessageId");
        const cJSON *rh = cJSON_GetObjectItemCaseSensitive(m, "ReceiptHandle");
        const cJSON *body = cJSON_GetObjectItemCaseSensitive(m, "Body");
        const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(m, "Attributes");
        const cJSON *cnt = cJSON_GetObjectItemCaseSensitive(attrs, "ApproximateReceiveCount");
        if (!cJSON_IsString(id) || !cJSON_IsString(rh) || !cJSON_IsString(body))
            continue; /* not a message we can process or delete */
        struct bm_sqs_msg *o = &out->m[out->n];
        o->id = bm_strdup(id->valuestring);
        o->receipt = bm_strdup(rh->valuestring);
        o->body_len = strlen(body->valuestring);
        o->body = bm_strndup(body->valuestring, o->body_len);
        o->receive_count = cJSON_IsString(cnt) ? strtol(cnt->valuestring, NULL, 10) : 1;
        out->n++;
        if (o->id == NULL || o->receipt == NULL || o->body == NULL)
            rc = BM_E_NOMEM;
    }
    cJSON_Delete(j);
    bm_http_resp_cleanup(&rs);
    if (rc != BM_OK)
        bm_sqs_batch_cleanup(out);
    return rc;
}

bm_err bm_sqs_delete(const struct bm_aws *aws, const char *queue_url, const char *const *receipts,
                     size_t n, size_t *deleted, struct bm_errmsg *em)
{
    *deleted = 0;
    if (n == 0)
        return BM_OK;
    cJSON *req = new_request(queue_url);
    cJSON *entries = cJSON_AddArrayToObject(req, "Entries");
    for (size_t i = 0; i < n && i < 10; i++) {
        cJSON *e = cJSON_CreateObject();
        char id[16];
        snprintf(id, sizeof id, "m%zu", i);
        cJSON_AddStringToObject(e, "Id", id);
        cJSON_AddStringToObject(e, "ReceiptHandle", receipts[i]);
        if (!cJSON_AddItemToArray(entries, e)) {
            cJSON_Delete(e);
            cJSON_Delete(req);
            return BM_E_NOMEM;
        }
    }
    struct bm_http_resp rs;
    bm_http_resp_init(&rs);
    bm_err rc = sqs_call(aws, "DeleteMessageBatch", req, 30000, BM__AWS_FINISH, &rs, em);
    if (rc == BM_OK) {
        cJSON *j = cJSON_ParseWithLength(rs.body.data ? rs.body.data : "{}",
                                         rs.body.data ? rs.body.len : 2);
        const cJSON *ok = cJSON_GetObjectItemCaseSensitive(j, "Successful");
        *deleted = cJSON_IsArray(ok) ? (size_t)cJSON_GetArraySize(ok) : 0;
        cJSON_Delete(j);
    }
    bm_http_resp_cleanup(&rs);
    return rc;
}
