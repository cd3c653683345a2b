#!/bin/sh
# Runs every tests/integration/test_*.sh with BINDIR exported; prints a summary and exits 1 if
# any failed. Each script prints TAP-style lines and exits non-zero on failure.
set -u
BINDIR=$(cd "${1:-bin}" && pwd)
export BINDIR
export BM_TEST_DATA="${BM_TEST_DATA:-$(pwd)/tests/data}"
fail=0
n=0
for t in tests/integration/test_*.sh; do
    [ -f "$t" ] || continue
    n=$((n + 1))
    start=$(date +%s)
    if out=$(sh "$t" 2>&1); then
        echo "ok - $(basename "$t") ($(( $(date +%s) - start )) s, $(echo "$out" | grep -c '^ok') checks)"
    else
        fail=$((fail + 1))
        echo "$out" | tail -40
        echo "not ok - $(basename "$t")"
    fi
done
echo "# integration: $n scripts, $fail failed"
[ $fail -eq 0 ]
