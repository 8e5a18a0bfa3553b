//! Cases: opened automatically, grouped by subject, idempotent imports, the
//! lifecycle with who/when/why, and every change audited.

use childsafe_core::{Category, Surface};
use childsafe_store::{CaseFilter, CaseStatus, Error, FileOrigin, ItemLocation, Verdict};
use time::Duration;

use crate::{common::both, fixtures::*};

both!(
    importing_a_queue_twice_opens_one_case_per_source,
    |db| async move {
        let s = &db.store;
        let entries = vec![
            queue_entry("a1", Some("images.example.org"), b"benign one"),
            queue_entry("a2", Some("IMAGES.example.org"), b"benign two"),
            queue_entry("b1", Some("other.example.net"), b"benign three"),
            queue_entry("c1", None, b"benign four"),
        ];
        let first = s.import_queue_entries(&entries, "importer").await.unwrap();
        assert_eq!(
            (first.read, first.imported, first.already_present),
            (4, 4, 0)
        );
        assert_eq!(
            first.cases_opened.len(),
            3,
            "one case per source host, one for the shard"
        );

        let again = s.import_queue_entries(&entries, "importer").await.unwrap();
        assert_eq!((again.imported, again.already_present), (0, 4));
        assert!(again.cases_opened.is_empty());

        let cases = s.list_cases(&CaseFilter::default()).await.unwrap();
        let mut subjects: Vec<_> = cases.iter().map(|c| c.subject.clone()).collect();
        subjects.sort();
        assert_eq!(
            subjects,
            [
                "shard:shards/00001.tar",
                "source:images.example.org",
                "source:other.example.net"
            ]
        );
        let grouped = cases
            .iter()
            .find(|c| c.subject == "source:images.example.org")
            .unwrap();
        let detail = s.case_detail(grouped.id).await.unwrap();
        assert_eq!(detail.items.len(), 2);
        assert_eq!(detail.case.status, CaseStatus::New);
        assert_eq!(detail.case.categories, vec![Category::CsamKnown]);
        for item in &detail.items {
            // Training data is never annotated as AI-generated; its origin is the dataset.
            assert_eq!(item.origin, FileOrigin::TrainingData);
            assert!(!item.generative_ai);
            assert!(
                matches!(&item.location, Some(ItemLocation::Dataset(loc)) if loc.url.is_some())
            );
            assert_eq!(
                item.hashes.as_ref().unwrap().sha256,
                hashes(if item.source_ref == "a1" {
                    b"benign one"
                } else {
                    b"benign two"
                })
                .sha256
            );
        }
        let opened = detail.events.iter().filter(|e| e.kind == "opened").count();
        assert_eq!(opened, 1);
        assert!(s.verify_audit(None).await.unwrap().is_intact());
    }
);

both!(
    bad_queue_entries_are_refused_naming_the_entry,
    |db| async move {
        let s = &db.store;
        let mut newer = queue_entry("v9", None, b"x");
        newer.version = 99;
        let err = s
            .import_queue_entries(&[newer], "importer")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("queue entry v9: version: expected at most 1, got 99"),
            "{err}"
        );
        let mut bad_time = queue_entry("t1", None, b"x");
        bad_time.found_at = "yesterday".to_owned();
        let err = s
            .import_queue_entries(&[queue_entry("ok", None, b"y"), bad_time], "importer")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("queue entry t1: found_at: expected an RFC 3339 time"),
            "{err}"
        );
        // Nothing of a refused import is written.
        assert!(
            s.list_cases(&CaseFilter::default())
                .await
                .unwrap()
                .is_empty()
        );
    }
);

both!(incidents_join_the_end_users_open_case, |db| async move {
    let s = &db.store;
    // Solicitation without a report flag: recorded, no case.
    let plain = s
        .record_incident(&incident("u1", Category::CsamSolicitation, Surface::Input))
        .await
        .unwrap();
    assert_eq!(plain.case_id, None);
    // Severe categories always open a case; the user's next one joins it.
    let first = s
        .record_incident(&incident("u1", Category::Sextortion, Surface::Conversation))
        .await
        .unwrap();
    let second = s
        .record_incident(&image_incident(
            "u1",
            Surface::Output,
            b"benign image",
            None,
        ))
        .await
        .unwrap();
    let other = s
        .record_incident(&incident("u2", Category::Grooming, Surface::Input))
        .await
        .unwrap();
    assert!(first.case_id.is_some());
    assert_eq!(first.case_id, second.case_id, "one case per end user");
    assert_ne!(first.case_id, other.case_id);
    // Policy's report flag opens a case too.
    let mut flagged = incident("u3", Category::CsamSolicitation, Surface::Input);
    flagged.report = true;
    assert!(s.record_incident(&flagged).await.unwrap().case_id.is_some());

    let detail = s.case_detail(first.case_id.unwrap()).await.unwrap();
    assert_eq!(detail.case.subject, "user:acme/u1");
    assert_eq!(detail.case.end_user.as_deref(), Some("u1"));
    assert_eq!(
        detail.case.categories,
        vec![Category::CsamKnown, Category::Sextortion]
    );
    let output = detail.items.iter().find(|i| i.hashes.is_some()).unwrap();
    // Gateway output is model output: annotated as AI-generated by default.
    assert_eq!(output.origin, FileOrigin::ModelOutput);
    assert!(output.generative_ai);
    let text = detail.items.iter().find(|i| i.hashes.is_none()).unwrap();
    assert_eq!(text.origin, FileOrigin::UserInput);
    assert!(!text.generative_ai);

    let recent = s
        .incidents_since(
            "acme",
            Some("u1"),
            crate::common::t0() - Duration::hours(1),
            10,
        )
        .await
        .unwrap();
    assert_eq!(recent.len(), 3);
});

both!(lifecycle_records_who_when_and_why, |db| async move {
    let s = &db.store;
    let case = s
        .record_incident(&incident("u1", Category::CsamKnown, Surface::Input))
        .await
        .unwrap()
        .case_id
        .unwrap();

    db.clock.advance(Duration::minutes(5));
    let assigned = s
        .assign_case(case, "reviewer-a", "lead", Some("queue triage"))
        .await
        .unwrap();
    assert_eq!(assigned.status, CaseStatus::InReview);
    assert_eq!(assigned.assignee.as_deref(), Some("reviewer-a"));

    // A decision needs a reason.
    let err = s
        .decide_case(case, Verdict::Confirm, "reviewer-a", "  ")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err}");

    db.clock.advance(Duration::minutes(5));
    let decided = s
        .decide_case(case, Verdict::Confirm, "reviewer-a", "hash match confirmed")
        .await
        .unwrap();
    assert_eq!(decided.status, CaseStatus::Confirmed);
    let decision = decided.decision.unwrap();
    assert_eq!(
        (
            decision.verdict,
            decision.by.as_str(),
            decision.reason.as_str()
        ),
        (Verdict::Confirm, "reviewer-a", "hash match confirmed")
    );
    assert_eq!(decision.at, crate::common::t0() + Duration::minutes(10));

    // Decided once; closing needs a report first.
    let err = s
        .decide_case(case, Verdict::Dismiss, "reviewer-b", "changed my mind")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidTransition { .. }), "{err}");
    assert!(
        err.to_string().contains("cannot dismiss when confirmed"),
        "{err}"
    );
    assert!(matches!(
        s.close_case(case, "lead", "done").await,
        Err(Error::InvalidTransition { .. })
    ));

    // A new incident about the same user after confirmation opens a new case.
    let next = s
        .record_incident(&incident("u1", Category::CsamKnown, Surface::Input))
        .await
        .unwrap()
        .case_id
        .unwrap();
    assert_ne!(next, case);

    let dismissed = s
        .decide_case(
            next,
            Verdict::Dismiss,
            "reviewer-b",
            "false positive: benign match",
        )
        .await
        .unwrap();
    assert_eq!(dismissed.status, CaseStatus::Dismissed);
    let closed = s.close_case(next, "lead", "dismissed").await.unwrap();
    assert_eq!(closed.status, CaseStatus::Closed);
    assert!(matches!(
        s.assign_case(next, "x", "lead", None).await,
        Err(Error::InvalidTransition { .. })
    ));

    let events = s.case_detail(case).await.unwrap().events;
    let kinds: Vec<_> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["opened", "item_added", "assigned", "confirmed"]);
    let confirmed = events.last().unwrap();
    assert_eq!(
        (confirmed.actor.as_str(), confirmed.reason.as_deref()),
        ("reviewer-a", Some("hash match confirmed"))
    );
    assert_eq!(
        (confirmed.from_status, confirmed.to_status),
        (Some(CaseStatus::InReview), Some(CaseStatus::Confirmed))
    );

    // Every change is in the audit log.
    let actions: Vec<String> = s
        .audit_entries(0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    for want in [
        "case.open",
        "case.item_add",
        "case.assign",
        "case.confirm",
        "case.dismiss",
        "case.close",
    ] {
        assert!(
            actions.iter().any(|a| a == want),
            "{want} missing from {actions:?}"
        );
    }
    let filtered = s
        .list_cases(&CaseFilter {
            status: Some(CaseStatus::Confirmed),
            ..CaseFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        filtered.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![case]
    );
});

both!(
    reviewers_can_correct_the_generative_ai_flag_until_reported,
    |db| async move {
        let s = &db.store;
        let case = s
            .record_incident(&image_incident("u1", Surface::Input, b"benign", None))
            .await
            .unwrap()
            .case_id
            .unwrap();
        let item = s.case_detail(case).await.unwrap().items.remove(0);
        assert!(!item.generative_ai);
        let changed = s
            .set_item_generative_ai(item.id, true, "reviewer-a", "AI-altered upload")
            .await
            .unwrap();
        assert!(changed.generative_ai);
        assert!(s.case_detail(case).await.unwrap().items[0].generative_ai);
    }
);
