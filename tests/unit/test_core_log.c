/* test_core_log.c: the log line is the replaced Lambda's format (docs/logging.md): its field
 * names, the request id taken from a value or from the thread's request context, the trace
 * headers, BMAS-002 written at CRITICAL, LOG_LEVEL=DEBUG naming skipped records (at most 20 per
 * object, then one summary line) and the guides' variables that `bmas ingest` ignores named in
 * one warning. The expected strings are written out here, not taken from log.c. */
#include "tu.h"

#include <unistd.h>

static int log_fd = -1;

static int setup(void **state)
{
    (void)state;
    char path[] = "/tmp/bmas-log-XXXXXX";
    log_fd = mkstemp(path);
    assert_true(log_fd >= 0);
    unlink(path);
    bm_log_set_fd(log_fd);
    bm_log_set_level(BM_INFO);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    bm_log_set_fd(2);
    bm_log_set_level(BM_INFO);
    bm_log_ctx_set(NULL);
    close(log_fd);
    return 0;
}

/* What was written since the last call (bm_malloc'd), the file emptied. */
static char *drain(void)
{
    off_t end = lseek(log_fd, 0, SEEK_END);
    assert_true(end >= 0);
    char *b = bm_malloc((size_t)end + 1);
    assert_non_null(b);
    assert_int_equal(pread(log_fd, b, (size_t)end, 0), end);
    b[end] = '\0';
    assert_int_equal(ftruncate(log_fd, 0), 0);
    lseek(log_fd, 0, SEEK_SET);
    return b;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static void assert_has(const char *line, const char *needle)
{
    if (strstr(line, needle) == NULL)
        fail_msg("%s not in %s", needle, line);
}

static void assert_lacks(const char *line, const char *needle)
{
    if (strstr(line, needle) != NULL)
        fail_msg("%s in %s", needle, line);
}

static void line_has_the_guides_fields(void **state)
{
    (void)state;
    BM_LOG(BM_ERROR, "server", "object_failed", "gone", BM_KV_STR("req_id", "r-1"),
           BM_KV_ERR(BM_E_S3_NOT_FOUND), BM_KV_STR("bucket", "b"), BM_KV_STR("key", "k"),
           BM_KV_STR("absent", NULL));
    char *l = drain();
    assert_int_equal(strncmp(l, "{\"timestamp\":\"", 14), 0);
    assert_has(l, "\",\"level\":\"ERROR\",\"requestId\":\"r-1\",\"component\":\"server\","
                  "\"event\":\"object_failed\",\"message\":\"gone\"");
    assert_has(l, ",\"errorCode\":\"BMAS-001\",\"error\":\"S3 object not found\"");
    assert_has(l, ",\"bucket\":\"b\",\"key\":\"k\"}\n");
    const char *old[] = {"\"ts\"", "\"module\"", "\"msg\"", "\"code\"", "\"req_id\"", "absent"};
    for (size_t i = 0; i < sizeof old / sizeof old[0]; i++)
        assert_lacks(l, old[i]);
    assert_int_equal(count(l, "requestId"), 1);
    bm_free(l);
    /* A value named requestId is the same field, written once. */
    BM_LOG(BM_INFO, "server", "x", "m", BM_KV_STR("requestId", "r-2"));
    l = drain();
    assert_int_equal(count(l, "requestId"), 1);
    assert_has(l, "\"requestId\":\"r-2\"");
    bm_free(l);
}

static void access_denied_is_critical(void **state)
{
    (void)state;
    BM_LOG(BM_WARN, "server", "object_failed", "denied", BM_KV_ERR(BM_E_S3_DENIED));
    char *l = drain();
    assert_has(l, "\"level\":\"CRITICAL\"");
    bm_free(l);
    /* Even when only CRITICAL lines are wanted, the WARN call site's BMAS-002 line is written. */
    bm_log_set_level(BM_CRITICAL);
    BM_LOG(BM_WARN, "server", "object_failed", "denied", BM_KV_ERR(BM_E_S3_DENIED));
    BM_LOG(BM_ERROR, "server", "object_failed", "gone", BM_KV_ERR(BM_E_S3_NOT_FOUND));
    l = drain();
    assert_int_equal(count(l, "\n"), 1);
    assert_has(l, "\"level\":\"CRITICAL\"");
    assert_has(l, "BMAS-002");
    bm_free(l);
    /* A skipped record's DEBUG line stays DEBUG whatever its code. */
    bm_log_set_level(BM_DEBUG);
    BM_LOG(BM_DEBUG, "core", "record_skipped", "x", BM_KV_ERR(BM_E_S3_DENIED));
    l = drain();
    assert_has(l, "\"level\":\"DEBUG\"");
    bm_free(l);
    enum bm_log_level lvl;
    assert_true(bm_log_level_parse("critical", &lvl));
    assert_int_equal(lvl, BM_CRITICAL);
}

static void request_context_and_trace(void **state)
{
    (void)state;
    const char *tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const char *amzn = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1";
    struct bm_log_ctx c = {.request_id = "q-7", .traceparent = tp, .amzn_trace_id = amzn};
    bm_log_ctx_set(&c);
    BM_LOG(BM_INFO, "core", "cloudwatch_retry", "again");
    char *l = drain();
    assert_has(l, "\"requestId\":\"q-7\"");
    assert_has(l, "\"traceparent\":\"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\"");
    assert_has(l, "\"amznTraceId\":\"Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1\"");
    bm_free(l);
    /* The line's own id wins over the context's. */
    BM_LOG(BM_INFO, "server", "x", "m", BM_KV_STR("req_id", "own"));
    l = drain();
    assert_has(l, "\"requestId\":\"own\"");
    assert_int_equal(count(l, "requestId"), 1);
    bm_free(l);
    assert_string_equal(bm_log_ctx_get().request_id, "q-7");
    bm_log_ctx_set(NULL);
    assert_null(bm_log_ctx_get().request_id);
    BM_LOG(BM_INFO, "server", "x", "m");
    l = drain();
    assert_lacks(l, "requestId");
    assert_lacks(l, "trace");
    bm_free(l);
    assert_true(bm_log_trace_ok(tp));
    assert_true(bm_log_trace_ok(amzn));
    assert_false(bm_log_trace_ok(""));
    assert_false(bm_log_trace_ok("a\"b"));
    assert_false(bm_log_trace_ok("a\\b"));
    assert_false(bm_log_trace_ok("a\nb"));
    char big[BM_TRACE_MAX + 2];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_false(bm_log_trace_ok(big));
    big[BM_TRACE_MAX] = '\0';
    assert_true(bm_log_trace_ok(big));
}

static struct bm_ingest *ingest_bad_lines(int bad, int good)
{
    struct bm_ingest_opts o = {
        .max_line_bytes = 1 << 20,
        .max_object_bytes = 1ULL << 32,
        .bucket_seconds = 60,
        .max_series = 1000,
        .cls = {.cross_region = true, .global_cross_region = true},
    };
    struct bm_ingest *in = bm_ingest_new(&o, "AWSLogs/1/BedrockModelInvocationLogs/us-east-1/x");
    assert_non_null(in);
    bm_ingest_set_bucket(in, "logs");
    const char *ok =
        "{\"timestamp\":\"2026-04-20T00:00:01Z\",\"modelId\":\"amazon.nova-lite-v1:0\","
        "\"input\":{\"inputTokenCount\":1},\"output\":{\"outputTokenCount\":2}}\n";
    assert_int_equal(bm_ingest_feed(in, ok, strlen(ok)), BM_OK);
    for (int i = 0; i < bad; i++)
        assert_int_equal(bm_ingest_feed(in, "{not json\n", 10), BM_OK);
    for (int i = 1; i < good; i++)
        assert_int_equal(bm_ingest_feed(in, ok, strlen(ok)), BM_OK);
    assert_int_equal(bm_ingest_finish(in), BM_OK);
    return in;
}

static void debug_names_skipped_records(void **state)
{
    (void)state;
    /* At INFO nothing per record. */
    bm_ingest_free(ingest_bad_lines(3, 1));
    char *l = drain();
    assert_string_equal(l, "");
    bm_free(l);
    bm_log_set_level(BM_DEBUG);
    struct bm_ingest *in = ingest_bad_lines(3, 2);
    assert_int_equal(bm_ingest_stats(in)->invalid, 3);
    bm_ingest_free(in);
    l = drain();
    assert_int_equal(count(l, "\"event\":\"record_skipped\""), 3);
    assert_has(l,
               "\"bucket\":\"logs\",\"key\":\"AWSLogs/1/BedrockModelInvocationLogs/us-east-1/x\","
               "\"record\":2,\"errorCode\":\"BMAS-003\"");
    assert_has(l, "\"record\":4,");
    assert_lacks(l, "records_skipped_more");
    bm_free(l);
    /* Past 20: the first 20 by number, then one line with the rest. */
    bm_ingest_free(ingest_bad_lines(25, 1));
    l = drain();
    assert_int_equal(count(l, "\"event\":\"record_skipped\""), 20);
    assert_has(l, "\"record\":21,");
    assert_lacks(l, "\"record\":22,");
    assert_int_equal(count(l, "\"event\":\"records_skipped_more\""), 1);
    assert_has(l, "\"logged\":20,\"notLogged\":5");
    bm_free(l);
}

static const char *guide_env(const char *name)
{
    if (strcmp(name, "BATCH_SIZE") == 0 || strcmp(name, "ENABLE_TRACE") == 0 ||
        strcmp(name, "LOG_LEVEL") == 0)
        return "x";
    return NULL;
}

static void guide_variables_never_ignored_silently(void **state)
{
    (void)state;
    assert_int_equal(bm_config_warn_unused(guide_env, true), 0);
    char *l = drain();
    assert_string_equal(l, "");
    bm_free(l);
    assert_int_equal(bm_config_warn_unused(guide_env, false), 2);
    l = drain();
    assert_int_equal(count(l, "\n"), 1);
    assert_has(l, "\"level\":\"WARN\"");
    assert_has(l, "\"variables\":\"BATCH_SIZE,ENABLE_TRACE\"");
    assert_lacks(l, "LOG_LEVEL");
    bm_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(line_has_the_guides_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(access_denied_is_critical, setup, teardown),
        cmocka_unit_test_setup_teardown(request_context_and_trace, setup, teardown),
        cmocka_unit_test_setup_teardown(debug_names_skipped_records, setup, teardown),
        cmocka_unit_test_setup_teardown(guide_variables_never_ignored_silently, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
