#!/bin/bash
# The service stays responsive while objects download slowly: with every S3 GetObject taking
# 3 s, the four objects of a batch are fetched concurrently (BMAS_FETCH_CONCURRENCY: the fourth
# download starts before the first is answered, which one-after-another fetching cannot do),
# and GET /status and /aggregates answer meanwhile. No check is a wall-clock limit, so a slow
# (ASan) build on a busy machine passes or fails for the same reasons as a fast one. Also: a
# wrong secret against the emulator's SigV4 check is BMAS-002, for the service and the CLI.
set -u
. tests/tools/svc-lib.sh
svc_setup

ETAG=$(md5sum "$W/a.json.gz" | cut -d' ' -f1)
recs=()
for i in 1 2 3 4; do
    s3_upload logs "$P/slow-$i.json.gz" "$W/a.json.gz" >/dev/null
    body=$(jq -c --arg k "$(form_key "$P/slow-$i.json.gz")" --arg e "$ETAG" '.Records[0].s3.bucket.name = "logs"
        | .Records[0].s3.object.key = $k | .Records[0].s3.object.eTag = $e' "$BM_TEST_DATA/s3-event.json")
    recs+=("$(jq -c -n --arg b "$body" --arg id "m$i" '{messageId: $id, body: $b, eventSource: "aws:sqs"}')")
done
printf '%s\n' "${recs[@]}" | jq -s -c '{Records: .}' > "$W/batch.json"

BMAS_ENV="AWS_ENDPOINT_URL=$EMU_URL AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test BMAS_FLUSH_INTERVAL=0 BMAS_FETCH_CONCURRENCY=4 AWS_EC2_METADATA_DISABLED=true"
bmas_start || exit 1
# Each download takes LAT ms. Fetched one after another, the fourth GetObject could not arrive
# before the first was answered; concurrently, all four arrive before any answer.
LAT=3000
emu_fault "{\"service\":\"s3\",\"operation\":\"GetObject\",\"latency_ms\":$LAT}"
# The rule's hits count requests as they arrive (before the wait); the request counters only
# count them once answered.
started() { curl -m 60 -sS "$EMU_URL/_emulator/faults" | jq '[.faults[].hits] | add // 0'; }
gets() { curl -m 60 -sS "$EMU_URL/_emulator/requests?service=s3" | jq '[.requests[] | select(.operation == "GetObject") | .count] | add // 0'; }
t0=$(now_ms)
curl -m 60 -sS -o "$W/resp.json" --data-binary @"$W/batch.json" "$BMAS_URL/events" &
post=$!
wait_for 10 eval 'test "$(started)" -gt 0'
s0=$(now_ms)
st=$(curl -sS -m 10 -o /dev/null -w '%{http_code}' "$BMAS_URL/status")
a=$(curl -sS -m 10 -o /dev/null -w '%{http_code}' "$BMAS_URL/aggregates")
t_eq "/status and /aggregates answer during the downloads" "200 200" "$st $a"
t_ok "...while the batch is still downloading" kill -0 "$post"
# Read in this order: when /_emulator/requests says no GetObject was answered yet, none was
# answered when the fourth had already started (the counters only grow).
t_ok "the fourth download started" wait_for 30 eval 'test "$(started)" -ge 4'
t_eq "all four downloads started before any was answered ($(( $(now_ms) - s0 )) ms)" 0 "$(gets)"
wait "$post"
t1=$(now_ms)
t_eq "the batch succeeded" "[]" "$(jq -c .batchItemFailures "$W/resp.json")"
t_eq "each object fetched once" 4 "$(gets)"
echo "# four $LAT ms downloads took $((t1 - t0)) ms in all"
call agg GET "/aggregates?group_by="
t_eq "four objects counted" "16" "$(echo "$BODY" | jq .totals.invocations)"
curl -m 60 -sS -o /dev/null -X DELETE "$EMU_URL/_emulator/faults"
srv_stop bmas "bmas (concurrent fetches)"

# A wrong secret: the emulator's SigV4 check refuses it, bmas says BMAS-002 (a fresh database,
# so the object is not already known).
unset BMAS_DB
BMAS_ENV="AWS_ENDPOINT_URL=$EMU_URL AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=wrong BMAS_FLUSH_INTERVAL=0 AWS_EC2_METADATA_DISABLED=true"
bmas_start || exit 1
one=$(jq -c '.Records[0].body | fromjson' "$W/batch.json")
call wrong POST /events --data "$one"
t_eq "service with a wrong secret: 403 BMAS-002" "403 BMAS-002" "$STATUS $(echo "$BODY" | jq -r .errorCode)"
t_ok "the emulator named the signature mismatch" grep -q "SignatureDoesNotMatch" <<<"$(echo "$BODY" | jq -r .message)"
AWS_ENDPOINT_URL=$EMU_URL AWS_SECRET_ACCESS_KEY=wrong "$BINDIR/bmas" ingest "s3://logs/$P/slow-1.json.gz" >/dev/null 2>"$W/err"
t_eq "bmas ingest with a wrong secret: exit 1" "1" "$?"
t_ok "bmas ingest says BMAS-002" grep -q "BMAS-002" "$W/err"
srv_stop bmas "bmas (wrong secret)"
srv_stop emu
t_done
