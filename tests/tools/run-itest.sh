#!/bin/bash
# Runs every tests/integration/test_*.sh with BINDIR exported (the folder of the binaries under
# test), ITEST_JOBS at a time (default: the number of CPUs + 1; each script starts its own servers
# on free ports and uses unique names, so they are independent). Prints each script's output
# once it ends, then a summary; exits 1 when any script failed.
#
# Each script runs under `timeout` (ITEST_TIMEOUT seconds, default 600) and its TAP is read
# (tests/tools/tap-count.awk): a script passes when it exits 0, printed a plan, ran as many
# checks as planned (at least one), failed none, and skipped only what tests/skips.allow lists.
# The last line counts checks: "itest: N passed, N failed, N skipped".
# ITEST_ONLY="name ..." runs only the named scripts (file names, with or without .sh).
# ITEST_ASAN="name ..." with ITEST_ASAN_BINDIR=DIR runs the named scripts against the binaries
# in DIR (the ASan+UBSan build) and the others against BINDIR, in one run.
set -u
BINDIR=$(cd "${1:-bin}" && pwd)
export BINDIR
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
export BM_TEST_DATA="${BM_TEST_DATA:-$top/tests/data}"
# pyenv's shims run several bash processes per call of python3, moto_server or the pip CLI
# (a fifth of a script's CPU went there): the folder they resolve to goes first on PATH, so the
# same programs start directly. Nothing changes without pyenv.
case ":$PATH:" in
*"/.pyenv/shims:"*)
    pybin=$(python3 -c 'import os, sys; print(os.path.dirname(os.path.realpath(sys.executable)))' 2>/dev/null)
    [ -n "$pybin" ] && [ -d "$pybin" ] && PATH="$pybin:$PATH"
    export PATH
    ;;
esac
# The pip CLI is found once for every script (tests/tools/json-cli.sh).
. tests/tools/json-cli.sh
export ITEST_JSON_CLI=$JSON_CLI ITEST_HAVE_JSON_CLI=$HAVE_JSON_CLI
# A forkserver per AWS CLI (tests/tools/cli_zygote.py, run with the CLI's own Python): the
# scripts' aws_q and aws_j start each command as a fork of it, with the CLI's imports done once
# per run instead of in each of about two hundred starts (0.7 s of CPU each). ITEST_ZYGOTE=0
# starts every CLI command directly.
export ITEST_TOOLS="$top/tests/tools"
zdir=$(mktemp -d "${TMPDIR:-/tmp}/bmas-cli.XXXXXX")
zpids=()
start_zygote() { # VAR CLI-PATH: starts the forkserver for that CLI, exports VAR=its socket
    local py
    py=$(head -1 "$2" 2>/dev/null | sed -n 's/^#! *\(\/[^ ]*python[0-9.]*\)$/\1/p')
    [ -n "$py" ] && [ -x "$py" ] || return 0
    "$py" "$ITEST_TOOLS/cli_zygote.py" "$zdir/$1.sock" 2>"$zdir/$1.log" &
    zpids+=($!)
    for _ in $(seq 100); do
        [ -S "$zdir/$1.sock" ] && break
        sleep 0.05 # polling step of the loop's 5 s deadline
    done
    [ -S "$zdir/$1.sock" ] && export "$1=$zdir/$1.sock"
}
if [ "${ITEST_ZYGOTE:-1}" = 1 ]; then
    start_zygote ITEST_ZYGOTE_Q /usr/bin/aws
    [ "$HAVE_JSON_CLI" = 1 ] && start_zygote ITEST_ZYGOTE_J "$JSON_CLI"
fi
# One more job than CPUs: scripts spend part of their time waiting on servers and clients, and
# a third job fills that (2 cores: 77% busy with two jobs).
jobs=${ITEST_JOBS:-$(( $(nproc 2>/dev/null || echo 2) + 1 ))}
out=$(mktemp -d "${TMPDIR:-/tmp}/bmas-itest.XXXXXX")
trap 'kill "${zpids[@]}" 2>/dev/null; wait "${zpids[@]}" 2>/dev/null; rm -rf "$out" "$zdir"' EXIT

ASAN_BINDIR=""
[ -n "${ITEST_ASAN_BINDIR:-}" ] && ASAN_BINDIR=$(cd "$ITEST_ASAN_BINDIR" && pwd)
bindir_for() { # script: the folder of the binaries it runs against
    local b
    b=$(basename "$1" .sh)
    case " ${ITEST_ASAN:-} " in
    *" $b "*) [ -n "$ASAN_BINDIR" ] && echo "$ASAN_BINDIR" && return ;;
    esac
    echo "$BINDIR"
}

run_one() { # script index: writes its output, exit status, duration and CPU time under $out
    local start=$(date +%s) rc=0
    BINDIR=$(bindir_for "$1") timeout -k 10 "${ITEST_TIMEOUT:-600}" bash "$1" >"$out/$2.log" 2>&1 || rc=$?
    # CPU seconds of the script and every process it waited for (bash's `times`, children line):
    # on 2 cores the suite's length is its CPU time, so this is the figure to make smaller.
    # (`times` writes to a file: in a pipe or $(...) it would run in a subshell with no children.)
    local cpu
    times >"$out/$2.times"
    cpu=$(awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/)
        printf "%.0f", u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$out/$2.times")
    echo "$rc $(( $(date +%s) - start )) $cpu" >"$out/$2.rc"
}

# The longest scripts start first, so that two jobs end together instead of one long script
# running alone at the end (ASan wall times of each script run alone on a loaded 2-core
# machine, after the CLI calls of setup and read-back went to curl; the rest follow in name
# order).
slow_first="test_emu_sqs test_service_crash test_emu_sts test_emu_multipart
test_service_dashboard test_service_publish_lock test_wire_moto test_corpus
test_service_publish test_emu_s3 test_emu_control test_emu_cloudwatch"
all=()
for b in $slow_first; do all+=("tests/integration/$b.sh"); done
for t in tests/integration/test_*.sh; do
    case " $(echo $slow_first) " in *" $(basename "$t" .sh) "*) continue ;; esac
    all+=("$t")
done
scripts=()
for t in "${all[@]}"; do
    [ -f "$t" ] || continue
    if [ -n "${ITEST_ONLY:-}" ]; then
        b=$(basename "$t" .sh)
        case " $ITEST_ONLY " in *" $b "* | *" $b.sh "*) ;; *) continue ;; esac
    fi
    scripts+=("$t")
done
running=0
jpids=()
for i in "${!scripts[@]}"; do
    if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
    run_one "${scripts[$i]}" "$i" &
    jpids+=($!)
    running=$((running + 1))
done
wait "${jpids[@]}" # the scripts, not the CLI forkservers (they run until the EXIT trap)

pass=0
fail=0
failed=""
tp=0
tf=0
ts=0
for i in "${!scripts[@]}"; do
    t=${scripts[$i]}
    read -r rc secs cpu <"$out/$i.rc"
    read -r p f s seen planned plans unlisted < <(awk -v name="$(basename "$t")" \
        -v allow="$top/tests/skips.allow" -f tests/tools/tap-count.awk "$out/$i.log" \
        2>"$out/$i.skips")
    tp=$((tp + p))
    tf=$((tf + f))
    ts=$((ts + s))
    why=""
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        why="timed out after ${ITEST_TIMEOUT:-600} s"
    elif [ "$rc" -ne 0 ]; then
        why="exit $rc"
    elif [ "$f" -ne 0 ]; then
        why="$f failed"
    elif [ "$plans" -eq 0 ]; then
        why="no TAP plan"
    elif [ "$seen" -ne "$planned" ]; then
        why="planned $planned, ran $seen"
    elif [ "$seen" -eq 0 ]; then
        why="ran no check"
    elif [ "$unlisted" -ne 0 ]; then
        why="$unlisted skips not in tests/skips.allow"
    fi
    echo "# $t (binaries: $(bindir_for "$t"))"
    cat "$out/$i.log" "$out/$i.skips"
    if [ -z "$why" ]; then
        pass=$((pass + 1))
        echo "ok - $t ($p passed, $s skipped, $secs s, CPU $cpu s)"
    else
        fail=$((fail + 1))
        failed="$failed $t"
        echo "not ok - $t ($why, $secs s, CPU $cpu s)"
    fi
done
[ -n "$failed" ] && echo "# failed:$failed"
echo "# itest: ${#scripts[@]} scripts, $pass passed, $fail failed"
echo "itest: $tp passed, $tf failed, $ts skipped"
[ "${#scripts[@]}" -gt 0 ] && [ "$fail" -eq 0 ]
