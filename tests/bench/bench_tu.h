/* bench_tu.h: what the storage benchmarks (bench_storage.c, bench_instances.c) share: a
 * monotonic clock, dying on a store error, string slices and the log-object keys. Include
 * after defining BENCH_NAME (the program's name, for messages). Not a test. */
#ifndef BM_BENCH_TU_H
#define BM_BENCH_TU_H

#include "storage/bm_storage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, bm_err e, const struct bm_errmsg *em)
{
    fprintf(stderr, "%s: %s: %s (%s)\n", BENCH_NAME, what, bm_err_str(e), em ? em->text : "");
    exit(1);
}

static struct bm_str s_(const char *s)
{
    return (struct bm_str){s, strlen(s)};
}

/* Object i of a kind ("fill", "new", ...): a Bedrock log key in bucket bench-logs. */
static void object_of(struct bm_db_object *o, char *buf, size_t cap, const char *kind, long i)
{
    snprintf(buf, cap, "AWSLogs/1/BedrockModelInvocationLogs/us-east-1/%s/%ld.json.gz", kind, i);
    bm_db_object_init(o, "bench-logs", buf, NULL, "0123456789abcdef0123456789abcdef");
}

#endif
