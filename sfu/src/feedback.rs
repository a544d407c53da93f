//! The RTCP the SFU itself acts on, and the interceptor chain of each leg.
//!
//! webrtc-rs's core keeps inbound RTCP for its interceptors (reports, NACK) unless one marks a
//! packet for the application. [`Feedback`] sits after the built-in interceptors and marks
//! the keyframe requests (PLI, FIR) and bandwidth estimates (REMB) a subscriber sends, so the
//! driver can ask the publisher for a keyframe and choose the subscriber's layers.
//!
//! Publisher legs get NACK (asking the publisher again for what was lost), RTCP reports and
//! transport-wide congestion feedback, so a browser's sender can estimate its bandwidth and
//! keep its simulcast layers up. Subscriber legs get NACK answered from a send buffer, sender
//! reports (the timing browsers need for lip sync), and two ways to learn what the subscriber
//! can receive: REMB, the subscriber's own estimate, and transport-wide sequence numbers on
//! every packet sent, whose feedback (TWCC) drives the SFU's own estimator (GCC), read
//! through [`SenderEstimate`]. All of that is one interceptor, [`SubscriberSide`], since a
//! forwarded packet pays for every interceptor it passes. A subscriber leg only sends media,
//! so it carries no NACK generator and no receiver reports.

mod subscriber;

pub use subscriber::SubscriberSide;

use rtc::interceptor::{Attribute, Interceptor, Packet, Registry, Slot, StreamInfo, TaggedPacket};
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_nack, configure_rtcp_reports, configure_twcc_receiver_only,
};
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{NackPair, TransportLayerNack};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Where [`Feedback`] sits: after every built-in interceptor.
const FEEDBACK_SLOT: usize = 20_000;

/// What a subscriber asked of the SFU in one RTCP packet.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// A keyframe of the stream with this SSRC (as the subscriber knows it).
    Keyframe(u32),
    /// The subscriber's estimate of what it can receive, bits/s.
    Estimate(u64),
}

/// What the driver should do about these RTCP packets.
pub fn requests(packets: &[Box<dyn rtc::rtcp::Packet>]) -> Vec<Request> {
    let mut out = Vec::new();
    for p in packets {
        let any = p.as_any();
        if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
            out.push(Request::Keyframe(pli.media_ssrc));
        } else if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
            out.extend(fir.fir.iter().map(|e| Request::Keyframe(e.ssrc)));
        } else if let Some(remb) = any.downcast_ref::<ReceiverEstimatedMaximumBitrate>() {
            // A float from the wire: clamp before converting.
            let bps = f64::from(remb.bitrate).clamp(0.0, 1e10);
            out.push(Request::Estimate(bps as u64));
        }
    }
    out
}

/// Where the SFU's estimator starts for a new subscriber, bits/s: above what the best layer
/// needs, so a subscriber starts on the best layer and is lowered only by evidence (an
/// estimate that starts low climbs slowly, and a receiver sits on thumbnails meanwhile).
pub const INITIAL_ESTIMATE: f64 = 4_000_000.0;
/// The estimator's floor and ceiling, bits/s.
pub const ESTIMATE_RANGE: (f64, f64) = (100_000.0, 20_000_000.0);

/// The SFU's own estimate of what one subscriber can receive, made by the estimator in the
/// leg's chain from the subscriber's transport-wide feedback, read by the driver.
#[derive(Debug, Clone, Default)]
pub struct SenderEstimate(Arc<AtomicU64>);

impl SenderEstimate {
    /// The estimate made since the last call, bits/s, if it changed.
    pub fn take(&self) -> Option<u64> {
        match self.0.swap(0, Ordering::Relaxed) {
            0 => None,
            bps => Some(bps),
        }
    }

    fn set(&self, bps: f64) {
        // A float from the estimator: clamped before converting; zero means "none".
        let bps = bps.clamp(1.0, 1e10) as u64;
        self.0.store(bps, Ordering::Relaxed);
    }
}

/// How long a subscriber's own estimate (REMB) counts after it came, ms: a receiver that
/// stopped sending one (it reports transport-wide feedback instead) must not hold its layers
/// down with an old figure.
pub const REMB_VALID_MS: u64 = 5_000;

/// What is known of what one subscriber can receive: its own estimate (REMB) and the SFU's
/// (from its transport-wide feedback). Pure: the caller passes the time in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Estimates {
    /// The subscriber's last REMB, bits/s, and when it came (ms).
    pub remb: Option<(u64, u64)>,
    /// The SFU's last estimate, bits/s.
    pub sender: Option<u64>,
}

impl Estimates {
    /// The estimate to choose layers by at `now` (ms): the lower of the two when both are
    /// known (either may see congestion the other misses), a REMB only while recent.
    pub fn effective(&self, now: u64) -> Option<u64> {
        let remb = self
            .remb
            .filter(|(_, at)| now.saturating_sub(*at) <= REMB_VALID_MS)
            .map(|(bps, _)| bps);
        match (remb, self.sender) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Share of a subscriber's estimate its retransmissions may take.
pub const RESEND_SHARE: f64 = 0.2;

/// How much a subscriber's resends may send: a bucket of bytes filled at
/// [`RESEND_SHARE`] of its estimate, holding half a second of that (and never less than
/// four packets, so a single loss on a slow path is still repaired). A path losing packets
/// because it is full gets its repairs cut to what the estimate leaves room for, instead of
/// a storm of resends that loses more and asks for more. Pure: the caller passes the time.
#[derive(Debug, Clone, Default)]
pub struct ResendBudget {
    bytes: f64,
    last: Option<Instant>,
}

impl ResendBudget {
    /// Of `wanted` packets of about `size` bytes asked for again at `now`, with the
    /// subscriber's estimate at `bps`, how many may be resent; takes their bytes.
    pub fn take(&mut self, now: Instant, bps: f64, wanted: usize, size: f64) -> usize {
        let rate = bps.max(0.0) * RESEND_SHARE / 8.0;
        let cap = (rate * 0.5).max(4.0 * size);
        let elapsed = self.last.map_or(f64::INFINITY, |l| {
            now.saturating_duration_since(l).as_secs_f64()
        });
        self.bytes = (self.bytes + rate * elapsed).min(cap);
        self.last = Some(now);
        let size = size.max(1.0);
        let n = ((self.bytes / size).floor() as usize).min(wanted);
        self.bytes -= n as f64 * size;
        n
    }
}

/// A packet asked for again within this long of its last resend is not resent again: the
/// resend may still be on its way (receivers repeat their NACKs until the packet comes).
const RESEND_SPACING: Duration = Duration::from_millis(100);
/// Most times one packet is resent: a receiver that keeps asking for it (it lost every
/// copy, or never notes a repair) stops costing the budget.
const MAX_RESENDS: u8 = 3;
/// How long a packet's resends are remembered.
const RESEND_MEMORY: Duration = Duration::from_secs(2);

/// What is resent to one subscriber: each packet at most [`MAX_RESENDS`] times, once per
/// [`RESEND_SPACING`], within the [`ResendBudget`]. Pure: the caller passes the time.
#[derive(Debug, Default)]
pub struct Resends {
    budget: ResendBudget,
    /// When each (SSRC, sequence number) was last let through, and how many times.
    recent: HashMap<(u32, u16), (Instant, u8)>,
}

impl Resends {
    /// Cuts the NACKs in `packets` to the packets not resent lately, as many as the budget
    /// allows (in order), at `now` with the estimate at `bps` and packets of about `size`
    /// bytes; a NACK left asking for nothing, or naming a stream that is not `sent` (a
    /// retransmission stream's own numbering), is removed.
    pub fn ration(
        &mut self,
        packets: &mut Vec<Box<dyn rtc::rtcp::Packet>>,
        now: Instant,
        bps: f64,
        size: f64,
        sent: impl Fn(u32) -> bool,
    ) {
        if self.recent.len() > 4_096 {
            self.recent
                .retain(|_, (at, _)| now.saturating_duration_since(*at) < RESEND_MEMORY);
        }
        for p in packets.iter_mut() {
            let Some(nack) = p.as_any().downcast_ref::<TransportLayerNack>() else {
                continue;
            };
            let ssrc = nack.media_ssrc;
            if !sent(ssrc) {
                let mut none = nack.clone();
                none.nacks.clear();
                *p = Box::new(none);
                continue;
            }
            let fresh: Vec<u16> = nack
                .nacks
                .iter()
                .flat_map(nacked)
                .filter(|seq| {
                    self.recent.get(&(ssrc, *seq)).is_none_or(|(at, times)| {
                        let since = now.saturating_duration_since(*at);
                        since >= RESEND_MEMORY || (*times < MAX_RESENDS && since >= RESEND_SPACING)
                    })
                })
                .collect();
            let n = self.budget.take(now, bps, fresh.len(), size);
            let kept = &fresh[..n];
            for seq in kept {
                let entry = self.recent.entry((ssrc, *seq)).or_insert((now, 0));
                if now.saturating_duration_since(entry.0) >= RESEND_MEMORY {
                    entry.1 = 0;
                }
                *entry = (now, entry.1.saturating_add(1));
            }
            let mut rationed = nack.clone();
            rationed.nacks = nack_pairs(kept);
            *p = Box::new(rationed);
        }
        packets.retain(|p| {
            p.as_any()
                .downcast_ref::<TransportLayerNack>()
                .is_none_or(|n| !n.nacks.is_empty())
        });
    }
}

/// The sequence numbers a NACK range asks for.
fn nacked(pair: &NackPair) -> impl Iterator<Item = u16> + '_ {
    std::iter::once(pair.packet_id).chain(
        (0..16u16)
            .filter(|i| pair.lost_packets & (1 << i) != 0)
            .map(|i| pair.packet_id.wrapping_add(i + 1)),
    )
}

/// NACK ranges asking for `seqs` (in order).
fn nack_pairs(seqs: &[u16]) -> Vec<NackPair> {
    let mut pairs: Vec<NackPair> = Vec::new();
    for &seq in seqs {
        if let Some(last) = pairs.last_mut() {
            let gap = seq.wrapping_sub(last.packet_id);
            if (1..=16).contains(&gap) {
                last.lost_packets |= 1 << (gap - 1);
                continue;
            }
        }
        pairs.push(NackPair {
            packet_id: seq,
            lost_packets: 0,
        });
    }
    pairs
}

/// Keeps, of an inbound RTCP packet, only what the SFU acts on (PLI, FIR, REMB) and marks
/// it for the application: the core routes a compound packet by its first part, and a
/// report it has no stream for would take the request down with it.
fn mark_requests(msg: &mut TaggedPacket) {
    if let Packet::Rtcp(packets) = &mut msg.message.packet
        && !packets.is_empty()
    {
        packets.retain(|p| {
            let a = p.as_any();
            a.is::<PictureLossIndication>()
                || a.is::<FullIntraRequest>()
                || a.is::<ReceiverEstimatedMaximumBitrate>()
        });
        if !packets.is_empty() {
            msg.message.add(Attribute::DeliverToApplication);
        }
    }
}

/// Marks inbound PLI, FIR and REMB for the application; passes everything through.
#[derive(Default)]
pub struct Feedback {
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

impl rtc::sansio::Protocol<TaggedPacket, TaggedPacket, ()> for Feedback {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        mark_requests(&mut msg);
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write.pop_front()
    }
}

impl Interceptor for Feedback {
    fn bind_local_stream(&mut self, _: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _: &StreamInfo) {}
}

/// Whether the receiver of a stream asks for lost packets again (generic NACK).
fn stream_supports_nack(info: &StreamInfo) -> bool {
    info.rtcp_feedback
        .iter()
        .any(|f| f.typ == "nack" && f.parameter.is_empty())
}

fn feedback(typ: &str, parameter: &str) -> RTCPFeedback {
    RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    }
}

/// The interceptors of a publisher leg, registering in `media` the feedback they need.
pub fn publisher_chain(media: &mut MediaEngine) -> Result<Registry, rtc::shared::error::Error> {
    media.register_feedback(feedback("ccm", "fir"), RtpCodecKind::Video);
    let registry = configure_nack(Registry::new(), media);
    let registry = configure_twcc_receiver_only(registry, media)?;
    Ok(configure_rtcp_reports(registry).with(Slot::from(FEEDBACK_SLOT), Feedback::default()))
}

/// The interceptors of a subscriber leg, registering in `media` the feedback they need, and
/// where the SFU's estimate for this subscriber will be found.
pub fn subscriber_chain(
    media: &mut MediaEngine,
) -> Result<(Registry, SenderEstimate), rtc::shared::error::Error> {
    media.register_feedback(feedback("ccm", "fir"), RtpCodecKind::Video);
    media.register_feedback(feedback("goog-remb", ""), RtpCodecKind::Video);
    media.register_feedback(feedback("nack", ""), RtpCodecKind::Video);
    media.register_feedback(feedback("nack", "pli"), RtpCodecKind::Video);
    for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
        media.register_feedback(feedback("transport-cc", ""), kind);
        media.register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: rtc::sdp::extmap::TRANSPORT_CC_URI.to_owned(),
            },
            kind,
            None,
        )?;
    }
    let estimate = SenderEstimate::default();
    let registry = Registry::new().with(
        Slot::CongestionControl,
        SubscriberSide::new(estimate.clone()),
    );
    Ok((registry, estimate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resends_are_rationed_to_a_share_of_the_estimate() {
        let t0 = Instant::now();
        let mut b = ResendBudget::default();
        // 300 kbit/s: 60 kbit/s of resends, 7,500 bytes/s; the bucket holds 3,750 (half a
        // second), at least four packets of 1,000 bytes.
        assert_eq!(b.take(t0, 300_000.0, 10, 1_000.0), 4, "a full bucket");
        assert_eq!(b.take(t0, 300_000.0, 10, 1_000.0), 0, "then empty");
        let t1 = t0 + Duration::from_millis(400);
        assert_eq!(b.take(t1, 300_000.0, 10, 1_000.0), 3, "400 ms of 7.5 kB/s");
        // A fast path is repaired in full.
        let mut b = ResendBudget::default();
        assert_eq!(b.take(t0, 20_000_000.0, 50, 1_000.0), 50);
        // NACKs are cut to what fits, and one left empty is dropped; a packet resent less
        // than 100 ms ago is not resent again.
        use rtc::rtcp::transport_feedbacks::transport_layer_nack::NackPair;
        let nack = |pairs: Vec<(u16, u16)>| -> Box<dyn rtc::rtcp::Packet> {
            Box::new(TransportLayerNack {
                sender_ssrc: 1,
                media_ssrc: 2,
                nacks: pairs
                    .into_iter()
                    .map(|(packet_id, lost_packets)| NackPair {
                        packet_id,
                        lost_packets,
                    })
                    .collect(),
            })
        };
        let asked = |packets: &[Box<dyn rtc::rtcp::Packet>]| -> Vec<u16> {
            packets
                .iter()
                .filter_map(|p| p.as_any().downcast_ref::<TransportLayerNack>())
                .flat_map(|n| n.nacks.iter().flat_map(nacked).collect::<Vec<_>>())
                .collect()
        };
        let mut r = Resends::default();
        let mut packets = vec![
            nack(vec![(100, 0b101), (200, 0), (300, 0)]),
            Box::new(PictureLossIndication {
                sender_ssrc: 1,
                media_ssrc: 2,
            }),
            nack(vec![(400, 0)]),
        ];
        r.ration(&mut packets, t0, 300_000.0, 1_000.0, |s| s == 2);
        assert_eq!(asked(&packets), [100, 101, 103, 200], "four fit the bucket");
        assert_eq!(packets.len(), 2, "the second NACK had no room left");
        assert!(packets[1].as_any().is::<PictureLossIndication>());
        // Much later and on a fast path: all is resent but what went 50 ms ago.
        let mut r = Resends::default();
        let mut first = vec![nack(vec![(100, 0b1)])];
        r.ration(&mut first, t0, 20_000_000.0, 1_000.0, |s| s == 2);
        assert_eq!(asked(&first), [100, 101]);
        let mut again = vec![nack(vec![(100, 0b11)])];
        r.ration(
            &mut again,
            t0 + Duration::from_millis(50),
            20_000_000.0,
            1_000.0,
            |s| s == 2,
        );
        assert_eq!(asked(&again), [102], "100 and 101 were resent 50 ms ago");
        let mut later = vec![nack(vec![(100, 0b11)])];
        r.ration(
            &mut later,
            t0 + Duration::from_millis(160),
            20_000_000.0,
            1_000.0,
            |s| s == 2,
        );
        assert_eq!(asked(&later), [100, 101, 102], "lost again: resent again");
        let mut third = vec![nack(vec![(100, 0b11)])];
        r.ration(
            &mut third,
            t0 + Duration::from_millis(300),
            20_000_000.0,
            1_000.0,
            |s| s == 2,
        );
        assert_eq!(asked(&third), [100, 101, 102]);
        let mut fourth = vec![nack(vec![(100, 0b111)])];
        r.ration(
            &mut fourth,
            t0 + Duration::from_millis(450),
            20_000_000.0,
            1_000.0,
            |s| s == 2,
        );
        assert_eq!(asked(&fourth), [103], "100 to 102 went three times already");
        assert_eq!(nack_pairs(&[5, 6, 21, 22, 40]).len(), 3);
        // A NACK of a stream the leg does not send (its retransmissions' own numbering).
        let mut other = vec![Box::new(TransportLayerNack {
            sender_ssrc: 1,
            media_ssrc: 3,
            nacks: vec![NackPair {
                packet_id: 7,
                lost_packets: 0,
            }],
        }) as Box<dyn rtc::rtcp::Packet>];
        r.ration(
            &mut other,
            t0 + Duration::from_secs(5),
            20_000_000.0,
            1_000.0,
            |s| s == 2,
        );
        assert!(other.is_empty());
    }

    #[test]
    fn the_lower_estimate_counts_and_an_old_remb_does_not() {
        let none = Estimates::default();
        assert_eq!(none.effective(0), None);
        let sender_only = Estimates {
            remb: None,
            sender: Some(2_000_000),
        };
        assert_eq!(sender_only.effective(10), Some(2_000_000));
        let both = Estimates {
            remb: Some((600_000, 1_000)),
            sender: Some(2_000_000),
        };
        assert_eq!(both.effective(1_000), Some(600_000));
        assert_eq!(both.effective(1_000 + REMB_VALID_MS), Some(600_000));
        assert_eq!(
            both.effective(1_001 + REMB_VALID_MS),
            Some(2_000_000),
            "a REMB no longer sent stops counting"
        );
        let remb_only = Estimates {
            remb: Some((300_000, 0)),
            sender: None,
        };
        assert_eq!(remb_only.effective(100), Some(300_000));
        assert_eq!(remb_only.effective(REMB_VALID_MS + 1), None);
    }
    use rtc::rtcp::payload_feedbacks::full_intra_request::FirEntry;
    use rtc::rtcp::receiver_report::ReceiverReport;

    #[test]
    fn keyframe_requests_and_estimates_are_read_and_reports_ignored() {
        let packets: Vec<Box<dyn rtc::rtcp::Packet>> = vec![
            Box::new(ReceiverReport::default()),
            Box::new(PictureLossIndication {
                sender_ssrc: 1,
                media_ssrc: 42,
            }),
            Box::new(FullIntraRequest {
                sender_ssrc: 1,
                media_ssrc: 0,
                fir: vec![FirEntry {
                    ssrc: 43,
                    sequence_number: 1,
                }],
            }),
            Box::new(ReceiverEstimatedMaximumBitrate {
                sender_ssrc: 1,
                bitrate: 750_000.0,
                ssrcs: vec![42],
            }),
            Box::new(ReceiverEstimatedMaximumBitrate {
                sender_ssrc: 1,
                bitrate: f32::INFINITY,
                ssrcs: vec![],
            }),
        ];
        assert_eq!(
            requests(&packets),
            vec![
                Request::Keyframe(42),
                Request::Keyframe(43),
                Request::Estimate(750_000),
                Request::Estimate(10_000_000_000),
            ]
        );
    }
}
