//! The bare forwarding loop, the yardstick for the SFU: str0m peers on one UDP socket and
//! one thread, every RTP packet of the publisher forwarded as it is (sequence numbers
//! rebased per receiver) to every connected receiver. No routing, no NACK/RTX, no
//! bandwidth estimation: SRTP in, SRTP out. Signalling is a minimal HTTP server on its own
//! thread that answers the generator's login, WHIP and WHEP requests without checking
//! anyone; that server ([`serve_signalling`], with the [`Sessions`] a loop provides) is
//! shared with the webrtc-rs loop ([`crate::bare_webrtc`]).

use crate::http;
use crate::peer;
use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};
use str0m::change::SdpOffer;
use str0m::media::{MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpPacket, RtpWrite};
use str0m::{Event, Input, Rtc};

enum Cmd {
    Add {
        id: u64,
        publisher: bool,
        rtc: Box<Rtc>,
    },
    Remove {
        id: u64,
        found: Sender<bool>,
    },
}

struct Client {
    id: u64,
    rtc: Rtc,
    publisher: bool,
    /// The mid of each kind (audio, video).
    mids: [Option<Mid>; 2],
    /// Per kind: what is subtracted from the publisher's sequence numbers.
    seq_base: [Option<u64>; 2],
    /// Publisher: the kind of each incoming SSRC.
    kinds: HashMap<u32, usize>,
    next: Instant,
}

fn kind_index(k: MediaKind) -> usize {
    match k {
        MediaKind::Audio => 0,
        MediaKind::Video => 1,
    }
}

/// What [`serve_signalling`] makes of an offer.
pub enum Opened {
    /// 201 with this SDP answer.
    Answer(String),
    /// 400: the offer could not be answered, and why.
    Invalid(String),
    /// 503: the loop has stopped, or did not answer in time.
    Stopped,
}

/// A bare loop's sessions, as the generator's signalling opens and ends them.
pub trait Sessions: Send + Sync + 'static {
    /// Answers a WHIP (`publisher`) or WHEP offer as the new session `id`.
    fn open(&self, id: u64, publisher: bool, offer: &str) -> Opened;
    /// Ends session `id`; whether there was one.
    fn end(&self, id: u64) -> bool;
}

/// Serves the generator's signalling on `http` on its own thread, a thread per connection,
/// until the process ends: login (any token), WHIP and WHEP offers (`Location`
/// `/whip/ID`, `/whep/ID`) and `DELETE` of those, answered by `sessions`. `name` prefixes
/// its errors.
pub fn serve_signalling(
    http: TcpListener,
    name: &'static str,
    sessions: Arc<dyn Sessions>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("bare-http".into())
        .spawn(move || {
            let ids = Arc::new(AtomicU64::new(1));
            for stream in http.incoming().flatten() {
                let (sessions, ids) = (sessions.clone(), ids.clone());
                std::thread::spawn(move || {
                    if let Err(e) = signal(&stream, &*sessions, &ids) {
                        eprintln!("{name} http: {e}");
                    }
                });
            }
        })?;
    Ok(())
}

fn signal(stream: &TcpStream, sessions: &dyn Sessions, ids: &AtomicU64) -> std::io::Result<()> {
    let req = http::read_request(stream)?;
    let path = req.path.split('?').next().unwrap_or_default().to_owned();
    match (req.method.as_str(), path.as_str()) {
        ("POST", "/api/login") => http::write_response(
            stream,
            200,
            &[("Content-Type", "application/json")],
            br#"{"token":"bare"}"#,
        ),
        ("POST", "/whip" | "/whep") => {
            let id = ids.fetch_add(1, Ordering::Relaxed);
            let text = String::from_utf8_lossy(&req.body);
            match sessions.open(id, path == "/whip", &text) {
                Opened::Answer(sdp) => {
                    let location = format!("{path}/{id}");
                    http::write_response(
                        stream,
                        201,
                        &[("Content-Type", "application/sdp"), ("Location", &location)],
                        sdp.as_bytes(),
                    )
                }
                Opened::Invalid(e) => http::write_response(stream, 400, &[], e.as_bytes()),
                Opened::Stopped => http::write_response(stream, 503, &[], b"stopped"),
            }
        }
        ("DELETE", p) if p.starts_with("/whip/") || p.starts_with("/whep/") => {
            let id = p.rsplit('/').next().and_then(|s| s.parse().ok());
            let found = id.is_some_and(|id| sessions.end(id));
            http::write_response(stream, if found { 200 } else { 404 }, &[], b"")
        }
        _ => http::write_response(stream, 404, &[], b"not found"),
    }
}

/// The str0m loop's sessions: answered here, handed to the forwarding thread.
struct Str0mSessions {
    tx: Sender<Cmd>,
    local: SocketAddr,
}

impl Sessions for Str0mSessions {
    fn open(&self, id: u64, publisher: bool, offer: &str) -> Opened {
        let answer = SdpOffer::from_sdp_string(offer)
            .map_err(|e| e.to_string())
            .and_then(|offer| {
                let mut rtc =
                    peer::new_rtc(self.local, Instant::now()).map_err(|e| e.to_string())?;
                let answer = rtc
                    .sdp_api()
                    .accept_offer(offer)
                    .map_err(|e| e.to_string())?;
                Ok((rtc, answer.to_sdp_string()))
            });
        match answer {
            Ok((rtc, sdp)) => {
                let cmd = Cmd::Add {
                    id,
                    publisher,
                    rtc: Box::new(rtc),
                };
                if self.tx.send(cmd).is_err() {
                    return Opened::Stopped;
                }
                Opened::Answer(sdp)
            }
            Err(e) => Opened::Invalid(e),
        }
    }

    fn end(&self, id: u64) -> bool {
        let (found_tx, found_rx) = mpsc::channel();
        self.tx
            .send(Cmd::Remove {
                id,
                found: found_tx,
            })
            .is_ok()
            && found_rx
                .recv_timeout(Duration::from_secs(5))
                .unwrap_or(false)
    }
}

/// Serves signalling on `http` ([`serve_signalling`]) and forwards on `udp` in the calling
/// thread, until the process ends.
pub fn serve(http: TcpListener, udp: UdpSocket) -> std::io::Result<()> {
    let local = udp.local_addr()?;
    let (tx, rx) = mpsc::channel();
    let sessions = Str0mSessions { tx, local };
    serve_signalling(http, "bare-forward", Arc::new(sessions))?;
    forward(udp, local, rx)
}

/// Drains one client; the publisher's packets are collected in `media`.
fn drain(c: &mut Client, socket: &UdpSocket, media: &mut Vec<(usize, RtpPacket)>) {
    let Client {
        rtc,
        mids,
        kinds,
        publisher,
        ..
    } = c;
    let r = peer::drain(rtc, socket, |rtc, e| match e {
        Event::MediaAdded(m) => mids[kind_index(m.kind)] = Some(m.mid),
        Event::RtpPacket(p) if *publisher => {
            let ssrc = *p.header.ssrc;
            let kind = match kinds.get(&ssrc) {
                Some(k) => Some(*k),
                None => {
                    let mid = rtc.direct_api().stream_rx(&p.header.ssrc).map(|s| s.mid());
                    let k = mid.and_then(|m| rtc.media(m)).map(|m| kind_index(m.kind()));
                    if let Some(k) = k {
                        kinds.insert(ssrc, k);
                    }
                    k
                }
            };
            if let Some(k) = kind {
                media.push((k, p));
            }
        }
        _ => {}
    });
    c.next = match r {
        Ok((next, _)) => next,
        Err(_) => Instant::now() + Duration::from_millis(5),
    };
}

fn wait_readable(socket: &UdpSocket, timeout: Duration) {
    let mut fds = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().clamp(0, 10) as i32;
    // SAFETY: fds is one valid pollfd.
    unsafe { libc::poll(&mut fds, 1, ms) };
}

fn forward(socket: UdpSocket, local: SocketAddr, cmds: Receiver<Cmd>) -> std::io::Result<()> {
    socket.set_nonblocking(true)?;
    let mut clients: Vec<Client> = Vec::new();
    let mut by_addr: HashMap<SocketAddr, u64> = HashMap::new();
    let mut media: Vec<(usize, RtpPacket)> = Vec::new();
    let mut buf = vec![0u8; 2048];
    let mut min_next = Instant::now();
    let (mut forwarded, mut since) = (0u64, Instant::now());
    loop {
        while let Ok(cmd) = cmds.try_recv() {
            match cmd {
                Cmd::Add { id, publisher, rtc } => {
                    let mut c = Client {
                        id,
                        rtc: *rtc,
                        publisher,
                        mids: [None, None],
                        seq_base: [None, None],
                        kinds: HashMap::new(),
                        next: Instant::now(),
                    };
                    drain(&mut c, &socket, &mut media);
                    min_next = min_next.min(c.next);
                    clients.push(c);
                }
                Cmd::Remove { id, found } => {
                    let before = clients.len();
                    clients.retain(|c| c.id != id);
                    by_addr.retain(|_, v| *v != id);
                    let _ = found.send(clients.len() != before);
                }
            }
        }
        let mut got = false;
        loop {
            let (n, source) = match socket.recv_from(&mut buf) {
                Ok(x) => x,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            got = true;
            let Ok(r) = Receive::new(Protocol::Udp, source, local, &buf[..n]) else {
                continue;
            };
            let input = Input::Receive(Instant::now(), r);
            let at = match by_addr.get(&source) {
                Some(id) => clients.iter().position(|c| c.id == *id),
                None => {
                    let at = clients.iter().position(|c| c.rtc.accepts(&input));
                    if let Some(i) = at {
                        by_addr.insert(source, clients[i].id);
                    }
                    at
                }
            };
            let Some(i) = at else { continue };
            if clients[i].rtc.handle_input(input).is_err() {
                continue;
            }
            drain(&mut clients[i], &socket, &mut media);
            min_next = min_next.min(clients[i].next);
            for (kind, p) in media.drain(..) {
                for c in clients.iter_mut() {
                    if c.publisher || !c.rtc.is_connected() {
                        continue;
                    }
                    let Some(mid) = c.mids[kind] else { continue };
                    let seq = *p.seq_no;
                    let base = *c.seq_base[kind].get_or_insert(seq.saturating_sub(1));
                    if seq <= base {
                        continue;
                    }
                    if let Some(tx) = c.rtc.direct_api().stream_tx_by_mid(mid, None) {
                        tx.write_rtp(
                            RtpWrite::new(
                                p.header.payload_type,
                                (seq - base).into(),
                                p.header.timestamp,
                                p.timestamp,
                                p.payload.clone(),
                            )
                            .marker(p.header.marker),
                        );
                        forwarded += 1;
                    }
                    let mut none = Vec::new();
                    drain(c, &socket, &mut none);
                    min_next = min_next.min(c.next);
                }
            }
        }
        let now = Instant::now();
        if now >= min_next {
            let mut next = now + Duration::from_millis(10);
            for c in clients.iter_mut() {
                if c.next <= now {
                    if c.rtc.handle_input(Input::Timeout(now)).is_ok() {
                        drain(c, &socket, &mut media);
                    }
                    media.clear();
                }
                next = next.min(c.next);
            }
            let before = clients.len();
            clients.retain(|c| c.rtc.is_alive());
            if clients.len() != before {
                by_addr.retain(|_, id| clients.iter().any(|c| c.id == *id));
            }
            min_next = next;
        }
        if since.elapsed() >= Duration::from_secs(10) {
            eprintln!(
                "bare-forward: {} peers, {:.0} packets/s forwarded",
                clients.len(),
                forwarded as f64 / since.elapsed().as_secs_f64()
            );
            (forwarded, since) = (0, Instant::now());
        }
        if !got {
            wait_readable(&socket, min_next.saturating_duration_since(Instant::now()));
        }
    }
}
