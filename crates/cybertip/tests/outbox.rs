//! The outbox driver against the fake, with a real SQLite store and vault:
//! every injected fault, including a connection dropped after the server
//! acted, ends with exactly one finished report per case holding every file
//! once with its details once; permanent failures stop for a person; expired
//! reports start over; the preservation clock starts at finish; and no log
//! line, error or receipt carries file content.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use childsafe_cybertip::{
    builder::{ReportOverrides, build_report},
    fake::{Endpoint, FakeReportStatus, Fault, FaultRule},
    outbox::{DriveOutcome, SubmissionState},
    store_case::case_facts,
};
use childsafe_store::ReportStatus;
use common::{config, world::*};

#[tokio::test]
async fn a_case_is_reported_once_with_receipts_and_request_ids() {
    let world = world().await;
    let case = confirmed_case(&world, "user-1").await;
    let outcome = submit(&world, case).await;
    let DriveOutcome::Finished {
        report_id,
        receipt_lost,
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert!(!receipt_lost);
    assert_eq!(assert_reported_once(&world, case).await, report_id);

    let outbox = world.store.report_for_case(case).await.unwrap().unwrap();
    let receipts = world.store.report_receipts(outbox.id).await.unwrap();
    let steps: Vec<&str> = receipts.iter().map(|it| it.receipt.step.as_str()).collect();
    assert_eq!(
        steps,
        [
            "submit", "upload", "fileinfo", "upload", "fileinfo", "finish"
        ]
    );
    // Every receipt carries the Request-ID the fake answered with.
    let calls = world.fake.records().calls;
    for receipt in &receipts {
        let id = receipt.receipt.request_id.as_deref().unwrap();
        assert!(calls.iter().any(|it| it.request_id == id), "{id}");
    }
    assert!(
        receipts
            .last()
            .unwrap()
            .receipt
            .body
            .contains("<reportDoneResponse>")
    );
    let state = SubmissionState::from_report(&outbox).unwrap();
    assert_eq!(state.finished.unwrap().files.len(), 2);

    // Submitting again does nothing.
    assert!(matches!(
        submit(&world, case).await,
        DriveOutcome::AlreadyFinished { .. }
    ));
    assert_eq!(world.fake.records().reports.len(), 1);
}

/// A connection dropped after the server acted, at every call.
#[tokio::test]
async fn a_dropped_answer_at_any_call_is_recovered_without_duplication() {
    let cases = [
        (Endpoint::Submit, 1),
        (Endpoint::Upload, 1),
        (Endpoint::Upload, 2),
        (Endpoint::Fileinfo, 1),
        (Endpoint::Fileinfo, 2),
        (Endpoint::Finish, 1),
    ];
    for (endpoint, nth) in cases {
        let world = world().await;
        let case = confirmed_case(&world, "user-1").await;
        world
            .fake
            .add_fault(FaultRule::nth(endpoint, nth, Fault::DropAfterAct));
        let outcome = submit(&world, case).await;
        assert!(
            matches!(outcome, DriveOutcome::Finished { .. }),
            "{endpoint:?} {nth}: {outcome:?}"
        );
        assert_reported_once(&world, case).await;
        let records = world.fake.records();
        match endpoint {
            // The lost submit left an orphan, never finished.
            Endpoint::Submit => assert_eq!(records.reports.len(), 2),
            // An uncertain upload or fileinfo retracts and starts over.
            Endpoint::Upload | Endpoint::Fileinfo => {
                let retracted = records
                    .reports
                    .values()
                    .filter(|it| it.status == FakeReportStatus::Retracted)
                    .count();
                assert_eq!(retracted, 1, "{endpoint:?} {nth}");
            }
            // A lost finish: the retry answered 5102, the receipt is lost.
            _ => {
                assert_eq!(records.reports.len(), 1);
                assert!(matches!(
                    outcome,
                    DriveOutcome::Finished {
                        receipt_lost: true,
                        ..
                    }
                ));
            }
        }
    }
}

#[tokio::test]
async fn timeouts_and_wrong_md5_after_acting_are_recovered_too() {
    for rule in [
        FaultRule::nth(
            Endpoint::Upload,
            2,
            Fault::Hang {
                millis: 3000,
                act: true,
            },
        ),
        FaultRule::nth(
            Endpoint::Fileinfo,
            1,
            Fault::Hang {
                millis: 3000,
                act: true,
            },
        ),
        FaultRule::nth(Endpoint::Upload, 1, Fault::WrongMd5),
        FaultRule::nth(
            Endpoint::Finish,
            1,
            Fault::Hang {
                millis: 3000,
                act: true,
            },
        ),
    ] {
        let world = world().await;
        let case = confirmed_case(&world, "user-1").await;
        world.fake.add_fault(rule.clone());
        let outcome = submit(&world, case).await;
        assert!(
            matches!(outcome, DriveOutcome::Finished { .. }),
            "{rule:?}: {outcome:?}"
        );
        assert_reported_once(&world, case).await;
    }
}

#[tokio::test]
async fn retryable_failures_are_retried_in_place() {
    let world = world().await;
    let case = confirmed_case(&world, "user-1").await;
    world.fake.add_fault(FaultRule::nth(
        Endpoint::Submit,
        1,
        Fault::HttpStatus { status: 503 },
    ));
    for (endpoint, code) in [
        (Endpoint::Upload, 1110),
        (Endpoint::Fileinfo, 1100),
        (Endpoint::Finish, 1300),
    ] {
        world.fake.add_fault(FaultRule::nth(
            endpoint,
            1,
            Fault::ResponseCode {
                code,
                http_status: 500,
            },
        ));
    }
    assert!(matches!(
        submit(&world, case).await,
        DriveOutcome::Finished { .. }
    ));
    assert_reported_once(&world, case).await;
    // No restart was needed: the server said it had not acted.
    assert_eq!(world.fake.records().reports.len(), 1);
    // The failed attempts' Request-IDs are kept too.
    let outbox = world.store.report_for_case(case).await.unwrap().unwrap();
    let receipts = world.store.report_receipts(outbox.id).await.unwrap();
    let failed: Vec<_> = receipts
        .iter()
        .filter(|it| it.receipt.response_code.is_some_and(|c| c != 0))
        .collect();
    assert_eq!(failed.len(), 3);
    assert!(failed.iter().all(|it| it.receipt.request_id.is_some()));
}

#[tokio::test]
async fn a_permanent_rejection_stops_for_a_person_and_a_requeue_resumes() {
    let world = world().await;
    let case = confirmed_case(&world, "user-1").await;
    world.fake.add_fault(FaultRule::nth(
        Endpoint::Submit,
        1,
        Fault::ResponseCode {
            code: 3100,
            http_status: 403,
        },
    ));
    let outcome = submit(&world, case).await;
    let DriveOutcome::Failed { error } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(error.contains("3100"), "{error}");
    assert_eq!(
        world.fake.records().calls_to(Endpoint::Submit).len(),
        1,
        "not retried"
    );
    let outbox = world.store.report_for_case(case).await.unwrap().unwrap();
    assert_eq!(outbox.status, ReportStatus::Failed);
    assert!(world.fake.records().finished().is_empty());
    // Rerunning without a requeue does not resend.
    assert!(matches!(
        submit(&world, case).await,
        DriveOutcome::Failed { .. }
    ));
    world
        .store
        .requeue_report(outbox.id, "operator", "credentials fixed")
        .await
        .unwrap();
    assert!(matches!(
        submit(&world, case).await,
        DriveOutcome::Finished { .. }
    ));
    assert_reported_once(&world, case).await;
}

#[tokio::test]
async fn a_server_that_keeps_losing_answers_is_not_hammered() {
    let world = world().await;
    let case = confirmed_case(&world, "user-1").await;
    world.fake.add_fault(FaultRule::calls(
        Endpoint::Fileinfo,
        1,
        1000,
        Fault::HttpStatus { status: 502 },
    ));
    let outcome = submit(&world, case).await;
    assert!(
        matches!(outcome, DriveOutcome::RetryLater { .. }),
        "{outcome:?}"
    );
    let records = world.fake.records();
    assert_eq!(
        records.reports.len(),
        3,
        "three attempts in one run, then wait"
    );
    assert!(records.finished().is_empty());
    let outbox = world.store.report_for_case(case).await.unwrap().unwrap();
    assert_eq!(outbox.status, ReportStatus::Pending);
    // Once the server is healthy, a rerun finishes it, once.
    world.fake.clear_faults();
    assert!(matches!(
        submit(&world, case).await,
        DriveOutcome::Finished { .. }
    ));
    assert_reported_once(&world, case).await;
}

#[tokio::test]
async fn an_unfinished_report_that_expired_is_replaced() {
    let world = world().await;
    let case = confirmed_case(&world, "user-1").await;
    world.fake.add_fault(FaultRule::calls(
        Endpoint::Fileinfo,
        1,
        100,
        Fault::HttpStatus { status: 503 },
    ));
    let outcome = submit(&world, case).await;
    assert!(
        matches!(outcome, DriveOutcome::RetryLater { .. }),
        "{outcome:?}"
    );
    // A day later NCMEC has deleted the unfinished report.
    world.fake.clear_faults();
    world.fake.clock().advance(time::Duration::hours(25));
    let outcome = submit(&world, case).await;
    assert!(
        matches!(outcome, DriveOutcome::Finished { .. }),
        "{outcome:?}"
    );
    assert_reported_once(&world, case).await;
    let statuses: Vec<FakeReportStatus> = world
        .fake
        .records()
        .reports
        .values()
        .map(|it| it.status)
        .collect();
    assert_eq!(
        statuses,
        [FakeReportStatus::Expired, FakeReportStatus::Finished]
    );
    let outbox = world.store.report_for_case(case).await.unwrap().unwrap();
    let state = SubmissionState::from_report(&outbox).unwrap();
    assert_eq!(state.abandoned.len(), 1);
    assert!(
        state.abandoned[0]
            .reason
            .contains("no longer has the report"),
        "{:?}",
        state.abandoned
    );
}

#[tokio::test]
async fn a_report_leased_by_another_driver_is_left_alone() {
    let world = world().await;
    let case = confirmed_case(&world, "user-1").await;
    let (report, _) = world
        .store
        .enqueue_report(case, "test", "someone")
        .await
        .unwrap();
    let _lease = world
        .store
        .claim_report(report.id, "other-worker", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    let outcome = submit(&world, case).await;
    assert!(
        matches!(&outcome, DriveOutcome::Busy { owner: Some(owner), .. } if owner == "other-worker"),
        "{outcome:?}"
    );
    assert!(world.fake.records().calls.is_empty());
    // Another environment for the same case is refused.
    let store = world.store.clone();
    let err = driver(&world)
        .submit_case(case, "production", |detail| {
            build_report(
                &case_facts(detail, ReportOverrides::default())?,
                &config(),
                store.now(),
            )
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("test report"), "{err}");
}
