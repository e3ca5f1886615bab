# Installers shared by scripts/test, scripts/run and scripts/e2e. Each installs only what
# is missing, so a fresh machine and a warm one run the same commands.

apt_install() {
    # apt-get update once per run, then install the named packages.
    if [ -z "${HUBBUB_APT_UPDATED:-}" ]; then
        apt-get update -qq
        export HUBBUB_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

setup_rust_tools() {
    if ! cargo fuzz --version >/dev/null 2>&1; then
        echo "installing cargo-fuzz"
        cargo install cargo-fuzz --locked --quiet
    fi
}

# openssl(1): the auth tests generate their RSA key pairs with it.
setup_openssl() {
    if ! command -v openssl >/dev/null 2>&1; then
        echo "installing openssl"
        apt_install openssl
    fi
}

# redis-server (Debian's): the broker's tests start one per test on loopback.
setup_redis() {
    if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
        echo "installing redis-server"
        apt_install redis-server redis-tools
    fi
}

setup_node() {
    if ! command -v npm >/dev/null 2>&1; then
        echo "installing Node.js and npm"
        apt_install nodejs npm
    fi
}

setup_chromium() {
    if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
        echo "installing chromium"
        apt_install chromium
    fi
}

# Installs the dashboard's packages (npm ci, from the lockfile) when missing or stale.
setup_frontend_packages() {
    setup_node
    if [ ! -d frontend/node_modules ] || [ frontend/package-lock.json -nt frontend/node_modules/.package-lock.json ]; then
        (cd frontend && npm ci --no-audit --no-fund --loglevel=error)
    fi
}

# Builds frontend/dist when it is missing or older than the sources.
build_dashboard() {
    setup_frontend_packages
    if [ ! -f frontend/dist/index.html ] || [ -n "$(find frontend/src frontend/index.html frontend/package.json -newer frontend/dist/index.html -print -quit)" ]; then
        (cd frontend && npm run build --silent)
    fi
}

# A free TCP port on 127.0.0.1.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
