#!/usr/bin/env bash
# Benchmark of the shim (not a test): the same requests direct to a docker-registry, through nginx
# as a plain reverse proxy, and through `shimmer shim`, measured in one run, printed as a Markdown
# table of figures and ratios to going direct (the machine is noisy: compare within a run).
#
#   bench/shim.sh            # needs: docker-registry skopeo nginx socat (apt), oha (cargo install oha)
#   ROUNDS=7 REQUESTS=20000 bench/shim.sh
#   SHIMMER=target/release/shimmer bench/shim.sh   # skip the build
#   THREADS=0 bench/shim.sh                        # the shim on one serving thread per core
#   DEFAULTS=1 bench/shim.sh   # both as a user runs them: shim `threads = 0`, nginx `worker_processes auto`
#   BY=digest bench/shim.sh    # manifests asked by digest, not by tag
#   PIN=1 bench/shim.sh   # registry and clients on CPU 0, the proxy on CPU 1 (needs 2 CPUs)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ROUNDS=${ROUNDS:-5}
REQUESTS=${REQUESTS:-10000}
CONNECTIONS=${CONNECTIONS:-16}

# PIN=1: the registry and the clients on CPU 0, the proxy on a core of its own instead of
# competing with them for the same two. Going direct is then slower too, so the ratios are kinder
# than unpinned (see the README's Benchmarks). B and P prefix the commands of each side.
B=(); P=(); CEILING="all CPU direct / all CPU proxied"; PIN_NOTE=""
if [[ -n ${PIN:-} ]]; then
    B=(taskset -c 0); P=(taskset -c 1); CEILING="CPU 0 direct / busier CPU proxied"
    PIN_NOTE="Pinned (PIN=1): the registry and the clients share CPU 0 in every column, so going direct
is slower than unpinned, and the ratios are kinder than the unpinned ones (see the README)."
fi

need() { command -v "$1" >/dev/null 2>&1; }
missing=()
for p in docker-registry skopeo nginx socat python3 curl; do need "$p" || missing+=("$p"); done
if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    else
        echo "install: apt-get install -y ${missing[*]}" >&2; exit 1
    fi
fi
export PATH="$HOME/.cargo/bin:$PATH"
need oha || cargo install oha --locked
# SHIMMER=/path/to/shimmer measures a binary built elsewhere (another branch, another profile).
if [[ -z ${SHIMMER:-} ]]; then
    cargo build --release -q -p shimmer
    SHIMMER=$PWD/target/release/shimmer
fi

WORK=$(mktemp -d /tmp/shimmer-bench.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

REG=$(free_port); SHIM=$(free_port); NGX=$(free_port); RELAY=$(free_port)
mkdir -p "$WORK/data" "$WORK/nginx"
cat >"$WORK/registry.yml" <<EOF
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $WORK/data}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$REG, secret: bench}
EOF
"${B[@]}" docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 & PIDS+=($!); REG_PID=$!
# Both proxies serve on one thread (nginx: its one worker, master_process off). The registry and
# the load generator share the same cores, and a second serving thread only adds wake-ups here
# (1.4 against 1.0 context switches a request, measured with perf stat). THREADS=0 for one a core.
cat >"$WORK/shimmer.toml" <<EOF
[server]
listen = "127.0.0.1:$SHIM"
threads = ${THREADS:-$([[ -n ${DEFAULTS:-} ]] && echo 0 || echo 1)}
[database]
url = "postgres://postgres@127.0.0.1:1/none"
acquire_timeout = "200ms"
migrate_on_start = false
[log]
filter = "error"
[[backend]]
name = "primary"
url = "http://127.0.0.1:$REG"
[[route]]
prefix = ""
backend = "primary"
EOF
"${P[@]}" "$SHIMMER" shim --config "$WORK/shimmer.toml" >"$WORK/shim.log" 2>&1 & PIDS+=($!); SHIM_PID=$!
user=""; [[ $(id -u) -eq 0 ]] && user="user root;"
# DEFAULTS=1: nginx as installed, a master and one worker a core (`worker_processes auto`).
NGX_PROCS="master_process off;"
[[ -n ${DEFAULTS:-} ]] && NGX_PROCS="worker_processes auto;"
cat >"$WORK/nginx/nginx.conf" <<EOF
$user
daemon off;
$NGX_PROCS
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log error;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    upstream registry { server 127.0.0.1:$REG; keepalive 64; }
    server {
        listen 127.0.0.1:$NGX;
        client_max_body_size 0;
        location / {
            proxy_pass http://registry;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$http_host;
            # Streaming both ways, with 1 MiB buffers: with its default buffers nginx relays a
            # blob here at a third of this speed (buffering off: 4-8 KiB reads) or two thirds
            # (buffering on).
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_buffer_size 1m;
            proxy_buffers 4 1m;
            proxy_busy_buffers_size 2m;
        }
    }
}
EOF
"${P[@]}" nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" & PIDS+=($!); NGX_PID=$!
# The floor of any proxy that copies through user space: a bare TCP relay (socat, one forked
# child a connection, 1 MiB reads and writes, no HTTP), measured on blob GETs only.
"${P[@]}" socat -b1048576 "TCP4-LISTEN:$RELAY,bind=127.0.0.1,fork,reuseaddr" "TCP4:127.0.0.1:$REG" & PIDS+=($!); RELAY_PID=$!
wait_port "$REG"; wait_port "$SHIM"; wait_port "$NGX"; wait_port "$RELAY"

echo "seeding images..." >&2
python3 - "$WORK" <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile
work = sys.argv[1]
def layout(name, layers):
    d = f"{work}/{name}"; os.makedirs(f"{d}/blobs/sha256", exist_ok=True)
    def put(b):
        h = hashlib.sha256(b).hexdigest(); open(f"{d}/blobs/sha256/{h}", "wb").write(b)
        return {"digest": "sha256:" + h, "size": len(b)}
    descs, diffs = [], []
    for data in layers:
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as t:
            ti = tarfile.TarInfo("f"); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
        diffs.append("sha256:" + hashlib.sha256(raw.getvalue()).hexdigest())
        g = gzip.compress(raw.getvalue(), compresslevel=1)
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **put(g)})
    cfg = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diffs}}
    c = {"mediaType": "application/vnd.oci.image.config.v1+json", **put(json.dumps(cfg).encode())}
    m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": c, "layers": descs}
    md = {"mediaType": "application/vnd.oci.image.manifest.v1+json", **put(json.dumps(m).encode()),
          "annotations": {"org.opencontainers.image.ref.name": "v1"}}
    json.dump({"schemaVersion": 2, "manifests": [md]}, open(f"{d}/index.json", "w"))
    open(f"{d}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
layout("big", [os.urandom(256 * 1024 * 1024)])
layout("small", [os.urandom(64 * 1024) for _ in range(10)])
PY
skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$WORK/big:v1" "docker://127.0.0.1:$REG/bench/big:v1"
skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$WORK/small:v1" "docker://127.0.0.1:$REG/bench/small:v1"
BLOB=$(python3 -c "import json;print(json.load(open('$WORK/big/blobs/sha256/'+json.load(open('$WORK/big/index.json'))['manifests'][0]['digest'][7:]))['layers'][0]['digest'])")
ACCEPT="application/vnd.oci.image.manifest.v1+json"
# BY=digest: manifests asked by digest (as containerd and Crossplane pull), else by tag.
MANIFEST_REF=v1
[[ ${BY:-} == digest ]] && MANIFEST_REF=$(python3 -c "import json;print(json.load(open('$WORK/small/index.json'))['manifests'][0]['digest'])")

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# Peak RSS of the shim while the traffic below passes (VmRSS sampled every 20 ms).
echo 0 >"$WORK/rss"
( peak=0; while kill -0 "$SHIM_PID" 2>/dev/null; do
    r=$(awk '/VmRSS/ {print $2}' "/proc/$SHIM_PID/status" 2>/dev/null || echo 0)
    ((r > peak)) && peak=$r && echo "$peak" >"$WORK/rss"
    sleep 0.02; done ) & PIDS+=($!)

declare -A BLOB_MBS BCPU_REG BCPU_PROXY BCPU_CLIENT CPU_CLIENT MAN_GET MAN_GET_P50 MAN_GET_P99 MAN_HEAD MAN_HEAD_P50 MAN_HEAD_P99 PULL_SMALL PULL_BIG CPU_REG CPU_PROXY
targets=(direct nginx shim)
port_of() { case $1 in direct) echo "$REG" ;; nginx) echo "$NGX" ;; shim) echo "$SHIM" ;; relay) echo "$RELAY" ;; esac; }
pid_of() { case $1 in direct) echo "" ;; nginx) echo "$NGX_PID" ;; shim) echo "$SHIM_PID" ;; relay) echo "$RELAY_PID" ;; esac; }
# CPU time (user + system, in clock ticks) a process and its reaped children have used so far
# (socat's children, one a connection, are reaped as they end; wait for that first).
# nginx's workers (DEFAULTS=1) live as long as it does: their own time is added.
ticks() {
    [[ -n $1 ]] || { echo 0; return; }
    if [[ $1 == "$RELAY_PID" ]]; then
        for _ in $(seq 50); do pgrep -P "$1" >/dev/null || break; sleep 0.01; done
    fi
    local procs=("/proc/$1/stat") c
    [[ $1 == "$NGX_PID" ]] && for c in $(pgrep -P "$1"); do procs+=("/proc/$c/stat"); done
    awk '{s += $14 + $15 + $16 + $17} END {print s}' "${procs[@]}"
}
TCK=$(getconf CLK_TCK)

# Rounds are interleaved (direct, nginx, shim, direct, ...) so a slow spell of this shared
# machine hits every target alike; each figure is the median of its rounds.
# Alongside, the CPU time of the registry, the proxy and the client (curl, oha) in each mode: on
# two cores they all share the CPU, which bounds what any proxy can reach (see the README).
TIMEFORMAT='%3U %3S'
echo "blob GET throughput ($ROUNDS interleaved rounds)..." >&2
for r in $(seq "$ROUNDS"); do
    for t in "${targets[@]}" relay; do
        pid=$(pid_of "$t"); r0=$(ticks "$REG_PID"); x0=$(ticks "$pid")
        { time "${B[@]}" curl -s -o /dev/null -w '%{speed_download}\n' \
            "http://127.0.0.1:$(port_of "$t")/v2/bench/big/blobs/$BLOB" >>"$WORK/blob.$t"; } 2>"$WORK/time"
        echo "$(( $(ticks "$REG_PID") - r0 )) $(( $(ticks "$pid") - x0 )) $(cat "$WORK/time")" >>"$WORK/blobcpu.$t"
    done
done
for t in "${targets[@]}" relay; do
    BLOB_MBS[$t]=$(median <"$WORK/blob.$t" | awk '{printf "%.0f", $1/1048576}')
    # Milliseconds of CPU per transfer, averaged over the rounds: registry, proxy, client.
    read -r BCPU_REG[$t] BCPU_PROXY[$t] BCPU_CLIENT[$t] < <(awk -v n="$ROUNDS" -v tck="$TCK" \
        '{a += $1; b += $2; c += $3 + $4} END {printf "%.0f %.0f %.0f\n", a * 1000 / tck / n, b * 1000 / tck / n, c * 1000 / n}' "$WORK/blobcpu.$t")
done

oha_run() { # method url -> "rps p50_ms p99_ms"; oha's own CPU time goes to $WORK/time
    { time "${B[@]}" oha --no-tui -n "$REQUESTS" -c "$CONNECTIONS" -m "$1" -H "Accept: $ACCEPT" --output-format json "$2" \
        >"$WORK/oha.json" 2>/dev/null; } 2>"$WORK/time"
    python3 -c 'import json,sys; j=json.load(sys.stdin); s=j["summary"]; p=j["latencyPercentiles"]; print(round(s["requestsPerSec"]), round(p["p50"]*1000,2), round(p["p99"]*1000,2))' <"$WORK/oha.json"
}
echo "manifest GET and HEAD request rates ($ROUNDS interleaved rounds of $REQUESTS requests)..." >&2
for r in $(seq "$ROUNDS"); do
    # The order turns each round (direct, nginx, shim; nginx, shim, direct; ...), so no target
    # always runs just after another (the registry's garbage collection, a cache warmed).
    order=("${targets[@]:r%3}" "${targets[@]:0:r%3}")
    for m in GET HEAD; do
        for t in "${order[@]}"; do
            p=$(port_of "$t"); pid=$(pid_of "$t")
            r0=$(ticks "$REG_PID"); x0=$(ticks "$pid")
            oha_run "$m" "http://127.0.0.1:$p/v2/bench/small/manifests/$MANIFEST_REF" >>"$WORK/oha.$m.$t"
            echo "$(( $(ticks "$REG_PID") - r0 )) $(( $(ticks "$pid") - x0 )) $(cat "$WORK/time")" >>"$WORK/cpu.$t"
        done
    done
done
# Each round's rate over the same round's direct rate, the median of those: a slow spell moves
# a round's three figures together, so this is steadier than the ratio of the medians.
paired() { # method target -> median of the per-round ratios to direct
    paste -d' ' "$WORK/oha.$1.direct" "$WORK/oha.$1.$2" | awk '$1 > 0 {print $4 / $1}' | median |
        awk '{printf "%.2fx", $1}'
}
for t in "${targets[@]}"; do
    col() { awk -v c="$1" '{print $c}' "$WORK/oha.$2.$t" | median; }
    MAN_GET[$t]=$(col 1 GET); MAN_GET_P50[$t]=$(col 2 GET); MAN_GET_P99[$t]=$(col 3 GET)
    MAN_HEAD[$t]=$(col 1 HEAD); MAN_HEAD_P50[$t]=$(col 2 HEAD); MAN_HEAD_P99[$t]=$(col 3 HEAD)
    # Microseconds of CPU per request, over all rounds of both methods.
    read -r CPU_REG[$t] CPU_PROXY[$t] CPU_CLIENT[$t] < <(awk -v n=$((ROUNDS * 2 * REQUESTS)) -v tck="$TCK" \
        '{a += $1; b += $2; c += $3 + $4} END {printf "%.0f %.0f %.0f\n", a * 1e6 / tck / n, b * 1e6 / tck / n, c * 1e6 / n}' "$WORK/cpu.$t")
done

echo "full image pulls with skopeo..." >&2
pull() { # port image -> seconds
    local out="$WORK/pull"; rm -rf "$out"
    local s; s=$(date +%s.%N)
    "${B[@]}" skopeo --insecure-policy copy -q --src-tls-verify=false "docker://127.0.0.1:$1/bench/$2:v1" "dir:$out"
    echo "$(date +%s.%N) - $s" | bc -l
}
for t in "${targets[@]}"; do
    p=$(port_of "$t")
    PULL_SMALL[$t]=$(for _ in $(seq "$ROUNDS"); do pull "$p" small; done | median | awk '{printf "%.3f", $1}')
    PULL_BIG[$t]=$(for _ in 1; do pull "$p" big; done | median | awk '{printf "%.2f", $1}')
done

echo "1 GiB blob pushed and pulled through the shim (memory)..." >&2
head -c $((1024 * 1024 * 1024)) /dev/urandom >"$WORK/gib"
GIB=sha256:$(sha256sum "$WORK/gib" | cut -d' ' -f1)
LOC=$(curl -s -D - -o /dev/null -X POST "http://127.0.0.1:$SHIM/v2/bench/gib/blobs/uploads/" | awk 'tolower($1)=="location:" {print $2}' | tr -d '\r')
curl -s -o /dev/null -T "$WORK/gib" -H 'Content-Type: application/octet-stream' "http://127.0.0.1:$SHIM${LOC}&digest=$GIB"
GOT=$(curl -s "http://127.0.0.1:$SHIM/v2/bench/gib/blobs/$GIB" | sha256sum | cut -d' ' -f1)
[[ "sha256:$GOT" == "$GIB" ]] || { echo "1 GiB blob came back different" >&2; exit 1; }
sleep 0.1
RSS_KB=$(cat "$WORK/rss")
HWM_KB=$(awk '/VmHWM/ {print $2}' "/proc/$SHIM_PID/status")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }
# What the CPU figures predict: with the machine as busy proxied as direct, a rate scales with
# the inverse of all the CPU (registry, proxy, client) one request or transfer costs. Pinned, the
# busier core decides: CPU 0 (registry and client) or CPU 1 (the proxy).
cpu_ceiling() { # direct: registry client; proxied: registry proxy client
    awk -v a="$1" -v b="$2" -v x="$3" -v y="$4" -v z="$5" -v pin="${PIN:-}" 'BEGIN {
        proxied = pin == "" ? x + y + z : (x + z > y ? x + z : y); printf "%.2fx", (a + b) / proxied }'
}
blob_ceiling() { cpu_ceiling "${BCPU_REG[direct]}" "${BCPU_CLIENT[direct]}" "${BCPU_REG[$1]}" "${BCPU_PROXY[$1]}" "${BCPU_CLIENT[$1]}"; }
man_ceiling() { cpu_ceiling "${CPU_REG[direct]}" "${CPU_CLIENT[direct]}" "${CPU_REG[$1]}" "${CPU_PROXY[$1]}" "${CPU_CLIENT[$1]}"; }
inv() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0) printf "%.2fx", b / a; else print "-" }'; }
SHIM_THREADS=$(awk -F' = ' '/^threads/ {print $2}' "$WORK/shimmer.toml")
NGX_MODE=$([[ -n ${DEFAULTS:-} ]] && echo "worker_processes auto" || echo "one worker")
cat <<EOF

Shim \`threads = $SHIM_THREADS\`, nginx $NGX_MODE; manifests by ${BY:-tag}.

| measure | direct | nginx | shim | nginx/direct | shim/direct |
|---|---|---|---|---|---|
| 256 MiB blob GET (MiB/s, median of $ROUNDS) | ${BLOB_MBS[direct]} | ${BLOB_MBS[nginx]} | ${BLOB_MBS[shim]} | $(ratio "${BLOB_MBS[nginx]}" "${BLOB_MBS[direct]}") | $(ratio "${BLOB_MBS[shim]}" "${BLOB_MBS[direct]}") |
| blob GET CPU per transfer, registry / proxy / curl (ms) | ${BCPU_REG[direct]} / - / ${BCPU_CLIENT[direct]} | ${BCPU_REG[nginx]} / ${BCPU_PROXY[nginx]} / ${BCPU_CLIENT[nginx]} | ${BCPU_REG[shim]} / ${BCPU_PROXY[shim]} / ${BCPU_CLIENT[shim]} | | |
| blob GET rate predicted by CPU: $CEILING | | | | $(blob_ceiling nginx) | $(blob_ceiling shim) |
| manifest GET (req/s, $CONNECTIONS conns, median of $ROUNDS x $REQUESTS) | ${MAN_GET[direct]} | ${MAN_GET[nginx]} | ${MAN_GET[shim]} | $(ratio "${MAN_GET[nginx]}" "${MAN_GET[direct]}") | $(ratio "${MAN_GET[shim]}" "${MAN_GET[direct]}") |
| manifest GET p50 / p99 (ms) | ${MAN_GET_P50[direct]} / ${MAN_GET_P99[direct]} | ${MAN_GET_P50[nginx]} / ${MAN_GET_P99[nginx]} | ${MAN_GET_P50[shim]} / ${MAN_GET_P99[shim]} | | |
| manifest HEAD (req/s) | ${MAN_HEAD[direct]} | ${MAN_HEAD[nginx]} | ${MAN_HEAD[shim]} | $(ratio "${MAN_HEAD[nginx]}" "${MAN_HEAD[direct]}") | $(ratio "${MAN_HEAD[shim]}" "${MAN_HEAD[direct]}") |
| manifest GET / HEAD, median of each round's ratio to direct | | | | $(paired GET nginx) / $(paired HEAD nginx) | $(paired GET shim) / $(paired HEAD shim) |
| manifest HEAD p50 / p99 (ms) | ${MAN_HEAD_P50[direct]} / ${MAN_HEAD_P99[direct]} | ${MAN_HEAD_P50[nginx]} / ${MAN_HEAD_P99[nginx]} | ${MAN_HEAD_P50[shim]} / ${MAN_HEAD_P99[shim]} | | |
| CPU per manifest request, registry / proxy / oha (us) | ${CPU_REG[direct]} / - / ${CPU_CLIENT[direct]} | ${CPU_REG[nginx]} / ${CPU_PROXY[nginx]} / ${CPU_CLIENT[nginx]} | ${CPU_REG[shim]} / ${CPU_PROXY[shim]} / ${CPU_CLIENT[shim]} | | |
| manifest rate predicted by CPU: $CEILING | | | | $(man_ceiling nginx) | $(man_ceiling shim) |
| skopeo pull, 10-layer image (s) | ${PULL_SMALL[direct]} | ${PULL_SMALL[nginx]} | ${PULL_SMALL[shim]} | $(inv "${PULL_SMALL[nginx]}" "${PULL_SMALL[direct]}") | $(inv "${PULL_SMALL[shim]}" "${PULL_SMALL[direct]}") |
| skopeo pull, 256 MiB image (s) | ${PULL_BIG[direct]} | ${PULL_BIG[nginx]} | ${PULL_BIG[shim]} | $(inv "${PULL_BIG[nginx]}" "${PULL_BIG[direct]}") | $(inv "${PULL_BIG[shim]}" "${PULL_BIG[direct]}") |
| shim peak RSS, all of the above + 1 GiB blob up and down (MiB) | | | $((RSS_KB / 1024)) (VmHWM $((HWM_KB / 1024))) | | |

Ratios are throughput ratios (higher is better; pull-time rows are inverted to match).
Targets: blob throughput >= 0.8x direct; manifest requests/s >= 0.9x direct; peak RSS < 64 MiB.
EOF
cat <<EOF

What the copies alone cost, in the same rounds: a bare TCP relay (socat, 1 MiB buffers, no
HTTP) reading each piece of the blob and writing it again, as any user-space proxy must.

| bare TCP relay | MiB/s | relay/direct | CPU per transfer, registry / relay / curl (ms) | predicted by CPU |
|---|---|---|---|---|
| socat -b1048576 | ${BLOB_MBS[relay]} | $(ratio "${BLOB_MBS[relay]}" "${BLOB_MBS[direct]}") | ${BCPU_REG[relay]} / ${BCPU_PROXY[relay]} / ${BCPU_CLIENT[relay]} | $(blob_ceiling relay) |
EOF
[[ -z $PIN_NOTE ]] || echo "$PIN_NOTE"
