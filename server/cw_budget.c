/* cw_budget.c: the CloudWatch budget. During a flush, a gate decides which series (dimension
 * set and values) go out under BMAS_MAX_SERIES and records them; /status and /metrics show the
 * distinct series of the last 24 hours and the month's estimated cost at the custom-metric
 * price. CloudWatch bills a custom metric per month, prorated by the hours in which it was
 * sent, so storage keeps each series' hours of the month. */
#include "server/srv_int.h"

#include <stdio.h>
#include <string.h>

#define DAY_S 86400
#define SET_NAME_MAX (BM_DIM__COUNT * 24)

struct bm__cw_gate {
    struct bm_srv *s;
    int64_t now, month_start;
    char names[BM_DIMSETS_MAX][SET_NAME_MAX]; /* each configured set's stored name */
    /* Keys: the set index in `type`, the values in the string slots, no bucket. */
    struct bm_agg *known;      /* published in the last 24 h */
    struct bm_agg *was_held;   /* held back in the last 24 h, not published since */
    struct bm_agg *sent;       /* published in this flush, known or new */
    struct bm_agg *held;       /* held back in this flush */
    size_t sent_rec, held_rec; /* how many of each are recorded already */
    uint64_t count;            /* series published in 24 h, this flush's included */
    uint64_t new_held;         /* held back now and not in the 24 h before */
    bm_err rc;                 /* the first failure inside a callback */
};

/* The stored name of a set: its dimension names joined by ",", "()" for none. */
static void set_name(const struct bm_dimsets *d, int i, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    if (d->set[i].n == 0)
        snprintf(out, cap, "()");
    for (int k = 0; k < d->set[i].n && len < cap; k++)
        len += (size_t)snprintf(out + len, cap - len, "%s%s", k ? "," : "",
                                bm_dim_name(d->set[i].d[k]));
}

static struct bm_str *slot(struct bm_series_key *k, int i)
{
    struct bm_str *slots[] = {&k->model_id, &k->profile_id, &k->source_region, &k->inference_region,
                              &k->operation};
    return slots[i];
}

static bm_err load_one(void *ctx, const struct bm_db_cw_series *s, bool published)
{
    struct bm__cw_gate *g = ctx;
    if (published)
        g->count++;
    for (int i = 0; i < g->s->dims.n; i++) {
        if (strcmp(g->names[i], s->set) != 0)
            continue;
        struct bm_series_key k = {.bucket = BM_NO_BUCKET, .type = (enum bm_profile_type)i};
        for (int v = 0; v < BM_DIMSET_MAX_DIMS; v++)
            *slot(&k, v) = s->v[v];
        struct bm_counters zero = {0};
        return bm_agg_add(published ? g->known : g->was_held, &k, &zero);
    }
    return BM_OK; /* a set no longer configured: it counts, nothing can match it */
}

static void month_bounds(int64_t now, int64_t *start, int64_t *end)
{
    char ts[21], m[32];
    bm_time_format(now, ts);
    snprintf(m, sizeof m, "%.7s-01T00:00:00Z", ts);
    bm_time_parse(m, strlen(m), start);
    bm_time_format(*start + 32 * DAY_S, ts); /* a day of the next month */
    snprintf(m, sizeof m, "%.7s-01T00:00:00Z", ts);
    bm_time_parse(m, strlen(m), end);
}

bm_err bm__cw_gate_new(struct bm_srv *s, int64_t now, struct bm__cw_gate **out,
                       struct bm_errmsg *em)
{
    struct bm__cw_gate *g = bm_calloc(1, sizeof *g);
    if (g == NULL || (g->known = bm_agg_new(0)) == NULL || (g->was_held = bm_agg_new(0)) == NULL ||
        (g->sent = bm_agg_new(0)) == NULL || (g->held = bm_agg_new(0)) == NULL) {
        bm__cw_gate_free(g);
        return bm_errmsg_set(em, BM_E_NOMEM, "out of memory");
    }
    g->s = s;
    g->now = now;
    int64_t end;
    month_bounds(now, &g->month_start, &end);
    for (int i = 0; i < s->dims.n; i++)
        set_name(&s->dims, i, g->names[i], sizeof g->names[i]);
    bm_err rc = bm_db_cw_series_recent(s->db, now - DAY_S, load_one, g, em);
    if (rc != BM_OK) {
        bm__cw_gate_free(g);
        return rc;
    }
    *out = g;
    return BM_OK;
}

bool bm__cw_gate_admit(void *ctx, const struct bm_series_key *key)
{
    struct bm__cw_gate *g = ctx;
    struct bm_series_key k = *key;
    k.bucket = BM_NO_BUCKET;
    if (bm_agg_contains(g->sent, &k))
        return true;
    if (bm_agg_contains(g->held, &k))
        return false;
    bool known = bm_agg_contains(g->known, &k);
    long max = g->s->cfg->max_series;
    bool ok = known || max == 0 || g->count < (uint64_t)max;
    struct bm_counters zero = {0};
    /* Known series go into `sent` too: each publication moves its time and hours forward. */
    bm_err rc = bm_agg_add(ok ? g->sent : g->held, &k, &zero);
    if (rc != BM_OK) {
        /* Out of memory: let it go rather than lose data; the flush reports the error. */
        if (g->rc == BM_OK)
            g->rc = rc;
        return true;
    }
    if (ok && !known)
        g->count++;
    else if (!ok && !bm_agg_contains(g->was_held, &k))
        g->new_held++;
    return ok;
}

/* Records series [from, count) of a as published or held back. */
static bm_err record(struct bm__cw_gate *g, struct bm_agg *a, size_t *from, bool held,
                     struct bm_errmsg *em)
{
    size_t n = bm_agg_count(a) - *from;
    if (n == 0)
        return BM_OK;
    struct bm_db_cw_series *v = bm_calloc(n, sizeof *v);
    if (v == NULL)
        return bm_errmsg_set(em, BM_E_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const struct bm_series *s = bm_agg_at(a, *from + i);
        v[i].set = g->names[s->key.type];
        for (int k = 0; k < BM_DIMSET_MAX_DIMS; k++)
            v[i].v[k] = *slot((struct bm_series_key *)&s->key, k);
    }
    bm_err rc = bm_db_cw_series_record(g->s->db, v, n, held, g->now, g->month_start, em);
    bm_free(v);
    if (rc == BM_OK)
        *from += n;
    return rc;
}

bm_err bm__cw_gate_record(struct bm__cw_gate *g, struct bm_errmsg *em)
{
    if (g->rc != BM_OK)
        return bm_errmsg_set(em, g->rc, "out of memory");
    bm_err rc = record(g, g->sent, &g->sent_rec, false, em);
    return rc == BM_OK ? record(g, g->held, &g->held_rec, true, em) : rc;
}

void bm__cw_gate_end(struct bm__cw_gate *g)
{
    size_t held = bm_agg_count(g->held);
    if (held == 0)
        return;
    bm_metrics_held_back(g->s->metrics, held);
    if (g->new_held == 0)
        return; /* the same series as before: said already within the last 24 hours */
    bm_db_count(g->s->db, BM_DB_C_ERRORS + bm_err_wire_index(BM_E_SERIES_CAP), g->new_held);
    BM_LOG(BM_WARN, "server", "cloudwatch_series_cap",
           "BMAS_MAX_SERIES reached: new CloudWatch series are not published",
           BM_KV_ERR(BM_E_SERIES_CAP), BM_KV_INT("maxSeries", g->s->cfg->max_series),
           BM_KV_INT("series24h", (long long)g->count), BM_KV_INT("heldBack", (long long)held),
           BM_KV_INT("newlyHeldBack", (long long)g->new_held));
}

void bm__cw_gate_free(struct bm__cw_gate *g)
{
    if (g == NULL)
        return;
    bm_agg_free(g->known);
    bm_agg_free(g->was_held);
    bm_agg_free(g->sent);
    bm_agg_free(g->held);
    bm_free(g);
}

/* ---- the budget, for /status and /metrics ---- */

bm_err bm__cw_price_parse(const char *s, uint64_t *micro_usd, struct bm_errmsg *em)
{
    uint64_t whole = 0, frac = 0;
    int nd = 0, nf = -1; /* digits before the point; after it (-1: no point yet) */
    bool bad = false;
    for (const char *p = s; *p != '\0' && !bad; p++) {
        bool digit = *p >= '0' && *p <= '9';
        if (*p == '.' && nf < 0) {
            nf = 0;
        } else if (digit && nf < 0 && nd < 6) {
            whole = whole * 10 + (uint64_t)(*p - '0');
            nd++;
        } else if (digit && nf >= 0 && nf < 6) {
            frac = frac * 10 + (uint64_t)(*p - '0');
            nf++;
        } else {
            bad = true;
        }
    }
    if (bad || nd + (nf > 0 ? nf : 0) == 0)
        return bm_errmsg_set(em, BM_E_CONFIG,
                             "BMAS_CLOUDWATCH_METRIC_PRICE: \"%.32s\" is not a price in USD "
                             "(digits, at most 6 before and 6 after the point: 0.30)",
                             s);
    for (int i = nf < 0 ? 0 : nf; i < 6; i++)
        frac *= 10;
    *micro_usd = whole * 1000000 + frac;
    return BM_OK;
}

struct budget {
    struct bm_db_cw_budget b;
    uint64_t price_micro, estimate_micro;
    int64_t month_start;
    uint64_t hours_in_month, hours_left;
    int metrics; /* per series, as the plan sends them */
};

/* The month's estimate: the (series, hour) pairs published so far, plus the series of the
 * last 24 hours kept up for every hour left, times the price of one metric-hour. */
static bm_err budget_read(struct bm_srv *s, bm_db_cw_set_fn fn, void *ctx, struct budget *out,
                          struct bm_errmsg *em)
{
    struct budget b = {.price_micro = 0};
    int64_t now = bm_time_now(), end;
    month_bounds(now, &b.month_start, &end);
    if (bm__cw_price_parse(s->cfg->cloudwatch_metric_price, &b.price_micro, em) != BM_OK)
        return BM_E_CONFIG; /* checked at start: not reached */
    bm_err rc = bm_db_cw_budget(s->db, now - DAY_S, b.month_start, fn, ctx, &b.b, em);
    if (rc != BM_OK)
        return rc;
    b.hours_in_month = (uint64_t)(end - b.month_start) / 3600;
    b.hours_left = (uint64_t)(end / 3600 - now / 3600 - 1); /* after the current hour */
    b.metrics = bm_cw_metrics_per_series(s->cfg->publish_cost, s->cfg->publish_residency);
    unsigned __int128 num = (unsigned __int128)b.price_micro * (unsigned)b.metrics *
                            (b.b.series_hours + b.b.series * b.hours_left);
    b.estimate_micro = (uint64_t)((num + b.hours_in_month / 2) / b.hours_in_month);
    *out = b;
    return BM_OK;
}

struct set_json {
    struct bm_buf *b;
    int n;
};

static void set_json(void *ctx, const char *set, uint64_t published, uint64_t held)
{
    struct set_json *j = ctx;
    bm_buf_append_str(j->b, j->n++ ? ",{\"dimensions\":" : "{\"dimensions\":");
    bm_buf_append_json_str(j->b, set, strlen(set));
    bm_buf_appendf(j->b, ",\"series_24h\":%llu,\"held_back_24h\":%llu}",
                   (unsigned long long)published, (unsigned long long)held);
}

bm_err bm__cw_budget_json(struct bm_srv *s, struct bm_buf *b, struct bm_errmsg *em)
{
    struct set_json j = {b, 0};
    struct budget bu;
    bm_buf_append_str(b, "{\"dimension_sets\":[");
    bm_err rc = budget_read(s, set_json, &j, &bu, em);
    if (rc != BM_OK)
        return rc;
    char month[21];
    bm_time_format(bu.month_start, month);
    return bm_buf_appendf(
        b,
        "],\"series_24h\":%llu,\"held_back_24h\":%llu,\"held_back_total\":%llu,"
        "\"max_series\":%ld,\"metrics_per_series\":%d,\"metric_price_usd\":%llu.%06llu,"
        "\"month\":\"%.7s\",\"hours_in_month\":%llu,\"hours_left\":%llu,"
        "\"series_hours_month\":%llu,\"month_estimate_usd\":%llu.%06llu}",
        (unsigned long long)bu.b.series, (unsigned long long)bu.b.held,
        (unsigned long long)bu.b.held_back_total, s->cfg->max_series, bu.metrics,
        (unsigned long long)(bu.price_micro / 1000000),
        (unsigned long long)(bu.price_micro % 1000000), month,
        (unsigned long long)bu.hours_in_month, (unsigned long long)bu.hours_left,
        (unsigned long long)bu.b.series_hours, (unsigned long long)(bu.estimate_micro / 1000000),
        (unsigned long long)(bu.estimate_micro % 1000000));
}

struct set_prom {
    struct bm_buf *b;
    bm_err rc;
};

static void set_prom(void *ctx, const char *set, uint64_t published, uint64_t held)
{
    (void)held;
    struct set_prom *p = ctx;
    bm_err rc = bm_buf_append_str(p->b, "bmas_cloudwatch_series_24h{dimension_set=");
    if (rc == BM_OK)
        rc = bm_prom_label_value(p->b, set, strlen(set));
    if (rc == BM_OK)
        rc = bm_buf_appendf(p->b, "} %llu\n", (unsigned long long)published);
    if (p->rc == BM_OK)
        p->rc = rc;
}

bm_err bm__cw_budget_metrics(struct bm_srv *s, struct bm_buf *b)
{
    struct bm_errmsg em = {{0}};
    struct set_prom p = {b, BM_OK};
    struct budget bu;
    p.rc = bm_prom_family(b, "bmas_cloudwatch_series_24h", "gauge",
                          "Distinct CloudWatch series (dimension set and values) published in "
                          "the last 24 hours, by dimension set; five metrics each.");
    bm_err rc = budget_read(s, set_prom, &p, &bu, &em);
    if (rc == BM_OK)
        rc = p.rc;
    if (rc == BM_OK)
        rc = bm_prom_family(b, "bmas_cloudwatch_cost_month_estimate_usd", "gauge",
                            "The month's estimated CloudWatch custom-metric cost in USD "
                            "(BMAS_CLOUDWATCH_METRIC_PRICE, prorated by the hour).");
    if (rc == BM_OK)
        rc = bm_buf_appendf(b, "bmas_cloudwatch_cost_month_estimate_usd %llu.%06llu\n",
                            (unsigned long long)(bu.estimate_micro / 1000000),
                            (unsigned long long)(bu.estimate_micro % 1000000));
    if (rc == BM_OK)
        rc = bm_prom_family(b, "bmas_cloudwatch_max_series", "gauge",
                            "BMAS_MAX_SERIES: series published in 24 hours before new ones are "
                            "held back (0: no cap).");
    if (rc == BM_OK)
        rc = bm_buf_appendf(b, "bmas_cloudwatch_max_series %ld\n", s->cfg->max_series);
    return rc;
}
