//! The "decoding alone" baseline of bench/scan.sh: reads WebDataset shards
//! with the scanner's own source, in the scanner's batches, and decodes every
//! image exactly as the scan does (`Hasher::decode`, the same limits and
//! JPEG fast paths), on the same number of threads, with no hashing, no
//! lookups and no output. The scan's overhead is its time over this one's.
//!
//! Usage: decode_shards JOBS SHARD...

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::{fs::File, io::BufReader, path::PathBuf, time::Instant};

use childsafe_hash::{HashConfig, Hasher};
use childsafe_scan::{
    ReadConfig,
    source::{Source, webdataset::WebDatasetSource},
};
use rayon::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let jobs: usize = args
        .next()
        .ok_or("usage: decode_shards JOBS SHARD...")?
        .parse()?;
    let shards: Vec<PathBuf> = args.map(PathBuf::from).collect();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs).build()?;
    let started = Instant::now();
    let decoded = std::sync::atomic::AtomicU64::new(0);
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(shards.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(path) = shards.get(i) else { break };
                    let Ok(file) = File::open(path) else { continue };
                    let mut source = WebDatasetSource::new(
                        BufReader::with_capacity(1 << 20, file),
                        path.clone(),
                        ReadConfig::default(),
                    );
                    loop {
                        let mut batch = Vec::new();
                        while batch.len() < 256 {
                            match source.next_sample() {
                                Ok(Some(sample)) => batch.push(sample),
                                _ => break,
                            }
                        }
                        if batch.is_empty() {
                            break;
                        }
                        let n: u64 = pool.install(|| {
                            batch
                                .par_iter()
                                .map_init(
                                    || Hasher::new(HashConfig::default()),
                                    |hasher, sample| {
                                        sample
                                            .images
                                            .iter()
                                            .filter(|image| hasher.decode(image).is_ok())
                                            .count() as u64
                                    },
                                )
                                .sum()
                        });
                        decoded.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let seconds = started.elapsed().as_secs_f64();
    let n = decoded.into_inner();
    println!(
        "{{\"decoded\": {n}, \"seconds\": {seconds:.3}, \"per_second\": {:.1}}}",
        n as f64 / seconds
    );
    Ok(())
}
