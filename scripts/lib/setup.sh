# Installers shared by scripts/test and scripts/run. Each installs only what is missing.

setup_rust_tools() {
    if ! cargo fuzz --version >/dev/null 2>&1; then
        echo "installing cargo-fuzz"
        cargo install cargo-fuzz --locked --quiet
    fi
}
