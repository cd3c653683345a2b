/* Unit tests for the CloudWatch statistics math (emulator/cloudwatch.c): periods aligned to the
 * rounded StartTime, [start, end) windows, units kept apart, exact sums and extremes. */
#include "tu.h"

#include "emulator/emu_int.h"

static void test_aggregate(void **state)
{
    (void)state;
    int count = bm__emu_cw_unit("Count"), secs = bm__emu_cw_unit("Seconds");
    assert_true(count > 0 && secs > 0);
    assert_int_equal(bm__emu_cw_unit("Bytes/Second"), bm__emu_cw_unit("Bytes/Second"));
    assert_int_equal(bm__emu_cw_unit("Furlongs"), -1);
    assert_string_equal(bm__emu_cw_unit_name(count), "Count");
    /* t = 1000 * 60 is a minute boundary. */
    struct emu_point pts[] = {
        {60000, 2.5, 1, 2.5, 2.5, 0},   /* Value 2.5 at :00 */
        {60030, 11, 7, 1, 2, 0},        /* Values [1,2] Counts [3,4] at :30 */
        {60059, 10, 2, 4, 6, 0},        /* StatisticValues */
        {60060, 500, 5, 7, 300, 0},     /* next minute */
        {60120, 1, 1, 1, 1, 0},         /* at end: excluded */
        {59999, 99, 1, 99, 99, 0},      /* before start: excluded */
        {60010, 1000, 1, 1000, 1000, 0} /* another unit */
    };
    pts[0].unit = pts[1].unit = pts[2].unit = pts[3].unit = pts[4].unit = pts[5].unit = count;
    pts[6].unit = secs;
    struct emu_series s = {.pts = pts, .n_pts = sizeof pts / sizeof pts[0]};
    static const struct {
        int64_t start, end;
        long period;
        int unit; /* 0 = Count, 1 = Seconds, -1 any */
        size_t n;
        struct emu_stat want[2];
    } cases[] = {
        {60000, 60120, 60, 0, 2, {{60000, 23.5, 10, 1, 6}, {60060, 500, 5, 7, 300}}},
        {60000, 60120, 120, 0, 1, {{60000, 523.5, 15, 1, 300}}},
        /* An unaligned start is rounded down to its minute. */
        {60015, 60120, 60, 0, 2, {{60000, 23.5, 10, 1, 6}, {60060, 500, 5, 7, 300}}},
        {60000, 60060, 60, 1, 1, {{60000, 1000, 1, 1000, 1000}}},
        {60000, 60060, 60, -1, 1, {{60000, 1023.5, 11, 1, 1000}}},
        /* Sub-minute periods align to themselves. */
        {60000, 60060, 30, 0, 2, {{60000, 2.5, 1, 2.5, 2.5}, {60030, 21, 9, 1, 6}}},
        {70000, 80000, 60, 0, 0, {{0}}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct emu_stat *out = NULL;
        size_t n = 99;
        int unit = cases[i].unit < 0 ? -1 : cases[i].unit == 0 ? count : secs;
        assert_int_equal(
            bm__emu_cw_aggregate(&s, cases[i].start, cases[i].end, cases[i].period, unit, &out, &n),
            BM_OK);
        assert_int_equal(n, cases[i].n);
        for (size_t k = 0; k < n; k++) {
            assert_int_equal(out[k].ts, cases[i].want[k].ts);
            assert_true(out[k].sum == cases[i].want[k].sum);
            assert_true(out[k].count == cases[i].want[k].count);
            assert_true(out[k].min == cases[i].want[k].min);
            assert_true(out[k].max == cases[i].want[k].max);
        }
        bm_free(out);
    }
}

/* SEARCH expressions (cw_search.c): the dashboards' form parsed; every form it does not
 * evaluate refused with a reason, never read as an empty search. */
static void test_search_parse(void **state)
{
    (void)state;
    struct emu_search q;
    char err[200];
    assert_true(bm__emu_cw_search_parse(
        "SEARCH('{Custom/BedrockMetrics,InferenceProfileType,ModelId} MetricName=\"InputTokens\"', "
        "'Sum', 300)",
        &q, err, sizeof err));
    assert_string_equal(q.ns, "Custom/BedrockMetrics");
    assert_int_equal(q.nd, 2);
    assert_string_equal(q.dims[0], "InferenceProfileType");
    assert_string_equal(q.dims[1], "ModelId");
    assert_int_equal(q.nt, 1);
    assert_string_equal(q.terms[0].k, "MetricName");
    assert_string_equal(q.terms[0].v, "InputTokens");
    assert_string_equal(q.stat, "Sum");
    assert_int_equal(q.period, 300);
    assert_true(bm__emu_cw_search_parse(" SEARCH( ' { \"N S\" , \"A\" }  A=x ' , 'Maximum' , 60 ) ",
                                        &q, err, sizeof err));
    assert_string_equal(q.ns, "N S");
    assert_string_equal(q.dims[0], "A");
    assert_string_equal(q.terms[0].v, "x");
    assert_int_equal(q.period, 60);
    static const char *const bad[] = {
        "SUM(METRICS())",
        "SEARCH('MetricName=\"x\"', 'Sum', 60)",
        "SEARCH('{N,A} Input', 'Sum', 60)",
        "SEARCH('{N,A} A=x OR A=y', 'Sum', 60)",
        "SEARCH('{N,A} B=x', 'Sum', 60)",
        "SEARCH('{N,A} A=x', 'Sum', 0)",
        "SEARCH('{N,A} A=x', 'Sum', 60",
        "SEARCH('{N,A} A=x', 'Sum', 60) + 1",
        "SEARCH('{N,A A=x', 'Sum', 60)",
        "SEARCH('{N,A} A=\"x', 'Sum', 60)",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_false(bm__emu_cw_search_parse(bad[i], &q, err, sizeof err));
        assert_true(err[0] != '\0');
    }
    /* Matching: the namespace, exactly the schema's names, every term. */
    struct emu_kv d2[] = {{"A", "x"}, {"B", "y"}}, d1[] = {{"A", "x"}};
    struct emu_series s2 = {.ns = "N", .name = "M", .dims = d2, .n_dims = 2};
    struct emu_series s1 = {.ns = "N", .name = "M", .dims = d1, .n_dims = 1};
    assert_true(
        bm__emu_cw_search_parse("SEARCH('{N,B,A} MetricName=M', 'Sum', 60)", &q, err, sizeof err));
    assert_true(bm__emu_cw_search_match(&q, &s2));
    assert_false(bm__emu_cw_search_match(&q, &s1));
    assert_true(bm__emu_cw_search_parse("SEARCH('{N,A} A=x', 'Sum', 60)", &q, err, sizeof err));
    assert_true(bm__emu_cw_search_match(&q, &s1));
    assert_false(bm__emu_cw_search_match(&q, &s2));
    assert_true(bm__emu_cw_search_parse("SEARCH('{N,A} A=y', 'Sum', 60)", &q, err, sizeof err));
    assert_false(bm__emu_cw_search_match(&q, &s1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_aggregate),
                                       cmocka_unit_test(test_search_parse)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
