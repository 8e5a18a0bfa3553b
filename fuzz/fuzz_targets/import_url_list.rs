//! Fuzz target: bytes through `UrlList::parse` (hotline URL and domain lists)
//! and every parsed line back through URL normalisation. Passes if nothing
//! panics and normalising is idempotent on what a list accepts.

#![no_main]

use childsafe_core::Category;
use childsafe_match::{UrlList, normalize_url};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = UrlList::parse("fuzz", "fuzz", data, Category::CsamKnown);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for line in text.lines() {
        let Ok(url) = normalize_url(line) else {
            continue;
        };
        let again = normalize_url(&url.key()).ok();
        assert_eq!(again.map(|it| it.key()), Some(url.key()), "normalising twice changed the URL");
    }
});
