# dynalite: the in-memory DynamoDB-API server (npm, pinned in tools/dynalite) that the
# persistence tests run against. Source this file from bash:
#
#   . scripts/lib/dynalite.sh
#   setup_dynalite                # npm ci in tools/dynalite when needed
#   start_dynalite                # on a free port; sets DYNALITE_PORT, DYNALITE_PID, DYNALITE_ENDPOINT
#   ... DYNAMODB_ENDPOINT="$DYNALITE_ENDPOINT" ...
#   stop_dynalite                 # kills it by PID
#
# The Rust tests of persist-bridge start their own dynalite from the same binary; they
# only need setup_dynalite to have run. Works with or without scripts/lib/setup.sh sourced
# first (its setup_node and free_port are used when present).

DYNALITE_DIR="${DYNALITE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/tools/dynalite}"
DYNALITE_BIN="$DYNALITE_DIR/node_modules/.bin/dynalite"

# Installs dynalite from the lockfile when it is missing or the lockfile is newer.
setup_dynalite() {
    if declare -F setup_node >/dev/null; then
        setup_node
    elif ! command -v npm >/dev/null 2>&1; then
        echo "setup_dynalite: npm is missing (apt-get install -y nodejs npm)" >&2
        return 1
    fi
    if [ ! -x "$DYNALITE_BIN" ] \
        || [ "$DYNALITE_DIR/package-lock.json" -nt "$DYNALITE_DIR/node_modules/.package-lock.json" ]; then
        echo "installing dynalite (npm ci in $DYNALITE_DIR)"
        (cd "$DYNALITE_DIR" && npm ci --no-audit --no-fund --loglevel=error)
    fi
}

# A TCP port nothing listens on right now.
dynalite_free_port() {
    if declare -F free_port >/dev/null; then
        free_port
    else
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
    fi
}

# start_dynalite [PORT]: starts dynalite on 127.0.0.1:PORT (a free port when omitted) with
# tables ACTIVE at once, waits until it accepts connections, and sets DYNALITE_PORT,
# DYNALITE_PID (the server's own PID, not a wrapper's) and DYNALITE_ENDPOINT.
start_dynalite() {
    local port="${1:-}"
    if [ ! -x "$DYNALITE_BIN" ]; then
        echo "start_dynalite: $DYNALITE_BIN is missing; run setup_dynalite (npm ci in tools/dynalite)" >&2
        return 1
    fi
    [ -n "$port" ] || port="$(dynalite_free_port)"
    "$DYNALITE_BIN" --host 127.0.0.1 --port "$port" --createTableMs 0 --deleteTableMs 0 >/dev/null &
    DYNALITE_PID=$!
    DYNALITE_PORT=$port
    DYNALITE_ENDPOINT="http://127.0.0.1:$port"
    local _
    for _ in $(seq 1 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        if ! kill -0 "$DYNALITE_PID" 2>/dev/null; then
            echo "start_dynalite: dynalite exited (port $port taken?)" >&2
            unset DYNALITE_PID
            return 1
        fi
        sleep 0.05
    done
    echo "start_dynalite: dynalite did not answer on port $port within 10 s" >&2
    stop_dynalite
    return 1
}

# Stops the dynalite start_dynalite started, by its PID.
stop_dynalite() {
    if [ -n "${DYNALITE_PID:-}" ]; then
        kill "$DYNALITE_PID" 2>/dev/null || true
        wait "$DYNALITE_PID" 2>/dev/null || true
        unset DYNALITE_PID
    fi
}
