#!/bin/bash
# POST /events under forged envelopes (issue 8): more messages than BATCH_SIZE (413, nothing
# fetched), a message with more S3 records than BM_MAX_S3_RECORDS_PER_MESSAGE (that message
# fails with BMAS-010, nothing fetched; the emulator counts GetObjects), data after the JSON
# value (400); one object's event re-sent with decorations (quoted, uppercase, weak ETag,
# versionId null/v1 on an unversioned bucket, bucket "logs/AWSLogs") counted exactly once, the
# invalid ones BMAS-005 with nothing fetched; and memory: three concurrent maximum-size bodies
# of tiny elements, peak and settled RSS read from /proc.
set -u
. tests/tools/svc-lib.sh
svc_setup

K="$P/20260420T001731Z_envelope.json.gz"
E=$(s3_upload logs "$K" "$W/a.json.gz")
t_ok "the object is in S3" test -n "$E"

BMAS_ENV="AWS_ENDPOINT_URL=$EMU_URL AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test BMAS_FLUSH_INTERVAL=0 BATCH_SIZE=10 MAX_RETRY_ATTEMPTS=2 AWS_EC2_METADATA_DISABLED=true"
bmas_start || exit 1

reset_counts() { curl -fsS -m 5 -X DELETE "$EMU_URL/_emulator/requests" >/dev/null; }
get_objects() {
    curl -fsS -m 5 "$EMU_URL/_emulator/requests?service=s3" |
        jq '[.requests[] | select(.operation == "GetObject") | .count] | add // 0'
}
failures() { echo "$BODY" | jq -c '[.batchItemFailures[].itemIdentifier] | sort'; }
errors() { # errors NAME CODE: /status's count of CODE
    call "status-$1" GET /status -m 10
    echo "$BODY" | jq -c ".errors[\"$2\"] // 0"
}

# An S3 notification of the object: $1 bucket, $2 key as the event writes it, $3 object extras.
s3_event() {
    local extra=${3:-'{}'}
    jq -c -n --arg b "$1" --arg k "$2" --argjson x "$extra" '{Records: [{eventVersion: "2.1",
        eventSource: "aws:s3", eventName: "ObjectCreated:Put", s3: {bucket: {name: $b},
        object: ({key: $k, size: 1} + $x)}}]}'
}
# A Lambda SQS event from lines of "id<TAB>body".
sqs_event() {
    jq -R -s -c '{Records: [split("\n")[] | select(length > 0) | split("\t")
        | {messageId: .[0], body: .[1], eventSource: "aws:sqs",
           attributes: {ApproximateReceiveCount: "1"}}]}'
}
FK=$(form_key "$K")
PLAIN=$(s3_event logs "$FK" "{\"eTag\":\"$E\"}")

# BATCH_SIZE (10): eleven messages are refused whole, before anything is fetched.
reset_counts
for i in $(seq 11); do printf 'm%s\t%s\n' "$i" "$PLAIN"; done | sqs_event > "$W/eleven.json"
call eleven POST /events -m 30 --data-binary @"$W/eleven.json"
t_eq "11 messages over BATCH_SIZE 10: 413 BMAS-010" "413 BMAS-010" "$STATUS $(echo "$BODY" | jq -r .errorCode)"
t_eq "... and nothing fetched" "0" "$(get_objects)"

# 101 S3 records in one message: that message fails with BMAS-010, nothing fetched.
jq -c '.Records = [range(101) as $i | .Records[0]]' <<<"$PLAIN" > "$W/many.json"
printf 'many-1\t%s\n' "$(cat "$W/many.json")" | sqs_event > "$W/many-batch.json"
E10=$(errors many0 BMAS-010)
call many POST /events -m 30 --data-binary @"$W/many-batch.json"
t_eq "101 S3 records: that message in batchItemFailures" '200 ["many-1"]' "$STATUS $(failures)"
t_eq "... counted as BMAS-010" "$((E10 + 1))" "$(errors many BMAS-010)"
t_eq "... and nothing fetched" "0" "$(get_objects)"
t_ok "... logged with its code" grep -q '"event":"message_unparseable".*"errorCode":"BMAS-010"' "$BMAS_LOG"
call many-bare POST /events -m 30 --data-binary @"$W/many.json"
t_eq "the same posted bare: 413 BMAS-010" "413 BMAS-010" "$STATUS $(echo "$BODY" | jq -r .errorCode)"

# Data after the JSON value: the whole body is refused.
printf 'm1\t%s\n' "$PLAIN" | sqs_event | tr -d '\n' > "$W/trail.json"
printf 'x' >> "$W/trail.json"
call trail POST /events -m 30 --data-binary @"$W/trail.json"
t_eq "SQS event + trailing data: 400 BMAS-005" "400 BMAS-005" "$STATUS $(echo "$BODY" | jq -r .errorCode)"
call trail-bare POST /events -m 30 --data "$PLAIN{}"
t_eq "bare event + a second value: 400 BMAS-005" "400 BMAS-005" "$STATUS $(echo "$BODY" | jq -r .errorCode)"
t_eq "... nothing fetched" "0" "$(get_objects)"

# Identity: the object counted once however its event is decorated.
printf 'plain\t%s\n' "$PLAIN" | sqs_event > "$W/id1.json"
call id1 POST /events -m 30 --data-binary @"$W/id1.json"
t_eq "the plain event counts the object" '200 []' "$STATUS $(failures)"
t_eq "... with one GetObject" "1" "$(get_objects)"
{
    printf 'weak\t%s\n' "$(s3_event logs "$FK" "{\"eTag\":\"W/\\\"$E\\\"\"}")"
    printf 'slash\t%s\n' "$(s3_event logs/AWSLogs "$(form_key "${K#AWSLogs/}")" "{\"eTag\":\"$E\"}")"
    printf 'empty\t%s\n' "$(s3_event logs "" "{\"eTag\":\"$E\"}")"
    printf 'dupkey\t%s\n' "$(s3_event logs "$FK" "{\"eTag\":\"$E\"}" | sed 's/"size":1/"key":"other.json.gz","size":1/')"
} | sqs_event > "$W/id2.json"
reset_counts
E5=$(errors id0 BMAS-005)
call id2 POST /events -m 30 --data-binary @"$W/id2.json"
t_eq "weak ETag, '/' in the bucket, empty key, key twice: each its message's failure" \
    '200 ["dupkey","empty","slash","weak"]' "$STATUS $(failures)"
t_eq "... as BMAS-005" "$((E5 + 4))" "$(errors id2 BMAS-005)"
t_eq "... with nothing fetched" "0" "$(get_objects)"
{
    printf 'quoted\t%s\n' "$(s3_event logs "$FK" "{\"eTag\":\"\\\"$E\\\"\"}")"
    printf 'upper\t%s\n' "$(s3_event logs "$FK" "{\"eTag\":\"${E^^}\"}")"
    printf 'vnull\t%s\n' "$(s3_event logs "$FK" "{\"eTag\":\"$E\",\"versionId\":\"null\"}")"
    printf 'noetag\t%s\n' "$(s3_event logs "$FK")"
    printf 'v1\t%s\n' "$(s3_event logs "$FK" "{\"eTag\":\"$E\",\"versionId\":\"v1\"}")"
} | sqs_event > "$W/id3.json"
call id3 POST /events -m 30 --data-binary @"$W/id3.json"
t_eq "quoted, uppercase, versionId null, no ETag: acknowledged; v1 (no such version): redelivered" \
    '200 ["v1"]' "$STATUS $(failures)"
call totals GET "/aggregates?group_by=" -m 10
t_eq "the object counted exactly once (4 records)" "4" "$(echo "$BODY" | jq .totals.invocations)"
call status GET /status -m 10
t_eq "one processed, four duplicates, v1 failed as BMAS-001" '[1,4,1]' \
    "$(echo "$BODY" | jq -c '[.objects.processed, .objects.duplicates, .errors["BMAS-001"]]')"

# Memory: three concurrent maximum-size (BMAS_MAX_BODY_BYTES, 6 MiB) bodies of tiny elements,
# the shape a tree parser turns into hundreds of megabytes. Each is refused by the scan alone.
MAX=$((6 * 1024 * 1024))
python3 - "$W" "$MAX" <<'EOF'
import sys
w, size = sys.argv[1], int(sys.argv[2])
sqs = '{"messageId":"m0","eventSource":"aws:sqs","body":"{}"}'
for name, head, elem in (("ones", '{"Records":[' + sqs, ",1"),
                         ("objs", '{"Records":[' + sqs, ",{}"),
                         ("bare", '{"Records":[{"eventVersion":"2.1"}', ",1")):
    n = (size - len(head) - 2) // len(elem)
    body = head + elem * n
    body += " " * (size - len(body) - 2) + "]}"
    assert len(body) == size
    open(f"{w}/{name}.json", "w").write(body)
EOF
kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$BMAS_PID/status"; }
BEFORE=$(kb VmRSS)
for round in 1 2; do
    pids=()
    for name in ones objs bare; do
        curl -sS -m 60 -o "$W/rss-$name-$round.body" -w '%{http_code}\n' \
            --data-binary @"$W/$name.json" "$BMAS_URL/events" > "$W/rss-$name-$round.code" &
        pids+=($!)
    done
    wait "${pids[@]}" # only the curls: bmas and the emulator are children too
done
t_eq "6 MiB of 1s after an SQS record: 400 BMAS-005" "400 BMAS-005" \
    "$(cat "$W/rss-ones-2.code") $(jq -r .errorCode "$W/rss-ones-2.body")"
t_eq "6 MiB of {} (1.5 M messages): 413 BMAS-010" "413 BMAS-010" \
    "$(cat "$W/rss-objs-2.code") $(jq -r .errorCode "$W/rss-objs-2.body")"
t_eq "a 6 MiB bare event: 413 BMAS-010" "413 BMAS-010" \
    "$(cat "$W/rss-bare-2.code") $(jq -r .errorCode "$W/rss-bare-2.body")"
PEAK=$(kb VmHWM)
AFTER=$(kb VmRSS)
echo "# RSS before $((BEFORE / 1024)) MB, peak $((PEAK / 1024)) MB, after $((AFTER / 1024)) MB"
t_ok "peak RSS under 400 MB ($((PEAK / 1024)) MB)" test "$PEAK" -lt $((400 * 1024))
t_ok "RSS after under 128 MB ($((AFTER / 1024)) MB)" test "$AFTER" -lt $((128 * 1024))
call healthz GET /healthz -m 5
t_eq "still serving" "200 ok" "$STATUS $BODY"
call flush POST /flush -m 30
t_eq "flush answers (every documented 200 is checked below)" "200" "$STATUS"

openapi_check
srv_stop bmas
t_done
