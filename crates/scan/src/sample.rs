//! A sample as the scanner sees it: what to check (image bytes, texts, the
//! source URL), where it lives, and the format's own record that lets the
//! sink write it back verbatim.
//!
//! A sample holds content, so its `Debug` is written by hand and shows only
//! lengths and the location (DESIGN invariant 1).

use std::fmt;

/// One sample read from a shard, generic over the format's record type.
pub struct Sample<R> {
    /// Where the sample lives in its shard.
    pub location: Location,
    /// Image payloads, in member order (usually one).
    pub images: Vec<Vec<u8>>,
    /// Texts to check: captions and text fields, in member order.
    pub texts: Vec<String>,
    /// The sample's source URL, if the dataset records one.
    pub url: Option<String>,
    /// Parts of the sample that could not be read or parsed (an oversized
    /// member, a sidecar that is not valid JSON, a corrupt row). Names and
    /// reasons only, never content. The policy's fail mode decides what a
    /// sample with problems becomes.
    pub problems: Vec<Problem>,
    /// True for an entry that is not a sample (a directory entry in a tar,
    /// a member without a key): it is copied through unchecked.
    pub passthrough: bool,
    /// The format's record, for the sink.
    pub record: R,
}

/// Where a sample lives: enough to find it again without its content.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Location {
    /// The sample key (WebDataset key, path stem in a directory, `key`
    /// column of a Parquet file).
    pub key: Option<String>,
    /// Row index, for Parquet and JSON lines inputs.
    pub row: Option<u64>,
    /// Byte offset of the sample's first tar header, or of its line.
    pub offset: Option<u64>,
}

/// Something in a sample that could not be read. `what` names the part
/// (`json`, `image`, a column name), `reason` says why without content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The part of the sample, e.g. a member suffix or column name.
    pub what: String,
    /// Why it could not be read.
    pub reason: String,
}

impl<R> Sample<R> {
    /// A sample with nothing in it yet.
    pub fn new(location: Location, record: R) -> Sample<R> {
        Sample {
            location,
            images: Vec::new(),
            texts: Vec::new(),
            url: None,
            problems: Vec::new(),
            passthrough: false,
            record,
        }
    }

    /// Bytes of content held by the sample (for batching by memory).
    pub fn content_bytes(&self) -> usize {
        self.images.iter().map(Vec::len).sum::<usize>()
            + self.texts.iter().map(String::len).sum::<usize>()
    }
}

impl<R> fmt::Debug for Sample<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Lengths only: never image bytes, captions or URLs.
        let image_lens: Vec<usize> = self.images.iter().map(Vec::len).collect();
        let text_lens: Vec<usize> = self.texts.iter().map(String::len).collect();
        f.debug_struct("Sample")
            .field("location", &self.location)
            .field("image_bytes", &image_lens)
            .field("text_bytes", &text_lens)
            .field("has_url", &self.url.is_some())
            .field("problems", &self.problems)
            .field("passthrough", &self.passthrough)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_content() {
        let mut sample = Sample::new(Location::default(), ());
        sample.images.push(b"IMAGE-BYTES-MARKER".to_vec());
        sample.texts.push("CAPTION-MARKER".to_owned());
        sample.url = Some("https://example.com/URL-MARKER".to_owned());
        let shown = format!("{sample:?}");
        assert!(!shown.contains("MARKER"), "{shown}");
        assert!(shown.contains("image_bytes: [18]"), "{shown}");
    }
}
