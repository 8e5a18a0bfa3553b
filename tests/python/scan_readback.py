#!/usr/bin/env python3
"""Reads a scan's clean copy the way a data team would, and prints what it saw.

WebDataset shards are read with the `webdataset` package, Parquet files with
`pyarrow`. The output is one JSON object on stdout:
{"<relative path>": {"kind": "webdataset", "keys": [...], "members": [...]}
                  | {"kind": "parquet", "rows": N, "columns": [...], "keys": [...],
                     "metadata_keys": [...]}}
The Rust end-to-end tests compare it with what the scan should have kept.
Prints no captions and no image bytes, only keys, member suffixes and counts.
"""

import json
import os
import sys

import pyarrow.parquet as pq
import webdataset as wds


def read_tar(path):
    keys, members = [], []
    dataset = wds.WebDataset(path, shardshuffle=False, empty_check=False)
    for sample in dataset:
        keys.append(sample["__key__"])
        members.append(sorted(k for k in sample if not k.startswith("__")))
        if "json" in sample:
            json.loads(sample["json"])  # must still parse
    return {"kind": "webdataset", "keys": keys, "members": members}


def read_parquet(path):
    table = pq.read_table(path)
    keys = table.column("key").to_pylist() if "key" in table.column_names else []
    metadata = table.schema.metadata or {}
    return {
        "kind": "parquet",
        "rows": table.num_rows,
        "columns": table.column_names,
        "keys": keys,
        "metadata_keys": sorted(k.decode() for k in metadata),
        "row_groups": pq.ParquetFile(path).num_row_groups,
    }


def main(root):
    res = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            if name.endswith(".tar"):
                res[rel] = read_tar(path)
            elif name.endswith(".parquet"):
                res[rel] = read_parquet(path)
    json.dump(res, sys.stdout, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1])
