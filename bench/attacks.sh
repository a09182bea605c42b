#!/usr/bin/env bash
# Benchmark of bounded cost (not a test): each package of issue 23's availability probe
# (testkit/src/attacks.rs) pushed through a fresh release `shimmer serve` (shim, indexer and
# marketplace in one process) with a real docker-registry and PostgreSQL. For each: how it was
# indexed, the time of its worst page (first view, then cached), the home page's p50/p99 while 4
# clients request the worst page without pause, and the peak RSS of `serve` (VmHWM). Prints a
# Markdown table.
#
#   bench/attacks.sh              # needs: postgresql docker-registry skopeo python3 (apt)
#   SECONDS_UNDER_LOAD=20 bench/attacks.sh
#   ATTACKS="nested-quotes huge-tar-path" bench/attacks.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
LOAD_SECONDS=${SECONDS_UNDER_LOAD:-10}

source bench/lib.sh
install_packages postgresql docker-registry skopeo python3
cargo build --release -q -p shimmer
cargo build --release -q -p testkit --example write_attack
SHIMMER=$ROOT/target/release/shimmer
WRITE=$ROOT/target/release/examples/write_attack

bench_workdir attacks
PG=$(free_port); REG=$(free_port)
start_pg "$PG"
mkdir -p "$WORK/registry"
cat >"$WORK/registry.yml" <<YAML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $WORK/registry}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$REG}
YAML
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
PIDS+=($!)
wait_port "$REG"

psql_q() { psql -qtA -h 127.0.0.1 -p "$PG" -U postgres -d "$1" -c "$2"; }

# One measured run: a fresh database and `serve` per attack, so VmHWM is that attack's alone.
run() {
    local attack=$1 db=db_${1//-/_} shim web pid repo=attacks/$1
    psql_q shimmer "create database $db" >/dev/null
    shim=$(free_port); web=$(free_port)
    cat >"$WORK/$attack.toml" <<TOML
[server]
listen = "127.0.0.1:$shim"
[web]
listen = "127.0.0.1:$web"
[indexer]
workers = 1
[database]
url = "postgres://postgres@127.0.0.1:$PG/$db"
$(primary_backend_toml "http://127.0.0.1:$REG")
TOML
    RUST_LOG=error "$SHIMMER" serve --config "$WORK/$attack.toml" >"$WORK/$attack.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    if ! (wait_port "$shim" && wait_port "$web"); then
        tail -n 20 "$WORK/$attack.log" >&2
        exit 1
    fi
    rm -rf "$WORK/layout"
    "$WRITE" "$attack" "$WORK/layout"
    skopeo copy -q --all --dest-tls-verify=false "oci:$WORK/layout:attack" \
        "docker://127.0.0.1:$shim/$repo:v1" >/dev/null
    for _ in $(seq 600); do
        [[ $(psql_q "$db" "select count(*) from index_jobs where state <> 'done'") == 0 &&
            $(psql_q "$db" "select count(*) from versions") != 0 ]] && break
        sleep 0.2
    done
    local kind crd page
    kind=$(psql_q "$db" "select v.kind from versions v join tags t on t.version_id = v.id where t.tag = 'v1'")
    crd=$(psql_q "$db" "select object_digest from api_types limit 1")
    if [[ -n $crd ]]; then page="/docs/$crd"
    elif [[ $kind == rejected ]]; then page="/packages/$repo/versions/v1"
    else page="/packages/$repo"; fi
    python3 - "$web" "$page" "$LOAD_SECONDS" "$attack" "$kind" "$pid" <<'PY'
import http.client, sys, threading, time
port, page, seconds, attack, kind, pid = sys.argv[1], sys.argv[2], float(sys.argv[3]), *sys.argv[4:]
def get(path):
    c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=120)
    t = time.perf_counter(); c.request("GET", path); r = c.getresponse(); body = r.read()
    return time.perf_counter() - t, r.status, len(body)
first, status, size = get(page)
cached, _, _ = get(page)
stop = time.time() + seconds
def hammer():
    while time.time() < stop: get(page)
workers = [threading.Thread(target=hammer) for _ in range(4)]
for w in workers: w.start()
home = []
while time.time() < stop:
    home.append(get("/")[0]); time.sleep(0.01)
for w in workers: w.join()
home.sort()
p = lambda q: home[min(len(home) - 1, int(q * len(home)))] * 1000
hwm = next(l.split()[1] for l in open(f"/proc/{pid}/status") if l.startswith("VmHWM"))
print(f"| {attack} | {kind} | `{page[:28]}…` {status}, {size/1024:.0f} KiB | {first*1000:.0f} ms | "
      f"{cached*1000:.1f} ms | {p(0.5):.1f} / {p(0.99):.1f} ms ({len(home)}) | {int(hwm)/1024:.0f} MiB |")
PY
    kill "$pid"; wait "$pid" 2>/dev/null || true
}

echo "| attack | stored as | worst page | first view | cached view | home p50 / p99 under 4 clients on it (requests) | serve peak RSS |"
echo "|---|---|---|---|---|---|---|"
for attack in ${ATTACKS:-wide-schema-1000 wide-schema-64 repeated-docs-8 nested-quotes nested-html huge-tar-path}; do
    run "$attack"
done
