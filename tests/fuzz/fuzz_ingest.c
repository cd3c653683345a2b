/* fuzz_ingest.c: libFuzzer target for the whole ingest pipeline (gunzip, framer, record
 * reader, classification, aggregation). The first byte picks where the input is split in two
 * chunks, so chunk-boundary handling is fuzzed too; small caps reach the limit paths. With
 * ISA-L built in, every input also goes through the other inflate engine, which must agree:
 * the same outcome, and the same totals when both counted it (a differential test). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/bm_ingest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One pass with engine e: its result, and its totals in *t when it counted the input. */
static bm_err one(const uint8_t *data, size_t size, enum bm_inflate e, struct bm_counters *t);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bm_counters a, b;
    bm_err ra = one(data, size, BM_INFLATE_ZLIB, &a);
    if (bm_inflate_has_isal()) {
        bm_err rb = one(data, size, BM_INFLATE_ISAL, &b);
        /* Out of memory is the one outcome that may differ (the engines allocate apart). */
        if (ra != BM_E_NOMEM && rb != BM_E_NOMEM &&
            (ra != rb || (ra == BM_OK && memcmp(&a, &b, sizeof a) != 0)))
            abort();
    }
    return 0;
}

static bm_err one(const uint8_t *data, size_t size, enum bm_inflate e, struct bm_counters *t)
{
    memset(t, 0, sizeof *t);
    if (size == 0)
        return BM_OK;
    struct bm_ingest_opts o = {
        .inflate = e,
        .max_line_bytes = 512,
        .max_object_bytes = 1 << 20,
        .bucket_seconds = 60,
        .max_series = 64,
        .cls = {.cross_region = true, .global_cross_region = (data[0] & 1) != 0},
    };
    size_t split = size > 1 ? data[0] % size : 0;
    data++;
    size--;
    if (split > size)
        split = size;
    struct bm_ingest *in =
        bm_ingest_new(&o, "AWSLogs/1/BedrockModelInvocationLogs/us-east-1/2026/04/20/00/x.gz");
    if (in == NULL)
        return BM_E_NOMEM;
    bm_err rc = bm_ingest_feed(in, data, split);
    if (rc == BM_OK)
        rc = bm_ingest_feed(in, data + split, size - split);
    if (rc == BM_OK)
        rc = bm_ingest_finish(in);
    if (rc == BM_OK) {
        for (size_t i = 0; i < bm_agg_count(bm_ingest_agg(in)); i++) {
            const struct bm_counters *c = &bm_agg_at(bm_ingest_agg(in), i)->c;
            t->invocations += c->invocations;
            t->input.sum += c->input.sum;
            t->output.sum += c->output.sum;
            t->cache_read.sum += c->cache_read.sum;
            t->cache_write.sum += c->cache_write.sum;
        }
        /* Whatever was counted must render. */
        struct bm_group_by g;
        struct bm_agg *r = NULL;
        struct bm_buf b;
        bm_buf_init(&b, 1 << 24);
        if (bm_group_by_parse("minute,model_id,profile_type,profile_id,operation", &g, NULL) ==
                BM_OK &&
            bm_agg_regroup(bm_ingest_agg(in), &g, &r) == BM_OK)
            bm_agg_write_json(r, &g, BM_NO_BUCKET, BM_NO_BUCKET, &b);
        bm_agg_free(r);
        bm_buf_cleanup(&b);
    }
    bm_ingest_free(in);
    return rc;
}
