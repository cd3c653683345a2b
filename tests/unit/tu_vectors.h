/* tu_vectors.h: reads the AWS SigV4 signing test suite (tests/vectors/sigv4, one folder per
 * case; $BM_SIGV4_VECTORS overrides the path) for the core signer tests and the emulator
 * verifier tests. Header-only like tu.h. */
#ifndef BM_TU_VECTORS_H
#define BM_TU_VECTORS_H

#include "tu.h"

#include <cjson/cJSON.h>
#include <dirent.h>

#define TU_MAX_HEADERS 32
/* The suite in tests/vectors/sigv4 has 38 cases: a run that found fewer fails. */
#define TU_SIGV4_MIN_CASES 38

/* One HTTP request parsed from a suite file; every pointer points into text. */
struct tu_http {
    char *text; /* the file, owned (bm_free) */
    char *method;
    char *path; /* raw, as in the file: may hold spaces and UTF-8 */
    size_t path_len;
    char *query; /* NULL when the target has no '?' */
    size_t query_len;
    struct bm_sigv4_header headers[TU_MAX_HEADERS];
    size_t n_headers;
    char *body;
    size_t body_len;
};

/* The case's context.json fields the tests need. */
struct tu_context {
    char *akid, *secret, *token, *region, *service;
    bool normalize, sign_body, omit_token;
    long expires;
    int64_t when;
};

static inline const char *tu_vectors_dir(void)
{
    const char *d = getenv("BM_SIGV4_VECTORS");
    return d && *d ? d : "tests/vectors/sigv4";
}

/* Reads <dir>/<name>/<file> (bm_free it); fails the running test when it is missing. */
static inline char *tu_vector_file(const char *name, const char *file, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/%s", tu_vectors_dir(), name, file);
    char *s = tu_read_file(path, len);
    if (s == NULL)
        fail_msg("cannot read %s", path);
    return s;
}

/* Parses "METHOD target HTTP/1.1", headers (folded continuation lines kept with their
 * newline, as the suite's get-header-value-multiline means them), a blank line and a body. */
static inline void tu_http_parse(char *text, size_t len, struct tu_http *h)
{
    memset(h, 0, sizeof *h);
    h->text = text;
    char *eol = strchr(text, '\n');
    assert_non_null(eol);
    *eol = '\0';
    char *sp = strchr(text, ' ');
    char *ver = strstr(text, " HTTP/");
    assert_non_null(sp);
    assert_non_null(ver);
    *sp = '\0';
    *ver = '\0';
    h->method = text;
    h->path = sp + 1;
    char *q = strchr(h->path, '?');
    if (q != NULL) {
        *q = '\0';
        h->query = q + 1;
        h->query_len = strlen(h->query);
    }
    h->path_len = strlen(h->path);
    char *p = eol + 1;
    char *end = text + len;
    while (p < end && *p != '\n') {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *line_end = nl ? nl : end;
        if ((*p == ' ' || *p == '\t') && h->n_headers > 0) {
            /* A continuation: the previous value runs on to this line's end. */
            struct bm_sigv4_header *prev = &h->headers[h->n_headers - 1];
            prev->value_len = (size_t)(line_end - prev->value);
        } else {
            char *colon = memchr(p, ':', (size_t)(line_end - p));
            assert_non_null(colon);
            assert_true(h->n_headers < TU_MAX_HEADERS);
            struct bm_sigv4_header *hd = &h->headers[h->n_headers++];
            hd->name = p;
            hd->name_len = (size_t)(colon - p);
            hd->value = colon + 1;
            hd->value_len = (size_t)(line_end - (colon + 1));
        }
        p = nl ? nl + 1 : end;
    }
    h->body = p < end ? p + 1 : end;
    h->body_len = (size_t)(end - h->body);
}

/* Reads and parses one request file of a case. */
static inline void tu_http_load(const char *name, const char *file, struct tu_http *h)
{
    size_t len = 0;
    char *text = tu_vector_file(name, file, &len);
    tu_http_parse(text, len, h);
}

static inline void tu_http_free(struct tu_http *h)
{
    BM_FREE(h->text);
}

static inline char *tu_json_str(cJSON *o, const char *k)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? bm_strdup(v->valuestring) : NULL;
}

static inline void tu_context_load(const char *name, struct tu_context *c)
{
    size_t len;
    char *text = tu_vector_file(name, "context.json", &len);
    cJSON *root = cJSON_ParseWithLength(text, len);
    assert_non_null(root);
    cJSON *cred = cJSON_GetObjectItemCaseSensitive(root, "credentials");
    memset(c, 0, sizeof *c);
    c->akid = tu_json_str(cred, "access_key_id");
    c->secret = tu_json_str(cred, "secret_access_key");
    c->token = tu_json_str(cred, "token");
    c->region = tu_json_str(root, "region");
    c->service = tu_json_str(root, "service");
    c->normalize = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "normalize"));
    c->sign_body = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "sign_body"));
    c->omit_token = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "omit_session_token"));
    cJSON *exp = cJSON_GetObjectItemCaseSensitive(root, "expiration_in_seconds");
    c->expires = cJSON_IsNumber(exp) ? (long)exp->valuedouble : 0;
    char *ts = tu_json_str(root, "timestamp");
    assert_non_null(ts);
    assert_true(bm_time_parse(ts, strlen(ts), &c->when));
    bm_free(ts);
    cJSON_Delete(root);
    bm_free(text);
}

static inline void tu_context_free(struct tu_context *c)
{
    bm_free(c->akid);
    bm_free(c->secret);
    bm_free(c->token);
    bm_free(c->region);
    bm_free(c->service);
}

/* Reads an expected-output file, without the trailing newline some files have. */
static inline char *tu_vector_expect(const char *name, const char *file)
{
    size_t len;
    char *s = tu_vector_file(name, file, &len);
    while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
        s[--len] = '\0';
    return s;
}

/* Removes every "name=..." parameter from a query string in place (post-sts-header-after
 * appends the session token after signing: it is not part of the signature). */
static inline void tu_drop_param(char *q, size_t *len, const char *name)
{
    size_t nlen = strlen(name);
    for (char *p = q; (p = strstr(p, name)) != NULL;) {
        if ((p == q || p[-1] == '&') && p[nlen] == '=') {
            char *end = strchr(p, '&');
            if (end == NULL)
                *(p > q ? p - 1 : p) = '\0';
            else
                memmove(p, end + 1, strlen(end + 1) + 1);
            *len = strlen(q);
        } else {
            p += nlen;
        }
    }
}

static inline int tu_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names of the suite's case folders, sorted (bm_free each and the array); *n = 0 and NULL when
 * the suite is absent. */
static inline char **tu_vector_cases(size_t *n)
{
    *n = 0;
    DIR *d = opendir(tu_vectors_dir());
    if (d == NULL)
        return NULL;
    char **names = NULL;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s/context.json", tu_vectors_dir(), e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        fclose(f);
        char **grown = bm_realloc(names, (*n + 1) * sizeof *names);
        assert_non_null(grown);
        names = grown;
        names[(*n)++] = bm_strdup(e->d_name);
    }
    closedir(d);
    if (*n > 1)
        qsort(names, *n, sizeof *names, tu_name_cmp);
    return names;
}

/* Runs test once per vector case (its state is the case name). A missing or short suite is a
 * failure, never a skip: fewer than TU_SIGV4_MIN_CASES cases returns 1. */
static inline int tu_run_vector_group(const char *group, CMUnitTestFunction test)
{
    size_t n;
    char **names = tu_vector_cases(&n);
    if (n < TU_SIGV4_MIN_CASES) {
        printf("not ok - %s: %zu SigV4 cases at %s, want at least %d\n", group, n, tu_vectors_dir(),
               TU_SIGV4_MIN_CASES);
        for (size_t i = 0; i < n; i++)
            bm_free(names[i]);
        bm_free(names);
        return 1;
    }
    struct CMUnitTest *tests = bm_calloc(n, sizeof *tests);
    assert_non_null(tests);
    for (size_t i = 0; i < n; i++) {
        tests[i].name = names[i];
        tests[i].test_func = test;
        tests[i].initial_state = names[i];
    }
    int rc = _cmocka_run_group_tests(group, tests, n, NULL, NULL);
    for (size_t i = 0; i < n; i++)
        bm_free(names[i]);
    bm_free(names);
    bm_free(tests);
    return rc;
}

#endif
