#!/bin/sh
# Installs the Debian packages bmas builds and tests with, only when one is missing, so that a
# fresh Debian 12 clone goes to a green `make test` with no other step. Idempotent and quiet.
set -eu

# --moto: moto_server (moto, "an AWS we did not write", for test_wire_moto.sh) is a Python
# package, not a Debian one: only say whether it is here and how to get it.
if [ "${1:-}" = "--moto" ]; then
    # --help imports moto.server with moto_server's own Python (and flask with it).
    if command -v moto_server >/dev/null 2>&1 && moto_server --help >/dev/null 2>&1; then
        exit 0
    fi
    echo "bmas: moto_server not found (test_wire_moto.sh is skipped without it)" >&2
    echo "bmas: install it with: python3 -m pip install 'moto[server]==5.2.1'" >&2
    echo "bmas: (Python >= 3.9; the server extra brings flask; it must put moto_server on PATH)" >&2
    exit 1
fi

# Build libraries (pkg-config names in the Makefile) and the test peers that come from Debian:
# awscli is the Query-protocol AWS CLI (/usr/bin/aws 2.9); docker-compose (v1, Python) checks
# docker-compose.yml against the Compose schema without a Docker engine; python3 for the
# emulator's independent SigV4 test client; wrk and hyperfine drive `make bench`.
PKGS="build-essential pkg-config libmicrohttpd-dev libcurl4-openssl-dev libcjson-dev zlib1g-dev
libsqlite3-dev libcmocka-dev libssl-dev awscli docker-compose python3 jq curl time nodejs npm strace iproute2 libisal-dev isal"
# Chromium (headless, driven by puppeteer-core from tests/peers) opens GET /dashboard.
PKGS="$PKGS chromium"
PKGS="$PKGS prometheus" # promtool checks GET /metrics (test_service_metrics.sh)
if [ "${1:-}" = "--bench" ]; then
    PKGS="$PKGS wrk hyperfine"
fi

missing=""
for p in $PKGS; do
    # dpkg-query prints "install ok installed" only for a fully installed package.
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
# Node.js may come from elsewhere (nvm, NodeSource): accept any node >= 18 with npm on PATH.
case "$missing" in *nodejs*|*npm*)
    if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
        missing=$(echo "$missing" | sed 's/ nodejs//; s/ npm//')
    fi
esac
[ -z "$(echo "$missing" | tr -d ' ')" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "bmas: missing Debian packages:$missing" >&2
    echo "bmas: install them with: sudo apt-get install -y$missing" >&2
    exit 1
fi
echo "bmas: installing Debian packages:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || apt-get update
# shellcheck disable=SC2086 # word splitting of the package list is intended
apt-get install -y -qq --no-install-recommends $missing >/dev/null
