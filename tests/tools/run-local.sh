#!/bin/bash
# make run: bmas doing its job on an embedded default, no cloud needed. bmas-emulator plays AWS
# (S3, SQS, CloudWatch on one port); a bucket sends its ObjectCreated notifications to a queue;
# bmas consumes the queue into a SQLite file and publishes to the emulator's CloudWatch; sample
# Bedrock logs (`bmas sample`: generated traffic for the last hour) are uploaded, and a new log
# object arrives every 20 s until Ctrl-C, which stops everything this script started (the
# feeder's sleep too). State lives in build/run/ and carries over to the next run (`make
# run-reset` removes it): the generator's own totals of every object it wrote in
# gen-totals.jsonl (one JSON line per object), and each server's exit status once stopped in
# exit-status ("bmas 0", "bmas-emulator 0").
#   BMAS_LISTEN (default 127.0.0.1:8080; a free port when that one is taken), EMU_PORT (default
#   4566, LocalStack's; likewise), RUN_ONCE=1 (exit after the first results: what the
#   integration test uses).
#   RUN_PG=1 (make run-pg): several instances instead of one. A throw-away PostgreSQL server
#   (tests/tools/pg-lib.sh, removed at the end) is the store of two bmas, bmas-1 on BMAS_LISTEN
#   and bmas-2 on the next port, both consuming the one queue; one of them publishes. Logs in
#   build/run-pg; the database, the emulator's data and the totals start empty each time.
set -u
BINDIR=${1:-bin}
PG=${RUN_PG:-0}
RUN=${RUN_DIR:-build/run}
[ "$PG" = 1 ] && RUN=${RUN_DIR:-build/run-pg}
LISTEN=${BMAS_LISTEN:-127.0.0.1:8080}
mkdir -p "$RUN"
say() { printf '%s\n' "$*" >&2; }
# One make run per state folder: two would share the database and the emulator's data.
if [ -s "$RUN/run.pid" ] && kill -0 "$(cat "$RUN/run.pid")" 2>/dev/null &&
    grep -q run-local "/proc/$(cat "$RUN/run.pid")/cmdline" 2>/dev/null; then
    say "make run is already running on $RUN (pid $(cat "$RUN/run.pid")): stop it with Ctrl-C first"
    exit 1
fi
echo $$ >"$RUN/run.pid"
# make run-pg's database is new each time: the emulator's data and the generator's totals
# start over with it, so the queue holds no message of an object the store never saw.
[ "$PG" = 1 ] && rm -rf "$RUN/emulator" "$RUN/gen-totals.jsonl"
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
FEED_PID=""
stop_all() { # newest first (bmas before the emulator it talks to); records exit statuses
    local i st
    # Background jobs of a script ignore Ctrl-C's SIGINT: the feeder's sleep is stopped here.
    if [ -n "$FEED_PID" ]; then
        kill -TERM "$FEED_PID" 2>/dev/null
        wait "$FEED_PID" 2>/dev/null
        FEED_PID=""
    fi
    [ ${#PIDS[@]} -gt 0 ] || return 0
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
trap 'stop_all; [ "$PG" = 1 ] && pg_stop; rm -f "$RUN/run.pid"' EXIT

# Starts a server that writes its bound port to PORTFILE: spawn NAME PORTFILE LOG cmd...
# Returns 1 when it exited before listening (its log says why), 2 when it never listened.
spawn() {
    local name=$1 pf=$2 log=$3 pid deadline
    shift 3
    rm -f "$pf"
    "$@" >"$log" 2>&1 &
    pid=$!
    deadline=$(( $(now_ms) + 30000 ))
    until [ -s "$pf" ]; do
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid" 2>/dev/null
            return 1
        fi
        if [ "$(now_ms)" -ge "$deadline" ]; then
            kill -TERM "$pid" 2>/dev/null
            wait "$pid" 2>/dev/null
            return 2
        fi
        sleep 0.1
    done
    PIDS+=("$pid")
    NAMES+=("$name")
}
# ADDR:PORT with the port replaced by 0 (any free one).
any_port() { printf '%s:0' "${1%:*}"; }

# The emulator: LocalStack's port if free, else any free one.
EMU_LISTEN=127.0.0.1:${EMU_PORT:-4566}
# The servers run in sessions of their own (setsid), out of reach of the terminal's Ctrl-C
# (SIGINT goes to the whole foreground process group): this script takes it and stops them in
# order, bmas first (SIGTERM), then the emulator it talks to, so no request of bmas's meets an
# emulator that is already gone. Ignoring SIGINT would not do: both wait for their stop
# signals with sigwait, which takes a blocked signal even when its action is to ignore it.
emu_cmd() {
    exec setsid "$BINDIR/bmas-emulator" --listen "$1" --port-file "$RUN/emu.port" --data "$RUN/emulator"
}
if ! spawn bmas-emulator "$RUN/emu.port" "$RUN/emulator.log" emu_cmd "$EMU_LISTEN"; then
    [ "${EMU_LISTEN##*:}" != 0 ] || { say "the emulator did not start: $RUN/emulator.log"; exit 1; }
    say "port ${EMU_LISTEN##*:} is taken; the emulator takes a free one"
    spawn bmas-emulator "$RUN/emu.port" "$RUN/emulator.log" emu_cmd "$(any_port "$EMU_LISTEN")" ||
        { say "the emulator did not start: $RUN/emulator.log"; exit 1; }
fi
EMU=http://127.0.0.1:$(cat "$RUN/emu.port")
wait_for 30 curl -m 60 -fs -o /dev/null "$EMU/_localstack/health" || { say "emulator not healthy"; exit 1; }

# AWS resources, signed by curl's own SigV4 (the emulator checks every signature).
aws_curl() { # SERVICE curl-args...
    local svc=$1
    shift
    curl -m 60 -sS -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:$svc" --user test:test "$@"
}
BUCKET=bedrock-logs
# The models behind the two application inference profiles `bmas sample` writes (an account's
# own profiles: bmas cannot know them, so it is told, as a user would tell it theirs).
SAMPLE_APP_PROFILES=a1b2c3d4e5f6=anthropic.claude-sonnet-4-20250514-v1:0,k7m2p9q4r8s1=anthropic.claude-3-5-haiku-20241022-v1:0
QUEUE=bedrock-log-objects
aws_curl s3 -X PUT -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$EMU/$BUCKET" >/dev/null
aws_curl sqs -X POST -H 'Content-Type: application/x-www-form-urlencoded' \
    --data "Action=CreateQueue&QueueName=$QUEUE&Version=2012-11-05" "$EMU/" >/dev/null
aws_curl s3 -X PUT -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
    --data "<NotificationConfiguration><QueueConfiguration><Id>bmas</Id><Queue>arn:aws:sqs:us-east-1:000000000000:$QUEUE</Queue><Event>s3:ObjectCreated:*</Event></QueueConfiguration></NotificationConfiguration>" \
    "$EMU/$BUCKET?notification=" >/dev/null # curl signs the query as written: "=" needed

# bmas, consuming the queue; on a free port when the one asked for is taken.
DB=$RUN/bmas.db
if [ "$PG" = 1 ]; then
    . tests/tools/pg-lib.sh
    pg_start || { say "PostgreSQL did not start (tests/tools/deps.sh installs it)"; exit 1; }
    DB=$PG_URL
fi
bmas_cmd() { # LISTEN NAME: serve, port in $RUN/NAME.port
    exec setsid env AWS_ENDPOINT_URL="$EMU" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \
        AWS_EC2_METADATA_DISABLED=true BMAS_SQS_QUEUE_URL="$EMU/000000000000/$QUEUE" \
        BMAS_SQS_WAIT_SECONDS=2 BMAS_FLUSH_INTERVAL="${BMAS_FLUSH_INTERVAL:-15}" \
        BMAS_PRICES="${BMAS_PRICES-docs/prices.csv}" \
        BMAS_ATTRIBUTION_KEYS="${BMAS_ATTRIBUTION_KEYS-team,app}" \
        BMAS_APP_PROFILE_MAP="${BMAS_APP_PROFILE_MAP-$SAMPLE_APP_PROFILES}" \
        BMAS_INSTANCE_ID="$([ "$PG" = 1 ] && echo "$2")" \
        "$BINDIR/bmas" serve --listen "$1" --db "$DB" --port-file "$RUN/$2.port"
}
start_bmas() { # LISTEN NAME: prints nothing; the URL in $RUN/NAME.port
    local listen=$1 name=$2
    if ! spawn "$name" "$RUN/$name.port" "$RUN/$name.log" bmas_cmd "$listen" "$name"; then
        if [ "${listen##*:}" = 0 ] || ! grep -q 'cannot listen' "$RUN/$name.log"; then
            say "$name did not start: $RUN/$name.log"
            tail -5 "$RUN/$name.log" >&2
            exit 1
        fi
        say "port ${listen##*:} is taken; $name listens on a free port instead (see below)"
        spawn "$name" "$RUN/$name.port" "$RUN/$name.log" bmas_cmd "$(any_port "$listen")" "$name" ||
            { say "$name did not start: $RUN/$name.log"; tail -5 "$RUN/$name.log" >&2; exit 1; }
    fi
}
if [ "$PG" = 1 ]; then
    start_bmas "$LISTEN" bmas-1
    next=${LISTEN##*:}
    [ "$next" != 0 ] && next=$((next + 1))
    start_bmas "${LISTEN%:*}:$next" bmas-2
    URL=http://127.0.0.1:$(cat "$RUN/bmas-1.port") URL2=http://127.0.0.1:$(cat "$RUN/bmas-2.port")
    LOG=$RUN/bmas-1.log
else
    start_bmas "$LISTEN" bmas
    URL=http://127.0.0.1:$(cat "$RUN/bmas.port")
    LOG=$RUN/bmas.log
fi

# Sample logs: `bmas sample` writes realistic objects under Bedrock's key layout, and appends
# its own totals (with the key) to gen-totals.jsonl. Objects take turns among three Regions so
# that us., eu. and apac. profiles all show up.
REGIONS=(us-east-1 eu-west-1 ap-southeast-2)
n_up=0
upload() { # EPOCH_START SPAN SEED: one log object for that time, under its real key layout
    local region=${REGIONS[$((n_up % 3))]} key
    "$BINDIR/bmas" sample --kb 300 --start "$1" --span "$2" --seed "$3" --region "$region" \
        -o "$RUN/obj.gz" --totals "$RUN/gen-totals.jsonl" || return 1
    key=$(tail -1 "$RUN/gen-totals.jsonl" | jq -r .key)
    aws_curl s3 -X PUT -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' --data-binary @"$RUN/obj.gz" \
        "$EMU/$BUCKET/$key" >/dev/null
    n_up=$((n_up + 1))
}
start=$(( $(date +%s) / 300 * 300 - 3600 ))
before=$(curl -m 60 -s "$URL/status" | jq .objects.processed)
for i in $(seq 0 11); do upload $((start + i * 300)) 300 $((RANDOM + i)); done
say "uploaded $n_up Bedrock log objects (the last hour) to s3://$BUCKET; bmas is counting them..."
wait_for 120 bash -c "[ \$(curl -m 60 -s $URL/status | jq .objects.processed) -ge $((before + n_up)) ]" ||
    say "(still counting; see $LOG)"
curl -m 60 -s -o /dev/null -X POST "$URL/flush"

if [ "$PG" = 1 ]; then
    pub=$(curl -m 60 -s "$URL/status" | jq -r '.instance.publisher_holder // "none yet"')
    cat >&2 <<MSG

bmas is up: $URL  (bmas-1; logs: $RUN/bmas-1.log)
bmas-2 is up: $URL2  (logs: $RUN/bmas-2.log)
Both share one PostgreSQL store (postgresql://postgres@127.0.0.1:$PG_PORT/bmas, a throw-away
server): each object is counted once whichever instance takes it from the queue, both answer
the same /aggregates, and one publishes to CloudWatch: $pub.
Dashboard: $URL/dashboard  (open it in a browser; it refreshes itself every 10 s)
MSG
else
    cat >&2 <<MSG

bmas is up: $URL  (state: $RUN/bmas.db, logs: $RUN/bmas.log)
Dashboard: $URL/dashboard  (open it in a browser; it refreshes itself every 10 s)
MSG
fi
cat >&2 <<MSG
Prometheus: $URL/metrics  (bmas's own counters and the aggregates, for a scrape job)
  curl -m 60 -s $URL/status | jq
  curl -m 60 -s '$URL/aggregates?group_by=profile_type,model_id' | jq
  curl -m 60 -s '$URL/aggregates?group_by=minute&profile_type=CrossRegion' | jq '.rows[-3:]'
The AWS side is bmas-emulator at $EMU (S3 bucket $BUCKET, SQS queue $QUEUE, CloudWatch):
  AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test aws --endpoint-url $EMU --region us-east-1 cloudwatch list-metrics --namespace Custom/BedrockMetrics
MSG
if [ "$PG" = 1 ]; then
    say "The PostgreSQL server goes with Ctrl-C: each make run-pg starts from an empty store."
else
    say "State ($RUN) carries over to the next make run; make run-reset starts fresh."
fi
cat >&2 <<MSG
Right now, by inference profile type:
MSG
curl -m 60 -s "$URL/aggregates?group_by=profile_type" |
    jq -r '(.rows[] | [.profile_type, .invocations, .input_tokens, .output_tokens, .cost_usd, .unpriced_invocations]),
           ["TOTAL", .totals.invocations, .totals.input_tokens, .totals.output_tokens, .totals.cost_usd, .totals.unpriced_invocations] | @tsv' |
    awk -F'\t' 'BEGIN { printf "  %-18s %12s %14s %14s %12s %9s\n", "profile_type", "invocations", "input_tokens", "output_tokens", "cost_usd", "unpriced" }
                { printf "  %-18s %12s %14s %14s %12s %9s\n", $1, $2, $3, $4, $5, $6 }' >&2
say "(cost_usd: docs/prices.csv's list prices, BMAS_PRICES; unpriced invocations are counted, never guessed)"
[ "${RUN_ONCE:-0}" = 1 ] && exit 0
say ""
if [ "$PG" = 1 ]; then
    say "A new log object arrives every 20 s. Ctrl-C stops both bmas, the emulator and PostgreSQL."
else
    say "A new log object arrives every 20 s. Ctrl-C stops bmas and the emulator."
fi
while true; do
    sleep 20 &
    FEED_PID=$!
    wait "$FEED_PID"
    FEED_PID=""
    upload $(( $(date +%s) - 60 )) 60 $RANDOM
done
