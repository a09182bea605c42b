# shimmer's everyday commands. Each recipe calls the script that does the work, which runs as well
# without `just` (`just test` is `scripts/test.sh`). `just` itself: `cargo install just --locked`
# (it is not packaged in Debian 12).

set positional-arguments

# List the recipes
default:
    @just --list

# PostgreSQL, a registry and `shimmer serve` with sample packages indexed (--detach; stop)
run *args:
    bash scripts/run.sh "$@"

# The whole suite as CI runs it; arguments go to cargo nextest (-p shimmer-shim -E 'test(x)')
test *args:
    bash scripts/test.sh "$@"

# Benchmarks by name (shim cache indexer search attacks; all without one): see bench/README.md
bench *names:
    #!/usr/bin/env bash
    set -euo pipefail
    (($# > 0)) || set -- shim cache indexer search attacks
    for name in "$@"; do bash "bench/$name.sh"; done

# The test command's checks that need no database: fmt, clippy, rustdoc, cargo-deny
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps -q
    bash scripts/deny.sh

# Format every crate
fmt:
    cargo fmt --all
