# Shared by scripts/test and scripts/bench: logging, failing loudly, running as root.
# shellcheck shell=bash

log() { printf '==> %s\n' "$*" >&2; }
die() {
    printf '\n!!!\n!!! scripts/test: %s\n!!!\n\n' "$*" >&2
    exit 1
}

# Runs a command as root, through sudo when not root already.
as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "root is needed for: $* (run as root or install sudo)"
    fi
}
