/* test_server_process.c: server/events.c and server/publisher.c in process, on the scripted
 * transport (fake_http.h) and a real database: an SQS event turned into fetch tasks and a
 * partial-batch answer (which messages are listed, what was fetched, what was counted), a
 * redelivery answered from the database without a fetch, and the publisher's loop: one
 * PutMetricData for the pending rows, nothing left after; a failed call leaves them pending and
 * the next flush sends them. Totals are the sample log's, added up by hand: 4 invocations,
 * 269 input and 332 output tokens. */
#include "fake_http.h"
#include "test_storage_tu.h"

#include "server/srv_int.h"

#include <cjson/cJSON.h>
#include <unistd.h>
#include <zlib.h>

#define ETAG_A "\"0123456789abcdef0123456789abcdef\""

static const char *const env[] = {"AWS_ACCESS_KEY_ID",
                                  "AKIDTEST",
                                  "AWS_SECRET_ACCESS_KEY",
                                  "secret",
                                  "AWS_ENDPOINT_URL",
                                  "http://127.0.0.1:4566",
                                  "AWS_REGION",
                                  "us-east-1",
                                  "MAX_RETRY_ATTEMPTS",
                                  "1",
                                  "BMAS_FETCH_CONCURRENCY",
                                  "1",
                                  "BMAS_FLUSH_INTERVAL",
                                  "0",
                                  "BMAS_DIMENSION_SETS",
                                  "InferenceProfileType",
                                  NULL};

struct fx {
    struct fake_aws e;
    struct bm_srv s;
    struct tdb t;
    unsigned char *gz; /* the sample log, its hour moved to an hour ago, gzipped */
    size_t gz_len;
};

/* The sample's records, dated an hour ago so CloudWatch's two-week window takes them. */
static unsigned char *recent_sample(size_t *len)
{
    char *text = tu_read_file(tu_data("bedrock-log-sample.jsonl"), NULL);
    assert_non_null(text);
    char hour[21];
    bm_time_format(time(NULL) - 3600, hour);
    for (char *p = text; (p = strstr(p, "2026-04-20T00")) != NULL; p += 13)
        memcpy(p, hour, 13);
    unsigned char *gz = tu_gzip(text, strlen(text), len, 6);
    bm_free(text);
    return gz;
}

static int setup(void **state)
{
    struct fx *f = bm_calloc(1, sizeof *f);
    assert_non_null(f);
    fake_aws_setup(&f->e, env, time(NULL));
    struct bm_errmsg em;
    tdb_init(&f->t);
    struct bm_srv *s = &f->s;
    s->cfg = &f->e.cfg;
    s->http = f->e.ops;
    s->creds = f->e.creds;
    s->aws = f->e.aws;
    s->started_ms = bm_time_mono_ms();
    s->db = tdb_open(&f->t);
    assert_int_equal(bm_dimsets_parse(s->cfg->dimension_sets, &s->dims, &em), BM_OK);
    bm_ingest_opts_init(&s->iopts, s->cfg, NULL);
    assert_int_equal(bm__pool_new(1, &s->pool), BM_OK);
    f->gz = recent_sample(&f->gz_len);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    bm__publisher_stop(f->s.pub);
    bm__pool_free(f->s.pool);
    bm_db_close(f->s.db);
    fake_aws_teardown(&f->e);
    bm_free(f->gz);
    tdb_cleanup(&f->t);
    bm_free(f);
    return 0;
}

/* An SQS message whose body is an S3 notification for bucket "logs", key, ETag. */
static void add_msg(cJSON *records, const char *id, const char *key)
{
    char body[1024];
    snprintf(body, sizeof body,
             "{\"Records\":[{\"eventVersion\":\"2.1\",\"eventSource\":\"aws:s3\","
             "\"awsRegion\":\"us-east-1\",\"eventName\":\"ObjectCreated:Put\","
             "\"s3\":{\"bucket\":{\"name\":\"logs\"},\"object\":{\"key\":\"%s\","
             "\"eTag\":\"0123456789abcdef0123456789abcdef\",\"size\":10}}}]}",
             key);
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "messageId", id);
    cJSON_AddStringToObject(m, "body", body);
    cJSON_AddStringToObject(m, "eventSource", "aws:sqs");
    cJSON_AddItemToArray(records, m);
}

static void add_raw(cJSON *records, const char *id, const char *body)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "messageId", id);
    cJSON_AddStringToObject(m, "body", body);
    cJSON_AddItemToArray(records, m);
}

/* POSTs the event to the route; returns the sorted, comma-joined batchItemFailures. */
static void post(struct fx *f, cJSON *records, char *failures, size_t cap)
{
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddItemToObject(ev, "Records", records);
    char *body = cJSON_PrintUnformatted(ev);
    struct bm__reply r = {0};
    bm_buf_init(&r.body, 1 << 20);
    bm__route_events(&f->s, body, strlen(body), "req-1", &r);
    assert_int_equal(r.status, 200);
    cJSON *j = cJSON_ParseWithLength(r.body.data, r.body.len);
    assert_non_null(j);
    const cJSON *bif = cJSON_GetObjectItemCaseSensitive(j, "batchItemFailures");
    assert_true(cJSON_IsArray(bif));
    failures[0] = '\0';
    const cJSON *it;
    cJSON_ArrayForEach(it, bif)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "itemIdentifier");
        assert_true(cJSON_IsString(id));
        size_t n = strlen(failures);
        snprintf(failures + n, cap - n, "%s%s", n ? "," : "", id->valuestring);
    }
    cJSON_Delete(j);
    cJSON_free(body);
    cJSON_Delete(ev);
    bm_buf_cleanup(&r.body);
}

static uint64_t counter(struct fx *f, enum bm_db_counter c)
{
    struct bm_db_status st;
    struct bm_errmsg em;
    assert_int_equal(bm_db_status(f->s.db, &st, &em), BM_OK);
    return st.c[c];
}

static void events_to_tasks_and_back(void **state)
{
    struct fx *f = *state;
    /* m1 and m3 are fetched, in that order (one worker); m2 and m4 never reach S3. */
    fake_push(&f->e.http, (struct fake_resp){.status = 200,
                                             .body = (const char *)f->gz,
                                             .body_len = f->gz_len,
                                             .etag = ETAG_A});
    fake_push(&f->e.http,
              (struct fake_resp){.status = 404, .body = "<Error><Code>NoSuchKey</Code></Error>"});
    cJSON *recs = cJSON_CreateArray();
    add_msg(recs, "m1", "AWSLogs/1/BedrockModelInvocationLogs/us-east-1/a.json.gz");
    add_raw(recs, "m2",
            "{\"Service\":\"Amazon S3\",\"Event\":\"s3:TestEvent\",\"Bucket\":\"logs\"}");
    add_msg(recs, "m3", "AWSLogs/1/BedrockModelInvocationLogs/us-east-1/gone.json.gz");
    add_raw(recs, "m4", "{not json");
    char failures[256];
    post(f, recs, failures, sizeof failures);
    assert_string_equal(failures, "m3,m4");
    assert_int_equal(f->e.http.ncalls, 2);
    assert_non_null(strstr(f->e.http.calls[0].url, "/logs/AWSLogs/1/"));
    assert_non_null(strstr(f->e.http.calls[1].url, "gone.json.gz"));
    assert_int_equal(counter(f, BM_DB_C_OBJECTS_PROCESSED), 1);
    assert_int_equal(counter(f, BM_DB_C_RECORDS_PROCESSED), 4);

    /* The same object again: answered from the database, no fetch, not listed. */
    recs = cJSON_CreateArray();
    add_msg(recs, "m5", "AWSLogs/1/BedrockModelInvocationLogs/us-east-1/a.json.gz");
    post(f, recs, failures, sizeof failures);
    assert_string_equal(failures, "");
    assert_int_equal(f->e.http.ncalls, 2);
    assert_int_equal(counter(f, BM_DB_C_OBJECTS_DUPLICATES), 1);
    assert_int_equal(counter(f, BM_DB_C_RECORDS_PROCESSED), 4);
}

/* The body of call i, as text. */
static const char *call_body(struct fx *f, size_t i)
{
    struct bm_buf *b = &f->e.http.calls[i].body;
    if (bm_buf_append(b, "", 1) != BM_OK) /* NUL-terminate (not counted in a second use) */
        fail();
    b->len--;
    return b->data;
}

/* Adds StatisticValues.Sum over the members of a Query-protocol PutMetricData body whose
 * MetricName is name. */
static long long metric_sum(const char *body, const char *name)
{
    char names[64][64] = {{0}};
    long long sums[64] = {0};
    const char *p = body;
    while (*p != '\0') {
        const char *end = strchr(p, '&');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        unsigned m;
        char field[64];
        char val[64];
        char pair[256];
        snprintf(pair, sizeof pair, "%.*s", (int)n, p);
        if (sscanf(pair, "MetricData.member.%u.%63[^=]=%63s", &m, field, val) == 3 && m < 64) {
            if (strcmp(field, "MetricName") == 0)
                snprintf(names[m], sizeof names[m], "%s", val);
            else if (strcmp(field, "StatisticValues.Sum") == 0)
                sums[m] = strtoll(val, NULL, 10);
        }
        p += n + (end ? 1 : 0);
    }
    long long total = 0;
    for (int m = 0; m < 64; m++)
        if (strcmp(names[m], name) == 0)
            total += sums[m];
    return total;
}

static void publisher_loop(void **state)
{
    struct fx *f = *state;
    fake_push(&f->e.http, (struct fake_resp){.status = 200,
                                             .body = (const char *)f->gz,
                                             .body_len = f->gz_len,
                                             .etag = ETAG_A});
    cJSON *recs = cJSON_CreateArray();
    add_msg(recs, "m1", "AWSLogs/1/BedrockModelInvocationLogs/us-east-1/a.json.gz");
    char failures[64];
    post(f, recs, failures, sizeof failures);
    assert_string_equal(failures, "");
    assert_int_equal(bm__publisher_start(&f->s, &f->s.pub), BM_OK);

    /* CloudWatch fails the first time: nothing is taken as published. */
    fake_push(&f->e.http, (struct fake_resp){.status = 500,
                                             .body = "<ErrorResponse><Error><Code>InternalFailure"
                                                     "</Code></Error></ErrorResponse>"});
    struct bm__flush_report rep;
    bm__publisher_flush(f->s.pub, 30000, &rep);
    assert_int_not_equal(rep.rc, BM_OK);
    assert_int_equal(rep.res.requests, 0);
    assert_int_equal(f->e.http.ncalls, 2);
    assert_string_equal(f->e.http.calls[1].service, "monitoring");
    uint64_t pending = counter(f, BM_DB_C_PUBLISH_PENDING);
    assert_true(pending > 0);

    /* The next flush sends them in one call and leaves nothing pending. */
    fake_push(&f->e.http, (struct fake_resp){.status = 200, .body = "<PutMetricDataResponse/>"});
    bm__publisher_flush(f->s.pub, 30000, &rep);
    assert_int_equal(rep.rc, BM_OK);
    assert_int_equal(rep.res.requests, 1);
    assert_int_equal(f->e.http.ncalls, 3);
    assert_int_equal(counter(f, BM_DB_C_PUBLISH_PENDING), 0);
    /* One dimension set (InferenceProfileType): the sums over its values are the sample's. */
    const char *body = call_body(f, 2);
    assert_int_equal(metric_sum(body, "InvocationCount"), 4);
    assert_int_equal(metric_sum(body, "InputTokens"), 269);
    assert_int_equal(metric_sum(body, "OutputTokens"), 332);

    /* Nothing pending: a flush makes no call. */
    bm__publisher_flush(f->s.pub, 30000, &rep);
    assert_int_equal(rep.rc, BM_OK);
    assert_int_equal(f->e.http.ncalls, 3);
}

int main(void)
{
    bm_log_set_level(BM_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(events_to_tasks_and_back, setup, teardown),
        cmocka_unit_test_setup_teardown(publisher_loop, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
