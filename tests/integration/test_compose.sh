#!/bin/bash
# docker-compose.yml: on paper (no Docker engine here) it passes the Compose schema
# (docker-compose config), pins its images, gives bmas a short stop grace period, and every bmas
# variable it sets is one bmas knows and accepts. In practice: the very script its setup and
# feeder services run (server/compose/aws.sh, what the image installs) is run here against
# bmas-emulator, with bmas in consumer mode on the compose file's own environment; /aggregates
# gets today's data, equal to the generator's own totals, and CloudWatch gets the metrics.
set -u
. tests/tools/svc-lib.sh
itest_setup
if command -v docker-compose >/dev/null 2>&1; then
    t_ok "docker-compose.yml passes the Compose schema" docker-compose -f docker-compose.yml config -q
else
    t_skip "docker-compose.yml passes the Compose schema" "docker-compose not installed"
fi
t_ok "the bmas image's Dockerfile exists" test -f server/Dockerfile

# The environment of one service: "NAME: value" lines (awk over the file as written).
svc_env() {
    awk -v svc="  $1:" '$0 == svc { in_svc = 1; next } in_svc && /^  [a-z]/ { in_svc = 0 }
        in_svc && /^    environment:/ { in_env = 1; next }
        in_env && /^      [A-Z_]+:/ { sub(/^ +/, ""); print; next } in_env && !/^      / { in_env = 0 }' docker-compose.yml
}
env_lines=$(svc_env bmas)
help=$("$BINDIR/bmas" --help)
t_ok "compose sets bmas variables" test -n "$env_lines"
while IFS= read -r line; do
    name=${line%%:*}
    case "$help" in
    *"$name"*) t_pass "bmas knows $name" ;;
    *) t_fail "bmas knows $name" ;;
    esac
done <<<"$env_lines"
# The same environment, as bmas's configuration (endpoint, queue and paths pointed here).
vars=()
while IFS= read -r line; do
    name=${line%%:*}
    value=$(echo "${line#*:}" | sed 's/^ *//; s/^"//; s/"$//')
    case "$name" in BMAS_DB | BMAS_LISTEN | AWS_ENDPOINT_URL | BMAS_SQS_QUEUE_URL) continue ;; esac
    # The price file is docs/prices.csv, copied into the image at the path the file names.
    if [ "$name" = BMAS_PRICES ]; then
        t_ok "the image holds the compose file's BMAS_PRICES ($value): docs/prices.csv" \
            grep -qx "COPY --from=build /src/docs/prices.csv $value" server/Dockerfile
        value=$PWD/docs/prices.csv
    fi
    vars+=("$name=$value")
done <<<"$env_lines"
"$BINDIR/bmas" sample --records 20 -o "$W/one.json.gz" 2>/dev/null
env "${vars[@]}" "$BINDIR/bmas" ingest "$W/one.json.gz" >/dev/null 2>&1
t_eq "bmas accepts the compose environment" "0" "$?"

# On paper: pinned images, the grace period, the script in the image, nothing stale.
images=$(sed -n 's/^ *image: *//p' docker-compose.yml | sort -u)
t_ok "LocalStack pinned to an exact version ($(grep localstack <<<"$images"))" \
    grep -qE '^localstack/localstack:[0-9]+\.[0-9]+\.[0-9]+$' <<<"$images"
t_eq "no image on latest or untagged" "" "$(grep -vE ':[A-Za-z0-9._-]+$' <<<"$images"; grep -E ':latest$' <<<"$images")"
# bmas stops within a second of SIGTERM when idle (test_service_consumer.sh); requests in flight
# get up to DRAIN_MS to finish: docker must not SIGKILL it before that.
grace=$(awk '/^  bmas:/ { b = 1; next } /^  [a-z]/ { b = 0 } b && /stop_grace_period:/ { print $2 }' docker-compose.yml)
drain_ms=$(sed -n 's/^#define DRAIN_MS \([0-9]*\).*/\1/p' server/serve.c)
t_ok "bmas's stop_grace_period ($grace) outlasts its drain of requests in flight (${drain_ms} ms)" \
    test "${grace%s}" -gt "$(( ${drain_ms:-999999} / 1000 ))"
t_eq "setup and feeder run server/compose/aws.sh from the image" \
    '["/bin/sh", "/usr/local/bin/bmas-compose", "feed"]|["/bin/sh", "/usr/local/bin/bmas-compose", "setup"]' \
    "$(sed -n 's/^ *entrypoint: *//p' docker-compose.yml | sort | paste -sd'|')"
runtime_pkgs() { awk '/^FROM/ { n++ } n == 2' server/Dockerfile | grep -qw "$1"; }
t_all "the image has the script, bmas and curl (the runtime stage installs it)" \
    grep -q 'COPY --from=build /src/server/compose/aws.sh /usr/local/bin/bmas-compose' server/Dockerfile -- \
    grep -q 'COPY --from=build /src/bin/bmas /usr/local/bin/bmas$' server/Dockerfile -- \
    runtime_pkgs curl
t_eq "no stale sample upload (a fixed date, the repository's sample files)" "" \
    "$(grep -nE '20[0-9]{2}/[0-9]{2}/[0-9]{2}|tests/data|/samples' docker-compose.yml)"
t_ok "the script is POSIX sh (dash parses it)" dash -n server/compose/aws.sh

# In practice, against bmas-emulator: setup (twice: a restarted stack runs it again).
setup_env=()
while IFS= read -r line; do
    name=${line%%:*}
    value=$(echo "${line#*:}" | sed 's/^ *//; s/^"//; s/"$//')
    [ "$name" = AWS_ENDPOINT_URL ] && value=$EMU_URL
    setup_env+=("$name=$value")
done <<<"$(svc_env setup)"
t_ok "setup's environment names the endpoint" grep -q '^AWS_ENDPOINT_URL=' <<<"$(printf '%s\n' "${setup_env[@]}")"
# Only the service's own environment (env -i); what the script says goes to a log, not TAP.
run_setup() { env -i PATH="$PATH" "${setup_env[@]}" sh server/compose/aws.sh setup >>"$W/setup.log" 2>&1; }
t_ok "setup creates the bucket, the queues and the notification" run_setup
t_ok "setup again (a restarted stack)" run_setup
Q=$EMU_URL/000000000000/bedrock-log-objects
t_eq "the queue's DLQ after 3 receives" \
    "arn:aws:sqs:us-east-1:000000000000:bedrock-log-objects-dlq 3" \
    "$(aws_q sqs get-queue-attributes --queue-url "$Q" --attribute-names RedrivePolicy |
        jq -r '.Attributes.RedrivePolicy | fromjson | "\(.deadLetterTargetArn) \(.maxReceiveCount)"')"
t_eq "the bucket notifies the queue" "arn:aws:sqs:us-east-1:000000000000:bedrock-log-objects" \
    "$(aws_q s3api get-bucket-notification-configuration --bucket bedrock-logs | jq -r '.QueueConfigurations[0].QueueArn')"

# bmas in consumer mode with the compose file's environment (endpoint and queue pointed here).
BMAS_ENV="${vars[*]} AWS_ENDPOINT_URL=$EMU_URL BMAS_SQS_QUEUE_URL=$Q" bmas_start
t_ok "bmas started on the compose environment" test -n "${BMAS_URL:-}"

feed_env=()
while IFS= read -r line; do
    name=${line%%:*}
    value=$(echo "${line#*:}" | sed 's/^ *//; s/^"//; s/"$//')
    [ "$name" = AWS_ENDPOINT_URL ] && value=$EMU_URL
    feed_env+=("$name=$value")
done <<<"$(svc_env feeder)"
t_ok "the feeder uploads every 20 s" grep -qx 'FEED_EVERY=20' <<<"$(printf '%s\n' "${feed_env[@]}")"
# Three objects a second apart (the compose file's 20 s is the default, overridden here).
feed3() {
    env -i PATH="$BINDIR:$PATH" "${feed_env[@]}" FEED_EVERY=1 FEED_COUNT=3 \
        FEED_TOTALS="$W/totals.jsonl" sh server/compose/aws.sh feed >>"$W/feed.log" 2>&1
}
t_ok "the feeder uploads three objects" feed3
# The feeder as compose runs it (every 20 s, no end), stopped as docker stop does: at once,
# its sleep with it.
env -i PATH="$BINDIR:$PATH" "${feed_env[@]}" FEED_TOTALS="$W/totals.jsonl" \
    sh server/compose/aws.sh feed >>"$W/feed.log" 2>&1 &
feeder=$!
four() { [ "$(wc -l <"$W/totals.jsonl")" -ge 4 ]; }
t_ok "the endless feeder uploaded its first object" wait_for 60 four
feed_sleep() { pgrep -P "$feeder" -x sleep >/dev/null; }
t_ok "and sleeps until the next" wait_for 30 feed_sleep
sleeper=$(pgrep -P "$feeder" -x sleep)
kill -TERM "$feeder"
t_ok "SIGTERM stops the feeder" wait_for 5 bash -c "! kill -0 $feeder 2>/dev/null"
wait "$feeder"
t_eq "exit status 0" "0" "$?"
t_ok "its sleep is gone with it" wait_for 5 bash -c "! kill -0 $sleeper 2>/dev/null"

n=$(wc -l <"$W/totals.jsonl")
t_eq "four objects, the generator's totals of each" "4" "$n"
t_eq "the feeder printed the same totals lines (docker logs shows them)" "$(cat "$W/totals.jsonl")" \
    "$(grep '^{' "$W/feed.log")"
processed() { [ "$(curl -m 10 -s "$BMAS_URL/status" | jq .objects.processed)" -ge "$n" ]; }
t_ok "bmas processed them from the queue" wait_for 120 processed
want=$(jq -s -c '{invocations: (map(.invocations) | add), input_tokens: (map(.input_tokens) | add),
    output_tokens: (map(.output_tokens) | add), cache_read_input_tokens: (map(.cache_read_input_tokens) | add),
    cache_write_input_tokens: (map(.cache_write_input_tokens) | add)}' "$W/totals.jsonl")
today=$(date -u +%Y-%m-%dT00:00:00Z)
got=$(curl -m 30 -s "$BMAS_URL/aggregates?from=$today&group_by=" |
    jq -c '.totals | {invocations, input_tokens, output_tokens, cache_read_input_tokens, cache_write_input_tokens}')
# Just after midnight the first objects may hold the last minutes of yesterday: all time then.
if [ "$(date -u +%H%M)" -lt 0010 ]; then
    got=$(curl -m 30 -s "$BMAS_URL/aggregates?group_by=" |
        jq -c '.totals | {invocations, input_tokens, output_tokens, cache_read_input_tokens, cache_write_input_tokens}')
fi
t_eq "/aggregates from today equals the generator's totals" "$want" "$got"
t_eq "per profile type too" \
    "$(jq -s -r '[.[].by_profile_type | to_entries[]] | group_by(.key)
        | map("\(.[0].key) \(map(.value.invocations) | add) \(map(.value.input_tokens) | add)") | .[]' "$W/totals.jsonl")" \
    "$(curl -m 30 -s "$BMAS_URL/aggregates?group_by=profile_type" | jq -r '.rows[] | "\(.profile_type) \(.invocations) \(.input_tokens)"' | sort)"
t_eq "in three source Regions" "ap-southeast-2 eu-west-1 us-east-1" \
    "$(curl -m 30 -s "$BMAS_URL/aggregates?group_by=source_region" | jq -r '[.rows[].source_region] | sort | join(" ")')"

# CloudWatch: the compose file flushes every 60 s; /flush does it now.
call flush POST /flush
t_eq "flush answered 200" "200" "$STATUS"
has_metrics() { aws_q cloudwatch list-metrics --namespace Custom/BedrockMetrics | jq -e '.Metrics | length > 0' >/dev/null; }
t_ok "the namespace has metrics (list-metrics)" has_metrics
s=$(jq -s 'map(.start) | min' "$W/totals.jsonl")
sum=0
for ty in OnDemand CrossRegion GlobalCrossRegion Application; do
    v=$(aws_q cloudwatch get-metric-statistics --namespace Custom/BedrockMetrics --metric-name InvocationCount \
        --dimensions Name=InferenceProfileType,Value=$ty --start-time "$(date -u -d "@$((s - 120))" +%Y-%m-%dT%H:%M:%SZ)" \
        --end-time "$(date -u -d "@$(($(date +%s) + 120))" +%Y-%m-%dT%H:%M:%SZ)" --period 60 --statistics Sum |
        jq '[.Datapoints[].Sum] | add // 0 | floor')
    sum=$((sum + v))
done
t_eq "CloudWatch's InvocationCount per profile type adds up to the generator's invocations" \
    "$(jq -r .invocations <<<"$want")" "$sum"
srv_stop bmas
srv_stop emu
t_done
