/* publisher.c: the one thread that publishes the outbox to CloudWatch, every
 * BMAS_FLUSH_INTERVAL seconds or when POST /flush asks, and prunes rows older than
 * METRICS_RETENTION_DAYS once an hour. storage/'s bm_db_publisher adapts the database to
 * core's publisher. */
#include "server/srv_int.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#define PRUNE_EVERY_S 3600

struct bm__publisher {
    struct bm_srv *s;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    uint64_t requested, done; /* flush generations */
    struct bm__flush_report last, last_failure;
};

static void flush_once(struct bm__publisher *p)
{
    struct bm_srv *s = p->s;
    struct bm_db_publisher dbp;
    struct bm_outbox_ops ops;
    bm_db_publisher_init(&dbp, s->db, &ops);
    struct bm__flush_report rep = {.at = bm_time_now()};
    rep.rc = bm_cw_publish(&s->aws, &s->dims, &ops, rep.at, &rep.res);
    if (rep.rc != BM_OK && dbp.em.text[0] != '\0' && rep.res.last_error_msg.text[0] == '\0')
        rep.res.last_error_msg = dbp.em; /* a storage failure: say which */
    bm_db_publisher_cleanup(&dbp);
    if (rep.rc != BM_OK)
        BM_LOG(BM_ERROR, "server", "publish_failed", rep.res.last_error_msg.text, BM_KV_ERR(rep.rc),
               BM_KV_INT("requests", (long long)rep.res.requests));
    else if (rep.res.requests > 0)
        BM_LOG(BM_INFO, "server", "published", "metrics published to CloudWatch",
               BM_KV_INT("datums", (long long)rep.res.datums),
               BM_KV_INT("requests", (long long)rep.res.requests),
               BM_KV_INT("rows", (long long)rep.res.rows_published));
    pthread_mutex_lock(&p->mu);
    p->last = rep;
    if (rep.rc != BM_OK)
        p->last_failure = rep;
    pthread_mutex_unlock(&p->mu);
}

static void prune(struct bm__publisher *p)
{
    struct bm_db_prune_stats ps;
    struct bm_errmsg em;
    int64_t cutoff = bm_time_now() - p->s->cfg->metrics_retention_days * 86400;
    bm_err rc = bm_db_prune(p->s->db, cutoff, &ps, &em);
    if (rc != BM_OK)
        BM_LOG(BM_WARN, "server", "prune_failed", em.text, BM_KV_ERR(rc));
    else if (ps.aggregates + ps.processed + ps.outbox + ps.failures > 0)
        BM_LOG(BM_INFO, "server", "pruned", "rows older than METRICS_RETENTION_DAYS removed",
               BM_KV_INT("aggregates", (long long)ps.aggregates),
               BM_KV_INT("processed", (long long)ps.processed));
}

static void *run(void *arg)
{
    struct bm__publisher *p = arg;
    long interval = p->s->cfg->flush_interval_s;
    int64_t next_flush = bm_time_mono_ms() + interval * 1000;
    int64_t next_prune = bm_time_mono_ms();
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        int64_t now = bm_time_mono_ms();
        bool due = interval > 0 && now >= next_flush;
        bool asked = p->requested > p->done;
        if (!due && !asked && now < next_prune) {
            int64_t wake = next_prune;
            if (interval > 0 && next_flush < wake)
                wake = next_flush;
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t ms = wake - now;
            ts.tv_sec += ms / 1000;
            ts.tv_nsec += (ms % 1000) * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&p->cv, &p->mu, &ts);
            continue;
        }
        uint64_t gen = p->requested;
        pthread_mutex_unlock(&p->mu);
        if (now >= next_prune) {
            prune(p);
            next_prune = now + PRUNE_EVERY_S * 1000;
        }
        if (due || asked) {
            flush_once(p);
            next_flush = bm_time_mono_ms() + interval * 1000;
        }
        pthread_mutex_lock(&p->mu);
        if (due || asked)
            p->done = gen > p->done ? gen : p->done;
        pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

bm_err bm__publisher_start(struct bm_srv *s, struct bm__publisher **out)
{
    struct bm__publisher *p = bm_calloc(1, sizeof *p);
    if (p == NULL)
        return BM_E_NOMEM;
    p->s = s;
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&p->th, NULL, run, p) != 0) {
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        bm_free(p);
        return BM_E_INTERNAL;
    }
    *out = p;
    return BM_OK;
}

bm_err bm__publisher_flush(struct bm__publisher *p, long timeout_ms, struct bm__flush_report *out)
{
    pthread_mutex_lock(&p->mu);
    uint64_t want = ++p->requested;
    pthread_cond_broadcast(&p->cv);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += timeout_ms / 1000;
    bm_err rc = BM_OK;
    while (p->done < want && !p->stop) {
        if (pthread_cond_timedwait(&p->cv, &p->mu, &ts) == ETIMEDOUT) {
            rc = BM_E_PUBLISH;
            break;
        }
    }
    *out = p->last;
    if (rc != BM_OK)
        bm_errmsg_set(&out->res.last_error_msg, rc, "flush still running after %ld s",
                      timeout_ms / 1000);
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void bm__publisher_last(struct bm__publisher *p, struct bm__flush_report *out,
                        struct bm__flush_report *last_failure)
{
    if (p == NULL) { /* not started (a unit test of the routes): nothing flushed yet */
        *out = (struct bm__flush_report){0};
        *last_failure = (struct bm__flush_report){0};
        return;
    }
    pthread_mutex_lock(&p->mu);
    *out = p->last;
    *last_failure = p->last_failure;
    pthread_mutex_unlock(&p->mu);
}

void bm__publisher_stop(struct bm__publisher *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->th, NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    bm_free(p);
}
