//! A streaming tar member reader that keeps every header block verbatim, for
//! WebDataset shards.
//!
//! The `tar` crate parses headers into its own types; a clean copy must
//! instead carry the original header blocks (PAX and GNU long-name records
//! included) byte for byte, so this reader hands out each member as its raw
//! header bytes plus its data, with the byte offset where it starts. It
//! understands ustar, GNU and PAX (`x`, `g`, `L`, `K`) records, checks header
//! checksums, honours PAX `size` and `path`, and treats the first all-zero
//! block as the end of the archive, as Python's `tarfile` does. Anything
//! else malformed (bad checksum, bad size field, truncation) is an error
//! naming the byte offset.
//!
//! Members larger than a limit are not read into memory: the reader skips
//! their data and reports where it lies, so the caller can copy it from the
//! file later without holding it.

use std::io::{self, Read};

/// Tar block size.
pub(crate) const BLOCK: usize = 512;
/// Python's `tarfile` pads archives to a multiple of this (20 blocks); the
/// clean copy does the same so it is the same shape as img2dataset's.
pub(crate) const RECORD: u64 = 20 * BLOCK as u64;

/// Longest PAX or GNU long-name record read into memory.
const MAX_EXTENDED_BYTES: u64 = 1 << 20;

/// One member, with everything needed to write it back verbatim.
pub(crate) struct Member {
    /// Offset of the member's first header block (its PAX/GNU records, if any).
    pub(crate) offset: u64,
    /// Every block before the data: extended records with their data and
    /// padding, then the member's own header block.
    pub(crate) header: Vec<u8>,
    /// The member's path (PAX or GNU long name if present), lossily decoded.
    pub(crate) name: String,
    /// The type flag of the member's own header (`0` or NUL for a file).
    pub(crate) typeflag: u8,
    /// Data length in bytes.
    pub(crate) size: u64,
    /// The data, unless it was over the limit.
    pub(crate) data: Data,
}

/// A member's data: in memory, or left in the file at an offset.
pub(crate) enum Data {
    /// Read into memory.
    Inline(Vec<u8>),
    /// Over the limit: skipped, found at this byte offset of the archive.
    Skipped { offset: u64 },
}

impl Member {
    /// True for regular files (the only members WebDataset reads).
    pub(crate) fn is_file(&self) -> bool {
        matches!(self.typeflag, b'0' | 0 | b'7')
    }
}

/// Why a tar could not be read: a byte offset and a reason.
#[derive(Debug)]
pub(crate) struct TarError {
    pub(crate) offset: u64,
    pub(crate) reason: String,
    pub(crate) io: Option<io::Error>,
}

impl TarError {
    fn at(offset: u64, reason: impl Into<String>) -> TarError {
        TarError {
            offset,
            reason: reason.into(),
            io: None,
        }
    }
}

/// Reads members one at a time from any reader.
pub(crate) struct TarReader<R> {
    inner: R,
    pos: u64,
    max_member_bytes: u64,
    done: bool,
}

impl<R: Read> TarReader<R> {
    /// A reader that holds members of at most `max_member_bytes` in memory.
    pub(crate) fn new(inner: R, max_member_bytes: u64) -> TarReader<R> {
        TarReader {
            inner,
            pos: 0,
            max_member_bytes,
            done: false,
        }
    }

    /// The next member, or `None` at the end of the archive.
    pub(crate) fn next_member(&mut self) -> Result<Option<Member>, TarError> {
        if self.done {
            return Ok(None);
        }
        let offset = self.pos;
        let mut header = Vec::with_capacity(BLOCK);
        let mut long_name: Option<Vec<u8>> = None;
        let mut pax_path: Option<Vec<u8>> = None;
        let mut pax_size: Option<u64> = None;
        loop {
            let block_at = self.pos;
            let mut block = [0u8; BLOCK];
            match self.read_block(&mut block)? {
                BlockRead::Full => {}
                BlockRead::Eof if header.is_empty() => {
                    // No end-of-archive marker: Python's tarfile accepts this
                    // too, and a shard cut exactly at a member boundary is
                    // indistinguishable from one without the marker.
                    self.done = true;
                    return Ok(None);
                }
                BlockRead::Eof => {
                    return Err(TarError::at(
                        block_at,
                        "truncated: expected a header block, got end of file",
                    ));
                }
            }
            if block.iter().all(|&b| b == 0) {
                if !header.is_empty() {
                    return Err(TarError::at(
                        block_at,
                        "end-of-archive marker after an extended header",
                    ));
                }
                self.done = true;
                return Ok(None);
            }
            check_checksum(&block, block_at)?;
            let typeflag = block[156];
            let size = parse_size(&block[124..136]).ok_or_else(|| {
                TarError::at(block_at, "size: expected an octal or base-256 number")
            })?;
            header.extend_from_slice(&block);
            match typeflag {
                b'x' | b'g' | b'L' | b'K' => {
                    if size > MAX_EXTENDED_BYTES {
                        return Err(TarError::at(
                            block_at,
                            format!(
                                "extended header: expected at most {MAX_EXTENDED_BYTES} bytes, got {size}"
                            ),
                        ));
                    }
                    let data = self.read_padded(size, &mut header, block_at)?;
                    match typeflag {
                        b'x' => {
                            let (path, size) = parse_pax(&data);
                            pax_path = path.or(pax_path);
                            pax_size = size.or(pax_size);
                        }
                        b'L' => {
                            let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
                            long_name = Some(data[..end].to_vec());
                        }
                        // Global PAX records and long link names apply to
                        // nothing we read; they are kept verbatim in `header`.
                        _ => {}
                    }
                }
                _ => {
                    let size = pax_size.unwrap_or(size);
                    let name_bytes = pax_path.or(long_name).unwrap_or_else(|| ustar_name(&block));
                    let name = String::from_utf8_lossy(&name_bytes).into_owned();
                    // Only regular files carry data in a tar; for links,
                    // directories and devices the size field is ignored.
                    let size = if matches!(typeflag, b'0' | 0 | b'7') {
                        size
                    } else {
                        0
                    };
                    let data = if size > self.max_member_bytes {
                        let data_at = self.pos;
                        self.skip_padded(size, block_at)?;
                        Data::Skipped { offset: data_at }
                    } else {
                        let mut scratch = Vec::new();
                        let data = self.read_padded(size, &mut scratch, block_at)?;
                        Data::Inline(data)
                    };
                    return Ok(Some(Member {
                        offset,
                        header,
                        name,
                        typeflag,
                        size,
                        data,
                    }));
                }
            }
        }
    }

    /// Reads `size` data bytes plus padding; the data is returned and, for
    /// extended records, data and padding are also appended to `raw`.
    fn read_padded(
        &mut self,
        size: u64,
        raw: &mut Vec<u8>,
        header_at: u64,
    ) -> Result<Vec<u8>, TarError> {
        let padded = padded_len(size);
        let Ok(padded_usize) = usize::try_from(padded) else {
            return Err(TarError::at(header_at, "size: too large for this machine"));
        };
        let mut buf = vec![0u8; padded_usize];
        let got = read_full(&mut self.inner, &mut buf).map_err(|e| TarError {
            offset: self.pos,
            reason: "read failed".to_owned(),
            io: Some(e),
        })?;
        if got < padded_usize {
            return Err(TarError::at(
                self.pos + got as u64,
                format!(
                    "truncated: member at {header_at} expected {size} data bytes, got {}",
                    (got as u64).min(size)
                ),
            ));
        }
        self.pos += padded;
        // Extended records: keep data and padding verbatim in the header.
        if !raw.is_empty() {
            raw.extend_from_slice(&buf);
        }
        buf.truncate(padded_usize - (padded - size) as usize);
        Ok(buf)
    }

    fn skip_padded(&mut self, size: u64, header_at: u64) -> Result<(), TarError> {
        let padded = padded_len(size);
        let copied =
            io::copy(&mut (&mut self.inner).take(padded), &mut io::sink()).map_err(|e| {
                TarError {
                    offset: self.pos,
                    reason: "read failed".to_owned(),
                    io: Some(e),
                }
            })?;
        if copied < padded {
            return Err(TarError::at(
                self.pos + copied,
                format!(
                    "truncated: member at {header_at} expected {size} data bytes, got {}",
                    copied.min(size)
                ),
            ));
        }
        self.pos += padded;
        Ok(())
    }

    fn read_block(&mut self, block: &mut [u8; BLOCK]) -> Result<BlockRead, TarError> {
        let got = read_full(&mut self.inner, block).map_err(|e| TarError {
            offset: self.pos,
            reason: "read failed".to_owned(),
            io: Some(e),
        })?;
        if got == 0 {
            return Ok(BlockRead::Eof);
        }
        if got < BLOCK {
            return Err(TarError::at(
                self.pos,
                format!("truncated: expected a {BLOCK}-byte header block, got {got} bytes"),
            ));
        }
        self.pos += BLOCK as u64;
        Ok(BlockRead::Full)
    }
}

enum BlockRead {
    Full,
    Eof,
}

/// The length of `size` data bytes rounded up to whole blocks.
pub(crate) fn padded_len(size: u64) -> u64 {
    size.div_ceil(BLOCK as u64) * BLOCK as u64
}

/// Reads until `buf` is full or the reader ends; returns the bytes read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn check_checksum(block: &[u8; BLOCK], at: u64) -> Result<(), TarError> {
    let Some(stored) = parse_octal(&block[148..156]) else {
        return Err(TarError::at(at, "checksum: expected an octal number"));
    };
    let mut unsigned: u64 = 0;
    let mut signed: i64 = 0;
    for (idx, &byte) in block.iter().enumerate() {
        let byte = if (148..156).contains(&idx) {
            b' '
        } else {
            byte
        };
        unsigned += u64::from(byte);
        signed += i64::from(byte as i8);
    }
    // Some old writers summed signed chars; tarfile accepts both.
    if stored != unsigned && i64::try_from(stored).ok() != Some(signed) {
        return Err(TarError::at(
            at,
            format!("checksum: expected {unsigned}, got {stored} (not a tar header)"),
        ));
    }
    Ok(())
}

/// Parses a numeric field: octal text (NUL/space terminated), or GNU base-256
/// when the high bit of the first byte is set.
fn parse_size(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        if field[0] & 0x40 != 0 {
            return None; // negative
        }
        let mut value: u64 = u64::from(field[0] & 0x3f);
        for &byte in &field[1..] {
            value = value.checked_mul(256)?.checked_add(u64::from(byte))?;
        }
        return Some(value);
    }
    parse_octal(field)
}

fn parse_octal(field: &[u8]) -> Option<u64> {
    let text = field
        .iter()
        .copied()
        .skip_while(|&b| b == b' ')
        .take_while(|&b| b != 0 && b != b' ');
    let mut value: u64 = 0;
    let mut digits = 0;
    for byte in text {
        if !(b'0'..=b'7').contains(&byte) {
            return None;
        }
        value = value.checked_mul(8)?.checked_add(u64::from(byte - b'0'))?;
        digits += 1;
    }
    // An all-blank field reads as zero, as in tarfile's nti().
    let _ = digits;
    Some(value)
}

/// The ustar name: `prefix/name` when the ustar magic is present.
fn ustar_name(block: &[u8; BLOCK]) -> Vec<u8> {
    let field = |range: std::ops::Range<usize>| {
        let bytes = &block[range];
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        bytes[..end].to_vec()
    };
    let name = field(0..100);
    let is_posix_ustar = &block[257..263] == b"ustar\0";
    if is_posix_ustar {
        let prefix = field(345..500);
        if !prefix.is_empty() {
            let mut res = prefix;
            res.push(b'/');
            res.extend_from_slice(&name);
            return res;
        }
    }
    name
}

/// Reads `path` and `size` from PAX records (`"%d %s=%s\n"`); malformed
/// records are ignored, as tarfile ignores them.
fn parse_pax(data: &[u8]) -> (Option<Vec<u8>>, Option<u64>) {
    let mut path = None;
    let mut size = None;
    let mut rest = data;
    while !rest.is_empty() {
        let Some(space) = rest.iter().position(|&b| b == b' ') else {
            break;
        };
        let Some(len) = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
        else {
            break;
        };
        if len <= space + 1 || len > rest.len() {
            break;
        }
        let record = &rest[space + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(eq) = record.iter().position(|&b| b == b'=') {
            let (key, value) = (&record[..eq], &record[eq + 1..]);
            match key {
                b"path" => path = Some(value.to_vec()),
                b"size" => size = std::str::from_utf8(value).ok().and_then(|s| s.parse().ok()),
                _ => {}
            }
        }
        rest = &rest[len..];
    }
    (path, size)
}

/// Splits a member name into WebDataset's key and suffix: the key is the
/// directory plus the file name up to its first dot, the suffix the rest,
/// lowercased (webdataset `base_plus_ext`). `None` for names without a dot.
pub(crate) fn key_and_suffix(name: &str) -> Option<(&str, String)> {
    let base_start = name.rfind('/').map_or(0, |i| i + 1);
    let dot = name[base_start..].find('.')? + base_start;
    if dot == base_start {
        return None;
    }
    Some((&name[..dot], name[dot + 1..].to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a tar with the `tar` crate (GNU long names for long paths).
    fn build(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = ::tar::Builder::new(Vec::new());
        for (name, data) in members {
            let mut header = ::tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(1_700_000_000);
            builder.append_data(&mut header, name, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn read_all(bytes: &[u8], limit: u64) -> Result<Vec<Member>, TarError> {
        let mut reader = TarReader::new(bytes, limit);
        let mut res = Vec::new();
        while let Some(member) = reader.next_member()? {
            res.push(member);
        }
        Ok(res)
    }

    #[test]
    fn members_round_trip_verbatim() {
        let long = format!("{}/000000001.jpg", "d".repeat(120));
        let tar = build(&[
            ("000000001.jpg", b"jpegdata"),
            ("000000001.txt", b"a caption"),
            (&long, b"x"),
        ]);
        let members = read_all(&tar, 1 << 20).unwrap();
        assert_eq!(members.len(), 3);
        assert_eq!(members[0].name, "000000001.jpg");
        assert_eq!(members[0].offset, 0);
        assert_eq!(members[1].offset, 1024);
        assert_eq!(members[2].name, long);
        // Writing header + data + padding back gives the original bytes.
        let mut copy = Vec::new();
        for member in &members {
            copy.extend_from_slice(&member.header);
            let Data::Inline(data) = &member.data else {
                panic!("inline")
            };
            copy.extend_from_slice(data);
            copy.resize(
                copy.len() + (padded_len(member.size) - member.size) as usize,
                0,
            );
        }
        assert_eq!(&tar[..copy.len()], &copy[..]);
    }

    #[test]
    fn oversized_members_are_skipped_with_their_offset() {
        let tar = build(&[("a.jpg", &[7u8; 3000]), ("a.txt", b"t")]);
        let members = read_all(&tar, 1000).unwrap();
        assert!(matches!(members[0].data, Data::Skipped { offset: 512 }));
        assert!(matches!(&members[1].data, Data::Inline(d) if d == b"t"));
    }

    #[test]
    fn truncation_and_garbage_name_the_offset() {
        let tar = build(&[("a.jpg", &[1u8; 2000])]);
        let err = read_all(&tar[..1500], 1 << 20).err().unwrap();
        assert!(err.reason.starts_with("truncated"), "{}", err.reason);
        let mut bad = tar.clone();
        bad[0] ^= 0xff;
        let err = read_all(&bad, 1 << 20).err().unwrap();
        assert_eq!(err.offset, 0);
        assert!(err.reason.starts_with("checksum"), "{}", err.reason);
    }

    #[test]
    fn keys_follow_webdataset() {
        assert_eq!(
            key_and_suffix("dir/000001.seg.jpg"),
            Some(("dir/000001", "seg.jpg".to_owned()))
        );
        assert_eq!(key_and_suffix("a.JPG"), Some(("a", "jpg".to_owned())));
        assert_eq!(key_and_suffix("noext"), None);
        assert_eq!(key_and_suffix("d.x/.hidden"), None);
    }

    #[test]
    fn pax_path_and_size_win() {
        let mut builder = ::tar::Builder::new(Vec::new());
        let name = format!("{}.jpg", "é".repeat(80));
        let mut header = ::tar::Header::new_ustar();
        header.set_size(3);
        header.set_mode(0o644);
        builder
            .append_pax_extensions([("path", name.as_bytes())])
            .unwrap();
        builder
            .append_data(&mut header, "short.jpg", &b"abc"[..])
            .unwrap();
        let tar = builder.into_inner().unwrap();
        let members = read_all(&tar, 1 << 20).unwrap();
        assert_eq!(members.len(), 1);
        assert_eq!(members[0].name, name);
        assert!(members[0].header.len() > BLOCK);
    }
}
