//! Sources: readers that turn one shard into a stream of samples.
//!
//! A source reads one shard of one format (`webdataset.rs`, `parquet.rs`,
//! `dir.rs`, `jsonl.rs`) and hands out samples in shard order, each carrying
//! the format's own record so the matching sink can write it back verbatim.
//! The scanner drives sources through [`Source`] without naming a format.
//!
//! Every source MUST: hand out samples in the order they appear in the
//! shard; hold at most one sample's content (plus the reader's own buffer,
//! e.g. one Parquet record batch) at a time; report a malformed or truncated
//! shard as an error naming the file and byte offset or row, after handing
//! out every sample before the damage; and never put content in an error.

pub mod dir;
pub mod jsonl;
pub mod parquet;
pub mod webdataset;

use crate::{error::Result, sample::Sample};

/// A reader of samples from one shard.
pub trait Source: Send {
    /// What the matching sink needs to write a sample back.
    type Record: Send + Sync;

    /// The next sample in shard order, or `None` at the end of the shard.
    ///
    /// # Errors
    /// The shard is unreadable, malformed or truncated; samples before the
    /// damage have already been returned.
    fn next_sample(&mut self) -> Result<Option<Sample<Self::Record>>>;
}

/// Image file suffixes recognised in WebDataset shards and directories
/// (lowercase, without the dot).
pub const IMAGE_SUFFIXES: [&str; 9] = [
    "jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff", "image",
];

/// Text suffixes read as captions.
pub const TEXT_SUFFIXES: [&str; 4] = ["txt", "text", "caption", "cap"];

/// Reads `url` and `caption` from a JSON sidecar (img2dataset writes both).
/// Returns the reason when the sidecar is not a JSON object.
pub(crate) fn read_json_sidecar(
    bytes: &[u8],
    url_field: &str,
    text_fields: &[String],
) -> Result<(Option<String>, Vec<String>), String> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        format!(
            "expected a JSON object, got invalid JSON at line {} column {}",
            e.line(),
            e.column()
        )
    })?;
    let Some(object) = value.as_object() else {
        return Err("expected a JSON object".to_owned());
    };
    let url = object
        .get(url_field)
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let texts = text_fields
        .iter()
        .filter_map(|field| object.get(field.as_str()).and_then(|v| v.as_str()))
        .filter(|text| !text.is_empty())
        .map(str::to_owned)
        .collect();
    Ok((url, texts))
}
