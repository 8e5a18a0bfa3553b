#!/usr/bin/env python3
"""Writes an img2dataset-shaped WebDataset with Python's own writers.

Used by the end-to-end tests to check the scanner against shards written by
the `webdataset` package (TarWriter, as img2dataset uses it) rather than by
our own test code. Images are benign generated gradients. Usage:
    scan_make_dataset.py OUT_DIR N_SHARDS SAMPLES_PER_SHARD
"""

import io
import json
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import webdataset as wds
from PIL import Image


def picture(seed, width, height):
    img = Image.new("RGB", (width, height))
    px = img.load()
    for y in range(height):
        for x in range(width):
            px[x, y] = ((x * 7 + seed * 13) % 256, (y * 5 + seed * 29) % 256, ((x + y) * 3 + seed) % 256)
    return img


def main(out, n_shards, per_shard):
    os.makedirs(out, exist_ok=True)
    for shard in range(n_shards):
        name = f"{shard:05d}"
        rows = []
        with wds.TarWriter(os.path.join(out, name + ".tar")) as sink:
            for i in range(per_shard):
                key = f"{shard:05d}{i:04d}"
                buf = io.BytesIO()
                picture(shard * 1000 + i, 64 + 8 * (i % 4), 48).save(buf, format="JPEG", quality=90)
                meta = {"url": f"https://images.example.org/{key}.jpg", "caption": f"pattern {i}", "key": key,
                        "status": "success", "error_message": None, "width": 64, "height": 48}
                sink.write({"__key__": key, "jpg": buf.getvalue(), "txt": meta["caption"],
                            "json": json.dumps(meta, indent=4)})
                rows.append(meta)
        pq.write_table(pa.Table.from_pylist(rows), os.path.join(out, name + ".parquet"))
        with open(os.path.join(out, name + "_stats.json"), "w") as f:
            json.dump({"count": per_shard, "successes": per_shard, "failed_to_download": 0}, f, indent=4)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
