//! The media driver: every peer connection of the SFU, served by ONE I/O thread around a
//! sans-IO core (the architecture chosen from the forwarding benchmarks,
//! `docs/benchmarks.md`). The core drives webrtc-rs's sans-IO `rtc` peer connections
//! directly and never awaits a subscriber: a packet from a publisher is written to every
//! subscriber the [`Router`] allows, then sent. This file is the handle ([`Driver`]): it
//! opens the sockets, starts the thread and sends it commands.
//!
//! By concern:
//! - `core`: the sans-IO core (datagrams, commands and time in, datagrams and events out),
//!   the legs' table and life cycle;
//! - `legs`: what a publisher's or a subscriber's leg holds;
//! - `engine`: codecs, payload types, header extensions, new peer connections;
//! - `signal`: offers and answers, WHEP programme slots, admission of new receivers;
//! - `fanout`: forwarding, keyframes, subscribers' feedback and estimates;
//! - `meter`: the thread's measured load, for the governor ([`crate::load`]), which decides
//!   what to shed (applied through the router) and whom to admit (refused ones get
//!   [`DriverError::Overloaded`]);
//! - `port` and `io`: two UDP sockets (publishers and the protected receivers, the chamber,
//!   presiding deputies and chair consoles, on one, read first in every round; every other
//!   receiver on the other), and the thread's loop around the core;
//! - `wire`: SDP and STUN helpers.
//!
//! Control comes through the handle (publish, subscribe, answer, floor, mute, leave,
//! stats); each call is applied between two rounds of socket I/O, so a floor change takes
//! effect for the very next packet.
//!
//! Subscribers come two ways: the SFU offers (the WebSocket signalling: a slot for every
//! track, offered again as tracks are published), or the subscriber offers (WHEP: one
//! programme slot per kind, fed by the speaker while someone holds the floor and by the
//! chamber otherwise, switched without a seam).
//!
//! Simulcast: a publisher that offers `a=rid`/`a=simulcast` layers has each SSRC bound to
//! its layer by the core (mid/rid header extensions); each subscriber's slot carries the
//! layer the router chose, switching at the new layer's keyframe with the numbering kept
//! continuous (`crate::forward`). Keyframes are asked of publishers with PLI.
//!
//! Each subscriber's layers follow the estimate it reports (REMB); its keyframe requests
//! (PLI/FIR) go to the publisher through the router's throttle; NACKs are answered from the
//! core's send buffer (`crate::feedback`).
//!
//! Not yet built: renegotiation when tracks are published after a WHEP subscriber joined
//! (the client subscribes again), more than one I/O thread.

mod core;
mod engine;
mod fanout;
mod io;
mod legs;
mod meter;
mod port;
mod signal;
#[cfg(test)]
mod sim;
mod wire;

pub use engine::{codec, media_engine, publishing_media_engine, subscribing_media_engine};
pub use wire::is_picture;

use crate::load::{LoadReport, LoadTuning};
use crate::routing::{Kind, Media, ParticipantId, TrackId, Tuning};
use port::Port;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;
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
    /// Packets received from publishers since the start (never falls as tracks end).
    pub received_total: u64,
    /// Packets written to subscribers since the start.
    pub forwarded_total: u64,
    /// Bytes of RTP (header and payload, before SRTP) written to subscribers since the start.
    pub forwarded_bytes_total: u64,
    /// Video forwarded now, per simulcast layer: how many (track, receiver) pairs get it.
    pub layers: BTreeMap<crate::routing::Layer, u64>,
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
        let lanes = [
            (priority.local, priority.advertised),
            (general.local, general.advertised),
        ];
        let ports = [Arc::new(priority), Arc::new(general)];
        let now = Instant::now();
        let core = core::Core::new(
            Box::new(io::Sockets(ports.clone())),
            lanes,
            tuning,
            meter::Meter::new(load_tuning, load.clone(), now),
            events.clone(),
            now,
        );
        let thread = std::thread::Builder::new()
            .name("sfu-io".into())
            .spawn(move || io::run(core, ports, rx))?;
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
