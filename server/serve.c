/* serve.c: `bmas serve`: wires the service together (database, AWS clients, fetch workers,
 * publisher, optional SQS consumer, HTTP) and takes it down cleanly on SIGTERM/SIGINT:
 * stop accepting, drain requests in flight, stop the threads, close the database. */
#include "server/srv_int.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#define DRAIN_MS 30000

static int usage_error(FILE *err, const char *msg, const char *arg)
{
    fprintf(err, "bmas serve: %s \"%s\" (see bmas --help)\n", msg, arg);
    return BM_EXIT_USAGE;
}

/* --listen, --db and --port-file; the first two are the env variables' flags (G6). */
static int parse_flags(struct bm_config *cfg, int argc, char **argv, const char **port_file,
                       FILE *err)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *name = NULL;
        if (strcmp(a, "--listen") == 0)
            name = "BMAS_LISTEN";
        else if (strcmp(a, "--db") == 0)
            name = "BMAS_DB";
        else if (strcmp(a, "--port-file") == 0)
            name = "";
        else
            return usage_error(err, "unknown option", a);
        if (i + 1 >= argc)
            return usage_error(err, "missing value for", a);
        const char *v = argv[++i];
        if (*name == '\0') {
            *port_file = v;
            continue;
        }
        struct bm_errmsg em;
        if (bm_config_set(cfg, name, v, &em) != BM_OK)
            return usage_error(err, em.text, a);
    }
    return BM_EXIT_OK;
}

static bm_err setup(struct bm_srv *s, struct bm_errmsg *em)
{
    const struct bm_config *cfg = s->cfg;
    /* Every configuration error before anything is created (no stray database file). */
    bm_err rc = bm__http_check_listen(cfg->listen, em);
    if (rc == BM_OK)
        rc = bm_app_map_parse(cfg->app_profile_map, &s->app_map, em);
    if (rc == BM_OK)
        rc = bm_dimsets_parse(cfg->dimension_sets, &s->dims, em);
    if (rc == BM_OK && cfg->prices[0] != '\0')
        rc = bm_prices_load(cfg->prices, &s->prices, em);
    if (rc == BM_OK)
        rc = bm_attr_keys_parse(cfg->attribution_keys, s->attr_buf, sizeof s->attr_buf, &s->attrs,
                                em);
    uint64_t price;
    if (rc == BM_OK)
        rc = bm__cw_price_parse(cfg->cloudwatch_metric_price, &price, em);
    if (rc != BM_OK)
        return rc;
    bm_ingest_opts_init(&s->iopts, cfg, s->app_map);
    s->iopts.prices = s->prices;
    s->iopts.attrs = s->attrs;
    struct bm_db_options dbo = {.max_connections = (int)cfg->db_max_connections,
                                .attr_max_values = (int)cfg->attribution_max_values};
    rc = bm_db_open(cfg->db_path, &dbo, &s->db, em);
    if (rc != BM_OK)
        return rc;
    struct bm_http_curl_opts ho = {0};
    s->clock = bm_stop_clock(&s->stop);
    if ((rc = bm_http_curl_new(&ho, &s->http)) != BM_OK ||
        (rc = bm_creds_provider_new(cfg, &s->http, &s->clock, &s->creds)) != BM_OK ||
        (s->s3_regions = bm_s3_regions_new(BM_S3_REGIONS_DEFAULT_CAP)) == NULL)
        return bm_errmsg_set(em, rc != BM_OK ? rc : BM_E_NOMEM, "cannot set up the AWS client");
    if ((s->metrics = bm_metrics_new()) == NULL)
        return bm_errmsg_set(em, BM_E_NOMEM, "cannot set up the metrics");
    s->aws =
        (struct bm_aws){cfg, &s->http, s->creds, &s->clock, s->s3_regions, &s->stop, s->metrics};
    struct bm_creds c;
    struct bm_errmsg cem = {{0}};
    if (bm_creds_get(s->creds, &c, &cem) == BM_OK)
        BM_LOG(BM_INFO, "server", "credentials", "AWS credentials found",
               BM_KV_STR("source", c.source), BM_KV_STR("access_key_id", c.akid));
    else
        BM_LOG(BM_WARN, "server", "credentials", cem.text, BM_KV_ERR(BM_E_NO_CREDENTIALS));
    bm_secure_zero(&c, sizeof c);
    if (cfg->instance_id[0] != '\0') {
        snprintf(s->instance_id, sizeof s->instance_id, "%s", cfg->instance_id);
    } else {
        char host[128] = "";
        if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0')
            snprintf(host, sizeof host, "bmas");
        snprintf(s->instance_id, sizeof s->instance_id, "%s-%ld", host, (long)getpid());
    }
    BM_LOG(BM_INFO, "server", "instance", "instance id and store",
           BM_KV_STR("instance", s->instance_id), BM_KV_STR("store", bm_db_store_kind(s->db)));
    if ((rc = bm__pool_new((size_t)cfg->fetch_concurrency, &s->pool)) != BM_OK ||
        (rc = bm__publisher_start(s, &s->pub)) != BM_OK)
        return bm_errmsg_set(em, rc, "cannot start the worker threads");
    if (cfg->sqs_queue_url[0] != '\0' && (rc = bm__consumer_start(s, &s->consumer)) != BM_OK)
        return bm_errmsg_set(em, rc, "cannot start the SQS consumer");
    return BM_OK;
}

static void teardown(struct bm_srv *s)
{
    atomic_store(&s->stopping, true);
    bm_stop_set(&s->stop);
    bm__consumer_stop(s->consumer);
    bm__pool_free(s->pool);
    bm__publisher_stop(s->pub);
    bm_creds_provider_free(s->creds);
    bm_s3_regions_free(s->s3_regions);
    bm_http_curl_free(&s->http);
    bm_db_close(s->db);
    bm_app_map_free(s->app_map);
    bm_prices_free(s->prices);
    bm_stop_destroy(&s->stop);
    bm_metrics_free(s->metrics);
}

int bm_srv_cmd_serve(struct bm_config *cfg, int argc, char **argv, FILE *err)
{
    const char *port_file = NULL;
    int code = parse_flags(cfg, argc, argv, &port_file, err);
    if (code != BM_EXIT_OK)
        return code;
    /* Signals go to the main thread's sigwait only: block them before any thread starts. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct bm_srv s;
    memset(&s, 0, sizeof s);
    s.cfg = cfg;
    s.started_ms = bm_time_mono_ms();
    if (bm_stop_init(&s.stop) != BM_OK) {
        fprintf(err, "bmas serve: out of memory\n");
        return BM_EXIT_FAILED;
    }
    struct bm_errmsg em = {{0}};
    struct MHD_Daemon *d = NULL;
    int port = 0;
    bm_err rc = setup(&s, &em);
    if (rc == BM_OK)
        rc = bm__http_start(&s, &d, &port, &em);
    if (rc != BM_OK) {
        fprintf(err, "bmas serve: %s %s\n", bm_err_wire(rc), em.text);
        teardown(&s);
        return rc == BM_E_CONFIG ? BM_EXIT_USAGE : BM_EXIT_FAILED;
    }
    struct bm_buf cj;
    bm_buf_init(&cj, 1 << 20);
    bm_config_json(cfg, &cj);
    BM_LOG(BM_INFO, "server", "started", "bmas is serving", BM_KV_INT("port", port),
           BM_KV_STR("db", bm_db_describe(s.db)), BM_KV_RAW("config", cj.data ? cj.data : "{}"));
    bm_buf_cleanup(&cj);
    if (port_file != NULL) {
        FILE *f = fopen(port_file, "w");
        if (f != NULL) {
            fprintf(f, "%d\n", port);
            fclose(f);
        }
    }
    int sig = 0;
    sigwait(&set, &sig);
    BM_LOG(BM_INFO, "server", "stopping", "signal received: draining requests",
           BM_KV_INT("signal", sig), BM_KV_INT("inflight", atomic_load(&s.inflight)));
    atomic_store(&s.stopping, true);
    bm_stop_set(&s.stop); /* the consumer's long poll and any backoff end now */
    bm__http_stop(&s, d, DRAIN_MS);
    teardown(&s);
    BM_LOG(BM_INFO, "server", "stopped", "bmas stopped cleanly");
    return BM_EXIT_OK;
}
