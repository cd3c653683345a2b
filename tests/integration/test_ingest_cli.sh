# bmas ingest end to end: real files (plain, gzip, multi-member), exit codes, BMAS codes on
# stderr, --json in the /aggregates shape, and a failed source contributing nothing.
. tests/tools/tap.sh
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
S="$BM_TEST_DATA/bedrock-log-sample.jsonl"
BMAS="$BINDIR/bmas"

gzip -c "$S" > "$T/a.json.gz"
out=$("$BMAS" ingest --json "$T/a.json.gz" 2>"$T/err")
expect_eq "gzip sample exit 0" "$?" "0"
expect_eq "exact totals" "$(echo "$out" | jq -c .totals)" \
    '{"invocations":4,"input_tokens":269,"output_tokens":332,"cache_read_input_tokens":24479,"cache_write_input_tokens":225913,"cost_usd":0,"unpriced_invocations":4}'
expect_eq "default group_by" "$(echo "$out" | jq -c .group_by)" \
    '["model_id","profile_type","source_region","inference_region"]'
expect_eq "global row" "$(echo "$out" | jq -c '.rows[] | select(.profile_type=="GlobalCrossRegion") | [.model_id,.inference_region,.cache_read_input_tokens]')" \
    '["anthropic.claude-opus-4-5-20251101-v1:0","ap-southeast-2",24479]'
expect_eq "from/to span the buckets" "$(echo "$out" | jq -c '[.from,.to]')" \
    '["2026-04-20T00:17:00Z","2026-04-20T00:20:00Z"]'

# Same object through stdin, as a plain file, and as three gzip members: same numbers.
p=$("$BMAS" ingest --json - < "$S" 2>/dev/null | jq -c .totals)
expect_eq "stdin plain" "$p" "$(echo "$out" | jq -c .totals)"
cat "$T/a.json.gz" "$T/a.json.gz" "$T/a.json.gz" > "$T/three.json.gz"
expect_eq "multi-member gzip" "$("$BMAS" ingest --json "$T/three.json.gz" 2>/dev/null | jq .totals.invocations)" "12"

# Grouping by minute and operation.
g=$("$BMAS" ingest --json --group-by minute,operation "$S" 2>/dev/null | jq -c '[.rows[] | [.minute,.operation,.invocations]]')
expect_eq "group by minute,operation" "$g" \
    '[["2026-04-20T00:17:00Z","Converse",1],["2026-04-20T00:17:00Z","InvokeModelWithResponseStream",1],["2026-04-20T00:18:00Z","ConverseStream",1],["2026-04-20T00:19:00Z","InvokeModel",1]]'
b=$(BMAS_BUCKET_SECONDS=3600 "$BMAS" ingest --json --group-by minute "$S" 2>/dev/null | jq -c '[.rows[] | [.minute,.invocations]]')
expect_eq "hour buckets" "$b" '[["2026-04-20T00:00:00Z",4]]'

# Application profile mapped to its model through BMAS_APP_PROFILE_MAP.
m=$(BMAS_APP_PROFILE_MAP=a1b2c3d4e5f6=anthropic.claude-sonnet-4-20250514-v1:0 "$BMAS" ingest --json --group-by profile_type,model_id "$S" 2>/dev/null | jq -r '.rows[] | select(.profile_type=="Application") | .model_id')
expect_eq "app profile mapped" "$m" "anthropic.claude-sonnet-4-20250514-v1:0"

# Switches from the spec.
n=$(ENABLE_CROSS_REGION_DETECTION=false "$BMAS" ingest --json --group-by profile_type "$S" 2>/dev/null | jq -c '[.rows[] | [.profile_type,.invocations]]')
expect_eq "cross-region detection off" "$n" '[["Application",1],["OnDemand",3]]'
n=$(ENABLE_GLOBAL_CROSS_REGION=false "$BMAS" ingest --json --group-by profile_type "$S" 2>/dev/null | jq -c '[.rows[] | [.profile_type,.invocations]]')
expect_eq "global folded into cross-region" "$n" '[["Application",1],["CrossRegion",2],["OnDemand",1]]'

# A truncated object fails (exit 1, BMAS-003) and counts nothing; the good one still counts.
head -c 300 "$T/a.json.gz" > "$T/cut.json.gz"
out=$("$BMAS" ingest --json "$T/a.json.gz" "$T/cut.json.gz" 2>"$T/err")
expect_eq "truncated source exit 1" "$?" "1"
expect_contains "truncated reported with code" "$(cat "$T/err")" "cut.json.gz: BMAS-003"
expect_eq "only the good source counted" "$(echo "$out" | jq .totals.invocations)" "4"

# Missing file: exit 1 with its code; bad lines: exit 0, counted and named.
"$BMAS" ingest "$T/nope.json.gz" >/dev/null 2>"$T/err"
expect_eq "missing file exit 1" "$?" "1"
expect_contains "missing file code" "$(cat "$T/err")" "BMAS-016"
printf '%s\nnot json\n{"timestamp":"2026-04-20T00:17:31Z","modelId":"a.b","region":"us-east-1","input":{"inputTokenCount":-1}}\n' "$(head -1 "$S")" > "$T/bad.jsonl"
out=$("$BMAS" ingest "$T/bad.jsonl" 2>"$T/err")
expect_eq "bad lines exit 0" "$?" "0"
expect_contains "summary counts skips" "$out" "1 records counted, 2 skipped; BMAS-003 x1, BMAS-007 x1"
expect_contains "first bad record named" "$(cat "$T/err")" "record 2: BMAS-003"

# Non-log keys are skipped, not failed.
mkdir -p "$T/x/BedrockModelInvocationLogs/us-east-1/2026/04/20/00/data"
cp "$T/a.json.gz" "$T/x/BedrockModelInvocationLogs/us-east-1/2026/04/20/00/data/r_input.json.gz"
"$BMAS" ingest "$T/x/BedrockModelInvocationLogs/us-east-1/2026/04/20/00/data/r_input.json.gz" >/dev/null 2>"$T/err"
expect_eq "offloaded body skipped, exit 0" "$?" "0"
expect_contains "offloaded body reason" "$(cat "$T/err")" "offloaded_body"

# Usage and configuration errors exit 2 and name the culprit.
"$BMAS" ingest >/dev/null 2>"$T/err"; expect_eq "no source exit 2" "$?" "2"
"$BMAS" ingest --bogus "$S" >/dev/null 2>"$T/err"; expect_eq "bad flag exit 2" "$?" "2"
expect_contains "bad flag named" "$(cat "$T/err")" "--bogus"
"$BMAS" ingest --group-by model "$S" >/dev/null 2>"$T/err"; expect_eq "bad group-by exit 2" "$?" "2"
BATCH_SIZE=lots "$BMAS" ingest "$S" >/dev/null 2>"$T/err"; expect_eq "bad env exit 2" "$?" "2"
expect_contains "bad env named" "$(cat "$T/err")" "BATCH_SIZE"
BMAS_APP_PROFILE_MAP=oops "$BMAS" ingest "$S" >/dev/null 2>"$T/err"; expect_eq "bad map exit 2" "$?" "2"
"$BMAS" frobnicate >/dev/null 2>&1; expect_eq "unknown command exit 2" "$?" "2"
"$BMAS" --version | grep -q "^bmas [0-9]"; expect_eq "--version" "$?" "0"
"$BMAS" --help | grep -q "ENABLE_CROSS_REGION_DETECTION"; expect_eq "--help lists env" "$?" "0"
# bmas serve refuses bad configuration before creating anything, exit 2 naming the culprit.
(cd "$T" && BMAS_LISTEN=nonsense "$BMAS" serve >/dev/null 2>"$T/err"); expect_eq "serve bad listen exit 2" "$?" "2"
expect_contains "serve names BMAS_LISTEN" "$(cat "$T/err")" "BMAS_LISTEN"
(cd "$T" && BMAS_DIMENSION_SETS="ModelId;Bogus" "$BMAS" serve >/dev/null 2>"$T/err"); expect_eq "serve bad dimension set exit 2" "$?" "2"
expect_contains "serve names BMAS_DIMENSION_SETS" "$(cat "$T/err")" "BMAS_DIMENSION_SETS"
(cd "$T" && MAX_RETRY_ATTEMPTS=0 "$BMAS" serve >/dev/null 2>"$T/err"); expect_eq "serve bad number exit 2" "$?" "2"
"$BMAS" serve --listen >/dev/null 2>&1; expect_eq "serve flag without value exit 2" "$?" "2"
expect_eq "nothing was created" "$(ls "$T" | grep -c 'bmas.db')" "0"
tap_done
