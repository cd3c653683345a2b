/* main.c: the bmas-emulator binary. Parses flags, starts the emulator, writes the bound port
 * for test harnesses, and stops cleanly (state flushed) on SIGTERM or SIGINT. */
#include "emulator/bm_emu.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: bmas-emulator [--listen ADDR:PORT] [--port-file FILE] [--data DIR]\n"
    "                     [--credentials AKID:SECRET[,AKID:SECRET...]] [--region REGION]\n"
    "                     [--seed N] [--skew-seconds N] [--max-object-bytes N]\n"
    "                     [--max-body-bytes N]\n"
    "       bmas-emulator --help | --version\n"
    "\n"
    "A local AWS emulator: S3, SQS, CloudWatch and STS (AssumeRoleWithWebIdentity,\n"
    "AssumeRole, GetCallerIdentity) on one port, every request SigV4-verified, with fault\n"
    "injection for reliability tests. Credentials issued by AssumeRoleWithWebIdentity (any\n"
    "non-empty token) or AssumeRole (signed; chains) for DurationSeconds 900..43200 are accepted\n"
    "with their session token until they expire; they are kept in memory only (at most 1024)\n"
    "and do not survive a restart.\n"
    "\n"
    "  --listen ADDR:PORT       listen address; port 0 picks a free port [127.0.0.1:4566]\n"
    "  --port-file FILE         write the bound port to FILE once listening\n"
    "  --data DIR               keep state in DIR across restarts (default: memory only)\n"
    "  --credentials AKID:SECRET[,AKID:SECRET...]\n"
    "                           accept these besides test:test\n"
    "  --region REGION          region in ARNs, queue URLs and events [us-east-1]\n"
    "  --seed N                 seed of the PRNG behind fault rates and generated ids\n"
    "  --skew-seconds N         accepted clock skew of signed requests [900]\n"
    "  --max-object-bytes N     largest S3 object body, held in memory [268435456]\n"
    "  --max-body-bytes N       largest other request body [2097152]\n"
    "  -h, --help, --version\n"
    "\n"
    "Environment: LOG_LEVEL (DEBUG|INFO|WARN|ERROR, default INFO), JSON lines on stderr.\n"
    "\n"
    "Control routes (no signature needed):\n"
    "  GET    /_localstack/health            LocalStack-style service status\n"
    "  POST   /_emulator/faults              add a rule (service s3, sqs, cloudwatch or sts),\n"
    "         e.g. {\"service\":\"s3\",\n"
    "         \"operation\":\"GetObject\",\"status\":503,\"code\":\"SlowDown\",\"count\":3},\n"
    "         {\"service\":\"cloudwatch\",\"rate\":0.2,\"status\":400,\"code\":\"Throttling\"},\n"
    "         {\"latency_ms\":500}; service/operation filter, count = next N matching\n"
    "         requests, rate = probability; errors come in the protocol's own form\n"
    "  GET    /_emulator/faults              list rules (with hits and remaining counts)\n"
    "  DELETE /_emulator/faults              remove every rule\n"
    "  GET    /_emulator/requests[?service=S] requests per service and operation:\n"
    "         {\"requests\":[{\"service\",\"operation\",\"count\",\"faulted\",\"errors\"}]}\n"
    "  DELETE /_emulator/requests            reset those counters\n";

static bool parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    if (*s == '-' || *s == '\0')
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static int bad_flag(const char *flag, const char *why)
{
    fprintf(stderr, "bmas-emulator: %s: %s (see --help)\n", flag, why);
    return 2;
}

/* Writes the port atomically so a poller never reads a half-written file. */
static bool write_port_file(const char *path, uint16_t port)
{
    char tmp[4200], text[16];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int len = snprintf(text, sizeof text, "%u\n", port);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return false;
    bool ok = write(fd, text, (size_t)len) == len;
    ok = close(fd) == 0 && ok;
    return ok && rename(tmp, path) == 0;
}

int main(int argc, char **argv)
{
    struct bm_emu_opts opts;
    const char *port_file = NULL;
    bm_emu_opts_init(&opts);
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (strcmp(f, "--help") == 0 || strcmp(f, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if (strcmp(f, "--version") == 0) {
            printf("bmas-emulator %s\n", BM_VERSION);
            return 0;
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n = 0;
        if (strcmp(f, "--listen") == 0 || strcmp(f, "--data") == 0 ||
            strcmp(f, "--credentials") == 0 || strcmp(f, "--region") == 0 ||
            strcmp(f, "--port-file") == 0 || strcmp(f, "--seed") == 0 ||
            strcmp(f, "--skew-seconds") == 0 || strcmp(f, "--max-object-bytes") == 0 ||
            strcmp(f, "--max-body-bytes") == 0) {
            if (v == NULL || *v == '\0')
                return bad_flag(f, "needs a value");
            i++;
        } else {
            return bad_flag(f, "unknown flag");
        }
        if (strcmp(f, "--listen") == 0)
            opts.listen = v;
        else if (strcmp(f, "--data") == 0)
            opts.data_dir = v;
        else if (strcmp(f, "--credentials") == 0)
            opts.credentials = v;
        else if (strcmp(f, "--region") == 0)
            opts.region = v;
        else if (strcmp(f, "--port-file") == 0)
            port_file = v;
        else if (strcmp(f, "--seed") == 0 && parse_u64(v, 1, UINT64_MAX, &n))
            opts.seed = n;
        else if (strcmp(f, "--skew-seconds") == 0 && parse_u64(v, 1, 100LL * 365 * 86400, &n))
            opts.skew_seconds = (long)n;
        else if (strcmp(f, "--max-object-bytes") == 0 && parse_u64(v, 1, 1ULL << 40, &n))
            opts.max_object_bytes = n;
        else if (strcmp(f, "--max-body-bytes") == 0 && parse_u64(v, 1024, 1ULL << 30, &n))
            opts.max_body_bytes = n;
        else
            return bad_flag(f, "bad number");
    }
    const char *lvl = getenv("LOG_LEVEL");
    enum bm_log_level level = BM_INFO;
    if (lvl != NULL && *lvl != '\0' && !bm_log_level_parse(lvl, &level)) {
        fprintf(stderr, "bmas-emulator: LOG_LEVEL: expected DEBUG, INFO, WARN or ERROR\n");
        return 2;
    }
    bm_log_set_level(level);

    /* Signals are taken by sigwait() below; block them before any thread exists so that no
     * MHD thread receives them. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct bm_errmsg em = {{0}};
    struct bm_emu *emu = NULL;
    bm_err rc = bm_emu_new(&opts, &emu, &em);
    if (rc == BM_OK)
        rc = bm_emu_start(emu, &em);
    if (rc != BM_OK) {
        fprintf(stderr, "bmas-emulator: %s\n", em.text[0] ? em.text : bm_err_str(rc));
        bm_emu_free(emu);
        return rc == BM_E_CONFIG ? 2 : 1;
    }
    if (port_file != NULL && !write_port_file(port_file, bm_emu_port(emu))) {
        fprintf(stderr, "bmas-emulator: --port-file %s: cannot write\n", port_file);
        bm_emu_free(emu);
        return 1;
    }
    char port[8];
    snprintf(port, sizeof port, "%u", bm_emu_port(emu));
    BM_LOG(BM_INFO, "emu", "listening", "bmas-emulator ready", BM_KV_STR("listen", opts.listen),
           BM_KV_STR("port", port), BM_KV_STR("data", opts.data_dir ? opts.data_dir : ""));
    int sig = 0;
    sigwait(&sigs, &sig);
    BM_LOG(BM_INFO, "emu", "stopping", "signal received, stopping", BM_KV_INT("signal", sig));
    rc = bm_emu_stop(emu);
    bm_emu_free(emu);
    return rc == BM_OK ? 0 : 1;
}
