/* metrics_route.c: GET /metrics, the Prometheus text format (0.0.4): bmas's own counters and
 * latency histograms (core/metrics.c), then the aggregates as counters per profile type,
 * model, source and inference Region, read exactly as GET /aggregates reads all time, and the
 * estimated cost and residency violations. */
#include "server/srv_int.h"

#include <string.h>

/* Label sets read before the cap folds them: a bound on memory, far above any cap a
 * Prometheus server would take. */
#define METRICS_QUERY_MAX_ROWS 10000000

/* The estimated cost and unpriced invocations of all the stored data (BMAS_PRICES; what
 * /aggregates totals), and the persistent count of residency violations (BMAS-025). */
static bm_err write_cost_residency(struct bm_srv *s, const struct bm_agg *a, struct bm_buf *b)
{
    struct bm_counters t;
    struct bm_db_status st;
    struct bm_errmsg em = {{0}};
    bm_agg_totals(a, &t);
    bm_err rc = bm_db_status(s->db, &st, &em);
    if (rc != BM_OK)
        return rc;
    rc = bm_buf_append_str(
        b, "# HELP bmas_estimated_cost_usd_total Estimated cost in US dollars of the priced "
           "invocations (BMAS_PRICES), all the stored data.\n"
           "# TYPE bmas_estimated_cost_usd_total counter\n"
           "bmas_estimated_cost_usd_total ");
    if (rc == BM_OK)
        rc = bm_cost_append_usd(b, &t.cost);
    if (rc == BM_OK)
        rc = bm_buf_appendf(
            b,
            "\n# HELP bmas_unpriced_invocations_total Invocations no price covered, all the stored "
            "data.\n# TYPE bmas_unpriced_invocations_total counter\n"
            "bmas_unpriced_invocations_total %llu\n"
            "# HELP bmas_residency_violations_total Records served outside "
            "BMAS_ALLOWED_INFERENCE_REGIONS (BMAS-025).\n"
            "# TYPE bmas_residency_violations_total counter\n"
            "bmas_residency_violations_total %llu\n",
            (unsigned long long)t.unpriced,
            (unsigned long long)st.c[BM_DB_C_ERRORS + bm_err_wire_index(BM_E_RESIDENCY)]);
    return rc;
}

void bm__route_metrics(struct bm_srv *s, struct bm__reply *r)
{
    struct bm_errmsg em = {{0}};
    struct bm_group_by g;
    bm_err rc = bm_group_by_parse("profile_type,model_id,source_region,inference_region", &g, &em);
    struct bm_db_query q;
    struct bm_agg *a = NULL;
    if (rc == BM_OK) {
        bm_db_query_init(&q, &g);
        q.sums_only = true;
        q.max_rows = METRICS_QUERY_MAX_ROWS;
        rc = bm_db_query(s->db, &q, &a, &em);
    }
    if (rc != BM_OK) {
        bm__reply_error(r, rc, em.text, NULL);
        return;
    }
    rc = bm_metrics_write(s->metrics, &r->body);
    if (rc == BM_OK)
        rc = bm__cw_budget_metrics(s, &r->body);
    if (rc == BM_OK)
        rc = bm_metrics_write_aggs(a, (size_t)s->cfg->metrics_max_series, &r->body, NULL);
    if (rc == BM_OK)
        rc = write_cost_residency(s, a, &r->body);
    bm_agg_free(a);
    if (rc != BM_OK) {
        bm__reply_error(r, rc, "cannot render the metrics", NULL);
        return;
    }
    r->status = 200;
    r->content_type = "text/plain; version=0.0.4; charset=utf-8";
}
