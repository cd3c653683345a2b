#!/bin/bash
# The documents say what the code does: every variable `bmas --help` lists (the configuration
# table, core/config.c) is in README.md and docs/configuration.md; every error code of core's
# table (BM_ERR_MAP) is in README.md and openapi.yaml; every flag `bmas-emulator --help` names
# is in emulator/README.md. And the documents are self-contained: every file or folder that
# README.md, docs/*.md and emulator/README.md name exists in the repository, and neither they
# nor the code's comments point outside it (no ../ paths, no documents that are not here).
set -u
. "$(dirname "$0")/../tools/tap.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)

vars=$("$BINDIR/bmas" --help 2>&1 | awk '/^  [A-Z][A-Z0-9_]+ / { print $1 }')
expect_eq "bmas --help lists the configuration table" "$([ "$(echo "$vars" | wc -l)" -gt 30 ] && echo yes)" yes
for doc in README.md docs/configuration.md; do
    missing=$(for v in $vars; do grep -qw -- "$v" "$top/$doc" || echo "$v"; done)
    expect_eq "every variable is in $doc" "$missing" ""
done

codes=$(grep -o '"BMAS-0[0-9][0-9]"' "$top/core/bm_core.h" | tr -d '"' | sort -u)
expect_eq "the error table has BMAS-001..010 and ours" "$(echo "$codes" | head -1)" BMAS-001
for doc in README.md openapi.yaml; do
    missing=$(for c in $codes; do grep -q -- "$c" "$top/$doc" || echo "$c"; done)
    expect_eq "every error code is in $doc" "$missing" ""
done

flags=$("$BINDIR/bmas-emulator" --help 2>&1 | grep -oE -- '--[a-z][a-z-]+' | sort -u)
missing=$(for f in $flags; do grep -q -- "$f" "$top/emulator/README.md" || echo "$f"; done)
expect_eq "every bmas-emulator flag is in emulator/README.md" "$missing" ""

# Paths named by the documents. A name with a folder must exist from the top (a module name in
# a diagram may leave out its .c); a bare file name must be some file of the repository.
# Outputs of the build (bin/, build/) and placeholders next to <...> are not files to check.
docs=(README.md docs/*.md emulator/README.md)
expect_eq "docs/ has the project's documents" \
    "$(cd "$top" && ls docs/architecture.md docs/configuration.md docs/formats.md docs/style.md docs/testing.md 2>&1 | wc -l)" 5
known=$(cd "$top" && find . -path ./build -prune -o -path ./.git -prune -o -name node_modules -prune \
    -o -type f -print | sed 's|.*/||' | sort -u)
bad=$(cd "$top" && for doc in "${docs[@]}"; do
    perl -ne 'while (/(?<![\w\/.:>~-])((?:\.\.\/)*(?:[A-Za-z0-9_.-]+\/)*[A-Za-z0-9_-][A-Za-z0-9_.-]*\.(?:md|c|h|sh|js|json|jsonl|txt|yaml|yml|mk|py|awk|allow)|(?:\.\.\/)+[A-Za-z0-9_.\/-]+|(?:tests|core|server|storage|emulator|docs|\.ci)\/[A-Za-z0-9_.\/-]*)(?![\w<*])/g) { print "$1\n" }' "$doc" |
        sort -u | while read -r p; do
            case "$p" in bin/* | build/* | Node.js | lower_snake.c | x.jsonl) continue ;; esac
            if [[ "$p" == ../* ]]; then
                echo "$doc: $p (outside the repository)"
            elif [[ "$p" == */* ]]; then
                [ -e "$p" ] || [ -e "$p.c" ] || echo "$doc: $p"
            else
                grep -qxF "$p" <<<"$known" || echo "$doc: $p"
            fi
        done
done)
expect_eq "every path README.md and docs/ name is in the repository" "$bad" ""
outside=$(cd "$top" && grep -nE '(\.\./)+shared|shared/(docs|vectors|samples)|\b(FORMATS|STYLE|DESIGN|CONTRACT|TESTING)\.md' \
    "${docs[@]}" $(git ls-files '*.c' '*.h' 2>/dev/null) 2>/dev/null)
expect_eq "README.md, docs/ and code comments name no document outside the repository" "$outside" ""
tap_done
