#!/bin/bash
# The service stays responsive while objects download slowly: with every S3 GetObject taking
# 1.5 s, a batch of four objects finishes in about one download time (fetched concurrently,
# BMAS_FETCH_CONCURRENCY), and GET /status and /aggregates answer at once meanwhile. Also: a
# wrong secret against the emulator's SigV4 check is BMAS-002, for the service and the CLI.
set -u
. tests/tools/svc-lib.sh
svc_setup

ETAG=$(md5sum "$W/a.json.gz" | cut -d' ' -f1)
recs=()
for i in 1 2 3 4; do
    aws_q s3api put-object --bucket logs --key "$P/slow-$i.json.gz" --body "$W/a.json.gz" >/dev/null
    body=$(jq -c --arg k "$(form_key "$P/slow-$i.json.gz")" --arg e "$ETAG" '.Records[0].s3.bucket.name = "logs"
        | .Records[0].s3.object.key = $k | .Records[0].s3.object.eTag = $e' "$BM_TEST_DATA/s3-event.json")
    recs+=("$(jq -c -n --arg b "$body" --arg id "m$i" '{messageId: $id, body: $b, eventSource: "aws:sqs"}')")
done
printf '%s\n' "${recs[@]}" | jq -s -c '{Records: .}' > "$W/batch.json"

BMAS_ENV="AWS_ENDPOINT_URL=$EMU_URL AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test BMAS_FLUSH_INTERVAL=0 BMAS_FETCH_CONCURRENCY=4 AWS_EC2_METADATA_DISABLED=true"
bmas_start || exit 1
curl -sS -o /dev/null --data '{"service":"s3","operation":"GetObject","latency_ms":1500}' "$EMU_URL/_emulator/faults"
t0=$(now_ms)
curl -sS -o "$W/resp.json" --data-binary @"$W/batch.json" "$BMAS_URL/events" &
post=$!
wait_for 5 bash -c "grep -q GetObject <(curl -sS $EMU_URL/_emulator/requests?service=s3)"
s0=$(now_ms)
st=$(curl -sS -m 5 -o /dev/null -w '%{http_code}' "$BMAS_URL/status")
a=$(curl -sS -m 5 -o /dev/null -w '%{http_code}' "$BMAS_URL/aggregates")
s1=$(now_ms)
t_eq "/status and /aggregates answer during the downloads" "200 200" "$st $a"
t_ok "...within 300 ms ($((s1 - s0)) ms)" test $((s1 - s0)) -lt 300
wait "$post"
t1=$(now_ms)
t_eq "the batch succeeded" "[]" "$(jq -c .batchItemFailures "$W/resp.json")"
t_ok "four 1.5 s downloads took one download time, not four ($((t1 - t0)) ms)" test $((t1 - t0)) -lt 4000
call agg GET "/aggregates?group_by="
t_eq "four objects counted" "16" "$(echo "$BODY" | jq .totals.invocations)"
curl -sS -o /dev/null -X DELETE "$EMU_URL/_emulator/faults"
bmas_stop

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
t_done
