/* aws.c: what every AWS call shares: endpoint resolution (AWS_ENDPOINT_URL and the per-service
 * variables, as the SDKs read them), the wall clock and sleeping behind an ops struct, and
 * full-jitter backoff (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/).
 */
#include "core/bm_aws.h"

#include <errno.h>
#include <string.h>
#include <time.h>

static int64_t real_now_ms(void *impl)
{
    (void)impl;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* impl: NULL, or the struct bm_stop that ends the sleep early. */
static void real_sleep_ms(void *impl, int64_t ms)
{
    if (impl != NULL) {
        (void)bm_stop_sleep(impl, ms);
        return;
    }
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    while (ms > 0 && nanosleep(&ts, &ts) != 0) {
    }
}

const struct bm_clock_ops bm_clock_real = {real_now_ms, real_sleep_ms, NULL};

bm_err bm_stop_init(struct bm_stop *s)
{
    atomic_init(&s->set, false);
    if (bm_cond_init_mono(&s->cv) != 0)
        return BM_E_NOMEM;
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        pthread_cond_destroy(&s->cv);
        return BM_E_NOMEM;
    }
    return BM_OK;
}

void bm_stop_destroy(struct bm_stop *s)
{
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
}

void bm_stop_set(struct bm_stop *s)
{
    pthread_mutex_lock(&s->mu);
    atomic_store(&s->set, true);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

bool bm_stop_is_set(const struct bm_stop *s)
{
    return s != NULL && atomic_load(&s->set);
}

bool bm_stop_sleep(struct bm_stop *s, int64_t ms)
{
    struct timespec ts;
    bm_mono_deadline(ms, &ts);
    pthread_mutex_lock(&s->mu);
    /* The flag is read under the mutex that bm_stop_set holds: no wake-up is lost. */
    while (!atomic_load(&s->set) && pthread_cond_timedwait(&s->cv, &s->mu, &ts) != ETIMEDOUT) {
    }
    bool set = atomic_load(&s->set);
    pthread_mutex_unlock(&s->mu);
    return set;
}

struct bm_clock_ops bm_stop_clock(struct bm_stop *s)
{
    return (struct bm_clock_ops){real_now_ms, real_sleep_ms, s};
}

void bm_rng_seed(struct bm_rng *r, uint64_t seed)
{
    r->s = seed ? seed : 0x9E3779B97F4A7C15ULL; /* xorshift must not start at zero */
}

uint64_t bm_rng_next(struct bm_rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 2685821657736338717ULL;
}

int64_t bm_backoff_ms(struct bm_rng *r, int attempt, int64_t base_ms, int64_t cap_ms)
{
    int64_t ceiling = base_ms;
    for (int i = 1; i < attempt && ceiling < cap_ms; i++)
        ceiling *= 2;
    if (ceiling > cap_ms)
        ceiling = cap_ms;
    return ceiling > 0 ? (int64_t)(bm_rng_next(r) % (uint64_t)ceiling) : 0;
}

const char *bm_cw_region(const struct bm_config *cfg)
{
    return cfg->cloudwatch_region != NULL && cfg->cloudwatch_region[0] != '\0'
               ? cfg->cloudwatch_region
               : cfg->aws_region;
}

bm_err bm_aws_endpoint_in(const struct bm_config *cfg, const char *service, const char *region,
                          struct bm_buf *out, bool *custom)
{
    const char *specific = NULL;
    if (strcmp(service, "s3") == 0)
        specific = cfg->aws_endpoint_url_s3;
    else if (strcmp(service, "monitoring") == 0)
        specific = cfg->aws_endpoint_url_cloudwatch;
    else if (strcmp(service, "sqs") == 0)
        specific = cfg->aws_endpoint_url_sqs;
    else if (strcmp(service, "sts") == 0)
        specific = cfg->aws_endpoint_url_sts;
    const char *url = specific && *specific ? specific : cfg->aws_endpoint_url;
    bm_buf_reset(out);
    if (url != NULL && *url != '\0') {
        size_t len = strlen(url);
        while (len > 0 && url[len - 1] == '/')
            len--;
        *custom = true;
        return bm_buf_append(out, url, len);
    }
    *custom = false;
    /* China Regions live under their own domain. */
    const char *domain = strncmp(region, "cn-", 3) == 0 ? "amazonaws.com.cn" : "amazonaws.com";
    return bm_buf_appendf(out, "https://%s.%s.%s", service, region, domain);
}

bm_err bm_aws_endpoint(const struct bm_config *cfg, const char *service, struct bm_buf *out,
                       bool *custom)
{
    const char *region = strcmp(service, "monitoring") == 0 ? bm_cw_region(cfg) : cfg->aws_region;
    return bm_aws_endpoint_in(cfg, service, region, out, custom);
}
