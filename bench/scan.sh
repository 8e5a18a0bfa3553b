#!/usr/bin/env bash
# Dataset scan benchmark (README, "Performance" / "Dataset scan").
#
# On a generated img2dataset-shaped WebDataset of benign JPEGs (256-1024 px,
# 10 shards of 1000 by default), measures in the same run:
#   1. decoding alone: the scanner's reader and decoder, nothing else
#      (crates/scan/examples/decode_shards.rs);
#   2. the whole scan: `childsafe scan` with a bank of planted hashes, the
#      clean copy, manifests and report queue written;
#   3. the Python baseline (bench/scan_baseline.py): Pillow + pdqhash + a set
#      lookup + tarfile rewrite, one process.
# Runs 1 and 2 are made with 1 thread (per-core figures) and with every core.
# Prints samples/s, the scan's overhead over decoding alone, and the ratio
# to the baseline. Needs: python3 with bench/requirements.txt installed.
#
# Usage: bench/scan.sh [N_IMAGES]    (default 10000; data cached in $SCAN_BENCH_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."

n_images="${1:-10000}"
work="${SCAN_BENCH_DIR:-/tmp/childsafe-scan-bench}"
data="$work/data-$n_images"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
cores="$(nproc)"

echo "==> building (release)"
cargo build --release -q -p childsafe -p childsafe-scan --example decode_shards
bin="$CARGO_TARGET_DIR/release/childsafe"
decode="$CARGO_TARGET_DIR/release/examples/decode_shards"

if [ ! -f "$data/.done" ]; then
  echo "==> generating $n_images images in $data"
  rm -rf "$data"
  python3 bench/scan_gen.py "$data" "$n_images" 1000
  touch "$data/.done"
fi
shards=("$data"/*.tar)
bytes="$(cat "${shards[@]}" | wc -c)"

# Plant: the SHA-256 of 5 images and the PDQ of 5 others (as a list would).
banks="$work/banks"
list="$work/list.txt"
rm -rf "$banks"
"$bin" --banks "$banks" bank create standin >/dev/null
python3 - "$data/00000.tar" "$list" <<'PY'
import hashlib, io, sys, tarfile
import numpy as np, pdqhash
from PIL import Image
shard, out = sys.argv[1], sys.argv[2]
lines = []
with tarfile.open(shard) as t:
    jpgs = [m for m in t.getmembers() if m.name.endswith(".jpg")]
    for i, m in enumerate(jpgs[:10]):
        data = t.extractfile(m).read()
        if i < 5:
            lines.append(("sha256", hashlib.sha256(data).hexdigest()))
        else:
            vec, _ = pdqhash.compute(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
            lines.append(("pdq", "%064x" % int("".join("1" if b else "0" for b in vec), 2)))
with open(out, "w") as f:
    for kind, h in lines:
        f.write(f"{kind},{h}\n")
PY
while IFS=, read -r kind hash; do
  "$bin" --banks "$banks" bank add standin "$hash" --signal "$kind" >/dev/null
done < "$list"

seconds() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["elapsed_seconds"])' "$1"; }

declare -A t_decode t_scan
for jobs in 1 "$cores"; do
  echo "==> decoding alone, $jobs thread(s)"
  t_decode[$jobs]="$("$decode" "$jobs" "${shards[@]}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')"
  echo "==> scan, $jobs thread(s)"
  rm -rf "$work/out" "$work/q"
  set +e
  "$bin" --banks "$banks" scan "${shards[@]}" --out "$work/out" --quarantine "$work/q" --jobs "$jobs" >/dev/null
  code=$?
  set -e
  [ "$code" -le 1 ] || { echo "scan failed ($code)"; exit 1; }
  t_scan[$jobs]="$(seconds "$work/q/timing.json")"
  removed="$(wc -l < "$work/q/manifest.jsonl")"
done

echo "==> Python baseline (Pillow + pdqhash + set lookup + tarfile), 1 process"
rm -rf "$work/py-out"
py_json="$(python3 bench/scan_baseline.py "$list" "$work/py-out" "${shards[@]}")"
t_python="$(echo "$py_json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')"
py_removed="$(echo "$py_json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["removed"])')"

python3 - "$n_images" "$bytes" "$cores" "${t_decode[1]}" "${t_scan[1]}" "${t_decode[$cores]}" "${t_scan[$cores]}" "$t_python" "$removed" "$py_removed" <<'PY'
import sys
n, size, cores = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
d1, s1, dn, sn, py = map(float, sys.argv[4:9])
removed, py_removed = sys.argv[9], sys.argv[10]
print()
print(f"dataset: {n} JPEGs, {size/1e6:.0f} MB, 10 shards; removed: scan {removed}, python {py_removed}")
print(f"{'run':<34}{'seconds':>9}{'samples/s':>11}")
for name, t in [("decode alone, 1 thread", d1), ("scan, 1 thread", s1), (f"decode alone, {cores} threads", dn),
                (f"scan, {cores} threads", sn), ("python baseline, 1 process", py)]:
    print(f"{name:<34}{t:>9.2f}{n/t:>11.1f}")
print()
print(f"scan samples/s per core: {n/s1:.1f}")
print(f"scan overhead over decoding alone: {100*(s1/d1-1):.1f}% (1 thread), {100*(sn/dn-1):.1f}% ({cores} threads)")
print(f"scan vs python baseline (1 core each): {py/s1:.1f}x faster")
PY
