/* The record reader: every field of docs/formats.md 1.3 in any order, token edge cases, escapes,
 * and malformed JSON. */
#include "tu.h"

#include "core/core_int.h"

static bm_err parse(const char *line, struct bm__record *r)
{
    struct bm_errmsg em;
    return bm__record_parse(line, strlen(line), NULL, r, &em);
}

static void assert_slice(struct bm__slice s, const char *want)
{
    if (want == NULL) {
        assert_null(s.p);
        return;
    }
    assert_non_null(s.p);
    if (s.len != strlen(want) || memcmp(s.p, want, s.len) != 0)
        fail_msg("got \"%.*s\", want \"%s\"", (int)s.len, s.p, want);
}

static void test_sample_lines(void **state)
{
    (void)state;
    size_t len;
    char *data = tu_read_file(tu_data("bedrock-log-sample.jsonl"), &len);
    assert_non_null(data);
    static const struct {
        const char *model, *region, *inf, *op;
        uint64_t in, out, cr, cw;
    } want[] = {
        {"us.anthropic.claude-sonnet-4-5-20250929-v1:0", "us-east-1", "us-east-2", "Converse", 255,
         113, 0, 0},
        {"arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6",
         "us-east-1", "us-west-2", "InvokeModelWithResponseStream", 6, 167, 0, 225913},
        {"arn:aws:bedrock:us-east-1:123456789012:inference-profile/"
         "global.anthropic.claude-opus-4-5-20251101-v1:0",
         "us-east-1", "ap-southeast-2", "ConverseStream", 3, 52, 24479, 0},
        {"amazon.titan-embed-text-v2:0", "us-east-1", NULL, "InvokeModel", 5, 0, 0, 0},
    };
    char *line = data;
    struct bm__record r;
    for (size_t i = 0; i < 4; i++) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        struct bm_errmsg em;
        assert_int_equal(bm__record_parse(line, (size_t)(nl - line), NULL, &r, &em), BM_OK);
        assert_slice(r.model_id, want[i].model);
        assert_slice(r.region, want[i].region);
        assert_slice(r.inference_region, want[i].inf);
        assert_slice(r.operation, want[i].op);
        assert_int_equal(r.input_tokens, want[i].in);
        assert_int_equal(r.output_tokens, want[i].out);
        assert_int_equal(r.cache_read_tokens, want[i].cr);
        assert_int_equal(r.cache_write_tokens, want[i].cw);
        line = nl + 1;
    }
    bm_free(data);
}

static void test_field_order_and_noise(void **state)
{
    (void)state;
    struct bm__record r;
    /* Fields in reverse order, nested noise that contains our key names, whitespace. */
    const char *line =
        " { \"output\" : {\"outputBodyJson\":{\"outputTokenCount\":999,\"x\":[1,2,{\"a\":null}]},"
        "\"outputTokenCount\" : 7 } , \"input\":{\"inputBodyJson\":{\"inputTokenCount\":5,"
        "\"modelId\":\"fake\"},\"inputTokenCount\":11,\"cacheWriteInputTokenCount\":2,"
        "\"cacheReadInputTokenCount\":3},\"modelId\":\"amazon.nova-lite-v1:0\","
        "\"requestMetadata\":{\"timestamp\":\"nope\"},\"region\":\"eu-west-1\","
        "\"timestamp\":\"2026-04-20T00:17:31Z\",\"extra\":[true,false,null,-1.5e3,\"s\"]}  ";
    assert_int_equal(parse(line, &r), BM_OK);
    assert_slice(r.model_id, "amazon.nova-lite-v1:0");
    assert_slice(r.timestamp, "2026-04-20T00:17:31Z");
    assert_slice(r.region, "eu-west-1");
    assert_slice(r.operation, NULL);
    assert_int_equal(r.input_tokens, 11);
    assert_int_equal(r.output_tokens, 7);
    assert_int_equal(r.cache_read_tokens, 3);
    assert_int_equal(r.cache_write_tokens, 2);
}

static void test_escapes(void **state)
{
    (void)state;
    struct bm__record r;
    /* Escaped strings in kept fields are unescaped; escaped keys still match. */
    const char *line = "{\"timestamp\":\"2026-04-20T00:17:31Z\",\"model\\u0049d\":"
                       "\"arn:aws:bedrock:us-east-1::foundation-model\\/amazon.x\","
                       "\"region\":\"us-\\u0065ast-1\",\"input\":{\"inputBodyJson\":{\"t\":"
                       "\"a \\\"quoted\\\" \\\\ prompt \\n\\u00e9\\ud83d\\ude00 }{][\"},"
                       "\"inputTokenCount\":4}}";
    assert_int_equal(parse(line, &r), BM_OK);
    assert_slice(r.model_id, "arn:aws:bedrock:us-east-1::foundation-model/amazon.x");
    assert_slice(r.region, "us-east-1");
    assert_int_equal(r.input_tokens, 4);
    /* A surrogate pair in a kept field becomes one UTF-8 code point. */
    assert_int_equal(parse("{\"timestamp\":\"t\",\"modelId\":\"m\\ud83d\\ude00\"}", &r), BM_OK);
    assert_slice(r.model_id, "m\xF0\x9F\x98\x80");
}

static void test_tokens(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        bm_err rc;
        uint64_t v;
    } cases[] = {
        {"0", BM_OK, 0},
        {"12345", BM_OK, 12345},
        {"9007199254740991", BM_OK, 9007199254740991ULL}, /* 2^53 - 1 */
        {"12.0", BM_OK, 12},
        {"1.2e3", BM_OK, 1200},
        {"-0", BM_OK, 0},
        {"-1", BM_E_TOKENS, 0},
        {"12.5", BM_E_TOKENS, 0},
        {"1e-1", BM_E_TOKENS, 0},
        {"9007199254740992", BM_E_TOKENS, 0},
        {"99999999999999999999999", BM_E_TOKENS, 0},
        {"1e400", BM_E_TOKENS, 0},
        {"\"12\"", BM_E_TOKENS, 0},
        {"null", BM_E_TOKENS, 0},
        {"true", BM_E_TOKENS, 0},
        {"[1]", BM_E_TOKENS, 0},
        {"{\"n\":1}", BM_E_TOKENS, 0},
        {"01", BM_E_LOG_FORMAT, 0},
        {"1.", BM_E_LOG_FORMAT, 0},
        {"-", BM_E_LOG_FORMAT, 0},
        {"+1", BM_E_LOG_FORMAT, 0},
        {"NaN", BM_E_LOG_FORMAT, 0},
    };
    static const char *const fields[] = {"inputTokenCount", "cacheReadInputTokenCount",
                                         "cacheWriteInputTokenCount", "outputTokenCount"};
    for (size_t f = 0; f < 4; f++) {
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            char line[512];
            snprintf(line, sizeof line,
                     "{\"timestamp\":\"2026-04-20T00:17:31Z\",\"modelId\":\"a.b\",\"%s\":"
                     "{\"%s\":%s}}",
                     f == 3 ? "output" : "input", fields[f], cases[i].value);
            struct bm__record r;
            bm_err rc = parse(line, &r);
            if (rc != cases[i].rc)
                fail_msg("%s=%s: rc %s, want %s", fields[f], cases[i].value, bm_err_wire(rc),
                         bm_err_wire(cases[i].rc));
            if (rc == BM_OK) {
                uint64_t got[] = {r.input_tokens, r.cache_read_tokens, r.cache_write_tokens,
                                  r.output_tokens};
                assert_int_equal(got[f], cases[i].v);
            }
        }
    }
    /* Absent counts are zero (embeddings have no outputTokenCount). */
    struct bm__record r;
    assert_int_equal(parse("{\"timestamp\":\"t\",\"modelId\":\"a.b\",\"output\":{}}", &r), BM_OK);
    assert_int_equal(r.output_tokens, 0);
    /* A bad token count and malformed JSON: the format error wins. */
    assert_int_equal(parse("{\"timestamp\":\"t\",\"modelId\":\"a\",\"input\":{"
                           "\"inputTokenCount\":-1},}",
                           &r),
                     BM_E_LOG_FORMAT);
}

static void test_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "[]",
        "\"string\"",
        "{",
        "{\"timestamp\":\"t\",\"modelId\":\"m\"",
        "{\"timestamp\":\"t\",\"modelId\":\"m\"}}",
        "{\"timestamp\":\"t\",\"modelId\":\"m\"} x",
        "{\"timestamp\":\"t\" \"modelId\":\"m\"}",
        "{\"timestamp\":\"t\",\"modelId\":\"m\",}",
        "{\"timestamp\":\"t\",\"modelId\":\"m\",\"x\":[1,]}",
        "{\"timestamp\":\"t\",\"modelId\":\"m\",\"x\":tru}",
        "{\"timestamp\":\"t\",\"modelId\":\"m\",\"x\":\"bad \\q escape\"}",
        "{\"timestamp\":\"t\",\"modelId\":\"m\",\"x\":\"\\u12G4\"}",
        "{\"timestamp\":\"t\",\"modelId\":\"m\",\"x\":\"unterminated}",
        "{\"timestamp\":\"t\",\"modelId\":5}",
        "{\"timestamp\":\"t\"}",
        "{\"modelId\":\"m\"}",
        "{\"timestamp\":\"t\",\"modelId\":\"\"}",
        "{timestamp:\"t\",\"modelId\":\"m\"}",
        "{\"timestamp\":\"t\",\"modelId\":\"m\",\"x\":{\"a\" 1}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct bm__record r;
        struct bm_errmsg em = {{0}};
        bm_err rc = bm__record_parse(bad[i], strlen(bad[i]), NULL, &r, &em);
        if (rc != BM_E_LOG_FORMAT)
            fail_msg("case %zu (%s): rc %s", i, bad[i], bm_err_wire(rc));
        assert_true(strlen(em.text) > 0);
    }
}

static void test_deep_nesting(void **state)
{
    (void)state;
    /* Nesting past the limit is malformed, not a stack overflow. */
    size_t depth = 100000;
    char *line = bm_malloc(depth * 2 + 128);
    assert_non_null(line);
    char *p = line;
    p += snprintf(p, 64, "{\"timestamp\":\"t\",\"modelId\":\"m\",\"x\":");
    memset(p, '[', depth);
    p += depth;
    memset(p, ']', depth);
    p += depth;
    *p++ = '}';
    struct bm__record r;
    struct bm_errmsg em;
    assert_int_equal(bm__record_parse(line, (size_t)(p - line), NULL, &r, &em), BM_E_LOG_FORMAT);
    bm_free(line);
}

static void test_long_field(void **state)
{
    (void)state;
    char line[6000];
    char id[3000];
    memset(id, 'a', sizeof id - 1);
    id[sizeof id - 1] = '\0';
    snprintf(line, sizeof line, "{\"timestamp\":\"t\",\"modelId\":\"%s\"}", id);
    struct bm__record r;
    assert_int_equal(parse(line, &r), BM_E_LOG_FORMAT);
}

/* Attribution keys: requestMetadata values (escaped too) and identity.arn are read only when
 * asked for; other metadata, non-string values and a missing key leave the slot empty. */
static void test_attribution(void **state)
{
    (void)state;
    static const char *const line =
        "{\"timestamp\":\"t\",\"modelId\":\"m\",\"requestMetadata\":{\"app\":\"c\\u0068at\","
        "\"n\":5,\"team\":\"search\",\"obj\":{\"team\":\"x\"}},\"identity\":{\"arn\":"
        "\"arn:aws:iam::1:user/a\",\"x\":1}}";
    struct bm__record r;
    struct bm_errmsg em;
    struct bm_attr_keys k = {3, {"team", "identity", "app"}};
    assert_int_equal(bm__record_parse(line, strlen(line), &k, &r, &em), BM_OK);
    assert_slice(r.attr[0], "search");
    assert_slice(r.attr[1], "arn:aws:iam::1:user/a");
    assert_slice(r.attr[2], "chat");
    struct bm_attr_keys k2 = {2, {"n", "missing"}};
    assert_int_equal(bm__record_parse(line, strlen(line), &k2, &r, &em), BM_OK);
    assert_null(r.attr[0].p); /* a number is no string value */
    assert_null(r.attr[1].p);
    assert_int_equal(bm__record_parse(line, strlen(line), NULL, &r, &em), BM_OK);
    assert_null(r.attr[0].p);
    /* Malformed metadata is malformed JSON, asked for or not. */
    static const char *const bad =
        "{\"timestamp\":\"t\",\"modelId\":\"m\",\"requestMetadata\":{\"a\"}}";
    assert_int_equal(bm__record_parse(bad, strlen(bad), &k, &r, &em), BM_E_LOG_FORMAT);
    assert_int_equal(bm__record_parse(bad, strlen(bad), NULL, &r, &em), BM_E_LOG_FORMAT);
    char buf[64];
    struct bm_attr_keys parsed;
    assert_int_equal(bm_attr_keys_parse("team,identity", buf, sizeof buf, &parsed, &em), BM_OK);
    assert_int_equal(parsed.n, 2);
    assert_string_equal(parsed.name[1], "identity");
    assert_int_equal(bm_attr_keys_parse("a,b,c,d", buf, sizeof buf, &parsed, &em), BM_E_CONFIG);
    assert_int_equal(bm_attr_keys_parse("a,,b", buf, sizeof buf, &parsed, &em), BM_E_CONFIG);
    assert_int_equal(bm_attr_keys_parse("a,a", buf, sizeof buf, &parsed, &em), BM_E_CONFIG);
    assert_int_equal(bm_attr_keys_parse("a b", buf, sizeof buf, &parsed, &em), BM_E_CONFIG);
    assert_int_equal(bm_attr_keys_parse("", buf, sizeof buf, &parsed, &em), BM_OK);
    assert_int_equal(parsed.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sample_lines), cmocka_unit_test(test_field_order_and_noise),
        cmocka_unit_test(test_escapes),      cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_malformed),    cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_long_field),   cmocka_unit_test(test_attribution),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
