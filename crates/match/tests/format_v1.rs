//! Format 1 stays readable: the bank fixture in `tests/data/format-v1/` (a
//! segment with a planned multi-index, a delta with an addition, a removal
//! and a disabled entry, and flood counts; written by
//! `examples/format_fixture.rs` and never changed since) must open, match
//! and export exactly as when it was written.

// Fixture helpers panic on broken fixtures.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use childsafe_core::{Md5, PdqHash, SignalKind};
use childsafe_match::{Banks, ImageSignals, IndexLayout, ListFormat};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for item in std::fs::read_dir(from).unwrap() {
        let item = item.unwrap();
        let target = to.join(item.file_name());
        if item.file_type().unwrap().is_dir() {
            copy_dir(&item.path(), &target);
        } else {
            std::fs::copy(item.path(), target).unwrap();
        }
    }
}

/// The fixture, copied so that nothing a test does can change it.
fn fixture() -> (tempfile::TempDir, Banks) {
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/format-v1");
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&source, dir.path());
    let banks = Banks::open(dir.path()).unwrap();
    (dir, banks)
}

fn haystack(line: usize) -> PdqHash {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/pdq/hash-lists/haystack.txt");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .nth(line)
        .unwrap()
        .parse()
        .unwrap()
}

fn pdq(hash: PdqHash) -> ImageSignals {
    ImageSignals {
        pdq: Some((hash, 100)),
        ..ImageSignals::default()
    }
}

#[test]
fn settings_and_counts_read_back() {
    let (_dir, banks) = fixture();
    let stats = banks.stats("standin-v1").unwrap();
    assert_eq!(stats.settings.threshold, 12);
    assert_eq!(stats.settings.quality_floor, 60);
    assert_eq!(stats.settings.index, IndexLayout::Fast);
    assert_eq!(stats.settings.flood_threshold, 7);
    assert_eq!(stats.generation, 1);
    assert_eq!(stats.entries, 303);
    assert_eq!(stats.disabled, 7);
    assert_eq!(stats.delta_ops, 3);
    assert_eq!(stats.pdq_rows, 300);
    assert!(
        stats.pdq_indexed_threshold >= Some(12),
        "the fixture has multi-index tables"
    );
    assert_eq!(stats.flood[0].entry_id, "empty-md5");
    assert_eq!(stats.flood[0].distinct_inputs, 8);
    assert!(stats.flood[0].flagged);
    banks.verify("standin-v1").unwrap();
}

#[test]
fn lookups_see_segment_and_delta() {
    let (_dir, banks) = fixture();
    let hit = banks.lookup(&pdq(haystack(10)));
    assert!(
        hit.matches
            .iter()
            .any(|it| it.entry_id == "h-10" && it.distance == Some(0))
    );
    // Removed in the delta, disabled in the delta, disabled in the segment.
    for (line, id) in [(3, "h-3"), (4, "h-4"), (7, "h-7")] {
        let outcome = banks.lookup(&pdq(haystack(line)));
        assert!(outcome.matches.iter().all(|it| it.entry_id != id), "{id}");
    }
    let bridge: PdqHash = "d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22"
        .parse()
        .unwrap();
    let outcome = banks.lookup(&pdq(bridge));
    assert!(
        outcome
            .matches
            .iter()
            .any(|it| it.entry_id == "bridge" && it.distance == Some(0))
    );
    // The same input as the fixture's first flood input: still 8 distinct.
    let md5: Md5 = "d41d8cd98f00b204e9800998ecf8427e".parse().unwrap();
    let outcome = banks.lookup(&ImageSignals {
        md5: Some(md5),
        sha256: Some(childsafe_core::Sha256([0; 32])),
        ..ImageSignals::default()
    });
    assert_eq!(outcome.matches.len(), 1);
    assert_eq!(outcome.matches[0].signal, SignalKind::Md5);
    assert_eq!(outcome.matches[0].flood, Some(8), "flood counts persisted");
    // Quality below the floor of 60 does not match.
    let low = banks.lookup(&ImageSignals {
        pdq: Some((haystack(10), 59)),
        ..ImageSignals::default()
    });
    assert!(!low.is_match());
}

#[test]
fn export_is_unchanged() {
    let (_dir, banks) = fixture();
    let mut csv = Vec::new();
    banks
        .export("standin-v1", ListFormat::Csv, &mut csv)
        .unwrap();
    expect_test::expect_file!["data/format-v1-export.csv"]
        .assert_eq(&String::from_utf8(csv).unwrap());
}
