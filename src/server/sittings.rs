//! Creating a sitting while the server runs: the secretariat (the chair, a vice-chair or a
//! clerk of a sitting) sends the same roster and agenda files as `dienhong create-sitting`,
//! and the sitting starts at once, with no restart.

use super::App;
use super::StartError;
use super::http::{ApiError, authenticate, bearer, json_body, keeps_a_record};
use crate::sitting::{Command, Roster, SittingId};
use crate::writer::summary::Summary;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Largest roster and agenda accepted, in bytes (a roster of 600 lines is about 40 KB).
const MAX_ROSTER_BYTES: usize = 512 * 1024;
const MAX_AGENDA_BYTES: usize = 64 * 1024;

pub(super) fn router() -> OpenApiRouter<Arc<App>> {
    // The roster is larger than the server's default limit on bodies.
    let (schemas, paths, create) = routes!(create);
    OpenApiRouter::new().routes((
        schemas,
        paths,
        create.layer(axum::extract::DefaultBodyLimit::max(
            MAX_ROSTER_BYTES + MAX_AGENDA_BYTES + 4096,
        )),
    ))
}

/// A sitting to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewSitting {
    /// Its id: 1 to 64 letters, digits, `-` or `_` (`kh15-k10-p2`).
    id: String,
    /// Its title.
    title: String,
    /// The roster, as the TSV file of `dienhong create-sitting`: a header, then `code`,
    /// `name`, `delegation`, `roles` (comma-separated) per line.
    roster: String,
    /// The agenda: one item per line.
    agenda: String,
}

/// Creates a sitting and starts it at once: it is listed, its WebSocket and REST commands
/// work, and the media plane follows it when it is the one in session. The procedure rules
/// in force are recorded with it. Accounts new to this server get their password with
/// `dienhong passwd`.
#[utoipa::path(
    post,
    path = "/api/sittings",
    tag = "sittings",
    request_body = NewSitting,
    responses(
        (status = 201, description = "Created and running: its public summary", body = Object),
        (status = 400, description = "Malformed body, id, roster or agenda (`invalid_request`, `invalid`)", body = ApiError),
        (status = 401, description = "Missing, expired or revoked token", body = ApiError),
        (status = 403, description = "Only the chair, a vice-chair or a clerk", body = ApiError),
        (status = 409, description = "A sitting with this id exists (`already_created`)", body = ApiError),
        (status = 413, description = "Body too large (`too_large`)", body = ApiError),
        (status = 503, description = "Unavailable; try again shortly", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn create(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Json<NewSitting>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Arc<Summary>>), ApiError> {
    let claims = authenticate(&app, bearer(&headers))?;
    keeps_a_record(&app, &claims.sub, "create a sitting")?;
    let req = json_body(body)?;
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "invalid", m);
    let id_ok = !req.id.is_empty()
        && req.id.len() <= 64
        && req
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !id_ok {
        return Err(bad(
            "the id must be 1 to 64 letters, digits, - or _".to_owned()
        ));
    }
    if req.roster.len() > MAX_ROSTER_BYTES || req.agenda.len() > MAX_AGENDA_BYTES {
        return Err(bad("the roster or the agenda is too large".to_owned()));
    }
    let actors = crate::config::parse_roster(&req.roster).map_err(|e| bad(e.to_string()))?;
    let roster =
        Roster::new(app.delegations().to_vec(), actors).map_err(|e| bad(format!("roster: {e}")))?;
    let command = Command::CreateSitting {
        sitting: SittingId::new(&req.id),
        title: req.title,
        roster,
        rules: app.rules().clone(),
        agenda: crate::config::parse_agenda(&req.agenda),
    };
    match app.add_sitting(&command).await {
        Ok(handle) => {
            app.audit(crate::audit::AuditEntry::SittingCreated {
                actor: claims.sub,
                sitting: handle.id().clone(),
            });
            Ok((StatusCode::CREATED, Json(handle.summary())))
        }
        Err(StartError::Demo(r)) => {
            let status = if r.code == crate::sitting::Code::AlreadyCreated {
                StatusCode::CONFLICT
            } else {
                StatusCode::BAD_REQUEST
            };
            Err(ApiError::new(status, r.code.as_str(), r.detail))
        }
        Err(e) => {
            tracing::error!(error = %e, "creating a sitting failed");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the sitting could not be created; try again shortly",
            ))
        }
    }
}
