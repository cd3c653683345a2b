#!/bin/bash
# The CloudWatch budget (issue 13): BMAS_MAX_SERIES=6 with the default three dimension sets and
# a sample of four profile types (12 series): six published, six held back and never sent (read
# back from the emulator's CloudWatch with the AWS CLI and GetMetricStatistics), BMAS-026 logged
# once, the counts on /status and /metrics; a second flush publishes the known six again and
# holds the rest again without a second warning; the month's estimate computed here from the
# price, the hours of the month and the series; a bad price refused at start (exit 2).
set -u
. tests/tools/svc-lib.sh
svc_setup

BMAS_ENV="AWS_ENDPOINT_URL=$EMU_URL AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test BMAS_FLUSH_INTERVAL=0 AWS_EC2_METADATA_DISABLED=true BMAS_MAX_SERIES=6 BMAS_CLOUDWATCH_METRIC_PRICE=0.25"
bmas_start || exit 1

t0=$(date -u +%s)
t_eq "object 1 posted" "200" "$(put_and_post "$P/one.json.gz" "$W/a.json.gz")"
call flush1 POST /flush
# Six series, five metrics each: 30 datums in one call.
t_eq "flush 1: six series of five metrics published" '{"published":30,"requests":1}' "$(echo "$BODY" | jq -c '{published,requests}')"

# Every series the sample makes, from /aggregates (not subject to the cap): per profile type,
# the set InferenceProfileType, the set InferenceProfileType+ModelId, the set
# SourceRegion+InferenceProfileType.
call agg GET "/aggregates?group_by=profile_type,model_id,source_region"
mapfile -t series < <(echo "$BODY" | jq -r '.rows[] |
    "InferenceProfileType=\(.profile_type)",
    "InferenceProfileType=\(.profile_type) ModelId=\(.model_id)",
    "SourceRegion=\(.source_region) InferenceProfileType=\(.profile_type)"')
t_eq "the sample makes 12 series" "12" "${#series[@]}"
sums() { local s; for s in "${series[@]}"; do
    # shellcheck disable=SC2086 # each series is a list of DIM=VALUE words
    cw_stat InvocationCount Sum $s; done | sort -n | tr '\n' ' '; }
t_eq "CloudWatch: six series with their one invocation, six never sent" "0 0 0 0 0 0 1 1 1 1 1 1 " "$(sums)"
t_eq "list-metrics (AWS CLI): 6 series x 5 metrics" "30" \
    "$(aws_q cloudwatch list-metrics --namespace Custom/BedrockMetrics | jq '.Metrics | length')"
t_eq "one BMAS-026 warning" "1" \
    "$(grep -c '"event":"cloudwatch_series_cap".*"errorCode":"BMAS-026"\|"errorCode":"BMAS-026".*"event":"cloudwatch_series_cap"' "$BMAS_LOG")"
t_eq "it is a WARN line" "WARN" "$(grep '"event":"cloudwatch_series_cap"' "$BMAS_LOG" | head -1 | jq -r .level)"
call status1 GET /status
t_eq "/status: 6 series in 24 h, 6 held back, cap 6" '{"series_24h":6,"held_back_24h":6,"held_back_total":6,"max_series":6}' \
    "$(echo "$BODY" | jq -c '.cloudwatch | {series_24h, held_back_24h, held_back_total, max_series}')"
t_eq "/status: the per-set counts add up" "6 6" \
    "$(echo "$BODY" | jq -r '([.cloudwatch.dimension_sets[].series_24h] | add) as $a
        | [.cloudwatch.dimension_sets[].held_back_24h] | add | "\($a) \(.)"')"
t_eq "/status: errors.BMAS-026 counts the held-back series" "6" "$(echo "$BODY" | jq '.errors["BMAS-026"]')"
t_eq "/status: nothing left pending (held-back rows are done, not retried)" "0" "$(echo "$BODY" | jq '.publish.pending')"

# Again: the six known series go, the six others are held back again, no second warning.
E2=$(s3_upload logs "$P/two.json.gz" "$W/a.json.gz")
call post2 POST /events --data "$(jq -c --arg k "$(form_key "$P/two.json.gz")" --arg e "$E2" \
    '.Records[0].s3.bucket.name = "logs" | .Records[0].s3.object.key = $k
    | .Records[0].s3.object.eTag = $e' "$BM_TEST_DATA/s3-event.json")"
t_eq "object 2 posted" "200" "$STATUS"
# Flush 2 starts in a later second than flush 1 ended, so their times tell them apart.
tf1=$(date -u +%s)
wait_for 5 bash -c "[ \$(date -u +%s) -gt $tf1 ]"
tf2=$(date -u +%s)
call flush2 POST /flush
t_eq "flush 2: the same six series" '{"published":30,"requests":1}' "$(echo "$BODY" | jq -c '{published,requests}')"
t_eq "CloudWatch: the six series twice, the six others still never" "0 0 0 0 0 0 2 2 2 2 2 2 " "$(sums)"
t_eq "still one BMAS-026 warning" "1" "$(grep -c '"event":"cloudwatch_series_cap"' "$BMAS_LOG")"
# Each publication of a known series moves its time forward (the 24-hour window and the hours
# billed follow it): read in the database, as the claim tests do.
t_eq "the six series' publication time is flush 2's" "6 6" \
    "$(sqlite3 "file:$BMAS_DB?mode=ro" "SELECT count(*) FROM cw_series WHERE pub_at >= $tf2;
        SELECT count(*) FROM cw_series WHERE held_at >= $tf2 AND pub_at = 0" | tr '\n' ' ' | sed 's/ $//')"
call status2 GET /status
t1=$(date -u +%s)
t_eq "/status: still 6 series, held back twice each" '{"series_24h":6,"held_back_24h":6,"held_back_total":12}' \
    "$(echo "$BODY" | jq -c '.cloudwatch | {series_24h, held_back_24h, held_back_total}')"
call metrics GET /metrics
t_eq "/metrics: held back 12 times" "12" "$(awk '$1 == "bmas_cloudwatch_series_held_back_total" { print $2 }' "$W/resp/metrics.body")"
t_eq "/metrics: 6 series in 24 h" "6" "$(awk '/^bmas_cloudwatch_series_24h\{/ { s += $NF } END { print s }' "$W/resp/metrics.body")"

# The estimate: 0.25 USD per metric-month, prorated by the hour. Each of the six series was
# published in one hour (both flushes in the same hour) or two (an hour began in between);
# the six keep going for every hour left after the current one. In micro-dollars, rounded.
expect() { # NOW SERIES_HOURS: the estimate in USD, six decimals
    local now=$1 h=$2 ms me
    ms=$(date -u -d "$(date -u -d "@$now" +%Y-%m-01)" +%s)
    me=$(date -u -d "$(date -u -d "@$now" +%Y-%m-01) + 1 month" +%s)
    local hours=$(( (me - ms) / 3600 )) left=$(( me / 3600 - now / 3600 - 1 ))
    local num=$(( 250000 * 5 * (h + 6 * left) ))
    local micro=$(( (num + hours / 2) / hours ))
    printf '%d.%06d\n' $((micro / 1000000)) $((micro % 1000000))
}
ST=$W/resp/status2.body
got=$(printf '%.6f' "$(jq '.cloudwatch.month_estimate_usd' "$ST")")
if [ $((t0 / 3600)) = $((t1 / 3600)) ]; then
    t_eq "month estimate = 0.25 x 5 x (6 + 6 x hours left) / hours of the month" "$(expect "$t1" 6)" "$got"
else
    t_ok "month estimate (an hour began during the test: either hour's figure)" \
        grep -qx -e "$(expect "$t1" 12)" -e "$(expect "$t1" 6)" <<<"$got"
fi
t_eq "/status: the price and the metrics per series" "0.25 5" "$(jq -r '"\(.cloudwatch.metric_price_usd) \(.cloudwatch.metrics_per_series)"' "$ST")"
openapi_check
srv_stop bmas

for bad in abc 1.2.3 . 0.1234567; do
    out=$(BMAS_CLOUDWATCH_METRIC_PRICE=$bad "$BINDIR/bmas" serve --listen 127.0.0.1:0 --db "$W/never.db" 2>&1)
    t_eq "price \"$bad\": exit 2, before any database is made" "2 no db" "$? $([ -e "$W/never.db" ] && echo db || echo no db)"
    t_ok "price \"$bad\": the message names the variable" grep -q BMAS_CLOUDWATCH_METRIC_PRICE <<<"$out"
done
srv_stop emu
t_done
