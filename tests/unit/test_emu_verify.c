/* Unit tests for the emulator's SigV4 verifier (emulator/verify.c): every signed request of the
 * AWS suite, header and presigned forms, must verify at the suite's time, and each way of
 * getting it wrong must be told apart; aws-chunked decoding against the AWS documentation's
 * streaming example. */
#include "tu_vectors.h"

#include "emulator/emu_int.h"

static const struct emu_cred suite_cred[] = {
    {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"},
};

static enum emu_auth verify_file(const char *name, const char *file, int64_t now_delta,
                                 const struct emu_cred *creds, struct tu_http *h)
{
    struct tu_context c;
    tu_context_load(name, &c);
    tu_http_load(name, file, h);
    if (c.omit_token && h->query != NULL)
        tu_drop_param(h->query, &h->query_len, "X-Amz-Security-Token");
    struct bm_buf body;
    bm_buf_init(&body, 1 << 20);
    assert_int_equal(bm_buf_append(&body, h->body, h->body_len), BM_OK);
    struct emu_verify_in in = {
        .method = h->method,
        .path = h->path,
        .path_len = h->path_len,
        .query = h->query,
        .query_len = h->query_len,
        .hdr = h->headers,
        .n_hdr = h->n_headers,
        .body = &body,
        .creds = creds,
        .n_creds = 1,
        .now = c.when + now_delta,
        .skew_s = 900,
        /* The suite's files hold raw paths; its unnormalised cases are not S3 but ask for S3's
         * path rule, so the test states the rules. */
        .path_rules_given = true,
        .path_normalize = c.normalize,
        .path_encode = true,
    };
    struct emu_verify_out out;
    enum emu_auth a = bm__emu_verify(&in, &out);
    if (a == EMU_AUTH_OK) {
        assert_string_equal(out.service, c.service);
        assert_string_equal(out.akid, "AKIDEXAMPLE");
    }
    bm_buf_cleanup(&body);
    tu_context_free(&c);
    return a;
}

static void test_header_vector(void **state)
{
    struct tu_http h;
    assert_int_equal(verify_file(*state, "header-signed-request.txt", 0, suite_cred, &h),
                     EMU_AUTH_OK);
    tu_http_free(&h);
    /* The same request 16 minutes later is outside the skew window. */
    assert_int_equal(verify_file(*state, "header-signed-request.txt", 16 * 60, suite_cred, &h),
                     EMU_AUTH_SKEW);
    tu_http_free(&h);
    static const struct emu_cred wrong[] = {{"AKIDEXAMPLE", "not-the-secret"}};
    assert_int_equal(verify_file(*state, "header-signed-request.txt", 0, wrong, &h),
                     EMU_AUTH_MISMATCH);
    tu_http_free(&h);
    static const struct emu_cred other[] = {{"AKIDOTHER", "x"}};
    assert_int_equal(verify_file(*state, "header-signed-request.txt", 0, other, &h),
                     EMU_AUTH_UNKNOWN_KEY);
    tu_http_free(&h);
}

static void test_query_vector(void **state)
{
    struct tu_http h;
    assert_int_equal(verify_file(*state, "query-signed-request.txt", 0, suite_cred, &h),
                     EMU_AUTH_OK);
    tu_http_free(&h);
    /* Presigned URLs are valid for X-Amz-Expires (3600 s here), not for the skew window. */
    assert_int_equal(verify_file(*state, "query-signed-request.txt", 3000, suite_cred, &h),
                     EMU_AUTH_OK);
    tu_http_free(&h);
    assert_int_equal(verify_file(*state, "query-signed-request.txt", 3601, suite_cred, &h),
                     EMU_AUTH_EXPIRED);
    tu_http_free(&h);
    static const struct emu_cred wrong[] = {{"AKIDEXAMPLE", "not-the-secret"}};
    assert_int_equal(verify_file(*state, "query-signed-request.txt", 0, wrong, &h),
                     EMU_AUTH_MISMATCH);
    tu_http_free(&h);
}

/* Requests of our own: malformed and missing authentication, and a tampered header. */
static void test_malformed(void **state)
{
    (void)state;
    static const struct emu_cred creds[] = {{"test", "test"}};
    struct bm_buf body;
    bm_buf_init(&body, 1024);
    struct bm_sigv4_header hd[3] = {{"Host", 4, "127.0.0.1:1", 11}};
    struct emu_verify_in in = {.method = "GET",
                               .path = "/",
                               .path_len = 1,
                               .hdr = hd,
                               .n_hdr = 1,
                               .body = &body,
                               .creds = creds,
                               .n_creds = 1,
                               .now = 1795000000,
                               .skew_s = 900};
    struct emu_verify_out out;
    assert_int_equal(bm__emu_verify(&in, &out), EMU_AUTH_MISSING);
    static const char *const bad[] = {
        "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request",
        "AWS4-HMAC-SHA256 Credential=test/2026/us-east-1/s3/aws4_request, SignedHeaders=host, "
        "Signature=00",
        "AWS test:abc",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hd[1] = (struct bm_sigv4_header){"Authorization", 13, bad[i], strlen(bad[i])};
        hd[2] = (struct bm_sigv4_header){"X-Amz-Date", 10, "20260101T000000Z", 16};
        in.n_hdr = 3;
        assert_int_equal(bm__emu_verify(&in, &out), EMU_AUTH_MALFORMED);
    }
    /* Signed correctly, except that host is not among the signed headers. */
    const char *nohost = "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, "
                         "SignedHeaders=x-amz-date, Signature=00";
    hd[1] = (struct bm_sigv4_header){"Authorization", 13, nohost, strlen(nohost)};
    assert_int_equal(bm__emu_verify(&in, &out), EMU_AUTH_MALFORMED);
    bm_buf_cleanup(&body);
}

/* The AWS documentation's streaming example (sigv4-streaming.html): 66560 bytes of 'a' in a
 * 65536-byte chunk, a 1024-byte chunk and the final empty chunk, with their signatures. */
static void test_dechunk_aws_example(void **state)
{
    (void)state;
    static const char *const sigs[] = {
        "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
        "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
        "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
    };
    static const size_t sizes[] = {65536, 1024, 0};
    struct bm_buf body;
    bm_buf_init(&body, 1 << 20);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(bm_buf_appendf(&body, "%zx;chunk-signature=%s\r\n", sizes[i], sigs[i]),
                         BM_OK);
        for (size_t k = 0; k < sizes[i]; k++)
            assert_int_equal(bm_buf_append_char(&body, 'a'), BM_OK);
        assert_int_equal(bm_buf_append(&body, "\r\n", 2), BM_OK);
    }
    unsigned char key[BM_SHA256_LEN];
    assert_int_equal(bm_sigv4_signing_key("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524",
                                          "us-east-1", "s3", key),
                     BM_OK);
    const char *scope = "20130524/us-east-1/s3/aws4_request";
    const char *seed = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
    struct bm_buf copy;
    bm_buf_init(&copy, 1 << 20);
    assert_int_equal(bm_buf_append(&copy, body.data, body.len), BM_OK);
    assert_true(bm__emu_dechunk(&body, key, "20130524T000000Z", scope, seed));
    assert_int_equal(body.len, 66560);
    for (size_t k = 0; k < body.len; k++)
        assert_int_equal(body.data[k], 'a');
    /* One flipped signature digit and the chain breaks. */
    char *sig = strstr(copy.data, sigs[1]);
    sig[0] = sig[0] == '0' ? '1' : '0';
    assert_false(bm__emu_dechunk(&copy, key, "20130524T000000Z", scope, seed));
    /* Unsigned framing with trailers (STREAMING-UNSIGNED-PAYLOAD-TRAILER). */
    bm_buf_reset(&copy);
    assert_int_equal(bm_buf_append_str(&copy, "5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n"
                                              "\r\n"),
                     BM_OK);
    assert_true(bm__emu_dechunk(&copy, NULL, NULL, NULL, NULL));
    assert_int_equal(copy.len, 5);
    assert_memory_equal(copy.data, "hello", 5);
    bm_buf_reset(&copy);
    assert_int_equal(bm_buf_append_str(&copy, "5\r\nhel"), BM_OK);
    assert_false(bm__emu_dechunk(&copy, NULL, NULL, NULL, NULL));
    bm_buf_cleanup(&copy);
    bm_buf_cleanup(&body);
}

int main(void)
{
    const struct CMUnitTest own[] = {
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_dechunk_aws_example),
    };
    int rc = cmocka_run_group_tests_name("emu_verify_own", own, NULL, NULL);
    rc += tu_run_vector_group("emu_verify_header", test_header_vector);
    rc += tu_run_vector_group("emu_verify_query", test_query_vector);
    return rc != 0;
}
