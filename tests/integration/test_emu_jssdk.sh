#!/bin/bash
# bmas-emulator against the AWS SDK for JavaScript v3 (tests/peers/sdk_peer.js): S3 with the
# SDK's default CRC32 checksums, SQS over JSON 1.0 with the SDK's own MD5OfMessageBody and
# MD5OfMessageAttributes checks, an S3 notification read back through SQS, CloudWatch
# PutMetricData (Value, Values/Counts, StatisticValues) and its statistics read back exactly,
# typed errors, and a wrong secret refused by all three services.
set -u
. "$(dirname "$0")/../tools/svc-lib.sh"
. "$(dirname "$0")/../tools/peers.sh"
itest_setup || exit 1
if ! peers_install; then
    t_skip "AWS SDK for JavaScript v3 against the emulator" "Node.js/npm test peers unavailable"
    t_done
    exit
fi
# The SDK warns on stderr that releases after January 2027 need Node 22; the pinned ones run on 20.
node tests/peers/sdk_peer.js "$EMU_URL" >"$W/sdk.out" 2>"$W/sdk.err"
rc=$?
while IFS= read -r line; do
    case "$line" in
    "ok - "*) t_pass "JS SDK: ${line#ok - }" ;;
    "not ok - "*) t_fail "JS SDK: ${line#not ok - }" ;;
    *) echo "$line" ;;
    esac
done <"$W/sdk.out"
t_eq "the SDK peer ran every check" 16 "$(grep -c '^ok - \|^not ok - ' "$W/sdk.out")"
t_eq "the SDK peer exited 0" 0 "$rc"
[ "$rc" = 0 ] || sed 's/^/#   stderr: /' "$W/sdk.err" | head -20
srv_stop emu
t_done
