#!/bin/bash
# S3 against bmas-emulator with both AWS CLIs and libcurl's SigV4: buckets, objects stored byte
# for byte (gzip never decoded), Range, HEAD, ListObjectsV2 prefix/delimiter/continuation,
# copy, delete, presigned URLs, and S3's XML errors.
set -u
. "$(dirname "$0")/../tools/svc-lib.sh"
itest_setup || exit 1

B=logs-$$
KEY='team a/ü+x.json.gz'
printf '{"n":1}\n{"n":2}\n' | gzip -9 -c >"$W/obj.gz"
size=$(stat -c %s "$W/obj.gz")
md5=$(md5sum <"$W/obj.gz" | cut -d' ' -f1)

t_ok "create-bucket (Query CLI)" eval 'aws_q s3api create-bucket --bucket "$B" >/dev/null'
out=$(aws_q s3api put-object --bucket "$B" --key "$KEY" --body "$W/obj.gz" \
    --content-encoding gzip --content-type application/json --metadata team=a)
t_eq "put-object ETag is the body's MD5" "\"$md5\"" "$(echo "$out" | jq -r .ETag)"

aws_q s3api get-object --bucket "$B" --key "$KEY" "$W/got" >"$W/meta.json"
t_ok "get-object returns the gzip bytes unchanged (never decompressed)" cmp -s "$W/obj.gz" "$W/got"
t_eq "get-object keeps Content-Encoding" gzip "$(jq -r .ContentEncoding "$W/meta.json")"
t_eq "get-object keeps Content-Type" application/json "$(jq -r .ContentType "$W/meta.json")"
t_eq "get-object returns user metadata" a "$(jq -r .Metadata.team "$W/meta.json")"

head -c 6 "$W/obj.gz" | tail -c 4 >"$W/want-range"
printf 'second object\n' >"$W/obj2"
out=$($J s3api put-object --bucket "$B" --key dir/k2.txt --body "$W/obj2")
t_eq "put-object (the JSON CLI adds a CRC32 checksum)" \
    "\"$(md5sum <"$W/obj2" | cut -d' ' -f1)\"" "$(echo "$out" | jq -r .ETag)"
$J s3api get-object --bucket "$B" --key "$KEY" --range bytes=2-5 "$W/range" >"$W/r.json"
t_ok "get-object Range bytes=2-5 returns exactly those bytes" cmp -s "$W/want-range" "$W/range"
t_eq "Range answer names the slice" "bytes 2-5/$size" "$(jq -r .ContentRange "$W/r.json")"

out=$(aws_q s3api head-object --bucket "$B" --key "$KEY")
t_eq "head-object ContentLength" "$size" "$(echo "$out" | jq -r .ContentLength)"
t_eq "head-object ETag" "\"$md5\"" "$(echo "$out" | jq -r .ETag)"

# Five more keys through libcurl's signer (fast, and a third independent client).
for i in 1 2 3 4 5; do
    curl_sigv4 s3 -f -o /dev/null -X PUT -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
        --data-binary "body $i" "$EMU_URL/$B/p/$i.txt" || t_fail "curl PUT p/$i.txt"
done
out=$(aws_q s3api list-objects-v2 --bucket "$B" --prefix p/ --max-keys 2 --no-paginate)
t_eq "list-objects-v2 page 1: keys" "p/1.txt p/2.txt" "$(echo "$out" | jq -r '[.Contents[].Key]|join(" ")')"
t_eq "list-objects-v2 page 1: truncated" "true 2" "$(echo "$out" | jq -r '"\(.IsTruncated) \(.KeyCount)"')"
tok=$(echo "$out" | jq -r .NextContinuationToken)
out=$(aws_q s3api list-objects-v2 --bucket "$B" --prefix p/ --max-keys 2 --no-paginate \
    --continuation-token "$tok")
t_eq "list-objects-v2 page 2 continues after the token" "p/3.txt p/4.txt" \
    "$(echo "$out" | jq -r '[.Contents[].Key]|join(" ")')"
out=$(aws_q s3api list-objects-v2 --bucket "$B" --delimiter /)
t_eq "list-objects-v2 delimiter: common prefixes" "dir/ p/ team a/" \
    "$(echo "$out" | jq -r '[.CommonPrefixes[]?.Prefix]|join(" ")')"
if [ "$HAVE_JSON_CLI" = 1 ]; then
    out=$(aws_j s3api list-objects-v2 --bucket "$B" --page-size 2)
    t_eq "list-objects-v2 paginated by the JSON CLI (page size 2) sees every key once" \
        "dir/k2.txt p/1.txt p/2.txt p/3.txt p/4.txt p/5.txt $KEY" \
        "$(echo "$out" | jq -r '[.Contents[].Key]|join(" ")')"
fi

aws_q s3api copy-object --bucket "$B" --key copy.gz --copy-source "$B/team a/ü+x.json.gz" >/dev/null
aws_q s3api get-object --bucket "$B" --key copy.gz "$W/copy" >/dev/null
t_ok "copy-object copies the bytes" cmp -s "$W/obj.gz" "$W/copy"

url=$(aws_q s3 presign "s3://$B/$KEY" --expires-in 300)
t_ok "presigned GET URL (query auth) returns the object" \
    eval 'curl -m 60 -fsS "$url" -o "$W/presigned" && cmp -s "$W/obj.gz" "$W/presigned"'
# Flip the signature's first hex digit to a different one (a fixed
# replacement would be a no-op whenever the digit already matched it).
bad=$(echo "$url" | sed 's/X-Amz-Signature=0/X-Amz-Signature=@/;
    s/X-Amz-Signature=[1-9a-f]/X-Amz-Signature=0/; s/X-Amz-Signature=@/X-Amz-Signature=1/')
t_ok "tampered presigned URL differs from the signed one" test "$bad" != "$url"
code=$(curl -m 60 -sS -o "$W/err.xml" -w '%{http_code}' "$bad")
t_eq "tampered presigned URL: 403" 403 "$code"
t_eq "tampered presigned URL: SignatureDoesNotMatch" SignatureDoesNotMatch \
    "$(sed -n 's:.*<Code>\(.*\)</Code>.*:\1:p' "$W/err.xml")"

t_ok "GET signed by curl's --aws-sigv4 (libcurl signer)" \
    eval 'curl_sigv4 s3 -f -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$EMU_URL/$B/p/3.txt" | grep -qx "body 3"'
# Virtual-hosted style (LocalStack's host names; --connect-to stands in for their DNS): the
# bucket comes from the signed Host header.
for host in "$B.s3.localhost.localstack.cloud" "$B.localhost"; do
    t_eq "virtual-hosted GET via $host" "body 3" "$(curl_sigv4 s3 -f --connect-to "$host:$EMU_PORT:127.0.0.1:$EMU_PORT" \
        -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "http://$host:$EMU_PORT/p/3.txt")"
done
code=$(curl -m 60 -sS -o "$W/err.xml" -w '%{http_code}' "$EMU_URL/$B/p/3.txt")
t_eq "unsigned request: 403" 403 "$code"
t_eq "unsigned request: AccessDenied XML" AccessDenied "$(sed -n 's:.*<Code>\(.*\)</Code>.*:\1:p' "$W/err.xml")"

t_aws_err "get-object of a missing key: NoSuchKey" NoSuchKey \
    aws_q s3api get-object --bucket "$B" --key nope "$W/x"
t_aws_err "list of a missing bucket: NoSuchBucket" NoSuchBucket \
    aws_q s3api list-objects-v2 --bucket "nobucket-$$"
t_aws_err "wrong secret: SignatureDoesNotMatch" SignatureDoesNotMatch \
    with_secret wrong aws_q s3api get-object --bucket "$B" --key "$KEY" "$W/x"
t_aws_err "unknown access key: InvalidAccessKeyId" InvalidAccessKeyId \
    with_akid AKIDUNKNOWN aws_q s3api list-objects-v2 --bucket "$B"
t_aws_err "bad Content-MD5: BadDigest" BadDigest \
    aws_q s3api put-object --bucket "$B" --key bad --body "$W/obj.gz" --content-md5 "$(echo -n x | openssl md5 -binary | base64)"

if [ "$HAVE_JSON_CLI" = 1 ]; then
    t_ok "delete-object (JSON CLI)" eval 'aws_j s3api delete-object --bucket "$B" --key dir/k2.txt >/dev/null'
    t_aws_err "deleted key is gone" NoSuchKey aws_j s3api get-object --bucket "$B" --key dir/k2.txt "$W/x"
else
    aws_q s3api delete-object --bucket "$B" --key dir/k2.txt >/dev/null
fi
aws_q s3 rm --recursive "s3://$B/p/" >/dev/null
out=$(aws_q s3api list-objects-v2 --bucket "$B")
t_eq "s3 rm --recursive (DeleteObjects) leaves the other keys" "copy.gz $KEY" \
    "$(echo "$out" | jq -r '[.Contents[].Key]|join(" ")')"
out=$(aws_q s3api list-buckets)
t_eq "list-buckets" "$B" "$(echo "$out" | jq -r '[.Buckets[].Name]|join(" ")')"
srv_stop emu
t_done
