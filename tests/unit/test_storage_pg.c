/* The PostgreSQL store against a real server (PG_URL; without it the binary restarts itself
 * under tests/tools/pg-lib.sh, which starts one): URL checks and errors that never show the
 * password, migrations, the exactly-once commit alone and under 8 racing threads, retries of
 * serialization failures and deadlocks, and the publisher lease. Each test has its own schema. */
#include "test_storage_tu.h"

#include "storage/pg_int.h"

#include <pthread.h>
#include <stdatomic.h>

static const char *pg_url(void)
{
    const char *u = getenv("PG_URL");
    if (u == NULL || u[0] == '\0')
        fail_msg("PG_URL is not set");
    return u;
}

/* PG_URL with search_path set to schema: each test's tables apart from the others'. */
static void schema_url(const char *schema, char *out, size_t cap)
{
    const char *u = pg_url();
    snprintf(out, cap, "%s%soptions=-csearch_path%%3D%s", u, strchr(u, '?') ? "&" : "?", schema);
}

/* Runs sql (several statements allowed) in schema on a private connection; returns the first
 * column of the first row as an integer (0 when there is none or it is NULL). */
static int64_t q_int(const char *schema, const char *sql)
{
    char url[512];
    schema_url(schema, url, sizeof url);
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("connect: %s", PQerrorMessage(c));
    PQclear(PQexec(c, "SET client_min_messages = warning")); /* no NOTICE on stderr */
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    int64_t v = st == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)
                    ? strtoll(PQgetvalue(r, 0, 0), NULL, 10)
                    : 0;
    PQclear(r);
    PQfinish(c);
    return v;
}

/* A fresh schema and a pool on it, migrated when migrate is set. */
static struct bm_pg *fresh(const char *schema, int max_conn, bool migrate)
{
    char url[512], sql[256];
    struct bm_errmsg em = {{0}};
    struct bm_pg *pg = NULL;
    struct bm_pg_options opt = {.max_connections = max_conn};
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", schema, schema);
    q_int("public", sql);
    schema_url(schema, url, sizeof url);
    if (bm__pg_open(url, &opt, &pg, &em) != BM_OK)
        fail_msg("bm__pg_open: %s", em.text);
    if (migrate && bm__pg_migrate(pg, bm__pg_schema_version(), &em) != BM_OK)
        fail_msg("migrate: %s", em.text);
    return pg;
}

/* The URL's password, to check that no message shows it. */
static void url_password(char *out, size_t cap)
{
    PQconninfoOption *o = PQconninfoParse(pg_url(), NULL);
    assert_non_null(o);
    out[0] = '\0';
    for (PQconninfoOption *p = o; p->keyword != NULL; p++)
        if (strcmp(p->keyword, "password") == 0 && p->val != NULL)
            snprintf(out, cap, "%s", p->val);
    PQconninfoFree(o);
    assert_true(strlen(out) >= 8);
}

static void test_url(void **state)
{
    (void)state;
    char desc[200];
    struct bm_errmsg em = {{0}};
    assert_true(bm__pg_url_is("postgres://h/db"));
    assert_true(bm__pg_url_is("postgresql://h/db"));
    assert_false(bm__pg_url_is("/var/lib/bmas/bmas.db"));
    assert_false(bm__pg_url_is("mysql://h/db"));
    assert_false(bm__pg_url_is(NULL));
    assert_int_equal(bm__pg_url_check("postgresql://alice:hunter22@db.example:5433/metrics", desc,
                                      sizeof desc, &em),
                     BM_OK);
    assert_string_equal(desc, "postgresql://alice@db.example:5433/metrics");
    assert_int_equal(bm__pg_url_check("postgres://db.example/m", desc, sizeof desc, &em), BM_OK);
    assert_string_equal(desc, "postgresql://db.example/m");
    assert_int_equal(bm__pg_url_check("sqlite:///x.db", desc, sizeof desc, &em), BM_E_CONFIG);
    assert_non_null(strstr(em.text, "BMAS_DB"));
    /* A malformed URL: libpq's complaint quotes it, but not the password. */
    assert_int_equal(bm__pg_url_check("postgresql://bob:s3cr%zzXY@h/db", desc, sizeof desc, &em),
                     BM_E_CONFIG);
    assert_non_null(strstr(em.text, "BMAS_DB"));
    assert_null(strstr(em.text, "s3cr"));
    assert_int_equal(
        bm__pg_url_check("postgresql://h/db?password=t0ps%zzecret&bad", desc, sizeof desc, &em),
        BM_E_CONFIG);
    assert_null(strstr(em.text, "t0ps"));
}

static void test_connect_errors(void **state)
{
    (void)state;
    char pw[128], url[512];
    struct bm_pg *pg = NULL;
    struct bm_errmsg em = {{0}};
    url_password(pw, sizeof pw);
    /* Nothing listens on port 1: the store is away, a retry later may help. */
    snprintf(url, sizeof url, "postgresql://postgres:%s@127.0.0.1:1/bmas", pw);
    assert_int_equal(bm__pg_open(url, NULL, &pg, &em), BM_E_STORAGE_BUSY);
    assert_null(pg);
    assert_non_null(strstr(em.text, "127.0.0.1"));
    assert_null(strstr(em.text, pw));
    /* The real server, a wrong password: a configuration error, and neither password shown. */
    const char *at = strchr(pg_url(), '@');
    assert_non_null(at);
    snprintf(url, sizeof url, "postgresql://postgres:WrongPass9876%s", at);
    assert_int_equal(bm__pg_open(url, NULL, &pg, &em), BM_E_STORAGE);
    assert_null(strstr(em.text, "WrongPass9876"));
    assert_null(strstr(em.text, pw));
    assert_non_null(strstr(em.text, "postgresql://postgres@127.0.0.1"));
    /* The right password, a database that does not exist. */
    snprintf(url, sizeof url, "postgresql://postgres:%s%.*s/no_such_db", pw, (int)strcspn(at, "/"),
             at);
    assert_int_equal(bm__pg_open(url, NULL, &pg, &em), BM_E_STORAGE);
    assert_non_null(strstr(em.text, "no_such_db"));
    assert_null(strstr(em.text, pw));
    /* And a server error inside a transaction names the server without the password. */
    pg = fresh("t_err", 2, false);
    assert_int_equal(bm__pg_migrate(pg, bm__pg_schema_version(), &em), BM_OK);
    int64_t v = 0;
    q_int("t_err", "DROP TABLE counter");
    assert_int_equal(bm__pg_counter(pg, BM_DB_C_OBJECTS_PROCESSED, &v, &em), BM_E_STORAGE);
    assert_non_null(strstr(em.text, "42P01"));
    assert_null(strstr(em.text, pw));
    bm__pg_close(pg);
}

/* The server dropped the pool's idle connections (a restart, a failover, an idle timeout):
 * the next transaction reconnects instead of failing. */
static void test_reconnect(void **state)
{
    (void)state;
    struct bm_errmsg em = {{0}};
    int64_t v = -1;
    struct bm_pg *pg = fresh("t_reconn", 1, true);
    q_int("t_reconn", "INSERT INTO counter VALUES ('objects.processed', 5)");
    assert_int_equal(bm__pg_counter(pg, BM_DB_C_OBJECTS_PROCESSED, &v, &em), BM_OK);
    assert_int_equal(v, 5);
    /* Only the pool's connections say application_name bmas (q_int's do not). */
    assert_int_equal(q_int("t_reconn", "SELECT count(pg_terminate_backend(pid)) FROM "
                                       "pg_stat_activity WHERE application_name = 'bmas'"),
                     1);
    v = -1;
    if (bm__pg_counter(pg, BM_DB_C_OBJECTS_PROCESSED, &v, &em) != BM_OK)
        fail_msg("after the server dropped the connection: %s", em.text);
    assert_int_equal(v, 5);
    bm__pg_close(pg);
}

/* Runs sql on the server's maintenance database "postgres" (PG_URL's credentials): what
 * must not run inside the database it changes. */
static void admin(const char *sql)
{
    const char *const keys[] = {"dbname", "dbname", NULL};
    const char *const vals[] = {pg_url(), "postgres", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("connect to postgres: %s", PQerrorMessage(c));
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
}

/* The database goes away under a running pool (its connections dropped, new ones refused):
 * BM_E_STORAGE_BUSY naming the server without the password, then back to work once it
 * accepts connections again. */
static void test_server_away(void **state)
{
    (void)state;
    char pw[128], sql[256], db[64];
    struct bm_errmsg em = {{0}};
    int64_t v = -1;
    url_password(pw, sizeof pw);
    struct bm_pg *pg = fresh("t_away", 2, true);
    assert_int_equal(bm__pg_counter(pg, BM_DB_C_OBJECTS_PROCESSED, &v, &em), BM_OK);
    char url[512];
    schema_url("t_away", url, sizeof url);
    PGconn *c = PQconnectdb(url);
    PGresult *r = PQexec(c, "SELECT current_database()");
    snprintf(db, sizeof db, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
    snprintf(sql, sizeof sql, "ALTER DATABASE %s ALLOW_CONNECTIONS false", db);
    admin(sql);
    admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
          "'bmas'");
    bm_err e = bm__pg_counter(pg, BM_DB_C_OBJECTS_PROCESSED, &v, &em);
    snprintf(sql, sizeof sql, "ALTER DATABASE %s ALLOW_CONNECTIONS true", db);
    admin(sql);
    assert_int_equal(e, BM_E_STORAGE_BUSY);
    assert_non_null(strstr(em.text, "reconnect"));
    assert_non_null(strstr(em.text, "not currently accepting connections"));
    assert_non_null(strstr(em.text, "postgresql://postgres@127.0.0.1"));
    assert_null(strstr(em.text, pw));
    v = -1;
    if (bm__pg_counter(pg, BM_DB_C_OBJECTS_PROCESSED, &v, &em) != BM_OK)
        fail_msg("after the database came back: %s", em.text);
    assert_int_equal(v, 0);
    bm__pg_close(pg);
}

static void test_migrate(void **state)
{
    (void)state;
    struct bm_errmsg em = {{0}};
    int v = -1;
    struct bm_pg *pg = fresh("t_mig", 2, false);
    assert_int_equal(bm__pg_version(pg, &v, &em), BM_OK);
    assert_int_equal(v, 0);
    /* Step by step (an old bmas, then this one), each run twice: nothing happens again. */
    for (int to = 1; to <= bm__pg_schema_version(); to++)
        for (int k = 0; k < 2; k++) {
            assert_int_equal(bm__pg_migrate(pg, to, &em), BM_OK);
            assert_int_equal(bm__pg_version(pg, &v, &em), BM_OK);
            assert_int_equal(v, to);
        }
    assert_int_equal(q_int("t_mig",
                           "SELECT count(*) FROM information_schema.tables WHERE table_schema = "
                           "'t_mig' AND table_name IN ('meta', 'processed', 'agg', 'agg_hour', "
                           "'agg_day', 'agg_all', 'outbox', 'outbox_claim', 'failure', 'counter', "
                           "'cw_series', 'publisher_lease')"),
                     12);
    /* Data survives a repeated migration. */
    q_int("t_mig", "INSERT INTO counter VALUES ('objects.processed', 41)");
    assert_int_equal(bm__pg_migrate(pg, bm__pg_schema_version(), &em), BM_OK);
    assert_int_equal(q_int("t_mig", "SELECT value FROM counter"), 41);
    /* A newer bmas's database is refused, and left alone. */
    q_int("t_mig", "UPDATE meta SET value = 99 WHERE key = 'schema_version'");
    assert_int_equal(bm__pg_migrate(pg, bm__pg_schema_version(), &em), BM_E_STORAGE);
    assert_non_null(strstr(em.text, "newer"));
    assert_non_null(strstr(em.text, "99"));
    assert_int_equal(q_int("t_mig", "SELECT value FROM meta WHERE key = 'schema_version'"), 99);
    bm__pg_close(pg);
}

struct migrator {
    pthread_t th;
    struct bm_pg *pg;
    pthread_barrier_t *start;
    bm_err e;
    struct bm_errmsg em;
};

static void *migrate_thread(void *arg)
{
    struct migrator *m = arg;
    pthread_barrier_wait(m->start);
    m->e = bm__pg_migrate(m->pg, bm__pg_schema_version(), &m->em);
    return NULL;
}

/* Instances starting together: every one succeeds and the schema is made once. */
static void test_migrate_concurrent(void **state)
{
    (void)state;
    struct migrator m[4];
    pthread_barrier_t start;
    struct bm_pg *pg = fresh("t_migc", 4, false);
    pthread_barrier_init(&start, NULL, 4);
    for (int i = 0; i < 4; i++) {
        m[i] = (struct migrator){.pg = pg, .start = &start};
        assert_int_equal(pthread_create(&m[i].th, NULL, migrate_thread, &m[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(m[i].th, NULL);
        if (m[i].e != BM_OK)
            fail_msg("migrator %d: %s", i, m[i].em.text);
    }
    pthread_barrier_destroy(&start);
    assert_int_equal(q_int("t_migc", "SELECT value FROM meta WHERE key = 'schema_version'"),
                     bm__pg_schema_version());
    bm__pg_close(pg);
}

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
    bm_err e = bm__pg_commit_object(pg, &o, "msg-1", 1000, d, &st, TU_T0, &r, &em);
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
    assert_int_equal(q_int("t_race", "SELECT value FROM counter WHERE name = 'objects.processed'"),
                     OBJECTS);
    assert_int_equal(q_int("t_race", "SELECT value FROM counter WHERE name = 'objects.duplicates'"),
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
    assert_int_equal(q_int("t_par", "SELECT value FROM counter WHERE name = 'objects.duplicates'"),
                     OBJECTS * (THREADS - 1));
    assert_int_equal(bm__pg_retries(pg), 0);
    bm__pg_close(pg);
}

/* ---- Retries ---------------------------------------------------------------------------- */

struct flaky {
    int attempts;
    const char *fail_with[4]; /* SQLSTATE raised by attempt k + 1; NULL: succeed */
};

/* Inserts a row, then fails the way the server would when attempt k lost a race. */
static bm_err flaky_fn(struct bm__pg_tx *t, void *ctx, struct bm_errmsg *em)
{
    struct flaky *f = ctx;
    char sql[160];
    f->attempts = t->attempt;
    bm_err e = bm__pg_exec(t, "INSERT INTO tries VALUES (1)", NULL, NULL, NULL, em);
    const char *code = t->attempt <= 4 ? f->fail_with[t->attempt - 1] : f->fail_with[3];
    if (e != BM_OK || code == NULL)
        return e;
    snprintf(sql, sizeof sql, "DO $$ BEGIN RAISE EXCEPTION 'lost' USING ERRCODE = '%s'; END $$",
             code);
    return bm__pg_exec(t, sql, NULL, NULL, NULL, em);
}

static void test_retry(void **state)
{
    (void)state;
    struct bm_errmsg em = {{0}};
    struct bm_pg *pg = fresh("t_retry", 2, false);
    q_int("t_retry", "CREATE TABLE tries (v int)");
    /* A serialization failure, then a deadlock, then success: committed once. */
    struct flaky f = {.fail_with = {"40001", "40P01", NULL, NULL}};
    assert_int_equal(bm__pg_tx_run(pg, NULL, flaky_fn, &f, &em), BM_OK);
    assert_int_equal(f.attempts, 3);
    assert_int_equal(q_int("t_retry", "SELECT count(*) FROM tries"), 1);
    bm__pg_close(pg);
    /* Losing every time: bounded, busy, nothing committed. */
    char url[512];
    struct bm_pg_options opt = {.max_attempts = 3};
    schema_url("t_retry", url, sizeof url);
    assert_int_equal(bm__pg_open(url, &opt, &pg, &em), BM_OK);
    f = (struct flaky){.fail_with = {"40001", "40001", "40001", "40001"}};
    assert_int_equal(bm__pg_tx_run(pg, NULL, flaky_fn, &f, &em), BM_E_STORAGE_BUSY);
    assert_int_equal(f.attempts, 3);
    assert_non_null(strstr(em.text, "gave up after 3"));
    assert_non_null(strstr(em.text, "40001"));
    /* Any other error is not retried. */
    f = (struct flaky){.fail_with = {"23505", NULL, NULL, NULL}};
    assert_int_equal(bm__pg_tx_run(pg, NULL, flaky_fn, &f, &em), BM_E_STORAGE);
    assert_int_equal(f.attempts, 1);
    assert_int_equal(q_int("t_retry", "SELECT count(*) FROM tries"), 1);
    /* The connections went back clean: a plain transaction still works on each. */
    f = (struct flaky){.fail_with = {NULL}};
    assert_int_equal(bm__pg_tx_run(pg, NULL, flaky_fn, &f, &em), BM_OK);
    assert_int_equal(q_int("t_retry", "SELECT count(*) FROM tries"), 2);
    bm__pg_close(pg);
}

/* Write skew under SERIALIZABLE: both read the table, both wait for each other, both insert.
 * PostgreSQL must fail one with 40001; the retry makes both commit. */
struct skew {
    pthread_t th;
    struct bm_pg *pg;
    pthread_barrier_t *met;
    int id, attempts;
    bm_err e;
    struct bm_errmsg em;
};

static bm_err skew_fn(struct bm__pg_tx *t, void *ctx, struct bm_errmsg *em)
{
    struct skew *s = ctx;
    struct bm__pg_params p = {0};
    s->attempts = t->attempt;
    bm_err e = bm__pg_exec(t, "SELECT count(*) FROM doctors WHERE on_call", NULL, NULL, NULL, em);
    if (e != BM_OK)
        return e;
    if (t->attempt == 1)
        pthread_barrier_wait(s->met);
    bm__pg_p_int(&p, s->id);
    return bm__pg_exec(t, "INSERT INTO doctors VALUES ($1::int, true)", &p, NULL, NULL, em);
}

static void *skew_thread(void *arg)
{
    struct skew *s = arg;
    s->e = bm__pg_tx_run(s->pg, "SERIALIZABLE", skew_fn, s, &s->em);
    return NULL;
}

static void test_serialization_conflict(void **state)
{
    (void)state;
    struct skew s[2];
    pthread_barrier_t met;
    struct bm_pg *pg = fresh("t_ssi", 2, false);
    q_int("t_ssi", "CREATE TABLE doctors (id int PRIMARY KEY, on_call bool)");
    pthread_barrier_init(&met, NULL, 2);
    for (int i = 0; i < 2; i++) {
        s[i] = (struct skew){.pg = pg, .met = &met, .id = i + 1};
        assert_int_equal(pthread_create(&s[i].th, NULL, skew_thread, &s[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(s[i].th, NULL);
        if (s[i].e != BM_OK)
            fail_msg("transaction %d: %s", i, s[i].em.text);
    }
    pthread_barrier_destroy(&met);
    assert_int_equal(s[0].attempts + s[1].attempts, 3); /* one of them ran twice */
    assert_int_equal(q_int("t_ssi", "SELECT count(*) FROM doctors"), 2);
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
    /* No server given: start one for this run (tests/tools/pg-lib.sh, found from the test
     * data folder run-unit.sh exports, or from the repository root). Not a skip: when it
     * cannot start, the binary fails with pg-lib.sh's message. */
    if (getenv("PG_URL") == NULL || getenv("PG_URL")[0] == '\0') {
        char lib[1024];
        const char *data = getenv("BM_TEST_DATA");
        snprintf(lib, sizeof lib, "%s/../tools/pg-lib.sh", data ? data : "tests/data");
        fprintf(stderr, "# PG_URL not set: starting a server with %s\n", lib);
        execl("/bin/bash", "bash", lib, "run", argv[0], (char *)NULL);
        fprintf(stderr, "test_storage_pg: PG_URL is not set and %s cannot run\n", lib);
        return 1;
    }
    bm_log_set_level(BM_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url),
        cmocka_unit_test(test_connect_errors),
        cmocka_unit_test(test_reconnect),
        cmocka_unit_test(test_server_away),
        cmocka_unit_test(test_migrate),
        cmocka_unit_test(test_migrate_concurrent),
        cmocka_unit_test(test_commit_duplicate),
        cmocka_unit_test(test_commit_race),
        cmocka_unit_test(test_commit_parallel),
        cmocka_unit_test(test_retry),
        cmocka_unit_test(test_serialization_conflict),
        cmocka_unit_test(test_lease),
        cmocka_unit_test(test_lease_takeover_race),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
