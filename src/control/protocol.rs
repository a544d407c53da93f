//! The WebSocket protocol: every message in both directions, as typed serde enums.
//!
//! One JSON object per text frame, tagged by `type`, carrying the protocol version `v`.
//! `docs/protocol.md` documents each message with an example; keep the two in step.

use crate::sitting::{ActorId, Command, Event, Millis, Role};
use serde::{Deserialize, Serialize};

/// The protocol version this server speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest `command_id`, in bytes.
pub const MAX_COMMAND_ID_BYTES: usize = 64;

/// A message from a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Follow a sitting: a snapshot then every event, or the events after `resume_from`.
    Subscribe {
        /// Protocol version.
        v: u32,
        /// Sitting id.
        sitting: String,
        /// The last sequence number the client has seen.
        #[serde(default)]
        resume_from: Option<u64>,
        /// The epoch of the log the client saw it in.
        #[serde(default)]
        epoch: Option<String>,
    },
    /// Act on the subscribed sitting.
    Command {
        /// Protocol version.
        v: u32,
        /// Chosen by the client, unique per actor; a retry reuses it.
        command_id: String,
        /// The command.
        command: Command,
    },
    /// Application-level keep-alive.
    Ping {
        /// Protocol version.
        v: u32,
    },
}

/// A message to a client.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Sent once after the handshake.
    Welcome {
        /// Protocol version.
        v: u32,
        /// Who the token names.
        actor: ActorId,
        /// Their roles.
        roles: Vec<Role>,
        /// Server time.
        now: Millis,
    },
    /// The whole state at `seq` except the roster (served by
    /// `GET /api/sittings/{id}/roster`); events after it follow.
    Snapshot {
        /// Protocol version.
        v: u32,
        /// Sitting id.
        sitting: String,
        /// The log's epoch.
        epoch: String,
        /// Sequence number the state includes.
        seq: u64,
        /// The state, without its `roster` field.
        state: Box<serde_json::Value>,
    },
    /// One event of the log.
    Event {
        /// Protocol version.
        v: u32,
        /// Sequence number.
        seq: u64,
        /// When it was recorded.
        at: Millis,
        /// Who caused it.
        actor: ActorId,
        /// The event.
        event: Box<Event>,
    },
    /// A command was applied and is durable.
    Ack {
        /// Protocol version.
        v: u32,
        /// The client's id.
        command_id: String,
        /// The sequence number of its last event.
        seq: u64,
    },
    /// Something was refused.
    Error {
        /// Protocol version.
        v: u32,
        /// The command it answers, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        command_id: Option<String>,
        /// Stable code.
        code: String,
        /// Human-readable message.
        message: String,
    },
    /// The client fell behind: a snapshot follows.
    Resync {
        /// Protocol version.
        v: u32,
        /// Why.
        reason: String,
    },
    /// Answer to `ping`.
    Pong {
        /// Protocol version.
        v: u32,
        /// Server time.
        now: Millis,
    },
}
