//! The shared category taxonomy (DESIGN.md, "Categories").
//!
//! Categories are storage keys: they appear in manifests, incidents, cases and
//! reports. Add variants at the end of the list; never rename one.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// What a finding says the content is.
///
/// The first seven are harm categories that policy acts on; the last two are
/// context signals, reported as findings so that a decision can be explained
/// (for example which span was read as a minor indicator), and by default
/// trigger no action of their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Category {
    /// Matches a known-CSAM hash list.
    CsamKnown,
    /// Novel imagery flagged by a classifier; needs human review.
    CsamSuspected,
    /// Asks to create, obtain or find sexual content involving minors.
    CsamSolicitation,
    /// Text that sexualises a minor.
    MinorSexualization,
    /// Enticement patterns in a conversation.
    Grooming,
    /// Threats or demands around sexual images.
    Sextortion,
    /// A child, parent or witness asking for help: answered with resources,
    /// never punished (DESIGN invariant 5).
    HelpSeeking,
    /// Context: a reference to a minor (an age under 18, a child noun, a school grade).
    MinorIndicator,
    /// Context: sexual content or intent.
    SexualContent,
}

impl Category {
    /// Every category, in declaration order.
    pub const ALL: [Category; 9] = [
        Category::CsamKnown,
        Category::CsamSuspected,
        Category::CsamSolicitation,
        Category::MinorSexualization,
        Category::Grooming,
        Category::Sextortion,
        Category::HelpSeeking,
        Category::MinorIndicator,
        Category::SexualContent,
    ];

    /// The harm categories, which policy acts on (everything but context signals).
    pub const HARMS: [Category; 7] = [
        Category::CsamKnown,
        Category::CsamSuspected,
        Category::CsamSolicitation,
        Category::MinorSexualization,
        Category::Grooming,
        Category::Sextortion,
        Category::HelpSeeking,
    ];

    /// The stable name, as stored and printed.
    pub const fn as_str(self) -> &'static str {
        match self {
            Category::CsamKnown => "csam_known",
            Category::CsamSuspected => "csam_suspected",
            Category::CsamSolicitation => "csam_solicitation",
            Category::MinorSexualization => "minor_sexualization",
            Category::Grooming => "grooming",
            Category::Sextortion => "sextortion",
            Category::HelpSeeking => "help_seeking",
            Category::MinorIndicator => "minor_indicator",
            Category::SexualContent => "sexual_content",
        }
    }

    /// True for context signals (`minor_indicator`, `sexual_content`).
    pub const fn is_context(self) -> bool {
        matches!(self, Category::MinorIndicator | Category::SexualContent)
    }

    /// True for categories that describe abuse or exploitation (not help-seeking,
    /// not context). Front ends use this to decide what counts toward abuse rates.
    pub const fn is_abuse(self) -> bool {
        !self.is_context() && !matches!(self, Category::HelpSeeking)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Category {
    type Err = Error;

    fn from_str(s: &str) -> Result<Category, Error> {
        Category::ALL
            .into_iter()
            .find(|it| it.as_str() == s)
            .ok_or_else(|| Error::UnknownName {
                kind: "category",
                name: s.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_str_and_serde() {
        for category in Category::ALL {
            assert_eq!(category.as_str().parse::<Category>().unwrap(), category);
            let json = serde_json::to_string(&category).unwrap();
            assert_eq!(json, format!("\"{}\"", category.as_str()));
        }
    }

    #[test]
    fn unknown_name_is_an_error_naming_it() {
        let err = "csam".parse::<Category>().unwrap_err();
        assert_eq!(err.to_string(), "unknown category: \"csam\"");
    }

    #[test]
    fn help_seeking_is_not_abuse() {
        assert!(!Category::HelpSeeking.is_abuse());
        assert!(Category::CsamSolicitation.is_abuse());
        assert!(!Category::MinorIndicator.is_abuse());
    }
}
