#!/bin/bash
# Runs every tests/integration/test_*.sh with BINDIR exported (the folder of the binaries under
# test), ITEST_JOBS at a time (default: the number of CPUs; each script starts its own servers
# on free ports and uses unique names, so they are independent). Prints each script's output
# once it ends, then a summary; exits 1 when any script failed.
set -u
BINDIR=$(cd "${1:-bin}" && pwd)
export BINDIR
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
export BM_TEST_DATA="${BM_TEST_DATA:-$top/tests/data}"
jobs=${ITEST_JOBS:-$(nproc 2>/dev/null || echo 2)}
out=$(mktemp -d "${TMPDIR:-/tmp}/bmas-itest.XXXXXX")
trap 'rm -rf "$out"' EXIT

run_one() { # script index: writes its output, exit status and duration under $out
    local start=$(date +%s) rc=0
    bash "$1" >"$out/$2.log" 2>&1 || rc=$?
    echo "$rc $(( $(date +%s) - start ))" >"$out/$2.rc"
}

scripts=(tests/integration/test_*.sh)
[ -f "${scripts[0]}" ] || scripts=()
running=0
for i in "${!scripts[@]}"; do
    if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
    run_one "${scripts[$i]}" "$i" &
    running=$((running + 1))
done
wait

pass=0
fail=0
failed=""
for i in "${!scripts[@]}"; do
    t=${scripts[$i]}
    read -r rc secs <"$out/$i.rc"
    echo "# $t"
    cat "$out/$i.log"
    if [ "$rc" -eq 0 ]; then
        pass=$((pass + 1))
        echo "ok - $t ($secs s)"
    else
        fail=$((fail + 1))
        failed="$failed $t"
        echo "not ok - $t (exit $rc, $secs s)"
    fi
done
[ -n "$failed" ] && echo "# failed:$failed"
echo "itest: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
