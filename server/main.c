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

static bool is_help(const char *a)
{
    return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0;
}

int main(int argc, char **argv)
{
    struct bm_config cfg;
    struct bm_errmsg em = {{0}};
    /* Help and the sample writer need no configuration: a bad variable must not hide them. */
    if (argc > 1 && (is_help(argv[1]) || strcmp(argv[1], "help") == 0)) {
        if (argc > 3 || (argc == 3 && is_help(argv[1]))) {
            fprintf(stderr, "bmas: help takes at most one COMMAND (see bmas help)\n");
            return BM_EXIT_USAGE;
        }
        return bm_srv_help(argc > 2 ? argv[2] : NULL, stdout, stderr);
    }
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("bmas %s\n", BM_VERSION);
        return BM_EXIT_OK;
    }
    if (argc > 1 && argv[1][0] != '-' && !bm_srv_is_command(argv[1])) {
        fprintf(stderr,
                "bmas: unknown command \"%s\" (commands: serve, ingest, sample, dashboard, "
                "alarms, help; see bmas help)\n",
                argv[1]);
        return BM_EXIT_USAGE;
    }
    /* `bmas COMMAND --help` anywhere among its arguments, before anything runs. */
    const char *cmd = argc > 1 && argv[1][0] != '-' ? argv[1] : "serve";
    for (int i = argc > 1 && argv[1][0] != '-' ? 2 : 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (is_help(argv[i]))
            return bm_srv_help(cmd, stdout, stderr);
    }
    if (strcmp(cmd, "sample") == 0)
        return bm_srv_cmd_sample(argc - 2, argv + 2, stdout, stderr);
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
    } else {
        rc = bm_srv_cmd_serve(&cfg, argc - 1, argv + 1, stderr); /* serve is the default */
    }
    bm_config_cleanup(&cfg);
    curl_global_cleanup();
    return rc;
}
