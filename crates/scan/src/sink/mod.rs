//! Sinks: writers of the clean copy of one shard, in its own format.
//!
//! A sink receives every sample of a shard in order, told for each whether it
//! is kept or removed, and writes the kept ones back exactly as they were
//! (tar headers verbatim, Parquet rows under the same schema and metadata,
//! directory files hard-linked). The scanner drives sinks through [`Sink`]
//! without naming a format.
//!
//! Every sink MUST: write only to temporary names until [`Sink::commit`];
//! in `commit`, flush and fsync every file, then rename each into place and
//! fsync its directory, so that a file under its final name is always
//! complete; leave no temporary file behind when dropped without `commit`
//! (best effort: a killed process leaves them, and the next run removes
//! them before it starts the shard).

pub mod dir;
pub mod jsonl;
pub mod parquet;
pub mod webdataset;

use crate::{error::Result, sample::Sample};

/// A writer of one shard's clean copy.
pub trait Sink: Send {
    /// The record type of the matching source.
    type Record: Send + Sync;

    /// Writes a kept sample.
    ///
    /// # Errors
    /// Writing failed.
    fn keep(&mut self, sample: &Sample<Self::Record>) -> Result<()>;

    /// Notes a removed sample (a sink may need to know, e.g. to drop the
    /// sample's row from a side file).
    ///
    /// # Errors
    /// Writing failed.
    fn remove(&mut self, sample: &Sample<Self::Record>) -> Result<()>;

    /// Makes the clean copy durable and renames it into place.
    ///
    /// # Errors
    /// Flushing, syncing or renaming failed; nothing is under the final name
    /// that was not complete.
    fn commit(self: Box<Self>) -> Result<()>;
}
