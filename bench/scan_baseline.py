#!/usr/bin/env python3
"""The Python baseline for the scan benchmark: what a data team would write
by hand. For every sample of every shard: decode with Pillow, PDQ with the
`pdqhash` package, SHA-256 with hashlib, look both up in sets (exact SHA-256,
PDQ by Hamming distance <= 31 against the list), and rewrite the shard with
tarfile without the matching samples.

Usage: scan_baseline.py LIST_FILE OUT_DIR SHARD...
LIST_FILE holds one hash per line: 64 hex digits (PDQ or SHA-256; both are
tried), optionally after a `kind,` prefix as bench/scan.sh writes it. The
pdqhash package's bit vector, read first to last, is the PDQ hex digits'
bits from the most significant: no reversal. Prints one JSON line: samples, removed, seconds.
"""

import hashlib
import io
import json
import os
import sys
import tarfile
import time

import numpy as np
import pdqhash
from PIL import Image


def main(list_file, out_dir, shards):
    wanted = set()
    pdq_list = []
    with open(list_file) as f:
        for line in f:
            line = line.strip().split(",")[-1]
            if len(line) == 64:
                wanted.add(line)
                pdq_list.append(int(line, 16))
    os.makedirs(out_dir, exist_ok=True)
    started = time.monotonic()
    samples = removed = 0
    for shard in shards:
        with tarfile.open(shard) as src:
            members = [(m, src.extractfile(m).read()) for m in src.getmembers() if m.isfile()]
        groups = {}
        order = []
        for member, data in members:
            key = member.name.split(".", 1)[0]
            if key not in groups:
                groups[key] = []
                order.append(key)
            groups[key].append((member, data))
        out_path = os.path.join(out_dir, os.path.basename(shard))
        with tarfile.open(out_path, "w") as dst:
            for key in order:
                samples += 1
                hit = False
                for member, data in groups[key]:
                    if member.name.endswith(".jpg"):
                        if hashlib.sha256(data).hexdigest() in wanted:
                            hit = True
                        img = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
                        vector, _quality = pdqhash.compute(img)
                        value = int("".join("1" if b else "0" for b in vector), 2)
                        if any(bin(value ^ other).count("1") <= 31 for other in pdq_list):
                            hit = True
                if hit:
                    removed += 1
                    continue
                for member, data in groups[key]:
                    dst.addfile(member, io.BytesIO(data))
    print(json.dumps({"samples": samples, "removed": removed, "seconds": time.monotonic() - started}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
