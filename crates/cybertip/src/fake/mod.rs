//! A faithful local fake of the CyberTipline Reporting API, for tests and for
//! people trying the tool (`childsafe dev fake-cybertip`).
//!
//! It implements the documented endpoints and call order (API-NOTES §1.2,
//! §1.3) under `/ispws`: Basic auth on every call; `/submit` and `/fileinfo`
//! bodies validated against the XSD and the documented rules; uploads
//! tracked per report with the MD5 of the received bytes; `/fileinfo` at most
//! once per file; `/finish` final (a second one answers 5102), `/retract`
//! only before finish (5101 after a retract); Appendix E's one-file limit on
//! batched reports at finish (HTTP 400, 4100); and the deletion of an
//! unfinished report 24 h after it was opened or 1 h after its last change,
//! whichever is later, on an injectable [`FakeClock`]. Every answer carries
//! a `Request-ID` header.
//!
//! Faults ([`faults`]) are injected per endpoint and call count: HTTP 5xx,
//! failure codes, hangs (client timeouts), and a connection dropped before or
//! after the server acted. The fake keeps no file content, only each file's
//! MD5 and size.
//!
//! Where the documentation is silent the fake chooses, and says so: error
//! codes come with HTTP 400 (401 for authentication, 500 for injected server
//! faults); a second `/fileinfo` for a file answers 4000; report ids count up
//! from 4564654, file ids are 32 random hex digits.
//!
//! Admin endpoints (no authentication; the fake listens on 127.0.0.1 by
//! default): `GET /_fake/state` (the records as JSON), `POST /_fake/faults`
//! (a [`FaultRule`] as JSON), `DELETE /_fake/faults`, and
//! `POST /_fake/clock/advance?seconds=N`.

pub mod faults;
mod handlers;

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use serde::Serialize;
use time::OffsetDateTime;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

pub use self::faults::{Endpoint, Fault, FaultRule};
use crate::{client::Credentials, error::Error, schema::Schema};

/// An unfinished report is deleted this long after it was opened...
pub const UNFINISHED_TTL_FROM_OPEN: time::Duration = time::Duration::hours(24);
/// ...or this long after its last change, whichever is later.
pub const UNFINISHED_TTL_FROM_CHANGE: time::Duration = time::Duration::hours(1);

/// The fake's clock: the system clock plus an offset that tests advance.
#[derive(Debug, Default)]
pub struct FakeClock {
    offset: Mutex<time::Duration>,
}

impl FakeClock {
    /// Now, as the fake sees it.
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + *lock(&self.offset)
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: time::Duration) {
        *lock(&self.offset) += by;
    }
}

/// How the fake is set up.
#[derive(Clone, Debug)]
pub struct FakeConfig {
    /// The one account it accepts.
    pub credentials: Credentials,
    /// The XSD bodies are validated against.
    pub schema: Schema,
    /// Delay before every API answer (lets kill tests land between steps).
    pub latency: Duration,
    /// Largest accepted upload. Default: 256 MiB (NCMEC documents no limit).
    pub max_upload_bytes: usize,
}

impl FakeConfig {
    /// A fake with one account, the given XSD, no latency.
    pub fn new(credentials: Credentials, schema: Schema) -> FakeConfig {
        FakeConfig {
            credentials,
            schema,
            latency: Duration::ZERO,
            max_upload_bytes: 256 * 1024 * 1024,
        }
    }
}

/// Where a report stands at the fake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FakeReportStatus {
    /// Submitted, not finished.
    Open,
    /// Finished: final.
    Finished,
    /// Retracted before finish.
    Retracted,
    /// Deleted by the 24 h / 1 h rule.
    Expired,
}

/// A report as the fake holds it.
#[derive(Clone, Debug, Serialize)]
pub struct FakeReport {
    /// `reportId`.
    pub report_id: i64,
    /// Status.
    pub status: FakeReportStatus,
    /// Appendix E batched report.
    pub batched: bool,
    /// The `incidentType` submitted.
    pub incident_type: String,
    /// The report's top-level `additionalInfo` (our case reference lives there).
    pub additional_info: Option<String>,
    /// When submitted.
    #[serde(with = "time::serde::rfc3339")]
    pub opened_at: OffsetDateTime,
    /// Last change (upload, fileinfo).
    #[serde(with = "time::serde::rfc3339")]
    pub last_modified: OffsetDateTime,
    /// When finished.
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// Uploaded files, in order.
    pub files: Vec<FakeFile>,
}

/// A file as the fake holds it (never its bytes).
#[derive(Clone, Debug, Serialize)]
pub struct FakeFile {
    /// `fileId`.
    pub file_id: String,
    /// MD5 of the received bytes, lowercase hex.
    pub md5: String,
    /// Size in bytes.
    pub size: u64,
    /// The multipart file name.
    pub file_name: Option<String>,
    /// How many `/fileinfo` calls were accepted for it (at most 1).
    pub fileinfo_count: u32,
    /// Whether its details carry `<generativeAi/>`.
    pub generative_ai: bool,
    /// Its `originalFileHash` values as (type, value).
    pub original_hashes: Vec<(String, String)>,
}

/// One API call, as the fake saw it.
#[derive(Clone, Debug, Serialize)]
pub struct FakeCall {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// Its call number (per endpoint, from 1).
    pub call: u64,
    /// The `Request-ID` it answered with.
    pub request_id: String,
    /// The fault applied, if any.
    pub fault: Option<Fault>,
    /// Whether the server acted (changed state).
    pub acted: bool,
    /// The HTTP status sent (none when the connection was dropped).
    pub http_status: Option<u16>,
    /// The `responseCode` sent.
    pub response_code: Option<i32>,
    /// The report concerned, if known.
    pub report_id: Option<i64>,
}

/// Everything the fake knows, for assertions.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FakeRecords {
    /// Reports by id.
    pub reports: BTreeMap<i64, FakeReport>,
    /// Every call, in order.
    pub calls: Vec<FakeCall>,
}

impl FakeRecords {
    /// Finished reports.
    pub fn finished(&self) -> Vec<&FakeReport> {
        self.reports
            .values()
            .filter(|it| it.status == FakeReportStatus::Finished)
            .collect()
    }

    /// Calls to one endpoint.
    pub fn calls_to(&self, endpoint: Endpoint) -> Vec<&FakeCall> {
        self.calls
            .iter()
            .filter(|it| it.endpoint == endpoint)
            .collect()
    }
}

pub(crate) struct FakeState {
    pub(crate) config: FakeConfig,
    pub(crate) clock: Arc<FakeClock>,
    pub(crate) records: Mutex<FakeRecords>,
    pub(crate) faults: Mutex<Vec<FaultRule>>,
    pub(crate) counts: Mutex<BTreeMap<Endpoint, u64>>,
    pub(crate) next_report_id: Mutex<i64>,
}

/// A running fake server.
pub struct FakeServer {
    state: Arc<FakeState>,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FakeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl FakeServer {
    /// Binds `listen` (port 0 for any free port) and starts serving.
    ///
    /// # Errors
    /// [`Error::Io`] if the address cannot be bound.
    pub async fn start(config: FakeConfig, listen: SocketAddr) -> Result<FakeServer, Error> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| Error::Io {
                path: listen.to_string().into(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Io {
            path: listen.to_string().into(),
            source,
        })?;
        let state = Arc::new(FakeState {
            config,
            clock: Arc::new(FakeClock::default()),
            records: Mutex::new(FakeRecords::default()),
            faults: Mutex::new(Vec::new()),
            counts: Mutex::new(BTreeMap::new()),
            next_report_id: Mutex::new(4_564_654),
        });
        let (shutdown, stop) = oneshot::channel();
        let task = tokio::spawn(handlers::serve(listener, Arc::clone(&state), stop));
        Ok(FakeServer {
            state,
            addr,
            shutdown: Some(shutdown),
            task: Some(task),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL to give a client: `http://ADDR/ispws`.
    pub fn base_url(&self) -> String {
        format!("http://{}/ispws", self.addr)
    }

    /// A snapshot of its records.
    pub fn records(&self) -> FakeRecords {
        lock(&self.state.records).clone()
    }

    /// Adds a fault rule.
    pub fn add_fault(&self, rule: FaultRule) {
        lock(&self.state.faults).push(rule);
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        lock(&self.state.faults).clear();
    }

    /// Its clock.
    pub fn clock(&self) -> &FakeClock {
        &self.state.clock
    }

    /// Stops serving and waits until it has.
    pub async fn shutdown(mut self) {
        self.stop().await;
    }

    /// Serves until the process is stopped (for `childsafe dev fake-cybertip`).
    pub async fn wait(mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    async fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Locks a mutex, surviving a panicked holder (the fake's state stays usable).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
