//! Classifying a stream of input lines (`childsafe classify` on stdin):
//! bounded line reading, lossy UTF-8 decoding that is reported, per-line
//! errors that do not stop the stream, and one [`LineOutcome`] per line.
//!
//! A line longer than the limit is skipped without being held in memory and
//! reported as an error; the rest of the stream goes on.

use std::io::BufRead;

use childsafe_core::{Decision, Surface};
use childsafe_text::input::{InputContent, InputItem, parse_line};

use crate::{Content, Engine};

/// What happened to one line.
#[derive(Debug)]
pub struct LineOutcome {
    /// 1-based line number.
    pub line: usize,
    /// The item's `id`, if it had one.
    pub id: Option<String>,
    /// True if the line was not valid UTF-8 and was decoded lossily
    /// (invalid bytes replaced with U+FFFD).
    pub lossy: bool,
    /// The decision, or why there is none.
    pub result: Result<Decision, String>,
}

/// Totals for a stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamSummary {
    /// Lines judged.
    pub judged: usize,
    /// Lines with an error.
    pub errors: usize,
    /// Lines decoded lossily.
    pub lossy: usize,
    /// Decisions that withheld the content.
    pub withheld: usize,
    /// Blank lines skipped.
    pub blank: usize,
}

/// Reads lines of at most `max_bytes` bytes (without the newline).
pub struct LineReader<R> {
    reader: R,
    max_bytes: usize,
    line: usize,
    buf: Vec<u8>,
}

/// One raw line.
pub enum RawLine {
    /// A line, decoded.
    Line {
        /// 1-based number.
        number: usize,
        /// The text, lossily decoded if it was not UTF-8.
        text: String,
        /// Whether decoding was lossy.
        lossy: bool,
    },
    /// A line over the limit, skipped.
    TooLong {
        /// 1-based number.
        number: usize,
        /// Its length in bytes.
        bytes: usize,
    },
}

impl<R: BufRead> LineReader<R> {
    /// A reader with a line limit.
    pub fn new(reader: R, max_bytes: usize) -> LineReader<R> {
        LineReader {
            reader,
            max_bytes,
            line: 0,
            buf: Vec::new(),
        }
    }

    /// The next line, or `None` at the end.
    ///
    /// # Errors
    /// I/O errors from the underlying reader.
    pub fn next_line(&mut self) -> std::io::Result<Option<RawLine>> {
        self.buf.clear();
        let mut total = 0usize;
        let mut saw_any = false;
        loop {
            let available = self.reader.fill_buf()?;
            if available.is_empty() {
                break;
            }
            saw_any = true;
            let (chunk, found_newline) = match available.iter().position(|b| *b == b'\n') {
                Some(at) => (&available[..at], true),
                None => (available, false),
            };
            total += chunk.len();
            if self.buf.len() + chunk.len() <= self.max_bytes {
                self.buf.extend_from_slice(chunk);
            }
            let consumed = chunk.len() + usize::from(found_newline);
            self.reader.consume(consumed);
            if found_newline {
                break;
            }
        }
        if !saw_any {
            return Ok(None);
        }
        self.line += 1;
        if total > self.max_bytes {
            return Ok(Some(RawLine::TooLong {
                number: self.line,
                bytes: total,
            }));
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        let (text, lossy) = match std::str::from_utf8(&self.buf) {
            Ok(text) => (text.to_owned(), false),
            Err(_) => (String::from_utf8_lossy(&self.buf).into_owned(), true),
        };
        Ok(Some(RawLine::Line {
            number: self.line,
            text,
            lossy,
        }))
    }
}

impl Engine {
    /// Judges one parsed input item with the built-in detectors.
    pub fn check_item(&self, surface: Surface, item: &InputItem) -> Decision {
        match &item.content {
            InputContent::Text(text) => self.check_text(surface, text),
            InputContent::Conversation(turns) => {
                self.check_conversation_builtin(surface, turns, None)
            }
        }
    }

    /// Judges one parsed input item with every source, remote ones included.
    pub async fn check_item_remote(&self, surface: Surface, item: &InputItem) -> Decision {
        match &item.content {
            InputContent::Text(text) => self.check(surface, Content::Text(text)).await,
            InputContent::Conversation(turns) => {
                self.check(surface, Content::Conversation(turns)).await
            }
        }
    }
}

/// Classifies every line of `reader` with `judge` (sync or a blocking
/// wrapper around the async path), calling `sink` once per non-blank line.
///
/// # Errors
/// I/O errors reading the stream (per-line problems are outcomes, not errors).
pub fn classify_stream<R: BufRead>(
    reader: R,
    max_line_bytes: usize,
    mut judge: impl FnMut(&InputItem) -> Decision,
    mut sink: impl FnMut(LineOutcome) -> std::io::Result<()>,
) -> std::io::Result<StreamSummary> {
    let mut lines = LineReader::new(reader, max_line_bytes);
    let mut summary = StreamSummary::default();
    while let Some(raw) = lines.next_line()? {
        let outcome = match raw {
            RawLine::TooLong { number, bytes } => LineOutcome {
                line: number,
                id: None,
                lossy: false,
                result: Err(format!(
                    "line: expected at most {max_line_bytes} bytes, got {bytes}"
                )),
            },
            RawLine::Line { text, .. } if text.trim().is_empty() => {
                summary.blank += 1;
                continue;
            }
            RawLine::Line {
                number,
                text,
                lossy,
            } => match parse_line(&text) {
                Ok(item) => {
                    let decision = judge(&item);
                    LineOutcome {
                        line: number,
                        id: item.id,
                        lossy,
                        result: Ok(decision),
                    }
                }
                Err(err) => LineOutcome {
                    line: number,
                    id: None,
                    lossy,
                    result: Err(err.to_string()),
                },
            },
        };
        summary.lossy += usize::from(outcome.lossy);
        match &outcome.result {
            Ok(decision) => {
                summary.judged += 1;
                summary.withheld += usize::from(decision.action.withholds());
            }
            Err(_) => summary.errors += 1,
        }
        sink(outcome)?;
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_skipped_and_counted_and_the_rest_read() {
        let data = format!("short\n{}\nafter\n", "x".repeat(100));
        let mut reader = LineReader::new(data.as_bytes(), 10);
        assert!(matches!(
            reader.next_line().unwrap(),
            Some(RawLine::Line { number: 1, .. })
        ));
        assert!(matches!(
            reader.next_line().unwrap(),
            Some(RawLine::TooLong {
                number: 2,
                bytes: 100
            })
        ));
        let Some(RawLine::Line {
            number: 3,
            text,
            lossy: false,
        }) = reader.next_line().unwrap()
        else {
            panic!("third line expected");
        };
        assert_eq!(text, "after");
        assert!(reader.next_line().unwrap().is_none());
    }

    #[test]
    fn invalid_utf8_is_decoded_lossily_and_flagged() {
        let data: &[u8] = b"ok\n\xff\xfe bad\r\n";
        let mut reader = LineReader::new(data, 100);
        reader.next_line().unwrap();
        let Some(RawLine::Line {
            text, lossy: true, ..
        }) = reader.next_line().unwrap()
        else {
            panic!("lossy line expected");
        };
        assert_eq!(text, "\u{fffd}\u{fffd} bad");
    }
}
