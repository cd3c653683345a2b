/* intern.c: interned strings. Model, profile, region and operation names are stored once in
 * `str` and referenced by id; a commit interns five names per series, so the ids it has seen
 * committed are cached in memory and most commits run no lookup at all, and query results
 * turn ids back into names through a small cache per connection. */
#include "storage/storage_int.h"

#include <string.h>

/* Past this many names the cache stops growing (lookups then go to SQLite): it bounds memory
 * against logs full of distinct names, and real fleets have a few hundred. */
#define INTERN_MAX 16384

/* FNV-1a: names are short, and this runs once per name per commit. */
static uint64_t name_hash(struct bm_str s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < s.len; i++)
        h = (h ^ (unsigned char)s.p[i]) * 0x100000001b3ULL;
    return h;
}

static struct bm__intern_slot *find(const struct bm__interns *t, uint64_t h, struct bm_str s)
{
    size_t mask = t->nslots - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        struct bm__intern_slot *sl = &t->slots[i];
        if (sl->s == NULL ||
            (sl->hash == h && sl->len == s.len && (s.len == 0 || memcmp(sl->s, s.p, s.len) == 0)))
            return sl;
    }
}

/* Adds a committed (name, id), copying the name; false on allocation failure. */
static bool add(struct bm__interns *t, uint64_t h, struct bm_str s, int64_t id)
{
    if (t->n >= INTERN_MAX)
        return true;
    if (2 * (t->n + 1) > t->nslots) {
        size_t n = t->nslots ? 2 * t->nslots : 256;
        struct bm__intern_slot *slots = bm_calloc(n, sizeof *slots);
        if (slots == NULL)
            return false;
        struct bm__interns grown = {.slots = slots, .nslots = n};
        for (size_t i = 0; i < t->nslots; i++)
            if (t->slots[i].s != NULL)
                *find(&grown, t->slots[i].hash, (struct bm_str){t->slots[i].s, t->slots[i].len}) =
                    t->slots[i];
        bm_free(t->slots);
        t->slots = slots;
        t->nslots = n;
    }
    struct bm__intern_slot *sl = find(t, h, s);
    if (sl->s != NULL)
        return true; /* already known */
    const char *copy = bm__arena_copy(&t->arena, s.p, s.len);
    if (copy == NULL)
        return false;
    *sl = (struct bm__intern_slot){h, id, copy, s.len};
    t->n++;
    return true;
}

/* Remembers (s, id) until the transaction ends: the row may be one this transaction inserted,
 * which a rollback takes back (and the id may then be reused for another name). */
static void add_pending(struct bm__interns *t, uint64_t h, struct bm_str s, int64_t id)
{
    if (t->npending == t->cap_pending) {
        size_t n = t->cap_pending ? 2 * t->cap_pending : 64;
        struct bm__intern_slot *p = bm_realloc(t->pending, n * sizeof *p);
        if (p == NULL)
            return; /* only a cache: the next commit looks the name up again */
        t->pending = p;
        t->cap_pending = n;
    }
    t->pending[t->npending++] = (struct bm__intern_slot){h, id, s.p, s.len};
}

bm_err bm__intern(struct bm_db *db, struct bm__conn *c, struct bm_str s, int64_t *id,
                  struct bm_errmsg *em)
{
    struct bm__interns *t = &db->interns;
    uint64_t h = name_hash(s);
    if (t->nslots > 0) {
        const struct bm__intern_slot *sl = find(t, h, s);
        if (sl->s != NULL) {
            *id = sl->id;
            return BM_OK;
        }
    }
    sqlite3_stmt *st;
    bm_err e = bm__stmt(c, BM__ST_STR_GET, &st, em);
    if (e != BM_OK)
        return e;
    bm__bind_str(st, 1, s);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *id = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return bm__sql_err(c, rc, "look up string", em);
    if (rc == SQLITE_DONE) {
        if ((e = bm__stmt(c, BM__ST_STR_PUT, &st, em)) != BM_OK)
            return e;
        bm__bind_str(st, 1, s);
        if ((e = bm__run(c, st, "intern string", em)) != BM_OK)
            return e;
        *id = sqlite3_last_insert_rowid(c->h);
    }
    add_pending(t, h, s, *id);
    return BM_OK;
}

void bm__interns_end(struct bm__interns *t, bool committed)
{
    /* Committed rows of `str` are never changed or deleted, so their ids stay valid for good,
     * for every connection and process. A failed copy only means a lookup next time. */
    for (size_t i = 0; committed && i < t->npending; i++)
        if (!add(t, t->pending[i].hash, (struct bm_str){t->pending[i].s, t->pending[i].len},
                 t->pending[i].id))
            break;
    t->npending = 0;
}

void bm__interns_cleanup(struct bm__interns *t)
{
    bm_free(t->slots);
    bm_free(t->pending);
    bm__arena_free(&t->arena);
    *t = (struct bm__interns){0};
}

/* ---- Names by id, for query results ------------------------------------------------------ */
#define NAMES_MAX 1024 /* per connection; a fleet's models, profiles and regions fit */
#define NAME_SLOTS (2 * NAMES_MAX)

void bm__names_room(struct bm__names *t, size_t n)
{
    if (t->n + n <= NAMES_MAX)
        return;
    memset(t->slots, 0, NAME_SLOTS * sizeof *t->slots);
    bm__arena_free(&t->arena);
    t->n = 0;
}

void bm__names_cleanup(struct bm__names *t)
{
    bm_free(t->slots);
    bm__arena_free(&t->arena);
    *t = (struct bm__names){0};
}

bm_err bm__name_of(struct bm__conn *c, int64_t id, struct bm_str *out, struct bm_errmsg *em)
{
    struct bm__names *t = &c->names;
    if (t->slots == NULL && (t->slots = bm_calloc(NAME_SLOTS, sizeof *t->slots)) == NULL)
        return bm_errmsg_set(em, BM_E_NOMEM, "aggregates query: out of memory");
    size_t i = (size_t)((uint64_t)id * 0x9E3779B97F4A7C15ULL >> 32) & (NAME_SLOTS - 1);
    for (; t->slots[i].id != 0; i = (i + 1) & (NAME_SLOTS - 1))
        if (t->slots[i].id == id) {
            *out = (struct bm_str){t->slots[i].s, t->slots[i].len};
            return BM_OK;
        }
    sqlite3_stmt *st;
    bm_err e = bm__stmt(c, BM__ST_STR_NAME, &st, em);
    if (e != BM_OK)
        return e;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    const char *p = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : "";
    size_t len = rc == SQLITE_ROW ? (size_t)sqlite3_column_bytes(st, 0) : 0;
    const char *copy = p != NULL ? bm__arena_copy(&t->arena, p, len) : NULL;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return bm__sql_err(c, rc, "look up name", em);
    if (copy == NULL)
        return bm_errmsg_set(em, BM_E_NOMEM, "aggregates query: out of memory");
    /* Past NAMES_MAX entries (a caller that did not make room) the name is kept in the arena
     * but not indexed, so the table never fills. */
    if (t->n < NAMES_MAX) {
        t->slots[i] = (struct bm__name_slot){id, copy, len};
        t->n++;
    }
    *out = (struct bm_str){copy, len};
    return BM_OK;
}
