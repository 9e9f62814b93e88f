#!/usr/bin/env bash
# Draws the app icon (a pulse line on a rounded teal square) with ImageMagick
# and writes every size Tauri needs into icons/. Run again after a change.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v convert >/dev/null || { echo "needs ImageMagick (apt-get install imagemagick)" >&2; exit 1; }
mkdir -p icons
src=$(mktemp --suffix=.png)
trap 'rm -f "$src"' EXIT
convert -size 1024x1024 xc:none \
    -fill '#0f766e' -draw 'roundrectangle 64,64 960,960 200,200' \
    -fill none -stroke white -strokewidth 64 -draw 'stroke-linejoin round stroke-linecap round polyline 200,540 390,540 460,360 560,720 640,460 700,540 824,540' \
    "$src"
convert "$src" -resize 32x32 -strip PNG32:icons/32x32.png
convert "$src" -resize 128x128 -strip PNG32:icons/128x128.png
convert "$src" -resize 256x256 -strip PNG32:icons/128x128@2x.png
convert "$src" -resize 512x512 -strip PNG32:icons/icon.png
convert "$src" -define icon:auto-resize=256,128,64,48,32,16 icons/icon.ico
