//! The str0m side shared by the generator and the bare loop: how every `Rtc` is configured
//! (RTP mode, Opus and VP8 only, no statistics events) and draining its output.

use std::net::{SocketAddr, UdpSocket};
use std::time::Instant;
use str0m::net::Transmit;
use str0m::{Candidate, Event, Output, Rtc, RtcError};

/// A new `Rtc` in RTP mode (raw RTP packets in and out), Opus and VP8 only, with a host
/// candidate for `local`.
pub fn new_rtc(local: SocketAddr, now: Instant) -> Result<Rtc, RtcError> {
    let mut rtc = Rtc::builder()
        .set_rtp_mode(true)
        .clear_codecs()
        .enable_opus(true, false)
        .enable_vp8(true)
        .set_stats_interval(None)
        .build(now);
    let candidate = Candidate::host(local, "udp")?;
    rtc.add_local_candidate(candidate);
    Ok(rtc)
}

/// Sends one datagram; false when the socket refused it (buffer full).
pub fn transmit(socket: &UdpSocket, t: &Transmit) -> bool {
    socket.send_to(&t.contents, t.destination).is_ok()
}

/// Drains `rtc` to its next timeout: datagrams to `socket`, events to `on_event`. Returns
/// the timeout and how many datagrams the socket refused.
pub fn drain(
    rtc: &mut Rtc,
    socket: &UdpSocket,
    mut on_event: impl FnMut(&mut Rtc, Event),
) -> Result<(Instant, u64), RtcError> {
    let mut refused = 0;
    loop {
        match rtc.poll_output()? {
            Output::Timeout(t) => return Ok((t, refused)),
            Output::Transmit(t) => {
                if !transmit(socket, &t) {
                    refused += 1;
                }
            }
            Output::Event(e) => on_event(rtc, e),
        }
    }
}
