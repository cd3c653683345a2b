/* cloudwatch.c: the CloudWatch metrics API (Query 2010-08-01 and JSON 1.0
 * GraniteServiceVersion20100801.*): dispatch, metric series, and PutMetricData with the real
 * limits and validation. Each datum is stored as (sum, count, min, max), enough for every
 * statistic but percentiles; the reads are in cw_read.c. */
#include "emulator/emu_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CW_MAX_DATUMS 1000
#define CW_MAX_VALUES 150
#define CW_MAX_VALUE 1.7453e108 /* roughly 2^360, the documented magnitude limit */

static const char *const ops[] = {"PutMetricData",  "GetMetricStatistics", "GetMetricData",
                                  "ListMetrics",    "PutDashboard",        "GetDashboard",
                                  "ListDashboards", "DeleteDashboards",    "PutMetricAlarm",
                                  "DescribeAlarms", "DeleteAlarms"};

const char *bm__emu_cw_op(const char *action)
{
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        if (strcmp(ops[i], action) == 0)
            return ops[i];
    }
    return NULL;
}

static const char *const units[] = {
    "None",
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
};
#define N_UNITS ((int)(sizeof units / sizeof units[0]))

int bm__emu_cw_n_units(void)
{
    return N_UNITS;
}

int bm__emu_cw_unit(const char *name)
{
    for (int i = 0; i < bm__emu_cw_n_units(); i++) {
        if (strcmp(units[i], name) == 0)
            return i;
    }
    return -1;
}

const char *bm__emu_cw_unit_name(int unit)
{
    return unit >= 0 && unit < bm__emu_cw_n_units() ? units[unit] : "None";
}

void bm__emu_series_free(struct emu_series *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n_dims; i++) {
        bm_free(s->dims[i].k);
        bm_free(s->dims[i].v);
    }
    bm_free(s->dims);
    bm_free(s->pts);
    bm_free(s->ns);
    bm_free(s->name);
    bm_free(s);
}

/* ---- series --------------------------------------------------------------------------- */
static int kv_cmp(const void *a, const void *b)
{
    return strcmp(((const struct emu_kv *)a)->k, ((const struct emu_kv *)b)->k);
}

/* The dimensions of a Dimensions list, sorted by name (borrowed strings). */
size_t bm__emu_cw_read_dims(const cJSON *list, struct emu_kv *out)
{
    size_t n = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, list)
    {
        if (n == EMU_CW_MAX_DIMS)
            break;
        out[n].k = (char *)bm__emu_in_str(d, "Name");
        out[n].v = (char *)bm__emu_in_str(d, "Value");
        n++;
    }
    qsort(out, n, sizeof *out, kv_cmp);
    return n;
}

static bool same_dims(const struct emu_series *s, const struct emu_kv *d, size_t n)
{
    if (s->n_dims != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s->dims[i].k, d[i].k) != 0 || strcmp(s->dims[i].v, d[i].v) != 0)
            return false;
    }
    return true;
}

struct emu_series *bm__emu_cw_series_find(struct bm_emu *emu, const char *ns, const char *name,
                                          const struct emu_kv *d, size_t n)
{
    for (size_t i = 0; i < emu->n_series; i++) {
        struct emu_series *s = emu->series[i];
        if (strcmp(s->ns, ns) == 0 && strcmp(s->name, name) == 0 && same_dims(s, d, n))
            return s;
    }
    return NULL;
}

static bm_err series_add(struct bm_emu *emu, const char *ns, const char *name,
                         const struct emu_kv *d, size_t n, struct emu_series **out)
{
    struct emu_series *s = bm_calloc(1, sizeof *s);
    bm_err rc = s ? BM_OK : BM_E_NOMEM;
    if (rc == BM_OK && ((s->ns = bm_strdup(ns)) == NULL || (s->name = bm_strdup(name)) == NULL ||
                        (n > 0 && (s->dims = bm_calloc(n, sizeof *s->dims)) == NULL)))
        rc = BM_E_NOMEM;
    for (size_t i = 0; i < n && rc == BM_OK; i++) {
        s->dims[i].k = bm_strdup(d[i].k);
        s->dims[i].v = bm_strdup(d[i].v);
        s->n_dims++;
        if (s->dims[i].k == NULL || s->dims[i].v == NULL)
            rc = BM_E_NOMEM;
    }
    if (rc == BM_OK)
        rc = bm__emu_grow(&emu->series, &emu->cap_series, emu->n_series + 1, sizeof *emu->series);
    if (rc != BM_OK) {
        bm__emu_series_free(s);
        return rc;
    }
    emu->series[emu->n_series++] = s;
    *out = s;
    return BM_OK;
}

/* ---- PutMetricData -------------------------------------------------------------------- */
struct datum {
    const char *name;
    struct emu_kv dims[EMU_CW_MAX_DIMS];
    size_t n_dims;
    struct emu_point pt;
    bool empty; /* all counts zero: nothing to store */
};

static bm_err bad_value(struct emu_req *rq, const char *param, const cJSON *v)
{
    char text[64] = "";
    if (cJSON_IsString(v))
        snprintf(text, sizeof text, "%s", v->valuestring);
    else if (cJSON_IsNumber(v))
        snprintf(text, sizeof text, "%g", v->valuedouble);
    return bm__emu_fail(rq, "InvalidParameterValue", "The value %s for parameter %s is invalid.",
                        text, param);
}

/* A finite number within CloudWatch's magnitude limit. */
static bool metric_value(const cJSON *v, double *out)
{
    bool present;
    cJSON *holder = cJSON_CreateObject();
    if (holder == NULL)
        return false;
    cJSON_AddItemReferenceToObject(holder, "v", (cJSON *)v);
    bool ok = bm__emu_in_num(holder, "v", out, &present) && present && *out <= CW_MAX_VALUE &&
              *out >= -CW_MAX_VALUE;
    cJSON_Delete(holder);
    return ok;
}

bm_err bm__emu_cw_check_dims(struct emu_req *rq, const cJSON *dims, const char *p)
{
    int n = cJSON_GetArraySize(dims);
    if (n > EMU_CW_MAX_DIMS)
        return bm__emu_fail(rq, "InvalidParameterValue",
                            "The collection %s.Dimensions must not have a size greater than %d.", p,
                            EMU_CW_MAX_DIMS);
    for (int j = 0; j < n; j++) {
        const cJSON *d = cJSON_GetArrayItem(dims, j);
        const char *dn = bm__emu_in_str(d, "Name"), *dv = bm__emu_in_str(d, "Value");
        if (dn == NULL || dv == NULL)
            return bm__emu_fail(rq, "MissingParameter",
                                "The parameter %s.Dimensions.member.%d.%s is required.", p, j + 1,
                                dn == NULL ? "Name" : "Value");
        if (*dn == '\0' || strlen(dn) > 255 || *dv == '\0' || strlen(dv) > 1024)
            return bm__emu_fail(rq, "InvalidParameterValue",
                                "The parameter %s.Dimensions.member.%d must have a Name of 1 to "
                                "255 and a Value of 1 to 1024 characters.",
                                p, j + 1);
        for (int k = 0; k < j; k++) {
            if (strcmp(dn, bm__emu_in_str(cJSON_GetArrayItem(dims, k), "Name")) == 0)
                return bm__emu_fail(rq, "InvalidParameterValue",
                                    "The dimension %s appears more than once in %s.Dimensions.", dn,
                                    p);
        }
    }
    return BM_OK;
}

/* Values/Counts: every value weighted by its count (default 1). */
static bm_err values_point(struct emu_req *rq, const cJSON *values, const cJSON *counts,
                           const char *p, struct datum *d)
{
    int n = cJSON_GetArraySize(values);
    if (n > CW_MAX_VALUES)
        return bm__emu_fail(rq, "InvalidParameterValue",
                            "The collection %s.Values must not have a size greater than %d.", p,
                            CW_MAX_VALUES);
    if (counts != NULL && cJSON_GetArraySize(counts) != n)
        return bm__emu_fail(rq, "InvalidParameterValue",
                            "The parameters %s.Values and %s.Counts must be of the same size.", p,
                            p);
    d->empty = true;
    for (int j = 0; j < n; j++) {
        double v, c = 1;
        char param[128];
        snprintf(param, sizeof param, "%s.Values.member.%d", p, j + 1);
        if (!metric_value(cJSON_GetArrayItem(values, j), &v))
            return bad_value(rq, param, cJSON_GetArrayItem(values, j));
        if (counts != NULL && (!metric_value(cJSON_GetArrayItem(counts, j), &c) || c < 0)) {
            snprintf(param, sizeof param, "%s.Counts.member.%d", p, j + 1);
            return bad_value(rq, param, cJSON_GetArrayItem(counts, j));
        }
        if (c == 0)
            continue;
        if (d->empty) {
            d->pt.min = d->pt.max = v;
        } else {
            d->pt.min = v < d->pt.min ? v : d->pt.min;
            d->pt.max = v > d->pt.max ? v : d->pt.max;
        }
        d->pt.sum += v * c;
        d->pt.count += c;
        d->empty = false;
    }
    return BM_OK;
}

static bm_err statistic_point(struct emu_req *rq, const cJSON *sv, const char *p, struct datum *d)
{
    static const char *const fields[] = {"SampleCount", "Sum", "Minimum", "Maximum"};
    double f[4];
    for (int k = 0; k < 4; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(sv, fields[k]);
        char param[128];
        snprintf(param, sizeof param, "%s.StatisticValues.%s", p, fields[k]);
        if (v == NULL)
            return bm__emu_fail(rq, "MissingParameter", "The parameter %s is required.", param);
        if (!metric_value(v, &f[k]))
            return bad_value(rq, param, v);
    }
    if (f[0] <= 0 || f[2] > f[3])
        return bm__emu_fail(rq, "InvalidParameterValue",
                            "The parameter %s.StatisticValues must have SampleCount > 0 and "
                            "Minimum <= Maximum.",
                            p);
    d->pt.count = f[0];
    d->pt.sum = f[1];
    d->pt.min = f[2];
    d->pt.max = f[3];
    return BM_OK;
}

static bm_err check_datum(struct emu_req *rq, const cJSON *m, int i, struct datum *d)
{
    char p[64];
    snprintf(p, sizeof p, "MetricData.member.%d", i);
    d->name = bm__emu_in_str(m, "MetricName");
    if (d->name == NULL)
        return bm__emu_fail(rq, "MissingParameter", "The parameter %s.MetricName is required.", p);
    if (*d->name == '\0' || strlen(d->name) > 255)
        return bm__emu_fail(rq, "InvalidParameterValue",
                            "The parameter %s.MetricName must be 1 to 255 characters.", p);
    const cJSON *dims = cJSON_GetObjectItemCaseSensitive(m, "Dimensions");
    bm_err rc = bm__emu_cw_check_dims(rq, dims, p);
    if (rc != BM_OK)
        return rc;
    d->n_dims = bm__emu_cw_read_dims(dims, d->dims);

    const cJSON *value = cJSON_GetObjectItemCaseSensitive(m, "Value");
    const cJSON *values = cJSON_GetObjectItemCaseSensitive(m, "Values");
    const cJSON *counts = cJSON_GetObjectItemCaseSensitive(m, "Counts");
    const cJSON *sv = cJSON_GetObjectItemCaseSensitive(m, "StatisticValues");
    const char *given[3] = {value ? "Value" : NULL, values ? "Values" : NULL,
                            sv ? "StatisticValues" : NULL};
    const char *first = NULL;
    for (int k = 0; k < 3; k++) {
        if (given[k] == NULL)
            continue;
        if (first != NULL)
            return bm__emu_fail(rq, "InvalidParameterCombination",
                                "The parameters %s.%s and %s.%s are mutually exclusive and you "
                                "have specified both.",
                                p, first, p, given[k]);
        first = given[k];
    }
    if (counts != NULL && values == NULL)
        return bm__emu_fail(rq, "InvalidParameterCombination",
                            "The parameter %s.Counts requires %s.Values.", p, p);
    if (first == NULL)
        return bm__emu_fail(rq, "InvalidParameterCombination",
                            "At least one of the parameters %s.Value, %s.Values or "
                            "%s.StatisticValues must be specified.",
                            p, p, p);
    if (value != NULL) {
        char param[96];
        snprintf(param, sizeof param, "%s.Value", p);
        if (!metric_value(value, &d->pt.sum))
            return bad_value(rq, param, value);
        d->pt.min = d->pt.max = d->pt.sum;
        d->pt.count = 1;
    } else if (values != NULL) {
        rc = values_point(rq, values, counts, p, d);
    } else {
        rc = statistic_point(rq, sv, p, d);
    }
    if (rc != BM_OK)
        return rc;

    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(m, "Timestamp");
    int64_t ms = rq->now_ms;
    if (ts != NULL && !bm__emu_in_time(ts, &ms))
        return bm__emu_fail(rq, "InvalidParameterValue",
                            "The parameter %s.Timestamp must be a valid timestamp.", p);
    if (ms < rq->now_ms - 14LL * 86400 * 1000)
        return bm__emu_fail(rq, "InvalidParameterValue",
                            "The parameter %s.Timestamp must specify a time no more than two "
                            "weeks in the past.",
                            p);
    if (ms > rq->now_ms + 2LL * 3600 * 1000)
        return bm__emu_fail(rq, "InvalidParameterValue",
                            "The parameter %s.Timestamp must specify a time no more than two "
                            "hours in the future.",
                            p);
    d->pt.ts = ms / 1000;
    const char *unit = bm__emu_in_str(m, "Unit");
    d->pt.unit = unit ? bm__emu_cw_unit(unit) : 0;
    if (d->pt.unit < 0)
        return bm__emu_fail(rq, "InvalidParameterValue",
                            "The value %s for parameter %s.Unit is invalid.", unit, p);
    long res = 60;
    char param[96];
    snprintf(param, sizeof param, "%s.StorageResolution", p);
    rc = bm__emu_in_long(rq, m, "StorageResolution", 1, 60, &res);
    if (rc == BM_OK && res != 1 && res != 60)
        rc = bm__emu_fail(rq, "InvalidParameterValue", "The value %ld for parameter %s is invalid.",
                          res, param);
    return rc;
}

static bm_err put_metric_data(struct emu_req *rq, struct emu_w *w)
{
    (void)w;
    struct bm_emu *emu = rq->emu;
    const char *ns = bm__emu_in_str(rq->in, "Namespace");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(rq->in, "MetricData");
    if (ns == NULL)
        return bm__emu_fail(rq, "MissingParameter", "The parameter Namespace is required.");
    if (*ns == '\0' || strlen(ns) > 255 || strncmp(ns, "AWS/", 4) == 0)
        return bm__emu_fail(rq, "InvalidParameterValue",
                            "The value %s for parameter Namespace is invalid.", ns);
    int n = cJSON_GetArraySize(data);
    if (n == 0)
        return bm__emu_fail(rq, "MissingParameter", "The parameter MetricData is required.");
    if (n > CW_MAX_DATUMS)
        return bm__emu_fail(rq, "InvalidParameterValue",
                            "The collection MetricData must not have a size greater than %d.",
                            CW_MAX_DATUMS);
    struct datum *ds = bm_calloc((size_t)n, sizeof *ds);
    if (ds == NULL)
        return BM_E_NOMEM;
    /* Validate the whole request before storing any of it, as CloudWatch does. */
    bm_err rc = BM_OK;
    for (int i = 0; i < n && rc == BM_OK; i++)
        rc = check_datum(rq, cJSON_GetArrayItem(data, i), i + 1, &ds[i]);
    pthread_mutex_lock(&emu->mu);
    for (int i = 0; i < n && rc == BM_OK; i++) {
        struct emu_series *s =
            bm__emu_cw_series_find(emu, ns, ds[i].name, ds[i].dims, ds[i].n_dims);
        if (s == NULL)
            rc = series_add(emu, ns, ds[i].name, ds[i].dims, ds[i].n_dims, &s);
        if (rc == BM_OK && !ds[i].empty &&
            (rc = bm__emu_grow(&s->pts, &s->cap_pts, s->n_pts + 1, sizeof *s->pts)) == BM_OK)
            s->pts[s->n_pts++] = ds[i].pt;
    }
    if (rc == BM_OK)
        bm__emu_dirty(emu);
    pthread_mutex_unlock(&emu->mu);
    bm_free(ds);
    return rc;
}

bm_err bm__emu_cw_handle(struct emu_req *rq, struct emu_resp *rs)
{
    struct emu_w w;
    bm_err rc;
    bm__emu_w_begin(&w, rq->proto, EMU_CW_NS, rq->op, &rs->body);
    w.no_result = strcmp(rq->op, "PutMetricData") == 0;
    if (bm__emu_cw_dash_op(rq->op))
        rc = bm__emu_cw_dash_handle(rq, &w);
    else if (strcmp(rq->op, "PutMetricData") == 0)
        rc = put_metric_data(rq, &w);
    else if (strcmp(rq->op, "GetMetricStatistics") == 0)
        rc = bm__emu_cw_get_metric_statistics(rq, &w);
    else if (strcmp(rq->op, "GetMetricData") == 0)
        rc = bm__emu_cw_get_metric_data(rq, &w);
    else
        rc = bm__emu_cw_list_metrics(rq, &w);
    if (rc != BM_OK)
        return rc;
    rs->content_type = rq->proto == EMU_PROTO_JSON ? "application/x-amz-json-1.0" : "text/xml";
    return bm__emu_w_finish(&w, rq->req_id);
}
