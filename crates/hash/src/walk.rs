//! The file walker behind `childsafe hash` and `childsafe match PATH`:
//! expands files and directories into a sorted list, reads each file
//! (bounded by [`DecodeLimits::max_bytes`](crate::DecodeLimits::max_bytes)),
//! processes files in parallel on the rayon pool, and delivers results to a
//! callback on the calling thread in list order.
//!
//! Two steps, so the caller can show a total before the work starts:
//! 1. [`collect`] walks the inputs: directories recursively, entries sorted
//!    by file name (bytes) at every level, symbolic links followed (loops are
//!    detected and reported); inputs keep the order they were given in.
//!    Anything that cannot be walked (a missing path, an unreadable
//!    directory, a FIFO) becomes an error entry at its place in the order.
//! 2. [`for_each_file`] (any per-file work) or [`hash_files`] (the
//!    hashes) runs the work and calls `deliver` once per entry, in order.
//!
//! Why push results to a callback in order instead of returning an
//! iterator: output must be deterministic (the same inputs give the same
//! lines in the same order at any thread count), and the callback runs on
//! the caller's thread, so it may hold non-`Send` state (a locked stdout, a
//! progress bar). Workers take files in list order from a shared counter, so
//! the reorder buffer holds only the results that finished ahead of a slow
//! file, never a whole split of the list.

use std::{
    collections::BTreeMap,
    fs::File,
    io::Read,
    ops::ControlFlow,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
};

use crate::{Error, HashConfig, Hasher, ImageHashes};

/// One input of the walk: a file to process, or the reason a path could
/// not be walked.
#[derive(Debug)]
pub enum Entry {
    /// A regular file (or a link to one).
    File(PathBuf),
    /// A path that could not be walked, with the reason (the error names
    /// the path).
    Error {
        /// The path that failed.
        path: PathBuf,
        /// Why.
        error: Error,
    },
}

impl Entry {
    /// The path of this entry.
    pub fn path(&self) -> &Path {
        match self {
            Entry::File(path) | Entry::Error { path, .. } => path,
        }
    }
}

/// The expanded, ordered inputs of a run.
#[derive(Debug, Default)]
pub struct FileList {
    /// Entries in delivery order.
    pub entries: Vec<Entry>,
}

impl FileList {
    /// Number of entries (files and walk errors).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of files to process.
    pub fn file_count(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| matches!(e, Entry::File(_)))
            .count()
    }
}

/// Expands `inputs` (files and directories) into a sorted [`FileList`].
pub fn collect(inputs: &[PathBuf]) -> FileList {
    let mut entries = Vec::new();
    for input in inputs {
        let walker = walkdir::WalkDir::new(input)
            .follow_links(true)
            .sort_by(|a, b| a.file_name().cmp(b.file_name()));
        for item in walker {
            match item {
                Ok(entry) => {
                    let file_type = entry.file_type();
                    if file_type.is_dir() {
                        continue;
                    }
                    let path = entry.into_path();
                    if file_type.is_file() {
                        entries.push(Entry::File(path));
                    } else {
                        entries.push(Entry::Error {
                            error: Error::NotAFile { path: path.clone() },
                            path,
                        });
                    }
                }
                Err(err) => {
                    let path = err.path().map_or_else(|| input.clone(), Path::to_path_buf);
                    let source = std::io::Error::other(err.to_string());
                    let source = match err.into_io_error() {
                        Some(io) => io,
                        None => source,
                    };
                    entries.push(Entry::Error {
                        error: Error::Io {
                            path: path.clone(),
                            source,
                        },
                        path,
                    });
                }
            }
        }
    }
    FileList { entries }
}

/// What [`for_each_file`] delivers for each entry.
#[derive(Debug)]
pub struct FileResult<T> {
    /// Position in the [`FileList`].
    pub index: usize,
    /// The file or walked path.
    pub path: PathBuf,
    /// The work's output, or why the file could not be walked or read.
    pub outcome: Result<T, Error>,
}

/// Reads a whole file, refusing it without reading if it is larger than
/// `max_bytes`. `buf` is reused.
pub fn read_bounded(path: &Path, max_bytes: u64, buf: &mut Vec<u8>) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    buf.clear();
    let file = File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(Error::NotAFile {
            path: path.to_path_buf(),
        });
    }
    if meta.len() > max_bytes {
        return Err(Error::TooManyBytes {
            size: meta.len(),
            limit: max_bytes,
        });
    }
    // The file may grow between the size check and the read.
    file.take(max_bytes.saturating_add(1))
        .read_to_end(buf)
        .map_err(io)?;
    if buf.len() as u64 > max_bytes {
        return Err(Error::TooManyBytes {
            size: buf.len() as u64,
            limit: max_bytes,
        });
    }
    Ok(())
}

/// Runs `work` on the bytes of every file of `list` in parallel and calls
/// `deliver` on the calling thread once per entry, in list order, until it
/// returns [`ControlFlow::Break`] (a closed output pipe, say); then the
/// workers stop after the file in hand.
///
/// `init` makes per-worker state (buffers, a [`Hasher`]) that `work` reuses;
/// each file is read with [`read_bounded`] into a per-worker buffer. Walk
/// and read errors are delivered as `Err` without calling `work`.
pub fn for_each_file<S, T, I, W, D>(
    list: &FileList,
    max_bytes: u64,
    init: I,
    work: W,
    mut deliver: D,
) where
    T: Send,
    I: Fn() -> S + Sync,
    W: Fn(&mut S, &Path, &[u8]) -> T + Sync,
    D: FnMut(FileResult<T>) -> ControlFlow<()>,
{
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<(usize, Result<T, Error>)>();
    std::thread::scope(|threads| {
        let next = &next;
        let (init, work) = (&init, &work);
        threads.spawn(move || {
            rayon::scope(|pool| {
                for _ in 0..rayon::current_num_threads().max(1) {
                    let tx = tx.clone();
                    pool.spawn(move |_| {
                        let mut state = init();
                        let mut buf = Vec::new();
                        loop {
                            let index = next.fetch_add(1, Ordering::Relaxed);
                            let Some(entry) = list.entries.get(index) else {
                                break;
                            };
                            let outcome = match entry {
                                Entry::Error { error, path } => Err(copy_error(error, path)),
                                Entry::File(path) => read_bounded(path, max_bytes, &mut buf)
                                    .map(|()| work(&mut state, path, &buf)),
                            };
                            if tx.send((index, outcome)).is_err() {
                                break;
                            }
                        }
                    });
                }
            });
            drop(tx);
        });
        // Deliver in order, holding back results that finished early.
        let mut pending = BTreeMap::new();
        let mut want = 0;
        'receive: for (index, outcome) in rx {
            pending.insert(index, outcome);
            while let Some(outcome) = pending.remove(&want) {
                let flow = deliver(FileResult {
                    index: want,
                    path: list.entries[want].path().to_path_buf(),
                    outcome,
                });
                want += 1;
                if flow.is_break() {
                    // Dropping the receiver makes every worker's next send
                    // fail, which stops it.
                    break 'receive;
                }
            }
        }
    });
}

/// Walk errors are kept in the list (so it can be walked again); each
/// delivery gets its own copy.
fn copy_error(error: &Error, path: &Path) -> Error {
    match error {
        Error::Io { source, .. } => Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        Error::NotAFile { .. } => Error::NotAFile {
            path: path.to_path_buf(),
        },
        other => Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(other.to_string()),
        },
    }
}

/// Hashes every file of `list` (crypto hashes, and PDQ if it decodes) and
/// delivers the results in list order, as [`for_each_file`] does. `Err`
/// means the file could not be walked or read; a file that reads but does
/// not decode is `Ok` with its crypto hashes and a PDQ error.
pub fn hash_files<D>(list: &FileList, config: &HashConfig, mut deliver: D)
where
    D: FnMut(FileResult<ImageHashes>) -> ControlFlow<()>,
{
    for_each_file(
        list,
        config.limits.max_bytes,
        || Hasher::new(*config),
        |hasher, _path, bytes| hasher.hash(bytes),
        &mut deliver,
    );
}
