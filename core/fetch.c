/* fetch.c: one S3 log object into a fresh ingest, the step the service and the backfill share.
 * Every attempt starts a new ingest, so a retry after a partial body counts nothing twice: a
 * failed fetch contributes nothing. */
#include "core/bm_aws.h"

#include <string.h>

struct fetch_ctx {
    const struct bm_ingest_opts *o;
    const char *bucket, *key;
    struct bm_ingest *in;
};

static bm_err fetch_reset(void *ctx)
{
    struct fetch_ctx *f = ctx;
    bm_ingest_free(f->in);
    f->in = bm_ingest_new(f->o, f->key);
    if (f->in != NULL)
        bm_ingest_set_bucket(f->in, f->bucket);
    return f->in ? BM_OK : BM_E_NOMEM;
}

static bm_err fetch_sink(void *ctx, const char *data, size_t len)
{
    struct fetch_ctx *f = ctx;
    return bm_ingest_feed(f->in, data, len);
}

bm_err bm_fetch_object(const struct bm_aws *aws, const struct bm_ingest_opts *o, const char *bucket,
                       const char *key, const char *version_id, const char *if_match,
                       struct bm_ingest **out, struct bm_s3_object_info *info, struct bm_errmsg *em)
{
    struct fetch_ctx f = {.o = o, .bucket = bucket, .key = key, .in = NULL};
    bm_err rc = bm_s3_get_object(aws, bucket, key, version_id, if_match, fetch_reset, fetch_sink,
                                 &f, info, em);
    if (rc == BM_OK)
        rc = bm_ingest_finish(f.in);
    if (rc != BM_OK) {
        if (em != NULL && em->text[0] == '\0')
            bm_errmsg_set(em, rc, "%s", bm_err_str(rc));
        bm_ingest_free(f.in);
        return rc;
    }
    *out = f.in;
    return BM_OK;
}
