//! List format tests: each case is data passed to one `check`, errors are
//! compared as the user sees them, and every format round-trips the fields
//! it carries (proptest).

use childsafe_core::{Category, Md5, PdqHash, Sha1, Sha256, SignalKind};
use expect_test::{Expect, expect};
use proptest::prelude::*;

use super::*;

const BRIDGE: &str = "d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22";

fn options(format: ListFormat) -> ImportOptions {
    ImportOptions {
        format,
        category: Category::CsamKnown,
        source: "test-list".into(),
        signal: None,
        added: 1_700_000_000,
    }
}

/// Parses `text` and renders the entries (or the error) one per line.
fn check(format: ListFormat, text: &str, expect: Expect) {
    let rendered = match parse_list("list.txt", text.as_bytes(), &options(format)) {
        Ok(parsed) => {
            let mut lines = vec![format!(
                "format={} skipped={}",
                parsed.format.as_str(),
                parsed.skipped_unsupported
            )];
            for entry in &parsed.entries {
                lines.push(format!(
                    "{:?} id={} source={} category={} added={} enabled={}",
                    entry.signal,
                    entry.id,
                    entry.source,
                    entry.category,
                    entry.added,
                    entry.enabled
                ));
            }
            lines.join("\n")
        }
        Err(err) => format!("error: {err}"),
    };
    expect.assert_eq(&rendered);
}

#[test]
fn hex_lists() {
    check(
        ListFormat::Auto,
        &format!(
            "# a comment\n\n{BRIDGE}\r\nmd5 D41D8CD98F00B204E9800998ECF8427E\n  da39a3ee5e6b4b0d3255bfef95601890afd80709  \n"
        ),
        expect![[r#"
            format=hex skipped=0
            pdq:d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22 id=d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22 source=test-list category=csam_known added=1700000000 enabled=true
            md5:d41d8cd98f00b204e9800998ecf8427e id=d41d8cd98f00b204e9800998ecf8427e source=test-list category=csam_known added=1700000000 enabled=true
            sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709 id=da39a3ee5e6b4b0d3255bfef95601890afd80709 source=test-list category=csam_known added=1700000000 enabled=true"#]],
    );
    check(
        ListFormat::Hex,
        &format!("{BRIDGE}\n{}\n", &BRIDGE[1..]),
        expect![
            "error: list.txt:2: hash: expected 32 (md5), 40 (sha1) or 64 (pdq) hex chars, got 63"
        ],
    );
    check(
        ListFormat::Hex,
        "vpdq 00\n",
        expect![[r#"error: list.txt:1: signal: expected pdq, md5, sha1 or sha256, got "vpdq""#]],
    );
    check(
        ListFormat::Hex,
        &format!("{}zz\n", &BRIDGE[..62]),
        expect!["error: list.txt:1: hash: expected hex digit at char 63"],
    );
    check(
        ListFormat::Hex,
        "\u{ff}\n",
        expect![
            "error: list.txt:1: hash: expected 32 (md5), 40 (sha1) or 64 (pdq) hex chars, got 2"
        ],
    );
}

#[test]
fn hex_lists_reject_invalid_utf8_by_line() {
    let err = parse_list("x.txt", b"# ok\n\xff\xfe\n", &options(ListFormat::Hex)).unwrap_err();
    assert_eq!(err.to_string(), "x.txt:2: text: expected UTF-8");
}

#[test]
fn sha256_hex_lists_need_the_signal_option() {
    let mut opts = options(ListFormat::Hex);
    opts.signal = Some(SignalKind::Sha256);
    let parsed = parse_list("x", BRIDGE.as_bytes(), &opts).unwrap();
    assert_eq!(parsed.entries[0].signal.kind(), SignalKind::Sha256);
}

#[test]
fn csv_lists() {
    check(
        ListFormat::Auto,
        &format!(
            "id,Hash,category,source,added,enabled,extra\r\ne-1,{BRIDGE},csam_known,\"ncmec, industry\",2024-01-02T03:04:05Z,false,x\r\n\"e \"\"2\"\"\",{md5},,, 1700000001 ,,\n",
            md5 = "d41d8cd98f00b204e9800998ecf8427e"
        ),
        expect![[r#"
            format=csv skipped=0
            pdq:d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22 id=e-1 source=ncmec, industry category=csam_known added=1704164645 enabled=false
            md5:d41d8cd98f00b204e9800998ecf8427e id=e "2" source=test-list category=csam_known added=1700000001 enabled=true"#]],
    );
    check(
        ListFormat::Csv,
        "id,signal\ne-1,pdq\n",
        expect![
            "error: list.txt:1: header: expected a hash column (hash, pdq, md5, sha1 or sha256)"
        ],
    );
    check(
        ListFormat::Csv,
        &format!("hash,category\n{BRIDGE},csam\n"),
        expect![[
            r#"error: list.txt:2: category: expected a category such as csam_known, got "csam""#
        ]],
    );
    check(
        ListFormat::Csv,
        &format!("hash,id\n{BRIDGE}\n"),
        expect!["error: list.txt:2: csv: expected 2 fields, got 1"],
    );
    check(
        ListFormat::Csv,
        &format!("hash,id\n{BRIDGE},\"unterminated\n"),
        expect!["error: list.txt:2: csv: unterminated quoted field"],
    );
    check(
        ListFormat::Csv,
        &format!("hash,signal\n{BRIDGE},sha256\n{BRIDGE},tmk\n"),
        expect![[r#"error: list.txt:3: signal: expected pdq, md5, sha1 or sha256, got "tmk""#]],
    );
    check(
        ListFormat::Csv,
        &format!("hash,added\n{BRIDGE},yesterday\n"),
        expect![[
            r#"error: list.txt:2: added: expected RFC 3339 or Unix seconds, got "yesterday""#
        ]],
    );
}

#[test]
fn csv_columns_named_after_a_signal_type() {
    // The PDQ reference hasher's output (fixtures/pdq/expected/*.csv).
    check(
        ListFormat::Auto,
        &format!("pdq_hex,quality,path\n{BRIDGE},100,images/a.jpg\n"),
        expect![[r#"
            format=csv skipped=0
            pdq:d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22 id=d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22 source=test-list category=csam_known added=1700000000 enabled=true"#]],
    );
    check(
        ListFormat::Auto,
        &format!("md5,id\n{},e-9\n", &BRIDGE[..32]),
        expect![[r#"
            format=csv skipped=0
            md5:d8f8f0cee0f4a84f0637022a078f67f0 id=e-9 source=test-list category=csam_known added=1700000000 enabled=true"#]],
    );
}

#[test]
fn hma_lists() {
    // As python-threatexchange's `dataset -P --csv` writes it (csv.DictWriter).
    check(
        ListFormat::Auto,
        &format!(
            "collab,signal_type,signal_str,category,tags\r\nSample Data,pdq,{BRIDGE},POSITIVE_CLASS,tag_a tag_b\r\nSample Data,url,https://example.com/,POSITIVE_CLASS,\r\nSample Data,video_md5,d41d8cd98f00b204e9800998ecf8427e,NEGATIVE_CLASS,\r\n"
        ),
        expect![[r#"
            format=hma skipped=1
            pdq:d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22 id=d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22 source=Sample Data category=csam_known added=1700000000 enabled=true
            md5:d41d8cd98f00b204e9800998ecf8427e id=d41d8cd98f00b204e9800998ecf8427e source=Sample Data category=csam_known added=1700000000 enabled=false"#]],
    );
    check(
        ListFormat::Hma,
        &format!("collab,signal_type,signal_str,category,tags\nc,pdq,{BRIDGE},MAYBE,\n"),
        expect![[
            r#"error: list.txt:2: category: expected POSITIVE_CLASS, NEGATIVE_CLASS, INVESTIGATION_SEED or DISPUTED, got "MAYBE""#
        ]],
    );
    check(
        ListFormat::Hma,
        "hash\nabc\n",
        expect!["error: list.txt:1: header: expected collab,signal_type,signal_str,category,tags"],
    );
    check(
        ListFormat::Hma,
        "collab,signal_type,signal_str,category,tags\nc,pdq,abc,,\n",
        expect!["error: list.txt:2: signal_str: expected 64 hex chars, got 3"],
    );
}

#[test]
fn errors_never_echo_long_fields() {
    let long = "x".repeat(500);
    let err = parse_list(
        "x",
        format!("hash,category\n{BRIDGE},{long}\n").as_bytes(),
        &options(ListFormat::Csv),
    )
    .unwrap_err()
    .to_string();
    assert!(err.len() < 120, "{err}");
}

fn any_signal() -> impl Strategy<Value = Signal> {
    prop_oneof![
        any::<[u8; 32]>().prop_map(|it| Signal::Pdq(PdqHash(it))),
        any::<[u8; 16]>().prop_map(|it| Signal::Md5(Md5(it))),
        any::<[u8; 20]>().prop_map(|it| Signal::Sha1(Sha1(it))),
        any::<[u8; 32]>().prop_map(|it| Signal::Sha256(Sha256(it))),
    ]
}

fn any_name() -> impl Strategy<Value = String> {
    // Printable text including CSV specials and spaces at the ends.
    "[ a-zA-Z0-9,\"'é_.:-]{1,20}".prop_filter("non-blank", |it| !it.trim().is_empty())
}

fn any_entry() -> impl Strategy<Value = Entry> {
    (
        any_signal(),
        any_name(),
        any_name(),
        0..Category::ALL.len(),
        0i64..4_000_000_000,
        any::<bool>(),
    )
        .prop_map(|(signal, id, source, category, added, enabled)| Entry {
            signal,
            id,
            source,
            category: Category::ALL[category],
            added,
            enabled,
        })
}

fn round_trip(format: ListFormat, entries: &[Entry]) -> Vec<Entry> {
    let mut bytes = Vec::new();
    write_list(format, entries.iter().cloned(), &mut bytes).unwrap();
    parse_list("round-trip", &bytes, &options(format))
        .unwrap()
        .entries
}

proptest! {
    #[test]
    fn csv_round_trips_every_field(entries in proptest::collection::vec(any_entry(), 0..20)) {
        prop_assert_eq!(round_trip(ListFormat::Csv, &entries), entries);
    }

    #[test]
    fn hma_round_trips_signal_source_and_opinion(entries in proptest::collection::vec(any_entry(), 0..20)) {
        let back = round_trip(ListFormat::Hma, &entries);
        prop_assert_eq!(back.len(), entries.len());
        for (back, entry) in back.iter().zip(&entries) {
            prop_assert_eq!(back.signal, entry.signal);
            prop_assert_eq!(&back.source, &entry.source);
            prop_assert_eq!(back.enabled, entry.enabled);
        }
    }

    #[test]
    fn hex_round_trips_signals(entries in proptest::collection::vec(any_entry(), 0..20)) {
        let back: Vec<Signal> = round_trip(ListFormat::Hex, &entries).iter().map(|it| it.signal).collect();
        let expected: Vec<Signal> = entries.iter().map(|it| it.signal).collect();
        prop_assert_eq!(back, expected);
    }

    #[test]
    fn parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300), format in 0usize..4) {
        let format = [ListFormat::Auto, ListFormat::Hex, ListFormat::Csv, ListFormat::Hma][format];
        let _ = parse_list("fuzz", &bytes, &options(format));
    }
}
