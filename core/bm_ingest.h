/* bm_ingest.h: the log pipeline and its data model (libbm_core): classification of a
 * modelId, series keys and aggregates, prices, the streaming ingest of one object, and the
 * sample log writer. Builds on bm_rt.h. */
#ifndef BM_INGEST_H
#define BM_INGEST_H

#include "core/bm_rt.h"

#include <string.h>

/* ------------------------------------------------------------------------------------------ */
/* Classification of a record's modelId (docs/formats.md section 2). */
enum bm_profile_type {
    BM_PT_ON_DEMAND,    /* bare foundation model id or foundation-model/ ARN */
    BM_PT_CROSS_REGION, /* geographic system profile: us., eu., apac., any new geo prefix */
    BM_PT_GLOBAL,       /* global. system profile */
    BM_PT_APPLICATION,  /* application-inference-profile/ ARN */
    BM_PT_PROVISIONED,  /* provisioned-model/ ARN (Provisioned Throughput) */
    BM_PT__COUNT
};
/* "OnDemand", "CrossRegion", "GlobalCrossRegion", "Application", "Provisioned". */
const char *bm_profile_type_name(enum bm_profile_type t);
bool bm_profile_type_parse(const char *s, size_t len, enum bm_profile_type *out);

/* A borrowed byte string (not necessarily NUL-terminated). */
struct bm_str {
    const char *p;
    size_t len;
};
/* The whole of the C string s as a bm_str (borrowed). */
static inline struct bm_str bm_str_of(const char *s)
{
    return (struct bm_str){s, strlen(s)};
}
/* The next item of a comma list ("a,b,c") at *cursor into *item (borrowed, untrimmed), the
 * cursor moved past it; false at the end:
 *   for (const char *c = list; bm_list_next(&c, &item);) ... */
static inline bool bm_list_next(const char **cursor, struct bm_str *item)
{
    const char *p = *cursor;
    if (*p == '\0')
        return false;
    const char *comma = strchr(p, ',');
    item->p = p;
    item->len = comma ? (size_t)(comma - p) : strlen(p);
    *cursor = comma ? comma + 1 : p + item->len;
    return true;
}

/* Application profile id -> model id, from BMAS_APP_PROFILE_MAP ("id=model,id=model"; an id
 * may also be given as the full profile ARN). */
struct bm_app_map;
/* Parses spec (may be empty); BM_E_CONFIG with em naming the bad pair. Caller frees. */
bm_err bm_app_map_parse(const char *spec, struct bm_app_map **out, struct bm_errmsg *em);
void bm_app_map_free(struct bm_app_map *m);

struct bm_classify_opts {
    bool cross_region;        /* ENABLE_CROSS_REGION_DETECTION */
    bool global_cross_region; /* ENABLE_GLOBAL_CROSS_REGION */
    const struct bm_app_map *app_map;
};
struct bm_classification {
    enum bm_profile_type type;
    struct bm_str model_id;   /* foundation model, ARN and geo prefix removed */
    struct bm_str profile_id; /* the id as the caller used it, ARN prefix removed */
    struct bm_str arn_region; /* region field of an ARN modelId, else empty */
    bool app_unmapped;        /* Application profile with no BMAS_APP_PROFILE_MAP entry */
};
/* Classifies id (len bytes). Slices in out point into id or the app map. BM_E_LOG_FORMAT for
 * an empty id or a malformed ARN. Pure; thread-safe. */
bm_err bm_classify(const char *id, size_t len, const struct bm_classify_opts *o,
                   struct bm_classification *out);
/* The <region> segment after BedrockModelInvocationLogs/ in an S3 key, if it looks like a
 * region; false otherwise. */
bool bm_region_from_key(const char *key, size_t len, struct bm_str *out);
/* Why an S3 object is not a log to ingest, or BM_KEY_LOG. */
enum bm_key_kind { BM_KEY_LOG, BM_KEY_DATA_BODY, BM_KEY_PERMISSION_CHECK, BM_KEY_FOLDER };
enum bm_key_kind bm_key_kind(const char *key, size_t len);
const char *bm_key_kind_name(enum bm_key_kind k);

/* ------------------------------------------------------------------------------------------ */
/* Aggregates: counters per (bucket, series). */
/* Attribution keys (BMAS_ATTRIBUTION_KEYS): requestMetadata keys, or "identity" for the
 * caller's identity.arn, each one more part of the series key. */
#define BM_ATTR_MAX 3
struct bm_series_key {
    int64_t bucket; /* bucket start, epoch seconds; BM_NO_BUCKET when not grouped by time */
    enum bm_profile_type type;
    struct bm_str model_id, profile_id, source_region, inference_region, operation;
    struct bm_str attr[BM_ATTR_MAX]; /* the attribution keys' values in their order; "" absent */
};
#define BM_NO_BUCKET INT64_MIN
/* Per metric: sum, and min/max per invocation (CloudWatch StatisticValues). */
struct bm_stat {
    uint64_t sum, min, max;
};
/* Money in integers, never floats (sums stay exact): whole micro-dollars plus the
 * pico-dollars below one micro-dollar (pico < BM_PICO_PER_MICRO once normalised). */
#define BM_PICO_PER_MICRO 1000000ULL
struct bm_cost {
    uint64_t micro, pico;
};
/* dst += src, carrying the pico-dollars into micro-dollars. */
void bm_cost_add(struct bm_cost *dst, const struct bm_cost *src);
/* The cost rounded to the nearest micro-dollar (half up). */
uint64_t bm_cost_micro_rounded(const struct bm_cost *c);
/* Appends that rounded cost in dollars as a JSON number in its shortest form ("0", "1.5",
 * "0.000123"): exact decimal digits of the integer, no float involved. */
bm_err bm_cost_append_usd(struct bm_buf *b, const struct bm_cost *c);
struct bm_counters {
    uint64_t invocations;
    struct bm_stat input, output, cache_read, cache_write;
    struct bm_cost cost; /* of the priced invocations (BMAS_PRICES) */
    uint64_t unpriced;   /* invocations no price row covered: counted, never guessed */
    uint64_t violations; /* invocations served outside BMAS_ALLOWED_INFERENCE_REGIONS */
};
/* Counters of one invocation. */
void bm_counters_one(struct bm_counters *c, uint64_t in, uint64_t out, uint64_t cache_read,
                     uint64_t cache_write);
/* dst += src; min/max combine. */
void bm_counters_merge(struct bm_counters *dst, const struct bm_counters *src);

struct bm_series {
    struct bm_series_key key; /* strings owned by the aggregate, NUL-terminated */
    struct bm_counters c;
};
struct bm_agg;
/* An empty aggregate holding at most max_series series (0: no cap). NULL on OOM. */
struct bm_agg *bm_agg_new(size_t max_series);
void bm_agg_free(struct bm_agg *a);
/* Adds c into the series k (copying k's strings on first sight). BM_E_TOO_LARGE past the
 * series cap, BM_E_NOMEM; on failure the aggregate is unchanged. */
bm_err bm_agg_add(struct bm_agg *a, const struct bm_series_key *k, const struct bm_counters *c);
bm_err bm_agg_merge(struct bm_agg *dst, const struct bm_agg *src);
/* True when series k is in the aggregate. */
bool bm_agg_contains(const struct bm_agg *a, const struct bm_series_key *k);
size_t bm_agg_count(const struct bm_agg *a);
/* Series i in insertion order (0 <= i < count). Valid until the next add or free. */
const struct bm_series *bm_agg_at(const struct bm_agg *a, size_t i);
/* Sum of all series. */
void bm_agg_totals(const struct bm_agg *a, struct bm_counters *out);

/* group_by fields of /aggregates and `bmas ingest --group-by`. */
enum bm_group {
    BM_G_MINUTE,
    BM_G_MODEL_ID,
    BM_G_PROFILE_TYPE,
    BM_G_PROFILE_ID,
    BM_G_SOURCE_REGION,
    BM_G_INFERENCE_REGION,
    BM_G_OPERATION,
    BM_G_ATTR1, /* the attribution keys, in BMAS_ATTRIBUTION_KEYS order: attr.<key> */
    BM_G_ATTR2,
    BM_G_ATTR3,
    BM_G__COUNT
};
/* The attribution keys' names (BMAS_ATTRIBUTION_KEYS), n of them. Borrowed strings. */
struct bm_attr_keys {
    int n;
    const char *name[BM_ATTR_MAX];
};
struct bm_group_by {
    int n;
    enum bm_group f[BM_G__COUNT];
    struct bm_attr_keys attrs; /* names of BM_G_ATTR1.. in output ("attr.<name>") */
};
#define BM_GROUP_BY_DEFAULT "model_id,profile_type,source_region,inference_region"
/* Parses a comma list ("" = no grouping: one total row). BM_E_BAD_REQUEST naming the field. */
bm_err bm_group_by_parse(const char *s, struct bm_group_by *out, struct bm_errmsg *em);
/* The same, also taking "attr.<key>" for each attribution key of keys (may be NULL: none);
 * out borrows keys' names. */
bm_err bm_group_by_parse_attrs(const char *s, const struct bm_attr_keys *keys,
                               struct bm_group_by *out, struct bm_errmsg *em);
/* Splits BMAS_ATTRIBUTION_KEYS (spec, borrowed by out's names: they point into buf, a copy the
 * caller keeps) into at most BM_ATTR_MAX keys of letters, digits, '_', '-', '.'.
 * BM_E_CONFIG naming the variable otherwise. */
bm_err bm_attr_keys_parse(const char *spec, char *buf, size_t cap, struct bm_attr_keys *out,
                          struct bm_errmsg *em);
const char *bm_group_name(enum bm_group g);
/* A new aggregate with src's series merged by the fields in g only (others emptied; the
 * bucket truncated to the minute or BM_NO_BUCKET). */
bm_err bm_agg_regroup(const struct bm_agg *src, const struct bm_group_by *g, struct bm_agg **out);
/* Sorts series by the fields of g in order (g may be NULL), then by the rest, for stable
 * output. BM_E_NOMEM leaves the order unchanged. */
bm_err bm_agg_sort(struct bm_agg *a, const struct bm_group_by *g);
/* Appends the GET /aggregates document {"from","to","group_by","rows","totals"} for an
 * aggregate already regrouped by g. from/to may be BM_NO_BUCKET (written as null). */
bm_err bm_agg_write_json(const struct bm_agg *a, const struct bm_group_by *g, int64_t from,
                         int64_t to, struct bm_buf *b);
/* Appends a fixed-width text table with a totals line, for people. */
bm_err bm_agg_write_table(const struct bm_agg *a, const struct bm_group_by *g, struct bm_buf *b);

/* ------------------------------------------------------------------------------------------ */
/* Prices (BMAS_PRICES, core/price.c): a CSV of USD per million tokens per model, optionally
 * per source region and profile type, held as integer pico-dollars per token. */
struct bm_price {
    char *model_id;
    char *region;                 /* "" matches any source region */
    size_t model_len, region_len; /* their lengths: compared first, once per record */
    enum bm_profile_type type;    /* BM_PT__COUNT matches any profile type */
    uint64_t pico[4];             /* per token: input, output, cache read, cache write */
    bool has[4];                  /* an empty cell: that price is unknown */
    unsigned line;                /* in the file, for messages */
};
struct bm_prices {
    struct bm_price *v;
    size_t n;
};
/* Parses the CSV text (len bytes) named name (for messages): '#' comment lines and blank lines
 * are skipped, the first other line is the header (model_id, input_per_mtok,
 * output_per_mtok, cache_read_per_mtok, cache_write_per_mtok in any order, optionally region
 * and profile_type), prices are decimals with at most 6 fractional digits. BM_E_CONFIG with
 * em naming name:line and the problem; BM_E_NOMEM. Caller frees *out with bm_prices_free. */
bm_err bm_prices_parse(const char *text, size_t len, const char *name, struct bm_prices **out,
                       struct bm_errmsg *em);
/* Reads and parses the file at path (at most 4 MB): BM_E_CONFIG also when it cannot be read. */
bm_err bm_prices_load(const char *path, struct bm_prices **out, struct bm_errmsg *em);
void bm_prices_free(struct bm_prices *p);
/* The most specific row for model_id served from source region src as profile type t: a row
 * naming the region beats one naming the profile type, which beats one naming neither; NULL
 * when none matches (p may be NULL). Pure; thread-safe. */
const struct bm_price *bm_prices_find(const struct bm_prices *p, struct bm_str model_id,
                                      struct bm_str src, enum bm_profile_type t);
/* The cost of one invocation's tokens (input, output, cache read, cache write) at price pr:
 * false (out untouched) when a token count is non-zero and its price unknown, or on overflow. */
bool bm_price_cost(const struct bm_price *pr, const uint64_t tokens[4], struct bm_cost *out);

/* ------------------------------------------------------------------------------------------ */
/* Streaming ingest of one log object: bytes in (any chunking), a delta aggregate out. */
/* The inflate engine (BMAS_INFLATE): ISA-L when the build has it (libisal found at build
 * time), else zlib; both give the same bytes, or the same BM_E_GZIP on corrupt input. */
enum bm_inflate { BM_INFLATE_AUTO, BM_INFLATE_ZLIB, BM_INFLATE_ISAL };
bool bm_inflate_has_isal(void);
/* "auto", "zlib", or "isal" when the build has it; false for anything else. */
bool bm_inflate_parse(const char *name, enum bm_inflate *out);
struct bm_ingest_opts {
    uint64_t max_line_bytes;   /* BMAS_MAX_LINE_BYTES */
    uint64_t max_object_bytes; /* BMAS_MAX_OBJECT_BYTES, uncompressed */
    long bucket_seconds;       /* BMAS_BUCKET_SECONDS */
    size_t max_series;         /* distinct series per object (memory bound) */
    enum bm_inflate inflate;   /* BMAS_INFLATE */
    int threads;               /* BMAS_INGEST_THREADS: 2 parses on a second thread; 0 or 1 not */
    struct bm_classify_opts cls;
    const struct bm_prices *prices; /* BMAS_PRICES, borrowed; NULL: every record unpriced */
    /* BMAS_ALLOWED_INFERENCE_REGIONS (borrowed; NULL or "": no check): a record served in
     * another inference Region, global profiles excepted, is a residency violation. */
    const char *allowed_regions;
    /* BMAS_ATTRIBUTION_KEYS (names borrowed; n = 0: none): series gain their values. */
    struct bm_attr_keys attrs;
};
/* Options from the configuration; app_map is borrowed and must outlive the ingests. */
void bm_ingest_opts_init(struct bm_ingest_opts *o, const struct bm_config *cfg,
                         const struct bm_app_map *app_map);

struct bm_ingest_stats {
    uint64_t bytes_in;  /* as received (compressed) */
    uint64_t bytes_out; /* after gunzip */
    bool gzip;
    uint64_t records; /* aggregated */
    uint64_t invalid; /* skipped: malformed, bad tokens, no region, over the line cap */
    uint64_t invocations_by_type[BM_PT__COUNT];
    /* Per wire code, record level: BMAS-003/007/008/010 for skipped records, BMAS-006 for
     * application-profile records with no model mapping and BMAS-025 for residency violations
     * (both counted, not skipped). */
    uint64_t errors[BM_ERR_WIRE_N];
    /* The first residency violation: its record number and "<model_id> in <region>". */
    uint64_t first_violation_record;
    char first_violation[192];
    /* The first skipped record, for a helpful message ("record 17: ..."). */
    uint64_t first_error_record;
    bm_err first_error;
    struct bm_errmsg first_error_msg;
    int threads; /* 2 when the object was parsed on a second thread (BMAS_INGEST_THREADS) */
};
struct bm_ingest;
/* key (may be NULL) is the object's S3 key or file path: the last fallback for the source
 * region. NULL on OOM. */
struct bm_ingest *bm_ingest_new(const struct bm_ingest_opts *o, const char *key);
void bm_ingest_free(struct bm_ingest *in);
/* Names the object's bucket in the ingest's DEBUG lines (one per skipped record, the first 20
 * of an object, then one line with the number left out). Borrowed: it must outlive in. */
void bm_ingest_set_bucket(struct bm_ingest *in, const char *bucket);
/* Feeds the next chunk. Record-level problems are counted in the stats and do not fail the
 * object; a returned error (BM_E_GZIP, BM_E_INFLATE_CAP, BM_E_TOO_LARGE for the series cap,
 * BM_E_NOMEM) fails the whole object, whose delta must then be discarded. */
bm_err bm_ingest_feed(struct bm_ingest *in, const void *data, size_t len);
/* Ends the object: flushes a last unterminated record; BM_E_GZIP when truncated. */
bm_err bm_ingest_finish(struct bm_ingest *in);
const struct bm_ingest_stats *bm_ingest_stats(const struct bm_ingest *in);
/* The object's delta; owned by the ingest. */
const struct bm_agg *bm_ingest_agg(const struct bm_ingest *in);

/* ------------------------------------------------------------------------------------------ */
/* Sample Bedrock invocation logs (core/sample.c, `bmas sample`): realistic records of every
 * modelId shape, with the writer's own totals, kept from the numbers it chose. */
enum { BM_SAMPLE_TYPES = 4 }; /* OnDemand, CrossRegion, GlobalCrossRegion, Application */
struct bm_sample_opts {
    int64_t start;       /* epoch seconds of the first record */
    int64_t span;        /* seconds the records spread over, evenly */
    uint64_t seed;       /* the same seed and options give the same bytes */
    uint64_t records;    /* records to write; 0: write `bytes` uncompressed bytes instead */
    uint64_t bytes;      /* uncompressed size to reach (last record crosses it) */
    const char *account; /* 12 digits, in records and the key */
    const char *region;  /* the source Region of every record, and the key's */
    bool plain;          /* JSON lines instead of gzip */
};
struct bm_sample_totals {
    uint64_t records, bytes, invocations, input_tokens, output_tokens, cache_read_tokens,
        cache_write_tokens;
    /* Per profile type as README's table classifies the ids (index: bm_sample_type_name). */
    uint64_t type_invocations[BM_SAMPLE_TYPES], type_input_tokens[BM_SAMPLE_TYPES],
        type_output_tokens[BM_SAMPLE_TYPES];
};
/* Receives the object's bytes in order; a non-BM_OK return stops the writer with that code. */
typedef bm_err (*bm_sample_write_fn)(void *ctx, const void *p, size_t len);
/* Defaults: 100 records over the 300 s before now, account 123456789012, us-east-1, gzip. */
void bm_sample_opts_init(struct bm_sample_opts *o, int64_t now);
/* Writes one object through fn and fills *out with its totals. BM_E_CONFIG on options that
 * make no object, BM_E_NOMEM, or fn's code. Thread-safe (no shared state). */
bm_err bm_sample_write(const struct bm_sample_opts *o, bm_sample_write_fn fn, void *ctx,
                       struct bm_sample_totals *out, struct bm_errmsg *em);
/* Appends the key Bedrock would deliver the object under (AWSLogs/ACCOUNT/
 * BedrockModelInvocationLogs/REGION/YYYY/MM/DD/HH/YYYYMMDDTHHMMSSZ_<hex>.json.gz, stamped at
 * the end of the span; the hex follows from seed and time). */
bm_err bm_sample_key(const struct bm_sample_opts *o, struct bm_buf *key);
/* Appends the options (seed, start, span, region) and totals as one JSON line, with "key"
 * when key is non-NULL. */
bm_err bm_sample_totals_json(const struct bm_sample_opts *o, const struct bm_sample_totals *t,
                             const char *key, struct bm_buf *b);
/* "OnDemand", "CrossRegion", "GlobalCrossRegion", "Application"; "" out of range. */
const char *bm_sample_type_name(int i);

/* ---- The aggregates in GET /metrics (metrics.c; the rest of the metrics is in bm_rt.h) ---- */
/* Appends the aggregate counters (bmas_invocations_total, bmas_input_tokens_total, ...) of a,
 * which must be grouped by profile type, model, source and inference Region: one series per
 * row for the first max_series rows (0: no cap), the rest folded into one series whose labels
 * are all "other"; *folded (may be NULL) gets how many rows were folded. */
bm_err bm_metrics_write_aggs(const struct bm_agg *a, size_t max_series, struct bm_buf *b,
                             size_t *folded);

#endif
