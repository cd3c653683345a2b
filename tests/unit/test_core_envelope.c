/* Envelopes of POST /events: every shape in docs/formats.md 4-5 from the samples in tests/data,
 * bare and inside an SQS event, the one-pass form-URL key decoding, S3's rules for the names an
 * event carries, and the per-message failures that must not spoil a batch. Limits, duplicates,
 * trailing data and allocation failures: test_core_envelope_limits.c. */
#include "tu_envelope.h"

static struct bm_event_batch *parse_ok(const char *body)
{
    return tu_parse_ok(body, 100);
}

static void test_lambda_sqs_sample(void **state)
{
    (void)state;
    char *body = tu_read_file(tu_data("sqs-lambda-event.json"), NULL);
    struct bm_event_batch *b = parse_ok(body);
    assert_true(b->is_sqs);
    assert_int_equal(b->n, 3);
    /* 1: a direct S3 notification; the key's "team+a/" is "team a/". */
    assert_string_equal(b->msgs[0].message_id, "059f36b4-87a3-44ab-83d2-661975830a7d");
    assert_int_equal(b->msgs[0].parse_err, BM_OK);
    assert_int_equal(b->msgs[0].nrefs, 1);
    const struct bm_object_ref *r = &b->msgs[0].refs[0];
    assert_int_equal(r->kind, BM_REF_OBJECT);
    assert_string_equal(r->bucket, "my-bedrock-logs");
    assert_string_equal(r->key,
                        "team a/AWSLogs/123456789012/BedrockModelInvocationLogs/"
                        "us-east-1/2026/04/20/00/20260420T002205123Z_3f9c2a7b1d4e5f60.json.gz");
    assert_string_equal(r->etag, "d41d8cd98f00b204e9800998ecf8427e");
    assert_string_equal(r->version_id, "");
    assert_int_equal(r->size, 18342);
    assert_string_equal(r->event_name, "ObjectCreated:Put");
    /* 2: the test event. */
    assert_int_equal(b->msgs[1].nrefs, 1);
    assert_int_equal(b->msgs[1].refs[0].kind, BM_REF_TEST_EVENT);
    /* 3: SNS-wrapped, third delivery. */
    assert_int_equal(b->msgs[2].receive_count, 3);
    assert_int_equal(b->msgs[2].nrefs, 1);
    assert_string_equal(b->msgs[2].refs[0].key, r->key);
    bm_event_batch_free(b);
    bm_free(body);
}

static void test_bare_envelopes(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        enum bm_ref_kind kind;
        const char *key;
    } cases[] = {
        {"s3-event.json", BM_REF_OBJECT,
         "team a/AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/04/20/00/"
         "20260420T002205123Z_3f9c2a7b1d4e5f60.json.gz"},
        {"sns-wrapped-body.txt", BM_REF_OBJECT,
         "team a/AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/04/20/00/"
         "20260420T002205123Z_3f9c2a7b1d4e5f60.json.gz"},
        {"eventbridge-object-created.json", BM_REF_OBJECT,
         "AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/04/20/00/"
         "20260420T002205123Z_3f9c2a7b1d4e5f60.json.gz"},
        {"s3-test-event.json", BM_REF_TEST_EVENT, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *body = tu_read_file(tu_data(cases[i].file), NULL);
        assert_non_null(body);
        struct bm_event_batch *b = parse_ok(body);
        assert_false(b->is_sqs);
        assert_int_equal(b->n, 1);
        assert_string_equal(b->msgs[0].message_id, "");
        assert_int_equal(b->msgs[0].nrefs, 1);
        assert_int_equal(b->msgs[0].refs[0].kind, cases[i].kind);
        if (cases[i].key != NULL)
            assert_string_equal(b->msgs[0].refs[0].key, cases[i].key);
        bm_event_batch_free(b);
        bm_free(body);
    }
    /* EventBridge keys are not form-encoded: a '+' stays a '+'. */
    struct bm_event_batch *b = parse_ok(
        "{\"version\":\"0\",\"detail-type\":\"Object Created\",\"source\":\"aws.s3\",\"detail\":"
        "{\"bucket\":{\"name\":\"bkt\"},\"object\":{\"key\":\"a+b %41.json.gz\",\"etag\":"
        "\"" TU_ETAG "\",\"version-id\":\"v1\",\"size\":5}}}");
    assert_string_equal(b->msgs[0].refs[0].key, "a+b %41.json.gz");
    assert_string_equal(b->msgs[0].refs[0].version_id, "v1");
    bm_event_batch_free(b);
}

static void test_several_records_and_other_events(void **state)
{
    (void)state;
    const char *body =
        "{\"Records\":[{\"eventVersion\":\"2.2\",\"eventSource\":\"aws:s3\",\"eventName\":"
        "\"ObjectCreated:CompleteMultipartUpload\",\"s3\":{\"bucket\":{\"name\":\"bkt\"},"
        "\"object\":{\"key\":\"k%2B1\",\"eTag\":\"\\\"D41D8CD98F00B204E9800998ECF8427E-12\\\"\","
        "\"versionId\":\"v\"}}},"
        "{\"eventVersion\":\"2.1\",\"eventSource\":\"aws:s3\",\"eventName\":\"ObjectRemoved:"
        "Delete\",\"s3\":{\"bucket\":{\"name\":\"bkt\"},\"object\":{\"key\":\"k2\"}}}]}";
    struct bm_event_batch *b = parse_ok(body);
    assert_int_equal(b->msgs[0].nrefs, 2);
    assert_int_equal(b->msgs[0].refs[0].kind, BM_REF_OBJECT);
    assert_string_equal(b->msgs[0].refs[0].key, "k+1"); /* %2B is a '+', decoded once */
    /* Quotes and case are no part of an ETag's identity. */
    assert_string_equal(b->msgs[0].refs[0].etag, TU_ETAG "-12");
    assert_int_equal(b->msgs[0].refs[1].kind, BM_REF_IGNORED);
    bm_event_batch_free(b);
}

static void test_bad_messages(void **state)
{
    (void)state;
    /* In an SQS batch a bad body fails that message only. */
    const char *batch =
        "{\"Records\":[{\"messageId\":\"m1\",\"body\":\"not json\",\"eventSource\":\"aws:sqs\"},"
        "{\"messageId\":\"m2\",\"body\":\"{\\\"Service\\\":\\\"Amazon S3\\\",\\\"Event\\\":"
        "\\\"s3:TestEvent\\\"}\",\"eventSource\":\"aws:sqs\"},"
        "{\"messageId\":\"m3\",\"body\":\"{\\\"hello\\\":1}\",\"eventSource\":\"aws:sqs\"},"
        "{\"messageId\":\"m4\",\"body\":\"{\\\"Records\\\":[{\\\"eventVersion\\\":\\\"3.0\\\","
        "\\\"eventName\\\":\\\"ObjectCreated:Put\\\",\\\"s3\\\":{\\\"bucket\\\":{\\\"name\\\":"
        "\\\"bkt\\\"},\\\"object\\\":{\\\"key\\\":\\\"k\\\"}}}]}\",\"eventSource\":\"aws:sqs\"},"
        "{\"messageId\":\"m5\",\"eventSource\":\"aws:sqs\"}]}";
    struct bm_event_batch *b = parse_ok(batch);
    assert_int_equal(b->n, 5);
    assert_int_equal(b->msgs[0].parse_err, BM_E_MSG_PARSE);
    assert_int_equal(b->msgs[1].parse_err, BM_OK);
    assert_int_equal(b->msgs[2].parse_err, BM_E_MSG_PARSE);
    assert_int_equal(b->msgs[3].parse_err, BM_E_MSG_PARSE); /* eventVersion 3.x */
    assert_non_null(strstr(b->msgs[3].parse_msg.text, "eventVersion"));
    assert_int_equal(b->msgs[4].parse_err, BM_E_MSG_PARSE);
    assert_string_equal(bm_err_wire(b->msgs[0].parse_err), "BMAS-005");
    bm_event_batch_free(b);

    /* Whole-body failures: 400 BMAS-005. */
    static const char *const bad[] = {
        "",
        "[]",
        "{\"x\":1}",
        "not json",
        "{\"Records\":[]}",
        "{\"Records\":[{\"messageId\":\"\",\"body\":\"{}\",\"eventSource\":\"aws:sqs\"}]}",
        "{\"Type\":\"SubscriptionConfirmation\",\"Message\":\"confirm\"}",
        "{\"Type\":\"Notification\",\"Message\":\"not json\"}",
        /* A key that is no valid form encoding (S3 never writes one). */
        "{\"Records\":[{\"eventVersion\":\"2.1\",\"eventName\":\"ObjectCreated:Put\",\"s3\":"
        "{\"bucket\":{\"name\":\"bkt\"},\"object\":{\"key\":\"100%\"}}}]}",
        "{\"detail-type\":\"Object Created\",\"source\":\"aws.s3\",\"detail\":{}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct bm_event_batch *x = NULL;
        struct bm_errmsg em = {{0}};
        assert_int_equal(bm_envelope_parse(bad[i], strlen(bad[i]), 100, &x, &em), BM_E_MSG_PARSE);
        assert_null(x);
        assert_true(strlen(em.text) > 0);
    }
}

static void test_alloc_failures(void **state)
{
    (void)state;
    char *body = tu_read_file(tu_data("sqs-lambda-event.json"), NULL);
    bool done = false;
    for (long n = 0; n < 500 && !done; n++) {
        bm_alloc_fail_after(n);
        struct bm_event_batch *b = NULL;
        bm_err rc = bm_envelope_parse(body, strlen(body), 100, &b, NULL);
        long failures = bm_alloc_failures();
        bm_alloc_fail_after(-1);
        if (failures == 0) {
            assert_int_equal(rc, BM_OK);
            done = true;
        } else {
            assert_int_equal(rc, BM_E_NOMEM);
            assert_null(b);
        }
        bm_event_batch_free(b);
    }
    assert_true(done);
    bm_free(body);
}

/* Every kind of body inside an SQS event: S3 notification, SNS-wrapped (and raw delivery),
 * EventBridge, TestEvent; each message keeps its own id and receive count. */
static void test_every_kind_in_sqs(void **state)
{
    (void)state;
    static const char *const files[] = {"s3-event.json", "sns-wrapped-body.txt",
                                        "eventbridge-object-created.json", "s3-test-event.json"};
    char *bodies[4];
    for (size_t i = 0; i < 4; i++)
        assert_non_null(bodies[i] = tu_read_file(tu_data(files[i]), NULL));
    char *ev = tu_sqs_event((const char *const *)bodies, 4);
    struct bm_event_batch *b = parse_ok(ev);
    assert_true(b->is_sqs);
    assert_int_equal(b->n, 4);
    for (size_t i = 0; i < 4; i++) {
        char id[8];
        snprintf(id, sizeof id, "m%zu", i);
        assert_string_equal(b->msgs[i].message_id, id);
        assert_int_equal(b->msgs[i].receive_count, (long)i + 1);
        assert_int_equal(b->msgs[i].parse_err, BM_OK);
        assert_int_equal(b->msgs[i].nrefs, 1);
    }
    for (size_t i = 0; i < 3; i++) {
        const struct bm_object_ref *r = &b->msgs[i].refs[0];
        assert_int_equal(r->kind, BM_REF_OBJECT);
        assert_string_equal(r->bucket, "my-bedrock-logs");
        assert_int_equal(r->size, 18342);
        assert_non_null(strstr(r->key, "AWSLogs/123456789012/BedrockModelInvocationLogs/"));
    }
    assert_string_equal(b->msgs[0].refs[0].key, b->msgs[1].refs[0].key);
    assert_string_equal(b->msgs[2].refs[0].etag, "b1946ac92492d2347c6235b4d2611184");
    assert_string_equal(b->msgs[2].refs[0].event_name, "Object Created");
    assert_int_equal(b->msgs[3].refs[0].kind, BM_REF_TEST_EVENT);
    bm_event_batch_free(b);
    bm_free(ev);
    for (size_t i = 0; i < 4; i++)
        bm_free(bodies[i]);
}

/* Names as S3 could have sent them pass (normalised); anything else fails its message with
 * BMAS-005 and names no object, so nothing is fetched for it. */
static void test_names_checked(void **state)
{
    (void)state;
    static const struct {
        const char *bucket, *obj;
        bool ok;
        const char *etag, *version;
    } cases[] = {
        {TU_BUCKET, "\"key\":\"" TU_KEY "\",\"eTag\":\"\\\"" TU_ETAG "\\\"\"", true, TU_ETAG, ""},
        {TU_BUCKET, "\"key\":\"" TU_KEY "\",\"eTag\":\"D41D8CD98F00B204E9800998ECF8427E\"", true,
         TU_ETAG, ""},
        {TU_BUCKET, "\"key\":\"" TU_KEY "\",\"versionId\":\"null\"", true, "", "null"},
        {TU_BUCKET, "\"key\":\"" TU_KEY "\",\"versionId\":\"v1\",\"eTag\":\"\"", true, "", "v1"},
        {TU_BUCKET, "\"key\":\"" TU_KEY "\",\"eTag\":\"W/\\\"" TU_ETAG "\\\"\"", false, NULL, NULL},
        {TU_BUCKET, "\"key\":\"" TU_KEY "\",\"eTag\":\"0\"", false, NULL, NULL},
        {TU_BUCKET, "\"key\":\"" TU_KEY "\",\"versionId\":\"a b\"", false, NULL, NULL},
        {TU_BUCKET, "\"key\":\"\"", false, NULL, NULL},
        {TU_BUCKET, "\"key\":\"%FF.json.gz\"", false, NULL, NULL},   /* not UTF-8 once decoded */
        {TU_BUCKET, "\"key\":\"a%00b.json.gz\"", false, NULL, NULL}, /* NUL would end a C string */
        {TU_BUCKET, "\"key\":\"100%\"", false, NULL, NULL},          /* no form encoding */
        {"", "\"key\":\"" TU_KEY "\"", false, NULL, NULL},
        {"logs/AWSLogs", "\"key\":\"1/BedrockModelInvocationLogs/x.json.gz\"", false, NULL, NULL},
        {"localhost:8080", "\"key\":\"" TU_KEY "\"", false, NULL, NULL},
        {"10.0.0.1", "\"key\":\"" TU_KEY "\"", false, NULL, NULL},
        {"Logs", "\"key\":\"" TU_KEY "\"", false, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *body = tu_s3_event(cases[i].bucket, cases[i].obj);
        char *ev = tu_sqs_event((const char *const *)&body, 1);
        struct bm_event_batch *b = parse_ok(ev);
        const struct bm_message *m = &b->msgs[0];
        if (cases[i].ok) {
            if (m->parse_err != BM_OK)
                fail_msg("case %zu: %s", i, m->parse_msg.text);
            assert_int_equal(m->nrefs, 1);
            assert_string_equal(m->refs[0].etag, cases[i].etag);
            assert_string_equal(m->refs[0].version_id, cases[i].version);
        } else {
            if (m->parse_err != BM_E_MSG_PARSE)
                fail_msg("case %zu: accepted", i);
            assert_int_equal(m->nrefs, 0);
            assert_string_equal(bm_err_wire(m->parse_err), "BMAS-005");
        }
        bm_event_batch_free(b);
        bm_free(ev);
        bm_free(body);
    }
}

/* What the SQS consumer hands over: one body at a time, same rules. */
static void test_consumer_body(void **state)
{
    (void)state;
    char *body = tu_read_file(tu_data("sns-wrapped-body.txt"), NULL);
    struct bm_message m;
    assert_int_equal(bm_message_parse_body("id-1", 2, body, strlen(body), &m), BM_OK);
    assert_int_equal(m.parse_err, BM_OK);
    assert_int_equal(m.nrefs, 1);
    assert_int_equal(m.receive_count, 2);
    assert_string_equal(m.message_id, "id-1");
    bm_message_cleanup(&m);
    assert_int_equal(bm_message_parse_body("id-2", 1, "{} x", 4, &m), BM_OK);
    assert_int_equal(m.parse_err, BM_E_MSG_PARSE);
    bm_message_cleanup(&m);
    bm_free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lambda_sqs_sample),
        cmocka_unit_test(test_bare_envelopes),
        cmocka_unit_test(test_several_records_and_other_events),
        cmocka_unit_test(test_every_kind_in_sqs),
        cmocka_unit_test(test_names_checked),
        cmocka_unit_test(test_consumer_body),
        cmocka_unit_test(test_bad_messages),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
