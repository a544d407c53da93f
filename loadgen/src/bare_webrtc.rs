//! The bare forwarding loop on webrtc-rs 0.21's async layer, a second yardstick for the SFU:
//! what a straightforward SFU written on that API achieves. The publisher's WHIP offer and
//! each receiver's WHEP offer are answered by an ordinary webrtc-rs `PeerConnection`; every
//! RTP packet the publisher's remote tracks yield is written, in turn and awaited, to the
//! `TrackLocalStaticRTP` of its kind on every connected receiver. No routing, no NACK/RTX or
//! keyframe handling of our own: only the SSRC and payload type are set to the receiver's,
//! and the publisher's header extensions are dropped (a receiver leg accepts only the ids
//! negotiated on it); sequence numbers and timestamps go out as they came.
//!
//! What this module owns, and what it leaves to webrtc-rs:
//! - **Peers**: Opus and VP8 only (the generator's codecs, no RTX), with the interceptors
//!   webrtc-rs's `register_default_interceptors` sets up for a plain application: NACK
//!   generator and responder (video), RTCP sender and receiver reports, TWCC feedback on
//!   what is received, and the simulcast header extensions. mDNS candidates are disabled
//!   (otherwise every peer opens a multicast socket too), as in the SFU's benchmarks.
//! - **Sockets**: one UDP socket per peer connection, bound by webrtc-rs on the given IP
//!   with an ephemeral port. webrtc-rs 0.21 cannot share one socket between connections:
//!   its setting engine's UDP mux (`with_udp_network`) is still a commented-out to-do, and
//!   every connection's driver binds its own sockets. The str0m loop ([`crate::bare`]) and
//!   the SFU use one socket.
//! - **Threads**: every peer's driver, the forwarding tasks and all signalling work run on
//!   one tokio runtime with ONE thread (`new_current_thread`, driven by the thread that
//!   calls [`serve`]), comparable with one media I/O thread. The HTTP server is the shared
//!   one ([`crate::bare::serve_signalling`]) on its own threads; it only parses requests
//!   and hands every offer and `DELETE` to that runtime.

use crate::bare::{Opened, Sessions, serve_signalling};
use crate::signal::payload_type;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCIceGatheringState, RTCPeerConnectionState, RTCSessionDescription, Registry,
    SettingEngineBuilder, register_default_interceptors,
};
use webrtc::runtime::Runtime;

const AUDIO: usize = 0;
const VIDEO: usize = 1;
/// The payload types registered (an answer takes the offer's own).
const OPUS_PT: u8 = 111;
const VP8_PT: u8 = 96;
/// How long an answer waits for the peer's candidates.
const GATHER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the signalling side waits for the runtime to answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

fn codec(kind: usize) -> RTCRtpCodec {
    if kind == AUDIO {
        RTCRtpCodec {
            mime_type: "audio/opus".into(),
            clock_rate: 48_000,
            channels: 2,
            sdp_fmtp_line: "minptime=10;useinbandfec=1".into(),
            rtcp_feedback: vec![],
        }
    } else {
        RTCRtpCodec {
            mime_type: "video/VP8".into(),
            clock_rate: 90_000,
            channels: 0,
            sdp_fmtp_line: String::new(),
            rtcp_feedback: vec![],
        }
    }
}

fn codec_kind(kind: usize) -> RtpCodecKind {
    if kind == AUDIO {
        RtpCodecKind::Audio
    } else {
        RtpCodecKind::Video
    }
}

/// Opus and VP8, then the default interceptors (which add their feedback and extensions
/// to the codecs registered).
fn media() -> webrtc::error::Result<(MediaEngine, Registry)> {
    let mut media = MediaEngine::default();
    for (kind, pt) in [(AUDIO, OPUS_PT), (VIDEO, VP8_PT)] {
        media.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: codec(kind),
                payload_type: pt,
            },
            codec_kind(kind),
        )?;
    }
    let registry = register_default_interceptors(Registry::new(), &mut media)?;
    Ok((media, registry))
}

/// A receiver's track of one kind, and what its packets carry.
#[derive(Clone)]
struct Output {
    id: u64,
    track: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    /// The payload type negotiated on the receiver's leg.
    pt: u8,
}

/// Everything the runtime's tasks share.
struct Shared {
    runtime: Arc<dyn Runtime>,
    ip: IpAddr,
    sessions: Mutex<HashMap<u64, Arc<dyn PeerConnection>>>,
    /// Receivers answered but not yet connected.
    pending: Mutex<HashMap<u64, [Output; 2]>>,
    /// Per kind, the connected receivers' tracks (replaced, never edited, so a forwarding
    /// task takes a snapshot per packet without holding the lock across its writes).
    outputs: [Mutex<Arc<Vec<Output>>>; 2],
    forwarded: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// A receiver is connected: its tracks get packets from now on.
    fn connect(&self, id: u64) {
        let Some(outs) = lock(&self.pending).remove(&id) else {
            return;
        };
        for (kind, out) in outs.into_iter().enumerate() {
            let mut list = lock(&self.outputs[kind]);
            let mut next = Vec::with_capacity(list.len() + 1);
            next.extend(list.iter().cloned());
            next.push(out);
            *list = Arc::new(next);
        }
    }

    /// Forgets session `id`; its connection, if it had one.
    fn remove(&self, id: u64) -> Option<Arc<dyn PeerConnection>> {
        lock(&self.pending).remove(&id);
        for outputs in &self.outputs {
            let mut list = lock(outputs);
            if list.iter().any(|o| o.id == id) {
                *list = Arc::new(list.iter().filter(|o| o.id != id).cloned().collect());
            }
        }
        lock(&self.sessions).remove(&id)
    }

    /// Forgets session `id` and closes its connection (in the background); whether there
    /// was one.
    fn end(&self, id: u64) -> bool {
        let Some(pc) = self.remove(id) else {
            return false;
        };
        tokio::spawn(async move {
            let _ = pc.close().await;
        });
        true
    }
}

struct Handler {
    id: u64,
    publisher: bool,
    shared: Arc<Shared>,
    gathered: mpsc::Sender<()>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.try_send(());
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        match state {
            RTCPeerConnectionState::Connected if !self.publisher => self.shared.connect(self.id),
            RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                self.shared.end(self.id);
            }
            _ => {}
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        if self.publisher {
            tokio::spawn(forward(track, self.shared.clone()));
        }
    }
}

/// Writes every packet of one of the publisher's tracks to every connected receiver's
/// track of that kind, until the track ends.
async fn forward(track: Arc<dyn TrackRemote>, shared: Arc<Shared>) {
    let kind = match track.kind().await {
        RtpCodecKind::Audio => AUDIO,
        RtpCodecKind::Video => VIDEO,
        _ => return,
    };
    while let Some(event) = track.poll().await {
        let TrackRemoteEvent::OnRtpPacket(mut packet) = event else {
            continue;
        };
        packet.header.extension = false;
        packet.header.extension_profile = 0;
        packet.header.extensions.clear();
        packet.header.extensions_padding = 0;
        let outputs = lock(&shared.outputs[kind]).clone();
        let mut sent = 0;
        for out in outputs.iter() {
            let mut p = packet.clone();
            p.header.ssrc = out.ssrc;
            p.header.payload_type = out.pt;
            if out.track.write_rtp(p).await.is_ok() {
                sent += 1;
            }
        }
        shared.forwarded.fetch_add(sent, Ordering::Relaxed);
    }
}

/// Answers an offer as session `id` on the runtime: the SDP answer, with its candidates.
async fn answer(
    shared: Arc<Shared>,
    id: u64,
    publisher: bool,
    offer: String,
) -> Result<String, String> {
    let (media, registry) = media().map_err(|e| format!("media engine: {e}"))?;
    let (gathered_tx, mut gathered) = mpsc::channel(1);
    let handler = Handler {
        id,
        publisher,
        shared: shared.clone(),
        gathered: gathered_tx,
    };
    let settings = SettingEngineBuilder::new()
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        .build();
    let pc = PeerConnectionBuilder::new()
        .with_setting_engine(settings)
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_handler(Arc::new(handler))
        .with_runtime(shared.runtime.clone())
        .with_udp_addrs(vec![SocketAddr::new(shared.ip, 0)])
        .build()
        .await
        .map_err(|e| format!("peer connection: {e}"))?;
    let pc: Arc<dyn PeerConnection> = Arc::new(pc);
    let negotiated = negotiate(&pc, id, publisher, offer, &mut gathered).await;
    match negotiated {
        Ok((sdp, outputs)) => {
            if let Some(outputs) = outputs {
                lock(&shared.pending).insert(id, outputs);
            }
            lock(&shared.sessions).insert(id, pc);
            Ok(sdp)
        }
        Err(e) => {
            let _ = pc.close().await;
            Err(e)
        }
    }
}

/// Tracks (receivers), offer, answer, candidates: the answer's SDP and, for a receiver,
/// its outputs.
async fn negotiate(
    pc: &Arc<dyn PeerConnection>,
    id: u64,
    publisher: bool,
    offer: String,
    gathered: &mut mpsc::Receiver<()>,
) -> Result<(String, Option<[Output; 2]>), String> {
    let mut tracks = Vec::new();
    if !publisher {
        for kind in [AUDIO, VIDEO] {
            // Distinct per receiver and kind, for readability in captures.
            let ssrc = 0x1000_0000 | ((id as u32 & 0x07ff_ffff) << 1) | kind as u32;
            let name = format!("bare-{id}-{}", codec_kind(kind));
            let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
                format!("bare-{id}"),
                name.clone(),
                name,
                codec_kind(kind),
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        ssrc: Some(ssrc),
                        ..Default::default()
                    },
                    codec: codec(kind),
                    ..Default::default()
                }],
            )));
            pc.add_track(track.clone())
                .await
                .map_err(|e| format!("add track: {e}"))?;
            tracks.push((track, ssrc));
        }
    }
    let offer = RTCSessionDescription::offer(offer).map_err(|e| format!("offer: {e}"))?;
    pc.set_remote_description(offer)
        .await
        .map_err(|e| format!("offer: {e}"))?;
    let answer = pc
        .create_answer(None)
        .await
        .map_err(|e| format!("answer: {e}"))?;
    pc.set_local_description(answer)
        .await
        .map_err(|e| format!("answer: {e}"))?;
    if tokio::time::timeout(GATHER_TIMEOUT, gathered.recv())
        .await
        .is_err()
    {
        return Err("no candidates gathered".into());
    }
    let sdp = pc
        .local_description()
        .await
        .ok_or("no local description")?
        .sdp;
    if publisher {
        return Ok((sdp, None));
    }
    let pts = [
        payload_type(&sdp, "audio", "opus/48000").ok_or("no Opus in the answer")?,
        payload_type(&sdp, "video", "VP8/90000").ok_or("no VP8 in the answer")?,
    ];
    let mut outputs = tracks
        .into_iter()
        .zip(pts)
        .map(|((track, ssrc), pt)| Output {
            id,
            track,
            ssrc,
            pt,
        });
    match (outputs.next(), outputs.next()) {
        (Some(audio), Some(video)) => Ok((sdp, Some([audio, video]))),
        _ => Err("tracks missing".into()),
    }
}

/// The webrtc-rs loop's sessions: every offer and `DELETE` is handed to the runtime.
struct WebrtcSessions {
    handle: tokio::runtime::Handle,
    shared: Arc<Shared>,
}

impl Sessions for WebrtcSessions {
    fn open(&self, id: u64, publisher: bool, offer: &str) -> Opened {
        let (tx, rx) = std::sync::mpsc::channel();
        let (shared, offer) = (self.shared.clone(), offer.to_owned());
        self.handle.spawn(async move {
            let r = answer(shared.clone(), id, publisher, offer).await;
            // Nobody waits any more: the session would only leak.
            if tx.send(r).is_err() {
                shared.end(id);
            }
        });
        match rx.recv_timeout(ANSWER_TIMEOUT) {
            Ok(Ok(sdp)) => Opened::Answer(sdp),
            Ok(Err(e)) => Opened::Invalid(e),
            Err(_) => Opened::Stopped,
        }
    }

    fn end(&self, id: u64) -> bool {
        let (tx, rx) = std::sync::mpsc::channel();
        let shared = self.shared.clone();
        self.handle.spawn(async move {
            let _ = tx.send(shared.end(id));
        });
        rx.recv_timeout(Duration::from_secs(5)).unwrap_or(false)
    }
}

/// Serves signalling on `http` ([`serve_signalling`]) and runs every peer connection and
/// the forwarding on a one-thread tokio runtime in the calling thread, until the process
/// ends. Each peer connection binds its own UDP socket on `udp_ip` (ephemeral port).
pub fn serve(http: TcpListener, udp_ip: IpAddr) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let runtime = webrtc::runtime::default_runtime()
        .ok_or_else(|| std::io::Error::other("webrtc-rs has no default runtime"))?;
    let shared = Arc::new(Shared {
        runtime,
        ip: udp_ip,
        sessions: Mutex::default(),
        pending: Mutex::default(),
        outputs: [Mutex::default(), Mutex::default()],
        forwarded: AtomicU64::new(0),
    });
    let sessions = WebrtcSessions {
        handle: rt.handle().clone(),
        shared: shared.clone(),
    };
    serve_signalling(http, "bare-forward-webrtc", Arc::new(sessions))?;
    rt.block_on(async move {
        let mut since = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_secs(10)).await;
            let forwarded = shared.forwarded.swap(0, Ordering::Relaxed);
            eprintln!(
                "bare-forward-webrtc: {} peers, {:.0} packets/s forwarded",
                lock(&shared.sessions).len(),
                forwarded as f64 / since.elapsed().as_secs_f64()
            );
            since = Instant::now();
        }
    })
}
