#!/bin/sh
# Runs every cmocka unit-test binary in $1 with TAP output (CMOCKA_MESSAGE_OUTPUT=TAP), each
# under `timeout` (UNIT_TIMEOUT seconds, default 300), and reads the TAP: a binary passes when
# it exits 0, printed at least one plan, ran as many cases as its plans announce, failed none,
# and skipped only what tests/skips.allow lists. Ends with "unit: N passed, N failed,
# N skipped" (cases) and exits 1 when any binary did not pass.
set -u
dir=$1
top=$(cd "$(dirname "$0")/../.." && pwd)
fail=0
n=0
tp=0
tf=0
ts=0
export CMOCKA_MESSAGE_OUTPUT=TAP
# The SigV4 suite (tests/vectors/sigv4) and the samples (tests/data) the tests read.
export BM_TEST_DATA="${BM_TEST_DATA:-$top/tests/data}"
export BM_SIGV4_VECTORS="${BM_SIGV4_VECTORS:-$top/tests/vectors/sigv4}"
tmp=$(mktemp "${TMPDIR:-/tmp}/bmas-unit.XXXXXX")
trap 'rm -f "$tmp" "$tmp.err"' EXIT
for t in "$dir"/test_*; do
    [ -x "$t" ] || continue
    n=$((n + 1))
    name=$(basename "$t")
    timeout -k 10 "${UNIT_TIMEOUT:-300}" "$t" >"$tmp" 2>&1
    rc=$?
    set -- $(awk -v name="$name" -v allow="$top/tests/skips.allow" \
        -f "$top/tests/tools/tap-count.awk" "$tmp" 2>"$tmp.err")
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
        cat "$tmp" "$tmp.err"
        echo "not ok - $name ($why)"
    else
        echo "ok - $name ($p passed, $s skipped)"
        # Notes a test prints for people (skips, suite coverage) stay visible.
        grep -E '^# (SKIP|[0-9]+/[0-9]+ )|# SKIP' "$tmp" | sed 's/^/  /'
    fi
done
echo "# unit: $n binaries, $fail failed"
echo "unit: $tp passed, $tf failed, $ts skipped"
[ "$n" -gt 0 ] && [ $fail -eq 0 ]
