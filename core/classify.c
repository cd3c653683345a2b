/* classify.c: what kind of invocation a record's modelId names (docs/formats.md
 * section 2). The only per-invocation discriminator between geographic and global
 * cross-Region inference is the profile id's prefix, and new geographies appear without
 * notice (ca., jp., au.), so a profile is told from a bare model by its shape, not a list. */
#include "core/bm_ingest.h"

#include <string.h>

static const char *const type_names[BM_PT__COUNT] = {
    "OnDemand", "CrossRegion", "GlobalCrossRegion", "Application", "Provisioned",
};

const char *bm_profile_type_name(enum bm_profile_type t)
{
    return (unsigned)t < BM_PT__COUNT ? type_names[t] : "OnDemand";
}

bool bm_profile_type_parse(const char *s, size_t len, enum bm_profile_type *out)
{
    for (int i = 0; i < BM_PT__COUNT; i++) {
        if (strlen(type_names[i]) == len && memcmp(type_names[i], s, len) == 0) {
            *out = (enum bm_profile_type)i;
            return true;
        }
    }
    return false;
}

struct app_pair {
    char *id;
    char *model;
};
struct bm_app_map {
    size_t n;
    struct app_pair pairs[];
};

static bool str_eq(struct bm_str a, const char *b)
{
    return strlen(b) == a.len && memcmp(a.p, b, a.len) == 0;
}

/* The id of "arn:...:application-inference-profile/<id>", or the whole string. */
static struct bm_str app_id_of(const char *s, size_t len)
{
    static const char marker[] = "application-inference-profile/";
    const char *end = s + len;
    for (const char *p = s; p + sizeof marker - 1 <= end; p++) {
        if (memcmp(p, marker, sizeof marker - 1) == 0)
            return (struct bm_str){p + sizeof marker - 1, (size_t)(end - p) - (sizeof marker - 1)};
    }
    return (struct bm_str){s, len};
}

void bm_app_map_free(struct bm_app_map *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n; i++) {
        bm_free(m->pairs[i].id);
        bm_free(m->pairs[i].model);
    }
    bm_free(m);
}

bm_err bm_app_map_parse(const char *spec, struct bm_app_map **out, struct bm_errmsg *em)
{
    size_t n = 0;
    for (const char *p = spec; *p; p++)
        n += *p == ',';
    struct bm_app_map *m = bm_calloc(1, sizeof *m + (n + 1) * sizeof m->pairs[0]);
    if (m == NULL)
        return BM_E_NOMEM;
    const char *p = spec;
    bm_err rc = BM_OK;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        /* Whitespace around pairs is a common paste artefact; trim it. */
        while (len > 0 && (*p == ' ' || *p == '\t')) {
            p++;
            len--;
        }
        if (len > 0) {
            if (eq == NULL || eq == p || eq == p + len - 1) {
                rc = bm_errmsg_set(em, BM_E_CONFIG,
                                   "BMAS_APP_PROFILE_MAP: expected id=model, got \"%.*s\"",
                                   (int)len, p);
                break;
            }
            struct bm_str id = app_id_of(p, (size_t)(eq - p));
            const char *mv = eq + 1;
            size_t mlen = len - (size_t)(mv - p);
            while (mlen > 0 && (*mv == ' ' || *mv == '\t')) {
                mv++;
                mlen--;
            }
            while (mlen > 0 && (mv[mlen - 1] == ' ' || mv[mlen - 1] == '\t'))
                mlen--;
            while (id.len > 0 && (id.p[id.len - 1] == ' ' || id.p[id.len - 1] == '\t'))
                id.len--;
            struct app_pair *pair = &m->pairs[m->n];
            pair->id = bm_strndup(id.p, id.len);
            pair->model = bm_strndup(mv, mlen);
            m->n++;
            if (pair->id == NULL || pair->model == NULL) {
                rc = BM_E_NOMEM;
                break;
            }
        }
        p += len;
        if (*p == ',')
            p++;
    }
    if (rc != BM_OK) {
        bm_app_map_free(m);
        return rc;
    }
    *out = m;
    return BM_OK;
}

static const char *app_lookup(const struct bm_app_map *m, struct bm_str id)
{
    for (size_t i = 0; m != NULL && i < m->n; i++)
        if (str_eq(id, m->pairs[i].id))
            return m->pairs[i].model;
    return NULL;
}

static bool is_lower(char c)
{
    return c >= 'a' && c <= 'z';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* A geography prefix: lowercase letters in hyphen-joined words ("us", "apac", "us-gov"). */
static bool is_geo(const char *p, size_t n)
{
    if (n < 2 || !is_lower(p[0]) || !is_lower(p[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_lower(p[i]) && !(p[i] == '-' && p[i - 1] != '-'))
            return false;
    return true;
}

/* A model provider: lowercase letters and digits, no hyphen ("anthropic", "ai21"). */
static bool is_provider(const char *p, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_lower(p[i]) && !is_digit(p[i]))
            return false;
    return true;
}

/* "geo.provider.model" -> length of geo, or 0 when id is a bare "provider.model". The model
 * name itself may carry dots, so the test is: a geo-shaped first part, then a provider-shaped
 * second part, then more. "amazon.nova-2.0-lite" stays a model ("nova-2" is no provider). */
static size_t geo_prefix_len(const char *id, size_t len)
{
    const char *d1 = memchr(id, '.', len);
    if (d1 == NULL)
        return 0;
    size_t geo = (size_t)(d1 - id);
    const char *rest = d1 + 1;
    size_t rest_len = len - geo - 1;
    const char *d2 = memchr(rest, '.', rest_len);
    if (d2 == NULL || d2 + 1 >= id + len)
        return 0;
    if (!is_geo(id, geo) || !is_provider(rest, (size_t)(d2 - rest)))
        return 0;
    return geo;
}

static void set_system_profile(const char *id, size_t len, size_t geo,
                               const struct bm_classify_opts *o, struct bm_classification *out)
{
    out->profile_id = (struct bm_str){id, len};
    out->model_id = (struct bm_str){id + geo + 1, len - geo - 1};
    bool global = geo == 6 && memcmp(id, "global", 6) == 0;
    if (!o->cross_region)
        out->type = BM_PT_ON_DEMAND;
    else if (global && o->global_cross_region)
        out->type = BM_PT_GLOBAL;
    else
        out->type = BM_PT_CROSS_REGION;
}

static bm_err classify_arn(const char *id, size_t len, const struct bm_classify_opts *o,
                           struct bm_classification *out)
{
    /* arn:PARTITION:bedrock:REGION:ACCOUNT:TYPE/ID; the ID itself may contain ':'. */
    const char *f[5];
    const char *p = id;
    const char *end = id + len;
    for (int i = 0; i < 5; i++) {
        const char *c = memchr(p, ':', (size_t)(end - p));
        if (c == NULL)
            return BM_E_LOG_FORMAT;
        f[i] = c;
        p = c + 1;
    }
    out->arn_region = (struct bm_str){f[2] + 1, (size_t)(f[3] - f[2] - 1)};
    const char *slash = memchr(p, '/', (size_t)(end - p));
    if (slash == NULL || slash + 1 >= end)
        return BM_E_LOG_FORMAT;
    struct bm_str rtype = {p, (size_t)(slash - p)};
    const char *rid = slash + 1;
    size_t rid_len = (size_t)(end - rid);

    if (str_eq(rtype, "inference-profile")) {
        size_t geo = geo_prefix_len(rid, rid_len);
        if (geo == 0) {
            /* A system profile always has a geography; without a recognisable one keep the
             * whole id rather than guess. */
            const char *dot = memchr(rid, '.', rid_len);
            geo = dot ? (size_t)(dot - rid) : 0;
        }
        if (geo > 0) {
            set_system_profile(rid, rid_len, geo, o, out);
            return BM_OK;
        }
        out->type = o->cross_region ? BM_PT_CROSS_REGION : BM_PT_ON_DEMAND;
        out->profile_id = out->model_id = (struct bm_str){rid, rid_len};
        return BM_OK;
    }
    out->profile_id = out->model_id = (struct bm_str){rid, rid_len};
    if (str_eq(rtype, "application-inference-profile")) {
        out->type = BM_PT_APPLICATION;
        const char *model = app_lookup(o->app_map, out->profile_id);
        if (model != NULL)
            out->model_id = bm_str_of(model);
        else
            out->app_unmapped = true;
    } else if (str_eq(rtype, "provisioned-model")) {
        out->type = BM_PT_PROVISIONED;
    } else {
        /* foundation-model, custom-model, imported-model, custom-model-deployment and any
         * type AWS adds later: billed per token on demand. */
        out->type = BM_PT_ON_DEMAND;
    }
    return BM_OK;
}

bm_err bm_classify(const char *id, size_t len, const struct bm_classify_opts *o,
                   struct bm_classification *out)
{
    memset(out, 0, sizeof *out);
    if (len == 0)
        return BM_E_LOG_FORMAT;
    if (len > 4 && memcmp(id, "arn:", 4) == 0)
        return classify_arn(id, len, o, out);
    size_t geo = geo_prefix_len(id, len);
    if (geo > 0) {
        set_system_profile(id, len, geo, o, out);
        return BM_OK;
    }
    out->type = BM_PT_ON_DEMAND;
    out->profile_id = out->model_id = (struct bm_str){id, len};
    return BM_OK;
}

/* us-east-1, us-gov-west-1, ap-southeast-2, eu-central-2, cn-north-1, il-central-1. */
static bool is_region(const char *p, size_t n)
{
    size_t i = 0;
    int words = 0;
    while (i < n && is_lower(p[i])) {
        size_t start = i;
        while (i < n && is_lower(p[i]))
            i++;
        if (i - start < 2 && words == 0)
            return false;
        words++;
        if (i >= n || p[i] != '-')
            return false;
        i++;
    }
    if (words < 2 || i >= n)
        return false;
    for (; i < n; i++)
        if (!is_digit(p[i]))
            return false;
    return true;
}

bool bm_region_from_key(const char *key, size_t len, struct bm_str *out)
{
    static const char marker[] = "BedrockModelInvocationLogs/";
    const size_t mlen = sizeof marker - 1;
    const char *end = key + len;
    for (const char *p = key; p + mlen <= end; p++) {
        if (*p != 'B' || memcmp(p, marker, mlen) != 0)
            continue;
        const char *r = p + mlen;
        const char *slash = memchr(r, '/', (size_t)(end - r));
        size_t rlen = slash ? (size_t)(slash - r) : (size_t)(end - r);
        if (is_region(r, rlen)) {
            *out = (struct bm_str){r, rlen};
            return true;
        }
    }
    return false;
}

enum bm_key_kind bm_key_kind(const char *key, size_t len)
{
    static const char marker[] = "amazon-bedrock-logs-permission-check";
    if (len == 0 || key[len - 1] == '/')
        return BM_KEY_FOLDER;
    const char *base = key + len;
    while (base > key && base[-1] != '/')
        base--;
    size_t blen = (size_t)(key + len - base);
    if (blen == sizeof marker - 1 && memcmp(base, marker, blen) == 0)
        return BM_KEY_PERMISSION_CHECK;
    /* Offloaded request/response bodies live in .../HH/data/<requestId>_input.json.gz: they
     * are not log records (docs/formats.md 1.1). A folder named data/ alone is not enough (a user's
     * key prefix may be "data/"): it must sit below BedrockModelInvocationLogs/ or hold a
     * body-shaped name. */
    bool parent_is_data = base - key >= 5 && memcmp(base - 5, "data/", 5) == 0 &&
                          (base - key == 5 || base[-6] == '/');
    if (parent_is_data) {
        static const char logs[] = "/BedrockModelInvocationLogs/";
        size_t before = (size_t)(base - key) - 5;
        bool under_logs = false;
        for (size_t i = 0; i + sizeof logs - 1 <= before && !under_logs; i++)
            under_logs = memcmp(key + i, logs, sizeof logs - 1) == 0;
        bool body_name = false;
        for (size_t i = 0; i + 7 <= blen && !body_name; i++)
            body_name = memcmp(base + i, "_input.", 7) == 0 ||
                        (i + 8 <= blen && memcmp(base + i, "_output.", 8) == 0);
        if (under_logs || body_name)
            return BM_KEY_DATA_BODY;
    }
    return BM_KEY_LOG;
}

const char *bm_key_kind_name(enum bm_key_kind k)
{
    switch (k) {
    case BM_KEY_LOG:
        return "log";
    case BM_KEY_DATA_BODY:
        return "offloaded_body";
    case BM_KEY_PERMISSION_CHECK:
        return "permission_check";
    case BM_KEY_FOLDER:
        return "folder";
    }
    return "log";
}
