//! OpenAI Chat Completions (`POST /v1/chat/completions`): reading requests
//! for checking, writing refusals, and rewriting streamed responses through
//! the output guard.
//!
//! Wire format per the OpenAI API reference and the official `openai`
//! Python SDK: a completion is `{"id", "object": "chat.completion",
//! "created", "model", "choices": [{"index", "message", "logprobs",
//! "finish_reason"}], "usage"}`; a stream is `data: {chunk}` events of
//! `"object": "chat.completion.chunk"` whose choices carry `delta`s, ended by
//! `data: [DONE]`; a mid-stream error is `data: {"error": {...}}`, which the
//! SDK raises as `APIError`. Refusals use `finish_reason: "content_filter"`,
//! the value OpenAI itself uses when its filter withholds content.
//!
//! Only the fields inspected are parsed; the request body is forwarded as
//! received, so unknown fields pass through untouched.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde_json::{Value, json};

use crate::{
    content::{
        ImageLimits, collect_strings, decode_base64, parse_data_url, push_image, push_line,
        wrong_type,
    },
    error::{AppError, ErrorKind},
    inspect::{Input, InputImage, Message, Role},
    proxy::{ParsedRequest, Refusal, Step, StreamCheck, StreamRewriter},
    sse::{SseEvent, write_event},
    stream_guard::{Guarded, StreamGuard},
};

/// Reads a Chat Completions request.
///
/// # Errors
/// `InvalidRequest` naming the field (`messages[2].content[0].image_url.url`),
/// `TooLarge` for images over the limits.
pub fn parse_request(body: &Value, limits: ImageLimits) -> Result<ParsedRequest, AppError> {
    let Some(obj) = body.as_object() else {
        return Err(wrong_type("body", "a JSON object", body));
    };
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
    let mut input = Input::default();
    for (msg_idx, message) in messages.iter().enumerate() {
        let path = format!("messages[{msg_idx}]");
        let Some(message) = message.as_object() else {
            return Err(wrong_type(&path, "object", message));
        };
        let role = match message.get("role").and_then(Value::as_str) {
            Some("system" | "developer") => Role::System,
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            Some("tool" | "function") => Role::Tool,
            Some(other) => {
                return Err(AppError::new(
                    ErrorKind::InvalidRequest,
                    format!(
                        "{path}.role: expected system, developer, user, assistant, tool or function, got {other:?}"
                    ),
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
        match message.get("content") {
            None | Some(Value::Null) => {}
            Some(Value::String(it)) => push_line(&mut text, it),
            Some(Value::Array(parts)) => {
                for (part_idx, part) in parts.iter().enumerate() {
                    let part_path = format!("{path}.content[{part_idx}]");
                    read_part(part, &part_path, msg_idx, limits, &mut text, &mut input)?;
                }
            }
            Some(other) => {
                return Err(wrong_type(
                    &format!("{path}.content"),
                    "string, array or null",
                    other,
                ));
            }
        }
        if let Some(refusal) = message.get("refusal").and_then(Value::as_str) {
            push_line(&mut text, refusal);
        }
        // Tool-call arguments are text the model (or a client) wrote: checked too.
        if let Some(Value::Array(calls)) = message.get("tool_calls") {
            for call in calls {
                if let Some(function) = call.get("function") {
                    collect_strings(function, &mut text);
                }
            }
        }
        if let Some(function) = message.get("function_call") {
            collect_strings(function, &mut text);
        }
        input.messages.push(Message { role, text });
    }
    let stream = match obj.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(it)) => *it,
        Some(other) => return Err(wrong_type("stream", "boolean", other)),
    };
    let include_usage = obj
        .get("stream_options")
        .and_then(|it| it.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let user = ["safety_identifier", "user"]
        .iter()
        .find_map(|key| obj.get(*key).and_then(Value::as_str))
        .filter(|it| !it.is_empty())
        .map(str::to_owned);
    Ok(ParsedRequest {
        model: obj
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        stream,
        include_usage,
        user,
        input,
    })
}

fn read_part(
    part: &Value,
    path: &str,
    msg_idx: usize,
    limits: ImageLimits,
    text: &mut String,
    input: &mut Input,
) -> Result<(), AppError> {
    let Some(kind) = part.get("type").and_then(Value::as_str) else {
        return Err(AppError::new(
            ErrorKind::InvalidRequest,
            format!("{path}.type: expected string, got nothing"),
        ));
    };
    match kind {
        "text" => match part.get("text") {
            Some(Value::String(it)) => push_line(text, it),
            Some(other) => return Err(wrong_type(&format!("{path}.text"), "string", other)),
            None => {
                return Err(AppError::new(
                    ErrorKind::InvalidRequest,
                    format!("{path}.text: expected string, got nothing"),
                ));
            }
        },
        "refusal" => {
            if let Some(it) = part.get("refusal").and_then(Value::as_str) {
                push_line(text, it);
            }
        }
        "image_url" => {
            let url_path = format!("{path}.image_url.url");
            let url = match part.get("image_url") {
                Some(Value::String(url)) => url.as_str(),
                Some(Value::Object(obj)) => match obj.get("url") {
                    Some(Value::String(url)) => url.as_str(),
                    Some(other) => return Err(wrong_type(&url_path, "string", other)),
                    None => {
                        return Err(AppError::new(
                            ErrorKind::InvalidRequest,
                            format!("{url_path}: expected string, got nothing"),
                        ));
                    }
                },
                Some(other) => {
                    return Err(wrong_type(&format!("{path}.image_url"), "object", other));
                }
                None => {
                    return Err(AppError::new(
                        ErrorKind::InvalidRequest,
                        format!("{path}.image_url: expected object, got nothing"),
                    ));
                }
            };
            match parse_data_url(url, &url_path)? {
                Some((media_type, payload)) => {
                    let bytes = decode_base64(payload, limits.max_bytes, &url_path)?;
                    let image = InputImage {
                        message_idx: msg_idx,
                        media_type: Some(media_type.to_owned()).filter(|it| !it.is_empty()),
                        bytes,
                    };
                    push_image(&mut input.images, limits, image, &url_path)?;
                }
                None => input.image_urls.push(url.to_owned()),
            }
        }
        // Audio and files are forwarded unchecked: the engine has no detector for them.
        _ => {}
    }
    Ok(())
}

/// A complete (non-streamed) refusal: a normal assistant message with
/// `finish_reason: "content_filter"` and a `childsafe` field.
pub fn refusal_body(model: &str, refusal: &Refusal, created: i64) -> Value {
    json!({
        "id": format!("chatcmpl-{}", refusal.request_id),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": refusal.text, "refusal": null},
            "logprobs": null,
            "finish_reason": "content_filter",
        }],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        "childsafe": refusal.meta(),
    })
}

/// A streamed refusal, for a streaming request refused before the upstream:
/// role chunk, content chunk, finish chunk (with `childsafe`), optional usage
/// chunk, `[DONE]`.
pub fn refusal_stream(
    model: &str,
    refusal: &Refusal,
    created: i64,
    include_usage: bool,
) -> Vec<Bytes> {
    let id = format!("chatcmpl-{}", refusal.request_id);
    let chunk = |delta: Value, finish: Value| {
        json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        })
    };
    let mut res = vec![
        data(&chunk(
            json!({"role": "assistant", "content": ""}),
            Value::Null,
        )),
        data(&chunk(json!({"content": refusal.text}), Value::Null)),
    ];
    let mut finish = chunk(json!({}), json!("content_filter"));
    finish["childsafe"] = refusal.meta();
    res.push(data(&finish));
    if include_usage {
        res.push(data(&json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        })));
    }
    res.push(done());
    res
}

/// All output text of a completion (content, refusals, tool arguments), for checking.
pub fn output_text(body: &Value) -> String {
    let mut res = String::new();
    if let Some(Value::Array(choices)) = body.get("choices") {
        for choice in choices {
            let Some(message) = choice.get("message") else {
                continue;
            };
            for key in ["content", "refusal"] {
                if let Some(text) = message.get(key).and_then(Value::as_str) {
                    push_line(&mut res, text);
                }
            }
            if let Some(calls) = message.get("tool_calls") {
                collect_strings(calls, &mut res);
            }
        }
    }
    res
}

/// Replaces a completion's choices with the refusal, keeping id, model and usage.
pub fn replace_with_refusal(body: &mut Value, refusal: &Refusal) {
    body["choices"] = json!([{
        "index": 0,
        "message": {"role": "assistant", "content": refusal.text, "refusal": null},
        "logprobs": null,
        "finish_reason": "content_filter",
    }]);
    body["childsafe"] = refusal.meta();
}

/// Appends support resources to every choice's text content.
pub fn append_support(body: &mut Value, support: &str, meta: Value) {
    if let Some(Value::Array(choices)) = body.get_mut("choices") {
        for choice in choices {
            if let Some(content) = choice
                .get_mut("message")
                .and_then(|it| it.get_mut("content"))
                && let Value::String(text) = content
            {
                text.push_str("\n\n");
                text.push_str(support);
            }
        }
    }
    body["childsafe"] = meta;
}

fn data(value: &Value) -> Bytes {
    write_event(None, &value.to_string())
}

fn done() -> Bytes {
    write_event(None, "[DONE]")
}

/// Rewrites an upstream Chat Completions stream: content deltas go through
/// one guard per choice; tool-call deltas are held until the choice finishes
/// and then checked whole; on a finding, a refusal delta, a
/// `content_filter` finish and `[DONE]` close the stream.
pub struct OpenAiStream {
    check: StreamCheck,
    guards: BTreeMap<u64, StreamGuard>,
    /// Held tool-call chunks per choice, released when the choice finishes.
    held_tools: BTreeMap<u64, (Vec<Value>, String)>,
    window_bytes: usize,
    /// The last chunk seen, as a template for chunks the gateway writes.
    template: Option<Value>,
    /// Support text to append before each choice finishes (help-seeking).
    support: Option<(String, Value)>,
    finished: bool,
}

impl OpenAiStream {
    /// A rewriter with the given output check and window.
    pub fn new(
        check: StreamCheck,
        window_bytes: usize,
        support: Option<(String, Value)>,
    ) -> OpenAiStream {
        OpenAiStream {
            check,
            guards: BTreeMap::new(),
            held_tools: BTreeMap::new(),
            window_bytes,
            template: None,
            support,
            finished: false,
        }
    }

    fn chunk_for(&self, index: u64, delta: Value, finish: Value) -> Value {
        let mut res = self.template.clone().unwrap_or_else(
            || json!({"id": "", "object": "chat.completion.chunk", "created": 0, "model": ""}),
        );
        if let Some(obj) = res.as_object_mut() {
            obj.remove("usage");
            obj.remove("childsafe");
            obj.insert(
                "choices".to_owned(),
                json!([{"index": index, "delta": delta, "logprobs": null, "finish_reason": finish}]),
            );
        }
        res
    }

    fn on_chunk(&mut self, mut chunk: Value, out: &mut Vec<Bytes>) -> Step {
        if chunk.get("error").is_some() {
            // An upstream error event: forward as is and stop.
            out.push(data(&chunk));
            self.finished = true;
            return Step::Done;
        }
        if let Some(obj) = chunk.as_object() {
            let mut template = Value::Object(obj.clone());
            template["choices"] = json!([]);
            self.template = Some(template);
        }
        let Some(Value::Array(choices)) = chunk.get_mut("choices") else {
            out.push(data(&chunk));
            return Step::Continue;
        };
        if choices.is_empty() {
            // The usage chunk (`stream_options.include_usage`) has no choices.
            out.push(data(&chunk));
            return Step::Continue;
        }
        let mut kept = Vec::with_capacity(choices.len());
        let mut finishing = Vec::new();
        for mut choice in std::mem::take(choices) {
            let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0);
            let window = self.window_bytes;
            let guard = self
                .guards
                .entry(index)
                .or_insert_with(|| StreamGuard::new(window));
            let delta = choice.get_mut("delta");
            let mut keep = true;
            if let Some(delta) = delta {
                if let Some(Value::String(text)) = delta.get("content") {
                    match guard.push(text, &mut |it| self.check.check(it)) {
                        Guarded::Release(released) => {
                            if released.is_empty() {
                                if let Some(obj) = delta.as_object_mut() {
                                    obj.remove("content");
                                }
                            } else {
                                delta["content"] = Value::String(released);
                            }
                        }
                        Guarded::Blocked(decision) => return Step::Blocked(decision),
                    }
                }
                if let Some(calls) = delta.get("tool_calls").cloned() {
                    let held = self.held_tools.entry(index).or_default();
                    collect_strings(&calls, &mut held.1);
                    held.0.push(calls);
                    if let Some(obj) = delta.as_object_mut() {
                        obj.remove("tool_calls");
                    }
                }
                // Drop chunks left with nothing to say (their text is held).
                let empty = delta.as_object().is_some_and(|it| it.is_empty());
                let finish_null = choice.get("finish_reason").is_none_or(Value::is_null);
                keep = !(empty && finish_null);
            }
            if choice.get("finish_reason").is_some_and(|it| !it.is_null()) {
                finishing.push((index, choice));
            } else if keep {
                kept.push(choice);
            }
        }
        let had_choices = !kept.is_empty();
        if had_choices {
            chunk["choices"] = Value::Array(kept);
            out.push(data(&chunk));
        }
        for (index, mut choice) in finishing {
            // Text or tool calls that came with the finish go out (or are
            // held) before the flush, so the order of the text is kept.
            if let Some(delta) = choice.get_mut("delta").map(std::mem::take)
                && delta.as_object().is_some_and(|it| !it.is_empty())
            {
                out.push(data(&self.chunk_for(index, delta, Value::Null)));
            }
            choice["delta"] = json!({});
            if let Step::Blocked(decision) = self.finish_choice(index, out) {
                return Step::Blocked(decision);
            }
            let mut last = self.template.clone().unwrap_or_else(|| json!({}));
            last["choices"] = json!([choice]);
            if let Some(usage) = chunk.get("usage") {
                last["usage"] = usage.clone();
            }
            if let Some((_, meta)) = &self.support {
                last["childsafe"] = meta.clone();
            }
            out.push(data(&last));
        }
        Step::Continue
    }

    /// Flushes a choice's held text and tool calls, checking them.
    fn finish_choice(&mut self, index: u64, out: &mut Vec<Bytes>) -> Step {
        if let Some(guard) = self.guards.get_mut(&index) {
            match guard.finish(&mut |it| self.check.check(it)) {
                Guarded::Release(text) if !text.is_empty() => {
                    out.push(data(&self.chunk_for(
                        index,
                        json!({"content": text}),
                        Value::Null,
                    )));
                }
                Guarded::Release(_) => {}
                Guarded::Blocked(decision) => return Step::Blocked(decision),
            }
        }
        if let Some((calls, text)) = self.held_tools.remove(&index) {
            let decision = self.check.check(&text);
            if decision.action.withholds() {
                return Step::Blocked(Box::new(decision));
            }
            for call in calls {
                out.push(data(&self.chunk_for(
                    index,
                    json!({"tool_calls": call}),
                    Value::Null,
                )));
            }
        }
        if let Some((support, _)) = &self.support {
            let text = format!("\n\n{support}");
            out.push(data(&self.chunk_for(
                index,
                json!({"content": text}),
                Value::Null,
            )));
        }
        Step::Continue
    }
}

impl StreamRewriter for OpenAiStream {
    fn event(&mut self, event: SseEvent, out: &mut Vec<Bytes>) -> Step {
        if self.finished {
            return Step::Done;
        }
        if event.data.trim() == "[DONE]" {
            // Choices that never sent a finish_reason still get their held text checked.
            let pending: Vec<u64> = self
                .guards
                .iter()
                .filter(|(_, g)| g.held() > 0)
                .map(|(i, _)| *i)
                .collect();
            for index in pending {
                if let Step::Blocked(decision) = self.finish_choice(index, out) {
                    return Step::Blocked(decision);
                }
            }
            out.push(done());
            self.finished = true;
            return Step::Done;
        }
        match serde_json::from_str::<Value>(&event.data) {
            Ok(chunk) => self.on_chunk(chunk, out),
            Err(_) => Step::Failed("upstream sent a stream event that is not JSON"),
        }
    }

    fn end(&mut self, out: &mut Vec<Bytes>) -> Step {
        if self.finished {
            return Step::Done;
        }
        // The upstream closed without [DONE]: the stream was cut.
        let _ = out;
        Step::Failed("upstream closed the stream before [DONE]")
    }

    fn refuse(&mut self, refusal: &Refusal, out: &mut Vec<Bytes>) {
        let indexes: Vec<u64> = if self.guards.is_empty() {
            vec![0]
        } else {
            self.guards.keys().copied().collect()
        };
        for index in indexes {
            let delivered = self.guards.get(&index).is_some_and(|it| it.delivered() > 0);
            let text = if delivered {
                format!("\n\n{}", refusal.text)
            } else {
                refusal.text.clone()
            };
            out.push(data(&self.chunk_for(
                index,
                json!({"content": text}),
                Value::Null,
            )));
            let mut finish = self.chunk_for(index, json!({}), json!("content_filter"));
            finish["childsafe"] = refusal.meta();
            out.push(data(&finish));
        }
        out.push(done());
        self.finished = true;
    }

    fn fail(&mut self, err: &AppError, out: &mut Vec<Bytes>) {
        out.push(data(&err.body()));
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
    fn reads_every_text_and_inline_images() {
        let body = json!({
            "model": "gpt-test",
            "user": "u-1",
            "stream": true,
            "stream_options": {"include_usage": true},
            "unknown_field": {"kept": true},
            "messages": [
                {"role": "developer", "content": "be brief"},
                {"role": "user", "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGVsbG8="}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
                ]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"q\":\"args\"}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "tool says"}
            ]
        });
        let parsed = parse_request(&body, LIMITS).unwrap();
        assert!(parsed.stream && parsed.include_usage);
        assert_eq!(parsed.user.as_deref(), Some("u-1"));
        let texts: Vec<_> = parsed
            .input
            .messages
            .iter()
            .map(|m| (m.role, m.text.as_str()))
            .collect();
        assert_eq!(
            texts,
            [
                (Role::System, "be brief"),
                (Role::User, "look"),
                (Role::Assistant, "{\"q\":\"args\"}\nf"),
                (Role::Tool, "tool says")
            ]
        );
        assert_eq!(parsed.input.images.len(), 1);
        assert_eq!(parsed.input.images[0].bytes, b"hello");
        assert_eq!(
            parsed.input.images[0].media_type.as_deref(),
            Some("image/png")
        );
        assert_eq!(parsed.input.image_urls, ["https://example.com/a.png"]);
    }

    #[test]
    fn bad_requests_name_the_field() {
        let check = |body: Value, want: &str| {
            let err = parse_request(&body, LIMITS).unwrap_err();
            assert_eq!(err.message, want);
        };
        check(json!([]), "body: expected a JSON object, got array");
        check(
            json!({"model": "m"}),
            "messages: expected array, got nothing",
        );
        check(
            json!({"messages": [{"role": "user", "content": 3}]}),
            "messages[0].content: expected string, array or null, got number",
        );
        check(
            json!({"messages": [{"role": "wizard", "content": "x"}]}),
            "messages[0].role: expected system, developer, user, assistant, tool or function, got \"wizard\"",
        );
        check(
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}]}]}),
            "messages[0].content[0].image_url.url: expected base64 image data, got invalid base64 (Invalid symbol 64, offset 0.)",
        );
        check(
            json!({"messages": [], "stream": "yes"}),
            "stream: expected boolean, got string",
        );
    }

    #[test]
    fn output_text_covers_content_and_tool_arguments() {
        let body = json!({"choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hi", "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]}},
            {"index": 1, "message": {"role": "assistant", "content": null, "refusal": "no"}}
        ]});
        // Object values in key order: arguments before name.
        assert_eq!(output_text(&body), "hi\n{}\nf\nno");
    }
}
