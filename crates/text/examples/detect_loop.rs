//! A fixed amount of detection work for instruction-count profiling
//! (`valgrind --tool=callgrind`), where criterion's timed loops would vary:
//! the chat corpus of `benches/detect.rs` run a fixed number of times, then
//! the 2 KB message. Run with
//! `cargo run --release -p childsafe-text --example detect_loop -- [ROUNDS]`.
#![allow(clippy::print_stdout, clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use childsafe_text::TextDetector;

#[path = "../benches/corpus/mod.rs"]
mod corpus;

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map_or(200, |arg| arg.parse().unwrap());
    let detector = TextDetector::built_in().unwrap();
    let two_kb = corpus::two_kb_message();
    let mut findings = 0;
    for _ in 0..rounds {
        for message in corpus::MESSAGES {
            findings += black_box(detector.detect(black_box(message))).len();
        }
        findings += black_box(detector.detect(black_box(&two_kb))).len();
    }
    println!("{rounds} rounds, {findings} findings");
}
