//! WebDataset tar shards, as img2dataset writes them: members `KEY.jpg`
//! (or `.png`, `.webp`, ...), `KEY.txt` (the caption) and `KEY.json` (url,
//! caption, key, status, width, height, sha256, ...), grouped into samples by
//! key the way webdataset's `group_by_keys` does (consecutive members with
//! the same key form one sample).
//!
//! Members that are not regular files, or whose names have no key, are
//! handed out as passthrough samples so the clean copy keeps them.

use std::{io::Read, path::PathBuf};

use crate::{
    ReadConfig,
    error::{Error, Result},
    sample::{Location, Problem, Sample},
    source::{IMAGE_SUFFIXES, Source, TEXT_SUFFIXES, read_json_sidecar},
    tar::{Data, Member, TarReader, key_and_suffix},
};

/// The record of a tar sample: its members, to be written back verbatim.
pub struct TarRecord {
    pub(crate) members: Vec<TarMember>,
}

/// One member of a sample, header blocks verbatim.
pub(crate) struct TarMember {
    pub(crate) header: Vec<u8>,
    pub(crate) size: u64,
    pub(crate) data: MemberData,
}

/// Where a member's data is.
pub(crate) enum MemberData {
    /// Held here.
    Inline(Vec<u8>),
    /// Moved into the sample's `images[idx]`.
    Image(usize),
    /// Too large to hold: at this offset of the shard file.
    Skipped { offset: u64 },
}

/// Reads samples from a tar stream.
pub struct WebDatasetSource<R> {
    tar: TarReader<R>,
    path: PathBuf,
    config: ReadConfig,
    pending: Option<Member>,
}

impl<R: Read + Send> WebDatasetSource<R> {
    /// A source over `reader`; `path` names the shard in errors.
    pub fn new(reader: R, path: PathBuf, config: ReadConfig) -> WebDatasetSource<R> {
        WebDatasetSource {
            tar: TarReader::new(reader, config.max_member_bytes),
            path,
            config,
            pending: None,
        }
    }

    fn next_member(&mut self) -> Result<Option<Member>> {
        if let Some(member) = self.pending.take() {
            return Ok(Some(member));
        }
        self.tar.next_member().map_err(|e| match e.io {
            Some(io) => Error::io(&self.path, io),
            None => Error::Tar {
                path: self.path.clone(),
                offset: e.offset,
                reason: e.reason,
            },
        })
    }
}

impl<R: Read + Send> Source for WebDatasetSource<R> {
    type Record = TarRecord;

    fn next_sample(&mut self) -> Result<Option<Sample<TarRecord>>> {
        let Some(first) = self.next_member()? else {
            return Ok(None);
        };
        let key = if first.is_file() {
            key_and_suffix(&first.name).map(|(key, _)| key.to_owned())
        } else {
            None
        };
        let location = Location {
            key: key.clone(),
            row: None,
            offset: Some(first.offset),
        };
        let mut sample = Sample::new(
            location,
            TarRecord {
                members: Vec::new(),
            },
        );
        let Some(key) = key else {
            sample.passthrough = true;
            push_member(&mut sample, first, "", &self.config);
            return Ok(Some(sample));
        };
        let suffix = key_and_suffix(&first.name)
            .map(|(_, s)| s)
            .unwrap_or_default();
        push_member(&mut sample, first, &suffix, &self.config);
        while let Some(member) = self.next_member()? {
            let same_key = member.is_file()
                && key_and_suffix(&member.name).is_some_and(|(member_key, _)| member_key == key);
            if !same_key {
                self.pending = Some(member);
                break;
            }
            let suffix = key_and_suffix(&member.name)
                .map(|(_, s)| s)
                .unwrap_or_default();
            push_member(&mut sample, member, &suffix, &self.config);
        }
        Ok(Some(sample))
    }
}

/// Adds a member to the sample: images move into `images`, captions and
/// JSON sidecars are read, everything is kept for the verbatim copy.
fn push_member(sample: &mut Sample<TarRecord>, member: Member, suffix: &str, config: &ReadConfig) {
    let last = suffix.rsplit('.').next().unwrap_or(suffix);
    let data = match member.data {
        Data::Skipped { offset } => {
            if IMAGE_SUFFIXES.contains(&last) || TEXT_SUFFIXES.contains(&last) || last == "json" {
                sample.problems.push(Problem {
                    what: suffix.to_owned(),
                    reason: format!(
                        "member of {} bytes is over the {}-byte limit",
                        member.size, config.max_member_bytes
                    ),
                });
            }
            MemberData::Skipped { offset }
        }
        Data::Inline(bytes) if !sample.passthrough && IMAGE_SUFFIXES.contains(&last) => {
            sample.images.push(bytes);
            MemberData::Image(sample.images.len() - 1)
        }
        Data::Inline(bytes) if !sample.passthrough && TEXT_SUFFIXES.contains(&last) => {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            if !text.trim().is_empty() && !sample.texts.contains(&text) {
                sample.texts.push(text);
            }
            MemberData::Inline(bytes)
        }
        Data::Inline(bytes) if !sample.passthrough && last == "json" => {
            match read_json_sidecar(&bytes, &config.url_field, &config.text_fields) {
                Ok((url, texts)) => {
                    if url.is_some() {
                        sample.url = url;
                    }
                    for text in texts {
                        if !sample.texts.contains(&text) {
                            sample.texts.push(text);
                        }
                    }
                }
                Err(reason) => sample.problems.push(Problem {
                    what: suffix.to_owned(),
                    reason,
                }),
            }
            MemberData::Inline(bytes)
        }
        Data::Inline(bytes) => MemberData::Inline(bytes),
    };
    sample.record.members.push(TarMember {
        header: member.header,
        size: member.size,
        data,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = ::tar::Builder::new(Vec::new());
        for (name, data) in members {
            let mut header = ::tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            builder.append_data(&mut header, name, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn samples(bytes: &[u8]) -> Vec<Sample<TarRecord>> {
        let mut source = WebDatasetSource::new(bytes, "t.tar".into(), ReadConfig::default());
        let mut res = Vec::new();
        while let Some(sample) = source.next_sample().unwrap() {
            res.push(sample);
        }
        res
    }

    #[test]
    fn members_group_by_key_as_img2dataset_writes_them() {
        let json = br#"{"url": "https://example.com/a.jpg", "caption": "a red square", "key": "000000000", "status": "success"}"#;
        let bytes = tar(&[
            ("000000000.jpg", b"JPEG0"),
            ("000000000.txt", b"a red square"),
            ("000000000.json", json),
            ("000000001.jpg", b"JPEG1"),
            ("000000001.json", b"not json"),
        ]);
        let samples = samples(&bytes);
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].location.key.as_deref(), Some("000000000"));
        assert_eq!(samples[0].location.offset, Some(0));
        assert_eq!(samples[0].images, [b"JPEG0".to_vec()]);
        assert_eq!(samples[0].texts, ["a red square"]);
        assert_eq!(samples[0].url.as_deref(), Some("https://example.com/a.jpg"));
        assert_eq!(samples[1].location.offset, Some(3 * 1024));
        assert_eq!(samples[1].problems.len(), 1);
        assert_eq!(samples[1].problems[0].what, "json");
    }
}
