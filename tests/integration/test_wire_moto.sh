#!/bin/bash
# moto as an AWS we did not write (issue 9 item 5): moto_server (Python moto 5.2.1) runs S3,
# SQS and CloudWatch; S3 notifies its own SQS of each object of the generated corpus
# (tests/tools/gen_corpus.c); bmas consumes the queue in consumer mode. Checked exactly
# against the generator's totals: every series and each dimension through /aggregates,
# /status counters per BMAS code, the queue drained, and the CloudWatch sums read back from
# moto with the AWS CLI. Skipped when moto_server is missing (tests/tools/deps.sh --moto says
# how to get it).
#
# moto's quirks, and how this script works with them (also in docs/testing.md):
# - GetMetricStatistics (and GetMetricData) match every metric whose dimensions CONTAIN the
#   ones asked for; real CloudWatch needs the exact set. With bmas's default three dimension
#   sets, a query for InferenceProfileType=X would also sum the (InferenceProfileType,ModelId)
#   and (SourceRegion,InferenceProfileType) series. So bmas publishes ONE dimension set here
#   (BMAS_DIMENSION_SETS=InferenceProfileType,ModelId) and every query names both dimensions.
# - A 1000-datum PutMetricData takes moto several seconds. One-hour buckets
#   (BMAS_BUCKET_SECONDS=3600) keep the publish to a few hundred datums, and POST /flush gets
#   a long curl deadline.
# - moto sends an s3:TestEvent to the queue when the notification is configured (as S3
#   does): bmas counts it as ignored, with the offloaded body and the permission marker.
# - moto checks no SigV4 signature (any credentials work); signing is proven elsewhere
#   (test_emu_sigv4.sh, test_wire_s3rver.sh).
# - moto's S3 (Flask) reads a PUT body sent as application/x-www-form-urlencoded (curl's
#   default for --data-binary) as a form and stores an EMPTY object, answering 200; bmas then
#   counts an object with no records. Uploads here say application/octet-stream.
set -u
. tests/tools/svc-lib.sh
. tests/tools/corpus-lib.sh

if ! tests/tools/deps.sh --moto 2>"${TMPDIR:-/tmp}/moto-deps.$$"; then
    t_skip "moto_server end to end" "$(tr '\n' ' ' < "${TMPDIR:-/tmp}/moto-deps.$$")"
    rm -f "${TMPDIR:-/tmp}/moto-deps.$$"
    t_done
    exit 0
fi
rm -f "${TMPDIR:-/tmp}/moto-deps.$$"

W=$(mktemp -d "${TMPDIR:-/tmp}/bmas-moto.XXXXXX")
MOTO_PID=
moto_cleanup() {
    if [ -n "$MOTO_PID" ]; then
        kill -TERM "$MOTO_PID" 2>/dev/null
        wait "$MOTO_PID" 2>/dev/null
    fi
    itest_atexit
}
trap moto_cleanup EXIT

# moto_server takes a port number only: ask the kernel for a free one, and try again if
# another process took it before moto bound it.
moto_start() {
    local try port deadline
    for try in 1 2 3; do
        port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        moto_server -H 127.0.0.1 -p "$port" > "$W/moto.log" 2>&1 &
        MOTO_PID=$!
        deadline=$(( $(date +%s) + 30 ))
        while [ "$(date +%s)" -lt "$deadline" ] && kill -0 "$MOTO_PID" 2>/dev/null; do
            if curl -fsS -m 2 "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1; then
                AWS_URL=http://127.0.0.1:$port
                return 0
            fi
            sleep 0.1 # polling step of the deadline loop above
        done
        kill -TERM "$MOTO_PID" 2>/dev/null
        wait "$MOTO_PID" 2>/dev/null
        MOTO_PID=
        echo "# moto_server did not answer on port $port (try $try); its log:" && sed 's/^/#   /' "$W/moto.log" | tail -5
    done
    return 1
}
if moto_start; then
    t_pass "moto_server answers /moto-api/"
else
    t_fail "moto_server answers /moto-api/"
    t_done
    exit 1
fi

# The pip AWS CLI v1 on PATH when there is one (JSON 1.0), else Debian's v2 (Query).
MOTO_CLI=/usr/bin/aws
[ "$HAVE_JSON_CLI" = 1 ] && MOTO_CLI=$JSON_CLI
aws_m() { "$MOTO_CLI" --endpoint-url "$AWS_URL" --output json "$@"; }

corpus_gen "$W/corpus" || exit 1
MAP=$(jq -r .app_profile_map "$META")
ACCT=123456789012 # moto's default account
s3_put corpus
create_q() { sqs_json CreateQueue '{"QueueName":"corpus-q","Attributes":{"VisibilityTimeout":"30"}}' >/dev/null; }
t_ok "SQS queue created" create_q
Q="$AWS_URL/$ACCT/corpus-q"
t_ok "S3 notifications to SQS configured (AWS CLI)" aws_m s3api put-bucket-notification-configuration \
    --bucket corpus --notification-configuration \
    "{\"QueueConfigurations\":[{\"QueueArn\":\"arn:aws:sqs:us-east-1:$ACCT:corpus-q\",\"Events\":[\"s3:ObjectCreated:*\"]}]}"

SETS="InferenceProfileType,ModelId"
BMAS_ENV="AWS_ENDPOINT_URL=$AWS_URL AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true BMAS_FLUSH_INTERVAL=0 BMAS_APP_PROFILE_MAP=$MAP BMAS_SQS_QUEUE_URL=$Q BMAS_SQS_WAIT_SECONDS=1 BMAS_BUCKET_SECONDS=3600 BMAS_DIMENSION_SETS=$SETS CLOUDWATCH_NAMESPACE=Corpus/Moto"
bmas_start || exit 1
t_ok "corpus uploaded to moto's S3" corpus_upload corpus
done_q() {
    [ "$(curl -sS -m 5 "$BMAS_URL/status" | jq '.objects.processed + .objects.ignored')" = 11 ]
}
t_ok "every object taken from moto's queue" wait_for 45 done_q
drained() { [ "$(queue_depth "$Q")" = 0 ]; }
t_ok "moto's queue drained (every message deleted)" wait_for 15 drained
corpus_check_agg "moto" "$BMAS_URL"
corpus_check_status "moto" "$BMAS_URL" 3
fl=$(curl -sS -m 120 -X POST "$BMAS_URL/flush")
t_ok "POST /flush to moto's CloudWatch ($(echo "$fl" | jq -c '{published,requests}'))" \
    test "$(echo "$fl" | jq '.published > 0')" = true
st=$(curl -sS -m 10 "$BMAS_URL/status")
t_eq "nothing pending, no publish error" '[0,null]' "$(echo "$st" | jq -c '[.publish.pending, .publish.last_error]')"
corpus_cw_check "moto" aws_m Corpus/Moto "$SETS"
# One series through GetMetricStatistics too: the same number by the other read API.
want=$(jq '[.rows[] | select(.profile_type == "Application" and .model_id == "a1b2c3d4e5f6") | .input_tokens] | add' "$EXP")
ws=$(( CORPUS_START / 3600 * 3600 - 3600 ))
got=$(aws_m cloudwatch get-metric-statistics --namespace Corpus/Moto --metric-name InputTokens \
    --dimensions Name=InferenceProfileType,Value=Application Name=ModelId,Value=a1b2c3d4e5f6 \
    --start-time "$(date -u -d "@$ws" +%Y-%m-%dT%H:%M:%SZ)" \
    --end-time "$(date -u -d "@$((ws + 14400))" +%Y-%m-%dT%H:%M:%SZ)" --period 14400 \
    --statistics Sum | jq '[.Datapoints[].Sum] | add')
t_eq "get-metric-statistics: the unmapped application profile's input tokens" "$want" "$got"

srv_stop bmas
rm -rf "$BMAS_TMP"
kill -TERM "$MOTO_PID"
rc=0
wait "$MOTO_PID" || rc=$?
MOTO_PID=
t_eq "moto_server exited 0 on SIGTERM" "0" "$rc"
t_ok "moto logged no traceback" bash -c "! grep -q Traceback '$W/moto.log'"
t_done
