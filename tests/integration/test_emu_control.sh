#!/bin/bash
# bmas-emulator's own surface: flags, LocalStack health, fault injection (count, rate, latency,
# errors in each protocol's form), request counters, persistence across a SIGTERM restart.
set -u
. "$(dirname "$0")/../tools/svc-lib.sh"
EMU_DATA=$ITEST_HOME/data # kept across the restart below
itest_setup --seed 42 || exit 1

"$BINDIR/bmas-emulator" --bogus >/dev/null 2>"$W/err"
t_eq "a bad flag exits 2" 2 "$?"
t_ok "and names the flag" grep -q -- '--bogus' "$W/err"
"$BINDIR/bmas-emulator" --listen nowhere >/dev/null 2>"$W/err"
t_eq "a bad --listen exits 2" 2 "$?"
t_ok "--version" eval '"$BINDIR/bmas-emulator" --version | grep -Eq "^bmas-emulator [0-9]+\.[0-9]+"'
t_ok "--help documents the control routes" eval '"$BINDIR/bmas-emulator" --help | grep -q "/_emulator/requests"'

t_eq "GET /_localstack/health like LocalStack" "running running running community" \
    "$(curl -m 60 -fsS "$EMU_URL/_localstack/health" | jq -r '"\(.services.s3) \(.services.sqs) \(.services.cloudwatch) \(.edition)"')"

B=state-$$
s3_mb "$B"
printf 'persist me\n' >"$W/obj"
s3_upload "$B" k "$W/obj" >/dev/null

# Count: the next two GetObject fail with S3's SlowDown, other operations are untouched.
emu_fault '{"service":"s3","operation":"GetObject","status":503,"code":"SlowDown","count":2}'
curl -m 60 -fsS -X DELETE "$EMU_URL/_emulator/requests" >/dev/null
t_aws_err "fault 1/2: SlowDown" SlowDown aws_q s3api get-object --bucket "$B" --key k "$W/x"
t_ok "other operations pass meanwhile" eval 'aws_q s3api head-object --bucket "$B" --key k >/dev/null'
t_aws_err "fault 2/2: SlowDown" SlowDown $J s3api get-object --bucket "$B" --key k "$W/x"
t_ok "the third GetObject succeeds" eval 'aws_q s3api get-object --bucket "$B" --key k "$W/x" >/dev/null && cmp -s "$W/obj" "$W/x"'
t_eq "a used-up rule is gone" 0 "$(curl -m 60 -fsS "$EMU_URL/_emulator/faults" | jq -r '.faults|length')"
t_eq "/_emulator/requests counts each operation" "GetObject 3 2 2|HeadObject 1 0 0" \
    "$(curl -m 60 -fsS "$EMU_URL/_emulator/requests?service=s3" |
        jq -r '[.requests|sort_by(.operation)[]|"\(.operation) \(.count) \(.faulted) \(.errors)"]|join("|")')"

# Rate 1: every CloudWatch request is throttled, in the protocol's own error form.
emu_fault '{"service":"cloudwatch","rate":1.0,"status":400,"code":"Throttling"}'
for cli in $(clis); do
    t_aws_err "rate 1.0: Throttling ($cli)" Throttling $cli cloudwatch list-metrics
done
code=$(curl_sigv4 monitoring -o "$W/e.xml" -w '%{http_code}' --data 'Action=ListMetrics&Version=2010-08-01' "$EMU_URL/")
t_eq "Query fault body" "400 Throttling" "$code $(sed -n 's:.*<Code>\(.*\)</Code>.*:\1:p' "$W/e.xml")"
curl -m 60 -fsS -X DELETE "$EMU_URL/_emulator/faults" >/dev/null
t_ok "DELETE /_emulator/faults clears them" eval '$J cloudwatch list-metrics >/dev/null'

# Rate 0.5 over 40 requests: some fail, some pass (seeded, so the same every run).
emu_fault '{"service":"sqs","rate":0.5,"status":500,"code":"InternalError"}'
fails=0
for i in $(seq 40); do
    code=$(curl_sigv4 sqs -o /dev/null -w '%{http_code}' --data 'Action=ListQueues&Version=2012-11-05' "$EMU_URL/")
    [ "$code" = 500 ] && fails=$((fails + 1))
done
t_range "rate 0.5: $fails of 40 failed (10..30)" 10 30 "$fails"
curl -m 60 -fsS -X DELETE "$EMU_URL/_emulator/faults" >/dev/null

emu_fault '{"service":"sqs","latency_ms":600}'
t0=$(now_ms)
code=$(curl_sigv4 sqs -o /dev/null -w '%{http_code}' --data 'Action=ListQueues&Version=2012-11-05' "$EMU_URL/")
dt=$(( $(now_ms) - t0 ))
t_all "latency_ms 600: answered 200 after $dt ms" [ "$code" = 200 ] -- [ "$dt" -ge 600 ]
curl -m 60 -fsS -X DELETE "$EMU_URL/_emulator/faults" >/dev/null
code=$(curl -m 60 -sS -o "$W/e.json" -w '%{http_code}' -X POST "$EMU_URL/_emulator/faults" -d '{"rate":3}')
t_eq "a bad rule: 400 naming the problem" "400 true" "$code $(jq -r '.error|length > 0' "$W/e.json")"

# Persistence: state written on SIGTERM comes back after a restart.
qurl=$(sqs_api CreateQueue "{\"QueueName\":\"keep-$$\"}" | jq -r .QueueUrl)
sqs_api SendMessage "{\"QueueUrl\":\"$qurl\",\"MessageBody\":\"still here\"}" >/dev/null
now=$(date -u +%s)
cw_api PutMetricData "{\"Namespace\":\"Keep\",\"MetricData\":[{\"MetricName\":\"m\",\"Timestamp\":$(( now / 60 * 60 - 120 )),\"Value\":41.5}]}" >/dev/null
srv_stop emu "SIGTERM: clean exit"
t_ok "state file written" test -s "$EMU_DATA/state.json"
emu_start || exit 1
t_ok "object survives the restart byte for byte" \
    eval 'aws_q s3api get-object --bucket "$B" --key k "$W/y" >/dev/null && cmp -s "$W/obj" "$W/y"'
t_eq "queued message survives" "still here" \
    "$($J sqs receive-message --queue-url "$EMU_URL/000000000000/keep-$$" | jq -r '.Messages[0].Body')"
t_eq "metric survives" 41.5 \
    "$(aws_q cloudwatch get-metric-statistics --namespace Keep --metric-name m --period 3600 \
        --start-time "$(date -u -d "@$(( now - 3600 ))" +%Y-%m-%dT%H:%M:%SZ)" \
        --end-time "$(date -u -d "@$(( now + 60 ))" +%Y-%m-%dT%H:%M:%SZ)" --statistics Sum |
        jq -r '.Datapoints[0].Sum')"
srv_stop emu
t_done
