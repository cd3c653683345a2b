#!/bin/bash
# The documents say what the code does: every variable `bmas --help` lists (the configuration
# table, core/config.c) is in README.md; every error code of core's table (BM_ERR_MAP) is in
# README.md and openapi.yaml; every flag `bmas-emulator --help` names is in emulator/README.md.
set -u
. "$(dirname "$0")/../tools/tap.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)

vars=$("$BINDIR/bmas" --help 2>&1 | awk '/^  [A-Z][A-Z0-9_]+ / { print $1 }')
expect_eq "bmas --help lists the configuration table" "$([ "$(echo "$vars" | wc -l)" -gt 30 ] && echo yes)" yes
missing=$(for v in $vars; do grep -qw -- "$v" "$top/README.md" || echo "$v"; done)
expect_eq "every variable is in README.md" "$missing" ""

codes=$(grep -o '"BMAS-0[0-9][0-9]"' "$top/core/bm_core.h" | tr -d '"' | sort -u)
expect_eq "the error table has BMAS-001..010 and ours" "$(echo "$codes" | head -1)" BMAS-001
for doc in README.md openapi.yaml; do
    missing=$(for c in $codes; do grep -q -- "$c" "$top/$doc" || echo "$c"; done)
    expect_eq "every error code is in $doc" "$missing" ""
done

flags=$("$BINDIR/bmas-emulator" --help 2>&1 | grep -oE -- '--[a-z][a-z-]+' | sort -u)
missing=$(for f in $flags; do grep -q -- "$f" "$top/emulator/README.md" || echo "$f"; done)
expect_eq "every bmas-emulator flag is in emulator/README.md" "$missing" ""
tap_done
