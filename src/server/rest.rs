//! The REST face of the control plane, for systems that do not hold a WebSocket open:
//! commands with an `Idempotency-Key` (the WebSocket's `command_id`, with the same
//! durability, codes and retry rule), the state at the head, and the log's events from a
//! sequence number, a page at a time, as the caller's roles may see them.

use super::App;
use super::http::{ApiError, authenticate, bearer, json_body, no_such_sitting};
use crate::auth::passkey::StepUpProof;
use crate::control::commands;
use crate::sitting::{self, ActorId, Code, SittingId};
use crate::writer::{SittingHandle, SubmitError};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use std::num::NonZeroU32;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The header that carries a command's id.
pub(super) const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Events per page by default, and at most.
const PAGE: u32 = 500;
const MAX_PAGE: u32 = 1000;

pub(super) fn router() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(post_command))
        .routes(routes!(state))
        .routes(routes!(events))
}

/// Commands per actor over REST: the WebSocket's per-connection rate and burst, kept per
/// account (a REST caller has no connection to hold it).
pub struct CommandLimiter(DefaultKeyedRateLimiter<ActorId>);

impl CommandLimiter {
    /// `per_sec` sustained, `burst` at once (each at least 1).
    pub fn new(per_sec: u32, burst: u32) -> CommandLimiter {
        let per_sec = NonZeroU32::new(per_sec).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
        CommandLimiter(RateLimiter::keyed(
            Quota::per_second(per_sec).allow_burst(burst),
        ))
    }

    /// Whether `actor` may send one more command now.
    fn admit(&self, actor: &ActorId) -> bool {
        let ok = self.0.check_key(actor).is_ok();
        // Keys of accounts idle long enough to be full again are dropped now and then.
        if self.0.len() > 4096 {
            self.0.retain_recent();
        }
        ok
    }
}

/// A command sent over REST.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CommandRequest {
    /// The command, exactly as in a WebSocket `command` message (`docs/protocol.md` §4),
    /// for example `{"command": "cast_ballot", "vote": 1, "choice": "yes"}`.
    command: sitting::Command,
    /// A ballot's passkey confirmation, when the vote asks for one (`POST /api/step-up`).
    #[schema(value_type = Option<Object>)]
    #[serde(default)]
    step_up: Option<StepUpProof>,
}

/// A command made durable.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(super) struct CommandAccepted {
    /// The `Idempotency-Key` it was sent with.
    command_id: String,
    /// The sequence number of its last event (the head, if it caused none): every event up
    /// to it is durable.
    seq: u64,
}

/// Sends a command; answers once it is durable, or refused.
///
/// The `Idempotency-Key` is the command's id: sending the same key again (after a timeout,
/// a dropped connection or a server restart) answers the first outcome and does nothing
/// twice. Refusals carry the same codes as the WebSocket's `error` messages.
#[utoipa::path(
    post,
    path = "/api/sittings/{id}/commands",
    tag = "commands",
    params(
        ("id" = String, Path, description = "The sitting"),
        ("Idempotency-Key" = String, Header, description = "The command's id: 1 to 64 printable ASCII characters, unique per account"),
    ),
    request_body = CommandRequest,
    responses(
        (status = 200, description = "Durable", body = CommandAccepted),
        (status = 400, description = "Malformed body or missing or invalid `Idempotency-Key`", body = ApiError),
        (status = 401, description = "Missing, expired or revoked token", body = ApiError),
        (status = 403, description = "Not permitted (`not_permitted`, `unknown_actor`: not in this sitting's roster, `no_access`, `step_up_*`)", body = ApiError),
        (status = 404, description = "No such sitting", body = ApiError),
        (status = 409, description = "Refused by the rules of procedure (`wrong_phase`, `vote_closed`, `no_quorum`, ...)", body = ApiError),
        (status = 413, description = "A body over 16 KiB (`too_large`)", body = ApiError),
        (status = 422, description = "Invalid (`invalid`, `no_such_blob`, `blob_mismatch`, `step_up_unexpected`)", body = ApiError),
        (status = 429, description = "Too many commands from this account; see `Retry-After`", body = ApiError),
        (status = 503, description = "Not recorded (`storage_unavailable`, `unavailable`): retry with the same key", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn post_command(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<CommandRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<CommandAccepted>, Response> {
    let claims = authenticate(&app, bearer(&headers)).map_err(IntoResponse::into_response)?;
    let handle = sitting_handle(&app, &id).map_err(IntoResponse::into_response)?;
    let key = headers
        .get(IDEMPOTENCY_KEY)
        .and_then(|v| v.to_str().ok())
        .filter(|k| commands::valid_client_id(k))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_command_id",
                "send an Idempotency-Key header of 1 to 64 printable ASCII characters",
            )
            .into_response()
        })?
        .to_owned();
    let request = json_body(body).map_err(IntoResponse::into_response)?;
    if !app.command_limiter().admit(&claims.sub) {
        return Err((
            [(header::RETRY_AFTER, HeaderValue::from_static("1"))],
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many commands; slow down",
            ),
        )
            .into_response());
    }
    let (outcome, _) = commands::execute(
        &*app,
        &handle,
        &claims.sub,
        &key,
        request.command,
        request.step_up,
    )
    .await;
    match outcome {
        Ok(ack) => Ok(Json(CommandAccepted {
            command_id: key,
            seq: ack.seq,
        })),
        Err(e) => Err(refusal(e)),
    }
}

/// The HTTP answer to a command that was not applied.
fn refusal(e: SubmitError) -> Response {
    match e {
        SubmitError::Rejected(r) => {
            let status = match r.code {
                Code::NotPermitted
                | Code::UnknownActor
                | Code::NoAccess
                | Code::StepUpRequired
                | Code::StepUpMismatch
                | Code::StepUpUsed
                | Code::StepUpExpired
                | Code::StepUpInvalid => StatusCode::FORBIDDEN,
                Code::Invalid | Code::NoSuchBlob | Code::BlobMismatch | Code::StepUpUnexpected => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                _ => StatusCode::CONFLICT,
            };
            ApiError::new(status, r.code.as_str(), r.detail).into_response()
        }
        SubmitError::Storage => unavailable(
            "storage_unavailable",
            "not recorded; retry with the same Idempotency-Key",
        ),
        SubmitError::Unavailable => unavailable(
            "unavailable",
            "the sitting is not available; retry with the same Idempotency-Key",
        ),
    }
}

fn unavailable(code: &'static str, message: &str) -> Response {
    (
        [(header::RETRY_AFTER, HeaderValue::from_static("1"))],
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, message),
    )
        .into_response()
}

fn sitting_handle(app: &App, id: &str) -> Result<SittingHandle, ApiError> {
    app.sitting(&SittingId::new(id))
        .ok_or_else(|| no_such_sitting(id))
}

/// The state of the sitting at the log's head, as the caller's roles may see it: the same
/// `snapshot` message a WebSocket subscriber gets (`docs/protocol.md` §2), without the roster
/// (`GET /api/sittings/{id}/roster`).
#[utoipa::path(
    get,
    path = "/api/sittings/{id}/state",
    tag = "sittings",
    params(("id" = String, Path, description = "The sitting")),
    responses(
        (status = 200, description = "`{type: \"snapshot\", v, sitting, epoch, seq, state}`", body = Object),
        (status = 401, description = "Missing, expired or revoked token", body = ApiError),
        (status = 404, description = "No such sitting", body = ApiError),
        (status = 503, description = "The sitting is not running", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn state(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let claims = authenticate(&app, bearer(&headers))?;
    let handle = sitting_handle(&app, &id)?;
    let (_, text) = handle
        .snapshot_message(&claims.roles)
        .await
        .map_err(|_| not_running())?;
    Ok(json_text(text.to_string()))
}

fn not_running() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "the sitting is not running",
    )
}

fn json_text(text: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        text,
    )
        .into_response()
}

/// Which events to read.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct EventsQuery {
    /// Events after this sequence number (0: from the start).
    after: Option<u64>,
    /// At most this many (500 by default, at most 1,000).
    limit: Option<u32>,
}

/// A page of the log.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(super) struct EventsPage {
    /// The sitting.
    sitting: String,
    /// The log's epoch: a different epoch means a different log; start again from 0.
    epoch: String,
    /// The log's head when read.
    head: u64,
    /// The events, in order: `{seq, at, actor, event}` as in the WebSocket's `events`
    /// message; an event about a document the caller may not read is `{"type": "withheld"}`
    /// with its number and time.
    #[schema(value_type = Vec<Object>)]
    events: Vec<serde_json::Value>,
    /// Where the next page starts (`after`), or null at the head.
    next_after: Option<u64>,
}

/// The log's events after a sequence number, in order, a page at a time, as the caller's
/// roles may see them.
#[utoipa::path(
    get,
    path = "/api/sittings/{id}/events",
    tag = "sittings",
    params(("id" = String, Path, description = "The sitting"), EventsQuery),
    responses(
        (status = 200, description = "A page of events", body = EventsPage),
        (status = 401, description = "Missing, expired or revoked token", body = ApiError),
        (status = 404, description = "No such sitting", body = ApiError),
        (status = 503, description = "The log cannot be read now", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn events(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> Result<Response, ApiError> {
    let claims = authenticate(&app, bearer(&headers))?;
    let handle = sitting_handle(&app, &id)?;
    let after = q.after.unwrap_or(0);
    let limit = q.limit.unwrap_or(PAGE).clamp(1, MAX_PAGE);
    let page = app
        .store()
        .events_after(handle.id(), after, limit)
        .await
        .map_err(super::http::store_unavailable)?;
    // Read after the page, so the head is at or past its last event.
    let head = handle.head().await.map_err(|_| not_running())?.seq;
    let access = handle.document_access();
    let last = page.last().map(|e| e.seq);
    let mut entries = String::from("[");
    for (i, e) in page.iter().enumerate() {
        if i > 0 {
            entries.push(',');
        }
        entries.push_str(&crate::writer::visible_entry(e, &claims.roles, &access));
    }
    entries.push(']');
    // The entries are JSON already: the page is put together around them, not re-parsed.
    let next_after = match last {
        Some(seq) if seq < head => seq.to_string(),
        _ => "null".to_owned(),
    };
    Ok(json_text(format!(
        r#"{{"sitting":{},"epoch":{},"head":{head},"events":{entries},"next_after":{next_after}}}"#,
        json_string(handle.id().as_str()),
        json_string(handle.epoch()),
    )))
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}
