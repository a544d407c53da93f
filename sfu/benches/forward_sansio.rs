//! Forwarding benchmark, product-path architecture: the SFU drives webrtc-rs's sans-IO `rtc`
//! core directly, every peer on ONE UDP socket served by ONE thread, with no task per peer
//! and no awaiting any subscriber. The publisher and the subscribers are ordinary webrtc-rs
//! 0.21 async peers (another runtime, the other core), exactly as in `forward.rs`, so the
//! two benchmarks compare the SFU side only.
//!
//! Run: `cargo bench -p dienhong-sfu --bench forward_sansio` (env `SUBSCRIBERS=64,200,600`,
//! `SECONDS=10`). Output has the same fields as `forward.rs`.

mod common;

use bytes::BytesMut;
use common::{
    OPUS_PT, Received, Report, media_engine, peer, publish, rss_kib, settings, thread_cpu, track,
};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::{CandidateConfig, CandidateHostConfig, RTCIceCandidate};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc as std_mpsc};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::runtime::Runtime;

// ---------------------------------------------------------------- the SFU (sans-IO)

enum Cmd {
    /// The publisher's offer; answer with the SFU's SDP.
    Publisher(
        RTCSessionDescription,
        oneshot::Sender<RTCSessionDescription>,
    ),
    /// A new subscriber: reply with the SFU's offer and the subscriber's index.
    Subscriber(oneshot::Sender<(usize, RTCSessionDescription)>),
    /// The subscriber's answer.
    Answer(usize, RTCSessionDescription),
    /// Report the SFU thread's CPU time.
    Cpu(oneshot::Sender<Duration>),
    Stop,
}

struct SfuPeer {
    pc: RTCPeerConnection,
    /// (audio sender, audio ssrc, video sender, video ssrc) for subscribers.
    senders: Option<(RTCRtpSenderId, u32, RTCRtpSenderId, u32)>,
}

struct Sfu {
    /// Send each packet with its own `sendto` (false) or gather them for `sendmmsg` (true).
    batch: bool,
    /// Packets gathered for the next `sendmmsg`.
    out: Vec<(SocketAddr, BytesMut)>,
    sock: UdpSocket,
    local: SocketAddr,
    peers: Vec<SfuPeer>,
    by_addr: HashMap<SocketAddr, usize>,
    by_ufrag: HashMap<String, usize>,
    publisher: Option<usize>,
    subscribers: Vec<usize>,
}

/// The first half of a STUN USERNAME ("receiver:sender"): the ufrag of the peer it is for.
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
        .find_map(|l| l.trim().strip_prefix("a=ice-ufrag:").map(|u| u.to_owned()))
}

fn sdp_candidates(sdp: &str) -> Vec<SocketAddr> {
    sdp.lines()
        .filter_map(|l| {
            let l = l.trim().strip_prefix("a=candidate:")?;
            let f: Vec<&str> = l.split_whitespace().collect();
            format!("{}:{}", f.get(4)?, f.get(5)?).parse().ok()
        })
        .collect()
}

impl Sfu {
    fn new_pc(&self) -> RTCPeerConnection {
        RTCPeerConnectionBuilder::new()
            .with_media_engine(media_engine())
            .with_setting_engine(settings())
            .build(Instant::now())
            .expect("sans-io peer")
    }

    fn add_candidate(&self, pc: &mut RTCPeerConnection) {
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
        .expect("candidate");
        pc.add_local_candidate(RTCIceCandidate::from(&candidate).to_json().expect("json"))
            .expect("add candidate");
    }

    fn register(&mut self, idx: usize) {
        if let Some(u) = self.peers[idx]
            .pc
            .local_description()
            .and_then(|d| sdp_ufrag(&d.sdp))
        {
            self.by_ufrag.insert(u, idx);
        }
    }

    fn command(&mut self, cmd: Cmd) -> bool {
        match cmd {
            Cmd::Publisher(offer, reply) => {
                let mut pc = self.new_pc();
                for a in sdp_candidates(&offer.sdp) {
                    self.by_addr.insert(a, self.peers.len());
                }
                pc.set_remote_description(Instant::now(), offer)
                    .expect("remote offer");
                let answer = pc.create_answer(None).expect("answer");
                pc.set_local_description(Instant::now(), answer)
                    .expect("local answer");
                self.add_candidate(&mut pc);
                let sdp = pc.local_description().expect("sdp");
                self.peers.push(SfuPeer { pc, senders: None });
                self.publisher = Some(self.peers.len() - 1);
                self.register(self.peers.len() - 1);
                let _ = reply.send(sdp);
            }
            Cmd::Subscriber(reply) => {
                let idx = self.peers.len();
                let mut pc = self.new_pc();
                let (sa, sv) = (20_000 + 2 * idx as u32, 20_001 + 2 * idx as u32);
                let a = pc
                    .add_track(track(RtpCodecKind::Audio, sa, &format!("s{idx}")))
                    .expect("audio");
                let v = pc
                    .add_track(track(RtpCodecKind::Video, sv, &format!("s{idx}")))
                    .expect("video");
                let offer = pc.create_offer(None).expect("offer");
                pc.set_local_description(Instant::now(), offer)
                    .expect("local offer");
                self.add_candidate(&mut pc);
                let sdp = pc.local_description().expect("sdp");
                self.peers.push(SfuPeer {
                    pc,
                    senders: Some((a, sa, v, sv)),
                });
                self.register(idx);
                let _ = reply.send((idx, sdp));
            }
            Cmd::Answer(idx, answer) => {
                for a in sdp_candidates(&answer.sdp) {
                    self.by_addr.insert(a, idx);
                }
                self.peers[idx]
                    .pc
                    .set_remote_description(Instant::now(), answer)
                    .expect("remote answer");
                self.subscribers.push(idx);
            }
            Cmd::Cpu(reply) => {
                let _ = reply.send(thread_cpu());
            }
            Cmd::Stop => return false,
        }
        true
    }

    fn flush(&mut self, idx: usize) {
        while let Some(msg) = self.peers[idx].pc.poll_write() {
            if self.batch {
                self.out.push((msg.transport.peer_addr, msg.message));
            } else {
                let _ = self.sock.send_to(&msg.message, msg.transport.peer_addr);
            }
        }
        while self.peers[idx].pc.poll_event().is_some() {}
    }

    /// Sends everything gathered, up to 512 datagrams per `sendmmsg` call.
    fn send_gathered(&mut self) {
        use nix::sys::socket::{ControlMessage, MsgFlags, MultiHeaders, SockaddrIn, sendmmsg};
        use std::io::IoSlice;
        use std::os::fd::AsRawFd;
        let fd = self.sock.as_raw_fd();
        let mut rest: &[(SocketAddr, BytesMut)] = &self.out;
        while !rest.is_empty() {
            let chunk = &rest[..rest.len().min(512)];
            let slices: Vec<[IoSlice<'_>; 1]> =
                chunk.iter().map(|(_, b)| [IoSlice::new(b)]).collect();
            let addrs: Vec<Option<SockaddrIn>> = chunk
                .iter()
                .map(|(a, _)| match a {
                    SocketAddr::V4(v4) => Some(SockaddrIn::from(*v4)),
                    SocketAddr::V6(_) => None,
                })
                .collect();
            let mut headers = MultiHeaders::<SockaddrIn>::preallocate(chunk.len(), None);
            let cmsgs: [ControlMessage<'_>; 0] = [];
            let sent = match sendmmsg(fd, &mut headers, &slices, &addrs, cmsgs, MsgFlags::empty()) {
                Ok(results) => results.count(),
                Err(nix::errno::Errno::EAGAIN) => {
                    std::thread::yield_now();
                    0
                }
                Err(_) => chunk.len(),
            };
            rest = &rest[sent..];
        }
        self.out.clear();
    }

    /// Takes what the publisher decoded and writes it to every subscriber, without waiting.
    fn forward(&mut self, from: usize) {
        let mut packets = Vec::new();
        while let Some(TaggedRTCMessage { message, .. }) = self.peers[from].pc.poll_read() {
            if let RTCMessage::RtpPacket(_, pkt) = message
                && Some(from) == self.publisher
            {
                packets.push(pkt);
            }
        }
        if packets.is_empty() {
            return;
        }
        let now = Instant::now();
        for i in 0..self.subscribers.len() {
            let s = self.subscribers[i];
            let Some((a, sa, v, sv)) = self.peers[s].senders else {
                continue;
            };
            for pkt in &packets {
                let mut p = pkt.clone();
                let (sender, ssrc) = if p.header.payload_type == OPUS_PT {
                    (a, sa)
                } else {
                    (v, sv)
                };
                p.header.ssrc = ssrc;
                if let Some(mut tx) = self.peers[s].pc.rtp_sender(sender) {
                    let _ = tx.write_rtp(now, p);
                }
            }
            self.flush(s);
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
                let last = self.peers.len().saturating_sub(1);
                if !self.peers.is_empty() {
                    self.flush(last);
                }
                if self.batch {
                    self.send_gathered();
                }
            }
            let _ = self.sock.set_read_timeout(Some(Duration::from_millis(2)));
            let mut first = true;
            loop {
                let got = self.sock.recv_from(&mut buf);
                let Ok((n, from)) = got else { break };
                let idx = match self.by_addr.get(&from) {
                    Some(i) => Some(*i),
                    None => stun_target_ufrag(&buf[..n])
                        .and_then(|u| self.by_ufrag.get(&u).copied())
                        .inspect(|i| {
                            self.by_addr.insert(from, *i);
                        }),
                };
                if let Some(i) = idx {
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
                    let _ = self.peers[i].pc.handle_read(msg);
                    self.forward(i);
                    while self.peers[i].pc.poll_read().is_some() {}
                    self.flush(i);
                }
                if first {
                    first = false;
                    let _ = self.sock.set_nonblocking(true);
                }
            }
            let _ = self.sock.set_nonblocking(false);
            if self.batch {
                self.send_gathered();
            }
            let now = Instant::now();
            if now >= next_timers {
                next_timers = now + Duration::from_millis(5);
                for i in 0..self.peers.len() {
                    if self.peers[i].pc.poll_timeout().is_some_and(|t| t <= now) {
                        let _ = self.peers[i].pc.handle_timeout(now);
                        self.flush(i);
                    }
                }
                if self.batch {
                    self.send_gathered();
                }
            }
        }
    }
}

fn run(n: usize, seconds: u64) -> Report {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let s2 = socket2::SockRef::from(&sock);
    let _ = s2.set_recv_buffer_size(16 << 20);
    let _ = s2.set_send_buffer_size(16 << 20);
    let local = sock.local_addr().expect("addr");
    let (cmd_tx, cmd_rx) = std_mpsc::channel::<Cmd>();
    let sfu = Sfu {
        batch: std::env::var("BATCH").map_or(true, |v| v != "0"),
        out: Vec::new(),
        sock,
        local,
        peers: Vec::new(),
        by_addr: HashMap::new(),
        by_ufrag: HashMap::new(),
        publisher: None,
        subscribers: Vec::new(),
    };
    let sfu_thread = std::thread::Builder::new()
        .name("sfu".into())
        .spawn(move || sfu.run(cmd_rx))
        .expect("sfu thread");
    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("client runtime");
    let t0 = Instant::now();
    let cmd = cmd_tx.clone();
    let report = clients.block_on(async move {
        let rt: Arc<dyn Runtime> = webrtc::runtime::default_runtime().expect("tokio runtime");
        let mut publisher = peer(rt.clone()).await;
        let pub_video = Arc::new(TrackLocalStaticRTP::new(track(
            RtpCodecKind::Video,
            1111,
            "pub",
        )));
        let pub_audio = Arc::new(TrackLocalStaticRTP::new(track(
            RtpCodecKind::Audio,
            2222,
            "pub",
        )));
        publisher
            .pc
            .add_track(pub_video.clone())
            .await
            .expect("video");
        publisher
            .pc
            .add_track(pub_audio.clone())
            .await
            .expect("audio");
        let offer = publisher.pc.create_offer(None).await.expect("offer");
        publisher
            .pc
            .set_local_description(offer)
            .await
            .expect("local");
        let _ = tokio::time::timeout(Duration::from_secs(5), publisher.gathered.recv()).await;
        let offer = publisher.pc.local_description().await.expect("sdp");
        let (tx, rx) = oneshot::channel();
        cmd.send(Cmd::Publisher(offer, tx)).expect("sfu alive");
        let answer = rx.await.expect("answer");
        publisher
            .pc
            .set_remote_description(answer)
            .await
            .expect("remote");
        tokio::time::timeout(Duration::from_secs(10), publisher.connected.recv())
            .await
            .expect("publisher connects");

        let rss0 = rss_kib();
        let received = Received::default();
        let mut subs = Vec::new();
        for _ in 0..n {
            let (tx, rx) = oneshot::channel();
            cmd.send(Cmd::Subscriber(tx)).expect("sfu alive");
            let (idx, offer) = rx.await.expect("offer");
            let mut sub = peer(rt.clone()).await;
            sub.pc.set_remote_description(offer).await.expect("remote");
            let answer = sub.pc.create_answer(None).await.expect("answer");
            sub.pc.set_local_description(answer).await.expect("local");
            let _ = tokio::time::timeout(Duration::from_secs(5), sub.gathered.recv()).await;
            let answer = sub.pc.local_description().await.expect("sdp");
            cmd.send(Cmd::Answer(idx, answer)).expect("sfu alive");
            received.follow(
                std::mem::replace(&mut sub.tracks, mpsc::unbounded_channel().1),
                t0,
            );
            subs.push(sub);
        }
        let mut connected = 0;
        for sub in subs.iter_mut() {
            if tokio::time::timeout(Duration::from_secs(20), sub.connected.recv())
                .await
                .is_ok()
            {
                connected += 1;
            }
        }
        eprintln!("{connected}/{n} subscribers connected");
        let mem_per_sub_kib = (rss_kib().saturating_sub(rss0)) as f64 / n.max(1) as f64;
        tokio::time::sleep(Duration::from_millis(500)).await;

        let (tx, rx) = oneshot::channel();
        cmd.send(Cmd::Cpu(tx)).expect("sfu");
        let cpu0 = rx.await.expect("cpu");
        let received0 = received.count.load(Ordering::Relaxed);
        received.latency_us.lock().expect("lat").clear();
        let start = Instant::now();
        let sent = publish(&pub_video, 1111, &pub_audio, 2222, seconds, t0).await;
        let seconds_run = start.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let (tx, rx) = oneshot::channel();
        cmd.send(Cmd::Cpu(tx)).expect("sfu");
        let cpu1 = rx.await.expect("cpu");
        let got = received.count.load(Ordering::Relaxed) - received0;
        let lat = std::mem::take(&mut *received.latency_us.lock().expect("lat"));
        for sub in subs {
            let _ = sub.pc.close().await;
        }
        let _ = publisher.pc.close().await;
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
    let _ = cmd_tx.send(Cmd::Stop);
    let _ = sfu_thread.join();
    report
}

fn main() {
    let (counts, seconds) = common::plan();
    for n in counts {
        run(n, seconds).print();
    }
}
