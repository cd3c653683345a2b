/* The streaming ingest pipeline: chunk boundaries at every byte, gzip told by magic bytes,
 * multi-member and truncated gzip, a gzip bomb, the line cap, framing variants, and
 * allocation failure at every step. Every case runs once per inflate engine the build has
 * (zlib, and ISA-L when built with it), with the same expected values. */
#include "tu.h"

static char *sample;
static size_t sample_len;

static int setup(void **state)
{
    (void)state;
    sample = tu_read_file(tu_data("bedrock-log-sample.jsonl"), &sample_len);
    return sample ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    bm_free(sample);
    return 0;
}

static enum bm_inflate engine = BM_INFLATE_ZLIB;

static struct bm_ingest_opts opts(void)
{
    struct bm_ingest_opts o = {
        .inflate = engine,
        .max_line_bytes = 1 << 20,
        .max_object_bytes = 1ULL << 32,
        .bucket_seconds = 60,
        .max_series = 1000,
        .cls = {.cross_region = true, .global_cross_region = true},
    };
    return o;
}

/* Feeds data in pieces of `step` bytes (0: split once at `step0`), returns the ingest. */
static struct bm_ingest *run(const struct bm_ingest_opts *o, const void *data, size_t len,
                             size_t split_at, size_t step, bm_err want_rc)
{
    struct bm_ingest *in = bm_ingest_new(o, NULL);
    assert_non_null(in);
    const char *p = data;
    bm_err rc = BM_OK;
    if (step == 0) {
        rc = bm_ingest_feed(in, p, split_at);
        if (rc == BM_OK)
            rc = bm_ingest_feed(in, p + split_at, len - split_at);
    } else {
        for (size_t i = 0; i < len && rc == BM_OK; i += step)
            rc = bm_ingest_feed(in, p + i, len - i < step ? len - i : step);
    }
    if (rc == BM_OK)
        rc = bm_ingest_finish(in);
    if (rc != want_rc)
        fail_msg("rc %s (%s), want %s", bm_err_wire(rc), bm_err_str(rc), bm_err_wire(want_rc));
    return in;
}

/* The sample's exact totals (docs/formats.md 1.4): 4 invocations. */
static void assert_sample_totals(const struct bm_ingest *in, uint64_t times)
{
    struct bm_counters t;
    bm_agg_totals(bm_ingest_agg(in), &t);
    assert_int_equal(bm_ingest_stats(in)->records, 4 * times);
    assert_int_equal(t.invocations, 4 * times);
    assert_int_equal(t.input.sum, 269 * times);
    assert_int_equal(t.output.sum, 332 * times);
    assert_int_equal(t.cache_read.sum, 24479 * times);
    assert_int_equal(t.cache_write.sum, 225913 * times);
    assert_int_equal(t.input.min, 3);
    assert_int_equal(t.input.max, 255);
    assert_int_equal(t.output.min, 0);
    assert_int_equal(t.output.max, 167);
}

static void test_sample_plain_every_split(void **state)
{
    (void)state;
    struct bm_ingest_opts o = opts();
    for (size_t at = 0; at <= sample_len; at++) {
        struct bm_ingest *in = run(&o, sample, sample_len, at, 0, BM_OK);
        assert_sample_totals(in, 1);
        assert_int_equal(bm_ingest_stats(in)->invalid, 0);
        assert_false(bm_ingest_stats(in)->gzip);
        bm_ingest_free(in);
    }
    /* And byte by byte. */
    struct bm_ingest *in = run(&o, sample, sample_len, 0, 1, BM_OK);
    assert_sample_totals(in, 1);
    bm_ingest_free(in);
}

static void test_sample_gzip_every_split(void **state)
{
    (void)state;
    struct bm_ingest_opts o = opts();
    size_t zlen;
    unsigned char *z = tu_gzip(sample, sample_len, &zlen, 6);
    for (size_t at = 0; at <= zlen; at++) {
        struct bm_ingest *in = run(&o, z, zlen, at, 0, BM_OK);
        assert_sample_totals(in, 1);
        assert_true(bm_ingest_stats(in)->gzip);
        assert_int_equal(bm_ingest_stats(in)->bytes_out, sample_len);
        bm_ingest_free(in);
    }
    for (size_t step = 1; step < 8; step++) {
        struct bm_ingest *in = run(&o, z, zlen, 0, step, BM_OK);
        assert_sample_totals(in, 1);
        bm_ingest_free(in);
    }
    bm_free(z);
}

static void test_multi_member_and_padding(void **state)
{
    (void)state;
    struct bm_ingest_opts o = opts();
    size_t zlen;
    unsigned char *z = tu_gzip(sample, sample_len, &zlen, 1);
    /* Three members back to back (cat a.gz b.gz c.gz), then zero padding. */
    unsigned char *cat = bm_malloc(zlen * 3 + 16);
    for (int i = 0; i < 3; i++)
        memcpy(cat + zlen * (size_t)i, z, zlen);
    memset(cat + zlen * 3, 0, 16);
    for (size_t at = 0; at <= zlen * 3 + 16; at += 7) {
        struct bm_ingest *in = run(&o, cat, zlen * 3 + 16, at, 0, BM_OK);
        assert_sample_totals(in, 3);
        bm_ingest_free(in);
    }
    /* A member split in the middle of a record: the record still joins up. */
    size_t half = sample_len / 2 + 3;
    size_t l1, l2;
    unsigned char *z1 = tu_gzip(sample, half, &l1, 6);
    unsigned char *z2 = tu_gzip(sample + half, sample_len - half, &l2, 6);
    unsigned char *two = bm_malloc(l1 + l2);
    memcpy(two, z1, l1);
    memcpy(two + l1, z2, l2);
    struct bm_ingest *in = run(&o, two, l1 + l2, l1, 0, BM_OK);
    assert_sample_totals(in, 1);
    bm_ingest_free(in);
    /* Garbage after a member is an error, not silently ignored data. */
    memcpy(cat + zlen, "junk", 4);
    in = run(&o, cat, zlen + 4, 0, 3, BM_E_GZIP);
    bm_ingest_free(in);
    bm_free(two);
    bm_free(z1);
    bm_free(z2);
    bm_free(cat);
    bm_free(z);
}

static void test_truncated_and_corrupt_gzip(void **state)
{
    (void)state;
    struct bm_ingest_opts o = opts();
    size_t zlen;
    unsigned char *z = tu_gzip(sample, sample_len, &zlen, 6);
    /* Every truncation point fails the object (the CRC/length trailer is missing). */
    for (size_t cut = 2; cut < zlen; cut++) {
        struct bm_ingest *in = run(&o, z, cut, 0, 4096, BM_E_GZIP);
        bm_ingest_free(in);
    }
    /* A flipped byte in the deflate data or the CRC: corrupt. */
    z[zlen - 6] ^= 0x55;
    struct bm_ingest *in = run(&o, z, zlen, 0, 4096, BM_E_GZIP);
    bm_ingest_free(in);
    assert_string_equal(bm_err_wire(BM_E_GZIP), "BMAS-003");
    bm_free(z);
}

static void test_gzip_bomb(void **state)
{
    (void)state;
    /* 64 MiB of newlines compresses to ~64 KiB; a 16 MiB cap stops it with BMAS-010, having
     * used no more memory than the fixed buffers. */
    size_t big = 64u << 20;
    char *nl = bm_malloc(big);
    memset(nl, '\n', big);
    size_t zlen;
    unsigned char *z = tu_gzip(nl, big, &zlen, 9);
    bm_free(nl);
    assert_true(zlen < big / 500);
    struct bm_ingest_opts o = opts();
    o.max_object_bytes = 16u << 20;
    struct bm_ingest *in = run(&o, z, zlen, 0, 65536, BM_E_INFLATE_CAP);
    assert_string_equal(bm_err_wire(BM_E_INFLATE_CAP), "BMAS-010");
    /* Once failed, the object stays failed. */
    assert_int_equal(bm_ingest_feed(in, "x", 1), BM_E_INFLATE_CAP);
    bm_ingest_free(in);
    /* One endless line (no newline) under a generous object cap: the line cap drops it while
     * memory stays at the cap. */
    char *as = bm_malloc(8u << 20);
    memset(as, 'a', 8u << 20);
    unsigned char *za = tu_gzip(as, 8u << 20, &zlen, 9);
    bm_free(as);
    o.max_object_bytes = 1ULL << 32;
    o.max_line_bytes = 4096;
    in = run(&o, za, zlen, 0, 65536, BM_OK);
    assert_int_equal(bm_ingest_stats(in)->records, 0);
    assert_int_equal(bm_ingest_stats(in)->invalid, 1);
    assert_int_equal(bm_ingest_stats(in)->errors[9], 1); /* BMAS-010 */
    bm_ingest_free(in);
    bm_free(za);
    bm_free(z);
}

static void test_line_cap(void **state)
{
    (void)state;
    /* A 10 KB record between two good ones, cap 4 KB: skipped with BMAS-010 wherever the
     * chunk boundaries fall, and the neighbours still count. */
    struct bm_buf b;
    bm_buf_init(&b, 1 << 20);
    const char *good = "{\"timestamp\":\"2026-04-20T00:17:31Z\",\"modelId\":\"a.b\","
                       "\"region\":\"us-east-1\",\"input\":{\"inputTokenCount\":10}}\n";
    assert_int_equal(bm_buf_append_str(&b, good), BM_OK);
    assert_int_equal(bm_buf_append_str(&b, "{\"timestamp\":\"2026-04-20T00:17:31Z\",\"pad\":\""),
                     BM_OK);
    for (int i = 0; i < 10000; i++)
        bm_buf_append_char(&b, 'x');
    assert_int_equal(bm_buf_append_str(&b, "\",\"modelId\":\"a.b\",\"region\":\"us-east-1\"}\n"),
                     BM_OK);
    assert_int_equal(bm_buf_append_str(&b, good), BM_OK);
    struct bm_ingest_opts o = opts();
    o.max_line_bytes = 4096;
    size_t steps[] = {1, 7, 100, 4095, 4096, 4097, 65536};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        struct bm_ingest *in = run(&o, b.data, b.len, 0, steps[i], BM_OK);
        const struct bm_ingest_stats *st = bm_ingest_stats(in);
        assert_int_equal(st->records, 2);
        assert_int_equal(st->invalid, 1);
        assert_int_equal(st->errors[9], 1);
        assert_int_equal(st->first_error, BM_E_LINE_TOO_LONG);
        assert_int_equal(st->first_error_record, 2);
        bm_ingest_free(in);
    }
    bm_buf_cleanup(&b);
}

static void test_framing_variants(void **state)
{
    (void)state;
    struct bm_ingest_opts o = opts();
    /* CRLF, blank lines, a BOM, no final newline, whitespace-only lines. */
    struct bm_buf b;
    bm_buf_init(&b, 1 << 20);
    bm_buf_append_str(&b, "\xEF\xBB\xBF\r\n\n   \n");
    for (const char *p = sample; *p; p++) {
        if (*p == '\n')
            bm_buf_append_str(&b, "\r\n\r\n \t\n");
        else
            bm_buf_append_char(&b, *p);
    }
    while (b.len > 0 && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == ' ' ||
                         b.data[b.len - 1] == '\t' || b.data[b.len - 1] == '\r'))
        b.len--;
    for (size_t at = 0; at <= b.len; at += 13) {
        struct bm_ingest *in = run(&o, b.data, b.len, at, 0, BM_OK);
        assert_sample_totals(in, 1);
        bm_ingest_free(in);
    }
    /* A JSON array of records, pretty or compact. */
    bm_buf_reset(&b);
    bm_buf_append_str(&b, " [\n");
    int n = 0;
    for (const char *p = sample; *p; p++) {
        if (*p == '\n')
            bm_buf_append_str(&b, ++n < 4 ? ",\n  " : "\n");
        else
            bm_buf_append_char(&b, *p);
    }
    bm_buf_append_str(&b, "]\n");
    for (size_t step = 1; step < 40; step += 3) {
        struct bm_ingest *in = run(&o, b.data, b.len, 0, step, BM_OK);
        assert_sample_totals(in, 1);
        bm_ingest_free(in);
    }
    /* Pretty-printed objects, one after another (jq's default output). */
    static const char pretty[] =
        "{\n  \"timestamp\": \"2026-04-20T00:17:31Z\",\n  \"modelId\": \"us.a.b\",\n"
        "  \"region\": \"us-east-1\",\n  \"input\": {\n    \"inputTokenCount\": 5,\n"
        "    \"inputBodyJson\": {\"text\": \"}{ tricky \\\" braces\"}\n  }\n}\n"
        "{\n  \"timestamp\": \"2026-04-20T00:18:31Z\",\n  \"modelId\": \"us.a.b\",\n"
        "  \"region\": \"us-east-1\",\n  \"output\": {\"outputTokenCount\": 6}\n}\n";
    for (size_t at = 0; at <= sizeof pretty - 1; at++) {
        struct bm_ingest *in = run(&o, pretty, sizeof pretty - 1, at, 0, BM_OK);
        struct bm_counters t;
        bm_agg_totals(bm_ingest_agg(in), &t);
        assert_int_equal(t.invocations, 2);
        assert_int_equal(t.input.sum, 5);
        assert_int_equal(t.output.sum, 6);
        assert_int_equal(bm_agg_count(bm_ingest_agg(in)), 2); /* two minutes */
        bm_ingest_free(in);
    }
    bm_buf_cleanup(&b);
}

static void test_bad_lines_do_not_spoil_the_object(void **state)
{
    (void)state;
    struct bm_ingest_opts o = opts();
    struct bm_buf b;
    bm_buf_init(&b, 1 << 20);
    bm_buf_append_str(&b, "not json at all\n");
    bm_buf_append(&b, sample, sample_len);
    bm_buf_append_str(&b, "{\"timestamp\":\"2026-04-20T00:17:31Z\",\"modelId\":\"a.b\","
                          "\"region\":\"us-east-1\",\"input\":{\"inputTokenCount\":-4}}\n");
    bm_buf_append_str(&b, "{\"timestamp\":\"yesterday\",\"modelId\":\"a.b\"}\n");
    bm_buf_append_str(&b, "{\"timestamp\":\"2026-04-20T00:17:31Z\",\"modelId\":\"a.b\"}\n");
    bm_buf_append_str(&b, "{\"timestamp\":\"2026-04-20T00:17:31Z\",\"modelId\":\"a.b\",");
    bm_buf_append_str(&b, "\n");
    struct bm_ingest *in = run(&o, b.data, b.len, 0, 64, BM_OK);
    const struct bm_ingest_stats *st = bm_ingest_stats(in);
    assert_sample_totals(in, 1);
    assert_int_equal(st->invalid, 5);
    assert_int_equal(st->errors[2], 3); /* BMAS-003: not json, bad timestamp, cut record */
    assert_int_equal(st->errors[6], 1); /* BMAS-007: negative tokens */
    assert_int_equal(st->errors[7], 1); /* BMAS-008: no region anywhere */
    assert_int_equal(st->errors[5], 1); /* BMAS-006: the sample's unmapped app profile */
    assert_int_equal(st->first_error_record, 1);
    bm_ingest_free(in);
    bm_buf_cleanup(&b);
}

static void test_region_fallbacks_and_buckets(void **state)
{
    (void)state;
    struct bm_ingest_opts o = opts();
    o.bucket_seconds = 300;
    static const char lines[] =
        /* region from the ARN */
        "{\"timestamp\":\"2026-04-20T00:04:59Z\",\"modelId\":"
        "\"arn:aws:bedrock:eu-west-3:1:inference-profile/eu.a.b\"}\n"
        /* region from the key; inferenceRegion given */
        "{\"timestamp\":\"2026-04-20T00:05:00Z\",\"modelId\":\"a.b\",\"inferenceRegion\":"
        "\"us-west-2\"}\n";
    struct bm_ingest *in = bm_ingest_new(
        &o, "x/AWSLogs/1/BedrockModelInvocationLogs/us-east-2/2026/04/20/00/f.json.gz");
    assert_non_null(in);
    assert_int_equal(bm_ingest_feed(in, lines, sizeof lines - 1), BM_OK);
    assert_int_equal(bm_ingest_finish(in), BM_OK);
    const struct bm_agg *a = bm_ingest_agg(in);
    assert_int_equal(bm_agg_count(a), 2);
    const struct bm_series *s0 = bm_agg_at(a, 0);
    const struct bm_series *s1 = bm_agg_at(a, 1);
    assert_string_equal(s0->key.source_region.p, "eu-west-3");
    assert_string_equal(s0->key.inference_region.p, "eu-west-3");
    assert_int_equal(s0->key.bucket, 1776643200); /* 00:00, 300 s buckets */
    assert_int_equal(s0->key.type, BM_PT_CROSS_REGION);
    assert_string_equal(s1->key.source_region.p, "us-east-2");
    assert_string_equal(s1->key.inference_region.p, "us-west-2");
    assert_int_equal(s1->key.bucket, 1776643500);
    bm_ingest_free(in);
}

static void test_series_cap(void **state)
{
    (void)state;
    struct bm_ingest_opts o = opts();
    o.max_series = 10;
    struct bm_buf b;
    bm_buf_init(&b, 1 << 20);
    for (int i = 0; i < 11; i++)
        bm_buf_appendf(&b,
                       "{\"timestamp\":\"2026-04-20T00:00:00Z\",\"modelId\":\"p.m%d\","
                       "\"region\":\"us-east-1\"}\n",
                       i);
    struct bm_ingest *in = run(&o, b.data, b.len, 0, 4096, BM_E_TOO_LARGE);
    bm_ingest_free(in);
    bm_buf_cleanup(&b);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    /* Every allocation on the path fails in turn: a clean error, never a crash or a leak
     * (ASan's leak checker runs this in `make asan`). */
    struct bm_ingest_opts o = opts();
    size_t zlen;
    unsigned char *z = tu_gzip(sample, sample_len, &zlen, 6);
    bool completed = false;
    for (long n = 0; n < 1000 && !completed; n++) {
        bm_alloc_fail_after(n);
        struct bm_ingest *in =
            bm_ingest_new(&o, "AWSLogs/1/BedrockModelInvocationLogs/us-east-1/x");
        bm_err rc = in ? bm_ingest_feed(in, z, zlen) : BM_E_NOMEM;
        if (rc == BM_OK)
            rc = bm_ingest_finish(in);
        long failures = bm_alloc_failures();
        bm_alloc_fail_after(-1);
        if (failures == 0) {
            assert_int_equal(rc, BM_OK);
            assert_sample_totals(in, 1);
            completed = true;
        } else {
            assert_int_equal(rc, BM_E_NOMEM);
        }
        bm_ingest_free(in);
    }
    assert_true(completed);
    bm_free(z);
}

static void test_plain_starting_with_0x1f(void **state)
{
    (void)state;
    /* A single 0x1f byte, or 0x1f not followed by 0x8b, is plain data (a malformed line). */
    struct bm_ingest_opts o = opts();
    struct bm_ingest *in = run(&o, "\x1f", 1, 0, 1, BM_OK);
    assert_int_equal(bm_ingest_stats(in)->invalid, 1);
    bm_ingest_free(in);
    in = run(&o, "\x1fxy\n", 4, 0, 1, BM_OK);
    assert_int_equal(bm_ingest_stats(in)->invalid, 1);
    assert_false(bm_ingest_stats(in)->gzip);
    bm_ingest_free(in);
    in = run(&o, "", 0, 0, 1, BM_OK);
    assert_int_equal(bm_ingest_stats(in)->records, 0);
    bm_ingest_free(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sample_plain_every_split),
        cmocka_unit_test(test_sample_gzip_every_split),
        cmocka_unit_test(test_multi_member_and_padding),
        cmocka_unit_test(test_truncated_and_corrupt_gzip),
        cmocka_unit_test(test_gzip_bomb),
        cmocka_unit_test(test_line_cap),
        cmocka_unit_test(test_framing_variants),
        cmocka_unit_test(test_bad_lines_do_not_spoil_the_object),
        cmocka_unit_test(test_region_fallbacks_and_buckets),
        cmocka_unit_test(test_series_cap),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_plain_starting_with_0x1f),
    };
    int failed = cmocka_run_group_tests_name("zlib", tests, setup, teardown);
    if (bm_inflate_has_isal()) {
        engine = BM_INFLATE_ISAL;
        failed += cmocka_run_group_tests_name("isal", tests, setup, teardown);
    }
    return failed;
}
