//! Decisions: what a surface does about a content item, and why.
//!
//! The action (what happens to this content now) and the side effects (file a
//! report, record a strike) are separate fields, so that "refuse this request"
//! and "report it to NCMEC" stay independent (DESIGN.md, "Shared shapes").

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use crate::{category::Category, error::Error, finding::Finding};

/// Where in the system content is being judged. Each has its own policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Surface {
    /// Training data at ingestion (the dataset scanner).
    Ingest,
    /// A prompt or other input to a model.
    Input,
    /// A model's output.
    Output,
    /// A whole conversation, across turns and over time.
    Conversation,
}

impl Surface {
    /// Every surface, in declaration order.
    pub const ALL: [Surface; 4] = [
        Surface::Ingest,
        Surface::Input,
        Surface::Output,
        Surface::Conversation,
    ];

    /// The stable name, as stored and printed.
    pub const fn as_str(self) -> &'static str {
        match self {
            Surface::Ingest => "ingest",
            Surface::Input => "input",
            Surface::Output => "output",
            Surface::Conversation => "conversation",
        }
    }
}

impl fmt::Display for Surface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Surface {
    type Err = Error;

    fn from_str(s: &str) -> Result<Surface, Error> {
        Surface::ALL
            .into_iter()
            .find(|it| it.as_str() == s)
            .ok_or_else(|| Error::UnknownName {
                kind: "surface",
                name: s.to_owned(),
            })
    }
}

/// What happens to the content. Ordered from least to most restrictive, so
/// that combining several rules takes the maximum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Let it through.
    Allow,
    /// Let it through and show support resources (help-seeking).
    AllowWithResources,
    /// Hold it for human review.
    Escalate,
    /// Remove it from the dataset and record it in the quarantine manifest.
    Quarantine,
    /// Refuse it.
    Block,
}

impl Action {
    /// Every action, least restrictive first.
    pub const ALL: [Action; 5] = [
        Action::Allow,
        Action::AllowWithResources,
        Action::Escalate,
        Action::Quarantine,
        Action::Block,
    ];

    /// The stable name, as stored and printed.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::AllowWithResources => "allow_with_resources",
            Action::Escalate => "escalate",
            Action::Quarantine => "quarantine",
            Action::Block => "block",
        }
    }

    /// True when the content must not pass (escalate, quarantine, block).
    pub const fn withholds(self) -> bool {
        matches!(self, Action::Escalate | Action::Quarantine | Action::Block)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = Error;

    fn from_str(s: &str) -> Result<Action, Error> {
        Action::ALL
            .into_iter()
            .find(|it| it.as_str() == s)
            .ok_or_else(|| Error::UnknownName {
                kind: "action",
                name: s.to_owned(),
            })
    }
}

/// Which message a front end shows with the decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// A deterrence message: it is illegal, it harms children, there are
    /// consequences, and confidential help is available.
    Prevention,
    /// Support resources for a child, parent or witness.
    Support,
}

/// An enforcement step against the end user. Ordered by severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strike {
    /// Record a warning.
    Warn,
    /// Record a strike on the ladder (warn, suspend, ban, as configured).
    Strike,
    /// Ban immediately.
    Ban,
}

/// What a surface does about one content item, with the findings behind it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The surface whose policy was applied.
    pub surface: Surface,
    /// What happens to the content.
    pub action: Action,
    /// The categories that drove the action, deduplicated, in taxonomy order.
    pub categories: Vec<Category>,
    /// Every finding considered, including those below threshold, so that the
    /// decision can be explained (DESIGN invariant 6).
    pub findings: Vec<Finding>,
    /// The message to show, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<MessageKind>,
    /// Whether the content must be reported (e.g. to NCMEC).
    #[serde(default)]
    pub report: bool,
    /// The enforcement step against the end user, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strike: Option<Strike>,
    /// Names of required detectors that could not answer (fail closed or open,
    /// per policy). Names only, never content.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
}

impl Decision {
    /// A decision to allow, with no findings.
    pub fn allow(surface: Surface) -> Decision {
        Decision {
            surface,
            action: Action::Allow,
            categories: Vec::new(),
            findings: Vec::new(),
            message: None,
            report: false,
            strike: None,
            failures: Vec::new(),
        }
    }
}
