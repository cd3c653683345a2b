#!/bin/bash
# docker-compose.yml stays correct on paper (no Docker engine here): it passes the Compose
# schema (docker-compose config), its Dockerfile exists, every bmas variable it sets is one bmas
# knows, and bmas accepts that environment as its configuration.
set -u
. tests/tools/itest-lib.sh
trap 'rm -rf "$ITEST_HOME"' EXIT
if command -v docker-compose >/dev/null 2>&1; then
    t_ok "docker-compose.yml passes the Compose schema" docker-compose -f docker-compose.yml config -q
else
    t_skip "docker-compose.yml passes the Compose schema" "docker-compose not installed"
fi
t_ok "the bmas image's Dockerfile exists" test -f server/Dockerfile
help=$("$BINDIR/bmas" --help)
env_lines=$(awk '/^  bmas:/ { in_bmas = 1 } in_bmas && /^    environment:/ { in_env = 1; next }
    in_env && /^      [A-Z_]+:/ { sub(/^ +/, ""); print; next } in_env && !/^      / { in_env = 0 }' docker-compose.yml)
t_ok "compose sets bmas variables" test -n "$env_lines"
while IFS= read -r line; do
    name=${line%%:*}
    case "$help" in
    *"$name"*) t_pass "bmas knows $name" ;;
    *) t_fail "bmas knows $name" ;;
    esac
done <<<"$env_lines"
# The same environment, as bmas's configuration (endpoint and paths pointed at this machine).
vars=()
while IFS= read -r line; do
    name=${line%%:*}
    value=$(echo "${line#*:}" | sed 's/^ *//; s/^"//; s/"$//')
    case "$name" in BMAS_DB | BMAS_LISTEN | AWS_ENDPOINT_URL | BMAS_SQS_QUEUE_URL) continue ;; esac
    vars+=("$name=$value")
done <<<"$env_lines"
env "${vars[@]}" "$BINDIR/bmas" ingest "$BM_TEST_DATA/bedrock-log-sample.jsonl" >/dev/null 2>&1
t_eq "bmas accepts the compose environment" "0" "$?"
t_ok "setup uploads the shared sample" grep -q "bedrock-log-sample.jsonl" docker-compose.yml
t_done
