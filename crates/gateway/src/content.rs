//! Helpers shared by both protocols for pulling checkable content out of
//! request bodies: base64 images under a size limit, data URLs, and every
//! string inside a JSON value (tool arguments, tool inputs).
//!
//! Errors name the field path and the limit, never the content.

use base64::Engine as _;
use serde_json::Value;

use crate::{
    error::{AppError, ErrorKind},
    inspect::InputImage,
};

/// Limits on inline images.
#[derive(Clone, Copy, Debug)]
pub struct ImageLimits {
    /// Largest decoded image, in bytes.
    pub max_bytes: usize,
    /// Most images in one request.
    pub max_images: usize,
}

/// Decodes standard base64 (padding optional, whitespace tolerated) if the
/// result fits `max_bytes`; the size is checked before decoding.
///
/// # Errors
/// `InvalidRequest` for bad base64, `TooLarge` over the limit; both name `path`.
pub fn decode_base64(data: &str, max_bytes: usize, path: &str) -> Result<Vec<u8>, AppError> {
    let estimated = data.len() / 4 * 3;
    if estimated > max_bytes.saturating_add(3) {
        return Err(AppError::new(
            ErrorKind::TooLarge,
            format!(
                "{path}: expected an image of at most {max_bytes} bytes, got about {estimated}"
            ),
        ));
    }
    let cleaned: String;
    let data = if data.bytes().any(|b| b.is_ascii_whitespace()) {
        cleaned = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        cleaned.as_str()
    } else {
        data
    };
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let res = engine.decode(data).map_err(|e| {
        AppError::new(
            ErrorKind::InvalidRequest,
            format!("{path}: expected base64 image data, got invalid base64 ({e})"),
        )
    })?;
    if res.len() > max_bytes {
        return Err(AppError::new(
            ErrorKind::TooLarge,
            format!(
                "{path}: expected an image of at most {max_bytes} bytes, got {}",
                res.len()
            ),
        ));
    }
    Ok(res)
}

/// A `data:` URL's media type and base64 payload; `None` for other URLs.
///
/// # Errors
/// `InvalidRequest` for a `data:` URL that is not base64.
pub fn parse_data_url<'a>(
    url: &'a str,
    path: &str,
) -> Result<Option<(&'a str, &'a str)>, AppError> {
    let Some(rest) = url.strip_prefix("data:") else {
        return Ok(None);
    };
    let Some((meta, payload)) = rest.split_once(',') else {
        return Err(AppError::new(
            ErrorKind::InvalidRequest,
            format!("{path}: expected a data URL with a comma, got none"),
        ));
    };
    let Some(media_type) = meta.strip_suffix(";base64") else {
        return Err(AppError::new(
            ErrorKind::InvalidRequest,
            format!(
                "{path}: expected a base64 data URL (data:TYPE;base64,...), got another encoding"
            ),
        ));
    };
    Ok(Some((media_type, payload)))
}

/// Adds an image, enforcing the per-request count.
///
/// # Errors
/// `TooLarge` past `limits.max_images`.
pub fn push_image(
    images: &mut Vec<InputImage>,
    limits: ImageLimits,
    image: InputImage,
    path: &str,
) -> Result<(), AppError> {
    if images.len() >= limits.max_images {
        return Err(AppError::new(
            ErrorKind::TooLarge,
            format!(
                "{path}: expected at most {} inline images per request, got more",
                limits.max_images
            ),
        ));
    }
    images.push(image);
    Ok(())
}

/// Appends every string inside `value` (object values and array items, in
/// order) to `out`, one per line: tool arguments and tool inputs are checked
/// like any other text.
pub fn collect_strings(value: &Value, out: &mut String) {
    match value {
        Value::String(text) => push_line(out, text),
        Value::Array(items) => items.iter().for_each(|it| collect_strings(it, out)),
        Value::Object(map) => map.values().for_each(|it| collect_strings(it, out)),
        _ => {}
    }
}

/// Appends `text` to `out`, separated by a newline.
pub fn push_line(out: &mut String, text: &str) {
    if text.is_empty() {
        return;
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str(text);
}

/// The JSON type name, for errors: `expected string, got number`.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A 400 for a field of the wrong type.
pub fn wrong_type(path: &str, expected: &str, got: &Value) -> AppError {
    AppError::new(
        ErrorKind::InvalidRequest,
        format!("{path}: expected {expected}, got {}", type_name(got)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_checked_and_bounded() {
        assert_eq!(decode_base64("aGVsbG8=", 100, "x").unwrap(), b"hello");
        assert_eq!(decode_base64("aGVs\nbG8", 100, "x").unwrap(), b"hello");
        let err = decode_base64("not base64!", 100, "messages[0].content[1]").unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidRequest);
        assert!(
            err.message.starts_with(
                "messages[0].content[1]: expected base64 image data, got invalid base64"
            ),
            "{}",
            err.message
        );
        let err = decode_base64(&"A".repeat(4000), 100, "img").unwrap_err();
        assert_eq!(err.kind, ErrorKind::TooLarge);
        assert_eq!(
            err.message,
            "img: expected an image of at most 100 bytes, got about 3000"
        );
    }

    #[test]
    fn data_urls_split_into_type_and_payload() {
        assert_eq!(
            parse_data_url("data:image/png;base64,AAAA", "u").unwrap(),
            Some(("image/png", "AAAA"))
        );
        assert_eq!(
            parse_data_url("https://example.com/a.png", "u").unwrap(),
            None
        );
        assert!(parse_data_url("data:image/png,AAAA", "u").is_err());
        assert!(parse_data_url("data:image/png;base64", "u").is_err());
    }

    #[test]
    fn strings_are_collected_from_nested_json() {
        let mut out = String::new();
        collect_strings(
            &serde_json::json!({"a": ["x", {"b": "y"}], "n": 1}),
            &mut out,
        );
        assert_eq!(out, "x\ny");
    }
}
