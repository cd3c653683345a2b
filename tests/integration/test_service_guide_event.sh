#!/bin/bash
# The replaced Lambda's "Test with Sample Event" (its deployment guide, verification step 3),
# byte for byte: a Lambda SQS event whose body is {"Records":[{"s3":{"bucket":…,"object":…}}]}
# with no eventVersion and no eventName. With the guide's bucket and key pointing at a real
# sample object in the emulator, bmas counts it with the sample's totals; the same shape with
# eventName ObjectRemoved:Delete is acknowledged as ignored (with its reason in the log), not
# failed; a minimal record naming a missing object is redelivered (BMAS-001).
set -u
. tests/tools/svc-lib.sh
svc_setup

GB=your-bedrock-logs-bucket
GK=bedrock-logs/test-invocation.json
s3_mb "$GB"
# The guide's key ends in .json: the sample uploaded plain (bmas tells gzip by its magic bytes).
gunzip -c "$W/a.json.gz" > "$W/a.json"
s3_upload "$GB" "$GK" "$W/a.json" >/dev/null

cat > "$W/test-event.json" << 'GUIDE'
{
  "Records": [
    {
      "messageId": "test-message-id",
      "body": "{\"Records\":[{\"s3\":{\"bucket\":{\"name\":\"your-bedrock-logs-bucket\"},\"object\":{\"key\":\"bedrock-logs/test-invocation.json\"}}}]}"
    }
  ]
}
GUIDE

BMAS_ENV="AWS_ENDPOINT_URL=$EMU_URL AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test BMAS_FLUSH_INTERVAL=0 MAX_RETRY_ATTEMPTS=2 AWS_EC2_METADATA_DISABLED=true"
bmas_start || exit 1

call guide POST /events --data-binary @"$W/test-event.json"
t_eq "the guide's test event: 200, no message to redeliver" '200 []' \
    "$STATUS $(echo "$BODY" | jq -c .batchItemFailures)"
call totals GET "/aggregates?group_by="
# tests/data/bedrock-log-sample.jsonl: 4 invocations and these token sums.
t_eq "counted with the sample's totals" \
    '{"invocations":4,"input_tokens":269,"output_tokens":332,"cache_read_input_tokens":24479,"cache_write_input_tokens":225913,"cost_usd":0,"unpriced_invocations":4}' \
    "$(echo "$BODY" | jq -c .totals)"
call again POST /events --data-binary @"$W/test-event.json"
call status1 GET /status
t_eq "sent twice, counted once" '{"processed":1,"duplicates":1,"ignored":0,"failed":0,"quarantined":0}' \
    "$(echo "$BODY" | jq -c .objects)"

# The same shape with an eventName other than ObjectCreated:*: ignored, nothing fetched.
DEL=$(jq -c --arg b "$GB" --arg k "$GK" -n \
    '{Records: [{eventName: "ObjectRemoved:Delete", s3: {bucket: {name: $b}, object: {key: $k}}}]}')
call deleted POST /events --data "$DEL"
t_eq "ObjectRemoved:Delete posted bare: 200 ignored" "200 ignored" "$STATUS $(echo "$BODY" | jq -r .status)"
jq -c --arg b "$DEL" -n '{Records: [{messageId: "del-1", body: $b}]}' > "$W/del-batch.json"
call deleted_sqs POST /events --data-binary @"$W/del-batch.json"
t_eq "ObjectRemoved:Delete in an SQS event: acknowledged" '200 []' \
    "$STATUS $(echo "$BODY" | jq -c .batchItemFailures)"
t_ok "the log says why it was ignored" grep -q '"event":"object_ignored".*ObjectCreated' "$BMAS_LOG"

# A minimal record naming an object that is not there: a real failure, redelivered.
jq -c -n '{Records: [{messageId: "gone-1", body: ({Records: [{s3: {bucket: {name: "your-bedrock-logs-bucket"},
    object: {key: "bedrock-logs/gone.json"}}}]} | tojson)}]}' > "$W/gone.json"
call gone POST /events --data-binary @"$W/gone.json"
t_eq "a missing object is redelivered" '["gone-1"]' "$(echo "$BODY" | jq -c '[.batchItemFailures[].itemIdentifier]')"
call status2 GET /status
t_eq "counters: still one object, two ignored, one BMAS-001" '[1,2,1]' \
    "$(echo "$BODY" | jq -c '[.objects.processed, .objects.ignored, .errors["BMAS-001"]]')"
call totals2 GET "/aggregates?group_by="
t_eq "totals unchanged" "4" "$(echo "$BODY" | jq .totals.invocations)"

srv_stop bmas
srv_stop emu
t_done
