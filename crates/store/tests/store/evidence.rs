//! Evidence: preserved through the vault, read only through logged
//! accesses with a reason, viewed-by-ESP only when someone viewed it, kept
//! one year from the report's finish, held when held, and purged exactly
//! when expired and not held.

use std::{collections::BTreeSet, time::Duration as StdDuration};

use childsafe_core::{Category, Surface};
use childsafe_store::{AccessPurpose, CaseStatus, Error, NewUserReport, Receipt, Store, Verdict};
use childsafe_vault::{ItemId, Keyring, MasterKey, Vault};
use proptest::{
    strategy::{Strategy, ValueTree},
    test_runner::TestRunner,
};
use serde_json::json;
use time::Duration;

use crate::{
    common::{TestDb, both, t0},
    fixtures::*,
};

fn vault() -> Vault {
    Vault::in_memory(Keyring::new(MasterKey::generate().unwrap()))
}

both!(
    access_is_logged_and_only_viewing_counts_as_viewed,
    |db| async move {
        let s = &db.store;
        let vault = vault();
        let item = s
            .preserve_evidence(
                &vault,
                b"benign stand-in bytes",
                "gateway",
                "known hash match on input",
            )
            .await
            .unwrap();
        assert_eq!(item.sha256, hashes(b"benign stand-in bytes").sha256);
        assert_eq!(item.size, Some(21));
        assert!(!item.viewed);
        assert_eq!(
            item.retain_until, None,
            "no retention clock before a report"
        );

        // Uploading, exporting and verifying are not viewing.
        for purpose in [AccessPurpose::Upload, AccessPurpose::Export] {
            let opened = s
                .open_evidence(&vault, item.id, "reporter", purpose, "cybertip upload")
                .await
                .unwrap();
            assert_eq!(opened.content.as_bytes(), b"benign stand-in bytes");
        }
        s.verify_evidence(&vault, item.id, "ops").await.unwrap();
        assert!(!s.file_viewed_by_esp(item.id).await.unwrap());

        // A reason is required, and refused access leaves no trace of a read.
        let err = s
            .open_evidence(&vault, item.id, "reviewer", AccessPurpose::View, " ")
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Invalid { .. }), "{err}");
        assert!(!s.file_viewed_by_esp(item.id).await.unwrap());

        db.clock.advance(Duration::minutes(1));
        s.open_evidence(
            &vault,
            item.id,
            "reviewer-a",
            AccessPurpose::View,
            "case review",
        )
        .await
        .unwrap();
        assert!(s.file_viewed_by_esp(item.id).await.unwrap());
        assert!(s.evidence_item(item.id).await.unwrap().viewed);

        let log = s.evidence_access(item.id).await.unwrap();
        let purposes: Vec<_> = log.iter().map(|a| (a.purpose, a.actor.as_str())).collect();
        assert_eq!(
            purposes,
            [
                (AccessPurpose::Upload, "reporter"),
                (AccessPurpose::Export, "reporter"),
                (AccessPurpose::Verify, "ops"),
                (AccessPurpose::View, "reviewer-a")
            ]
        );
        assert_eq!(log[3].reason, "case review");
        assert_eq!(log[3].at, t0() + Duration::minutes(1));
        let actions: Vec<String> = s
            .audit_entries(0, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
        for want in [
            "evidence.register",
            "evidence.upload",
            "evidence.view",
            "evidence.verify",
        ] {
            assert!(
                actions.iter().any(|a| a == want),
                "{want} missing from {actions:?}"
            );
        }
    }
);

both!(
    a_vault_item_that_disagrees_with_its_record_is_refused,
    |db| async move {
        let s = &db.store;
        let vault = vault();
        let meta = vault.put(b"benign bytes", t0()).unwrap();
        let mut entry = queue_entry_with_evidence("q1", "example.org", b"benign bytes", &meta);
        s.import_queue_entries(std::slice::from_ref(&entry), "importer")
            .await
            .unwrap();
        // Registered from the queue: hashes known, size learned on verification.
        assert_eq!(s.evidence_item(meta.id).await.unwrap().size, None);
        assert_eq!(
            s.verify_evidence(&vault, meta.id, "ops")
                .await
                .unwrap()
                .size,
            Some(12)
        );

        // A queue entry claiming another hash for the same item is refused.
        entry.id = "q2".to_owned();
        entry.hashes = hashes(b"other bytes");
        entry.evidence.as_mut().unwrap().sha256 = entry.hashes.sha256;
        let err = s
            .import_queue_entries(&[entry], "importer")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("registered with sha256"), "{err}");
    }
);

async fn finish_report_for(s: &Store, case: childsafe_store::CaseId) {
    s.decide_case(case, Verdict::Confirm, "reviewer", "confirmed")
        .await
        .unwrap();
    s.enqueue_report(case, "test", "lead").await.unwrap();
    let lease = s
        .claim_due_report("worker", StdDuration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    s.finish_report(
        lease,
        "77",
        &json!({}),
        &Receipt::new("finish", "<reportDoneResponse/>"),
    )
    .await
    .unwrap();
}

both!(
    retention_runs_one_year_from_the_reports_finish,
    |db| async move {
        let s = &db.store;
        let vault = vault();
        let item = s
            .preserve_evidence(&vault, b"benign image", "gateway", "known hash match")
            .await
            .unwrap();
        let case = s
            .record_incident(&image_incident(
                "u1",
                Surface::Input,
                b"benign image",
                Some(item.id),
            ))
            .await
            .unwrap()
            .case_id
            .unwrap();

        // While the case is open nothing is ever purged, however long it waits.
        db.clock.advance(Duration::days(800));
        assert!(
            s.purge_expired_evidence(&vault, "janitor")
                .await
                .unwrap()
                .destroyed
                .is_empty()
        );

        finish_report_for(s, case).await;
        let finished = s.now();
        let kept = s.evidence_item(item.id).await.unwrap();
        assert_eq!(kept.retain_until, Some(finished + Duration::days(365)));
        let detail = s.case_detail(case).await.unwrap();
        assert_eq!(detail.case.status, CaseStatus::Reported);
        assert_eq!(detail.evidence.len(), 1);

        db.clock.advance(Duration::days(365) - Duration::seconds(1));
        assert!(
            s.purge_expired_evidence(&vault, "janitor")
                .await
                .unwrap()
                .destroyed
                .is_empty()
        );
        assert!(vault.get(item.id).is_ok());

        // A legal hold outlasts retention.
        s.set_legal_hold(
            item.id,
            true,
            "counsel",
            "law enforcement preservation request",
        )
        .await
        .unwrap();
        db.clock.advance(Duration::days(30));
        assert!(
            s.purge_expired_evidence(&vault, "janitor")
                .await
                .unwrap()
                .destroyed
                .is_empty()
        );
        s.set_legal_hold(item.id, false, "counsel", "request withdrawn")
            .await
            .unwrap();

        let purge = s.purge_expired_evidence(&vault, "janitor").await.unwrap();
        assert_eq!(purge.destroyed, vec![item.id]);
        assert!(vault.get(item.id).is_err(), "destroyed in the vault");
        assert!(
            s.evidence_item(item.id)
                .await
                .unwrap()
                .destroyed_at
                .is_some()
        );
        let err = s
            .open_evidence(&vault, item.id, "reviewer", AccessPurpose::View, "look")
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidTransition { .. }), "{err}");
        let actions: Vec<String> = s
            .audit_entries(0, 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
        for want in [
            "evidence.hold",
            "evidence.release",
            "evidence.destroy",
            "evidence.purge",
        ] {
            assert!(actions.iter().any(|a| a == want), "{want} missing");
        }
        assert!(s.verify_audit(None).await.unwrap().is_intact());
    }
);

both!(
    evidence_of_a_pending_case_is_never_purged,
    |db| async move {
        let s = &db.store;
        let vault = vault();
        let item = s
            .preserve_evidence(&vault, b"benign", "gateway", "reported content")
            .await
            .unwrap();
        // Case A (a user report) holds the item and is dismissed: its clock starts.
        let report = NewUserReport {
            reporter: "r1".to_owned(),
            tenant: None,
            response_id: None,
            reason: Category::CsamKnown,
            categories: vec![Category::CsamKnown],
            findings: Vec::new(),
            comment: None,
            comment_sha256: None,
            subject_end_user: None,
            vault_item: Some(item.id),
            content_hashes: Some(hashes(b"benign")),
            generated: false,
        };
        let a = s
            .submit_user_report(&report, None)
            .await
            .unwrap()
            .case_id
            .unwrap();
        s.decide_case(a, Verdict::Dismiss, "reviewer", "not abuse")
            .await
            .unwrap();
        assert_eq!(
            s.evidence_item(item.id).await.unwrap().retain_until,
            Some(t0() + Duration::days(30))
        );
        // Case B refers to the same file and is confirmed, not yet reported.
        let b = s
            .record_incident(&image_incident(
                "u9",
                Surface::Input,
                b"benign",
                Some(item.id),
            ))
            .await
            .unwrap()
            .case_id
            .unwrap();
        s.decide_case(b, Verdict::Confirm, "reviewer", "confirmed")
            .await
            .unwrap();
        db.clock.advance(Duration::days(31));
        assert!(
            s.purge_expired_evidence(&vault, "janitor")
                .await
                .unwrap()
                .destroyed
                .is_empty()
        );
        // Once B's report finishes, the item is kept a year from then.
        s.enqueue_report(b, "test", "lead").await.unwrap();
        let lease = s
            .claim_due_report("w", StdDuration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        s.finish_report(lease, "78", &json!({}), &Receipt::new("finish", "<ok/>"))
            .await
            .unwrap();
        assert_eq!(
            s.evidence_item(item.id).await.unwrap().retain_until,
            Some(s.now() + Duration::days(365))
        );
    }
);

both!(
    an_interrupted_purge_is_finished_by_the_next,
    |db| async move {
        let s = &db.store;
        let vault = vault();
        let item = s
            .preserve_evidence(&vault, b"benign", "gateway", "test")
            .await
            .unwrap();
        // Marked destroyed (as by a purge killed before it removed the file).
        db.exec(&format!(
            "UPDATE vault_items SET destroyed_at = 1 WHERE id = '{}'",
            item.id
        ))
        .await;
        assert!(vault.get(item.id).is_ok());
        let purge = s.purge_expired_evidence(&vault, "janitor").await.unwrap();
        assert_eq!(
            (purge.destroyed.len(), purge.swept.clone()),
            (0, vec![item.id])
        );
        assert!(vault.get(item.id).is_err());
    }
);

/// One item of a random purge scenario.
#[derive(Clone, Debug)]
struct Planned {
    /// Retention end relative to t0, in hours; `None`: no clock.
    retain_hours: Option<i64>,
    held: bool,
}

async fn purge_scenario(db: &TestDb, vault: &Vault, items: &[Planned], now_hours: i64) {
    let s = &db.store;
    let mut ids: Vec<(ItemId, Planned)> = Vec::new();
    for plan in items {
        let item = s
            .preserve_evidence(vault, b"benign bytes", "gen", "property test")
            .await
            .unwrap();
        let retain = plan.retain_hours.map_or("NULL".to_owned(), |h| {
            let at = t0() + Duration::hours(h);
            (at.unix_timestamp_nanos() / 1000).to_string()
        });
        let held = if plan.held { "TRUE" } else { "FALSE" };
        db.exec(&format!(
            "UPDATE vault_items SET retain_until = {retain}, legal_hold = {held} WHERE id = '{}'",
            item.id
        ))
        .await;
        ids.push((item.id, plan.clone()));
    }
    db.clock.set(t0() + Duration::hours(now_hours));
    let purge = s.purge_expired_evidence(vault, "janitor").await.unwrap();
    let expected: BTreeSet<ItemId> = ids
        .iter()
        .filter(|(_, p)| !p.held && p.retain_hours.is_some_and(|h| h <= now_hours))
        .map(|(id, _)| *id)
        .collect();
    let destroyed: BTreeSet<ItemId> = purge.destroyed.iter().copied().collect();
    assert_eq!(destroyed, expected, "plan {items:?} at +{now_hours}h");
    for (id, _) in &ids {
        assert_eq!(
            vault.get(*id).is_ok(),
            !expected.contains(id),
            "vault state of {id}"
        );
        assert_eq!(
            s.evidence_item(*id).await.unwrap().destroyed_at.is_some(),
            expected.contains(id)
        );
    }
}

both!(
    purge_destroys_exactly_the_expired_unheld_items,
    |db| async move {
        let strategy = (
            proptest::collection::vec(
                (proptest::option::of(-48i64..48), proptest::bool::ANY)
                    .prop_map(|(retain_hours, held)| Planned { retain_hours, held }),
                0..8,
            ),
            -24i64..72,
        );
        let mut runner = TestRunner::deterministic();
        for _ in 0..12 {
            // Each scenario starts from an empty vault and item table at t0.
            let (items, now_hours) = strategy.new_tree(&mut runner).unwrap().current();
            let vault = vault();
            db.clock.set(t0());
            purge_scenario(&db, &vault, &items, now_hours).await;
            db.exec("DELETE FROM vault_access").await;
            db.exec("DELETE FROM vault_items").await;
        }
        assert!(db.store.verify_audit(None).await.unwrap().is_intact());
    }
);
