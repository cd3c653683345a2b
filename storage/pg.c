/* pg.c: the PostgreSQL store's libpq layer: BMAS_DB URL check, a bounded pool of connections,
 * transactions retried on serialization failures and deadlocks, and server errors mapped to
 * bm_err with messages that name the server but never its password. */
#include "storage/pg_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct bm_pg {
    char *url;      /* as given, password included: zeroed before it is freed */
    char *password; /* decoded, only to scrub it out of libpq's messages; may be NULL */
    char desc[200];
    struct bm_pg_options opt;
    pthread_mutex_t lock; /* guards the pool below, never held across a network call */
    pthread_cond_t cond;
    PGconn **idle;
    int nidle;
    int nall;        /* open plus being opened: what max_connections bounds */
    atomic_uint seq; /* distinct backoff seeds per transaction */
    atomic_uint_fast64_t retries;
};

bool bm__pg_url_is(const char *s)
{
    return s != NULL &&
           (strncmp(s, "postgres://", 11) == 0 || strncmp(s, "postgresql://", 13) == 0);
}

static void secret_free(char *s)
{
    if (s == NULL)
        return;
    /* volatile: the compiler may not drop stores to memory about to be freed. */
    for (volatile char *p = s; *p != '\0'; p++)
        *p = '\0';
    bm_free(s);
}

/* Replaces every occurrence of secret (len bytes) in text with "***", in place (text is a
 * NUL-terminated buffer of cap bytes; the result never grows past what fits). */
static void scrub(char *text, size_t cap, const char *secret, size_t len)
{
    char *hit;
    if (secret == NULL || len == 0)
        return;
    while ((hit = strstr(text, secret)) != NULL) {
        /* "***" is at most as long as any secret of 3+ bytes; shorter ones grow the text. */
        size_t tail = strlen(hit + len);
        if (len >= 3 || (size_t)(hit - text) + 3 + tail < cap) {
            memmove(hit + 3, hit + len, tail + 1);
            memcpy(hit, "***", 3);
        } else {
            memset(hit, '*', len);
        }
    }
}

/* The raw password of a URL (userinfo after ':' or a password= parameter), for scrubbing
 * libpq's message when the URL could not even be parsed. */
static void scrub_raw(char *text, size_t cap, const char *url)
{
    const char *a = strstr(url, "://");
    if (a == NULL)
        return;
    a += 3;
    size_t alen = strcspn(a, "/?");
    const char *at = NULL;
    for (const char *p = a; p < a + alen; p++)
        if (*p == '@')
            at = p;
    const char *colon = at != NULL ? memchr(a, ':', (size_t)(at - a)) : NULL;
    if (colon != NULL) {
        char pw[256];
        size_t n = (size_t)(at - colon - 1);
        if (n < sizeof pw) {
            memcpy(pw, colon + 1, n);
            pw[n] = '\0';
            scrub(text, cap, pw, n);
        }
    }
    const char *q = strstr(url, "password=");
    if (q != NULL) {
        char pw[256];
        size_t n = strcspn(q + 9, "&");
        if (n < sizeof pw) {
            memcpy(pw, q + 9, n);
            pw[n] = '\0';
            scrub(text, cap, pw, n);
        }
    }
}

/* libpq's messages end in a newline and may span lines ("\n\tIs the server running..."):
 * one line for a log field, each run of white space one space. */
static void one_line(char *s)
{
    char *w = s;
    for (const char *r = s; *r != '\0'; r++) {
        bool is_space = *r == '\n' || *r == '\t' || *r == ' ';
        if (!is_space)
            *w++ = *r;
        else if (w > s && w[-1] != ' ')
            *w++ = ' ';
    }
    if (w > s && w[-1] == ' ')
        w--;
    *w = '\0';
}

static const char *opt_val(const PQconninfoOption *o, const char *key)
{
    for (; o->keyword != NULL; o++)
        if (strcmp(o->keyword, key) == 0)
            return o->val != NULL && o->val[0] != '\0' ? o->val : NULL;
    return NULL;
}

/* Parses url; on success *opts owns libpq's option list (PQconninfoFree). */
static bm_err parse(const char *url, PQconninfoOption **opts, struct bm_errmsg *em)
{
    char *err = NULL;
    if (!bm__pg_url_is(url))
        return bm_errmsg_set(em, BM_E_CONFIG,
                             "BMAS_DB: a PostgreSQL URL starts with postgres:// or postgresql://");
    PQconninfoOption *o = PQconninfoParse(url, &err);
    if (o == NULL) {
        if (err == NULL)
            return bm_errmsg_set(em, BM_E_NOMEM, "BMAS_DB: out of memory");
        bm_err e = bm_errmsg_set(em, BM_E_CONFIG, "BMAS_DB: not a valid PostgreSQL URL: %s", err);
        PQfreemem(err);
        if (em != NULL) {
            one_line(em->text);
            scrub_raw(em->text, sizeof em->text, url);
        }
        return e;
    }
    *opts = o;
    return BM_OK;
}

static void describe(const PQconninfoOption *o, char *desc, size_t cap)
{
    const char *user = opt_val(o, "user"), *host = opt_val(o, "host");
    const char *port = opt_val(o, "port"), *db = opt_val(o, "dbname");
    snprintf(desc, cap, "postgresql://%s%s%s%s%s/%s", user ? user : "", user ? "@" : "",
             host ? host : "", port ? ":" : "", port ? port : "", db ? db : "");
}

bm_err bm__pg_url_check(const char *url, char *desc, size_t cap, struct bm_errmsg *em)
{
    PQconninfoOption *o = NULL;
    bm_err e = parse(url, &o, em);
    if (e != BM_OK)
        return e;
    describe(o, desc, cap);
    PQconninfoFree(o);
    return BM_OK;
}

const char *bm__pg_desc(const struct bm_pg *pg)
{
    return pg->desc;
}

int bm__pg_attr_max(const struct bm_pg *pg)
{
    return pg->opt.attr_max_values;
}

uint64_t bm__pg_retries(struct bm_pg *pg)
{
    return atomic_load(&pg->retries);
}

static bool is_retryable(const char *sqlstate)
{
    return strcmp(sqlstate, "40001") == 0 || strcmp(sqlstate, "40P01") == 0;
}

/* Whether a server error means "the store is away or overloaded for now" (503, retry later)
 * rather than a fault that retrying cannot fix. */
static bool is_busy(const char *ss)
{
    static const char *const busy[] = {
        "40001", "40P01",          /* serialization failure, deadlock: run it again */
        "53300",                   /* too many connections */
        "55P03",                   /* lock not available (lock_timeout) */
        "57014",                   /* statement cancelled (statement_timeout) */
        "57P01", "57P02", "57P03", /* shut down, crashed, starting: a restart or failover */
        "25006",                   /* read-only transaction: a failover left us on a standby */
    };
    if (strncmp(ss, "08", 2) == 0) /* connection exceptions */
        return true;
    for (size_t i = 0; i < sizeof busy / sizeof busy[0]; i++)
        if (strcmp(ss, busy[i]) == 0)
            return true;
    return false;
}

bm_err bm__pg_err(struct bm_pg *pg, PGconn *c, const PGresult *r, const char *what,
                  struct bm_errmsg *em)
{
    const char *ss = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r != NULL ? PQresultErrorMessage(r) : NULL;
    bm_err e;
    if (msg == NULL || msg[0] == '\0')
        msg = c != NULL ? PQerrorMessage(c) : "";
    if (ss != NULL) {
        e = is_busy(ss) ? BM_E_STORAGE_BUSY : BM_E_STORAGE;
    } else if (c == NULL || PQstatus(c) == CONNECTION_BAD) {
        /* No SQLSTATE: libpq's own failure. At connect time the server's refusal of the
         * credentials or the database comes as text only (localised by the server's
         * lc_messages; bmas's tests run it in C). Those need a configuration change, the
         * rest (refused, unreachable, timed out, lost) needs the server back. */
        bool is_config = PQconnectionNeedsPassword(c) || strstr(msg, "authentication") ||
                         strstr(msg, "does not exist") || strstr(msg, "no pg_hba.conf");
        e = c == NULL ? BM_E_NOMEM : is_config ? BM_E_STORAGE : BM_E_STORAGE_BUSY;
    } else {
        e = r == NULL ? BM_E_NOMEM : BM_E_STORAGE;
    }
    bm_errmsg_set(em, e, "%s: %s (PostgreSQL%s%s, %s)", what, msg[0] ? msg : bm_err_str(e),
                  ss ? " " : "", ss ? ss : "", pg->desc);
    if (em != NULL) {
        one_line(em->text);
        scrub(em->text, sizeof em->text, pg->password, pg->password ? strlen(pg->password) : 0);
    }
    return e;
}

static bm_err conn_open(struct bm_pg *pg, PGconn **out, struct bm_errmsg *em)
{
    char timeout[16];
    snprintf(timeout, sizeof timeout, "%d", pg->opt.connect_timeout_s);
    /* expand_dbname: the URL, as the dbname value, is expanded into its parameters. libpq
     * takes keywords in order, the last value winning: the URL goes last so that its own
     * connect_timeout or application_name overrides these defaults. */
    const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *const vals[] = {timeout, "bmas", pg->url, NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (c == NULL || PQstatus(c) != CONNECTION_OK) {
        bm_err e = bm__pg_err(pg, c, NULL, "connect", em);
        PQfinish(c);
        return e;
    }
    *out = c;
    return BM_OK;
}

static bm_err conn_get(struct bm_pg *pg, PGconn **out, struct bm_errmsg *em)
{
    pthread_mutex_lock(&pg->lock);
    while (pg->nidle == 0 && pg->nall >= pg->opt.max_connections)
        pthread_cond_wait(&pg->cond, &pg->lock);
    if (pg->nidle > 0) {
        *out = pg->idle[--pg->nidle];
        pthread_mutex_unlock(&pg->lock);
        return BM_OK;
    }
    /* Reserve a place under the bound, then connect outside the lock (a network round trip,
     * up to connect_timeout when the server is away). */
    pg->nall++;
    pthread_mutex_unlock(&pg->lock);
    PGconn *c = NULL;
    bm_err e = conn_open(pg, &c, em);
    if (e != BM_OK) {
        pthread_mutex_lock(&pg->lock);
        pg->nall--;
        pthread_cond_signal(&pg->cond);
        pthread_mutex_unlock(&pg->lock);
        return e;
    }
    *out = c;
    return BM_OK;
}

/* Returns c to the pool, or closes it when it is broken or still inside a transaction (a
 * ROLLBACK that failed) or discard is set: the next user must get a clean session. */
static void conn_put(struct bm_pg *pg, PGconn *c, bool discard)
{
    bool broken = discard || PQstatus(c) != CONNECTION_OK ||
                  PQtransactionStatus(c) != PQTRANS_IDLE || PQpipelineStatus(c) != PQ_PIPELINE_OFF;
    if (broken)
        PQfinish(c);
    pthread_mutex_lock(&pg->lock);
    if (broken)
        pg->nall--;
    else
        pg->idle[pg->nidle++] = c;
    pthread_cond_signal(&pg->cond);
    pthread_mutex_unlock(&pg->lock);
}

bm_err bm__pg_open(const char *url, const struct bm_pg_options *opt, struct bm_pg **out,
                   struct bm_errmsg *em)
{
    PQconninfoOption *o = NULL;
    PGconn *c = NULL;
    bm_err e = parse(url, &o, em);
    if (e != BM_OK)
        return e;
    struct bm_pg *pg = bm_calloc(1, sizeof *pg);
    if (pg == NULL) {
        PQconninfoFree(o);
        return bm_errmsg_set(em, BM_E_NOMEM, "storage: out of memory");
    }
    pthread_mutex_init(&pg->lock, NULL);
    pthread_cond_init(&pg->cond, NULL);
    if (opt != NULL)
        pg->opt = *opt;
    if (pg->opt.max_connections <= 0)
        pg->opt.max_connections = 8;
    if (pg->opt.max_attempts <= 0)
        pg->opt.max_attempts = 8;
    if (pg->opt.connect_timeout_s <= 0)
        pg->opt.connect_timeout_s = 5;
    if (pg->opt.attr_max_values <= 0)
        pg->opt.attr_max_values = 100;
    describe(o, pg->desc, sizeof pg->desc);
    const char *pw = opt_val(o, "password");
    pg->url = bm_strdup(url);
    pg->password = pw != NULL ? bm_strdup(pw) : NULL;
    pg->idle = bm_calloc((size_t)pg->opt.max_connections, sizeof *pg->idle);
    /* libpq's copy of the password goes with the list; nothing zeroes it (PQconninfoFree
     * only frees), as with the copies libpq keeps per connection. */
    PQconninfoFree(o);
    if (pg->url == NULL || pg->idle == NULL || (pw != NULL && pg->password == NULL)) {
        e = bm_errmsg_set(em, BM_E_NOMEM, "storage: out of memory");
        goto fail;
    }
    /* One connection now: a wrong URL or password fails at start-up, not at the first
     * object. */
    if ((e = conn_get(pg, &c, em)) != BM_OK)
        goto fail;
    conn_put(pg, c, false);
    *out = pg;
    return BM_OK;
fail:
    bm__pg_close(pg);
    return e;
}

void bm__pg_close(struct bm_pg *pg)
{
    if (pg == NULL)
        return;
    for (int i = 0; i < pg->nidle; i++)
        PQfinish(pg->idle[i]);
    bm_free(pg->idle);
    secret_free(pg->url);
    secret_free(pg->password);
    pthread_cond_destroy(&pg->cond);
    pthread_mutex_destroy(&pg->lock);
    bm_free(pg);
}

static bm_err begin(struct bm__pg_tx *t, const char *iso, struct bm_errmsg *em)
{
    char sql[64];
    snprintf(sql, sizeof sql, "BEGIN%s%s", iso ? " ISOLATION LEVEL " : "", iso ? iso : "");
    return bm__pg_exec(t, sql, NULL, NULL, NULL, em);
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* The attempts of one transaction, on a pooled connection each, or all on session's. */
static bm_err tx_attempts(struct bm_pg *pg, PGconn *session, const char *iso, bm__pg_tx_fn fn,
                          void *ctx, struct bm_errmsg *em)
{
    struct bm_rng rng;
    bm_rng_seed(&rng, (uint64_t)bm_time_now() * 1000003u + atomic_fetch_add(&pg->seq, 1) + 1);
    bm_err e = BM_OK;
    struct bm__pg_tx t = {.pg = pg};
    for (int attempt = 1; attempt <= pg->opt.max_attempts; attempt++) {
        t.conn = session;
        if (session == NULL && (e = conn_get(pg, &t.conn, em)) != BM_OK)
            return e;
        t.attempt = attempt;
        t.sqlstate[0] = '\0';
        e = begin(&t, iso, em);
        /* A pooled connection the server dropped (restart, idle timeout, failover) is only
         * found out by using it. Nothing was done yet, so reconnecting is safe (not for a
         * session: what it holds went with the old connection). */
        if (e != BM_OK && session == NULL && PQstatus(t.conn) == CONNECTION_BAD) {
            PQreset(t.conn);
            e = PQstatus(t.conn) == CONNECTION_OK ? begin(&t, iso, em)
                                                  : bm__pg_err(pg, t.conn, NULL, "reconnect", em);
        }
        if (e == BM_OK)
            e = fn(&t, ctx, em);
        /* COMMIT goes with what fn piped: one round trip for the transaction's writes. */
        if (e == BM_OK && (e = bm__pg_pipe(&t, "COMMIT", NULL, em)) == BM_OK)
            e = bm__pg_pipe_flush(&t, em);
        else if (e != BM_OK)
            (void)bm__pg_pipe_flush(&t, NULL); /* fn's error is the one to tell */
        if (e != BM_OK && PQstatus(t.conn) == CONNECTION_OK &&
            PQtransactionStatus(t.conn) != PQTRANS_IDLE) {
            PGresult *r = PQexec(t.conn, "ROLLBACK");
            PQclear(r);
        }
        if (session == NULL)
            conn_put(pg, t.conn, false);
        /* Only the server's verdict that the transaction lost a race is retried here: the
         * work is rolled back, so running it again is safe. A connection lost mid-way may
         * have committed (COMMIT's answer lost): that is the caller's to retry, and the
         * processed row makes the retry a duplicate, never a second count. */
        if (e == BM_OK || e != BM_E_STORAGE_BUSY || !is_retryable(t.sqlstate))
            return e;
        atomic_fetch_add(&pg->retries, 1);
        if (attempt < pg->opt.max_attempts)
            sleep_ms(bm_backoff_ms(&rng, attempt, 5, 500));
    }
    if (em != NULL) {
        char last[sizeof em->text];
        memcpy(last, em->text, sizeof last);
        bm_errmsg_set(em, e, "gave up after %d attempts: %s", pg->opt.max_attempts, last);
    }
    return e;
}

bm_err bm__pg_tx_run(struct bm_pg *pg, const char *iso, bm__pg_tx_fn fn, void *ctx,
                     struct bm_errmsg *em)
{
    return tx_attempts(pg, NULL, iso, fn, ctx, em);
}

bm_err bm__pg_tx_in(struct bm__pg_tx *session, const char *iso, bm__pg_tx_fn fn, void *ctx,
                    struct bm_errmsg *em)
{
    return tx_attempts(session->pg, session->conn, iso, fn, ctx, em);
}

bm_err bm__pg_read(struct bm_pg *pg, bm__pg_tx_fn fn, void *ctx, struct bm_errmsg *em)
{
    struct bm__pg_tx t = {.pg = pg, .attempt = 1};
    bm_err e = conn_get(pg, &t.conn, em);
    if (e != BM_OK)
        return e;
    e = fn(&t, ctx, em);
    /* A pooled connection the server dropped is only found out by using it; a read can run
     * again on a fresh one. */
    if (e != BM_OK && PQstatus(t.conn) == CONNECTION_BAD) {
        PQreset(t.conn);
        t.attempt = 2;
        t.sqlstate[0] = '\0';
        e = PQstatus(t.conn) == CONNECTION_OK ? fn(&t, ctx, em)
                                              : bm__pg_err(pg, t.conn, NULL, "reconnect", em);
    }
    bm_err pe = bm__pg_pipe_flush(&t, em); /* a read pipes nothing; if it did, it is answered */
    if (e == BM_OK)
        e = pe;
    conn_put(pg, t.conn, false);
    return e;
}

bm_err bm__pg_session(struct bm_pg *pg, bm__pg_tx_fn fn, void *ctx, struct bm_errmsg *em)
{
    struct bm__pg_tx t = {.pg = pg, .attempt = 1};
    bm_err e = conn_get(pg, &t.conn, em);
    if (e != BM_OK)
        return e;
    /* The same check as a transaction's first statement: a dropped idle connection is
     * reopened before the session starts. */
    PGresult *r = PQexec(t.conn, "SELECT 1");
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQstatus(t.conn) == CONNECTION_BAD)
        PQreset(t.conn);
    PQclear(r);
    e = fn(&t, ctx, em);
    bm_err pe = bm__pg_pipe_flush(&t, em);
    if (e == BM_OK)
        e = pe;
    /* Session state (advisory locks above all) must not reach the connection's next user:
     * drop it, or the connection when that fails. */
    bool clean = false;
    if (PQstatus(t.conn) == CONNECTION_OK && PQtransactionStatus(t.conn) == PQTRANS_IDLE) {
        r = PQexec(t.conn, "SELECT pg_advisory_unlock_all()");
        clean = PQresultStatus(r) == PGRES_TUPLES_OK;
        PQclear(r);
    }
    conn_put(pg, t.conn, !clean);
    return e;
}
