//! The Rust side of `bench/index.sh`: builds a bare PDQ index segment from a
//! file of raw 32-byte codes, and answers a file of query codes through the
//! memory-mapped segment, one query at a time or as one batch.
//!
//! ```text
//! index_bench build CODES SEGMENT compact|fast [THRESHOLD]
//! index_bench query SEGMENT QUERIES single|batch RESULTS [THRESHOLD] [LIMIT]
//! ```
//!
//! Prints one JSON object with the timings; `query` writes the `(query,
//! entry)` pairs it found to RESULTS as little-endian `u32` pairs, for the
//! Python side to compare with brute force. Query time is CPU time of the
//! querying thread, so "per core" holds on a shared machine.

// A benchmark tool: it prints, and gives up on bad arguments.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::{path::Path, time::Instant};

use childsafe_core::PdqHash;
use childsafe_match::{IndexLayout, bench_support::BareIndex};

fn read_codes(path: &Path) -> Vec<[u64; 4]> {
    let bytes = std::fs::read(path).expect("read codes");
    bytes
        .chunks_exact(32)
        .map(|chunk| PdqHash(chunk.try_into().expect("32 bytes")).lanes())
        .collect()
}

/// CPU seconds of this thread (Linux).
fn cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |ns| ns / 1e9)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |idx: usize| args.get(idx).map(String::as_str).unwrap_or_default();
    match arg(0) {
        "build" => {
            let codes = read_codes(Path::new(arg(1)));
            let layout = match arg(3) {
                "fast" => IndexLayout::Fast,
                _ => IndexLayout::Compact,
            };
            let threshold: u32 = arg(4).parse().unwrap_or(31);
            let started = Instant::now();
            BareIndex::build_to_file(
                &codes,
                threshold,
                layout.max_bytes_per_hash(),
                Path::new(arg(2)),
            )
            .expect("build");
            let build_secs = started.elapsed().as_secs_f64();
            let index = BareIndex::open(Path::new(arg(2))).expect("open");
            println!(
                "{}",
                serde_json::json!({
                    "rows": codes.len(),
                    "build_secs": build_secs,
                    "bytes_per_code": index.bytes_per_code(),
                    "plan": index.describe(),
                })
            );
        }
        "query" => {
            let started = Instant::now();
            let index = BareIndex::open(Path::new(arg(1))).expect("open");
            let open_secs = started.elapsed().as_secs_f64();
            let mut queries = read_codes(Path::new(arg(2)));
            let threshold: u32 = arg(5).parse().unwrap_or(31);
            if let Ok(limit) = arg(6).parse::<usize>() {
                queries.truncate(limit);
            }
            let mut pairs: Vec<(u32, u32)> = Vec::new();
            let (cpu, wall) = (cpu_secs(), Instant::now());
            if arg(3) == "batch" {
                index.search_batch(&queries, threshold, &mut pairs);
            } else {
                let mut found = Vec::new();
                for (query_idx, query) in queries.iter().enumerate() {
                    found.clear();
                    index.search(query, threshold, &mut found);
                    pairs.extend(found.iter().map(|entry| (query_idx as u32, *entry)));
                }
            }
            let cpu = cpu_secs() - cpu;
            let wall = wall.elapsed().as_secs_f64();
            let mut out = Vec::with_capacity(pairs.len() * 8);
            for (query, entry) in &pairs {
                out.extend_from_slice(&query.to_le_bytes());
                out.extend_from_slice(&entry.to_le_bytes());
            }
            std::fs::write(arg(4), out).expect("write results");
            println!(
                "{}",
                serde_json::json!({
                    "queries": queries.len(),
                    "open_secs": open_secs,
                    "cpu_secs": cpu,
                    "wall_secs": wall,
                    "qps_per_core": queries.len() as f64 / cpu.max(1e-9),
                    "pairs": pairs.len(),
                })
            );
        }
        _ => {
            eprintln!("usage: index_bench build CODES SEGMENT compact|fast [THRESHOLD]");
            eprintln!(
                "       index_bench query SEGMENT QUERIES single|batch RESULTS [THRESHOLD] [LIMIT]"
            );
            std::process::exit(2);
        }
    }
}
