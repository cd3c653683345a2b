/* test_server_http.c: the HTTP front door in process (server/http.c on a real libmicrohttpd
 * daemon, driven by libcurl): routing, methods and Allow, the bearer token, bodies refused on
 * routes that take none, the body limit, repeated query parameters, and error bodies that are
 * JSON with the right code. Every expected status and code is written out by hand below. */
#include "test_storage_tu.h"

#include "server/srv_int.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <unistd.h>

struct fixture {
    struct bm_config cfg;
    struct bm_srv s;
    struct MHD_Daemon *d;
    int port;
    struct tdb t;
};

static const char *test_env(const char *name)
{
    if (strcmp(name, "BMAS_AUTH_TOKEN") == 0)
        return "s3cret";
    if (strcmp(name, "BMAS_MAX_BODY_BYTES") == 0)
        return "2K";
    if (strcmp(name, "BMAS_LISTEN") == 0)
        return "127.0.0.1:0";
    return NULL;
}

static int setup(void **state)
{
    struct fixture *f = bm_calloc(1, sizeof *f);
    assert_non_null(f);
    struct bm_errmsg em;
    assert_int_equal(bm_config_load(&f->cfg, test_env, &em), BM_OK);
    tdb_init(&f->t);
    f->s.cfg = &f->cfg;
    f->s.started_ms = bm_time_mono_ms();
    f->s.db = tdb_open(&f->t);
    assert_int_equal(bm__http_start(&f->s, &f->d, &f->port, &em), BM_OK);
    assert_true(f->port > 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    bm__http_stop(&f->s, f->d, 1000);
    bm_db_close(f->s.db);
    bm_config_cleanup(&f->cfg);
    tdb_cleanup(&f->t);
    bm_free(f);
    return 0;
}

struct answer {
    long status;
    struct bm_buf body;
    char allow[64];
    char retry_after[16];
};

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    struct answer *a = ud;
    return bm_buf_append(&a->body, p, sz * n) == BM_OK ? sz * n : 0;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    struct answer *a = ud;
    size_t len = sz * n;
    if (len > 7 && strncasecmp(p, "Allow: ", 7) == 0)
        snprintf(a->allow, sizeof a->allow, "%.*s", (int)(len - 9), p + 7);
    if (len > 13 && strncasecmp(p, "Retry-After: ", 13) == 0)
        snprintf(a->retry_after, sizeof a->retry_after, "%.*s", (int)(len - 15), p + 13);
    return len;
}

/* One request; body may be NULL. auth: send the right token. */
static void request(const struct fixture *f, const char *method, const char *path, bool auth,
                    const char *body, struct answer *a)
{
    memset(a, 0, sizeof *a);
    bm_buf_init(&a->body, 1 << 20);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", f->port, path);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (auth)
        h = curl_slist_append(h, "Authorization: Bearer s3cret");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, a);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
}

/* The errorCode of a JSON error body ("" when the body is not one). */
static void expect_code(const struct answer *a, const char *want)
{
    cJSON *j = cJSON_ParseWithLength(a->body.data ? a->body.data : "", a->body.len);
    if (j == NULL)
        fail_msg("not JSON: %.*s", (int)a->body.len, a->body.data ? a->body.data : "");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "errorCode");
    if (!cJSON_IsString(c) || strcmp(c->valuestring, want) != 0)
        fail_msg("want %s, got %.*s", want, (int)a->body.len, a->body.data);
    cJSON_Delete(j);
}

static void routing(void **state)
{
    const struct fixture *f = *state;
    static const struct {
        const char *method, *path;
        bool auth;
        const char *body;
        long status;
        const char *code;  /* NULL: not an error */
        const char *allow; /* NULL: not checked */
    } cases[] = {
        {"GET", "/healthz", false, NULL, 200, NULL, NULL},
        {"HEAD", "/healthz", false, NULL, 200, NULL, NULL},
        {"GET", "/dashboard", false, NULL, 200, NULL, NULL},
        {"POST", "/dashboard", false, NULL, 405, "BMAS-019", "GET, HEAD"},
        {"GET", "/nope", true, NULL, 404, "BMAS-018", NULL},
        {"GET", "/events", true, NULL, 405, "BMAS-019", "POST"},
        {"POST", "/status", true, NULL, 405, "BMAS-019", "GET, HEAD"},
        {"DELETE", "/aggregates", true, NULL, 405, "BMAS-019", "GET, HEAD"},
        {"GET", "/status", false, NULL, 401, "BMAS-012", NULL},
        {"POST", "/events", false, "{}", 401, "BMAS-012", NULL},
        {"GET", "/status", true, NULL, 200, NULL, NULL},
        {"GET", "/status/", true, NULL, 404, "BMAS-018", NULL},
        {"GET", "/aggregates?group_by=model_id", true, NULL, 200, NULL, NULL},
        {"GET", "/aggregates?group_by=model_id&group_by=source_region", true, NULL, 400, "BMAS-011",
         NULL},
        {"GET", "/aggregates?bogus=1", true, NULL, 400, "BMAS-011", NULL},
        {"GET", "/status", true, "{\"a\":1}", 400, "BMAS-011", NULL},
        {"POST", "/flush", true, "x", 400, "BMAS-011", NULL},
        {"POST", "/events", true, "{not json", 400, "BMAS-005", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct answer a;
        request(f, cases[i].method, cases[i].path, cases[i].auth, cases[i].body, &a);
        if (a.status != cases[i].status)
            fail_msg("%s %s: want %ld, got %ld: %.*s", cases[i].method, cases[i].path,
                     cases[i].status, a.status, (int)a.body.len, a.body.data ? a.body.data : "");
        if (cases[i].code != NULL && strcmp(cases[i].method, "HEAD") != 0)
            expect_code(&a, cases[i].code);
        if (cases[i].allow != NULL)
            assert_string_equal(a.allow, cases[i].allow);
        bm_buf_cleanup(&a.body);
    }
}

static void body_limit(void **state)
{
    const struct fixture *f = *state;
    char big[3000];
    memset(big, ' ', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    struct answer a;
    request(f, "POST", "/events", true, big, &a);
    assert_int_equal(a.status, 413);
    expect_code(&a, "BMAS-010");
    bm_buf_cleanup(&a.body);
    /* The budget is whole again after the refusal. */
    assert_int_equal(atomic_load(&f->s.inflight_bytes), 0);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    bm_log_set_level(BM_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(routing, setup, teardown),
        cmocka_unit_test_setup_teardown(body_limit, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
