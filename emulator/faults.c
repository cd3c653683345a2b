/* faults.c: fault injection rules (POST/GET/DELETE /_emulator/faults), the per-operation request
 * counters (/_emulator/requests) and the seedable PRNG behind fault rates and generated ids. */
#include "emulator/emu_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

uint64_t bm__emu_rand(struct bm_emu *emu)
{
    /* splitmix64 (Steele, Lea, Flood 2014): tiny, seedable, and good enough for test ids and
     * fault probabilities; the C library's rand is banned and not seedable per instance. */
    uint64_t z = (emu->rng += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void bm__emu_uuid(struct bm_emu *emu, char out[37])
{
    unsigned char b[16];
    uint64_t hi = bm__emu_rand(emu), lo = bm__emu_rand(emu);
    for (int i = 0; i < 8; i++) {
        b[i] = (unsigned char)(hi >> (8 * i));
        b[8 + i] = (unsigned char)(lo >> (8 * i));
    }
    b[6] = (unsigned char)((b[6] & 0x0F) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3F) | 0x80); /* RFC 4122 variant */
    char hex[33];
    bm_hex(b, sizeof b, hex);
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

static bool known_service(const char *s)
{
    return strcmp(s, "s3") == 0 || strcmp(s, "sqs") == 0 || strcmp(s, "cloudwatch") == 0 ||
           strcmp(s, "sts") == 0;
}

static char *opt_str(const cJSON *o, const char *k, bool *bad)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (v == NULL || cJSON_IsNull(v))
        return NULL;
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0') {
        *bad = true;
        return NULL;
    }
    char *s = bm_strdup(v->valuestring);
    if (s == NULL)
        *bad = true;
    return s;
}

static bool opt_num(const cJSON *o, const char *k, double min, double max, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (v == NULL || cJSON_IsNull(v))
        return true;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < min ||
        v->valuedouble > max)
        return false;
    *out = v->valuedouble;
    return true;
}

static void fault_cleanup(struct emu_fault *f)
{
    bm_free(f->service);
    bm_free(f->operation);
    bm_free(f->code);
    bm_free(f->message);
}

/* A status without a code gets the code AWS uses for it. */
static const char *default_code(const char *svc, int status)
{
    if (status == 503)
        return svc && strcmp(svc, "s3") == 0 ? "SlowDown" : "ServiceUnavailable";
    if (status >= 500)
        return svc && strcmp(svc, "s3") == 0 ? "InternalError" : "InternalFailure";
    if (status == 429 || status == 400)
        return "Throttling";
    return "InvalidRequest";
}

bm_err bm__emu_faults_add(struct bm_emu *emu, const char *body, size_t len, uint64_t *id,
                          struct bm_errmsg *em)
{
    struct emu_fault f = {.remaining = -1, .rate = 1.0};
    double status = 0, count = -1, latency = 0;
    bool bad = false;
    bm_err rc = BM_E_BAD_REQUEST;
    cJSON *o = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsObject(o)) {
        bm_errmsg_set(em, rc, "body must be a JSON object");
        goto fail;
    }
    f.service = opt_str(o, "service", &bad);
    f.operation = opt_str(o, "operation", &bad);
    f.code = opt_str(o, "code", &bad);
    f.message = opt_str(o, "message", &bad);
    if (bad) {
        bm_errmsg_set(em, rc, "service, operation, code and message must be non-empty strings");
        goto fail;
    }
    /* "monitoring" is CloudWatch's SigV4 name; accept it as an alias. */
    if (f.service != NULL && strcmp(f.service, "monitoring") == 0) {
        bm_free(f.service);
        f.service = bm_strdup("cloudwatch");
    }
    if (f.service != NULL && !known_service(f.service)) {
        bm_errmsg_set(em, rc, "service must be s3, sqs, cloudwatch or sts");
        goto fail;
    }
    if (!opt_num(o, "status", 400, 599, &status) || !opt_num(o, "count", 1, 1e9, &count) ||
        !opt_num(o, "rate", 0, 1, &f.rate) || !opt_num(o, "latency_ms", 0, 600000, &latency)) {
        bm_errmsg_set(em, rc,
                      "status must be 400..599, count >= 1, rate 0..1, latency_ms "
                      "0..600000");
        goto fail;
    }
    f.status = (int)status;
    f.remaining = count < 0 ? -1 : (long)count;
    f.latency_ms = (long)latency;
    if (f.status == 0 && f.code != NULL)
        f.status = 400;
    if (f.status == 0 && f.latency_ms == 0) {
        bm_errmsg_set(em, rc, "a rule needs status (with code) or latency_ms");
        goto fail;
    }
    if (f.status != 0 && f.code == NULL &&
        (f.code = bm_strdup(default_code(f.service, f.status))) == NULL) {
        rc = BM_E_NOMEM;
        goto fail;
    }
    pthread_mutex_lock(&emu->mu);
    rc = bm__emu_grow(&emu->faults, &emu->cap_faults, emu->n_faults + 1, sizeof f);
    if (rc == BM_OK) {
        f.id = ++emu->next_id;
        *id = f.id;
        emu->faults[emu->n_faults++] = f;
    }
    pthread_mutex_unlock(&emu->mu);
    if (rc != BM_OK)
        goto fail;
    cJSON_Delete(o);
    return BM_OK;
fail:
    fault_cleanup(&f);
    cJSON_Delete(o);
    return rc;
}

void bm__emu_faults_clear(struct bm_emu *emu)
{
    pthread_mutex_lock(&emu->mu);
    for (size_t i = 0; i < emu->n_faults; i++)
        fault_cleanup(&emu->faults[i]);
    emu->n_faults = 0;
    pthread_mutex_unlock(&emu->mu);
}

bm_err bm__emu_faults_json(struct bm_emu *emu, struct bm_buf *b)
{
    pthread_mutex_lock(&emu->mu);
    bm_err rc = bm_buf_append_str(b, "{\"faults\":[");
    for (size_t i = 0; i < emu->n_faults && rc == BM_OK; i++) {
        const struct emu_fault *f = &emu->faults[i];
        const char *k[] = {"service", "operation", "code", "message"};
        const char *v[] = {f->service, f->operation, f->code, f->message};
        rc = bm_buf_appendf(b,
                            "%s{\"id\":%llu,\"status\":%d,\"count\":%ld,\"rate\":%g,"
                            "\"latency_ms\":%ld,\"hits\":%ld",
                            i ? "," : "", (unsigned long long)f->id, f->status, f->remaining,
                            f->rate, f->latency_ms, f->hits);
        for (size_t j = 0; j < 4 && rc == BM_OK; j++) {
            if (v[j] == NULL)
                continue;
            if ((rc = bm_buf_appendf(b, ",\"%s\":", k[j])) == BM_OK)
                rc = bm_buf_append_json_str(b, v[j], strlen(v[j]));
        }
        if (rc == BM_OK)
            rc = bm_buf_append_char(b, '}');
    }
    if (rc == BM_OK)
        rc = bm_buf_append_str(b, "]}");
    pthread_mutex_unlock(&emu->mu);
    return rc;
}

long bm__emu_faults_match(struct bm_emu *emu, const char *svc, const char *op,
                          struct emu_awserr *err)
{
    long latency = 0;
    memset(err, 0, sizeof *err);
    pthread_mutex_lock(&emu->mu);
    for (size_t i = 0; i < emu->n_faults;) {
        struct emu_fault *f = &emu->faults[i];
        bool match = (f->service == NULL || strcmp(f->service, svc) == 0) &&
                     (f->operation == NULL || (op != NULL && strcmp(f->operation, op) == 0));
        /* A rule fires with its probability; only one error is injected per request (the
         * first rule that fires), while latencies of every firing rule add up. */
        bool fires = match && (f->status == 0 || err->status == 0) &&
                     (f->rate >= 1.0 || (double)(bm__emu_rand(emu) >> 11) * 0x1.0p-53 < f->rate);
        if (fires) {
            f->hits++;
            latency += f->latency_ms;
            if (f->status != 0) {
                err->status = f->status;
                snprintf(err->code, sizeof err->code, "%s", f->code);
                snprintf(err->message, sizeof err->message, "%s",
                         f->message ? f->message : "Injected by bmas-emulator fault rule");
            }
            if (f->remaining > 0 && --f->remaining == 0) {
                fault_cleanup(f);
                memmove(f, f + 1, (emu->n_faults - i - 1) * sizeof *f);
                emu->n_faults--;
                continue;
            }
        }
        i++;
    }
    pthread_mutex_unlock(&emu->mu);
    return latency;
}

void bm__emu_count(struct bm_emu *emu, const char *svc, const char *op, bool faulted, bool error)
{
    pthread_mutex_lock(&emu->mu);
    struct emu_counter *c = NULL;
    for (size_t i = 0; i < emu->n_counters && c == NULL; i++) {
        if (strcmp(emu->counters[i].svc, svc) == 0 && strcmp(emu->counters[i].op, op) == 0)
            c = &emu->counters[i];
    }
    if (c == NULL &&
        bm__emu_grow(&emu->counters, &emu->cap_counters, emu->n_counters + 1, sizeof *c) == BM_OK) {
        c = &emu->counters[emu->n_counters++];
        *c = (struct emu_counter){.svc = svc, .op = op};
    }
    if (c != NULL) {
        c->count++;
        c->faulted += faulted;
        c->errors += error;
    }
    pthread_mutex_unlock(&emu->mu);
}

bm_err bm__emu_counters_json(struct bm_emu *emu, const char *svc, struct bm_buf *b)
{
    pthread_mutex_lock(&emu->mu);
    bm_err rc = bm_buf_append_str(b, "{\"requests\":[");
    bool first = true;
    for (size_t i = 0; i < emu->n_counters && rc == BM_OK; i++) {
        const struct emu_counter *c = &emu->counters[i];
        if (svc != NULL && strcmp(svc, c->svc) != 0)
            continue;
        rc = bm_buf_appendf(b,
                            "%s{\"service\":\"%s\",\"operation\":\"%s\",\"count\":%ld,"
                            "\"faulted\":%ld,\"errors\":%ld}",
                            first ? "" : ",", c->svc, c->op, c->count, c->faulted, c->errors);
        first = false;
    }
    if (rc == BM_OK)
        rc = bm_buf_append_str(b, "]}");
    pthread_mutex_unlock(&emu->mu);
    return rc;
}

void bm__emu_counters_reset(struct bm_emu *emu)
{
    pthread_mutex_lock(&emu->mu);
    emu->n_counters = 0;
    pthread_mutex_unlock(&emu->mu);
}
