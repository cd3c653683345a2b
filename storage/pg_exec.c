/* pg_exec.c: statements on a transaction's connection (storage/pg_int.h): parameters, one
 * statement and its answer (bm__pg_exec), and libpq's pipeline mode for the many statements
 * of a commit whose answers only say success or failure (bm__pg_pipe). pg.c holds the pool
 * and the transactions around them. */
#include "storage/pg_int.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bm__pg_p_int(struct bm__pg_params *p, int64_t v)
{
    assert(p->n < BM__PG_MAXP);
    snprintf(p->num[p->n], sizeof p->num[p->n], "%lld", (long long)v);
    p->v[p->n] = p->num[p->n];
    p->len[p->n] = 0;
    p->fmt[p->n++] = 0;
}

void bm__pg_p_str(struct bm__pg_params *p, struct bm_str s)
{
    assert(p->n < BM__PG_MAXP);
    /* Binary format: text's binary form is its bytes, so a slice needs no NUL; the server
     * still checks the encoding (invalid UTF-8 is an error, 22021). */
    p->v[p->n] = s.len > 0 ? s.p : "";
    p->len[p->n] = (int)s.len;
    p->fmt[p->n++] = 1;
}

void bm__pg_p_text(struct bm__pg_params *p, const char *s)
{
    assert(p->n < BM__PG_MAXP);
    p->v[p->n] = s;
    p->len[p->n] = 0;
    p->fmt[p->n++] = 0;
}

bm_err bm__pg_p_ints(struct bm__pg_params *p, const int64_t *v, size_t n, struct bm_buf *b,
                     struct bm_errmsg *em)
{
    bm_buf_reset(b);
    bm_err e = bm_buf_append_char(b, '{');
    for (size_t i = 0; i < n && e == BM_OK; i++)
        e = bm_buf_appendf(b, i ? ",%lld" : "%lld", (long long)v[i]);
    if (e == BM_OK)
        e = bm_buf_append_char(b, '}');
    if (e != BM_OK)
        return bm_errmsg_set(em, e, "storage: out of memory for %zu row ids", n);
    bm__pg_p_text(p, b->data);
    return BM_OK;
}

void bm__pg_p_object(struct bm__pg_params *p, const struct bm_db_object *o)
{
    bm__pg_p_str(p, o->bucket);
    bm__pg_p_str(p, o->key);
    bm__pg_p_str(p, o->version);
}

void bm__pg_p_null(struct bm__pg_params *p)
{
    assert(p->n < BM__PG_MAXP);
    p->v[p->n] = NULL;
    p->len[p->n] = 0;
    p->fmt[p->n++] = 0;
}

/* The first words of a statement, to say which one failed. */
static void stmt_name(const char *sql, char *out, size_t cap)
{
    snprintf(out, cap, "%.*s", (int)strcspn(sql, "("), sql);
}

bm_err bm__pg_pipe(struct bm__pg_tx *t, const char *sql, const struct bm__pg_params *p,
                   struct bm_errmsg *em)
{
    if (t->piped == 0 && PQenterPipelineMode(t->conn) != 1)
        return bm__pg_err(t->pg, t->conn, NULL, "pipeline", em);
    if (PQsendQueryParams(t->conn, sql, p ? p->n : 0, NULL, p ? p->v : NULL, p ? p->len : NULL,
                          p ? p->fmt : NULL, 0) != 1) {
        char what[48];
        stmt_name(sql, what, sizeof what);
        bm_err e = bm__pg_err(t->pg, t->conn, NULL, what, em);
        (void)bm__pg_pipe_flush(t, NULL); /* what was sent before, then out of the mode */
        return e;
    }
    t->pipe_sql[t->piped++] = sql;
    return t->piped >= BM__PG_PIPE_MAX ? bm__pg_pipe_flush(t, em) : BM_OK;
}

bm_err bm__pg_pipe_flush(struct bm__pg_tx *t, struct bm_errmsg *em)
{
    if (PQpipelineStatus(t->conn) == PQ_PIPELINE_OFF)
        return BM_OK;
    bm_err e = BM_OK;
    int n = t->piped, left = n;
    t->piped = 0;
    if (PQpipelineSync(t->conn) != 1)
        e = bm__pg_err(t->pg, t->conn, NULL, "pipeline sync", em);
    /* Each statement's answer ends with a NULL; the sync's own comes last. A statement after
     * a failed one is not run (PGRES_PIPELINE_ABORTED): the first failure is the one to tell. */
    while (e == BM_OK || PQstatus(t->conn) == CONNECTION_OK) {
        PGresult *r = PQgetResult(t->conn);
        if (r == NULL) {
            if (left-- > 0)
                continue;
            break; /* nothing more will come: the connection failed */
        }
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            break;
        }
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_PIPELINE_ABORTED &&
            e == BM_OK) {
            const char *ss = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            char what[48];
            snprintf(t->sqlstate, sizeof t->sqlstate, "%s", ss ? ss : "");
            stmt_name(n - left < n ? t->pipe_sql[n - left] : "pipeline", what, sizeof what);
            e = bm__pg_err(t->pg, t->conn, r, what, em);
        }
        PQclear(r);
    }
    if (PQexitPipelineMode(t->conn) != 1 && e == BM_OK)
        e = bm__pg_err(t->pg, t->conn, NULL, "pipeline end", em);
    return e;
}

bm_err bm__pg_exec(struct bm__pg_tx *t, const char *sql, const struct bm__pg_params *p,
                   PGresult **res, int64_t *rows, struct bm_errmsg *em)
{
    bm_err pe = bm__pg_pipe_flush(t, em);
    if (pe != BM_OK)
        return pe;
    PGresult *r = PQexecParams(t->conn, sql, p ? p->n : 0, NULL, p ? p->v : NULL, p ? p->len : NULL,
                               p ? p->fmt : NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        if (rows != NULL)
            *rows = st == PGRES_TUPLES_OK ? PQntuples(r) : strtoll(PQcmdTuples(r), NULL, 10);
        if (res != NULL)
            *res = r;
        else
            PQclear(r);
        return BM_OK;
    }
    const char *ss = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    snprintf(t->sqlstate, sizeof t->sqlstate, "%s", ss ? ss : "");
    char what[48];
    stmt_name(sql, what, sizeof what);
    bm_err e = bm__pg_err(t->pg, t->conn, r, what, em);
    PQclear(r);
    return e;
}

bm_err bm__pg_one_fn(struct bm__pg_tx *t, void *ctx, struct bm_errmsg *em)
{
    struct bm__pg_one *q = ctx;
    PGresult *r = NULL;
    bm_err e = bm__pg_exec(t, q->sql, &q->p, &r, NULL, em);
    if (e != BM_OK)
        return e;
    q->found = PQntuples(r) >= 1 && !PQgetisnull(r, 0, 0);
    q->v = q->found ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    return BM_OK;
}
