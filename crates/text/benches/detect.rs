//! Criterion benchmarks of the built-in text detectors.
//!
//! - `throughput/chat`: bytes per second of `TextDetector::detect` over a
//!   corpus of chat-like messages (mostly benign, a few flagged), one message
//!   at a time, as the gateway calls it.
//! - `latency/2kb`: one 2 KB message; besides criterion's estimate of the
//!   mean, the per-call latencies are recorded and their p50/p99/max printed
//!   (criterion reports means, the goal is a p99).
//!
//! Run with `cargo bench -p childsafe-text --bench detect`.
#![allow(clippy::print_stderr, clippy::unwrap_used, missing_docs)]

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use childsafe_text::TextDetector;
use corpus::{MESSAGES, two_kb_message};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

mod corpus;

fn throughput(c: &mut Criterion) {
    let detector = TextDetector::built_in().unwrap();
    let bytes: usize = MESSAGES.iter().map(|m| m.len()).sum();
    let mut group = c.benchmark_group("throughput");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("chat", |b| {
        b.iter(|| {
            for message in MESSAGES {
                black_box(detector.detect(black_box(message)));
            }
        })
    });
    group.finish();
}

fn latency(c: &mut Criterion) {
    let detector = TextDetector::built_in().unwrap();
    let message = two_kb_message();
    let mut samples: Vec<Duration> = Vec::with_capacity(1 << 16);
    let mut group = c.benchmark_group("latency");
    group.throughput(Throughput::Bytes(message.len() as u64));
    group.bench_function("2kb", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                black_box(detector.detect(black_box(&message)));
                let took = start.elapsed();
                total += took;
                if samples.len() < samples.capacity() {
                    samples.push(took);
                }
            }
            total
        })
    });
    group.finish();
    samples.sort();
    if !samples.is_empty() {
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
        eprintln!(
            "latency/2kb per call over {} calls: p50 {:?}, p99 {:?}, max {:?}",
            samples.len(),
            at(0.50),
            at(0.99),
            samples[samples.len() - 1]
        );
    }
}

criterion_group!(benches, throughput, latency);
criterion_main!(benches);
