//! The WebSocket protocol: every message in both directions, as typed serde enums.
//!
//! One JSON object per text frame, tagged by `type`, carrying the protocol version `v`.
//! `docs/protocol.md` documents each message with an example; keep the two in step.
//!
//! The protocol carries its own types, not the SFU's or the configuration's: a change there
//! does not change the wire.

use crate::sitting::{ActorId, Command, Event, Millis, Role};
use serde::{Deserialize, Serialize};

/// The newest protocol version this server speaks: events come in batches (`events`).
pub const PROTOCOL_VERSION: u32 = 2;

/// The oldest version it still speaks: one `event` message per event.
pub const OLDEST_VERSION: u32 = 1;

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
        /// A passkey confirmation of a ballot (`cast_ballot`, `record_ballot`), answering a
        /// challenge from `POST /api/step-up` for exactly this ballot.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step_up: Option<Box<crate::auth::passkey::StepUpProof>>,
    },
    /// Application-level keep-alive.
    Ping {
        /// Protocol version.
        v: u32,
    },
    /// Publish audio/video: the client's SDP offer; answered by `media_sdp` (an answer).
    MediaPublish {
        /// Protocol version.
        v: u32,
        /// Chosen by the client; the reply carries it.
        request_id: String,
        /// SDP offer.
        sdp: String,
    },
    /// Receive audio/video: answered by `media_sdp` (the server's offer), to be answered
    /// with `media_answer`.
    MediaSubscribe {
        /// Protocol version.
        v: u32,
        /// Chosen by the client.
        request_id: String,
    },
    /// The client's answer to the server's offer.
    MediaAnswer {
        /// Protocol version.
        v: u32,
        /// Chosen by the client.
        request_id: String,
        /// The media connection (from `media_sdp`).
        media: u64,
        /// SDP answer.
        sdp: String,
    },
    /// A trickled ICE candidate of the client (the `candidate` line; empty: end of
    /// candidates). No reply unless refused.
    MediaCandidate {
        /// Protocol version.
        v: u32,
        /// The media connection.
        media: u64,
        /// `candidate:…` line.
        candidate: String,
    },
    /// Chair or vice-chair: mute or unmute a participant's microphone on the chair
    /// consoles (a microphone with the floor is heard by everyone regardless).
    MediaMute {
        /// Protocol version.
        v: u32,
        /// Chosen by the client.
        request_id: String,
        /// The account whose microphone.
        participant: String,
        /// Muted or not.
        muted: bool,
    },
    /// Close one media connection.
    MediaClose {
        /// Protocol version.
        v: u32,
        /// Chosen by the client.
        request_id: String,
        /// The media connection.
        media: u64,
    },
}

impl ClientMessage {
    /// The protocol version the message claims.
    pub fn version(&self) -> u32 {
        match self {
            ClientMessage::Subscribe { v, .. }
            | ClientMessage::Command { v, .. }
            | ClientMessage::Ping { v }
            | ClientMessage::MediaPublish { v, .. }
            | ClientMessage::MediaSubscribe { v, .. }
            | ClientMessage::MediaAnswer { v, .. }
            | ClientMessage::MediaCandidate { v, .. }
            | ClientMessage::MediaMute { v, .. }
            | ClientMessage::MediaClose { v, .. } => *v,
        }
    }
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
    /// Events of the log, in order, as many as one commit made (version 2; a version-1
    /// connection gets one `event` message for each).
    Events {
        /// Protocol version.
        v: u32,
        /// The events, each as an `event` message without `type` and `v`.
        events: Vec<EventEntry>,
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
    /// A media connection's SDP: the answer to `media_publish`, or the server's offer for
    /// `media_subscribe`.
    MediaSdp {
        /// Protocol version.
        v: u32,
        /// The request it answers; absent on a new offer the server makes by itself
        /// (tracks were published since), to be answered with `media_answer`.
        #[serde(skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
        /// The media connection, named in later `media_*` messages.
        media: u64,
        /// `offer` or `answer`.
        sdp_type: String,
        /// The SDP.
        sdp: String,
        /// STUN/TURN servers the client should use.
        ice_servers: Vec<IceServer>,
    },
    /// To chair consoles: the microphones heard in the last interval and how loud.
    MediaLevels {
        /// Protocol version.
        v: u32,
        /// Participant, loudest level in −dBov (0 loudest, 127 silence), voice activity.
        levels: Vec<MicLevel>,
    },
    /// A media connection ended by itself (its peer vanished); open another to go on.
    MediaClosed {
        /// Protocol version.
        v: u32,
        /// The media connection.
        media: u64,
    },
    /// `media_answer`, `media_close` or `media_mute` done.
    MediaOk {
        /// Protocol version.
        v: u32,
        /// The request it answers.
        request_id: String,
        /// The media connection (absent for `media_mute`).
        #[serde(skip_serializing_if = "Option::is_none")]
        media: Option<u64>,
    },
    /// Answer to `ping`.
    Pong {
        /// Protocol version.
        v: u32,
        /// Server time.
        now: Millis,
    },
}

/// A STUN or TURN server the client should use for its media connections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// `stun:`, `turn:` or `turns:` URLs.
    pub urls: Vec<String>,
    /// TURN user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

impl From<&crate::config::IceServerConfig> for IceServer {
    fn from(c: &crate::config::IceServerConfig) -> IceServer {
        IceServer {
            urls: c.urls.clone(),
            username: c.username.clone(),
            credential: c.credential.clone(),
        }
    }
}

/// How loud a participant's microphone was in the last interval (in `media_levels`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MicLevel {
    /// The participant: an account's code, or a delegation site's room.
    pub participant: String,
    /// The loudest level, in −dBov (0 loudest, 127 silence).
    pub dbov: u8,
    /// Whether the publisher detected voice.
    pub voice: bool,
}

impl From<&dienhong_sfu::driver::Level> for MicLevel {
    fn from(l: &dienhong_sfu::driver::Level) -> MicLevel {
        MicLevel {
            participant: l.participant.0.clone(),
            dbov: l.dbov,
            voice: l.voice,
        }
    }
}

/// One event of the log inside an `events` message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventEntry {
    /// Sequence number.
    pub seq: u64,
    /// When it was recorded.
    pub at: Millis,
    /// Who caused it.
    pub actor: ActorId,
    /// The event.
    pub event: Box<Event>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn media_messages_keep_their_wire_form() {
        let levels = ServerMessage::MediaLevels {
            v: PROTOCOL_VERSION,
            levels: vec![MicLevel::from(&dienhong_sfu::driver::Level {
                participant: dienhong_sfu::routing::ParticipantId("DB001".into()),
                dbov: 30,
                voice: true,
            })],
        };
        assert_eq!(
            serde_json::to_value(&levels).expect("serializes"),
            json!({"type": "media_levels", "v": 2,
                   "levels": [{"participant": "DB001", "dbov": 30, "voice": true}]})
        );
        let config: crate::config::IceServerConfig = serde_json::from_value(json!({
            "urls": ["turn:turn.example:3478"], "username": "u", "credential": "c"
        }))
        .expect("a TURN server");
        let stun: crate::config::IceServerConfig =
            serde_json::from_value(json!({"urls": ["stun:stun.example:3478"]})).expect("STUN");
        let sdp = ServerMessage::MediaSdp {
            v: PROTOCOL_VERSION,
            request_id: None,
            media: 7,
            sdp_type: "offer".into(),
            sdp: "v=0".into(),
            ice_servers: [&config, &stun].into_iter().map(IceServer::from).collect(),
        };
        assert_eq!(
            serde_json::to_value(&sdp).expect("serializes")["ice_servers"],
            json!([{"urls": ["turn:turn.example:3478"], "username": "u", "credential": "c"},
                   {"urls": ["stun:stun.example:3478"]}])
        );
    }
}
