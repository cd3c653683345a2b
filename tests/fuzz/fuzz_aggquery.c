/* fuzz_aggquery.c: libFuzzer target for GET /aggregates' query string: split and form-decoded
 * as libmicrohttpd does (a %00 ends the value, a repeated name is refused as server/http.c
 * does), parsed by bm_db_query_parse, planned over the rollup tables (query_plan.c) for a few
 * stored spans, and the empty result rendered, which must be JSON. */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "storage/storage_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PARAMS 32 /* server/http.c's cap */

static void plan_and_render(const struct bm_db_query *q)
{
    /* Stored minute rows: none, a day around the range's start, all of 2026; pruned or not. */
    static const int64_t spans[][3] = {
        {INT64_MIN, INT64_MAX, INT64_MIN},
        {INT64_MIN, 1776643200, 1776729540},
        {1767225600, 1767225600, 1798761540},
    };
    for (size_t i = 0; i < sizeof spans / sizeof spans[0]; i++) {
        for (int sub = 0; sub < 2; sub++) {
            struct bm__qplan_in in = {
                .lo = q->from == BM_NO_BUCKET ? INT64_MIN : q->from,
                .hi = q->to == BM_NO_BUCKET ? INT64_MAX : q->to,
                .clamp = spans[i][0],
                .first = spans[i][1],
                .last = spans[i][2],
                .may_subtract = sub == 1,
            };
            for (int f = 0; f < q->group_by.n; f++)
                in.by_minute = in.by_minute || q->group_by.f[f] == BM_G_MINUTE;
            struct bm__qplan p;
            bm__qplan_make(&in, &p);
            if (p.n < 0 || p.n > BM__QPLAN_MAX)
                abort();
            for (int k = 0; k < p.n; k++)
                if (p.p[k].lo > p.p[k].hi && p.p[k].t != BM__QT_ALL)
                    abort();
        }
    }
    struct bm_agg *a = bm_agg_new(1);
    struct bm_buf b;
    bm_buf_init(&b, 1 << 20);
    if (a != NULL && bm_agg_write_json(a, &q->group_by, q->from, q->to, &b) == BM_OK) {
        cJSON *j = cJSON_ParseWithLength(b.data, b.len);
        if (j == NULL)
            abort();
        cJSON_Delete(j);
    }
    bm_buf_cleanup(&b);
    bm_agg_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *qs = (const char *)data;
    struct bm_buf dec[2 * MAX_PARAMS];
    const char *names[MAX_PARAMS], *values[MAX_PARAMS];
    size_t n = 0, pos = 0, used = 0;
    struct bm_url_pair p;
    bool ok = true;
    while (ok && bm_url_query_next(qs, size, &pos, &p)) {
        if (n == MAX_PARAMS) {
            ok = false;
            break;
        }
        struct bm_buf *nb = &dec[used++], *vb = &dec[used++];
        bm_buf_init(nb, 1 << 16);
        bm_buf_init(vb, 1 << 16);
        if (bm_url_decode(p.name, p.name_len, true, nb) != BM_OK ||
            bm_url_decode(p.value, p.value_len, true, vb) != BM_OK ||
            bm_buf_append(nb, "", 0) != BM_OK || bm_buf_append(vb, "", 0) != BM_OK) {
            ok = false;
            break;
        }
        names[n] = nb->data;
        values[n] = vb->data;
        for (size_t i = 0; i < n; i++)
            ok = ok && strcmp(names[i], names[n]) != 0;
        n++;
    }
    if (ok) {
        struct bm_db_query q;
        struct bm_errmsg em;
        bm_err rc = bm_db_query_parse(&q, names, values, n, &em);
        if (rc == BM_OK) {
            if (q.from != BM_NO_BUCKET && q.to != BM_NO_BUCKET && q.to < q.from)
                abort();
            plan_and_render(&q);
        } else if (rc != BM_E_BAD_REQUEST || em.text[0] == '\0') {
            abort();
        }
    }
    for (size_t i = 0; i < used; i++)
        bm_buf_cleanup(&dec[i]);
    return 0;
}
