/* consumer.c: consumer mode (BMAS_SQS_QUEUE_URL): long-polls the queue, processes each
 * message exactly as POST /events would, and deletes the ones that succeeded. Failed messages
 * stay: their visibility timeout brings them back, and the queue's redrive policy moves them
 * to its DLQ after maxReceiveCount, the same contract as Lambda's partial batch response. */
#include "server/srv_int.h"

#include <string.h>

#define ERROR_BACKOFF_MS 2000

struct bm__consumer {
    struct bm_srv *s;
    pthread_t th;
    pthread_mutex_t mu;
    struct bm__consumer_stats st;
};

static void record_error(struct bm__consumer *c, bm_err rc, const struct bm_errmsg *em)
{
    pthread_mutex_lock(&c->mu);
    c->st.last_error = rc;
    c->st.last_error_msg = *em;
    pthread_mutex_unlock(&c->mu);
}

static void handle_batch(struct bm__consumer *c, struct bm_sqs_batch *b)
{
    struct bm_srv *s = c->s;
    struct bm_message *msgs = bm_calloc(b->n, sizeof *msgs);
    struct bm__msg_result *res = bm_calloc(b->n, sizeof *res);
    const char **receipts = bm_calloc(b->n, sizeof *receipts);
    if (msgs == NULL || res == NULL || receipts == NULL)
        goto done; /* nothing deleted: the messages come back after their visibility timeout */
    for (size_t i = 0; i < b->n; i++) {
        if (bm_message_parse_body(b->m[i].id, b->m[i].receive_count, b->m[i].body, b->m[i].body_len,
                                  &msgs[i]) != BM_OK)
            msgs[i].parse_err = BM_E_NOMEM;
    }
    char req_id[32];
    snprintf(req_id, sizeof req_id, "sqs-%016llx",
             (unsigned long long)atomic_fetch_add(&s->next_id, 1) * 0x9E3779B97F4A7C15ULL);
    bm__process(s, msgs, b->n, res, req_id);
    size_t nok = 0, failed = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (res[i].failed)
            failed++;
        else
            receipts[nok++] = b->m[i].receipt;
    }
    size_t deleted = 0;
    struct bm_errmsg em = {{0}};
    bm_err rc = bm_sqs_delete(&s->aws, s->cfg->sqs_queue_url, receipts, nok, &deleted, &em);
    if (rc != BM_OK) {
        /* Undeleted messages come back; their objects are duplicates by then, counted once. */
        BM_LOG(BM_WARN, "server", "sqs_delete_failed", em.text, BM_KV_ERR(rc));
        record_error(c, rc, &em);
    }
    pthread_mutex_lock(&c->mu);
    c->st.deleted += deleted;
    c->st.failed += failed;
    pthread_mutex_unlock(&c->mu);
done:
    for (size_t i = 0; msgs != NULL && i < b->n; i++)
        bm_message_cleanup(&msgs[i]);
    bm_free(msgs);
    bm_free(res);
    bm_free(receipts);
}

static void *run(void *arg)
{
    struct bm__consumer *c = arg;
    struct bm_srv *s = c->s;
    int max = s->cfg->batch_size < 10 ? (int)s->cfg->batch_size : 10;
    while (!atomic_load(&s->stopping)) {
        struct bm_sqs_batch b;
        struct bm_errmsg em = {{0}};
        bm_err rc = bm_sqs_receive(&s->aws, s->cfg->sqs_queue_url, max,
                                   (int)s->cfg->sqs_wait_seconds, &b, &em);
        pthread_mutex_lock(&c->mu);
        c->st.polls++;
        c->st.last_poll_at = bm_time_now();
        if (rc == BM_OK) {
            c->st.received += b.n;
            c->st.last_error = BM_OK;
        }
        pthread_mutex_unlock(&c->mu);
        /* A poll cut short by the shutdown (cancelled, or the connection closed under it) is
         * how a normal stop looks: no warning. */
        if (rc != BM_OK && (rc == BM_E_CANCELLED || bm_stop_is_set(&s->stop)))
            break;
        if (rc != BM_OK) {
            BM_LOG(BM_WARN, "server", "sqs_receive_failed", em.text, BM_KV_ERR(rc));
            record_error(c, rc, &em);
            (void)bm_stop_sleep(&s->stop, ERROR_BACKOFF_MS);
            continue;
        }
        if (b.n > 0)
            handle_batch(c, &b);
        bm_sqs_batch_cleanup(&b);
    }
    return NULL;
}

bm_err bm__consumer_start(struct bm_srv *s, struct bm__consumer **out)
{
    struct bm__consumer *c = bm_calloc(1, sizeof *c);
    if (c == NULL)
        return BM_E_NOMEM;
    c->s = s;
    pthread_mutex_init(&c->mu, NULL);
    if (pthread_create(&c->th, NULL, run, c) != 0) {
        pthread_mutex_destroy(&c->mu);
        bm_free(c);
        return BM_E_INTERNAL;
    }
    *out = c;
    return BM_OK;
}

void bm__consumer_stats(struct bm__consumer *c, struct bm__consumer_stats *out)
{
    pthread_mutex_lock(&c->mu);
    *out = c->st;
    pthread_mutex_unlock(&c->mu);
}

void bm__consumer_stop(struct bm__consumer *c)
{
    if (c == NULL)
        return;
    /* s->stop is set already: the long poll is cancelled within 100 ms, and a batch being
     * processed finishes (its deletes are sent). */
    pthread_join(c->th, NULL);
    pthread_mutex_destroy(&c->mu);
    bm_free(c);
}
