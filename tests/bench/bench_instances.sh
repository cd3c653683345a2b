#!/usr/bin/env bash
# bench_instances.sh, run by `make bench`: commits per second and duplicate checks per second
# through bm_storage.h on SQLite and on PostgreSQL, for one instance (one process with its own
# store handle: 1 and 4 threads) and two instances (two processes on the same database at once,
# 4 threads each: the combined rate, and each process's). Each store is fresh, seeded with
# SEED processed objects that the duplicate checks look up. Both stores run as bmas runs them in
# production: SQLite in WAL mode with synchronous=NORMAL (no fsync per commit), PostgreSQL with
# the server's defaults (tests/tools/pg-lib.sh with PG_DURABLE=1: fsync and synchronous_commit
# on, each commit flushed to disk); one more line each shows the other durability (SQLite
# synchronous=FULL, PostgreSQL synchronous_commit=off). Prints a table; asserts no speed, exits
# 1 when a store answers wrongly (a commit or a check in bench_instances.c, or a processed count
# other than the seeds plus every commit). BENCH_INSTANCES_SECONDS (2) per line; about 18 s for
# SQLite and 24 s for PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=build/bench
SECS=${BENCH_INSTANCES_SECONDS:-2}
SEED=2000
mkdir -p "$B"
. tests/bench/bench-lib.sh
bin=$(bench_build bench_instances)
. tests/tools/pg-lib.sh
trap pg_stop EXIT

grp() { sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|[^0-9]\)/\1,\2\3/' -e 'ta'; } # 12345 -> 12,345

# run DB OP INSTANCES THREADS: INSTANCES processes of THREADS threads each, started together
# (after time to open the store) for SECS; sets rate (all processes' operations over the
# longest window) and each (each process's rate, " + " between them).
run() {
    local db=$1 op=$2 n=$3 th=$4 start i pids=()
    start=$(($(date +%s%3N) + 300 + 200 * n))
    for i in $(seq "$n"); do
        "$bin" "$db" "$op" "$th" "$SECS" "$start" "$i" "$SEED" >"$B/instances.$i" &
        pids+=($!)
    done
    for i in "${pids[@]}"; do
        wait "$i" || { echo "bench: bench_instances $op failed" >&2; exit 1; }
    done
    [ "$op" = commit ] && committed=$((committed + $(cat $(seq -f "$B/instances.%g" "$n") |
        awk '{ ops += $1 } END { print ops }')))
    rate=$(cat $(seq -f "$B/instances.%g" "$n") |
        awk '{ ops += $1; if ($2 > t) t = $2 } END { printf "%.0f", ops / t }' | grp)
    each=$(cat $(seq -f "$B/instances.%g" "$n") |
        awk '{ printf "%s%.0f", (NR > 1 ? " + " : ""), $1 / $2 }' | grp)
}
# counted DB: exit 1 unless the store's objects.processed is SEED + every commit the runs made
# (each one also had to be COMMITTED, not a duplicate: bench_instances.c checks that).
counted() {
    local got
    got=$("$bin" "$1" count)
    if [ "$got" != $((SEED + committed)) ]; then
        echo "bench: the store counts $got processed objects, not $((SEED + committed))" >&2
        exit 1
    fi
}
# line STORE-LABEL DB SHAPE-LABEL INSTANCES THREADS [commits-only]
line() {
    local c cc d dd=""
    run "$2" commit "$4" "$5"
    c=$rate cc=$each
    if [ "${6:-}" = commits-only ]; then
        d=-
    else
        run "$2" dup "$4" "$5"
        d=$rate dd=$each
    fi
    if [ "$4" -gt 1 ]; then
        printf '%-44s %-19s %9s %12s   %s; %s\n' "$1" "$3" "$c" "$d" "$cc" "$dd"
    else
        printf '%-44s %-19s %9s %12s\n' "$1" "$3" "$c" "$d"
    fi
}

load=$(cut -d' ' -f1 /proc/loadavg)
pgver=$(basename "$(dirname "$(pg_bindir)")" 2>/dev/null || echo "?")
echo
echo "storage throughput (bm_storage.h): one instance = one process with its own store handle,"
echo "two = two processes on one database at once (SQLite: one file on one machine), combined"
echo "rate then each process's; ${SECS} s per line on a fresh store holding $(echo "$SEED" | grp) processed"
echo "objects; commit = a new object of 3 series, dup check = is_processed of a processed one."
echo "Durability as bmas runs each: SQLite WAL, synchronous=NORMAL (no fsync per commit: a commit"
echo "outlives a crash of bmas, not of the machine); PostgreSQL ${pgver}, server defaults (fsync and"
echo "synchronous_commit on: each commit on disk), on 127.0.0.1. The lines in brackets swap the"
echo "durability. $(nproc) CPUs shared by the clients and the server; load average $load at the start."
printf '%-44s %-19s %9s %12s   %s\n' "store" "instances x threads" "commits/s" "dup checks/s" \
    "per process (commits; dups)"

db="$B/instances.db"
rm -f "$db" "$db-wal" "$db-shm"
committed=0
"$bin" "$db" seed "$SEED"
line "SQLite, synchronous=NORMAL" "$db" "1 x 1 thread" 1 1
line "" "$db" "1 x 4 threads" 1 4
line "" "$db" "2 x 4, one file" 2 4
BENCH_SYNC_FULL=1 line "(SQLite, synchronous=FULL: fsync per commit)" "$db" "1 x 4 threads" 1 4 \
    commits-only
counted "$db"
rm -f "$db" "$db-wal" "$db-shm"

PG_DURABLE=1 pg_start >/dev/null || { echo "bench: the PostgreSQL server did not start" >&2; exit 1; }
# Seeding is not measured: without waiting for each commit's flush it takes a second.
async="$PG_URL?options=-csynchronous_commit%3Doff"
committed=0
"$bin" "$async" seed "$SEED"
line "PostgreSQL, server defaults" "$PG_URL" "1 x 1 thread" 1 1
line "" "$PG_URL" "1 x 4 threads" 1 4
line "" "$PG_URL" "2 x 4, one database" 2 4
line "(PostgreSQL, synchronous_commit=off)" "$async" "1 x 4 threads" 1 4 commits-only
counted "$PG_URL"
pg_stop
