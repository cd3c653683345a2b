#!/bin/bash
# make run: bmas doing its job on an embedded default, no cloud needed. bmas-emulator plays AWS
# (S3, SQS, CloudWatch on one port); a bucket sends its ObjectCreated notifications to a queue;
# bmas consumes the queue into a SQLite file and publishes to the emulator's CloudWatch; sample
# Bedrock logs (generated traffic for the last hour, tests/bench/gen_logs.c) are uploaded, and a
# new log object arrives every 20 s until Ctrl-C. State lives in build/run/: the generator's
# own totals of every object it wrote in gen-totals.jsonl (one JSON line per object), and each
# server's exit status once stopped in exit-status ("bmas 0", "bmas-emulator 0").
#   BMAS_LISTEN (default 127.0.0.1:8080), EMU_PORT (default 4566, LocalStack's), RUN_ONCE=1
#   (exit after the first results: what the integration test uses).
set -u
BINDIR=${1:-bin}
RUN=${RUN_DIR:-build/run}
LISTEN=${BMAS_LISTEN:-127.0.0.1:8080}
mkdir -p "$RUN"
say() { printf '%s\n' "$*" >&2; }
now_ms() { date +%s%3N; }
wait_for() { # SECS cmd...: polls with a deadline
    local deadline=$(( $(now_ms) + $1 * 1000 ))
    shift
    until "$@"; do
        [ "$(now_ms)" -ge "$deadline" ] && return 1
        sleep 0.1
    done
}

PIDS=()
NAMES=()
stop_all() { # newest first (bmas before the emulator it talks to); records exit statuses
    local i st
    : >"$RUN/exit-status"
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        kill -TERM "${PIDS[$i]}" 2>/dev/null
        wait "${PIDS[$i]}" 2>/dev/null
        st=$?
        echo "${NAMES[$i]} $st" >>"$RUN/exit-status"
    done
    PIDS=()
    NAMES=()
}
trap 'stop_all; exit 0' INT TERM
trap 'stop_all' EXIT

# The emulator: LocalStack's port if free, else any free one.
port=${EMU_PORT:-4566}
if curl -s -o /dev/null -m 1 "http://127.0.0.1:$port/" 2>/dev/null; then
    say "port $port is taken; the emulator takes a free one"
    port=0
fi
rm -f "$RUN/emu.port"
"$BINDIR/bmas-emulator" --listen "127.0.0.1:$port" --port-file "$RUN/emu.port" \
    --data "$RUN/emulator" >"$RUN/emulator.log" 2>&1 &
PIDS+=($!)
NAMES+=(bmas-emulator)
wait_for 30 test -s "$RUN/emu.port" || { say "the emulator did not start: $RUN/emulator.log"; exit 1; }
EMU=http://127.0.0.1:$(cat "$RUN/emu.port")
wait_for 30 curl -m 60 -fs -o /dev/null "$EMU/_localstack/health" || { say "emulator not healthy"; exit 1; }

# AWS resources, signed by curl's own SigV4 (the emulator checks every signature).
aws_curl() { # SERVICE curl-args...
    local svc=$1
    shift
    curl -m 60 -sS -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:$svc" --user test:test "$@"
}
BUCKET=bedrock-logs
QUEUE=bedrock-log-objects
aws_curl s3 -X PUT -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$EMU/$BUCKET" >/dev/null
aws_curl sqs -X POST -H 'Content-Type: application/x-www-form-urlencoded' \
    --data "Action=CreateQueue&QueueName=$QUEUE&Version=2012-11-05" "$EMU/" >/dev/null
aws_curl s3 -X PUT -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
    --data "<NotificationConfiguration><QueueConfiguration><Id>bmas</Id><Queue>arn:aws:sqs:us-east-1:000000000000:$QUEUE</Queue><Event>s3:ObjectCreated:*</Event></QueueConfiguration></NotificationConfiguration>" \
    "$EMU/$BUCKET?notification=" >/dev/null # curl signs the query as written: "=" needed

# bmas, consuming the queue.
rm -f "$RUN/bmas.port"
env AWS_ENDPOINT_URL="$EMU" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \
    AWS_EC2_METADATA_DISABLED=true BMAS_SQS_QUEUE_URL="$EMU/000000000000/$QUEUE" \
    BMAS_SQS_WAIT_SECONDS=2 BMAS_FLUSH_INTERVAL="${BMAS_FLUSH_INTERVAL:-15}" \
    "$BINDIR/bmas" serve --listen "$LISTEN" --db "$RUN/bmas.db" --port-file "$RUN/bmas.port" \
    >"$RUN/bmas.log" 2>&1 &
PIDS+=($!)
NAMES+=(bmas)
wait_for 30 test -s "$RUN/bmas.port" || { say "bmas did not start: $RUN/bmas.log"; tail -5 "$RUN/bmas.log" >&2; exit 1; }
URL=http://127.0.0.1:$(cat "$RUN/bmas.port")

# Sample logs: the generator (tests/bench/gen_logs.c) writes realistic objects.
GEN=$RUN/gen_logs
if [ ! -x "$GEN" ] || [ tests/bench/gen_logs.c -nt "$GEN" ]; then
    ${CC:-cc} -O2 -std=c11 -D_DEFAULT_SOURCE -Wall -o "$GEN" tests/bench/gen_logs.c -lz || exit 1
fi
n_up=0
: >"$RUN/gen-totals.jsonl"
upload() { # EPOCH_START SPAN SEED: one log object for that time, under its real key layout
    local t=$1 key
    key="AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/$(date -u -d "@$t" +%Y/%m/%d/%H)/$(date -u -d "@$t" +%Y%m%dT%H%M%S)Z_$(printf '%08x' "$3").json.gz"
    "$GEN" --kb 300 --start "$t" --span "$2" --seed "$3" > "$RUN/obj.gz" 2>>"$RUN/gen-totals.jsonl"
    aws_curl s3 -X PUT -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' --data-binary @"$RUN/obj.gz" \
        "$EMU/$BUCKET/$key" >/dev/null
    n_up=$((n_up + 1))
}
start=$(( $(date +%s) / 300 * 300 - 3600 ))
before=$(curl -m 60 -s "$URL/status" | jq .objects.processed)
for i in $(seq 0 11); do upload $((start + i * 300)) 300 $((RANDOM + i)); done
say "uploaded $n_up Bedrock log objects (the last hour) to s3://$BUCKET; bmas is counting them..."
wait_for 120 bash -c "[ \$(curl -m 60 -s $URL/status | jq .objects.processed) -ge $((before + n_up)) ]" ||
    say "(still counting; see $RUN/bmas.log)"
curl -m 60 -s -o /dev/null -X POST "$URL/flush"

cat >&2 <<MSG

bmas is up: $URL  (state: $RUN/bmas.db, logs: $RUN/bmas.log)
  curl -m 60 -s $URL/status | jq
  curl -m 60 -s '$URL/aggregates?group_by=profile_type,model_id' | jq
  curl -m 60 -s '$URL/aggregates?group_by=minute&profile_type=CrossRegion' | jq '.rows[-3:]'
The AWS side is bmas-emulator at $EMU (S3 bucket $BUCKET, SQS queue $QUEUE, CloudWatch):
  AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test /usr/bin/aws --endpoint-url $EMU --region us-east-1 \\
      cloudwatch list-metrics --namespace Custom/BedrockMetrics
Right now, by inference profile type:
MSG
curl -m 60 -s "$URL/aggregates?group_by=profile_type" |
    jq -r '(.rows[] | [.profile_type, .invocations, .input_tokens, .output_tokens]),
           ["TOTAL", .totals.invocations, .totals.input_tokens, .totals.output_tokens] | @tsv' |
    awk -F'\t' 'BEGIN { printf "  %-18s %12s %14s %14s\n", "profile_type", "invocations", "input_tokens", "output_tokens" }
                { printf "  %-18s %12s %14s %14s\n", $1, $2, $3, $4 }' >&2
[ "${RUN_ONCE:-0}" = 1 ] && exit 0
say ""
say "A new log object arrives every 20 s. Ctrl-C stops bmas and the emulator."
while true; do
    sleep 20 & wait $!
    upload $(( $(date +%s) - 60 )) 60 $RANDOM
done
