/* bench_instances.c: commits and duplicate checks per second through bm_storage.h, on whatever
 * store DB names (an SQLite file or a PostgreSQL URL), for one process of N threads; the driver
 * (bench_instances.sh) runs two at once for "two instances", each started at the same wall-clock
 * moment so their windows overlap. Not a test: it prints counts, and exits 1 only when the
 * store answers wrongly (a new object seen as a duplicate, a seeded one not found).
 *
 *   bench_instances DB seed N          commits objects seed/0 .. seed/N-1 (4 threads)
 *   bench_instances DB count           prints the store's objects.processed
 *   bench_instances DB commit|dup THREADS SECONDS START_MS INSTANCE SEEDED
 *       opens DB, waits until START_MS (epoch milliseconds), then for SECONDS commits new
 *       objects of 3 series each (keys of START_MS and INSTANCE: never committed before) or checks
 *       is_processed on random seeded keys (all present); prints "OPS ELAPSED_S BUSY" (BUSY:
 *       commits retried after BM_E_STORAGE_BUSY, e.g. SQLite's lock held by the other process).
 * BENCH_SYNC_FULL=1 opens an SQLite file with synchronous=FULL (struct bm_db_options). */
#define BENCH_NAME "bench_instances"
#include "tests/bench/bench_tu.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define T_NOW 1777593600 /* 2026-05-01T00:00:00Z: the commits' clock, fixed */
#define MAX_THREADS 16

static const char *const regions[] = {"us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1"};
static char models[30][48];

/* A worker's delta: 3 of 120 series (30 models x 4 regions) in one of the last 60 minutes, so
 * concurrent commits share aggregate rows as workers ingesting the same hour do. */
static struct bm_agg *delta_of(uint64_t x)
{
    struct bm_agg *d = bm_agg_new(0);
    if (d == NULL)
        die("agg", BM_E_NOMEM, NULL);
    for (int k = 0; k < 3; k++) {
        int s = (int)((x + (uint64_t)k * 41) % 120);
        struct bm_series_key key = {
            .bucket = T_NOW - 3600 + (int64_t)((x >> 8) % 60) * 60,
            .type = BM_PT_ON_DEMAND,
            .model_id = s_(models[s % 30]),
            .profile_id = s_(models[s % 30]),
            .source_region = s_(regions[s / 30]),
            .inference_region = s_(regions[s / 30]),
            .operation = s_("Converse"),
        };
        struct bm_counters c;
        bm_counters_one(&c, 100 + x % 4000, (x >> 5) % 900, 0, 0);
        if (bm_agg_add(d, &key, &c) != BM_OK)
            die("agg", BM_E_NOMEM, NULL);
    }
    return d;
}

/* Commits kind/i, retrying while the store is busy (SQLite: after its busy timeout; a store
 * that stays busy is an error); returns the number of retries. */
static long commit(struct bm_db *db, const char *kind, long i, uint64_t x)
{
    struct bm_agg *d = delta_of(x);
    char key[160];
    struct bm_db_object o;
    struct bm_errmsg em;
    enum bm_db_commit_result r;
    long busy = 0;
    object_of(&o, key, sizeof key, kind, i);
    bm_err e;
    while ((e = bm_db_commit_object(db, &o, "m", 1, d, NULL, T_NOW, &r, &em)) ==
               BM_E_STORAGE_BUSY &&
           busy < 20)
        busy++;
    if (e != BM_OK)
        die("commit", e, &em);
    if (r != BM_DB_COMMITTED)
        die("commit of a new object counted as a duplicate", BM_E_INTERNAL, NULL);
    bm_agg_free(d);
    return busy;
}

struct worker {
    struct bm_db *db;
    bool dup;
    int instance, thread;
    long seeded;             /* dup: keys seed/0 .. seed/seeded-1 exist */
    long long start_ms;      /* the run's start: with instance and thread, keys no run used */
    double end;              /* CLOCK_MONOTONIC */
    long ops, busy;          /* out */
    long seed_from, seed_to; /* seed mode: commit seed/seed_from .. seed_to-1 */
};

static void *work(void *arg)
{
    struct worker *w = arg;
    uint64_t x = (uint64_t)(w->instance * MAX_THREADS + w->thread) * 2654435761u + 1;
    char kind[64];
    snprintf(kind, sizeof kind, "new-%lld-%d-%d", w->start_ms, w->instance, w->thread);
    if (w->seed_to > w->seed_from) {
        for (long i = w->seed_from; i < w->seed_to; i++)
            w->busy += commit(w->db, "seed", i, (uint64_t)i * 2654435761u);
        return NULL;
    }
    while (mono_s() < w->end) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        if (w->dup) {
            char key[160];
            struct bm_db_object o;
            struct bm_errmsg em;
            bool seen = false;
            object_of(&o, key, sizeof key, "seed", (long)((x >> 33) % (uint64_t)w->seeded));
            bm_err e = bm_db_is_processed(w->db, &o, &seen, &em);
            if (e != BM_OK)
                die("is_processed", e, &em);
            if (!seen)
                die("a seeded object is not processed", BM_E_INTERNAL, NULL);
        } else {
            w->busy += commit(w->db, kind, w->ops, x >> 11);
        }
        w->ops++;
    }
    return NULL;
}

static long arg_long(const char *s, long lo, long hi)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "bench_instances: bad number %s\n", s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    bool seed = argc == 4 && strcmp(argv[2], "seed") == 0;
    bool count = argc == 3 && strcmp(argv[2], "count") == 0;
    bool run = argc == 8 && (strcmp(argv[2], "commit") == 0 || strcmp(argv[2], "dup") == 0);
    if (!seed && !count && !run) {
        fprintf(stderr, "usage: bench_instances DB seed N\n"
                        "       bench_instances DB count\n"
                        "       bench_instances DB commit|dup THREADS SECONDS START_MS INSTANCE "
                        "SEEDED\n");
        return 2;
    }
    for (int i = 0; i < 30; i++)
        snprintf(models[i], sizeof models[i], "provider%d.model-%02d-v1:0", i % 6, i);
    bm_log_set_level(BM_WARN);
    const char *sync = getenv("BENCH_SYNC_FULL");
    struct bm_db_options opt = {.sync_full = sync != NULL && strcmp(sync, "1") == 0};
    struct bm_db *db = NULL;
    struct bm_errmsg em;
    bm_err e = bm_db_open(argv[1], &opt, &db, &em);
    if (e != BM_OK)
        die("open", e, &em);

    if (count) {
        struct bm_db_status st;
        if ((e = bm_db_status(db, &st, &em)) != BM_OK)
            die("status", e, &em);
        printf("%llu\n", (unsigned long long)st.c[BM_DB_C_OBJECTS_PROCESSED]);
        bm_db_close(db);
        return 0;
    }
    struct worker w[MAX_THREADS];
    int threads = 4;
    if (seed) {
        long n = arg_long(argv[3], 1, 10000000);
        for (int t = 0; t < threads; t++)
            w[t] = (struct worker){
                .db = db, .seed_from = n * t / threads, .seed_to = n * (t + 1) / threads};
    } else {
        threads = (int)arg_long(argv[3], 1, MAX_THREADS);
        double secs = (double)arg_long(argv[4], 1, 3600);
        long long start_ms = arg_long(argv[5], 0, LONG_MAX);
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        long long wait_ms = start_ms - ((long long)now.tv_sec * 1000 + now.tv_nsec / 1000000);
        if (wait_ms > 0) {
            struct timespec ts = {(time_t)(wait_ms / 1000), (long)(wait_ms % 1000) * 1000000};
            nanosleep(&ts, NULL);
        } else {
            fprintf(stderr, "bench_instances: started %lld ms late\n", -wait_ms);
        }
        double end = mono_s() + secs;
        for (int t = 0; t < threads; t++)
            w[t] = (struct worker){.db = db,
                                   .dup = strcmp(argv[2], "dup") == 0,
                                   .instance = (int)arg_long(argv[6], 0, 1000),
                                   .thread = t,
                                   .start_ms = start_ms,
                                   .seeded = arg_long(argv[7], 1, LONG_MAX),
                                   .end = end};
    }
    pthread_t th[MAX_THREADS];
    double t0 = mono_s();
    for (int t = 0; t < threads; t++)
        if (pthread_create(&th[t], NULL, work, &w[t]) != 0)
            die("pthread_create", BM_E_NOMEM, NULL);
    long ops = 0, busy = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(th[t], NULL);
        ops += w[t].ops;
        busy += w[t].busy;
    }
    double elapsed = mono_s() - t0;
    if (!seed)
        printf("%ld %.3f %ld\n", ops, elapsed, busy);
    bm_db_close(db);
    return 0;
}
