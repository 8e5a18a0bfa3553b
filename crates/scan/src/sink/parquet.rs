//! The clean copy of a Parquet shard: the same schema and key-value metadata
//! (Hugging Face's `huggingface` features, pandas metadata), the same row
//! order and row group boundaries, the same compression, minus the removed
//! rows. A shard with nothing removed is copied byte for byte instead.

use std::{
    collections::HashSet,
    fs::File,
    path::{Path, PathBuf},
    sync::Arc,
};

use arrow_array::{BooleanArray, RecordBatch};
use arrow_schema::SchemaRef;
use parquet::{
    arrow::{ArrowWriter, arrow_reader::ParquetRecordBatchReaderBuilder},
    basic::Compression,
    file::properties::WriterProperties,
};

use crate::{
    error::{Error, Result},
    fsutil,
    sample::Sample,
    sink::Sink,
    source::parquet::{ParquetRecord, str_at},
};

/// Buffered output past which a row group is flushed early, so that one huge
/// input row group cannot hold the whole file in memory.
const MAX_BUFFERED_BYTES: usize = 64 << 20;

/// Writes a clean Parquet file.
pub struct ParquetSink {
    source_path: PathBuf,
    path: PathBuf,
    tmp: PathBuf,
    writer: Option<ArrowWriter<File>>,
    mask: Vec<bool>,
    n_removed: u64,
}

impl ParquetSink {
    /// A sink writing the clean copy of `source_path` (whose schema is
    /// `schema`) to `path`.
    ///
    /// # Errors
    /// The temporary file cannot be created, or the source's metadata read.
    pub fn create(source_path: &Path, schema: &SchemaRef, path: &Path) -> Result<ParquetSink> {
        let props = writer_properties(source_path)?;
        let (tmp, file) = fsutil::create_tmp(path)?;
        let writer = ArrowWriter::try_new(file, Arc::clone(schema), Some(props))
            .map_err(|e| Error::parquet(&tmp, e))?;
        Ok(ParquetSink {
            source_path: source_path.to_owned(),
            path: path.to_owned(),
            tmp,
            writer: Some(writer),
            mask: Vec::new(),
            n_removed: 0,
        })
    }

    fn push(&mut self, record: &ParquetRecord, keep: bool) -> Result<()> {
        self.mask.push(keep);
        if record.batch_end {
            let mask = BooleanArray::from(std::mem::take(&mut self.mask));
            let Some(writer) = self.writer.as_mut() else {
                return Ok(());
            };
            write_filtered(writer, &record.batch, &mask)
                .map_err(|e| Error::parquet(&self.tmp, e))?;
            if record.row_group_end || writer.in_progress_size() > MAX_BUFFERED_BYTES {
                writer.flush().map_err(|e| Error::parquet(&self.tmp, e))?;
            }
        }
        Ok(())
    }
}

impl Sink for ParquetSink {
    type Record = ParquetRecord;

    fn keep(&mut self, sample: &Sample<ParquetRecord>) -> Result<()> {
        self.push(&sample.record, true)
    }

    fn remove(&mut self, sample: &Sample<ParquetRecord>) -> Result<()> {
        self.n_removed += 1;
        self.push(&sample.record, false)
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        let Some(writer) = self.writer.take() else {
            return Ok(());
        };
        let file = writer
            .into_inner()
            .map_err(|e| Error::parquet(&self.tmp, e))?;
        if self.n_removed == 0 {
            // Nothing removed: the original bytes are the cleanest copy.
            drop(file);
            return copy_verbatim(&self.source_path, &self.path);
        }
        fsutil::commit_tmp(file, &self.tmp, &self.path)
    }
}

impl Drop for ParquetSink {
    fn drop(&mut self) {
        if self.writer.take().is_some() || self.tmp.exists() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Rewrites img2dataset's per-shard metadata Parquet without the rows whose
/// `key` is in `removed_keys` (a verbatim copy when none are).
///
/// # Errors
/// The file cannot be read or written, or has no `key` column while rows
/// must be removed.
pub(crate) fn filter_side_parquet(
    from: &Path,
    to: &Path,
    removed_keys: &HashSet<String>,
) -> Result<()> {
    if removed_keys.is_empty() {
        return copy_verbatim(from, to);
    }
    let file = File::open(from).map_err(|e| Error::io(from, e))?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| Error::parquet(from, e))?;
    let schema = Arc::clone(builder.schema());
    let key_idx = schema.index_of("key").map_err(|_| {
        Error::parquet(
            from,
            "key: expected a key column to drop removed samples by, got none",
        )
    })?;
    let n_row_groups = builder.metadata().num_row_groups();
    let props = writer_properties(from)?;
    let (tmp, out) = fsutil::create_tmp(to)?;
    let mut writer = ArrowWriter::try_new(out, Arc::clone(&schema), Some(props))
        .map_err(|e| Error::parquet(&tmp, e))?;
    for row_group in 0..n_row_groups {
        let file = File::open(from).map_err(|e| Error::io(from, e))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| {
                b.with_batch_size(1024)
                    .with_row_groups(vec![row_group])
                    .build()
            })
            .map_err(|e| Error::parquet(from, e))?;
        for batch in reader {
            let batch =
                batch.map_err(|e| Error::parquet(from, format!("row group {row_group}: {e}")))?;
            let keys = batch.column(key_idx);
            let mask: BooleanArray = (0..batch.num_rows())
                .map(|row| {
                    Some(str_at(keys.as_ref(), row).is_none_or(|key| !removed_keys.contains(key)))
                })
                .collect();
            write_filtered(&mut writer, &batch, &mask).map_err(|e| Error::parquet(&tmp, e))?;
        }
        writer.flush().map_err(|e| Error::parquet(&tmp, e))?;
    }
    let out = writer.into_inner().map_err(|e| Error::parquet(&tmp, e))?;
    fsutil::commit_tmp(out, &tmp, to)
}

fn write_filtered(
    writer: &mut ArrowWriter<File>,
    batch: &RecordBatch,
    mask: &BooleanArray,
) -> Result<(), parquet::errors::ParquetError> {
    let filtered = arrow_select::filter::filter_record_batch(batch, mask)?;
    if filtered.num_rows() > 0 {
        writer.write(&filtered)?;
    }
    Ok(())
}

/// The source's compression (of its first column chunk), so the clean copy
/// is written the way the original was.
fn writer_properties(source: &Path) -> Result<WriterProperties> {
    let file = File::open(source).map_err(|e| Error::io(source, e))?;
    let reader = parquet::file::reader::SerializedFileReader::new(file)
        .map_err(|e| Error::parquet(source, e))?;
    let metadata = parquet::file::reader::FileReader::metadata(&reader);
    let compression = metadata
        .row_groups()
        .first()
        .and_then(|rg| rg.columns().first())
        .map_or(Compression::SNAPPY, |column| column.compression());
    // Codecs this build cannot write fall back to snappy, the pyarrow default.
    let compression = match compression {
        Compression::UNCOMPRESSED | Compression::SNAPPY | Compression::ZSTD(_) => compression,
        _ => Compression::SNAPPY,
    };
    Ok(WriterProperties::builder()
        .set_compression(compression)
        .build())
}

fn copy_verbatim(from: &Path, to: &Path) -> Result<()> {
    let (tmp, mut out) = fsutil::create_tmp(to)?;
    let mut input = File::open(from).map_err(|e| Error::io(from, e))?;
    std::io::copy(&mut input, &mut out).map_err(|e| Error::io(&tmp, e))?;
    fsutil::commit_tmp(out, &tmp, to)
}
