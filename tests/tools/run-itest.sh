#!/bin/sh
# Runs every tests/integration/test_*.sh with BINDIR exported (the folder of the binaries under
# test), prints each script's output and a summary, and exits 1 when any script failed.
set -u
BINDIR=$(cd "${1:?usage: run-itest.sh BINDIR}" && pwd)
export BINDIR
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
pass=0
fail=0
failed=""
for t in tests/integration/test_*.sh; do
    [ -f "$t" ] || continue
    start=$(date +%s)
    echo "# $t"
    if bash "$t"; then
        pass=$((pass + 1))
        echo "ok - $t ($(( $(date +%s) - start )) s)"
    else
        fail=$((fail + 1))
        failed="$failed $t"
        echo "not ok - $t ($(( $(date +%s) - start )) s)"
    fi
done
echo "# integration: $pass passed, $fail failed${failed:+ (}${failed# }${failed:+)}"
echo "itest: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
