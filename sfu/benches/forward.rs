//! Forwarding benchmark: one publisher (VP8 ~2.5 Mbit/s at ~260 packets/s + Opus at 50
//! packets/s, synthetic payloads) → the SFU → N subscribers, all real webrtc-rs 0.21 peer
//! connections over DTLS-SRTP on loopback, in one process.
//!
//! The SFU's peer connections and its forwarding loop run on their own single-threaded
//! runtime on a dedicated thread, so the CPU time of that thread is the SFU's cost; the
//! publisher and the subscribers run on another runtime. The forwarding is the thinnest
//! path on webrtc-rs's async layer: for each received packet, `write_rtp` to every
//! subscriber's local track, awaited in turn.
//!
//! Run: `cargo bench -p dienhong-sfu --bench forward` (env `SUBSCRIBERS=64,200,600`,
//! `SECONDS=10`). Prints, per N: packets sent, forwarded packets/s, loss, SFU CPU per
//! forwarded packet, added latency p50/p99 (publisher write → subscriber read), and memory
//! per subscriber (whole process: SFU and client side together).

use bytes::{BufMut, Bytes, BytesMut};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8, MediaEngine};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{RwLock, mpsc};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceGatheringState,
    RTCPeerConnectionState,
};
use webrtc::runtime::Runtime;

const VP8_PT: u8 = 96;
const OPUS_PT: u8 = 111;

fn codec(kind: RtpCodecKind) -> RTCRtpCodecParameters {
    match kind {
        RtpCodecKind::Audio => RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: MIME_TYPE_OPUS.to_owned(),
                clock_rate: 48000,
                channels: 2,
                sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
                rtcp_feedback: vec![],
            },
            payload_type: OPUS_PT,
            ..Default::default()
        },
        _ => RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: MIME_TYPE_VP8.to_owned(),
                clock_rate: 90000,
                channels: 0,
                sdp_fmtp_line: String::new(),
                rtcp_feedback: vec![],
            },
            payload_type: VP8_PT,
            ..Default::default()
        },
    }
}

fn media_engine() -> MediaEngine {
    let mut m = MediaEngine::default();
    m.register_codec(codec(RtpCodecKind::Audio), RtpCodecKind::Audio)
        .expect("opus");
    m.register_codec(codec(RtpCodecKind::Video), RtpCodecKind::Video)
        .expect("vp8");
    m
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

struct Peer {
    pc: Arc<dyn PeerConnection>,
    gathered: mpsc::Receiver<()>,
    connected: mpsc::Receiver<()>,
    tracks: mpsc::UnboundedReceiver<Arc<dyn TrackRemote>>,
}

async fn peer(runtime: Arc<dyn Runtime>) -> Peer {
    let (gtx, gathered) = mpsc::channel(1);
    let (ctx, connected) = mpsc::channel(1);
    let (ttx, tracks) = mpsc::unbounded_channel();
    // Without this every peer also opens an mDNS socket.
    let se = rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder::new()
        .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
        .build();
    let pc = PeerConnectionBuilder::new()
        .with_setting_engine(se)
        .with_media_engine(media_engine())
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

fn local_track(kind: RtpCodecKind, ssrc: u32, name: &str) -> Arc<TrackLocalStaticRTP> {
    Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
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
    )))
}

/// Offer from `a`, answer from `b`, both without trickle.
async fn negotiate(a: &mut Peer, b: &mut Peer) {
    let offer = a.pc.create_offer(None).await.expect("offer");
    a.pc.set_local_description(offer).await.expect("set local offer");
    let _ = tokio::time::timeout(Duration::from_secs(5), a.gathered.recv()).await;
    let offer = a.pc.local_description().await.expect("offer sdp");
    b.pc.set_remote_description(offer).await.expect("set remote offer");
    let answer = b.pc.create_answer(None).await.expect("answer");
    b.pc.set_local_description(answer).await.expect("set local answer");
    let _ = tokio::time::timeout(Duration::from_secs(5), b.gathered.recv()).await;
    let answer = b.pc.local_description().await.expect("answer sdp");
    a.pc.set_remote_description(answer).await.expect("set remote answer");
}

type Outputs = Arc<RwLock<Vec<(u32, Arc<TrackLocalStaticRTP>)>>>;

/// CPU time (user + system) of the calling thread, from /proc.
fn thread_cpu() -> Duration {
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

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

struct Report {
    n: usize,
    sent: u64,
    received: u64,
    seconds: f64,
    sfu_cpu: Duration,
    lat: Vec<u32>,
    mem_per_sub_kib: f64,
}

fn run(n: usize, seconds: u64) -> Report {
    // The SFU's own single-threaded runtime on a dedicated thread.
    let sfu_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("sfu runtime");
    let sfu = sfu_rt.handle().clone();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let sfu_thread = std::thread::spawn(move || {
        sfu_rt.block_on(async move {
            while stop_rx.try_recv().is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
    });
    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("client runtime");
    let t0 = Instant::now();
    let report = clients.block_on(async move {
        let rt: Arc<dyn Runtime> = webrtc::runtime::default_runtime().expect("tokio runtime");
        let outputs: [Outputs; 2] = [Arc::default(), Arc::default()];
        // SFU side of the publisher.
        let rt2 = rt.clone();
        let mut sfu_in = sfu.spawn(async move { peer(rt2).await }).await.expect("sfu peer");
        let mut publisher = peer(rt.clone()).await;
        let pub_video = local_track(RtpCodecKind::Video, 1111, "pub");
        let pub_audio = local_track(RtpCodecKind::Audio, 2222, "pub");
        publisher.pc.add_track(pub_video.clone()).await.expect("add video");
        publisher.pc.add_track(pub_audio.clone()).await.expect("add audio");
        negotiate(&mut publisher, &mut sfu_in).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), publisher.connected.recv()).await;

        // The forwarding loop: on the SFU runtime, one task per incoming track.
        let outs = outputs.clone();
        let mut tracks = std::mem::replace(&mut sfu_in.tracks, mpsc::unbounded_channel().1);
        sfu.spawn(async move {
            while let Some(track) = tracks.recv().await {
                let kind = track.kind().await;
                let out = if kind == RtpCodecKind::Audio { outs[0].clone() } else { outs[1].clone() };
                tokio::spawn(async move {
                    while let Some(evt) = track.poll().await {
                        if let TrackRemoteEvent::OnRtpPacket(pkt) = evt {
                            for (ssrc, t) in out.read().await.iter() {
                                let mut p = pkt.clone();
                                p.header.ssrc = *ssrc;
                                let _ = t.write_rtp(p).await;
                            }
                        }
                    }
                });
            }
        });

        // Subscribers.
        let rss0 = rss_kib();
        let received = Arc::new(AtomicU64::new(0));
        let lat: Arc<Mutex<Vec<u32>>> = Arc::default();
        let mut subs = Vec::new();
        for i in 0..n {
            let rt2 = rt.clone();
            let outs = outputs.clone();
            let ssrc_base = 10_000 + 2 * i as u32;
            let mut sfu_out = sfu
                .spawn(async move {
                    let p = peer(rt2).await;
                    let a = local_track(RtpCodecKind::Audio, ssrc_base, &format!("s{i}"));
                    let v = local_track(RtpCodecKind::Video, ssrc_base + 1, &format!("s{i}"));
                    p.pc.add_track(a.clone()).await.expect("add");
                    p.pc.add_track(v.clone()).await.expect("add");
                    outs[0].write().await.push((ssrc_base, a));
                    outs[1].write().await.push((ssrc_base + 1, v));
                    p
                })
                .await
                .expect("sfu out");
            let mut sub = peer(rt.clone()).await;
            // Negotiation calls on the SFU peer run on the SFU runtime.
            let offer = {
                let pc = sfu_out.pc.clone();
                sfu.spawn(async move {
                    let o = pc.create_offer(None).await.expect("offer");
                    pc.set_local_description(o).await.expect("local");
                })
                .await
                .expect("join");
                let _ = tokio::time::timeout(Duration::from_secs(5), sfu_out.gathered.recv()).await;
                sfu_out.pc.local_description().await.expect("sdp")
            };
            sub.pc.set_remote_description(offer).await.expect("remote");
            let answer = sub.pc.create_answer(None).await.expect("answer");
            sub.pc.set_local_description(answer).await.expect("local");
            let _ = tokio::time::timeout(Duration::from_secs(5), sub.gathered.recv()).await;
            let answer = sub.pc.local_description().await.expect("sdp");
            let pc = sfu_out.pc.clone();
            sfu.spawn(async move { pc.set_remote_description(answer).await.expect("remote") })
                .await
                .expect("join");
            let mut tracks = std::mem::replace(&mut sub.tracks, mpsc::unbounded_channel().1);
            let (received, lat) = (received.clone(), lat.clone());
            tokio::spawn(async move {
                while let Some(track) = tracks.recv().await {
                    let (received, lat) = (received.clone(), lat.clone());
                    tokio::spawn(async move {
                        let mut local = Vec::new();
                        while let Some(evt) = track.poll().await {
                            if let TrackRemoteEvent::OnRtpPacket(pkt) = evt {
                                received.fetch_add(1, Ordering::Relaxed);
                                if pkt.payload.len() >= 8 {
                                    let mut b = [0u8; 8];
                                    b.copy_from_slice(&pkt.payload[..8]);
                                    let sent = u64::from_be_bytes(b);
                                    let now = t0.elapsed().as_micros() as u64;
                                    local.push(now.saturating_sub(sent) as u32);
                                    if local.len() >= 256 {
                                        lat.lock().expect("lat").append(&mut local);
                                    }
                                }
                            }
                        }
                        lat.lock().expect("lat").append(&mut local);
                    });
                }
            });
            subs.push((sub, sfu_out));
        }
        for (sub, _) in subs.iter_mut() {
            let _ = tokio::time::timeout(Duration::from_secs(20), sub.connected.recv()).await;
        }
        let mem_per_sub_kib = (rss_kib().saturating_sub(rss0)) as f64 / n.max(1) as f64;
        tokio::time::sleep(Duration::from_millis(500)).await;

        // Publish.
        let cpu0 = sfu.spawn(async { thread_cpu() }).await.expect("cpu");
        let received0 = received.load(Ordering::Relaxed);
        lat.lock().expect("lat").clear();
        let start = Instant::now();
        let mut sent = 0u64;
        let (mut vseq, mut aseq) = (0u16, 0u16);
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        let mut video_due = 0.0f64;
        let mut audio_due = 0.0f64;
        while start.elapsed() < Duration::from_secs(seconds) {
            tick.tick().await;
            video_due += 2.6;
            audio_due += 0.5;
            while video_due >= 1.0 {
                video_due -= 1.0;
                vseq = vseq.wrapping_add(1);
                let mut b = BytesMut::with_capacity(1200);
                b.put_u64(t0.elapsed().as_micros() as u64);
                b.put_bytes(0x5a, 1192);
                let pkt = rtc::rtp::Packet {
                    header: rtc::rtp::header::Header {
                        version: 2,
                        payload_type: VP8_PT,
                        sequence_number: vseq,
                        timestamp: u32::from(vseq) * 3000,
                        ssrc: 1111,
                        ..Default::default()
                    },
                    payload: Bytes::from(b),
                };
                if pub_video.write_rtp(pkt).await.is_ok() {
                    sent += 1;
                }
            }
            while audio_due >= 1.0 {
                audio_due -= 1.0;
                aseq = aseq.wrapping_add(1);
                let mut b = BytesMut::with_capacity(128);
                b.put_u64(t0.elapsed().as_micros() as u64);
                b.put_bytes(0x11, 112);
                let pkt = rtc::rtp::Packet {
                    header: rtc::rtp::header::Header {
                        version: 2,
                        payload_type: OPUS_PT,
                        sequence_number: aseq,
                        timestamp: u32::from(aseq) * 960,
                        ssrc: 2222,
                        ..Default::default()
                    },
                    payload: Bytes::from(b),
                };
                if pub_audio.write_rtp(pkt).await.is_ok() {
                    sent += 1;
                }
            }
        }
        let seconds_run = start.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let cpu1 = sfu.spawn(async { thread_cpu() }).await.expect("cpu");
        let got = received.load(Ordering::Relaxed) - received0;
        let lat = std::mem::take(&mut *lat.lock().expect("lat"));
        for (sub, out) in subs {
            let _ = sub.pc.close().await;
            let pc = out.pc.clone();
            let _ = sfu.spawn(async move { pc.close().await }).await;
        }
        let _ = publisher.pc.close().await;
        let pc = sfu_in.pc.clone();
        let _ = sfu.spawn(async move { pc.close().await }).await;
        Report {
            n,
            sent,
            received: got,
            seconds: seconds_run,
            sfu_cpu: cpu1.saturating_sub(cpu0),
            lat,
            mem_per_sub_kib,
        }
    });
    let _ = stop_tx.send(());
    let _ = sfu_thread.join();
    report
}

fn main() {
    let list = std::env::var("SUBSCRIBERS").unwrap_or_else(|_| "64,200,600".into());
    let seconds: u64 = std::env::var("SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    for n in list.split(',').filter_map(|s| s.trim().parse::<usize>().ok()) {
        let mut r = run(n, seconds);
        let expected = r.sent * r.n as u64;
        let loss = 100.0 * (expected.saturating_sub(r.received)) as f64 / expected.max(1) as f64;
        r.lat.sort_unstable();
        let pct = |p: f64| {
            r.lat
                .get(((r.lat.len() as f64 - 1.0) * p) as usize)
                .copied()
                .unwrap_or(0) as f64
                / 1000.0
        };
        let per_packet_us = r.sfu_cpu.as_secs_f64() * 1e6 / r.received.max(1) as f64;
        println!(
            "subscribers {}: sent {} pkts in {:.1} s; forwarded {:.0} pkts/s; loss {:.2}%; SFU thread CPU {:.2} s = {:.2} us/forwarded pkt ({:.0} pkts/s per core); latency p50 {:.2} ms p99 {:.2} ms; memory {:.0} KiB/subscriber (process)",
            r.n,
            r.sent,
            r.seconds,
            r.received as f64 / r.seconds,
            loss,
            r.sfu_cpu.as_secs_f64(),
            per_packet_us,
            1e6 / per_packet_us.max(0.001),
            pct(0.5),
            pct(0.99),
            r.mem_per_sub_kib
        );
    }
}
