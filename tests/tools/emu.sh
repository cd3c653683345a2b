# emu.sh: sourceable helper that runs bmas-emulator for integration tests.
#
#   . tests/tools/emu.sh
#   emu_start [extra bmas-emulator flags...]   # needs BINDIR (folder holding bmas-emulator)
#   ... use $EMU_URL (http://127.0.0.1:PORT), $EMU_PORT, $EMU_DATA, $EMU_LOG ...
#   emu_stop                                    # also runs on EXIT (see below)
#
# The emulator listens on 127.0.0.1 port 0 (the kernel picks a free port, written to a port
# file), so parallel runs never race for ports. State goes to $EMU_DATA: a fresh temp folder
# unless the caller set EMU_DATA before emu_start (then it is kept, e.g. to test a restart).
# emu_start waits for /_localstack/health with a deadline (EMU_START_TIMEOUT seconds, default
# 10) and installs `trap emu_stop EXIT` when no EXIT trap is set; a test with its own EXIT
# trap should call emu_stop (or itest_atexit) from it.
# Extra accepted credentials: EMU_CREDENTIALS="AKID:SECRET,..." (test:test always works).

emu__now_ms() { date +%s%3N; }

emu_start() {
    : "${BINDIR:?BINDIR must name the folder holding bmas-emulator}"
    EMU_TMP=$(mktemp -d "${TMPDIR:-/tmp}/bmas-emu.XXXXXX")
    EMU_OWN_DATA=0
    if [ -z "${EMU_DATA:-}" ]; then
        EMU_DATA=$EMU_TMP/data
        EMU_OWN_DATA=1
    fi
    EMU_LOG=$EMU_TMP/emulator.log
    set -- --listen 127.0.0.1:0 --port-file "$EMU_TMP/port" --data "$EMU_DATA" "$@"
    if [ -n "${EMU_CREDENTIALS:-}" ]; then
        set -- "$@" --credentials "$EMU_CREDENTIALS"
    fi
    "$BINDIR/bmas-emulator" "$@" >"$EMU_LOG" 2>&1 &
    EMU_PID=$!
    local deadline=$(( $(emu__now_ms) + ${EMU_START_TIMEOUT:-30} * 1000 ))
    EMU_PORT=""
    while [ "$(emu__now_ms)" -lt "$deadline" ]; do
        if ! kill -0 "$EMU_PID" 2>/dev/null; then
            echo "emu_start: bmas-emulator exited; its log:" >&2
            cat "$EMU_LOG" >&2
            return 1
        fi
        if [ -z "$EMU_PORT" ] && [ -s "$EMU_TMP/port" ]; then
            EMU_PORT=$(cat "$EMU_TMP/port")
        fi
        if [ -n "$EMU_PORT" ] &&
            curl -fsS -m 2 "http://127.0.0.1:$EMU_PORT/_localstack/health" >/dev/null 2>&1; then
            EMU_URL=http://127.0.0.1:$EMU_PORT
            export EMU_URL EMU_PORT EMU_DATA EMU_LOG EMU_PID
            # Keeps a caller's EXIT trap (itest_setup's checks the servers' exit).
            [ -n "$(trap -p EXIT)" ] || trap emu_stop EXIT
            return 0
        fi
        sleep 0.05 # polling step of the deadline loop above
    done
    echo "emu_start: no health answer within ${EMU_START_TIMEOUT:-30} s; log:" >&2
    cat "$EMU_LOG" >&2
    emu_stop
    return 1
}

# Stops the emulator with SIGTERM (it flushes its state) and waits for it with a deadline,
# then removes the temp folder (and the data folder when emu_start created it).
# EMU_STOP_STATUS is the emulator's exit status (137 when it had to be killed), EMU_STOP_SAN
# the sanitizer report lines of its log ("" if none; srv_stop emu in svc-lib.sh checks both).
emu_stop() {
    if [ -n "${EMU_PID:-}" ]; then
        kill -TERM "$EMU_PID" 2>/dev/null
        local deadline=$(( $(emu__now_ms) + 10000 ))
        while kill -0 "$EMU_PID" 2>/dev/null && [ "$(emu__now_ms)" -lt "$deadline" ]; do
            sleep 0.05
        done
        if kill -0 "$EMU_PID" 2>/dev/null; then
            echo "emu_stop: bmas-emulator ignored SIGTERM; killing it" >&2
            kill -KILL "$EMU_PID" 2>/dev/null
        fi
        wait "$EMU_PID" 2>/dev/null
        EMU_STOP_STATUS=$?
        EMU_PID=""
        EMU_STOP_SAN=$(grep -E 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|SUMMARY: [A-Za-z]+Sanitizer|runtime error:|WARNING: ThreadSanitizer' "$EMU_LOG" 2>/dev/null | head -40)
    fi
    if [ -n "${EMU_TMP:-}" ]; then
        [ "${EMU_KEEP_LOG:-0}" = 1 ] && cat "$EMU_LOG" >&2
        rm -rf "$EMU_TMP"
        [ "${EMU_OWN_DATA:-0}" = 1 ] && unset EMU_DATA
        EMU_TMP=""
    fi
}
