//! Every document we generate is valid against NCMEC's XSD (xmllint and
//! fastxml agree), reads back to the same model, and keeps the
//! `generativeAi` promise; NCMEC's examples are judged as their README says;
//! and the documented rules reject what they should, naming the field.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use childsafe_core::Category;
use childsafe_cybertip::{
    builder::{CaseSource, FileOrigin, build_report, incident_for},
    error::Error,
    model::{FileRelevance, IncidentType, InternetDetails, Report},
    rules, xml,
};
use common::*;
use time::macros::datetime;

/// Every category path and source, built, written, validated by both
/// validators, and read back unchanged.
#[test]
fn every_category_path_builds_a_valid_report_and_file_details() {
    let paths: &[(&[Category], IncidentType, [bool; 2])] = &[
        // categories, incident type, [sextortion, csamSolicitation]
        (
            &[Category::CsamKnown],
            IncidentType::ChildPornography,
            [false, false],
        ),
        (
            &[Category::CsamSuspected],
            IncidentType::ChildPornography,
            [false, false],
        ),
        (
            &[Category::CsamSolicitation],
            IncidentType::ChildPornography,
            [false, true],
        ),
        (
            &[Category::Grooming],
            IncidentType::OnlineEnticement,
            [false, false],
        ),
        (
            &[Category::Sextortion],
            IncidentType::OnlineEnticement,
            [true, false],
        ),
        (
            &[
                Category::Grooming,
                Category::CsamSolicitation,
                Category::MinorIndicator,
            ],
            IncidentType::OnlineEnticement,
            [false, true],
        ),
        (
            &[
                Category::CsamKnown,
                Category::Sextortion,
                Category::CsamSolicitation,
            ],
            IncidentType::ChildPornography,
            [true, true],
        ),
    ];
    let mut documents = 0;
    for (categories, incident, [sextortion, solicitation]) in paths {
        for source in [
            CaseSource::Gateway,
            CaseSource::UserReport,
            CaseSource::DatasetScan,
        ] {
            let what = format!("{categories:?} from {source:?}");
            let built = build_report(&case(categories, source.clone()), &config(), now()).unwrap();
            let summary = &built.report.incident_summary;
            assert_eq!(summary.incident_type, *incident, "{what}");
            assert_eq!(summary.annotations.sextortion, *sextortion, "{what}");
            assert_eq!(
                summary.annotations.csam_solicitation, *solicitation,
                "{what}"
            );

            let report_xml = xml::report_to_xml(&built.report).unwrap();
            assert_valid(&report_xml, &what);
            assert_eq!(
                xml::report_from_xml(report_xml.as_bytes()).unwrap(),
                built.report,
                "{what}"
            );
            documents += 1;

            for (idx, planned) in built.files.iter().enumerate() {
                let mut details = planned.details.clone();
                details.report_id = 4564654;
                details.file_id = format!("b0754af766b426f2928a02c651ed4b9{idx}");
                let details_xml = xml::file_details_to_xml(&details).unwrap();
                assert_valid(&details_xml, &format!("{what}, file {idx}"));
                assert_eq!(
                    xml::file_details_from_xml(details_xml.as_bytes()).unwrap(),
                    details
                );
                rules::check_file_details(&details, false, now()).unwrap();
                documents += 1;
            }
        }
    }
    assert_eq!(documents, 7 * (3 + 2 + 1 + 1));
}

#[test]
fn minor_sexualization_alone_needs_a_reviewer_choice_and_help_seeking_is_never_reported() {
    let err = build_report(
        &case(&[Category::MinorSexualization], CaseSource::Gateway),
        &config(),
        now(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("--incident-type"), "{err}");
    let err = incident_for(&[Category::HelpSeeking], &Default::default()).unwrap_err();
    assert!(err.to_string().contains("help_seeking"), "{err}");

    let mut facts = case(&[Category::MinorSexualization], CaseSource::Gateway);
    facts.overrides.incident_type = Some(IncidentType::MisleadingWordsOrImages);
    facts.overrides.annotations.minor_to_minor_interaction = true;
    let built = build_report(&facts, &config(), now()).unwrap();
    assert_eq!(
        built.report.incident_summary.incident_type,
        IncidentType::MisleadingWordsOrImages
    );
    let report_xml = xml::report_to_xml(&built.report).unwrap();
    assert!(report_xml.contains("<minorToMinorInteraction/>"));
    assert_valid(&report_xml, "override");
}

/// generativeAi is an empty element, only on model output and AI-altered
/// files; training-data finds carry their origin in locationOfFile and
/// additionalInfo instead.
#[test]
fn generative_ai_only_for_model_output() {
    for source in [
        CaseSource::Gateway,
        CaseSource::UserReport,
        CaseSource::DatasetScan,
    ] {
        let facts = case(&[Category::CsamKnown], source);
        let built = build_report(&facts, &config(), now()).unwrap();
        for (facts, planned) in facts.files.iter().zip(&built.files) {
            let mut details = planned.details.clone();
            details.report_id = 1;
            details.file_id = "f".into();
            let text = xml::file_details_to_xml(&details).unwrap();
            let flagged = text.contains("<generativeAi/>");
            assert_eq!(flagged, facts.generative_ai, "{:?}", facts.origin);
            assert!(!text.contains("<generativeAi>"), "{text}");
            // Inside fileAnnotations there are only empty presence elements.
            if let Some(start) = text.find("<fileAnnotations>") {
                let end = text.find("</fileAnnotations>").unwrap();
                for line in text[start + "<fileAnnotations>".len()..end].lines() {
                    let line = line.trim();
                    assert!(line.is_empty() || line.ends_with("/>"), "{line} in\n{text}");
                }
            }
            if let FileOrigin::TrainingData { .. } = facts.origin {
                assert!(!flagged);
                assert_eq!(
                    details.location_of_file.as_deref(),
                    Some("https://images.example.org/a/b.jpg")
                );
                assert!(
                    details.additional_info[0].contains("shards/00001.tar"),
                    "{:?}",
                    details.additional_info
                );
                assert!(details.additional_info[0].contains("Not generated by"));
            }
        }
    }
}

#[test]
fn generative_ai_on_training_data_is_refused() {
    let mut facts = case(&[Category::CsamKnown], CaseSource::DatasetScan);
    facts.files[0].generative_ai = true;
    let err = build_report(&facts, &config(), now())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("vault item item-4") && err.contains("training data"),
        "{err}"
    );
}

#[test]
fn file_viewed_by_esp_follows_the_store_and_hashes_come_from_the_vault() {
    let facts = case(&[Category::CsamKnown], CaseSource::UserReport);
    let built = build_report(&facts, &config(), now()).unwrap();
    assert_eq!(built.files[0].details.file_viewed_by_esp, Some(true));
    let facts = case(&[Category::CsamKnown], CaseSource::Gateway);
    let built = build_report(&facts, &config(), now()).unwrap();
    let details = &built.files[0].details;
    assert_eq!(details.file_viewed_by_esp, Some(false));
    assert_eq!(details.exif_viewed_by_esp, Some(false));
    let hashes: Vec<(&str, String)> = details
        .original_file_hashes
        .iter()
        .map(|it| (it.hash_type.as_str(), it.value.clone()))
        .collect();
    assert_eq!(
        hashes,
        vec![
            ("MD5", md5(1).to_string()),
            ("SHA256", sha256(1).to_string())
        ]
    );
    assert_eq!(
        built.files[1].details.file_relevance,
        Some(FileRelevance::SupplementalReported)
    );
}

/// The shared examples: xmllint and fastxml give the verdict the README
/// records, and our reader and rules agree where they apply.
#[test]
fn shared_examples_are_judged_as_documented() {
    let dir = ncmec_dir().join("examples");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|it| it.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|it| it.ends_with(".xml"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 18, "{names:?}");
    let schema = schema();
    for name in &names {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).unwrap();
        let expect_valid = !(name.starts_with("INVALID_") || name.starts_with("AMBIGUOUS_"));
        let (lint, stderr) = xmllint_file(&path);
        assert_eq!(lint, expect_valid, "{name}: xmllint: {stderr}");
        assert_eq!(
            schema.validate(&bytes).is_ok(),
            expect_valid,
            "{name}: fastxml disagrees with xmllint"
        );

        let root = xml::root_name(&bytes).unwrap();
        match root.as_str() {
            "fileDetails" => {
                let parsed = xml::file_details_from_xml(&bytes);
                assert_eq!(parsed.is_ok(), expect_valid, "{name}: {parsed:?}");
                if let Ok(details) = parsed {
                    let batched = name.contains("batched");
                    rules::check_file_details(&details, batched, now()).unwrap();
                    // What we write back is valid too.
                    assert_valid(&xml::file_details_to_xml(&details).unwrap(), name);
                }
            }
            "report" => {
                let report = xml::report_from_xml(&bytes).unwrap();
                assert!(
                    report.unmodelled.is_empty(),
                    "{name}: {:?}",
                    report.unmodelled
                );
                rules::check_report(&report, now()).unwrap();
                assert_eq!(report.batched_viral_meme, name.contains("batched"));
                assert_valid(&xml::report_to_xml(&report).unwrap(), name);
            }
            "reportResponse" => {
                let response = xml::report_response_from_xml(&bytes).unwrap();
                assert_eq!(response.response_code, 0);
                if name.contains("upload") {
                    assert_eq!(
                        response.hash.as_deref(),
                        Some("fafa5efeaf3cbe3b23b2748d13e629a1")
                    );
                    assert_eq!(
                        response.file_id.as_deref(),
                        Some("b0754af766b426f2928a02c651ed4b99")
                    );
                }
                assert_valid(&xml::report_response_to_xml(&response).unwrap(), name);
            }
            "reportDoneResponse" => {
                let done = xml::report_done_response_from_xml(&bytes).unwrap();
                assert_eq!((done.report_id, done.files.len()), (4564654, 1));
                assert_valid(&xml::report_done_response_to_xml(&done).unwrap(), name);
            }
            other => panic!("{name}: unexpected root {other}"),
        }
    }
}

#[test]
fn invalid_generative_ai_values_are_refused_by_our_reader_with_the_field() {
    for (name, value) in [
        ("INVALID_genai_false.xml", "false"),
        ("INVALID_genai_0.xml", "0"),
        ("AMBIGUOUS_genai_1.xml", "1"),
    ] {
        let bytes = std::fs::read(ncmec_dir().join("examples").join(name)).unwrap();
        let err = xml::file_details_from_xml(&bytes).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "line 12: fileDetails/fileAnnotations/generativeAi: expected an empty element or true (a presence flag), got {value:?}"
            )
        );
    }
}

/// One documented rule per row: mutate a valid document, expect the named
/// field in the error.
#[test]
fn documented_rules_name_the_field() {
    type Mutation = fn(&mut Report);
    let cases: &[(&str, Mutation, &str)] = &[
        (
            "esp identifier 256",
            |r| r.persons_reported[0].esp_identifier = Some("x".repeat(256)),
            "report/personOrUserReported[1]/espIdentifier: expected at most 255 characters, got 256",
        ),
        (
            "esp service 101",
            |r| r.persons_reported[0].esp_service = Some("s".repeat(101)),
            "report/personOrUserReported[1]/espService: expected at most 100 characters, got 101",
        ),
        (
            "url 2084",
            |r| {
                r.internet_details[0] = InternetDetails::WebPage {
                    urls: vec![format!("https://e.com/{}", "a".repeat(2084 - 14))],
                    additional_info: None,
                    third_party_hosted_content: None,
                }
            },
            "report/internetDetails[1]/webPageIncident/url[1]: expected at most 2083 characters, got 2084",
        ),
        (
            "profile url",
            |r| r.persons_reported[0].profile_urls = vec!["a".repeat(3000)],
            "report/personOrUserReported[1]/profileUrl[1]: expected at most 2083 characters, got 3000",
        ),
        (
            "platform 257",
            |r| r.incident_summary.platform = Some("p".repeat(257)),
            "report/incidentSummary/platform: expected at most 256 characters, got 257",
        ),
        (
            "future incident",
            |r| r.incident_summary.incident_date_time = datetime!(2026-06-02 0:00 UTC),
            "report/incidentSummary/incidentDateTime: expected a date in the past, got 2026-06-02T00:00:00Z (now is 2026-06-01T12:00:00Z)",
        ),
        (
            "future ip event",
            |r| {
                r.persons_reported[0].ip_capture_events[0].date_time =
                    Some(datetime!(2027-01-01 0:00 UTC))
            },
            "report/personOrUserReported[1]/ipCaptureEvent[1]/dateTime: expected a date in the past",
        ),
        (
            "blank escalation",
            |r| r.incident_summary.escalate_to_high_priority = Some("  ".into()),
            "report/incidentSummary/escalateToHighPriority: expected a reason for escalating",
        ),
        (
            "no reporter email",
            |r| r.reporter.reporting_person.emails.clear(),
            "report/reporter/reportingPerson/email: required by NCMEC's documentation",
        ),
        (
            "two users unbatched",
            |r| r.persons_reported.push(r.persons_reported[0].clone()),
            "report/personOrUserReported: expected at most one reported person or user",
        ),
        (
            "bad port",
            |r| r.persons_reported[0].ip_capture_events[0].port = Some(70000),
            "report/personOrUserReported[1]/ipCaptureEvent[1]/port: expected 1 to 65535, got 70000",
        ),
        (
            "control char",
            |r| r.additional_info = Some("a\u{1}b".into()),
            "report/additionalInfo: expected characters allowed in XML, got U+0001 at character 2",
        ),
        (
            "batched with internet details",
            |r| {
                r.batched_viral_meme = true;
                r.persons_reported[0] = esp_only("a");
                r.additional_info = None;
            },
            "report/internetDetails: not allowed in a VIRAL_POTENTIAL_MEME batched report (Appendix E)",
        ),
        (
            "batched with full user",
            |r| {
                r.batched_viral_meme = true;
                r.internet_details.clear();
                r.additional_info = None;
            },
            "report/personOrUserReported[1]: expected espIdentifier and nothing else in a batched report (Appendix E)",
        ),
        (
            "batched with top-level info",
            |r| {
                r.batched_viral_meme = true;
                r.internet_details.clear();
                r.persons_reported[0] = esp_only("a");
            },
            "report/additionalInfo: not allowed in a VIRAL_POTENTIAL_MEME batched report (Appendix E)",
        ),
    ];
    let base = build_report(
        &case(&[Category::CsamKnown], CaseSource::Gateway),
        &config(),
        now(),
    )
    .unwrap()
    .report;
    rules::check_report(&base, now()).unwrap();
    for (what, mutate, expected) in cases {
        let mut report = base.clone();
        mutate(&mut report);
        let err = rules::check_report(&report, now()).unwrap_err().to_string();
        assert!(
            err.lines().any(|line| line.starts_with(expected)),
            "{what}: expected {expected:?}, got:\n{err}"
        );
    }
}

fn esp_only(id: &str) -> childsafe_cybertip::model::PersonOrUserReported {
    childsafe_cybertip::model::PersonOrUserReported {
        esp_identifier: Some(id.into()),
        ..Default::default()
    }
}

#[test]
fn batched_file_rules_forbid_generative_ai_and_more() {
    let bytes = std::fs::read(ncmec_dir().join("examples/filedetails_batched_viral.xml")).unwrap();
    let ok = xml::file_details_from_xml(&bytes).unwrap();
    rules::check_file_details(&ok, true, now()).unwrap();

    let mut with_ai = ok.clone();
    with_ai.annotations.generative_ai = true;
    let err = rules::check_file_details(&with_ai, true, now())
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "fileDetails/fileAnnotations/generativeAi: not allowed on the file of a VIRAL_POTENTIAL_MEME batched report (Appendix E)"
    );
    // The same file outside a batched report is fine.
    rules::check_file_details(&with_ai, false, now()).unwrap();

    let mut neither = ok.clone();
    neither.annotations.viral = false;
    neither.annotations.potential_meme = false;
    neither
        .original_file_hashes
        .push(childsafe_cybertip::model::FileHash {
            hash_type: "MD5".into(),
            value: md5(1).to_string(),
        });
    neither.file_relevance = Some(FileRelevance::SupplementalReported);
    let err = rules::check_file_details(&neither, true, now())
        .unwrap_err()
        .to_string();
    for expected in [
        "fileDetails/fileAnnotations: expected viral and/or potentialMeme",
        "fileDetails/fileRelevance: expected Reported",
        "fileDetails/originalFileHash: not allowed",
    ] {
        assert!(err.contains(expected), "{expected} in {err}");
    }
    assert!(rules::check_batched_file_count(1).is_ok());
    let err = rules::check_batched_file_count(2).unwrap_err().to_string();
    assert!(
        err.contains("exactly one file") && err.contains("got 2"),
        "{err}"
    );
}

#[test]
fn file_rules_name_the_field() {
    let built = build_report(
        &case(&[Category::CsamKnown], CaseSource::Gateway),
        &config(),
        now(),
    )
    .unwrap();
    let mut details = built.files[0].details.clone();
    details.report_id = 1;
    details.file_id = "f".into();
    details.exif_viewed_by_esp = Some(true);
    details.original_file_name = Some("n".repeat(2057));
    details.location_of_file = Some("u".repeat(2084));
    details.uploaded_to_esp_timestamp = Some(datetime!(2030-01-01 0:00 UTC));
    let err = rules::check_file_details(&details, false, now()).unwrap_err();
    let Error::Rules(violations) = err else {
        panic!("expected rules")
    };
    let fields: Vec<&str> = violations.0.iter().map(|it| it.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "fileDetails/originalFileName",
            "fileDetails/uploadedToEspTimestamp",
            "fileDetails/locationOfFile",
            "fileDetails/fileViewedByEsp",
        ]
    );
}
