//! Hash banks and exact matching: the known-image core of childsafe.
//!
//! A bank is a named list of signals (PDQ, MD5, SHA-1, SHA-256) with per-entry
//! metadata and per-bank settings (threshold, quality floor, enabled, normal or
//! suppression). [`Banks`] holds every bank under a directory; [`Banks::lookup`]
//! and [`Banks::lookup_batch`] match an input's [`ImageSignals`] against all of
//! them and return a [`MatchOutcome`].
//!
//! The PDQ index is exact: it returns every entry within the threshold, never
//! an approximation (a missed match is a missed child). It is a multi-index
//! over memory-mapped immutable segments, with a small delta for additions and
//! removals made since (FORMAT.md describes the files). List files are read and
//! written in three formats ([`ListFormat`]); URL and domain lists live in
//! [`UrlList`].
//!
//! This crate knows nothing about HTTP or image decoding: it receives hashes
//! (from `childsafe-hash` or a user's file) and does file I/O only for banks.
//!
//! ```
//! use childsafe_core::{Category, PdqHash};
//! use childsafe_match::{BankSettings, Banks, ImageSignals, Signal, entry_from_hash};
//!
//! let dir = tempfile::tempdir()?;
//! let mut banks = Banks::open(dir.path())?;
//! banks.create("standin", BankSettings::default())?;
//! let known = PdqHash([0x5a; 32]);
//! banks.add("standin", vec![entry_from_hash(Signal::Pdq(known), Some("e-1"), "fixture", Category::CsamKnown)])?;
//!
//! let mut near = known;
//! near.0[0] ^= 0b111; // 3 bits away
//! let outcome = banks.lookup(&ImageSignals { pdq: Some((near, 100)), ..ImageSignals::default() });
//! assert_eq!(outcome.matches[0].entry_id, "e-1");
//! assert_eq!(outcome.matches[0].distance, Some(3));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod bank;
mod banks;
mod entry;
mod error;
mod flood;
mod formats;
mod outcome;
mod pdq;
mod segment;
mod store;
mod url;

pub use crate::{
    bank::{Bank, BankKind, BankSettings, IndexLayout},
    banks::{BankStats, Banks, FloodStat, ImportReport, entry_from_hash},
    entry::{Entry, MAX_ID_BYTES, Signal},
    error::Error,
    formats::{ImportOptions, ListFormat, ParsedList, parse_list, write_list},
    outcome::{BankMatch, ImageSignals, MatchOutcome, Suppressed},
    url::{NormalizedUrl, UrlEntryKind, UrlList, UrlMatch, normalize_url},
};

#[doc(hidden)]
pub mod bench_support;
