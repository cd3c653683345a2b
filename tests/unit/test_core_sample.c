/* The sample writer (core/sample.c, `bmas sample`): its own totals agree with what the ingest
 * pipeline reads back from its bytes, per profile type too; every modelId shape appears with
 * the geography of the Region asked for; a seed names the bytes; the key has Bedrock's layout. */
#include "tu.h"

#include <regex.h>

static bm_err to_buf(void *ctx, const void *p, size_t len)
{
    return bm_buf_append((struct bm_buf *)ctx, p, len);
}

static bm_err refuse(void *ctx, const void *p, size_t len)
{
    (void)ctx, (void)p, (void)len;
    return BM_E_IO;
}

static void write_sample(const struct bm_sample_opts *o, struct bm_buf *b,
                         struct bm_sample_totals *t)
{
    bm_buf_init(b, 64 << 20);
    struct bm_errmsg em = {{0}};
    bm_err rc = bm_sample_write(o, to_buf, b, t, &em);
    if (rc != BM_OK)
        fail_msg("bm_sample_write: %s %s", bm_err_wire(rc), em.text);
}

static struct bm_ingest *ingest(const struct bm_buf *b)
{
    struct bm_ingest_opts o = {
        .max_line_bytes = 1 << 20,
        .max_object_bytes = 1ULL << 32,
        .bucket_seconds = 60,
        .max_series = 100000,
        .cls = {.cross_region = true, .global_cross_region = true},
    };
    struct bm_ingest *in = bm_ingest_new(&o, NULL);
    assert_non_null(in);
    assert_int_equal(bm_ingest_feed(in, b->data, b->len), BM_OK);
    assert_int_equal(bm_ingest_finish(in), BM_OK);
    return in;
}

static void test_totals_match_what_is_read_back(void **state)
{
    (void)state;
    const char *regions[] = {"us-east-1", "eu-west-1", "ap-southeast-2"};
    for (size_t r = 0; r < 3; r++) {
        for (int plain = 0; plain < 2; plain++) {
            struct bm_sample_opts o;
            bm_sample_opts_init(&o, 1796000000);
            o.records = 400;
            o.seed = 7 + r;
            o.region = regions[r];
            o.plain = plain;
            struct bm_buf b;
            struct bm_sample_totals t;
            write_sample(&o, &b, &t);
            assert_int_equal(t.records, 400);
            assert_int_equal(t.invocations, 400);
            struct bm_ingest *in = ingest(&b);
            assert_int_equal(bm_ingest_stats(in)->records, 400);
            assert_int_equal(bm_ingest_stats(in)->invalid, 0);
            struct bm_counters c;
            bm_agg_totals(bm_ingest_agg(in), &c);
            assert_int_equal(c.invocations, t.invocations);
            assert_int_equal(c.input.sum, t.input_tokens);
            assert_int_equal(c.output.sum, t.output_tokens);
            assert_int_equal(c.cache_read.sum, t.cache_read_tokens);
            assert_int_equal(c.cache_write.sum, t.cache_write_tokens);
            assert_true(t.cache_read_tokens > 0 && t.cache_write_tokens > 0);
            /* Per profile type, each of the four present. */
            uint64_t inv[BM_SAMPLE_TYPES] = {0}, tin[BM_SAMPLE_TYPES] = {0},
                     tout[BM_SAMPLE_TYPES] = {0};
            const struct bm_agg *a = bm_ingest_agg(in);
            for (size_t i = 0; i < bm_agg_count(a); i++) {
                const struct bm_series *s = bm_agg_at(a, i);
                const char *name = bm_profile_type_name(s->key.type);
                int k = -1;
                for (int j = 0; j < BM_SAMPLE_TYPES; j++)
                    if (strcmp(name, bm_sample_type_name(j)) == 0)
                        k = j;
                if (k < 0)
                    fail_msg("profile type %s is not one the writer made", name);
                inv[k] += s->c.invocations;
                tin[k] += s->c.input.sum;
                tout[k] += s->c.output.sum;
                assert_true(s->key.bucket >= o.start - 60 && s->key.bucket < o.start + o.span);
                assert_string_equal(s->key.source_region.p, regions[r]);
            }
            for (int j = 0; j < BM_SAMPLE_TYPES; j++) {
                assert_true(t.type_invocations[j] > 0);
                assert_int_equal(inv[j], t.type_invocations[j]);
                assert_int_equal(tin[j], t.type_input_tokens[j]);
                assert_int_equal(tout[j], t.type_output_tokens[j]);
            }
            bm_ingest_free(in);
            bm_buf_cleanup(&b);
        }
    }
}

static void test_every_model_shape(void **state)
{
    (void)state;
    const struct {
        const char *region, *geo;
    } cases[] = {{"us-east-1", "\"us."}, {"eu-central-1", "\"eu."}, {"ap-northeast-1", "\"apac."}};
    for (size_t i = 0; i < 3; i++) {
        struct bm_sample_opts o;
        bm_sample_opts_init(&o, 1796000000);
        o.plain = true;
        o.records = 300;
        o.region = cases[i].region;
        struct bm_buf b;
        struct bm_sample_totals t;
        write_sample(&o, &b, &t);
        char want[8][160];
        snprintf(want[0], sizeof want[0], "\"modelId\":%santhropic.claude-sonnet-4-5",
                 cases[i].geo);
        snprintf(want[1], sizeof want[1], "\"modelId\":\"global.anthropic.");
        snprintf(want[2], sizeof want[2], "\"modelId\":\"anthropic.claude-3-5-haiku");
        snprintf(want[3], sizeof want[3],
                 "\"modelId\":\"arn:aws:bedrock:%s:123456789012:application-inference-profile/",
                 cases[i].region);
        snprintf(want[4], sizeof want[4],
                 "\"modelId\":\"arn:aws:bedrock:%s:123456789012:inference-profile/%s",
                 cases[i].region, cases[i].geo + 1);
        snprintf(want[5], sizeof want[5], "\"modelId\":\"arn:aws:bedrock:%s::foundation-model/",
                 cases[i].region);
        snprintf(want[6], sizeof want[6], "\"region\":\"%s\"", cases[i].region);
        snprintf(want[7], sizeof want[7], "\"cacheWriteInputTokenCount\":");
        for (size_t j = 0; j < 8; j++)
            if (strstr(b.data, want[j]) == NULL)
                fail_msg("%s: no %s", cases[i].region, want[j]);
        bm_buf_cleanup(&b);
    }
}

static void test_seed_names_the_bytes_and_size(void **state)
{
    (void)state;
    struct bm_sample_opts o;
    bm_sample_opts_init(&o, 1796000000);
    o.seed = 42;
    o.records = 0;
    o.bytes = 200 << 10;
    o.plain = true;
    struct bm_buf a, b, c;
    struct bm_sample_totals ta, tb, tc;
    write_sample(&o, &a, &ta);
    write_sample(&o, &b, &tb);
    o.seed = 43;
    write_sample(&o, &c, &tc);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    assert_true(a.len != c.len || memcmp(a.data, c.data, a.len) != 0);
    /* Plain: the bytes written are the object; the last record crosses the target. */
    assert_int_equal(ta.bytes, a.len);
    assert_true(a.len >= 200 << 10 && a.len < (200 << 10) + 8192);
    bm_buf_cleanup(&a);
    bm_buf_cleanup(&b);
    bm_buf_cleanup(&c);
}

static void test_key_layout_and_failures(void **state)
{
    (void)state;
    struct bm_sample_opts o;
    bm_sample_opts_init(&o, 1796226803); /* 2026-12-02T15:53:23Z */
    o.region = "eu-west-1";
    struct bm_buf k;
    bm_buf_init(&k, 1024);
    assert_int_equal(bm_sample_key(&o, &k), BM_OK);
    regex_t re;
    assert_int_equal(regcomp(&re,
                             "^AWSLogs/123456789012/BedrockModelInvocationLogs/eu-west-1/"
                             "2026/12/02/15/20261202T155323Z_[0-9a-f]{16}\\.json\\.gz$",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    if (regexec(&re, k.data, 0, NULL, 0) != 0)
        fail_msg("key %s", k.data);
    regfree(&re);
    bm_buf_cleanup(&k);

    struct bm_sample_totals t;
    struct bm_errmsg em = {{0}};
    assert_int_equal(bm_sample_write(&o, refuse, NULL, &t, &em), BM_E_IO);
    o.records = 0;
    o.bytes = 0;
    assert_int_equal(bm_sample_write(&o, refuse, NULL, &t, &em), BM_E_CONFIG);
}

/* Every allocation failing in turn (the writer's, zlib's, the sink's): out of memory is
 * reported, nothing leaks (ASan), and a run that succeeds wrote a whole object. */
static void test_alloc_failures(void **state)
{
    (void)state;
    struct bm_sample_opts o;
    bm_sample_opts_init(&o, 1796000000);
    o.records = 20;
    bool succeeded = false;
    for (long n = 0; n < 200 && !succeeded; n++) {
        struct bm_buf b;
        bm_buf_init(&b, 1 << 20);
        struct bm_sample_totals t;
        struct bm_errmsg em = {{0}};
        bm_alloc_fail_after(n);
        bm_err rc = bm_sample_write(&o, to_buf, &b, &t, &em);
        bm_alloc_fail_after(-1);
        long failed = bm_alloc_failures();
        if (rc == BM_OK) {
            assert_int_equal(failed, 0);
            assert_int_equal(t.records, 20);
            struct bm_ingest *in = ingest(&b);
            assert_int_equal(bm_ingest_stats(in)->records, 20);
            bm_ingest_free(in);
            succeeded = true;
        } else {
            assert_int_equal(rc, BM_E_NOMEM);
        }
        bm_buf_cleanup(&b);
    }
    assert_true(succeeded);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_totals_match_what_is_read_back),
        cmocka_unit_test(test_every_model_shape),
        cmocka_unit_test(test_seed_names_the_bytes_and_size),
        cmocka_unit_test(test_key_layout_and_failures),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
