#!/usr/bin/env bash
# cargo-deny's checks of deny.toml: licenses, bans, sources, and duplicate versions (warned);
# advisories too where the RustSec advisory database (a git repository) can be fetched, else
# said and skipped. Installs cargo-deny, pinned, from crates.io if missing (built here once:
# about 3 minutes on 2 cores). scripts/test.sh runs it on whole-workspace runs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# What deny.toml is written for.
CARGO_DENY_VERSION=0.20.2

log() { printf '==> %s\n' "$*" >&2; }

if [[ $(cargo deny --version 2>/dev/null) != "cargo-deny $CARGO_DENY_VERSION" ]]; then
    log "cargo install cargo-deny --version $CARGO_DENY_VERSION --locked"
    cargo install cargo-deny --version "$CARGO_DENY_VERSION" --locked --quiet
fi

checks=(licenses bans sources)
fetch_log=$(mktemp)
trap 'rm -f "$fetch_log"' EXIT
if timeout 120 cargo deny fetch db >"$fetch_log" 2>&1; then
    checks+=(advisories)
else
    log "cargo deny: the advisory database could not be fetched; advisories skipped:"
    grep -m1 -E 'fatal|error|ERROR' "$fetch_log" | sed 's/^/    /' >&2 || true
fi
log "cargo deny check ${checks[*]}"
cargo deny --locked check --hide-inclusion-graph "${checks[@]}"
