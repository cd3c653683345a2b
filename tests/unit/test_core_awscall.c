/* The one AWS call path (core/aws_call.c) seen through each client: S3, SQS, CloudWatch and STS
 * retry the same answers, refresh expired credentials the same way, stop at the same overall
 * deadline, and obey a shutdown the same way; plus the stop signal itself on real threads and
 * a real libcurl long poll that a shutdown cancels. */
#include "fake_http.h"

#include "core/core_int.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *const env_vars[] = {"AWS_ACCESS_KEY_ID",
                                       "AKID",
                                       "AWS_SECRET_ACCESS_KEY",
                                       "s",
                                       "AWS_ENDPOINT_URL",
                                       "http://aws.local:4566",
                                       "MAX_RETRY_ATTEMPTS",
                                       "4",
                                       "BMAS_AWS_DEADLINE",
                                       "60",
                                       NULL};
static const char *const short_deadline[] = {"AWS_ACCESS_KEY_ID",
                                             "AKID",
                                             "AWS_SECRET_ACCESS_KEY",
                                             "s",
                                             "AWS_ENDPOINT_URL",
                                             "http://aws.local:4566",
                                             "MAX_RETRY_ATTEMPTS",
                                             "50",
                                             "BMAS_AWS_DEADLINE",
                                             "2",
                                             NULL};

/* ---- one operation per client, so each rule is checked on all of them ---- */
enum proto { XML, JSON };
struct client {
    const char *name;
    enum proto proto; /* how its errors are written */
    bm_err (*run)(struct fake_aws *e, struct bm_errmsg *em);
    const char *ok_body;
};

static bm_err run_s3(struct fake_aws *e, struct bm_errmsg *em)
{
    struct bm_s3_object_info info;
    return bm_s3_head_object(&e->aws, "logs", "k.json.gz", &info, em);
}

static bm_err run_sqs(struct fake_aws *e, struct bm_errmsg *em)
{
    struct bm_sqs_batch b;
    bm_err rc = bm_sqs_receive(&e->aws, "http://aws.local:4566/000000000000/q", 10, 0, &b, em);
    if (rc == BM_OK)
        bm_sqs_batch_cleanup(&b);
    return rc;
}

static bm_err run_cw(struct fake_aws *e, struct bm_errmsg *em)
{
    struct bm_buf body;
    bm_buf_init(&body, 1024);
    assert_int_equal(bm_buf_append_str(&body, "Action=PutMetricData&Namespace=x"), BM_OK);
    struct bm_cw_send_result res;
    bm_err rc = bm_cw_send(&e->aws, &body, &res);
    *em = res.em;
    bm_buf_cleanup(&body);
    return rc;
}

static const struct client clients[] = {
    {"S3 HeadObject", XML, run_s3, ""},
    {"SQS ReceiveMessage", JSON, run_sqs, "{\"Messages\":[]}"},
    {"CloudWatch PutMetricData", XML, run_cw, "<PutMetricDataResponse/>"},
};
#define NCLIENTS (sizeof clients / sizeof clients[0])

static const char *err_body(enum proto p, const char *code)
{
    static char b[4][256];
    static int n;
    char *out = b[n++ % 4];
    if (p == XML)
        snprintf(out, sizeof b[0], "<ErrorResponse><Error><Code>%s</Code></Error></ErrorResponse>",
                 code);
    else
        snprintf(out, sizeof b[0], "{\"__type\":\"com.amazonaws.sqs#%s\",\"message\":\"m\"}", code);
    return out;
}

/* The same answers are retried by every client, and the call then succeeds. */
static void test_retried_alike(void **state)
{
    (void)state;
    const struct {
        long status;
        const char *code;
    } retried[] = {{503, "ServiceUnavailable"},
                   {500, ""},
                   {429, ""},
                   {400, "ThrottlingException"},
                   {400, "Throttling"},
                   {503, "SlowDown"},
                   {400, "RequestTimeout"},
                   {400, "RequestThrottled"}};
    for (size_t c = 0; c < NCLIENTS; c++) {
        for (size_t i = 0; i < sizeof retried / sizeof retried[0]; i++) {
            struct fake_aws e;
            fake_aws_setup(&e, env_vars, 1776643200);
            fake_push(&e.http,
                      (struct fake_resp){.status = retried[i].status,
                                         .body = retried[i].code[0]
                                                     ? err_body(clients[c].proto, retried[i].code)
                                                     : NULL});
            fake_push(&e.http, (struct fake_resp){.status = 200, .body = clients[c].ok_body});
            struct bm_errmsg em = {{0}};
            bm_err rc = clients[c].run(&e, &em);
            if (rc != BM_OK || e.http.ncalls != 2)
                fail_msg("%s: %ld %s: rc %d, %zu calls (%s)", clients[c].name, retried[i].status,
                         retried[i].code, rc, e.http.ncalls, em.text);
            assert_int_equal(e.clock.sleeps, 1); /* one backoff between the two */
            fake_aws_teardown(&e);
        }
    }
}

/* What no retry can fix is sent once, by every client. */
static void test_not_retried_alike(void **state)
{
    (void)state;
    for (size_t c = 0; c < NCLIENTS; c++) {
        struct fake_aws e;
        fake_aws_setup(&e, env_vars, 1776643200);
        fake_push(&e.http,
                  (struct fake_resp){.status = 400,
                                     .body = err_body(clients[c].proto, "InvalidParameterValue")});
        struct bm_errmsg em = {{0}};
        bm_err rc = clients[c].run(&e, &em);
        assert_int_not_equal(rc, BM_OK);
        if (e.http.ncalls != 1)
            fail_msg("%s: %zu calls for a 400 InvalidParameterValue", clients[c].name,
                     e.http.ncalls);
        assert_int_equal(e.clock.sleeps, 0);
        fake_aws_teardown(&e);
    }
}

/* An expired token is refreshed once without using up an attempt, by every client; a second
 * expiry in the same call is final. */
static void test_expired_credentials_refreshed_alike(void **state)
{
    (void)state;
    for (size_t c = 0; c < NCLIENTS; c++) {
        struct fake_aws e;
        fake_aws_setup(&e, env_vars, 1776643200);
        fake_push(&e.http, (struct fake_resp){.status = 403,
                                              .body = err_body(clients[c].proto, "ExpiredToken")});
        fake_push(&e.http, (struct fake_resp){.status = 200, .body = clients[c].ok_body});
        struct bm_errmsg em = {{0}};
        if (clients[c].run(&e, &em) != BM_OK || e.http.ncalls != 2)
            fail_msg("%s: expired token then 200: %zu calls (%s)", clients[c].name, e.http.ncalls,
                     em.text);
        assert_int_equal(e.clock.sleeps, 0); /* a refresh goes at once */
        fake_aws_teardown(&e);

        fake_aws_setup(&e, env_vars, 1776643200);
        for (int i = 0; i < 2; i++)
            fake_push(&e.http, (struct fake_resp){.status = 403,
                                                  .body = err_body(clients[c].proto,
                                                                   "UnrecognizedClientException")});
        assert_int_not_equal(clients[c].run(&e, &em), BM_OK);
        if (e.http.ncalls != 2)
            fail_msg("%s: twice unrecognised: %zu calls", clients[c].name, e.http.ncalls);
        fake_aws_teardown(&e);
    }
}

/* MAX_RETRY_ATTEMPTS 50, but BMAS_AWS_DEADLINE 2 s: the call gives up when the next backoff
 * would end past the deadline, and says so. */
static void test_deadline_alike(void **state)
{
    (void)state;
    for (size_t c = 0; c < NCLIENTS; c++) {
        struct fake_aws e;
        fake_aws_setup(&e, short_deadline, 1776643200);
        for (int i = 0; i < 50; i++)
            fake_push(&e.http, (struct fake_resp){.status = 503});
        struct bm_errmsg em = {{0}};
        bm_err rc = clients[c].run(&e, &em);
        assert_int_not_equal(rc, BM_OK);
        if (e.http.ncalls >= 50 || e.clock.slept_ms >= 2000)
            fail_msg("%s: %zu calls, %lld ms of backoff within a 2 s deadline", clients[c].name,
                     e.http.ncalls, (long long)e.clock.slept_ms);
        assert_true(e.http.ncalls >= 2);
        if (strstr(em.text, "BMAS_AWS_DEADLINE") == NULL)
            fail_msg("%s: the error does not name the deadline: %s", clients[c].name, em.text);
        fake_aws_teardown(&e);
    }
}

/* A shutdown: a long poll and a PutMetricData are not started; a delete of processed messages
 * still goes once, but is not retried. */
static void test_stop(void **state)
{
    (void)state;
    struct bm_stop stop;
    assert_int_equal(bm_stop_init(&stop), BM_OK);
    bm_stop_set(&stop);
    for (size_t c = 1; c < NCLIENTS; c++) { /* SQS ReceiveMessage, PutMetricData */
        struct fake_aws e;
        fake_aws_setup(&e, env_vars, 1776643200);
        e.aws.stop = &stop;
        struct bm_errmsg em = {{0}};
        assert_int_equal(clients[c].run(&e, &em), BM_E_CANCELLED);
        assert_int_equal(e.http.ncalls, 0);
        fake_aws_teardown(&e);
    }
    struct fake_aws e;
    fake_aws_setup(&e, env_vars, 1776643200);
    e.aws.stop = &stop;
    fake_push(&e.http, (struct fake_resp){.status = 503});
    const char *receipts[] = {"r1"};
    size_t deleted = 9;
    struct bm_errmsg em = {{0}};
    bm_err rc =
        bm_sqs_delete(&e.aws, "http://aws.local:4566/000000000000/q", receipts, 1, &deleted, &em);
    assert_int_equal(rc, BM_E_UPSTREAM);
    assert_int_equal(e.http.ncalls, 1);
    assert_int_equal(e.clock.sleeps, 0);
    assert_non_null(strstr(em.text, "stopping"));
    fake_aws_teardown(&e);
    bm_stop_destroy(&stop);
}

/* STS (a profile's role) goes through the same loop: a throttled AssumeRole is retried. */
static void test_sts_retried(void **state)
{
    (void)state;
    char dir[] = "/tmp/bmas-awscall-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char creds[256], conf[256];
    snprintf(creds, sizeof creds, "%s/credentials", dir);
    snprintf(conf, sizeof conf, "%s/config", dir);
    FILE *f = fopen(creds, "w");
    assert_non_null(f);
    fputs("[base]\naws_access_key_id = BASEKEY\naws_secret_access_key = basesecret\n", f);
    fclose(f);
    f = fopen(conf, "w");
    assert_non_null(f);
    fputs("[profile app]\nrole_arn = arn:aws:iam::123456789012:role/r\nsource_profile = base\n", f);
    fclose(f);
    const char *const vars[] = {"AWS_PROFILE",
                                "app",
                                "AWS_SHARED_CREDENTIALS_FILE",
                                creds,
                                "AWS_CONFIG_FILE",
                                conf,
                                "AWS_ENDPOINT_URL",
                                "http://aws.local:4566",
                                "AWS_EC2_METADATA_DISABLED",
                                "true",
                                NULL};
    struct fake_aws e;
    fake_aws_setup(&e, vars, 1776643200);
    fake_push(&e.http, (struct fake_resp){.status = 400, .body = err_body(XML, "Throttling")});
    fake_push(&e.http, (struct fake_resp){.status = 200,
                                          .body = fake_sts_answer("AssumeRole", "ROLEKEY", "rs",
                                                                  "tok", "2026-04-20T02:00:00Z")});
    struct bm_creds c;
    struct bm_errmsg em = {{0}};
    assert_int_equal(bm_creds_get(e.creds, &c, &em), BM_OK);
    assert_string_equal(c.akid, "ROLEKEY");
    assert_int_equal(e.http.ncalls, 2);
    assert_string_equal(e.http.calls[0].service, "sts");
    assert_int_equal(e.clock.sleeps, 1);
    fake_aws_teardown(&e);
    unlink(creds);
    unlink(conf);
    rmdir(dir);
}

static void test_error_codes(void **state)
{
    (void)state;
    const struct {
        const char *body, *code;
    } cases[] = {
        {"<Error><Code>NoSuchKey</Code><Message>m</Message></Error>", "NoSuchKey"},
        {"  {\"__type\":\"com.amazonaws.sqs#QueueDoesNotExist\",\"message\":\"m\"}",
         "QueueDoesNotExist"},
        {"{\"__type\":\"ThrottlingException\"}", "ThrottlingException"},
        {"{\"code\":\"AccessDenied\"}", "AccessDenied"},
        {"{\"message\":\"no type\"}", ""},
        {"", ""},
        {"{not json", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct bm_http_resp rs;
        bm_http_resp_init(&rs);
        assert_int_equal(bm_buf_append_str(&rs.body, cases[i].body), BM_OK);
        char code[64];
        bm__aws_error_code(&rs, code, sizeof code);
        assert_string_equal(code, cases[i].code);
        bm_http_resp_cleanup(&rs);
    }
}

/* ---- the stop signal on real threads, and a real libcurl transfer ---- */
static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *set_later(void *arg)
{
    struct timespec ts = {0, 200 * 1000000L};
    nanosleep(&ts, NULL);
    bm_stop_set(arg);
    return NULL;
}

/* A 30 s sleep on the stop's clock ends when another thread sets it (a broken one would sleep
 * the whole 30 s and fail the bound, which is 20 times what it needs). */
static void test_stop_ends_sleep(void **state)
{
    (void)state;
    struct bm_stop stop;
    assert_int_equal(bm_stop_init(&stop), BM_OK);
    struct bm_clock_ops clk = bm_stop_clock(&stop);
    pthread_t th;
    int64_t t0 = mono_ms();
    assert_int_equal(pthread_create(&th, NULL, set_later, &stop), 0);
    clk.sleep_ms(clk.impl, 30000);
    int64_t took = mono_ms() - t0;
    pthread_join(th, NULL);
    assert_true(bm_stop_is_set(&stop));
    if (took > 4000)
        fail_msg("the sleep took %lld ms after the stop", (long long)took);
    assert_true(bm_stop_sleep(&stop, 30000)); /* already set: at once */
    bm_stop_destroy(&stop);
}

/* A request to a server that accepts and never answers (a long poll): cancelled by the stop,
 * not ended by its 30 s timeout. */
static void test_long_poll_cancelled(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", ntohs(a.sin_port));

    struct bm_http_ops http;
    struct bm_http_curl_opts o = {0};
    assert_int_equal(bm_http_curl_new(&o, &http), BM_OK);
    struct bm_stop stop;
    assert_int_equal(bm_stop_init(&stop), BM_OK);
    struct bm_http_req rq = {.method = "POST",
                             .url = url,
                             .body = "{}",
                             .body_len = 2,
                             .timeout_ms = 30000,
                             .cancel = &stop};
    struct bm_http_resp rs;
    bm_http_resp_init(&rs);
    struct bm_errmsg em = {{0}};
    pthread_t th;
    int64_t t0 = mono_ms();
    assert_int_equal(pthread_create(&th, NULL, set_later, &stop), 0);
    bm_err rc = http.perform(http.impl, &rq, &rs, &em);
    int64_t took = mono_ms() - t0;
    pthread_join(th, NULL);
    assert_int_equal(rc, BM_E_CANCELLED);
    if (took > 4000)
        fail_msg("cancelled after %lld ms", (long long)took);
    /* Once set, nothing more is sent. */
    assert_int_equal(http.perform(http.impl, &rq, &rs, &em), BM_E_CANCELLED);
    bm_http_resp_cleanup(&rs);
    bm_stop_destroy(&stop);
    bm_http_curl_free(&http);
    close(fd);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retried_alike),
        cmocka_unit_test(test_not_retried_alike),
        cmocka_unit_test(test_expired_credentials_refreshed_alike),
        cmocka_unit_test(test_deadline_alike),
        cmocka_unit_test(test_stop),
        cmocka_unit_test(test_sts_retried),
        cmocka_unit_test(test_error_codes),
        cmocka_unit_test(test_stop_ends_sleep),
        cmocka_unit_test(test_long_poll_cancelled),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
