//! WHIP (RFC 9725) and WHEP: a broadcast encoder or room app publishes with one HTTP
//! request, a TV system or hall display pulls the programme the same way.
//!
//! `POST /whip` or `/whep` with a bearer token and an `application/sdp` offer answers
//! `201 Created` with the SFU's answer and a `Location` for the session; `PATCH` there with
//! an `application/trickle-ice-sdpfrag` body adds trickled candidates; `DELETE` ends it.
//! STUN/TURN servers are announced in `Link` headers (`rel="ice-server"`).

use super::App;
use super::http::{ApiError, authenticate, bearer};
use crate::media::{Media, MediaError, Resource};
use crate::sitting::ActorId;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(Clone, Copy)]
enum Way {
    Whip,
    Whep,
}

impl Way {
    fn path(self) -> &'static str {
        match self {
            Way::Whip => "/whip",
            Way::Whep => "/whep",
        }
    }
}

pub(super) fn router(max_sdp_bytes: usize) -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(publish))
        .routes(routes!(play))
        .routes(routes!(end_publishing, trickle_publishing))
        .routes(routes!(end_playing, trickle_playing))
        .layer(DefaultBodyLimit::max(max_sdp_bytes))
}

/// Publishes (WHIP): the offer in, the SFU's answer out, with the session's `Location`.
#[utoipa::path(
    post,
    path = "/whip",
    tag = "media",
    request_body(content = String, content_type = "application/sdp", description = "The SDP offer"),
    responses(
        (status = 201, description = "The SDP answer; `Location` names the session, `Link` the ICE servers", body = String, content_type = "application/sdp"),
        (status = 400, description = "The offer is not usable", body = ApiError),
        (status = 401, description = "Missing, expired or revoked token", body = ApiError),
        (status = 403, description = "This account may not publish now", body = ApiError),
        (status = 415, description = "Not application/sdp", body = ApiError),
        (status = 503, description = "The media plane is full or not running; see `Retry-After`", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn publish(
    app: State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    create(app, headers, body, Way::Whip).await
}

/// Plays the programme (WHEP).
#[utoipa::path(
    post,
    path = "/whep",
    tag = "media",
    request_body(content = String, content_type = "application/sdp", description = "The SDP offer"),
    responses(
        (status = 201, description = "The SDP answer; `Location` names the session, `Link` the ICE servers", body = String, content_type = "application/sdp"),
        (status = 400, description = "The offer is not usable", body = ApiError),
        (status = 401, description = "Missing, expired or revoked token", body = ApiError),
        (status = 415, description = "Not application/sdp", body = ApiError),
        (status = 503, description = "The media plane is full (`media_overloaded`) or not running; see `Retry-After`", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn play(app: State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    create(app, headers, body, Way::Whep).await
}

/// Ends a publishing session.
#[utoipa::path(
    delete,
    path = "/whip/{id}",
    tag = "media",
    params(("id" = String, Path, description = "The session, from `Location`")),
    responses(
        (status = 200, description = "Ended"),
        (status = 401, description = "Missing, expired or revoked token", body = ApiError),
        (status = 404, description = "No such session of this account", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn end_publishing(
    app: State<Arc<App>>,
    headers: HeaderMap,
    id: Path<String>,
) -> Result<StatusCode, ApiError> {
    end(app, headers, id).await
}

/// Ends a playing session.
#[utoipa::path(
    delete,
    path = "/whep/{id}",
    tag = "media",
    params(("id" = String, Path, description = "The session, from `Location`")),
    responses(
        (status = 200, description = "Ended"),
        (status = 401, description = "Missing, expired or revoked token", body = ApiError),
        (status = 404, description = "No such session of this account", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn end_playing(
    app: State<Arc<App>>,
    headers: HeaderMap,
    id: Path<String>,
) -> Result<StatusCode, ApiError> {
    end(app, headers, id).await
}

/// Trickles ICE candidates to a publishing session.
#[utoipa::path(
    patch,
    path = "/whip/{id}",
    tag = "media",
    params(("id" = String, Path, description = "The session, from `Location`")),
    request_body(content = String, content_type = "application/trickle-ice-sdpfrag"),
    responses(
        (status = 204, description = "Candidates added"),
        (status = 401, description = "Missing, expired or revoked token", body = ApiError),
        (status = 404, description = "No such session of this account", body = ApiError),
        (status = 415, description = "Not application/trickle-ice-sdpfrag", body = ApiError),
        (status = 422, description = "An ICE restart, which is not supported", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn trickle_publishing(
    app: State<Arc<App>>,
    headers: HeaderMap,
    id: Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    trickle(app, headers, id, body).await
}

/// Trickles ICE candidates to a playing session.
#[utoipa::path(
    patch,
    path = "/whep/{id}",
    tag = "media",
    params(("id" = String, Path, description = "The session, from `Location`")),
    request_body(content = String, content_type = "application/trickle-ice-sdpfrag"),
    responses(
        (status = 204, description = "Candidates added"),
        (status = 401, description = "Missing, expired or revoked token", body = ApiError),
        (status = 404, description = "No such session of this account", body = ApiError),
        (status = 415, description = "Not application/trickle-ice-sdpfrag", body = ApiError),
        (status = 422, description = "An ICE restart, which is not supported", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn trickle_playing(
    app: State<Arc<App>>,
    headers: HeaderMap,
    id: Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    trickle(app, headers, id, body).await
}

fn media_error(e: MediaError) -> ApiError {
    let status = match &e {
        MediaError::Disabled | MediaError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        MediaError::NotPermitted(_) => StatusCode::FORBIDDEN,
        MediaError::NoSuchLeg => StatusCode::NOT_FOUND,
        MediaError::InvalidSdp(_) => StatusCode::BAD_REQUEST,
        MediaError::TooManyLegs => StatusCode::TOO_MANY_REQUESTS,
        MediaError::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    ApiError::new(status, e.code(), e.to_string())
}

/// A refusal, with `Retry-After` when the SFU is at capacity.
fn refusal(e: MediaError) -> Response {
    let retry = match &e {
        MediaError::Overloaded(s) => Some(*s),
        _ => None,
    };
    let mut response = media_error(e).into_response();
    if let Some(s) = retry {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    response
}

fn media_of(app: &App) -> Result<Arc<Media>, ApiError> {
    app.media()
        .cloned()
        .ok_or_else(|| media_error(MediaError::Disabled))
}

fn content_type_is(headers: &HeaderMap, want: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(want))
}

fn body_text(body: Bytes) -> Result<String, ApiError> {
    String::from_utf8(body.to_vec()).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_sdp",
            "the body is not UTF-8",
        )
    })
}

async fn create(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
    way: Way,
) -> Result<Response, ApiError> {
    let claims = authenticate(&app, bearer(&headers))?;
    let media = media_of(&app)?;
    if !content_type_is(&headers, "application/sdp") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the offer as application/sdp",
        ));
    }
    let offer = body_text(body)?;
    let ufrag = offer
        .lines()
        .find_map(|l| l.trim().strip_prefix("a=ice-ufrag:").map(str::to_owned));
    let created = match way {
        Way::Whip => media.publish(&claims.sub, offer).await,
        Way::Whep => media.subscribe_with_offer(&claims.sub, offer).await,
    };
    let (leg, answer) = match created {
        Ok(x) => x,
        Err(e) => return Ok(refusal(e)),
    };
    let id = uuid::Uuid::new_v4().simple().to_string();
    media.add_resource(
        id.clone(),
        Resource {
            actor: claims.sub.clone(),
            leg,
            ufrag,
            expires: claims.exp,
        },
    );
    let location = format!("{}/{id}", way.path());
    let mut response = (
        StatusCode::CREATED,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/sdp"),
            ),
            (
                header::LOCATION,
                HeaderValue::from_str(&location).map_err(|_| {
                    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "location")
                })?,
            ),
        ],
        answer,
    )
        .into_response();
    for server in media.ice_servers() {
        for url in &server.urls {
            let mut link = format!("<{url}>; rel=\"ice-server\"");
            if let (Some(u), Some(c)) = (&server.username, &server.credential) {
                link.push_str(&format!(
                    "; username=\"{u}\"; credential=\"{c}\"; credential-type=\"password\""
                ));
            }
            if let Ok(v) = HeaderValue::from_str(&link) {
                response.headers_mut().append(header::LINK, v);
            }
        }
    }
    Ok(response)
}

fn resource(media: &Media, actor: &ActorId, id: &str) -> Result<Resource, ApiError> {
    media
        .resource(actor, id)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no_such_media", "no such session"))
}

async fn end(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let claims = authenticate(&app, bearer(&headers))?;
    let media = media_of(&app)?;
    let session = resource(&media, &claims.sub, &id)?;
    media.remove_resource(&id);
    media
        .close(&claims.sub, session.leg)
        .await
        .map_err(media_error)?;
    Ok(StatusCode::OK)
}

async fn trickle(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let claims = authenticate(&app, bearer(&headers))?;
    let media = media_of(&app)?;
    let session = resource(&media, &claims.sub, &id)?;
    if !content_type_is(&headers, "application/trickle-ice-sdpfrag") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send candidates as application/trickle-ice-sdpfrag",
        ));
    }
    let frag = body_text(body)?;
    // Another ICE user fragment asks for an ICE restart, which this server does not do
    // (RFC 9725: 422); the client starts a new session instead.
    let restart = frag
        .lines()
        .filter_map(|l| l.trim().strip_prefix("a=ice-ufrag:"))
        .any(|u| Some(u) != session.ufrag.as_deref());
    if restart {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "ice_restart_unsupported",
            "ICE restarts are not supported: end this session and start another",
        ));
    }
    let leg = session.leg;
    for line in frag.lines() {
        if let Some(c) = line.trim().strip_prefix("a=")
            && c.starts_with("candidate:")
        {
            media
                .candidate(&claims.sub, leg, c.to_owned())
                .await
                .map_err(media_error)?;
        }
    }
    Ok(StatusCode::NO_CONTENT)
}
