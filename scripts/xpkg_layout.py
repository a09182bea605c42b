#!/usr/bin/env python3
"""Builds an OCI image layout of a Crossplane package from a source tree, as `crossplane xpkg
build` would: package.yaml (the meta first, then every object file outside examples/) in a gzip
tar layer annotated `io.crossplane.xpkg: base`, and examples/ joined into .up/examples.yaml in a
layer annotated `upbound`, with the roles also recorded as config labels.

usage: xpkg_layout.py SOURCE_DIR LAYOUT_DIR TAG
"""
import gzip, hashlib, io, json, os, re, sys, tarfile

USAGE = """usage: xpkg_layout.py SOURCE_DIR LAYOUT_DIR TAG

Builds an OCI image layout of the Crossplane package in SOURCE_DIR (a crossplane.yaml and the
YAML files beneath it; examples/ becomes the examples layer) into LAYOUT_DIR, tagged TAG.
Push it with skopeo, e.g.:
  skopeo copy --dest-tls-verify=false oci:LAYOUT_DIR:TAG docker://localhost:5000/acme/pkg:TAG"""

def fail(message):
    print(f"xpkg_layout.py: {message}", file=sys.stderr)
    sys.exit(2)

if len(sys.argv) != 4 or sys.argv[1] in ("-h", "--help"):
    print(USAGE, file=sys.stderr)
    sys.exit(0 if sys.argv[1:2] in (["-h"], ["--help"]) else 2)
src, out, tag = sys.argv[1:4]
if not os.path.isdir(src):
    fail(f"{src}: not a folder")
meta_file = next((f for f in ("crossplane.yaml", "upbound.yaml") if os.path.exists(os.path.join(src, f))), None)
if meta_file is None:
    fail(f"{src}: no crossplane.yaml (a package source folder has one at its root)")
if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}", tag):
    fail(f"{tag!r}: not a valid OCI tag (letters, digits, '_', '.', '-'; at most 128)")
if os.path.exists(out) and not os.path.isdir(out):
    fail(f"{out}: exists and is not a folder")

def yaml_files(root, skip_examples):
    found = []
    for d, dirs, files in os.walk(root):
        rel = os.path.relpath(d, root)
        if skip_examples and (rel == "examples" or rel.startswith("examples" + os.sep)):
            continue
        for f in files:
            if f.endswith((".yaml", ".yml")) and f not in ("crossplane.yaml", "upbound.yaml", "auth.yaml"):
                found.append(os.path.join(d, f))
    return sorted(found)

def stream(paths):
    parts = []
    for p in paths:
        text = open(p, "rb").read()
        if b"apiVersion:" not in text:
            continue
        parts.append(b"---\n" + text + (b"" if text.endswith(b"\n") else b"\n"))
    return b"".join(parts)

package = stream([os.path.join(src, meta_file)] + yaml_files(src, True))
examples = stream(yaml_files(os.path.join(src, "examples"), False)) if os.path.isdir(os.path.join(src, "examples")) else b""

os.makedirs(os.path.join(out, "blobs", "sha256"), exist_ok=True)
def put(data):
    h = hashlib.sha256(data).hexdigest()
    open(os.path.join(out, "blobs", "sha256", h), "wb").write(data)
    return {"digest": "sha256:" + h, "size": len(data)}

def layer(name, data):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as t:
        info = tarfile.TarInfo(name); info.size = len(data); info.mode = 0o644
        t.addfile(info, io.BytesIO(data))
    return raw.getvalue(), gzip.compress(raw.getvalue(), mtime=0)

layers, labels, diffs = [], {}, []
for role, name, data in (("base", "package.yaml", package), ("upbound", ".up/examples.yaml", examples)):
    if not data:
        continue
    raw, gz = layer(name, data)
    d = put(gz)
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **d, "annotations": {"io.crossplane.xpkg": role}})
    labels["io.crossplane.xpkg:" + d["digest"]] = role
    diffs.append("sha256:" + hashlib.sha256(raw).hexdigest())
config = {"architecture": "amd64", "os": "linux", "config": {"Labels": labels}, "rootfs": {"type": "layers", "diff_ids": diffs}}
c = put(json.dumps(config).encode())
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **c}, "layers": layers}
m = put(json.dumps(manifest).encode())
index_path = os.path.join(out, "index.json")
index = json.load(open(index_path)) if os.path.exists(index_path) else {"schemaVersion": 2, "manifests": []}
index["manifests"] = [e for e in index["manifests"] if e.get("annotations", {}).get("org.opencontainers.image.ref.name") != tag]
index["manifests"].append({"mediaType": "application/vnd.oci.image.manifest.v1+json", **m,
                           "annotations": {"org.opencontainers.image.ref.name": tag}})
json.dump(index, open(index_path, "w"))
open(os.path.join(out, "oci-layout"), "w").write('{"imageLayoutVersion":"1.0.0"}')
