#!/bin/bash
# SigV4 verification by bmas-emulator beyond the CLIs' happy path: extra credentials, session
# tokens, clock skew, payload hash mismatches, and signed aws-chunked streaming uploads made by
# an independent Python signer (tests/tools/sigv4_client.py).
set -u
. "$(dirname "$0")/../tools/svc-lib.sh"
EMU_CREDENTIALS="AKIDEXTRA:extra/secret+1,AKIDTWO:two" itest_setup || exit 1
sv() { python3 "$ITEST_TOP/tests/tools/sigv4_client.py" "$@"; }
code_of() { sed -n 's:.*<Code>\([^<]*\)</Code>.*:\1:p'; }

B=sig-$$
t_ok "test:test works" eval 'aws_q s3api create-bucket --bucket "$B" >/dev/null'
t_ok "--credentials adds keys (Query CLI)" eval \
    'AWS_ACCESS_KEY_ID=AKIDEXTRA AWS_SECRET_ACCESS_KEY="extra/secret+1" aws_q sqs list-queues >/dev/null'
t_ok "--credentials adds keys (second CLI)" eval \
    'AWS_ACCESS_KEY_ID=AKIDTWO AWS_SECRET_ACCESS_KEY=two $J s3api list-buckets >/dev/null'
t_aws_err "a known key with the other key's secret: SignatureDoesNotMatch" SignatureDoesNotMatch \
    eval 'AWS_ACCESS_KEY_ID=AKIDTWO AWS_SECRET_ACCESS_KEY="extra/secret+1" aws_q s3api list-buckets'
t_aws_err "an unknown key (Query SQS): InvalidClientTokenId" InvalidClientTokenId \
    with_akid AKIDNOPE aws_q sqs list-queues
t_ok "a session token is signed and accepted" eval \
    'AWS_SESSION_TOKEN=FwoGZXIvYXdzEXAMPLETOKEN== $J sqs list-queues >/dev/null'

head -c 200000 /dev/urandom >"$W/big"
out=$(sv PUT "$EMU_URL/$B/chunked.bin" s3 --body "$W/big" --chunked 65536)
t_eq "signed aws-chunked upload (4 chunks): 200" 200 "$(echo "$out" | head -1)"
# Read back signed by libcurl (the CLIs are the clients of the checks above).
curl_sigv4 s3 -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -D "$W/meta" -o "$W/got" "$EMU_URL/$B/chunked.bin"
t_ok "the stored object is the decoded payload, byte for byte" cmp -s "$W/big" "$W/got"
t_eq "and its ETag is the payload's MD5" "\"$(md5sum <"$W/big" | cut -d' ' -f1)\"" \
    "$(tr -d '\r' <"$W/meta" | sed -n 's/^[Ee][Tt][Aa][Gg]: *//p')"
out=$(sv PUT "$EMU_URL/$B/bad.bin" s3 --body "$W/big" --chunked 65536 --bad-chunk)
t_eq "a wrong chunk signature is refused" "400 IncompleteBody" \
    "$(echo "$out" | head -1) $(echo "$out" | code_of)"
out=$(sv PUT "$EMU_URL/$B/h.bin" s3 --body "$W/big" \
    --payload-hash 0000000000000000000000000000000000000000000000000000000000000000)
t_eq "x-amz-content-sha256 not matching the body" "400 XAmzContentSHA256Mismatch" \
    "$(echo "$out" | head -1) $(echo "$out" | code_of)"
printf 'small text\n' >"$W/small"
out=$(sv PUT "$EMU_URL/$B/u.txt" s3 --body "$W/small" --payload-hash UNSIGNED-PAYLOAD)
t_eq "UNSIGNED-PAYLOAD accepted" 200 "$(echo "$out" | head -1)"
out=$(sv GET "$EMU_URL/$B/u.txt" s3 --skew -1200)
t_eq "20 minutes of clock skew (S3): RequestTimeTooSkewed" "403 RequestTimeTooSkewed" \
    "$(echo "$out" | head -1) $(echo "$out" | code_of)"
out=$(sv GET "$EMU_URL/$B/u.txt" s3 --skew -600)
t_eq "10 minutes of skew are within the 15 allowed" 200 "$(echo "$out" | head -1)"
out=$(sv GET "$EMU_URL/?Action=ListQueues&Version=2012-11-05" sqs --skew 1200)
t_eq "20 minutes ahead (SQS Query): SignatureDoesNotMatch" "403 SignatureDoesNotMatch" \
    "$(echo "$out" | head -1) $(echo "$out" | code_of)"
srv_stop emu
t_done
