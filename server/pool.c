/* pool.c: the fetch workers. A fixed number of threads (BMAS_FETCH_CONCURRENCY) run object
 * fetches for every request and the SQS consumer, so the load on S3 and on memory is bounded
 * however many batches arrive at once, and HTTP threads only wait, never download. */
#include "server/srv_int.h"

struct job {
    struct job *next;
    bm__job_fn fn;
    void *arg;
};

struct bm__pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job *head, *tail;
    bool stopping;
    size_t n;
    pthread_t th[];
};

static void *worker(void *arg)
{
    struct bm__pool *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (p->head == NULL && !p->stopping)
            pthread_cond_wait(&p->cv, &p->mu);
        struct job *j = p->head;
        if (j != NULL) {
            p->head = j->next;
            if (p->head == NULL)
                p->tail = NULL;
        }
        pthread_mutex_unlock(&p->mu);
        if (j == NULL)
            return NULL; /* stopping and drained */
        j->fn(j->arg);
        bm_free(j);
    }
}

bm_err bm__pool_new(size_t nthreads, struct bm__pool **out)
{
    struct bm__pool *p = bm_calloc(1, sizeof *p + nthreads * sizeof p->th[0]);
    if (p == NULL)
        return BM_E_NOMEM;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    for (; p->n < nthreads; p->n++) {
        if (pthread_create(&p->th[p->n], NULL, worker, p) != 0) {
            bm__pool_free(p);
            return BM_E_INTERNAL;
        }
    }
    *out = p;
    return BM_OK;
}

bm_err bm__pool_submit(struct bm__pool *p, bm__job_fn fn, void *arg)
{
    struct job *j = bm_malloc(sizeof *j);
    if (j == NULL)
        return BM_E_NOMEM;
    *j = (struct job){NULL, fn, arg};
    pthread_mutex_lock(&p->mu);
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return BM_OK;
}

void bm__pool_free(struct bm__pool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (size_t i = 0; i < p->n; i++)
        pthread_join(p->th[i], NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    bm_free(p);
}
