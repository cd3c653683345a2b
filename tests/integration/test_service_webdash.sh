#!/bin/bash
# GET /dashboard (issue 13): the page bmas serves needs no token itself (its data routes still
# do), carries a CSP that allows exactly its inline script and style by hash, and answers 304
# to its ETag. In headless Chromium (Debian's, driven by puppeteer-core) it loads with no console
# error and no failed request, asks nothing of any host but bmas, takes the token from #token=,
# refreshes itself, and its charts, matrix, top models and tiles hold what /aggregates and
# /status say (fetched here with curl, bucketed here with jq). Screenshot: build/dashboard.png.
set -u
. tests/tools/svc-lib.sh
svc_setup

TOKEN=dash-$$-secret
AUTH=(-H "Authorization: Bearer $TOKEN")
BMAS_ENV="AWS_ENDPOINT_URL=$EMU_URL AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test BMAS_FLUSH_INTERVAL=0 AWS_EC2_METADATA_DISABLED=true BMAS_AUTH_TOKEN=$TOKEN BMAS_ATTRIBUTION_KEYS=team,app BMAS_PRICES=docs/prices.csv"
bmas_start || exit 1

post_obj() { # NAME KEY FILE: uploads, then POSTs its S3 event with the token; sets $STATUS
    local etag ev
    etag=$(s3_upload logs "$2" "$3")
    ev=$(jq -c --arg k "$(form_key "$2")" --arg e "$etag" '.Records[0].s3.bucket.name = "logs"
        | .Records[0].s3.object.key = $k | .Records[0].s3.object.eTag = $e' "$BM_TEST_DATA/s3-event.json")
    call "$1" POST /events "${AUTH[@]}" -H 'Content-Type: application/json' --data-binary "$ev"
}
# The repository's sample (an hour ago) and two generated objects of the last hour from other
# Regions: eleven models each, so the chart by model has more than its eight and an "other".
post_obj ev-sample "$P/sample.json.gz" "$W/a.json.gz"
t_eq "the sample posted" 200 "$STATUS"
for r in eu-west-1 ap-southeast-2; do
    "$BINDIR/bmas" sample --records 300 --seed 13 --region "$r" --start $((SVC_NOW - 3000)) \
        --span 2400 -o "$W/$r.json.gz" --totals "$W/gen.jsonl"
    post_obj "ev-$r" "$(tail -1 "$W/gen.jsonl" | jq -r .key)" "$W/$r.json.gz"
    t_eq "a generated object from $r posted" 200 "$STATUS"
done
call flush POST /flush "${AUTH[@]}"
t_eq "flushed (so /status has a last flush)" 200 "$STATUS"

# --- The page over HTTP.
call page GET /dashboard
hdr() { sed -n "s/^$1: *//Ip" "$W/resp/page.hdr" | tr -d '\r'; }
t_eq "GET /dashboard without a token: 200" 200 "$STATUS"
t_eq "  text/html in UTF-8" "text/html; charset=utf-8" "$(hdr Content-Type)"
t_eq "  revalidated, not stored blind" "no-cache" "$(hdr Cache-Control)"
t_eq "  nosniff" "nosniff" "$(hdr X-Content-Type-Options)"
csp=$(hdr Content-Security-Policy)
b64sha() { openssl dgst -sha256 -binary | openssl base64 -A; }
# The inline elements' text, as the browser hashes it (everything between the tags).
inline() { python3 -c 'import re, sys; print(re.search(r"<%s>(.*?)</%s>" % (sys.argv[1], sys.argv[1]), open(sys.argv[2], encoding="utf-8").read(), re.S).group(1), end="")' "$1" "$W/resp/page.body"; }
t_eq "  CSP: nothing by default, scripts only by the hash of the page's one script" \
    "default-src 'none'|script-src 'sha256-$(inline script | b64sha)'" \
    "$(tr ';' '\n' <<<"$csp" | sed 's/^ *//' | grep -E '^(default|script)-src' | paste -sd'|')"
t_eq "  CSP: styles only by the hash of the page's one style; fetches to itself only" \
    "style-src 'sha256-$(inline style | b64sha)'|connect-src 'self'" \
    "$(tr ';' '\n' <<<"$csp" | sed 's/^ *//' | grep -E '^(style|connect)-src' | paste -sd'|')"
t_eq "  one inline script, one inline style, no inline handler, no external source" "1 1 0 0" \
    "$(grep -o '<script' "$W/resp/page.body" | wc -l) $(grep -o '<style' "$W/resp/page.body" | wc -l) \
$(grep -ciE '<[a-z]+[^>]* on[a-z]+=' "$W/resp/page.body") $(grep -ciE '(src|href)="(https?:)?//' "$W/resp/page.body")"
t_ok "  holds uPlot (embedded at build time)" grep -q 'uPlot' "$W/resp/page.body"
etag=$(hdr ETag)
t_ok "  an ETag ($etag)" grep -qE '^"[0-9a-f]{32}"$' <<<"$etag"
cond() { # IF-NONE-MATCH: status and body length of a conditional GET
    curl -m 60 -sS -o "$W/cond.body" -w '%{http_code} %{size_download}' -H "If-None-Match: $1" "$BMAS_URL/dashboard"
}
t_eq "If-None-Match with its ETag: 304, no body" "304 0" "$(cond "$etag")"
t_eq "  weak, in a list: 304" "304 0" "$(cond "\"x\", W/$etag")"
t_eq "  *: 304" "304 0" "$(cond '*')"
t_eq "  another ETag: 200 and the page" "200 $(wc -c <"$W/resp/page.body")" "$(cond '"0123"')"
t_eq "HEAD /dashboard: 200" 200 "$(curl -m 60 -sS -I -o /dev/null -w '%{http_code}' "$BMAS_URL/dashboard")"
t_eq "POST /dashboard: 405" 405 "$(curl -m 60 -sS -X POST -o /dev/null -w '%{http_code}' "$BMAS_URL/dashboard")"
t_eq "the data routes still want the token" "401 401" \
    "$(curl -m 60 -s -o /dev/null -w '%{http_code}' "$BMAS_URL/status") $(curl -m 60 -s -o /dev/null -w '%{http_code}' "$BMAS_URL/aggregates")"

# --- The page in Chromium.
OUT=$W/page.json
mkdir -p build
rm -f build/dashboard.png
t_ok "test peers installed (puppeteer-core)" peers_install
t_ok "Chromium opened the page, waited for a refresh, took a screenshot" \
    node tests/peers/webdash_check.js "$BMAS_URL/dashboard#range=24h&token=$TOKEN" \
    "$BMAS_URL/dashboard" "$OUT" build/dashboard.png
[ -s "$OUT" ] || echo '{}' >"$OUT"
t_eq "no console error" "[]" "$(jq -c '.consoleErrors' "$OUT")"
t_eq "no failed request" "[]" "$(jq -c '.failed' "$OUT")"
t_eq "every request went to bmas on 127.0.0.1" "[]" \
    "$(jq -c --arg u "$BMAS_URL/" '[.requests[]? | select(startswith($u) | not)]' "$OUT")"
t_eq "the page once, then /aggregates and /status only, /status twice (it refreshed itself)" \
    "aggregates dashboard=1 status=2" \
    "$(jq -r --arg u "$BMAS_URL/" '.requests[]? | ltrimstr($u) | sub("[?#].*"; "")' "$OUT" | sort | uniq -c |
        awk '{ printf "%s%s", sep, $2 == "aggregates" ? $2 : $2 "=" $1; sep = " " }')"
t_eq "the token left the address bar; no error shown; state ok" '"#range=24h" "" "ok"' \
    "$(jq -c '.hash, .error, .state' "$OUT" | paste -sd' ')"
t_ok "screenshot saved: build/dashboard.png" grep -q 'PNG' <(head -c 8 build/dashboard.png 2>/dev/null)

# The page's window, fetched again with curl: what each part of it must hold.
FROM=$(jq -r '.from // empty' "$OUT")
TO=$(jq -r '.to // empty' "$OUT")
STEP=$(jq -r '.step // 0' "$OUT")
t_all "the window: 24 h of 15 min buckets ending after now" test "$STEP" = 900 -- \
    test $(( $(date -u -d "$TO" +%s) - $(date -u -d "$FROM" +%s) )) = 86400 -- test "$(date -u -d "$TO" +%s)" -gt "$SVC_NOW"
agg() { # NAME GROUP_BY: /aggregates over the page's window into $W/NAME.json
    call "$1" GET "/aggregates?group_by=$2&from=$FROM&to=$TO" "${AUTH[@]}"
    cp "$W/resp/$1.body" "$W/$1.json"
}
agg by_type minute,profile_type
agg by_model minute,model_id
agg matrix source_region,inference_region
agg models model_id
agg by_team attr.team
agg by_app attr.app
call status GET /status "${AUTH[@]}"
cp "$W/resp/status.body" "$W/status.json"
FROM_S=$(date -u -d "$FROM" +%s)
TOK='def tok: .input_tokens + .output_tokens + .cache_read_input_tokens + .cache_write_input_tokens;'
# FILE KEY METRIC TOP: {series: {bucket index: value}} from /aggregates rows, the keys beyond the
# TOP with the most tokens (0: none) summed as "other"; zero buckets left out.
want() {
    jq -cS --arg k "$2" --arg m "$3" --argjson top "$4" --argjson from "$FROM_S" --argjson step "$STEP" "$TOK"'
        def val: if $m == "tokens" then tok elif $m == "invocations" then .invocations else .cost_usd end;
        .rows as $r
        | ([$r | group_by(.[$k])[] | {k: .[0][$k], t: (map(tok) | add)}] | sort_by([-.t, .k])
           | if $top > 0 then .[:$top] else . end | map(.k)) as $keep
        | [$r[] | .[$k] as $n | {s: (if any($keep[]; . == $n) then $n else "other" end),
             i: (((.minute | fromdateiso8601) - $from) / $step | floor | tostring), v: val}]
        | group_by(.s) | map({key: .[0].s, value: (group_by(.i) | map({key: .[0].i, value: (map(.v) | add)})
             | map(select(.value != 0)) | from_entries)}) | from_entries' "$W/$1"
}
have() { # CHART-ID: the same shape from the uPlot instance's own data
    jq -cS --arg id "$1" '.plots[$id] as $p | if $p == null then null else
        [range(0; $p.labels | length) as $i | {key: $p.labels[$i], value: ([$p.data[$i + 1]
         | to_entries[] | select(.value != 0) | {key: (.key | tostring), value}] | from_entries)}] | from_entries end' "$OUT"
}
t_eq "the x axis: the window's buckets" "$FROM_S $STEP 96" \
    "$(jq -r '.plots["profile_type-tokens"].data[0] // [] | "\(.[0]) \(.[1] - .[0]) \(length)"' "$OUT")"
for m in tokens invocations; do
    t_eq "chart: $m by profile type = /aggregates?group_by=minute,profile_type" \
        "$(want by_type.json profile_type $m 0)" "$(have profile_type-$m)"
    t_eq "chart: $m by model (top 8, the rest as other) = /aggregates?group_by=minute,model_id" \
        "$(want by_model.json model_id $m 8)" "$(have model_id-$m)"
done
t_eq "  (the data has more than 8 models: \"other\" is drawn)" true \
    "$(jq '.plots["model_id-tokens"].labels | index("other") != null' "$OUT")"
t_range "  (the data spans several buckets)" 2 96 "$(jq '[.rows[].minute | fromdateiso8601 | . / 900 | floor] | unique | length' "$W/by_type.json")"

t_eq "matrix cells = /aggregates?group_by=source_region,inference_region" \
    "$(jq -cS "$TOK"'[.rows[] | {source: .source_region, inference: .inference_region, invocations: (.invocations | tostring), tokens: (tok | tostring)}] | sort' "$W/matrix.json")" \
    "$(jq -cS '[.matrix[] | select(.invocations != "0")] | sort' "$OUT")"
t_range "  (several sources and inference Regions)" 4 999 "$(jq '.rows | length' "$W/matrix.json")"
t_eq "top models = /aggregates?group_by=model_id, by tokens" \
    "$(jq -c "$TOK"'[.rows[] | [.model_id, .invocations, tok]] | sort_by([-.[2], .[0]]) | .[:15]' "$W/models.json")" \
    "$(jq -c '[.models[] | [.model, (.invocations | tonumber), (.tokens | tonumber)]]' "$OUT")"
t_eq "by caller: one table per BMAS_ATTRIBUTION_KEYS key, = /aggregates?group_by=attr.<key>, by tokens" \
    "$(for k in team app; do jq -c --arg k "$k" "$TOK"'[.rows[] | [$k, .["attr." + $k], .invocations, tok]] | sort_by([-.[3], .[1]]) | .[:15][]' "$W/by_$k.json"; done)" \
    "$(jq -c '.attribution[] | [.key, .attrValue, (.invocations | tonumber), (.tokens | tonumber)]' "$OUT")"
t_range "  (the generated objects carry several teams)" 2 99 "$(jq '.rows | length' "$W/by_team.json")"
t_eq "tiles: invocations and tokens = the totals" \
    "$(jq -r "$TOK"'"\(.totals.invocations) \(.totals | tok)"' "$W/models.json")" \
    "$(jq -r '"\(.tiles["t-invocations"].value) \(.tiles["t-tokens"].value)"' "$OUT")"
t_eq "tiles: backlog, errors, last flush = /status" \
    "$(jq -r '"\(.publish.pending) \([.errors[]] | add // 0) \(.publish.last_flush)"' "$W/status.json")" \
    "$(jq -r '"\(.tiles["s-backlog"].value) \(.tiles["s-errors"].value) \(.tiles["s-flush"].value)"' "$OUT")"
# Cost: drawn when bmas has a price file (/status cost.prices; this script gives it
# docs/prices.csv), "no prices" otherwise.
if jq -e '.cost.prices' "$W/status.json" >/dev/null; then
    t_range "  (some of the data is priced: cost in micro-dollars)" 1 1000000000000 "$(jq '.totals.cost_usd * 1e6 | round' "$W/models.json")"
    t_eq "cost tile = totals.cost_usd" "$(jq '.totals.cost_usd' "$W/models.json")" "$(jq -r '.tiles["t-cost"].value' "$OUT")"
    t_eq "chart: cost by profile type = /aggregates (to the micro-dollar)" \
        "$(want by_type.json profile_type cost 0 | jq -cS 'map_values(map_values(. * 1e6 | round))')" \
        "$(have profile_type-cost | jq -cS 'map_values(map_values(. * 1e6 | round))')"
else
    t_eq "no price file: the tile and both cost charts say no prices" \
        '"no prices" "no prices" "no prices"' \
        "$(jq -c '.tiles["t-cost"].text, .nodata["profile_type-cost"], .nodata["model_id-cost"]' "$OUT" | paste -sd' ')"
fi

# Without the token (a fresh tab): the page loads, asks, and says what is missing.
t_eq "without #token=: the page says it needs the token" true \
    "$(jq '.bare.error | test("needs its token")' "$OUT")"
t_eq "  and only the data requests failed, with 401" "[]" \
    "$(jq -c '[.bare.failed[]? | select(test("/(aggregates|status)[^ ]*: HTTP 401$") | not)]' "$OUT")"

openapi_check "${AUTH[@]}"
srv_stop bmas
srv_stop emu
t_done
