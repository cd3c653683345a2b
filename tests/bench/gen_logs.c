/* gen_logs.c: writes a realistic Bedrock model-invocation log object for the benchmark:
 * JSON lines of 2-4 KB records with long prompt and response text (ASCII prose, UTF-8 in
 * several scripts, JSON escapes), every operation and modelId shape, gzip-compressed by zlib.
 * Prints the exact totals it wrote as JSON on stderr so the benchmark can check bmas's sums.
 * usage: gen_logs [--mb N | --kb N] [--seed S] [--plain] [--start EPOCH] [--span SECONDS]
 *        > out.json.gz   (timestamps spread over [start, start + span), default the hour
 *        from 2026-04-20T00:00:00Z) */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

/* xorshift64*: deterministic for a seed, so every run benchmarks the same bytes. */
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

static unsigned pick(unsigned n)
{
    return (unsigned)(rnd() % n);
}

static const char *const words[] = {
    "the",        "customer",  "cannot",    "reset",   "password", "after",  "migration",
    "please",     "summarise", "ticket",    "invoice", "refund",   "policy", "latency",
    "region",     "model",     "inference", "profile", "token",    "budget", "quarterly",
    "report",     "analysis",  "of",        "and",     "with",     "for",    "deployment",
    "kubernetes", "cluster",   "database",  "query",
};
/* UTF-8 fragments (raw, as Jackson writes them) and escaped ones (as json.dumps writes). */
static const char *const utf8[] = {
    "caf\xC3\xA9",
    "na\xC3\xAFve",
    "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E",
    "\xD0\xBF\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82",
    "\xF0\x9F\x9A\x80",
    "\xE2\x82\xAC"
    "42",
};
static const char *const escapes[] = {"\\n",        "\\\"quoted\\\"",  "\\\\path\\\\to",
                                      "\\t",        "\\u00e9t\\u00e9", "\\ud83d\\ude00",
                                      "\\/api\\/v1"};

struct out {
    char *buf;
    size_t len, cap;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->len + n > o->cap) {
        o->cap = (o->len + n) * 2;
        o->buf = realloc(o->buf, o->cap);
        if (o->buf == NULL) {
            perror("realloc");
            exit(1);
        }
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void putf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct out *o, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    put(o, tmp, (size_t)n);
}

/* About `bytes` of prose inside a JSON string. */
static void text(struct out *o, size_t bytes)
{
    size_t start = o->len;
    while (o->len - start < bytes) {
        unsigned r = pick(100);
        if (r < 4)
            puts_(o, utf8[pick(sizeof utf8 / sizeof utf8[0])]);
        else if (r < 8)
            puts_(o, escapes[pick(sizeof escapes / sizeof escapes[0])]);
        else
            puts_(o, words[pick(sizeof words / sizeof words[0])]);
        puts_(o, r % 9 == 0 ? ". " : " ");
    }
}

static const char *const models[] = {
    "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "eu.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "global.anthropic.claude-opus-4-5-20251101-v1:0",
    "apac.amazon.nova-pro-v1:0",
    "amazon.nova-lite-v1:0",
    "meta.llama3-1-70b-instruct-v1:0",
    "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-haiku-4-5",
    "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6",
    "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
};
static const char *const ops[] = {"Converse", "ConverseStream", "InvokeModel",
                                  "InvokeModelWithResponseStream"};
static const char *const inf_regions[] = {"us-east-1", "us-east-2", "us-west-2", "eu-west-1",
                                          "ap-southeast-2"};

int main(int argc, char **argv)
{
    uint64_t target = 200ULL << 20;
    int plain = 0;
    int64_t t0 = 1776643200; /* 2026-04-20T00:00:00Z */
    int64_t span = 3600;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--mb") == 0 && i + 1 < argc)
            target = strtoull(argv[++i], NULL, 10) << 20;
        else if (strcmp(argv[i], "--kb") == 0 && i + 1 < argc)
            target = strtoull(argv[++i], NULL, 10) << 10;
        else if (strcmp(argv[i], "--start") == 0 && i + 1 < argc)
            t0 = strtoll(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--span") == 0 && i + 1 < argc)
            span = strtoll(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
            rng_state ^= strtoull(argv[++i], NULL, 10) * 0x100000001B3ULL;
        else if (strcmp(argv[i], "--plain") == 0)
            plain = 1;
        else {
            fprintf(stderr,
                    "usage: gen_logs [--mb N | --kb N] [--seed S] [--plain] [--start EPOCH] "
                    "[--span SECONDS]\n");
            return 2;
        }
    }
    gzFile gz = plain ? NULL : gzdopen(1, "wb6");
    struct out o = {0};
    uint64_t records = 0, in_sum = 0, out_sum = 0, cr_sum = 0, cw_sum = 0, total = 0;
    while (total < target) {
        o.len = 0;
        unsigned m = pick(sizeof models / sizeof models[0]);
        unsigned op = pick(4);
        uint64_t in = 1 + pick(4000), out = pick(1500), cr = pick(3) ? 0 : pick(30000),
                 cw = pick(4) ? 0 : pick(20000);
        /* Spread over the span by bytes written, so time moves evenly through the object. */
        time_t ts = (time_t)(t0 + (int64_t)((double)total / (double)target * (double)span));
        struct tm tm;
        char when[32];
        gmtime_r(&ts, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        putf(&o,
             "{\"timestamp\":\"%s\",\"accountId\":\"123456789012\",\"identity\":{\"arn\":"
             "\"arn:aws:sts::123456789012:assumed-role/app-invoker/s-%u\"},\"region\":"
             "\"us-east-1\",\"requestId\":\"%08x-734e-470b-8dfc-%012llx\",\"operation\":"
             "\"%s\",\"modelId\":\"%s\",\"input\":{\"inputContentType\":\"application/json\","
             "\"inputBodyJson\":{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"",
             when, pick(1000), (unsigned)rnd(), (unsigned long long)(rnd() & 0xFFFFFFFFFFFFULL),
             ops[op], models[m]);
        text(&o, 1200 + pick(1400));
        putf(&o,
             "\"}]}],\"system\":[{\"text\":\"You are a helpful assistant.\"}],"
             "\"inferenceConfig\":{\"maxTokens\":%u,\"temperature\":0.%u}},"
             "\"inputTokenCount\":%llu,\"cacheReadInputTokenCount\":%llu,"
             "\"cacheWriteInputTokenCount\":%llu},\"output\":{\"outputContentType\":"
             "\"application/json\",\"outputBodyJson\":{\"output\":{\"message\":{\"role\":"
             "\"assistant\",\"content\":[{\"text\":\"",
             512 + pick(4096), pick(10), (unsigned long long)in, (unsigned long long)cr,
             (unsigned long long)cw);
        text(&o, 300 + pick(900));
        putf(&o,
             "\"}]}},\"stopReason\":\"end_turn\",\"metrics\":{\"latencyMs\":%u},\"usage\":{"
             "\"inputTokens\":%llu,\"outputTokens\":%llu,\"totalTokens\":%llu}},"
             "\"outputTokenCount\":%llu},\"inferenceRegion\":\"%s\",\"schemaType\":"
             "\"ModelInvocationLog\",\"schemaVersion\":\"1.0\"}\n",
             200 + pick(9000), (unsigned long long)in, (unsigned long long)out,
             (unsigned long long)(in + out), (unsigned long long)out,
             inf_regions[pick(sizeof inf_regions / sizeof inf_regions[0])]);
        if (plain ? fwrite(o.buf, 1, o.len, stdout) != o.len
                  : gzwrite(gz, o.buf, (unsigned)o.len) != (int)o.len) {
            fprintf(stderr, "gen_logs: write failed\n");
            return 1;
        }
        total += o.len;
        records++;
        in_sum += in;
        out_sum += out;
        cr_sum += cr;
        cw_sum += cw;
    }
    if (gz != NULL && gzclose(gz) != Z_OK)
        return 1;
    fprintf(stderr,
            "{\"records\":%llu,\"bytes\":%llu,\"invocations\":%llu,\"input_tokens\":%llu,"
            "\"output_tokens\":%llu,\"cache_read_input_tokens\":%llu,"
            "\"cache_write_input_tokens\":%llu}\n",
            (unsigned long long)records, (unsigned long long)total, (unsigned long long)records,
            (unsigned long long)in_sum, (unsigned long long)out_sum, (unsigned long long)cr_sum,
            (unsigned long long)cw_sum);
    free(o.buf);
    return 0;
}
