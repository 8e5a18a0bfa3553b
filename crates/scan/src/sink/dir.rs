//! The clean copy of a directory shard: a mirror of the kept samples' files,
//! hard-linked to the originals where the file system allows (no data is
//! copied), copied otherwise. Each file is first linked or copied under a
//! temporary name, and all are renamed into place at commit.
//!
//! A hard link shares the original's data: editing a file in place in the
//! clean copy edits the original too. Tools that rewrite files (rather than
//! editing in place) are unaffected.

use std::{
    collections::HashSet,
    fs,
    path::{Path, PathBuf},
};

use crate::{
    error::{Error, Result},
    fsutil,
    sample::Sample,
    sink::{Sink, parquet::filter_side_parquet, webdataset::SideFile},
    source::dir::DirRecord,
};

/// Writes a directory mirror.
pub struct DirSink {
    source_dir: PathBuf,
    out_dir: PathBuf,
    staged: Vec<(PathBuf, PathBuf)>,
    removed_keys: HashSet<String>,
    side_files: Vec<SideFile>,
    committed: bool,
}

impl DirSink {
    /// A sink mirroring `source_dir` into `out_dir`.
    ///
    /// # Errors
    /// The output directory cannot be created.
    pub fn create(source_dir: &Path, out_dir: &Path, side_files: Vec<SideFile>) -> Result<DirSink> {
        fsutil::create_dir_all(out_dir)?;
        Ok(DirSink {
            source_dir: source_dir.to_owned(),
            out_dir: out_dir.to_owned(),
            staged: Vec::new(),
            removed_keys: HashSet::new(),
            side_files,
            committed: false,
        })
    }
}

impl Sink for DirSink {
    type Record = DirRecord;

    fn keep(&mut self, sample: &Sample<DirRecord>) -> Result<()> {
        for name in &sample.record.files {
            let from = self.source_dir.join(name);
            let to = self.out_dir.join(name);
            let tmp = fsutil::tmp_path(&to);
            fsutil::remove_if_exists(&tmp)?;
            if fs::hard_link(&from, &tmp).is_err() {
                // Another file system, or links not allowed: copy durably.
                fs::copy(&from, &tmp).map_err(|e| Error::io(&tmp, e))?;
                let file = fs::File::open(&tmp).map_err(|e| Error::io(&tmp, e))?;
                file.sync_all().map_err(|e| Error::io(&tmp, e))?;
            }
            self.staged.push((tmp, to));
        }
        Ok(())
    }

    fn remove(&mut self, sample: &Sample<DirRecord>) -> Result<()> {
        if let Some(key) = &sample.location.key {
            self.removed_keys.insert(key.clone());
        }
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        for (tmp, to) in std::mem::take(&mut self.staged) {
            fs::rename(&tmp, &to).map_err(|e| Error::io(&to, e))?;
        }
        fsutil::sync_dir(&self.out_dir)?;
        for side in std::mem::take(&mut self.side_files) {
            if side.filter_by_key {
                filter_side_parquet(&side.from, &side.to, &self.removed_keys)?;
            } else {
                let bytes = fs::read(&side.from).map_err(|e| Error::io(&side.from, e))?;
                fsutil::write_atomic(&side.to, &bytes)?;
            }
        }
        self.committed = true;
        Ok(())
    }
}

impl Drop for DirSink {
    fn drop(&mut self) {
        if !self.committed {
            for (tmp, _) in &self.staged {
                let _ = fs::remove_file(tmp);
            }
        }
    }
}
