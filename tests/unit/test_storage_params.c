/* GET /aggregates' parameters (storage/query_params.c), table-driven: each parameter read,
 * defaults, every refusal BM_E_BAD_REQUEST naming what was wrong, *q untouched on failure.
 * The fuzz target tests/fuzz/fuzz_aggquery.c drives the same function with raw query strings. */
#include "test_storage_tu.h"

struct param_case {
    const char *names[4];
    const char *values[4];
    bm_err want;
    const char *says; /* in em for a refusal */
};

static void test_params(void **state)
{
    (void)state;
    static const struct param_case cases[] = {
        {{NULL}, {NULL}, BM_OK, NULL},
        {{"from", "to"}, {"2026-04-20T00:00:00Z", "2026-04-20T01:00:00Z"}, BM_OK, NULL},
        {{"to", "from"}, {"2026-04-20T00:00:00Z", "2026-04-20T00:00:00Z"}, BM_OK, NULL},
        {{"group_by", "profile_type"}, {"", "GlobalCrossRegion"}, BM_OK, NULL},
        {{"from"}, {"yesterday"}, BM_E_BAD_REQUEST, "from: expected RFC 3339"},
        {{"to", "from"},
         {"2026-04-20T00:00:00Z", "2026-04-21T00:00:00Z"},
         BM_E_BAD_REQUEST,
         "to is before from"},
        {{"model"}, {"x"}, BM_E_BAD_REQUEST, "unknown parameter \"model\""},
        {{"group_by"}, {"model"}, BM_E_BAD_REQUEST, "model"},
        {{"profile_type"}, {"ondemand"}, BM_E_BAD_REQUEST, "profile_type"},
        {{""}, {""}, BM_E_BAD_REQUEST, "unknown parameter"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct param_case *c = &cases[i];
        size_t n = 0;
        while (n < 4 && c->names[n] != NULL)
            n++;
        struct bm_db_query q;
        memset(&q, 0x5a, sizeof q);
        struct bm_errmsg em = {{0}};
        bm_err rc = bm_db_query_parse(&q, c->names, c->values, n, &em);
        if (rc != c->want)
            fail_msg("case %zu: %s (%s)", i, bm_err_str(rc), em.text);
        if (rc != BM_OK) {
            assert_non_null(strstr(em.text, c->says));
            assert_int_equal(q.from, (int64_t)0x5a5a5a5a5a5a5a5aLL); /* untouched */
        }
    }
}

static void test_values(void **state)
{
    (void)state;
    const char *names[] = {"from", "model_id", "source_region", "inference_region", "profile_type"};
    const char *values[] = {"2026-04-20T00:00:00Z", "m", "us-east-1", "eu-west-1", "CrossRegion"};
    struct bm_db_query q;
    assert_int_equal(bm_db_query_parse(&q, names, values, 5, NULL), BM_OK);
    assert_int_equal(q.from, 1776643200);
    assert_int_equal(q.to, BM_NO_BUCKET);
    assert_string_equal(q.model_id, "m");
    assert_string_equal(q.source_region, "us-east-1");
    assert_string_equal(q.inference_region, "eu-west-1");
    assert_int_equal(q.profile_type, BM_PT_CROSS_REGION);
    assert_true(q.sums_only);
    /* The default grouping, and none at all for "group_by=". */
    assert_int_equal(q.group_by.n, 4);
    const char *g[] = {"group_by"}, *none[] = {""};
    assert_int_equal(bm_db_query_parse(&q, g, none, 1, NULL), BM_OK);
    assert_int_equal(q.group_by.n, 0);
    assert_int_equal(q.profile_type, BM_PT__COUNT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
