# Both inflate engines (BMAS_INFLATE=zlib and isal) on the same corpus: objects written by
# `bmas sample` (its totals come from the writer, not from bmas's parser), a multi-member
# object, a truncated one and a corrupt one. Each engine must give the writer's exact totals,
# and the same error for the broken objects.
. tests/tools/tap.sh
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
BMAS="$BINDIR/bmas"

# The corpus: small, medium (several MB, many 128 KB output slices) and three members.
"$BMAS" sample --records 40 --seed 11 -o "$T/small.json.gz" 2>"$T/small.totals"
"$BMAS" sample --mb 12 --seed 12 -o "$T/medium.json.gz" 2>"$T/medium.totals"
"$BMAS" sample --records 500 --seed 13 --region eu-west-1 -o "$T/m1.gz" 2>"$T/m1.totals"
"$BMAS" sample --records 700 --seed 14 --region ap-southeast-2 -o "$T/m2.gz" 2>"$T/m2.totals"
cat "$T/m1.gz" "$T/m2.gz" "$T/m1.gz" > "$T/members.json.gz"
# What the writer says the whole corpus holds (the members object counts m1 twice).
want=$(cat "$T/small.totals" "$T/medium.totals" "$T/m1.totals" "$T/m2.totals" "$T/m1.totals" |
    jq -s -c '{invocations: (map(.invocations) | add), input_tokens: (map(.input_tokens) | add),
               output_tokens: (map(.output_tokens) | add),
               cache_read_input_tokens: (map(.cache_read_input_tokens) | add),
               cache_write_input_tokens: (map(.cache_write_input_tokens) | add)}')

engines="zlib"
BMAS_INFLATE=isal "$BMAS" ingest - </dev/null >/dev/null 2>&1 && engines="zlib isal"
expect_eq "this build has ISA-L (libisal-dev is installed by deps.sh)" "$engines" "zlib isal"

for e in $engines; do
    got=$(BMAS_INFLATE=$e "$BMAS" ingest --json "$T/small.json.gz" "$T/medium.json.gz" \
        "$T/members.json.gz" 2>"$T/$e.err" | jq -c '.totals | {invocations, input_tokens,
        output_tokens, cache_read_input_tokens, cache_write_input_tokens}')
    expect_eq "$e: the writer's exact totals over the corpus" "$got" "$want"
done

# Broken objects: cut in the middle of a member, and a flipped byte in the deflate data (the
# CRC or the block decoder must catch it). Both engines: exit 1 and BMAS-003.
head -c 200000 "$T/medium.json.gz" > "$T/cut.json.gz"
cp "$T/medium.json.gz" "$T/flip.json.gz"
printf '\x55' | dd of="$T/flip.json.gz" bs=1 seek=300000 conv=notrunc 2>/dev/null
for e in $engines; do
    for f in cut flip; do
        BMAS_INFLATE=$e "$BMAS" ingest "$T/$f.json.gz" >/dev/null 2>"$T/$e-$f.err"
        st=$?
        expect_eq "$e: $f object fails (exit 1, BMAS-003)" \
            "$st $(grep -o 'BMAS-003' "$T/$e-$f.err" | head -1)" "1 BMAS-003"
    done
done

BMAS_INFLATE=gzip "$BMAS" ingest "$T/small.json.gz" >/dev/null 2>"$T/bad.err"
expect_eq "an unknown engine is refused (exit 2, named)" \
    "$? $(grep -c 'BMAS_INFLATE' "$T/bad.err")" "2 1"
tap_done
