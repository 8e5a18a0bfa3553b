//! Scanning training datasets at ingestion: what a data team runs before
//! training so that known abuse material never ends up in a model (issue 4).
//!
//! Every sample of a dataset passes through the engine on the `ingest`
//! surface: its image hashes against the banks (PDQ near-match, exact MD5,
//! SHA-1 and SHA-256), its URL and domain against URL lists, its captions
//! through the text detectors. What the policy withholds is left out of a
//! clean copy in the dataset's own format, recorded in a quarantine
//! manifest (never with content) and, where the policy says report, queued
//! for the case system with the original preserved in the encrypted
//! evidence vault.
//!
//! - Inputs ([`input`]): WebDataset tar shards as img2dataset writes them,
//!   Parquet (img2dataset and Hugging Face `datasets`), directories of images
//!   with sidecar files, JSON lines corpora; files, directories, globs,
//!   brace ranges and list files.
//! - Sources and sinks ([`source`], [`sink`]): one module per format behind
//!   the [`source::Source`] and [`sink::Sink`] traits; the scanner
//!   ([`scan`]) drives them without naming a format.
//! - Checks ([`check`]): the scanner hashes images once, in parallel, and
//!   asks a [`check::Checker`] (the engine) for a decision per sample, a
//!   batch at a time.
//! - Outputs: the clean copy, [`manifest`] (JSON lines and Parquet), the
//!   report queue (`childsafe_core::QueueEntry` lines), the [`summary`].
//! - Robustness: bounded memory, shards in parallel, and resumable: a killed
//!   scan rerun with the same command finishes with the same bytes (see
//!   `scanner.rs` for the protocol).
//!
//! What this crate deliberately does not do: decide. Policy lives in the
//! engine; this crate moves samples and records decisions.

#![deny(missing_docs)]

pub mod check;
mod config;
#[cfg(feature = "engine")]
mod engine;
mod error;
mod failpoint;
mod formats;
pub mod fsutil;
pub mod input;
pub mod manifest;
pub mod sample;
mod scanner;
pub mod sink;
pub mod source;
pub mod summary;
mod tar;

#[cfg(feature = "engine")]
pub use crate::engine::EngineChecker;
pub use crate::{
    config::ReadConfig,
    error::{Error, Result},
    failpoint::CRASH_ENV,
    scanner::{Plan, Progress, ScanConfig, ScanOutcome, Timing, scan, worker_share},
};
