#!/bin/bash
# The PostgreSQL store's unit tests (tests/unit/test_storage_pg*.c), and the storage unit tests
# shared with SQLite run with BM_TEST_STORE=pg (each runs its cases on the operations the
# PostgreSQL store implements), against a real server that this script starts
# (tests/tools/pg-lib.sh: initdb in a temporary folder, a free port, the postgres user when run
# as root), once per build whose binary exists: the one BINDIR belongs to first, then the other
# of release and ASan+UBSan. At least one must exist; a server that cannot start fails the
# script (no skip).
set -u
. tests/tools/itest-lib.sh
. tests/tools/pg-lib.sh
trap pg_stop EXIT

# BINDIR is bin (release) or build/<variant>/bin: its unit tests are in build/<variant>/tests.
case "$BINDIR" in
*/build/*/bin) mine=${BINDIR%/bin}/tests ;;
*) mine=build/rel/tests ;;
esac
# The storage unit tests that also run on PostgreSQL (BM_TEST_STORE=pg).
SHARED="test_storage_commit test_storage_query test_storage_outbox test_storage_threads test_storage_cwseries"
units=()
for d in "$mine" build/rel/tests build/asan/tests; do
    for n in test_storage_pg test_storage_pg_commit test_storage_pg_store $SHARED; do
        b=$(cd "$d" 2>/dev/null && pwd)/$n
        [ -x "$b" ] || continue
        case " ${units[*]:-} " in *" $b "*) continue ;; esac
        units+=("$b")
    done
done
t_ok "the test_storage_pg binaries and the shared ones are built (make test-bins)" \
    [ ${#units[@]} -ge $((3 + $(wc -w <<<"$SHARED"))) ]

if pg_start; then
    t_pass "PostgreSQL started on 127.0.0.1:$PG_PORT"
    t_eq "the server answers on PG_URL with password authentication" "1" \
        "$(PGCONNECT_TIMEOUT=5 psql "$PG_URL" -Atqc "SELECT 1" 2>&1)"
    for b in "${units[@]}"; do
        v="$(basename "$b"), $(basename "$(dirname "$(dirname "$b")")")"
        case " $SHARED " in
        *" $(basename "$b") "*) store=pg v="$v, BM_TEST_STORE=pg" ;;
        *) store= ;;
        esac
        out=$(BM_TEST_STORE=$store ASAN_OPTIONS=detect_leaks=1 CMOCKA_MESSAGE_OUTPUT=TAP "$b" 2>&1)
        rc=$?
        sed 's/^/# /' <<<"$out"
        t_eq "$v: exits 0" "0" "$rc"
        t_eq "$v: no case failed" "0" "$(grep -c '^not ok' <<<"$out")"
        t_ok "$v: ran cases" grep -q '^ok [0-9]' <<<"$out"
    done
else
    t_fail "PostgreSQL started (tests/tools/deps.sh installs postgresql)"
fi
t_done
