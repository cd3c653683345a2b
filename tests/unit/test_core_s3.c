/* S3 over a scripted transport: URL and key encoding, the 404/403/5xx paths, retries with
 * backoff, a retry after a partial body counting nothing twice, and ListObjectsV2 parsing. */
#include "fake_http.h"

/* 2026-04-20T00:00:00Z */
#define NOW_S 1776643200

static void env_setup(struct fake_aws *e, const char *const *vars)
{
    fake_aws_setup(e, vars, NOW_S);
}

static const char *const custom_env[] = {"AWS_ACCESS_KEY_ID",
                                         "AKIDTEST",
                                         "AWS_SECRET_ACCESS_KEY",
                                         "secret",
                                         "AWS_SESSION_TOKEN",
                                         "tok",
                                         "AWS_ENDPOINT_URL",
                                         "http://127.0.0.1:4566/",
                                         "MAX_RETRY_ATTEMPTS",
                                         "4",
                                         "AWS_REGION",
                                         "eu-west-1",
                                         NULL};

struct collect {
    struct bm_buf data;
    int resets;
};

static bm_err c_reset(void *ctx)
{
    struct collect *c = ctx;
    c->resets++;
    bm_buf_reset(&c->data);
    return BM_OK;
}

static bm_err c_sink(void *ctx, const char *p, size_t n)
{
    return bm_buf_append(&((struct collect *)ctx)->data, p, n);
}

static void test_urls(void **state)
{
    (void)state;
    static const struct {
        const char *const *env;
        const char *bucket, *key, *url;
    } cases[] = {
        {custom_env, "logs", "team a/\xC3\xBC+x%.json.gz",
         "http://127.0.0.1:4566/logs/team%20a/%C3%BC%2Bx%25.json.gz"},
        {custom_env, "logs", "(1)~!*'=&?#.gz",
         "http://127.0.0.1:4566/logs/%281%29~%21%2A%27%3D%26%3F%23.gz"},
        {custom_env, "logs", "a//b/./c", "http://127.0.0.1:4566/logs/a//b/./c"},
        {NULL, "logs", "AWSLogs/1/x.json.gz",
         "https://logs.s3.eu-central-1.amazonaws.com/AWSLogs/1/x.json.gz"},
        {NULL, "my.logs", "k", "https://s3.eu-central-1.amazonaws.com/my.logs/k"},
    };
    static const char *const aws_env[] = {
        "AWS_ACCESS_KEY_ID", "A", "AWS_SECRET_ACCESS_KEY", "S", "AWS_REGION", "eu-central-1", NULL};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct fake_aws e;
        env_setup(&e, cases[i].env ? cases[i].env : aws_env);
        fake_push(&e.http, (struct fake_resp){.status = 200, .body = "x"});
        struct collect c;
        bm_buf_init(&c.data, 1024);
        c.resets = 0;
        struct bm_errmsg em = {{0}};
        assert_int_equal(bm_s3_get_object(&e.aws, cases[i].bucket, cases[i].key, NULL, NULL,
                                          c_reset, c_sink, &c, NULL, &em),
                         BM_OK);
        assert_string_equal(e.http.calls[0].url, cases[i].url);
        assert_string_equal(e.http.calls[0].service, "s3");
        assert_string_equal(e.http.calls[0].method, "GET");
        bm_buf_cleanup(&c.data);
        fake_aws_teardown(&e);
    }
    /* A version id goes in the (signed, encoded) query. */
    struct fake_aws e;
    env_setup(&e, custom_env);
    fake_push(&e.http, (struct fake_resp){.status = 200, .body = "x"});
    struct collect c;
    bm_buf_init(&c.data, 1024);
    assert_int_equal(bm_s3_get_object(&e.aws, "bkt", "k", "3/L4kqtJl+cUc", NULL, c_reset, c_sink,
                                      &c, NULL, NULL),
                     BM_OK);
    assert_string_equal(e.http.calls[0].url,
                        "http://127.0.0.1:4566/bkt/k?versionId=3%2FL4kqtJl%2BcUc");
    assert_string_equal(e.http.calls[0].token, "tok"); /* session token travels with creds */
    bm_buf_cleanup(&c.data);
    fake_aws_teardown(&e);
}

/* S3 answers a version id on an unversioned bucket with 400 InvalidArgument: for a GetObject of
 * a version that is "no such object" (BMAS-001), not an upstream failure, and not retried. */
static void test_unknown_version_is_not_found(void **state)
{
    (void)state;
    struct fake_aws e;
    env_setup(&e, custom_env);
    fake_push(&e.http, (struct fake_resp){.status = 400,
                                          .body = "<Error><Code>InvalidArgument</Code>"
                                                  "<Message>Invalid version id specified</Message>"
                                                  "</Error>"});
    struct collect c;
    bm_buf_init(&c.data, 1024);
    struct bm_errmsg em = {{0}};
    assert_int_equal(
        bm_s3_get_object(&e.aws, "bkt", "k", "v1", NULL, c_reset, c_sink, &c, NULL, &em),
        BM_E_S3_NOT_FOUND);
    assert_int_equal(e.http.ncalls, 1);
    assert_non_null(strstr(em.text, "no such version"));
    bm_buf_cleanup(&c.data);
    fake_aws_teardown(&e);
}

static void test_error_paths(void **state)
{
    (void)state;
    static const struct {
        long status;
        const char *body;
        bm_err rc;
        size_t calls;
    } cases[] = {
        {404, "<Error><Code>NoSuchKey</Code><Message>gone</Message></Error>", BM_E_S3_NOT_FOUND, 1},
        {404, "<Error><Code>NoSuchBucket</Code></Error>", BM_E_S3_NOT_FOUND, 1},
        {403, "<Error><Code>AccessDenied</Code></Error>", BM_E_S3_DENIED, 1},
        {403, "<Error><Code>SignatureDoesNotMatch</Code></Error>", BM_E_S3_DENIED, 1},
        {400, "<Error><Code>InvalidArgument</Code></Error>", BM_E_UPSTREAM, 1},
        {503, "<Error><Code>SlowDown</Code></Error>", BM_E_UPSTREAM, 4},
        {500, "<Error><Code>InternalError</Code></Error>", BM_E_UPSTREAM, 4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct fake_aws e;
        env_setup(&e, custom_env);
        for (int k = 0; k < 4; k++)
            fake_push(&e.http,
                      (struct fake_resp){.status = cases[i].status, .body = cases[i].body});
        struct collect c;
        bm_buf_init(&c.data, 1024);
        c.resets = 0;
        struct bm_errmsg em = {{0}};
        struct bm_s3_object_info info;
        bm_err rc =
            bm_s3_get_object(&e.aws, "bkt", "k", NULL, NULL, c_reset, c_sink, &c, &info, &em);
        assert_int_equal(rc, cases[i].rc);
        assert_int_equal(e.http.ncalls, cases[i].calls);
        assert_int_equal(info.attempts, (int)cases[i].calls);
        assert_int_equal(c.resets, (int)cases[i].calls);
        assert_int_equal(e.clock.sleeps, (int)cases[i].calls - 1);
        /* Full jitter: each wait below its capped ceiling, 200 ms doubling to 5 s. */
        assert_true(e.clock.slept_ms < 200 + 400 + 800);
        assert_true(strlen(em.text) > 0);
        bm_buf_cleanup(&c.data);
        fake_aws_teardown(&e);
    }
}

static void test_expired_token_refreshes_once(void **state)
{
    (void)state;
    struct fake_aws e;
    env_setup(&e, custom_env);
    fake_push(&e.http, (struct fake_resp){.status = 403,
                                          .body = "<Error><Code>ExpiredToken</Code></Error>"});
    fake_push(&e.http, (struct fake_resp){.status = 200, .body = "fresh"});
    struct collect c;
    bm_buf_init(&c.data, 1024);
    c.resets = 0;
    assert_int_equal(
        bm_s3_get_object(&e.aws, "bkt", "k", NULL, NULL, c_reset, c_sink, &c, NULL, NULL), BM_OK);
    assert_int_equal(e.http.ncalls, 2);
    assert_string_equal(c.data.data, "fresh");
    bm_buf_cleanup(&c.data);
    fake_aws_teardown(&e);
    /* Twice expired: the second 403 is final. */
    env_setup(&e, custom_env);
    for (int i = 0; i < 3; i++)
        fake_push(&e.http, (struct fake_resp){.status = 403,
                                              .body = "<Error><Code>ExpiredToken</Code></Error>"});
    bm_buf_init(&c.data, 1024);
    assert_int_equal(
        bm_s3_get_object(&e.aws, "bkt", "k", NULL, NULL, c_reset, c_sink, &c, NULL, NULL),
        BM_E_S3_DENIED);
    assert_int_equal(e.http.ncalls, 2);
    bm_buf_cleanup(&c.data);
    fake_aws_teardown(&e);
}

static void test_if_match(void **state)
{
    (void)state;
    struct fake_aws e;
    env_setup(&e, custom_env);
    fake_push(&e.http,
              (struct fake_resp){.status = 412,
                                 .body = "<Error><Code>PreconditionFailed</Code></Error>"});
    struct collect c;
    bm_buf_init(&c.data, 1024);
    struct bm_errmsg em = {{0}};
    assert_int_equal(
        bm_s3_get_object(&e.aws, "bkt", "k", NULL, "abc-2", c_reset, c_sink, &c, NULL, &em),
        BM_E_SUPERSEDED);
    assert_int_equal(e.http.ncalls, 1); /* not retried: the newer object has its own event */
    assert_int_equal(e.http.calls[0].nheaders, 1);
    assert_string_equal(e.http.calls[0].headers[0], "If-Match: \"abc-2\"");
    fake_aws_teardown(&e);
    /* With a version id the bytes are named exactly: no condition needed. */
    env_setup(&e, custom_env);
    fake_push(&e.http, (struct fake_resp){.status = 200, .body = "x"});
    assert_int_equal(
        bm_s3_get_object(&e.aws, "bkt", "k", "v1", "abc", c_reset, c_sink, &c, NULL, &em), BM_OK);
    assert_int_equal(e.http.calls[0].nheaders, 0);
    bm_buf_cleanup(&c.data);
    fake_aws_teardown(&e);
}

static void test_partial_body_retry_counts_once(void **state)
{
    (void)state;
    size_t slen = 0, zlen = 0;
    char *sample = tu_read_file(tu_data("bedrock-log-sample.jsonl"), &slen);
    assert_non_null(sample);
    unsigned char *z = tu_gzip(sample, slen, &zlen, 6);
    struct fake_aws e;
    env_setup(&e, custom_env);
    /* Half the object, then the connection drops; a 503; a 500 with half again; then whole. */
    fake_push(&e.http,
              (struct fake_resp){
                  .status = 200, .body = (char *)z, .body_len = zlen, .fail_after = zlen / 2});
    fake_push(&e.http,
              (struct fake_resp){.status = 503, .body = "<Error><Code>SlowDown</Code></Error>"});
    fake_push(&e.http,
              (struct fake_resp){
                  .status = 200, .body = (char *)z, .body_len = zlen, .fail_after = zlen - 3});
    fake_push(&e.http, (struct fake_resp){
                           .status = 200, .body = (char *)z, .body_len = zlen, .etag = "abc"});
    struct bm_ingest_opts o = {.max_line_bytes = 1 << 20,
                               .max_object_bytes = 1 << 30,
                               .bucket_seconds = 60,
                               .max_series = 100,
                               .cls = {true, true, NULL}};
    struct bm_ingest *in = NULL;
    struct bm_s3_object_info info;
    struct bm_errmsg em = {{0}};
    assert_int_equal(
        bm_fetch_object(&e.aws, &o, "bkt", "AWSLogs/1/x.json.gz", NULL, NULL, &in, &info, &em),
        BM_OK);
    assert_int_equal(info.attempts, 4);
    assert_string_equal(info.etag, "abc");
    struct bm_counters t;
    bm_agg_totals(bm_ingest_agg(in), &t);
    assert_int_equal(t.invocations, 4); /* not 4 + 2 + 4: the partial attempts left nothing */
    assert_int_equal(t.input.sum, 269);
    assert_int_equal(t.cache_write.sum, 225913);
    bm_ingest_free(in);
    fake_aws_teardown(&e);

    /* All attempts fail: nothing is returned. */
    env_setup(&e, custom_env);
    for (int i = 0; i < 4; i++)
        fake_push(&e.http,
                  (struct fake_resp){
                      .status = 200, .body = (char *)z, .body_len = zlen, .fail_after = zlen / 3});
    in = NULL;
    assert_int_equal(bm_fetch_object(&e.aws, &o, "bkt", "k", NULL, NULL, &in, &info, &em),
                     BM_E_UPSTREAM);
    assert_null(in);
    fake_aws_teardown(&e);

    /* A corrupt object is not retried: the data, not the network, is wrong. */
    env_setup(&e, custom_env);
    z[zlen - 5] ^= 0xFF;
    fake_push(&e.http, (struct fake_resp){.status = 200, .body = (char *)z, .body_len = zlen});
    assert_int_equal(bm_fetch_object(&e.aws, &o, "bkt", "k", NULL, NULL, &in, &info, &em),
                     BM_E_GZIP);
    assert_int_equal(e.http.ncalls, 1);
    fake_aws_teardown(&e);
    bm_free(z);
    bm_free(sample);
}

struct listed {
    char keys[8][256];
    uint64_t sizes[8];
    char etags[8][64];
    int n;
};

static bm_err on_key(void *ctx, const char *key, uint64_t size, const char *etag)
{
    struct listed *l = ctx;
    snprintf(l->keys[l->n], sizeof l->keys[0], "%s", key);
    snprintf(l->etags[l->n], sizeof l->etags[0], "%s", etag);
    l->sizes[l->n++] = size;
    return BM_OK;
}

static void test_list(void **state)
{
    (void)state;
    struct fake_aws e;
    env_setup(&e, custom_env);
    fake_push(&e.http,
              (struct fake_resp){
                  .status = 200,
                  .body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult "
                          "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name>"
                          "<Prefix>a b/</Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys>"
                          "<IsTruncated>true</IsTruncated><NextContinuationToken>1/x+y=="
                          "</NextContinuationToken><Contents><Key>a b/R&amp;D &lt;1&gt;.gz"
                          "</Key><LastModified>2026-04-20T00:00:00.000Z</LastModified><ETag>"
                          "&quot;0cc175b9c0f1b6a831c399e269772661&quot;</ETag><Size>18342</Size>"
                          "<StorageClass>STANDARD</StorageClass></Contents><Contents><Key>a b/"
                          "caf&#xE9;&#233;.gz</Key><Size>0</Size><ETag>\"d41d8\"</ETag>"
                          "</Contents></ListBucketResult>"});
    fake_push(&e.http, (struct fake_resp){.status = 200,
                                          .body = "<ListBucketResult><IsTruncated>false"
                                                  "</IsTruncated></ListBucketResult>"});
    struct listed l = {0};
    struct bm_buf next;
    bm_buf_init(&next, 4096);
    struct bm_errmsg em = {{0}};
    assert_int_equal(bm_s3_list_page(&e.aws, "bkt", "a b/", NULL, on_key, &l, &next, &em), BM_OK);
    assert_string_equal(e.http.calls[0].url,
                        "http://127.0.0.1:4566/bkt?list-type=2&prefix=a%20b%2F");
    assert_int_equal(l.n, 2);
    assert_string_equal(l.keys[0], "a b/R&D <1>.gz");
    assert_int_equal(l.sizes[0], 18342);
    assert_string_equal(l.etags[0], "0cc175b9c0f1b6a831c399e269772661");
    assert_string_equal(l.keys[1], "a b/caf\xC3\xA9\xC3\xA9.gz");
    assert_string_equal(next.data, "1/x+y==");
    /* The token goes first: query parameters sorted by name for SigV4. */
    assert_int_equal(bm_s3_list_page(&e.aws, "bkt", "a b/", next.data, on_key, &l, &next, &em),
                     BM_OK);
    assert_string_equal(e.http.calls[1].url, "http://127.0.0.1:4566/bkt?continuation-token="
                                             "1%2Fx%2By%3D%3D&list-type=2&prefix=a%20b%2F");
    assert_int_equal(next.len, 0);
    bm_buf_cleanup(&next);
    fake_aws_teardown(&e);
}

static void test_parse_uri(void **state)
{
    (void)state;
    struct bm_buf b, k;
    bm_buf_init(&b, 1024);
    bm_buf_init(&k, 1024);
    assert_true(bm_s3_parse_uri("s3://logs/AWSLogs/1/x.gz", &b, &k));
    assert_string_equal(b.data, "logs");
    assert_string_equal(k.data, "AWSLogs/1/x.gz");
    assert_true(bm_s3_parse_uri("s3://logs", &b, &k));
    assert_string_equal(k.data, "");
    assert_false(bm_s3_parse_uri("s3:///x", &b, &k));
    assert_false(bm_s3_parse_uri("https://logs/x", &b, &k));
    bm_buf_cleanup(&b);
    bm_buf_cleanup(&k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_error_paths),
        cmocka_unit_test(test_unknown_version_is_not_found),
        cmocka_unit_test(test_expired_token_refreshes_once),
        cmocka_unit_test(test_if_match),
        cmocka_unit_test(test_partial_body_retry_counts_once),
        cmocka_unit_test(test_list),
        cmocka_unit_test(test_parse_uri),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
