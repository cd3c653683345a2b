/* help.c: every command's help in one table, so `bmas help`, `bmas help COMMAND` and
 * `bmas COMMAND --help` say the same thing, and the README's usage section can be checked
 * against them (tests/integration/test_docs.sh). */
#include "server/bm_server.h"

#include <string.h>

/* env: NULL means the whole configuration table (bm_config_help), else the text to print. */
static const struct cmd_help {
    const char *name;
    const char *usage;
    const char *summary;
    const char *text;
    const char *env;
} cmds[] = {
    {"serve", "bmas [serve] [--listen ADDR:PORT] [--db PATH] [--port-file FILE]",
     "run the HTTP service (the default; with BMAS_SQS_QUEUE_URL, a queue consumer)",
     "Runs the HTTP service (the default command): POST /events, GET /status,\n"
     "GET /aggregates, POST /flush, GET /healthz; with BMAS_SQS_QUEUE_URL set it also\n"
     "consumes that SQS queue. Stops cleanly on SIGTERM or SIGINT.\n"
     "\n"
     "options:\n"
     "  --listen ADDR:PORT   address to listen on (BMAS_LISTEN); port 0 picks a free one\n"
     "  --db PATH|URL        the SQLite database, or a postgresql:// URL (BMAS_DB)\n"
     "  --port-file FILE     write the bound port to FILE once listening\n"
     "  -h, --help           this help\n",
     NULL},
    {"ingest", "bmas ingest [--json] [--group-by LIST] SOURCE...",
     "print the aggregates of log objects (files, stdin, S3), no database",
     "Reads Bedrock invocation-log objects (gzip or plain JSON lines; FILE, - for stdin,\n"
     "s3://bucket/key, s3://bucket/prefix/ to backfill from S3) and prints their\n"
     "aggregates, with no database.\n"
     "\n"
     "options:\n"
     "  --json               print the GET /aggregates document instead of a table\n"
     "  --group-by LIST      comma list of minute, model_id, profile_type, profile_id,\n"
     "                       source_region, inference_region, operation\n"
     "                       (default " BM_GROUP_BY_DEFAULT ")\n"
     "  -h, --help           this help\n",
     NULL},
    {"sample",
     "bmas sample [-o FILE] [--records N | --kb N | --mb N] [--seed N] [--start EPOCH]\n"
     "            [--span SECONDS] [--region REGION] [--account ID] [--plain] [--totals FILE]\n"
     "            [--key]",
     "write a realistic Bedrock log object stamped now, with its own totals",
     "Writes one realistic Bedrock model-invocation log object (gzip JSON lines; every\n"
     "modelId shape: on-demand, geographic and global cross-Region profiles, application\n"
     "inference profile ARNs; cache read and write tokens), spread over the --span seconds\n"
     "before now unless --start is given. Prints its own totals as one JSON line on stderr\n"
     "(seed, records, invocations, input_tokens, output_tokens, cache_read_input_tokens,\n"
     "cache_write_input_tokens, by_profile_type, and the key Bedrock would deliver it under:\n"
     "AWSLogs/ACCOUNT/BedrockModelInvocationLogs/REGION/YYYY/MM/DD/HH/...json.gz).\n"
     "\n"
     "options:\n"
     "  -o FILE              write the object to FILE [stdout; gzip not on a terminal]\n"
     "  --records N          records to write [100]\n"
     "  --kb N               write about N KiB of JSON instead (2-4 KB records)\n"
     "  --mb N               write about N MiB of JSON instead\n"
     "  --seed N             the same seed and options write the same bytes\n"
     "                       [from the clock and process id; printed in the totals]\n"
     "  --start EPOCH        time of the first record, in seconds since 1970 [now - span]\n"
     "  --span SECONDS       seconds the records spread over [300]\n"
     "  --region REGION      the records' source Region and the key's [us-east-1]\n"
     "  --account ID         the account in records, ARNs and the key [123456789012]\n"
     "  --plain              JSON lines, not gzip\n"
     "  --totals FILE        append the totals line to FILE instead of stderr\n"
     "  --key                print only the object's key on stdout (nothing is written)\n"
     "  -h, --help           this help\n",
     "environment: none (bmas sample reads no configuration)\n"},
    {"dashboard", "bmas dashboard [--values DIMENSION=V1,V2]... [--period SECONDS]",
     "print a CloudWatch dashboard body for the published metrics",
     "Prints a CloudWatch dashboard body (JSON) for BMAS_DIMENSION_SETS and\n"
     "CLOUDWATCH_NAMESPACE: InputTokens, OutputTokens and InvocationCount per set.\n"
     "\n"
     "options:\n"
     "  --values DIMENSION=V1,V2  the values a set lists (repeatable, at most 32 each);\n"
     "                       else CrossRegion,GlobalCrossRegion for a profile type and\n"
     "                       AWS_REGION for a Region; other sets use SEARCH\n"
     "  --period SECONDS     10, 30 or a multiple of 60 [300]\n"
     "  -h, --help           this help\n",
     "environment:\n"
     "  BMAS_DIMENSION_SETS, CLOUDWATCH_NAMESPACE, AWS_REGION (AWS_DEFAULT_REGION)\n"
     "  (see bmas help serve for their defaults)\n"},
    {"alarms", "bmas alarms [--name-prefix NAME] [--dlq QUEUE] [--sns-topic ARN]",
     "print put-metric-alarm inputs (DLQ, publish failures, no data)",
     "Prints put-metric-alarm inputs, one JSON object a line (for --cli-input-json):\n"
     "NAME-dlq (messages in the DLQ), NAME-publish-failures (BMAS-004, from a log metric\n"
     "filter), NAME-no-data (no invocation for an hour; needs the set ()).\n"
     "\n"
     "options:\n"
     "  --name-prefix NAME   alarm name prefix [bmas]\n"
     "  --dlq QUEUE          the dead-letter queue's name [bedrock-metrics-aggregator-dlq]\n"
     "  --sns-topic ARN      the alarms' action\n"
     "  -h, --help           this help\n",
     "environment:\n"
     "  BMAS_DIMENSION_SETS, CLOUDWATCH_NAMESPACE\n"
     "  (see bmas help serve for their defaults)\n"},
    {"help", "bmas help [COMMAND] | --help | --version",
     "this overview, or one command's options and environment",
     "Prints the usage of every command, or one command's options and environment.\n", ""},
};

#define NCMDS (sizeof cmds / sizeof cmds[0])

static const struct cmd_help *find(const char *name)
{
    for (size_t i = 0; i < NCMDS; i++)
        if (strcmp(cmds[i].name, name) == 0)
            return &cmds[i];
    return NULL;
}

bool bm_srv_is_command(const char *name)
{
    return find(name) != NULL;
}

static void config_table(FILE *out)
{
    struct bm_buf b;
    bm_buf_init(&b, 1 << 20);
    if (bm_config_help(&b) == BM_OK)
        fputs(b.data, out);
    bm_buf_cleanup(&b);
}

/* A usage line continued over several lines keeps the indentation of its first. */
static void put_usage(FILE *out, const char *first, const char *usage)
{
    fputs(first, out);
    for (const char *p = usage; *p != '\0'; p++) {
        fputc(*p, out);
        if (*p == '\n')
            fprintf(out, "%*s", (int)strlen(first), "");
    }
    fputc('\n', out);
}

int bm_srv_help(const char *cmd, FILE *out, FILE *err)
{
    if (cmd == NULL) {
        for (size_t i = 0; i < NCMDS; i++)
            put_usage(out, i == 0 ? "usage: " : "       ", cmds[i].usage);
        fputs("\n", out);
        for (size_t i = 0; i < NCMDS; i++)
            fprintf(out, "  %-10s %s\n", cmds[i].name, cmds[i].summary);
        fputs("\n`bmas help COMMAND` or `bmas COMMAND --help` gives a command's options.\n"
              "\n"
              "exit status: 0 ok, 1 a source or the service failed, 2 usage or configuration\n"
              "\n"
              "environment (serve and ingest; defaults in brackets):\n",
              out);
        config_table(out);
        return BM_EXIT_OK;
    }
    const struct cmd_help *h = find(cmd);
    if (h == NULL) {
        fprintf(err,
                "bmas help: unknown command \"%s\" (commands: serve, ingest, sample, "
                "dashboard, alarms, help)\n",
                cmd);
        return BM_EXIT_USAGE;
    }
    put_usage(out, "usage: ", h->usage);
    fprintf(out, "\n%s", h->text);
    if (h->env == NULL) {
        fputs("\nexit status: 0 ok, 1 a source or the service failed, 2 usage or "
              "configuration\n\nenvironment (defaults in brackets):\n",
              out);
        config_table(out);
    } else if (*h->env != '\0') {
        fprintf(out, "\n%s", h->env);
    }
    return BM_EXIT_OK;
}
