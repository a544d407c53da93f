//! The minutes route: `GET /api/sittings/{id}/minutes?format=html|json|csv|pdf`, for the chair,
//! the vice-chairs and the clerks (the secretariat), made from the log on each request,
//! without the documents the caller may not read.

use super::App;
use super::http::{ApiError, authenticate, bearer, keeps_the_record, store_unavailable};
use crate::minutes::load::{LoadError, load};
use crate::minutes::render::{self, Lang, Table};
use crate::sitting::SittingId;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The minutes page holds no script and only its own inline styles.
const MINUTES_CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'";

pub(super) fn router() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new().routes(routes!(minutes))
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Format {
    Html,
    Json,
    Csv,
    Pdf,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct MinutesQuery {
    /// `html` (default), `json`, `csv` or `pdf`.
    #[param(value_type = Option<String>)]
    format: Option<Format>,
    /// `vi` (default) or `en`.
    #[param(value_type = Option<String>)]
    lang: Option<Lang>,
    /// For CSV: `attendance`, `speeches` or `roll_call`.
    #[param(value_type = Option<String>)]
    table: Option<Table>,
}

#[utoipa::path(
    get,
    path = "/api/sittings/{id}/minutes",
    tag = "record",
    params(("id" = String, Path, description = "The sitting"), MinutesQuery),
    responses(
        (status = 200, description = "The minutes (biên bản) as HTML, JSON, CSV (`table` = attendance, speeches or roll_call) or PDF", content((String = "text/html"), (Object = "application/json"), (String = "text/csv"), (Vec<u8> = "application/pdf"))),
        (status = 400, description = "Malformed request", body = ApiError),
        (status = 401, description = "Missing, expired or revoked token", body = ApiError),
        (status = 403, description = "Only the chair, a vice-chair or a clerk", body = ApiError),
        (status = 404, description = "No such sitting, document or version (or not readable by the caller)", body = ApiError),
        (status = 503, description = "Unavailable; try again shortly", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn minutes(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    query: Result<Query<MinutesQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let claims = authenticate(&app, bearer(&headers))?;
    let Query(q) = query
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", e.body_text()))?;
    let sitting = SittingId::new(id);
    let handle = app.sitting(&sitting).ok_or_else(super::http::not_found)?;
    keeps_the_record(&handle, &claims.sub, "export the minutes")?;
    let m = load(app.store(), &sitting, crate::clock::now_millis())
        .await
        .map_err(|e| match e {
            LoadError::Store(e) => store_unavailable(e),
            LoadError::NoSuchSitting(_) => super::http::not_found(),
            LoadError::Minutes(e) => {
                ApiError::new(StatusCode::CONFLICT, "no_minutes", e.to_string())
            }
        })?;
    // Documents the caller may not read stay out of their copy, as everywhere else.
    let roles: Vec<crate::sitting::Role> = handle
        .roster()
        .actor(&claims.sub)
        .map(|a| a.roles.iter().copied().collect())
        .unwrap_or_default();
    let mut m = m;
    m.documents
        .retain(|d| crate::sitting::readable(&d.access, &roles));
    let lang = q.lang.unwrap_or(Lang::Vi);
    let format = q.format.unwrap_or(Format::Html);
    let rendered = match format {
        Format::Html => Ok(render::html(&m, lang)),
        Format::Json => render::json(&m),
        Format::Csv => render::csv(&m, q.table.unwrap_or(Table::RollCall), lang),
        Format::Pdf => crate::minutes::pdf::pdf(&m, lang),
    };
    let body = rendered.map_err(|e| {
        tracing::error!(error = %e, "rendering the minutes");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the minutes could not be rendered",
        )
    })?;
    let (kind, ext) = match format {
        Format::Html => ("text/html; charset=utf-8", "html"),
        Format::Json => ("application/json", "json"),
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
        Format::Pdf => ("application/pdf", "pdf"),
    };
    let suffix = match (format, q.table.unwrap_or(Table::RollCall)) {
        (Format::Csv, Table::Attendance) => "-diem-danh",
        (Format::Csv, Table::Speeches) => "-phat-bieu",
        (Format::Csv, Table::RollCall) => "-bieu-quyet",
        _ => "",
    };
    // The sitting id is checked against the roster's sittings, but goes in a header: keep
    // only safe characters.
    let name: String = sitting
        .as_str()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .collect();
    let disposition = format!("attachment; filename=\"bien-ban-{name}{suffix}.{ext}\"");
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(MINUTES_CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
