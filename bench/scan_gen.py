#!/usr/bin/env python3
"""Generates the scan benchmark's dataset: an img2dataset-shaped WebDataset
of benign generated JPEGs (gradients, rectangles and noise) of typical web
sizes, 256 to 1024 px on the long side, quality 85 to 95.

Usage: scan_gen.py OUT_DIR N_IMAGES [PER_SHARD]
Deterministic: the same arguments give the same bytes.
"""

import io
import json
import os
import sys

import numpy as np
import webdataset as wds
from PIL import Image


def picture(rng, width, height):
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.integers(0, 256, size=3).astype(np.float32)
    img = np.empty((height, width, 3), np.float32)
    img[..., 0] = base[0] * (1 - x / width) + 200 * (x / width) * (y / height)
    img[..., 1] = base[1] * (y / height) + 40
    img[..., 2] = base[2] * (1 - (x * y) / (width * height))
    for _ in range(8):
        x0, y0 = rng.integers(0, width), rng.integers(0, height)
        w, h = rng.integers(8, max(9, width // 3)), rng.integers(8, max(9, height // 3))
        img[y0:y0 + h, x0:x0 + w] = rng.integers(0, 256, size=3)
    img += rng.normal(0, 12, size=img.shape).astype(np.float32)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def main(out, n_images, per_shard):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(20231220)
    for shard in range((n_images + per_shard - 1) // per_shard):
        with wds.TarWriter(os.path.join(out, f"{shard:05d}.tar")) as sink:
            for i in range(min(per_shard, n_images - shard * per_shard)):
                key = f"{shard:05d}{i:04d}"
                long_side = int(rng.integers(256, 1025))
                short_side = int(long_side * rng.uniform(0.6, 1.0))
                size = (long_side, short_side) if rng.random() < 0.6 else (short_side, long_side)
                buf = io.BytesIO()
                picture(rng, *size).save(buf, format="JPEG", quality=int(rng.integers(85, 96)))
                meta = {"url": f"https://images.example.com/{key}.jpg", "caption": f"a generated pattern {key}",
                        "key": key, "status": "success", "error_message": None,
                        "width": size[0], "height": size[1]}
                sink.write({"__key__": key, "jpg": buf.getvalue(), "txt": meta["caption"],
                            "json": json.dumps(meta, indent=4)})


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 1000)
