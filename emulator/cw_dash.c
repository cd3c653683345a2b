/* cw_dash.c: CloudWatch dashboards (PutDashboard, GetDashboard, ListDashboards,
 * DeleteDashboards) and metric alarms (PutMetricAlarm, DescribeAlarms, DeleteAlarms), in both
 * protocols of cloudwatch.c. Stored, validated as CloudWatch validates them (API reference of
 * 2010-08-01: names, lengths, enums, required members, the dashboard body's shape) and never
 * evaluated: an alarm stays INSUFFICIENT_DATA. The state is two cJSON objects keyed by name,
 * kept in name order (ListDashboards and DescribeAlarms answer in that order). */
#include "emulator/emu_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NAME 255
#define MAX_DESCRIPTION 1024
#define MAX_ACTIONS 5
#define MAX_ACTION_LEN 1024
#define MAX_DIM_VALUE_ALARM 1024
#define MAX_WIDGETS 500
#define LIST_PAGE 1000
#define MAX_RECORDS_DEFAULT 50

/* ---- shared ---------------------------------------------------------------------------- */

/* Inserts item under name into obj (taking it), replacing an old one and keeping names
 * sorted. */
static bm_err put_sorted(cJSON *obj, const char *name, cJSON *item)
{
    if (cJSON_GetObjectItemCaseSensitive(obj, name) != NULL)
        return cJSON_ReplaceItemInObjectCaseSensitive(obj, name, item) ? BM_OK : BM_E_NOMEM;
    if (!cJSON_AddItemToObject(obj, name, item)) {
        cJSON_Delete(item);
        return BM_E_NOMEM;
    }
    /* Appended: the entries that sort after it move behind it, in their order. */
    for (cJSON *at = obj->child, *next; at != item; at = next) {
        next = at->next;
        if (strcmp(at->string, name) > 0) {
            cJSON_DetachItemViaPointer(obj, at);
            cJSON_AddItemToArray(obj, at); /* keeps its key */
        }
    }
    return BM_OK;
}

/* A list parameter (Query "X.member.N" arrives as an array, JSON as an array). */
static const cJSON *in_list(const cJSON *in, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(in, k);
    return cJSON_IsArray(v) ? v : NULL;
}

static bool has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

/* ---- dashboards ------------------------------------------------------------------------ */

static bool dashboard_name_ok(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > MAX_NAME)
        return false;
    for (const char *p = n; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_'))
            return false;
    return true;
}

static bm_err invalid_body(struct emu_req *rq, const char *path, const char *msg)
{
    return bm__emu_fail(rq, "DashboardInvalidInputError",
                        "The dashboard body is invalid, there are 1 validation errors: "
                        "[ { \"dataPath\": \"%s\", \"message\": \"%s\" } ]",
                        path, msg);
}

/* The checks CloudWatch's dashboard body schema makes that a generated body could miss: an
 * object with a widgets array; each widget an object with a known type, coordinates and sizes
 * in range, and properties; a metric widget's metrics an array of arrays. */
static bm_err check_body(struct emu_req *rq, const char *text)
{
    static const char *const types[] = {"metric",   "text",   "log",  "alarm",
                                        "explorer", "custom", "trace"};
    cJSON *root = cJSON_Parse(text);
    bm_err rc = BM_OK;
    char path[64];
    const cJSON *widgets = cJSON_GetObjectItemCaseSensitive(root, "widgets"), *w;
    if (!cJSON_IsObject(root)) {
        rc = bm__emu_fail(rq, "DashboardInvalidInputError",
                          "The field DashboardBody must be a valid JSON object");
        goto out;
    }
    if (!cJSON_IsArray(widgets)) {
        rc = invalid_body(rq, "/widgets", "Should be array");
        goto out;
    }
    if (cJSON_GetArraySize(widgets) > MAX_WIDGETS) {
        rc = invalid_body(rq, "/widgets", "Should NOT have more than 500 items");
        goto out;
    }
    int i = 0;
    cJSON_ArrayForEach(w, widgets)
    {
        snprintf(path, sizeof path, "/widgets/%d", i++);
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(w, "type");
        const cJSON *props = cJSON_GetObjectItemCaseSensitive(w, "properties");
        bool known = false;
        for (size_t k = 0; cJSON_IsString(type) && k < sizeof types / sizeof types[0]; k++)
            known = known || strcmp(type->valuestring, types[k]) == 0;
        if (!cJSON_IsObject(w))
            rc = invalid_body(rq, path, "Should be object");
        else if (!known)
            rc = invalid_body(rq, path,
                              "Should have a type of metric, text, log, alarm, "
                              "explorer, custom or trace");
        else if (!cJSON_IsObject(props))
            rc = invalid_body(rq, path, "Should have required property 'properties'");
        static const struct {
            const char *k;
            double min, max;
        } geo[] = {{"x", 0, 23}, {"y", 0, 1e9}, {"width", 1, 24}, {"height", 1, 1000}};
        for (size_t k = 0; rc == BM_OK && k < sizeof geo / sizeof geo[0]; k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(w, geo[k].k);
            if (v != NULL &&
                (!cJSON_IsNumber(v) || v->valuedouble < geo[k].min || v->valuedouble > geo[k].max ||
                 v->valuedouble != floor(v->valuedouble)))
                rc = invalid_body(rq, path, "Should have x, y, width and height in range");
        }
        if (rc == BM_OK && strcmp(type->valuestring, "metric") == 0) {
            const cJSON *metrics = cJSON_GetObjectItemCaseSensitive(props, "metrics"), *m;
            if (metrics != NULL && !cJSON_IsArray(metrics))
                rc = invalid_body(rq, path, "properties.metrics should be array");
            cJSON_ArrayForEach(m, metrics)
            {
                if (rc == BM_OK && !cJSON_IsArray(m))
                    rc = invalid_body(rq, path, "properties.metrics items should be array");
            }
            if (rc == BM_OK && metrics == NULL &&
                cJSON_GetObjectItemCaseSensitive(props, "annotations") == NULL)
                rc = invalid_body(rq, path, "Should have required property 'metrics'");
        }
        if (rc != BM_OK)
            break;
    }
out:
    cJSON_Delete(root);
    return rc;
}

static void dashboard_arn(char *out, size_t n, const char *name)
{
    snprintf(out, n, "arn:aws:cloudwatch::%s:dashboard/%s", EMU_ACCOUNT, name);
}

static bm_err put_dashboard(struct emu_req *rq, struct emu_w *w)
{
    struct bm_emu *emu = rq->emu;
    const char *name = bm__emu_in_str(rq->in, "DashboardName");
    const char *body = bm__emu_in_str(rq->in, "DashboardBody");
    if (name == NULL)
        return bm__emu_fail(rq, "MissingParameter", "The parameter DashboardName is required.");
    if (body == NULL)
        return bm__emu_fail(rq, "MissingParameter", "The parameter DashboardBody is required.");
    if (!dashboard_name_ok(name))
        return bm__emu_fail(rq, "DashboardInvalidInputError",
                            "The value %s for parameter DashboardName is invalid: 1 to 255 "
                            "alphanumerics, dash (-) and underscore (_)",
                            name);
    bm_err rc = check_body(rq, body);
    if (rc != BM_OK)
        return rc;
    cJSON *d = cJSON_CreateObject();
    if (d == NULL || !cJSON_AddStringToObject(d, "body", body) ||
        !cJSON_AddNumberToObject(d, "modified_ms", (double)rq->now_ms)) {
        cJSON_Delete(d);
        return BM_E_NOMEM;
    }
    pthread_mutex_lock(&emu->mu);
    rc = put_sorted(emu->cw_dashboards, name, d);
    if (rc == BM_OK)
        bm__emu_dirty(emu);
    pthread_mutex_unlock(&emu->mu);
    if (rc != BM_OK)
        return rc;
    bm__emu_w_list(w, "DashboardValidationMessages", "DashboardValidationMessages", "member");
    bm__emu_w_end(w);
    return BM_OK;
}

static bm_err get_dashboard(struct emu_req *rq, struct emu_w *w)
{
    struct bm_emu *emu = rq->emu;
    const char *name = bm__emu_in_str(rq->in, "DashboardName");
    if (name == NULL)
        return bm__emu_fail(rq, "MissingParameter", "The parameter DashboardName is required.");
    char arn[400];
    dashboard_arn(arn, sizeof arn, name);
    pthread_mutex_lock(&emu->mu);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(emu->cw_dashboards, name);
    if (d != NULL) {
        bm__emu_w_str(w, "DashboardArn", arn);
        bm__emu_w_str(w, "DashboardBody", bm__emu_in_str(d, "body"));
        bm__emu_w_str(w, "DashboardName", name);
    }
    pthread_mutex_unlock(&emu->mu);
    if (d == NULL)
        return bm__emu_fail(rq, "DashboardNotFoundError", "Dashboard %s does not exist", name);
    return BM_OK;
}

static bm_err list_dashboards(struct emu_req *rq, struct emu_w *w)
{
    struct bm_emu *emu = rq->emu;
    const char *prefix = bm__emu_in_str(rq->in, "DashboardNamePrefix");
    size_t from = 0, matched = 0;
    if (bm__emu_cw_next_token(rq, &from) != BM_OK)
        return BM_E_BAD_REQUEST;
    bool more = false;
    char arn[400];
    pthread_mutex_lock(&emu->mu);
    bm__emu_w_list(w, "DashboardEntries", "DashboardEntries", "member");
    const cJSON *d;
    cJSON_ArrayForEach(d, emu->cw_dashboards)
    {
        if (prefix != NULL && !has_prefix(d->string, prefix))
            continue;
        if (matched++ < from)
            continue;
        if (matched > from + LIST_PAGE) {
            more = true;
            break;
        }
        dashboard_arn(arn, sizeof arn, d->string);
        bm__emu_w_obj(w, NULL);
        bm__emu_w_str(w, "DashboardName", d->string);
        bm__emu_w_str(w, "DashboardArn", arn);
        bm__emu_w_time(w, "LastModified",
                       (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(d, "modified_ms")));
        bm__emu_w_int(w, "Size", (long long)strlen(bm__emu_in_str(d, "body")));
        bm__emu_w_end(w);
    }
    pthread_mutex_unlock(&emu->mu);
    bm__emu_w_end(w);
    if (more) {
        char next[32];
        snprintf(next, sizeof next, "%zu", from + LIST_PAGE);
        bm__emu_w_str(w, "NextToken", next);
    }
    return BM_OK;
}

/* Deletes every name of list from obj, or none when one is missing (err_code names it). */
static bm_err delete_named(struct emu_req *rq, cJSON *obj, const cJSON *list, const char *param,
                           const char *err_code, const char *what)
{
    const cJSON *n;
    if (cJSON_GetArraySize(list) == 0)
        return bm__emu_fail(rq, "MissingParameter", "The parameter %s is required.", param);
    pthread_mutex_lock(&rq->emu->mu);
    const char *missing = NULL;
    cJSON_ArrayForEach(n, list)
    {
        if (missing == NULL &&
            (!cJSON_IsString(n) || cJSON_GetObjectItemCaseSensitive(obj, n->valuestring) == NULL))
            missing = cJSON_IsString(n) ? n->valuestring : "";
    }
    if (missing == NULL) {
        cJSON_ArrayForEach(n, list)
        {
            cJSON_DeleteItemFromObjectCaseSensitive(obj, n->valuestring);
        }
        bm__emu_dirty(rq->emu);
    }
    pthread_mutex_unlock(&rq->emu->mu);
    if (missing != NULL)
        return bm__emu_fail(rq, err_code, "%s %s does not exist", what, missing);
    return BM_OK;
}

static bm_err delete_dashboards(struct emu_req *rq, struct emu_w *w)
{
    (void)w;
    return delete_named(rq, rq->emu->cw_dashboards, in_list(rq->in, "DashboardNames"),
                        "DashboardNames", "DashboardNotFoundError", "Dashboard");
}

/* ---- alarms ------------------------------------------------------------------------------ */

static bool in_set(const char *s, const char *const *set, size_t n)
{
    for (size_t i = 0; s != NULL && i < n; i++)
        if (strcmp(s, set[i]) == 0)
            return true;
    return false;
}
#define IN_SET(s, set) in_set((s), (set), sizeof(set) / sizeof((set)[0]))

static bm_err bad(struct emu_req *rq, const char *param, const char *value)
{
    return bm__emu_fail(rq, "InvalidParameterValue", "The value %s for parameter %s is invalid.",
                        value ? value : "", param);
}

/* Copies a string parameter of 1..max characters (0..max when may_be_empty) into a. */
static bm_err copy_str(struct emu_req *rq, cJSON *a, const char *k, size_t max, bool required)
{
    const char *v = bm__emu_in_str(rq->in, k);
    if (v == NULL)
        return required ? bm__emu_fail(rq, "MissingParameter", "The parameter %s is required.", k)
                        : BM_OK;
    if ((*v == '\0' && required) || strlen(v) > max)
        return bad(rq, k, v);
    return cJSON_AddStringToObject(a, k, v) ? BM_OK : BM_E_NOMEM;
}

static bm_err copy_actions(struct emu_req *rq, cJSON *a, const char *k)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(rq->in, k), *v;
    if (list == NULL)
        return BM_OK;
    if (!cJSON_IsArray(list))
        return bad(rq, k, "");
    if (cJSON_GetArraySize(list) > MAX_ACTIONS)
        return bm__emu_fail(rq, "InvalidParameterValue",
                            "The collection %s must not have a size greater than %d.", k,
                            MAX_ACTIONS);
    cJSON *out = cJSON_AddArrayToObject(a, k);
    if (out == NULL)
        return BM_E_NOMEM;
    cJSON_ArrayForEach(v, list)
    {
        if (!cJSON_IsString(v) || strlen(v->valuestring) > MAX_ACTION_LEN ||
            !has_prefix(v->valuestring, "arn:"))
            return bm__emu_fail(rq, "ValidationError", "Invalid arn syntax: %s",
                                cJSON_IsString(v) ? v->valuestring : "");
        cJSON *s = cJSON_CreateString(v->valuestring);
        if (s == NULL || !cJSON_AddItemToArray(out, s))
            return BM_E_NOMEM;
    }
    return BM_OK;
}

/* The alarm rq describes, validated, as a stored object with typed members. */
static bm_err build_alarm(struct emu_req *rq, cJSON *a)
{
    static const char *const cmps[] = {"GreaterThanOrEqualToThreshold",
                                       "GreaterThanThreshold",
                                       "LessThanThreshold",
                                       "LessThanOrEqualToThreshold",
                                       "LessThanLowerOrGreaterThanUpperThreshold",
                                       "LessThanLowerThreshold",
                                       "GreaterThanUpperThreshold"};
    static const char *const stats[] = {"SampleCount", "Average", "Sum", "Minimum", "Maximum"};
    static const char *const missing[] = {"breaching", "notBreaching", "ignore", "missing"};
    const cJSON *in = rq->in;
    bm_err rc;
    if ((rc = copy_str(rq, a, "AlarmName", MAX_NAME, true)) != BM_OK ||
        (rc = copy_str(rq, a, "AlarmDescription", MAX_DESCRIPTION, false)) != BM_OK ||
        (rc = copy_str(rq, a, "ComparisonOperator", MAX_NAME, true)) != BM_OK)
        return rc;
    const char *cmp = bm__emu_in_str(in, "ComparisonOperator");
    if (!IN_SET(cmp, cmps))
        return bad(rq, "ComparisonOperator", cmp);
    long eval = 0, dta = 0, period = 0;
    if (cJSON_GetObjectItemCaseSensitive(in, "EvaluationPeriods") == NULL)
        return bm__emu_fail(rq, "MissingParameter", "The parameter EvaluationPeriods is required.");
    if ((rc = bm__emu_in_long(rq, in, "EvaluationPeriods", 1, 100000, &eval)) != BM_OK ||
        (rc = bm__emu_in_long(rq, in, "DatapointsToAlarm", 1, 100000, &dta)) != BM_OK)
        return rc;
    if (dta > eval)
        return bm__emu_fail(rq, "ValidationError",
                            "DatapointsToAlarm must be less than or equal to EvaluationPeriods");
    cJSON_AddNumberToObject(a, "EvaluationPeriods", (double)eval);
    if (dta > 0)
        cJSON_AddNumberToObject(a, "DatapointsToAlarm", (double)dta);
    if (cJSON_GetObjectItemCaseSensitive(in, "Metrics") != NULL)
        return bm__emu_fail(rq, "InvalidParameterValue",
                            "Metrics (metric math alarms) are not emulated; give MetricName");
    /* A single-metric alarm: MetricName, Namespace, Period and one of Statistic or
     * ExtendedStatistic. */
    if ((rc = copy_str(rq, a, "MetricName", MAX_NAME, true)) != BM_OK ||
        (rc = copy_str(rq, a, "Namespace", MAX_NAME, true)) != BM_OK)
        return rc;
    const char *stat = bm__emu_in_str(in, "Statistic");
    const char *ext = bm__emu_in_str(in, "ExtendedStatistic");
    if ((stat == NULL) == (ext == NULL))
        return bm__emu_fail(rq, "InvalidParameterCombination",
                            "Exactly one of Statistic or ExtendedStatistic must be specified.");
    if (stat != NULL && !IN_SET(stat, stats))
        return bad(rq, "Statistic", stat);
    if ((rc = copy_str(rq, a, stat ? "Statistic" : "ExtendedStatistic", MAX_NAME, true)) != BM_OK)
        return rc;
    if (cJSON_GetObjectItemCaseSensitive(in, "Period") == NULL)
        return bm__emu_fail(rq, "MissingParameter", "The parameter Period is required.");
    if ((rc = bm__emu_in_long(rq, in, "Period", 1, 604800, &period)) != BM_OK)
        return rc;
    if (!(period == 10 || period == 20 || period == 30 || period % 60 == 0)) {
        char v[32];
        snprintf(v, sizeof v, "%ld", period);
        return bad(rq, "Period", v);
    }
    /* "An alarm's total current evaluation period can be no longer than seven days." */
    if (period * eval > 7 * 86400)
        return bm__emu_fail(rq, "ValidationError",
                            "Metrics cannot be checked across more than a week "
                            "(EvaluationPeriods * Period must be <= 604800)");
    cJSON_AddNumberToObject(a, "Period", (double)period);
    const cJSON *dims = cJSON_GetObjectItemCaseSensitive(in, "Dimensions"), *d;
    if (dims != NULL) {
        if ((rc = bm__emu_cw_check_dims(rq, dims, "Dimensions")) != BM_OK)
            return rc;
        cJSON *out = cJSON_AddArrayToObject(a, "Dimensions");
        if (out == NULL)
            return BM_E_NOMEM;
        cJSON_ArrayForEach(d, dims)
        {
            const char *v = bm__emu_in_str(d, "Value");
            if (v == NULL || strlen(v) > MAX_DIM_VALUE_ALARM)
                return bad(rq, "Dimensions.Value", v);
            cJSON *o = cJSON_CreateObject();
            if (o == NULL || !cJSON_AddItemToArray(out, o) ||
                !cJSON_AddStringToObject(o, "Name", bm__emu_in_str(d, "Name")) ||
                !cJSON_AddStringToObject(o, "Value", v))
                return BM_E_NOMEM;
        }
    }
    double threshold = 0;
    bool present = false;
    if (!bm__emu_in_num(in, "Threshold", &threshold, &present))
        return bad(rq, "Threshold", bm__emu_in_str(in, "Threshold"));
    if (!present && bm__emu_in_str(in, "ThresholdMetricId") == NULL)
        return bm__emu_fail(rq, "ValidationError", "Threshold must be specified");
    if (present)
        cJSON_AddNumberToObject(a, "Threshold", threshold);
    if ((rc = copy_str(rq, a, "ThresholdMetricId", MAX_NAME, false)) != BM_OK ||
        (rc = copy_str(rq, a, "Unit", MAX_NAME, false)) != BM_OK ||
        (rc = copy_str(rq, a, "TreatMissingData", MAX_NAME, false)) != BM_OK ||
        (rc = copy_str(rq, a, "EvaluateLowSampleCountPercentile", MAX_NAME, false)) != BM_OK)
        return rc;
    const char *unit = bm__emu_in_str(in, "Unit");
    if (unit != NULL && bm__emu_cw_unit(unit) < 0)
        return bad(rq, "Unit", unit);
    const char *tmd = bm__emu_in_str(in, "TreatMissingData");
    if (tmd != NULL && !IN_SET(tmd, missing))
        return bad(rq, "TreatMissingData", tmd);
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(in, "ActionsEnabled");
    bool enabled = en == NULL || cJSON_IsTrue(en) ||
                   (cJSON_IsString(en) && strcmp(en->valuestring, "true") == 0);
    if (en != NULL && !enabled && !cJSON_IsFalse(en) &&
        !(cJSON_IsString(en) && strcmp(en->valuestring, "false") == 0))
        return bad(rq, "ActionsEnabled", cJSON_IsString(en) ? en->valuestring : "");
    cJSON_AddBoolToObject(a, "ActionsEnabled", enabled);
    if ((rc = copy_actions(rq, a, "AlarmActions")) != BM_OK ||
        (rc = copy_actions(rq, a, "OKActions")) != BM_OK ||
        (rc = copy_actions(rq, a, "InsufficientDataActions")) != BM_OK)
        return rc;
    return BM_OK;
}

static bm_err put_metric_alarm(struct emu_req *rq, struct emu_w *w)
{
    (void)w;
    cJSON *a = cJSON_CreateObject();
    if (a == NULL)
        return BM_E_NOMEM;
    bm_err rc = build_alarm(rq, a);
    if (rc == BM_OK && !cJSON_AddNumberToObject(a, "updated_ms", (double)rq->now_ms))
        rc = BM_E_NOMEM;
    if (rc != BM_OK) {
        cJSON_Delete(a);
        return rc;
    }
    char *name = bm_strdup(bm__emu_in_str(a, "AlarmName"));
    if (name == NULL) {
        cJSON_Delete(a);
        return BM_E_NOMEM;
    }
    pthread_mutex_lock(&rq->emu->mu);
    rc = put_sorted(rq->emu->cw_alarms, name, a);
    if (rc == BM_OK)
        bm__emu_dirty(rq->emu);
    pthread_mutex_unlock(&rq->emu->mu);
    bm_free(name);
    return rc;
}

static void write_strings(struct emu_w *w, const cJSON *a, const char *k)
{
    const cJSON *v;
    bm__emu_w_list(w, k, k, "member");
    cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(a, k))
    {
        bm__emu_w_str(w, NULL, v->valuestring);
    }
    bm__emu_w_end(w);
}

static void write_alarm(struct emu_w *w, const struct bm_emu *emu, const cJSON *a)
{
    static const char *const strs[] = {
        "AlarmDescription",   "MetricName",        "Namespace",
        "Statistic",          "ExtendedStatistic", "Unit",
        "ComparisonOperator", "TreatMissingData",  "EvaluateLowSampleCountPercentile",
        "ThresholdMetricId"};
    static const char *const nums[] = {"Period", "EvaluationPeriods", "DatapointsToAlarm"};
    char arn[400];
    int64_t ms = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(a, "updated_ms"));
    snprintf(arn, sizeof arn, "arn:aws:cloudwatch:%s:%s:alarm:%s", emu->region, EMU_ACCOUNT,
             a->string);
    bm__emu_w_obj(w, NULL);
    bm__emu_w_str(w, "AlarmName", a->string);
    bm__emu_w_str(w, "AlarmArn", arn);
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        const char *v = bm__emu_in_str(a, strs[i]);
        if (v != NULL)
            bm__emu_w_str(w, strs[i], v);
    }
    bm__emu_w_time(w, "AlarmConfigurationUpdatedTimestamp", ms);
    bm__emu_w_bool(w, "ActionsEnabled", cJSON_IsTrue(cJSON_GetObjectItem(a, "ActionsEnabled")));
    write_strings(w, a, "OKActions");
    write_strings(w, a, "AlarmActions");
    write_strings(w, a, "InsufficientDataActions");
    bm__emu_w_str(w, "StateValue", "INSUFFICIENT_DATA");
    bm__emu_w_str(w, "StateReason", "Unchecked: Initial alarm creation");
    bm__emu_w_time(w, "StateUpdatedTimestamp", ms);
    bm__emu_w_time(w, "StateTransitionedTimestamp", ms);
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(a, nums[i]);
        if (v != NULL)
            bm__emu_w_int(w, nums[i], (long long)v->valuedouble);
    }
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(a, "Threshold"), *d;
    if (t != NULL)
        bm__emu_w_num(w, "Threshold", t->valuedouble);
    bm__emu_w_list(w, "Dimensions", "Dimensions", "member");
    cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(a, "Dimensions"))
    {
        bm__emu_w_obj(w, NULL);
        bm__emu_w_str(w, "Name", bm__emu_in_str(d, "Name"));
        bm__emu_w_str(w, "Value", bm__emu_in_str(d, "Value"));
        bm__emu_w_end(w);
    }
    bm__emu_w_end(w);
    bm__emu_w_end(w);
}

static bm_err describe_alarms(struct emu_req *rq, struct emu_w *w)
{
    static const char *const states[] = {"OK", "ALARM", "INSUFFICIENT_DATA"};
    struct bm_emu *emu = rq->emu;
    const cJSON *names = in_list(rq->in, "AlarmNames");
    const char *prefix = bm__emu_in_str(rq->in, "AlarmNamePrefix");
    const char *state = bm__emu_in_str(rq->in, "StateValue");
    long max = MAX_RECORDS_DEFAULT;
    bm_err rc = bm__emu_in_long(rq, rq->in, "MaxRecords", 1, 100, &max);
    if (rc != BM_OK)
        return rc;
    if (names != NULL && prefix != NULL)
        return bm__emu_fail(rq, "InvalidParameterCombination",
                            "AlarmNames and AlarmNamePrefix cannot be given together.");
    if (cJSON_GetArraySize(names) > 100)
        return bm__emu_fail(rq, "InvalidParameterValue",
                            "The collection AlarmNames must not have a size greater than 100.");
    if (state != NULL && !IN_SET(state, states))
        return bad(rq, "StateValue", state);
    size_t from = 0, matched = 0;
    if (bm__emu_cw_next_token(rq, &from) != BM_OK)
        return BM_E_BAD_REQUEST;
    bool more = false;
    pthread_mutex_lock(&emu->mu);
    bm__emu_w_list(w, "CompositeAlarms", "CompositeAlarms", "member");
    bm__emu_w_end(w);
    bm__emu_w_list(w, "MetricAlarms", "MetricAlarms", "member");
    const cJSON *a;
    cJSON_ArrayForEach(a, emu->cw_alarms)
    {
        bool want = names == NULL;
        const cJSON *n;
        cJSON_ArrayForEach(n, names)
        {
            want = want || (cJSON_IsString(n) && strcmp(n->valuestring, a->string) == 0);
        }
        if (!want || (prefix != NULL && !has_prefix(a->string, prefix)) ||
            (state != NULL && strcmp(state, "INSUFFICIENT_DATA") != 0))
            continue;
        if (matched++ < from)
            continue;
        if (matched > from + (size_t)max) {
            more = true;
            break;
        }
        write_alarm(w, emu, a);
    }
    pthread_mutex_unlock(&emu->mu);
    bm__emu_w_end(w);
    if (more) {
        char next[32];
        snprintf(next, sizeof next, "%zu", from + (size_t)max);
        bm__emu_w_str(w, "NextToken", next);
    }
    return BM_OK;
}

static bm_err delete_alarms(struct emu_req *rq, struct emu_w *w)
{
    (void)w;
    const cJSON *list = in_list(rq->in, "AlarmNames");
    if (cJSON_GetArraySize(list) > 100)
        return bm__emu_fail(rq, "InvalidParameterValue",
                            "The collection AlarmNames must not have a size greater than 100.");
    return delete_named(rq, rq->emu->cw_alarms, list, "AlarmNames", "ResourceNotFound", "Alarm");
}

/* ---- dispatch ---------------------------------------------------------------------------- */

bool bm__emu_cw_dash_op(const char *op)
{
    static const char *const ops[] = {"PutDashboard",     "GetDashboard",   "ListDashboards",
                                      "DeleteDashboards", "PutMetricAlarm", "DescribeAlarms",
                                      "DeleteAlarms"};
    return IN_SET(op, ops);
}

bm_err bm__emu_cw_dash_handle(struct emu_req *rq, struct emu_w *w)
{
    const char *op = rq->op;
    /* PutMetricAlarm and DeleteAlarms have no output; DeleteDashboards an empty one. */
    w->no_result = strcmp(op, "PutMetricAlarm") == 0 || strcmp(op, "DeleteAlarms") == 0;
    if (strcmp(op, "PutDashboard") == 0)
        return put_dashboard(rq, w);
    if (strcmp(op, "GetDashboard") == 0)
        return get_dashboard(rq, w);
    if (strcmp(op, "ListDashboards") == 0)
        return list_dashboards(rq, w);
    if (strcmp(op, "DeleteDashboards") == 0)
        return delete_dashboards(rq, w);
    if (strcmp(op, "PutMetricAlarm") == 0)
        return put_metric_alarm(rq, w);
    if (strcmp(op, "DescribeAlarms") == 0)
        return describe_alarms(rq, w);
    return delete_alarms(rq, w);
}
