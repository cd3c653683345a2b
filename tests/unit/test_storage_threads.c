/* Storage under concurrency and crashes: many threads committing one object count it once,
 * parallel commits of many objects give exact totals, readers never see BUSY while writers
 * work, and kill -9 at random moments leaves every object's effect entirely or not at all. */
#include "test_storage_tu.h"

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

static const struct bm_group_by all_fields = {
    .n = 7,
    .f = {BM_G_MODEL_ID, BM_G_PROFILE_TYPE, BM_G_PROFILE_ID, BM_G_SOURCE_REGION,
          BM_G_INFERENCE_REGION, BM_G_OPERATION, BM_G_ATTR1}};

struct worker {
    pthread_t th;
    struct bm_db *db;
    pthread_barrier_t *start;
    uint64_t first, n, step; /* objects first, first + step, ... (n of them) */
    /* When set: halfway through, the worker waits until *gate has grown by 3 from what it
     * read there (readers' rounds), so reads provably run while this writer is mid-run. */
    atomic_long *gate;
    int committed, duplicates;
    bm_err err;
    struct bm_errmsg em;
};

static void *commit_worker(void *arg)
{
    struct worker *w = arg;
    pthread_barrier_wait(w->start);
    for (uint64_t j = 0; j < w->n && w->err == BM_OK; j++) {
        if (w->gate != NULL && j == w->n / 2) {
            long r0 = atomic_load(w->gate);
            for (int waited = 0; atomic_load(w->gate) < r0 + 3; waited++) {
                if (waited > 60000) { /* a minute: the readers are stuck */
                    w->err = BM_E_INTERNAL;
                    snprintf(w->em.text, sizeof w->em.text, "readers made no progress");
                    return NULL;
                }
                struct timespec ts = {0, 1000000L};
                nanosleep(&ts, NULL);
            }
        }
        uint64_t i = w->first + j * w->step;
        char key[128];
        struct bm_db_object o;
        enum bm_db_commit_result r;
        struct bm_agg *d = tu_delta(i);
        tu_object(&o, key, sizeof key, i);
        w->err = bm_db_commit_object(w->db, &o, NULL, 1, d, NULL, TU_T0, &r, &w->em);
        bm_agg_free(d);
        if (w->err == BM_OK)
            *(r == BM_DB_COMMITTED ? &w->committed : &w->duplicates) += 1;
    }
    return NULL;
}

/* Runs the n workers to completion; returns how many commits were COMMITTED and (when dups
 * is not NULL) how many DUPLICATE. */
static int run_workers(struct worker *w, int n, int *dups)
{
    pthread_barrier_t b;
    pthread_barrier_init(&b, NULL, (unsigned)n);
    for (int i = 0; i < n; i++) {
        w[i].start = &b;
        assert_int_equal(pthread_create(&w[i].th, NULL, commit_worker, &w[i]), 0);
    }
    for (int i = 0; i < n; i++) {
        pthread_join(w[i].th, NULL);
        if (w[i].err != BM_OK)
            fail_msg("worker %d: %s", i, w[i].em.text);
    }
    pthread_barrier_destroy(&b);
    int committed = 0;
    for (int i = 0; i < n; i++) {
        committed += w[i].committed;
        if (dups != NULL)
            *dups += w[i].duplicates;
    }
    return committed;
}

/* The reference, merged in memory from tu_delta. With want_hi > want_lo it is independent of
 * the database: exactly the objects in [want_lo, want_hi) must have processed rows among
 * [0, n) (asserted), and the reference is made of those. With want_hi == want_lo (the crash
 * test, where which commits landed is the unknown) it is the objects of [0, n) that have a
 * processed row. */
static struct bm_agg *reference(struct bm_db *db, uint64_t n, uint64_t want_lo, uint64_t want_hi,
                                uint64_t *processed)
{
    struct bm_agg *all = bm_agg_new(0);
    struct bm_errmsg em;
    bool strict = want_hi > want_lo;
    *processed = 0;
    for (uint64_t i = 0; i < n; i++) {
        char key[128];
        struct bm_db_object o;
        bool seen = false;
        tu_object(&o, key, sizeof key, i);
        assert_int_equal(bm_db_is_processed(db, &o, &seen, &em), BM_OK);
        if (strict) {
            bool want = i >= want_lo && i < want_hi;
            if (seen != want)
                fail_msg("object %llu: processed row %s, expected %s", (unsigned long long)i,
                         seen ? "present" : "missing", want ? "present" : "none");
        }
        if (!seen)
            continue;
        struct bm_agg *d = tu_delta(i);
        assert_int_equal(bm_agg_merge(all, d), BM_OK);
        bm_agg_free(d);
        (*processed)++;
    }
    return all;
}

/* Everything stored agrees with the reference (see reference(): the expected objects
 * [want_lo, want_hi), or in the crash test those with processed rows): aggregates by every
 * field, the rollups with the minute rows, the outbox, and the counters. Returns how many
 * objects were processed. */
static uint64_t check_exact(struct bm_db *db, const char *path, uint64_t n, uint64_t want_lo,
                            uint64_t want_hi)
{
    uint64_t processed;
    struct bm_errmsg em;
    struct bm_agg *all = reference(db, n, want_lo, want_hi, &processed);
    if (want_hi > want_lo)
        assert_int_equal(processed, want_hi - want_lo);
    struct bm_agg *want = NULL, *got = NULL;
    assert_int_equal(bm_agg_regroup(all, &all_fields, &want), BM_OK);
    assert_int_equal(bm_agg_sort(want, &all_fields), BM_OK);
    struct bm_db_query q;
    bm_db_query_init(&q, &all_fields);
    assert_int_equal(bm_db_query(db, &q, &got, &em), BM_OK);
    tu_assert_agg_eq(got, want);
    tu_assert_rollups(path, INT64_MIN);

    struct bm_db_outbox *ob = NULL;
    assert_int_equal(bm_db_outbox_fetch(db, 0, 1000000, &ob, &em), BM_OK);
    struct bm_counters ot = {0}, wt;
    for (size_t i = 0; i < ob->n; i++)
        bm_counters_merge(&ot, &ob->rows[i].s.c);
    bm_agg_totals(all, &wt);
    tu_assert_counters_eq(&ot, &wt);

    struct bm_db_status s;
    assert_int_equal(bm_db_status(db, &s, &em), BM_OK);
    assert_int_equal(s.c[BM_DB_C_OBJECTS_PROCESSED], processed);
    assert_int_equal(s.c[BM_DB_C_PUBLISH_PENDING], ob->n);
    bm_db_outbox_free(ob);
    bm_agg_free(got);
    bm_agg_free(want);
    bm_agg_free(all);
    return processed;
}

static void test_same_object_many_threads(void **state)
{
    (void)state;
    struct tdb t;
    tdb_init(&t);
    struct bm_db *db = tdb_open(&t);
    struct worker w[8] = {{0}};
    for (int i = 0; i < 8; i++)
        w[i] = (struct worker){.db = db, .first = 42, .n = i < 2 ? 7 : 6, .step = 0};
    int duplicates = 0;
    int committed = run_workers(w, 8, &duplicates); /* 2 * 7 + 6 * 6 = 50 commits of 42 */
    assert_int_equal(committed, 1);
    assert_int_equal(duplicates, 49);
    check_exact(db, t.path, 100, 42, 43);
    struct bm_db_status s;
    struct bm_errmsg em;
    assert_int_equal(bm_db_status(db, &s, &em), BM_OK);
    assert_int_equal(s.c[BM_DB_C_OBJECTS_DUPLICATES], 49);
    bm_db_close(db);
    tdb_cleanup(&t);
}

static void test_many_objects_parallel(void **state)
{
    (void)state;
    struct tdb t;
    tdb_init(&t);
    struct bm_db *db = tdb_open(&t);
    /* Interleaved ranges that overlap: thread i commits i, i + 4, ... and thread i + 4 the
     * same objects again, racing it. */
    struct worker w[8] = {{0}};
    for (int i = 0; i < 8; i++)
        w[i] = (struct worker){.db = db, .first = (uint64_t)(i % 4), .n = 150, .step = 4};
    assert_int_equal(run_workers(w, 8, NULL), 600);
    check_exact(db, t.path, 600, 0, 600);
    bm_db_close(db);
    tdb_cleanup(&t);
}

struct reader {
    struct bm_db *db;
    atomic_bool stop;
    atomic_long rounds;
    bm_err err;
    struct bm_errmsg em;
};

static void *read_loop(void *arg)
{
    struct reader *r = arg;
    uint64_t last_processed = 0, last_invocations = 0;
    while (!atomic_load(&r->stop) && r->err == BM_OK) {
        struct bm_db_query q;
        struct bm_group_by g = {.n = 1, .f = {BM_G_MODEL_ID}};
        struct bm_agg *a = NULL;
        struct bm_db_status s;
        char key[128];
        struct bm_db_object o;
        bool seen;
        bm_db_query_init(&q, &g);
        if ((r->err = bm_db_query(r->db, &q, &a, &r->em)) != BM_OK)
            break;
        struct bm_counters c;
        bm_agg_totals(a, &c);
        bm_agg_free(a);
        tu_object(&o, key, sizeof key, (uint64_t)atomic_load(&r->rounds) % 1000);
        if ((r->err = bm_db_status(r->db, &s, &r->em)) != BM_OK ||
            (r->err = bm_db_is_processed(r->db, &o, &seen, &r->em)) != BM_OK)
            break;
        /* Each read sees a committed snapshot: totals only ever grow. */
        assert_true(c.invocations >= last_invocations);
        assert_true(s.c[BM_DB_C_OBJECTS_PROCESSED] >= last_processed);
        last_invocations = c.invocations;
        last_processed = s.c[BM_DB_C_OBJECTS_PROCESSED];
        atomic_fetch_add(&r->rounds, 1);
    }
    return NULL;
}

static void test_reads_during_writes(void **state)
{
    (void)state;
    struct tdb t;
    tdb_init(&t);
    /* Three connections for four writers and two readers: writers queue for the writer lock
     * without holding a connection, so the readers always find one. */
    struct bm_db_options opt = {.max_connections = 3};
    struct bm_db *db = NULL;
    struct bm_errmsg em;
    assert_int_equal(bm_db_open(t.path, &opt, &db, &em), BM_OK);
    struct reader rd = {.db = db};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, read_loop, &rd), 0);
    struct worker w[4] = {{0}};
    for (int i = 0; i < 4; i++)
        w[i] = (struct worker){
            .db = db, .first = (uint64_t)i * 250, .n = 250, .step = 1, .gate = &rd.rounds};
    assert_int_equal(run_workers(w, 4, NULL), 1000);
    atomic_store(&rd.stop, true);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    if (rd.err != BM_OK)
        fail_msg("reader: %s (%s)", bm_err_wire(rd.err), rd.em.text);
    /* Each writer waited mid-run for three reader rounds: no count of rounds to guess. */
    assert_true(atomic_load(&rd.rounds) >= 3);
    check_exact(db, t.path, 1000, 0, 1000);
    bm_db_close(db);
    tdb_cleanup(&t);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Child: commits its range, plus earlier objects again (duplicates), until killed. */
static void crash_child(const char *path, uint64_t first, uint64_t n)
{
    struct bm_db *db = NULL;
    struct bm_errmsg em;
    if (bm_db_open(path, NULL, &db, &em) != BM_OK)
        _exit(3);
    for (uint64_t i = first; i < first + n; i++) {
        uint64_t objs[2] = {i, i / 2};
        for (int k = 0; k < 2; k++) {
            char key[128];
            struct bm_db_object o;
            enum bm_db_commit_result r;
            struct bm_agg *d = tu_delta(objs[k]);
            tu_object(&o, key, sizeof key, objs[k]);
            if (bm_db_commit_object(db, &o, NULL, 1, d, NULL, TU_T0, &r, &em) != BM_OK)
                _exit(4);
            bm_agg_free(d);
        }
        if (i % 16 == 0)
            bm_db_count(db, BM_DB_C_OBJECTS_IGNORED, 1);
    }
    bm_db_close(db);
    _exit(0);
}

static void test_crash_kill9(void **state)
{
    (void)state;
    struct tdb t;
    tdb_init(&t);
    bm_db_close(tdb_open(&t));
    /* BM_TEST_SEED replays a run; the seed is printed before anything can fail. */
    const char *env_seed = getenv("BM_TEST_SEED");
    uint64_t seed = env_seed && *env_seed ? strtoull(env_seed, NULL, 10) : (uint64_t)time(NULL) | 1;
    const uint64_t per_round = 400;
    const int rounds = 8;
    int killed = 0;
    uint64_t last_processed = 0;
    const uint64_t seed0 = seed;
    print_message("# crash test: seed %llu (BM_TEST_SEED=%llu replays it)\n",
                  (unsigned long long)seed0, (unsigned long long)seed0);
    for (int r = 0; r < rounds; r++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            crash_child(t.path, (uint64_t)r * per_round, per_round);
        sleep_ms(5 + (long)(tu_rng(&seed) % 150));
        killed += kill(pid, SIGKILL) == 0;
        int st = 0;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        /* Either killed, or it finished every commit first. */
        assert_true((WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) ||
                    (WIFEXITED(st) && WEXITSTATUS(st) == 0));
        /* After each crash the database opens and is exact. */
        struct bm_db *db = tdb_open(&t);
        uint64_t processed = check_exact(db, t.path, (uint64_t)(r + 1) * per_round, 0, 0);
        /* Nothing committed before is lost; a child that finished committed its whole range. */
        assert_true(processed >= last_processed);
        if (WIFEXITED(st))
            assert_true(processed >= last_processed + per_round);
        last_processed = processed;
        bm_db_close(db);
    }
    print_message("# crash test: %d kills over %d rounds (seed %llu)\n", killed, rounds,
                  (unsigned long long)seed0);
    tdb_cleanup(&t);
}

int main(void)
{
    bm_log_set_level(BM_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_object_many_threads),
        cmocka_unit_test(test_many_objects_parallel),
        cmocka_unit_test(test_reads_during_writes),
        cmocka_unit_test(test_crash_kill9),
    };
    if (tu_is_pg())
        return cmocka_run_group_tests_name("postgresql", tests, NULL, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
