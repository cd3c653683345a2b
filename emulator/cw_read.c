/* cw_read.c: CloudWatch reads: GetMetricStatistics, GetMetricData and ListMetrics, with the
 * exact per-period statistics computed from the stored (sum, count, min, max) points. */
#include "emulator/emu_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CW_MAX_DATAPOINTS 1440

/* ---- statistics ----------------------------------------------------------------------- */
bm_err bm__emu_cw_aggregate(const struct emu_series *s, int64_t start, int64_t end, long period,
                            int unit, struct emu_stat **out, size_t *n)
{
    /* Buckets start at StartTime rounded down to the minute (to the period below a minute),
     * as GetMetricStatistics documents; each covers [t, t + period). */
    int64_t align = period >= 60 ? 60 : period;
    int64_t first = start - ((start % align) + align) % align;
    size_t nb = end > first ? (size_t)((end - first + period - 1) / period) : 0;
    struct emu_stat *b = bm_calloc(nb ? nb : 1, sizeof *b);
    if (b == NULL)
        return BM_E_NOMEM;
    for (size_t i = 0; i < s->n_pts; i++) {
        const struct emu_point *p = &s->pts[i];
        if (p->ts < first || p->ts >= end || (unit >= 0 && p->unit != unit))
            continue;
        struct emu_stat *st = &b[(p->ts - first) / period];
        if (st->count == 0) {
            st->min = p->min;
            st->max = p->max;
        } else {
            st->min = p->min < st->min ? p->min : st->min;
            st->max = p->max > st->max ? p->max : st->max;
        }
        st->sum += p->sum;
        st->count += p->count;
    }
    size_t k = 0;
    for (size_t i = 0; i < nb; i++) {
        if (b[i].count > 0) {
            b[k] = b[i];
            b[k++].ts = first + (int64_t)i * period;
        }
    }
    *out = b;
    *n = k;
    return BM_OK;
}

static double stat_value(const struct emu_stat *st, const char *stat)
{
    if (strcmp(stat, "Sum") == 0)
        return st->sum;
    if (strcmp(stat, "SampleCount") == 0)
        return st->count;
    if (strcmp(stat, "Average") == 0)
        return st->sum / st->count;
    if (strcmp(stat, "Minimum") == 0)
        return st->min;
    return st->max;
}

static bool valid_stat(const char *s)
{
    static const char *const stats[] = {"SampleCount", "Average", "Sum", "Minimum", "Maximum"};
    for (size_t i = 0; i < sizeof stats / sizeof stats[0]; i++) {
        if (strcmp(s, stats[i]) == 0)
            return true;
    }
    return false;
}

/* ---- reads ---------------------------------------------------------------------------- */
/* StartTime, EndTime and Period shared by both read operations. */
static bm_err read_window(struct emu_req *rq, const cJSON *in, long period_in, int64_t *start,
                          int64_t *end)
{
    int64_t s_ms, e_ms;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(in, "StartTime");
    const cJSON *et = cJSON_GetObjectItemCaseSensitive(in, "EndTime");
    if (st == NULL || et == NULL)
        return bm__emu_fail(rq, "MissingParameter", "The parameter %s is required.",
                            st == NULL ? "StartTime" : "EndTime");
    if (!bm__emu_in_time(st, &s_ms) || !bm__emu_in_time(et, &e_ms))
        return bm__emu_fail(rq, "InvalidParameterValue",
                            "StartTime and EndTime must be valid timestamps.");
    if (s_ms >= e_ms)
        return bm__emu_fail(rq, "InvalidParameterValue",
                            "The parameter StartTime must be less than the parameter EndTime.");
    if (period_in < 1 ||
        (period_in >= 60 ? period_in % 60 != 0
                         : period_in != 1 && period_in != 5 && period_in != 10 && period_in != 30))
        return bm__emu_fail(rq, "InvalidParameterValue",
                            "The parameter Period must be 1, 5, 10, 30 or a multiple of 60.");
    *start = s_ms / 1000;
    *end = (e_ms + 999) / 1000;
    return BM_OK;
}

bm_err bm__emu_cw_get_metric_statistics(struct emu_req *rq, struct emu_w *w)
{
    struct bm_emu *emu = rq->emu;
    const char *ns = bm__emu_in_str(rq->in, "Namespace");
    const char *name = bm__emu_in_str(rq->in, "MetricName");
    const cJSON *stats = cJSON_GetObjectItemCaseSensitive(rq->in, "Statistics");
    const cJSON *ext = cJSON_GetObjectItemCaseSensitive(rq->in, "ExtendedStatistics");
    long period = 0;
    int64_t start, end;
    if (ns == NULL || name == NULL)
        return bm__emu_fail(rq, "MissingParameter", "The parameter %s is required.",
                            ns == NULL ? "Namespace" : "MetricName");
    bm_err rc = bm__emu_in_long(rq, rq->in, "Period", 1, 86400 * 455, &period);
    if (rc == BM_OK)
        rc = read_window(rq, rq->in, period, &start, &end);
    if (rc != BM_OK)
        return rc;
    if (cJSON_GetArraySize(ext) > 0)
        return bm__emu_fail(rq, "InvalidParameterValue",
                            "bmas-emulator does not compute ExtendedStatistics (percentiles).");
    if (cJSON_GetArraySize(stats) == 0)
        return bm__emu_fail(rq, "InvalidParameterCombination",
                            "Must specify either Statistics or ExtendedStatistics.");
    const cJSON *st;
    cJSON_ArrayForEach(st, stats)
    {
        if (!cJSON_IsString(st) || !valid_stat(st->valuestring))
            return bm__emu_fail(rq, "InvalidParameterValue",
                                "The parameter Statistics must be among SampleCount, Average, "
                                "Sum, Minimum, Maximum.");
    }
    int64_t points = (end - start + period - 1) / period;
    if (points > CW_MAX_DATAPOINTS)
        return bm__emu_fail(rq, "InvalidParameterCombination",
                            "You have requested up to %lld datapoints, which exceeds the limit of "
                            "%d. You may reduce the datapoints requested by increasing Period, "
                            "or decreasing the time range.",
                            (long long)points, CW_MAX_DATAPOINTS);
    const char *unit_s = bm__emu_in_str(rq->in, "Unit");
    int unit = unit_s ? bm__emu_cw_unit(unit_s) : -1;
    if (unit_s != NULL && unit < 0)
        return bm__emu_fail(rq, "InvalidParameterValue",
                            "The value %s for parameter Unit is invalid.", unit_s);
    const cJSON *dims_in = cJSON_GetObjectItemCaseSensitive(rq->in, "Dimensions");
    if ((rc = bm__emu_cw_check_dims(rq, dims_in, "Dimensions")) != BM_OK)
        return rc;
    struct emu_kv dims[EMU_CW_MAX_DIMS];
    size_t nd = bm__emu_cw_read_dims(dims_in, dims);

    pthread_mutex_lock(&emu->mu);
    struct emu_series *s = bm__emu_cw_series_find(emu, ns, name, dims, nd);
    bm__emu_w_str(w, "Label", name);
    bm__emu_w_list(w, "Datapoints", "Datapoints", "member");
    /* Datapoints of different units are never mixed: one set per unit present. */
    for (int u = 0; s != NULL && u < bm__emu_cw_n_units() && rc == BM_OK; u++) {
        if (unit >= 0 && u != unit)
            continue;
        struct emu_stat *agg = NULL;
        size_t n = 0;
        rc = bm__emu_cw_aggregate(s, start, end, period, u, &agg, &n);
        for (size_t i = 0; i < n && rc == BM_OK; i++) {
            bm__emu_w_obj(w, NULL);
            bm__emu_w_time(w, "Timestamp", agg[i].ts * 1000);
            cJSON_ArrayForEach(st, stats)
                bm__emu_w_num(w, st->valuestring, stat_value(&agg[i], st->valuestring));
            bm__emu_w_str(w, "Unit", bm__emu_cw_unit_name(u));
            bm__emu_w_end(w);
        }
        bm_free(agg);
    }
    pthread_mutex_unlock(&emu->mu);
    bm__emu_w_end(w);
    return rc;
}

static bool valid_query_id(const char *id)
{
    if (id == NULL || !(id[0] >= 'a' && id[0] <= 'z') || strlen(id) > 255)
        return false;
    for (const char *p = id; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return false;
    }
    return true;
}

/* One result of GetMetricData: series s (may be NULL: no data) in periods with stat. */
static bm_err write_result(struct emu_w *w, const char *id, const char *label,
                           const struct emu_series *s, int64_t start, int64_t end, long period,
                           int unit, const char *stat, bool ascending)
{
    struct emu_stat *agg = NULL;
    size_t n = 0;
    bm_err rc;
    if (s != NULL && (rc = bm__emu_cw_aggregate(s, start, end, period, unit, &agg, &n)) != BM_OK)
        return rc;
    bm__emu_w_obj(w, NULL);
    bm__emu_w_str(w, "Id", id);
    bm__emu_w_str(w, "Label", label);
    bm__emu_w_list(w, "Timestamps", "Timestamps", "member");
    for (size_t i = 0; i < n; i++)
        bm__emu_w_time(w, NULL, agg[ascending ? i : n - 1 - i].ts * 1000);
    bm__emu_w_end(w);
    bm__emu_w_list(w, "Values", "Values", "member");
    for (size_t i = 0; i < n; i++)
        bm__emu_w_num(w, NULL, stat_value(&agg[ascending ? i : n - 1 - i], stat));
    bm__emu_w_end(w);
    bm__emu_w_str(w, "StatusCode", "Complete");
    bm__emu_w_end(w);
    bm_free(agg);
    return BM_OK;
}

/* A query's SEARCH expression into *sq; a ValidationError when it is not one bmas-emulator
 * evaluates (checked for every query before any result is written). */
static bm_err search_of(struct emu_req *rq, const cJSON *q, struct emu_search *sq)
{
    char err[200];
    const char *expr = bm__emu_in_str(q, "Expression");
    if (expr == NULL || !bm__emu_cw_search_parse(expr, sq, err, sizeof err))
        return bm__emu_fail(rq, "ValidationError", "%s",
                            expr == NULL ? "Expression must be a string." : err);
    if (!valid_stat(sq->stat))
        return bm__emu_fail(rq, "ValidationError",
                            "The SEARCH statistic %s is not supported by bmas-emulator.", sq->stat);
    return BM_OK;
}

/* A SEARCH query's results (callers hold mu): one per series it finds (at most 500), each
 * with the query's Id and a label of the metric name and the dimension values. */
static bm_err search_results(struct emu_req *rq, struct emu_w *w, const cJSON *q, int64_t start,
                             int64_t end, bool ascending)
{
    struct emu_search sq;
    bm_err rc = search_of(rq, q, &sq);
    size_t found = 0;
    for (size_t i = 0; i < rq->emu->n_series && rc == BM_OK && found < 500; i++) {
        const struct emu_series *s = rq->emu->series[i];
        if (!bm__emu_cw_search_match(&sq, s))
            continue;
        char label[1024];
        int n = snprintf(label, sizeof label, "%s", s->name);
        for (size_t k = 0; k < s->n_dims && n > 0 && (size_t)n < sizeof label; k++)
            n += snprintf(label + n, sizeof label - (size_t)n, " %s", s->dims[k].v);
        found++;
        rc = write_result(w, bm__emu_in_str(q, "Id"), label, s, start, end, sq.period, -1, sq.stat,
                          ascending);
    }
    return rc;
}

/* One MetricStat query's result (callers hold mu). */
static bm_err data_result(struct emu_req *rq, struct emu_w *w, const cJSON *q, int64_t start,
                          int64_t end, bool ascending)
{
    if (cJSON_GetObjectItemCaseSensitive(q, "Expression") != NULL)
        return search_results(rq, w, q, start, end, ascending);
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(q, "MetricStat");
    const cJSON *metric = cJSON_GetObjectItemCaseSensitive(ms, "Metric");
    const char *ns = bm__emu_in_str(metric, "Namespace");
    const char *name = bm__emu_in_str(metric, "MetricName");
    const char *stat = bm__emu_in_str(ms, "Stat");
    const char *unit_s = bm__emu_in_str(ms, "Unit");
    const char *label = bm__emu_in_str(q, "Label");
    long period = 0;
    if (ns == NULL || name == NULL || stat == NULL)
        return bm__emu_fail(rq, "MissingParameter",
                            "MetricStat needs Metric.Namespace, Metric.MetricName and Stat.");
    if (!valid_stat(stat))
        return bm__emu_fail(rq, "InvalidParameterValue",
                            "The value %s for parameter Stat is not supported by bmas-emulator "
                            "(SampleCount, Average, Sum, Minimum, Maximum).",
                            stat);
    bm_err rc = bm__emu_in_long(rq, ms, "Period", 1, 86400 * 455, &period);
    int64_t s0, e0;
    if (rc == BM_OK)
        rc = read_window(rq, rq->in, period, &s0, &e0);
    const cJSON *dims_in = cJSON_GetObjectItemCaseSensitive(metric, "Dimensions");
    if (rc == BM_OK)
        rc = bm__emu_cw_check_dims(rq, dims_in, "MetricStat.Metric.Dimensions");
    if (rc != BM_OK)
        return rc;
    int unit = unit_s ? bm__emu_cw_unit(unit_s) : -1;
    struct emu_kv dims[EMU_CW_MAX_DIMS];
    size_t nd = bm__emu_cw_read_dims(dims_in, dims);
    struct emu_series *s = bm__emu_cw_series_find(rq->emu, ns, name, dims, nd);
    return write_result(w, bm__emu_in_str(q, "Id"), label ? label : name, s, start, end, period,
                        unit, stat, ascending);
}

bm_err bm__emu_cw_get_metric_data(struct emu_req *rq, struct emu_w *w)
{
    const cJSON *queries = cJSON_GetObjectItemCaseSensitive(rq->in, "MetricDataQueries");
    int n = cJSON_GetArraySize(queries);
    int64_t start, end;
    if (n == 0)
        return bm__emu_fail(rq, "MissingParameter", "The parameter MetricDataQueries is required.");
    if (n > 500)
        return bm__emu_fail(rq, "InvalidParameterValue",
                            "The collection MetricDataQueries must not have a size greater than "
                            "500.");
    bm_err rc = read_window(rq, rq->in, 60, &start, &end);
    if (rc != BM_OK)
        return rc;
    const char *scan = bm__emu_in_str(rq->in, "ScanBy");
    bool ascending = scan != NULL && strcmp(scan, "TimestampAscending") == 0;
    const cJSON *q;
    cJSON_ArrayForEach(q, queries)
    {
        struct emu_search sq;
        if (!valid_query_id(bm__emu_in_str(q, "Id")))
            return bm__emu_fail(rq, "InvalidParameterValue",
                                "The value for parameter MetricDataQueries.member.Id must start "
                                "with a lowercase letter and hold only letters, digits and _.");
        if (cJSON_GetObjectItemCaseSensitive(q, "Expression") != NULL &&
            search_of(rq, q, &sq) != BM_OK)
            return BM_E_BAD_REQUEST;
    }
    pthread_mutex_lock(&rq->emu->mu);
    bm__emu_w_list(w, "MetricDataResults", "MetricDataResults", "member");
    cJSON_ArrayForEach(q, queries)
    {
        const cJSON *rd = cJSON_GetObjectItemCaseSensitive(q, "ReturnData");
        bool skip =
            cJSON_IsFalse(rd) || (cJSON_IsString(rd) && strcmp(rd->valuestring, "false") == 0);
        if (!skip && (rc = data_result(rq, w, q, start, end, ascending)) != BM_OK)
            break;
    }
    pthread_mutex_unlock(&rq->emu->mu);
    if (rc != BM_OK)
        return rc;
    bm__emu_w_end(w);
    bm__emu_w_list(w, "Messages", "Messages", "member");
    bm__emu_w_end(w);
    return BM_OK;
}

static bool dims_match(const struct emu_series *s, const cJSON *filters)
{
    const cJSON *f;
    cJSON_ArrayForEach(f, filters)
    {
        const char *fn = bm__emu_in_str(f, "Name"), *fv = bm__emu_in_str(f, "Value");
        bool found = false;
        for (size_t i = 0; fn != NULL && i < s->n_dims && !found; i++)
            found = strcmp(s->dims[i].k, fn) == 0 && (fv == NULL || strcmp(s->dims[i].v, fv) == 0);
        if (!found)
            return false;
    }
    return true;
}

bm_err bm__emu_cw_next_token(struct emu_req *rq, size_t *from)
{
    const char *token = bm__emu_in_str(rq->in, "NextToken");
    *from = 0;
    if (token == NULL)
        return BM_OK;
    char *end = NULL;
    *from = strtoull(token, &end, 10);
    if (*end != '\0' || end == token)
        return bm__emu_fail(rq, "InvalidNextToken", "The NextToken is invalid.");
    return BM_OK;
}

bm_err bm__emu_cw_list_metrics(struct emu_req *rq, struct emu_w *w)
{
    struct bm_emu *emu = rq->emu;
    const char *ns = bm__emu_in_str(rq->in, "Namespace");
    const char *name = bm__emu_in_str(rq->in, "MetricName");
    const cJSON *filters = cJSON_GetObjectItemCaseSensitive(rq->in, "Dimensions");
    size_t from = 0;
    if (bm__emu_cw_next_token(rq, &from) != BM_OK)
        return BM_E_BAD_REQUEST;
    pthread_mutex_lock(&emu->mu);
    bm__emu_w_list(w, "Metrics", "Metrics", "member");
    size_t matched = 0, i;
    for (i = 0; i < emu->n_series; i++) {
        const struct emu_series *s = emu->series[i];
        if ((ns && strcmp(s->ns, ns) != 0) || (name && strcmp(s->name, name) != 0) ||
            !dims_match(s, filters))
            continue;
        if (matched++ < from)
            continue;
        if (matched > from + 500)
            break;
        bm__emu_w_obj(w, NULL);
        bm__emu_w_str(w, "Namespace", s->ns);
        bm__emu_w_str(w, "MetricName", s->name);
        bm__emu_w_list(w, "Dimensions", "Dimensions", "member");
        for (size_t k = 0; k < s->n_dims; k++) {
            bm__emu_w_obj(w, NULL);
            bm__emu_w_str(w, "Name", s->dims[k].k);
            bm__emu_w_str(w, "Value", s->dims[k].v);
            bm__emu_w_end(w);
        }
        bm__emu_w_end(w);
        bm__emu_w_end(w);
    }
    bool more = i < emu->n_series;
    pthread_mutex_unlock(&emu->mu);
    bm__emu_w_end(w);
    if (more) {
        char next[32];
        snprintf(next, sizeof next, "%zu", from + 500);
        bm__emu_w_str(w, "NextToken", next);
    }
    return BM_OK;
}
