/* query_params.c: GET /aggregates' parameters turned into a bm_db_query, apart from the HTTP
 * layer so that it can be tested and fuzzed alone (tests/fuzz/fuzz_aggquery.c). Every
 * parameter is checked: a filter with a typo silently ignored would return wrong numbers. */
#include "storage/storage_int.h"

#include <string.h>

bm_err bm_db_query_parse(struct bm_db_query *q, const char *const *names, const char *const *values,
                         size_t n, struct bm_errmsg *em)
{
    return bm_db_query_parse_attrs(q, NULL, names, values, n, em);
}

bm_err bm_db_query_parse_attrs(struct bm_db_query *q, const struct bm_attr_keys *keys,
                               const char *const *names, const char *const *values, size_t n,
                               struct bm_errmsg *em)
{
    struct bm_group_by g;
    const char *group_by = BM_GROUP_BY_DEFAULT;
    int64_t from = BM_NO_BUCKET, to = BM_NO_BUCKET;
    const char *model = NULL, *src = NULL, *inf = NULL, *ptype = NULL;
    for (size_t i = 0; i < n; i++) {
        const char *k = names[i], *v = values[i];
        if (strcmp(k, "from") == 0 || strcmp(k, "to") == 0) {
            int64_t t;
            if (!bm_time_parse(v, strlen(v), &t))
                return bm_errmsg_set(em, BM_E_BAD_REQUEST,
                                     "%s: expected RFC 3339, e.g. 2026-04-20T00:00:00Z, got "
                                     "\"%.64s\"",
                                     k, v);
            *(k[0] == 'f' ? &from : &to) = t;
        } else if (strcmp(k, "group_by") == 0) {
            group_by = v;
        } else if (strcmp(k, "model_id") == 0) {
            model = v;
        } else if (strcmp(k, "source_region") == 0) {
            src = v;
        } else if (strcmp(k, "inference_region") == 0) {
            inf = v;
        } else if (strcmp(k, "profile_type") == 0) {
            ptype = v;
        } else {
            return bm_errmsg_set(em, BM_E_BAD_REQUEST,
                                 "unknown parameter \"%.64s\" (from, to, model_id, "
                                 "profile_type, source_region, inference_region, group_by)",
                                 k);
        }
    }
    bm_err rc = bm_group_by_parse_attrs(group_by, keys, &g, em);
    if (rc != BM_OK)
        return rc == BM_E_NOMEM ? rc : BM_E_BAD_REQUEST;
    if (from != BM_NO_BUCKET && to != BM_NO_BUCKET && to < from)
        return bm_errmsg_set(em, BM_E_BAD_REQUEST, "to is before from");
    struct bm_db_query r;
    bm_db_query_init(&r, &g);
    r.sums_only = true; /* the document shows sums; min/max double the query's cost */
    r.from = from;
    r.to = to;
    r.model_id = model;
    r.source_region = src;
    r.inference_region = inf;
    if (ptype != NULL && !bm_profile_type_parse(ptype, strlen(ptype), &r.profile_type))
        return bm_errmsg_set(em, BM_E_BAD_REQUEST,
                             "profile_type: \"%.64s\" is none of OnDemand, CrossRegion, "
                             "GlobalCrossRegion, Application, Provisioned",
                             ptype);
    *q = r;
    return BM_OK;
}
