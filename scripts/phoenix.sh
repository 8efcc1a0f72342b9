#!/usr/bin/env bash
# Local Arize Phoenix for tailerd's end-to-end tests, in its own virtualenv (.phoenix-venv/).
#
#   scripts/phoenix.sh install          create .phoenix-venv and pip-install arize-phoenix (idempotent)
#   scripts/phoenix.sh start DIR PORT   serve on 127.0.0.1:PORT with working dir DIR, offline; pid in
#                                       DIR/phoenix.pid, log in DIR/phoenix.log; returns once healthy
#   scripts/phoenix.sh stop DIR         stop the server started with DIR
#
# Env: PHOENIX_PYTHON (interpreter for the venv, default python3), PHOENIX_START_TIMEOUT (s, default 120).
set -euo pipefail

PHOENIX_VERSION="20.26.1"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.phoenix-venv"
MARKER="$VENV/.installed-arize-phoenix-$PHOENIX_VERSION"

die() { echo "phoenix.sh: $*" >&2; exit 1; }

install() {
    if [[ -f "$MARKER" && -x "$VENV/bin/phoenix" ]]; then
        echo "arize-phoenix $PHOENIX_VERSION already installed in $VENV"
        return
    fi
    "${PHOENIX_PYTHON:-python3}" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "arize-phoenix==$PHOENIX_VERSION" \
        >"$VENV/pip-install.log" 2>&1 \
        || { grep -v "^WARNING: Location" "$VENV/pip-install.log" >&2; exit 1; }
    touch "$MARKER"
    echo "installed arize-phoenix $PHOENIX_VERSION in $VENV"
}

free_port() {
    "$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    local dir="${1:?usage: phoenix.sh start DIR PORT}" port="${2:?usage: phoenix.sh start DIR PORT}"
    [[ -x "$VENV/bin/phoenix" ]] || die "not installed; run: scripts/phoenix.sh install"
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    local url="http://127.0.0.1:$port"
    # Offline: no telemetry, no MCP server, no fetching of public resources (the WASM sandbox
    # binary from github.com, the docs MCP server), no agent assistant or sandboxes. Phoenix copes
    # with failed lookups, but this way it makes none.
    PHOENIX_WORKING_DIR="$dir" PHOENIX_HOST=127.0.0.1 PHOENIX_PORT="$port" \
    PHOENIX_GRPC_PORT="$(free_port)" \
    PHOENIX_TELEMETRY_ENABLED=false PHOENIX_ENABLE_MCP_SERVER=false \
    PHOENIX_ALLOW_EXTERNAL_RESOURCES=false PHOENIX_DISABLE_AGENT_ASSISTANT=true \
    PHOENIX_ALLOWED_SANDBOX_PROVIDERS=NONE PHOENIX_AGENTS_DISABLE_WEB_ACCESS=true \
    PHOENIX_AGENTS_DISABLE_GITHUB=true PHOENIX_AGENTS_DISABLE_BASH=true \
        setsid "$VENV/bin/phoenix" serve >"$dir/phoenix.log" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$dir/phoenix.pid"
    local deadline=$((SECONDS + ${PHOENIX_START_TIMEOUT:-120}))
    until curl -fsS -o /dev/null "$url/healthz" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 40 "$dir/phoenix.log" >&2
            die "phoenix exited during startup (log: $dir/phoenix.log)"
        fi
        if ((SECONDS >= deadline)); then
            kill "$pid" 2>/dev/null || true
            tail -n 40 "$dir/phoenix.log" >&2
            die "phoenix not healthy at $url after ${PHOENIX_START_TIMEOUT:-120}s"
        fi
        sleep 0.25
    done
    echo "$url"
}

stop() {
    local dir="${1:?usage: phoenix.sh stop DIR}"
    [[ -f "$dir/phoenix.pid" ]] || return 0
    local pid
    pid="$(cat "$dir/phoenix.pid")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$dir/phoenix.pid"
}

case "${1:-}" in
    install) install ;;
    start) start "${2:-}" "${3:-}" ;;
    stop) stop "${2:-}" ;;
    *) die "usage: phoenix.sh install | start DIR PORT | stop DIR" ;;
esac
