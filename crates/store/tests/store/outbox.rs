//! The report outbox: one report per case, leases that fence stale workers,
//! durable steps with receipts, and the preservation clock at finish.

use std::time::Duration as StdDuration;

use childsafe_core::{Category, Surface};
use childsafe_store::{CaseId, CaseStatus, Error, Receipt, ReportStatus, Store, Verdict};
use serde_json::json;
use time::Duration;

use crate::{common::both, fixtures::*};

const LEASE: StdDuration = StdDuration::from_secs(60);

async fn confirmed_case(s: &Store, user: &str) -> CaseId {
    let case = s
        .record_incident(&incident(user, Category::CsamKnown, Surface::Input))
        .await
        .unwrap()
        .case_id
        .unwrap();
    s.decide_case(case, Verdict::Confirm, "reviewer", "confirmed")
        .await
        .unwrap();
    case
}

fn receipt(step: &str, request_id: &str) -> Receipt {
    Receipt {
        step: step.to_owned(),
        http_status: Some(200),
        response_code: Some(0),
        request_id: Some(request_id.to_owned()),
        body: format!(
            "<reportResponse><responseCode>0</responseCode><step>{step}</step></reportResponse>"
        ),
    }
}

both!(a_case_gets_exactly_one_report, |db| async move {
    let s = &db.store;
    let unconfirmed = s
        .record_incident(&incident("u0", Category::CsamKnown, Surface::Input))
        .await
        .unwrap()
        .case_id
        .unwrap();
    let err = s
        .enqueue_report(unconfirmed, "test", "lead")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidTransition { .. }), "{err}");

    let case = confirmed_case(s, "u1").await;
    let (first, created) = s.enqueue_report(case, "test", "lead").await.unwrap();
    assert!(created);
    assert_eq!(
        (first.step.as_str(), first.status, first.state.clone()),
        ("new", ReportStatus::Pending, json!({}))
    );
    let (again, created) = s
        .enqueue_report(case, "test", "someone-else")
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(again.id, first.id);
    // Another environment for the same case is refused, not a second report.
    assert!(matches!(
        s.enqueue_report(case, "production", "lead").await,
        Err(Error::Invalid { .. })
    ));
    assert_eq!(s.list_reports(None, 10).await.unwrap().len(), 1);
});

both!(concurrent_enqueues_create_one_report, |db| async move {
    let case = confirmed_case(&db.store, "u1").await;
    let other = db.reopen().await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = if i % 2 == 0 {
            db.store.clone()
        } else {
            other.clone()
        };
        tasks.push(tokio::spawn(async move {
            store.enqueue_report(case, "test", "worker").await.unwrap()
        }));
    }
    let mut created = 0;
    let mut ids = std::collections::BTreeSet::new();
    for task in tasks {
        let (report, was_created) = task.await.unwrap();
        created += usize::from(was_created);
        ids.insert(report.id);
    }
    assert_eq!((created, ids.len()), (1, 1));
    other.close().await;
});

both!(
    a_report_walks_to_finish_and_starts_the_preservation_clock,
    |db| async move {
        let s = &db.store;
        let case = confirmed_case(s, "u1").await;
        let (report, _) = s.enqueue_report(case, "test", "lead").await.unwrap();

        let mut lease = s
            .claim_due_report("worker-1", LEASE)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(lease.report().id, report.id);
        assert_eq!(lease.report().lease_owner.as_deref(), Some("worker-1"));
        // Nobody else can claim it while the lease lives.
        assert!(
            s.claim_due_report("worker-2", LEASE)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            s.claim_report(report.id, "worker-2", LEASE)
                .await
                .unwrap()
                .is_none()
        );

        s.save_report_step(
            &mut lease,
            "submitted",
            &json!({"report_id": "9001"}),
            Some(&receipt("submit", "rid-1")),
        )
        .await
        .unwrap();
        assert_eq!(lease.report().step, "submitted");
        assert_eq!(lease.report().state, json!({"report_id": "9001"}));
        db.clock.advance(Duration::seconds(30));
        s.save_report_step(
            &mut lease,
            "uploaded:0",
            &json!({"report_id": "9001", "files": ["f0"]}),
            Some(&receipt("upload", "rid-2")),
        )
        .await
        .unwrap();
        // The lease was extended by the step: still valid 50 s after the first claim.
        db.clock.advance(Duration::seconds(50));
        let finish_at = s.now();
        let done = s
            .finish_report(
                lease,
                "9001",
                &json!({"report_id": "9001", "files": ["f0"]}),
                &receipt("finish", "rid-3"),
            )
            .await
            .unwrap();
        assert_eq!(done.status, ReportStatus::Finished);
        assert_eq!(done.finished_at, Some(finish_at));
        assert_eq!(done.ncmec_report_id.as_deref(), Some("9001"));
        assert_eq!(done.lease_owner, None);
        assert_eq!(s.case(case).await.unwrap().status, CaseStatus::Reported);

        let receipts = s.report_receipts(report.id).await.unwrap();
        let ids: Vec<_> = receipts
            .iter()
            .map(|r| r.receipt.request_id.clone().unwrap())
            .collect();
        assert_eq!(ids, ["rid-1", "rid-2", "rid-3"]);
        assert!(receipts[2].receipt.body.contains("<step>finish</step>"));

        // Finished is final: nothing to claim, a new enqueue returns the same report.
        assert!(
            s.claim_report(report.id, "worker-2", LEASE)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            s.enqueue_report(case, "test", "lead").await.unwrap().0.id,
            report.id
        );
        let actions: Vec<String> = s
            .audit_entries(0, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
        for want in ["report.enqueue", "report.step", "report.finish"] {
            assert!(
                actions.iter().any(|a| a == want),
                "{want} missing from {actions:?}"
            );
        }
        assert!(s.verify_audit(None).await.unwrap().is_intact());
    }
);

both!(an_expired_lease_is_fenced_off, |db| async move {
    let s = &db.store;
    let case = confirmed_case(s, "u1").await;
    let (report, _) = s.enqueue_report(case, "test", "lead").await.unwrap();
    let mut stale = s
        .claim_report(report.id, "worker-1", LEASE)
        .await
        .unwrap()
        .unwrap();

    // worker-1 stalls past its lease; worker-2 takes over and makes progress.
    db.clock.advance(Duration::seconds(61));
    let mut fresh = s
        .claim_due_report("worker-2", LEASE)
        .await
        .unwrap()
        .unwrap();
    s.save_report_step(&mut fresh, "submitted", &json!({"report_id": "1"}), None)
        .await
        .unwrap();

    // worker-1 wakes up: every change it tries is refused, progress is intact.
    let err = s
        .save_report_step(&mut stale, "submitted", &json!({"report_id": "2"}), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::LeaseLost { report: r } if r == report.id),
        "{err}"
    );
    assert!(matches!(
        s.finish_report(stale, "2", &json!({}), &receipt("finish", "x"))
            .await,
        Err(Error::LeaseLost { .. })
    ));
    let current = s.report(report.id).await.unwrap();
    assert_eq!(
        (current.step.as_str(), current.state.clone()),
        ("submitted", json!({"report_id": "1"}))
    );
    assert_eq!(current.lease_owner.as_deref(), Some("worker-2"));
});

both!(retries_wait_and_permanent_failures_stop, |db| async move {
    let s = &db.store;
    let case = confirmed_case(s, "u1").await;
    let (report, _) = s.enqueue_report(case, "test", "lead").await.unwrap();
    let lease = s.claim_due_report("w", LEASE).await.unwrap().unwrap();
    let later = s
        .retry_report_later(
            lease,
            "responseCode 1000: server error",
            StdDuration::from_secs(120),
            Some(&receipt("submit", "rid-err")),
        )
        .await
        .unwrap();
    assert_eq!(later.attempts, 1);
    assert_eq!(
        later.last_error.as_deref(),
        Some("responseCode 1000: server error")
    );
    assert_eq!(later.lease_owner, None);
    // Not due yet.
    assert!(s.claim_due_report("w", LEASE).await.unwrap().is_none());
    db.clock.advance(Duration::seconds(121));
    let lease = s.claim_due_report("w", LEASE).await.unwrap().unwrap();
    let failed = s
        .fail_report(
            lease,
            "responseCode 4100: validation failed",
            &json!({"why": "xsd"}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(failed.status, ReportStatus::Failed);
    assert!(
        s.claim_report(report.id, "w", LEASE)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        s.case(case).await.unwrap().status,
        CaseStatus::Confirmed,
        "a failed report is not a report"
    );

    let requeued = s
        .requeue_report(report.id, "lead", "fixed the reporter address")
        .await
        .unwrap();
    assert_eq!(
        (requeued.status, requeued.attempts),
        (ReportStatus::Pending, 0)
    );
    assert!(s.claim_due_report("w", LEASE).await.unwrap().is_some());
});

both!(only_one_of_many_claimers_wins, |db| async move {
    for user in ["u1", "u2", "u3"] {
        let case = confirmed_case(&db.store, user).await;
        db.store.enqueue_report(case, "test", "lead").await.unwrap();
    }
    let replica = db.reopen().await;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let store = if i % 2 == 0 {
            db.store.clone()
        } else {
            replica.clone()
        };
        tasks.push(tokio::spawn(async move {
            store
                .claim_due_report(&format!("worker-{i}"), LEASE)
                .await
                .unwrap()
                .map(|l| l.report().id)
        }));
    }
    let mut claimed = Vec::new();
    for task in tasks {
        if let Some(id) = task.await.unwrap() {
            claimed.push(id);
        }
    }
    claimed.sort();
    let before = claimed.len();
    claimed.dedup();
    assert_eq!(before, claimed.len(), "a report was claimed twice");
    assert_eq!(claimed.len(), 3, "every due report is claimed by someone");
    replica.close().await;
});
