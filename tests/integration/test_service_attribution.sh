#!/bin/bash
# Attribution (BMAS_ATTRIBUTION_KEYS): `bmas sample` writes requestMetadata team and app; the
# service, keeping at most BMAS_ATTRIBUTION_MAX_VALUES=2 values per key, answers
# /aggregates?group_by=attr.team with the two teams met first under their names and every other
# team folded into "other", invocation counts exact, computed here from the records; the
# caller's identity.arn works as a key too; an unknown attr.<key> is refused.
set -u
. tests/tools/svc-lib.sh
svc_setup

"$BINDIR/bmas" sample --records 300 --seed 51 --region us-east-1 -o "$W/s1.json.gz" 2> "$W/s1.tot"
"$BINDIR/bmas" sample --records 200 --seed 52 --region us-east-1 -o "$W/s2.json.gz" 2> "$W/s2.tot"
BMAS_ENV="AWS_ENDPOINT_URL=$EMU_URL AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test BMAS_FLUSH_INTERVAL=0 AWS_EC2_METADATA_DISABLED=true BMAS_ATTRIBUTION_KEYS=team,identity BMAS_ATTRIBUTION_MAX_VALUES=2"
bmas_start || exit 1
codes=""
for f in s1 s2; do
    etag=$(s3_upload logs "$(jq -r .key "$W/$f.tot")" "$W/$f.json.gz")
    ev=$(jq -c --arg k "$(form_key "$(jq -r .key "$W/$f.tot")")" --arg e "$etag" '.Records[0].s3.bucket.name = "logs"
        | .Records[0].s3.object.key = $k | .Records[0].s3.object.eTag = $e' "$BM_TEST_DATA/s3-event.json")
    call "ev-$f" POST /events --data "$ev"
    codes="$codes $STATUS"
done
t_eq "two objects posted, one after the other" " 200 200" "$codes"
gunzip -c "$W/s1.json.gz" "$W/s2.json.gz" > "$W/records.jsonl"

# The teams in the order the records first name them: the first two keep their names.
want=$(jq -s -c '(reduce .[].requestMetadata.team as $t ([]; if index([$t]) then . else . + [$t] end)) as $order
    | [.[] | .requestMetadata.team as $t | if ($order | index($t)) < 2 then $t else "other" end]
    | group_by(.) | map([.[0], length])' "$W/records.jsonl")
t_ok "the data has more than two teams" test "$(jq -s '[.[].requestMetadata.team] | unique | length' "$W/records.jsonl")" -gt 2
call team GET "/aggregates?group_by=attr.team"
t_eq "group_by=attr.team: two teams by name, the rest folded into other" "$want" \
    "$(echo "$BODY" | jq -c '[.rows[] | [."attr.team", .invocations]]')"
t_eq "the group_by names the field attr.team" '["attr.team"]' "$(echo "$BODY" | jq -c .group_by)"
call tm GET "/aggregates?group_by=attr.team,model_id"
t_eq "attr.team with model_id: the same invocations per team" "$want" \
    "$(echo "$BODY" | jq -c '[.rows | group_by(."attr.team")[] | [.[0]."attr.team", (map(.invocations) | add)]]')"
# identity (identity.arn): every record has its own session, so two names and other.
call id GET "/aggregates?group_by=attr.identity"
t_eq "attr.identity: two caller ARNs and other" "3 $(wc -l < "$W/records.jsonl")" \
    "$(echo "$BODY" | jq -r '"\(.rows | length) \([.rows[].invocations] | add)"')"
t_eq "... the last row is other" "other" "$(echo "$BODY" | jq -r '.rows[-1]."attr.identity"')"
call bad GET "/aggregates?group_by=attr.app"
t_eq "attr.app is no configured key: 400 BMAS-011" "400 BMAS-011" "$STATUS $(echo "$BODY" | jq -r .errorCode)"
call totals GET "/aggregates?group_by="
t_eq "totals unchanged by attribution" "$(wc -l < "$W/records.jsonl")" "$(echo "$BODY" | jq .totals.invocations)"
call status GET /status
t_eq "/status answers" "200" "$STATUS"
call flush POST /flush
t_eq "flush (attribution does not reach CloudWatch's dimensions)" "200" "$STATUS"
openapi_check
srv_stop

# bmas ingest reads the same keys (no cap: it keeps no state).
out=$(BMAS_ATTRIBUTION_KEYS=app "$BINDIR/bmas" ingest --json --group-by attr.app "$W/s1.json.gz" "$W/s2.json.gz" 2>/dev/null)
t_eq "bmas ingest --group-by attr.app: the records' apps" \
    "$(jq -s -c '[.[].requestMetadata.app] | group_by(.) | map([.[0], length])' "$W/records.jsonl")" \
    "$(echo "$out" | jq -c '[.rows[] | [."attr.app", .invocations]]')"
BMAS_ATTRIBUTION_KEYS=a,b,c,d "$BINDIR/bmas" ingest "$W/s1.json.gz" > /dev/null 2> "$W/err4"
t_all "four keys: exit 2, named" test "$?" = 2 -- grep -q "BMAS_ATTRIBUTION_KEYS: at most 3 keys" "$W/err4"
t_done
