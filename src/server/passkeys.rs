//! Passkey routes: list and register an account's passkeys, and issue the step-up challenge
//! a ballot is confirmed with. Each needs a bearer token; the ceremonies themselves are in
//! [`crate::auth::passkey`].

use super::App;
use super::http::{ApiError, authenticate, bearer, json_body, store_unavailable};
use crate::audit::AuditEntry;
use crate::auth::passkey::{BallotPurpose, PasskeyError, PasskeyInfo};
use crate::sitting::{ActorId, Choice, Role, SittingId, VoteId};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use webauthn_rs::prelude::{
    CreationChallengeResponse, RegisterPublicKeyCredential, RequestChallengeResponse,
};

pub(super) fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/api/passkeys", get(list).post(finish_registration))
        .route("/api/passkeys/options", post(start_registration))
        .route("/api/step-up", post(step_up))
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
        PasskeyError::Invalid(detail) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "passkey_invalid",
            format!("the passkey did not verify: {detail}"),
        ),
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
        .find_map(|h| h.roster().actor(actor).map(|a| a.name.clone()))
        .unwrap_or_else(|| actor.to_string())
}

async fn start_registration(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<Json<RegistrationOptions>, ApiError> {
    let claims = authenticate(&app, bearer(&headers))?;
    let name = display_name(&app, &claims.sub);
    let (registration, options) = app
        .passkeys()
        .start_registration(&claims.sub, &name, super::now_millis())
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
            super::now_millis(),
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
    sitting: SittingId,
    vote: VoteId,
    choice: Choice,
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

async fn step_up(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Json<StepUpRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<StepUpChallenge>, ApiError> {
    let claims = authenticate(&app, bearer(&headers))?;
    let body = json_body(body)?;
    if app.sitting(&body.sitting).is_none() {
        return Err(super::http::not_found());
    }
    let deputy = body.deputy.unwrap_or_else(|| claims.sub.clone());
    if deputy != claims.sub && !app.roles_of(&claims.sub).contains(&Role::Clerk) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_permitted",
            "only a clerk confirms a ballot for another deputy",
        ));
    }
    let purpose = BallotPurpose {
        sitting: body.sitting,
        vote: body.vote,
        deputy,
        choice: body.choice,
    };
    let (challenge, options) = app
        .passkeys()
        .challenge(&claims.sub, purpose, super::now_millis())
        .await
        .map_err(refused)?;
    Ok(Json(StepUpChallenge {
        challenge,
        options,
        expires_in_ms: app.passkeys().ttl_ms(),
    }))
}
