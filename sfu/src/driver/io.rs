//! The I/O thread around the core: it waits on the two sockets, reads the publishers' one
//! first and all of it, then a batch of the receivers' (sound and control before pictures
//! within a batch), hands each datagram to the core with the time, runs the core's timers
//! every 5 ms, carries out the handle's commands between rounds, and tells the core how
//! long it worked (its load). The core's datagrams leave through [`Sockets`].

use super::Cmd;
use super::core::{Core, Wire};
use super::port::{Lane, Port};
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

/// Handles datagrams read together from one socket: sound and control before pictures.
fn handle_batch(core: &mut Core, lane: Lane, batch: &mut Vec<(BytesMut, SocketAddr)>) {
    if batch.len() > 1 {
        // Stable: each kind keeps its order.
        batch.sort_by_key(|(d, from)| core.is_picture(lane, d, *from));
    }
    for (datagram, from) in batch.drain(..) {
        let started = Instant::now();
        if core.receive(lane, datagram, from, started) {
            // A publisher's packet is forwarding work; the governor estimates capacity
            // from that time alone.
            core.record_forwarding(started.elapsed());
        }
    }
}

/// The thread's loop, until the handle says stop.
pub(super) fn run(mut core: Core, ports: [Arc<Port>; 2], cmds: std_mpsc::Receiver<Cmd>) {
    let mut buf = vec![0u8; 2048];
    let mut batch: Vec<(BytesMut, SocketAddr)> = Vec::with_capacity(RECV_BATCH);
    let mut next_timers = Instant::now();
    let mut working = Instant::now();
    loop {
        while let Ok(cmd) = cmds.try_recv() {
            if !core.handle_command(cmd, Instant::now()) {
                return;
            }
        }
        // Wait up to 2 ms for the first datagram on either socket. Then the publishers'
        // socket is read and handled first, all of it; then a batch of the receivers'.
        // Within a batch, sound and control go first, so a burst of picture packets (a
        // keyframe, fanned out to hundreds) does not hold a speaker's voice behind it.
        let mut fds = [
            PollFd::new(ports[0].sock.as_fd(), PollFlags::POLLIN),
            PollFd::new(ports[1].sock.as_fd(), PollFlags::POLLIN),
        ];
        core.record_busy(working.elapsed());
        let _ = poll(&mut fds, PollTimeout::from(2u8));
        working = Instant::now();
        for lane in [Lane::Priority, Lane::General] {
            loop {
                batch.clear();
                ports[lane.index()].receive(&mut buf, &mut batch, RECV_BATCH);
                let full = batch.len() == RECV_BATCH;
                handle_batch(&mut core, lane, &mut batch);
                // The receivers' socket gets one batch per round: then the publishers' is
                // looked at again.
                if !full || lane == Lane::General {
                    break;
                }
            }
        }
        let now = Instant::now();
        if now >= next_timers {
            next_timers = now + Duration::from_millis(5);
            core.handle_timeout(now);
        }
    }
}
