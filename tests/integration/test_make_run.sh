#!/bin/bash
# The README's run command works on this machine: `make run` (tests/tools/run-local.sh) brings
# up bmas-emulator and bmas, uploads sample logs, and bmas counts and publishes them.
set -u
. tests/tools/itest-lib.sh
D=$(mktemp -d "${TMPDIR:-/tmp}/bmas-run.XXXXXX")
trap 'rm -rf "$D" "$ITEST_HOME"' EXIT
out=$(RUN_ONCE=1 RUN_DIR="$D" BMAS_LISTEN=127.0.0.1:0 EMU_PORT=0 BMAS_FLUSH_INTERVAL=0 \
    timeout 240 tests/tools/run-local.sh "$BINDIR" 2>&1)
t_eq "run command exits 0" "0" "$?"
t_ok "tells where to look" grep -q "bmas is up: http://127.0.0.1:" <<<"$out"
# The expected totals are the generator's own (gen-totals.jsonl, one line per object it wrote),
# not anything bmas says: summed here and compared with the TOTAL row bmas answered.
want=$(jq -s -r '"\(length) \(map(.invocations) | add) \(map(.input_tokens) | add) \(map(.output_tokens) | add)"' \
    "$D/gen-totals.jsonl")
t_ok "the generator wrote objects with records ($want)" test "$(echo "$want" | cut -d' ' -f2)" -gt 100
t_eq "bmas's totals equal the generator's (objects, invocations, input, output tokens)" "$want" \
    "$(echo "$want" | cut -d' ' -f1) $(awk '$1 == "TOTAL" { print $2, $3, $4 }' <<<"$out")"
t_ok "every uploaded object was processed" grep -q '"event":"object_processed"' "$D/bmas.log"
n=$(grep -c '"event":"object_processed"' "$D/bmas.log")
t_eq "twelve objects" "12" "$n"
t_ok "metrics were published to the emulator's CloudWatch" grep -q '"event":"published"' "$D/bmas.log"
t_ok "bmas stopped cleanly" grep -q '"event":"stopped"' "$D/bmas.log"
t_eq "both servers exited 0 when stopped" "bmas 0|bmas-emulator 0" \
    "$(paste -sd'|' "$D/exit-status" 2>/dev/null)"
t_eq "no sanitizer report in either log" "" \
    "$(grep -hE 'ERROR: [A-Za-z]+Sanitizer|SUMMARY: [A-Za-z]+Sanitizer|runtime error:' "$D/bmas.log" "$D/emulator.log")"
t_done
