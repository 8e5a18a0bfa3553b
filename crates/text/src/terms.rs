//! Operator term lists (hotline keyword lists and the like): one term per
//! line, loaded at run time, matched after normalisation with Aho-Corasick,
//! whole words only. Each matching entry becomes a finding with
//! `SourceKind::TermList`, the list's name and category, and the entry's line
//! number as its id: the term itself is never printed, since real lists are
//! confidential. Lists are never committed; tests use benign stand-ins.

use std::fmt;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use childsafe_core::{Category, Finding, FindingSource, SourceKind, Span, SpanRole};

use crate::{
    error::Error,
    normalize::{Normalized, normalize},
};

/// A compiled term list.
pub struct TermList {
    name: String,
    category: Category,
    score: f64,
    automaton: AhoCorasick,
    /// Line number (1-based) of each pattern.
    lines: Vec<usize>,
}

impl fmt::Debug for TermList {
    // The terms are confidential: name, category and size only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TermList")
            .field("name", &self.name)
            .field("category", &self.category)
            .field("terms", &self.lines.len())
            .finish()
    }
}

impl TermList {
    /// Parses a list: one term per line, `#` starts a comment line, blank
    /// lines are skipped. `file` names the source in errors.
    ///
    /// # Errors
    /// A list with no terms, or a term that normalises to nothing (only
    /// punctuation or invisible characters), with its line number.
    pub fn parse(
        file: &str,
        name: &str,
        category: Category,
        score: f64,
        text: &str,
    ) -> Result<TermList, Error> {
        let mut patterns = Vec::new();
        let mut lines = Vec::new();
        for (idx, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let normalized = normalize(line);
            let pattern = normalized.as_str().trim_matches(|c| c == ' ' || c == '.');
            if pattern.is_empty() {
                return Err(Error::TermList {
                    file: file.to_owned(),
                    line: idx + 1,
                    reason: "term: expected letters or digits, got only punctuation or invisible characters".to_owned(),
                });
            }
            patterns.push(pattern.to_owned());
            lines.push(idx + 1);
        }
        if patterns.is_empty() {
            return Err(Error::TermList {
                file: file.to_owned(),
                line: 0,
                reason: "expected at least one term, got none".to_owned(),
            });
        }
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&patterns)
            .map_err(|err| Error::TermList {
                file: file.to_owned(),
                line: 0,
                reason: err.to_string(),
            })?;
        Ok(TermList {
            name: name.to_owned(),
            category,
            score: score.clamp(0.0, 1.0),
            automaton,
            lines,
        })
    }

    /// The list's name, as it appears in findings.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of terms.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// True if the list has no terms (never, once parsed).
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Findings for the entries that occur in `norm`, one per entry.
    pub(crate) fn find(&self, norm: &Normalized, turn: Option<usize>, out: &mut Vec<Finding>) {
        let text = norm.as_str().as_bytes();
        let word = |b: u8| b.is_ascii_alphanumeric() || b >= 0x80;
        let first = out.len();
        for found in self.automaton.find_overlapping_iter(text) {
            let (start, end) = (found.start(), found.end());
            if (start > 0 && word(text[start - 1])) || (end < text.len() && word(text[end])) {
                continue;
            }
            let line = self.lines[found.pattern().as_usize()];
            let entry_id = format!("line:{line}");
            let range = norm.original_range(start..end);
            let span = Span {
                start: range.start,
                end: range.end,
                role: SpanRole::Term,
                turn,
            };
            if let Some(existing) = out[first..]
                .iter_mut()
                .find(|it| it.source.entry_id.as_deref() == Some(entry_id.as_str()))
            {
                if existing.spans.len() < 12 {
                    existing.spans.push(span);
                }
                continue;
            }
            let mut finding = Finding::new(
                self.category,
                self.score,
                FindingSource {
                    kind: SourceKind::TermList,
                    name: self.name.clone(),
                    signal: Some(childsafe_core::SignalKind::Text),
                    entry_id: Some(entry_id),
                    distance: None,
                },
            );
            finding.spans.push(span);
            out.push(finding);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_after_normalisation_and_reports_line_numbers() {
        // Benign stand-in terms: real lists are supplied by operators.
        let list = TermList::parse(
            "t.txt",
            "standin",
            Category::CsamSolicitation,
            0.9,
            "# comment\n\nblue giraffe\npurple\n",
        )
        .unwrap();
        assert_eq!(list.len(), 2);
        let text = "a BLUE  g1raffe and purples and p u r p l e";
        let norm = normalize(text);
        let mut out = Vec::new();
        list.find(&norm, None, &mut out);
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[0].source.entry_id.as_deref(), Some("line:3"));
        assert_eq!(out[0].source.kind, SourceKind::TermList);
        assert_eq!(
            &text[out[0].spans[0].start..out[0].spans[0].end],
            "BLUE  g1raffe"
        );
        assert_eq!(out[1].source.entry_id.as_deref(), Some("line:4"));
        assert_eq!(
            &text[out[1].spans[0].start..out[1].spans[0].end],
            "p u r p l e"
        );
        assert!(!format!("{list:?}").contains("giraffe"));
    }

    #[test]
    fn bad_lists_name_the_line() {
        let err =
            TermList::parse("t.txt", "x", Category::Grooming, 1.0, "ok\n\u{200b}\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.txt:2: term: expected letters or digits, got only punctuation or invisible characters"
        );
        let err =
            TermList::parse("t.txt", "x", Category::Grooming, 1.0, "# nothing\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.txt:0: expected at least one term, got none"
        );
    }
}
