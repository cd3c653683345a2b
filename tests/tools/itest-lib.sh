# itest-lib.sh: sourceable TAP helpers and AWS CLI wrappers for tests/integration/*.sh.
#
#   itest_setup [bmas-emulator flags...]   scratch folder $W, the emulator (tests/tools/emu.sh)
#                                          started, cleanup on EXIT, and $J (see below)
#
#   t_ok "description" command...     passes when the command exits 0
#   t_eq "description" expected actual
#   t_all "description" cmd1 args -- cmd2 args [-- ...]
#                                     passes when every command exits 0 (a compound check:
#                                     never write `t_ok "…" [ A ] && [ B ]`, whose second
#                                     test runs outside t_ok; lint.sh refuses it)
#   t_range "description" LOW HIGH VALUE   passes when LOW <= VALUE <= HIGH (integers)
#   emu_fault JSON                    POSTs a fault rule to the emulator, as a check that it
#                                     was accepted (200 with an id): a typo cannot pass as a fault
#   t_done                            prints the plan and returns non-zero when any failed
#   aws_q ARGS...   Debian's /usr/bin/aws (CLI v2, Query protocol) against $EMU_URL
#   aws_j ARGS...   the pip `aws` on PATH (CLI v1, JSON 1.0), when HAVE_JSON_CLI=1
#   t_aws_err "description" CODE CLI ARGS...  expects the CLI to fail with that error code
#
# The CLIs see test/test credentials in us-east-1 and no user configuration (an empty HOME),
# with retries off so that injected faults are seen once.

T_N=0
T_FAIL=0
t_pass() { T_N=$((T_N + 1)); echo "ok $T_N - $1"; }
t_fail() { T_N=$((T_N + 1)); T_FAIL=$((T_FAIL + 1)); echo "not ok $T_N - $1"; }
t_ok() {
    local d=$1
    shift
    if "$@"; then t_pass "$d"; else t_fail "$d"; fi
}
t_eq() {
    if [ "$2" = "$3" ]; then
        t_pass "$1"
    else
        t_fail "$1"
        printf '#   expected: %s\n#   actual:   %s\n' "$2" "$3"
    fi
}
t_all() {
    local d=$1 part=1 bad=""
    shift
    local cmd=()
    while [ $# -gt 0 ] || [ ${#cmd[@]} -gt 0 ]; do
        if [ $# -eq 0 ] || [ "$1" = "--" ]; then
            if [ ${#cmd[@]} -eq 0 ] || ! "${cmd[@]}"; then
                bad="$bad $part (${cmd[*]:-empty})"
            fi
            cmd=()
            part=$((part + 1))
            [ $# -gt 0 ] && shift
            continue
        fi
        cmd+=("$1")
        shift
    done
    if [ -z "$bad" ]; then
        t_pass "$d"
    else
        t_fail "$d"
        echo "#   failed part:$bad"
    fi
}
t_range() {
    if [[ "$4" =~ ^-?[0-9]+$ ]] && [ "$4" -ge "$2" ] && [ "$4" -le "$3" ]; then
        t_pass "$1"
    else
        t_fail "$1"
        echo "#   expected $2..$3, got: $4"
    fi
}
t_skip() { T_N=$((T_N + 1)); echo "ok $T_N - $1 # SKIP $2"; }
t_done() {
    echo "1..$T_N"
    [ "$T_FAIL" -eq 0 ]
}

ITEST_HOME=$(mktemp -d "${TMPDIR:-/tmp}/bmas-itest-home.XXXXXX")
export HOME=$ITEST_HOME
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_PAGER=""
export AWS_MAX_ATTEMPTS=1 AWS_RETRY_MODE=standard AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL

# The pip CLI v1 on PATH speaks JSON 1.0 to SQS and CloudWatch; a fresh machine may only have
# Debian's /usr/bin/aws, and then the JSON parts are skipped.
. "$(dirname "${BASH_SOURCE[0]}")/json-cli.sh"

# cli CLI-PATH ARGS...: the CLI, started through run-itest.sh's forkserver for it when there is
# one (tests/tools/cli_zygote.py: the same unmodified CLI in a fresh process, its imports done
# once per run), else directly.
cli() {
    local sock=""
    case "$1" in
    /usr/bin/aws) sock=${ITEST_ZYGOTE_Q:-} ;;
    "${JSON_CLI:-}") sock=${ITEST_ZYGOTE_J:-} ;;
    esac
    if [ -n "$sock" ] && [ -S "$sock" ]; then
        /usr/bin/python3 -S "$ITEST_TOOLS/cli_client.py" "$sock" "$@"
    else
        "$@"
    fi
}
aws_q() { cli /usr/bin/aws --endpoint-url "$EMU_URL" --output json "$@"; }
# Both get --endpoint-url: Debian's v2.9 ignores AWS_ENDPOINT_URL, and so does this pip v1.
aws_j() { cli "$JSON_CLI" --endpoint-url "$EMU_URL" --output json "$@"; }

# The CLI to use for a protocol-neutral step: each test alternates so both get exercised.
clis() { if [ "$HAVE_JSON_CLI" = 1 ]; then echo "aws_q aws_j"; else echo "aws_q"; fi; }

# Runs a CLI command that must fail; passes when stderr names the expected error code.
t_aws_err() {
    local d=$1 code=$2
    shift 2
    local err
    if err=$("$@" 2>&1 >/dev/null); then
        t_fail "$d (succeeded, expected $code)"
        return
    fi
    case "$err" in
    *"($code)"*) t_pass "$d" ;;
    *)
        t_fail "$d"
        echo "#   expected error code $code, got: $(echo "$err" | tr '\n' ' ')"
        ;;
    esac
}

ITEST_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$ITEST_TOP/tests/tools/emu.sh"

itest_cleanup() { rm -rf "$ITEST_HOME" "${W:-}"; }

# The EXIT trap of itest_setup and svc_setup: a server still running when the script ends is
# stopped, and a non-zero exit or a sanitizer report fails the script (a server stopped here
# cannot slip its leaks past the run). Scripts still stop their servers explicitly with srv_stop
# (svc-lib.sh); this is the net for early exits. Extra cleanup: ITEST_ATEXIT="command".
itest_atexit() {
    local rc=$? bad=0
    if [ -n "${BMAS_PID:-}" ] && declare -F bmas_stop >/dev/null; then
        bmas_stop
        if [ "$BMAS_STOP_STATUS" != 0 ] || [ -n "$BMAS_STOP_SAN" ]; then
            echo "# bmas, stopped at exit: status $BMAS_STOP_STATUS"
            printf '%s\n' "$BMAS_STOP_SAN" | sed '/^$/d; s/^/#   /'
            bad=1
        fi
    fi
    if [ -n "${EMU_PID:-}" ]; then
        emu_stop
        if [ "$EMU_STOP_STATUS" != 0 ] || [ -n "$EMU_STOP_SAN" ]; then
            echo "# bmas-emulator, stopped at exit: status $EMU_STOP_STATUS"
            printf '%s\n' "$EMU_STOP_SAN" | sed '/^$/d; s/^/#   /'
            bad=1
        fi
    else
        emu_stop # removes its temp folder
    fi
    [ -n "${ITEST_ATEXIT:-}" ] && eval "$ITEST_ATEXIT"
    # shellcheck disable=SC2086 # a list of folders bmas_start made
    [ -n "${BMAS_TMPS:-}" ] && rm -rf $BMAS_TMPS
    itest_cleanup
    if [ "$bad" = 1 ]; then
        echo "not ok - a server failed when stopped at the end of the script"
        exit 1
    fi
    exit "$rc"
}

# Steps that either CLI may run use $J: the pip CLI when present (so both protocols get
# exercised across a test), else Debian's.
itest_setup() {
    W=$(mktemp -d "${TMPDIR:-/tmp}/bmas-itest.XXXXXX")
    trap itest_atexit EXIT
    J=aws_q
    [ "$HAVE_JSON_CLI" = 1 ] && J=aws_j
    emu_start "$@"
}

# Signs a request with libcurl's own SigV4 (CURLOPT_AWS_SIGV4), a client independent of both
# CLIs: curl_sigv4 SERVICE [curl args...]. S3 needs x-amz-content-sha256, which curl signs.
curl_sigv4() {
    local svc=$1
    shift
    curl -m 60 -sS --aws-sigv4 "aws:amz:us-east-1:$svc" --user "${CURL_AKID:-test}:${CURL_SECRET:-test}" "$@"
}

# Setup and read-back without a CLI start (each costs about a second of CPU): S3, SQS and
# CloudWatch through curl's SigV4 as test/test. Keep the CLIs for the checks whose point is
# that a CLI works against the emulator.
#   s3_mb BUCKET [REGION]            creates a bucket (REGION: its LocationConstraint)
#   s3_upload BUCKET KEY FILE [REGION]  uploads FILE; prints the ETag without quotes
#   sqs_api OPERATION JSON           one SQS call in JSON 1.0 (AmazonSQS.*); prints the answer
#   cw_api OPERATION JSON            one CloudWatch call in JSON 1.0; prints the answer
# Each fails (non-zero) on an HTTP error.
s3_key_path() { printf '%s' "$1" | jq -sRr 'split("/") | map(@uri) | join("/")'; }
s3_mb() {
    local region=${2:-us-east-1} conf=()
    [ "$region" != us-east-1 ] && conf=(--data-binary "<CreateBucketConfiguration><LocationConstraint>$region</LocationConstraint></CreateBucketConfiguration>")
    curl -m 60 -sSf -o /dev/null --aws-sigv4 "aws:amz:$region:s3" --user test:test -X PUT \
        -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "${conf[@]}" "$EMU_URL/$1"
}
s3_upload() {
    local etag
    etag=$(curl -m 60 -sSf -o /dev/null -D - --aws-sigv4 "aws:amz:${4:-us-east-1}:s3" --user test:test \
        -X PUT -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' --data-binary @"$3" \
        "$EMU_URL/$1/$(s3_key_path "$2")" | tr -d '\r' | sed -n 's/^[Ee][Tt][Aa][Gg]: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p') || return 1
    [ -n "$etag" ] && echo "$etag"
}
aws_json_api() { # SERVICE TARGET-PREFIX OPERATION JSON
    curl -m 60 -sSf --aws-sigv4 "aws:amz:us-east-1:$1" --user test:test \
        -H 'Content-Type: application/x-amz-json-1.0' -H "X-Amz-Target: $2.$3" --data "$4" "$EMU_URL/"
}
sqs_api() { aws_json_api sqs AmazonSQS "$1" "$2"; }
cw_api() { aws_json_api monitoring GraniteServiceVersion20100801 "$1" "$2"; }

# cw_get_stat NAMESPACE METRIC STAT PERIOD START END [DIM=VALUE...]: GetMetricStatistics in
# JSON 1.0 (START and END as `date -d` reads them); prints the datapoints' STAT added up, 0 for none.
cw_get_stat() {
    local ns=$1 metric=$2 stat=$3 period=$4 start end dims="[]" d
    start=$(date -u -d "$5" +%s) && end=$(date -u -d "$6" +%s) || return 1
    shift 6
    for d in "$@"; do
        dims=$(jq -c --arg n "${d%%=*}" --arg v "${d#*=}" '. + [{Name: $n, Value: $v}]' <<<"$dims")
    done
    cw_api GetMetricStatistics "$(jq -cn --arg ns "$ns" --arg m "$metric" --arg s "$stat" \
        --argjson p "$period" --argjson a "$start" --argjson b "$end" --argjson d "$dims" \
        '{Namespace: $ns, MetricName: $m, Dimensions: $d, Statistics: [$s], Period: $p,
          StartTime: $a, EndTime: $b}')" | jq ".Datapoints | map(.$stat) | add // 0"
}

# t_cw_err NAME CODE CLI OPERATION JSON-PARAMS: a CloudWatch request the emulator must refuse,
# signed by curl in the protocol of that CLI (aws_q: Query, the JSON flattened into
# A.member.N.B form fields; aws_j: JSON 1.0), without a CLI start. Passes on a 4xx whose code
# (Query's <Code>, JSON 1.0's x-amzn-query-error, which is what the CLIs read) is CODE. Keep
# the CLIs themselves for the checks whose point is how a CLI reads the error.
t_cw_err() {
    local d=$1 code=$2 cli=$3 op=$4 params=$5 st got
    if [ "$cli" = aws_j ]; then
        st=$(curl -m 60 -sS -o /dev/null -D "$W/cwerr.hdr" -w '%{http_code}' \
            --aws-sigv4 "aws:amz:us-east-1:monitoring" --user test:test \
            -H 'Content-Type: application/x-amz-json-1.0' \
            -H "X-Amz-Target: GraniteServiceVersion20100801.$op" --data-binary "$params" "$EMU_URL/")
        got=$(tr -d '\r' <"$W/cwerr.hdr" | sed -n 's/^x-amzn-query-error: *\([^;]*\);.*/\1/Ip')
    else
        jq -r 'def flat(p): if type == "object" then to_entries[] as $e | $e.value | flat(p + [$e.key])
                elif type == "array" then to_entries[] as $e | $e.value | flat(p + ["member", "\($e.key + 1)"])
                else "\(p | join("."))=\(.)" end;
            flat([])' <<<"$params" >"$W/cwerr.form"
        local form=() kv
        while IFS= read -r kv; do form+=(--data-urlencode "$kv"); done <"$W/cwerr.form"
        st=$(curl -m 60 -sS -o "$W/cwerr.xml" -w '%{http_code}' \
            --aws-sigv4 "aws:amz:us-east-1:monitoring" --user test:test \
            --data "Action=$op" --data Version=2010-08-01 "${form[@]}" "$EMU_URL/")
        got=$(sed -n 's:.*<Code>\([^<]*\)</Code>.*:\1:p' "$W/cwerr.xml")
    fi
    t_eq "$d" "4xx $code" "${st%??}xx $got"
}

# POSTs one fault rule (JSON) to the emulator and checks that it was accepted.
emu_fault() {
    local out
    out=$(curl -m 30 -sS -w '\n%{http_code}' --data "$1" "$EMU_URL/_emulator/faults")
    if [ "${out##*$'\n'}" = 200 ] && printf '%s' "${out%$'\n'*}" | jq -e '.id > 0' >/dev/null; then
        t_pass "fault rule accepted: $1"
    else
        t_fail "fault rule accepted: $1"
        echo "#   answer: $(printf '%s' "$out" | tr '\n' ' ')"
    fi
}

# Milliseconds since the epoch (for latency assertions); bash's clock, no process started.
now_ms() {
    local t=${EPOCHREALTIME:-}
    if [ -n "$t" ]; then t=${t/[.,]/}; echo $(( t / 1000 )); else date +%s%3N; fi
}

# Waits until a command succeeds, polling with a deadline in seconds: wait_for SECS cmd...
# CMD... as a terminal runs it, for a test of Ctrl-C: SIGINT at its default (a script's
# background job starts with SIGINT ignored, and bash cannot trap a signal ignored on entry)
# and a session of its own, so `kill -INT -- -PID` is a terminal's Ctrl-C to it and all it
# starts. Only in the background (`as_terminal cmd ... &`): it execs, so $! is CMD's session.
as_terminal() {
    exec python3 -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL); os.setsid(); os.execvp(sys.argv[1], sys.argv[1:])' "$@"
}
wait_for() {
    local secs=$1 t
    shift
    t=$(now_ms)
    local deadline=$(( t + secs * 1000 ))
    while ! "$@"; do
        t=$(now_ms)
        [ "$t" -ge "$deadline" ] && return 1
        sleep 0.1
    done
}

# Runs a command with another secret (or access key): with_secret SECRET cmd...,
# with_akid AKID cmd... (subshells, so the test's own credentials stay).
with_secret() { (export AWS_SECRET_ACCESS_KEY=$1; shift; "$@"); }
with_akid() { (export AWS_ACCESS_KEY_ID=$1; shift; "$@"); }
