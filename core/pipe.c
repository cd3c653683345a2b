/* pipe.c: the second stage of one object's ingest on a thread of its own. The caller's thread
 * inflates and writes the output here; this thread frames and parses it. Between them a ring
 * of PIPE_SLOTS buffers of PIPE_SLOT bytes: when all are full the writer waits (back-pressure),
 * so memory stays at the ring's 1 MiB whatever the object's size. On two cores the two stages
 * overlap: an object takes as long as the slower one instead of both added up.
 *
 * Extra threads are shared process-wide: at most one fewer than the CPUs run at once
 * (bm__pipe_start refuses past that, and the object stays on one thread), so eight objects
 * arriving together do not make sixteen busy threads on two cores. */
#include "core/core_int.h"

#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#define PIPE_SLOTS 4
#define PIPE_SLOT (256 * 1024)

struct bm__pipe {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
    char *buf[PIPE_SLOTS];
    size_t len[PIPE_SLOTS];
    size_t head, count; /* the consumer's next slot; slots filled and not yet consumed */
    size_t wr, fill;    /* the writer's slot (only the writer moves it) and its bytes */
    bool eof;
    bm_err err; /* the consumer's first error; later slots are drained unread */
    bm__bytes_fn fn;
    void *ctx;
};

static atomic_int extra_threads;

static int extra_cap(void)
{
    static atomic_int cap; /* 0: not read yet */
    int c = atomic_load(&cap);
    if (c == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c = n > 1 ? (int)n - 1 : -1; /* -1: one CPU, no extra thread ever */
        atomic_store(&cap, c);
    }
    return c;
}

static void *consume(void *arg)
{
    struct bm__pipe *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->count == 0 && !p->eof)
            pthread_cond_wait(&p->not_empty, &p->mu);
        if (p->count == 0)
            break; /* eof, everything consumed */
        size_t i = p->head;
        bool skip = p->err != BM_OK;
        pthread_mutex_unlock(&p->mu);
        bm_err rc = skip ? BM_OK : p->fn(p->ctx, p->buf[i], p->len[i]);
        pthread_mutex_lock(&p->mu);
        if (rc != BM_OK && p->err == BM_OK)
            p->err = rc;
        p->head = (p->head + 1) % PIPE_SLOTS;
        p->count--;
        pthread_cond_signal(&p->not_full);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static void pipe_free(struct bm__pipe *p)
{
    for (int i = 0; i < PIPE_SLOTS; i++)
        bm_free(p->buf[i]);
    pthread_cond_destroy(&p->not_empty);
    pthread_cond_destroy(&p->not_full);
    pthread_mutex_destroy(&p->mu);
    bm_free(p);
}

bm_err bm__pipe_start(bm__bytes_fn fn, void *ctx, struct bm__pipe **out)
{
    *out = NULL;
    int cap = extra_cap();
    if (cap < 1 || atomic_fetch_add(&extra_threads, 1) >= cap) {
        if (cap >= 1)
            atomic_fetch_sub(&extra_threads, 1);
        return BM_E_BUSY; /* no CPU to spare: the caller stays on one thread */
    }
    struct bm__pipe *p = bm_calloc(1, sizeof *p);
    bool ok = p != NULL;
    for (int i = 0; ok && i < PIPE_SLOTS; i++)
        ok = (p->buf[i] = bm_malloc(PIPE_SLOT)) != NULL;
    if (!ok) {
        if (p != NULL)
            for (int i = 0; i < PIPE_SLOTS; i++)
                bm_free(p->buf[i]);
        bm_free(p);
        atomic_fetch_sub(&extra_threads, 1);
        return BM_E_NOMEM;
    }
    p->fn = fn;
    p->ctx = ctx;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->not_empty, NULL);
    pthread_cond_init(&p->not_full, NULL);
    if (pthread_create(&p->th, NULL, consume, p) != 0) {
        pipe_free(p);
        atomic_fetch_sub(&extra_threads, 1);
        return BM_E_BUSY;
    }
    *out = p;
    return BM_OK;
}

/* Hands the writer's slot to the consumer. Called with the mutex held. */
static void publish(struct bm__pipe *p)
{
    p->len[p->wr] = p->fill;
    p->wr = (p->wr + 1) % PIPE_SLOTS;
    p->count++;
    p->fill = 0;
    pthread_cond_signal(&p->not_empty);
}

bm_err bm__pipe_write(struct bm__pipe *p, const char *data, size_t len)
{
    while (len > 0) {
        if (p->fill == PIPE_SLOT) {
            pthread_mutex_lock(&p->mu);
            publish(p);
            while (p->count == PIPE_SLOTS) /* all full: wait for the consumer */
                pthread_cond_wait(&p->not_full, &p->mu);
            bm_err err = p->err;
            pthread_mutex_unlock(&p->mu);
            if (err != BM_OK)
                return err;
        }
        /* The writer's slot is not the consumer's: count < PIPE_SLOTS since it was taken. */
        char *slot = p->buf[p->wr];
        size_t n = PIPE_SLOT - p->fill < len ? PIPE_SLOT - p->fill : len;
        memcpy(slot + p->fill, data, n);
        p->fill += n;
        data += n;
        len -= n;
    }
    return BM_OK;
}

/* Ends the consumer (after what was written, unless discard) and frees the pipe. */
static bm_err pipe_end(struct bm__pipe *p, bool discard)
{
    pthread_mutex_lock(&p->mu);
    if (discard && p->err == BM_OK)
        p->err = BM_E_CANCELLED;
    if (p->fill > 0 && !discard) {
        while (p->count == PIPE_SLOTS)
            pthread_cond_wait(&p->not_full, &p->mu);
        publish(p);
    }
    p->eof = true;
    pthread_cond_signal(&p->not_empty);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->th, NULL);
    bm_err err = p->err;
    pipe_free(p);
    atomic_fetch_sub(&extra_threads, 1);
    return err;
}

bm_err bm__pipe_close(struct bm__pipe *p)
{
    return pipe_end(p, false);
}

void bm__pipe_abort(struct bm__pipe *p)
{
    if (p != NULL)
        (void)pipe_end(p, true);
}
