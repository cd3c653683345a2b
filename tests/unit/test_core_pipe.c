/* The two-stage ingest (core/pipe.c): an object large enough to move its parsing to a second
 * thread gives the writer's exact totals whatever the chunking, with one thread or two and with
 * either inflate engine; errors raised on the parsing thread come back to the caller as they
 * do on one thread; an object dropped half-way stops the thread; allocation failures anywhere
 * leave a clean failure; and no more extra threads run than there are spare CPUs. */
#include "tu.h"

#include <unistd.h>

struct blob {
    char *p;
    size_t len, cap;
};

static bm_err blob_write(void *ctx, const void *p, size_t len)
{
    struct blob *b = ctx;
    if (b->len + len > b->cap) {
        size_t cap = (b->len + len) * 2;
        char *n = realloc(b->p, cap);
        if (n == NULL)
            return BM_E_NOMEM;
        b->p = n;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, len);
    b->len += len;
    return BM_OK;
}

static struct blob big;                 /* ~3 MiB of JSON lines, gzip */
static struct bm_sample_totals big_tot; /* what the writer says it holds */

static int setup(void **state)
{
    (void)state;
    struct bm_sample_opts o;
    bm_sample_opts_init(&o, 1776643200);
    o.seed = 42;
    o.records = 0; /* write o.bytes instead */
    o.bytes = 3u << 20;
    struct bm_errmsg em;
    return bm_sample_write(&o, blob_write, &big, &big_tot, &em) == BM_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(big.p);
    return 0;
}

static struct bm_ingest_opts opts(int threads, enum bm_inflate e)
{
    struct bm_ingest_opts o = {
        .max_line_bytes = 1 << 20,
        .max_object_bytes = 1ULL << 32,
        .bucket_seconds = 60,
        .max_series = 100000,
        .inflate = e,
        .threads = threads,
        .cls = {.cross_region = true, .global_cross_region = true},
    };
    return o;
}

static bm_err feed_all(struct bm_ingest *in, size_t step)
{
    bm_err rc = BM_OK;
    for (size_t i = 0; i < big.len && rc == BM_OK; i += step)
        rc = bm_ingest_feed(in, big.p + i, big.len - i < step ? big.len - i : step);
    return rc == BM_OK ? bm_ingest_finish(in) : rc;
}

static void assert_writer_totals(const struct bm_ingest *in)
{
    struct bm_counters t;
    bm_agg_totals(bm_ingest_agg(in), &t);
    assert_int_equal(bm_ingest_stats(in)->records, big_tot.records);
    assert_int_equal(t.invocations, big_tot.invocations);
    assert_int_equal(t.input.sum, big_tot.input_tokens);
    assert_int_equal(t.output.sum, big_tot.output_tokens);
    assert_int_equal(t.cache_read.sum, big_tot.cache_read_tokens);
    assert_int_equal(t.cache_write.sum, big_tot.cache_write_tokens);
}

static bool spare_cpu(void)
{
    return sysconf(_SC_NPROCESSORS_ONLN) > 1;
}

static void test_exact_on_one_and_two_threads(void **state)
{
    (void)state;
    assert_true(big_tot.bytes > 4 * 256 * 1024); /* past the second thread's threshold */
    const size_t steps[] = {1 << 20, 65536, 4096, 13};
    const enum bm_inflate engines[] = {BM_INFLATE_ZLIB, BM_INFLATE_ISAL};
    for (int threads = 1; threads <= 2; threads++) {
        for (size_t e = 0; e < 2; e++) {
            if (engines[e] == BM_INFLATE_ISAL && !bm_inflate_has_isal())
                continue;
            for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
                struct bm_ingest_opts o = opts(threads, engines[e]);
                struct bm_ingest *in = bm_ingest_new(&o, NULL);
                assert_non_null(in);
                assert_int_equal(feed_all(in, steps[i]), BM_OK);
                assert_writer_totals(in);
                int want = threads == 2 && spare_cpu() ? 2 : 1;
                if (bm_ingest_stats(in)->threads != want)
                    fail_msg("threads=%d step %zu: parsed on %d thread(s), want %d", threads,
                             steps[i], bm_ingest_stats(in)->threads, want);
                bm_ingest_free(in);
            }
        }
    }
}

/* The series cap is hit on the parsing thread: the caller gets the same error as on one. */
static void test_parse_error_comes_back(void **state)
{
    (void)state;
    for (int threads = 1; threads <= 2; threads++) {
        struct bm_ingest_opts o = opts(threads, BM_INFLATE_AUTO);
        o.max_series = 5;
        struct bm_ingest *in = bm_ingest_new(&o, NULL);
        assert_non_null(in);
        assert_int_equal(feed_all(in, 65536), BM_E_TOO_LARGE);
        /* Failed for good: later calls say so again. */
        assert_int_equal(bm_ingest_feed(in, "x", 1), BM_E_TOO_LARGE);
        assert_int_equal(bm_ingest_finish(in), BM_E_TOO_LARGE);
        bm_ingest_free(in);
    }
}

/* Truncated: BM_E_GZIP at the end, the thread stopped; dropped half-way: freed cleanly (ASan
 * reports a leaked ring or a thread left running). */
static void test_truncated_and_dropped(void **state)
{
    (void)state;
    struct bm_ingest_opts o = opts(2, BM_INFLATE_AUTO);
    struct bm_ingest *in = bm_ingest_new(&o, NULL);
    assert_non_null(in);
    assert_int_equal(bm_ingest_feed(in, big.p, big.len * 2 / 3), BM_OK);
    assert_int_equal(bm_ingest_finish(in), BM_E_GZIP);
    assert_true(bm_ingest_stats(in)->records < big_tot.records);
    bm_ingest_free(in);

    in = bm_ingest_new(&o, NULL);
    assert_non_null(in);
    assert_int_equal(bm_ingest_feed(in, big.p, big.len / 2), BM_OK);
    bm_ingest_free(in);
}

/* Every allocation failing in turn (the ring's buffers, the thread's aggregate growth, the
 * inflate state): a clean BM_E_NOMEM or, once they all succeed, the exact totals. */
static void test_allocation_failures(void **state)
{
    (void)state;
    struct bm_ingest_opts o = opts(2, BM_INFLATE_AUTO);
    for (long k = 0;; k++) {
        bm_alloc_fail_after(k);
        struct bm_ingest *in = bm_ingest_new(&o, NULL);
        bm_err rc = in != NULL ? feed_all(in, 1 << 20) : BM_E_NOMEM;
        bm_alloc_fail_after(-1);
        long failed = bm_alloc_failures();
        if (rc != BM_OK)
            assert_int_equal(rc, BM_E_NOMEM);
        else if (failed == 0)
            assert_writer_totals(in);
        bm_ingest_free(in);
        if (rc == BM_OK && failed == 0)
            break;
        assert_true(k < 100000);
    }
}

/* Two objects at once on this thread: at most CPUs - 1 of them get a parsing thread. */
static void test_extra_threads_capped(void **state)
{
    (void)state;
    enum { N = 4 };
    struct bm_ingest_opts o = opts(2, BM_INFLATE_AUTO);
    struct bm_ingest *in[N];
    for (int i = 0; i < N; i++) {
        in[i] = bm_ingest_new(&o, NULL);
        assert_non_null(in[i]);
        assert_int_equal(bm_ingest_feed(in[i], big.p, big.len / 2), BM_OK);
    }
    long spare = sysconf(_SC_NPROCESSORS_ONLN) - 1;
    int two = 0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(bm_ingest_feed(in[i], big.p + big.len / 2, big.len - big.len / 2), BM_OK);
        assert_int_equal(bm_ingest_finish(in[i]), BM_OK);
        assert_writer_totals(in[i]);
        two += bm_ingest_stats(in[i])->threads == 2;
    }
    assert_true(two <= (spare < N ? spare : N));
    if (spare >= 1)
        assert_true(two >= 1);
    for (int i = 0; i < N; i++)
        bm_ingest_free(in[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_on_one_and_two_threads),
        cmocka_unit_test(test_parse_error_comes_back),
        cmocka_unit_test(test_truncated_and_dropped),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_extra_threads_capped),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
