//! The sliding-window output guard for streamed responses.
//!
//! Text arrives in small deltas. The guard keeps the last `window_bytes` of
//! text unreleased and checks, at every delta, the held text together with up
//! to `window_bytes` of already released context. Text is released only once
//! it has been checked with at least `window_bytes` of text after it.
//!
//! **Invariant: flagged streamed text is never delivered.** If a finding's
//! span is at most `window_bytes` long, none of it has been released when the
//! check that first sees the whole span runs: at the previous check the
//! stream ended before the span did, and everything after
//! `previous_end - window_bytes` was still held (the property test below
//! drives this with random chunkings). The window must therefore be at least
//! the longest span a detector reports; `GatewayConfig` enforces that.
//!
//! Checking costs O(window + delta) per delta, not O(stream length), so long
//! streams stay cheap.

use childsafe_core::Decision;

/// What a delta (or the end of the stream) lets through.
#[derive(Debug)]
pub enum Guarded {
    /// Text that is now safe to deliver (may be empty).
    Release(String),
    /// The held text (with its context) was flagged: deliver nothing more.
    Blocked(Box<Decision>),
}

/// One text channel of a stream (an OpenAI choice, an Anthropic content block).
pub struct StreamGuard {
    window_bytes: usize,
    /// Released context (a suffix of what was delivered) followed by held text.
    text: String,
    /// Bytes of `text` that are already delivered.
    released: usize,
    /// Total bytes delivered on this channel.
    delivered: usize,
}

impl std::fmt::Debug for StreamGuard {
    // The buffer is model output: content, so only lengths are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamGuard")
            .field("window_bytes", &self.window_bytes)
            .field("held_bytes", &(self.text.len() - self.released))
            .field("delivered", &self.delivered)
            .finish()
    }
}

impl StreamGuard {
    /// A guard that holds back `window_bytes` of text.
    pub fn new(window_bytes: usize) -> StreamGuard {
        StreamGuard {
            window_bytes: window_bytes.max(1),
            text: String::new(),
            released: 0,
            delivered: 0,
        }
    }

    /// Bytes delivered so far on this channel.
    pub fn delivered(&self) -> usize {
        self.delivered
    }

    /// Bytes held back, not yet delivered.
    pub fn held(&self) -> usize {
        self.text.len() - self.released
    }

    /// Adds a delta and checks; returns what may be delivered now.
    pub fn push(&mut self, delta: &str, check: &mut dyn FnMut(&str) -> Decision) -> Guarded {
        self.text.push_str(delta);
        let decision = check(&self.text);
        if decision.action.withholds() {
            return Guarded::Blocked(Box::new(decision));
        }
        let end = floor_char_boundary(
            &self.text,
            self.text.len().saturating_sub(self.window_bytes),
        );
        self.release_to(end)
    }

    /// The stream (or this channel) ended: checks the held text one last time
    /// and releases all of it if clean.
    pub fn finish(&mut self, check: &mut dyn FnMut(&str) -> Decision) -> Guarded {
        if self.held() == 0 {
            return Guarded::Release(String::new());
        }
        let decision = check(&self.text);
        if decision.action.withholds() {
            return Guarded::Blocked(Box::new(decision));
        }
        self.release_to(self.text.len())
    }

    fn release_to(&mut self, end: usize) -> Guarded {
        if end <= self.released {
            return Guarded::Release(String::new());
        }
        let res = self.text[self.released..end].to_owned();
        self.released = end;
        self.delivered += res.len();
        // Keep only `window_bytes` of released context.
        let cut = floor_char_boundary(&self.text, self.released.saturating_sub(self.window_bytes));
        if cut > 0 {
            self.text.drain(..cut);
            self.released -= cut;
        }
        Guarded::Release(res)
    }
}

fn floor_char_boundary(text: &str, mut idx: usize) -> usize {
    if idx >= text.len() {
        return text.len();
    }
    while !text.is_char_boundary(idx) {
        idx -= 1;
    }
    idx
}

#[cfg(test)]
mod tests {
    use childsafe_core::{Action, Category, Finding, FindingSource, Surface};
    use proptest::prelude::*;

    use super::*;

    /// A check that blocks whenever `marker` appears: a detector with a span of `marker.len()`.
    fn marker_check(marker: &'static str) -> impl FnMut(&str) -> Decision {
        move |text: &str| {
            let mut res = Decision::allow(Surface::Output);
            if text.contains(marker) {
                res.action = Action::Block;
                res.categories.push(Category::CsamSolicitation);
                res.findings.push(Finding::new(
                    Category::CsamSolicitation,
                    1.0,
                    FindingSource::detector("test.marker"),
                ));
            }
            res
        }
    }

    /// Streams `text` in the given chunk sizes; returns what was delivered and whether it was blocked.
    fn run(text: &str, cuts: &[usize], window: usize, marker: &'static str) -> (String, bool) {
        let mut guard = StreamGuard::new(window);
        let mut check = marker_check(marker);
        let mut delivered = String::new();
        let mut pos = 0;
        let mut cut_idx = 0;
        while pos < text.len() {
            let mut end = (pos + cuts[cut_idx % cuts.len()].max(1)).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            cut_idx += 1;
            match guard.push(&text[pos..end], &mut check) {
                Guarded::Release(it) => delivered.push_str(&it),
                Guarded::Blocked(_) => return (delivered, true),
            }
            pos = end;
        }
        match guard.finish(&mut check) {
            Guarded::Release(it) => delivered.push_str(&it),
            Guarded::Blocked(_) => return (delivered, true),
        }
        (delivered, false)
    }

    #[test]
    fn clean_text_is_delivered_whole_and_in_order() {
        let text = "the quick brown fox jumps over the lazy dog, äöü ✓ done";
        let (delivered, blocked) = run(text, &[1, 3, 7], 8, "FLAG");
        assert!(!blocked);
        assert_eq!(delivered, text);
    }

    #[test]
    fn held_text_is_released_only_after_the_window() {
        let mut guard = StreamGuard::new(10);
        let mut check = marker_check("FLAG");
        let Guarded::Release(it) = guard.push("0123456789abc", &mut check) else {
            panic!()
        };
        assert_eq!(it, "012");
        assert_eq!(guard.held(), 10);
        let Guarded::Blocked(decision) = guard.push("FLAG", &mut check) else {
            panic!()
        };
        assert_eq!(decision.categories, [Category::CsamSolicitation]);
        assert_eq!(guard.delivered(), 3);
    }

    #[test]
    fn debug_shows_lengths_not_text() {
        let mut guard = StreamGuard::new(100);
        let _ = guard.push("secret words", &mut marker_check("FLAG"));
        let shown = format!("{guard:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("held_bytes: 12"), "{shown}");
    }

    proptest! {
        /// Whatever the chunking, no byte of a flagged span is ever delivered,
        /// and clean streams are delivered exactly.
        #[test]
        fn flagged_span_is_never_delivered(
            before in "[a-z ä✓]{0,200}",
            after in "[a-z ]{0,50}",
            flagged in any::<bool>(),
            cuts in proptest::collection::vec(1usize..20, 1..10),
            window in 5usize..64,
        ) {
            let text = if flagged { format!("{before}FLAG{after}") } else { format!("{before}{after}") };
            let (delivered, blocked) = run(&text, &cuts, window, "FLAG");
            if flagged {
                prop_assert!(blocked);
                prop_assert!(delivered.len() <= before.len(), "delivered {} of {} clean bytes", delivered.len(), before.len());
                prop_assert!(text.starts_with(&delivered));
            } else {
                prop_assert!(!blocked);
                prop_assert_eq!(delivered, text);
            }
        }
    }
}
