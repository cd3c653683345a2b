/* Envelopes under forged input: BATCH_SIZE and BM_MAX_S3_RECORDS_PER_MESSAGE counted before
 * anything is built (an allocation failure injected from the start never triggers), bodies of
 * millions of tiny elements, trailing data, duplicate and mistyped keys, deep nesting, message
 * size, NUL characters, and allocation failure at every step. */
#include "tu_envelope.h"

/* A body of n elements: prefix, then n - 1 times elem joined by ',', then "]}". */
static char *repeat_body(const char *prefix, const char *elem, size_t n, size_t *len)
{
    struct bm_buf b;
    bm_buf_init(&b, (size_t)1 << 30);
    assert_int_equal(bm_buf_append_str(&b, prefix), BM_OK);
    for (size_t i = 1; i < n; i++) {
        assert_int_equal(bm_buf_append_char(&b, ','), BM_OK);
        assert_int_equal(bm_buf_append_str(&b, elem), BM_OK);
    }
    assert_int_equal(bm_buf_append_str(&b, "]}"), BM_OK);
    *len = b.len;
    return bm_buf_steal(&b);
}

#define SQS_REC "{\"messageId\":\"m0\",\"eventSource\":\"aws:sqs\",\"body\":\"{}\"}"

static void test_batch_size(void **state)
{
    (void)state;
    const char *bodies[] = {"{}", "{}", "{}"};
    char *ev = tu_sqs_event(bodies, 3);
    struct bm_event_batch *b = tu_parse_ok(ev, 3);
    assert_int_equal(b->n, 3);
    bm_event_batch_free(b);
    /* Over the cap: refused with not one allocation made. */
    bm_alloc_fail_after(0);
    tu_parse_err(ev, strlen(ev), 2, BM_E_TOO_LARGE);
    assert_int_equal(bm_alloc_failures(), 0);
    bm_alloc_fail_after(-1);
    bm_free(ev);
}

/* Six MiB of tiny elements, the shape that made a tree of hundreds of megabytes: refused by
 * the scan alone, without allocating. */
static void test_huge_counts(void **state)
{
    (void)state;
    size_t len;
    size_t n = 3 * 1024 * 1024; /* "1," per element: 6 MiB */
    char *ones = repeat_body("{\"Records\":[" SQS_REC, "1", n, &len);
    char *objs = repeat_body("{\"Records\":[" SQS_REC, "{}", n / 2, &len);
    char *bare = repeat_body("{\"Records\":[{\"eventVersion\":\"2.1\"}", "1", n, &len);
    bm_alloc_fail_after(0);
    tu_parse_err(ones, strlen(ones), 10000, BM_E_MSG_PARSE); /* element 1 is no record */
    tu_parse_err(objs, strlen(objs), 10000, BM_E_TOO_LARGE); /* 1.5 M messages */
    tu_parse_err(bare, strlen(bare), 10000, BM_E_TOO_LARGE); /* one event over 256 KiB */
    assert_int_equal(bm_alloc_failures(), 0);
    bm_alloc_fail_after(-1);
    bm_free(ones);
    bm_free(objs);
    bm_free(bare);
}

static void test_s3_records_per_message(void **state)
{
    (void)state;
    char rec[512];
    snprintf(rec, sizeof rec,
             "{\"eventVersion\":\"2.1\",\"eventName\":\"ObjectCreated:Put\",\"s3\":{\"bucket\":"
             "{\"name\":\"" TU_BUCKET "\"},\"object\":{\"key\":\"" TU_KEY "\"}}}");
    char prefix[600];
    snprintf(prefix, sizeof prefix, "{\"Records\":[%s", rec);
    size_t len;
    char *at = repeat_body(prefix, rec, BM_MAX_S3_RECORDS_PER_MESSAGE, &len);
    char *over = repeat_body(prefix, rec, BM_MAX_S3_RECORDS_PER_MESSAGE + 1, &len);
    char *junk = repeat_body(prefix, "1", 2, &len);
    bm_err err;
    char why[256];
    assert_int_equal(tu_one_message(at, &err, why, sizeof why), BM_MAX_S3_RECORDS_PER_MESSAGE);
    assert_int_equal(err, BM_OK);
    /* One message over the cap fails alone, BMAS-010, naming nothing; its neighbour counts. */
    const char *bodies[] = {over, at};
    char *ev = tu_sqs_event(bodies, 2);
    struct bm_event_batch *b = tu_parse_ok(ev, 10);
    assert_int_equal(b->msgs[0].parse_err, BM_E_TOO_LARGE);
    assert_string_equal(bm_err_wire(b->msgs[0].parse_err), "BMAS-010");
    assert_non_null(strstr(b->msgs[0].parse_msg.text, "BM_MAX_S3_RECORDS_PER_MESSAGE"));
    assert_int_equal(b->msgs[0].nrefs, 0);
    assert_int_equal(b->msgs[1].parse_err, BM_OK);
    assert_int_equal(b->msgs[1].nrefs, BM_MAX_S3_RECORDS_PER_MESSAGE);
    bm_event_batch_free(b);
    bm_free(ev);
    /* Bare: the whole request is refused. */
    tu_parse_err(over, strlen(over), 10, BM_E_TOO_LARGE);
    /* The SNS-wrapped form is counted before its Message becomes a tree too. */
    struct bm_buf sns;
    bm_buf_init(&sns, (size_t)1 << 24);
    bm_buf_append_str(&sns, "{\"Type\":\"Notification\",\"Message\":");
    bm_buf_append_json_str(&sns, over, strlen(over));
    bm_buf_append_char(&sns, '}');
    tu_one_message(sns.data, &err, why, sizeof why);
    assert_int_equal(err, BM_E_TOO_LARGE);
    bm_buf_cleanup(&sns);
    tu_one_message(junk, &err, why, sizeof why);
    assert_int_equal(err, BM_E_MSG_PARSE);
    bm_free(at);
    bm_free(over);
    bm_free(junk);
}

static void test_trailing_data(void **state)
{
    (void)state;
    char *s3 = tu_read_file(tu_data("s3-event.json"), NULL);
    const char *bodies[] = {s3};
    char *ev = tu_sqs_event(bodies, 1);
    static const char *const tails[] = {"x", "{}", "]", ",", "\"\"", "0", "\n{\"Records\":[]}"};
    for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
        struct bm_buf b;
        bm_buf_init(&b, (size_t)1 << 24);
        bm_buf_append_str(&b, ev);
        bm_buf_append_str(&b, tails[i]);
        tu_parse_err(b.data, b.len, 10, BM_E_MSG_PARSE);
        bm_buf_reset(&b);
        bm_buf_append_str(&b, s3); /* bare */
        bm_buf_append_str(&b, tails[i]);
        tu_parse_err(b.data, b.len, 10, BM_E_MSG_PARSE);
        bm_buf_reset(&b);
        bm_buf_append_str(&b, s3); /* inside a message body: that message fails */
        bm_buf_append_str(&b, tails[i]);
        bm_err err;
        char why[256];
        tu_one_message(b.data, &err, why, sizeof why);
        assert_int_equal(err, BM_E_MSG_PARSE);
        bm_buf_cleanup(&b);
    }
    /* Whitespace after the value is not data. */
    struct bm_buf b;
    bm_buf_init(&b, (size_t)1 << 24);
    bm_buf_append_str(&b, ev);
    bm_buf_append_str(&b, " \r\n\t");
    struct bm_event_batch *x = tu_parse_ok(b.data, 10);
    assert_int_equal(x->msgs[0].nrefs, 1);
    bm_event_batch_free(x);
    /* Nor is a NUL byte after it: the length is the body's. */
    tu_parse_err(ev, strlen(ev) + 1, 10, BM_E_MSG_PARSE);
    bm_buf_cleanup(&b);
    bm_free(ev);
    bm_free(s3);
}

/* Keys that matter given twice: JSON readers disagree on which wins, so the message (or the
 * request, when the message cannot be named) is refused. An escaped spelling is the same key. */
static void test_duplicate_keys(void **state)
{
    (void)state;
    const char *r1 = "{\"Records\":[" SQS_REC "],\"Records\":[]}";
    tu_parse_err(r1, strlen(r1), 10, BM_E_MSG_PARSE);
    const char *r2 = "{\"Records\":[" SQS_REC "],\"Rec\\u006frds\":[" SQS_REC "]}";
    tu_parse_err(r2, strlen(r2), 10, BM_E_MSG_PARSE);
    const char *id2 = "{\"Records\":[{\"messageId\":\"a\",\"messageId\":\"b\",\"body\":\"{}\"}]}";
    tu_parse_err(id2, strlen(id2), 10, BM_E_MSG_PARSE);
    const char *body2 = "{\"Records\":[{\"messageId\":\"a\",\"body\":\"{}\",\"body\":\"{}\"},"
                        "{\"messageId\":\"b\",\"body\":\"{}\",\"attributes\":{"
                        "\"ApproximateReceiveCount\":\"1\",\"ApproximateReceiveCount\":\"9\"}}]}";
    struct bm_event_batch *b = tu_parse_ok(body2, 10);
    assert_int_equal(b->n, 2);
    assert_int_equal(b->msgs[0].parse_err, BM_E_MSG_PARSE);
    assert_int_equal(b->msgs[1].parse_err, BM_E_MSG_PARSE);
    assert_string_equal(b->msgs[1].message_id, "b");
    bm_event_batch_free(b);
    static const char *const inner[] = {
        "{\"Records\":[{\"eventVersion\":\"2.1\",\"eventName\":\"ObjectCreated:Put\",\"s3\":{"
        "\"bucket\":{\"name\":\"" TU_BUCKET "\",\"name\":\"other-bucket\"},\"object\":{\"key\":"
        "\"" TU_KEY "\"}}}]}",
        "{\"Records\":[{\"eventVersion\":\"2.1\",\"eventName\":\"ObjectCreated:Put\",\"s3\":{"
        "\"bucket\":{\"name\":\"" TU_BUCKET "\"},\"object\":{\"key\":\"" TU_KEY "\",\"k\\u0065y\":"
        "\"other.json.gz\"}}}]}",
        "{\"Records\":[{\"eventVersion\":\"2.1\",\"eventName\":\"ObjectCreated:Put\",\"s3\":{"
        "\"bucket\":{\"name\":\"" TU_BUCKET "\"},\"object\":{\"key\":\"" TU_KEY "\",\"eTag\":"
        "\"" TU_ETAG "\",\"eTag\":\"" TU_ETAG "\"}}}]}",
        "{\"Records\":[{\"eventVersion\":\"2.1\",\"eventName\":\"ObjectCreated:Put\",\"s3\":{},"
        "\"s3\":{}}]}",
        "{\"Records\":[],\"Records\":[]}",
        "{\"Type\":\"Notification\",\"Message\":\"{}\",\"Message\":\"{}\"}",
        "{\"detail-type\":\"Object Created\",\"source\":\"aws.s3\",\"detail\":{},\"detail\":{}}",
    };
    for (size_t i = 0; i < sizeof inner / sizeof inner[0]; i++) {
        bm_err err;
        char why[256];
        tu_one_message(inner[i], &err, why, sizeof why);
        if (err != BM_E_MSG_PARSE)
            fail_msg("case %zu accepted", i);
        assert_non_null(strstr(why, "twice"));
    }
}

/* Each element of its type; a wrong one fails that message (BMAS-005), or the request when the
 * message cannot be named. */
static void test_wrong_types(void **state)
{
    (void)state;
    static const char *const whole[] = {
        "{\"Records\":[" SQS_REC ",1]}",
        "{\"Records\":[" SQS_REC ",\"x\"]}",
        "{\"Records\":[" SQS_REC ",[]]}",
        "{\"Records\":[" SQS_REC ",null]}",
        "{\"Records\":[" SQS_REC ",{\"messageId\":5,\"body\":\"{}\"}]}",
        "{\"Records\":[" SQS_REC ",{\"body\":\"{}\"}]}",
        "{\"Records\":[" SQS_REC ",]}",
        "[[" SQS_REC "]]", /* an array of SQS records is a form (test_core_envelope_pipes) */
        "\"Records\"",
    };
    for (size_t i = 0; i < sizeof whole / sizeof whole[0]; i++)
        tu_parse_err(whole[i], strlen(whole[i]), 10, BM_E_MSG_PARSE);
    const char *per = "{\"Records\":[{\"messageId\":\"a\",\"eventSource\":\"aws:sqs\",\"body\":5},"
                      "{\"messageId\":\"b\",\"body\":\"{}\",\"attributes\":[]},"
                      "{\"messageId\":\"c\",\"body\":\"{}\",\"attributes\":{"
                      "\"ApproximateReceiveCount\":3}}]}";
    struct bm_event_batch *b = tu_parse_ok(per, 10);
    assert_int_equal(b->n, 3);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(b->msgs[i].parse_err, BM_E_MSG_PARSE);
    bm_event_batch_free(b);
    static const char *const inner[] = {
        "{\"Records\":{}}",
        "{\"Records\":[1]}",
        "{\"Records\":[{\"eventVersion\":2.1,\"eventName\":\"ObjectCreated:Put\"}]}",
        "{\"Records\":[{\"eventVersion\":\"2.1\",\"eventName\":\"ObjectCreated:Put\",\"s3\":[]}]}",
        "{\"Records\":[{\"eventVersion\":\"2.1\",\"eventName\":\"ObjectCreated:Put\",\"s3\":{"
        "\"bucket\":{\"name\":\"" TU_BUCKET "\"},\"object\":{\"key\":7}}}]}",
        "{\"Records\":[{\"eventVersion\":\"2.1\",\"eventName\":\"ObjectCreated:Put\",\"s3\":{"
        "\"bucket\":{\"name\":\"" TU_BUCKET "\"},\"object\":{\"key\":\"" TU_KEY "\",\"size\":"
        "\"5\"}}}]}",
        "{\"Records\":[{\"eventVersion\":\"2.1\",\"eventName\":\"ObjectCreated:Put\",\"s3\":{"
        "\"bucket\":{\"name\":\"" TU_BUCKET "\"},\"object\":{\"key\":\"" TU_KEY "\",\"versionId\":"
        "1}}}]}",
        "{\"Type\":\"Notification\",\"Message\":{}}",
        "{\"Type\":\"Notification\",\"Message\":\"[]\"}",
        "{\"detail-type\":\"Object Created\",\"source\":\"aws.s3\",\"detail\":{\"bucket\":{"
        "\"name\":\"" TU_BUCKET "\"},\"object\":{\"key\":\"" TU_KEY "\",\"etag\":[]}}}",
        "{\"Event\":\"s3:TestEvent\",\"Bucket\":5}",
        "[]",
        "\"{}\"",
    };
    for (size_t i = 0; i < sizeof inner / sizeof inner[0]; i++) {
        bm_err err;
        char why[256];
        tu_one_message(inner[i], &err, why, sizeof why);
        if (err != BM_E_MSG_PARSE)
            fail_msg("case %zu accepted", i);
    }
}

/* Nesting past the scanner's 512 levels is refused without recursion to match; below it,
 * in a member nobody reads, it is only skipped. */
static void test_deep_nesting(void **state)
{
    (void)state;
    size_t depth = 100000;
    struct bm_buf b;
    bm_buf_init(&b, (size_t)1 << 24);
    bm_buf_append_str(&b, "{\"x\":");
    for (size_t i = 0; i < depth; i++)
        bm_buf_append_char(&b, '[');
    for (size_t i = 0; i < depth; i++)
        bm_buf_append_char(&b, ']');
    bm_buf_append_str(&b, ",\"Records\":[" SQS_REC "]}");
    tu_parse_err(b.data, b.len, 10, BM_E_MSG_PARSE);
    bm_err err;
    char why[256];
    tu_one_message(b.data, &err, why, sizeof why); /* 200 KB: under the message cap */
    assert_int_equal(err, BM_E_MSG_PARSE);
    bm_buf_reset(&b);
    bm_buf_append_str(&b, "{\"x\":");
    for (size_t i = 0; i < 500; i++)
        bm_buf_append_char(&b, '[');
    for (size_t i = 0; i < 500; i++)
        bm_buf_append_char(&b, ']');
    bm_buf_append_str(&b, ",\"Records\":[" SQS_REC "]}");
    struct bm_event_batch *x = tu_parse_ok(b.data, 10);
    assert_int_equal(x->n, 1);
    bm_event_batch_free(x);
    bm_buf_cleanup(&b);
}

/* A message body is at most BM_MAX_MESSAGE_BYTES once unescaped, whatever its escaped size. */
static void test_message_size(void **state)
{
    (void)state;
    char *s3 = tu_read_file(tu_data("s3-event.json"), NULL);
    size_t base = (size_t)(strrchr(s3, '}') - s3); /* before the closing brace */
    struct bm_buf big;
    bm_buf_init(&big, (size_t)1 << 24);
    bm_buf_append(&big, s3, base);
    bm_buf_append_str(&big, ",\"pad\":\"");
    /* Quotes escape to two bytes: this body is under the cap, its SQS string over it. */
    while (big.len < BM_MAX_MESSAGE_BYTES - 16)
        bm_buf_append_str(&big, "\\\"");
    bm_buf_append_str(&big, "\"}");
    assert_true(big.len <= BM_MAX_MESSAGE_BYTES);
    bm_err err;
    char why[256];
    size_t nrefs = tu_one_message(big.data, &err, why, sizeof why);
    if (err != BM_OK)
        fail_msg("%s", why);
    assert_int_equal(nrefs, 1);
    bm_buf_reset(&big);
    bm_buf_append(&big, s3, base);
    bm_buf_append_str(&big, ",\"pad\":\"");
    while (big.len <= BM_MAX_MESSAGE_BYTES)
        bm_buf_append_str(&big, "xxxxxxxx");
    bm_buf_append_str(&big, "\"}");
    tu_one_message(big.data, &err, why, sizeof why);
    assert_int_equal(err, BM_E_TOO_LARGE);
    assert_string_equal(bm_err_wire(err), "BMAS-010");
    bm_buf_cleanup(&big);
    bm_free(s3);
}

/* A NUL, raw or escaped, would cut a name short in cJSON and name another object. */
static void test_nul_characters(void **state)
{
    (void)state;
    bm_err err;
    char why[256];
    char *a = tu_s3_event(TU_BUCKET, "\"key\":\"" TU_KEY "\\u0000.x\"");
    tu_one_message(a, &err, why, sizeof why);
    assert_int_equal(err, BM_E_MSG_PARSE);
    /* An escaped backslash before "u0000" is text, not a NUL. */
    char *b = tu_s3_event(TU_BUCKET, "\"key\":\"" TU_KEY "\",\"x\":\"\\\\u0000\"");
    assert_int_equal(tu_one_message(b, &err, why, sizeof why), 1);
    assert_int_equal(err, BM_OK);
    const char *eb = "{\"detail-type\":\"Object Created\",\"source\":\"aws.s3\",\"detail\":{"
                     "\"bucket\":{\"name\":\"" TU_BUCKET "\"},\"object\":{\"key\":\"a\\u0000b\"}}}";
    tu_one_message(eb, &err, why, sizeof why);
    assert_int_equal(err, BM_E_MSG_PARSE);
    bm_free(a);
    bm_free(b);
}

/* Allocation failure at every step of a batch of every kind: a clean BM_E_NOMEM, no leak
 * (ASan), never a half-built batch. */
static void test_alloc_failures(void **state)
{
    (void)state;
    static const char *const files[] = {"s3-event.json", "sns-wrapped-body.txt",
                                        "eventbridge-object-created.json", "s3-test-event.json"};
    char *bodies[5];
    for (size_t i = 0; i < 4; i++)
        assert_non_null(bodies[i] = tu_read_file(tu_data(files[i]), NULL));
    bodies[4] = "{\"nope\":1}";
    char *ev = tu_sqs_event((const char *const *)bodies, 5);
    bool done = false;
    long steps = 0;
    for (long n = 0; n < 1000 && !done; n++) {
        bm_alloc_fail_after(n);
        struct bm_event_batch *b = NULL;
        bm_err rc = bm_envelope_parse(ev, strlen(ev), 10, &b, NULL);
        long failures = bm_alloc_failures();
        bm_alloc_fail_after(-1);
        if (failures == 0) {
            assert_int_equal(rc, BM_OK);
            assert_int_equal(b->n, 5);
            assert_int_equal(b->msgs[4].parse_err, BM_E_MSG_PARSE);
            done = true;
        } else {
            assert_int_equal(rc, BM_E_NOMEM);
            assert_null(b);
            steps++;
        }
        bm_event_batch_free(b);
    }
    assert_true(done);
    assert_true(steps > 20);
    bm_free(ev);
    for (size_t i = 0; i < 4; i++)
        bm_free(bodies[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_size),
        cmocka_unit_test(test_huge_counts),
        cmocka_unit_test(test_s3_records_per_message),
        cmocka_unit_test(test_trailing_data),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_message_size),
        cmocka_unit_test(test_nul_characters),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
