/* events.c: POST /events and the processing the SQS consumer shares. Each object named by a
 * message is answered from the database when it can be (duplicates, non-logs, quarantined),
 * otherwise fetched on the worker pool into an in-memory delta and committed in ONE
 * transaction (storage/), which is what makes redeliveries count once (docs/architecture.md). */
#include "server/srv_int.h"

#include <stdio.h>
#include <string.h>

/* Waits for the tasks of one batch. */
struct latch {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t pending;
};

struct task {
    struct bm_srv *s;
    const struct bm_object_ref *ref;
    const struct bm_message *msg;
    struct bm__msg_result *res;
    struct latch *latch;
    const char *req_id;
    struct bm_log_ctx log; /* the request's log context, taken over by the worker */
};

enum outcome { O_PROCESSED, O_DUPLICATE, O_IGNORED, O_QUARANTINED, O_FAILED };

/* Folds one object's outcome into its message's result (under the latch lock when shared). */
static void tally(struct bm__msg_result *r, enum outcome o, bm_err rc, const struct bm_errmsg *em,
                  uint64_t records, uint64_t invalid)
{
    switch (o) {
    case O_PROCESSED:
        r->processed++;
        r->records += records;
        r->invalid += invalid;
        break;
    case O_DUPLICATE:
        r->duplicates++;
        break;
    case O_IGNORED:
        r->ignored++;
        break;
    case O_QUARANTINED:
        r->quarantined++;
        break;
    case O_FAILED:
        if (!r->failed) {
            r->failed = true;
            r->code = rc;
            if (em != NULL)
                r->em = *em;
        }
        break;
    }
}

/* The event's version id as an identity: "null" is the version of an object written while
 * the bucket was unversioned, which is identified by its ETag. */
static const char *event_version(const struct bm_object_ref *ref)
{
    return strcmp(ref->version_id, "null") == 0 ? "" : ref->version_id;
}

/* Commits with a few retries on a busy database: the transaction is short and WAL writers
 * queue, so BUSY past the busy timeout means real contention worth a second try. */
static bm_err commit(struct bm_srv *s, const struct bm_db_object *obj, const char *msg_id,
                     uint64_t size, const struct bm_ingest *in, enum bm_db_commit_result *cr,
                     struct bm_errmsg *em)
{
    bm_err rc = BM_E_STORAGE_BUSY;
    for (int i = 0; i < 3 && rc == BM_E_STORAGE_BUSY; i++)
        rc = bm_db_commit_object(s->db, obj, msg_id, size, bm_ingest_agg(in), bm_ingest_stats(in),
                                 bm_time_now(), cr, em);
    return rc;
}

/* One "aggregated" line per inference profile type the object holds (the guide's Logs Insights
 * query sums inputTokens and outputTokens by inferenceProfile, so each line carries one type),
 * then the object's summary line with the guide's metrics block (docs/logging.md). */
static void log_processed(const struct task *t, const struct bm_ingest *in, int64_t dur_ms)
{
    if (!bm_log_enabled(BM_INFO))
        return;
    const struct bm_ingest_stats *st = bm_ingest_stats(in);
    const struct bm_agg *agg = bm_ingest_agg(in);
    struct bm_counters by_type[BM_PT__COUNT];
    memset(by_type, 0, sizeof by_type);
    for (size_t i = 0; i < bm_agg_count(agg); i++) {
        const struct bm_series *se = bm_agg_at(agg, i);
        if (se->key.type < BM_PT__COUNT)
            bm_counters_merge(&by_type[se->key.type], &se->c);
    }
    for (int ty = 0; ty < BM_PT__COUNT; ty++) {
        if (by_type[ty].invocations == 0)
            continue;
        BM_LOG(BM_INFO, "server", "aggregated", "tokens aggregated",
               BM_KV_STR("requestId", t->req_id), BM_KV_STR("bucket", t->ref->bucket),
               BM_KV_STR("key", t->ref->key),
               BM_KV_STR("inferenceProfile", bm_profile_type_name((enum bm_profile_type)ty)),
               BM_KV_INT("invocations", (long long)by_type[ty].invocations),
               BM_KV_INT("inputTokens", (long long)by_type[ty].input.sum),
               BM_KV_INT("outputTokens", (long long)by_type[ty].output.sum),
               BM_KV_INT("cacheReadInputTokens", (long long)by_type[ty].cache_read.sum),
               BM_KV_INT("cacheWriteInputTokens", (long long)by_type[ty].cache_write.sum));
    }
    struct bm_counters tot;
    bm_agg_totals(agg, &tot);
    char metrics[400];
    /* The spec's structured log line keeps its metric names (docs/formats.md section 7). */
    snprintf(metrics, sizeof metrics,
             "{\"recordsProcessed\":%llu,\"recordsInvalid\":%llu,\"crossRegionInvocations\":%llu,"
             "\"inputTokensAggregated\":%llu,\"outputTokensAggregated\":%llu,"
             "\"processingTimeMs\":%lld}",
             (unsigned long long)st->records, (unsigned long long)st->invalid,
             (unsigned long long)(st->invocations_by_type[BM_PT_CROSS_REGION] +
                                  st->invocations_by_type[BM_PT_GLOBAL]),
             (unsigned long long)tot.input.sum, (unsigned long long)tot.output.sum,
             (long long)dur_ms);
    /* Skipped records are named one by one at LOG_LEVEL=DEBUG; at INFO the first one is. */
    bool bad = st->invalid > 0;
    BM_LOG(BM_INFO, "server", "object_processed", "Processing complete",
           BM_KV_STR("requestId", t->req_id), BM_KV_STR("bucket", t->ref->bucket),
           BM_KV_STR("key", t->ref->key), BM_KV_RAW("metrics", metrics),
           BM_KV_STR("firstInvalidCode", bad ? bm_err_wire(st->first_error) : NULL),
           bad ? BM_KV_INT("firstInvalidRecord", (long long)st->first_error_record)
               : (struct bm_kv){.type = BM_KV_T_NONE},
           BM_KV_STR("firstInvalidReason", bad ? st->first_error_msg.text : NULL));
}

/* An object with records served outside BMAS_ALLOWED_INFERENCE_REGIONS: one WARN line with
 * BMAS-025, how many, and the first (its record and "<model> in <region>"), whatever
 * LOG_LEVEL says of INFO. The records are counted all the same. */
static void log_residency(const struct task *t, const struct bm_ingest *in)
{
    const struct bm_ingest_stats *st = bm_ingest_stats(in);
    uint64_t n = st->errors[bm_err_wire_index(BM_E_RESIDENCY)];
    if (n == 0)
        return;
    BM_LOG(BM_WARN, "server", "residency_violation",
           "inference served outside BMAS_ALLOWED_INFERENCE_REGIONS",
           BM_KV_STR("requestId", t->req_id), BM_KV_STR("bucket", t->ref->bucket),
           BM_KV_STR("key", t->ref->key), BM_KV_ERR(BM_E_RESIDENCY),
           BM_KV_INT("violations", (long long)n),
           BM_KV_INT("firstViolationRecord", (long long)st->first_violation_record),
           BM_KV_STR("firstViolation", st->first_violation));
}

/* A failed attempt: remembered, and quarantined after MAX_RETRY_ATTEMPTS. A quarantined
 * object is acknowledged when there is no DLQ to catch it (DLQ_ENABLED=false). */
/* Whether a failure says something about the object. Missing credentials, a storage outage
 * or memory pressure are bmas's own state: the message is retried, but the object must not
 * move towards quarantine for them (fixing the configuration would find it quarantined). */
static bool blames_object(bm_err rc)
{
    switch (rc) {
    case BM_E_NO_CREDENTIALS:
    case BM_E_STORAGE_BUSY:
    case BM_E_STORAGE:
    case BM_E_NOMEM:
    case BM_E_BUSY:
    case BM_E_MSG_PARSE: /* a name S3 could not have: the message's fault; it goes to the DLQ */
        return false;
    default:
        return true;
    }
}

static enum outcome failed(struct task *t, const struct bm_db_object *obj, bm_err rc,
                           const struct bm_errmsg *em)
{
    struct bm_srv *s = t->s;
    long attempts = 0;
    bool quarantined = false;
    struct bm_errmsg dem;
    if (!blames_object(rc)) {
        bm_db_count(s->db, BM_DB_C_OBJECTS_FAILED, 1);
        bm_db_count(s->db, BM_DB_C_ERRORS + bm_err_wire_index(rc), 1);
        BM_LOG(BM_ERROR, "server", "object_failed", em->text, BM_KV_STR("req_id", t->req_id),
               BM_KV_ERR(rc), BM_KV_STR("bucket", t->ref->bucket), BM_KV_STR("key", t->ref->key));
        return O_FAILED;
    }
    if (bm_db_record_failure(s->db, obj, rc, em->text, bm_time_now(), s->cfg->max_retry_attempts,
                             &attempts, &quarantined, &dem) != BM_OK)
        BM_LOG(BM_WARN, "server", "failure_not_recorded", dem.text, BM_KV_STR("req_id", t->req_id));
    BM_LOG(quarantined ? BM_ERROR : BM_WARN, "server",
           quarantined ? "object_quarantined" : "object_failed", em->text,
           BM_KV_STR("req_id", t->req_id), BM_KV_ERR(rc), BM_KV_STR("bucket", t->ref->bucket),
           BM_KV_STR("key", t->ref->key), BM_KV_INT("attempt", attempts));
    return quarantined && !s->cfg->dlq_enabled ? O_QUARANTINED : O_FAILED;
}

static void run_task(void *arg)
{
    struct task *t = arg;
    struct bm_srv *s = t->s;
    const struct bm_object_ref *ref = t->ref;
    bm_log_ctx_set(&t->log);
    struct bm_errmsg em = {{0}};
    struct bm_ingest *in = NULL;
    struct bm_s3_object_info info;
    int64_t t0 = bm_time_mono_ms();
    enum outcome o;
    uint64_t records = 0, invalid = 0;
    bm_err rc = bm_fetch_object(&s->aws, &s->iopts, ref->bucket, ref->key, ref->version_id,
                                ref->etag, &in, &info, &em);
    /* The identity recorded is what S3 answered (its version id, else its ETag), never the
     * event's strings: a forged or decorated event (an invented versionId, a quoted ETag) can
     * name the same bytes but cannot make them a second object. A failure is kept under the
     * event's (validated) names, since S3 said nothing about the object. */
    struct bm_db_object obj;
    char etag[BM_S3_ETAG_MAX + 1];
    if (rc == BM_OK) {
        const char *v = strcmp(info.version_id, "null") == 0 ? "" : info.version_id;
        if (bm_s3_etag_normalize(info.etag, strlen(info.etag), etag) != NULL)
            snprintf(etag, sizeof etag, "%.*s", (int)(sizeof etag - 1), info.etag);
        bm_db_object_init(&obj, ref->bucket, ref->key, v, etag);
    } else {
        bm_db_object_init(&obj, ref->bucket, ref->key, event_version(ref), ref->etag);
    }
    if (rc == BM_E_SUPERSEDED) {
        o = O_IGNORED; /* overwritten since: the newer object's own event counts it */
        bm_db_count_ignored(s->db);
    } else if (rc != BM_OK) {
        o = failed(t, &obj, rc, &em);
    } else {
        enum bm_db_commit_result cr;
        rc = commit(s, &obj, t->msg->message_id, info.size, in, &cr, &em);
        if (rc != BM_OK) {
            o = failed(t, &obj, rc, &em);
        } else if (cr == BM_DB_DUPLICATE) {
            o = O_DUPLICATE; /* another delivery won the race: counted once, by it */
        } else {
            o = O_PROCESSED;
            records = bm_ingest_stats(in)->records;
            invalid = bm_ingest_stats(in)->invalid;
            log_processed(t, in, bm_time_mono_ms() - t0);
            log_residency(t, in);
        }
    }
    /* Objects fetched (not superseded) count in GET /metrics, failed ones with what was read. */
    if (rc != BM_E_SUPERSEDED)
        bm_metrics_ingest(s->metrics, o == O_PROCESSED || o == O_DUPLICATE, records, invalid,
                          in != NULL ? bm_ingest_stats(in)->bytes_in : 0, bm_time_mono_ms() - t0);
    bm_ingest_free(in);
    pthread_mutex_lock(&t->latch->mu);
    tally(t->res, o, rc, &em, records, invalid);
    if (--t->latch->pending == 0)
        pthread_cond_broadcast(&t->latch->cv);
    pthread_mutex_unlock(&t->latch->mu);
    bm_log_ctx_set(NULL);
}

/* Folds an outcome into r under the batch's lock: workers may be tallying other objects of
 * the same message at the same time. */
static void tally_locked(struct latch *l, struct bm__msg_result *r, enum outcome o, bm_err rc,
                         const struct bm_errmsg *em)
{
    pthread_mutex_lock(&l->mu);
    tally(r, o, rc, em, 0, 0);
    pthread_mutex_unlock(&l->mu);
}

/* Answers what the database can answer; returns true when ref needs a fetch. */
static bool precheck(struct bm_srv *s, const struct bm_object_ref *ref, struct bm__msg_result *r,
                     struct latch *l, const char *req_id)
{
    struct bm_errmsg em = {{0}};
    if (ref->kind != BM_REF_OBJECT || bm_key_kind(ref->key, strlen(ref->key)) != BM_KEY_LOG) {
        /* Acknowledged, not failed: say why, so an ignored event is never a silent one. */
        const char *why = ref->kind == BM_REF_TEST_EVENT ? "s3:TestEvent names no object"
                          : ref->kind == BM_REF_IGNORED
                              ? "the event is not an ObjectCreated:* (only new objects count)"
                              : "the key is not a Bedrock invocation log object";
        BM_LOG(BM_INFO, "server", "object_ignored", why, BM_KV_STR("req_id", req_id),
               BM_KV_STR("event", ref->event_name), BM_KV_STR("bucket", ref->bucket),
               BM_KV_STR("key", ref->key ? ref->key : ""));
        bm_db_count_ignored(s->db);
        tally_locked(l, r, O_IGNORED, BM_OK, NULL);
        return false;
    }
    if (event_version(ref)[0] == '\0' && ref->etag[0] == '\0')
        return true; /* no identity yet: the fetch learns the ETag */
    /* Only a shortcut: a hit is an object S3 already answered for with this identity; a miss
     * is settled by the commit, under the identity S3 answers with. */
    struct bm_db_object obj;
    bm_db_object_init(&obj, ref->bucket, ref->key, event_version(ref), ref->etag);
    bool seen = false, quarantined = false;
    bm_err rc = bm_db_is_processed(s->db, &obj, &seen, &em);
    if (rc == BM_OK && seen) {
        bm_db_count(s->db, BM_DB_C_OBJECTS_DUPLICATES, 1);
        tally_locked(l, r, O_DUPLICATE, BM_OK, NULL);
        return false;
    }
    if (rc == BM_OK)
        rc = bm_db_is_quarantined(s->db, &obj, &quarantined, &em);
    if (rc != BM_OK) {
        BM_LOG(BM_WARN, "server", "storage_read_failed", em.text, BM_KV_STR("req_id", req_id),
               BM_KV_ERR(rc));
        tally_locked(l, r, O_FAILED, rc, &em);
        return false;
    }
    if (quarantined) {
        bm_errmsg_set(&em, BM_E_QUARANTINED, "s3://%s/%s failed %ld times; see /status",
                      ref->bucket, ref->key, s->cfg->max_retry_attempts);
        tally_locked(l, r, s->cfg->dlq_enabled ? O_FAILED : O_QUARANTINED, BM_E_QUARANTINED, &em);
        return false;
    }
    return true;
}

void bm__process(struct bm_srv *s, struct bm_message *msgs, size_t n,
                 struct bm__msg_result *results, const char *req_id)
{
    struct latch latch = {.pending = 0};
    pthread_mutex_init(&latch.mu, NULL);
    pthread_cond_init(&latch.cv, NULL);
    size_t ntasks = 0;
    for (size_t i = 0; i < n; i++)
        ntasks += msgs[i].nrefs;
    struct task *tasks = ntasks ? bm_calloc(ntasks, sizeof *tasks) : NULL;
    size_t used = 0;
    struct bm_log_ctx lc = bm_log_ctx_get();
    if (lc.request_id == NULL)
        lc.request_id = req_id;
    for (size_t i = 0; i < n; i++) {
        struct bm__msg_result *r = &results[i];
        memset(r, 0, sizeof *r);
        const struct bm_message *m = &msgs[i];
        if (m->parse_err != BM_OK) {
            /* Unparseable bodies are redelivered so they reach the DLQ; without a DLQ they
             * would loop until the queue's retention, so give up after MAX_RETRY_ATTEMPTS. */
            bool give_up = !s->cfg->dlq_enabled && m->receive_count >= s->cfg->max_retry_attempts;
            tally(r, give_up ? O_QUARANTINED : O_FAILED, m->parse_err, &m->parse_msg, 0, 0);
            bm_db_count(s->db, BM_DB_C_ERRORS + bm_err_wire_index(m->parse_err), 1);
            BM_LOG(BM_WARN, "server", "message_unparseable", m->parse_msg.text,
                   BM_KV_STR("req_id", req_id), BM_KV_STR("messageId", m->message_id),
                   BM_KV_ERR(m->parse_err));
            continue;
        }
        for (size_t j = 0; j < m->nrefs; j++) {
            if (!precheck(s, &m->refs[j], r, &latch, req_id))
                continue;
            if (tasks == NULL) {
                struct bm_errmsg em;
                bm_errmsg_set(&em, BM_E_NOMEM, "out of memory");
                tally_locked(&latch, r, O_FAILED, BM_E_NOMEM, &em);
                continue;
            }
            struct task *t = &tasks[used++];
            *t = (struct task){s, &m->refs[j], m, r, &latch, req_id, lc};
            pthread_mutex_lock(&latch.mu);
            latch.pending++;
            pthread_mutex_unlock(&latch.mu);
            if (bm__pool_submit(s->pool, run_task, t) != BM_OK) {
                struct bm_errmsg em;
                bm_errmsg_set(&em, BM_E_NOMEM, "out of memory");
                pthread_mutex_lock(&latch.mu);
                latch.pending--;
                tally(r, O_FAILED, BM_E_NOMEM, &em, 0, 0);
                pthread_mutex_unlock(&latch.mu);
            }
        }
    }
    pthread_mutex_lock(&latch.mu);
    while (latch.pending > 0)
        pthread_cond_wait(&latch.cv, &latch.mu);
    pthread_mutex_unlock(&latch.mu);
    pthread_cond_destroy(&latch.cv);
    pthread_mutex_destroy(&latch.mu);
    bm_free(tasks);
}

/* The events_done line's "form": which sender's shape the body had (docs/formats.md 5). */
static const char *form_name(enum bm_event_form f)
{
    switch (f) {
    case BM_FORM_BARE:
        return "bare";
    case BM_FORM_LAMBDA:
        return "lambda";
    case BM_FORM_SQS_RECORD:
        return "sqs_record";
    case BM_FORM_SQS_ARRAY:
        return "sqs_array";
    }
    return "?";
}

void bm__route_events(struct bm_srv *s, const char *body, size_t len, const char *req_id,
                      struct bm__reply *r)
{
    struct bm_errmsg em = {{0}};
    struct bm_event_batch *b = NULL;
    /* The batch is counted against BATCH_SIZE by the parser's first pass, before anything of
     * it is built. */
    bm_err rc = bm_envelope_parse(body, len, (size_t)s->cfg->batch_size, &b, &em);
    if (rc != BM_OK) {
        bm_db_count(s->db, BM_DB_C_ERRORS + bm_err_wire_index(rc), 1);
        bm__reply_error(r, rc, em.text, NULL);
        r->retry_after_s = bm__retry_after_s(rc);
        return;
    }
    struct bm__msg_result *res = bm_calloc(b->n, sizeof *res);
    if (res == NULL) {
        bm__reply_error(r, BM_E_NOMEM, "out of memory", NULL);
        r->retry_after_s = bm__retry_after_s(BM_E_NOMEM);
        bm_event_batch_free(b);
        return;
    }
    int64_t t0 = bm_time_mono_ms();
    bm__process(s, b->msgs, b->n, res, req_id);
    unsigned processed = 0, dup = 0, ign = 0, quar = 0, failed = 0;
    for (size_t i = 0; i < b->n; i++) {
        processed += res[i].processed;
        dup += res[i].duplicates;
        ign += res[i].ignored;
        quar += res[i].quarantined;
        failed += res[i].failed;
    }
    bm__events_answer(b, res, req_id, r);
    BM_LOG(BM_INFO, "server", "events_done", "batch handled", BM_KV_STR("req_id", req_id),
           BM_KV_STR("form", form_name(b->form)), BM_KV_INT("messages", (long long)b->n),
           BM_KV_INT("processed", processed), BM_KV_INT("duplicates", dup),
           BM_KV_INT("ignored", ign), BM_KV_INT("quarantined", quar), BM_KV_INT("failed", failed),
           BM_KV_INT("dur_ms", bm_time_mono_ms() - t0));
    bm_free(res);
    bm_event_batch_free(b);
}
