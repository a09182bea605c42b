# Shared by the run and test commands (sourced, not run): logging and Debian packages.

log() { printf '==> %s\n' "$*" >&2; }

is_root() { [[ $(id -u) -eq 0 ]]; }

# Installs the Debian packages named as arguments that are not installed yet; as a user other
# than root, names them and exits 1 instead.
install_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg -s "$pkg" 2>/dev/null | grep -qx 'Status: install ok installed' || missing+=("$pkg")
    done
    ((${#missing[@]} == 0)) && return 0
    if ! is_root; then
        echo "missing packages; install them as root with:" >&2
        echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
