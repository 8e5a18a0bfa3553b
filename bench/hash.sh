#!/usr/bin/env bash
# Hashing benchmark: end-to-end images/s per core (read + decode + PDQ +
# MD5/SHA-1/SHA-256) on the PDQ fixture images, ours against the `pdqhash`
# Python package (the C++ PDQ core) on Pillow, with and without a 512 px
# thumbnail, in the same run on this machine. Prints each rate and the ratios.
#
#   bash bench/hash.sh            # 5 passes over the 49 fixture images
#   PASSES=20 bash bench/hash.sh  # steadier numbers
#
# Everything runs on one thread (RAYON_NUM_THREADS=1), so the figures are
# per core. Needs: cargo, python3, and bench/requirements.txt installed.
set -euo pipefail
cd "$(dirname "$0")/.."

PASSES="${PASSES:-5}"
FIXTURES="${FIXTURES:-../shared/fixtures/pdq}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"

python3 -c 'import pdqhash, PIL, numpy' 2>/dev/null || python3 -m pip install -q -r bench/requirements.txt
cargo build --release --quiet -p childsafe
BIN="$CARGO_TARGET_DIR/release/childsafe"

# The images the reference CSV lists, PASSES times over.
mapfile -t IMAGES < <(tail -n +2 "$FIXTURES/expected/cpp-reference-pdq.csv" | cut -d, -f3 | sed "s|^|$FIXTURES/|")
RUN=()
for _ in $(seq "$PASSES"); do RUN+=("${IMAGES[@]}"); done
COUNT=${#RUN[@]}

# Warm the page cache so every tool reads from memory.
cat "${IMAGES[@]}" > /dev/null

ours() {
  local start end
  start=$(date +%s.%N)
  RAYON_NUM_THREADS=1 "$BIN" hash --json "$@" "${RUN[@]}" > /dev/null 2> /dev/null
  end=$(date +%s.%N)
  python3 -c "print(f'{$COUNT / ($end - $start):.1f}')"
}

echo "hashing: $COUNT images (${#IMAGES[@]} fixtures x $PASSES), one core, $(nproc) cores present"
OURS=$(ours)
OURS_FULL=$(ours --full-decode)

read -r PY PY_THUMB < <(python3 - "${RUN[@]}" <<'PY'
import hashlib, sys, time
import numpy as np, pdqhash
from PIL import Image

paths = sys.argv[1:]

def run(thumbnail):
    start = time.perf_counter()
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        for algo in (hashlib.md5, hashlib.sha1, hashlib.sha256):
            algo(data).hexdigest()
        with Image.open(path) as img:
            if thumbnail:
                img.thumbnail((512, 512))
            rgb = np.asarray(img.convert("RGB"))
        pdqhash.compute(rgb)
    return len(paths) / (time.perf_counter() - start)

print(f"{run(False):.1f} {run(True):.1f}")
PY
)

ratio() { python3 -c "print(f'{$1 / $2:.1f}x')"; }
printf '%-44s %8s img/s\n' "childsafe hash (DCT-domain JPEG fast path)" "$OURS"
printf '%-44s %8s img/s\n' "childsafe hash --full-decode" "$OURS_FULL"
printf '%-44s %8s img/s\n' "pdqhash 0.2.8 + Pillow" "$PY"
printf '%-44s %8s img/s\n' "pdqhash 0.2.8 + Pillow, 512 px thumbnail" "$PY_THUMB"
echo "ratios: ours/pdqhash $(ratio "$OURS" "$PY"), ours/pdqhash+thumbnail $(ratio "$OURS" "$PY_THUMB"), fast/full $(ratio "$OURS" "$OURS_FULL"), full/pdqhash $(ratio "$OURS_FULL" "$PY")"
