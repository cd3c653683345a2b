/* Unit tests for core/metrics.c: the Prometheus text format (HELP/TYPE lines, label value and
 * help escaping, cumulative histogram buckets), the AWS operation table, the aggregates'
 * cardinality cap, and a full buffer reported rather than half written. */
#include "tu.h"

/* The line of out starting with prefix (up to its line feed), or "" in a static buffer. */
static const char *line_of(const char *out, const char *prefix)
{
    static char line[512];
    line[0] = '\0';
    size_t pl = strlen(prefix);
    for (const char *p = out; p != NULL && *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (n >= pl && memcmp(p, prefix, pl) == 0 && n < sizeof line) {
            memcpy(line, p, n);
            line[n] = '\0';
            return line;
        }
        p = nl ? nl + 1 : NULL;
    }
    return line;
}

static void test_escaping(void **state)
{
    (void)state;
    struct bm_buf b;
    bm_buf_init(&b, 4096);
    /* Label values: backslash, double quote and line feed escaped, nothing else. */
    const char v[] = "a\\b\"c\nd\te'";
    assert_int_equal(bm_prom_label_value(&b, v, sizeof v - 1), BM_OK);
    assert_int_equal(b.len, strlen("\"a\\\\b\\\"c\\nd\te'\""));
    assert_memory_equal(b.data, "\"a\\\\b\\\"c\\nd\te'\"", b.len);
    bm_buf_reset(&b);
    /* A NUL inside is kept as it is (its length says where the value ends). */
    assert_int_equal(bm_prom_label_value(&b, "x\0y", 3), BM_OK);
    assert_memory_equal(b.data, "\"x\0y\"", 5);
    bm_buf_reset(&b);
    /* HELP text: backslash and line feed only; a double quote stays. */
    assert_int_equal(bm_prom_family(&b, "bmas_x_total", "counter", "say \"hi\"\\ now\nthen"),
                     BM_OK);
    bm_buf_append_char(&b, '\0');
    assert_string_equal(b.data, "# HELP bmas_x_total say \"hi\"\\\\ now\\nthen\n"
                                "# TYPE bmas_x_total counter\n");
    bm_buf_cleanup(&b);
}

static void test_counters_and_histograms(void **state)
{
    (void)state;
    struct bm_metrics *m = bm_metrics_new();
    assert_non_null(m);
    bm_metrics_http(m, BM_MR_EVENTS, 200, 3);
    bm_metrics_http(m, BM_MR_EVENTS, 200, 7);
    bm_metrics_http(m, BM_MR_EVENTS, 503, 2000);
    bm_metrics_http(m, BM_MR__COUNT, 404, 1);    /* out of range: counted as other */
    bm_metrics_http(NULL, BM_MR_EVENTS, 200, 1); /* no metrics: nothing, no crash */
    bm_metrics_aws(m, "GetObject", true, 0, 40);
    bm_metrics_aws(m, "GetObject", false, 2, 120000); /* over the last bound: +Inf only */
    bm_metrics_aws(m, "Unheard", true, 1, 1);
    bm_metrics_aws(m, "SQS ReceiveMessage", true, 0, 1); /* the service named first */
    bm_metrics_ingest(m, true, 10, 1, 300, 12);
    bm_metrics_flush(m, false, -5); /* a clock stepped back: 0 */
    bm_metrics_held_back(m, 3);
    struct bm_buf b;
    bm_buf_init(&b, (size_t)1 << 22);
    assert_int_equal(bm_metrics_write(m, &b), BM_OK);
    bm_buf_append_char(&b, '\0');
    const char *o = b.data;
    assert_string_equal(line_of(o, "bmas_http_requests_total{route=\"/events\",status=\"200\"}"),
                        "bmas_http_requests_total{route=\"/events\",status=\"200\"} 2");
    assert_string_equal(line_of(o, "bmas_http_requests_total{route=\"/events\",status=\"503\"}"),
                        "bmas_http_requests_total{route=\"/events\",status=\"503\"} 1");
    assert_string_equal(line_of(o, "bmas_http_requests_total{route=\"other\",status=\"404\"}"),
                        "bmas_http_requests_total{route=\"other\",status=\"404\"} 1");
    /* Buckets are cumulative: 3 ms and 7 ms fall in le=0.01, 2 s in le=2.5. */
    const char *h = "bmas_http_request_duration_seconds_bucket{route=\"/events\",le=";
    char want[256];
    snprintf(want, sizeof want, "%s\"0.005\"} 1", h);
    assert_string_equal(line_of(o, want), want);
    snprintf(want, sizeof want, "%s\"0.01\"} 2", h);
    assert_string_equal(line_of(o, want), want);
    snprintf(want, sizeof want, "%s\"1\"} 2", h);
    assert_string_equal(line_of(o, want), want);
    snprintf(want, sizeof want, "%s\"2.5\"} 3", h);
    assert_string_equal(line_of(o, want), want);
    snprintf(want, sizeof want, "%s\"+Inf\"} 3", h);
    assert_string_equal(line_of(o, want), want);
    assert_string_equal(line_of(o, "bmas_http_request_duration_seconds_sum{route=\"/events\"}"),
                        "bmas_http_request_duration_seconds_sum{route=\"/events\"} 2.010000");
    assert_string_equal(line_of(o, "bmas_http_request_duration_seconds_count{route=\"/events\"}"),
                        "bmas_http_request_duration_seconds_count{route=\"/events\"} 3");
    const char *g = "{service=\"s3\",operation=\"GetObject\"";
    snprintf(want, sizeof want, "bmas_aws_calls_total%s,outcome=\"ok\"} 1", g);
    assert_string_equal(line_of(o, want), want);
    snprintf(want, sizeof want, "bmas_aws_calls_total%s,outcome=\"error\"} 1", g);
    assert_string_equal(line_of(o, want), want);
    snprintf(want, sizeof want, "bmas_aws_retries_total%s} 2", g);
    assert_string_equal(line_of(o, want), want);
    snprintf(want, sizeof want, "bmas_aws_call_duration_seconds_bucket%s,le=\"60\"} 1", g);
    assert_string_equal(line_of(o, want), want);
    snprintf(want, sizeof want, "bmas_aws_call_duration_seconds_bucket%s,le=\"+Inf\"} 2", g);
    assert_string_equal(line_of(o, want), want);
    assert_string_equal(
        line_of(o, "bmas_aws_calls_total{service=\"other\",operation=\"other\",outcome=\"ok\"}"),
        "bmas_aws_calls_total{service=\"other\",operation=\"other\",outcome=\"ok\"} 1");
    assert_string_equal(
        line_of(o, "bmas_aws_calls_total{service=\"sqs\",operation=\"ReceiveMessage\","
                   "outcome=\"ok\"}"),
        "bmas_aws_calls_total{service=\"sqs\",operation=\"ReceiveMessage\",outcome=\"ok\"} 1");
    assert_string_equal(line_of(o, "bmas_ingest_records_total{outcome=\"invalid\"}"),
                        "bmas_ingest_records_total{outcome=\"invalid\"} 1");
    assert_string_equal(line_of(o, "bmas_ingest_bytes_total "), "bmas_ingest_bytes_total 300");
    assert_string_equal(line_of(o, "bmas_flushes_total{outcome=\"error\"}"),
                        "bmas_flushes_total{outcome=\"error\"} 1");
    assert_string_equal(line_of(o, "bmas_flush_duration_seconds_bucket{le=\"0.005\"}"),
                        "bmas_flush_duration_seconds_bucket{le=\"0.005\"} 1");
    assert_string_equal(line_of(o, "bmas_flush_duration_seconds_sum "),
                        "bmas_flush_duration_seconds_sum 0.000000");
    assert_string_equal(line_of(o, "bmas_cloudwatch_series_held_back_total "),
                        "bmas_cloudwatch_series_held_back_total 3");
    /* Every family has one HELP and one TYPE line, and every sample line a family. */
    assert_string_equal(line_of(o, "# TYPE bmas_aws_call_duration_seconds "),
                        "# TYPE bmas_aws_call_duration_seconds histogram");
    bm_buf_cleanup(&b);

    /* A buffer too small fails, never returns a truncated document as success. */
    bm_buf_init(&b, 1000);
    assert_int_equal(bm_metrics_write(m, &b), BM_E_TOO_LARGE);
    bm_buf_cleanup(&b);
    bm_metrics_free(m);
}

static void add_series(struct bm_agg *a, enum bm_profile_type t, const char *model, uint64_t n)
{
    struct bm_series_key k = {.bucket = BM_NO_BUCKET, .type = t};
    k.model_id = (struct bm_str){model, strlen(model)};
    k.source_region = (struct bm_str){"us-east-1", 9};
    k.inference_region = (struct bm_str){"us-west-2", 9};
    struct bm_counters c = {.invocations = n};
    c.input.sum = 10 * n;
    c.output.sum = 2 * n;
    c.cache_read.sum = 3 * n;
    c.cache_write.sum = 4 * n;
    assert_int_equal(bm_agg_add(a, &k, &c), BM_OK);
}

static void test_aggs_cap(void **state)
{
    (void)state;
    struct bm_agg *a = bm_agg_new(0);
    add_series(a, BM_PT_ON_DEMAND, "m\"1\\", 1);
    add_series(a, BM_PT_CROSS_REGION, "m2", 2);
    add_series(a, BM_PT_GLOBAL, "m3", 4);
    add_series(a, BM_PT_APPLICATION, "m4", 8);
    struct bm_buf b;
    bm_buf_init(&b, (size_t)1 << 20);
    size_t folded = 99;
    assert_int_equal(bm_metrics_write_aggs(a, 0, &b, &folded), BM_OK);
    assert_int_equal(folded, 0);
    bm_buf_append_char(&b, '\0');
    /* The model id's quote and backslash escaped. */
    assert_string_equal(line_of(b.data, "bmas_invocations_total{profile_type=\"OnDemand\""),
                        "bmas_invocations_total{profile_type=\"OnDemand\",model_id=\"m\\\"1\\\\\","
                        "source_region=\"us-east-1\",inference_region=\"us-west-2\"} 1");
    assert_string_equal(line_of(b.data, "bmas_cache_write_input_tokens_total{profile_type="
                                        "\"Application\""),
                        "bmas_cache_write_input_tokens_total{profile_type=\"Application\","
                        "model_id=\"m4\",source_region=\"us-east-1\","
                        "inference_region=\"us-west-2\"} 32");
    assert_string_equal(line_of(b.data, "bmas_metrics_series_folded "),
                        "bmas_metrics_series_folded 0");
    bm_buf_reset(&b);
    /* Capped at 2: the last two rows fold into "other" (4 + 8 invocations). */
    assert_int_equal(bm_metrics_write_aggs(a, 2, &b, &folded), BM_OK);
    assert_int_equal(folded, 2);
    bm_buf_append_char(&b, '\0');
    assert_string_equal(line_of(b.data, "bmas_invocations_total{profile_type=\"other\""),
                        "bmas_invocations_total{profile_type=\"other\",model_id=\"other\","
                        "source_region=\"other\",inference_region=\"other\"} 12");
    assert_string_equal(line_of(b.data, "bmas_input_tokens_total{profile_type=\"other\""),
                        "bmas_input_tokens_total{profile_type=\"other\",model_id=\"other\","
                        "source_region=\"other\",inference_region=\"other\"} 120");
    assert_string_equal(
        line_of(b.data, "bmas_invocations_total{profile_type=\"GlobalCrossRegion\""), "");
    assert_string_equal(line_of(b.data, "bmas_metrics_series_folded "),
                        "bmas_metrics_series_folded 2");
    bm_buf_cleanup(&b);
    bm_agg_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_counters_and_histograms),
        cmocka_unit_test(test_aggs_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
