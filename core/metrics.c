/* metrics.c: bmas's own counters and latency histograms, and their Prometheus text rendering
 * (exposition format 0.0.4) for GET /metrics. Writers only add to relaxed atomics, so
 * counting never takes a lock on the request, ingest or AWS paths. */
#include "core/core_int.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

/* Latency bucket bounds in milliseconds: from a loopback request to a long poll or a
 * throttled call retried until BMAS_AWS_DEADLINE. */
static const int64_t bounds_ms[] = {5,    10,   25,   50,    100,   250,  500,
                                    1000, 2500, 5000, 10000, 30000, 60000};
#define NB ((int)(sizeof bounds_ms / sizeof bounds_ms[0]))
#define STATUS_MIN 100
#define STATUS_N 500 /* 100 .. 599 */

struct hist {
    atomic_ullong b[NB + 1]; /* per bucket, not cumulative; b[NB] is over the last bound */
    atomic_ullong sum_us;
};

/* The AWS operations bmas calls, with their service; anything else counts under "other". */
static const struct {
    const char *op, *service;
} aws_ops[] = {
    {"GetObject", "s3"},       {"HeadObject", "s3"},          {"ListObjectsV2", "s3"},
    {"ReceiveMessage", "sqs"}, {"DeleteMessageBatch", "sqs"}, {"PutMetricData", "cloudwatch"},
    {"other", "other"},
};
#define NOPS ((int)(sizeof aws_ops / sizeof aws_ops[0]))

struct bm_metrics {
    atomic_ullong http[BM_MR__COUNT][STATUS_N];
    struct hist http_dur[BM_MR__COUNT];
    atomic_ullong ingest_objects[2]; /* [ok] */
    atomic_ullong ingest_records, ingest_invalid, ingest_bytes;
    struct hist ingest_dur;
    atomic_ullong flushes[2]; /* [ok] */
    struct hist flush_dur;
    atomic_ullong aws[NOPS][2]; /* [op][ok] */
    atomic_ullong aws_retries[NOPS];
    struct hist aws_dur[NOPS];
    atomic_ullong held_back;
};

const char *bm_metrics_route_name(enum bm_metrics_route r)
{
    switch (r) {
    case BM_MR_EVENTS:
        return "/events";
    case BM_MR_FLUSH:
        return "/flush";
    case BM_MR_STATUS:
        return "/status";
    case BM_MR_AGGREGATES:
        return "/aggregates";
    case BM_MR_HEALTHZ:
        return "/healthz";
    case BM_MR_METRICS:
        return "/metrics";
    case BM_MR_DASHBOARD:
        return "/dashboard";
    case BM_MR_OTHER:
    case BM_MR__COUNT:
        break;
    }
    return "other";
}

struct bm_metrics *bm_metrics_new(void)
{
    /* Zero bytes are a valid zero for these lock-free atomic integers. */
    return bm_calloc(1, sizeof(struct bm_metrics));
}

void bm_metrics_free(struct bm_metrics *m)
{
    bm_free(m);
}

static void add(atomic_ullong *a, uint64_t n)
{
    atomic_fetch_add_explicit(a, n, memory_order_relaxed);
}

static uint64_t get(const atomic_ullong *a)
{
    return atomic_load_explicit((atomic_ullong *)a, memory_order_relaxed);
}

static void observe(struct hist *h, int64_t ms)
{
    if (ms < 0)
        ms = 0; /* a clock stepped back: the call took no measurable time */
    int i = 0;
    while (i < NB && ms > bounds_ms[i])
        i++;
    add(&h->b[i], 1);
    add(&h->sum_us, (uint64_t)ms * 1000);
}

void bm_metrics_http(struct bm_metrics *m, enum bm_metrics_route r, int status, int64_t dur_ms)
{
    if (m == NULL)
        return;
    if ((unsigned)r >= BM_MR__COUNT)
        r = BM_MR_OTHER;
    if (status >= STATUS_MIN && status < STATUS_MIN + STATUS_N)
        add(&m->http[r][status - STATUS_MIN], 1);
    observe(&m->http_dur[r], dur_ms);
}

void bm_metrics_ingest(struct bm_metrics *m, bool ok, uint64_t records, uint64_t invalid,
                       uint64_t bytes, int64_t dur_ms)
{
    if (m == NULL)
        return;
    add(&m->ingest_objects[ok], 1);
    add(&m->ingest_records, records);
    add(&m->ingest_invalid, invalid);
    add(&m->ingest_bytes, bytes);
    observe(&m->ingest_dur, dur_ms);
}

void bm_metrics_flush(struct bm_metrics *m, bool ok, int64_t dur_ms)
{
    if (m == NULL)
        return;
    add(&m->flushes[ok], 1);
    observe(&m->flush_dur, dur_ms);
}

void bm_metrics_aws(struct bm_metrics *m, const char *op, bool ok, unsigned retries, int64_t dur_ms)
{
    if (m == NULL)
        return;
    /* Clients name some calls with their service first ("SQS ReceiveMessage"). */
    const char *sp = op != NULL ? strrchr(op, ' ') : NULL;
    const char *name = sp != NULL ? sp + 1 : op;
    int i = 0;
    while (i < NOPS - 1 && (name == NULL || strcmp(name, aws_ops[i].op) != 0))
        i++;
    add(&m->aws[i][ok], 1);
    add(&m->aws_retries[i], retries);
    observe(&m->aws_dur[i], dur_ms);
}

void bm_metrics_held_back(struct bm_metrics *m, uint64_t n)
{
    if (m != NULL)
        add(&m->held_back, n);
}

/* ---- text format ---- */

/* A writer that keeps the first failed append (the buffer's cap, OOM), so a rendering never
 * comes back half written yet successful. */
struct pw {
    struct bm_buf *b;
    bm_err rc;
};

static void keep(struct pw *w, bm_err rc)
{
    if (w->rc == BM_OK)
        w->rc = rc;
}

__attribute__((format(printf, 2, 3))) static void pf(struct pw *w, const char *fmt, ...)
{
    char line[512]; /* every formatted piece is short: names and labels of our own */
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line)
        keep(w, BM_E_INTERNAL);
    else
        keep(w, bm_buf_append(w->b, line, (size_t)n));
}

/* Appends s (len bytes), each byte in esc escaped with a backslash (line feed as \n). */
static void escaped(struct pw *w, const char *s, size_t len, const char *esc)
{
    size_t from = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\0' || strchr(esc, s[i]) == NULL)
            continue;
        keep(w, bm_buf_append(w->b, s + from, i - from));
        keep(w, bm_buf_append(w->b, s[i] == '\n' ? "\\n" : s[i] == '"' ? "\\\"" : "\\\\", 2));
        from = i + 1;
    }
    keep(w, bm_buf_append(w->b, s + from, len - from));
}

static void family(struct pw *w, const char *name, const char *type, const char *help)
{
    pf(w, "# HELP %s ", name);
    /* In HELP text only the backslash and the line feed are escaped. */
    escaped(w, help, strlen(help), "\\\n");
    pf(w, "\n# TYPE %s %s\n", name, type);
}

static void label_value(struct pw *w, const char *s, size_t len)
{
    keep(w, bm_buf_append_char(w->b, '"'));
    escaped(w, s, len, "\\\"\n");
    keep(w, bm_buf_append_char(w->b, '"'));
}

bm_err bm_prom_family(struct bm_buf *b, const char *name, const char *type, const char *help)
{
    struct pw w = {b, BM_OK};
    family(&w, name, type, help);
    return w.rc;
}

bm_err bm_prom_label_value(struct bm_buf *b, const char *s, size_t len)
{
    struct pw w = {b, BM_OK};
    label_value(&w, s, len);
    return w.rc;
}

/* A histogram's samples; labels is "" or `key="value",` pieces ending in a comma. */
static void write_hist(struct pw *w, const char *name, const char *labels, const struct hist *h)
{
    uint64_t cum = 0;
    for (int i = 0; i <= NB; i++) {
        cum += get(&h->b[i]);
        if (i < NB)
            pf(w, "%s_bucket{%sle=\"%g\"} %llu\n", name, labels, (double)bounds_ms[i] / 1000.0,
               (unsigned long long)cum);
        else
            pf(w, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, labels, (unsigned long long)cum);
    }
    size_t n = strlen(labels);
    char bare[160]; /* the labels without their last comma, for _sum and _count */
    if (n >= sizeof bare)
        n = sizeof bare - 1;
    memcpy(bare, labels, n);
    bare[n > 0 ? n - 1 : 0] = '\0';
    const char *open = n > 0 ? "{" : "", *close = n > 0 ? "}" : "";
    uint64_t us = get(&h->sum_us);
    pf(w, "%s_sum%s%s%s %llu.%06llu\n", name, open, bare, close, (unsigned long long)(us / 1000000),
       (unsigned long long)(us % 1000000));
    pf(w, "%s_count%s%s%s %llu\n", name, open, bare, close, (unsigned long long)cum);
}

static void write_http(const struct bm_metrics *m, struct pw *w)
{
    family(w, "bmas_http_requests_total", "counter",
           "HTTP requests answered, by route and status.");
    for (int r = 0; r < BM_MR__COUNT; r++)
        for (int st = 0; st < STATUS_N; st++) {
            uint64_t v = get(&m->http[r][st]);
            if (v > 0)
                pf(w, "bmas_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                   bm_metrics_route_name((enum bm_metrics_route)r), st + STATUS_MIN,
                   (unsigned long long)v);
        }
    family(w, "bmas_http_request_duration_seconds", "histogram",
           "Time from a request's headers to its answer, by route.");
    for (int r = 0; r < BM_MR__COUNT; r++) {
        char labels[64];
        snprintf(labels, sizeof labels, "route=\"%s\",",
                 bm_metrics_route_name((enum bm_metrics_route)r));
        write_hist(w, "bmas_http_request_duration_seconds", labels, &m->http_dur[r]);
    }
}

static void write_ingest(const struct bm_metrics *m, struct pw *w)
{
    family(w, "bmas_ingest_objects_total", "counter",
           "Log objects fetched from S3 and ingested, by outcome (ok: counted, "
           "error: failed and left for a retry).");
    pf(w, "bmas_ingest_objects_total{outcome=\"ok\"} %llu\n",
       (unsigned long long)get(&m->ingest_objects[1]));
    pf(w, "bmas_ingest_objects_total{outcome=\"error\"} %llu\n",
       (unsigned long long)get(&m->ingest_objects[0]));
    family(w, "bmas_ingest_records_total", "counter",
           "Records of ingested objects, by outcome (ok: aggregated, invalid: skipped).");
    pf(w, "bmas_ingest_records_total{outcome=\"ok\"} %llu\n",
       (unsigned long long)get(&m->ingest_records));
    pf(w, "bmas_ingest_records_total{outcome=\"invalid\"} %llu\n",
       (unsigned long long)get(&m->ingest_invalid));
    family(w, "bmas_ingest_bytes_total", "counter",
           "Bytes of ingested log objects as S3 sent them (compressed).");
    pf(w, "bmas_ingest_bytes_total %llu\n", (unsigned long long)get(&m->ingest_bytes));
    family(w, "bmas_ingest_duration_seconds", "histogram",
           "Time to fetch, ingest and commit one log object.");
    write_hist(w, "bmas_ingest_duration_seconds", "", &m->ingest_dur);
}

static void write_flush(const struct bm_metrics *m, struct pw *w)
{
    family(w, "bmas_flushes_total", "counter",
           "Publisher flushes (outbox to CloudWatch), by outcome.");
    pf(w, "bmas_flushes_total{outcome=\"ok\"} %llu\n", (unsigned long long)get(&m->flushes[1]));
    pf(w, "bmas_flushes_total{outcome=\"error\"} %llu\n", (unsigned long long)get(&m->flushes[0]));
    family(w, "bmas_flush_duration_seconds", "histogram",
           "Time one publisher flush took, all its PutMetricData calls included.");
    write_hist(w, "bmas_flush_duration_seconds", "", &m->flush_dur);
    family(w, "bmas_cloudwatch_series_held_back_total", "counter",
           "CloudWatch series (dimension set and values) not published because "
           "BMAS_MAX_SERIES was reached, counted once per flush that held them back.");
    pf(w, "bmas_cloudwatch_series_held_back_total %llu\n", (unsigned long long)get(&m->held_back));
}

static void write_aws(const struct bm_metrics *m, struct pw *w)
{
    family(w, "bmas_aws_calls_total", "counter",
           "AWS calls (S3, SQS, CloudWatch) with their retries, by operation and outcome.");
    for (int i = 0; i < NOPS; i++)
        for (int ok = 1; ok >= 0; ok--)
            pf(w,
               "bmas_aws_calls_total{service=\"%s\",operation=\"%s\",outcome=\"%s\"} "
               "%llu\n",
               aws_ops[i].service, aws_ops[i].op, ok ? "ok" : "error",
               (unsigned long long)get(&m->aws[i][ok]));
    family(w, "bmas_aws_retries_total", "counter",
           "Attempts of AWS calls after their first, by operation.");
    for (int i = 0; i < NOPS; i++)
        pf(w, "bmas_aws_retries_total{service=\"%s\",operation=\"%s\"} %llu\n", aws_ops[i].service,
           aws_ops[i].op, (unsigned long long)get(&m->aws_retries[i]));
    family(w, "bmas_aws_call_duration_seconds", "histogram",
           "Time one AWS call took, retries and backoffs included, by operation.");
    for (int i = 0; i < NOPS; i++) {
        char labels[96];
        snprintf(labels, sizeof labels, "service=\"%s\",operation=\"%s\",", aws_ops[i].service,
                 aws_ops[i].op);
        write_hist(w, "bmas_aws_call_duration_seconds", labels, &m->aws_dur[i]);
    }
}

bm_err bm_metrics_write(const struct bm_metrics *m, struct bm_buf *b)
{
    struct pw w = {b, BM_OK};
    write_http(m, &w);
    write_ingest(m, &w);
    write_flush(m, &w);
    write_aws(m, &w);
    return w.rc;
}

/* ---- the aggregates as counters ---- */

static const char *const agg_names[] = {
    "bmas_invocations_total",
    "bmas_input_tokens_total",
    "bmas_output_tokens_total",
    "bmas_cache_read_input_tokens_total",
    "bmas_cache_write_input_tokens_total",
};
static const char *const agg_help[] = {
    ("Model invocations counted from the logs (all the stored data, as GET /aggregates without "
     "from and to)."),
    "Input tokens of the counted invocations.",
    "Output tokens of the counted invocations.",
    "Cache read input tokens of the counted invocations.",
    "Cache write input tokens of the counted invocations.",
};

static uint64_t agg_value(const struct bm_counters *c, int k)
{
    switch (k) {
    case 0:
        return c->invocations;
    case 1:
        return c->input.sum;
    case 2:
        return c->output.sum;
    case 3:
        return c->cache_read.sum;
    default:
        return c->cache_write.sum;
    }
}

static void agg_labels(struct pw *w, const char *name, const struct bm_series_key *k)
{
    const char *pt = k->type < BM_PT__COUNT ? bm_profile_type_name(k->type) : "";
    pf(w, "%s{profile_type=", name);
    label_value(w, pt, strlen(pt));
    pf(w, ",model_id=");
    label_value(w, k->model_id.p, k->model_id.len);
    pf(w, ",source_region=");
    label_value(w, k->source_region.p, k->source_region.len);
    pf(w, ",inference_region=");
    label_value(w, k->inference_region.p, k->inference_region.len);
    pf(w, "}");
}

bm_err bm_metrics_write_aggs(const struct bm_agg *a, size_t max_series, struct bm_buf *b,
                             size_t *folded)
{
    struct pw w = {b, BM_OK};
    size_t n = bm_agg_count(a);
    size_t kept = max_series > 0 && n > max_series ? max_series : n;
    for (int k = 0; k < (int)(sizeof agg_names / sizeof agg_names[0]); k++) {
        family(&w, agg_names[k], "counter", agg_help[k]);
        uint64_t other = 0;
        for (size_t i = 0; i < n; i++) {
            const struct bm_series *s = bm_agg_at(a, i);
            if (i >= kept) {
                other += agg_value(&s->c, k);
                continue;
            }
            agg_labels(&w, agg_names[k], &s->key);
            pf(&w, " %llu\n", (unsigned long long)agg_value(&s->c, k));
        }
        if (kept < n)
            pf(&w,
               "%s{profile_type=\"other\",model_id=\"other\",source_region=\"other\","
               "inference_region=\"other\"} %llu\n",
               agg_names[k], (unsigned long long)other);
    }
    family(&w, "bmas_metrics_series_folded", "gauge",
           "Aggregate series (profile type, model, source and inference Region) beyond "
           "BMAS_METRICS_MAX_SERIES, folded into the series labelled \"other\".");
    pf(&w, "bmas_metrics_series_folded %llu\n", (unsigned long long)(n - kept));
    if (w.rc == BM_OK && folded != NULL)
        *folded = n - kept;
    return w.rc;
}
