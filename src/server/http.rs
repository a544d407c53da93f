//! HTTP routes: health, readiness, the status page, and public sitting summaries.

use super::App;
use super::summary::Summary;
use crate::sitting::SittingId;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use std::sync::Arc;

const INDEX_HTML: &str = include_str!("../../web-client/index.html");

/// An error answered as JSON `{code, message}`; internals are logged, never sent.
#[derive(Debug, Serialize)]
struct ApiError {
    code: &'static str,
    message: String,
    #[serde(skip)]
    status: StatusCode,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self)).into_response()
    }
}

pub(super) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/sittings", get(list_sittings))
        .route("/api/sittings/{id}", get(one_sitting))
        .fallback(not_found)
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(app)
}

async fn index() -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "no-cache")], Html(INDEX_HTML))
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    if app.is_ready() {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
    }
}

async fn list_sittings(State(app): State<Arc<App>>) -> Json<Vec<Arc<Summary>>> {
    Json(app.sittings().map(|s| s.summary()).collect())
}

async fn one_sitting(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<Arc<Summary>>, ApiError> {
    app.sitting(&SittingId::new(id.clone()))
        .map(|s| Json(s.summary()))
        .ok_or(ApiError {
            code: "no_such_sitting",
            message: format!("no sitting {id:?}"),
            status: StatusCode::NOT_FOUND,
        })
}

async fn not_found() -> ApiError {
    ApiError {
        code: "not_found",
        message: "no such resource".into(),
        status: StatusCode::NOT_FOUND,
    }
}
