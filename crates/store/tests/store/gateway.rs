//! What the gateway keeps in the store: strikes with decay-friendly times,
//! enforcement actions and appeals, rate-limited user reports, rollout state
//! shared by replicas, and hashed admin tokens; incidents keep the hash of
//! their text and reports their categories, findings and comment hash.

use childsafe_core::{Category, Finding, FindingSource, Sha256, Span, SpanRole, Strike, Surface};
use childsafe_store::{
    ActionKind, AppealStatus, Error, NewEnforcementAction, NewStrike, NewUserReport, RolloutStatus,
    StageCounts,
};
use serde_json::json;
use time::Duration;

use crate::common::{both, t0};

fn strike(user: Option<&str>, kind: Strike) -> NewStrike {
    NewStrike {
        tenant: "acme".to_owned(),
        end_user: user.map(str::to_owned),
        kind,
        category: Some(Category::CsamSolicitation),
        incident_id: None,
        reason: None,
    }
}

both!(strike_ledgers_per_user_and_tenant, |db| async move {
    let s = &db.store;
    s.record_strike(&strike(Some("u1"), Strike::Warn), "gateway")
        .await
        .unwrap();
    db.clock.advance(Duration::days(10));
    s.record_strike(&strike(Some("u1"), Strike::Strike), "gateway")
        .await
        .unwrap();
    s.record_strike(&strike(Some("u2"), Strike::Strike), "gateway")
        .await
        .unwrap();
    s.record_strike(&strike(None, Strike::Warn), "gateway")
        .await
        .unwrap();

    let all = s
        .strikes_for_user("acme", "u1", t0() - Duration::days(1))
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|r| r.kind).collect::<Vec<_>>(),
        [Strike::Warn, Strike::Strike]
    );
    assert_eq!(all[0].at, t0());
    // A decay window of a week drops the older one.
    let recent = s
        .strikes_for_user("acme", "u1", s.now() - Duration::days(7))
        .await
        .unwrap();
    assert_eq!(recent.len(), 1);
    assert_eq!(s.strikes_for_tenant("acme", t0()).await.unwrap().len(), 4);
    assert!(
        s.strikes_for_tenant("other", t0())
            .await
            .unwrap()
            .is_empty()
    );
});

both!(actions_appeals_and_lifting, |db| async move {
    let s = &db.store;
    let suspend = NewEnforcementAction {
        tenant: "acme".to_owned(),
        end_user: Some("u1".to_owned()),
        kind: ActionKind::Suspend,
        until: Some(t0() + Duration::hours(24)),
        reason: "second strike".to_owned(),
    };
    let action = s.impose_action(&suspend, "gateway").await.unwrap();
    assert_eq!(s.active_actions("acme", Some("u1")).await.unwrap().len(), 1);
    assert!(
        s.active_actions("acme", Some("u2"))
            .await
            .unwrap()
            .is_empty()
    );
    // A suspension ends by itself.
    db.clock.advance(Duration::hours(25));
    assert!(
        s.active_actions("acme", Some("u1"))
            .await
            .unwrap()
            .is_empty()
    );

    let ban = s
        .impose_action(
            &NewEnforcementAction {
                kind: ActionKind::Ban,
                until: None,
                reason: "known hash".to_owned(),
                ..suspend.clone()
            },
            "gateway",
        )
        .await
        .unwrap();
    // A tenant-wide action applies to every user of the tenant.
    let tenant_wide = NewEnforcementAction {
        end_user: None,
        ..suspend.clone()
    };
    let err = s.impose_action(&tenant_wide, "admin").await.unwrap_err();
    assert!(
        matches!(err, Error::Invalid { .. }),
        "until in the past: {err}"
    );

    // Appeals: only against one's own action; granting lifts it.
    let err = s
        .file_appeal("acme", "u2", Some(ban.id), Some("not me"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err}");
    let appeal = s
        .file_appeal(
            "acme",
            "u1",
            Some(ban.id),
            Some("I was asking about safety"),
        )
        .await
        .unwrap();
    assert_eq!(appeal.status, AppealStatus::Open);
    assert_eq!(
        s.list_appeals(Some(AppealStatus::Open), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let granted = s
        .decide_appeal(appeal.id, true, "admin", "help-seeking misread")
        .await
        .unwrap();
    assert_eq!(granted.status, AppealStatus::Granted);
    assert!(
        s.active_actions("acme", Some("u1"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        s.decide_appeal(appeal.id, false, "admin", "again").await,
        Err(Error::InvalidTransition { .. })
    ));
    assert!(matches!(
        s.lift_action(ban.id, "admin", "again").await,
        Err(Error::InvalidTransition { .. })
    ));
    let _ = action;

    let actions: Vec<String> = s
        .audit_entries(0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    for want in [
        "enforcement.suspend",
        "enforcement.ban",
        "appeal.file",
        "appeal.granted",
        "enforcement.lift",
    ] {
        assert!(
            actions.iter().any(|a| a == want),
            "{want} missing from {actions:?}"
        );
    }
});

fn user_report(reporter: &str, user: Option<&str>) -> NewUserReport {
    NewUserReport {
        reporter: reporter.to_owned(),
        tenant: Some("acme".to_owned()),
        response_id: Some("resp-1".to_owned()),
        reason: Category::CsamSolicitation,
        categories: vec![Category::CsamSolicitation],
        findings: Vec::new(),
        comment: Some("flagged response".to_owned()),
        comment_sha256: None,
        subject_end_user: user.map(str::to_owned),
        vault_item: None,
        content_hashes: None,
        generated: true,
    }
}

both!(
    user_reports_become_cases_and_are_rate_limited,
    |db| async move {
        let s = &db.store;
        let limit = Some((3, Duration::hours(1)));
        let first = s
            .submit_user_report(&user_report("r1", Some("u1")), limit)
            .await
            .unwrap();
        let second = s
            .submit_user_report(&user_report("r1", Some("u1")), limit)
            .await
            .unwrap();
        assert_eq!(
            first.case_id, second.case_id,
            "reports about one user share a case"
        );
        let anonymous = s
            .submit_user_report(&user_report("r1", None), limit)
            .await
            .unwrap();
        assert_ne!(anonymous.case_id, first.case_id);
        let err = s
            .submit_user_report(&user_report("r1", Some("u1")), limit)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::RateLimited {
                    count: 3,
                    limit: 3,
                    ..
                }
            ),
            "{err}"
        );
        // Another reporter is not limited; the window slides.
        s.submit_user_report(&user_report("r2", Some("u1")), limit)
            .await
            .unwrap();
        db.clock.advance(Duration::minutes(61));
        s.submit_user_report(&user_report("r1", Some("u1")), limit)
            .await
            .unwrap();
        assert_eq!(s.count_user_reports_since("r1", t0()).await.unwrap(), 4);

        let detail = s.case_detail(first.case_id.unwrap()).await.unwrap();
        // A reported generation is annotated as AI-generated.
        assert!(detail.items.iter().all(|i| i.generative_ai));
        assert_eq!(
            s.user_report(first.id).await.unwrap().comment.as_deref(),
            Some("flagged response")
        );
    }
);

both!(
    concurrent_reports_cannot_slip_past_the_limit,
    |db| async move {
        let replica = db.reopen().await;
        let mut tasks = Vec::new();
        for i in 0..10 {
            let store = if i % 2 == 0 {
                db.store.clone()
            } else {
                replica.clone()
            };
            tasks.push(tokio::spawn(async move {
                store
                    .submit_user_report(
                        &user_report("flood", Some("u1")),
                        Some((4, Duration::hours(1))),
                    )
                    .await
                    .is_ok()
            }));
        }
        let mut accepted = 0;
        for task in tasks {
            accepted += usize::from(task.await.unwrap());
        }
        assert_eq!(accepted, 4);
        replica.close().await;
    }
);

both!(rollout_state_is_compare_and_set, |db| async move {
    let s = &db.store;
    assert!(s.rollout_state("model-v2").await.unwrap().is_none());
    let created = s
        .set_rollout_state(
            "model-v2",
            None,
            0,
            RolloutStatus::Active,
            &json!({}),
            "admin",
            "start",
        )
        .await
        .unwrap();
    assert_eq!((created.stage, created.version), (0, 1));
    let promoted = s
        .set_rollout_state(
            "model-v2",
            Some(1),
            1,
            RolloutStatus::Active,
            &json!({}),
            "admin",
            "promote",
        )
        .await
        .unwrap();
    // Two replicas saw a threshold crossed at version 2: only one halts it.
    let replica = db.reopen().await;
    let a = s
        .set_rollout_state(
            "model-v2",
            Some(promoted.version),
            1,
            RolloutStatus::Halted,
            &json!({"rate": 2.5}),
            "gateway",
            "abuse rate 2.5/1000",
        )
        .await;
    let b = replica
        .set_rollout_state(
            "model-v2",
            Some(promoted.version),
            1,
            RolloutStatus::Halted,
            &json!({"rate": 2.6}),
            "gateway",
            "abuse rate 2.6/1000",
        )
        .await;
    assert!(a.is_ok());
    assert!(
        matches!(
            b,
            Err(Error::Conflict {
                expected: 2,
                found: 3,
                ..
            })
        ),
        "{b:?}"
    );
    let state = s.rollout_state("model-v2").await.unwrap().unwrap();
    assert_eq!(
        (state.status, state.detail.clone()),
        (RolloutStatus::Halted, json!({"rate": 2.5}))
    );
    assert!(matches!(
        s.set_rollout_state(
            "model-v2",
            None,
            0,
            RolloutStatus::Active,
            &json!({}),
            "admin",
            "again"
        )
        .await,
        Err(Error::Conflict { .. })
    ));
    let transitions = s.rollout_transitions("model-v2").await.unwrap();
    assert_eq!(transitions.len(), 3);
    assert_eq!(
        (transitions[2].from_status, transitions[2].to_status),
        (Some(RolloutStatus::Active), RolloutStatus::Halted)
    );
    replica.close().await;
});

both!(
    admin_tokens_are_stored_hashed_and_checked,
    |db| async move {
        let s = &db.store;
        let issued = s.issue_admin_token("oncall", "bootstrap").await.unwrap();
        assert!(issued.secret.starts_with("csat_"));
        assert!(!format!("{issued:?}").contains(&issued.secret));
        assert_eq!(
            s.verify_admin_token(&issued.secret)
                .await
                .unwrap()
                .unwrap()
                .name,
            "oncall"
        );
        // The secret is not in the database, only its hash.
        let secret_part = issued.secret.rsplit('_').next().unwrap();
        let stored = db
            .text(&format!(
                "SELECT token_hash FROM admin_tokens WHERE id = '{}'",
                issued.token.id
            ))
            .await;
        assert_ne!(stored, secret_part);
        assert_eq!(stored.len(), 64);
        // Wrong, malformed and truncated tokens are refused.
        let mut wrong = issued.secret.clone();
        // Change the last digit (to another one: a secret may end in 0).
        let last = wrong.pop().unwrap();
        wrong.push(if last == '0' { '1' } else { '0' });
        for bad in [
            wrong.as_str(),
            "",
            "csat_",
            "Bearer x",
            &issued.secret[..20],
        ] {
            assert!(
                s.verify_admin_token(bad).await.unwrap().is_none(),
                "{bad:?}"
            );
        }
        s.revoke_admin_token(&issued.token.id, "admin", "rotated")
            .await
            .unwrap();
        assert!(
            s.verify_admin_token(&issued.secret)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(s.list_admin_tokens().await.unwrap().len(), 1);
    }
);

both!(rollout_counts_add_up_across_replicas, |db| async move {
    let other = db.reopen().await;
    let counts = |requests, incidents: &[(Category, u64)]| StageCounts {
        requests,
        incidents: incidents.iter().copied().collect(),
    };
    db.store
        .add_rollout_counts(
            "r",
            "canary",
            100,
            &counts(10, &[(Category::CsamSolicitation, 1)]),
        )
        .await
        .unwrap();
    other
        .add_rollout_counts(
            "r",
            "canary",
            100,
            &counts(
                5,
                &[(Category::CsamSolicitation, 2), (Category::Grooming, 1)],
            ),
        )
        .await
        .unwrap();
    db.store
        .add_rollout_counts("r", "canary", 90, &counts(1000, &[]))
        .await
        .unwrap();
    db.store
        .add_rollout_counts("r", "half", 100, &counts(7, &[]))
        .await
        .unwrap();
    let seen = other.rollout_counts("r", "canary", 95).await.unwrap();
    assert_eq!(
        seen,
        counts(
            15,
            &[(Category::CsamSolicitation, 3), (Category::Grooming, 1)]
        )
    );
    assert_eq!(
        db.store
            .rollout_counts("r", "canary", 0)
            .await
            .unwrap()
            .requests,
        1015
    );
    assert_eq!(
        db.store.rollout_counts("r", "none", 0).await.unwrap(),
        StageCounts::default()
    );
});

both!(account_risk_is_replaced_and_shared, |db| async move {
    assert_eq!(db.store.account_risk("acme", "u1").await.unwrap(), None);
    db.store
        .set_account_risk("acme", "u1", &json!({"score": 0.2}))
        .await
        .unwrap();
    db.store
        .set_account_risk("acme", "u1", &json!({"score": 0.6}))
        .await
        .unwrap();
    let other = db.reopen().await;
    assert_eq!(
        other.account_risk("acme", "u1").await.unwrap(),
        Some(json!({"score": 0.6}))
    );
    assert_eq!(other.account_risk("acme", "u2").await.unwrap(), None);
    assert!(matches!(
        db.store.set_account_risk("", "u1", &json!({})).await,
        Err(Error::Invalid { .. })
    ));
});

both!(
    gateway_lookups_by_request_and_across_tenants,
    |db| async move {
        let s = &db.store;
        let recorded = s
            .record_incident(&crate::fixtures::incident(
                "u1",
                Category::Sextortion,
                childsafe_core::Surface::Input,
            ))
            .await
            .unwrap();
        let found = s.incident_for_request("req-u1").await.unwrap().unwrap();
        assert_eq!(found.id, recorded.id);
        assert!(found.case_id.is_some(), "sextortion opens a case");
        assert_eq!(s.incident_for_request("req-none").await.unwrap(), None);
        assert_eq!(s.count_open_cases().await.unwrap(), 1);

        let action = |tenant: &str, user: Option<&str>| NewEnforcementAction {
            tenant: tenant.to_owned(),
            end_user: user.map(str::to_owned),
            kind: ActionKind::Suspend,
            until: Some(t0() + Duration::hours(1)),
            reason: "test".to_owned(),
        };
        let a = s
            .impose_action(&action("acme", Some("u1")), "gateway")
            .await
            .unwrap();
        s.impose_action(&action("beta", None), "gateway")
            .await
            .unwrap();
        assert_eq!(s.all_active_actions().await.unwrap().len(), 2);
        assert_eq!(s.last_lift("acme", Some("u1")).await.unwrap(), None);
        db.clock.advance(Duration::minutes(1));
        s.lift_action(a.id, "admin", "appeal").await.unwrap();
        assert_eq!(
            s.last_lift("acme", Some("u1")).await.unwrap(),
            Some(t0() + Duration::minutes(1))
        );
        assert_eq!(s.last_lift("acme", None).await.unwrap(), None);
        db.clock.advance(Duration::hours(1));
        assert!(s.all_active_actions().await.unwrap().is_empty(), "expired");
    }
);

fn sha256(text: &str) -> Sha256 {
    use sha2::Digest as _;
    Sha256(sha2::Sha256::digest(text.as_bytes()).into())
}

fn phrase_finding(category: Category, role: SpanRole, start: usize, end: usize) -> Finding {
    let mut finding = Finding::new(category, 0.9, FindingSource::detector("text.phrase"));
    finding.spans = vec![Span {
        start,
        end,
        role,
        turn: None,
    }];
    finding
}

both!(incidents_keep_the_hash_of_their_text, |db| async move {
    let s = &db.store;
    let text_sha256 = sha256("test phrase one");
    let mut incident = crate::fixtures::incident("u1", Category::CsamSolicitation, Surface::Input);
    incident.text_sha256 = Some(text_sha256);
    let recorded = s.record_incident(&incident).await.unwrap();
    assert_eq!(recorded.text_sha256, Some(text_sha256));
    // Every read gives the same row back.
    assert_eq!(s.incident(recorded.id).await.unwrap(), recorded);
    assert_eq!(
        s.incident_for_request("req-u1").await.unwrap(),
        Some(recorded.clone())
    );
    assert_eq!(
        s.incidents_since("acme", Some("u1"), t0(), 10)
            .await
            .unwrap(),
        std::slice::from_ref(&recorded)
    );
    // Stored as lowercase hex, as everywhere else.
    let stored = db
        .text(&format!(
            "SELECT text_sha256 FROM incidents WHERE id = {}",
            recorded.id
        ))
        .await;
    assert_eq!(stored, text_sha256.to_string());

    // Recorded without a hash (no text was checked): none read back.
    let other = s
        .record_incident(&crate::fixtures::incident(
            "u2",
            Category::Grooming,
            Surface::Conversation,
        ))
        .await
        .unwrap();
    assert_eq!(s.incident(other.id).await.unwrap().text_sha256, None);
});

both!(
    reports_keep_categories_findings_and_the_comment_hash,
    |db| async move {
        let s = &db.store;
        let findings = vec![
            phrase_finding(Category::CsamSolicitation, SpanRole::Intent, 0, 8),
            phrase_finding(Category::MinorIndicator, SpanRole::MinorIndicator, 9, 14),
        ];
        // Filed under "other" by the reporter, so the gateway filed it as
        // suspected: the reason is not among the categories found.
        let report = NewUserReport {
            reason: Category::CsamSuspected,
            categories: vec![Category::CsamSolicitation, Category::MinorIndicator],
            findings: findings.clone(),
            comment: None,
            comment_sha256: Some(sha256("test comment")),
            ..user_report("r1", Some("u1"))
        };
        let recorded = s.submit_user_report(&report, None).await.unwrap();
        assert_eq!(
            recorded.categories,
            [Category::CsamSolicitation, Category::MinorIndicator]
        );
        assert_eq!(recorded.findings, findings);
        assert_eq!(recorded.comment, None);
        assert_eq!(recorded.comment_sha256, Some(sha256("test comment")));
        assert_eq!(s.user_report(recorded.id).await.unwrap(), recorded);

        // The case item carries the findings, and the reason with the categories.
        let detail = s.case_detail(recorded.case_id.unwrap()).await.unwrap();
        let item = detail
            .items
            .iter()
            .find(|it| it.key == format!("report:{}", recorded.id))
            .unwrap();
        assert_eq!(
            item.categories,
            [
                Category::CsamSuspected,
                Category::CsamSolicitation,
                Category::MinorIndicator
            ]
        );
        assert_eq!(item.findings, findings);

        // A kept comment has no hash; nothing found, nothing stored.
        let plain = s
            .submit_user_report(
                &NewUserReport {
                    categories: Vec::new(),
                    ..user_report("r2", None)
                },
                None,
            )
            .await
            .unwrap();
        let plain = s.user_report(plain.id).await.unwrap();
        assert!(plain.categories.is_empty());
        assert!(plain.findings.is_empty());
        assert_eq!(plain.comment.as_deref(), Some("flagged response"));
        assert_eq!(plain.comment_sha256, None);
    }
);

both!(
    rows_written_before_schema_3_read_back_with_defaults,
    |db| async move {
        let s = &db.store;
        // Rows with schema 2's columns only, as an older gateway wrote them.
        db.exec(
            "INSERT INTO incidents (at, tenant, end_user, surface, action, categories, findings, content_hashes, request_id, stage)
             VALUES (0, 'acme', 'u1', 'input', 'block', '[\"csam_solicitation\"]', '[]', '[]', 'req-old', NULL)",
        )
        .await;
        db.exec(
            "INSERT INTO user_reports (at, reporter, tenant, response_id, reason, comment, subject_end_user, vault_item, content_hashes)
             VALUES (0, 'r-old', 'acme', NULL, 'grooming', NULL, NULL, NULL, 'null')",
        )
        .await;
        let incident = s.incident_for_request("req-old").await.unwrap().unwrap();
        assert_eq!(incident.categories, [Category::CsamSolicitation]);
        assert_eq!(incident.text_sha256, None);
        let id = db
            .scalar("SELECT id FROM user_reports WHERE reporter = 'r-old'")
            .await;
        let report = s.user_report(id).await.unwrap();
        assert_eq!(report.reason, Category::Grooming);
        assert!(report.categories.is_empty());
        assert!(report.findings.is_empty());
        assert_eq!(report.comment_sha256, None);
    }
);
