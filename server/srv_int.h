/* srv_int.h: declarations private to server/ and its unit tests. */
#ifndef BM_SRV_INT_H
#define BM_SRV_INT_H

#include "server/bm_server.h"

#include <pthread.h>

/* One `bmas ingest` run: the merged totals and counters, shared by the file reader and the
 * S3 backfill workers (all updates under mu). */
struct bm__ingest_run {
    const struct bm_config *cfg;
    struct bm_ingest_opts o;
    struct bm_agg *all;
    pthread_mutex_t mu;
    FILE *err;
    /* Counters for the summary line. */
    uint64_t sources, failed, ignored, records, invalid;
    uint64_t errors[BM_ERR_WIRE_N];
    /* Progress on a terminal. */
    bool tty;
    uint64_t objects_done, objects_seen, bytes;
    int64_t last_progress_ms;
    /* The AWS side, set up on the first s3:// source. */
    bool aws_ready;
    struct bm_http_ops http;
    struct bm_creds_provider *creds;
    struct bm_aws aws;
};

/* Records one object's outcome: merges its delta into the totals when it was read whole,
 * prints what went wrong. in may be NULL (the object failed before it was read). Returns
 * rc, or the merge's error. Thread-safe. */
bm_err bm__ingest_account(struct bm__ingest_run *r, const char *name, struct bm_ingest *in,
                          bm_err rc, const struct bm_errmsg *em);
/* Reads every object behind an s3:// URI (one key, or all keys under a prefix ending in '/')
 * with BMAS_FETCH_CONCURRENCY workers. Returns BM_OK when all were read. */
bm_err bm__backfill(struct bm__ingest_run *r, const char *uri);

#endif
