/* cmd_ingest.c: `bmas ingest`, the database-free way to look at Bedrock logs (and the
 * benchmark's probe). Sources are files, `-` for stdin, or s3:// URIs (backfill.c). Each
 * object is read into its own delta, which joins the totals only when the whole object was
 * read: a truncated or failed object counts for nothing, exactly as in the service. */
#include "server/srv_int.h"

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
        fprintf(err, "bmas ingest: no SOURCE given (a file, - for stdin, s3://bucket/key or "
                     "s3://bucket/prefix/)\n");
        return BM_EXIT_USAGE;
    }
    return BM_EXIT_OK;
}

bm_err bm__ingest_account(struct bm__ingest_run *r, const char *name, struct bm_ingest *in,
                          bm_err rc, const struct bm_errmsg *em)
{
    pthread_mutex_lock(&r->mu);
    const char *nl = r->tty && r->objects_seen > 0 ? "\n" : ""; /* off the progress line */
    if (rc == BM_OK && in != NULL)
        rc = bm_agg_merge(r->all, bm_ingest_agg(in));
    if (rc == BM_OK && in != NULL) {
        const struct bm_ingest_stats *st = bm_ingest_stats(in);
        r->records += st->records;
        r->invalid += st->invalid;
        for (int i = 0; i < BM_ERR_WIRE_N; i++)
            r->errors[i] += st->errors[i];
        if (st->first_error != BM_OK)
            fprintf(r->err,
                    "%sbmas ingest: %s: %llu record(s) skipped, first: record %llu: %s %s\n", nl,
                    name, (unsigned long long)st->invalid,
                    (unsigned long long)st->first_error_record, bm_err_wire(st->first_error),
                    st->first_error_msg.text);
    }
    if (rc != BM_OK) {
        const char *detail = em != NULL ? em->text : "";
        fprintf(r->err, "%sbmas ingest: %s: %s %s%s%s; nothing from it was counted\n", nl, name,
                bm_err_wire(rc), bm_err_str(rc), detail[0] ? ": " : "", detail);
        r->failed++;
        int idx = bm_err_wire_index(rc);
        if (idx >= 0)
            r->errors[idx]++;
    }
    r->sources++;
    pthread_mutex_unlock(&r->mu);
    return rc;
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

static bm_err ingest_file(struct bm__ingest_run *r, const char *src, char *chunk)
{
    struct bm_errmsg em = {{0}};
    bool is_stdin = strcmp(src, "-") == 0;
    enum bm_key_kind kind = is_stdin ? BM_KEY_LOG : bm_key_kind(src, strlen(src));
    if (kind != BM_KEY_LOG) {
        fprintf(r->err, "bmas ingest: %s: skipped, not a log object (%s)\n", src,
                bm_key_kind_name(kind));
        r->ignored++;
        return BM_OK;
    }
    int fd = is_stdin ? 0 : open(src, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        bm_errmsg_set(&em, BM_E_IO, "cannot open: %s", strerror(errno));
        return bm__ingest_account(r, src, NULL, BM_E_IO, &em);
    }
    struct bm_ingest *in = bm_ingest_new(&r->o, is_stdin ? NULL : src);
    bm_err rc = in ? feed_fd(in, fd, chunk, &em) : BM_E_NOMEM;
    if (!is_stdin)
        close(fd);
    rc = bm__ingest_account(r, src, in, rc, &em);
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

void bm__ingest_summary(const struct bm__ingest_run *r, FILE *f)
{
    /* The cost first: scripts read the summary from the last line. */
    struct bm_counters t = {0};
    struct bm_buf usd;
    if (r->all != NULL)
        bm_agg_totals(r->all, &t);
    bm_buf_init(&usd, 64);
    if (r->o.prices == NULL)
        fprintf(f, "cost: not computed (set BMAS_PRICES to a price file, e.g. docs/prices.csv)\n");
    else if (bm_cost_append_usd(&usd, &t.cost) == BM_OK)
        fprintf(f, "cost: %s USD for the priced invocations; %llu invocation(s) unpriced\n",
                usd.data, (unsigned long long)t.unpriced);
    bm_buf_cleanup(&usd);
    fprintf(f, "%llu source(s), %llu failed, %llu ignored; %llu records counted, %llu skipped",
            (unsigned long long)r->sources, (unsigned long long)r->failed,
            (unsigned long long)r->ignored, (unsigned long long)r->records,
            (unsigned long long)r->invalid);
    bool any = false;
    for (int i = 0; i < BM_ERR_WIRE_N; i++) {
        if (r->errors[i] == 0)
            continue;
        fprintf(f, "%s%s x%llu", any ? ", " : "; ", bm_err_wire_at(i),
                (unsigned long long)r->errors[i]);
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
    char abuf[256];
    struct bm_attr_keys attrs;
    if (bm_attr_keys_parse(cfg->attribution_keys, abuf, sizeof abuf, &attrs, &em) != BM_OK) {
        fprintf(err, "bmas: %s\n", em.text);
        return BM_EXIT_USAGE;
    }
    if (bm_group_by_parse_attrs(a.group_by, &attrs, &g, &em) != BM_OK) {
        fprintf(err, "bmas ingest: --group-by: %s\n", em.text);
        return BM_EXIT_USAGE;
    }
    struct bm_app_map *map = NULL;
    if (bm_app_map_parse(cfg->app_profile_map, &map, &em) != BM_OK) {
        fprintf(err, "bmas: %s\n", em.text);
        return BM_EXIT_USAGE;
    }
    struct bm_prices *prices = NULL;
    if (cfg->prices[0] != '\0' && bm_prices_load(cfg->prices, &prices, &em) != BM_OK) {
        fprintf(err, "bmas: %s %s\n", bm_err_wire(BM_E_CONFIG), em.text);
        bm_app_map_free(map);
        return BM_EXIT_USAGE;
    }
    struct bm__ingest_run r;
    memset(&r, 0, sizeof r);
    r.cfg = cfg;
    r.err = err;
    r.tty = isatty(fileno(err)) == 1;
    pthread_mutex_init(&r.mu, NULL);
    bm_ingest_opts_init(&r.o, cfg, map);
    r.o.prices = prices;
    r.o.attrs = attrs;
    /* The merged totals have no series cap: they are bounded by what the sources held. */
    r.all = bm_agg_new(0);
    struct bm_agg *grouped = NULL;
    char *chunk = bm_malloc(READ_CHUNK);
    struct bm_buf b;
    bm_buf_init(&b, (size_t)1 << 32);
    code = BM_EXIT_FAILED;
    if (r.all == NULL || chunk == NULL)
        goto fail;
    for (int i = 0; i < a.nsources; i++) {
        if (strncmp(a.sources[i], "s3://", 5) == 0)
            bm__backfill(&r, a.sources[i]);
        else
            ingest_file(&r, a.sources[i], chunk);
    }
    if (bm_agg_regroup(r.all, &g, &grouped) != BM_OK)
        goto fail;
    bm_err rc = bm_agg_sort(grouped, &g);
    if (rc != BM_OK)
        goto fail;
    rc = a.json ? bm_agg_write_json(grouped, &g, range_of(r.all, r.o.bucket_seconds, false),
                                    range_of(r.all, r.o.bucket_seconds, true), &b)
                : bm_agg_write_table(grouped, &g, &b);
    if (rc != BM_OK)
        goto fail;
    fwrite(b.data, 1, b.len, out);
    fputc('\n', out);
    bm__ingest_summary(&r, a.json ? err : out);
    code = r.failed > 0 ? BM_EXIT_FAILED : BM_EXIT_OK;
fail:
    if (code == BM_EXIT_FAILED && r.failed == 0)
        fprintf(err, "bmas ingest: out of memory\n");
    bm_buf_cleanup(&b);
    bm_free(chunk);
    bm_agg_free(grouped);
    bm_agg_free(r.all);
    if (r.aws_ready) {
        bm_creds_provider_free(r.creds);
        bm_s3_regions_free(r.s3_regions);
        bm_http_curl_free(&r.http);
    }
    pthread_mutex_destroy(&r.mu);
    bm_app_map_free(map);
    bm_prices_free(prices);
    return code;
}
