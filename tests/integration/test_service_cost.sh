#!/bin/bash
# Cost (BMAS_PRICES): three log objects (two `bmas sample` objects of different Regions and the
# tests/data sample) are ingested by the service with a test price file, and every row of
# /aggregates by model, profile type and source Region carries cost_usd equal to tokens x
# prices and unpriced_invocations equal to the records no price covers. The expected numbers
# are computed here, with jq, from the records themselves and the CSV: the model id and profile
# type from the modelId, the most specific price row, integer pico-dollars. Also: the same
# numbers over an explicit time range (the bucketed tables rather than the all-time one), the
# /status cost object, EstimatedCostUSD in CloudWatch (BMAS_PUBLISH_COST), `bmas ingest`'s cost line, docs/prices.csv loads, and a bad price file
# stops bmas with exit 2 and BMAS-021 naming file:line. Residency on the same objects: the
# source x inference Region matrix, and BMAS_ALLOWED_INFERENCE_REGIONS's violations (BMAS-025)
# on /status, in the log, in `bmas ingest`'s summary and as ResidencyViolations in CloudWatch
# (BMAS_PUBLISH_RESIDENCY).
set -u
. tests/tools/svc-lib.sh
svc_setup

# Test prices, columns in another order than the documented header. Sonnet 4.5 has a generic
# row, a GlobalCrossRegion one and one for eu-west-1 CrossRegion (the most specific wins);
# Nova Lite has no cache prices (a record with cache tokens is unpriced); Claude 3 Haiku and
# the application profiles have no row at all.
cat > "$W/prices.csv" << 'CSV'
# test prices, USD per million tokens
profile_type,model_id,region,input_per_mtok,output_per_mtok,cache_read_per_mtok,cache_write_per_mtok
,anthropic.claude-sonnet-4-5-20250929-v1:0,,3.3,16.5,0.33,4.125
GlobalCrossRegion,anthropic.claude-sonnet-4-5-20250929-v1:0,,3,15,0.3,3.75
CrossRegion,anthropic.claude-sonnet-4-5-20250929-v1:0,eu-west-1,3.63,18.15,0.363,4.5375
,anthropic.claude-haiku-4-5-20251001-v1:0,,1.1,5.5,0.11,1.375
,anthropic.claude-haiku-4-5-20251001-v1:0,eu-west-1,1.21,6.05,0.121,1.5125
,anthropic.claude-opus-4-5-20251101-v1:0,,5.5,27.5,0.55,6.875
GlobalCrossRegion,anthropic.claude-opus-4-5-20251101-v1:0,,5,25,0.5,6.25
,anthropic.claude-3-5-haiku-20241022-v1:0,,0.8,4,0.08,1
,amazon.nova-lite-v1:0,,0.06,0.24,,
,amazon.nova-pro-v1:0,,0.8,3.2,0.2,0.8
,meta.llama3-1-70b-instruct-v1:0,,0.72,0.72,0.72,0.72
,amazon.titan-embed-text-v2:0,,0.02,0,,
CSV

"$BINDIR/bmas" sample --records 300 --seed 41 --region us-east-1 -o "$W/s1.json.gz" 2> "$W/s1.tot"
"$BINDIR/bmas" sample --records 300 --seed 42 --region eu-west-1 -o "$W/s2.json.gz" 2> "$W/s2.tot"
t_all "two sample objects written" test -s "$W/s1.json.gz" -- test -s "$W/s2.json.gz"

BMAS_ENV="AWS_ENDPOINT_URL=$EMU_URL AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test BMAS_FLUSH_INTERVAL=0 AWS_EC2_METADATA_DISABLED=true BMAS_PRICES=$W/prices.csv BMAS_PUBLISH_COST=true BMAS_ALLOWED_INFERENCE_REGIONS=us-east-1,eu-west-1,eu-central-1 BMAS_PUBLISH_RESIDENCY=true"
bmas_start || exit 1
codes=""
post() { # KEY FILE: uploads, then POSTs its S3 event (kept for the OpenAPI check)
    local etag ev
    etag=$(s3_upload logs "$1" "$2")
    ev=$(jq -c --arg k "$(form_key "$1")" --arg e "$etag" '.Records[0].s3.bucket.name = "logs"
        | .Records[0].s3.object.key = $k | .Records[0].s3.object.eTag = $e' "$BM_TEST_DATA/s3-event.json")
    call "ev$3" POST /events --data "$ev"
    codes="$codes $STATUS"
}
post "$(jq -r .key "$W/s1.tot")" "$W/s1.json.gz" 1
post "$(jq -r .key "$W/s2.tot")" "$W/s2.json.gz" 2
post "$P/20260420T001731Z_cost.json.gz" "$W/a.json.gz" 3
t_eq "three objects posted" " 200 200 200" "$codes"

# The expected rows, from the records and the CSV only.
gunzip -c "$W/s1.json.gz" "$W/s2.json.gz" "$W/a.json.gz" > "$W/records.jsonl"
expected() {
    jq -n -S -c --rawfile csv "$W/prices.csv" '
      ($csv | split("\n") | map(select(length > 0 and (startswith("#") | not)) | split(","))) as $t
      | ($t[0]) as $h
      | [$t[1:][] | [$h, .] | transpose | map({(.[0]): .[1]}) | add] as $rows
      | def pico: if . == "" then null else (tonumber * 1000000 | round) end;
        def split_profile:
          if startswith("global.") then {t: "GlobalCrossRegion", id: ltrimstr("global.")}
          elif test("^(us|eu|apac|us-gov|jp|au|ca)\\.") then {t: "CrossRegion", id: sub("^[a-z-]+\\."; "")}
          else {t: "OnDemand", id: .} end;
        def classify:
          if startswith("arn:") then (split(":") | .[5:] | join(":")) as $r
            | if ($r | startswith("foundation-model/")) then {t: "OnDemand", id: ($r | ltrimstr("foundation-model/"))}
              elif ($r | startswith("application-inference-profile/")) then {t: "Application", id: ($r | ltrimstr("application-inference-profile/"))}
              else ($r | ltrimstr("inference-profile/") | split_profile) end
          else split_profile end;
        def price($id; $t; $src):
          [$rows[] | select(.model_id == $id and (.region == "" or .region == $src)
                            and (.profile_type == "" or .profile_type == $t))
           | {s: ((if .region != "" then 2 else 0 end) + (if .profile_type != "" then 1 else 0 end)),
              p: [.input_per_mtok, .output_per_mtok, .cache_read_per_mtok, .cache_write_per_mtok | pico]}]
          | sort_by(.s) | last | .p;
      [inputs | (.modelId | classify) as $c
        | [.input.inputTokenCount // 0, .output.outputTokenCount // 0,
           .input.cacheReadInputTokenCount // 0, .input.cacheWriteInputTokenCount // 0] as $tok
        | price($c.id; $c.t; .region) as $p
        | {model_id: $c.id, profile_type: $c.t, source_region: .region,
           pico: (if $p == null or ([range(4) | select($tok[.] > 0 and $p[.] == null)] | length > 0)
                  then null else ([range(4) | $tok[.] * ($p[.] // 0)] | add) end)}]
      | group_by([.model_id, .profile_type, .source_region])
      | map({model_id: .[0].model_id, profile_type: .[0].profile_type, source_region: .[0].source_region,
             micro: (((([.[] | .pico // 0] | add) + 500000) / 1000000) | floor),
             unpriced: (map(select(.pico == null)) | length)})
      | sort_by(tostring) | .[]' "$W/records.jsonl"
}
got_rows() { # the /aggregates document on stdin, in expected's shape
    jq -S -c '[.rows[] | {model_id, profile_type, source_region,
        micro: (.cost_usd * 1000000 | round), unpriced: .unpriced_invocations}] | sort_by(tostring) | .[]'
}
expected > "$W/want"
t_all "the expected rows include priced and unpriced ones" \
    test "$(jq -s 'map(select(.micro > 0)) | length' "$W/want")" -ge 8 -- \
    test "$(jq -s 'map(.unpriced) | add' "$W/want")" -ge 3
G=model_id,profile_type,source_region
call rows GET "/aggregates?group_by=$G"
echo "$BODY" | got_rows > "$W/got"
t_ok "every row: cost_usd = tokens x prices, unpriced_invocations counted ($(wc -l < "$W/want") rows)" \
    cmp -s "$W/want" "$W/got"
cmp -s "$W/want" "$W/got" || diff "$W/want" "$W/got" | head -10 | sed 's/^/#   /'
from=$(date -u -d "@$((SVC_NOW - 3 * 86400))" +%Y-%m-%dT%H:%M:%SZ)
to=$(date -u -d "@$((SVC_NOW + 86400))" +%Y-%m-%dT%H:%M:%SZ)
call range GET "/aggregates?group_by=$G&from=$from&to=$to"
t_eq "the same over an explicit range (minute, hourly and daily rows)" "$(cat "$W/want")" \
    "$(echo "$BODY" | got_rows)"
call bymin GET "/aggregates?group_by=minute,$G&from=$from&to=$to"
t_eq "by minute: unpriced invocations add up to the same" \
    "$(jq -s 'map(.unpriced) | add' "$W/want")" "$(echo "$BODY" | jq '[.rows[].unpriced_invocations] | add')"
call totals GET "/aggregates?group_by="
tot_micro=$(echo "$BODY" | jq '.totals.cost_usd * 1000000 | round')
t_range "totals: cost_usd within rounding of the rows' sum" \
    "$(( $(jq -s 'map(.micro) | add' "$W/want") - $(wc -l < "$W/want") ))" \
    "$(( $(jq -s 'map(.micro) | add' "$W/want") + $(wc -l < "$W/want") ))" "$tot_micro"
t_eq "totals: unpriced_invocations" "$(jq -s 'map(.unpriced) | add' "$W/want")" \
    "$(echo "$BODY" | jq .totals.unpriced_invocations)"

call status GET /status
t_eq "/status cloudwatch budget: 7 metrics per series (5, EstimatedCostUSD, ResidencyViolations)" \
    "7" "$(echo "$BODY" | jq .cloudwatch.metrics_per_series)"
t_eq "/status cost: the totals' cost and unpriced invocations" \
    "$(echo "$BODY" | jq -c '[(.cost.cost_usd * 1000000 | round), .cost.unpriced_invocations]')" \
    "[$tot_micro,$(jq -s 'map(.unpriced) | add' "$W/want")]"
t_eq "/status cost: the unpriced models, most unpriced first" \
    "$(jq -s -c 'map(select(.unpriced > 0)) | group_by(.model_id)
        | map({m: .[0].model_id, n: (map(.unpriced) | add)}) | sort_by(-.n, .m) | map(.m)' "$W/want")" \
    "$(echo "$BODY" | jq -c .cost.unpriced_models)"
# Residency: the source x inference Region matrix, and the records served outside
# BMAS_ALLOWED_INFERENCE_REGIONS (global profiles never count), from the records themselves.
allowed='["us-east-1","eu-west-1","eu-central-1"]'
call matrix GET "/aggregates?group_by=source_region,inference_region"
t_eq "group_by=source_region,inference_region: the records' matrix" \
    "$(jq -s -c 'group_by([.region, (.inferenceRegion // .region)])
        | map([.[0].region, (.[0].inferenceRegion // .[0].region), length])' "$W/records.jsonl")" \
    "$(echo "$BODY" | jq -c '[.rows[] | [.source_region, .inference_region, .invocations]]')"
viol() { # the records of stdin served outside the list, global profiles excepted
    jq -s --argjson a "$allowed" '[.[] | select((.modelId | test("(^|/)global\\.") | not)
        and ((.inferenceRegion // .region) as $r | $a | index($r) | not))] | length'
}
want_viol=$(viol < "$W/records.jsonl")
call status0 GET /status
t_all "residency violations: some, and not every record ($want_viol)" \
    test "$want_viol" -gt 0 -- test "$want_viol" -lt "$(wc -l < "$W/records.jsonl")"
t_eq "/status residency: the list and the violations (BMAS-025 too)" \
    "{\"allowed_inference_regions\":$allowed,\"violations\":$want_viol} $want_viol" \
    "$(echo "$BODY" | jq -c .residency) $(echo "$BODY" | jq '.errors["BMAS-025"]')"
t_eq "one residency_violation line (BMAS-025) per object, with its count" \
    "$(for f in s1 s2 a; do gunzip -c "$W/$f.json.gz" | viol; done | sort -n | tr '\n' ' ')" \
    "$(jq -r 'select(.event == "residency_violation" and .errorCode == "BMAS-025") | .violations' "$BMAS_LOG" | sort -n | tr '\n' ' ')"
metrics=$(curl -m 30 -sS "$BMAS_URL/metrics")
t_eq "/metrics: estimated cost, unpriced invocations and residency violations" \
    "$(echo "$BODY" | jq -r '.cost.cost_usd') $(jq -s 'map(.unpriced) | add' "$W/want") $want_viol" \
    "$(echo "$metrics" | awk '$1 == "bmas_estimated_cost_usd_total" || $1 == "bmas_unpriced_invocations_total" || $1 == "bmas_residency_violations_total" { printf "%s%s", sep, $2; sep = " " }')"
call flush POST /flush
t_eq "flushed to CloudWatch" "200" "$STATUS"
# BMAS_PUBLISH_COST=true: EstimatedCostUSD per dimension set, the cost of its series in
# dollars. CloudWatch sums values rounded to the micro-dollar per published group (a few per
# minute), so it may differ from /aggregates by a few micro-dollars, never by a price.
# BMAS_PUBLISH_RESIDENCY=true: ResidencyViolations per dimension set; by profile type they add
# up to the records' violations, none of them global.
n=0
for t in OnDemand CrossRegion Application; do
    n=$(( n + $(cw_stat ResidencyViolations Sum InferenceProfileType="$t") ))
done
t_eq "ResidencyViolations by profile type: the records' violations, none global" \
    "$want_viol 0" "$n $(cw_stat ResidencyViolations Sum InferenceProfileType=GlobalCrossRegion)"
call bytype GET "/aggregates?group_by=profile_type"
for t in CrossRegion GlobalCrossRegion OnDemand; do
    want=$(echo "$BODY" | jq --arg t "$t" '.rows[] | select(.profile_type == $t) | .cost_usd')
    got=$(cw_stat EstimatedCostUSD Sum InferenceProfileType="$t")
    t_ok "EstimatedCostUSD of $t: $got, /aggregates $want" \
        awk -v g="$got" -v w="$want" 'BEGIN { d = g - w; exit !(w > 0 && d < 0.0001 && d > -0.0001) }'
done
openapi_check
srv_stop

# bmas ingest: the same objects, the cost line before the summary.
out=$(BMAS_PRICES="$W/prices.csv" "$BINDIR/bmas" ingest --json --group-by "$G" \
    "$W/s1.json.gz" "$W/s2.json.gz" "$W/a.json.gz" 2> "$W/ingest.err")
t_eq "bmas ingest: every row the same" "$(cat "$W/want")" "$(echo "$out" | got_rows)"
t_ok "bmas ingest: no residency check without the list" test "$(grep -c BMAS-025 "$W/ingest.err")" = 0
t_ok "bmas ingest: prints the cost" grep -q "^cost: $(echo "$out" | jq -r .totals.cost_usd) USD for the priced invocations; $(jq -s 'map(.unpriced) | add' "$W/want") invocation(s) unpriced" "$W/ingest.err"
out=$(BMAS_ALLOWED_INFERENCE_REGIONS=us-east-1,eu-west-1,eu-central-1 "$BINDIR/bmas" ingest \
    "$W/s1.json.gz" "$W/s2.json.gz" "$W/a.json.gz" 2>&1)
t_ok "bmas ingest: the residency violations in its summary" grep -q "BMAS-025 x$want_viol" <<< "$out"
BMAS_ALLOWED_INFERENCE_REGIONS=us-east-1,eu_west "$BINDIR/bmas" ingest "$W/a.json.gz" > /dev/null 2> "$W/badr.err"
t_all "a malformed Region in the list: exit 2, named" test "$?" = 2 -- \
    grep -q "BMAS_ALLOWED_INFERENCE_REGIONS" "$W/badr.err"
out=$(BMAS_PRICES=docs/prices.csv "$BINDIR/bmas" ingest "$W/a.json.gz" 2>&1)
t_ok "docs/prices.csv loads and prices the sample" grep -q '^cost: 0\.[0-9]* USD' <<< "$out"

# A bad price file: exit 2, BMAS-021, the file and line.
printf '# prices\nmodel_id,input_per_mtok,output_per_mtok,cache_read_per_mtok,cache_write_per_mtok\nm1,1,2,,\nm2,1.5,abc,,\n' > "$W/bad.csv"
BMAS_PRICES="$W/bad.csv" "$BINDIR/bmas" ingest "$W/a.json.gz" > /dev/null 2> "$W/bad.err"
t_eq "bmas ingest with a bad price file: exit 2" "2" "$?"
t_ok "... BMAS-021 naming file:line" grep -q "BMAS-021 $W/bad.csv:4: output_per_mtok" "$W/bad.err"
BMAS_PRICES="$W/bad.csv" timeout 30 "$BINDIR/bmas" serve --listen 127.0.0.1:0 --db "$W/bad.db" \
    > /dev/null 2> "$W/serve.err"
t_eq "bmas serve with a bad price file: exit 2" "2" "$?"
t_ok "... BMAS-021 naming file:line" grep -q "BMAS-021 $W/bad.csv:4:" "$W/serve.err"
printf 'model_id,input_per_mtok\n' > "$W/bad2.csv"
BMAS_PRICES="$W/bad2.csv" "$BINDIR/bmas" ingest "$W/a.json.gz" > /dev/null 2> "$W/bad2.err"
t_all "a header without the required columns: exit 2, named" test "$?" = 2 -- \
    grep -q "BMAS-021 $W/bad2.csv:1: the header lacks output_per_mtok" "$W/bad2.err"
t_done
