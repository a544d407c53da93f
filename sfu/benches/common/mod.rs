//! What the two forwarding benchmarks share: codecs, the client-side peers (publisher and
//! subscribers are ordinary webrtc-rs 0.21 async peers), the synthetic publisher, the
//! receive loop that counts packets and latency, and the report.

#![allow(dead_code)]

use bytes::{BufMut, Bytes, BytesMut};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceGatheringState,
    RTCPeerConnectionState,
};
use webrtc::runtime::Runtime;

pub use dienhong_sfu::driver::{OPUS_PT, VP8_PT, VP8_RTX_PT, codec};

/// VP8 and Opus only, with the driver's payload types, and the header extensions a
/// simulcast publisher needs (mid, rid).
pub fn media_engine() -> MediaEngine {
    dienhong_sfu::driver::publishing_media_engine().expect("media engine")
}

/// Settings for every peer: no mDNS (otherwise each peer opens an mDNS socket too).
pub fn settings() -> rtc::peer_connection::configuration::setting_engine::SettingEngine {
    SettingEngineBuilder::new()
        .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
        .build()
}

/// A track with one encoding of this SSRC.
pub fn track(kind: RtpCodecKind, ssrc: u32, name: &str) -> MediaStreamTrack {
    MediaStreamTrack::new(
        format!("{name}-stream"),
        format!("{name}-{kind}"),
        format!("{name}-{kind}"),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: codec(kind).rtp_codec,
            ..Default::default()
        }],
    )
}

struct Handler {
    gathered: mpsc::Sender<()>,
    connected: mpsc::Sender<()>,
    tracks: mpsc::UnboundedSender<Arc<dyn TrackRemote>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.try_send(());
        }
    }
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        if state == RTCPeerConnectionState::Connected {
            let _ = self.connected.try_send(());
        }
    }
    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let _ = self.tracks.send(track);
    }
}

/// An async peer and its events.
pub struct Peer {
    pub pc: Arc<dyn PeerConnection>,
    pub gathered: mpsc::Receiver<()>,
    pub connected: mpsc::Receiver<()>,
    pub tracks: mpsc::UnboundedReceiver<Arc<dyn TrackRemote>>,
}

/// A webrtc-rs async peer on 127.0.0.1, its tasks on the runtime it is built from.
pub async fn peer(runtime: Arc<dyn Runtime>) -> Peer {
    build_peer(runtime, media_engine(), None).await
}

/// As [`peer`], reporting transport-wide feedback (TWCC) on what it receives, as browsers
/// do.
pub async fn twcc_peer(runtime: Arc<dyn Runtime>) -> Peer {
    let mut media = media_engine();
    let registry =
        rtc::peer_connection::configuration::interceptor_registry::configure_twcc_receiver_only(
            rtc::interceptor::Registry::new(),
            &mut media,
        )
        .expect("twcc receiver");
    build_peer(runtime, media, Some(registry)).await
}

pub async fn build_peer(
    runtime: Arc<dyn Runtime>,
    media: MediaEngine,
    registry: Option<rtc::interceptor::Registry>,
) -> Peer {
    let (gtx, gathered) = mpsc::channel(1);
    let (ctx, connected) = mpsc::channel(1);
    let (ttx, tracks) = mpsc::unbounded_channel();
    let mut builder = PeerConnectionBuilder::new()
        .with_setting_engine(settings())
        .with_media_engine(media);
    if let Some(registry) = registry {
        builder = builder.with_interceptor_registry(registry);
    }
    let pc = builder
        .with_handler(Arc::new(Handler {
            gathered: gtx,
            connected: ctx,
            tracks: ttx,
        }))
        .with_runtime(runtime)
        .with_udp_addrs(vec!["127.0.0.1:0".to_string()])
        .build()
        .await
        .expect("peer connection");
    Peer {
        pc: Arc::new(pc),
        gathered,
        connected,
        tracks,
    }
}

/// CPU time (user + system) of the calling thread, from /proc (10 ms ticks).
pub fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or_default();
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // Fields 14 and 15 of stat (utime, stime) are at 11 and 12 after the ")".
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// Resident memory of the process, KiB.
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// Packets received by all subscribers, and their latencies (µs).
#[derive(Clone, Default)]
pub struct Received {
    pub count: Arc<AtomicU64>,
    /// Each packet's added latency, µs, and whether it was audio.
    pub latency_us: Arc<Mutex<Vec<(u32, bool)>>>,
}

impl Received {
    /// Counts every packet of the subscriber's tracks; the payload starts with the send time.
    pub fn follow(&self, mut tracks: mpsc::UnboundedReceiver<Arc<dyn TrackRemote>>, t0: Instant) {
        let this = self.clone();
        tokio::spawn(async move {
            while let Some(track) = tracks.recv().await {
                let this = this.clone();
                tokio::spawn(async move {
                    let mut local = Vec::new();
                    while let Some(evt) = track.poll().await {
                        if let TrackRemoteEvent::OnRtpPacket(pkt) = evt {
                            this.count.fetch_add(1, Ordering::Relaxed);
                            if pkt.payload.len() >= 8 {
                                let mut b = [0u8; 8];
                                b.copy_from_slice(&pkt.payload[..8]);
                                let now = t0.elapsed().as_micros() as u64;
                                let audio = pkt.header.payload_type == OPUS_PT;
                                local.push((
                                    now.saturating_sub(u64::from_be_bytes(b)) as u32,
                                    audio,
                                ));
                                if local.len() >= 256 {
                                    this.latency_us.lock().expect("lat").append(&mut local);
                                }
                            }
                        }
                    }
                    this.latency_us.lock().expect("lat").append(&mut local);
                });
            }
        });
    }
}

fn packet(
    pt: u8,
    ssrc: u32,
    seq: u16,
    ts: u32,
    t0: Instant,
    size: usize,
    fill: u8,
) -> rtc::rtp::Packet {
    let mut b = BytesMut::with_capacity(size);
    b.put_u64(t0.elapsed().as_micros() as u64);
    b.put_bytes(fill, size - 8);
    rtc::rtp::Packet {
        header: rtc::rtp::header::Header {
            version: 2,
            payload_type: pt,
            sequence_number: seq,
            timestamp: ts,
            ssrc,
            ..Default::default()
        },
        payload: Bytes::from(b),
    }
}

/// Publishes VP8-sized (1,200 B, ~260/s, ≈2.5 Mbit/s) and Opus-sized (120 B, 50/s)
/// packets for `seconds`; returns how many were sent.
pub async fn publish(
    video: &TrackLocalStaticRTP,
    video_ssrc: u32,
    audio: &TrackLocalStaticRTP,
    audio_ssrc: u32,
    seconds: u64,
    t0: Instant,
) -> u64 {
    let start = Instant::now();
    let mut sent = 0u64;
    let (mut vseq, mut aseq) = (0u16, 0u16);
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let (mut video_due, mut audio_due) = (0.0f64, 0.0f64);
    while start.elapsed() < Duration::from_secs(seconds) {
        tick.tick().await;
        video_due += 2.6;
        audio_due += 0.5;
        while video_due >= 1.0 {
            video_due -= 1.0;
            vseq = vseq.wrapping_add(1);
            let p = packet(
                VP8_PT,
                video_ssrc,
                vseq,
                u32::from(vseq) * 3000,
                t0,
                1200,
                0x5a,
            );
            if video.write_rtp(p).await.is_ok() {
                sent += 1;
            }
        }
        while audio_due >= 1.0 {
            audio_due -= 1.0;
            aseq = aseq.wrapping_add(1);
            let p = packet(
                OPUS_PT,
                audio_ssrc,
                aseq,
                u32::from(aseq) * 960,
                t0,
                120,
                0x11,
            );
            if audio.write_rtp(p).await.is_ok() {
                sent += 1;
            }
        }
    }
    sent
}

/// What one run measured.
pub struct Report {
    pub n: usize,
    pub sent: u64,
    pub received: u64,
    pub seconds: f64,
    pub sfu_cpu: Duration,
    pub lat: Vec<(u32, bool)>,
    pub mem_per_sub_kib: f64,
}

impl Report {
    /// Prints the line both benchmarks print.
    pub fn print(mut self) {
        let expected = self.sent * self.n as u64;
        let loss = 100.0 * (expected.saturating_sub(self.received)) as f64 / expected.max(1) as f64;
        let mut all: Vec<u32> = self.lat.iter().map(|(l, _)| *l).collect();
        let mut audio: Vec<u32> = self
            .lat
            .iter()
            .filter(|(_, a)| *a)
            .map(|(l, _)| *l)
            .collect();
        all.sort_unstable();
        audio.sort_unstable();
        let at = |v: &[u32], p: f64| {
            v.get(((v.len() as f64 - 1.0) * p) as usize)
                .copied()
                .unwrap_or(0) as f64
                / 1000.0
        };
        let pct = |p: f64| at(&all, p);
        let audio_pct = |p: f64| at(&audio, p);
        self.lat.clear();
        let per_packet_us = self.sfu_cpu.as_secs_f64() * 1e6 / self.received.max(1) as f64;
        println!(
            "subscribers {}: sent {} pkts in {:.1} s; forwarded {:.0} pkts/s; loss {:.2}%; SFU thread CPU {:.2} s = {:.2} us/forwarded pkt ({:.0} pkts/s per core); latency p50 {:.2} ms p99 {:.2} ms (audio p50 {:.2} ms p99 {:.2} ms); memory {:.0} KiB/subscriber (process)",
            self.n,
            self.sent,
            self.seconds,
            self.received as f64 / self.seconds,
            loss,
            self.sfu_cpu.as_secs_f64(),
            per_packet_us,
            1e6 / per_packet_us.max(0.001),
            pct(0.5),
            pct(0.99),
            audio_pct(0.5),
            audio_pct(0.99),
            self.mem_per_sub_kib
        );
    }
}

/// The subscriber counts from `SUBSCRIBERS` (default 64,200,600) and `SECONDS` (default 10).
pub fn plan() -> (Vec<usize>, u64) {
    let list = std::env::var("SUBSCRIBERS").unwrap_or_else(|_| "64,200,600".into());
    let seconds = std::env::var("SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    (
        list.split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect(),
        seconds,
    )
}

/// One RTP packet a peer received.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    /// The stream (m-line) it came on.
    pub ssrc: u32,
    pub payload_type: u8,
    pub seq: u16,
    /// Its first payload byte: tests mark each sender's packets with it.
    pub first: u8,
    pub at: Instant,
}

/// Every RTP packet a peer received, in order.
pub type PacketLog = Arc<Mutex<Vec<Arrival>>>;

/// Logs, for every RTP packet `p` receives from here on, what `entry` makes of it (taking
/// the peer's track channel).
fn log_each<T: Send + 'static>(
    p: &mut Peer,
    entry: fn(&rtc::rtp::Packet) -> Option<T>,
) -> Arc<Mutex<Vec<T>>> {
    let log: Arc<Mutex<Vec<T>>> = Arc::default();
    let mut tracks = std::mem::replace(&mut p.tracks, mpsc::unbounded_channel().1);
    let l = log.clone();
    tokio::spawn(async move {
        while let Some(track) = tracks.recv().await {
            let l = l.clone();
            tokio::spawn(async move {
                while let Some(evt) = track.poll().await {
                    if let TrackRemoteEvent::OnRtpPacket(pkt) = evt
                        && let Some(e) = entry(&pkt)
                    {
                        l.lock().expect("log").push(e);
                    }
                }
            });
        }
    });
    log
}

/// Logs every RTP packet `p` receives from here on, with its stream and numbering.
pub fn log_packets(p: &mut Peer) -> PacketLog {
    log_each(p, |pkt| {
        Some(Arrival {
            ssrc: pkt.header.ssrc,
            payload_type: pkt.header.payload_type,
            seq: pkt.header.sequence_number,
            first: pkt.payload.first().copied().unwrap_or(0),
            at: Instant::now(),
        })
    })
}

/// (first payload byte, sequence number, arrival) of every packet a peer received; tests
/// mark each sender's packets with their first byte.
pub type Arrivals = Arc<Mutex<Vec<(u8, u16, Instant)>>>;

/// Logs every packet `p` receives from here on.
pub fn log_arrivals(p: &mut Peer) -> Arrivals {
    log_each(p, |pkt| {
        pkt.payload
            .first()
            .map(|m| (*m, pkt.header.sequence_number, Instant::now()))
    })
}

/// A publisher: an async peer with local tracks of these kinds and SSRCs, published to the
/// driver as `who` and connected.
pub async fn publish_to(
    sfu: &dienhong_sfu::driver::Driver,
    rt: &Arc<dyn Runtime>,
    who: &str,
    kind: dienhong_sfu::routing::Kind,
    tracks: &[(RtpCodecKind, u32)],
) -> (Peer, Vec<Arc<TrackLocalStaticRTP>>) {
    let mut p = peer(rt.clone()).await;
    let mut locals = Vec::new();
    for (k, ssrc) in tracks {
        let t = Arc::new(TrackLocalStaticRTP::new(track(*k, *ssrc, who)));
        p.pc.add_track(t.clone()).await.expect("add track");
        locals.push(t);
    }
    let offer = p.pc.create_offer(None).await.expect("offer");
    p.pc.set_local_description(offer).await.expect("local");
    let _ = tokio::time::timeout(Duration::from_secs(5), p.gathered.recv()).await;
    let offer = p.pc.local_description().await.expect("sdp");
    let (_, answer) = sfu
        .publish(
            dienhong_sfu::routing::ParticipantId(who.to_owned()),
            kind,
            false,
            offer,
        )
        .await
        .expect("publish");
    p.pc.set_remote_description(answer).await.expect("remote");
    tokio::time::timeout(Duration::from_secs(10), p.connected.recv())
        .await
        .expect("publisher connects");
    (p, locals)
}

/// A delegation site `S01` publishing camera (SSRC 1111) and microphone (2222), given the
/// floor: what every subscriber receives. Returns the site's peer and its two tracks.
pub async fn speaking_site(
    sfu: &dienhong_sfu::driver::Driver,
    rt: &Arc<dyn Runtime>,
) -> (Peer, Vec<Arc<TrackLocalStaticRTP>>) {
    let site = publish_to(
        sfu,
        rt,
        "S01",
        dienhong_sfu::routing::Kind::Site,
        &[(RtpCodecKind::Video, 1111), (RtpCodecKind::Audio, 2222)],
    )
    .await;
    sfu.set_floor(Some(dienhong_sfu::routing::ParticipantId("S01".into())))
        .await
        .expect("floor");
    site
}

/// A subscriber: the driver's offer for `who`, answered by a new async peer (not yet
/// waited for: check `connected`).
pub async fn subscribe_from(
    sfu: &dienhong_sfu::driver::Driver,
    rt: &Arc<dyn Runtime>,
    who: &str,
    kind: dienhong_sfu::routing::Kind,
) -> Peer {
    subscribe_as(sfu, peer(rt.clone()).await, who, kind).await
}

/// As [`subscribe_from`], with a peer of the caller's.
pub async fn subscribe_as(
    sfu: &dienhong_sfu::driver::Driver,
    mut sub: Peer,
    who: &str,
    kind: dienhong_sfu::routing::Kind,
) -> Peer {
    let (leg, offer) = sfu
        .subscribe(
            dienhong_sfu::routing::ParticipantId(who.to_owned()),
            kind,
            false,
        )
        .await
        .expect("subscribe");
    sub.pc.set_remote_description(offer).await.expect("remote");
    let answer = sub.pc.create_answer(None).await.expect("answer");
    sub.pc.set_local_description(answer).await.expect("local");
    let _ = tokio::time::timeout(Duration::from_secs(5), sub.gathered.recv()).await;
    let answer = sub.pc.local_description().await.expect("sdp");
    sfu.answer(leg, answer).await.expect("answer");
    sub
}

/// A UDP relay between a peer and the SFU. It can lose one picture packet on its way in (the
/// `drop_at`-th) and tell what it lost and whether a retransmission (RTX) followed, and it
/// can go silent both ways (`cut`): a peer gone without a goodbye.
pub struct Relay {
    /// Where the publisher should send: the relay's publisher-facing socket.
    pub addr: std::net::SocketAddr,
    /// The sequence number of the packet it lost, once it has.
    pub lost: Arc<Mutex<Option<u16>>>,
    /// Retransmission (RTX) packets the publisher sent afterwards.
    pub rtx: Arc<std::sync::atomic::AtomicU64>,
    /// Set: nothing passes any more.
    pub cut: Arc<std::sync::atomic::AtomicBool>,
}

pub async fn relay(sfu: std::net::SocketAddr, drop_at: Option<u64>) -> Relay {
    let outer = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let inner = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = outer.local_addr().expect("addr");
    let lost: Arc<Mutex<Option<u16>>> = Arc::default();
    let rtx = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (l, r, c) = (lost.clone(), rtx.clone(), cut.clone());
    tokio::spawn(async move {
        let (mut a, mut b) = (vec![0u8; 2048], vec![0u8; 2048]);
        let mut publisher = None;
        let mut pictures = 0u64;
        loop {
            tokio::select! {
                Ok((n, from)) = outer.recv_from(&mut a) => {
                    if c.load(Ordering::Relaxed) {
                        continue;
                    }
                    publisher = Some(from);
                    // RTP over SRTP keeps its header in the clear: version 2, payload type.
                    let rtp = n > 12 && a[0] >> 6 == 2 && !(200..=204).contains(&a[1]);
                    if rtp && a[1] & 0x7f == VP8_PT {
                        pictures += 1;
                        if Some(pictures) == drop_at {
                            *l.lock().expect("lost") = Some(u16::from_be_bytes([a[2], a[3]]));
                            continue;
                        }
                    }
                    if rtp && a[1] & 0x7f == VP8_RTX_PT && l.lock().expect("lost").is_some() {
                        r.fetch_add(1, Ordering::Relaxed);
                    }
                    let _ = inner.send_to(&a[..n], sfu).await;
                }
                Ok((n, _)) = inner.recv_from(&mut b) => {
                    if c.load(Ordering::Relaxed) {
                        continue;
                    }
                    if let Some(p) = publisher {
                        let _ = outer.send_to(&b[..n], p).await;
                    }
                }
            }
        }
    });
    Relay {
        addr,
        lost,
        rtx,
        cut,
    }
}

/// What one receiver's log heard between `from` and `to`: each packet's first byte.
pub fn heard(log: &Arrivals, from: Instant, to: Instant) -> Vec<u8> {
    log.lock()
        .expect("log")
        .iter()
        .filter(|(_, _, at)| *at > from && *at <= to)
        .map(|(m, _, _)| *m)
        .collect()
}

/// The hall (SSRC 11, packets starting `H`) and a site (31, `S`) talking at once for `d`:
/// a 20 ms sound packet each, each microphone with its own numbering and clock.
pub async fn hall_and_site_talk(
    hall: &TrackLocalStaticRTP,
    site: &TrackLocalStaticRTP,
    seq: &mut u16,
    d: Duration,
) {
    let t0 = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    while t0.elapsed() < d {
        tick.tick().await;
        *seq = seq.wrapping_add(1);
        for (track, ssrc, marker, offset) in [(hall, 11, b'H', 0u16), (site, 31, b'S', 5000)] {
            let mut b = BytesMut::with_capacity(60);
            b.put_u8(marker);
            b.put_bytes(0, 59);
            let pkt = rtc::rtp::Packet {
                header: rtc::rtp::header::Header {
                    version: 2,
                    payload_type: OPUS_PT,
                    sequence_number: seq.wrapping_add(offset),
                    timestamp: u32::from(*seq) * 960 + u32::from(offset) * 7,
                    ssrc,
                    ..Default::default()
                },
                payload: Bytes::from(b),
            };
            let _ = track.write_rtp(pkt).await;
        }
    }
}

/// A receiver with fixed m-lines (`audio_lines` receive-only audio lines, as a WHEP client
/// offers) pulling as `who`, connected; with the SFU's answer.
pub async fn pull_as(
    sfu: &dienhong_sfu::driver::Driver,
    rt: &Arc<dyn Runtime>,
    who: &str,
    audio_lines: usize,
) -> (Peer, String) {
    let mut pull = peer(rt.clone()).await;
    for _ in 0..audio_lines {
        pull.pc
            .add_transceiver_from_kind(RtpCodecKind::Audio, None)
            .await
            .expect("recvonly audio");
    }
    let offer = pull.pc.create_offer(None).await.expect("offer");
    pull.pc.set_local_description(offer).await.expect("local");
    let _ = tokio::time::timeout(Duration::from_secs(5), pull.gathered.recv()).await;
    let offer = pull.pc.local_description().await.expect("sdp");
    let (_, answer) = sfu
        .subscribe_with_offer(
            dienhong_sfu::routing::ParticipantId(who.to_owned()),
            dienhong_sfu::routing::Kind::Display,
            false,
            offer,
        )
        .await
        .expect("pull");
    let sdp = answer.sdp.clone();
    pull.pc
        .set_remote_description(answer)
        .await
        .expect("remote");
    tokio::time::timeout(Duration::from_secs(10), pull.connected.recv())
        .await
        .expect("the pull connects");
    (pull, sdp)
}
