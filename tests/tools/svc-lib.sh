# svc-lib.sh: helpers for the service tests. Sourcing it brings in itest-lib.sh (emulator,
# CLIs, TAP), bmas.sh and peers.sh.
#
#   svc_setup                              scratch folder $W, the emulator, bucket "logs", a
#                                          fresh sample log $W/a.json.gz, its key prefix $P for
#                                          the last hour, and cleanup of everything on EXIT.
#                                          The clock is read once: $SVC_NOW (epoch seconds) and
#                                          $H, the sample's hour (YYYY-MM-DDTHH, an hour before
#                                          SVC_NOW), so no check races an hour boundary
#   call NAME METHOD PATH [curl args...]   requests $BMAS_URL$PATH; sets $STATUS and $BODY, and
#                                          keeps the response under $W/resp for the OpenAPI check
#   fresh_log OUT.gz [HOURS_AGO]           the sample (tests/data) with timestamps moved to the
#                                          hour HOURS_AGO before $SVC_NOW (default 1), so
#                                          CloudWatch takes them
#   form_key KEY                           KEY form-URL-encoded as S3 writes it in events
#   openapi_check [curl args...]           first GETs each route of $OPENAPI_GETS (with the
#                                          args, e.g. the token), then validates every kept
#                                          response against openapi.yaml (which also wants every
#                                          documented 200 seen in the script)
#   srv_stop [bmas|emu] [NAME]             stops the server (bmas by default) with SIGTERM and
#                                          waits; one check: exit status 0 and no sanitizer
#                                          report (ASan/LSan/UBSan) in its log. Call it at the
#                                          end of a script for every server it started, and
#                                          before each restart.

_svc_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$_svc_dir/itest-lib.sh"
. "$_svc_dir/bmas.sh"
. "$_svc_dir/peers.sh"

svc_setup() {
    itest_setup "$@"
    trap itest_atexit EXIT
    s3_mb logs || { echo "svc_setup: bucket logs not created" >&2; exit 1; }
    SVC_NOW=$(date -u +%s)
    H=$(date -u -d "@$((SVC_NOW - 3600))" +%Y-%m-%dT%H)
    fresh_log "$W/a.json.gz"
    P="AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/$(date -u -d "@$((SVC_NOW - 3600))" +%Y/%m/%d/%H)"
}

srv_stop() {
    local which=${1:-bmas} st san
    local name=${2:-$which}
    case $which in
    bmas)
        if [ -z "${BMAS_PID:-}" ]; then
            t_fail "$name: stopped (it was not running)"
            return 1
        fi
        bmas_stop
        st=$BMAS_STOP_STATUS san=$BMAS_STOP_SAN
        ;;
    emu)
        if [ -z "${EMU_PID:-}" ]; then
            t_fail "$name: stopped (it was not running)"
            return 1
        fi
        emu_stop
        st=$EMU_STOP_STATUS san=$EMU_STOP_SAN
        ;;
    *)
        t_fail "srv_stop: unknown server $which"
        return 1
        ;;
    esac
    if [ "$st" = 0 ] && [ -z "$san" ]; then
        t_pass "$name: SIGTERM, exit 0, no sanitizer report"
        return 0
    fi
    t_fail "$name: SIGTERM, exit 0, no sanitizer report"
    echo "#   exit status $st"
    printf '%s\n' "$san" | sed '/^$/d; s/^/#   /'
    [ "$which" = bmas ] && [ -f "${BMAS_LOG:-}" ] && tail -20 "$BMAS_LOG" | sed 's/^/#   log: /'
    return 1
}

call() {
    local name=$1 method=$2 path=$3
    shift 3
    mkdir -p "$W/resp"
    local out
    out=$(curl -m 60 -sS -X "$method" -o "$W/resp/$name.body" -D "$W/resp/$name.hdr" \
        -w '%{http_code} %{content_type}' "$@" "$BMAS_URL$path")
    STATUS=${out%% *}
    local ctype=${out#* }
    ctype=${ctype%%;*}
    BODY=$(cat "$W/resp/$name.body")
    echo "$method ${path%%\?*} $STATUS $ctype" > "$W/resp/$name.meta"
}

fresh_log() {
    local hour
    hour=$(date -u -d "@$(( ${SVC_NOW:-$(date -u +%s)} - ${2:-1} * 3600 ))" +%Y-%m-%dT%H)
    sed "s/2026-04-20T00:/$hour:/g" "$BM_TEST_DATA/bedrock-log-sample.jsonl" | gzip -c > "$1"
}

form_key() {
    python3 -c 'import sys, urllib.parse; print(urllib.parse.quote_plus(sys.argv[1], safe="/"))' "$1"
}

# Routes with no parameters that every openapi_check script fetches once, so that a new route
# is covered by adding it here instead of to each script.
OPENAPI_GETS="/healthz /dashboard /metrics"

openapi_check() {
    local r
    for r in $OPENAPI_GETS; do
        call "openapi${r//\//-}" GET "$r" "$@" -m 30
    done
    if ! peers_install; then
        t_skip "responses match openapi.yaml" "Node.js/npm unavailable"
        return
    fi
    local out
    if out=$(node tests/peers/openapi_check.js openapi.yaml "$W/resp" 2>&1); then
        t_pass "every response matches openapi.yaml ($(echo "$out" | grep -c '^ok') responses)"
    else
        t_fail "responses match openapi.yaml"
        echo "$out" | grep -v '^ok' | sed 's/^/#   /'
    fi
}

# Shared by the publishing and dashboard scripts.
put_and_post() { # KEY FILE: uploads, then POSTs its S3 event; prints the HTTP status
    local etag ev
    etag=$(s3_upload logs "$1" "$2")
    ev=$(jq -c --arg k "$(form_key "$1")" --arg e "$etag" '.Records[0].s3.bucket.name = "logs"
        | .Records[0].s3.object.key = $k | .Records[0].s3.object.eTag = $e' "$BM_TEST_DATA/s3-event.json")
    curl -m 60 -sS -o /dev/null -w '%{http_code}' --data "$ev" "$BMAS_URL/events"
}
cw_stat() { # METRIC STAT DIM=VALUE...: one statistic over the last hours, from CloudWatch
    # (GetMetricStatistics through curl; cw_stat_cli reads the same through Debian's AWS CLI)
    local metric=$1 stat=$2
    shift 2
    cw_get_stat Custom/BedrockMetrics "$metric" "$stat" 86400 "$(date -u -d '3 hours ago' +%Y-%m-%dT%H:00:00Z)" \
        "$(date -u -d '1 hour' +%Y-%m-%dT%H:00:00Z)" "$@"
}
cw_stat_cli() { # the same, through the AWS CLI (get-metric-statistics, Query protocol)
    local metric=$1 stat=$2
    shift 2
    local dims=()
    for d in "$@"; do dims+=("Name=${d%%=*},Value=${d#*=}"); done
    aws_q cloudwatch get-metric-statistics --namespace Custom/BedrockMetrics --metric-name "$metric" \
        --dimensions "${dims[@]}" --statistics "$stat" --period 86400 \
        --start-time "$(date -u -d '3 hours ago' +%Y-%m-%dT%H:00:00Z)" \
        --end-time "$(date -u -d '1 hour' +%Y-%m-%dT%H:00:00Z)" | jq ".Datapoints | map(.$stat) | add // 0"
}
