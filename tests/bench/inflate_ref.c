/* inflate_ref.c: the benchmark's floor: zlib inflate alone over a gzip file (multi-member),
 * output discarded. Prints the uncompressed byte count. usage: inflate_ref FILE.gz */
#include <stdio.h>
#include <string.h>
#include <zlib.h>

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    FILE *f = fopen(argv[1], "rb");
    if (f == NULL)
        return 1;
    static unsigned char in[256 * 1024], out[128 * 1024];
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
        return 1;
    unsigned long long total = 0;
    size_t n;
    while ((n = fread(in, 1, sizeof in, f)) > 0) {
        zs.next_in = in;
        zs.avail_in = (uInt)n;
        while (zs.avail_in > 0) {
            zs.next_out = out;
            zs.avail_out = sizeof out;
            int rc = inflate(&zs, Z_NO_FLUSH);
            total += sizeof out - zs.avail_out;
            if (rc == Z_STREAM_END)
                inflateReset(&zs);
            else if (rc != Z_OK && rc != Z_BUF_ERROR)
                return 1;
        }
    }
    inflateEnd(&zs);
    fclose(f);
    printf("%llu\n", total);
    return 0;
}
