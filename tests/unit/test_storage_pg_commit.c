/* The PostgreSQL store's exactly-once commit and publisher lease against a real server
 * (test_storage_pg_tu.h): a duplicate counted once, 8 threads committing one object at once,
 * concurrent commits that share rows (exact, never deadlocked), and the lease refused while
 * valid, taken over at expiry, and won by one of 8 racing stand-bys. */
#include "test_storage_pg_tu.h"

typedef struct bm_agg *(*delta_fn)(uint64_t i);

/* The delta of object i in test_commit_parallel: the same 6 series (one minute, one hour,
 * one day) for every object, added in an order that turns with i, so that commits running
 * at once meet the same rows in different orders. */
static struct bm_agg *turning_delta(uint64_t i)
{
    struct bm_agg *a = bm_agg_new(0);
    assert_non_null(a);
    for (uint64_t j = 0; j < 6; j++) {
        uint64_t k = (i + j) % 6;
        struct bm_series_key key = {
            .bucket = TU_T0 + 60,
            .type = BM_PT_ON_DEMAND,
            .model_id = tu_s(tu_models[k % TU_N(tu_models)]),
            .profile_id = tu_s(tu_models[k % TU_N(tu_models)]),
            .source_region = tu_s(tu_regions[k % TU_N(tu_regions)]),
            .inference_region = tu_s(tu_regions[k % TU_N(tu_regions)]),
            .operation = tu_s("Converse"),
        };
        struct bm_counters c;
        bm_counters_one(&c, 100 + i * 7 + k, 10 + i, i % 5, k);
        assert_int_equal(bm_agg_add(a, &key, &c), BM_OK);
    }
    return a;
}

static enum bm_db_commit_result commit_with(struct bm_pg *pg, uint64_t i, delta_fn mk)
{
    char key[128];
    struct bm_db_object o;
    struct bm_errmsg em = {{0}};
    enum bm_db_commit_result r = BM_DB_DUPLICATE;
    struct bm_agg *d = mk(i);
    struct bm_ingest_stats st = {.records = 10 + i, .invalid = i % 3};
    tu_object(&o, key, sizeof key, i);
    bm_err e = bm__pg_commit_object(pg, &o, "msg-1", 1000, d, &st, TU_T0, NULL, &r, &em);
    bm_agg_free(d);
    if (e != BM_OK)
        fail_msg("commit %llu: %s", (unsigned long long)i, em.text);
    return r;
}

static enum bm_db_commit_result commit(struct bm_pg *pg, uint64_t i)
{
    return commit_with(pg, i, tu_delta);
}

/* The expected totals of objects 0..n-1 that step selects (all when step is 1), from the
 * deltas themselves, and their number of series. */
static void expect_with(uint64_t first, uint64_t n, delta_fn mk, struct bm_counters *want,
                        int64_t *series)
{
    memset(want, 0, sizeof *want);
    *series = 0;
    for (uint64_t i = first; i < first + n; i++) {
        struct bm_agg *d = mk(i);
        struct bm_counters c;
        bm_agg_totals(d, &c);
        if (want->invocations == 0)
            *want = c;
        else
            bm_counters_merge(want, &c);
        *series += (int64_t)bm_agg_count(d);
        bm_agg_free(d);
    }
}

static void expect(uint64_t first, uint64_t n, struct bm_counters *want, int64_t *series)
{
    expect_with(first, n, tu_delta, want, series);
}

/* Every table holds exactly want: the minute rows, both rollups and the outbox with sums,
 * minima and maxima, the all-time rollup with sums; the outbox one row per series. */
static void assert_tables(const char *schema, const struct bm_counters *want, int64_t series)
{
    static const char *const tables[] = {"agg", "agg_hour", "agg_day", "outbox"};
    char sql[512];
    const struct bm_stat *st[4] = {&want->input, &want->output, &want->cache_read,
                                   &want->cache_write};
    static const char *const p[4] = {"i", "o", "r", "w"};
    for (size_t t = 0; t < 4; t++) {
        snprintf(sql, sizeof sql, "SELECT sum(n) FROM %s", tables[t]);
        assert_int_equal(q_int(schema, sql), want->invocations);
        for (int k = 0; k < 4; k++) {
            snprintf(sql, sizeof sql, "SELECT sum(%s_s) FROM %s", p[k], tables[t]);
            assert_int_equal(q_int(schema, sql), st[k]->sum);
            snprintf(sql, sizeof sql, "SELECT min(%s_mn) FROM %s", p[k], tables[t]);
            assert_int_equal(q_int(schema, sql), st[k]->min);
            snprintf(sql, sizeof sql, "SELECT max(%s_mx) FROM %s", p[k], tables[t]);
            assert_int_equal(q_int(schema, sql), st[k]->max);
        }
    }
    assert_int_equal(q_int(schema, "SELECT sum(n) FROM agg_all"), want->invocations);
    for (int k = 0; k < 4; k++) {
        snprintf(sql, sizeof sql, "SELECT sum(%s_s) FROM agg_all", p[k]);
        assert_int_equal(q_int(schema, sql), st[k]->sum);
    }
    assert_int_equal(q_int(schema, "SELECT count(*) FROM outbox WHERE state = 0"), series);
    /* Each hourly row is the sum of its minutes (not just the grand totals). */
    assert_int_equal(q_int(schema, "SELECT count(*) FROM (SELECT bucket - bucket % 3600, model, "
                                   "ptype, profile, src, inf, op, sum(n), sum(i_s), sum(w_s) "
                                   "FROM agg GROUP BY 1, 2, 3, 4, 5, 6, 7 EXCEPT SELECT bucket, "
                                   "model, ptype, profile, src, inf, op, n, i_s, w_s "
                                   "FROM agg_hour) x"),
                     0);
}

static void test_commit_duplicate(void **state)
{
    (void)state;
    struct bm_counters want;
    int64_t series;
    struct bm_pg *pg = fresh("t_dup", 2, true);
    q_int("t_dup", "INSERT INTO failure VALUES ('logs', 'AWSLogs/1/BedrockModelInvocationLogs/"
                   "us-east-1/obj-7.json.gz', 'etag-1', 2, 'BMAS-014', 'x', 1, 2, 0)");
    assert_int_equal(commit(pg, 7), BM_DB_COMMITTED);
    for (int k = 0; k < 3; k++)
        assert_int_equal(commit(pg, 7), BM_DB_DUPLICATE);
    expect(7, 1, &want, &series);
    assert_tables("t_dup", &want, series);
    assert_int_equal(q_int("t_dup", "SELECT count(*) FROM processed"), 1);
    assert_int_equal(q_int("t_dup", "SELECT records FROM processed"), 17);
    assert_int_equal(q_int("t_dup", "SELECT count(*) FROM failure"), 0);
    int64_t v = 0;
    struct bm_errmsg em;
    assert_int_equal(bm__pg_counter(pg, BM_DB_C_OBJECTS_PROCESSED, &v, &em), BM_OK);
    assert_int_equal(v, 1);
    assert_int_equal(bm__pg_counter(pg, BM_DB_C_OBJECTS_DUPLICATES, &v, &em), BM_OK);
    assert_int_equal(v, 3);
    assert_int_equal(bm__pg_counter(pg, BM_DB_C_RECORDS_PROCESSED, &v, &em), BM_OK);
    assert_int_equal(v, 17);
    assert_int_equal(bm__pg_counter(pg, BM_DB_C_PUBLISH_PENDING, &v, &em), BM_OK);
    assert_int_equal(v, series);
    bm__pg_close(pg);
}

struct committer {
    pthread_t th;
    struct bm_pg *pg;
    pthread_barrier_t *start;
    uint64_t first, n;
    int committed, duplicates;
};

static void *commit_thread(void *arg)
{
    struct committer *w = arg;
    for (uint64_t i = w->first; i < w->first + w->n; i++) {
        pthread_barrier_wait(w->start);
        if (commit(w->pg, i) == BM_DB_COMMITTED)
            w->committed++;
        else
            w->duplicates++;
    }
    return NULL;
}

/* 8 threads commit the same object at the same moment, 12 objects in turn: each object is
 * counted once. The pool has 8 connections, so all 8 transactions are in flight at once. */
static void test_commit_race(void **state)
{
    (void)state;
    enum { THREADS = 8, OBJECTS = 12 };
    struct committer w[THREADS];
    pthread_barrier_t start;
    struct bm_counters want;
    int64_t series;
    struct bm_pg *pg = fresh("t_race", THREADS, true);
    pthread_barrier_init(&start, NULL, THREADS);
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct committer){.pg = pg, .start = &start, .first = 100, .n = OBJECTS};
        assert_int_equal(pthread_create(&w[i].th, NULL, commit_thread, &w[i]), 0);
    }
    int committed = 0, duplicates = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(w[i].th, NULL);
        committed += w[i].committed;
        duplicates += w[i].duplicates;
    }
    pthread_barrier_destroy(&start);
    assert_int_equal(committed, OBJECTS);
    assert_int_equal(duplicates, OBJECTS * (THREADS - 1));
    expect(100, OBJECTS, &want, &series);
    assert_tables("t_race", &want, series);
    assert_int_equal(
        q_int("t_race", "SELECT value FROM counter_total WHERE name = 'objects.processed'"),
        OBJECTS);
    assert_int_equal(
        q_int("t_race", "SELECT value FROM counter_total WHERE name = 'objects.duplicates'"),
        OBJECTS * (THREADS - 1));
    bm__pg_close(pg);
}

struct mixer {
    pthread_t th;
    struct bm_pg *pg;
    pthread_barrier_t *start;
    uint64_t first, n, offset;
    int committed;
};

static void *mix_thread(void *arg)
{
    struct mixer *w = arg;
    pthread_barrier_wait(w->start);
    for (uint64_t j = 0; j < w->n; j++)
        if (commit_with(w->pg, w->first + (w->offset + j) % w->n, turning_delta) == BM_DB_COMMITTED)
            w->committed++;
    return NULL;
}

/* 4 threads commit the same 48 objects, each starting at a different one: commits of
 * different objects that update the same rows run at once. Totals are exact, and no
 * transaction had to be retried: every commit locks the rows in one order (in the delta's
 * order they deadlock). */
static void test_commit_parallel(void **state)
{
    (void)state;
    enum { THREADS = 4, OBJECTS = 48 };
    struct mixer w[THREADS];
    pthread_barrier_t start;
    struct bm_counters want;
    int64_t series;
    struct bm_pg *pg = fresh("t_par", THREADS, true);
    pthread_barrier_init(&start, NULL, THREADS);
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct mixer){.pg = pg,
                              .start = &start,
                              .first = 500,
                              .n = OBJECTS,
                              .offset = (uint64_t)i * OBJECTS / THREADS};
        assert_int_equal(pthread_create(&w[i].th, NULL, mix_thread, &w[i]), 0);
    }
    int committed = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(w[i].th, NULL);
        committed += w[i].committed;
    }
    pthread_barrier_destroy(&start);
    assert_int_equal(committed, OBJECTS);
    expect_with(500, OBJECTS, turning_delta, &want, &series);
    assert_tables("t_par", &want, series);
    assert_int_equal(
        q_int("t_par", "SELECT value FROM counter_total WHERE name = 'objects.duplicates'"),
        OBJECTS * (THREADS - 1));
    assert_int_equal(bm__pg_retries(pg), 0);
    bm__pg_close(pg);
}

/* ---- Publisher lease ---------------------------------------------------------------------- */

static bool acquire(struct bm_pg *pg, const char *holder, int64_t now, int64_t ttl)
{
    bool held = false;
    struct bm_errmsg em = {{0}};
    if (bm__pg_lease_acquire(pg, "publisher", holder, now, ttl, &held, &em) != BM_OK)
        fail_msg("lease: %s", em.text);
    return held;
}

static void test_lease(void **state)
{
    (void)state;
    char who[64];
    bool valid = false, released = false;
    struct bm_errmsg em = {{0}};
    struct bm_pg *pg = fresh("t_lease", 2, true);
    assert_true(acquire(pg, "a", 1000, 5000));  /* a until 6000 */
    assert_false(acquire(pg, "b", 2000, 5000)); /* held by a */
    assert_true(acquire(pg, "a", 3000, 5000));  /* renewed: until 8000 */
    assert_false(acquire(pg, "b", 7999, 5000)); /* still a's */
    assert_int_equal(bm__pg_lease_holder(pg, "publisher", 7999, who, sizeof who, &valid, &em),
                     BM_OK);
    assert_string_equal(who, "a");
    assert_true(valid);
    assert_true(acquire(pg, "b", 8000, 5000));  /* a's expired: b takes over */
    assert_false(acquire(pg, "a", 8001, 5000)); /* a is back too late */
    assert_int_equal(bm__pg_lease_holder(pg, "publisher", 13000, who, sizeof who, &valid, &em),
                     BM_OK);
    assert_string_equal(who, "b");
    assert_false(valid);
    /* Only the holder can give it up; then anyone takes it at once. */
    assert_int_equal(bm__pg_lease_release(pg, "publisher", "a", &released, &em), BM_OK);
    assert_false(released);
    assert_int_equal(bm__pg_lease_release(pg, "publisher", "b", &released, &em), BM_OK);
    assert_true(released);
    assert_int_equal(bm__pg_lease_holder(pg, "publisher", 9000, who, sizeof who, &valid, &em),
                     BM_OK);
    assert_string_equal(who, "");
    assert_false(valid);
    assert_true(acquire(pg, "a", 9000, 5000));
    /* The server's clock: a minute's lease is valid now, and refused to another holder. */
    bool held = false;
    assert_int_equal(bm__pg_lease_acquire(pg, "srv", "x", BM__PG_SERVER_CLOCK, 60000, &held, &em),
                     BM_OK);
    assert_true(held);
    assert_int_equal(bm__pg_lease_acquire(pg, "srv", "y", BM__PG_SERVER_CLOCK, 60000, &held, &em),
                     BM_OK);
    assert_false(held);
    assert_int_equal(
        bm__pg_lease_holder(pg, "srv", BM__PG_SERVER_CLOCK, who, sizeof who, &valid, &em), BM_OK);
    assert_string_equal(who, "x");
    assert_true(valid);
    bm__pg_close(pg);
}

struct contender {
    pthread_t th;
    struct bm_pg *pg;
    pthread_barrier_t *start;
    char name[24];
    bool held;
};

static void *contend(void *arg)
{
    struct contender *c = arg;
    pthread_barrier_wait(c->start);
    c->held = acquire(c->pg, c->name, 50000, 5000);
    return NULL;
}

/* The holder died (its lease expired): 8 stand-bys try at once, exactly one takes over. */
static void test_lease_takeover_race(void **state)
{
    (void)state;
    enum { N = 8 };
    struct contender c[N];
    pthread_barrier_t start;
    struct bm_pg *pg = fresh("t_lrace", N, true);
    assert_true(acquire(pg, "dead", 1000, 5000));
    pthread_barrier_init(&start, NULL, N);
    for (int i = 0; i < N; i++) {
        c[i] = (struct contender){.pg = pg, .start = &start};
        snprintf(c[i].name, sizeof c[i].name, "standby-%d", i);
        assert_int_equal(pthread_create(&c[i].th, NULL, contend, &c[i]), 0);
    }
    int winners = 0, winner = -1;
    for (int i = 0; i < N; i++) {
        pthread_join(c[i].th, NULL);
        if (c[i].held) {
            winners++;
            winner = i;
        }
    }
    pthread_barrier_destroy(&start);
    assert_int_equal(winners, 1);
    char sql[128];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM publisher_lease WHERE holder = 'standby-%d' AND "
             "expires_at = 55000",
             winner);
    assert_int_equal(q_int("t_lrace", sql), 1);
    bm__pg_close(pg);
}

int main(int argc, char **argv)
{
    (void)argc;
    pg_need_server(argv);
    bm_log_set_level(BM_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commit_duplicate),    cmocka_unit_test(test_commit_race),
        cmocka_unit_test(test_commit_parallel),     cmocka_unit_test(test_lease),
        cmocka_unit_test(test_lease_takeover_race),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
