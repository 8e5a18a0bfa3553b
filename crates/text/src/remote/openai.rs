//! The OpenAI moderation API: `POST /v1/moderations` with `model` and
//! `input` (a list of strings, one per turn); each result carries
//! `category_scores["sexual/minors"]`, which becomes the finding's score.

use childsafe_core::{Finding, FindingSource, Span, SpanRole};
use serde_json::{Value, json};

use super::{BoxFuture, Classifier, CounterSnapshot, RemoteConfig, Target, http::HttpClient};
use crate::{
    conversation::{Role, Turn},
    error::Error,
};

/// The moderation category for sexual content involving minors.
pub const SEXUAL_MINORS: &str = "sexual/minors";
/// Scores below this produce no finding.
const SCORE_FLOOR: f64 = 0.01;

/// The OpenAI moderation classifier (or a compatible server).
pub struct OpenAiModeration {
    http: HttpClient,
}

impl OpenAiModeration {
    /// Builds the client. The usual base URL is `https://api.openai.com/v1`
    /// and the model `omni-moderation-latest`.
    ///
    /// # Errors
    /// A base URL that does not parse.
    pub fn new(config: RemoteConfig) -> Result<OpenAiModeration, Error> {
        Ok(OpenAiModeration {
            http: HttpClient::new(config)?,
        })
    }

    fn error(&self, reason: impl Into<String>) -> Error {
        self.http.count_failure();
        Error::Classifier {
            classifier: self.http.config().name.clone(),
            reason: reason.into(),
        }
    }

    async fn run(&self, turns: &[Turn], target: Target) -> Result<Vec<Finding>, Error> {
        // Judge the turns of the target's side (all turns if there are none).
        let wanted = match target {
            Target::User => Role::User,
            Target::Agent => Role::Assistant,
        };
        let mut judged: Vec<(usize, &Turn)> = turns
            .iter()
            .enumerate()
            .filter(|(_, turn)| turn.role == wanted)
            .collect();
        if judged.is_empty() {
            judged = turns
                .iter()
                .enumerate()
                .filter(|(_, turn)| turn.role != Role::System)
                .collect();
        }
        if judged.is_empty() {
            return Ok(Vec::new());
        }
        let inputs: Vec<&str> = judged.iter().map(|(_, turn)| turn.text.as_str()).collect();
        let body = json!({"model": self.http.config().model, "input": inputs});
        let response = self.http.post_json("moderations", &body).await?;
        let Some(results) = response.get("results").and_then(Value::as_array) else {
            return Err(self.error("response: expected a results array, got none"));
        };
        if results.len() != judged.len() {
            return Err(self.error(format!(
                "response: expected {} results, got {}",
                judged.len(),
                results.len()
            )));
        }
        let mut best: Option<(f64, usize)> = None;
        for (idx, result) in results.iter().enumerate() {
            let score = result
                .get("category_scores")
                .and_then(|scores| scores.get(SEXUAL_MINORS))
                .and_then(Value::as_f64)
                .ok_or_else(|| self.error(format!("response: results[{idx}].category_scores[\"sexual/minors\"]: expected a number, got none")))?;
            if !(0.0..=1.0).contains(&score) {
                return Err(self.error(format!(
                    "response: results[{idx}] score: expected 0 to 1, got {score}"
                )));
            }
            if best.is_none_or(|(best, _)| score > best) {
                best = Some((score, idx));
            }
        }
        let mut findings = Vec::new();
        if let Some((score, idx)) = best
            && score >= SCORE_FLOOR
        {
            let (turn_idx, turn) = judged[idx];
            let mut finding = Finding::new(
                target.exploitation_category(),
                score,
                FindingSource {
                    entry_id: Some(SEXUAL_MINORS.to_owned()),
                    ..FindingSource::classifier(self.http.config().name.clone())
                },
            );
            finding.spans.push(Span {
                start: 0,
                end: turn.text.len(),
                role: SpanRole::SexualContent,
                turn: Some(turn_idx),
            });
            findings.push(finding);
        }
        Ok(findings)
    }
}

impl Classifier for OpenAiModeration {
    fn name(&self) -> &str {
        &self.http.config().name
    }

    fn classify<'a>(
        &'a self,
        turns: &'a [Turn],
        target: Target,
    ) -> BoxFuture<'a, Result<Vec<Finding>, Error>> {
        Box::pin(self.run(turns, target))
    }

    fn counters(&self) -> CounterSnapshot {
        self.http.counters()
    }
}
