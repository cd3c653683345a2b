/* status.c: what GET /status reads: the persistent counters (stored by name, plus cheap
 * deferred in-memory counts) and the list of quarantined objects. */
#include "storage/storage_int.h"

#include <stdio.h>
#include <string.h>

static const char *const fixed_names[BM_DB_C_ERRORS] = {
    "objects.processed",   "objects.duplicates", "objects.ignored", "objects.failed",
    "objects.quarantined", "records.processed",  "records.invalid", "publish.pending",
    "publish.published",   "publish.requests",   "publish.dropped", "publish.rejected",
};
/* "errors.BMAS-001" ...: built once from core's wire-code list, so a code added to the error
 * table gets its counter without a change here. */
static char error_names[BM_ERR_WIRE_N][24];
static pthread_once_t error_names_once = PTHREAD_ONCE_INIT;

static void make_error_names(void)
{
    for (int i = 0; i < BM_ERR_WIRE_N; i++)
        snprintf(error_names[i], sizeof error_names[i], "errors.%s", bm_err_wire_at(i));
}

const char *bm_db_counter_name(enum bm_db_counter c)
{
    if ((unsigned)c < BM_DB_C_ERRORS)
        return fixed_names[c];
    if ((unsigned)c >= BM_DB_C__COUNT)
        return "unknown";
    pthread_once(&error_names_once, make_error_names);
    return error_names[c - BM_DB_C_ERRORS];
}

bm_err bm__counter_add(struct bm__conn *c, enum bm_db_counter ctr, int64_t v, struct bm_errmsg *em)
{
    sqlite3_stmt *st;
    bm_err e = bm__stmt(c, BM__ST_CTR_ADD, &st, em);
    if (e != BM_OK)
        return e;
    sqlite3_bind_text(st, 1, bm_db_counter_name(ctr), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, v);
    return bm__run(c, st, "add to counter", em);
}

void bm_db_count(struct bm_db *db, enum bm_db_counter c, uint64_t n)
{
    if ((unsigned)c < BM_DB_C__COUNT)
        atomic_fetch_add_explicit(&db->deferred[c], n, memory_order_relaxed);
}

void bm_db_count_ignored(struct bm_db *db)
{
    bm_db_count(db, BM_DB_C_OBJECTS_IGNORED, 1);
}

bm_err bm__sq_flush_counters(struct bm_db *db, struct bm_errmsg *em)
{
    struct bm__conn *c = NULL;
    /* An empty transaction: bm__tx_end writes the deferred counts before it commits. */
    bm_err e = bm__tx_begin(db, &c, em);
    return e == BM_OK ? bm__tx_end(db, c, BM_OK, em) : e;
}

bm_err bm__sq_status(struct bm_db *db, struct bm_db_status *out, struct bm_errmsg *em)
{
    struct bm__conn *c = NULL;
    struct bm_db_status s = {{0}};
    sqlite3_stmt *st;
    int rc;
    bm_err e = bm__conn_get(db, &c, em);
    if (e != BM_OK)
        return e;
    if ((e = bm__stmt(c, BM__ST_CTR_ALL, &st, em)) != BM_OK)
        goto fail;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        /* Names this version does not know (written by another one) are skipped. */
        for (int i = 0; name != NULL && i < BM_DB_C__COUNT; i++)
            if (strcmp(name, bm_db_counter_name((enum bm_db_counter)i)) == 0)
                s.c[i] = (uint64_t)sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        e = bm__sql_err(c, rc, "read counters", em);
        goto fail;
    }
    bm__deferred_add_to(db, &s);
    *out = s;
fail:
    bm__conn_put(db, c);
    return e;
}

bm_err bm__sq_outbox_pending(struct bm_db *db, uint64_t *out, struct bm_errmsg *em)
{
    struct bm__conn *c = NULL;
    sqlite3_stmt *st;
    bm_err e = bm__conn_get(db, &c, em);
    if (e != BM_OK)
        return e;
    if ((e = bm__stmt(c, BM__ST_CTR_GET, &st, em)) == BM_OK) {
        sqlite3_bind_text(st, 1, bm_db_counter_name(BM_DB_C_PUBLISH_PENDING), -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW || rc == SQLITE_DONE)
            *out = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
        else
            e = bm__sql_err(c, rc, "read pending count", em);
        sqlite3_reset(st);
    }
    bm__conn_put(db, c);
    return e;
}

/* ---- String arena for results ------------------------------------------------------------- */
struct bm__arena_chunk {
    struct bm__arena_chunk *next;
    size_t used, cap;
    char data[];
};

const char *bm__arena_copy(struct bm__arena *a, const void *p, size_t len)
{
    struct bm__arena_chunk *h = a->head;
    if (h == NULL || h->cap - h->used < len + 1) {
        size_t cap = len + 1 > 8192 ? len + 1 : 8192;
        h = bm_malloc(sizeof *h + cap);
        if (h == NULL)
            return NULL;
        h->next = a->head;
        h->used = 0;
        h->cap = cap;
        a->head = h;
    }
    char *d = h->data + h->used;
    if (len > 0)
        memcpy(d, p, len);
    d[len] = '\0';
    h->used += len + 1;
    return d;
}

void bm__arena_free(struct bm__arena *a)
{
    while (a->head != NULL) {
        struct bm__arena_chunk *next = a->head->next;
        bm_free(a->head);
        a->head = next;
    }
}

/* ---- Quarantined objects ------------------------------------------------------------------ */
static struct bm_str column_str(struct bm__arena *a, sqlite3_stmt *st, int i, bool *ok)
{
    const void *p = sqlite3_column_text(st, i);
    size_t len = (size_t)sqlite3_column_bytes(st, i);
    const char *d = bm__arena_copy(a, p, len);
    *ok = *ok && d != NULL;
    return (struct bm_str){d, len};
}

bm_err bm__sq_quarantined(struct bm_db *db, size_t max, struct bm_db_failures **out,
                          struct bm_errmsg *em)
{
    struct bm__conn *c = NULL;
    struct bm__failures *f = bm_calloc(1, sizeof *f);
    sqlite3_stmt *st;
    int rc = SQLITE_DONE;
    bm_err e = BM_E_NOMEM;
    if (f == NULL || (f->pub.v = bm_calloc(max ? max : 1, sizeof *f->pub.v)) == NULL) {
        bm_errmsg_set(em, e, "list quarantined objects: out of memory");
        goto fail;
    }
    if ((e = bm__conn_get(db, &c, em)) != BM_OK ||
        (e = bm__stmt(c, BM__ST_FAIL_LIST, &st, em)) != BM_OK)
        goto fail;
    sqlite3_bind_int64(st, 1, (int64_t)max);
    bool ok = true;
    while (ok && f->pub.n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct bm_db_failure *x = &f->pub.v[f->pub.n++];
        x->obj.bucket = column_str(&f->arena, st, 0, &ok);
        x->obj.key = column_str(&f->arena, st, 1, &ok);
        x->obj.version = column_str(&f->arena, st, 2, &ok);
        x->attempts = (long)sqlite3_column_int64(st, 3);
        x->quarantined = sqlite3_column_int(st, 4) != 0;
        const char *code = (const char *)sqlite3_column_text(st, 5);
        snprintf(x->code, sizeof x->code, "%s", code ? code : "");
        x->message = column_str(&f->arena, st, 6, &ok).p;
        x->first_at = sqlite3_column_int64(st, 7);
        x->last_at = sqlite3_column_int64(st, 8);
    }
    sqlite3_reset(st);
    if (!ok)
        e = bm_errmsg_set(em, BM_E_NOMEM, "list quarantined objects: out of memory");
    else if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        e = bm__sql_err(c, rc, "list quarantined objects", em);
fail:
    bm__conn_put(db, c);
    if (e != BM_OK) {
        bm_db_failures_free(f ? &f->pub : NULL);
        return e;
    }
    *out = &f->pub;
    return BM_OK;
}

void bm_db_failures_free(struct bm_db_failures *pub)
{
    if (pub == NULL)
        return;
    struct bm__failures *f = (struct bm__failures *)pub;
    bm__arena_free(&f->arena);
    bm_free(f->pub.v);
    bm_free(f);
}
