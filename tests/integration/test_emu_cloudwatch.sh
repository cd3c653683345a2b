#!/bin/bash
# CloudWatch against bmas-emulator: PutMetricData with Value, Values/Counts and StatisticValues
# through both CLIs (Query and JSON 1.0) and gzip through libcurl, read back with exact sums by
# GetMetricStatistics, GetMetricData and ListMetrics; the real limits and validation errors.
set -u
. "$(dirname "$0")/../tools/svc-lib.sh"
itest_setup || exit 1

NS=Custom/Itest$$
now=$(date -u +%s)
t0=$(( now / 60 * 60 - 600 ))
t1=$(( t0 + 60 ))
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }
T0=$(iso $t0) T1=$(iso $t1) S=$(iso $(( t0 - 300 ))) E=$(iso $(( t1 + 300 )))
DIMS='[{"Name":"ModelId","Value":"anthropic.claude-x"},{"Name":"InferenceProfileType","Value":"CrossRegion"}]'

t_ok "put-metric-data Value (Query CLI)" aws_q cloudwatch put-metric-data --namespace "$NS" \
    --metric-data "[{\"MetricName\":\"InputTokens\",\"Dimensions\":$DIMS,\"Timestamp\":\"$T0\",\"Value\":2.5,\"Unit\":\"Count\"}]"
t_ok "put-metric-data Values/Counts (second CLI)" $J cloudwatch put-metric-data --namespace "$NS" \
    --metric-data "[{\"MetricName\":\"InputTokens\",\"Dimensions\":$DIMS,\"Timestamp\":\"$T0\",\"Values\":[1,2,1000],\"Counts\":[3,4,0],\"Unit\":\"Count\"}]"
t_ok "put-metric-data StatisticValues, two minutes (Query CLI)" aws_q cloudwatch put-metric-data \
    --namespace "$NS" --metric-data "[{\"MetricName\":\"InputTokens\",\"Dimensions\":$DIMS,\"Timestamp\":\"$T0\",\"StatisticValues\":{\"SampleCount\":2,\"Sum\":10,\"Minimum\":4,\"Maximum\":6},\"Unit\":\"Count\"},{\"MetricName\":\"InputTokens\",\"Dimensions\":$DIMS,\"Timestamp\":\"$T1\",\"StatisticValues\":{\"SampleCount\":5,\"Sum\":500,\"Minimum\":7,\"Maximum\":300},\"Unit\":\"Count\"}]"

# Minute t0: 2.5 + (1*3 + 2*4) + 10 = 23.5 over 1 + 7 + 2 = 10 samples, min 1, max 6.
want="$t0 23.5 10 2.35 1 6 Count|$t1 500 5 100 7 300 Count"
stats_of() {
    jq -r '[.Datapoints|sort_by(.Timestamp)[]|"\(.Timestamp|if type=="number" then . else sub("\\+00:00$";"Z")|fromdateiso8601 end) \(.Sum) \(.SampleCount) \(.Average) \(.Minimum) \(.Maximum) \(.Unit)"]|join("|")'
}
for cli in $(clis); do
    out=$($cli cloudwatch get-metric-statistics --namespace "$NS" --metric-name InputTokens \
        --dimensions Name=InferenceProfileType,Value=CrossRegion Name=ModelId,Value=anthropic.claude-x \
        --start-time "$S" --end-time "$E" --period 60 \
        --statistics Sum SampleCount Average Minimum Maximum)
    t_eq "get-metric-statistics exact per minute ($cli)" "$want" "$(echo "$out" | stats_of)"
done
# Further read-backs signed by curl (JSON 1.0): the CLIs' reading was checked just above.
out=$(cw_api GetMetricStatistics "{\"Namespace\":\"$NS\",\"MetricName\":\"InputTokens\",\"Dimensions\":$DIMS,
    \"StartTime\":$(( t0 - 300 )),\"EndTime\":$(( t1 + 300 )),\"Period\":3600,\"Statistics\":[\"Sum\",\"SampleCount\"]}")
t_eq "one wide period sums both minutes" "523.5 15" \
    "$(echo "$out" | jq -r '[.Datapoints[]|"\(.Sum) \(.SampleCount)"]|join("|")')"
out=$(cw_api GetMetricStatistics "{\"Namespace\":\"$NS\",\"MetricName\":\"InputTokens\",
    \"StartTime\":$(( t0 - 300 )),\"EndTime\":$(( t1 + 300 )),\"Period\":60,\"Statistics\":[\"Sum\"]}")
t_eq "dimensions must match exactly (none given: no datapoints)" 0 "$(echo "$out" | jq -r '.Datapoints|length')"

Q="[{\"Id\":\"m1\",\"MetricStat\":{\"Metric\":{\"Namespace\":\"$NS\",\"MetricName\":\"InputTokens\",\"Dimensions\":$DIMS},\"Period\":60,\"Stat\":\"Sum\"}},{\"Id\":\"m2\",\"Label\":\"max\",\"MetricStat\":{\"Metric\":{\"Namespace\":\"$NS\",\"MetricName\":\"InputTokens\",\"Dimensions\":$DIMS},\"Period\":60,\"Stat\":\"Maximum\"}}]"
for cli in $(clis); do
    out=$($cli cloudwatch get-metric-data --start-time "$S" --end-time "$E" --scan-by TimestampAscending \
        --metric-data-queries "$Q")
    t_eq "get-metric-data Sum and Maximum ($cli)" "m1 23.5,500 Complete|max 6,300 Complete" \
        "$(echo "$out" | jq -r '[.MetricDataResults[]|"\(.Label|if .=="InputTokens" then "m1" else . end) \(.Values|map(tostring)|join(",")) \(.StatusCode)"]|join("|")')"
done
# SEARCH, the subset dashboards use: a {Namespace,Dims} schema (exactly those dimension
# names) and exact Key="value" terms; one result per series found, all with the query's Id.
SNS=$NS/search
t_ok "put-metric-data for SEARCH: two series of {A,B}, one of {A}, another metric" \
    aws_q cloudwatch put-metric-data --namespace "$SNS" --metric-data "[
    {\"MetricName\":\"InputTokens\",\"Dimensions\":[{\"Name\":\"A\",\"Value\":\"x\"},{\"Name\":\"B\",\"Value\":\"y\"}],\"Timestamp\":\"$T0\",\"Value\":5},
    {\"MetricName\":\"InputTokens\",\"Dimensions\":[{\"Name\":\"A\",\"Value\":\"z\"},{\"Name\":\"B\",\"Value\":\"y\"}],\"Timestamp\":\"$T0\",\"Value\":7},
    {\"MetricName\":\"InputTokens\",\"Dimensions\":[{\"Name\":\"A\",\"Value\":\"z\"}],\"Timestamp\":\"$T0\",\"Value\":100},
    {\"MetricName\":\"Other\",\"Dimensions\":[{\"Name\":\"A\",\"Value\":\"z\"},{\"Name\":\"B\",\"Value\":\"y\"}],\"Timestamp\":\"$T0\",\"Value\":1000}]"
search_q() { # ID EXPR-INSIDE-QUOTES: one SEARCH query, Sum over 300 s
    jq -cn --arg id "$1" --arg e "$2" '[{Id: $id, Expression: "SEARCH(\u0027\($e)\u0027, \u0027Sum\u0027, 300)"}]'
}
results() { jq -r '[.MetricDataResults[] | "\(.Id):\(.Label):\(.Values | add)"] | sort | join("|")'; }
for cli in $(clis); do
    out=$($cli cloudwatch get-metric-data --start-time "$S" --end-time "$E" \
        --metric-data-queries "$(search_q s1 "{$SNS,A,B} MetricName=\"InputTokens\"")")
    t_eq "SEARCH {ns,A,B} MetricName: the two {A,B} series ($cli)" \
        "s1:InputTokens x y:5|s1:InputTokens z y:7" "$(results <<<"$out")"
    out=$($cli cloudwatch get-metric-data --start-time "$S" --end-time "$E" \
        --metric-data-queries "$(search_q s2 "{$SNS,\"A\"} A=z")")
    t_eq "SEARCH {ns,\"A\"} A=z: the {A} series only ($cli)" "s2:InputTokens z:100" "$(results <<<"$out")"
done
for cli in $(clis); do
    t_cw_err "metric math is refused by name: ValidationError ($cli)" ValidationError "$cli" GetMetricData \
        "{\"StartTime\":\"$S\",\"EndTime\":\"$E\",\"MetricDataQueries\":[{\"Id\":\"e1\",\"Expression\":\"SUM(METRICS())\"}]}"
    t_cw_err "SEARCH with OR or a partial word: ValidationError ($cli)" ValidationError "$cli" GetMetricData \
        "{\"StartTime\":\"$S\",\"EndTime\":\"$E\",\"MetricDataQueries\":[{\"Id\":\"e1\",\"Expression\":\"SEARCH('{$SNS,A} Input OR Other', 'Sum', 300)\"}]}"
done
out=$($J cloudwatch list-metrics --namespace "$NS" --dimensions Name=ModelId)
t_eq "list-metrics with a dimension-name filter" "InputTokens InferenceProfileType=CrossRegion,ModelId=anthropic.claude-x" \
    "$(echo "$out" | jq -r '[.Metrics[]|"\(.MetricName) \(.Dimensions|map("\(.Name)=\(.Value)")|join(","))"]|join("|")')"

# Validation, with the real limits.
d31=$(python3 -c 'import json;print(json.dumps([{"Name":"d%d"%i,"Value":"v"} for i in range(31)]))')
v151=$(python3 -c 'print(list(range(151)))')
python3 -c 'import json,sys;json.dump([{"MetricName":"m","Value":i} for i in range(1001)],open(sys.argv[1],"w"))' "$W/1001.json"
old=$(iso $(( now - 15 * 86400 )))
future=$(iso $(( now + 3 * 3600 )))
# Each refusal signed by curl in the protocol of the CLI it names (t_cw_err: no CLI start);
# the CLIs themselves read two of them below (AWS/ namespace, wrong secret).
for cli in $(clis); do
    t_cw_err "Value with Values: InvalidParameterCombination ($cli)" InvalidParameterCombination \
        $cli PutMetricData "{\"Namespace\":\"$NS\",\"MetricData\":[{\"MetricName\":\"m\",\"Value\":1,\"Values\":[1]}]}"
    t_cw_err "Counts not matching Values: InvalidParameterValue ($cli)" InvalidParameterValue \
        $cli PutMetricData "{\"Namespace\":\"$NS\",\"MetricData\":[{\"MetricName\":\"m\",\"Values\":[1,2],\"Counts\":[1]}]}"
done
t_cw_err "StatisticValues with Value: InvalidParameterCombination" InvalidParameterCombination \
    aws_q PutMetricData "{\"Namespace\":\"$NS\",\"MetricData\":[{\"MetricName\":\"m\",\"Value\":1,\"StatisticValues\":{\"SampleCount\":1,\"Sum\":1,\"Minimum\":1,\"Maximum\":1}}]}"
t_cw_err "31 dimensions: InvalidParameterValue" InvalidParameterValue \
    $J PutMetricData "{\"Namespace\":\"$NS\",\"MetricData\":[{\"MetricName\":\"m\",\"Value\":1,\"Dimensions\":$d31}]}"
t_cw_err "151 values: InvalidParameterValue" InvalidParameterValue \
    aws_q PutMetricData "{\"Namespace\":\"$NS\",\"MetricData\":[{\"MetricName\":\"m\",\"Values\":$v151}]}"
t_cw_err "1001 datums: InvalidParameterValue" InvalidParameterValue \
    $J PutMetricData "$(jq -c --arg ns "$NS" '{Namespace: $ns, MetricData: .}' "$W/1001.json")"
t_cw_err "timestamp 15 days old: InvalidParameterValue" InvalidParameterValue \
    aws_q PutMetricData "{\"Namespace\":\"$NS\",\"MetricData\":[{\"MetricName\":\"m\",\"Value\":1,\"Timestamp\":\"$old\"}]}"
t_cw_err "timestamp 3 hours ahead: InvalidParameterValue" InvalidParameterValue \
    $J PutMetricData "{\"Namespace\":\"$NS\",\"MetricData\":[{\"MetricName\":\"m\",\"Value\":1,\"Timestamp\":$(date -u -d "$future" +%s)}]}"
t_aws_err "AWS/ namespace: InvalidParameterValue" InvalidParameterValue \
    aws_q cloudwatch put-metric-data --namespace AWS/Bedrock --metric-data '[{"MetricName":"m","Value":1}]'
t_aws_err "wrong secret: SignatureDoesNotMatch" SignatureDoesNotMatch \
    with_secret wrong $J cloudwatch list-metrics

# gzip Content-Encoding (JSON 1.0 through libcurl's signer): the signature covers the gzip bytes.
printf '{"Namespace":"%s","MetricData":[{"MetricName":"Gz","Timestamp":%d,"Values":[5,7],"Counts":[2,1]}]}' \
    "$NS" "$t0" | gzip -c >"$W/body.gz"
code=$(curl_sigv4 monitoring -o "$W/out" -w '%{http_code}' -H 'Content-Type: application/x-amz-json-1.0' \
    -H 'X-Amz-Target: GraniteServiceVersion20100801.PutMetricData' -H 'Content-Encoding: gzip' \
    --data-binary "@$W/body.gz" "$EMU_URL/")
t_eq "gzip PutMetricData accepted" 200 "$code"
out=$(cw_api GetMetricStatistics "{\"Namespace\":\"$NS\",\"MetricName\":\"Gz\",
    \"StartTime\":$(( t0 - 300 )),\"EndTime\":$(( t1 + 300 )),\"Period\":60,\"Statistics\":[\"Sum\",\"SampleCount\"]}")
t_eq "gzip datum stored (5*2 + 7)" "17 3" "$(echo "$out" | jq -r '.Datapoints[0]|"\(.Sum) \(.SampleCount)"')"

# Errors in each protocol's own form.
code=$(curl_sigv4 monitoring -o "$W/err.json" -D "$W/h" -w '%{http_code}' \
    -H 'Content-Type: application/x-amz-json-1.0' -H 'X-Amz-Target: GraniteServiceVersion20100801.PutMetricData' \
    --data-binary "{\"Namespace\":\"$NS\",\"MetricData\":[{\"MetricName\":\"m\",\"Values\":[1],\"Counts\":[1,2]}]}" "$EMU_URL/")
t_eq "JSON error: 400 with __type" "400 com.amazonaws.cloudwatch#InvalidParameterValueException" \
    "$code $(jq -r .__type "$W/err.json")"
t_ok "JSON error: x-amzn-query-error" grep -qi '^x-amzn-query-error: InvalidParameterValue;Sender' "$W/h"
code=$(curl_sigv4 monitoring -o "$W/err.xml" -w '%{http_code}' \
    --data "Action=PutMetricData&Version=2010-08-01&Namespace=N&MetricData.member.1.MetricName=m&MetricData.member.1.Value=1&MetricData.member.1.Values.member.1=2" "$EMU_URL/")
t_eq "Query error: 400, XML in the monitoring namespace" \
    "400 InvalidParameterCombination" \
    "$code $(sed -n 's:.*<ErrorResponse xmlns="http\://monitoring.amazonaws.com/doc/2010-08-01/"><Error><Type>Sender</Type><Code>\([A-Za-z]*\)</Code>.*:\1:p' "$W/err.xml")"
head -c 1100000 /dev/zero | tr '\0' x >"$W/pad"
printf '{"Namespace":"%s","Pad":"' "$NS" >"$W/big.json"
cat "$W/pad" >>"$W/big.json"
printf '"}' >>"$W/big.json"
code=$(curl_sigv4 monitoring -o "$W/err.json" -w '%{http_code}' -H 'Content-Type: application/x-amz-json-1.0' \
    -H 'X-Amz-Target: GraniteServiceVersion20100801.PutMetricData' --data-binary "@$W/big.json" "$EMU_URL/")
t_eq "a request over 1 MB: 413" 413 "$code"
srv_stop emu
t_done
