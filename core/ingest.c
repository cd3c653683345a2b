/* ingest.c: one log object's pipeline: bytes -> gunzip -> framer -> record -> classify ->
 * delta aggregate. Memory is bounded by the line cap and the series cap, never by the object
 * (docs/architecture.md, step 4: stream, never buffer an object). */
#include "core/core_int.h"

#include <stdio.h>
#include <string.h>

/* Default series cap per object: a real hour of logs holds a few thousand (minute x model x
 * region x operation); 100k keeps an adversarial object under ~30 MB. */
#define DEFAULT_MAX_SERIES 100000
/* LOG_LEVEL=DEBUG names each skipped record, up to this many per object; one line sums up the
 * rest, so a broken object of a million lines cannot flood the log. */
#define DEBUG_SKIPS_MAX 20
/* An object whose output passes this size moves its parsing to a second thread (pipe.c): below
 * it a thread costs more than it saves. */
#define PIPE_AFTER (256 * 1024)

struct bm_ingest {
    struct bm_ingest_opts o;
    struct bm__gunzip *gz;
    struct bm__framer fr;
    struct bm_agg *agg;
    struct bm_ingest_stats st;
    struct bm_str key_region; /* fallback source region from the S3 key */
    char *key;
    const char *bucket; /* for log lines only; borrowed */
    bm_err fatal;       /* an object-level failure raised inside a callback */
    struct bm__record rec;
    /* Parsing on a second thread (BMAS_INGEST_THREADS=2): from the moment it starts, that
     * thread alone touches fr, rec, agg and the record counts of st, until it is joined. */
    struct bm__pipe *pipe;
    bool pipe_tried;
};

void bm_ingest_opts_init(struct bm_ingest_opts *o, const struct bm_config *cfg,
                         const struct bm_app_map *app_map)
{
    memset(o, 0, sizeof *o);
    o->max_line_bytes = cfg->max_line_bytes;
    o->max_object_bytes = cfg->max_object_bytes;
    o->bucket_seconds = cfg->bucket_seconds;
    o->max_series = DEFAULT_MAX_SERIES;
    (void)bm_inflate_parse(cfg->inflate, &o->inflate); /* checked by bm_config_load */
    o->threads = (int)cfg->ingest_threads;
    o->cls.cross_region = cfg->enable_cross_region_detection;
    o->cls.global_cross_region = cfg->enable_global_cross_region;
    o->cls.app_map = app_map;
    o->allowed_regions = cfg->allowed_inference_regions;
}

/* Whether region is one of the comma list's items (checked at configuration load). */
static bool region_listed(const char *list, struct bm_str region)
{
    struct bm_str it;
    for (const char *c = list; bm_list_next(&c, &it);)
        if (it.len == region.len && memcmp(it.p, region.p, it.len) == 0)
            return true;
    return false;
}

struct bm_ingest *bm_ingest_new(const struct bm_ingest_opts *o, const char *key)
{
    struct bm_ingest *in = bm_calloc(1, sizeof *in);
    if (in == NULL)
        return NULL;
    in->o = *o;
    in->st.threads = 1;
    if (in->o.bucket_seconds <= 0)
        in->o.bucket_seconds = 60;
    bm__framer_init(&in->fr, (size_t)o->max_line_bytes);
    in->gz = bm__gunzip_new(o->max_object_bytes, o->inflate);
    in->agg = bm_agg_new(o->max_series);
    in->key = key ? bm_strdup(key) : NULL;
    if (in->gz == NULL || in->agg == NULL || (key != NULL && in->key == NULL)) {
        bm_ingest_free(in);
        return NULL;
    }
    if (in->key != NULL && !bm_region_from_key(in->key, strlen(in->key), &in->key_region))
        in->key_region = (struct bm_str){NULL, 0};
    return in;
}

void bm_ingest_free(struct bm_ingest *in)
{
    if (in == NULL)
        return;
    bm__pipe_abort(in->pipe);
    bm__gunzip_free(in->gz);
    bm__framer_cleanup(&in->fr);
    bm_agg_free(in->agg);
    bm_free(in->key);
    bm_free(in);
}

/* Counts a record-level problem under its wire code. */
static void count_error(struct bm_ingest *in, bm_err rc)
{
    int idx = bm_err_wire_index(rc);
    if (idx >= 0)
        in->st.errors[idx]++;
}

void bm_ingest_set_bucket(struct bm_ingest *in, const char *bucket)
{
    in->bucket = bucket;
}

/* Counts a skipped record and remembers the first one, for a message a person can act on. */
static void count_invalid(struct bm_ingest *in, bm_err rc, const struct bm_errmsg *em)
{
    count_error(in, rc);
    if (in->st.invalid < DEBUG_SKIPS_MAX && bm_log_enabled(BM_DEBUG))
        BM_LOG(BM_DEBUG, "core", "record_skipped", em != NULL ? em->text : bm_err_str(rc),
               BM_KV_STR("bucket", in->bucket), BM_KV_STR("key", in->key),
               BM_KV_INT("record", (long long)(in->st.records + in->st.invalid + 1)),
               BM_KV_ERR(rc));
    if (in->st.first_error == BM_OK) {
        in->st.first_error = rc;
        in->st.first_error_record = in->st.records + in->st.invalid + 1;
        if (em != NULL)
            in->st.first_error_msg = *em;
        else
            bm_errmsg_set(&in->st.first_error_msg, rc, "%s", bm_err_str(rc));
    }
    in->st.invalid++;
}

static struct bm_str slice(struct bm__slice s)
{
    return (struct bm_str){s.p, s.len};
}

static int64_t floor_to(int64_t t, long width)
{
    int64_t r = t % width;
    return t - (r < 0 ? r + width : r);
}

static bm_err on_record(void *ctx, const char *line, size_t len)
{
    struct bm_ingest *in = ctx;
    struct bm__record *r = &in->rec;
    struct bm_errmsg em;
    if (line == NULL) {
        bm_errmsg_set(&em, BM_E_LINE_TOO_LONG, "record longer than BMAS_MAX_LINE_BYTES (%llu)",
                      (unsigned long long)in->o.max_line_bytes);
        count_invalid(in, BM_E_LINE_TOO_LONG, &em);
        return BM_OK;
    }
    bm_err rc = bm__record_parse(line, len, &in->o.attrs, r, &em);
    if (rc != BM_OK) {
        count_invalid(in, rc, &em);
        return BM_OK;
    }
    int64_t ts;
    if (!bm_time_parse(r->timestamp.p, r->timestamp.len, &ts)) {
        bm_errmsg_set(&em, BM_E_LOG_FORMAT, "timestamp \"%.*s\" is not RFC 3339",
                      (int)(r->timestamp.len > 64 ? 64 : r->timestamp.len), r->timestamp.p);
        count_invalid(in, BM_E_LOG_FORMAT, &em);
        return BM_OK;
    }
    struct bm_classification cl;
    if (bm_classify(r->model_id.p, r->model_id.len, &in->o.cls, &cl) != BM_OK) {
        bm_errmsg_set(&em, BM_E_LOG_FORMAT, "modelId \"%.*s\" is a malformed ARN",
                      (int)(r->model_id.len > 128 ? 128 : r->model_id.len), r->model_id.p);
        count_invalid(in, BM_E_LOG_FORMAT, &em);
        return BM_OK;
    }
    /* Source region: the record, else the modelId ARN, else the S3 key (docs/formats.md 2.3). */
    struct bm_str src = slice(r->region);
    if (src.len == 0)
        src = cl.arn_region;
    if (src.len == 0)
        src = in->key_region;
    if (src.len == 0) {
        bm_errmsg_set(&em, BM_E_REGION, "no region in the record, its modelId or the key");
        count_invalid(in, BM_E_REGION, &em);
        return BM_OK;
    }
    struct bm_str inf = slice(r->inference_region);
    if (inf.len == 0)
        inf = src;
    if (cl.app_unmapped)
        count_error(in, BM_E_NO_PROFILE); /* informational: counted under the profile id */
    /* A global profile may be served in any commercial Region by design: never a violation. */
    bool violation = false;
    if (in->o.allowed_regions != NULL && in->o.allowed_regions[0] != '\0' &&
        cl.type != BM_PT_GLOBAL && !region_listed(in->o.allowed_regions, inf)) {
        int wi = bm_err_wire_index(BM_E_RESIDENCY);
        if (in->st.errors[wi] == 0) {
            in->st.first_violation_record = in->st.records + in->st.invalid + 1;
            snprintf(in->st.first_violation, sizeof in->st.first_violation, "%.*s in %.*s",
                     (int)(cl.model_id.len > 128 ? 128 : cl.model_id.len), cl.model_id.p,
                     (int)(inf.len > 48 ? 48 : inf.len), inf.p);
        }
        count_error(in, BM_E_RESIDENCY);
        violation = true;
    }
    struct bm_series_key k = {
        .bucket = floor_to(ts, in->o.bucket_seconds),
        .type = cl.type,
        .model_id = cl.model_id,
        .profile_id = cl.profile_id,
        .source_region = src,
        .inference_region = inf,
        .operation = slice(r->operation),
    };
    for (int i = 0; i < in->o.attrs.n; i++)
        k.attr[i] = slice(r->attr[i]);
    struct bm_counters c;
    bm_counters_one(&c, r->input_tokens, r->output_tokens, r->cache_read_tokens,
                    r->cache_write_tokens);
    /* Priced by the foundation model and the source region: Bedrock bills cross-region
     * inference at the source Region's price. */
    const struct bm_price *pr = bm_prices_find(in->o.prices, cl.model_id, src, cl.type);
    const uint64_t tokens[4] = {r->input_tokens, r->output_tokens, r->cache_read_tokens,
                                r->cache_write_tokens};
    if (pr == NULL || !bm_price_cost(pr, tokens, &c.cost))
        c.unpriced = 1;
    c.violations = violation ? 1 : 0;
    rc = bm_agg_add(in->agg, &k, &c);
    if (rc != BM_OK)
        return rc; /* series cap or OOM: the object cannot be counted exactly */
    in->st.records++;
    in->st.invocations_by_type[cl.type]++;
    return BM_OK;
}

static bm_err frame_bytes(void *ctx, const char *data, size_t len)
{
    struct bm_ingest *in = ctx;
    return bm__framer_feed(&in->fr, data, len, on_record, in);
}

/* Inflated bytes: framed here, or past PIPE_AFTER handed to the parsing thread when there is
 * a CPU to spare (else the object stays on this thread). */
static bm_err on_bytes(void *ctx, const char *data, size_t len)
{
    struct bm_ingest *in = ctx;
    if (in->pipe == NULL && !in->pipe_tried && in->o.threads > 1 && bm__gunzip_is_gzip(in->gz) &&
        bm__gunzip_out_bytes(in->gz) > PIPE_AFTER) {
        in->pipe_tried = true;
        if (bm__pipe_start(frame_bytes, in, &in->pipe) == BM_E_NOMEM)
            return BM_E_NOMEM;
        in->st.threads = in->pipe != NULL ? 2 : 1;
    }
    return in->pipe != NULL ? bm__pipe_write(in->pipe, data, len) : frame_bytes(in, data, len);
}

/* Ends the parsing thread, if any: its first error unless one came before. */
static bm_err join_pipe(struct bm_ingest *in, bm_err rc, bool discard)
{
    if (in->pipe == NULL)
        return rc;
    bm_err prc = BM_OK;
    if (discard)
        bm__pipe_abort(in->pipe);
    else
        prc = bm__pipe_close(in->pipe);
    in->pipe = NULL;
    return rc != BM_OK ? rc : prc;
}

bm_err bm_ingest_feed(struct bm_ingest *in, const void *data, size_t len)
{
    if (in->fatal != BM_OK)
        return in->fatal;
    in->st.bytes_in += len;
    bm_err rc = bm__gunzip_feed(in->gz, data, len, on_bytes, in);
    if (rc != BM_OK) /* the object failed: stop the parsing thread before anyone reads stats */
        in->fatal = join_pipe(in, rc, true);
    return rc;
}

bm_err bm_ingest_finish(struct bm_ingest *in)
{
    if (in->fatal != BM_OK)
        return in->fatal;
    bm_err rc = bm__gunzip_finish(in->gz, on_bytes, in);
    rc = join_pipe(in, rc, rc != BM_OK);
    if (rc == BM_OK)
        rc = bm__framer_finish(&in->fr, on_record, in);
    in->st.gzip = bm__gunzip_is_gzip(in->gz);
    in->st.bytes_out = bm__gunzip_out_bytes(in->gz);
    if (in->st.invalid > DEBUG_SKIPS_MAX)
        BM_LOG(BM_DEBUG, "core", "records_skipped_more",
               "more skipped records in this object than are logged one by one",
               BM_KV_STR("bucket", in->bucket), BM_KV_STR("key", in->key),
               BM_KV_INT("logged", DEBUG_SKIPS_MAX),
               BM_KV_INT("notLogged", (long long)(in->st.invalid - DEBUG_SKIPS_MAX)));
    if (rc != BM_OK)
        in->fatal = rc;
    return rc;
}

const struct bm_ingest_stats *bm_ingest_stats(const struct bm_ingest *in)
{
    return &in->st;
}

const struct bm_agg *bm_ingest_agg(const struct bm_ingest *in)
{
    return in->agg;
}
