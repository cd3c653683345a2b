#!/bin/bash
# S3 multipart uploads against bmas-emulator: `aws s3 cp` of a 20 MiB file with both CLIs (they
# switch to multipart over 8 MB), S3's "-N" ETag checked against an independent computation,
# the ObjectCreated:CompleteMultipartUpload event, the s3api steps one by one with S3's errors
# (InvalidPart, InvalidPartOrder, EntityTooSmall, NoSuchUpload), the --max-object-bytes bound on
# pending parts, and the assembled object surviving a restart with --data (pending uploads do
# not).
set -u
. "$(dirname "$0")/../tools/svc-lib.sh"
EMU_DATA=$ITEST_HOME/data # kept across the restart below
itest_setup || exit 1

B=mpu-$$
Q=mpu-events-$$
# Setup and the steps that only prepare a check go through curl's SigV4 (a CLI start costs about
# a second of CPU); the CLIs run the checks.
s3_curl() { curl_sigv4 s3 -f -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@"; }
mpu_create() { # KEY: CreateMultipartUpload; prints the UploadId
    s3_curl -X POST "$EMU_URL/$B/$1?uploads=" | sed -n 's:.*<UploadId>\([^<]*\)</UploadId>.*:\1:p'
}
mpu_part() { # KEY UPLOAD-ID NUMBER FILE: UploadPart; prints the part's ETag, quoted as the CLIs do
    s3_curl -o /dev/null -D - -X PUT --data-binary @"$4" \
        "$EMU_URL/$B/$1?partNumber=$3&uploadId=$(printf '%s' "$2" | jq -sRr @uri)" |
        tr -d '\r' | sed -n 's/^[Ee][Tt][Aa][Gg]: *//p'
}
s3_etag() { # KEY: HeadObject's ETag, quoted
    s3_curl -I "$EMU_URL/$B/$1" | tr -d '\r' | sed -n 's/^[Ee][Tt][Aa][Gg]: *//p'
}
qurl=$(sqs_api CreateQueue "{\"QueueName\":\"$Q\"}" | jq -r .QueueUrl)
s3_mb "$B"
s3_curl -o /dev/null -X PUT --data "<NotificationConfiguration><QueueConfiguration><Id>mpu</Id><Queue>arn:aws:sqs:us-east-1:000000000000:$Q</Queue><Event>s3:ObjectCreated:CompleteMultipartUpload</Event></QueueConfiguration></NotificationConfiguration>" \
    "$EMU_URL/$B?notification="
sqs_api PurgeQueue "{\"QueueUrl\":\"$qurl\"}" >/dev/null # the s3:TestEvent

# S3's multipart ETag, computed here independently: MD5 of the parts' binary MD5s, "-N".
mpu_etag() {
    python3 - "$1" "$2" <<'PY'
import hashlib, sys
size = int(sys.argv[2])
with open(sys.argv[1], "rb") as f:
    parts = [hashlib.md5(c).digest() for c in iter(lambda: f.read(size), b"")]
print('"%s-%d"' % (hashlib.md5(b"".join(parts)).hexdigest(), len(parts)))
PY
}

head -c $((20 * 1024 * 1024)) /dev/urandom >"$W/big"
want=$(mpu_etag "$W/big" $((8 * 1024 * 1024)))
for cli in $(clis); do
    t_ok "$cli s3 cp of 20 MiB (multipart)" $cli s3 cp --only-show-errors "$W/big" "s3://$B/big-$cli"
    t_eq "$cli: ETag is S3's multipart ETag of 3 parts" "$want" \
        "$(s3_etag "big-$cli")"
    rm -f "$W/got"
    t_ok "$cli: s3 cp back gives the same bytes" \
        eval '$cli s3 cp --only-show-errors "s3://$B/big-$cli" "$W/got" && cmp -s "$W/big" "$W/got"'
done

msg=$(aws_q sqs receive-message --queue-url "$qurl" --wait-time-seconds 5)
ev=$(echo "$msg" | jq -r '.Messages[0].Body')
t_eq "event ObjectCreated:CompleteMultipartUpload with key, size and eTag" \
    "ObjectCreated:CompleteMultipartUpload big-aws_q $((20 * 1024 * 1024)) ${want//\"/}" \
    "$(echo "$ev" | jq -r '.Records[0]|"\(.eventName) \(.s3.object.key) \(.s3.object.size) \(.s3.object.eTag)"')"

# The steps one by one.
head -c $((5 * 1024 * 1024)) /dev/urandom >"$W/p1"
printf 'the small last part\n' >"$W/p2"
id=$($J s3api create-multipart-upload --bucket "$B" --key steps --content-type text/x-test |
    jq -r .UploadId)
t_ok "create-multipart-upload returns an UploadId" test -n "$id" -a "$id" != null
e1=$(aws_q s3api upload-part --bucket "$B" --key steps --upload-id "$id" --part-number 1 \
    --body "$W/p1" | jq -r .ETag)
e2=$($J s3api upload-part --bucket "$B" --key steps --upload-id "$id" --part-number 2 \
    --body "$W/p2" | jq -r .ETag)
t_eq "upload-part ETag is the part's MD5" "\"$(md5sum <"$W/p1" | cut -d' ' -f1)\"" "$e1"
out=$(aws_q s3api list-parts --bucket "$B" --key steps --upload-id "$id")
t_eq "list-parts: numbers, sizes and ETags" "1 $((5 * 1024 * 1024)) $e1 2 20 $e2" \
    "$(echo "$out" | jq -r '[.Parts[]|"\(.PartNumber) \(.Size) \(.ETag)"]|join(" ")')"
out=$($J s3api list-multipart-uploads --bucket "$B")
t_eq "list-multipart-uploads names the pending upload" "steps $id" \
    "$(echo "$out" | jq -r '[.Uploads[]|"\(.Key) \(.UploadId)"]|join(" ")')"

printf '{"Parts":[{"PartNumber":1,"ETag":%s},{"PartNumber":2,"ETag":"\\"%s\\""}]}' \
    "$e1" "$(printf x | md5sum | cut -d' ' -f1)" >"$W/wrong.json"
t_aws_err "complete with a wrong ETag: InvalidPart" InvalidPart \
    aws_q s3api complete-multipart-upload --bucket "$B" --key steps --upload-id "$id" \
    --multipart-upload "file://$W/wrong.json"
printf '{"Parts":[{"PartNumber":2,"ETag":%s},{"PartNumber":1,"ETag":%s}]}' "$e2" "$e1" >"$W/order.json"
t_aws_err "complete with parts out of order: InvalidPartOrder" InvalidPartOrder \
    aws_q s3api complete-multipart-upload --bucket "$B" --key steps --upload-id "$id" \
    --multipart-upload "file://$W/order.json"
printf '{"Parts":[{"PartNumber":1,"ETag":%s},{"PartNumber":2,"ETag":%s}]}' "$e1" "$e2" >"$W/ok.json"
out=$($J s3api complete-multipart-upload --bucket "$B" --key steps --upload-id "$id" \
    --multipart-upload "file://$W/ok.json")
cat "$W/p1" "$W/p2" >"$W/steps"
t_eq "complete: ETag of the 2 parts (5 MiB boundary)" "$(mpu_etag "$W/steps" $((5 * 1024 * 1024)))" \
    "$(echo "$out" | jq -r .ETag)"
t_eq "complete: Bucket, Key and Location" "$B steps $EMU_URL/$B/steps" \
    "$(echo "$out" | jq -r '"\(.Bucket) \(.Key) \(.Location)"')"
aws_q s3api get-object --bucket "$B" --key steps "$W/got" >"$W/meta.json"
t_ok "the object is the parts concatenated" cmp -s "$W/steps" "$W/got"
t_eq "it keeps the Content-Type given at creation" text/x-test "$(jq -r .ContentType "$W/meta.json")"
t_aws_err "a completed upload is gone: NoSuchUpload" NoSuchUpload \
    aws_q s3api list-parts --bucket "$B" --key steps --upload-id "$id"

id=$(mpu_create small)
s1=$(mpu_part small "$id" 1 "$W/p2")
s2=$(mpu_part small "$id" 2 "$W/p2")
printf '{"Parts":[{"PartNumber":1,"ETag":%s},{"PartNumber":2,"ETag":%s}]}' "$s1" "$s2" >"$W/small.json"
t_aws_err "complete with a first part under 5 MiB: EntityTooSmall" EntityTooSmall \
    aws_q s3api complete-multipart-upload --bucket "$B" --key small --upload-id "$id" \
    --multipart-upload "file://$W/small.json"
t_ok "abort-multipart-upload" aws_q s3api abort-multipart-upload --bucket "$B" --key small \
    --upload-id "$id"
t_aws_err "upload-part to an aborted upload: NoSuchUpload" NoSuchUpload \
    $J s3api upload-part --bucket "$B" --key small --upload-id "$id" --part-number 3 --body "$W/p2"
t_aws_err "an unknown upload id: NoSuchUpload" NoSuchUpload \
    aws_q s3api abort-multipart-upload --bucket "$B" --key small --upload-id nope
# (Debian's CLI prints nothing at all for an empty listing, hence jq -s.)
t_eq "no upload pending any more" 0 \
    "$(aws_q s3api list-multipart-uploads --bucket "$B" | jq -rs '[.[].Uploads // [] | .[]] | length')"

pending=$(mpu_create pending)
srv_stop emu "SIGTERM: clean exit"
emu_start || exit 1
t_aws_err "pending uploads do not survive a restart (documented): NoSuchUpload" NoSuchUpload \
    aws_q s3api list-parts --bucket "$B" --key pending --upload-id "$pending"
rm -f "$W/got"
t_ok "the multipart object survives a restart (--data)" \
    eval 'aws_q s3 cp --only-show-errors "s3://$B/big-aws_q" "$W/got" && cmp -s "$W/big" "$W/got"'
t_eq "and keeps its ETag" "$want" \
    "$(s3_etag big-aws_q)"

# Pending parts are held in memory: one upload may hold at most --max-object-bytes.
srv_stop emu
emu_start --max-object-bytes $((6 * 1024 * 1024)) || exit 1
id=$(mpu_create capped)
mpu_part capped "$id" 1 "$W/p1" >/dev/null
head -c $((2 * 1024 * 1024)) /dev/urandom >"$W/p3"
t_aws_err "pending parts beyond --max-object-bytes: EntityTooLarge" EntityTooLarge \
    aws_q s3api upload-part --bucket "$B" --key capped --upload-id "$id" --part-number 2 \
    --body "$W/p3"
t_ok "replacing part 1 within the bound works" eval 'aws_q s3api upload-part --bucket "$B" \
    --key capped --upload-id "$id" --part-number 1 --body "$W/p3" >/dev/null'
srv_stop emu "SIGTERM with a pending upload: clean exit"
t_done
