/* objects.c: exactly-once accounting. One transaction records an object as processed and, only
 * when that row is new, applies its delta to the aggregates and rollups and queues it in the
 * publish outbox; the processed-row lookup that lets duplicates skip S3. */
#include "storage/storage_int.h"

#include <string.h>

/* NULL as "" (an absent version id or ETag). */
static struct bm_str str_or_empty(const char *s)
{
    return (struct bm_str){s ? s : "", s ? strlen(s) : 0};
}

void bm_db_object_init(struct bm_db_object *o, const char *bucket, const char *key,
                       const char *version_id, const char *etag)
{
    o->bucket = str_or_empty(bucket);
    o->key = str_or_empty(key);
    o->version = str_or_empty(version_id);
    if (o->version.len == 0) {
        /* S3 sends ETags quoted in headers and bare in notifications: both name one object. */
        o->version = str_or_empty(etag);
        if (o->version.len >= 2 && o->version.p[0] == '"' &&
            o->version.p[o->version.len - 1] == '"') {
            o->version.p++;
            o->version.len -= 2;
        }
    }
}

static void bind_object(sqlite3_stmt *st, const struct bm_db_object *o)
{
    bm__bind_str(st, 1, o->bucket);
    bm__bind_str(st, 2, o->key);
    bm__bind_str(st, 3, o->version);
}

int bm__ptype_code(enum bm_profile_type t)
{
    /* Stored codes are fixed here, not taken from the enum's order, and the switch has no
     * default so a new type cannot compile without a code (docs/style.md G3.4). */
    switch (t) {
    case BM_PT_ON_DEMAND:
        return 0;
    case BM_PT_CROSS_REGION:
        return 1;
    case BM_PT_GLOBAL:
        return 2;
    case BM_PT_APPLICATION:
        return 3;
    case BM_PT_PROVISIONED:
        return 4;
    case BM_PT__COUNT:
        break;
    }
    return -1;
}

enum bm_profile_type bm__ptype_from_code(int64_t code)
{
    for (int t = 0; t < BM_PT__COUNT; t++)
        if (bm__ptype_code((enum bm_profile_type)t) == code)
            return (enum bm_profile_type)t;
    return BM_PT__COUNT;
}

/* Binds a series at positions 1..27 (the column order of SERIES_COLS in db.c); ids: the five
 * strings of the key, then the three attribution values. */
static void bind_series(sqlite3_stmt *st, int64_t bucket, int ptype, const int64_t ids[8],
                        const struct bm_counters *k)
{
    const struct bm_stat *stats[4] = {&k->input, &k->output, &k->cache_read, &k->cache_write};
    sqlite3_bind_int64(st, 1, bucket);
    sqlite3_bind_int64(st, 2, ids[0]);
    sqlite3_bind_int(st, 3, ptype);
    for (int i = 1; i < 5; i++)
        sqlite3_bind_int64(st, 3 + i, ids[i]);
    sqlite3_bind_int64(st, 8, (int64_t)k->invocations);
    for (int i = 0; i < 4; i++) {
        sqlite3_bind_int64(st, 9 + 3 * i, (int64_t)stats[i]->sum);
        sqlite3_bind_int64(st, 10 + 3 * i, (int64_t)stats[i]->min);
        sqlite3_bind_int64(st, 11 + 3 * i, (int64_t)stats[i]->max);
    }
    sqlite3_bind_int64(st, 21, (int64_t)k->cost.micro);
    sqlite3_bind_int64(st, 22, (int64_t)k->cost.pico);
    sqlite3_bind_int64(st, 23, (int64_t)k->unpriced);
    sqlite3_bind_int64(st, 24, (int64_t)k->violations);
    for (int i = 0; i < 3; i++)
        sqlite3_bind_int64(st, 25 + i, ids[5 + i]);
}

/* Binds a series' key and sums at positions 1..18 of BM__ST_AGG_ALL (no bucket, no min/max). */
static void bind_all(sqlite3_stmt *st, int ptype, const int64_t ids[8], const struct bm_counters *k)
{
    sqlite3_bind_int64(st, 1, ids[0]);
    sqlite3_bind_int(st, 2, ptype);
    for (int i = 1; i < 5; i++)
        sqlite3_bind_int64(st, 2 + i, ids[i]);
    sqlite3_bind_int64(st, 7, (int64_t)k->invocations);
    sqlite3_bind_int64(st, 8, (int64_t)k->input.sum);
    sqlite3_bind_int64(st, 9, (int64_t)k->output.sum);
    sqlite3_bind_int64(st, 10, (int64_t)k->cache_read.sum);
    sqlite3_bind_int64(st, 11, (int64_t)k->cache_write.sum);
    sqlite3_bind_int64(st, 12, (int64_t)k->cost.micro);
    sqlite3_bind_int64(st, 13, (int64_t)k->cost.pico);
    sqlite3_bind_int64(st, 14, (int64_t)k->unpriced);
    sqlite3_bind_int64(st, 15, (int64_t)k->violations);
    for (int i = 0; i < 3; i++)
        sqlite3_bind_int64(st, 16 + i, ids[5 + i]);
}

/* The stored id of attribution value v at key position pos: 0 for no value; the value's own
 * id while the key has fewer than BMAS_ATTRIBUTION_MAX_VALUES distinct values (or already has
 * this one); else the id of "other", so that a key of unbounded values (a request id put in
 * requestMetadata) cannot grow the tables without bound. */
static bm_err attr_id(struct bm_db *db, struct bm__conn *c, int pos, struct bm_str v, int64_t *id,
                      struct bm_errmsg *em)
{
    static const struct bm_str other = {"other", 5};
    sqlite3_stmt *st;
    int64_t n = 0;
    bool has = false;
    *id = 0;
    if (v.len == 0)
        return BM_OK;
    bm_err e = bm__intern(db, c, v, id, em);
    if (e != BM_OK || (v.len == other.len && memcmp(v.p, other.p, other.len) == 0))
        return e;
    if ((e = bm__stmt(c, BM__ST_ATTR_HAS, &st, em)) != BM_OK)
        return e;
    sqlite3_bind_int(st, 1, pos);
    sqlite3_bind_int64(st, 2, *id);
    int rc = sqlite3_step(st);
    has = rc == SQLITE_ROW;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return bm__sql_err(c, rc, "attribution values", em);
    if (has)
        return BM_OK;
    if ((e = bm__stmt(c, BM__ST_ATTR_COUNT, &st, em)) != BM_OK)
        return e;
    sqlite3_bind_int(st, 1, pos);
    rc = sqlite3_step(st);
    n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return bm__sql_err(c, rc, "attribution values", em);
    int cap = db->opt.attr_max_values > 0 ? db->opt.attr_max_values : 100;
    if (n >= cap)
        return bm__intern(db, c, other, id, em);
    if ((e = bm__stmt(c, BM__ST_ATTR_PUT, &st, em)) != BM_OK)
        return e;
    sqlite3_bind_int(st, 1, pos);
    sqlite3_bind_int64(st, 2, *id);
    return bm__run(c, st, "attribution values", em);
}

static int64_t floor_to(int64_t t, int64_t width)
{
    return t - ((t % width) + width) % width;
}

/* Adds one series to the minute table, the three rollups and the outbox. */
static bm_err apply_series(struct bm_db *db, struct bm__conn *c, const struct bm_series *s,
                           int64_t now, struct bm_errmsg *em)
{
    static const enum bm__st tables[3] = {BM__ST_AGG_MIN, BM__ST_AGG_HOUR, BM__ST_AGG_DAY};
    static const int64_t widths[3] = {1, 3600, 86400};
    const struct bm_str *strs[5] = {&s->key.model_id, &s->key.profile_id, &s->key.source_region,
                                    &s->key.inference_region, &s->key.operation};
    int64_t ids[8];
    sqlite3_stmt *st;
    bm_err e = BM_OK;
    int ptype = bm__ptype_code(s->key.type);
    if (ptype < 0 || s->key.bucket < INT64_MIN / 2 || s->key.bucket > INT64_MAX / 2)
        return bm_errmsg_set(em, BM_E_INTERNAL, "commit: series without bucket or profile type");
    for (int i = 0; i < 5 && e == BM_OK; i++)
        e = bm__intern(db, c, *strs[i], &ids[i], em);
    for (int i = 0; i < 3 && e == BM_OK; i++)
        e = attr_id(db, c, i + 1, s->key.attr[i], &ids[5 + i], em);
    for (int t = 0; t < 3 && e == BM_OK; t++) {
        if ((e = bm__stmt(c, tables[t], &st, em)) != BM_OK)
            break;
        bind_series(st, floor_to(s->key.bucket, widths[t]), ptype, ids, &s->c);
        e = bm__run(c, st, "add to aggregates", em);
    }
    if (e == BM_OK && (e = bm__stmt(c, BM__ST_AGG_ALL, &st, em)) == BM_OK) {
        bind_all(st, ptype, ids, &s->c);
        e = bm__run(c, st, "add to all-time aggregates", em);
    }
    if (e == BM_OK && (e = bm__stmt(c, BM__ST_OUTBOX_PUT, &st, em)) == BM_OK) {
        bind_series(st, s->key.bucket, ptype, ids, &s->c);
        sqlite3_bind_int64(st, 28, now);
        e = bm__run(c, st, "add to outbox", em);
    }
    return e;
}

/* The effect of a newly processed object, inside the commit's transaction. */
static bm_err apply(struct bm_db *db, struct bm__conn *c, const struct bm_db_object *obj,
                    const struct bm_agg *delta, const struct bm_ingest_stats *stats, int64_t now,
                    struct bm_errmsg *em)
{
    sqlite3_stmt *st;
    int64_t rows = 0;
    bm_err e = BM_OK;
    size_t n = delta != NULL ? bm_agg_count(delta) : 0;
    for (size_t i = 0; i < n && e == BM_OK; i++) {
        const struct bm_series *s = bm_agg_at(delta, i);
        /* A series with no invocation has no min/max to combine and nothing to publish. */
        if (s->c.invocations == 0)
            continue;
        e = apply_series(db, c, s, now, em);
        rows++;
    }
    if (e == BM_OK && (e = bm__stmt(c, BM__ST_FAIL_DELETE, &st, em)) == BM_OK) {
        bind_object(st, obj);
        e = bm__run(c, st, "clear failure", em);
    }
    if (e == BM_OK)
        e = bm__counter_add(c, BM_DB_C_OBJECTS_PROCESSED, 1, em);
    if (e == BM_OK && rows > 0)
        e = bm__counter_add(c, BM_DB_C_PUBLISH_PENDING, rows, em);
    if (stats != NULL) {
        if (e == BM_OK && stats->records > 0)
            e = bm__counter_add(c, BM_DB_C_RECORDS_PROCESSED, (int64_t)stats->records, em);
        if (e == BM_OK && stats->invalid > 0)
            e = bm__counter_add(c, BM_DB_C_RECORDS_INVALID, (int64_t)stats->invalid, em);
        for (int i = 0; i < BM_ERR_WIRE_N && e == BM_OK; i++)
            if (stats->errors[i] > 0)
                e = bm__counter_add(c, (enum bm_db_counter)(BM_DB_C_ERRORS + i),
                                    (int64_t)stats->errors[i], em);
    }
    return e;
}

bm_err bm__sq_commit_object(struct bm_db *db, const struct bm_db_object *obj,
                            const char *message_id, uint64_t size, const struct bm_agg *delta,
                            const struct bm_ingest_stats *stats, int64_t now,
                            enum bm_db_commit_result *result, struct bm_errmsg *em)
{
    struct bm__conn *c = NULL;
    sqlite3_stmt *st;
    bool inserted = false;
    bm_err e = bm__tx_begin(db, &c, em);
    if (e != BM_OK)
        return e;
    /* The processed row goes first: ON CONFLICT DO NOTHING under the write lock is what makes
     * the rest happen at most once, whichever thread or process commits the object. */
    if ((e = bm__stmt(c, BM__ST_PROC_INSERT, &st, em)) == BM_OK) {
        bind_object(st, obj);
        sqlite3_bind_int64(st, 4, (int64_t)size);
        sqlite3_bind_int64(st, 5, stats ? (int64_t)stats->records : 0);
        sqlite3_bind_int64(st, 6, stats ? (int64_t)stats->invalid : 0);
        sqlite3_bind_int64(st, 7, now);
        if (message_id != NULL)
            sqlite3_bind_text(st, 8, message_id, -1, SQLITE_TRANSIENT);
        e = bm__run(c, st, "record processed object", em);
    }
    if (e == BM_OK) {
        inserted = sqlite3_changes(c->h) > 0;
        e = inserted ? apply(db, c, obj, delta, stats, now, em)
                     : bm__counter_add(c, BM_DB_C_OBJECTS_DUPLICATES, 1, em);
    }
    e = bm__tx_end(db, c, e, em);
    if (e == BM_OK)
        *result = inserted ? BM_DB_COMMITTED : BM_DB_DUPLICATE;
    return e;
}

/* Runs a one-row existence check on obj with statement id. */
static bm_err exists(struct bm_db *db, enum bm__st id, const struct bm_db_object *obj, bool *out,
                     struct bm_errmsg *em)
{
    struct bm__conn *c = NULL;
    sqlite3_stmt *st;
    bm_err e = bm__conn_get(db, &c, em);
    if (e != BM_OK)
        return e;
    if ((e = bm__stmt(c, id, &st, em)) == BM_OK) {
        bind_object(st, obj);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            *out = id == BM__ST_FAIL_GET ? sqlite3_column_int(st, 1) != 0 : true;
        else if (rc == SQLITE_DONE)
            *out = false;
        else
            e = bm__sql_err(c, rc, "look up object", em);
        sqlite3_reset(st);
    }
    bm__conn_put(db, c);
    return e;
}

bm_err bm__sq_is_processed(struct bm_db *db, const struct bm_db_object *obj, bool *out,
                           struct bm_errmsg *em)
{
    return exists(db, BM__ST_PROC_EXISTS, obj, out, em);
}

bm_err bm__sq_is_quarantined(struct bm_db *db, const struct bm_db_object *obj, bool *out,
                             struct bm_errmsg *em)
{
    return exists(db, BM__ST_FAIL_GET, obj, out, em);
}

bm_err bm__sq_record_failure(struct bm_db *db, const struct bm_db_object *obj, bm_err code,
                             const char *message, int64_t now, long max_attempts, long *attempts,
                             bool *quarantined, struct bm_errmsg *em)
{
    struct bm__conn *c = NULL;
    sqlite3_stmt *st;
    long n = 0;
    bool was_q = false, is_q = false;
    bm_err e = bm__tx_begin(db, &c, em);
    if (e != BM_OK)
        return e;
    if ((e = bm__stmt(c, BM__ST_FAIL_GET, &st, em)) == BM_OK) {
        bind_object(st, obj);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            n = (long)sqlite3_column_int64(st, 0);
            was_q = sqlite3_column_int(st, 1) != 0;
        } else if (rc != SQLITE_DONE) {
            e = bm__sql_err(c, rc, "read failure", em);
        }
        sqlite3_reset(st);
    }
    n++;
    is_q = was_q || (max_attempts > 0 && n >= max_attempts);
    if (e == BM_OK && (e = bm__stmt(c, BM__ST_FAIL_PUT, &st, em)) == BM_OK) {
        bind_object(st, obj);
        sqlite3_bind_int64(st, 4, n);
        sqlite3_bind_text(st, 5, bm_err_wire(code), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, message ? message : bm_err_str(code), -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 7, now);
        sqlite3_bind_int(st, 8, is_q);
        e = bm__run(c, st, "record failure", em);
    }
    if (e == BM_OK)
        e = bm__counter_add(c, BM_DB_C_OBJECTS_FAILED, 1, em);
    if (e == BM_OK && bm_err_wire_index(code) >= 0)
        e = bm__counter_add(c, (enum bm_db_counter)(BM_DB_C_ERRORS + bm_err_wire_index(code)), 1,
                            em);
    if (e == BM_OK && is_q && !was_q)
        e = bm__counter_add(c, BM_DB_C_OBJECTS_QUARANTINED, 1, em);
    e = bm__tx_end(db, c, e, em);
    if (e == BM_OK && attempts != NULL)
        *attempts = n;
    if (e == BM_OK && quarantined != NULL)
        *quarantined = is_q;
    return e;
}
