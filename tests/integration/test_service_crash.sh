#!/bin/bash
# Exactly-once across crashes: 40 objects are POSTed 4 at a time while S3 answers slowly, bmas
# is killed with SIGKILL in the middle, restarted on the same database, and every event is
# delivered again (as SQS would). Three rounds, killed at different moments; each proves its
# kill landed mid-batch (N of 40 objects committed, 0 < N < 40, read from the restarted
# service's /status, whose counters are committed with the objects) and must end with every
# object counted exactly once: no loss, no double count.
set -u
. tests/tools/svc-lib.sh
svc_setup

for i in $(seq -w 1 40); do s3_upload logs "$P/obj-$i.json.gz" "$W/a.json.gz" >/dev/null; done
ETAG=$(md5sum "$W/a.json.gz" | cut -d' ' -f1)
mkdir -p "$W/ev"
for i in $(seq -w 1 40); do
    jq -c --arg k "$(form_key "$P/obj-$i.json.gz")" --arg e "$ETAG" '.Records[0].s3.bucket.name = "logs"
        | .Records[0].s3.object.key = $k | .Records[0].s3.object.eTag = $e' \
        "$BM_TEST_DATA/s3-event.json" > "$W/ev/$i.json"
done
processed_at_least() { [ "$(curl -m 60 -sS "$BMAS_URL/status" | jq .objects.processed)" -ge "$1" ] 2>/dev/null; }
post_all() { ls "$W/ev"/*.json | xargs -P 4 -I{} curl -sS -o /dev/null -m 30 --data @{} "$BMAS_URL/events"; }

# S3 takes 200 ms per request (four in flight: about 20 objects a second), so kills land while
# fetches and commits are in flight, well before the last object.
emu_fault '{"service":"s3","operation":"GetObject","latency_ms":200}'
BMAS_ENV="AWS_ENDPOINT_URL=$EMU_URL AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test BMAS_FLUSH_INTERVAL=0 LOG_LEVEL=WARN AWS_EC2_METADATA_DISABLED=true"
for round in 1 2 3; do
    BMAS_DB=$W/crash-$round.db
    bmas_start || exit 1
    post_all 2>/dev/null &
    poster=$!
    # Kill after a share of the objects is in: 5, 15, 30 of 40.
    want=$(( round == 1 ? 5 : round == 2 ? 15 : 30 ))
    wait_for 60 processed_at_least "$want"
    kill -KILL "$BMAS_PID"
    wait "$BMAS_PID" 2>/dev/null
    t_eq "round $round: SIGKILL landed (exit status 137)" 137 "$?"
    wait "$poster" 2>/dev/null
    BMAS_PID=
    bmas_start || exit 1
    call "st0-$round" GET /status
    n=$(echo "$BODY" | jq .objects.processed)
    t_range "round $round: killed mid-batch, $n of 40 objects committed" "$want" 39 "$n"
    post_all # the redelivery of every message
    call "agg-$round" GET "/aggregates?group_by="
    t_eq "round $round (killed after >= $want): 40 objects counted once" \
        '{"invocations":160,"input_tokens":10760,"cache_write_input_tokens":9036520}' \
        "$(echo "$BODY" | jq -c '.totals | {invocations,input_tokens,cache_write_input_tokens}')"
    # All time reads the all-time rollup; by minute reads the minute rows: the same numbers.
    totals=$(echo "$BODY" | jq -c .totals)
    call "aggm-$round" GET "/aggregates?group_by=minute"
    t_eq "round $round: the all-time rollup equals the minute rows" "$totals" \
        "$(echo "$BODY" | jq -c .totals)"
    call "st-$round" GET /status
    t_eq "round $round: processed 40, records 160" '[40,160]' \
        "$(echo "$BODY" | jq -c '[.objects.processed,.records.processed]')"
    srv_stop bmas "round $round: bmas after the redelivery"
    unset BMAS_DB
done
srv_stop emu
t_done
