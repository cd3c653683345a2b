/* cw_series.c: the CloudWatch series bmas published or held back (BMAS_MAX_SERIES), and the
 * budget GET /status shows from them: series per dimension set over the last 24 hours and the
 * (series, hour) pairs of the month that CloudWatch bills. */
#include "storage/storage_int.h"

#include <string.h>

/* A series not published nor held back for this long has no hour in the current month and
 * no say in the 24-hour window: its row goes. */
#define FORGET_AFTER_S (40 * 86400)

static const char *const sql_recent =
    "SELECT dimset, v1, v2, v3, v4, v5, pub_at >= ?1 FROM cw_series "
    "WHERE pub_at >= ?1 OR held_at >= ?1 ORDER BY dimset, v1, v2, v3, v4, v5";
static const char *const sql_publish =
    "INSERT INTO cw_series (dimset, v1, v2, v3, v4, v5, pub_at, held_at, held_n, month, hours, "
    "  last_hour) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, 0, ?8, 1, ?9) "
    "ON CONFLICT (dimset, v1, v2, v3, v4, v5) DO UPDATE SET pub_at = excluded.pub_at, "
    "  hours = CASE WHEN month <> excluded.month THEN 1 "
    "    WHEN last_hour <> excluded.last_hour THEN hours + 1 ELSE hours END, "
    "  month = excluded.month, last_hour = excluded.last_hour";
static const char *const sql_hold =
    "INSERT INTO cw_series (dimset, v1, v2, v3, v4, v5, pub_at, held_at, held_n, month, hours, "
    "  last_hour) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, 1, 0, 0, 0) "
    "ON CONFLICT (dimset, v1, v2, v3, v4, v5) DO UPDATE SET held_at = excluded.held_at, "
    "  held_n = held_n + 1";
static const char *const sql_forget = "DELETE FROM cw_series WHERE pub_at < ?1 AND held_at < ?1";
static const char *const sql_sets =
    "SELECT dimset, sum(pub_at >= ?1), sum(held_at >= ?1 AND pub_at < ?1) FROM cw_series "
    "WHERE pub_at >= ?1 OR held_at >= ?1 GROUP BY dimset ORDER BY dimset";
static const char *const sql_totals =
    "SELECT coalesce(sum(CASE WHEN month = ?1 THEN hours ELSE 0 END), 0), "
    "  coalesce(sum(held_n), 0) FROM cw_series";

static bm_err prepare(struct bm__conn *c, const char *sql, sqlite3_stmt **st, struct bm_errmsg *em)
{
    int rc = sqlite3_prepare_v2(c->h, sql, -1, st, NULL);
    return rc == SQLITE_OK ? BM_OK : bm__sql_err(c, rc, "prepare cw_series statement", em);
}

static struct bm_str column_str(sqlite3_stmt *st, int i)
{
    const char *p = (const char *)sqlite3_column_text(st, i);
    return (struct bm_str){p ? p : "", p ? (size_t)sqlite3_column_bytes(st, i) : 0};
}

bm_err bm__sq_cw_series_recent(struct bm_db *db, int64_t since, bm_db_cw_series_fn fn, void *ctx,
                               struct bm_errmsg *em)
{
    struct bm__conn *c = NULL;
    sqlite3_stmt *st = NULL;
    bm_err e = bm__conn_get(db, &c, em);
    if (e != BM_OK)
        return e;
    if ((e = prepare(c, sql_recent, &st, em)) != BM_OK)
        goto done;
    sqlite3_bind_int64(st, 1, since);
    int rc;
    while (e == BM_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct bm_db_cw_series s;
        s.set = (const char *)sqlite3_column_text(st, 0);
        if (s.set == NULL)
            s.set = "";
        for (int i = 0; i < BM_DIMSET_MAX_DIMS; i++)
            s.v[i] = column_str(st, 1 + i);
        e = fn(ctx, &s, sqlite3_column_int(st, 6) != 0);
    }
    if (e == BM_OK && rc != SQLITE_DONE)
        e = bm__sql_err(c, rc, "read cw_series", em);
done:
    sqlite3_finalize(st);
    bm__conn_put(db, c);
    return e;
}

bm_err bm__sq_cw_series_record(struct bm_db *db, const struct bm_db_cw_series *v, size_t n,
                               bool held, int64_t now, int64_t month_start, struct bm_errmsg *em)
{
    struct bm__conn *c = NULL;
    sqlite3_stmt *st = NULL, *del = NULL;
    bm_err e = bm__tx_begin(db, &c, em);
    if (e != BM_OK)
        return e;
    if ((e = prepare(c, held ? sql_hold : sql_publish, &st, em)) != BM_OK ||
        (e = prepare(c, sql_forget, &del, em)) != BM_OK)
        goto done;
    for (size_t i = 0; e == BM_OK && i < n; i++) {
        sqlite3_bind_text(st, 1, v[i].set, -1, SQLITE_TRANSIENT);
        for (int k = 0; k < BM_DIMSET_MAX_DIMS; k++)
            bm__bind_str(st, 2 + k, v[i].v[k].p ? v[i].v[k] : (struct bm_str){"", 0});
        sqlite3_bind_int64(st, 7, now);
        if (!held) {
            sqlite3_bind_int64(st, 8, month_start);
            sqlite3_bind_int64(st, 9, now / 3600);
        }
        e = bm__run(c, st, "record cw_series", em);
    }
    if (e == BM_OK) {
        sqlite3_bind_int64(del, 1, now - FORGET_AFTER_S);
        e = bm__run(c, del, "forget cw_series", em);
    }
done:
    sqlite3_finalize(st);
    sqlite3_finalize(del);
    return bm__tx_end(db, c, e, em);
}

bm_err bm__sq_cw_budget(struct bm_db *db, int64_t since, int64_t month_start, bm_db_cw_set_fn fn,
                        void *ctx, struct bm_db_cw_budget *out, struct bm_errmsg *em)
{
    struct bm__conn *c = NULL;
    sqlite3_stmt *st = NULL;
    struct bm_db_cw_budget b = {0};
    bm_err e = bm__conn_get(db, &c, em);
    if (e != BM_OK)
        return e;
    if ((e = prepare(c, sql_sets, &st, em)) != BM_OK)
        goto done;
    sqlite3_bind_int64(st, 1, since);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint64_t pub = (uint64_t)sqlite3_column_int64(st, 1);
        uint64_t held = (uint64_t)sqlite3_column_int64(st, 2);
        const char *set = (const char *)sqlite3_column_text(st, 0);
        b.series += pub;
        b.held += held;
        if (fn != NULL)
            fn(ctx, set ? set : "", pub, held);
    }
    if (rc != SQLITE_DONE) {
        e = bm__sql_err(c, rc, "read cw_series", em);
        goto done;
    }
    sqlite3_finalize(st);
    st = NULL;
    if ((e = prepare(c, sql_totals, &st, em)) != BM_OK)
        goto done;
    sqlite3_bind_int64(st, 1, month_start);
    if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
        e = bm__sql_err(c, rc, "read cw_series", em);
        goto done;
    }
    b.series_hours = (uint64_t)sqlite3_column_int64(st, 0);
    b.held_back_total = (uint64_t)sqlite3_column_int64(st, 1);
    *out = b;
done:
    sqlite3_finalize(st);
    bm__conn_put(db, c);
    return e;
}
