# The browser tests' tools (tests/e2e/browser.rs): Chromium and chromedriver from Debian's packages, and axe-core
# (the accessibility check run inside the page) from npm, pinned. Installed when missing; a Chromium that cannot
# start is a loud failure, never a skipped test.
# shellcheck shell=bash

AXE_CORE_VERSION=4.14.1

apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "$* missing and apt-get is unavailable: install them to run the browser tests"
    log "installing $* with apt-get"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null ||
        die "apt-get could not install $*"
}

ensure_browser() {
    if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
        apt_install chromium chromium-driver
    fi
    chromium --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage --dump-dom about:blank >/dev/null 2>&1 ||
        die "Chromium is installed but cannot start headless ($(command -v chromium)); the browser tests cannot run"
    TOLLGATE_CHROMIUM="$(command -v chromium)"
    TOLLGATE_CHROMEDRIVER="$(command -v chromedriver)"
    export TOLLGATE_CHROMIUM TOLLGATE_CHROMEDRIVER

    local dir=.cache/axe-core work
    if [[ ! -f "$dir/axe.min.js" || "$(cat "$dir/VERSION" 2>/dev/null)" != "$AXE_CORE_VERSION" ]]; then
        command -v npm >/dev/null 2>&1 || apt_install npm
        log "fetching axe-core $AXE_CORE_VERSION with npm"
        work="$(mktemp -d)"
        (cd "$work" && npm pack --silent "axe-core@$AXE_CORE_VERSION" >/dev/null) ||
            { rm -rf "$work"; die "npm could not fetch axe-core@$AXE_CORE_VERSION"; }
        mkdir -p "$dir"
        tar -xzf "$work/axe-core-$AXE_CORE_VERSION.tgz" -C "$dir" --strip-components=1 package/axe.min.js package/LICENSE
        rm -rf "$work"
        echo "$AXE_CORE_VERSION" >"$dir/VERSION"
    fi
    export TOLLGATE_AXE_JS="$PWD/$dir/axe.min.js"
    log "Chromium $(chromium --version 2>/dev/null | awk '{print $2}'), axe-core $AXE_CORE_VERSION for the browser tests"
}
