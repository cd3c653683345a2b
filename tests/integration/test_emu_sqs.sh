#!/bin/bash
# SQS against bmas-emulator with Debian's CLI (Query protocol) and the pip CLI (JSON 1.0):
# queues and attributes, MD5s, visibility, receipt handles, long polling, DLQ redrive, batches.
set -u
. "$(dirname "$0")/../tools/svc-lib.sh"
itest_setup || exit 1

Q=q-$$
D=dlq-$$
qurl=$(aws_q sqs create-queue --queue-name "$Q" | jq -r .QueueUrl)
t_eq "create-queue returns a LocalStack-style URL" "$EMU_URL/000000000000/$Q" "$qurl"
durl=$($J sqs create-queue --queue-name "$D" | jq -r .QueueUrl)
t_eq "get-queue-url" "$durl" "$(aws_q sqs get-queue-url --queue-name "$D" | jq -r .QueueUrl)"
t_eq "get-queue-url (second CLI)" "$qurl" "$($J sqs get-queue-url --queue-name "$Q" | jq -r .QueueUrl)"
darn=$(aws_q sqs get-queue-attributes --queue-url "$durl" --attribute-names QueueArn |
    jq -r .Attributes.QueueArn)
t_eq "QueueArn" "arn:aws:sqs:us-east-1:000000000000:$D" "$darn"

# RedrivePolicy with maxReceiveCount as a string (Query CLI) and VisibilityTimeout.
aws_q sqs set-queue-attributes --queue-url "$qurl" --attributes \
    "{\"VisibilityTimeout\":\"45\",\"RedrivePolicy\":\"{\\\"deadLetterTargetArn\\\":\\\"$darn\\\",\\\"maxReceiveCount\\\":\\\"2\\\"}\"}"
attrs=$($J sqs get-queue-attributes --queue-url "$qurl" --attribute-names All)
t_eq "set-queue-attributes VisibilityTimeout" 45 "$(echo "$attrs" | jq -r .Attributes.VisibilityTimeout)"
t_eq "set-queue-attributes RedrivePolicy" "$darn 2" \
    "$(echo "$attrs" | jq -r '.Attributes.RedrivePolicy|fromjson|"\(.deadLetterTargetArn) \(.maxReceiveCount)"')"

body='héllo <&> "quotes" '"'"'and'"'"' tabs	and
newlines'
out=$(aws_q sqs send-message --queue-url "$qurl" --message-body "$body")
t_eq "send-message MD5OfMessageBody" "$(printf '%s' "$body" | md5sum | cut -d' ' -f1)" \
    "$(echo "$out" | jq -r .MD5OfMessageBody)"
mid=$(echo "$out" | jq -r .MessageId)
r1=$($J sqs receive-message --queue-url "$qurl" --attribute-names All --max-number-of-messages 10)
t_eq "receive-message returns the body exactly" "$body" "$(echo "$r1" | jq -r '.Messages[0].Body')"
t_eq "receive-message MessageId and MD5OfBody" "$mid $(printf '%s' "$body" | md5sum | cut -d' ' -f1)" \
    "$(echo "$r1" | jq -r '.Messages[0]|"\(.MessageId) \(.MD5OfBody)"')"
t_eq "ApproximateReceiveCount after one receive" 1 \
    "$(echo "$r1" | jq -r '.Messages[0].Attributes.ApproximateReceiveCount')"
t_ok "SentTimestamp is epoch milliseconds" \
    eval '[ "$(echo "$r1" | jq -r ".Messages[0].Attributes.SentTimestamp|tonumber > 1600000000000")" = true ]'
h1=$(echo "$r1" | jq -r '.Messages[0].ReceiptHandle')
t_eq "in flight: not visible, counted as NotVisible" "0 1" \
    "$(aws_q sqs get-queue-attributes --queue-url "$qurl" --attribute-names All |
        jq -r '.Attributes|"\(.ApproximateNumberOfMessages) \(.ApproximateNumberOfMessagesNotVisible)"')"
t_ok "change-message-visibility to 0" \
    aws_q sqs change-message-visibility --queue-url "$qurl" --receipt-handle "$h1" --visibility-timeout 0
r2=$(aws_q sqs receive-message --queue-url "$qurl" --attribute-names ApproximateReceiveCount \
    --visibility-timeout 0)
h2=$(echo "$r2" | jq -r '.Messages[0].ReceiptHandle')
t_eq "visible again: second receive counts 2" 2 "$(echo "$r2" | jq -r '.Messages[0].Attributes.ApproximateReceiveCount')"
t_ok "receipt handle changes per receive" [ "$h1" != "$h2" ]
# Past maxReceiveCount (2) the next receive moves the message to the DLQ instead.
r3=$($J sqs receive-message --queue-url "$qurl")
t_eq "third receive: redriven, nothing delivered" "" "$(echo "$r3" | jq -r '.Messages[0].Body // empty' 2>/dev/null)"
r4=$(aws_q sqs receive-message --queue-url "$durl" --wait-time-seconds 2)
t_eq "the DLQ holds the same message" "$mid" "$(echo "$r4" | jq -r '.Messages[0].MessageId')"
t_ok "delete-message from the DLQ" aws_q sqs delete-message --queue-url "$durl" \
    --receipt-handle "$(echo "$r4" | jq -r '.Messages[0].ReceiptHandle')"
t_eq "DLQ empty after delete" "0 0" \
    "$($J sqs get-queue-attributes --queue-url "$durl" --attribute-names All |
        jq -r '.Attributes|"\(.ApproximateNumberOfMessages) \(.ApproximateNumberOfMessagesNotVisible)"')"

# Long polling: an empty queue holds the request for WaitTimeSeconds...
t0=$(now_ms)
out=$(aws_q sqs receive-message --queue-url "$durl" --wait-time-seconds 2)
dt=$(( $(now_ms) - t0 ))
t_all "long poll on an empty queue waits ~2 s and returns nothing ($dt ms)" \
    [ "$dt" -ge 1900 ] -- [ -z "$out" -o "$(echo "$out" | jq -r '.Messages|length')" = 0 ]
# ... and a message sent meanwhile ends it early, while other requests are still served. Both
# requests go through curl (libcurl's SigV4), not the CLIs: a CLI takes seconds to start on a
# loaded machine, which would swamp the timing this checks.
sqs_curl() {
    curl_sigv4 sqs -m 30 -X POST -H 'Content-Type: application/x-www-form-urlencoded' \
        --data "Version=2012-11-05&$1" "$durl"
}
sqs_curl "Action=ReceiveMessage&WaitTimeSeconds=15" >"$ITEST_HOME/lp.xml" &
lp=$!
sleep 1 # the receive is waiting in the emulator by now
t0=$(now_ms)
sqs_curl "Action=SendMessage&MessageBody=wake-up" >/dev/null
sent_ms=$(( $(now_ms) - t0 ))
wait "$lp"
dt=$(( $(now_ms) - t0 ))
t_eq "long poll returns the message sent meanwhile" wake-up \
    "$(sed -n 's:.*<Body>\(.*\)</Body>.*:\1:p' "$ITEST_HOME/lp.xml")"
t_all "long poll ended early ($dt ms after the send, of 14000 left) and the send was not held up ($sent_ms ms)" \
    [ "$dt" -lt 7000 ] -- [ "$sent_ms" -lt 5000 ]

# Message attributes: MD5OfMessageAttributes computed independently (SQS's documented algorithm).
md5_attrs=$(python3 - <<'PY'
import hashlib, struct
attrs = {"team": ("String", b"a"), "n": ("Number", b"42"), "raw": ("Binary", b"\x00\x01\xff")}
h = hashlib.md5()
for name in sorted(attrs):
    t, v = attrs[name]
    for part in (name.encode(), t.encode()):
        h.update(struct.pack(">I", len(part)) + part)
    h.update(b"\x02" if t == "Binary" else b"\x01")
    h.update(struct.pack(">I", len(v)) + v)
print(h.hexdigest())
PY
)
# Debian's CLI v2 reads blob arguments as base64 (the pip v1 would take "AAH/" as raw bytes).
out=$(aws_q sqs send-message --queue-url "$durl" --message-body attrs --message-attributes \
    '{"team":{"DataType":"String","StringValue":"a"},"n":{"DataType":"Number","StringValue":"42"},"raw":{"DataType":"Binary","BinaryValue":"AAH/"}}')
t_eq "MD5OfMessageAttributes" "$md5_attrs" "$(echo "$out" | jq -r .MD5OfMessageAttributes)"
out=$($J sqs receive-message --queue-url "$durl" --message-attribute-names All --max-number-of-messages 10)
t_eq "received message attributes" "a 42 AAH/" \
    "$(echo "$out" | jq -r '[.Messages[]|select(.Body=="attrs")][0].MessageAttributes|"\(.team.StringValue) \(.n.StringValue) \(.raw.BinaryValue)"')"

out=$($J sqs send-message-batch --queue-url "$qurl" --entries Id=a,MessageBody=one Id=b,MessageBody=two)
t_eq "send-message-batch" "a b" "$(echo "$out" | jq -r '[.Successful[].Id]|sort|join(" ")')"
out=$(aws_q sqs receive-message --queue-url "$qurl" --max-number-of-messages 10)
t_eq "MaxNumberOfMessages 10 returns both" "one two" "$(echo "$out" | jq -r '[.Messages[].Body]|sort|join(" ")')"
entries=$(echo "$out" | jq -c '[.Messages|to_entries[]|{Id:"e\(.key)",ReceiptHandle:.value.ReceiptHandle}]')
out=$(aws_q sqs delete-message-batch --queue-url "$qurl" --entries "$entries")
t_eq "delete-message-batch" "e0 e1" "$(echo "$out" | jq -r '[.Successful[].Id]|sort|join(" ")')"

t_aws_err "MaxNumberOfMessages 11: InvalidParameterValue" InvalidParameterValue \
    aws_q sqs receive-message --queue-url "$qurl" --max-number-of-messages 11
t_aws_err "unknown queue (Query): NonExistentQueue" AWS.SimpleQueueService.NonExistentQueue \
    aws_q sqs get-queue-url --queue-name "nope-$$"
t_aws_err "wrong secret (Query): SignatureDoesNotMatch" SignatureDoesNotMatch \
    with_secret wrong aws_q sqs send-message --queue-url "$qurl" --message-body x
if [ "$HAVE_JSON_CLI" = 1 ]; then
    t_aws_err "unknown queue (JSON): NonExistentQueue via x-amzn-query-error" \
        AWS.SimpleQueueService.NonExistentQueue aws_j sqs send-message \
        --queue-url "$EMU_URL/000000000000/nope-$$" --message-body x
    t_aws_err "wrong secret (JSON): SignatureDoesNotMatch" SignatureDoesNotMatch \
        with_secret wrong aws_j sqs list-queues
else
    t_skip "JSON 1.0 errors" "no pip aws on PATH"
fi
out=$(curl -m 60 -sS -X POST -H 'Content-Type: application/x-amz-json-1.0' \
    -H 'X-Amz-Target: AmazonSQS.ListQueues' -d '{}' -D "$ITEST_HOME/h" "$EMU_URL/")
t_eq "unsigned JSON request: __type" "com.amazon.coral.service#MissingAuthenticationTokenException" \
    "$(echo "$out" | jq -r '.__type')"
t_ok "unsigned JSON request: x-amzn-query-error header" \
    grep -qi '^x-amzn-query-error: MissingAuthenticationToken;Sender' "$ITEST_HOME/h"

t_eq "list-queues" "$EMU_URL/000000000000/$D $EMU_URL/000000000000/$Q" \
    "$($J sqs list-queues | jq -r '.QueueUrls|sort|join(" ")')"
t_ok "delete-queue" aws_q sqs delete-queue --queue-url "$qurl"
t_aws_err "deleted queue is gone" AWS.SimpleQueueService.NonExistentQueue \
    aws_q sqs get-queue-url --queue-name "$Q"
srv_stop emu
t_done
