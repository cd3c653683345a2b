/* test_storage_tu.h: helpers shared by the storage unit tests: throw-away databases (SQLite
 * files, or PostgreSQL schemas with BM_TEST_STORE=pg), deterministic deltas (each a known
 * function of its object number) and aggregate comparison. */
#ifndef BM_TEST_STORAGE_TU_H
#define BM_TEST_STORAGE_TU_H

#include "tu.h"

#include "storage/pg_int.h"
#include "storage/storage_int.h"

#include <stdlib.h>
#include <unistd.h>

/* The store the tests run against: BM_TEST_STORE=pg runs them on the PostgreSQL server at
 * PG_URL (tests/integration/test_storage_pg.sh sets both), each database a schema of its own;
 * otherwise on SQLite files. A binary run with pg runs its cases that are not about SQLite
 * itself (each main's list); SQLite runs them all. */
static inline bool tu_is_pg(void)
{
    const char *s = getenv("BM_TEST_STORE");
    return s != NULL && strcmp(s, "pg") == 0;
}

/* Runs sql (several statements allowed) on a private connection to url; fails the test on
 * an error. */
static inline void tu_pg_exec(const char *url, const char *sql)
{
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("connect: %s", PQerrorMessage(c));
    PQclear(PQexec(c, "SET client_min_messages = warning")); /* no NOTICE on stderr */
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
}

/* A fresh database: a path in its own temporary folder, or (BM_TEST_STORE=pg) a schema of
 * its own on PG_URL, path then the URL that selects it. */
struct tdb {
    char dir[256];
    char path[600];
    char schema[64];
};

static inline void tdb_init(struct tdb *t)
{
    if (tu_is_pg()) {
        static int seq;
        char sql[200];
        const char *u = getenv("PG_URL");
        if (u == NULL || u[0] == '\0')
            fail_msg("BM_TEST_STORE=pg needs PG_URL");
        snprintf(t->schema, sizeof t->schema, "tdb_%ld_%d", (long)getpid(), ++seq);
        snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", t->schema,
                 t->schema);
        tu_pg_exec(u, sql);
        snprintf(t->path, sizeof t->path, "%s%soptions=-csearch_path%%3D%s", u,
                 strchr(u, '?') ? "&" : "?", t->schema);
        t->dir[0] = '\0';
        return;
    }
    t->schema[0] = '\0';
    const char *tmp = getenv("TMPDIR");
    snprintf(t->dir, sizeof t->dir, "%s/bmas-storage-XXXXXX", tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->path, sizeof t->path, "%s/t.db", t->dir);
}

static inline void tdb_cleanup(struct tdb *t)
{
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    char p[620];
    if (t->schema[0] != '\0') {
        snprintf(p, sizeof p, "DROP SCHEMA %s CASCADE", t->schema);
        tu_pg_exec(getenv("PG_URL"), p);
        return;
    }
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        snprintf(p, sizeof p, "%s%s", t->path, suffix[i]);
        unlink(p);
    }
    rmdir(t->dir);
}

static inline struct bm_db *tdb_open(const struct tdb *t)
{
    struct bm_db *db = NULL;
    struct bm_errmsg em = {{0}};
    if (bm_db_open(t->path, NULL, &db, &em) != BM_OK)
        fail_msg("bm_db_open: %s", em.text);
    return db;
}

/* A fresh copy of the closed database at tmpl in t's folder: the schema without running the
 * migrations again (a loop of hundreds of fresh databases pays for them once). */
static inline void tdb_copy(const struct tdb *t, const char *tmpl)
{
    FILE *in = fopen(tmpl, "rb");
    FILE *out = fopen(t->path, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    assert_int_equal(fclose(out), 0);
    fclose(in);
}

/* xorshift64: deterministic, and no banned libc generator. */
static inline uint64_t tu_rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static inline struct bm_str tu_s(const char *s)
{
    return (struct bm_str){s, strlen(s)};
}

static const char *const tu_models[] = {"anthropic.claude-a", "amazon.nova-lite", "meta.llama-x",
                                        "cohere.embed"};
static const char *const tu_regions[] = {"us-east-1", "us-west-2", "eu-west-1"};
static const char *const tu_ops[] = {"Converse", "InvokeModel"};
#define TU_N(a) (sizeof(a) / sizeof((a)[0]))
/* 2026-04-20T00:00:00Z, a Monday: day- and hour-aligned. */
#define TU_T0 1776643200

/* The delta of object i: 1..4 series spread over about three days, with bucket starts on
 * 30-second steps (so grouping by minute has to truncate) and per-invocation token counts. */
static inline struct bm_agg *tu_delta(uint64_t i)
{
    uint64_t s = i * 0x9E3779B97F4A7C15ULL + 1;
    struct bm_agg *a = bm_agg_new(0);
    assert_non_null(a);
    int n = 1 + (int)(tu_rng(&s) % 4);
    for (int j = 0; j < n; j++) {
        uint64_t r = tu_rng(&s);
        const char *m = tu_models[r % TU_N(tu_models)];
        const char *src = tu_regions[(r >> 8) % TU_N(tu_regions)];
        const char *inf = tu_regions[(r >> 12) % TU_N(tu_regions)];
        enum bm_profile_type t = (enum bm_profile_type)((r >> 16) % BM_PT__COUNT);
        char profile[64];
        snprintf(profile, sizeof profile, "%s%s", t == BM_PT_CROSS_REGION ? "us." : "", m);
        struct bm_series_key k = {
            .bucket = TU_T0 + (int64_t)((r >> 20) % (3 * 24 * 120)) * 30,
            .type = t,
            .model_id = tu_s(m),
            .profile_id = tu_s(profile),
            .source_region = tu_s(src),
            .inference_region = tu_s(inf),
            .operation = tu_s(tu_ops[(r >> 40) % TU_N(tu_ops)]),
            /* Attribution on some series: a team of three, or none. */
            .attr = {tu_s((r >> 50) % 4 == 0   ? ""
                          : (r >> 50) % 4 == 1 ? "red"
                                               : "blue")},
        };
        int calls = 1 + (int)((r >> 44) % 3);
        for (int c = 0; c < calls; c++) {
            uint64_t x = tu_rng(&s);
            struct bm_counters cn;
            bm_counters_one(&cn, x % 5000, (x >> 16) % 900, (x >> 32) % 50, (x >> 40) % 7);
            /* A cost with pico-dollars that carry over when summed, or an unpriced call. */
            cn.violations = (x >> 53) % 3 == 0;
            if ((x >> 47) % 4 == 0)
                cn.unpriced = 1;
            else
                cn.cost = (struct bm_cost){(x >> 20) % 3000, (x >> 10) % BM_PICO_PER_MICRO};
            assert_int_equal(bm_agg_add(a, &k, &cn), BM_OK);
        }
    }
    return a;
}

static inline void tu_object(struct bm_db_object *o, char *buf, size_t cap, uint64_t i)
{
    snprintf(buf, cap, "AWSLogs/1/BedrockModelInvocationLogs/us-east-1/obj-%llu.json.gz",
             (unsigned long long)i);
    bm_db_object_init(o, "logs", buf, NULL, "\"etag-1\"");
}

/* Commits object i with its delta; returns the result. */
static inline enum bm_db_commit_result tu_commit(struct bm_db *db, uint64_t i)
{
    char key[128];
    struct bm_db_object o;
    struct bm_errmsg em = {{0}};
    enum bm_db_commit_result r = BM_DB_DUPLICATE;
    struct bm_agg *d = tu_delta(i);
    struct bm_ingest_stats st = {.records = bm_agg_count(d), .invalid = i % 2};
    tu_object(&o, key, sizeof key, i);
    bm_err e = bm_db_commit_object(db, &o, "msg", 1000, d, &st, TU_T0, &r, &em);
    bm_agg_free(d);
    if (e != BM_OK)
        fail_msg("commit %llu: %s", (unsigned long long)i, em.text);
    return r;
}

static inline void tu_assert_counters_eq(const struct bm_counters *a, const struct bm_counters *b)
{
    assert_int_equal(a->invocations, b->invocations);
    const struct bm_stat *x[4] = {&a->input, &a->output, &a->cache_read, &a->cache_write};
    const struct bm_stat *y[4] = {&b->input, &b->output, &b->cache_read, &b->cache_write};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(x[i]->sum, y[i]->sum);
        assert_int_equal(x[i]->min, y[i]->min);
        assert_int_equal(x[i]->max, y[i]->max);
    }
    assert_int_equal(a->cost.micro, b->cost.micro);
    assert_int_equal(a->cost.pico, b->cost.pico);
    assert_int_equal(a->unpriced, b->unpriced);
    assert_int_equal(a->violations, b->violations);
}

static inline bool tu_str_eq(struct bm_str a, struct bm_str b)
{
    return a.len == b.len && memcmp(a.p, b.p, a.len) == 0;
}

/* Both aggregates sorted by the same group_by: same series in the same order. */
static inline void tu_assert_agg_eq(const struct bm_agg *got, const struct bm_agg *want)
{
    assert_int_equal(bm_agg_count(got), bm_agg_count(want));
    for (size_t i = 0; i < bm_agg_count(got); i++) {
        const struct bm_series *g = bm_agg_at(got, i), *w = bm_agg_at(want, i);
        assert_true(g->key.bucket == w->key.bucket);
        assert_int_equal(g->key.type, w->key.type);
        assert_true(tu_str_eq(g->key.model_id, w->key.model_id));
        assert_true(tu_str_eq(g->key.profile_id, w->key.profile_id));
        assert_true(tu_str_eq(g->key.source_region, w->key.source_region));
        assert_true(tu_str_eq(g->key.inference_region, w->key.inference_region));
        assert_true(tu_str_eq(g->key.operation, w->key.operation));
        tu_assert_counters_eq(&g->c, &w->c);
    }
}

#define TU_STATS_FROM(w)                                                                           \
    "SELECT bucket - ((bucket % " w ") + " w ") % " w " AS b, model, ptype, profile, src, inf, "   \
    "op, sum(n), sum(i_s), min(i_mn), max(i_mx), sum(o_s), min(o_mn), max(o_mx), sum(r_s), "       \
    "min(r_mn), max(r_mx), sum(w_s), min(w_mn), max(w_mx), sum(c_u), sum(c_p), sum(np), sum(rv), " \
    "a1, a2, a3 FROM agg GROUP BY 1, 2, 3, 4, 5, 6, 7, a1, a2, a3"
#define TU_ALL_FROM_AGG                                                                            \
    "SELECT model, ptype, profile, src, inf, op, sum(n), sum(i_s), sum(o_s), sum(r_s), sum(w_s), " \
    "sum(c_u), sum(c_p), sum(np), sum(rv), a1, a2, a3 FROM agg GROUP BY 1, 2, 3, 4, 5, 6, a1, "    \
    "a2, a3"

/* tu_assert_rollups on PostgreSQL: the same statements with ?1, ?2 as $1, $2. */
static inline void tu_pg_assert_rollups(const char *url, const char *const *sql, size_t n,
                                        int64_t h, int64_t d)
{
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("connect: %s", PQerrorMessage(c));
    char hs[24], ds[24], q[4096];
    snprintf(hs, sizeof hs, "%lld", (long long)h);
    snprintf(ds, sizeof ds, "%lld", (long long)d);
    const char *const vals[2] = {hs, ds};
    const Oid types[2] = {20, 20}; /* int8: typed, so a statement may leave one unused */
    for (size_t i = 0; i < n; i++) {
        size_t w = 0;
        for (const char *p = sql[i]; *p != '\0' && w + 1 < sizeof q; p++)
            q[w++] = *p == '?' ? '$' : *p;
        q[w] = '\0';
        PGresult *r = PQexecParams(c, q, 2, types, vals, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            fail_msg("rollup check %zu: %s", i, PQresultErrorMessage(r));
        if (strcmp(PQgetvalue(r, 0, 0), "0") != 0)
            fail_msg("rollup check %zu: %s rows differ", i, PQgetvalue(r, 0, 0));
        PQclear(r);
    }
    PQfinish(c);
}

/* Asserts that every rollup agrees with the minute rows stored in the database at path: the
 * all-time rollup holds exactly their sums per series (and no other row), and the hourly and
 * daily rows of units starting at or after from (pruning leaves the older part of a
 * straddling unit) equal the minute rows they sum. Uses a private read-only connection. */
static inline void tu_assert_rollups(const char *path, int64_t from)
{
    /* Each subquery named (AS x): PostgreSQL before 16 requires it. */
    static const char *const sql[] = {
        "SELECT count(*) FROM (" TU_ALL_FROM_AGG " EXCEPT SELECT * FROM agg_all) AS x",
        "SELECT count(*) FROM (SELECT * FROM agg_all EXCEPT " TU_ALL_FROM_AGG ") AS x",
        "SELECT count(*) FROM (SELECT * FROM (" TU_STATS_FROM(
            "3600") ") AS y WHERE b >= ?1 "
                    "EXCEPT SELECT * FROM agg_hour WHERE bucket >= ?1) AS x",
        "SELECT count(*) FROM (SELECT * FROM agg_hour WHERE bucket >= ?1 EXCEPT "
        "SELECT * FROM (" TU_STATS_FROM("3600") ") AS y WHERE b >= ?1) AS x",
        "SELECT count(*) FROM (SELECT * FROM (" TU_STATS_FROM(
            "86400") ") AS y WHERE b >= ?2 "
                     "EXCEPT SELECT * FROM agg_day WHERE bucket >= ?2) AS x",
        "SELECT count(*) FROM (SELECT * FROM agg_day WHERE bucket >= ?2 EXCEPT "
        "SELECT * FROM (" TU_STATS_FROM("86400") ") AS y WHERE b >= ?2) AS x",
    };
    /* The first whole hour and day at or after from. */
    int64_t h = from, d = from;
    if (from != INT64_MIN) {
        h = from - ((from % 3600) + 3600) % 3600;
        d = from - ((from % 86400) + 86400) % 86400;
        h += h < from ? 3600 : 0;
        d += d < from ? 86400 : 0;
    }
    if (bm__pg_url_is(path)) {
        tu_pg_assert_rollups(path, sql, sizeof sql / sizeof sql[0], h, d);
        return;
    }
    sqlite3 *c = NULL;
    assert_int_equal(sqlite3_open_v2(path, &c, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(c, sql[i], -1, &st, NULL) != SQLITE_OK)
            fail_msg("rollup check %zu: %s", i, sqlite3_errmsg(c));
        if (sqlite3_bind_parameter_count(st) >= 1)
            sqlite3_bind_int64(st, 1, h);
        if (sqlite3_bind_parameter_count(st) >= 2)
            sqlite3_bind_int64(st, 2, d);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        if (sqlite3_column_int64(st, 0) != 0)
            fail_msg("rollup check %zu: %lld rows differ", i,
                     (long long)sqlite3_column_int64(st, 0));
        sqlite3_finalize(st);
    }
    sqlite3_close(c);
}

/* All-time totals of db (one ungrouped query). */
static inline void tu_totals(struct bm_db *db, struct bm_counters *out)
{
    struct bm_db_query q;
    struct bm_agg *a = NULL;
    struct bm_errmsg em = {{0}};
    bm_db_query_init(&q, NULL);
    if (bm_db_query(db, &q, &a, &em) != BM_OK)
        fail_msg("query: %s", em.text);
    bm_agg_totals(a, out);
    bm_agg_free(a);
}

#endif
