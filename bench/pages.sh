#!/usr/bin/env bash
# Benchmark of the marketplace's pages (not a test): real packages (provider-aws-ec2 v2.6.0,
# provider-kubernetes v0.18.0 and v1.2.1) pushed through `shimmer serve` and indexed, beside a
# generated catalogue of 500 packages (bench/catalogue.sql); then, for each page family, its
# size as sent (brotli, as browsers ask) and whole, whether any script blocks rendering, and the
# time to first byte at p50/p99 (oha, one connection, loopback: server time). Prints a table.
#
#   bench/pages.sh       # needs: postgresql docker-registry skopeo (apt), oha (cargo install oha)
#   REQUESTS=300 bench/pages.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
SRC=${SHIMMER_TESTDATA:-$ROOT/testdata/xpkg-sources}
REQUESTS=${REQUESTS:-200}
NPKG=${PACKAGES:-500}
PER=${APIS_PER_PACKAGE:-200}

source bench/lib.sh
install_packages postgresql docker-registry skopeo python3 curl
export PATH="$HOME/.cargo/bin:$PATH"
command -v oha >/dev/null || cargo install oha --locked
cargo build --release -q -p shimmer
SHIMMER=${CARGO_TARGET_DIR:-$ROOT/target}/release/shimmer

bench_workdir pages
PG=$(free_port); REG=$(free_port); SHIM=$(free_port); WEB=$(free_port)
start_pg "$PG"
SQL() { psql -q -h 127.0.0.1 -p "$PG" -U postgres -d shimmer -tAc "$1"; }
start_registry "$REG"
cat >"$WORK/shimmer.toml" <<TOML
[server]
listen = "127.0.0.1:$SHIM"
[web]
listen = "127.0.0.1:$WEB"
[database]
url = "postgres://postgres@127.0.0.1:$PG/shimmer"
[log]
filter = "warn"
$(primary_backend_toml "http://127.0.0.1:$REG")
TOML
"$SHIMMER" serve --config "$WORK/shimmer.toml" >"$WORK/serve.log" 2>&1 & PIDS+=($!)
wait_port "$REG"; wait_port "$SHIM"; wait_port "$WEB"

push() { # source repository tag
    python3 scripts/xpkg_layout.py "$SRC/$1" "$WORK/layout-$1" "$3"
    skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$WORK/layout-$1:$3" "docker://127.0.0.1:$SHIM/$2:$3"
}
echo "pushing and indexing the real packages..." >&2
push provider-aws-ec2-v2.6.0 upbound/provider-aws-ec2 v2.6.0
push provider-kubernetes-v0.18.0 crossplane-contrib/provider-kubernetes v0.18.0
push provider-kubernetes-v1.2.1 crossplane-contrib/provider-kubernetes v1.2.1
for _ in $(seq 600); do
    [[ $(SQL "select count(*) from index_jobs where state in ('queued', 'running')") == 0 ]] && break
    sleep 0.2
done
echo "generating $NPKG packages with $PER API types each..." >&2
psql -q -h 127.0.0.1 -p "$PG" -U postgres -d shimmer -v ON_ERROR_STOP=1 -v npkg="$NPKG" -v per="$PER" \
    -f bench/catalogue.sql >/dev/null

# The largest ec2 API: the CRD with the most JSON.
read -r GROUP KIND DIGEST < <(SQL "select a.api_group, a.kind, a.object_digest from api_types a
    join objects o on o.digest = a.object_digest join versions v on v.id = a.version_id
    join packages p on p.id = v.package_id where p.repository = 'upbound/provider-aws-ec2'
    order by o.size_bytes desc limit 1" | tr '|' ' ')
EC2=/packages/upbound/provider-aws-ec2
PAGES=(
    "home /"
    "package-list /packages"
    "package $EC2"
    "version $EC2/versions/v2.6.0"
    "api-docs-largest /docs/$DIGEST"
    "api-in-version $EC2/versions/v2.6.0/apis/$GROUP/$KIND"
    "search /search?q=Instance"
    "diff /packages/crossplane-contrib/provider-kubernetes/diff"
    "status /status"
)
echo "| page | path | sent (br, KiB) | whole (KiB) | render-blocking scripts | TTFB p50 / p99 (ms) |"
echo "|---|---|---:|---:|---:|---|"
for entry in "${PAGES[@]}"; do
    read -r name path <<<"$entry"
    url="http://127.0.0.1:$WEB$path"
    sent=$(curl -s -H 'Accept-Encoding: br' -o /dev/null -w '%{size_download}' "$url")
    curl -s -o "$WORK/page.html" "$url"
    whole=$(stat -c %s "$WORK/page.html")
    # A script in the head without defer or async blocks rendering.
    blocking=$(python3 - "$WORK/page.html" <<'PY'
import re, sys
head = open(sys.argv[1], encoding="utf-8", errors="replace").read().split("</head>")[0]
print(sum(1 for tag in re.findall(r"<script\b[^>]*>", head) if not re.search(r"\b(defer|async)\b", tag)))
PY
)
    read -r p50 p99 < <(oha --no-tui -n "$REQUESTS" -c 1 --output-format json "$url" 2>/dev/null |
        python3 -c 'import json,sys; p=json.load(sys.stdin)["latencyPercentiles"]; print(round(p["p50"]*1000,2), round(p["p99"]*1000,2))')
    kib() { python3 -c "print(round($1 / 1024, 1))"; }
    printf '| %s | `%.60s` | %s | %s | %s | %s / %s |\n' "$name" "$path" \
        "$(kib "$sent")" "$(kib "$whole")" "$blocking" "$p50" "$p99"
done
echo
echo "Largest ec2 API: $KIND ($GROUP). Catalogue: $(SQL "select count(*) from packages") packages,"
echo "$(SQL "select count(*) from api_types") API types. $REQUESTS requests a page, one connection; $(nproc) cores."
echo "Target: every page under 100 KiB as sent, no render-blocking script."
