//! Durable file writes: temporary names beside the final one, fsync, rename,
//! fsync of the directory. Every output of a scan goes through here, which
//! is what lets a killed scan leave only complete files under final names.

use std::{
    ffi::OsString,
    fs::{self, File},
    io::Write,
    path::{Path, PathBuf},
};

use crate::error::{Error, Result};

/// Suffix of every temporary file a scan writes.
pub const TMP_SUFFIX: &str = ".childsafe-tmp";

/// The temporary name for `path`: a hidden file in the same directory (so the
/// rename is atomic, and dataset globs such as `*.tar` never match it).
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name = OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(TMP_SUFFIX);
    path.with_file_name(name)
}

/// Creates `dir` and its parents.
///
/// # Errors
/// The directory cannot be created.
pub fn create_dir_all(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))
}

/// Creates (truncating) the temporary file for `path`, creating parent directories.
///
/// # Errors
/// The file cannot be created.
pub fn create_tmp(path: &Path) -> Result<(PathBuf, File)> {
    if let Some(parent) = path.parent() {
        create_dir_all(parent)?;
    }
    let tmp = tmp_path(path);
    let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    Ok((tmp, file))
}

/// Syncs `file` (the temporary for `path`), renames it into place and syncs
/// the directory.
///
/// # Errors
/// Syncing or renaming failed.
pub fn commit_tmp(file: File, tmp: &Path, path: &Path) -> Result<()> {
    file.sync_all().map_err(|e| Error::io(tmp, e))?;
    drop(file);
    rename_durable(tmp, path)
}

/// Renames `from` to `to` and syncs the target directory.
///
/// # Errors
/// Renaming or syncing failed.
pub fn rename_durable(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).map_err(|e| Error::io(to, e))?;
    sync_dir(to.parent().unwrap_or(Path::new(".")))
}

/// Syncs a directory, so that renames into it survive a crash.
///
/// # Errors
/// The directory cannot be opened or synced.
pub fn sync_dir(dir: &Path) -> Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let handle = File::open(dir).map_err(|e| Error::io(dir, e))?;
    handle.sync_all().map_err(|e| Error::io(dir, e))
}

/// Writes `bytes` to `path` through a temporary file: complete or absent.
///
/// # Errors
/// Writing, syncing or renaming failed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let (tmp, mut file) = create_tmp(path)?;
    file.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
    commit_tmp(file, &tmp, path)
}

/// Removes a file if it exists.
///
/// # Errors
/// The file exists and cannot be removed.
pub fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}
