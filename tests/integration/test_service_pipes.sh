#!/bin/bash
# POST /events as an EventBridge Pipe from SQS posts to an API destination: S3's own
# notifications taken from the emulator's queue and posted one SQS record per request (200,
# counted once, a second post a duplicate), then as a JSON array (counted, exact totals); an
# object whose GetObject gets S3 503s answers a status Pipes retry (5xx) with Retry-After, and
# once the fault is gone the same record counts once; poison records and arrays answer 4xx
# with their BMAS code and no Retry-After; every response checked against openapi.yaml.
set -u
. tests/tools/svc-lib.sh
svc_setup
TOKEN=t0ken-$$
A=(-H "Authorization: Bearer $TOKEN")

aws_q sqs create-queue --queue-name pipe >/dev/null
aws_q s3api put-bucket-notification-configuration --bucket logs --notification-configuration \
    '{"QueueConfigurations":[{"QueueArn":"arn:aws:sqs:us-east-1:000000000000:pipe","Events":["s3:ObjectCreated:*"]}]}'
QURL="$EMU_URL/000000000000/pipe"
for i in 1 2 3 4 5; do
    aws_q s3api put-object --bucket logs --key "$P/pipe-$i.json.gz" --body "$W/a.json.gz" >/dev/null
done

# S3's notifications as SQS delivers them, turned into the records a Pipe posts (the shape of
# docs/formats.md 5.3): a TestEvent and five ObjectCreated.
: > "$W/msgs"
wait_for 10 bash -c "aws_q() { /usr/bin/aws --endpoint-url $EMU_URL --output json \"\$@\"; };
    aws_q sqs receive-message --queue-url $QURL --max-number-of-messages 10 --wait-time-seconds 1 \
    --attribute-names All | jq -c '.Messages[]?' >> $W/msgs; [ \$(wc -l < $W/msgs) -ge 6 ]"
t_eq "S3 sent a TestEvent and five notifications" "6" "$(wc -l < "$W/msgs")"
jq -c '{messageId: .MessageId, receiptHandle: .ReceiptHandle, body: .Body,
        attributes: (.Attributes // {ApproximateReceiveCount: "1"}), messageAttributes: {},
        md5OfBody: .MD5OfBody, eventSource: "aws:sqs",
        eventSourceARN: "arn:aws:sqs:us-east-1:000000000000:pipe", awsRegion: "us-east-1"}' \
    "$W/msgs" > "$W/records"
# rec NAME: the record whose object key ends in NAME.json.gz ("test" for the TestEvent).
rec() {
    jq -c --arg n "$1" 'select((.body | fromjson | .Records[0].s3.object.key // "test")
        | (. == "test" and $n == "test") or endswith("/" + $n + ".json.gz"))' "$W/records"
}
for n in pipe-1 pipe-2 pipe-3 pipe-4 pipe-5 test; do rec "$n" > "$W/$n.json"; done
t_eq "one record per object" "1 1 1 1 1 1" "$(for n in pipe-1 pipe-2 pipe-3 pipe-4 pipe-5 test; do
    wc -l < "$W/$n.json"; done | tr '\n' ' ' | sed 's/ $//')"
id() { jq -r .messageId "$W/$1.json"; }

# What one sample object holds, by jq over the sample (not by bmas): N objects are N times it.
# No BMAS_PRICES here: every invocation is unpriced.
sample_totals() {
    jq -s -c --argjson n "$1" '{invocations: (length * $n),
        input_tokens: (map(.input.inputTokenCount // 0) | add * $n),
        output_tokens: (map(.output.outputTokenCount // 0) | add * $n),
        cache_read_input_tokens: (map(.input.cacheReadInputTokenCount // 0) | add * $n),
        cache_write_input_tokens: (map(.input.cacheWriteInputTokenCount // 0) | add * $n),
        cost_usd: 0, unpriced_invocations: (length * $n)}' \
        "$BM_TEST_DATA/bedrock-log-sample.jsonl"
}
totals() {
    call "totals$1" GET "/aggregates?group_by=" "${A[@]}"
    echo "$BODY" | jq -c .totals
}
retry_after() { grep -i '^retry-after:' "$W/resp/$1.hdr" | tr -dc '0-9'; }

BMAS_ENV="AWS_ENDPOINT_URL=$EMU_URL AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test BMAS_AUTH_TOKEN=$TOKEN BMAS_FLUSH_INTERVAL=0 MAX_RETRY_ATTEMPTS=3 BATCH_SIZE=5 DLQ_ENABLED=true AWS_EC2_METADATA_DISABLED=true"
bmas_start || exit 1

# One record per request, as a Pipe posts to an API destination.
call one POST /events "${A[@]}" --data-binary @"$W/pipe-1.json"
t_eq "one record: 200 processed, named by its messageId" "200 processed $(id pipe-1)" \
    "$STATUS $(echo "$BODY" | jq -r '.status + " " + .messageId')"
call one-again POST /events "${A[@]}" --data-binary @"$W/pipe-1.json"
t_eq "the same record again: 200 duplicate" "200 duplicate" "$STATUS $(echo "$BODY" | jq -r .status)"
t_eq "counted once" "$(sample_totals 1)" "$(totals 1)"
call test-one POST /events "${A[@]}" --data-binary @"$W/test.json"
t_eq "the TestEvent's record: 200 ignored" "200 ignored" "$STATUS $(echo "$BODY" | jq -r .status)"

# An array of records, as a batching Pipe passes them to its target.
jq -s -c . "$W/pipe-2.json" "$W/pipe-3.json" "$W/pipe-4.json" "$W/pipe-1.json" > "$W/array.json"
call array POST /events "${A[@]}" --data-binary @"$W/array.json"
t_eq "array: 200, nothing to redeliver" "200 []" "$STATUS $(echo "$BODY" | jq -c .batchItemFailures)"
t_eq "four objects, exact totals" "$(sample_totals 4)" "$(totals 2)"
call array-again POST /events "${A[@]}" --data-binary @"$W/array.json"
t_eq "the array again: 200, counted nothing" "200 []" "$STATUS $(echo "$BODY" | jq -c .batchItemFailures)"
t_eq "still four objects" "$(sample_totals 4)" "$(totals 3)"

# S3 answers 503 to every GetObject: bmas retries MAX_RETRY_ATTEMPTS times itself, then tells
# the sender to retry (5xx with Retry-After), alone or in an array.
emu_fault '{"service":"s3","operation":"GetObject","status":503,"code":"SlowDown"}'
call s3down POST /events "${A[@]}" --data-binary @"$W/pipe-5.json"
t_eq "S3 503: 502 BMAS-017, a status Pipes retry" "502 BMAS-017" "$STATUS $(echo "$BODY" | jq -r .errorCode)"
t_range "with Retry-After in seconds" 1 60 "$(retry_after s3down)"
t_eq "the error names the record" "$(id pipe-5)" "$(echo "$BODY" | jq -r .details.messageId)"
t_eq "bmas tried S3 MAX_RETRY_ATTEMPTS (3) times first" "3" \
    "$(curl -m 30 -sS "$EMU_URL/_emulator/faults" | jq '[.faults[].hits] | add')"
jq -s -c . "$W/pipe-1.json" "$W/pipe-5.json" > "$W/array-down.json"
call array-down POST /events "${A[@]}" --data-binary @"$W/array-down.json"
t_eq "array with the unreadable object: 502, only it listed" "502 BMAS-017 [\"$(id pipe-5)\"]" \
    "$STATUS $(echo "$BODY" | jq -r .errorCode) $(echo "$BODY" | jq -c '[.batchItemFailures[].itemIdentifier]')"
t_range "with Retry-After too" 1 60 "$(retry_after array-down)"
t_eq "nothing counted while S3 fails" "$(sample_totals 4)" "$(totals 4)"
curl -m 30 -fsS -X DELETE "$EMU_URL/_emulator/faults" >/dev/null
call s3back POST /events "${A[@]}" --data-binary @"$W/pipe-5.json"
t_eq "S3 back: the redelivered record counts" "200 processed" "$STATUS $(echo "$BODY" | jq -r .status)"
call s3back-again POST /events "${A[@]}" --data-binary @"$W/pipe-5.json"
t_eq "and once only" "200 duplicate" "$STATUS $(echo "$BODY" | jq -r .status)"
t_eq "five objects, exact totals" "$(sample_totals 5)" "$(totals 5)"

# Poison: 4xx with its code, no Retry-After (API destinations do not retry it; the queue's
# maxReceiveCount takes it to the DLQ).
GARBLED=$(jq -c '.messageId = "garbled-1" | .body = "{not json"' "$W/pipe-1.json")
call garbled POST /events "${A[@]}" --data "$GARBLED"
t_eq "unparseable body: 400 BMAS-005" "400 BMAS-005 garbled-1" \
    "$STATUS $(echo "$BODY" | jq -r '.errorCode + " " + .details.messageId')"
t_eq "without Retry-After" "" "$(retry_after garbled)"
MISSING=$(jq -c '.messageId = "missing-1" | .body |= (fromjson | .Records[0].s3.object.key = "nope.json.gz"
    | .Records[0].s3.object.eTag = "00000000000000000000000000000000" | tojson)' "$W/pipe-1.json")
call missing POST /events "${A[@]}" --data "$MISSING"
t_eq "object not found: 404 BMAS-001" "404 BMAS-001 nope.json.gz" \
    "$STATUS $(echo "$BODY" | jq -r '.errorCode + " " + .details.key')"
t_eq "without Retry-After" "" "$(retry_after missing)"
REFUSED=$(jq -c '.messageId = "refused-1" | .body |= (fromjson | .Records[0].s3.bucket.name = "10.0.0.1" | tojson)' \
    "$W/pipe-1.json")
before=$(curl -m 30 -sS "$EMU_URL/_emulator/requests" | jq '[.requests[] | select(.operation == "GetObject") | .count] | add // 0')
t_range "GetObject calls counted so far" 1 1000 "$before"
call refused POST /events "${A[@]}" --data "$REFUSED"
t_eq "a bucket name S3 could not have sent: 400 BMAS-005" "400 BMAS-005" "$STATUS $(echo "$BODY" | jq -r .errorCode)"
t_eq "and nothing fetched" "$before" \
    "$(curl -m 30 -sS "$EMU_URL/_emulator/requests" | jq '[.requests[] | select(.operation == "GetObject") | .count] | add // 0')"
printf '[%s,%s]' "$(cat "$W/pipe-2.json")" "$GARBLED" > "$W/array-poison.json"
call array-poison POST /events "${A[@]}" --data-binary @"$W/array-poison.json"
t_eq "array with poison: 400 BMAS-005, only it listed" '400 BMAS-005 ["garbled-1"]' \
    "$STATUS $(echo "$BODY" | jq -r .errorCode) $(echo "$BODY" | jq -c '[.batchItemFailures[].itemIdentifier]')"
t_eq "without Retry-After" "" "$(retry_after array-poison)"

# Whole bodies no sender could mean.
call empty POST /events "${A[@]}" --data '[]'
t_eq "empty array: 400 BMAS-005" "400 BMAS-005" "$STATUS $(echo "$BODY" | jq -r .errorCode)"
jq -s -c '[.[], .[]]' "$W/pipe-1.json" "$W/pipe-2.json" "$W/pipe-3.json" > "$W/six.json"
call over POST /events "${A[@]}" --data-binary @"$W/six.json"
t_eq "six records over BATCH_SIZE=5: 413 BMAS-010" "413 BMAS-010" "$STATUS $(echo "$BODY" | jq -r .errorCode)"
NOID=$(jq -c 'del(.messageId)' "$W/pipe-1.json")
call noid POST /events "${A[@]}" --data "$NOID"
t_eq "a record without messageId: 400 BMAS-005" "400 BMAS-005" "$STATUS $(echo "$BODY" | jq -r .errorCode)"
call wrongkey POST /events -H "Authorization: Bearer wrong" --data-binary @"$W/pipe-1.json"
t_eq "a Connection with the wrong API key value: 401" "401 BMAS-012" "$STATUS $(echo "$BODY" | jq -r .errorCode)"

call status GET /status "${A[@]}"
t_eq "five objects processed" "5" "$(echo "$BODY" | jq .objects.processed)"
call healthz GET /healthz
call flush POST /flush "${A[@]}"
t_eq "flush answers" "200" "$STATUS"
openapi_check "${A[@]}"
srv_stop bmas
srv_stop emu
t_done
