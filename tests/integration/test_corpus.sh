#!/bin/bash
# Independent expected totals (issue 9 item 4): tests/tools/gen_corpus.c writes 20,000
# records of every modelId shape and every skip kind the README documents, in eight gzip
# objects plus two non-log objects, and the totals they must give from its own bookkeeping
# (bmas never computes an expectation here). The seed is printed; CORPUS_SEED replays another.
# Those totals are checked exactly, by every series and by each dimension, through:
#   1. `bmas ingest --json` of the files (and its skip summary, per BMAS code), also with
#      each of the README's two classification switches;
#   2. bmas serve fed by POST /events with S3's own notifications (from the emulator's SQS),
#      then the same event again (all duplicates), /status counters, and the CloudWatch
#      read-back from bmas-emulator of every published dimension-set value;
#   3. bmas in consumer mode (BMAS_SQS_QUEUE_URL) on a second bucket's notifications, the
#      queue drained, the same checks.
# Every server is stopped at the end and must exit 0.
set -u
. tests/tools/svc-lib.sh
. tests/tools/corpus-lib.sh
itest_setup
trap itest_atexit EXIT

corpus_gen "$W/corpus" || exit 1
MAP=$(jq -r .app_profile_map "$META")
t_eq "the corpus: 20000 records written (counted or skipped) in 8 log objects" "[20000,8]" "$(jq -c '[.written, .objects.log]' "$META")"

# 1. bmas ingest of the files (the key layout is the files' path, so the Region fallback
#    from the key works as it does for S3 keys).
ALL=model_id,profile_type,profile_id,source_region,inference_region,operation
mapfile -t files < <(cd "$CORPUS" && corpus_keys log && corpus_keys ignored)
(cd "$CORPUS" && BMAS_APP_PROFILE_MAP=$MAP "$BINDIR/bmas" ingest --json --group-by "$ALL" \
    "${files[@]}") > "$W/ingest.json" 2> "$W/ingest.err"
t_eq "bmas ingest exit 0" "0" "$?"
corpus_sorted_rows < "$W/ingest.json" > "$W/got"
corpus__diff "ingest: every series exact ($(wc -l < "$CORPUS/want.rows") rows)" "$CORPUS/want.rows" "$W/got"
t_eq "ingest: totals exact" "$(cat "$CORPUS/want.totals")" "$(jq -S -c '.totals | del(.cost_usd, .unpriced_invocations)' "$W/ingest.json")"
want=$(jq -r '"\(.objects.log) source(s), 0 failed, \(.objects.ignored) ignored; \(.records) records counted, \(.skipped.total) skipped; "
    + ([.skipped + .informational | del(.total) | to_entries[] | select(.value > 0)]
       | sort_by(.key) | map("\(.key) x\(.value)") | join(", "))' "$META")
t_eq "ingest: the skip summary per code" "$want" "$(tail -1 "$W/ingest.err")"

# The README's two switches, through the same files: rows by profile type and model.
for sw in ENABLE_CROSS_REGION_DETECTION=false ENABLE_GLOBAL_CROSS_REGION=false; do
    (cd "$CORPUS" && env "$sw" BMAS_APP_PROFILE_MAP="$MAP" "$BINDIR/bmas" ingest --json \
        --group-by profile_type,model_id "${files[@]}" 2>/dev/null) | corpus_sorted_rows > "$W/got"
    jq -S -c --arg sw "$sw" '.switches[$sw] | sort_by(tostring) | .[]' "$EXP" > "$W/want"
    corpus__diff "ingest with $sw: by profile type and model exact" "$W/want" "$W/got"
done

# 2. POST /events. S3's notifications go to a queue bmas does not poll; the test takes them
#    and posts them as Lambda would.
AWS_URL=$EMU_URL
s3_put corpus
sqs_json CreateQueue '{"QueueName":"corpus-events"}' >/dev/null
aws_q s3api put-bucket-notification-configuration --bucket corpus --notification-configuration \
    '{"QueueConfigurations":[{"QueueArn":"arn:aws:sqs:us-east-1:000000000000:corpus-events","Events":["s3:ObjectCreated:*"]}]}'
QE="$EMU_URL/000000000000/corpus-events"
t_ok "corpus uploaded" corpus_upload corpus
: > "$W/msgs"
take() {
    sqs_json ReceiveMessage "{\"QueueUrl\":\"$QE\",\"MaxNumberOfMessages\":10,\"WaitTimeSeconds\":1}" |
        jq -c '.Messages[]?' >> "$W/msgs"
    [ "$(wc -l < "$W/msgs")" -ge 11 ]
}
t_ok "S3 sent a TestEvent and 10 notifications" wait_for 20 take
jq -s -c '{Records: [.[] | {messageId: .MessageId, receiptHandle: .ReceiptHandle, body: .Body,
    attributes: {ApproximateReceiveCount: "1"}, eventSource: "aws:sqs",
    eventSourceARN: "arn:aws:sqs:us-east-1:000000000000:corpus-events", awsRegion: "us-east-1"}]}' \
    "$W/msgs" > "$W/event.json"

COMMON="AWS_ENDPOINT_URL=$EMU_URL AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true BMAS_FLUSH_INTERVAL=0 BMAS_APP_PROFILE_MAP=$MAP"
SETS="InferenceProfileType;InferenceProfileType,ModelId;SourceRegion,InferenceProfileType"
# Five-minute buckets here, the default minute in consumer mode: the sums do not depend on it.
BMAS_ENV="$COMMON CLOUDWATCH_NAMESPACE=Corpus/Events BMAS_BUCKET_SECONDS=300"
bmas_start || exit 1
out=$(curl -sS -m 60 -w '\n%{http_code}' --data-binary @"$W/event.json" "$BMAS_URL/events")
t_eq "POST /events: 200, no message to redeliver" '200 []' \
    "$(echo "$out" | tail -1) $(echo "$out" | head -1 | jq -c .batchItemFailures)"
corpus_check_agg "events" "$BMAS_URL"
# The TestEvent counts as ignored, with the offloaded body and the marker.
corpus_check_status "events" "$BMAS_URL" 3
out=$(curl -sS -m 60 -w '\n%{http_code}' --data-binary @"$W/event.json" "$BMAS_URL/events")
t_eq "the same event again: 200, nothing to redeliver" '200 []' \
    "$(echo "$out" | tail -1) $(echo "$out" | head -1 | jq -c .batchItemFailures)"
t_eq "... all 8 log objects duplicates, totals unchanged" \
    "[8,$(jq -c .totals.invocations "$META")]" \
    "$(echo "[$(curl -sS -m 10 "$BMAS_URL/status" | jq .objects.duplicates),$(curl -sS -m 10 "$BMAS_URL/aggregates?group_by=" | jq .totals.invocations)]")"
fl=$(curl -sS -m 60 -X POST "$BMAS_URL/flush")
t_ok "POST /flush published ($(echo "$fl" | jq -c '{published,requests}'))" \
    test "$(echo "$fl" | jq '.published > 0 and (.requests > 0)')" = true
t_eq "nothing left to publish" "0" "$(curl -sS -m 10 "$BMAS_URL/status" | jq .publish.pending)"
corpus_cw_check "events" aws_q Corpus/Events "$SETS"
# The 300-character model id cannot be a ModelId value: that set is skipped for its series
# (BMAS-009), which the CloudWatch sums above already leave out: POST /flush's answer, the
# /status error counters and the log all say so.
t_ok "BMAS-009: the long model id's ModelId set skipped (/flush dimension_overflow)" \
    test "$(echo "$fl" | jq '.dimension_overflow > 0')" = true
t_eq "... counted in /status errors as many times" "$(echo "$fl" | jq .dimension_overflow)" \
    "$(curl -sS -m 10 "$BMAS_URL/status" | jq '.errors["BMAS-009"]')"
t_ok "... and logged with its code" grep -q '"errorCode":"BMAS-009"' "$BMAS_LOG"
srv_stop bmas "bmas (events)"
rm -rf "$BMAS_TMP"
unset BMAS_DB

# 3. Consumer mode on a second bucket whose notifications go to the queue bmas polls.
s3_put corpus-q
sqs_json CreateQueue '{"QueueName":"corpus-q","Attributes":{"VisibilityTimeout":"30"}}' >/dev/null
aws_q s3api put-bucket-notification-configuration --bucket corpus-q --notification-configuration \
    '{"QueueConfigurations":[{"QueueArn":"arn:aws:sqs:us-east-1:000000000000:corpus-q","Events":["s3:ObjectCreated:*"]}]}'
QC="$EMU_URL/000000000000/corpus-q"
BMAS_ENV="$COMMON CLOUDWATCH_NAMESPACE=Corpus/Consumer BMAS_SQS_QUEUE_URL=$QC BMAS_SQS_WAIT_SECONDS=1"
bmas_start || exit 1
t_ok "corpus uploaded to the notifying bucket" corpus_upload corpus-q
done_q() {
    [ "$(curl -sS -m 5 "$BMAS_URL/status" | jq '.objects.processed + .objects.ignored')" = 11 ]
}
t_ok "consumer: every object taken from the queue" wait_for 40 done_q
drained() { [ "$(queue_depth "$QC")" = 0 ]; }
t_ok "consumer: the queue drained" wait_for 15 drained
corpus_check_agg "consumer" "$BMAS_URL"
corpus_check_status "consumer" "$BMAS_URL" 3
fl=$(curl -sS -m 60 -X POST "$BMAS_URL/flush")
t_ok "consumer: POST /flush published ($(echo "$fl" | jq -c '{published,requests}'))" \
    test "$(echo "$fl" | jq '.published > 0')" = true
corpus_cw_check "consumer" "$J" Corpus/Consumer "$SETS"
srv_stop bmas "bmas (consumer)"
rm -rf "$BMAS_TMP"
srv_stop emu
t_done
