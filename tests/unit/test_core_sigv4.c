/* Unit tests for core/sigv4.c: every case of the AWS SigV4 signing test suite, header and query
 * signing, must give the suite's canonical request, string to sign and signature byte for byte. */
#include "tu_vectors.h"

struct signed_view {
    char *canonical;
    char *sts;
    char sig[BM_SHA256_HEX_LEN + 1];
};

static void compute(const struct bm_sigv4_request *rq, const struct tu_context *c,
                    struct signed_view *out)
{
    char amz_date[17], date8[9], scope[256];
    unsigned char key[BM_SHA256_LEN];
    struct bm_buf canon, sts;
    bm_time_format_compact(c->when, amz_date);
    memcpy(date8, amz_date, 8);
    date8[8] = '\0';
    snprintf(scope, sizeof scope, "%s/%s/%s/aws4_request", date8, c->region, c->service);
    bm_buf_init(&canon, 1 << 20);
    bm_buf_init(&sts, 1 << 20);
    assert_int_equal(bm_sigv4_canonical_request(rq, &canon), BM_OK);
    assert_int_equal(bm_sigv4_string_to_sign(amz_date, scope, canon.data, canon.len, &sts), BM_OK);
    assert_int_equal(bm_sigv4_signing_key(c->secret, date8, c->region, c->service, key), BM_OK);
    assert_int_equal(bm_sigv4_signature(key, sts.data, sts.len, out->sig), BM_OK);
    out->canonical = bm_buf_steal(&canon);
    out->sts = bm_buf_steal(&sts);
}

static void expect(const char *name, const char *prefix, struct signed_view *v)
{
    char file[128];
    snprintf(file, sizeof file, "%s-canonical-request.txt", prefix);
    char *want_canon = tu_vector_expect(name, file);
    snprintf(file, sizeof file, "%s-string-to-sign.txt", prefix);
    char *want_sts = tu_vector_expect(name, file);
    snprintf(file, sizeof file, "%s-signature.txt", prefix);
    char *want_sig = tu_vector_expect(name, file);
    assert_string_equal(v->canonical, want_canon);
    assert_string_equal(v->sts, want_sts);
    assert_string_equal(v->sig, want_sig);
    bm_free(want_canon);
    bm_free(want_sts);
    bm_free(want_sig);
    BM_FREE(v->canonical);
    BM_FREE(v->sts);
}

/* Builds the request from a parsed suite file (its path is raw: encoded here once, normalised
 * when the case says so), signs it and compares with the case's <prefix>-* files. */
static void check_case(const char *name, const char *prefix, const struct tu_context *c,
                       const struct tu_http *h, const char *signed_headers, const char *body_hash,
                       const char *query_skip)
{
    struct bm_sigv4_request rq = {
        .method = h->method,
        .path = h->path,
        .path_len = h->path_len,
        .path_normalize = c->normalize,
        .path_encode = true,
        .query = h->query,
        .query_len = h->query_len,
        .query_skip = query_skip,
        .headers = h->headers,
        .n_headers = h->n_headers,
        .signed_headers = signed_headers,
        .payload_hash = body_hash,
    };
    struct signed_view v;
    compute(&rq, c, &v);
    expect(name, prefix, &v);
}

static int header_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Header signing as a signer does it: request.txt plus X-Amz-Date (and the session token
 * unless the case adds it after signing, and the body hash when the case signs it), every
 * header signed. */
static void test_header_signing(void **state)
{
    const char *name = *state;
    struct tu_context c;
    struct tu_http h;
    tu_context_load(name, &c);
    tu_http_load(name, "request.txt", &h);

    char amz_date[17], body_hash[BM_SHA256_HEX_LEN + 1];
    bm_time_format_compact(c.when, amz_date);
    assert_int_equal(bm_sha256_hex(h.body, h.body_len, body_hash), BM_OK);
    struct bm_sigv4_header extra[] = {
        {"X-Amz-Date", 10, amz_date, strlen(amz_date)},
        {"X-Amz-Security-Token", 20, c.token, c.token ? strlen(c.token) : 0},
        {"X-Amz-Content-Sha256", 20, body_hash, strlen(body_hash)},
    };
    h.headers[h.n_headers++] = extra[0];
    if (c.token != NULL && !c.omit_token)
        h.headers[h.n_headers++] = extra[1];
    if (c.sign_body)
        h.headers[h.n_headers++] = extra[2];

    /* SignedHeaders: every name once, lowercase, sorted. */
    char *names[TU_MAX_HEADERS];
    size_t n = 0;
    for (size_t i = 0; i < h.n_headers; i++) {
        char *lower = bm_strndup(h.headers[i].name, h.headers[i].name_len);
        for (char *p = lower; *p; p++)
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        bool dup = false;
        for (size_t j = 0; j < n; j++)
            dup = dup || strcmp(names[j], lower) == 0;
        if (dup)
            bm_free(lower);
        else
            names[n++] = lower;
    }
    qsort(names, n, sizeof names[0], header_name_cmp);
    struct bm_buf sh;
    bm_buf_init(&sh, 4096);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(bm_buf_appendf(&sh, "%s%s", i ? ";" : "", names[i]), BM_OK);
        bm_free(names[i]);
    }

    check_case(name, "header", &c, &h, sh.data, body_hash, NULL);
    bm_buf_cleanup(&sh);
    tu_http_free(&h);
    tu_context_free(&c);
}

/* Query signing as a verifier sees it: the presigned request with X-Amz-Signature left out. */
static void test_query_signing(void **state)
{
    const char *name = *state;
    struct tu_context c;
    struct tu_http h;
    tu_context_load(name, &c);
    tu_http_load(name, "query-signed-request.txt", &h);
    assert_non_null(h.query);
    /* post-sts-header-after appends the token after signing: it is not part of the signature. */
    if (c.omit_token)
        tu_drop_param(h.query, &h.query_len, "X-Amz-Security-Token");

    const char *sh_raw = strstr(h.query, "X-Amz-SignedHeaders=");
    assert_non_null(sh_raw);
    sh_raw += strlen("X-Amz-SignedHeaders=");
    struct bm_buf sh;
    bm_buf_init(&sh, 4096);
    assert_int_equal(bm_url_decode(sh_raw, strcspn(sh_raw, "&"), false, &sh), BM_OK);

    char body_hash[BM_SHA256_HEX_LEN + 1];
    assert_int_equal(bm_sha256_hex(h.body, h.body_len, body_hash), BM_OK);
    check_case(name, "query", &c, &h, sh.data, body_hash, "X-Amz-Signature");
    bm_buf_cleanup(&sh);
    tu_http_free(&h);
    tu_context_free(&c);
}

/* Cases of our own: S3's unnormalised, single-encoded path, and query canonicalisation. */
static void test_s3_path_and_query(void **state)
{
    (void)state;
    struct bm_sigv4_header hd[] = {
        {"Host", 4, "127.0.0.1:4566", 14},
        {"X-Amz-Date", 10, " 20260420T002300Z ", 18},
        {"x-amz-content-sha256", 20, "UNSIGNED-PAYLOAD", 16},
    };
    const char *q = "prefix=a%20b%2Bc&list-type=2&encoding-type=url&empty";
    struct bm_sigv4_request rq = {
        .method = "GET",
        .path = "/b/team%20a/%C3%BC%2Bx/../y",
        .path_len = strlen("/b/team%20a/%C3%BC%2Bx/../y"),
        .query = q,
        .query_len = strlen(q),
        .headers = hd,
        .n_headers = 3,
        .signed_headers = "host;x-amz-content-sha256;x-amz-date",
        .payload_hash = "UNSIGNED-PAYLOAD",
    };
    struct bm_buf out;
    bm_buf_init(&out, 4096);
    assert_int_equal(bm_sigv4_canonical_request(&rq, &out), BM_OK);
    assert_string_equal(out.data, "GET\n/b/team%20a/%C3%BC%2Bx/../y\n"
                                  "empty=&encoding-type=url&list-type=2&prefix=a%20b%2Bc\n"
                                  "host:127.0.0.1:4566\nx-amz-content-sha256:UNSIGNED-PAYLOAD\n"
                                  "x-amz-date:20260420T002300Z\n\n"
                                  "host;x-amz-content-sha256;x-amz-date\nUNSIGNED-PAYLOAD");
    /* Every other service encodes the wire path once more and normalises it. */
    bm_buf_reset(&out);
    rq.path_normalize = true;
    rq.path_encode = true;
    rq.query = "bad=%zz";
    rq.query_len = 7;
    assert_int_equal(bm_sigv4_canonical_request(&rq, &out), BM_E_BAD_REQUEST);
    bm_buf_reset(&out);
    rq.query = NULL;
    rq.query_len = 0;
    assert_int_equal(bm_sigv4_canonical_request(&rq, &out), BM_OK);
    assert_non_null(strstr(out.data, "\n/b/team%2520a/y\n\n"));
    bm_buf_cleanup(&out);
}

int main(void)
{
    const struct CMUnitTest own[] = {cmocka_unit_test(test_s3_path_and_query)};
    int rc = cmocka_run_group_tests_name("sigv4_own", own, NULL, NULL);
    rc += tu_run_vector_group("sigv4_header", test_header_signing);
    rc += tu_run_vector_group("sigv4_query", test_query_signing);
    return rc != 0;
}
