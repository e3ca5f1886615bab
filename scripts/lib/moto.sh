# moto_server: the S3-API server (PyPI `moto[server]`, pinned in tools/moto/requirements.txt)
# that the file-sharing tests keep files in with FILES_S3_BUCKET. Usage:
#   . scripts/lib/moto.sh
#   setup_moto        # a virtualenv in tools/moto/.venv, installed from the pins, when needed
# The Rust tests start their own moto_server from tools/moto/.venv/bin/moto_server on a
# free loopback port (hubbub-test-support's s3 module) and kill it by PID.

MOTO_DIR="${MOTO_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/tools/moto}"
MOTO_BIN="$MOTO_DIR/.venv/bin/moto_server"

setup_moto() {
    if [ -x "$MOTO_BIN" ] && [ ! "$MOTO_DIR/requirements.txt" -nt "$MOTO_BIN" ]; then
        return 0
    fi
    echo "installing moto_server (a virtualenv in $MOTO_DIR/.venv)"
    if ! python3 -m venv "$MOTO_DIR/.venv" 2>/dev/null; then
        # Debian splits venv (and ensurepip) out of python3.
        if declare -F apt_install >/dev/null; then
            apt_install python3-venv
        else
            apt-get update -qq && apt-get install -y -qq python3-venv
        fi
        rm -rf "$MOTO_DIR/.venv"
        python3 -m venv "$MOTO_DIR/.venv"
    fi
    "$MOTO_DIR/.venv/bin/pip" install -q --disable-pip-version-check -r "$MOTO_DIR/requirements.txt"
    touch "$MOTO_BIN"
}
