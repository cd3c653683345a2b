/* Unit tests for core/s3_names.c: S3's rules for bucket names, keys, version ids and ETags,
 * with the decorations a forged event adds (issue: one object counted once under every one). */
#include "tu.h"

static void test_bucket(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        bool ok;
    } cases[] = {
        {"my-bedrock-logs", true},
        {"logs.example.com", true},
        {"abc", true},
        {"a1b", true},
        {"123456789012345678901234567890123456789012345678901234567890123", true},   /* 63 */
        {"1234567890123456789012345678901234567890123456789012345678901234", false}, /* 64 */
        {"ab", false},
        {"", false},
        {"Logs", false},
        {"my_logs", false},
        {"logs/AWSLogs", false},
        {"logs/AWSLogs/123456789012", false},
        {"localhost:4566/#", false},
        {"x@127.0.0.1:80/#", false},
        {"[::1]:80/#", false},
        {"127.0.0.1", false},
        {"192.168.5.4", false},
        {"1.2.3.4.5", true}, /* five groups is no IPv4 address */
        {"-logs", false},
        {"logs-", false},
        {".logs", false},
        {"lo..gs", false},
        {"xn--logs", false},
        {"sthree-logs", false},
        {"amzn-s3-demo-bucket", false},
        {"logs-s3alias", false},
        {"logs--ol-s3", false},
        {"logs.mrap", false},
        {"logs--x-s3", false},
        {"logs--table-s3", false},
        {"log s", false},
        {"logs%2f", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *why = bm_s3_bucket_check(cases[i].name, strlen(cases[i].name));
        if (cases[i].ok != (why == NULL))
            fail_msg("bucket \"%s\": expected %s, got %s", cases[i].name,
                     cases[i].ok ? "valid" : "invalid", why ? why : "valid");
    }
    /* An embedded NUL is no letter: the length counts, not the C string. */
    assert_non_null(bm_s3_bucket_check("abc\0def", 7));
}

static void test_key(void **state)
{
    (void)state;
    char big[1100];
    memset(big, 'k', sizeof big);
    assert_null(bm_s3_key_check("AWSLogs/1/BedrockModelInvocationLogs/x.json.gz", 46));
    assert_null(bm_s3_key_check("team a/\xC3\xBC+x.json.gz", 19));
    assert_null(bm_s3_key_check("a/../b", 6)); /* S3 keeps dot segments literally */
    assert_null(bm_s3_key_check(big, 1024));
    assert_non_null(bm_s3_key_check(big, 1025));
    assert_non_null(bm_s3_key_check("", 0));
    assert_non_null(bm_s3_key_check("a\0b", 3));
    assert_non_null(bm_s3_key_check("\xC3", 1));             /* truncated sequence */
    assert_non_null(bm_s3_key_check("\xC0\xAF", 2));         /* overlong '/' */
    assert_non_null(bm_s3_key_check("\xED\xA0\x80", 3));     /* a surrogate */
    assert_non_null(bm_s3_key_check("\xF4\x90\x80\x80", 4)); /* past U+10FFFF */
    assert_null(bm_s3_key_check("\xF0\x9F\x98\x80", 4));     /* an emoji */
}

static void test_version(void **state)
{
    (void)state;
    char big[1100];
    memset(big, 'v', sizeof big);
    assert_null(bm_s3_version_check("null", 4));
    assert_null(bm_s3_version_check(
        "3/L4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo", 64));
    assert_null(bm_s3_version_check("Ui.Gu4_LJ-x=", 12));
    assert_null(bm_s3_version_check(big, 1024));
    assert_non_null(bm_s3_version_check(big, 1025));
    assert_non_null(bm_s3_version_check("", 0));
    assert_non_null(bm_s3_version_check("v 1", 3));
    assert_non_null(bm_s3_version_check("v1&x=y", 6));
    assert_non_null(bm_s3_version_check("v\0", 2));
}

static void test_etag(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *out; /* NULL: refused */
    } cases[] = {
        {"0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef"},
        {"\"0123456789abcdef0123456789abcdef\"", "0123456789abcdef0123456789abcdef"},
        {"0123456789ABCDEF0123456789ABCDEF", "0123456789abcdef0123456789abcdef"},
        {"0123456789abcdef0123456789abcdef-2", "0123456789abcdef0123456789abcdef-2"},
        {"\"0123456789abcdef0123456789abcdef-10000\"", "0123456789abcdef0123456789abcdef-10000"},
        {"W/\"0123456789abcdef0123456789abcdef\"", NULL},
        {"\"\"0123456789abcdef0123456789abcdef\"\"", NULL},
        {"0123456789abcdef0123456789abcdef-10001", NULL},
        {"0123456789abcdef0123456789abcdef-0", NULL},
        {"0123456789abcdef0123456789abcdef-01", NULL},
        {"0123456789abcdef0123456789abcdef-", NULL},
        {"0123456789abcdef0123456789abcdefx", NULL},
        {"0123456789abcdef0123456789abcde", NULL},
        {"g123456789abcdef0123456789abcdef", NULL},
        {"", NULL},
        {"\"", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[BM_S3_ETAG_MAX + 1] = "unchanged";
        const char *why = bm_s3_etag_normalize(cases[i].in, strlen(cases[i].in), out);
        if (cases[i].out == NULL) {
            if (why == NULL)
                fail_msg("ETag %s accepted as %s", cases[i].in, out);
        } else {
            if (why != NULL)
                fail_msg("ETag %s refused: %s", cases[i].in, why);
            assert_string_equal(out, cases[i].out);
        }
    }
    /* A weak ETag is refused for what it is, so the operator reading BMAS-005 knows why. */
    char out[BM_S3_ETAG_MAX + 1];
    const char *why = bm_s3_etag_normalize("W/\"0123456789abcdef0123456789abcdef\"", 36, out);
    assert_non_null(why);
    assert_non_null(strstr(why, "weak"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket),
        cmocka_unit_test(test_key),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_etag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
