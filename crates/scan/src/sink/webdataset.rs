//! The clean copy of a WebDataset shard: every kept sample's members written
//! back with their original header blocks, then the end-of-archive marker,
//! padded to 10240 bytes as Python's `tarfile` (and so img2dataset) pads.
//!
//! Side files that img2dataset writes beside a shard travel with it:
//! `STEM.parquet` (per-sample metadata, one row per `key`) is rewritten
//! without the rows of removed samples, and `STEM_stats.json` (download
//! statistics) is copied as is.

use std::{
    collections::HashSet,
    fs::File,
    io::{BufWriter, Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
};

use crate::{
    error::{Error, Result},
    fsutil,
    sample::Sample,
    sink::{Sink, parquet::filter_side_parquet},
    source::webdataset::{MemberData, TarRecord},
    tar::{BLOCK, RECORD, padded_len},
};

/// A side file that travels with a shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SideFile {
    /// Where it is read from.
    pub from: PathBuf,
    /// Where its clean copy goes.
    pub to: PathBuf,
    /// True for a Parquet metadata file filtered by `key`; false for a
    /// file copied as is.
    pub filter_by_key: bool,
}

/// Writes a clean tar shard.
pub struct WebDatasetSink {
    source_path: PathBuf,
    source_file: Option<File>,
    path: PathBuf,
    tmp: PathBuf,
    out: Option<BufWriter<File>>,
    written: u64,
    removed_keys: HashSet<String>,
    side_files: Vec<SideFile>,
}

impl WebDatasetSink {
    /// A sink writing the clean copy of `source_path` to `path`.
    ///
    /// # Errors
    /// The temporary file cannot be created.
    pub fn create(
        source_path: &Path,
        path: &Path,
        side_files: Vec<SideFile>,
    ) -> Result<WebDatasetSink> {
        let (tmp, file) = fsutil::create_tmp(path)?;
        Ok(WebDatasetSink {
            source_path: source_path.to_owned(),
            source_file: None,
            path: path.to_owned(),
            tmp,
            out: Some(BufWriter::with_capacity(1 << 20, file)),
            written: 0,
            removed_keys: HashSet::new(),
            side_files,
        })
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let Some(out) = self.out.as_mut() else {
            return Ok(());
        };
        out.write_all(bytes).map_err(|e| Error::io(&self.tmp, e))?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Copies `len` bytes at `offset` of the source shard (a member too large
    /// to have been held in memory).
    fn copy_from_source(&mut self, offset: u64, len: u64) -> Result<()> {
        if self.source_file.is_none() {
            let file =
                File::open(&self.source_path).map_err(|e| Error::io(&self.source_path, e))?;
            self.source_file = Some(file);
        }
        let (Some(source), Some(out)) = (self.source_file.as_mut(), self.out.as_mut()) else {
            return Ok(());
        };
        source
            .seek(SeekFrom::Start(offset))
            .map_err(|e| Error::io(&self.source_path, e))?;
        let copied =
            std::io::copy(&mut source.take(len), out).map_err(|e| Error::io(&self.tmp, e))?;
        if copied != len {
            return Err(Error::Tar {
                path: self.source_path.clone(),
                offset: offset + copied,
                reason: format!("truncated while copying: expected {len} bytes, got {copied}"),
            });
        }
        self.written += len;
        Ok(())
    }
}

impl Sink for WebDatasetSink {
    type Record = TarRecord;

    fn keep(&mut self, sample: &Sample<TarRecord>) -> Result<()> {
        for member in &sample.record.members {
            self.write(&member.header)?;
            match &member.data {
                MemberData::Inline(bytes) => self.write(bytes)?,
                MemberData::Image(idx) => {
                    let bytes = sample
                        .images
                        .get(*idx)
                        .map(Vec::as_slice)
                        .unwrap_or_default();
                    self.write(bytes)?;
                }
                MemberData::Skipped { offset } => self.copy_from_source(*offset, member.size)?,
            }
            let padding = padded_len(member.size) - member.size;
            self.write(&[0u8; BLOCK][..padding as usize])?;
        }
        Ok(())
    }

    fn remove(&mut self, sample: &Sample<TarRecord>) -> Result<()> {
        if let Some(key) = &sample.location.key {
            // img2dataset's metadata keys are bare (no directory part).
            let bare = key.rsplit('/').next().unwrap_or(key);
            self.removed_keys.insert(bare.to_owned());
        }
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        // End of archive: two zero blocks, then zeros up to a whole record.
        let end = self.written + 2 * BLOCK as u64;
        let total = end.div_ceil(RECORD) * RECORD;
        let zeros = vec![0u8; (total - self.written) as usize];
        self.write(&zeros)?;
        let Some(out) = self.out.take() else {
            return Ok(());
        };
        let file = out
            .into_inner()
            .map_err(|e| Error::io(&self.tmp, e.into_error()))?;
        fsutil::commit_tmp(file, &self.tmp, &self.path)?;
        for side in std::mem::take(&mut self.side_files) {
            if side.filter_by_key {
                filter_side_parquet(&side.from, &side.to, &self.removed_keys)?;
            } else {
                let bytes = std::fs::read(&side.from).map_err(|e| Error::io(&side.from, e))?;
                fsutil::write_atomic(&side.to, &bytes)?;
            }
        }
        Ok(())
    }
}

impl Drop for WebDatasetSink {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            // Not committed: the partial copy must not linger.
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
