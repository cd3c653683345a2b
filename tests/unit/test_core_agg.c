/* Aggregates: counters and min/max, the series cap, all-or-nothing adds under allocation
 * failure, regrouping, sorting, and the /aggregates JSON and table renderings. */
#include "tu.h"

static struct bm_series_key key(int64_t bucket, enum bm_profile_type t, const char *model,
                                const char *src, const char *inf, const char *op)
{
    struct bm_series_key k = {
        .bucket = bucket,
        .type = t,
        .model_id = {model, strlen(model)},
        .profile_id = {model, strlen(model)},
        .source_region = {src, strlen(src)},
        .inference_region = {inf, strlen(inf)},
        .operation = {op, strlen(op)},
    };
    return k;
}

static void add(struct bm_agg *a, struct bm_series_key k, uint64_t in, uint64_t out)
{
    struct bm_counters c;
    bm_counters_one(&c, in, out, in / 2, 0);
    assert_int_equal(bm_agg_add(a, &k, &c), BM_OK);
}

static void test_counters_and_minmax(void **state)
{
    (void)state;
    struct bm_agg *a = bm_agg_new(0);
    struct bm_series_key k = key(60, BM_PT_CROSS_REGION, "m", "us-east-1", "us-west-2", "Converse");
    add(a, k, 10, 1);
    add(a, k, 30, 0);
    add(a, k, 20, 7);
    assert_int_equal(bm_agg_count(a), 1);
    const struct bm_series *s = bm_agg_at(a, 0);
    assert_int_equal(s->c.invocations, 3);
    assert_int_equal(s->c.input.sum, 60);
    assert_int_equal(s->c.input.min, 10);
    assert_int_equal(s->c.input.max, 30);
    assert_int_equal(s->c.output.min, 0);
    assert_int_equal(s->c.output.max, 7);
    assert_int_equal(s->c.cache_read.sum, 5 + 15 + 10);
    /* Keys own their strings: a series added from the caller's buffers keeps its own copy
     * when those buffers change (a separate aggregate, so the counts below stay). */
    struct bm_agg *own = bm_agg_new(0);
    char model[] = "mine";
    char op[] = "Converse";
    add(own, key(60, BM_PT_CROSS_REGION, model, "us-east-1", "us-west-2", op), 1, 1);
    memset(model, 'x', sizeof model - 1);
    memset(op, 'y', sizeof op - 1);
    assert_int_equal(bm_agg_count(own), 1);
    assert_memory_equal(bm_agg_at(own, 0)->key.model_id.p, "mine", 4);
    assert_int_equal(bm_agg_at(own, 0)->key.model_id.len, 4);
    assert_memory_equal(bm_agg_at(own, 0)->key.operation.p, "Converse", 8);
    bm_agg_free(own);
    /* Any field difference is a new series. */
    add(a, key(120, BM_PT_CROSS_REGION, "m", "us-east-1", "us-west-2", "Converse"), 1, 1);
    add(a, key(60, BM_PT_GLOBAL, "m", "us-east-1", "us-west-2", "Converse"), 1, 1);
    add(a, key(60, BM_PT_CROSS_REGION, "m", "us-east-1", "us-east-2", "Converse"), 1, 1);
    add(a, key(60, BM_PT_CROSS_REGION, "m", "us-east-1", "us-west-2", "InvokeModel"), 1, 1);
    add(a, key(60, BM_PT_CROSS_REGION, "m", "us-east-1", "us-west-2", ""), 1, 1);
    assert_int_equal(bm_agg_count(a), 6);
    struct bm_counters t;
    bm_agg_totals(a, &t);
    assert_int_equal(t.invocations, 8);
    assert_int_equal(t.input.sum, 65);
    assert_int_equal(t.input.min, 1);
    assert_int_equal(t.input.max, 30);
    bm_agg_free(a);
}

static void test_many_series_and_merge(void **state)
{
    (void)state;
    struct bm_agg *a = bm_agg_new(0);
    struct bm_agg *b = bm_agg_new(0);
    char name[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof name, "model-%d", i);
        add(a, key(i % 7 * 60, BM_PT_ON_DEMAND, name, "us-east-1", "us-east-1", "Converse"), 2, 1);
        if (i % 2 == 0)
            add(b, key(i % 7 * 60, BM_PT_ON_DEMAND, name, "us-east-1", "us-east-1", "Converse"), 3,
                1);
    }
    assert_int_equal(bm_agg_count(a), 5000);
    assert_int_equal(bm_agg_merge(a, b), BM_OK);
    assert_int_equal(bm_agg_count(a), 5000);
    struct bm_counters t;
    bm_agg_totals(a, &t);
    assert_int_equal(t.invocations, 7500);
    assert_int_equal(t.input.sum, 5000 * 2 + 2500 * 3);
    /* Sorting keeps lookups working. */
    assert_int_equal(bm_agg_sort(a, NULL), BM_OK);
    for (size_t i = 1; i < bm_agg_count(a); i++)
        assert_true(bm_agg_at(a, i - 1)->key.bucket <= bm_agg_at(a, i)->key.bucket);
    add(a, key(0, BM_PT_ON_DEMAND, "model-0", "us-east-1", "us-east-1", "Converse"), 1, 1);
    assert_int_equal(bm_agg_count(a), 5000);
    bm_agg_free(a);
    bm_agg_free(b);
}

static void test_cap_and_oom(void **state)
{
    (void)state;
    struct bm_agg *a = bm_agg_new(3);
    add(a, key(0, BM_PT_ON_DEMAND, "a", "r", "r", "o"), 1, 1);
    add(a, key(0, BM_PT_ON_DEMAND, "b", "r", "r", "o"), 1, 1);
    add(a, key(0, BM_PT_ON_DEMAND, "c", "r", "r", "o"), 1, 1);
    struct bm_counters c;
    bm_counters_one(&c, 1, 1, 0, 0);
    struct bm_series_key k = key(0, BM_PT_ON_DEMAND, "d", "r", "r", "o");
    assert_int_equal(bm_agg_add(a, &k, &c), BM_E_TOO_LARGE);
    k = key(0, BM_PT_ON_DEMAND, "a", "r", "r", "o");
    assert_int_equal(bm_agg_add(a, &k, &c), BM_OK); /* existing series still grow */
    bm_agg_free(a);

    /* Under allocation failure an add either happens completely or not at all. */
    for (long n = 0; n < 200; n++) {
        a = bm_agg_new(0);
        assert_non_null(a);
        bm_alloc_fail_after(n);
        uint64_t ok = 0;
        char name[16];
        for (int i = 0; i < 100; i++) {
            snprintf(name, sizeof name, "m%d", i);
            k = key(0, BM_PT_ON_DEMAND, name, "r", "r", "o");
            if (bm_agg_add(a, &k, &c) == BM_OK)
                ok++;
        }
        bm_alloc_fail_after(-1);
        bm_alloc_failures();
        assert_int_equal(bm_agg_count(a), ok);
        struct bm_counters t;
        bm_agg_totals(a, &t);
        assert_int_equal(t.invocations, ok);
        bm_agg_free(a);
    }
}

static void test_regroup_and_json(void **state)
{
    (void)state;
    struct bm_agg *a = bm_agg_new(0);
    add(a,
        key(1776643200 + 30, BM_PT_CROSS_REGION, "anthropic.x", "us-east-1", "us-east-2",
            "Converse"),
        100, 10);
    add(a, key(1776643200, BM_PT_CROSS_REGION, "anthropic.x", "us-east-1", "us-west-2", "Converse"),
        50, 5);
    add(a, key(1776643260, BM_PT_ON_DEMAND, "amazon.y", "eu-west-1", "eu-west-1", "InvokeModel"), 7,
        0);
    struct bm_group_by g;
    struct bm_errmsg em;
    assert_int_equal(bm_group_by_parse("minute, model_id", &g, &em), BM_OK);
    struct bm_agg *r = NULL;
    assert_int_equal(bm_agg_regroup(a, &g, &r), BM_OK);
    assert_int_equal(bm_agg_sort(r, &g), BM_OK);
    assert_int_equal(bm_agg_count(r), 2);
    struct bm_buf b;
    bm_buf_init(&b, 1 << 20);
    assert_int_equal(bm_agg_write_json(r, &g, 1776643200, BM_NO_BUCKET, &b), BM_OK);
    assert_string_equal(
        b.data,
        "{\"from\":\"2026-04-20T00:00:00Z\",\"to\":null,\"group_by\":[\"minute\",\"model_id\"],"
        "\"rows\":[{\"minute\":\"2026-04-20T00:00:00Z\",\"model_id\":\"anthropic.x\","
        "\"invocations\":2,\"input_tokens\":150,\"output_tokens\":15,"
        "\"cache_read_input_tokens\":75,\"cache_write_input_tokens\":0,"
        "\"cost_usd\":0,\"unpriced_invocations\":0},"
        "{\"minute\":\"2026-04-20T00:01:00Z\",\"model_id\":\"amazon.y\",\"invocations\":1,"
        "\"input_tokens\":7,\"output_tokens\":0,\"cache_read_input_tokens\":3,"
        "\"cache_write_input_tokens\":0,"
        "\"cost_usd\":0,\"unpriced_invocations\":0}],"
        "\"totals\":{\"invocations\":3,\"input_tokens\":157,\"output_tokens\":15,"
        "\"cache_read_input_tokens\":78,\"cache_write_input_tokens\":0,"
        "\"cost_usd\":0,\"unpriced_invocations\":0}}");
    bm_agg_free(r);

    /* No grouping: one row with only counters. */
    assert_int_equal(bm_group_by_parse("", &g, &em), BM_OK);
    assert_int_equal(bm_agg_regroup(a, &g, &r), BM_OK);
    assert_int_equal(bm_agg_count(r), 1);
    bm_buf_reset(&b);
    assert_int_equal(bm_agg_write_json(r, &g, BM_NO_BUCKET, BM_NO_BUCKET, &b), BM_OK);
    assert_non_null(strstr(b.data, "\"group_by\":[],\"rows\":[{\"invocations\":3,"));
    bm_agg_free(r);

    /* The table has a header, one line per row and a TOTAL line, numbers right-aligned. */
    assert_int_equal(bm_group_by_parse("profile_type,inference_region", &g, &em), BM_OK);
    assert_int_equal(bm_agg_regroup(a, &g, &r), BM_OK);
    assert_int_equal(bm_agg_sort(r, &g), BM_OK);
    bm_buf_reset(&b);
    assert_int_equal(bm_agg_write_table(r, &g, &b), BM_OK);
    assert_string_equal(
        b.data,
        "profile_type  inference_region  invocations  input  output  cache_read  cache_write"
        "  cost_usd  unpriced\n"
        "CrossRegion   us-east-2                   1    100      10          50            0"
        "         0         0\n"
        "CrossRegion   us-west-2                   1     50       5          25            0"
        "         0         0\n"
        "OnDemand      eu-west-1                   1      7       0           3            0"
        "         0         0\n"
        "TOTAL                                     3    157      15          78            0"
        "         0         0\n");
    bm_agg_free(r);
    bm_buf_cleanup(&b);
    bm_agg_free(a);
}

static void test_group_by_errors(void **state)
{
    (void)state;
    struct bm_group_by g;
    struct bm_errmsg em;
    assert_int_equal(bm_group_by_parse("model", &g, &em), BM_E_BAD_REQUEST);
    assert_non_null(strstr(em.text, "\"model\""));
    assert_int_equal(bm_group_by_parse("model_id,model_id", &g, &em), BM_E_BAD_REQUEST);
    assert_int_equal(bm_group_by_parse(BM_GROUP_BY_DEFAULT, &g, &em), BM_OK);
    assert_int_equal(g.n, 4);
    assert_int_equal(g.f[0], BM_G_MODEL_ID);
    assert_int_equal(g.f[3], BM_G_INFERENCE_REGION);
    assert_int_equal(bm_group_by_parse("operation,profile_id,,", &g, &em), BM_OK);
    assert_int_equal(g.n, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counters_and_minmax), cmocka_unit_test(test_many_series_and_merge),
        cmocka_unit_test(test_cap_and_oom),         cmocka_unit_test(test_regroup_and_json),
        cmocka_unit_test(test_group_by_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
