"""PDQ index benchmark: ours (compact and fast layouts, single queries and
one batch) against faiss IndexBinaryMultiHash(nhash=16, b=16, nflip=1) (the
index HMA uses) and IndexBinaryFlat, in the same run on this machine.

Called by bench/index.sh; see there for the knobs. Datasets:
  random-1m, random-10m: uniform random 256-bit codes;
  clustered-1m: near-duplicates (0 to 24 bits flipped) around the PDQ hashes
    of the benign fixture images and the fixture hash lists, plus 20% random.
Queries: 10,000 per dataset, half near-duplicates of a dataset code (10 to 31
bits flipped), half random. Ground truth: faiss IndexBinaryFlat range search
(exact, all cores). Recall is computed per engine on the queries it ran.

Every engine runs in its own process under /usr/bin/time for its peak RSS;
query rates are per core (one thread; CPU time for ours, wall time of a
single-threaded faiss for faiss).
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

THRESHOLD = 31


def fixture_centers(fixtures: Path) -> np.ndarray:
    """Every PDQ hash in the fixtures: reference CSVs and the hash lists."""
    hashes = set()
    for path in sorted((fixtures / "expected").glob("*.csv")):
        with open(path, newline="") as f:
            for row in csv.reader(f):
                for field in row:
                    field = field.strip().lower()
                    if len(field) == 64 and all(c in "0123456789abcdef" for c in field):
                        hashes.add(field)
    for name in ("haystack.txt", "needles.txt", "long256.dat", "short256.dat", "order256.dat"):
        path = fixtures / "hash-lists" / name
        if path.exists():
            for line in path.read_text().split():
                if len(line) == 64:
                    hashes.add(line.lower())
    return np.array([np.frombuffer(bytes.fromhex(h), dtype=np.uint8) for h in sorted(hashes)])


def flip_bits(rng, codes: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Flips exactly counts[i] distinct bits of codes[i]."""
    out = codes.copy()
    for i, count in enumerate(counts):
        bits = rng.choice(256, size=int(count), replace=False)
        for bit in bits:
            out[i, bit // 8] ^= np.uint8(1 << (7 - bit % 8))
    return out


def make_dataset(name: str, work: Path, fixtures: Path, n_queries: int):
    codes_path = work / f"{name}.codes"
    queries_path = work / f"{name}.queries"
    if codes_path.exists() and queries_path.exists():
        return codes_path, queries_path
    rng = np.random.default_rng(20261129)
    if name.startswith("random"):
        n = 10_000_000 if name.endswith("10m") else 1_000_000
        codes = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    else:
        n = 1_000_000
        centers = fixture_centers(fixtures)
        n_near = n * 4 // 5
        picks = centers[rng.integers(0, len(centers), size=n_near)]
        near = flip_bits(rng, picks, rng.integers(0, 25, size=n_near))
        codes = np.concatenate([near, rng.integers(0, 256, size=(n - n_near, 32), dtype=np.uint8)])
        codes = codes[rng.permutation(n)]
    half = n_queries // 2
    base = codes[rng.integers(0, len(codes), size=half)]
    near = flip_bits(rng, base, rng.integers(10, 32, size=half))
    rand = rng.integers(0, 256, size=(n_queries - half, 32), dtype=np.uint8)
    queries = np.concatenate([near, rand])
    codes.tofile(codes_path)
    queries.tofile(queries_path)
    return codes_path, queries_path


def load(path: Path) -> np.ndarray:
    return np.fromfile(path, dtype=np.uint8).reshape(-1, 32)


def ground_truth(name: str, work: Path, codes_path: Path, queries_path: Path):
    truth_path = work / f"{name}.truth.npz"
    if not truth_path.exists():
        import faiss

        faiss.omp_set_num_threads(os.cpu_count() or 1)
        index = faiss.IndexBinaryFlat(256)
        index.add(load(codes_path))
        lims, _, ids = index.range_search(load(queries_path), THRESHOLD + 1)
        np.savez(truth_path, lims=lims, ids=ids)
    data = np.load(truth_path)
    lims, ids = data["lims"], data["ids"]
    return [set(ids[lims[q] : lims[q + 1]].tolist()) for q in range(len(lims) - 1)]


def timed(cmd):
    """Runs cmd under /usr/bin/time; returns (stdout, peak RSS in MiB)."""
    proc = subprocess.run(
        ["/usr/bin/time", "-f", "%M"] + [str(c) for c in cmd],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{proc.stderr}")
    rss_kib = int(proc.stderr.strip().splitlines()[-1])
    return proc.stdout, rss_kib / 1024


def recall(truth, found_pairs, n_queries):
    found = [set() for _ in range(n_queries)]
    for q, e in found_pairs:
        found[q].add(e)
    expected = sum(len(truth[q]) for q in range(n_queries))
    hit = sum(len(truth[q] & found[q]) for q in range(n_queries))
    extra = sum(len(found[q] - truth[q]) for q in range(n_queries))
    return (hit / expected if expected else 1.0), extra, expected


def run_ours(binary, work, name, codes_path, queries_path, truth, layout, limits):
    seg = work / f"{name}.{layout}.csb"
    out, build_rss = timed([binary, "build", codes_path, seg, layout, THRESHOLD])
    built = json.loads(out)
    res = {
        "engine": f"ours-{layout}",
        "build_secs": built["build_secs"],
        "build_peak_rss_mib": build_rss,
        "bytes_per_code": built["bytes_per_code"],
        "plan": built["plan"],
    }
    for mode in ("single", "batch"):
        results = work / f"{name}.{layout}.{mode}.pairs"
        limit = limits[mode]
        out, rss = timed([binary, "query", seg, queries_path, mode, results, THRESHOLD, limit])
        ran = json.loads(out)
        pairs = np.fromfile(results, dtype="<u4").reshape(-1, 2)
        r, extra, expected = recall(truth, pairs.tolist(), ran["queries"])
        res[mode] = {
            "queries": ran["queries"],
            "qps_per_core": ran["qps_per_core"],
            "peak_rss_mib": rss,
            "open_secs": ran["open_secs"],
            "recall": r,
            "false_positives": extra,
            "expected_pairs": expected,
        }
    seg.unlink()
    return res


FAISS_SCRIPT = r"""
import json, sys, time
import faiss, numpy as np
kind, codes, queries, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
faiss.omp_set_num_threads(1)
x = np.fromfile(codes, dtype=np.uint8).reshape(-1, 32)
q = np.fromfile(queries, dtype=np.uint8).reshape(-1, 32)[:limit]
start = time.perf_counter()
if kind == "multihash":
    index = faiss.IndexBinaryMultiHash(256, 16, 16)
    index.nflip = 1
else:
    index = faiss.IndexBinaryFlat(256)
index.add(x)
build = time.perf_counter() - start
start = time.perf_counter()
lims, _, ids = index.range_search(q, 32)
secs = time.perf_counter() - start
pairs = [(i, int(ids[j])) for i in range(len(q)) for j in range(lims[i], lims[i + 1])]
print(json.dumps({"build_secs": build, "qps_per_core": len(q) / secs, "queries": len(q), "pairs": pairs}))
"""


def run_faiss(kind, codes_path, queries_path, truth, limit):
    out, rss = timed([sys.executable, "-c", FAISS_SCRIPT, kind, codes_path, queries_path, limit])
    ran = json.loads(out)
    r, extra, expected = recall(truth, ran["pairs"], ran["queries"])
    return {
        "engine": f"faiss-{kind}",
        "build_secs": ran["build_secs"],
        "peak_rss_mib": rss,
        "queries": ran["queries"],
        "qps_per_core": ran["qps_per_core"],
        "recall": r,
        "false_positives": extra,
        "expected_pairs": expected,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--fixtures", required=True)
    ap.add_argument("--datasets", default="random-1m,random-10m,clustered-1m")
    ap.add_argument("--queries", type=int, default=10_000)
    ap.add_argument("--out", default="bench/results/index.json")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    report = {"machine": os.uname().machine, "cores": os.cpu_count(), "threshold": THRESHOLD, "datasets": {}}
    for name in args.datasets.split(","):
        big = name.endswith("10m")
        print(f"== {name}: generating data and ground truth", file=sys.stderr)
        codes_path, queries_path = make_dataset(name, work, Path(args.fixtures), args.queries)
        truth = ground_truth(name, work, codes_path, queries_path)
        n_codes = os.path.getsize(codes_path) // 32
        rows = []
        # Slow engines answer a subset of the queries (the same first N).
        limits = {
            "compact": {"single": 300 if big else 3000, "batch": args.queries},
            "fast": {"single": args.queries, "batch": args.queries},
        }
        for layout in ("compact", "fast"):
            print(f"== {name}: ours, {layout}", file=sys.stderr)
            rows.append(run_ours(args.bin, work, name, codes_path, queries_path, truth, layout, limits[layout]))
        print(f"== {name}: faiss multihash", file=sys.stderr)
        rows.append(run_faiss("multihash", codes_path, queries_path, truth, 300 if big else 2000))
        print(f"== {name}: faiss flat", file=sys.stderr)
        rows.append(run_faiss("flat", codes_path, queries_path, truth, 100 if big else 500))
        report["datasets"][name] = {"codes": n_codes, "queries": args.queries, "results": rows}
        print_table(name, n_codes, rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(f"raw results: {args.out}")


def print_table(name, n_codes, rows):
    mh = next(r for r in rows if r["engine"] == "faiss-multihash")
    print(f"\n{name}: {n_codes:,} codes, threshold {THRESHOLD}")
    header = ("engine", "build s", "build RSS MiB", "query RSS MiB", "B/code", "queries", "q/s/core", "recall", "vs faiss-MH")
    print("{:<22}{:>9}{:>15}{:>15}{:>8}{:>9}{:>10}{:>8}{:>13}".format(*header))
    for r in rows:
        if r["engine"].startswith("ours"):
            lines = [(r["engine"] + " " + mode, r[mode], r["build_peak_rss_mib"], r["bytes_per_code"]) for mode in ("single", "batch")]
        else:
            lines = [(r["engine"], r, r["peak_rss_mib"], None)]
        for label, m, build_rss, per_code in lines:
            rss = m.get("peak_rss_mib", r.get("peak_rss_mib"))
            per_code = f"{per_code:.1f}" if per_code is not None else "-"
            ratio = m["qps_per_core"] / mh["qps_per_core"]
            print(
                f"{label:<22}{r['build_secs']:>9.1f}{build_rss:>15.0f}{rss:>15.0f}{per_code:>8}"
                f"{m['queries']:>9}{m['qps_per_core']:>10.0f}{m['recall']:>8.3f}{ratio:>12.1f}x"
            )


if __name__ == "__main__":
    main()
