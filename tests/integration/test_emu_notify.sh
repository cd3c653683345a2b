#!/bin/bash
# The S3 -> SQS round trip through bmas-emulator: a notification configuration with prefix and
# suffix filters sends s3:TestEvent, then the real S3 event JSON (eventVersion 2.1, form-URL-
# encoded key, size, eTag, sequencer) for matching ObjectCreated events only.
set -u
. "$(dirname "$0")/../tools/svc-lib.sh"
itest_setup || exit 1

B=bedrock-logs-$$
Q=events-$$
qurl=$(sqs_api CreateQueue "{\"QueueName\":\"$Q\"}" | jq -r .QueueUrl)
arn=arn:aws:sqs:us-east-1:000000000000:$Q
s3_mb "$B"
cat >"$W/conf.json" <<JSON
{"QueueConfigurations":[{"Id":"bedrock-logs","QueueArn":"$arn","Events":["s3:ObjectCreated:*"],
 "Filter":{"Key":{"FilterRules":[{"Name":"prefix","Value":"team a/"},{"Name":"suffix","Value":".json.gz"}]}}}]}
JSON
t_ok "put-bucket-notification-configuration" aws_q s3api put-bucket-notification-configuration \
    --bucket "$B" --notification-configuration "file://$W/conf.json"
out=$($J s3api get-bucket-notification-configuration --bucket "$B")
t_eq "get-bucket-notification-configuration reads it back" \
    "bedrock-logs $arn s3:ObjectCreated:* Prefix=team a/ Suffix=.json.gz" \
    "$(echo "$out" | jq -r '.QueueConfigurations[0]|"\(.Id) \(.QueueArn) \(.Events|join(",")) \(.Filter.Key.FilterRules|map("\(.Name)=\(.Value)")|join(" "))"')"

msg=$(aws_q sqs receive-message --queue-url "$qurl" --wait-time-seconds 5)
t_eq "s3:TestEvent sent on configuration" "Amazon S3 s3:TestEvent $B" \
    "$(echo "$msg" | jq -r '.Messages[0].Body|fromjson|"\(.Service) \(.Event) \(.Bucket)"')"
sqs_api DeleteMessage "$(echo "$msg" | jq -c --arg q "$qurl" '{QueueUrl: $q, ReceiptHandle: .Messages[0].ReceiptHandle}')" >/dev/null

KEY='team a/ü+x.json.gz'
printf '{"modelId":"x"}\n' | gzip -c >"$W/log.gz"
md5=$(md5sum <"$W/log.gz" | cut -d' ' -f1)
size=$(stat -c %s "$W/log.gz")
$J s3api put-object --bucket "$B" --key "$KEY" --body "$W/log.gz" >/dev/null
s3_upload "$B" "team a/skip.txt" "$W/log.gz" >/dev/null
s3_upload "$B" "other/x.json.gz" "$W/log.gz" >/dev/null
msg=$($J sqs receive-message --queue-url "$qurl" --wait-time-seconds 5 --max-number-of-messages 10)
t_eq "only the matching key produced an event" 1 "$(echo "$msg" | jq -r '.Messages|length')"
ev=$(echo "$msg" | jq -r '.Messages[0].Body')
t_eq "event envelope" "2.1 aws:s3 us-east-1 ObjectCreated:Put bedrock-logs" \
    "$(echo "$ev" | jq -r '.Records[0]|"\(.eventVersion) \(.eventSource) \(.awsRegion) \(.eventName) \(.s3.configurationId)"')"
t_eq "event bucket" "$B arn:aws:s3:::$B" "$(echo "$ev" | jq -r '.Records[0].s3.bucket|"\(.name) \(.arn)"')"
t_eq "event key is form-URL-encoded as S3 does" 'team+a/%C3%BC%2Bx.json.gz' \
    "$(echo "$ev" | jq -r '.Records[0].s3.object.key')"
t_eq "the key decodes (unquote_plus) to the original" "$KEY" \
    "$(echo "$ev" | jq -r '.Records[0].s3.object.key' |
        python3 -c 'import sys,urllib.parse;print(urllib.parse.unquote_plus(sys.stdin.read().strip()))')"
t_eq "event size and eTag" "$size $md5" "$(echo "$ev" | jq -r '.Records[0].s3.object|"\(.size) \(.eTag)"')"
t_ok "eventTime has milliseconds and Z" \
    eval 'echo "$ev" | jq -r ".Records[0].eventTime" | grep -Eq "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$"'
seq1=$(echo "$ev" | jq -r '.Records[0].s3.object.sequencer')
t_ok "sequencer is hex" eval 'echo "$seq1" | grep -Eq "^[0-9A-F]{16,}$"'

s3_upload "$B" "$KEY" "$W/log.gz" >/dev/null
msg=$(aws_q sqs receive-message --queue-url "$qurl" --wait-time-seconds 5)
seq2=$(echo "$msg" | jq -r '.Messages[0].Body|fromjson|.Records[0].s3.object.sequencer')
# A missing second event would read "null", which sorts after any hex: check it is hex first.
t_all "sequencers grow per bucket ($seq1 < $seq2)" \
    eval 'echo "$seq2" | grep -Eq "^[0-9A-F]{16,}$"' -- [ "${#seq1}" = "${#seq2}" ] -- [ "$seq1" \< "$seq2" ]

sed "s/$Q/missing-$$/" "$W/conf.json" >"$W/bad.json"
t_aws_err "a configuration naming a missing queue: InvalidArgument" InvalidArgument \
    aws_q s3api put-bucket-notification-configuration --bucket "$B" \
    --notification-configuration "file://$W/bad.json"
srv_stop emu
t_done
