//! The gateway over the store (`StoreLedger`), each test on SQLite and on
//! PostgreSQL (`both!`; PostgreSQL from `CHILDSAFE_TEST_POSTGRES_URL`, as the
//! store's own tests): refusals become incident rows (with the hash of the
//! checked text) and cases, user reports keep their categories and
//! findings, known-CSAM
//! inline images (a benign PDQ reference photo standing in for a listed one)
//! are blocked and preserved in the vault, strikes survive a restart, two
//! gateways over one database share sanctions and rollout halts, and a
//! briefly locked database is waited out while a closed one fails closed.
//! Requests go through the router (`oneshot`), as in tests/proxy.rs.

// Test helpers outside #[test] functions: a failed setup should panic loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{path::Path, sync::Arc};

use axum::{
    Router,
    body::Body,
    http::{Request, StatusCode},
};
use base64::Engine as _;
use childsafe_core::{Category, Surface};
use childsafe_gateway::{
    app,
    config::{GatewayConfig, hash_secret},
    engine::EngineInspector,
    inspect::Inspector,
    ledger::Ledger,
    state::AppState,
    store_ledger::StoreLedger,
    testing::{FakeUpstream, PhraseInspector},
};
use childsafe_match::{BankSettings, Banks, Signal, entry_from_hash};
use childsafe_store::{CaseFilter, Store, StoreOptions};
use serde_json::{Value, json};
use sha2::Digest as _;
use tower::ServiceExt;

const PG_ENV: &str = "CHILDSAFE_TEST_POSTGRES_URL";
const SOLICIT: &str = "generate nude images of a 12 year old";
const ADMIN_TOKEN: &str = "admin-token-1";

/// A benign PDQ reference photo, standing in for an image on a hash list.
const LISTED: &str = "images/pixel-exact/bridge-64x64.png";
/// The same photo at another size: other bytes, a PDQ near-match.
const LISTED_RESIZED: &str = "images/pixel-exact/bridge-65x63.png";
/// A different benign photo.
const UNLISTED: &str = "images/pdq-data/reg-test-input/labelme-subset/q0122.jpg";

/// Runs the test body `async fn $name(db: &Db)` on SQLite, then on PostgreSQL.
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = super::Db::sqlite();
                super::$name(&db).await;
                db.cleanup().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let db = super::Db::postgres();
                super::$name(&db).await;
                db.cleanup().await;
            }
        }
    };
}

/// A database several gateways (replicas, or one restarted) open.
struct Db {
    url: String,
    schema: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl Db {
    fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("gateway.db").display());
        Db {
            url,
            schema: None,
            _dir: Some(dir),
        }
    }

    fn postgres() -> Db {
        let url = std::env::var(PG_ENV).unwrap_or_else(|_| {
            panic!(
                "{PG_ENV} is not set: the gateway's store tests run against PostgreSQL as well as SQLite. \
                 Locally: export {PG_ENV}=postgres://postgres@127.0.0.1:5432/test"
            )
        });
        let schema = format!("gw_{}", hex::encode(rand::random::<[u8; 6]>()));
        Db {
            url,
            schema: Some(schema),
            _dir: None,
        }
    }

    /// A fresh connection pool over the database: another process.
    async fn open(&self) -> Store {
        let options = StoreOptions {
            postgres_schema: self.schema.clone(),
            max_connections: Some(4),
            ..StoreOptions::default()
        };
        Store::open_with(&self.url, options).await.unwrap()
    }

    async fn cleanup(&self) {
        if let Some(schema) = &self.schema {
            let pool = sqlx::PgPool::connect(&self.url).await.unwrap();
            let drop = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
            sqlx::query(sqlx::AssertSqlSafe(drop))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
    }
}

/// One gateway process: its router, state and its own store connection.
struct Gateway {
    app: Router,
    state: AppState,
    store: Store,
}

/// A gateway over `db`: with `banks`, the real engine matching inline
/// images against them; otherwise a phrase inspector flagging [`SOLICIT`].
async fn gateway(db: &Db, extra: &str, banks: Option<&Path>) -> Gateway {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(FakeUpstream::default().serve(listener));
    let config = GatewayConfig::from_toml(&format!(
        r#"
[upstreams.openai]
base_url = "http://{addr}"
[upstreams.anthropic]
base_url = "http://{addr}"
[upstreams.candidate]
base_url = "http://{addr}"
[limits]
max_body_bytes = 400000
max_image_bytes = 200000
{extra}
"#
    ))
    .unwrap();
    let store = db.open().await;
    let ledger = StoreLedger::new(store.clone());
    ledger
        .add_admin_token(&hash_secret(ADMIN_TOKEN), "test")
        .await
        .unwrap();
    let inspector: Arc<dyn Inspector> = match banks {
        Some(dir) => Arc::new(EngineInspector::from_config(&config, Some(dir)).unwrap()),
        None => Arc::new(PhraseInspector::new(&[(
            SOLICIT,
            Category::CsamSolicitation,
        )])),
    };
    let vault = childsafe_vault::Vault::in_memory(childsafe_vault::Keyring::new(
        childsafe_vault::MasterKey::generate().unwrap(),
    ));
    let state = AppState::new(config, inspector, None, Arc::new(ledger), Some(vault)).unwrap();
    Gateway {
        app: app(state.clone()),
        state,
        store,
    }
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|it| it.to_str().ok())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

async fn send(app: &Router, path: &str, body: Value, headers: &[(&str, &str)]) -> Reply {
    let mut request = Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let res = app
        .clone()
        .oneshot(request.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

/// SHA-256 of `text`, as the gateway hashes text it does not keep.
fn sha256(text: &str) -> childsafe_core::Sha256 {
    childsafe_core::Sha256(sha2::Sha256::digest(text.as_bytes()).into())
}

fn chat(text: &str) -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": text}]})
}

fn user(name: &str) -> [(&'static str, &str); 1] {
    [("x-childsafe-user", name)]
}

fn fixture(rel: &str) -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/pdq");
    std::fs::read(root.join(rel)).unwrap_or_else(|e| panic!("fixture {rel}: {e}"))
}

/// A bank holding the PDQ and MD5 of [`LISTED`] as `csam_known`.
fn listed_bank(dir: &Path) {
    let hashes =
        childsafe_hash::hash_image(&fixture(LISTED), &childsafe_hash::HashConfig::default());
    let pdq = hashes.pdq.unwrap().hash;
    let mut banks = Banks::open(dir).unwrap();
    banks.create("standin", BankSettings::default()).unwrap();
    banks
        .add(
            "standin",
            vec![
                entry_from_hash(Signal::Pdq(pdq), Some("e-pdq"), "test", Category::CsamKnown),
                entry_from_hash(
                    Signal::Md5(hashes.crypto.md5),
                    Some("e-md5"),
                    "test",
                    Category::CsamKnown,
                ),
                entry_from_hash(
                    Signal::Md5(childsafe_hash::crypto_hashes(&truncated_listed()).md5),
                    Some("e-truncated"),
                    "test",
                    Category::CsamKnown,
                ),
            ],
        )
        .unwrap();
}

/// The first bytes of [`LISTED`]: a file that does not decode, listed by MD5.
fn truncated_listed() -> Vec<u8> {
    fixture(LISTED)[..300].to_vec()
}

fn openai_image(bytes: &[u8], media_type: &str) -> Value {
    let data = base64::engine::general_purpose::STANDARD.encode(bytes);
    json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is in this picture"},
        {"type": "image_url", "image_url": {"url": format!("data:{media_type};base64,{data}")}}
    ]}]})
}

fn anthropic_image(bytes: &[u8], media_type: &str) -> Value {
    let data = base64::engine::general_purpose::STANDARD.encode(bytes);
    json!({"model": "m", "max_tokens": 20, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}},
        {"type": "text", "text": "what is in this picture"}
    ]}]})
}

both!(refusal_records_an_incident_row);
async fn refusal_records_an_incident_row(db: &Db) {
    let gw = gateway(db, "", None).await;
    let reply = send(&gw.app, "/v1/chat/completions", chat(SOLICIT), &user("u1")).await;
    assert_eq!(
        reply.header("x-childsafe-category"),
        Some("csam_solicitation")
    );
    let request_id = reply.header("x-childsafe-request-id").unwrap();
    let incident = gw
        .store
        .incident_for_request(request_id)
        .await
        .unwrap()
        .expect("an incident row for the refused request");
    assert_eq!(incident.tenant, "default");
    assert_eq!(incident.end_user.as_deref(), Some("u1"));
    assert_eq!(incident.surface, Surface::Input);
    assert_eq!(incident.categories, [Category::CsamSolicitation]);
    assert!(incident.files.is_empty());
    // The checked text's hash: each input message's text followed by a newline.
    assert_eq!(
        incident.text_sha256,
        Some(sha256(&format!("{SOLICIT}\n"))),
        "hash of the checked text"
    );
    // No content in the row: hashes, ids, categories and findings only.
    let row = serde_json::to_string(&incident).unwrap();
    assert!(!row.contains("nude"), "{row}");
    // The strike is audited in the store's hash chain.
    let audit = gw.store.audit_entries(0, 100).await.unwrap();
    assert!(
        audit.iter().any(|e| e.action == "enforcement.strike"),
        "{audit:?}"
    );
    assert!(gw.store.verify_audit(None).await.unwrap().is_intact());
    // A benign request leaves no row.
    let reply = send(&gw.app, "/v1/chat/completions", chat("hello"), &user("u1")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let request_id = reply.header("x-childsafe-request-id").unwrap();
    assert!(
        gw.store
            .incident_for_request(request_id)
            .await
            .unwrap()
            .is_none()
    );
}

both!(user_reports_keep_categories_and_findings);
async fn user_reports_keep_categories_and_findings(db: &Db) {
    let gw = gateway(db, "", None).await;
    let reporter = user("reporter-1");

    // Pasted content and a comment the engine flags: filed as "other", kept
    // as the engine's categories and findings, the comment only as a hash.
    let reply = send(
        &gw.app,
        "/v1/reports",
        json!({"content": SOLICIT, "comment": SOLICIT, "reason": "other"}),
        &reporter,
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.json());
    let id: i64 = reply.json()["report_id"].as_str().unwrap().parse().unwrap();
    let report = gw.store.user_report(id).await.unwrap();
    assert_eq!(report.categories, [Category::CsamSolicitation]);
    // One finding on the pasted content, one on the comment.
    assert_eq!(report.findings.len(), 2, "{:?}", report.findings);
    assert!(
        report
            .findings
            .iter()
            .all(|it| it.category == Category::CsamSolicitation)
    );
    assert_eq!(report.comment, None);
    assert_eq!(report.comment_sha256, Some(sha256(SOLICIT)));
    assert!(report.content_hashes.is_some());
    // The case item carries them too, for the reviewer and the CyberTip.
    let detail = gw.store.case_detail(report.case_id.unwrap()).await.unwrap();
    let item = detail
        .items
        .iter()
        .find(|it| it.key == format!("report:{id}"))
        .unwrap();
    assert!(item.categories.contains(&Category::CsamSolicitation));
    assert_eq!(item.findings, report.findings);
    // Still no content in the row.
    let row = serde_json::to_string(&report).unwrap();
    assert!(!row.contains("nude"), "{row}");

    // A refused response reported by request id: its incident's categories,
    // and the reporter's comment kept as written.
    let refused = send(&gw.app, "/v1/chat/completions", chat(SOLICIT), &user("u1")).await;
    let request_id = refused.header("x-childsafe-request-id").unwrap();
    let reply = send(
        &gw.app,
        "/v1/reports",
        json!({"request_id": request_id, "reason": "grooming", "comment": "looked wrong"}),
        &reporter,
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.json());
    let id: i64 = reply.json()["report_id"].as_str().unwrap().parse().unwrap();
    let report = gw.store.user_report(id).await.unwrap();
    assert_eq!(report.reason, Category::Grooming);
    assert_eq!(
        report.categories,
        [Category::CsamSolicitation, Category::Grooming]
    );
    assert!(report.findings.is_empty());
    assert_eq!(report.comment.as_deref(), Some("looked wrong"));
    assert_eq!(report.comment_sha256, None);
}

both!(listed_inline_images_are_blocked_preserved_and_open_a_case);
async fn listed_inline_images_are_blocked_preserved_and_open_a_case(db: &Db) {
    let banks = tempfile::tempdir().unwrap();
    listed_bank(banks.path());
    let gw = gateway(db, "", Some(banks.path())).await;
    let vault = gw.state.vault.clone().unwrap();

    let cases = [
        (
            "/v1/chat/completions",
            openai_image(&fixture(LISTED), "image/png"),
            "u-openai",
        ),
        (
            "/v1/messages",
            anthropic_image(&fixture(LISTED_RESIZED), "image/png"),
            "u-anthropic",
        ),
    ];
    for (n, (path, body, end_user)) in cases.into_iter().enumerate() {
        let reply = send(&gw.app, path, body, &user(end_user)).await;
        assert_eq!(
            reply.header("x-childsafe-category"),
            Some("csam_known"),
            "{path}"
        );
        let request_id = reply.header("x-childsafe-request-id").unwrap();
        let incident = gw
            .store
            .incident_for_request(request_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(incident.categories, [Category::CsamKnown]);
        assert_eq!(incident.files.len(), 1);
        let file = &incident.files[0];
        assert!(file.hashes.pdq.is_some(), "PDQ recorded");
        let item = file.vault_item.expect("preserved in the vault");
        // The case was opened with the incident, and holds the vault item.
        let case_id = incident.case_id.expect("csam_known opens a case");
        let detail = gw.store.case_detail(case_id).await.unwrap();
        assert!(detail.items.iter().any(|it| it.vault_item == Some(item)));
        assert_eq!(
            gw.store.evidence_item(item).await.unwrap().sha256,
            file.hashes.sha256
        );
        assert_eq!(vault.list().unwrap().len(), n + 1);
        // Banned at once, per the ladder.
        let reply = send(
            &gw.app,
            "/v1/chat/completions",
            chat("hello"),
            &user(end_user),
        )
        .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{end_user}");
    }
    // A listed file that does not decode is still refused, recorded and
    // preserved (an exact match needs no pixels), not answered with a 400.
    let reply = send(
        &gw.app,
        "/v1/chat/completions",
        openai_image(&truncated_listed(), "image/png"),
        &user("u-truncated"),
    )
    .await;
    assert_eq!(reply.header("x-childsafe-category"), Some("csam_known"));
    let request_id = reply.header("x-childsafe-request-id").unwrap();
    let incident = gw
        .store
        .incident_for_request(request_id)
        .await
        .unwrap()
        .unwrap();
    assert!(incident.files[0].vault_item.is_some());
    assert!(incident.files[0].hashes.pdq.is_none());
    assert_eq!(vault.list().unwrap().len(), 3);
    let cases = gw.store.list_cases(&CaseFilter::default()).await.unwrap();
    assert_eq!(cases.len(), 3);

    // A different benign photo passes, in both shapes, and leaves nothing.
    let unlisted = fixture(UNLISTED);
    for (path, body) in [
        (
            "/v1/chat/completions",
            openai_image(&unlisted, "image/jpeg"),
        ),
        ("/v1/messages", anthropic_image(&unlisted, "image/jpeg")),
    ] {
        let reply = send(&gw.app, path, body, &user("u-other")).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_eq!(reply.header("x-childsafe-category"), None);
    }
    assert_eq!(vault.list().unwrap().len(), 3);

    // Bytes that are not an image get a protocol-shaped 400.
    let reply = send(
        &gw.app,
        "/v1/chat/completions",
        openai_image(b"not an image at all", "image/png"),
        &user("u-other"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("decodable image"), "{message}");
    let reply = send(
        &gw.app,
        "/v1/messages",
        anthropic_image(b"not an image at all", "image/png"),
        &user("u-other"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["type"], "error");
}

both!(strike_ladder_survives_a_restart);
async fn strike_ladder_survives_a_restart(db: &Db) {
    // First strike: a warning (the default ladder), then the gateway stops.
    {
        let gw = gateway(db, "", None).await;
        send(&gw.app, "/v1/chat/completions", chat(SOLICIT), &user("u1")).await;
        let reply = send(&gw.app, "/v1/chat/completions", chat("hello"), &user("u1")).await;
        assert_eq!(reply.status, StatusCode::OK, "a warning does not refuse");
        gw.store.close().await;
    }
    // A new process: the second strike counts the first, and suspends.
    let gw = gateway(db, "", None).await;
    gw.state.enforcement.refresh(&gw.state).await;
    send(&gw.app, "/v1/chat/completions", chat(SOLICIT), &user("u1")).await;
    let reply = send(&gw.app, "/v1/chat/completions", chat("hello"), &user("u1")).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    gw.store.close().await;
    // And a third process, started afterwards, enforces the suspension.
    let gw = gateway(db, "", None).await;
    gw.state.enforcement.refresh(&gw.state).await;
    let reply = send(&gw.app, "/v1/chat/completions", chat("hello"), &user("u1")).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let reply = send(&gw.app, "/v1/chat/completions", chat("hello"), &user("u2")).await;
    assert_eq!(reply.status, StatusCode::OK);
}

both!(replicas_share_sanctions_and_rollout_halts);
async fn replicas_share_sanctions_and_rollout_halts(db: &Db) {
    let rollout = r#"
[rollout]
protocol = "openai"
candidate_upstream = "candidate"
stages = [{ name = "canary", percent = 100.0 }]
on_halt = "unavailable"
"#;
    let a = gateway(db, rollout, None).await;
    let b = gateway(db, rollout, None).await;
    // Two strikes on replica A suspend u1 ...
    for _ in 0..2 {
        send(&a.app, "/v1/chat/completions", chat(SOLICIT), &user("u1")).await;
    }
    let reply = send(&b.app, "/v1/chat/completions", chat("hello"), &user("u1")).await;
    assert_eq!(reply.status, StatusCode::OK, "B has not refreshed yet");
    // ... and replica B enforces it after its refresh.
    b.state.enforcement.refresh(&b.state).await;
    let reply = send(&b.app, "/v1/chat/completions", chat("hello"), &user("u1")).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);

    // An admin halts the rollout on A; B picks it up on its next sync.
    let reply = send(
        &a.app,
        "/admin/rollout/halt",
        json!({"reason": "investigating"}),
        &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.json());
    let reply = send(&b.app, "/v1/chat/completions", chat("hello"), &user("u2")).await;
    assert_eq!(reply.status, StatusCode::OK);
    b.state.rollout.as_ref().unwrap().sync(&b.state).await;
    let reply = send(&b.app, "/v1/chat/completions", chat("hello"), &user("u2")).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    // Both the halt and the suspension are in the shared audit log.
    let actions: Vec<String> = b
        .store
        .audit_entries(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|it| it.action)
        .collect();
    assert!(
        actions.iter().any(|it| it == "rollout.transition"),
        "{actions:?}"
    );
    assert!(
        actions.iter().any(|it| it == "enforcement.suspend"),
        "{actions:?}"
    );
    assert!(actions.iter().any(|it| it == "rollout.halt"), "{actions:?}");
}

both!(store_outages_are_waited_out_or_fail_closed);
async fn store_outages_are_waited_out_or_fail_closed(db: &Db) {
    let gw = gateway(db, "", None).await;
    // Another process holds the incidents table for a moment: the incident
    // waits for it and is recorded; the caller sees an ordinary refusal.
    let release = db.lock_incidents().await;
    let held = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        release.send(()).unwrap();
    });
    let started = std::time::Instant::now();
    let reply = send(&gw.app, "/v1/chat/completions", chat(SOLICIT), &user("u1")).await;
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(250),
        "the incident waited for the lock"
    );
    held.await.unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("x-childsafe-category"),
        Some("csam_solicitation")
    );
    let request_id = reply.header("x-childsafe-request-id").unwrap();
    assert!(
        gw.store
            .incident_for_request(request_id)
            .await
            .unwrap()
            .is_some()
    );

    // The database is gone: the request fails closed, nothing is forwarded.
    gw.store.close().await;
    let reply = send(&gw.app, "/v1/chat/completions", chat(SOLICIT), &user("u2")).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    let body = String::from_utf8_lossy(&reply.body).into_owned();
    assert!(!body.contains("echo"), "{body}");
}

impl Db {
    /// Takes an exclusive lock on the incidents table from a connection of
    /// its own (as another process would), held until the sender fires.
    async fn lock_incidents(&self) -> tokio::sync::oneshot::Sender<()> {
        use sqlx::Connection as _;
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let (locked, is_locked) = tokio::sync::oneshot::channel::<()>();
        match &self.schema {
            None => {
                let path = self.url.trim_start_matches("sqlite://").to_owned();
                tokio::spawn(async move {
                    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path);
                    let mut conn = sqlx::SqliteConnection::connect_with(&options)
                        .await
                        .unwrap();
                    sqlx::query("BEGIN EXCLUSIVE")
                        .execute(&mut conn)
                        .await
                        .unwrap();
                    locked.send(()).unwrap();
                    released.await.unwrap();
                    sqlx::query("COMMIT").execute(&mut conn).await.unwrap();
                });
            }
            Some(schema) => {
                let url = self.url.clone();
                let lock = format!("LOCK TABLE \"{schema}\".incidents IN EXCLUSIVE MODE");
                tokio::spawn(async move {
                    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
                    sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
                    sqlx::query(sqlx::AssertSqlSafe(lock))
                        .execute(&mut conn)
                        .await
                        .unwrap();
                    locked.send(()).unwrap();
                    released.await.unwrap();
                    sqlx::query("COMMIT").execute(&mut conn).await.unwrap();
                });
            }
        }
        is_locked.await.unwrap();
        release
    }
}
