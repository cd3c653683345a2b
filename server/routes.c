/* routes.c: GET /status, GET /healthz, GET /aggregates and POST /flush (README.md lists them;
 * openapi.yaml describes them). /status reads persistent counters, so it tells the truth across
 * restarts; both read routes only read, and never wait behind ingest (SQLite WAL). */
#include "server/srv_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATUS_QUARANTINED_MAX 20
#define STATUS_UNPRICED_MAX 20

/* Most unpriced invocations first; ties by place in the aggregate (the series are one array,
 * so their addresses keep the query's order). */
static int by_unpriced(const void *x, const void *y)
{
    const struct bm_series *a = *(const struct bm_series *const *)x;
    const struct bm_series *b = *(const struct bm_series *const *)y;
    if (a->c.unpriced != b->c.unpriced)
        return a->c.unpriced > b->c.unpriced ? -1 : 1;
    return (a > b) - (a < b);
}

/* /status's "cost": the stored aggregates' cost and unpriced invocations (what GET
 * /aggregates totals over all time), and the models that had unpriced invocations, most
 * first, at most STATUS_UNPRICED_MAX. null when the query fails (the rest of /status still
 * answers). */
static void write_cost(struct bm_srv *s, struct bm_buf *b)
{
    struct bm_group_by g = {.n = 1, .f = {BM_G_MODEL_ID}};
    struct bm_db_query q;
    struct bm_agg *a = NULL;
    struct bm_errmsg em = {{0}};
    bm_db_query_init(&q, &g);
    q.sums_only = true;
    if (bm_db_query(s->db, &q, &a, &em) != BM_OK) {
        bm_buf_append_str(b, "null");
        return;
    }
    struct bm_counters t;
    bm_agg_totals(a, &t);
    bm_buf_appendf(b, "{\"prices\":%s,\"cost_usd\":", s->prices ? "true" : "false");
    bm_cost_append_usd(b, &t.cost);
    bm_buf_appendf(b, ",\"unpriced_invocations\":%llu,\"unpriced_models\":[",
                   (unsigned long long)t.unpriced);
    /* Most unpriced first (ties in the query's order): the models with any, sorted. */
    size_t n = bm_agg_count(a), k = 0;
    const struct bm_series **v = bm_malloc((n ? n : 1) * sizeof *v);
    for (size_t i = 0; v != NULL && i < n; i++)
        if (bm_agg_at(a, i)->c.unpriced > 0)
            v[k++] = bm_agg_at(a, i);
    if (v != NULL)
        qsort(v, k, sizeof *v, by_unpriced);
    for (size_t i = 0; i < k && i < STATUS_UNPRICED_MAX; i++) {
        bm_buf_append_str(b, i ? "," : "");
        bm_buf_append_json_str(b, v[i]->key.model_id.p, v[i]->key.model_id.len);
    }
    bm_buf_append_str(b, "]}");
    bm_free(v);
    bm_agg_free(a);
}

static void write_error_obj(struct bm_buf *b, bm_err code, const char *msg, int64_t at)
{
    char ts[21];
    bm_time_format(at, ts);
    bm_buf_appendf(b, "{\"errorCode\":\"%s\",\"message\":", bm_err_wire(code));
    bm_buf_append_json_str(b, msg, strlen(msg));
    bm_buf_appendf(b, ",\"at\":\"%s\"}", ts);
}

void bm__route_status(struct bm_srv *s, struct bm__reply *r)
{
    struct bm_errmsg em = {{0}};
    struct bm_db_status st;
    uint64_t pending = 0;
    bm_err rc = bm_db_status(s->db, &st, &em);
    if (rc == BM_OK)
        rc = bm_db_outbox_pending(s->db, &pending, &em);
    if (rc != BM_OK) {
        bm__reply_error(r, rc, em.text, NULL);
        return;
    }
    struct bm__flush_report last, last_fail;
    bm__publisher_last(s->pub, &last, &last_fail);
    struct bm__consumer_stats cs = {0};
    if (s->consumer != NULL)
        bm__consumer_stats(s->consumer, &cs);
    /* Degraded: the database refuses writes (commits and claims fail), the last flush failed,
     * or the consumer cannot reach its queue. */
    struct bm_errmsg hem = {{0}};
    int64_t hsince = 0;
    bm_err health = bm_db_write_health(s->db, &hsince, &hem);
    bool degraded =
        health != BM_OK || last.rc != BM_OK || (s->consumer != NULL && cs.last_error != BM_OK);
    struct bm_buf *b = &r->body;
    r->status = 200;
    bm_buf_appendf(b,
                   "{\"status\":\"%s\",\"version\":\"%s\",\"uptime_s\":%lld,"
                   "\"objects\":{\"processed\":%llu,\"duplicates\":%llu,\"ignored\":%llu,"
                   "\"failed\":%llu,\"quarantined\":%llu},"
                   "\"records\":{\"processed\":%llu,\"invalid\":%llu},"
                   "\"publish\":{\"pending\":%llu,\"published\":%llu,\"requests\":%llu,"
                   "\"dropped\":%llu,\"rejected\":%llu,\"last_flush\":",
                   degraded ? "degraded" : "ok", BM_VERSION,
                   (long long)((bm_time_mono_ms() - s->started_ms) / 1000),
                   (unsigned long long)st.c[BM_DB_C_OBJECTS_PROCESSED],
                   (unsigned long long)st.c[BM_DB_C_OBJECTS_DUPLICATES],
                   (unsigned long long)st.c[BM_DB_C_OBJECTS_IGNORED],
                   (unsigned long long)st.c[BM_DB_C_OBJECTS_FAILED],
                   (unsigned long long)st.c[BM_DB_C_OBJECTS_QUARANTINED],
                   (unsigned long long)st.c[BM_DB_C_RECORDS_PROCESSED],
                   (unsigned long long)st.c[BM_DB_C_RECORDS_INVALID], (unsigned long long)pending,
                   (unsigned long long)st.c[BM_DB_C_PUBLISH_PUBLISHED],
                   (unsigned long long)st.c[BM_DB_C_PUBLISH_REQUESTS],
                   (unsigned long long)st.c[BM_DB_C_PUBLISH_DROPPED],
                   (unsigned long long)st.c[BM_DB_C_PUBLISH_REJECTED]);
    if (last.at == 0) {
        bm_buf_append_str(b, "null");
    } else {
        char ts[21];
        bm_time_format(last.at, ts);
        bm_buf_appendf(b, "\"%s\"", ts);
    }
    bm_buf_append_str(b, ",\"last_error\":");
    if (last_fail.at == 0)
        bm_buf_append_str(b, "null");
    else
        write_error_obj(b, last_fail.rc, last_fail.res.last_error_msg.text, last_fail.at);
    bm_buf_append_str(b, "},\"storage\":");
    if (health == BM_OK)
        bm_buf_append_str(b, "null");
    else
        write_error_obj(b, health, hem.text, hsince);
    bool publisher;
    char holder[256];
    bm__publisher_role(s->pub, &publisher, holder, sizeof holder);
    bm_buf_append_str(b, ",\"instance\":{\"id\":");
    bm_buf_append_json_str(b, s->instance_id, strlen(s->instance_id));
    bm_buf_appendf(b, ",\"store\":\"%s\",\"publisher\":%s,\"publisher_holder\":",
                   s->db != NULL ? bm_db_store_kind(s->db) : "sqlite",
                   publisher ? "true" : "false");
    if (holder[0] == '\0')
        bm_buf_append_str(b, "null");
    else
        bm_buf_append_json_str(b, holder, strlen(holder));
    bm_buf_append_str(b, "}");
    bm_buf_append_str(b, ",\"errors\":{");
    bool first = true;
    for (int i = 0; i < BM_ERR_WIRE_N; i++) {
        uint64_t v = st.c[BM_DB_C_ERRORS + i];
        if (v == 0)
            continue;
        bm_buf_appendf(b, "%s\"%s\":%llu", first ? "" : ",", bm_err_wire_at(i),
                       (unsigned long long)v);
        first = false;
    }
    bm_buf_append_str(b, "},\"quarantined\":[");
    struct bm_db_failures *q = NULL;
    if (bm_db_quarantined(s->db, STATUS_QUARANTINED_MAX, &q, &em) == BM_OK) {
        for (size_t i = 0; i < q->n; i++) {
            const struct bm_db_failure *f = &q->v[i];
            char ts[21];
            bm_time_format(f->last_at, ts);
            bm_buf_append_str(b, i ? ",{\"bucket\":" : "{\"bucket\":");
            bm_buf_append_json_str(b, f->obj.bucket.p, f->obj.bucket.len);
            bm_buf_append_str(b, ",\"key\":");
            bm_buf_append_json_str(b, f->obj.key.p, f->obj.key.len);
            bm_buf_append_str(b, ",\"version\":");
            bm_buf_append_json_str(b, f->obj.version.p, f->obj.version.len);
            bm_buf_appendf(b, ",\"attempts\":%ld,\"errorCode\":\"%s\",\"message\":", f->attempts,
                           f->code);
            const char *m = f->message ? f->message : "";
            bm_buf_append_json_str(b, m, strlen(m));
            bm_buf_appendf(b, ",\"last_at\":\"%s\"}", ts);
        }
        bm_db_failures_free(q);
    }
    bm_buf_append_str(b, "],\"consumer\":");
    if (s->consumer == NULL) {
        bm_buf_append_str(b, "null");
    } else {
        bm_buf_append_str(b, "{\"queue_url\":");
        bm_buf_append_json_str(b, s->cfg->sqs_queue_url, strlen(s->cfg->sqs_queue_url));
        bm_buf_appendf(b,
                       ",\"polls\":%llu,\"received\":%llu,\"deleted\":%llu,\"failed\":%llu,"
                       "\"last_error\":",
                       (unsigned long long)cs.polls, (unsigned long long)cs.received,
                       (unsigned long long)cs.deleted, (unsigned long long)cs.failed);
        if (cs.last_error == BM_OK)
            bm_buf_append_str(b, "null");
        else
            write_error_obj(b, cs.last_error, cs.last_error_msg.text, cs.last_poll_at);
        bm_buf_append_char(b, '}');
    }
    bm_buf_append_str(b, ",\"cost\":");
    write_cost(s, b);
    /* Residency: the persistent count of BMAS-025 records, and the list it is checked
     * against (empty: no check). */
    const char *allowed = s->cfg->allowed_inference_regions;
    struct bm_str it;
    bm_buf_append_str(b, ",\"residency\":{\"allowed_inference_regions\":[");
    for (const char *c = allowed; bm_list_next(&c, &it);) {
        bm_buf_append_str(b, it.p == allowed ? "" : ",");
        bm_buf_append_json_str(b, it.p, it.len);
    }
    bm_buf_appendf(b, "],\"violations\":%llu}",
                   (unsigned long long)st.c[BM_DB_C_ERRORS + bm_err_wire_index(BM_E_RESIDENCY)]);
    /* Attribution: the keys group_by=attr.<key> takes (the dashboard builds its tables from
     * them) and the per-key cap before "other". */
    bm_buf_append_str(b, ",\"attribution\":{\"keys\":[");
    for (int i = 0; i < s->attrs.n; i++) {
        bm_buf_append_str(b, i > 0 ? "," : "");
        bm_buf_append_json_str(b, s->attrs.name[i], strlen(s->attrs.name[i]));
    }
    bm_buf_appendf(b, "],\"max_values\":%ld}", s->cfg->attribution_max_values);
    uint64_t cut = 0;
    long open = 0;
    if (s->conns != NULL)
        bm__conns_stats(s->conns, &cut, &open);
    bm_buf_appendf(b,
                   ",\"http\":{\"connections\":%ld,\"cut_at_deadline\":%llu,"
                   "\"body_bytes_in_flight\":%llu},\"cloudwatch\":",
                   open, (unsigned long long)cut,
                   (unsigned long long)atomic_load(&s->inflight_bytes));
    if (bm__cw_budget_json(s, b, &em) != BM_OK) {
        bm__reply_error(r, BM_E_STORAGE, em.text, NULL);
        return;
    }
    bm_buf_append_char(b, '}');
}

void bm__route_aggregates(struct bm_srv *s, const char *const *names, const char *const *values,
                          size_t n, struct bm__reply *r)
{
    struct bm_errmsg em = {{0}};
    struct bm_db_query q;
    bm_err prc = bm_db_query_parse_attrs(&q, &s->attrs, names, values, n, &em);
    if (prc != BM_OK) {
        bm__reply_error(r, prc, em.text, NULL);
        return;
    }
    struct bm_agg *a = NULL;
    bm_err rc = bm_db_query(s->db, &q, &a, &em);
    if (rc != BM_OK) {
        bm__reply_error(r, rc, em.text, NULL);
        return;
    }
    rc = bm_agg_write_json(a, &q.group_by, q.from, q.to, &r->body);
    bm_agg_free(a);
    if (rc != BM_OK)
        bm__reply_error(r, rc, "response too large", NULL);
    else
        r->status = 200;
}

void bm__route_healthz(struct bm_srv *s, struct bm__reply *r)
{
    struct bm_errmsg em = {{0}};
    int64_t since = 0;
    bm_err h = bm_db_write_health(s->db, &since, &em);
    if (h == BM_OK) {
        r->status = 200;
        r->content_type = "text/plain";
        bm_buf_append_str(&r->body, "ok\n");
        return;
    }
    /* Not serving what it promises: a load balancer or orchestrator should know. 503 for
     * either storage code (BMAS-014 alone would say 500), with Retry-After. */
    char ts[21], details[64];
    bm_time_format(since, ts);
    snprintf(details, sizeof details, "{\"since\":\"%s\"}", ts);
    bm__reply_error(r, h, em.text, details);
    r->status = 503;
}

void bm__route_flush(struct bm_srv *s, struct bm__reply *r)
{
    struct bm__flush_report rep;
    bm_err rc = bm__publisher_flush(s->pub, 120000, &rep);
    if (rc == BM_OK)
        rc = rep.rc;
    if (rc != BM_OK) {
        /* BMAS-004: which namespace, what CloudWatch said, how often the call was retried. */
        bool cw = rc == BM_E_PUBLISH || rc == BM_E_THROTTLED;
        struct bm_buf d;
        bm_buf_init(&d, 4096);
        if (cw) {
            const char *ns = s->cfg->cloudwatch_namespace;
            const char *et = rep.res.error_type[0] ? rep.res.error_type : bm_err_str(rc);
            if (bm_buf_append_str(&d, "{\"namespace\":") != BM_OK ||
                bm_buf_append_json_str(&d, ns, strlen(ns)) != BM_OK ||
                bm_buf_append_str(&d, ",\"errorType\":") != BM_OK ||
                bm_buf_append_json_str(&d, et, strlen(et)) != BM_OK ||
                bm_buf_appendf(&d, ",\"retryAttempts\":%llu}",
                               (unsigned long long)rep.res.retry_attempts) != BM_OK)
                bm_buf_reset(&d);
        }
        bm__reply_error(r, cw ? BM_E_PUBLISH : rc,
                        rep.res.last_error_msg.text[0] ? rep.res.last_error_msg.text
                                                       : bm_err_str(rc),
                        d.len > 0 ? d.data : NULL);
        bm_buf_cleanup(&d);
        return;
    }
    r->status = 200;
    bm_buf_appendf(
        &r->body,
        "{\"published\":%llu,\"requests\":%llu,\"rows\":{\"published\":%llu,"
        "\"dropped\":%llu,\"rejected\":%llu},\"dimension_overflow\":%llu}",
        (unsigned long long)rep.res.datums, (unsigned long long)rep.res.requests,
        (unsigned long long)rep.res.rows_published, (unsigned long long)rep.res.rows_dropped,
        (unsigned long long)rep.res.rows_rejected, (unsigned long long)rep.res.dimension_overflow);
}
