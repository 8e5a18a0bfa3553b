//! The seam between the gateway and the detection engine.
//!
//! The gateway extracts content from protocol bodies into these types and
//! asks an [`Inspector`] for a decision; it never combines findings or
//! applies policy itself (the engine is the one place that does,
//! DESIGN.md "One engine"). The production inspector wraps
//! `childsafe_engine::Engine`; tests may inject their own through
//! `Arc<dyn Inspector>` (STYLE.md §6, dependency injection).

use std::{fmt, future::Future, pin::Pin};

use childsafe_core::{ContentHashes, Decision};

/// A boxed, sendable future, for the async methods of [`Inspector`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// System or developer instructions.
    System,
    /// The end user.
    User,
    /// The model (earlier turns, or the response being checked).
    Assistant,
    /// A tool result.
    Tool,
}

impl Role {
    /// The role's name as it appears in both protocols.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

/// One message's text (all of its text parts joined with newlines).
#[derive(Clone)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// Its text: content, redacted in `Debug`.
    pub text: String,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("role", &self.role)
            .field(
                "text",
                &format_args!("<{} bytes redacted>", self.text.len()),
            )
            .finish()
    }
}

/// An image sent inline, already decoded from base64 (bounded by the limits).
#[derive(Clone)]
pub struct InputImage {
    /// Index of the message that carried it.
    pub message_idx: usize,
    /// The declared media type, if any (`image/png`).
    pub media_type: Option<String>,
    /// The original bytes: content, redacted in `Debug`.
    pub bytes: Vec<u8>,
}

impl fmt::Debug for InputImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InputImage")
            .field("message_idx", &self.message_idx)
            .field("media_type", &self.media_type)
            .field(
                "bytes",
                &format_args!("<{} bytes redacted>", self.bytes.len()),
            )
            .finish()
    }
}

/// Everything a request sends to the model, extracted for checking.
#[derive(Clone, Debug, Default)]
pub struct Input {
    /// Every message's text, in order (system prompt first).
    pub messages: Vec<Message>,
    /// Images sent inline.
    pub images: Vec<InputImage>,
    /// Remote image URLs (not fetched unless allowlisted; checked against URL lists).
    pub image_urls: Vec<String>,
}

/// The outcome of an input check.
#[derive(Clone, Debug)]
pub struct InputVerdict {
    /// The combined decision (input surface, with conversation findings merged
    /// in by the engine's policy).
    pub decision: Decision,
    /// The hashes of each input image, in order (PDQ when it decoded).
    pub images: Vec<ContentHashes>,
    /// Indexes (into `Input::images`) of images that could not be decoded:
    /// the request is refused with a 400 naming them, before any effect.
    pub undecodable: Vec<usize>,
    /// Indexes (into `Input::images`) of images that matched a known-CSAM
    /// bank and must be preserved in the evidence vault.
    pub preserve: Vec<usize>,
    /// The end user's updated conversation-risk state, to be persisted.
    pub account_state: Option<serde_json::Value>,
}

/// The detection engine, as the gateway sees it.
pub trait Inspector: Send + Sync {
    /// Checks a request's input: every message's text, the conversation across
    /// its turns and (with `account_state`) over time, inline images against
    /// the banks, and image URLs against URL lists. Remote classifiers, if
    /// configured, run here; a required one that fails is reflected in
    /// `decision.failures` and the policy's fail mode.
    fn check_input<'a>(
        &'a self,
        input: &'a Input,
        account_state: Option<&'a serde_json::Value>,
    ) -> BoxFuture<'a, InputVerdict>;

    /// Checks model output text (whole, or a streaming window) with the
    /// built-in detectors. Synchronous: it runs for every streamed delta.
    fn check_output(&self, text: &str) -> Decision;

    /// Checks output text completely, remote classifiers included (for
    /// non-streamed responses). Defaults to [`Inspector::check_output`].
    fn check_output_full<'a>(&'a self, text: &'a str) -> BoxFuture<'a, Decision> {
        Box::pin(async move { self.check_output(text) })
    }

    /// The longest span, in bytes, that an output finding can cover: the
    /// streaming window must be at least this long.
    fn max_span_bytes(&self) -> usize;
}
