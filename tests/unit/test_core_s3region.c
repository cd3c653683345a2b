/* S3 buckets in another region than AWS_REGION, over a scripted transport: a 301
 * PermanentRedirect (x-amz-bucket-region) or a 400 AuthorizationHeaderMalformed (<Region>)
 * followed once, the request signed again for the bucket's region (its credential scope), the
 * region kept for the bucket's next requests (GetObject, HeadObject, ListObjectsV2), a malformed
 * region and a second redirect refused; the region shape check and the bounded cache. */
#include "fake_http.h"

/* 2026-04-20T00:00:00Z */
#define NOW_S 1776643200

static const char *const custom_env[] = {"AWS_ACCESS_KEY_ID",
                                         "AKIDTEST",
                                         "AWS_SECRET_ACCESS_KEY",
                                         "secret",
                                         "AWS_ENDPOINT_URL",
                                         "http://127.0.0.1:4566/",
                                         "MAX_RETRY_ATTEMPTS",
                                         "3",
                                         "AWS_REGION",
                                         "us-east-1",
                                         NULL};
static const char *const aws_env[] = {
    "AWS_ACCESS_KEY_ID", "A", "AWS_SECRET_ACCESS_KEY", "S", "AWS_REGION", "us-east-1", NULL};

#define MOVED_BODY                                                                                 \
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>PermanentRedirect</Code><Message>"   \
    "The bucket you are attempting to access must be addressed using the specified endpoint. "     \
    "Please send all future requests to this endpoint.</Message><Endpoint>"                        \
    "logs.s3.eu-west-1.amazonaws.com</Endpoint><Bucket>logs</Bucket></Error>"
#define MALFORMED_BODY(r)                                                                          \
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AuthorizationHeaderMalformed"        \
    "</Code><Message>The authorization header is malformed; the region 'us-east-1' is wrong; "     \
    "expecting '" r "'</Message><Region>" r "</Region><RequestId>1</RequestId></Error>"

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

static bm_err get(struct fake_aws *e, const char *bucket, const char *key, struct collect *c,
                  struct bm_errmsg *em)
{
    bm_buf_reset(&c->data);
    return bm_s3_get_object(&e->aws, bucket, key, NULL, NULL, c_reset, c_sink, c, NULL, em);
}

static bm_err on_key(void *ctx, const char *key, uint64_t size, const char *etag)
{
    (void)size;
    (void)etag;
    (*(int *)ctx)++;
    return key[0] ? BM_OK : BM_E_INTERNAL;
}

/* Real AWS: the 301 names the region in x-amz-bucket-region; the request goes again to the
 * bucket's regional endpoint, signed for it, and the next object of the bucket goes there at
 * once (HeadObject and ListObjectsV2 too). Other buckets stay in AWS_REGION. */
static void test_301_then_200(void **state)
{
    (void)state;
    struct fake_aws e;
    fake_aws_setup(&e, aws_env, NOW_S);
    fake_push(&e.http,
              (struct fake_resp){.status = 301, .body = MOVED_BODY, .bucket_region = "eu-west-1"});
    fake_push(&e.http, (struct fake_resp){.status = 200, .body = "abc"});
    fake_push(&e.http, (struct fake_resp){.status = 200, .body = "def"});
    fake_push(&e.http, (struct fake_resp){.status = 200, .etag = "e1"});
    fake_push(&e.http, (struct fake_resp){.status = 200,
                                          .body = "<ListBucketResult><Contents><Key>k</Key>"
                                                  "</Contents></ListBucketResult>"});
    fake_push(&e.http, (struct fake_resp){.status = 200, .body = "jkl"});
    struct collect c;
    bm_buf_init(&c.data, 1024);
    c.resets = 0;
    struct bm_errmsg em = {{0}};
    struct bm_s3_object_info info;
    assert_int_equal(
        bm_s3_get_object(&e.aws, "logs", "a/x.gz", NULL, NULL, c_reset, c_sink, &c, &info, &em),
        BM_OK);
    assert_int_equal(e.http.ncalls, 2);
    assert_int_equal(info.attempts, 1); /* the redirect used up no attempt */
    assert_int_equal(e.clock.sleeps, 0);
    assert_int_equal(c.data.len, 3);
    assert_memory_equal(c.data.data, "abc", 3);
    assert_string_equal(e.http.calls[0].url, "https://logs.s3.us-east-1.amazonaws.com/a/x.gz");
    assert_string_equal(e.http.calls[0].scope, "Credential=A/DATE/us-east-1/s3/aws4_request");
    assert_string_equal(e.http.calls[1].url, "https://logs.s3.eu-west-1.amazonaws.com/a/x.gz");
    assert_string_equal(e.http.calls[1].scope, "Credential=A/DATE/eu-west-1/s3/aws4_request");

    /* The bucket's next object: its region at once, no redirect. */
    assert_int_equal(get(&e, "logs", "a/y.gz", &c, &em), BM_OK);
    assert_int_equal(e.http.ncalls, 3);
    assert_string_equal(e.http.calls[2].url, "https://logs.s3.eu-west-1.amazonaws.com/a/y.gz");
    assert_string_equal(e.http.calls[2].scope, "Credential=A/DATE/eu-west-1/s3/aws4_request");
    assert_int_equal(bm_s3_head_object(&e.aws, "logs", "a/y.gz", &info, &em), BM_OK);
    assert_string_equal(e.http.calls[3].method, "HEAD");
    assert_string_equal(e.http.calls[3].region, "eu-west-1");
    assert_string_equal(info.etag, "e1");
    struct bm_buf next;
    bm_buf_init(&next, 1024);
    int n = 0;
    assert_int_equal(bm_s3_list_page(&e.aws, "logs", "a/", NULL, on_key, &n, &next, &em), BM_OK);
    assert_int_equal(n, 1);
    assert_string_equal(e.http.calls[4].url,
                        "https://logs.s3.eu-west-1.amazonaws.com/?list-type=2&prefix=a%2F");
    assert_string_equal(e.http.calls[4].region, "eu-west-1");
    /* Another bucket: AWS_REGION. */
    assert_int_equal(get(&e, "other", "k", &c, &em), BM_OK);
    assert_string_equal(e.http.calls[5].url, "https://other.s3.us-east-1.amazonaws.com/k");
    assert_string_equal(e.http.calls[5].region, "us-east-1");
    assert_int_equal(bm_s3_regions_count(e.regions), 1);
    bm_buf_cleanup(&next);
    bm_buf_cleanup(&c.data);
    fake_aws_teardown(&e);
}

/* A custom endpoint (the emulator, S3-compatible servers): S3 answers a request signed for the
 * wrong region with 400 AuthorizationHeaderMalformed and the <Region> it expects. Same URL,
 * signed again for that region; ListObjectsV2 (the backfill) follows it too. */
static void test_400_malformed_then_200(void **state)
{
    (void)state;
    struct fake_aws e;
    fake_aws_setup(&e, custom_env, NOW_S);
    fake_push(&e.http, (struct fake_resp){.status = 400, .body = MALFORMED_BODY("ap-south-1")});
    fake_push(&e.http, (struct fake_resp){.status = 200,
                                          .body = "<ListBucketResult><Contents><Key>k</Key>"
                                                  "</Contents></ListBucketResult>"});
    fake_push(&e.http, (struct fake_resp){.status = 200, .body = "abc"});
    struct bm_buf next;
    bm_buf_init(&next, 1024);
    int n = 0;
    struct bm_errmsg em = {{0}};
    assert_int_equal(bm_s3_list_page(&e.aws, "logs", "", NULL, on_key, &n, &next, &em), BM_OK);
    assert_int_equal(n, 1);
    assert_int_equal(e.http.ncalls, 2);
    assert_string_equal(e.http.calls[0].url, "http://127.0.0.1:4566/logs?list-type=2");
    assert_string_equal(e.http.calls[1].url, "http://127.0.0.1:4566/logs?list-type=2");
    assert_string_equal(e.http.calls[0].scope,
                        "Credential=AKIDTEST/DATE/us-east-1/s3/aws4_request");
    assert_string_equal(e.http.calls[1].scope,
                        "Credential=AKIDTEST/DATE/ap-south-1/s3/aws4_request");
    struct collect c;
    bm_buf_init(&c.data, 1024);
    assert_int_equal(get(&e, "logs", "k", &c, &em), BM_OK);
    assert_string_equal(e.http.calls[2].region, "ap-south-1");
    assert_int_equal(e.http.ncalls, 3);
    /* HeadObject of another bucket: a HEAD error has no body, the header names the region. */
    fake_push(&e.http, (struct fake_resp){.status = 400, .bucket_region = "eu-north-1"});
    fake_push(&e.http, (struct fake_resp){.status = 200, .etag = "e2"});
    struct bm_s3_object_info info;
    assert_int_equal(bm_s3_head_object(&e.aws, "other", "k", &info, &em), BM_OK);
    assert_string_equal(e.http.calls[3].method, "HEAD");
    assert_string_equal(e.http.calls[4].scope,
                        "Credential=AKIDTEST/DATE/eu-north-1/s3/aws4_request");
    assert_string_equal(info.etag, "e2");
    assert_int_equal(bm_s3_regions_count(e.regions), 2);
    bm_buf_cleanup(&c.data);
    bm_buf_cleanup(&next);
    fake_aws_teardown(&e);
}

/* A redirect that names no usable region is refused before the value reaches a host name or
 * a scope: nothing cached, one request only. A 400 AuthorizationHeaderMalformed without a
 * region is an ordinary failure. */
static void test_malformed_region_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "evil.com/x", "eu-west-1.attacker.net",      "EU-WEST-1",  "us-east-1#", "",
        "us--east-1", "a-b-c-d-e-f-g-h-i-j-k-l-m-1", "us-east-123"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct fake_aws e;
        fake_aws_setup(&e, aws_env, NOW_S);
        fake_push(&e.http, (struct fake_resp){.status = 301, .bucket_region = bad[i]});
        struct collect c;
        bm_buf_init(&c.data, 1024);
        struct bm_errmsg em = {{0}};
        assert_int_equal(get(&e, "logs", "k", &c, &em), BM_E_UPSTREAM);
        assert_int_equal(e.http.ncalls, 1);
        assert_non_null(strstr(em.text, "redirect refused"));
        assert_int_equal(bm_s3_regions_count(e.regions), 0);
        bm_buf_cleanup(&c.data);
        fake_aws_teardown(&e);
    }
    struct fake_aws e;
    fake_aws_setup(&e, custom_env, NOW_S);
    fake_push(&e.http, (struct fake_resp){.status = 400, .body = MALFORMED_BODY("x.evil/")});
    fake_push(&e.http, (struct fake_resp){.status = 400,
                                          .body = "<Error><Code>AuthorizationHeaderMalformed</Code>"
                                                  "<Message>bad</Message></Error>"});
    struct collect c;
    bm_buf_init(&c.data, 1024);
    struct bm_errmsg em = {{0}};
    assert_int_equal(get(&e, "logs", "k", &c, &em), BM_E_UPSTREAM);
    assert_non_null(strstr(em.text, "redirect refused"));
    assert_int_equal(get(&e, "logs", "k", &c, &em), BM_E_UPSTREAM);
    assert_non_null(strstr(em.text, "AuthorizationHeaderMalformed (400)"));
    assert_int_equal(e.http.ncalls, 2);
    bm_buf_cleanup(&c.data);
    fake_aws_teardown(&e);
}

/* One redirect per request: a second one (to yet another region, or the region the request
 * was already signed for) fails the request instead of looping. */
#define TEMP_BODY(host)                                                                            \
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>TemporaryRedirect</Code><Message>"   \
    "Please re-send this request to the specified temporary endpoint. Continue to use the "        \
    "original request endpoint for future requests.</Message><Endpoint>" host "</Endpoint>"        \
    "<Bucket>logs</Bucket></Error>"

/* A bucket created elsewhere in the last hours: S3 answers 307 TemporaryRedirect with the
 * bucket's endpoint in <Endpoint> (no x-amz-bucket-region). Its region, in either host form
 * (China's domain too), is followed like a 301's; the global endpoint names no region, so
 * nothing is followed and the request fails with S3's answer. */
static void test_307_temporary_redirect(void **state)
{
    (void)state;
    static const struct {
        const char *body, *region, *url;
    } cases[] = {
        {TEMP_BODY("logs.s3-eu-west-1.amazonaws.com"), "eu-west-1",
         "https://logs.s3.eu-west-1.amazonaws.com/k"},
        {TEMP_BODY("logs.s3.ap-southeast-2.amazonaws.com"), "ap-southeast-2",
         "https://logs.s3.ap-southeast-2.amazonaws.com/k"},
        {TEMP_BODY("logs.s3.cn-north-1.amazonaws.com.cn"), "cn-north-1",
         "https://logs.s3.cn-north-1.amazonaws.com.cn/k"},
    };
    struct collect c;
    bm_buf_init(&c.data, 1024);
    struct bm_errmsg em = {{0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct fake_aws e;
        fake_aws_setup(&e, aws_env, NOW_S);
        fake_push(&e.http, (struct fake_resp){.status = 307, .body = cases[i].body});
        fake_push(&e.http, (struct fake_resp){.status = 200, .body = "abc"});
        assert_int_equal(get(&e, "logs", "k", &c, &em), BM_OK);
        assert_int_equal(e.http.ncalls, 2);
        assert_string_equal(e.http.calls[1].region, cases[i].region);
        assert_string_equal(e.http.calls[1].url, cases[i].url);
        assert_int_equal(c.data.len, 3);
        fake_aws_teardown(&e);
    }
    /* The header, when S3 sends it, is enough (a HEAD has no body). */
    struct fake_aws e;
    fake_aws_setup(&e, aws_env, NOW_S);
    fake_push(&e.http, (struct fake_resp){.status = 307, .bucket_region = "eu-central-1"});
    fake_push(&e.http, (struct fake_resp){.status = 200, .etag = "e"});
    struct bm_s3_object_info info;
    assert_int_equal(bm_s3_head_object(&e.aws, "logs", "k", &info, &em), BM_OK);
    assert_string_equal(e.http.calls[1].region, "eu-central-1");
    fake_aws_teardown(&e);
    /* The global endpoint, and us-east-1's old name for the region already signed for. */
    static const char *const unfollowed[] = {TEMP_BODY("logs.s3.amazonaws.com"),
                                             TEMP_BODY("logs.s3-external-1.amazonaws.com")};
    for (size_t i = 0; i < 2; i++) {
        fake_aws_setup(&e, aws_env, NOW_S);
        fake_push(&e.http, (struct fake_resp){.status = 307, .body = unfollowed[i]});
        assert_int_equal(get(&e, "logs", "k", &c, &em), BM_E_UPSTREAM);
        assert_int_equal(e.http.ncalls, 1);
        assert_non_null(strstr(em.text, "307"));
        assert_int_equal(bm_s3_regions_count(e.regions), 0);
        fake_aws_teardown(&e);
    }
    bm_buf_cleanup(&c.data);
}

static void test_second_redirect_not_followed(void **state)
{
    (void)state;
    struct fake_aws e;
    fake_aws_setup(&e, aws_env, NOW_S);
    fake_push(&e.http, (struct fake_resp){.status = 301, .bucket_region = "eu-west-1"});
    fake_push(&e.http, (struct fake_resp){.status = 301, .bucket_region = "eu-west-2"});
    fake_push(&e.http, (struct fake_resp){.status = 301, .bucket_region = "us-east-1"});
    struct collect c;
    bm_buf_init(&c.data, 1024);
    struct bm_errmsg em = {{0}};
    assert_int_equal(get(&e, "logs", "k", &c, &em), BM_E_UPSTREAM);
    assert_int_equal(e.http.ncalls, 2);
    assert_non_null(strstr(em.text, "redirected the request again"));
    assert_string_equal(e.http.calls[1].region, "eu-west-1");
    /* Signed for us-east-1 and told us-east-1: no loop either. */
    fake_aws_teardown(&e);
    fake_aws_setup(&e, aws_env, NOW_S);
    fake_push(&e.http, (struct fake_resp){.status = 301, .bucket_region = "us-east-1"});
    assert_int_equal(get(&e, "logs", "k", &c, &em), BM_E_UPSTREAM);
    assert_int_equal(e.http.ncalls, 1);
    assert_non_null(strstr(em.text, "nothing to follow"));
    bm_buf_cleanup(&c.data);
    fake_aws_teardown(&e);
}

static void test_region_shape(void **state)
{
    (void)state;
    static const char *const good[] = {"us-east-1",     "eu-west-1",      "us-gov-west-1",
                                       "cn-north-1",    "ap-southeast-2", "il-central-1",
                                       "us-isob-east-1"};
    static const char *const bad[] = {"",           "us-east",    "useast1",    "us-east-1a",
                                      "-us-east-1", "us-east-1-", "us_east-1",  "us-east-1.x",
                                      "us-1-1",     "Us-east-1",  "us-east-100"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(bm_region_valid(good[i]));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(bm_region_valid(bad[i]));
}

/* The cache is bounded: past its capacity the least recently used bucket goes. */
static void test_cache_bounded(void **state)
{
    (void)state;
    struct bm_s3_regions *c = bm_s3_regions_new(2);
    assert_non_null(c);
    char r[32];
    assert_true(bm_s3_regions_put(c, "aaa", "eu-west-1"));
    assert_true(bm_s3_regions_put(c, "bbb", "eu-west-2"));
    assert_true(bm_s3_regions_get(c, "aaa", r, sizeof r)); /* bbb is now the older one */
    assert_true(bm_s3_regions_put(c, "ccc", "eu-west-3"));
    assert_int_equal(bm_s3_regions_count(c), 2);
    assert_false(bm_s3_regions_get(c, "bbb", r, sizeof r));
    assert_true(bm_s3_regions_get(c, "ccc", r, sizeof r));
    assert_string_equal(r, "eu-west-3");
    assert_true(bm_s3_regions_put(c, "aaa", "ap-south-1")); /* a bucket moved: updated */
    assert_true(bm_s3_regions_get(c, "aaa", r, sizeof r));
    assert_string_equal(r, "ap-south-1");
    assert_false(bm_s3_regions_put(c, "aaa", "eu-west-1.evil"));
    assert_false(bm_s3_regions_put(c, "Bad_Bucket", "eu-west-1"));
    assert_false(bm_s3_regions_get(NULL, "aaa", r, sizeof r));
    bm_s3_regions_free(c);
}

/* CloudWatch is no bucket: AWS_REGION, or BMAS_CLOUDWATCH_REGION when set (checked). */
static void test_cloudwatch_region(void **state)
{
    (void)state;
    static const char *const env[] = {"AWS_ACCESS_KEY_ID",
                                      "A",
                                      "AWS_SECRET_ACCESS_KEY",
                                      "S",
                                      "AWS_REGION",
                                      "us-east-1",
                                      "BMAS_CLOUDWATCH_REGION",
                                      "eu-central-1",
                                      NULL};
    struct fake_aws e;
    fake_aws_setup(&e, env, NOW_S);
    assert_string_equal(bm_cw_region(&e.cfg), "eu-central-1");
    struct bm_buf url;
    bm_buf_init(&url, 1024);
    bool custom;
    assert_int_equal(bm_aws_endpoint(&e.cfg, "monitoring", &url, &custom), BM_OK);
    assert_string_equal(url.data, "https://monitoring.eu-central-1.amazonaws.com");
    assert_int_equal(bm_aws_endpoint(&e.cfg, "s3", &url, &custom), BM_OK);
    assert_string_equal(url.data, "https://s3.us-east-1.amazonaws.com");
    fake_push(&e.http, (struct fake_resp){.status = 200, .body = "<PutMetricDataResponse/>"});
    struct bm_buf body;
    bm_buf_init(&body, 1024);
    assert_int_equal(bm_buf_append_str(&body, "Action=PutMetricData&Version=2010-08-01"), BM_OK);
    struct bm_cw_send_result res;
    assert_int_equal(bm_cw_send(&e.aws, &body, &res), BM_OK);
    assert_string_equal(e.http.calls[0].scope,
                        "Credential=A/DATE/eu-central-1/monitoring/aws4_request");
    bm_buf_cleanup(&body);
    bm_buf_cleanup(&url);
    fake_aws_teardown(&e);

    static const char *const unset[] = {"AWS_REGION", "ap-south-1", NULL};
    struct bm_config cfg;
    struct bm_errmsg em = {{0}};
    fake_env_list = unset;
    assert_int_equal(bm_config_load(&cfg, fake_getenv, &em), BM_OK);
    assert_string_equal(bm_cw_region(&cfg), "ap-south-1");
    bm_config_cleanup(&cfg);
    static const char *const bad[] = {"BMAS_CLOUDWATCH_REGION", "evil.com/", NULL};
    fake_env_list = bad;
    assert_int_equal(bm_config_load(&cfg, fake_getenv, &em), BM_E_CONFIG);
    assert_non_null(strstr(em.text, "BMAS_CLOUDWATCH_REGION"));
    bm_config_cleanup(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_301_then_200),
        cmocka_unit_test(test_307_temporary_redirect),
        cmocka_unit_test(test_400_malformed_then_200),
        cmocka_unit_test(test_malformed_region_refused),
        cmocka_unit_test(test_second_redirect_not_followed),
        cmocka_unit_test(test_region_shape),
        cmocka_unit_test(test_cache_bounded),
        cmocka_unit_test(test_cloudwatch_region),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
