#!/usr/bin/env bash
# The README's run command: brings up the whole system on this machine and keeps it in the
# foreground (CTRL-C stops everything).
#
#   scripts/run.sh             # PostgreSQL + a docker-registry backend + `shimmer serve`,
#                              # sample packages pushed through the shim and indexed
#   scripts/run.sh --detach    # the same, left running in the background
#   scripts/run.sh stop        # stop what --detach left running
#
# State lives in .shimmer-run/ (a PostgreSQL cluster, registry storage, the cache, logs) and is
# reused by the next run. Ports: SHIMMER_RUN_PORT (5000), SHIMMER_RUN_REGISTRY_PORT (5001),
# SHIMMER_RUN_PG_PORT (5432), SHIMMER_RUN_WEB_PORT (8080); a busy one is replaced by a free one.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
STATE=$ROOT/.shimmer-run
SAMPLES=${SHIMMER_RUN_SAMPLES:-"provider-nop-main function-patch-and-transform-v0.10.8 configuration-aws-network-v0.15.0 provider-kubernetes-v1.2.1"}
TESTDATA=${SHIMMER_TESTDATA:-$ROOT/testdata/xpkg-sources}

# shellcheck source=scripts/lib.sh
source scripts/lib.sh
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
as_pg() { if is_root; then runuser -u postgres -- "$@"; else "$@"; fi; }

stop_all() {
    [[ -f $STATE/shimmer.pid ]] && kill "$(cat "$STATE/shimmer.pid")" 2>/dev/null || true
    [[ -f $STATE/registry.pid ]] && kill "$(cat "$STATE/registry.pid")" 2>/dev/null || true
    if [[ -n $PG_BIN && -f $STATE/pg/postmaster.pid ]]; then
        as_pg "$PG_BIN/pg_ctl" -D "$STATE/pg" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -f "$STATE/shimmer.pid" "$STATE/registry.pid"
}

if [[ ${1:-} == stop ]]; then
    stop_all
    log "stopped"
    exit 0
fi
DETACH=0
[[ ${1:-} == --detach ]] && DETACH=1

# 1. What the system needs, from Debian's packages.
install_packages postgresql docker-registry skopeo python3 curl
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
log "building shimmer (release)"
cargo build --release -q -p shimmer
SHIMMER=${CARGO_TARGET_DIR:-$ROOT/target}/release/shimmer

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() { # wanted -> wanted, or a free one if taken
    if port_in_use "$1"; then
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
    else
        echo "$1"
    fi
}
stop_all
# A step failing from here on leaves nothing running (the logs stay in the state dir).
trap 'rc=$?; ((rc == 0)) || { log "failed; stopping what was started (logs in $STATE)"; stop_all; }' EXIT
mkdir -p "$STATE/registry" "$STATE/cache"
PG_PORT=$(pick_port "${SHIMMER_RUN_PG_PORT:-5432}")
REG_PORT=$(pick_port "${SHIMMER_RUN_REGISTRY_PORT:-5001}")
PORT=$(pick_port "${SHIMMER_RUN_PORT:-5000}")
WEB_PORT=$(pick_port "${SHIMMER_RUN_WEB_PORT:-8080}")

# 2. PostgreSQL: a private cluster in the state dir (PostgreSQL refuses to run as root).
if [[ ! -d $STATE/pg ]]; then
    log "creating a PostgreSQL cluster in $STATE/pg"
    mkdir -p "$STATE/pg"
    is_root && chown postgres: "$STATE/pg" "$STATE"
    as_pg "$PG_BIN/initdb" -D "$STATE/pg" -U postgres --auth=trust -E UTF8 --locale=C >"$STATE/initdb.log"
fi
is_root && chown -R postgres: "$STATE/pg"
as_pg "$PG_BIN/pg_ctl" -D "$STATE/pg" -l "$STATE/pg.log" -w start \
    -o "-p $PG_PORT -k $STATE -c listen_addresses=127.0.0.1" >/dev/null
DB_URL="postgres://postgres@127.0.0.1:$PG_PORT/shimmer"
psql -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -tc "select 1 from pg_database where datname = 'shimmer'" |
    grep -q 1 || psql -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -c "create database shimmer"

# 3. The backend registry.
cat >"$STATE/registry.yml" <<EOF
version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: $STATE/registry}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$REG_PORT, secret: shimmer-run}
EOF
docker-registry serve "$STATE/registry.yml" >"$STATE/registry.log" 2>&1 &
echo $! >"$STATE/registry.pid"

# 4. shimmer.
cat >"$STATE/shimmer.toml" <<EOF
[server]
listen = "127.0.0.1:$PORT"
[database]
url = "$DB_URL"
[web]
listen = "127.0.0.1:$WEB_PORT"
[cache]
path = "$STATE/cache"
[[backend]]
name = "primary"
url = "http://127.0.0.1:$REG_PORT"
cache = true
[[route]]
prefix = ""
backend = "primary"
EOF
"$SHIMMER" serve --config "$STATE/shimmer.toml" >"$STATE/shimmer.log" 2>&1 &
echo $! >"$STATE/shimmer.pid"
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break
    sleep 0.2
done
curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null || { tail -20 "$STATE/shimmer.log" >&2; exit 1; }
curl -sf "http://127.0.0.1:$WEB_PORT/healthz" >/dev/null || { tail -20 "$STATE/shimmer.log" >&2; exit 1; }

# 5. Sample packages from testdata/, built as `crossplane xpkg build` would and pushed
#    through the shim; the indexer picks them up from the queue.
log "pushing sample packages through the shim"
pushed=0
for sample in $SAMPLES; do
    src=$TESTDATA/$sample
    [[ -d $src ]] || { log "no sample $src; skipped"; continue; }
    repo=samples/${sample%-*}
    tag=${sample##*-}
    python3 "$ROOT/scripts/xpkg_layout.py" "$src" "$STATE/layouts/$sample" "$tag"
    skopeo --insecure-policy copy -q --dest-tls-verify=false \
        "oci:$STATE/layouts/$sample:$tag" "docker://127.0.0.1:$PORT/$repo:$tag"
    pushed=$((pushed + 1))
done
indexed() {
    psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d shimmer -tAc \
        "select count(*) from index_jobs where state in ('queued', 'running')" 2>/dev/null || echo 1
}
for _ in $(seq 600); do [[ $(indexed) == 0 ]] && break; sleep 0.2; done
packages=$(psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d shimmer -tAc \
    "select count(*) from versions where kind = 'package'")

cat <<EOF

shimmer is running (state in $STATE, logs: shimmer.log, registry.log, pg.log)
  Marketplace UI    http://127.0.0.1:$WEB_PORT/
  OCI endpoint      http://127.0.0.1:$PORT/v2/   (health: /healthz, /readyz, /metrics)
  backend registry  http://127.0.0.1:$REG_PORT/v2/
  database          $DB_URL
  indexed           $packages package versions from $pushed samples

  push:   skopeo copy --dest-tls-verify=false oci:DIR:TAG docker://127.0.0.1:$PORT/acme/pkg:TAG
  index:  $SHIMMER index --config $STATE/shimmer.toml samples/provider-nop:main
EOF

if ((DETACH)); then
    echo "  stop:   scripts/run.sh stop"
    exit 0
fi
echo "  CTRL-C stops everything."
trap 'stop_all; log "stopped"; exit 0' INT TERM
wait "$(cat "$STATE/shimmer.pid")" || true
stop_all
