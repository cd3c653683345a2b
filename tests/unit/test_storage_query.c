/* Storage queries (GET /aggregates): every grouping and filter against an in-memory reference
 * built from the same deltas with core's bm_agg_regroup, time-range edges (half-open on the
 * bucket start, across minute, hour, day and all-time parts, added or subtracted), the same
 * before and after a prune and after later commits, the row cap, and the query plans. */
#include "test_storage_tu.h"

#define N_OBJECTS 300

/* A database and what it holds: every committed series, of which queries count those with a
 * bucket at or after since (the prune cutoff). */
struct ref {
    struct bm_db *db;
    struct bm_agg *all;
    int64_t since;
};
static struct ref g_ref;
static struct bm_db *g_db;
static struct bm_agg *g_all;
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
    g_ref = (struct ref){g_db, g_all, INT64_MIN};
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

/* What q should return from r: the matching stored series, regrouped and sorted by core. */
static struct bm_agg *expected(const struct ref *r, const struct bm_db_query *q)
{
    struct bm_agg *f = bm_agg_new(0), *out = NULL;
    for (size_t i = 0; i < bm_agg_count(r->all); i++) {
        const struct bm_series *s = bm_agg_at(r->all, i);
        if (s->key.bucket < r->since || (q->from != BM_NO_BUCKET && s->key.bucket < q->from) ||
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

/* What a sums-only query returns: min and max left 0. */
static void zero_minmax(struct bm_agg *a)
{
    for (size_t i = 0; i < bm_agg_count(a); i++) {
        struct bm_series *w = (struct bm_series *)bm_agg_at(a, i);
        struct bm_stat *st[4] = {&w->c.input, &w->c.output, &w->c.cache_read, &w->c.cache_write};
        for (int j = 0; j < 4; j++)
            st[j]->min = st[j]->max = 0;
    }
}

static void check_query(const struct ref *r, const struct bm_db_query *q)
{
    struct bm_agg *got = NULL, *want = expected(r, q);
    struct bm_errmsg em;
    if (bm_db_query(r->db, q, &got, &em) != BM_OK)
        fail_msg("query: %s", em.text);
    tu_assert_agg_eq(got, want);
    bm_agg_free(got);
    /* The same query without min/max (the plans that may subtract): the same rows and sums,
     * min and max 0. */
    struct bm_db_query qs = *q;
    qs.sums_only = true;
    if (bm_db_query(r->db, &qs, &got, &em) != BM_OK)
        fail_msg("query: %s", em.text);
    zero_minmax(want);
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
    /* Sums read these as a rollup minus its outside: almost everything (all-time minus both
     * ends), a day ragged by half an hour (a day minus an hour), most of an hour. */
    {TU_T0 + 1234, TU_T0 + 3 * DAY - 4321},
    {TU_T0 + DAY - 1800, TU_T0 + 2 * DAY - 1800},
    {TU_T0 + 5 * HOUR + 17 * 60 + 30, TU_T0 + 6 * HOUR - 120},
    {TU_T0 - DAY, TU_T0 + 10 * DAY}, /* beyond the data on both sides */
    {TU_T0 + 3 * HOUR + 30, TU_T0 + 2 * DAY + 23 * HOUR + 59 * 60},
};

static void set_filter(struct bm_db_query *q, const struct filter *f)
{
    q->model_id = f->model;
    q->source_region = f->src;
    q->inference_region = f->inf;
    q->profile_type = f->type;
}

/* Checks one query on r: grouping mask m, range i, filter f. */
static void check_case(const struct ref *r, unsigned m, size_t i, size_t f)
{
    struct bm_group_by g = group_of(m);
    struct bm_db_query q;
    bm_db_query_init(&q, &g);
    q.from = ranges[i][0];
    q.to = ranges[i][1];
    set_filter(&q, &filters[f]);
    check_query(r, &q);
}

/* Every grouping over all time, a ragged range of minutes, hours and a day, and almost all
 * the data, unfiltered and with every filter. On PostgreSQL (a round trip and a plan per
 * query, 6,144 of them took half a minute) every grouping meets one of those six range and
 * filter pairs, in turn, so each grouping and each pair is still checked (about 170 times). */
static void check_every_grouping(const struct ref *r)
{
    static const size_t some[] = {0, 1, 9};
    for (unsigned m = 0; m < 1u << BM_G__COUNT; m++)
        for (size_t i = 0; i < TU_N(some); i++)
            for (size_t f = 0; f < 6; f += 5)
                if (!tu_is_pg() || m % 6 == i * 2 + f / 5)
                    check_case(r, m, some[i], f);
}

static void test_every_grouping(void **state)
{
    (void)state;
    check_every_grouping(&g_ref);
}

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

static void check_filters_and_ranges(const struct ref *r)
{
    for (size_t m = 0; m < TU_N(masks); m++)
        for (size_t f = 0; f < TU_N(filters); f++)
            for (size_t i = 0; i < TU_N(ranges); i++)
                check_case(r, masks[m], i, f);
}

static void test_filters_and_ranges(void **state)
{
    (void)state;
    check_filters_and_ranges(&g_ref);
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
        check_query(&g_ref, &q);
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
    struct bm_agg *want = expected(&g_ref, &q), *got = NULL;
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

/* The EXPLAIN QUERY PLAN details of q's parts (each led by + or -), in b. */
static void plan_of(struct bm_db *db, const struct bm_db_query *q, struct bm_buf *b)
{
    struct bm_errmsg em;
    bm_buf_init(b, 1 << 16);
    assert_int_equal(bm__db_query_plan(db, q, b, &em), BM_OK);
    assert_non_null(b->data);
}

/* The typical dashboard queries read index ranges, never a whole bucketed table (the all-time
 * table is a row per series), and sums read rollups with their outside subtracted. */
static void test_plans(void **state)
{
    (void)state;
    struct {
        unsigned mask;
        const char *model;
        int64_t from, to;
        bool sums_only;
        const char *want;
    } cases[] = {
        {1u << BM_G_MODEL_ID, NULL, TU_T0 + HOUR + 60, TU_T0 + 2 * HOUR + 60, false,
         "+ SEARCH agg USING PRIMARY KEY (bucket>? AND bucket<?)"},
        {1u << BM_G_MODEL_ID, NULL, TU_T0 + HOUR + 60, TU_T0 + 2 * HOUR + 60, true,
         "- SEARCH agg USING PRIMARY KEY (bucket>? AND bucket<?)"},
        {1u << BM_G_PROFILE_TYPE, NULL, TU_T0 + 90, TU_T0 + DAY + 90, false,
         "+ SEARCH agg_hour USING PRIMARY KEY (bucket>? AND bucket<?)"},
        {1u << BM_G_MINUTE, "amazon.nova-lite", TU_T0, TU_T0 + 7 * DAY, true,
         "SEARCH agg USING COVERING INDEX agg_model (model=? AND bucket>? AND bucket<?)"},
        {0, NULL, BM_NO_BUCKET, BM_NO_BUCKET, false,
         "+ SEARCH agg_day USING PRIMARY KEY (bucket>? AND bucket<?)"},
        {0, NULL, BM_NO_BUCKET, BM_NO_BUCKET, true, "+ SCAN agg_all"},
        {1u << BM_G_MODEL_ID | 1u << BM_G_PROFILE_TYPE, NULL, BM_NO_BUCKET, BM_NO_BUCKET, true,
         "+ SCAN agg_all"},
        {1u << BM_G_MODEL_ID, "amazon.nova-lite", TU_T0 + 1234, TU_T0 + 3 * DAY - 4321, true,
         "+ SEARCH agg_all USING PRIMARY KEY (model=?)"},
    };
    for (size_t i = 0; i < TU_N(cases); i++) {
        struct bm_group_by g = group_of(cases[i].mask);
        struct bm_db_query q;
        struct bm_buf b;
        bm_db_query_init(&q, &g);
        q.model_id = cases[i].model;
        q.from = cases[i].from;
        q.to = cases[i].to;
        q.sums_only = cases[i].sums_only;
        plan_of(g_db, &q, &b);
        print_message("# plan %zu: %s\n", i, b.data);
        assert_non_null(strstr(b.data, cases[i].want));
        static const char *const scans[] = {"SCAN agg;", "SCAN agg_hour", "SCAN agg_day",
                                            "SCAN agg USING"};
        for (size_t j = 0; j < TU_N(scans); j++)
            assert_null(strstr(b.data, scans[j]));
        assert_false(b.len >= 8 && strcmp(b.data + b.len - 8, "SCAN agg") == 0);
        bm_buf_cleanup(&b);
    }
}

/* Commits object i with its delta into db and r's reference. */
static void commit_ref(struct ref *r, uint64_t i)
{
    struct bm_agg *d = tu_delta(i);
    assert_int_equal(tu_commit(r->db, i), BM_DB_COMMITTED);
    assert_int_equal(bm_agg_merge(r->all, d), BM_OK);
    bm_agg_free(d);
}

/* After a prune at a ragged cutoff every query counts exactly the rows at or after it, also
 * after later commits (one with buckets before the cutoff: rows the next prune removes, which
 * the all-time table holds meanwhile) and after a restart. */
static void test_after_prune(void **state)
{
    (void)state;
    struct tdb t;
    struct bm_errmsg em;
    struct bm_db_prune_stats ps;
    tdb_init(&t);
    struct ref r = {tdb_open(&t), bm_agg_new(0), INT64_MIN};
    for (uint64_t i = 0; i < 200; i++)
        commit_ref(&r, 1000 + i);
    r.since = TU_T0 + DAY + 5 * HOUR + 1215;
    assert_int_equal(bm_db_prune(r.db, r.since, &ps, &em), BM_OK);
    assert_true(ps.aggregates > 0);
    tu_assert_rollups(t.path, r.since);
    for (int round = 0; round < 3; round++) {
        check_filters_and_ranges(&r);
        if (round == 0) {
            for (uint64_t i = 0; i < 100; i++) /* a third lands before the cutoff */
                commit_ref(&r, 2000 + i);
            tu_assert_rollups(t.path, r.since);
        } else if (round == 1) {
            bm_db_close(r.db);
            r.db = tdb_open(&t);
        }
    }
    check_every_grouping(&r);
    /* The next prune removes the late rows and the all-time table forgets them. */
    assert_int_equal(bm_db_prune(r.db, r.since + 60, &ps, &em), BM_OK);
    r.since += 60;
    tu_assert_rollups(t.path, r.since);
    check_filters_and_ranges(&r);
    bm_agg_free(r.all);
    bm_db_close(r.db);
    tdb_cleanup(&t);
}

/* A plan that subtracts can hold more groups on the way than in its result: series that exist
 * only outside the range. Past the row cap it is rerun without subtraction, so a result under
 * the cap is never refused. */
static void test_cap_with_subtraction(void **state)
{
    (void)state;
    struct tdb t;
    struct bm_errmsg em;
    tdb_init(&t);
    struct ref r = {tdb_open(&t), bm_agg_new(0), INT64_MIN};
    /* 40 models in the first hour only; one series every hour for three days. */
    for (int i = 0; i < 40 + 72; i++) {
        char model[32], key[32];
        snprintf(model, sizeof model, "m.early-%02d", i < 40 ? i : 99);
        struct bm_series_key k = {
            .bucket = i < 40 ? TU_T0 + 60 * i : TU_T0 + (int64_t)(i - 40) * HOUR + 1800,
            .type = BM_PT_ON_DEMAND,
            .model_id = tu_s(model),
            .profile_id = tu_s(model),
            .source_region = tu_s("us-east-1"),
            .inference_region = tu_s("us-east-1"),
            .operation = tu_s("Converse"),
        };
        struct bm_counters c;
        bm_counters_one(&c, 100 + (uint64_t)i, 7, 0, 1);
        struct bm_agg *d = bm_agg_new(0);
        assert_int_equal(bm_agg_add(d, &k, &c), BM_OK);
        assert_int_equal(bm_agg_merge(r.all, d), BM_OK);
        struct bm_db_object o;
        enum bm_db_commit_result res;
        snprintf(key, sizeof key, "k%d", i);
        bm_db_object_init(&o, "b", key, NULL, "e");
        assert_int_equal(bm_db_commit_object(r.db, &o, NULL, 0, d, NULL, TU_T0, &res, &em), BM_OK);
        bm_agg_free(d);
    }
    struct bm_group_by g = group_of(1u << BM_G_MODEL_ID);
    struct bm_db_query q;
    bm_db_query_init(&q, &g);
    q.from = TU_T0 + HOUR;
    q.sums_only = true;
    q.max_rows = 5;
    struct bm_buf b;
    plan_of(r.db, &q, &b);
    assert_non_null(strstr(b.data, "agg_all")); /* the plan subtracts the first hour */
    bm_buf_cleanup(&b);
    struct bm_agg *got = NULL, *want = expected(&r, &q);
    assert_int_equal(bm_agg_count(want), 1);
    zero_minmax(want);
    assert_int_equal(bm_db_query(r.db, &q, &got, &em), BM_OK);
    tu_assert_agg_eq(got, want);
    bm_agg_free(got);
    bm_agg_free(want);
    /* A result over the cap is still refused. */
    q.from = BM_NO_BUCKET;
    q.max_rows = 40;
    assert_int_equal(bm_db_query(r.db, &q, &got, &em), BM_E_BAD_REQUEST);
    bm_agg_free(r.all);
    bm_db_close(r.db);
    tdb_cleanup(&t);
}

/* A rollup that disagrees with the minute rows (here damaged by hand) is reported, never shown
 * as numbers. */
static void test_inconsistent_rollup(void **state)
{
    (void)state;
    struct tdb t;
    struct bm_errmsg em;
    tdb_init(&t);
    struct bm_db *db = tdb_open(&t);
    for (uint64_t i = 0; i < 20; i++)
        tu_commit(db, i);
    assert_int_equal(bm__db_exec(t.path, "UPDATE agg_all SET i_s = i_s - 1000000", &em), BM_OK);
    struct bm_db_query q;
    struct bm_agg *a = NULL;
    bm_db_query_init(&q, NULL);
    q.sums_only = true;
    q.from = TU_T0 + 60; /* all but the first minute: the all-time table minus that minute */
    struct bm_buf b;
    plan_of(db, &q, &b);
    assert_non_null(strstr(b.data, "+ SCAN agg_all"));
    bm_buf_cleanup(&b);
    assert_int_equal(bm_db_query(db, &q, &a, &em), BM_E_INTERNAL);
    assert_null(a);
    assert_non_null(strstr(em.text, "disagree"));
    bm_db_close(db);
    tdb_cleanup(&t);
}

int main(void)
{
    bm_log_set_level(BM_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_grouping),
        cmocka_unit_test(test_filters_and_ranges),
        cmocka_unit_test(test_range_edges),
        cmocka_unit_test(test_row_cap),
        cmocka_unit_test(test_plans),
        cmocka_unit_test(test_after_prune),
        cmocka_unit_test(test_cap_with_subtraction),
        cmocka_unit_test(test_inconsistent_rollup),
    };
    /* On PostgreSQL: the results, through the same plans (the cases on SQLite's EXPLAIN QUERY
     * PLAN and files do not apply; test_storage_pg_store has the damaged-rollup case). */
    const struct CMUnitTest pg_tests[] = {
        cmocka_unit_test(test_every_grouping), cmocka_unit_test(test_filters_and_ranges),
        cmocka_unit_test(test_range_edges),    cmocka_unit_test(test_row_cap),
        cmocka_unit_test(test_after_prune),
    };
    if (tu_is_pg())
        return cmocka_run_group_tests_name("postgresql", pg_tests, setup, teardown);
    return cmocka_run_group_tests(tests, setup, teardown);
}
