/* main.c: the bmas binary. Loads the configuration once (docs/style.md G6), sets up logging and
 * libcurl's global state before any thread exists, and dispatches to a command. */
#include "server/bm_server.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *env_get(const char *name)
{
    return getenv(name);
}

static void usage(FILE *f)
{
    fputs("usage: bmas [serve] [--listen ADDR:PORT] [--db PATH] [--port-file FILE]\n"
          "       bmas ingest [--json] [--group-by LIST] SOURCE...\n"
          "       bmas dashboard [--values DIMENSION=V1,V2]... [--period SECONDS]\n"
          "       bmas alarms [--name-prefix NAME] [--dlq QUEUE] [--sns-topic ARN]\n"
          "       bmas --help | --version\n"
          "\n"
          "  serve    run the HTTP service (the default): POST /events, GET /status,\n"
          "           GET /aggregates, POST /flush, GET /healthz\n"
          "  ingest   read Bedrock invocation-log objects (gzip or plain JSON lines; FILE,\n"
          "           - for stdin, s3://bucket/key, s3://bucket/prefix/ to backfill from S3)\n"
          "           and print their aggregates; --json gives the\n"
          "           GET /aggregates shape; --group-by takes a comma list of minute,\n"
          "           model_id, profile_type, profile_id, source_region, inference_region,\n"
          "           operation (default " BM_GROUP_BY_DEFAULT ")\n"
          "  dashboard  print a CloudWatch dashboard body (JSON) for BMAS_DIMENSION_SETS and\n"
          "           CLOUDWATCH_NAMESPACE: InputTokens, OutputTokens and InvocationCount per\n"
          "           set; the values listed are --values, else CrossRegion,GlobalCrossRegion\n"
          "           for a profile type and AWS_REGION for a Region; other sets use SEARCH\n"
          "           (default period 300)\n"
          "  alarms   print put-metric-alarm inputs, one JSON object a line (for\n"
          "           --cli-input-json): NAME-dlq (messages in the DLQ, default queue\n"
          "           bedrock-metrics-aggregator-dlq), NAME-publish-failures (BMAS-004, from a\n"
          "           log metric filter), NAME-no-data (no invocation for an hour; needs the\n"
          "           set ()); NAME defaults to bmas\n"
          "\n"
          "exit status: 0 ok, 1 a source or the service failed, 2 usage or configuration\n"
          "\n"
          "environment:\n",
          f);
    struct bm_buf b;
    bm_buf_init(&b, 1 << 20);
    if (bm_config_help(&b) == BM_OK)
        fputs(b.data, f);
    bm_buf_cleanup(&b);
}

int main(int argc, char **argv)
{
    struct bm_config cfg;
    struct bm_errmsg em = {{0}};
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return BM_EXIT_OK;
    }
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("bmas %s\n", BM_VERSION);
        return BM_EXIT_OK;
    }
    if (bm_config_load(&cfg, env_get, &em) != BM_OK) {
        fprintf(stderr, "bmas: %s\n", em.text);
        bm_config_cleanup(&cfg);
        return BM_EXIT_USAGE;
    }
    bm_log_set_level(cfg.log_level);
    /* Before any thread exists (libcurl's rule). */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "bmas: libcurl failed to initialise\n");
        bm_config_cleanup(&cfg);
        return BM_EXIT_FAILED;
    }
    int rc;
    bool ingest = argc > 1 && strcmp(argv[1], "ingest") == 0;
    bm_config_warn_unused(env_get, !ingest);
    if (ingest) {
        rc = bm_srv_cmd_ingest(&cfg, argc - 2, argv + 2, stdout, stderr);
    } else if (argc > 1 && strcmp(argv[1], "dashboard") == 0) {
        rc = bm_srv_cmd_dashboard(&cfg, argc - 2, argv + 2, stdout, stderr);
    } else if (argc > 1 && strcmp(argv[1], "alarms") == 0) {
        rc = bm_srv_cmd_alarms(&cfg, argc - 2, argv + 2, stdout, stderr);
    } else if (argc == 1 || strcmp(argv[1], "serve") == 0) {
        rc = bm_srv_cmd_serve(&cfg, argc > 1 ? argc - 2 : 0, argv + 2, stderr);
    } else if (argv[1][0] == '-') {
        rc = bm_srv_cmd_serve(&cfg, argc - 1, argv + 1, stderr); /* serve is the default */
    } else {
        fprintf(stderr, "bmas: unknown command \"%s\" (see bmas --help)\n",
                argc > 1 ? argv[1] : "serve");
        rc = BM_EXIT_USAGE;
    }
    bm_config_cleanup(&cfg);
    curl_global_cleanup();
    return rc;
}
