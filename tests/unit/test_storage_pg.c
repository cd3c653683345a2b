/* The PostgreSQL store's libpq layer against a real server (test_storage_pg_tu.h): URL checks
 * and errors that never show the password, reconnecting, the database going away and coming
 * back, migrations (alone and from four instances at once), and transactions retried on
 * serialization failures and deadlocks. Each test has its own schema. */
#include "test_storage_pg_tu.h"

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
    q_int("t_err", "DROP TABLE counter CASCADE");
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
    int64_t c41 = 0;
    struct bm_pg *pg = fresh("t_mig", 2, false);
    assert_int_equal(bm__pg_version(pg, &v, &em), BM_OK);
    assert_int_equal(v, 0);
    /* Step by step (an old bmas, then this one), each run twice: nothing happens again. */
    for (int to = 1; to <= bm__pg_schema_version(); to++)
        for (int k = 0; k < 2; k++) {
            assert_int_equal(bm__pg_migrate(pg, to, &em), BM_OK);
            assert_int_equal(bm__pg_version(pg, &v, &em), BM_OK);
            assert_int_equal(v, to);
            if (to == 3 && k == 0) /* a counter of version 3's one row per name */
                q_int("t_mig", "INSERT INTO counter VALUES ('objects.processed', 41)");
        }
    assert_int_equal(q_int("t_mig",
                           "SELECT count(*) FROM information_schema.tables WHERE table_schema = "
                           "'t_mig' AND table_name IN ('meta', 'processed', 'agg', 'agg_hour', "
                           "'agg_day', 'agg_all', 'outbox', 'outbox_claim', 'failure', 'counter', "
                           "'cw_series', 'publisher_lease')"),
                     12);
    /* Data survives the migrations, and a repeated one. An older bmas still running (a
     * rolling deploy) adds to version 3's counter row as it did; this one adds to its shard;
     * the total holds both. */
    assert_int_equal(bm__pg_migrate(pg, bm__pg_schema_version(), &em), BM_OK);
    assert_int_equal(bm__pg_counter(pg, BM_DB_C_OBJECTS_PROCESSED, &c41, &em), BM_OK);
    assert_int_equal(c41, 41);
    q_int("t_mig", "INSERT INTO counter AS c (name, value) VALUES ('objects.processed', 1) "
                   "ON CONFLICT (name) DO UPDATE SET value = c.value + excluded.value");
    q_int("t_mig", "INSERT INTO counter_shard VALUES ('objects.processed', 7, 10)");
    assert_int_equal(bm__pg_counter(pg, BM_DB_C_OBJECTS_PROCESSED, &c41, &em), BM_OK);
    assert_int_equal(c41, 52);
    assert_int_equal(q_int("t_mig", "SELECT value FROM counter"), 42);
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

int main(int argc, char **argv)
{
    (void)argc;
    pg_need_server(argv);
    bm_log_set_level(BM_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url),       cmocka_unit_test(test_connect_errors),
        cmocka_unit_test(test_reconnect), cmocka_unit_test(test_server_away),
        cmocka_unit_test(test_migrate),   cmocka_unit_test(test_migrate_concurrent),
        cmocka_unit_test(test_retry),     cmocka_unit_test(test_serialization_conflict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
