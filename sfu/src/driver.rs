//! The media I/O driver: every peer connection of the SFU served by ONE thread that drives
//! webrtc-rs's sans-IO `rtc` core directly (the architecture chosen from the forwarding
//! benchmarks, `docs/benchmarks.md`), on two UDP sockets (`port`): publishers and the
//! protected receivers (chamber, presiding, chair consoles) on one, read first in every
//! round; every other receiver on the other. It never awaits a subscriber: a packet from a
//! publisher is written to every subscriber the [`Router`] allows, then sent.
//!
//! The thread measures its own load (`meter`); the governor ([`crate::load`]) turns that
//! into what to shed (applied through the router) and whether a new receiver is admitted
//! (refused ones get [`DriverError::Overloaded`]).
//!
//! Control comes through a [`Driver`] handle (publish, subscribe, answer, floor, mute,
//! leave, stats); each call is applied between two rounds of socket I/O, so a floor change
//! takes effect for the very next packet.
//!
//! Subscribers come two ways: the SFU offers (the WebSocket signalling: a slot for every
//! track, offered again as tracks are published), or the subscriber offers (WHEP: one
//! programme slot per kind, fed by the speaker while someone holds the floor and by the
//! chamber otherwise, switched without a seam).
//!
//! Simulcast: a publisher that offers `a=rid`/`a=simulcast` layers has each SSRC bound to
//! its layer by the core (mid/rid header extensions); each subscriber's slot carries the
//! layer the router chose, switching at the new layer's keyframe with the numbering kept
//! continuous (`forward`). Keyframes are asked of publishers with PLI.
//!
//! Each subscriber's layers follow the estimate it reports (REMB); its keyframe requests
//! (PLI/FIR) go to the publisher through the router's throttle; NACKs are answered from the
//! core's send buffer (`feedback`).
//!
//! Not yet built: renegotiation when tracks are published after a WHEP subscriber joined
//! (the client subscribes again), more than one I/O thread.

mod meter;
mod port;
mod wire;

use port::{Lane, Port, SEND_BATCH};
pub use wire::is_picture;
use wire::{
    nominal_bitrate, sdp_codec_payload_types, sdp_media, sdp_payload_types, sdp_ufrag, stream_id,
    stun_target_ufrag,
};

use crate::feedback::{self, Estimates, Request, SenderEstimate};
use crate::forward::{
    SlotState, audio_level, extmap_id, simulcast_rids, strip_extensions, vp8_ids, vp8_keyframe,
};
use crate::load::{Admission, LoadReport, LoadTuning};
use crate::routing::{
    self, Action, Forward, Kind, Layer, Media, ParticipantId, Router, Track, TrackId, Tuning,
};
use bytes::BytesMut;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::configure_simulcast_extension_headers;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_OPUS, MIME_TYPE_RTX, MIME_TYPE_VP8, MediaEngine,
};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::event::RTCTrackEvent;
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RTCRtpHeaderExtensionCapability, RTCRtpRtxParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpSenderId, RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

pub use rtc::peer_connection::sdp::RTCSessionDescription;

/// VP8's payload type, fixed on every leg.
pub const VP8_PT: u8 = 96;
/// Opus's payload type, fixed on every leg.
pub const OPUS_PT: u8 = 111;
/// The payload type of VP8's retransmissions (RTX, RFC 4588) on subscriber legs.
pub const VP8_RTX_PT: u8 = 97;

/// Why a driver call failed.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The socket could not be opened.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    /// The WebRTC core refused something (bad SDP, …).
    #[error("webrtc: {0}")]
    Rtc(String),
    /// No such subscriber leg.
    #[error("no such peer")]
    NoSuchPeer,
    /// The driver thread has stopped.
    #[error("the media driver has stopped")]
    Stopped,
    /// No room for another receiver now (measured load): try again after this long.
    #[error("the media server is at capacity; try again in {retry_after_s} s")]
    Overloaded {
        /// Seconds.
        retry_after_s: u64,
    },
}

fn rtc_err(e: impl std::fmt::Display) -> DriverError {
    DriverError::Rtc(e.to_string())
}

/// A peer connection of the SFU (a publisher's or a subscriber's leg). Never reused: a
/// stale id names nothing rather than someone else's newer connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LegId(pub u64);

/// What happens to legs on the SFU's own initiative.
#[derive(Debug, Clone)]
pub enum LegEvent {
    /// A new offer on an existing subscriber connection.
    Offer(Offer),
    /// A leg ended without being asked to (its peer vanished: ICE consent lost).
    Closed {
        /// The connection.
        leg: LegId,
        /// Its participant.
        owner: ParticipantId,
    },
}

/// A new offer the SFU makes on an existing subscriber connection (tracks were published
/// since): to be sent to `owner`, whose answer comes back through [`Driver::answer`].
#[derive(Debug, Clone)]
pub struct Offer {
    /// The connection.
    pub leg: LegId,
    /// Its participant.
    pub owner: ParticipantId,
    /// The SDP offer.
    pub sdp: String,
}

/// How loud a participant's microphone was.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Level {
    /// The participant.
    pub participant: ParticipantId,
    /// The loudest level, in −dBov (0 loudest, 127 silence).
    pub dbov: u8,
    /// Whether the publisher detected voice.
    pub voice: bool,
}

/// Counters, for tests and metrics.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Packets received from publishers, per track.
    pub received: BTreeMap<TrackId, u64>,
    /// Packets written to subscribers, per track.
    pub forwarded: BTreeMap<TrackId, u64>,
    /// Tracks of each publisher.
    pub tracks: BTreeMap<ParticipantId, Vec<(TrackId, Media)>>,
    /// What each subscriber is estimated to receive, bits/s (the lower of its own REMB and
    /// the SFU's estimate from its transport-wide feedback), once known.
    pub estimates: BTreeMap<ParticipantId, u64>,
}

type Reply<T> = oneshot::Sender<Result<T, DriverError>>;

enum Cmd {
    Publish(
        ParticipantId,
        Kind,
        bool,
        RTCSessionDescription,
        Reply<(LegId, RTCSessionDescription)>,
    ),
    SubscribeOffer(
        ParticipantId,
        Kind,
        bool,
        RTCSessionDescription,
        Reply<(LegId, RTCSessionDescription)>,
    ),
    Candidate(LegId, String, Reply<()>),
    CloseLeg(LegId, Reply<()>),
    PendingOffer(LegId, Reply<Option<String>>),
    Speaker(Option<ParticipantId>, Option<ParticipantId>, Reply<()>),
    Subscribe(
        ParticipantId,
        Kind,
        bool,
        Reply<(LegId, RTCSessionDescription)>,
    ),
    Answer(LegId, RTCSessionDescription, Reply<()>),
    Floor(Option<ParticipantId>, Reply<()>),
    Mute(ParticipantId, bool, Reply<()>),
    Leave(ParticipantId, Reply<()>),
    Stats(oneshot::Sender<Stats>),
    Levels(oneshot::Sender<Vec<Level>>),
    Stop,
}

/// The handle to the media driver thread.
pub struct Driver {
    tx: std_mpsc::Sender<Cmd>,
    events: tokio::sync::broadcast::Sender<LegEvent>,
    local: SocketAddr,
    priority_local: SocketAddr,
    load: Arc<Mutex<LoadReport>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Driver {
    /// Opens the socket (buffers raised to 16 MiB) and starts the driver thread; peers are
    /// told the bound address.
    pub fn start(bind: SocketAddr) -> Result<Driver, DriverError> {
        Driver::start_advertising(bind, None)
    }

    /// As [`Driver::start`], telling peers to reach the SFU at `advertise` (the public
    /// address of a NAT 1:1, or the host's address when bound to all interfaces) instead.
    pub fn start_advertising(
        bind: SocketAddr,
        advertise: Option<std::net::IpAddr>,
    ) -> Result<Driver, DriverError> {
        Driver::start_tuned(bind, advertise, Tuning::default())
    }

    /// As [`Driver::start_advertising`], with the router tuned otherwise (layer headroom,
    /// keyframe throttle, layer tries).
    pub fn start_tuned(
        bind: SocketAddr,
        advertise: Option<std::net::IpAddr>,
        tuning: Tuning,
    ) -> Result<Driver, DriverError> {
        Driver::start_with(bind, advertise, tuning, LoadTuning::default())
    }

    /// As [`Driver::start_tuned`], with the load governor tuned otherwise (when to shed,
    /// when to refuse new receivers).
    pub fn start_with(
        bind: SocketAddr,
        advertise: Option<std::net::IpAddr>,
        tuning: Tuning,
        load_tuning: LoadTuning,
    ) -> Result<Driver, DriverError> {
        let general = Port::open(bind, advertise)?;
        // The publishers' socket: the next port (any free one when the first was too).
        let next = match bind.port() {
            0 => 0,
            p => p.checked_add(1).ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::AddrNotAvailable, "no port after 65535")
            })?,
        };
        let priority = Port::open(SocketAddr::new(bind.ip(), next), advertise)?;
        let local = general.local;
        let priority_local = priority.local;
        let (tx, rx) = std_mpsc::channel();
        let (events, _) = tokio::sync::broadcast::channel(1024);
        let load = Arc::new(Mutex::new(LoadReport::default()));
        let core = Core {
            meter: meter::Meter::new(load_tuning, load.clone()),
            events: events.clone(),
            next_id: 1,
            ids: HashMap::new(),
            ports: [priority, general],
            t0: Instant::now(),
            router: Router::new(tuning),
            joined: HashMap::new(),
            legs: Vec::new(),
            free: Vec::new(),
            by_addr: HashMap::new(),
            by_ufrag: HashMap::new(),
            fanout: HashMap::new(),
            next_track: 1,
            stats: Stats::default(),
            failed: Vec::new(),
            connected: Vec::new(),
            actions: Vec::new(),
            ssrc_of: HashMap::new(),
            levels: HashMap::new(),
        };
        let thread = std::thread::Builder::new()
            .name("sfu-io".into())
            .spawn(move || core.run(rx))?;
        Ok(Driver {
            tx,
            events,
            local,
            priority_local,
            load,
            thread: Some(thread),
        })
    }

    /// New offers on existing subscriber connections, as tracks are published, and legs
    /// that ended by themselves. A receiver that lags can ask [`Driver::pending_offer`].
    pub fn events(&self) -> tokio::sync::broadcast::Receiver<LegEvent> {
        self.events.subscribe()
    }

    /// The SFU's offer on `leg` still waiting for its answer, if any.
    pub async fn pending_offer(&self, leg: LegId) -> Result<Option<String>, DriverError> {
        self.call(|r| Cmd::PendingOffer(leg, r)).await
    }

    /// The address of the receivers' socket.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The address of the socket of publishers and of the receivers never shed (the
    /// chamber, presiding deputies, chair consoles): read before the other.
    pub fn priority_addr(&self) -> SocketAddr {
        self.priority_local
    }

    /// The I/O thread's load as last measured: utilisation, capacity, what is shed.
    pub fn load(&self) -> LoadReport {
        self.load.lock().map(|r| *r).unwrap_or_default()
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Cmd) -> Result<T, DriverError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).map_err(|_| DriverError::Stopped)?;
        rx.await.map_err(|_| DriverError::Stopped)?
    }

    /// A participant publishes: takes its offer (audio and/or video), returns its leg and
    /// the answer.
    pub async fn publish(
        &self,
        who: ParticipantId,
        kind: Kind,
        presiding: bool,
        offer: RTCSessionDescription,
    ) -> Result<(LegId, RTCSessionDescription), DriverError> {
        self.call(|r| Cmd::Publish(who, kind, presiding, offer, r))
            .await
    }

    /// A participant subscribes with an offer of its own (WHEP: receive-only m-lines):
    /// each offered m-line is filled with a published track of its kind, the programme
    /// first; returns the leg and the answer.
    pub async fn subscribe_with_offer(
        &self,
        who: ParticipantId,
        kind: Kind,
        presiding: bool,
        offer: RTCSessionDescription,
    ) -> Result<(LegId, RTCSessionDescription), DriverError> {
        self.call(|r| Cmd::SubscribeOffer(who, kind, presiding, offer, r))
            .await
    }

    /// A remote ICE candidate trickled by the peer of `leg` (JSON `candidate` line of an
    /// `RTCIceCandidateInit`; an empty string ends the candidates).
    pub async fn add_candidate(&self, leg: LegId, candidate: String) -> Result<(), DriverError> {
        self.call(|r| Cmd::Candidate(leg, candidate, r)).await
    }

    /// Closes one leg: its tracks (if it published) stop everywhere; a participant left
    /// with no leg leaves.
    pub async fn close_leg(&self, leg: LegId) -> Result<(), DriverError> {
        self.call(|r| Cmd::CloseLeg(leg, r)).await
    }

    /// The floor moved to `deputy`, sitting at delegation site `site` (if any): their own
    /// microphone is forwarded when they publish one, the site's room otherwise.
    pub async fn set_speaker(
        &self,
        deputy: Option<ParticipantId>,
        site: Option<ParticipantId>,
    ) -> Result<(), DriverError> {
        self.call(|r| Cmd::Speaker(deputy, site, r)).await
    }

    /// A participant subscribes: returns the SFU's offer for its receiving leg.
    pub async fn subscribe(
        &self,
        who: ParticipantId,
        kind: Kind,
        presiding: bool,
    ) -> Result<(LegId, RTCSessionDescription), DriverError> {
        self.call(|r| Cmd::Subscribe(who, kind, presiding, r)).await
    }

    /// The subscriber's answer to the SFU's offer.
    pub async fn answer(
        &self,
        leg: LegId,
        answer: RTCSessionDescription,
    ) -> Result<(), DriverError> {
        self.call(|r| Cmd::Answer(leg, answer, r)).await
    }

    /// The floor moved; resolves once the next packet obeys it.
    pub async fn set_floor(&self, speaker: Option<ParticipantId>) -> Result<(), DriverError> {
        self.call(|r| Cmd::Floor(speaker, r)).await
    }

    /// The chair muted or unmuted a microphone's console preview.
    pub async fn set_muted(&self, who: ParticipantId, muted: bool) -> Result<(), DriverError> {
        self.call(|r| Cmd::Mute(who, muted, r)).await
    }

    /// A participant left: its legs are closed and everything it sent or received stops.
    pub async fn leave(&self, who: ParticipantId) -> Result<(), DriverError> {
        self.call(|r| Cmd::Leave(who, r)).await
    }

    /// How loud each microphone heard since the last call was (RFC 6464 levels sent by the
    /// publishers), by participant.
    pub async fn levels(&self) -> Result<Vec<Level>, DriverError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Levels(tx))
            .map_err(|_| DriverError::Stopped)?;
        rx.await.map_err(|_| DriverError::Stopped)
    }

    /// Counters.
    pub async fn stats(&self) -> Result<Stats, DriverError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Stats(tx))
            .map_err(|_| DriverError::Stopped)?;
        rx.await.map_err(|_| DriverError::Stopped)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.tx.send(Cmd::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The codec of a kind, with its fixed payload type.
pub fn codec(kind: RtpCodecKind) -> RTCRtpCodecParameters {
    let (mime, clock_rate, channels, fmtp, payload_type) = match kind {
        RtpCodecKind::Audio => (
            MIME_TYPE_OPUS,
            48000,
            2,
            "minptime=10;useinbandfec=1;usedtx=1",
            OPUS_PT,
        ),
        _ => (MIME_TYPE_VP8, 90000, 0, "", VP8_PT),
    };
    RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: mime.to_owned(),
            clock_rate,
            channels,
            sdp_fmtp_line: fmtp.to_owned(),
            rtcp_feedback: vec![],
        },
        payload_type,
    }
}

/// Opus and VP8 with their fixed payload types: what a subscriber's leg negotiates.
pub fn media_engine() -> Result<MediaEngine, DriverError> {
    let mut m = MediaEngine::default();
    m.register_codec(codec(RtpCodecKind::Audio), RtpCodecKind::Audio)
        .map_err(rtc_err)?;
    m.register_codec(codec(RtpCodecKind::Video), RtpCodecKind::Video)
        .map_err(rtc_err)?;
    Ok(m)
}

/// What a subscriber's leg negotiates: the codecs, and RTX for VP8, so what a subscriber
/// asks for again (NACK) is resent on a stream of its own, as browsers expect: their
/// receivers count repair apart from media, and a packet asked for again that had in fact
/// arrived (reordered, not lost) is not a replay of its SRTP index, which the receiver's
/// replay protection would drop. A subscriber that offers no RTX (or numbers VP8 otherwise,
/// over WHEP) gets plain retransmissions on the media stream.
pub fn subscribing_media_engine() -> Result<MediaEngine, DriverError> {
    let mut m = media_engine()?;
    register_vp8_rtx(&mut m)?;
    Ok(m)
}

/// RTX (RFC 4588) for VP8, payload type [`VP8_RTX_PT`].
fn register_vp8_rtx(m: &mut MediaEngine) -> Result<(), DriverError> {
    m.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: MIME_TYPE_RTX.to_owned(),
                clock_rate: 90000,
                channels: 0,
                sdp_fmtp_line: format!("apt={VP8_PT}"),
                rtcp_feedback: vec![],
            },
            payload_type: VP8_RTX_PT,
        },
        RtpCodecKind::Video,
    )
    .map_err(rtc_err)
}

/// What a publisher's leg negotiates: the codecs, the header extensions that tell the
/// layers of a simulcast publisher apart (mid, rid, repaired rid), and the microphone's
/// audio level (RFC 6464), and RTX for VP8: what the SFU asks a publisher for again
/// (NACK) comes back on the publisher's retransmission stream and is forwarded as the packet
/// it repairs. Subscriber legs carry no header extension but the transport-wide sequence
/// number: every forwarded packet would pay for them in the sender's checks.
pub fn publishing_media_engine() -> Result<MediaEngine, DriverError> {
    let mut m = media_engine()?;
    register_vp8_rtx(&mut m)?;
    configure_simulcast_extension_headers(&mut m).map_err(rtc_err)?;
    for uri in [
        rtc::sdp::extmap::SDES_MID_URI,
        rtc::sdp::extmap::AUDIO_LEVEL_URI,
    ] {
        m.register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: uri.to_owned(),
            },
            RtpCodecKind::Audio,
            None,
        )
        .map_err(rtc_err)?;
    }
    Ok(m)
}

/// A programme slot: one m-line of a kind whose source follows the floor.
#[derive(Debug, Clone)]
struct Programme {
    media: Media,
    /// The second line of its kind: it carries the speaker, the first the chamber.
    second: bool,
    source: Option<TrackId>,
    slot: Slot,
}

impl LegKind {
    /// The slot `track` is written to on this subscriber leg, if any.
    fn slot_mut(&mut self, track: TrackId) -> Option<&mut Slot> {
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
    fn received(&self) -> Vec<(TrackId, u32)> {
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
struct Slot {
    sender: RTCRtpSenderId,
    ssrc: u32,
    payload_type: u8,
    /// Whose track the m-line was made for (its stream id in the SDP), and of which kind: a
    /// publisher that comes back gets its old m-line again.
    owner: Option<ParticipantId>,
    media: Media,
    /// Layer choice and rewriting (video).
    state: SlotState,
}

enum LegKind {
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

/// Most datagrams read before they are handled, audio and control first.
const RECV_BATCH: usize = 64;

/// Most m-lines of one subscriber connection.
const MAX_SLOTS: usize = 256;

/// Trickled candidates one leg may add.
const MAX_REMOTE_CANDIDATES: usize = 32;

struct Leg {
    id: LegId,
    /// The socket it is on.
    lane: Lane,
    /// Candidates trickled so far.
    remote_candidates: usize,
    pc: RTCPeerConnection,
    owner: ParticipantId,
    kind: LegKind,
    /// A subscriber's estimate made by the SFU from its transport-wide feedback.
    sender_estimate: Option<SenderEstimate>,
    /// What is known of what a subscriber can receive.
    estimates: Estimates,
}

struct Core {
    events: tokio::sync::broadcast::Sender<LegEvent>,
    /// The thread's own load, and the governor deciding what to shed and whom to admit.
    meter: meter::Meter,
    /// The next leg id, and where each live leg is in `legs`.
    next_id: u64,
    ids: HashMap<LegId, usize>,
    /// The two sockets, [`Lane::Priority`] first, each with the datagrams waiting to be
    /// sent on it: sent together ([`Core::send_outbox`]) once the packet or command that
    /// produced them is handled.
    ports: [Port; 2],
    t0: Instant,
    router: Router,
    joined: HashMap<ParticipantId, Kind>,
    legs: Vec<Option<Leg>>,
    /// Slots of `legs` freed by departures, reused first so the table does not grow.
    free: Vec<usize>,
    by_addr: HashMap<(Lane, SocketAddr), usize>,
    by_ufrag: HashMap<String, usize>,
    /// For each track, the legs (and their slot) it is forwarded to now.
    fanout: HashMap<TrackId, Vec<usize>>,
    next_track: u32,
    stats: Stats,
    /// Legs whose connection failed (ICE consent lost, DTLS failed), to close.
    failed: Vec<usize>,
    /// Subscriber legs that just connected: they start receiving, with a keyframe.
    connected: Vec<usize>,
    /// Router decisions not yet carried out (keyframe requests; forwarding changes are
    /// applied by `rebuild_fanout`).
    actions: Vec<Action>,
    /// The publisher's SSRC of each track and layer, learned from its packets.
    ssrc_of: HashMap<(TrackId, Layer), u32>,
    /// The loudest level (−dBov) and any voice activity of each microphone since last read.
    levels: HashMap<ParticipantId, (u8, bool)>,
}

impl Core {
    fn now_ms(&self) -> routing::Millis {
        u64::try_from(self.t0.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A peer connection for a publisher's leg (`publisher`) or a subscriber's, with that
    /// side's interceptors (`feedback`).
    fn new_pc(
        &self,
        publisher: bool,
    ) -> Result<(RTCPeerConnection, Option<SenderEstimate>), DriverError> {
        let settings = SettingEngineBuilder::new()
            .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
            .build();
        let mut media = if publisher {
            publishing_media_engine()?
        } else {
            subscribing_media_engine()?
        };
        let (registry, estimate) = if publisher {
            (
                feedback::publisher_chain(&mut media).map_err(rtc_err)?,
                None,
            )
        } else {
            let (registry, estimate) = feedback::subscriber_chain(&mut media).map_err(rtc_err)?;
            (registry, Some(estimate))
        };
        let pc = RTCPeerConnectionBuilder::new()
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_setting_engine(settings)
            .build(Instant::now())
            .map_err(rtc_err)?;
        Ok((pc, estimate))
    }

    fn port(&self, lane: Lane) -> &Port {
        match lane {
            Lane::Priority => &self.ports[0],
            Lane::General => &self.ports[1],
        }
    }

    fn add_host_candidate(
        &self,
        pc: &mut RTCPeerConnection,
        lane: Lane,
    ) -> Result<(), DriverError> {
        let advertised = self.port(lane).advertised;
        let candidate = CandidateHostConfig {
            base_config: CandidateConfig {
                network: "udp".to_owned(),
                address: advertised.ip().to_string(),
                port: advertised.port(),
                component: 1,
                ..Default::default()
            },
            ..Default::default()
        }
        .new_candidate_host()
        .map_err(rtc_err)?;
        let init = RTCIceCandidate::from(&candidate)
            .to_json()
            .map_err(rtc_err)?;
        pc.add_local_candidate(init).map_err(rtc_err)
    }

    fn join(&mut self, who: &ParticipantId, kind: Kind, presiding: bool) {
        if !self.joined.contains_key(who) {
            self.joined.insert(who.clone(), kind);
            let now = self.now_ms();
            let a = self.router.join(who.clone(), kind, presiding, now);
            self.actions.extend(a);
        }
    }

    /// Where the live leg `leg` is.
    fn index_of(&self, leg: LegId) -> Result<usize, DriverError> {
        self.ids.get(&leg).copied().ok_or(DriverError::NoSuchPeer)
    }

    /// The id of the leg at `idx`.
    fn id_at(&self, idx: usize) -> LegId {
        self.legs
            .get(idx)
            .and_then(Option::as_ref)
            .map_or(LegId(0), |l| l.id)
    }

    fn next_leg_index(&self) -> usize {
        self.free.last().copied().unwrap_or(self.legs.len())
    }

    fn add_leg(&mut self, mut leg: Leg) -> usize {
        let idx = self.next_leg_index();
        leg.id = LegId(self.next_id);
        self.next_id += 1;
        self.ids.insert(leg.id, idx);
        if let Some(u) = leg.pc.local_description().and_then(|d| sdp_ufrag(&d.sdp)) {
            self.by_ufrag.insert(u, idx);
        }
        if idx == self.legs.len() {
            self.legs.push(Some(leg));
        } else {
            self.free.pop();
            self.legs[idx] = Some(leg);
        }
        idx
    }

    fn publish(
        &mut self,
        who: ParticipantId,
        kind: Kind,
        presiding: bool,
        offer: RTCSessionDescription,
    ) -> Result<(LegId, RTCSessionDescription), DriverError> {
        self.join(&who, kind, presiding);
        let (has_audio, has_video) = sdp_media(&offer.sdp);
        let payload_types = sdp_payload_types(&offer.sdp);
        let rids = simulcast_rids(&offer.sdp);
        let audio_level_id = extmap_id(&offer.sdp, "audio", rtc::sdp::extmap::AUDIO_LEVEL_URI);
        let (mut pc, _) = self.new_pc(true)?;
        pc.set_remote_description(Instant::now(), offer)
            .map_err(rtc_err)?;
        let answer = pc.create_answer(None).map_err(rtc_err)?;
        pc.set_local_description(Instant::now(), answer)
            .map_err(rtc_err)?;
        self.add_host_candidate(&mut pc, Lane::Priority)?;
        let sdp = pc
            .local_description()
            .ok_or_else(|| rtc_err("no local description"))?;
        let now = self.now_ms();
        let video_layers: Vec<(Layer, u64)> = if rids.is_empty() {
            vec![(Layer::High, 2_500_000)]
        } else {
            rids.iter()
                .map(|(_, l)| (*l, nominal_bitrate(*l)))
                .collect()
        };
        let new_track = |media: Media, core: &mut Core| {
            let id = TrackId(core.next_track);
            core.next_track += 1;
            let layers = match media {
                Media::Audio => vec![(Layer::High, 40_000)],
                Media::Video => video_layers.clone(),
            };
            let a = core.router.publish(
                id,
                Track {
                    owner: who.clone(),
                    media,
                    layers,
                },
                now,
            );
            core.actions.extend(a);
            core.stats
                .tracks
                .entry(who.clone())
                .or_default()
                .push((id, media));
            id
        };
        let audio = has_audio.then(|| new_track(Media::Audio, self));
        let video = has_video.then(|| new_track(Media::Video, self));
        let idx = self.add_leg(Leg {
            id: LegId(0),
            lane: Lane::Priority,
            remote_candidates: 0,
            pc,
            owner: who,
            sender_estimate: None,
            estimates: Estimates::default(),
            kind: LegKind::Publisher {
                audio,
                video,
                payload_types,
                rids,
                layers: HashMap::new(),
                audio_level_id,
            },
        });
        self.rebuild_fanout();
        self.renegotiate_subscribers();
        Ok((self.id_at(idx), sdp))
    }

    /// Published tracks `who` may receive, the chamber's programme first.
    /// Who publishes `track`.
    fn owner_of(&self, track: TrackId) -> Option<ParticipantId> {
        self.stats
            .tracks
            .iter()
            .find(|(_, ts)| ts.iter().any(|(t, _)| *t == track))
            .map(|(owner, _)| owner.clone())
    }

    fn tracks_for(&self, who: &ParticipantId) -> Vec<(TrackId, Media)> {
        let mut tracks: Vec<(bool, TrackId, Media)> = self
            .stats
            .tracks
            .iter()
            .filter(|(owner, _)| *owner != who)
            .flat_map(|(owner, t)| {
                let programme = self.joined.get(owner) == Some(&Kind::Chamber);
                t.iter().map(move |(id, m)| (!programme, *id, *m))
            })
            .collect();
        // The programme first; among the rest, the newest first (a publisher that came back
        // has a newer track than the one it left behind).
        tracks.sort_by_key(|(later, id, _)| (*later, std::cmp::Reverse(*id)));
        tracks.into_iter().map(|(_, id, m)| (id, m)).collect()
    }

    /// Adds a sending slot for `track` to a subscriber's peer connection.
    /// `fill`: the track takes one of the subscriber's own offered m-lines (WHEP);
    /// otherwise it gets a send-only m-line of its own in the SFU's offer.
    /// The track's stream id is its owner's participant id (the programme's is
    /// `programme`): the receiver tells whose picture is whose, and plays a participant's
    /// audio and video in sync, as one stream.
    #[allow(clippy::too_many_arguments)]
    fn add_slot(
        pc: &mut RTCPeerConnection,
        idx: usize,
        n: usize,
        track: TrackId,
        owner: Option<&ParticipantId>,
        media: Media,
        payload_type: u8,
        fill: bool,
    ) -> Result<Slot, DriverError> {
        let ssrc = 0x1000_0000 + (idx as u32) * 256 + n as u32;
        let k = if media == Media::Audio {
            RtpCodecKind::Audio
        } else {
            RtpCodecKind::Video
        };
        // Pictures get a retransmission stream of their own (used when negotiated).
        let rtx = (media == Media::Video).then(|| RTCRtpRtxParameters {
            ssrc: 0x2000_0000 + (idx as u32) * 256 + n as u32,
        });
        let stream = owner.map_or_else(|| "programme".to_owned(), |o| stream_id(&o.0));
        let t = MediaStreamTrack::new(
            stream,
            format!("t{}-{k}", track.0),
            format!("t{}-{k}", track.0),
            k,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    rtx,
                    ..Default::default()
                },
                codec: codec(k).rtp_codec,
                ..Default::default()
            }],
        );
        let sender = if fill {
            pc.add_track(t).map_err(rtc_err)?
        } else {
            let init = RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Sendonly,
                streams: vec![],
                send_encodings: vec![],
            };
            RTCRtpSenderId::from(
                pc.add_transceiver_from_track(t, Some(init))
                    .map_err(rtc_err)?,
            )
        };
        Ok(Slot {
            sender,
            ssrc,
            payload_type,
            owner: owner.cloned(),
            media,
            state: SlotState::default(),
        })
    }

    fn subscribe_with_offer(
        &mut self,
        who: ParticipantId,
        kind: Kind,
        presiding: bool,
        offer: RTCSessionDescription,
    ) -> Result<(LegId, RTCSessionDescription), DriverError> {
        self.admitted(&who.clone(), kind, presiding, |core| {
            core.pull(who, kind, presiding, offer)
        })
    }

    /// [`Core::subscribe_with_offer`] once admitted.
    fn pull(
        &mut self,
        who: ParticipantId,
        kind: Kind,
        presiding: bool,
        offer: RTCSessionDescription,
    ) -> Result<(LegId, RTCSessionDescription), DriverError> {
        let offered_audio = offer
            .sdp
            .lines()
            .filter(|l| l.starts_with("m=audio"))
            .count();
        let offered_video = offer
            .sdp
            .lines()
            .filter(|l| l.starts_with("m=video"))
            .count();
        let (opus_pt, vp8_pt) = sdp_codec_payload_types(&offer.sdp);
        let (mut pc, estimate) = self.new_pc(false)?;
        pc.set_remote_description(Instant::now(), offer)
            .map_err(rtc_err)?;
        self.join(&who, kind, presiding);
        let idx = self.next_leg_index();
        // Programme slots: one line of a kind carries the speaker while someone holds the
        // floor and the chamber otherwise; a receiver that offers two lines of a kind (a TV
        // system mixing for itself) gets the chamber on the first and the speaker on the
        // second. Further lines stay empty. Which track feeds each is decided with the
        // fan-out.
        let mut programme = Vec::new();
        let mut n = 0;
        for (media, offered, pt) in [
            (Media::Audio, offered_audio, opus_pt),
            (Media::Video, offered_video, vp8_pt),
        ] {
            let Some(pt) = pt else {
                continue;
            };
            for second in [false, true].into_iter().take(offered.min(2)) {
                let slot = Core::add_slot(&mut pc, idx, n, TrackId(0), None, media, pt, true)?;
                n += 1;
                programme.push(Programme {
                    media,
                    second,
                    source: None,
                    slot,
                });
            }
        }
        let answer = pc.create_answer(None).map_err(rtc_err)?;
        let (idx, sdp) =
            self.keep_subscriber(pc, estimate, answer, who, HashMap::new(), programme, false)?;
        self.rebuild_fanout();
        Ok((self.id_at(idx), sdp))
    }

    fn add_candidate(&mut self, leg: LegId, candidate: String) -> Result<(), DriverError> {
        let i = self.index_of(leg)?;
        let l = self
            .legs
            .get_mut(i)
            .and_then(Option::as_mut)
            .ok_or(DriverError::NoSuchPeer)?;
        if candidate.trim().is_empty() {
            return Ok(());
        }
        // Where the peer's packets come from is learned only from its own ICE checks (STUN
        // naming this leg), never from a signalled address: an account could otherwise name
        // another peer's address and take its packets.
        if l.remote_candidates >= MAX_REMOTE_CANDIDATES {
            return Err(DriverError::Rtc(format!(
                "more than {MAX_REMOTE_CANDIDATES} trickled candidates"
            )));
        }
        l.remote_candidates += 1;
        l.pc.add_remote_candidate(RTCIceCandidateInit {
            candidate,
            ..Default::default()
        })
        .map_err(rtc_err)
    }

    fn close_leg(&mut self, leg: LegId) -> Result<(), DriverError> {
        let i = self.index_of(leg)?;
        self.close_index(i)
    }

    fn close_index(&mut self, i: usize) -> Result<(), DriverError> {
        let mut l = self
            .legs
            .get_mut(i)
            .and_then(Option::take)
            .ok_or(DriverError::NoSuchPeer)?;
        let _ = l.pc.close();
        self.flush_closed(&mut l);
        self.free.push(i);
        self.ids.remove(&l.id);
        self.failed.retain(|f| *f != i);
        self.connected.retain(|c| *c != i);
        self.by_addr.retain(|_, v| *v != i);
        self.by_ufrag.retain(|_, v| *v != i);
        let now = self.now_ms();
        self.meter.release(l.id.0);
        if let LegKind::Publisher { audio, video, .. } = l.kind {
            for t in [audio, video].into_iter().flatten() {
                let a = self.router.unpublish(t, now);
                self.actions.extend(a);
                self.stats.received.remove(&t);
                self.stats.forwarded.remove(&t);
                if let Some(list) = self.stats.tracks.get_mut(&l.owner) {
                    list.retain(|(x, _)| *x != t);
                }
            }
        }
        let still_here = self.legs.iter().flatten().any(|x| x.owner == l.owner);
        if still_here {
            self.rebuild_fanout();
        } else {
            self.leave(&l.owner);
        }
        Ok(())
    }

    /// Refuses a new receiving leg when there is no room for it (measured load), unless
    /// it is the chamber's, a presiding participant's, a chair console's or the floor
    /// holder's.
    fn admit(
        &mut self,
        who: &ParticipantId,
        kind: Kind,
        presiding: bool,
    ) -> Result<(), DriverError> {
        let protected = presiding
            || matches!(kind, Kind::Chamber | Kind::ChairConsole)
            || self.router.protected(who);
        match self.meter.admit(self.now_ms(), self.next_id, protected) {
            Admission::Admit => Ok(()),
            Admission::Refuse { retry_after_s } => {
                tracing::warn!(participant = %who.0, retry_after_s, "receiver refused: at capacity");
                Err(DriverError::Overloaded { retry_after_s })
            }
        }
    }

    /// Makes a receiving leg with `make` once admitted (the governor knows it by the id it
    /// will get); a leg that fails to be made no longer counts as load to come.
    fn admitted<T>(
        &mut self,
        who: &ParticipantId,
        kind: Kind,
        presiding: bool,
        make: impl FnOnce(&mut Core) -> Result<T, DriverError>,
    ) -> Result<T, DriverError> {
        let key = self.next_id;
        self.admit(who, kind, presiding)?;
        let made = make(self);
        if made.is_err() || self.next_id == key {
            self.meter.release(key);
        }
        made
    }

    fn subscribe(
        &mut self,
        who: ParticipantId,
        kind: Kind,
        presiding: bool,
    ) -> Result<(LegId, RTCSessionDescription), DriverError> {
        self.admitted(&who.clone(), kind, presiding, |core| {
            core.offer_receiver(who, kind, presiding)
        })
    }

    /// [`Core::subscribe`] once admitted.
    fn offer_receiver(
        &mut self,
        who: ParticipantId,
        kind: Kind,
        presiding: bool,
    ) -> Result<(LegId, RTCSessionDescription), DriverError> {
        self.join(&who, kind, presiding);
        let (mut pc, estimate) = self.new_pc(false)?;
        let idx = self.next_leg_index();
        let mut slots = HashMap::new();
        for (n, (track, media)) in self.tracks_for(&who).into_iter().enumerate() {
            let pt = if media == Media::Audio {
                OPUS_PT
            } else {
                VP8_PT
            };
            slots.insert(
                track,
                Core::add_slot(
                    &mut pc,
                    idx,
                    n,
                    track,
                    self.owner_of(track).as_ref(),
                    media,
                    pt,
                    false,
                )?,
            );
        }
        if slots.is_empty() {
            // Nothing is published yet: an offer needs one m-section to carry the transport
            // (ICE, DTLS). The core offers only receive-only sections without a track; it stays
            // empty (tracks get send-only sections of their own), and whatever a subscriber
            // might send on it is never forwarded.
            pc.add_transceiver_from_kind(RtpCodecKind::Audio, None)
                .map_err(rtc_err)?;
        }
        let offer = pc.create_offer(None).map_err(rtc_err)?;
        let (idx, sdp) = self.keep_subscriber(pc, estimate, offer, who, slots, Vec::new(), true)?;
        Ok((self.id_at(idx), sdp))
    }

    /// Sets `local` (the SFU's offer, or its answer to a WHEP offer) on a subscriber's new
    /// connection, adds the SFU's candidate, and keeps the leg; returns its index and the
    /// description to send.
    #[allow(clippy::too_many_arguments)]
    fn keep_subscriber(
        &mut self,
        mut pc: RTCPeerConnection,
        sender_estimate: Option<SenderEstimate>,
        local: RTCSessionDescription,
        who: ParticipantId,
        slots: HashMap<TrackId, Slot>,
        programme: Vec<Programme>,
        sfu_offered: bool,
    ) -> Result<(usize, RTCSessionDescription), DriverError> {
        pc.set_local_description(Instant::now(), local)
            .map_err(rtc_err)?;
        // The protected receive on the publishers' socket.
        let lane = if self.router.protected(&who) {
            Lane::Priority
        } else {
            Lane::General
        };
        self.add_host_candidate(&mut pc, lane)?;
        let sdp = pc
            .local_description()
            .ok_or_else(|| rtc_err("no local description"))?;
        let idx = self.add_leg(Leg {
            id: LegId(0),
            lane,
            remote_candidates: 0,
            pc,
            owner: who,
            sender_estimate,
            estimates: Estimates::default(),
            kind: LegKind::Subscriber {
                slots,
                programme,
                ready: false,
                renegotiable: sfu_offered,
                awaiting_answer: sfu_offered,
                stale: false,
            },
        });
        Ok((idx, sdp))
    }

    /// Offers every subscriber that the SFU negotiated with the tracks published since,
    /// as a new offer on its existing connection (sent through [`Driver::offers`]).
    fn renegotiate_subscribers(&mut self) {
        let mut reused = false;
        for i in 0..self.legs.len() {
            let Some(Some(Leg {
                owner,
                kind:
                    LegKind::Subscriber {
                        slots,
                        renegotiable: true,
                        ..
                    },
                ..
            })) = self.legs.get(i)
            else {
                continue;
            };
            // Tracks that ended keep their (silent) m-line; a connection stops growing at
            // MAX_SLOTS m-lines.
            let room = MAX_SLOTS.saturating_sub(slots.len());
            let missing: Vec<(TrackId, Media)> = self
                .tracks_for(owner)
                .into_iter()
                .filter(|(t, _)| !slots.contains_key(t))
                .take(room)
                .collect();
            if missing.is_empty() {
                continue;
            }
            match self.offer_again(i, missing) {
                Ok(true) => reused = true,
                Ok(false) => {}
                Err(e) => tracing::warn!(leg = i, error = %e, "renegotiation failed"),
            }
        }
        if reused {
            self.rebuild_fanout();
        }
    }

    /// Gives a subscriber's connection the tracks it lacks: a track of a publisher that came
    /// back takes the m-line its ended track had (same stream, same SSRC, numbering
    /// continued, from a keyframe), so the connection does not grow with every reconnection
    /// and needs no new offer; any other gets a new m-line, offered again. Returns whether an
    /// m-line was taken over.
    fn offer_again(
        &mut self,
        i: usize,
        missing: Vec<(TrackId, Media)>,
    ) -> Result<bool, DriverError> {
        let live: std::collections::HashSet<TrackId> = self
            .stats
            .tracks
            .values()
            .flatten()
            .map(|(t, _)| *t)
            .collect();
        let missing: Vec<(TrackId, Media, Option<ParticipantId>)> = missing
            .into_iter()
            .map(|(t, m)| (t, m, self.owner_of(t)))
            .collect();
        let Some(Some(leg)) = self.legs.get_mut(i) else {
            return Ok(false);
        };
        let LegKind::Subscriber {
            slots,
            awaiting_answer,
            stale,
            ..
        } = &mut leg.kind
        else {
            return Ok(false);
        };
        let mut reused = false;
        let mut new = Vec::new();
        for (track, media, owner) in missing {
            let ended = slots
                .iter()
                .find(|(t, s)| {
                    !live.contains(t) && s.media == media && owner.is_some() && s.owner == owner
                })
                .map(|(t, _)| *t);
            match ended.and_then(|t| slots.remove(&t)) {
                Some(mut slot) => {
                    slot.state.stop();
                    slot.state.change_source(media == Media::Video);
                    slots.insert(track, slot);
                    reused = true;
                }
                None => new.push((track, media, owner)),
            }
        }
        if new.is_empty() {
            return Ok(reused);
        }
        if *awaiting_answer {
            *stale = true;
            return Ok(reused);
        }
        for (track, media, owner) in new {
            let pt = if media == Media::Audio {
                OPUS_PT
            } else {
                VP8_PT
            };
            let n = slots.len();
            slots.insert(
                track,
                Core::add_slot(&mut leg.pc, i, n, track, owner.as_ref(), media, pt, false)?,
            );
        }
        let offer = leg.pc.create_offer(None).map_err(rtc_err)?;
        leg.pc
            .set_local_description(Instant::now(), offer)
            .map_err(rtc_err)?;
        *awaiting_answer = true;
        let sdp = leg
            .pc
            .local_description()
            .ok_or_else(|| rtc_err("no local description"))?;
        let _ = self.events.send(LegEvent::Offer(Offer {
            leg: leg.id,
            owner: leg.owner.clone(),
            sdp: sdp.sdp,
        }));
        Ok(reused)
    }

    fn answer(&mut self, leg: LegId, answer: RTCSessionDescription) -> Result<(), DriverError> {
        let i = self.index_of(leg)?;
        let l = self
            .legs
            .get_mut(i)
            .and_then(Option::as_mut)
            .ok_or(DriverError::NoSuchPeer)?;
        l.pc.set_remote_description(Instant::now(), answer)
            .map_err(rtc_err)?;
        let mut again = false;
        if let LegKind::Subscriber {
            awaiting_answer,
            stale,
            ..
        } = &mut l.kind
        {
            *awaiting_answer = false;
            again = std::mem::take(stale);
        }
        self.rebuild_fanout();
        if again {
            self.renegotiate_subscribers();
        }
        Ok(())
    }

    fn leave(&mut self, who: &ParticipantId) {
        for i in 0..self.legs.len() {
            if self.legs[i].as_ref().is_some_and(|l| &l.owner == who) {
                if let Some(mut l) = self.legs[i].take() {
                    self.meter.release(l.id.0);
                    let _ = l.pc.close();
                    self.flush_closed(&mut l);
                    self.free.push(i);
                    self.ids.remove(&l.id);
                    self.failed.retain(|f| *f != i);
                    self.connected.retain(|c| *c != i);
                }
                self.by_addr.retain(|_, v| *v != i);
                self.by_ufrag.retain(|_, v| *v != i);
            }
        }
        self.joined.remove(who);
        self.stats.estimates.remove(who);
        if let Some(tracks) = self.stats.tracks.remove(who) {
            for (t, _) in tracks {
                self.stats.received.remove(&t);
                self.stats.forwarded.remove(&t);
            }
        }
        let now = self.now_ms();
        let a = self.router.leave(who, now);
        self.actions.extend(a);
        self.rebuild_fanout();
    }

    /// Recomputes, from the router, which legs each track is written to and at which
    /// layer; slots no longer forwarded stop.
    fn rebuild_fanout(&mut self) {
        self.fanout.clear();
        let forwarded: HashMap<(TrackId, ParticipantId), Forward> = self
            .router
            .forwarded()
            .map(|(k, f)| (k.clone(), *f))
            .collect();
        // Each track's owner and kind, to choose what feeds programme slots.
        let tracks: HashMap<TrackId, (&ParticipantId, Media)> = self
            .stats
            .tracks
            .iter()
            .flat_map(|(owner, list)| list.iter().map(move |(t, m)| (*t, (owner, *m))))
            .collect();
        let speaker = self.router.speaker().cloned();
        let target = |f: &Forward| match f {
            Forward::Video(layer) => *layer,
            Forward::Audio => Layer::High,
        };
        let mut keyframes = Vec::new();
        for (i, l) in self.legs.iter_mut().enumerate() {
            let Some(Leg {
                owner,
                kind:
                    LegKind::Subscriber {
                        slots,
                        programme,
                        ready,
                        ..
                    },
                ..
            }) = l
            else {
                continue;
            };
            for (track, slot) in slots.iter_mut() {
                match forwarded.get(&(*track, owner.clone())) {
                    Some(f) if *ready => {
                        slot.state.target = Some(target(f));
                        self.fanout.entry(*track).or_default().push(i);
                    }
                    _ => slot.state.stop(),
                }
            }
            let seconds: Vec<Media> = programme
                .iter()
                .filter(|p| p.second)
                .map(|p| p.media)
                .collect();
            for p in programme.iter_mut() {
                let candidates = forwarded
                    .iter()
                    .filter(|((_, to), _)| to == owner)
                    .filter_map(|((t, _), f)| {
                        let (track_owner, media) = tracks.get(t)?;
                        (*media == p.media).then_some((*t, *track_owner, f))
                    });
                let speaking = |o: &ParticipantId| speaker.as_ref() == Some(o);
                let chamber = |o: &ParticipantId| self.joined.get(o) == Some(&Kind::Chamber);
                let best = if p.second {
                    // The speaker, unless the chamber itself is speaking.
                    candidates
                        .filter(|(_, o, _)| speaking(o) && !chamber(o))
                        .max_by_key(|(t, _, _)| *t)
                } else if seconds.contains(&p.media) {
                    // The chamber's, else the newest that is not the speaker's.
                    candidates
                        .filter(|(_, o, _)| !speaking(o) || chamber(o))
                        .max_by_key(|(t, o, _)| (chamber(o), *t))
                } else {
                    // The speaker's track of this kind if this subscriber receives it, else
                    // the chamber's, else the newest it receives.
                    candidates.max_by_key(|(t, o, _)| (speaking(o), chamber(o), *t))
                };
                let source = best.map(|(t, _, _)| t);
                if source != p.source {
                    p.source = source;
                    p.slot.state.change_source(p.media == Media::Video);
                    if let (Some((t, _, f)), Media::Video) = (best, p.media) {
                        keyframes.push(Action::RequestKeyframe {
                            track: t,
                            layer: target(f),
                        });
                    }
                }
                match best {
                    Some((t, _, f)) if *ready => {
                        p.slot.state.target = Some(target(f));
                        self.fanout.entry(t).or_default().push(i);
                    }
                    _ => p.slot.state.stop(),
                }
            }
        }
        self.actions.extend(keyframes);
    }

    fn command(&mut self, cmd: Cmd) -> bool {
        match cmd {
            Cmd::Publish(who, kind, presiding, offer, reply) => {
                let _ = reply.send(self.publish(who, kind, presiding, offer));
            }
            Cmd::SubscribeOffer(who, kind, presiding, offer, reply) => {
                let _ = reply.send(self.subscribe_with_offer(who, kind, presiding, offer));
            }
            Cmd::Candidate(leg, candidate, reply) => {
                let _ = reply.send(self.add_candidate(leg, candidate));
            }
            Cmd::CloseLeg(leg, reply) => {
                let _ = reply.send(self.close_leg(leg));
            }
            Cmd::PendingOffer(leg, reply) => {
                let offer = self.index_of(leg).map(|i| match self.legs.get(i) {
                    Some(Some(Leg {
                        pc,
                        kind:
                            LegKind::Subscriber {
                                awaiting_answer: true,
                                ..
                            },
                        ..
                    })) => pc.local_description().map(|d| d.sdp),
                    _ => None,
                });
                let _ = reply.send(offer);
            }
            Cmd::Speaker(deputy, site, reply) => {
                let now = self.now_ms();
                let a = self.router.set_speaker(deputy, site, now);
                self.actions.extend(a);
                self.rebuild_fanout();
                let _ = reply.send(Ok(()));
            }
            Cmd::Subscribe(who, kind, presiding, reply) => {
                let _ = reply.send(self.subscribe(who, kind, presiding));
            }
            Cmd::Answer(leg, answer, reply) => {
                let _ = reply.send(self.answer(leg, answer));
            }
            Cmd::Floor(speaker, reply) => {
                let now = self.now_ms();
                let a = self.router.set_floor(speaker, now);
                self.actions.extend(a);
                self.rebuild_fanout();
                let _ = reply.send(Ok(()));
            }
            Cmd::Mute(who, muted, reply) => {
                let now = self.now_ms();
                let a = self.router.set_muted(&who, muted, now);
                self.actions.extend(a);
                self.rebuild_fanout();
                let _ = reply.send(Ok(()));
            }
            Cmd::Leave(who, reply) => {
                self.leave(&who);
                let _ = reply.send(Ok(()));
            }
            Cmd::Levels(reply) => {
                let mut levels: Vec<Level> = self
                    .levels
                    .drain()
                    .map(|(participant, (dbov, voice))| Level {
                        participant,
                        dbov,
                        voice,
                    })
                    .collect();
                levels.sort_by(|a, b| a.participant.cmp(&b.participant));
                let _ = reply.send(levels);
            }
            Cmd::Stats(reply) => {
                let _ = reply.send(self.stats.clone());
            }
            Cmd::Stop => return false,
        }
        true
    }

    /// A subscriber that just connected starts receiving (nothing is written to it before:
    /// it could not be encrypted), with a keyframe of every picture.
    fn keyframes_for_connected(&mut self) {
        let now = self.now_ms();
        let mut changed = false;
        while let Some(i) = self.connected.pop() {
            let Some(Some(Leg {
                id, owner, kind, ..
            })) = self.legs.get_mut(i)
            else {
                continue;
            };
            let LegKind::Subscriber { ready, .. } = kind else {
                continue;
            };
            *ready = true;
            self.meter.connected(id.0, now);
            changed = true;
            let owner = owner.clone();
            // The programme slots get their sources in the fan-out: rebuild it first.
            self.rebuild_fanout();
            let tracks: Vec<TrackId> = match self.legs.get(i) {
                Some(Some(l)) => l.kind.received().into_iter().map(|(t, _)| t).collect(),
                _ => Vec::new(),
            };
            for t in tracks {
                let a = self.router.request_keyframe(t, &owner, now);
                self.actions.extend(a);
            }
        }
        if changed {
            self.rebuild_fanout();
        }
    }

    /// Carries out the router's keyframe requests: a PLI to the publisher of the track.
    fn carry_out(&mut self) {
        for action in std::mem::take(&mut self.actions) {
            let routing::Action::RequestKeyframe { track, layer } = action else {
                continue;
            };
            let Some(&media_ssrc) = self.ssrc_of.get(&(track, layer)) else {
                continue;
            };
            let publisher = self.legs.iter().position(|l| {
                matches!(l, Some(Leg { kind: LegKind::Publisher { video: Some(v), .. }, .. }) if *v == track)
            });
            let Some(i) = publisher else { continue };
            if let Some(Some(leg)) = self.legs.get_mut(i) {
                let pli = PictureLossIndication {
                    sender_ssrc: 0,
                    media_ssrc,
                };
                let msg = TaggedRTCMessage {
                    now: Instant::now(),
                    message: RTCMessage::RtcpPacket(String::new(), vec![Box::new(pli)]),
                };
                if let Err(e) = leg.pc.handle_write(msg) {
                    tracing::debug!(error = %e, "keyframe request not sent");
                }
            }
            self.flush(i);
        }
    }

    /// Sends what a closing leg still has to say (DTLS close_notify).
    fn flush_closed(&self, leg: &mut Leg) {
        let sock = &self.port(leg.lane).sock;
        while let Some(msg) = leg.pc.poll_write() {
            let _ = sock.send_to(&msg.message, msg.transport.peer_addr);
        }
    }

    /// Takes what a leg has to send into the outbox, and acts on its events.
    fn flush(&mut self, idx: usize) {
        let Some(Some(leg)) = self.legs.get_mut(idx) else {
            return;
        };
        let port = match leg.lane {
            Lane::Priority => &mut self.ports[0],
            Lane::General => &mut self.ports[1],
        };
        while let Some(msg) = leg.pc.poll_write() {
            port.outbox.push((msg.message, msg.transport.peer_addr));
        }
        if port.outbox.len() >= SEND_BATCH {
            // A full batch goes at once: the first subscribers need not wait for the last.
            port.send();
        }
        let Some(Some(leg)) = self.legs.get_mut(idx) else {
            return;
        };
        while let Some(event) = leg.pc.poll_event() {
            match event {
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(
                    RTCPeerConnectionState::Failed,
                ) => {
                    tracing::info!(leg = idx, owner = %leg.owner.0, "media connection failed");
                    self.failed.push(idx);
                }
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(
                    RTCPeerConnectionState::Connected,
                ) => {
                    tracing::debug!(leg = idx, owner = %leg.owner.0, "media connected");
                    self.connected.push(idx);
                }
                RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                    // A simulcast layer's SSRC is bound to its rid: remember its layer.
                    if let LegKind::Publisher { rids, layers, .. } = &mut leg.kind
                        && let Some(rid) = init.rid.as_deref()
                        && let Some((_, layer)) = rids.iter().find(|(r, _)| r == rid)
                    {
                        tracing::debug!(
                            leg = idx,
                            rid,
                            ssrc = init.ssrc,
                            ?layer,
                            "simulcast layer"
                        );
                        layers.insert(init.ssrc, *layer);
                    }
                }
                _ => {}
            }
        }
    }

    /// A subscriber's keyframe requests go to the publisher (through the router's
    /// throttle); its bandwidth estimate chooses its layers.
    fn on_feedback(&mut self, from: usize, requests: Vec<Request>, sender: Option<u64>) {
        let now = self.now_ms();
        let Some(Some(Leg {
            owner,
            kind,
            estimates,
            ..
        })) = self.legs.get_mut(from)
        else {
            return;
        };
        if !matches!(kind, LegKind::Subscriber { .. }) {
            return;
        }
        let owner = owner.clone();
        let received = kind.received();
        let mut new_estimate = false;
        if let Some(bps) = sender {
            estimates.sender = Some(bps);
            new_estimate = true;
        }
        for r in &requests {
            if let Request::Estimate(bps) = r {
                estimates.remb = Some((*bps, now));
                new_estimate = true;
            }
        }
        let estimate = estimates.effective(now).filter(|_| new_estimate);
        // Only a receiver's own estimate needs tries one layer up to climb again.
        let remb_only = estimates.sender.is_none();
        for r in requests {
            if let Request::Keyframe(ssrc) = r {
                let track = received.iter().find(|(_, s)| *s == ssrc).map(|(t, _)| *t);
                if let Some(track) = track {
                    let a = self.router.request_keyframe(track, &owner, now);
                    self.actions.extend(a);
                }
            }
        }
        if let Some(bps) = estimate {
            self.stats.estimates.insert(owner.clone(), bps);
            let mut a = self.router.set_probing(&owner, remb_only, now);
            a.extend(self.router.set_estimate(&owner, bps, now));
            let changed = a
                .iter()
                .any(|x| !matches!(x, Action::RequestKeyframe { .. }));
            self.actions.extend(a);
            if changed {
                self.rebuild_fanout();
            }
        }
        self.carry_out();
    }

    /// Writes what a publisher leg decoded to every subscriber leg allowed to receive it,
    /// each at the layer its slot carries.
    fn forward(&mut self, from: usize) {
        // Events first: a simulcast layer is bound by the packet that is about to be read.
        self.flush(from);
        let mut packets = Vec::new();
        let mut requests = Vec::new();
        let Some(Some(leg)) = self.legs.get_mut(from) else {
            return;
        };
        while let Some(TaggedRTCMessage { message, .. }) = leg.pc.poll_read() {
            match message {
                RTCMessage::RtpPacket(_, pkt) => packets.push(pkt),
                RTCMessage::RtcpPacket(_, rtcp) => requests.extend(feedback::requests(&rtcp)),
                _ => {}
            }
        }
        let sender = leg.sender_estimate.as_ref().and_then(SenderEstimate::take);
        if !requests.is_empty() || sender.is_some() {
            self.on_feedback(from, requests, sender);
        }
        let Some(Some(leg)) = self.legs.get(from) else {
            return;
        };
        let LegKind::Publisher {
            audio,
            video,
            payload_types,
            rids,
            layers,
            audio_level_id,
        } = &leg.kind
        else {
            return;
        };
        let simulcast = !rids.is_empty();
        // How loud the publisher's microphone is, for the chair's view of who is talking.
        if let Some(id) = audio_level_id {
            for p in &packets {
                if payload_types.get(&p.header.payload_type) == Some(&Media::Audio)
                    && let Some((level, voice)) =
                        p.header.get_extension(*id).and_then(|e| audio_level(&e))
                {
                    let entry = self
                        .levels
                        .entry(leg.owner.clone())
                        .or_insert((level, voice));
                    *entry = (entry.0.min(level), entry.1 || voice);
                }
            }
        }
        // (track, layer, gated, video) of each packet; simulcast layers not yet bound are
        // dropped.
        let packets: Vec<(TrackId, Layer, bool, bool, rtc::rtp::Packet)> = packets
            .into_iter()
            .filter_map(|p| match payload_types.get(&p.header.payload_type) {
                Some(Media::Audio) => Some(((*audio)?, Layer::High, false, false, p)),
                Some(Media::Video) if simulcast => {
                    let layer = *layers.get(&p.header.ssrc)?;
                    Some(((*video)?, layer, true, true, p))
                }
                Some(Media::Video) => Some(((*video)?, Layer::High, false, true, p)),
                None => None,
            })
            .collect();
        let now = Instant::now();
        let now_ms = self.now_ms();
        for (track, layer, gated, video, mut pkt) in packets {
            *self.stats.received.entry(track).or_default() += 1;
            self.meter.received(track);
            self.ssrc_of.insert((track, layer), pkt.header.ssrc);
            // Extensions are negotiated per leg: none are carried over.
            strip_extensions(&mut pkt.header);
            let keyframe = video && vp8_keyframe(&pkt.payload);
            let ids = if video { vp8_ids(&pkt.payload) } else { None };
            // Taken out for the loop (nothing in it changes the fan-out) and put back.
            let targets = self.fanout.remove(&track).unwrap_or_default();
            for &i in &targets {
                let Some(Some(sub)) = self.legs.get_mut(i) else {
                    continue;
                };
                let Some(slot) = sub.kind.slot_mut(track) else {
                    continue;
                };
                let Some((seq, ts)) = slot.state.admit(
                    layer,
                    pkt.header.sequence_number,
                    pkt.header.timestamp,
                    keyframe,
                    gated,
                    now_ms,
                ) else {
                    continue;
                };
                let mut p = pkt.clone();
                if video && let Some(payload) = slot.state.vp8_payload(&pkt.payload, ids) {
                    p.payload = payload.into();
                }
                p.header.ssrc = slot.ssrc;
                p.header.payload_type = slot.payload_type;
                p.header.sequence_number = seq;
                p.header.timestamp = ts;
                let sender = slot.sender;
                if let Some(mut tx) = sub.pc.rtp_sender(sender)
                    && tx.write_rtp(now, p).is_ok()
                {
                    *self.stats.forwarded.entry(track).or_default() += 1;
                    self.meter.forwarded();
                }
                self.flush(i);
            }
            if !targets.is_empty() {
                self.fanout.insert(track, targets);
            }
        }
    }

    /// Sends what waits on both sockets, the publishers' first.
    fn send_outbox(&mut self) {
        for port in &mut self.ports {
            port.send();
        }
    }

    /// Hands one datagram to the leg it is for (known by its address, or by the ICE user
    /// fragment its STUN check names), then forwards what the leg decoded.
    fn receive(&mut self, lane: Lane, datagram: BytesMut, from: SocketAddr) {
        let idx = self.by_addr.get(&(lane, from)).copied().or_else(|| {
            let i = stun_target_ufrag(&datagram).and_then(|u| self.by_ufrag.get(&u).copied())?;
            // A leg answers on its own socket only.
            if self.legs.get(i)?.as_ref()?.lane != lane {
                return None;
            }
            self.by_addr.insert((lane, from), i);
            Some(i)
        });
        let local = self.port(lane).local;
        if let Some(i) = idx
            && let Some(Some(leg)) = self.legs.get_mut(i)
        {
            let started = Instant::now();
            // A publisher's packet is forwarding work; the governor estimates capacity from
            // that time alone.
            let publisher = matches!(leg.kind, LegKind::Publisher { .. });
            let msg = TaggedBytesMut {
                now: started,
                transport: TransportContext {
                    local_addr: local,
                    peer_addr: from,
                    ecn: None,
                    transport_protocol: TransportProtocol::UDP,
                },
                message: datagram,
            };
            if let Err(e) = leg.pc.handle_read(msg) {
                tracing::debug!(error = %e, "media packet refused");
            }
            self.forward(i);
            if let Some(Some(leg)) = self.legs.get_mut(i) {
                while leg.pc.poll_read().is_some() {}
            }
            self.flush(i);
            self.send_outbox();
            if publisher {
                self.meter.forwarding(started.elapsed());
            }
        }
    }

    /// Ends a load interval; sheds or restores forwarding when the governor says so.
    fn sample_load(&mut self, now: Instant) {
        let speaker = self.router.speaker().cloned();
        let programme: HashMap<TrackId, Media> = self
            .stats
            .tracks
            .iter()
            .filter(|(owner, _)| {
                self.joined.get(*owner) == Some(&Kind::Chamber) || speaker.as_ref() == Some(*owner)
            })
            .flat_map(|(_, tracks)| tracks.iter().copied())
            .collect();
        let sheddable = self.router.shedding_order().len();
        let at = self.now_ms();
        if let Some(shed) = self
            .meter
            .sample(now, at, |t| programme.get(&t).copied(), sheddable)
        {
            tracing::warn!(
                low_layers = shed.low_layers,
                video_off = shed.video_off,
                "media load: shedding changed"
            );
            let a = self.router.set_shed(shed, at);
            self.actions.extend(a);
            self.rebuild_fanout();
        }
    }

    /// Handles datagrams read together from one socket: sound and control before pictures.
    fn handle_batch(&mut self, lane: Lane, batch: &mut Vec<(BytesMut, SocketAddr)>) {
        if batch.len() > 1 {
            let picture = |(d, from): &(BytesMut, SocketAddr)| match self
                .by_addr
                .get(&(lane, *from))
                .and_then(|i| self.legs.get(*i))
            {
                Some(Some(Leg {
                    kind: LegKind::Publisher { payload_types, .. },
                    ..
                })) => is_picture(d, payload_types),
                _ => false,
            };
            // Stable: each kind keeps its order.
            batch.sort_by_key(picture);
        }
        for (datagram, from) in batch.drain(..) {
            self.receive(lane, datagram, from);
        }
    }

    fn run(mut self, cmds: std_mpsc::Receiver<Cmd>) {
        let mut buf = vec![0u8; 2048];
        let mut batch: Vec<(BytesMut, SocketAddr)> = Vec::with_capacity(RECV_BATCH);
        let mut next_timers = Instant::now();
        let mut working = Instant::now();
        loop {
            while let Ok(cmd) = cmds.try_recv() {
                if !self.command(cmd) {
                    return;
                }
                for i in 0..self.legs.len() {
                    self.flush(i);
                }
                self.send_outbox();
            }
            // Wait up to 2 ms for the first datagram on either socket. Then the publishers'
            // socket is read and handled first, all of it; then a batch of the receivers'.
            // Within a batch, sound and control go first, so a burst of picture packets (a
            // keyframe, fanned out to hundreds) does not hold a speaker's voice behind it.
            let mut fds = [
                PollFd::new(self.ports[0].sock.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.ports[1].sock.as_fd(), PollFlags::POLLIN),
            ];
            self.meter.busy(working.elapsed());
            let _ = poll(&mut fds, PollTimeout::from(2u8));
            working = Instant::now();
            for lane in [Lane::Priority, Lane::General] {
                loop {
                    batch.clear();
                    self.port(lane).receive(&mut buf, &mut batch, RECV_BATCH);
                    let full = batch.len() == RECV_BATCH;
                    self.handle_batch(lane, &mut batch);
                    // The receivers' socket gets one batch per round: then the publishers'
                    // is looked at again.
                    if !full || lane == Lane::General {
                        break;
                    }
                }
            }
            let now = Instant::now();
            if now >= next_timers {
                next_timers = now + Duration::from_millis(5);
                for i in 0..self.legs.len() {
                    if let Some(Some(leg)) = self.legs.get_mut(i)
                        && leg.pc.poll_timeout().is_some_and(|t| t <= now)
                    {
                        let _ = leg.pc.handle_timeout(now);
                        self.flush(i);
                    }
                }
                // Release what failed (a peer gone without a goodbye loses ICE consent).
                while let Some(i) = self.failed.pop() {
                    if let Some(Some(l)) = self.legs.get(i) {
                        let _ = self.events.send(LegEvent::Closed {
                            leg: l.id,
                            owner: l.owner.clone(),
                        });
                    }
                    let _ = self.close_index(i);
                }
                self.keyframes_for_connected();
                if self.meter.due(now) {
                    self.sample_load(now);
                }
                let a = self.router.tick(self.now_ms());
                // A try one layer up started or ended: the slots take their new targets.
                let moved = a
                    .iter()
                    .any(|x| !matches!(x, Action::RequestKeyframe { .. }));
                self.actions.extend(a);
                if moved {
                    self.rebuild_fanout();
                }
                self.carry_out();
                self.send_outbox();
            }
        }
    }
}
