//! JPEG to luminance: the DCT-domain fast path for large images, zune-jpeg
//! for everything else.
//!
//! Paths, in order of preference:
//! 1. **DC only** (`jpeg_dc.rs`): for a large baseline or progressive JPEG,
//!    when full decoding is not forced, the luminance plane is rebuilt from
//!    the DC coefficients alone: one value per 8x8 block, the block's mean,
//!    which is a 1/8 scale image. The AC coefficients are skipped without
//!    dequantising or transforming them (and in a progressive file their
//!    scans are not even entropy-decoded).
//! 2. **Y plane** (zune-jpeg, luminance output): when full decoding is not
//!    forced, a YCbCr or greyscale JPEG yields its Y plane directly, which
//!    is luminance by the same BT.601 weights PDQ uses; chroma is never
//!    upsampled or converted.
//! 3. **Full** (zune-jpeg, RGB output, then the reference luminance): what
//!    the reference does. Forced by [`HashConfig::full_decode`], and used for
//!    CMYK and RGB-coded JPEGs.
//!
//! Every path decodes strictly: a truncated or corrupt entropy stream is an
//! error rather than an image padded with grey.

use zune_jpeg::{
    JpegDecoder,
    zune_core::{bytestream::ZCursor, colorspace::ColorSpace, options::DecoderOptions},
};

use crate::{
    Error, HashConfig,
    decode::{DecodeScratch, Format, orientation_transform},
    jpeg_dc,
    luma::{LumaImage, Plane},
    pdq::Dihedral,
};

/// Decodes a JPEG to luminance and, when asked, its EXIF orientation.
pub(crate) fn decode(
    bytes: &[u8],
    config: &HashConfig,
    scratch: &mut DecodeScratch,
) -> Result<(Plane, Option<Dihedral>), Error> {
    if !config.full_decode
        && let Some(decoded) = jpeg_dc::decode(bytes, config)?
    {
        return Ok(decoded);
    }
    let (luma, orientation) = decode_zune(bytes, config, scratch)?;
    Ok((Plane::Pixels(luma), orientation))
}

fn zune_error(err: zune_jpeg::errors::DecodeErrors) -> Error {
    Error::Decode {
        format: Format::Jpeg.as_str(),
        reason: err.to_string(),
    }
}

fn decode_zune(
    bytes: &[u8],
    config: &HashConfig,
    scratch: &mut DecodeScratch,
) -> Result<(LumaImage, Option<Dihedral>), Error> {
    let limits = &config.limits;
    let options = DecoderOptions::default()
        .set_strict_mode(true)
        .set_max_width(limits.max_width as usize)
        .set_max_height(limits.max_height as usize);
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    decoder.decode_headers().map_err(|err| {
        // zune reports its own width and height limits as format errors;
        // ours are the same values, so name them as limits.
        let text = err.to_string();
        if text.contains("larger than") || text.contains("width") || text.contains("height") {
            Error::TooLarge {
                format: Format::Jpeg.as_str(),
                width: 0,
                height: 0,
                reason: text,
            }
        } else {
            zune_error(err)
        }
    })?;
    let (width, height) = decoder.dimensions().ok_or_else(|| {
        zune_error(zune_jpeg::errors::DecodeErrors::FormatStatic(
            "no frame header",
        ))
    })?;
    limits.check(Format::Jpeg, width as u64, height as u64)?;
    let input = decoder.input_colorspace().unwrap_or(ColorSpace::Unknown);
    // Y of YCbCr is luminance by the BT.601 weights PDQ uses: taking it
    // skips chroma upsampling and colour conversion (within the reference
    // tolerance; tests/reference.rs). Full decoding keeps the reference's
    // RGB route, and other colour spaces (CMYK, RGB-coded) need it anyway.
    let output = match input {
        ColorSpace::Luma => ColorSpace::Luma,
        ColorSpace::YCbCr if !config.full_decode => ColorSpace::Luma,
        _ => ColorSpace::RGB,
    };
    decoder.set_options(options.jpeg_set_out_colorspace(output));
    let orientation = config.exif_orientation.then(|| {
        decoder
            .exif()
            .and_then(|exif| image::metadata::Orientation::from_exif_chunk(exif))
            .map_or(Dihedral::Original, orientation_transform)
    });
    let size = decoder.output_buffer_size().ok_or_else(|| {
        zune_error(zune_jpeg::errors::DecodeErrors::FormatStatic(
            "no output size",
        ))
    })?;
    // The buffer only grows: `decode_into` writes all of `size` or fails,
    // so re-zeroing it per image would be a wasted pass.
    if scratch.pixels.len() < size {
        scratch.pixels.resize(size, 0);
    }
    let pixels = &mut scratch.pixels[..size];
    decoder.decode_into(pixels).map_err(zune_error)?;
    let channels = output.num_components();
    let luma = LumaImage::from_interleaved8(width, height, channels, pixels).ok_or_else(|| {
        zune_error(zune_jpeg::errors::DecodeErrors::FormatStatic(
            "decoded size mismatch",
        ))
    })?;
    Ok((luma, orientation))
}
