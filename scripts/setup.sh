# Installs what building and testing the app needs, only what is missing:
# Debian's WebKitGTK and build packages, and the UI's npm packages when
# ui/node_modules does not match ui/package-lock.json. Sourced by test.sh and
# run.sh; safe to run again and again.

# Tauri v2 on Linux: WebKitGTK 4.1 and friends (the list tried on this
# machine kind, see shared platform notes); Xvfb and the WebKit driver for
# headless runs of the real window; a D-Bus daemon and monitor for the
# single-instance handover and the notification the end-to-end tests check;
# `script` (bsdutils) gives the CLI's live counts test a terminal.
OWI_APT_PACKAGES=(
    build-essential pkg-config libssl-dev file
    libwebkit2gtk-4.1-dev libsoup-3.0-dev libjavascriptcoregtk-4.1-dev libgtk-3-dev
    librsvg2-dev libayatana-appindicator3-dev libxdo-dev
    xvfb xauth webkit2gtk-driver xdotool dbus-daemon dbus-bin bsdutils
)

owi_install_system_packages() {
    command -v dpkg-query >/dev/null || { echo "not a Debian-like system: install ${OWI_APT_PACKAGES[*]} by hand" >&2; return 0; }
    local missing=() package
    for package in "${OWI_APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && { echo "system packages: all present"; return 0; }
    echo "system packages: installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

owi_install_ui_packages() {
    command -v node >/dev/null && command -v npm >/dev/null ||
        { echo "Node.js 20.19+ and npm are missing: install them first" >&2; return 1; }
    node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' ||
        { echo "Node.js $(node --version) is too old: Vite needs 20.19 or newer" >&2; return 1; }
    local stamp=ui/node_modules/.owi-lock-hash want
    want=$(sha256sum ui/package-lock.json | cut -d' ' -f1)
    if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
        echo "ui packages: up to date"
        return 0
    fi
    echo "ui packages: npm ci"
    (cd ui && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$stamp"
}

# tauri-driver, the WebDriver bridge the end-to-end tests start the app
# through. Pinned: crates.io also serves 3.0 alphas.
OWI_TAURI_DRIVER_VERSION=2.1.0

owi_install_cargo_tools() {
    if cargo install --list 2>/dev/null | grep -qx "tauri-driver v${OWI_TAURI_DRIVER_VERSION}:"; then
        echo "cargo tools: tauri-driver ${OWI_TAURI_DRIVER_VERSION} present"
        return 0
    fi
    echo "cargo tools: installing tauri-driver ${OWI_TAURI_DRIVER_VERSION}"
    cargo install "tauri-driver@${OWI_TAURI_DRIVER_VERSION}" --locked --quiet
}
