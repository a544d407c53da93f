//! The SFU's legs: a publisher's (its tracks, payload types, simulcast layers) or a
//! subscriber's (a slot per track it receives, or programme slots that follow the floor),
//! each with its peer connection and the socket it is on.

use super::LegId;
use super::port::Lane;
use crate::feedback::{Estimates, SenderEstimate};
use crate::forward::SlotState;
use crate::routing::{Layer, Media, ParticipantId, TrackId};
use rtc::peer_connection::RTCPeerConnection;
use rtc::rtp_transceiver::RTCRtpSenderId;
use std::collections::HashMap;

/// A programme slot: one m-line of a kind whose source follows the floor.
#[derive(Debug, Clone)]
pub(super) struct Programme {
    pub(super) media: Media,
    /// The second line of its kind: it carries the speaker, the first the chamber.
    pub(super) second: bool,
    pub(super) source: Option<TrackId>,
    pub(super) slot: Slot,
}

impl LegKind {
    /// The slot `track` is written to on this subscriber leg, if any.
    pub(super) fn slot_mut(&mut self, track: TrackId) -> Option<&mut Slot> {
        let LegKind::Subscriber {
            slots, programme, ..
        } = self
        else {
            return None;
        };
        if let Some(slot) = slots.get_mut(&track) {
            return Some(slot);
        }
        programme
            .iter_mut()
            .find(|p| p.source == Some(track))
            .map(|p| &mut p.slot)
    }

    /// Every (track, slot SSRC) this subscriber leg receives now.
    pub(super) fn received(&self) -> Vec<(TrackId, u32)> {
        let LegKind::Subscriber {
            slots, programme, ..
        } = self
        else {
            return Vec::new();
        };
        slots
            .iter()
            .map(|(t, s)| (*t, s.ssrc))
            .chain(
                programme
                    .iter()
                    .filter_map(|p| p.source.map(|t| (t, p.slot.ssrc))),
            )
            .collect()
    }
}

/// Where a track goes on a subscriber leg: its sender, and the SSRC and payload type the
/// packets carry there (each leg negotiates its own).
#[derive(Debug, Clone)]
pub(super) struct Slot {
    pub(super) sender: RTCRtpSenderId,
    pub(super) ssrc: u32,
    pub(super) payload_type: u8,
    /// Whose track the m-line was made for (its stream id in the SDP), and of which kind: a
    /// publisher that comes back gets its old m-line again.
    pub(super) owner: Option<ParticipantId>,
    pub(super) media: Media,
    /// Layer choice and rewriting (video).
    pub(super) state: SlotState,
}

pub(super) enum LegKind {
    /// Receives from a publisher: its tracks, and which payload types are audio or video
    /// (as its offer numbered them).
    Publisher {
        audio: Option<TrackId>,
        video: Option<TrackId>,
        payload_types: HashMap<u8, Media>,
        /// Simulcast: the layer of each rid, and of each SSRC once the core bound it.
        rids: Vec<(String, Layer)>,
        layers: HashMap<u32, Layer>,
        /// The id of the RFC 6464 audio level extension, when the publisher sends it.
        audio_level_id: Option<u8>,
    },
    /// Sends to a subscriber: one slot per track.
    Subscriber {
        slots: HashMap<TrackId, Slot>,
        /// A subscriber that offered fixed m-lines (WHEP) gets one programme slot per kind,
        /// fed by whichever track is the programme now: the speaker, else the chamber.
        programme: Vec<Programme>,
        ready: bool,
        /// The SFU made the offer, so it can offer again when tracks are published later
        /// (not for WHEP, where the subscriber offers).
        renegotiable: bool,
        /// An offer of ours waits for its answer.
        awaiting_answer: bool,
        /// Tracks were published while an offer was waiting: offer again after the answer.
        stale: bool,
    },
}

/// Most m-lines of one subscriber connection.
pub(super) const MAX_SLOTS: usize = 256;

/// Trickled candidates one leg may add.
pub(super) const MAX_REMOTE_CANDIDATES: usize = 32;

pub(super) struct Leg {
    pub(super) id: LegId,
    /// The socket it is on.
    pub(super) lane: Lane,
    /// Candidates trickled so far.
    pub(super) remote_candidates: usize,
    pub(super) pc: RTCPeerConnection,
    pub(super) owner: ParticipantId,
    pub(super) kind: LegKind,
    /// A subscriber's estimate made by the SFU from its transport-wide feedback.
    pub(super) sender_estimate: Option<SenderEstimate>,
    /// What is known of what a subscriber can receive.
    pub(super) estimates: Estimates,
}
