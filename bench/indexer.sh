#!/usr/bin/env bash
# Benchmark of the indexer (not a test): a synthetic provider as large as the real AWS provider
# (by default 2,288 CRDs, ~97 MB of YAML, made by copying the real ec2 CRDs under new group names;
# COPIES sets how many copies of the 208 ec2 CRDs: COPIES=12 is 2,496 CRDs and ~106 MB) plus
# a 64 MiB controller layer, pushed through the shim and indexed with `shimmer index`; then a
# second version that changes 5% of the CRDs. Prints a Markdown table.
#
#   bench/indexer.sh        # needs: postgresql docker-registry skopeo time (apt)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
EC2=${SHIMMER_TESTDATA:-$ROOT/testdata/xpkg-sources}/provider-aws-ec2-v2.6.0
COPIES=${COPIES:-11}

source bench/lib.sh
install_packages postgresql docker-registry skopeo time python3
cargo build --release -q -p shimmer
SHIMMER=${CARGO_TARGET_DIR:-$ROOT/target}/release/shimmer

bench_workdir indexer
PG=$(free_port); REG=$(free_port); SHIM=$(free_port)
start_pg "$PG"
SQL() { psql -h 127.0.0.1 -p "$PG" -U postgres -d shimmer -tAc "$1"; }

start_registry "$REG"
cat >"$WORK/shimmer.toml" <<EOF
[server]
listen = "127.0.0.1:$SHIM"
[database]
url = "postgres://postgres@127.0.0.1:$PG/shimmer"
[log]
filter = "warn,shimmer_indexer::pipeline::changes=info"
$(primary_backend_toml "http://127.0.0.1:$REG")
EOF
"$SHIMMER" migrate --config "$WORK/shimmer.toml"
"$SHIMMER" shim --config "$WORK/shimmer.toml" >"$WORK/shim.log" 2>&1 & PIDS+=($!)
wait_port "$REG"; wait_port "$SHIM"

echo "generating the synthetic provider..." >&2
python3 - "$EC2" "$WORK/layout" "$COPIES" <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile
ec2, out, copies = sys.argv[1], sys.argv[2], int(sys.argv[3])
crds = sorted(os.path.join(ec2, "crds", f) for f in os.listdir(os.path.join(ec2, "crds")))
texts = [open(p, encoding="utf-8").read() for p in crds]
meta = """apiVersion: meta.pkg.crossplane.io/v1
kind: Provider
metadata:
  name: provider-bench-big
  annotations:
    meta.crossplane.io/maintainer: shimmer benchmark
    meta.crossplane.io/description: A synthetic provider as large as the AWS provider.
spec:
  crossplane:
    version: ">=v1.14.0"
"""
def package(changed):
    docs, n = ["---\n" + meta], 0
    for i in range(copies):
        for t in texts:
            doc = t.replace("ec2.aws.", f"svc{i:02d}.aws.")
            if n in changed:
                # A changed CRD: one more label, as a regenerated CRD would differ.
                doc = doc.replace("\nmetadata:\n", "\nmetadata:\n  labels:\n    bench.shimmer.dev/revision: v2\n", 1)
            docs.append("---\n" + doc + ("" if doc.endswith("\n") else "\n"))
            n += 1
    return "".join(docs).encode(), n
os.makedirs(f"{out}/blobs/sha256", exist_ok=True)
def put(b):
    h = hashlib.sha256(b).hexdigest(); open(f"{out}/blobs/sha256/{h}", "wb").write(b)
    return {"digest": "sha256:" + h, "size": len(b)}
def tar(name, data):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as t:
        ti = tarfile.TarInfo(name); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
    return raw.getvalue()
runtime_raw = tar("provider", os.urandom(64 * 1024 * 1024))
runtime = put(gzip.compress(runtime_raw, compresslevel=1))
index = {"schemaVersion": 2, "manifests": []}
total, _ = package(set())
for tag, changed in (("v1.0.0", set()), ("v2.0.0", set(range(0, 20 * copies * len(texts) // 20, 20)))):
    data, n = package(changed)
    raw = tar("package.yaml", data)
    base = put(gzip.compress(raw, compresslevel=6))
    layers = [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **base, "annotations": {"io.crossplane.xpkg": "base"}},
              {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **runtime}]
    cfg = {"architecture": "amd64", "os": "linux", "config": {"Labels": {"io.crossplane.xpkg:" + base["digest"]: "base"}},
           "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest(), "sha256:" + hashlib.sha256(runtime_raw).hexdigest()]}}
    c = put(json.dumps(cfg).encode())
    m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
         "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **c}, "layers": layers}
    md = put(json.dumps(m).encode())
    index["manifests"].append({"mediaType": "application/vnd.oci.image.manifest.v1+json", **md,
                               "annotations": {"org.opencontainers.image.ref.name": tag}})
    print(f"{tag}: {n} CRDs, {len(data) / 1e6:.1f} MB of YAML, {len(changed)} changed", file=sys.stderr)
json.dump(index, open(f"{out}/index.json", "w"))
open(f"{out}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
PY

rows() { SQL "select (select count(*) from objects), (select count(*) from api_types), (select count(*) from versions), (select count(*) from contents)"; }
index() { # tag -> "seconds peak_kib json"
    skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$WORK/layout:$1" "docker://127.0.0.1:$SHIM/bench/provider-big:$1"
    /usr/bin/time -v -o "$WORK/time.$1" "$SHIMMER" index --config "$WORK/shimmer.toml" --json "bench/provider-big:$1" >"$WORK/out.$1" 2>"$WORK/log.$1"
    local wall rss
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$WORK/time.$1" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.$1")
    echo "$wall $rss"
}
echo "indexing v1..." >&2
read -r T1 R1 < <(index v1.0.0)
IFS='|' read -r O1 A1 V1 C1 < <(rows)
echo "indexing v2 (5% of the CRDs changed)..." >&2
read -r T2 R2 < <(index v2.0.0)
IFS='|' read -r O2 A2 V2 C2 < <(rows)
field() { python3 -c "import json,sys; print(json.load(open('$1'))['$2'])"; }
D1=$(field "$WORK/out.v1.0.0" bytes_downloaded); S1=$(field "$WORK/out.v1.0.0" image_bytes); N1=$(field "$WORK/out.v1.0.0" objects)
APIS=$(python3 -c "import json; print(len(json.load(open('$WORK/out.v1.0.0'))['apis']))")
NEW2=$(field "$WORK/out.v2.0.0" objects_new)
# The changes v2 brought, computed and stored while it was indexed (the log line says how long
# and how many objects were read; the rest of the 2 x $APIS definitions were shared, not read).
logged() { grep -o "$1=[0-9]*" "$WORK/log.v2.0.0" | head -n 1 | cut -d= -f2; }
DIFF_MS=$(logged millis); DIFF_READ=$(logged objects_read); DIFF_DEFS=$(logged definitions)
DIFF_TOTAL=$(logged total); DIFF_BREAKING=$(logged breaking)
cat <<EOF

| measure | v1 (first version) | v2 (5% of CRDs changed) |
|---|---|---|
| objects in the package / API types | $N1 / $APIS | $N1 / $APIS |
| time to index (s) | $T1 | $T2 |
| peak RSS of \`shimmer index\` (MiB) | $((R1 / 1024)) | $((R2 / 1024)) |
| bytes downloaded / image size | $D1 / $S1 ($(awk -v a="$D1" -v b="$S1" 'BEGIN{printf "%.1f%%", 100*a/b}')) | same shape |
| objects written | $O1 | $((O2 - O1)) (objects_new = $NEW2) |
| api_types rows written | $A1 | $((A2 - A1)) |
| versions / contents rows written | $V1 / $C1 | $((V2 - V1)) / $((C2 - C1)) |
| changes from v1, computed and stored while indexing: time (ms) | | $DIFF_MS |
| objects read to compute them / definitions on both sides | | $DIFF_READ / $DIFF_DEFS |
| changes found / breaking | | $DIFF_TOTAL / $DIFF_BREAKING |

Targets: v1 under 30 s and under 1 GiB RSS; v2 writes only the changed objects; its changes
read about the 5% of objects that differ, not all of them.
EOF
