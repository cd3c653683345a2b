#!/bin/sh
# Runs every cmocka unit-test binary in $1 with TAP output; exits 1 when any failed.
set -u
dir=$1
fail=0
n=0
export CMOCKA_MESSAGE_OUTPUT=TAP
# Tests read the SigV4 suite (tests/vectors/sigv4) and the samples (tests/data) from these.
export BM_TEST_DATA="${BM_TEST_DATA:-$(pwd)/tests/data}"
export BM_SIGV4_VECTORS="${BM_SIGV4_VECTORS:-$(cd "$(dirname "$0")/../.." && pwd)/tests/vectors/sigv4}"
for t in "$dir"/test_*; do
    [ -x "$t" ] || continue
    n=$((n + 1))
    out=$("$t" 2>&1)
    rc=$?
    if [ $rc -ne 0 ]; then
        fail=$((fail + 1))
        echo "$out"
        echo "not ok - $(basename "$t") (exit $rc)"
    else
        echo "ok - $(basename "$t") ($(echo "$out" | grep -c '^ok') cases)"
        # Notes a test prints for people (skips, suite coverage) stay visible.
        echo "$out" | grep -E '^# (SKIP|[0-9]+/[0-9]+ )' | sed 's/^/  /'
    fi
done
echo "# unit: $n binaries, $fail failed"
[ $fail -eq 0 ]
