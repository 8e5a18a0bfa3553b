//! Acceptance against the PDQ reference vectors in ../shared/fixtures/pdq
//! (see its README.txt): data-driven, one check per criterion.
//!
//! - Same pixels in, same bits out: every row of
//!   `cpp-reference-pixel-exact.csv` and all eight columns of
//!   `cpp-reference-pixel-exact-dihedral.csv`, hash and quality, bit for bit
//!   (the flat grey image: quality only, its hash is float noise).
//! - Our decoder on the original files: distance <= 10 from the C++
//!   reference for every row of `cpp-reference-pdq.csv` with quality >= 80,
//!   on the fast path and with full decoding; max and mean are printed.
//! - The 16-bit PNG hashes to the correctly scaled value
//!   (`i16-scaled-correct.csv`), not to either known artifact.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::path::{Path, PathBuf};

use childsafe_core::PdqHash;
use childsafe_hash::{HashConfig, Pdq, hash_image};

/// Tolerance of the reference's own acceptance rule (pdq/README.md).
const MAX_DISTANCE: u32 = 10;
const MIN_QUALITY_FOR_TOLERANCE: u8 = 80;

fn fixtures() -> PathBuf {
    // The repository root's sibling `shared/`, here and in CI.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/pdq")
}

/// Rows of a reference CSV as maps from column name to value.
fn read_csv(name: &str) -> Vec<Vec<(String, String)>> {
    let path = fixtures().join("expected").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_owned)
        .collect();
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            header
                .iter()
                .cloned()
                .zip(line.split(',').map(str::to_owned))
                .collect()
        })
        .collect()
}

fn field<'a>(row: &'a [(String, String)], name: &str) -> &'a str {
    &row.iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .1
}

fn hash_file(rel: &str, config: &HashConfig) -> Pdq {
    let bytes = std::fs::read(fixtures().join(rel)).unwrap();
    hash_image(&bytes, config)
        .pdq
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The one check for bit-exact rows: expected hashes per dihedral column
/// (just "orig" for the plain file) and the expected quality.
///
/// Both configurations must be exact here: `full_decode` runs the
/// reference's own filter passes; the default's one-step weighted filter
/// agrees with them to `f32` rounding, which on these files never reaches
/// a hash bit or a quality step.
fn check_exact(csv: &str, columns: &[&str]) {
    let mut failures = Vec::new();
    let rows = read_csv(csv);
    assert!(rows.len() >= 12, "{csv}: expected the 12 pixel-exact rows");
    let configs = [false, true].map(|full_decode| HashConfig {
        dihedral: columns.len() > 1,
        full_decode,
        ..HashConfig::default()
    });
    for (row, config) in rows
        .iter()
        .flat_map(|row| configs.iter().map(move |c| (row, c)))
    {
        let path = field(row, "path");
        let want_quality: u8 = field(row, "quality").parse().unwrap();
        let got = hash_file(path, config);
        let path = format!("{path} (full_decode {})", config.full_decode);
        if got.quality != want_quality {
            failures.push(format!(
                "{path}: quality {} want {want_quality}",
                got.quality
            ));
        }
        if path.contains("flat-grey") {
            continue;
        }
        let got_hashes = match got.dihedral {
            Some(all) => all.to_vec(),
            None => vec![got.hash],
        };
        for (column, got_hash) in columns.iter().zip(got_hashes) {
            let want: PdqHash = field(row, column).parse().unwrap();
            if got_hash != want {
                failures.push(format!(
                    "{path} {column}: {got_hash} want {want} (distance {})",
                    got_hash.distance(&want)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn pixel_exact_hashes_and_qualities_are_bit_exact() {
    check_exact("cpp-reference-pixel-exact.csv", &["pdq_hex"]);
}

#[test]
fn pixel_exact_dihedral_hashes_are_bit_exact() {
    check_exact(
        "cpp-reference-pixel-exact-dihedral.csv",
        &[
            "orig",
            "rot90",
            "rot180",
            "rot270",
            "flipx",
            "flipy",
            "flipplus1",
            "flipminus1",
        ],
    );
}

/// The expected hash for a row, with the documented 16-bit correction.
fn expected_for(path: &str, reference: &str) -> PdqHash {
    let corrected = read_csv("i16-scaled-correct.csv");
    corrected
        .iter()
        .find(|r| field(r, "path") == path)
        .map_or(reference, |r| field(r, "pdq_hex"))
        .parse()
        .unwrap()
}

/// The one check for the tolerance rows: every reference row is hashed
/// from the file with `config`; rows of quality >= 80 must be within 10.
fn check_tolerance(label: &str, config: HashConfig) {
    let rows = read_csv("cpp-reference-pdq.csv");
    assert!(rows.len() >= 49);
    let mut distances = Vec::new();
    let mut failures = Vec::new();
    for row in &rows {
        let path = field(row, "path");
        let want_quality: u8 = field(row, "quality").parse().unwrap();
        let want = expected_for(path, field(row, "pdq_hex"));
        let got = hash_file(path, &config);
        let distance = got.hash.distance(&want);
        distances.push(distance);
        println!(
            "{label}: {distance:3} q{:3} (ref q{want_quality:3}) {path}",
            got.quality
        );
        if want_quality >= MIN_QUALITY_FOR_TOLERANCE && distance > MAX_DISTANCE {
            failures.push(format!("{path}: distance {distance}"));
        }
    }
    let max = distances.iter().max().copied().unwrap_or(0);
    let mean = distances.iter().sum::<u32>() as f64 / distances.len() as f64;
    println!(
        "{label}: {} rows, max distance {max}, mean {mean:.2}",
        distances.len()
    );
    assert!(
        failures.is_empty(),
        "{label}: beyond {MAX_DISTANCE} bits:\n{}",
        failures.join("\n")
    );
}

#[test]
fn decoded_files_are_within_tolerance_of_the_reference() {
    check_tolerance("fast", HashConfig::default());
}

#[test]
fn fully_decoded_files_are_within_tolerance_of_the_reference() {
    check_tolerance(
        "full",
        HashConfig {
            full_decode: true,
            ..HashConfig::default()
        },
    );
}

#[test]
fn sixteen_bit_samples_are_scaled_not_clipped_or_truncated() {
    let rows = read_csv("i16-scaled-correct.csv");
    let path = field(&rows[0], "path");
    let got = hash_file(path, &HashConfig::default());
    assert_eq!(got.hash.to_string(), field(&rows[0], "pdq_hex"));
    assert_eq!(got.quality.to_string(), field(&rows[0], "quality"));
}
