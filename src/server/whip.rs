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
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use std::sync::Arc;

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

pub(super) fn router(max_sdp_bytes: usize) -> Router<Arc<App>> {
    Router::new()
        .route("/whip", post(|s, h, b| create(s, h, b, Way::Whip)))
        .route("/whep", post(|s, h, b| create(s, h, b, Way::Whep)))
        .route("/whip/{id}", axum::routing::delete(end).patch(trickle))
        .route("/whep/{id}", axum::routing::delete(end).patch(trickle))
        .layer(DefaultBodyLimit::max(max_sdp_bytes))
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
