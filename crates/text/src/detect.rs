//! The built-in text detector: lexicons plus operator term lists, applied to
//! one message or to a conversation.

use childsafe_core::{Category, Finding};

use crate::{
    analysis::Analysis,
    conversation::{ConversationScores, Role, Turn, TurnView, score_turns},
    error::Error,
    lexicon::Lexicon,
    normalize::{Normalized, normalize},
    score::HelpParts,
    score::score_message,
    terms::TermList,
};

/// Built-in detectors (lexicons in `data/`, extendable) and operator term
/// lists. Cheap to share across threads; build once.
#[derive(Debug)]
pub struct TextDetector {
    lexicon: Lexicon,
    term_lists: Vec<TermList>,
}

/// Findings for a conversation, with its grooming and sextortion scores.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConversationReport {
    /// Every finding: per-turn findings (spans carry the turn index) and the
    /// conversation-level grooming and sextortion findings.
    pub findings: Vec<Finding>,
    /// The conversation scores, for [`crate::AccountRisk::update`].
    pub scores: ConversationScores,
}

impl TextDetector {
    /// A detector with the built-in lexicons and no term lists.
    ///
    /// # Errors
    /// Never for the shipped lexicons (a unit test builds them).
    pub fn built_in() -> Result<TextDetector, Error> {
        Ok(TextDetector::new(Lexicon::built_in()?))
    }

    /// A detector with the given lexicon (built-ins plus operator files).
    pub fn new(lexicon: Lexicon) -> TextDetector {
        TextDetector {
            lexicon,
            term_lists: Vec::new(),
        }
    }

    /// Adds an operator term list.
    pub fn add_term_list(&mut self, list: TermList) {
        self.term_lists.push(list);
    }

    /// The term lists in use.
    pub fn term_lists(&self) -> &[TermList] {
        &self.term_lists
    }

    /// Findings for one message. Spans are byte offsets into `text`.
    pub fn detect(&self, text: &str) -> Vec<Finding> {
        let norm = normalize(text);
        let analysis = Analysis::new(&self.lexicon, &norm);
        let message = score_message(&analysis, &norm, text, None, true);
        let mut findings = message.findings;
        let view = TurnView {
            analysis: &analysis,
            norm: &norm,
            help: message.help >= 0.5,
            role: Role::User,
        };
        score_turns(std::slice::from_ref(&view), true, &mut findings);
        for list in &self.term_lists {
            list.find(&norm, None, &mut findings);
        }
        findings
    }

    /// Findings for a conversation (see [`TextDetector::analyze_conversation`]).
    pub fn detect_conversation(&self, turns: &[Turn]) -> Vec<Finding> {
        self.analyze_conversation(turns).findings
    }

    /// Findings and scores for a conversation: every turn on its own (spans
    /// carry the turn index), then grooming and sextortion across turns.
    /// For each category and detector, the strongest turn's finding is kept.
    pub fn analyze_conversation(&self, turns: &[Turn]) -> ConversationReport {
        let norms: Vec<Normalized> = turns.iter().map(|turn| normalize(&turn.text)).collect();
        let analyses: Vec<Analysis> = norms
            .iter()
            .map(|norm| Analysis::new(&self.lexicon, norm))
            .collect();
        let mut findings: Vec<Finding> = Vec::new();
        let mut parts = Vec::with_capacity(turns.len());
        let lone = turns
            .iter()
            .filter(|turn| turn.role != Role::System)
            .count()
            <= 1;
        for (idx, ((norm, analysis), turn)) in norms.iter().zip(&analyses).zip(turns).enumerate() {
            let message = score_message(analysis, norm, &turn.text, Some(idx), lone);
            for finding in message.findings {
                merge_best(&mut findings, finding);
            }
            let mut terms = Vec::new();
            for list in &self.term_lists {
                list.find(norm, Some(idx), &mut terms);
            }
            findings.extend(terms);
            parts.push((message.help, message.help_parts));
        }
        // Help-seeking across turns: a question in one turn about what an
        // earlier turn disclosed. The roles that asked are help-seekers, and
        // what they wrote does not count as grooming or sextortion.
        let mut help_roles: Vec<Role> = Vec::new();
        let merged = parts
            .iter()
            .fold(HelpParts::default(), |acc, (_, p)| acc.merge(*p));
        let conversation_help = merged.score();
        for (turn, (help, part)) in turns.iter().zip(&parts) {
            let asks = *help >= 0.5
                || (conversation_help >= 0.5 && (part.question > 0.0 || part.disclosure > 0.0));
            if asks && !help_roles.contains(&turn.role) {
                help_roles.push(turn.role);
            }
        }
        if conversation_help >= 0.5 && !findings.iter().any(|f| f.category == Category::HelpSeeking)
        {
            findings.push(crate::score::finding(
                Category::HelpSeeking,
                conversation_help,
                "text.help_seeking",
                Vec::new(),
            ));
        }
        let views: Vec<TurnView<'_>> = norms
            .iter()
            .zip(&analyses)
            .zip(turns)
            .map(|((norm, analysis), turn)| TurnView {
                analysis,
                norm,
                help: help_roles.contains(&turn.role),
                role: turn.role,
            })
            .collect();
        let scores = score_turns(&views, false, &mut findings);
        ConversationReport { findings, scores }
    }
}

/// Keeps the higher-scoring of two findings with the same category and source.
fn merge_best(findings: &mut Vec<Finding>, finding: Finding) {
    match findings
        .iter_mut()
        .find(|it| it.category == finding.category && it.source == finding.source)
    {
        Some(existing) if existing.score < finding.score => *existing = finding,
        Some(_) => {}
        None => findings.push(finding),
    }
}

/// The harm categories in `findings` at or above `min_score`.
pub fn categories_at(findings: &[Finding], min_score: f64) -> Vec<Category> {
    let mut res: Vec<Category> = findings
        .iter()
        .filter(|f| !f.category.is_context() && f.score >= min_score)
        .map(|f| f.category)
        .collect();
    res.sort();
    res.dedup();
    res
}
