//! The shared language of childsafe: every other crate speaks in these types.
//!
//! This crate holds the category taxonomy ([`Category`]), signal values such as
//! PDQ and cryptographic hashes ([`signal`]), the [`Finding`] a matcher or
//! detector produces, the [`Decision`] a surface takes, and the [`Policy`] that
//! maps one to the other. It does no I/O, knows no wire format but the stored
//! JSON shapes of DESIGN.md, and depends on no other childsafe crate.
//!
//! Names that end up in databases, manifests and reports (categories, signal
//! kinds, surfaces, actions) are defined here once, as enum variants with a
//! stable `as_str()`; renaming one breaks stored data.
//!
//! ```
//! use childsafe_core::{Category, Finding, FindingSource, Policy, Surface};
//!
//! let finding = Finding::new(Category::CsamSolicitation, 0.97, FindingSource::detector("text.solicitation"));
//! let decision = Policy::default().decide(Surface::Input, vec![finding]);
//! assert_eq!(decision.action.as_str(), "block");
//! ```

#![deny(missing_docs)]

mod category;
mod decision;
mod error;
mod finding;
mod policy;
mod queue;
pub mod signal;

pub use crate::{
    category::Category,
    decision::{Action, Decision, MessageKind, Strike, Surface},
    error::Error,
    finding::{Finding, FindingSource, SourceKind, Span, SpanRole},
    policy::{CategoryRule, Combine, FailMode, Policy, SurfacePolicy},
    queue::{ContentHashes, EvidenceRef, QUEUE_FORMAT_VERSION, QueueEntry, SampleLocation},
    signal::{Md5, PdqHash, Sha1, Sha256, SignalKind},
};
