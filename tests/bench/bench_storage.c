/* bench_storage.c: storage benchmark (not a test). Fills a database through the real API with
 * about a million aggregate rows (30 days of minute buckets x 24 active series out of 300 =
 * 30 models x 5 profile types x 2 operations over 4 regions), then measures duplicate lookups,
 * small commits and the latency of typical GET /aggregates queries (SQL plus JSON rendering),
 * alone and again while another thread commits (steady ingest).
 * Usage: bench_storage DB_PATH [--fill-only]; an existing filled DB is reused. */
#define BENCH_NAME "bench_storage"
#include "tests/bench/bench_tu.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MINUTES (30 * 24 * 60)
#define POOL 300
#define ACTIVE 24
#define T_START 1775001600 /* 2026-04-01T00:00:00Z */
#define T_END (T_START + MINUTES * 60)

static const char *const regions[] = {"us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1"};
static const char *const ops[] = {"Converse", "InvokeModel"};
static char models[30][48];
static char profiles[POOL][64];

/* Series s of the pool at bucket b, with per-invocation tokens derived from (s, b). */
static void add_series(struct bm_agg *a, int s, int64_t b)
{
    enum bm_profile_type t = (enum bm_profile_type)((s / 30) % 5);
    struct bm_series_key k = {
        .bucket = b,
        .type = t,
        .model_id = s_(models[s % 30]),
        .profile_id = s_(profiles[s]),
        .source_region = s_(regions[(s / 7) % 4]),
        .inference_region = s_(regions[(s / 3) % 4]),
        .operation = s_(ops[(s / 150) % 2]),
    };
    uint64_t x = (uint64_t)s * 2654435761u + (uint64_t)b;
    for (int i = 0; i < 1 + (int)(x % 3); i++) {
        struct bm_counters c;
        bm_counters_one(&c, 100 + (x >> 3) % 4000, (x >> 7) % 900, (x >> 11) % 64, 0);
        if (bm_agg_add(a, &k, &c) != BM_OK)
            die("agg", BM_E_NOMEM, NULL);
    }
}

/* The publisher's part: marks everything pending as published, as CloudWatch would accept. */
static void drain_outbox(struct bm_db *db)
{
    struct bm_errmsg em;
    struct bm_db_outbox *ob = NULL;
    bm_err e;
    do {
        if ((e = bm_db_outbox_fetch(db, 0, 5000, &ob, &em)) != BM_OK)
            die("outbox fetch", e, &em);
        int64_t *ids = malloc((ob->n + 1) * sizeof *ids);
        for (size_t i = 0; i < ob->n; i++)
            ids[i] = ob->rows[i].id;
        if (ob->n &&
            (e = bm_db_outbox_mark(db, ids, ob->n, BM_DB_OUTBOX_PUBLISHED, ob->n, 1, &em)) != BM_OK)
            die("outbox mark", e, &em);
        free(ids);
        e = ob->n == 5000 ? BM_E_INTERNAL : BM_OK;
        bm_db_outbox_free(ob);
    } while (e != BM_OK);
}

static void fill(struct bm_db *db)
{
    struct bm_errmsg em;
    double t0 = mono_s();
    for (long m = 0; m < MINUTES; m++) {
        struct bm_agg *d = bm_agg_new(0);
        int start = (int)((m * 37) % POOL);
        for (int k = 0; k < ACTIVE; k++)
            add_series(d, (start + k * 13) % POOL, T_START + m * 60);
        char key[160];
        struct bm_db_object o;
        enum bm_db_commit_result r;
        struct bm_ingest_stats st = {.records = bm_agg_count(d)};
        object_of(&o, key, sizeof key, "fill", m);
        bm_err e = bm_db_commit_object(db, &o, "m", 4096, d, &st, T_START + m * 60, &r, &em);
        if (e != BM_OK)
            die("fill commit", e, &em);
        bm_agg_free(d);
        if (m % 256 == 255)
            drain_outbox(db);
        if (m % 4320 == 4319)
            fprintf(stderr, "fill: %ld%% (%.0f s)\n", (m + 1) * 100 / MINUTES, mono_s() - t0);
    }
    drain_outbox(db);
    fprintf(stderr, "fill: %d objects, %d series rows in %.1f s\n", MINUTES, MINUTES * ACTIVE,
            mono_s() - t0);
}

struct lookups {
    struct bm_db *db;
    long n;
    uint64_t seed;
};

static void *lookup_loop(void *arg)
{
    struct lookups *l = arg;
    struct bm_errmsg em;
    for (long i = 0; i < l->n; i++) {
        l->seed = l->seed * 6364136223846793005ULL + 1442695040888963407ULL;
        char key[160];
        struct bm_db_object o;
        bool seen = false;
        object_of(&o, key, sizeof key, "fill", (long)((l->seed >> 33) % MINUTES));
        bm_err e = bm_db_is_processed(l->db, &o, &seen, &em);
        if (e != BM_OK || !seen)
            die("is_processed", e, &em);
    }
    return NULL;
}

static double bench_lookups(struct bm_db *db, int threads, long per_thread)
{
    pthread_t th[8];
    struct lookups l[8];
    double t0 = mono_s();
    for (int i = 0; i < threads; i++) {
        l[i] = (struct lookups){db, per_thread, (uint64_t)i + 1};
        pthread_create(&th[i], NULL, lookup_loop, &l[i]);
    }
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    return (double)threads * (double)per_thread / (mono_s() - t0);
}

/* Commits object base + i, 3 series in the last hour of the data. */
static void commit_one(struct bm_db *db, long i, long base)
{
    struct bm_errmsg em;
    struct bm_agg *d = bm_agg_new(0);
    for (int k = 0; k < 3; k++)
        add_series(d, (int)((i * 7 + k * 101) % POOL), T_END - 3600 + (i % 60) * 60);
    char key[160];
    struct bm_db_object o;
    enum bm_db_commit_result r;
    object_of(&o, key, sizeof key, "new", base + i);
    bm_err e = bm_db_commit_object(db, &o, "m", 1, d, NULL, T_END, &r, &em);
    if (e != BM_OK || r != BM_DB_COMMITTED)
        die("commit", e, &em);
    bm_agg_free(d);
}

/* Commits n new objects of 3 series each in the last hour of the data. */
static double bench_commits(struct bm_db *db, long n, long base)
{
    double t0 = mono_s();
    for (long i = 0; i < n; i++)
        commit_one(db, i, base);
    double rate = (double)n / (mono_s() - t0);
    drain_outbox(db);
    return rate;
}

/* Steady ingest: commits new objects until told to stop, as a worker would. */
struct ingest {
    struct bm_db *db;
    long base, done;
    atomic_bool stop;
};

static void *ingest_loop(void *arg)
{
    struct ingest *in = arg;
    while (!atomic_load(&in->stop))
        commit_one(in->db, in->done++, in->base);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

struct qcase {
    const char *name;
    const char *group_by;
    int64_t from, to;
    const char *model;
    bool minmax;      /* also min/max (what the publisher needs, not GET /aggregates) */
    const char *type; /* profile_type filter, NULL = any */
};

static void bench_query(struct bm_db *db, const struct qcase *c, int runs)
{
    struct bm_db_query q;
    struct bm_group_by g;
    struct bm_errmsg em;
    double *ms = malloc((size_t)runs * sizeof *ms);
    size_t rows = 0, bytes = 0;
    if (bm_group_by_parse(c->group_by, &g, &em) != BM_OK)
        die("group_by", BM_E_BAD_REQUEST, &em);
    bm_db_query_init(&q, &g);
    q.from = c->from;
    q.to = c->to;
    q.model_id = c->model;
    q.sums_only = !c->minmax;
    if (c->type != NULL && !bm_profile_type_parse(c->type, strlen(c->type), &q.profile_type))
        die("profile_type", BM_E_BAD_REQUEST, NULL);
    for (int i = 0; i < runs; i++) {
        struct bm_agg *a = NULL;
        struct bm_buf b;
        bm_buf_init(&b, (size_t)1 << 30);
        double t0 = mono_s();
        bm_err e = bm_db_query(db, &q, &a, &em);
        if (e != BM_OK)
            die(c->name, e, &em);
        if (bm_agg_write_json(a, &g, q.from, q.to, &b) != BM_OK)
            die("json", BM_E_NOMEM, NULL);
        ms[i] = (mono_s() - t0) * 1000;
        rows = bm_agg_count(a);
        bytes = b.len;
        bm_agg_free(a);
        bm_buf_cleanup(&b);
    }
    qsort(ms, (size_t)runs, sizeof *ms, cmp_double);
    printf("%-44s %7zu %9zu %8.2f %8.2f %8.2f\n", c->name, rows, bytes, ms[runs / 2],
           ms[(runs * 99) / 100], ms[runs - 1]);
    free(ms);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_storage DB_PATH [--fill-only]\n");
        return 2;
    }
    for (int i = 0; i < 30; i++)
        snprintf(models[i], sizeof models[i], "provider%d.model-%02d-v1:0", i % 6, i);
    for (int s = 0; s < POOL; s++)
        snprintf(profiles[s], sizeof profiles[s], "%s%s", (s / 30) % 5 == 1 ? "us." : "",
                 models[s % 30]);
    bm_log_set_level(BM_WARN);
    struct bm_db *db = NULL;
    struct bm_errmsg em;
    bm_err e = bm_db_open(argv[1], NULL, &db, &em);
    if (e != BM_OK)
        die("open", e, &em);
    struct bm_db_status st;
    if ((e = bm_db_status(db, &st, &em)) != BM_OK)
        die("status", e, &em);
    if (st.c[BM_DB_C_OBJECTS_PROCESSED] < MINUTES)
        fill(db);
    if (argc > 2 && strcmp(argv[2], "--fill-only") == 0) {
        bm_db_close(db);
        return 0;
    }
    long base = (long)st.c[BM_DB_C_OBJECTS_PROCESSED]; /* fresh object keys on every run */

    printf("storage benchmark: %d aggregate rows (%d days of minutes x %d series), WAL, "
           "synchronous=NORMAL\n\n",
           MINUTES * ACTIVE, MINUTES / 1440, ACTIVE);
    printf("%-44s %12s\n", "operation", "per second");
    printf("%-44s %12.0f\n", "is_processed (duplicate check), 1 thread",
           bench_lookups(db, 1, 300000));
    printf("%-44s %12.0f\n", "is_processed (duplicate check), 2 threads",
           bench_lookups(db, 2, 300000));
    printf("%-44s %12.0f\n", "commit_object, 3-series delta, 1 thread",
           bench_commits(db, 5000, base));
    printf("\n%-44s %7s %9s %8s %8s %8s\n", "GET /aggregates (SQL + JSON, sums only)", "rows",
           "bytes", "p50 ms", "p99 ms", "max ms");
    const struct qcase cases[] = {
        {"last hour by model_id", "model_id", T_END - 3600, T_END, NULL, false, NULL},
        {"last hour by minute, one type", "minute", T_END - 3600, T_END, NULL, false,
         "CrossRegion"},
        {"last day by profile_type", "profile_type", T_END - 86400 - 1800, T_END - 1800, NULL,
         false, NULL},
        {"last 24 hours (ragged) by model_id", "model_id", T_END - 86400 - 1234, T_END - 1234, NULL,
         false, NULL},
        {"last 7 days (ragged) by model_id", "model_id", T_END - 7 * 86400 - 1234, T_END - 1234,
         NULL, false, NULL},
        {"one model, last week, by minute", "minute", T_END - 7 * 86400, T_END, models[3], false,
         NULL},
        {"one model, last week, by profile_type", "profile_type", T_END - 7 * 86400 + 120, T_END,
         models[3], false, NULL},
        {"all time, no group_by", "", BM_NO_BUCKET, BM_NO_BUCKET, NULL, false, NULL},
        {"all time by model_id,profile_type", "model_id,profile_type", BM_NO_BUCKET, BM_NO_BUCKET,
         NULL, false, NULL},
        {"last 30 days (ragged) by model_id", "model_id", T_START + 1234, T_END - 4321, NULL, false,
         NULL},
        {"last day by profile_type, with min/max", "profile_type", T_END - 86400 - 1800,
         T_END - 1800, NULL, true, NULL},
        {"all time, no group_by, with min/max", "", BM_NO_BUCKET, BM_NO_BUCKET, NULL, true, NULL},
    };
    const size_t n_cases = sizeof cases / sizeof cases[0];
    for (size_t i = 0; i < n_cases; i++)
        bench_query(db, &cases[i], i == 5 ? 100 : 300);

    /* The same dashboard queries while a writer commits as fast as it can: the answers come
     * from tables the commits keep changing, so no cached result could serve them. */
    printf("\n%-44s %7s %9s %8s %8s %8s\n", "... while another thread commits", "rows", "bytes",
           "p50 ms", "p99 ms", "max ms");
    struct ingest in = {.db = db, .base = base + 5000};
    atomic_init(&in.stop, false);
    pthread_t th;
    double t0 = mono_s();
    pthread_create(&th, NULL, ingest_loop, &in);
    static const size_t busy[] = {0, 1, 3, 7, 8, 9};
    for (size_t i = 0; i < sizeof busy / sizeof busy[0]; i++)
        bench_query(db, &cases[busy[i]], 300);
    atomic_store(&in.stop, true);
    pthread_join(th, NULL);
    printf("%-44s %12.0f\n", "(commit_object meanwhile, per second)",
           (double)in.done / (mono_s() - t0));
    drain_outbox(db);
    bm_db_close(db);
    return 0;
}
