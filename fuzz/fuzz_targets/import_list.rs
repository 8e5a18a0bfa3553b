//! Fuzz target: bytes through the hash list importers of `childsafe-match`
//! (hex, CSV, python-threatexchange/HMA CSV, and format detection). Passes if
//! nothing panics; a list that parses must also survive an export and
//! re-import in its own format with the same signals.

#![no_main]

use childsafe_match::{ImportOptions, ListFormat, parse_list, write_list};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let formats = [ListFormat::Auto, ListFormat::Hex, ListFormat::Csv, ListFormat::Hma];
    let format = formats[usize::from(data.first().copied().unwrap_or(0) % 4)];
    let options = ImportOptions {
        format,
        added: 0,
        ..ImportOptions::new("fuzz")
    };
    let Ok(parsed) = parse_list("fuzz", data, &options) else {
        return;
    };
    let mut bytes = Vec::new();
    if write_list(parsed.format, parsed.entries.iter().cloned(), &mut bytes).is_err() {
        return;
    }
    let again = parse_list(
        "fuzz-again",
        &bytes,
        &ImportOptions {
            format: parsed.format,
            ..options
        },
    );
    let Ok(again) = again else {
        panic!("an exported list does not import again");
    };
    let signals = |list: &childsafe_match::ParsedList| list.entries.iter().map(|it| it.signal).collect::<Vec<_>>();
    assert_eq!(signals(&again), signals(&parsed));
});
