#!/bin/bash
# Help says the same everywhere: `bmas help`, `bmas help COMMAND`, `bmas COMMAND --help`/-h for
# every command, and `bmas-emulator --help`; each command's usage line names exactly the
# options its help lists, and the README's usage section is the programs' own usage lines
# (so they stay in step). Help needs no configuration; an unknown command exits 2.
set -u
. tests/tools/itest-lib.sh
W=$(mktemp -d "${TMPDIR:-/tmp}/bmas-help.XXXXXX")
trap 'rm -rf "$W" "$ITEST_HOME"' EXIT
B=$BINDIR/bmas

# The usage block: from "usage:" to the first empty line.
usage_block() { awk 'NR == 1 && !/^usage: / { exit 1 } /^$/ { exit } { print }'; }
overview=$("$B" help)
t_eq "bmas help exits 0" "0" "$?"
t_eq "bmas --help is bmas help" "$overview" "$("$B" --help)"
t_eq "bmas -h is bmas help" "$overview" "$("$B" -h)"
block=$(usage_block <<<"$overview")
cmds=$(sed -E 's/^(usage:)? +//' <<<"$block" | awk '$1 == "bmas" { c = $2; if (c == "[serve]") c = "serve"; print c }')
t_eq "the overview's usage names every command" "serve ingest sample dashboard alarms help" "$(echo $cmds)"
t_ok "the overview lists the configuration table" grep -q '^  BMAS_SQS_QUEUE_URL ' <<<"$overview"

for c in $cmds; do
    h=$("$B" help "$c")
    t_eq "bmas help $c exits 0" "0" "$?"
    if [ "$c" != help ]; then
        t_eq "bmas $c --help is bmas help $c" "$h" "$("$B" "$c" --help 2>&1)"
        t_eq "bmas $c -h is bmas help $c" "$h" "$("$B" "$c" -h 2>&1)"
    fi
    # Its usage lines, without the "usage: " indentation, are the overview's.
    mine=$(usage_block <<<"$h" | sed -E 's/^usage: //; s/^       //')
    theirs=$(sed -E 's/^usage: //; s/^       //' <<<"$block" |
        awk -v c="$c" '/^bmas / { on = ($2 == c || ($2 == "[serve]" && c == "serve")) } on')
    t_eq "bmas help $c: the overview's usage line" "$theirs" "$mine"
    [ "$c" = help ] && continue
    in_usage=$(grep -oE -- '(^| |\[)-(-[a-z][a-z-]*|[a-z])' <<<"$mine" | sed 's/^[ []//' | sort -u)
    in_options=$(awk '/^options:$/ { on = 1; next } on && /^$/ { exit } on' <<<"$h" |
        grep -oE -- '^  (-[a-z], )?--?[a-z][a-z-]*(, --?[a-z][a-z-]*)?' | grep -oE -- '--?[a-z][a-z-]*' |
        grep -vxE -- '-h|--help' | sort -u)
    t_eq "bmas help $c: the usage line names exactly the options listed" "$in_options" "$in_usage"
    t_ok "bmas help $c names the environment it reads" grep -q '^environment' <<<"$h"
done
t_ok "serve lists the configuration table" bash -c "'$B' help serve | grep -q '^  BMAS_SQS_QUEUE_URL '"
t_ok "ingest lists the configuration table" bash -c "'$B' help ingest | grep -q '^  BMAS_MAX_LINE_BYTES '"
t_ok "dashboard names BMAS_DIMENSION_SETS" bash -c "'$B' help dashboard | grep -q 'BMAS_DIMENSION_SETS'"

# Help needs no configuration (a bad variable is what someone reading help may have), the
# commands still refuse it.
t_eq "help with a bad variable still exits 0" "0" "$(BATCH_SIZE=abc "$B" help serve >/dev/null 2>&1; echo $?)"
t_eq "ingest with a bad variable exits 2" "2" "$(BATCH_SIZE=abc "$B" ingest - </dev/null >/dev/null 2>&1; echo $?)"

# Unknown commands and topics: exit 2, with the commands named.
err=$("$B" frobnicate 2>&1 >/dev/null)
t_eq "an unknown command exits 2" "2" "$("$B" frobnicate >/dev/null 2>&1; echo $?)"
t_ok "and says so, naming the commands" grep -q 'unknown command "frobnicate".*serve, ingest, sample' <<<"$err"
t_eq "bmas help of an unknown command exits 2" "2" "$("$B" help frobnicate >/dev/null 2>&1; echo $?)"
t_eq "bmas help with two topics exits 2" "2" "$("$B" help serve ingest >/dev/null 2>&1; echo $?)"

# Every option of bmas sample that its help lists works.
t_ok "bmas sample takes every option it lists" "$B" sample -o "$W/s.json" --records 3 --seed 5 \
    --start 1796000000 --span 60 --region eu-west-1 --account 210987654321 --plain --totals "$W/t"
t_eq "  and wrote what they said" "3 eu-west-1 210987654321 1796000000" \
    "$(jq -s -r '"\(length) \(map(.region) | unique | join(",")) \(.[0].accountId) \(.[0].timestamp | fromdateiso8601)"' "$W/s.json")"
t_ok "  --key prints a key of Bedrock's layout" bash -c \
    "'$B' sample --key --seed 1 | grep -qE '^AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/[0-9/]{13}/[0-9]{8}T[0-9]{6}Z_[0-9a-f]{16}\\.json\\.gz$'"
t_eq "  --kb sizes the object (a 64 KiB plain object)" "1" \
    "$("$B" sample --kb 64 --plain 2>/dev/null | wc -c | awk '{ print ($1 >= 65536 && $1 < 65536 + 8192) }')"
t_eq "  a bad value exits 2" "2" "$("$B" sample --records x >/dev/null 2>&1; echo $?)"

# bmas-emulator: its usage names exactly the options it lists.
emu=$("$BINDIR/bmas-emulator" --help)
t_eq "bmas-emulator --help exits 0" "0" "$?"
t_eq "bmas-emulator -h is --help" "$emu" "$("$BINDIR/bmas-emulator" -h)"
eblock=$(usage_block <<<"$emu")
t_eq "bmas-emulator: the usage line names exactly the options listed" \
    "$(grep -oE -- '^  --[a-z][a-z-]*' <<<"$emu" | sed 's/^  //' | grep -vxE -- '--help' | sort -u)" \
    "$(grep -oE -- '--[a-z][a-z-]*' <<<"$eblock" | grep -vxE -- '--help|--version' | sort -u)"

# README.md's usage section is these blocks, verbatim.
readme=$(cat README.md)
t_ok "README.md shows bmas's usage lines as bmas help prints them" test "${readme#*"$block"}" != "$readme"
t_ok "README.md shows bmas-emulator's usage lines as --help prints them" test "${readme#*"$eblock"}" != "$readme"
t_done
