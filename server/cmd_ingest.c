/* cmd_ingest.c: `bmas ingest`, the database-free way to look at Bedrock logs (and the
 * benchmark's probe). Each source is read in chunks into its own delta, which joins the
 * totals only when the whole source was read: a truncated object counts for nothing, exactly
 * as in the service. */
#include "server/bm_server.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define READ_CHUNK (256 * 1024)

struct ingest_args {
    bool json;
    const char *group_by;
    int nsources;
    char **sources;
};

static int parse_args(int argc, char **argv, struct ingest_args *a, FILE *err)
{
    memset(a, 0, sizeof *a);
    a->group_by = BM_GROUP_BY_DEFAULT;
    int i = 0;
    for (; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--json") == 0) {
            a->json = true;
        } else if (strcmp(s, "--group-by") == 0 && i + 1 < argc) {
            a->group_by = argv[++i];
        } else if (strncmp(s, "--group-by=", 11) == 0) {
            a->group_by = s + 11;
        } else if (strcmp(s, "--") == 0) {
            i++;
            break;
        } else if (s[0] == '-' && s[1] != '\0') {
            fprintf(err, "bmas ingest: unknown or incomplete option \"%s\"\n", s);
            return BM_EXIT_USAGE;
        } else {
            break;
        }
    }
    a->sources = argv + i;
    a->nsources = argc - i;
    for (int j = 0; j < a->nsources; j++) {
        if (a->sources[j][0] == '-' && a->sources[j][1] == '-') {
            fprintf(err, "bmas ingest: options go before the sources (\"%s\")\n", a->sources[j]);
            return BM_EXIT_USAGE;
        }
    }
    if (a->nsources == 0) {
        fprintf(err, "bmas ingest: no SOURCE given (a file, - for stdin)\n");
        return BM_EXIT_USAGE;
    }
    return BM_EXIT_OK;
}

/* Reads fd to the end into in. BM_E_IO with em on a read error. */
static bm_err feed_fd(struct bm_ingest *in, int fd, char *chunk, struct bm_errmsg *em)
{
    for (;;) {
        ssize_t n = read(fd, chunk, READ_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return bm_errmsg_set(em, BM_E_IO, "read failed: %s", strerror(errno));
        if (n == 0)
            return bm_ingest_finish(in);
        bm_err rc = bm_ingest_feed(in, chunk, (size_t)n);
        if (rc != BM_OK)
            return rc;
    }
}

struct totals {
    uint64_t sources, failed, ignored, records, invalid;
    uint64_t errors[BM_ERR_WIRE_N];
};

static bm_err ingest_source(const char *src, const struct bm_ingest_opts *o, struct bm_agg *all,
                            struct totals *t, char *chunk, FILE *err)
{
    struct bm_errmsg em = {{0}};
    bool is_stdin = strcmp(src, "-") == 0;
    enum bm_key_kind kind = is_stdin ? BM_KEY_LOG : bm_key_kind(src, strlen(src));
    if (kind != BM_KEY_LOG) {
        fprintf(err, "bmas ingest: %s: skipped, not a log object (%s)\n", src,
                bm_key_kind_name(kind));
        t->ignored++;
        return BM_OK;
    }
    int fd = is_stdin ? 0 : open(src, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        bm_errmsg_set(&em, BM_E_IO, "cannot open: %s", strerror(errno));
        fprintf(err, "bmas ingest: %s: %s %s\n", src, bm_err_wire(BM_E_IO), em.text);
        t->failed++;
        return BM_E_IO;
    }
    struct bm_ingest *in = bm_ingest_new(o, is_stdin ? NULL : src);
    bm_err rc = in ? feed_fd(in, fd, chunk, &em) : BM_E_NOMEM;
    if (!is_stdin)
        close(fd);
    if (rc == BM_OK)
        rc = bm_agg_merge(all, bm_ingest_agg(in));
    if (in != NULL) {
        const struct bm_ingest_stats *st = bm_ingest_stats(in);
        if (rc == BM_OK) {
            t->records += st->records;
            t->invalid += st->invalid;
            for (int i = 0; i < BM_ERR_WIRE_N; i++)
                t->errors[i] += st->errors[i];
        }
        if (st->first_error != BM_OK && rc == BM_OK)
            fprintf(err, "bmas ingest: %s: %llu record(s) skipped, first: record %llu: %s %s\n",
                    src, (unsigned long long)st->invalid,
                    (unsigned long long)st->first_error_record, bm_err_wire(st->first_error),
                    st->first_error_msg.text);
    }
    if (rc != BM_OK) {
        fprintf(err, "bmas ingest: %s: %s %s%s%s; nothing from it was counted\n", src,
                bm_err_wire(rc), bm_err_str(rc), em.text[0] ? ": " : "", em.text);
        t->failed++;
    }
    t->sources++;
    bm_ingest_free(in);
    return rc;
}

static int64_t range_of(const struct bm_agg *a, long width, bool want_max)
{
    int64_t v = BM_NO_BUCKET;
    for (size_t i = 0; i < bm_agg_count(a); i++) {
        int64_t b = bm_agg_at(a, i)->key.bucket;
        if (want_max)
            b += width;
        if (v == BM_NO_BUCKET || (want_max ? b > v : b < v))
            v = b;
    }
    return v;
}

static void print_summary(const struct totals *t, FILE *f)
{
    fprintf(f, "%llu source(s), %llu failed, %llu ignored; %llu records counted, %llu skipped",
            (unsigned long long)t->sources, (unsigned long long)t->failed,
            (unsigned long long)t->ignored, (unsigned long long)t->records,
            (unsigned long long)t->invalid);
    bool any = false;
    for (int i = 0; i < BM_ERR_WIRE_N; i++) {
        if (t->errors[i] == 0)
            continue;
        fprintf(f, "%s%s x%llu", any ? ", " : "; ", bm_err_wire_at(i),
                (unsigned long long)t->errors[i]);
        any = true;
    }
    fputc('\n', f);
}

int bm_srv_cmd_ingest(const struct bm_config *cfg, int argc, char **argv, FILE *out, FILE *err)
{
    struct ingest_args a;
    int code = parse_args(argc, argv, &a, err);
    if (code != BM_EXIT_OK)
        return code;
    struct bm_errmsg em = {{0}};
    struct bm_group_by g;
    if (bm_group_by_parse(a.group_by, &g, &em) != BM_OK) {
        fprintf(err, "bmas ingest: --group-by: %s\n", em.text);
        return BM_EXIT_USAGE;
    }
    struct bm_app_map *map = NULL;
    if (bm_app_map_parse(cfg->app_profile_map, &map, &em) != BM_OK) {
        fprintf(err, "bmas: %s\n", em.text);
        return BM_EXIT_USAGE;
    }
    struct bm_ingest_opts o;
    bm_ingest_opts_init(&o, cfg, map);
    /* The merged totals have no series cap: they are bounded by what the sources held. */
    struct bm_agg *all = bm_agg_new(0);
    struct bm_agg *grouped = NULL;
    char *chunk = bm_malloc(READ_CHUNK);
    struct totals t = {0};
    struct bm_buf b;
    bm_buf_init(&b, (size_t)1 << 32);
    code = BM_EXIT_FAILED;
    if (all == NULL || chunk == NULL)
        goto fail;
    for (int i = 0; i < a.nsources; i++)
        ingest_source(a.sources[i], &o, all, &t, chunk, err);
    if (bm_agg_regroup(all, &g, &grouped) != BM_OK)
        goto fail;
    bm_err rc = bm_agg_sort(grouped, &g);
    if (rc != BM_OK)
        goto fail;
    rc = a.json ? bm_agg_write_json(grouped, &g, range_of(all, o.bucket_seconds, false),
                                    range_of(all, o.bucket_seconds, true), &b)
                : bm_agg_write_table(grouped, &g, &b);
    if (rc != BM_OK)
        goto fail;
    fwrite(b.data, 1, b.len, out);
    fputc('\n', out);
    print_summary(&t, a.json ? err : out);
    code = t.failed > 0 ? BM_EXIT_FAILED : BM_EXIT_OK;
fail:
    if (code == BM_EXIT_FAILED && t.failed == 0)
        fprintf(err, "bmas ingest: out of memory\n");
    bm_buf_cleanup(&b);
    bm_free(chunk);
    bm_agg_free(grouped);
    bm_agg_free(all);
    bm_app_map_free(map);
    return code;
}
