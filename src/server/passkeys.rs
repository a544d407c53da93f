//! Passkey routes: list and register an account's passkeys, and issue the step-up challenge
//! a ballot is confirmed with. Each needs a bearer token; the ceremonies themselves are in
//! [`crate::auth::passkey`].

use super::App;
use super::http::{ApiError, authenticate, bearer, json_body, store_unavailable};
use crate::audit::AuditEntry;
use crate::auth::passkey::{BallotPurpose, PasskeyError, PasskeyInfo, Purpose, StepUpProof};
use crate::sitting::{ActorId, Choice, Role, SittingId, VoteId};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use webauthn_rs::prelude::{
    CreationChallengeResponse, RegisterPublicKeyCredential, RequestChallengeResponse,
};

pub(super) fn router() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(list, finish_registration))
        .routes(routes!(start_registration))
        .routes(routes!(step_up))
}

fn refused(e: PasskeyError) -> ApiError {
    match e {
        PasskeyError::NoPasskey => ApiError::new(
            StatusCode::CONFLICT,
            "no_passkey",
            "register a passkey first (deputy app, Passkey)",
        ),
        PasskeyError::UnknownRegistration => ApiError::new(
            StatusCode::NOT_FOUND,
            "no_such_registration",
            "no such passkey registration, or it ran out; start again",
        ),
        e @ PasskeyError::Invalid => {
            ApiError::new(StatusCode::BAD_REQUEST, "passkey_invalid", e.to_string())
        }
        e @ PasskeyError::StepUpNeeded => {
            ApiError::new(StatusCode::FORBIDDEN, "step_up_required", e.to_string())
        }
        e @ PasskeyError::StepUp(code) => {
            ApiError::new(StatusCode::FORBIDDEN, code.as_str(), e.to_string())
        }
        PasskeyError::AlreadyRegistered => ApiError::new(
            StatusCode::CONFLICT,
            "passkey_exists",
            "this passkey is registered already",
        ),
        e @ PasskeyError::TooMany => {
            ApiError::new(StatusCode::CONFLICT, "too_many_passkeys", e.to_string())
        }
        e @ PasskeyError::Busy => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", e.to_string())
        }
        PasskeyError::Store(e) => store_unavailable(e),
        PasskeyError::Config(detail) => {
            tracing::error!(%detail, "passkey settings");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "passkeys are not set up on this server",
            )
        }
    }
}

#[derive(Serialize)]
struct PasskeyList {
    passkeys: Vec<PasskeyInfo>,
}

#[utoipa::path(
    get,
    path = "/api/passkeys",
    tag = "accounts",
    responses(
        (status = 200, description = "`{passkeys}`: the caller's passkeys", body = Object),
        (status = 401, description = "Missing, expired or revoked token", body = ApiError),
        (status = 503, description = "Unavailable; try again shortly", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn list(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<Json<PasskeyList>, ApiError> {
    let claims = authenticate(&app, bearer(&headers))?;
    let passkeys = app.passkeys().list(&claims.sub).await.map_err(refused)?;
    Ok(Json(PasskeyList { passkeys }))
}

#[derive(Serialize)]
struct RegistrationOptions {
    registration: String,
    options: CreationChallengeResponse,
}

/// The name an authenticator shows for the account: the roster's name, else the code.
fn display_name(app: &App, actor: &ActorId) -> String {
    app.sittings()
        .iter()
        .find_map(|h| h.roster().actor(actor).map(|a| a.name.clone()))
        .unwrap_or_else(|| actor.to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrolRequest {
    /// A step-up of an existing passkey, for an account that has one.
    #[serde(default)]
    step_up: Option<StepUpProof>,
}

#[utoipa::path(
    post,
    path = "/api/passkeys/options",
    tag = "accounts",
    request_body = Object,
    responses(
        (status = 200, description = "`{registration, options}`: WebAuthn creation options", body = Object),
        (status = 400, description = "Malformed request", body = ApiError),
        (status = 401, description = "Missing, expired or revoked token", body = ApiError),
        (status = 403, description = "A step-up of an existing passkey is needed", body = ApiError),
        (status = 503, description = "Unavailable; try again shortly", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn start_registration(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Json<EnrolRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<RegistrationOptions>, ApiError> {
    let claims = authenticate(&app, bearer(&headers))?;
    let body = json_body(body)?;
    let name = display_name(&app, &claims.sub);
    let (registration, options) = app
        .passkeys()
        .start_registration(
            &claims.sub,
            &name,
            body.step_up.as_ref(),
            crate::clock::now_millis(),
        )
        .await
        .map_err(refused)?;
    Ok(Json(RegistrationOptions {
        registration,
        options,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Registration {
    registration: String,
    credential: RegisterPublicKeyCredential,
}

#[utoipa::path(
    post,
    path = "/api/passkeys",
    tag = "accounts",
    request_body = Object,
    responses(
        (status = 201, description = "Registered", body = Object),
        (status = 400, description = "Malformed request", body = ApiError),
        (status = 401, description = "Missing, expired or revoked token", body = ApiError),
        (status = 403, description = "Refused", body = ApiError),
        (status = 503, description = "Unavailable; try again shortly", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn finish_registration(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Json<Registration>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<PasskeyInfo>), ApiError> {
    let claims = authenticate(&app, bearer(&headers))?;
    let body = json_body(body)?;
    let info = app
        .passkeys()
        .finish_registration(
            &claims.sub,
            &body.registration,
            &body.credential,
            crate::clock::now_millis(),
        )
        .await
        .map_err(refused)?;
    app.audit(AuditEntry::PasskeyRegistered {
        actor: claims.sub.clone(),
        credential: info.id.clone(),
    });
    Ok((StatusCode::CREATED, Json(info)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepUpRequest {
    /// For adding a passkey to an account that has one; the ballot fields are then absent.
    #[serde(default)]
    enrol: bool,
    #[serde(default)]
    sitting: Option<SittingId>,
    #[serde(default)]
    vote: Option<VoteId>,
    #[serde(default)]
    choice: Option<Choice>,
    /// For a clerk entering a ballot on a deputy's behalf; the caller's own ballot if absent.
    #[serde(default)]
    deputy: Option<ActorId>,
}

#[derive(Serialize)]
struct StepUpChallenge {
    challenge: String,
    options: RequestChallengeResponse,
    expires_in_ms: i64,
}

fn invalid(message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
}

/// What the challenge is for, if the caller may ask for it: a deputy of the sitting for
/// their own ballot, a clerk of the sitting for a deputy's.
fn purpose_of(app: &App, caller: &ActorId, body: StepUpRequest) -> Result<Purpose, ApiError> {
    if body.enrol {
        return Ok(Purpose::Enrol);
    }
    let (Some(sitting), Some(vote), Some(choice)) = (body.sitting, body.vote, body.choice) else {
        return Err(invalid("give sitting, vote and choice, or enrol"));
    };
    let handle = app.sitting(&sitting).ok_or_else(super::http::not_found)?;
    let roles = handle
        .roster()
        .actor(caller)
        .map(|a| a.roles.clone())
        .unwrap_or_default();
    let deputy = body.deputy.unwrap_or_else(|| caller.clone());
    let may = if &deputy == caller {
        roles.contains(&Role::Deputy)
    } else {
        roles.contains(&Role::Clerk) && handle.roster().is_deputy(&deputy)
    };
    if !may {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_permitted",
            "a deputy confirms their own ballot; a clerk of the sitting one entered for a deputy",
        ));
    }
    Ok(Purpose::Ballot(BallotPurpose {
        sitting,
        vote,
        deputy,
        choice,
    }))
}

#[utoipa::path(
    post,
    path = "/api/step-up",
    tag = "accounts",
    request_body = Object,
    responses(
        (status = 200, description = "A challenge bound to one ballot: `{challenge, options}`", body = Object),
        (status = 400, description = "Malformed request", body = ApiError),
        (status = 401, description = "Missing, expired or revoked token", body = ApiError),
        (status = 403, description = "Not this caller's ballot to give", body = ApiError),
        (status = 503, description = "Unavailable; try again shortly", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn step_up(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Json<StepUpRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<StepUpChallenge>, ApiError> {
    let claims = authenticate(&app, bearer(&headers))?;
    let purpose = purpose_of(&app, &claims.sub, json_body(body)?)?;
    let (challenge, options) = app
        .passkeys()
        .challenge(&claims.sub, purpose, crate::clock::now_millis())
        .await
        .map_err(refused)?;
    Ok(Json(StepUpChallenge {
        challenge,
        options,
        expires_in_ms: app.passkeys().ttl_ms(),
    }))
}
