/* metrics_route.c: GET /metrics, the Prometheus text format (0.0.4): bmas's own counters and
 * latency histograms (core/metrics.c), then the aggregates as counters per profile type,
 * model, source and inference Region, read exactly as GET /aggregates reads all time. */
#include "server/srv_int.h"

#include <string.h>

/* Label sets read before the cap folds them: a bound on memory, far above any cap a
 * Prometheus server would take. */
#define METRICS_QUERY_MAX_ROWS 10000000

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
    bm_agg_free(a);
    if (rc != BM_OK) {
        bm__reply_error(r, rc, "cannot render the metrics", NULL);
        return;
    }
    r->status = 200;
    r->content_type = "text/plain; version=0.0.4; charset=utf-8";
}
