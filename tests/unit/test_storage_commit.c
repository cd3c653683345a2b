/* Storage, single-threaded: the exactly-once commit (delta, outbox, counters, duplicates,
 * object identity), failures and quarantine, deferred counters, schema migrations, and clean
 * errors without leaks when our or SQLite's allocations fail. */
#include "test_storage_tu.h"

static const struct bm_group_by all_fields = {
    .n = 7,
    .f = {BM_G_MODEL_ID, BM_G_PROFILE_TYPE, BM_G_PROFILE_ID, BM_G_SOURCE_REGION,
          BM_G_INFERENCE_REGION, BM_G_OPERATION, BM_G_ATTR1}};

static struct bm_db_status status(struct bm_db *db)
{
    struct bm_db_status s;
    struct bm_errmsg em;
    assert_int_equal(bm_db_status(db, &s, &em), BM_OK);
    return s;
}

static struct bm_agg *query_all(struct bm_db *db, const struct bm_group_by *g)
{
    struct bm_db_query q;
    struct bm_agg *a = NULL;
    struct bm_errmsg em;
    bm_db_query_init(&q, g);
    assert_int_equal(bm_db_query(db, &q, &a, &em), BM_OK);
    return a;
}

static void test_commit_applies_delta(void **state)
{
    (void)state;
    struct tdb t;
    tdb_init(&t);
    struct bm_db *db = tdb_open(&t);
    struct bm_agg *d = tu_delta(7);
    struct bm_ingest_stats st = {.records = 11, .invalid = 2};
    st.errors[bm_err_wire_index(BM_E_TOKENS)] = 2;
    struct bm_db_object o;
    bm_db_object_init(&o, "b", "k", "v1", NULL);
    enum bm_db_commit_result r;
    struct bm_errmsg em;
    assert_int_equal(bm_db_commit_object(db, &o, "m1", 10, d, &st, TU_T0, &r, &em), BM_OK);
    assert_int_equal(r, BM_DB_COMMITTED);

    /* The aggregates hold exactly the delta, min/max included, by every field. */
    struct bm_agg *want = NULL;
    assert_int_equal(bm_agg_regroup(d, &all_fields, &want), BM_OK);
    assert_int_equal(bm_agg_sort(want, &all_fields), BM_OK);
    struct bm_agg *got = query_all(db, &all_fields);
    tu_assert_agg_eq(got, want);
    bm_agg_free(got);

    /* One pending outbox row per series, in the delta's order, with the exact bucket. */
    struct bm_db_outbox *ob = NULL;
    assert_int_equal(bm_db_outbox_fetch(db, 0, 100, &ob, &em), BM_OK);
    assert_int_equal(ob->n, bm_agg_count(d));
    for (size_t i = 0; i < ob->n; i++) {
        const struct bm_series *s = bm_agg_at(d, i);
        assert_true(ob->rows[i].s.key.bucket == s->key.bucket);
        assert_int_equal(ob->rows[i].s.key.type, s->key.type);
        assert_string_equal(ob->rows[i].s.key.profile_id.p, s->key.profile_id.p);
        assert_string_equal(ob->rows[i].s.key.operation.p, s->key.operation.p);
        tu_assert_counters_eq(&ob->rows[i].s.c, &s->c);
        assert_true(i == 0 || ob->rows[i].id > ob->rows[i - 1].id);
    }
    bm_db_outbox_free(ob);

    struct bm_db_status s = status(db);
    assert_int_equal(s.c[BM_DB_C_OBJECTS_PROCESSED], 1);
    assert_int_equal(s.c[BM_DB_C_RECORDS_PROCESSED], 11);
    assert_int_equal(s.c[BM_DB_C_RECORDS_INVALID], 2);
    assert_int_equal(s.c[BM_DB_C_ERRORS + bm_err_wire_index(BM_E_TOKENS)], 2);
    assert_int_equal(s.c[BM_DB_C_PUBLISH_PENDING], bm_agg_count(d));

    /* A duplicate changes nothing but the duplicate counter. */
    assert_int_equal(bm_db_commit_object(db, &o, "m2", 10, d, &st, TU_T0 + 5, &r, &em), BM_OK);
    assert_int_equal(r, BM_DB_DUPLICATE);
    got = query_all(db, &all_fields);
    tu_assert_agg_eq(got, want);
    bm_agg_free(got);
    struct bm_db_status s2 = status(db);
    s.c[BM_DB_C_OBJECTS_DUPLICATES]++;
    assert_memory_equal(&s, &s2, sizeof s);
    bm_agg_free(want);
    bm_agg_free(d);
    bm_db_close(db);
    tdb_cleanup(&t);
}

static void test_object_identity(void **state)
{
    (void)state;
    static const struct {
        const char *version_id, *etag, *want;
    } cases[] = {
        {"3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY", "\"abc\"", "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"},
        {NULL, "\"abc\"", "abc"},
        {"", "abc", "abc"},
        {NULL, "\"\"", ""},
        {NULL, NULL, ""},
        {NULL, "\"", "\""},
    };
    for (size_t i = 0; i < TU_N(cases); i++) {
        struct bm_db_object o;
        bm_db_object_init(&o, "b", "k", cases[i].version_id, cases[i].etag);
        assert_int_equal(o.version.len, strlen(cases[i].want));
        assert_memory_equal(o.version.p, cases[i].want, o.version.len);
    }

    struct tdb t;
    tdb_init(&t);
    struct bm_db *db = tdb_open(&t);
    struct bm_agg *d = tu_delta(1);
    struct bm_errmsg em;
    enum bm_db_commit_result r;
    /* (bucket, key, version): each row a new object unless all three match an earlier one. */
    static const struct {
        const char *bucket, *key, *etag;
        enum bm_db_commit_result want;
    } seq[] = {
        {"b", "k", "\"e1\"", BM_DB_COMMITTED}, {"b", "k", "e1", BM_DB_DUPLICATE},
        {"b", "k", "e2", BM_DB_COMMITTED},     {"b2", "k", "e1", BM_DB_COMMITTED},
        {"b", "k2", "e1", BM_DB_COMMITTED},    {"b", "k", "", BM_DB_COMMITTED},
        {"b", "k", NULL, BM_DB_DUPLICATE},
    };
    for (size_t i = 0; i < TU_N(seq); i++) {
        struct bm_db_object o;
        bm_db_object_init(&o, seq[i].bucket, seq[i].key, NULL, seq[i].etag);
        bool seen = true;
        assert_int_equal(bm_db_is_processed(db, &o, &seen, &em), BM_OK);
        assert_int_equal(seen, seq[i].want == BM_DB_DUPLICATE);
        assert_int_equal(bm_db_commit_object(db, &o, NULL, 0, d, NULL, TU_T0, &r, &em), BM_OK);
        assert_int_equal(r, seq[i].want);
        assert_int_equal(bm_db_is_processed(db, &o, &seen, &em), BM_OK);
        assert_true(seen);
    }
    struct bm_counters one, all;
    bm_agg_totals(d, &one);
    tu_totals(db, &all);
    assert_int_equal(all.invocations, 5 * one.invocations);
    assert_int_equal(all.input.sum, 5 * one.input.sum);
    assert_int_equal(all.input.max, one.input.max);
    assert_int_equal(status(db).c[BM_DB_C_OBJECTS_DUPLICATES], 2);
    bm_agg_free(d);
    bm_db_close(db);
    tdb_cleanup(&t);
}

static void test_failures_and_quarantine(void **state)
{
    (void)state;
    struct tdb t;
    tdb_init(&t);
    struct bm_db *db = tdb_open(&t);
    struct bm_errmsg em;
    struct bm_db_object o, o2;
    bm_db_object_init(&o, "b", "k", NULL, "e");
    bm_db_object_init(&o2, "b", "other", NULL, "e");
    long attempts = 0;
    bool q = true;
    for (long i = 1; i <= 4; i++) {
        assert_int_equal(bm_db_record_failure(db, &o, BM_E_S3_NOT_FOUND, "NoSuchKey", TU_T0 + i, 3,
                                              &attempts, &q, &em),
                         BM_OK);
        assert_int_equal(attempts, i);
        assert_int_equal(q, i >= 3);
        bool isq = !q;
        assert_int_equal(bm_db_is_quarantined(db, &o, &isq, &em), BM_OK);
        assert_int_equal(isq, q);
    }
    /* max_attempts <= 0: counted, never quarantined. */
    for (int i = 0; i < 5; i++)
        assert_int_equal(
            bm_db_record_failure(db, &o2, BM_E_UPSTREAM, NULL, TU_T0 + 10, 0, &attempts, &q, &em),
            BM_OK);
    assert_int_equal(attempts, 5);
    assert_false(q);

    struct bm_db_failures *f = NULL;
    assert_int_equal(bm_db_quarantined(db, 10, &f, &em), BM_OK);
    assert_int_equal(f->n, 1);
    assert_string_equal(f->v[0].obj.key.p, "k");
    assert_string_equal(f->v[0].obj.version.p, "e");
    assert_string_equal(f->v[0].code, "BMAS-001");
    assert_string_equal(f->v[0].message, "NoSuchKey");
    assert_int_equal(f->v[0].attempts, 4);
    assert_int_equal(f->v[0].first_at, TU_T0 + 1);
    assert_int_equal(f->v[0].last_at, TU_T0 + 4);
    bm_db_failures_free(f);
    struct bm_db_status s = status(db);
    assert_int_equal(s.c[BM_DB_C_OBJECTS_FAILED], 9);
    assert_int_equal(s.c[BM_DB_C_OBJECTS_QUARANTINED], 1);
    assert_int_equal(s.c[BM_DB_C_ERRORS + 0], 4);
    assert_int_equal(s.c[BM_DB_C_ERRORS + bm_err_wire_index(BM_E_UPSTREAM)], 5);

    /* A later success clears the failure row. */
    enum bm_db_commit_result r;
    struct bm_agg *d = tu_delta(3);
    assert_int_equal(bm_db_commit_object(db, &o, NULL, 0, d, NULL, TU_T0, &r, &em), BM_OK);
    bm_agg_free(d);
    assert_int_equal(bm_db_is_quarantined(db, &o, &q, &em), BM_OK);
    assert_false(q);
    assert_int_equal(bm_db_quarantined(db, 10, &f, &em), BM_OK);
    assert_int_equal(f->n, 0);
    bm_db_failures_free(f);
    assert_int_equal(
        bm_db_record_failure(db, &o, BM_E_S3_NOT_FOUND, "x", TU_T0, 3, &attempts, &q, &em), BM_OK);
    assert_int_equal(attempts, 1);
    bm_db_close(db);
    tdb_cleanup(&t);
}

static void test_deferred_counters_persist(void **state)
{
    (void)state;
    struct tdb t;
    tdb_init(&t);
    struct bm_db *db = tdb_open(&t);
    struct bm_errmsg em;
    for (int i = 0; i < 5; i++)
        bm_db_count(db, BM_DB_C_OBJECTS_DUPLICATES, 2);
    bm_db_count_ignored(db);
    bm_db_count_ignored(db);
    assert_int_equal(status(db).c[BM_DB_C_OBJECTS_DUPLICATES], 10);
    assert_int_equal(tu_commit(db, 1), BM_DB_COMMITTED); /* flushes them */
    assert_int_equal(status(db).c[BM_DB_C_OBJECTS_DUPLICATES], 10);
    bm_db_count(db, BM_DB_C_OBJECTS_IGNORED, 3);
    bm_db_close(db); /* flushes the rest */
    db = tdb_open(&t);
    struct bm_db_status s = status(db);
    assert_int_equal(s.c[BM_DB_C_OBJECTS_DUPLICATES], 10);
    assert_int_equal(s.c[BM_DB_C_OBJECTS_IGNORED], 5);
    assert_int_equal(s.c[BM_DB_C_OBJECTS_PROCESSED], 1);
    assert_int_equal(bm_db_flush_counters(db, &em), BM_OK);
    assert_string_equal(bm_db_counter_name(BM_DB_C_ERRORS + 20), "errors.BMAS-021");
    assert_string_equal(bm_db_counter_name(BM_DB_C_PUBLISH_REJECTED), "publish.rejected");
    bm_db_close(db);
    tdb_cleanup(&t);
}

static void test_migrations(void **state)
{
    (void)state;
    struct tdb t;
    tdb_init(&t);
    struct bm_errmsg em;
    /* A version-1 database (before the rollups) with aggregate rows written by that version. */
    assert_int_equal(bm__db_create_at(t.path, 1, &em), BM_OK);
    assert_int_equal(
        bm__db_exec(
            t.path,
            "INSERT INTO str(id, s) VALUES(1, 'm1'), (2, 'm2'), (3, 'us-east-1'), (4, 'op');"
            "INSERT INTO agg VALUES(1776643200, 1, 1, 1, 3, 3, 4, 2, 10, 4, 6, 1, 0, 1, 0, "
            "0, 0, 0, 0, 0);"
            "INSERT INTO agg VALUES(1776646800, 1, 1, 1, 3, 3, 4, 1, 20, 20, 20, 0, 0, 0, "
            "0, 0, 0, 0, 0, 0);"
            "INSERT INTO agg VALUES(1776733200, 2, 0, 2, 3, 3, 4, 1, 3, 3, 3, 0, 0, 0, 0, "
            "0, 0, 0, 0, 0);",
            &em),
        BM_OK);
    struct bm_db *db = tdb_open(&t);
    struct bm_group_by g = {.n = 1, .f = {BM_G_MODEL_ID}};
    struct bm_agg *a = query_all(db, &g); /* all time: read from the daily rollup */
    assert_int_equal(bm_agg_count(a), 2);
    assert_string_equal(bm_agg_at(a, 0)->key.model_id.p, "m1");
    assert_int_equal(bm_agg_at(a, 0)->c.invocations, 3);
    assert_int_equal(bm_agg_at(a, 0)->c.input.sum, 30);
    assert_int_equal(bm_agg_at(a, 0)->c.input.min, 4);
    assert_int_equal(bm_agg_at(a, 0)->c.input.max, 20);
    assert_int_equal(bm_agg_at(a, 1)->c.input.sum, 3);
    bm_agg_free(a);
    /* The migrated database takes new commits into every table. */
    assert_int_equal(tu_commit(db, 5), BM_DB_COMMITTED);
    tu_assert_rollups(t.path, INT64_MIN);
    bm_db_close(db);

    /* A database from the future is refused, and says why. */
    assert_int_equal(bm__db_exec(t.path, "PRAGMA user_version = 99", &em), BM_OK);
    db = NULL;
    assert_int_equal(bm_db_open(t.path, NULL, &db, &em), BM_E_STORAGE);
    assert_null(db);
    assert_non_null(strstr(em.text, "schema version 99, newer than this bmas knows"));
    tdb_cleanup(&t);

    /* Not a database at all: a clean storage error. */
    tdb_init(&t);
    FILE *f = fopen(t.path, "w");
    assert_non_null(f);
    fputs("this is not an SQLite database, not even close to one, but long enough to be read", f);
    fclose(f);
    assert_int_equal(bm_db_open(t.path, NULL, &db, &em), BM_E_STORAGE);
    tdb_cleanup(&t);
}

/* A commit that fails after interning new names (an injected SQLite allocation failure at each
 * step in turn) must not leave their ids in the in-memory cache: the rollback frees the ids,
 * and the next commit, which interns another new name first, gets them for other names. */
static void test_intern_rollback(void **state)
{
    (void)state;
    struct bm_agg *d = tu_delta(11);
    struct bm_agg *d2 = bm_agg_new(0);
    struct bm_series_key k = bm_agg_at(d, 0)->key;
    k.model_id = tu_s("zz.first-new-model");
    assert_int_equal(bm_agg_add(d2, &k, &bm_agg_at(d, 0)->c), BM_OK);
    assert_int_equal(bm_agg_merge(d2, d), BM_OK);
    struct tdb tmpl;
    tdb_init(&tmpl);
    bm_db_close(tdb_open(&tmpl));
    bm_err e = BM_E_NOMEM;
    for (long n = 0; e != BM_OK; n++) {
        struct tdb t;
        struct bm_errmsg em;
        enum bm_db_commit_result r;
        struct bm_db_object o1, o2;
        tdb_init(&t);
        tdb_copy(&t, tmpl.path);
        struct bm_db *db = tdb_open(&t);
        bm_db_object_init(&o1, "b", "first", NULL, "e");
        bm_db_object_init(&o2, "b", "second", NULL, "e");
        bm__db_fault_after(n);
        e = bm_db_commit_object(db, &o1, NULL, 0, d, NULL, TU_T0, &r, &em);
        bm__db_fault_after(-1);
        assert_int_equal(bm_db_commit_object(db, &o2, NULL, 0, d2, NULL, TU_T0, &r, &em), BM_OK);
        struct bm_agg *all = bm_agg_new(0), *want = NULL;
        assert_int_equal(bm_agg_merge(all, d2), BM_OK);
        if (e == BM_OK)
            assert_int_equal(bm_agg_merge(all, d), BM_OK);
        assert_int_equal(bm_agg_regroup(all, &all_fields, &want), BM_OK);
        assert_int_equal(bm_agg_sort(want, &all_fields), BM_OK);
        struct bm_agg *got = query_all(db, &all_fields);
        tu_assert_agg_eq(got, want);
        bm_agg_free(got);
        bm_agg_free(want);
        bm_agg_free(all);
        bm_db_close(db);
        tdb_cleanup(&t);
        assert_true(n < 100000);
    }
    tdb_cleanup(&tmpl);
    bm_agg_free(d2);
    bm_agg_free(d);
}

/* A version-2 database (hourly and daily rollups, no all-time one) written by that version's
 * commits gets its all-time rollup from the minute rows, and all-time queries read it. */
static void test_migration_from_v2(void **state)
{
    (void)state;
    struct tdb t;
    tdb_init(&t);
    struct bm_errmsg em;
    assert_int_equal(bm__db_create_at(t.path, 2, &em), BM_OK);
    /* Minute rows over two days, a series with two rows, then the rollups as the version-2
     * commit kept them. */
    assert_int_equal(
        bm__db_exec(
            t.path,
            "INSERT INTO str(id, s) VALUES(1, 'm1'), (2, 'm2'), (3, 'us-east-1'), (4, 'op');"
            "INSERT INTO agg VALUES(1776643200, 1, 1, 1, 3, 3, 4, 2, 10, 4, 6, 1, 0, 1, 0, "
            "0, 0, 5, 2, 3);"
            "INSERT INTO agg VALUES(1776733260, 1, 1, 1, 3, 3, 4, 1, 20, 20, 20, 0, 0, 0, "
            "0, 0, 0, 0, 0, 0);"
            "INSERT INTO agg VALUES(1776733200, 2, 0, 2, 3, 3, 4, 1, 3, 3, 3, 7, 7, 7, 0, "
            "0, 0, 0, 0, 0);",
            &em),
        BM_OK);
    /* The rollups of version 2, before the cost columns of version 5. */
#define V2_STATS_FROM(w)                                                                           \
    "SELECT bucket - ((bucket % " w ") + " w ") % " w " AS b, model, ptype, profile, src, inf, "   \
    "op, sum(n), sum(i_s), min(i_mn), max(i_mx), sum(o_s), min(o_mn), max(o_mx), sum(r_s), "       \
    "min(r_mn), max(r_mx), sum(w_s), min(w_mn), max(w_mx) FROM agg GROUP BY 1, 2, 3, 4, 5, 6, 7"
    static const char *const rollups[] = {
        "INSERT INTO agg_hour " V2_STATS_FROM("3600"),
        "INSERT INTO agg_day " V2_STATS_FROM("86400"),
    };
#undef V2_STATS_FROM
    for (size_t i = 0; i < TU_N(rollups); i++)
        assert_int_equal(bm__db_exec(t.path, rollups[i], &em), BM_OK);
    struct bm_db *db = tdb_open(&t);
    tu_assert_rollups(t.path, INT64_MIN);
    struct bm_group_by g = {.n = 1, .f = {BM_G_MODEL_ID}};
    struct bm_db_query q;
    struct bm_agg *a = NULL;
    bm_db_query_init(&q, &g);
    q.sums_only = true;
    assert_int_equal(bm_db_query(db, &q, &a, &em), BM_OK);
    assert_int_equal(bm_agg_count(a), 2);
    assert_string_equal(bm_agg_at(a, 0)->key.model_id.p, "m1");
    assert_int_equal(bm_agg_at(a, 0)->c.invocations, 3);
    assert_int_equal(bm_agg_at(a, 0)->c.input.sum, 30);
    assert_int_equal(bm_agg_at(a, 0)->c.output.sum, 1);
    assert_int_equal(bm_agg_at(a, 0)->c.cache_write.sum, 5);
    assert_int_equal(bm_agg_at(a, 1)->c.output.sum, 7);
    bm_agg_free(a);
    /* Commits after the migration keep all four tables in step. */
    for (uint64_t i = 0; i < 20; i++)
        assert_int_equal(tu_commit(db, i), BM_DB_COMMITTED);
    tu_assert_rollups(t.path, INT64_MIN);
    bm_db_close(db);
    tdb_cleanup(&t);
}

/* Opens, commits object n, queries, reads the outbox and status, closes; any step may fail
 * with an allocation failure. Returns whether every step succeeded. */
static bool exercise(const char *path, struct bm_agg *d, uint64_t n)
{
    struct bm_db *db = NULL;
    struct bm_errmsg em;
    char key[128];
    struct bm_db_object o;
    enum bm_db_commit_result r;
    struct bm_db_query q;
    struct bm_agg *a = NULL;
    struct bm_db_outbox *ob = NULL;
    struct bm_db_status s;
    struct bm_db_failures *f = NULL;
    bool ok = true;
    bm_err e = bm_db_open(path, NULL, &db, &em);
    if (e != BM_OK)
        goto done;
    tu_object(&o, key, sizeof key, n);
    bm_db_query_init(&q, &all_fields);
    bm_err es[6] = {
        bm_db_commit_object(db, &o, "m", 1, d, NULL, TU_T0, &r, &em),
        bm_db_query(db, &q, &a, &em),
        bm_db_outbox_fetch(db, 0, 10, &ob, &em),
        bm_db_status(db, &s, &em),
        bm_db_record_failure(db, &o, BM_E_S3_DENIED, "denied", TU_T0, 3, NULL, NULL, &em),
        bm_db_quarantined(db, 5, &f, &em),
    };
    for (int i = 0; i < 6; i++) {
        /* SQLite may report an allocation failure while it reads the schema as a generic
         * error; what matters is a clean code and no leak. */
        assert_true(es[i] == BM_OK || es[i] == BM_E_NOMEM || es[i] == BM_E_STORAGE);
        ok = ok && es[i] == BM_OK;
    }
    bm_agg_free(es[1] == BM_OK ? a : NULL);
    bm_db_outbox_free(es[2] == BM_OK ? ob : NULL);
    bm_db_failures_free(es[5] == BM_OK ? f : NULL);
done:
    bm_db_close(db);
    return e == BM_OK && ok;
}

/* After faults: each object is either fully there or not at all. */
static void check_consistent(const char *path, const struct bm_agg *d, uint64_t upto)
{
    struct bm_db *db = NULL;
    struct bm_errmsg em;
    assert_int_equal(bm_db_open(path, NULL, &db, &em), BM_OK);
    uint64_t processed = 0;
    for (uint64_t i = 0; i <= upto; i++) {
        char key[128];
        struct bm_db_object o;
        bool seen = false;
        tu_object(&o, key, sizeof key, i);
        assert_int_equal(bm_db_is_processed(db, &o, &seen, &em), BM_OK);
        processed += seen;
    }
    struct bm_counters one, all;
    bm_agg_totals(d, &one);
    tu_totals(db, &all);
    assert_int_equal(all.invocations, processed * one.invocations);
    assert_int_equal(all.output.sum, processed * one.output.sum);
    assert_int_equal(status(db).c[BM_DB_C_OBJECTS_PROCESSED], processed);
    assert_int_equal(status(db).c[BM_DB_C_PUBLISH_PENDING], processed * bm_agg_count(d));
    tu_assert_rollups(path, INT64_MIN);
    bm_db_close(db);
}

static void test_allocation_failures(void **state)
{
    (void)state;
    struct tdb t;
    tdb_init(&t);
    struct bm_agg *d = tu_delta(9);
    bm_db_close(tdb_open(&t)); /* the schema exists; faults hit the steady state */
    uint64_t n = 0;
    /* Our allocations (bm_malloc): every one of them, in turn. */
    for (long k = 0;; k++, n++) {
        bm_alloc_fail_after(k);
        bool ok = exercise(t.path, d, n);
        bm_alloc_fail_after(-1);
        if (ok && bm_alloc_failures() == 0)
            break;
    }
    check_consistent(t.path, d, n);
    /* SQLite's own allocations: dense at first, then sparser (there are thousands). */
    for (long k = 0;; k += 1 + k / 128, n++) {
        bm__db_fault_after(k);
        bool ok = exercise(t.path, d, n);
        bm__db_fault_after(-1);
        if (ok)
            break;
        assert_true(k < 1000000);
    }
    check_consistent(t.path, d, n);
    bm_agg_free(d);
    tdb_cleanup(&t);
}

int main(void)
{
    /* Must run before SQLite initialises. */
    bm__db_fault_install();
    bm_log_set_level(BM_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commit_applies_delta),
        cmocka_unit_test(test_object_identity),
        cmocka_unit_test(test_failures_and_quarantine),
        cmocka_unit_test(test_deferred_counters_persist),
        cmocka_unit_test(test_migrations),
        cmocka_unit_test(test_migration_from_v2),
        cmocka_unit_test(test_intern_rollback),
        cmocka_unit_test(test_allocation_failures),
    };
    /* On PostgreSQL: the cases that are not about SQLite itself (its migrations, its
     * allocator; PostgreSQL's migrations are test_storage_pg's). */
    const struct CMUnitTest pg_tests[] = {
        cmocka_unit_test(test_object_identity),
        cmocka_unit_test(test_failures_and_quarantine),
        cmocka_unit_test(test_deferred_counters_persist),
    };
    if (tu_is_pg())
        return cmocka_run_group_tests_name("postgresql", pg_tests, NULL, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
