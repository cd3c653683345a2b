#!/bin/sh
# make lint: the layout check (clang-format, .clang-format at the top) and a grep for the
# functions docs/style.md bans (curl's checksrc idea). Exits 1 on any finding.
set -u
status=0
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find core server storage emulator tests -name '*.[ch]')
banned='\b(strcpy|strcat|sprintf|vsprintf|gets|atoi|atol|strtok|gmtime|localtime|rand)[[:space:]]*\('
if grep -nE "$banned" $files | grep -v '^tests/bench/'; then
    echo "lint: banned function (docs/style.md G7) above" >&2
    status=1
fi
# Test scripts: every curl has a deadline (-m/--max-time on the line that runs it), so a hung
# server fails a check instead of hanging the run.
shells=$(git ls-files 'tests/*.sh' 2>/dev/null || find tests -name '*.sh')
if grep -nE '(^|[^_#[:alnum:]./-])curl[[:space:]]+[-"$'"'"']' $shells |
    grep -vE '^[^:]+:[0-9]+:[[:space:]]*#' | grep -vE -- '(-m[[:space:]]|--max-time)'; then
    echo "lint: curl without -m/--max-time in tests/ above" >&2
    status=1
fi
# A check's second half outside the check: `t_ok "…" [ A ] && [ B ]` (use t_all).
if awk -f tests/tools/lint-tap.awk $shells | grep .; then
    echo "lint: && / || / ; / | after a t_ok-style check runs outside it; use t_all" >&2
    status=1
fi
# Headers point one way (docs/style.md G1): the emulator uses core's runtime only, never the
# ingest or AWS clients; core never includes the service's folders.
if grep -nE '#include "core/bm_(ingest|aws)\.h"' $(echo "$files" | grep '^emulator/') ||
    grep -nE '#include "(server|storage|emulator)/' $(echo "$files" | grep '^core/'); then
    echo "lint: an include against the module dependencies (docs/style.md G1) above" >&2
    status=1
fi
if [ "${1:-}" != "--banned-only" ] && command -v clang-format >/dev/null; then
    if ! clang-format --dry-run -Werror $files 2>/tmp/bmas-lint.$$; then
        head -40 /tmp/bmas-lint.$$ >&2
        echo "lint: run clang-format -i on the files above" >&2
        status=1
    fi
    rm -f /tmp/bmas-lint.$$
fi
exit $status
