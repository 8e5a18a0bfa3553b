//! Fuzz target for the classify input path: a raw input line (any bytes)
//! decoded as `childsafe classify` does (lossy UTF-8), parsed as plain text
//! or JSON (`text` / `messages`), normalised and run through the built-in
//! detectors. Checks: no panic; every span lies inside its text on char
//! boundaries; normalising twice equals normalising once.
#![no_main]

use std::sync::OnceLock;

use childsafe_text::{
    TextDetector,
    input::{InputContent, parse_line},
    normalize,
};
use libfuzzer_sys::fuzz_target;

fn detector() -> &'static TextDetector {
    static DETECTOR: OnceLock<TextDetector> = OnceLock::new();
    DETECTOR.get_or_init(|| TextDetector::built_in().expect("built-in lexicons compile"))
}

fn check_spans(text: &str, findings: &[childsafe_core::Finding]) {
    for finding in findings {
        for span in &finding.spans {
            assert!(span.start <= span.end && span.end <= text.len());
            assert!(text.is_char_boundary(span.start) && text.is_char_boundary(span.end));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    let once = normalize(&line);
    assert_eq!(normalize(once.as_str()).as_str(), once.as_str());
    let Ok(item) = parse_line(&line) else { return };
    match item.content {
        InputContent::Text(text) => check_spans(&text, &detector().detect(&text)),
        InputContent::Conversation(turns) => {
            for finding in detector().detect_conversation(&turns) {
                for span in &finding.spans {
                    let text = span.turn.map_or("", |idx| turns[idx].text.as_str());
                    assert!(span.end <= text.len() || span.turn.is_none());
                }
            }
        }
    }
});
