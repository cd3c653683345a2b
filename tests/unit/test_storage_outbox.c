/* Storage outbox and retention: pending rows oldest first, marks (published rows go, dropped
 * and rejected stay out of the pending set), survival across reopen, publish counters; and
 * bm_db_prune removing exactly what is older than the cutoff, in every table. */
#include "test_storage_tu.h"

#include <signal.h>
#include <sys/wait.h>

static struct bm_db_status status(struct bm_db *db)
{
    struct bm_db_status s;
    struct bm_errmsg em;
    assert_int_equal(bm_db_status(db, &s, &em), BM_OK);
    return s;
}

static struct bm_db_outbox *fetch(struct bm_db *db, size_t max)
{
    struct bm_db_outbox *ob = NULL;
    struct bm_errmsg em;
    assert_int_equal(bm_db_outbox_fetch(db, 0, max, &ob, &em), BM_OK);
    return ob;
}

static void test_outbox(void **state)
{
    (void)state;
    struct tdb t;
    tdb_init(&t);
    struct bm_db *db = tdb_open(&t);
    struct bm_errmsg em;
    size_t total = 0;
    for (uint64_t i = 0; i < 20; i++) {
        struct bm_agg *d = tu_delta(i);
        total += bm_agg_count(d);
        bm_agg_free(d);
        tu_commit(db, i);
    }
    uint64_t pending = 0;
    assert_int_equal(bm_db_outbox_pending(db, &pending, &em), BM_OK);
    assert_int_equal(pending, total);

    /* Oldest first, limited, stable until marked. */
    struct bm_db_outbox *a = fetch(db, 5), *b = fetch(db, 1000);
    assert_int_equal(a->n, 5);
    assert_int_equal(b->n, total);
    for (size_t i = 0; i < b->n; i++) {
        assert_true(i == 0 || b->rows[i].id > b->rows[i - 1].id);
        assert_true(b->rows[i].s.c.invocations > 0);
        assert_int_equal(b->rows[i].created_at, TU_T0);
    }
    for (size_t i = 0; i < a->n; i++)
        assert_true(a->rows[i].id == b->rows[i].id);
    /* The first row is object 0's first series. */
    struct bm_agg *d0 = tu_delta(0);
    tu_assert_counters_eq(&b->rows[0].s.c, &bm_agg_at(d0, 0)->c);
    assert_string_equal(b->rows[0].s.key.model_id.p, bm_agg_at(d0, 0)->key.model_id.p);
    bm_agg_free(d0);

    /* Publish the first 5 (2 requests, 12 datums), drop 2, reject 1, and mark the published
     * ones again (a no-op: they are gone). */
    int64_t ids[8];
    for (int i = 0; i < 8; i++)
        ids[i] = b->rows[i].id;
    assert_int_equal(bm_db_outbox_mark(db, ids, 5, BM_DB_OUTBOX_PUBLISHED, 12, 2, &em), BM_OK);
    assert_int_equal(bm_db_outbox_mark(db, ids + 5, 2, BM_DB_OUTBOX_DROPPED, 0, 0, &em), BM_OK);
    assert_int_equal(bm_db_outbox_mark(db, ids + 7, 1, BM_DB_OUTBOX_REJECTED, 0, 1, &em), BM_OK);
    assert_int_equal(bm_db_outbox_mark(db, ids, 8, BM_DB_OUTBOX_PUBLISHED, 0, 0, &em), BM_OK);
    assert_int_equal(bm_db_outbox_mark(db, ids, 1, BM_DB_OUTBOX_PENDING, 0, 0, &em), BM_E_INTERNAL);
    bm_db_outbox_free(a);

    /* Unmarked rows survive a restart, in order, and the counters with them. */
    bm_db_close(db);
    db = tdb_open(&t);
    a = fetch(db, 1000);
    assert_int_equal(a->n, total - 8);
    for (size_t i = 0; i < a->n; i++)
        assert_true(a->rows[i].id == b->rows[i + 8].id);
    struct bm_db_status s = status(db);
    assert_int_equal(s.c[BM_DB_C_PUBLISH_PENDING], total - 8);
    assert_int_equal(s.c[BM_DB_C_PUBLISH_PUBLISHED], 12);
    assert_int_equal(s.c[BM_DB_C_PUBLISH_REQUESTS], 3);
    assert_int_equal(s.c[BM_DB_C_PUBLISH_DROPPED], 2);
    assert_int_equal(s.c[BM_DB_C_PUBLISH_REJECTED], 1);
    /* Publishing everything empties the outbox. */
    int64_t *all = bm_calloc(a->n, sizeof *all);
    for (size_t i = 0; i < a->n; i++)
        all[i] = a->rows[i].id;
    assert_int_equal(bm_db_outbox_mark(db, all, a->n, BM_DB_OUTBOX_PUBLISHED, a->n, 1, &em), BM_OK);
    bm_free(all);
    bm_db_outbox_free(a);
    bm_db_outbox_free(b);
    a = fetch(db, 1000);
    assert_int_equal(a->n, 0);
    bm_db_outbox_free(a);
    assert_int_equal(bm_db_outbox_pending(db, &pending, &em), BM_OK);
    assert_int_equal(pending, 0);
    bm_db_close(db);
    tdb_cleanup(&t);
}

/* Number of stored minute rows (distinct full series keys) with bucket < cutoff. */
static uint64_t rows_before(const struct bm_agg *all, int64_t cutoff)
{
    uint64_t n = 0;
    for (size_t i = 0; i < bm_agg_count(all); i++)
        n += bm_agg_at(all, i)->key.bucket < cutoff;
    return n;
}

static void commit_at(struct bm_db *db, uint64_t i, int64_t now)
{
    char key[128];
    struct bm_db_object o;
    enum bm_db_commit_result r;
    struct bm_errmsg em;
    struct bm_agg *d = tu_delta(i);
    tu_object(&o, key, sizeof key, i);
    assert_int_equal(bm_db_commit_object(db, &o, NULL, 1, d, NULL, now, &r, &em), BM_OK);
    bm_agg_free(d);
}

static bool processed(struct bm_db *db, uint64_t i)
{
    char key[128];
    struct bm_db_object o;
    struct bm_errmsg em;
    bool seen = false;
    tu_object(&o, key, sizeof key, i);
    assert_int_equal(bm_db_is_processed(db, &o, &seen, &em), BM_OK);
    return seen;
}

static void test_prune(void **state)
{
    (void)state;
    struct tdb t;
    tdb_init(&t);
    struct bm_db *db = tdb_open(&t);
    struct bm_errmsg em;
    struct bm_agg *all = bm_agg_new(0);
    /* Objects 0..1199 processed on day 0, 1200..2399 on day 3; their buckets spread over
     * three days give the minute table more rows before the cutoff than one prune batch. */
    for (uint64_t i = 0; i < 2400; i++) {
        struct bm_agg *d = tu_delta(i);
        assert_int_equal(bm_agg_merge(all, d), BM_OK);
        bm_agg_free(d);
        commit_at(db, i, i < 1200 ? TU_T0 : TU_T0 + 3 * 86400);
    }
    /* One dropped outbox row from each day; failures on each day. */
    struct bm_db_outbox *ob = fetch(db, 100000);
    int64_t ids[2] = {ob->rows[0].id, ob->rows[ob->n - 1].id};
    assert_int_equal(bm_db_outbox_mark(db, ids, 2, BM_DB_OUTBOX_DROPPED, 0, 0, &em), BM_OK);
    size_t pending = ob->n - 2;
    bm_db_outbox_free(ob);
    struct bm_db_object f1, f2;
    bm_db_object_init(&f1, "b", "old", NULL, "e");
    bm_db_object_init(&f2, "b", "new", NULL, "e");
    assert_int_equal(bm_db_record_failure(db, &f1, BM_E_S3_DENIED, NULL, TU_T0, 3, NULL, NULL, &em),
                     BM_OK);
    assert_int_equal(
        bm_db_record_failure(db, &f2, BM_E_S3_DENIED, NULL, TU_T0 + 4 * 86400, 1, NULL, NULL, &em),
        BM_OK);

    /* A ragged cutoff: inside day 1, inside an hour, between two 30-second buckets. */
    const int64_t cutoff = TU_T0 + 86400 + 5 * 3600 + 1215;
    struct bm_db_prune_stats ps;
    assert_int_equal(bm_db_prune(db, cutoff, &ps, &em), BM_OK);
    assert_int_equal(ps.aggregates, rows_before(all, cutoff));
    assert_int_equal(ps.processed, 1200);
    assert_true(ps.aggregates > 2000);
    assert_int_equal(ps.outbox, 1);
    assert_int_equal(ps.failures, 1);
    tu_assert_rollups(t.path, cutoff);
    for (uint64_t i = 0; i < 2400; i += 7)
        assert_int_equal(processed(db, i), i >= 1200);
    bool q = false;
    assert_int_equal(bm_db_is_quarantined(db, &f2, &q, &em), BM_OK);
    assert_true(q);

    /* Every grouping sees exactly the series at or after the cutoff, even though the rollup
     * rows of the straddling hour and day are still there. */
    struct bm_agg *kept = bm_agg_new(0);
    for (size_t i = 0; i < bm_agg_count(all); i++)
        if (bm_agg_at(all, i)->key.bucket >= cutoff)
            assert_int_equal(bm_agg_add(kept, &bm_agg_at(all, i)->key, &bm_agg_at(all, i)->c),
                             BM_OK);
    static const struct bm_group_by groups[] = {{.n = 0},
                                                {.n = 1, .f = {BM_G_MODEL_ID}},
                                                {.n = 1, .f = {BM_G_MINUTE}},
                                                {.n = 2, .f = {BM_G_PROFILE_TYPE, BM_G_OPERATION}},
                                                {.n = 2, .f = {BM_G_ATTR1, BM_G_SOURCE_REGION}}};
    for (int pass = 0; pass < 2; pass++) {
        for (size_t g = 0; g < TU_N(groups); g++) {
            struct bm_db_query qy;
            struct bm_agg *got = NULL, *want = NULL;
            bm_db_query_init(&qy, &groups[g]);
            assert_int_equal(bm_db_query(db, &qy, &got, &em), BM_OK);
            assert_int_equal(bm_agg_regroup(kept, &groups[g], &want), BM_OK);
            assert_int_equal(bm_agg_sort(want, &groups[g]), BM_OK);
            tu_assert_agg_eq(got, want);
            bm_agg_free(got);
            bm_agg_free(want);
        }
        /* The cutoff is remembered across a restart. */
        bm_db_close(db);
        db = tdb_open(&t);
    }
    assert_int_equal(status(db).c[BM_DB_C_PUBLISH_PENDING], pending);
    /* An earlier cutoff changes nothing; pruning again finds nothing. */
    assert_int_equal(bm_db_prune(db, TU_T0, &ps, &em), BM_OK);
    assert_int_equal(ps.aggregates + ps.processed + ps.outbox + ps.failures, 0);
    bm_agg_free(kept);
    bm_agg_free(all);
    bm_db_close(db);
    tdb_cleanup(&t);
}

static int64_t *ids_of(const struct bm_db_outbox *ob, size_t from, size_t n)
{
    int64_t *ids = bm_calloc(n ? n : 1, sizeof *ids);
    for (size_t i = 0; i < n; i++)
        ids[i] = ob->rows[from + i].id;
    return ids;
}

/* The child of test_claims: claims rows, records the send of request 0 as begun, and dies by
 * SIGKILL as a crash between the call and its mark would. Exits 1 on any failure. */
static void crash_after_claim(const char *path, const int64_t *ids, size_t n)
{
    struct bm_db *db = NULL;
    struct bm_errmsg em;
    int attempt = 0;
    if (bm_db_open(path, NULL, &db, &em) != BM_OK ||
        bm_db_outbox_claim(db, "c1", ids, n, 2, TU_T0, &em) != BM_OK ||
        bm_db_outbox_send_begin(db, "c1", 0, &attempt, &em) != BM_OK || attempt != 1)
        _exit(1);
    kill(getpid(), SIGKILL);
    _exit(1);
}

/* pending -> claimed -> sent (rows gone), across a crash and a reopen; all-or-nothing claims;
 * a failed first call releases the claim, a failed later one keeps it; refused calls leave
 * REJECTED rows; claimed rows are neither fetched nor pruned. */
static void test_claims(void **state)
{
    (void)state;
    struct tdb t;
    tdb_init(&t);
    struct bm_db *db = tdb_open(&t);
    struct bm_errmsg em;
    for (uint64_t i = 0; i < 30; i++)
        tu_commit(db, i);
    struct bm_db_outbox *all = fetch(db, 1000);
    const size_t total = all->n;
    assert_true(total >= 30);
    int64_t *a = ids_of(all, 0, 10), *b = ids_of(all, 10, 5), *c = ids_of(all, 15, 5);
    bm_db_close(db);

    /* A crash after the claim and the begun send of request 0. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        crash_after_claim(t.path, a, 10);
    int ws = 0;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    assert_true(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);

    db = tdb_open(&t);
    struct bm_db_claims *cl = NULL;
    assert_int_equal(bm_db_outbox_claims(db, &cl, &em), BM_OK);
    assert_int_equal(cl->n, 1);
    assert_string_equal(cl->v[0].id, "c1");
    assert_int_equal(cl->v[0].nreq, 2);
    assert_int_equal(cl->v[0].sent, 0);
    assert_int_equal(cl->v[0].attempt, 1); /* request 0 went out with no recorded answer */
    assert_int_equal(cl->v[0].rows->n, 10);
    for (size_t i = 0; i < 10; i++) {
        assert_true(cl->v[0].rows->rows[i].id == a[i]);
        tu_assert_counters_eq(&cl->v[0].rows->rows[i].s.c, &all->rows[i].s.c);
        assert_string_equal(cl->v[0].rows->rows[i].s.key.model_id.p, all->rows[i].s.key.model_id.p);
    }
    bm_db_claims_free(cl);
    /* Claimed rows are not pending for fetch, but still count as pending. */
    struct bm_db_outbox *rest = fetch(db, 1000);
    assert_int_equal(rest->n, total - 10);
    assert_true(rest->rows[0].id == b[0]);
    bm_db_outbox_free(rest);
    assert_int_equal(status(db).c[BM_DB_C_PUBLISH_PENDING], total);

    /* All or nothing: a claim with one row already claimed claims none. */
    int64_t mixed[2] = {b[0], a[3]};
    assert_int_equal(bm_db_outbox_claim(db, "bad", mixed, 2, 1, TU_T0, &em), BM_E_INTERNAL);
    rest = fetch(db, 1000);
    assert_int_equal(rest->n, total - 10);
    bm_db_outbox_free(rest);
    assert_int_equal(bm_db_outbox_claim(db, "c1", b, 5, 1, TU_T0, &em), BM_E_STORAGE);

    /* The re-send after the crash: attempt 2; request 1 is not next. */
    int attempt = 0;
    assert_int_equal(bm_db_outbox_send_begin(db, "c1", 1, &attempt, &em), BM_E_INTERNAL);
    assert_int_equal(bm_db_outbox_send_begin(db, "c1", 0, &attempt, &em), BM_OK);
    assert_int_equal(attempt, 2);
    bool fin = true, rel = true;
    assert_int_equal(bm_db_outbox_send_done(db, "c1", 0, true, 10, &fin, &em), BM_OK);
    assert_false(fin);
    /* Request 1 fails: the claim keeps its rows (request 0 is in CloudWatch) at attempt 0. */
    assert_int_equal(bm_db_outbox_send_begin(db, "c1", 1, &attempt, &em), BM_OK);
    assert_int_equal(attempt, 1);
    assert_int_equal(bm_db_outbox_send_failed(db, "c1", 1, &rel, &em), BM_OK);
    assert_false(rel);
    assert_int_equal(bm_db_outbox_claims(db, &cl, &em), BM_OK);
    assert_int_equal(cl->n, 1);
    assert_int_equal(cl->v[0].sent, 1);
    assert_int_equal(cl->v[0].attempt, 0);
    bm_db_claims_free(cl);
    assert_int_equal(bm_db_outbox_send_begin(db, "c1", 1, &attempt, &em), BM_OK);
    assert_int_equal(bm_db_outbox_send_done(db, "c1", 1, true, 5, &fin, &em), BM_OK);
    assert_true(fin);
    struct bm_db_status s = status(db);
    assert_int_equal(s.c[BM_DB_C_PUBLISH_PENDING], total - 10);
    assert_int_equal(s.c[BM_DB_C_PUBLISH_PUBLISHED], 15);
    assert_int_equal(s.c[BM_DB_C_PUBLISH_REQUESTS], 2);
    assert_int_equal(bm_db_outbox_send_begin(db, "c1", 2, &attempt, &em), BM_E_INTERNAL);

    /* A first call that fails releases the claim: its rows are pending again. */
    assert_int_equal(bm_db_outbox_claim(db, "c2", b, 5, 1, TU_T0, &em), BM_OK);
    assert_int_equal(bm_db_outbox_send_begin(db, "c2", 0, &attempt, &em), BM_OK);
    assert_int_equal(bm_db_outbox_send_failed(db, "c2", 0, &rel, &em), BM_OK);
    assert_true(rel);
    rest = fetch(db, 1000);
    assert_int_equal(rest->n, total - 10);
    assert_true(rest->rows[0].id == b[0]);
    bm_db_outbox_free(rest);

    /* A refused call: the rows stay as REJECTED, out of pending. */
    assert_int_equal(bm_db_outbox_claim(db, "c3", c, 5, 1, TU_T0, &em), BM_OK);
    assert_int_equal(bm_db_outbox_send_begin(db, "c3", 0, &attempt, &em), BM_OK);
    assert_int_equal(bm_db_outbox_send_done(db, "c3", 0, false, 0, &fin, &em), BM_OK);
    assert_true(fin);
    s = status(db);
    assert_int_equal(s.c[BM_DB_C_PUBLISH_PENDING], total - 15);
    assert_int_equal(s.c[BM_DB_C_PUBLISH_REJECTED], 5);
    assert_int_equal(s.c[BM_DB_C_PUBLISH_REQUESTS], 2);

    /* Claimed rows survive pruning; finished ones go. */
    assert_int_equal(bm_db_outbox_claim(db, "c4", b, 5, 1, TU_T0, &em), BM_OK);
    struct bm_db_prune_stats ps;
    assert_int_equal(bm_db_prune(db, TU_T0 + 400 * 86400, &ps, &em), BM_OK);
    assert_int_equal(ps.outbox, 5); /* the REJECTED ones */
    assert_int_equal(bm_db_outbox_claims(db, &cl, &em), BM_OK);
    assert_int_equal(cl->n, 1);
    assert_int_equal(cl->v[0].rows->n, 5);
    bm_db_claims_free(cl);

    bm_free(a);
    bm_free(b);
    bm_free(c);
    bm_db_outbox_free(all);
    bm_db_close(db);
    tdb_cleanup(&t);
}

/* Writes failing (another process holds the write lock past the busy timeout) make
 * bm_db_write_health say so with SQLite's message; the next commit makes it healthy. */
static void test_write_health(void **state)
{
    (void)state;
    struct tdb t;
    tdb_init(&t);
    struct bm_db_options opt = {.busy_timeout_ms = 50};
    struct bm_db *db = NULL;
    struct bm_errmsg em = {{0}};
    assert_int_equal(bm_db_open(t.path, &opt, &db, &em), BM_OK);
    tu_commit(db, 1);
    assert_int_equal(bm_db_write_health(db, NULL, NULL), BM_OK);
    struct bm_db_outbox *ob = fetch(db, 10);
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open(t.path, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
    int64_t id = ob->rows[0].id, since = 0;
    assert_int_equal(bm_db_outbox_claim(db, "x", &id, 1, 1, TU_T0, &em), BM_E_STORAGE_BUSY);
    struct bm_errmsg hm = {{0}};
    assert_int_equal(bm_db_write_health(db, &since, &hm), BM_E_STORAGE_BUSY);
    assert_true(since > 0);
    assert_non_null(strstr(hm.text, "locked"));
    /* Reads still work meanwhile. */
    assert_int_equal(bm_db_status(db, &(struct bm_db_status){{0}}, &em), BM_OK);
    assert_int_equal(bm_db_write_health(db, NULL, NULL), BM_E_STORAGE_BUSY);
    assert_int_equal(sqlite3_exec(h, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    assert_int_equal(bm_db_outbox_claim(db, "x", &id, 1, 1, TU_T0, &em), BM_OK);
    assert_int_equal(bm_db_write_health(db, NULL, NULL), BM_OK);
    /* The caller's own failure (a row not pending) says nothing about storage; a write SQLite
     * refuses (a claim id used twice) does. */
    assert_int_equal(bm_db_outbox_claim(db, "y", &id, 1, 1, TU_T0, &em), BM_E_INTERNAL);
    assert_int_equal(bm_db_write_health(db, NULL, NULL), BM_OK);
    assert_int_equal(bm_db_outbox_claim(db, "x", &id, 1, 1, TU_T0, &em), BM_E_STORAGE);
    assert_int_equal(bm_db_write_health(db, NULL, NULL), BM_E_STORAGE);
    assert_int_equal(bm_db_flush_counters(db, &em), BM_OK);
    assert_int_equal(bm_db_write_health(db, NULL, NULL), BM_OK);
    bm_db_outbox_free(ob);
    bm_db_close(db);
    tdb_cleanup(&t);
}

static bool lease(struct bm_db *db, const char *id, char *holder, size_t cap)
{
    bool held = false;
    struct bm_errmsg em = {{0}};
    if (bm_db_publisher_lease(db, id, 60000, &held, holder, cap, &em) != BM_OK)
        fail_msg("lease: %s", em.text);
    return held;
}

/* The publisher lease through the public interface. PostgreSQL: one holder at a time, renewed
 * by it, refused to another, free again once released. SQLite: one file is one machine's
 * store, so every caller holds it and names itself. */
static void test_publisher_lease(void **state)
{
    (void)state;
    struct tdb t;
    tdb_init(&t);
    struct bm_db *db = tdb_open(&t);
    struct bm_errmsg em;
    char who[64];
    assert_string_equal(bm_db_store_kind(db), tu_is_pg() ? "postgresql" : "sqlite");
    assert_true(lease(db, "a", who, sizeof who));
    assert_string_equal(who, "a");
    assert_true(lease(db, "a", who, sizeof who)); /* renewed */
    assert_string_equal(who, "a");
    if (tu_is_pg()) {
        assert_false(lease(db, "b", who, sizeof who));
        assert_string_equal(who, "a");
        /* Only the holder gives it up. */
        assert_int_equal(bm_db_publisher_release(db, "b", &em), BM_OK);
        assert_false(lease(db, "b", who, sizeof who));
        assert_string_equal(who, "a");
        assert_int_equal(bm_db_publisher_release(db, "a", &em), BM_OK);
        assert_true(lease(db, "b", who, sizeof who)); /* at once, no expiry to wait for */
        assert_string_equal(who, "b");
        assert_false(lease(db, "a", NULL, 0));
    } else {
        assert_true(lease(db, "b", who, sizeof who));
        assert_string_equal(who, "b");
        assert_int_equal(bm_db_publisher_release(db, "a", &em), BM_OK);
    }
    bm_db_close(db);
    tdb_cleanup(&t);
}

int main(void)
{
    bm_log_set_level(BM_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outbox),          cmocka_unit_test(test_prune),
        cmocka_unit_test(test_claims),          cmocka_unit_test(test_write_health),
        cmocka_unit_test(test_publisher_lease),
    };
    /* On PostgreSQL: all but write health, which takes SQLite's file away. */
    const struct CMUnitTest pg_tests[] = {
        cmocka_unit_test(test_outbox),
        cmocka_unit_test(test_prune),
        cmocka_unit_test(test_claims),
        cmocka_unit_test(test_publisher_lease),
    };
    if (tu_is_pg())
        return cmocka_run_group_tests_name("postgresql", pg_tests, NULL, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
