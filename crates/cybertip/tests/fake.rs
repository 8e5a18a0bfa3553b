//! The client against the fake server: the documented call order and codes,
//! expiry of unfinished reports, validation of bodies, and the classification
//! and retrying of every injected fault.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use childsafe_core::{Category, Md5};
use childsafe_cybertip::{
    builder::{CaseSource, build_report},
    client::{Client, ClientConfig, Credentials, RetryPolicy},
    error::Error,
    fake::{Endpoint, FakeConfig, FakeReportStatus, FakeServer, Fault, FaultRule},
    xml,
};
use common::*;
use md5::Digest as _;

fn credentials() -> Credentials {
    Credentials {
        user: "esp-user".into(),
        password: "esp-password".into(),
    }
}

async fn fake() -> FakeServer {
    FakeServer::start(
        FakeConfig::new(credentials(), schema()),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap()
}

fn client(fake: &FakeServer) -> Client {
    client_with(fake, credentials())
}

fn client_with(fake: &FakeServer, credentials: Credentials) -> Client {
    let mut config = ClientConfig::new(fake.base_url(), credentials);
    config.timeout = Duration::from_millis(1500);
    config.retry = RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    };
    Client::new(config).unwrap()
}

/// A valid report from the builder, as the real driver would send it.
fn report_xml() -> String {
    let built = build_report(
        &case(&[Category::CsamKnown], CaseSource::Gateway),
        &config(),
        now(),
    )
    .unwrap();
    xml::report_to_xml(&built.report).unwrap()
}

fn details_xml(report_id: i64, file_id: &str) -> String {
    let built = build_report(
        &case(&[Category::CsamKnown], CaseSource::Gateway),
        &config(),
        now(),
    )
    .unwrap();
    let mut details = built.files[0].details.clone();
    details.report_id = report_id;
    details.file_id = file_id.to_owned();
    xml::file_details_to_xml(&details).unwrap()
}

const BYTES: &[u8] = b"benign test bytes standing in for a preserved file";

fn md5_of(bytes: &[u8]) -> Md5 {
    Md5(md5::Md5::digest(bytes).into())
}

#[tokio::test]
async fn the_documented_call_order_finishes_a_report_once() {
    let fake = fake().await;
    let client = client(&fake);
    let status = client.status().await.unwrap();
    assert!(
        status
            .response
            .response_description
            .starts_with("Remote User : esp-user, Remote Ip : 127.0.0.1")
    );
    assert!(status.exchange.request_id.is_some());

    let submitted = client.submit(&report_xml()).await.unwrap();
    let report_id = submitted.response.report_id.unwrap();
    let uploaded = client
        .upload(report_id, "file-01", BYTES, &md5_of(BYTES))
        .await
        .unwrap();
    let file_id = uploaded.response.file_id.clone().unwrap();
    assert_eq!(
        uploaded.response.hash.as_deref(),
        Some(md5_of(BYTES).to_string().as_str())
    );
    client
        .fileinfo(&details_xml(report_id, &file_id))
        .await
        .unwrap();

    // At most once per file.
    let err = client
        .fileinfo(&details_xml(report_id, &file_id))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Rejected { code: 4000, .. }), "{err}");
    let err = client
        .fileinfo(&details_xml(report_id, "no-such-file"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Rejected { code: 5002, .. }), "{err}");

    let done = client.finish(report_id).await.unwrap();
    assert_eq!(done.response.report_id, report_id);
    assert_eq!(done.response.files, vec![file_id.clone()]);
    assert!(done.exchange.body.contains("<reportDoneResponse>"));

    // Final: finish again, retract, upload all answer "already finished".
    for err in [
        client.finish(report_id).await.unwrap_err(),
        client.retract(report_id).await.unwrap_err(),
        client
            .upload(report_id, "f", BYTES, &md5_of(BYTES))
            .await
            .unwrap_err(),
    ] {
        assert!(matches!(err, Error::Rejected { code: 5102, .. }), "{err}");
    }
    let records = fake.records();
    let finished = records.finished();
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0].files.len(), 1);
    assert_eq!(finished[0].files[0].fileinfo_count, 1);
    assert!(finished[0].files[0].generative_ai);
    assert_eq!(finished[0].files[0].md5, md5_of(BYTES).to_string());
}

#[tokio::test]
async fn retract_only_before_finish_and_bad_credentials_are_refused() {
    let fake = fake().await;
    let client = client(&fake);
    let report_id = client
        .submit(&report_xml())
        .await
        .unwrap()
        .response
        .report_id
        .unwrap();
    client.retract(report_id).await.unwrap();
    for err in [
        client.retract(report_id).await.unwrap_err(),
        client.finish(report_id).await.unwrap_err(),
        client
            .upload(report_id, "f", BYTES, &md5_of(BYTES))
            .await
            .unwrap_err(),
    ] {
        assert!(matches!(err, Error::Rejected { code: 5101, .. }), "{err}");
    }
    let err = client.finish(999).await.unwrap_err();
    assert!(matches!(err, Error::Rejected { code: 5001, .. }), "{err}");

    let wrong = client_with(
        &fake,
        Credentials {
            user: "esp-user".into(),
            password: "wrong".into(),
        },
    );
    let err = wrong.status().await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Rejected {
                code: 2000,
                http_status: 401,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn bodies_are_validated_against_the_xsd_and_the_documented_rules() {
    let fake = fake().await;
    let client = client(&fake);
    // Well-formed, schema-valid, but not a <report>.
    let wrong_root =
        std::fs::read_to_string(ncmec_dir().join("examples/filedetails_genai_full.xml")).unwrap();
    let err = client.submit(&wrong_root).await.unwrap_err();
    assert!(matches!(err, Error::Rejected { code: 4000, .. }), "{err}");
    // Out of XSD order.
    let swapped = report_xml().replace("<incidentType>", "<platform>x</platform><incidentType>");
    let err = client.submit(&swapped).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Rejected {
                code: 4100,
                http_status: 400,
                ..
            }
        ),
        "{err}"
    );
    // Not well-formed.
    let err = client.submit("<report>").await.unwrap_err();
    assert!(matches!(err, Error::Rejected { code: 4110, .. }), "{err}");
    // Schema-valid but breaking a documented rule: named in the description.
    let long_id = report_xml().replace("user-0001", &"u".repeat(256));
    let err = client.submit(&long_id).await.unwrap_err().to_string();
    assert!(
        err.contains("4100") && err.contains("espIdentifier: expected at most 255 characters"),
        "{err}"
    );
    // The invalid generativeAi examples, as fileinfo bodies.
    let report_id = client
        .submit(&report_xml())
        .await
        .unwrap()
        .response
        .report_id
        .unwrap();
    for name in [
        "INVALID_genai_false.xml",
        "INVALID_genai_0.xml",
        "AMBIGUOUS_genai_1.xml",
    ] {
        let body = std::fs::read_to_string(ncmec_dir().join("examples").join(name))
            .unwrap()
            .replace("4564654", &report_id.to_string());
        let err = client.fileinfo(&body).await.unwrap_err();
        assert!(
            matches!(err, Error::Rejected { code: 4100, .. }),
            "{name}: {err}"
        );
    }
    // Nothing was created by the refused submits.
    assert_eq!(fake.records().reports.len(), 1);
}

#[tokio::test]
async fn unfinished_reports_expire_after_24h_or_1h_after_the_last_change() {
    let fake = fake().await;
    let client = client(&fake);
    let a = client
        .submit(&report_xml())
        .await
        .unwrap()
        .response
        .report_id
        .unwrap();
    let b = client
        .submit(&report_xml())
        .await
        .unwrap()
        .response
        .report_id
        .unwrap();
    fake.clock().advance(time::Duration::minutes(23 * 60 + 30));
    // A change at 23h30 keeps b alive until 24h30.
    client.upload(b, "f", BYTES, &md5_of(BYTES)).await.unwrap();
    fake.clock().advance(time::Duration::minutes(40));
    // 24h10: a is gone (24h from open); b is not (1h from its change).
    let err = client
        .upload(a, "f", BYTES, &md5_of(BYTES))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Rejected { code: 5001, .. }), "{err}");
    client.upload(b, "f", BYTES, &md5_of(BYTES)).await.unwrap();
    fake.clock().advance(time::Duration::minutes(61));
    let err = client.finish(b).await.unwrap_err();
    assert!(matches!(err, Error::Rejected { code: 5001, .. }), "{err}");
    let records = fake.records();
    assert!(
        records
            .reports
            .values()
            .all(|it| it.status == FakeReportStatus::Expired)
    );
    assert!(records.finished().is_empty());
}

#[tokio::test]
async fn a_batched_report_finishes_only_with_exactly_one_file() {
    let fake = fake().await;
    let client = client(&fake);
    let batched =
        std::fs::read_to_string(ncmec_dir().join("examples/report_batched_viral.xml")).unwrap();
    let report_id = client
        .submit(&batched)
        .await
        .unwrap()
        .response
        .report_id
        .unwrap();
    for _ in 0..2 {
        client
            .upload(report_id, "f", BYTES, &md5_of(BYTES))
            .await
            .unwrap();
    }
    let err = client.finish(report_id).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Rejected {
                code: 4100,
                http_status: 400,
                ..
            }
        ),
        "{err}"
    );
    // generativeAi is refused on a batched report's file.
    let file_id = fake.records().reports[&report_id].files[0].file_id.clone();
    let body = std::fs::read_to_string(ncmec_dir().join("examples/filedetails_batched_viral.xml"))
        .unwrap()
        .replace("4564654", &report_id.to_string())
        .replace("b0754af766b426f2928a02c651ed4b99", &file_id)
        .replace("<viral/>", "<viral/><generativeAi/>");
    let err = client.fileinfo(&body).await.unwrap_err().to_string();
    assert!(err.contains("generativeAi: not allowed"), "{err}");
}

#[tokio::test]
async fn http_5xx_and_retryable_codes_are_retried_permanent_codes_are_not() {
    let fake = fake().await;
    let client = client(&fake);
    fake.add_fault(FaultRule::calls(
        Endpoint::Submit,
        1,
        2,
        Fault::HttpStatus { status: 503 },
    ));
    let report_id = client
        .submit(&report_xml())
        .await
        .unwrap()
        .response
        .report_id
        .unwrap();
    fake.add_fault(FaultRule::nth(
        Endpoint::Upload,
        1,
        Fault::ResponseCode {
            code: 1110,
            http_status: 500,
        },
    ));
    fake.add_fault(FaultRule::nth(
        Endpoint::Upload,
        2,
        Fault::ResponseCode {
            code: 1111,
            http_status: 200,
        },
    ));
    let uploaded = client
        .upload(report_id, "f", BYTES, &md5_of(BYTES))
        .await
        .unwrap();
    assert_eq!(uploaded.retried.len(), 2);
    assert!(uploaded.retried.iter().all(|it| it.request_id.is_some()));
    fake.add_fault(FaultRule::nth(
        Endpoint::Finish,
        1,
        Fault::ResponseCode {
            code: 1000,
            http_status: 500,
        },
    ));
    client.finish(report_id).await.unwrap();
    let records = fake.records();
    assert_eq!(records.calls_to(Endpoint::Submit).len(), 3);
    assert_eq!(records.calls_to(Endpoint::Upload).len(), 3);
    assert_eq!(records.calls_to(Endpoint::Finish).len(), 2);
    assert_eq!(records.reports.len(), 1);
    assert_eq!(records.finished()[0].files.len(), 1);

    // A permanent code is not retried.
    fake.add_fault(FaultRule::nth(
        Endpoint::Submit,
        4,
        Fault::ResponseCode {
            code: 3100,
            http_status: 403,
        },
    ));
    let err = client.submit(&report_xml()).await.unwrap_err();
    assert!(matches!(err, Error::Rejected { code: 3100, .. }), "{err}");
    assert_eq!(fake.records().calls_to(Endpoint::Submit).len(), 4);

    // Retries stop after max_attempts.
    fake.add_fault(FaultRule::calls(
        Endpoint::Status,
        1,
        10,
        Fault::HttpStatus { status: 502 },
    ));
    let err = client.status().await.unwrap_err();
    assert!(matches!(err, Error::Retry { .. }), "{err}");
    assert_eq!(fake.records().calls_to(Endpoint::Status).len(), 4);
}

#[tokio::test]
async fn a_dropped_connection_after_the_server_acted_is_reported_as_uncertain() {
    let fake = fake().await;
    let client = client(&fake);
    // Submit: retried (an orphan is left unfinished, never finished).
    fake.add_fault(FaultRule::nth(Endpoint::Submit, 1, Fault::DropAfterAct));
    let report_id = client
        .submit(&report_xml())
        .await
        .unwrap()
        .response
        .report_id
        .unwrap();
    assert_eq!(fake.records().reports.len(), 2);

    // Upload: not retried in place, because the file may be in the report.
    fake.add_fault(FaultRule::nth(Endpoint::Upload, 1, Fault::DropAfterAct));
    let err = client
        .upload(report_id, "f", BYTES, &md5_of(BYTES))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Retry {
                server_may_have_acted: true,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(fake.records().calls_to(Endpoint::Upload).len(), 1);
    assert_eq!(fake.records().reports[&report_id].files.len(), 1);

    // Dropped before acting with no connection-level difference: still uncertain.
    fake.add_fault(FaultRule::nth(Endpoint::Upload, 2, Fault::DropBeforeAct));
    let err = client
        .upload(report_id, "f", BYTES, &md5_of(BYTES))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Retry {
                server_may_have_acted: true,
                ..
            }
        ),
        "{err}"
    );

    // A wrong MD5 from NCMEC: the server holds a bad file.
    fake.add_fault(FaultRule::nth(Endpoint::Upload, 3, Fault::WrongMd5));
    let err = client
        .upload(report_id, "f", BYTES, &md5_of(BYTES))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("NCMEC received bytes with MD5"), "{err}");

    // Finish: retried, and the retry answers 5102: already finished.
    fake.add_fault(FaultRule::nth(Endpoint::Finish, 1, Fault::DropAfterAct));
    let err = client.finish(report_id).await.unwrap_err();
    assert!(matches!(err, Error::Rejected { code: 5102, .. }), "{err}");
    assert_eq!(fake.records().finished().len(), 1);
}

#[tokio::test]
async fn timeouts_are_retried_for_safe_calls() {
    let fake = fake().await;
    let client = client(&fake);
    fake.add_fault(FaultRule::nth(
        Endpoint::Status,
        1,
        Fault::Hang {
            millis: 3000,
            act: false,
        },
    ));
    let answer = client.status().await.unwrap();
    assert_eq!(answer.retried.len(), 1);
    assert!(
        answer.retried[0]
            .error
            .as_deref()
            .unwrap_or("")
            .contains("timed out")
    );
}

#[tokio::test]
async fn the_vault_hash_is_checked_before_sending() {
    let fake = fake().await;
    let client = client(&fake);
    let report_id = client
        .submit(&report_xml())
        .await
        .unwrap()
        .response
        .report_id
        .unwrap();
    let err = client
        .upload(report_id, "f", BYTES, &Md5([0; 16]))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("refusing to upload a modified file"), "{err}");
    // The error names hashes only, never the bytes.
    assert!(!err.contains("benign test bytes"));
    assert!(fake.records().calls_to(Endpoint::Upload).is_empty());
}

#[tokio::test]
async fn finish_and_retract_accept_url_encoded_forms_and_admin_endpoints_work() {
    let fake = fake().await;
    let client = client(&fake);
    let report_id = client
        .submit(&report_xml())
        .await
        .unwrap()
        .response
        .report_id
        .unwrap();
    let http = reqwest::Client::new();
    let response = http
        .post(format!("{}/retract", fake.base_url()))
        .basic_auth("esp-user", Some("esp-password"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("id={report_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("Request-ID"));
    let root = format!("http://{}", fake.addr());
    let state: serde_json::Value = http
        .get(format!("{root}/_fake/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        state["reports"][report_id.to_string()]["status"],
        "retracted"
    );
    let response = http
        .post(format!("{root}/_fake/faults"))
        .body(r#"{"endpoint": "status", "fault": {"kind": "http_status", "status": 500}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let answer = client.status().await.unwrap();
    assert_eq!(answer.retried[0].http_status, Some(500));
    let response = http
        .post(format!("{root}/_fake/clock/advance?seconds=90000"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let xsd = http
        .get(format!("{}/xsd", fake.base_url()))
        .basic_auth("esp-user", Some("esp-password"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&xsd[..], &std::fs::read(xsd_path()).unwrap()[..]);
}
