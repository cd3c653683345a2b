/* Unit tests for core/crypto.c against published test vectors (FIPS 180-2, RFC 1321, RFC 4231,
 * RFC 4648) and the SigV4 signing-key example of the AWS documentation. */
#include "tu.h"

static void test_digests(void **state)
{
    (void)state;
    char hex[BM_SHA256_HEX_LEN + 1];
    assert_int_equal(bm_sha256_hex("", 0, hex), BM_OK);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_int_equal(bm_sha256_hex("abc", 3, hex), BM_OK);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    char md5[BM_MD5_HEX_LEN + 1];
    assert_int_equal(bm_md5_hex("", 0, md5), BM_OK);
    assert_string_equal(md5, "d41d8cd98f00b204e9800998ecf8427e");
    assert_int_equal(bm_md5_hex("message digest", 14, md5), BM_OK);
    assert_string_equal(md5, "f96b697d7cb7938d525a2f31aaf161d0");
}

static void test_hmac(void **state)
{
    (void)state;
    /* RFC 4231 test case 2. */
    unsigned char mac[BM_SHA256_LEN];
    char hex[BM_SHA256_HEX_LEN + 1];
    const char *data = "what do ya want for nothing?";
    assert_int_equal(bm_hmac_sha256("Jefe", 4, data, strlen(data), mac), BM_OK);
    bm_hex(mac, sizeof mac, hex);
    assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* The signing key example of the SigV4 documentation (secret, 20150830, us-east-1, iam). */
    unsigned char key[BM_SHA256_LEN];
    assert_int_equal(bm_sigv4_signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830",
                                          "us-east-1", "iam", key),
                     BM_OK);
    bm_hex(key, sizeof key, hex);
    assert_string_equal(hex, "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9");
    assert_true(bm_crypto_equal("abc", "abc", 3));
    assert_false(bm_crypto_equal("abc", "abd", 3));
}

static void test_base64(void **state)
{
    (void)state;
    static const struct {
        const char *raw, *b64;
    } cases[] = {{"", ""},
                 {"f", "Zg=="},
                 {"fo", "Zm8="},
                 {"foo", "Zm9v"},
                 {"foob", "Zm9vYg=="},
                 {"fooba", "Zm9vYmE="},
                 {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct bm_buf b;
        bm_buf_init(&b, 64);
        assert_int_equal(bm_base64_encode(cases[i].raw, strlen(cases[i].raw), &b), BM_OK);
        assert_string_equal(b.data ? b.data : "", cases[i].b64);
        bm_buf_reset(&b);
        assert_int_equal(bm_base64_decode(cases[i].b64, strlen(cases[i].b64), &b), BM_OK);
        assert_int_equal(b.len, strlen(cases[i].raw));
        if (b.len > 0)
            assert_memory_equal(b.data, cases[i].raw, b.len);
        bm_buf_cleanup(&b);
    }
    static const char *const bad[] = {"Zg=", "Z===", "Zm9v!A==", "=Zm9", "Zg==Zg=="};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct bm_buf b;
        bm_buf_init(&b, 64);
        assert_int_equal(bm_base64_decode(bad[i], strlen(bad[i]), &b), BM_E_BAD_REQUEST);
        bm_buf_cleanup(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digests),
        cmocka_unit_test(test_hmac),
        cmocka_unit_test(test_base64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
