/* s3_region.c: the region each S3 bucket lives in, as S3's redirects told it (x-amz-bucket-region
 * of a 301 PermanentRedirect, or the <Region> of a 400 AuthorizationHeaderMalformed), so later
 * requests go to the right region at once. A small table under one mutex: few buckets hold
 * logs, and a full table forgets the least recently used one. */
#include "core/bm_aws.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

struct region_entry {
    char bucket[64]; /* S3 bucket names are 3-63 bytes */
    char region[32];
    uint64_t used; /* the tick of the latest get or put */
};

struct bm_s3_regions {
    pthread_mutex_t mu;
    struct region_entry *e;
    size_t n, cap;
    uint64_t tick;
};

bool bm_region_valid(const char *s)
{
    /* Three to five words joined by '-': letters (at most 12 each), then 1-2 digits last:
     * "us-east-1", "us-gov-west-1", "ap-southeast-2". Nothing else reaches a host name or a
     * credential scope. */
    size_t len = strlen(s), parts = 1, word = 0;
    if (len < 6 || len > 31)
        return false;
    const char *last = s;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '-') {
            if (i == 0 || s[i - 1] == '-' || i + 1 == len)
                return false;
            parts++;
            word = 0;
            last = s + i + 1;
        } else if (++word > 12) {
            return false;
        } else if (!(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9')) {
            return false;
        }
    }
    size_t ll = strlen(last);
    if (parts < 3 || parts > 5 || ll > 2)
        return false;
    for (const char *p = last; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    for (const char *p = s; p < last; p++) /* the words before the number: letters only */
        if (*p >= '0' && *p <= '9')
            return false;
    return true;
}

struct bm_s3_regions *bm_s3_regions_new(size_t cap)
{
    struct bm_s3_regions *c = bm_calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->cap = cap ? cap : BM_S3_REGIONS_DEFAULT_CAP;
    c->e = bm_calloc(c->cap, sizeof *c->e);
    if (c->e == NULL || pthread_mutex_init(&c->mu, NULL) != 0) {
        bm_free(c->e);
        bm_free(c);
        return NULL;
    }
    return c;
}

void bm_s3_regions_free(struct bm_s3_regions *c)
{
    if (c == NULL)
        return;
    pthread_mutex_destroy(&c->mu);
    bm_free(c->e);
    bm_free(c);
}

static struct region_entry *find(struct bm_s3_regions *c, const char *bucket)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->e[i].bucket, bucket) == 0)
            return &c->e[i];
    return NULL;
}

bool bm_s3_regions_get(struct bm_s3_regions *c, const char *bucket, char *out, size_t cap)
{
    if (c == NULL || cap < sizeof c->e[0].region)
        return false;
    pthread_mutex_lock(&c->mu);
    struct region_entry *e = find(c, bucket);
    if (e != NULL) {
        e->used = ++c->tick;
        memcpy(out, e->region, sizeof e->region);
    }
    pthread_mutex_unlock(&c->mu);
    return e != NULL;
}

bool bm_s3_regions_put(struct bm_s3_regions *c, const char *bucket, const char *region)
{
    if (c == NULL || bm_s3_bucket_check(bucket, strlen(bucket)) != NULL ||
        strlen(bucket) >= sizeof c->e[0].bucket || !bm_region_valid(region))
        return false;
    pthread_mutex_lock(&c->mu);
    struct region_entry *e = find(c, bucket);
    if (e == NULL && c->n < c->cap) {
        e = &c->e[c->n++];
    } else if (e == NULL) {
        e = &c->e[0]; /* full: the least recently used entry makes room */
        for (size_t i = 1; i < c->n; i++)
            if (c->e[i].used < e->used)
                e = &c->e[i];
    }
    snprintf(e->bucket, sizeof e->bucket, "%s", bucket);
    snprintf(e->region, sizeof e->region, "%s", region);
    e->used = ++c->tick;
    pthread_mutex_unlock(&c->mu);
    return true;
}

size_t bm_s3_regions_count(struct bm_s3_regions *c)
{
    if (c == NULL)
        return 0;
    pthread_mutex_lock(&c->mu);
    size_t n = c->n;
    pthread_mutex_unlock(&c->mu);
    return n;
}
