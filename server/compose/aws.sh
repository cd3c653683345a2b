#!/bin/sh
# The AWS side of docker-compose.yml, in POSIX sh with curl's own SigV4 (so it runs in the bmas
# image, against LocalStack there and against bmas-emulator in tests/integration/test_compose.sh):
#   aws.sh setup   the log bucket, the queue with its DLQ (redrive after 3 receives), and the
#                  bucket's ObjectCreated notification to the queue; safe to run again
#   aws.sh feed    uploads a fresh `bmas sample` object (stamped now, under Bedrock's key
#                  layout, Regions taking turns) every FEED_EVERY seconds until stopped
# Environment: AWS_ENDPOINT_URL (required), AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY [test],
# AWS_REGION [us-east-1], AWS_ACCOUNT_ID (the queues' account) [000000000000], BUCKET
# [bedrock-logs], QUEUE [bedrock-log-objects], FEED_EVERY [20], FEED_COUNT (objects, 0 = no
# end) [0], FEED_RECORDS [200], FEED_TOTALS (a file the generator's totals lines are appended
# to; they are printed either way), BMAS [bmas].
set -eu

EP=${AWS_ENDPOINT_URL:?AWS_ENDPOINT_URL must name the S3/SQS endpoint}
EP=${EP%/}
REGION=${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}
ACCOUNT=${AWS_ACCOUNT_ID:-000000000000}
BUCKET=${BUCKET:-bedrock-logs}
QUEUE=${QUEUE:-bedrock-log-objects}
BMAS=${BMAS:-bmas}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/bmas-compose.XXXXXX")
SLEEPER=""
# The feeder's sleep runs in the background so a stop signal ends it at once (a shell waiting
# in a foreground sleep as PID 1 would sit out the whole grace period).
cleanup() {
    [ -z "$SLEEPER" ] || kill "$SLEEPER" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

say() { printf 'bmas-compose: %s\n' "$*" >&2; }

# signed SERVICE EXPECTED-CODES curl-args...: one signed request; fails, saying why, when the
# status is not one of the expected ones (a space-separated list).
signed() {
    svc=$1 want=$2
    shift 2
    code=$(curl -m 60 -sS -o "$TMP/body" -w '%{http_code}' \
        --aws-sigv4 "aws:amz:$REGION:$svc" \
        --user "${AWS_ACCESS_KEY_ID:-test}:${AWS_SECRET_ACCESS_KEY:-test}" "$@") || code=000
    for w in $want; do
        [ "$code" = "$w" ] && return 0
    done
    say "$svc $*: HTTP $code: $(head -c 600 "$TMP/body" 2>/dev/null)"
    return 1
}

wait_healthy() {
    i=0
    until curl -m 5 -fsS -o /dev/null "$EP/_localstack/health" 2>/dev/null; do
        i=$((i + 1))
        [ "$i" -lt 120 ] || { say "no answer from $EP/_localstack/health"; exit 1; }
        sleep 0.5
    done
}

# S3 needs x-amz-content-sha256, which curl signs but does not add itself.
s3() { signed s3 "$@" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD'; }
sqs() { signed sqs 200 -X POST "$EP/" --data 'Version=2012-11-05' "$@"; }

setup() {
    wait_healthy
    # 409 BucketAlreadyOwnedByYou: a second run of setup (the state volume of the last one).
    s3 "200 409" -X PUT "$EP/$BUCKET"
    sqs --data Action=CreateQueue --data-urlencode "QueueName=$QUEUE-dlq"
    sqs --data Action=CreateQueue --data-urlencode "QueueName=$QUEUE" \
        --data Attribute.1.Name=VisibilityTimeout --data Attribute.1.Value=300 \
        --data Attribute.2.Name=RedrivePolicy \
        --data-urlencode "Attribute.2.Value={\"deadLetterTargetArn\":\"arn:aws:sqs:$REGION:$ACCOUNT:$QUEUE-dlq\",\"maxReceiveCount\":\"3\"}"
    # curl signs the query as written: "notification=" with its "=".
    s3 200 -X PUT -H 'Content-Type: application/xml' "$EP/$BUCKET?notification=" --data \
        "<NotificationConfiguration><QueueConfiguration><Id>bmas</Id><Queue>arn:aws:sqs:$REGION:$ACCOUNT:$QUEUE</Queue><Event>s3:ObjectCreated:*</Event></QueueConfiguration></NotificationConfiguration>"
    say "s3://$BUCKET notifies $QUEUE (DLQ $QUEUE-dlq after 3 receives) at $EP"
}

feed() {
    every=${FEED_EVERY:-20}
    count=${FEED_COUNT:-0}
    n=0
    wait_healthy
    while :; do
        case $((n % 3)) in 0) r=us-east-1 ;; 1) r=eu-west-1 ;; *) r=ap-southeast-2 ;; esac
        # The span before now: each object holds the traffic since the last one.
        "$BMAS" sample --records "${FEED_RECORDS:-200}" --span "$every" --region "$r" \
            -o "$TMP/obj.json.gz" --totals "$TMP/totals"
        line=$(tail -n 1 "$TMP/totals")
        key=$(printf '%s\n' "$line" | sed -n 's/.*"key":"\([^"]*\)".*/\1/p')
        [ -n "$key" ] || { say "no key in the generator's totals: $line"; exit 1; }
        s3 200 -X PUT -H 'Content-Type: application/octet-stream' \
            --data-binary "@$TMP/obj.json.gz" "$EP/$BUCKET/$key"
        printf '%s\n' "$line"
        [ -z "${FEED_TOTALS:-}" ] || printf '%s\n' "$line" >>"$FEED_TOTALS"
        n=$((n + 1))
        [ "$count" -eq 0 ] || [ "$n" -lt "$count" ] || break
        sleep "$every" &
        SLEEPER=$!
        wait "$SLEEPER" || true
        SLEEPER=""
    done
}

case "${1:-}" in
setup) setup ;;
feed) feed ;;
*)
    echo "usage: aws.sh setup | feed   (environment: see the top of this script)" >&2
    exit 2
    ;;
esac
