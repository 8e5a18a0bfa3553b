//! Anthropic Messages (`POST /v1/messages`): reading requests for checking,
//! writing refusals, and rewriting streamed responses through the output guard.
//!
//! Wire format per Anthropic's API reference and the official `anthropic`
//! Python SDK: a message is `{"id", "type": "message", "role": "assistant",
//! "model", "content": [blocks], "stop_reason", "stop_sequence", "usage"}`; a
//! stream is named events (`event: TYPE` lines are required: the SDK skips
//! events without a name): `message_start`, then per content block
//! `content_block_start`, `content_block_delta`s (`text_delta`,
//! `thinking_delta`, `input_json_delta`, ...), `content_block_stop`, then
//! `message_delta` (with `stop_reason` and `usage`) and `message_stop`;
//! `ping` may come anywhere and `error` ends the stream. Refusals use
//! `stop_reason: "refusal"`, a documented stop reason.
//!
//! Only the fields inspected are parsed; the request body is forwarded as
//! received, so unknown fields pass through untouched.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde_json::{Value, json};

use crate::{
    content::{ImageLimits, collect_strings, decode_base64, push_image, push_line, wrong_type},
    error::{AppError, ErrorKind},
    inspect::{Input, InputImage, Message, Role},
    proxy::{ParsedRequest, Refusal, Step, StreamCheck, StreamRewriter},
    sse::{SseEvent, write_event},
    stream_guard::{Guarded, StreamGuard},
};

/// Reads a Messages request.
///
/// # Errors
/// `InvalidRequest` naming the field, `TooLarge` for images over the limits.
pub fn parse_request(body: &Value, limits: ImageLimits) -> Result<ParsedRequest, AppError> {
    let Some(obj) = body.as_object() else {
        return Err(wrong_type("body", "a JSON object", body));
    };
    let mut input = Input::default();
    match obj.get("system") {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => input.messages.push(Message {
            role: Role::System,
            text: text.clone(),
        }),
        Some(Value::Array(blocks)) => {
            let mut text = String::new();
            for (idx, block) in blocks.iter().enumerate() {
                read_block(
                    block,
                    &format!("system[{idx}]"),
                    0,
                    limits,
                    &mut text,
                    &mut input,
                )?;
            }
            input.messages.push(Message {
                role: Role::System,
                text,
            });
        }
        Some(other) => return Err(wrong_type("system", "string or array", other)),
    }
    let messages = match obj.get("messages") {
        Some(Value::Array(items)) => items,
        Some(other) => return Err(wrong_type("messages", "array", other)),
        None => {
            return Err(AppError::new(
                ErrorKind::InvalidRequest,
                "messages: expected array, got nothing",
            ));
        }
    };
    for (msg_idx, message) in messages.iter().enumerate() {
        let path = format!("messages[{msg_idx}]");
        let role = match message.get("role").and_then(Value::as_str) {
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            Some(other) => {
                return Err(AppError::new(
                    ErrorKind::InvalidRequest,
                    format!("{path}.role: expected user or assistant, got {other:?}"),
                ));
            }
            None => {
                return Err(AppError::new(
                    ErrorKind::InvalidRequest,
                    format!("{path}.role: expected string, got nothing"),
                ));
            }
        };
        let mut text = String::new();
        // Tool results arrive in user turns; they are checked as tool text.
        let mut has_tool_result = false;
        match message.get("content") {
            Some(Value::String(it)) => push_line(&mut text, it),
            Some(Value::Array(blocks)) => {
                for (block_idx, block) in blocks.iter().enumerate() {
                    has_tool_result |=
                        block.get("type").and_then(Value::as_str) == Some("tool_result");
                    let block_path = format!("{path}.content[{block_idx}]");
                    read_block(block, &block_path, msg_idx, limits, &mut text, &mut input)?;
                }
            }
            Some(other) => {
                return Err(wrong_type(
                    &format!("{path}.content"),
                    "string or array",
                    other,
                ));
            }
            None => {
                return Err(AppError::new(
                    ErrorKind::InvalidRequest,
                    format!("{path}.content: expected string or array, got nothing"),
                ));
            }
        }
        let role = if has_tool_result && role == Role::User {
            Role::Tool
        } else {
            role
        };
        input.messages.push(Message { role, text });
    }
    let stream = match obj.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(it)) => *it,
        Some(other) => return Err(wrong_type("stream", "boolean", other)),
    };
    let user = obj
        .get("metadata")
        .and_then(|it| it.get("user_id"))
        .and_then(Value::as_str)
        .filter(|it| !it.is_empty())
        .map(str::to_owned);
    Ok(ParsedRequest {
        model: obj
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        stream,
        include_usage: false,
        user,
        input,
    })
}

fn read_block(
    block: &Value,
    path: &str,
    msg_idx: usize,
    limits: ImageLimits,
    text: &mut String,
    input: &mut Input,
) -> Result<(), AppError> {
    let Some(kind) = block.get("type").and_then(Value::as_str) else {
        return Err(AppError::new(
            ErrorKind::InvalidRequest,
            format!("{path}.type: expected string, got nothing"),
        ));
    };
    match kind {
        "text" => match block.get("text") {
            Some(Value::String(it)) => push_line(text, it),
            Some(other) => return Err(wrong_type(&format!("{path}.text"), "string", other)),
            None => {
                return Err(AppError::new(
                    ErrorKind::InvalidRequest,
                    format!("{path}.text: expected string, got nothing"),
                ));
            }
        },
        "thinking" => {
            if let Some(it) = block.get("thinking").and_then(Value::as_str) {
                push_line(text, it);
            }
        }
        "tool_use" | "server_tool_use" => {
            if let Some(it) = block.get("input") {
                collect_strings(it, text);
            }
        }
        "tool_result" => match block.get("content") {
            Some(Value::String(it)) => push_line(text, it),
            Some(Value::Array(inner)) => {
                for (idx, it) in inner.iter().enumerate() {
                    read_block(
                        it,
                        &format!("{path}.content[{idx}]"),
                        msg_idx,
                        limits,
                        text,
                        input,
                    )?;
                }
            }
            _ => {}
        },
        "image" => {
            let source_path = format!("{path}.source");
            let Some(source) = block.get("source") else {
                return Err(AppError::new(
                    ErrorKind::InvalidRequest,
                    format!("{source_path}: expected object, got nothing"),
                ));
            };
            match source.get("type").and_then(Value::as_str) {
                Some("base64") => {
                    let data_path = format!("{source_path}.data");
                    let data = match source.get("data") {
                        Some(Value::String(it)) => it,
                        Some(other) => return Err(wrong_type(&data_path, "string", other)),
                        None => {
                            return Err(AppError::new(
                                ErrorKind::InvalidRequest,
                                format!("{data_path}: expected string, got nothing"),
                            ));
                        }
                    };
                    let bytes = decode_base64(data, limits.max_bytes, &data_path)?;
                    let image = InputImage {
                        message_idx: msg_idx,
                        media_type: source
                            .get("media_type")
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                        bytes,
                    };
                    push_image(&mut input.images, limits, image, &data_path)?;
                }
                Some("url") => {
                    if let Some(url) = source.get("url").and_then(Value::as_str) {
                        input.image_urls.push(url.to_owned());
                    }
                }
                // File references point at content the gateway cannot see.
                _ => {}
            }
        }
        "document" => {
            if let Some(source) = block.get("source")
                && source.get("type").and_then(Value::as_str) == Some("text")
                && let Some(data) = source.get("data").and_then(Value::as_str)
            {
                push_line(text, data);
            }
        }
        _ => {}
    }
    Ok(())
}

/// A complete (non-streamed) refusal: one text block, `stop_reason: "refusal"`,
/// and a `childsafe` field.
pub fn refusal_body(model: &str, refusal: &Refusal) -> Value {
    json!({
        "id": format!("msg_{}", refusal.request_id),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": refusal.text}],
        "stop_reason": "refusal",
        "stop_sequence": null,
        "usage": {"input_tokens": 0, "output_tokens": 0},
        "childsafe": refusal.meta(),
    })
}

/// A streamed refusal for a streaming request refused before the upstream:
/// the whole documented event sequence.
pub fn refusal_stream(model: &str, refusal: &Refusal) -> Vec<Bytes> {
    let mut message = refusal_body(model, refusal);
    message["content"] = json!([]);
    message["stop_reason"] = Value::Null;
    if let Some(obj) = message.as_object_mut() {
        obj.remove("childsafe");
    }
    let mut res = vec![event(
        "message_start",
        &json!({"type": "message_start", "message": message}),
    )];
    text_block(0, &refusal.text, &mut res);
    res.push(stop_events(refusal, 0));
    res.push(event("message_stop", &json!({"type": "message_stop"})));
    res
}

fn text_block(index: u64, text: &str, out: &mut Vec<Bytes>) {
    out.push(event(
        "content_block_start",
        &json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}),
    ));
    out.push(event(
        "content_block_delta",
        &json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}}),
    ));
    out.push(event(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": index}),
    ));
}

fn stop_events(refusal: &Refusal, output_tokens: u64) -> Bytes {
    event(
        "message_delta",
        &json!({
            "type": "message_delta",
            "delta": {"stop_reason": "refusal", "stop_sequence": null},
            "usage": {"output_tokens": output_tokens},
            "childsafe": refusal.meta(),
        }),
    )
}

/// All output text of a message (text, thinking, tool inputs), for checking.
pub fn output_text(body: &Value) -> String {
    let mut res = String::new();
    if let Some(Value::Array(blocks)) = body.get("content") {
        for block in blocks {
            match block.get("type").and_then(Value::as_str) {
                Some("text") => push_line(
                    &mut res,
                    block.get("text").and_then(Value::as_str).unwrap_or(""),
                ),
                Some("thinking") => push_line(
                    &mut res,
                    block.get("thinking").and_then(Value::as_str).unwrap_or(""),
                ),
                Some("tool_use" | "server_tool_use") => {
                    if let Some(input) = block.get("input") {
                        collect_strings(input, &mut res);
                    }
                }
                _ => {}
            }
        }
    }
    res
}

/// Replaces a message's content with the refusal, keeping id, model and usage.
pub fn replace_with_refusal(body: &mut Value, refusal: &Refusal) {
    body["content"] = json!([{"type": "text", "text": refusal.text}]);
    body["stop_reason"] = json!("refusal");
    body["stop_sequence"] = Value::Null;
    body["childsafe"] = refusal.meta();
}

/// Appends a text block with support resources (unless the model stopped to
/// call a tool, where a trailing text block would confuse tool loops).
pub fn append_support(body: &mut Value, support: &str, meta: Value) {
    let tool_use = body.get("stop_reason").and_then(Value::as_str) == Some("tool_use");
    if !tool_use && let Some(Value::Array(blocks)) = body.get_mut("content") {
        blocks.push(json!({"type": "text", "text": support}));
    }
    body["childsafe"] = meta;
}

fn event(name: &str, value: &Value) -> Bytes {
    write_event(Some(name), &value.to_string())
}

/// The field of a delta that carries guarded text, by delta type.
fn delta_field(delta_type: &str) -> Option<&'static str> {
    match delta_type {
        "text_delta" => Some("text"),
        "thinking_delta" => Some("thinking"),
        "input_json_delta" => Some("partial_json"),
        _ => None,
    }
}

/// Rewrites an upstream Messages stream: one guard per content block; held
/// text is released in later deltas or just before `content_block_stop`; on
/// a finding the open block is closed with the refusal and the message ends
/// with `stop_reason: "refusal"`.
pub struct AnthropicStream {
    check: StreamCheck,
    window_bytes: usize,
    /// Open or finished blocks: guard and the delta type last seen.
    blocks: BTreeMap<u64, (StreamGuard, &'static str)>,
    /// The block currently open, if any.
    open: Option<(u64, bool)>,
    next_index: u64,
    support: Option<(String, Value)>,
    finished: bool,
}

impl AnthropicStream {
    /// A rewriter with the given output check and window.
    pub fn new(
        check: StreamCheck,
        window_bytes: usize,
        support: Option<(String, Value)>,
    ) -> AnthropicStream {
        AnthropicStream {
            check,
            window_bytes,
            blocks: BTreeMap::new(),
            open: None,
            next_index: 0,
            support,
            finished: false,
        }
    }

    fn delta_event(index: u64, delta_type: &str, field: &str, text: String) -> Bytes {
        let mut delta = serde_json::Map::new();
        delta.insert("type".to_owned(), json!(delta_type));
        delta.insert(field.to_owned(), Value::String(text));
        event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index, "delta": delta}),
        )
    }

    fn on_event(&mut self, name: &str, mut value: Value, raw: &str, out: &mut Vec<Bytes>) -> Step {
        match name {
            "content_block_start" => {
                let index = value
                    .get("index")
                    .and_then(Value::as_u64)
                    .unwrap_or(self.next_index);
                let is_text =
                    value.pointer("/content_block/type").and_then(Value::as_str) == Some("text");
                self.blocks
                    .insert(index, (StreamGuard::new(self.window_bytes), "text_delta"));
                self.open = Some((index, is_text));
                self.next_index = self.next_index.max(index + 1);
                // A block may start with text already in it.
                if let Some(Value::String(initial)) = value.pointer_mut("/content_block/text")
                    && !initial.is_empty()
                {
                    let initial = std::mem::take(initial);
                    out.push(event(name, &value));
                    return self.on_delta(index, "text_delta", "text", &initial, out);
                }
                out.push(write_event(Some(name), raw));
            }
            "content_block_delta" => {
                let index = value.get("index").and_then(Value::as_u64).unwrap_or(0);
                let delta_type = value
                    .pointer("/delta/type")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                let Some(field) = delta_field(&delta_type) else {
                    out.push(write_event(Some(name), raw));
                    return Step::Continue;
                };
                let text = value
                    .pointer("/delta")
                    .and_then(|d| d.get(field))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                let delta_type = match delta_type.as_str() {
                    "thinking_delta" => "thinking_delta",
                    "input_json_delta" => "input_json_delta",
                    _ => "text_delta",
                };
                return self.on_delta(index, delta_type, field, &text, out);
            }
            "content_block_stop" => {
                let index = value.get("index").and_then(Value::as_u64).unwrap_or(0);
                if let Some((guard, delta_type)) = self.blocks.get_mut(&index) {
                    let delta_type = *delta_type;
                    match guard.finish(&mut |it| self.check.check(it)) {
                        Guarded::Release(text) if !text.is_empty() => {
                            let field = delta_field(delta_type).unwrap_or("text");
                            out.push(Self::delta_event(index, delta_type, field, text));
                        }
                        Guarded::Release(_) => {}
                        Guarded::Blocked(decision) => return Step::Blocked(decision),
                    }
                }
                self.open = None;
                out.push(write_event(Some(name), raw));
            }
            "message_delta" => {
                let tool_use =
                    value.pointer("/delta/stop_reason").and_then(Value::as_str) == Some("tool_use");
                if let Some((support, meta)) = &self.support {
                    if !tool_use {
                        text_block(self.next_index, support, out);
                        self.next_index += 1;
                    }
                    value["childsafe"] = meta.clone();
                    out.push(event(name, &value));
                } else {
                    out.push(write_event(Some(name), raw));
                }
            }
            "message_stop" => {
                out.push(write_event(Some(name), raw));
                self.finished = true;
                return Step::Done;
            }
            "error" => {
                out.push(write_event(Some(name), raw));
                self.finished = true;
                return Step::Done;
            }
            // message_start, ping, and event types added later pass unchanged.
            _ => out.push(write_event(Some(name), raw)),
        }
        Step::Continue
    }

    fn on_delta(
        &mut self,
        index: u64,
        delta_type: &'static str,
        field: &'static str,
        text: &str,
        out: &mut Vec<Bytes>,
    ) -> Step {
        let window = self.window_bytes;
        let entry = self
            .blocks
            .entry(index)
            .or_insert_with(|| (StreamGuard::new(window), delta_type));
        entry.1 = delta_type;
        match entry.0.push(text, &mut |it| self.check.check(it)) {
            Guarded::Release(released) => {
                if !released.is_empty() {
                    out.push(Self::delta_event(index, delta_type, field, released));
                }
                Step::Continue
            }
            Guarded::Blocked(decision) => Step::Blocked(decision),
        }
    }
}

impl StreamRewriter for AnthropicStream {
    fn event(&mut self, sse: SseEvent, out: &mut Vec<Bytes>) -> Step {
        if self.finished {
            return Step::Done;
        }
        let value: Value = match serde_json::from_str(&sse.data) {
            Ok(it) => it,
            Err(_) => return Step::Failed("upstream sent a stream event that is not JSON"),
        };
        let name = match sse.event.as_deref() {
            Some(name) => name.to_owned(),
            None => value
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        };
        self.on_event(&name, value, &sse.data, out)
    }

    fn end(&mut self, _out: &mut Vec<Bytes>) -> Step {
        if self.finished {
            return Step::Done;
        }
        Step::Failed("upstream closed the stream before message_stop")
    }

    fn refuse(&mut self, refusal: &Refusal, out: &mut Vec<Bytes>) {
        match self.open {
            Some((index, true)) => {
                let delivered = self
                    .blocks
                    .get(&index)
                    .is_some_and(|it| it.0.delivered() > 0);
                let text = if delivered {
                    format!("\n\n{}", refusal.text)
                } else {
                    refusal.text.clone()
                };
                out.push(Self::delta_event(index, "text_delta", "text", text));
                out.push(event(
                    "content_block_stop",
                    &json!({"type": "content_block_stop", "index": index}),
                ));
            }
            Some((index, false)) => {
                out.push(event(
                    "content_block_stop",
                    &json!({"type": "content_block_stop", "index": index}),
                ));
                text_block(self.next_index, &refusal.text, out);
            }
            None => text_block(self.next_index, &refusal.text, out),
        }
        out.push(stop_events(refusal, 0));
        out.push(event("message_stop", &json!({"type": "message_stop"})));
        self.finished = true;
    }

    fn fail(&mut self, err: &AppError, out: &mut Vec<Bytes>) {
        out.push(event("error", &err.body()));
        self.finished = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ImageLimits = ImageLimits {
        max_bytes: 1 << 20,
        max_images: 4,
    };

    #[test]
    fn reads_system_messages_tools_and_images() {
        let body = json!({
            "model": "claude-test",
            "max_tokens": 100,
            "system": [{"type": "text", "text": "sys"}],
            "metadata": {"user_id": "u-9"},
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "hello"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "aGVsbG8="}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/x.jpg"}}
                ]},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {"q": "query"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": "result"}]}]}
            ]
        });
        let parsed = parse_request(&body, LIMITS).unwrap();
        assert!(!parsed.stream);
        assert_eq!(parsed.user.as_deref(), Some("u-9"));
        let texts: Vec<_> = parsed
            .input
            .messages
            .iter()
            .map(|m| (m.role, m.text.as_str()))
            .collect();
        assert_eq!(
            texts,
            [
                (Role::System, "sys"),
                (Role::User, "hello"),
                (Role::Assistant, "query"),
                (Role::Tool, "result")
            ]
        );
        assert_eq!(parsed.input.images[0].bytes, b"hello");
        assert_eq!(parsed.input.image_urls, ["https://example.com/x.jpg"]);
    }

    #[test]
    fn bad_requests_name_the_field() {
        let check = |body: Value, want: &str| {
            assert_eq!(parse_request(&body, LIMITS).unwrap_err().message, want);
        };
        check(
            json!({"messages": [{"role": "system", "content": "x"}]}),
            "messages[0].role: expected user or assistant, got \"system\"",
        );
        check(
            json!({"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "data": 5}}]}]}),
            "messages[0].content[0].source.data: expected string, got number",
        );
        check(
            json!({"system": 1, "messages": []}),
            "system: expected string or array, got number",
        );
    }

    #[test]
    fn output_text_reads_every_block_kind() {
        let body = json!({"content": [
            {"type": "thinking", "thinking": "hmm"},
            {"type": "text", "text": "answer"},
            {"type": "tool_use", "input": {"a": "b"}}
        ]});
        assert_eq!(output_text(&body), "hmm\nanswer\nb");
    }
}
