//! Safe decoding of untrusted image bytes straight to luminance.
//!
//! Every path checks the limits against the dimensions in the header before
//! any pixel memory is allocated, so a small file announcing a huge image
//! (a decompression bomb) is refused with a clear error. The decoded pixels
//! go through a per-worker buffer that is reused from image to image.
//!
//! Pixel formats are handled deliberately, each for a stated reason:
//! - greyscale is taken as luminance as is (the reference does the same);
//! - alpha is dropped without compositing (the reference's decoder path drops
//!   it too, so hashes agree with banks built by the reference tools);
//! - palette images are expanded by the decoders;
//! - CMYK JPEGs are converted to RGB by the JPEG decoder;
//! - 16-bit samples are scaled with `>> 8` (never clipped, never truncated to
//!   the low byte: see the fixtures' "16-BIT CAVEAT");
//! - float samples (TIFF) are clamped to 0..=1 and scaled to 0..=255.
//!
//! Strictness: a truncated or corrupt file is an error, not a half-grey
//! image, so the caller can report it (the cryptographic hashes are still
//! computed by the caller).

use std::io::Cursor;

use image::{ColorType, ImageDecoder, ImageFormat, metadata::Orientation};

use crate::{
    DecodeLimits, Error, HashConfig, jpeg,
    luma::{Decoded, LumaImage, Plane},
    pdq::Dihedral,
};

/// The formats this crate decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Jpeg,
    Png,
    Gif,
    WebP,
    Bmp,
    Tiff,
}

impl Format {
    /// Recognises a format from its magic bytes.
    pub(crate) fn sniff(bytes: &[u8]) -> Option<Format> {
        let starts = |magic: &[u8]| bytes.starts_with(magic);
        if starts(&[0xff, 0xd8, 0xff]) {
            Some(Format::Jpeg)
        } else if starts(b"\x89PNG\r\n\x1a\n") {
            Some(Format::Png)
        } else if starts(b"GIF87a") || starts(b"GIF89a") {
            Some(Format::Gif)
        } else if bytes.len() >= 12 && starts(b"RIFF") && &bytes[8..12] == b"WEBP" {
            Some(Format::WebP)
        } else if starts(b"BM") {
            Some(Format::Bmp)
        } else if starts(b"II*\0") || starts(b"MM\0*") || starts(b"II+\0") || starts(b"MM\0+") {
            Some(Format::Tiff)
        } else {
            None
        }
    }

    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Format::Jpeg => "jpeg",
            Format::Png => "png",
            Format::Gif => "gif",
            Format::WebP => "webp",
            Format::Bmp => "bmp",
            Format::Tiff => "tiff",
        }
    }

    fn image_format(self) -> ImageFormat {
        match self {
            Format::Jpeg => ImageFormat::Jpeg,
            Format::Png => ImageFormat::Png,
            Format::Gif => ImageFormat::Gif,
            Format::WebP => ImageFormat::WebP,
            Format::Bmp => ImageFormat::Bmp,
            Format::Tiff => ImageFormat::Tiff,
        }
    }
}

/// Per-worker memory reused across images.
#[derive(Default)]
pub(crate) struct DecodeScratch {
    pub(crate) pixels: Vec<u8>,
}

impl DecodeLimits {
    /// Checks header dimensions against the limits, before any allocation.
    pub(crate) fn check(&self, format: Format, width: u64, height: u64) -> Result<(), Error> {
        let too_large = |reason: String| Error::TooLarge {
            format: format.as_str(),
            width,
            height,
            reason,
        };
        if width == 0 || height == 0 {
            return Err(Error::Decode {
                format: format.as_str(),
                reason: format!("zero-sized image {width}x{height}"),
            });
        }
        if width > u64::from(self.max_width) {
            return Err(too_large(format!("width limit {}", self.max_width)));
        }
        if height > u64::from(self.max_height) {
            return Err(too_large(format!("height limit {}", self.max_height)));
        }
        if width * height > self.max_pixels {
            return Err(too_large(format!("pixel limit {}", self.max_pixels)));
        }
        Ok(())
    }

    /// The decoder-side allocation budget: the largest image the limits
    /// allow at 16 bits per channel with alpha, plus room for the decoder's
    /// own tables and row buffers.
    fn max_alloc(&self) -> u64 {
        self.max_pixels.saturating_mul(8).saturating_add(64 << 20)
    }
}

/// Decodes `bytes` to luminance under `config`'s limits, with the EXIF
/// orientation if asked for.
pub(crate) fn decode_luma(
    bytes: &[u8],
    config: &HashConfig,
    scratch: &mut DecodeScratch,
) -> Result<Decoded, Error> {
    let limits = &config.limits;
    if bytes.is_empty() {
        return Err(Error::Empty);
    }
    let size = bytes.len() as u64;
    if size > limits.max_bytes {
        return Err(Error::TooManyBytes {
            size,
            limit: limits.max_bytes,
        });
    }
    let format = Format::sniff(bytes).ok_or(Error::UnknownFormat)?;
    let (plane, orientation) = match format {
        Format::Jpeg => jpeg::decode(bytes, config, scratch)?,
        _ => {
            let (luma, orientation) = decode_with_image(bytes, format, config, scratch)?;
            (Plane::Pixels(luma), orientation)
        }
    };
    Ok(Decoded {
        plane,
        orientation: orientation
            .filter(|_| config.exif_orientation)
            .unwrap_or(Dihedral::Original),
    })
}

/// The transform that displays an image stored with this EXIF orientation.
pub(crate) fn orientation_transform(orientation: Orientation) -> Dihedral {
    // `image` names rotations clockwise; ours are counter-clockwise.
    match orientation {
        Orientation::NoTransforms => Dihedral::Original,
        Orientation::Rotate90 => Dihedral::Rotate270,
        Orientation::Rotate180 => Dihedral::Rotate180,
        Orientation::Rotate270 => Dihedral::Rotate90,
        Orientation::FlipHorizontal => Dihedral::FlipY,
        Orientation::FlipVertical => Dihedral::FlipX,
        Orientation::Rotate90FlipH => Dihedral::FlipPlus1,
        Orientation::Rotate270FlipH => Dihedral::FlipMinus1,
    }
}

/// PNG, GIF (first frame), WebP, BMP and TIFF through the `image` crate's
/// decoders.
fn decode_with_image(
    bytes: &[u8],
    format: Format,
    config: &HashConfig,
    scratch: &mut DecodeScratch,
) -> Result<(LumaImage, Option<Dihedral>), Error> {
    let limits = &config.limits;
    let decode_error = |err: image::ImageError| image_error(format, limits, err);
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format.image_format());
    // Width and height are checked by us right after the header, with an
    // error that names the dimensions; the allocation budget stays with the
    // decoder as a second line of defence.
    let mut image_limits = image::Limits::default();
    image_limits.max_alloc = Some(limits.max_alloc());
    reader.limits(image_limits);
    let mut decoder = reader.into_decoder().map_err(decode_error)?;
    let (width, height) = decoder.dimensions();
    limits.check(format, u64::from(width), u64::from(height))?;
    let orientation = if config.exif_orientation {
        // A malformed EXIF block is not a reason to refuse the pixels.
        Some(orientation_transform(
            decoder.orientation().unwrap_or(Orientation::NoTransforms),
        ))
    } else {
        None
    };
    let color = decoder.color_type();
    let total = usize::try_from(decoder.total_bytes()).map_err(|_| Error::TooLarge {
        format: format.as_str(),
        width: u64::from(width),
        height: u64::from(height),
        reason: "does not fit in memory".to_owned(),
    })?;
    scratch.pixels.clear();
    scratch.pixels.resize(total, 0);
    decoder
        .read_image(&mut scratch.pixels)
        .map_err(decode_error)?;
    let (w, h) = (width as usize, height as usize);
    let luma =
        luma_from_samples(w, h, color, &scratch.pixels).ok_or_else(|| Error::Unsupported {
            format: format.as_str(),
            reason: format!("pixel format {color:?}"),
        })?;
    Ok((luma, orientation))
}

/// Luminance from the `image` crate's native-endian sample buffers.
fn luma_from_samples(w: usize, h: usize, color: ColorType, samples: &[u8]) -> Option<LumaImage> {
    let channels = usize::from(color.channel_count());
    let mut pixels = Vec::with_capacity(w * h);
    match color {
        ColorType::L8 | ColorType::La8 | ColorType::Rgb8 | ColorType::Rgba8 => {
            crate::luma::push_luma8(&mut pixels, channels, samples)?;
        }
        ColorType::L16 | ColorType::La16 | ColorType::Rgb16 | ColorType::Rgba16 => {
            // 16 -> 8 bits by the high byte, row by row to keep the copy small.
            let mut row = Vec::with_capacity(w * channels);
            for src in samples.chunks_exact(w * channels * 2) {
                row.clear();
                row.extend(
                    src.chunks_exact(2)
                        .map(|b| (u16::from_ne_bytes([b[0], b[1]]) >> 8) as u8),
                );
                crate::luma::push_luma8(&mut pixels, channels, &row)?;
            }
        }
        ColorType::Rgb32F | ColorType::Rgba32F => {
            let mut row = Vec::with_capacity(w * channels);
            for src in samples.chunks_exact(w * channels * 4) {
                row.clear();
                row.extend(src.chunks_exact(4).map(|b| {
                    let v = f32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
                    // NaN becomes 0 through the saturating cast.
                    (v.clamp(0.0, 1.0) * 255.0).round() as u8
                }));
                crate::luma::push_luma8(&mut pixels, channels, &row)?;
            }
        }
        _ => return None,
    }
    LumaImage::from_luma(w, h, pixels)
}

/// Maps an `image` error to ours, keeping limit refusals distinguishable.
fn image_error(format: Format, limits: &DecodeLimits, err: image::ImageError) -> Error {
    match err {
        image::ImageError::Limits(limit) => Error::TooLarge {
            format: format.as_str(),
            width: 0,
            height: 0,
            reason: format!(
                "{limit} (limits {}x{}, {} pixels)",
                limits.max_width, limits.max_height, limits.max_pixels
            ),
        },
        image::ImageError::Unsupported(unsupported) => Error::Unsupported {
            format: format.as_str(),
            reason: unsupported.to_string(),
        },
        other => Error::Decode {
            format: format.as_str(),
            reason: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_only_supported_formats() {
        assert_eq!(Format::sniff(b"\xff\xd8\xff\xe0"), Some(Format::Jpeg));
        assert_eq!(Format::sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(Format::WebP));
        assert_eq!(Format::sniff(b"RIFF\0\0\0\0AVI "), None);
        assert_eq!(Format::sniff(b"%PDF-1.7"), None);
        assert_eq!(Format::sniff(b""), None);
    }

    #[test]
    fn limits_refuse_before_decoding() {
        let limits = DecodeLimits {
            max_bytes: 1 << 20,
            max_width: 100,
            max_height: 50,
            max_pixels: 1000,
        };
        let check = |w, h| limits.check(Format::Png, w, h).map_err(|e| e.to_string());
        assert_eq!(check(10, 10), Ok(()));
        assert_eq!(
            check(101, 1),
            Err("png: image too large: 101x1: width limit 100".to_owned())
        );
        assert_eq!(
            check(1, 51),
            Err("png: image too large: 1x51: height limit 50".to_owned())
        );
        assert_eq!(
            check(40, 40),
            Err("png: image too large: 40x40: pixel limit 1000".to_owned())
        );
        assert_eq!(
            check(0, 4),
            Err("png: corrupt or truncated image: zero-sized image 0x4".to_owned())
        );
    }
}
