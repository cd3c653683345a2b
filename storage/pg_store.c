/* pg_store.c: the PostgreSQL backend behind bm_storage.h (BMAS_DB=postgres://...): opening
 * and migrating, and its table of struct bm__store_ops. */
#include "storage/pg_int.h"
#include "storage/storage_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Exactly-once commit and the processed lookup -------------------------------------------- */

/* Deferred counts ride along with the commit (bm_db_count's contract); given back when it
 * fails. */
static bm_err pgs_commit_object(struct bm_db *db, const struct bm_db_object *obj,
                                const char *message_id, uint64_t size, const struct bm_agg *delta,
                                const struct bm_ingest_stats *stats, int64_t now,
                                enum bm_db_commit_result *result, struct bm_errmsg *em)
{
    uint64_t taken[BM_DB_C__COUNT];
    bm__deferred_take(db, taken);
    bm_err e =
        bm__pg_commit_object(db->pg, obj, message_id, size, delta, stats, now, taken, result, em);
    if (e != BM_OK)
        bm__deferred_give_back(db, taken);
    bm__health_note(db, e, em);
    return e;
}

static bm_err pgs_is_processed(struct bm_db *db, const struct bm_db_object *obj, bool *out,
                               struct bm_errmsg *em)
{
    struct bm__pg_one q = {.sql = "SELECT 1 FROM processed WHERE bucket = $1 AND key = $2 AND "
                                  "version = $3"};
    bm__pg_p_object(&q.p, obj);
    bm_err e = bm__pg_read(db->pg, bm__pg_one_fn, &q, em);
    if (e == BM_OK)
        *out = q.found;
    return e;
}

/* ---- Failures and quarantine ------------------------------------------------------------------
 */

static bm_err pgs_is_quarantined(struct bm_db *db, const struct bm_db_object *obj, bool *out,
                                 struct bm_errmsg *em)
{
    struct bm__pg_one q = {.sql = "SELECT quarantined FROM failure WHERE bucket = $1 AND key = $2 "
                                  "AND version = $3"};
    bm__pg_p_object(&q.p, obj);
    bm_err e = bm__pg_read(db->pg, bm__pg_one_fn, &q, em);
    if (e == BM_OK)
        *out = q.found && q.v != 0;
    return e;
}

struct failure {
    const struct bm_db_object *obj;
    bm_err code;
    const char *message;
    int64_t now;
    long max_attempts;
    long attempts;
    bool was_q, is_q;
};

static bm_err failure_fn(struct bm__pg_tx *t, void *ctx, struct bm_errmsg *em)
{
    struct failure *f = ctx;
    struct bm__pg_params p = {0};
    PGresult *r = NULL;
    bm__pg_p_object(&p, f->obj);
    /* The row locked first, so that was_q is the state this attempt changes; a first failure
     * that races another inserts once and the loser's upsert counts the second attempt. */
    bm_err e = bm__pg_exec(t,
                           "SELECT quarantined FROM failure WHERE bucket = $1 AND key = $2 AND "
                           "version = $3 FOR UPDATE",
                           &p, &r, NULL, em);
    if (e != BM_OK)
        return e;
    f->was_q = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "0") != 0;
    PQclear(r);
    bm__pg_p_str(&p, bm_str_of(bm_err_wire(f->code)));
    bm__pg_p_str(&p, bm_str_of(f->message ? f->message : bm_err_str(f->code)));
    bm__pg_p_int(&p, f->now);
    bm__pg_p_int(&p, f->max_attempts > 0 ? f->max_attempts : 0);
    e = bm__pg_exec(t,
                    "INSERT INTO failure AS f (bucket, key, version, attempts, code, message, "
                    "first_at, last_at, quarantined) VALUES ($1, $2, $3, 1, $4, $5, $6::bigint, "
                    "$6::bigint, CASE WHEN $7::bigint > 0 AND 1 >= $7::bigint THEN 1 ELSE 0 END) "
                    "ON CONFLICT (bucket, key, version) DO UPDATE SET attempts = f.attempts + 1, "
                    "code = excluded.code, message = excluded.message, last_at = "
                    "excluded.last_at, quarantined = CASE WHEN f.quarantined <> 0 OR "
                    "($7::bigint > 0 AND f.attempts + 1 >= $7::bigint) THEN 1 ELSE 0 END "
                    "RETURNING attempts, quarantined",
                    &p, &r, NULL, em);
    if (e != BM_OK)
        return e;
    f->attempts = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    f->is_q = strcmp(PQgetvalue(r, 0, 1), "0") != 0;
    PQclear(r);
    int w = bm_err_wire_index(f->code);
    if ((e = bm__pg_counter_add(t, BM_DB_C_OBJECTS_FAILED, 1, em)) != BM_OK)
        return e;
    if (w >= 0 &&
        (e = bm__pg_counter_add(t, (enum bm_db_counter)(BM_DB_C_ERRORS + w), 1, em)) != BM_OK)
        return e;
    if (f->is_q && !f->was_q)
        e = bm__pg_counter_add(t, BM_DB_C_OBJECTS_QUARANTINED, 1, em);
    return e;
}

static bm_err pgs_record_failure(struct bm_db *db, const struct bm_db_object *obj, bm_err code,
                                 const char *message, int64_t now, long max_attempts,
                                 long *attempts, bool *quarantined, struct bm_errmsg *em)
{
    struct failure f = {obj, code, message, now, max_attempts, 0, false, false};
    bm_err e = bm__pg_tx_run(db->pg, "READ COMMITTED", failure_fn, &f, em);
    bm__health_note(db, e, em);
    if (e == BM_OK && attempts != NULL)
        *attempts = f.attempts;
    if (e == BM_OK && quarantined != NULL)
        *quarantined = f.is_q;
    return e;
}

struct qlist {
    size_t max;
    struct bm__failures *f;
};

static struct bm_str col_str(struct bm__arena *a, PGresult *r, int row, int col, bool *ok)
{
    size_t len = (size_t)PQgetlength(r, row, col);
    const char *d = bm__arena_copy(a, PQgetvalue(r, row, col), len);
    *ok = *ok && d != NULL;
    return (struct bm_str){d, len};
}

static bm_err qlist_fn(struct bm__pg_tx *t, void *ctx, struct bm_errmsg *em)
{
    struct qlist *q = ctx;
    struct bm__pg_params p = {0};
    PGresult *r = NULL;
    bm__pg_p_int(&p, (int64_t)q->max);
    bm_err e = bm__pg_exec(t,
                           "SELECT bucket, key, version, attempts, quarantined, code, message, "
                           "first_at, last_at FROM failure WHERE quarantined = 1 "
                           "ORDER BY last_at DESC LIMIT $1::bigint",
                           &p, &r, NULL, em);
    if (e != BM_OK)
        return e;
    struct bm__failures *f = q->f;
    bool ok = true;
    /* A retried attempt starts the list again (the arena's earlier strings are only waste). */
    f->pub.n = 0;
    for (int i = 0; i < PQntuples(r) && (size_t)i < q->max && ok; i++) {
        struct bm_db_failure *x = &f->pub.v[f->pub.n++];
        x->obj.bucket = col_str(&f->arena, r, i, 0, &ok);
        x->obj.key = col_str(&f->arena, r, i, 1, &ok);
        x->obj.version = col_str(&f->arena, r, i, 2, &ok);
        x->attempts = strtol(PQgetvalue(r, i, 3), NULL, 10);
        x->quarantined = strcmp(PQgetvalue(r, i, 4), "0") != 0;
        snprintf(x->code, sizeof x->code, "%s", PQgetvalue(r, i, 5));
        x->message = col_str(&f->arena, r, i, 6, &ok).p;
        x->first_at = strtoll(PQgetvalue(r, i, 7), NULL, 10);
        x->last_at = strtoll(PQgetvalue(r, i, 8), NULL, 10);
    }
    PQclear(r);
    return ok ? BM_OK : bm_errmsg_set(em, BM_E_NOMEM, "list quarantined objects: out of memory");
}

static bm_err pgs_quarantined(struct bm_db *db, size_t max, struct bm_db_failures **out,
                              struct bm_errmsg *em)
{
    struct qlist q = {max, bm_calloc(1, sizeof *q.f)};
    bm_err e = BM_E_NOMEM;
    if (q.f == NULL || (q.f->pub.v = bm_calloc(max ? max : 1, sizeof *q.f->pub.v)) == NULL)
        bm_errmsg_set(em, e, "list quarantined objects: out of memory");
    else
        e = bm__pg_tx_run(db->pg, NULL, qlist_fn, &q, em);
    if (e != BM_OK) {
        bm_db_failures_free(q.f ? &q.f->pub : NULL);
        return e;
    }
    *out = &q.f->pub;
    return BM_OK;
}

/* ---- Counters ------------------------------------------------------------------------------- */

struct flush {
    const uint64_t *taken;
};

static bm_err flush_fn(struct bm__pg_tx *t, void *ctx, struct bm_errmsg *em)
{
    const struct flush *f = ctx;
    bm_err e = BM_OK;
    for (int i = 0; i < BM_DB_C__COUNT && e == BM_OK; i++)
        if (f->taken[i] != 0)
            e = bm__pg_counter_add(t, (enum bm_db_counter)i, (int64_t)f->taken[i], em);
    return e;
}

/* Deferred counts go to the database here, at close and with each commit. */
static bm_err pgs_flush_counters(struct bm_db *db, struct bm_errmsg *em)
{
    uint64_t taken[BM_DB_C__COUNT] = {0};
    struct flush f = {taken};
    bm__deferred_take(db, taken);
    bm_err e = bm__pg_tx_run(db->pg, NULL, flush_fn, &f, em);
    bm__health_note(db, e, em);
    if (e != BM_OK)
        bm__deferred_give_back(db, taken);
    return e;
}

static bm_err status_fn(struct bm__pg_tx *t, void *ctx, struct bm_errmsg *em)
{
    struct bm_db_status *s = ctx;
    PGresult *r = NULL;
    bm_err e = bm__pg_exec(t, "SELECT name, value FROM counter_total", NULL, &r, NULL, em);
    if (e != BM_OK)
        return e;
    memset(s, 0, sizeof *s);
    for (int i = 0; i < PQntuples(r); i++)
        /* Names this version does not know (written by another one) are skipped. */
        for (int c = 0; c < BM_DB_C__COUNT; c++)
            if (strcmp(PQgetvalue(r, i, 0), bm_db_counter_name((enum bm_db_counter)c)) == 0)
                s->c[c] = (uint64_t)strtoll(PQgetvalue(r, i, 1), NULL, 10);
    PQclear(r);
    return BM_OK;
}

static bm_err pgs_status(struct bm_db *db, struct bm_db_status *out, struct bm_errmsg *em)
{
    struct bm_db_status s;
    bm_err e = bm__pg_read(db->pg, status_fn, &s, em);
    if (e != BM_OK)
        return e;
    bm__deferred_add_to(db, &s);
    *out = s;
    return BM_OK;
}

static bm_err pgs_outbox_pending(struct bm_db *db, uint64_t *out, struct bm_errmsg *em)
{
    int64_t v = 0;
    bm_err e = bm__pg_counter(db->pg, BM_DB_C_PUBLISH_PENDING, &v, em);
    if (e == BM_OK)
        *out = v > 0 ? (uint64_t)v : 0;
    return e;
}

static bm_err pgs_query(struct bm_db *db, const struct bm_db_query *q, struct bm_agg **out,
                        struct bm_errmsg *em)
{
    return bm__pg_query(db->pg, q, out, em);
}

/* ---- Outbox (pg_outbox.c): writes note the store's health, as every write does ------------- */

static bm_err pgs_outbox_fetch(struct bm_db *db, int64_t after_id, size_t max_rows,
                               struct bm_db_outbox **out, struct bm_errmsg *em)
{
    return bm__pg_outbox_fetch(db->pg, after_id, max_rows, out, em);
}

static bm_err pgs_outbox_mark(struct bm_db *db, const int64_t *ids, size_t n,
                              enum bm_db_outbox_state state, uint64_t datums, uint64_t requests,
                              struct bm_errmsg *em)
{
    bm_err e = bm__pg_outbox_mark(db->pg, ids, n, state, datums, requests, em);
    bm__health_note(db, e, em);
    return e;
}

static bm_err pgs_outbox_claim(struct bm_db *db, const char *claim, const int64_t *ids, size_t n,
                               size_t nreq, int64_t now, struct bm_errmsg *em)
{
    bm_err e = bm__pg_outbox_claim(db->pg, claim, ids, n, nreq, now, em);
    bm__health_note(db, e, em);
    return e;
}

static bm_err pgs_outbox_send_begin(struct bm_db *db, const char *claim, size_t req, int *attempt,
                                    struct bm_errmsg *em)
{
    bm_err e = bm__pg_outbox_send_begin(db->pg, claim, req, attempt, em);
    bm__health_note(db, e, em);
    return e;
}

static bm_err pgs_outbox_send_done(struct bm_db *db, const char *claim, size_t req, bool accepted,
                                   uint64_t datums, bool *finished, struct bm_errmsg *em)
{
    bm_err e = bm__pg_outbox_send_done(db->pg, claim, req, accepted, datums, finished, em);
    bm__health_note(db, e, em);
    return e;
}

static bm_err pgs_outbox_send_failed(struct bm_db *db, const char *claim, size_t req,
                                     bool *released, struct bm_errmsg *em)
{
    bm_err e = bm__pg_outbox_send_failed(db->pg, claim, req, released, em);
    bm__health_note(db, e, em);
    return e;
}

static bm_err pgs_outbox_claims(struct bm_db *db, struct bm_db_claims **out, struct bm_errmsg *em)
{
    return bm__pg_outbox_claims(db->pg, out, em);
}

/* ---- The publisher lease: one row, timed by the server's clock ---------------------------- */

#define LEASE_NAME "publisher"

static bm_err pgs_publisher_lease(struct bm_db *db, const char *instance_id, int64_t ttl_ms,
                                  bool *held, char *holder, size_t cap, struct bm_errmsg *em)
{
    bool valid = false;
    char who[256] = "";
    bm_err e = bm__pg_lease_acquire(db->pg, LEASE_NAME, instance_id, BM__PG_SERVER_CLOCK, ttl_ms,
                                    held, em);
    if (e == BM_OK && *held)
        snprintf(who, sizeof who, "%s", instance_id);
    else if (e == BM_OK)
        e = bm__pg_lease_holder(db->pg, LEASE_NAME, BM__PG_SERVER_CLOCK, who, sizeof who, &valid,
                                em);
    if (e == BM_OK && holder != NULL && cap > 0)
        snprintf(holder, cap, "%s", *held || valid ? who : "");
    return e;
}

static bm_err pgs_publisher_release(struct bm_db *db, const char *instance_id, struct bm_errmsg *em)
{
    return bm__pg_lease_release(db->pg, LEASE_NAME, instance_id, NULL, em);
}

/* ---- The handle ------------------------------------------------------------------------------ */

static void pgs_close(struct bm_db *db)
{
    if (db == NULL)
        return;
    if (db->is_open) {
        /* Best effort: a failure here only loses informational counts. */
        struct bm_errmsg em;
        if (pgs_flush_counters(db, &em) != BM_OK)
            BM_LOG(BM_WARN, "storage", "counter_flush_failed", em.text);
    }
    bm__pg_close(db->pg);
    bm__db_free(db);
}

static const struct bm__store_ops pg_ops = {
    .name = "PostgreSQL",
    .close = pgs_close,
    .commit_object = pgs_commit_object,
    .is_processed = pgs_is_processed,
    .record_failure = pgs_record_failure,
    .is_quarantined = pgs_is_quarantined,
    .quarantined = pgs_quarantined,
    .flush_counters = pgs_flush_counters,
    .status = pgs_status,
    .outbox_pending = pgs_outbox_pending,
    .outbox_fetch = pgs_outbox_fetch,
    .outbox_mark = pgs_outbox_mark,
    .outbox_claim = pgs_outbox_claim,
    .outbox_send_begin = pgs_outbox_send_begin,
    .outbox_send_done = pgs_outbox_send_done,
    .outbox_send_failed = pgs_outbox_send_failed,
    .outbox_claims = pgs_outbox_claims,
    .prune = bm__pgs_prune,
    .cw_series_recent = bm__pgs_cw_series_recent,
    .cw_series_record = bm__pgs_cw_series_record,
    .cw_budget = bm__pgs_cw_budget,
    .query = pgs_query,
    .publisher_lease = pgs_publisher_lease,
    .publisher_release = pgs_publisher_release,
};

bm_err bm__pgs_open(const char *url, const struct bm_db_options *opt, struct bm_db **out,
                    struct bm_errmsg *em)
{
    char desc[200];
    bm_err e = bm__pg_url_check(url, desc, sizeof desc, em);
    if (e != BM_OK)
        return e;
    struct bm_db *db = bm__db_new(opt);
    if (db == NULL)
        return bm_errmsg_set(em, BM_E_NOMEM, "storage: out of memory");
    db->ops = &pg_ops;
    struct bm_pg_options po = {.max_connections = db->opt.max_connections,
                               .attr_max_values = db->opt.attr_max_values};
    if ((e = bm__pg_open(url, &po, &db->pg, em)) != BM_OK ||
        (e = bm__pg_migrate(db->pg, bm__pg_schema_version(), em)) != BM_OK) {
        pgs_close(db);
        return e;
    }
    db->is_open = true;
    *out = db;
    return BM_OK;
}
