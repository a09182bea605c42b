#!/usr/bin/env bash
# Benchmark of marketplace search (not a test): a generated catalogue of 500 packages and
# 100,000 API types in a private PostgreSQL, `shimmer web` in release mode, and oha sending each
# query for a while; prints p50/p99 latency (loopback, so ≈ server time) and request rates.
#
#   bench/search.sh                     # needs: postgresql (apt), oha (cargo install oha)
#   PACKAGES=500 APIS_PER_PACKAGE=200 DURATION=10s bench/search.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

NPKG=${PACKAGES:-500}
PER=${APIS_PER_PACKAGE:-200}
DURATION=${DURATION:-5s}
CONNECTIONS=${CONNECTIONS:-4}

export PATH="$HOME/.cargo/bin:$PATH"
command -v oha >/dev/null || cargo install oha --locked
cargo build --release -q -p shimmer
SHIMMER=$PWD/target/release/shimmer
source bench/lib.sh
bench_workdir search
PG=$(free_port); WEB=$(free_port)
start_pg "$PG"
SQL() { psql -q -h 127.0.0.1 -p "$PG" -U postgres -d shimmer -tAc "$1"; }
SQL_FILE() { psql -q -h 127.0.0.1 -p "$PG" -U postgres -d shimmer -v ON_ERROR_STOP=1 -f "$@" >/dev/null; }
cat >"$WORK/shimmer.toml" <<EOF
[database]
url = "postgres://postgres@127.0.0.1:$PG/shimmer"
[web]
listen = "127.0.0.1:$WEB"
[log]
filter = "warn"
EOF
"$SHIMMER" migrate --config "$WORK/shimmer.toml"

echo "generating $NPKG packages with $PER API types each..." >&2
T0=$(date +%s.%N)
SQL_FILE bench/catalogue.sql -v npkg="$NPKG" -v per="$PER"
T1=$(date +%s.%N)
COUNTS=$(SQL "select (select count(*) from packages) || ' packages, ' || (select count(*) from api_types) || ' API types'")
echo "$COUNTS in $(python3 -c "print(round($T1-$T0,1))") s" >&2

if [[ -n ${KEEP:-} ]]; then # leave the database up for EXPLAIN: psql -h 127.0.0.1 -p $PG -U postgres shimmer
    trap - EXIT; echo "database left running on port $PG ($WORK)"; exit 0
fi
"$SHIMMER" web --config "$WORK/shimmer.toml" >"$WORK/web.log" 2>&1 & PIDS+=($!)
wait_port "$WEB"

QUERIES=(
    "Bucket.s3.aws.example.io"
    "Bucket"
    "Cluster"
    "s3.aws.example.io"
    "provider-aws-42"
    "networking"
    "Instnce"
    "BucketPolicy&type=Provider"
    "Bucket&group=s3.aws.example.io"
    "Load"
)
oha_json() { # connections url -> "rps p50_ms p99_ms"
    oha --no-tui -z "$DURATION" -c "$1" --output-format json "$2" 2>/dev/null |
        python3 -c 'import json,sys; j=json.load(sys.stdin); s=j["summary"]; p=j["latencyPercentiles"]; print(round(s["requestsPerSec"]), round(p["p50"]*1000,2), round(p["p99"]*1000,2))'
}
echo "| query | hits | p50 ms | p99 ms | requests/s (1 conn) | requests/s ($CONNECTIONS conns) | p99 ms ($CONNECTIONS conns) |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for q in "${QUERIES[@]}"; do
    url="http://127.0.0.1:$WEB/api/v1/search?q=$q"
    hits=$(curl -s "$url" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
    read -r rps1 p50 p99 < <(oha_json 1 "$url")
    read -r rpsn _ p99n < <(oha_json "$CONNECTIONS" "$url")
    echo "| \`${q//&/ }\` | $hits | $p50 | $p99 | $rps1 | $rpsn | $p99n |"
done
echo
echo "catalogue: $COUNTS; latency with one connection (server time; loopback), throughput also with $CONNECTIONS; $DURATION per run; $(nproc) cores"
