/* lease.c: the publisher lease's own thread. Several instances on one PostgreSQL store publish
 * through one of them, the lease's holder (bm_db_publisher_lease). The lease runs beside the
 * publisher rather than inside it, so a flush that takes long (throttling, a big outbox) never
 * lets it lapse while the holder lives.
 *
 * Timing, for a flush interval I: every instance tries every I/4; the holder's lease lasts
 * 3I/4 of the server's clock from its latest renewal. When the holder dies its lease runs out
 * at most 3I/4 later and a stand-by's next try, at most I/4 after that, takes it: within one
 * interval. The new holder then flushes at once (on_gain), so what the dead one left pending
 * is published within that interval too (at start-up an instance waits for its schedule).
 * The holder counts its lease as lapsed 3I/4 after the start of its latest successful renewal
 * on its own clock (never later than the store's expiry), so an instance cut off from the
 * store stops scheduling flushes before a stand-by may take over. On SQLite the lease is
 * always this instance's (bm_storage.h) and never lapses. */
#include "server/srv_int.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Below these the store's round trips would be most of the lease. */
#define LEASE_MIN_EVERY_MS 100

struct bm__lease {
    struct bm_srv *s;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    int64_t every_ms, ttl_ms;
    void (*on_gain)(void *ctx);
    void *ctx;
    /* Under mu: whether held, until when (monotonic ms), by whom ("" unknown), tried yet. */
    bool held, known;
    int64_t held_until;
    char holder[256];
    bool failing; /* the latest try failed (lease thread only) */
    bool local;   /* SQLite: the store grants it always, so it never lapses */
};

/* One try: takes or renews the lease, logging each change of role. A store that cannot be
 * reached leaves the role to lapse at held_until: the flushes fail anyway and say why. */
static void try_once(struct bm__lease *l)
{
    struct bm_srv *s = l->s;
    bool held = false;
    char holder[256] = "";
    struct bm_errmsg em;
    int64_t t0 = bm_time_mono_ms();
    bm_err rc =
        bm_db_publisher_lease(s->db, s->instance_id, l->ttl_ms, &held, holder, sizeof holder, &em);
    if (rc != BM_OK) {
        if (!l->failing) /* once per outage: /healthz and the flushes tell the rest */
            BM_LOG(BM_WARN, "server", "publisher_lease_failed", em.text, BM_KV_ERR(rc));
        l->failing = true;
        return;
    }
    l->failing = false;
    pthread_mutex_lock(&l->mu);
    bool first = !l->known;
    bool was = l->held && t0 < l->held_until;
    bool changed = !l->known || held != was || strcmp(holder, l->holder) != 0;
    l->held = held;
    l->held_until = !held ? 0 : l->local ? INT64_MAX : t0 + l->ttl_ms;
    l->known = true;
    snprintf(l->holder, sizeof l->holder, "%s", holder);
    pthread_mutex_unlock(&l->mu);
    if (changed && held)
        BM_LOG(BM_INFO, "server", "publisher_active",
               "this instance publishes the outbox (it holds the publisher lease)",
               BM_KV_STR("instance", s->instance_id), BM_KV_STR("holder", holder));
    else if (changed)
        BM_LOG(BM_INFO, "server", "publisher_standby",
               "another instance holds the publisher lease: this one stands by",
               BM_KV_STR("instance", s->instance_id), BM_KV_STR("holder", holder));
    /* Not at the first try: an instance starting up flushes on its schedule. */
    if (held && !was && !first && l->on_gain != NULL)
        l->on_gain(l->ctx);
}

static void *run(void *arg)
{
    struct bm__lease *l = arg;
    pthread_mutex_lock(&l->mu);
    while (!l->stop) {
        pthread_mutex_unlock(&l->mu);
        int64_t next = bm_time_mono_ms() + l->every_ms;
        try_once(l);
        pthread_mutex_lock(&l->mu);
        while (!l->stop) {
            int64_t ms = next - bm_time_mono_ms();
            if (ms <= 0)
                break;
            struct timespec ts;
            bm_mono_deadline(ms, &ts);
            pthread_cond_timedwait(&l->cv, &l->mu, &ts);
        }
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

bm_err bm__lease_start(struct bm_srv *s, long interval_s, void (*on_gain)(void *ctx), void *ctx,
                       struct bm__lease **out)
{
    if (interval_s <= 0)
        return BM_E_INTERNAL;
    struct bm__lease *l = bm_calloc(1, sizeof *l);
    if (l == NULL)
        return BM_E_NOMEM;
    l->s = s;
    l->on_gain = on_gain;
    l->ctx = ctx;
    l->every_ms = interval_s * 1000 / 4;
    if (l->every_ms < LEASE_MIN_EVERY_MS)
        l->every_ms = LEASE_MIN_EVERY_MS;
    l->ttl_ms = 3 * l->every_ms;
    l->local = strcmp(bm_db_store_kind(s->db), "sqlite") == 0;
    pthread_mutex_init(&l->mu, NULL);
    bm_cond_init_mono(&l->cv);
    if (pthread_create(&l->th, NULL, run, l) != 0) {
        pthread_cond_destroy(&l->cv);
        pthread_mutex_destroy(&l->mu);
        bm_free(l);
        return BM_E_INTERNAL;
    }
    *out = l;
    return BM_OK;
}

bool bm__lease_held(struct bm__lease *l)
{
    if (l == NULL)
        return false;
    pthread_mutex_lock(&l->mu);
    bool held = l->held && bm_time_mono_ms() < l->held_until;
    pthread_mutex_unlock(&l->mu);
    return held;
}

void bm__lease_role(struct bm__lease *l, bool *publisher, char *holder, size_t cap)
{
    *publisher = false;
    if (cap > 0)
        holder[0] = '\0';
    if (l == NULL)
        return;
    pthread_mutex_lock(&l->mu);
    *publisher = l->held && bm_time_mono_ms() < l->held_until;
    snprintf(holder, cap, "%s", l->holder);
    pthread_mutex_unlock(&l->mu);
}

void bm__lease_stop(struct bm__lease *l)
{
    if (l == NULL)
        return;
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->th, NULL);
    if (l->held) { /* even if lapsed here: the row may still name this instance */
        struct bm_errmsg em;
        bm_err rc = bm_db_publisher_release(l->s->db, l->s->instance_id, &em);
        if (rc != BM_OK)
            BM_LOG(BM_WARN, "server", "publisher_lease_failed", em.text, BM_KV_ERR(rc));
        else
            BM_LOG(BM_INFO, "server", "publisher_released",
                   "publisher lease given up: another instance takes over",
                   BM_KV_STR("instance", l->s->instance_id));
    }
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    bm_free(l);
}
