//! The report queue: what the dataset scanner hands to the case system.
//!
//! `childsafe scan` appends one [`QueueEntry`] per reportable sample to a JSON
//! lines file; `childsafe case import-queue` reads it and opens cases. The
//! entry carries what a reporter needs to file with NCMEC (hashes, where the
//! sample was found, when, and why) and never the content itself. This is a
//! stored format: fields are only ever added, and `version` says which set.

use serde::{Deserialize, Serialize};

use crate::{
    finding::Finding,
    signal::{Md5, PdqHash, Sha1, Sha256},
};

/// The current queue entry format version.
pub const QUEUE_FORMAT_VERSION: u32 = 1;

/// One reportable sample found in a dataset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueueEntry {
    /// Format version ([`QUEUE_FORMAT_VERSION`] when written by this build).
    pub version: u32,
    /// A stable id for this find (same sample, same content: same id), so that
    /// importing a queue twice opens no duplicate case.
    pub id: String,
    /// When the sample was found, RFC 3339 in UTC.
    pub found_at: String,
    /// Where the sample was found.
    pub location: SampleLocation,
    /// The sample's hashes, taken from the original bytes.
    pub hashes: ContentHashes,
    /// The findings that made the sample reportable.
    pub findings: Vec<Finding>,
    /// The preserved original, if the scan ran with `--preserve-evidence`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<EvidenceRef>,
}

/// Where a sample lives in a dataset.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleLocation {
    /// The input the sample came from: a shard path, a Parquet file, a directory.
    pub shard: String,
    /// The sample key (WebDataset key, or path relative to a directory input).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The row index, for Parquet and JSON lines inputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<u64>,
    /// Byte offset of the member in a tar shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// The sample's source URL, as recorded in the dataset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// Hashes of one content item. Exact hashes are of the original bytes; PDQ
/// is absent when the image could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentHashes {
    /// MD5 of the original bytes.
    pub md5: Md5,
    /// SHA-1 of the original bytes.
    pub sha1: Sha1,
    /// SHA-256 of the original bytes.
    pub sha256: Sha256,
    /// PDQ hash of the decoded image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pdq: Option<PdqHash>,
    /// PDQ quality, 0..=100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<u8>,
}

/// A pointer to an item in an encrypted evidence vault.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceRef {
    /// The vault item id.
    pub item_id: String,
    /// SHA-256 of the original (plaintext) bytes, recorded at ingest.
    pub sha256: Sha256,
}
