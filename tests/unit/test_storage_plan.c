/* Query plans (query_plan.c) against a model of the stored tables: for random ranges, prune
 * cutoffs and unfinished prunes, the signed parts of every plan must sum to exactly the stored
 * minute rows in the range, never read a rollup row the prune left stale, and subtract only
 * when allowed; the plan shapes of typical dashboard queries stay small. */
#include "test_storage_tu.h"

#define STEP 30                   /* minute-table buckets every 30 s: parts must not assume 60 */
#define NB (4 * 24 * 3600 / STEP) /* four days of buckets from TU_T0 */
#define DAY 86400
#define HOUR 3600

/* The model: a value per bucket; which minute rows are still stored; the rollup rows, each the
 * sum over its unit of every bucket ever committed (so a unit the cutoff cuts is stale). */
struct model {
    int64_t clamp;
    bool unfinished; /* the prune has yet to delete some rows before the cutoff */
    bool stored[NB];
};

static int64_t val(int b)
{
    uint64_t s = (uint64_t)b * 0x9E3779B97F4A7C15ULL + 7;
    return (int64_t)(tu_rng(&s) % 1000) + 1;
}

static int64_t bucket_at(int b)
{
    return TU_T0 + (int64_t)b * STEP;
}

/* Sum over table t's stored rows with lo <= bucket < hi. */
static int64_t read_part(const struct model *m, const struct bm__qpart *p)
{
    static const int64_t w[3] = {0, HOUR, DAY};
    int64_t sum = 0;
    for (int b = 0; b < NB; b++) {
        int64_t t = bucket_at(b);
        if (p->t == BM__QT_MINUTE || p->t == BM__QT_ALL) {
            if (m->stored[b] && (p->t == BM__QT_ALL || (t >= p->lo && t < p->hi)))
                sum += val(b);
            continue;
        }
        /* A rollup row lives at its unit's start; the prune deletes it once the whole unit is
         * before the cutoff (a unit straddling the cutoff keeps its full, stale sum), and an
         * unfinished prune may not have reached it yet. */
        int64_t u = t - (t - TU_T0) % w[p->t];
        bool kept = m->clamp == INT64_MIN || u + w[p->t] > m->clamp || m->unfinished;
        if (kept && u >= p->lo && u < p->hi)
            sum += val(b);
    }
    return sum;
}

static void check(const struct model *m, int64_t lo, int64_t hi, bool by_minute, bool sums)
{
    int first = -1, last = -1;
    for (int b = 0; b < NB; b++)
        if (m->stored[b]) {
            first = first < 0 ? b : first;
            last = b;
        }
    struct bm__qplan_in in = {
        .lo = lo,
        .hi = hi,
        .clamp = m->clamp,
        .first = first < 0 ? INT64_MAX : bucket_at(first),
        .last = first < 0 ? INT64_MIN : bucket_at(last),
        .by_minute = by_minute,
        .may_subtract = sums,
    };
    struct bm__qplan p;
    bm__qplan_make(&in, &p);
    int64_t want = 0, got = 0;
    int64_t from = lo > m->clamp ? lo : m->clamp;
    for (int b = 0; b < NB; b++)
        if (m->stored[b] && bucket_at(b) >= from && bucket_at(b) < hi)
            want += val(b);
    assert_true(p.n < BM__QPLAN_MAX);
    for (int i = 0; i < p.n; i++) {
        assert_true(p.p[i].sign == 1 || (sums && p.p[i].sign == -1));
        assert_true(!by_minute || p.p[i].t == BM__QT_MINUTE);
        got += p.p[i].sign * read_part(m, &p.p[i]);
    }
    if (got != want)
        fail_msg("range [%lld, %lld) clamp %lld sums %d: %lld, want %lld", (long long)lo,
                 (long long)hi, (long long)m->clamp, sums, (long long)got, (long long)want);
}

/* Random ranges over the model, open or not, some unit-aligned, under several prune states. */
static void test_plans_are_exact(void **state)
{
    (void)state;
    uint64_t seed = 12345;
    static struct model m;
    for (int round = 0; round < 40; round++) {
        /* Round 0: never pruned. Others: a random cutoff; in odd rounds the prune is
         * unfinished, some minute rows before the cutoff still stored. */
        m.clamp = round == 0 ? INT64_MIN : TU_T0 + (int64_t)(tu_rng(&seed) % (3 * DAY));
        if (round % 5 == 2)
            m.clamp -= (m.clamp - TU_T0) % HOUR; /* on an hour */
        m.unfinished = round % 2 == 1;
        for (int b = 0; b < NB; b++)
            m.stored[b] = bucket_at(b) >= m.clamp || (m.unfinished && tu_rng(&seed) % 3 == 0);
        for (int k = 0; k < 150; k++) {
            int64_t ends[2];
            for (int j = 0; j < 2; j++) {
                uint64_t r = tu_rng(&seed);
                int64_t t = TU_T0 - DAY / 2 + (int64_t)(r % (5 * DAY));
                if (r % 7 == 0)
                    t -= (t - TU_T0) % HOUR;
                else if (r % 7 == 1)
                    t -= (t - TU_T0) % DAY;
                else if (r % 7 == 2)
                    t = j == 0 ? INT64_MIN : INT64_MAX;
                ends[j] = t;
            }
            for (int v = 0; v < 4; v++)
                check(&m, ends[0], ends[1], v == 3, v != 1);
        }
    }
}

/* Plan shapes: all time is one read of the all-time table while nothing is pruned, a range
 * of almost all the data is that minus its outside, and min/max plans never subtract. */
static void test_plan_shapes(void **state)
{
    (void)state;
    struct bm__qplan_in in = {
        .lo = INT64_MIN,
        .hi = INT64_MAX,
        .clamp = INT64_MIN,
        .first = TU_T0,
        .last = TU_T0 + 30 * DAY - 60,
        .may_subtract = true,
    };
    struct bm__qplan p;
    bm__qplan_make(&in, &p);
    assert_int_equal(p.n, 1);
    assert_int_equal(p.p[0].t, BM__QT_ALL);
    /* The benchmark's ragged 30 days: no part reads many units. */
    in.lo = TU_T0 + 1234;
    in.hi = TU_T0 + 30 * DAY - 4321;
    bm__qplan_make(&in, &p);
    assert_int_equal(p.p[0].t, BM__QT_ALL);
    assert_true(p.cost < 100);
    /* The last day, ragged by half an hour: a day minus an hour, not 23 hours. */
    in.lo = TU_T0 + 29 * DAY - 1800;
    in.hi = TU_T0 + 30 * DAY - 1800;
    bm__qplan_make(&in, &p);
    int hours = 0;
    for (int i = 0; i < p.n; i++)
        hours += p.p[i].t == BM__QT_HOUR ? (int)((p.p[i].hi - p.p[i].lo) / HOUR) : 0;
    assert_true(hours <= 2);
    in.may_subtract = false;
    bm__qplan_make(&in, &p);
    for (int i = 0; i < p.n; i++)
        assert_int_equal(p.p[i].sign, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plans_are_exact),
        cmocka_unit_test(test_plan_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
