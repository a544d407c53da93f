//! HTTP routes: health, readiness, the status page, public sitting summaries, login and
//! logout, WebSocket tickets and the upgrade (credentials and Origin checked before
//! upgrading), and the security headers on every response.

use super::App;
use super::summary::Summary;
use crate::audit::AuditEntry;
use crate::auth::authority::LoginError;
use crate::auth::{Claims, TokenError};
use crate::sitting::{Role, SittingId};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// An error answered as JSON `{code, message}`; internals are logged, never sent.
#[derive(Debug, Serialize)]
pub(super) struct ApiError {
    code: &'static str,
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

pub(super) fn router(app: Arc<App>, tls: bool) -> Router {
    let max_sdp_bytes = app.max_sdp_bytes();
    let trace = tower_http::trace::TraceLayer::new_for_http().make_span_with(
        // Log the path only: the query string is nobody's business in a log.
        |req: &axum::http::Request<_>| {
            tracing::info_span!("http", method = %req.method(), path = %req.uri().path())
        },
    );
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/healthz/media", get(media_health))
        .route("/healthz/stages", get(stage_times))
        .route("/metrics", get(metrics))
        .route("/api/sittings", get(list_sittings))
        .route("/api/sittings/{id}", get(one_sitting))
        .route("/api/sittings/{id}/roster", get(roster))
        .route(
            "/api/sittings/{id}/checkpoints",
            get(list_checkpoints).post(make_checkpoint),
        )
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
        .route("/api/me", get(me))
        .route("/api/ws-ticket", post(ws_ticket))
        .route("/api/audit", get(audit_trail))
        .route("/ws", get(websocket))
        .merge(super::whip::router(max_sdp_bytes))
        .merge(super::passkeys::router())
        .merge(super::minutes::router())
        .merge(super::documents::router())
        .fallback(super::assets::serve)
        .layer(DefaultBodyLimit::max(16 * 1024));
    let mut router = router;
    for (name, value) in security_headers(tls) {
        router = router
            .layer(tower_http::set_header::SetResponseHeaderLayer::if_not_present(name, value));
    }
    router.layer(trace).with_state(app)
}

async fn healthz() -> &'static str {
    "ok"
}

/// The metrics in Prometheus' text format (see [`crate::telemetry`]).
async fn metrics(State(app): State<Arc<App>>) -> Response {
    if let Some(m) = app.media() {
        crate::telemetry::media(m.open_legs(), &m.load());
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

/// The SFU's load for operators and monitoring: utilisation of its I/O thread, the
/// capacity estimated from it (packets/s and receivers), what is shed, and legs open.
async fn media_health(State(app): State<Arc<App>>) -> Response {
    match app.media() {
        Some(m) => Json(serde_json::json!({
            "sitting": m.sitting(),
            "legs": m.open_legs(),
            "load": m.load(),
        }))
        .into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "media plane not running").into_response(),
    }
}

/// Where the control plane's time goes, per stage, since the server started
/// ([`crate::stages`]): cumulative counts in fixed buckets, to be differenced by the reader.
async fn stage_times() -> Response {
    Json(serde_json::json!({ "stages": crate::stages::snapshot() })).into_response()
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
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no_such_sitting",
                format!("no sitting {id:?}"),
            )
        })
}

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

fn no_such_sitting(id: &str) -> ApiError {
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
async fn make_checkpoint(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<crate::checkpoint::Checkpoint>), ApiError> {
    let claims = authenticate(&app, bearer(&headers))?;
    let sitting = SittingId::new(id.clone());
    let handle = app.sitting(&sitting).ok_or_else(|| no_such_sitting(&id))?;
    keeps_the_record(handle, &claims.sub, "ask for a checkpoint")?;
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
        super::now_millis(),
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

#[derive(Deserialize)]
struct AuditQuery {
    after: Option<u64>,
    limit: Option<u32>,
}

/// The audit trail, for the chair, a vice-chair or a clerk of any sitting: entries after
/// `after` (0), at most `limit` (1,000, at most 10,000).
async fn audit_trail(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Vec<crate::audit::AuditRecord>>, ApiError> {
    let claims = authenticate(&app, bearer(&headers))?;
    let may = app
        .roles_of(&claims.sub)
        .iter()
        .any(|r| matches!(r, Role::Chair | Role::ViceChair | Role::Clerk));
    if !may {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_permitted",
            "only the chair, a vice-chair or a clerk may read the audit trail",
        ));
    }
    let limit = q.limit.unwrap_or(1000).clamp(1, 10_000);
    app.store()
        .audit_after(q.after.unwrap_or(0), limit)
        .await
        .map(Json)
        .map_err(store_unavailable)
}

/// Refuses, as `not_permitted`, anyone but the sitting's chair, vice-chairs and clerks (who
/// keep its record) from doing `what`.
pub(super) fn keeps_the_record(
    handle: &super::SittingHandle,
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

/// A JSON body, or `invalid_request` saying what is wrong with it.
pub(super) fn json_body<T>(
    body: Result<Json<T>, axum::extract::rejection::JsonRejection>,
) -> Result<T, ApiError> {
    body.map(|Json(b)| b)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", e.body_text()))
}

pub(super) fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    code: String,
    password: String,
}

#[derive(Serialize)]
struct LoginResponse {
    token: String,
    actor: String,
    roles: Vec<Role>,
    expires_at: i64,
}

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
        .login(&req.code, &req.password, roles, super::now_millis())
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
        .verify(token, super::now_millis())
        .map_err(token_error)
}

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
async fn me(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Json<Me>, ApiError> {
    let claims = authenticate(&app, bearer(&headers))?;
    Ok(Json(Me {
        actor: claims.sub.0,
        roles: claims.roles,
        expires_at: claims.exp.0,
    }))
}

#[derive(Serialize)]
struct Me {
    actor: String,
    roles: Vec<Role>,
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

#[derive(Serialize)]
struct TicketResponse {
    ticket: String,
    expires_in_ms: i64,
}

/// A single-use ticket to open the WebSocket, for the bearer of a valid token.
async fn ws_ticket(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<Json<TicketResponse>, ApiError> {
    let token = bearer(&headers);
    authenticate(&app, token)?;
    let token = token.unwrap_or_default();
    let ticket = app
        .tickets()
        .issue(token, super::now_millis())
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
        (None, Some(ticket)) => Some(app.tickets().redeem(ticket, super::now_millis()).map_err(
            |_| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_ticket",
                    "the ticket is unknown, used or expired: ask for a new one",
                )
            },
        )?),
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
