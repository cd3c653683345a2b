#!/bin/bash
# A log bucket in another region than AWS_REGION: the emulator keeps the bucket's
# LocationConstraint (eu-west-1) and answers a request signed for its own region (us-east-1)
# with S3's 301 PermanentRedirect and x-amz-bucket-region, one signed for a third region with
# 400 AuthorizationHeaderMalformed and <Region>. bmas (AWS_REGION=us-east-1) follows it: S3
# events for objects there are counted exactly, the redirect happens once per bucket (the region
# is remembered), and `bmas ingest s3://...` (one key, and a prefix: ListObjectsV2) works too,
# from us-east-1 (301) and from us-west-2 (400).
set -u
. tests/tools/svc-lib.sh
svc_setup

B=eulogs-$$
EU=(--region eu-west-1)
s3_mb "$B" eu-west-1 # signed for eu-west-1 with the constraint, as the CLI's create-bucket does
t_eq "GetBucketLocation names the constraint" "eu-west-1" \
    "$(aws_q s3api get-bucket-location --bucket "$B" | jq -r .LocationConstraint)"
t_eq "a us-east-1 bucket has the empty constraint" "null" \
    "$(aws_q s3api get-bucket-location --bucket logs | jq -r .LocationConstraint)"
t_aws_err "a constraint of another region than the request is refused" \
    IllegalLocationConstraintException aws_q s3api create-bucket --bucket "other-$$" \
    --create-bucket-configuration LocationConstraint=eu-west-1

K1="$P/20260420T001731Z_eu1.json.gz"
K2="$P/20260420T001732Z_eu2.json.gz"
E1=$(s3_upload "$B" "$K1" "$W/a.json.gz" eu-west-1)
E2=$(s3_upload "$B" "$K2" "$W/a.json.gz" eu-west-1)
t_ok "both objects uploaded in eu-west-1" test -n "$E1" -a -n "$E2"

# What S3 answers a request signed for the wrong region (path style).
code=$(curl_sigv4 s3 -o "$W/moved.xml" -D "$W/moved.hdr" -w '%{http_code}' "$EMU_URL/$B/$K1")
t_all "signed for us-east-1 (the endpoint's region): 301 PermanentRedirect, x-amz-bucket-region" \
    test "$code" = 301 -- grep -qi '^x-amz-bucket-region: eu-west-1' "$W/moved.hdr" -- \
    grep -q '<Code>PermanentRedirect</Code>' "$W/moved.xml"
code=$(curl -m 60 -sS --aws-sigv4 "aws:amz:us-west-2:s3" --user test:test \
    -o "$W/wrong.xml" -w '%{http_code}' "$EMU_URL/$B/$K1")
t_all "signed for us-west-2: 400 AuthorizationHeaderMalformed naming the <Region>" \
    test "$code" = 400 -- grep -q '<Code>AuthorizationHeaderMalformed</Code>' "$W/wrong.xml" -- \
    grep -q '<Region>eu-west-1</Region>' "$W/wrong.xml"
code=$(curl -m 60 -sS -I --aws-sigv4 "aws:amz:us-west-2:s3" --user test:test \
    -o "$W/head.hdr" -w '%{http_code}' "$EMU_URL/$B/$K1")
t_all "HEAD signed for us-west-2: 400 with x-amz-bucket-region (no body to hold <Region>)" \
    test "$code" = 400 -- grep -qi '^x-amz-bucket-region: eu-west-1' "$W/head.hdr"
code=$(curl -m 60 -sS --aws-sigv4 "aws:amz:eu-west-1:s3" --user test:test \
    -o "$W/right.gz" -w '%{http_code}' "$EMU_URL/$B/$K1")
t_all "signed for eu-west-1: the object" test "$code" = 200 -- cmp -s "$W/right.gz" "$W/a.json.gz"

# The emulator's count of redirected requests (operation RegionRedirect) since the last reset.
redirects() {
    curl -m 30 -sS "$EMU_URL/_emulator/requests?service=s3" |
        jq '[.requests[] | select(.operation == "RegionRedirect") | .count] | add // 0'
}
reset_counts() { curl -m 30 -sS -X DELETE -o /dev/null "$EMU_URL/_emulator/requests"; }
event() { # KEY ETAG: an S3 notification for an object of bucket $B
    jq -c --arg b "$B" --arg k "$(form_key "$1")" --arg e "$2" \
        '.Records[0].awsRegion = "eu-west-1" | .Records[0].s3.bucket.name = $b
         | .Records[0].s3.object.key = $k | .Records[0].s3.object.eTag = $e' \
        "$BM_TEST_DATA/s3-event.json"
}
ONE='{"invocations":4,"input_tokens":269,"output_tokens":332,"cache_read_input_tokens":24479,"cache_write_input_tokens":225913,"cost_usd":0,"unpriced_invocations":4}'
TWO='{"invocations":8,"input_tokens":538,"output_tokens":664,"cache_read_input_tokens":48958,"cache_write_input_tokens":451826,"cost_usd":0,"unpriced_invocations":8}'

reset_counts
BMAS_ENV="AWS_ENDPOINT_URL=$EMU_URL AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test BMAS_FLUSH_INTERVAL=0 AWS_EC2_METADATA_DISABLED=true"
bmas_start || exit 1
call ev1 POST /events -H 'Content-Type: application/json' --data-binary "$(event "$K1" "$E1")"
t_all "the first object's event: processed" test "$STATUS" = 200 -- \
    test "$(echo "$BODY" | jq -r .status)" = processed
call ev2 POST /events -H 'Content-Type: application/json' --data-binary "$(event "$K2" "$E2")"
t_all "the second object's event: processed" test "$STATUS" = 200 -- \
    test "$(echo "$BODY" | jq -r .status)" = processed
call totals GET "/aggregates?group_by="
t_eq "both objects counted exactly" "$TWO" "$(echo "$BODY" | jq -c .totals)"
t_eq "the emulator redirected once for the bucket (the region was remembered)" 1 "$(redirects)"
t_eq "bmas logged the redirect once" 1 "$(grep -c '"event":"s3_region_redirect"' "$BMAS_LOG")"
t_ok "the redirect named the bucket's region" grep -q '"to":"eu-west-1"' "$BMAS_LOG"
call status GET /status
t_eq "/status errors: only the sample's own (an application profile per object)" \
    '{"BMAS-006":2}' "$(echo "$BODY" | jq -c .errors)"
srv_stop bmas

# bmas ingest: one key, then the prefix (ListObjectsV2, then both objects) in one run.
ING=(env AWS_ENDPOINT_URL="$EMU_URL" AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true)
reset_counts
out=$("${ING[@]}" "$BINDIR/bmas" ingest --json "s3://$B/$K1" 2>"$W/ing1.err")
t_all "bmas ingest s3://KEY in eu-west-1: exit 0, exact totals" test $? = 0 -- \
    test "$(echo "$out" | jq -c .totals)" = "$ONE"
reset_counts
out=$("${ING[@]}" "$BINDIR/bmas" ingest --json "s3://$B/$P/" 2>"$W/ing2.err")
t_all "bmas ingest s3://PREFIX/ (backfill) in eu-west-1: exit 0, exact totals" test $? = 0 -- \
    test "$(echo "$out" | jq -c .totals)" = "$TWO"
t_eq "the backfill was redirected once (list, then two objects in eu-west-1)" 1 "$(redirects)"

# Signed for a third region: S3's 400 AuthorizationHeaderMalformed with <Region> is followed.
reset_counts
out=$(env AWS_ENDPOINT_URL="$EMU_URL" AWS_REGION=us-west-2 AWS_EC2_METADATA_DISABLED=true \
    "$BINDIR/bmas" ingest --json "s3://$B/$P/" 2>"$W/ing3.err")
t_all "from us-west-2 (400 AuthorizationHeaderMalformed): exit 0, exact totals" test $? = 0 -- \
    test "$(echo "$out" | jq -c .totals)" = "$TWO"
t_eq "redirected once" 1 "$(redirects)"

srv_stop emu
t_done
