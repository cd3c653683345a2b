/* The CloudWatch publisher over a scripted transport and an in-memory outbox: packing at the
 * 1000-datum and 1 MB limits, exact StatisticValues, a throttled request retried alone, rows
 * marked only after success, old/future/oversized rows, and gzip bodies. */
#include "fake_http.h"

#include <zlib.h>

/* ---- an in-memory outbox ---- */
struct ob_row {
    struct bm_outbox_row r;
    char model[300], profile[300];
    int state; /* -1 pending, else enum bm_outbox_state */
};
struct outbox {
    struct ob_row *rows;
    size_t n;
    struct bm_outbox_row *out;
    int marks;
    uint64_t requests, datums;
};

static bm_err ob_fetch(void *impl, uint64_t after, size_t max, const struct bm_outbox_row **rows,
                       size_t *n)
{
    struct outbox *o = impl;
    o->out = bm_calloc(max, sizeof *o->out);
    size_t k = 0;
    for (size_t i = 0; i < o->n && k < max; i++) {
        struct ob_row *r = &o->rows[i];
        /* The rows array moves as it grows: point the key at its strings now. */
        r->r.key.model_id = (struct bm_str){r->model, strlen(r->model)};
        r->r.key.profile_id = (struct bm_str){r->profile, strlen(r->profile)};
        if (r->state < 0 && r->r.id > after)
            o->out[k++] = r->r;
    }
    *rows = o->out;
    *n = k;
    return BM_OK;
}

static void ob_release(void *impl)
{
    struct outbox *o = impl;
    BM_FREE(o->out);
}

static bm_err ob_mark(void *impl, const uint64_t *ids, size_t n, enum bm_outbox_state st,
                      uint64_t datums, uint64_t requests)
{
    struct outbox *o = impl;
    o->marks++;
    o->datums += datums;
    o->requests += requests;
    for (size_t i = 0; i < n; i++) {
        assert_true(ids[i] >= 1 && ids[i] <= o->n);
        assert_int_equal(o->rows[ids[i] - 1].state, -1); /* never marked twice */
        o->rows[ids[i] - 1].state = (int)st;
    }
    return BM_OK;
}

static void ob_add(struct outbox *o, int64_t bucket, enum bm_profile_type t, const char *model,
                   uint64_t inv, uint64_t in, uint64_t mn, uint64_t mx)
{
    o->rows = bm_realloc(o->rows, (o->n + 1) * sizeof *o->rows);
    struct ob_row *r = &o->rows[o->n];
    memset(r, 0, sizeof *r);
    snprintf(r->model, sizeof r->model, "%s", model);
    snprintf(r->profile, sizeof r->profile, "us.%s", model);
    r->r.id = ++o->n;
    r->r.key = (struct bm_series_key){.bucket = bucket,
                                      .type = t,
                                      .model_id = {r->model, strlen(r->model)},
                                      .profile_id = {r->profile, strlen(r->profile)},
                                      .source_region = {"us-east-1", 9},
                                      .inference_region = {"us-west-2", 9},
                                      .operation = {"Converse", 8}};
    r->r.c.invocations = inv;
    r->r.c.input = (struct bm_stat){in, mn, mx};
    r->r.c.output = (struct bm_stat){inv * 2, 2, 2};
    r->r.c.cache_read = (struct bm_stat){0, 0, 0};
    r->r.c.cache_write = (struct bm_stat){7, 0, 7};
    r->state = -1;
}

static void ob_free(struct outbox *o)
{
    bm_free(o->rows);
    memset(o, 0, sizeof *o);
}

static size_t count_state(const struct outbox *o, int st)
{
    size_t k = 0;
    for (size_t i = 0; i < o->n; i++)
        k += o->rows[i].state == st;
    return k;
}

/* ---- environment ---- */
struct env {
    struct fake_aws a;
    struct outbox ob;
    struct bm_outbox_ops obops;
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
    e->obops = (struct bm_outbox_ops){ob_fetch, ob_release, ob_mark, &e->ob};
    assert_int_equal(bm_dimsets_parse(dimsets, &e->dims, &em), BM_OK);
}

static void env_teardown(struct env *e)
{
    fake_aws_teardown(&e->a);
    ob_free(&e->ob);
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
}

/* n distinct models, one dimension set (ModelId): n groups of five datums each. */
static void run_groups(int groups, int want_requests, int want_first)
{
    struct env e;
    env_setup(&e, "ModelId");
    char m[64];
    for (int i = 0; i < groups; i++) {
        snprintf(m, sizeof m, "provider.model-%04d", i);
        ob_add(&e.ob, NOW - 600, BM_PT_ON_DEMAND, m, 1, 10, 10, 10);
    }
    for (int i = 0; i < want_requests; i++)
        fake_push(&e.a.http, (struct fake_resp){.status = 200, .body = "<PutMetricDataResponse/>"});
    struct bm_publish_result res;
    assert_int_equal(bm_cw_publish(&e.a.aws, &e.dims, &e.obops, NOW, &res), BM_OK);
    assert_int_equal(e.a.http.ncalls, want_requests);
    assert_int_equal(res.requests, want_requests);
    assert_int_equal(res.datums, groups * 5);
    struct bm_buf b;
    form_body(&e.a.http.calls[0], &b);
    assert_int_equal(datums_in(b.data), want_first);
    assert_non_null(
        strstr(b.data, "Action=PutMetricData&Version=2010-08-01&Namespace=Team%2FBedrock%20Usage"));
    bm_buf_cleanup(&b);
    assert_int_equal(count_state(&e.ob, BM_OUTBOX_PUBLISHED), (size_t)groups);
    assert_int_equal(e.ob.requests, (uint64_t)want_requests);
    assert_int_equal(e.ob.datums, (uint64_t)groups * 5);
    env_teardown(&e);
}

static void test_packing_at_the_datum_limit(void **state)
{
    (void)state;
    /* Five metrics per series, so the edges are 995, 1000 and 1005 datums. */
    run_groups(199, 1, 995);
    run_groups(200, 1, 1000);
    run_groups(201, 2, 1000);
    run_groups(600, 3, 1000);
    run_groups(601, 4, 1000);
}

static void test_exact_statistics(void **state)
{
    (void)state;
    struct env e;
    env_setup(&e, "InferenceProfileType;InferenceProfileType,ModelId");
    /* Rows from several objects for the same minute: CloudWatch must see their merged set. */
    ob_add(&e.ob, NOW - 600, BM_PT_CROSS_REGION, "anthropic.a", 3, 300, 50, 200);
    ob_add(&e.ob, NOW - 600, BM_PT_CROSS_REGION, "anthropic.a", 2, 40, 10, 30);
    ob_add(&e.ob, NOW - 600, BM_PT_CROSS_REGION, "anthropic.b", 1, 5, 5, 5);
    ob_add(&e.ob, NOW - 600, BM_PT_GLOBAL, "anthropic.a", 4, 4000, 500, 2000);
    fake_push(&e.a.http, (struct fake_resp){.status = 200, .body = ""});
    struct bm_publish_result res;
    assert_int_equal(bm_cw_publish(&e.a.aws, &e.dims, &e.obops, NOW, &res), BM_OK);
    assert_int_equal(e.a.http.ncalls, 1);
    /* Groups: {CrossRegion}, {GlobalCrossRegion}, {CrossRegion,a}, {CrossRegion,b}, {Global,a} */
    assert_int_equal(res.datums, 25);
    struct bm_buf b;
    form_body(&e.a.http.calls[0], &b);
    assert_string_equal(e.a.http.calls[0].service, "monitoring");
    assert_string_equal(e.a.http.calls[0].url, "http://cw.local:4566/");
    assert_int_equal(stat_sum(b.data, "InputTokens", "Sum", "CrossRegion"), 300 + 40 + 5);
    assert_int_equal(stat_sum(b.data, "InputTokens", "SampleCount", "CrossRegion"), 6);
    assert_int_equal(stat_sum(b.data, "InvocationCount", "Sum", "CrossRegion"), 6);
    assert_int_equal(stat_sum(b.data, "InputTokens", "Sum", "GlobalCrossRegion"), 4000);
    assert_int_equal(stat_sum(b.data, "OutputTokens", "Sum", "GlobalCrossRegion"), 8);
    assert_int_equal(stat_sum(b.data, "CacheWriteInputTokens", "Sum", "CrossRegion"), 21);
    /* Min and max of the merged CrossRegion set (first dimension set, exact datum). */
    assert_non_null(strstr(b.data, "Dimensions.member.1.Name=InferenceProfileType"));
    assert_non_null(strstr(b.data, "Dimensions.member.2.Name=ModelId&"));
    assert_non_null(strstr(b.data, "Timestamp=2026-04-20T00%3A50%3A00Z"));
    assert_non_null(strstr(b.data, "StatisticValues.Minimum=5&"));
    assert_non_null(strstr(b.data, "StatisticValues.Maximum=2000&"));
    assert_non_null(strstr(b.data, "Unit=Count"));
    bm_buf_cleanup(&b);
    env_teardown(&e);
}

/* n on-demand models in one minute, one invocation each: with the ModelId dimension set, n
 * groups of five datums. */
static void add_models(struct outbox *ob, int n)
{
    char m[64];
    for (int i = 0; i < n; i++) {
        snprintf(m, sizeof m, "p.m%d", i);
        ob_add(ob, NOW - 600, BM_PT_ON_DEMAND, m, 1, 1, 1, 1);
    }
}

static void test_throttled_request_retried_alone(void **state)
{
    (void)state;
    struct env e;
    env_setup(&e, "ModelId");
    add_models(&e.ob, 250); /* 250 series: two requests (200 + 50) */
    fake_push(&e.a.http, (struct fake_resp){.status = 200, .body = ""});
    fake_push(&e.a.http,
              (struct fake_resp){.status = 400,
                                 .body = "<ErrorResponse><Error><Type>Sender</Type><Code>"
                                         "Throttling</Code><Message>Rate exceeded</Message>"
                                         "</Error></ErrorResponse>"});
    fake_push(&e.a.http, (struct fake_resp){.status = 200, .body = ""});
    struct bm_publish_result res;
    assert_int_equal(bm_cw_publish(&e.a.aws, &e.dims, &e.obops, NOW, &res), BM_OK);
    assert_int_equal(e.a.http.ncalls, 3);
    assert_int_equal(res.requests, 2);
    assert_int_equal(res.failed_requests, 1);
    /* The retry re-sent the second request, byte for byte, and not the first. */
    assert_int_equal(e.a.http.calls[1].body.len, e.a.http.calls[2].body.len);
    assert_memory_equal(e.a.http.calls[1].body.data, e.a.http.calls[2].body.data,
                        e.a.http.calls[1].body.len);
    assert_true(e.a.http.calls[0].body.len != e.a.http.calls[1].body.len ||
                memcmp(e.a.http.calls[0].body.data, e.a.http.calls[1].body.data,
                       e.a.http.calls[0].body.len) != 0);
    assert_int_equal(count_state(&e.ob, BM_OUTBOX_PUBLISHED), 250);
    assert_int_equal(e.ob.marks, 2);
    assert_int_equal(e.a.clock.sleeps, 1);
    env_teardown(&e);
}

static void test_retries_exhausted_keep_rows_pending(void **state)
{
    (void)state;
    struct env e;
    env_setup(&e, "ModelId");
    add_models(&e.ob, 250); /* 250 series: two requests (200 + 50) */
    fake_push(&e.a.http, (struct fake_resp){.status = 200, .body = ""});
    for (int i = 0; i < 4; i++)
        fake_push(&e.a.http,
                  (struct fake_resp){.status = 503,
                                     .body = "<Error><Code>ServiceUnavailable</Code></Error>"});
    struct bm_publish_result res;
    assert_int_equal(bm_cw_publish(&e.a.aws, &e.dims, &e.obops, NOW, &res), BM_E_PUBLISH);
    assert_string_equal(bm_err_wire(res.last_error), "BMAS-004");
    assert_int_equal(e.a.http.ncalls, 5);
    assert_int_equal(count_state(&e.ob, BM_OUTBOX_PUBLISHED), 200);
    assert_int_equal(count_state(&e.ob, -1), 50); /* pending, for the next flush */
    assert_non_null(strstr(res.last_error_msg.text, "ServiceUnavailable"));
    /* The next flush sends only what is left. */
    fake_push(&e.a.http, (struct fake_resp){.status = 200, .body = ""});
    assert_int_equal(bm_cw_publish(&e.a.aws, &e.dims, &e.obops, NOW, &res), BM_OK);
    assert_int_equal(res.datums, 250);
    assert_int_equal(count_state(&e.ob, BM_OUTBOX_PUBLISHED), 250);
    env_teardown(&e);
}

static void test_rejected_old_future_and_overflow(void **state)
{
    (void)state;
    struct env e;
    env_setup(&e, "ModelId;InferenceProfileType");
    char longid[300];
    memset(longid, 'x', 280);
    longid[280] = '\0';
    ob_add(&e.ob, NOW - 15 * 86400, BM_PT_ON_DEMAND, "p.old", 1, 1, 1, 1);  /* dropped */
    ob_add(&e.ob, NOW + 3 * 3600, BM_PT_ON_DEMAND, "p.future", 1, 1, 1, 1); /* waits */
    ob_add(&e.ob, NOW - 60, BM_PT_ON_DEMAND, longid, 1, 1, 1, 1);           /* ModelId overflows */
    ob_add(&e.ob, NOW - 60, BM_PT_ON_DEMAND, "p.ok", 1, 1, 1, 1);
    fake_push(&e.a.http, (struct fake_resp){.status = 200, .body = ""});
    struct bm_publish_result res;
    assert_int_equal(bm_cw_publish(&e.a.aws, &e.dims, &e.obops, NOW, &res), BM_OK);
    assert_int_equal(res.rows_dropped, 1);
    assert_int_equal(res.dimension_overflow, 1);
    assert_int_equal(e.ob.rows[0].state, BM_OUTBOX_DROPPED);
    assert_int_equal(e.ob.rows[1].state, -1);
    assert_int_equal(e.ob.rows[2].state, BM_OUTBOX_PUBLISHED); /* under InferenceProfileType */
    struct bm_buf b;
    form_body(&e.a.http.calls[0], &b);
    assert_null(strstr(b.data, "xxxxxxxxxx"));
    bm_buf_cleanup(&b);
    env_teardown(&e);

    /* CloudWatch refusing a request for good (400 InvalidParameterValue): rejected, not
     * retried, not left to wedge the outbox. */
    env_setup(&e, "ModelId");
    ob_add(&e.ob, NOW - 60, BM_PT_ON_DEMAND, "p.a", 1, 1, 1, 1);
    fake_push(&e.a.http, (struct fake_resp){.status = 400,
                                            .body = "<ErrorResponse><Error><Code>"
                                                    "InvalidParameterValue</Code></Error>"
                                                    "</ErrorResponse>"});
    assert_int_equal(bm_cw_publish(&e.a.aws, &e.dims, &e.obops, NOW, &res), BM_OK);
    assert_int_equal(e.a.http.ncalls, 1);
    assert_int_equal(res.rows_rejected, 1);
    assert_int_equal(e.ob.rows[0].state, BM_OUTBOX_REJECTED);
    env_teardown(&e);
}

static void test_size_limit_and_gzip(void **state)
{
    (void)state;
    struct env e;
    env_setup(&e, "ModelId,ProfileId,SourceRegion,InferenceRegion,Operation");
    /* 250-character ids: each series' five datums take ~4 KB, so 1 MB binds before 1000. */
    char m[300];
    for (int i = 0; i < 600; i++) {
        memset(m, 'a' + i % 26, 245);
        snprintf(m + 245, sizeof m - 245, "%04d", i);
        ob_add(&e.ob, NOW - 600, BM_PT_CROSS_REGION, m, 1, 1, 1, 1);
    }
    for (int i = 0; i < 10; i++)
        fake_push(&e.a.http, (struct fake_resp){.status = 200, .body = ""});
    struct bm_publish_result res;
    assert_int_equal(bm_cw_publish(&e.a.aws, &e.dims, &e.obops, NOW, &res), BM_OK);
    size_t total = 0;
    assert_true(e.a.http.ncalls >= 3);
    for (size_t i = 0; i < e.a.http.ncalls; i++) {
        struct bm_buf b;
        form_body(&e.a.http.calls[i], &b);
        assert_true(b.len <= BM_CW_MAX_BODY);
        assert_true(datums_in(b.data) < 1000);
        /* Each body but the last is well filled: no needless calls. */
        if (i + 1 < e.a.http.ncalls)
            assert_true(b.len > BM_CW_MAX_BODY * 9 / 10);
        assert_true(e.a.http.calls[i].body.len < b.len / 4); /* gzipped on the wire */
        total += (size_t)datums_in(b.data);
        bm_buf_cleanup(&b);
    }
    assert_int_equal(total, 3000);
    assert_int_equal(count_state(&e.ob, BM_OUTBOX_PUBLISHED), 600);
    env_teardown(&e);
}

int main(void)
{
    bm_log_set_level(BM_LOG_OFF); /* retries log warnings by design; keep the TAP output clean */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dimsets),
        cmocka_unit_test(test_packing_at_the_datum_limit),
        cmocka_unit_test(test_exact_statistics),
        cmocka_unit_test(test_throttled_request_retried_alone),
        cmocka_unit_test(test_retries_exhausted_keep_rows_pending),
        cmocka_unit_test(test_rejected_old_future_and_overflow),
        cmocka_unit_test(test_size_limit_and_gzip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
