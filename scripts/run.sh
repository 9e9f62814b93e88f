#!/usr/bin/env bash
# Tries the importer on this machine: builds `owi`, writes a synthetic Apple
# Health export (unless you pass your own export.zip), reads it into the
# local database and shows its summary and workouts.
#
#   bash scripts/run.sh                 # a generated sample
#   bash scripts/run.sh ~/export.zip    # your own export
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "cargo is missing: install Rust (rustup) first" >&2; exit 1; }
cargo build --release --locked -p owi-cli
owi=target/release/owi
demo="${OWI_DEMO_DIR:-target/demo}"
export OWI_DB="${OWI_DB:-$demo/owi.sqlite}"

input="${1:-}"
if [ -z "$input" ]; then
    input="$demo/sample/export.zip"
    if [ ! -f "$input" ]; then
        "$owi" sample --out "$demo/sample" --records 200000 --workouts 150 --zip --locale en_US
    fi
fi
"$owi" inspect "$input"
echo
"$owi" workouts --sort start --desc | head -25
