#!/usr/bin/env bash
# Benchmark of the pull-through cache (not a test): the same pulls through shimmer's cache and
# through docker-registry in proxy mode, both in front of one upstream docker-registry with the
# same data, first cold (empty caches) then warm. Prints a Markdown table.
#
#   bench/cache.sh        # needs: postgresql docker-registry skopeo curl (apt)
#   SMALL_IMAGES=200 CLIENTS=10 bench/cache.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
NSMALL=${SMALL_IMAGES:-200}
CLIENTS=${CLIENTS:-10}

cargo build --release -q -p shimmer
SHIMMER=$PWD/target/release/shimmer
source bench/lib.sh
bench_workdir cache
now() { date +%s.%N; }
calc() { python3 -c "print(round($1, 2))"; }

UP=$(free_port); PROXY=$(free_port); SHIM=$(free_port); PG=$(free_port)
mkdir -p "$WORK/up" "$WORK/proxy" "$WORK/cache"
start_pg "$PG"
registry() { # name port extra-yaml
    cat >"$WORK/$1.yml" <<EOF
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $WORK/$1}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$2, secret: bench}
$3
EOF
    docker-registry serve "$WORK/$1.yml" >"$WORK/$1.log" 2>&1 & PIDS+=($!)
}
registry up "$UP" ""
wait_port "$UP"

echo "seeding the upstream: a 256 MiB image, a 20-layer image, $NSMALL small images..." >&2
python3 - "$WORK" "$NSMALL" <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile
work, nsmall = sys.argv[1], int(sys.argv[2])
def layout(name, layers, tags):
    d = f"{work}/layouts/{name}"; os.makedirs(f"{d}/blobs/sha256", exist_ok=True)
    def put(b):
        h = hashlib.sha256(b).hexdigest(); open(f"{d}/blobs/sha256/{h}", "wb").write(b)
        return {"digest": "sha256:" + h, "size": len(b)}
    manifests = []
    for tag, tag_layers in tags(layers):
        descs, diffs = [], []
        for data in tag_layers:
            raw = io.BytesIO()
            with tarfile.open(fileobj=raw, mode="w") as t:
                ti = tarfile.TarInfo("f"); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
            diffs.append("sha256:" + hashlib.sha256(raw.getvalue()).hexdigest())
            descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **put(gzip.compress(raw.getvalue(), 1))})
        cfg = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diffs}}
        c = {"mediaType": "application/vnd.oci.image.config.v1+json", **put(json.dumps(cfg).encode())}
        m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": c, "layers": descs}
        manifests.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", **put(json.dumps(m).encode()),
                          "annotations": {"org.opencontainers.image.ref.name": tag}})
    json.dump({"schemaVersion": 2, "manifests": manifests}, open(f"{d}/index.json", "w"))
    open(f"{d}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
layout("big", [os.urandom(256 * 1024 * 1024)], lambda l: [("v1", l)])
layout("twenty", [os.urandom(1024 * 1024) for _ in range(20)], lambda l: [("v1", l)])
layout("small", None, lambda _: [(f"s{i}", [os.urandom(4096)]) for i in range(nsmall)])
PY
skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$WORK/layouts/big:v1" "docker://127.0.0.1:$UP/bench/big:v1"
skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$WORK/layouts/twenty:v1" "docker://127.0.0.1:$UP/bench/twenty:v1"
seq 0 $((NSMALL - 1)) | xargs -P 8 -I{} skopeo --insecure-policy copy -q --dest-tls-verify=false \
    "oci:$WORK/layouts/small:s{}" "docker://127.0.0.1:$UP/bench/small:s{}"
BLOB=$(skopeo inspect --raw --tls-verify=false "docker://127.0.0.1:$UP/bench/big:v1" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"][0]["digest"])')

registry proxy "$PROXY" "proxy: {remoteurl: http://127.0.0.1:$UP}"
PROXY_PID=${PIDS[-1]}
cat >"$WORK/shimmer.toml" <<EOF
[server]
listen = "127.0.0.1:$SHIM"
[database]
url = "postgres://postgres@127.0.0.1:$PG/shimmer"
[cache]
path = "$WORK/cache"
[log]
filter = "error"
[[upstream]]
name = "up"
hosts = ["upstream.test"]
url = "http://127.0.0.1:$UP"
EOF
"$SHIMMER" migrate --config "$WORK/shimmer.toml"
"$SHIMMER" shim --config "$WORK/shimmer.toml" >"$WORK/shim.log" 2>&1 & PIDS+=($!); SHIM_PID=$!
wait_port "$PROXY"; wait_port "$SHIM"

peak_rss() { # pid file: samples VmHWM at the end
    awk '/VmHWM/ {print int($2/1024)}' "/proc/$1/status"
}
# Repository paths: the proxy serves bench/x; shimmer serves upstream.test/bench/x (host-in-path,
# what containerd's ?ns= selects for clients that cannot send it).
declare -A PORT=([proxy]=$PROXY [shimmer]=$SHIM) PREFIX=([proxy]="" [shimmer]="upstream.test/")
declare -A R
for pass in cold warm; do
    for t in proxy shimmer; do
        base="http://127.0.0.1:${PORT[$t]}/v2/${PREFIX[$t]}bench"
        # 256 MiB blob: time to first byte and throughput.
        read -r ttfb speed < <(curl -s -o /dev/null -w '%{time_starttransfer} %{speed_download}\n' "$base/big/blobs/$BLOB")
        R[$t,$pass,ttfb]=$(calc "$ttfb * 1000")
        R[$t,$pass,blob]=$(calc "$speed / 1048576")
        # A 20-layer image with skopeo.
        rm -rf "$WORK/out"; t0=$(now)
        skopeo --insecure-policy copy -q --src-tls-verify=false \
            "docker://127.0.0.1:${PORT[$t]}/${PREFIX[$t]}bench/twenty:v1" "dir:$WORK/out"
        R[$t,$pass,twenty]=$(calc "$(now) - $t0")
        # Small images, $CLIENTS clients at once.
        rm -rf "$WORK/small-out"; mkdir -p "$WORK/small-out"; t0=$(now)
        seq 0 $((NSMALL - 1)) | xargs -P "$CLIENTS" -I{} skopeo --insecure-policy copy -q \
            --src-tls-verify=false "docker://127.0.0.1:${PORT[$t]}/${PREFIX[$t]}bench/small:s{}" "dir:$WORK/small-out/{}"
        R[$t,$pass,small]=$(calc "$NSMALL / ($(now) - $t0)")
    done
done
R[proxy,rss]=$(peak_rss "$PROXY_PID"); R[shimmer,rss]=$(peak_rss "$SHIM_PID")

echo "| measure | docker-registry proxy | shimmer cache |"
echo "|---|---:|---:|"
for pass in cold warm; do
    echo "| $pass: 256 MiB blob, time to first byte (ms) | ${R[proxy,$pass,ttfb]} | ${R[shimmer,$pass,ttfb]} |"
    echo "| $pass: 256 MiB blob (MB/s) | ${R[proxy,$pass,blob]} | ${R[shimmer,$pass,blob]} |"
    echo "| $pass: 20-layer image, skopeo pull (s) | ${R[proxy,$pass,twenty]} | ${R[shimmer,$pass,twenty]} |"
    echo "| $pass: $NSMALL small images, $CLIENTS clients (images/s) | ${R[proxy,$pass,small]} | ${R[shimmer,$pass,small]} |"
done
echo "| peak RSS (MiB, VmHWM) | ${R[proxy,rss]} | ${R[shimmer,rss]} |"
echo
echo "One upstream docker-registry on loopback; $(nproc) cores; MB/s are MiB/s."
