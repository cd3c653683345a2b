#!/bin/bash
# HTTP limits, tried as a hostile client would: a body on a route that takes none and an
# unauthenticated body are refused before the body is read; an over-limit body is 413 whether
# it announces its length or comes chunked; past the in-flight budget a POST gets 503 BMAS-024
# with Retry-After; a repeated query parameter is 400 BMAS-011; 600 slow connections from
# 127.0.0.1 are capped per client and cut at the header deadline while /healthz answers
# 127.0.0.2. No AWS is needed: nothing here reaches a fetch.
set -u
. tests/tools/svc-lib.sh
W=$(mktemp -d "${TMPDIR:-/tmp}/bmas-itest.XXXXXX")
trap itest_atexit EXIT
TOKEN=t0ken-$$
A=(-H "Authorization: Bearer $TOKEN")
SLOW="python3 tests/tools/slow_client.py"

BMAS_ENV="AWS_ENDPOINT_URL=http://127.0.0.1:9 BMAS_AUTH_TOKEN=$TOKEN BMAS_FLUSH_INTERVAL=0
    BMAS_MAX_BODY_BYTES=64K BMAS_MAX_INFLIGHT_BYTES=200K BMAS_HEADER_TIMEOUT=3
    BMAS_MAX_CONNECTIONS_PER_CLIENT=40" bmas_start
PORT=${BMAS_URL##*:}
code() { jq -r '.errorCode // empty' <<<"$BODY"; }

# A valid event that fetches nothing: S3's TestEvent, delivered by SQS.
jq -c '{Records: [{messageId: "m1", body: tojson, eventSource: "aws:sqs"}]}' \
    "$BM_TEST_DATA/s3-test-event.json" > "$W/test-event.json"

# 1. Refused before the body: curl waits for 100-continue, so it uploads nothing when the
# server answers first.
head -c 60000 /dev/zero | tr '\0' ' ' > "$W/60k"
up=$(curl -sS -m 10 -o "$W/r1" -w '%{http_code} %{size_upload}' -H 'Expect: 100-continue' \
    -H 'Content-Type: application/json' --data-binary @"$W/60k" "$BMAS_URL/events")
t_eq "unauthenticated POST /events: 401, no body byte uploaded" "401 0" "$up"
up=$(curl -sS -m 10 -o "$W/r2" -w '%{http_code} %{size_upload}' -H 'Expect: 100-continue' \
    "${A[@]}" -X GET --data-binary @"$W/60k" "$BMAS_URL/status")
t_eq "GET /status with a body: 400, no body byte uploaded" "400 0" "$up"
t_eq "... its code is BMAS-011" "BMAS-011" "$(jq -r .errorCode "$W/r2")"

head -c 70000 /dev/zero | tr '\0' ' ' > "$W/70k"
up=$(curl -sS -m 10 -o "$W/r3" -w '%{http_code} %{size_upload}' -H 'Expect: 100-continue' \
    "${A[@]}" -H 'Content-Type: application/json' --data-binary @"$W/70k" "$BMAS_URL/events")
t_eq "announced length over BMAS_MAX_BODY_BYTES: 413 before the body" "413 0" "$up"
t_eq "... BMAS-010" "BMAS-010" "$(jq -r .errorCode "$W/r3")"

# 2. Chunked over the limit: answered (it used to be dropped with no response).
call chunked POST /events "${A[@]}" -m 10 -H 'Content-Type: application/json' \
    -H 'Transfer-Encoding: chunked' --data-binary @"$W/70k"
t_eq "chunked body over the limit: 413" "413" "$STATUS"
t_eq "... with a JSON body naming BMAS-010" "BMAS-010" "$(code)"
call chunked_ok POST /events "${A[@]}" -m 10 -H 'Content-Type: application/json' \
    -H 'Transfer-Encoding: chunked' --data-binary @"$W/test-event.json"
t_eq "a small chunked body is taken" "200" "$STATUS"

# A bare S3 event with a 20 KiB key: a clear BMAS-005 in a body that is valid JSON.
LONGKEY=$(head -c 20000 /dev/zero | tr '\0' 'k')
jq -c --arg k "$LONGKEY\"\\" '.Records[0].s3.object.key = $k' "$BM_TEST_DATA/s3-event.json" > "$W/longkey.json"
call longkey POST /events "${A[@]}" -m 10 -H 'Content-Type: application/json' --data-binary @"$W/longkey.json"
t_eq "a 20 KiB key: 400" "400" "$STATUS"
t_eq "... BMAS-005" "BMAS-005" "$(code)"
t_ok "... in a body that is valid JSON and short" \
    bash -c "jq -e . '$W/resp/longkey.body' >/dev/null && [ \$(wc -c < '$W/resp/longkey.body') -lt 8192 ]"

# 3. Repeated query parameter.
call repeated GET '/aggregates?group_by=model_id&group_by=source_region' "${A[@]}" -m 10
t_eq "repeated query parameter: 400" "400" "$STATUS"
t_eq "... BMAS-011" "BMAS-011" "$(code)"
t_ok "... naming the parameter" grep -q group_by "$W/resp/repeated.body"

# 4. In-flight budget: three clients hold 60 KiB each (180 of 200 KiB) without finishing;
# a fourth 60 KiB POST is over the budget.
holders=()
for i in 1 2 3; do
    SLOW_AUTH="Bearer $TOKEN" $SLOW hold 127.0.0.1 "$PORT" 61440 1000 > "$W/hold$i" &
    holders+=($!)
done
wait_for 10 bash -c "[ \$(cat $W/hold1 $W/hold2 $W/hold3 | grep -c holding) = 3 ]"
sleep 0.5 # the server has read the three sets of headers (they were sent before "holding")
head -c 61440 /dev/zero | tr '\0' ' ' > "$W/60k2"
call busy POST /events "${A[@]}" -m 10 -H 'Content-Type: application/json' --data-binary @"$W/60k2"
t_eq "past BMAS_MAX_INFLIGHT_BYTES: 503" "503" "$STATUS"
t_eq "... BMAS-024" "BMAS-024" "$(code)"
t_ok "... with Retry-After" grep -qi '^Retry-After: 1' "$W/resp/busy.hdr"
kill "${holders[@]}" 2>/dev/null
wait "${holders[@]}" 2>/dev/null
# Once the holders are gone their reservations are returned.
ok_after() {
    call busy_after POST /events "${A[@]}" -m 10 -H 'Content-Type: application/json' \
        --data-binary @"$W/test-event.json"
    [ "$STATUS" = 200 ]
}
t_ok "the budget comes back when the holders leave" wait_for 10 ok_after

# 5. Slow connections: 600 from 127.0.0.1, one header line a second for 7 s.
$SLOW loris 127.0.0.1 "$PORT" 127.0.0.1 600 1 7 > "$W/loris" &
LP=$!
sleep 2
hz=$(curl -sS -m 3 --interface 127.0.0.2 -o /dev/null -w '%{http_code}' "$BMAS_URL/healthz")
t_eq "/healthz answers 127.0.0.2 while 127.0.0.1 hangs 600 connections" "200" "$hz"
wait "$LP"
read -r opened closed first <<<"$(tr '=' ' ' < "$W/loris" | awk '{print $2, $4, $6}')"
t_eq "127.0.0.1 kept only BMAS_MAX_CONNECTIONS_PER_CLIENT connections" "40" "$opened"
t_eq "every slow connection was cut" "40" "$closed"
t_ok "... at the 3 s header deadline although each sent a line a second (first cut ${first}s)" \
    awk -v f="$first" 'BEGIN { exit !(f >= 1.5 && f <= 6) }'
t_ok "bmas logged the cuts" grep -q 'connections_cut' "$BMAS_LOG"
call status GET /status "${A[@]}" -m 10
t_ok "/status counts them (http.cut_at_deadline >= 40)" \
    test "$(jq -r '.http.cut_at_deadline' <<<"$BODY")" -ge 40
t_eq "... and no body bytes are held any more" "0" "$(jq -r '.http.body_bytes_in_flight' <<<"$BODY")"
call healthz GET /healthz -m 10
t_eq "/healthz 200" "200" "$STATUS"
call flush POST /flush "${A[@]}" -m 10
t_eq "POST /flush with nothing pending: 200" "200" "$STATUS"
call aggregates GET '/aggregates?group_by=model_id' "${A[@]}" -m 10
t_eq "GET /aggregates: 200" "200" "$STATUS"

openapi_check "${A[@]}"
srv_stop bmas
t_done
