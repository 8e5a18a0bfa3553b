//! From command-line inputs to the sorted list of shards a scan works on.
//!
//! An input is a file, a directory, a glob (`data/*.tar`), a brace pattern
//! (`shard-{00000..00099}.tar`, `{a,b}.parquet`), or `@FILE`, a file listing
//! inputs one per line (`#` comments and blank lines ignored, relative
//! paths taken from the list file's directory). Each input's shards are
//! sorted by path; inputs keep the order given; a shard named twice is
//! scanned once.
//!
//! A directory is walked and every file classified: `.tar` files are
//! WebDataset shards, `.parquet` files Parquet shards, `.jsonl`/`.ndjson`
//! files JSON lines shards, and each directory holding other files is an
//! image-directory shard. img2dataset's side files (`STEM.parquet` and
//! `STEM_stats.json` beside `STEM.tar` or a `STEM/` directory) travel with
//! their shard rather than being shards of their own.

use std::{
    collections::{BTreeMap, HashSet},
    fmt,
    path::{Path, PathBuf},
    str::FromStr,
};

use crate::{
    error::{Error, Result},
    source::dir::list_files,
};

/// The format of a shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// A WebDataset tar shard.
    WebDataset,
    /// A Parquet file.
    Parquet,
    /// A directory of images and sidecar files.
    Images,
    /// A JSON lines text corpus.
    Jsonl,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 4] = [Kind::WebDataset, Kind::Parquet, Kind::Images, Kind::Jsonl];

    /// The stable name, as used by `--input-kind` and in manifests.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::WebDataset => "webdataset",
            Kind::Parquet => "parquet",
            Kind::Images => "images",
            Kind::Jsonl => "jsonl",
        }
    }

    /// The kind a file name suggests, if any.
    pub fn of_file(path: &Path) -> Option<Kind> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        if name.ends_with(".tar") {
            Some(Kind::WebDataset)
        } else if name.ends_with(".parquet") {
            Some(Kind::Parquet)
        } else if name.ends_with(".jsonl") || name.ends_with(".ndjson") {
            Some(Kind::Jsonl)
        } else {
            None
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| Error::Input {
                input: s.to_owned(),
                reason: "input kind: expected webdataset, parquet, images or jsonl".to_owned(),
            })
    }
}

/// One unit of work: a file (or an image directory) scanned as a whole,
/// resumable as a whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    /// Its format.
    pub kind: Kind,
    /// The file, or the directory for [`Kind::Images`].
    pub path: PathBuf,
    /// Where its clean copy goes, relative to the output directory.
    pub rel: PathBuf,
    /// img2dataset side files that travel with it, relative names beside `rel`.
    pub side_files: Vec<PathBuf>,
}

impl Shard {
    /// The shard's name in manifests, summaries and the report queue: its
    /// path relative to the inputs' common directory, `/`-separated.
    pub fn name(&self) -> String {
        let res = self.rel.to_string_lossy().replace('\\', "/");
        if res.is_empty() { ".".to_owned() } else { res }
    }
}

/// Expands inputs into the scan's shard list.
///
/// # Errors
/// An input that matches nothing, a list file that cannot be read, a file
/// whose kind cannot be told (use `kind` to say), remote URLs.
pub fn expand(inputs: &[String], kind: Option<Kind>) -> Result<Vec<Shard>> {
    let mut roots: Vec<(PathBuf, bool)> = Vec::new();
    for input in inputs {
        expand_one(input, None, &mut roots)?;
    }
    let mut seen = HashSet::new();
    roots.retain(|(path, _)| seen.insert(path.clone()));
    let base = common_base(&roots);
    let mut res = Vec::new();
    let mut seen_shards = HashSet::new();
    for (path, is_dir) in &roots {
        let shards = if *is_dir {
            walk_dir(path, &base, kind)?
        } else {
            let file_kind = kind.or_else(|| Kind::of_file(path)).ok_or_else(|| Error::Input {
                input: path.display().to_string(),
                reason: "expected a .tar, .parquet, .jsonl or .ndjson file or a directory (or say --input-kind)".to_owned(),
            })?;
            vec![Shard {
                kind: file_kind,
                path: path.clone(),
                rel: rel_to(path, &base),
                side_files: if file_kind == Kind::WebDataset {
                    side_files_of(path)
                } else {
                    Vec::new()
                },
            }]
        };
        for shard in shards {
            if seen_shards.insert(shard.path.clone()) {
                res.push(shard);
            }
        }
    }
    Ok(res)
}

/// Expands one argument (or list-file line) into existing paths.
fn expand_one(
    input: &str,
    relative_to: Option<&Path>,
    out: &mut Vec<(PathBuf, bool)>,
) -> Result<()> {
    let bad = |reason: &str| Error::Input {
        input: input.to_owned(),
        reason: reason.to_owned(),
    };
    if input.contains("://") || input.starts_with("pipe:") {
        return Err(bad(
            "remote inputs are not supported: mount or copy the shards first",
        ));
    }
    if let Some(list) = input.strip_prefix('@') {
        let list_path = resolve(Path::new(list), relative_to);
        let text = std::fs::read_to_string(&list_path).map_err(|e| Error::io(&list_path, e))?;
        let list_dir = list_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        for (line_idx, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            expand_one(line, Some(&list_dir), out).map_err(|e| match e {
                Error::Input { reason, .. } => Error::Input {
                    input: format!("{}:{}", list_path.display(), line_idx + 1),
                    reason,
                },
                other => other,
            })?;
        }
        return Ok(());
    }
    let patterns = brace_expand(input).map_err(|reason| bad(&reason))?;
    for pattern in patterns {
        let pattern_path = resolve(Path::new(&pattern), relative_to);
        if pattern.contains(['*', '?', '[']) {
            let matches = glob(&pattern_path).map_err(|reason| bad(&reason))?;
            if matches.is_empty() {
                return Err(bad("matches no file"));
            }
            for path in matches {
                let is_dir = path.is_dir();
                out.push((path, is_dir));
            }
        } else {
            let meta = std::fs::metadata(&pattern_path).map_err(|e| Error::io(&pattern_path, e))?;
            out.push((pattern_path, meta.is_dir()));
        }
    }
    Ok(())
}

fn resolve(path: &Path, relative_to: Option<&Path>) -> PathBuf {
    match relative_to {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path.to_owned(),
    }
}

/// Expands `{a,b}` alternatives and `{000..099}` numeric ranges (zero
/// padded to the width of the first bound when it starts with 0), as
/// webdataset's braceexpand does.
pub fn brace_expand(pattern: &str) -> Result<Vec<String>, String> {
    let Some(open) = pattern.find('{') else {
        return Ok(vec![pattern.to_owned()]);
    };
    let Some(close_rel) = pattern[open..].find('}') else {
        return Err("expected a closing } in the brace pattern".to_owned());
    };
    let close = open + close_rel;
    let (head, body, tail) = (
        &pattern[..open],
        &pattern[open + 1..close],
        &pattern[close + 1..],
    );
    let alternatives: Vec<String> = if let Some((lo, hi)) = body.split_once("..") {
        let (Ok(lo_n), Ok(hi_n)) = (lo.parse::<u64>(), hi.parse::<u64>()) else {
            return Err(format!("range {{{body}}}: expected two numbers"));
        };
        if hi_n < lo_n || hi_n - lo_n > 10_000_000 {
            return Err(format!(
                "range {{{body}}}: expected a low..high range of at most 10 million"
            ));
        }
        let width = if lo.starts_with('0') { lo.len() } else { 0 };
        (lo_n..=hi_n).map(|n| format!("{n:0width$}")).collect()
    } else {
        body.split(',').map(str::to_owned).collect()
    };
    let tails = brace_expand(tail)?;
    let mut res = Vec::with_capacity(alternatives.len() * tails.len());
    for alternative in &alternatives {
        for rest in &tails {
            res.push(format!("{head}{alternative}{rest}"));
        }
    }
    Ok(res)
}

/// The files matching a glob, sorted. The walk starts at the longest
/// leading part of the pattern without metacharacters.
fn glob(pattern: &Path) -> Result<Vec<PathBuf>, String> {
    let text = pattern.to_string_lossy().into_owned();
    let meta_at = text.find(['*', '?', '[']).unwrap_or(text.len());
    let root_end = text[..meta_at].rfind('/').map_or(0, |i| i + 1);
    let root = if root_end == 0 {
        PathBuf::from(".")
    } else {
        PathBuf::from(&text[..root_end])
    };
    let matcher = globset::GlobBuilder::new(&text[root_end..])
        .literal_separator(true)
        .build()
        .map_err(|e| format!("glob: {e}"))?
        .compile_matcher();
    if !root.is_dir() {
        return Ok(Vec::new());
    }
    let depth = text[root_end..].matches('/').count() + 1;
    let recursive = text.contains("**");
    let mut walker = walkdir::WalkDir::new(&root)
        .min_depth(1)
        .sort_by_file_name();
    if !recursive {
        walker = walker.max_depth(depth);
    }
    let mut res = Vec::new();
    for entry in walker {
        let entry = entry.map_err(|e| format!("walking {}: {e}", root.display()))?;
        let rel = entry.path().strip_prefix(&root).unwrap_or(entry.path());
        if matcher.is_match(rel) {
            let path = if root_end == 0 {
                rel.to_owned()
            } else {
                entry.path().to_owned()
            };
            res.push(path);
        }
    }
    Ok(res)
}

/// The deepest directory containing every root (a file's own directory, a
/// directory itself), so that output names keep just enough of the path.
fn common_base(roots: &[(PathBuf, bool)]) -> PathBuf {
    let dirs: Vec<PathBuf> = roots
        .iter()
        .map(|(path, is_dir)| {
            let dir = if *is_dir {
                path.clone()
            } else {
                path.parent().map(Path::to_path_buf).unwrap_or_default()
            };
            std::path::absolute(&dir).unwrap_or(dir)
        })
        .collect();
    let Some(first) = dirs.first() else {
        return PathBuf::new();
    };
    let mut base: Vec<_> = first.components().collect();
    for dir in &dirs[1..] {
        let shared = base
            .iter()
            .zip(dir.components())
            .take_while(|(a, b)| **a == *b)
            .count();
        base.truncate(shared);
    }
    base.into_iter().collect()
}

fn rel_to(path: &Path, base: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    absolute
        .strip_prefix(base)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| path.file_name().map(PathBuf::from).unwrap_or_default())
}

/// img2dataset's side files of the shard at `path` (`STEM.tar` or the
/// directory `STEM`): `STEM.parquet` and `STEM_stats.json`, if present.
fn side_files_of(path: &Path) -> Vec<PathBuf> {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Vec::new();
    };
    let stem = name.strip_suffix(".tar").unwrap_or(name);
    let dir = path.parent().unwrap_or(Path::new(""));
    [format!("{stem}.parquet"), format!("{stem}_stats.json")]
        .into_iter()
        .filter(|side| dir.join(side).is_file())
        .map(PathBuf::from)
        .collect()
}

/// Walks a directory and classifies its files (see the module docs).
fn walk_dir(root: &Path, base: &Path, kind: Option<Kind>) -> Result<Vec<Shard>> {
    let mut dirs = Vec::new();
    for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
        let entry = entry.map_err(|e| Error::Input {
            input: root.display().to_string(),
            reason: format!("walking: {e}"),
        })?;
        let hidden = entry.depth() > 0 && entry.file_name().to_string_lossy().starts_with('.');
        if entry.file_type().is_dir() && !hidden {
            dirs.push(entry.into_path());
        }
    }
    // Side files: STEM.parquet and STEM_stats.json beside STEM.tar or STEM/.
    let mut shards: BTreeMap<PathBuf, Shard> = BTreeMap::new();
    for dir in &dirs {
        let names = list_files(dir)?;
        let has = |name: &str| names.iter().any(|n| n == name);
        let is_dir_shard_stem = |stem: &str| dir.join(stem).is_dir();
        let mut side_names = HashSet::new();
        if kind.is_none() || kind == Some(Kind::WebDataset) || kind == Some(Kind::Images) {
            for name in &names {
                let stem = name.strip_suffix(".tar");
                let parquet_stem = name.strip_suffix(".parquet");
                let stats_stem = name.strip_suffix("_stats.json");
                for stem in [stem, parquet_stem, stats_stem].into_iter().flatten() {
                    let owner = has(&format!("{stem}.tar")) || is_dir_shard_stem(stem);
                    if owner && !name.ends_with(".tar") {
                        side_names.insert(name.clone());
                    }
                }
            }
        }
        let mut loose = false;
        for name in &names {
            if side_names.contains(name) {
                continue;
            }
            let path = dir.join(name);
            let file_kind = match kind {
                Some(Kind::Images) => None,
                Some(forced) => Some(forced).filter(|k| Kind::of_file(&path) == Some(*k)),
                None => Kind::of_file(&path),
            };
            match file_kind {
                Some(file_kind) => {
                    let side_files = if file_kind == Kind::WebDataset {
                        side_files_of(&path)
                    } else {
                        Vec::new()
                    };
                    shards.insert(
                        path.clone(),
                        Shard {
                            kind: file_kind,
                            rel: rel_to(&path, base),
                            path,
                            side_files,
                        },
                    );
                }
                None => loose = true,
            }
        }
        if loose && (kind.is_none() || kind == Some(Kind::Images)) {
            shards.insert(
                dir.clone(),
                Shard {
                    kind: Kind::Images,
                    path: dir.clone(),
                    rel: rel_to(dir, base),
                    side_files: side_files_of(dir),
                },
            );
        }
    }
    Ok(shards.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces_expand_ranges_and_alternatives() {
        assert_eq!(
            brace_expand("s-{0008..0010}.tar").unwrap(),
            ["s-0008.tar", "s-0009.tar", "s-0010.tar"]
        );
        assert_eq!(
            brace_expand("{a,b}/{1..2}").unwrap(),
            ["a/1", "a/2", "b/1", "b/2"]
        );
        assert!(brace_expand("x{1..").is_err());
        assert!(brace_expand("{9..1}").is_err());
    }

    #[test]
    fn directories_are_classified_and_side_files_attached() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for name in [
            "00000.tar",
            "00000.parquet",
            "00000_stats.json",
            "00001.tar",
            "other.parquet",
            "corpus.jsonl",
        ] {
            std::fs::write(root.join(name), b"").unwrap();
        }
        std::fs::create_dir(root.join("00002")).unwrap();
        std::fs::write(root.join("00002/a.jpg"), b"").unwrap();
        std::fs::write(root.join("00002.parquet"), b"").unwrap();
        let shards = expand(&[root.display().to_string()], None).unwrap();
        let names: Vec<_> = shards
            .iter()
            .map(|s| (s.name(), s.kind, s.side_files.len()))
            .collect();
        assert_eq!(
            names,
            [
                ("00000.tar".to_owned(), Kind::WebDataset, 2),
                ("00001.tar".to_owned(), Kind::WebDataset, 0),
                ("00002".to_owned(), Kind::Images, 1),
                ("corpus.jsonl".to_owned(), Kind::Jsonl, 0),
                ("other.parquet".to_owned(), Kind::Parquet, 0),
            ]
        );
        // A brace range over the same shards, and a list file.
        let pattern = format!("{}/{{00000..00001}}.tar", root.display());
        let shards = expand(&[pattern], None).unwrap();
        assert_eq!(shards.len(), 2);
        std::fs::write(root.join("list.txt"), "# shards\n00001.tar\n\n*.jsonl\n").unwrap();
        let shards = expand(&[format!("@{}/list.txt", root.display())], None).unwrap();
        let names: Vec<_> = shards.iter().map(Shard::name).collect();
        assert_eq!(names, ["00001.tar", "corpus.jsonl"]);
        let err = expand(&[format!("{}/*.zip", root.display())], None).unwrap_err();
        assert!(err.to_string().ends_with("matches no file"), "{err}");
    }
}
