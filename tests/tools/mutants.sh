#!/bin/bash
# make mutants: applies each mutation of tests/mutants/mutants.txt, one at a time, to a copy of
# the tree, rebuilds, and runs its check, which must fail (the mutant is "killed"). Prints a
# table and exits 1 when a mutant survives or cannot be applied (its line moved: update the
# file). The working tree is never touched. Not part of `make test`: it rebuilds per mutant.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
list=${1:-$top/tests/mutants/mutants.txt}
work=$(mktemp -d "${TMPDIR:-/tmp}/bmas-mutants.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$top" || exit 1
# The tree as it is now (committed or not), without build output.
git ls-files -co --exclude-standard | grep -v '^build/\|^bin/' | tar -cf - -T - | tar -xf - -C "$work"
cd "$work" || exit 1
export B=build/rel BIN=$work/bin BM_TEST_DATA=$work/tests/data MUTANT_TIMEOUT=${MUTANT_TIMEOUT:-90}
units=$(ls tests/unit/*.c | sed 's|tests/unit/\(.*\)\.c|build/rel/tests/\1|')
build() { make -j"$(nproc)" all $units; } # word splitting of $units on purpose
echo "# building the unmutated tree in $work"
if ! build >"$work/build.log" 2>&1; then
    tail -20 "$work/build.log"
    echo "mutants: the unmutated tree does not build" >&2
    exit 1
fi
killed=0
survived=0
broken=0
printf '%-24s %-20s %s\n' mutant file result
while IFS= read -r line; do
    case "$line" in '#'* | '') continue ;; esac
    name=$(awk -F ' [|] ' '{print $1}' <<<"$line")
    file=$(awk -F ' [|] ' '{print $2}' <<<"$line")
    orig=$(awk -F ' [|] ' '{print $3}' <<<"$line")
    repl=$(awk -F ' [|] ' '{print $4}' <<<"$line")
    check=$(awk -F ' [|] ' '{print $5}' <<<"$line")
    n=$(grep -cxF -- "$orig" "$file")
    if [ "$n" != 1 ]; then
        printf '%-24s %-20s %s\n' "$name" "$file" "NOT APPLIED (line found $n times)"
        broken=$((broken + 1))
        continue
    fi
    cp "$file" "$file.orig"
    ORIG="$orig" REPL="$repl" awk '$0 == ENVIRON["ORIG"] { print ENVIRON["REPL"]; next } { print }' \
        "$file.orig" >"$file"
    # Rebuild only what the check runs: its unit binaries, and the programs when it uses $BIN.
    targets=$(grep -o '\$B/tests/[a-z_0-9]*' <<<"$check" | sed "s|\$B|$B|")
    case "$check" in *'$BIN'*) targets="$targets all" ;; esac
    # shellcheck disable=SC2086 # a list of make targets
    if ! make -j"$(nproc)" $targets >"$work/m.log" 2>&1; then
        result="killed (does not build)"
        killed=$((killed + 1))
    else
        # A mutant may loop for ever: past the deadline it counts as noticed (killed).
        timeout "${MUTANT_TIMEOUT:-90}" bash -c "$check" >"$work/$name.log" 2>&1
        rc=$?
        if [ "$rc" = 0 ]; then
            result="SURVIVED: $check passed"
            survived=$((survived + 1))
        elif [ "$rc" = 124 ]; then
            result="killed (timed out) by $check"
            killed=$((killed + 1))
        else
            result="killed by $check"
            killed=$((killed + 1))
        fi
    fi
    printf '%-24s %-20s %s\n' "$name" "$file" "$result"
    mv "$file.orig" "$file"
    touch "$file"
done <"$list"
echo "# mutants: $killed killed, $survived survived, $broken not applied"
[ "$survived" -eq 0 ] && [ "$broken" -eq 0 ]
