/* Unit tests for fault rules (emulator/faults.c): filters, counts, rates with a fixed seed,
 * latency-only rules, bad rule bodies; and the generated UUIDs and request counters. */
#include "tu.h"

#include "emulator/emu_int.h"

static struct bm_emu *new_emu(uint64_t seed)
{
    struct bm_emu_opts o;
    struct bm_emu *emu = NULL;
    bm_emu_opts_init(&o);
    o.listen = "127.0.0.1:0";
    o.seed = seed;
    assert_int_equal(bm_emu_new(&o, &emu, NULL), BM_OK);
    return emu;
}

static void add(struct bm_emu *emu, const char *rule)
{
    uint64_t id = 0;
    struct bm_errmsg em;
    assert_int_equal(bm__emu_faults_add(emu, rule, strlen(rule), &id, &em), BM_OK);
    assert_true(id > 0);
}

static void test_count_and_filters(void **state)
{
    (void)state;
    struct bm_emu *emu = new_emu(1);
    struct emu_awserr err;
    add(emu, "{\"service\":\"s3\",\"operation\":\"GetObject\",\"status\":503,\"code\":\"SlowDown\","
             "\"count\":2}");
    assert_int_equal(bm__emu_faults_match(emu, "s3", "PutObject", &err), 0);
    assert_int_equal(err.status, 0);
    assert_int_equal(bm__emu_faults_match(emu, "sqs", "GetObject", &err), 0);
    assert_int_equal(err.status, 0);
    for (int i = 0; i < 2; i++) {
        bm__emu_faults_match(emu, "s3", "GetObject", &err);
        assert_int_equal(err.status, 503);
        assert_string_equal(err.code, "SlowDown");
    }
    bm__emu_faults_match(emu, "s3", "GetObject", &err);
    assert_int_equal(err.status, 0); /* used up and removed */
    assert_int_equal(emu->n_faults, 0);

    /* Latency-only rules add up and inject no error; "monitoring" means CloudWatch. */
    add(emu, "{\"latency_ms\":200}");
    add(emu, "{\"service\":\"monitoring\",\"latency_ms\":50}");
    assert_int_equal(bm__emu_faults_match(emu, "cloudwatch", "ListMetrics", &err), 250);
    assert_int_equal(err.status, 0);
    assert_int_equal(bm__emu_faults_match(emu, "s3", "GetObject", &err), 200);
    /* A status without a code gets AWS's code for it. */
    bm__emu_faults_clear(emu);
    add(emu, "{\"service\":\"s3\",\"status\":503}");
    bm__emu_faults_match(emu, "s3", "PutObject", &err);
    assert_string_equal(err.code, "SlowDown");
    struct bm_buf b;
    bm_buf_init(&b, 4096);
    assert_int_equal(bm__emu_faults_json(emu, &b), BM_OK);
    assert_non_null(strstr(b.data, "\"status\":503,\"count\":-1,\"rate\":1,\"latency_ms\":0,"
                                   "\"hits\":1,\"service\":\"s3\",\"code\":\"SlowDown\""));
    bm_buf_cleanup(&b);
    bm_emu_free(emu);
}

static int failures(uint64_t seed, double rate, int n)
{
    struct bm_emu *emu = new_emu(seed);
    char rule[128];
    snprintf(rule, sizeof rule,
             "{\"service\":\"cloudwatch\",\"rate\":%g,\"status\":400,"
             "\"code\":\"Throttling\"}",
             rate);
    add(emu, rule);
    int f = 0;
    for (int i = 0; i < n; i++) {
        struct emu_awserr err;
        bm__emu_faults_match(emu, "cloudwatch", "PutMetricData", &err);
        f += err.status == 400;
    }
    bm_emu_free(emu);
    return f;
}

static void test_rates(void **state)
{
    (void)state;
    assert_int_equal(failures(7, 0, 1000), 0);
    assert_int_equal(failures(7, 1, 1000), 1000);
    int a = failures(7, 0.2, 10000);
    assert_int_equal(a, failures(7, 0.2, 10000)); /* the same seed, the same sequence */
    assert_true(a > 1800 && a < 2200);
}

static void test_bad_rules(void **state)
{
    (void)state;
    struct bm_emu *emu = new_emu(1);
    static const char *const bad[] = {
        "",
        "[]",
        "{}",
        "{\"status\":200}",
        "{\"status\":503,\"rate\":1.5}",
        "{\"service\":\"ec2\",\"status\":503}",
        "{\"status\":503,\"count\":0}",
        "{\"code\":7}",
        "{\"latency_ms\":-1}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t id = 0;
        struct bm_errmsg em = {{0}};
        assert_int_equal(bm__emu_faults_add(emu, bad[i], strlen(bad[i]), &id, &em),
                         BM_E_BAD_REQUEST);
        assert_true(em.text[0] != '\0');
    }
    assert_int_equal(emu->n_faults, 0);
    bm_emu_free(emu);
}

static void test_uuid_and_counters(void **state)
{
    (void)state;
    struct bm_emu *emu = new_emu(3);
    char a[37], b[37];
    bm__emu_uuid(emu, a);
    bm__emu_uuid(emu, b);
    assert_int_equal(strlen(a), 36);
    assert_true(a[8] == '-' && a[13] == '-' && a[14] == '4' && a[18] == '-' && a[23] == '-');
    assert_true(strchr("89ab", a[19]) != NULL);
    assert_string_not_equal(a, b);
    bm__emu_count(emu, "s3", "GetObject", true, true);
    bm__emu_count(emu, "s3", "GetObject", false, false);
    bm__emu_count(emu, "sqs", "SendMessage", false, false);
    struct bm_buf j;
    bm_buf_init(&j, 4096);
    assert_int_equal(bm__emu_counters_json(emu, "s3", &j), BM_OK);
    assert_string_equal(j.data, "{\"requests\":[{\"service\":\"s3\",\"operation\":\"GetObject\","
                                "\"count\":2,\"faulted\":1,\"errors\":1}]}");
    bm__emu_counters_reset(emu);
    bm_buf_reset(&j);
    assert_int_equal(bm__emu_counters_json(emu, NULL, &j), BM_OK);
    assert_string_equal(j.data, "{\"requests\":[]}");
    bm_buf_cleanup(&j);
    bm_emu_free(emu);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_count_and_filters),
        cmocka_unit_test(test_rates),
        cmocka_unit_test(test_bad_rules),
        cmocka_unit_test(test_uuid_and_counters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
