/* Classification of every modelId shape in docs/formats.md section 2, the S3 key helpers, and the
 * application-profile map. */
#include "tu.h"

struct ccase {
    const char *id;
    enum bm_profile_type type;
    const char *model_id;
    const char *profile_id;
    const char *arn_region;
};

static void check(const struct ccase *c, const struct bm_classify_opts *o)
{
    struct bm_classification cl;
    assert_int_equal(bm_classify(c->id, strlen(c->id), o, &cl), BM_OK);
    if (cl.type != c->type)
        fail_msg("%s: type %s, want %s", c->id, bm_profile_type_name(cl.type),
                 bm_profile_type_name(c->type));
    if (cl.model_id.len != strlen(c->model_id) ||
        memcmp(cl.model_id.p, c->model_id, cl.model_id.len) != 0)
        fail_msg("%s: model_id %.*s, want %s", c->id, (int)cl.model_id.len, cl.model_id.p,
                 c->model_id);
    if (cl.profile_id.len != strlen(c->profile_id) ||
        memcmp(cl.profile_id.p, c->profile_id, cl.profile_id.len) != 0)
        fail_msg("%s: profile_id %.*s, want %s", c->id, (int)cl.profile_id.len, cl.profile_id.p,
                 c->profile_id);
    const char *want_region = c->arn_region ? c->arn_region : "";
    if (cl.arn_region.len != strlen(want_region) ||
        (cl.arn_region.len > 0 && memcmp(cl.arn_region.p, want_region, cl.arn_region.len) != 0))
        fail_msg("%s: arn_region %.*s", c->id, (int)cl.arn_region.len, cl.arn_region.p);
}

static void test_every_shape(void **state)
{
    (void)state;
    const struct bm_classify_opts o = {.cross_region = true, .global_cross_region = true};
    static const struct ccase cases[] = {
        /* Bare foundation model ids. */
        {"amazon.titan-embed-text-v2:0", BM_PT_ON_DEMAND, "amazon.titan-embed-text-v2:0",
         "amazon.titan-embed-text-v2:0", NULL},
        {"amazon.nova-lite-v1:0", BM_PT_ON_DEMAND, "amazon.nova-lite-v1:0", "amazon.nova-lite-v1:0",
         NULL},
        {"ai21.jamba-1-5-large-v1:0", BM_PT_ON_DEMAND, "ai21.jamba-1-5-large-v1:0",
         "ai21.jamba-1-5-large-v1:0", NULL},
        {"anthropic.claude-3-5-sonnet-20240620-v1:0", BM_PT_ON_DEMAND,
         "anthropic.claude-3-5-sonnet-20240620-v1:0", "anthropic.claude-3-5-sonnet-20240620-v1:0",
         NULL},
        /* A model name with a dot stays a model: "nova-2" is no provider. */
        {"amazon.nova-2.0-lite", BM_PT_ON_DEMAND, "amazon.nova-2.0-lite", "amazon.nova-2.0-lite",
         NULL},
        {"custom", BM_PT_ON_DEMAND, "custom", "custom", NULL},
        /* Geographic system profiles, bare. */
        {"us.anthropic.claude-sonnet-4-20250514-v1:0", BM_PT_CROSS_REGION,
         "anthropic.claude-sonnet-4-20250514-v1:0", "us.anthropic.claude-sonnet-4-20250514-v1:0",
         NULL},
        {"eu.anthropic.claude-sonnet-4-20250514-v1:0", BM_PT_CROSS_REGION,
         "anthropic.claude-sonnet-4-20250514-v1:0", "eu.anthropic.claude-sonnet-4-20250514-v1:0",
         NULL},
        {"apac.anthropic.claude-sonnet-4-20250514-v1:0", BM_PT_CROSS_REGION,
         "anthropic.claude-sonnet-4-20250514-v1:0", "apac.anthropic.claude-sonnet-4-20250514-v1:0",
         NULL},
        {"jp.anthropic.claude-sonnet-4-5-20250929-v1:0", BM_PT_CROSS_REGION,
         "anthropic.claude-sonnet-4-5-20250929-v1:0",
         "jp.anthropic.claude-sonnet-4-5-20250929-v1:0", NULL},
        {"au.anthropic.claude-sonnet-4-5-20250929-v1:0", BM_PT_CROSS_REGION,
         "anthropic.claude-sonnet-4-5-20250929-v1:0",
         "au.anthropic.claude-sonnet-4-5-20250929-v1:0", NULL},
        {"ca.amazon.nova-lite-v1:0", BM_PT_CROSS_REGION, "amazon.nova-lite-v1:0",
         "ca.amazon.nova-lite-v1:0", NULL},
        {"us-gov.anthropic.claude-3-5-sonnet-20240620-v1:0", BM_PT_CROSS_REGION,
         "anthropic.claude-3-5-sonnet-20240620-v1:0",
         "us-gov.anthropic.claude-3-5-sonnet-20240620-v1:0", NULL},
        {"us.meta.llama3-2-1b-instruct-v1:0", BM_PT_CROSS_REGION, "meta.llama3-2-1b-instruct-v1:0",
         "us.meta.llama3-2-1b-instruct-v1:0", NULL},
        {"us.anthropic.claude-sonnet-4-6", BM_PT_CROSS_REGION, "anthropic.claude-sonnet-4-6",
         "us.anthropic.claude-sonnet-4-6", NULL},
        /* A geography nobody has heard of yet classifies without a code change. */
        {"mx.anthropic.claude-sonnet-5", BM_PT_CROSS_REGION, "anthropic.claude-sonnet-5",
         "mx.anthropic.claude-sonnet-5", NULL},
        {"latam-south.amazon.nova-pro-v1:0", BM_PT_CROSS_REGION, "amazon.nova-pro-v1:0",
         "latam-south.amazon.nova-pro-v1:0", NULL},
        {"us.amazon.nova-2.0-lite", BM_PT_CROSS_REGION, "amazon.nova-2.0-lite",
         "us.amazon.nova-2.0-lite", NULL},
        /* Global. */
        {"global.anthropic.claude-opus-4-5-20251101-v1:0", BM_PT_GLOBAL,
         "anthropic.claude-opus-4-5-20251101-v1:0",
         "global.anthropic.claude-opus-4-5-20251101-v1:0", NULL},
        {"global.anthropic.claude-opus-4-6-v1", BM_PT_GLOBAL, "anthropic.claude-opus-4-6-v1",
         "global.anthropic.claude-opus-4-6-v1", NULL},
        /* System profile ARNs. */
        {"arn:aws:bedrock:us-west-2:565521294060:inference-profile/"
         "global.anthropic.claude-opus-4-7",
         BM_PT_GLOBAL, "anthropic.claude-opus-4-7", "global.anthropic.claude-opus-4-7",
         "us-west-2"},
        {"arn:aws:bedrock:us-east-1:1:inference-profile/us.anthropic.claude-x-v1:0",
         BM_PT_CROSS_REGION, "anthropic.claude-x-v1:0", "us.anthropic.claude-x-v1:0", "us-east-1"},
        {"arn:aws-us-gov:bedrock:us-gov-west-1:123456789012:inference-profile/"
         "us-gov.anthropic.claude-3-haiku-20240307-v1:0",
         BM_PT_CROSS_REGION, "anthropic.claude-3-haiku-20240307-v1:0",
         "us-gov.anthropic.claude-3-haiku-20240307-v1:0", "us-gov-west-1"},
        /* Foundation-model ARN (no account). */
        {"arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-v2:1", BM_PT_ON_DEMAND,
         "anthropic.claude-v2:1", "anthropic.claude-v2:1", "us-east-1"},
        /* Application profile, unmapped: the profile's id stands in for the model. */
        {"arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6",
         BM_PT_APPLICATION, "a1b2c3d4e5f6", "a1b2c3d4e5f6", "us-east-1"},
        /* Provisioned Throughput and imported models. */
        {"arn:aws:bedrock:eu-west-1:123456789012:provisioned-model/abc123xyz", BM_PT_PROVISIONED,
         "abc123xyz", "abc123xyz", "eu-west-1"},
        {"arn:aws:bedrock:us-east-1:123456789012:imported-model/k2x9", BM_PT_ON_DEMAND, "k2x9",
         "k2x9", "us-east-1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check(&cases[i], &o);
}

static void test_switches(void **state)
{
    (void)state;
    /* ENABLE_GLOBAL_CROSS_REGION=false: global profiles count as geographic ones. */
    const struct bm_classify_opts no_global = {.cross_region = true, .global_cross_region = false};
    const struct ccase g = {"global.anthropic.claude-opus-4-6-v1", BM_PT_CROSS_REGION,
                            "anthropic.claude-opus-4-6-v1", "global.anthropic.claude-opus-4-6-v1",
                            NULL};
    check(&g, &no_global);
    /* ENABLE_CROSS_REGION_DETECTION=false: every system profile counts as on-demand, and the
     * model is still normalised. */
    const struct bm_classify_opts off = {.cross_region = false, .global_cross_region = true};
    const struct ccase c1 = {"us.anthropic.claude-x-v1:0", BM_PT_ON_DEMAND,
                             "anthropic.claude-x-v1:0", "us.anthropic.claude-x-v1:0", NULL};
    const struct ccase c2 = {"global.anthropic.claude-x", BM_PT_ON_DEMAND, "anthropic.claude-x",
                             "global.anthropic.claude-x", NULL};
    check(&c1, &off);
    check(&c2, &off);
    /* Application profiles are not cross-region detection: unchanged. */
    const struct ccase app = {"arn:aws:bedrock:us-east-1:1:application-inference-profile/zz",
                              BM_PT_APPLICATION, "zz", "zz", "us-east-1"};
    check(&app, &off);
}

static void test_app_map(void **state)
{
    (void)state;
    struct bm_app_map *m = NULL;
    struct bm_errmsg em = {{0}};
    assert_int_equal(
        bm_app_map_parse(" a1b2c3d4e5f6 = anthropic.claude-sonnet-4-5 ,"
                         "arn:aws:bedrock:us-east-1:1:application-inference-profile/qqq=meta.l3",
                         &m, &em),
        BM_OK);
    struct bm_classify_opts o = {.cross_region = true, .global_cross_region = true, .app_map = m};
    const struct ccase c1 = {
        "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6",
        BM_PT_APPLICATION, "anthropic.claude-sonnet-4-5", "a1b2c3d4e5f6", "us-east-1"};
    const struct ccase c2 = {"arn:aws:bedrock:us-west-2:9:application-inference-profile/qqq",
                             BM_PT_APPLICATION, "meta.l3", "qqq", "us-west-2"};
    check(&c1, &o);
    check(&c2, &o);
    struct bm_classification cl;
    assert_int_equal(bm_classify(c1.id, strlen(c1.id), &o, &cl), BM_OK);
    assert_false(cl.app_unmapped);
    bm_app_map_free(m);

    static const char *const bad[] = {"novalue", "=model", "id=", "a=b,,c"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        m = NULL;
        /* In "a=b,,c" the empty pair is harmless but "c" alone is not. */
        assert_int_equal(bm_app_map_parse(bad[i], &m, &em), BM_E_CONFIG);
        assert_non_null(strstr(em.text, "BMAS_APP_PROFILE_MAP"));
        assert_null(m);
    }
    assert_int_equal(bm_app_map_parse("", &m, &em), BM_OK);
    bm_app_map_free(m);
}

static void test_malformed_ids(void **state)
{
    (void)state;
    const struct bm_classify_opts o = {.cross_region = true, .global_cross_region = true};
    static const char *const bad[] = {
        "",
        "arn:aws:bedrock:us-east-1",
        "arn:aws:bedrock:us-east-1:1:inference-profile",
        "arn:aws:bedrock:us-east-1:1:inference-profile/",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct bm_classification cl;
        assert_int_equal(bm_classify(bad[i], strlen(bad[i]), &o, &cl), BM_E_LOG_FORMAT);
    }
}

static void test_keys(void **state)
{
    (void)state;
    static const struct {
        const char *key;
        const char *region; /* NULL: none */
        enum bm_key_kind kind;
    } cases[] = {
        {"AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/04/20/00/"
         "20260420T002205123Z_3f9c2a7b1d4e5f60.json.gz",
         "us-east-1", BM_KEY_LOG},
        {"team a/AWSLogs/123456789012/BedrockModelInvocationLogs/ap-southeast-2/2026/04/20/00/"
         "x.json.gz",
         "ap-southeast-2", BM_KEY_LOG},
        {"p/AWSLogs/1/BedrockModelInvocationLogs/us-gov-west-1/2026/04/20/00/x.json.gz",
         "us-gov-west-1", BM_KEY_LOG},
        {"bedrock/AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/04/20/00/data/"
         "f3ae32b1-ae22-48f1-ba9c-d8075737f52a_input.json.gz",
         "us-east-1", BM_KEY_DATA_BODY},
        {"AWSLogs/1/BedrockModelInvocationLogs/us-east-1/2026/04/20/00/data/r_output.json.gz",
         "us-east-1", BM_KEY_DATA_BODY},
        {"AWSLogs/123456789012/BedrockModelInvocationLogs/amazon-bedrock-logs-permission-check",
         NULL, BM_KEY_PERMISSION_CHECK},
        {"amazon-bedrock-logs-permission-check", NULL, BM_KEY_PERMISSION_CHECK},
        /* A user's key prefix named data/ is still a log. */
        {"data/AWSLogs/1/BedrockModelInvocationLogs/eu-central-1/2026/04/20/00/x.json.gz",
         "eu-central-1", BM_KEY_LOG},
        {"data/mylog.jsonl", NULL, BM_KEY_LOG},
        {"some/folder/", NULL, BM_KEY_FOLDER},
        {"AWSLogs/1/BedrockModelInvocationLogs/not-a-region/x.json.gz", NULL, BM_KEY_LOG},
        {"/tmp/x.json.gz", NULL, BM_KEY_LOG},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct bm_str r;
        bool found = bm_region_from_key(cases[i].key, strlen(cases[i].key), &r);
        if (cases[i].region == NULL) {
            assert_false(found);
        } else {
            assert_true(found);
            assert_int_equal(r.len, strlen(cases[i].region));
            assert_memory_equal(r.p, cases[i].region, r.len);
        }
        if (bm_key_kind(cases[i].key, strlen(cases[i].key)) != cases[i].kind)
            fail_msg("%s: kind %s", cases[i].key,
                     bm_key_kind_name(bm_key_kind(cases[i].key, strlen(cases[i].key))));
    }
}

static void test_type_names(void **state)
{
    (void)state;
    for (int t = 0; t < BM_PT__COUNT; t++) {
        const char *n = bm_profile_type_name((enum bm_profile_type)t);
        enum bm_profile_type back;
        assert_true(bm_profile_type_parse(n, strlen(n), &back));
        assert_int_equal(back, t);
    }
    enum bm_profile_type x;
    assert_false(bm_profile_type_parse("Global", 6, &x));
    assert_string_equal(bm_profile_type_name(BM_PT_GLOBAL), "GlobalCrossRegion");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_shape), cmocka_unit_test(test_switches),
        cmocka_unit_test(test_app_map),     cmocka_unit_test(test_malformed_ids),
        cmocka_unit_test(test_keys),        cmocka_unit_test(test_type_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
