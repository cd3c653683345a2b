# peers.sh: sourceable helpers for the npm test peers in tests/peers (s3rver, AWS's SigV4
# signer). peers_install runs `npm ci` from the lockfile once (the clean-clone path); a test
# calls it first and skips its peer-based checks when Node.js or npm is missing.
peers_install() {
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || return 1
    # Reinstall whenever the lockfile changed since the last install (a stamp holds its hash).
    want=$(cksum < tests/peers/package-lock.json)
    [ -f tests/peers/node_modules/.bmas-stamp ] &&
        [ "$(cat tests/peers/node_modules/.bmas-stamp)" = "$want" ] && return 0
    # Parallel test scripts may all arrive here: one installs, the others wait for it.
    (
        flock 9
        [ -f tests/peers/node_modules/.bmas-stamp ] &&
            [ "$(cat tests/peers/node_modules/.bmas-stamp)" = "$want" ] && exit 0
        cd tests/peers && npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>&1 &&
            echo "$want" > node_modules/.bmas-stamp
    ) 9>"${TMPDIR:-/tmp}/bmas-peers.lock" || {
        echo "peers: npm ci in tests/peers failed" >&2
        return 1
    }
}

# s3rver_start [--seed FILE --seed-prefix P --seed-copies N ...]: starts s3rver behind the
# SigV4-checking front door; sets S3P_URL (front, signed requests only), S3P_BACKEND_URL,
# S3P_LOG. Waits for the port file with a deadline.
s3rver_start() {
    S3P_TMP=$(mktemp -d "${TMPDIR:-/tmp}/bmas-s3rver.XXXXXX")
    S3P_LOG=$S3P_TMP/log
    # s3rver's ListObjectsV2 paging needs the legacy OpenSSL provider on Node 20 (docs/testing.md).
    NODE_OPTIONS=--openssl-legacy-provider node tests/peers/s3_signed_proxy.js \
        --dir "$S3P_TMP/data" --port-file "$S3P_TMP/ports" "$@" >"$S3P_LOG" 2>&1 &
    S3P_PID=$!
    deadline=$(( $(date +%s) + 60 ))
    while [ ! -s "$S3P_TMP/ports" ]; do
        if ! kill -0 "$S3P_PID" 2>/dev/null || [ "$(date +%s)" -ge "$deadline" ]; then
            echo "s3rver_start: failed; log:" >&2
            cat "$S3P_LOG" >&2
            return 1
        fi
        sleep 0.1 # polling step of the deadline loop
    done
    read -r front back < "$S3P_TMP/ports"
    S3P_URL=http://127.0.0.1:$front
    S3P_BACKEND_URL=http://127.0.0.1:$back
}

s3rver_stop() {
    [ -n "${S3P_PID:-}" ] && kill "$S3P_PID" 2>/dev/null && wait "$S3P_PID" 2>/dev/null
    [ -n "${S3P_TMP:-}" ] && rm -rf "$S3P_TMP"
    S3P_PID=
}
