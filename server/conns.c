/* conns.c: request deadlines that libmicrohttpd 0.9.75 does not have. Its connection timeout is
 * an idle timeout that every byte renews, so a client sending one header line every few
 * seconds ("slowloris") keeps a connection, and a thread, for ever. Here every connection has
 * an absolute deadline for what it owes: its request line and headers (BMAS_HEADER_TIMEOUT),
 * its whole request (BMAS_REQUEST_TIMEOUT), or its next request while idle between two
 * (BMAS_KEEPALIVE_TIMEOUT). While a request is being handled there is none. A reaper thread
 * shuts down the socket of a connection past its deadline; MHD then sees the connection closed
 * and cleans up as usual.
 *
 * The reaper works on its own duplicate of each connection's descriptor: shutdown() acts on
 * the socket, so it reaches MHD's descriptor, and the duplicate stays ours until the
 * connection's close notification, so a descriptor number reused by a newer connection can
 * never be shut down by mistake. */
#include "server/srv_int.h"

#include <fcntl.h>
#include <microhttpd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REAP_EVERY_MS 250

struct slot {
    int fd;              /* our duplicate; -1 when it could not be made */
    int64_t deadline_ms; /* monotonic; 0 = none */
    int64_t line_ms;     /* when the current request line arrived */
    struct slot *prev, *next;
};

struct bm__conns {
    long header_ms, request_ms, keepalive_ms;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    pthread_t th;
    struct slot head; /* circular list sentinel */
    atomic_ullong reaped;
    atomic_long open;
};

static void *reaper(void *arg)
{
    struct bm__conns *g = arg;
    pthread_mutex_lock(&g->mu);
    while (!g->stop) {
        struct timespec ts;
        bm_mono_deadline(REAP_EVERY_MS, &ts);
        pthread_cond_timedwait(&g->cv, &g->mu, &ts);
        int64_t now = bm_time_mono_ms();
        long cut = 0;
        for (struct slot *s = g->head.next; s != &g->head; s = s->next) {
            if (s->deadline_ms == 0 || now < s->deadline_ms)
                continue;
            s->deadline_ms = 0; /* once: the close notification follows */
            if (s->fd >= 0)
                shutdown(s->fd, SHUT_RDWR);
            cut++;
        }
        if (cut > 0) {
            atomic_fetch_add(&g->reaped, (unsigned long long)cut);
            /* One line per pass, not per connection: a flood must not flood the log too. */
            BM_LOG(BM_WARN, "server", "connections_cut",
                   "connections closed at their deadline (headers, request or keep-alive)",
                   BM_KV_INT("count", cut));
        }
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

/* One file descriptor per connection more than MHD needs: make sure the limit allows it. */
static void raise_fd_limit(long connections)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = (rlim_t)connections * 2 + 256;
    if (rl.rlim_cur >= want)
        return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want)
        BM_LOG(BM_WARN, "server", "fd_limit_low",
               "the open-file limit is below two per connection; lower BMAS_MAX_CONNECTIONS or "
               "raise ulimit -n",
               BM_KV_INT("limit", (long long)rl.rlim_cur), BM_KV_INT("connections", connections));
}

bm_err bm__conns_new(const struct bm_config *cfg, struct bm__conns **out)
{
    struct bm__conns *g = bm_calloc(1, sizeof *g);
    if (g == NULL)
        return BM_E_NOMEM;
    g->header_ms = cfg->header_timeout_s * 1000;
    g->request_ms = cfg->request_timeout_s * 1000;
    g->keepalive_ms = cfg->keepalive_timeout_s * 1000;
    g->head.next = g->head.prev = &g->head;
    raise_fd_limit(cfg->max_connections);
    pthread_mutex_init(&g->mu, NULL);
    bm_cond_init_mono(&g->cv);
    if (pthread_create(&g->th, NULL, reaper, g) != 0) {
        pthread_cond_destroy(&g->cv);
        pthread_mutex_destroy(&g->mu);
        bm_free(g);
        return BM_E_INTERNAL;
    }
    *out = g;
    return BM_OK;
}

void bm__conns_free(struct bm__conns *g)
{
    if (g == NULL)
        return;
    pthread_mutex_lock(&g->mu);
    g->stop = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->th, NULL);
    /* MHD has closed every connection by now (stopped first); free what notifications left. */
    while (g->head.next != &g->head) {
        struct slot *s = g->head.next;
        s->prev->next = s->next;
        s->next->prev = s->prev;
        if (s->fd >= 0)
            close(s->fd);
        bm_free(s);
    }
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    bm_free(g);
}

void bm__conns_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                      enum MHD_ConnectionNotificationCode code)
{
    struct bm__conns *g = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        struct slot *s = bm_calloc(1, sizeof *s);
        *socket_context = s;
        if (s == NULL)
            return; /* no deadline for this one: MHD's idle timeout still applies */
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        s->fd = ci != NULL ? fcntl(ci->connect_fd, F_DUPFD_CLOEXEC, 0) : -1;
        s->deadline_ms = bm_time_mono_ms() + g->header_ms;
        pthread_mutex_lock(&g->mu);
        s->next = &g->head;
        s->prev = g->head.prev;
        s->prev->next = s;
        g->head.prev = s;
        pthread_mutex_unlock(&g->mu);
        atomic_fetch_add(&g->open, 1);
        return;
    }
    struct slot *s = *socket_context;
    *socket_context = NULL;
    if (s == NULL)
        return;
    pthread_mutex_lock(&g->mu);
    s->prev->next = s->next;
    s->next->prev = s->prev;
    pthread_mutex_unlock(&g->mu);
    if (s->fd >= 0)
        close(s->fd);
    bm_free(s);
    atomic_fetch_sub(&g->open, 1);
}

static struct slot *slot_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci != NULL ? ci->socket_context : NULL;
}

static void set_deadline(struct bm__conns *g, struct MHD_Connection *c, int phase)
{
    struct slot *s = slot_of(c);
    if (s == NULL)
        return;
    int64_t now = bm_time_mono_ms();
    pthread_mutex_lock(&g->mu);
    switch (phase) {
    case 0: /* request line: the headers are due soon, the whole request a little later */
        s->line_ms = now;
        s->deadline_ms = now + g->header_ms;
        break;
    case 1: /* headers in: the body is due by the request deadline */
        s->deadline_ms = (s->line_ms ? s->line_ms : now) + g->request_ms;
        break;
    case 2: /* being handled: the server owes, not the client */
        s->deadline_ms = 0;
        break;
    default: /* idle between requests */
        s->line_ms = 0;
        s->deadline_ms = now + g->keepalive_ms;
        break;
    }
    pthread_mutex_unlock(&g->mu);
}

void *bm__conns_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)uri;
    set_deadline(cls, c, 0);
    return NULL; /* the per-request state is made by the access handler */
}

void bm__conns_headers(struct bm__conns *g, struct MHD_Connection *c)
{
    set_deadline(g, c, 1);
}

void bm__conns_handling(struct bm__conns *g, struct MHD_Connection *c)
{
    set_deadline(g, c, 2);
}

void bm__conns_idle(struct bm__conns *g, struct MHD_Connection *c)
{
    set_deadline(g, c, 3);
}

void bm__conns_stats(struct bm__conns *g, uint64_t *reaped, long *open)
{
    *reaped = atomic_load(&g->reaped);
    *open = atomic_load(&g->open);
}
