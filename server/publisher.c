/* publisher.c: the one thread that publishes the outbox to CloudWatch, every
 * BMAS_FLUSH_INTERVAL seconds (backing off after failures) or when POST /flush asks, and prunes
 * rows older than METRICS_RETENTION_DAYS once an hour. Data flows one way: storage fetches and
 * claims rows, core plans the calls (a pure function) and sends them, storage records each
 * answer. A call is sent only after its claim (or the begun attempt) is committed, so a
 * database that cannot be written sends nothing; after a crash only the one call in flight can
 * reach CloudWatch twice (storage/bm_storage.h describes the claim states). */
#include "server/srv_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PRUNE_EVERY_S 3600
#define FETCH_ROWS 4096
/* While writes fail, a commit is tried this often, so health turns back by itself. */
#define PROBE_EVERY_MS 1000
/* Backoff after failed flushes: added to the interval, full jitter, capped. */
#define BACKOFF_CAP_MS (15 * 60 * 1000)
/* A recorded answer is worth a few waits on a busy database: not recording it means the
 * call may be sent once more. */
#define RECORD_TRIES 3

struct bm__publisher {
    struct bm_srv *s;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    uint64_t requested, done; /* flush generations */
    struct bm__flush_report last, last_failure;
    uint64_t seq;            /* claim ids */
    int failures;            /* consecutive failed flushes, for the backoff */
    struct bm_rng rng;       /* backoff jitter */
    struct bm__lease *lease; /* NULL with BMAS_FLUSH_INTERVAL 0: never publishes on a schedule */
};

/* One flush in progress. */
struct flush {
    struct bm__publisher *p;
    struct bm_publish_result *res;
    int64_t now;
    struct bm__cw_gate *gate; /* BMAS_MAX_SERIES and the series of the budget */
};

static bm_err fail_with(struct flush *f, bm_err rc, const struct bm_errmsg *em)
{
    f->res->last_error = rc;
    if (em != NULL && em->text[0] != '\0')
        f->res->last_error_msg = *em;
    else
        bm_errmsg_set(&f->res->last_error_msg, rc, "%s", bm_err_str(rc));
    return rc;
}

/* The outbox rows of a batch as the planner reads them (borrowing the batch's strings). */
static struct bm_cw_row *plan_rows(const struct bm_db_outbox *ob)
{
    struct bm_cw_row *v = bm_calloc(ob->n ? ob->n : 1, sizeof *v);
    for (size_t i = 0; v != NULL && i < ob->n; i++)
        v[i] = (struct bm_cw_row){ob->rows[i].id, ob->rows[i].s.key, ob->rows[i].s.c};
    return v;
}

static bm_err make_plan(struct flush *f, const struct bm_db_outbox *ob, int64_t now,
                        struct bm_cw_plan **out)
{
    struct bm_srv *s = f->p->s;
    struct bm_cw_row *rows = plan_rows(ob);
    struct bm_cw_plan_opts o = {
        .dims = &s->dims,
        .namespace_name = s->cfg->cloudwatch_namespace,
        .now = now,
        .publish_cost = s->cfg->publish_cost,
        .publish_residency = s->cfg->publish_residency,
        .admit = bm__cw_gate_admit,
        .admit_ctx = f->gate,
    };
    bm_err rc = rows == NULL ? BM_E_NOMEM : bm_cw_plan_make(&o, rows, ob->n, out);
    bm_free(rows);
    /* The series are recorded as they are planned: the calls that carry them follow. */
    struct bm_errmsg em = {{0}};
    if (rc == BM_OK && (rc = bm__cw_gate_record(f->gate, &em)) != BM_OK) {
        bm_cw_plan_free(*out);
        *out = NULL;
        fail_with(f, rc, &em);
    }
    return rc;
}

/* A PutMetricData call that failed for good (BMAS-004): what /status counts, POST /flush
 * reports in its details, and the log line says. */
static void call_failed(struct flush *f, const struct bm_cw_send_result *sr, bm_err rc,
                        uint64_t datums)
{
    struct bm_srv *s = f->p->s;
    snprintf(f->res->error_type, sizeof f->res->error_type, "%s",
             sr->error_type[0] ? sr->error_type : bm_err_str(rc));
    f->res->retry_attempts = sr->attempts > 0 ? sr->attempts - 1 : 0;
    bm_db_count(s->db, BM_DB_C_ERRORS + bm_err_wire_index(BM_E_PUBLISH), 1);
    BM_LOG(BM_ERROR, "server", sr->refused ? "cloudwatch_rejected" : "cloudwatch_failed",
           sr->refused ? "CloudWatch refused datums" : "PutMetricData failed after its retries",
           BM_KV_ERR(BM_E_PUBLISH), BM_KV_STR("detail", sr->em.text),
           BM_KV_STR("namespace", s->cfg->cloudwatch_namespace),
           BM_KV_STR("errorType", f->res->error_type),
           BM_KV_INT("retryAttempts", (long long)f->res->retry_attempts),
           BM_KV_INT("datums", (long long)datums));
}

/* Records CloudWatch's answer to request k, waiting out a busy database a few times. */
static bm_err record_done(struct flush *f, const char *claim, size_t k, bool accepted,
                          uint64_t datums, bool *finished)
{
    struct bm_errmsg em = {{0}};
    bm_err rc = BM_E_STORAGE_BUSY;
    for (int i = 0; i < RECORD_TRIES && rc == BM_E_STORAGE_BUSY; i++)
        rc = bm_db_outbox_send_done(f->p->s->db, claim, k, accepted, datums, finished, &em);
    return rc == BM_OK ? BM_OK : fail_with(f, rc, &em);
}

/* Sends the requests of a claim from request `from` on, recording each answer before the next
 * call. attempt: sends of request `from` already begun with no recorded answer. nrows: the
 * claim's rows (counted as published when it ends with every call accepted). */
static bm_err run_claim(struct flush *f, const char *claim, const struct bm_cw_plan *plan,
                        size_t from, size_t nreq, int attempt, size_t nrows)
{
    struct bm_srv *s = f->p->s;
    struct bm_errmsg em = {{0}};
    bool rejected = false, finished = false;
    bm_err rc = BM_OK;
    for (size_t k = from; rc == BM_OK && k < nreq; k++) {
        /* Stopping: no further call starts (nothing recorded for it); the claim is resumed at
         * this call after the restart. */
        if (bm_stop_is_set(&s->stop))
            return BM_E_CANCELLED;
        if (k >= plan->nreq || (k == from && attempt >= 2)) {
            /* Past the plan (the dimension sets changed since the claim), or re-sent once
             * already with no answer recorded: a third copy is never sent. */
            BM_LOG(BM_WARN, "server", "publish_skipped",
                   "call already sent twice without a recorded answer (or no longer planned); "
                   "not sent again",
                   BM_KV_STR("claim", claim), BM_KV_INT("request", (long long)k));
            rc = record_done(f, claim, k, true, 0, &finished);
            continue;
        }
        int att = 0;
        if ((rc = bm_db_outbox_send_begin(s->db, claim, k, &att, &em)) != BM_OK)
            return fail_with(f, rc, &em); /* nothing recorded: nothing sent */
        struct bm_buf body;
        bm_buf_init(&body, BM_CW_MAX_BODY + 4096);
        rc = bm_cw_plan_body(plan, k, &body);
        struct bm_cw_send_result sr;
        memset(&sr, 0, sizeof sr);
        if (rc == BM_OK)
            rc = bm_cw_send(&s->aws, &body, &sr);
        bm_buf_cleanup(&body);
        f->res->failed_requests += sr.failed_attempts;
        if (rc == BM_OK) {
            f->res->requests++;
            f->res->datums += plan->req[k].ndatums;
            if (att > 1)
                BM_LOG(BM_WARN, "server", "publish_resent",
                       "a call whose answer was not recorded (crash) was sent again",
                       BM_KV_STR("claim", claim), BM_KV_INT("request", (long long)k));
            rc = record_done(f, claim, k, true, plan->req[k].ndatums, &finished);
        } else if (sr.refused) {
            call_failed(f, &sr, rc, plan->req[k].ndatums);
            rejected = true;
            fail_with(f, BM_E_PUBLISH, &sr.em);
            rc = record_done(f, claim, k, false, 0, &finished);
        } else {
            /* Nothing of it counted: release the claim (no call of it went yet) or keep it at
             * this request for the next flush. If that cannot be written, the begun attempt
             * stays, and the call is re-sent at most once. */
            bool released = false;
            if (rc == BM_E_PUBLISH || rc == BM_E_THROTTLED)
                call_failed(f, &sr, rc, plan->req[k].ndatums);
            fail_with(f, rc, &sr.em);
            bm_err r2 = bm_db_outbox_send_failed(s->db, claim, k, &released, &em);
            if (r2 != BM_OK)
                BM_LOG(BM_WARN, "server", "publish_record_failed", em.text, BM_KV_ERR(r2));
            return rc;
        }
    }
    if (rc == BM_OK && finished) {
        if (rejected)
            f->res->rows_rejected += nrows;
        else
            f->res->rows_published += nrows;
    }
    return rc;
}

/* Resumes the open claims (a crash, a failed call after others of its claim went, an answer
 * that could not be recorded), oldest first, re-planned from their rows alone. */
static bm_err resume_claims(struct flush *f)
{
    struct bm_srv *s = f->p->s;
    struct bm_errmsg em = {{0}};
    struct bm_db_claims *cl = NULL;
    bm_err rc = bm_db_outbox_claims(s->db, &cl, &em);
    if (rc != BM_OK)
        return fail_with(f, rc, &em);
    for (size_t i = 0; rc == BM_OK && i < cl->n; i++) {
        const struct bm_db_claim *c = &cl->v[i];
        struct bm_cw_plan *plan = NULL;
        if ((rc = make_plan(f, c->rows, BM_NO_BUCKET, &plan)) != BM_OK) {
            fail_with(f, rc, NULL);
            break;
        }
        if (plan->nreq != c->nreq)
            BM_LOG(BM_WARN, "server", "claim_replanned",
                   "a claim re-planned into another number of calls (BMAS_DIMENSION_SETS or "
                   "CLOUDWATCH_NAMESPACE changed since it was made)",
                   BM_KV_STR("claim", c->id), BM_KV_INT("planned", (long long)plan->nreq),
                   BM_KV_INT("claimed", (long long)c->nreq));
        if (c->attempt > 0)
            BM_LOG(BM_INFO, "server", "claim_resumed",
                   "resuming a claim whose last call has no recorded answer",
                   BM_KV_STR("claim", c->id), BM_KV_INT("request", (long long)c->sent),
                   BM_KV_INT("attempt", c->attempt));
        rc = run_claim(f, c->id, plan, c->sent, c->nreq, c->attempt, c->rows->n);
        f->res->dimension_overflow += plan->dimension_overflow;
        bm_cw_plan_free(plan);
    }
    bm_db_claims_free(cl);
    return rc;
}

/* Marks rows no call will carry (too old, or nothing CloudWatch would take). */
static bm_err mark_unsent(struct flush *f, const struct bm_db_outbox *ob, const size_t *idx,
                          size_t n, enum bm_db_outbox_state state)
{
    struct bm_errmsg em = {{0}};
    if (n == 0)
        return BM_OK;
    int64_t *ids = bm_calloc(n, sizeof *ids);
    if (ids == NULL)
        return fail_with(f, BM_E_NOMEM, NULL);
    for (size_t i = 0; i < n; i++)
        ids[i] = ob->rows[idx[i]].id;
    bm_err rc = bm_db_outbox_mark(f->p->s->db, ids, n, state, 0, 0, &em);
    bm_free(ids);
    return rc == BM_OK ? BM_OK : fail_with(f, rc, &em);
}

/* One batch of pending rows: plan, mark what goes nowhere, claim the rest, send. */
static bm_err publish_batch(struct flush *f, const struct bm_db_outbox *ob)
{
    struct bm_srv *s = f->p->s;
    struct bm_errmsg em = {{0}};
    struct bm_cw_plan *plan = NULL;
    int64_t *ids = NULL;
    bm_err rc = make_plan(f, ob, f->now, &plan);
    if (rc != BM_OK)
        return fail_with(f, rc, NULL);
    f->res->dimension_overflow += plan->dimension_overflow;
    if (plan->dimension_overflow > 0) {
        /* Counted here, when the rows are first planned (a resumed claim re-plans rows that
         * were counted already), so /status shows BMAS-009 whatever triggered the flush. */
        bm_db_count(s->db, BM_DB_C_ERRORS + bm_err_wire_index(BM_E_DIMENSIONS),
                    plan->dimension_overflow);
        BM_LOG(BM_WARN, "server", "cloudwatch_dimension_overflow",
               "dimension values over 255 characters: that dimension set is skipped for those "
               "series",
               BM_KV_ERR(BM_E_DIMENSIONS),
               BM_KV_INT("series_sets", (long long)plan->dimension_overflow));
    }
    if (plan->ndropped > 0)
        BM_LOG(BM_WARN, "server", "cloudwatch_too_old",
               "dropping deltas older than CloudWatch accepts (two weeks)",
               BM_KV_INT("rows", (long long)plan->ndropped));
    /* Rows whose every series was held back by BMAS_MAX_SERIES are done: nothing of them
     * goes, by the operator's choice (counted by the gate). */
    if ((rc = mark_unsent(f, ob, plan->dropped, plan->ndropped, BM_DB_OUTBOX_DROPPED)) != BM_OK ||
        (rc = mark_unsent(f, ob, plan->rejected, plan->nrejected, BM_DB_OUTBOX_REJECTED)) !=
            BM_OK ||
        (rc = mark_unsent(f, ob, plan->held, plan->nheld, BM_DB_OUTBOX_PUBLISHED)) != BM_OK)
        goto done;
    f->res->rows_dropped += plan->ndropped;
    f->res->rows_rejected += plan->nrejected;
    if (plan->nreq == 0)
        goto done;
    if ((ids = bm_calloc(plan->nsent, sizeof *ids)) == NULL) {
        rc = fail_with(f, BM_E_NOMEM, NULL);
        goto done;
    }
    for (size_t i = 0; i < plan->nsent; i++)
        ids[i] = ob->rows[plan->sent[i]].id;
    /* Unique across restarts: wall-clock milliseconds, this process's sequence and pid. */
    char claim[48];
    snprintf(claim, sizeof claim, "%llx-%llx-%lx",
             (unsigned long long)s->aws.clock->now_ms(s->aws.clock->impl),
             (unsigned long long)++f->p->seq, (long)getpid());
    if ((rc = bm_db_outbox_claim(s->db, claim, ids, plan->nsent, plan->nreq, f->now, &em)) !=
        BM_OK) {
        rc = fail_with(f, rc, &em); /* not claimed: nothing is sent */
        goto done;
    }
    rc = run_claim(f, claim, plan, 0, plan->nreq, 0, plan->nsent);
done:
    bm_free(ids);
    bm_cw_plan_free(plan);
    return rc;
}

static bm_err publish(struct flush *f)
{
    struct bm_errmsg em = {{0}};
    bm_err rc = bm__cw_gate_new(f->p->s, f->now, &f->gate, &em);
    if (rc != BM_OK)
        return fail_with(f, rc, &em);
    rc = resume_claims(f);
    int64_t cursor = 0;
    while (rc == BM_OK && !bm_stop_is_set(&f->p->s->stop)) {
        struct bm_db_outbox *ob = NULL;
        if ((rc = bm_db_outbox_fetch(f->p->s->db, cursor, FETCH_ROWS, &ob, &em)) != BM_OK) {
            fail_with(f, rc, &em);
            break;
        }
        size_t n = ob->n;
        if (n > 0) {
            cursor = ob->rows[n - 1].id;
            rc = publish_batch(f, ob);
        }
        bm_db_outbox_free(ob);
        if (n < FETCH_ROWS)
            break;
    }
    bm__cw_gate_end(f->gate);
    bm__cw_gate_free(f->gate);
    f->gate = NULL;
    return rc;
}

static void flush_once(struct bm__publisher *p)
{
    struct bm__flush_report rep = {.at = bm_time_now()};
    struct flush f = {.p = p, .res = &rep.res, .now = rep.at};
    int64_t t0 = bm_time_mono_ms();
    rep.rc = publish(&f);
    bm_metrics_flush(p->s->metrics, rep.rc == BM_OK || rep.rc == BM_E_CANCELLED,
                     bm_time_mono_ms() - t0);
    if (rep.rc == BM_E_CANCELLED)
        BM_LOG(BM_INFO, "server", "publish_stopped",
               "bmas is stopping: the calls not sent go at the next start",
               BM_KV_INT("requests", (long long)rep.res.requests));
    else if (rep.rc != BM_OK && rep.res.error_type[0] != '\0')
        BM_LOG(BM_ERROR, "server", "publish_failed", rep.res.last_error_msg.text, BM_KV_ERR(rep.rc),
               BM_KV_INT("requests", (long long)rep.res.requests),
               BM_KV_STR("namespace", p->s->cfg->cloudwatch_namespace),
               BM_KV_STR("errorType", rep.res.error_type),
               BM_KV_INT("retryAttempts", (long long)rep.res.retry_attempts));
    else if (rep.rc != BM_OK)
        BM_LOG(BM_ERROR, "server", "publish_failed", rep.res.last_error_msg.text, BM_KV_ERR(rep.rc),
               BM_KV_INT("requests", (long long)rep.res.requests));
    else if (rep.res.requests > 0)
        BM_LOG(BM_INFO, "server", "published", "metrics published to CloudWatch",
               BM_KV_INT("datums", (long long)rep.res.datums),
               BM_KV_INT("requests", (long long)rep.res.requests),
               BM_KV_INT("rows", (long long)rep.res.rows_published));
    p->failures = rep.rc == BM_OK || rep.rc == BM_E_CANCELLED ? 0 : p->failures + 1;
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

/* Milliseconds until the next scheduled flush: the interval, plus after failed flushes a
 * capped exponential backoff with full jitter (throttling and outages are not hammered). */
static int64_t flush_delay_ms(struct bm__publisher *p, long interval)
{
    int64_t ms = interval * 1000;
    if (p->failures > 0)
        ms += bm_backoff_ms(&p->rng, p->failures, interval * 1000, BACKOFF_CAP_MS);
    return ms;
}

/* The lease was just taken over from another instance: publish what it left at once. */
static void on_gain(void *ctx)
{
    struct bm__publisher *p = ctx;
    pthread_mutex_lock(&p->mu);
    p->requested++;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static void *run(void *arg)
{
    struct bm__publisher *p = arg;
    long interval = p->s->cfg->flush_interval_s;
    int64_t next_flush = bm_time_mono_ms() + interval * 1000;
    int64_t next_prune = bm_time_mono_ms();
    int64_t next_probe = 0;
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        int64_t now = bm_time_mono_ms();
        bool due = interval > 0 && now >= next_flush;
        bool asked = p->requested > p->done;
        /* While writes fail, an empty commit now and then tells when they work again (the
         * health /healthz reports), even with nothing to ingest or publish. */
        bool unhealthy = bm_db_write_health(p->s->db, NULL, NULL) != BM_OK;
        bool probe = unhealthy && now >= next_probe;
        if (!due && !asked && !probe && now < next_prune) {
            int64_t wake = next_prune;
            if (interval > 0 && next_flush < wake)
                wake = next_flush;
            if (unhealthy && next_probe < wake)
                wake = next_probe;
            struct timespec ts;
            bm_mono_deadline(wake - now, &ts);
            pthread_cond_timedwait(&p->cv, &p->mu, &ts);
            continue;
        }
        uint64_t gen = p->requested;
        pthread_mutex_unlock(&p->mu);
        if (probe) {
            struct bm_errmsg em;
            (void)bm_db_flush_counters(p->s->db, &em); /* the outcome is the health itself */
            next_probe = bm_time_mono_ms() + PROBE_EVERY_MS;
        }
        if (now >= next_prune) {
            prune(p);
            next_prune = now + PRUNE_EVERY_S * 1000;
        }
        bool held = bm__lease_held(p->lease);
        /* A stand-by skips its scheduled flushes; POST /flush runs anywhere (the claims keep
         * a row from being sent twice). */
        if ((due && held) || asked) {
            flush_once(p);
            next_flush = bm_time_mono_ms() + flush_delay_ms(p, interval);
        } else if (due) {
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
    bm_rng_seed(&p->rng, (uint64_t)bm_time_mono_ms() ^ (uint64_t)getpid());
    pthread_mutex_init(&p->mu, NULL);
    bm_cond_init_mono(&p->cv);
    /* The lease first, so /status names the publisher from the start. */
    long interval = s->cfg->flush_interval_s;
    if (interval > 0 && bm__lease_start(s, interval, on_gain, p, &p->lease) != BM_OK) {
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        bm_free(p);
        return BM_E_INTERNAL;
    }
    if (pthread_create(&p->th, NULL, run, p) != 0) {
        bm__lease_stop(p->lease);
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
    if (rc != BM_OK) {
        bm_errmsg_set(&out->res.last_error_msg, rc, "flush still running after %ld s",
                      timeout_ms / 1000);
        snprintf(out->res.error_type, sizeof out->res.error_type, "FlushTimeout");
        out->res.retry_attempts = 0;
    }
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

void bm__publisher_role(struct bm__publisher *p, bool *publisher, char *holder, size_t cap)
{
    bm__lease_role(p != NULL ? p->lease : NULL, publisher, holder, cap);
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
    bm__lease_stop(p->lease); /* after the last flush: then a stand-by takes over */
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    bm_free(p);
}
