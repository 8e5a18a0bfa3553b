//! Prints, for every line of JSON lines on stdin, what the built-in
//! detectors make of it: the normalised text with the original byte range
//! of each of its bytes, and the findings (a `text` field is one message, a
//! `messages` field a conversation). Comparing the output of two builds
//! shows whether a change altered any detection result or offset. Run with
//! `cargo run --release -p childsafe-text --example detect_dump < FILE.jsonl`.
#![allow(clippy::print_stdout, clippy::unwrap_used, missing_docs)]

use std::io::BufRead;

use childsafe_text::{Role, TextDetector, Turn, normalize};

#[derive(serde::Deserialize)]
struct Line {
    text: Option<String>,
    messages: Option<Vec<Message>>,
}

#[derive(serde::Deserialize)]
struct Message {
    role: Role,
    content: String,
}

fn main() {
    let detector = TextDetector::built_in().unwrap();
    for line in std::io::stdin().lock().lines() {
        let line: Line = serde_json::from_str(&line.unwrap()).unwrap();
        if let Some(text) = line.text {
            let norm = normalize(&text);
            let ranges: Vec<_> = (0..norm.len())
                .map(|idx| norm.original_range(idx..idx + 1))
                .collect();
            println!("{:?} {ranges:?}", norm.as_str());
            println!("{:?}", detector.detect(&text));
        }
        if let Some(messages) = line.messages {
            let turns: Vec<Turn> = messages
                .into_iter()
                .map(|message| Turn::new(message.role, message.content))
                .collect();
            println!("{:?}", detector.analyze_conversation(&turns));
        }
    }
}
