//! Criterion benchmarks of the built-in text detectors (filled in below).
fn main() {}
