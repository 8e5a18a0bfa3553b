//! The quarantine manifest: one row per sample left out of the clean copy,
//! in JSON lines and in Parquet, with where the sample is, what was decided,
//! why (matcher, list and entry, distance or score) and the sample's hashes.
//!
//! **Never content:** no image bytes, no captions, and no URLs. A sample's
//! URL is a pointer to the material itself (a hotline URL list is
//! distributed under restrictions for that reason), while the manifest is
//! shared widely (data teams, audits). The shard and key or row locate the
//! sample in the original dataset for anyone entitled to it, and the report
//! queue, which goes to the people who file reports, carries the URL.
//!
//! Rows are written per shard into part files and merged in shard order,
//! so the manifest is the same whatever the parallelism.

use std::{
    fs::File,
    io::{BufRead, BufReader},
    path::Path,
    sync::Arc,
};

use arrow_array::{
    ArrayRef, RecordBatch,
    builder::{
        BooleanBuilder, Float64Builder, ListBuilder, StringBuilder, UInt8Builder, UInt32Builder,
        UInt64Builder,
    },
};
use arrow_schema::{DataType, Field, Schema};
use childsafe_core::{
    Action, Category, Finding, Md5, PdqHash, Sha1, Sha256, SignalKind, SourceKind,
};
use parquet::{arrow::ArrowWriter, basic::Compression, file::properties::WriterProperties};
use serde::{Deserialize, Serialize};

use crate::{
    error::{Error, Result},
    fsutil,
};

/// The manifest format version, recorded in the Parquet metadata.
pub const MANIFEST_FORMAT_VERSION: u32 = 1;

/// One removed sample.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestRow {
    /// The shard's name (relative to the inputs' common directory).
    pub shard: String,
    /// The sample key, where the format has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The row index, for Parquet and JSON lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<u64>,
    /// Byte offset of the sample's first tar header, or of its line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// What the policy decided.
    pub action: Action,
    /// Whether the sample is in the report queue.
    pub report: bool,
    /// The categories that drove the decision.
    pub categories: Vec<Category>,
    /// Why: `match` (a finding), `undecodable` (an image that does not
    /// decode), or `unreadable` (part of the sample could not be read).
    pub reason: Reason,
    /// The kind of matcher of the first finding behind the decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matcher: Option<SourceKind>,
    /// Its bank, list or detector name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<String>,
    /// The matching entry's id (bank and list matches).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_id: Option<String>,
    /// The signal that matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<SignalKind>,
    /// PDQ Hamming distance, for PDQ matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distance: Option<u32>,
    /// The finding's score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Hashes of the sample's (first) image, or of its text for text-only samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5: Option<Md5>,
    /// SHA-1 of the same bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha1: Option<Sha1>,
    /// SHA-256 of the same bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Sha256>,
    /// PDQ hash of the image, when it decoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pdq: Option<PdqHash>,
    /// PDQ quality, 0..=100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pdq_quality: Option<u8>,
    /// What could not be read or decoded, as `part: reason` (no content).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// Every finding considered (ids, scores, spans; never content).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
}

/// Why a sample was removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// A finding triggered a policy rule.
    Match,
    /// An image did not decode; the policy's `undecodable` action applied.
    Undecodable,
    /// Part of the sample could not be read; the policy's fail mode applied.
    Unreadable,
}

impl Reason {
    /// The stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::Match => "match",
            Reason::Undecodable => "undecodable",
            Reason::Unreadable => "unreadable",
        }
    }
}

/// Writes the Parquet manifest from the merged JSON lines manifest, in row
/// groups of bounded size, through a temporary file.
///
/// # Errors
/// Reading the JSON lines or writing the Parquet file failed.
pub fn write_parquet(jsonl: &Path, path: &Path) -> Result<()> {
    const ROWS_PER_GROUP: usize = 8192;
    let schema = Arc::new(schema());
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_key_value_metadata(Some(vec![parquet::file::metadata::KeyValue::new(
            "childsafe.manifest_version".to_owned(),
            MANIFEST_FORMAT_VERSION.to_string(),
        )]))
        .build();
    let (tmp, file) = fsutil::create_tmp(path)?;
    let mut writer = ArrowWriter::try_new(file, Arc::clone(&schema), Some(props))
        .map_err(|e| manifest_error(&tmp, e))?;
    let reader = BufReader::new(File::open(jsonl).map_err(|e| Error::io(jsonl, e))?);
    let mut rows = Vec::with_capacity(ROWS_PER_GROUP);
    for (line_idx, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| Error::io(jsonl, e))?;
        let row: ManifestRow = serde_json::from_str(&line)
            .map_err(|e| manifest_error(jsonl, format!("line {}: {e}", line_idx + 1)))?;
        rows.push(row);
        if rows.len() == ROWS_PER_GROUP {
            let batch = to_batch(&schema, &rows).map_err(|e| manifest_error(&tmp, e))?;
            writer.write(&batch).map_err(|e| manifest_error(&tmp, e))?;
            rows.clear();
        }
    }
    if !rows.is_empty() {
        let batch = to_batch(&schema, &rows).map_err(|e| manifest_error(&tmp, e))?;
        writer.write(&batch).map_err(|e| manifest_error(&tmp, e))?;
    }
    let file = writer.into_inner().map_err(|e| manifest_error(&tmp, e))?;
    fsutil::commit_tmp(file, &tmp, path)
}

fn manifest_error(path: &Path, reason: impl ToString) -> Error {
    Error::Manifest {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// The Parquet manifest's schema.
pub fn schema() -> Schema {
    let utf8 = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    let list = |name: &str| {
        Field::new(
            name,
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            false,
        )
    };
    Schema::new(vec![
        utf8("shard", false),
        utf8("key", true),
        Field::new("row", DataType::UInt64, true),
        Field::new("offset", DataType::UInt64, true),
        utf8("action", false),
        Field::new("report", DataType::Boolean, false),
        list("categories"),
        utf8("reason", false),
        utf8("matcher", true),
        utf8("list", true),
        utf8("entry_id", true),
        utf8("signal", true),
        Field::new("distance", DataType::UInt32, true),
        Field::new("score", DataType::Float64, true),
        utf8("md5", true),
        utf8("sha1", true),
        utf8("sha256", true),
        utf8("pdq", true),
        Field::new("pdq_quality", DataType::UInt8, true),
        list("problems"),
        utf8("findings", false),
    ])
}

fn to_batch(schema: &Arc<Schema>, rows: &[ManifestRow]) -> Result<RecordBatch, String> {
    fn strings(values: impl Iterator<Item = Option<String>>) -> ArrayRef {
        let mut builder = StringBuilder::new();
        for value in values {
            builder.append_option(value);
        }
        Arc::new(builder.finish())
    }
    fn lists(values: impl Iterator<Item = Vec<String>>) -> ArrayRef {
        let mut builder = ListBuilder::new(StringBuilder::new());
        for value in values {
            for item in value {
                builder.values().append_value(item);
            }
            builder.append(true);
        }
        Arc::new(builder.finish())
    }
    let u64s = |f: &dyn Fn(&ManifestRow) -> Option<u64>| -> ArrayRef {
        let mut builder = UInt64Builder::new();
        for row in rows {
            builder.append_option(f(row));
        }
        Arc::new(builder.finish())
    };
    let mut report = BooleanBuilder::new();
    let mut distance = UInt32Builder::new();
    let mut score = Float64Builder::new();
    let mut quality = UInt8Builder::new();
    for row in rows {
        report.append_value(row.report);
        distance.append_option(row.distance);
        score.append_option(row.score);
        quality.append_option(row.pdq_quality);
    }
    let findings = rows
        .iter()
        .map(|row| serde_json::to_string(&row.findings).map(Some))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let columns: Vec<ArrayRef> = vec![
        strings(rows.iter().map(|r| Some(r.shard.clone()))),
        strings(rows.iter().map(|r| r.key.clone())),
        u64s(&|r| r.row),
        u64s(&|r| r.offset),
        strings(rows.iter().map(|r| Some(r.action.as_str().to_owned()))),
        Arc::new(report.finish()),
        lists(
            rows.iter()
                .map(|r| r.categories.iter().map(|c| c.as_str().to_owned()).collect()),
        ),
        strings(rows.iter().map(|r| Some(r.reason.as_str().to_owned()))),
        strings(
            rows.iter()
                .map(|r| r.matcher.map(|m| m.as_str().to_owned())),
        ),
        strings(rows.iter().map(|r| r.list.clone())),
        strings(rows.iter().map(|r| r.entry_id.clone())),
        strings(rows.iter().map(|r| r.signal.map(|s| s.as_str().to_owned()))),
        Arc::new(distance.finish()),
        Arc::new(score.finish()),
        strings(rows.iter().map(|r| r.md5.map(|h| h.to_string()))),
        strings(rows.iter().map(|r| r.sha1.map(|h| h.to_string()))),
        strings(rows.iter().map(|r| r.sha256.map(|h| h.to_string()))),
        strings(rows.iter().map(|r| r.pdq.map(|h| h.to_string()))),
        Arc::new(quality.finish()),
        lists(rows.iter().map(|r| r.problems.clone())),
        strings(findings.into_iter()),
    ];
    RecordBatch::try_new(Arc::clone(schema), columns).map_err(|e| e.to_string())
}
