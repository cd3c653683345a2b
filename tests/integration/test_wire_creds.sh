#!/bin/bash
# bmas's credential sources beyond plain keys, end to end against bmas-emulator (which checks
# every signature): a profile's credential_process, with the real AWS CLI as the process
# (`aws configure export-credentials --format process`); role profiles (role_arn with
# source_profile, chained, credential_source) assumed at the emulator's STS; a web identity
# token traded at the
# emulator's STS (EKS IRSA), whose temporary credentials only work with their session token;
# and the failures users meet.
set -u
. "$(dirname "$0")/../tools/svc-lib.sh"
itest_setup || exit 1

gzip -c "$BM_TEST_DATA/bedrock-log-sample.jsonl" >"$W/log.gz"
s3_mb creds
s3_upload creds "AWSLogs/1/BedrockModelInvocationLogs/us-east-1/2026/04/20/00/a.json.gz" "$W/log.gz" >/dev/null
OBJ="s3://creds/AWSLogs/1/BedrockModelInvocationLogs/us-east-1/2026/04/20/00/a.json.gz"
# The expected totals come from the sample itself (jq), not from bmas: a bmas that prints
# nothing, or wrong numbers, cannot agree with them.
want=$(jq -s -c '{invocations: length,
    input_tokens: (map(.input.inputTokenCount // 0) | add),
    output_tokens: (map(.output.outputTokenCount // 0) | add),
    cache_read_input_tokens: (map(.input.cacheReadInputTokenCount // 0) | add),
    cache_write_input_tokens: (map(.input.cacheWriteInputTokenCount // 0) | add),
    cost_usd: 0, unpriced_invocations: length}' \
    "$BM_TEST_DATA/bedrock-log-sample.jsonl")
t_eq "the sample's totals, read with jq (no BMAS_PRICES: all unpriced)" \
    '{"invocations":4,"input_tokens":269,"output_tokens":332,"cache_read_input_tokens":24479,"cache_write_input_tokens":225913,"cost_usd":0,"unpriced_invocations":4}' \
    "$want"

# Only the profile can answer: no keys in the environment.
ingest() {
    env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_ENDPOINT_URL="$EMU_URL" \
        AWS_SHARED_CREDENTIALS_FILE="$W/credentials" AWS_CONFIG_FILE="$W/config" "$@" \
        "$BINDIR/bmas" ingest --json "$OBJ"
}
cat >"$W/credentials" <<CRED
[src]
aws_access_key_id = test
aws_secret_access_key = test
[wrong]
aws_access_key_id = test
aws_secret_access_key = not-the-secret
CRED
cat >"$W/config" <<CONF
[profile viaproc]
credential_process = /usr/bin/aws configure export-credentials --profile src --format process
[profile viaproc-wrong]
credential_process = /usr/bin/aws configure export-credentials --profile wrong --format process
[profile broken]
credential_process = /usr/bin/aws configure export-credentials --profile nosuchprofile --format process
[profile reader]
role_arn = arn:aws:iam::123456789012:role/reader
source_profile = src
external_id = ext-1
[profile chained]
role_arn = arn:aws:iam::210987654321:role/logs
source_profile = reader
role_session_name = bmas-chained
duration_seconds = 900
[profile fromenv]
role_arn = arn:aws:iam::123456789012:role/env
credential_source = Environment
[profile badrole]
role_arn = arn:aws:iam::123456789012:nope
source_profile = src
CONF
t_eq "credential_process (the AWS CLI's export-credentials): exact totals" "$want" \
    "$(ingest AWS_PROFILE=viaproc 2>"$W/err" | jq -c .totals)"
ingest AWS_PROFILE=viaproc-wrong >/dev/null 2>"$W/err"
t_eq "its credentials are really used: a wrong secret is refused (exit 1)" 1 "$?"
t_ok "...with BMAS-002" grep -q "BMAS-002" "$W/err"
ingest AWS_PROFILE=broken >/dev/null 2>"$W/err"
t_eq "a failing credential_process: exit 1" 1 "$?"
t_ok "...BMAS-022 naming the process's exit status" grep -q "BMAS-022.*credential_process exited with status" "$W/err"

# Role profiles: AssumeRole at the emulator's STS, signed with the source's keys; the issued
# session then fetches the object.
sts_count() { curl -m 60 -fsS "$EMU_URL/_emulator/requests" | jq '[.requests[] | select(.operation == "AssumeRole") | .count] | add // 0'; }
curl -m 60 -fsS -X DELETE "$EMU_URL/_emulator/requests" >/dev/null
t_eq "role_arn + source_profile: exact totals" "$want" "$(ingest AWS_PROFILE=reader 2>"$W/err" | jq -c .totals)"
t_eq "...one AssumeRole" 1 "$(sts_count)"
t_eq "role chain (source_profile is itself a role): exact totals" "$want" \
    "$(ingest AWS_PROFILE=chained 2>"$W/err" | jq -c .totals)"
t_eq "...two more AssumeRole calls, the second signed with the first's session" 3 "$(sts_count)"
t_eq "credential_source = Environment: exact totals" "$want" \
    "$(ingest AWS_PROFILE=fromenv AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test 2>"$W/err" | jq -c .totals)"
ingest AWS_PROFILE=badrole >/dev/null 2>"$W/err"
t_eq "a malformed role ARN: exit 1" 1 "$?"
t_ok "...BMAS-022 with STS's ValidationError" grep -q "BMAS-022.*AssumeRole.*ValidationError" "$W/err"

# Web identity: STS at the same endpoint issues ASIA... credentials with a session token.
printf 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJwb2QifQ.\n' >"$W/oidc-token"
curl -m 60 -fsS -X DELETE "$EMU_URL/_emulator/requests" >/dev/null
wi() { ingest AWS_WEB_IDENTITY_TOKEN_FILE="$W/oidc-token" AWS_ROLE_SESSION_NAME=bmas-test "$@"; }
t_eq "web identity (AssumeRoleWithWebIdentity): exact totals" "$want" \
    "$(wi AWS_ROLE_ARN=arn:aws:iam::123456789012:role/bmas-reader 2>"$W/err" | jq -c .totals)"
t_eq "one STS call, then S3 with the issued credentials" "AssumeRoleWithWebIdentity 1|GetObject 1" \
    "$(curl -m 60 -fsS "$EMU_URL/_emulator/requests" | jq -r '[.requests[] | select(.operation == "AssumeRoleWithWebIdentity" or .operation == "GetObject") | "\(.operation) \(.count)"] | sort | join("|")')"
wi AWS_ROLE_ARN=not-an-arn >/dev/null 2>"$W/err"
t_eq "a malformed role ARN: exit 1" 1 "$?"
t_ok "...BMAS-022 with STS's ValidationError" grep -q "BMAS-022.*ValidationError" "$W/err"
: >"$W/oidc-token"
wi AWS_ROLE_ARN=arn:aws:iam::123456789012:role/bmas-reader >/dev/null 2>"$W/err"
t_eq "an empty token file: exit 1" 1 "$?"
t_ok "...BMAS-022 naming the file" grep -q "BMAS-022.*oidc-token" "$W/err"
srv_stop emu
t_done
