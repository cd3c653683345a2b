/* cmd_sample.c: `bmas sample`, realistic Bedrock invocation logs stamped now (core/sample.c)
 * for `make run`, the compose feeder and tests, with the writer's own totals beside them so a
 * test compares bmas's counts with numbers bmas's parser never saw. */
#include "server/bm_server.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct sample_args {
    struct bm_sample_opts o;
    const char *out_path;
    const char *totals_path;
    bool key_only;
    bool has_start;
};

static int usage_error(FILE *err, const char *msg, const char *arg)
{
    fprintf(err, "bmas sample: %s \"%s\" (see bmas help sample)\n", msg, arg);
    return BM_EXIT_USAGE;
}

static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return false;
    *out = v;
    return true;
}

/* A Region or account goes into a key and ARNs: only the characters those can hold. */
static bool is_name(const char *s, const char *allowed, size_t max)
{
    size_t n = strlen(s);
    return n > 0 && n <= max && strspn(s, allowed) == n;
}

static int parse_args(int argc, char **argv, struct sample_args *a, FILE *err)
{
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n = 0;
        if (strcmp(s, "--plain") == 0) {
            a->o.plain = true;
            continue;
        }
        if (strcmp(s, "--key") == 0) {
            a->key_only = true;
            continue;
        }
        if (v == NULL)
            return usage_error(err, "unknown or incomplete option", s);
        i++;
        if (strcmp(s, "-o") == 0) {
            a->out_path = v;
        } else if (strcmp(s, "--totals") == 0) {
            a->totals_path = v;
        } else if (strcmp(s, "--region") == 0) {
            if (!is_name(v, "abcdefghijklmnopqrstuvwxyz0123456789-", 32))
                return usage_error(err, "--region takes a Region name, not", v);
            a->o.region = v;
        } else if (strcmp(s, "--account") == 0) {
            if (!is_name(v, "0123456789", 12) || strlen(v) != 12)
                return usage_error(err, "--account takes 12 digits, not", v);
            a->o.account = v;
        } else if (strcmp(s, "--records") == 0 || strcmp(s, "--kb") == 0 ||
                   strcmp(s, "--mb") == 0) {
            if (!parse_u64(v, 1ULL << 32, &n) || n == 0)
                return usage_error(err, "a size from 1 to 2^32, not", v);
            a->o.records = s[2] == 'r' ? n : 0;
            a->o.bytes = s[2] == 'k' ? n << 10 : s[2] == 'm' ? n << 20 : 0;
        } else if (strcmp(s, "--seed") == 0) {
            if (!parse_u64(v, UINT64_MAX, &a->o.seed))
                return usage_error(err, "--seed takes a number, not", v);
        } else if (strcmp(s, "--start") == 0) {
            if (!parse_u64(v, 253402300799ULL, &n)) /* 9999-12-31T23:59:59Z */
                return usage_error(err, "--start takes seconds since 1970, not", v);
            a->o.start = (int64_t)n;
            a->has_start = true;
        } else if (strcmp(s, "--span") == 0) {
            if (!parse_u64(v, 366ULL * 86400, &n))
                return usage_error(err, "--span takes seconds (at most a year), not", v);
            a->o.span = (int64_t)n;
        } else {
            return usage_error(err, "unknown or incomplete option", s);
        }
    }
    return BM_EXIT_OK;
}

static bm_err write_file(void *ctx, const void *p, size_t len)
{
    return fwrite(p, 1, len, (FILE *)ctx) == len ? BM_OK : BM_E_IO;
}

int bm_srv_cmd_sample(int argc, char **argv, FILE *out, FILE *err)
{
    struct sample_args a;
    memset(&a, 0, sizeof a);
    int64_t now = (int64_t)time(NULL);
    bm_sample_opts_init(&a.o, now);
    /* Different objects by default (the feeder calls it every 20 s); the seed is printed. */
    a.o.seed = ((uint64_t)now << 20) ^ (uint64_t)getpid();
    int rc = parse_args(argc, argv, &a, err);
    if (rc != BM_EXIT_OK)
        return rc;
    if (!a.has_start)
        a.o.start = now - a.o.span;
    struct bm_buf key, line;
    bm_buf_init(&key, 4096);
    bm_buf_init(&line, 4096);
    FILE *f = NULL;
    rc = BM_EXIT_FAILED;
    if (bm_sample_key(&a.o, &key) != BM_OK)
        goto done;
    if (a.key_only) {
        fprintf(out, "%s\n", key.data);
        rc = fflush(out) == 0 ? BM_EXIT_OK : BM_EXIT_FAILED;
        goto done;
    }
    if (a.out_path == NULL && !a.o.plain && isatty(fileno(out))) {
        fprintf(err, "bmas sample: gzip data on a terminal: use -o FILE, a pipe, or --plain\n");
        rc = BM_EXIT_USAGE;
        goto done;
    }
    f = a.out_path != NULL ? fopen(a.out_path, "wb") : out;
    if (f == NULL) {
        fprintf(err, "bmas sample: %s: %s\n", a.out_path, strerror(errno));
        goto done;
    }
    struct bm_sample_totals t;
    struct bm_errmsg em = {{0}};
    bm_err e = bm_sample_write(&a.o, write_file, f, &t, &em);
    if (e == BM_OK && fflush(f) != 0)
        e = bm_errmsg_set(&em, BM_E_IO, "write failed: %s", strerror(errno));
    if (a.out_path != NULL && fclose(f) != 0 && e == BM_OK)
        e = bm_errmsg_set(&em, BM_E_IO, "write failed: %s", strerror(errno));
    f = NULL;
    if (e != BM_OK) {
        fprintf(err, "bmas sample: %s %s\n", bm_err_wire(e), em.text);
        goto done;
    }
    if (bm_sample_totals_json(&a.o, &t, key.data, &line) != BM_OK)
        goto done;
    FILE *tf = a.totals_path != NULL ? fopen(a.totals_path, "a") : err;
    if (tf == NULL) {
        fprintf(err, "bmas sample: %s: %s\n", a.totals_path, strerror(errno));
        goto done;
    }
    bool ok = fputs(line.data, tf) >= 0;
    ok = (tf == err ? fflush(tf) == 0 : fclose(tf) == 0) && ok;
    rc = ok ? BM_EXIT_OK : BM_EXIT_FAILED;
done:
    if (f != NULL && f != out)
        fclose(f);
    bm_buf_cleanup(&key);
    bm_buf_cleanup(&line);
    return rc;
}
