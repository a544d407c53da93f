//! The media driver: every peer connection of the SFU, served by I/O threads, each around a
//! sans-IO core of its own with its own socket (the architecture chosen from the forwarding
//! benchmarks, `docs/benchmarks.md`). A core drives webrtc-rs's sans-IO `rtc` peer
//! connections directly and never awaits a subscriber: a packet from a publisher is written
//! to every subscriber the [`Router`] allows, then sent. This file is the handle
//! ([`Driver`]): it opens the sockets, starts the threads, places new legs on them and sends
//! them commands.
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
//! - `port` and `io`: the home thread's two UDP sockets (publishers and the protected
//!   receivers, the chamber, presiding deputies and chair consoles, on one, read first in
//!   every round; ordinary receivers on the other), each other thread's one, and a thread's
//!   loop around its core;
//! - `shard`: what passes between the threads (publishers' packets decoded once on the home
//!   thread and written by each thread to its own receivers; tracks published; keyframe
//!   requests back to the publishers).
//! - `wire`: SDP and STUN helpers.
//!
//! Control comes through the handle (publish, subscribe, answer, floor, mute, leave,
//! stats); each call wakes its thread and is applied between two rounds of socket I/O, so a
//! floor change takes effect for the very next packet. A floor, speaker, mute or departure
//! goes to every thread, and resolves once all have applied it. New ordinary receivers are
//! placed on the threads in turn (a thread at capacity passes to the next); publishers and
//! the protected are on the home thread.
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
//! (the client subscribes again); moving a receiver between threads as load changes.

mod core;
mod engine;
mod fanout;
mod io;
mod legs;
mod meter;
mod port;
mod shard;
mod signal;
#[cfg(test)]
mod sim;
mod wire;

pub use engine::{codec, media_engine, publishing_media_engine, subscribing_media_engine};
pub use shard::MAX_THREADS;
pub use wire::is_picture;

use crate::load::{LoadReport, LoadTuning};
use crate::routing::{Kind, Media, ParticipantId, TrackId, Tuning};
use port::{Lane, Port};
use shard::{Mesh, Place, Waker};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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
    /// Keyframe requests (PLI) sent to publishers since the start.
    pub keyframe_requests_total: u64,
    /// Publisher packets an I/O thread did not take from the home thread because it was
    /// that far behind, since the start.
    pub relay_dropped_total: u64,
}

impl Stats {
    /// Adds another thread's counts: what it forwarded, its receivers' estimates and layers.
    /// What was received, and the tracks, are the home thread's alone.
    fn absorb(&mut self, other: Stats) {
        for (t, n) in other.forwarded {
            *self.forwarded.entry(t).or_default() += n;
        }
        self.estimates.extend(other.estimates);
        self.forwarded_total += other.forwarded_total;
        self.forwarded_bytes_total += other.forwarded_bytes_total;
        self.keyframe_requests_total += other.keyframe_requests_total;
        for (l, n) in other.layers {
            *self.layers.entry(l).or_default() += n;
        }
    }
}

/// How a [`Driver`] is set up beyond its address.
#[derive(Debug, Clone)]
pub struct Options {
    /// What peers are told to reach instead of the bound address (the public address of a
    /// NAT 1:1, or the host's when bound to all interfaces).
    pub advertise: Option<std::net::IpAddr>,
    /// The router's tuning (layer headroom, keyframe throttle, layer tries).
    pub tuning: Tuning,
    /// The load governor's (when to shed, when to refuse new receivers), per thread.
    pub load: LoadTuning,
    /// I/O threads, each with a socket of its own; 0: one per core available. At most
    /// [`MAX_THREADS`].
    pub threads: usize,
}

impl Default for Options {
    /// One I/O thread, the bound address advertised, default tunings.
    fn default() -> Options {
        Options {
            advertise: None,
            tuning: Tuning::default(),
            load: LoadTuning::default(),
            threads: 1,
        }
    }
}

impl Options {
    /// The thread count to start: `threads`, or the cores available, within bounds.
    pub fn thread_count(&self) -> usize {
        let n = if self.threads == 0 {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        } else {
            self.threads
        };
        n.clamp(1, MAX_THREADS)
    }
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

/// One I/O thread as the handle sees it.
struct ShardHandle {
    tx: std_mpsc::Sender<Cmd>,
    waker: Arc<Waker>,
    load: Arc<Mutex<LoadReport>>,
    local: SocketAddr,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The handle to the media driver's threads.
pub struct Driver {
    shards: Vec<ShardHandle>,
    events: tokio::sync::broadcast::Sender<LegEvent>,
    priority_local: SocketAddr,
    /// Per thread: publisher packets it was too far behind to take.
    dropped: Vec<Arc<AtomicU64>>,
    /// Where the next ordinary receiver goes first.
    turn: AtomicUsize,
}

impl Driver {
    /// Opens the socket (buffers raised to 16 MiB) and starts the driver thread; peers are
    /// told the bound address.
    pub fn start(bind: SocketAddr) -> Result<Driver, DriverError> {
        Driver::open(bind, Options::default())
    }

    /// As [`Driver::start`], telling peers to reach the SFU at `advertise` (the public
    /// address of a NAT 1:1, or the host's address when bound to all interfaces) instead.
    pub fn start_advertising(
        bind: SocketAddr,
        advertise: Option<std::net::IpAddr>,
    ) -> Result<Driver, DriverError> {
        Driver::open(
            bind,
            Options {
                advertise,
                ..Options::default()
            },
        )
    }

    /// As [`Driver::start_advertising`], with the router tuned otherwise (layer headroom,
    /// keyframe throttle, layer tries).
    pub fn start_tuned(
        bind: SocketAddr,
        advertise: Option<std::net::IpAddr>,
        tuning: Tuning,
    ) -> Result<Driver, DriverError> {
        Driver::open(
            bind,
            Options {
                advertise,
                tuning,
                ..Options::default()
            },
        )
    }

    /// As [`Driver::start_tuned`], with the load governor tuned otherwise (when to shed,
    /// when to refuse new receivers).
    pub fn start_with(
        bind: SocketAddr,
        advertise: Option<std::net::IpAddr>,
        tuning: Tuning,
        load_tuning: LoadTuning,
    ) -> Result<Driver, DriverError> {
        Driver::open(
            bind,
            Options {
                advertise,
                tuning,
                load: load_tuning,
                threads: 1,
            },
        )
    }

    /// Starts [`Options::thread_count`] I/O threads. The home thread takes `bind` for
    /// ordinary receivers and the next port for publishers and the protected; each further
    /// thread the port after that (thread k: `bind`'s port + 1 + k), or any free port when
    /// `bind`'s is 0.
    pub fn open(bind: SocketAddr, options: Options) -> Result<Driver, DriverError> {
        let count = options.thread_count();
        let port_after = |k: usize| -> Result<u16, DriverError> {
            match bind.port() {
                0 => Ok(0),
                p => u16::try_from(usize::from(p) + k).map_err(|_| {
                    DriverError::Io(std::io::Error::new(
                        std::io::ErrorKind::AddrNotAvailable,
                        "no port after 65535",
                    ))
                }),
            }
        };
        let advertise = options.advertise;
        let general = Arc::new(Port::open(bind, advertise)?);
        // The publishers' socket: the next port (any free one when the first was too).
        let priority = Arc::new(Port::open(
            SocketAddr::new(bind.ip(), port_after(1)?),
            advertise,
        )?);
        let mut others = Vec::with_capacity(count - 1);
        for k in 1..count {
            let at = SocketAddr::new(bind.ip(), port_after(1 + k)?);
            others.push(Arc::new(Port::open(at, advertise)?));
        }
        let mesh = Mesh::new(count)?;
        let (events, _) = tokio::sync::broadcast::channel(1024);
        let now = Instant::now();
        let mut shards = Vec::with_capacity(count);
        let Mesh {
            inboxes,
            outlets,
            wakers,
            dropped,
        } = mesh;
        for (index, (inbox, waker)) in inboxes.into_iter().zip(wakers).enumerate() {
            let (wire, reads, lanes) = if index == 0 {
                (
                    [priority.clone(), general.clone()],
                    vec![
                        (Lane::Priority, priority.clone()),
                        (Lane::General, general.clone()),
                    ],
                    [
                        (priority.local, priority.advertised),
                        (general.local, general.advertised),
                    ],
                )
            } else {
                // One socket: nothing protected is placed here.
                let port = others[index - 1].clone();
                (
                    [port.clone(), port.clone()],
                    vec![(Lane::General, port.clone())],
                    [(port.local, port.advertised); 2],
                )
            };
            let local = lanes[1].0;
            let load = Arc::new(Mutex::new(LoadReport::default()));
            let core = core::Core::new(
                Place { index, count },
                Box::new(io::Sockets(wire)),
                lanes,
                options.tuning,
                meter::Meter::new(options.load, load.clone(), now),
                events.clone(),
                now,
            );
            let (tx, cmds) = std_mpsc::channel();
            let shard = io::Shard {
                core,
                reads,
                cmds,
                inbox,
                waker: waker.clone(),
                outlets: outlets.clone(),
            };
            let name = if index == 0 {
                "sfu-io".to_owned()
            } else {
                format!("sfu-io-{index}")
            };
            let thread = std::thread::Builder::new()
                .name(name)
                .spawn(move || io::run(shard))?;
            shards.push(ShardHandle {
                tx,
                waker,
                load,
                local,
                thread: Some(thread),
            });
        }
        Ok(Driver {
            shards,
            events,
            priority_local: priority.local,
            dropped,
            turn: AtomicUsize::new(0),
        })
    }

    /// How many I/O threads run.
    pub fn threads(&self) -> usize {
        self.shards.len()
    }

    /// New offers on existing subscriber connections, as tracks are published, and legs
    /// that ended by themselves. A receiver that lags can ask [`Driver::pending_offer`].
    pub fn events(&self) -> tokio::sync::broadcast::Receiver<LegEvent> {
        self.events.subscribe()
    }

    /// The SFU's offer on `leg` still waiting for its answer, if any.
    pub async fn pending_offer(&self, leg: LegId) -> Result<Option<String>, DriverError> {
        self.call(leg, |r| Cmd::PendingOffer(leg, r)).await
    }

    /// The address of the home thread's receivers' socket.
    pub fn local_addr(&self) -> SocketAddr {
        self.shards.first().map_or(self.priority_local, |s| s.local)
    }

    /// The receivers' socket of every I/O thread, the home thread's first.
    pub fn receiver_addrs(&self) -> Vec<SocketAddr> {
        self.shards.iter().map(|s| s.local).collect()
    }

    /// The address of the socket of publishers and of the receivers never shed (the
    /// chamber, presiding deputies, chair consoles): read before the other.
    pub fn priority_addr(&self) -> SocketAddr {
        self.priority_local
    }

    /// The I/O threads' load as last measured, together: see [`LoadReport::combine`].
    pub fn load(&self) -> LoadReport {
        LoadReport::combine(&self.loads())
    }

    /// Each I/O thread's load as last measured: utilisation, capacity, what is shed.
    pub fn loads(&self) -> Vec<LoadReport> {
        self.shards
            .iter()
            .map(|s| s.load.lock().map(|r| *r).unwrap_or_default())
            .collect()
    }

    fn send_to(&self, shard: usize, cmd: Cmd) -> Result<(), DriverError> {
        let s = self.shards.get(shard).ok_or(DriverError::NoSuchPeer)?;
        s.tx.send(cmd).map_err(|_| DriverError::Stopped)?;
        s.waker.wake();
        Ok(())
    }

    /// A command to one thread.
    async fn call_on<T>(
        &self,
        shard: usize,
        make: impl FnOnce(Reply<T>) -> Cmd,
    ) -> Result<T, DriverError> {
        let (tx, rx) = oneshot::channel();
        self.send_to(shard, make(tx))?;
        rx.await.map_err(|_| DriverError::Stopped)?
    }

    /// A command to the thread that made `leg`.
    async fn call<T>(
        &self,
        leg: LegId,
        make: impl FnOnce(Reply<T>) -> Cmd,
    ) -> Result<T, DriverError> {
        self.call_on(shard::shard_of(leg.0), make).await
    }

    /// A question to every thread (all asked before any answer is awaited): the answers,
    /// the home thread's first.
    async fn ask_all<T>(
        &self,
        make: impl Fn(oneshot::Sender<T>) -> Cmd,
    ) -> Result<Vec<T>, DriverError> {
        let mut replies = Vec::with_capacity(self.shards.len());
        for i in 0..self.shards.len() {
            let (tx, rx) = oneshot::channel();
            self.send_to(i, make(tx))?;
            replies.push(rx);
        }
        let mut answers = Vec::with_capacity(replies.len());
        for rx in replies {
            answers.push(rx.await.map_err(|_| DriverError::Stopped)?);
        }
        Ok(answers)
    }

    /// A command to every thread, resolved once all have applied it.
    async fn call_all(&self, make: impl Fn(Reply<()>) -> Cmd) -> Result<(), DriverError> {
        self.ask_all(make).await?.into_iter().collect()
    }

    /// The threads a new receiving leg is offered to, in order: the home thread alone for
    /// the protected (the chamber, presiding participants, chair consoles); for others,
    /// every thread, starting with the next in turn.
    fn placement(&self, kind: Kind, presiding: bool) -> Vec<usize> {
        let n = self.shards.len();
        if n == 1 || presiding || matches!(kind, Kind::Chamber | Kind::ChairConsole) {
            return vec![0];
        }
        let first = self.turn.fetch_add(1, Ordering::Relaxed) % n;
        (0..n).map(|k| (first + k) % n).collect()
    }

    /// A new receiving leg, made by the first thread in [`Driver::placement`] with room
    /// for it; refused ([`DriverError::Overloaded`]) when none has.
    async fn place<T>(
        &self,
        who: &ParticipantId,
        kind: Kind,
        presiding: bool,
        make: impl Fn(Reply<T>) -> Cmd,
    ) -> Result<T, DriverError> {
        let mut refused = None;
        let threads = self.placement(kind, presiding);
        let tried = threads.len();
        for shard in threads {
            match self.call_on(shard, &make).await {
                Err(DriverError::Overloaded { retry_after_s }) => {
                    let r = refused.map_or(retry_after_s, |r: u64| r.min(retry_after_s));
                    refused = Some(r);
                }
                other => return other,
            }
        }
        let retry_after_s = refused.unwrap_or(1);
        tracing::warn!(participant = %who.0, threads = tried, retry_after_s, "receiver refused: at capacity");
        Err(DriverError::Overloaded { retry_after_s })
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
        self.call_on(0, |r| Cmd::Publish(who, kind, presiding, offer, r))
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
        self.place(&who, kind, presiding, |r| {
            Cmd::SubscribeOffer(who.clone(), kind, presiding, offer.clone(), r)
        })
        .await
    }

    /// A remote ICE candidate trickled by the peer of `leg` (JSON `candidate` line of an
    /// `RTCIceCandidateInit`; an empty string ends the candidates).
    pub async fn add_candidate(&self, leg: LegId, candidate: String) -> Result<(), DriverError> {
        self.call(leg, |r| Cmd::Candidate(leg, candidate, r)).await
    }

    /// Closes one leg: its tracks (if it published) stop everywhere; a participant left
    /// with no leg leaves.
    pub async fn close_leg(&self, leg: LegId) -> Result<(), DriverError> {
        self.call(leg, |r| Cmd::CloseLeg(leg, r)).await
    }

    /// The floor moved to `deputy`, sitting at delegation site `site` (if any): their own
    /// microphone is forwarded when they publish one, the site's room otherwise.
    pub async fn set_speaker(
        &self,
        deputy: Option<ParticipantId>,
        site: Option<ParticipantId>,
    ) -> Result<(), DriverError> {
        self.call_all(|r| Cmd::Speaker(deputy.clone(), site.clone(), r))
            .await
    }

    /// A participant subscribes: returns the SFU's offer for its receiving leg.
    pub async fn subscribe(
        &self,
        who: ParticipantId,
        kind: Kind,
        presiding: bool,
    ) -> Result<(LegId, RTCSessionDescription), DriverError> {
        self.place(&who, kind, presiding, |r| {
            Cmd::Subscribe(who.clone(), kind, presiding, r)
        })
        .await
    }

    /// The subscriber's answer to the SFU's offer.
    pub async fn answer(
        &self,
        leg: LegId,
        answer: RTCSessionDescription,
    ) -> Result<(), DriverError> {
        self.call(leg, |r| Cmd::Answer(leg, answer, r)).await
    }

    /// The floor moved; resolves once the next packet obeys it.
    pub async fn set_floor(&self, speaker: Option<ParticipantId>) -> Result<(), DriverError> {
        self.call_all(|r| Cmd::Floor(speaker.clone(), r)).await
    }

    /// The chair muted or unmuted a microphone's console preview.
    pub async fn set_muted(&self, who: ParticipantId, muted: bool) -> Result<(), DriverError> {
        self.call_all(|r| Cmd::Mute(who.clone(), muted, r)).await
    }

    /// A participant left: its legs are closed and everything it sent or received stops.
    pub async fn leave(&self, who: ParticipantId) -> Result<(), DriverError> {
        self.call_all(|r| Cmd::Leave(who.clone(), r)).await
    }

    /// How loud each microphone heard since the last call was (RFC 6464 levels sent by the
    /// publishers), by participant.
    pub async fn levels(&self) -> Result<Vec<Level>, DriverError> {
        // Publishers are on the home thread.
        let (tx, rx) = oneshot::channel();
        self.send_to(0, Cmd::Levels(tx))?;
        rx.await.map_err(|_| DriverError::Stopped)
    }

    /// Counters, of all threads together.
    pub async fn stats(&self) -> Result<Stats, DriverError> {
        let mut threads = self.ask_all(Cmd::Stats).await?.into_iter();
        let mut all = threads.next().unwrap_or_default();
        for s in threads {
            all.absorb(s);
        }
        all.relay_dropped_total = self.dropped.iter().map(|d| d.load(Ordering::Relaxed)).sum();
        Ok(all)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        for s in &self.shards {
            let _ = s.tx.send(Cmd::Stop);
            s.waker.wake();
        }
        for s in &mut self.shards {
            if let Some(t) = s.thread.take() {
                let _ = t.join();
            }
        }
    }
}
