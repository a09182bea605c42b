# Shared by the benchmark scripts (sourced): a work directory removed on exit with every process
# started (PIDS), free loopback ports, and a private PostgreSQL with a `shimmer` database.

# Debian packages and logging: the run and test commands' own (install_packages PKG...).
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

# primary_backend_toml URL: one backend "primary" at URL with every repository routed to it.
primary_backend_toml() {
    printf '[[backend]]\nname = "primary"\nurl = "%s"\n[[route]]\nprefix = ""\nbackend = "primary"\n' "$1"
}

# PostgreSQL's programs, found when a cluster starts (after install_packages installed them).
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true; }
as_pg() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

# bench_workdir NAME: WORK (world-readable, for the postgres user) and PIDS, cleaned up on exit.
bench_workdir() {
    WORK=$(mktemp -d "/tmp/shimmer-bench-$1.XXXXXX")
    chmod 755 "$WORK"
    PIDS=()
    trap bench_cleanup EXIT
}
bench_cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    [[ -d $WORK/pg ]] && as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg" -m immediate -w stop >/dev/null 2>&1 || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}

# start_pg PORT: a throwaway cluster in $WORK/pg (fsync off) with an empty `shimmer` database.
start_pg() {
    PG_BIN=$(pg_bin)
    mkdir -p "$WORK/pg"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$WORK/pg"
    as_pg "$PG_BIN/initdb" -D "$WORK/pg" -U postgres --auth=trust -E UTF8 --locale=C --no-sync >/dev/null
    as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg/log" -w start \
        -o "-p $1 -k $WORK/pg -c listen_addresses=127.0.0.1 -c fsync=off" >/dev/null
    psql -q -h 127.0.0.1 -p "$1" -U postgres -c "create database shimmer"
}

# start_registry PORT: a docker-registry on PORT storing in $WORK/data.
start_registry() {
    mkdir -p "$WORK/data"
    cat >"$WORK/registry.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $WORK/data}}
http: {addr: 127.0.0.1:$1, secret: bench}
YML
    docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 & PIDS+=($!)
}
