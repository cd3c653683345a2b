# corpus-lib.sh: the generated corpus (tests/tools/gen_corpus.c) for test_corpus.sh and
# test_wire_moto.sh, sourced after itest-lib.sh (TAP helpers). The expected numbers always
# come from the generator's expected.json; the helpers below only regroup them with jq.
#
#   corpus_gen DIR                  writes the corpus for the last hours (so CloudWatch takes
#                                   the timestamps) and sets $EXP (DIR/expected.json), $META
#                                   (the same without rows, small and quick to read), $CORPUS,
#                                   $CORPUS_START (its first timestamp, epoch seconds)
#   corpus_keys [log|ignored]       the object keys, one a line
#   corpus_upload BUCKET            uploads every object (s3_put)
#   corpus_check_agg LABEL URL      GET /aggregates by every key, by each dimension, totals
#   corpus_check_status LABEL URL IGNORED   /status counters and errors per BMAS code
#   corpus_cw_check LABEL CLI NS SETS       CloudWatch sums read back with GetMetricData, one
#                                   query per dimension-set value and metric, all exact
#
# Bulk calls (uploads, queues) go through curl's own SigV4 (CURLOPT_AWS_SIGV4, see
# docs/testing.md), not the AWS CLI: a CLI call costs about a second of Python start-up on these
# two shared cores, several under load, and a corpus is a dozen objects per bucket. The CLIs
# keep the calls where their own parsing matters (notification set-up, CloudWatch read-back).
#   s3_put BUCKET [KEY FILE]        creates a bucket, or puts an object, at $AWS_URL
#   sqs_json ACTION JSON            an SQS call in JSON 1.0 at $AWS_URL, prints the answer
#   queue_depth QUEUE_URL           visible + in-flight messages
#   stop_checked LABEL PID [SIGNAL] stops a server, waits with a deadline and checks that it
#                                   exited 0 (until svc-lib.sh has its srv_stop helper)

corpus__gen_bin() {
    local b
    for b in "${GEN_CORPUS:-}" "$BINDIR/../tests/tools/gen_corpus" build/rel/tests/tools/gen_corpus; do
        if [ -n "$b" ] && [ -x "$b" ] && [ ! tests/tools/gen_corpus.c -nt "$b" ]; then
            echo "$b"
            return 0
        fi
    done
    make --no-print-directory -s build/rel/tests/tools/gen_corpus >&2 || return 1
    echo build/rel/tests/tools/gen_corpus
}

corpus_gen() {
    CORPUS=$1
    local gen
    gen=$(corpus__gen_bin) || { echo "corpus_gen: cannot build gen_corpus" >&2; return 1; }
    # Half an hour of records starting 90 minutes ago: inside CloudWatch's two weeks, and
    # never in its future.
    CORPUS_START=$(( $(date +%s) - 5400 ))
    local log
    log=$("$gen" --out "$CORPUS" --start "$CORPUS_START" --span 1800 2>&1) || {
        echo "$log" >&2
        return 1
    }
    echo "$log" | sed 's/^/# /' # the seed, for a replay with CORPUS_SEED
    EXP=$CORPUS/expected.json
    # The expected rows in the order corpus_sorted_rows gives, once: expected.json is 2 MB
    # and each jq pass over it costs a noticeable fraction of a second on a busy machine.
    jq -S -c '.rows | sort_by(tostring) | .[]' "$EXP" > "$CORPUS/want.rows"
    jq -S -c .totals "$EXP" > "$CORPUS/want.totals"
    META=$CORPUS/meta.json # expected.json without its rows: counts, skips, the map
    jq -c 'with_entries(select(.key | test("^(rows|by_.*|switches)$") | not))' "$EXP" > "$META"
    local d
    for d in profile_type model_id source_region inference_region; do
        jq -S -c --arg d "$d" '.["by_" + $d] | to_entries | map({($d): .key} + .value)
            | sort_by(tostring) | .[]' "$EXP" > "$CORPUS/want.by_$d"
    done
}

corpus_keys() { awk -v k="$1" '$1 == k { print $2 }' "$CORPUS/keys.txt"; }

aws__curl() { # SERVICE [curl args...]
    local svc=$1
    shift
    curl -fsS -m 30 --aws-sigv4 "aws:amz:us-east-1:$svc" \
        --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" "$@"
}

s3_put() {
    if [ $# -eq 1 ]; then
        aws__curl s3 -X PUT -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$AWS_URL/$1" >/dev/null
    else
        # Keys here are [A-Za-z0-9/._-] only: no encoding needed. The Content-Type matters to
        # moto: under curl's default for --data-binary (application/x-www-form-urlencoded)
        # its Flask front end reads the body as a form and stores an empty object.
        aws__curl s3 -X PUT -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
            -H "Content-Type: application/octet-stream" \
            --data-binary @"$3" "$AWS_URL/$1/$2" >/dev/null
    fi
}

sqs_json() {
    aws__curl sqs -X POST -H "Content-Type: application/x-amz-json-1.0" \
        -H "X-Amz-Target: AmazonSQS.$1" --data-binary "$2" "$AWS_URL/"
}

queue_depth() {
    sqs_json GetQueueAttributes "{\"QueueUrl\":\"$1\",\"AttributeNames\":[\"All\"]}" |
        jq '(.Attributes.ApproximateNumberOfMessages | tonumber)
            + (.Attributes.ApproximateNumberOfMessagesNotVisible | tonumber)'
}

corpus_upload() {
    local bucket=$1 kind k
    while read -r kind k; do
        s3_put "$bucket" "$k" "$CORPUS/$k" || return 1
    done < "$CORPUS/keys.txt"
}

# Rows of an /aggregates or `bmas ingest --json` document, in one order, for an exact diff.
# Cost fields are checked by test_service_cost.sh; these tests check the token counts.
corpus_sorted_rows() { jq -S -c '[.rows[] | del(.cost_usd, .unpriced_invocations)] | sort_by(tostring) | .[]'; }

corpus__diff() { # label want-file got-file
    if cmp -s "$2" "$3"; then
        t_pass "$1"
    else
        t_fail "$1"
        diff "$2" "$3" | head -10 | sed 's/^/#   /'
    fi
}

corpus_check_agg() {
    local label=$1 url=$2 all=model_id,profile_type,profile_id,source_region,inference_region,operation
    curl -fsS -m 30 "$url/aggregates?group_by=$all" > "$W/agg.json" || { t_fail "$label: /aggregates"; return; }
    corpus_sorted_rows < "$W/agg.json" > "$W/got"
    corpus__diff "$label: every series exact ($(wc -l < "$CORPUS/want.rows") rows)" \
        "$CORPUS/want.rows" "$W/got"
    t_eq "$label: totals exact" "$(cat "$CORPUS/want.totals")" "$(jq -S -c '.totals | del(.cost_usd, .unpriced_invocations)' "$W/agg.json")"
    local d
    for d in profile_type model_id source_region inference_region; do
        curl -fsS -m 30 "$url/aggregates?group_by=$d" | corpus_sorted_rows > "$W/got"
        corpus__diff "$label: by $d exact" "$CORPUS/want.by_$d" "$W/got"
    done
}

corpus_check_status() {
    local label=$1 url=$2 ignored=$3 st
    st=$(curl -fsS -m 10 "$url/status")
    t_eq "$label: objects processed, ignored, failed" \
        "$(jq -c --argjson i "$ignored" '[.objects.log, $i, 0]' "$META")" \
        "$(echo "$st" | jq -c '[.objects.processed, .objects.ignored, .objects.failed]')"
    t_eq "$label: records counted and skipped" \
        "$(jq -c '[.records, .skipped.total]' "$META")" \
        "$(echo "$st" | jq -c '[.records.processed, .records.invalid]')"
    t_eq "$label: errors per code" \
        "$(jq -S -c '.skipped + .informational | del(.total)' "$META")" \
        "$(echo "$st" | jq -S -c '.errors | with_entries(select(.key == ("BMAS-003",
            "BMAS-006", "BMAS-007", "BMAS-008", "BMAS-010")))')"
}

# One GetMetricData query per (dimension set, values, metric) and the sum it must give, from
# the generator's rows: "InvocationCount" is the invocations, the token metrics their sums.
# README: a value over 255 characters skips that dimension set for that series (BMAS-009).
corpus__cw_plan() { # NS SETS(;-separated, ,-joined dimension names) -> [{id,q,want}]
    jq -c --arg ns "$1" --arg sets "$2" '
        {InferenceProfileType: "profile_type", ModelId: "model_id", ProfileId: "profile_id",
         SourceRegion: "source_region", InferenceRegion: "inference_region",
         Operation: "operation"} as $field
        | {InvocationCount: "invocations", InputTokens: "input_tokens",
           OutputTokens: "output_tokens", CacheReadInputTokens: "cache_read_input_tokens",
           CacheWriteInputTokens: "cache_write_input_tokens"} as $metric
        | .rows as $rows
        | [$sets | split(";")[] | split(",") as $dims
           | ($rows | map(. as $r | select([$dims[] | $r[$field[.]] | length <= 255] | all))
              | group_by([. as $r | $dims[] | $r[$field[.]]])[]) as $g
           | $metric | to_entries[] as $m
           | {metric: $m.key, dims: [$dims[] | {Name: ., Value: $g[0][$field[.]]}],
              want: ($g | map(.[$m.value]) | add)}]
        | to_entries | map({id: "q\(.key)", want: .value.want,
            q: {Id: "q\(.key)", ReturnData: true, MetricStat: {Metric: {Namespace: $ns,
                MetricName: .value.metric, Dimensions: .value.dims}, Period: 14400,
                Stat: "Sum"}}})' "$EXP"
}

corpus_cw_check() {
    local label=$1 cli=$2 ns=$3 sets=$4
    local ws=$(( CORPUS_START / 3600 * 3600 - 3600 ))
    # The plan is built once per dimension-set list (a pass over the rows), then renamed.
    local plan
    plan="$CORPUS/cwplan.$(echo "$sets" | cksum | cut -d' ' -f1)"
    [ -s "$plan" ] || corpus__cw_plan "@NS@" "$sets" > "$plan"
    sed "s|\"@NS@\"|\"$ns\"|g" "$plan" > "$W/cwplan.json"
    jq -c 'map(.q)' "$W/cwplan.json" > "$W/cwq.json"
    if ! "$cli" cloudwatch get-metric-data --metric-data-queries "file://$W/cwq.json" \
        --start-time "$(date -u -d "@$ws" +%Y-%m-%dT%H:%M:%SZ)" \
        --end-time "$(date -u -d "@$((ws + 14400))" +%Y-%m-%dT%H:%M:%SZ)" > "$W/cwr.json" 2> "$W/cwerr"; then
        t_fail "$label: get-metric-data"
        sed 's/^/#   /' "$W/cwerr" | head -5
        return
    fi
    jq -c '.[] | [.id, .want]' "$W/cwplan.json" | sort > "$W/want"
    # Ids whose series bmas never published read back as 0.
    jq -c -n --slurpfile w "$W/cwplan.json" --slurpfile g "$W/cwr.json" '
        ($g[0].MetricDataResults | map({(.Id): ([.Values[]] | add // 0)}) | add // {}) as $got
        | $w[0][] | [.id, ($got[.id] // 0)]' | sort > "$W/got"
    corpus__diff "$label: $(wc -l < "$W/want") CloudWatch sums exact ($sets)" "$W/want" "$W/got"
}

stop_checked() {
    local label=$1 pid=$2 sig=${3:-TERM}
    kill -"$sig" "$pid" 2>/dev/null
    local deadline=$(( $(date +%s) + 35 ))
    while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do
        sleep 0.05 # polling step of the deadline loop above
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null
    fi
    local rc=0
    wait "$pid" 2>/dev/null || rc=$?
    t_eq "$label stopped by SIG$sig and exited 0" "0" "$rc"
}
