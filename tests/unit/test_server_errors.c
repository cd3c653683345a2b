/* test_server_errors.c: every wire code walked through every place that names it: the error
 * body of an HTTP answer (valid JSON whatever the message holds), the log line, the /status
 * error counters and the `bmas ingest` report. The expected code strings come from the
 * README-documented pattern and the wire list, never from the function under test alone: a
 * code must be reachable from some bm_err, print the same everywhere, and parse back. */
#include "test_storage_tu.h"

#include "server/srv_int.h"
#include "storage/bm_storage.h"

#include <cjson/cJSON.h>
#include <regex.h>
#include <unistd.h>

static bool wire_shape_ok(const char *w)
{
    regex_t re;
    assert_int_equal(regcomp(&re, "^BMAS-0[0-9][0-9]$", REG_EXTENDED | REG_NOSUB), 0);
    bool ok = w != NULL && regexec(&re, w, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

/* Every wire code is distinct, well formed, titled, and some bm_err maps to it. */
static void wire_list_is_whole(void **state)
{
    (void)state;
    bool reached[BM_ERR_WIRE_N] = {false};
    for (int i = 0; i < BM_ERR_WIRE_N; i++) {
        const char *w = bm_err_wire_at(i);
        assert_true(wire_shape_ok(w));
        assert_non_null(bm_err_wire_title(i));
        assert_true(strlen(bm_err_wire_title(i)) > 3);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(w, bm_err_wire_at(j));
    }
    assert_null(bm_err_wire_at(BM_ERR_WIRE_N));
    assert_null(bm_err_wire_at(-1));
    for (int e = 1; e < BM_E__COUNT; e++) {
        int idx = bm_err_wire_index((bm_err)e);
        assert_in_range(idx, 0, BM_ERR_WIRE_N - 1);
        assert_string_equal(bm_err_wire((bm_err)e), bm_err_wire_at(idx));
        reached[idx] = true;
    }
    for (int i = 0; i < BM_ERR_WIRE_N; i++)
        if (!reached[i])
            fail_msg("%s is in the wire list but no bm_err maps to it", bm_err_wire_at(i));
}

/* A message that has broken JSON bodies before: quotes, backslashes, control bytes, invalid
 * UTF-8, and 20 KiB of it. */
static char *hostile_message(void)
{
    size_t n = 20 * 1024;
    char *m = bm_malloc(n + 1);
    assert_non_null(m);
    static const char bits[] = "\"\\\n\t\x01\xff\xc3(<>&\x7f key\":,";
    for (size_t i = 0; i < n; i++)
        m[i] = bits[i % (sizeof bits - 1)];
    m[n] = '\0';
    return m;
}

static void error_bodies_name_the_code(void **state)
{
    (void)state;
    char *msg = hostile_message();
    for (int e = 1; e < BM_E__COUNT; e++) {
        struct bm__reply r = {0};
        bm_buf_init(&r.body, (size_t)1 << 20);
        bm__reply_error(&r, (bm_err)e, msg, NULL);
        assert_int_equal(r.status, bm_err_http((bm_err)e));
        assert_true(r.status >= 400 && r.status <= 599);
        cJSON *j = cJSON_ParseWithLength(r.body.data, r.body.len);
        if (j == NULL)
            fail_msg("error body for %s is not JSON", bm_err_wire((bm_err)e));
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(j, "errorCode");
        assert_true(cJSON_IsString(code));
        assert_string_equal(code->valuestring, bm_err_wire((bm_err)e));
        assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(j, "message")));
        cJSON_Delete(j);
        bm_buf_cleanup(&r.body);
    }
    bm_free(msg);
}

/* The two tables agree on what a sender that reads only the status does (EventBridge API
 * destinations retry 429 and 5xx and nothing else of 1xx-4xx): a code says how long to wait
 * exactly when its status is one of those, and a code whose retry flag says a retry can help
 * has such a status. The poison and transient codes named here are the ones POST /events
 * answers most. */
static void statuses_say_whether_to_retry(void **state)
{
    (void)state;
    for (int e = 1; e < BM_E__COUNT; e++) {
        int st = bm_err_http((bm_err)e);
        bool retried = st == 429 || st >= 500;
        if (retried != (bm__retry_after_s((bm_err)e) > 0))
            fail_msg("%s (%s): status %d but Retry-After %d", bm_err_wire((bm_err)e),
                     bm_err_str((bm_err)e), st, bm__retry_after_s((bm_err)e));
        if (bm_err_retry((bm_err)e) && !retried)
            fail_msg("%s says a retry helps but answers %d", bm_err_str((bm_err)e), st);
    }
    static const bm_err poison[] = {BM_E_MSG_PARSE,  BM_E_S3_NOT_FOUND, BM_E_S3_DENIED,
                                    BM_E_LOG_FORMAT, BM_E_GZIP,         BM_E_QUARANTINED,
                                    BM_E_TOO_LARGE};
    static const bm_err transient[] = {BM_E_UPSTREAM, BM_E_STORAGE_BUSY, BM_E_STORAGE,
                                       BM_E_NO_CREDENTIALS, BM_E_NOMEM};
    for (size_t i = 0; i < sizeof poison / sizeof poison[0]; i++) {
        assert_in_range(bm_err_http(poison[i]), 400, 428);
        assert_int_equal(bm__retry_after_s(poison[i]), 0);
    }
    for (size_t i = 0; i < sizeof transient / sizeof transient[0]; i++) {
        assert_in_range(bm_err_http(transient[i]), 500, 599);
        assert_in_range(bm__retry_after_s(transient[i]), 1, 60);
    }
}

/* Reads what was written to fd since offset 0 and truncates it. */
static char *drain(int fd)
{
    off_t end = lseek(fd, 0, SEEK_END);
    assert_true(end >= 0);
    char *b = bm_malloc((size_t)end + 1);
    assert_non_null(b);
    assert_int_equal(pread(fd, b, (size_t)end, 0), end);
    b[end] = '\0';
    assert_int_equal(ftruncate(fd, 0), 0);
    lseek(fd, 0, SEEK_SET);
    return b;
}

static void log_lines_name_the_code(void **state)
{
    (void)state;
    char path[] = "/tmp/bmas-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    bm_log_set_fd(fd);
    bm_log_set_level(BM_INFO);
    char *msg = hostile_message();
    for (int e = 1; e < BM_E__COUNT; e++) {
        BM_LOG(BM_ERROR, "test", "walk", msg, BM_KV_ERR((bm_err)e), BM_KV_STR("key", msg));
        char *line = drain(fd);
        size_t len = strlen(line);
        assert_true(len > 0 && line[len - 1] == '\n');
        assert_null(memchr(line, '\n', len - 1)); /* one line */
        assert_true(len < 16 * 1024);             /* long values cut, not the line dropped */
        cJSON *j = cJSON_Parse(line);
        if (j == NULL)
            fail_msg("log line for %s is not JSON", bm_err_wire((bm_err)e));
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(j, "errorCode");
        assert_true(cJSON_IsString(code));
        assert_string_equal(code->valuestring, bm_err_wire((bm_err)e));
        cJSON_Delete(j);
        bm_free(line);
    }
    bm_free(msg);
    bm_log_set_fd(2);
    close(fd);
}

static const char *no_env(const char *name)
{
    (void)name;
    return NULL;
}

/* /status: counter i set to i + 1 comes back under wire code i, and no other key appears. */
static void status_counts_every_code(void **state)
{
    (void)state;
    struct tdb t;
    tdb_init(&t);
    struct bm_config cfg = {0};
    struct bm_errmsg em;
    assert_int_equal(bm_config_load(&cfg, no_env, &em), BM_OK);
    struct bm_srv s = {.cfg = &cfg};
    s.db = tdb_open(&t);
    for (int i = 0; i < BM_ERR_WIRE_N; i++)
        bm_db_count(s.db, (enum bm_db_counter)(BM_DB_C_ERRORS + i), (uint64_t)i + 1);
    struct bm__reply r = {0};
    bm_buf_init(&r.body, (size_t)1 << 20);
    bm__route_status(&s, &r);
    assert_int_equal(r.status, 200);
    cJSON *j = cJSON_ParseWithLength(r.body.data, r.body.len);
    assert_non_null(j);
    const cJSON *errs = cJSON_GetObjectItemCaseSensitive(j, "errors");
    assert_true(cJSON_IsObject(errs));
    assert_int_equal(cJSON_GetArraySize(errs), BM_ERR_WIRE_N);
    for (int i = 0; i < BM_ERR_WIRE_N; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(errs, bm_err_wire_at(i));
        if (!cJSON_IsNumber(v))
            fail_msg("/status has no counter for %s", bm_err_wire_at(i));
        assert_int_equal((int)v->valuedouble, i + 1);
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, errs) assert_true(wire_shape_ok(e->string));
    cJSON_Delete(j);
    bm_buf_cleanup(&r.body);
    bm_db_close(s.db);
    bm_config_cleanup(&cfg);
    tdb_cleanup(&t);
}

/* `bmas ingest`: a source failing with each code prints that code, and the summary counts
 * every one once. */
static void ingest_report_names_every_code(void **state)
{
    (void)state;
    char *out = NULL, *sum = NULL;
    size_t outn = 0, sumn = 0;
    struct bm__ingest_run r = {0};
    pthread_mutex_init(&r.mu, NULL);
    r.err = open_memstream(&out, &outn);
    assert_non_null(r.err);
    for (int e = 1; e < BM_E__COUNT; e++) {
        struct bm_errmsg em;
        bm_errmsg_set(&em, (bm_err)e, "walk %d", e);
        assert_int_equal(bm__ingest_account(&r, "src", NULL, (bm_err)e, &em), (bm_err)e);
    }
    fclose(r.err);
    for (int e = 1; e < BM_E__COUNT; e++) {
        char want[64];
        snprintf(want, sizeof want, "src: %s ", bm_err_wire((bm_err)e));
        if (strstr(out, want) == NULL)
            fail_msg("ingest printed no line naming %s", bm_err_wire((bm_err)e));
    }
    FILE *f = open_memstream(&sum, &sumn);
    bm__ingest_summary(&r, f);
    fclose(f);
    for (int i = 0; i < BM_ERR_WIRE_N; i++) {
        unsigned want = 0;
        for (int e = 1; e < BM_E__COUNT; e++)
            want += bm_err_wire_index((bm_err)e) == i;
        char needle[48];
        snprintf(needle, sizeof needle, "%s x%u", bm_err_wire_at(i), want);
        if (strstr(sum, needle) == NULL)
            fail_msg("summary lacks \"%s\": %s", needle, sum);
    }
    free(out);
    free(sum);
    pthread_mutex_destroy(&r.mu);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(wire_list_is_whole),
        cmocka_unit_test(error_bodies_name_the_code),
        cmocka_unit_test(statuses_say_whether_to_retry),
        cmocka_unit_test(log_lines_name_the_code),
        cmocka_unit_test(status_counts_every_code),
        cmocka_unit_test(ingest_report_names_every_code),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
