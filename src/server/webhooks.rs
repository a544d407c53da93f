//! Webhook routes for operators (the chair, vice-chairs and clerks): each endpoint's state,
//! its delivery log, and asking for a range of a sitting's log to be delivered again.

use super::App;
use super::http::{ApiError, authenticate, bearer, json_body, keeps_a_record, store_unavailable};
use crate::sitting::SittingId;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn router() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(attempts))
        .routes(routes!(replay))
}

fn no_such_endpoint(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_such_webhook",
        format!("no webhook endpoint {id:?}"),
    )
}

/// Every endpoint: where it receives, what, how far each sitting has been delivered, the
/// replays still to do, and how it is doing (deliveries, failures, the last error).
#[utoipa::path(
    get,
    path = "/api/webhooks",
    tag = "webhooks",
    responses(
        (status = 200, description = "Every endpoint's state", body = Vec<Object>),
        (status = 401, description = "Missing, expired or revoked token", body = ApiError),
        (status = 403, description = "Only the chair, a vice-chair or a clerk", body = ApiError),
        (status = 503, description = "Unavailable; try again shortly", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn list(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<Json<Vec<crate::webhooks::EndpointStatus>>, ApiError> {
    let claims = authenticate(&app, bearer(&headers))?;
    keeps_a_record(&app, &claims.sub, "see the webhooks")?;
    let hooks = app.webhooks();
    let mut out = Vec::new();
    for id in hooks.ids() {
        if let Some(s) = hooks.status(id).await.map_err(store_unavailable)? {
            out.push(s);
        }
    }
    Ok(Json(out))
}

/// Which attempts to read.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AttemptsQuery {
    /// Attempts after this number (0: from the first).
    after: Option<i64>,
    /// At most this many (500; at most 5,000).
    limit: Option<u32>,
}

/// An endpoint's delivery log: every attempt, oldest first, with the HTTP status answered
/// or what went wrong, and how long it took.
#[utoipa::path(
    get,
    path = "/api/webhooks/{id}/attempts",
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint"), AttemptsQuery),
    responses(
        (status = 200, description = "Attempts in order", body = Vec<Object>),
        (status = 401, description = "Missing, expired or revoked token", body = ApiError),
        (status = 403, description = "Only the chair, a vice-chair or a clerk", body = ApiError),
        (status = 404, description = "No such endpoint", body = ApiError),
        (status = 503, description = "Unavailable; try again shortly", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn attempts(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<AttemptsQuery>,
) -> Result<Json<Vec<crate::store::Attempt>>, ApiError> {
    let claims = authenticate(&app, bearer(&headers))?;
    keeps_a_record(&app, &claims.sub, "read the webhooks' delivery log")?;
    if !app.webhooks().ids().any(|e| e == id) {
        return Err(no_such_endpoint(&id));
    }
    app.store()
        .webhook_attempts(
            &id,
            q.after.unwrap_or(0),
            q.limit.unwrap_or(500).clamp(1, 5000),
        )
        .await
        .map(Json)
        .map_err(store_unavailable)
}

/// A range of a sitting's log to deliver again.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ReplayRequest {
    /// The sitting.
    sitting: String,
    /// The first sequence number.
    first: u64,
    /// The last.
    last: u64,
}

/// A replay accepted.
#[derive(Debug, Serialize, ToSchema)]
struct ReplayAccepted {
    /// Its number.
    replay: i64,
}

/// Delivers `first..=last` of a sitting's log to the endpoint again, before anything new,
/// each marked `"replay": true` (receivers de-duplicate by sitting and sequence number).
#[utoipa::path(
    post,
    path = "/api/webhooks/{id}/replays",
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint")),
    request_body = ReplayRequest,
    responses(
        (status = 202, description = "Queued; it survives a restart", body = ReplayAccepted),
        (status = 400, description = "Malformed, or an empty or reversed range", body = ApiError),
        (status = 401, description = "Missing, expired or revoked token", body = ApiError),
        (status = 403, description = "Only the chair, a vice-chair or a clerk", body = ApiError),
        (status = 404, description = "No such endpoint or sitting", body = ApiError),
        (status = 503, description = "Unavailable; try again shortly", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn replay(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<ReplayRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<ReplayAccepted>), ApiError> {
    let claims = authenticate(&app, bearer(&headers))?;
    keeps_a_record(&app, &claims.sub, "replay webhook deliveries")?;
    let hooks = app.webhooks();
    if !hooks.ids().any(|e| e == id) {
        return Err(no_such_endpoint(&id));
    }
    let req = json_body(body)?;
    if req.first == 0 || req.last < req.first {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "first must be at least 1 and last at least first",
        ));
    }
    let sitting = SittingId::new(req.sitting.clone());
    if !hooks.follows(&sitting) {
        return Err(super::http::no_such_sitting(&req.sitting));
    }
    let n = hooks
        .replay(&id, &sitting, req.first, req.last, claims.sub.as_str())
        .await
        .map_err(store_unavailable)?;
    tracing::info!(endpoint = %id, sitting = %sitting, first = req.first, last = req.last, actor = %claims.sub, "webhook replay asked");
    app.audit(crate::audit::AuditEntry::WebhookReplay {
        actor: claims.sub,
        endpoint: id,
        sitting,
        first: req.first,
        last: req.last,
    });
    Ok((StatusCode::ACCEPTED, Json(ReplayAccepted { replay: n })))
}
