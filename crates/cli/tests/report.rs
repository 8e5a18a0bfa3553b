//! `childsafe report` end to end, with real process deaths: the submitting
//! binary is aborted at every failpoint between and around the API calls,
//! and SIGKILLed at random times, against the fake CyberTipline (in this
//! test process). After resuming, the fake holds exactly one finished report
//! for the case, with every file uploaded once and described once; the store
//! has the report finished and the case reported; and nothing the binary
//! printed carries file content.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use childsafe_core::{
    Action, Category, ContentHashes, Finding, FindingSource, SignalKind, Surface,
};
use childsafe_cybertip::{
    client::{Client, ClientConfig, Credentials},
    fake::{Endpoint, FakeConfig, FakeRecords, FakeServer, Fault, FaultRule},
    schema::{self, Schema},
};
use childsafe_store::{
    CaseId, CaseStatus, IncidentFile, NewIncident, ReportStatus, Store, Verdict,
};
use childsafe_vault::{Keyring, MasterKey, Vault};
use rand::{Rng as _, SeedableRng as _};
use util::{TestDir, run};

const CONTENT_MARKER: &str = "FILE-CONTENT-MARKER-9b2e";
/// Short, so that a killed run's lease runs out quickly.
const LEASE_SECONDS: &str = "0.5";

struct World {
    dir: TestDir,
    fake: FakeServer,
    key: String,
    case: CaseId,
    md5s: Vec<String>,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn credentials() -> Credentials {
    Credentials {
        user: "esp".into(),
        password: "esp-secret".into(),
    }
}

/// A fresh directory with a store, a vault and a confirmed gateway case
/// (one model output, one user input), and a fresh fake.
fn world(rt: &tokio::runtime::Runtime, latency: Duration) -> World {
    let dir = TestDir::new();
    let key = MasterKey::generate().unwrap();
    let key_text = key.to_base64().to_string();
    let schema = Schema::load(&schema::default_xsd_path()).unwrap();
    let mut config = FakeConfig::new(credentials(), schema);
    config.latency = latency;
    let (fake, case, md5s) = rt.block_on(async {
        let fake = FakeServer::start(config, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let store = Store::open(&dir.join("childsafe.db").display().to_string())
            .await
            .unwrap();
        let vault = Vault::open_dir(&dir.join("vault"), Keyring::new(key)).unwrap();
        let mut case = None;
        let mut md5s = Vec::new();
        for (n, surface) in [(1u8, Surface::Output), (2u8, Surface::Input)] {
            let bytes = format!("{CONTENT_MARKER} benign stand-in {n}").into_bytes();
            let crypto = childsafe_hash::crypto_hashes(&bytes);
            let item = store
                .preserve_evidence(&vault, &bytes, "gateway", "test case")
                .await
                .unwrap();
            md5s.push(crypto.md5.to_string());
            let incident = store
                .record_incident(&NewIncident {
                    tenant: "tenant-a".into(),
                    end_user: Some("user-1".into()),
                    surface,
                    action: Action::Block,
                    categories: vec![Category::CsamKnown],
                    findings: vec![Finding::new(
                        Category::CsamKnown,
                        1.0,
                        FindingSource::bank("test-bank", SignalKind::Md5, format!("e-{n}"), None),
                    )],
                    files: vec![IncidentFile {
                        hashes: ContentHashes {
                            md5: crypto.md5,
                            sha1: crypto.sha1,
                            sha256: crypto.sha256,
                            pdq: None,
                            quality: None,
                        },
                        vault_item: Some(item.id),
                    }],
                    text_sha256: None,
                    request_id: Some(format!("req-{n}")),
                    stage: None,
                    report: true,
                })
                .await
                .unwrap();
            case = incident.case_id;
        }
        let case = case.unwrap();
        store
            .assign_case(case, "reviewer", "reviewer", None)
            .await
            .unwrap();
        store
            .decide_case(case, Verdict::Confirm, "reviewer", "known-list match")
            .await
            .unwrap();
        store.close().await;
        md5s.sort();
        (fake, case, md5s)
    });
    World {
        dir,
        fake,
        key: key_text,
        case,
        md5s,
    }
}

impl World {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.dir.command();
        cmd.args(args)
            .arg("--db")
            .arg(self.dir.join("childsafe.db"))
            .env("CHILDSAFE_VAULT_KEY", &self.key)
            .env("CHILDSAFE_NCMEC_USER", "esp")
            .env("CHILDSAFE_NCMEC_PASSWORD", "esp-secret")
            .env("CHILDSAFE_NCMEC_REPORTER_EMAIL", "trust-safety@example.com")
            .env("CHILDSAFE_NCMEC_PLATFORM", "Example Image Generation API")
            .env("CHILDSAFE_NCMEC_XSD", schema::default_xsd_path());
        cmd
    }

    fn submit(&self, failpoint: Option<&str>) -> Command {
        let case = self.case.to_string();
        let base_url = self.fake.base_url();
        let mut cmd = self.command(&[
            "report",
            "submit",
            &case,
            "--base-url",
            &base_url,
            "--lease-seconds",
            LEASE_SECONDS,
            "--retry-base-ms",
            "5",
            "--by",
            "report-test",
        ]);
        cmd.arg("--vault-dir").arg(self.dir.join("vault"));
        if let Some(failpoint) = failpoint {
            cmd.env("CHILDSAFE_FAILPOINT", failpoint);
        }
        cmd
    }

    /// Runs submits until one exits 0 (a killed run's lease must run out
    /// first); returns everything printed.
    fn finish(&self) -> String {
        let mut printed = String::new();
        for _ in 0..5 {
            let out = run(&mut self.submit(None));
            printed.push_str(&out.stdout);
            printed.push_str(&out.stderr);
            if out.code == 0 {
                assert!(
                    out.stdout.contains("finished as CyberTipline report"),
                    "{out:?}"
                );
                return printed;
            }
            assert!(
                out.stderr.contains("being driven by"),
                "only a live lease may stop a clean run: {out:?}"
            );
            std::thread::sleep(Duration::from_millis(600));
        }
        panic!("no run finished:\n{printed}");
    }

    /// The promise, checked on the fake's records and in the store.
    fn assert_reported_once(&self, rt: &tokio::runtime::Runtime, what: &str) -> FakeRecords {
        let records = self.fake.records();
        let finished = records.finished();
        assert_eq!(
            finished.len(),
            1,
            "{what}: finished reports {:#?}",
            records.reports
        );
        let report = finished[0];
        let mut md5s: Vec<String> = report.files.iter().map(|it| it.md5.clone()).collect();
        md5s.sort();
        assert_eq!(md5s, self.md5s, "{what}: every file exactly once");
        for file in &report.files {
            assert_eq!(
                file.fileinfo_count, 1,
                "{what}: fileinfo once for {}",
                file.file_id
            );
        }
        // Abandoned reports are never finished (retracted, or left to expire).
        assert!(
            records
                .reports
                .values()
                .filter(|it| it.report_id != report.report_id)
                .all(|it| it.finished_at.is_none()),
            "{what}"
        );
        rt.block_on(async {
            let store = Store::open(&self.dir.join("childsafe.db").display().to_string())
                .await
                .unwrap();
            let outbox = store.report_for_case(self.case).await.unwrap().unwrap();
            assert_eq!(outbox.status, ReportStatus::Finished, "{what}");
            assert_eq!(
                outbox.ncmec_report_id,
                Some(report.report_id.to_string()),
                "{what}"
            );
            let detail = store.case_detail(self.case).await.unwrap();
            assert_eq!(detail.case.status, CaseStatus::Reported, "{what}");
            assert!(
                detail.evidence.iter().all(|it| it.retain_until.is_some()),
                "{what}: preservation clock"
            );
            store.close().await;
        });
        records
    }
}

fn killed_by_abort(out: &util::Output) -> bool {
    out.code == -1 || out.code == 134
}

/// Aborts at every failpoint (and chains of them), then resumes.
#[test]
fn a_kill_between_any_two_steps_resumes_without_loss_or_duplication() {
    let rt = runtime();
    let scenarios: &[&[&str]] = &[
        &["submit.before"],
        &["submit.after"],
        &["submit.recorded"],
        &["upload.before"],
        &["upload.after"],
        &["upload.recorded"],
        &["upload.after:2"],
        &["fileinfo.before"],
        &["fileinfo.after"],
        &["fileinfo.recorded"],
        &["fileinfo.after:2"],
        &["finish.before"],
        &["finish.after"],
        &["finish.recorded"],
        // Crashes while recovering from a crash.
        &["upload.after", "retract.before"],
        &["upload.after", "retract.after"],
        &["fileinfo.after", "retract.recorded"],
        &["submit.after", "submit.after", "upload.after:2"],
    ];
    for failpoints in scenarios {
        let world = world(&rt, Duration::ZERO);
        let what = format!("{failpoints:?}");
        let mut printed = String::new();
        for failpoint in *failpoints {
            let out = run(&mut world.submit(Some(failpoint)));
            assert!(
                killed_by_abort(&out),
                "{what}: expected the run to abort at {failpoint}: {out:?}"
            );
            printed.push_str(&out.stdout);
            printed.push_str(&out.stderr);
            std::thread::sleep(Duration::from_millis(600));
        }
        printed.push_str(&world.finish());
        let records = world.assert_reported_once(&rt, &what);
        if *failpoints == ["finish.after"] {
            assert!(
                printed.contains("NCMEC confirmed the report finished (5102)"),
                "{what}: {printed}"
            );
        }
        if *failpoints == ["finish.recorded"] {
            assert!(printed.contains("already finished"), "{what}: {printed}");
            assert_eq!(records.calls_to(Endpoint::Finish).len(), 1, "{what}");
        }
        // Where the server had not been called, or its answer was recorded,
        // nothing is started over. (A crash between recording an upload's
        // intent and making it does start over: the run cannot know whether
        // the request went out.)
        let no_restart = [
            "submit.before",
            "submit.recorded",
            "upload.recorded",
            "fileinfo.recorded",
            "finish.before",
            "finish.after",
            "finish.recorded",
        ];
        if failpoints.iter().all(|it| no_restart.contains(it)) {
            assert_eq!(records.reports.len(), 1, "{what}: {:#?}", records.reports);
        }
        assert!(
            !printed.contains(CONTENT_MARKER),
            "{what}: content in output"
        );
    }
}

/// SIGKILL at random moments (the fake answers slowly so that kills land
/// inside and between calls), then resume.
#[test]
fn random_kills_resume_without_loss_or_duplication() {
    let rt = runtime();
    let (mut killed, mut restarted) = (0, 0);
    for seed in 0..4u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let world = world(&rt, Duration::from_millis(70));
        let mut printed = String::new();
        for _ in 0..4 {
            let mut child = world
                .submit(None)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(rng.random_range(20..400)));
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            if out.status.code().is_none() {
                killed += 1;
            }
            printed.push_str(&String::from_utf8_lossy(&out.stdout));
            printed.push_str(&String::from_utf8_lossy(&out.stderr));
            std::thread::sleep(Duration::from_millis(600));
        }
        printed.push_str(&world.finish());
        let records = world.assert_reported_once(&rt, &format!("seed {seed}"));
        if records.reports.len() > 1 {
            restarted += 1;
        }
        assert!(
            !printed.contains(CONTENT_MARKER),
            "seed {seed}: content in output"
        );
    }
    // The kills landed in running submits, some of them after the server acted.
    assert!(killed >= 8, "only {killed} of 16 kills interrupted a run");
    assert!(restarted >= 1, "no kill forced a restart");
}

/// Faults through the binary: 5xx and retryable codes are retried in place,
/// a connection dropped after the server acted is recovered, and a permanent
/// code stops for a person until requeued.
#[test]
fn faults_are_retried_recovered_or_stopped_as_documented() {
    let rt = runtime();
    let world = world(&rt, Duration::ZERO);
    world.fake.add_fault(FaultRule::nth(
        Endpoint::Submit,
        1,
        Fault::HttpStatus { status: 503 },
    ));
    world.fake.add_fault(FaultRule::nth(
        Endpoint::Upload,
        1,
        Fault::ResponseCode {
            code: 1110,
            http_status: 500,
        },
    ));
    world
        .fake
        .add_fault(FaultRule::nth(Endpoint::Fileinfo, 2, Fault::DropAfterAct));
    let out = run(&mut world.submit(None));
    assert_eq!(out.code, 0, "{out:?}");
    let records = world.assert_reported_once(&rt, "faults");
    // One restart, for the dropped fileinfo; none for the 503 and the 1110.
    assert_eq!(records.reports.len(), 2, "{:#?}", records.reports);

    let world = world_with_permanent_failure(&rt);
    let out = run(&mut world.submit(None));
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("stopped") && out.stderr.contains("3000"),
        "{out:?}"
    );
    assert_eq!(
        world.fake.records().calls_to(Endpoint::Submit).len(),
        1,
        "not retried"
    );
    let out = run(&mut world.submit(None));
    assert_eq!(
        out.code, 2,
        "a failed report is not resent without a requeue: {out:?}"
    );
    let case = world.case.to_string();
    let out = run(&mut world.command(&[
        "report",
        "requeue",
        &case,
        "--reason",
        "account fixed",
        "--by",
        "operator",
    ]));
    assert_eq!(out.code, 0, "{out:?}");
    world.finish();
    world.assert_reported_once(&rt, "after requeue");
}

fn world_with_permanent_failure(rt: &tokio::runtime::Runtime) -> World {
    let world = world(rt, Duration::ZERO);
    world.fake.add_fault(FaultRule::nth(
        Endpoint::Submit,
        1,
        Fault::ResponseCode {
            code: 3000,
            http_status: 403,
        },
    ));
    world
}

#[test]
fn build_prints_valid_xml_and_status_shows_receipts() {
    let rt = runtime();
    let world = world(&rt, Duration::ZERO);
    let case = world.case.to_string();
    let out = run(&mut world.command(&["report", "build", &case]));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.starts_with("<?xml") && out.stdout.contains("<report "),
        "{out:?}"
    );
    let path = world.dir.write("report.xml", &out.stdout);
    let lint = Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(schema::default_xsd_path())
        .arg(&path)
        .output()
        .expect("xmllint (libxml2-utils) must be installed");
    assert!(
        lint.status.success(),
        "{}",
        String::from_utf8_lossy(&lint.stderr)
    );
    let out = run(&mut world.command(&["report", "build", &case, "--file", "1"]));
    assert!(
        out.stdout.contains("<generativeAi/>"),
        "the model output is annotated: {out:?}"
    );
    let out = run(&mut world.command(&["report", "build", &case, "--file", "2"]));
    assert!(
        !out.stdout.contains("generativeAi"),
        "the user input is not: {out:?}"
    );
    let out = run(&mut world.command(&["report", "build", &case, "--file", "3"]));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("--file 3: the report has 2 files"),
        "{out:?}"
    );

    world.finish();
    let out = run(&mut world.command(&["report", "status", &case]));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("finished step=finished"), "{out:?}");
    let request_ids = world
        .fake
        .records()
        .calls
        .iter()
        .map(|it| it.request_id.clone())
        .collect::<Vec<_>>();
    for line in out.stdout.lines().filter(|it| it.contains("request_id=")) {
        let id = line.rsplit("request_id=").next().unwrap();
        assert!(request_ids.iter().any(|it| it == id), "{line}");
    }
    let out = run(&mut world.command(&["report", "status", "--json"]));
    let line: serde_json::Value = serde_json::from_str(out.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(line["status"], "finished");
}

#[test]
fn submit_names_missing_settings_and_unknown_cases() {
    let rt = runtime();
    let world = world(&rt, Duration::ZERO);
    let mut cmd = world.submit(None);
    cmd.env_remove("CHILDSAFE_NCMEC_PASSWORD");
    let out = run(&mut cmd);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("CHILDSAFE_NCMEC_PASSWORD"), "{out:?}");
    let mut cmd = world.submit(None);
    cmd.env_remove("CHILDSAFE_NCMEC_REPORTER_EMAIL");
    let out = run(&mut cmd);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("reporter.email"), "{out:?}");
    assert!(world.fake.records().calls.is_empty());
    let out = run(&mut world.command(&[
        "report",
        "submit",
        "999",
        "--by",
        "x",
        "--base-url",
        "http://127.0.0.1:9",
    ]));
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("case 999"), "{out:?}");
}

#[test]
fn the_fake_runs_as_a_command() {
    let dir = TestDir::new();
    let mut child = dir
        .command()
        .args(["dev", "fake-cybertip", "--listen", "127.0.0.1:0"])
        .env("CHILDSAFE_NCMEC_PASSWORD", "pw")
        .env("CHILDSAFE_NCMEC_XSD", schema::default_xsd_path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    let url = line
        .split_whitespace()
        .find(|it| it.starts_with("http://"))
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned();
    let rt = runtime();
    let answer = rt.block_on(async {
        let client = Client::new(ClientConfig::new(
            url,
            Credentials {
                user: "esp".into(),
                password: "pw".into(),
            },
        ))
        .unwrap();
        client.status().await
    });
    let _ = child.kill();
    let _ = child.wait();
    let answer = answer.unwrap();
    assert!(
        answer
            .response
            .response_description
            .starts_with("Remote User : esp"),
        "{answer:?}"
    );
}
