/* Unit tests for the S3 event notifications: the event JSON byte for byte (against the shape of
 * tests/data/s3-event.json) and which configurations fire for which keys. */
#include "tu.h"

#include "emulator/emu_int.h"

static void test_event_json(void **state)
{
    (void)state;
    const char key[] = "team a/\xC3\xBC+x.json.gz";
    struct emu_event ev = {
        .region = "us-east-1",
        .event_name = "ObjectCreated:Put",
        .time_ms = 1776644525482, /* 2026-04-20T00:22:05.482Z */
        .config_id = "bedrock-logs-to-sqs",
        .bucket = "my-bedrock-logs",
        .key = key,
        .key_len = sizeof key - 1,
        .size = 18342,
        .etag = "d41d8cd98f00b204e9800998ecf8427e",
        .sequencer = 0x55AED6DCD90281E5ULL,
        .request_id = "C3D13FE58DE4C810",
    };
    struct bm_buf b;
    bm_buf_init(&b, 8192);
    assert_int_equal(bm__emu_s3_event_json(&ev, &b), BM_OK);
    assert_string_equal(
        b.data, "{\"Records\":[{\"eventVersion\":\"2.1\",\"eventSource\":\"aws:s3\",\"awsRegion\":"
                "\"us-east-1\",\"eventTime\":\"2026-04-20T00:22:05.482Z\",\"eventName\":"
                "\"ObjectCreated:Put\",\"userIdentity\":{\"principalId\":\"AWS:000000000000\"},"
                "\"requestParameters\":{\"sourceIPAddress\":\"127.0.0.1\"},\"responseElements\":"
                "{\"x-amz-request-id\":\"C3D13FE58DE4C810\",\"x-amz-id-2\":\"C3D13FE58DE4C810\"},"
                "\"s3\":{\"s3SchemaVersion\":\"1.0\",\"configurationId\":\"bedrock-logs-to-sqs\","
                "\"bucket\":{\"name\":\"my-bedrock-logs\",\"ownerIdentity\":{\"principalId\":"
                "\"000000000000\"},\"arn\":\"arn:aws:s3:::my-bedrock-logs\"},\"object\":{\"key\":"
                "\"team+a/%C3%BC%2Bx.json.gz\",\"size\":18342,\"eTag\":"
                "\"d41d8cd98f00b204e9800998ecf8427e\",\"sequencer\":\"0055AED6DCD90281E5\"}}}]}");
    /* Removals carry neither size nor eTag. */
    bm_buf_reset(&b);
    ev.event_name = "ObjectRemoved:Delete";
    ev.etag = NULL;
    assert_int_equal(bm__emu_s3_event_json(&ev, &b), BM_OK);
    assert_null(strstr(b.data, "eTag"));
    assert_null(strstr(b.data, "size"));
    assert_non_null(strstr(b.data, "\"eventName\":\"ObjectRemoved:Delete\""));
    bm_buf_cleanup(&b);
}

static void test_qconf_matches(void **state)
{
    (void)state;
    char *all[] = {"s3:ObjectCreated:*"};
    char *put[] = {"s3:ObjectCreated:Put"};
    char *both[] = {"s3:ObjectRemoved:*", "s3:ObjectCreated:Copy"};
    static const struct {
        int conf;
        const char *prefix, *suffix, *event, *key;
        bool match;
    } cases[] = {
        {0, NULL, NULL, "ObjectCreated:Put", "any", true},
        {0, NULL, NULL, "ObjectCreated:Copy", "any", true},
        {0, NULL, NULL, "ObjectRemoved:Delete", "any", false},
        {1, NULL, NULL, "ObjectCreated:Put", "any", true},
        {1, NULL, NULL, "ObjectCreated:Copy", "any", false},
        {2, NULL, NULL, "ObjectRemoved:Delete", "any", true},
        {2, NULL, NULL, "ObjectCreated:Copy", "any", true},
        {2, NULL, NULL, "ObjectCreated:Put", "any", false},
        {0, "team a/", ".json.gz", "ObjectCreated:Put", "team a/x.json.gz", true},
        {0, "team a/", ".json.gz", "ObjectCreated:Put", "team a/x.txt", false},
        {0, "team a/", ".json.gz", "ObjectCreated:Put", "team b/x.json.gz", false},
        {0, "team a/", ".json.gz", "ObjectCreated:Put", "team a", false},
        {0, NULL, ".gz", "ObjectCreated:Put", "gz", false},
        {0, "Team", NULL, "ObjectCreated:Put", "team", false}, /* case-sensitive */
    };
    char **events[] = {all, put, both};
    size_t n_events[] = {1, 1, 2};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct emu_qconf c = {
            .events = events[cases[i].conf],
            .n_events = n_events[cases[i].conf],
            .prefix = (char *)cases[i].prefix,
            .suffix = (char *)cases[i].suffix,
        };
        assert_int_equal(
            bm__emu_qconf_matches(&c, cases[i].event, cases[i].key, strlen(cases[i].key)),
            cases[i].match);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_json),
        cmocka_unit_test(test_qconf_matches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
