/* alloc.c: the bm_malloc family. All heap memory passes through here so that tests can make
 * the n-th allocation fail (curl torture, sqlite faultsim) and check every error path. */
#include "core/core_int.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Test-only failure injection: -1 = off. Atomic so that a stray worker thread in a test cannot
 * corrupt it, though injection itself is meant for single-threaded tests. */
static atomic_long fail_countdown = -1;
static atomic_long fail_count = 0;

static bool should_fail(void)
{
    long n = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    if (n < 0)
        return false;
    if (n == 0) {
        atomic_fetch_add(&fail_count, 1);
        return true;
    }
    atomic_store_explicit(&fail_countdown, n - 1, memory_order_relaxed);
    return false;
}

void bm_alloc_fail_after(long n)
{
    atomic_store(&fail_countdown, n);
    atomic_store(&fail_count, 0);
}

long bm_alloc_failures(void)
{
    return atomic_exchange(&fail_count, 0);
}

void *bm_malloc(size_t n)
{
    if (should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *bm_calloc(size_t n, size_t size)
{
    if (should_fail())
        return NULL;
    return calloc(n ? n : 1, size ? size : 1);
}

void *bm_realloc(void *p, size_t n)
{
    if (should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

void bm_free(void *p)
{
    free(p);
}

char *bm_strndup(const char *s, size_t len)
{
    char *d = bm_malloc(len + 1);
    if (d == NULL)
        return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

char *bm_strdup(const char *s)
{
    return s ? bm_strndup(s, strlen(s)) : NULL;
}

void bm_secure_zero(void *p, size_t len)
{
    if (p != NULL)
        explicit_bzero(p, len);
}

/* zlib allocates through these (docs/style.md G4), so allocation-failure tests reach it. */
void *bm__z_alloc(void *opaque, unsigned items, unsigned size)
{
    (void)opaque;
    return bm_calloc(items, size);
}

void bm__z_free(void *opaque, void *p)
{
    (void)opaque;
    bm_free(p);
}
