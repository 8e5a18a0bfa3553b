//! The admin API under `/admin`, behind bearer tokens whose SHA-256 is in
//! the store: appeals, sanctions, the rollout, reloads and the audit log.
//! Authentication is a layer on this router, not a check in each handler;
//! every action writes the audit log with the token's id as the actor.

use axum::{
    Extension, Json, Router,
    extract::{Path, Query, Request, State},
    http::header,
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::{
    enforcement::audit,
    error::{AppError, ErrorKind},
    ledger::Subject,
    rollout::Transition,
    state::AppState,
};

/// The authenticated admin (the token's id).
#[derive(Clone, Debug)]
pub struct Admin(pub String);

/// The admin routes, with the token layer.
pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/admin/appeals", get(list_appeals))
        .route("/admin/appeals/{id}/decide", post(decide_appeal))
        .route("/admin/sanctions", get(list_sanctions))
        .route("/admin/sanctions/lift", post(lift_sanction))
        .route("/admin/rollout", get(rollout_status))
        .route("/admin/rollout/{transition}", post(rollout_transition))
        .route("/admin/reload", post(reload))
        .route("/admin/audit", get(audit_log))
        .layer(middleware::from_fn_with_state(state, require_token))
}

async fn require_token(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|it| it.to_str().ok())
        .and_then(|it| it.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = token else {
        return AppError::new(
            ErrorKind::Authentication,
            "admin: expected Authorization: Bearer TOKEN",
        )
        .into_response();
    };
    match state.ledger.admin_token(token).await {
        Ok(Some(id)) => {
            request.extensions_mut().insert(Admin(id));
            next.run(request).await
        }
        Ok(None) => {
            AppError::new(ErrorKind::Authentication, "admin: unknown token").into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "admin token check failed");
            AppError::new(ErrorKind::Internal, "admin: store unavailable").into_response()
        }
    }
}

#[derive(Deserialize)]
struct AppealQuery {
    status: Option<String>,
}

async fn list_appeals(
    State(state): State<AppState>,
    Query(query): Query<AppealQuery>,
) -> Result<Json<Value>, AppError> {
    let appeals = state
        .ledger
        .appeals(query.status.as_deref())
        .await
        .map_err(internal)?;
    Ok(Json(json!({"appeals": appeals})))
}

#[derive(Deserialize)]
struct Decide {
    decision: String,
    note: Option<String>,
}

async fn decide_appeal(
    State(state): State<AppState>,
    Extension(admin): Extension<Admin>,
    Path(id): Path<String>,
    Json(body): Json<Decide>,
) -> Result<Json<Value>, AppError> {
    let grant = match body.decision.as_str() {
        "grant" => true,
        "deny" => false,
        other => {
            return Err(AppError::new(
                ErrorKind::InvalidRequest,
                format!("decision: expected grant or deny, got {other:?}"),
            ));
        }
    };
    let Some(appeal) = state
        .ledger
        .decide_appeal(&id, grant, &admin.0, body.note.clone())
        .await
        .map_err(internal)?
    else {
        return Err(AppError::new(
            ErrorKind::NotFound,
            format!("appeal {id}: not found or already decided"),
        ));
    };
    // Granting lifts the appealed action with the decision; lift anything
    // else against the user too, so the grant means access again.
    let mut lifted = grant;
    if grant {
        let reason = format!("appeal {id} granted");
        lifted |= state
            .ledger
            .lift_sanction(&appeal.subject, &admin.0, &reason)
            .await
            .map_err(internal)?;
        state.enforcement.forget(&appeal.subject);
    }
    audit(
        &state,
        &admin.0,
        &format!("appeal.{}", appeal.status),
        &appeal.subject.key(),
        json!({"appeal_id": id, "lifted": lifted}),
    )
    .await;
    Ok(Json(json!({"appeal": appeal, "lifted": lifted})))
}

async fn list_sanctions(State(state): State<AppState>) -> Result<Json<Value>, AppError> {
    let sanctions = state
        .ledger
        .active_sanctions(OffsetDateTime::now_utc())
        .await
        .map_err(internal)?;
    Ok(Json(json!({"sanctions": sanctions})))
}

#[derive(Deserialize)]
struct Lift {
    tenant: String,
    user: Option<String>,
    reason: Option<String>,
}

async fn lift_sanction(
    State(state): State<AppState>,
    Extension(admin): Extension<Admin>,
    Json(body): Json<Lift>,
) -> Result<Json<Value>, AppError> {
    let subject = match body.user {
        Some(user) => Subject::User {
            tenant: body.tenant,
            user,
        },
        None => Subject::Tenant(body.tenant),
    };
    let reason = body
        .reason
        .clone()
        .unwrap_or_else(|| "lifted by an admin".to_owned());
    let lifted = state
        .ledger
        .lift_sanction(&subject, &admin.0, &reason)
        .await
        .map_err(internal)?;
    state.enforcement.forget(&subject);
    audit(
        &state,
        &admin.0,
        "sanction.lift",
        &subject.key(),
        json!({"lifted": lifted, "reason": body.reason}),
    )
    .await;
    Ok(Json(json!({"subject": subject.key(), "lifted": lifted})))
}

async fn rollout_status(State(state): State<AppState>) -> Result<Json<Value>, AppError> {
    let Some(rollout) = &state.rollout else {
        return Err(AppError::new(ErrorKind::NotFound, "no rollout configured"));
    };
    Ok(Json(rollout.status(&state).await))
}

#[derive(Deserialize, Default)]
struct TransitionBody {
    reason: Option<String>,
}

async fn rollout_transition(
    State(state): State<AppState>,
    Extension(admin): Extension<Admin>,
    Path(transition): Path<String>,
    body: Option<Json<TransitionBody>>,
) -> Result<Json<Value>, AppError> {
    let Some(rollout) = &state.rollout else {
        return Err(AppError::new(ErrorKind::NotFound, "no rollout configured"));
    };
    let transition = match transition.as_str() {
        "promote" => Transition::Promote,
        "halt" => Transition::Halt,
        "resume" => Transition::Resume,
        other => {
            return Err(AppError::new(
                ErrorKind::NotFound,
                format!("{other}: expected promote, halt or resume"),
            ));
        }
    };
    let reason = body
        .and_then(|it| it.0.reason)
        .or_else(|| Some(format!("manual {}", transition.as_str())));
    let next = rollout
        .transition(&state, &admin.0, transition, reason)
        .await
        .map_err(|e| AppError::new(ErrorKind::InvalidRequest, e))?;
    Ok(Json(json!({"state": next})))
}

async fn reload(
    State(state): State<AppState>,
    Extension(admin): Extension<Admin>,
) -> Result<Json<Value>, AppError> {
    let reloaded = state.reload().map_err(|e| {
        tracing::error!(error = %e, "reload failed; keeping the current banks and lists");
        AppError::new(
            ErrorKind::Internal,
            "reload failed; the current banks and lists stay in use",
        )
    })?;
    audit(
        &state,
        &admin.0,
        "engine.reload",
        "engine",
        json!({"reloaded": reloaded}),
    )
    .await;
    Ok(Json(json!({"reloaded": reloaded})))
}

async fn audit_log(State(state): State<AppState>) -> Result<Json<Value>, AppError> {
    let entries = state.ledger.audit_log().await.map_err(internal)?;
    Ok(Json(json!({"entries": entries})))
}

fn internal(e: crate::ledger::LedgerError) -> AppError {
    tracing::error!(error = %e, "admin: store failed");
    AppError::new(ErrorKind::Internal, "store unavailable")
}
