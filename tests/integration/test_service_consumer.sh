#!/bin/bash
# Consumer mode (BMAS_SQS_QUEUE_URL) against bmas-emulator: S3 notifications flow through SQS
# to bmas, which counts each object once and deletes the messages; an S3 outage (503 SlowDown)
# is retried; a corrupt object's message is redelivered until the queue's redrive policy moves
# it to the DLQ. Plus bmas ingest s3:// backfill over the same bucket with the same numbers.
set -u
. tests/tools/svc-lib.sh
svc_setup

aws_q sqs create-queue --queue-name logs-dlq >/dev/null
aws_q sqs create-queue --queue-name logs-q --attributes '{"VisibilityTimeout":"1","RedrivePolicy":"{\"deadLetterTargetArn\":\"arn:aws:sqs:us-east-1:000000000000:logs-dlq\",\"maxReceiveCount\":\"3\"}"}' >/dev/null
aws_q s3api put-bucket-notification-configuration --bucket logs --notification-configuration \
    '{"QueueConfigurations":[{"QueueArn":"arn:aws:sqs:us-east-1:000000000000:logs-q","Events":["s3:ObjectCreated:*"],"Filter":{"Key":{"FilterRules":[{"Name":"suffix","Value":".json.gz"}]}}}]}'
Q="$EMU_URL/000000000000/logs-q"
DLQ="$EMU_URL/000000000000/logs-dlq"

BMAS_ENV="AWS_ENDPOINT_URL=$EMU_URL AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test BMAS_SQS_QUEUE_URL=$Q BMAS_SQS_WAIT_SECONDS=1 BMAS_FLUSH_INTERVAL=0 MAX_RETRY_ATTEMPTS=5 AWS_EC2_METADATA_DISABLED=true"
bmas_start || exit 1
processed() { curl -m 60 -sS "$BMAS_URL/status" | jq .objects.processed; }
queue_depth() { # visible + in flight
    aws_q sqs get-queue-attributes --queue-url "$1" --attribute-names All |
        jq '(.Attributes.ApproximateNumberOfMessages | tonumber) + (.Attributes.ApproximateNumberOfMessagesNotVisible | tonumber)'
}

# S3 is flaky at first: the first two GetObject calls get 503 SlowDown.
emu_fault '{"service":"s3","operation":"GetObject","status":503,"code":"SlowDown","count":2}'
for i in 1 2 3; do aws_q s3api put-object --bucket logs --key "$P/obj-$i.json.gz" --body "$W/a.json.gz" >/dev/null; done
aws_q s3api put-object --bucket logs --key "$P/data/req_input.json.gz" --body "$W/a.json.gz" >/dev/null
t_ok "three objects counted from the queue" wait_for 30 bash -c "[ \$(curl -m 60 -sS $BMAS_URL/status | jq .objects.processed) = 3 ]"
t_ok "the queue drained (messages deleted)" wait_for 15 bash -c "[ \$(/usr/bin/aws --endpoint-url $EMU_URL sqs get-queue-attributes --queue-url $Q --attribute-names All | jq '(.Attributes.ApproximateNumberOfMessages|tonumber)+(.Attributes.ApproximateNumberOfMessagesNotVisible|tonumber)') = 0 ]"
call agg GET "/aggregates?group_by="
t_eq "exact totals for three objects" '{"invocations":12,"input_tokens":807}' "$(echo "$BODY" | jq -c '.totals | {invocations,input_tokens}')"
call st GET /status
t_eq "TestEvent and the offloaded body ignored" "2" "$(echo "$BODY" | jq .objects.ignored)"
t_eq "consumer counters" '[true,true]' "$(echo "$BODY" | jq -c '[.consumer.received >= 5, .consumer.deleted >= 5]')"
t_eq "the S3 retries left no failure behind" "0" "$(echo "$BODY" | jq .objects.failed)"

# A corrupt object: its message is redelivered (bmas keeps it), and after maxReceiveCount (3)
# SQS moves it to the DLQ.
head -c 100 "$W/a.json.gz" > "$W/cut.gz"
aws_q s3api put-object --bucket logs --key "$P/cut.json.gz" --body "$W/cut.gz" >/dev/null
t_ok "the corrupt object's message reached the DLQ" wait_for 40 bash -c "[ \$(/usr/bin/aws --endpoint-url $EMU_URL sqs get-queue-attributes --queue-url $DLQ --attribute-names ApproximateNumberOfMessages | jq -r .Attributes.ApproximateNumberOfMessages) = 1 ]"
call st2 GET /status
t_eq "its failures counted with BMAS-003" '[true,true]' "$(echo "$BODY" | jq -c '[.objects.failed >= 3, .errors["BMAS-003"] >= 3]')"
t_eq "still three objects" "3" "$(echo "$BODY" | jq .objects.processed)"

# The same bucket read by the backfill gives the same numbers (and skips the same objects).
out=$(AWS_ENDPOINT_URL=$EMU_URL "$BINDIR/bmas" ingest --json "s3://logs/AWSLogs/" 2>"$W/err")
t_eq "backfill exit 1 (the corrupt object)" "1" "$?"
t_eq "backfill totals match the service" '{"invocations":12,"input_tokens":807}' "$(echo "$out" | jq -c '.totals | {invocations,input_tokens}')"
t_ok "backfill names the corrupt object" grep -q "cut.json.gz: BMAS-003" "$W/err"
srv_stop bmas "bmas in consumer mode"

# SIGTERM during a 20 s long poll on an empty queue: bmas stops within a second (the poll is
# cancelled, not waited out) and logs no warning for it.
aws_q sqs create-queue --queue-name idle-q >/dev/null
BMAS_DB= BMAS_ENV="AWS_ENDPOINT_URL=$EMU_URL AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test BMAS_SQS_QUEUE_URL=$EMU_URL/000000000000/idle-q BMAS_SQS_WAIT_SECONDS=20 BMAS_FLUSH_INTERVAL=0 AWS_EC2_METADATA_DISABLED=true" bmas_start || exit 1
# A long poll is under way when bmas holds a connection to the emulator (ss, iproute2).
polling() { ss -tnpH state established "( dport = :$EMU_PORT )" | grep -q "pid=$BMAS_PID,"; }
t_ok "a long poll is under way" wait_for 10 polling
sleep 1 # inside the 20 s wait of that poll
t0=$(now_ms)
kill -TERM "$BMAS_PID"
wait "$BMAS_PID"
st=$?
took=$(( $(now_ms) - t0 ))
BMAS_PID=
t_eq "SIGTERM during the long poll: exit 0" "0" "$st"
echo "# stopped ${took} ms after SIGTERM"
t_ok "stopped within 1 s of SIGTERM (took ${took} ms, the poll had 19 s left)" [ "$took" -lt 1000 ]
t_eq "no warning or error logged by the stop" "" "$(jq -r 'select(.level != "INFO" and .level != "DEBUG") | .event' "$BMAS_LOG" 2>/dev/null)"
t_eq "no sanitizer report" "" "$(san_report "$BMAS_LOG")"
srv_stop emu
t_done
