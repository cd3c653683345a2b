#!/bin/bash
# The replaced Lambda's dashboards against bmas (issue 10): BMAS_DIMENSION_SETS=lambda-compat
# publishes what the Lambda's deployment guide reads (InputTokens and OutputTokens by
# InferenceProfile, InvocationCount by Region, totals without dimensions), read back exact (the
# guide's step with both AWS CLIs, each filter signed by curl in both protocols); `bmas dashboard` accepted by put-dashboard and read back, each of its metrics
# with data through GetMetricData; `bmas alarms` accepted by put-metric-alarm and listed by
# describe-alarms; the emulator's dashboard and alarm validation in both protocols.
# Expected numbers come from jq's reading of the sample, not from bmas.
set -u
. tests/tools/svc-lib.sh
svc_setup

START=$(date -u -d "@$((SVC_NOW - 3 * 3600))" +%Y-%m-%dT%H:00:00Z)
END=$(date -u -d "@$((SVC_NOW + 3600))" +%Y-%m-%dT%H:00:00Z)
cw_sum() { # CLI METRIC STAT [DIM=VALUE...]: the guide's get-metric-statistics, period 300
    local cli=$1 metric=$2 stat=$3
    shift 3
    local dims=()
    [ $# -gt 0 ] && dims=(--dimensions)
    for d in "$@"; do dims+=("Name=${d%%=*},Value=${d#*=}"); done
    $cli cloudwatch get-metric-statistics --namespace Custom/BedrockMetrics --metric-name "$metric" \
        "${dims[@]}" --statistics "$stat" --period 300 --start-time "$START" --end-time "$END" |
        jq ".Datapoints | map(.$stat) | add // 0"
}
# The same read signed by curl, in the protocol of that CLI (Query for aws_q, JSON 1.0 for aws_j):
# the emulator's parsing of each dimension filter in both protocols, without a CLI start each.
cw_sum_curl() { # CLI METRIC STAT [DIM=VALUE...]
    local cli=$1 metric=$2 stat=$3 i=1 d
    shift 3
    if [ "$cli" = aws_j ]; then
        cw_get_stat Custom/BedrockMetrics "$metric" "$stat" 300 "$START" "$END" "$@"
        return
    fi
    local form=(--data Action=GetMetricStatistics --data Version=2010-08-01
        --data Namespace=Custom/BedrockMetrics --data-urlencode "MetricName=$metric"
        --data-urlencode "Statistics.member.1=$stat" --data Period=300
        --data-urlencode "StartTime=$START" --data-urlencode "EndTime=$END")
    for d in "$@"; do
        form+=(--data-urlencode "Dimensions.member.$i.Name=${d%%=*}"
            --data-urlencode "Dimensions.member.$i.Value=${d#*=}")
        i=$((i + 1))
    done
    curl -m 60 -sSf --aws-sigv4 "aws:amz:us-east-1:monitoring" --user test:test "${form[@]}" "$EMU_URL/" |
        grep -o "<$stat>[^<]*</$stat>" | sed 's/<[^>]*>//g' | jq -s 'add // 0'
}
# The sample, read by jq: geographic profiles (us.), the global one, and everything.
S=$BM_TEST_DATA/bedrock-log-sample.jsonl
cr_in=$(jq -s '[.[] | select(.modelId | test("^us\\.")) | .input.inputTokenCount] | add' "$S")
gl_in=$(jq -s '[.[] | select(.modelId | test("(^|/)global\\.")) | .input.inputTokenCount] | add' "$S")
gl_out=$(jq -s '[.[] | select(.modelId | test("(^|/)global\\.")) | .output.outputTokenCount // 0] | add' "$S")
all_in=$(jq -s '[.[].input.inputTokenCount] | add' "$S")
n_all=$(jq -s 'length' "$S")
n_use1=$(jq -s '[.[] | select(.region == "us-east-1")] | length' "$S")

BMAS_ENV="AWS_ENDPOINT_URL=$EMU_URL AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test BMAS_FLUSH_INTERVAL=0 AWS_EC2_METADATA_DISABLED=true BMAS_DIMENSION_SETS=lambda-compat"
bmas_start || exit 1
t_eq "sample posted" "200" "$(put_and_post "$P/one.json.gz" "$W/a.json.gz")"
call flush POST /flush
# lambda-compat, per minute: InferenceProfile (each record its own type) + Region (one) +
# totals, five metrics each.
groups=$(jq -s '([.[] | [.timestamp[0:16], .modelId]] | unique | length)
    + 2 * ([.[].timestamp[0:16]] | unique | length)' "$S")
t_eq "flush: every datum in one call" "{\"published\":$((groups * 5)),\"requests\":1}" \
    "$(echo "$BODY" | jq -c '{published,requests}')"

# The guide's widgets and CLI steps, through Debian's CLI (Query) and the other one (JSON 1.0).
for cli in $(clis); do
    t_eq "InputTokens by InferenceProfile=CrossRegion ($cli)" "$cr_in" "$(cw_sum_curl "$cli" InputTokens Sum InferenceProfile=CrossRegion)"
    t_eq "InputTokens by InferenceProfile=GlobalCrossRegion ($cli)" "$gl_in" "$(cw_sum_curl "$cli" InputTokens Sum InferenceProfile=GlobalCrossRegion)"
    t_eq "InvocationCount by Region=us-east-1 ($cli)" "$n_use1" "$(cw_sum_curl "$cli" InvocationCount Sum Region=us-east-1)"
    t_eq "InvocationCount without dimensions ($cli)" "$n_all" "$(cw_sum_curl "$cli" InvocationCount Sum)"
    t_eq "InputTokens without dimensions: the guide's verification step ($cli)" "$all_in" "$(cw_sum "$cli" InputTokens Sum)"
done
t_eq "OutputTokens by InferenceProfile=GlobalCrossRegion" "$gl_out" "$(cw_sum_curl aws_q OutputTokens Sum InferenceProfile=GlobalCrossRegion)"
out=$(cw_api ListMetrics '{"Namespace":"Custom/BedrockMetrics"}')
t_eq "list-metrics: exactly the three sets (dimension names per metric)" \
    "5 InferenceProfile=4|5 Region=1|5 none=1" \
    "$(echo "$out" | jq -r '[.Metrics[] | (.Dimensions | map(.Name) | join(",")) as $d
        | {m: .MetricName, d: (if $d == "" then "none" else $d end)}]
        | group_by(.d) | map("\(map(.m) | unique | length) \(.[0].d)=\(length / (map(.m) | unique | length))") | join("|")')"

# bmas dashboard: accepted by put-dashboard, read back as written.
BMAS_DIMENSION_SETS=lambda-compat AWS_REGION=us-east-1 "$BINDIR/bmas" dashboard --values Region=us-east-1 > "$W/dash.json"
t_eq "bmas dashboard: exit 0" 0 $?
t_eq "dashboard: 3 widgets per set, the guide's lines" \
    "9 12 [\"Custom/BedrockMetrics\",\"InputTokens\",\"InferenceProfile\",\"CrossRegion\"]" \
    "$(jq -c '"\(.widgets | length) \([.widgets[].properties.metrics[]] | length) \(.widgets[0].properties.metrics[0])"' -r "$W/dash.json")"
out=$(aws_q cloudwatch put-dashboard --dashboard-name BedrockMetricsAggregator \
    --dashboard-body "file://$W/dash.json")
t_eq "put-dashboard takes it, no validation message (Query CLI)" "[]" \
    "$(echo "$out" | jq -c .DashboardValidationMessages)"
out=$($J cloudwatch get-dashboard --dashboard-name BedrockMetricsAggregator)
t_eq "get-dashboard gives it back" "$(jq -cS . "$W/dash.json")" "$(echo "$out" | jq -r .DashboardBody | jq -cS .)"
t_eq "list-dashboards names it" "BedrockMetricsAggregator" \
    "$($J cloudwatch list-dashboards --dashboard-name-prefix Bedrock | jq -r '[.DashboardEntries[].DashboardName] | join(",")')"
# Every metric line of the dashboard, read back through GetMetricData: each has data.
q=$(jq -c '[.widgets[].properties as $p | $p.metrics[]
    | {Metric: {Namespace: .[0], MetricName: .[1],
                Dimensions: [range(2; length; 2) as $i | {Name: .[$i], Value: .[$i + 1]}]},
       Period: $p.period, Stat: $p.stat}]
    | to_entries | map({Id: "m\(.key)", MetricStat: .value, ReturnData: true})' "$W/dash.json")
for cli in $(clis); do
    out=$($cli cloudwatch get-metric-data --start-time "$START" --end-time "$END" --metric-data-queries "$q")
    [ "$cli" = aws_q ] && gmd_q=$out
    t_eq "GetMetricData: every dashboard metric has data ($cli)" "12 12" \
        "$(echo "$out" | jq -r '"\(.MetricDataResults | length) \([.MetricDataResults[] | select((.Values | add // 0) > 0)] | length)"')"
done
t_eq "the totals line reads the sample's invocations" "$n_all" \
    "$(echo "$gmd_q" | jq '[.MetricDataResults[] | select(.Id == "m11") | .Values[]] | add')"
# The default sets: a set whose values cannot be listed (ModelId) is a SEARCH expression.
t_eq "default sets: ModelId by SEARCH" "SEARCH('{Custom/BedrockMetrics,InferenceProfileType,ModelId} MetricName=\"InputTokens\"', 'Sum', 300)" \
    "$(env -u BMAS_DIMENSION_SETS "$BINDIR/bmas" dashboard | jq -r '.widgets[3].properties.metrics[0][0].expression')"
t_eq "put-dashboard takes the default sets' dashboard (SEARCH lines)" 0 \
    "$(aws_q cloudwatch put-dashboard --dashboard-name bmas-default \
        --dashboard-body "$(env -u BMAS_DIMENSION_SETS "$BINDIR/bmas" dashboard)" |
        jq '.DashboardValidationMessages | length')"
"$BINDIR/bmas" dashboard --values Nope=a >/dev/null 2>&1
t_eq "an unknown --values dimension: exit 2" 2 $?
"$BINDIR/bmas" dashboard --values "Region=$(seq -s, 1 33)" >/dev/null 2>&1
t_eq "more than 32 values: exit 2" 2 $?
BMAS_DIMENSION_SETS=Region,Nope "$BINDIR/bmas" dashboard >/dev/null 2>&1
t_eq "an unknown dimension in BMAS_DIMENSION_SETS: exit 2" 2 $?

# bmas alarms: each line accepted by put-metric-alarm --cli-input-json, all listed.
BMAS_DIMENSION_SETS=lambda-compat "$BINDIR/bmas" alarms --sns-topic arn:aws:sns:us-east-1:000000000000:alerts > "$W/alarms.jsonl"
t_eq "bmas alarms: three" 3 "$(wc -l < "$W/alarms.jsonl")"
n=0
while IFS= read -r a; do
    cli=aws_q
    [ $((n % 2)) = 1 ] && cli=$J
    if $cli cloudwatch put-metric-alarm --cli-input-json "$a"; then n=$((n + 1)); fi
done < "$W/alarms.jsonl"
t_eq "put-metric-alarm took every one" 3 "$n"
for cli in $(clis); do
    out=$($cli cloudwatch describe-alarms --alarm-name-prefix bmas-)
    t_eq "describe-alarms lists them ($cli)" \
        "bmas-dlq AWS/SQS ApproximateNumberOfMessagesVisible Maximum QueueName=bedrock-metrics-aggregator-dlq|bmas-no-data Custom/BedrockMetrics InvocationCount Sum breaching|bmas-publish-failures Custom/BedrockMetrics PublishFailures Sum notBreaching" \
        "$(echo "$out" | jq -r '[.MetricAlarms[] | "\(.AlarmName) \(.Namespace) \(.MetricName) \(.Statistic) \(if .AlarmName == "bmas-dlq" then (.Dimensions | map("\(.Name)=\(.Value)") | join(",")) else .TreatMissingData end)"] | join("|")')"
done
t_eq "alarm actions kept, state INSUFFICIENT_DATA" "arn:aws:sns:us-east-1:000000000000:alerts INSUFFICIENT_DATA" \
    "$(cw_api DescribeAlarms '{"AlarmNames":["bmas-dlq"]}' | jq -r '.MetricAlarms[0] | "\(.AlarmActions[0]) \(.StateValue)"')"
t_eq "without the set (): no no-data alarm" 2 "$(env BMAS_DIMENSION_SETS=Region "$BINDIR/bmas" alarms 2>/dev/null | wc -l)"

# The emulator validates as CloudWatch does, in both protocols: each refusal signed by curl in
# the protocol of that CLI (the error code in Query's <Code>, in JSON 1.0's x-amzn-query-error,
# which is what the CLIs read: t_cw_err in itest-lib.sh), and two of them through the CLIs
# themselves.
for cli in $(clis); do
    t_cw_err "put-dashboard: a body without widgets ($cli)" InvalidParameterInput \
        $cli PutDashboard '{"DashboardName":"d1","DashboardBody":"{\"widget\":[]}"}'
    t_cw_err "put-dashboard: a body that is not JSON ($cli)" InvalidParameterInput \
        $cli PutDashboard '{"DashboardName":"d1","DashboardBody":"widgets"}'
    t_cw_err "put-dashboard: a widget of no known type ($cli)" InvalidParameterInput \
        $cli PutDashboard '{"DashboardName":"d1","DashboardBody":"{\"widgets\":[{\"type\":\"pie\",\"properties\":{}}]}"}'
    t_cw_err "put-dashboard: a name with a space ($cli)" InvalidParameterInput \
        $cli PutDashboard '{"DashboardName":"my board","DashboardBody":"{\"widgets\":[]}"}'
    t_aws_err "get-dashboard: no such dashboard ($cli)" ResourceNotFound \
        $cli cloudwatch get-dashboard --dashboard-name nope
    t_cw_err "put-metric-alarm: no threshold ($cli)" ValidationError $cli PutMetricAlarm \
        '{"AlarmName":"x","MetricName":"m","Namespace":"n","Statistic":"Sum","Period":60,"EvaluationPeriods":1,"ComparisonOperator":"GreaterThanThreshold"}'
    t_cw_err "put-metric-alarm: period 45 ($cli)" InvalidParameterValue $cli PutMetricAlarm \
        '{"AlarmName":"x","MetricName":"m","Namespace":"n","Statistic":"Sum","Period":45,"EvaluationPeriods":1,"Threshold":1,"ComparisonOperator":"GreaterThanThreshold"}'
    t_cw_err "put-metric-alarm: an unknown statistic ($cli)" InvalidParameterValue $cli PutMetricAlarm \
        '{"AlarmName":"x","MetricName":"m","Namespace":"n","Statistic":"Total","Period":60,"EvaluationPeriods":1,"Threshold":1,"ComparisonOperator":"GreaterThanThreshold"}'
    t_aws_err "delete-alarms: one unknown name deletes none ($cli)" ResourceNotFound \
        $cli cloudwatch delete-alarms --alarm-names bmas-dlq nope
done
t_ok "delete-alarms" aws_q cloudwatch delete-alarms --alarm-names bmas-dlq bmas-no-data bmas-publish-failures
t_ok "delete-dashboards" $J cloudwatch delete-dashboards --dashboard-names BedrockMetricsAggregator bmas-default
t_eq "nothing left" "0 0" "$(cw_api DescribeAlarms '{}' | jq '.MetricAlarms | length') $(cw_api ListDashboards '{}' | jq '.DashboardEntries | length')"

# The log metric filter README gives for bmas-publish-failures matches what bmas logs when
# CloudWatch fails: one line with event publish_failed and code BMAS-004.
t_eq "a second object posted" "200" "$(put_and_post "$P/two.json.gz" "$W/a.json.gz")"
emu_fault '{"service":"cloudwatch","operation":"PutMetricData","status":503,"code":"ServiceUnavailable","count":20}'
call flush_fail POST /flush
t_eq "CloudWatch down: 502 BMAS-004" "502 BMAS-004" "$STATUS $(echo "$BODY" | jq -r .errorCode)"
# The pattern as README prints it, turned into jq: { ($.a = "x") && ($.b = "y") } becomes
# select(.a == "x" and .b == "y").
pattern=$(grep -o "filter-pattern '{[^']*}'" README.md | head -1 | sed "s/^filter-pattern '//; s/'\$//")
jqf=$(sed 's/^{ *//; s/ *}$//; s/(\$\./(./g; s/ = / == /g; s/&&/and/g' <<<"$pattern")
t_range "the filter's pattern ($pattern) matches bmas's log line" 1 20 \
    "$(jq -c "select($jqf)" "$BMAS_LOG" 2>/dev/null | wc -l)"

srv_stop bmas
curl -m 60 -fsS -o /dev/null -X DELETE "$EMU_URL/_emulator/faults"

# The default sets' dashboard reads what bmas publishes with the default sets: its SEARCH lines
# (a model's series cannot be listed in advance) find every model's series, and they add up to
# the sample. A fresh database and namespace, so nothing of the runs above is found.
BMAS_DB=$W/default-sets.db
BMAS_ENV="AWS_ENDPOINT_URL=$EMU_URL AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test BMAS_FLUSH_INTERVAL=0 AWS_EC2_METADATA_DISABLED=true CLOUDWATCH_NAMESPACE=Custom/BedrockDefault"
bmas_start || exit 1
t_eq "the sample posted (default sets)" "200" "$(put_and_post "$P/three.json.gz" "$W/a.json.gz")"
call flush_default POST /flush
t_eq "flushed (default sets)" 200 "$STATUS"
CLOUDWATCH_NAMESPACE=Custom/BedrockDefault "$BINDIR/bmas" dashboard > "$W/dash-default.json"
q=$(jq -c '[.widgets[].properties.metrics[][] | objects | select(.expression | startswith("SEARCH("))
    | {Id: .id, Expression: .expression, ReturnData: true}]' "$W/dash-default.json")
t_eq "the default dashboard has three SEARCH lines" 3 "$(jq length <<<"$q")"
n_models=$(jq -s '[.[].modelId] | unique | length' "$S")
for cli in $(clis); do
    out=$($cli cloudwatch get-metric-data --start-time "$START" --end-time "$END" --metric-data-queries "$q")
    by_id=$(jq -c '[.MetricDataResults | group_by(.Id)[] | {id: .[0].Id, n: length,
        sum: ([.[].Values[]] | add)}] | sort_by(.id) | map("\(.n) \(.sum)")' <<<"$out")
    t_eq "SEARCH lines: a series per model id, summing to the sample's input tokens, output tokens and invocations ($cli)" \
        "[\"$n_models $all_in\",\"$n_models $(jq -s '[.[].output.outputTokenCount // 0] | add' "$S")\",\"$n_models $n_all\"]" \
        "$by_id"
done
srv_stop bmas
srv_stop emu
t_done
