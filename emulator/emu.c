/* emu.c: the emulator's lifecycle (options, credentials, state teardown) and the small helpers
 * every service file uses. */
#include "emulator/emu_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void bm_emu_opts_init(struct bm_emu_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->listen = "127.0.0.1:4566";
    opts->region = "us-east-1";
    opts->skew_seconds = 900;
    opts->max_object_bytes = 256u * 1024 * 1024;
    opts->max_body_bytes = 2u * 1024 * 1024;
}

bm_err bm__emu_grow(void *arr_ptr, size_t *cap, size_t need, size_t elem)
{
    void **arr = arr_ptr;
    if (need <= *cap)
        return BM_OK;
    size_t n = *cap ? *cap * 2 : 8;
    while (n < need)
        n *= 2;
    if (n > SIZE_MAX / elem)
        return BM_E_TOO_LARGE;
    void *p = bm_realloc(*arr, n * elem);
    if (p == NULL)
        return BM_E_NOMEM;
    *arr = p;
    *cap = n;
    return BM_OK;
}

int64_t bm__emu_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void bm__emu_iso_ms(int64_t ms, char out[25])
{
    int frac = (int)(ms % 1000);
    bm_time_format(ms / 1000, out); /* "YYYY-MM-DDTHH:MM:SSZ": the Z moves after the ms */
    out[19] = '.';
    out[20] = (char)('0' + frac / 100);
    out[21] = (char)('0' + frac / 10 % 10);
    out[22] = (char)('0' + frac % 10);
    out[23] = 'Z';
    out[24] = '\0';
}

const char *bm__emu_svc_name(enum emu_svc svc)
{
    switch (svc) {
    case EMU_SVC_S3:
        return "s3";
    case EMU_SVC_SQS:
        return "sqs";
    case EMU_SVC_CW:
        return "cloudwatch";
    case EMU_SVC_STS:
        return "sts";
    }
    return "unknown";
}

static bm_err add_cred(struct bm_emu *emu, const char *akid, size_t akid_len, const char *secret,
                       size_t secret_len)
{
    bm_err rc = bm__emu_grow(&emu->creds, &emu->cap_creds, emu->n_creds + 1, sizeof *emu->creds);
    if (rc != BM_OK)
        return rc;
    struct emu_cred *c = &emu->creds[emu->n_creds];
    c->akid = bm_strndup(akid, akid_len);
    c->secret = bm_strndup(secret, secret_len);
    if (c->akid == NULL || c->secret == NULL) {
        bm_free(c->akid);
        bm_free(c->secret);
        return BM_E_NOMEM;
    }
    emu->n_creds++;
    return BM_OK;
}

/* "AKID:SECRET,AKID2:SECRET2" */
static bm_err parse_creds(struct bm_emu *emu, const char *list, struct bm_errmsg *em)
{
    for (const char *p = list; p != NULL && *p != '\0';) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *colon = memchr(p, ':', len);
        if (colon == NULL || colon == p || colon == p + len - 1)
            return bm_errmsg_set(em, BM_E_CONFIG,
                                 "--credentials: expected AKID:SECRET[,AKID:SECRET...]");
        bm_err rc = add_cred(emu, p, (size_t)(colon - p), colon + 1, len - (size_t)(colon - p) - 1);
        if (rc != BM_OK)
            return rc;
        p = comma ? comma + 1 : NULL;
    }
    return BM_OK;
}

/* "127.0.0.1:4566", "[::1]:0": kept as given for messages, parsed by core. */
static bm_err parse_listen(struct bm_emu *emu, const char *s, struct bm_errmsg *em)
{
    bm_err rc = bm_listen_parse(s, "--listen", &emu->listen_addr, &emu->listen_len, em);
    if (rc != BM_OK)
        return rc;
    emu->listen_spec = bm_strdup(s);
    return emu->listen_spec ? BM_OK : BM_E_NOMEM;
}

bm_err bm_emu_new(const struct bm_emu_opts *opts, struct bm_emu **out, struct bm_errmsg *em)
{
    struct bm_emu *emu = bm_calloc(1, sizeof *emu);
    bm_err rc;
    if (emu == NULL)
        return BM_E_NOMEM;
    pthread_mutex_init(&emu->mu, NULL);
    pthread_cond_init(&emu->cv, NULL);
    bm_cond_init_mono(&emu->saver_cv);
    emu->skew_s = opts->skew_seconds > 0 ? opts->skew_seconds : 900;
    emu->max_object = opts->max_object_bytes ? opts->max_object_bytes : 256u * 1024 * 1024;
    emu->max_body = opts->max_body_bytes ? opts->max_body_bytes : 2u * 1024 * 1024;
    emu->rng = opts->seed ? opts->seed : (uint64_t)bm__emu_now_ms() * 0x9E3779B97F4A7C15ULL;
    emu->region = bm_strdup(opts->region ? opts->region : "us-east-1");
    emu->cw_dashboards = cJSON_CreateObject();
    emu->cw_alarms = cJSON_CreateObject();
    if (emu->region == NULL || emu->cw_dashboards == NULL || emu->cw_alarms == NULL) {
        rc = BM_E_NOMEM;
        goto fail;
    }
    if ((rc = parse_listen(emu, opts->listen ? opts->listen : "127.0.0.1:4566", em)) != BM_OK ||
        (rc = add_cred(emu, "test", 4, "test", 4)) != BM_OK ||
        (rc = parse_creds(emu, opts->credentials, em)) != BM_OK)
        goto fail;
    if (opts->data_dir != NULL && (emu->data_dir = bm_strdup(opts->data_dir)) == NULL) {
        rc = BM_E_NOMEM;
        goto fail;
    }
    if (emu->data_dir != NULL && (rc = bm__emu_store_load(emu, em)) != BM_OK)
        goto fail;
    *out = emu;
    return BM_OK;
fail:
    bm_emu_free(emu);
    return rc;
}

void bm_emu_free(struct bm_emu *emu)
{
    if (emu == NULL)
        return;
    bm_emu_stop(emu);
    for (size_t i = 0; i < emu->n_buckets; i++)
        bm__emu_bucket_free(emu->buckets[i]);
    for (size_t i = 0; i < emu->n_queues; i++)
        bm__emu_queue_free(emu->queues[i]);
    for (size_t i = 0; i < emu->n_series; i++)
        bm__emu_series_free(emu->series[i]);
    cJSON_Delete(emu->cw_dashboards);
    cJSON_Delete(emu->cw_alarms);
    bm__emu_faults_clear(emu);
    bm__emu_sts_clear(emu);
    for (size_t i = 0; i < emu->n_creds; i++) {
        bm_secure_zero(emu->creds[i].secret, strlen(emu->creds[i].secret));
        bm_free(emu->creds[i].akid);
        bm_free(emu->creds[i].secret);
    }
    bm_free(emu->creds);
    bm_free(emu->buckets);
    bm_free(emu->queues);
    bm_free(emu->series);
    bm_free(emu->faults);
    bm_free(emu->counters);
    bm_free(emu->listen_spec);
    bm_free(emu->data_dir);
    bm_free(emu->region);
    pthread_mutex_destroy(&emu->mu);
    pthread_cond_destroy(&emu->cv);
    pthread_cond_destroy(&emu->saver_cv);
    bm_free(emu);
}
