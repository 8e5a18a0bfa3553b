//! JSON lines text corpora: one JSON object per line, the text to check in a
//! configurable field (`text` by default), the URL in `url` if present.
//!
//! A line that is not a JSON object is a problem of its sample (the policy's
//! fail mode decides whether it is kept); a line over the size limit is not
//! held in memory but located, so a kept one can be copied from the file.

use std::{io::BufRead, path::PathBuf};

use crate::{
    ReadConfig,
    error::{Error, Result},
    sample::{Location, Problem, Sample},
    source::{Source, read_json_sidecar},
};

/// The record of a line: its bytes (with the newline), or where it lies.
pub enum LineRecord {
    /// The line, as read.
    Inline(Vec<u8>),
    /// Over the limit: `len` bytes at `offset` of the file.
    Skipped {
        /// Byte offset of the line.
        offset: u64,
        /// Length including the newline.
        len: u64,
    },
}

/// Reads samples from a JSON lines stream.
pub struct JsonlSource<R> {
    reader: R,
    path: PathBuf,
    config: ReadConfig,
    pos: u64,
    row: u64,
}

impl<R: BufRead + Send> JsonlSource<R> {
    /// A source over `reader`; `path` names the file in errors.
    pub fn new(reader: R, path: PathBuf, config: ReadConfig) -> JsonlSource<R> {
        JsonlSource {
            reader,
            path,
            config,
            pos: 0,
            row: 0,
        }
    }

    /// Reads one line of at most `limit` bytes; longer lines are skipped to
    /// their end and reported by length.
    fn read_line(&mut self) -> Result<Option<Result<Vec<u8>, u64>>> {
        let mut line = Vec::new();
        let mut total: u64 = 0;
        let mut over = false;
        loop {
            let buf = self
                .reader
                .fill_buf()
                .map_err(|e| Error::io(&self.path, e))?;
            if buf.is_empty() {
                break;
            }
            let (chunk, found) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (&buf[..=i], true),
                None => (buf, false),
            };
            let n = chunk.len();
            total += n as u64;
            if !over && total <= self.config.max_member_bytes {
                line.extend_from_slice(chunk);
            } else if !over {
                over = true;
                line = Vec::new();
            }
            self.reader.consume(n);
            if found {
                break;
            }
        }
        if total == 0 {
            return Ok(None);
        }
        Ok(Some(if over { Err(total) } else { Ok(line) }))
    }
}

impl<R: BufRead + Send> Source for JsonlSource<R> {
    type Record = LineRecord;

    fn next_sample(&mut self) -> Result<Option<Sample<LineRecord>>> {
        let offset = self.pos;
        let Some(line) = self.read_line()? else {
            return Ok(None);
        };
        let location = Location {
            key: None,
            row: Some(self.row),
            offset: Some(offset),
        };
        self.row += 1;
        let res = match line {
            Err(len) => {
                self.pos += len;
                let mut sample = Sample::new(location, LineRecord::Skipped { offset, len });
                sample.problems.push(Problem {
                    what: "line".to_owned(),
                    reason: format!(
                        "line of {len} bytes is over the {}-byte limit",
                        self.config.max_member_bytes
                    ),
                });
                sample
            }
            Ok(bytes) => {
                self.pos += bytes.len() as u64;
                let body = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
                let body = body.strip_suffix(b"\r").unwrap_or(body);
                if body.iter().all(u8::is_ascii_whitespace) {
                    let mut sample = Sample::new(location, LineRecord::Inline(bytes));
                    sample.passthrough = true;
                    return Ok(Some(sample));
                }
                let parsed =
                    read_json_sidecar(body, &self.config.url_field, &self.config.text_fields);
                let mut sample = Sample::new(location, LineRecord::Inline(bytes));
                match parsed {
                    Ok((url, texts)) => {
                        sample.url = url;
                        sample.texts = texts;
                    }
                    Err(reason) => sample.problems.push(Problem {
                        what: "line".to_owned(),
                        reason,
                    }),
                }
                sample
            }
        };
        Ok(Some(res))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_carry_row_offset_and_text() {
        let input = b"{\"text\": \"hello\", \"url\": \"https://example.org/x\"}\nnot json\n\n{\"text\": \"bye\"}";
        let mut source = JsonlSource::new(&input[..], "c.jsonl".into(), ReadConfig::default());
        let mut samples = Vec::new();
        while let Some(sample) = source.next_sample().unwrap() {
            samples.push(sample);
        }
        assert_eq!(samples.len(), 4);
        assert_eq!(samples[0].texts, ["hello"]);
        assert_eq!(samples[0].url.as_deref(), Some("https://example.org/x"));
        assert_eq!(samples[1].location.offset, Some(50));
        assert_eq!(samples[1].problems.len(), 1);
        assert!(samples[2].passthrough);
        assert_eq!(samples[3].location.row, Some(3));
    }
}
