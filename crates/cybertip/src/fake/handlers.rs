//! The fake's HTTP side: its own accept loop (so that a fault can close a
//! connection without an answer, after the server acted), the routes, and
//! the behaviour of each endpoint.

// One error per HTTP call, on a path dominated by network time: boxing the
// error to shrink the `Result` buys nothing measurable.
#![allow(clippy::result_large_err)]

use std::{
    collections::HashMap,
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{DefaultBodyLimit, Extension, FromRequest, Multipart, Query, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::Engine as _;
use hyper_util::rt::{TokioExecutor, TokioIo};
use md5::Digest as _;
use rand::Rng as _;
use tokio::{net::TcpListener, sync::oneshot};
use tower::ServiceExt as _;

use super::{
    Endpoint, FakeCall, FakeFile, FakeReport, FakeReportStatus, FakeState, Fault, FaultRule,
    UNFINISHED_TTL_FROM_CHANGE, UNFINISHED_TTL_FROM_OPEN, lock,
};
use crate::{
    error::Error,
    model::{ReportDoneResponse, ReportResponse},
    rules, xml,
};

/// Closes the connection a request came on, without an answer.
#[derive(Clone)]
struct KillSwitch(Arc<Mutex<Option<oneshot::Sender<()>>>>);

impl KillSwitch {
    fn fire(&self) {
        if let Some(tx) = lock(&self.0).take() {
            let _ = tx.send(());
        }
    }
}

/// The client's address.
#[derive(Clone, Copy)]
struct Peer(SocketAddr);

pub(super) async fn serve(
    listener: TcpListener,
    state: Arc<FakeState>,
    mut stop: oneshot::Receiver<()>,
) {
    let router = routes(Arc::clone(&state));
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                tokio::spawn(serve_connection(stream, peer, router.clone()));
            }
        }
    }
}

async fn serve_connection(stream: tokio::net::TcpStream, peer: SocketAddr, router: Router) {
    let (kill_tx, kill_rx) = oneshot::channel::<()>();
    let kill = KillSwitch(Arc::new(Mutex::new(Some(kill_tx))));
    let service =
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(kill.clone());
            request.extensions_mut().insert(Peer(peer));
            let router = router.clone();
            async move {
                Ok::<_, Infallible>(router.oneshot(request.map(Body::new)).await.into_response())
            }
        });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    // Dropping the connection future closes the socket with no answer.
    tokio::select! {
        _ = connection => {}
        _ = kill_rx => {}
    }
}

fn routes(state: Arc<FakeState>) -> Router {
    let max_body = state.config.max_upload_bytes;
    Router::new()
        .route("/ispws/status", get(status))
        .route("/ispws/xsd", get(xsd))
        .route("/ispws/submit", post(submit))
        .route("/ispws/upload", post(upload))
        .route("/ispws/fileinfo", post(fileinfo))
        .route("/ispws/finish", post(finish))
        .route("/ispws/retract", post(retract))
        .route("/_fake/state", get(admin_state))
        .route(
            "/_fake/faults",
            post(admin_add_fault).delete(admin_clear_faults),
        )
        .route("/_fake/clock/advance", post(admin_advance))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

/// What an endpoint decided.
struct Outcome {
    reply: Reply,
    acted: bool,
    report_id: Option<i64>,
}

enum Reply {
    Response(StatusCode, ReportResponse),
    Done(ReportDoneResponse),
}

impl Outcome {
    fn ok(response: ReportResponse, acted: bool) -> Outcome {
        Outcome {
            report_id: response.report_id,
            reply: Reply::Response(StatusCode::OK, response),
            acted,
        }
    }

    fn error(code: i32, description: impl Into<String>, report_id: Option<i64>) -> Outcome {
        let status = match code {
            2000 => StatusCode::UNAUTHORIZED,
            1000..2000 => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        Outcome {
            reply: Reply::Response(
                status,
                ReportResponse {
                    response_code: code,
                    response_description: description.into(),
                    report_id,
                    file_id: None,
                    hash: None,
                },
            ),
            acted: false,
            report_id,
        }
    }
}

fn success(report_id: Option<i64>) -> ReportResponse {
    ReportResponse {
        response_code: 0,
        response_description: "Success".to_owned(),
        report_id,
        file_id: None,
        hash: None,
    }
}

/// The common path of every API call: authentication, counting, latency,
/// faults before and after acting, the call log and the `Request-ID` header.
async fn api<F, Fut>(
    state: &Arc<FakeState>,
    endpoint: Endpoint,
    kill: &KillSwitch,
    headers: &HeaderMap,
    act: F,
) -> Response
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let request_id = random_hex(16);
    let call = {
        let mut counts = lock(&state.counts);
        let count = counts.entry(endpoint).or_insert(0);
        *count += 1;
        *count
    };
    let rule: Option<FaultRule> = lock(&state.faults)
        .iter()
        .find(|rule| rule.applies(endpoint, call))
        .cloned();
    let fault = rule.as_ref().map(|it| it.fault.clone());
    let log = |acted: bool,
               http_status: Option<u16>,
               response_code: Option<i32>,
               report_id: Option<i64>| {
        lock(&state.records).calls.push(FakeCall {
            endpoint,
            call,
            request_id: request_id.clone(),
            fault: fault.clone(),
            acted,
            http_status,
            response_code,
            report_id,
        });
    };
    if !state.config.latency.is_zero() {
        tokio::time::sleep(state.config.latency).await;
    }

    let Some(user) = authenticated(state, headers) else {
        let outcome = Outcome::error(2000, "Authentication required", None);
        return finish_reply(outcome, &request_id, &log);
    };

    match &fault {
        Some(Fault::HttpStatus { status }) => {
            log(false, Some(*status), None, None);
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return with_request_id((status, "Service Unavailable").into_response(), &request_id);
        }
        Some(Fault::ResponseCode { code, http_status }) => {
            let description = crate_description(*code);
            let mut outcome = Outcome::error(*code, description, None);
            if let Reply::Response(status, _) = &mut outcome.reply {
                *status =
                    StatusCode::from_u16(*http_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            }
            return finish_reply(outcome, &request_id, &log);
        }
        Some(Fault::DropBeforeAct) => {
            log(false, None, None, None);
            return dropped(kill).await;
        }
        Some(Fault::Hang { millis, act: false }) => {
            tokio::time::sleep(std::time::Duration::from_millis(*millis)).await;
        }
        _ => {}
    }

    let mut outcome = act(user).await;

    match &fault {
        Some(Fault::DropAfterAct) => {
            log(outcome.acted, None, None, outcome.report_id);
            return dropped(kill).await;
        }
        Some(Fault::Hang { millis, act: true }) => {
            tokio::time::sleep(std::time::Duration::from_millis(*millis)).await;
        }
        Some(Fault::WrongMd5) => {
            if let Reply::Response(_, response) = &mut outcome.reply
                && let Some(hash) = &mut response.hash
            {
                *hash = if hash.starts_with('0') {
                    "f".repeat(32)
                } else {
                    "0".repeat(32)
                };
            }
        }
        _ => {}
    }
    finish_reply(outcome, &request_id, &log)
}

async fn dropped(kill: &KillSwitch) -> Response {
    kill.fire();
    // The connection task drops this future with the connection.
    std::future::pending::<()>().await;
    StatusCode::INTERNAL_SERVER_ERROR.into_response()
}

fn finish_reply(
    outcome: Outcome,
    request_id: &str,
    log: &dyn Fn(bool, Option<u16>, Option<i32>, Option<i64>),
) -> Response {
    let (status, code, body) = match &outcome.reply {
        Reply::Response(status, response) => (
            *status,
            response.response_code,
            xml::report_response_to_xml(response),
        ),
        Reply::Done(done) => (
            StatusCode::OK,
            done.response_code,
            xml::report_done_response_to_xml(done),
        ),
    };
    log(
        outcome.acted,
        Some(status.as_u16()),
        Some(code),
        outcome.report_id,
    );
    let body = body.unwrap_or_default();
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml;charset=UTF-8"),
    );
    with_request_id(response, request_id)
}

fn with_request_id(mut response: Response, request_id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("Request-ID", value);
    }
    response
}

fn crate_description(code: i32) -> &'static str {
    match code {
        1000 => "Server error",
        1100 => "Save failed",
        1110 => "Upload failed",
        1111 => "File upload failed",
        1210 => "Resource not found",
        1300 => "Update failed",
        2000 => "Authentication required",
        3000 => "User is not authorized to perform this action",
        4000 => "Invalid request",
        4100 => "Validation failed",
        4110 => "Malformed XML submittal",
        4200 => "Malformed file submittal",
        5001 => "Report does not exist",
        5002 => "File does not exist",
        5101 => "Report already retracted",
        5102 => "Report already finished",
        _ => "Error",
    }
}

fn authenticated(state: &FakeState, headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    let expected = &state.config.credentials;
    (user == expected.user && password == expected.password).then(|| user.to_owned())
}

fn random_hex(bytes: usize) -> String {
    let mut rng = rand::rng();
    (0..bytes)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

/// Applies the deletion rule, then finds a report that may still change.
fn live_report<'a>(
    state: &FakeState,
    reports: &'a mut std::collections::BTreeMap<i64, FakeReport>,
    id: i64,
) -> Result<&'a mut FakeReport, Outcome> {
    let now = state.clock.now();
    let Some(report) = reports.get_mut(&id) else {
        return Err(Outcome::error(5001, "Report does not exist", Some(id)));
    };
    if report.status == FakeReportStatus::Open {
        let deadline = (report.opened_at + UNFINISHED_TTL_FROM_OPEN)
            .max(report.last_modified + UNFINISHED_TTL_FROM_CHANGE);
        if now > deadline {
            report.status = FakeReportStatus::Expired;
        }
    }
    match report.status {
        FakeReportStatus::Open => Ok(report),
        FakeReportStatus::Expired => Err(Outcome::error(5001, "Report does not exist", Some(id))),
        FakeReportStatus::Finished => {
            Err(Outcome::error(5102, "Report already finished", Some(id)))
        }
        FakeReportStatus::Retracted => {
            Err(Outcome::error(5101, "Report already retracted", Some(id)))
        }
    }
}

/// Validates an XML body against the XSD and checks its root element.
fn validate_body(state: &FakeState, body: &[u8], root: &str) -> Result<(), Outcome> {
    match state.config.schema.validate(body) {
        Ok(()) => {}
        Err(Error::Schema { errors }) => {
            let first: Vec<String> = errors.into_iter().take(3).collect();
            return Err(Outcome::error(
                4100,
                format!("Validation failed: {}", first.join("; ")),
                None,
            ));
        }
        Err(err) => {
            return Err(Outcome::error(
                4110,
                format!("Malformed XML submittal: {err}"),
                None,
            ));
        }
    }
    match xml::root_name(body) {
        Ok(name) if name == root => Ok(()),
        Ok(name) => Err(Outcome::error(
            4000,
            format!("Invalid request: expected <{root}>, got <{name}>"),
            None,
        )),
        Err(err) => Err(Outcome::error(
            4110,
            format!("Malformed XML submittal: {err}"),
            None,
        )),
    }
}

async fn status(
    State(state): State<Arc<FakeState>>,
    Extension(kill): Extension<KillSwitch>,
    Extension(Peer(peer)): Extension<Peer>,
    headers: HeaderMap,
) -> Response {
    api(
        &state,
        Endpoint::Status,
        &kill,
        &headers,
        |user| async move {
            Outcome::ok(
                ReportResponse {
                    response_description: format!(
                        "Remote User : {user}, Remote Ip : {}",
                        peer.ip()
                    ),
                    ..success(None)
                },
                false,
            )
        },
    )
    .await
}

async fn xsd(State(state): State<Arc<FakeState>>, headers: HeaderMap) -> Response {
    if authenticated(&state, &headers).is_none() {
        return (StatusCode::UNAUTHORIZED, "Authentication required").into_response();
    }
    let mut response = (StatusCode::OK, state.config.schema.source().to_vec()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    response
}

async fn submit(
    State(state): State<Arc<FakeState>>,
    Extension(kill): Extension<KillSwitch>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let inner = Arc::clone(&state);
    api(&state, Endpoint::Submit, &kill, &headers, |_| async move {
        let state = inner;
        if let Err(outcome) = validate_body(&state, &body, "report") {
            return outcome;
        }
        let report = match xml::report_from_xml(&body) {
            Ok(report) => report,
            Err(err) => return Outcome::error(4100, format!("Validation failed: {err}"), None),
        };
        let now = state.clock.now();
        if let Err(err) = rules::check_report(&report, now) {
            return Outcome::error(4100, format!("Validation failed: {err}"), None);
        }
        let report_id = {
            let mut next = lock(&state.next_report_id);
            let id = *next;
            *next += 1;
            id
        };
        lock(&state.records).reports.insert(
            report_id,
            FakeReport {
                report_id,
                status: FakeReportStatus::Open,
                batched: report.batched_viral_meme,
                incident_type: report.incident_summary.incident_type.as_str().to_owned(),
                additional_info: report.additional_info.clone(),
                opened_at: now,
                last_modified: now,
                finished_at: None,
                files: Vec::new(),
            },
        );
        Outcome::ok(success(Some(report_id)), true)
    })
    .await
}

async fn upload(
    State(state): State<Arc<FakeState>>,
    Extension(kill): Extension<KillSwitch>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Response {
    // Read the form before the fault logic, as a server would.
    let form = read_upload(multipart).await;
    let inner = Arc::clone(&state);
    api(&state, Endpoint::Upload, &kill, &headers, |_| async move {
        let state = inner;
        let (id, file) = match form {
            Ok(form) => form,
            Err(message) => {
                return Outcome::error(4200, format!("Malformed file submittal: {message}"), None);
            }
        };
        let Some(report_id) = id.trim().parse::<i64>().ok() else {
            return Outcome::error(4000, "Invalid request: id is not a report id", None);
        };
        let mut records = lock(&state.records);
        let report = match live_report(&state, &mut records.reports, report_id) {
            Ok(report) => report,
            Err(outcome) => return outcome,
        };
        let (file_name, bytes) = file;
        let md5 = hex(&md5::Md5::digest(&bytes));
        let file_id = random_hex(16);
        report.files.push(FakeFile {
            file_id: file_id.clone(),
            md5: md5.clone(),
            size: bytes.len() as u64,
            file_name,
            fileinfo_count: 0,
            generative_ai: false,
            original_hashes: Vec::new(),
        });
        report.last_modified = state.clock.now();
        Outcome::ok(
            ReportResponse {
                file_id: Some(file_id),
                hash: Some(md5),
                ..success(Some(report_id))
            },
            true,
        )
    })
    .await
}

type UploadForm = (String, (Option<String>, Vec<u8>));

async fn read_upload(mut multipart: Multipart) -> Result<UploadForm, String> {
    let mut id = None;
    let mut file = None;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|err| err.to_string())?
    {
        match field.name() {
            Some("id") => id = Some(field.text().await.map_err(|err| err.to_string())?),
            Some("file") => {
                let name = field.file_name().map(str::to_owned);
                let bytes = field.bytes().await.map_err(|err| err.to_string())?;
                file = Some((name, bytes.to_vec()));
            }
            _ => {}
        }
    }
    match (id, file) {
        (Some(id), Some(file)) => Ok((id, file)),
        (None, _) => Err("missing form field id".to_owned()),
        (_, None) => Err("missing form field file".to_owned()),
    }
}

async fn fileinfo(
    State(state): State<Arc<FakeState>>,
    Extension(kill): Extension<KillSwitch>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let inner = Arc::clone(&state);
    api(
        &state,
        Endpoint::Fileinfo,
        &kill,
        &headers,
        |_| async move {
            let state = inner;
            if let Err(outcome) = validate_body(&state, &body, "fileDetails") {
                return outcome;
            }
            let details = match xml::file_details_from_xml(&body) {
                Ok(details) => details,
                Err(err) => return Outcome::error(4100, format!("Validation failed: {err}"), None),
            };
            let now = state.clock.now();
            let mut records = lock(&state.records);
            let report = match live_report(&state, &mut records.reports, details.report_id) {
                Ok(report) => report,
                Err(outcome) => return outcome,
            };
            if let Err(err) = rules::check_file_details(&details, report.batched, now) {
                return Outcome::error(
                    4100,
                    format!("Validation failed: {err}"),
                    Some(details.report_id),
                );
            }
            let Some(file) = report
                .files
                .iter_mut()
                .find(|it| it.file_id == details.file_id)
            else {
                return Outcome::error(5002, "File does not exist", Some(details.report_id));
            };
            if file.fileinfo_count > 0 {
                return Outcome::error(
                    4000,
                    "Invalid request: file details were already submitted for this file",
                    Some(details.report_id),
                );
            }
            file.fileinfo_count += 1;
            file.generative_ai = details.annotations.generative_ai;
            file.original_hashes = details
                .original_file_hashes
                .iter()
                .map(|it| (it.hash_type.clone(), it.value.clone()))
                .collect();
            report.last_modified = now;
            Outcome::ok(success(Some(details.report_id)), true)
        },
    )
    .await
}

async fn finish(State(state): State<Arc<FakeState>>, request: Request) -> Response {
    let (kill, headers, id) = form_request(request).await;
    let inner = Arc::clone(&state);
    api(&state, Endpoint::Finish, &kill, &headers, |_| async move {
        let state = inner;
        let report_id = match id {
            Ok(id) => id,
            Err(outcome) => return outcome,
        };
        let now = state.clock.now();
        let mut records = lock(&state.records);
        let report = match live_report(&state, &mut records.reports, report_id) {
            Ok(report) => report,
            Err(outcome) => return outcome,
        };
        if report.batched
            && let Err(err) = rules::check_batched_file_count(report.files.len())
        {
            return Outcome::error(4100, format!("Validation failed: {err}"), Some(report_id));
        }
        report.status = FakeReportStatus::Finished;
        report.finished_at = Some(now);
        Outcome {
            reply: Reply::Done(ReportDoneResponse {
                response_code: 0,
                report_id,
                files: report.files.iter().map(|it| it.file_id.clone()).collect(),
            }),
            acted: true,
            report_id: Some(report_id),
        }
    })
    .await
}

async fn retract(State(state): State<Arc<FakeState>>, request: Request) -> Response {
    let (kill, headers, id) = form_request(request).await;
    let inner = Arc::clone(&state);
    api(&state, Endpoint::Retract, &kill, &headers, |_| async move {
        let state = inner;
        let report_id = match id {
            Ok(id) => id,
            Err(outcome) => return outcome,
        };
        let mut records = lock(&state.records);
        let report = match live_report(&state, &mut records.reports, report_id) {
            Ok(report) => report,
            Err(outcome) => return outcome,
        };
        report.status = FakeReportStatus::Retracted;
        Outcome::ok(success(Some(report_id)), true)
    })
    .await
}

/// Reads the `id` form field of `/finish` and `/retract`: multipart as in
/// NCMEC's curl examples, or URL-encoded as recorded traffic shows accepted.
async fn form_request(request: Request) -> (KillSwitch, HeaderMap, Result<i64, Outcome>) {
    let kill = request
        .extensions()
        .get::<KillSwitch>()
        .cloned()
        .unwrap_or_else(|| KillSwitch(Arc::new(Mutex::new(None))));
    let headers = request.headers().clone();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|it| it.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let id: Result<String, String> = if content_type.starts_with("multipart/form-data") {
        match Multipart::from_request(request, &()).await {
            Ok(mut multipart) => {
                let mut id = Err("missing form field id".to_owned());
                loop {
                    match multipart.next_field().await {
                        Ok(Some(field)) if field.name() == Some("id") => {
                            id = field.text().await.map_err(|err| err.to_string());
                        }
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(err) => {
                            id = Err(err.to_string());
                            break;
                        }
                    }
                }
                id
            }
            Err(err) => Err(err.to_string()),
        }
    } else {
        match axum::Form::<HashMap<String, String>>::from_request(request, &()).await {
            Ok(axum::Form(fields)) => fields
                .get("id")
                .cloned()
                .ok_or_else(|| "missing form field id".to_owned()),
            Err(err) => Err(err.to_string()),
        }
    };
    let id = match id {
        Ok(text) => text
            .trim()
            .parse::<i64>()
            .map_err(|_| Outcome::error(4000, "Invalid request: id is not a report id", None)),
        Err(message) => Err(Outcome::error(
            4000,
            format!("Invalid request: {message}"),
            None,
        )),
    };
    (kill, headers, id)
}

async fn admin_state(State(state): State<Arc<FakeState>>) -> Response {
    let records = lock(&state.records).clone();
    axum::Json(records).into_response()
}

async fn admin_add_fault(State(state): State<Arc<FakeState>>, body: Bytes) -> Response {
    match serde_json::from_slice::<FaultRule>(&body) {
        Ok(rule) => {
            lock(&state.faults).push(rule);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(err) => (StatusCode::BAD_REQUEST, format!("fault rule: {err}\n")).into_response(),
    }
}

async fn admin_clear_faults(State(state): State<Arc<FakeState>>) -> Response {
    lock(&state.faults).clear();
    StatusCode::NO_CONTENT.into_response()
}

async fn admin_advance(
    State(state): State<Arc<FakeState>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    match query.get("seconds").and_then(|it| it.parse::<i64>().ok()) {
        Some(seconds) if seconds >= 0 => {
            state.clock.advance(time::Duration::seconds(seconds));
            StatusCode::NO_CONTENT.into_response()
        }
        _ => (StatusCode::BAD_REQUEST, "expected ?seconds=N with N >= 0\n").into_response(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
