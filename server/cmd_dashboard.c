/* cmd_dashboard.c: `bmas dashboard` prints a CloudWatch dashboard body for the configured
 * dimension sets and namespace (for `aws cloudwatch put-dashboard --dashboard-body`), and
 * `bmas alarms` the alarms that watch bmas, one JSON object a line, each for
 * `aws cloudwatch put-metric-alarm --cli-input-json`. Nothing is sent: they only print. */
#include "server/srv_int.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VALUES 32
#define MAX_VALUES_BYTES 1024
#define WIDGET_W 12
#define WIDGET_H 6
#define MAX_WIDGET_METRICS 500

/* The metrics a dashboard shows per dimension set: the ones the Lambda's dashboard showed. */
static const char *const widget_metrics[] = {"InputTokens", "OutputTokens", "InvocationCount"};

struct dash_args {
    const char *values[BM_DIM__COUNT]; /* --values DIM=V1,V2: comma list, NULL = default */
    long period;
    const char *name_prefix;
    const char *dlq;
    const char *topic;
};

static int usage_error(FILE *err, const char *cmd, const char *what, const char *arg)
{
    fprintf(err, "bmas %s: %s \"%s\" (see bmas --help)\n", cmd, what, arg);
    return BM_EXIT_USAGE;
}

static bool dim_by_name(const char *s, size_t len, enum bm_dim *out)
{
    for (int i = 0; i < BM_DIM__COUNT; i++) {
        const char *n = bm_dim_name((enum bm_dim)i);
        if (strlen(n) == len && memcmp(n, s, len) == 0) {
            *out = (enum bm_dim)i;
            return true;
        }
    }
    return false;
}

static int parse_args(const char *cmd, int argc, char **argv, struct dash_args *a, FILE *err)
{
    memset(a, 0, sizeof *a);
    a->period = 300;
    a->name_prefix = "bmas";
    a->dlq = "bedrock-metrics-aggregator-dlq";
    bool dash = strcmp(cmd, "dashboard") == 0;
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (dash && strcmp(s, "--values") == 0 && v != NULL) {
            const char *eq = strchr(v, '=');
            enum bm_dim d;
            if (eq == NULL || eq[1] == '\0' || !dim_by_name(v, (size_t)(eq - v), &d))
                return usage_error(err, cmd, "--values takes DIMENSION=V1,V2, not", v);
            size_t commas = 0;
            for (const char *c = eq + 1; *c; c++)
                commas += *c == ',';
            if (strlen(eq + 1) >= MAX_VALUES_BYTES || commas >= MAX_VALUES)
                return usage_error(err, cmd, "--values takes at most 32 values (1023 bytes), not",
                                   v);
            a->values[d] = eq + 1;
            i++;
        } else if (dash && strcmp(s, "--period") == 0 && v != NULL) {
            char *end = NULL;
            a->period = strtol(v, &end, 10);
            if (*end != '\0' || !(a->period == 10 || a->period == 30 ||
                                  (a->period >= 60 && a->period % 60 == 0 && a->period <= 86400)))
                return usage_error(err, cmd, "--period takes 10, 30 or a multiple of 60, not", v);
            i++;
        } else if (!dash && strcmp(s, "--name-prefix") == 0 && v != NULL) {
            a->name_prefix = v;
            i++;
        } else if (!dash && strcmp(s, "--dlq") == 0 && v != NULL) {
            a->dlq = v;
            i++;
        } else if (!dash && strcmp(s, "--sns-topic") == 0 && v != NULL) {
            a->topic = v;
            i++;
        } else {
            return usage_error(err, cmd, "unknown or incomplete option", s);
        }
    }
    return BM_EXIT_OK;
}

/* The values a dashboard lists for dimension d: --values, else the Lambda dashboard's for the
 * profile type (CrossRegion and GlobalCrossRegion) and AWS_REGION for a Region; NULL when
 * only a search can find them (models, profile ids, operations). */
static const char *default_values(const struct bm_config *cfg, const struct dash_args *a,
                                  enum bm_dim d)
{
    if (a->values[d] != NULL)
        return a->values[d];
    switch (d) {
    case BM_DIM_PROFILE_TYPE:
    case BM_DIM_INFERENCE_PROFILE:
        return "CrossRegion,GlobalCrossRegion";
    case BM_DIM_REGION:
    case BM_DIM_SOURCE_REGION:
    case BM_DIM_INFERENCE_REGION:
        return cfg->aws_region;
    default:
        return NULL;
    }
}

/* Splits a comma list into at most MAX_VALUES pieces (in buf). */
static int split(const char *list, char *buf, size_t bufsz, char **out)
{
    snprintf(buf, bufsz, "%s", list);
    int n = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t != NULL && n < MAX_VALUES;
         t = strtok_r(NULL, ",", &save))
        out[n++] = t;
    return n;
}

/* One metric line per combination of the set's values: [ns, metric, D1, v1, D2, v2, ...]. */
static bool add_lines(cJSON *metrics, const char *ns, const char *metric,
                      const struct bm_dimsets *ds, int s, char *vals[][MAX_VALUES], const int *nv)
{
    int idx[BM_DIMSET_MAX_DIMS] = {0};
    int n = ds->set[s].n;
    for (;;) {
        cJSON *line = cJSON_CreateArray();
        if (line == NULL || !cJSON_AddItemToArray(metrics, line) ||
            !cJSON_AddItemToArray(line, cJSON_CreateString(ns)) ||
            !cJSON_AddItemToArray(line, cJSON_CreateString(metric)))
            return false;
        for (int d = 0; d < n; d++)
            if (!cJSON_AddItemToArray(line, cJSON_CreateString(bm_dim_name(ds->set[s].d[d]))) ||
                !cJSON_AddItemToArray(line, cJSON_CreateString(vals[d][idx[d]])))
                return false;
        int d = n - 1;
        while (d >= 0 && ++idx[d] == nv[d])
            idx[d--] = 0;
        if (d < 0)
            return true;
    }
}

/* A SEARCH expression for a set whose values cannot be listed: every series of the set. */
static bool add_search(cJSON *metrics, const char *ns, const char *metric,
                       const struct bm_dimsets *ds, int s, long period, int id)
{
    struct bm_buf e;
    bm_buf_init(&e, 4096);
    bm_err rc = bm_buf_appendf(&e, "SEARCH('{%s", ns);
    for (int d = 0; rc == BM_OK && d < ds->set[s].n; d++)
        rc = bm_buf_appendf(&e, ",%s", bm_dim_name(ds->set[s].d[d]));
    if (rc == BM_OK)
        rc = bm_buf_appendf(&e, "} MetricName=\"%s\"', 'Sum', %ld)", metric, period);
    char idbuf[16];
    snprintf(idbuf, sizeof idbuf, "e%d", id);
    cJSON *line = cJSON_CreateArray(), *o = cJSON_CreateObject();
    bool ok = rc == BM_OK && line != NULL && o != NULL && cJSON_AddItemToArray(line, o) &&
              cJSON_AddItemToArray(metrics, line);
    if (!ok) {
        cJSON_Delete(line);
        cJSON_Delete(o);
    }
    ok = ok && cJSON_AddStringToObject(o, "expression", e.data) &&
         cJSON_AddStringToObject(o, "id", idbuf);
    bm_buf_cleanup(&e);
    return ok;
}

static bool add_widget(cJSON *widgets, const struct bm_config *cfg, const struct dash_args *a,
                       const struct bm_dimsets *ds, int s, int m, int k)
{
    const char *ns = cfg->cloudwatch_namespace, *metric = widget_metrics[m];
    char bufs[BM_DIMSET_MAX_DIMS][MAX_VALUES_BYTES];
    char *vals[BM_DIMSET_MAX_DIMS][MAX_VALUES];
    int nv[BM_DIMSET_MAX_DIMS];
    bool listable = true;
    char title[512];
    int off = snprintf(title, sizeof title, "%s%s", metric, ds->set[s].n ? " by " : " (all)");
    for (int d = 0; d < ds->set[s].n; d++) {
        const char *list = default_values(cfg, a, ds->set[s].d[d]);
        nv[d] = list ? split(list, bufs[d], sizeof bufs[d], vals[d]) : 0;
        listable = listable && nv[d] > 0;
        off += snprintf(title + off, sizeof title - (size_t)off, "%s%s", d ? ", " : "",
                        bm_dim_name(ds->set[s].d[d]));
        if (off >= (int)sizeof title)
            off = (int)sizeof title - 1;
    }
    /* A widget shows at most 500 metrics: more combinations than that are searched. */
    long lines = 1;
    for (int d = 0; listable && d < ds->set[s].n; d++)
        lines *= nv[d];
    listable = listable && lines <= MAX_WIDGET_METRICS;
    cJSON *w = cJSON_CreateObject(), *p, *metrics;
    if (w == NULL || !cJSON_AddItemToArray(widgets, w))
        return false;
    bool ok = cJSON_AddStringToObject(w, "type", "metric") &&
              cJSON_AddNumberToObject(w, "x", (k % 2) * WIDGET_W) &&
              cJSON_AddNumberToObject(w, "y", (k / 2) * WIDGET_H) &&
              cJSON_AddNumberToObject(w, "width", WIDGET_W) &&
              cJSON_AddNumberToObject(w, "height", WIDGET_H) &&
              (p = cJSON_AddObjectToObject(w, "properties")) != NULL &&
              cJSON_AddStringToObject(p, "title", title) &&
              cJSON_AddStringToObject(p, "view", "timeSeries") &&
              cJSON_AddBoolToObject(p, "stacked", strcmp(metric, "InvocationCount") == 0) &&
              (metrics = cJSON_AddArrayToObject(p, "metrics")) != NULL;
    ok = ok && (listable ? add_lines(metrics, ns, metric, ds, s, vals, nv)
                         : add_search(metrics, ns, metric, ds, s, a->period, k + 1));
    return ok && cJSON_AddStringToObject(p, "region", cfg->aws_region) &&
           cJSON_AddStringToObject(p, "stat", "Sum") &&
           cJSON_AddNumberToObject(p, "period", (double)a->period);
}

static int print_json(cJSON *root, FILE *out, FILE *err, bool pretty)
{
    char *text = root ? (pretty ? cJSON_Print(root) : cJSON_PrintUnformatted(root)) : NULL;
    if (text == NULL) {
        fprintf(err, "bmas: out of memory\n");
        return BM_EXIT_FAILED;
    }
    fprintf(out, "%s\n", text);
    cJSON_free(text);
    return BM_EXIT_OK;
}

static int load_sets(const struct bm_config *cfg, struct bm_dimsets *ds, FILE *err)
{
    struct bm_errmsg em = {{0}};
    if (bm_dimsets_parse(cfg->dimension_sets, ds, &em) != BM_OK) {
        fprintf(err, "bmas: %s\n", em.text);
        return BM_EXIT_USAGE;
    }
    return BM_EXIT_OK;
}

int bm_srv_cmd_dashboard(const struct bm_config *cfg, int argc, char **argv, FILE *out, FILE *err)
{
    struct dash_args a;
    struct bm_dimsets ds;
    int rc = parse_args("dashboard", argc, argv, &a, err);
    if (rc != BM_EXIT_OK || (rc = load_sets(cfg, &ds, err)) != BM_EXIT_OK)
        return rc;
    cJSON *root = cJSON_CreateObject(), *widgets = cJSON_AddArrayToObject(root, "widgets");
    bool ok = widgets != NULL;
    int k = 0;
    for (int s = 0; ok && s < ds.n; s++)
        for (int m = 0; ok && m < (int)(sizeof widget_metrics / sizeof widget_metrics[0]); m++)
            ok = add_widget(widgets, cfg, &a, &ds, s, m, k++);
    rc = print_json(ok ? root : NULL, out, err, true);
    cJSON_Delete(root);
    return rc;
}

/* One alarm: the members put-metric-alarm --cli-input-json takes. */
static cJSON *make_alarm(const struct dash_args *a, const char *suffix, const char *desc,
                         const char *ns, const char *metric, const char *dim, const char *dim_value,
                         const char *stat, long period, long evals, double threshold,
                         const char *cmp, const char *missing)
{
    char name[512];
    snprintf(name, sizeof name, "%s-%s", a->name_prefix, suffix);
    cJSON *o = cJSON_CreateObject(), *dims, *d, *actions;
    bool ok = o != NULL && cJSON_AddStringToObject(o, "AlarmName", name) &&
              cJSON_AddStringToObject(o, "AlarmDescription", desc) &&
              cJSON_AddStringToObject(o, "Namespace", ns) &&
              cJSON_AddStringToObject(o, "MetricName", metric);
    if (ok && dim != NULL)
        ok = (dims = cJSON_AddArrayToObject(o, "Dimensions")) != NULL &&
             (d = cJSON_CreateObject()) != NULL && cJSON_AddItemToArray(dims, d) &&
             cJSON_AddStringToObject(d, "Name", dim) &&
             cJSON_AddStringToObject(d, "Value", dim_value);
    ok = ok && cJSON_AddStringToObject(o, "Statistic", stat) &&
         cJSON_AddNumberToObject(o, "Period", (double)period) &&
         cJSON_AddNumberToObject(o, "EvaluationPeriods", (double)evals) &&
         cJSON_AddNumberToObject(o, "Threshold", threshold) &&
         cJSON_AddStringToObject(o, "ComparisonOperator", cmp) &&
         cJSON_AddStringToObject(o, "TreatMissingData", missing);
    if (ok && a->topic != NULL)
        ok = (actions = cJSON_AddArrayToObject(o, "AlarmActions")) != NULL &&
             cJSON_AddItemToArray(actions, cJSON_CreateString(a->topic));
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

int bm_srv_cmd_alarms(const struct bm_config *cfg, int argc, char **argv, FILE *out, FILE *err)
{
    struct dash_args a;
    struct bm_dimsets ds;
    int rc = parse_args("alarms", argc, argv, &a, err);
    if (rc != BM_EXIT_OK || (rc = load_sets(cfg, &ds, err)) != BM_EXIT_OK)
        return rc;
    const char *ns = cfg->cloudwatch_namespace;
    cJSON *list[3] = {NULL, NULL, NULL};
    /* The dead-letter queue holds messages: the queue depth is a gauge sampled each minute, so
     * Maximum (the Lambda's guide used Sum, which counts one message once per sample). */
    list[0] = make_alarm(&a, "dlq", "bmas: messages in the dead-letter queue", "AWS/SQS",
                         "ApproximateNumberOfMessagesVisible", "QueueName", a.dlq, "Maximum", 300,
                         1, 1, "GreaterThanOrEqualToThreshold", "notBreaching");
    /* BMAS-004 cannot be a metric bmas publishes (CloudWatch is what fails): a CloudWatch Logs
     * metric filter on bmas's publish_failed log lines makes it (README, Dashboards and
     * alarms). */
    list[1] =
        make_alarm(&a, "publish-failures",
                   "bmas: CloudWatch publishing failed (BMAS-004), from the log metric filter "
                   "bmas-publish-failures",
                   ns, "PublishFailures", NULL, NULL, "Sum", 300, 1, 1,
                   "GreaterThanOrEqualToThreshold", "notBreaching");
    int n = 2;
    int total = -1;
    for (int s = 0; s < ds.n; s++)
        if (ds.set[s].n == 0)
            total = s;
    if (total >= 0)
        list[n++] = make_alarm(&a, "no-data",
                               "bmas: no invocation published for an hour (no Bedrock traffic, or "
                               "bmas stopped publishing)",
                               ns, "InvocationCount", NULL, NULL, "Sum", 3600, 1, 1,
                               "LessThanThreshold", "breaching");
    else
        fprintf(err, "bmas alarms: no \"no data\" alarm: it reads the totals, add the set () to "
                     "BMAS_DIMENSION_SETS\n");
    rc = BM_EXIT_OK;
    for (int i = 0; i < n; i++) {
        if (rc == BM_EXIT_OK)
            rc = print_json(list[i], out, err, false);
        cJSON_Delete(list[i]);
    }
    return rc;
}
