#!/bin/bash
# Two instances on one PostgreSQL database (issue 14 items 2 and 3), against a real server this
# script starts (tests/tools/pg-lib.sh; no server is a failure, never a skip): the same objects
# delivered to both, 8 requests at once on each, are counted once and both /aggregates agree,
# each instance through the one connection BMAS_DB_MAX_CONNECTIONS=1 allows it;
# exactly one instance holds the publisher lease and both name it in /status, a lease the
# database holds for at most 3/4 of the flush interval; a third instance killed with -9 in the
# middle of a batch, the batch redelivered to another, leaves every object counted once; after
# kill -9 of the publisher the other takes the lease over and publishes, and CloudWatch's sums
# in the emulator are exact. The survivor then stops cleanly.
set -u
. tests/tools/svc-lib.sh
. tests/tools/pg-lib.sh
svc_setup

if ! pg_start; then
    t_fail "PostgreSQL server started (tests/tools/deps.sh installs postgresql)"
    t_done
    exit 1
fi
OTHER_PID= G_PID=
ITEST_ATEXIT='[ -n "$OTHER_PID" ] && kill -KILL "$OTHER_PID" 2>/dev/null; [ -n "$G_PID" ] && kill -KILL "$G_PID" 2>/dev/null; pg_stop'

# The sample object holds one CrossRegion invocation of 255 input tokens (tests/data).
PER_OBJECT=255
NOBJ=4
for i in $(seq 1 "$NOBJ"); do
    etag=$(s3_upload logs "$P/multi-$i.json.gz" "$W/a.json.gz")
    jq -c --arg k "$(form_key "$P/multi-$i.json.gz")" --arg e "$etag" '.Records[0].s3.bucket.name = "logs"
        | .Records[0].s3.object.key = $k | .Records[0].s3.object.eTag = $e' \
        "$BM_TEST_DATA/s3-event.json" > "$W/ev$i.json"
done

common="AWS_ENDPOINT_URL=$EMU_URL AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test BMAS_FLUSH_INTERVAL=4 MAX_RETRY_ATTEMPTS=3 AWS_EC2_METADATA_DISABLED=true BMAS_DB_MAX_CONNECTIONS=1"
BMAS_DB=$PG_URL
BMAS_ENV="$common BMAS_INSTANCE_ID=alpha"
bmas_start || exit 1
A_PID=$BMAS_PID A_URL=$BMAS_URL A_LOG=$BMAS_LOG
OTHER_PID=$A_PID
BMAS_ENV="$common BMAS_INSTANCE_ID=beta"
bmas_start || exit 1
B_PID=$BMAS_PID B_URL=$BMAS_URL B_LOG=$BMAS_LOG

status_of() { curl -m 30 -sS "$1/status"; }
holder_known() { # URL: /status names a holder
    [ "$(status_of "$1" | jq -r '.instance.publisher_holder // ""')" != "" ]
}
both_know() { holder_known "$A_URL" && holder_known "$B_URL"; }
t_ok "both instances name a publisher" wait_for 60 both_know

# Each instance gets every event twice, 8 requests at once; both instances at the same time.
deliver() { # URL: posts each event twice, 8 at once; prints the HTTP statuses, one a line
    for i in $(seq 1 "$NOBJ"); do echo "$W/ev$i.json"; echo "$W/ev$i.json"; done |
        xargs -P 8 -I{} curl -m 60 -sS -o /dev/null -w '%{http_code}\n' --data @{} "$1/events"
}
deliver "$A_URL" > "$W/codes.a" &
da=$!
deliver "$B_URL" > "$W/codes.b" &
db=$!
wait "$da" "$db"
t_eq "16 deliveries to alpha and beta, all 200" "16 200" "$(cat "$W/codes.a" "$W/codes.b" | sort | uniq -c | awk '{print $1, $2}')"

total=$((PER_OBJECT * NOBJ))
BMAS_URL=$A_URL call agg_a GET "/aggregates?group_by=profile_type&profile_type=CrossRegion"
agg_a=$BODY
BMAS_URL=$B_URL call agg_b GET "/aggregates?group_by=profile_type&profile_type=CrossRegion"
t_eq "each object counted once" "$total" "$(echo "$agg_a" | jq .totals.input_tokens)"
# BMAS_DB_MAX_CONNECTIONS=1: each instance did all of that (8 requests at once, the lease, the
# publisher) through one connection, so the server saw two (psql's own is not bmas's).
t_eq "one connection per instance (BMAS_DB_MAX_CONNECTIONS=1)" 2 \
    "$(PGCONNECT_TIMEOUT=5 psql "$PG_URL" -Atqc "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'bmas'" 2>&1)"
t_eq "both instances answer the same /aggregates" "$(echo "$agg_a" | jq -cS .)" "$(echo "$BODY" | jq -cS .)"
store_series() { # URL: /metrics' aggregate counters (the shared store's), sorted
    curl -m 30 -sS "$1/metrics" | grep -E '^bmas_(invocations|input_tokens|output_tokens)_total\{' | sort
}
series_a=$(store_series "$A_URL")
t_eq "/metrics' aggregate counters: $PER_OBJECT x $NOBJ CrossRegion input tokens" "$total" \
    "$(awk '/^bmas_input_tokens_total\{profile_type="CrossRegion"/ { n += $2 } END { print n + 0 }' <<<"$series_a")"
t_eq "both instances export the same aggregate counters (max, not sum, across instances)" \
    "$series_a" "$(store_series "$B_URL")"
call status_b GET /status
st_b=$BODY
BMAS_URL=$A_URL call status_a GET /status
st_a=$BODY
t_eq "instance ids and store" '["alpha","postgresql","beta","postgresql"]' \
    "$(jq -cs '[.[0].instance.id, .[0].instance.store, .[1].instance.id, .[1].instance.store]' <<<"$st_a $st_b")"
roles=$(jq -cs '[.[].instance.publisher] | sort' <<<"$st_a $st_b")
t_eq "exactly one instance publishes" '[false,true]' "$roles"
holders=$(jq -cs '[.[].instance.publisher_holder] | unique' <<<"$st_a $st_b")
pub_id=$(jq -rs '[.[] | select(.instance.publisher) | .instance.id][0] // "none"' <<<"$st_a $st_b")
t_eq "both name the publisher as the holder" "[\"$pub_id\"]" "$holders"
cw_sum() { cw_stat InputTokens Sum InferenceProfileType=CrossRegion; }
cw_is() { [ "$(cw_sum)" = "$1" ]; }
t_ok "the publisher published on its schedule" wait_for 60 cw_is "$total"
t_eq "CloudWatch Sum exact after the first publishes" "$total" "$(cw_sum)"
t_eq "CloudWatch SampleCount = invocations" "$NOBJ" "$(cw_stat InputTokens SampleCount InferenceProfileType=CrossRegion)"

# The lease in the database (read with psql, not through bmas): it names the publisher and never
# runs more than 3/4 of the 4 s flush interval past the server's clock, so a stand-by trying
# every 1/4 interval takes a dead holder's place within one interval.
lease_row() {
    PGCONNECT_TIMEOUT=5 psql "$PG_URL" -Atqc "SELECT holder, expires_at - (extract(epoch FROM
        clock_timestamp()) * 1000)::bigint FROM publisher_lease" 2>&1
}
max_left=0
for _ in 1 2 3 4 5 6; do
    row=$(lease_row)
    t_eq "the lease row names $pub_id" "$pub_id" "${row%%|*}"
    left=${row#*|}
    [ "$left" -gt "$max_left" ] 2>/dev/null && max_left=$left
    sleep 0.3
done
t_range "the lease runs at most 3000 ms past the server's clock (longest seen: $max_left ms)" -100000 3000 "$max_left"

# kill -9 in the middle of a batch: a third instance (a stand-by) gets one SQS batch of 8 new
# objects while S3 answers slowly; once some of them are committed it is killed, and the same
# batch redelivered to another instance counts each object exactly once.
MID=8
ETAG=$(md5sum "$W/a.json.gz" | cut -d' ' -f1)
for i in $(seq 1 "$MID"); do
    s3_upload logs "$P/mid-$i.json.gz" "$W/a.json.gz" >/dev/null
    jq -c --arg k "$(form_key "$P/mid-$i.json.gz")" --arg e "$ETAG" '.Records[0].s3.bucket.name = "logs"
        | .Records[0].s3.object.key = $k | .Records[0].s3.object.eTag = $e' "$BM_TEST_DATA/s3-event.json"
done | jq -s -c '{Records: [to_entries[] | {messageId: "mid-\(.key)", body: (.value | tojson), eventSource: "aws:sqs"}]}' > "$W/mid.json"
BMAS_ENV="$common BMAS_INSTANCE_ID=gamma BMAS_FETCH_CONCURRENCY=2"
bmas_start || exit 1
G_PID=$BMAS_PID G_URL=$BMAS_URL G_LOG=$BMAS_LOG
emu_fault '{"service":"s3","operation":"GetObject","latency_ms":400}'
invocations() { # the CrossRegion invocations in the shared store, read through alpha
    curl -m 30 -sS "$A_URL/aggregates?group_by=profile_type&profile_type=CrossRegion" | jq '.totals.invocations // 0'
}
curl -m 120 -sS -o "$W/mid-resp.json" -w '%{http_code}' --data-binary @"$W/mid.json" "$G_URL/events" > "$W/mid-code" 2>/dev/null &
mid_post=$!
t_ok "gamma committed 2 of the batch's objects" wait_for 60 eval 'test "$(invocations)" -ge $((NOBJ + 2))'
kill -KILL "$G_PID"
wait "$G_PID" 2>/dev/null
t_eq "gamma killed with -9 (exit status 137)" 137 "$?"
wait "$mid_post" 2>/dev/null
t_eq "gamma never answered the batch" "000" "$(cat "$W/mid-code")"
t_eq "gamma has no sanitizer report" "" "$(san_report "$G_LOG")"
G_PID=
in_before=$(( $(invocations) - NOBJ ))
t_range "killed mid-batch: $in_before of $MID objects committed" 2 $((MID - 1)) "$in_before"
curl -m 60 -fsS -o /dev/null -X DELETE "$EMU_URL/_emulator/faults"
BMAS_URL=$B_URL call mid POST /events --data-binary @"$W/mid.json"
t_eq "the batch redelivered to beta: no failures" "[]" "$(echo "$BODY" | jq -c .batchItemFailures)"
BMAS_URL=$A_URL call mid-again POST /events --data-binary @"$W/mid.json"
t_eq "and once more to alpha: no failures" "[]" "$(echo "$BODY" | jq -c .batchItemFailures)"
NOBJ=$((NOBJ + MID))
total=$((PER_OBJECT * NOBJ))
BMAS_URL=$A_URL call agg_mid GET "/aggregates?group_by=profile_type&profile_type=CrossRegion"
t_eq "every object of the batch counted once: invocations" "$NOBJ" "$(echo "$BODY" | jq .totals.invocations)"
t_eq "every object of the batch counted once: input tokens" "$total" "$(echo "$BODY" | jq .totals.input_tokens)"
t_ok "the publisher published the batch" wait_for 60 cw_is "$total"
t_eq "CloudWatch SampleCount exact after the mid-batch kill" "$NOBJ" "$(cw_stat InputTokens SampleCount InferenceProfileType=CrossRegion)"

# kill -9 the publisher: its lease is left to expire, and the other takes over.
if [ "$pub_id" = alpha ]; then
    dead=$A_PID dead_log=$A_LOG live_pid=$B_PID live_url=$B_URL live_log=$B_LOG live_id=beta
else
    dead=$B_PID dead_log=$B_LOG live_pid=$A_PID live_url=$A_URL live_log=$A_LOG live_id=alpha
fi
t_eq "the stand-by published nothing" 0 "$(grep -c '"event":"published"' "$live_log")"
flushes() { # URL: the publisher flushes the instance ran, by any outcome (/metrics)
    curl -m 30 -sS "$1/metrics" | awk '/^bmas_flushes_total\{/ { n += $2 } END { print n + 0 }'
}
t_eq "the stand-by ran no scheduled flush" 0 "$(flushes "$live_url")"
t_eq "the stand-by logged publisher_standby naming $pub_id" "$pub_id" \
    "$(grep '"event":"publisher_standby"' "$live_log" | head -1 | jq -r .holder)"
kill -KILL "$dead"
killed_at=$(now_ms)
wait "$dead" 2>/dev/null
t_eq "the killed publisher has no sanitizer report" "" "$(san_report "$dead_log")"
BMAS_PID=$live_pid BMAS_URL=$live_url BMAS_LOG=$live_log OTHER_PID=
# More objects, delivered to the survivor while the lease is still the dead one's.
for i in 5 6; do
    t_eq "object $i posted to $live_id" "200" "$(put_and_post "$P/multi-$i.json.gz" "$W/a.json.gz")"
done
NOBJ=$((NOBJ + 2))
total=$((PER_OBJECT * NOBJ))
is_publisher() { [ "$(status_of "$BMAS_URL" | jq -c '[.instance.publisher, .instance.publisher_holder]')" = "[true,\"$live_id\"]" ]; }
t_ok "$live_id took the publisher lease over" wait_for 120 is_publisher
echo "# takeover seen $(( $(now_ms) - killed_at )) ms after the kill (flush interval 4 s)"
t_eq "one publisher_active line in $live_id's log" 1 "$(grep -c '"event":"publisher_active"' "$live_log")"
t_ok "$live_id published on its schedule" wait_for 60 cw_is "$total"
call flush POST /flush
t_eq "nothing left to publish" '{"published":0,"requests":0}' "$(echo "$BODY" | jq -c '{published,requests}')"
t_eq "CloudWatch Sum exact after the takeover" "$total" "$(cw_sum)"
t_eq "CloudWatch SampleCount exact after the takeover" "$NOBJ" "$(cw_stat InputTokens SampleCount InferenceProfileType=CrossRegion)"
call agg GET "/aggregates?group_by=profile_type&profile_type=CrossRegion"
t_eq "/aggregates after the takeover" "$total" "$(echo "$BODY" | jq .totals.input_tokens)"
call ev POST /events --data @"$W/ev1.json"
t_eq "a redelivery to the survivor adds nothing" "$total" \
    "$(curl -m 30 -sS "$BMAS_URL/aggregates?group_by=profile_type&profile_type=CrossRegion" | jq .totals.input_tokens)"
call status GET /status
openapi_check
srv_stop bmas "$live_id"
t_eq "the lease was given up at the stop" 1 "$(grep -c '"event":"publisher_released"' "$live_log")"
t_done
