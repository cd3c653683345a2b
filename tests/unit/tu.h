/* tu.h: helpers shared by the cmocka unit tests (header-only so each test stays one binary). */
#ifndef BM_TU_H
#define BM_TU_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "core/bm_rt.h"
#include "core/bm_ingest.h"
#include "core/bm_aws.h"

/* Reads a whole file into a bm_malloc'd buffer (NUL-terminated); NULL when it cannot. */
static inline char *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    struct bm_buf b;
    bm_buf_init(&b, (size_t)1 << 30);
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) {
        if (bm_buf_append(&b, tmp, n) != BM_OK) {
            fclose(f);
            bm_buf_cleanup(&b);
            return NULL;
        }
    }
    fclose(f);
    if (b.data == NULL && bm_buf_append(&b, "", 0) != BM_OK)
        return NULL;
    if (len != NULL)
        *len = b.len;
    return bm_buf_steal(&b);
}

/* Path of a file under tests/data (BM_TEST_DATA), in a static buffer. */
static inline const char *tu_data(const char *name)
{
    static char path[4096];
    const char *dir = getenv("BM_TEST_DATA");
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/data", name);
    return path;
}

/* gzip-compresses in into a new bm_malloc'd buffer (one member) at zlib level `level`. */
static inline unsigned char *tu_gzip(const void *in, size_t len, size_t *out_len, int level)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    assert_int_equal(deflateInit2(&zs, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY),
                     Z_OK);
    size_t cap = deflateBound(&zs, (uLong)len) + 64;
    unsigned char *out = bm_malloc(cap);
    assert_non_null(out);
    zs.next_in = (unsigned char *)in;
    zs.avail_in = (uInt)len;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    *out_len = cap - zs.avail_out;
    deflateEnd(&zs);
    return out;
}

#endif
