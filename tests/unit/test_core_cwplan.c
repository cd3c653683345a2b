/* The PutMetricData planner (core/cw_plan.c), a pure function: rows merged per dimension set,
 * value and timestamp before packing; requests cut exactly at 1000 datums and at the byte
 * limit; bodies byte for byte as written out here by hand from the Query wire form
 * (docs/formats.md 6); stable order, and a claim re-planned from its rows alone gives the same
 * calls; old, future and oversized rows sorted out. */
#include "tu.h"

static const int64_t NOW = 1776643200 + 3600; /* 2026-04-20T01:00:00Z */
#define BUCKET (NOW - 600)                    /* 2026-04-20T00:50:00Z */
#define TS "2026-04-20T00%3A50%3A00Z"

struct rows {
    struct bm_cw_row v[1200];
    char names[1200][300];
    size_t n;
};

static struct bm_cw_row *add(struct rows *r, int64_t bucket, enum bm_profile_type t,
                             const char *model, uint64_t inv, uint64_t in, uint64_t mn, uint64_t mx)
{
    assert_true(r->n < 1200);
    struct bm_cw_row *x = &r->v[r->n];
    snprintf(r->names[r->n], sizeof r->names[0], "%s", model);
    x->id = (int64_t)r->n + 1;
    x->key = (struct bm_series_key){.bucket = bucket,
                                    .type = t,
                                    .model_id = {r->names[r->n], strlen(r->names[r->n])},
                                    .profile_id = {"p", 1},
                                    .source_region = {"us-east-1", 9},
                                    .inference_region = {"us-west-2", 9},
                                    .operation = {"Converse", 8}};
    x->c.invocations = inv;
    x->c.input = (struct bm_stat){in, mn, mx};
    x->c.output = (struct bm_stat){inv * 2, 2, 2};
    x->c.cache_read = (struct bm_stat){0, 0, 0};
    x->c.cache_write = (struct bm_stat){7, 0, 7};
    r->n++;
    return x;
}

static struct bm_cw_plan *plan(const char *dimsets, const struct bm_cw_row *rows, size_t n,
                               int64_t now, size_t max_body)
{
    struct bm_dimsets d;
    struct bm_errmsg em;
    assert_int_equal(bm_dimsets_parse(dimsets, &d, &em), BM_OK);
    struct bm_cw_plan_opts o = {
        .dims = &d, .namespace_name = "Team/Bedrock Usage", .now = now, .max_body = max_body};
    struct bm_cw_plan *p = NULL;
    assert_int_equal(bm_cw_plan_make(&o, rows, n, &p), BM_OK);
    return p;
}

static char *body(const struct bm_cw_plan *p, size_t k)
{
    struct bm_buf b;
    bm_buf_init(&b, 1 << 22);
    assert_int_equal(bm_cw_plan_body(p, k, &b), BM_OK);
    assert_int_equal(b.len, p->req[k].body_len);
    assert_int_equal(bm_buf_append(&b, "", 0), BM_OK);
    return bm_buf_steal(&b);
}

/* The five datums of one group as the Query protocol writes them (members first..first+4):
 * written here from the wire form, not by the code under test. stats: invocations, then sum,
 * min, max of input, output, cache read, cache write. */
static void expect_group(struct bm_buf *b, size_t first, const char *ts, const uint64_t st[13],
                         const char *const *dn, const char *const *dv, int nd)
{
    static const char *const names[5] = {"InvocationCount", "InputTokens", "OutputTokens",
                                         "CacheReadInputTokens", "CacheWriteInputTokens"};
    for (int m = 0; m < 5; m++) {
        size_t i = first + (size_t)m;
        unsigned long long sum = m == 0 ? st[0] : st[1 + 3 * (m - 1)];
        unsigned long long mn = m == 0 ? 1 : st[2 + 3 * (m - 1)];
        unsigned long long mx = m == 0 ? 1 : st[3 + 3 * (m - 1)];
        bm_buf_appendf(b, "&MetricData.member.%zu.MetricName=%s", i, names[m]);
        bm_buf_appendf(b, "&MetricData.member.%zu.Unit=Count", i);
        bm_buf_appendf(b, "&MetricData.member.%zu.Timestamp=%s", i, ts);
        bm_buf_appendf(b, "&MetricData.member.%zu.StatisticValues.SampleCount=%llu", i,
                       (unsigned long long)st[0]);
        bm_buf_appendf(b, "&MetricData.member.%zu.StatisticValues.Sum=%llu", i, sum);
        bm_buf_appendf(b, "&MetricData.member.%zu.StatisticValues.Minimum=%llu", i, mn);
        bm_buf_appendf(b, "&MetricData.member.%zu.StatisticValues.Maximum=%llu", i, mx);
        for (int d = 0; d < nd; d++) {
            bm_buf_appendf(b, "&MetricData.member.%zu.Dimensions.member.%d.Name=%s", i, d + 1,
                           dn[d]);
            bm_buf_appendf(b, "&MetricData.member.%zu.Dimensions.member.%d.Value=%s", i, d + 1,
                           dv[d]);
        }
    }
}

#define HDR "Action=PutMetricData&Version=2010-08-01&Namespace=Team%2FBedrock%20Usage"

/* Four rows from several objects, two dimension sets: rows of one type and minute merge into
 * one datum per metric, and groups come in the order they were first met. */
static void test_merging_exact_body(void **state)
{
    (void)state;
    struct rows *r = bm_calloc(1, sizeof *r);
    add(r, BUCKET, BM_PT_CROSS_REGION, "anthropic.a", 3, 300, 50, 200);
    add(r, BUCKET, BM_PT_CROSS_REGION, "anthropic.a", 2, 40, 10, 30);
    add(r, BUCKET, BM_PT_CROSS_REGION, "anthropic.b", 1, 5, 5, 5);
    add(r, BUCKET, BM_PT_GLOBAL, "anthropic.a", 4, 4000, 500, 2000);
    struct bm_cw_plan *p =
        plan("InferenceProfileType;InferenceProfileType,ModelId", r->v, r->n, NOW, 0);
    /* Groups: {CR} (rows 1-3), {CR,a} (1-2), {CR,b} (3), {Global} (4), {Global,a} (4). */
    assert_int_equal(p->nreq, 1);
    assert_int_equal(p->datums, 25);
    assert_int_equal(p->req[0].ndatums, 25);
    assert_int_equal(p->nsent, 4);
    static const char *const t1[] = {"InferenceProfileType"};
    static const char *const t2[] = {"InferenceProfileType", "ModelId"};
    /* Hand sums: CR inv 3+2+1 = 6, input 300+40+5 = 345 min 5 max 200, output 2 x 6 = 12,
     * cache write 7 x 3 = 21. */
    const uint64_t cr[13] = {6, 345, 5, 200, 12, 2, 2, 0, 0, 0, 21, 0, 7};
    const uint64_t cra[13] = {5, 340, 10, 200, 10, 2, 2, 0, 0, 0, 14, 0, 7};
    const uint64_t crb[13] = {1, 5, 5, 5, 2, 2, 2, 0, 0, 0, 7, 0, 7};
    const uint64_t gl[13] = {4, 4000, 500, 2000, 8, 2, 2, 0, 0, 0, 7, 0, 7};
    struct bm_buf want;
    bm_buf_init(&want, 1 << 20);
    bm_buf_append_str(&want, HDR);
    expect_group(&want, 1, TS, cr, t1, (const char *const[]){"CrossRegion"}, 1);
    expect_group(&want, 6, TS, cra, t2, (const char *const[]){"CrossRegion", "anthropic.a"}, 2);
    expect_group(&want, 11, TS, crb, t2, (const char *const[]){"CrossRegion", "anthropic.b"}, 2);
    expect_group(&want, 16, TS, gl, t1, (const char *const[]){"GlobalCrossRegion"}, 1);
    expect_group(&want, 21, TS, gl, t2, (const char *const[]){"GlobalCrossRegion", "anthropic.a"},
                 2);
    bm_buf_append(&want, "", 0);
    char *got = body(p, 0);
    assert_string_equal(got, want.data);
    bm_free(got);
    bm_buf_cleanup(&want);
    bm_cw_plan_free(p);
    bm_free(r);
}

/* BMAS_PUBLISH_COST: a sixth datum per group, EstimatedCostUSD, the merged rows' cost in
 * dollars (0.000001 + 1.2345675 rounds to 1.234569) as one Value; datum counts follow. */
static void test_cost_datum(void **state)
{
    (void)state;
    struct rows *r = bm_calloc(1, sizeof *r);
    add(r, BUCKET, BM_PT_CROSS_REGION, "anthropic.a", 3, 300, 50, 200)->c.cost =
        (struct bm_cost){1, 0};
    add(r, BUCKET, BM_PT_CROSS_REGION, "anthropic.a", 2, 40, 10, 30)->c.cost =
        (struct bm_cost){1234567, 500000};
    struct bm_dimsets d;
    struct bm_errmsg em;
    assert_int_equal(bm_dimsets_parse("InferenceProfileType", &d, &em), BM_OK);
    struct bm_cw_plan_opts o = {.dims = &d,
                                .namespace_name = "Team/Bedrock Usage",
                                .now = NOW,
                                .max_datums = 12,
                                .publish_cost = true};
    struct bm_cw_plan *p = NULL;
    assert_int_equal(bm_cw_plan_make(&o, r->v, r->n, &p), BM_OK);
    assert_int_equal(p->nreq, 1);
    assert_int_equal(p->datums, 6);
    const uint64_t cr[13] = {5, 340, 10, 200, 10, 2, 2, 0, 0, 0, 14, 0, 7};
    struct bm_buf want;
    bm_buf_init(&want, 1 << 20);
    bm_buf_append_str(&want, HDR);
    expect_group(&want, 1, TS, cr, (const char *const[]){"InferenceProfileType"},
                 (const char *const[]){"CrossRegion"}, 1);
    bm_buf_append_str(&want,
                      "&MetricData.member.6.MetricName=EstimatedCostUSD"
                      "&MetricData.member.6.Unit=None"
                      "&MetricData.member.6.Timestamp=" TS "&MetricData.member.6.Value=1.234569"
                      "&MetricData.member.6.Dimensions.member.1.Name=InferenceProfileType"
                      "&MetricData.member.6.Dimensions.member.1.Value=CrossRegion");
    char *got = body(p, 0);
    assert_string_equal(got, want.data);
    bm_free(got);
    bm_buf_cleanup(&want);
    bm_cw_plan_free(p);
    /* With ResidencyViolations too: a seventh datum, the merged rows' count (1 + 2). */
    r->v[0].c.violations = 1;
    r->v[1].c.violations = 2;
    o.publish_residency = true;
    o.max_datums = 0;
    assert_int_equal(bm_cw_plan_make(&o, r->v, r->n, &p), BM_OK);
    assert_int_equal(p->datums, 7);
    got = body(p, 0);
    assert_non_null(strstr(got, "&MetricData.member.6.Value=1.234569&"));
    assert_non_null(strstr(got, "&MetricData.member.7.MetricName=ResidencyViolations"
                                "&MetricData.member.7.Unit=Count"
                                "&MetricData.member.7.Timestamp=" TS "&MetricData.member.7.Value=3"
                                "&MetricData.member.7.Dimensions.member.1.Name="
                                "InferenceProfileType"));
    assert_null(strstr(got, "member.8."));
    bm_free(got);
    bm_cw_plan_free(p);
    o.publish_residency = false;
    o.max_datums = 12;
    /* Two groups of six datums fill 12 exactly; a third starts the next call. */
    add(r, BUCKET, BM_PT_GLOBAL, "anthropic.a", 1, 1, 1, 1);
    add(r, BUCKET, BM_PT_ON_DEMAND, "anthropic.a", 1, 1, 1, 1);
    assert_int_equal(bm_cw_plan_make(&o, r->v, r->n, &p), BM_OK);
    assert_int_equal(p->nreq, 2);
    assert_int_equal(p->req[0].ndatums, 12);
    assert_int_equal(p->req[1].ndatums, 6);
    bm_cw_plan_free(p);
    bm_free(r);
}

/* lambda-compat (the replaced Lambda's dashboard names) and ApplicationId: InferenceProfile
 * carries the profile type, Region the source Region, "()" the totals with no dimension at
 * all, ApplicationId an application profile's id and "None" for any other series. */
static void test_lambda_compat_exact_body(void **state)
{
    (void)state;
    struct rows *r = bm_calloc(1, sizeof *r);
    add(r, BUCKET, BM_PT_CROSS_REGION, "anthropic.a", 3, 300, 50, 200);
    struct bm_cw_row *g = add(r, BUCKET, BM_PT_GLOBAL, "anthropic.a", 1, 7, 7, 7);
    g->key.source_region = (struct bm_str){"eu-west-1", 9};
    struct bm_cw_row *a = add(r, BUCKET, BM_PT_APPLICATION, "anthropic.b", 2, 20, 9, 11);
    a->key.profile_id = (struct bm_str){"abc123", 6};
    struct bm_cw_plan *p = plan("lambda-compat", r->v, r->n, NOW, 0);
    /* Groups: {CR}, {us-east-1} (rows 1, 3), {} (all), {Global}, {eu-west-1}, {Application}. */
    assert_int_equal(p->nreq, 1);
    assert_int_equal(p->datums, 30);
    assert_int_equal(p->nsent, 3);
    static const char *const ip[] = {"InferenceProfile"};
    static const char *const rg[] = {"Region"};
    /* Hand sums. us-east-1: inv 3+2 = 5, input 300+20 = 320 min 9 max 200, output 2 x 5 = 10,
     * cache write 7 x 2 = 14. All: inv 6, input 327 min 7 max 200, output 12, cache write 21. */
    const uint64_t cr[13] = {3, 300, 50, 200, 6, 2, 2, 0, 0, 0, 7, 0, 7};
    const uint64_t use1[13] = {5, 320, 9, 200, 10, 2, 2, 0, 0, 0, 14, 0, 7};
    const uint64_t all[13] = {6, 327, 7, 200, 12, 2, 2, 0, 0, 0, 21, 0, 7};
    const uint64_t gl[13] = {1, 7, 7, 7, 2, 2, 2, 0, 0, 0, 7, 0, 7};
    const uint64_t ap[13] = {2, 20, 9, 11, 4, 2, 2, 0, 0, 0, 7, 0, 7};
    struct bm_buf want;
    bm_buf_init(&want, 1 << 20);
    bm_buf_append_str(&want, HDR);
    expect_group(&want, 1, TS, cr, ip, (const char *const[]){"CrossRegion"}, 1);
    expect_group(&want, 6, TS, use1, rg, (const char *const[]){"us-east-1"}, 1);
    expect_group(&want, 11, TS, all, NULL, NULL, 0);
    expect_group(&want, 16, TS, gl, ip, (const char *const[]){"GlobalCrossRegion"}, 1);
    expect_group(&want, 21, TS, gl, rg, (const char *const[]){"eu-west-1"}, 1);
    expect_group(&want, 26, TS, ap, ip, (const char *const[]){"Application"}, 1);
    bm_buf_append(&want, "", 0);
    char *got = body(p, 0);
    assert_string_equal(got, want.data);
    bm_free(got);
    bm_cw_plan_free(p);

    p = plan("ApplicationId", r->v, r->n, NOW, 0);
    assert_int_equal(p->datums, 10);
    static const char *const app[] = {"ApplicationId"};
    const uint64_t none[13] = {4, 307, 7, 200, 8, 2, 2, 0, 0, 0, 14, 0, 7};
    bm_buf_reset(&want);
    bm_buf_append_str(&want, HDR);
    expect_group(&want, 1, TS, none, app, (const char *const[]){"None"}, 1);
    expect_group(&want, 6, TS, ap, app, (const char *const[]){"abc123"}, 1);
    bm_buf_append(&want, "", 0);
    got = body(p, 0);
    assert_string_equal(got, want.data);
    bm_free(got);
    bm_cw_plan_free(p);
    bm_buf_cleanup(&want);
    bm_free(r);
}

/* n distinct models in one minute, one dimension set (ModelId): n groups of five datums. */
static void run_datums(size_t groups, size_t want_requests, size_t want_first, size_t want_last)
{
    struct rows *r = bm_calloc(1, sizeof *r);
    char m[64];
    for (size_t i = 0; i < groups; i++) {
        snprintf(m, sizeof m, "provider.model-%04zu", i);
        add(r, BUCKET, BM_PT_ON_DEMAND, m, 1, 10, 10, 10);
    }
    struct bm_cw_plan *p = plan("ModelId", r->v, r->n, NOW, 0);
    assert_int_equal(p->nreq, want_requests);
    assert_int_equal(p->req[0].ndatums, want_first);
    assert_int_equal(p->req[p->nreq - 1].ndatums, want_last);
    assert_int_equal(p->datums, groups * 5);
    size_t next = 0;
    for (size_t k = 0; k < p->nreq; k++) {
        assert_int_equal(p->req[k].first_group, next); /* in order, none skipped */
        next += p->req[k].ngroups;
        assert_true(p->req[k].ndatums <= 1000);
    }
    /* The last datum of a full request is member 1000, and there is no member 1001. */
    if (want_first == 1000) {
        char *b = body(p, 0);
        assert_non_null(strstr(b, "&MetricData.member.1000.MetricName=CacheWriteInputTokens&"));
        assert_null(strstr(b, "MetricData.member.1001."));
        bm_free(b);
    }
    bm_cw_plan_free(p);
    bm_free(r);
}

static void test_datum_limit(void **state)
{
    (void)state;
    /* Five metrics per group, so the edges are 995, 1000 and 1005 datums. */
    run_datums(199, 1, 995, 995);
    run_datums(200, 1, 1000, 1000);
    run_datums(201, 2, 1000, 5);
    run_datums(600, 3, 1000, 1000);
    run_datums(601, 4, 1000, 5);
}

/* A long value (v x len) for the byte-limit test: each group is about 9 KB, so fewer than
 * 200 groups fill a megabyte and the byte limit binds before the datum limit. */
static void long_value(char *out, size_t len, size_t i)
{
    memset(out, 'v', len);
    snprintf(out, len, "m%06zu", i);
    out[strlen(out)] = 'v';
    out[len] = '\0';
}

static void test_byte_limit(void **state)
{
    (void)state;
    static const char *const dn[] = {"ModelId", "ProfileId", "SourceRegion", "InferenceRegion",
                                     "Operation"};
    const char *sets = "ModelId,ProfileId,SourceRegion,InferenceRegion,Operation";
    struct rows *r = bm_calloc(1, sizeof *r);
    static char vals[300][256];
    const size_t nrows = 300;
    for (size_t i = 0; i < nrows; i++) {
        long_value(vals[i], 255, i);
        struct bm_cw_row *x = add(r, BUCKET, BM_PT_ON_DEMAND, vals[i], 1, 1, 1, 1);
        x->key.profile_id = x->key.source_region = x->key.inference_region = x->key.operation =
            x->key.model_id;
    }
    /* The encoded length of each group at each member position, from the wire form above. */
    const uint64_t st[13] = {1, 1, 1, 1, 2, 2, 2, 0, 0, 0, 7, 0, 7};
    struct bm_buf one;
    bm_buf_init(&one, 1 << 20);
    size_t hdr = strlen(HDR);
    /* Groups in one request while header + groups <= 1,000,000 bytes. */
    size_t len = hdr, fit = 0;
    for (;;) {
        const char *dv[5] = {vals[fit], vals[fit], vals[fit], vals[fit], vals[fit]};
        bm_buf_reset(&one);
        expect_group(&one, fit * 5 + 1, TS, st, dn, dv, 5);
        if (len + one.len > 1000000)
            break;
        len += one.len;
        fit++;
    }
    assert_true(fit > 50 && fit < 200); /* the bytes bind, not the datums */
    struct bm_cw_plan *p = plan(sets, r->v, r->n, NOW, 0);
    assert_true(p->nreq >= 2);
    assert_int_equal(p->req[0].ngroups, fit);
    assert_int_equal(p->req[0].body_len, len);
    assert_true(p->req[0].body_len <= 1000000);
    /* Exactly at the limit: max_body = that length fits the same groups; one byte less
     * moves the last group to the next request. */
    struct bm_cw_plan *q = plan(sets, r->v, r->n, NOW, len);
    assert_int_equal(q->req[0].ngroups, fit);
    assert_int_equal(q->req[0].body_len, len);
    bm_cw_plan_free(q);
    q = plan(sets, r->v, r->n, NOW, len - 1);
    assert_int_equal(q->req[0].ngroups, fit - 1);
    assert_int_equal(q->req[1].first_group, fit - 1);
    /* The last group of a request moved to the next one starts at member 1 there. */
    char *b = body(q, 1);
    bm_buf_reset(&one);
    bm_buf_append_str(&one, HDR);
    const char *dv[5] = {vals[fit - 1], vals[fit - 1], vals[fit - 1], vals[fit - 1], vals[fit - 1]};
    expect_group(&one, 1, TS, st, dn, dv, 5);
    assert_true(strncmp(b, one.data, one.len) == 0);
    bm_free(b);
    bm_cw_plan_free(q);
    /* Every request within both limits, every group in exactly one. */
    size_t groups = 0;
    for (size_t k = 0; k < p->nreq; k++) {
        assert_true(p->req[k].body_len <= 1000000);
        assert_true(p->req[k].ndatums <= 1000);
        groups += p->req[k].ngroups;
    }
    assert_int_equal(groups, nrows);
    bm_cw_plan_free(p);
    bm_buf_cleanup(&one);
    bm_free(r);
}

/* Same rows, same calls; the rows of a claim alone (no clock) re-plan into the same calls as
 * the whole fetched batch that also held dropped, waiting and rejected rows. */
static void test_stable_and_replannable(void **state)
{
    (void)state;
    char longid[300];
    memset(longid, 'x', 280);
    longid[280] = '\0';
    struct rows *r = bm_calloc(1, sizeof *r);
    struct rows *claimed = bm_calloc(1, sizeof *claimed);
    char m[64];
    for (size_t i = 0; i < 450; i++) {
        snprintf(m, sizeof m, "p.m%03zu", i % 300);
        add(r, BUCKET - (int64_t)(i % 3) * 60, (enum bm_profile_type)(i % 2), m, i + 1, i, 1, i);
        if (i == 10)
            add(r, NOW - 15 * 86400, BM_PT_ON_DEMAND, "p.old", 1, 1, 1, 1);
        if (i == 20)
            add(r, NOW + 3 * 3600, BM_PT_ON_DEMAND, "p.future", 1, 1, 1, 1);
        if (i == 30)
            add(r, BUCKET, BM_PT_ON_DEMAND, longid, 1, 1, 1, 1);
    }
    const char *sets = "ModelId;InferenceProfileType";
    struct bm_cw_plan *a = plan(sets, r->v, r->n, NOW, 0);
    struct bm_cw_plan *b = plan(sets, r->v, r->n, NOW, 0);
    assert_int_equal(a->ndropped, 1);
    assert_int_equal(a->nwaiting, 1);
    assert_int_equal(a->nrejected, 0); /* the long id still has InferenceProfileType */
    assert_int_equal(a->dimension_overflow, 1);
    assert_int_equal(a->nsent, r->n - 2);
    for (size_t i = 0; i < a->nsent; i++) {
        assert_true(i == 0 || a->sent[i] > a->sent[i - 1]);
        claimed->v[i] = r->v[a->sent[i]];
    }
    claimed->n = a->nsent;
    struct bm_cw_plan *c = plan(sets, claimed->v, claimed->n, BM_NO_BUCKET, 0);
    assert_int_equal(a->nreq, b->nreq);
    assert_int_equal(a->nreq, c->nreq);
    assert_true(a->nreq >= 2);
    for (size_t k = 0; k < a->nreq; k++) {
        char *x = body(a, k), *y = body(b, k), *z = body(c, k);
        assert_string_equal(x, y);
        assert_string_equal(x, z);
        bm_free(x);
        bm_free(y);
        bm_free(z);
    }
    /* Merged: row i and row i + 300 share model and minute (300 is a multiple of 3), so
     * 300 ModelId groups, and 2 types x 3 minutes = 6 type groups: 306 groups, 1,530 datums,
     * not 450 + 450 groups. */
    assert_int_equal(a->datums, (300 + 6) * 5);
    assert_int_equal(a->nreq, 2); /* ceil(1530 / 1000) */
    bm_cw_plan_free(a);
    bm_cw_plan_free(b);
    bm_cw_plan_free(c);
    bm_free(r);
    bm_free(claimed);
}

static void test_old_future_rejected_empty(void **state)
{
    (void)state;
    char longid[300];
    memset(longid, 'x', 280);
    longid[280] = '\0';
    struct rows *r = bm_calloc(1, sizeof *r);
    add(r, NOW - 15 * 86400, BM_PT_ON_DEMAND, "p.old", 1, 1, 1, 1); /* dropped */
    add(r, NOW + 3 * 3600, BM_PT_ON_DEMAND, "p.future", 1, 1, 1, 1);
    add(r, NOW - 60, BM_PT_ON_DEMAND, longid, 1, 1, 1, 1); /* every set overflows */
    add(r, NOW - 60, BM_PT_ON_DEMAND, "p.ok", 1, 1, 1, 1);
    struct bm_cw_plan *p = plan("ModelId", r->v, r->n, NOW, 0);
    assert_int_equal(p->ndropped, 1);
    assert_int_equal(p->dropped[0], 0);
    assert_int_equal(p->nwaiting, 1);
    assert_int_equal(p->nrejected, 1);
    assert_int_equal(p->rejected[0], 2);
    assert_int_equal(p->nsent, 1);
    assert_int_equal(p->sent[0], 3);
    assert_int_equal(p->nreq, 1);
    assert_int_equal(p->datums, 5);
    char *b = body(p, 0);
    assert_null(strstr(b, "xxxxxxxxxx"));
    bm_free(b);
    bm_cw_plan_free(p);
    p = plan("ModelId", r->v, 0, NOW, 0);
    assert_int_equal(p->nreq, 0);
    assert_int_equal(p->datums, 0);
    bm_cw_plan_free(p);
    bm_free(r);
}

/* Every allocation failing in turn: BM_E_NOMEM and nothing leaked (the OOM helper's idea). */
static void test_oom(void **state)
{
    (void)state;
    struct rows *r = bm_calloc(1, sizeof *r);
    add(r, BUCKET, BM_PT_CROSS_REGION, "anthropic.a", 3, 300, 50, 200);
    add(r, BUCKET, BM_PT_GLOBAL, "anthropic.b", 1, 1, 1, 1);
    struct bm_dimsets d;
    struct bm_errmsg em;
    assert_int_equal(bm_dimsets_parse("InferenceProfileType;ModelId", &d, &em), BM_OK);
    struct bm_cw_plan_opts o = {.dims = &d, .namespace_name = "NS", .now = NOW};
    bm_err rc = BM_E_NOMEM;
    for (long n = 0; rc == BM_E_NOMEM && n < 1000; n++) {
        struct bm_cw_plan *p = NULL;
        bm_alloc_fail_after(n);
        rc = bm_cw_plan_make(&o, r->v, r->n, &p);
        bm_alloc_fail_after(-1);
        if (rc == BM_OK) {
            assert_int_equal(p->datums, 20);
            bm_cw_plan_free(p);
        }
    }
    assert_int_equal(rc, BM_OK);
    bm_free(r);
}

/* BMAS_MAX_SERIES: the admit callback refuses the OnDemand series of the type+model set; the
 * pairs refused are counted, a row with every set refused is held (not rejected), and the
 * callback sees the set index in `type` and the values in set order. */
struct admit_log {
    int calls;
    int set_seen[4];
};

static bool admit_not_ondemand_models(void *ctx, const struct bm_series_key *g)
{
    struct admit_log *l = ctx;
    l->calls++;
    assert_true((int)g->type >= 0 && (int)g->type < 2);
    l->set_seen[g->type]++;
    if (g->type == 1) /* set 1: InferenceProfileType,ModelId: slot 0 the type, slot 1 the model */
        return !(g->model_id.len == 8 && memcmp(g->model_id.p, "OnDemand", 8) == 0);
    return true;
}

static bool admit_none(void *ctx, const struct bm_series_key *g)
{
    (void)ctx;
    (void)g;
    return false;
}

static void test_admit(void **state)
{
    (void)state;
    static struct rows r;
    r.n = 0;
    add(&r, BUCKET, BM_PT_ON_DEMAND, "m1", 1, 10, 10, 10);
    add(&r, BUCKET, BM_PT_CROSS_REGION, "m2", 1, 10, 10, 10);
    add(&r, BUCKET, BM_PT_ON_DEMAND, "m3", 1, 10, 10, 10);
    struct bm_dimsets d;
    struct bm_errmsg em;
    assert_int_equal(bm_dimsets_parse("InferenceProfileType;InferenceProfileType,ModelId", &d, &em),
                     BM_OK);
    struct admit_log log = {0};
    struct bm_cw_plan_opts o = {.dims = &d,
                                .namespace_name = "N",
                                .now = NOW,
                                .admit = admit_not_ondemand_models,
                                .admit_ctx = &log};
    struct bm_cw_plan *p = NULL;
    assert_int_equal(bm_cw_plan_make(&o, r.v, r.n, &p), BM_OK);
    assert_int_equal(log.calls, 6);
    assert_int_equal(log.set_seen[0], 3);
    assert_int_equal(log.set_seen[1], 3);
    /* Two (row, set) pairs refused; groups: OnDemand, CrossRegion, CrossRegion+m2. */
    assert_int_equal(p->held_back, 2);
    assert_int_equal(p->nheld, 0);
    assert_int_equal(p->nsent, 3);
    assert_int_equal(p->datums, 15);
    char *b = body(p, 0);
    assert_null(strstr(b, "Value=m1"));
    assert_null(strstr(b, "Value=m3"));
    assert_non_null(strstr(b, "Value=m2"));
    bm_free(b);
    bm_cw_plan_free(p);
    /* Everything refused: every row held, none rejected, no request. */
    o.admit = admit_none;
    assert_int_equal(bm_cw_plan_make(&o, r.v, r.n, &p), BM_OK);
    assert_int_equal(p->nheld, 3);
    assert_int_equal(p->nrejected, 0);
    assert_int_equal(p->nsent, 0);
    assert_int_equal(p->nreq, 0);
    assert_int_equal(p->held_back, 6);
    bm_cw_plan_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merging_exact_body),
        cmocka_unit_test(test_cost_datum),
        cmocka_unit_test(test_lambda_compat_exact_body),
        cmocka_unit_test(test_datum_limit),
        cmocka_unit_test(test_byte_limit),
        cmocka_unit_test(test_stable_and_replannable),
        cmocka_unit_test(test_old_future_rejected_empty),
        cmocka_unit_test(test_oom),
        cmocka_unit_test(test_admit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
