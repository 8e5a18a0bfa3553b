#!/usr/bin/env bash
# PDQ index benchmark: ours (compact and fast layouts; one query at a time
# and one batch) against faiss IndexBinaryMultiHash(nhash=16, b=16, nflip=1)
# (HMA's index) and IndexBinaryFlat, in the same run on this machine, on
# 1M and 10M random codes and a clustered set around the fixture hashes,
# with 10,000 queries (half near-duplicates 10-31 bits away, half random).
# Prints build time, peak RSS, bytes per code, queries/s per core, recall
# against brute force (must be 1.000) and the ratio to faiss MultiHash.
#
#   bash bench/index.sh                          # all three datasets
#   DATASETS=random-1m bash bench/index.sh       # one dataset
#
# Generated data and ground truth are cached in $WORK (default
# target/index-bench, about 1 GB); raw results go to bench/results/index.json.
# Needs cargo, python3, /usr/bin/time and bench/requirements.txt; about 2 GB
# free memory per engine at 10M and 10-20 minutes in all.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
WORK="${WORK:-$CARGO_TARGET_DIR/index-bench}"
DATASETS="${DATASETS:-random-1m,random-10m,clustered-1m}"
FIXTURES="${FIXTURES:-../shared/fixtures/pdq}"

python3 -c 'import faiss, numpy' 2>/dev/null || python3 -m pip install -q -r bench/requirements.txt
cargo build --release --quiet -p childsafe-match --example index_bench
echo "index: $(nproc) cores present; every engine runs on one thread" >&2
python3 bench/index_bench.py \
  --bin "$CARGO_TARGET_DIR/release/examples/index_bench" \
  --work "$WORK" \
  --fixtures "$FIXTURES" \
  --datasets "$DATASETS" \
  --out bench/results/index.json
