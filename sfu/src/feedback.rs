//! The RTCP the SFU itself acts on, and the interceptor chain of each leg.
//!
//! webrtc-rs's core keeps inbound RTCP for its interceptors (reports, NACK) unless one marks a
//! packet for the application. [`Feedback`] sits after the built-in interceptors and marks
//! the keyframe requests (PLI, FIR) and bandwidth estimates (REMB) a subscriber sends, so the
//! driver can ask the publisher for a keyframe and choose the subscriber's layers.
//!
//! Publisher legs get NACK (asking the publisher again for what was lost), RTCP reports and
//! transport-wide congestion feedback, so a browser's sender can estimate its bandwidth and
//! keep its simulcast layers up. Subscriber legs get NACK answered from a send buffer,
//! reports (the sender reports carry the timing browsers need for lip sync), and REMB, which
//! this SFU reads as the subscriber's estimate.

use rtc::interceptor::{Attribute, Interceptor, Packet, Registry, Slot, StreamInfo, TaggedPacket};
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_nack, configure_rtcp_reports, configure_twcc_receiver_only,
};
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtp_transceiver::rtp_sender::{RTCPFeedback, RtpCodecKind};
use std::collections::VecDeque;
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

/// The interceptors of a subscriber leg, registering in `media` the feedback they need.
pub fn subscriber_chain(media: &mut MediaEngine) -> Registry {
    media.register_feedback(feedback("ccm", "fir"), RtpCodecKind::Video);
    media.register_feedback(feedback("goog-remb", ""), RtpCodecKind::Video);
    let registry = configure_nack(Registry::new(), media);
    configure_rtcp_reports(registry).with(Slot::from(FEEDBACK_SLOT), Feedback::default())
}

#[cfg(test)]
mod tests {
    use super::*;
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
