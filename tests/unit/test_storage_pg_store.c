/* The PostgreSQL store through the public interface (bm_storage.h) against a real server
 * (test_storage_pg_tu.h): bm_db_open takes a postgres:// URL (every operation implemented),
 * describes it without the password, write health follows the server going away and coming
 * back, deferred counts ride along with commits, two instances committing the same objects
 * at once count each once and answer alike, a damaged rollup reported, and attribution values past
 * the cap are stored as "other". */
#include "test_storage_pg_tu.h"

/* The database PG_URL names. */
static void url_dbname(char *out, size_t cap)
{
    PQconninfoOption *o = PQconninfoParse(pg_url(), NULL);
    assert_non_null(o);
    out[0] = '\0';
    for (PQconninfoOption *p = o; p->keyword != NULL; p++)
        if (strcmp(p->keyword, "dbname") == 0 && p->val != NULL)
            snprintf(out, cap, "%s", p->val);
    PQconninfoFree(o);
    assert_true(out[0] != '\0');
}

/* A fresh schema opened with bm_db_open, as bmas serve opens BMAS_DB. */
static struct bm_db *open_store(const char *schema, const struct bm_db_options *opt)
{
    char url[512], sql[256];
    struct bm_errmsg em = {{0}};
    struct bm_db *db = NULL;
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", schema, schema);
    q_int("public", sql);
    schema_url(schema, url, sizeof url);
    if (bm_db_open(url, opt, &db, &em) != BM_OK)
        fail_msg("bm_db_open: %s", em.text);
    return db;
}

static void test_open(void **state)
{
    (void)state;
    char pw[128];
    struct bm_errmsg em = {{0}};
    struct bm_db *db = NULL;
    url_password(pw, sizeof pw);
    db = open_store("t_open", NULL);
    assert_non_null(strstr(bm_db_describe(db), "postgresql://postgres@127.0.0.1:"));
    assert_null(strstr(bm_db_describe(db), pw));
    assert_int_equal(q_int("t_open", "SELECT value FROM meta WHERE key = 'schema_version'"),
                     bm__pg_schema_version());
    assert_int_equal(bm_db_write_health(db, NULL, NULL), BM_OK);
    bm_db_close(db);
    /* A bad URL is a configuration error that does not show the password. */
    db = NULL;
    assert_int_equal(bm_db_open("postgresql://u:s3cr%zzXY@h/db", NULL, &db, &em), BM_E_CONFIG);
    assert_null(db);
    assert_null(strstr(em.text, "s3cr"));
    assert_non_null(strstr(em.text, "BMAS_DB"));
}

static enum bm_db_commit_result commit(struct bm_db *db, uint64_t i, bm_err *e,
                                       struct bm_errmsg *em)
{
    char key[128];
    struct bm_db_object o;
    enum bm_db_commit_result r = BM_DB_DUPLICATE;
    struct bm_agg *d = tu_delta(i);
    tu_object(&o, key, sizeof key, i);
    *e = bm_db_commit_object(db, &o, NULL, 1, d, NULL, TU_T0, &r, em);
    bm_agg_free(d);
    return r;
}

/* While the database refuses connections, commits fail with BMAS-013 and write health says
 * so (what /healthz answers 503 from), naming the server without the password; the next
 * write that works (the publisher's probe is bm_db_flush_counters) makes it healthy again. */
static void test_write_health(void **state)
{
    (void)state;
    char pw[128], dbname[64], sql[256];
    struct bm_errmsg em = {{0}};
    bm_err e;
    int64_t since = 0;
    url_password(pw, sizeof pw);
    url_dbname(dbname, sizeof dbname);
    struct bm_db *db = open_store("t_health", NULL);
    assert_int_equal(commit(db, 1, &e, &em), BM_DB_COMMITTED);
    assert_int_equal(e, BM_OK);
    snprintf(sql, sizeof sql, "ALTER DATABASE %s ALLOW_CONNECTIONS false", dbname);
    admin(sql);
    admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
          "'bmas'");
    commit(db, 2, &e, &em);
    bm_err h = bm_db_write_health(db, &since, &em);
    snprintf(sql, sizeof sql, "ALTER DATABASE %s ALLOW_CONNECTIONS true", dbname);
    admin(sql);
    assert_int_equal(e, BM_E_STORAGE_BUSY);
    assert_int_equal(h, BM_E_STORAGE_BUSY);
    assert_true(since > 0);
    assert_non_null(strstr(em.text, "postgresql://postgres@127.0.0.1"));
    assert_null(strstr(em.text, pw));
    if (bm_db_flush_counters(db, &em) != BM_OK)
        fail_msg("after the database came back: %s", em.text);
    assert_int_equal(bm_db_write_health(db, NULL, NULL), BM_OK);
    /* The failed commit left nothing: object 2 commits now, object 1 stays a duplicate. */
    assert_int_equal(commit(db, 2, &e, &em), BM_DB_COMMITTED);
    assert_int_equal(commit(db, 1, &e, &em), BM_DB_DUPLICATE);
    struct bm_db_status s;
    assert_int_equal(bm_db_status(db, &s, &em), BM_OK);
    assert_int_equal(s.c[BM_DB_C_OBJECTS_PROCESSED], 2);
    assert_int_equal(s.c[BM_DB_C_OBJECTS_DUPLICATES], 1);
    bm_db_close(db);
}

/* The duplicate check runs without a transaction (one round trip); a pooled connection the
 * server dropped (a restart, a failover, an idle timeout) is reopened and the check answers. */
static void test_read_after_drop(void **state)
{
    (void)state;
    struct bm_errmsg em = {{0}};
    bm_err e;
    char key[128];
    struct bm_db_object o;
    bool seen = false;
    struct bm_db *db = open_store("t_drop", NULL);
    assert_int_equal(commit(db, 1, &e, &em), BM_DB_COMMITTED);
    admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
          "'bmas'");
    tu_object(&o, key, sizeof key, 1);
    if (bm_db_is_processed(db, &o, &seen, &em) != BM_OK)
        fail_msg("is_processed after the drop: %s", em.text);
    assert_true(seen);
    tu_object(&o, key, sizeof key, 2);
    assert_int_equal(bm_db_is_processed(db, &o, &seen, &em), BM_OK);
    assert_false(seen);
    bm_db_close(db);
}

/* bm_db_count's deferred counts are stored by the next commit (so every instance's /status
 * sees them), and kept for a later one when that commit fails. */
static void test_deferred_with_commit(void **state)
{
    (void)state;
    struct bm_errmsg em = {{0}};
    bm_err e;
    struct bm_db *db = open_store("t_defer", NULL);
    bm_db_count(db, BM_DB_C_OBJECTS_DUPLICATES, 5);
    bm_db_count_ignored(db);
    assert_int_equal(q_int("t_defer", "SELECT count(*) FROM counter_total WHERE name IN "
                                      "('objects.duplicates', 'objects.ignored')"),
                     0);
    assert_int_equal(commit(db, 1, &e, &em), BM_DB_COMMITTED);
    assert_int_equal(e, BM_OK);
    assert_int_equal(
        q_int("t_defer", "SELECT value FROM counter_total WHERE name = 'objects.duplicates'"), 5);
    assert_int_equal(
        q_int("t_defer", "SELECT value FROM counter_total WHERE name = 'objects.ignored'"), 1);
    /* A duplicate adds its own count to the deferred ones. */
    bm_db_count(db, BM_DB_C_OBJECTS_DUPLICATES, 2);
    assert_int_equal(commit(db, 1, &e, &em), BM_DB_DUPLICATE);
    assert_int_equal(
        q_int("t_defer", "SELECT value FROM counter_total WHERE name = 'objects.duplicates'"), 8);
    struct bm_db_status s;
    assert_int_equal(bm_db_status(db, &s, &em), BM_OK);
    assert_int_equal(s.c[BM_DB_C_OBJECTS_DUPLICATES], 8);
    assert_int_equal(s.c[BM_DB_C_OBJECTS_PROCESSED], 1);
    bm_db_close(db);
}

/* Two instances on one database: 8 threads, 4 on each handle, commit the same 60 objects at
 * once; each object is committed exactly once, and both handles answer the same aggregates,
 * the sum of the 60 deltas computed here. */
struct instance_worker {
    struct bm_db *db;
    int committed, duplicates;
    bm_err err;
    struct bm_errmsg em;
};

#define N_SHARED 60

static void *instance_loop(void *arg)
{
    struct instance_worker *w = arg;
    for (uint64_t i = 0; i < N_SHARED && w->err == BM_OK; i++) {
        enum bm_db_commit_result r = commit(w->db, i, &w->err, &w->em);
        if (w->err == BM_OK)
            *(r == BM_DB_COMMITTED ? &w->committed : &w->duplicates) += 1;
    }
    return NULL;
}

static void test_two_instances(void **state)
{
    (void)state;
    char url[512];
    struct bm_errmsg em = {{0}};
    struct bm_db *db[2] = {open_store("t_two", NULL), NULL};
    schema_url("t_two", url, sizeof url);
    if (bm_db_open(url, NULL, &db[1], &em) != BM_OK)
        fail_msg("second instance: %s", em.text);
    struct instance_worker w[8];
    pthread_t th[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (struct instance_worker){.db = db[i % 2]};
        assert_int_equal(pthread_create(&th[i], NULL, instance_loop, &w[i]), 0);
    }
    int committed = 0, duplicates = 0;
    for (int i = 0; i < 8; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        if (w[i].err != BM_OK)
            fail_msg("worker %d: %s", i, w[i].em.text);
        committed += w[i].committed;
        duplicates += w[i].duplicates;
    }
    assert_int_equal(committed, N_SHARED);
    assert_int_equal(duplicates, 7 * N_SHARED);
    struct bm_agg *all = bm_agg_new(0), *want = NULL;
    for (uint64_t i = 0; i < N_SHARED; i++) {
        struct bm_agg *d = tu_delta(i);
        assert_int_equal(bm_agg_merge(all, d), BM_OK);
        bm_agg_free(d);
    }
    struct bm_group_by g = {.n = 3, .f = {BM_G_MODEL_ID, BM_G_PROFILE_TYPE, BM_G_ATTR1}};
    assert_int_equal(bm_agg_regroup(all, &g, &want), BM_OK);
    assert_int_equal(bm_agg_sort(want, &g), BM_OK);
    for (int k = 0; k < 2; k++) {
        struct bm_db_query q;
        struct bm_agg *got = NULL;
        struct bm_db_status st;
        bm_db_query_init(&q, &g);
        assert_int_equal(bm_db_query(db[k], &q, &got, &em), BM_OK);
        tu_assert_agg_eq(got, want);
        bm_agg_free(got);
        assert_int_equal(bm_db_status(db[k], &st, &em), BM_OK);
        assert_int_equal(st.c[BM_DB_C_OBJECTS_PROCESSED], N_SHARED);
        assert_int_equal(st.c[BM_DB_C_OBJECTS_DUPLICATES], 7 * N_SHARED);
    }
    tu_assert_rollups(url, INT64_MIN);
    bm_agg_free(want);
    bm_agg_free(all);
    bm_db_close(db[0]);
    bm_db_close(db[1]);
}

/* The query plan reads the rollups (the all-time table minus the first minute here, as
 * test_storage_query's SQLite case shows for the same data): a rollup that disagrees with the
 * minute rows (damaged by hand) is reported, never shown as numbers. */
static void test_inconsistent_rollup(void **state)
{
    (void)state;
    struct bm_errmsg em = {{0}};
    struct bm_db *db = open_store("t_damage", NULL);
    for (uint64_t i = 0; i < 20; i++)
        tu_commit(db, i);
    struct bm_db_query q;
    struct bm_agg *a = NULL;
    bm_db_query_init(&q, NULL);
    q.sums_only = true;
    q.from = TU_T0 + 60;
    assert_int_equal(bm_db_query(db, &q, &a, &em), BM_OK);
    bm_agg_free(a);
    a = NULL;
    q_int("t_damage", "UPDATE agg_all SET i_s = i_s - 1000000");
    assert_int_equal(bm_db_query(db, &q, &a, &em), BM_E_INTERNAL);
    assert_null(a);
    assert_non_null(strstr(em.text, "disagree"));
    bm_db_close(db);
}

/* BMAS_ATTRIBUTION_MAX_VALUES=2: the first two values of a key are kept, the third is stored
 * as "other"; a key's kept value stays itself, and "other" itself takes no place. */
static void test_attr_cap(void **state)
{
    (void)state;
    static const char *const teams[] = {"red", "blue", "other", "green", "red", "cyan"};
    static const char *const want[] = {"blue=1", "other=3", "red=2"};
    struct bm_db_options opt = {.attr_max_values = 2};
    struct bm_errmsg em = {{0}};
    struct bm_db *db = open_store("t_attr", &opt);
    for (size_t i = 0; i < TU_N(teams); i++) {
        struct bm_agg *d = bm_agg_new(0);
        struct bm_series_key k = {.bucket = TU_T0,
                                  .type = BM_PT_ON_DEMAND,
                                  .model_id = tu_s("m"),
                                  .profile_id = tu_s("m"),
                                  .source_region = tu_s("us-east-1"),
                                  .inference_region = tu_s("us-east-1"),
                                  .operation = tu_s("Converse"),
                                  .attr = {tu_s(teams[i])}};
        struct bm_counters c;
        bm_counters_one(&c, 10, 1, 0, 0);
        assert_int_equal(bm_agg_add(d, &k, &c), BM_OK);
        char key[32];
        struct bm_db_object o;
        enum bm_db_commit_result r;
        snprintf(key, sizeof key, "k%zu", i);
        bm_db_object_init(&o, "b", key, NULL, "e");
        assert_int_equal(bm_db_commit_object(db, &o, NULL, 1, d, NULL, TU_T0, &r, &em), BM_OK);
        bm_agg_free(d);
    }
    struct bm_group_by g = {.n = 1, .f = {BM_G_ATTR1}};
    struct bm_db_query q;
    struct bm_agg *a = NULL;
    bm_db_query_init(&q, &g);
    assert_int_equal(bm_db_query(db, &q, &a, &em), BM_OK);
    assert_int_equal(bm_agg_count(a), TU_N(want));
    for (size_t i = 0; i < TU_N(want); i++) {
        char got[64];
        const struct bm_series *s = bm_agg_at(a, i);
        snprintf(got, sizeof got, "%.*s=%llu", (int)s->key.attr[0].len, s->key.attr[0].p,
                 (unsigned long long)s->c.invocations);
        assert_string_equal(got, want[i]);
    }
    bm_agg_free(a);
    assert_int_equal(q_int("t_attr", "SELECT count(*) FROM attr_value"), 2);
    bm_db_close(db);
}

/* Names and attribution values holding what a PostgreSQL array literal treats specially
 * (quotes, backslashes, commas, braces, spaces, the word NULL, an empty string) and UTF-8 come
 * back byte for byte. One commit holds the same series in two minutes of one hour: the hour,
 * day and all-time rows sum them (one statement may not update a row twice), the minutes keep
 * their own min and max. */
static void test_awkward_values(void **state)
{
    (void)state;
    static const char model[] = "vendor.\"quoted\" model,{v1}";
    static const char profile[] = "arn:aws:bedrock:us-east-1:1:application-inference-profile/p\\q";
    static const char team[] = "say \"hi\", {ok} \\ \xc3\xa9quipe";
    static const char src[] = "NULL";
    struct bm_errmsg em = {{0}};
    struct bm_db *db = open_store("t_awk", NULL);
    struct bm_agg *d = bm_agg_new(0);
    for (int m = 0; m < 2; m++) {
        struct bm_series_key k = {.bucket = TU_T0 + 60 * (m + 1),
                                  .type = BM_PT_APPLICATION,
                                  .model_id = tu_s(model),
                                  .profile_id = tu_s(profile),
                                  .source_region = tu_s(src),
                                  .inference_region = tu_s(""),
                                  .operation = tu_s("Invoke Model"),
                                  .attr = {tu_s(team), tu_s(""), tu_s("x")}};
        struct bm_counters c;
        bm_counters_one(&c, 10 * (uint64_t)(m + 1), 5, 0, 0);
        assert_int_equal(bm_agg_add(d, &k, &c), BM_OK);
    }
    struct bm_db_object o;
    enum bm_db_commit_result r;
    bm_db_object_init(&o, "b", "awkward", NULL, "e");
    assert_int_equal(bm_db_commit_object(db, &o, NULL, 1, d, NULL, TU_T0, &r, &em), BM_OK);
    assert_int_equal(r, BM_DB_COMMITTED);
    bm_agg_free(d);
    assert_int_equal(q_int("t_awk", "SELECT count(*) FROM agg"), 2);
    assert_int_equal(q_int("t_awk", "SELECT count(*) FROM agg_hour"), 1);
    assert_int_equal(q_int("t_awk", "SELECT n FROM agg_hour"), 2);
    assert_int_equal(q_int("t_awk", "SELECT i_s FROM agg_day"), 30);
    assert_int_equal(q_int("t_awk", "SELECT i_mn * 100 + i_mx FROM agg_hour"), 1020);
    assert_int_equal(q_int("t_awk", "SELECT i_s FROM agg_all"), 30);
    assert_int_equal(q_int("t_awk", "SELECT count(*) FROM outbox"), 2);
    /* The stored strings, as PostgreSQL holds them. */
    assert_int_equal(q_int("t_awk",
                           "SELECT count(*) FROM agg_all WHERE model = "
                           "'vendor.\"quoted\" model,{v1}' AND right(profile, 4) = '/p\\q' "
                           "AND src = 'NULL' AND inf = '' AND a1 = 'say \"hi\", {ok} \\ "
                           "\xc3\xa9quipe' AND a2 = '' AND a3 = 'x'"),
                     1);
    struct bm_group_by g = {.n = 4,
                            .f = {BM_G_MODEL_ID, BM_G_PROFILE_ID, BM_G_SOURCE_REGION, BM_G_ATTR1}};
    struct bm_db_query q;
    struct bm_agg *a = NULL;
    bm_db_query_init(&q, &g);
    q.from = TU_T0;
    q.to = TU_T0 + 3600;
    assert_int_equal(bm_db_query(db, &q, &a, &em), BM_OK);
    assert_int_equal(bm_agg_count(a), 1);
    const struct bm_series *s = bm_agg_at(a, 0);
    assert_int_equal(s->key.model_id.len, strlen(model));
    assert_memory_equal(s->key.model_id.p, model, strlen(model));
    assert_int_equal(s->key.profile_id.len, strlen(profile));
    assert_memory_equal(s->key.profile_id.p, profile, strlen(profile));
    assert_int_equal(s->key.source_region.len, strlen(src));
    assert_memory_equal(s->key.source_region.p, src, strlen(src));
    assert_int_equal(s->key.attr[0].len, strlen(team));
    assert_memory_equal(s->key.attr[0].p, team, strlen(team));
    assert_int_equal(s->c.invocations, 2);
    assert_int_equal(s->c.input.sum, 30);
    assert_int_equal(s->c.input.min, 10);
    assert_int_equal(s->c.input.max, 20);
    bm_agg_free(a);
    bm_db_close(db);
}

/* A statement that fails inside the pipelined batch (invalid UTF-8, which the server refuses:
 * 22021) fails the commit with the server's code and rolls all of it back: the object is not
 * processed, nothing is counted, and the next commits on the same pool go through. */
static void test_pipeline_failure(void **state)
{
    (void)state;
    struct bm_errmsg em = {{0}};
    struct bm_db *db = open_store("t_pipe", NULL);
    for (int round = 0; round < 3; round++) {
        struct bm_agg *d = bm_agg_new(0);
        struct bm_series_key k = {.bucket = TU_T0,
                                  .type = BM_PT_ON_DEMAND,
                                  .model_id = tu_s(round == 1 ? "bad\xff\xfe" : "good"),
                                  .profile_id = tu_s("p"),
                                  .source_region = tu_s("us-east-1"),
                                  .inference_region = tu_s("us-east-1"),
                                  .operation = tu_s("Converse")};
        struct bm_counters c;
        bm_counters_one(&c, 7, 1, 0, 0);
        assert_int_equal(bm_agg_add(d, &k, &c), BM_OK);
        char key[16];
        struct bm_db_object o;
        enum bm_db_commit_result r = BM_DB_DUPLICATE;
        snprintf(key, sizeof key, "k%d", round);
        bm_db_object_init(&o, "b", key, NULL, "e");
        bm_err e = bm_db_commit_object(db, &o, NULL, 1, d, NULL, TU_T0, &r, &em);
        bm_agg_free(d);
        if (round == 1) {
            assert_int_equal(e, BM_E_STORAGE);
            assert_non_null(strstr(em.text, "22021"));
            assert_non_null(strstr(em.text, "WITH"));
            bool seen = true;
            assert_int_equal(bm_db_is_processed(db, &o, &seen, &em), BM_OK);
            assert_false(seen);
        } else {
            assert_int_equal(e, BM_OK);
            assert_int_equal(r, BM_DB_COMMITTED);
        }
    }
    assert_int_equal(q_int("t_pipe", "SELECT count(*) FROM processed"), 2);
    assert_int_equal(q_int("t_pipe", "SELECT i_s FROM agg_all"), 14);
    assert_int_equal(q_int("t_pipe", "SELECT value FROM counter_total WHERE name = "
                                     "'objects.processed'"),
                     2);
    bm_db_close(db);
}

int main(int argc, char **argv)
{
    (void)argc;
    pg_need_server(argv);
    bm_log_set_level(BM_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open),
        cmocka_unit_test(test_write_health),
        cmocka_unit_test(test_read_after_drop),
        cmocka_unit_test(test_deferred_with_commit),
        cmocka_unit_test(test_two_instances),
        cmocka_unit_test(test_inconsistent_rollup),
        cmocka_unit_test(test_attr_cap),
        cmocka_unit_test(test_awkward_values),
        cmocka_unit_test(test_pipeline_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
