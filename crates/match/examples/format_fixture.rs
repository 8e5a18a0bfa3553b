//! Writes the format-1 bank fixture `tests/data/format-v1/` (checked by
//! `tests/format_v1.rs`). Run it only when introducing a new format version,
//! into a new directory; a format's fixture never changes once committed.
//!
//! ```text
//! cargo run -p childsafe-match --example format_fixture -- crates/match/tests/data/format-v1
//! ```

// A one-off tool: it gives up on errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::path::PathBuf;

use childsafe_core::{Category, Sha256};
use childsafe_match::{
    BankSettings, Banks, ImageSignals, ImportOptions, IndexLayout, ListFormat, Signal, parse_list,
};

fn main() {
    let out = PathBuf::from(std::env::args().nth(1).expect("output directory"));
    assert!(
        !out.exists(),
        "{} exists: fixtures never change",
        out.display()
    );
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/pdq");
    let mut banks = Banks::open(&out).unwrap();
    banks
        .create(
            "standin-v1",
            BankSettings {
                // Small enough that a multi-index beats a scan on 300 codes,
                // so the fixture holds directories and tables.
                threshold: 12,
                quality_floor: 60,
                index: IndexLayout::Fast,
                flood_threshold: 7,
                ..BankSettings::default()
            },
        )
        .unwrap();
    // 300 benign fixture hashes (enough for a planned multi-index) plus one
    // of each cryptographic kind, all with fixed times so the fixture is stable.
    let haystack = std::fs::read_to_string(fixtures.join("hash-lists/haystack.txt")).unwrap();
    let mut csv = String::from("hash,signal,id,category,source,added,enabled\n");
    for (idx, line) in haystack.lines().take(300).enumerate() {
        let enabled = idx % 50 != 7;
        csv.push_str(&format!(
            "{line},pdq,h-{idx},csam_known,haystack,1700000000,{enabled}\n"
        ));
    }
    csv.push_str("d41d8cd98f00b204e9800998ecf8427e,md5,empty-md5,csam_known,\"crypto, list\",1700000001,true\n");
    csv.push_str("da39a3ee5e6b4b0d3255bfef95601890afd80709,sha1,empty-sha1,csam_known,\"crypto, list\",1700000002,true\n");
    csv.push_str("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855,sha256,empty-sha256,csam_known,\"crypto, list\",1700000003,true\n");
    let list = parse_list(
        "fixture.csv",
        csv.as_bytes(),
        &ImportOptions {
            format: ListFormat::Csv,
            ..ImportOptions::new("unused")
        },
    )
    .unwrap();
    banks.import("standin-v1", list).unwrap();
    banks.compact("standin-v1").unwrap();
    // Then a delta on top: an addition, a removal and a disabled entry.
    let mut late = childsafe_match::entry_from_hash(
        Signal::Pdq(
            "d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22"
                .parse()
                .unwrap(),
        ),
        Some("bridge"),
        "reference",
        Category::CsamKnown,
    );
    late.added = 1700000004;
    banks.add("standin-v1", vec![late]).unwrap();
    banks.remove_id("standin-v1", "h-3").unwrap();
    banks.set_entry_enabled("standin-v1", "h-4", false).unwrap();
    // And flood counts from 8 distinct inputs hitting one entry.
    for input in 0..8u8 {
        banks.lookup(&ImageSignals {
            sha256: Some(Sha256([input; 32])),
            md5: Some("d41d8cd98f00b204e9800998ecf8427e".parse().unwrap()),
            ..ImageSignals::default()
        });
    }
    banks.save_flood().unwrap();
    let _ = std::fs::remove_file(out.join("standin-v1/.lock"));
    eprintln!("wrote {}", out.display());
}
