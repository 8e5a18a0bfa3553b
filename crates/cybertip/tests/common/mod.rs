//! Helpers shared by the cybertip integration tests: the shared NCMEC folder,
//! xmllint as the reference validator, and benign case fixtures.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

pub mod world;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use childsafe_core::{Category, Finding, FindingSource, Md5, Sha256, SignalKind};
use childsafe_cybertip::{
    builder::{CaseFacts, CaseSource, FileFacts, FileOrigin, ReportOverrides, ReportedUser},
    config::ReporterConfig,
    model::{FileRelevance, IpCaptureEvent, IpEvent},
    schema::{self, Schema},
};
use time::{OffsetDateTime, macros::datetime};

/// `<checkout>/../shared/ncmec`.
pub fn ncmec_dir() -> PathBuf {
    schema::shared_ncmec_dir()
}

pub fn xsd_path() -> PathBuf {
    ncmec_dir().join(schema::XSD_FILE_NAME)
}

pub fn schema() -> Schema {
    Schema::load(&xsd_path()).expect("the shared XSD compiles")
}

/// Validates with xmllint (Debian libxml2-utils), the reference validator.
/// Returns xmllint's verdict and its stderr.
pub fn xmllint(document: &[u8]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("doc.xml");
    std::fs::write(&path, document).unwrap();
    xmllint_file(&path)
}

pub fn xmllint_file(path: &Path) -> (bool, String) {
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(xsd_path())
        .arg(path)
        .output()
        .expect("xmllint must be installed (apt-get install libxml2-utils; .ci/run does it)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Both validators, which must agree.
pub fn assert_valid(document: &str, what: &str) {
    let (ok, stderr) = xmllint(document.as_bytes());
    assert!(ok, "{what}: xmllint rejects it:\n{stderr}\n{document}");
    if let Err(err) = schema().validate(document.as_bytes()) {
        panic!("{what}: fastxml rejects what xmllint accepts: {err}\n{document}");
    }
}

pub fn now() -> OffsetDateTime {
    datetime!(2026-06-01 12:00 UTC)
}

pub fn config() -> ReporterConfig {
    toml::from_str(
        r#"
[reporter]
first_name = "Trust"
last_name = "Safety"
email = "trust-safety@example.com"
phone = "5550100"
phone_country_code = "+1"
company_template = "Example Co. Legal process: legal@example.com."
legal_url = "https://example.com/legal"

[reporter.contact]
first_name = "Legal"
email = "legal@example.com"

[service]
platform = "Example Image Generation API"
url = "https://api.example.com/v1"
"#,
    )
    .unwrap()
}

pub fn sha256(seed: u8) -> Sha256 {
    Sha256([seed; 32])
}

pub fn md5(seed: u8) -> Md5 {
    Md5([seed; 16])
}

pub fn file(seed: u8, origin: FileOrigin) -> FileFacts {
    FileFacts {
        generative_ai: matches!(origin, FileOrigin::ModelOutput { .. }),
        vault_item: format!("item-{seed}"),
        sha256: sha256(seed),
        md5: md5(seed),
        pdq: None,
        size: 64,
        origin,
        original_file_name: None,
        received_at: Some(datetime!(2026-05-01 10:00 UTC)),
        viewed_by_esp: false,
        exif_viewed_by_esp: false,
        relevance: FileRelevance::Reported,
    }
}

pub fn finding(category: Category) -> Finding {
    match category {
        Category::CsamKnown => Finding::new(
            category,
            1.0,
            FindingSource::bank("test-bank", SignalKind::Pdq, "e-1", Some(4)),
        ),
        _ => Finding::new(category, 0.97, FindingSource::detector("text.test")),
    }
}

/// A case of the given categories from the given source, with files fitting
/// the source: gateway and user-report cases hold model output (and, for the
/// gateway, a user upload); dataset cases hold training-data finds.
pub fn case(categories: &[Category], source: CaseSource) -> CaseFacts {
    let files = match source {
        CaseSource::Gateway => vec![
            file(
                1,
                FileOrigin::ModelOutput {
                    request_id: Some("req-0001".into()),
                },
            ),
            FileFacts {
                relevance: FileRelevance::SupplementalReported,
                original_file_name: Some("input.png".into()),
                ..file(
                    2,
                    FileOrigin::UserInput {
                        request_id: Some("req-0001".into()),
                    },
                )
            },
        ],
        CaseSource::UserReport => vec![FileFacts {
            viewed_by_esp: true,
            // A reported generation: a reviewer believes it is model output.
            generative_ai: true,
            ..file(
                3,
                FileOrigin::UserReport {
                    response_id: Some("resp-0001".into()),
                },
            )
        }],
        CaseSource::DatasetScan => vec![file(
            4,
            FileOrigin::TrainingData {
                dataset: "shards/00001.tar".into(),
                key: Some("000010042".into()),
                row: None,
                url: Some("https://images.example.org/a/b.jpg".into()),
            },
        )],
    };
    let user = (source != CaseSource::DatasetScan).then(|| ReportedUser {
        esp_identifier: "user-0001".into(),
        screen_name: Some("example_user".into()),
        emails: vec!["user@example.net".into()],
        ip_events: vec![IpCaptureEvent {
            ip_address: "192.0.2.10".into(),
            event_name: Some(IpEvent::Login),
            date_time: Some(datetime!(2026-05-01 09:55 UTC)),
            possible_proxy: None,
            port: Some(443),
        }],
        disabled_at: Some(datetime!(2026-05-01 11:00 UTC)),
    });
    CaseFacts {
        case_id: "case-0001".into(),
        categories: categories.to_vec(),
        findings: categories.iter().copied().map(finding).collect(),
        incident_time: datetime!(2026-05-01 10:00 UTC),
        source,
        user,
        files,
        overrides: ReportOverrides::default(),
    }
}
