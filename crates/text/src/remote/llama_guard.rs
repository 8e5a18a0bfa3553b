//! A Llama Guard 3 style safety model served on an OpenAI-compatible
//! endpoint. The verdict is text: `safe`, or `unsafe` and a line with the
//! violated categories (`S1`..`S14`); `S4` is Child Sexual Exploitation.
//!
//! Two ways to send the conversation:
//! - [`LlamaGuardTemplate::Server`] (default): `POST /chat/completions` with
//!   the turns as chat messages; the server applies the model's own chat
//!   template, which wraps them in the Llama Guard prompt (vLLM, llama.cpp
//!   with `--jinja`, ollama's `llama-guard3`).
//! - [`LlamaGuardTemplate::Client`]: `POST /completions` with the whole
//!   prompt built here, in the Llama Guard 3 format (Meta's model card and
//!   llama-recipes `PROMPT_TEMPLATE_3`), for servers without the template.

use childsafe_core::{Finding, FindingSource, Span, SpanRole};
use serde_json::{Value, json};

use super::{BoxFuture, Classifier, CounterSnapshot, RemoteConfig, Target, http::HttpClient};
use crate::{
    conversation::{Role, Turn},
    error::Error,
};

/// The Llama Guard 3 hazard categories, as listed in its model card.
pub const CATEGORIES: [(&str, &str); 14] = [
    ("S1", "Violent Crimes."),
    ("S2", "Non-Violent Crimes."),
    ("S3", "Sex-Related Crimes."),
    ("S4", "Child Sexual Exploitation."),
    ("S5", "Defamation."),
    ("S6", "Specialized Advice."),
    ("S7", "Privacy."),
    ("S8", "Intellectual Property."),
    ("S9", "Indiscriminate Weapons."),
    ("S10", "Hate."),
    ("S11", "Suicide & Self-Harm."),
    ("S12", "Sexual Content."),
    ("S13", "Elections."),
    ("S14", "Code Interpreter Abuse."),
];

/// The category code for child sexual exploitation.
pub const CHILD_SEXUAL_EXPLOITATION: &str = "S4";

/// Who applies the prompt template.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LlamaGuardTemplate {
    /// The server (chat endpoint, the model's chat template).
    #[default]
    Server,
    /// This client (completions endpoint, raw prompt).
    Client,
}

/// A Llama Guard classifier.
pub struct LlamaGuard {
    http: HttpClient,
    template: LlamaGuardTemplate,
}

impl LlamaGuard {
    /// Builds the client.
    ///
    /// # Errors
    /// A base URL that does not parse.
    pub fn new(config: RemoteConfig, template: LlamaGuardTemplate) -> Result<LlamaGuard, Error> {
        Ok(LlamaGuard {
            http: HttpClient::new(config)?,
            template,
        })
    }

    async fn run(&self, turns: &[Turn], target: Target) -> Result<Vec<Finding>, Error> {
        let turns = judged_turns(turns, target);
        let (last_idx, _) = turns.last().copied().ok_or_else(|| Error::Classifier {
            classifier: self.http.config().name.clone(),
            reason: "nothing to classify: no user or assistant turn".to_owned(),
        })?;
        let model = self.http.config().model.clone();
        let verdict = match self.template {
            LlamaGuardTemplate::Server => {
                let messages: Vec<Value> = turns
                    .iter()
                    .map(|(_, turn)| {
                        let role = if turn.role == Role::Assistant {
                            "assistant"
                        } else {
                            "user"
                        };
                        json!({"role": role, "content": turn.text})
                    })
                    .collect();
                let body = json!({"model": model, "messages": messages, "temperature": 0, "max_tokens": 20, "stream": false});
                let response = self.http.post_json("chat/completions", &body).await?;
                response
                    .pointer("/choices/0/message/content")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            }
            LlamaGuardTemplate::Client => {
                let prompt = build_prompt(&turns, target);
                let body = json!({"model": model, "prompt": prompt, "temperature": 0, "max_tokens": 20, "stream": false});
                let response = self.http.post_json("completions", &body).await?;
                response
                    .pointer("/choices/0/text")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            }
        };
        let Some(verdict) = verdict else {
            self.http.count_failure();
            return Err(self.error("response: expected choices[0] with the verdict text, got none"));
        };
        let categories = parse_verdict(&verdict).map_err(|reason| {
            self.http.count_failure();
            self.error(reason)
        })?;
        let mut findings = Vec::new();
        if categories
            .iter()
            .any(|code| code == CHILD_SEXUAL_EXPLOITATION)
        {
            let mut finding = Finding::new(
                target.exploitation_category(),
                1.0,
                FindingSource {
                    entry_id: Some(CHILD_SEXUAL_EXPLOITATION.to_owned()),
                    ..FindingSource::classifier(self.http.config().name.clone())
                },
            );
            let text_len = turns.last().map_or(0, |(_, turn)| turn.text.len());
            finding.spans.push(Span {
                start: 0,
                end: text_len,
                role: SpanRole::SexualContent,
                turn: Some(last_idx),
            });
            findings.push(finding);
        }
        Ok(findings)
    }

    fn error(&self, reason: impl Into<String>) -> Error {
        Error::Classifier {
            classifier: self.http.config().name.clone(),
            reason: reason.into(),
        }
    }
}

impl Classifier for LlamaGuard {
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

/// The user and assistant turns up to the last turn of the judged side,
/// with their indices in the original conversation (system turns dropped).
fn judged_turns(turns: &[Turn], target: Target) -> Vec<(usize, &Turn)> {
    let wanted = match target {
        Target::User => Role::User,
        Target::Agent => Role::Assistant,
    };
    let relevant: Vec<(usize, &Turn)> = turns
        .iter()
        .enumerate()
        .filter(|(_, turn)| matches!(turn.role, Role::User | Role::Assistant | Role::Other))
        .collect();
    match relevant.iter().rposition(|(_, turn)| turn.role == wanted) {
        Some(last) => relevant[..=last].to_vec(),
        // No turn of that side: judge everything as written.
        None => relevant,
    }
}

/// The Llama Guard 3 prompt for `turns`, judging the last `target` message.
pub fn build_prompt(turns: &[(usize, &Turn)], target: Target) -> String {
    let agent_type = match target {
        Target::User => "User",
        Target::Agent => "Agent",
    };
    let mut prompt = String::from("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n");
    prompt.push_str(&format!(
        "Task: Check if there is unsafe content in '{agent_type}' messages in conversations according our safety policy with the below categories.\n\n"
    ));
    prompt.push_str("<BEGIN UNSAFE CONTENT CATEGORIES>\n");
    for (code, name) in CATEGORIES {
        prompt.push_str(code);
        prompt.push_str(": ");
        prompt.push_str(name);
        prompt.push('\n');
    }
    prompt.push_str("<END UNSAFE CONTENT CATEGORIES>\n\n<BEGIN CONVERSATION>\n\n");
    for (_, turn) in turns {
        let speaker = if turn.role == Role::Assistant {
            "Agent"
        } else {
            "User"
        };
        prompt.push_str(speaker);
        prompt.push_str(": ");
        prompt.push_str(&turn.text);
        prompt.push_str("\n\n");
    }
    prompt.push_str("<END CONVERSATION>\n\n");
    prompt.push_str(&format!(
        "Provide your safety assessment for ONLY THE LAST {agent_type} message in the above conversation:\n - First line must read 'safe' or 'unsafe'.\n - If unsafe, a second line must include a comma-separated list of violated categories.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    ));
    prompt
}

/// Parses a verdict: `safe`, or `unsafe` followed by category codes.
///
/// # Errors
/// Anything else, described without echoing the text.
pub fn parse_verdict(text: &str) -> Result<Vec<String>, String> {
    let mut lines = text.trim().lines();
    let first = lines.next().unwrap_or("").trim().to_ascii_lowercase();
    match first.as_str() {
        "safe" => Ok(Vec::new()),
        "unsafe" => {
            let rest: Vec<String> = lines
                .flat_map(|line| line.split([',', ' ']))
                .map(|code| code.trim().to_ascii_uppercase())
                .filter(|code| !code.is_empty())
                .collect();
            for code in &rest {
                let valid = code.len() >= 2
                    && code.starts_with('S')
                    && code[1..].chars().all(|c| c.is_ascii_digit());
                if !valid {
                    return Err(
                        "response: expected category codes like S4 after 'unsafe'".to_owned()
                    );
                }
            }
            Ok(rest)
        }
        _ => Err(format!(
            "response: expected 'safe' or 'unsafe' on the first line, got {} chars of other text",
            first.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_parse() {
        assert_eq!(parse_verdict("safe"), Ok(vec![]));
        assert_eq!(parse_verdict("\n\nunsafe\nS4"), Ok(vec!["S4".to_owned()]));
        assert_eq!(
            parse_verdict("unsafe\nS1,S4"),
            Ok(vec!["S1".to_owned(), "S4".to_owned()])
        );
        assert!(parse_verdict("I cannot help with that").is_err());
        assert!(parse_verdict("unsafe\nchild stuff").is_err());
    }

    #[test]
    fn prompt_follows_the_llama_guard_3_format() {
        let turns = [
            Turn::new(Role::User, "hello"),
            Turn::new(Role::Assistant, "hi"),
        ];
        let judged = judged_turns(&turns, Target::Agent);
        let prompt = build_prompt(&judged, Target::Agent);
        assert!(prompt.starts_with("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nTask: Check if there is unsafe content in 'Agent' messages"));
        assert!(prompt.contains("S4: Child Sexual Exploitation.\n"));
        assert!(
            prompt
                .contains("<BEGIN CONVERSATION>\n\nUser: hello\n\nAgent: hi\n\n<END CONVERSATION>")
        );
        assert!(prompt.ends_with("<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"));
        // Judging the user drops the trailing assistant turn.
        assert_eq!(judged_turns(&turns, Target::User).len(), 1);
    }
}
