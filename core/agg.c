/* agg.c: the in-memory aggregate, a hash table of series keyed by (bucket, profile type,
 * model, profile, source region, inference region, operation). One lives per log object as
 * its delta; `bmas ingest` merges them; storage applies them in its transaction. */
#include "core/bm_ingest.h"

#include <string.h>

struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    char data[];
};

struct bm_agg {
    size_t max_series;
    struct bm_series *items; /* insertion order (or sorted order after bm_agg_sort) */
    uint64_t *hashes;        /* hash of items[i]'s key */
    size_t n, cap;
    uint32_t *slots; /* open addressing, linear probing: index + 1 into items, 0 = empty */
    size_t nslots;   /* power of two */
    struct arena_chunk *arena;
};

void bm_counters_one(struct bm_counters *c, uint64_t in, uint64_t out, uint64_t cache_read,
                     uint64_t cache_write)
{
    c->invocations = 1;
    c->input = (struct bm_stat){in, in, in};
    c->output = (struct bm_stat){out, out, out};
    c->cache_read = (struct bm_stat){cache_read, cache_read, cache_read};
    c->cache_write = (struct bm_stat){cache_write, cache_write, cache_write};
    c->cost = (struct bm_cost){0, 0};
    c->unpriced = 0;
    c->violations = 0;
}

static void stat_merge(struct bm_stat *d, const struct bm_stat *s, bool d_empty)
{
    d->sum += s->sum;
    d->min = d_empty || s->min < d->min ? s->min : d->min;
    d->max = d_empty || s->max > d->max ? s->max : d->max;
}

void bm_counters_merge(struct bm_counters *dst, const struct bm_counters *src)
{
    if (src->invocations == 0)
        return;
    bool empty = dst->invocations == 0;
    dst->invocations += src->invocations;
    stat_merge(&dst->input, &src->input, empty);
    stat_merge(&dst->output, &src->output, empty);
    stat_merge(&dst->cache_read, &src->cache_read, empty);
    stat_merge(&dst->cache_write, &src->cache_write, empty);
    bm_cost_add(&dst->cost, &src->cost);
    dst->unpriced += src->unpriced;
    dst->violations += src->violations;
}

struct bm_agg *bm_agg_new(size_t max_series)
{
    struct bm_agg *a = bm_calloc(1, sizeof *a);
    if (a != NULL)
        a->max_series = max_series;
    return a;
}

void bm_agg_free(struct bm_agg *a)
{
    if (a == NULL)
        return;
    while (a->arena != NULL) {
        struct arena_chunk *next = a->arena->next;
        bm_free(a->arena);
        a->arena = next;
    }
    bm_free(a->items);
    bm_free(a->hashes);
    bm_free(a->slots);
    bm_free(a);
}

size_t bm_agg_count(const struct bm_agg *a)
{
    return a->n;
}

const struct bm_series *bm_agg_at(const struct bm_agg *a, size_t i)
{
    return i < a->n ? &a->items[i] : NULL;
}

/* Hashes 8 bytes at a time with a multiply-xorshift mix (the finaliser of splitmix64): one
 * key is hashed per record, so a byte-at-a-time hash showed up in profiles. */
static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2);
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9ULL;
    return h ^ (h >> 29);
}

static uint64_t hash_bytes(uint64_t h, const char *p, size_t n)
{
    h = mix(h, n); /* length first, so ("ab","c") and ("a","bc") differ */
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = mix(h, v);
    }
    uint64_t tail = 0;
    if (n > 0)
        memcpy(&tail, p, n);
    return mix(h, tail);
}

static uint64_t key_hash(const struct bm_series_key *k)
{
    uint64_t h = mix((uint64_t)k->bucket, (uint64_t)k->type);
    const struct bm_str *s[] = {&k->model_id, &k->profile_id, &k->source_region,
                                &k->inference_region, &k->operation};
    for (size_t i = 0; i < 5; i++)
        h = hash_bytes(h, s[i]->p, s[i]->len);
    for (size_t i = 0; i < BM_ATTR_MAX; i++)
        if (k->attr[i].len > 0) /* no attribution (the common case) costs nothing */
            h = hash_bytes(h ^ (i + 1), k->attr[i].p, k->attr[i].len);
    return h;
}

static bool str_same(struct bm_str a, struct bm_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static bool key_eq(const struct bm_series_key *a, const struct bm_series_key *b)
{
    return a->bucket == b->bucket && a->type == b->type && str_same(a->model_id, b->model_id) &&
           str_same(a->profile_id, b->profile_id) && str_same(a->source_region, b->source_region) &&
           str_same(a->inference_region, b->inference_region) &&
           str_same(a->operation, b->operation) && str_same(a->attr[0], b->attr[0]) &&
           str_same(a->attr[1], b->attr[1]) && str_same(a->attr[2], b->attr[2]);
}

static size_t find_slot(const struct bm_agg *a, uint64_t h, const struct bm_series_key *k)
{
    size_t mask = a->nslots - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        uint32_t v = a->slots[i];
        if (v == 0 || (a->hashes[v - 1] == h && key_eq(&a->items[v - 1].key, k)))
            return i;
    }
}

static bm_err rehash(struct bm_agg *a, size_t nslots)
{
    uint32_t *slots = bm_calloc(nslots, sizeof *slots);
    if (slots == NULL)
        return BM_E_NOMEM;
    bm_free(a->slots);
    a->slots = slots;
    a->nslots = nslots;
    for (size_t i = 0; i < a->n; i++) {
        size_t s = find_slot(a, a->hashes[i], &a->items[i].key);
        a->slots[s] = (uint32_t)(i + 1);
    }
    return BM_OK;
}

static char *arena_copy(struct bm_agg *a, struct bm_str s)
{
    size_t need = s.len + 1;
    if (a->arena == NULL || a->arena->cap - a->arena->used < need) {
        size_t cap = need > 16384 ? need : 16384;
        struct arena_chunk *c = bm_malloc(sizeof *c + cap);
        if (c == NULL)
            return NULL;
        c->next = a->arena;
        c->used = 0;
        c->cap = cap;
        a->arena = c;
    }
    char *d = a->arena->data + a->arena->used;
    if (s.len > 0)
        memcpy(d, s.p, s.len);
    d[s.len] = '\0';
    a->arena->used += need;
    return d;
}

bm_err bm_agg_add(struct bm_agg *a, const struct bm_series_key *k, const struct bm_counters *c)
{
    if (a->nslots == 0 && rehash(a, 64) != BM_OK)
        return BM_E_NOMEM;
    uint64_t h = key_hash(k);
    size_t slot = find_slot(a, h, k);
    if (a->slots[slot] != 0) {
        bm_counters_merge(&a->items[a->slots[slot] - 1].c, c);
        return BM_OK;
    }
    if (a->max_series > 0 && a->n >= a->max_series)
        return BM_E_TOO_LARGE;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 32;
        struct bm_series *items = bm_realloc(a->items, cap * sizeof *items);
        if (items == NULL)
            return BM_E_NOMEM;
        a->items = items;
        uint64_t *hashes = bm_realloc(a->hashes, cap * sizeof *hashes);
        if (hashes == NULL)
            return BM_E_NOMEM;
        a->hashes = hashes;
        a->cap = cap;
    }
    struct bm_series *s = &a->items[a->n];
    s->key = *k;
    const struct bm_str *src[] = {&k->model_id,         &k->profile_id, &k->source_region,
                                  &k->inference_region, &k->operation,  &k->attr[0],
                                  &k->attr[1],          &k->attr[2]};
    struct bm_str *dst[] = {&s->key.model_id,         &s->key.profile_id, &s->key.source_region,
                            &s->key.inference_region, &s->key.operation,  &s->key.attr[0],
                            &s->key.attr[1],          &s->key.attr[2]};
    for (size_t i = 0; i < 8; i++) {
        char *copy = arena_copy(a, *src[i]);
        if (copy == NULL)
            return BM_E_NOMEM;
        dst[i]->p = copy;
    }
    memset(&s->c, 0, sizeof s->c);
    bm_counters_merge(&s->c, c);
    a->hashes[a->n] = h;
    a->slots[slot] = (uint32_t)(a->n + 1);
    a->n++;
    /* Keep the load factor under 0.7 so probes stay short. */
    if (a->n * 10 >= a->nslots * 7 && rehash(a, a->nslots * 2) != BM_OK) {
        /* The series is in; only growth failed. Undo so that the add is all or nothing. */
        a->n--;
        a->slots[slot] = 0;
        return BM_E_NOMEM;
    }
    return BM_OK;
}

bool bm_agg_contains(const struct bm_agg *a, const struct bm_series_key *k)
{
    return a->nslots > 0 && a->slots[find_slot(a, key_hash(k), k)] != 0;
}

bm_err bm_agg_merge(struct bm_agg *dst, const struct bm_agg *src)
{
    for (size_t i = 0; i < src->n; i++) {
        bm_err rc = bm_agg_add(dst, &src->items[i].key, &src->items[i].c);
        if (rc != BM_OK)
            return rc;
    }
    return BM_OK;
}

void bm_agg_totals(const struct bm_agg *a, struct bm_counters *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < a->n; i++)
        bm_counters_merge(out, &a->items[i].c);
}

static int str_cmp(struct bm_str a, struct bm_str b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.p, b.p, n) : 0;
    return c ? c : (a.len > b.len) - (a.len < b.len);
}

static int field_cmp(const struct bm_series_key *a, const struct bm_series_key *b, enum bm_group f)
{
    switch (f) {
    case BM_G_MINUTE:
        return (a->bucket > b->bucket) - (a->bucket < b->bucket);
    case BM_G_MODEL_ID:
        return str_cmp(a->model_id, b->model_id);
    case BM_G_PROFILE_TYPE: {
        /* By name, as people read them; "not grouped" sorts first. */
        const char *na = a->type < BM_PT__COUNT ? bm_profile_type_name(a->type) : "";
        const char *nb = b->type < BM_PT__COUNT ? bm_profile_type_name(b->type) : "";
        return strcmp(na, nb);
    }
    case BM_G_PROFILE_ID:
        return str_cmp(a->profile_id, b->profile_id);
    case BM_G_SOURCE_REGION:
        return str_cmp(a->source_region, b->source_region);
    case BM_G_INFERENCE_REGION:
        return str_cmp(a->inference_region, b->inference_region);
    case BM_G_OPERATION:
        return str_cmp(a->operation, b->operation);
    case BM_G_ATTR1:
    case BM_G_ATTR2:
    case BM_G_ATTR3:
        return str_cmp(a->attr[f - BM_G_ATTR1], b->attr[f - BM_G_ATTR1]);
    case BM_G__COUNT:
        break;
    }
    return 0;
}

/* Orders by the group_by fields as given, then by every field so the order is total. */
static int series_cmp(const struct bm_series *sa, const struct bm_series *sb,
                      const struct bm_group_by *g)
{
    int c;
    for (int i = 0; g != NULL && i < g->n; i++)
        if ((c = field_cmp(&sa->key, &sb->key, g->f[i])) != 0)
            return c;
    for (int f = 0; f < BM_G__COUNT; f++)
        if ((c = field_cmp(&sa->key, &sb->key, (enum bm_group)f)) != 0)
            return c;
    return 0;
}

/* Bottom-up merge sort of the indices ix (tmp: scratch of n) by the series they name: qsort has
 * no context argument in C11, and the order depends on g. Indices, not the ~200-byte series,
 * move: sorting a week of minutes (8,064 series) had spent most of its time in memcpy. */
static void merge_sort(const struct bm_series *v, uint32_t *ix, uint32_t *tmp, size_t n,
                       const struct bm_group_by *g)
{
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                tmp[k++] = series_cmp(&v[ix[j]], &v[ix[i]], g) < 0 ? ix[j++] : ix[i++];
            while (i < mid)
                tmp[k++] = ix[i++];
            while (j < hi)
                tmp[k++] = ix[j++];
        }
        memcpy(ix, tmp, n * sizeof *ix);
    }
}

bm_err bm_agg_sort(struct bm_agg *a, const struct bm_group_by *g)
{
    if (a->n < 2)
        return BM_OK;
    /* n fits in 32 bits: the slots hold index + 1 as uint32_t. */
    uint32_t *ix = bm_malloc(2 * a->n * sizeof *ix);
    struct bm_series *items = bm_malloc(a->cap * sizeof *items);
    uint64_t *hashes = bm_malloc(a->cap * sizeof *hashes);
    if (ix == NULL || items == NULL || hashes == NULL) {
        bm_free(ix);
        bm_free(items);
        bm_free(hashes);
        return BM_E_NOMEM;
    }
    for (size_t i = 0; i < a->n; i++)
        ix[i] = (uint32_t)i;
    merge_sort(a->items, ix, ix + a->n, a->n, g);
    for (size_t i = 0; i < a->n; i++) {
        items[i] = a->items[ix[i]];
        hashes[i] = a->hashes[ix[i]];
    }
    bm_free(ix);
    bm_free(a->items);
    bm_free(a->hashes);
    a->items = items;
    a->hashes = hashes;
    /* Same table size, so rehashing cannot need more memory than we hold: rebuild in place. */
    memset(a->slots, 0, a->nslots * sizeof a->slots[0]);
    for (size_t i = 0; i < a->n; i++)
        a->slots[find_slot(a, a->hashes[i], &a->items[i].key)] = (uint32_t)(i + 1);
    return BM_OK;
}

bm_err bm_agg_regroup(const struct bm_agg *src, const struct bm_group_by *g, struct bm_agg **out)
{
    bool keep[BM_G__COUNT] = {false};
    for (int i = 0; i < g->n; i++)
        keep[g->f[i]] = true;
    struct bm_agg *a = bm_agg_new(0);
    if (a == NULL)
        return BM_E_NOMEM;
    const struct bm_str none = {"", 0};
    for (size_t i = 0; i < src->n; i++) {
        const struct bm_series_key *k = &src->items[i].key;
        struct bm_series_key nk = {
            .bucket = keep[BM_G_MINUTE] && k->bucket != BM_NO_BUCKET
                          ? k->bucket - ((k->bucket % 60) + 60) % 60
                          : BM_NO_BUCKET,
            .type = keep[BM_G_PROFILE_TYPE] ? k->type : BM_PT__COUNT,
            .model_id = keep[BM_G_MODEL_ID] ? k->model_id : none,
            .profile_id = keep[BM_G_PROFILE_ID] ? k->profile_id : none,
            .source_region = keep[BM_G_SOURCE_REGION] ? k->source_region : none,
            .inference_region = keep[BM_G_INFERENCE_REGION] ? k->inference_region : none,
            .operation = keep[BM_G_OPERATION] ? k->operation : none,
            .attr = {keep[BM_G_ATTR1] ? k->attr[0] : none, keep[BM_G_ATTR2] ? k->attr[1] : none,
                     keep[BM_G_ATTR3] ? k->attr[2] : none},
        };
        bm_err rc = bm_agg_add(a, &nk, &src->items[i].c);
        if (rc != BM_OK) {
            bm_agg_free(a);
            return rc;
        }
    }
    *out = a;
    return BM_OK;
}
