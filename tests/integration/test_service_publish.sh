#!/bin/bash
# Publishing to CloudWatch (bmas-emulator) end to end: POST /flush, read back (get-metric-statistics,
# once with the AWS CLI, else signed by curl) and compared with /aggregates exactly; as few calls as the limits
# allow (2,010 datums -> 3 calls); a throttled call retried alone (the emulator counts calls);
# an outage leaves deltas pending across a restart, then publishes them once.
set -u
. tests/tools/svc-lib.sh
svc_setup

cw_calls() { curl -m 60 -sS "$EMU_URL/_emulator/requests?service=cloudwatch" |
    jq '[.requests[] | select(.operation == "PutMetricData") | .count] | add // 0'; }

BMAS_ENV="AWS_ENDPOINT_URL=$EMU_URL AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test BMAS_FLUSH_INTERVAL=0 MAX_RETRY_ATTEMPTS=3 AWS_EC2_METADATA_DISABLED=true"
bmas_start || exit 1

t_eq "object 1 posted" "200" "$(put_and_post "$P/one.json.gz" "$W/a.json.gz")"
t_eq "object 2 posted" "200" "$(put_and_post "$P/two.json.gz" "$W/a.json.gz")"
call flush1 POST /flush
# Default dimension sets: type; type+model; region+type. The sample has four types (one model
# each) in one Region: 3 x 4 groups, 5 metrics each = 60 datums.
t_eq "flush: 60 datums in one call" '{"published":60,"requests":1}' \
    "$(echo "$BODY" | jq -c '{published,requests}')"
t_eq "CloudWatch Sum of InputTokens, CrossRegion (read by the AWS CLI)" "510" "$(cw_stat_cli InputTokens Sum InferenceProfileType=CrossRegion)"
t_eq "CloudWatch SampleCount = invocations" "2" "$(cw_stat InputTokens SampleCount InferenceProfileType=CrossRegion)"
t_eq "CloudWatch Maximum per invocation" "255" "$(cw_stat InputTokens Maximum InferenceProfileType=CrossRegion)"
t_eq "InvocationCount by type and model" "2" \
    "$(cw_stat InvocationCount Sum InferenceProfileType=GlobalCrossRegion ModelId=anthropic.claude-opus-4-5-20251101-v1:0)"
t_eq "CacheWriteInputTokens, Application" "451826" "$(cw_stat CacheWriteInputTokens Sum InferenceProfileType=Application)"
t_eq "by source Region" "10" "$(cw_stat InputTokens Sum SourceRegion=us-east-1 InferenceProfileType=OnDemand)"
call agg GET "/aggregates?group_by=profile_type&profile_type=OnDemand"
t_eq "the same number in /aggregates" "10" "$(echo "$BODY" | jq .totals.input_tokens)"
call flush2 POST /flush
t_eq "nothing pending: a flush sends nothing" '{"published":0,"requests":0}' "$(echo "$BODY" | jq -c '{published,requests}')"

# A throttled call is retried alone and counted once.
t_eq "object 3 posted" "200" "$(put_and_post "$P/three.json.gz" "$W/a.json.gz")"
before=$(cw_calls)
emu_fault '{"service":"cloudwatch","operation":"PutMetricData","status":400,"code":"Throttling","count":1}'
call flush3 POST /flush
t_eq "throttled once, then published" '{"published":60,"requests":1}' "$(echo "$BODY" | jq -c '{published,requests}')"
t_eq "exactly one extra call" "$((before + 2))" "$(cw_calls)"
t_eq "no double count after the retry" "765" "$(cw_stat InputTokens Sum InferenceProfileType=CrossRegion)"

# An outage: the deltas stay pending, survive a restart, and go out once it is over.
t_eq "object 4 posted" "200" "$(put_and_post "$P/four.json.gz" "$W/a.json.gz")"
emu_fault '{"service":"cloudwatch","operation":"PutMetricData","status":503,"code":"ServiceUnavailable","count":20}'
call flush4 POST /flush
t_eq "outage: 502 BMAS-004" "502 BMAS-004" "$STATUS $(echo "$BODY" | jq -r .errorCode)"
t_eq "BMAS-004 details: namespace, CloudWatch's error, retries (3 attempts)" \
    '{"namespace":"Custom/BedrockMetrics","errorType":"ServiceUnavailable","retryAttempts":2}' \
    "$(echo "$BODY" | jq -c .details)"
t_eq "the log line carries the same details" \
    '{"namespace":"Custom/BedrockMetrics","errorType":"ServiceUnavailable","retryAttempts":2,"errorCode":"BMAS-004"}' \
    "$(grep '"event":"publish_failed"' "$BMAS_LOG" | tail -1 | jq -c '{namespace,errorType,retryAttempts,errorCode}')"
call status1 GET /status
t_eq "/status counts BMAS-004 once (the failed call; the throttled one that went through is not)" \
    1 "$(echo "$BODY" | jq '.errors["BMAS-004"]')"

t_eq "deltas pending, last error reported, degraded" '[true,"BMAS-004","degraded"]' \
    "$(echo "$BODY" | jq -c '[.publish.pending > 0, .publish.last_error.errorCode, .status]')"
pending=$(echo "$BODY" | jq .publish.pending)
srv_stop bmas "bmas during the outage"
bmas_start || exit 1
call status2 GET /status
t_eq "pending survives a restart" "$pending" "$(echo "$BODY" | jq .publish.pending)"
curl -m 60 -sS -o /dev/null -X DELETE "$EMU_URL/_emulator/faults"
call flush5 POST /flush
t_eq "after the outage: published" '{"published":60,"requests":1}' "$(echo "$BODY" | jq -c '{published,requests}')"
t_eq "exact after outage and restart" "1020" "$(cw_stat InputTokens Sum InferenceProfileType=CrossRegion)"
call status3 GET /status
t_eq "nothing pending, healthy again" '[0,"ok"]' "$(echo "$BODY" | jq -c '[.publish.pending,.status]')"

# 400 models in one minute: 402 groups x 5 metrics = 2,010 datums -> 3 calls. Rows are merged
# before packing, so the two low-cardinality groups (the type; Region+type) go once, not once
# per call: 2,010 datums, ceil(2010/1000) = 3 calls.
awk -v h="$H" 'BEGIN { for (i = 0; i < 400; i++) printf "{\"timestamp\":\"%s:30:00Z\",\"region\":\"us-east-1\",\"operation\":\"Converse\",\"modelId\":\"us.vendor.model-%03d\",\"input\":{\"inputTokenCount\":%d},\"output\":{\"outputTokenCount\":1}}\n", h, i, i + 1 }' \
    | gzip -c > "$W/many.json.gz"
t_eq "400-model object posted" "200" "$(put_and_post "$P/many.json.gz" "$W/many.json.gz")"
before=$(cw_calls)
call flush6 POST /flush
t_eq "2,010 datums in 3 calls" '{"published":2010,"requests":3}' "$(echo "$BODY" | jq -c '{published,requests}')"
t_eq "3 calls reached CloudWatch" "$((before + 3))" "$(cw_calls)"
t_eq "every model's datum arrived (1..400, plus the four samples' 1,020)" "81220" \
    "$(cw_stat InputTokens Sum SourceRegion=us-east-1 InferenceProfileType=CrossRegion)"
t_eq "one model's own series" "400" "$(cw_stat InputTokens Sum InferenceProfileType=CrossRegion ModelId=vendor.model-399)"
srv_stop bmas "bmas after the restart"
srv_stop emu
t_done
