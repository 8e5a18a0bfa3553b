//! Parquet shards, as img2dataset writes them (`key`, `url`, `caption`,
//! `status`, ... and the image bytes in a binary column such as `jpg`) and as
//! Hugging Face `datasets` writes them (an `image` struct with `bytes` and
//! `path`; text columns). Files without an image column are scanned for
//! their URLs and texts alone.
//!
//! Rows are read one row group at a time in record batches of a bounded
//! number of rows, so memory follows the batch, not the file.

use std::{
    fs::File,
    path::{Path, PathBuf},
    sync::Arc,
};

use arrow_array::{Array, RecordBatch, cast::AsArray};
use arrow_schema::{DataType, SchemaRef};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use crate::{
    ReadConfig,
    error::{Error, Result},
    sample::{Location, Problem, Sample},
    source::Source,
};

/// Rows per record batch. Image rows are large (tens to hundreds of KB), so
/// a small batch bounds memory; Parquet pages are decoded incrementally.
const BATCH_ROWS: usize = 64;

/// The record of a Parquet row: its batch and position, so the sink can
/// write the batch back without the removed rows.
pub struct ParquetRecord {
    pub(crate) batch: Arc<RecordBatch>,
    /// The last row of its batch.
    pub(crate) batch_end: bool,
    /// The last row of its row group.
    pub(crate) row_group_end: bool,
}

/// Which columns hold what.
#[derive(Clone, Debug)]
struct Columns {
    key: Option<usize>,
    url: Option<usize>,
    texts: Vec<usize>,
    image: Option<(usize, Option<usize>)>,
}

/// Reads samples from a Parquet file.
pub struct ParquetSource {
    path: PathBuf,
    file: File,
    schema: SchemaRef,
    columns: Columns,
    n_row_groups: usize,
    next_row_group: usize,
    reader: Option<ParquetRecordBatchReader>,
    batch: Option<Arc<RecordBatch>>,
    pending: Option<Arc<RecordBatch>>,
    row_in_batch: usize,
    row: u64,
    group_end_pending: bool,
    max_image_bytes: u64,
}

impl ParquetSource {
    /// Opens `path` and finds its columns.
    ///
    /// # Errors
    /// The file cannot be opened or is not Parquet; a configured column is missing.
    pub fn open(path: &Path, config: &ReadConfig) -> Result<ParquetSource> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(
            file.try_clone().map_err(|e| Error::io(path, e))?,
        )
        .map_err(|e| Error::parquet(path, e))?;
        let schema = Arc::clone(builder.schema());
        let columns =
            find_columns(&schema, config).map_err(|reason| Error::parquet(path, reason))?;
        Ok(ParquetSource {
            path: path.to_owned(),
            file,
            n_row_groups: builder.metadata().num_row_groups(),
            schema,
            columns,
            next_row_group: 0,
            reader: None,
            batch: None,
            pending: None,
            row_in_batch: 0,
            row: 0,
            group_end_pending: false,
            max_image_bytes: config.max_member_bytes,
        })
    }

    /// The file's Arrow schema, with its key-value metadata.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Reads the next batch, opening the next row group when one ends.
    /// Returns the batch and whether it is the last of its row group.
    fn next_batch(&mut self) -> Result<Option<(Arc<RecordBatch>, bool)>> {
        loop {
            if self.reader.is_none() {
                if self.next_row_group >= self.n_row_groups {
                    return Ok(None);
                }
                let file = self
                    .file
                    .try_clone()
                    .map_err(|e| Error::io(&self.path, e))?;
                let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                    .and_then(|b| {
                        b.with_batch_size(BATCH_ROWS)
                            .with_row_groups(vec![self.next_row_group])
                            .build()
                    })
                    .map_err(|e| {
                        Error::parquet(
                            &self.path,
                            format!("row group {}: {e}", self.next_row_group),
                        )
                    })?;
                self.next_row_group += 1;
                self.reader = Some(reader);
                self.pending = None;
            }
            let current = match self.pending.take() {
                Some(batch) => Some(batch),
                None => self.read_one()?,
            };
            let Some(current) = current else {
                self.reader = None;
                continue;
            };
            // Look one batch ahead to know whether this one ends the row group.
            let next = self.read_one()?;
            let ends_group = next.is_none();
            self.pending = next;
            if ends_group {
                self.reader = None;
            }
            if current.num_rows() == 0 {
                continue;
            }
            return Ok(Some((current, ends_group)));
        }
    }

    fn read_one(&mut self) -> Result<Option<Arc<RecordBatch>>> {
        let Some(reader) = self.reader.as_mut() else {
            return Ok(None);
        };
        match reader.next() {
            None => Ok(None),
            Some(Ok(batch)) => Ok(Some(Arc::new(batch))),
            Some(Err(e)) => Err(Error::parquet(
                &self.path,
                format!("row group {}: {e}", self.next_row_group.saturating_sub(1)),
            )),
        }
    }
}

impl Source for ParquetSource {
    type Record = ParquetRecord;

    fn next_sample(&mut self) -> Result<Option<Sample<ParquetRecord>>> {
        let needs_batch = self
            .batch
            .as_ref()
            .is_none_or(|batch| self.row_in_batch >= batch.num_rows());
        if needs_batch {
            self.batch = None;
            self.row_in_batch = 0;
            match self.next_batch()? {
                Some((batch, ends_group)) => {
                    self.batch = Some(batch);
                    self.group_end_pending = ends_group;
                }
                None => return Ok(None),
            }
        }
        let Some(batch) = self.batch.clone() else {
            return Ok(None);
        };
        let row = self.row_in_batch;
        self.row_in_batch += 1;
        let batch_end = self.row_in_batch == batch.num_rows();
        let location = Location {
            key: self
                .columns
                .key
                .and_then(|idx| str_at(batch.column(idx).as_ref(), row))
                .map(str::to_owned),
            row: Some(self.row),
            offset: None,
        };
        self.row += 1;
        let record = ParquetRecord {
            batch: Arc::clone(&batch),
            batch_end,
            row_group_end: batch_end && self.group_end_pending,
        };
        let mut sample = Sample::new(location, record);
        if let Some(idx) = self.columns.url {
            sample.url = str_at(batch.column(idx).as_ref(), row).map(str::to_owned);
        }
        for &idx in &self.columns.texts {
            if let Some(text) = str_at(batch.column(idx).as_ref(), row)
                && !text.trim().is_empty()
                && !sample.texts.iter().any(|t| t == text)
            {
                sample.texts.push(text.to_owned());
            }
        }
        if let Some((idx, field)) = self.columns.image {
            let column = batch.column(idx);
            let array: &dyn Array = match field {
                Some(field_idx) => match column.as_struct_opt() {
                    Some(parent) if parent.is_valid(row) => parent.column(field_idx).as_ref(),
                    _ => column.as_ref(),
                },
                None => column.as_ref(),
            };
            let null_struct = field.is_some() && column.is_null(row);
            if !null_struct && let Some(bytes) = bytes_at(array, row) {
                if bytes.len() as u64 > self.max_image_bytes {
                    sample.problems.push(Problem {
                        what: self.schema.field(idx).name().clone(),
                        reason: format!(
                            "image of {} bytes is over the {}-byte limit",
                            bytes.len(),
                            self.max_image_bytes
                        ),
                    });
                } else if !bytes.is_empty() {
                    sample.images.push(bytes.to_vec());
                }
            }
        }
        Ok(Some(sample))
    }
}

fn find_columns(schema: &SchemaRef, config: &ReadConfig) -> Result<Columns, String> {
    let find = |name: &str| schema.index_of(name).ok();
    let is_text = |idx: usize| {
        matches!(
            schema.field(idx).data_type(),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        )
    };
    let url = find(&config.url_field)
        .or_else(|| (config.url_field == "url").then(|| find("URL")).flatten())
        .filter(|&idx| is_text(idx));
    let texts = config
        .text_fields
        .iter()
        .filter_map(|name| find(name))
        .filter(|&idx| is_text(idx))
        .collect();
    let key = find("key").filter(|&idx| is_text(idx));
    let image = match &config.image_column {
        Some(name) => {
            let idx = find(name)
                .ok_or_else(|| format!("{name}: expected an image column, got no such column"))?;
            Some(image_column(schema, idx).ok_or_else(|| {
                format!(
                    "{name}: expected binary or a struct with a binary `bytes` field, got {}",
                    schema.field(idx).data_type()
                )
            })?)
        }
        None => ["jpg", "png", "webp", "image", "img"]
            .iter()
            .filter_map(|name| find(name))
            .find_map(|idx| image_column(schema, idx)),
    };
    Ok(Columns {
        key,
        url,
        texts,
        image,
    })
}

/// `(column, Some(field))` for a struct with a binary `bytes` field,
/// `(column, None)` for a binary column.
fn image_column(schema: &SchemaRef, idx: usize) -> Option<(usize, Option<usize>)> {
    let is_binary = |dt: &DataType| {
        matches!(
            dt,
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView
        )
    };
    match schema.field(idx).data_type() {
        dt if is_binary(dt) => Some((idx, None)),
        DataType::Struct(fields) => fields
            .iter()
            .position(|f| f.name() == "bytes" && is_binary(f.data_type()))
            .map(|field_idx| (idx, Some(field_idx))),
        _ => None,
    }
}

/// The string at `row`, for any of Arrow's string layouts.
pub(crate) fn str_at(array: &dyn Array, row: usize) -> Option<&str> {
    if row >= array.len() || array.is_null(row) {
        return None;
    }
    if let Some(a) = array.as_string_opt::<i32>() {
        return Some(a.value(row));
    }
    if let Some(a) = array.as_string_opt::<i64>() {
        return Some(a.value(row));
    }
    array.as_string_view_opt().map(|a| a.value(row))
}

/// The bytes at `row`, for any of Arrow's binary layouts.
fn bytes_at(array: &dyn Array, row: usize) -> Option<&[u8]> {
    if row >= array.len() || array.is_null(row) {
        return None;
    }
    if let Some(a) = array.as_binary_opt::<i32>() {
        return Some(a.value(row));
    }
    if let Some(a) = array.as_binary_opt::<i64>() {
        return Some(a.value(row));
    }
    array.as_binary_view_opt().map(|a| a.value(row))
}
