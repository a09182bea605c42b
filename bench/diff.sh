#!/usr/bin/env bash
# Benchmark of `shimmer diff` (not a test): real version pairs from testdata compared as source
# folders, no database, the release binary; wall time and peak RSS of each run (median of RUNS,
# default 3), and how many changes it found. Prints a Markdown table. The indexer's side (the
# changes stored when a 2,288-CRD version with 5% of its CRDs changed is indexed: time and
# objects read) is in bench/indexer.sh.
#
#   bench/diff.sh        # needs: time (apt)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
SRC=${SHIMMER_TESTDATA:-$ROOT/testdata/xpkg-sources}
RUNS=${RUNS:-3}

source bench/lib.sh
install_packages time python3
cargo build --release -q -p shimmer
SHIMMER=${CARGO_TARGET_DIR:-$ROOT/target}/release/shimmer
bench_workdir diff

run() { # old new -> "seconds peak_kib changes breaking"
    local i walls=() rss=0 r
    for ((i = 0; i < RUNS; i++)); do
        /usr/bin/time -v -o "$WORK/time" "$SHIMMER" diff "$SRC/$1" "$SRC/$2" --json >"$WORK/out" || [[ $? == 1 ]]
        walls+=("$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$WORK/time" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')")
        r=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time")
        ((r > rss)) && rss=$r
    done
    local median
    median=$(printf '%s\n' "${walls[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    python3 - "$WORK/out" "$median" "$rss" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(sys.argv[2], int(sys.argv[3]) // 1024, len(d["changes"]), d["breaking"])
PY
}

echo "| pair | CRDs/XRDs (old / new) | wall (s, median of $RUNS) | peak RSS (MiB) | changes | breaking |"
echo "|---|---|---|---|---|---|"
for pair in \
    "provider-aws-ec2-v1.23.0 provider-aws-ec2-v2.6.0" \
    "provider-kubernetes-v0.18.0 provider-kubernetes-v1.2.1" \
    "provider-helm-v0.21.0 provider-helm-v1.4.0" \
    "configuration-aws-network-v0.9.0 configuration-aws-network-v0.15.0"; do
    read -r old new <<<"$pair"
    count() { find "$SRC/$1" -name '*.yaml' -not -path '*/examples/*' -exec grep -l '^kind: \(CustomResourceDefinition\|CompositeResourceDefinition\)' {} + 2>/dev/null | wc -l; }
    read -r wall rss changes breaking < <(run "$old" "$new")
    echo "| $old -> ${new##*-} | $(count "$old") / $(count "$new") | $wall | $rss | $changes | $breaking |"
done
echo
echo "Target: the whole ec2 diff under 2 s."
