# bmas.sh: sourceable helper that runs `bmas serve` for integration tests.
#
#   . tests/tools/bmas.sh
#   BMAS_ENV="VAR=value ..." bmas_start [extra serve flags]   # needs BINDIR
#   ... use $BMAS_URL, $BMAS_LOG, $BMAS_DB ...
#   bmas_stop          # SIGTERM, waits with a deadline; BMAS_STOP_STATUS = exit status,
#                      # BMAS_STOP_SAN = sanitizer report lines found in $BMAS_LOG ("" if none)
#   srv_stop (svc-lib.sh) does the same as a TAP check that fails on either.
#
# bmas listens on 127.0.0.1 port 0 and writes the bound port to a file, so parallel tests
# never race for ports. The database is $BMAS_DB (a fresh temp file unless set before; set it
# to test a restart). Waits for /healthz with a deadline, never a bare sleep.

bmas__now_ms() { date +%s%3N; }

bmas_start() {
    : "${BINDIR:?BINDIR must name the folder holding bmas}"
    BMAS_TMP=$(mktemp -d "${TMPDIR:-/tmp}/bmas-srv.XXXXXX")
    BMAS_TMPS="${BMAS_TMPS:-} $BMAS_TMP" # removed by itest_atexit
    BMAS_DB=${BMAS_DB:-$BMAS_TMP/bmas.db}
    BMAS_LOG=$BMAS_TMP/bmas.log
    # shellcheck disable=SC2086 # BMAS_ENV is a list of VAR=value words on purpose
    env ${BMAS_ENV:-} "$BINDIR/bmas" serve --listen 127.0.0.1:0 --db "$BMAS_DB" \
        --port-file "$BMAS_TMP/port" "$@" >"$BMAS_LOG" 2>&1 &
    BMAS_PID=$!
    local deadline=$(( $(bmas__now_ms) + ${BMAS_START_TIMEOUT:-30} * 1000 ))
    while [ "$(bmas__now_ms)" -lt "$deadline" ]; do
        if ! kill -0 "$BMAS_PID" 2>/dev/null; then
            echo "bmas_start: bmas exited; its log:" >&2
            cat "$BMAS_LOG" >&2
            return 1
        fi
        if [ -s "$BMAS_TMP/port" ]; then
            BMAS_URL=http://127.0.0.1:$(cat "$BMAS_TMP/port")
            if curl -fsS -m 2 "$BMAS_URL/healthz" >/dev/null 2>&1; then
                export BMAS_URL BMAS_LOG BMAS_DB BMAS_PID
                return 0
            fi
        fi
        sleep 0.05 # polling step of the deadline loop above
    done
    echo "bmas_start: no /healthz within ${BMAS_START_TIMEOUT:-30} s; log:" >&2
    cat "$BMAS_LOG" >&2
    return 1
}

bmas_stop() {
    [ -n "${BMAS_PID:-}" ] || return 0
    kill -TERM "$BMAS_PID" 2>/dev/null
    local deadline=$(( $(bmas__now_ms) + 35000 ))
    while kill -0 "$BMAS_PID" 2>/dev/null && [ "$(bmas__now_ms)" -lt "$deadline" ]; do
        sleep 0.05 # polling step of the deadline loop above
    done
    if kill -0 "$BMAS_PID" 2>/dev/null; then
        kill -KILL "$BMAS_PID" 2>/dev/null
    fi
    wait "$BMAS_PID" 2>/dev/null
    BMAS_STOP_STATUS=$?
    BMAS_PID=
    BMAS_STOP_SAN=$(san_report "$BMAS_LOG")
}

# The lines of a server log where ASan, LSan, UBSan or TSan reported something (a leak found
# at exit, an error, a "runtime error:" from UBSan), at most 40; "" when none.
san_report() {
    [ -f "$1" ] || return 0
    grep -E 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|SUMMARY: [A-Za-z]+Sanitizer|runtime error:|WARNING: ThreadSanitizer' "$1" | head -40
}
