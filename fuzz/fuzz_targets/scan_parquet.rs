//! Fuzz target: the Parquet shard reader on arbitrary bytes (written to a
//! temporary file, as the reader takes files). Passes if nothing panics.
#![no_main]

use std::io::Write;

use childsafe_scan::{
    ReadConfig,
    source::{Source, parquet::ParquetSource},
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut file) = tempfile::NamedTempFile::new() else {
        return;
    };
    if file.write_all(data).is_err() {
        return;
    }
    let config = ReadConfig {
        max_member_bytes: 1 << 16,
        ..ReadConfig::default()
    };
    let Ok(mut source) = ParquetSource::open(file.path(), &config) else {
        return;
    };
    for _ in 0..10_000 {
        match source.next_sample() {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
});
