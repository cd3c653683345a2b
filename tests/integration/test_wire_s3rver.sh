# bmas's S3 client against s3rver, an S3 we did not write, behind a front door that checks
# every signature with AWS's own signer (@smithy/signature-v4): keys with spaces, '+', '%',
# UTF-8 and !'()*~; ListObjectsV2 continuation over 1,100 objects; non-log objects skipped;
# 404 and a wrong secret mapped to their BMAS codes.
. tests/tools/tap.sh
. tests/tools/peers.sh
if ! peers_install; then
    skip "bmas's S3 client against s3rver" "Node.js/npm test peers unavailable"
    tap_done
fi
T=$(mktemp -d)
trap 's3rver_stop; rm -rf "$T"' EXIT
gzip -c "$BM_TEST_DATA/bedrock-log-sample.jsonl" > "$T/sample.gz"
odd="team a/AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/04/20/00/\303\274+x%(1)~!*'="
odd=$(printf '%b' "$odd")
s3rver_start --seed "$T/sample.gz" --seed-prefix "bulk/" --seed-copies 1100 \
    --seed-prefix "$odd" --seed-copies 1 \
    --seed-prefix "mixed/AWSLogs/1/BedrockModelInvocationLogs/us-east-1/2026/04/20/00/data/r_input" --seed-copies 2 \
    --seed-prefix "mixed/AWSLogs/1/BedrockModelInvocationLogs/us-east-1/2026/04/20/00/log" --seed-copies 3 || exit 1

export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_ENDPOINT_URL="$S3P_URL"
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true
BMAS="$BINDIR/bmas"

out=$("$BMAS" ingest --json "s3://logs/${odd}00000.json.gz" 2>"$T/err")
expect_eq "odd key exit 0" "$?" "0"
expect_eq "odd key exact totals" "$(echo "$out" | jq -c .totals)" \
    '{"invocations":4,"input_tokens":269,"output_tokens":332,"cache_read_input_tokens":24479,"cache_write_input_tokens":225913,"cost_usd":0,"unpriced_invocations":4}'
expect_contains "odd key signature checked by AWS's signer" "$(cat "$S3P_LOG")" \
    "verified GET /logs/team%20a/AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/04/20/00/%C3%BC%2Bx%25%281%29~%21%2A%27%3D00000.json.gz"

out=$("$BMAS" ingest --json "s3://logs/bulk/" 2>"$T/err")
expect_eq "1100 objects exit 0" "$?" "0"
expect_eq "1100 objects x 4 invocations" "$(echo "$out" | jq .totals.invocations)" "4400"
expect_eq "1100 objects input tokens" "$(echo "$out" | jq .totals.input_tokens)" "295900"
expect_contains "paged with a continuation token" "$(cat "$S3P_LOG")" "verified GET /logs?continuation-token="
expect_eq "no request rejected" "$(grep -c '^rejected' "$S3P_LOG")" "0"

out=$("$BMAS" ingest --json "s3://logs/mixed/" 2>"$T/err")
expect_eq "mixed prefix exit 0" "$?" "0"
expect_eq "offloaded bodies skipped, logs counted" "$(echo "$out" | jq .totals.invocations)" "12"
expect_contains "skip reported" "$(cat "$T/err")" "offloaded_body"

"$BMAS" ingest "s3://logs/bulk/missing.json.gz" >/dev/null 2>"$T/err"
expect_eq "missing object exit 1" "$?" "1"
expect_contains "missing object BMAS-001" "$(cat "$T/err")" "BMAS-001"

AWS_SECRET_ACCESS_KEY=wrong "$BMAS" ingest "s3://logs/bulk/00001.json.gz" >/dev/null 2>"$T/err"
expect_eq "wrong secret exit 1" "$?" "1"
expect_contains "wrong secret BMAS-002" "$(cat "$T/err")" "BMAS-002"
expect_contains "wrong secret named by S3" "$(cat "$T/err")" "SignatureDoesNotMatch"
expect_contains "front door rejected it" "$(cat "$S3P_LOG")" "rejected GET /logs/bulk/00001.json.gz: signature mismatch"

AWS_ACCESS_KEY_ID= AWS_SECRET_ACCESS_KEY= "$BMAS" ingest "s3://logs/bulk/00001.json.gz" >/dev/null 2>"$T/err"
expect_eq "no credentials exit 1" "$?" "1"
expect_contains "no credentials BMAS-022" "$(cat "$T/err")" "BMAS-022"
tap_done
