//! Fuzz target: the WebDataset shard reader on arbitrary bytes. Passes if
//! nothing panics and memory stays bounded (members over the limit are
//! skipped, never held).
#![no_main]

use childsafe_scan::{
    ReadConfig,
    source::{Source, webdataset::WebDatasetSource},
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let config = ReadConfig {
        max_member_bytes: 1 << 16,
        ..ReadConfig::default()
    };
    let mut source = WebDatasetSource::new(data, "fuzz.tar".into(), config);
    for _ in 0..10_000 {
        match source.next_sample() {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
});
