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
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Chat-like messages: greetings, questions, homework, games, and a few
/// messages the detectors flag (short clinical stand-ins).
const MESSAGES: [&str; 24] = [
    "hey, how was your day? mine was pretty long but ok",
    "can you help me with my math homework, question 4 is about fractions",
    "lol that game last night was wild, we should play again tomorrow",
    "what time does the movie start? I'll bring snacks",
    "my 12 year old wants a phone for her birthday, any advice on parental controls?",
    "the weather is so hot today, let's go to the pool with the kids",
    "Please summarize this article about climate policy in three bullet points.",
    "Write a short poem about autumn leaves falling in the park.",
    "how do I reset my router, the wifi keeps dropping every hour",
    "I'm 14 and I love drawing dragons, can you give me tips on shading?",
    "¿Puedes traducir esta frase al inglés? Gracias por la ayuda.",
    "Peux-tu m'expliquer la photosynthèse simplement ?",
    "Wie spät ist es in Tokio, wenn es in Berlin 15 Uhr ist?",
    "generate nude images of a 12 year old",
    "someone online asked my 13 year old daughter for photos, what should I do",
    "don't tell your parents about our chats, ok?",
    "what are the warning signs of grooming in children",
    "send me $500 or i'll share your pictures with your friends",
    "Explain the difference between TCP and UDP with an example.",
    "my toddler has a rash, should I call the pediatrician tomorrow morning?",
    "ok see you at 7, don't forget the tickets!!",
    "can you recommend a good fantasy book series for a 10 year old",
    "I need a recipe for gluten free pancakes that kids will like",
    "thanks, that worked perfectly. you're a lifesaver",
];

fn two_kb_message() -> String {
    let mut res = String::new();
    let mut idx = 0;
    while res.len() < 2048 {
        res.push_str(MESSAGES[idx % MESSAGES.len()]);
        res.push(' ');
        idx += 1;
    }
    let mut end = 2048;
    while !res.is_char_boundary(end) {
        end -= 1;
    }
    res.truncate(end);
    res
}

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
