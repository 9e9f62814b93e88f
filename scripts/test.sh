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
owi_install_cargo_tools

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

# The client against the real Open Wearables backend, when its source is at
# hand: OWI_REAL_SERVER_SRC, else the copy CI keeps beside the checkout.
real_src=${OWI_REAL_SERVER_SRC:-}
if [ -z "$real_src" ]; then
    real_src=$(ls -d ../shared/open-wearables/backend-*.tar.gz 2>/dev/null | head -n 1 || true)
fi
if [ -n "$real_src" ]; then
    step "the real Open Wearables server ($real_src)"
    started=$SECONDS
    bash scripts/real-server.sh "$real_src"
    echo "real-server suite: $((SECONDS - started)) s"
else
    step "the real Open Wearables server: skipped (no source; set OWI_REAL_SERVER_SRC)"
fi

# The Linux bundle, from the release build with the UI embedded; the end to
# end tests then drive that very binary.
step "release bundle (.deb)"
ui/node_modules/.bin/tauri build --ci --bundles deb -- --locked -p owi-app
target=$(realpath -m "${CARGO_TARGET_DIR:-target}")
deb=$(ls -t "$target"/release/bundle/deb/*.deb | head -n 1)
dpkg-deb --info "$deb" | grep -E '^ (Package|Version|Depends):'
echo "bundle: $deb ($(du -h "$deb" | cut -f1))"
# "Open with…": the launcher passes the file and names the types it opens.
desktop=$(dpkg-deb --fsys-tarfile "$deb" | tar -xO --wildcards 'usr/share/applications/*.desktop')
grep -qx 'Exec=owi-app %f' <<<"$desktop" || { echo "the .desktop file does not pass the file: $desktop" >&2; exit 1; }
grep -qx 'MimeType=application/zip;application/xml' <<<"$desktop" || { echo "the .desktop file names no types: $desktop" >&2; exit 1; }

# A real window under Xvfb, driven through tauri-driver and WebKitWebDriver;
# screenshots of each main screen land in $target/e2e/screens.
step "end to end"
OWI_APP="$target/release/owi-app" cargo test --locked -p owi-e2e --test e2e -- --ignored --test-threads 1
echo "screenshots: $target/e2e/screens"
