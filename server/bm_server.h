/* bm_server.h: the public header of libbm_server, the bmas commands (`serve`, `ingest`, `sample`,
 * …) that main() dispatches to. Tests drive the commands through these entry points. */
#ifndef BM_SERVER_H
#define BM_SERVER_H

#include "core/bm_rt.h"
#include "core/bm_ingest.h"
#include "core/bm_aws.h"

#include <stdio.h>

/* Exit codes shared by every command (README.md, `bmas ingest`). */
enum { BM_EXIT_OK = 0, BM_EXIT_FAILED = 1, BM_EXIT_USAGE = 2 };

/* `bmas ingest [--json] [--group-by LIST] SOURCE...`: prints the sources' aggregates on out
, problems on err. cfg is borrowed. Returns an exit code. */
int bm_srv_cmd_ingest(const struct bm_config *cfg, int argc, char **argv, FILE *out, FILE *err);

/* `bmas serve [--listen ADDR:PORT] [--db PATH] [--port-file FILE]`: runs the service until
 * SIGTERM/SIGINT. cfg is updated by the flags. Returns an exit code. */
/* `bmas dashboard`: a CloudWatch dashboard body for BMAS_DIMENSION_SETS and
 * CLOUDWATCH_NAMESPACE; `bmas alarms`: put-metric-alarm inputs, one JSON object a line. */
int bm_srv_cmd_dashboard(const struct bm_config *cfg, int argc, char **argv, FILE *out, FILE *err);
int bm_srv_cmd_alarms(const struct bm_config *cfg, int argc, char **argv, FILE *out, FILE *err);
int bm_srv_cmd_serve(struct bm_config *cfg, int argc, char **argv, FILE *err);

/* `bmas sample [options]`: writes one generated Bedrock log object to out (or -o FILE) and its
 * totals as a JSON line on err (or --totals FILE). Reads no configuration. Returns an exit
 * code. */
int bm_srv_cmd_sample(int argc, char **argv, FILE *out, FILE *err);

/* `bmas help [COMMAND]`: the overview of every command (cmd NULL) or one command's usage,
 * options and environment, on out. An unknown cmd: a message on err and BM_EXIT_USAGE. */
int bm_srv_help(const char *cmd, FILE *out, FILE *err);
/* Whether name is a bmas command (serve, ingest, sample, dashboard, alarms, help). */
bool bm_srv_is_command(const char *name);

#endif
