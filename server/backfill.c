/* backfill.c: `bmas ingest s3://bucket/key` and `s3://bucket/prefix/`, how users look at
 * logs written before bmas was deployed. ListObjectsV2 pages feed a bounded queue that
 * BMAS_FETCH_CONCURRENCY workers drain, each object fetched and ingested on its own (a
 * failed object contributes nothing), with a progress line when stderr is a terminal. */
#include "server/srv_int.h"

#include <string.h>

#define QUEUE_CAP 1024

struct jobq {
    pthread_mutex_t mu;
    pthread_cond_t nonempty, nonfull;
    char *keys[QUEUE_CAP];
    size_t head, n;
    bool closed;
    bool aborted; /* a worker hit an error that makes going on pointless (no credentials) */
};

struct backfill {
    struct bm__ingest_run *r;
    const char *bucket;
    struct jobq q;
    bool any_failed;
    uint64_t listed; /* keys under this URI (the run's counters span every source) */
};

/* Takes ownership of key (freed even on failure). */
static bool push(struct jobq *q, char *key)
{
    pthread_mutex_lock(&q->mu);
    while (q->n == QUEUE_CAP && !q->aborted)
        pthread_cond_wait(&q->nonfull, &q->mu);
    bool ok = !q->aborted;
    if (ok) {
        q->keys[(q->head + q->n) % QUEUE_CAP] = key;
        q->n++;
        pthread_cond_signal(&q->nonempty);
    }
    pthread_mutex_unlock(&q->mu);
    if (!ok)
        bm_free(key);
    return ok;
}

/* Returns the next key (caller frees) or NULL when the queue is closed and empty. */
static char *pop(struct jobq *q)
{
    pthread_mutex_lock(&q->mu);
    while (q->n == 0 && !q->closed && !q->aborted)
        pthread_cond_wait(&q->nonempty, &q->mu);
    char *key = NULL;
    if (q->n > 0 && !q->aborted) {
        key = q->keys[q->head];
        q->head = (q->head + 1) % QUEUE_CAP;
        q->n--;
        pthread_cond_signal(&q->nonfull);
    }
    pthread_mutex_unlock(&q->mu);
    return key;
}

static void progress(struct bm__ingest_run *r, const char *uri, bool final)
{
    if (!r->tty)
        return;
    pthread_mutex_lock(&r->mu);
    int64_t now = bm_time_mono_ms();
    if (final || now - r->last_progress_ms >= 200) {
        r->last_progress_ms = now;
        fprintf(r->err, "\r%s: %llu/%llu objects, %.1f MB%s", uri,
                (unsigned long long)r->objects_done, (unsigned long long)r->objects_seen,
                (double)r->bytes / 1e6, final ? "\n" : "   ");
        fflush(r->err);
    }
    pthread_mutex_unlock(&r->mu);
}

struct worker_arg {
    struct backfill *b;
    const char *uri;
};

static void *worker(void *arg)
{
    struct worker_arg *w = arg;
    struct backfill *b = w->b;
    struct bm__ingest_run *r = b->r;
    char *key;
    while ((key = pop(&b->q)) != NULL) {
        char name[4200];
        snprintf(name, sizeof name, "s3://%s/%s", b->bucket, key);
        enum bm_key_kind kind = bm_key_kind(key, strlen(key));
        if (kind != BM_KEY_LOG) {
            pthread_mutex_lock(&r->mu);
            r->ignored++;
            r->objects_done++;
            if (kind != BM_KEY_FOLDER)
                fprintf(r->err, "%sbmas ingest: %s: skipped, not a log object (%s)\n",
                        r->tty ? "\n" : "", name, bm_key_kind_name(kind));
            pthread_mutex_unlock(&r->mu);
            bm_free(key);
            continue;
        }
        struct bm_errmsg em = {{0}};
        struct bm_ingest *in = NULL;
        struct bm_s3_object_info info;
        bm_err rc = bm_fetch_object(&r->aws, &r->o, b->bucket, key, NULL, NULL, &in, &info, &em);
        if (rc == BM_E_NO_CREDENTIALS || rc == BM_E_S3_DENIED) {
            /* Every other object would fail the same way: stop listing and fetching. */
            pthread_mutex_lock(&b->q.mu);
            b->q.aborted = true;
            pthread_cond_broadcast(&b->q.nonfull);
            pthread_cond_broadcast(&b->q.nonempty);
            pthread_mutex_unlock(&b->q.mu);
        }
        if (bm__ingest_account(r, name, in, rc, &em) != BM_OK)
            b->any_failed = true;
        pthread_mutex_lock(&r->mu);
        r->objects_done++;
        if (in != NULL)
            r->bytes += bm_ingest_stats(in)->bytes_in;
        pthread_mutex_unlock(&r->mu);
        bm_ingest_free(in);
        bm_free(key);
        progress(r, w->uri, false);
    }
    return NULL;
}

static bm_err on_listed(void *ctx, const char *key, uint64_t size, const char *etag)
{
    struct backfill *b = ctx;
    (void)size;
    (void)etag;
    char *k = bm_strdup(key);
    if (k == NULL)
        return BM_E_NOMEM;
    pthread_mutex_lock(&b->r->mu);
    b->r->objects_seen++;
    pthread_mutex_unlock(&b->r->mu);
    b->listed++; /* only the listing thread touches it */
    return push(&b->q, k) ? BM_OK : BM_E_S3_DENIED;
}

static bm_err setup_aws(struct bm__ingest_run *r)
{
    if (r->aws_ready)
        return BM_OK;
    struct bm_http_curl_opts ho = {0};
    bm_err rc = bm_http_curl_new(&ho, &r->http);
    if (rc == BM_OK)
        rc = bm_creds_provider_new(r->cfg, &r->http, &bm_clock_real, &r->creds);
    if (rc == BM_OK && (r->s3_regions = bm_s3_regions_new(BM_S3_REGIONS_DEFAULT_CAP)) == NULL)
        rc = BM_E_NOMEM;
    if (rc != BM_OK)
        return rc;
    r->aws = (struct bm_aws){.cfg = r->cfg,
                             .http = &r->http,
                             .creds = r->creds,
                             .clock = &bm_clock_real,
                             .s3_regions = r->s3_regions};
    r->aws_ready = true;
    return BM_OK;
}

bm_err bm__backfill(struct bm__ingest_run *r, const char *uri)
{
    struct bm_buf bucket, key, token;
    bm_buf_init(&bucket, 1024);
    bm_buf_init(&key, 4096);
    bm_buf_init(&token, 8192);
    struct backfill b = {.r = r};
    struct bm_errmsg em = {{0}};
    pthread_t th[64];
    size_t nth = 0;
    bm_err rc = BM_OK;
    if (!bm_s3_parse_uri(uri, &bucket, &key)) {
        rc =
            bm_errmsg_set(&em, BM_E_BAD_REQUEST, "expected s3://bucket/key or s3://bucket/prefix/");
        goto done;
    }
    if ((rc = setup_aws(r)) != BM_OK)
        goto done;
    b.bucket = bucket.data;
    pthread_mutex_init(&b.q.mu, NULL);
    pthread_cond_init(&b.q.nonempty, NULL);
    pthread_cond_init(&b.q.nonfull, NULL);
    struct worker_arg wa = {.b = &b, .uri = uri};
    size_t want = (size_t)r->cfg->fetch_concurrency;
    for (; nth < want && nth < 64; nth++)
        if (pthread_create(&th[nth], NULL, worker, &wa) != 0)
            break;
    bool is_prefix = key.len == 0 || key.data[key.len - 1] == '/';
    if (!is_prefix) {
        pthread_mutex_lock(&r->mu);
        r->objects_seen++;
        pthread_mutex_unlock(&r->mu);
        char *k = bm_strdup(key.data);
        rc = k == NULL ? BM_E_NOMEM : (push(&b.q, k) ? BM_OK : BM_E_S3_DENIED);
    } else {
        do {
            char *tok = bm_strdup(token.data ? token.data : "");
            rc = tok ? bm_s3_list_page(&r->aws, bucket.data, key.data, tok, on_listed, &b, &token,
                                       &em)
                     : BM_E_NOMEM;
            bm_free(tok);
        } while (rc == BM_OK && token.len > 0);
    }
    pthread_mutex_lock(&b.q.mu);
    b.q.closed = true;
    pthread_cond_broadcast(&b.q.nonempty);
    pthread_mutex_unlock(&b.q.mu);
    for (size_t i = 0; i < nth; i++)
        pthread_join(th[i], NULL);
    for (size_t i = 0; i < b.q.n; i++)
        bm_free(b.q.keys[(b.q.head + i) % QUEUE_CAP]);
    pthread_cond_destroy(&b.q.nonempty);
    pthread_cond_destroy(&b.q.nonfull);
    pthread_mutex_destroy(&b.q.mu);
    progress(r, uri, true);
    if (rc == BM_E_S3_DENIED && b.q.aborted)
        rc = BM_OK; /* a worker already reported why it stopped */
    if (rc == BM_OK && is_prefix && b.listed == 0)
        rc = bm_errmsg_set(&em, BM_E_S3_NOT_FOUND, "no objects under this prefix");
done:
    if (rc != BM_OK)
        bm__ingest_account(r, uri, NULL, rc, &em);
    else if (b.any_failed)
        rc = BM_E_UPSTREAM;
    bm_buf_cleanup(&bucket);
    bm_buf_cleanup(&key);
    bm_buf_cleanup(&token);
    return rc;
}
