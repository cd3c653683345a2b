/* gunzip.c: streaming decompression told by the gzip magic bytes 1f 8b, never by a file name
 * or Content-Encoding (an HTTP client may already have inflated the body; docs/formats.md 1.2).
 * Handles multi-member streams (concatenated .gz files), and caps the total output so that a
 * gzip bomb ends with BMAS-010 instead of taking the process down. */
#include "core/core_int.h"

#include <string.h>
#include <zlib.h>
#ifdef BM_HAVE_ISAL
#include <isa-l/igzip_lib.h>
#endif

/* Output is handed on in slices of this size: large enough that per-call overhead vanishes,
 * small enough to stay in L2 while the framer and parser read it. */
#define OUT_CHUNK (128 * 1024)

enum gz_state {
    GZ_DETECT,  /* fewer than two bytes seen */
    GZ_PLAIN,   /* not gzip: pass bytes through */
    GZ_MEMBER,  /* inside a gzip member */
    GZ_BETWEEN, /* a member ended; another may follow */
    GZ_MAGIC1,  /* between members, saw 0x1f */
};

struct bm__gunzip {
    enum bm_inflate engine; /* BM_INFLATE_ZLIB or BM_INFLATE_ISAL, never AUTO */
    z_stream zs;
    bool zs_ready;
#ifdef BM_HAVE_ISAL
    struct inflate_state *isal; /* ~40 KB: allocated on the first member */
#endif
    bool is_gzip;
    enum gz_state state;
    unsigned char first;
    uint64_t out_total;
    uint64_t max_out;
    unsigned char *out;
};

bool bm_inflate_has_isal(void)
{
#ifdef BM_HAVE_ISAL
    return true;
#else
    return false;
#endif
}

bool bm_inflate_parse(const char *name, enum bm_inflate *out)
{
    if (strcmp(name, "auto") == 0)
        *out = BM_INFLATE_AUTO;
    else if (strcmp(name, "zlib") == 0)
        *out = BM_INFLATE_ZLIB;
    else if (strcmp(name, "isal") == 0 && bm_inflate_has_isal())
        *out = BM_INFLATE_ISAL;
    else
        return false;
    return true;
}

/* AUTO resolved: ISA-L when built in. */
static enum bm_inflate resolve(enum bm_inflate e)
{
    if (e == BM_INFLATE_AUTO)
        return bm_inflate_has_isal() ? BM_INFLATE_ISAL : BM_INFLATE_ZLIB;
    return e;
}

struct bm__gunzip *bm__gunzip_new(uint64_t max_out, enum bm_inflate engine)
{
    struct bm__gunzip *g = bm_calloc(1, sizeof *g);
    if (g == NULL)
        return NULL;
    g->engine = resolve(engine);
    g->out = bm_malloc(OUT_CHUNK);
    if (g->out == NULL) {
        bm_free(g);
        return NULL;
    }
    g->max_out = max_out;
    g->state = GZ_DETECT;
    return g;
}

void bm__gunzip_free(struct bm__gunzip *g)
{
    if (g == NULL)
        return;
    if (g->zs_ready)
        inflateEnd(&g->zs);
#ifdef BM_HAVE_ISAL
    bm_free(g->isal);
#endif
    bm_free(g->out);
    bm_free(g);
}

bool bm__gunzip_is_gzip(const struct bm__gunzip *g)
{
    return g->is_gzip;
}

uint64_t bm__gunzip_out_bytes(const struct bm__gunzip *g)
{
    return g->out_total;
}

static bm_err pass_out(struct bm__gunzip *g, const char *p, size_t n, bm__bytes_fn fn, void *ctx)
{
    if (n > g->max_out - g->out_total)
        return BM_E_INFLATE_CAP;
    g->out_total += n;
    return n > 0 ? fn(ctx, p, n) : BM_OK;
}

static bm_err zlib_start(struct bm__gunzip *g)
{
    if (g->zs_ready)
        return inflateReset(&g->zs) == Z_OK ? BM_OK : BM_E_INTERNAL;
    memset(&g->zs, 0, sizeof g->zs);
    g->zs.zalloc = bm__z_alloc;
    g->zs.zfree = bm__z_free;
    int zrc = inflateInit2(&g->zs, 16 + MAX_WBITS); /* 16: gzip wrapper only */
    if (zrc == Z_MEM_ERROR)
        return BM_E_NOMEM;
    if (zrc != Z_OK)
        return BM_E_INTERNAL;
    g->zs_ready = true;
    return BM_OK;
}

/* Inflates in[0..len) of the current member; sets *used to the bytes consumed, which is less
 * than len when the member ended inside the input. */
static bm_err zlib_some(struct bm__gunzip *g, const unsigned char *in, size_t len, size_t *used,
                        bm__bytes_fn fn, void *ctx)
{
    g->zs.next_in = (unsigned char *)in;
    g->zs.avail_in = (uInt)len;
    for (;;) {
        g->zs.next_out = g->out;
        g->zs.avail_out = OUT_CHUNK;
        int zrc = inflate(&g->zs, Z_NO_FLUSH);
        size_t produced = OUT_CHUNK - g->zs.avail_out;
        bm_err rc = pass_out(g, (const char *)g->out, produced, fn, ctx);
        if (rc != BM_OK)
            return rc;
        if (zrc == Z_STREAM_END) {
            g->state = GZ_BETWEEN;
            break;
        }
        if (zrc == Z_MEM_ERROR)
            return BM_E_NOMEM;
        if (zrc != Z_OK && zrc != Z_BUF_ERROR)
            return BM_E_GZIP; /* Z_DATA_ERROR: corrupt data or a bad header/CRC */
        if (g->zs.avail_in == 0 && g->zs.avail_out != 0)
            break; /* everything consumed, waiting for more input */
        if (zrc == Z_BUF_ERROR && produced == 0)
            break;
    }
    *used = len - g->zs.avail_in;
    return BM_OK;
}

#ifdef BM_HAVE_ISAL
/* ISA-L's inflate (about three times zlib's speed on x86-64), parsing the gzip header and
 * checking the trailer's CRC and length itself (ISAL_GZIP), so a corrupt member fails as it
 * does with zlib. */
static bm_err isal_start(struct bm__gunzip *g)
{
    if (g->isal == NULL && (g->isal = bm_malloc(sizeof *g->isal)) == NULL)
        return BM_E_NOMEM;
    isal_inflate_init(g->isal);
    g->isal->crc_flag = ISAL_GZIP;
    return BM_OK;
}

static bm_err isal_some(struct bm__gunzip *g, const unsigned char *in, size_t len, size_t *used,
                        bm__bytes_fn fn, void *ctx)
{
    struct inflate_state *st = g->isal;
    /* avail_in is 32 bits: a longer piece goes in parts. */
    size_t done = 0;
    while (done < len && g->state == GZ_MEMBER) {
        size_t part = len - done > (1u << 30) ? (1u << 30) : len - done;
        st->next_in = (uint8_t *)(uintptr_t)(in + done);
        st->avail_in = (uint32_t)part;
        for (;;) {
            st->next_out = g->out;
            st->avail_out = OUT_CHUNK;
            int r = isal_inflate(st);
            size_t produced = OUT_CHUNK - st->avail_out;
            bm_err rc = pass_out(g, (const char *)g->out, produced, fn, ctx);
            if (rc != BM_OK)
                return rc;
            if (r != ISAL_DECOMP_OK && r != ISAL_END_INPUT && r != ISAL_OUT_OVERFLOW)
                return BM_E_GZIP; /* invalid block, symbol, lookback, wrapper or checksum */
            if (st->block_state == ISAL_BLOCK_FINISH) {
                g->state = GZ_BETWEEN;
                break;
            }
            if (st->avail_in == 0 && st->avail_out != 0)
                break; /* everything consumed, waiting for more input */
        }
        done += part - st->avail_in;
        if (st->avail_in != 0)
            break; /* the member ended inside this part */
    }
    *used = done;
    return BM_OK;
}
#endif

static bm_err start_member(struct bm__gunzip *g)
{
#ifdef BM_HAVE_ISAL
    if (g->engine == BM_INFLATE_ISAL)
        return isal_start(g);
#endif
    return zlib_start(g);
}

/* Inflates in[0..len) of the current member; sets *used to the bytes consumed, which is less
 * than len when the member ended inside the input. */
static bm_err inflate_some(struct bm__gunzip *g, const unsigned char *in, size_t len, size_t *used,
                           bm__bytes_fn fn, void *ctx)
{
#ifdef BM_HAVE_ISAL
    if (g->engine == BM_INFLATE_ISAL)
        return isal_some(g, in, len, used, fn, ctx);
#endif
    return zlib_some(g, in, len, used, fn, ctx);
}

bm_err bm__gunzip_feed(struct bm__gunzip *g, const void *data, size_t len, bm__bytes_fn fn,
                       void *ctx)
{
    const unsigned char *p = data;
    static const unsigned char magic[2] = {0x1f, 0x8b};
    while (len > 0) {
        switch (g->state) {
        case GZ_DETECT:
            if (p[0] == 0x1f) {
                g->state = GZ_MAGIC1;
                p++;
                len--;
                break;
            }
            g->state = GZ_PLAIN;
            break;
        case GZ_MAGIC1:
            if (p[0] == 0x8b) {
                /* A gzip member starts: feed the two magic bytes, then the rest. */
                size_t used;
                bm_err rc = start_member(g);
                if (rc == BM_OK) {
                    g->is_gzip = true;
                    g->state = GZ_MEMBER;
                    rc = inflate_some(g, magic, 2, &used, fn, ctx);
                }
                if (rc != BM_OK)
                    return rc;
                p++;
                len--;
                break;
            }
            if (g->is_gzip)
                return BM_E_GZIP; /* garbage after a member */
            /* Plain data that happened to start with 0x1f: hand that byte on. */
            g->state = GZ_PLAIN;
            {
                bm_err rc = pass_out(g, (const char *)magic, 1, fn, ctx);
                if (rc != BM_OK)
                    return rc;
            }
            break;
        case GZ_PLAIN:
            return pass_out(g, (const char *)p, len, fn, ctx);
        case GZ_MEMBER: {
            size_t used = 0;
            bm_err rc = inflate_some(g, p, len, &used, fn, ctx);
            if (rc != BM_OK)
                return rc;
            p += used;
            len -= used;
            break;
        }
        case GZ_BETWEEN:
            /* gzip(1) accepts zero padding after the last member (tape blocks); anything else
             * must be another member. */
            if (p[0] == 0) {
                p++;
                len--;
            } else if (p[0] == 0x1f) {
                g->state = GZ_MAGIC1;
                p++;
                len--;
            } else {
                return BM_E_GZIP;
            }
            break;
        }
    }
    return BM_OK;
}

bm_err bm__gunzip_finish(struct bm__gunzip *g, bm__bytes_fn fn, void *ctx)
{
    switch (g->state) {
    case GZ_MEMBER:
        return BM_E_GZIP; /* the object stopped inside a member: truncated */
    case GZ_MAGIC1:
        if (g->is_gzip)
            return BM_E_GZIP;
        return pass_out(g, "\x1f", 1, fn, ctx); /* a one-byte plain object */
    case GZ_DETECT:
    case GZ_PLAIN:
    case GZ_BETWEEN:
        break;
    }
    return BM_OK;
}
