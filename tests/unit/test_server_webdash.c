/* test_server_webdash.c: GET /dashboard's answer (server/webdash.c) without a daemon: the
 * page with its headers, If-None-Match (RFC 9110 13.1.2: exact, weak, lists, "*") answered
 * 304 with no body, and a CSP whose hashes are those of the page's own inline script and
 * style, recomputed here from the page text. */
#include "tu.h"

#include "server/srv_int.h"

static const char *header(const struct bm__reply *r, const char *name)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcmp(r->headers[i][0], name) == 0)
            return r->headers[i][1];
    return NULL;
}

/* Status of the answer to If-None-Match inm (NULL: none); the body must be empty on 304. */
static int answer(const char *inm)
{
    struct bm__reply r = {0};
    bm_buf_init(&r.body, 1 << 20);
    bm__route_webdash(inm, &r);
    if (r.status == 304)
        assert_int_equal(r.body.len, 0);
    assert_string_equal(header(&r, "ETag"), bm__webdash_etag);
    bm_buf_cleanup(&r.body);
    return r.status;
}

static void page(void **state)
{
    (void)state;
    struct bm__reply r = {0};
    bm_buf_init(&r.body, 1 << 20);
    bm__route_webdash(NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "text/html; charset=utf-8");
    assert_string_equal(r.cache_control, "no-cache");
    assert_int_equal(r.body.len, bm__webdash_page_len);
    assert_memory_equal(r.body.data, bm__webdash_page, bm__webdash_page_len);
    assert_int_equal(strncmp(r.body.data, "<!doctype html>", 15), 0);
    assert_string_equal(header(&r, "Content-Security-Policy"), bm__webdash_csp);
    assert_string_equal(header(&r, "X-Content-Type-Options"), "nosniff");
    /* The ETag: the first 32 hex digits of the page's SHA-256, quoted. */
    char hex[BM_SHA256_HEX_LEN + 1], want[40];
    assert_int_equal(bm_sha256_hex(bm__webdash_page, bm__webdash_page_len, hex), BM_OK);
    snprintf(want, sizeof want, "\"%.32s\"", hex);
    assert_string_equal(bm__webdash_etag, want);
    bm_buf_cleanup(&r.body);
}

static void conditional(void **state)
{
    (void)state;
    char tag[64];
    assert_int_equal(answer(NULL), 200);
    assert_int_equal(answer(""), 200);
    assert_int_equal(answer(bm__webdash_etag), 304);
    assert_int_equal(answer("*"), 304);
    snprintf(tag, sizeof tag, "W/%s", bm__webdash_etag);
    assert_int_equal(answer(tag), 304);
    snprintf(tag, sizeof tag, "\"abc\", W/\"def\",%s", bm__webdash_etag);
    assert_int_equal(answer(tag), 304);
    assert_int_equal(answer("\"abc\", W/\"def\""), 200);
    /* Almost the tag: one character short, one too many, unquoted. */
    snprintf(tag, sizeof tag, "%.*s", (int)strlen(bm__webdash_etag) - 1, bm__webdash_etag);
    assert_int_equal(answer(tag), 200);
    snprintf(tag, sizeof tag, "%sx", bm__webdash_etag);
    assert_int_equal(answer(tag), 200);
    snprintf(tag, sizeof tag, "%.*s", (int)strlen(bm__webdash_etag) - 2, bm__webdash_etag + 1);
    assert_int_equal(answer(tag), 200);
}

/* "'sha256-<base64>'" of the text between <tag> and </tag> in the page. */
static void inline_hash(const char *tag, char *out, size_t cap)
{
    char open[16], close[16];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    const char *page = (const char *)bm__webdash_page;
    const char *a = strstr(page, open);
    assert_non_null(a);
    a += strlen(open);
    const char *b = strstr(a, close);
    assert_non_null(b);
    assert_null(strstr(b + 1, open)); /* one element of each */
    unsigned char sum[BM_SHA256_LEN];
    assert_int_equal(bm_sha256(a, (size_t)(b - a), sum), BM_OK);
    struct bm_buf b64;
    bm_buf_init(&b64, 1024);
    assert_int_equal(bm_base64_encode(sum, sizeof sum, &b64), BM_OK);
    snprintf(out, cap, "'sha256-%.*s'", (int)b64.len, b64.data);
    bm_buf_cleanup(&b64);
}

static void csp(void **state)
{
    (void)state;
    char script[80], style[80], want[200];
    inline_hash("script", script, sizeof script);
    inline_hash("style", style, sizeof style);
    const char *c = bm__webdash_csp;
    assert_int_equal(strncmp(c, "default-src 'none'; ", 20), 0);
    snprintf(want, sizeof want, "; script-src %s; ", script);
    assert_non_null(strstr(c, want));
    snprintf(want, sizeof want, "; style-src %s; ", style);
    assert_non_null(strstr(c, want));
    assert_non_null(strstr(c, "; connect-src 'self'; "));
    assert_null(strstr(c, "unsafe"));
    assert_null(strstr(c, "http"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(page),
        cmocka_unit_test(conditional),
        cmocka_unit_test(csp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
