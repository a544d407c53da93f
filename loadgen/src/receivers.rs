//! The WHEP receivers' I/O: a few threads, each owning a share of the receivers, every
//! receiver a str0m peer on its own UDP socket (epoll over the sockets). Every packet is
//! decrypted by str0m and counted per kind: sequence numbers for loss, the payload's send
//! time for latency. The measuring window is marked by a shared phase that every thread
//! watches, so counters are snapshotted by the thread that owns them.

use crate::payload;
use crate::peer;
use crate::stats::Histogram;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use str0m::net::{Protocol, Receive};
use str0m::{Event, IceConnectionState, Input, Rtc};

/// Before the window.
pub const WARMUP: u8 = 0;
/// In the window.
pub const MEASURE: u8 = 1;
/// After it.
pub const DONE: u8 = 2;

pub const AUDIO: usize = 0;
pub const VIDEO: usize = 1;

/// State shared with the orchestrating thread.
#[derive(Debug, Default)]
pub struct Shared {
    pub phase: AtomicU8,
    pub stop: AtomicBool,
    /// Receivers that got their first media packet.
    pub first_media: AtomicUsize,
}

/// A receiver whose WHEP offer was answered, handed to an I/O thread.
pub struct NewReceiver {
    pub index: usize,
    pub rtc: Rtc,
    pub socket: UdpSocket,
    pub posted_at: Instant,
    pub audio_pt: u8,
    pub video_pt: u8,
}

#[derive(Debug, Clone, Copy, Default)]
struct KindCount {
    received: u64,
    first_seq: Option<u64>,
    max_seq: Option<u64>,
    start: Option<(u64, Option<u64>)>,
    end: Option<(u64, Option<u64>)>,
}

impl KindCount {
    fn mark(&self) -> (u64, Option<u64>) {
        (self.received, self.max_seq)
    }

    /// (received, expected by sequence numbers) in the window.
    fn window(&self) -> (u64, u64) {
        let (Some((r0, s0)), Some((r1, s1))) = (self.start, self.end) else {
            return (0, 0);
        };
        let expected = match (s0, s1, self.first_seq) {
            (Some(a), Some(b), _) => b.saturating_sub(a),
            (None, Some(b), Some(first)) => b + 1 - first,
            _ => 0,
        };
        (r1.saturating_sub(r0), expected)
    }
}

/// One receiver's account of the run.
#[derive(Debug, Clone, Default)]
pub struct ReceiverReport {
    pub index: usize,
    /// WHEP POST → first media packet.
    pub setup_ms: Option<f64>,
    pub ice_connected: bool,
    pub dtls_connected: bool,
    pub ice_disconnects: u64,
    /// str0m gave up on the peer.
    pub dead: bool,
    /// Per kind, in the window: (received, expected by sequence numbers).
    pub window: [(u64, u64); 2],
    /// Per kind, over the whole run.
    pub total: [u64; 2],
    pub refused_sends: u64,
    /// Packets at or below the highest sequence number already seen: retransmissions,
    /// duplicates or reordering.
    pub repeated: u64,
    /// Packets received in the window from the chamber and from the floor holder, as their
    /// trailers say (by [`payload::Source::index`]).
    pub by_source: [u64; 2],
}

/// One I/O thread's account.
#[derive(Debug, Default)]
pub struct ThreadReport {
    pub receivers: Vec<ReceiverReport>,
    /// Send→arrival latency in the window, per kind.
    pub latency: [Histogram; 2],
    /// Packets of a payload type neither audio nor video, or without a send time.
    pub unknown: u64,
}

struct Slot {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    next: Instant,
    pts: [u8; 2],
    posted_at: Instant,
    counts: [KindCount; 2],
    report: ReceiverReport,
    alive: bool,
}

/// The I/O threads: where to hand them receivers, and their reports at the end.
pub type Threads = (Vec<Sender<NewReceiver>>, Vec<JoinHandle<ThreadReport>>);

/// Starts `threads` I/O threads; receivers are handed to them through the senders.
pub fn spawn(threads: usize, shared: Arc<Shared>) -> std::io::Result<Threads> {
    let mut senders = Vec::new();
    let mut handles = Vec::new();
    for i in 0..threads.max(1) {
        let (tx, rx) = std::sync::mpsc::channel();
        let shared = shared.clone();
        handles.push(
            std::thread::Builder::new()
                .name(format!("rx-{i}"))
                .spawn(move || io_thread(rx, shared))?,
        );
        senders.push(tx);
    }
    Ok((senders, handles))
}

struct Epoll(i32);

impl Epoll {
    fn new() -> std::io::Result<Epoll> {
        // SAFETY: epoll_create1 has no memory preconditions.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Epoll(fd))
    }

    fn add(&self, fd: i32, token: u64) -> std::io::Result<()> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: ev is a valid epoll_event for the duration of the call.
        if unsafe { libc::epoll_ctl(self.0, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    fn del(&self, fd: i32) {
        // SAFETY: a null event is allowed for EPOLL_CTL_DEL.
        unsafe { libc::epoll_ctl(self.0, libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut()) };
    }

    fn wait(&self, events: &mut [libc::epoll_event], timeout_ms: i32) -> usize {
        // SAFETY: events is a valid writable buffer of the length given.
        let n = unsafe {
            libc::epoll_wait(self.0, events.as_mut_ptr(), events.len() as i32, timeout_ms)
        };
        n.max(0) as usize
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        // SAFETY: the fd is ours and closed once.
        unsafe { libc::close(self.0) };
    }
}

/// Feeds one input to a slot and drains it; records what its events say.
fn feed(
    slot: &mut Slot,
    input: Option<Input>,
    arrived_ns: u64,
    phase: u8,
    shared: &Shared,
    latency: &mut [Histogram; 2],
    unknown: &mut u64,
) {
    if let Some(input) = input
        && slot.rtc.handle_input(input).is_err()
    {
        return;
    }
    let Slot {
        rtc,
        socket,
        counts,
        report,
        pts,
        posted_at,
        ..
    } = slot;
    let result = peer::drain(rtc, socket, |_, e| match e {
        Event::RtpPacket(p) => {
            let pt = *p.header.payload_type;
            let kind = if pt == pts[AUDIO] {
                AUDIO
            } else if pt == pts[VIDEO] {
                VIDEO
            } else {
                *unknown += 1;
                return;
            };
            let seq = *p.seq_no;
            let c = &mut counts[kind];
            if c.max_seq.is_some_and(|m| seq <= m) {
                report.repeated += 1;
            }
            c.received += 1;
            c.first_seq = Some(c.first_seq.map_or(seq, |f| f.min(seq)));
            c.max_seq = Some(c.max_seq.map_or(seq, |m| m.max(seq)));
            report.total[kind] += 1;
            if report.setup_ms.is_none() {
                report.setup_ms = Some(posted_at.elapsed().as_secs_f64() * 1e3);
                shared.first_media.fetch_add(1, Ordering::Relaxed);
            }
            match payload::trailer(&p.payload) {
                Some(t) if phase == MEASURE => {
                    latency[kind].record(arrived_ns.saturating_sub(t.sent_ns));
                    report.by_source[t.source.index()] += 1;
                }
                Some(_) => {}
                None => *unknown += 1,
            }
        }
        Event::Connected => report.dtls_connected = true,
        Event::IceConnectionStateChange(s) => match s {
            IceConnectionState::Connected | IceConnectionState::Completed => {
                report.ice_connected = true
            }
            IceConnectionState::Disconnected => report.ice_disconnects += 1,
            _ => {}
        },
        _ => {}
    });
    match result {
        Ok((next, refused)) => {
            slot.next = next;
            slot.report.refused_sends += refused;
        }
        Err(_) => slot.next = Instant::now() + Duration::from_millis(5),
    }
}

fn io_thread(inbox: Receiver<NewReceiver>, shared: Arc<Shared>) -> ThreadReport {
    let mut out = ThreadReport::default();
    let Ok(epoll) = Epoll::new() else {
        return out;
    };
    let mut slots: Vec<Slot> = Vec::new();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 512];
    let mut buf = vec![0u8; 2048];
    let mut seen_phase = WARMUP;
    let mut min_next = Instant::now() + Duration::from_millis(10);
    let mut inbox_open = true;
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let phase = shared.phase.load(Ordering::Relaxed);
        if inbox_open {
            loop {
                match inbox.try_recv() {
                    Ok(n) => {
                        let local = n.socket.local_addr();
                        let Ok(local) = local else { continue };
                        let token = slots.len() as u64;
                        if epoll.add(n.socket.as_raw_fd(), token).is_err() {
                            continue;
                        }
                        let mut slot = Slot {
                            rtc: n.rtc,
                            socket: n.socket,
                            local,
                            next: Instant::now(),
                            pts: [n.audio_pt, n.video_pt],
                            posted_at: n.posted_at,
                            counts: Default::default(),
                            report: ReceiverReport {
                                index: n.index,
                                ..Default::default()
                            },
                            alive: true,
                        };
                        feed(
                            &mut slot,
                            None,
                            0,
                            phase,
                            &shared,
                            &mut out.latency,
                            &mut out.unknown,
                        );
                        min_next = min_next.min(slot.next);
                        slots.push(slot);
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        inbox_open = false;
                        break;
                    }
                }
            }
        }
        if phase != seen_phase {
            for s in &mut slots {
                for c in &mut s.counts {
                    if phase == MEASURE {
                        c.start = Some(c.mark());
                    } else if phase == DONE {
                        c.end = Some(c.mark());
                    }
                }
            }
            seen_phase = phase;
        }
        let now = Instant::now();
        let wait = min_next.saturating_duration_since(now);
        let timeout_ms = wait.as_millis().min(10) as i32;
        let n = epoll.wait(&mut events, timeout_ms);
        for ev in &events[..n] {
            let Some(slot) = slots.get_mut(ev.u64 as usize) else {
                continue;
            };
            loop {
                match slot.socket.recv_from(&mut buf) {
                    Ok((len, source)) => {
                        let arrived = payload::monotonic_ns();
                        let Ok(r) = Receive::new(Protocol::Udp, source, slot.local, &buf[..len])
                        else {
                            continue;
                        };
                        feed(
                            slot,
                            Some(Input::Receive(Instant::now(), r)),
                            arrived,
                            phase,
                            &shared,
                            &mut out.latency,
                            &mut out.unknown,
                        );
                        min_next = min_next.min(slot.next);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
        }
        let now = Instant::now();
        if now >= min_next {
            let mut next = now + Duration::from_millis(10);
            for slot in &mut slots {
                if !slot.alive {
                    continue;
                }
                if slot.next <= now {
                    feed(
                        slot,
                        Some(Input::Timeout(now)),
                        payload::monotonic_ns(),
                        phase,
                        &shared,
                        &mut out.latency,
                        &mut out.unknown,
                    );
                    if !slot.rtc.is_alive() {
                        slot.alive = false;
                        slot.report.dead = true;
                        epoll.del(slot.socket.as_raw_fd());
                        continue;
                    }
                }
                next = next.min(slot.next);
            }
            min_next = next;
        }
    }
    for s in slots {
        let mut r = s.report;
        r.window = [s.counts[AUDIO].window(), s.counts[VIDEO].window()];
        out.receivers.push(r);
    }
    out
}
