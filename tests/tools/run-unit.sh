#!/bin/bash
# Runs every cmocka unit-test binary in $1 with TAP output (CMOCKA_MESSAGE_OUTPUT=TAP), each
# under `timeout` (UNIT_TIMEOUT seconds, default 300), UNIT_JOBS at a time (default: the
# number of CPUs), and reads the TAP: a binary passes when it exits 0, printed at least one
# plan, ran as many cases as its plans announce, failed none, and skipped only what
# tests/skips.allow lists. Prints each binary's verdict in name order, ends with "unit: N
# passed, N failed, N skipped" (cases) and exits 1 when any binary did not pass.
#
# The storage tests create hundreds of SQLite files, and every commit waits for fsync: on a
# slow disk that was 87 s of one binary's 90. Their files go to a RAM file system (/dev/shm)
# when there is one, since a unit test proves the logic, not the disk (the integration tests
# keep their databases on disk); TMPDIR set by the caller wins.
set -u
dir=$1
top=$(cd "$(dirname "$0")/../.." && pwd)
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
    export TMPDIR=/dev/shm
fi
export CMOCKA_MESSAGE_OUTPUT=TAP
# The SigV4 suite (tests/vectors/sigv4) and the samples (tests/data) the tests read.
export BM_TEST_DATA="${BM_TEST_DATA:-$top/tests/data}"
export BM_SIGV4_VECTORS="${BM_SIGV4_VECTORS:-$top/tests/vectors/sigv4}"
jobs=${UNIT_JOBS:-$(nproc 2>/dev/null || echo 2)}
out=$(mktemp -d "${TMPDIR:-/tmp}/bmas-unit.XXXXXX")
trap 'rm -rf "$out"' EXIT

bins=()
for t in "$dir"/test_*; do
    [ -x "$t" ] && bins+=("$t")
done
# The longest first, so that the run does not end with one long binary alone.
slow_first="test_storage_commit test_storage_threads test_storage_query test_storage_plan
test_storage_outbox test_core_ingest"
ordered=()
for b in $slow_first; do
    for t in "${bins[@]}"; do [ "$(basename "$t")" = "$b" ] && ordered+=("$t"); done
done
for t in "${bins[@]}"; do
    case " $(echo $slow_first) " in *" $(basename "$t") "*) continue ;; esac
    ordered+=("$t")
done

running=0
for t in "${ordered[@]}"; do
    if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
    name=$(basename "$t")
    (
        timeout -k 10 "${UNIT_TIMEOUT:-300}" "$t" >"$out/$name.log" 2>&1
        echo $? >"$out/$name.rc"
    ) &
    running=$((running + 1))
done
wait

fail=0
n=0
tp=0
tf=0
ts=0
for t in "${bins[@]}"; do
    n=$((n + 1))
    name=$(basename "$t")
    log=$out/$name.log
    rc=$(cat "$out/$name.rc" 2>/dev/null || echo 1)
    set -- $(awk -v name="$name" -v allow="$top/tests/skips.allow" \
        -f "$top/tests/tools/tap-count.awk" "$log" 2>"$log.err")
    p=$1 f=$2 s=$3 seen=$4 planned=$5 plans=$6 unlisted=$7
    tp=$((tp + p))
    tf=$((tf + f))
    ts=$((ts + s))
    why=""
    [ "$rc" -eq 124 ] && why="timed out after ${UNIT_TIMEOUT:-300} s"
    [ -z "$why" ] && [ "$rc" -ne 0 ] && why="exit $rc"
    [ -z "$why" ] && [ "$f" -ne 0 ] && why="$f failed"
    [ -z "$why" ] && [ "$plans" -eq 0 ] && why="no TAP plan"
    [ -z "$why" ] && [ "$seen" -ne "$planned" ] && why="planned $planned, ran $seen"
    [ -z "$why" ] && [ "$seen" -eq 0 ] && why="ran no case"
    [ -z "$why" ] && [ "$unlisted" -ne 0 ] && why="$unlisted skips not in tests/skips.allow"
    if [ -n "$why" ]; then
        fail=$((fail + 1))
        cat "$log" "$log.err"
        echo "not ok - $name ($why)"
    else
        echo "ok - $name ($p passed, $s skipped)"
        # Notes a test prints for people (skips, suite coverage) stay visible.
        grep -E '^# (SKIP|[0-9]+/[0-9]+ )|# SKIP' "$log" | sed 's/^/  /'
    fi
done
echo "# unit: $n binaries, $fail failed"
echo "unit: $tp passed, $tf failed, $ts skipped"
[ "$n" -gt 0 ] && [ $fail -eq 0 ]
