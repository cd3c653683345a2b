/* gen_corpus.c: writes a corpus of Bedrock model-invocation log objects and, from its own
 * bookkeeping, the totals bmas must find in it (tests/integration/test_corpus.sh and
 * test_wire_moto.sh compare them exactly; bmas never computes its own expectations).
 *
 * Every modelId shape of README "What is counted, and how a record is classified" is written:
 * bare on-demand ids, geographic profiles (us., eu., apac., jp., au., ca., us-gov. and a
 * geography AWS has not announced, mx.), global. profiles, both bare and inside
 * inference-profile ARNs, foundation-model ARNs (one with no Region, as IAM writes them),
 * application inference profile ARNs (mapped and unmapped), provisioned-model ARNs. The
 * expected classification of each id is written down in the table below by hand, from the
 * README's table, not derived by parsing the id. Every kind of record the README says is
 * skipped is written too, with its code: malformed lines, records without modelId or
 * timestamp, timestamps that are not RFC 3339, strings over 2,048 bytes, nesting over 512
 * levels (BMAS-003); negative, fractional and non-numeric token counts (BMAS-007); records with
 * no Region in the record, its modelId or its key (BMAS-008); a record over the default
 * BMAS_MAX_LINE_BYTES (BMAS-010). Blank lines, CRLF, a BOM, a multi-member gzip object, an
 * object that is one JSON array and one of pretty-printed records are framing, not records.
 * Two non-log objects (an offloaded body under data/ and the permission-check marker) must be
 * ignored.
 *
 * Layout under --out DIR: each object at its S3 key (the region segment of the key is the
 * fallback source Region, also for `bmas ingest` of the files), DIR/keys.txt (one "log KEY" or
 * "ignored KEY" a line) and DIR/expected.json.
 *
 * usage: gen_corpus --out DIR [--records N] [--objects K] [--start EPOCH] [--span SECONDS]
 * The seed is fixed (SEED_DEFAULT) unless CORPUS_SEED is set; it is printed before use. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <zlib.h>

#define SEED_DEFAULT 20261202ULL
#define ACCOUNT "123456789012"
#define LINE_CAP_DEFAULT (8ULL << 20) /* README: BMAS_MAX_LINE_BYTES default 8 MiB */
#define FIELD_MAX 2048                /* README: kept string fields over 2,048 bytes skip */
#define NEST_MAX 512                  /* README: nesting over 512 levels skips */

static uint64_t rng;

/* splitmix64: every output depends on the seed only. */
static uint64_t rnd(void)
{
    uint64_t z = (rng += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static unsigned pick(unsigned n)
{
    return (unsigned)(rnd() % n);
}

static void die(const char *what)
{
    fprintf(stderr, "gen_corpus: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* ---- growable byte buffer ---- */
struct out {
    char *p;
    size_t len, cap;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->len + n + 1 > o->cap) {
        o->cap = (o->len + n + 1) * 2;
        o->p = realloc(o->p, o->cap);
        if (o->p == NULL)
            die("realloc");
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
}

static void putf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        die("vsnprintf");
    char *tmp = malloc((size_t)n + 1);
    if (tmp == NULL)
        die("malloc");
    va_start(ap, fmt);
    vsnprintf(tmp, (size_t)n + 1, fmt, ap);
    va_end(ap);
    put(o, tmp, (size_t)n);
    free(tmp);
}

#define PUTL(o, lit) put((o), (lit), sizeof(lit) - 1)

static void put_rep(struct out *o, char c, size_t n)
{
    char block[4096];
    memset(block, c, sizeof block);
    while (n > 0) {
        size_t k = n < sizeof block ? n : sizeof block;
        put(o, block, k);
        n -= k;
    }
}

/* ---- the modelId table: what is logged, and what the README says bmas must make of it ---- */
struct model {
    const char *logged;     /* modelId exactly as written in the record */
    const char *type;       /* expected profile_type */
    const char *model_id;   /* expected model_id (NULL: the app-profile map decides) */
    const char *profile_id; /* expected profile_id */
    const char *arn_region; /* Region inside the ARN ("" when none, or no ARN) */
    int embedding;          /* no outputTokenCount, as embeddings log */
};

#define ARN_IP "arn:aws:bedrock:us-east-1:" ACCOUNT ":inference-profile/"
#define ARN_APP(r) "arn:aws:bedrock:" r ":" ACCOUNT ":application-inference-profile/"
/* Application profiles: the first two are in the map the test passes (BMAS_APP_PROFILE_MAP),
 * the third is not (counted under its id, BMAS-006 informational). */
#define APP_MAP                                                                                    \
    "k3m9x2p7q4w1=anthropic.claude-sonnet-4-20250514-v1:0,z8y7x6w5v4u3=amazon.nova-pro-v1:0"

/* A valid id of 300 characters: over CloudWatch's 255 per dimension value (BMAS-009 skips
 * the dimension sets holding ModelId for it), under the 2,048 kept. Filled in main(). */
static char long_model[301];

static struct model models[] = {
    /* on-demand: bare ids, including a dotted version that is no geography */
    {"amazon.nova-lite-v1:0", "OnDemand", "amazon.nova-lite-v1:0", "amazon.nova-lite-v1:0", "", 0},
    {"anthropic.claude-3-haiku-20240307-v1:0", "OnDemand", "anthropic.claude-3-haiku-20240307-v1:0",
     "anthropic.claude-3-haiku-20240307-v1:0", "", 0},
    {"meta.llama3-1-70b-instruct-v1:0", "OnDemand", "meta.llama3-1-70b-instruct-v1:0",
     "meta.llama3-1-70b-instruct-v1:0", "", 0},
    {"amazon.titan-embed-text-v2:0", "OnDemand", "amazon.titan-embed-text-v2:0",
     "amazon.titan-embed-text-v2:0", "", 1},
    {"amazon.nova-2.0-lite", "OnDemand", "amazon.nova-2.0-lite", "amazon.nova-2.0-lite", "", 0},
    {"ai21.jamba-1-5-large-v1:0", "OnDemand", "ai21.jamba-1-5-large-v1:0",
     "ai21.jamba-1-5-large-v1:0", "", 0},
    {"cohere.embed-english-v3", "OnDemand", "cohere.embed-english-v3", "cohere.embed-english-v3",
     "", 1},
    {long_model, "OnDemand", long_model, long_model, "", 0},
    /* on-demand: foundation-model ARNs (the second has no Region, as IAM policies write it) */
    {"arn:aws:bedrock:us-west-2::foundation-model/anthropic.claude-3-5-sonnet-20240620-v1:0",
     "OnDemand", "anthropic.claude-3-5-sonnet-20240620-v1:0",
     "anthropic.claude-3-5-sonnet-20240620-v1:0", "us-west-2", 0},
    {"arn:aws:bedrock:::foundation-model/mistral.mistral-large-2407-v1:0", "OnDemand",
     "mistral.mistral-large-2407-v1:0", "mistral.mistral-large-2407-v1:0", "", 0},
    /* geographic cross-Region: bare ids */
    {"us.anthropic.claude-sonnet-4-5-20250929-v1:0", "CrossRegion",
     "anthropic.claude-sonnet-4-5-20250929-v1:0", "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
     "", 0},
    {"eu.anthropic.claude-sonnet-4-5-20250929-v1:0", "CrossRegion",
     "anthropic.claude-sonnet-4-5-20250929-v1:0", "eu.anthropic.claude-sonnet-4-5-20250929-v1:0",
     "", 0},
    {"apac.amazon.nova-pro-v1:0", "CrossRegion", "amazon.nova-pro-v1:0",
     "apac.amazon.nova-pro-v1:0", "", 0},
    {"jp.anthropic.claude-haiku-4-5-20251001-v1:0", "CrossRegion",
     "anthropic.claude-haiku-4-5-20251001-v1:0", "jp.anthropic.claude-haiku-4-5-20251001-v1:0", "",
     0},
    {"au.anthropic.claude-sonnet-4-6", "CrossRegion", "anthropic.claude-sonnet-4-6",
     "au.anthropic.claude-sonnet-4-6", "", 0},
    {"ca.amazon.nova-lite-v1:0", "CrossRegion", "amazon.nova-lite-v1:0", "ca.amazon.nova-lite-v1:0",
     "", 0},
    {"us-gov.anthropic.claude-3-haiku-20240307-v1:0", "CrossRegion",
     "anthropic.claude-3-haiku-20240307-v1:0", "us-gov.anthropic.claude-3-haiku-20240307-v1:0", "",
     0},
    {"mx.anthropic.claude-sonnet-4-6", "CrossRegion", "anthropic.claude-sonnet-4-6",
     "mx.anthropic.claude-sonnet-4-6", "", 0},
    {"us.meta.llama3-2-90b-instruct-v1:0", "CrossRegion", "meta.llama3-2-90b-instruct-v1:0",
     "us.meta.llama3-2-90b-instruct-v1:0", "", 0},
    /* geographic cross-Region: inference-profile ARNs */
    {ARN_IP "us.anthropic.claude-haiku-4-5", "CrossRegion", "anthropic.claude-haiku-4-5",
     "us.anthropic.claude-haiku-4-5", "us-east-1", 0},
    {"arn:aws:bedrock:eu-west-1:" ACCOUNT ":inference-profile/eu.amazon.nova-micro-v1:0",
     "CrossRegion", "amazon.nova-micro-v1:0", "eu.amazon.nova-micro-v1:0", "eu-west-1", 0},
    {"arn:aws-us-gov:bedrock:us-gov-west-1:" ACCOUNT
     ":inference-profile/us-gov.anthropic.claude-3-5-sonnet-20240620-v1:0",
     "CrossRegion", "anthropic.claude-3-5-sonnet-20240620-v1:0",
     "us-gov.anthropic.claude-3-5-sonnet-20240620-v1:0", "us-gov-west-1", 0},
    /* global cross-Region: bare and ARN */
    {"global.anthropic.claude-opus-4-5-20251101-v1:0", "GlobalCrossRegion",
     "anthropic.claude-opus-4-5-20251101-v1:0", "global.anthropic.claude-opus-4-5-20251101-v1:0",
     "", 0},
    {"global.anthropic.claude-opus-4-6-v1", "GlobalCrossRegion", "anthropic.claude-opus-4-6-v1",
     "global.anthropic.claude-opus-4-6-v1", "", 0},
    {"arn:aws:bedrock:us-west-2:" ACCOUNT ":inference-profile/global.anthropic.claude-opus-4-7",
     "GlobalCrossRegion", "anthropic.claude-opus-4-7", "global.anthropic.claude-opus-4-7",
     "us-west-2", 0},
    /* application inference profiles */
    {ARN_APP("us-east-1") "k3m9x2p7q4w1", "Application", "anthropic.claude-sonnet-4-20250514-v1:0",
     "k3m9x2p7q4w1", "us-east-1", 0},
    {ARN_APP("eu-central-1") "z8y7x6w5v4u3", "Application", "amazon.nova-pro-v1:0", "z8y7x6w5v4u3",
     "eu-central-1", 0},
    {ARN_APP("ap-northeast-1") "a1b2c3d4e5f6", "Application", "a1b2c3d4e5f6", "a1b2c3d4e5f6",
     "ap-northeast-1", 0},
    /* provisioned throughput */
    {"arn:aws:bedrock:us-east-1:" ACCOUNT ":provisioned-model/p9q8r7s6t5u4", "Provisioned",
     "p9q8r7s6t5u4", "p9q8r7s6t5u4", "us-east-1", 0},
};
#define N_MODELS (sizeof models / sizeof models[0])
static const unsigned app_unmapped_index = 27; /* a1b2c3d4e5f6 */

static const char *const regions[] = {"us-east-1",      "us-west-2",    "eu-west-1",
                                      "ap-southeast-2", "eu-central-1", "ap-northeast-1",
                                      "ca-central-1",   "us-east-2"};
#define N_REGIONS (sizeof regions / sizeof regions[0])
static const char *const ops[] = {"Converse", "ConverseStream", "InvokeModel",
                                  "InvokeModelWithResponseStream"};

/* ---- bookkeeping: a hash of "dimension\tvalue..." -> counters ---- */
struct counters {
    uint64_t inv, in, out, cr, cw;
};
struct slot {
    char *key;
    struct counters c;
};
#define SLOTS 65536
static struct slot table[SLOTS];
static size_t n_slots_used;

static struct counters *tally(const char *key)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = key; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    for (size_t i = h % SLOTS;; i = (i + 1) % SLOTS) {
        if (table[i].key == NULL) {
            if (++n_slots_used > SLOTS / 2) {
                fprintf(stderr, "gen_corpus: too many series\n");
                exit(1);
            }
            table[i].key = strdup(key);
            if (table[i].key == NULL)
                die("strdup");
            return &table[i].c;
        }
        if (strcmp(table[i].key, key) == 0)
            return &table[i].c;
    }
}

static void add(const char *key, const struct counters *c)
{
    struct counters *t = tally(key);
    t->inv += c->inv;
    t->in += c->in;
    t->out += c->out;
    t->cr += c->cr;
    t->cw += c->cw;
}

/* Skip codes, as README "Error codes" names them. */
enum skip { SK_003, SK_007, SK_008, SK_010, SK__N };
static const char *const skip_code[SK__N] = {"BMAS-003", "BMAS-007", "BMAS-008", "BMAS-010"};
static uint64_t skipped[SK__N];
static uint64_t app_unmapped; /* BMAS-006: counted records, informational */
static uint64_t counted, written_records;
static struct counters total;

/* ---- JSON string escaping for expected.json (ids are ASCII) ---- */
static void put_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void put_counters(FILE *f, const struct counters *c)
{
    fprintf(f,
            "\"invocations\":%llu,\"input_tokens\":%llu,\"output_tokens\":%llu,"
            "\"cache_read_input_tokens\":%llu,\"cache_write_input_tokens\":%llu",
            (unsigned long long)c->inv, (unsigned long long)c->in, (unsigned long long)c->out,
            (unsigned long long)c->cr, (unsigned long long)c->cw);
}

/* ---- one record ---- */
enum framing { FR_LINES, FR_ARRAY, FR_PRETTY };
struct obj {
    const char *key_region; /* "" for the object whose key names no Region */
    int crlf;
    enum framing framing; /* README: JSON lines, a JSON array, or pretty-printed objects */
};

static void put_time(struct out *o, int64_t t, unsigned style)
{
    time_t tt = (time_t)t;
    struct tm tm;
    char buf[64];
    if (style == 2) {
        /* RFC 3339 with an offset: the same instant written as +02:00 local time. */
        tt += 7200;
        gmtime_r(&tt, &tm);
        strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S+02:00", &tm);
    } else {
        gmtime_r(&tt, &tm);
        strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
        if (style == 1)
            snprintf(buf + strlen(buf), sizeof buf - strlen(buf), ".%03uZ", pick(1000));
        else
            snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "Z");
    }
    putf(o, "\"%s\"", buf);
}

/* A small request body with decoys: members named like the fields bmas reads, nested where
 * they must not count, and text with escapes and UTF-8. */
static void put_body(struct out *o)
{
    static const char *const texts[] = {
        "summarise ticket 4711 \\\"urgent\\\"",
        "caf\xC3\xA9 na\xC3\xAFve \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E",
        "path C:\\\\logs\\\\bedrock \\u00e9t\\u00e9 \\ud83d\\ude00",
        "line one\\nline two\\t{\\\"modelId\\\":\\\"x\\\"}",
    };
    putf(o,
         "{\"inputContentType\":\"application/json\",\"inputBodyJson\":{\"messages\":[{\"role\":"
         "\"user\",\"content\":[{\"text\":\"%s\"}]}],\"modelId\":\"decoy.model-v1\","
         "\"inputTokenCount\":999999,\"region\":\"xx-decoy-1\",\"inferenceConfig\":"
         "{\"maxTokens\":%u}}",
         texts[pick(4)], 256 + pick(4096));
}

/* Writes one well-formed record and books it; returns 0, or SK_008 + 1 when no Region can be
 * found for it (the caller books that skip). */
static int put_valid(struct out *o, const struct obj *ob, int64_t t)
{
    unsigned mi = pick(N_MODELS);
    const struct model *m = &models[mi];
    struct counters c = {1, pick(5000), m->embedding ? 0 : pick(2000), 0, 0};
    int has_region = pick(10) < 7;
    int has_inf = pick(10) < 7;
    unsigned cache = pick(4); /* 0: absent, 1: zero, 2-3: values */
    const char *rec_region = regions[pick(N_REGIONS)];
    const char *src = has_region ? rec_region : m->arn_region[0] ? m->arn_region : ob->key_region;
    const char *inf = has_inf ? regions[pick(N_REGIONS)] : src;
    const char *op = ops[pick(4)];
    if (cache >= 2) {
        c.cr = pick(30000);
        c.cw = pick(3) ? 0 : pick(20000);
    }
    int schema_first = pick(2);
    PUTL(o, "{");
    if (schema_first)
        PUTL(o, "\"schemaType\":\"ModelInvocationLog\",\"schemaVersion\":\"1.0\",");
    PUTL(o, "\"timestamp\":");
    unsigned style = pick(100);
    put_time(o, t, style < 90 ? 0 : style < 96 ? 1 : 2);
    putf(o,
         ",\"accountId\":\"" ACCOUNT "\",\"identity\":{\"arn\":\"arn:aws:sts::" ACCOUNT
         ":assumed-role/app/s-%u\"},",
         pick(1000));
    if (has_region)
        putf(o, "\"region\":\"%s\",", rec_region);
    putf(o,
         "\"requestId\":\"%08x-734e-470b-8dfc-%012llx\",\"operation\":\"%s\",\"modelId\":\"%s\",",
         (unsigned)rnd(), (unsigned long long)(rnd() & 0xFFFFFFFFFFFFULL), op, m->logged);
    PUTL(o, "\"input\":");
    put_body(o);
    /* README: BMAS-007 is negative, fractional or not a number; 12.0 and 12e0 are none. */
    unsigned form = pick(100);
    putf(o,
         form == 0   ? ",\"inputTokenCount\":%llu.0"
         : form == 1 ? ",\"inputTokenCount\":%llue0"
                     : ",\"inputTokenCount\":%llu",
         (unsigned long long)c.in);
    if (cache >= 1)
        putf(o, ",\"cacheReadInputTokenCount\":%llu,\"cacheWriteInputTokenCount\":%llu",
             (unsigned long long)c.cr, (unsigned long long)c.cw);
    PUTL(o, "},\"output\":{\"outputContentType\":\"application/json\"");
    if (!m->embedding)
        putf(o,
             ",\"outputBodyJson\":{\"output\":{\"message\":{\"role\":\"assistant\",\"content\":"
             "[{\"text\":\"ok\"}]}},\"usage\":{\"outputTokens\":777},\"outputTokenCount\":5},"
             "\"outputTokenCount\":%llu",
             (unsigned long long)c.out);
    PUTL(o, "}");
    if (has_inf)
        putf(o, ",\"inferenceRegion\":\"%s\"", inf);
    if (!schema_first)
        PUTL(o, ",\"schemaType\":\"ModelInvocationLog\",\"schemaVersion\":\"1.0\"");
    PUTL(o, "}");

    /* No Region in the record, its modelId or the key: written, but skipped (BMAS-008). */
    if (src[0] == '\0')
        return SK_008 + 1;
    const char *model_id = m->model_id;
    if (mi == app_unmapped_index)
        app_unmapped++;
    char key[4096];
    snprintf(key, sizeof key, "row\t%s\t%s\t%s\t%s\t%s\t%s", model_id, m->type, m->profile_id, src,
             inf, op);
    add(key, &c);
    snprintf(key, sizeof key, "profile_type\t%s", m->type);
    add(key, &c);
    /* README: ENABLE_CROSS_REGION_DETECTION=false counts every system profile as OnDemand
     * (model still normalised); ENABLE_GLOBAL_CROSS_REGION=false counts global. profiles as
     * CrossRegion. */
    int is_geo = strcmp(m->type, "CrossRegion") == 0;
    int is_global = strcmp(m->type, "GlobalCrossRegion") == 0;
    snprintf(key, sizeof key, "sw\tENABLE_CROSS_REGION_DETECTION=false\t%s\t%s",
             is_geo || is_global ? "OnDemand" : m->type, model_id);
    add(key, &c);
    snprintf(key, sizeof key, "sw\tENABLE_GLOBAL_CROSS_REGION=false\t%s\t%s",
             is_global ? "CrossRegion" : m->type, model_id);
    add(key, &c);
    snprintf(key, sizeof key, "model_id\t%s", model_id);
    add(key, &c);
    snprintf(key, sizeof key, "source_region\t%s", src);
    add(key, &c);
    snprintf(key, sizeof key, "inference_region\t%s", inf);
    add(key, &c);
    total.inv += c.inv;
    total.in += c.in;
    total.out += c.out;
    total.cr += c.cr;
    total.cw += c.cw;
    counted++;
    return 0;
}

/* Writes one record bmas must skip, of a kind chosen here, and returns its skip code. */
static int put_invalid(struct out *o, const struct obj *ob, int64_t t)
{
    const char *m = models[pick(N_MODELS)].logged;
    unsigned kind = pick(12);
    /* Inside a JSON array or pretty-printed objects, a cut record or a bare array would
     * change the framing of the records after it: those kinds stay in JSON lines. */
    if (ob->framing != FR_LINES && kind < 2)
        return put_invalid(o, ob, t);
    switch (kind) {
    case 0: /* malformed JSON: cut in the middle */
        putf(o, "{\"timestamp\":\"2026-04-20T00:00:00Z\",\"modelId\":\"%s\",\"input\":{\"inp", m);
        return SK_003;
    case 1: /* a JSON value that is not an object */
        PUTL(o, "[\"not\",\"a\",\"record\"]");
        return SK_003;
    case 2: /* no modelId */
        PUTL(o, "{\"timestamp\":");
        put_time(o, t, 0);
        PUTL(o, ",\"region\":\"us-east-1\",\"input\":{\"inputTokenCount\":5}}");
        return SK_003;
    case 3: /* no timestamp */
        putf(o, "{\"modelId\":\"%s\",\"region\":\"us-east-1\",\"input\":{\"inputTokenCount\":5}}",
             m);
        return SK_003;
    case 4: /* a timestamp that is not RFC 3339 */
        putf(o,
             "{\"timestamp\":\"%s\",\"modelId\":\"%s\",\"region\":\"us-east-1\","
             "\"input\":{\"inputTokenCount\":5}}",
             pick(2) ? "20 April 2026 00:17" : "2026-13-45T99:00:00Z", m);
        return SK_003;
    case 5: /* a kept string field over 2,048 bytes: modelId, a Region, the operation */
    {
        static const char *const field[] = {"modelId", "region", "inferenceRegion", "operation"};
        unsigned f = pick(4);
        PUTL(o, "{\"timestamp\":");
        put_time(o, t, 0);
        if (f != 0)
            putf(o, ",\"modelId\":\"%s\"", m);
        if (f != 1)
            PUTL(o, ",\"region\":\"us-east-1\"");
        putf(o, ",\"%s\":\"x", field[f]);
        put_rep(o, 'x', FIELD_MAX);
        PUTL(o, "\",\"input\":{\"inputTokenCount\":5}}");
        return SK_003;
    }
    case 6: /* nesting deeper than 512 levels inside the request body */
        PUTL(o, "{\"timestamp\":");
        put_time(o, t, 0);
        putf(o, ",\"region\":\"us-east-1\",\"modelId\":\"%s\",\"input\":{\"inputBodyJson\":", m);
        put_rep(o, '[', NEST_MAX + 88);
        put_rep(o, ']', NEST_MAX + 88);
        PUTL(o, ",\"inputTokenCount\":5}}");
        return SK_003;
    case 7: /* negative token count */
    case 8: /* fractional token count */
    case 9: /* a token count that is no number */
    {
        static const char *const bad[] = {"-12", "12.5", "\"12\""};
        static const char *const field[] = {"inputTokenCount", "cacheReadInputTokenCount",
                                            "outputTokenCount"};
        unsigned f = pick(3);
        PUTL(o, "{\"timestamp\":");
        put_time(o, t, 0);
        putf(o, ",\"region\":\"us-east-1\",\"modelId\":\"%s\",", m);
        if (f == 2)
            putf(o, "\"input\":{\"inputTokenCount\":5},\"output\":{\"%s\":%s}}", field[f],
                 bad[pick(3)]);
        else
            putf(o, "\"input\":{\"%s\":%s},\"output\":{\"outputTokenCount\":5}}", field[f],
                 bad[pick(3)]);
        return SK_007;
    }
    default: /* no Region anywhere: only possible in the object whose key names none */
        if (ob->key_region[0] != '\0')
            return put_invalid(o, ob, t);
        PUTL(o, "{\"timestamp\":");
        put_time(o, t, 0);
        PUTL(o, ",\"modelId\":\"amazon.nova-lite-v1:0\",\"input\":{\"inputTokenCount\":5}}");
        return SK_008;
    }
}

/* A record over the 8 MiB line cap: valid JSON, skipped with BMAS-010. */
static int put_too_long(struct out *o, int64_t t)
{
    PUTL(o, "{\"timestamp\":");
    put_time(o, t, 0);
    put(o,
        ",\"region\":\"us-east-1\",\"modelId\":\"amazon.nova-lite-v1:0\",\"input\":{"
        "\"inputBodyJson\":{\"text\":\"",
        90);
    put_rep(o, 'a', LINE_CAP_DEFAULT + 4096);
    PUTL(o, "\"},\"inputTokenCount\":5}}");
    return SK_010;
}

/* Spreads the record written from `mark` over several lines, as a pretty-printer would: a
 * line break after its opening brace, before its closing one, and after "input": and
 * "output": (outside strings). */
static void pretty(struct out *o, size_t mark)
{
    struct out r = {0};
    int in_str = 0, esc = 0;
    size_t end = o->len;
    while (end > mark && o->p[end - 1] != '}')
        end--;
    for (size_t i = mark; i < o->len; i++) {
        char c = o->p[i];
        put(&r, &c, 1);
        if (in_str) {
            if (esc)
                esc = 0;
            else if (c == '\\')
                esc = 1;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (i == mark && c == '{') {
            PUTL(&r, "\n  ");
        } else if (c == ':' && i >= mark + 8 &&
                   (memcmp(o->p + i - 7, "\"input\"", 7) == 0 ||
                    memcmp(o->p + i - 8, "\"output\"", 8) == 0)) {
            PUTL(&r, "\n    ");
        }
        if (i + 2 == end)
            PUTL(&r, "\n");
    }
    o->len = mark;
    put(o, r.p, r.len);
    free(r.p);
}

/* ---- files ---- */
static void mkdirs(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            die(tmp);
        *p = '/';
    }
}

/* Appends one gzip member holding buf to f. */
static void gzip_member(FILE *f, const char *buf, size_t len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        die("deflateInit2");
    unsigned char chunk[65536];
    z.next_in = (unsigned char *)(uintptr_t)buf;
    z.avail_in = (uInt)len;
    int rc;
    do {
        z.next_out = chunk;
        z.avail_out = sizeof chunk;
        rc = deflate(&z, Z_FINISH);
        if (rc == Z_STREAM_ERROR)
            die("deflate");
        fwrite(chunk, 1, sizeof chunk - z.avail_out, f);
    } while (rc != Z_STREAM_END);
    deflateEnd(&z);
}

static void write_object(const char *dir, const char *key, const struct out *o, int members)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, key);
    mkdirs(path);
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        die(path);
    if (members <= 1 || o->len < 2) {
        gzip_member(f, o->p, o->len);
    } else {
        /* split at a line end so each member holds whole lines (either works for bmas) */
        size_t half = o->len / 2;
        while (half < o->len && o->p[half - 1] != '\n')
            half++;
        gzip_member(f, o->p, half);
        gzip_member(f, o->p + half, o->len - half);
    }
    if (fclose(f) != 0)
        die(path);
}

static void usage(void)
{
    fprintf(stderr, "usage: gen_corpus --out DIR [--records N] [--objects K] [--start EPOCH] "
                    "[--span SECONDS]   (seed: CORPUS_SEED)\n");
    exit(2);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    uint64_t n_records = 20000;
    unsigned n_objects = 8;
    int64_t t0 = 1776643200; /* 2026-04-20T00:00:00Z */
    int64_t span = 1800;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        if (strcmp(argv[i], "--out") == 0)
            dir = argv[++i];
        else if (strcmp(argv[i], "--records") == 0)
            n_records = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--objects") == 0)
            n_objects = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--start") == 0)
            t0 = strtoll(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--span") == 0)
            span = strtoll(argv[++i], NULL, 10);
        else
            usage();
    }
    if (dir == NULL || n_objects < 2 || n_records < n_objects || span < 1)
        usage();
    uint64_t seed = SEED_DEFAULT;
    const char *env = getenv("CORPUS_SEED");
    if (env != NULL && *env != '\0') {
        char *end;
        errno = 0;
        seed = strtoull(env, &end, 10);
        if (errno != 0 || *end != '\0') {
            fprintf(stderr, "gen_corpus: CORPUS_SEED must be a decimal number\n");
            return 2;
        }
    }
    /* printed before use, so a failing run can be replayed with CORPUS_SEED */
    fprintf(stderr, "gen_corpus: seed %llu (replay with CORPUS_SEED=%llu)\n",
            (unsigned long long)seed, (unsigned long long)seed);
    rng = seed;
    memcpy(long_model, "amazon.", 7);
    memset(long_model + 7, 'l', sizeof long_model - 8);
    long_model[sizeof long_model - 1] = '\0';

    char keys_path[4096];
    snprintf(keys_path, sizeof keys_path, "%s/keys.txt", dir);
    mkdirs(keys_path);
    FILE *keys = fopen(keys_path, "w");
    if (keys == NULL)
        die(keys_path);

    struct out o = {0};
    uint64_t written = 0;
    struct tm tm;
    time_t tt = (time_t)t0;
    gmtime_r(&tt, &tm);
    char hour[32];
    strftime(hour, sizeof hour, "%Y/%m/%d/%H", &tm);
    for (unsigned k = 0; k < n_objects; k++) {
        /* the last object's key names no Region (a custom export prefix) */
        struct obj ob = {k + 1 < n_objects ? regions[k % N_REGIONS] : "", k == 1,
                         k == 5   ? FR_ARRAY
                         : k == 6 ? FR_PRETTY
                                  : FR_LINES};
        uint64_t n = n_records / n_objects + (k < n_records % n_objects);
        o.len = 0;
        if (k == 2)
            PUTL(&o, "\xEF\xBB\xBF"); /* a BOM before the first record */
        if (ob.framing == FR_ARRAY)
            PUTL(&o, "[\n");
        for (uint64_t i = 0; i < n; i++) {
            int64_t t = t0 + (int64_t)((written + i) * (uint64_t)span / n_records);
            int sk = 0;
            size_t mark = o.len;
            if (ob.framing == FR_ARRAY && i > 0)
                PUTL(&o, ",\n");
            if (k == 3 && i == n / 2)
                sk = put_too_long(&o, t) + 1;
            else if (pick(100) < 7)
                sk = put_invalid(&o, &ob, t) + 1;
            else {
                sk = put_valid(&o, &ob, t);
            }
            if (sk != 0)
                skipped[sk - 1]++;
            if (ob.framing == FR_PRETTY)
                pretty(&o, mark);
            written_records++;
            put(&o, ob.crlf ? "\r\n" : "\n", ob.crlf ? 2 : 1);
            if (pick(200) == 0)
                PUTL(&o, "\n"); /* blank lines are framing, not records */
        }
        if (ob.framing == FR_ARRAY)
            PUTL(&o, "]\n");
        written += n;
        char key[512];
        if (ob.key_region[0] != '\0')
            snprintf(key, sizeof key,
                     "AWSLogs/" ACCOUNT "/BedrockModelInvocationLogs/%s/%s/"
                     "20260420T%02u%02u00000Z_%08x.json.gz",
                     ob.key_region, hour, k, k, (unsigned)rnd());
        else
            snprintf(key, sizeof key, "exports/manual/part-%04u.json.gz", k);
        write_object(dir, key, &o, k == 4 ? 2 : 1);
        fprintf(keys, "log %s\n", key);
    }
    /* Non-log objects: an offloaded body (a JSON document, not records) and the marker. */
    char key[512];
    snprintf(key, sizeof key,
             "AWSLogs/" ACCOUNT "/BedrockModelInvocationLogs/us-east-1/%s/data/"
             "0b6f5a1e-734e-470b-8dfc-1d2e3f4a5b6c_input.json.gz",
             hour);
    o.len = 0;
    PUTL(&o, "{\"modelId\":\"amazon.nova-lite-v1:0\",\"timestamp\":\"2026-04-20T00:00:00Z\"}\n");
    write_object(dir, key, &o, 1);
    fprintf(keys, "ignored %s\n", key);
    snprintf(key, sizeof key,
             "AWSLogs/" ACCOUNT "/BedrockModelInvocationLogs/"
             "amazon-bedrock-logs-permission-check");
    {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, key);
        mkdirs(path);
        FILE *f = fopen(path, "wb");
        if (f == NULL || fclose(f) != 0)
            die(path);
    }
    fprintf(keys, "ignored %s\n", key);
    if (fclose(keys) != 0)
        die(keys_path);

    /* expected.json, from the bookkeeping above */
    char exp_path[4096];
    snprintf(exp_path, sizeof exp_path, "%s/expected.json", dir);
    FILE *f = fopen(exp_path, "w");
    if (f == NULL)
        die(exp_path);
    uint64_t n_skipped = 0;
    for (int s = 0; s < SK__N; s++)
        n_skipped += skipped[s];
    fprintf(f,
            "{\"seed\":%llu,\"start\":%lld,\"span\":%lld,\"written\":%llu,\"records\":%llu,"
            "\"objects\":{\"log\":%u,\"ignored\":2},\"app_profile_map\":\"" APP_MAP "\","
            "\"totals\":{",
            (unsigned long long)seed, (long long)t0, (long long)span,
            (unsigned long long)written_records, (unsigned long long)counted, n_objects);
    put_counters(f, &total);
    fprintf(f, "},\"skipped\":{\"total\":%llu", (unsigned long long)n_skipped);
    for (int s = 0; s < SK__N; s++)
        fprintf(f, ",\"%s\":%llu", skip_code[s], (unsigned long long)skipped[s]);
    fprintf(f, "},\"informational\":{\"BMAS-006\":%llu}", (unsigned long long)app_unmapped);

    /* rows and per-dimension maps, sorted so the file is stable for a seed */
    char **ks = malloc(sizeof *ks * n_slots_used);
    struct counters **cs = malloc(sizeof *cs * n_slots_used);
    if (ks == NULL || cs == NULL)
        die("malloc");
    size_t nk = 0;
    for (size_t i = 0; i < SLOTS; i++)
        if (table[i].key != NULL)
            ks[nk++] = table[i].key;
    qsort(ks, nk, sizeof *ks, cmp_str);
    for (size_t i = 0; i < nk; i++)
        cs[i] = tally(ks[i]);
    static const char *const dims[] = {"profile_type", "model_id", "source_region",
                                       "inference_region"};
    for (size_t d = 0; d < 4; d++) {
        fprintf(f, ",\"by_%s\":{", dims[d]);
        int first = 1;
        size_t dl = strlen(dims[d]);
        for (size_t i = 0; i < nk; i++) {
            if (strncmp(ks[i], dims[d], dl) != 0 || ks[i][dl] != '\t')
                continue;
            fputs(first ? "" : ",", f);
            first = 0;
            put_json_str(f, ks[i] + dl + 1);
            fputs(":{", f);
            put_counters(f, cs[i]);
            fputc('}', f);
        }
        fputc('}', f);
    }
    /* per switch: rows by profile_type and model_id */
    static const char *const switches[] = {"ENABLE_CROSS_REGION_DETECTION=false",
                                           "ENABLE_GLOBAL_CROSS_REGION=false"};
    fputs(",\"switches\":{", f);
    for (size_t w = 0; w < 2; w++) {
        fprintf(f, "%s\"%s\":[", w ? "," : "", switches[w]);
        char prefix[128];
        snprintf(prefix, sizeof prefix, "sw\t%s\t", switches[w]);
        size_t pl = strlen(prefix);
        int first_sw = 1;
        for (size_t i = 0; i < nk; i++) {
            if (strncmp(ks[i], prefix, pl) != 0)
                continue;
            const char *type = ks[i] + pl;
            const char *tab = strchr(type, '\t');
            fprintf(f, "%s{\"profile_type\":\"%.*s\",\"model_id\":", first_sw ? "" : ",",
                    (int)(tab - type), type);
            first_sw = 0;
            put_json_str(f, tab + 1);
            fputc(',', f);
            put_counters(f, cs[i]);
            fputc('}', f);
        }
        fputc(']', f);
    }
    fputc('}', f);
    static const char *const row_keys[] = {"model_id",      "profile_type",     "profile_id",
                                           "source_region", "inference_region", "operation"};
    fputs(",\"rows\":[", f);
    int first = 1;
    for (size_t i = 0; i < nk; i++) {
        if (strncmp(ks[i], "row\t", 4) != 0)
            continue;
        fputs(first ? "{" : ",{", f);
        first = 0;
        char *p = ks[i] + 4;
        for (int j = 0; j < 6; j++) {
            char *tab = strchr(p, '\t');
            if (tab != NULL)
                *tab = '\0';
            fprintf(f, "\"%s\":", row_keys[j]);
            put_json_str(f, p);
            fputc(',', f);
            p = tab ? tab + 1 : p + strlen(p);
        }
        put_counters(f, cs[i]);
        fputc('}', f);
    }
    fputs("]}\n", f);
    if (fclose(f) != 0)
        die(exp_path);
    fprintf(stderr,
            "gen_corpus: %llu records written in %u objects: %llu records counted, %llu skipped\n",
            (unsigned long long)written_records, n_objects, (unsigned long long)counted,
            (unsigned long long)n_skipped);
    for (size_t i = 0; i < SLOTS; i++)
        free(table[i].key); /* so LeakSanitizer stays quiet in the asan variant */
    free(ks);
    free(cs);
    free(o.p);
    return 0;
}
