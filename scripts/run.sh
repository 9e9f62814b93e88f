#!/usr/bin/env bash
# Tries the importer on this machine.
#
#   bash scripts/run.sh                 # the desktop app, on a generated sample export
#   bash scripts/run.sh ~/export.zip    # the desktop app, on your own export
#   bash scripts/run.sh --cli [EXPORT]  # the command line: inspect, then list workouts
#
# Demo runs keep their database under target/demo, away from your real data.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "cargo is missing: install Rust (rustup) first" >&2; exit 1; }
demo="${OWI_DEMO_DIR:-target/demo}"
target="${CARGO_TARGET_DIR:-target}"

cli=false
if [ "${1:-}" = "--cli" ]; then
    cli=true
    shift
fi

cargo build --release --locked -p owi-cli
owi="$target/release/owi"
input="${1:-}"
if [ -z "$input" ]; then
    input="$demo/sample/export.zip"
    if [ ! -f "$input" ]; then
        "$owi" sample --out "$demo/sample" --records 200000 --workouts 150 --zip --locale en_US
    fi
fi

if $cli; then
    export OWI_DB="${OWI_DB:-$demo/owi.sqlite}"
    "$owi" inspect "$input"
    echo
    "$owi" workouts --sort start --desc | head -25
    exit 0
fi

# shellcheck source=setup.sh
source scripts/setup.sh
owi_install_system_packages
owi_install_ui_packages
npm --prefix ui run --silent build
# What `tauri build --no-bundle` does: a release build with the UI embedded.
cargo build --release --locked -p owi-app --features tauri/custom-protocol
exec "$target/release/owi-app" --data-dir "$demo/app" "$input"
