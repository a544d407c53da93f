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
//! through [`SenderEstimate`]. A subscriber leg only sends media, so it carries no NACK
//! generator and no receiver reports: every forwarded packet would walk them for nothing.

use rtc::interceptor::{
    Attribute, CongestionControlBuilder, Gcc, Interceptor, NackResponderBuilder, Packet, Registry,
    SenderReportBuilder, Slot, StreamInfo, TaggedPacket,
};
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_nack, configure_rtcp_reports, configure_twcc_receiver_only,
    configure_twcc_sender_only,
};
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtp_transceiver::rtp_sender::{RTCPFeedback, RtpCodecKind};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

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

/// Marks inbound PLI, FIR and REMB for the application and passes on the estimator's
/// changes of target to a [`SenderEstimate`]; passes everything through.
#[derive(Default)]
pub struct Feedback {
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
    estimate: Option<SenderEstimate>,
}

impl rtc::sansio::Protocol<TaggedPacket, TaggedPacket, ()> for Feedback {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Some(estimate) = &self.estimate
            && let Some(Attribute::TargetBitrateChanged { bits_per_second }) =
                msg.message.get(&Attribute::TargetBitrateChanged {
                    bits_per_second: 0.0,
                })
        {
            estimate.set(*bits_per_second);
        }
        if let Packet::Rtcp(packets) = &mut msg.message.packet
            && !packets.is_empty()
        {
            // Only what the SFU acts on: the core routes a compound packet by its first part,
            // and a report it has no stream for would take the request down with it.
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
    let estimate = SenderEstimate::default();
    let (min, max) = ESTIMATE_RANGE;
    let registry = configure_twcc_sender_only(Registry::new(), media)?
        .with(Slot::NackResponder, NackResponderBuilder::new().build())
        .with(Slot::SenderReport, SenderReportBuilder::new().build())
        .with(
            Slot::CongestionControl,
            CongestionControlBuilder::new(Gcc::new(INITIAL_ESTIMATE, min, max)).build(),
        )
        .with(
            Slot::from(FEEDBACK_SLOT),
            Feedback {
                estimate: Some(estimate.clone()),
                ..Feedback::default()
            },
        );
    Ok((registry, estimate))
}

#[cfg(test)]
mod tests {
    use super::*;

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
