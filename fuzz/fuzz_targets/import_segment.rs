//! Fuzz target: bytes as a bank segment file (what `Banks::open` maps from
//! disk). A damaged or hostile segment must give an error at open or fewer
//! results, never a panic or an out-of-bounds read; lookups then run against
//! whatever opened.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    childsafe_match::bench_support::open_and_query_segment(data);
});
