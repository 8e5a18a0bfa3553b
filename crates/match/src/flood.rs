//! Flood protection: for each entry that matches, how many distinct inputs
//! it has matched. An entry matching an unusual number of distinct inputs
//! (a near-blank frame, a logo, a meme template) is a likely false-positive
//! source, which HMA's users ask to see.
//!
//! Memory is bounded twice: each entry keeps a KMV sketch of the 32 smallest
//! 64-bit fingerprints of its inputs (exact below 32 distinct inputs, about
//! 18% relative error above), and each bank tracks at most 10,000 entries,
//! dropping those with the fewest inputs. Keys are (signal, entry id), which
//! survive compaction. Counts persist in `flood.jsonl` in the bank directory.

use std::{collections::HashMap, io::Write, path::Path};

use childsafe_core::SignalKind;
use serde::{Deserialize, Serialize};

use crate::{entry::Signal, error::Error, outcome::ImageSignals, segment::write_atomic};

/// Fingerprints kept per entry.
const SKETCH_LEN: usize = 32;
/// Entries tracked per bank.
pub(crate) const MAX_TRACKED: usize = 10_000;
/// File name in the bank directory.
pub(crate) const FLOOD_FILE: &str = "flood.jsonl";

/// The smallest fingerprints seen (sorted, distinct).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sketch {
    mins: Vec<u64>,
}

impl Sketch {
    /// Adds a fingerprint; true if the sketch changed.
    pub(crate) fn insert(&mut self, fingerprint: u64) -> bool {
        match self.mins.binary_search(&fingerprint) {
            Ok(_) => false,
            Err(at) if at < SKETCH_LEN => {
                self.mins.insert(at, fingerprint);
                self.mins.truncate(SKETCH_LEN);
                true
            }
            Err(_) => false,
        }
    }

    /// Estimated number of distinct fingerprints (exact while fewer than 32).
    pub(crate) fn estimate(&self) -> u32 {
        if self.mins.len() < SKETCH_LEN {
            return self.mins.len() as u32;
        }
        let kth = self.mins[SKETCH_LEN - 1] as f64 / 2f64.powi(64);
        (((SKETCH_LEN - 1) as f64 / kth.max(f64::MIN_POSITIVE)).round()).min(f64::from(u32::MAX))
            as u32
    }

    fn merge(&mut self, other: &Sketch) {
        for fingerprint in &other.mins {
            self.insert(*fingerprint);
        }
    }
}

/// An entry's identity for flood counts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FloodKey {
    pub(crate) signal: Signal,
    pub(crate) id: String,
}

/// One line of `flood.jsonl`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FloodLine {
    signal: SignalKind,
    hash: String,
    id: String,
    mins: Vec<u64>,
}

/// Flood counts of one bank.
#[derive(Clone, Debug, Default)]
pub(crate) struct FloodTable {
    pub(crate) entries: HashMap<FloodKey, Sketch>,
    pub(crate) dirty: bool,
}

impl FloodTable {
    /// Loads a bank's counts; a missing file is an empty table.
    pub(crate) fn load(dir: &Path) -> Result<FloodTable, Error> {
        let path = dir.join(FLOOD_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(source) if source.kind() == std::io::ErrorKind::NotFound => {
                return Ok(FloodTable::default());
            }
            Err(source) => return Err(Error::io(&path, source)),
        };
        let mut res = FloodTable::default();
        for (line_idx, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let corrupt = |what: String| Error::Corrupt {
                path: path.clone(),
                what: format!("line {}: {what}", line_idx + 1),
            };
            let parsed: FloodLine =
                serde_json::from_str(line).map_err(|err| corrupt(err.to_string()))?;
            let signal = Signal::parse(parsed.signal, &parsed.hash).map_err(corrupt)?;
            let mut sketch = Sketch::default();
            for fingerprint in parsed.mins {
                sketch.insert(fingerprint);
            }
            res.entries.insert(
                FloodKey {
                    signal,
                    id: parsed.id,
                },
                sketch,
            );
        }
        Ok(res)
    }

    /// Records an input for an entry; returns the entry's new estimate.
    pub(crate) fn record(&mut self, key: FloodKey, fingerprint: u64) -> u32 {
        let sketch = self.entries.entry(key).or_default();
        if sketch.insert(fingerprint) {
            self.dirty = true;
        }
        sketch.estimate()
    }

    /// The estimate for an entry, if tracked.
    #[cfg(test)]
    pub(crate) fn estimate(&self, key: &FloodKey) -> Option<u32> {
        self.entries.get(key).map(Sketch::estimate)
    }

    /// Keeps the [`MAX_TRACKED`] entries with the most inputs.
    fn bound(&mut self) {
        if self.entries.len() <= MAX_TRACKED {
            return;
        }
        let mut ranked: Vec<(u32, FloodKey)> = self
            .entries
            .iter()
            .map(|(key, sketch)| (sketch.estimate(), key.clone()))
            .collect();
        ranked.sort_by_key(|it| std::cmp::Reverse(it.0));
        for (_, key) in ranked.into_iter().skip(MAX_TRACKED) {
            self.entries.remove(&key);
        }
    }

    /// Merges these counts into the bank's file (the caller holds the bank
    /// lock), keeping the file bounded.
    pub(crate) fn save_merged(&self, dir: &Path) -> Result<(), Error> {
        let mut merged = FloodTable::load(dir)?;
        for (key, sketch) in &self.entries {
            merged.entries.entry(key.clone()).or_default().merge(sketch);
        }
        merged.bound();
        let mut lines: Vec<FloodLine> = merged
            .entries
            .iter()
            .map(|(key, sketch)| FloodLine {
                signal: key.signal.kind(),
                hash: key.signal.to_string(),
                id: key.id.clone(),
                mins: sketch.mins.clone(),
            })
            .collect();
        lines.sort_by(|a, b| (a.signal, &a.hash, &a.id).cmp(&(b.signal, &b.hash, &b.id)));
        let path = dir.join(FLOOD_FILE);
        write_atomic(&path, |file| {
            let mut buf = Vec::new();
            for line in &lines {
                serde_json::to_writer(&mut buf, line).map_err(std::io::Error::other)?;
                buf.push(b'\n');
            }
            file.write_all(&buf)
        })
    }
}

/// A 64-bit fingerprint of an input: of its SHA-256 if known (the bytes),
/// else its PDQ hash, MD5 or SHA-1.
pub(crate) fn fingerprint(signals: &ImageSignals) -> Option<u64> {
    let bytes: &[u8] = if let Some(it) = &signals.sha256 {
        &it.0
    } else if let Some((it, _)) = &signals.pdq {
        &it.0
    } else if let Some(it) = &signals.md5 {
        &it.0
    } else if let Some(it) = &signals.sha1 {
        &it.0
    } else {
        return None;
    };
    let mut acc: u64 = 0x243f_6a88_85a3_08d3;
    for chunk in bytes.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        acc = mix(acc ^ u64::from_le_bytes(word));
    }
    Some(acc)
}

/// splitmix64's finaliser: a bijection that spreads bits.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sketch_is_exact_when_small_and_close_when_large() {
        let mut sketch = Sketch::default();
        for input in 0..20u64 {
            sketch.insert(mix(input));
            sketch.insert(mix(input));
        }
        assert_eq!(sketch.estimate(), 20);
        let mut big = Sketch::default();
        for input in 0..10_000u64 {
            big.insert(mix(input));
        }
        let estimate = f64::from(big.estimate());
        assert!((5_000.0..20_000.0).contains(&estimate), "{estimate}");
        assert!(big.mins.len() <= SKETCH_LEN);
    }

    #[test]
    fn saved_counts_merge_and_stay_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut table = FloodTable::default();
        for entry in 0..(MAX_TRACKED + 50) {
            let key = FloodKey {
                signal: Signal::Md5(childsafe_core::Md5([(entry % 256) as u8; 16])),
                id: format!("e-{entry}"),
            };
            table.record(key, mix(entry as u64));
        }
        let hot = FloodKey {
            signal: Signal::Md5(childsafe_core::Md5([7; 16])),
            id: "hot".into(),
        };
        for input in 0..25 {
            table.record(hot.clone(), mix(1_000_000 + input));
        }
        table.save_merged(dir.path()).unwrap();
        table.save_merged(dir.path()).unwrap();
        let back = FloodTable::load(dir.path()).unwrap();
        assert_eq!(back.entries.len(), MAX_TRACKED);
        assert_eq!(back.estimate(&hot), Some(25));
    }
}
