/* outbox.c: the CloudWatch publish outbox (deltas not yet sent, oldest first), the claims that
 * carry rows through a PutMetricData call (claimed before it, deleted after CloudWatch
 * answered), and retention pruning in short batches. */
#include "storage/storage_int.h"

#include <stdio.h>
#include <string.h>

/* Reads the key strings and counters of a fetched row (columns 2..25 of BM__ST_OUTBOX_FETCH). */
static bool read_row(struct bm__arena *a, sqlite3_stmt *st, struct bm_db_outbox_row *r)
{
    struct bm_str *strs[5] = {&r->s.key.model_id, &r->s.key.profile_id, &r->s.key.source_region,
                              &r->s.key.inference_region, &r->s.key.operation};
    struct bm_stat *stats[4] = {&r->s.c.input, &r->s.c.output, &r->s.c.cache_read,
                                &r->s.c.cache_write};
    r->id = sqlite3_column_int64(st, 0);
    r->created_at = sqlite3_column_int64(st, 1);
    r->s.key.bucket = sqlite3_column_int64(st, 2);
    r->s.key.type = bm__ptype_from_code(sqlite3_column_int64(st, 3));
    for (int i = 0; i < 5; i++) {
        strs[i]->len = (size_t)sqlite3_column_bytes(st, 4 + i);
        strs[i]->p = bm__arena_copy(a, sqlite3_column_text(st, 4 + i), strs[i]->len);
        if (strs[i]->p == NULL)
            return false;
    }
    r->s.c.invocations = (uint64_t)sqlite3_column_int64(st, 9);
    for (int i = 0; i < 4; i++) {
        stats[i]->sum = (uint64_t)sqlite3_column_int64(st, 10 + 3 * i);
        stats[i]->min = (uint64_t)sqlite3_column_int64(st, 11 + 3 * i);
        stats[i]->max = (uint64_t)sqlite3_column_int64(st, 12 + 3 * i);
    }
    struct bm_cost cost = {(uint64_t)sqlite3_column_int64(st, 22),
                           (uint64_t)sqlite3_column_int64(st, 23)};
    r->s.c.cost = (struct bm_cost){0, 0};
    bm_cost_add(&r->s.c.cost, &cost);
    r->s.c.unpriced = (uint64_t)sqlite3_column_int64(st, 24);
    r->s.c.violations = (uint64_t)sqlite3_column_int64(st, 25);
    return true;
}

bm_err bm__sq_outbox_fetch(struct bm_db *db, int64_t after_id, size_t max_rows,
                           struct bm_db_outbox **out, struct bm_errmsg *em)
{
    struct bm__conn *c = NULL;
    struct bm__outbox *ob = bm_calloc(1, sizeof *ob);
    sqlite3_stmt *st;
    int rc = SQLITE_DONE;
    bm_err e = BM_E_NOMEM;
    size_t cap = max_rows < 256 ? (max_rows ? max_rows : 1) : 256;
    if (ob == NULL || (ob->pub.rows = bm_calloc(cap, sizeof(*ob->pub.rows))) == NULL) {
        bm_errmsg_set(em, e, "outbox fetch: out of memory");
        goto fail;
    }
    if ((e = bm__conn_get(db, &c, em)) != BM_OK ||
        (e = bm__stmt(c, BM__ST_OUTBOX_FETCH, &st, em)) != BM_OK)
        goto fail;
    sqlite3_bind_int64(st, 1, (int64_t)max_rows);
    sqlite3_bind_int64(st, 2, after_id);
    bool ok = true;
    while (ok && ob->pub.n < max_rows && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        /* Grown as rows come: a generous max_rows costs nothing when few rows are pending. */
        if (ob->pub.n == cap) {
            struct bm_db_outbox_row *rows = bm_realloc(ob->pub.rows, 2 * cap * sizeof *rows);
            ok = rows != NULL;
            if (!ok)
                break;
            ob->pub.rows = rows;
            cap *= 2;
        }
        ok = read_row(&ob->arena, st, &ob->pub.rows[ob->pub.n++]);
    }
    sqlite3_reset(st);
    if (!ok)
        e = bm_errmsg_set(em, BM_E_NOMEM, "outbox fetch: out of memory");
    else if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        e = bm__sql_err(c, rc, "outbox fetch", em);
fail:
    bm__conn_put(db, c);
    if (e != BM_OK) {
        bm_db_outbox_free(ob ? &ob->pub : NULL);
        return e;
    }
    *out = &ob->pub;
    return BM_OK;
}

void bm_db_outbox_free(struct bm_db_outbox *pub)
{
    if (pub == NULL)
        return;
    struct bm__outbox *ob = (struct bm__outbox *)pub;
    bm__arena_free(&ob->arena);
    bm_free(ob->pub.rows);
    bm_free(ob);
}

bm_err bm__sq_outbox_mark(struct bm_db *db, const int64_t *ids, size_t n,
                          enum bm_db_outbox_state state, uint64_t datums, uint64_t requests,
                          struct bm_errmsg *em)
{
    struct bm__conn *c = NULL;
    sqlite3_stmt *st;
    int64_t changed = 0;
    enum bm_db_counter ctr = BM_DB_C_PUBLISH_PUBLISHED;
    if (state == BM_DB_OUTBOX_DROPPED)
        ctr = BM_DB_C_PUBLISH_DROPPED;
    else if (state == BM_DB_OUTBOX_REJECTED)
        ctr = BM_DB_C_PUBLISH_REJECTED;
    else if (state != BM_DB_OUTBOX_PUBLISHED)
        return bm_errmsg_set(em, BM_E_INTERNAL, "outbox mark: state %d is no final state",
                             (int)state);
    bm_err e = bm__tx_begin(db, &c, em);
    if (e != BM_OK)
        return e;
    /* Published rows are deleted: CloudWatch has them, and keeping them would grow the table by
     * a row per series per object for the whole retention. Dropped and rejected rows are rare
     * and worth a look, so they stay (state set) until bm_db_prune. */
    enum bm__st id = state == BM_DB_OUTBOX_PUBLISHED ? BM__ST_OUTBOX_DELETE : BM__ST_OUTBOX_SET;
    for (size_t i = 0; i < n && e == BM_OK; i++) {
        if ((e = bm__stmt(c, id, &st, em)) != BM_OK)
            break;
        sqlite3_bind_int64(st, 1, ids[i]);
        if (id == BM__ST_OUTBOX_SET)
            sqlite3_bind_int(st, 2, (int)state);
        if ((e = bm__run(c, st, "outbox mark", em)) == BM_OK)
            changed += sqlite3_changes(c->h);
    }
    if (e == BM_OK && changed > 0)
        e = bm__counter_add(c, BM_DB_C_PUBLISH_PENDING, -changed, em);
    if (e == BM_OK && changed > 0 && ctr != BM_DB_C_PUBLISH_PUBLISHED)
        e = bm__counter_add(c, ctr, changed, em);
    if (e == BM_OK && datums > 0)
        e = bm__counter_add(c, BM_DB_C_PUBLISH_PUBLISHED, (int64_t)datums, em);
    if (e == BM_OK && requests > 0)
        e = bm__counter_add(c, BM_DB_C_PUBLISH_REQUESTS, (int64_t)requests, em);
    return bm__tx_end(db, c, e, em);
}

/* ---- Claims -------------------------------------------------------------------------------- */
struct claim_state {
    int64_t nreq, sent, attempt, rejected;
};

/* Reads the claim row of id inside the current transaction; BM_E_INTERNAL when there is none. */
static bm_err claim_get(struct bm__conn *c, const char *id, struct claim_state *out,
                        struct bm_errmsg *em)
{
    sqlite3_stmt *st;
    bm_err e = bm__stmt(c, BM__ST_CLAIM_GET, &st, em);
    if (e != BM_OK)
        return e;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = (struct claim_state){sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                                    sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3)};
    else if (rc == SQLITE_DONE)
        e = bm_errmsg_set(em, BM_E_INTERNAL, "outbox claim %.47s: no such claim", id);
    else
        e = bm__sql_err(c, rc, "read claim", em);
    sqlite3_reset(st);
    return e;
}

static bm_err claim_set(struct bm__conn *c, const char *id, const struct claim_state *cs,
                        struct bm_errmsg *em)
{
    sqlite3_stmt *st;
    bm_err e = bm__stmt(c, BM__ST_CLAIM_SET, &st, em);
    if (e != BM_OK)
        return e;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, cs->sent);
    sqlite3_bind_int64(st, 3, cs->attempt);
    sqlite3_bind_int64(st, 4, cs->rejected);
    return bm__run(c, st, "update claim", em);
}

/* Runs one of the by-claim statements (?1 = id, ?2 = state when given); *changed gets the
 * number of rows it changed. */
static bm_err claim_run(struct bm__conn *c, enum bm__st sid, const char *id, int state,
                        int64_t *changed, struct bm_errmsg *em)
{
    sqlite3_stmt *st;
    bm_err e = bm__stmt(c, sid, &st, em);
    if (e != BM_OK)
        return e;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    if (state >= 0)
        sqlite3_bind_int(st, 2, state);
    if ((e = bm__run(c, st, "claim rows", em)) == BM_OK && changed != NULL)
        *changed = sqlite3_changes(c->h);
    return e;
}

bm_err bm__sq_outbox_claim(struct bm_db *db, const char *claim, const int64_t *ids, size_t n,
                           size_t nreq, int64_t now, struct bm_errmsg *em)
{
    struct bm__conn *c = NULL;
    sqlite3_stmt *st;
    if (n == 0 || nreq == 0 || strlen(claim) >= sizeof(((struct bm_db_claim *)0)->id))
        return bm_errmsg_set(em, BM_E_INTERNAL, "outbox claim: empty, or id too long");
    bm_err e = bm__tx_begin(db, &c, em);
    if (e != BM_OK)
        return e;
    if ((e = bm__stmt(c, BM__ST_CLAIM_PUT, &st, em)) == BM_OK) {
        sqlite3_bind_text(st, 1, claim, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 2, (int64_t)nreq);
        sqlite3_bind_int64(st, 3, now);
        e = bm__run(c, st, "insert claim", em);
    }
    for (size_t i = 0; i < n && e == BM_OK; i++) {
        if ((e = bm__stmt(c, BM__ST_OUTBOX_CLAIM, &st, em)) != BM_OK)
            break;
        sqlite3_bind_int64(st, 1, ids[i]);
        sqlite3_bind_text(st, 2, claim, -1, SQLITE_TRANSIENT);
        if ((e = bm__run(c, st, "claim row", em)) == BM_OK && sqlite3_changes(c->h) != 1)
            e = bm_errmsg_set(em, BM_E_INTERNAL, "outbox claim: row %lld is not pending",
                              (long long)ids[i]);
    }
    return bm__tx_end(db, c, e, em);
}

/* The claim's state, checked to be at request req: calls are answered in order, so any other
 * request is a bug in the caller. */
static bm_err claim_next(struct bm__conn *c, const char *claim, size_t req, struct claim_state *cs,
                         struct bm_errmsg *em)
{
    bm_err e = claim_get(c, claim, cs, em);
    if (e == BM_OK && cs->sent != (int64_t)req)
        e = bm_errmsg_set(em, BM_E_INTERNAL, "outbox claim %.47s: request %zu is not next (%lld)",
                          claim, req, (long long)cs->sent);
    return e;
}

bm_err bm__sq_outbox_send_begin(struct bm_db *db, const char *claim, size_t req, int *attempt,
                                struct bm_errmsg *em)
{
    struct bm__conn *c = NULL;
    struct claim_state cs;
    bm_err e = bm__tx_begin(db, &c, em);
    if (e != BM_OK)
        return e;
    e = claim_next(c, claim, req, &cs, em);
    if (e == BM_OK) {
        cs.attempt++;
        e = claim_set(c, claim, &cs, em);
    }
    if ((e = bm__tx_end(db, c, e, em)) == BM_OK && attempt != NULL)
        *attempt = (int)cs.attempt;
    return e;
}

bm_err bm__sq_outbox_send_done(struct bm_db *db, const char *claim, size_t req, bool accepted,
                               uint64_t datums, bool *finished, struct bm_errmsg *em)
{
    struct bm__conn *c = NULL;
    struct claim_state cs;
    int64_t changed = 0;
    bool done = false;
    bm_err e = bm__tx_begin(db, &c, em);
    if (e != BM_OK)
        return e;
    e = claim_next(c, claim, req, &cs, em);
    if (e == BM_OK) {
        cs.sent++;
        cs.attempt = 0;
        cs.rejected += !accepted;
        done = cs.sent >= cs.nreq;
        e = done ? claim_run(c, BM__ST_CLAIM_DELETE, claim, -1, NULL, em)
                 : claim_set(c, claim, &cs, em);
    }
    if (e == BM_OK && accepted && datums > 0)
        e = bm__counter_add(c, BM_DB_C_PUBLISH_PUBLISHED, (int64_t)datums, em);
    if (e == BM_OK && accepted)
        e = bm__counter_add(c, BM_DB_C_PUBLISH_REQUESTS, 1, em);
    /* The claim's rows go only when all of its calls were answered: until then a crash must
     * find them to re-plan the calls still to send. Published rows are deleted (CloudWatch has
     * them); rows of a claim with a refused call stay for inspection, as REJECTED. */
    if (e == BM_OK && done && cs.rejected == 0)
        e = claim_run(c, BM__ST_CLAIM_ROWS_DELETE, claim, -1, &changed, em);
    else if (e == BM_OK && done)
        e = claim_run(c, BM__ST_CLAIM_ROWS_SET, claim, BM_DB_OUTBOX_REJECTED, &changed, em);
    if (e == BM_OK && changed > 0)
        e = bm__counter_add(c, BM_DB_C_PUBLISH_PENDING, -changed, em);
    if (e == BM_OK && changed > 0 && cs.rejected > 0)
        e = bm__counter_add(c, BM_DB_C_PUBLISH_REJECTED, changed, em);
    if ((e = bm__tx_end(db, c, e, em)) == BM_OK && finished != NULL)
        *finished = done;
    return e;
}

bm_err bm__sq_outbox_send_failed(struct bm_db *db, const char *claim, size_t req, bool *released,
                                 struct bm_errmsg *em)
{
    struct bm__conn *c = NULL;
    struct claim_state cs;
    bm_err e = bm__tx_begin(db, &c, em);
    if (e != BM_OK)
        return e;
    e = claim_next(c, claim, req, &cs, em);
    bool release = e == BM_OK && cs.sent == 0;
    if (release) {
        e = claim_run(c, BM__ST_CLAIM_ROWS_SET, claim, BM_DB_OUTBOX_PENDING, NULL, em);
        if (e == BM_OK)
            e = claim_run(c, BM__ST_CLAIM_DELETE, claim, -1, NULL, em);
    } else if (e == BM_OK) {
        cs.attempt = 0;
        e = claim_set(c, claim, &cs, em);
    }
    if ((e = bm__tx_end(db, c, e, em)) == BM_OK && released != NULL)
        *released = release;
    return e;
}

void bm_db_claims_free(struct bm_db_claims *cl)
{
    if (cl == NULL)
        return;
    for (size_t i = 0; i < cl->n; i++)
        bm_db_outbox_free(cl->v[i].rows);
    bm_free(cl->v);
    bm_free(cl);
}

/* Reads the rows of claim id into a new batch (one read transaction with the claim list). */
static bm_err claimed_rows(struct bm__conn *c, const char *id, struct bm_db_outbox **out,
                           struct bm_errmsg *em)
{
    struct bm__outbox *ob = bm_calloc(1, sizeof *ob);
    sqlite3_stmt *st;
    size_t cap = 0;
    int rc = SQLITE_DONE;
    bm_err e = ob == NULL ? BM_E_NOMEM : bm__stmt(c, BM__ST_OUTBOX_CLAIMED, &st, em);
    if (e != BM_OK)
        goto fail;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    while (e == BM_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (ob->pub.n == cap) {
            size_t ncap = cap ? cap * 2 : 256;
            struct bm_db_outbox_row *rows = bm_realloc(ob->pub.rows, ncap * sizeof *rows);
            if (rows == NULL) {
                e = BM_E_NOMEM;
                break;
            }
            ob->pub.rows = rows;
            cap = ncap;
        }
        if (!read_row(&ob->arena, st, &ob->pub.rows[ob->pub.n++]))
            e = BM_E_NOMEM;
    }
    sqlite3_reset(st);
    if (e == BM_OK && rc != SQLITE_DONE)
        e = bm__sql_err(c, rc, "read claimed rows", em);
fail:
    if (e == BM_E_NOMEM)
        bm_errmsg_set(em, e, "read claimed rows: out of memory");
    if (e != BM_OK) {
        bm_db_outbox_free(ob ? &ob->pub : NULL);
        return e;
    }
    *out = &ob->pub;
    return BM_OK;
}

bm_err bm__sq_outbox_claims(struct bm_db *db, struct bm_db_claims **out, struct bm_errmsg *em)
{
    struct bm__conn *c = NULL;
    sqlite3_stmt *st;
    size_t cap = 0;
    int rc = SQLITE_DONE;
    struct bm_db_claims *cl = bm_calloc(1, sizeof *cl);
    if (cl == NULL)
        return bm_errmsg_set(em, BM_E_NOMEM, "read claims: out of memory");
    bm_err e = bm__conn_get(db, &c, em);
    /* One snapshot for the list and the rows: a claim ending meanwhile is seen whole or not. */
    if (e == BM_OK && (e = bm__stmt(c, BM__ST_BEGIN_READ, &st, em)) == BM_OK)
        e = bm__run(c, st, "begin read", em);
    bool in_tx = e == BM_OK;
    if (e == BM_OK && (e = bm__stmt(c, BM__ST_CLAIM_LIST, &st, em)) == BM_OK) {
        while (e == BM_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            if (cl->n == cap) {
                size_t ncap = cap ? cap * 2 : 4;
                struct bm_db_claim *v = bm_realloc(cl->v, ncap * sizeof *v);
                if (v == NULL) {
                    e = bm_errmsg_set(em, BM_E_NOMEM, "read claims: out of memory");
                    break;
                }
                cl->v = v;
                cap = ncap;
            }
            struct bm_db_claim *x = &cl->v[cl->n++];
            memset(x, 0, sizeof *x);
            const char *id = (const char *)sqlite3_column_text(st, 0);
            snprintf(x->id, sizeof x->id, "%s", id ? id : "");
            x->nreq = (size_t)sqlite3_column_int64(st, 1);
            x->sent = (size_t)sqlite3_column_int64(st, 2);
            x->attempt = (int)sqlite3_column_int64(st, 3);
        }
        sqlite3_reset(st);
        if (e == BM_OK && rc != SQLITE_DONE)
            e = bm__sql_err(c, rc, "read claims", em);
    }
    for (size_t i = 0; e == BM_OK && i < cl->n; i++)
        e = claimed_rows(c, cl->v[i].id, &cl->v[i].rows, em);
    if (in_tx && bm__stmt(c, BM__ST_COMMIT, &st, NULL) == BM_OK)
        bm__run(c, st, "end read", NULL);
    bm__conn_put(db, c);
    if (e != BM_OK) {
        bm_db_claims_free(cl);
        return e;
    }
    *out = cl;
    return BM_OK;
}

/* ---- Retention ---------------------------------------------------------------------------- */
/* Each statement deletes at most ?2 rows older than ?1; a batch is its own transaction. */
static const char *const prune_sql[] = {
    "DELETE FROM agg_hour WHERE (bucket, model, ptype, profile, src, inf, op) IN (SELECT bucket, "
    "model, ptype, profile, src, inf, op FROM agg_hour WHERE bucket < ?1 LIMIT ?2)",
    "DELETE FROM agg_day WHERE (bucket, model, ptype, profile, src, inf, op) IN (SELECT bucket, "
    "model, ptype, profile, src, inf, op FROM agg_day WHERE bucket < ?1 LIMIT ?2)",
    "DELETE FROM processed WHERE (bucket, key, version) IN (SELECT bucket, key, version FROM "
    "processed WHERE processed_at < ?1 LIMIT ?2)",
    "DELETE FROM failure WHERE (bucket, key, version) IN (SELECT bucket, key, version FROM "
    "failure WHERE last_at < ?1 LIMIT ?2)",
    /* Finished rows only: claimed ones (state 4) are still to be sent. */
    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE state <> 0 AND state <> 4 AND "
    "created_at < ?1 LIMIT ?2)",
};
#define N_PRUNE ((int)(sizeof prune_sql / sizeof prune_sql[0]))
/* Rows per transaction: a few milliseconds of work, so a commit waits at most that long. */
#define PRUNE_BATCH 2000

/* The minute table's batch: the bucket at which a batch of at least ?2 + 1 rows before ?1
 * ends; then, for the rows before ?1 (the batch's end), their subtraction from the all-time
 * rollup (UPDATE ... FROM, SQLite 3.33) and their deletion; last, the rollup rows of series
 * that have no minute row left. The unary plus in GROUP BY +model keeps the planner, which has
 * no statistics, from choosing a scan of all of agg_model for its order over the bucket range
 * (EXPLAIN QUERY PLAN showed it for a one-sided range). */
static const char *const prune_min_sql[] = {
    "SELECT bucket FROM agg WHERE bucket < ?1 ORDER BY bucket LIMIT 1 OFFSET ?2",
    "UPDATE agg_all SET n = agg_all.n - d.n, i_s = agg_all.i_s - d.i_s, "
    "o_s = agg_all.o_s - d.o_s, r_s = agg_all.r_s - d.r_s, w_s = agg_all.w_s - d.w_s, "
    "c_u = agg_all.c_u - d.c_u, c_p = agg_all.c_p - d.c_p, np = agg_all.np - d.np, "
    "rv = agg_all.rv - d.rv "
    "FROM (SELECT model, ptype, profile, src, inf, op, sum(n) AS n, sum(i_s) AS i_s, "
    "sum(o_s) AS o_s, sum(r_s) AS r_s, sum(w_s) AS w_s, sum(c_u) AS c_u, sum(c_p) AS c_p, "
    "sum(np) AS np, sum(rv) AS rv, a1, a2, a3 FROM agg WHERE bucket < ?1 "
    "GROUP BY +model, 2, 3, 4, 5, 6, a1, a2, a3) AS d WHERE agg_all.model = d.model AND "
    "agg_all.ptype = d.ptype "
    "AND agg_all.profile = d.profile AND agg_all.src = d.src AND agg_all.inf = d.inf "
    "AND agg_all.op = d.op AND agg_all.a1 = d.a1 AND agg_all.a2 = d.a2 AND agg_all.a3 = d.a3",
    "DELETE FROM agg WHERE bucket < ?1",
    "DELETE FROM agg_all WHERE n = 0",
};

static int64_t floor_to(int64_t t, int64_t width)
{
    return t - ((t % width) + width) % width;
}

/* Records the cutoff first, in its own transaction: queries clamp to it from then on, so none
 * sees a half-pruned window. */
static bm_err set_pruned_before(struct bm_db *db, int64_t cutoff, struct bm_errmsg *em)
{
    struct bm__conn *c = NULL;
    sqlite3_stmt *st;
    if (cutoff <= atomic_load(&db->pruned_before))
        return BM_OK;
    bm_err e = bm__tx_begin(db, &c, em);
    if (e != BM_OK)
        return e;
    if ((e = bm__stmt(c, BM__ST_META_SET, &st, em)) == BM_OK) {
        sqlite3_bind_text(st, 1, "pruned_before", -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, cutoff);
        e = bm__run(c, st, "record prune cutoff", em);
    }
    if ((e = bm__tx_end(db, c, e, em)) == BM_OK)
        atomic_store(&db->pruned_before, cutoff);
    return e;
}

/* Runs sql once on c with ?1 = a and ?2 = b where the statement has them. When col0 is given,
 * *has_row tells whether a row came back and *col0 gets its first column. Pruning is rare, so
 * statements are prepared per batch rather than kept on every connection. */
static bm_err run_once(struct bm__conn *c, const char *sql, int64_t a, int64_t b, bool *has_row,
                       int64_t *col0, struct bm_errmsg *em)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->h, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        int np = sqlite3_bind_parameter_count(st);
        if (np >= 1)
            sqlite3_bind_int64(st, 1, a);
        if (np >= 2)
            sqlite3_bind_int64(st, 2, b);
        rc = sqlite3_step(st);
    }
    if (col0 != NULL) {
        *has_row = rc == SQLITE_ROW;
        if (*has_row)
            *col0 = sqlite3_column_int64(st, 0);
    }
    bm_err e = rc == SQLITE_ROW || rc == SQLITE_DONE ? BM_OK : bm__sql_err(c, rc, "prune", em);
    sqlite3_finalize(st);
    return e;
}

/* Runs one prune statement in batches, each its own transaction (the writer lock is released
 * between them so commits interleave), until a batch comes back short. */
static bm_err prune_one(struct bm_db *db, const char *sql, int64_t cutoff, uint64_t *deleted,
                        struct bm_errmsg *em)
{
    int changed = PRUNE_BATCH;
    bm_err e = BM_OK;
    while (e == BM_OK && changed >= PRUNE_BATCH) {
        struct bm__conn *c = NULL;
        if ((e = bm__tx_begin(db, &c, em)) != BM_OK)
            break;
        e = run_once(c, sql, cutoff, PRUNE_BATCH, NULL, NULL, em);
        changed = e == BM_OK ? sqlite3_changes(c->h) : 0;
        if ((e = bm__tx_end(db, c, e, em)) == BM_OK)
            *deleted += (uint64_t)changed;
    }
    return e;
}

/* Deletes the minute rows before cutoff in batches that end after a whole bucket, each batch
 * subtracting exactly what it deletes from agg_all in its own transaction, so that the
 * all-time rollup equals the sum of the stored minute rows after every commit, a crash
 * included. The last batch also drops the rollup rows left at zero. */
static bm_err prune_minutes(struct bm_db *db, int64_t cutoff, uint64_t *deleted,
                            struct bm_errmsg *em)
{
    bool more = true;
    bm_err e = BM_OK;
    while (e == BM_OK && more) {
        struct bm__conn *c = NULL;
        int64_t end = cutoff;
        int changed = 0;
        if ((e = bm__tx_begin(db, &c, em)) != BM_OK)
            break;
        e = run_once(c, prune_min_sql[0], cutoff, PRUNE_BATCH - 1, &more, &end, em);
        if (e == BM_OK && more)
            end++; /* the batch takes that bucket whole: before cutoff, so no overflow */
        if (e == BM_OK)
            e = run_once(c, prune_min_sql[1], end, 0, NULL, NULL, em);
        if (e == BM_OK && (e = run_once(c, prune_min_sql[2], end, 0, NULL, NULL, em)) == BM_OK)
            changed = sqlite3_changes(c->h);
        if (e == BM_OK && !more)
            e = run_once(c, prune_min_sql[3], 0, 0, NULL, NULL, em);
        if ((e = bm__tx_end(db, c, e, em)) == BM_OK)
            *deleted += (uint64_t)changed;
    }
    return e;
}

/* What pruning processed rows means for exactly-once: the processed row is the only memory
 * that an object was counted. If SQS (or anyone) delivers an object again after its row was
 * pruned, bm_db_is_processed says no, the object is fetched again and its records are counted
 * a second time, in the aggregates and in CloudWatch. SQS keeps a message at most 14 days
 * (redeliveries after a failed delete, a visibility timeout or a DLQ redrive all happen within
 * that), so METRICS_RETENTION_DAYS must stay above 14 (the default is 30) for redeliveries to
 * remain duplicates; a manual backfill of old keys after that window counts them again. */
bm_err bm__sq_prune(struct bm_db *db, int64_t cutoff, struct bm_db_prune_stats *stats,
                    struct bm_errmsg *em)
{
    struct bm_db_prune_stats s = {0};
    /* Rollup rows go only once their whole hour or day is before the cutoff; the clamp keeps
     * queries from reading the older part of the one that straddles it. */
    const int64_t cut[N_PRUNE] = {floor_to(cutoff, 3600), floor_to(cutoff, 86400), cutoff, cutoff,
                                  cutoff};
    uint64_t rollups = 0; /* not reported: the minute rows are what was kept */
    uint64_t *count[N_PRUNE] = {&rollups, &rollups, &s.processed, &s.failures, &s.outbox};
    bm_err e = set_pruned_before(db, cutoff, em);
    if (e == BM_OK)
        e = prune_minutes(db, cutoff, &s.aggregates, em);
    for (int i = 0; i < N_PRUNE && e == BM_OK; i++)
        e = prune_one(db, prune_sql[i], cut[i], count[i], em);
    if (stats != NULL)
        *stats = s;
    return e;
}
