/* cw_plan.c: outbox rows -> PutMetricData requests, as a pure function. Rows are merged into
 * groups (one per dimension set, values and timestamp: five datums each) before packing, then
 * the groups are packed in first-seen order under the API's limits. The server's publisher
 * claims, sends and marks; this file only computes. */
#include "core/core_int.h"

#include <assert.h>
#include <string.h>

#define METRICS 5
#define MAX_DIM_VALUE 255
#define TWO_WEEKS_S (14 * 86400)
#define AHEAD_S (2 * 3600)
#define HEADER "Action=PutMetricData&Version=2010-08-01&Namespace="

static const char *const metric_names[METRICS] = {
    "InvocationCount",      "InputTokens",           "OutputTokens",
    "CacheReadInputTokens", "CacheWriteInputTokens",
};

int bm_cw_metrics_per_series(bool publish_cost, bool publish_residency)
{
    return METRICS + (publish_cost ? 1 : 0) + (publish_residency ? 1 : 0);
}

/* What the public plan does not show: the groups (a bm_agg whose key fields carry the
 * dimension values, the set index riding in `type`, so merging is a hash lookup), the options
 * the bodies are encoded with, and the encoded header. */
struct bm__cw_plan_int {
    struct bm_agg *groups;
    struct bm_dimsets dims;
    struct bm_buf header;
    bool cost, residency; /* EstimatedCostUSD, ResidencyViolations */
    int metrics;          /* datums per group: METRICS, plus one for each of those */
};

static struct bm_str dim_value(const struct bm_series_key *k, enum bm_dim d)
{
    static const struct bm_str unknown = {"Unknown", 7};
    struct bm_str v = unknown;
    switch (d) {
    case BM_DIM_PROFILE_TYPE:
    case BM_DIM_INFERENCE_PROFILE: {
        const char *t = bm_profile_type_name(k->type);
        v = bm_str_of(t);
        break;
    }
    case BM_DIM_MODEL_ID:
        v = k->model_id;
        break;
    case BM_DIM_PROFILE_ID:
        v = k->profile_id;
        break;
    case BM_DIM_SOURCE_REGION:
    case BM_DIM_REGION:
        v = k->source_region;
        break;
    case BM_DIM_INFERENCE_REGION:
        v = k->inference_region;
        break;
    case BM_DIM_OPERATION:
        v = k->operation;
        break;
    case BM_DIM_APPLICATION_ID:
        v = k->type == BM_PT_APPLICATION ? k->profile_id : (struct bm_str){"None", 4};
        break;
    case BM_DIM__COUNT:
        break;
    }
    /* CloudWatch needs a value of 1..255 characters; an empty one becomes "Unknown". */
    return v.len > 0 ? v : unknown;
}

/* RFC 3986, the form body's encoding (CloudWatch reads it as the SDKs write it). */
static bm_err escape_into(struct bm_buf *b, struct bm_str s)
{
    return bm_url_encode(s.p, s.len, NULL, false, b);
}

/* Appends the dimensions of member i, the values of group g under its set. */
static bm_err encode_dims(struct bm_buf *b, const struct bm_dimsets *dims,
                          const struct bm_series *g, size_t i)
{
    const struct bm_str vals[] = {g->key.model_id, g->key.profile_id, g->key.source_region,
                                  g->key.inference_region, g->key.operation};
    const int set = (int)g->key.type;
    bm_err rc = BM_OK;
    for (int d = 0; rc == BM_OK && d < dims->set[set].n; d++) {
        rc = bm_buf_appendf(b,
                            "&MetricData.member.%zu.Dimensions.member.%d.Name=%s"
                            "&MetricData.member.%zu.Dimensions.member.%d.Value=",
                            i, d + 1, bm_dim_name(dims->set[set].d[d]), i, d + 1);
        if (rc == BM_OK)
            rc = escape_into(b, vals[d]);
    }
    return rc;
}

/* Appends EstimatedCostUSD (BMAS_PUBLISH_COST) or ResidencyViolations (BMAS_PUBLISH_RESIDENCY)
 * of group g as member i: one value each, the group's cost in dollars or its count of
 * violating invocations (neither has a per-invocation minimum or maximum worth sending). */
static bm_err encode_value(struct bm_buf *b, const struct bm_dimsets *dims,
                           const struct bm_series *g, size_t i, const char ts[21], bool cost)
{
    bm_err rc = bm_buf_appendf(b,
                               "&MetricData.member.%zu.MetricName=%s"
                               "&MetricData.member.%zu.Unit=%s"
                               "&MetricData.member.%zu.Timestamp=%.13s%%3A%.2s%%3A%.2sZ"
                               "&MetricData.member.%zu.Value=",
                               i, cost ? "EstimatedCostUSD" : "ResidencyViolations", i,
                               cost ? "None" : "Count", i, ts, ts + 14, ts + 17, i);
    if (rc == BM_OK && cost)
        rc = bm_cost_append_usd(b, &g->c.cost); /* digits and '.': nothing to escape */
    else if (rc == BM_OK)
        rc = bm_buf_appendf(b, "%llu", (unsigned long long)g->c.violations);
    return rc == BM_OK ? encode_dims(b, dims, g, i) : rc;
}

/* Appends the datums of group g (METRICS, then EstimatedCostUSD and ResidencyViolations when
 * the plan publishes them) as members first, first + 1, ... */
static bm_err encode_group(struct bm_buf *b, const struct bm__cw_plan_int *in,
                           const struct bm_series *g, size_t first)
{
    const struct bm_dimsets *dims = &in->dims;
    char ts[21];
    bm_time_format(g->key.bucket, ts);
    const struct bm_counters *c = &g->c;
    const struct bm_stat inv = {c->invocations, 1, 1};
    const struct bm_stat *stats[METRICS] = {&inv, &c->input, &c->output, &c->cache_read,
                                            &c->cache_write};
    bm_err rc = BM_OK;
    for (int m = 0; rc == BM_OK && m < METRICS; m++) {
        size_t i = first + (size_t)m;
        rc = bm_buf_appendf(b,
                            "&MetricData.member.%zu.MetricName=%s&MetricData.member.%zu.Unit=Count"
                            "&MetricData.member.%zu.Timestamp=%.13s%%3A%.2s%%3A%.2sZ"
                            "&MetricData.member.%zu.StatisticValues.SampleCount=%llu"
                            "&MetricData.member.%zu.StatisticValues.Sum=%llu"
                            "&MetricData.member.%zu.StatisticValues.Minimum=%llu"
                            "&MetricData.member.%zu.StatisticValues.Maximum=%llu",
                            i, metric_names[m], i, i, ts, ts + 14, ts + 17, i,
                            (unsigned long long)c->invocations, i,
                            (unsigned long long)stats[m]->sum, i, (unsigned long long)stats[m]->min,
                            i, (unsigned long long)stats[m]->max);
        if (rc == BM_OK)
            rc = encode_dims(b, dims, g, i);
    }
    size_t i = first + METRICS;
    if (rc == BM_OK && in->cost)
        rc = encode_value(b, dims, g, i++, ts, true);
    if (rc == BM_OK && in->residency)
        rc = encode_value(b, dims, g, i, ts, false);
    return rc;
}

/* The group key of a row's key k under dimension set s: values in the key's string slots in
 * set order, the set index in `type`. false when a value is too long (BMAS-009). */
static bool group_key(const struct bm_dimsets *dims, int s, const struct bm_series_key *k,
                      struct bm_series_key *g)
{
    struct bm_str *slots[] = {&g->model_id, &g->profile_id, &g->source_region, &g->inference_region,
                              &g->operation};
    memset(g, 0, sizeof *g);
    g->bucket = k->bucket;
    g->type = (enum bm_profile_type)s;
    for (int i = 0; i < 5; i++)
        *slots[i] = (struct bm_str){"", 0};
    assert(dims->set[s].n <= BM_DIMSET_MAX_DIMS); /* bm_dimsets_parse's limit: five slots */
    for (int d = 0; d < dims->set[s].n; d++) {
        struct bm_str v = dim_value(k, dims->set[s].d[d]);
        if (v.len > MAX_DIM_VALUE)
            return false;
        *slots[d] = v;
    }
    return true;
}

void bm_cw_plan_free(struct bm_cw_plan *p)
{
    if (p == NULL)
        return;
    if (p->impl != NULL) {
        bm_agg_free(p->impl->groups);
        bm_buf_cleanup(&p->impl->header);
        bm_free(p->impl);
    }
    bm_free(p->req);
    bm_free(p->sent);
    bm_free(p->dropped);
    bm_free(p->rejected);
    bm_free(p->held);
    bm_free(p);
}

/* Appends request slot k (growing the array) starting at group first. */
static bm_err new_request(struct bm_cw_plan *p, size_t *cap, size_t first, size_t header_len)
{
    if (p->nreq == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4;
        struct bm_cw_request *r = bm_realloc(p->req, ncap * sizeof *r);
        if (r == NULL)
            return BM_E_NOMEM;
        p->req = r;
        *cap = ncap;
    }
    p->req[p->nreq++] = (struct bm_cw_request){.first_group = first, .body_len = header_len};
    return BM_OK;
}

/* Merges the rows into groups and sorts each row into sent, dropped, rejected or waiting. */
static bm_err merge_rows(const struct bm_cw_plan_opts *o, const struct bm_cw_row *rows, size_t n,
                         struct bm_cw_plan *p)
{
    const struct bm_dimsets *dims = &p->impl->dims;
    for (size_t i = 0; i < n; i++) {
        const struct bm_cw_row *r = &rows[i];
        if (o->now != BM_NO_BUCKET && r->key.bucket < o->now - TWO_WEEKS_S + 60) {
            p->dropped[p->ndropped++] = i; /* CloudWatch would refuse it forever */
            continue;
        }
        if (o->now != BM_NO_BUCKET && r->key.bucket > o->now + AHEAD_S - 60) {
            p->nwaiting++; /* from the future (clock skew in the logs): it waits */
            continue;
        }
        bool any = false, held = false;
        for (int s = 0; s < dims->n; s++) {
            struct bm_series_key g;
            if (!group_key(dims, s, &r->key, &g)) {
                p->dimension_overflow++; /* this set is skipped for this series */
                continue;
            }
            if (o->admit != NULL && !o->admit(o->admit_ctx, &g)) {
                p->held_back++; /* BMAS_MAX_SERIES: a new series past the cap */
                held = true;
                continue;
            }
            bm_err rc = bm_agg_add(p->impl->groups, &g, &r->c);
            if (rc != BM_OK)
                return rc;
            any = true;
        }
        if (any)
            p->sent[p->nsent++] = i;
        else if (held)
            p->held[p->nheld++] = i;
        else
            p->rejected[p->nrejected++] = i;
    }
    return BM_OK;
}

/* Packs the groups in order: a group joins the current request when the request stays within
 * max_datums and its exact encoded length within max_body, else it starts the next one. */
static bm_err pack(struct bm_cw_plan *p, size_t max_datums, size_t max_body)
{
    struct bm__cw_plan_int *in = p->impl;
    size_t ngroups = bm_agg_count(in->groups), cap = 0;
    struct bm_buf probe;
    bm_buf_init(&probe, max_body + 4096);
    bm_err rc = BM_OK;
    for (size_t g = 0; rc == BM_OK && g < ngroups; g++) {
        const struct bm_series *grp = bm_agg_at(in->groups, g);
        for (int tries = 0; rc == BM_OK && tries < 2; tries++) {
            struct bm_cw_request *cur = p->nreq ? &p->req[p->nreq - 1] : NULL;
            if (cur == NULL) {
                rc = new_request(p, &cap, g, in->header.len);
                continue;
            }
            bm_buf_reset(&probe);
            rc = encode_group(&probe, in, grp, cur->ndatums + 1);
            if (rc != BM_OK)
                break;
            size_t nm = (size_t)in->metrics;
            bool fits = cur->ndatums + nm <= max_datums && cur->body_len + probe.len <= max_body;
            if (fits || cur->ngroups == 0) {
                /* An empty request always takes its first group: one group that alone is
                 * over the byte limit cannot be split (five datums of at most 6 x 255-byte
                 * values are about 12 KB, far below it). */
                cur->ngroups++;
                cur->ndatums += nm;
                cur->body_len += probe.len;
                p->datums += nm;
                break;
            }
            rc = new_request(p, &cap, g, in->header.len);
        }
    }
    bm_buf_cleanup(&probe);
    return rc;
}

bm_err bm_cw_plan_make(const struct bm_cw_plan_opts *o, const struct bm_cw_row *rows, size_t n,
                       struct bm_cw_plan **out)
{
    size_t max_datums = o->max_datums ? o->max_datums : BM_CW_MAX_DATUMS;
    size_t max_body = o->max_body ? o->max_body : BM_CW_MAX_BODY;
    bm_err rc = BM_E_NOMEM;
    struct bm_cw_plan *p = bm_calloc(1, sizeof *p);
    size_t m = n ? n : 1;
    if (p == NULL || (p->impl = bm_calloc(1, sizeof *p->impl)) == NULL ||
        (p->sent = bm_calloc(m, sizeof *p->sent)) == NULL ||
        (p->dropped = bm_calloc(m, sizeof *p->dropped)) == NULL ||
        (p->rejected = bm_calloc(m, sizeof *p->rejected)) == NULL ||
        (p->held = bm_calloc(m, sizeof *p->held)) == NULL ||
        (p->impl->groups = bm_agg_new(0)) == NULL)
        goto fail;
    p->impl->dims = *o->dims;
    p->impl->cost = o->publish_cost;
    p->impl->residency = o->publish_residency;
    p->impl->metrics = bm_cw_metrics_per_series(o->publish_cost, o->publish_residency);
    bm_buf_init(&p->impl->header, 4096);
    const char *ns = o->namespace_name ? o->namespace_name : "";
    if ((rc = bm_buf_append_str(&p->impl->header, HEADER)) != BM_OK ||
        (rc = escape_into(&p->impl->header, bm_str_of(ns))) != BM_OK ||
        (rc = merge_rows(o, rows, n, p)) != BM_OK || (rc = pack(p, max_datums, max_body)) != BM_OK)
        goto fail;
    *out = p;
    return BM_OK;
fail:
    bm_cw_plan_free(p);
    return rc;
}

bm_err bm_cw_plan_body(const struct bm_cw_plan *p, size_t k, struct bm_buf *b)
{
    assert(k < p->nreq);
    const struct bm_cw_request *r = &p->req[k];
    bm_err rc = bm_buf_append(b, p->impl->header.data, p->impl->header.len);
    for (size_t g = 0; rc == BM_OK && g < r->ngroups; g++)
        rc = encode_group(b, p->impl, bm_agg_at(p->impl->groups, r->first_group + g),
                          g * (size_t)p->impl->metrics + 1);
    return rc;
}
