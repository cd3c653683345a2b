#!/bin/bash
# STS against bmas-emulator with both AWS CLIs as peers: AssumeRoleWithWebIdentity (unsigned,
# validated), then the issued credentials used for S3, SQS and GetCallerIdentity, refused
# without their session token or with another, presigned with it; AssumeRole (signed, role
# chaining, the CLI's own profile-based assumption), faults and counters for "sts", and gone
# after a restart. Expiry is tested in tests/unit/test_emu_sts.c, on a clock
# the test controls (the shortest session STS allows is 900 s).
set -u
. "$(dirname "$0")/../tools/svc-lib.sh"
W0=$(mktemp -d "${TMPDIR:-/tmp}/bmas-sts.XXXXXX")
EMU_DATA=$W0/data
ITEST_ATEXIT='rm -rf "$W0"'
itest_setup || exit 1

ROLE=arn:aws:iam::123456789012:role/bmas
t_eq "health lists sts" running "$(curl -m 60 -fsS "$EMU_URL/_localstack/health" | jq -r .services.sts)"

# Debian's CLI sends it unsigned (the test/test credentials are not used at all).
t0=$(date +%s)
out=$(aws_q sts assume-role-with-web-identity --role-arn "$ROLE" --role-session-name s1 \
    --web-identity-token tok-en --duration-seconds 1200)
t1=$(date +%s)
AKID=$(echo "$out" | jq -r .Credentials.AccessKeyId)
SECRET=$(echo "$out" | jq -r .Credentials.SecretAccessKey)
TOKEN=$(echo "$out" | jq -r .Credentials.SessionToken)
t_ok "AccessKeyId is ASIA + 16 uppercase alphanumerics ($AKID)" \
    eval 'echo "$AKID" | grep -Eq "^ASIA[A-Z0-9]{16}$"'
t_eq "SecretAccessKey has 40 characters" 40 "${#SECRET}"
t_ok "SessionToken is long and base64-like" \
    eval '[ "${#TOKEN}" -ge 300 ] && echo "$TOKEN" | grep -Eq "^[A-Za-z0-9+/=]+$"'
exp=$(date -d "$(echo "$out" | jq -r .Credentials.Expiration)" +%s)
# Issued between t0 and t1 (the CLI's own start-up is slow on a busy machine): bounds from both.
t_range "Expiration is DurationSeconds (1200) from the call ($((exp - t0)))" \
    $((t0 + 1200 - 1)) $((t1 + 1200 + 1)) "$exp"
t_eq "AssumedRoleUser.Arn" arn:aws:sts::123456789012:assumed-role/bmas/s1 \
    "$(echo "$out" | jq -r .AssumedRoleUser.Arn)"
t_ok "AssumedRoleId is AROA...:s1" \
    eval 'echo "$out" | jq -r .AssumedRoleUser.AssumedRoleId | grep -Eq "^AROA[A-Z0-9]{17}:s1$"'
t_eq "Audience and Provider of a token that is no JWT" \
    "sts.amazonaws.com arn:aws:iam::123456789012:oidc-provider/bmas-emulator" \
    "$(echo "$out" | jq -r '"\(.Audience) \(.Provider)"')"

# A JWT (as EKS projects it): its claims come back as STS reports them.
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
jwt="$(printf '{"alg":"RS256"}' | b64url).$(printf '%s' '{"iss":"https://oidc.eks.us-east-1.amazonaws.com/id/ABC","sub":"system:serviceaccount:ns:bmas","aud":["sts.amazonaws.com"]}' | b64url).c2ln"
out2=$($J sts assume-role-with-web-identity --role-arn "$ROLE" --role-session-name s2 \
    --web-identity-token "$jwt")
t_eq "JWT claims: subject, audience, provider" \
    "system:serviceaccount:ns:bmas sts.amazonaws.com arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC" \
    "$(echo "$out2" | jq -r '"\(.SubjectFromWebIdentityToken) \(.Audience) \(.Provider)"')"
t_ok "the second CLI's credentials differ" \
    [ "$(echo "$out2" | jq -r .Credentials.AccessKeyId)" != "$AKID" ]

# The issued credentials work for every service, with their session token.
as_role() {
    (export AWS_ACCESS_KEY_ID=$AKID AWS_SECRET_ACCESS_KEY=$SECRET AWS_SESSION_TOKEN=$1
        shift
        "$@")
}
t_eq "get-caller-identity (Debian CLI) names the assumed role" \
    "123456789012 arn:aws:sts::123456789012:assumed-role/bmas/s1" \
    "$(as_role "$TOKEN" aws_q sts get-caller-identity | jq -r '"\(.Account) \(.Arn)"')"
t_ok "get-caller-identity (second CLI): UserId is the role id and session" \
    eval 'as_role "$TOKEN" $J sts get-caller-identity | jq -r .UserId | grep -Eq "^AROA[A-Z0-9]{17}:s1$"'
t_eq "get-caller-identity with test/test is the account root" \
    "000000000000 arn:aws:iam::000000000000:root" \
    "$(aws_q sts get-caller-identity | jq -r '"\(.Account) \(.Arn)"')"
B=sts-$$
t_ok "s3api create-bucket as the role" \
    eval 'as_role "$TOKEN" aws_q s3api create-bucket --bucket "$B" >/dev/null'
t_eq "s3api list-buckets as the role" "$B" \
    "$(as_role "$TOKEN" aws_q s3api list-buckets | jq -r '.Buckets[].Name')"
echo hello >"$W/o.txt"
t_ok "s3 cp as the role" as_role "$TOKEN" $J s3 cp "$W/o.txt" "s3://$B/o.txt" --quiet
qurl=$(as_role "$TOKEN" aws_q sqs create-queue --queue-name "q-$$" | jq -r .QueueUrl)
t_eq "sqs list-queues as the role (Query)" "$qurl" \
    "$(as_role "$TOKEN" aws_q sqs list-queues | jq -r '.QueueUrls[]')"
t_eq "sqs list-queues as the role (second CLI)" "$qurl" \
    "$(as_role "$TOKEN" $J sqs list-queues | jq -r '.QueueUrls[]')"
t_ok "cloudwatch put-metric-data as the role" \
    as_role "$TOKEN" $J cloudwatch put-metric-data --namespace bmas/sts --metric-name m --value 1
# Presigned: the token travels in the query string, percent-encoded.
url=$(as_role "$TOKEN" aws_q s3 presign "s3://$B/o.txt" --expires-in 60)
t_ok "presigned URL carries X-Amz-Security-Token" eval 'echo "$url" | grep -q "X-Amz-Security-Token="'
t_eq "presigned GET with the session token" hello "$(curl -m 60 -fsS "$url")"
t_eq "presigned GET with the token removed: 403" 403 \
    "$(curl -m 60 -sS -o /dev/null -w '%{http_code}' "$(echo "$url" | sed 's/X-Amz-Security-Token=[^&]*&\{0,1\}//')")"

# Without the session token, or with another session's, the key is refused.
unset_token() { (unset AWS_SESSION_TOKEN; export AWS_ACCESS_KEY_ID=$AKID AWS_SECRET_ACCESS_KEY=$SECRET; "$@"); }
t_aws_err "S3 without the session token" InvalidAccessKeyId unset_token aws_q s3api list-buckets
t_aws_err "SQS without the session token" InvalidClientTokenId unset_token aws_q sqs list-queues
t_aws_err "STS without the session token (second CLI)" InvalidClientTokenId \
    unset_token $J sts get-caller-identity
OTHER=$(echo "$out2" | jq -r .Credentials.SessionToken)
t_aws_err "S3 with another session's token" InvalidToken as_role "$OTHER" aws_q s3api list-buckets
t_aws_err "SQS with another session's token" InvalidClientTokenId \
    as_role "$OTHER" $J sqs list-queues
t_aws_err "STS with a made-up token" InvalidClientTokenId as_role "bogus" aws_q sts get-caller-identity
t_aws_err "a signature by another secret" SignatureDoesNotMatch \
    eval 'SECRET=wrong as_role "$TOKEN" aws_q sqs list-queues'
# libcurl's own SigV4 as a third client, for the HTTP status.
sqs_status() {
    CURL_AKID=$AKID CURL_SECRET=$SECRET curl_sigv4 sqs -o /dev/null -w '%{http_code}' -X POST \
        "$EMU_URL/" -H 'Content-Type: application/x-www-form-urlencoded' "$@" \
        --data 'Action=ListQueues&Version=2012-11-05'
}
t_eq "curl: with the token 200, without 403, with another 403" "200 403 403" \
    "$(sqs_status -H "X-Amz-Security-Token: $TOKEN") $(sqs_status) $(sqs_status -H "X-Amz-Security-Token: $OTHER")"

# Validation (the CLIs check lengths and minimums before sending, so curl sends these).
sts_post() {
    curl -m 60 -sS -o "$W/e.xml" -w '%{http_code}' -X POST "$EMU_URL/" \
        -H 'Content-Type: application/x-www-form-urlencoded; charset=utf-8' \
        --data "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&$1"
}
err_code() { sed -n 's:.*<Code>\(.*\)</Code>.*:\1:p' "$W/e.xml"; }
t_eq "DurationSeconds 899: 400" 400 \
    "$(sts_post "RoleArn=$ROLE&RoleSessionName=s1&WebIdentityToken=t&DurationSeconds=899")"
t_eq "DurationSeconds 899: ValidationError in STS's error shape" \
    "Sender ValidationError" \
    "$(sed -n 's:.*<ErrorResponse xmlns="https\://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>\(.*\)</Type><Code>\(.*\)</Code><Message>.*</Message></Error><RequestId>.*</RequestId></ErrorResponse>:\1 \2:p' "$W/e.xml")"
t_eq "DurationSeconds 43201: ValidationError" "400 ValidationError" \
    "$(sts_post "RoleArn=$ROLE&RoleSessionName=s1&WebIdentityToken=t&DurationSeconds=43201") $(err_code)"
t_eq "missing RoleArn: ValidationError" "400 ValidationError" \
    "$(sts_post "RoleSessionName=s1&WebIdentityToken=t") $(err_code)"
t_eq "malformed RoleArn: ValidationError" "400 ValidationError" \
    "$(sts_post "RoleArn=arn:aws:iam::1234:role/x&RoleSessionName=s1&WebIdentityToken=t") $(err_code)"
t_eq "RoleSessionName of one character: ValidationError" "400 ValidationError" \
    "$(sts_post "RoleArn=$ROLE&RoleSessionName=s&WebIdentityToken=t") $(err_code)"
t_eq "empty WebIdentityToken: ValidationError" "400 ValidationError" \
    "$(sts_post "RoleArn=$ROLE&RoleSessionName=s1&WebIdentityToken=") $(err_code)"
t_aws_err "CLI: malformed RoleArn" ValidationError \
    aws_q sts assume-role-with-web-identity --role-arn arn:aws:iam::123456789012:user/bmas \
    --role-session-name s1 --web-identity-token tok-en
t_aws_err "CLI: RoleSessionName with a space" ValidationError \
    $J sts assume-role-with-web-identity --role-arn "$ROLE" --role-session-name "a b" \
    --web-identity-token tok-en
# A GET of the same query is served too, and a one-character token is enough here.
t_eq "GET /?Action=AssumeRoleWithWebIdentity" "200 arn:aws:sts::123456789012:assumed-role/bmas/g1" \
    "$(curl -m 60 -sS -o "$W/g.xml" -w '%{http_code}' "$EMU_URL/?Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=$ROLE&RoleSessionName=g1&WebIdentityToken=t") $(sed -n 's:.*<AssumedRoleUser>.*<Arn>\(.*\)</Arn>.*:\1:p' "$W/g.xml")"
t_eq "unsigned GetCallerIdentity: MissingAuthenticationToken" "403 MissingAuthenticationToken" \
    "$(curl -m 60 -sS -o "$W/e.xml" -w '%{http_code}' -X POST "$EMU_URL/" \
        -H 'Content-Type: application/x-www-form-urlencoded' \
        --data 'Action=GetCallerIdentity&Version=2011-06-15') $(err_code)"

# AssumeRole is signed: by the static test/test credentials, or by issued ones with their token.
READER=arn:aws:iam::123456789012:role/reader
t0=$(date +%s)
ar=$(aws_q sts assume-role --role-arn "$READER" --role-session-name s1 --external-id ext-1)
t1=$(date +%s)
RAKID=$(echo "$ar" | jq -r .Credentials.AccessKeyId)
RSECRET=$(echo "$ar" | jq -r .Credentials.SecretAccessKey)
RTOKEN=$(echo "$ar" | jq -r .Credentials.SessionToken)
t_ok "assume-role: AccessKeyId is ASIA + 16 ($RAKID)" \
    eval 'echo "$RAKID" | grep -Eq "^ASIA[A-Z0-9]{16}$" && [ "${#RSECRET}" = 40 ] && [ "${#RTOKEN}" -ge 300 ]'
t_eq "assume-role: AssumedRoleUser.Arn" arn:aws:sts::123456789012:assumed-role/reader/s1 \
    "$(echo "$ar" | jq -r .AssumedRoleUser.Arn)"
t_ok "assume-role: AssumedRoleId is AROA...:s1" \
    eval 'echo "$ar" | jq -r .AssumedRoleUser.AssumedRoleId | grep -Eq "^AROA[A-Z0-9]{17}:s1$"'
exp=$(date -d "$(echo "$ar" | jq -r .Credentials.Expiration)" +%s)
t_range "assume-role: Expiration defaults to an hour ($((exp - t0)))" \
    $((t0 + 3600 - 1)) $((t1 + 3600 + 1)) "$exp"
t_ok "assume-role answers no web-identity members" \
    eval '[ "$(echo "$ar" | jq -r "has(\"Audience\") or has(\"Provider\")")" = false ]'
as_reader() {
    (export AWS_ACCESS_KEY_ID=$RAKID AWS_SECRET_ACCESS_KEY=$RSECRET AWS_SESSION_TOKEN=$RTOKEN
        "$@")
}
t_eq "s3api list-buckets with the assumed role's credentials" "$B" \
    "$(as_reader aws_q s3api list-buckets | jq -r '.Buckets[].Name')"
t_eq "get-caller-identity names assumed-role/reader/s1" \
    "123456789012 arn:aws:sts::123456789012:assumed-role/reader/s1" \
    "$(as_reader aws_q sts get-caller-identity | jq -r '"\(.Account) \(.Arn)"')"
# Role chaining: the issued credentials (with their token) sign the next AssumeRole.
t0=$(date +%s)
ch=$(as_reader $J sts assume-role --role-arn arn:aws:iam::123456789012:role/writer \
    --role-session-name chain --duration-seconds 900)
t1=$(date +%s)
t_eq "role chaining: the second role's ARN" arn:aws:sts::123456789012:assumed-role/writer/chain \
    "$(echo "$ch" | jq -r .AssumedRoleUser.Arn)"
exp=$(date -d "$(echo "$ch" | jq -r .Credentials.Expiration)" +%s)
t_range "role chaining: --duration-seconds 900 ($((exp - t0)))" \
    $((t0 + 900 - 1)) $((t1 + 900 + 1)) "$exp"
t_eq "role chaining: get-caller-identity with the chained credentials" \
    arn:aws:sts::123456789012:assumed-role/writer/chain \
    "$(AWS_ACCESS_KEY_ID=$(echo "$ch" | jq -r .Credentials.AccessKeyId) \
        AWS_SECRET_ACCESS_KEY=$(echo "$ch" | jq -r .Credentials.SecretAccessKey) \
        AWS_SESSION_TOKEN=$(echo "$ch" | jq -r .Credentials.SessionToken) \
        aws_q sts get-caller-identity | jq -r .Arn)"
t_aws_err "role chaining beyond STS's one-hour limit" ValidationError \
    as_reader aws_q sts assume-role --role-arn "$READER" --role-session-name s2 --duration-seconds 3601
t_ok "--duration-seconds 900 with static credentials" \
    eval 'aws_q sts assume-role --role-arn "$READER" --role-session-name s3 --duration-seconds 900 >/dev/null'
t_aws_err "assume-role signed by a wrong secret" SignatureDoesNotMatch \
    eval 'AWS_SECRET_ACCESS_KEY=wrong aws_q sts assume-role --role-arn "$READER" --role-session-name s1'
t_aws_err "assume-role by issued credentials with a wrong secret" SignatureDoesNotMatch \
    eval 'RSECRET=wrong as_reader $J sts assume-role --role-arn "$READER" --role-session-name s1'
t_aws_err "assume-role by issued credentials without their token" InvalidClientTokenId \
    eval 'RTOKEN= as_reader aws_q sts assume-role --role-arn "$READER" --role-session-name s1'
t_aws_err "assume-role: malformed RoleArn" ValidationError \
    aws_q sts assume-role --role-arn arn:aws:iam::123456789012:user/reader --role-session-name s1
t_aws_err "assume-role: ExternalId with a space" ValidationError \
    $J sts assume-role --role-arn "$READER" --role-session-name s1 --external-id "a b"
t_eq "unsigned AssumeRole: MissingAuthenticationToken" "403 MissingAuthenticationToken" \
    "$(curl -m 60 -sS -o "$W/e.xml" -w '%{http_code}' -X POST "$EMU_URL/" \
        -H 'Content-Type: application/x-www-form-urlencoded' \
        --data "Action=AssumeRole&Version=2011-06-15&RoleArn=$READER&RoleSessionName=s1") $(err_code)"

# The CLI's own assumption for a profile with role_arn and source_profile. Debian's CLI v2.9
# sends that AssumeRole to sts.<region>.amazonaws.com whatever --endpoint-url, AWS_ENDPOINT_URL,
# AWS_ENDPOINT_URL_STS, sts_regional_endpoints or an endpoint_url/[services] entry say (tried
# by hand), so it cannot be pointed at the emulator; the pip CLI (botocore >= 1.31) applies
# the role profile's endpoint_url to it.
printf '[src]\naws_access_key_id = test\naws_secret_access_key = test\n' >"$W/credentials"
printf '[profile src]\nregion = us-east-1\n\n[profile chained]\nrole_arn = %s\nsource_profile = src\nregion = us-east-1\nendpoint_url = %s\n' \
    "$READER" "$EMU_URL" >"$W/config"
if [ "$HAVE_JSON_CLI" = 1 ]; then
    t_ok "profile role_arn + source_profile (pip CLI): the assumed role's identity" \
        eval '(unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
            AWS_CONFIG_FILE=$W/config AWS_SHARED_CREDENTIALS_FILE=$W/credentials \
                aws_j --profile chained sts get-caller-identity) | jq -r .Arn |
            grep -Eq "^arn:aws:sts::123456789012:assumed-role/reader/botocore-session-[0-9]+$"'
else
    t_skip "profile role_arn + source_profile" "no pip aws on PATH (Debian's v2.9 ignores endpoint settings for it)"
fi
t_skip "profile role_arn + source_profile (Debian CLI v2.9)" \
    "its profile AssumeRole always goes to sts.<region>.amazonaws.com"

# Faults and counters work for "sts" like for the other services.
curl -m 60 -fsS -X DELETE "$EMU_URL/_emulator/requests" >/dev/null
emu_fault '{"service":"sts","operation":"AssumeRoleWithWebIdentity","status":400,"code":"Throttling","count":1}'
t_aws_err "an injected sts fault" Throttling aws_q sts assume-role-with-web-identity \
    --role-arn "$ROLE" --role-session-name s3 --web-identity-token tok-en
t_ok "the next call succeeds" eval 'aws_q sts assume-role-with-web-identity --role-arn "$ROLE" \
    --role-session-name s3 --web-identity-token tok-en >/dev/null'
t_eq "counters for sts" "AssumeRoleWithWebIdentity 2 1 1" \
    "$(curl -m 60 -fsS "$EMU_URL/_emulator/requests?service=sts" |
        jq -r '.requests[]|"\(.operation) \(.count) \(.faulted) \(.errors)"')"

# Issued credentials are memory only: after a restart the key is unknown, the bucket stays.
srv_stop emu "SIGTERM: clean exit"
emu_start || exit 1
t_aws_err "after a restart the issued key is unknown" InvalidAccessKeyId \
    as_role "$TOKEN" aws_q s3api list-buckets
t_eq "while the bucket it created persists" "$B" "$(aws_q s3api list-buckets | jq -r '.Buckets[].Name')"
srv_stop emu "SIGTERM after the restart: clean exit"
t_done
