#!/bin/bash
# `make run-pg` (tests/tools/run-local.sh with RUN_PG=1): the run command's several-instances
# form works on this machine. A throw-away PostgreSQL server, bmas-emulator and two bmas
# consuming the one queue: each of the sample's objects is committed by exactly one of them,
# the totals equal the generator's own, one holds the publisher lease, and at the end nothing
# is left running (the PostgreSQL server included), after RUN_ONCE and after a Ctrl-C.
# test_service_multi.sh covers the rest.
set -u
. tests/tools/itest-lib.sh
D=$(mktemp -d "${TMPDIR:-/tmp}/bmas-runpg.XXXXXX")
RUN_PID=""
trap '[ -n "$RUN_PID" ] && kill -TERM -- "-$RUN_PID" 2>/dev/null; rm -rf "$D" "$ITEST_HOME"' EXIT
out=$(RUN_PG=1 RUN_ONCE=1 RUN_DIR="$D/run" BMAS_LISTEN=127.0.0.1:0 EMU_PORT=0 BMAS_FLUSH_INTERVAL=4 \
    timeout 240 tests/tools/run-local.sh "$BINDIR" 2>&1)
t_eq "run command (RUN_PG=1) exits 0" "0" "$?"
url1=$(sed -n 's/^bmas is up: \(http:[^ ]*\) .*/\1/p' <<<"$out")
url2=$(sed -n 's/^bmas-2 is up: \(http:[^ ]*\) .*/\1/p' <<<"$out")
t_all "tells where both instances are ($url1, $url2)" test -n "$url1" -- test -n "$url2" -- \
    test "$url1" != "$url2"
# The expected totals are the generator's (gen-totals.jsonl), not anything bmas says.
want=$(jq -s -r '"\(map(.invocations) | add) \(map(.input_tokens) | add) \(map(.output_tokens) | add)"' \
    "$D/run/gen-totals.jsonl")
t_eq "the shared store's totals equal the generator's (invocations, input, output tokens)" "$want" \
    "$(awk '$1 == "TOTAL" { print $2, $3, $4 }' <<<"$out")"
n1=$(grep -c '"event":"object_processed"' "$D/run/bmas-1.log")
n2=$(grep -c '"event":"object_processed"' "$D/run/bmas-2.log")
t_eq "the twelve objects committed once between the two ($n1 by bmas-1, $n2 by bmas-2)" 12 $((n1 + n2))
holder=$(sed -n 's/.*one publishes to CloudWatch: \(.*\)\.$/\1/p' <<<"$out")
t_ok "it names the publisher ($holder)" grep -qxE 'bmas-[12]' <<<"$holder"
t_eq "exactly one instance logged publisher_active" 1 \
    "$(cat "$D/run/bmas-1.log" "$D/run/bmas-2.log" | grep -c '"event":"publisher_active"')"
t_ok "metrics were published to the emulator's CloudWatch" \
    grep -q '"event":"published"' "$D/run/bmas-1.log" "$D/run/bmas-2.log"
t_eq "all three servers exited 0 when stopped" "bmas-2 0|bmas-1 0|bmas-emulator 0" \
    "$(paste -sd'|' "$D/run/exit-status" 2>/dev/null)"
t_eq "no sanitizer report in any log" "" \
    "$(grep -hE 'ERROR: [A-Za-z]+Sanitizer|SUMMARY: [A-Za-z]+Sanitizer|runtime error:' "$D/run"/*.log)"
pg_port=$(sed -n 's|.*postgresql://postgres@127.0.0.1:\([0-9]*\)/bmas.*|\1|p' <<<"$out")
t_ok "the PostgreSQL server named ($pg_port) is gone" \
    bash -c "test -n '$pg_port' && ! (exec 3<>/dev/tcp/127.0.0.1/$pg_port) 2>/dev/null"
t_ok "it says the store starts empty next time" grep -q "each make run-pg starts from an empty store" <<<"$out"

# Left running until a terminal's Ctrl-C (as_terminal: SIGINT to its whole process group): the
# instances stop before the database they write to, so neither logs a storage warning, and
# the server goes too.
# The same folder as the first run: its emulator data and totals start over with the new
# database, so the second run's totals are its own twelve objects' only.
RUN_PG=1 RUN_DIR="$D/run" BMAS_LISTEN=127.0.0.1:0 EMU_PORT=0 BMAS_FLUSH_INTERVAL=4 \
    as_terminal tests/tools/run-local.sh "$BINDIR" >"$D/out2" 2>&1 &
RUN_PID=$!
wait_for 200 grep -q "A new log object arrives" "$D/out2"
t_ok "the second run got going" grep -q "A new log object arrives" "$D/out2"
t_eq "the second run on the same folder: its own twelve objects and their totals" \
    "12 $(jq -s -r '"\(map(.invocations) | add) \(map(.input_tokens) | add)"' "$D/run/gen-totals.jsonl")" \
    "$(wc -l <"$D/run/gen-totals.jsonl") $(awk '$1 == "TOTAL" { print $2, $3 }' "$D/out2")"
pg_port=$(sed -n 's|.*postgresql://postgres@127.0.0.1:\([0-9]*\)/bmas.*|\1|p' "$D/out2")
kill -INT -- "-$RUN_PID"
wait "$RUN_PID"
t_eq "Ctrl-C: the run exits 0" 0 "$?"
RUN_PID=""
t_eq "Ctrl-C: all three servers exited 0" "bmas-2 0|bmas-1 0|bmas-emulator 0" \
    "$(paste -sd'|' "$D/run/exit-status" 2>/dev/null)"
t_eq "Ctrl-C: no warning or error in either instance's log" "" \
    "$(cat "$D/run/bmas-1.log" "$D/run/bmas-2.log" | grep -E '"level":"(WARN|ERROR|CRITICAL)"')"
t_eq "Ctrl-C: no bmas or emulator of the run is left" "" "$(pgrep -af -- "$D/run" | grep -v pgrep)"
t_ok "Ctrl-C: the PostgreSQL server ($pg_port) is gone" \
    bash -c "test -n '$pg_port' && ! (exec 3<>/dev/tcp/127.0.0.1/$pg_port) 2>/dev/null"
t_ok "README names make run-pg" grep -q "make run-pg" README.md
t_done
