/* Storage queries (GET /aggregates): every grouping and filter against an in-memory reference
 * built from the same deltas with core's bm_agg_regroup, time-range edges (half-open on the
 * bucket start, across minute, hour and day parts), the row cap, and the query plans. */
#include "test_storage_tu.h"

#define N_OBJECTS 300

static struct bm_db *g_db;
static struct bm_agg *g_all; /* every committed series, as stored */
static struct tdb g_t;

static int setup(void **state)
{
    (void)state;
    tdb_init(&g_t);
    g_db = tdb_open(&g_t);
    g_all = bm_agg_new(0);
    for (uint64_t i = 0; i < N_OBJECTS; i++) {
        struct bm_agg *d = tu_delta(i);
        assert_int_equal(tu_commit(g_db, i), BM_DB_COMMITTED);
        assert_int_equal(bm_agg_merge(g_all, d), BM_OK);
        bm_agg_free(d);
    }
    tu_assert_rollups(g_t.path, INT64_MIN);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    bm_agg_free(g_all);
    bm_db_close(g_db);
    tdb_cleanup(&g_t);
    return 0;
}

static bool str_is(struct bm_str s, const char *want)
{
    return want == NULL || (s.len == strlen(want) && memcmp(s.p, want, s.len) == 0);
}

/* What q should return: the matching stored series, regrouped and sorted by core. */
static struct bm_agg *expected(const struct bm_db_query *q)
{
    struct bm_agg *f = bm_agg_new(0), *out = NULL;
    for (size_t i = 0; i < bm_agg_count(g_all); i++) {
        const struct bm_series *s = bm_agg_at(g_all, i);
        if ((q->from != BM_NO_BUCKET && s->key.bucket < q->from) ||
            (q->to != BM_NO_BUCKET && s->key.bucket >= q->to) ||
            !str_is(s->key.model_id, q->model_id) ||
            !str_is(s->key.source_region, q->source_region) ||
            !str_is(s->key.inference_region, q->inference_region) ||
            (q->profile_type != BM_PT__COUNT && s->key.type != q->profile_type))
            continue;
        assert_int_equal(bm_agg_add(f, &s->key, &s->c), BM_OK);
    }
    assert_int_equal(bm_agg_regroup(f, &q->group_by, &out), BM_OK);
    assert_int_equal(bm_agg_sort(out, &q->group_by), BM_OK);
    bm_agg_free(f);
    return out;
}

static void check_query(const struct bm_db_query *q)
{
    struct bm_agg *got = NULL, *want = expected(q);
    struct bm_errmsg em;
    if (bm_db_query(g_db, q, &got, &em) != BM_OK)
        fail_msg("query: %s", em.text);
    tu_assert_agg_eq(got, want);
    bm_agg_free(got);
    /* The same query without min/max: the same rows and sums, min and max 0. */
    struct bm_db_query qs = *q;
    qs.sums_only = true;
    if (bm_db_query(g_db, &qs, &got, &em) != BM_OK)
        fail_msg("query: %s", em.text);
    for (size_t i = 0; i < bm_agg_count(want); i++) {
        struct bm_series *w = (struct bm_series *)bm_agg_at(want, i);
        struct bm_stat *st[4] = {&w->c.input, &w->c.output, &w->c.cache_read, &w->c.cache_write};
        for (int j = 0; j < 4; j++)
            st[j]->min = st[j]->max = 0;
    }
    tu_assert_agg_eq(got, want);
    bm_agg_free(got);
    bm_agg_free(want);
}

static struct bm_group_by group_of(unsigned mask)
{
    struct bm_group_by g = {0};
    for (int f = BM_G__COUNT - 1; f >= 0; f--) /* reversed: order must not matter */
        if (mask & (1u << f))
            g.f[g.n++] = (enum bm_group)f;
    return g;
}

struct filter {
    const char *model, *src, *inf;
    enum bm_profile_type type;
};
static const struct filter filters[] = {
    {NULL, NULL, NULL, BM_PT__COUNT},
    {"anthropic.claude-a", NULL, NULL, BM_PT__COUNT},
    {NULL, NULL, NULL, BM_PT_CROSS_REGION},
    {NULL, "us-west-2", NULL, BM_PT__COUNT},
    {NULL, NULL, "eu-west-1", BM_PT__COUNT},
    {"amazon.nova-lite", "us-east-1", "us-east-1", BM_PT_ON_DEMAND},
    {"no.such-model", NULL, NULL, BM_PT__COUNT},
};
#define DAY 86400
#define HOUR 3600
static const int64_t ranges[][2] = {
    {BM_NO_BUCKET, BM_NO_BUCKET},
    {TU_T0 + 5 * HOUR + 90, TU_T0 + 2 * DAY + 3 * HOUR + 1770}, /* minutes, hours, a day */
    {TU_T0, TU_T0 + DAY},                                       /* exactly one day */
    {TU_T0 + 7 * HOUR, TU_T0 + 9 * HOUR},                       /* whole hours */
    {TU_T0 + 30, TU_T0 + 90},                                   /* buckets 30 and 60 only */
    {TU_T0 + DAY + 45, BM_NO_BUCKET},
    {BM_NO_BUCKET, TU_T0 + 7 * HOUR + 30},
    {TU_T0 + HOUR, TU_T0 + HOUR}, /* empty */
    {TU_T0 + 2 * DAY, TU_T0 + DAY},
};

static void set_filter(struct bm_db_query *q, const struct filter *f)
{
    q->model_id = f->model;
    q->source_region = f->src;
    q->inference_region = f->inf;
    q->profile_type = f->type;
}

/* Checks one query: grouping mask m, range r, filter f. */
static void check_case(unsigned m, size_t r, size_t f)
{
    struct bm_group_by g = group_of(m);
    struct bm_db_query q;
    bm_db_query_init(&q, &g);
    q.from = ranges[r][0];
    q.to = ranges[r][1];
    set_filter(&q, &filters[f]);
    check_query(&q);
}

static void test_every_grouping(void **state)
{
    (void)state;
    for (unsigned m = 0; m < 1u << BM_G__COUNT; m++)
        for (size_t r = 0; r < 2; r++)
            for (size_t f = 0; f < 6; f += 5)
                check_case(m, r, f);
}

static void test_filters_and_ranges(void **state)
{
    (void)state;
    static const unsigned masks[] = {
        0,
        1u << BM_G_MODEL_ID,
        1u << BM_G_PROFILE_TYPE,
        1u << BM_G_MINUTE,
        1u << BM_G_MINUTE | 1u << BM_G_MODEL_ID,
        (1u << BM_G__COUNT) - 1,
        1u << BM_G_PROFILE_ID | 1u << BM_G_OPERATION,
        1u << BM_G_SOURCE_REGION | 1u << BM_G_INFERENCE_REGION,
    };
    for (size_t m = 0; m < TU_N(masks); m++)
        for (size_t f = 0; f < TU_N(filters); f++)
            for (size_t r = 0; r < TU_N(ranges); r++)
                check_case(masks[m], r, f);
}

/* from includes a bucket that starts exactly there; to excludes it. */
static void test_range_edges(void **state)
{
    (void)state;
    const struct bm_series *s = bm_agg_at(g_all, 0);
    int64_t b = s->key.bucket;
    struct bm_db_query q;
    bm_db_query_init(&q, NULL);
    q.model_id = s->key.model_id.p;
    q.profile_type = s->key.type;
    q.source_region = s->key.source_region.p;
    q.inference_region = s->key.inference_region.p;
    /* Buckets sit on 30-second steps, so each range below holds bucket b or no bucket. */
    const int64_t cases[][3] = {
        /* from, to, whether bucket b is in */
        {b, b + 1, 1}, {b, b + 30, 1}, {b - 1, b, 0}, {b + 1, b + 30, 0}, {b - 29, b + 1, 1},
    };
    for (size_t i = 0; i < TU_N(cases); i++) {
        q.from = cases[i][0];
        q.to = cases[i][1];
        check_query(&q);
        struct bm_agg *got = NULL;
        struct bm_errmsg em;
        assert_int_equal(bm_db_query(g_db, &q, &got, &em), BM_OK);
        struct bm_counters c;
        bm_agg_totals(got, &c);
        if (cases[i][2])
            assert_true(c.invocations >= s->c.invocations);
        else
            assert_int_equal(c.invocations, 0);
        bm_agg_free(got);
    }
}

static void test_row_cap(void **state)
{
    (void)state;
    struct bm_group_by g = group_of((1u << BM_G__COUNT) - 1);
    struct bm_db_query q;
    bm_db_query_init(&q, &g);
    struct bm_agg *want = expected(&q), *got = NULL;
    size_t n = bm_agg_count(want);
    assert_true(n > 100);
    struct bm_errmsg em = {{0}};
    q.max_rows = n - 1;
    assert_int_equal(bm_db_query(g_db, &q, &got, &em), BM_E_BAD_REQUEST);
    assert_null(got);
    assert_non_null(strstr(em.text, "more than"));
    q.max_rows = n;
    assert_int_equal(bm_db_query(g_db, &q, &got, &em), BM_OK);
    tu_assert_agg_eq(got, want);
    bm_agg_free(got);
    bm_agg_free(want);
}

/* The typical dashboard queries read an index range, never a whole minute table. */
static void test_plans(void **state)
{
    (void)state;
    struct {
        unsigned mask;
        const char *model;
        int64_t from, to;
        const char *want;
    } cases[] = {
        {1u << BM_G_MODEL_ID, NULL, TU_T0 + HOUR + 60, TU_T0 + 2 * HOUR + 60,
         "SEARCH agg USING PRIMARY KEY (bucket>? AND bucket<?)"},
        {1u << BM_G_PROFILE_TYPE, NULL, TU_T0 + 90, TU_T0 + DAY + 90,
         "SEARCH agg_hour USING PRIMARY KEY (bucket>? AND bucket<?)"},
        {1u << BM_G_MINUTE, "amazon.nova-lite", TU_T0, TU_T0 + 7 * DAY,
         "SEARCH agg USING COVERING INDEX agg_model (model=? AND bucket>? AND bucket<?)"},
        {0, NULL, BM_NO_BUCKET, BM_NO_BUCKET,
         "SEARCH agg_day USING PRIMARY KEY (bucket>? AND bucket<?)"},
    };
    for (size_t i = 0; i < TU_N(cases); i++) {
        struct bm_group_by g = group_of(cases[i].mask);
        struct bm_db_query q;
        struct bm_buf b;
        struct bm_errmsg em;
        bm_db_query_init(&q, &g);
        q.model_id = cases[i].model;
        q.from = cases[i].from;
        q.to = cases[i].to;
        bm_buf_init(&b, 1 << 16);
        assert_int_equal(bm__db_query_plan(g_db, &q, &b, &em), BM_OK);
        print_message("# plan %zu: %s\n", i, b.data);
        assert_non_null(strstr(b.data, cases[i].want));
        assert_null(strstr(b.data, "SCAN agg"));
        bm_buf_cleanup(&b);
    }
}

int main(void)
{
    bm_log_set_level(BM_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_grouping), cmocka_unit_test(test_filters_and_ranges),
        cmocka_unit_test(test_range_edges),    cmocka_unit_test(test_row_cap),
        cmocka_unit_test(test_plans),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
