//! The media I/O driver: every peer connection of the SFU on ONE UDP socket, served by ONE
//! thread that drives webrtc-rs's sans-IO `rtc` core directly (the architecture chosen from
//! the forwarding benchmarks, `docs/benchmarks.md`). It never awaits a subscriber: a packet
//! from a publisher is written to every subscriber the [`Router`] allows, then sent.
//!
//! Control comes through a [`Driver`] handle (publish, subscribe, answer, floor, mute,
//! leave, stats); each call is applied between two rounds of socket I/O, so a floor change
//! takes effect for the very next packet.
//!
//! This first slice: audio (Opus) and video (VP8) without simulcast; a subscriber's peer
//! connection carries a slot for every track published when it subscribed (tracks published
//! later need a renegotiation, not built yet); keyframe requests from the router are not yet
//! sent to publishers.

use crate::routing::{self, Kind, Layer, Media, ParticipantId, Router, Track, TrackId, Tuning};
use bytes::BytesMut;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_OPUS, MIME_TYPE_VP8, MediaEngine,
};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::{CandidateConfig, CandidateHostConfig, RTCIceCandidate};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use std::collections::{BTreeMap, HashMap};
use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// VP8's payload type, fixed on every leg.
pub const VP8_PT: u8 = 96;
/// Opus's payload type, fixed on every leg.
pub const OPUS_PT: u8 = 111;

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
}

fn rtc_err(e: impl std::fmt::Display) -> DriverError {
    DriverError::Rtc(e.to_string())
}

/// A subscriber leg, to send its answer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LegId(usize);

/// Counters, for tests and metrics.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Packets received from publishers, per track.
    pub received: BTreeMap<TrackId, u64>,
    /// Packets written to subscribers, per track.
    pub forwarded: BTreeMap<TrackId, u64>,
    /// Tracks of each publisher.
    pub tracks: BTreeMap<ParticipantId, Vec<(TrackId, Media)>>,
}

type Reply<T> = oneshot::Sender<Result<T, DriverError>>;

enum Cmd {
    Publish(
        ParticipantId,
        Kind,
        bool,
        RTCSessionDescription,
        Reply<RTCSessionDescription>,
    ),
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
    Stop,
}

/// The handle to the media driver thread.
pub struct Driver {
    tx: std_mpsc::Sender<Cmd>,
    local: SocketAddr,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Driver {
    /// Opens the socket (buffers raised to 16 MiB) and starts the driver thread.
    pub fn start(bind: SocketAddr) -> Result<Driver, DriverError> {
        let sock = UdpSocket::bind(bind)?;
        let s2 = socket2::SockRef::from(&sock);
        // The default 208 KB receive buffer overflows at a few hundred subscribers.
        let _ = s2.set_recv_buffer_size(16 << 20);
        let _ = s2.set_send_buffer_size(16 << 20);
        sock.set_read_timeout(Some(Duration::from_millis(2)))?;
        let local = sock.local_addr()?;
        let (tx, rx) = std_mpsc::channel();
        let core = Core {
            sock,
            local,
            t0: Instant::now(),
            router: Router::new(Tuning::default()),
            joined: HashMap::new(),
            legs: Vec::new(),
            free: Vec::new(),
            by_addr: HashMap::new(),
            by_ufrag: HashMap::new(),
            fanout: HashMap::new(),
            next_track: 1,
            stats: Stats::default(),
        };
        let thread = std::thread::Builder::new()
            .name("sfu-io".into())
            .spawn(move || core.run(rx))?;
        Ok(Driver {
            tx,
            local,
            thread: Some(thread),
        })
    }

    /// The address every peer connects to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Cmd) -> Result<T, DriverError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).map_err(|_| DriverError::Stopped)?;
        rx.await.map_err(|_| DriverError::Stopped)?
    }

    /// A participant publishes: takes its offer (audio and/or video), returns the answer.
    pub async fn publish(
        &self,
        who: ParticipantId,
        kind: Kind,
        presiding: bool,
        offer: RTCSessionDescription,
    ) -> Result<RTCSessionDescription, DriverError> {
        self.call(|r| Cmd::Publish(who, kind, presiding, offer, r))
            .await
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

fn codec(kind: RtpCodecKind) -> RTCRtpCodecParameters {
    let (mime, clock_rate, channels, fmtp, payload_type) = match kind {
        RtpCodecKind::Audio => (
            MIME_TYPE_OPUS,
            48000,
            2,
            "minptime=10;useinbandfec=1",
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

/// Opus and VP8 with their fixed payload types.
pub fn media_engine() -> Result<MediaEngine, DriverError> {
    let mut m = MediaEngine::default();
    m.register_codec(codec(RtpCodecKind::Audio), RtpCodecKind::Audio)
        .map_err(rtc_err)?;
    m.register_codec(codec(RtpCodecKind::Video), RtpCodecKind::Video)
        .map_err(rtc_err)?;
    Ok(m)
}

enum LegKind {
    /// Receives from a publisher: its tracks by payload type.
    Publisher {
        audio: Option<TrackId>,
        video: Option<TrackId>,
    },
    /// Sends to a subscriber: one slot per track.
    Subscriber {
        slots: HashMap<TrackId, (RTCRtpSenderId, u32)>,
        ready: bool,
    },
}

struct Leg {
    pc: RTCPeerConnection,
    owner: ParticipantId,
    kind: LegKind,
}

struct Core {
    sock: UdpSocket,
    local: SocketAddr,
    t0: Instant,
    router: Router,
    joined: HashMap<ParticipantId, ()>,
    legs: Vec<Option<Leg>>,
    /// Slots of `legs` freed by departures, reused first so the table does not grow.
    free: Vec<usize>,
    by_addr: HashMap<SocketAddr, usize>,
    by_ufrag: HashMap<String, usize>,
    /// For each track, the legs (and their slot) it is forwarded to now.
    fanout: HashMap<TrackId, Vec<(usize, RTCRtpSenderId, u32)>>,
    next_track: u32,
    stats: Stats,
}

/// The first half of a STUN USERNAME ("receiver:sender"): the ufrag of the leg it is for.
fn stun_target_ufrag(b: &[u8]) -> Option<String> {
    if b.len() < 20 || b[0] & 0xc0 != 0 || b[4..8] != [0x21, 0x12, 0xa4, 0x42] {
        return None;
    }
    let mut i = 20;
    while i + 4 <= b.len() {
        let t = u16::from_be_bytes([b[i], b[i + 1]]);
        let l = u16::from_be_bytes([b[i + 2], b[i + 3]]) as usize;
        if i + 4 + l > b.len() {
            return None;
        }
        if t == 0x0006 {
            let user = std::str::from_utf8(&b[i + 4..i + 4 + l]).ok()?;
            return user.split(':').next().map(str::to_owned);
        }
        i += 4 + l.div_ceil(4) * 4;
    }
    None
}

fn sdp_ufrag(sdp: &str) -> Option<String> {
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix("a=ice-ufrag:").map(str::to_owned))
}

fn sdp_candidates(sdp: &str) -> Vec<SocketAddr> {
    sdp.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l
                .trim()
                .strip_prefix("a=candidate:")?
                .split_whitespace()
                .collect();
            format!("{}:{}", f.get(4)?, f.get(5)?).parse().ok()
        })
        .collect()
}

fn sdp_media(sdp: &str) -> (bool, bool) {
    let audio = sdp.lines().any(|l| l.starts_with("m=audio"));
    let video = sdp.lines().any(|l| l.starts_with("m=video"));
    (audio, video)
}

impl Core {
    fn now_ms(&self) -> routing::Millis {
        u64::try_from(self.t0.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn new_pc(&self) -> Result<RTCPeerConnection, DriverError> {
        let settings = SettingEngineBuilder::new()
            .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
            .build();
        RTCPeerConnectionBuilder::new()
            .with_media_engine(media_engine()?)
            .with_setting_engine(settings)
            .build(Instant::now())
            .map_err(rtc_err)
    }

    fn add_host_candidate(&self, pc: &mut RTCPeerConnection) -> Result<(), DriverError> {
        let candidate = CandidateHostConfig {
            base_config: CandidateConfig {
                network: "udp".to_owned(),
                address: self.local.ip().to_string(),
                port: self.local.port(),
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
            self.joined.insert(who.clone(), ());
            let now = self.now_ms();
            self.router.join(who.clone(), kind, presiding, now);
        }
    }

    fn next_leg_index(&self) -> usize {
        self.free.last().copied().unwrap_or(self.legs.len())
    }

    fn add_leg(&mut self, leg: Leg) -> usize {
        let idx = self.next_leg_index();
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
    ) -> Result<RTCSessionDescription, DriverError> {
        self.join(&who, kind, presiding);
        let (has_audio, has_video) = sdp_media(&offer.sdp);
        let candidates = sdp_candidates(&offer.sdp);
        let mut pc = self.new_pc()?;
        pc.set_remote_description(Instant::now(), offer)
            .map_err(rtc_err)?;
        let answer = pc.create_answer(None).map_err(rtc_err)?;
        pc.set_local_description(Instant::now(), answer)
            .map_err(rtc_err)?;
        self.add_host_candidate(&mut pc)?;
        let sdp = pc
            .local_description()
            .ok_or_else(|| rtc_err("no local description"))?;
        let now = self.now_ms();
        let new_track = |media: Media, bps: u64, core: &mut Core| {
            let id = TrackId(core.next_track);
            core.next_track += 1;
            core.router.publish(
                id,
                Track {
                    owner: who.clone(),
                    media,
                    layers: vec![(Layer::High, bps)],
                },
                now,
            );
            core.stats
                .tracks
                .entry(who.clone())
                .or_default()
                .push((id, media));
            id
        };
        let audio = has_audio.then(|| new_track(Media::Audio, 40_000, self));
        let video = has_video.then(|| new_track(Media::Video, 2_500_000, self));
        let idx = self.add_leg(Leg {
            pc,
            owner: who,
            kind: LegKind::Publisher { audio, video },
        });
        for a in candidates {
            self.by_addr.insert(a, idx);
        }
        self.rebuild_fanout();
        Ok(sdp)
    }

    fn subscribe(
        &mut self,
        who: ParticipantId,
        kind: Kind,
        presiding: bool,
    ) -> Result<(LegId, RTCSessionDescription), DriverError> {
        self.join(&who, kind, presiding);
        let mut pc = self.new_pc()?;
        let idx = self.next_leg_index();
        let mut slots = HashMap::new();
        let tracks: Vec<(TrackId, Media)> = self
            .stats
            .tracks
            .iter()
            .filter(|(owner, _)| **owner != who)
            .flat_map(|(_, t)| t.iter().copied())
            .collect();
        for (n, (track, media)) in tracks.into_iter().enumerate() {
            let ssrc = 0x1000_0000 + (idx as u32) * 256 + n as u32;
            let k = if media == Media::Audio {
                RtpCodecKind::Audio
            } else {
                RtpCodecKind::Video
            };
            let t = MediaStreamTrack::new(
                format!("t{}", track.0),
                format!("t{}-{k}", track.0),
                format!("t{}-{k}", track.0),
                k,
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        ssrc: Some(ssrc),
                        ..Default::default()
                    },
                    codec: codec(k).rtp_codec,
                    ..Default::default()
                }],
            );
            let sender = pc.add_track(t).map_err(rtc_err)?;
            slots.insert(track, (sender, ssrc));
        }
        let offer = pc.create_offer(None).map_err(rtc_err)?;
        pc.set_local_description(Instant::now(), offer)
            .map_err(rtc_err)?;
        self.add_host_candidate(&mut pc)?;
        let sdp = pc
            .local_description()
            .ok_or_else(|| rtc_err("no local description"))?;
        let idx = self.add_leg(Leg {
            pc,
            owner: who,
            kind: LegKind::Subscriber {
                slots,
                ready: false,
            },
        });
        Ok((LegId(idx), sdp))
    }

    fn answer(&mut self, leg: LegId, answer: RTCSessionDescription) -> Result<(), DriverError> {
        let candidates = sdp_candidates(&answer.sdp);
        let l = self
            .legs
            .get_mut(leg.0)
            .and_then(Option::as_mut)
            .ok_or(DriverError::NoSuchPeer)?;
        l.pc.set_remote_description(Instant::now(), answer)
            .map_err(rtc_err)?;
        if let LegKind::Subscriber { ready, .. } = &mut l.kind {
            *ready = true;
        }
        for a in candidates {
            self.by_addr.insert(a, leg.0);
        }
        self.rebuild_fanout();
        Ok(())
    }

    fn leave(&mut self, who: &ParticipantId) {
        for i in 0..self.legs.len() {
            if self.legs[i].as_ref().is_some_and(|l| &l.owner == who) {
                if let Some(mut l) = self.legs[i].take() {
                    let _ = l.pc.close();
                    self.flush_closed(&mut l);
                    self.free.push(i);
                }
                self.by_addr.retain(|_, v| *v != i);
                self.by_ufrag.retain(|_, v| *v != i);
            }
        }
        self.joined.remove(who);
        if let Some(tracks) = self.stats.tracks.remove(who) {
            for (t, _) in tracks {
                self.stats.received.remove(&t);
                self.stats.forwarded.remove(&t);
            }
        }
        let now = self.now_ms();
        self.router.leave(who, now);
        self.rebuild_fanout();
    }

    /// Recomputes, from the router, which legs each track is written to.
    fn rebuild_fanout(&mut self) {
        self.fanout.clear();
        let mut subscriber_legs: HashMap<&ParticipantId, Vec<usize>> = HashMap::new();
        for (i, l) in self.legs.iter().enumerate() {
            if let Some(Leg {
                owner,
                kind: LegKind::Subscriber { ready: true, .. },
                ..
            }) = l
            {
                subscriber_legs.entry(owner).or_default().push(i);
            }
        }
        for ((track, to), _) in self.router.forwarded() {
            for &i in subscriber_legs.get(to).into_iter().flatten() {
                if let Some(Some(Leg {
                    kind: LegKind::Subscriber { slots, .. },
                    ..
                })) = self.legs.get(i)
                    && let Some((sender, ssrc)) = slots.get(track)
                {
                    self.fanout
                        .entry(*track)
                        .or_default()
                        .push((i, *sender, *ssrc));
                }
            }
        }
    }

    fn command(&mut self, cmd: Cmd) -> bool {
        match cmd {
            Cmd::Publish(who, kind, presiding, offer, reply) => {
                let _ = reply.send(self.publish(who, kind, presiding, offer));
            }
            Cmd::Subscribe(who, kind, presiding, reply) => {
                let _ = reply.send(self.subscribe(who, kind, presiding));
            }
            Cmd::Answer(leg, answer, reply) => {
                let _ = reply.send(self.answer(leg, answer));
            }
            Cmd::Floor(speaker, reply) => {
                let now = self.now_ms();
                self.router.set_floor(speaker, now);
                self.rebuild_fanout();
                let _ = reply.send(Ok(()));
            }
            Cmd::Mute(who, muted, reply) => {
                let now = self.now_ms();
                self.router.set_muted(&who, muted, now);
                self.rebuild_fanout();
                let _ = reply.send(Ok(()));
            }
            Cmd::Leave(who, reply) => {
                self.leave(&who);
                let _ = reply.send(Ok(()));
            }
            Cmd::Stats(reply) => {
                let _ = reply.send(self.stats.clone());
            }
            Cmd::Stop => return false,
        }
        true
    }

    /// Sends what a closing leg still has to say (DTLS close_notify).
    fn flush_closed(&self, leg: &mut Leg) {
        while let Some(msg) = leg.pc.poll_write() {
            let _ = self.sock.send_to(&msg.message, msg.transport.peer_addr);
        }
    }

    fn flush(&mut self, idx: usize) {
        let Some(Some(leg)) = self.legs.get_mut(idx) else {
            return;
        };
        while let Some(msg) = leg.pc.poll_write() {
            let _ = self.sock.send_to(&msg.message, msg.transport.peer_addr);
        }
        while leg.pc.poll_event().is_some() {}
    }

    /// Writes what a publisher leg decoded to every subscriber leg allowed to receive it.
    fn forward(&mut self, from: usize) {
        let mut packets = Vec::new();
        let Some(Some(leg)) = self.legs.get_mut(from) else {
            return;
        };
        while let Some(TaggedRTCMessage { message, .. }) = leg.pc.poll_read() {
            if let RTCMessage::RtpPacket(_, pkt) = message {
                packets.push(pkt);
            }
        }
        let LegKind::Publisher { audio, video } = &leg.kind else {
            return;
        };
        let (audio, video) = (*audio, *video);
        let now = Instant::now();
        for pkt in packets {
            let track = if pkt.header.payload_type == OPUS_PT {
                audio
            } else {
                video
            };
            let Some(track) = track else { continue };
            *self.stats.received.entry(track).or_default() += 1;
            let targets = self.fanout.get(&track).cloned().unwrap_or_default();
            for (i, sender, ssrc) in targets {
                let Some(Some(sub)) = self.legs.get_mut(i) else {
                    continue;
                };
                let mut p = pkt.clone();
                p.header.ssrc = ssrc;
                if let Some(mut tx) = sub.pc.rtp_sender(sender)
                    && tx.write_rtp(now, p).is_ok()
                {
                    *self.stats.forwarded.entry(track).or_default() += 1;
                }
                self.flush(i);
            }
        }
    }

    fn run(mut self, cmds: std_mpsc::Receiver<Cmd>) {
        let mut buf = vec![0u8; 2048];
        let mut next_timers = Instant::now();
        loop {
            while let Ok(cmd) = cmds.try_recv() {
                if !self.command(cmd) {
                    return;
                }
                for i in 0..self.legs.len() {
                    self.flush(i);
                }
            }
            match self.sock.recv_from(&mut buf) {
                Ok((n, from)) => {
                    let idx = self.by_addr.get(&from).copied().or_else(|| {
                        let i = stun_target_ufrag(&buf[..n])
                            .and_then(|u| self.by_ufrag.get(&u).copied())?;
                        self.by_addr.insert(from, i);
                        Some(i)
                    });
                    if let Some(i) = idx
                        && let Some(Some(leg)) = self.legs.get_mut(i)
                    {
                        let msg = TaggedBytesMut {
                            now: Instant::now(),
                            transport: TransportContext {
                                local_addr: self.local,
                                peer_addr: from,
                                ecn: None,
                                transport_protocol: TransportProtocol::UDP,
                            },
                            message: BytesMut::from(&buf[..n]),
                        };
                        if let Err(e) = leg.pc.handle_read(msg) {
                            tracing::debug!(error = %e, "media packet refused");
                        }
                        self.forward(i);
                        if let Some(Some(leg)) = self.legs.get_mut(i) {
                            while leg.pc.poll_read().is_some() {}
                        }
                        self.flush(i);
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => tracing::warn!(error = %e, "media socket"),
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
            }
        }
    }
}
