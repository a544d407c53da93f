//! The OpenAPI description of the HTTP API, made from the routes' own annotations
//! (`utoipa`): what the router serves and what the description says come from the same
//! list, and it is served at `GET /api/openapi.json` and printed by `dienhong openapi`.

use super::App;
use std::sync::Arc;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

/// The description's frame: title, version, tags and the bearer scheme; the paths are
/// added by the router.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "dienhong",
        description = "Hybrid sittings of a national parliament: the record, its commands and its media. \
            The WebSocket control plane (`/ws`) and the command and event shapes are described in `docs/protocol.md`.",
    ),
    modifiers(&BearerScheme),
    tags(
        (name = "sittings", description = "Sittings, their state, roster and log"),
        (name = "commands", description = "Commands to a sitting, made durable before they are answered"),
        (name = "record", description = "Minutes, exports, checkpoints and the audit trail"),
        (name = "documents", description = "Uploads, document versions and search"),
        (name = "accounts", description = "Login, tokens, tickets and passkeys"),
        (name = "webhooks", description = "Webhook endpoints, their delivery log and replays"),
        (name = "media", description = "WHIP and WHEP"),
        (name = "operations", description = "Health, readiness and metrics"),
    )
)]
pub(super) struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A token from `POST /api/login`"))
                    .build(),
            ),
        );
    }
}

/// An empty router carrying the description's frame, for the routes to be added to.
pub(super) fn frame() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
}

/// The description of every documented route, as JSON.
pub fn description() -> String {
    let (_, spec) = super::http::api(0).split_for_parts();
    spec.to_pretty_json().unwrap_or_default()
}
