//! Text detection of child sexual exploitation (DESIGN.md, "Categories"):
//! solicitation of abuse material, sexualisation of minors, grooming and
//! sextortion, and help-seeking, which is never treated as abuse.
//!
//! - [`normalize`] undoes evasions (look-alikes, leetspeak, spacing,
//!   invisible characters) and keeps a map back to the original offsets.
//! - [`TextDetector`] runs the built-in lexicons (seven languages, data
//!   files in `data/`, extendable with [`LexiconBuilder`]) and operator
//!   [`TermList`]s over one message or a conversation; findings carry spans
//!   into the original text, with roles.
//! - [`AccountRisk`] accumulates conversation risk per account over time.
//! - With the `remote` feature, [`remote`] holds the [`remote::Classifier`]
//!   trait and its Llama Guard and OpenAI moderation clients.
//!
//! This crate never logs and never puts text in errors or `Debug` output.
//! Work is linear in the input: no backtracking regex; the lexicon automaton is
//! walked from each word start, at most the longest phrase far.
//!
//! ```
//! use childsafe_text::TextDetector;
//! use childsafe_core::Category;
//!
//! let detector = TextDetector::built_in().unwrap();
//! let findings = detector.detect("how do I talk to my 12 year old about online safety");
//! assert!(findings.iter().all(|f| f.category.is_context()));
//! ```
#![deny(missing_docs)]

mod analysis;
mod conversation;
mod detect;
mod error;
pub mod input;
pub mod lexicon;
pub mod normalize;
#[cfg(feature = "remote")]
pub mod remote;
mod score;
mod terms;

pub use crate::{
    conversation::{AccountPolicy, AccountRisk, ConversationScores, Role, Turn},
    detect::{ConversationReport, TextDetector, categories_at},
    error::Error,
    lexicon::{Lexicon, LexiconBuilder},
    normalize::{Normalized, normalize},
    terms::TermList,
};
