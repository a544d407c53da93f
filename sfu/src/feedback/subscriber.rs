//! Everything a subscriber leg does to the packets it sends, as one interceptor: the
//! transport-wide sequence numbers and the estimate made from their feedback, the send
//! buffer that answers NACKs (on the retransmission stream where one was negotiated), the
//! sender reports, and the marking of the requests the driver acts on.
//!
//! webrtc-rs has these as four interceptors (sequence numbering, congestion control, the
//! NACK responder, sender reports), with a send history of three hash maps, and its chain
//! hands every packet from each to the next by value, through a queue in each, and walks
//! all of them again on every poll for output. On a forwarded packet's path that cost more
//! than the encryption (`docs/benchmarks.md`), for work that is a store and a few counters.
//! Here each packet is looked at once, and its history is rings indexed by sequence number.

use super::{
    ESTIMATE_RANGE, INITIAL_ESTIMATE, Resends, SenderEstimate, mark_requests, nacked,
    stream_supports_nack,
};
use rtc::interceptor::{
    Attribute, AttributedPacket, BandwidthEstimator, Gcc, Interceptor, Packet, PacketReport,
    StreamInfo, TaggedPacket, convert_twcc,
};
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::shared::TransportContext;
use rtc::shared::marshal::MarshalSize;
use rtc::shared::time::SystemInstant;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Packets sent on one leg whose fate its feedback may still report: enough for a chair
/// console's thumbnails (about 1,000 packets/s) for the second that feedback may take.
const SENT_HISTORY: usize = 1_024;

/// Packets of each stream kept to be sent again: a second of a chair console's pictures.
const SEND_BUFFER: usize = 1_024;

/// How often each stream's sender report goes out.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// Every transport-wide sequence number as its two bytes, so that numbering a packet
/// allocates nothing: the extension is a slice of this table.
static SEQUENCE_BYTES: [u8; 2 * 65_536] = {
    let mut t = [0u8; 2 * 65_536];
    let mut i = 0;
    while i < 65_536 {
        t[2 * i] = (i >> 8) as u8;
        t[2 * i + 1] = (i & 0xff) as u8;
        i += 1;
    }
    t
};

fn sequence_bytes(seq: u16) -> bytes::Bytes {
    let i = 2 * usize::from(seq);
    bytes::Bytes::from_static(&SEQUENCE_BYTES[i..i + 2])
}

/// One packet sent with a transport-wide sequence number (24 bytes: the ring is kept for
/// every subscriber connection).
#[derive(Debug, Clone, Copy, Default)]
struct Sent {
    /// When it left, µs after the leg's first packet.
    departure_us: u64,
    ssrc: u32,
    size: u16,
    rtp_sequence_number: u16,
    twcc_sequence_number: u16,
    /// Still waiting for the feedback that reports it.
    pending: bool,
}

/// What a sender report says of one stream: how much was sent, and which media time went
/// with which instant.
#[derive(Debug, Clone, Copy, Default)]
struct Reporting {
    packets: u32,
    octets: u32,
    /// The last packet's sequence number and media time, and when it was sent: the report
    /// extrapolates from it.
    last: Option<(u16, u32, Instant)>,
}

impl Reporting {
    fn sent(&mut self, now: Instant, pkt: &rtc::rtp::Packet) {
        self.packets = self.packets.wrapping_add(1);
        let octets = u32::try_from(pkt.payload.len()).unwrap_or(u32::MAX);
        self.octets = self.octets.wrapping_add(octets);
        let seq = pkt.header.sequence_number;
        // Only a packet later in the stream moves the media clock.
        let later = self.last.is_none_or(|(last, ..)| {
            let d = seq.wrapping_sub(last);
            d > 0 && d < 0x8000
        });
        if later {
            self.last = Some((seq, pkt.header.timestamp, now));
        }
    }

    fn report(
        &self,
        ssrc: u32,
        clock_rate: u32,
        wall: &SystemInstant,
        now: Instant,
    ) -> Option<SenderReport> {
        let (_, timestamp, at) = self.last?;
        let since = now.saturating_duration_since(at).as_secs_f64();
        // The media time now, from the last packet's and the stream's clock rate.
        let ticks = (since * f64::from(clock_rate)) as u64;
        Some(SenderReport {
            ssrc,
            ntp_time: wall.ntp(now),
            rtp_time: timestamp.wrapping_add(ticks as u32),
            packet_count: self.packets,
            octet_count: self.octets,
            ..Default::default()
        })
    }
}

/// One stream the leg sends.
struct Stream {
    ssrc: u32,
    clock_rate: u32,
    /// Its retransmission stream (RFC 4588): SSRC, payload type, next sequence number.
    rtx: Option<(u32, u8, u16)>,
    /// The id of the transport-wide sequence number extension, if negotiated.
    twcc: Option<u8>,
    /// Packets kept to be sent again, by sequence number, if the receiver may ask (NACK).
    buffer: Vec<Option<rtc::rtp::Packet>>,
    reporting: Reporting,
}

impl Stream {
    fn resend(&mut self, seq: u16) -> Option<rtc::rtp::Packet> {
        let slot = self.buffer.get(usize::from(seq) % SEND_BUFFER)?;
        let original = slot.as_ref().filter(|p| p.header.sequence_number == seq)?;
        let Some((ssrc, payload_type, next)) = &mut self.rtx else {
            return Some(original.clone());
        };
        // RFC 4588: the original sequence number, then the payload, on the RTX stream's
        // own numbering.
        let mut payload = Vec::with_capacity(2 + original.payload.len());
        payload.extend_from_slice(&seq.to_be_bytes());
        payload.extend_from_slice(&original.payload);
        let rtx_seq = *next;
        *next = next.wrapping_add(1);
        Some(rtc::rtp::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                marker: original.header.marker,
                payload_type: *payload_type,
                sequence_number: rtx_seq,
                timestamp: original.header.timestamp,
                ssrc: *ssrc,
                ..Default::default()
            },
            payload: payload.into(),
        })
    }
}

/// The send side of a subscriber leg (see the module's header), wire-most in its chain.
///
/// - Every packet that leaves, retransmissions included, gets a transport-wide sequence
///   number; what left and when is kept in a ring indexed by that number, the subscriber's
///   feedback (TWCC) is resolved against it and drives webrtc-rs's GCC estimator, whose
///   target goes to a [`SenderEstimate`].
/// - The subscriber's NACKs are first rationed to what the estimate leaves room for
///   ([`Resends`]), then answered from each stream's send buffer.
/// - Each stream's sender report goes out every second once it has sent.
/// - Inbound RTCP is cut to the requests the driver acts on, marked for it.
pub struct SubscriberSide {
    streams: Vec<Stream>,
    next_sequence_number: u16,
    /// The instant departures count from: the first packet sent.
    epoch: Option<Instant>,
    /// Wall-clock time at the first packet sent, for the reports' NTP times.
    wall: Option<SystemInstant>,
    next_report: Option<Instant>,
    sent: Vec<Sent>,
    estimator: Gcc,
    last_target: f64,
    estimate: SenderEstimate,
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
    reports: Vec<PacketReport>,
    resends: Resends,
    /// Average size of the packets sent, bytes (what a resend will cost).
    packet_size: f64,
}

impl SubscriberSide {
    /// The send side of one leg, reporting its estimate to `estimate`.
    pub fn new(estimate: SenderEstimate) -> SubscriberSide {
        let (min, max) = ESTIMATE_RANGE;
        SubscriberSide {
            streams: Vec::new(),
            next_sequence_number: 0,
            epoch: None,
            wall: None,
            next_report: None,
            sent: vec![Sent::default(); SENT_HISTORY],
            estimator: Gcc::new(INITIAL_ESTIMATE, min, max),
            last_target: INITIAL_ESTIMATE,
            estimate,
            read: VecDeque::new(),
            write: VecDeque::new(),
            reports: Vec::new(),
            resends: Resends::default(),
            packet_size: 1_000.0,
        }
    }

    /// Stamps `pkt` with the next transport-wide sequence number, if its stream (or the
    /// stream it retransmits) negotiated them, and keeps what left.
    fn number(&mut self, now: Instant, pkt: &mut rtc::rtp::Packet) {
        let ssrc = pkt.header.ssrc;
        let Some(id) = self
            .streams
            .iter()
            .find(|s| s.ssrc == ssrc || s.rtx.is_some_and(|(r, ..)| r == ssrc))
            .and_then(|s| s.twcc)
        else {
            return;
        };
        let seq = self.next_sequence_number;
        self.next_sequence_number = seq.wrapping_add(1);
        if pkt.header.set_extension(id, sequence_bytes(seq)).is_err() {
            return;
        }
        let size = pkt.header.marshal_size() + pkt.payload.len();
        self.packet_size = 0.9 * self.packet_size + 0.1 * size as f64;
        let epoch = *self.epoch.get_or_insert(now);
        let since = now.saturating_duration_since(epoch).as_micros();
        if let Some(slot) = self.sent.get_mut(usize::from(seq) % SENT_HISTORY) {
            *slot = Sent {
                departure_us: u64::try_from(since).unwrap_or(u64::MAX),
                ssrc,
                size: u16::try_from(size).unwrap_or(u16::MAX),
                rtp_sequence_number: pkt.header.sequence_number,
                twcc_sequence_number: seq,
                pending: true,
            };
        }
    }

    fn ingest(&mut self, feedback: &TransportLayerCc) {
        let Some(epoch) = self.epoch else {
            return;
        };
        for ack in convert_twcc(feedback) {
            let slot = usize::from(ack.sequence_number) % SENT_HISTORY;
            let Some(sent) = self.sent.get_mut(slot) else {
                continue;
            };
            if !sent.pending || sent.twcc_sequence_number != ack.sequence_number {
                continue;
            }
            sent.pending = false;
            self.reports.push(PacketReport {
                ssrc: sent.ssrc,
                id: u64::from(sent.twcc_sequence_number),
                rtp_sequence_number: sent.rtp_sequence_number,
                is_twcc: true,
                twcc_sequence_number: sent.twcc_sequence_number,
                size: usize::from(sent.size),
                arrived: ack.arrived,
                departure: epoch + Duration::from_micros(sent.departure_us),
                arrival: ack.arrival,
                ecn: ack.ecn,
            });
        }
    }

    /// Queues the packets `nack` asks for again that are still in the send buffer.
    fn answer(&mut self, now: Instant, nack: &TransportLayerNack) {
        let Some(i) = self
            .streams
            .iter()
            .position(|s| s.ssrc == nack.media_ssrc && !s.buffer.is_empty())
        else {
            return;
        };
        for pair in &nack.nacks {
            for seq in nacked(pair) {
                let Some(mut pkt) = self.streams.get_mut(i).and_then(|s| s.resend(seq)) else {
                    continue;
                };
                self.number(now, &mut pkt);
                // Tagged so that whatever counts the bytes on the wire counts them as sent
                // again, not as media.
                self.write.push_back(TaggedPacket {
                    now,
                    transport: TransportContext::default(),
                    message: AttributedPacket::new(Packet::Rtp(pkt))
                        .with(Attribute::Retransmission),
                });
            }
        }
    }
}

impl rtc::sansio::Protocol<TaggedPacket, TaggedPacket, ()> for SubscriberSide {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &mut msg.message.packet {
            let streams = &self.streams;
            self.resends.ration(
                packets,
                msg.now,
                self.last_target,
                self.packet_size,
                |ssrc| streams.iter().any(|s| s.ssrc == ssrc),
            );
            for p in packets.iter() {
                let any = p.as_any();
                if let Some(feedback) = any.downcast_ref::<TransportLayerCc>() {
                    self.ingest(feedback);
                } else if let Some(nack) = any.downcast_ref::<TransportLayerNack>() {
                    self.answer(msg.now, nack);
                }
            }
            if !self.reports.is_empty() {
                self.estimator.on_reports(msg.now, &self.reports);
                self.reports.clear();
                let target = self.estimator.target_bitrate();
                if target != self.last_target {
                    self.last_target = target;
                    self.estimate.set(target);
                }
            }
        }
        mark_requests(&mut msg);
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        let now = msg.now;
        if let Packet::Rtp(pkt) = &mut msg.message.packet
            && let Some(stream) = self.streams.iter_mut().find(|s| s.ssrc == pkt.header.ssrc)
        {
            stream.reporting.sent(now, pkt);
            if !stream.buffer.is_empty() {
                let slot = usize::from(pkt.header.sequence_number) % SEND_BUFFER;
                if let Some(kept) = stream.buffer.get_mut(slot) {
                    // Kept before it is numbered: a resend gets a number of its own.
                    *kept = Some(pkt.clone());
                }
            }
            if self.wall.is_none() {
                self.wall = Some(SystemInstant::now(now));
            }
            if self.next_report.is_none() {
                self.next_report = Some(now + REPORT_EVERY);
            }
            self.number(now, pkt);
        }
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write.pop_front()
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), Self::Error> {
        let (Some(due), Some(wall)) = (self.next_report, self.wall.as_ref()) else {
            return Ok(());
        };
        if now < due {
            return Ok(());
        }
        self.next_report = Some(now + REPORT_EVERY);
        for s in &self.streams {
            if let Some(report) = s.reporting.report(s.ssrc, s.clock_rate, wall, now) {
                self.write.push_back(TaggedPacket {
                    now,
                    transport: TransportContext::default(),
                    message: AttributedPacket::new(Packet::Rtcp(vec![Box::new(report)])),
                });
            }
        }
        Ok(())
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        self.next_report
    }
}

impl Interceptor for SubscriberSide {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        let twcc = info
            .rtp_header_extensions
            .iter()
            .find(|e| e.uri == rtc::sdp::extmap::TRANSPORT_CC_URI)
            .and_then(|e| u8::try_from(e.id).ok())
            .filter(|id| (1..=14).contains(id));
        let buffer = if stream_supports_nack(info) {
            vec![None; SEND_BUFFER]
        } else {
            Vec::new()
        };
        let rtx = match (info.ssrc_rtx, info.payload_type_rtx) {
            (Some(ssrc), Some(pt)) => Some((ssrc, pt, 0)),
            _ => None,
        };
        self.streams.retain(|s| s.ssrc != info.ssrc);
        self.streams.push(Stream {
            ssrc: info.ssrc,
            clock_rate: info.clock_rate,
            rtx,
            twcc,
            buffer,
            reporting: Reporting::default(),
        });
    }
    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.streams.retain(|s| s.ssrc != info.ssrc);
    }
    fn bind_remote_stream(&mut self, _: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _: &StreamInfo) {}
}

#[cfg(test)]
mod tests;
