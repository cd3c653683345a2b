#!/bin/bash
# GET /metrics (issue 13): the Prometheus text format checked by promtool (Debian's prometheus
# package); the aggregate counters equal /aggregates and the sample read by jq; the request,
# ingest, flush and AWS call counters moved by what the script did (a missing object and a
# throttled PutMetricData too); the cardinality cap (BMAS_METRICS_MAX_SERIES) folds the rest
# into "other" and counts them; the auth of /status.
set -u
. tests/tools/svc-lib.sh
svc_setup

TOKEN=metrics-secret
AUTH=(-H "Authorization: Bearer $TOKEN")
BMAS_ENV="AWS_ENDPOINT_URL=$EMU_URL AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test BMAS_FLUSH_INTERVAL=0 AWS_EC2_METADATA_DISABLED=true BMAS_AUTH_TOKEN=$TOKEN"
bmas_start || exit 1

post() { # KEY FILE: put_and_post with the token
    local etag ev
    etag=$(s3_upload logs "$1" "$2")
    ev=$(jq -c --arg k "$(form_key "$1")" --arg e "$etag" '.Records[0].s3.bucket.name = "logs"
        | .Records[0].s3.object.key = $k | .Records[0].s3.object.eTag = $e' "$BM_TEST_DATA/s3-event.json")
    curl -m 60 -sS -o /dev/null -w '%{http_code}' "${AUTH[@]}" --data "$ev" "$BMAS_URL/events"
}
# metric NAME{LABELS}: the value of one sample line of $M, the last /metrics (empty when absent)
metric() { awk -v k="$1" 'index($0, k " ") == 1 { print $NF }' "$M"; }

call noauth GET /metrics
t_eq "/metrics without the token: 401, as /status" "401 BMAS-012" "$STATUS $(echo "$BODY" | jq -r .errorCode)"
t_eq "object 1 posted" "200" "$(post "$P/one.json.gz" "$W/a.json.gz")"
t_eq "object 2 posted" "200" "$(post "$P/two.json.gz" "$W/a.json.gz")"
# The third POST (object 1 again: a duplicate, not fetched) through `call`, for the OpenAPI check.
ev=$(jq -c --arg k "$(form_key "$P/one.json.gz")" --arg e "$(md5sum < "$W/a.json.gz" | cut -d' ' -f1)" \
    '.Records[0].s3.bucket.name = "logs" | .Records[0].s3.object.key = $k
    | .Records[0].s3.object.eTag = $e' "$BM_TEST_DATA/s3-event.json")
call dup POST /events "${AUTH[@]}" --data "$ev"
t_eq "object 1 again: a duplicate, not fetched" "200" "$STATUS"
# A missing object: one GetObject that fails (404 is not retried), one object in error.
ev=$(jq -c --arg k "$(form_key "$P/missing.json.gz")" '.Records[0].s3.bucket.name = "logs"
    | .Records[0].s3.object.key = $k | del(.Records[0].s3.object.eTag)' "$BM_TEST_DATA/s3-event.json")
call missing POST /events "${AUTH[@]}" --data "$ev"
t_eq "a missing object: 404 BMAS-001" "404 BMAS-001" "$STATUS $(echo "$BODY" | jq -r .errorCode)"
# CloudWatch throttles the first attempt: one PutMetricData call, one retry.
emu_fault '{"service":"cloudwatch","operation":"PutMetricData","status":400,"code":"Throttling","count":1}'
call flush POST /flush "${AUTH[@]}"
t_eq "flush published" "200" "$STATUS"
call metrics GET /metrics "${AUTH[@]}"
t_eq "/metrics: 200, text/plain; version=0.0.4" "200 text/plain; version=0.0.4; charset=utf-8" \
    "$STATUS $(grep -i '^content-type:' "$W/resp/metrics.hdr" | cut -d' ' -f2- | tr -d '\r')"
M=$W/resp/metrics.body
cp "$M" "$W/metrics.txt"
t_ok "promtool check metrics: no problem found" promtool check metrics < "$W/metrics.txt"
promtool check metrics < "$W/metrics.txt" 2>&1 | sed 's/^/#   promtool: /'

# Each counter moved by what this script did: 3 POST /events answered 200 (one a duplicate
# caught before S3) and one 404, 3 GetObject (one failed), 1 PutMetricData (retried once), 1
# flush, 2 objects of 4 records and their bytes, 1 object in error.
size=$(stat -c %s "$W/a.json.gz")
t_eq "requests: POST /events 200 three times" "3" "$(metric 'bmas_http_requests_total{route="/events",status="200"}')"
t_eq "requests: /metrics 401 once" "1" "$(metric 'bmas_http_requests_total{route="/metrics",status="401"}')"
t_eq "requests: /flush 200 once" "1" "$(metric 'bmas_http_requests_total{route="/flush",status="200"}')"
t_eq "S3 GetObject ok twice" "2" "$(metric 'bmas_aws_calls_total{service="s3",operation="GetObject",outcome="ok"}')"
t_eq "S3 GetObject in error once (the missing object)" "1" "$(metric 'bmas_aws_calls_total{service="s3",operation="GetObject",outcome="error"}')"
t_eq "requests: POST /events 404 once" "1" "$(metric 'bmas_http_requests_total{route="/events",status="404"}')"
t_eq "ingest: one object in error" "1" "$(metric 'bmas_ingest_objects_total{outcome="error"}')"
t_eq "PutMetricData retried once (the throttled attempt)" "1" "$(metric 'bmas_aws_retries_total{service="cloudwatch",operation="PutMetricData"}')"
t_eq "CloudWatch PutMetricData ok once" "1" "$(metric 'bmas_aws_calls_total{service="cloudwatch",operation="PutMetricData",outcome="ok"}')"
t_eq "AWS latency histogram: three GetObject observed" "3" "$(metric 'bmas_aws_call_duration_seconds_count{service="s3",operation="GetObject"}')"
t_eq "flushes ok: one" "1" "$(metric 'bmas_flushes_total{outcome="ok"}')"
t_eq "flush duration observed once" "1" "$(metric 'bmas_flush_duration_seconds_count')"
t_eq "ingest: two objects" "2" "$(metric 'bmas_ingest_objects_total{outcome="ok"}')"
t_eq "ingest: their records (the sample's lines, twice)" "$((2 * $(wc -l < "$BM_TEST_DATA/bedrock-log-sample.jsonl")))" "$(metric 'bmas_ingest_records_total{outcome="ok"}')"
t_eq "ingest: their bytes as uploaded" "$((2 * size))" "$(metric 'bmas_ingest_bytes_total')"
t_eq "ingest duration histogram: +Inf bucket = count = 3 (the failed object too)" "3 3" \
    "$(metric 'bmas_ingest_duration_seconds_bucket{le="+Inf"}') $(metric 'bmas_ingest_duration_seconds_count')"

# The aggregates: every /aggregates row (all time, by the four labels) as five counters.
call agg GET "/aggregates?group_by=profile_type,model_id,source_region,inference_region" "${AUTH[@]}"
want=$(echo "$BODY" | jq -r '.rows[] | "\(.profile_type)|\(.model_id)|\(.source_region)|\(.inference_region) \(.invocations) \(.input_tokens) \(.output_tokens) \(.cache_read_input_tokens) \(.cache_write_input_tokens)"' | sort)
got=$(awk '/^bmas_(invocations|input_tokens|output_tokens|cache_read_input_tokens|cache_write_input_tokens)_total\{/ {
        match($0, /\{.*\}/); l = substr($0, RSTART + 1, RLENGTH - 2)
        gsub(/[a-z_]+="/, "", l); gsub(/",?/, "|", l); sub(/\|$/, "", l)
        split($1, n, "{"); v[l, n[1]] = $NF; keys[l] = 1 }
    END { for (k in keys) print k, v[k, "bmas_invocations_total"], v[k, "bmas_input_tokens_total"],
        v[k, "bmas_output_tokens_total"], v[k, "bmas_cache_read_input_tokens_total"],
        v[k, "bmas_cache_write_input_tokens_total"] }' "$W/metrics.txt" | sort)
t_eq "aggregate counters = /aggregates rows (4 label sets, 5 counters each)" "$want" "$got"
t_eq "label sets: one per profile type of the sample" "$(jq -s '[.[].modelId] | unique | length' "$BM_TEST_DATA/bedrock-log-sample.jsonl")" "$(echo "$got" | grep -c .)"
S=$BM_TEST_DATA/bedrock-log-sample.jsonl
t_eq "bmas_input_tokens_total adds up to the sample's input tokens, twice" \
    "$(jq -s '[.[].input.inputTokenCount] | add * 2' "$S")" \
    "$(awk '/^bmas_input_tokens_total\{/ { s += $NF } END { print s }' "$W/metrics.txt")"
t_eq "no series folded under the default cap" "0" "$(metric bmas_metrics_series_folded)"
call status GET /status "${AUTH[@]}"
t_eq "/status: two objects processed, one duplicate" "2 1" "$(echo "$BODY" | jq -r '"\(.objects.processed) \(.objects.duplicates)"')"
openapi_check "${AUTH[@]}"
srv_stop bmas "bmas (first run)"

# The cap: two label sets shown, the other two folded into "other" and counted.
# ... and in consumer mode, on an empty queue: SQS ReceiveMessage calls are counted too.
sqs_api CreateQueue '{"QueueName":"idle-q"}' >/dev/null
BMAS_ENV="$BMAS_ENV BMAS_METRICS_MAX_SERIES=2 BMAS_SQS_QUEUE_URL=$EMU_URL/000000000000/idle-q BMAS_SQS_WAIT_SECONDS=1"
bmas_start || exit 1
recv_ok() { curl -m 30 -sS "${AUTH[@]}" "$BMAS_URL/metrics" |
    awk '$1 == "bmas_aws_calls_total{service=\"sqs\",operation=\"ReceiveMessage\",outcome=\"ok\"}" { print $2 }'; }
polled() { [ "$(recv_ok)" -ge 1 ] 2>/dev/null; }
t_ok "SQS ReceiveMessage calls counted (the consumer's long polls)" wait_for 30 polled
call metrics2 GET /metrics "${AUTH[@]}"
M=$W/resp/metrics2.body
cp "$M" "$W/metrics2.txt"
t_ok "promtool check metrics (capped)" promtool check metrics < "$W/metrics2.txt"
t_eq "folded: 2 (gauge)" "2" "$(metric bmas_metrics_series_folded)"
t_eq "label sets: two and other" "3" "$(grep -c '^bmas_invocations_total{' "$W/metrics2.txt")"
t_eq "the other series holds the rest: totals unchanged" \
    "$(jq -s '[.[].input.inputTokenCount] | add * 2' "$S")" \
    "$(awk '/^bmas_input_tokens_total\{/ { s += $NF } END { print s }' "$W/metrics2.txt")"
t_eq "counters of this process start at 0: the /metrics requests only" "" "$(metric 'bmas_http_requests_total{route="/events",status="200"}')"
srv_stop bmas "bmas (capped)"
srv_stop emu
t_done
