//! Directories of images with optional sidecar files: one shard is one
//! directory's own files (subdirectories are shards of their own), grouped
//! into samples by key as in WebDataset (`photo.jpg`, `photo.txt` and
//! `photo.json` form the sample `photo`). img2dataset's `files` layout
//! (`00000/KEY.jpg`, `KEY.txt`, `KEY.json`) is this.
//!
//! Files are read one sample at a time; an image over the size limit is a
//! problem of its sample, not read.

use std::{
    fs,
    path::{Path, PathBuf},
};

use crate::{
    ReadConfig,
    error::{Error, Result},
    sample::{Location, Problem, Sample},
    source::{IMAGE_SUFFIXES, Source, TEXT_SUFFIXES, read_json_sidecar},
    tar::key_and_suffix,
};

/// The record of a directory sample: its files' names.
pub struct DirRecord {
    pub(crate) files: Vec<String>,
}

/// Reads samples from one directory.
pub struct DirSource {
    dir: PathBuf,
    config: ReadConfig,
    names: std::vec::IntoIter<String>,
    pending: Option<String>,
}

impl DirSource {
    /// Lists the regular files of `dir` (sorted by name; hidden files and
    /// a scan's temporary files skipped).
    ///
    /// # Errors
    /// The directory cannot be listed.
    pub fn open(dir: &Path, config: ReadConfig) -> Result<DirSource> {
        Ok(DirSource {
            dir: dir.to_owned(),
            config,
            names: list_files(dir)?.into_iter(),
            pending: None,
        })
    }

    fn next_name(&mut self) -> Option<String> {
        self.pending.take().or_else(|| self.names.next())
    }
}

/// The regular files of `dir`, sorted, without hidden files.
pub(crate) fn list_files(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let file_type = entry.file_type().map_err(|e| Error::io(entry.path(), e))?;
        let is_file = file_type.is_file() || (file_type.is_symlink() && entry.path().is_file());
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            return Err(Error::Input {
                input: entry.path().display().to_string(),
                reason: "file name: expected UTF-8".to_owned(),
            });
        };
        if is_file && !name.starts_with('.') {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

impl Source for DirSource {
    type Record = DirRecord;

    fn next_sample(&mut self) -> Result<Option<Sample<DirRecord>>> {
        let Some(first) = self.next_name() else {
            return Ok(None);
        };
        let Some((key, _)) = key_and_suffix(&first) else {
            let mut sample = Sample::new(Location::default(), DirRecord { files: vec![first] });
            sample.passthrough = true;
            return Ok(Some(sample));
        };
        let key = key.to_owned();
        let mut files = vec![first];
        while let Some(name) = self.next_name() {
            if key_and_suffix(&name).is_some_and(|(k, _)| k == key) {
                files.push(name);
            } else {
                self.pending = Some(name);
                break;
            }
        }
        let location = Location {
            key: Some(key),
            row: None,
            offset: None,
        };
        let mut sample = Sample::new(location, DirRecord { files: Vec::new() });
        for name in files {
            let suffix = key_and_suffix(&name).map(|(_, s)| s).unwrap_or_default();
            let last = suffix.rsplit('.').next().unwrap_or(&suffix).to_owned();
            let path = self.dir.join(&name);
            let wanted = IMAGE_SUFFIXES.contains(&last.as_str())
                || TEXT_SUFFIXES.contains(&last.as_str())
                || last == "json";
            if wanted {
                let len = fs::metadata(&path).map_err(|e| Error::io(&path, e))?.len();
                if len > self.config.max_member_bytes {
                    sample.problems.push(Problem {
                        what: suffix.clone(),
                        reason: format!(
                            "file of {len} bytes is over the {}-byte limit",
                            self.config.max_member_bytes
                        ),
                    });
                } else {
                    let bytes = fs::read(&path).map_err(|e| Error::io(&path, e))?;
                    if IMAGE_SUFFIXES.contains(&last.as_str()) {
                        sample.images.push(bytes);
                    } else if last == "json" {
                        match read_json_sidecar(
                            &bytes,
                            &self.config.url_field,
                            &self.config.text_fields,
                        ) {
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
                                what: suffix.clone(),
                                reason,
                            }),
                        }
                    } else {
                        let text = String::from_utf8_lossy(&bytes).into_owned();
                        if !text.trim().is_empty() && !sample.texts.contains(&text) {
                            sample.texts.push(text);
                        }
                    }
                }
            }
            sample.record.files.push(name);
        }
        Ok(Some(sample))
    }
}
