//! The clean copy of a JSON lines file: kept lines byte for byte, in order.

use std::{
    fs::File,
    io::{BufWriter, Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
};

use crate::{
    error::{Error, Result},
    fsutil,
    sample::Sample,
    sink::Sink,
    source::jsonl::LineRecord,
};

/// Writes a clean JSON lines file.
pub struct JsonlSink {
    source_path: PathBuf,
    path: PathBuf,
    tmp: PathBuf,
    out: Option<BufWriter<File>>,
}

impl JsonlSink {
    /// A sink writing the clean copy of `source_path` to `path`.
    ///
    /// # Errors
    /// The temporary file cannot be created.
    pub fn create(source_path: &Path, path: &Path) -> Result<JsonlSink> {
        let (tmp, file) = fsutil::create_tmp(path)?;
        Ok(JsonlSink {
            source_path: source_path.to_owned(),
            path: path.to_owned(),
            tmp,
            out: Some(BufWriter::with_capacity(1 << 20, file)),
        })
    }
}

impl Sink for JsonlSink {
    type Record = LineRecord;

    fn keep(&mut self, sample: &Sample<LineRecord>) -> Result<()> {
        let Some(out) = self.out.as_mut() else {
            return Ok(());
        };
        match &sample.record {
            LineRecord::Inline(bytes) => out.write_all(bytes).map_err(|e| Error::io(&self.tmp, e)),
            LineRecord::Skipped { offset, len } => {
                let mut source =
                    File::open(&self.source_path).map_err(|e| Error::io(&self.source_path, e))?;
                source
                    .seek(SeekFrom::Start(*offset))
                    .map_err(|e| Error::io(&self.source_path, e))?;
                let copied = std::io::copy(&mut source.take(*len), out)
                    .map_err(|e| Error::io(&self.tmp, e))?;
                if copied != *len {
                    return Err(Error::Input {
                        input: self.source_path.display().to_string(),
                        reason: format!(
                            "changed while scanning: line at {offset} expected {len} bytes, got {copied}"
                        ),
                    });
                }
                Ok(())
            }
        }
    }

    fn remove(&mut self, _sample: &Sample<LineRecord>) -> Result<()> {
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        let Some(out) = self.out.take() else {
            return Ok(());
        };
        let file = out
            .into_inner()
            .map_err(|e| Error::io(&self.tmp, e.into_error()))?;
        fsutil::commit_tmp(file, &self.tmp, &self.path)
    }
}

impl Drop for JsonlSink {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
