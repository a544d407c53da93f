//! A publisher (the chamber's programme, or the deputy holding the floor): one str0m peer
//! on its own socket and thread that publishes over WHIP and sends, once connected,
//! synthetic Opus (one packet per 20 ms) and VP8 (pictures of several packets at a fixed
//! rate, a keyframe periodically and on request). Every payload carries its source and send
//! time ([`crate::payload`]).

use crate::payload::{self, Source, Trailer, Vp8Packet};
use crate::peer;
use crate::signal::{self, Posted, Server};
use anyhow::{Context, bail};
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use str0m::media::{Direction, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Event, IceConnectionState, Input, Rtc};

/// What the publisher sends.
#[derive(Debug, Clone)]
pub struct Config {
    /// Opus payload bytes (one packet per 20 ms).
    pub audio_size: usize,
    /// VP8 pictures per second.
    pub video_fps: u32,
    /// Packets per picture.
    pub video_packets: u32,
    /// VP8 payload bytes per packet.
    pub video_size: usize,
    /// A keyframe this often (and whenever a receiver asks).
    pub keyframe_every: Duration,
}

impl Config {
    /// Packets per second the publisher sends (audio, video).
    pub fn rates(&self) -> (f64, f64) {
        (50.0, f64::from(self.video_fps * self.video_packets))
    }
}

/// The publisher's counters, read by the report.
#[derive(Debug, Default)]
pub struct Counters {
    pub audio_sent: AtomicU64,
    pub video_sent: AtomicU64,
    /// DTLS up and ICE not disconnected.
    pub connected: AtomicBool,
    pub ever_connected: AtomicBool,
    pub ice_disconnects: AtomicU64,
    /// Milliseconds after the start when ICE first went disconnected after connecting (0:
    /// never).
    pub lost_at_ms: AtomicU64,
    pub keyframe_requests: AtomicU64,
    /// Datagrams the socket refused.
    pub refused_sends: AtomicU64,
    /// Times the sender fell more than 100 ms behind its schedule (a busy CPU).
    pub late: AtomicU64,
    /// The peer died (str0m gave up on it).
    pub dead: AtomicBool,
}

/// A running publisher.
pub struct Publisher {
    pub location: String,
    pub counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Publisher {
    /// Publishes over WHIP as `source`; the media starts once connected.
    pub fn start(
        server: &Server,
        token: &str,
        bind: IpAddr,
        config: Config,
        source: Source,
    ) -> anyhow::Result<Publisher> {
        let socket = UdpSocket::bind(SocketAddr::new(bind, 0)).context("publisher socket")?;
        let local = socket.local_addr()?;
        let mut rtc = peer::new_rtc(local, Instant::now())?;
        let mut api = rtc.sdp_api();
        let name = source.name();
        let audio = api.add_media(
            MediaKind::Audio,
            Direction::SendOnly,
            Some(name.to_owned()),
            Some(format!("{name}-audio")),
            None,
        );
        let video = api.add_media(
            MediaKind::Video,
            Direction::SendOnly,
            Some(name.to_owned()),
            Some(format!("{name}-video")),
            None,
        );
        let (offer, pending) = api.apply().context("no offer")?;
        let offer = offer.to_sdp_string();
        let (answer, location) = match server.offer("/whip", token, &offer) {
            Posted::Created { answer, location } => (answer, location),
            Posted::Refused {
                retry_after,
                reason,
            } => bail!(
                "WHIP refused (503, Retry-After {}): {reason}",
                retry_after.as_deref().unwrap_or("-")
            ),
            Posted::Failed { status, reason } => bail!("WHIP failed (HTTP {status}): {reason}"),
        };
        let audio_pt = signal::payload_type(&answer, "audio", "opus/48000")
            .or_else(|| signal::payload_type(&offer, "audio", "opus/48000"))
            .context("no Opus in the WHIP answer")?;
        let video_pt = signal::payload_type(&answer, "video", "VP8/90000")
            .or_else(|| signal::payload_type(&offer, "video", "VP8/90000"))
            .context("no VP8 in the WHIP answer")?;
        let parsed = str0m::change::SdpAnswer::from_sdp_string(&answer)
            .context("the WHIP answer does not parse")?;
        rtc.sdp_api()
            .accept_answer(pending, parsed)
            .context("the WHIP answer is not acceptable")?;
        socket.set_read_timeout(Some(Duration::from_millis(5)))?;
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let sender = Sender {
            rtc,
            socket,
            local,
            audio: (audio, Pt::from(audio_pt)),
            video: (video, Pt::from(video_pt)),
            config,
            source,
            counters: counters.clone(),
            started: Instant::now(),
            force_keyframe: true,
        };
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("publisher-{name}"))
            .spawn(move || sender.run(&stop2))?;
        Ok(Publisher {
            location,
            counters,
            stop,
            thread: Some(thread),
        })
    }

    /// Stops sending (the server's session is ended separately, by `DELETE`).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Sender {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    audio: (Mid, Pt),
    video: (Mid, Pt),
    config: Config,
    source: Source,
    counters: Arc<Counters>,
    started: Instant,
    force_keyframe: bool,
}

impl Sender {
    fn trailer(&self) -> Trailer {
        Trailer {
            source: self.source,
            sent_ns: payload::monotonic_ns(),
        }
    }

    fn drain(&mut self) -> Option<Instant> {
        let counters = self.counters.clone();
        let started = self.started;
        let mut wants_keyframe = false;
        let r = peer::drain(&mut self.rtc, &self.socket, |_, e| match e {
            Event::Connected => {
                counters.connected.store(true, Ordering::Relaxed);
                counters.ever_connected.store(true, Ordering::Relaxed);
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                counters.ice_disconnects.fetch_add(1, Ordering::Relaxed);
                if counters.connected.swap(false, Ordering::Relaxed) {
                    let at = started.elapsed().as_millis().max(1) as u64;
                    let _ = counters.lost_at_ms.compare_exchange(
                        0,
                        at,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                }
            }
            Event::IceConnectionStateChange(
                IceConnectionState::Connected | IceConnectionState::Completed,
            ) if counters.ever_connected.load(Ordering::Relaxed) => {
                counters.connected.store(true, Ordering::Relaxed);
            }
            Event::KeyframeRequest(_) => {
                counters.keyframe_requests.fetch_add(1, Ordering::Relaxed);
                wants_keyframe = true;
            }
            _ => {}
        });
        self.force_keyframe |= wants_keyframe;
        match r {
            Ok((next, refused)) => {
                self.counters
                    .refused_sends
                    .fetch_add(refused, Ordering::Relaxed);
                Some(next)
            }
            Err(e) => {
                eprintln!("publisher: {e}");
                None
            }
        }
    }

    fn write(&mut self, (mid, pt): (Mid, Pt), seq: u64, ts: u32, marker: bool, data: Vec<u8>) {
        let now = Instant::now();
        if let Some(tx) = self.rtc.direct_api().stream_tx_by_mid(mid, None) {
            tx.write_rtp(RtpWrite::new(pt, seq.into(), ts, now, data).marker(marker));
        }
    }

    fn run(mut self, stop: &AtomicBool) {
        let mut next_rtc = self.drain().unwrap_or_else(Instant::now);
        let audio_step = Duration::from_millis(20);
        let frame_step = Duration::from_secs(1) / self.config.video_fps.max(1);
        let keyframe_frames =
            (self.config.keyframe_every.as_secs_f64() * f64::from(self.config.video_fps)) as u64;
        let (mut next_audio, mut next_frame) = (Instant::now(), Instant::now());
        let (mut audio_seq, mut video_seq, mut audio_ts, mut video_ts) = (1u64, 1u64, 0u32, 0u32);
        let mut frame = 0u64;
        let mut buf = vec![0u8; 2048];
        while !stop.load(Ordering::Relaxed) && self.rtc.is_alive() {
            let now = Instant::now();
            if self.counters.connected.load(Ordering::Relaxed) {
                if now >= next_audio {
                    let data = payload::opus(self.config.audio_size, self.trailer());
                    self.write(self.audio, audio_seq, audio_ts, false, data);
                    audio_seq += 1;
                    audio_ts = audio_ts.wrapping_add(960);
                    self.counters.audio_sent.fetch_add(1, Ordering::Relaxed);
                    next_rtc = self.drain().unwrap_or(next_rtc);
                    next_audio += audio_step;
                    if now.saturating_duration_since(next_audio) > Duration::from_millis(100) {
                        self.counters.late.fetch_add(1, Ordering::Relaxed);
                        next_audio = now + audio_step;
                    }
                }
                if now >= next_frame {
                    let keyframe = self.force_keyframe
                        || (keyframe_frames > 0 && frame.is_multiple_of(keyframe_frames));
                    self.force_keyframe = false;
                    let n = self.config.video_packets.max(1);
                    for i in 0..n {
                        let p = Vp8Packet {
                            picture: (frame & 0x7fff) as u16,
                            first: i == 0,
                            keyframe,
                        };
                        let data = payload::vp8(p, self.config.video_size, self.trailer());
                        self.write(self.video, video_seq, video_ts, i + 1 == n, data);
                        video_seq += 1;
                        next_rtc = self.drain().unwrap_or(next_rtc);
                    }
                    self.counters
                        .video_sent
                        .fetch_add(u64::from(n), Ordering::Relaxed);
                    frame += 1;
                    video_ts = video_ts.wrapping_add(90_000 / self.config.video_fps.max(1));
                    next_frame += frame_step;
                    if now.saturating_duration_since(next_frame) > Duration::from_millis(100) {
                        self.counters.late.fetch_add(1, Ordering::Relaxed);
                        next_frame = now + frame_step;
                    }
                }
            }
            let now = Instant::now();
            if now >= next_rtc {
                if self.rtc.handle_input(Input::Timeout(now)).is_err() {
                    break;
                }
                next_rtc = self.drain().unwrap_or(now + Duration::from_millis(5));
            }
            let mut wake = next_rtc.min(now + Duration::from_millis(5));
            if self.counters.connected.load(Ordering::Relaxed) {
                wake = wake.min(next_audio).min(next_frame);
            }
            let wait = wake
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1));
            let _ = self.socket.set_read_timeout(Some(wait));
            match self.socket.recv_from(&mut buf) {
                Ok((n, source)) => {
                    let Ok(r) = Receive::new(Protocol::Udp, source, self.local, &buf[..n]) else {
                        continue;
                    };
                    if self
                        .rtc
                        .handle_input(Input::Receive(Instant::now(), r))
                        .is_ok()
                    {
                        next_rtc = self.drain().unwrap_or(next_rtc);
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => {
                    eprintln!("publisher socket: {e}");
                    break;
                }
            }
        }
        if !self.rtc.is_alive() {
            self.counters.dead.store(true, Ordering::Relaxed);
            self.counters.connected.store(false, Ordering::Relaxed);
        }
    }
}
