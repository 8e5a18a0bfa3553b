//! User reports (`POST /v1/reports`) and appeals (`POST /v1/appeals`).
//!
//! A report flags a response by its request id, or pasted content, with a
//! reason category and a comment. It becomes a case, is rate-limited per
//! reporter, and is acknowledged with a report id.
//!
//! Pasted content is content, so it is never stored: the gateway keeps its
//! SHA-256 and the engine's findings on it (a reviewer who needs the text
//! asks the reporter or finds the response by request id). The comment is
//! the reporter's own words and is kept so a reviewer can read it, unless
//! the engine finds harm in it (a reporter quoting what they saw): then only
//! its hash is kept. Appeal statements follow the same rule.

use axum::{
    Json, Router,
    extract::{Request, State},
    http::{HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use childsafe_core::{Category, ContentHashes, Decision, Finding};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::{
    REQUEST_ID_HEADER,
    enforcement::audit,
    error::{AppError, ErrorKind, Protocol},
    inspect::{Input, Message, Role},
    ledger::{NewReport, Subject},
    proxy::{api_key, new_request_id},
    state::AppState,
};

/// Report reasons a client may give, besides category names.
const OTHER_REASON: &str = "other";

/// The report and appeal routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/reports", post(report))
        .route("/v1/appeals", post(appeal))
}

async fn report(State(state): State<AppState>, request: Request) -> Response {
    let request_id = new_request_id();
    let res = report_inner(&state, request).await;
    finish(res, &request_id)
}

async fn appeal(State(state): State<AppState>, request: Request) -> Response {
    let request_id = new_request_id();
    let res = appeal_inner(&state, request).await;
    finish(res, &request_id)
}

fn finish(res: Result<Value, AppError>, request_id: &str) -> Response {
    let mut res = match res {
        Ok(body) => (StatusCode::CREATED, Json(body)).into_response(),
        Err(err) => err.with(Protocol::OpenAi, request_id).into_response(),
    };
    if let Ok(value) = HeaderValue::from_str(request_id) {
        res.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    res
}

/// Reads a small JSON body with the tenant's key; returns (tenant, body, header user).
async fn read(
    state: &AppState,
    request: Request,
) -> Result<(String, Value, Option<String>), AppError> {
    let (parts, body) = request.into_parts();
    let Some(tenant) = state.tenant_for_key(api_key(&parts.headers)) else {
        return Err(AppError::new(
            ErrorKind::Authentication,
            "missing or unknown API key",
        ));
    };
    let limit =
        state.config.reports.max_content_bytes + state.config.reports.max_comment_bytes + 4096;
    let body = axum::body::to_bytes(body, limit).await.map_err(|_| {
        AppError::new(
            ErrorKind::TooLarge,
            format!("body: expected at most {limit} bytes, got more"),
        )
    })?;
    let json: Value = serde_json::from_slice(&body).map_err(|e| {
        AppError::new(
            ErrorKind::InvalidRequest,
            format!(
                "body:{}:{}: expected JSON, got a syntax error",
                e.line(),
                e.column()
            ),
        )
    })?;
    if !json.is_object() {
        return Err(AppError::new(
            ErrorKind::InvalidRequest,
            "body: expected a JSON object",
        ));
    }
    let user = parts
        .headers
        .get(state.config.user_header.as_str())
        .and_then(|it| it.to_str().ok())
        .filter(|it| !it.is_empty())
        .map(str::to_owned);
    Ok((tenant, json, user))
}

fn optional_str<'a>(body: &'a Value, key: &str, max: usize) -> Result<Option<&'a str>, AppError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(it)) if it.len() > max => Err(AppError::new(
            ErrorKind::TooLarge,
            format!("{key}: expected at most {max} bytes, got {}", it.len()),
        )),
        Some(Value::String(it)) => Ok(Some(it.as_str()).filter(|it| !it.is_empty())),
        Some(other) => Err(crate::content::wrong_type(key, "string", other)),
    }
}

async fn check_text(state: &AppState, text: &str) -> Decision {
    let input = Input {
        messages: vec![Message {
            role: Role::User,
            text: text.to_owned(),
        }],
        ..Input::default()
    };
    state.inspector().check_input(&input, None).await.decision
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// MD5, SHA-1 and SHA-256 of pasted content, as the store keeps them.
fn content_hashes(bytes: &[u8]) -> ContentHashes {
    let crypto = childsafe_hash::crypto_hashes(bytes);
    ContentHashes {
        md5: crypto.md5,
        sha1: crypto.sha1,
        sha256: crypto.sha256,
        pdq: None,
        quality: None,
    }
}

async fn report_inner(state: &AppState, request: Request) -> Result<Value, AppError> {
    let (tenant, body, header_user) = read(state, request).await?;
    let limits = &state.config.reports;
    let reporter = match (header_user, optional_str(&body, "reporter", 256)?) {
        (Some(user), _) => user,
        (None, Some(reporter)) => reporter.to_owned(),
        (None, None) => {
            return Err(AppError::new(
                ErrorKind::InvalidRequest,
                format!(
                    "reporter: expected the {} header or a reporter field, got neither",
                    state.config.user_header
                ),
            ));
        }
    };
    let reporter_key = format!("{tenant}:{reporter}");
    let reason = optional_str(&body, "reason", 64)?.unwrap_or(OTHER_REASON);
    let reason_category = reason.parse::<Category>().ok();
    if reason != OTHER_REASON && reason_category.is_none_or(Category::is_context) {
        return Err(AppError::new(
            ErrorKind::InvalidRequest,
            format!(
                "reason: expected a category name (e.g. csam_solicitation) or other, got {reason:?}"
            ),
        ));
    }
    let response_id = optional_str(&body, "request_id", 64)?;
    let content = optional_str(&body, "content", limits.max_content_bytes)?;
    let comment = optional_str(&body, "comment", limits.max_comment_bytes)?;
    if response_id.is_none() && content.is_none() {
        return Err(AppError::new(
            ErrorKind::InvalidRequest,
            "request_id or content: expected one of them, got neither",
        ));
    }
    let since = OffsetDateTime::now_utc() - std::time::Duration::from_secs(3600);
    let recent = state
        .ledger
        .count_reports(&reporter_key, since)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "report count unavailable");
            AppError::new(ErrorKind::Internal, "reports are unavailable; retry later")
        })?;
    if recent >= limits.per_reporter_per_hour {
        return Err(AppError::new(
            ErrorKind::RateLimited,
            format!(
                "too many reports: at most {} per hour per reporter",
                limits.per_reporter_per_hour
            ),
        ));
    }
    let mut findings: Vec<Finding> = Vec::new();
    let mut categories: Vec<Category> = reason_category.into_iter().collect();
    if let Some(content) = content {
        let decision = check_text(state, content).await;
        findings.extend(decision.findings);
        categories.extend(decision.categories);
    }
    let (kept_comment, comment_sha256) = match comment {
        Some(comment) => {
            let decision = check_text(state, comment).await;
            if decision.categories.iter().any(|it| it.is_abuse()) {
                findings.extend(decision.findings);
                (None, Some(sha256_hex(comment)))
            } else {
                (Some(comment.to_owned()), None)
            }
        }
        None => (None, None),
    };
    if let Some(response_id) = response_id
        && let Ok(Some((_, incident_categories))) =
            state.ledger.incident_for_request(response_id).await
    {
        categories.extend(incident_categories);
    }
    categories.sort();
    categories.dedup();
    let report = NewReport {
        tenant: tenant.clone(),
        reporter: reporter_key,
        request_id: response_id.map(str::to_owned),
        content_hashes: content.map(|it| content_hashes(it.as_bytes())),
        reason: reason.to_owned(),
        categories: categories.clone(),
        comment: kept_comment,
        comment_sha256,
        findings,
    };
    // The ledger files the report and opens (or joins) its case in one step.
    let filed = state.ledger.add_report(report).await.map_err(|e| {
        tracing::error!(error = %e, "report not recorded");
        AppError::new(
            ErrorKind::Internal,
            "the report could not be recorded; retry later",
        )
    })?;
    let (report_id, case_id) = (filed.id, filed.case_id);
    tracing::info!(report = %report_id, case = %case_id, reason, "user report");
    Ok(json!({
        "report_id": report_id,
        "case_id": case_id,
        "status": "received",
        "categories": categories.iter().map(|it| it.as_str()).collect::<Vec<_>>(),
    }))
}

async fn appeal_inner(state: &AppState, request: Request) -> Result<Value, AppError> {
    let (tenant, body, header_user) = read(state, request).await?;
    let user = match (header_user, optional_str(&body, "user", 256)?) {
        (Some(user), _) => user,
        (None, Some(user)) => user.to_owned(),
        (None, None) => {
            return Err(AppError::new(
                ErrorKind::InvalidRequest,
                format!(
                    "user: expected the {} header or a user field, got neither",
                    state.config.user_header
                ),
            ));
        }
    };
    let Some(statement) = optional_str(&body, "statement", state.config.reports.max_comment_bytes)?
    else {
        return Err(AppError::new(
            ErrorKind::InvalidRequest,
            "statement: expected a short explanation, got nothing",
        ));
    };
    let subject = Subject::User { tenant, user };
    let active = state
        .ledger
        .active_sanctions(OffsetDateTime::now_utc())
        .await
        .map_err(|_| AppError::new(ErrorKind::Internal, "appeals are unavailable; retry later"))?;
    if !active.iter().any(|it| it.subject == subject) {
        return Err(AppError::new(
            ErrorKind::NotFound,
            "no active suspension or ban to appeal",
        ));
    }
    let decision = check_text(state, statement).await;
    let statement = if decision.categories.iter().any(|it| it.is_abuse()) {
        format!("<withheld: sha256 {}>", sha256_hex(statement))
    } else {
        statement.to_owned()
    };
    let appeal = state
        .ledger
        .file_appeal(subject.clone(), statement)
        .await
        .map_err(|_| {
            AppError::new(
                ErrorKind::Internal,
                "the appeal could not be recorded; retry later",
            )
        })?;
    let appeal_id = appeal.id;
    audit(
        state,
        &subject.key(),
        "appeal.file",
        &subject.key(),
        json!({"appeal_id": appeal_id}),
    )
    .await;
    Ok(json!({"appeal_id": appeal_id, "status": "pending"}))
}
