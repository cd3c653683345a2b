#!/usr/bin/env bash
# make bench: throughput of `bmas ingest` (both inflate engines, one and two threads) against
# zlib inflate alone, igzip -dc alone, zcat, the original Lambda's Node.js approach and
# zcat | jq, on one generated log object (BENCH_MB, default 250 MiB of JSON), in one run with
# the rounds interleaved across the tools (BENCH_ROUNDS, default 5), medians; then peak RSS for
# a 1 MB and a ~1 GB object, then an S3 backfill from bmas-emulator at one and two fetch
# workers; then the storage benchmarks (a million aggregate rows on SQLite; commits and
# duplicate checks per second on SQLite and PostgreSQL, one and two instances) and the
# service's. Prints a table with the ratios and the targets of issue 12. A speed target here is
# reported, never asserted; wrong totals exit 1.
# Nothing is pinned to a core: the two-thread pipeline needs two. Knobs: BENCH_MB, BENCH_ROUNDS,
# BENCH_BACKFILL_OBJECTS (32), BENCH_BACKFILL_MB (8).
set -euo pipefail
BINDIR=${1:-bin}
ROUNDS=${BENCH_ROUNDS:-5}
MB=${BENCH_MB:-250}
BF_OBJECTS=${BENCH_BACKFILL_OBJECTS:-32}
BF_MB=${BENCH_BACKFILL_MB:-8}
B=build/bench
mkdir -p "$B"
CC=${CC:-cc}
for t in inflate_ref; do
    if [ ! -x "$B/$t" ] || [ "tests/bench/$t.c" -nt "$B/$t" ]; then
        $CC -O2 -std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -o "$B/$t" "tests/bench/$t.c" -lz
    fi
done
for tool in /usr/bin/time igzip zcat jq; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is missing (tests/tools/deps.sh --bench)" >&2; exit 1; }
done
have_node=1
command -v node >/dev/null || have_node=0

# sample MB SEED START SPAN OUT TOTALS: a `bmas sample` object (core/sample.c), fixed in time
# and seed so every run measures the same bytes, cached in $B; its totals line is the
# generator's own count, checked against bmas ingest below.
sample() {
    if [ ! -s "$5" ] || [ ! -s "$6" ] || [ core/sample.c -nt "$5" ]; then
        rm -f "$6.tmp"
        "$BINDIR/bmas" sample --mb "$1" --seed "$2" --start "$3" --span "$4" -o "$5" \
            --totals "$6.tmp" && mv "$6.tmp" "$6"
    fi
}
data="$B/bench-${MB}mb.json.gz"
want="$B/bench-${MB}mb.totals.json"
[ -s "$data" ] && [ -s "$want" ] && [ ! core/sample.c -nt "$data" ] ||
    echo "generating a ${MB} MiB log object (once; cached in $B)..." >&2
sample "$MB" 0 1776643200 3600 "$data" "$want"
raw=$(jq -r .bytes "$want")
zsize=$(stat -c %s "$data")
SUMS='{invocations,input_tokens,output_tokens,cache_read_input_tokens,cache_write_input_tokens}'
exp=$(jq -c "$SUMS" "$want")

# The same sums as bmas and node_ingest.js, in jq over the inflated lines.
JQ_SUMS='reduce inputs as $r ({invocations: 0, input_tokens: 0, output_tokens: 0,
    cache_read_input_tokens: 0, cache_write_input_tokens: 0};
  .invocations += 1
  | .input_tokens += ($r.input.inputTokenCount // 0)
  | .output_tokens += ($r.output.outputTokenCount // 0)
  | .cache_read_input_tokens += ($r.input.cacheReadInputTokenCount // 0)
  | .cache_write_input_tokens += ($r.input.cacheWriteInputTokenCount // 0))'
printf '%s\n' "$JQ_SUMS" > "$B/sums.jq"

bm() { # THREADS ENGINE: the bmas ingest command line for that mode
    echo "env BMAS_INGEST_THREADS=$1 BMAS_INFLATE=$2 $BINDIR/bmas ingest --json"
}
# Each command writes its result (totals, or nothing) to stdout; checked ones are compared
# with the generator's totals after every timed run.
declare -A cmds=(
    [inflate]="$B/inflate_ref $data"
    [igzip]="sh -c 'igzip -dc $data > /dev/null'"
    [zcat]="sh -c 'zcat $data > /dev/null'"
    [bmas1]="$(bm 1 isal) $data"
    [bmas2]="$(bm 2 isal) $data"
    [bmasz]="$(bm 1 zlib) $data"
    [node]="node tests/bench/node_ingest.js $data"
    [jq]="sh -c 'zcat $data | jq -n -c -f $B/sums.jq'"
)
declare -A names=(
    [inflate]="zlib inflate alone (C)"
    [igzip]="igzip -dc > /dev/null"
    [zcat]="zcat > /dev/null"
    [bmas1]="bmas ingest, 1 thread, isal"
    [bmas2]="bmas ingest, pipeline (2), isal"
    [bmasz]="bmas ingest, 1 thread, zlib"
    [node]="Node.js zlib+readline+JSON"
    [jq]="zcat | jq -n reduce inputs"
)
order=(inflate igzip zcat bmas1 bmas2 bmasz)
[ $have_node = 1 ] && order+=(node)
order+=(jq)

totals_of() { # FILE: the five sums of a bmas --json document or a node/jq totals line
    jq -c 'if has("totals") then .totals else . end | '"$SUMS" "$1" 2>/dev/null || true
}
check() { # NAME FILE: exit 1 unless FILE holds the generator's totals
    local got
    got=$(totals_of "$2")
    if [ "$got" != "$exp" ]; then
        echo "bench: $1 totals differ from the generator's: $got vs $exp" >&2
        exit 1
    fi
}

# Correctness first: a fast wrong answer is no answer. Both engines, both thread modes.
for th in 1 2; do
    for en in isal zlib; do
        eval "$(bm $th $en) $data" > "$B/out.check" 2>/dev/null || true
        check "bmas ingest (threads=$th, $en)" "$B/out.check"
    done
done

# timed NAME CMD: runs CMD once; appends wall microseconds, CPU seconds (user+sys) and peak
# RSS KiB (the largest process of CMD, as /usr/bin/time reports it) to the tool's lists.
declare -A wall cpu rss
load=$(cut -d' ' -f1 /proc/loadavg)
timed() {
    local s e
    s=$(date +%s%N)
    eval "/usr/bin/time -f '%U %S %M' -o $B/time.out $2" > "$B/out.$1" 2>/dev/null ||
        { echo "bench: ${names[$1]:-$1} failed: $2" >&2; exit 1; }
    e=$(date +%s%N)
    wall[$1]+="$(( (e - s) / 1000 )) "
    cpu[$1]+="$(awk '{printf "%.2f", $1 + $2}' "$B/time.out") "
    rss[$1]+="$(awk '{print $3}' "$B/time.out") "
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "ingest benchmark: ${ROUNDS} rounds of ${#order[@]} tools, interleaved (~$((ROUNDS * MB / 10)) s)..." >&2
for r in $(seq "$ROUNDS"); do
    for t in "${order[@]}"; do
        timed "$t" "${cmds[$t]}"
        case $t in bmas* | node | jq) check "${names[$t]}" "$B/out.$t" ;; esac
    done
    echo "round $r/$ROUNDS done" >&2
done
declare -A mbs cpus rsss
for t in "${order[@]}"; do
    us=$(echo "${wall[$t]}" | median)
    mbs[$t]=$(awk -v b="$raw" -v us="$us" 'BEGIN {printf "%.0f", b / 1e6 / (us / 1e6)}')
    cpus[$t]=$(echo "${cpu[$t]}" | median)
    rsss[$t]=$(echo "${rss[$t]}" | median)
done

# Peak RSS against object size: a 1 MiB object, and ~1 GB as copies of the big gzip file
# (one valid multi-member gzip) piped to stdin; both thread modes, totals checked.
small="$B/bench-1mb.json.gz"
sample 1 1 1776643200 300 "$small" "$B/bench-1mb.totals.json"
copies=$(( (1000000000 + raw - 1) / raw ))
declare -A rss_small rss_big
for th in 1 2; do
    /usr/bin/time -f %M -o "$B/time.out" env BMAS_INGEST_THREADS=$th "$BINDIR/bmas" ingest --json \
        "$small" > "$B/out.small" 2>/dev/null
    rss_small[$th]=$(tail -1 "$B/time.out")
    exp_small=$(jq -c "$SUMS" "$B/bench-1mb.totals.json")
    [ "$(totals_of "$B/out.small")" = "$exp_small" ] ||
        { echo "bench: 1 MiB object totals differ (threads=$th)" >&2; exit 1; }
    for _ in $(seq "$copies"); do cat "$data"; done |
        /usr/bin/time -f %M -o "$B/time.out" env BMAS_INGEST_THREADS=$th "$BINDIR/bmas" ingest \
            --json - > "$B/out.big" 2>/dev/null
    rss_big[$th]=$(tail -1 "$B/time.out")
    exp_big=$(jq -c --argjson n "$copies" "$SUMS"' | map_values(. * $n)' "$want")
    [ "$(totals_of "$B/out.big")" = "$exp_big" ] ||
        { echo "bench: ${copies}-copy object totals differ (threads=$th)" >&2; exit 1; }
done

# Backfill: BF_OBJECTS generated objects in a bmas-emulator bucket (free port, temp data
# folder, stopped at exit), read by `bmas ingest s3://bucket/prefix/` with one and two fetch
# workers, interleaved rounds, totals checked against the sum of the generator's.
bf="$B/backfill-${BF_OBJECTS}x${BF_MB}mb"
mkdir -p "$bf"
[ -s "$bf/totals.jsonl" ] && [ ! core/sample.c -nt "$bf/totals.jsonl" ] ||
    echo "generating ${BF_OBJECTS} backfill objects of ${BF_MB} MiB (once; cached in $bf)..." >&2
if [ ! -s "$bf/totals.jsonl" ] || [ core/sample.c -nt "$bf/totals.jsonl" ] ||
    [ "$(wc -l < "$bf/totals.jsonl")" != "$BF_OBJECTS" ]; then
    rm -f "$bf"/*.gz "$bf/totals.jsonl"
    for i in $(seq "$BF_OBJECTS"); do
        "$BINDIR/bmas" sample --mb "$BF_MB" --seed "$((1000 + i))" --start $((1776643200 + i * 300)) \
            --span 300 -o "$bf/$i.json.gz" --totals "$bf/totals.jsonl.tmp"
    done
    mv "$bf/totals.jsonl.tmp" "$bf/totals.jsonl"
fi
bf_raw=$(jq -s 'map(.bytes) | add' "$bf/totals.jsonl")
bf_exp=$(jq -s -c 'reduce .[] as $t ({}; . as $a | $t | '"$SUMS"' | with_entries(.value += ($a[.key] // 0)))' \
    "$bf/totals.jsonl")
bf_exp=$(echo "$bf_exp" | jq -c "$SUMS")
. tests/tools/emu.sh
emu_start >/dev/null
trap 'emu_stop || true' EXIT # its grep for sanitizer lines fails under set -e
BUCKET=bench-backfill
s3put() { # curl-args... : one signed S3 request; prints the HTTP status
    curl -m 60 -sS -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" --user test:test \
        -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@"
}
[ "$(s3put -X PUT "$EMU_URL/$BUCKET")" = 200 ] || { echo "bench: CreateBucket failed" >&2; exit 1; }
i=0
while read -r line; do
    i=$((i + 1))
    key=$(echo "$line" | jq -r .key)
    [ "$(s3put -X PUT --data-binary @"$bf/$i.json.gz" "$EMU_URL/$BUCKET/$key")" = 200 ] ||
        { echo "bench: upload of $key failed" >&2; exit 1; }
done < "$bf/totals.jsonl"
prefix=$(head -1 "$bf/totals.jsonl" | jq -r '.key | split("/")[0:4] | join("/")')/
bf_cmd() { # CONCURRENCY
    echo "env AWS_ENDPOINT_URL=$EMU_URL AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test" \
        "AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true BMAS_FETCH_CONCURRENCY=$1" \
        "$BINDIR/bmas ingest --json s3://$BUCKET/$prefix"
}
names[bf1]="backfill, 1 fetch worker"
names[bf2]="backfill, 2 fetch workers"
for r in $(seq "$ROUNDS"); do
    for c in 1 2; do
        timed "bf$c" "$(bf_cmd $c)"
        got=$(totals_of "$B/out.bf$c")
        [ "$got" = "$bf_exp" ] ||
            { echo "bench: backfill (concurrency $c) totals differ: $got vs $bf_exp" >&2; exit 1; }
    done
done
emu_stop || true
trap - EXIT
declare -A bf_mbs bf_ops
for t in bf1 bf2; do
    us=$(echo "${wall[$t]}" | median)
    bf_mbs[$t]=$(awk -v b="$bf_raw" -v us="$us" 'BEGIN {printf "%.0f", b / 1e6 / (us / 1e6)}')
    bf_ops[$t]=$(awk -v n="$BF_OBJECTS" -v us="$us" 'BEGIN {printf "%.1f", n / (us / 1e6)}')
    cpus[$t]=$(echo "${cpu[$t]}" | median)
    rsss[$t]=$(echo "${rss[$t]}" | median)
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
verdict() { awk -v v="$1" -v t="$2" 'BEGIN {print (v >= t) ? "met" : "MISSED"}'; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
echo
echo "ingest throughput: ${ROUNDS} rounds interleaved across the tools, medians; not pinned"
echo "(the pipeline's second thread needs a second core; $(nproc) CPUs here, load average" \
    "$load at the start)."
echo "object: $((raw / 1000000)) MB uncompressed, $((zsize / 1000000)) MB gzip; MB/s = uncompressed MB / wall;"
echo "CPU = user+sys; RSS = peak of the command's largest process."
printf '%-32s %8s %10s %9s %9s %9s\n' "tool" "MB/s" "x inflate" "x igzip" "CPU s" "RSS MB"
for t in "${order[@]}"; do
    printf '%-32s %8s %10s %9s %9s %9s\n' "${names[$t]}" "${mbs[$t]}" \
        "$(ratio "${mbs[$t]}" "${mbs[inflate]}")" "$(ratio "${mbs[$t]}" "${mbs[igzip]}")" \
        "${cpus[$t]}" "$(mib "${rsss[$t]}")"
done
echo
echo "backfill: ${BF_OBJECTS} objects, $((bf_raw / 1000000)) MB uncompressed, from bmas-emulator S3 on loopback"
printf '%-32s %8s %10s %9s %9s\n' "" "MB/s" "objects/s" "CPU s" "RSS MB"
for t in bf1 bf2; do
    printf '%-32s %8s %10s %9s %9s\n' "${names[$t]}" "${bf_mbs[$t]}" "${bf_ops[$t]}" "${cpus[$t]}" \
        "$(mib "${rsss[$t]}")"
done
echo
target() { # LABEL VALUE TARGET-TEXT VERDICT
    printf '%-50s %10s   target %-9s %s\n' "$1" "$2" "$3" "$4"
}
r=$(ratio "${mbs[bmas2]}" "${mbs[inflate]}")
target "pipeline / zlib inflate alone" "${r}x" ">= 1.50" "$(verdict "$r" 1.5)"
r=$(ratio "${mbs[bmas2]}" "${mbs[igzip]}")
target "pipeline / igzip -dc" "${r}x" ">= 0.45" "$(verdict "$r" 0.45)"
r=$(ratio "${mbs[bmas1]}" "${mbs[inflate]}")
target "1 thread (isal) / zlib inflate alone" "${r}x" ">= 1.00" "$(verdict "$r" 1.0)"
if [ $have_node = 1 ]; then
    r=$(ratio "${mbs[bmas2]}" "${mbs[node]}")
    target "pipeline / Node.js" "${r}x" ">= 10.00" "$(verdict "$r" 10)"
fi
big_mb=$((raw * copies / 1000000))
for th in 1 2; do
    m=$(mib "${rss_big[$th]}")
    target "peak RSS, threads=$th, ${big_mb} MB object (stdin)" "${m} MB" "< 64 MB" \
        "$(awk -v m="$m" 'BEGIN {print (m < 64) ? "met" : "MISSED"}')"
done
for th in 1 2; do
    r=$(ratio "${rss_big[$th]}" "${rss_small[$th]}")
    target "RSS ${big_mb} MB / 1 MiB object, threads=$th" \
        "${r}x" "<= 1.50" "$(awk -v v="$r" 'BEGIN {print (v <= 1.5) ? "met" : "MISSED"}')"
    echo "    ($(mib "${rss_big[$th]}") MB vs $(mib "${rss_small[$th]}") MB)"
done

# The storage layer and the service (issue 5): a million aggregate rows; then both stores,
# one and two instances (issue 14).
echo
tests/bench/bench_storage.sh
tests/bench/bench_instances.sh
tests/bench/service.sh "$BINDIR"
