#!/usr/bin/env bash
# make bench: throughput of `bmas ingest` against zlib inflate alone, zcat and the original
# Lambda's Node.js approach on one generated ~200 MB log object, all pinned to one core,
# interleaved, medians of several rounds; then peak RSS for a 1 GB object. Prints a table with
# the ratios and the targets of issue 2. A speed target here is reported, never asserted.
set -euo pipefail
BINDIR=${1:-bin}
ROUNDS=${BENCH_ROUNDS:-5}
MB=${BENCH_MB:-200}
B=build/bench
mkdir -p "$B"
CC=${CC:-cc}
for t in inflate_ref; do
    if [ ! -x "$B/$t" ] || [ "tests/bench/$t.c" -nt "$B/$t" ]; then
        $CC -O2 -std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -o "$B/$t" "tests/bench/$t.c" -lz
    fi
done

data="$B/bench-${MB}mb.json.gz"
want="$B/bench-${MB}mb.totals.json"
# `bmas sample` (core/sample.c) writes it, fixed in time and seed so every run measures the
# same bytes; its totals line is the generator's own count, checked against bmas ingest below.
if [ ! -s "$data" ] || [ ! -s "$want" ] || [ core/sample.c -nt "$data" ]; then
    echo "generating a ${MB} MB log object (once; cached in $B)..." >&2
    rm -f "$want.tmp"
    "$BINDIR/bmas" sample --mb "$MB" --seed 0 --start 1776643200 --span 3600 -o "$data" \
        --totals "$want.tmp" && mv "$want.tmp" "$want"
fi
raw=$(jq -r .bytes "$want")
zsize=$(stat -c %s "$data")

pin=()
command -v taskset >/dev/null && pin=(taskset -c 0)
have_node=1
command -v node >/dev/null || have_node=0

declare -A cmds=(
    [inflate]="${pin[*]} $B/inflate_ref $data"
    [zcat]="${pin[*]} sh -c 'zcat $data > /dev/null'"
    [bmas]="${pin[*]} $BINDIR/bmas ingest --json $data"
    [node]="${pin[*]} node tests/bench/node_ingest.js $data"
)
order=(inflate zcat bmas)
[ $have_node = 1 ] && order+=(node)

# Correctness first: a fast wrong answer is no answer.
got=$(eval "${cmds[bmas]}" 2>/dev/null | jq -c .totals)
exp=$(jq -c '{invocations,input_tokens,output_tokens,cache_read_input_tokens,cache_write_input_tokens}' "$want")
if [ "$got" != "$exp" ]; then
    echo "bmas ingest totals differ from the generator's: $got vs $exp" >&2
    exit 1
fi
if [ $have_node = 1 ]; then
    gotn=$(eval "${cmds[node]}" | jq -c .)
    [ "$gotn" = "$exp" ] || { echo "node totals differ: $gotn" >&2; exit 1; }
fi

declare -A times
for r in $(seq "$ROUNDS"); do
    for t in "${order[@]}"; do
        s=$(date +%s%N)
        eval "${cmds[$t]}" > /dev/null 2>&1
        e=$(date +%s%N)
        times[$t]+="$(( (e - s) / 1000 )) "
    done
    echo "round $r/$ROUNDS done" >&2
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A mbs
for t in "${order[@]}"; do
    us=$(echo "${times[$t]}" | median)
    mbs[$t]=$(awk -v b="$raw" -v us="$us" 'BEGIN {printf "%.0f", b / 1e6 / (us / 1e6)}')
done

# Peak RSS over a 1 GB object: five copies of the gzip file are one valid multi-member gzip.
rss_kb=$( { for i in 1 2 3 4 5; do cat "$data"; done; } |
          /usr/bin/time -f %M "${pin[@]}" "$BINDIR/bmas" ingest --json - 2>&1 >/dev/null | tail -1)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
verdict() { awk -v v="$1" -v t="$2" 'BEGIN {print (v >= t) ? "met" : "MISSED"}'; }
echo
echo "ingest throughput, one core, ${ROUNDS} rounds interleaved, median; object: $((raw / 1000000)) MB uncompressed, $((zsize / 1000000)) MB gzip"
printf '%-28s %10s\n' "tool" "MB/s"
for t in "${order[@]}"; do
    case $t in
        inflate) name="zlib inflate alone (C)";;
        zcat) name="zcat > /dev/null";;
        bmas) name="bmas ingest";;
        node) name="Node.js zlib+readline+JSON";;
    esac
    printf '%-28s %10s\n' "$name" "${mbs[$t]}"
done
echo
r1=$(ratio "${mbs[bmas]}" "${mbs[inflate]}")
printf '%-44s %8s   target >= 0.60  %s\n' "bmas ingest / inflate alone" "${r1}x" "$(verdict "$r1" 0.6)"
if [ $have_node = 1 ]; then
    r2=$(ratio "${mbs[bmas]}" "${mbs[node]}")
    printf '%-44s %8s   target >= 4.00  %s\n' "bmas ingest / Node.js" "${r2}x" "$(verdict "$r2" 4)"
fi
rss_mb=$(awk -v k="$rss_kb" 'BEGIN {printf "%.1f", k / 1024}')
printf '%-44s %8s   target <  64 MB %s\n' "peak RSS, bmas ingest of a $((raw * 5 / 1000000)) MB object" \
    "${rss_mb} MB" "$(awk -v m="$rss_mb" 'BEGIN {print (m < 64) ? "met" : "MISSED"}')"

# The storage layer and the service (issue 5): a million aggregate rows.
echo
tests/bench/bench_storage.sh
tests/bench/service.sh "$BINDIR"
