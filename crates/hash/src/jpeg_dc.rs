//! The JPEG fast path: a 1/8-scale luminance image from the DC coefficients
//! alone, without inverse DCTs, chroma upsampling or colour conversion.
//!
//! The DC coefficient of an 8x8 block is eight times the block's mean
//! (minus the 128 level shift), so the DC plane *is* the image box-filtered
//! and decimated by 8: the same kind of low-pass that PDQ's Jarosz filter
//! applies before it decimates to 64x64. For an image much larger than PDQ's
//! 64x64 working size this loses nothing the hash keeps (tests/reference.rs
//! holds it to the reference tolerance), and it skips most of the work:
//! - sequential (baseline) files: every coefficient must still be
//!   entropy-decoded to find the next block, but AC values are skipped,
//!   not dequantised, transformed or stored;
//! - progressive files: only the DC scans are decoded; AC scans are skipped
//!   by looking for the next marker.
//!
//! Scope: 8-bit Huffman-coded sequential and progressive frames whose first
//! component is luminance (greyscale or YCbCr). Anything else (arithmetic
//! coding, 12-bit, lossless, hierarchical, CMYK, RGB-coded) returns
//! `Ok(None)` and the caller decodes it in full. So does an image too small
//! for the 1/8 plane to keep enough detail ([`MIN_DC_SIDE`]).
//!
//! Untrusted input: every length, table and index is checked; the header's
//! dimensions are checked against the limits before the (small) coefficient
//! plane is allocated; a stream that ends early is an error, not a grey
//! image.

use image::metadata::Orientation;

use crate::{
    Error, HashConfig,
    decode::{Format, orientation_transform},
    luma::{LumaImage, Plane},
    pdq::Dihedral,
};

/// The smallest side, in 8x8 blocks, of the luminance plane for which the
/// DC-only path is used: 96 blocks, 768 pixels, 1.5 times the reference's
/// 512. Measured on the fixtures (tests/reference.rs): from 64 blocks up the
/// fast path stays within 10 bits of the reference (mean 4.2, as full
/// decoding); at 32 blocks it reaches 30 bits on 256-pixel photos, whose
/// 1/8 plane has too few samples per PDQ cell.
pub(crate) const MIN_DC_SIDE: usize = 96;

/// The most scans a progressive file may have before it is refused; real
/// encoders use about ten. Bounds the work a hostile file can cause.
const MAX_SCANS: usize = 128;

fn corrupt(reason: impl Into<String>) -> Error {
    Error::Decode {
        format: Format::Jpeg.as_str(),
        reason: reason.into(),
    }
}

/// Decodes the luminance DC plane if the file is eligible, `Ok(None)` if it
/// is not (the caller then decodes it fully), or an error for a corrupt or
/// oversized file.
pub(crate) fn decode(
    bytes: &[u8],
    config: &HashConfig,
) -> Result<Option<(Plane, Option<Dihedral>)>, Error> {
    decode_with_min_side(bytes, config, MIN_DC_SIDE)
}

/// [`decode`] with the eligibility threshold as a parameter, for tests that
/// measure the fast path on small images.
pub(crate) fn decode_with_min_side(
    bytes: &[u8],
    config: &HashConfig,
    min_side: usize,
) -> Result<Option<(Plane, Option<Dihedral>)>, Error> {
    let mut decoder = DcDecoder::default();
    decoder.run(bytes, config, min_side)
}

/// A Huffman table as lookups: a fast table for codes of up to
/// [`LOOKUP_BITS`] bits and the canonical `maxcode`/`valptr` arrays for the
/// rest (ITU T.81 F.2.2.3).
#[derive(Clone)]
struct Huffman {
    /// Indexed by the next `LOOKUP_BITS` bits: `(code length, symbol)`,
    /// length 0 when the code is longer.
    fast: Box<[(u8, u8); 1 << LOOKUP_BITS]>,
    /// Largest code of each length 1..=16, or -1.
    maxcode: [i32; 18],
    /// Index in `values` of the first code of each length, minus that code.
    valoffset: [i32; 17],
    values: Vec<u8>,
}

const LOOKUP_BITS: u32 = 9;

impl Huffman {
    fn parse(counts: &[u8; 16], values: &[u8]) -> Result<Huffman, Error> {
        let mut fast = Box::new([(0u8, 0u8); 1 << LOOKUP_BITS]);
        let mut maxcode = [-1i32; 18];
        let mut valoffset = [0i32; 17];
        let mut code: u32 = 0;
        let mut k: usize = 0;
        for len in 1..=16u32 {
            let count = u32::from(counts[len as usize - 1]);
            if count > 0 {
                valoffset[len as usize] = k as i32 - code as i32;
                for _ in 0..count {
                    if code >= (1 << len) {
                        return Err(corrupt("bad huffman table: code space overflow"));
                    }
                    if len <= LOOKUP_BITS {
                        let shift = LOOKUP_BITS - len;
                        let first = (code << shift) as usize;
                        for entry in &mut fast[first..first + (1 << shift)] {
                            *entry = (len as u8, values[k]);
                        }
                    }
                    code += 1;
                    k += 1;
                }
                maxcode[len as usize] = code as i32 - 1;
            }
            code <<= 1;
        }
        // Sentinel so the slow path always terminates.
        maxcode[17] = i32::MAX;
        Ok(Huffman {
            fast,
            maxcode,
            valoffset,
            values: values.to_vec(),
        })
    }
}

/// Reads entropy-coded bits, removing byte stuffing and stopping at markers.
///
/// Past a marker or the end of the data it feeds zero bits (as decoders do)
/// and counts them; consuming any of them means the stream was truncated or
/// corrupt.
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    bits: u64,
    nbits: u32,
    /// Zero bits appended after a marker or the end of the data.
    fake_bits: u32,
    overrun: bool,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8], pos: usize) -> BitReader<'a> {
        BitReader {
            data,
            pos,
            bits: 0,
            nbits: 0,
            fake_bits: 0,
            overrun: false,
        }
    }

    #[inline]
    fn refill(&mut self) {
        while self.nbits <= 56 {
            let byte = match self.data.get(self.pos) {
                Some(&0xff) => match self.data.get(self.pos + 1) {
                    Some(0x00) => {
                        self.pos += 2;
                        0xff
                    }
                    _ => {
                        self.fake_bits += 8;
                        0
                    }
                },
                Some(&b) => {
                    self.pos += 1;
                    b
                }
                None => {
                    self.fake_bits += 8;
                    0
                }
            };
            self.bits |= u64::from(byte) << (56 - self.nbits);
            self.nbits += 8;
        }
    }

    #[inline]
    fn consume(&mut self, n: u32) {
        self.bits <<= n;
        self.nbits -= n;
        if self.nbits < self.fake_bits {
            self.overrun = true;
        }
    }

    #[inline]
    fn peek(&mut self, n: u32) -> u32 {
        if self.nbits < n {
            self.refill();
        }
        (self.bits >> (64 - n)) as u32
    }

    #[inline]
    fn get(&mut self, n: u32) -> u32 {
        if n == 0 {
            return 0;
        }
        let v = self.peek(n);
        self.consume(n);
        v
    }

    /// Decodes one Huffman symbol.
    #[inline]
    fn symbol(&mut self, table: &Huffman) -> Result<u8, Error> {
        let look = self.peek(16);
        let (len, sym) = table.fast[(look >> (16 - LOOKUP_BITS)) as usize];
        if len > 0 {
            self.consume(u32::from(len));
            return Ok(sym);
        }
        let mut len = LOOKUP_BITS + 1;
        while len <= 16 {
            let code = (look >> (16 - len)) as i32;
            if code <= table.maxcode[len as usize] {
                self.consume(len);
                let index = table.valoffset[len as usize] + code;
                return usize::try_from(index)
                    .ok()
                    .and_then(|i| table.values.get(i).copied())
                    .ok_or_else(|| corrupt("bad huffman code"));
            }
            len += 1;
        }
        Err(corrupt("bad huffman code"))
    }

    /// The signed value of an `s`-bit magnitude category (T.81 F.2.2.1 EXTEND).
    #[inline]
    fn receive_extend(&mut self, s: u8) -> i32 {
        if s == 0 {
            return 0;
        }
        let v = self.get(u32::from(s)) as i32;
        if v < 1 << (s - 1) {
            v - (1 << s) + 1
        } else {
            v
        }
    }

    /// After a restart interval: drop the partial byte and step over the
    /// expected RSTn marker.
    fn restart(&mut self) -> Result<(), Error> {
        self.bits = 0;
        self.nbits = 0;
        self.fake_bits = 0;
        match (self.data.get(self.pos), self.data.get(self.pos + 1)) {
            (Some(0xff), Some(0xd0..=0xd7)) => {
                self.pos += 2;
                Ok(())
            }
            _ => Err(corrupt("missing restart marker")),
        }
    }

    /// Position of the first byte after the bits consumed so far, rounded
    /// to the byte (where the next marker is).
    fn end_position(&self) -> usize {
        let unread_real = (self.nbits.saturating_sub(self.fake_bits) / 8) as usize;
        self.pos.saturating_sub(unread_real)
    }
}

#[derive(Clone, Copy, Default)]
struct Component {
    id: u8,
    h: usize,
    v: usize,
    quant: usize,
}

#[derive(Default)]
struct DcDecoder {
    dc_tables: [Option<Huffman>; 4],
    ac_tables: [Option<Huffman>; 4],
    /// The DC entry of each quantisation table.
    quant_dc: [Option<u16>; 4],
    restart_interval: usize,
    adobe_transform: Option<u8>,
    exif: Option<(usize, usize)>,
    frame: Option<Frame>,
    scans: usize,
}

struct Frame {
    progressive: bool,
    width: usize,
    height: usize,
    components: Vec<Component>,
    hmax: usize,
    vmax: usize,
    /// Interleaved MCU grid.
    mcux: usize,
    mcuy: usize,
    /// The luminance DC coefficients (quantised), `stride` per block row,
    /// covering the interleaved MCU grid including its padding blocks.
    dc: Vec<i32>,
    stride: usize,
    /// Size of the luminance plane in pixels.
    plane_width: usize,
    plane_height: usize,
    /// Blocks of the luminance plane proper (without MCU padding).
    blocks_w: usize,
    blocks_h: usize,
    /// Whether luminance data was seen at all.
    seen_luma: bool,
}

fn read_u16(bytes: &[u8], at: usize) -> Result<usize, Error> {
    match (bytes.get(at), bytes.get(at + 1)) {
        (Some(&hi), Some(&lo)) => Ok(usize::from(u16::from_be_bytes([hi, lo]))),
        _ => Err(corrupt("unexpected end of file in a header")),
    }
}

impl DcDecoder {
    fn run(
        &mut self,
        bytes: &[u8],
        config: &HashConfig,
        min_side: usize,
    ) -> Result<Option<(Plane, Option<Dihedral>)>, Error> {
        let mut pos = 2;
        loop {
            // Find the next marker, allowing fill bytes.
            while bytes.get(pos) == Some(&0xff) && bytes.get(pos + 1) == Some(&0xff) {
                pos += 1;
            }
            let marker = match (bytes.get(pos), bytes.get(pos + 1)) {
                (Some(0xff), Some(&m)) => m,
                (None, _) | (Some(_), None) => {
                    // The end of the file after the last scan: a missing EOI
                    // is tolerated when the scans were complete.
                    return self.finish(bytes, config);
                }
                _ => return Err(corrupt(format!("expected a marker at byte {pos}"))),
            };
            pos += 2;
            match marker {
                0xd8 | 0x01 | 0xd0..=0xd7 => continue,
                0xd9 => return self.finish(bytes, config),
                _ => {}
            }
            let len = read_u16(bytes, pos)?;
            if len < 2 || pos + len > bytes.len() {
                return Err(corrupt(format!(
                    "marker segment 0x{marker:02x} overruns the file"
                )));
            }
            let segment = &bytes[pos + 2..pos + len];
            match marker {
                0xc0..=0xc2 => {
                    if self.frame.is_some() {
                        return Ok(None);
                    }
                    if !self.parse_frame(segment, marker == 0xc2, config, min_side)? {
                        return Ok(None);
                    }
                }
                // Lossless, hierarchical, arithmetic-coded: decode in full.
                0xc3 | 0xc5..=0xc7 | 0xc9..=0xcb | 0xcd..=0xcf | 0xdc | 0xde => return Ok(None),
                0xc4 => self.parse_huffman(segment)?,
                0xdb => self.parse_quant(segment)?,
                0xdd => {
                    self.restart_interval = read_u16(segment, 0)?;
                }
                0xe1 if segment.starts_with(b"Exif\0\0") => {
                    self.exif = Some((pos + 2 + 6, pos + len));
                }
                0xee if segment.starts_with(b"Adobe") && segment.len() >= 12 => {
                    self.adobe_transform = Some(segment[11]);
                }
                0xda => {
                    if !self.luma_is_first_component() {
                        return Ok(None);
                    }
                    self.scans += 1;
                    if self.scans > MAX_SCANS {
                        return Err(corrupt(format!("more than {MAX_SCANS} scans")));
                    }
                    pos = self.scan(bytes, pos + 2, segment)?;
                    continue;
                }
                _ => {}
            }
            pos += len;
        }
    }

    /// Whether component 0 is luminance: greyscale, or three components that
    /// are YCbCr (not RGB-coded, not CMYK/YCCK).
    fn luma_is_first_component(&self) -> bool {
        let Some(frame) = &self.frame else {
            return false;
        };
        match frame.components.len() {
            1 => true,
            3 => {
                let ids: Vec<u8> = frame.components.iter().map(|c| c.id).collect();
                let rgb_ids = ids == [b'R', b'G', b'B'];
                !rgb_ids && self.adobe_transform != Some(0)
            }
            _ => false,
        }
    }

    /// Parses SOF0/1/2. Returns false if the frame is not for this path.
    fn parse_frame(
        &mut self,
        segment: &[u8],
        progressive: bool,
        config: &HashConfig,
        min_side: usize,
    ) -> Result<bool, Error> {
        if segment.len() < 6 {
            return Err(corrupt("short frame header"));
        }
        let precision = segment[0];
        let height = read_u16(segment, 1)?;
        let width = read_u16(segment, 3)?;
        let count = usize::from(segment[5]);
        if height == 0 {
            // The height comes later in a DNL marker: rare; decode in full.
            return Ok(false);
        }
        config
            .limits
            .check(Format::Jpeg, width as u64, height as u64)?;
        if precision != 8 || !(count == 1 || count == 3) {
            return Ok(false);
        }
        if segment.len() < 6 + 3 * count {
            return Err(corrupt("short frame header"));
        }
        let mut components = Vec::with_capacity(count);
        for c in segment[6..6 + 3 * count].chunks_exact(3) {
            let (h, v, quant) = (
                usize::from(c[1] >> 4),
                usize::from(c[1] & 15),
                usize::from(c[2]),
            );
            if !(1..=4).contains(&h) || !(1..=4).contains(&v) || quant > 3 {
                return Err(corrupt("bad component sampling or table"));
            }
            components.push(Component {
                id: c[0],
                h,
                v,
                quant,
            });
        }
        let hmax = components.iter().map(|c| c.h).max().unwrap_or(1);
        let vmax = components.iter().map(|c| c.v).max().unwrap_or(1);
        let luma = components[0];
        let plane_width = (width * luma.h).div_ceil(hmax);
        let plane_height = (height * luma.v).div_ceil(vmax);
        let (blocks_w, blocks_h) = (plane_width.div_ceil(8), plane_height.div_ceil(8));
        if blocks_w.min(blocks_h) < min_side {
            return Ok(false);
        }
        let mcux = width.div_ceil(8 * hmax);
        let mcuy = height.div_ceil(8 * vmax);
        let stride = mcux * luma.h;
        let rows = mcuy * luma.v;
        self.frame = Some(Frame {
            progressive,
            width,
            height,
            components,
            hmax,
            vmax,
            mcux,
            mcuy,
            dc: vec![0; stride * rows],
            stride,
            plane_width,
            plane_height,
            blocks_w,
            blocks_h,
            seen_luma: false,
        });
        Ok(true)
    }

    fn parse_huffman(&mut self, mut segment: &[u8]) -> Result<(), Error> {
        while !segment.is_empty() {
            if segment.len() < 17 {
                return Err(corrupt("short huffman table"));
            }
            let (class, id) = (segment[0] >> 4, usize::from(segment[0] & 15));
            let mut counts = [0u8; 16];
            counts.copy_from_slice(&segment[1..17]);
            let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
            if class > 1 || id > 3 || total > 256 || segment.len() < 17 + total {
                return Err(corrupt("bad huffman table"));
            }
            let table = Huffman::parse(&counts, &segment[17..17 + total])?;
            if class == 0 {
                self.dc_tables[id] = Some(table);
            } else {
                self.ac_tables[id] = Some(table);
            }
            segment = &segment[17 + total..];
        }
        Ok(())
    }

    fn parse_quant(&mut self, mut segment: &[u8]) -> Result<(), Error> {
        while !segment.is_empty() {
            let (precision, id) = (segment[0] >> 4, usize::from(segment[0] & 15));
            let size = if precision == 0 { 64 } else { 128 };
            if precision > 1 || id > 3 || segment.len() < 1 + size {
                return Err(corrupt("bad quantisation table"));
            }
            let dc = if precision == 0 {
                u16::from(segment[1])
            } else {
                u16::from_be_bytes([segment[1], segment[2]])
            };
            self.quant_dc[id] = Some(dc);
            segment = &segment[1 + size..];
        }
        Ok(())
    }

    /// Decodes (or skips) one scan; returns the position after its data.
    fn scan(&mut self, bytes: &[u8], data_start: usize, header: &[u8]) -> Result<usize, Error> {
        let Some(frame) = self.frame.as_mut() else {
            return Err(corrupt("scan before frame header"));
        };
        let count = usize::from(*header.first().ok_or_else(|| corrupt("short scan header"))?);
        if !(1..=4).contains(&count) || header.len() < 1 + 2 * count + 3 {
            return Err(corrupt("bad scan header"));
        }
        // (component index in the frame, DC table, AC table)
        let mut members = Vec::with_capacity(count);
        for s in header[1..1 + 2 * count].chunks_exact(2) {
            let index = frame
                .components
                .iter()
                .position(|c| c.id == s[0])
                .ok_or_else(|| corrupt("scan names an unknown component"))?;
            members.push((index, usize::from(s[1] >> 4), usize::from(s[1] & 15)));
        }
        let spectral_start = header[1 + 2 * count];
        let spectral_end = header[2 + 2 * count];
        let (approx_high, approx_low) = (header[3 + 2 * count] >> 4, header[3 + 2 * count] & 15);
        let data_pos = data_start + header.len();
        if frame.progressive && spectral_start > 0 {
            // An AC scan: not needed for the DC plane.
            return skip_entropy_data(bytes, data_pos);
        }
        if frame.progressive && (spectral_end != 0 || approx_low > 13) {
            return Err(corrupt("bad progressive dc scan"));
        }
        if !members.iter().any(|m| m.0 == 0) {
            // A non-interleaved scan of a chroma component.
            return skip_entropy_data(bytes, data_pos);
        }
        let blocks_per_mcu: usize = members
            .iter()
            .map(|&(i, _, _)| {
                if count == 1 {
                    1
                } else {
                    frame.components[i].h * frame.components[i].v
                }
            })
            .sum();
        if blocks_per_mcu > 10 {
            return Err(corrupt("too many blocks per mcu"));
        }
        let mut tables = Vec::with_capacity(count);
        for &(index, dc_id, ac_id) in &members {
            let refine = frame.progressive && approx_high != 0;
            let dc = if refine {
                None
            } else {
                Some(
                    self.dc_tables
                        .get(dc_id)
                        .and_then(Option::as_ref)
                        .ok_or_else(|| corrupt("missing dc huffman table"))?,
                )
            };
            let ac = if frame.progressive {
                None
            } else {
                Some(
                    self.ac_tables
                        .get(ac_id)
                        .and_then(Option::as_ref)
                        .ok_or_else(|| corrupt("missing ac huffman table"))?,
                )
            };
            tables.push((index, dc, ac));
        }
        frame.seen_luma = true;
        let mode = if !frame.progressive {
            Mode::Sequential
        } else if approx_high == 0 {
            Mode::DcFirst(approx_low)
        } else {
            Mode::DcRefine(approx_low)
        };
        let mut reader = BitReader::new(bytes, data_pos);
        let mut predictors = [0i32; 4];
        let (mcus_x, mcus_y) = if count == 1 {
            let c = frame.components[members[0].0];
            (
                (frame.width * c.h).div_ceil(frame.hmax).div_ceil(8),
                (frame.height * c.v).div_ceil(frame.vmax).div_ceil(8),
            )
        } else {
            (frame.mcux, frame.mcuy)
        };
        let restart = self.restart_interval;
        let mut mcu_index = 0usize;
        for my in 0..mcus_y {
            for mx in 0..mcus_x {
                if restart > 0 && mcu_index > 0 && mcu_index.is_multiple_of(restart) {
                    reader.restart()?;
                    predictors = [0; 4];
                }
                mcu_index += 1;
                for (slot, &(index, dc_table, ac_table)) in tables.iter().enumerate() {
                    let c = frame.components[index];
                    let (bw, bh) = if count == 1 { (1, 1) } else { (c.h, c.v) };
                    for by in 0..bh {
                        for bx in 0..bw {
                            let value = decode_block(
                                &mut reader,
                                mode,
                                dc_table,
                                ac_table,
                                &mut predictors[slot],
                            )?;
                            if index == 0 {
                                let (x, y) = (mx * bw + bx, my * bh + by);
                                if let Some(cell) = frame.dc.get_mut(y * frame.stride + x) {
                                    match mode {
                                        Mode::DcRefine(low) => *cell |= value << low,
                                        _ => *cell = value,
                                    }
                                }
                            }
                        }
                    }
                }
            }
            if reader.overrun {
                return Err(corrupt("entropy data ends early (truncated file?)"));
            }
        }
        if reader.overrun {
            return Err(corrupt("entropy data ends early (truncated file?)"));
        }
        skip_entropy_data(bytes, reader.end_position())
    }

    fn finish(
        &mut self,
        bytes: &[u8],
        config: &HashConfig,
    ) -> Result<Option<(Plane, Option<Dihedral>)>, Error> {
        let Some(frame) = self.frame.take() else {
            return Err(corrupt("no frame header"));
        };
        if !frame.seen_luma {
            return Err(corrupt("no luminance scan"));
        }
        let quant = self.quant_dc[frame.components[0].quant]
            .ok_or_else(|| corrupt("missing quantisation table"))?;
        // The DC coefficient is 8 times the block mean, level-shifted by 128.
        let scale = f32::from(quant) / 8.0;
        let mut pixels = Vec::with_capacity(frame.blocks_w * frame.blocks_h);
        for row in frame.dc.chunks_exact(frame.stride).take(frame.blocks_h) {
            pixels.extend(
                row[..frame.blocks_w]
                    .iter()
                    .map(|&dc| (dc as f32 * scale + 128.0).clamp(0.0, 255.0)),
            );
        }
        let luma = LumaImage::from_luma(frame.blocks_w, frame.blocks_h, pixels)
            .ok_or_else(|| corrupt("dc plane size mismatch"))?;
        let orientation = config.exif_orientation.then(|| {
            self.exif
                .and_then(|(start, end)| bytes.get(start..end))
                .map_or(Dihedral::Original, exif_transform)
        });
        Ok(Some((
            Plane::BlockMeans {
                means: luma,
                width: frame.plane_width,
                height: frame.plane_height,
            },
            orientation,
        )))
    }
}

#[derive(Clone, Copy)]
enum Mode {
    Sequential,
    DcFirst(u8),
    DcRefine(u8),
}

/// Decodes one block's DC value (the new coefficient, or the refinement bit)
/// and, in a sequential scan, steps over its AC coefficients.
#[inline]
fn decode_block(
    reader: &mut BitReader<'_>,
    mode: Mode,
    dc_table: Option<&Huffman>,
    ac_table: Option<&Huffman>,
    predictor: &mut i32,
) -> Result<i32, Error> {
    match mode {
        Mode::DcRefine(_) => Ok(reader.get(1) as i32),
        Mode::DcFirst(low) => {
            let table = dc_table.ok_or_else(|| corrupt("missing dc huffman table"))?;
            let s = reader.symbol(table)?;
            if s > 11 {
                return Err(corrupt("bad dc magnitude"));
            }
            // Wrapping: a hostile file can sum diffs past i32 over a million blocks.
            *predictor = predictor.wrapping_add(reader.receive_extend(s));
            Ok(*predictor << low)
        }
        Mode::Sequential => {
            let table = dc_table.ok_or_else(|| corrupt("missing dc huffman table"))?;
            let s = reader.symbol(table)?;
            if s > 11 {
                return Err(corrupt("bad dc magnitude"));
            }
            // Wrapping: a hostile file can sum diffs past i32 over a million blocks.
            *predictor = predictor.wrapping_add(reader.receive_extend(s));
            let ac = ac_table.ok_or_else(|| corrupt("missing ac huffman table"))?;
            let mut k = 1;
            while k < 64 {
                let rs = reader.symbol(ac)?;
                let (run, size) = (rs >> 4, rs & 15);
                if size == 0 {
                    if run != 15 {
                        break;
                    }
                    k += 16;
                } else {
                    k += usize::from(run);
                    if k > 63 || size > 10 {
                        return Err(corrupt("bad ac coefficient"));
                    }
                    // The value is not needed: step over its bits.
                    reader.get(u32::from(size));
                    k += 1;
                }
            }
            Ok(*predictor)
        }
    }
}

/// Steps from `pos` over entropy-coded data to the next marker (skipping
/// stuffed bytes and restart markers). Running into the end of the file is a
/// truncated file.
fn skip_entropy_data(bytes: &[u8], mut pos: usize) -> Result<usize, Error> {
    loop {
        let rest = bytes.get(pos..).unwrap_or(&[]);
        let Some(offset) = rest.iter().position(|&b| b == 0xff) else {
            return Err(corrupt("entropy data ends early (truncated file?)"));
        };
        pos += offset;
        match bytes.get(pos + 1) {
            None => return Err(corrupt("entropy data ends early (truncated file?)")),
            Some(0x00 | 0xd0..=0xd7 | 0xff) => pos += 1,
            Some(_) => return Ok(pos),
        }
    }
}

/// The orientation recorded in an EXIF block, as the transform that displays it.
pub(crate) fn exif_transform(exif: &[u8]) -> Dihedral {
    Orientation::from_exif_chunk(exif).map_or(Dihedral::Original, orientation_transform)
}

#[cfg(test)]
mod tests {
    use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

    use super::*;
    use crate::{decode::DecodeScratch, jpeg};

    /// A smooth, structured RGB test pattern (gradients and waves: benign).
    fn pattern(width: usize, height: usize, seed: u32) -> Vec<u8> {
        let s = seed as f32;
        let mut rgb = Vec::with_capacity(width * height * 3);
        for y in 0..height {
            for x in 0..width {
                let (fx, fy) = (x as f32 / width as f32, y as f32 / height as f32);
                let wave = ((fx * (3.0 + s % 5.0) + fy * 2.0) * std::f32::consts::TAU).sin();
                let ring = (((fx - 0.4).powi(2) + (fy - 0.6).powi(2)).sqrt() * (20.0 + s)).cos();
                let base = 128.0 + 60.0 * wave + 40.0 * ring;
                rgb.push((base + 30.0 * fx).clamp(0.0, 255.0) as u8);
                rgb.push(base.clamp(0.0, 255.0) as u8);
                rgb.push((base - 40.0 * fy).clamp(0.0, 255.0) as u8);
            }
        }
        rgb
    }

    struct Variant {
        progressive: bool,
        sampling: SamplingFactor,
        restart: u16,
        grey: bool,
    }

    fn encode(width: usize, height: usize, v: &Variant, exif: Option<&[u8]>) -> Vec<u8> {
        let rgb = pattern(width, height, u32::from(v.restart) + 3);
        let mut out = Vec::new();
        let mut encoder = Encoder::new(&mut out, 90);
        encoder.set_progressive(v.progressive);
        encoder.set_sampling_factor(v.sampling);
        if v.restart > 0 {
            encoder.set_restart_interval(v.restart);
        }
        if let Some(exif) = exif {
            encoder.add_exif_metadata(exif).unwrap();
        }
        if v.grey {
            let grey: Vec<u8> = rgb.chunks_exact(3).map(|p| p[1]).collect();
            encoder
                .encode(&grey, width as u16, height as u16, ColorType::Luma)
                .unwrap();
        } else {
            encoder
                .encode(&rgb, width as u16, height as u16, ColorType::Rgb)
                .unwrap();
        }
        out
    }

    /// Block means of the fully decoded luminance, to compare the DC plane with.
    fn block_means_of_full_decode(bytes: &[u8]) -> (usize, usize, Vec<f32>) {
        let config = HashConfig {
            full_decode: true,
            ..HashConfig::default()
        };
        let (plane, _) = jpeg::decode(bytes, &config, &mut DecodeScratch::default()).unwrap();
        let Plane::Pixels(luma) = plane else {
            panic!("full decode gave block means")
        };
        let (w, h) = (luma.width(), luma.height());
        let (bw, bh) = (w.div_ceil(8), h.div_ceil(8));
        let mut sums = vec![0f32; bw * bh];
        let mut counts = vec![0f32; bw * bh];
        for (i, v) in luma.pixels().iter().enumerate() {
            let cell = (i / w / 8) * bw + (i % w) / 8;
            sums[cell] += v;
            counts[cell] += 1.0;
        }
        (
            bw,
            bh,
            sums.iter().zip(&counts).map(|(s, c)| s / c).collect(),
        )
    }

    fn check_dc_plane(width: usize, height: usize, v: Variant) {
        let bytes = encode(width, height, &v, None);
        let (plane, _) = decode_with_min_side(&bytes, &HashConfig::default(), 1)
            .unwrap()
            .unwrap();
        let Plane::BlockMeans {
            means,
            width: pw,
            height: ph,
        } = plane
        else {
            panic!("expected block means")
        };
        assert_eq!((pw, ph), (width, height));
        let (bw, bh, want) = block_means_of_full_decode(&bytes);
        assert_eq!((means.width(), means.height()), (bw, bh));
        // Only whole blocks: a partial block at the right or bottom edge also
        // averages the encoder's padding, which the image does not show.
        let diffs: Vec<f32> = means
            .pixels()
            .iter()
            .zip(&want)
            .enumerate()
            .filter(|(i, _)| (i % bw + 1) * 8 <= width && (i / bw + 1) * 8 <= height)
            .map(|(_, (a, b))| (a - b).abs())
            .collect();
        let mean = diffs.iter().sum::<f32>() / diffs.len() as f32;
        let max = diffs.iter().copied().fold(0f32, f32::max);
        // The DC is the exact block mean before the decoder's IDCT rounding,
        // clamping and (for colour) the RGB round trip.
        assert!(mean < 0.6 && max < 6.0, "mean {mean} max {max}");
    }

    #[test]
    fn dc_plane_is_the_block_means_baseline_420() {
        check_dc_plane(
            203,
            141,
            Variant {
                progressive: false,
                sampling: SamplingFactor::F_2_2,
                restart: 0,
                grey: false,
            },
        );
    }

    #[test]
    fn dc_plane_is_the_block_means_baseline_444_with_restarts() {
        check_dc_plane(
            120,
            97,
            Variant {
                progressive: false,
                sampling: SamplingFactor::F_1_1,
                restart: 3,
                grey: false,
            },
        );
    }

    #[test]
    fn dc_plane_is_the_block_means_baseline_422_with_restarts() {
        check_dc_plane(
            150,
            66,
            Variant {
                progressive: false,
                sampling: SamplingFactor::F_2_1,
                restart: 7,
                grey: false,
            },
        );
    }

    #[test]
    fn dc_plane_is_the_block_means_progressive_420() {
        check_dc_plane(
            203,
            141,
            Variant {
                progressive: true,
                sampling: SamplingFactor::F_2_2,
                restart: 0,
                grey: false,
            },
        );
    }

    #[test]
    fn dc_plane_is_the_block_means_progressive_with_restarts() {
        check_dc_plane(
            99,
            130,
            Variant {
                progressive: true,
                sampling: SamplingFactor::F_2_2,
                restart: 5,
                grey: false,
            },
        );
    }

    #[test]
    fn dc_plane_is_the_block_means_greyscale() {
        check_dc_plane(
            77,
            64,
            Variant {
                progressive: false,
                sampling: SamplingFactor::F_1_1,
                restart: 0,
                grey: true,
            },
        );
        check_dc_plane(
            77,
            64,
            Variant {
                progressive: true,
                sampling: SamplingFactor::F_1_1,
                restart: 0,
                grey: true,
            },
        );
    }

    #[test]
    fn small_images_are_left_to_the_full_decoder() {
        let v = Variant {
            progressive: false,
            sampling: SamplingFactor::F_2_2,
            restart: 0,
            grey: false,
        };
        let bytes = encode(600, 900, &v, None);
        // 600 px is 75 blocks, under the 96-block minimum.
        assert!(decode(&bytes, &HashConfig::default()).unwrap().is_none());
    }

    #[test]
    fn truncated_and_corrupt_streams_are_errors() {
        for progressive in [false, true] {
            let v = Variant {
                progressive,
                sampling: SamplingFactor::F_2_2,
                restart: 0,
                grey: false,
            };
            let bytes = encode(160, 120, &v, None);
            for cut in [bytes.len() / 3, bytes.len() / 2, bytes.len() - 40] {
                let err =
                    decode_with_min_side(&bytes[..cut], &HashConfig::default(), 1).unwrap_err();
                assert!(
                    err.to_string()
                        .starts_with("jpeg: corrupt or truncated image"),
                    "{err}"
                );
            }
        }
    }

    #[test]
    fn oversized_headers_are_refused_before_allocation() {
        let v = Variant {
            progressive: false,
            sampling: SamplingFactor::F_2_2,
            restart: 0,
            grey: false,
        };
        let mut bytes = encode(64, 64, &v, None);
        // Patch the frame header to announce 60000 x 60000.
        let sof = bytes.windows(2).position(|w| w == [0xff, 0xc0]).unwrap();
        bytes[sof + 5..sof + 9].copy_from_slice(&[0xea, 0x60, 0xea, 0x60]);
        let err = decode_with_min_side(&bytes, &HashConfig::default(), 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "jpeg: image too large: 60000x60000: width limit 32768"
        );
    }

    #[test]
    fn exif_orientation_is_read_from_app1() {
        // A big-endian TIFF header with one IFD entry: Orientation (0x0112) = 6.
        let exif = [
            b'M', b'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0,
            0,
        ];
        let v = Variant {
            progressive: false,
            sampling: SamplingFactor::F_2_2,
            restart: 0,
            grey: false,
        };
        let bytes = encode(128, 96, &v, Some(&exif));
        let config = HashConfig {
            exif_orientation: true,
            ..HashConfig::default()
        };
        let (_, orientation) = decode_with_min_side(&bytes, &config, 1).unwrap().unwrap();
        // EXIF 6 is "rotate 90 clockwise to display": our Rotate270.
        assert_eq!(orientation, Some(Dihedral::Rotate270));
    }
}
