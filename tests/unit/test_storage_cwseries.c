/* Unit tests for storage/cw_series.c: the CloudWatch series behind BMAS_MAX_SERIES and the
 * budget: an hour of the month counted once per series however often it is published in it,
 * the month's hours starting over in a new month, held-back series counted apart (distinct and
 * times), the 24-hour window, the per-set counts, and rows forgotten after 40 days. */
#include "test_storage_tu.h"

#define MONTH 1796083200LL      /* 2026-12-01T00:00:00Z */
#define NEXT_MONTH 1798761600LL /* 2027-01-01T00:00:00Z */
#define T0 (MONTH + 10 * 3600 + 300)

static struct bm_db_cw_series ser(const char *set, const char *a, const char *b)
{
    struct bm_db_cw_series s = {.set = set};
    s.v[0] = (struct bm_str){a, strlen(a)};
    s.v[1] = (struct bm_str){b, strlen(b)};
    for (int i = 2; i < BM_DIMSET_MAX_DIMS; i++)
        s.v[i] = (struct bm_str){"", 0};
    return s;
}

static void record(struct bm_db *db, struct bm_db_cw_series s, bool held, int64_t now,
                   int64_t month)
{
    struct bm_errmsg em = {{0}};
    assert_int_equal(bm_db_cw_series_record(db, &s, 1, held, now, month, &em), BM_OK);
}

struct sets {
    char text[512];
};

static void set_line(void *ctx, const char *set, uint64_t published, uint64_t held)
{
    struct sets *s = ctx;
    size_t n = strlen(s->text);
    snprintf(s->text + n, sizeof s->text - n, "%s=%llu/%llu;", set, (unsigned long long)published,
             (unsigned long long)held);
}

static struct bm_db_cw_budget budget(struct bm_db *db, int64_t since, int64_t month,
                                     struct sets *sets)
{
    struct bm_errmsg em = {{0}};
    struct bm_db_cw_budget b;
    if (sets != NULL)
        sets->text[0] = '\0';
    assert_int_equal(bm_db_cw_budget(db, since, month, sets ? set_line : NULL, sets, &b, &em),
                     BM_OK);
    return b;
}

static bm_err list_one(void *ctx, const struct bm_db_cw_series *s, bool published)
{
    struct sets *l = ctx;
    size_t n = strlen(l->text);
    snprintf(l->text + n, sizeof l->text - n, "%s|%.*s|%.*s|%d;", s->set, (int)s->v[0].len,
             s->v[0].p, (int)s->v[1].len, s->v[1].p, published);
    return BM_OK;
}

static const char *recent(struct bm_db *db, int64_t since, struct sets *l)
{
    struct bm_errmsg em = {{0}};
    l->text[0] = '\0';
    assert_int_equal(bm_db_cw_series_recent(db, since, list_one, l, &em), BM_OK);
    return l->text;
}

static void test_hours_and_held(void **state)
{
    (void)state;
    struct tdb t;
    tdb_init(&t);
    struct bm_db *db = tdb_open(&t);
    struct sets s;
    record(db, ser("InferenceProfileType", "OnDemand", ""), false, T0, MONTH);
    record(db, ser("InferenceProfileType,ModelId", "OnDemand", "m1"), false, T0, MONTH);
    /* The same hour again: no new hour. */
    record(db, ser("InferenceProfileType", "OnDemand", ""), false, T0 + 600, MONTH);
    struct bm_db_cw_budget b = budget(db, T0 - 86400, MONTH, &s);
    assert_int_equal(b.series, 2);
    assert_int_equal(b.series_hours, 2);
    assert_int_equal(b.held, 0);
    /* The next hour: one more hour for that series. */
    record(db, ser("InferenceProfileType", "OnDemand", ""), false, T0 + 3600, MONTH);
    b = budget(db, T0 - 86400, MONTH, &s);
    assert_int_equal(b.series_hours, 3);
    /* Held back twice: one series, counted twice; a held series is not published. */
    record(db, ser("InferenceProfileType,ModelId", "OnDemand", "m2"), true, T0 + 3600, MONTH);
    record(db, ser("InferenceProfileType,ModelId", "OnDemand", "m2"), true, T0 + 7200, MONTH);
    b = budget(db, T0 - 86400, MONTH, &s);
    assert_int_equal(b.series, 2);
    assert_int_equal(b.held, 1);
    assert_int_equal(b.held_back_total, 2);
    assert_int_equal(b.series_hours, 3);
    assert_string_equal(s.text, "InferenceProfileType=1/0;InferenceProfileType,ModelId=1/1;");
    assert_string_equal(recent(db, T0 - 86400, &s), "InferenceProfileType|OnDemand||1;"
                                                    "InferenceProfileType,ModelId|OnDemand|m1|1;"
                                                    "InferenceProfileType,ModelId|OnDemand|m2|0;");
    /* Published later, the held series counts as published, no longer as held. */
    record(db, ser("InferenceProfileType,ModelId", "OnDemand", "m2"), false, T0 + 7200, MONTH);
    b = budget(db, T0 - 86400, MONTH, &s);
    assert_int_equal(b.series, 3);
    assert_int_equal(b.held, 0);
    assert_int_equal(b.held_back_total, 2);
    assert_int_equal(b.series_hours, 4);
    /* The 24-hour window: a day after the last publication, nothing is recent. */
    b = budget(db, T0 + 7200 + 1, MONTH, NULL);
    assert_int_equal(b.series, 0);
    assert_string_equal(recent(db, T0 + 7200 + 1, &s), "");
    /* A new month: the series published in it starts its hours over; the old month keeps the
     * hours of the series not published since. */
    record(db, ser("InferenceProfileType", "OnDemand", ""), false, NEXT_MONTH + 60, NEXT_MONTH);
    assert_int_equal(budget(db, NEXT_MONTH - 86400, NEXT_MONTH, NULL).series_hours, 1);
    assert_int_equal(budget(db, T0 - 86400, MONTH, NULL).series_hours, 2);
    /* 40 days without publication or hold: forgotten when the next record is written. */
    record(db, ser("()", "", ""), false, T0 + 7200 + 40 * 86400 + 1, NEXT_MONTH);
    assert_string_equal(recent(db, 1, &s), "()|||1;InferenceProfileType|OnDemand||1;");
    bm_db_close(db);
    tdb_cleanup(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hours_and_held),
    };
    if (tu_is_pg())
        return cmocka_run_group_tests_name("postgresql", tests, NULL, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
