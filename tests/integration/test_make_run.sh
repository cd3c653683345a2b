#!/bin/bash
# The README's run command works on this machine: `make run` (tests/tools/run-local.sh) brings
# up bmas-emulator and bmas, uploads sample logs (`bmas sample`), and bmas counts and publishes
# them; every command it prints works as printed (the AWS CLI line with both CLIs, from an
# environment without AWS variables); with bmas's port taken it says so and takes a free one;
# Ctrl-C leaves nothing running (the feeder's sleep included); `make run-reset` starts fresh.
set -u
. tests/tools/itest-lib.sh
D=$(mktemp -d "${TMPDIR:-/tmp}/bmas-run.XXXXXX")
HOLDER=""
RUN_PID=""
cleanup() {
    [ -n "$RUN_PID" ] && kill -TERM -- "-$RUN_PID" 2>/dev/null
    [ -n "$HOLDER" ] && kill "$HOLDER" 2>/dev/null
    rm -rf "$D" "$ITEST_HOME"
}
trap cleanup EXIT
out=$(RUN_ONCE=1 RUN_DIR="$D/run" BMAS_LISTEN=127.0.0.1:0 EMU_PORT=0 BMAS_FLUSH_INTERVAL=0 \
    timeout 240 tests/tools/run-local.sh "$BINDIR" 2>&1)
t_eq "run command exits 0" "0" "$?"
t_ok "tells where to look" grep -q "bmas is up: http://127.0.0.1:" <<<"$out"
# The expected totals are the generator's own (gen-totals.jsonl, one line per object it wrote),
# not anything bmas says: summed here and compared with the TOTAL row bmas answered.
want=$(jq -s -r '"\(length) \(map(.invocations) | add) \(map(.input_tokens) | add) \(map(.output_tokens) | add)"' \
    "$D/run/gen-totals.jsonl")
t_ok "the generator wrote objects with records ($want)" test "$(echo "$want" | cut -d' ' -f2)" -gt 100
t_eq "bmas's totals equal the generator's (objects, invocations, input, output tokens)" "$want" \
    "$(echo "$want" | cut -d' ' -f1) $(awk '$1 == "TOTAL" { print $2, $3, $4 }' <<<"$out")"
t_eq "per profile type too (the generator's classification of its own ids)" \
    "$(jq -s -r '[.[].by_profile_type | to_entries[]] | group_by(.key)
        | map("\(.[0].key) \(map(.value.invocations) | add)") | .[]' "$D/run/gen-totals.jsonl")" \
    "$(awk '$1 ~ /^(OnDemand|CrossRegion|GlobalCrossRegion|Application)$/ { print $1, $2 }' <<<"$out" | sort)"
t_ok "the demo is priced: a cost, and no unpriced invocation (docs/prices.csv covers the sample's models; the application profiles are mapped)" \
    awk '$1 == "TOTAL" && $5 > 0 && $6 == 0 { ok = 1 } END { exit !ok }' <<<"$out"
t_eq "objects stamped within the last hour and a bit" "ok" \
    "$(jq -s -r --argjson now "$(date +%s)" 'if all(.start >= $now - 4000 and .start + .span <= $now + 300) then "ok" else "no" end' "$D/run/gen-totals.jsonl")"
t_eq "keys in Bedrock's layout, three Regions" "12 3" \
    "$(jq -r .key "$D/run/gen-totals.jsonl" | grep -cE '^AWSLogs/123456789012/BedrockModelInvocationLogs/(us-east-1|eu-west-1|ap-southeast-2)/[0-9]{4}/[0-9]{2}/[0-9]{2}/[0-9]{2}/[0-9]{8}T[0-9]{6}Z_[0-9a-f]{16}\.json\.gz$') $(jq -r .region "$D/run/gen-totals.jsonl" | sort -u | wc -l)"
t_ok "every uploaded object was processed" grep -q '"event":"object_processed"' "$D/run/bmas.log"
n=$(grep -c '"event":"object_processed"' "$D/run/bmas.log")
t_eq "twelve objects" "12" "$n"
t_ok "metrics were published to the emulator's CloudWatch" grep -q '"event":"published"' "$D/run/bmas.log"
t_ok "bmas stopped cleanly" grep -q '"event":"stopped"' "$D/run/bmas.log"
t_eq "both servers exited 0 when stopped" "bmas 0|bmas-emulator 0" \
    "$(paste -sd'|' "$D/run/exit-status" 2>/dev/null)"
t_eq "no sanitizer report in either log" "" \
    "$(grep -hE 'ERROR: [A-Za-z]+Sanitizer|SUMMARY: [A-Za-z]+Sanitizer|runtime error:' "$D/run/bmas.log" "$D/run/emulator.log")"
t_ok "it names make run-reset" grep -q "make run-reset starts fresh" <<<"$out"

# Second run on the same state: the port asked for bmas and the emulator is held by another
# program (not an HTTP server), and the run is left going until a Ctrl-C (SIGINT to its whole process group, as a terminal sends it).
python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
print(s.getsockname()[1], flush=True); time.sleep(600)' >"$D/held.port" &
HOLDER=$!
wait_for 10 test -s "$D/held.port"
held=$(cat "$D/held.port")
RUN_DIR="$D/run" BMAS_LISTEN=127.0.0.1:$held EMU_PORT=$held BMAS_FLUSH_INTERVAL=0 \
    as_terminal tests/tools/run-local.sh "$BINDIR" >"$D/out2" 2>&1 &
RUN_PID=$!
wait_for 200 grep -q "A new log object arrives" "$D/out2"
t_ok "the second run got going" grep -q "A new log object arrives" "$D/out2"
t_ok "says the emulator's port is taken" grep -q "port $held is taken; the emulator takes a free one" "$D/out2"
t_ok "says bmas's port is taken" grep -q "port $held is taken; bmas listens on a free port" "$D/out2"
url=$(sed -n 's/^bmas is up: \(http:[^ ]*\) .*/\1/p' "$D/out2")
t_all "and listens elsewhere ($url)" test -n "$url" -- test "$url" != "http://127.0.0.1:$held"
dash=$(sed -n 's/^Dashboard: \(http:[^ ]*\) .*/\1/p' "$D/out2")
t_eq "the dashboard URL it prints ($dash) serves the page" "$url/dashboard 200 text/html; charset=utf-8" \
    "$dash $(curl -m 60 -s -o /dev/null -w '%{http_code} %{content_type}' "$dash")"
prom=$(sed -n 's/^Prometheus: \(http:[^ ]*\) .*/\1/p' "$D/out2")
t_eq "the /metrics URL it prints ($prom) counts the sample's invocations" "$url/metrics yes" \
    "$prom $(curl -m 60 -s "$prom" | awk '/^bmas_invocations_total[{ ]/ { n += $NF } END { print (n > 0 ? "yes" : "no") }')"

# README.md shows what it prints: its block from "bmas is up" to the table's heading, with the
# addresses and the state folder of this run, is in the output line for line.
emu=$(sed -n 's/^The AWS side is bmas-emulator at \(http:[^ ]*\) .*/\1/p' "$D/out2")
readme=$(awk '/^bmas is up: / { on = 1 } on { print } /^Right now, by inference profile type:$/ { exit }' README.md |
    sed "s|http://127.0.0.1:8080|$url|g; s|http://127.0.0.1:4566|$emu|g; s|build/run|$D/run|g")
t_range "README.md has the block" 8 20 "$(wc -l <<<"$readme")"
t_eq "README.md's make run block is what it prints" "" \
    "$(while IFS= read -r l; do grep -qxF -- "$l" "$D/out2" || echo "$l"; done <<<"$readme")"

# Every command it printed, exactly as printed, in an environment with no AWS variables.
mapfile -t cmds < <(sed -n 's/^  \(curl .*\)$/\1/p; s/^  \(AWS_ACCESS_KEY_ID=.*\)$/\1/p' "$D/out2")
t_eq "it printed three curl commands and one AWS CLI command" "4" "${#cmds[@]}"
is_json() { jq -e 'type == "object" or type == "array"' >/dev/null 2>&1 <<<"$1"; }
clean_env=(env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_DEFAULT_REGION -u AWS_REGION)
for c in "${cmds[@]}"; do
    case "$c" in
    curl*)
        r=$("${clean_env[@]}" bash -c "$c" 2>&1)
        t_ok "works as printed: $c" is_json "$r"
        ;;
    *)
        # The line names `aws`: run it with Debian's CLI first on PATH, then the pip one.
        for cli in /usr/bin/aws "$JSON_CLI"; do
            [ -n "$cli" ] && [ -x "$cli" ] || continue
            mkdir -p "$D/path-$$"
            ln -sf "$cli" "$D/path-$$/aws"
            r=$(PATH="$D/path-$$:$PATH" "${clean_env[@]}" bash -c "$c" 2>&1)
            d="works as printed with $("$cli" --version 2>&1 | cut -d' ' -f1): metrics listed"
            if jq -e '.Metrics | length > 0' <<<"$r" >/dev/null 2>&1; then
                t_pass "$d"
            else
                t_fail "$d"
                head -5 <<<"$r" | sed 's/^/#   /'
            fi
        done
        ;;
    esac
done

# While it runs, a second make run on the same state and make run-reset refuse, naming it.
t_eq "a second make run on the same state exits 1" "1" \
    "$(RUN_ONCE=1 RUN_DIR="$D/run" EMU_PORT=0 BMAS_LISTEN=127.0.0.1:0 timeout 60 tests/tools/run-local.sh "$BINDIR" >"$D/out3" 2>&1; echo $?)"
t_ok "  saying make run is already running" grep -q "make run is already running on $D/run (pid $RUN_PID)" "$D/out3"
t_eq "make run-reset refuses while it runs" "2" \
    "$(make -s --no-print-directory run-reset RUN_DIR="$D/run" >/dev/null 2>&1; echo $?)"
t_ok "  and the state is still there" test -s "$D/run/bmas.db"

# Ctrl-C: the whole process group gets SIGINT (run-local.sh leads its session and group).
sid=$(ps -o sid= -p "$RUN_PID" | tr -d ' ')
t_eq "run-local.sh leads its own session" "$RUN_PID" "$sid"
sleeping() { pgrep -s "$sid" -x sleep >/dev/null; }
t_ok "the feeder's sleep is running" wait_for 30 sleeping
log_before=$(wc -l < "$D/run/bmas.log")
kill -INT -- "-$sid"
wait_for 60 bash -c "! kill -0 $RUN_PID 2>/dev/null"
if kill -0 "$RUN_PID" 2>/dev/null; then
    t_fail "run-local.sh ended after Ctrl-C"
    kill -TERM -- "-$sid" 2>/dev/null
else
    t_pass "run-local.sh ended after Ctrl-C"
fi
wait "$RUN_PID" 2>/dev/null
RUN_PID=""
wait_for 10 bash -c "[ -z \"\$(ps -eo sid= | awk -v sid=$RUN_PID '\$1 == sid')\" ]"
t_eq "nothing of the run is left (no process of its session)" "" \
    "$(ps -eo sid=,pid=,args= | awk -v sid="$sid" '$1 == sid')"
# The servers run in sessions of their own (so the Ctrl-C reaches the script alone, which
# stops them in order): none is left either.
t_eq "no server of the run is left" "" "$(pgrep -af -- "$D/run" | grep -v pgrep)"
t_eq "both servers exited 0 on Ctrl-C" "bmas 0|bmas-emulator 0" \
    "$(paste -sd'|' "$D/run/exit-status" 2>/dev/null)"
t_eq "bmas logged no warning or error for the Ctrl-C" "" \
    "$(tail -n +"$((log_before + 1))" "$D/run/bmas.log" | jq -r 'select(.level != "INFO" and .level != "DEBUG") | "\(.level) \(.event) \(.operation // "") \(.detail // "")"' 2>&1)"
t_ok "  and said it stopped" grep -q '"event":"stopped"' "$D/run/bmas.log"

t_ok "make run-reset removes the state" make -s --no-print-directory run-reset RUN_DIR="$D/run"
t_ok "and it is gone" test ! -e "$D/run"
t_done
