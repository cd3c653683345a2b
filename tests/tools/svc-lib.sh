# svc-lib.sh: helpers for the service tests. Sourcing it brings in itest-lib.sh (emulator,
# CLIs, TAP), bmas.sh and peers.sh.
#
#   svc_setup                              scratch folder $W, the emulator, bucket "logs", a
#                                          fresh sample log $W/a.json.gz, its key prefix $P for
#                                          the last hour, and cleanup of everything on EXIT
#   call NAME METHOD PATH [curl args...]   requests $BMAS_URL$PATH; sets $STATUS and $BODY, and
#                                          keeps the response under $W/resp for the OpenAPI check
#   fresh_log OUT.gz [HOURS_AGO]           the shared sample with timestamps moved to the hour
#                                          HOURS_AGO back (default 1), so CloudWatch takes them
#   form_key KEY                           KEY form-URL-encoded as S3 writes it in events
#   openapi_check                          validates every kept response against openapi.yaml

_svc_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$_svc_dir/itest-lib.sh"
. "$_svc_dir/bmas.sh"
. "$_svc_dir/peers.sh"

svc_setup() {
    itest_setup "$@"
    trap 'bmas_stop; emu_stop; itest_cleanup' EXIT
    aws_q s3api create-bucket --bucket logs >/dev/null
    fresh_log "$W/a.json.gz"
    P="AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/$(date -u -d '1 hour ago' +%Y/%m/%d/%H)"
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
    hour=$(date -u -d "${2:-1} hour ago" +%Y-%m-%dT%H)
    sed "s/2026-04-20T00:/$hour:/g" "$BM_TEST_DATA/bedrock-log-sample.jsonl" | gzip -c > "$1"
}

form_key() {
    python3 -c 'import sys, urllib.parse; print(urllib.parse.quote_plus(sys.argv[1], safe="/"))' "$1"
}

openapi_check() {
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
