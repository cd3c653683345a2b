/* store.c: the public bm_db_* operations as thin dispatchers to the backend bm_db_open chose by
 * BMAS_DB (storage_int.h's struct bm__store_ops), and what the backends share: the handle's
 * common fields and the write health behind /healthz. */
#include "storage/pg_int.h"
#include "storage/storage_int.h"

#include <string.h>

struct bm_db *bm__db_new(const struct bm_db_options *opt)
{
    struct bm_db *db = bm_calloc(1, sizeof *db);
    if (db == NULL)
        return NULL;
    pthread_mutex_init(&db->hlock, NULL);
    atomic_store(&db->pruned_before, INT64_MIN);
    if (opt != NULL)
        db->opt = *opt;
    return db;
}

void bm__db_free(struct bm_db *db)
{
    if (db == NULL)
        return;
    pthread_mutex_destroy(&db->hlock);
    bm_free(db);
}

void bm__health_note(struct bm_db *db, bm_err rc, const struct bm_errmsg *em)
{
    if (rc != BM_OK && rc != BM_E_STORAGE_BUSY && rc != BM_E_STORAGE)
        return;
    pthread_mutex_lock(&db->hlock);
    if (rc == BM_OK) {
        db->herr = BM_OK;
    } else {
        if (db->herr == BM_OK)
            db->hsince = bm_time_now();
        db->herr = rc;
        if (em != NULL && em->text[0] != '\0')
            db->hmsg = *em;
        else
            bm_errmsg_set(&db->hmsg, rc, "%s", bm_err_str(rc));
    }
    pthread_mutex_unlock(&db->hlock);
}

void bm__deferred_take(struct bm_db *db, uint64_t taken[BM_DB_C__COUNT])
{
    for (int i = 0; i < BM_DB_C__COUNT; i++)
        taken[i] = atomic_exchange(&db->deferred[i], 0);
}

void bm__deferred_give_back(struct bm_db *db, const uint64_t taken[BM_DB_C__COUNT])
{
    for (int i = 0; i < BM_DB_C__COUNT; i++)
        if (taken[i] != 0)
            atomic_fetch_add(&db->deferred[i], taken[i]);
}

void bm__deferred_add_to(struct bm_db *db, struct bm_db_status *s)
{
    for (int i = 0; i < BM_DB_C__COUNT; i++)
        s->c[i] += atomic_load_explicit(&db->deferred[i], memory_order_relaxed);
}

bm_err bm_db_write_health(struct bm_db *db, int64_t *since, struct bm_errmsg *em)
{
    pthread_mutex_lock(&db->hlock);
    bm_err e = db->herr;
    if (e != BM_OK) {
        if (since != NULL)
            *since = db->hsince;
        if (em != NULL)
            *em = db->hmsg;
    }
    pthread_mutex_unlock(&db->hlock);
    return e;
}

/* The first operation ops lacks, or NULL when it has them all. */
static const char *missing_op(const struct bm__store_ops *ops)
{
#define X(op)                                                                                      \
    if (ops->op == NULL)                                                                           \
        return #op;
    BM__STORE_OP_NAMES
#undef X
    return NULL;
}

bm_err bm_db_open(const char *path, const struct bm_db_options *opt, struct bm_db **out,
                  struct bm_errmsg *em)
{
    struct bm_db *db = NULL;
    bm_err e =
        bm__pg_url_is(path) ? bm__pgs_open(path, opt, &db, em) : bm__sq_open(path, opt, &db, em);
    if (e != BM_OK)
        return e;
    const char *missing = missing_op(db->ops);
    if (missing != NULL) {
        bm_errmsg_set(em, BM_E_INTERNAL, "%s store: operation %s missing", db->ops->name, missing);
        db->ops->close(db);
        return BM_E_INTERNAL;
    }
    *out = db;
    return BM_OK;
}

const char *bm_db_describe(const struct bm_db *db)
{
    return db->pg != NULL ? bm__pg_desc(db->pg) : db->path;
}

void bm_db_close(struct bm_db *db)
{
    if (db != NULL)
        db->ops->close(db);
}

/* bm_db_open checked that db's backend has every operation. */
#define CALL(op, ...) db->ops->op(db, __VA_ARGS__)

bm_err bm_db_commit_object(struct bm_db *db, const struct bm_db_object *obj, const char *message_id,
                           uint64_t size, const struct bm_agg *delta,
                           const struct bm_ingest_stats *stats, int64_t now,
                           enum bm_db_commit_result *result, struct bm_errmsg *em)
{
    return CALL(commit_object, obj, message_id, size, delta, stats, now, result, em);
}

bm_err bm_db_is_processed(struct bm_db *db, const struct bm_db_object *obj, bool *out,
                          struct bm_errmsg *em)
{
    return CALL(is_processed, obj, out, em);
}

bm_err bm_db_record_failure(struct bm_db *db, const struct bm_db_object *obj, bm_err code,
                            const char *message, int64_t now, long max_attempts, long *attempts,
                            bool *quarantined, struct bm_errmsg *em)
{
    return CALL(record_failure, obj, code, message, now, max_attempts, attempts, quarantined, em);
}

bm_err bm_db_is_quarantined(struct bm_db *db, const struct bm_db_object *obj, bool *out,
                            struct bm_errmsg *em)
{
    return CALL(is_quarantined, obj, out, em);
}

bm_err bm_db_quarantined(struct bm_db *db, size_t max, struct bm_db_failures **out,
                         struct bm_errmsg *em)
{
    return CALL(quarantined, max, out, em);
}

bm_err bm_db_flush_counters(struct bm_db *db, struct bm_errmsg *em)
{
    return CALL(flush_counters, em);
}

bm_err bm_db_status(struct bm_db *db, struct bm_db_status *out, struct bm_errmsg *em)
{
    return CALL(status, out, em);
}

bm_err bm_db_outbox_pending(struct bm_db *db, uint64_t *out, struct bm_errmsg *em)
{
    return CALL(outbox_pending, out, em);
}

bm_err bm_db_outbox_fetch(struct bm_db *db, int64_t after_id, size_t max_rows,
                          struct bm_db_outbox **out, struct bm_errmsg *em)
{
    return CALL(outbox_fetch, after_id, max_rows, out, em);
}

bm_err bm_db_outbox_mark(struct bm_db *db, const int64_t *ids, size_t n,
                         enum bm_db_outbox_state state, uint64_t datums, uint64_t requests,
                         struct bm_errmsg *em)
{
    return CALL(outbox_mark, ids, n, state, datums, requests, em);
}

bm_err bm_db_outbox_claim(struct bm_db *db, const char *claim, const int64_t *ids, size_t n,
                          size_t nreq, int64_t now, struct bm_errmsg *em)
{
    return CALL(outbox_claim, claim, ids, n, nreq, now, em);
}

bm_err bm_db_outbox_send_begin(struct bm_db *db, const char *claim, size_t req, int *attempt,
                               struct bm_errmsg *em)
{
    return CALL(outbox_send_begin, claim, req, attempt, em);
}

bm_err bm_db_outbox_send_done(struct bm_db *db, const char *claim, size_t req, bool accepted,
                              uint64_t datums, bool *finished, struct bm_errmsg *em)
{
    return CALL(outbox_send_done, claim, req, accepted, datums, finished, em);
}

bm_err bm_db_outbox_send_failed(struct bm_db *db, const char *claim, size_t req, bool *released,
                                struct bm_errmsg *em)
{
    return CALL(outbox_send_failed, claim, req, released, em);
}

bm_err bm_db_outbox_claims(struct bm_db *db, struct bm_db_claims **out, struct bm_errmsg *em)
{
    return CALL(outbox_claims, out, em);
}

bm_err bm_db_prune(struct bm_db *db, int64_t cutoff, struct bm_db_prune_stats *stats,
                   struct bm_errmsg *em)
{
    return CALL(prune, cutoff, stats, em);
}

bm_err bm_db_cw_series_recent(struct bm_db *db, int64_t since, bm_db_cw_series_fn fn, void *ctx,
                              struct bm_errmsg *em)
{
    return CALL(cw_series_recent, since, fn, ctx, em);
}

bm_err bm_db_cw_series_record(struct bm_db *db, const struct bm_db_cw_series *v, size_t n,
                              bool held, int64_t now, int64_t month_start, struct bm_errmsg *em)
{
    return CALL(cw_series_record, v, n, held, now, month_start, em);
}

bm_err bm_db_cw_budget(struct bm_db *db, int64_t since, int64_t month_start, bm_db_cw_set_fn fn,
                       void *ctx, struct bm_db_cw_budget *out, struct bm_errmsg *em)
{
    return CALL(cw_budget, since, month_start, fn, ctx, out, em);
}

bm_err bm_db_query(struct bm_db *db, const struct bm_db_query *q, struct bm_agg **out,
                   struct bm_errmsg *em)
{
    return CALL(query, q, out, em);
}

bm_err bm_db_publisher_lease(struct bm_db *db, const char *instance_id, int64_t ttl_ms, bool *held,
                             char *holder, size_t cap, struct bm_errmsg *em)
{
    return CALL(publisher_lease, instance_id, ttl_ms, held, holder, cap, em);
}

bm_err bm_db_publisher_release(struct bm_db *db, const char *instance_id, struct bm_errmsg *em)
{
    return CALL(publisher_release, instance_id, em);
}

const char *bm_db_store_kind(const struct bm_db *db)
{
    return db->pg != NULL ? "postgresql" : "sqlite";
}
