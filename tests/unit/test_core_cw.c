/* The CloudWatch sender over a scripted transport: one planned body sent as it was planned
 * (the Query form, gzipped over 16 KB), a throttled call retried alone, retries exhausted
 * (throttled or not), a call refused for good, and exact StatisticValues of merged rows. The
 * planner's own limits are in test_core_cwplan.c; the claims around each call in
 * test_storage_outbox.c. */
#include "fake_http.h"

#include <zlib.h>

struct rows {
    struct bm_cw_row v[700];
    char model[700][300], profile[700][300];
    size_t n;
};

static void ob_add(struct rows *o, int64_t bucket, enum bm_profile_type t, const char *model,
                   uint64_t inv, uint64_t in, uint64_t mn, uint64_t mx)
{
    assert_true(o->n < 700);
    struct bm_cw_row *r = &o->v[o->n];
    snprintf(o->model[o->n], sizeof o->model[0], "%s", model);
    snprintf(o->profile[o->n], sizeof o->profile[0], "us.%s", model);
    r->id = (int64_t)o->n + 1;
    r->key = (struct bm_series_key){.bucket = bucket,
                                    .type = t,
                                    .model_id = {o->model[o->n], strlen(o->model[o->n])},
                                    .profile_id = {o->profile[o->n], strlen(o->profile[o->n])},
                                    .source_region = {"us-east-1", 9},
                                    .inference_region = {"us-west-2", 9},
                                    .operation = {"Converse", 8}};
    r->c.invocations = inv;
    r->c.input = (struct bm_stat){in, mn, mx};
    r->c.output = (struct bm_stat){inv * 2, 2, 2};
    r->c.cache_read = (struct bm_stat){0, 0, 0};
    r->c.cache_write = (struct bm_stat){7, 0, 7};
    o->n++;
}

/* ---- environment ---- */
struct env {
    struct fake_aws a;
    struct rows *ob;
    struct bm_dimsets dims;
};
static const char *const cw_env[] = {"AWS_ACCESS_KEY_ID",
                                     "AKID",
                                     "AWS_SECRET_ACCESS_KEY",
                                     "s",
                                     "AWS_ENDPOINT_URL_CLOUDWATCH",
                                     "http://cw.local:4566",
                                     "MAX_RETRY_ATTEMPTS",
                                     "4",
                                     "CLOUDWATCH_NAMESPACE",
                                     "Team/Bedrock Usage",
                                     NULL};
static const int64_t NOW = 1776643200 + 3600; /* 2026-04-20T01:00:00Z */

static void env_setup(struct env *e, const char *dimsets)
{
    memset(e, 0, sizeof *e);
    fake_aws_setup(&e->a, cw_env, NOW);
    struct bm_errmsg em;
    e->ob = bm_calloc(1, sizeof *e->ob);
    assert_int_equal(bm_dimsets_parse(dimsets, &e->dims, &em), BM_OK);
}

static void env_teardown(struct env *e)
{
    fake_aws_teardown(&e->a);
    bm_free(e->ob);
}

/* Plans e's rows (all of them into requests) and sends request k; returns bm_cw_send's code. */
static bm_err send_k(struct env *e, struct bm_cw_plan **plan, size_t k,
                     struct bm_cw_send_result *sr)
{
    if (*plan == NULL) {
        struct bm_cw_plan_opts o = {
            .dims = &e->dims, .namespace_name = "Team/Bedrock Usage", .now = NOW};
        assert_int_equal(bm_cw_plan_make(&o, e->ob->v, e->ob->n, plan), BM_OK);
    }
    struct bm_buf b;
    bm_buf_init(&b, BM_CW_MAX_BODY + 4096);
    assert_int_equal(bm_cw_plan_body(*plan, k, &b), BM_OK);
    bm_err rc = bm_cw_send(&e->a.aws, &b, sr);
    bm_buf_cleanup(&b);
    return rc;
}

/* ---- reading a sent body back ---- */
static void form_body(const struct fake_call *c, struct bm_buf *out)
{
    bool gzipped = false;
    for (size_t i = 0; i < c->nheaders; i++)
        gzipped |= strcmp(c->headers[i], "Content-Encoding: gzip") == 0;
    bm_buf_init(out, 1 << 26);
    if (!gzipped) {
        bm_buf_append(out, c->body.data, c->body.len);
        return;
    }
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    assert_int_equal(inflateInit2(&zs, 16 + MAX_WBITS), Z_OK);
    bm_buf_reserve(out, c->body.len * 20 + 1024);
    zs.next_in = (unsigned char *)c->body.data;
    zs.avail_in = (uInt)c->body.len;
    zs.next_out = (unsigned char *)out->data;
    zs.avail_out = (uInt)(out->cap - 1);
    assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
    out->len = out->cap - 1 - zs.avail_out;
    out->data[out->len] = '\0';
    inflateEnd(&zs);
}

/* Number of datums (distinct MetricData.member.N) in a body. */
static int datums_in(const char *body)
{
    int max = 0;
    for (const char *p = body; (p = strstr(p, "MetricData.member.")) != NULL; p++) {
        int n = (int)strtol(p + 18, NULL, 10);
        if (n > max)
            max = n;
    }
    return max;
}

/* Sum of a statistic over the datums of metric with the single dimension value dimval. */
static unsigned long long stat_sum(const char *body, const char *metric, const char *stat,
                                   const char *dimval)
{
    unsigned long long total = 0;
    int n = datums_in(body);
    for (int i = 1; i <= n; i++) {
        char key[128];
        snprintf(key, sizeof key, "&MetricData.member.%d.MetricName=%s&", i, metric);
        if (strstr(body, key) == NULL)
            continue;
        char dkey[512];
        snprintf(dkey, sizeof dkey, "&MetricData.member.%d.Dimensions.member.1.Value=%s", i,
                 dimval);
        const char *d = strstr(body, dkey);
        if (d == NULL || (d[strlen(dkey)] != '&' && d[strlen(dkey)] != '\0'))
            continue;
        snprintf(dkey, sizeof dkey, "&MetricData.member.%d.Dimensions.member.2.", i);
        if (strstr(body, dkey) != NULL)
            continue;
        snprintf(key, sizeof key, "&MetricData.member.%d.StatisticValues.%s=", i, stat);
        const char *v = strstr(body, key);
        assert_non_null(v);
        total += strtoull(v + strlen(key), NULL, 10);
    }
    return total;
}

static void test_dimsets(void **state)
{
    (void)state;
    struct bm_dimsets d;
    struct bm_errmsg em;
    assert_int_equal(bm_dimsets_parse("InferenceProfileType;InferenceProfileType,ModelId;"
                                      "SourceRegion,InferenceProfileType",
                                      &d, &em),
                     BM_OK);
    assert_int_equal(d.n, 3);
    assert_int_equal(d.set[1].n, 2);
    assert_int_equal(d.set[1].d[1], BM_DIM_MODEL_ID);
    assert_int_equal(d.set[2].d[0], BM_DIM_SOURCE_REGION);
    assert_int_equal(bm_dimsets_parse(" ModelId , Operation ;; ", &d, &em), BM_OK);
    assert_int_equal(d.n, 1);
    assert_int_equal(bm_dimsets_parse("ModelId;Model", &d, &em), BM_E_CONFIG);
    assert_non_null(strstr(em.text, "BMAS_DIMENSION_SETS"));
    assert_non_null(strstr(em.text, "\"Model\""));
    assert_int_equal(bm_dimsets_parse("ModelId,ModelId", &d, &em), BM_E_CONFIG);
    /* The replaced Lambda's names, beside ours, and "()" for no dimensions. */
    assert_int_equal(bm_dimsets_parse("InferenceProfile; Region ,ModelId;ApplicationId;();"
                                      "InferenceProfileType",
                                      &d, &em),
                     BM_OK);
    assert_int_equal(d.n, 5);
    assert_int_equal(d.set[0].n, 1);
    assert_int_equal(d.set[0].d[0], BM_DIM_INFERENCE_PROFILE);
    assert_int_equal(d.set[1].d[0], BM_DIM_REGION);
    assert_int_equal(d.set[1].d[1], BM_DIM_MODEL_ID);
    assert_int_equal(d.set[2].d[0], BM_DIM_APPLICATION_ID);
    assert_int_equal(d.set[3].n, 0);
    assert_int_equal(d.set[4].d[0], BM_DIM_PROFILE_TYPE);
    assert_string_equal(bm_dim_name(BM_DIM_INFERENCE_PROFILE), "InferenceProfile");
    assert_string_equal(bm_dim_name(BM_DIM_REGION), "Region");
    assert_string_equal(bm_dim_name(BM_DIM_APPLICATION_ID), "ApplicationId");
    /* The preset: exactly the three sets the Lambda's dashboard and CLI examples read. */
    assert_int_equal(bm_dimsets_parse("lambda-compat", &d, &em), BM_OK);
    assert_int_equal(d.n, 3);
    assert_int_equal(d.set[0].n, 1);
    assert_int_equal(d.set[0].d[0], BM_DIM_INFERENCE_PROFILE);
    assert_int_equal(d.set[1].n, 1);
    assert_int_equal(d.set[1].d[0], BM_DIM_REGION);
    assert_int_equal(d.set[2].n, 0);
    /* Only the whole value is the preset. */
    assert_int_equal(bm_dimsets_parse("lambda-compat;ModelId", &d, &em), BM_E_CONFIG);
    /* A set twice (in any order) would count every datum twice. */
    assert_int_equal(bm_dimsets_parse("();()", &d, &em), BM_E_CONFIG);
    assert_non_null(strstr(em.text, "set 2 repeats set 1"));
    assert_int_equal(bm_dimsets_parse("ModelId,Region;Region,ModelId", &d, &em), BM_E_CONFIG);
    /* Different names for the same value are different CloudWatch metrics: allowed. */
    assert_int_equal(bm_dimsets_parse("InferenceProfile;InferenceProfileType", &d, &em), BM_OK);
    /* Five dimensions per set at most; "()" only alone. */
    assert_int_equal(
        bm_dimsets_parse("ModelId,ProfileId,SourceRegion,InferenceRegion,Operation", &d, &em),
        BM_OK);
    assert_int_equal(bm_dimsets_parse("ModelId,ProfileId,SourceRegion,InferenceRegion,Operation,"
                                      "InferenceProfileType",
                                      &d, &em),
                     BM_E_CONFIG);
    assert_int_equal(bm_dimsets_parse("(),ModelId", &d, &em), BM_E_CONFIG);
}

/* Rows from several objects for the same minute: CloudWatch sees their merged statistics. */
static void test_exact_statistics(void **state)
{
    (void)state;
    struct env e;
    env_setup(&e, "InferenceProfileType;InferenceProfileType,ModelId");
    ob_add(e.ob, NOW - 600, BM_PT_CROSS_REGION, "anthropic.a", 3, 300, 50, 200);
    ob_add(e.ob, NOW - 600, BM_PT_CROSS_REGION, "anthropic.a", 2, 40, 10, 30);
    ob_add(e.ob, NOW - 600, BM_PT_CROSS_REGION, "anthropic.b", 1, 5, 5, 5);
    ob_add(e.ob, NOW - 600, BM_PT_GLOBAL, "anthropic.a", 4, 4000, 500, 2000);
    fake_push(&e.a.http, (struct fake_resp){.status = 200, .body = ""});
    struct bm_cw_plan *plan = NULL;
    struct bm_cw_send_result sr;
    assert_int_equal(send_k(&e, &plan, 0, &sr), BM_OK);
    assert_true(sr.accepted);
    assert_int_equal(e.a.http.ncalls, 1);
    assert_int_equal(plan->datums, 25);
    struct bm_buf b;
    form_body(&e.a.http.calls[0], &b);
    assert_string_equal(e.a.http.calls[0].service, "monitoring");
    assert_string_equal(e.a.http.calls[0].url, "http://cw.local:4566/");
    assert_non_null(
        strstr(b.data, "Action=PutMetricData&Version=2010-08-01&Namespace=Team%2FBedrock%20Usage"));
    assert_int_equal(stat_sum(b.data, "InputTokens", "Sum", "CrossRegion"), 300 + 40 + 5);
    assert_int_equal(stat_sum(b.data, "InputTokens", "SampleCount", "CrossRegion"), 6);
    assert_int_equal(stat_sum(b.data, "InvocationCount", "Sum", "CrossRegion"), 6);
    assert_int_equal(stat_sum(b.data, "InputTokens", "Sum", "GlobalCrossRegion"), 4000);
    assert_int_equal(stat_sum(b.data, "OutputTokens", "Sum", "GlobalCrossRegion"), 8);
    assert_int_equal(stat_sum(b.data, "CacheWriteInputTokens", "Sum", "CrossRegion"), 21);
    assert_non_null(strstr(b.data, "Timestamp=2026-04-20T00%3A50%3A00Z"));
    assert_non_null(strstr(b.data, "StatisticValues.Minimum=5&"));
    assert_non_null(strstr(b.data, "StatisticValues.Maximum=2000&"));
    bm_buf_cleanup(&b);
    bm_cw_plan_free(plan);
    env_teardown(&e);
}

/* n on-demand models in one minute, one invocation each: with the ModelId dimension set, n
 * groups of five datums. */
static void add_models(struct rows *ob, int n)
{
    char m[64];
    for (int i = 0; i < n; i++) {
        snprintf(m, sizeof m, "p.m%d", i);
        ob_add(ob, NOW - 600, BM_PT_ON_DEMAND, m, 1, 1, 1, 1);
    }
}

static const struct fake_resp throttled = {
    .status = 400,
    .body = "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate "
            "exceeded</Message></Error></ErrorResponse>"};

static void test_throttled_request_retried_alone(void **state)
{
    (void)state;
    struct env e;
    env_setup(&e, "ModelId");
    add_models(e.ob, 250); /* 250 groups: two requests (200 + 50) */
    fake_push(&e.a.http, (struct fake_resp){.status = 200, .body = ""});
    fake_push(&e.a.http, throttled);
    fake_push(&e.a.http, (struct fake_resp){.status = 200, .body = ""});
    struct bm_cw_plan *plan = NULL;
    struct bm_cw_send_result sr;
    assert_int_equal(send_k(&e, &plan, 0, &sr), BM_OK);
    assert_int_equal(send_k(&e, &plan, 1, &sr), BM_OK);
    assert_int_equal(plan->nreq, 2);
    assert_int_equal(e.a.http.ncalls, 3);
    assert_int_equal(sr.failed_attempts, 1);
    assert_string_equal(sr.error_type, ""); /* accepted in the end */
    /* The retry re-sent the second request, byte for byte, and not the first. */
    assert_int_equal(e.a.http.calls[1].body.len, e.a.http.calls[2].body.len);
    assert_memory_equal(e.a.http.calls[1].body.data, e.a.http.calls[2].body.data,
                        e.a.http.calls[1].body.len);
    assert_true(e.a.http.calls[0].body.len != e.a.http.calls[1].body.len ||
                memcmp(e.a.http.calls[0].body.data, e.a.http.calls[1].body.data,
                       e.a.http.calls[0].body.len) != 0);
    assert_int_equal(e.a.clock.sleeps, 1);
    bm_cw_plan_free(plan);
    env_teardown(&e);
}

static void test_retries_exhausted(void **state)
{
    (void)state;
    struct env e;
    env_setup(&e, "ModelId");
    add_models(e.ob, 3);
    for (int i = 0; i < 4; i++)
        fake_push(&e.a.http,
                  (struct fake_resp){.status = 503,
                                     .body = "<Error><Code>ServiceUnavailable</Code></Error>"});
    for (int i = 0; i < 4; i++)
        fake_push(&e.a.http, throttled);
    struct bm_cw_plan *plan = NULL;
    struct bm_cw_send_result sr;
    assert_int_equal(send_k(&e, &plan, 0, &sr), BM_E_PUBLISH);
    assert_string_equal(bm_err_wire(BM_E_PUBLISH), "BMAS-004");
    assert_int_equal(e.a.http.ncalls, 4); /* MAX_RETRY_ATTEMPTS */
    assert_true(sr.answered && !sr.accepted && !sr.refused && !sr.throttled);
    assert_non_null(strstr(sr.em.text, "ServiceUnavailable"));
    /* BMAS-004's details: CloudWatch's code, and the calls made (3 retries). */
    assert_string_equal(sr.error_type, "ServiceUnavailable");
    assert_int_equal(sr.attempts, 4);
    /* Throttled to the end: its own code, so the publisher backs off. */
    assert_int_equal(send_k(&e, &plan, 0, &sr), BM_E_THROTTLED);
    assert_true(sr.throttled);
    assert_string_equal(sr.error_type, "Throttling");
    assert_int_equal(e.a.http.ncalls, 8);
    /* Nobody answering: not answered (the call may or may not have arrived). */
    for (int i = 0; i < 4; i++)
        fake_push(&e.a.http, (struct fake_resp){.transport_error = true});
    assert_int_equal(send_k(&e, &plan, 0, &sr), BM_E_PUBLISH);
    assert_int_equal(e.a.http.ncalls, 12);
    assert_false(sr.answered);
    assert_string_equal(sr.error_type, "TransportError");
    bm_cw_plan_free(plan);
    env_teardown(&e);
}

static void test_refused_for_good(void **state)
{
    (void)state;
    struct env e;
    env_setup(&e, "ModelId");
    add_models(e.ob, 1);
    fake_push(&e.a.http, (struct fake_resp){.status = 400,
                                            .body = "<ErrorResponse><Error><Code>"
                                                    "InvalidParameterValue</Code></Error>"
                                                    "</ErrorResponse>"});
    struct bm_cw_plan *plan = NULL;
    struct bm_cw_send_result sr;
    assert_int_equal(send_k(&e, &plan, 0, &sr), BM_E_PUBLISH);
    assert_true(sr.refused);
    assert_int_equal(e.a.http.ncalls, 1); /* resending cannot help: not retried */
    assert_non_null(strstr(sr.em.text, "InvalidParameterValue"));
    assert_string_equal(sr.error_type, "InvalidParameterValue");
    assert_int_equal(sr.attempts, 1);
    bm_cw_plan_free(plan);
    env_teardown(&e);
}

/* Bodies over 16 KB go gzipped and inflate to exactly the planned body. */
static void test_gzip(void **state)
{
    (void)state;
    struct env e;
    env_setup(&e, "ModelId,ProfileId,SourceRegion,InferenceRegion,Operation");
    char m[300];
    for (int i = 0; i < 600; i++) {
        memset(m, 'a' + i % 26, 245);
        snprintf(m + 245, sizeof m - 245, "%04d", i);
        ob_add(e.ob, NOW - 600, BM_PT_CROSS_REGION, m, 1, 1, 1, 1);
    }
    struct bm_cw_plan *plan = NULL;
    struct bm_cw_send_result sr;
    for (int i = 0; i < 10; i++)
        fake_push(&e.a.http, (struct fake_resp){.status = 200, .body = ""});
    assert_int_equal(send_k(&e, &plan, 0, &sr), BM_OK);
    assert_true(plan->nreq >= 3); /* 600 groups of ~4 KB: the megabyte binds, not 1000 datums */
    struct bm_buf got, want;
    form_body(&e.a.http.calls[0], &got);
    bm_buf_init(&want, BM_CW_MAX_BODY + 4096);
    assert_int_equal(bm_cw_plan_body(plan, 0, &want), BM_OK);
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.data, want.data, want.len);
    assert_true(want.len > BM_CW_MAX_BODY * 9 / 10 && want.len <= BM_CW_MAX_BODY);
    assert_true(e.a.http.calls[0].body.len < want.len / 4); /* gzipped on the wire */
    assert_int_equal(datums_in(got.data), (int)plan->req[0].ndatums);
    bm_buf_cleanup(&got);
    bm_buf_cleanup(&want);
    bm_cw_plan_free(plan);
    env_teardown(&e);
}

int main(void)
{
    bm_log_set_level(BM_LOG_OFF); /* retries log warnings by design; keep the TAP output clean */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dimsets),
        cmocka_unit_test(test_exact_statistics),
        cmocka_unit_test(test_throttled_request_retried_alone),
        cmocka_unit_test(test_retries_exhausted),
        cmocka_unit_test(test_refused_for_good),
        cmocka_unit_test(test_gzip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
