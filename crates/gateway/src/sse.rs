//! Server-sent events: an incremental parser for upstream streams and the
//! writer for the events the gateway sends.
//!
//! The parser follows the WHATWG event-stream rules that the OpenAI and
//! Anthropic SDKs implement: lines end in `\n`, `\r\n` or `\r`; a blank line
//! dispatches the event; `event:` names it, `data:` lines are joined with
//! `\n`, a leading space after the colon is dropped, and comment lines
//! (`:`) are ignored. It buffers at most one incomplete event, bounded by
//! `max_event_bytes`, so a hostile upstream cannot grow memory without end.

use bytes::{Bytes, BytesMut};

/// One dispatched event.
#[derive(Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

impl std::fmt::Debug for SseEvent {
    // Data carries model output: content, so only its length is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseEvent")
            .field("event", &self.event)
            .field("data_len", &self.data.len())
            .finish()
    }
}

/// An event larger than the parser's limit.
#[derive(Debug, PartialEq, Eq)]
pub struct EventTooLarge;

/// Incremental parser: feed bytes as they arrive, collect complete events.
pub struct SseParser {
    buf: BytesMut,
    max_event_bytes: usize,
    event: Option<String>,
    data: String,
    has_data: bool,
}

impl SseParser {
    /// A parser that refuses events (and lines) longer than `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> SseParser {
        SseParser {
            buf: BytesMut::new(),
            max_event_bytes,
            event: None,
            data: String::new(),
            has_data: false,
        }
    }

    /// Feeds a chunk; complete events are appended to `out`.
    ///
    /// # Errors
    /// [`EventTooLarge`] when an event or a line exceeds the limit; the
    /// stream should then be treated as broken.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), EventTooLarge> {
        self.buf.extend_from_slice(chunk);
        while let Some(pos) = self.buf.iter().position(|&b| b == b'\n' || b == b'\r') {
            // A lone '\r' at the end of the buffer may be the first half of "\r\n".
            let skip = if self.buf[pos] == b'\r' {
                if pos + 1 == self.buf.len() {
                    break;
                }
                if self.buf[pos + 1] == b'\n' { 2 } else { 1 }
            } else {
                1
            };
            let line = self.buf.split_to(pos);
            let _ = self.buf.split_to(skip);
            self.line(&line, out);
        }
        if self.buf.len() + self.data.len() > self.max_event_bytes {
            return Err(EventTooLarge);
        }
        Ok(())
    }

    /// Ends the stream: a final event without its blank line is dispatched,
    /// as the SDKs do.
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) {
        if !self.buf.is_empty() {
            let line = self.buf.split();
            self.line(&line, out);
        }
        self.dispatch(out);
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line[0] == b':' {
            return;
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.find(':') {
            Some(idx) => {
                let value = &line[idx + 1..];
                (&line[..idx], value.strip_prefix(' ').unwrap_or(value))
            }
            None => (&line[..], ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        if !self.has_data && self.event.is_none() {
            return;
        }
        out.push(SseEvent {
            event: self.event.take(),
            data: std::mem::take(&mut self.data),
        });
        self.has_data = false;
    }
}

/// Writes one event: `event: NAME` (when named) and one `data:` line.
/// `data` must not contain newlines (compact JSON never does).
pub fn write_event(event: Option<&str>, data: &str) -> Bytes {
    let mut res = String::with_capacity(data.len() + 32);
    if let Some(name) = event {
        res.push_str("event: ");
        res.push_str(name);
        res.push('\n');
    }
    res.push_str("data: ");
    res.push_str(data);
    res.push_str("\n\n");
    Bytes::from(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in_pieces(input: &[u8], piece: usize) -> Vec<SseEvent> {
        let mut parser = SseParser::new(1 << 20);
        let mut out = Vec::new();
        for chunk in input.chunks(piece.max(1)) {
            parser.feed(chunk, &mut out).unwrap();
        }
        parser.finish(&mut out);
        out
    }

    #[test]
    fn parses_named_events_with_any_line_ending_and_any_chunking() {
        let input = b": comment\nevent: message_start\ndata: {\"a\":1}\n\nevent: ping\r\ndata:{\"b\":2}\r\n\r\ndata: x\rdata: y\r\rdata: [DONE]";
        for piece in 1..input.len() {
            let events = parse_in_pieces(input, piece);
            assert_eq!(events.len(), 4, "piece {piece}");
            assert_eq!(events[0].event.as_deref(), Some("message_start"));
            assert_eq!(events[0].data, "{\"a\":1}");
            assert_eq!(events[1].event.as_deref(), Some("ping"));
            assert_eq!(events[1].data, "{\"b\":2}");
            assert_eq!(events[2].event, None);
            assert_eq!(events[2].data, "x\ny");
            assert_eq!(events[3].data, "[DONE]");
        }
    }

    #[test]
    fn oversized_event_is_an_error_not_unbounded_memory() {
        let mut parser = SseParser::new(64);
        let mut out = Vec::new();
        let err = parser.feed(&[b'a'; 100], &mut out);
        assert_eq!(err, Err(EventTooLarge));
    }

    #[test]
    fn written_events_parse_back() {
        let bytes = write_event(Some("content_block_stop"), "{\"index\":0}");
        let events = parse_in_pieces(&bytes, 3);
        assert_eq!(events[0].event.as_deref(), Some("content_block_stop"));
        assert_eq!(events[0].data, "{\"index\":0}");
        assert_eq!(
            format!("{:?}", events[0]),
            "SseEvent { event: Some(\"content_block_stop\"), data_len: 11 }"
        );
    }
}
