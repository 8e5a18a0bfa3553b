//! The scan summary: per shard, samples by action and by category, what was
//! removed and reported, and errors; as JSON and as a readable table.
//!
//! The summary holds counts only, so it is the same for the same inputs
//! whatever the parallelism or interruptions; wall-clock figures
//! (throughput) are kept apart in `timing.json`.

use std::{collections::BTreeMap, fmt::Write};

use serde::{Deserialize, Serialize};

/// The summary format version.
pub const SUMMARY_FORMAT_VERSION: u32 = 1;

/// Counts for one shard (also used for the totals).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardCounts {
    /// Samples read (passthrough entries excluded).
    pub samples: u64,
    /// Samples kept in the clean copy.
    pub kept: u64,
    /// Samples left out of the clean copy.
    pub removed: u64,
    /// Samples queued for reporting.
    pub reported: u64,
    /// Samples by decided action.
    pub actions: BTreeMap<String, u64>,
    /// Removed samples by category (a sample counts once per category).
    pub categories: BTreeMap<String, u64>,
    /// Removed samples whose image did not decode.
    pub undecodable: u64,
    /// Removed samples with a part that could not be read.
    pub unreadable: u64,
    /// Input bytes of the shard.
    pub bytes: u64,
}

impl ShardCounts {
    /// Adds another shard's counts.
    pub fn add(&mut self, other: &ShardCounts) {
        self.samples += other.samples;
        self.kept += other.kept;
        self.removed += other.removed;
        self.reported += other.reported;
        for (name, n) in &other.actions {
            *self.actions.entry(name.clone()).or_default() += n;
        }
        for (name, n) in &other.categories {
            *self.categories.entry(name.clone()).or_default() += n;
        }
        self.undecodable += other.undecodable;
        self.unreadable += other.unreadable;
        self.bytes += other.bytes;
    }
}

/// One shard's line in the summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardSummary {
    /// The shard's name.
    pub shard: String,
    /// Its format.
    pub kind: String,
    /// `done`, or `failed` (no clean copy; see `error`).
    pub status: String,
    /// Why it failed (file and offset or row; never content).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its counts (for a failed shard: the samples read before the failure).
    pub counts: ShardCounts,
}

/// The whole scan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// [`SUMMARY_FORMAT_VERSION`].
    pub version: u32,
    /// Whether this was a dry run (no clean copy).
    pub dry_run: bool,
    /// `I/N` when the shard list was split across workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// Shards in scan order.
    pub shards: Vec<ShardSummary>,
    /// Totals over all shards.
    pub total: ShardCounts,
    /// Names of failed shards.
    pub failed: Vec<String>,
}

impl Summary {
    /// The summary as a readable table: one line per shard, then the totals,
    /// the removed samples per category and the failures.
    pub fn table(&self) -> String {
        let mut res = String::new();
        let name_width = self
            .shards
            .iter()
            .map(|s| s.shard.len())
            .max()
            .unwrap_or(5)
            .clamp(5, 60);
        let _ = writeln!(
            res,
            "{:<name_width$}  {:>10}  {:>10}  {:>8}  {:>8}  {:>11}  status",
            "shard", "samples", "kept", "removed", "reported", "undecodable"
        );
        let mut line = |name: &str, counts: &ShardCounts, status: &str| {
            let _ = writeln!(
                res,
                "{:<name_width$}  {:>10}  {:>10}  {:>8}  {:>8}  {:>11}  {status}",
                name,
                counts.samples,
                counts.kept,
                counts.removed,
                counts.reported,
                counts.undecodable
            );
        };
        for shard in &self.shards {
            line(&shard.shard, &shard.counts, &shard.status);
        }
        line(
            "total",
            &self.total,
            if self.failed.is_empty() {
                "ok"
            } else {
                "FAILED"
            },
        );
        if !self.total.categories.is_empty() {
            let _ = writeln!(res, "\nremoved by category:");
            for (category, n) in &self.total.categories {
                let _ = writeln!(res, "  {category:<24} {n:>10}");
            }
        }
        if !self.total.actions.is_empty() {
            let _ = writeln!(res, "\nsamples by action:");
            for (action, n) in &self.total.actions {
                let _ = writeln!(res, "  {action:<24} {n:>10}");
            }
        }
        if !self.failed.is_empty() {
            let _ = writeln!(res, "\nfailed shards:");
            for shard in self.shards.iter().filter(|s| s.status != "done") {
                let _ = writeln!(
                    res,
                    "  {}: {}",
                    shard.shard,
                    shard.error.as_deref().unwrap_or("unknown error")
                );
            }
        }
        res
    }
}
