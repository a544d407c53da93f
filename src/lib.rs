//! dienhong: the server that runs hybrid sittings of a national parliament.
//!
//! Map of the crate:
//! - [`sitting`]: the pure procedure core (roster and roles, lifecycle, attendance and
//!   quorum, agenda, floor, voting, documents): `decide(state, actor, command, now)` →
//!   events or a rejection, `apply(state, event)`. No I/O, no clock.
//! - [`store`]: the durable, hash-chained event log on sqlx (SQLite by default, PostgreSQL
//!   by URL): append in one transaction, replay at start, verify the chain.
//! - [`writer`]: one writer task per sitting (decide → append → apply → answer, then the
//!   commit serialized once for the fan-out), reached through its `SittingHandle`.
//! - [`server`]: composition: starts the writers, the HTTP routes (described by OpenAPI at
//!   `/api/openapi.json`), TLS, graceful shutdown.
//! - [`audit`]: the audit trail (log-ins, refusals, logouts, clerk entries), hash-chained apart
//!   from the sittings' logs.
//! - [`auth`]: argon2 passwords, signed bearer tokens, logout, WebSocket tickets, passkeys
//!   (WebAuthn) and the step-up of ballots.
//! - [`checkpoint`]: ed25519-signed checkpoints of a log's head, and judging a log against one.
//! - [`control`]: the WebSocket protocol, one session task per connection, and the path every
//!   command takes (shared with the REST API, `POST /api/sittings/{id}/commands`).
//! - [`media`]: the glue to the SFU (`dienhong-sfu`): roles to participants, the floor of
//!   the sitting followed into forwarding, signalling for the WebSocket and WHIP/WHEP.
//! - [`minutes`]: the minutes of a sitting made from its log, as JSON, HTML and CSV.
//! - [`config`]: embedded defaults, a file, environment overrides, validated at start.
//! - [`demo`]: the synthetic demo sitting.
//! - [`devcert`]: development certificates for trying the server over HTTPS on a LAN.
//! - [`stages`]: where the control plane's time goes, per stage (`GET /healthz/stages`).
//! - [`telemetry`]: metrics for Prometheus (`GET /metrics`).
//! - [`clock`]: the wall clock, read in one place.
//! - [`webhooks`]: signed deliveries of events to outside systems, in order and at least
//!   once, with a delivery log and replays.
//!
//! The binary (`src/main.rs`) only parses the command line and calls into these.

pub mod audit;
pub mod auth;
pub mod checkpoint;
pub mod clock;
pub mod config;
pub mod control;
pub mod demo;
pub mod devcert;
pub mod documents;
pub mod media;
pub mod minutes;
pub mod pdf;
pub mod server;
pub mod sitting;
pub mod stages;
pub mod store;
pub mod telemetry;
pub mod webhooks;
pub mod writer;
