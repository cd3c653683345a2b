/* Unit tests for core's foundation: error table, buffers and JSON escaping, time, config. */
#include "tu.h"

#include <netinet/in.h>

static void test_err_table(void **state)
{
    (void)state;
    static const struct {
        bm_err e;
        const char *wire;
        int http;
        bool retry;
    } cases[] = {
        {BM_E_S3_NOT_FOUND, "BMAS-001", 404, false}, {BM_E_S3_DENIED, "BMAS-002", 403, false},
        {BM_E_LOG_FORMAT, "BMAS-003", 422, false},   {BM_E_PUBLISH, "BMAS-004", 502, true},
        {BM_E_MSG_PARSE, "BMAS-005", 400, false},    {BM_E_NO_PROFILE, "BMAS-006", 422, false},
        {BM_E_TOKENS, "BMAS-007", 422, false},       {BM_E_REGION, "BMAS-008", 422, false},
        {BM_E_DIMENSIONS, "BMAS-009", 422, false},   {BM_E_TOO_LARGE, "BMAS-010", 413, false},
        {BM_E_GZIP, "BMAS-003", 422, false},         {BM_E_STORAGE_BUSY, "BMAS-013", 503, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_string_equal(bm_err_wire(cases[i].e), cases[i].wire);
        assert_int_equal(bm_err_http(cases[i].e), cases[i].http);
        assert_int_equal(bm_err_retry(cases[i].e), cases[i].retry);
        assert_string_equal(bm_err_wire_at(bm_err_wire_index(cases[i].e)), cases[i].wire);
    }
    /* The wire list is BMAS-001, BMAS-002, ... in order, each with a meaning, and every
     * internal code maps into it; every wire code is used by some internal code. */
    bool used[BM_ERR_WIRE_N] = {false};
    for (int e = 1; e < BM_E__COUNT; e++) {
        assert_true(strlen(bm_err_str((bm_err)e)) > 0);
        int idx = bm_err_wire_index((bm_err)e);
        assert_true(idx >= 0 && idx < BM_ERR_WIRE_N);
        assert_string_equal(bm_err_wire((bm_err)e), bm_err_wire_at(idx));
        int http = bm_err_http((bm_err)e);
        assert_true(http >= 400 && http <= 599);
        used[idx] = true;
    }
    for (int i = 0; i < BM_ERR_WIRE_N; i++) {
        char want[32]; /* room for any int: -O1 with -Wformat-truncation cannot see i is small */
        snprintf(want, sizeof want, "BMAS-%03d", i + 1);
        assert_string_equal(bm_err_wire_at(i), want);
        assert_non_null(bm_err_wire_title(i));
        assert_true(strlen(bm_err_wire_title(i)) > 0);
        if (!used[i])
            fail_msg("%s is used by no internal code", want);
    }
    assert_null(bm_err_wire_at(BM_ERR_WIRE_N));
    assert_null(bm_err_wire_at(-1));
    assert_int_equal(bm_err_wire_index(BM_OK), -1);
    assert_string_equal(bm_err_wire(BM_OK), "OK");
}

static void test_buf_cap_and_json(void **state)
{
    (void)state;
    struct bm_buf b;
    bm_buf_init(&b, 8);
    assert_int_equal(bm_buf_append_str(&b, "12345678"), BM_OK);
    assert_int_equal(bm_buf_append_char(&b, '9'), BM_E_TOO_LARGE);
    assert_int_equal(b.len, 8);
    assert_string_equal(b.data, "12345678");
    bm_buf_cleanup(&b);

    static const struct {
        const char *in;
        size_t len;
        const char *out;
    } cases[] = {
        {"plain", 5, "\"plain\""},
        {"q\"b\\", 4, "\"q\\\"b\\\\\""},
        {"\n\r\t\b\f\x01", 6, "\"\\n\\r\\t\\b\\f\\u0001\""},
        {"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80", 14,
         "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\""},
        {"bad\xFF", 4, "\"bad\xEF\xBF\xBD\""},
        {"\xC0\xAF", 2, "\"\xEF\xBF\xBD\xEF\xBF\xBD\""},                 /* overlong '/' */
        {"\xED\xA0\x80", 3, "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\""}, /* surrogate */
        {"a\0b", 3, "\"a\\u0000b\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bm_buf_init(&b, 1024);
        assert_int_equal(bm_buf_append_json_str(&b, cases[i].in, cases[i].len), BM_OK);
        assert_string_equal(b.data, cases[i].out);
        bm_buf_cleanup(&b);
    }
    /* A JSON append that does not fit leaves the buffer as it was. */
    bm_buf_init(&b, 6);
    assert_int_equal(bm_buf_append_str(&b, "ab"), BM_OK);
    assert_int_equal(bm_buf_append_json_str(&b, "cdef", 4), BM_E_TOO_LARGE);
    assert_string_equal(b.data, "ab");
    bm_buf_cleanup(&b);
}

static void test_buf_oom(void **state)
{
    (void)state;
    struct bm_buf b;
    bm_buf_init(&b, 1 << 20);
    bm_alloc_fail_after(0);
    assert_int_equal(bm_buf_appendf(&b, "%d", 42), BM_E_NOMEM);
    bm_alloc_fail_after(-1);
    assert_int_equal(bm_buf_appendf(&b, "%s-%d", "x", 42), BM_OK);
    assert_string_equal(b.data, "x-42");
    char big[600];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(bm_buf_appendf(&b, "%s", big), BM_OK); /* past the stack fast path */
    assert_int_equal(b.len, 4 + 599);
    bm_buf_cleanup(&b);
}

static void test_time(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int64_t t;
    } ok[] = {
        {"1970-01-01T00:00:00Z", 0},
        {"2026-04-20T00:17:31Z", 1776644251},
        {"2026-04-20T00:17:31.987Z", 1776644251},
        {"2026-04-20T02:17:31+02:00", 1776644251},
        {"2026-04-19T19:17:31-05:00", 1776644251},
        {"2024-02-29T12:00:00z", 1709208000},
        {"2026-04-20 00:17:31Z", 1776644251},
        {"1969-12-31T23:59:59Z", -1},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t t = 0;
        assert_true(bm_time_parse(ok[i].in, strlen(ok[i].in), &t));
        assert_int_equal(t, ok[i].t);
    }
    static const char *const bad[] = {
        "",
        "2026-04-20",
        "2026-04-20T00:17:31",
        "2026-13-01T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "2026-04-20T24:00:00Z",
        "2026-04-20T00:17:31.Z",
        "2026-04-20T00:17:31Zjunk",
        "2026-04-20T00:17:31+0200",
        "abcd-04-20T00:17:31Z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t t = 0;
        assert_false(bm_time_parse(bad[i], strlen(bad[i]), &t));
    }
    char out[21], compact[17];
    bm_time_format(1776644251, out);
    assert_string_equal(out, "2026-04-20T00:17:31Z");
    bm_time_format(-1, out);
    assert_string_equal(out, "1969-12-31T23:59:59Z");
    bm_time_format_compact(1440938160, compact);
    assert_string_equal(compact, "20150830T123600Z");
    /* Round trip across a range of days, leap years included. */
    for (int64_t t = -86400LL * 800; t < 86400LL * 365 * 80; t += 86400 * 7 + 3661) {
        int64_t back;
        bm_time_format(t, out);
        assert_true(bm_time_parse(out, strlen(out), &back));
        assert_int_equal(back, t);
    }
}

static const char *const *fake_env;
static const char *fake_getenv(const char *name)
{
    for (size_t i = 0; fake_env[i] != NULL; i += 2)
        if (strcmp(fake_env[i], name) == 0)
            return fake_env[i + 1];
    return NULL;
}

static void test_config_defaults_and_env(void **state)
{
    (void)state;
    static const char *const env[] = {"CLOUDWATCH_NAMESPACE",
                                      "Team/Bedrock",
                                      "LOG_LEVEL",
                                      "debug",
                                      "AWS_DEFAULT_REGION",
                                      "eu-west-1",
                                      "BMAS_MAX_LINE_BYTES",
                                      "2M",
                                      "ENABLE_GLOBAL_CROSS_REGION",
                                      "off",
                                      "BMAS_AUTH_TOKEN",
                                      "s3cret",
                                      "BATCH_SIZE",
                                      "",
                                      NULL};
    fake_env = env;
    struct bm_config cfg;
    struct bm_errmsg em = {{0}};
    assert_int_equal(bm_config_load(&cfg, fake_getenv, &em), BM_OK);
    assert_string_equal(cfg.cloudwatch_namespace, "Team/Bedrock");
    assert_int_equal(cfg.log_level, BM_DEBUG);
    assert_string_equal(cfg.aws_region, "eu-west-1"); /* alias honoured */
    assert_int_equal(cfg.max_line_bytes, 2 * 1024 * 1024);
    assert_false(cfg.enable_global_cross_region);
    assert_true(cfg.enable_cross_region_detection);
    assert_int_equal(cfg.batch_size, 100); /* empty = unset */
    assert_int_equal(cfg.max_retry_attempts, 3);
    assert_int_equal(cfg.bucket_seconds, 60);
    assert_string_equal(cfg.db_path, "./bmas.db");
    struct bm_buf b;
    bm_buf_init(&b, 1 << 20);
    assert_int_equal(bm_config_json(&cfg, &b), BM_OK);
    assert_null(strstr(b.data, "s3cret")); /* secrets redacted */
    assert_non_null(strstr(b.data, "\"BMAS_AUTH_TOKEN\":\"(set)\""));
    bm_buf_reset(&b);
    assert_int_equal(bm_config_help(&b), BM_OK);
    assert_non_null(strstr(b.data, "MAX_RETRY_ATTEMPTS"));
    /* Allowed: CloudWatch's whole character set, and AWS/ anywhere but at the start. */
    assert_int_equal(bm_config_set(&cfg, "CLOUDWATCH_NAMESPACE", "Team AWS/x_y-z.1#2:3", &em),
                     BM_OK);
    assert_int_equal(bm_config_set(&cfg, "CLOUDWATCH_NAMESPACE", "Bedrock/CrossRegionMetrics", &em),
                     BM_OK);
    assert_int_equal(bm_config_set(&cfg, "CLOUDWATCH_NAMESPACE", "AWS/Bedrock", &em), BM_E_CONFIG);
    assert_non_null(strstr(em.text, "reserved"));
    assert_string_equal(cfg.cloudwatch_namespace, "Bedrock/CrossRegionMetrics"); /* kept */
    assert_int_equal(bm_config_set(&cfg, "BMAS_DB", "/tmp/x.db", &em), BM_OK);
    assert_string_equal(cfg.db_path, "/tmp/x.db");
    /* A PostgreSQL URL: shown without its password, in the user info or as a parameter. */
    static const struct {
        const char *url, *shown;
    } urls[] = {
        {"postgresql://bmas:s3cr@t:x@db.example:5432/m?sslmode=require",
         "postgresql://bmas:***@db.example:5432/m?sslmode=require"},
        {"postgres://h/m?user=u&password=s3cret&connect_timeout=3",
         "postgres://h/m?user=u&password=***&connect_timeout=3"},
        {"postgres://u:p@h/m", "postgres://u:***@h/m"},
        {"postgres://u@h/m", "postgres://u@h/m"},
    };
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        char want[256];
        assert_int_equal(bm_config_set(&cfg, "BMAS_DB", urls[i].url, &em), BM_OK);
        bm_buf_reset(&b);
        assert_int_equal(bm_config_json(&cfg, &b), BM_OK);
        snprintf(want, sizeof want, "\"BMAS_DB\":\"%s\"", urls[i].shown);
        if (strstr(b.data, want) == NULL)
            fail_msg("%s: %s", want, b.data);
    }
    bm_buf_cleanup(&b);
    bm_config_cleanup(&cfg);
}

static void test_config_bad_values(void **state)
{
    (void)state;
    static const struct {
        const char *name, *value;
    } bad[] = {
        {"BATCH_SIZE", "ten"},
        {"BATCH_SIZE", "0"},
        {"BATCH_SIZE", "10001"},
        {"MAX_RETRY_ATTEMPTS", "3x"},
        {"LOG_LEVEL", "LOUD"},
        {"ENABLE_CROSS_REGION_DETECTION", "maybe"},
        {"BMAS_MAX_LINE_BYTES", "12Q"},
        {"BMAS_MAX_LINE_BYTES", "-5"},
        {"BMAS_BUCKET_SECONDS", "99999999999999999999"},
        {"CLOUDWATCH_NAMESPACE", ""},
        /* CloudWatch's own rules, refused at start-up instead of at every flush. */
        {"CLOUDWATCH_NAMESPACE", "AWS/Bedrock"},
        {"CLOUDWATCH_NAMESPACE", "AWS/"},
        {"CLOUDWATCH_NAMESPACE", ":Bedrock"},
        {"CLOUDWATCH_NAMESPACE", "   "},
        {"CLOUDWATCH_NAMESPACE", "Bedrock\\Metrics"},
        {"CLOUDWATCH_NAMESPACE", "Bedrock*"},
        {"CLOUDWATCH_NAMESPACE", "B\303\251drock"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *env[] = {bad[i].name, bad[i].value, NULL};
        fake_env = env;
        struct bm_config cfg;
        struct bm_errmsg em = {{0}};
        bm_err rc = bm_config_load(&cfg, fake_getenv, &em);
        if (strcmp(bad[i].name, "CLOUDWATCH_NAMESPACE") == 0 && bad[i].value[0] == '\0') {
            /* An empty required string falls back to the default rather than failing. */
            assert_int_equal(rc, BM_OK);
            assert_string_equal(cfg.cloudwatch_namespace, "Custom/BedrockMetrics");
        } else {
            assert_int_equal(rc, BM_E_CONFIG);
            assert_non_null(strstr(em.text, bad[i].name)); /* the message names the variable */
        }
        bm_config_cleanup(&cfg);
    }
}

static void test_listen_parse(void **state)
{
    (void)state;
    static const struct {
        const char *spec;
        int family; /* 0: refused */
        int port;
    } cases[] = {
        {"127.0.0.1:8080", AF_INET, 8080},
        {"0.0.0.0:0", AF_INET, 0},
        {"localhost:4566", AF_INET, 4566},
        {"[::1]:9000", AF_INET6, 9000},
        {":8080", AF_INET, 8080},
        {"nonsense", 0, 0},
        {"127.0.0.1:", 0, 0},
        {"127.0.0.1:70000", 0, 0},
        {"example.com:80", 0, 0}, /* numeric only: a typo never becomes a DNS lookup */
        {"1.2.3:80", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sockaddr_storage ss;
        socklen_t len = 0;
        struct bm_errmsg em = {{0}};
        bm_err rc = bm_listen_parse(cases[i].spec, "BMAS_LISTEN", &ss, &len, &em);
        if (cases[i].family == 0) {
            assert_int_equal(rc, BM_E_CONFIG);
            assert_non_null(strstr(em.text, "BMAS_LISTEN"));
            continue;
        }
        assert_int_equal(rc, BM_OK);
        assert_int_equal(ss.ss_family, cases[i].family);
        unsigned char *pp = ss.ss_family == AF_INET
                                ? (unsigned char *)&((struct sockaddr_in *)&ss)->sin_port
                                : (unsigned char *)&((struct sockaddr_in6 *)&ss)->sin6_port;
        assert_int_equal(pp[0] * 256 + pp[1], cases[i].port); /* network byte order */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_table),
        cmocka_unit_test(test_buf_cap_and_json),
        cmocka_unit_test(test_buf_oom),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_config_defaults_and_env),
        cmocka_unit_test(test_config_bad_values),
        cmocka_unit_test(test_listen_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
