//! One UDP socket of the SFU: reading in batches, sending in batches. The driver has two: one for
//! publishers and the participants never shed (the chamber, presiding deputies, chair
//! consoles), read first in every round, and one for every other receiver. A flood of
//! receivers' feedback, or a send queue full of fan-out, then never delays or drops a
//! publisher's media, its ICE consent checks or its DTLS.

use bytes::BytesMut;
use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, sendmmsg};
use std::io::IoSlice;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

/// Most datagrams handed to the kernel in one system call.
pub(super) const SEND_BATCH: usize = 64;

/// Which of the two sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Lane {
    /// Publishers and the protected receivers: read first.
    Priority,
    /// Every other receiver.
    General,
}

impl Lane {
    /// Its place in per-lane arrays: the publishers' first.
    pub(super) fn index(self) -> usize {
        match self {
            Lane::Priority => 0,
            Lane::General => 1,
        }
    }
}

pub(super) struct Port {
    pub(super) sock: UdpSocket,
    /// The address bound.
    pub(super) local: SocketAddr,
    /// What peers are told to connect to.
    pub(super) advertised: SocketAddr,
}

impl Port {
    /// Binds `bind` with 16 MiB buffers, non-blocking; peers are told `advertise` (or the
    /// bound address) with the bound port.
    pub(super) fn open(
        bind: SocketAddr,
        advertise: Option<std::net::IpAddr>,
    ) -> std::io::Result<Port> {
        let sock = UdpSocket::bind(bind)?;
        let s2 = socket2::SockRef::from(&sock);
        // The default 208 KB receive buffer overflows at a few hundred subscribers.
        let _ = s2.set_recv_buffer_size(16 << 20);
        let _ = s2.set_send_buffer_size(16 << 20);
        // Read in batches, waiting for the first with poll(2) (see `Core::run`).
        sock.set_nonblocking(true)?;
        let local = sock.local_addr()?;
        let advertised = SocketAddr::new(advertise.unwrap_or(local.ip()), local.port());
        Ok(Port {
            sock,
            local,
            advertised,
        })
    }

    /// Reads what has arrived, up to `max` datagrams, into `batch`.
    pub(super) fn receive(
        &self,
        buf: &mut [u8],
        batch: &mut Vec<(BytesMut, SocketAddr)>,
        max: usize,
    ) {
        while batch.len() < max {
            match self.sock.recv_from(buf) {
                Ok((n, from)) => batch.push((BytesMut::from(&buf[..n]), from)),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::warn!(error = %e, local = %self.local, "media socket");
                    break;
                }
            }
        }
    }

    /// Sends `outbox` in order, up to [`SEND_BATCH`] datagrams per system call
    /// (`sendmmsg`): one packet from a publisher becomes one datagram per subscriber. The
    /// list is left empty.
    pub(super) fn send(&self, outbox: &mut Vec<(BytesMut, SocketAddr)>) {
        if outbox.is_empty() {
            return;
        }
        // Made per call (a few kilobytes): it holds raw pointers, so it cannot be kept in a
        // value that moves to the thread.
        let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(SEND_BATCH, None);
        let fd = self.sock.as_raw_fd();
        let mut sent = 0;
        while sent < outbox.len() {
            let end = (sent + SEND_BATCH).min(outbox.len());
            let batch = &outbox[sent..end];
            let slices: Vec<[IoSlice<'_>; 1]> =
                batch.iter().map(|(b, _)| [IoSlice::new(b)]).collect();
            let addrs: Vec<Option<SockaddrStorage>> = batch
                .iter()
                .map(|(_, a)| Some(SockaddrStorage::from(*a)))
                .collect();
            match sendmmsg(fd, &mut headers, &slices, &addrs, [], MsgFlags::empty()) {
                Ok(results) => {
                    // The kernel may take fewer than offered: go on from the first not sent.
                    sent += results.count().max(1);
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => {
                    // The first datagram was refused (an unreachable address): drop it alone.
                    tracing::debug!(error = %e, to = %batch[0].1, "datagram not sent");
                    sent += 1;
                }
            }
        }
        outbox.clear();
    }
}
