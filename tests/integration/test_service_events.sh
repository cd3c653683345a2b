#!/bin/bash
# POST /events end to end: bmas-emulator as AWS, logs uploaded with the AWS CLI, S3's own
# notifications taken from SQS and posted as a Lambda event, plus SNS-wrapped, EventBridge,
# TestEvent, a missing object and a malformed body in one batch; exact totals; the same object
# delivered 50 times, 8 at once; auth, body limit, bad envelopes; /aggregates filters and
# group_by; a corrupt object quarantined; a restart keeps everything; every response checked
# against openapi.yaml.
set -u
. tests/tools/svc-lib.sh
svc_setup
TOKEN=t0ken-$$
A=(-H "Authorization: Bearer $TOKEN")

aws_q s3api create-bucket --bucket quiet >/dev/null
aws_q sqs create-queue --queue-name events >/dev/null
aws_q s3api put-bucket-notification-configuration --bucket logs --notification-configuration \
    '{"QueueConfigurations":[{"QueueArn":"arn:aws:sqs:us-east-1:000000000000:events","Events":["s3:ObjectCreated:*"]}]}'
QURL="$EMU_URL/000000000000/events"

K1="$P/20260420T001731Z_a1.json.gz"
K2="team a/$P/$(printf '\303\274')+x%2B (1).json.gz"
KD="$P/data/f3ae32b1_input.json.gz"
for k in "$K1" "$K2" "$KD"; do
    aws_q s3api put-object --bucket logs --key "$k" --body "$W/a.json.gz" >/dev/null
done
E3=$(aws_q s3api put-object --bucket quiet --key "$P/eventbridge.json.gz" --body "$W/a.json.gz" | jq -r .ETag | tr -d '"')
E4=$(aws_q s3api put-object --bucket quiet --key "$P/sns+one.json.gz" --body "$W/a.json.gz" | jq -r .ETag | tr -d '"')

# S3's notifications, as SQS delivers them: a TestEvent and three ObjectCreated.
: > "$W/msgs"
wait_for 10 bash -c "aws_q() { /usr/bin/aws --endpoint-url $EMU_URL --output json \"\$@\"; };
    aws_q sqs receive-message --queue-url $QURL --max-number-of-messages 10 --wait-time-seconds 1 \
    | jq -c '.Messages[]?' >> $W/msgs; [ \$(wc -l < $W/msgs) -ge 4 ]"
t_eq "S3 sent a TestEvent and three notifications" "4" "$(wc -l < "$W/msgs")"

SNS=$(jq -c --arg b quiet --arg k "$(form_key "$P/sns+one.json.gz")" --arg e "$E4" \
    '.Message |= (fromjson | .Records[0].s3.bucket.name = $b | .Records[0].s3.object.key = $k
                  | .Records[0].s3.object.eTag = $e | tojson)' "$BM_TEST_DATA/sns-wrapped-body.txt")
EB=$(jq -c --arg k "$P/eventbridge.json.gz" --arg e "$E3" \
    '.detail.bucket.name = "quiet" | .detail.object.key = $k | .detail.object.etag = $e' \
    "$BM_TEST_DATA/eventbridge-object-created.json")
MISSING=$(jq -c '.Records[0].s3.bucket.name = "logs" | .Records[0].s3.object.key = "nope.json.gz"
    | .Records[0].s3.object.eTag = "00000000000000000000000000000000"' "$BM_TEST_DATA/s3-event.json")
jq -s -c --arg sns "$SNS" --arg eb "$EB" --arg missing "$MISSING" '{Records: (
    [.[] | {messageId: .MessageId, receiptHandle: .ReceiptHandle, body: .Body,
            attributes: {ApproximateReceiveCount: "1"}, eventSource: "aws:sqs"}]
    + [{messageId: "sns-1", body: $sns, eventSource: "aws:sqs", attributes: {ApproximateReceiveCount: "1"}},
       {messageId: "eb-1", body: $eb, eventSource: "aws:sqs", attributes: {ApproximateReceiveCount: "1"}},
       {messageId: "missing-1", body: $missing, eventSource: "aws:sqs", attributes: {ApproximateReceiveCount: "1"}},
       {messageId: "garbled-1", body: "{not json", eventSource: "aws:sqs", attributes: {ApproximateReceiveCount: "1"}}])}' \
    "$W/msgs" > "$W/batch.json"

BMAS_ENV="AWS_ENDPOINT_URL=$EMU_URL AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test BMAS_AUTH_TOKEN=$TOKEN BMAS_FLUSH_INTERVAL=0 BMAS_MAX_BODY_BYTES=256K MAX_RETRY_ATTEMPTS=2 DLQ_ENABLED=true AWS_EC2_METADATA_DISABLED=true"
bmas_start || exit 1

call batch POST /events "${A[@]}" --data-binary @"$W/batch.json"
t_eq "batch answered 200" "200" "$STATUS"
t_eq "only the missing object and the garbled body are redelivered" \
    '["garbled-1","missing-1"]' "$(echo "$BODY" | jq -c '[.batchItemFailures[].itemIdentifier] | sort')"
call totals GET "/aggregates?group_by=" "${A[@]}"
t_eq "four objects (notification x2, SNS, EventBridge), exact totals" \
    '{"invocations":16,"input_tokens":1076,"output_tokens":1328,"cache_read_input_tokens":97916,"cache_write_input_tokens":903652,"cost_usd":0,"unpriced_invocations":16}' \
    "$(echo "$BODY" | jq -c .totals)"
call status1 GET /status "${A[@]}"
t_eq "status objects" '{"processed":4,"duplicates":0,"ignored":2,"failed":1,"quarantined":0}' \
    "$(echo "$BODY" | jq -c .objects)"
t_eq "status records" '{"processed":16,"invalid":0}' "$(echo "$BODY" | jq -c .records)"
t_eq "status errors" '{"BMAS-001":1,"BMAS-005":1,"BMAS-006":4}' "$(echo "$BODY" | jq -c .errors)"

# The same object delivered 50 times, 8 at once: counted once.
BARE=$(sed -n 2p "$W/msgs" | jq -r .Body)
echo "$BARE" > "$W/bare.json"
seq 50 | xargs -P 8 -I{} curl -m 60 -sS -o /dev/null -w '%{http_code}\n' "${A[@]}" \
    --data-binary @"$W/bare.json" "$BMAS_URL/events" > "$W/codes"
t_eq "50 duplicate deliveries all 200" "50" "$(grep -c '^200$' "$W/codes")"
call dup POST /events "${A[@]}" --data-binary @"$W/bare.json"
t_eq "a duplicate says so" "duplicate" "$(echo "$BODY" | jq -r .status)"
call status2 GET /status "${A[@]}"
t_eq "still four objects, 51 duplicates" '[4,51]' "$(echo "$BODY" | jq -c '[.objects.processed,.objects.duplicates]')"
call totals2 GET "/aggregates?group_by=" "${A[@]}"
t_eq "totals unchanged by duplicates" "16" "$(echo "$BODY" | jq .totals.invocations)"

# Bare envelopes and the TestEvent.
call test POST /events "${A[@]}" --data-binary @"$BM_TEST_DATA/s3-test-event.json"
t_eq "TestEvent ignored" "200 ignored" "$STATUS $(echo "$BODY" | jq -r .status)"
call missing POST /events "${A[@]}" --data "$MISSING"
t_eq "bare missing object: 404 BMAS-001" "404 BMAS-001" "$STATUS $(echo "$BODY" | jq -r .errorCode)"
t_eq "error details name the object" "nope.json.gz" "$(echo "$BODY" | jq -r .details.key)"

# Auth, limits, bad input.
call noauth GET /status
t_eq "no token: 401 BMAS-012" "401 BMAS-012" "$STATUS $(echo "$BODY" | jq -r .errorCode)"
call badauth POST /events -H "Authorization: Bearer wrong" --data-binary @"$W/bare.json"
t_eq "wrong token: 401" "401" "$STATUS"
call healthz GET /healthz
t_eq "healthz needs no token" "200 ok" "$STATUS $BODY"
head -c 300000 /dev/zero | tr '\0' 'x' > "$W/big"
call big POST /events "${A[@]}" --data-binary @"$W/big"
t_eq "oversized body: 413 BMAS-010" "413 BMAS-010" "$STATUS $(echo "$BODY" | jq -r .errorCode)"
call garbled POST /events "${A[@]}" --data '{"hello":"world"}'
t_eq "no envelope: 400 BMAS-005" "400 BMAS-005" "$STATUS $(echo "$BODY" | jq -r .errorCode)"
call notjson POST /events "${A[@]}" --data 'not json'
t_eq "not JSON: 400 BMAS-005" "400 BMAS-005" "$STATUS $(echo "$BODY" | jq -r .errorCode)"
call method GET /events "${A[@]}"
t_eq "GET /events: 405 BMAS-019" "405 BMAS-019" "$STATUS $(echo "$BODY" | jq -r .errorCode)"
t_ok "405 names the allowed method" grep -qi '^Allow: POST' "$W/resp/method.hdr"
call route GET /nope "${A[@]}"
t_eq "unknown route: 404 BMAS-018" "404 BMAS-018" "$STATUS $(echo "$BODY" | jq -r .errorCode)"

# /aggregates: filters, group_by, time range, errors.
call byptype GET "/aggregates?group_by=profile_type" "${A[@]}"
t_eq "group by profile_type" '[["Application",4],["CrossRegion",4],["GlobalCrossRegion",4],["OnDemand",4]]' \
    "$(echo "$BODY" | jq -c '[.rows[] | [.profile_type,.invocations]]')"
call filt GET "/aggregates?profile_type=GlobalCrossRegion&group_by=model_id,inference_region" "${A[@]}"
t_eq "filter by profile_type" '[["anthropic.claude-opus-4-5-20251101-v1:0","ap-southeast-2",4,97916]]' \
    "$(echo "$BODY" | jq -c '[.rows[] | [.model_id,.inference_region,.invocations,.cache_read_input_tokens]]')"
call filt2 GET "/aggregates?model_id=amazon.titan-embed-text-v2:0&source_region=us-east-1&group_by=operation" "${A[@]}"
t_eq "filter by model and region" '[["InvokeModel",4,20]]' \
    "$(echo "$BODY" | jq -c '[.rows[] | [.operation,.invocations,.input_tokens]]')"
# $H: the sample's hour, read once by svc_setup (no race with an hour boundary).
call range GET "/aggregates?from=${H}:18:00Z&to=${H}:19:00Z&group_by=minute" "${A[@]}"
t_eq "time range [from, to) by minute" "[[\"${H}:18:00Z\",4]]" \
    "$(echo "$BODY" | jq -c '[.rows[] | [.minute,.invocations]]')"
t_eq "range echoed" "[\"${H}:18:00Z\",\"${H}:19:00Z\"]" "$(echo "$BODY" | jq -c '[.from,.to]')"
call badparam GET "/aggregates?model=x" "${A[@]}"
t_eq "unknown parameter: 400 BMAS-011" "400 BMAS-011" "$STATUS $(echo "$BODY" | jq -r .errorCode)"
call badgroup GET "/aggregates?group_by=model" "${A[@]}"
t_eq "bad group_by: 400" "400" "$STATUS"
call badtime GET "/aggregates?from=yesterday" "${A[@]}"
t_eq "bad time: 400" "400" "$STATUS"

# A corrupt object fails, is remembered, and after MAX_RETRY_ATTEMPTS (2) is quarantined.
head -c 200 "$W/a.json.gz" > "$W/cut.gz"
ETC=$(aws_q s3api put-object --bucket quiet --key "$P/cut.json.gz" --body "$W/cut.gz" | jq -r .ETag | tr -d '"')
CUT=$(jq -c --arg k "$(form_key "$P/cut.json.gz")" --arg e "$ETC" '.Records[0].s3.bucket.name = "quiet"
    | .Records[0].s3.object.key = $k | .Records[0].s3.object.eTag = $e' "$BM_TEST_DATA/s3-event.json")
call cut1 POST /events "${A[@]}" --data "$CUT"
t_eq "truncated gzip: 422 BMAS-003" "422 BMAS-003" "$STATUS $(echo "$BODY" | jq -r .errorCode)"
call cut2 POST /events "${A[@]}" --data "$CUT"
call cut3 POST /events "${A[@]}" --data "$CUT"
t_eq "quarantined: 422 BMAS-020 (left to the DLQ)" "422 BMAS-020" "$STATUS $(echo "$BODY" | jq -r .errorCode)"
call status3 GET /status "${A[@]}"
t_eq "/status lists the quarantined object" "[\"$P/cut.json.gz\",2,\"BMAS-003\"]" \
    "$(echo "$BODY" | jq -c '[.quarantined[0].key,.quarantined[0].attempts,.quarantined[0].errorCode]')"

# A key overwritten since its event: the event's ETag no longer matches, nothing is counted.
OLD=$(jq -c --arg k "$(form_key "$K1")" '.Records[0].s3.bucket.name = "logs"
    | .Records[0].s3.object.key = $k | .Records[0].s3.object.eTag = "0123456789abcdef0123456789abcdef"' \
    "$BM_TEST_DATA/s3-event.json")
call superseded POST /events "${A[@]}" --data "$OLD"
t_eq "stale ETag: ignored, the newer object counts by its own event" "200 ignored" "$STATUS $(echo "$BODY" | jq -r .status)"

# Restart: counters, aggregates and the processed keys survive; DLQ_ENABLED=false acks.
srv_stop bmas "SIGTERM: clean exit"
t_ok "stop was logged" grep -q '"event":"stopped"' "$BMAS_LOG"
BMAS_ENV="${BMAS_ENV/DLQ_ENABLED=true/DLQ_ENABLED=false}"
bmas_start || exit 1
call status4 GET /status "${A[@]}"
t_eq "after restart: same objects" '[4,51]' "$(echo "$BODY" | jq -c '[.objects.processed,.objects.duplicates]')"
call totals3 GET "/aggregates?group_by=" "${A[@]}"
t_eq "after restart: same totals" "16" "$(echo "$BODY" | jq .totals.invocations)"
call dup2 POST /events "${A[@]}" --data-binary @"$W/bare.json"
t_eq "after restart: still a duplicate" "duplicate" "$(echo "$BODY" | jq -r .status)"
jq -c --arg b "$CUT" '{Records: [{messageId: "cut-9", body: $b, eventSource: "aws:sqs"}]}' -n > "$W/cutbatch.json"
call cut4 POST /events "${A[@]}" --data-binary @"$W/cutbatch.json"
t_eq "quarantined with DLQ_ENABLED=false: acknowledged" "[]" "$(echo "$BODY" | jq -c .batchItemFailures)"

call flush POST /flush "${A[@]}"
t_eq "flush answers" "200" "$STATUS"
openapi_check "${A[@]}"
srv_stop bmas "bmas after the restart"
srv_stop emu
t_done
