//! Immutable segment files: a header, a table of typed sections, and the
//! section bytes, written once (temp file, fsync, rename) and memory-mapped
//! read-only (FORMAT.md, "Segment file").
//!
//! Readers never trust the bytes: every slice is taken through checked
//! accessors, so a corrupt or truncated file gives an error or an empty
//! result, never a panic. Data sections are not checksummed at open (that
//! would read every page); [`Segment::verify`] does it on demand.

use std::{
    fs::File,
    io::Write,
    ops::Range,
    path::{Path, PathBuf},
};

use memmap2::Mmap;

use crate::error::Error;

/// First eight bytes of every segment file.
pub(crate) const MAGIC: &[u8; 8] = b"CSFBANK\0";
/// The segment format version this code writes and reads.
pub(crate) const FORMAT_VERSION: u32 = 1;
/// Sections start at multiples of this (cache line, and enough for `u64`).
const ALIGN: usize = 64;
const HEADER_BYTES: usize = 32;
const SECTION_BYTES: usize = 24;
/// In-memory segments at least this large get huge pages.
const HUGE_PAGE_MIN: usize = 4 << 20;

/// Section kinds. Stable numbers: stored in files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Kind {
    /// Fixed 32-byte entry records.
    Entries = 1,
    /// UTF-8 bytes referenced by entry records (entry ids).
    Strings = 2,
    /// JSON array of source list names.
    Sources = 3,
    /// PDQ index description (row count, partitions).
    PdqMeta = 10,
    /// First 128 bits of each PDQ code, sorted.
    PdqLo = 11,
    /// Last 128 bits of each PDQ code.
    PdqHi = 12,
    /// Entry index of each PDQ row.
    PdqRows = 13,
    /// Directory of a partition (tag = partition index).
    PdqDir = 14,
    /// Table of a partition (tag = partition index).
    PdqTable = 15,
    /// Sorted MD5 values.
    Md5Values = 20,
    /// Entry index of each MD5 value.
    Md5Rows = 21,
    /// Sorted SHA-1 values.
    Sha1Values = 22,
    /// Entry index of each SHA-1 value.
    Sha1Rows = 23,
    /// Sorted SHA-256 values.
    Sha256Values = 24,
    /// Entry index of each SHA-256 value.
    Sha256Rows = 25,
    /// Checksum of every other section (u64).
    Checksum = 99,
}

/// The bytes behind a segment: a read-only map, or owned words (for indexes
/// built in memory and not yet written).
enum Backing {
    Mapped(Mmap),
    Owned(Vec<u64>),
}

impl Backing {
    fn bytes(&self) -> &[u8] {
        match self {
            Backing::Mapped(map) => map,
            Backing::Owned(words) => {
                // SAFETY: u64 has no padding and any byte view of it is valid;
                // the slice covers exactly the vector's initialised words.
                unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), words.len() * 8) }
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Section {
    kind: u32,
    tag: u32,
    offset: usize,
    len: usize,
}

/// An open segment: its bytes and its section table.
pub(crate) struct Segment {
    backing: Backing,
    sections: Vec<Section>,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("path", &self.path)
            .field("bytes", &self.backing.bytes().len())
            .field("sections", &self.sections.len())
            .finish()
    }
}

impl Segment {
    /// Maps a segment file read-only and checks its header.
    pub(crate) fn open(path: &Path) -> Result<Segment, Error> {
        let file = File::open(path).map_err(|source| Error::io(path, source))?;
        // SAFETY: segment files are immutable once renamed into place (they
        // are never written again, only deleted after a newer generation
        // replaces them), so the mapped bytes do not change under us. If an
        // outside process truncates the file anyway, access may fault
        // (SIGBUS); that is the documented cost of mapping, as in ripgrep's
        // `MmapChoice::auto`.
        let map = unsafe { Mmap::map(&file) }.map_err(|source| Error::io(path, source))?;
        Segment::from_backing(Backing::Mapped(map), Some(path.to_owned()))
    }

    /// A segment over bytes built in memory. The words are copied into an
    /// anonymous map advised to use huge pages: the index makes thousands of
    /// random accesses per query, and 4 KiB pages make most of them TLB misses.
    pub(crate) fn from_words(words: Vec<u64>) -> Result<Segment, Error> {
        let bytes = words.len() * 8;
        if bytes >= HUGE_PAGE_MIN
            && let Ok(mut map) = memmap2::MmapMut::map_anon(bytes)
        {
            let _ = map.advise(memmap2::Advice::HugePage);
            for (chunk, word) in map.chunks_exact_mut(8).zip(&words) {
                chunk.copy_from_slice(&word.to_le_bytes());
            }
            drop(words);
            if let Ok(map) = map.make_read_only() {
                return Segment::from_backing(Backing::Mapped(map), None);
            }
            return Err(Error::Corrupt {
                path: PathBuf::new(),
                what: "could not seal an in-memory segment".into(),
            });
        }
        Segment::from_backing(Backing::Owned(words), None)
    }

    fn from_backing(backing: Backing, path: Option<PathBuf>) -> Result<Segment, Error> {
        let corrupt = |what: String| Error::Corrupt {
            path: path.clone().unwrap_or_default(),
            what,
        };
        if cfg!(target_endian = "big") {
            return Err(corrupt(
                "format v1 segments are little-endian; big-endian hosts are not supported".into(),
            ));
        }
        let bytes = backing.bytes();
        if bytes.len() < HEADER_BYTES || &bytes[..8] != MAGIC {
            return Err(corrupt("not a childsafe bank segment (bad magic)".into()));
        }
        let version = read_u32(bytes, 8);
        if version != FORMAT_VERSION {
            return Err(corrupt(format!(
                "format version: expected {FORMAT_VERSION}, got {version}"
            )));
        }
        let n_sections = read_u64(bytes, 16) as usize;
        let total = read_u64(bytes, 24) as usize;
        if total != bytes.len() {
            return Err(corrupt(format!(
                "length: expected {total} bytes, got {} (truncated?)",
                bytes.len()
            )));
        }
        let table_end = n_sections
            .checked_mul(SECTION_BYTES)
            .and_then(|it| it.checked_add(HEADER_BYTES))
            .filter(|&end| end <= bytes.len())
            .ok_or_else(|| corrupt(format!("section table: {n_sections} sections do not fit")))?;
        let mut sections = Vec::with_capacity(n_sections);
        for at in (HEADER_BYTES..table_end).step_by(SECTION_BYTES) {
            let section = Section {
                kind: read_u32(bytes, at),
                tag: read_u32(bytes, at + 4),
                offset: read_u64(bytes, at + 8) as usize,
                len: read_u64(bytes, at + 16) as usize,
            };
            let fits = section.offset.is_multiple_of(ALIGN)
                && section
                    .offset
                    .checked_add(section.len)
                    .is_some_and(|end| end <= bytes.len());
            if !fits {
                return Err(corrupt(format!(
                    "section {} (kind {}) lies outside the file",
                    sections.len(),
                    section.kind
                )));
            }
            sections.push(section);
        }
        Ok(Segment {
            backing,
            sections,
            path,
        })
    }

    /// The path this segment was mapped from, if any.
    pub(crate) fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn find(&self, kind: Kind, tag: u32) -> Option<&Section> {
        self.sections
            .iter()
            .find(|it| it.kind == kind as u32 && it.tag == tag)
    }

    /// All bytes of the segment.
    pub(crate) fn whole(&self) -> &[u8] {
        self.backing.bytes()
    }

    /// The bytes of a section, or an empty slice if absent.
    pub(crate) fn bytes(&self, kind: Kind, tag: u32) -> &[u8] {
        match self.find(kind, tag) {
            Some(section) => &self.backing.bytes()[section.offset..section.offset + section.len],
            None => &[],
        }
    }

    /// The byte range of a section (empty if absent), for O(1) access later.
    pub(crate) fn range(&self, kind: Kind, tag: u32) -> Range<usize> {
        match self.find(kind, tag) {
            Some(section) => section.offset..section.offset + section.len,
            None => 0..0,
        }
    }

    /// The `u32` words of a byte range from [`Segment::range`].
    pub(crate) fn u32s_at(&self, range: &Range<usize>) -> &[u32] {
        cast_slice(self.backing.bytes().get(range.clone()).unwrap_or(&[]))
    }

    /// The `u64` pairs of a byte range from [`Segment::range`].
    pub(crate) fn halves_at(&self, range: &Range<usize>) -> &[[u64; 2]] {
        cast_slice(self.backing.bytes().get(range.clone()).unwrap_or(&[]))
    }

    /// A section as `u32` words (trailing bytes that do not fill a word are ignored).
    #[cfg(test)]
    pub(crate) fn u32s(&self, kind: Kind, tag: u32) -> &[u32] {
        cast_slice(self.bytes(kind, tag))
    }

    /// A section as pairs of `u64` (trailing bytes ignored).
    #[cfg(test)]
    pub(crate) fn halves(&self, kind: Kind, tag: u32) -> &[[u64; 2]] {
        cast_slice(self.bytes(kind, tag))
    }

    /// A section as `u64` words (trailing bytes ignored).
    pub(crate) fn u64s(&self, kind: Kind, tag: u32) -> &[u64] {
        cast_slice(self.bytes(kind, tag))
    }

    /// Recomputes the checksum of every section and compares it with the
    /// stored one.
    pub(crate) fn verify(&self) -> Result<(), Error> {
        let stored = self.u64s(Kind::Checksum, 0).first().copied();
        let actual = checksum(
            self.sections
                .iter()
                .filter(|it| it.kind != Kind::Checksum as u32)
                .map(|it| &self.backing.bytes()[it.offset..it.offset + it.len]),
        );
        if stored != Some(actual) {
            return Err(Error::Corrupt {
                path: self.path.clone().unwrap_or_default(),
                what: format!(
                    "checksum: expected {:016x}, got {actual:016x}",
                    stored.unwrap_or(0)
                ),
            });
        }
        Ok(())
    }
}

/// Reinterprets aligned bytes as plain old data, dropping a misaligned head
/// (impossible for sections, which start 64-byte aligned) and a partial tail.
fn cast_slice<T: Pod>(bytes: &[u8]) -> &[T] {
    // SAFETY: `T: Pod` is only implemented for integer arrays, for which
    // every bit pattern is valid; `align_to` guarantees alignment.
    let (head, body, _tail) = unsafe { bytes.align_to::<T>() };
    if head.is_empty() { body } else { &[] }
}

/// Types that may be viewed from raw bytes.
///
/// # Safety
/// Implementors have no padding and no invalid bit patterns.
unsafe trait Pod: Copy {}
// SAFETY: integers and arrays of integers: no padding, all patterns valid.
unsafe impl Pod for u32 {}
// SAFETY: as above.
unsafe impl Pod for u64 {}
// SAFETY: as above.
unsafe impl Pod for [u64; 2] {}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut buf = [0u8; 4];
    buf.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(buf)
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut buf = [0u8; 8];
    buf.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(buf)
}

/// A 64-bit checksum of byte slices: 8-byte words mixed with a multiply and
/// rotate (fast enough to verify a 10M-code segment in well under a second).
fn checksum<'a>(parts: impl Iterator<Item = &'a [u8]>) -> u64 {
    let mut acc: u64 = 0x9e37_79b9_7f4a_7c15;
    for part in parts {
        let mut words = part.chunks_exact(8);
        for word in &mut words {
            let mut buf = [0u8; 8];
            buf.copy_from_slice(word);
            acc = (acc ^ u64::from_le_bytes(buf))
                .wrapping_mul(0xff51_afd7_ed55_8ccd)
                .rotate_left(29);
        }
        for &byte in words.remainder() {
            acc = (acc ^ u64::from(byte))
                .wrapping_mul(0xc4ce_b9fe_1a85_ec53)
                .rotate_left(29);
        }
        acc ^= part.len() as u64;
    }
    acc
}

/// Accumulates sections, then writes the segment file.
#[derive(Default)]
pub(crate) struct SegmentBuilder {
    sections: Vec<(u32, u32, Vec<u8>)>,
}

impl SegmentBuilder {
    /// Adds a section of raw bytes.
    pub(crate) fn add_bytes(&mut self, kind: Kind, tag: u32, bytes: Vec<u8>) {
        self.sections.push((kind as u32, tag, bytes));
    }

    /// Adds a section of `u32` words (little-endian).
    pub(crate) fn add_u32s(&mut self, kind: Kind, tag: u32, words: &[u32]) {
        let mut bytes = Vec::with_capacity(words.len() * 4);
        for word in words {
            bytes.extend_from_slice(&word.to_le_bytes());
        }
        self.add_bytes(kind, tag, bytes);
    }

    /// Adds a section of `u64` pairs (little-endian).
    pub(crate) fn add_halves(&mut self, kind: Kind, tag: u32, halves: &[[u64; 2]]) {
        let mut bytes = Vec::with_capacity(halves.len() * 16);
        for half in halves {
            bytes.extend_from_slice(&half[0].to_le_bytes());
            bytes.extend_from_slice(&half[1].to_le_bytes());
        }
        self.add_bytes(kind, tag, bytes);
    }

    /// Lays out the file in memory as little-endian words.
    pub(crate) fn into_words(mut self) -> Vec<u64> {
        let sum = checksum(self.sections.iter().map(|it| it.2.as_slice()));
        self.add_bytes(Kind::Checksum, 0, sum.to_le_bytes().to_vec());
        let table_end = HEADER_BYTES + self.sections.len() * SECTION_BYTES;
        let mut offsets = Vec::with_capacity(self.sections.len());
        let mut at = align_up(table_end);
        for (_, _, bytes) in &self.sections {
            offsets.push(at);
            at = align_up(at + bytes.len());
        }
        let total = at;
        let mut out = vec![0u8; total];
        out[..8].copy_from_slice(MAGIC);
        out[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        out[16..24].copy_from_slice(&(self.sections.len() as u64).to_le_bytes());
        out[24..32].copy_from_slice(&(total as u64).to_le_bytes());
        for (section_idx, ((kind, tag, bytes), offset)) in
            self.sections.iter().zip(&offsets).enumerate()
        {
            let row = HEADER_BYTES + section_idx * SECTION_BYTES;
            out[row..row + 4].copy_from_slice(&kind.to_le_bytes());
            out[row + 4..row + 8].copy_from_slice(&tag.to_le_bytes());
            out[row + 8..row + 16].copy_from_slice(&(*offset as u64).to_le_bytes());
            out[row + 16..row + 24].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
            out[*offset..*offset + bytes.len()].copy_from_slice(bytes);
        }
        out.chunks_exact(8)
            .map(|word| {
                let mut buf = [0u8; 8];
                buf.copy_from_slice(word);
                u64::from_le_bytes(buf)
            })
            .collect()
    }
}

fn align_up(at: usize) -> usize {
    at.div_ceil(ALIGN) * ALIGN
}

/// Writes `words` to `path` atomically: a temp file in the same directory,
/// fsync, rename, fsync of the directory.
pub(crate) fn write_words_atomic(path: &Path, words: &[u64]) -> Result<(), Error> {
    write_atomic(path, |file| {
        let mut buf = Vec::with_capacity(1 << 20);
        for chunk in words.chunks(1 << 17) {
            buf.clear();
            for word in chunk {
                buf.extend_from_slice(&word.to_le_bytes());
            }
            file.write_all(&buf)?;
        }
        Ok(())
    })
}

/// Writes a file atomically with `fill`: temp + fsync + rename + dir fsync.
pub(crate) fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<(), Error> {
    let dir = dir_of(path);
    let name = path
        .file_name()
        .map(|it| it.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let res = (|| {
        let mut file = File::create(&tmp)?;
        fill(&mut file)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.map_err(|source| Error::io(path, source))
}

/// The directory a file is in (`.` for a bare file name).
fn dir_of(path: &Path) -> &Path {
    path.parent()
        .filter(|it| !it.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."))
}

/// Fsyncs a directory so that a rename in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_sections_and_rejects_damage() {
        let mut builder = SegmentBuilder::default();
        builder.add_u32s(Kind::PdqRows, 0, &[1, 2, 3]);
        builder.add_halves(Kind::PdqLo, 0, &[[7, 8]]);
        builder.add_bytes(Kind::Strings, 0, b"abc".to_vec());
        let words = builder.into_words();
        let segment = Segment::from_words(words.clone()).unwrap();
        assert_eq!(segment.u32s(Kind::PdqRows, 0), &[1, 2, 3]);
        assert_eq!(segment.halves(Kind::PdqLo, 0), &[[7, 8]]);
        assert_eq!(segment.bytes(Kind::Strings, 0), b"abc");
        assert!(segment.u32s(Kind::PdqTable, 3).is_empty());
        segment.verify().unwrap();

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg");
        write_words_atomic(&path, &words).unwrap();
        let mapped = Segment::open(&path).unwrap();
        assert_eq!(mapped.u32s(Kind::PdqRows, 0), &[1, 2, 3]);
        mapped.verify().unwrap();

        // A bare file name lives in the current directory.
        assert_eq!(dir_of(Path::new("bare")), Path::new("."));
        assert_eq!(dir_of(&path), dir.path());

        // The first section's offset is the word after its kind and tag.
        let rows_at = words[5] as usize / 8;
        let mut flipped = words.clone();
        flipped[rows_at] ^= 1;
        let damaged = Segment::from_words(flipped).unwrap();
        assert_eq!(damaged.u32s(Kind::PdqRows, 0), &[0, 2, 3]);
        let err = damaged.verify().unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");

        let truncated = words[..words.len() - 1].to_vec();
        let err = Segment::from_words(truncated).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
        let err = Segment::from_words(vec![0; 8]).unwrap_err();
        assert!(err.to_string().contains("bad magic"), "{err}");
    }
}
