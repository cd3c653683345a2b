#!/bin/bash
# pg-lib.sh: a throw-away PostgreSQL server for one test, on 127.0.0.1 and a free port.
#
#   . tests/tools/pg-lib.sh; pg_start   initdb in a temporary folder, start the server, create
#                                       database "bmas"; exports PG_URL (postgresql://...) and
#                                       PG_DIR; returns non-zero with a message when it cannot
#   pg_stop                             stops the server and removes its folder (idempotent)
#   tests/tools/pg-lib.sh run CMD...    pg_start, then CMD with PG_URL exported, then pg_stop;
#                                       exits with CMD's status (1 when the server did not start)
#
# The server refuses to run as root, so as root every server command runs as the `postgres`
# user (Debian's postgresql package creates it) and the folder is handed to that user.
# Durability is switched off (no fsync, no full pages): a test proves logic, not the disk.
# PG_DURABLE=1 (the benchmark's) keeps the server's defaults instead: fsync, synchronous_commit
# and full_page_writes on, each commit flushed to disk as on a production server.
# The superuser has a random password, so clients go through real password authentication.

pg_bindir() { # the newest installed server's bin folder (Debian: /usr/lib/postgresql/N/bin)
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4,4n | tail -1)
    [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] || return 1
    echo "$d"
}

pg_as() { # runs a server command as postgres when we are root
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

pg_free_port() { # a TCP port nobody listens on now (the kernel's pick for port 0)
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

pg_start() {
    local bin pw port try
    if ! bin=$(pg_bindir); then
        echo "pg-lib: no PostgreSQL server under /usr/lib/postgresql (tests/tools/deps.sh installs postgresql)" >&2
        return 1
    fi
    if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
        echo "pg-lib: running as root but there is no postgres user to run the server as" >&2
        return 1
    fi
    # The server's user must reach its folder: a TMPDIR private to root would stop it.
    local parent=${TMPDIR:-/tmp}
    if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$parent" 2>/dev/null; then
        parent=/tmp
    fi
    PG_DIR=$(mktemp -d "$parent/bmas-pg.XXXXXX") || return 1
    export PG_DIR
    pw=$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')
    printf '%s\n' "$pw" >"$PG_DIR/pw"
    [ "$(id -u)" -eq 0 ] && chown -R postgres: "$PG_DIR"
    chmod 700 "$PG_DIR"
    # --no-sync: nothing of the new cluster is flushed; trust only on the socket (in PG_DIR,
    # which only the server's user can enter), passwords on TCP.
    if ! pg_as "$bin/initdb" -D "$PG_DIR/data" -U postgres --no-sync --no-instructions -E UTF8 \
        --locale=C --auth-local=trust --auth-host=scram-sha-256 --pwfile="$PG_DIR/pw" \
        >"$PG_DIR/initdb.log" 2>&1; then
        echo "pg-lib: initdb failed:" >&2
        cat "$PG_DIR/initdb.log" >&2
        pg_stop
        return 1
    fi
    local tuning="-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=32MB"
    [ "${PG_DURABLE:-0}" = 1 ] && tuning=""
    # A port can be taken between choosing and binding it: try a few.
    for try in 1 2 3 4 5; do
        port=$(pg_free_port) || break
        # pg_ctl starts the server in a session of its own: a terminal's Ctrl-C reaches the
        # caller's process group (make run-pg stops its bmas first), not the server.
        if pg_as "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$PG_DIR \
-c max_connections=100 $tuning" start >"$PG_DIR/pg_ctl.log" 2>&1; then
            PG_PORT=$port
            break
        fi
    done
    if [ -z "${PG_PORT:-}" ]; then
        echo "pg-lib: the PostgreSQL server did not start:" >&2
        cat "$PG_DIR/pg_ctl.log" "$PG_DIR/server.log" >&2 2>/dev/null
        pg_stop
        return 1
    fi
    export PG_PORT
    if ! pg_as "$bin/createdb" -h "$PG_DIR" -p "$PG_PORT" -U postgres bmas >"$PG_DIR/createdb.log" 2>&1; then
        echo "pg-lib: createdb failed:" >&2
        cat "$PG_DIR/createdb.log" >&2
        pg_stop
        return 1
    fi
    export PG_URL="postgresql://postgres:$pw@127.0.0.1:$PG_PORT/bmas"
}

pg_stop() {
    local bin
    [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR" ] || return 0
    # Immediate: the data goes away anyway, and a test must not wait for clients to leave.
    if [ -f "$PG_DIR/data/postmaster.pid" ] && bin=$(pg_bindir); then
        pg_as "$bin/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1
    fi
    rm -rf "$PG_DIR"
    unset PG_DIR PG_PORT PG_URL
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    if [ "${1:-}" != run ] || [ $# -lt 2 ]; then
        echo "usage: tests/tools/pg-lib.sh run COMMAND [ARGS...]" >&2
        exit 2
    fi
    shift
    trap pg_stop EXIT
    trap 'exit 143' TERM INT
    pg_start || exit 1
    # In the background: bash runs a trap only once its foreground command ends, and a hung
    # test stopped by `timeout` must still take its server down with it.
    "$@" &
    child=$!
    trap 'kill "$child" 2>/dev/null; exit 143' TERM INT
    wait "$child"
    exit $?
fi
