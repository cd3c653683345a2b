/* sample.c: writes realistic Bedrock model-invocation log objects (`bmas sample`, `make run`,
 * the compose feeder, the benchmark) and keeps its own totals of what it wrote, counted from
 * the numbers it chose, never by reading the output back, so tests can hold bmas to them. */
#include "core/core_int.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#define REC_MAX (64 * 1024)
#define OUT_CHUNK (64 * 1024)

/* xorshift64*: deterministic for a seed, so a seed names the same bytes on every machine. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static unsigned pick(uint64_t *s, unsigned n)
{
    return (unsigned)(rnd(s) % n);
}

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static const char *const words[] = {
    "the",        "customer",  "cannot",    "reset",   "password", "after",  "migration",
    "please",     "summarise", "ticket",    "invoice", "refund",   "policy", "latency",
    "region",     "model",     "inference", "profile", "token",    "budget", "quarterly",
    "report",     "analysis",  "of",        "and",     "with",     "for",    "deployment",
    "kubernetes", "cluster",   "database",  "query",
};
/* UTF-8 fragments (raw, as Bedrock's Java writer emits them) and JSON escapes (as other
 * writers do), so readers meet both in string bodies they skip. */
static const char *const utf8[] = {
    "caf\xC3\xA9",
    "na\xC3\xAFve",
    "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E",
    "\xD0\xBF\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82",
    "\xF0\x9F\x9A\x80",
    ("\xE2\x82\xAC" /* split: "\xAC42" would be one escape */ "42"),
};
static const char *const escapes[] = {"\\n",        "\\\"quoted\\\"",  "\\\\path\\\\to",
                                      "\\t",        "\\u00e9t\\u00e9", "\\ud83d\\ude00",
                                      "\\/api\\/v1"};

/* The modelId shapes of docs/formats.md section 2. {r} stands for the source Region, {a} for
 * the account, {g} for the geography prefix of that Region (a geographic profile can only be called
 * from a Region of its geography, so each object's profiles match its Region). */
enum shape { ON_DEMAND, FM_ARN, GEO, GEO_ARN, GLOBAL, APP };
/* Which cache counts a model's records carry, as Bedrock's prompt caching gives them: none for
 * models without it (Llama, Claude 3 Haiku), reads only for Nova (its caching is automatic), both
 * for the Claude models that have it (and the application profiles, which make run maps to
 * them). A record with cache tokens of a model that has none would be priced as unknown. */
enum caching { CACHE_NONE, CACHE_READS, CACHE_BOTH };
static const struct {
    enum shape shape;
    enum caching caching;
    const char *fmt;
} models[] = {
    {ON_DEMAND, CACHE_BOTH, "anthropic.claude-3-5-haiku-20241022-v1:0"},
    {ON_DEMAND, CACHE_READS, "amazon.nova-lite-v1:0"},
    {ON_DEMAND, CACHE_NONE, "meta.llama3-1-70b-instruct-v1:0"},
    {FM_ARN, CACHE_NONE,
     "arn:aws:bedrock:{r}::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"},
    {GEO, CACHE_BOTH, "{g}.anthropic.claude-sonnet-4-5-20250929-v1:0"},
    {GEO, CACHE_READS, "{g}.amazon.nova-pro-v1:0"},
    {GEO_ARN, CACHE_BOTH,
     "arn:aws:bedrock:{r}:{a}:inference-profile/{g}.anthropic.claude-haiku-4-5-20251001-v1:0"},
    {GLOBAL, CACHE_BOTH, "global.anthropic.claude-opus-4-5-20251101-v1:0"},
    {GLOBAL, CACHE_BOTH, "global.anthropic.claude-sonnet-4-5-20250929-v1:0"},
    {APP, CACHE_BOTH, "arn:aws:bedrock:{r}:{a}:application-inference-profile/a1b2c3d4e5f6"},
    {APP, CACHE_BOTH, "arn:aws:bedrock:{r}:{a}:application-inference-profile/k7m2p9q4r8s1"},
};
static const char *const ops[] = {"Converse", "ConverseStream", "InvokeModel",
                                  "InvokeModelWithResponseStream"};
static const char *const us_regions[] = {"us-east-1", "us-east-2", "us-west-2"};
static const char *const eu_regions[] = {"eu-west-1", "eu-central-1", "eu-west-3", "eu-north-1"};
static const char *const ap_regions[] = {"ap-southeast-2", "ap-northeast-1", "ap-south-1",
                                         "ap-southeast-1"};
static const char *const global_regions[] = {"us-east-1",    "us-west-2",      "eu-west-1",
                                             "eu-central-1", "ap-northeast-1", "sa-east-1"};

static const char *const type_names[BM_SAMPLE_TYPES] = {"OnDemand", "CrossRegion",
                                                        "GlobalCrossRegion", "Application"};

static int type_of(enum shape s)
{
    switch (s) {
    case ON_DEMAND:
    case FM_ARN:
        return 0;
    case GEO:
    case GEO_ARN:
        return 1;
    case GLOBAL:
        return 2;
    case APP:
        return 3;
    }
    return 0;
}

const char *bm_sample_type_name(int i)
{
    return i >= 0 && i < BM_SAMPLE_TYPES ? type_names[i] : "";
}

/* The geography prefix AWS gives a Region's system profiles (us-east-1 -> us, ap-* -> apac). */
static void geography(const char *region, char *out, size_t cap)
{
    if (strncmp(region, "ap-", 3) == 0) {
        snprintf(out, cap, "apac");
        return;
    }
    if (strncmp(region, "us-gov-", 7) == 0) {
        snprintf(out, cap, "us-gov");
        return;
    }
    size_t n = strcspn(region, "-");
    snprintf(out, cap, "%.*s", (int)n, region);
}

static const char *geo_region(uint64_t *s, const char *geo, const char *source)
{
    if (strcmp(geo, "us") == 0)
        return us_regions[pick(s, N_OF(us_regions))];
    if (strcmp(geo, "eu") == 0)
        return eu_regions[pick(s, N_OF(eu_regions))];
    if (strcmp(geo, "apac") == 0)
        return ap_regions[pick(s, N_OF(ap_regions))];
    return source;
}

/* Copies a models[] template into out, {r} {a} {g} replaced (truncated to cap, which the
 * callers' sizes exceed by far). */
static void expand(const char *fmt, const char *region, const char *account, const char *geo,
                   char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = fmt; *p != '\0' && n + 1 < cap; p++) {
        const char *sub = NULL;
        if (p[0] == '{' && p[1] != '\0' && p[2] == '}')
            sub = p[1] == 'r' ? region : p[1] == 'a' ? account : p[1] == 'g' ? geo : NULL;
        if (sub == NULL) {
            out[n++] = *p;
            continue;
        }
        for (; *sub != '\0' && n + 1 < cap; sub++)
            out[n++] = *sub;
        p += 2;
    }
    out[n] = '\0';
}

/* About `bytes` of prose inside a JSON string. */
static bm_err text(struct bm_buf *b, uint64_t *s, size_t bytes)
{
    size_t start = b->len;
    bm_err rc = BM_OK;
    while (rc == BM_OK && b->len - start < bytes) {
        unsigned r = pick(s, 100);
        if (r < 4)
            rc = bm_buf_append_str(b, utf8[pick(s, N_OF(utf8))]);
        else if (r < 8)
            rc = bm_buf_append_str(b, escapes[pick(s, N_OF(escapes))]);
        else
            rc = bm_buf_append_str(b, words[pick(s, N_OF(words))]);
        if (rc == BM_OK)
            rc = bm_buf_append_str(b, r % 9 == 0 ? ". " : " ");
    }
    return rc;
}

void bm_sample_opts_init(struct bm_sample_opts *o, int64_t now)
{
    memset(o, 0, sizeof *o);
    o->span = 300;
    o->start = now - o->span;
    o->records = 100;
    o->account = "123456789012";
    o->region = "us-east-1";
}

/* One record, appended to b; its numbers go to t. */
static bm_err record(const struct bm_sample_opts *o, uint64_t *s, int64_t ts,
                     struct bm_sample_totals *t, struct bm_buf *b)
{
    char geo[16], model[256], when[32];
    geography(o->region, geo, sizeof geo);
    unsigned m = pick(s, N_OF(models));
    expand(models[m].fmt, o->region, o->account, geo, model, sizeof model);
    const char *inf = NULL; /* absent for in-Region calls, as Bedrock writes them */
    if (models[m].shape == GEO || models[m].shape == GEO_ARN)
        inf = geo_region(s, geo, o->region);
    else if (models[m].shape == GLOBAL)
        inf = global_regions[pick(s, N_OF(global_regions))];
    uint64_t in = 1 + pick(s, 4000), out = pick(s, 1500);
    uint64_t cr = pick(s, 3) ? 0 : pick(s, 30000), cw = pick(s, 4) ? 0 : pick(s, 20000);
    /* Drawn for every model, then dropped, so that the seed gives the other numbers as before. */
    if (models[m].caching == CACHE_NONE)
        cr = 0;
    if (models[m].caching != CACHE_BOTH)
        cw = 0;
    time_t tt = (time_t)ts;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    unsigned session = pick(s, 1000), rid = (unsigned)rnd(s);
    unsigned long long rid2 = (unsigned long long)(rnd(s) & 0xFFFFFFFFFFFFULL);
    bm_err rc = bm_buf_appendf(
        b,
        "{\"timestamp\":\"%s\",\"accountId\":\"%s\",\"identity\":{\"arn\":"
        "\"arn:aws:sts::%s:assumed-role/app-invoker/s-%u\"},\"region\":\"%s\",\"requestId\":"
        "\"%08x-734e-470b-8dfc-%012llx\",\"operation\":\"%s\",\"modelId\":\"%s\",\"input\":{"
        "\"inputContentType\":\"application/json\",\"inputBodyJson\":{\"messages\":[{\"role\":"
        "\"user\",\"content\":[{\"text\":\"",
        when, o->account, o->account, session, o->region, rid, rid2, ops[pick(s, N_OF(ops))],
        model);
    if (rc == BM_OK)
        rc = text(b, s, 1200 + pick(s, 1400));
    if (rc == BM_OK)
        rc = bm_buf_appendf(
            b,
            "\"}]}],\"system\":[{\"text\":\"You are a helpful assistant.\"}],"
            "\"inferenceConfig\":{\"maxTokens\":%u,\"temperature\":0.%u}},"
            "\"inputTokenCount\":%llu,\"cacheReadInputTokenCount\":%llu,"
            "\"cacheWriteInputTokenCount\":%llu},\"output\":{\"outputContentType\":"
            "\"application/json\",\"outputBodyJson\":{\"output\":{\"message\":{\"role\":"
            "\"assistant\",\"content\":[{\"text\":\"",
            512 + pick(s, 4096), pick(s, 10), (unsigned long long)in, (unsigned long long)cr,
            (unsigned long long)cw);
    if (rc == BM_OK)
        rc = text(b, s, 300 + pick(s, 900));
    if (rc == BM_OK)
        rc = bm_buf_appendf(
            b,
            "\"}]}},\"stopReason\":\"end_turn\",\"metrics\":{\"latencyMs\":%u},\"usage\":{"
            "\"inputTokens\":%llu,\"cacheReadInputTokens\":%llu,\"cacheWriteInputTokens\":%llu,"
            "\"outputTokens\":%llu,\"totalTokens\":%llu}},\"outputTokenCount\":%llu}",
            200 + pick(s, 9000), (unsigned long long)in, (unsigned long long)cr,
            (unsigned long long)cw, (unsigned long long)out, (unsigned long long)(in + out),
            (unsigned long long)out);
    if (rc == BM_OK && inf != NULL)
        rc = bm_buf_appendf(b, ",\"inferenceRegion\":\"%s\"", inf);
    /* The caller's requestMetadata (BMAS_ATTRIBUTION_KEYS=team,app), from numbers already drawn
     * so that every other byte stays what the seed gave before it was added. */
    static const char *const teams[] = {"search", "support", "analytics", "platform"};
    static const char *const apps[] = {"chat", "summarizer", "classifier"};
    if (rc == BM_OK)
        rc = bm_buf_appendf(b, ",\"requestMetadata\":{\"team\":\"%s\",\"app\":\"%s\"}",
                            teams[session % N_OF(teams)], apps[rid % N_OF(apps)]);
    if (rc == BM_OK)
        rc = bm_buf_append_str(
            b, ",\"schemaType\":\"ModelInvocationLog\",\"schemaVersion\":\"1.0\"}\n");
    if (rc != BM_OK)
        return rc;
    int ty = type_of(models[m].shape);
    t->invocations++;
    t->input_tokens += in;
    t->output_tokens += out;
    t->cache_read_tokens += cr;
    t->cache_write_tokens += cw;
    t->type_invocations[ty]++;
    t->type_input_tokens[ty] += in;
    t->type_output_tokens[ty] += out;
    return BM_OK;
}

struct sink {
    bool plain;
    z_stream zs;
    unsigned char out[OUT_CHUNK];
    bm_sample_write_fn fn;
    void *ctx;
};

static bm_err sink_write(struct sink *k, const void *p, size_t len, int flush)
{
    if (k->plain)
        return len == 0 ? BM_OK : k->fn(k->ctx, p, len);
    k->zs.next_in = (Bytef *)(uintptr_t)p;
    k->zs.avail_in = (uInt)len;
    int zrc;
    do {
        k->zs.next_out = k->out;
        k->zs.avail_out = sizeof k->out;
        zrc = deflate(&k->zs, flush);
        if (zrc == Z_STREAM_ERROR)
            return BM_E_INTERNAL;
        size_t have = sizeof k->out - k->zs.avail_out;
        if (have > 0) {
            bm_err rc = k->fn(k->ctx, k->out, have);
            if (rc != BM_OK)
                return rc;
        }
    } while (k->zs.avail_out == 0 || (flush == Z_FINISH && zrc != Z_STREAM_END));
    return BM_OK;
}

bm_err bm_sample_write(const struct bm_sample_opts *o, bm_sample_write_fn fn, void *ctx,
                       struct bm_sample_totals *out, struct bm_errmsg *em)
{
    if (o->span < 0 || o->start < 0 || (o->records == 0 && o->bytes == 0))
        return bm_errmsg_set(em, BM_E_CONFIG, "sample: a negative time or no size given");
    struct sink *k = bm_calloc(1, sizeof *k);
    if (k == NULL)
        return bm_errmsg_set(em, BM_E_NOMEM, "sample: out of memory");
    k->plain = o->plain;
    k->fn = fn;
    k->ctx = ctx;
    k->zs.zalloc = bm__z_alloc;
    k->zs.zfree = bm__z_free;
    /* 16 + window bits: a gzip wrapper, what Bedrock delivers (.json.gz). */
    if (!k->plain &&
        deflateInit2(&k->zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        bm_free(k);
        return bm_errmsg_set(em, BM_E_NOMEM, "sample: zlib could not start");
    }
    uint64_t s = 0x9E3779B97F4A7C15ULL ^ (o->seed * 0x100000001B3ULL);
    if (s == 0)
        s = 1; /* xorshift stays at zero forever */
    struct bm_sample_totals t;
    memset(&t, 0, sizeof t);
    struct bm_buf b;
    bm_buf_init(&b, REC_MAX);
    bm_err rc = BM_OK;
    while (rc == BM_OK && (o->records > 0 ? t.records < o->records : t.bytes < o->bytes)) {
        /* Time moves evenly through the object: by record count, or by bytes written. */
        double at = o->records > 0 ? (double)t.records / (double)o->records
                                   : (double)t.bytes / (double)o->bytes;
        int64_t ts = o->start + (int64_t)(at * (double)o->span);
        bm_buf_reset(&b);
        rc = record(o, &s, ts, &t, &b);
        if (rc == BM_OK)
            rc = sink_write(k, b.data, b.len, Z_NO_FLUSH);
        if (rc == BM_OK) {
            t.records++;
            t.bytes += b.len;
        }
    }
    if (rc == BM_OK)
        rc = sink_write(k, "", 0, Z_FINISH);
    if (!k->plain)
        deflateEnd(&k->zs);
    bm_buf_cleanup(&b);
    bm_free(k);
    if (rc != BM_OK)
        return bm_errmsg_set(em, rc, "sample: writing the object failed");
    *out = t;
    return BM_OK;
}

bm_err bm_sample_key(const struct bm_sample_opts *o, struct bm_buf *key)
{
    /* Bedrock names an object by when it delivered it: the end of the span it covers. */
    time_t t = (time_t)(o->start + o->span);
    struct tm tm;
    char hour[32], stamp[32];
    gmtime_r(&t, &tm);
    strftime(hour, sizeof hour, "%Y/%m/%d/%H", &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    uint64_t s = 0x5DEECE66DULL ^ (o->seed * 0x100000001B3ULL) ^ (uint64_t)t;
    if (s == 0)
        s = 1;
    return bm_buf_appendf(key, "AWSLogs/%s/BedrockModelInvocationLogs/%s/%s/%s_%08x%08x.json%s",
                          o->account, o->region, hour, stamp, (unsigned)rnd(&s), (unsigned)rnd(&s),
                          o->plain ? "" : ".gz");
}

bm_err bm_sample_totals_json(const struct bm_sample_opts *o, const struct bm_sample_totals *t,
                             const char *key, struct bm_buf *b)
{
    bm_err rc = bm_buf_appendf(
        b, "{\"seed\":%llu,\"start\":%lld,\"span\":%lld,\"region\":", (unsigned long long)o->seed,
        (long long)o->start, (long long)o->span);
    if (rc == BM_OK)
        rc = bm_buf_append_json_str(b, o->region, strlen(o->region));
    if (rc == BM_OK)
        rc = bm_buf_appendf(
            b,
            ",\"records\":%llu,\"bytes\":%llu,\"invocations\":%llu,\"input_tokens\":%llu,"
            "\"output_tokens\":%llu,\"cache_read_input_tokens\":%llu,"
            "\"cache_write_input_tokens\":%llu,\"by_profile_type\":{",
            (unsigned long long)t->records, (unsigned long long)t->bytes,
            (unsigned long long)t->invocations, (unsigned long long)t->input_tokens,
            (unsigned long long)t->output_tokens, (unsigned long long)t->cache_read_tokens,
            (unsigned long long)t->cache_write_tokens);
    for (int i = 0; rc == BM_OK && i < BM_SAMPLE_TYPES; i++)
        rc = bm_buf_appendf(b,
                            "%s\"%s\":{\"invocations\":%llu,\"input_tokens\":%llu,"
                            "\"output_tokens\":%llu}",
                            i > 0 ? "," : "", type_names[i],
                            (unsigned long long)t->type_invocations[i],
                            (unsigned long long)t->type_input_tokens[i],
                            (unsigned long long)t->type_output_tokens[i]);
    if (rc == BM_OK)
        rc = bm_buf_append_str(b, "}");
    if (rc == BM_OK && key != NULL) {
        rc = bm_buf_append_str(b, ",\"key\":");
        if (rc == BM_OK)
            rc = bm_buf_append_json_str(b, key, strlen(key));
    }
    if (rc == BM_OK)
        rc = bm_buf_append_str(b, "}\n");
    return rc;
}
