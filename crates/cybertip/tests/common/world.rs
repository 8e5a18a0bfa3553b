//! The world the outbox and log tests run in: a real SQLite store, an
//! in-memory vault, the fake CyberTipline, and a confirmed gateway case whose
//! files are benign stand-ins.

use std::time::Duration;

use childsafe_core::{
    Action, Category, ContentHashes, Finding, FindingSource, Md5, Sha1, Sha256, SignalKind, Surface,
};
use childsafe_cybertip::{
    builder::{ReportOverrides, build_report},
    client::{Client, ClientConfig, Credentials, RetryPolicy},
    fake::{FakeConfig, FakeServer},
    outbox::{DriveOutcome, Driver, DriverOptions},
    store_case::case_facts,
};
use childsafe_store::{
    CaseId, CaseStatus, IncidentFile, NewIncident, ReportStatus, Store, Verdict,
};
use childsafe_vault::{Keyring, MasterKey, Vault};
use md5::Digest as _;

use super::{config, schema};

/// A marker that stands in for content: it must never leave the vault
/// except as upload bytes.
pub const CONTENT_MARKER: &str = "VAULT-CONTENT-MARKER-3c1f";

pub struct World {
    pub store: Store,
    pub vault: Vault,
    pub fake: FakeServer,
    _dir: tempfile::TempDir,
}

pub async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!(
        "sqlite:{}",
        dir.path().join("childsafe.db").display()
    ))
    .await
    .unwrap();
    let vault = Vault::in_memory(Keyring::new(MasterKey::generate().unwrap()));
    let credentials = Credentials {
        user: "esp".into(),
        password: "secret".into(),
    };
    let fake = FakeServer::start(
        FakeConfig::new(credentials, schema()),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    World {
        store,
        vault,
        fake,
        _dir: dir,
    }
}

pub fn content(n: u8) -> Vec<u8> {
    format!("{CONTENT_MARKER} benign stand-in file {n}").into_bytes()
}

pub fn hashes(bytes: &[u8]) -> ContentHashes {
    ContentHashes {
        md5: Md5(md5::Md5::digest(bytes).into()),
        sha1: Sha1(sha1::Sha1::digest(bytes).into()),
        sha256: Sha256(sha2::Sha256::digest(bytes).into()),
        pdq: None,
        quality: None,
    }
}

/// A confirmed gateway case: one model output and one user input, each
/// preserved in the vault.
pub async fn confirmed_case(world: &World, user: &str) -> CaseId {
    let mut case = None;
    for (n, surface) in [(1u8, Surface::Output), (2u8, Surface::Input)] {
        let bytes = content(n);
        let item = world
            .store
            .preserve_evidence(&world.vault, &bytes, "gateway", "csam_known match")
            .await
            .unwrap();
        let incident = world
            .store
            .record_incident(&NewIncident {
                tenant: "tenant-a".into(),
                end_user: Some(user.into()),
                surface,
                action: Action::Block,
                categories: vec![Category::CsamKnown],
                findings: vec![Finding::new(
                    Category::CsamKnown,
                    1.0,
                    FindingSource::bank("test-bank", SignalKind::Md5, format!("e-{n}"), None),
                )],
                files: vec![IncidentFile {
                    hashes: hashes(&bytes),
                    vault_item: Some(item.id),
                }],
                text_sha256: None,
                request_id: Some(format!("req-{user}-{n}")),
                stage: None,
                report: true,
            })
            .await
            .unwrap();
        case = incident.case_id;
    }
    let case = case.unwrap();
    world
        .store
        .assign_case(case, "reviewer", "reviewer", None)
        .await
        .unwrap();
    world
        .store
        .decide_case(
            case,
            Verdict::Confirm,
            "reviewer",
            "matches a known-CSAM list entry",
        )
        .await
        .unwrap();
    case
}

pub fn driver(world: &World) -> Driver {
    let mut config = ClientConfig::new(
        world.fake.base_url(),
        Credentials {
            user: "esp".into(),
            password: "secret".into(),
        },
    );
    config.timeout = Duration::from_millis(1500);
    config.retry = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    };
    let mut options = DriverOptions::new("test-driver");
    options.schema = Some(schema());
    Driver::new(
        world.store.clone(),
        world.vault.clone(),
        Client::new(config).unwrap(),
        options,
    )
}

pub async fn submit(world: &World, case: CaseId) -> DriveOutcome {
    let store = world.store.clone();
    driver(world)
        .submit_case(case, "test", |detail| {
            build_report(
                &case_facts(detail, ReportOverrides::default())?,
                &config(),
                store.now(),
            )
        })
        .await
        .unwrap()
}

/// The promise: exactly one finished report for the case, holding each of
/// its files once (by MD5), each with its details sent once, generativeAi
/// only on the model output; the store agrees and the preservation clock
/// started at finish.
pub async fn assert_reported_once(world: &World, case: CaseId) -> i64 {
    let records = world.fake.records();
    let marker = format!("childsafe case {case}.");
    let finished: Vec<_> = records
        .finished()
        .into_iter()
        .filter(|it| {
            it.additional_info
                .as_deref()
                .unwrap_or("")
                .contains(&marker)
        })
        .collect();
    assert_eq!(
        finished.len(),
        1,
        "finished reports for case {case}: {:#?}",
        records.reports
    );
    let report = finished[0];
    let mut md5s: Vec<String> = report.files.iter().map(|it| it.md5.clone()).collect();
    md5s.sort();
    let mut expected: Vec<String> = [1u8, 2]
        .iter()
        .map(|n| hashes(&content(*n)).md5.to_string())
        .collect();
    expected.sort();
    assert_eq!(md5s, expected, "files of report {}", report.report_id);
    for file in &report.files {
        assert_eq!(file.fileinfo_count, 1, "fileinfo of {}", file.file_id);
        let is_output = file.md5 == hashes(&content(1)).md5.to_string();
        assert_eq!(
            file.generative_ai, is_output,
            "generativeAi of {}",
            file.file_id
        );
    }

    let outbox = world.store.report_for_case(case).await.unwrap().unwrap();
    assert_eq!(outbox.status, ReportStatus::Finished);
    assert_eq!(outbox.ncmec_report_id, Some(report.report_id.to_string()));
    let detail = world.store.case_detail(case).await.unwrap();
    assert_eq!(detail.case.status, CaseStatus::Reported);
    let finished_at = outbox.finished_at.unwrap();
    for evidence in &detail.evidence {
        // The preservation clock starts at finish (to the millisecond).
        let until = evidence.retain_until.unwrap();
        let expected = finished_at + time::Duration::days(365);
        assert!(
            (until - expected).abs() < time::Duration::milliseconds(1),
            "{until} vs {expected}"
        );
        assert!(!evidence.viewed, "uploading is not viewing");
    }
    report.report_id
}
