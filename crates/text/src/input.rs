//! Input lines for `childsafe classify` and `childsafe eval text`: plain
//! text, or a JSON object with a `text` field or a `messages` array (OpenAI
//! chat shape: `role` and `content`, where `content` may be a string or a list
//! of `{"type": "text", "text": ...}` parts), plus the optional eval fields
//! `id`, `lang`, `labels` and `tags`.
//!
//! Errors name the field and the JSON types involved, never a value: the
//! values are the content being judged (DESIGN invariant 1). JSON nesting is
//! bounded by serde_json's recursion limit, so hostile lines fail cleanly.

use std::fmt;

use serde_json::Value;

use crate::conversation::{Role, Turn};

/// What one input line holds.
#[derive(Clone, PartialEq, Eq)]
pub enum InputContent {
    /// One message.
    Text(String),
    /// A conversation.
    Conversation(Vec<Turn>),
}

impl fmt::Debug for InputContent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputContent::Text(text) => write!(f, "Text(len {})", text.len()),
            InputContent::Conversation(turns) => write!(f, "Conversation({} turns)", turns.len()),
        }
    }
}

/// One parsed input line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputItem {
    /// The content to judge.
    pub content: InputContent,
    /// `id`, if given (a string, or a number written as text).
    pub id: Option<String>,
    /// `lang`, if given.
    pub lang: Option<String>,
    /// `labels`, if given (eval sets).
    pub labels: Vec<String>,
    /// `tags`, if given (eval sets).
    pub tags: Vec<String>,
}

/// Why a line could not be used. `Display` is `field: expected X, got Y`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineError {
    /// The line is empty or only whitespace.
    Empty,
    /// The line starts with `{` but is not valid JSON (serde_json's message,
    /// which gives a position and never echoes the input).
    Json(String),
    /// A field is missing or has the wrong type.
    Field {
        /// The field path, e.g. `messages[2].content`.
        field: String,
        /// What was expected.
        expected: &'static str,
        /// The JSON type found (`null`, `number`, ...), or `nothing`.
        got: &'static str,
    },
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineError::Empty => f.write_str("expected text or a JSON object, got an empty line"),
            LineError::Json(reason) => write!(f, "invalid JSON: {reason}"),
            LineError::Field {
                field,
                expected,
                got,
            } => write!(f, "{field}: expected {expected}, got {got}"),
        }
    }
}

impl std::error::Error for LineError {}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn field_error(field: impl Into<String>, expected: &'static str, got: Option<&Value>) -> LineError {
    LineError::Field {
        field: field.into(),
        expected,
        got: got.map_or("nothing", type_name),
    }
}

/// Parses one line: JSON if it starts with `{` (after whitespace), plain
/// text otherwise.
///
/// # Errors
/// An empty line, invalid JSON, or a JSON object without a usable `text` or
/// `messages` field, or with optional fields of the wrong type.
pub fn parse_line(line: &str) -> Result<InputItem, LineError> {
    let trimmed = line.trim();
    if trimmed.is_empty() {
        return Err(LineError::Empty);
    }
    if !trimmed.starts_with('{') {
        return Ok(InputItem {
            content: InputContent::Text(line.trim_end_matches(['\r', '\n']).to_owned()),
            id: None,
            lang: None,
            labels: Vec::new(),
            tags: Vec::new(),
        });
    }
    let value: Value =
        serde_json::from_str(trimmed).map_err(|err| LineError::Json(err.to_string()))?;
    let Value::Object(object) = value else {
        return Err(field_error("line", "a JSON object", Some(&value)));
    };
    let content = match (object.get("text"), object.get("messages")) {
        (Some(_), Some(_)) => {
            return Err(LineError::Field {
                field: "text".into(),
                expected: "one of text or messages",
                got: "both",
            });
        }
        (Some(Value::String(text)), None) => InputContent::Text(text.clone()),
        (Some(other), None) => return Err(field_error("text", "a string", Some(other))),
        (None, Some(Value::Array(messages))) => {
            InputContent::Conversation(parse_messages(messages)?)
        }
        (None, Some(other)) => return Err(field_error("messages", "an array", Some(other))),
        (None, None) => return Err(field_error("text", "a string (or a messages array)", None)),
    };
    let id = match object.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id.clone()),
        Some(Value::Number(id)) => Some(id.to_string()),
        Some(other) => return Err(field_error("id", "a string or a number", Some(other))),
    };
    let lang = match object.get("lang") {
        None | Some(Value::Null) => None,
        Some(Value::String(lang)) => Some(lang.clone()),
        Some(other) => return Err(field_error("lang", "a string", Some(other))),
    };
    let labels = string_list(&object, "labels")?;
    let tags = string_list(&object, "tags")?;
    Ok(InputItem {
        content,
        id,
        lang,
        labels,
        tags,
    })
}

fn string_list(
    object: &serde_json::Map<String, Value>,
    field: &str,
) -> Result<Vec<String>, LineError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(one)) => Ok(vec![one.clone()]),
        Some(Value::Array(values)) => values
            .iter()
            .enumerate()
            .map(|(idx, value)| match value {
                Value::String(text) => Ok(text.clone()),
                other => Err(field_error(
                    format!("{field}[{idx}]"),
                    "a string",
                    Some(other),
                )),
            })
            .collect(),
        Some(other) => Err(field_error(field, "an array of strings", Some(other))),
    }
}

fn parse_messages(messages: &[Value]) -> Result<Vec<Turn>, LineError> {
    if messages.is_empty() {
        return Err(LineError::Field {
            field: "messages".into(),
            expected: "at least one message",
            got: "an empty array",
        });
    }
    let mut turns = Vec::with_capacity(messages.len());
    for (idx, message) in messages.iter().enumerate() {
        let Value::Object(message) = message else {
            return Err(field_error(
                format!("messages[{idx}]"),
                "an object",
                Some(message),
            ));
        };
        let role = match message.get("role") {
            None | Some(Value::Null) => Role::User,
            Some(Value::String(role)) => Role::from_name(role),
            Some(other) => {
                return Err(field_error(
                    format!("messages[{idx}].role"),
                    "a string",
                    Some(other),
                ));
            }
        };
        let text = match message.get("content").or_else(|| message.get("text")) {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Array(parts)) => {
                let mut text = String::new();
                for (part_idx, part) in parts.iter().enumerate() {
                    match part.get("text") {
                        Some(Value::String(piece)) => {
                            if !text.is_empty() {
                                text.push('\n');
                            }
                            text.push_str(piece);
                        }
                        // Non-text parts (images) are not text's business.
                        None if part.get("type").is_some() => {}
                        other => {
                            return Err(field_error(
                                format!("messages[{idx}].content[{part_idx}].text"),
                                "a string",
                                other,
                            ));
                        }
                    }
                }
                text
            }
            other => {
                return Err(field_error(
                    format!("messages[{idx}].content"),
                    "a string or an array of parts",
                    other,
                ));
            }
        };
        turns.push(Turn { role, text });
    }
    Ok(turns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_and_json_shapes() {
        let item = parse_line("hello there\n").unwrap();
        assert_eq!(item.content, InputContent::Text("hello there".into()));
        let item =
            parse_line(r#"{"text": "hi", "id": 7, "lang": "en", "labels": ["benign"]}"#).unwrap();
        assert_eq!(item.content, InputContent::Text("hi".into()));
        assert_eq!(item.id.as_deref(), Some("7"));
        assert_eq!(item.labels, ["benign"]);
        let item = parse_line(
            r#"{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": [{"type": "text", "text": "b"}]}]}"#,
        )
        .unwrap();
        let InputContent::Conversation(turns) = item.content else {
            panic!("conversation expected")
        };
        assert_eq!(turns.len(), 2);
        assert_eq!(turns[1].role, Role::Assistant);
        assert_eq!(turns[1].text, "b");
    }

    #[test]
    fn errors_name_the_field_and_never_the_value() {
        let err = parse_line(r#"{"text": 5}"#).unwrap_err();
        assert_eq!(err.to_string(), "text: expected a string, got a number");
        let err = parse_line(r#"{"messages": [{"role": "user", "content": {"secret": "x"}}]}"#)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "messages[0].content: expected a string or an array of parts, got an object"
        );
        let err = parse_line(r#"{"nothing": "secret words"}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "text: expected a string (or a messages array), got nothing"
        );
        let err = parse_line(r#"{"text": "secret words"#).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid JSON: EOF while parsing"),
            "{err}"
        );
        assert!(!err.to_string().contains("secret"));
        let err = parse_line("   ").unwrap_err();
        assert_eq!(err, LineError::Empty);
    }

    #[test]
    fn deep_nesting_is_a_clean_error() {
        let line = format!("{{\"text\": {}{}}}", "[".repeat(10_000), "]".repeat(10_000));
        let err = parse_line(&line).unwrap_err();
        assert!(
            err.to_string().contains("recursion limit exceeded"),
            "{err}"
        );
    }
}
