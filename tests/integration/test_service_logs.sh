#!/bin/bash
# The log a real `bmas serve` writes (docs/logging.md), read the way the replaced Lambda's
# troubleshooting guide reads it: its four Logs Insights queries, as jq filters
# (tests/integration/logs-insights.jq), over the log of a batch of sample objects, an object with
# 25 bad records, a missing object and an access-denied one, with LOG_LEVEL=DEBUG and
# ENABLE_TRACE=true. Also: the guide's field names on every line, the trace headers in every line
# of their request and back in the response, the skipped records named (20, then a count), and
# the guide's variables that `bmas ingest` ignores named in one warning.
set -u
. tests/tools/svc-lib.sh
svc_setup
Q() { jq -R -s -c -L tests/integration "include \"logs-insights\"; $1" "$BMAS_LOG"; }

K1="$P/20260420T001731Z_good.json.gz"
K2="$P/20260420T001800Z_bad.json.gz"
K3="$P/20260420T001900Z_denied.json.gz"
KM="$P/20260420T002000Z_missing.json.gz"
# K2: the sample, then a record with a negative token count (record 5), then 24 lines of no JSON.
{
    gzip -dc "$W/a.json.gz"
    gzip -dc "$W/a.json.gz" | head -1 | jq -c '.input.inputTokenCount = -1'
    for _ in $(seq 24); do echo '{not json'; done
} | gzip -c > "$W/bad.json.gz"
s3_upload logs "$K1" "$W/a.json.gz" >/dev/null
s3_upload logs "$K2" "$W/bad.json.gz" >/dev/null
s3_upload logs "$K3" "$W/a.json.gz" >/dev/null

ev() {
    jq -c --arg k "$(form_key "$1")" '.Records[0].s3.bucket.name = "logs"
        | .Records[0].s3.object.key = $k | del(.Records[0].s3.object.eTag, .Records[0].s3.object.versionId)' \
        "$BM_TEST_DATA/s3-event.json"
}
jq -n -c --arg a "$(ev "$K1")" --arg b "$(ev "$K2")" --arg m "$(ev "$KM")" '{Records: [
    {messageId: "good-1", body: $a, eventSource: "aws:sqs", attributes: {ApproximateReceiveCount: "1"}},
    {messageId: "bad-1", body: $b, eventSource: "aws:sqs", attributes: {ApproximateReceiveCount: "1"}},
    {messageId: "missing-1", body: $m, eventSource: "aws:sqs", attributes: {ApproximateReceiveCount: "1"}}]}' \
    > "$W/batch.json"

TP=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
XT="Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"
BMAS_ENV="AWS_ENDPOINT_URL=$EMU_URL AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test BMAS_FLUSH_INTERVAL=0 AWS_EC2_METADATA_DISABLED=true LOG_LEVEL=DEBUG ENABLE_TRACE=true BATCH_SIZE=10 DLQ_ENABLED=true"
bmas_start || exit 1

call batch POST /events -H "traceparent: $TP" -H "X-Amzn-Trace-Id: $XT" --data-binary @"$W/batch.json"
t_eq "batch: only the missing object is redelivered" "200 [\"missing-1\"]" \
    "$STATUS $(echo "$BODY" | jq -c '[.batchItemFailures[].itemIdentifier]')"
hdr() { grep -i "^$1:" "$W/resp/$2.hdr" | head -1 | cut -d' ' -f2- | tr -d '\r'; }
RID=$(hdr X-Request-Id batch)
t_all "the trace headers come back in the response" \
    [ "$(hdr traceparent batch)" = "$TP" ] -- [ "$(hdr X-Amzn-Trace-Id batch)" = "$XT" ]

emu_fault '{"service":"s3","operation":"GetObject","status":403,"code":"AccessDenied","count":1}'
call denied POST /events --data "$(ev "$K3")"
t_eq "a denied object: 403 BMAS-002" "403 BMAS-002" "$STATUS $(echo "$BODY" | jq -r .errorCode)"
call badtrace GET /status -H 'traceparent: 00-"quoted"' -H "X-Amzn-Trace-Id: $(head -c 300 /dev/zero | tr '\0' a)"
t_all "trace headers that are not plain values are not taken" \
    [ "$STATUS" = 200 ] -- [ -z "$(hdr traceparent badtrace)" ] -- [ -z "$(hdr X-Amzn-Trace-Id badtrace)" ]
srv_stop bmas

# Every line has the guide's fields and none of the old names.
J=$(jq -R -c 'fromjson? | select(type == "object")' "$BMAS_LOG")
t_range "the log has JSON lines" 20 100000 "$(echo "$J" | wc -l)"
t_eq "every line: timestamp, level, component, event, message; no ts, module, msg, code, req_id" "[]" \
    "$(echo "$J" | jq -s -c '[.[] | select((.timestamp | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{3}Z$") | not)
        or (.level | IN("DEBUG","INFO","WARN","ERROR","CRITICAL") | not)
        or (.component | type) != "string" or (.event | type) != "string" or (.message | type) != "string"
        or has("ts") or has("module") or has("msg") or has("code") or has("req_id"))]')"
t_eq "the guide's variables all mean something to bmas serve: no config_ignored line" "0" \
    "$(echo "$J" | jq -s '[.[] | select(.event == "config_ignored")] | length')"

# The trace: every line of the batch's request carries it, on the worker threads too.
t_eq "the batch's lines carry its requestId and both trace headers (aggregated x8, processed x2, skipped x20, more x1, failed x1, done x1)" \
    '{"aggregated":8,"events_done":1,"object_failed":1,"object_processed":2,"record_skipped":20,"records_skipped_more":1}' \
    "$(echo "$J" | jq -s -c --arg r "$RID" --arg tp "$TP" --arg xt "$XT" '[.[] | select(.requestId == $r)
        | select(.traceparent == $tp and .amznTraceId == $xt) | .event] | group_by(.) | map({(.[0]): length}) | add')"
t_eq "no line of that request lacks the trace" "0" \
    "$(echo "$J" | jq -s --arg r "$RID" --arg tp "$TP" '[.[] | select(.requestId == $r and .traceparent != $tp)] | length')"
t_eq "the other requests carry no trace" "0" \
    "$(echo "$J" | jq -s --arg r "$RID" '[.[] | select(.requestId != $r and has("traceparent"))] | length')"

# LOG_LEVEL=DEBUG: the skipped records, named, at most 20 per object, then one count.
t_eq "records 5..24 of the bad object named, with their code" \
    "$(seq -s, 5 24) BMAS-007,BMAS-003x19" \
    "$(echo "$J" | jq -s -r --arg k "$K2" '[.[] | select(.event == "record_skipped" and .key == $k and .bucket == "logs")]
        | "\(map(.record) | map(tostring) | join(",")) \(.[0].errorCode),\(.[1:] | map(.errorCode) | unique | .[0])x\(.[1:] | length)"')"
t_eq "then one line for the 5 not named" '{"logged":20,"notLogged":5,"level":"DEBUG"}' \
    "$(echo "$J" | jq -s -c --arg k "$K2" '.[] | select(.event == "records_skipped_more" and .key == $k) | {logged, notLogged, level}')"
t_eq "the bad object's summary: 4 counted, 25 invalid, the first named" \
    '{"recordsProcessed":4,"recordsInvalid":25,"firstInvalidRecord":5,"firstInvalidCode":"BMAS-007"}' \
    "$(echo "$J" | jq -s -c --arg k "$K2" '.[] | select(.event == "object_processed" and .key == $k)
        | {recordsProcessed: .metrics.recordsProcessed, recordsInvalid: .metrics.recordsInvalid, firstInvalidRecord, firstInvalidCode}')"

# The guide's queries.
E=$(Q all_errors)
t_eq "Find All Errors: the missing (BMAS-001), the denied (BMAS-002), the skipped records (BMAS-003, BMAS-007) and the bad object's summary naming its first" \
    '{"BMAS-001":1,"BMAS-002":1,"BMAS-003":19,"BMAS-007":1,"object_processed:BMAS-007":1}' \
    "$(echo "$E" | jq -c 'map(.errorCode // (."@message" | fromjson | "\(.event):\(.firstInvalidCode)"))
        | group_by(.) | map({(.[0]): length}) | add')"
t_eq "... newest first, each row with @timestamp and @message" "true" \
    "$(echo "$E" | jq '(map(."@timestamp") == (map(."@timestamp") | sort | reverse)) and all(has("@message") and has("@timestamp"))')"
F=$(Q failed_objects)
t_eq "Identify Failed S3 Objects: a BMAS-001 line with errorCode, bucket and key of the missing object" \
    "1" "$(echo "$F" | jq --arg k "$KM" '[.[] | select(.errorCode == "BMAS-001" and .bucket == "logs" and .key == $k)] | length')"
t_eq "... a BMAS-002 line for the denied object" \
    "1" "$(echo "$F" | jq --arg k "$K3" '[.[] | select(.errorCode == "BMAS-002" and .bucket == "logs" and .key == $k)] | length')"
t_eq "... and the skipped records' BMAS-003 lines (19 of the 20 named; the other is BMAS-007)" \
    "19" "$(echo "$F" | jq --arg k "$K2" '[.[] | select(.errorCode == "BMAS-003" and .key == $k)] | length')"
t_eq "the BMAS-002 line is CRITICAL, the BMAS-001 line ERROR or WARN" "CRITICAL true" \
    "$(echo "$J" | jq -s -r --arg k3 "$K3" --arg km "$KM" '"\(.[] | select(.key == $k3 and .errorCode == "BMAS-002") | .level) \(
        [.[] | select(.key == $km and .errorCode == "BMAS-001") | .level] | all(IN("WARN","ERROR")))"')"
# Two objects of the sample counted (K1, K2): each profile type's tokens twice the sample's.
WANT=$(jq -s -c 'map({p: (.modelId | if test("application-inference-profile/") then "Application"
        elif test("(^|/)global\\.") then "GlobalCrossRegion" elif test("^[a-z-]+\\.[a-z0-9]+\\.") then "CrossRegion"
        else "OnDemand" end), i: .input.inputTokenCount, o: (.output.outputTokenCount // 0)})
    | group_by(.p) | map({inferenceProfile: .[0].p, totalInput: (map(.i) | add * 2), totalOutput: (map(.o) | add * 2)})' \
    "$BM_TEST_DATA/bedrock-log-sample.jsonl")
T=$(Q token_aggregation)
t_eq "Track Token Aggregation: tokens by inferenceProfile = the sample's, twice (summed over hours)" "$WANT" \
    "$(echo "$T" | jq -c 'group_by(.inferenceProfile) | map({inferenceProfile: .[0].inferenceProfile,
        totalInput: (map(.totalInput) | add), totalOutput: (map(.totalOutput) | add)})')"
t_eq "... every row has an hour" "true" "$(echo "$T" | jq 'all(."bin(1h)" | test("^[0-9-]{10}T[0-9]{2}$"))')"
t_eq "Analyze Processing Duration (REPORT lines): nothing, bmas is not a Lambda" "[]" "$(Q processing_duration_report)"
t_eq "... its bmas form over processingTimeMs: two objects, durations present" "2 true" \
    "$(Q processing_duration | jq -r '"\(map(.objects) | add) \(all(.maxDuration >= 0 and .avgDuration >= 0))"')"

# bmas ingest: the guide's variables that mean nothing to it, named once.
BATCH_SIZE=5 DLQ_ENABLED=false LOG_LEVEL=INFO CLOUDWATCH_NAMESPACE=X/Y "$BINDIR/bmas" ingest "$W/a.json.gz" \
    > "$W/ingest.out" 2> "$W/ingest.err"
rc=$?
t_eq "bmas ingest: exit 0 and one config_ignored warning naming them" \
    '0 [{"level":"WARN","variables":"CLOUDWATCH_NAMESPACE,BATCH_SIZE,DLQ_ENABLED"}]' \
    "$rc $(jq -R -s -c '[split("\n")[] | fromjson? | select(.event == "config_ignored") | {level, variables}]' "$W/ingest.err")"

srv_stop emu
t_done
