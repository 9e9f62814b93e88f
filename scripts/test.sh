#!/usr/bin/env bash
# Runs every check and test of the project, installing what it needs first
# (Debian packages for Tauri, the UI's npm packages).
# Idempotent: safe to run again and again on a fresh or a used machine.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# Debug info makes target/ three times larger and builds no faster here.
export CARGO_PROFILE_DEV_DEBUG="${CARGO_PROFILE_DEV_DEBUG:-0}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step "toolchain"
command -v cargo >/dev/null || { echo "cargo is missing: install Rust (rustup) first" >&2; exit 1; }
cargo --version
for component in rustfmt clippy; do
    if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
        rustup component add "$component"
    fi
done

step "dependencies"
# shellcheck source=setup.sh
source scripts/setup.sh
owi_install_system_packages
owi_install_ui_packages

# The app embeds the built UI; the Rust steps below compile it.
step "ui: build, type check, unit tests"
npm --prefix ui run --silent build
npm --prefix ui run --silent check
npm --prefix ui test --silent

step "format"
cargo fmt --all --check

step "lint"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "docs"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

step "tests"
cargo test --workspace --locked
