/* fuzz_envelope.c: libFuzzer target for POST /events bodies and SQS message bodies (core/
 * envelope.c, envelope_msg.c). Besides memory errors it checks what the service relies on: a
 * batch never exceeds its cap, a failed message names no object, and every object named passes
 * S3's rules (s3_names.c), so nothing unchecked reaches a URL or an identity. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/bm_aws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_message(const struct bm_message *m)
{
    if (m->parse_err != BM_OK && m->nrefs != 0)
        abort();
    for (size_t i = 0; i < m->nrefs; i++) {
        const struct bm_object_ref *r = &m->refs[i];
        if (r->kind == BM_REF_TEST_EVENT)
            continue;
        char etag[BM_S3_ETAG_MAX + 1];
        if (bm_s3_bucket_check(r->bucket, strlen(r->bucket)) != NULL ||
            bm_s3_key_check(r->key, strlen(r->key)) != NULL)
            abort();
        if (r->version_id[0] != '\0' &&
            bm_s3_version_check(r->version_id, strlen(r->version_id)) != NULL)
            abort();
        /* The ETag kept is already in normal form: normalising it again changes nothing. */
        if (r->etag[0] != '\0' && (bm_s3_etag_normalize(r->etag, strlen(r->etag), etag) != NULL ||
                                   strcmp(etag, r->etag) != 0))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    size_t max = 1 + (size % 16); /* small caps reach the BATCH_SIZE path */
    struct bm_event_batch *b = NULL;
    struct bm_errmsg em;
    bm_err rc = bm_envelope_parse(body, size, max, &b, &em);
    if (rc == BM_OK) {
        if (b->n == 0 || b->n > max || (!b->is_sqs && b->n != 1))
            abort();
        for (size_t i = 0; i < b->n; i++) {
            if (b->is_sqs && b->msgs[i].message_id[0] == '\0')
                abort();
            check_message(&b->msgs[i]);
        }
        bm_event_batch_free(b);
    } else if (b != NULL || (rc != BM_E_MSG_PARSE && rc != BM_E_TOO_LARGE && rc != BM_E_NOMEM)) {
        abort();
    }
    /* The consumer's path: the same bytes as one SQS message body. */
    struct bm_message m;
    if (bm_message_parse_body("id", 1, body, size, &m) == BM_OK)
        check_message(&m);
    bm_message_cleanup(&m);
    return 0;
}
