//! An I/O thread around a core (one per shard): it waits on its sockets and its waker, hands
//! the core what other shards sent, reads the publishers' socket first and all of it (the
//! home shard's; until the timers are due), then a batch of the receivers' (sound and control before pictures within
//! a batch), hands each datagram to the core with the time, runs the core's timers every
//! 5 ms, carries out the handle's commands between rounds, delivers what the core has for
//! other shards, and tells the core how long it worked (its load). The core's datagrams
//! leave through [`Sockets`].

use super::Cmd;
use super::core::{Core, Wire};
use super::port::{Lane, Port};
use super::shard::{Inbox, Outlet, Waker};
use bytes::BytesMut;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

/// Most datagrams read before they are handled, audio and control first.
const RECV_BATCH: usize = 64;

/// The two sockets, [`Lane::Priority`] first, as the core's [`Wire`].
pub(super) struct Sockets(pub(super) [Arc<Port>; 2]);

impl Wire for Sockets {
    fn send(&mut self, lane: Lane, datagrams: &mut Vec<(BytesMut, SocketAddr)>) {
        self.0[lane.index()].send(datagrams);
    }
}

/// Handles datagrams read together from one socket: sound and control first, sent before
/// the pictures are handled; then the pictures, sent together.
fn handle_batch(core: &mut Core, lane: Lane, batch: &mut Vec<(BytesMut, SocketAddr)>) {
    // Stable: each kind keeps its order.
    batch.sort_by_cached_key(|(d, from)| core.is_picture(lane, d, *from));
    // Where the pictures start.
    let pictures = batch.partition_point(|(d, from)| !core.is_picture(lane, d, *from));
    // A publisher's packets are forwarding work, and so is sending what they made: the
    // governor estimates capacity from that time alone.
    let mut forwarding = false;
    for (n, (datagram, from)) in batch.drain(..).enumerate() {
        if n == pictures {
            send(core, forwarding);
            forwarding = false;
        }
        let started = Instant::now();
        if core.handle_datagram(lane, datagram, from, started) {
            forwarding = true;
            core.record_forwarding(started.elapsed());
        }
    }
    send(core, forwarding);
}

/// Whether to read `lane`'s socket again in this round, its last batch `full`, at `now`,
/// the timers due at `timers`. The receivers' socket gets one batch per round: then the
/// publishers' is looked at again. The publishers' is read while it is full, but not past
/// the timers' turn: a thread that cannot keep up with the publishers would otherwise
/// never again read a receiver's consent check, nor run the governor that sheds the load.
fn read_again(lane: Lane, full: bool, now: Instant, timers: Instant) -> bool {
    full && lane == Lane::Priority && now < timers
}

/// Sends what the core made; its time is forwarding if `forwarding`.
fn send(core: &mut Core, forwarding: bool) {
    let started = Instant::now();
    core.send_outbox();
    if forwarding {
        core.record_forwarding(started.elapsed());
    }
}

/// What one I/O thread runs: a core, the sockets it reads (the most urgent first), the
/// handle's commands, and its queues to and from the other shards.
pub(super) struct Shard {
    pub(super) core: Core,
    pub(super) reads: Vec<(Lane, Arc<Port>)>,
    pub(super) cmds: std_mpsc::Receiver<Cmd>,
    pub(super) inbox: Inbox,
    pub(super) waker: Arc<Waker>,
    pub(super) outlets: Vec<Outlet>,
}

/// Handles what the other shards sent: control first, then publishers' packets (forwarding
/// work, timed for the governor).
fn handle_inbox(core: &mut Core, inbox: &Inbox) {
    for relay in inbox.relays.try_iter() {
        core.receive_relay(relay, Instant::now());
    }
    for packets in inbox.packets.try_iter() {
        let started = Instant::now();
        core.receive_packets(&packets, started);
        core.record_forwarding(started.elapsed());
    }
}

/// The thread's loop, until the handle says stop.
pub(super) fn run(shard: Shard) {
    let Shard {
        mut core,
        reads,
        cmds,
        inbox,
        waker,
        outlets,
    } = shard;
    let place = core.place;
    let mut buf = vec![0u8; 2048];
    let mut batch: Vec<(BytesMut, SocketAddr)> = Vec::with_capacity(RECV_BATCH);
    let mut next_timers = Instant::now();
    let mut working = Instant::now();
    let mut fds: Vec<PollFd<'_>> = reads
        .iter()
        .map(|(_, p)| PollFd::new(p.sock.as_fd(), PollFlags::POLLIN))
        .collect();
    fds.push(PollFd::new(waker.fd(), PollFlags::POLLIN));
    loop {
        while let Ok(cmd) = cmds.try_recv() {
            if !core.handle_command(cmd, Instant::now()) {
                return;
            }
        }
        core.outgoing.deliver(place, &outlets);
        // Wait up to 2 ms for the first datagram on any socket, or to be woken (a command,
        // or work from another shard). Then what other shards sent is handled, then the
        // publishers' socket is read and handled, all of it (until the timers are due); then
        // a batch of the receivers'.
        // Within a batch, sound and control go first, so a burst of picture packets (a
        // keyframe, fanned out to hundreds) does not hold a speaker's voice behind it.
        core.record_busy(working.elapsed());
        let _ = poll(&mut fds, PollTimeout::from(2u8));
        working = Instant::now();
        waker.clear();
        handle_inbox(&mut core, &inbox);
        for (lane, port) in &reads {
            loop {
                batch.clear();
                port.receive(&mut buf, &mut batch, RECV_BATCH);
                let full = batch.len() == RECV_BATCH;
                handle_batch(&mut core, *lane, &mut batch);
                core.outgoing.deliver(place, &outlets);
                if !read_again(*lane, full, Instant::now(), next_timers) {
                    break;
                }
            }
        }
        let now = Instant::now();
        if now >= next_timers {
            next_timers = now + Duration::from_millis(5);
            core.handle_timeout(now);
        }
        core.outgoing.deliver(place, &outlets);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_full_publishers_socket_is_read_again_and_never_past_the_timers() {
        let t = Instant::now();
        let later = t + Duration::from_millis(5);
        for (lane, full, now, again) in [
            (Lane::Priority, true, t, true),
            (Lane::Priority, false, t, false),
            (Lane::Priority, true, later, false),
            (Lane::General, true, t, false),
            (Lane::General, false, t, false),
        ] {
            assert_eq!(
                read_again(lane, full, now, later),
                again,
                "{lane:?} full={full} at {:?}",
                now - t
            );
        }
    }
}
