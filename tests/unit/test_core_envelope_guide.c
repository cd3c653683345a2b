/* S3 records as people write them by hand: the Lambda guide's "Test with Sample Event" carries
 * only {"s3":{"bucket":{"name"},"object":{"key"}}}, no eventVersion and no eventName. An "s3"
 * object naming a bucket and a key is enough; eventVersion and eventName are checked when
 * present (2.x; only ObjectCreated:* counts, other events are acknowledged, not failed), and
 * every other strictness of the parser (S3's name rules, duplicate keys, types, limits) holds
 * for these records as for full ones. */
#include "tu_envelope.h"

/* The guide's test event, byte for byte (bucket name as the guide has it). */
static const char guide_event[] =
    "{\n  \"Records\": [\n    {\n      \"messageId\": \"test-message-id\",\n      \"body\": "
    "\"{\\\"Records\\\":[{\\\"s3\\\":{\\\"bucket\\\":{\\\"name\\\":\\\"your-bedrock-logs-"
    "bucket\\\"},\\\"object\\\":{\\\"key\\\":\\\"bedrock-logs/test-invocation.json\\\"}}}]}\"\n"
    "    }\n  ]\n}\n";

static void test_guide_sample_event(void **state)
{
    (void)state;
    struct bm_event_batch *b = tu_parse_ok(guide_event, 10);
    assert_true(b->is_sqs);
    assert_int_equal(b->n, 1);
    const struct bm_message *m = &b->msgs[0];
    assert_string_equal(m->message_id, "test-message-id");
    if (m->parse_err != BM_OK)
        fail_msg("guide event refused: %s", m->parse_msg.text);
    assert_int_equal(m->nrefs, 1);
    assert_int_equal(m->refs[0].kind, BM_REF_OBJECT);
    assert_string_equal(m->refs[0].bucket, "your-bedrock-logs-bucket");
    assert_string_equal(m->refs[0].key, "bedrock-logs/test-invocation.json");
    assert_string_equal(m->refs[0].event_name, "");
    assert_string_equal(m->refs[0].etag, "");
    assert_string_equal(m->refs[0].version_id, "");
    bm_event_batch_free(b);
}

/* The same body posted bare, and the record's other optional members. */
static void test_minimal_record_bare(void **state)
{
    (void)state;
    struct bm_event_batch *b = tu_parse_ok(
        "{\"Records\":[{\"s3\":{\"bucket\":{\"name\":\"bkt\"},\"object\":{\"key\":\"a+b/"
        "x.json\"}}},"
        "{\"eventVersion\":\"2.3\",\"s3\":{\"bucket\":{\"name\":\"bkt\"},\"object\":{\"key\":\"y\","
        "\"eTag\":\"" TU_ETAG "\",\"size\":7}}}]}",
        10);
    assert_false(b->is_sqs);
    assert_int_equal(b->msgs[0].parse_err, BM_OK);
    assert_int_equal(b->msgs[0].nrefs, 2);
    assert_string_equal(b->msgs[0].refs[0].key, "a b/x.json"); /* still form-decoded */
    assert_int_equal(b->msgs[0].refs[1].kind, BM_REF_OBJECT);
    assert_string_equal(b->msgs[0].refs[1].etag, TU_ETAG);
    assert_int_equal(b->msgs[0].refs[1].size, 7);
    bm_event_batch_free(b);
}

/* eventName, when present, decides: ObjectCreated:* counts, anything else is acknowledged. */
static void test_event_name_decides(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        enum bm_ref_kind kind;
    } cases[] = {
        {"ObjectCreated:Put", BM_REF_OBJECT},
        {"ObjectCreated:Copy", BM_REF_OBJECT},
        {"ObjectCreated:CompleteMultipartUpload", BM_REF_OBJECT},
        {"ObjectRemoved:Delete", BM_REF_IGNORED},
        {"ObjectRemoved:DeleteMarkerCreated", BM_REF_IGNORED},
        {"ObjectRestore:Completed", BM_REF_IGNORED},
        {"LifecycleExpiration:Delete", BM_REF_IGNORED},
        {"objectcreated:put", BM_REF_IGNORED}, /* S3's names are case-sensitive */
        {"", BM_REF_IGNORED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[512], why[256];
        bm_err err;
        snprintf(body, sizeof body,
                 "{\"Records\":[{\"eventName\":\"%s\",\"s3\":{\"bucket\":{\"name\":\"bkt\"},"
                 "\"object\":{\"key\":\"k.json\"}}}]}",
                 cases[i].name);
        char *ev = tu_sqs_event((const char *const[]){body}, 1);
        struct bm_event_batch *b = tu_parse_ok(ev, 10);
        err = b->msgs[0].parse_err;
        snprintf(why, sizeof why, "%s", b->msgs[0].parse_msg.text);
        if (err != BM_OK)
            fail_msg("case %s: %s", cases[i].name, why);
        assert_int_equal(b->msgs[0].nrefs, 1);
        if (b->msgs[0].refs[0].kind != cases[i].kind)
            fail_msg("case '%s': kind %d", cases[i].name, (int)b->msgs[0].refs[0].kind);
        assert_string_equal(b->msgs[0].refs[0].event_name, cases[i].name);
        bm_event_batch_free(b);
        bm_free(ev);
    }
}

/* Optional is not lax: what is present is checked as before, and what identifies the object
 * is still required. */
static void test_still_strict(void **state)
{
    (void)state;
#define OBJ "\"s3\":{\"bucket\":{\"name\":\"bkt\"},\"object\":{\"key\":\"k\"}}"
    static const struct {
        const char *body, *why;
    } cases[] = {
        {"{\"Records\":[{\"eventVersion\":\"3.0\"," OBJ "}]}", "eventVersion"},
        {"{\"Records\":[{\"eventVersion\":2.1," OBJ "}]}", "\"eventVersion\" is not a string"},
        {"{\"Records\":[{\"eventName\":1," OBJ "}]}", "\"eventName\" is not a string"},
        {"{\"Records\":[{\"eventName\":null," OBJ "}]}", "\"eventName\" is not a string"},
        {"{\"Records\":[{\"eventName\":\"ObjectRemoved:Delete\",\"eventName\":"
         "\"ObjectCreated:Put\"," OBJ "}]}",
         "\"eventName\" appears twice"},
        {"{\"Records\":[{\"eventVersion\":\"2.1\",\"eventVersion\":\"2.1\"," OBJ "}]}",
         "\"eventVersion\" appears twice"},
        {"{\"Records\":[{" OBJ "," OBJ "}]}", "\"s3\" appears twice"},
        {"{\"Records\":[{}]}", "no \"s3\""},
        {"{\"Records\":[{\"s3\":{\"object\":{\"key\":\"k\"}}}]}", "no \"bucket\""},
        {"{\"Records\":[{\"s3\":{\"bucket\":{\"name\":\"bkt\"}}}]}", "no \"object\""},
        {"{\"Records\":[{\"s3\":{\"bucket\":{},\"object\":{\"key\":\"k\"}}}]}", "no \"name\""},
        {"{\"Records\":[{\"s3\":{\"bucket\":{\"name\":\"bkt\"},\"object\":{}}}]}", "no \"key\""},
        {"{\"Records\":[{\"s3\":{\"bucket\":{\"name\":\"bkt\"},\"object\":{\"key\":\"a\","
         "\"key\":\"b\"}}}]}",
         "\"key\" appears twice"},
        {"{\"Records\":[{\"s3\":{\"bucket\":{\"name\":\"Bkt\"},\"object\":{\"key\":\"k\"}}}]}",
         "bucket name refused"},
        {"{\"Records\":[{\"s3\":{\"bucket\":{\"name\":\"localhost:8080\"},\"object\":{\"key\":"
         "\"k\"}}}]}",
         "bucket name refused"},
        {"{\"Records\":[{\"s3\":{\"bucket\":{\"name\":\"bkt\"},\"object\":{\"key\":\"\"}}}]}",
         "object key refused"},
        {"{\"Records\":[{\"s3\":{\"bucket\":{\"name\":\"bkt\"},\"object\":{\"key\":\"k%zz\"}}}]}",
         "URL-encoded"},
        {"{\"Records\":[{\"s3\":{\"bucket\":{\"name\":\"bkt\"},\"object\":{\"key\":\"k\","
         "\"versionId\":\"a b\"}}}]}",
         "versionId refused"},
        /* A good record does not carry a bad one: the message fails whole, nothing fetched. */
        {"{\"Records\":[{" OBJ "},{\"s3\":{\"bucket\":{\"name\":\"bkt\"}}}]}", "no \"object\""},
    };
#undef OBJ
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char why[256];
        bm_err err;
        tu_one_message(cases[i].body, &err, why, sizeof why);
        if (err != BM_E_MSG_PARSE || strstr(why, cases[i].why) == NULL)
            fail_msg("case %zu: got %s (%s), want BMAS-005 (%s)", i, bm_err_str(err), why,
                     cases[i].why);
        assert_string_equal(bm_err_wire(err), "BMAS-005");
    }
}

/* The record limit counts minimal records as it counts full ones. */
static void test_limit_holds(void **state)
{
    (void)state;
    static const char rec[] = "{\"s3\":{\"bucket\":{\"name\":\"bkt\"},\"object\":{\"key\":\"k\"}}}";
    struct bm_buf b;
    bm_buf_init(&b, (size_t)1 << 24);
    assert_int_equal(bm_buf_append_str(&b, "{\"Records\":["), BM_OK);
    for (int i = 0; i <= BM_MAX_S3_RECORDS_PER_MESSAGE; i++)
        assert_int_equal(bm_buf_appendf(&b, "%s%s", i ? "," : "", rec), BM_OK);
    assert_int_equal(bm_buf_append_str(&b, "]}"), BM_OK);
    char why[256];
    bm_err err;
    tu_one_message(b.data, &err, why, sizeof why);
    assert_int_equal(err, BM_E_TOO_LARGE);
    assert_non_null(strstr(why, "BM_MAX_S3_RECORDS_PER_MESSAGE"));
    bm_buf_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_guide_sample_event), cmocka_unit_test(test_minimal_record_bare),
        cmocka_unit_test(test_event_name_decides), cmocka_unit_test(test_still_strict),
        cmocka_unit_test(test_limit_holds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
