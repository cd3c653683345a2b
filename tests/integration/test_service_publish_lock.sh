#!/bin/bash
# Publishing while the database cannot be written, and across a crash mid-call (issue 8 items 3
# and 4). Another process holds the SQLite write lock: three POST /flush send nothing to
# CloudWatch (each claim fails before a call), /healthz answers 503 BMAS-013 and /status is
# degraded with the code; once the lock goes, health is 200 again by itself and one flush
# lands every datum exactly once (read back from the emulator's CloudWatch). Then bmas is killed
# with SIGKILL while a claimed call is in flight: after the restart that one call, and only it,
# is sent once more (the duplicate the README allows), and nothing after it; killed again during
# that re-send, the call is not sent a third time.
set -u
. tests/tools/svc-lib.sh
svc_setup

cw_calls() { curl -sS -m 10 "$EMU_URL/_emulator/requests?service=cloudwatch" |
    jq '[.requests[] | select(.operation == "PutMetricData") | .count] | add // 0'; }
healthz() { curl -sS -m 30 -o "$W/hz.body" -w '%{http_code}' "$BMAS_URL/healthz"; }
healthy() { [ "$(healthz)" = 200 ]; }
calls_at_least() { [ "$(cw_calls)" -ge "$1" ]; }
fault_hit() { [ "$(curl -sS -m 5 "$EMU_URL/_emulator/faults" | jq '[.faults[].hits] | add // 0')" -ge 1 ]; }

BMAS_ENV="AWS_ENDPOINT_URL=$EMU_URL AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test BMAS_FLUSH_INTERVAL=0 MAX_RETRY_ATTEMPTS=3 AWS_EC2_METADATA_DISABLED=true"
BMAS_DB=$W/lock.db
bmas_start || exit 1
t_eq "object 1 posted" "200" "$(put_and_post "$P/one.json.gz" "$W/a.json.gz")"
t_eq "object 2 posted" "200" "$(put_and_post "$P/two.json.gz" "$W/a.json.gz")"
t_eq "healthy before the lock" "200" "$(healthz)"

# Another process takes the write lock (BEGIN EXCLUSIVE, held until its stdin closes).
cat > "$W/hold.py" <<'EOF'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
c.execute("BEGIN EXCLUSIVE")
open(sys.argv[2], "w").close()
sys.stdin.read()
c.execute("ROLLBACK")
c.close()
EOF
mkfifo "$W/hold.ctl"
python3 "$W/hold.py" "$BMAS_DB" "$W/hold.ready" < "$W/hold.ctl" &
holder=$!
exec 9>"$W/hold.ctl"
wait_for 30 test -e "$W/hold.ready"
calls0=$(cw_calls)
for i in 1 2 3; do
    call "lockflush$i" POST /flush -m 60
    t_eq "flush $i under the lock: 503 BMAS-013, nothing sent" "503 BMAS-013" \
        "$STATUS $(echo "$BODY" | jq -r .errorCode)"
    call "lockhz$i" GET /healthz -m 30
    t_eq "flush $i: /healthz 503 BMAS-013" "503 BMAS-013" "$STATUS $(echo "$BODY" | jq -r .errorCode)"
    call "lockst$i" GET /status -m 30
    t_eq "flush $i: /status degraded, storage BMAS-013" '["degraded","BMAS-013"]' \
        "$(echo "$BODY" | jq -c '[.status, .storage.errorCode]')"
done
t_eq "no PutMetricData reached CloudWatch while the database was locked" "$calls0" "$(cw_calls)"
t_ok "the healthz body says since when" grep -q '"details":{"since":"20' "$W/resp/lockhz3.body"

# The lock goes: health comes back by itself (bmas tries a commit every second), then one flush
# publishes each datum once.
exec 9>&-
wait "$holder"
t_ok "/healthz 200 again without any request writing" wait_for 20 healthy
call hz-ok GET /healthz -m 30
t_eq "/healthz body" "200 ok" "$STATUS $BODY"
call status-ok GET /status -m 30
t_eq "/status has no storage error" 'null' "$(echo "$BODY" | jq -c .storage)"
call flush-after POST /flush -m 60
t_eq "after the lock: 60 datums in one call" '{"published":60,"requests":1}' \
    "$(echo "$BODY" | jq -c '{published,requests}')"
t_eq "exactly one PutMetricData in all" "$((calls0 + 1))" "$(cw_calls)"
# Two objects, each 255 CrossRegion input tokens over 1 invocation: a datum sent four times
# (the issue) would read 2040 and 8.
t_eq "CloudWatch Sum once per datum (read by the AWS CLI)" "510" "$(cw_stat_cli InputTokens Sum InferenceProfileType=CrossRegion)"
t_eq "CloudWatch SampleCount once per datum" "2" "$(cw_stat InputTokens SampleCount InferenceProfileType=CrossRegion)"
t_eq "by type and model once" "2" \
    "$(cw_stat InvocationCount Sum InferenceProfileType=GlobalCrossRegion ModelId=anthropic.claude-opus-4-5-20251101-v1:0)"
call status-after GET /status -m 30
t_eq "status ok, nothing pending" '["ok",0]' "$(echo "$BODY" | jq -c '[.status, .publish.pending]')"

# The crash: PutMetricData answers after 4 s; bmas dies by SIGKILL once the emulator holds the
# claimed call, so the datums land but the answer is never recorded.
etag=$(s3_upload logs "$P/three.json.gz" "$W/a.json.gz")
call events3 POST /events -m 30 --data "$(jq -c --arg k "$(form_key "$P/three.json.gz")" --arg e "$etag" \
    '.Records[0].s3.bucket.name = "logs" | .Records[0].s3.object.key = $k | .Records[0].s3.object.eTag = $e' \
    "$BM_TEST_DATA/s3-event.json")"
t_eq "object 3 posted" "200 processed" "$STATUS $(echo "$BODY" | jq -r .status)"
call agg3 GET "/aggregates?group_by=profile_type&profile_type=CrossRegion" -m 30
t_eq "three objects in /aggregates" "765" "$(echo "$BODY" | jq .totals.input_tokens)"
curl -sS -m 10 -o /dev/null --data '{"service":"cloudwatch","operation":"PutMetricData","latency_ms":4000}' "$EMU_URL/_emulator/faults"
curl -sS -m 60 -o /dev/null -X POST "$BMAS_URL/flush" 2>/dev/null &
flusher=$!
t_ok "the claimed call reached CloudWatch" wait_for 20 fault_hit
t_eq "claimed before the call (attempt 1 recorded)" "1|0|1" \
    "$(sqlite3 "file:$BMAS_DB?mode=ro" 'SELECT nreq, sent, attempt FROM outbox_claim')"
kill -KILL "$BMAS_PID"
wait "$BMAS_PID" 2>/dev/null
wait "$flusher" 2>/dev/null
BMAS_PID=
curl -sS -m 10 -o /dev/null -X DELETE "$EMU_URL/_emulator/faults"
t_ok "the emulator stored the killed call" wait_for 20 calls_at_least $((calls0 + 2))
t_eq "the killed call counted once so far" "765" "$(cw_stat InputTokens Sum InferenceProfileType=CrossRegion)"

bmas_start || exit 1
call flush-resent POST /flush -m 60
t_eq "after the restart: the claimed call re-sent once" '{"published":60,"requests":1}' \
    "$(echo "$BODY" | jq -c '{published,requests}')"
t_eq "one call more" "$((calls0 + 3))" "$(cw_calls)"
t_ok "logged as a re-send" grep -q '"event":"publish_resent"' "$BMAS_LOG"
call flush-none POST /flush -m 60
t_eq "then nothing is sent again" '{"published":0,"requests":0}' "$(echo "$BODY" | jq -c '{published,requests}')"
t_eq "no further call" "$((calls0 + 3))" "$(cw_calls)"
# Object 3 twice (the one duplicate a crash may cost), objects 1 and 2 once.
t_eq "CloudWatch: objects 1, 2 once, object 3 twice" "1020" "$(cw_stat InputTokens Sum InferenceProfileType=CrossRegion)"

# Killed again during that re-send: the call went twice with no answer recorded, so the next
# flush does not send it a third time (it logs publish_skipped and ends the claim).
kill_in_flight() { # NAME: a flush whose call the emulator holds 4 s; SIGKILL once it has it
    curl -sS -m 10 -o /dev/null -X DELETE "$EMU_URL/_emulator/faults"
    curl -sS -m 10 -o /dev/null --data '{"service":"cloudwatch","operation":"PutMetricData","latency_ms":4000}' "$EMU_URL/_emulator/faults"
    curl -sS -m 60 -o /dev/null -X POST "$BMAS_URL/flush" 2>/dev/null &
    local flusher=$! want=$(( $(cw_calls) + 1 ))
    t_ok "$1: the call reached CloudWatch" wait_for 20 fault_hit
    kill -KILL "$BMAS_PID"
    wait "$BMAS_PID" 2>/dev/null
    wait "$flusher" 2>/dev/null
    BMAS_PID=
    curl -sS -m 10 -o /dev/null -X DELETE "$EMU_URL/_emulator/faults"
    t_ok "$1: the emulator stored it" wait_for 20 calls_at_least "$want"
}
t_eq "object 4 posted" "200" "$(put_and_post "$P/four.json.gz" "$W/a.json.gz")"
kill_in_flight "first kill"
bmas_start || exit 1
kill_in_flight "second kill, during the re-send"
t_eq "attempt 2 recorded" "1|0|2" \
    "$(sqlite3 "file:$BMAS_DB?mode=ro" 'SELECT nreq, sent, attempt FROM outbox_claim')"
calls2=$(cw_calls)
bmas_start || exit 1
call flush-skip POST /flush -m 60
t_eq "no third copy: nothing sent" '{"published":0,"requests":0}' "$(echo "$BODY" | jq -c '{published,requests}')"
t_eq "no call" "$calls2" "$(cw_calls)"
t_ok "logged as skipped" grep -q '"event":"publish_skipped"' "$BMAS_LOG"
t_eq "CloudWatch: object 4 twice, never three times" "1530" "$(cw_stat InputTokens Sum InferenceProfileType=CrossRegion)"
call status-end GET /status -m 30
t_eq "no claim left, nothing pending, ok" '["ok",0]' "$(echo "$BODY" | jq -c '[.status, .publish.pending]')"
t_eq "no open claim in the database" "0" "$(sqlite3 "file:$BMAS_DB?mode=ro" 'SELECT count(*) FROM outbox_claim')"
openapi_check
srv_stop bmas
t_done
