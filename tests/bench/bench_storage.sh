#!/usr/bin/env bash
# bench_storage.sh: builds and runs the storage benchmark (tests/bench/bench_storage.c) against
# a database of about a million aggregate rows. The filled database is cached in build/bench/
# (the fill takes a while); BENCH_STORAGE_REFILL=1 starts from scratch. Prints a table; the
# targets are reported by the caller, never asserted here.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=build/bench
mkdir -p "$B"
. tests/bench/bench-lib.sh
bin=$(bench_build bench_storage)
db="$B/storage-1m.db"
# A database filled by an older bench_storage.c (other keys or ETags than service.sh posts) is
# filled again.
if [ "${BENCH_STORAGE_REFILL:-0}" = 1 ] || [ tests/bench/bench_storage.c -nt "$db" ]; then
    rm -f "$db" "$db-wal" "$db-shm"
fi
"$bin" "$db"
