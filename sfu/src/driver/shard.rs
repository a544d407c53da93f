//! Shards: the driver's legs spread over several I/O threads, each running a core of its own
//! with its own socket. The first shard (the home shard) holds every publisher and the
//! protected receivers (the chamber, presiding deputies, chair consoles) on its two sockets;
//! ordinary receivers are spread over all shards. What crosses between them, in order, is
//! what this file owns:
//! - from the home shard to the others: who joined and which tracks were published or
//!   withdrawn ([`Relay`], so that every shard's router knows every track), and each
//!   publisher packet once, decoded and stripped ([`Decoded`], shared, never copied per
//!   shard), which each shard writes to its own receivers;
//! - from the others to the home shard: keyframe requests their routers decided (a PLI
//!   goes to a publisher, who is on the home shard).
//!
//! Routing is partitioned: each shard's router knows every track and the floor, and
//! decides for its own receivers; no lock is held across I/O, and a shard never waits on
//! another. A shard that falls behind loses the newest packets sent to it (a bounded
//! queue, like a socket's buffer), never the control messages.

use crate::forward::Vp8Ids;
use crate::routing::{Kind, Layer, ParticipantId, Track, TrackId};
use std::io::ErrorKind;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;

/// Publisher packets a shard may have waiting before newer ones are dropped (a few hundred
/// milliseconds of a sitting's publishers).
pub(super) const PACKET_QUEUE: usize = 4096;

/// Most shards (I/O threads): the shard is kept in a leg id's low byte.
pub const MAX_THREADS: usize = 64;

/// Which shard a core is, among how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Place {
    pub(super) index: usize,
    pub(super) count: usize,
}

impl Place {
    /// Whether this is the home shard (publishers, the protected, the priority socket).
    pub(super) fn home(self) -> bool {
        self.index == 0
    }

    /// Whether other shards exist.
    pub(super) fn shared(self) -> bool {
        self.count > 1
    }
}

/// The shard a leg id was made by.
pub(super) fn shard_of(leg: u64) -> usize {
    (leg & 0xff) as usize
}

/// A leg id made by `shard` from its counter.
pub(super) fn leg_id(counter: u64, shard: usize) -> u64 {
    (counter << 8) | (shard as u64 & 0xff)
}

/// A publisher's packet as every shard writes it: its track and layer, whether it waits for
/// a keyframe to switch layers (`gated`), what it is, with extensions stripped.
#[derive(Debug, Clone)]
pub(super) struct Decoded {
    pub(super) track: TrackId,
    pub(super) layer: Layer,
    pub(super) gated: bool,
    pub(super) video: bool,
    pub(super) keyframe: bool,
    pub(super) ids: Option<Vp8Ids>,
    pub(super) packet: rtc::rtp::Packet,
}

/// Control between shards, never dropped.
#[derive(Debug, Clone)]
pub(super) enum Relay {
    /// A publisher joined (home → others).
    Joined {
        who: ParticipantId,
        kind: Kind,
        presiding: bool,
    },
    /// A track was published (home → others).
    Published { id: TrackId, track: Track },
    /// A track was withdrawn (home → others).
    Unpublished(TrackId),
    /// A receiver needs a keyframe of a track's layer (others → home).
    Keyframe { track: TrackId, layer: Layer },
}

/// Wakes a shard's thread out of `poll(2)`: a datagram on a socket pair, sent only when
/// none is pending.
pub(super) struct Waker {
    pending: AtomicBool,
    tx: UnixDatagram,
    rx: UnixDatagram,
}

impl Waker {
    pub(super) fn new() -> std::io::Result<Waker> {
        let (tx, rx) = UnixDatagram::pair()?;
        tx.set_nonblocking(true)?;
        rx.set_nonblocking(true)?;
        Ok(Waker {
            pending: AtomicBool::new(false),
            tx,
            rx,
        })
    }

    /// Wakes the thread if it is not already to wake.
    pub(super) fn wake(&self) {
        if !self.pending.swap(true, Ordering::AcqRel) {
            let _ = self.tx.send(&[1]);
        }
    }

    /// What the thread polls.
    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.rx.as_fd()
    }

    /// Called by the woken thread before it reads its queues: a message sent from now on
    /// wakes it again.
    pub(super) fn clear(&self) {
        self.pending.store(false, Ordering::Release);
        let mut b = [0u8; 16];
        loop {
            match self.rx.recv(&mut b) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }
}

/// What a shard reads from the others.
pub(super) struct Inbox {
    pub(super) relays: mpsc::Receiver<Relay>,
    pub(super) packets: mpsc::Receiver<Arc<[Decoded]>>,
}

/// How a shard reaches another: its queues and its waker.
#[derive(Clone)]
pub(super) struct Outlet {
    relays: mpsc::Sender<Relay>,
    packets: mpsc::SyncSender<Arc<[Decoded]>>,
    waker: Arc<Waker>,
    /// Packets dropped because that shard's queue was full.
    dropped: Arc<AtomicU64>,
}

impl Outlet {
    /// Sends control; it is never dropped while the shard runs.
    pub(super) fn relay(&self, r: Relay) {
        let _ = self.relays.send(r);
    }

    /// Sends a batch of packets, dropped when the shard is that far behind.
    pub(super) fn packets(&self, p: Arc<[Decoded]>) {
        if let Err(mpsc::TrySendError::Full(p)) = self.packets.try_send(p) {
            self.dropped.fetch_add(p.len() as u64, Ordering::Relaxed);
        }
    }
}

/// The queues and wakers of `count` shards: each shard's inbox and, for each shard, the
/// outlets to every shard (its own included, unused).
pub(super) struct Mesh {
    pub(super) inboxes: Vec<Inbox>,
    pub(super) outlets: Vec<Outlet>,
    pub(super) wakers: Vec<Arc<Waker>>,
    pub(super) dropped: Vec<Arc<AtomicU64>>,
}

impl Mesh {
    pub(super) fn new(count: usize) -> std::io::Result<Mesh> {
        let mut mesh = Mesh {
            inboxes: Vec::with_capacity(count),
            outlets: Vec::with_capacity(count),
            wakers: Vec::with_capacity(count),
            dropped: Vec::with_capacity(count),
        };
        for _ in 0..count {
            let (rtx, rrx) = mpsc::channel();
            let (ptx, prx) = mpsc::sync_channel(PACKET_QUEUE);
            let waker = Arc::new(Waker::new()?);
            let dropped = Arc::new(AtomicU64::new(0));
            mesh.inboxes.push(Inbox {
                relays: rrx,
                packets: prx,
            });
            mesh.outlets.push(Outlet {
                relays: rtx,
                packets: ptx,
                waker: waker.clone(),
                dropped: dropped.clone(),
            });
            mesh.wakers.push(waker);
            mesh.dropped.push(dropped);
        }
        Ok(mesh)
    }
}

/// What one shard sends to the others, gathered by its core and delivered by its thread.
#[derive(Default)]
pub(super) struct Outgoing {
    pub(super) relays: Vec<Relay>,
    pub(super) packets: Vec<Arc<[Decoded]>>,
}

impl Outgoing {
    pub(super) fn is_empty(&self) -> bool {
        self.relays.is_empty() && self.packets.is_empty()
    }

    /// Delivers to the shards it is for: from the home shard to every other, from another
    /// to the home shard. Each shard reached is woken once.
    pub(super) fn deliver(&mut self, from: Place, outlets: &[Outlet]) {
        if self.is_empty() {
            return;
        }
        let targets = outlets.iter().enumerate().filter(|(i, _)| {
            if from.home() {
                *i != from.index
            } else {
                *i == 0
            }
        });
        for (_, o) in targets {
            for r in &self.relays {
                o.relay(r.clone());
            }
            for p in &self.packets {
                o.packets(p.clone());
            }
            o.waker.wake();
        }
        self.relays.clear();
        self.packets.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leg_ids_name_their_shard() {
        for shard in [0, 1, 7, MAX_THREADS - 1] {
            for counter in [1, 2, 1_000_000] {
                assert_eq!(shard_of(leg_id(counter, shard)), shard);
            }
        }
        assert_ne!(leg_id(1, 0), leg_id(1, 1));
        assert_ne!(leg_id(1, 1), leg_id(2, 1));
    }

    #[test]
    fn the_home_shard_sends_to_the_others_and_the_others_to_home() {
        let mesh = Mesh::new(3).expect("mesh");
        let mut out = Outgoing::default();
        out.relays.push(Relay::Unpublished(TrackId(4)));
        out.deliver(Place { index: 0, count: 3 }, &mesh.outlets);
        assert!(mesh.inboxes[0].relays.try_recv().is_err());
        for i in [1, 2] {
            assert!(matches!(
                mesh.inboxes[i].relays.try_recv(),
                Ok(Relay::Unpublished(TrackId(4)))
            ));
        }
        out.relays.push(Relay::Keyframe {
            track: TrackId(5),
            layer: Layer::High,
        });
        out.deliver(Place { index: 2, count: 3 }, &mesh.outlets);
        assert!(matches!(
            mesh.inboxes[0].relays.try_recv(),
            Ok(Relay::Keyframe { .. })
        ));
        assert!(mesh.inboxes[1].relays.try_recv().is_err());
    }

    #[test]
    fn a_shard_far_behind_loses_packets_not_control() {
        let mesh = Mesh::new(2).expect("mesh");
        let batch: Arc<[Decoded]> = Arc::from(vec![Decoded {
            track: TrackId(1),
            layer: Layer::High,
            gated: false,
            video: false,
            keyframe: false,
            ids: None,
            packet: rtc::rtp::Packet::default(),
        }]);
        let mut out = Outgoing::default();
        for _ in 0..PACKET_QUEUE + 10 {
            out.packets.push(batch.clone());
        }
        out.relays.push(Relay::Unpublished(TrackId(1)));
        out.deliver(Place { index: 0, count: 2 }, &mesh.outlets);
        assert_eq!(mesh.inboxes[1].packets.try_iter().count(), PACKET_QUEUE);
        assert_eq!(mesh.inboxes[1].relays.try_iter().count(), 1);
        assert_eq!(mesh.dropped[1].load(Ordering::Relaxed), 10);
        assert_eq!(mesh.dropped[0].load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_waker_wakes_once_until_cleared() {
        let w = Waker::new().expect("waker");
        w.wake();
        w.wake();
        let mut b = [0u8; 4];
        assert_eq!(w.rx.recv(&mut b).expect("one byte"), 1);
        assert!(w.rx.recv(&mut b).is_err(), "the second wake sent nothing");
        w.clear();
        w.wake();
        assert_eq!(w.rx.recv(&mut b).expect("woken again"), 1);
    }
}
