//! A simulated network for the sans-IO core: the core and webrtc-rs sans-IO peers exchange
//! datagrams through links with loss, delay, jitter (so reordering) and a rate limit, on a
//! virtual clock. No socket, no thread and no wall time: a run is the same every time.
//!
//! [`Net`] holds the core (or several, as the shards of several I/O threads, with what they
//! relay to each other handed over at once) and the peers. Each millisecond of virtual time
//! it delivers what is due, lets every peer send and read (publishers send sound every 20 ms
//! and a picture of three packets 30 times a second, a keyframe when asked), runs the cores'
//! timers every 5 ms and reports to the cores the busy time a test imposes (to drive the load
//! governor).

use super::core::{Core, Wire};
use super::engine::{add_host_candidate, codec, media_engine};
use super::meter::Meter;
use super::port::Lane;
use super::shard::Place;
use super::{Cmd, LegEvent, LegId, RTCSessionDescription};
use crate::feedback::{self, Request};
use crate::load::{LoadReport, LoadTuning};
use crate::routing::{Kind, Media, ParticipantId, Tuning};
use bytes::{Bytes, BytesMut};
use rtc::interceptor::Registry;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The SFU's two addresses (the home shard's): publishers' and protected receivers' first.
const SFU: [&str; 2] = ["10.0.0.1:3478", "10.0.0.1:3479"];

/// The addresses of shard `k`'s lanes: the home shard's two, one for both lanes elsewhere.
fn sfu_addrs(k: usize) -> [SocketAddr; 2] {
    let parse = |a: &str| a.parse().unwrap_or_else(|_| unreachable!());
    if k == 0 {
        SFU.map(parse)
    } else {
        let a = SocketAddr::from(([10, 0, 0, k as u8 + 1], 3478));
        [a, a]
    }
}

/// One direction of a peer's path.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Link {
    /// Share of datagrams lost, 0–1.
    pub(super) loss: f64,
    /// One-way delay, and up to this much more at random (which reorders).
    pub(super) delay: Duration,
    pub(super) jitter: Duration,
    /// Bits per second it carries, if limited; a datagram that would wait more than
    /// 100 ms for the link is dropped.
    pub(super) rate_bps: Option<u64>,
    /// Nothing gets through.
    pub(super) cut: bool,
}

#[derive(Debug, Default)]
struct LinkState {
    link: Link,
    free_at: Option<Instant>,
    lost: u64,
}

impl LinkState {
    /// When a datagram of `len` bytes sent at `now` arrives, if it does.
    fn carry(&mut self, now: Instant, len: usize, rng: &mut Rng) -> Option<Instant> {
        let link = self.link;
        if link.cut || rng.unit() < link.loss {
            self.lost += 1;
            return None;
        }
        let mut leaves = now;
        if let Some(rate) = link.rate_bps {
            let start = self.free_at.map_or(now, |f| f.max(now));
            if start > now + Duration::from_millis(100) {
                self.lost += 1;
                return None;
            }
            let wire = Duration::from_nanos(len as u64 * 8 * 1_000_000_000 / rate.max(1));
            self.free_at = Some(start + wire);
            leaves = start + wire;
        }
        let jitter = link.jitter.mul_f64(rng.unit());
        Some(leaves + link.delay + jitter)
    }
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What the core sent, collected for the network; and the most RTP packets one call gave
/// one peer (packets read together leave together).
#[derive(Clone, Default)]
struct SimWire(
    Arc<Mutex<Vec<(Lane, SocketAddr, BytesMut)>>>,
    Arc<std::sync::atomic::AtomicUsize>,
);

impl Wire for SimWire {
    fn send(&mut self, lane: Lane, datagrams: &mut Vec<(BytesMut, SocketAddr)>) {
        let mut rtp: HashMap<SocketAddr, usize> = HashMap::new();
        for (d, to) in datagrams.iter() {
            // RTP, not RTCP (RFC 5761: told apart by the second byte, clear in SRTP).
            if let [b0, b1, ..] = d[..]
                && b0 >> 6 == 2
                && !(192..=223).contains(&b1)
            {
                *rtp.entry(*to).or_default() += 1;
            }
        }
        if let Some(most) = rtp.into_values().max() {
            self.1.fetch_max(most, std::sync::atomic::Ordering::Relaxed);
        }
        if let Ok(mut sent) = self.0.lock() {
            sent.extend(datagrams.drain(..).map(|(d, to)| (lane, to, d)));
        }
        datagrams.clear();
    }
}

/// What a peer received on one SSRC.
#[derive(Debug, Default)]
pub(super) struct Got {
    /// Sequence numbers, once each.
    pub(super) seqs: BTreeSet<u16>,
    /// Packets, repeats (retransmissions) included.
    pub(super) packets: u64,
    /// When the last one came.
    pub(super) last: Option<Instant>,
    /// Packets by the tag that ends them (a simulcast layer: 1 lowest).
    pub(super) tags: HashMap<u8, u64>,
}

/// Media a publishing peer sends.
struct Source {
    sender: RTCRtpSenderId,
    ssrc: u32,
    media: Media,
    seq: u16,
    /// A keyframe is owed (the first picture, or one asked for).
    keyframe: bool,
    /// A simulcast layer: its rid, and the tag (1 lowest) that ends each of its packets.
    rid: Option<(String, u8)>,
}

/// Packets per picture and their size, by simulcast tag (0: not simulcast): the lowest layer
/// about 70 kbit/s, the highest about 1 Mbit/s.
fn picture_of(tag: u8) -> (usize, usize) {
    match tag {
        1 => (1, 300),
        2 => (2, 700),
        _ => (3, 1100),
    }
}

/// A peer on the simulated network.
pub(super) struct Peer {
    pub(super) name: ParticipantId,
    pub(super) addr: SocketAddr,
    pub(super) pc: RTCPeerConnection,
    pub(super) leg: LegId,
    up: LinkState,
    down: LinkState,
    pub(super) connected: bool,
    sources: Vec<Source>,
    /// Received, by SSRC.
    pub(super) got: HashMap<u32, Got>,
    /// Keyframe requests it received (a publisher).
    pub(super) keyframe_requests: u64,
    /// The SSRCs of the pictures the SFU offered it (a subscriber).
    video: BTreeSet<u32>,
}

impl Peer {
    /// Picture packets received (retransmissions included) on every SSRC.
    pub(super) fn video_packets(&self) -> u64 {
        self.got
            .iter()
            .filter(|(ssrc, _)| self.video.contains(ssrc))
            .map(|(_, g)| g.packets)
            .sum()
    }

    /// Sound packets received.
    pub(super) fn audio_packets(&self) -> u64 {
        self.got
            .iter()
            .filter(|(ssrc, _)| !self.video.contains(ssrc))
            .map(|(_, g)| g.packets)
            .sum()
    }

    /// Datagrams its links dropped, (to the SFU, from the SFU).
    pub(super) fn lost(&self) -> (u64, u64) {
        (self.up.lost, self.down.lost)
    }
}

enum To {
    Sfu(usize, Lane),
    Peer(usize),
}

/// The cores (one per shard, the home shard's first), their peers and the network between
/// them.
pub(super) struct Net {
    pub(super) cores: Vec<Core>,
    pub(super) now: Instant,
    start: Instant,
    wires: Vec<SimWire>,
    /// In flight: (arrival, order sent, to, from, datagram).
    flight: Vec<(Instant, u64, To, SocketAddr, BytesMut)>,
    sent: u64,
    pub(super) peers: Vec<Peer>,
    rng: Rng,
    next_timers: Instant,
    /// Share of each 5 ms the core is told it was busy.
    pub(super) busy: f64,
    events: tokio::sync::broadcast::Receiver<LegEvent>,
    pub(super) closed: Vec<LegId>,
    loads: Vec<Arc<Mutex<LoadReport>>>,
}

impl Net {
    /// A core with the router's and the governor's tunings, and no peers.
    pub(super) fn new(tuning: Tuning, load_tuning: LoadTuning) -> Net {
        Net::sharded(tuning, load_tuning, 1)
    }

    /// `count` cores, as the shards of as many I/O threads.
    pub(super) fn sharded(tuning: Tuning, load_tuning: LoadTuning, count: usize) -> Net {
        let now = Instant::now();
        let (events, rx) = tokio::sync::broadcast::channel(1024);
        let mut cores = Vec::new();
        let mut wires = Vec::new();
        let mut loads = Vec::new();
        for index in 0..count {
            let wire = SimWire::default();
            let load = Arc::new(Mutex::new(LoadReport::default()));
            cores.push(Core::new(
                Place { index, count },
                Box::new(wire.clone()),
                sfu_addrs(index).map(|a| (a, a)),
                tuning,
                Meter::new(load_tuning, load.clone(), now),
                events.clone(),
                now,
            ));
            wires.push(wire);
            loads.push(load);
        }
        Net {
            cores,
            now,
            start: now,
            wires,
            flight: Vec::new(),
            sent: 0,
            peers: Vec::new(),
            rng: Rng(0x9E37_79B9_7F4A_7C15),
            next_timers: now,
            busy: 0.0,
            events: rx,
            closed: Vec::new(),
            loads,
        }
    }

    /// The most RTP packets core `k` gave one peer in one call to its wire.
    pub(super) fn most_rtp_in_one_send(&self, k: usize) -> usize {
        self.wires[k].1.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The governors' latest reports, together.
    pub(super) fn load(&self) -> LoadReport {
        let all: Vec<LoadReport> = self
            .loads
            .iter()
            .map(|l| l.lock().map(|r| *r).unwrap_or_default())
            .collect();
        LoadReport::combine(&all)
    }

    fn command<T>(&mut self, make: impl FnOnce(super::Reply<T>) -> Cmd) -> T {
        self.command_on(0, make)
    }

    /// A command to core `k`, carried out at once; what it relays is handed over.
    fn command_on<T>(&mut self, k: usize, make: impl FnOnce(super::Reply<T>) -> Cmd) -> T {
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        assert!(self.cores[k].handle_command(make(tx), self.now));
        self.hand_over();
        match rx.try_recv() {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => panic!("the core refused: {e}"),
            Err(e) => panic!("the core did not answer: {e}"),
        }
    }

    /// A new peer connection at this peer's address. It negotiates no RTX: webrtc-rs's NACK
    /// generator does not see repairs that come on a retransmission stream (it asks for them
    /// again, and for gaps in that stream's own numbering), which no browser does; plain
    /// retransmissions it does see. (RTX with real peers: `tests/rtx.rs`.)
    fn peer_pc(&self, addr: SocketAddr) -> RTCPeerConnection {
        let mut media = media_engine().unwrap_or_else(|e| panic!("{e}"));
        let registry = register_default_interceptors(Registry::new(), &mut media)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_setting_engine(
                SettingEngineBuilder::new()
                    .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
                    .build(),
            )
            .build(self.now)
            .unwrap_or_else(|e| panic!("{e}"));
        add_host_candidate(&mut pc, addr).unwrap_or_else(|e| panic!("{e}"));
        pc
    }

    fn add_peer(
        &mut self,
        name: &str,
        pc: RTCPeerConnection,
        leg: LegId,
        sources: Vec<Source>,
        video: BTreeSet<u32>,
    ) {
        let addr = self.next_addr();
        self.peers.push(Peer {
            name: ParticipantId(name.into()),
            addr,
            pc,
            leg,
            up: LinkState::default(),
            down: LinkState::default(),
            connected: false,
            sources,
            got: HashMap::new(),
            keyframe_requests: 0,
            video,
        });
    }

    fn next_addr(&self) -> SocketAddr {
        SocketAddr::from(([10, 0, 1, self.peers.len() as u8 + 1], 4000))
    }

    /// A participant publishing sound and a picture; returns its index.
    pub(super) fn publisher(&mut self, name: &str, kind: Kind) -> usize {
        let addr = self.next_addr();
        let mut pc = self.peer_pc(addr);
        let n = self.peers.len() as u32;
        let mut sources = Vec::new();
        for (media, k) in [
            (Media::Audio, RtpCodecKind::Audio),
            (Media::Video, RtpCodecKind::Video),
        ] {
            let ssrc = 0x5000 + n * 16 + sources.len() as u32;
            let track = MediaStreamTrack::new(
                name.to_owned(),
                format!("{name}-{k}"),
                format!("{name}-{k}"),
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
            let sender = pc.add_track(track).unwrap_or_else(|e| panic!("{e}"));
            sources.push(Source {
                sender,
                ssrc,
                media,
                seq: 0,
                keyframe: true,
                rid: None,
            });
        }
        self.offer_to_publish(name, kind, pc, sources)
    }

    /// A participant publishing sound and a picture in three simulcast layers (rids q, h,
    /// f); returns its index.
    pub(super) fn simulcast_publisher(&mut self, name: &str, kind: Kind) -> usize {
        let addr = self.next_addr();
        let mut pc = self.peer_pc(addr);
        let n = self.peers.len() as u32;
        let audio = MediaStreamTrack::new(
            name.to_owned(),
            format!("{name}-audio"),
            format!("{name}-audio"),
            RtpCodecKind::Audio,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(0x5000 + n * 16),
                    ..Default::default()
                },
                codec: codec(RtpCodecKind::Audio).rtp_codec,
                ..Default::default()
            }],
        );
        let audio_sender = pc.add_track(audio).unwrap_or_else(|e| panic!("{e}"));
        let layers = [("q", 1u8), ("h", 2), ("f", 3)];
        let video = MediaStreamTrack::new(
            name.to_owned(),
            format!("{name}-video"),
            format!("{name}-video"),
            RtpCodecKind::Video,
            layers
                .iter()
                .map(|(rid, tag)| RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        rid: (*rid).to_owned(),
                        ssrc: Some(0x5000 + n * 16 + u32::from(*tag)),
                        ..Default::default()
                    },
                    codec: codec(RtpCodecKind::Video).rtp_codec,
                    ..Default::default()
                })
                .collect(),
        );
        let video_sender = pc.add_track(video).unwrap_or_else(|e| panic!("{e}"));
        let mut sources = vec![Source {
            sender: audio_sender,
            ssrc: 0x5000 + n * 16,
            media: Media::Audio,
            seq: 0,
            keyframe: false,
            rid: None,
        }];
        for (rid, tag) in layers {
            sources.push(Source {
                sender: video_sender,
                ssrc: 0x5000 + n * 16 + u32::from(tag),
                media: Media::Video,
                seq: 0,
                keyframe: true,
                rid: Some((rid.to_owned(), tag)),
            });
        }
        self.offer_to_publish(name, kind, pc, sources)
    }

    /// Offers what `pc` sends to the SFU as `name`, takes the answer, and adds the peer.
    fn offer_to_publish(
        &mut self,
        name: &str,
        kind: Kind,
        mut pc: RTCPeerConnection,
        sources: Vec<Source>,
    ) -> usize {
        let offer = pc.create_offer(None).unwrap_or_else(|e| panic!("{e}"));
        pc.set_local_description(self.now, offer)
            .unwrap_or_else(|e| panic!("{e}"));
        let offer = pc.local_description().unwrap_or_else(|| panic!("no offer"));
        let who = ParticipantId(name.into());
        let (leg, answer): (LegId, RTCSessionDescription) =
            self.command(|r| Cmd::Publish(who, kind, false, offer, r));
        pc.set_remote_description(self.now, answer)
            .unwrap_or_else(|e| panic!("{e}"));
        self.add_peer(name, pc, leg, sources, BTreeSet::new());
        self.peers.len() - 1
    }

    /// A participant receiving what the SFU offers it; returns its index.
    pub(super) fn subscriber(&mut self, name: &str, kind: Kind) -> usize {
        self.subscriber_on(0, name, kind)
    }

    /// As [`Net::subscriber`], its leg made by core `k`.
    pub(super) fn subscriber_on(&mut self, k: usize, name: &str, kind: Kind) -> usize {
        let addr = self.next_addr();
        let mut pc = self.peer_pc(addr);
        let who = ParticipantId(name.into());
        let (leg, offer): (LegId, RTCSessionDescription) =
            self.command_on(k, |r| Cmd::Subscribe(who, kind, false, r));
        // The SSRCs of the m=video lines carry pictures.
        let mut video = BTreeSet::new();
        let mut in_video = false;
        for line in offer.sdp.lines() {
            if let Some(m) = line.strip_prefix("m=") {
                in_video = m.starts_with("video");
            }
            if in_video
                && let Some(rest) = line.strip_prefix("a=ssrc:")
                && let Some(Ok(ssrc)) = rest.split_whitespace().next().map(str::parse::<u32>)
            {
                video.insert(ssrc);
            }
        }
        pc.set_remote_description(self.now, offer)
            .unwrap_or_else(|e| panic!("{e}"));
        let answer = pc.create_answer(None).unwrap_or_else(|e| panic!("{e}"));
        pc.set_local_description(self.now, answer)
            .unwrap_or_else(|e| panic!("{e}"));
        let answer = pc
            .local_description()
            .unwrap_or_else(|| panic!("no answer"));
        self.command_on(k, |r| Cmd::Answer(leg, answer, r));
        self.add_peer(name, pc, leg, Vec::new(), video);
        self.peers.len() - 1
    }

    /// The floor moves, on every core (as the handle does).
    pub(super) fn set_floor(&mut self, speaker: Option<&str>) {
        for k in 0..self.cores.len() {
            let who = speaker.map(|s| ParticipantId(s.into()));
            self.command_on(k, |r| Cmd::Floor(who, r));
        }
    }

    /// Hands what each core relays to the cores it is for (the home core's to every other,
    /// the others' to the home core), until nothing is left: at once, as the threads'
    /// queues would, without their delay.
    fn hand_over(&mut self) {
        for _ in 0..8 {
            let mut moved = false;
            for k in 0..self.cores.len() {
                let out = std::mem::take(&mut self.cores[k].outgoing);
                if out.is_empty() {
                    continue;
                }
                moved = true;
                let targets: Vec<usize> = if k == 0 {
                    (1..self.cores.len()).collect()
                } else {
                    vec![0]
                };
                for t in targets {
                    for r in &out.relays {
                        self.cores[t].receive_relay(r.clone(), self.now);
                    }
                    for p in &out.packets {
                        self.cores[t].receive_packets(p, self.now);
                    }
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// Sets the path from the SFU to peer `i`.
    pub(super) fn set_down(&mut self, i: usize, link: Link) {
        self.peers[i].down.link = link;
    }

    /// Sets the path from peer `i` to the SFU.
    pub(super) fn set_up(&mut self, i: usize, link: Link) {
        self.peers[i].up.link = link;
    }

    /// Runs the network for `d` of virtual time, a millisecond at a time.
    pub(super) fn run(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now += Duration::from_millis(1);
            self.step();
        }
    }

    /// Runs until every peer is connected, or panics after `limit`.
    pub(super) fn connect_all(&mut self, limit: Duration) {
        let end = self.now + limit;
        while !self.peers.iter().all(|p| p.connected) {
            assert!(
                self.now < end,
                "not connected within {limit:?}: {:?}",
                self.peers
                    .iter()
                    .filter(|p| !p.connected)
                    .map(|p| &p.name.0)
                    .collect::<Vec<_>>()
            );
            self.now += Duration::from_millis(1);
            self.step();
        }
    }

    fn step(&mut self) {
        let now = self.now;
        let t = (now - self.start).as_millis() as u64;
        // What arrives now, in order of arrival.
        let mut due = Vec::new();
        let mut i = 0;
        while i < self.flight.len() {
            if self.flight[i].0 <= now {
                due.push(self.flight.swap_remove(i));
            } else {
                i += 1;
            }
        }
        due.sort_by_key(|(at, order, ..)| (*at, *order));
        // What arrives at a core in one step is handled as one batch read from its socket,
        // and sent together.
        let mut touched = vec![false; self.cores.len()];
        for (_, _, to, from, datagram) in due {
            match to {
                To::Sfu(k, lane) => {
                    self.cores[k].handle_datagram(lane, datagram, from, now);
                    touched[k] = true;
                }
                To::Peer(p) => {
                    let peer = &mut self.peers[p];
                    let msg = TaggedBytesMut {
                        now,
                        transport: TransportContext {
                            local_addr: peer.addr,
                            peer_addr: from,
                            ecn: None,
                            transport_protocol: TransportProtocol::UDP,
                        },
                        message: datagram,
                    };
                    let _ = peer.pc.handle_read(msg);
                }
            }
        }
        for (k, touched) in touched.iter().enumerate() {
            if *touched {
                self.cores[k].send_outbox();
            }
        }
        if touched.contains(&true) {
            self.hand_over();
        }
        // The publishers' media.
        for peer in &mut self.peers {
            if !peer.connected {
                continue;
            }
            for s in &mut peer.sources {
                let tag = s.rid.as_ref().map_or(0, |(_, tag)| *tag);
                let packets: Vec<(bool, Vec<u8>)> = match s.media {
                    Media::Audio if t.is_multiple_of(20) => vec![(true, vec![0xAA; 80])],
                    // About 30 pictures a second, a keyframe every 60 and when asked.
                    Media::Video if t.is_multiple_of(33) => {
                        let key = std::mem::take(&mut s.keyframe) || (t / 33).is_multiple_of(60);
                        let (count, size) = picture_of(tag);
                        (0..count)
                            .map(|k| {
                                let mut p = vec![if k == 0 { 0x10 } else { 0x00 }];
                                p.push(if key { 0x00 } else { 0x01 });
                                p.resize(size - 1, 0x55);
                                p.push(tag);
                                (k + 1 == count, p)
                            })
                            .collect()
                    }
                    _ => Vec::new(),
                };
                let rate = if s.media == Media::Audio { 48 } else { 90 };
                for (marker, payload) in packets {
                    s.seq = s.seq.wrapping_add(1);
                    let mut pkt = rtc::rtp::Packet {
                        header: rtc::rtp::header::Header {
                            version: 2,
                            marker,
                            payload_type: codec(if s.media == Media::Audio {
                                RtpCodecKind::Audio
                            } else {
                                RtpCodecKind::Video
                            })
                            .payload_type,
                            sequence_number: s.seq,
                            timestamp: (t as u32).wrapping_mul(rate),
                            ssrc: s.ssrc,
                            ..Default::default()
                        },
                        payload: Bytes::from(payload),
                    };
                    if let Some(mut tx) = peer.pc.rtp_sender(s.sender) {
                        // A simulcast layer names itself (mid and rid header extensions).
                        if let Some((rid, _)) = &s.rid {
                            let params = tx.get_parameters();
                            for ext in &params.rtp_parameters.header_extensions {
                                let value = match ext.uri.as_str() {
                                    rtc::sdp::extmap::SDES_MID_URI => "1",
                                    rtc::sdp::extmap::SDES_RTP_STREAM_ID_URI => rid.as_str(),
                                    _ => continue,
                                };
                                let _ = pkt.header.set_extension(
                                    ext.id as u8,
                                    Bytes::from(value.as_bytes().to_vec()),
                                );
                            }
                        }
                        let _ = tx.write_rtp(now, pkt);
                    }
                }
            }
        }
        // Every peer: timers, what it read, its events, what it sends.
        for peer in &mut self.peers {
            if peer.pc.poll_timeout().is_some_and(|at| at <= now) {
                let _ = peer.pc.handle_timeout(now);
            }
            while let Some(TaggedRTCMessage { message, .. }) = peer.pc.poll_read() {
                match message {
                    RTCMessage::RtpPacket(_, pkt) => {
                        let g = peer.got.entry(pkt.header.ssrc).or_default();
                        g.seqs.insert(pkt.header.sequence_number);
                        g.packets += 1;
                        g.last = Some(now);
                        if let Some(tag) = pkt.payload.last() {
                            *g.tags.entry(*tag).or_default() += 1;
                        }
                    }
                    RTCMessage::RtcpPacket(_, rtcp) => {
                        for r in feedback::requests(&rtcp) {
                            if let Request::Keyframe(_) = r {
                                peer.keyframe_requests += 1;
                                for s in &mut peer.sources {
                                    s.keyframe |= s.media == Media::Video;
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
            while let Some(event) = peer.pc.poll_event() {
                if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) = event {
                    peer.connected = state == RTCPeerConnectionState::Connected;
                }
            }
            while let Some(msg) = peer.pc.poll_write() {
                let to = msg.transport.peer_addr;
                let Some(k) = (0..self.cores.len()).find(|k| sfu_addrs(*k).contains(&to)) else {
                    continue;
                };
                let lane = if to == sfu_addrs(k)[0] && k == 0 {
                    Lane::Priority
                } else {
                    Lane::General
                };
                if let Some(at) = peer.up.carry(now, msg.message.len(), &mut self.rng) {
                    self.sent += 1;
                    self.flight
                        .push((at, self.sent, To::Sfu(k, lane), peer.addr, msg.message));
                }
            }
        }
        // The cores: imposed load, timers.
        if now >= self.next_timers {
            self.next_timers = now + Duration::from_millis(5);
            for core in &mut self.cores {
                core.record_busy(Duration::from_millis(5).mul_f64(self.busy.clamp(0.0, 1.0)));
                core.handle_timeout(now);
            }
            self.hand_over();
        }
        // What the cores sent, onto the peers' links.
        for k in 0..self.wires.len() {
            let sent: Vec<(Lane, SocketAddr, BytesMut)> = self.wires[k]
                .0
                .lock()
                .map(|mut s| std::mem::take(&mut *s))
                .unwrap_or_default();
            for (lane, to, datagram) in sent {
                let Some(p) = self.peers.iter().position(|x| x.addr == to) else {
                    continue;
                };
                let from = sfu_addrs(k)[lane.index()];
                if let Some(at) = self.peers[p].down.carry(now, datagram.len(), &mut self.rng) {
                    self.sent += 1;
                    self.flight
                        .push((at, self.sent, To::Peer(p), from, datagram));
                }
            }
        }
        while let Ok(e) = self.events.try_recv() {
            if let LegEvent::Closed { leg, .. } = e {
                self.closed.push(leg);
            }
        }
    }
}

#[cfg(test)]
mod tests;
