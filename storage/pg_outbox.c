/* pg_outbox.c: the CloudWatch publish outbox on the PostgreSQL store: pending rows, marks, and
 * the claims that carry rows through a PutMetricData call, with outbox.c's contracts. Each
 * call is one transaction; the claim row is locked (FOR UPDATE) before it is read, so two
 * callers on one claim, from any instance, take turns. */
#include "storage/pg_int.h"
#include "storage/storage_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The columns read_row takes, in its order (attribution is not published, as in SQLite). */
#define ROW_COLS                                                                                   \
    "id, created_at, bucket, ptype, model, profile, src, inf, op, n, i_s, i_mn, i_mx, o_s, "       \
    "o_mn, o_mx, r_s, r_mn, r_mx, w_s, w_mn, w_mx, c_u, c_p, np, rv"

static int64_t i64(PGresult *r, int row, int col)
{
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static bool read_row(struct bm__arena *a, PGresult *r, int i, struct bm_db_outbox_row *o)
{
    struct bm_str *strs[5] = {&o->s.key.model_id, &o->s.key.profile_id, &o->s.key.source_region,
                              &o->s.key.inference_region, &o->s.key.operation};
    struct bm_stat *stats[4] = {&o->s.c.input, &o->s.c.output, &o->s.c.cache_read,
                                &o->s.c.cache_write};
    memset(o, 0, sizeof *o);
    o->id = i64(r, i, 0);
    o->created_at = i64(r, i, 1);
    o->s.key.bucket = i64(r, i, 2);
    o->s.key.type = bm__ptype_from_code(i64(r, i, 3));
    for (int j = 0; j < 5; j++) {
        strs[j]->len = (size_t)PQgetlength(r, i, 4 + j);
        strs[j]->p = bm__arena_copy(a, PQgetvalue(r, i, 4 + j), strs[j]->len);
        if (strs[j]->p == NULL)
            return false;
    }
    o->s.c.invocations = (uint64_t)i64(r, i, 9);
    for (int j = 0; j < 4; j++)
        *stats[j] =
            (struct bm_stat){(uint64_t)i64(r, i, 10 + 3 * j), (uint64_t)i64(r, i, 11 + 3 * j),
                             (uint64_t)i64(r, i, 12 + 3 * j)};
    struct bm_cost cost = {(uint64_t)i64(r, i, 22), (uint64_t)i64(r, i, 23)};
    bm_cost_add(&o->s.c.cost, &cost);
    o->s.c.unpriced = (uint64_t)i64(r, i, 24);
    o->s.c.violations = (uint64_t)i64(r, i, 25);
    return true;
}

/* The rows of r as a new batch into *out (the caller's bm_db_outbox_free). */
static bm_err to_batch(PGresult *r, struct bm_db_outbox **out, struct bm_errmsg *em)
{
    struct bm__outbox *ob = bm_calloc(1, sizeof *ob);
    size_t n = (size_t)PQntuples(r);
    bool ok = ob != NULL && (ob->pub.rows = bm_calloc(n ? n : 1, sizeof *ob->pub.rows)) != NULL;
    for (size_t i = 0; ok && i < n; i++)
        ok = read_row(&ob->arena, r, (int)i, &ob->pub.rows[ob->pub.n++]);
    if (!ok) {
        bm_db_outbox_free(ob ? &ob->pub : NULL);
        return bm_errmsg_set(em, BM_E_NOMEM, "outbox: out of memory");
    }
    *out = &ob->pub;
    return BM_OK;
}

struct fetch {
    int64_t after_id;
    size_t max_rows;
    struct bm_db_outbox *out;
};

static bm_err fetch_fn(struct bm__pg_tx *t, void *ctx, struct bm_errmsg *em)
{
    struct fetch *f = ctx;
    struct bm__pg_params p = {0};
    PGresult *r = NULL;
    bm__pg_p_int(&p, f->after_id);
    bm__pg_p_int(&p, (int64_t)f->max_rows);
    bm_err e = bm__pg_exec(t,
                           "SELECT " ROW_COLS " FROM outbox WHERE state = 0 AND id > $1::bigint "
                           "ORDER BY id LIMIT $2::bigint",
                           &p, &r, NULL, em);
    if (e != BM_OK)
        return e;
    bm_db_outbox_free(f->out); /* an earlier attempt's */
    f->out = NULL;
    e = to_batch(r, &f->out, em);
    PQclear(r);
    return e;
}

bm_err bm__pg_outbox_fetch(struct bm_pg *pg, int64_t after_id, size_t max_rows,
                           struct bm_db_outbox **out, struct bm_errmsg *em)
{
    struct fetch f = {after_id, max_rows, NULL};
    bm_err e = bm__pg_tx_run(pg, NULL, fetch_fn, &f, em);
    if (e != BM_OK) {
        bm_db_outbox_free(f.out);
        return e;
    }
    *out = f.out;
    return BM_OK;
}

struct mark {
    const int64_t *ids;
    size_t n;
    enum bm_db_outbox_state state;
    enum bm_db_counter ctr;
    uint64_t datums, requests;
};

static bm_err mark_fn(struct bm__pg_tx *t, void *ctx, struct bm_errmsg *em)
{
    struct mark *m = ctx;
    int64_t changed = 0;
    struct bm__pg_params p = {0};
    struct bm_buf ids;
    bm_buf_init(&ids, (size_t)1 << 30);
    bm_err e = bm__pg_p_ints(&p, m->ids, m->n, &ids, em);
    /* Published rows are deleted; dropped and rejected rows stay (state set) until pruned. */
    if (e == BM_OK && m->state == BM_DB_OUTBOX_PUBLISHED) {
        e = bm__pg_exec(t, "DELETE FROM outbox WHERE id = ANY($1::bigint[]) AND state = 0", &p,
                        NULL, &changed, em);
    } else if (e == BM_OK) {
        bm__pg_p_int(&p, (int64_t)m->state);
        e = bm__pg_exec(t,
                        "UPDATE outbox SET state = $2::smallint WHERE id = ANY($1::bigint[]) AND "
                        "state = 0",
                        &p, NULL, &changed, em);
    }
    bm_buf_cleanup(&ids);
    if (e == BM_OK && changed > 0)
        e = bm__pg_counter_add(t, BM_DB_C_PUBLISH_PENDING, -changed, em);
    if (e == BM_OK && changed > 0 && m->ctr != BM_DB_C_PUBLISH_PUBLISHED)
        e = bm__pg_counter_add(t, m->ctr, changed, em);
    if (e == BM_OK && m->datums > 0)
        e = bm__pg_counter_add(t, BM_DB_C_PUBLISH_PUBLISHED, (int64_t)m->datums, em);
    if (e == BM_OK && m->requests > 0)
        e = bm__pg_counter_add(t, BM_DB_C_PUBLISH_REQUESTS, (int64_t)m->requests, em);
    return e;
}

bm_err bm__pg_outbox_mark(struct bm_pg *pg, const int64_t *ids, size_t n,
                          enum bm_db_outbox_state state, uint64_t datums, uint64_t requests,
                          struct bm_errmsg *em)
{
    struct mark m = {ids, n, state, BM_DB_C_PUBLISH_PUBLISHED, datums, requests};
    if (state == BM_DB_OUTBOX_DROPPED)
        m.ctr = BM_DB_C_PUBLISH_DROPPED;
    else if (state == BM_DB_OUTBOX_REJECTED)
        m.ctr = BM_DB_C_PUBLISH_REJECTED;
    else if (state != BM_DB_OUTBOX_PUBLISHED)
        return bm_errmsg_set(em, BM_E_INTERNAL, "outbox mark: state %d is no final state",
                             (int)state);
    return bm__pg_tx_run(pg, "READ COMMITTED", mark_fn, &m, em);
}

/* ---- Claims ---------------------------------------------------------------------------------- */

struct claim {
    const char *id;
    const int64_t *ids;
    size_t n, nreq, req;
    int64_t now;
    bool accepted;
    uint64_t datums;
    /* The claim row, as read (locked) and as written back. */
    int64_t nreq_, sent, attempt, rejected;
    bool finished, released;
};

static bm_err claim_fn(struct bm__pg_tx *t, void *ctx, struct bm_errmsg *em)
{
    struct claim *c = ctx;
    struct bm__pg_params p = {0};
    bm__pg_p_str(&p, bm_str_of(c->id));
    bm__pg_p_int(&p, (int64_t)c->nreq);
    bm__pg_p_int(&p, c->now);
    bm_err e = bm__pg_exec(t,
                           "INSERT INTO outbox_claim (id, nreq, sent, attempt, rejected, "
                           "created_at) VALUES ($1, $2::bigint, 0, 0, 0, $3::bigint)",
                           &p, NULL, NULL, em);
    /* Every row in one statement; all of them must have been pending. */
    struct bm_buf ids;
    int64_t rows = 0;
    bm_buf_init(&ids, (size_t)1 << 30);
    p.n = 1; /* $1, the claim's id, stays */
    if (e == BM_OK && (e = bm__pg_p_ints(&p, c->ids, c->n, &ids, em)) == BM_OK)
        e = bm__pg_exec(t,
                        "UPDATE outbox SET state = 4, claim = $1 WHERE id = ANY($2::bigint[]) AND "
                        "state = 0",
                        &p, NULL, &rows, em);
    bm_buf_cleanup(&ids);
    if (e == BM_OK && rows != (int64_t)c->n)
        e = bm_errmsg_set(em, BM_E_INTERNAL, "outbox claim: %lld of its %zu rows are not pending",
                          (long long)((int64_t)c->n - rows), c->n);
    return e;
}

bm_err bm__pg_outbox_claim(struct bm_pg *pg, const char *claim, const int64_t *ids, size_t n,
                           size_t nreq, int64_t now, struct bm_errmsg *em)
{
    struct claim c = {.id = claim, .ids = ids, .n = n, .nreq = nreq, .now = now};
    if (n == 0 || nreq == 0 || strlen(claim) >= sizeof(((struct bm_db_claim *)0)->id))
        return bm_errmsg_set(em, BM_E_INTERNAL, "outbox claim: empty, or id too long");
    return bm__pg_tx_run(pg, "READ COMMITTED", claim_fn, &c, em);
}

/* Locks and reads the claim row, checked to be at request req: calls are answered in order,
 * so any other request is a bug in the caller. */
static bm_err claim_next(struct bm__pg_tx *t, struct claim *c, struct bm_errmsg *em)
{
    struct bm__pg_params p = {0};
    PGresult *r = NULL;
    bm__pg_p_str(&p, bm_str_of(c->id));
    bm_err e = bm__pg_exec(t,
                           "SELECT nreq, sent, attempt, rejected FROM outbox_claim WHERE id = $1 "
                           "FOR UPDATE",
                           &p, &r, NULL, em);
    if (e != BM_OK)
        return e;
    if (PQntuples(r) == 1) {
        c->nreq_ = i64(r, 0, 0);
        c->sent = i64(r, 0, 1);
        c->attempt = i64(r, 0, 2);
        c->rejected = i64(r, 0, 3);
    }
    bool found = PQntuples(r) == 1;
    PQclear(r);
    if (!found)
        return bm_errmsg_set(em, BM_E_INTERNAL, "outbox claim %.47s: no such claim", c->id);
    if (c->sent != (int64_t)c->req)
        return bm_errmsg_set(em, BM_E_INTERNAL,
                             "outbox claim %.47s: request %zu is not next (%lld)", c->id, c->req,
                             (long long)c->sent);
    return BM_OK;
}

static bm_err claim_write(struct bm__pg_tx *t, const struct claim *c, struct bm_errmsg *em)
{
    struct bm__pg_params p = {0};
    bm__pg_p_str(&p, bm_str_of(c->id));
    bm__pg_p_int(&p, c->sent);
    bm__pg_p_int(&p, c->attempt);
    bm__pg_p_int(&p, c->rejected);
    return bm__pg_exec(t,
                       "UPDATE outbox_claim SET sent = $2::bigint, attempt = $3::bigint, "
                       "rejected = $4::bigint WHERE id = $1",
                       &p, NULL, NULL, em);
}

/* Runs a statement on the claim's rows or row ($1 = id) and puts the rows changed in *rows. */
static bm_err by_claim(struct bm__pg_tx *t, const char *sql, const char *id, int64_t *rows,
                       struct bm_errmsg *em)
{
    struct bm__pg_params p = {0};
    bm__pg_p_str(&p, bm_str_of(id));
    return bm__pg_exec(t, sql, &p, NULL, rows, em);
}

static bm_err begin_fn(struct bm__pg_tx *t, void *ctx, struct bm_errmsg *em)
{
    struct claim *c = ctx;
    bm_err e = claim_next(t, c, em);
    if (e != BM_OK)
        return e;
    c->attempt++;
    return claim_write(t, c, em);
}

bm_err bm__pg_outbox_send_begin(struct bm_pg *pg, const char *claim, size_t req, int *attempt,
                                struct bm_errmsg *em)
{
    struct claim c = {.id = claim, .req = req};
    bm_err e = bm__pg_tx_run(pg, "READ COMMITTED", begin_fn, &c, em);
    if (e == BM_OK && attempt != NULL)
        *attempt = (int)c.attempt;
    return e;
}

static bm_err done_fn(struct bm__pg_tx *t, void *ctx, struct bm_errmsg *em)
{
    struct claim *c = ctx;
    int64_t changed = 0;
    bm_err e = claim_next(t, c, em);
    if (e != BM_OK)
        return e;
    c->sent++;
    c->attempt = 0;
    c->rejected += !c->accepted;
    c->finished = c->sent >= c->nreq_;
    e = c->finished ? by_claim(t, "DELETE FROM outbox_claim WHERE id = $1", c->id, NULL, em)
                    : claim_write(t, c, em);
    if (e == BM_OK && c->accepted && c->datums > 0)
        e = bm__pg_counter_add(t, BM_DB_C_PUBLISH_PUBLISHED, (int64_t)c->datums, em);
    if (e == BM_OK && c->accepted)
        e = bm__pg_counter_add(t, BM_DB_C_PUBLISH_REQUESTS, 1, em);
    /* The rows go only when all of the claim's calls were answered (outbox.c says why). */
    if (e == BM_OK && c->finished && c->rejected == 0)
        e = by_claim(t, "DELETE FROM outbox WHERE claim = $1 AND state = 4", c->id, &changed, em);
    else if (e == BM_OK && c->finished)
        e = by_claim(t, "UPDATE outbox SET state = 3, claim = NULL WHERE claim = $1 AND state = 4",
                     c->id, &changed, em);
    if (e == BM_OK && changed > 0)
        e = bm__pg_counter_add(t, BM_DB_C_PUBLISH_PENDING, -changed, em);
    if (e == BM_OK && changed > 0 && c->rejected > 0)
        e = bm__pg_counter_add(t, BM_DB_C_PUBLISH_REJECTED, changed, em);
    return e;
}

bm_err bm__pg_outbox_send_done(struct bm_pg *pg, const char *claim, size_t req, bool accepted,
                               uint64_t datums, bool *finished, struct bm_errmsg *em)
{
    struct claim c = {.id = claim, .req = req, .accepted = accepted, .datums = datums};
    bm_err e = bm__pg_tx_run(pg, "READ COMMITTED", done_fn, &c, em);
    if (e == BM_OK && finished != NULL)
        *finished = c.finished;
    return e;
}

static bm_err failed_fn(struct bm__pg_tx *t, void *ctx, struct bm_errmsg *em)
{
    struct claim *c = ctx;
    bm_err e = claim_next(t, c, em);
    if (e != BM_OK)
        return e;
    c->released = c->sent == 0;
    if (!c->released) {
        c->attempt = 0;
        return claim_write(t, c, em);
    }
    e = by_claim(t, "UPDATE outbox SET state = 0, claim = NULL WHERE claim = $1 AND state = 4",
                 c->id, NULL, em);
    return e == BM_OK ? by_claim(t, "DELETE FROM outbox_claim WHERE id = $1", c->id, NULL, em) : e;
}

bm_err bm__pg_outbox_send_failed(struct bm_pg *pg, const char *claim, size_t req, bool *released,
                                 struct bm_errmsg *em)
{
    struct claim c = {.id = claim, .req = req};
    bm_err e = bm__pg_tx_run(pg, "READ COMMITTED", failed_fn, &c, em);
    if (e == BM_OK && released != NULL)
        *released = c.released;
    return e;
}

static bm_err claims_fn(struct bm__pg_tx *t, void *ctx, struct bm_errmsg *em)
{
    struct bm_db_claims **out = ctx;
    PGresult *r = NULL;
    bm_db_claims_free(*out); /* an earlier attempt's */
    *out = bm_calloc(1, sizeof **out);
    if (*out == NULL)
        return bm_errmsg_set(em, BM_E_NOMEM, "read claims: out of memory");
    bm_err e = bm__pg_exec(t,
                           "SELECT id, nreq, sent, attempt FROM outbox_claim "
                           "ORDER BY created_at, id",
                           NULL, &r, NULL, em);
    if (e != BM_OK)
        return e;
    struct bm_db_claims *cl = *out;
    size_t n = (size_t)PQntuples(r);
    if (n > 0 && (cl->v = bm_calloc(n, sizeof *cl->v)) == NULL) {
        PQclear(r);
        return bm_errmsg_set(em, BM_E_NOMEM, "read claims: out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        struct bm_db_claim *x = &cl->v[cl->n++];
        snprintf(x->id, sizeof x->id, "%s", PQgetvalue(r, (int)i, 0));
        x->nreq = (size_t)i64(r, (int)i, 1);
        x->sent = (size_t)i64(r, (int)i, 2);
        x->attempt = (int)i64(r, (int)i, 3);
    }
    PQclear(r);
    for (size_t i = 0; i < cl->n && e == BM_OK; i++) {
        struct bm__pg_params p = {0};
        bm__pg_p_str(&p, bm_str_of(cl->v[i].id));
        if ((e = bm__pg_exec(t,
                             "SELECT " ROW_COLS " FROM outbox WHERE state = 4 AND claim = $1 "
                             "ORDER BY id",
                             &p, &r, NULL, em)) != BM_OK)
            break;
        e = to_batch(r, &cl->v[i].rows, em);
        PQclear(r);
    }
    return e;
}

bm_err bm__pg_outbox_claims(struct bm_pg *pg, struct bm_db_claims **out, struct bm_errmsg *em)
{
    struct bm_db_claims *cl = NULL;
    /* One snapshot for the list and the rows: a claim ending meanwhile is seen whole or not. */
    bm_err e = bm__pg_tx_run(pg, "REPEATABLE READ, READ ONLY", claims_fn, &cl, em);
    if (e != BM_OK) {
        bm_db_claims_free(cl);
        return e;
    }
    *out = cl;
    return BM_OK;
}
