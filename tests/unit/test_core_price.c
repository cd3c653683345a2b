/* The price file (core/price.c): parsing into pico-dollars per token, the errors that name
 * file:line, the most specific row, the integer cost of an invocation and how costs carry when
 * summed; and cost through the ingest of a small object. */
#include "tu.h"

#define TU_N(a) (sizeof(a) / sizeof((a)[0]))

static struct bm_str tu_s(const char *s)
{
    return (struct bm_str){s, strlen(s)};
}

static struct bm_prices *parse_ok(const char *csv)
{
    struct bm_prices *p = NULL;
    struct bm_errmsg em = {{0}};
    if (bm_prices_parse(csv, strlen(csv), "p.csv", &p, &em) != BM_OK)
        fail_msg("parse: %s", em.text);
    return p;
}

static void parse_err(const char *csv, const char *want)
{
    struct bm_prices *p = NULL;
    struct bm_errmsg em = {{0}};
    assert_int_equal(bm_prices_parse(csv, strlen(csv), "p.csv", &p, &em), BM_E_CONFIG);
    assert_null(p);
    if (strstr(em.text, want) == NULL)
        fail_msg("error \"%s\" lacks \"%s\"", em.text, want);
}

static void test_parse(void **state)
{
    (void)state;
    struct bm_prices *p =
        parse_ok("# comment\r\n"
                 "\n"
                 "cache_write_per_mtok,model_id,input_per_mtok,output_per_mtok,cache_read_per_mtok,"
                 "region,profile_type\r\n"
                 "  # indented comment\n"
                 "3.75,m.a,3,15,0.3,,\r\n"
                 ",\"m.b\",0.035,0.14,0.00875,eu-west-1,CrossRegion\n"
                 "0.000001,m.c,1000000,0,0,, GlobalCrossRegion "); /* no final newline */
    assert_int_equal(p->n, 3);
    /* USD per million tokens = micro-dollars per token = 10^6 pico-dollars per token. */
    assert_string_equal(p->v[0].model_id, "m.a");
    assert_string_equal(p->v[0].region, "");
    assert_int_equal(p->v[0].type, BM_PT__COUNT);
    assert_int_equal(p->v[0].pico[0], 3000000);
    assert_int_equal(p->v[0].pico[1], 15000000);
    assert_int_equal(p->v[0].pico[2], 300000);
    assert_int_equal(p->v[0].pico[3], 3750000);
    assert_int_equal(p->v[0].line, 5);
    assert_string_equal(p->v[1].model_id, "m.b");
    assert_string_equal(p->v[1].region, "eu-west-1");
    assert_int_equal(p->v[1].type, BM_PT_CROSS_REGION);
    assert_int_equal(p->v[1].pico[0], 35000);
    assert_int_equal(p->v[1].pico[2], 8750);
    assert_false(p->v[1].has[3]);
    assert_true(p->v[1].has[2]);
    assert_int_equal(p->v[2].pico[0], 1000000000000ULL);
    assert_int_equal(p->v[2].pico[3], 1);
    assert_int_equal(p->v[2].type, BM_PT_GLOBAL);
    bm_prices_free(p);
    bm_prices_free(NULL);
}

static void test_errors(void **state)
{
    (void)state;
    static const char *const h =
        "model_id,input_per_mtok,output_per_mtok,cache_read_per_mtok,cache_write_per_mtok\n";
    char buf[512];
    parse_err("", "p.csv:0: no header line");
    parse_err("# only comments\n", "p.csv:1: no header line");
    parse_err("model_id,input_per_mtok\n", "p.csv:1: the header lacks output_per_mtok");
    parse_err("model_id,input_per_mtok,output_per_mtok,cache_read_per_mtok,"
              "cache_write_per_mtok,colour\n",
              "p.csv:1: header column \"colour\" is unknown");
    parse_err("model_id,model_id\n", "given twice");
    static const struct {
        const char *row, *want;
    } cases[] = {
        {"m,1,2,3\n", "p.csv:3: 4 cells where the header has 5"},
        {"m,1,2,3,4,5\n", "p.csv:3: 6 cells"},
        {",1,2,3,4\n", "p.csv:3: model_id is empty"},
        {"m,1,,3,4\n", "p.csv:3: input_per_mtok and output_per_mtok are required"},
        {"m,1,x,3,4\n", "p.csv:3: output_per_mtok \"x\" is not a price"},
        {"m,-1,2,3,4\n", "p.csv:3: input_per_mtok \"-1\""},
        {"m,1.0000001,2,3,4\n", "at most 6 fractional digits"},
        {"m,1e3,2,3,4\n", "input_per_mtok \"1e3\""},
        {"m,.,2,3,4\n", "input_per_mtok \".\""},
        {"m,1000001,2,3,4\n", "input_per_mtok \"1000001\""},
        {"m,1,2,3,4\nm,5,6,7,8\n", "p.csv:4: the same model_id, region and profile_type as line 3"},
    };
    for (size_t i = 0; i < TU_N(cases); i++) {
        snprintf(buf, sizeof buf, "# c\n%s%s", h, cases[i].row);
        parse_err(buf, cases[i].want);
    }
    parse_err("model_id,input_per_mtok,output_per_mtok,cache_read_per_mtok,cache_write_per_mtok,"
              "profile_type\nm,1,2,3,4,Batch\n",
              "p.csv:2: profile_type \"Batch\" is none of");
    /* Allowed: ".5" and "5." are decimals. */
    struct bm_prices *p = parse_ok("model_id,input_per_mtok,output_per_mtok,cache_read_per_mtok,"
                                   "cache_write_per_mtok\nm,.5,5.,,\n");
    assert_int_equal(p->v[0].pico[0], 500000);
    assert_int_equal(p->v[0].pico[1], 5000000);
    bm_prices_free(p);
    struct bm_errmsg em = {{0}};
    assert_int_equal(bm_prices_load("/nonexistent/prices.csv", &p, &em), BM_E_CONFIG);
    assert_non_null(strstr(em.text, "/nonexistent/prices.csv:0: cannot open"));
}

static const struct bm_price *find(const struct bm_prices *p, const char *m, const char *r,
                                   enum bm_profile_type t)
{
    return bm_prices_find(p, tu_s(m), tu_s(r), t);
}

static void test_most_specific(void **state)
{
    (void)state;
    struct bm_prices *p =
        parse_ok("model_id,input_per_mtok,output_per_mtok,cache_read_per_mtok,cache_write_per_mtok,"
                 "region,profile_type\n"
                 "m,1,1,,,,\n"                     /* line 2: any */
                 "m,2,2,,,,GlobalCrossRegion\n"    /* line 3: the type */
                 "m,3,3,,,eu-west-1,\n"            /* line 4: the region */
                 "m,4,4,,,eu-west-1,CrossRegion\n" /* line 5: both */
                 "mm,5,5,,,us-east-1,\n");         /* line 6: only in us-east-1 */
    assert_int_equal(find(p, "m", "us-east-1", BM_PT_ON_DEMAND)->line, 2);
    assert_int_equal(find(p, "m", "us-east-1", BM_PT_GLOBAL)->line, 3);
    assert_int_equal(find(p, "m", "eu-west-1", BM_PT_ON_DEMAND)->line, 4);
    assert_int_equal(find(p, "m", "eu-west-1", BM_PT_GLOBAL)->line, 4); /* region beats type */
    assert_int_equal(find(p, "m", "eu-west-1", BM_PT_CROSS_REGION)->line, 5);
    assert_int_equal(find(p, "mm", "us-east-1", BM_PT_ON_DEMAND)->line, 6);
    assert_null(find(p, "mm", "us-east-2", BM_PT_ON_DEMAND));
    assert_null(find(p, "m2", "us-east-1", BM_PT_ON_DEMAND));
    assert_null(find(p, "", "us-east-1", BM_PT_ON_DEMAND));
    assert_null(find(NULL, "m", "us-east-1", BM_PT_ON_DEMAND));
    bm_prices_free(p);
}

static void test_cost_math(void **state)
{
    (void)state;
    struct bm_prices *p = parse_ok(
        "model_id,input_per_mtok,output_per_mtok,cache_read_per_mtok,cache_write_per_mtok\n"
        "m,3.3,16.5,0.33,4.125\n"
        "n,0.035,0.14,,\n");
    struct bm_cost c = {0, 0};
    /* 255 x 3.3 + 113 x 16.5 = 841.5 + 1864.5 = 2706 micro-dollars exactly. */
    const uint64_t t1[4] = {255, 113, 0, 0};
    assert_true(bm_price_cost(&p->v[0], t1, &c));
    assert_int_equal(c.micro, 2706);
    assert_int_equal(c.pico, 0);
    /* 1 x 0.33 + 1 x 4.125 = 4.455 micro-dollars: 4 and 455,000 pico. */
    const uint64_t t2[4] = {0, 0, 1, 1};
    assert_true(bm_price_cost(&p->v[0], t2, &c));
    assert_int_equal(c.micro, 4);
    assert_int_equal(c.pico, 455000);
    /* Nova-like: 7 input tokens at 0.035 = 0.245 micro-dollars. */
    const uint64_t t3[4] = {7, 0, 0, 0};
    assert_true(bm_price_cost(&p->v[1], t3, &c));
    assert_int_equal(c.micro, 0);
    assert_int_equal(c.pico, 245000);
    /* Cache tokens without a cache price: unpriced, c untouched. */
    const uint64_t t4[4] = {7, 1, 1, 0};
    assert_false(bm_price_cost(&p->v[1], t4, &c));
    assert_int_equal(c.pico, 245000);
    const uint64_t big[4] = {UINT64_MAX / 2, 0, 0, 0};
    assert_false(bm_price_cost(&p->v[0], big, &c));
    /* Sums carry pico-dollars into micro-dollars: a million calls of 0.245 = 245,000 exactly,
     * where rounding each call to the micro-dollar would have given 0. */
    struct bm_cost sum = {0, 0};
    for (int i = 0; i < 1000000; i++)
        bm_cost_add(&sum, &c);
    assert_int_equal(sum.micro, 245000);
    assert_int_equal(sum.pico, 0);
    struct bm_cost half = {1, 500000}, below = {1, 499999};
    assert_int_equal(bm_cost_micro_rounded(&half), 2);
    assert_int_equal(bm_cost_micro_rounded(&below), 1);
    static const struct {
        struct bm_cost c;
        const char *text;
    } usd[] = {{{0, 0}, "0"},         {{0, 499999}, "0"},     {{1, 0}, "0.000001"},
               {{1500000, 0}, "1.5"}, {{123, 0}, "0.000123"}, {{12345678, 0}, "12.345678"},
               {{2000000, 0}, "2"},   {{999999, 500000}, "1"}};
    for (size_t i = 0; i < TU_N(usd); i++) {
        struct bm_buf b;
        bm_buf_init(&b, 64);
        assert_int_equal(bm_cost_append_usd(&b, &usd[i].c), BM_OK);
        assert_string_equal(b.data, usd[i].text);
        bm_buf_cleanup(&b);
    }
    bm_prices_free(p);
}

/* Through the ingest: priced, unpriced (no row; cache tokens without a cache price) and the
 * price of the source Region, with the expected cost worked out by hand. */
static void test_ingest_cost(void **state)
{
    (void)state;
    struct bm_prices *p =
        parse_ok("model_id,input_per_mtok,output_per_mtok,cache_read_per_mtok,cache_write_per_mtok,"
                 "region\n"
                 "amazon.nova-lite-v1:0,0.06,0.24,,,\n"
                 "amazon.nova-lite-v1:0,0.07,0.28,,,eu-west-1\n");
    static const char *const lines =
        "{\"timestamp\":\"2026-04-20T00:00:01Z\",\"region\":\"us-east-1\",\"modelId\":"
        "\"amazon.nova-lite-v1:0\",\"input\":{\"inputTokenCount\":1000},"
        "\"output\":{\"outputTokenCount\":500}}\n"
        "{\"timestamp\":\"2026-04-20T00:00:02Z\",\"region\":\"us-east-1\",\"modelId\":"
        "\"amazon.nova-lite-v1:0\",\"input\":{\"inputTokenCount\":1,"
        "\"cacheReadInputTokenCount\":5},\"output\":{\"outputTokenCount\":1}}\n"
        "{\"timestamp\":\"2026-04-20T00:00:03Z\",\"region\":\"eu-west-1\",\"modelId\":"
        "\"eu.amazon.nova-lite-v1:0\",\"input\":{\"inputTokenCount\":3},"
        "\"output\":{\"outputTokenCount\":2}}\n"
        "{\"timestamp\":\"2026-04-20T00:00:04Z\",\"region\":\"us-east-1\",\"modelId\":"
        "\"amazon.titan-embed-text-v2:0\",\"input\":{\"inputTokenCount\":9}}\n";
    struct bm_ingest_opts o = {
        .inflate = BM_INFLATE_ZLIB,
        .max_line_bytes = 1 << 20,
        .max_object_bytes = 1ULL << 32,
        .bucket_seconds = 60,
        .max_series = 1000,
        .cls = {.cross_region = true, .global_cross_region = true},
        .prices = p,
    };
    struct bm_ingest *in = bm_ingest_new(&o, NULL);
    assert_non_null(in);
    assert_int_equal(bm_ingest_feed(in, lines, strlen(lines)), BM_OK);
    assert_int_equal(bm_ingest_finish(in), BM_OK);
    struct bm_counters t;
    bm_agg_totals(bm_ingest_agg(in), &t);
    assert_int_equal(t.invocations, 4);
    /* 1000 x 0.06 + 500 x 0.24 = 180 micro-dollars (us-east-1), and in eu-west-1 at its own
     * price 3 x 0.07 + 2 x 0.28 = 0.77; the cache read without a price and the model without
     * a row are unpriced. */
    assert_int_equal(t.cost.micro, 180);
    assert_int_equal(t.cost.pico, 770000);
    assert_int_equal(t.unpriced, 2);
    bm_ingest_free(in);
    bm_prices_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),         cmocka_unit_test(test_errors),
        cmocka_unit_test(test_most_specific), cmocka_unit_test(test_cost_math),
        cmocka_unit_test(test_ingest_cost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
