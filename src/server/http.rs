//! HTTP routes: health, readiness, the status page, public sitting summaries, login and
//! logout, WebSocket tickets and the upgrade (credentials and Origin checked before
//! upgrading), and the security headers on every response.

use super::App;
use crate::audit::AuditEntry;
use crate::auth::authority::LoginError;
use crate::auth::{Claims, TokenError};
use crate::sitting::{Role, SittingId};
use crate::writer::summary::Summary;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// An error answered as JSON `{code, message}`; internals are logged, never sent.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct ApiError {
    /// What went wrong, as a stable code.
    #[schema(value_type = String)]
    code: &'static str,
    /// For people.
    message: String,
    #[serde(skip)]
    status: StatusCode,
}

impl ApiError {
    pub(super) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            status,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self)).into_response()
    }
}

/// What pages may load and do: scripts, styles and connections from this server only, no
/// inline script, no framing. Media elements play the streams WebRTC makes (`blob:`,
/// `mediastream:`).
pub(super) const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob: mediastream:; \
     connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// The headers every response carries (unless a route set its own): `tls` adds HSTS.
fn security_headers(tls: bool) -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = vec![
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static("camera=(self), microphone=(self), geolocation=()"),
        ),
    ];
    if tls {
        headers.push((
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        ));
    }
    headers
}

/// Every documented route (all but the WebSocket upgrade and the pages), with the OpenAPI
/// description made from their annotations.
pub(super) fn api(max_sdp_bytes: usize) -> OpenApiRouter<Arc<App>> {
    super::openapi::frame()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(media_health))
        .routes(routes!(stage_times))
        .routes(routes!(metrics))
        .routes(routes!(list_sittings))
        .routes(routes!(one_sitting))
        .routes(routes!(roster))
        .routes(routes!(list_checkpoints, make_checkpoint))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(ws_ticket))
        .routes(routes!(audit_trail))
        .merge(super::rest::router())
        .merge(super::webhooks::router())
        .merge(super::sittings::router())
        .merge(super::whip::router(max_sdp_bytes))
        .merge(super::passkeys::router())
        .merge(super::minutes::router())
        .merge(super::documents::router())
}

pub(super) fn router(app: Arc<App>, tls: bool) -> Router {
    let trace = tower_http::trace::TraceLayer::new_for_http().make_span_with(
        // Log the path only: the query string is nobody's business in a log.
        |req: &axum::http::Request<_>| {
            tracing::info_span!("http", method = %req.method(), path = %req.uri().path())
        },
    );
    let (api, spec) = api(app.max_sdp_bytes()).split_for_parts();
    let spec: Arc<str> = Arc::from(spec.to_json().unwrap_or_default());
    let router = Router::new()
        .route("/ws", get(websocket))
        .route(
            "/api/openapi.json",
            get(move || {
                let spec = spec.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        spec.to_string(),
                    )
                }
            }),
        )
        .merge(api)
        .fallback(super::assets::serve)
        .layer(DefaultBodyLimit::max(16 * 1024));
    let mut router = router;
    for (name, value) in security_headers(tls) {
        router = router
            .layer(tower_http::set_header::SetResponseHeaderLayer::if_not_present(name, value));
    }
    router.layer(trace).with_state(app)
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses(
        (status = 200, description = "The process is up", body = String, content_type = "text/plain"),
    ),
)]
async fn healthz() -> &'static str {
    "ok"
}

/// The metrics in Prometheus' text format (see [`crate::telemetry`]).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "Prometheus text format (`docs/operations.md`)", body = String, content_type = "text/plain"),
        (status = 503, description = "Metrics are not exported by this process", body = ApiError),
    ),
)]
async fn metrics(State(app): State<Arc<App>>) -> Response {
    if let Some(m) = app.media() {
        let stats = m.driver().stats().await.ok();
        crate::telemetry::media(
            m.open_legs(),
            &m.load(),
            &m.driver().loads(),
            stats.as_ref(),
        );
    }
    match crate::telemetry::handle() {
        Some(h) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            )],
            h.render() + &crate::telemetry::render_stages(),
        )
            .into_response(),
        None => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics_unavailable",
            "metrics are not exported by this process",
        )
        .into_response(),
    }
}

/// The SFU's load for operators and monitoring: utilisation of its I/O threads, the
/// capacity estimated from it (packets/s and receivers), what is shed, and legs open.
#[utoipa::path(
    get,
    path = "/healthz/media",
    tag = "operations",
    responses(
        (status = 200, description = "`{sitting, legs, load, threads}`: the SFU's utilisation, estimated capacity and what it sheds, together and per I/O thread", body = Object),
        (status = 503, description = "The media plane is not running", body = String, content_type = "text/plain"),
    ),
)]
async fn media_health(State(app): State<Arc<App>>) -> Response {
    match app.media() {
        Some(m) => Json(serde_json::json!({
            "sitting": m.sitting(),
            "legs": m.open_legs(),
            "load": m.load(),
            "threads": m.driver().loads(),
        }))
        .into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "media plane not running").into_response(),
    }
}

/// Where the control plane's time goes, per stage, since the server started
/// ([`crate::stages`]): cumulative counts in fixed buckets, to be differenced by the reader.
#[utoipa::path(
    get,
    path = "/healthz/stages",
    tag = "operations",
    responses(
        (status = 200, description = "`{stages}`: cumulative counts per stage in fixed buckets", body = Object),
    ),
)]
async fn stage_times() -> Response {
    Json(serde_json::json!({ "stages": crate::stages::snapshot() })).into_response()
}

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready for traffic", body = String, content_type = "text/plain"),
        (status = 503, description = "Starting or stopping", body = String, content_type = "text/plain"),
    ),
)]
async fn readyz(State(app): State<Arc<App>>) -> Response {
    if app.is_ready() {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
    }
}

#[utoipa::path(
    get,
    path = "/api/sittings",
    tag = "sittings",
    responses(
        (status = 200, description = "Every sitting's public summary (counts, never a ballot)", body = Vec<Object>),
    ),
)]
async fn list_sittings(State(app): State<Arc<App>>) -> Json<Vec<Arc<Summary>>> {
    Json(app.sittings().iter().map(|s| s.summary()).collect())
}

#[utoipa::path(
    get,
    path = "/api/sittings/{id}",
    tag = "sittings",
    params(("id" = String, Path, description = "The sitting")),
    responses(
        (status = 200, description = "The sitting's public summary", body = Object),
        (status = 404, description = "No such sitting", body = ApiError),
    ),
)]
async fn one_sitting(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<Arc<Summary>>, ApiError> {
    app.sitting(&SittingId::new(id.clone()))
        .map(|s| Json(s.summary()))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no_such_sitting",
                format!("no sitting {id:?}"),
            )
        })
}

#[utoipa::path(
    get,
    path = "/api/sittings/{id}/roster",
    tag = "sittings",
    params(("id" = String, Path, description = "The sitting")),
    responses(
        (status = 200, description = "Delegations and actors with their roles (fixed for the sitting; cacheable)", body = Object),
        (status = 404, description = "No such sitting", body = ApiError),
    ),
)]
async fn roster(State(app): State<Arc<App>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let handle = app.sitting(&SittingId::new(id.clone())).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_such_sitting",
            format!("no sitting {id:?}"),
        )
    })?;
    // The roster never changes during a sitting: let clients and proxies cache it.
    Ok((
        [(header::CACHE_CONTROL, "public, max-age=3600")],
        Json(handle.roster().clone()),
    )
        .into_response())
}

pub(super) fn no_such_sitting(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_such_sitting",
        format!("no sitting {id:?}"),
    )
}

pub(super) fn store_unavailable(e: crate::store::StoreError) -> ApiError {
    tracing::error!(error = %e, "store failed");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "try again shortly",
    )
}

/// The signed checkpoints of a sitting's log (public: they hold hashes only, and anyone may
/// check them, with `dienhong verify --checkpoint`, against the log later).
#[utoipa::path(
    get,
    path = "/api/sittings/{id}/checkpoints",
    tag = "record",
    params(("id" = String, Path, description = "The sitting")),
    responses(
        (status = 200, description = "The signed checkpoints of the log (hashes only)", body = Vec<Object>),
        (status = 404, description = "No such sitting", body = ApiError),
        (status = 503, description = "Unavailable; try again shortly", body = ApiError),
    ),
)]
async fn list_checkpoints(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<Vec<crate::checkpoint::Checkpoint>>, ApiError> {
    let sitting = SittingId::new(id.clone());
    if app.sitting(&sitting).is_none() {
        return Err(no_such_sitting(&id));
    }
    app.store()
        .checkpoints(&sitting)
        .await
        .map(Json)
        .map_err(store_unavailable)
}

/// Signs a checkpoint of the log's head now: for the chair, a vice-chair or a clerk.
#[utoipa::path(
    post,
    path = "/api/sittings/{id}/checkpoints",
    tag = "record",
    params(("id" = String, Path, description = "The sitting")),
    responses(
        (status = 201, description = "A checkpoint of the head, signed now", body = Object),
        (status = 401, description = "Missing, expired or revoked token", body = ApiError),
        (status = 403, description = "Only the chair, a vice-chair or a clerk", body = ApiError),
        (status = 404, description = "No such sitting", body = ApiError),
        (status = 503, description = "Unavailable; try again shortly", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn make_checkpoint(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<crate::checkpoint::Checkpoint>), ApiError> {
    let claims = authenticate(&app, bearer(&headers))?;
    let sitting = SittingId::new(id.clone());
    let handle = app.sitting(&sitting).ok_or_else(|| no_such_sitting(&id))?;
    keeps_the_record(&handle, &claims.sub, "ask for a checkpoint")?;
    let head = handle.head().await.map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the sitting is not running",
        )
    })?;
    let cp = app.signer().sign(
        &sitting,
        handle.epoch(),
        head.seq,
        &head.hash,
        crate::clock::now_millis(),
        crate::checkpoint::Reason::OnDemand,
    );
    app.store()
        .add_checkpoint(&cp)
        .await
        .map_err(store_unavailable)?;
    tracing::info!(sitting = %sitting, seq = cp.seq, actor = %claims.sub, "checkpoint signed on demand");
    app.audit(AuditEntry::CheckpointAsked {
        actor: claims.sub,
        sitting,
        seq: cp.seq,
    });
    Ok((StatusCode::CREATED, Json(cp)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    /// Entries after this number (0).
    after: Option<u64>,
    /// At most this many (1,000; at most 10,000).
    limit: Option<u32>,
}

/// The audit trail, for the chair, a vice-chair or a clerk of any sitting: entries after
/// `after` (0), at most `limit` (1,000, at most 10,000).
#[utoipa::path(
    get,
    path = "/api/audit",
    tag = "record",
    params(AuditQuery),
    responses(
        (status = 200, description = "Audit entries in order", body = Vec<Object>),
        (status = 401, description = "Missing, expired or revoked token", body = ApiError),
        (status = 403, description = "Only the chair, a vice-chair or a clerk", body = ApiError),
        (status = 503, description = "Unavailable; try again shortly", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn audit_trail(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Vec<crate::audit::AuditRecord>>, ApiError> {
    let claims = authenticate(&app, bearer(&headers))?;
    keeps_a_record(&app, &claims.sub, "read the audit trail")?;
    let limit = q.limit.unwrap_or(1000).clamp(1, 10_000);
    app.store()
        .audit_after(q.after.unwrap_or(0), limit)
        .await
        .map(Json)
        .map_err(store_unavailable)
}

/// Refuses, as `not_permitted`, anyone but the chair, a vice-chair or a clerk of some
/// sitting from doing `what`.
pub(super) fn keeps_a_record(
    app: &App,
    actor: &crate::sitting::ActorId,
    what: &str,
) -> Result<(), ApiError> {
    let may = app
        .roles_of(actor)
        .iter()
        .any(|r| matches!(r, Role::Chair | Role::ViceChair | Role::Clerk));
    if may {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_permitted",
            format!("only the chair, a vice-chair or a clerk may {what}"),
        ))
    }
}

/// Refuses, as `not_permitted`, anyone but the sitting's chair, vice-chairs and clerks (who
/// keep its record) from doing `what`.
pub(super) fn keeps_the_record(
    handle: &crate::writer::SittingHandle,
    actor: &crate::sitting::ActorId,
    what: &str,
) -> Result<(), ApiError> {
    let may = handle.roster().actor(actor).is_some_and(|a| {
        a.roles
            .iter()
            .any(|r| matches!(r, Role::Chair | Role::ViceChair | Role::Clerk))
    });
    if may {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_permitted",
            format!("only the chair, a vice-chair or a clerk may {what}"),
        ))
    }
}

/// A JSON body, or `invalid_request` saying what is wrong with it (`too_large`, 413, past
/// the route's limit on bodies).
pub(super) fn json_body<T>(
    body: Result<Json<T>, axum::extract::rejection::JsonRejection>,
) -> Result<T, ApiError> {
    body.map(|Json(b)| b).map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", e.body_text())
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", e.body_text())
        }
    })
}

pub(super) fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    /// The account's code (`DB001`, `CHAIR`, `CLERK1`...).
    code: String,
    /// Its password.
    password: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct LoginResponse {
    /// Send as `Authorization: Bearer <token>`.
    token: String,
    /// The account.
    actor: String,
    /// Its roles in any sitting (`chair`, `vice_chair`, `clerk`, `deputy`,
    /// `site_operator`, `observer`).
    #[schema(value_type = Vec<String>)]
    roles: Vec<Role>,
    /// When the token ends, in milliseconds since 1970.
    expires_at: i64,
}

#[utoipa::path(
    post,
    path = "/api/login",
    tag = "accounts",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "A bearer token", body = LoginResponse),
        (status = 400, description = "Malformed body", body = ApiError),
        (status = 401, description = "Wrong code or password", body = ApiError),
        (status = 429, description = "Too many failed logins", body = ApiError),
        (status = 503, description = "Unavailable; try again shortly", body = ApiError),
    ),
)]
async fn login(
    State(app): State<Arc<App>>,
    body: Result<Json<LoginRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<LoginResponse>, ApiError> {
    let Json(req) =
        body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", e.body_text()))?;
    if req.code.is_empty() || req.code.len() > 64 || req.password.len() > 1024 {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_credentials",
            "wrong code or password",
        ));
    }
    let roles = app.roles_of(&crate::sitting::ActorId::new(&req.code));
    match app
        .authority()
        .login(&req.code, &req.password, roles, crate::clock::now_millis())
        .await
    {
        Ok((token, claims)) => {
            tracing::info!(actor = %claims.sub, "login");
            app.audit(AuditEntry::LoggedIn {
                actor: claims.sub.clone(),
            });
            Ok(Json(LoginResponse {
                token,
                actor: claims.sub.0,
                roles: claims.roles,
                expires_at: claims.exp.0,
            }))
        }
        Err(LoginError::BadCredentials) => {
            tracing::info!(code = %req.code, "login refused");
            app.audit(AuditEntry::login_failed(&req.code));
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "bad_credentials",
                "wrong code or password",
            ))
        }
        Err(LoginError::TooManyAttempts) => Err({
            app.audit(AuditEntry::login_throttled(&req.code));
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                "too many failed logins; wait a minute",
            )
        }),
        Err(LoginError::Store(e)) => {
            tracing::error!(error = %e, "login: store failed");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "try again shortly",
            ))
        }
    }
}

pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

fn token_error(e: TokenError) -> ApiError {
    let code = match e {
        TokenError::Expired => "token_expired",
        TokenError::Revoked => "token_revoked",
        TokenError::Malformed | TokenError::BadSignature => "invalid_token",
    };
    ApiError::new(StatusCode::UNAUTHORIZED, code, e.to_string())
}

pub(super) fn authenticate(app: &App, token: Option<&str>) -> Result<Claims, ApiError> {
    let token = token
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "missing_token", "log in first"))?;
    app.authority()
        .verify(token, crate::clock::now_millis())
        .map_err(token_error)
}

#[utoipa::path(
    post,
    path = "/api/logout",
    tag = "accounts",
    responses(
        (status = 204, description = "The token is revoked, and the account's media connections closed"),
        (status = 401, description = "Missing, expired or revoked token", body = ApiError),
        (status = 503, description = "Unavailable; try again shortly", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn logout(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<StatusCode, ApiError> {
    let claims = authenticate(&app, bearer(&headers))?;
    app.authority().logout(&claims).await.map_err(|e| {
        tracing::error!(error = %e, "logout: store failed");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "try again")
    })?;
    if let Some(media) = app.media() {
        media.end_sessions_of(&claims.sub).await;
    }
    tracing::info!(actor = %claims.sub, "logout");
    app.audit(AuditEntry::LoggedOut { actor: claims.sub });
    Ok(StatusCode::NO_CONTENT)
}

/// Who the bearer of this token is: pages ask on load, so an expired or revoked token sends
/// the user back to log in instead of failing later in the middle of something.
#[utoipa::path(
    get,
    path = "/api/me",
    tag = "accounts",
    responses(
        (status = 200, description = "Who the bearer is", body = Me),
        (status = 401, description = "Missing, expired or revoked token", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn me(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Json<Me>, ApiError> {
    let claims = authenticate(&app, bearer(&headers))?;
    Ok(Json(Me {
        actor: claims.sub.0,
        roles: claims.roles,
        expires_at: claims.exp.0,
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
struct Me {
    /// The account.
    actor: String,
    /// Its roles in any sitting.
    #[schema(value_type = Vec<String>)]
    roles: Vec<Role>,
    /// When the token ends, in milliseconds since 1970.
    expires_at: i64,
}

/// Whether `origin` is this server itself (the pages it serves), whatever name and port it
/// was reached by: `http://` or `https://` and exactly the request's `Host`.
fn same_origin(origin: &str, host: Option<&str>) -> bool {
    let Some(host) = host else { return false };
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|rest| rest.eq_ignore_ascii_case(host))
}

#[derive(Deserialize)]
struct WsQuery {
    /// A single-use ticket from `POST /api/ws-ticket` (browsers).
    ticket: Option<String>,
    /// Refused: a token in a URL ends up in logs.
    token: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct TicketResponse {
    /// Open `/ws?ticket=<ticket>` with it, once.
    ticket: String,
    /// How long it works.
    expires_in_ms: i64,
}

/// A single-use ticket to open the WebSocket, for the bearer of a valid token.
#[utoipa::path(
    post,
    path = "/api/ws-ticket",
    tag = "accounts",
    responses(
        (status = 200, description = "A single-use ticket to open `/ws` from a browser", body = TicketResponse),
        (status = 401, description = "Missing, expired or revoked token", body = ApiError),
        (status = 503, description = "Unavailable; try again shortly", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn ws_ticket(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<Json<TicketResponse>, ApiError> {
    let token = bearer(&headers);
    authenticate(&app, token)?;
    let token = token.unwrap_or_default();
    let ticket = app
        .tickets()
        .issue(token, crate::clock::now_millis())
        .map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "too many connections are being opened; try again shortly",
            )
        })?;
    Ok(Json(TicketResponse {
        ticket,
        expires_in_ms: app.tickets().ttl_ms(),
    }))
}

async fn websocket(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(query): Query<WsQuery>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let allowed = origin
            .to_str()
            .is_ok_and(|o| same_origin(o, host) || app.origin_allowed(o));
        if !allowed {
            tracing::warn!(origin = ?origin, "WebSocket from a foreign origin refused");
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                "this origin may not open the control connection",
            ));
        }
    }
    if query.token.is_some() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "token_in_url",
            "tokens are not accepted in URLs: send an Authorization header, or open with a ticket from POST /api/ws-ticket",
        ));
    }
    let redeemed = match (bearer(&headers), query.ticket.as_deref()) {
        (Some(token), _) => Some(token.to_owned()),
        (None, Some(ticket)) => Some(
            app.tickets()
                .redeem(ticket, crate::clock::now_millis())
                .map_err(|_| {
                    ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        "invalid_ticket",
                        "the ticket is unknown, used or expired: ask for a new one",
                    )
                })?,
        ),
        (None, None) => None,
    };
    let claims = authenticate(&app, redeemed.as_deref())?;
    let limits = app.limits().clone();
    // Transport cap above the message limit, so an oversize message is read and answered
    // with close 1009 rather than dropped; anything beyond the cap drops the connection.
    let cap = limits.max_message_bytes.saturating_mul(4).max(64 * 1024);
    // Small buffers: a parliament day keeps thousands of connections open, most of them
    // idle; the defaults (128 KiB each way) would cost gigabytes at 10,000 connections.
    Ok(ws
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0)
        .max_message_size(cap)
        .max_frame_size(cap)
        .on_upgrade(move |socket| crate::control::session::run(socket, app, claims, limits)))
}

#[cfg(test)]
mod tests {
    use super::same_origin;

    #[test]
    fn a_page_of_this_server_is_its_own_origin_and_another_site_is_not() {
        assert!(same_origin(
            "http://127.0.0.1:18080",
            Some("127.0.0.1:18080")
        ));
        assert!(same_origin(
            "https://hop.quochoi.vn",
            Some("hop.quochoi.vn")
        ));
        assert!(!same_origin("http://evil.example", Some("127.0.0.1:18080")));
        assert!(!same_origin(
            "http://127.0.0.1:18081",
            Some("127.0.0.1:18080")
        ));
        assert!(!same_origin(
            "http://127.0.0.1:18080.evil",
            Some("127.0.0.1:18080")
        ));
        assert!(!same_origin("null", Some("127.0.0.1:18080")));
        assert!(!same_origin("http://127.0.0.1:18080", None));
    }
}
