#!/bin/bash
# No URL host from untrusted text: with real AWS addressing (no AWS_ENDPOINT_URL) bucket names
# that would put a host, a port or user info into a virtual-hosted URL, or that S3 would never
# accept, are refused as BMAS-005 in batchItemFailures and no connection is made anywhere. A
# listener on 127.0.0.1 counts connection attempts (the names below all point at it); the
# process's connect() calls are also counted with strace when it is on the machine.
set -u
. tests/tools/svc-lib.sh
W=$(mktemp -d "${TMPDIR:-/tmp}/bmas-itest.XXXXXX")
LP=
trap 'kill $LP 2>/dev/null; itest_atexit' EXIT

# The listener: accepts, counts, closes.
python3 -c '
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(64)
print(s.getsockname()[1], flush=True)
n = 0
while True:
    c, _ = s.accept(); n += 1
    open(sys.argv[1], "w").write(str(n)); c.close()
' "$W/accepts" > "$W/lport" &
LP=$!
wait_for 5 test -s "$W/lport"
LPORT=$(cat "$W/lport")
echo 0 > "$W/accepts"

# Real AWS addressing: no endpoint variables; static keys so credentials need no network.
unset AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3
BMAS_ENV="AWS_ACCESS_KEY_ID=AKIDEXAMPLE AWS_SECRET_ACCESS_KEY=secret AWS_REGION=us-east-1
    BMAS_FLUSH_INTERVAL=0 MAX_RETRY_ATTEMPTS=1" bmas_start

names=("localhost:$LPORT/#" "x@127.0.0.1:$LPORT/#" "[::1]:$LPORT/#" "127.0.0.1:$LPORT"
    "127.0.0.1" "logs/AWSLogs" "" "ab" "Logs" "-logs" "logs-" "a..b" "xn--logs" "logs%2F..%2F"
    "$(printf 'l%.0s' {1..64})" "logs?x=1" "logs#frag" "lo gs")
msgs='[]'
i=0
for b in "${names[@]}"; do
    body=$(jq -c --arg b "$b" '.Records[0].s3.bucket.name = $b | .Records[0].s3.bucket.arn = "arn:aws:s3:::" + $b' \
        "$BM_TEST_DATA/s3-event.json")
    msgs=$(jq -c --arg id "m$i" --arg body "$body" '. + [{messageId: $id, body: $body, eventSource: "aws:sqs"}]' <<<"$msgs")
    i=$((i + 1))
done
jq -c '{Records: .}' <<<"$msgs" > "$W/event.json"
call events POST /events -m 30 -H 'Content-Type: application/json' --data-binary @"$W/event.json"
t_eq "the batch is answered" "200" "$STATUS"
t_eq "every message is a batch item failure" "$i" "$(jq '.batchItemFailures | length' <<<"$BODY")"
t_eq "no connection reached the listener" "0" "$(cat "$W/accepts")"
call status GET /status -m 10
t_eq "every one counted as BMAS-005" "$i" "$(jq -r '.errors["BMAS-005"]' <<<"$BODY")"
t_eq "nothing processed" "0" "$(jq -r '.objects.processed' <<<"$BODY")"
t_eq "nothing quarantined (a bad name is the message's fault, not an object's)" "0" \
    "$(jq -r '.quarantined | length' <<<"$BODY")"

# The same batch again, this time with every connect() of the process traced.
if command -v strace >/dev/null; then
    strace -f -e trace=connect -o "$W/strace" -p "$BMAS_PID" 2>/dev/null &
    SP=$!
    sleep 1
    call events2 POST /events -m 30 -H 'Content-Type: application/json' --data-binary @"$W/event.json"
    kill $SP 2>/dev/null
    wait $SP 2>/dev/null
    t_eq "strace: bmas made no connect() for the invalid names" "0" \
        "$(grep -c 'connect(' "$W/strace")"
else
    t_fail "strace is on the machine (deps.sh installs it)"
fi
t_eq "still no connection reached the listener" "0" "$(cat "$W/accepts")"

srv_stop bmas
t_done
