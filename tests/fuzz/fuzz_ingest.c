/* fuzz_ingest.c: libFuzzer target for the whole ingest pipeline (gunzip, framer, record
 * reader, classification, aggregation). The first byte picks where the input is split in two
 * chunks, so chunk-boundary handling is fuzzed too; small caps reach the limit paths. */
#include <stddef.h>
#include <stdint.h>

#include "core/bm_core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    struct bm_ingest_opts o = {
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
        return 0;
    bm_err rc = bm_ingest_feed(in, data, split);
    if (rc == BM_OK)
        rc = bm_ingest_feed(in, data + split, size - split);
    if (rc == BM_OK)
        rc = bm_ingest_finish(in);
    if (rc == BM_OK) {
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
    return 0;
}
