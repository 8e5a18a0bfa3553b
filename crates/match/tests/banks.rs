//! Banks end to end through the library: create, import, look up, change,
//! compact, reopen, export, suppression, quality floors and flood counts,
//! using hashes of the benign PDQ fixture images as a stand-in list.

// Fixture helpers panic on broken fixtures.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use childsafe_core::{Category, Md5, PdqHash, Sha256, SignalKind};
use childsafe_match::{
    BankKind, BankSettings, Banks, Error, ImageSignals, ImportOptions, IndexLayout, ListFormat,
    Signal, entry_from_hash, parse_list,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/pdq")
}

/// (hash, quality, path) rows of the C++ reference output for the fixtures.
fn reference_rows() -> Vec<(PdqHash, u8, String)> {
    let text = std::fs::read_to_string(fixtures().join("expected/cpp-reference-pdq.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|line| {
            let mut fields = line.split(',');
            let hash = fields.next().unwrap().parse().unwrap();
            let quality = fields.next().unwrap().parse().unwrap();
            (hash, quality, fields.next().unwrap().to_owned())
        })
        .collect()
}

fn flip(hash: &PdqHash, bits: usize) -> PdqHash {
    let mut res = *hash;
    for bit in 0..bits {
        res.0[bit * 32 / bits.max(1) % 32] ^= 1 << (bit % 8);
    }
    assert_eq!(res.distance(hash), bits as u32);
    res
}

fn pdq_input(hash: PdqHash) -> ImageSignals {
    ImageSignals {
        pdq: Some((hash, 100)),
        ..ImageSignals::default()
    }
}

fn import_text(
    banks: &mut Banks,
    bank: &str,
    text: &str,
) -> Result<childsafe_match::ImportReport, Error> {
    let list = parse_list(
        "list.csv",
        text.as_bytes(),
        &ImportOptions::new("fixture-list"),
    )?;
    banks.import(bank, list)
}

fn reference_csv() -> String {
    let mut text = String::from("hash,id,category\n");
    for (idx, (hash, _, _)) in reference_rows().iter().enumerate() {
        text.push_str(&format!("{hash},fixture-{idx},csam_known\n"));
    }
    text
}

#[test]
fn imported_fixture_hashes_match_near_duplicates_and_not_others() {
    let dir = tempfile::tempdir().unwrap();
    let mut banks = Banks::open(dir.path()).unwrap();
    banks.create("standin", BankSettings::default()).unwrap();
    let report = import_text(&mut banks, "standin", &reference_csv()).unwrap();
    assert_eq!(report.added, reference_rows().len());

    let bridge: PdqHash = "d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22"
        .parse()
        .unwrap();
    let outcome = banks.lookup(&pdq_input(flip(&bridge, 31)));
    assert!(outcome.is_match());
    assert!(
        outcome
            .matches
            .iter()
            .all(|it| it.bank == "standin" && it.signal == SignalKind::Pdq)
    );
    assert!(outcome.matches.iter().any(|it| it.distance == Some(31)));
    // Reopening reads the same state from disk.
    let reopened = Banks::open(dir.path()).unwrap();
    assert_eq!(
        reopened.lookup(&pdq_input(flip(&bridge, 31))).matches,
        outcome.matches
    );
    // Far away: nothing.
    let far = PdqHash([0x55; 32]);
    assert!(!banks.lookup(&pdq_input(far)).is_match());
}

#[test]
fn imports_are_atomic_and_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let mut banks = Banks::open(dir.path()).unwrap();
    banks.create("b", BankSettings::default()).unwrap();
    let bad = format!("{}not-a-hash,x,csam_known\n", reference_csv());
    let err = import_text(&mut banks, "b", &bad).unwrap_err();
    assert!(err.to_string().starts_with("list.csv:"), "{err}");
    assert_eq!(banks.stats("b").unwrap().entries, 0);
    import_text(&mut banks, "b", &reference_csv()).unwrap();
    let again = import_text(&mut banks, "b", &reference_csv()).unwrap();
    assert_eq!(again.added, 0);
    assert_eq!(again.duplicates, reference_rows().len());
    assert_eq!(banks.stats("b").unwrap().entries, reference_rows().len());
}

#[test]
fn changes_are_visible_at_once_and_survive_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let mut banks = Banks::open(dir.path()).unwrap();
    banks.create("b", BankSettings::default()).unwrap();
    let hash = PdqHash([0x3c; 32]);
    let sha = Sha256([7; 32]);
    banks
        .add(
            "b",
            vec![
                entry_from_hash(
                    Signal::Pdq(hash),
                    Some("e-1"),
                    "manual",
                    Category::CsamKnown,
                ),
                entry_from_hash(
                    Signal::Sha256(sha),
                    Some("e-2"),
                    "manual",
                    Category::CsamKnown,
                ),
            ],
        )
        .unwrap();
    let input = ImageSignals {
        pdq: Some((flip(&hash, 5), 90)),
        sha256: Some(sha),
        ..ImageSignals::default()
    };
    assert_eq!(banks.lookup(&input).matches.len(), 2);
    // Another process sees the delta.
    assert_eq!(
        Banks::open(dir.path())
            .unwrap()
            .lookup(&input)
            .matches
            .len(),
        2
    );

    banks.set_entry_enabled("b", "e-1", false).unwrap();
    let outcome = banks.lookup(&input);
    assert_eq!(outcome.matches.len(), 1);
    assert_eq!(outcome.matches[0].entry_id, "e-2");
    banks.compact("b").unwrap();
    assert_eq!(banks.lookup(&input).matches.len(), 1);
    assert_eq!(banks.stats("b").unwrap().disabled, 1);

    banks.set_entry_enabled("b", "e-1", true).unwrap();
    banks.remove_signal("b", &Signal::Sha256(sha)).unwrap();
    let outcome = Banks::open(dir.path()).unwrap().lookup(&input);
    assert_eq!(outcome.matches.len(), 1);
    assert_eq!(outcome.matches[0].entry_id, "e-1");
    assert_eq!(outcome.matches[0].distance, Some(5));

    banks.remove_id("b", "e-1").unwrap();
    assert!(!banks.lookup(&input).is_match());
    let err = banks.remove_id("b", "e-1").unwrap_err();
    assert_eq!(err.to_string(), r#"bank "b": no entry with id "e-1""#);
    banks.compact("b").unwrap();
    assert_eq!(banks.stats("b").unwrap().entries, 0);
    let stale: Vec<String> = std::fs::read_dir(dir.path().join("b"))
        .unwrap()
        .map(|it| it.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|it| it.starts_with("seg-") || it.starts_with("delta-"))
        .collect();
    assert_eq!(
        stale,
        vec!["seg-000002.csb".to_string()],
        "old generations are removed"
    );
}

#[test]
fn suppression_banks_cancel_pdq_matches_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut banks = Banks::open(dir.path()).unwrap();
    banks.create("list", BankSettings::default()).unwrap();
    banks
        .create(
            "benign",
            BankSettings {
                kind: BankKind::Suppression,
                ..BankSettings::default()
            },
        )
        .unwrap();
    let hash = PdqHash([0x0f; 32]);
    let md5 = Md5([1; 16]);
    banks
        .add(
            "list",
            vec![
                entry_from_hash(Signal::Pdq(hash), Some("bad-1"), "l", Category::CsamKnown),
                entry_from_hash(Signal::Md5(md5), Some("bad-2"), "l", Category::CsamKnown),
            ],
        )
        .unwrap();
    banks
        .add(
            "benign",
            vec![entry_from_hash(
                Signal::Pdq(flip(&hash, 4)),
                Some("logo"),
                "l",
                Category::CsamKnown,
            )],
        )
        .unwrap();
    let outcome = banks.lookup(&ImageSignals {
        pdq: Some((hash, 100)),
        md5: Some(md5),
        ..ImageSignals::default()
    });
    assert_eq!(outcome.matches.len(), 1, "the exact match stands");
    assert_eq!(outcome.matches[0].entry_id, "bad-2");
    assert_eq!(outcome.suppressed.len(), 1);
    assert_eq!(outcome.suppressed[0].cancelled.entry_id, "bad-1");
    assert_eq!(outcome.suppressed[0].by.bank, "benign");
    assert_eq!(outcome.suppressed[0].by.entry_id, "logo");
}

#[test]
fn thresholds_quality_floors_and_disabled_banks() {
    let dir = tempfile::tempdir().unwrap();
    let mut banks = Banks::open(dir.path()).unwrap();
    banks
        .create(
            "tight",
            BankSettings {
                threshold: 8,
                quality_floor: 80,
                ..BankSettings::default()
            },
        )
        .unwrap();
    let hash = PdqHash([0xa5; 32]);
    banks
        .add(
            "tight",
            vec![entry_from_hash(
                Signal::Pdq(hash),
                None,
                "l",
                Category::CsamKnown,
            )],
        )
        .unwrap();
    let near = |bits, quality| ImageSignals {
        pdq: Some((flip(&hash, bits), quality)),
        ..ImageSignals::default()
    };
    assert!(banks.lookup(&near(8, 90)).is_match());
    assert!(!banks.lookup(&near(9, 90)).is_match());
    assert!(
        !banks.lookup(&near(0, 79)).is_match(),
        "below the quality floor"
    );
    banks.configure("tight", |it| it.enabled = false).unwrap();
    assert!(!banks.lookup(&near(0, 90)).is_match());
    banks
        .configure("tight", |it| {
            it.enabled = true;
            it.threshold = 31;
            it.index = IndexLayout::Fast;
        })
        .unwrap();
    assert!(banks.lookup(&near(31, 90)).is_match());
    let err = banks
        .configure("tight", |it| it.threshold = 300)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "threshold: expected 0 to 256 bits, got 300"
    );
}

#[test]
fn batch_lookups_equal_single_lookups() {
    let dir = tempfile::tempdir().unwrap();
    let mut banks = Banks::open(dir.path()).unwrap();
    for (name, layout) in [
        ("compact", IndexLayout::Compact),
        ("fast", IndexLayout::Fast),
    ] {
        banks
            .create(
                name,
                BankSettings {
                    index: layout,
                    ..BankSettings::default()
                },
            )
            .unwrap();
        import_text(&mut banks, name, &reference_csv()).unwrap();
        // Plus a delta entry that is not yet in the segment.
        banks
            .add(
                name,
                vec![entry_from_hash(
                    Signal::Pdq(PdqHash([9; 32])),
                    Some("late"),
                    "l",
                    Category::CsamKnown,
                )],
            )
            .unwrap();
    }
    let mut inputs: Vec<ImageSignals> = reference_rows()
        .iter()
        .enumerate()
        .map(|(idx, (hash, quality, _))| ImageSignals {
            pdq: Some((flip(hash, idx % 33), *quality)),
            ..ImageSignals::default()
        })
        .collect();
    inputs.push(pdq_input(flip(&PdqHash([9; 32]), 20)));
    inputs.push(ImageSignals::default());
    let batch = banks.lookup_batch(&inputs);
    // Flood counts grow with every lookup; compare the matches themselves.
    let without_flood = |outcome: &childsafe_match::MatchOutcome| {
        let mut matches = outcome.matches.clone();
        for it in &mut matches {
            it.flood = None;
        }
        matches
    };
    for (input, outcome) in inputs.iter().zip(&batch) {
        let single = banks.lookup(input);
        assert_eq!(without_flood(&single), without_flood(outcome));
    }
    assert!(batch.iter().filter(|it| it.is_match()).count() > 10);
}

#[test]
fn flood_counts_flag_entries_matching_many_distinct_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let mut banks = Banks::open(dir.path()).unwrap();
    banks
        .create(
            "b",
            BankSettings {
                flood_threshold: 5,
                ..BankSettings::default()
            },
        )
        .unwrap();
    let hash = PdqHash([0x11; 32]);
    banks
        .add(
            "b",
            vec![entry_from_hash(
                Signal::Pdq(hash),
                Some("blank"),
                "l",
                Category::CsamKnown,
            )],
        )
        .unwrap();
    let mut last = None;
    for idx in 0..6u8 {
        let input = ImageSignals {
            pdq: Some((flip(&hash, usize::from(idx)), 100)),
            sha256: Some(Sha256([idx; 32])),
            ..ImageSignals::default()
        };
        // The same input twice counts once.
        banks.lookup(&input);
        last = Some(banks.lookup(&input));
    }
    let last = last.unwrap();
    assert_eq!(last.matches[0].flood, Some(6));
    banks.save_flood().unwrap();
    let stats = Banks::open(dir.path()).unwrap().stats("b").unwrap();
    assert_eq!(stats.flood.len(), 1);
    assert_eq!(stats.flood[0].distinct_inputs, 6);
    assert!(stats.flood[0].flagged);
}

#[test]
fn export_then_import_reproduces_the_bank() {
    let dir = tempfile::tempdir().unwrap();
    let mut banks = Banks::open(dir.path()).unwrap();
    banks.create("a", BankSettings::default()).unwrap();
    banks.create("b", BankSettings::default()).unwrap();
    import_text(&mut banks, "a", &reference_csv()).unwrap();
    banks
        .add(
            "a",
            vec![entry_from_hash(
                Signal::Md5(Md5([3; 16])),
                Some("m"),
                "other, list",
                Category::CsamKnown,
            )],
        )
        .unwrap();
    banks.set_entry_enabled("a", "fixture-3", false).unwrap();
    let mut csv = Vec::new();
    banks.export("a", ListFormat::Csv, &mut csv).unwrap();
    let parsed = parse_list("export.csv", &csv, &ImportOptions::new("unused")).unwrap();
    banks.import("b", parsed).unwrap();
    let a: Vec<_> = banks.get("a").unwrap().entries().collect();
    let b: Vec<_> = banks.get("b").unwrap().entries().collect();
    assert_eq!(a, b);
}

#[test]
fn bad_names_and_missing_banks_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut banks = Banks::open(&dir.path().join("not-yet")).unwrap();
    assert!(banks.banks().is_empty());
    for bad in ["", "../x", ".hidden", "a/b", "x".repeat(65).as_str()] {
        assert!(
            matches!(
                banks.create(bad, BankSettings::default()),
                Err(Error::BadBankName(_))
            ),
            "{bad:?}"
        );
    }
    banks.create("ok", BankSettings::default()).unwrap();
    assert!(matches!(
        banks.create("ok", BankSettings::default()),
        Err(Error::BankExists(_))
    ));
    assert_eq!(
        banks.stats("nope").unwrap_err().to_string(),
        r#"no bank named "nope""#
    );
    banks.delete("ok").unwrap();
    assert!(
        Banks::open(&dir.path().join("not-yet"))
            .unwrap()
            .banks()
            .is_empty()
    );
}

#[test]
fn banks_say_which_digests_can_match() {
    let dir = tempfile::tempdir().unwrap();
    let mut banks = Banks::open(dir.path()).unwrap();
    banks.create("b", BankSettings::default()).unwrap();
    let kinds = |banks: &Banks| {
        [SignalKind::Md5, SignalKind::Sha1, SignalKind::Sha256].map(|k| banks.matches_exact(k))
    };
    assert_eq!(kinds(&banks), [false; 3], "an empty bank matches no digest");
    banks
        .add(
            "b",
            vec![
                entry_from_hash(
                    Signal::Pdq(PdqHash([1; 32])),
                    None,
                    "l",
                    Category::CsamKnown,
                ),
                entry_from_hash(
                    Signal::Sha256(Sha256([2; 32])),
                    None,
                    "l",
                    Category::CsamKnown,
                ),
            ],
        )
        .unwrap();
    assert_eq!(kinds(&banks), [false, false, true], "from the delta");
    banks.compact("b").unwrap();
    assert_eq!(
        kinds(&Banks::open(dir.path()).unwrap()),
        [false, false, true],
        "from the segment, in another process"
    );
    banks.configure("b", |it| it.enabled = false).unwrap();
    assert_eq!(kinds(&banks), [false; 3], "a disabled bank matches nothing");
}
