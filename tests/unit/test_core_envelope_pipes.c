/* What an EventBridge Pipe from an SQS queue posts (docs/formats.md 5.3, 5.4): one SQS record
 * as the whole body, or a JSON array of them, from the samples in tests/data; and the hostile
 * variants: an empty array, elements that are not objects, nested arrays, an array over
 * BATCH_SIZE (refused before anything is allocated), records without a usable messageId, and
 * allocation failure at every step. */
#include "tu_envelope.h"

/* One SQS record as a Pipe posts it, id "id" and body the string body. */
static char *pipe_record(const char *id, const char *body)
{
    struct bm_buf b;
    bm_buf_init(&b, (size_t)1 << 30);
    assert_int_equal(
        bm_buf_appendf(&b, "{\"messageId\":\"%s\",\"receiptHandle\":\"AQEB\",\"body\":", id),
        BM_OK);
    assert_int_equal(bm_buf_append_json_str(&b, body, strlen(body)), BM_OK);
    assert_int_equal(bm_buf_append_str(&b, ",\"attributes\":{\"ApproximateReceiveCount\":\"2\"},"
                                           "\"messageAttributes\":{},\"md5OfBody\":\"e4e6\","
                                           "\"eventSource\":\"aws:sqs\",\"eventSourceARN\":"
                                           "\"arn:aws:sqs:us-east-1:123456789012:q\","
                                           "\"awsRegion\":\"us-east-1\"}"),
                     BM_OK);
    return bm_buf_steal(&b);
}

/* A JSON array of n copies of rec. */
static char *array_of(const char *rec, size_t n)
{
    struct bm_buf b;
    bm_buf_init(&b, (size_t)1 << 30);
    assert_int_equal(bm_buf_append_char(&b, '['), BM_OK);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            assert_int_equal(bm_buf_append_char(&b, ','), BM_OK);
        assert_int_equal(bm_buf_append_str(&b, rec), BM_OK);
    }
    assert_int_equal(bm_buf_append_char(&b, ']'), BM_OK);
    return bm_buf_steal(&b);
}

static void test_single_record_sample(void **state)
{
    (void)state;
    char *body = tu_read_file(tu_data("pipes-sqs-record.json"), NULL);
    assert_non_null(body);
    struct bm_event_batch *b = tu_parse_ok(body, 100);
    assert_int_equal(b->form, BM_FORM_SQS_RECORD);
    assert_true(b->is_sqs);
    assert_int_equal(b->n, 1);
    assert_string_equal(b->msgs[0].message_id, "059f36b4-87a3-44ab-83d2-661975830a7d");
    assert_int_equal(b->msgs[0].parse_err, BM_OK);
    assert_int_equal(b->msgs[0].nrefs, 1);
    const struct bm_object_ref *r = &b->msgs[0].refs[0];
    assert_int_equal(r->kind, BM_REF_OBJECT);
    assert_string_equal(r->bucket, "my-bedrock-logs");
    /* The body is the S3 notification: its key form-decoded once ("team+a/" is "team a/"). */
    assert_string_equal(r->key,
                        "team a/AWSLogs/123456789012/BedrockModelInvocationLogs/"
                        "us-east-1/2026/04/20/00/20260420T002205123Z_3f9c2a7b1d4e5f60.json.gz");
    assert_string_equal(r->etag, TU_ETAG);
    bm_event_batch_free(b);
    bm_free(body);
}

static void test_array_sample(void **state)
{
    (void)state;
    char *body = tu_read_file(tu_data("pipes-sqs-batch.json"), NULL);
    assert_non_null(body);
    struct bm_event_batch *b = tu_parse_ok(body, 100);
    assert_int_equal(b->form, BM_FORM_SQS_ARRAY);
    assert_true(b->is_sqs);
    assert_int_equal(b->n, 2);
    assert_string_equal(b->msgs[0].message_id, "059f36b4-87a3-44ab-83d2-661975830a7d");
    assert_string_equal(b->msgs[1].message_id, "79406a00-bf15-46ca-978c-22c3613fcb30");
    assert_int_equal(b->msgs[1].receive_count, 3);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(b->msgs[i].parse_err, BM_OK);
        assert_int_equal(b->msgs[i].nrefs, 1);
    }
    /* The second is SNS-wrapped: the same object as the first. */
    assert_string_equal(b->msgs[0].refs[0].key, b->msgs[1].refs[0].key);
    bm_event_batch_free(b);
    bm_free(body);
    /* The forms that were there before keep their form. */
    char *lambda = tu_read_file(tu_data("sqs-lambda-event.json"), NULL);
    char *bare = tu_read_file(tu_data("s3-event.json"), NULL);
    b = tu_parse_ok(lambda, 100);
    assert_int_equal(b->form, BM_FORM_LAMBDA);
    bm_event_batch_free(b);
    b = tu_parse_ok(bare, 100);
    assert_int_equal(b->form, BM_FORM_BARE);
    assert_false(b->is_sqs);
    bm_event_batch_free(b);
    bm_free(lambda);
    bm_free(bare);
}

/* A record's own problems fail its message, not the request: the sender is told by the status,
 * and the message names no object, so nothing is fetched for it. */
static void test_record_problems(void **state)
{
    (void)state;
    static const char *const bodies[] = {"not json", "{\"hello\":1}", "{} {}"};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        char *rec = pipe_record("m-1", bodies[i]);
        struct bm_event_batch *b = tu_parse_ok(rec, 100);
        assert_int_equal(b->form, BM_FORM_SQS_RECORD);
        assert_int_equal(b->n, 1);
        assert_string_equal(b->msgs[0].message_id, "m-1");
        assert_int_equal(b->msgs[0].parse_err, BM_E_MSG_PARSE);
        assert_int_equal(b->msgs[0].nrefs, 0);
        bm_event_batch_free(b);
        bm_free(rec);
    }
    static const char *const per[] = {
        "{\"messageId\":\"a\",\"eventSource\":\"aws:sqs\",\"body\":5}",
        "{\"messageId\":\"a\",\"eventSource\":\"aws:sqs\"}",
        "{\"messageId\":\"a\",\"body\":\"{}\",\"body\":\"{}\"}",
        "{\"messageId\":\"a\",\"body\":\"{}\",\"attributes\":[]}",
    };
    for (size_t i = 0; i < sizeof per / sizeof per[0]; i++) {
        struct bm_event_batch *b = tu_parse_ok(per[i], 100);
        assert_int_equal(b->form, BM_FORM_SQS_RECORD);
        if (b->msgs[0].parse_err != BM_E_MSG_PARSE)
            fail_msg("case %zu accepted", i);
        assert_int_equal(b->msgs[0].nrefs, 0);
        bm_event_batch_free(b);
    }
}

/* What no record can be: the whole body is refused (400), nothing built. */
static void test_hostile_bodies(void **state)
{
    (void)state;
    char *rec = pipe_record("m-1", "{}");
    char *nested = array_of(rec, 1);
    char *twice_nested = array_of(nested, 1);
    size_t cap = strlen(rec) + 64;
    char *mixed = bm_malloc(2 * cap + 4);
    char *with_array = bm_malloc(2 * cap + 4);
    char *trailing = bm_malloc(cap);
    char *no_id = bm_malloc(cap);
    assert_non_null(mixed);
    assert_non_null(with_array);
    assert_non_null(trailing);
    assert_non_null(no_id);
    snprintf(mixed, 2 * cap + 4, "[%s,1]", rec);
    snprintf(with_array, 2 * cap + 4, "[%s,%s]", rec, nested);
    snprintf(trailing, cap, "%s x", rec);
    snprintf(no_id, cap, "[%s,{\"eventSource\":\"aws:sqs\",\"body\":\"{}\"}]", rec);
    const char *const bad[] = {
        "[]",
        " [ ] ",
        "[1,2]",
        "[\"x\"]",
        "[null]",
        "[{}]",                          /* no SQS record */
        "[{\"Records\":[{\"s3\":{}}]}]", /* an array of notifications is no form */
        "[{\"messageId\":\"a\",\"body\":\"{}\"}",
        "[{\"messageId\":\"a\",\"body\":\"{}\"}] []",
        "{\"eventSource\":\"aws:sqs\",\"body\":\"{}\"}",
        "{\"messageId\":\"\",\"eventSource\":\"aws:sqs\",\"body\":\"{}\"}",
        "{\"messageId\":5,\"eventSource\":\"aws:sqs\",\"body\":\"{}\"}",
        "{\"messageId\":\"a\",\"messageId\":\"b\",\"body\":\"{}\"}",
        "{\"messageId\":\"a\",\"body\":5}", /* no string body: no record, and no notification */
        twice_nested,
        mixed,
        with_array,
        trailing,
        no_id,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        tu_parse_err(bad[i], strlen(bad[i]), 100, BM_E_MSG_PARSE);
    bm_free(rec);
    bm_free(nested);
    bm_free(twice_nested);
    bm_free(mixed);
    bm_free(with_array);
    bm_free(trailing);
    bm_free(no_id);
}

/* BATCH_SIZE holds for an array as for a Lambda event: at the cap it parses, one over it is
 * refused (413) by the first scan, before a single allocation. */
static void test_batch_size(void **state)
{
    (void)state;
    char *rec = pipe_record("m", "{\"Service\":\"Amazon S3\",\"Event\":\"s3:TestEvent\"}");
    char *at = array_of(rec, 10);
    char *over = array_of(rec, 11);
    struct bm_event_batch *b = tu_parse_ok(at, 10);
    assert_int_equal(b->n, 10);
    for (size_t i = 0; i < 10; i++)
        assert_int_equal(b->msgs[i].refs[0].kind, BM_REF_TEST_EVENT);
    bm_event_batch_free(b);
    bm_alloc_fail_after(0);
    tu_parse_err(over, strlen(over), 10, BM_E_TOO_LARGE);
    assert_int_equal(bm_alloc_failures(), 0);
    bm_alloc_fail_after(-1);
    bm_free(rec);
    bm_free(at);
    bm_free(over);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    char *bodies[] = {tu_read_file(tu_data("pipes-sqs-record.json"), NULL),
                      tu_read_file(tu_data("pipes-sqs-batch.json"), NULL)};
    for (size_t i = 0; i < 2; i++) {
        assert_non_null(bodies[i]);
        bool done = false;
        for (long n = 0; n < 500 && !done; n++) {
            bm_alloc_fail_after(n);
            struct bm_event_batch *b = NULL;
            bm_err rc = bm_envelope_parse(bodies[i], strlen(bodies[i]), 100, &b, NULL);
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
        bm_free(bodies[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_record_sample), cmocka_unit_test(test_array_sample),
        cmocka_unit_test(test_record_problems),      cmocka_unit_test(test_hostile_bodies),
        cmocka_unit_test(test_batch_size),           cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
