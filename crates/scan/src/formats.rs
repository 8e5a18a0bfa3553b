//! The one place that maps a shard's kind to its source and sink, and hands
//! both to the format-blind shard loop in `scanner.rs`.

use std::{fs::File, io::BufReader};

use crate::{
    error::{Error, Result},
    input::{Kind, Shard},
    scanner::{ShardCtx, ShardOutcome, run_shard},
    sink::{
        Sink,
        dir::DirSink,
        jsonl::JsonlSink,
        parquet::ParquetSink,
        webdataset::{SideFile, WebDatasetSink},
    },
    source::{
        dir::DirSource, jsonl::JsonlSource, parquet::ParquetSource, webdataset::WebDatasetSource,
    },
};

/// Opens the shard's source (and sink, unless this is a dry run) and scans it.
pub(crate) fn scan_shard(ctx: &ShardCtx<'_>, shard: &Shard) -> Result<ShardOutcome> {
    let out_path = ctx.out.join(&shard.rel);
    let side_files = || -> Vec<SideFile> {
        let from_dir = shard.path.parent().unwrap_or(std::path::Path::new(""));
        let to_dir = out_path.parent().unwrap_or(std::path::Path::new(""));
        shard
            .side_files
            .iter()
            .map(|name| SideFile {
                from: from_dir.join(name),
                to: to_dir.join(name),
                filter_by_key: name.extension().is_some_and(|ext| ext == "parquet"),
            })
            .collect()
    };
    let config = ctx.read.clone();
    match shard.kind {
        Kind::WebDataset => {
            let file = File::open(&shard.path).map_err(|e| Error::io(&shard.path, e))?;
            let source = WebDatasetSource::new(
                BufReader::with_capacity(1 << 20, file),
                shard.path.clone(),
                config,
            );
            let sink = sink(ctx, || {
                WebDatasetSink::create(&shard.path, &out_path, side_files())
            })?;
            Ok(run_shard(ctx, source, sink))
        }
        Kind::Parquet => {
            let source = ParquetSource::open(&shard.path, &config)?;
            let schema = source.schema().clone();
            let sink = sink(ctx, || ParquetSink::create(&shard.path, &schema, &out_path))?;
            Ok(run_shard(ctx, source, sink))
        }
        Kind::Jsonl => {
            let file = File::open(&shard.path).map_err(|e| Error::io(&shard.path, e))?;
            let source = JsonlSource::new(
                BufReader::with_capacity(1 << 20, file),
                shard.path.clone(),
                config,
            );
            let sink = sink(ctx, || JsonlSink::create(&shard.path, &out_path))?;
            Ok(run_shard(ctx, source, sink))
        }
        Kind::Images => {
            let source = DirSource::open(&shard.path, config)?;
            let sink = sink(ctx, || {
                DirSink::create(&shard.path, &out_path, side_files())
            })?;
            Ok(run_shard(ctx, source, sink))
        }
    }
}

fn sink<K: Sink>(ctx: &ShardCtx<'_>, create: impl FnOnce() -> Result<K>) -> Result<Option<Box<K>>> {
    if ctx.dry_run {
        return Ok(None);
    }
    create().map(|sink| Some(Box::new(sink)))
}

/// Removes a shard's clean copy (after a failed attempt, so no stale copy
/// of a shard that is now failing stays under its final name).
pub(crate) fn remove_clean_copy(ctx: &ShardCtx<'_>, shard: &Shard) {
    let out_path = ctx.out.join(&shard.rel);
    let _ = crate::fsutil::remove_if_exists(&crate::fsutil::tmp_path(&out_path));
    if shard.kind != Kind::Images {
        let _ = crate::fsutil::remove_if_exists(&out_path);
    }
}
