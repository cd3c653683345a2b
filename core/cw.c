/* cw.c: the CloudWatch publisher. Outbox rows (per-series deltas) become StatisticValues
 * datums, packed into as few PutMetricData calls as the API allows (1000 datums, 1 MB), sent
 * over the Query protocol. Each call carries whole rows, and its rows are marked published
 * only after it succeeded, so a retry re-sends that call alone and nothing is ever counted
 * twice by CloudWatch (it sums what it receives). */
#include "core/core_int.h"

#include <curl/curl.h>
#include <string.h>
#include <zlib.h>

#define FETCH_ROWS 4096
#define METRICS 5
#define DATUMS_PER_GROUP METRICS
#define MAX_DIM_VALUE 255
#define TWO_WEEKS_S (14 * 86400)
#define AHEAD_S (2 * 3600)
/* Bodies over this are gzipped: CloudWatch accepts Content-Encoding: gzip (docs/formats.md 6). */
#define GZIP_OVER 16384
#define CW_BACKOFF_BASE_MS 250
#define CW_BACKOFF_CAP_MS 8000

static const char *const dim_names[BM_DIM__COUNT] = {
    "InferenceProfileType", "ModelId", "ProfileId", "SourceRegion", "InferenceRegion", "Operation",
};
static const char *const metric_names[METRICS] = {
    "InvocationCount",      "InputTokens",           "OutputTokens",
    "CacheReadInputTokens", "CacheWriteInputTokens",
};

const char *bm_dim_name(enum bm_dim d)
{
    return (unsigned)d < BM_DIM__COUNT ? dim_names[d] : "?";
}

bm_err bm_dimsets_parse(const char *spec, struct bm_dimsets *out, struct bm_errmsg *em)
{
    struct bm_dimsets d;
    memset(&d, 0, sizeof d);
    const char *p = spec;
    while (*p) {
        const char *semi = strchr(p, ';');
        size_t slen = semi ? (size_t)(semi - p) : strlen(p);
        if (d.n == BM_DIMSETS_MAX)
            return bm_errmsg_set(em, BM_E_CONFIG, "BMAS_DIMENSION_SETS: more than %d sets",
                                 BM_DIMSETS_MAX);
        int n = 0;
        for (const char *q = p; q < p + slen;) {
            const char *comma = memchr(q, ',', (size_t)(p + slen - q));
            size_t len = comma ? (size_t)(comma - q) : (size_t)(p + slen - q);
            while (len > 0 && *q == ' ') {
                q++;
                len--;
            }
            while (len > 0 && q[len - 1] == ' ')
                len--;
            if (len > 0) {
                int found = -1;
                for (int i = 0; i < BM_DIM__COUNT; i++)
                    if (strlen(dim_names[i]) == len && memcmp(dim_names[i], q, len) == 0)
                        found = i;
                if (found < 0)
                    return bm_errmsg_set(em, BM_E_CONFIG,
                                         "BMAS_DIMENSION_SETS: unknown dimension \"%.*s\" (use "
                                         "InferenceProfileType, ModelId, ProfileId, "
                                         "SourceRegion, InferenceRegion, Operation)",
                                         (int)len, q);
                for (int i = 0; i < n; i++)
                    if (d.set[d.n].d[i] == (enum bm_dim)found)
                        return bm_errmsg_set(em, BM_E_CONFIG,
                                             "BMAS_DIMENSION_SETS: \"%.*s\" twice in one set",
                                             (int)len, q);
                d.set[d.n].d[n++] = (enum bm_dim)found;
            }
            q += len + (comma != NULL);
            if (comma == NULL)
                break;
            q = comma + 1;
        }
        if (n > 0) {
            d.set[d.n].n = n;
            d.n++;
        }
        p += slen + (semi != NULL);
    }
    *out = d;
    return BM_OK;
}

static struct bm_str dim_value(const struct bm_series_key *k, enum bm_dim d)
{
    static const struct bm_str unknown = {"Unknown", 7};
    struct bm_str v = unknown;
    switch (d) {
    case BM_DIM_PROFILE_TYPE: {
        const char *t = bm_profile_type_name(k->type);
        v = (struct bm_str){t, strlen(t)};
        break;
    }
    case BM_DIM_MODEL_ID:
        v = k->model_id;
        break;
    case BM_DIM_PROFILE_ID:
        v = k->profile_id;
        break;
    case BM_DIM_SOURCE_REGION:
        v = k->source_region;
        break;
    case BM_DIM_INFERENCE_REGION:
        v = k->inference_region;
        break;
    case BM_DIM_OPERATION:
        v = k->operation;
        break;
    case BM_DIM__COUNT:
        break;
    }
    /* CloudWatch needs a value of 1..255 characters; an empty one becomes "Unknown". */
    return v.len > 0 ? v : unknown;
}

/* One request under construction: groups keyed by (dimension set, values, bucket), each
 * becoming five datums. Stored as a bm_agg whose key fields carry the dimension values (the
 * set index rides in `type`, which is otherwise unused here) so merging is a hash lookup. */
struct request {
    struct bm_agg *groups;
    uint64_t *row_ids;
    size_t nrows, cap_rows;
    size_t est_bytes;
};

static bm_err escape_into(struct bm_buf *b, struct bm_str s)
{
    if (s.len == 0)
        return BM_OK; /* curl_easy_escape would take 0 as "use strlen" */
    char *e = curl_easy_escape(NULL, s.p, (int)s.len);
    if (e == NULL)
        return BM_E_NOMEM;
    bm_err rc = bm_buf_append_str(b, e);
    curl_free(e);
    return rc;
}

/* Appends the five datums of group g as members first..first+4. */
static bm_err encode_group(struct bm_buf *b, const struct bm_dimsets *dims,
                           const struct bm_series *g, int first)
{
    const struct bm_str vals[] = {g->key.model_id, g->key.profile_id, g->key.source_region,
                                  g->key.inference_region, g->key.operation};
    const int set = (int)g->key.type;
    char ts[21];
    bm_time_format(g->key.bucket, ts);
    const struct bm_counters *c = &g->c;
    const struct bm_stat inv = {c->invocations, 1, 1};
    const struct bm_stat *stats[METRICS] = {&inv, &c->input, &c->output, &c->cache_read,
                                            &c->cache_write};
    bm_err rc = BM_OK;
    for (int m = 0; rc == BM_OK && m < METRICS; m++) {
        int i = first + m;
        rc = bm_buf_appendf(b,
                            "&MetricData.member.%d.MetricName=%s&MetricData.member.%d.Unit=Count"
                            "&MetricData.member.%d.Timestamp=%.13s%%3A%.2s%%3A%.2sZ"
                            "&MetricData.member.%d.StatisticValues.SampleCount=%llu"
                            "&MetricData.member.%d.StatisticValues.Sum=%llu"
                            "&MetricData.member.%d.StatisticValues.Minimum=%llu"
                            "&MetricData.member.%d.StatisticValues.Maximum=%llu",
                            i, metric_names[m], i, i, ts, ts + 14, ts + 17, i,
                            (unsigned long long)c->invocations, i,
                            (unsigned long long)stats[m]->sum, i, (unsigned long long)stats[m]->min,
                            i, (unsigned long long)stats[m]->max);
        for (int d = 0; rc == BM_OK && d < dims->set[set].n; d++) {
            rc = bm_buf_appendf(b,
                                "&MetricData.member.%d.Dimensions.member.%d.Name=%s"
                                "&MetricData.member.%d.Dimensions.member.%d.Value=",
                                i, d + 1, dim_names[dims->set[set].d[d]], i, d + 1);
            if (rc == BM_OK)
                rc = escape_into(b, vals[d]);
        }
    }
    return rc;
}

/* The group key of row r under dimension set s: values in the key's string slots in set
 * order, the set index in `type`. false when a value is too long (BMAS-009). */
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
    for (int d = 0; d < dims->set[s].n; d++) {
        struct bm_str v = dim_value(k, dims->set[s].d[d]);
        if (v.len > MAX_DIM_VALUE)
            return false;
        if (d < 5)
            *slots[d] = v;
    }
    return true;
}

static void request_reset(struct request *rq)
{
    bm_agg_free(rq->groups);
    rq->groups = NULL;
    rq->nrows = 0;
    rq->est_bytes = 0;
}

static bm_err gzip_body(const struct bm_buf *in, struct bm_buf *out)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return BM_E_NOMEM;
    size_t cap = deflateBound(&zs, (uLong)in->len) + 32;
    bm_buf_reset(out);
    bm_err rc = bm_buf_reserve(out, cap);
    if (rc == BM_OK) {
        zs.next_in = (unsigned char *)in->data;
        zs.avail_in = (uInt)in->len;
        zs.next_out = (unsigned char *)out->data;
        zs.avail_out = (uInt)cap;
        rc = deflate(&zs, Z_FINISH) == Z_STREAM_END ? BM_OK : BM_E_INTERNAL;
        out->len = cap - zs.avail_out;
    }
    deflateEnd(&zs);
    return rc;
}

/* The CloudWatch Query error code in an ErrorResponse body. */
static void cw_error_code(const struct bm_http_resp *rs, char *code, size_t cap)
{
    struct bm_str t;
    code[0] = '\0';
    if (rs->body.data != NULL &&
        bm__xml_find(rs->body.data, rs->body.data + rs->body.len, "Code", &t) != NULL) {
        size_t n = t.len < cap - 1 ? t.len : cap - 1;
        memcpy(code, t.p, n);
        code[n] = '\0';
    }
}

enum outcome { SENT, REJECTED, FAILED };

/* Sends one request, retrying it alone on throttling, 5xx and transport errors. */
static enum outcome send_request(const struct bm_aws *aws, const struct bm_buf *body,
                                 struct bm_publish_result *res)
{
    struct bm_buf url, gz;
    bm_buf_init(&url, 4096);
    bm_buf_init(&gz, BM_CW_MAX_BODY * 2);
    bool custom;
    bool zipped = body->len > GZIP_OVER;
    enum outcome out = FAILED;
    bm_err rc = bm_aws_endpoint(aws->cfg, "monitoring", &url, &custom);
    if (rc == BM_OK)
        rc = bm_buf_append_char(&url, '/');
    if (rc == BM_OK && zipped)
        rc = gzip_body(body, &gz);
    struct bm_rng rng;
    bm_rng_seed(&rng, (uint64_t)aws->clock->now_ms(aws->clock->impl) ^ body->len);
    const char *headers[] = {"Content-Type: application/x-www-form-urlencoded; charset=utf-8",
                             "Content-Encoding: gzip"};
    bool refreshed = false;
    int max = (int)aws->cfg->max_retry_attempts;
    for (int n = 1; rc == BM_OK && n <= max; n++) {
        struct bm_creds creds;
        struct bm_errmsg em = {{0}};
        struct bm_http_resp rs;
        bm_http_resp_init(&rs);
        bool retry = false;
        bm_err r = bm_creds_get(aws->creds, &creds, &em);
        if (r == BM_OK) {
            struct bm_http_req rq = {.method = "POST",
                                     .url = url.data,
                                     .service = "monitoring",
                                     .region = aws->cfg->aws_region,
                                     .creds = &creds,
                                     .headers = headers,
                                     .nheaders = zipped ? 2 : 1,
                                     .body = zipped ? gz.data : body->data,
                                     .body_len = zipped ? gz.len : body->len,
                                     .max_body = 64 * 1024};
            r = aws->http->perform(aws->http->impl, &rq, &rs, &em);
            bm_secure_zero(&creds, sizeof creds);
        }
        char code[64] = "";
        if (r == BM_OK) {
            cw_error_code(&rs, code, sizeof code);
            if (rs.status >= 200 && rs.status < 300) {
                out = SENT;
            } else if (rs.status == 403 && !refreshed) {
                refreshed = true;
                bm_creds_invalidate(aws->creds);
                retry = true;
                n--;
            } else if (rs.status >= 500 || rs.status == 429 || strcmp(code, "Throttling") == 0 ||
                       strcmp(code, "ThrottlingException") == 0 ||
                       strcmp(code, "RequestExpired") == 0) {
                retry = true;
            } else if (rs.status == 400) {
                out = REJECTED; /* InvalidParameterValue and friends: resending cannot help */
            }
            bm_errmsg_set(&res->last_error_msg, BM_E_PUBLISH, "PutMetricData: %s (%ld) %s",
                          code[0] ? code : "error", rs.status, rs.request_id);
        } else {
            retry = r == BM_E_UPSTREAM || r == BM_E_NO_CREDENTIALS;
            res->last_error_msg = em;
        }
        bm_http_resp_cleanup(&rs);
        if (out != FAILED || !retry)
            break;
        res->failed_requests++;
        BM_LOG(BM_WARN, "core", "cloudwatch_retry", "PutMetricData will be retried",
               BM_KV_INT("attempt", n), BM_KV_STR("detail", res->last_error_msg.text));
        if (n < max)
            aws->clock->sleep_ms(aws->clock->impl,
                                 bm_backoff_ms(&rng, n, CW_BACKOFF_BASE_MS, CW_BACKOFF_CAP_MS));
    }
    if (rc != BM_OK)
        bm_errmsg_set(&res->last_error_msg, rc, "PutMetricData: %s", bm_err_str(rc));
    bm_buf_cleanup(&url);
    bm_buf_cleanup(&gz);
    return out;
}

/* Encodes and sends the request; marks its rows by the outcome. BM_E_PUBLISH when it failed
 * for good (the rows stay pending). */
static bm_err flush_request(const struct bm_aws *aws, const struct bm_dimsets *dims,
                            const struct bm_outbox_ops *ob, struct request *rq,
                            struct bm_publish_result *res)
{
    if (rq->nrows == 0)
        return BM_OK;
    struct bm_buf body;
    bm_buf_init(&body, BM_CW_MAX_BODY + 4096);
    bm_err rc = bm_buf_append_str(&body, "Action=PutMetricData&Version=2010-08-01&Namespace=");
    if (rc == BM_OK)
        rc = escape_into(&body, (struct bm_str){aws->cfg->cloudwatch_namespace,
                                                strlen(aws->cfg->cloudwatch_namespace)});
    size_t ngroups = rq->groups ? bm_agg_count(rq->groups) : 0;
    for (size_t i = 0; rc == BM_OK && i < ngroups; i++)
        rc = encode_group(&body, dims, bm_agg_at(rq->groups, i), (int)(i * METRICS) + 1);
    if (rc != BM_OK) {
        bm_buf_cleanup(&body);
        return rc;
    }
    enum outcome o = ngroups > 0 ? send_request(aws, &body, res) : SENT;
    bm_buf_cleanup(&body);
    if (o == SENT) {
        rc = ob->mark(ob->impl, rq->row_ids, rq->nrows, BM_OUTBOX_PUBLISHED, ngroups * METRICS,
                      ngroups > 0);
        res->requests += ngroups > 0;
        res->datums += ngroups * METRICS;
        res->rows_published += rq->nrows;
    } else if (o == REJECTED) {
        BM_LOG(BM_ERROR, "core", "cloudwatch_rejected", "CloudWatch refused datums; dropped",
               BM_KV_ERR(BM_E_PUBLISH), BM_KV_STR("detail", res->last_error_msg.text),
               BM_KV_INT("rows", (long long)rq->nrows));
        rc = ob->mark(ob->impl, rq->row_ids, rq->nrows, BM_OUTBOX_REJECTED, 0, 0);
        res->rows_rejected += rq->nrows;
    } else {
        rc = BM_E_PUBLISH;
    }
    request_reset(rq);
    return rc;
}

/* Adds row r to the request, flushing first when it would not fit. */
/* Encoded size of group g's five datums at the widest member numbers: an upper bound on what
 * it adds to a request body. */
static bm_err group_bytes(const struct bm_dimsets *dims, const struct bm_series_key *g,
                          const struct bm_counters *c, struct bm_buf *probe, size_t *out)
{
    struct bm_series s = {.key = *g, .c = *c};
    bm_buf_reset(probe);
    bm_err rc = encode_group(probe, dims, &s, BM_CW_MAX_DATUMS - METRICS + 1);
    *out = probe->len;
    return rc;
}

/* Adds row r to the request, flushing first when it would not fit. Only groups new to the
 * request are measured: the rest merge into datums already counted. */
static bm_err add_row(const struct bm_aws *aws, const struct bm_dimsets *dims,
                      const struct bm_outbox_ops *ob, struct request *rq,
                      const struct bm_outbox_row *r, struct bm_publish_result *res)
{
    struct bm_series_key gk[BM_DIMSETS_MAX];
    size_t gbytes[BM_DIMSETS_MAX] = {0};
    bool ok[BM_DIMSETS_MAX], is_new[BM_DIMSETS_MAX];
    size_t usable = 0, add_groups = 0, add_bytes = 0;
    struct bm_buf probe;
    bm_buf_init(&probe, 1 << 20);
    bm_err rc = BM_OK;
    for (int s = 0; rc == BM_OK && s < dims->n; s++) {
        ok[s] = group_key(dims, s, &r->key, &gk[s]);
        if (!ok[s]) {
            res->dimension_overflow++; /* BMAS-009: this set is skipped for this series */
            continue;
        }
        usable++;
        is_new[s] = rq->groups == NULL || !bm_agg_contains(rq->groups, &gk[s]);
        if (is_new[s]) {
            rc = group_bytes(dims, &gk[s], &r->c, &probe, &gbytes[s]);
            add_groups++;
            add_bytes += gbytes[s];
        }
    }
    if (rc == BM_OK && usable == 0)
        rc = ob->mark(ob->impl, &r->id, 1, BM_OUTBOX_REJECTED, 0, 0);
    if (rc != BM_OK || usable == 0)
        goto done;
    size_t have = rq->groups ? bm_agg_count(rq->groups) : 0;
    if (rq->nrows > 0 && ((have + add_groups) * DATUMS_PER_GROUP > BM_CW_MAX_DATUMS ||
                          rq->est_bytes + add_bytes > BM_CW_MAX_BODY - 256)) {
        if ((rc = flush_request(aws, dims, ob, rq, res)) != BM_OK)
            goto done;
        /* A fresh request: every group of this row is new to it. */
        for (int s = 0; rc == BM_OK && s < dims->n; s++) {
            if (ok[s] && !is_new[s]) {
                rc = group_bytes(dims, &gk[s], &r->c, &probe, &gbytes[s]);
                add_bytes += gbytes[s];
            }
        }
        if (rc != BM_OK)
            goto done;
    }
    if (rq->groups == NULL && (rq->groups = bm_agg_new(0)) == NULL) {
        rc = BM_E_NOMEM;
        goto done;
    }
    if (rq->nrows == rq->cap_rows) {
        size_t cap = rq->cap_rows ? rq->cap_rows * 2 : 256;
        uint64_t *ids = bm_realloc(rq->row_ids, cap * sizeof *ids);
        if (ids == NULL) {
            rc = BM_E_NOMEM;
            goto done;
        }
        rq->row_ids = ids;
        rq->cap_rows = cap;
    }
    for (int s = 0; rc == BM_OK && s < dims->n; s++)
        if (ok[s])
            rc = bm_agg_add(rq->groups, &gk[s], &r->c);
    if (rc == BM_OK) {
        rq->est_bytes += add_bytes;
        rq->row_ids[rq->nrows++] = r->id;
    }
done:
    bm_buf_cleanup(&probe);
    return rc;
}

bm_err bm_cw_publish(const struct bm_aws *aws, const struct bm_dimsets *dims,
                     const struct bm_outbox_ops *outbox, int64_t now, struct bm_publish_result *res)
{
    memset(res, 0, sizeof *res);
    struct request rq = {0};
    bm_err rc = BM_OK;
    uint64_t *drop = NULL;
    uint64_t cursor = 0;
    /* One pass over the outbox in id order; a request may span fetched batches, so calls are
     * as full as the limits allow (the rows' strings are copied into the request). */
    while (rc == BM_OK) {
        const struct bm_outbox_row *rows;
        size_t n = 0;
        rc = outbox->fetch(outbox->impl, cursor, FETCH_ROWS, &rows, &n);
        if (rc != BM_OK)
            break;
        if (n == 0) {
            outbox->release(outbox->impl);
            break;
        }
        size_t ndrop = 0;
        BM_FREE(drop);
        drop = bm_calloc(n, sizeof *drop);
        if (drop == NULL)
            rc = BM_E_NOMEM;
        for (size_t i = 0; rc == BM_OK && i < n; i++) {
            const struct bm_outbox_row *r = &rows[i];
            cursor = r->id > cursor ? r->id : cursor;
            if (r->key.bucket < now - TWO_WEEKS_S + 60)
                drop[ndrop++] = r->id; /* CloudWatch would refuse it forever */
            else if (r->key.bucket <= now + AHEAD_S - 60)
                rc = add_row(aws, dims, outbox, &rq, r, res);
            /* else: from the future (clock skew in the logs); it waits until it is not. */
        }
        if (rc == BM_OK && ndrop > 0) {
            BM_LOG(BM_WARN, "core", "cloudwatch_too_old",
                   "dropping deltas older than CloudWatch accepts (two weeks)",
                   BM_KV_INT("rows", (long long)ndrop));
            rc = outbox->mark(outbox->impl, drop, ndrop, BM_OUTBOX_DROPPED, 0, 0);
            res->rows_dropped += ndrop;
        }
        outbox->release(outbox->impl);
    }
    if (rc == BM_OK)
        rc = flush_request(aws, dims, outbox, &rq, res);
    bm_free(drop);
    bm_free(rq.row_ids);
    request_reset(&rq);
    if (rc != BM_OK)
        res->last_error = rc;
    return rc;
}
