/* tu_envelope.h: helpers of the envelope tests (test_core_envelope*.c): event bodies built
 * with real escaping, and parse wrappers that fail the test with the parser's message. */
#ifndef BM_TU_ENVELOPE_H
#define BM_TU_ENVELOPE_H

#include "tu.h"

#define TU_BUCKET "my-bedrock-logs"
#define TU_KEY "AWSLogs/1/BedrockModelInvocationLogs/us-east-1/2026/04/20/00/x.json.gz"
#define TU_ETAG "d41d8cd98f00b204e9800998ecf8427e"

/* A Lambda SQS event whose message i (id "m<i>") has bodies[i] as its body string. */
static inline char *tu_sqs_event(const char *const *bodies, size_t n)
{
    struct bm_buf b;
    bm_buf_init(&b, (size_t)1 << 30);
    assert_int_equal(bm_buf_append_str(&b, "{\"Records\":["), BM_OK);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(bm_buf_appendf(&b,
                                        "%s{\"messageId\":\"m%zu\",\"receiptHandle\":\"r\","
                                        "\"eventSource\":\"aws:sqs\",\"attributes\":"
                                        "{\"ApproximateReceiveCount\":\"%zu\"},\"body\":",
                                        i ? "," : "", i, i + 1),
                         BM_OK);
        assert_int_equal(bm_buf_append_json_str(&b, bodies[i], strlen(bodies[i])), BM_OK);
        assert_int_equal(bm_buf_append_char(&b, '}'), BM_OK);
    }
    assert_int_equal(bm_buf_append_str(&b, "]}"), BM_OK);
    return bm_buf_steal(&b);
}

/* An S3 notification of one record; obj is the inside of "object":{…}, bucket its name. */
static inline char *tu_s3_event(const char *bucket, const char *obj)
{
    struct bm_buf b;
    bm_buf_init(&b, (size_t)1 << 20);
    assert_int_equal(bm_buf_appendf(&b,
                                    "{\"Records\":[{\"eventVersion\":\"2.1\",\"eventSource\":"
                                    "\"aws:s3\",\"eventName\":\"ObjectCreated:Put\",\"s3\":{"
                                    "\"bucket\":{\"name\":\"%s\"},\"object\":{%s}}}]}",
                                    bucket, obj),
                     BM_OK);
    return bm_buf_steal(&b);
}

static inline struct bm_event_batch *tu_parse_ok(const char *body, size_t max)
{
    struct bm_event_batch *b = NULL;
    struct bm_errmsg em = {{0}};
    bm_err rc = bm_envelope_parse(body, strlen(body), max, &b, &em);
    if (rc != BM_OK)
        fail_msg("parse failed: %s", em.text);
    return b;
}

/* Parses body expecting the whole-body error want; returns nothing, checks em is said. */
static inline void tu_parse_err(const char *body, size_t len, size_t max, bm_err want)
{
    struct bm_event_batch *b = NULL;
    struct bm_errmsg em = {{0}};
    bm_err rc = bm_envelope_parse(body, len, max, &b, &em);
    if (rc != want)
        fail_msg("want %s, got %s (%s) for %.80s", bm_err_str(want), bm_err_str(rc), em.text, body);
    assert_null(b);
    assert_true(strlen(em.text) > 0);
}

/* One SQS message with body; its parse_err into *err (BM_OK when it parsed), message text
 * into why. Checks that a failed message names no object. */
static inline size_t tu_one_message(const char *body, bm_err *err, char *why, size_t cap)
{
    char *ev = tu_sqs_event(&body, 1);
    struct bm_event_batch *b = tu_parse_ok(ev, 10);
    assert_int_equal(b->n, 1);
    *err = b->msgs[0].parse_err;
    snprintf(why, cap, "%s", b->msgs[0].parse_msg.text);
    size_t n = b->msgs[0].nrefs;
    if (*err != BM_OK)
        assert_int_equal(n, 0);
    bm_event_batch_free(b);
    bm_free(ev);
    return n;
}

#endif
