/* Unit tests for core/url.c: percent-decoding (plain and form), RFC 3986 encoding with caller
 * safe sets, and the query-string iterator. */
#include "tu.h"

static void test_decode(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        bool form;
        bm_err rc;
        const char *out;
    } cases[] = {
        {"team+a/%C3%BC%2Bx.json.gz", true, BM_OK, "team a/\xC3\xBC+x.json.gz"},
        {"team+a/%C3%BC%2Bx.json.gz", false, BM_OK, "team+a/\xC3\xBC+x.json.gz"},
        {"%2B+%2b", true, BM_OK, "+ +"},      /* one pass: %2B never becomes a space */
        {"%252B", true, BM_OK, "%2B"},        /* and decoding happens only once */
        {"a%3Ab%3db", false, BM_OK, "a:b=b"}, /* lowercase hex too */
        {"", true, BM_OK, ""},
        {"bad%", false, BM_E_BAD_REQUEST, NULL},
        {"bad%2", false, BM_E_BAD_REQUEST, NULL},
        {"bad%zz", true, BM_E_BAD_REQUEST, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct bm_buf b;
        bm_buf_init(&b, 1024);
        assert_int_equal(bm_buf_append_str(&b, "X"), BM_OK);
        bm_err rc = bm_url_decode(cases[i].in, strlen(cases[i].in), cases[i].form, &b);
        assert_int_equal(rc, cases[i].rc);
        /* On failure the buffer keeps exactly what it had. */
        assert_string_equal(b.data + 1, cases[i].out ? cases[i].out : "");
        assert_int_equal(b.data[0], 'X');
        bm_buf_cleanup(&b);
    }
}

static void test_encode(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *safe;
        bool form;
        const char *out;
    } cases[] = {
        /* S3 event keys: form encoding with '/' kept (docs/formats.md 4.1). */
        {"team a/\xC3\xBC+x.json.gz", "/", true, "team+a/%C3%BC%2Bx.json.gz"},
        {"a:b=c", "/", true, "a%3Ab%3Dc"},
        /* SigV4 strict encoding: only the unreserved set stays. */
        {"-._~AZaz09 /+*", NULL, false, "-._~AZaz09%20%2F%2B%2A"},
        {"a/b c", "/", false, "a/b%20c"},
        {"", NULL, false, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct bm_buf b;
        bm_buf_init(&b, 1024);
        assert_int_equal(
            bm_url_encode(cases[i].in, strlen(cases[i].in), cases[i].safe, cases[i].form, &b),
            BM_OK);
        assert_string_equal(b.data ? b.data : "", cases[i].out);
        bm_buf_cleanup(&b);
    }
    /* A cap that is hit leaves the buffer as it was. */
    struct bm_buf small;
    bm_buf_init(&small, 4);
    assert_int_equal(bm_url_encode("   ", 3, NULL, false, &small), BM_E_TOO_LARGE);
    assert_int_equal(small.len, 0);
    bm_buf_cleanup(&small);
}

static void test_roundtrip(void **state)
{
    (void)state;
    /* Every byte value survives encode then decode, in both modes. */
    char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    for (int form = 0; form <= 1; form++) {
        struct bm_buf enc, dec;
        bm_buf_init(&enc, 4096);
        bm_buf_init(&dec, 4096);
        assert_int_equal(bm_url_encode(all, sizeof all, "/", form, &enc), BM_OK);
        assert_int_equal(bm_url_decode(enc.data, enc.len, form, &dec), BM_OK);
        assert_int_equal(dec.len, sizeof all);
        assert_memory_equal(dec.data, all, sizeof all);
        bm_buf_cleanup(&enc);
        bm_buf_cleanup(&dec);
    }
}

static void test_query_next(void **state)
{
    (void)state;
    const char *q = "Action=SendMessage&&flag&MessageBody=a%20b&empty=";
    size_t pos = 0;
    struct bm_url_pair p;
    static const struct {
        const char *name, *value;
        bool has_value;
    } want[] = {{"Action", "SendMessage", true},
                {"flag", "", false},
                {"MessageBody", "a%20b", true},
                {"empty", "", true}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_true(bm_url_query_next(q, strlen(q), &pos, &p));
        assert_int_equal(p.name_len, strlen(want[i].name));
        assert_memory_equal(p.name, want[i].name, p.name_len);
        assert_int_equal(p.value_len, strlen(want[i].value));
        assert_memory_equal(p.value, want[i].value, p.value_len);
        assert_int_equal(p.has_value, want[i].has_value);
    }
    assert_false(bm_url_query_next(q, strlen(q), &pos, &p));
    pos = 0;
    assert_false(bm_url_query_next("", 0, &pos, &p));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_query_next),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
