/* query_plan.c: how GET /aggregates reads a time range. The range is cut into parts, each read
 * from the coarsest table that answers it exactly (minute rows, hourly, daily, all-time), and
 * for sums a part may also be subtracted: a nearly whole hour is that hour minus a few minutes,
 * and a range holding most of the data is everything minus what lies outside it. Pure
 * arithmetic over bucket starts; query.c runs the parts. */
#include "storage/storage_int.h"

/* Unit widths in seconds of the bucketed tables. A minute-table part may hold buckets of any
 * width (BMAS_BUCKET_SECONDS); its cost counts nominal minutes. */
static const int64_t unit_len[BM__QT_ALL] = {60, 3600, 86400};
/* Estimated rows read per unit, relative to a minute: more distinct series are active in an
 * hour than in a minute (12x in the benchmark's data, about 1x for steady traffic), so a
 * rollup row is only worth reading when it replaces several finer ones; the all-time table
 * holds every series ever seen. Only the choice between plans depends on these numbers. */
static const int64_t unit_cost[BM__QT__COUNT] = {1, 4, 4, 8};
/* Each part is also one statement run and index seek, worth a few dozen rows. */
#define PART_COST 1

static int64_t floor_to(int64_t t, int64_t w)
{
    if (t == INT64_MIN || t == INT64_MAX)
        return t; /* unbounded stays unbounded */
    return t - ((t % w) + w) % w;
}

static int64_t ceil_to(int64_t t, int64_t w)
{
    int64_t f = floor_to(t, w);
    return f == t ? t : (f > INT64_MAX - w ? INT64_MAX : f + w);
}

/* The estimated cost of reading [lo, hi) of table t: only the stretch where minute rows exist
 * costs rows; outside it a part costs its seek. */
static int64_t part_cost(const struct bm__qplan_in *in, enum bm__qtable t, int64_t lo, int64_t hi)
{
    if (t == BM__QT_ALL)
        return PART_COST + unit_cost[t];
    int64_t a = lo > in->first ? lo : in->first;
    int64_t b = hi < in->last + 1 ? hi : in->last + 1;
    if (a >= b)
        return PART_COST;
    return PART_COST + (b - a + unit_len[t] - 1) / unit_len[t] * unit_cost[t];
}

static void add(struct bm__qplan *p, const struct bm__qplan_in *in, enum bm__qtable t, int64_t lo,
                int64_t hi, int sign)
{
    if (t != BM__QT_ALL && lo >= hi)
        return;
    /* Never reached (a plan holds at most 64 parts, see BM__QPLAN_MAX); a full plan is
     * priced out so that the other choice is taken. */
    if (p->n == BM__QPLAN_MAX) {
        p->cost = INT64_MAX / 4;
        return;
    }
    p->p[p->n++] = (struct bm__qpart){t, sign, lo, hi};
    p->cost += part_cost(in, t, lo, hi);
}

static void append(struct bm__qplan *p, const struct bm__qplan *q)
{
    for (int i = 0; i < q->n && p->n < BM__QPLAN_MAX; i++)
        p->p[p->n++] = q->p[i];
    p->cost += q->cost;
}

static void cover(struct bm__qplan *p, const struct bm__qplan_in *in, int64_t a, int64_t b, int lv,
                  int sign);

/* Adds [a, b), which lies inside one unit U of table lv, read from the finer tables, or as U
 * minus the rest of U when that is cheaper and allowed: only for sums, and only when U starts
 * at or after the prune cutoff (a rollup row of a unit the cutoff cuts still counts the pruned
 * minutes). */
static void edge(struct bm__qplan *p, const struct bm__qplan_in *in, int64_t a, int64_t b, int lv,
                 int sign)
{
    if (a >= b)
        return;
    struct bm__qplan direct = {0}, minus = {0};
    cover(&direct, in, a, b, lv - 1, sign);
    int64_t w = unit_len[lv], u0 = floor_to(a, w);
    if (in->may_subtract && u0 >= in->clamp && u0 <= INT64_MAX - w) {
        add(&minus, in, (enum bm__qtable)lv, u0, u0 + w, sign);
        cover(&minus, in, u0, a, lv - 1, -sign);
        cover(&minus, in, b, u0 + w, lv - 1, -sign);
    }
    append(p, minus.n > 0 && minus.cost < direct.cost ? &minus : &direct);
}

/* Adds [a, b): the whole units of table lv in it, and the ragged ends through edge(). */
static void cover(struct bm__qplan *p, const struct bm__qplan_in *in, int64_t a, int64_t b, int lv,
                  int sign)
{
    if (a >= b)
        return;
    if (lv == BM__QT_MINUTE) {
        add(p, in, BM__QT_MINUTE, a, b, sign);
        return;
    }
    int64_t A = ceil_to(a, unit_len[lv]), B = floor_to(b, unit_len[lv]);
    if (A < B) {
        add(p, in, (enum bm__qtable)lv, A, B, sign);
        edge(p, in, a, A, lv, sign);
        edge(p, in, B, b, lv, sign);
    } else if (A == B) { /* a unit boundary, no whole unit */
        edge(p, in, a, A, lv, sign);
        edge(p, in, A, b, lv, sign);
    } else { /* inside one unit */
        edge(p, in, a, b, lv, sign);
    }
}

void bm__qplan_make(const struct bm__qplan_in *in, struct bm__qplan *out)
{
    struct bm__qplan direct = {0}, minus = {0};
    int64_t lo = in->lo > in->clamp ? in->lo : in->clamp;
    /* Rollups sum whole hours and days, so they cannot answer a per-minute grouping. */
    cover(&direct, in, lo, in->hi, in->by_minute ? BM__QT_MINUTE : BM__QT_DAY, 1);
    if (in->may_subtract && !in->by_minute && lo < in->hi) {
        /* agg_all is the sum of every stored minute row, so the minute rows a prune has yet
         * to delete (before the clamp) come off from the minute table itself. */
        add(&minus, in, BM__QT_ALL, 0, 0, 1);
        add(&minus, in, BM__QT_MINUTE, INT64_MIN, in->clamp, -1);
        cover(&minus, in, in->clamp, lo, BM__QT_DAY, -1);
        cover(&minus, in, in->hi, INT64_MAX, BM__QT_DAY, -1);
    }
    *out = minus.n > 0 && minus.cost < direct.cost ? minus : direct;
}
