use super::*;
use rtc::interceptor::{RTCPFeedback, RTPHeaderExtension};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::NackPair;
use rtc::sansio::Protocol;

const VIDEO: u32 = 1_000;
const VIDEO_RTX: u32 = 1_001;
const AUDIO: u32 = 2_000;
const TWCC_ID: u8 = 3;

fn info(ssrc: u32, clock_rate: u32, nack: bool, rtx: Option<(u32, u8)>) -> StreamInfo {
    StreamInfo {
        ssrc,
        ssrc_rtx: rtx.map(|(s, _)| s),
        payload_type: 96,
        payload_type_rtx: rtx.map(|(_, pt)| pt),
        clock_rate,
        rtp_header_extensions: vec![RTPHeaderExtension {
            uri: rtc::sdp::extmap::TRANSPORT_CC_URI.to_owned(),
            id: u16::from(TWCC_ID),
        }],
        rtcp_feedback: if nack {
            vec![RTCPFeedback {
                typ: "nack".to_owned(),
                parameter: String::new(),
            }]
        } else {
            Vec::new()
        },
        ..Default::default()
    }
}

/// A leg sending pictures (NACK, and RTX where `rtx`) and sound (neither).
fn leg(rtx: bool) -> SubscriberSide {
    let mut side = SubscriberSide::new(SenderEstimate::default());
    side.bind_local_stream(&info(VIDEO, 90_000, true, rtx.then_some((VIDEO_RTX, 97))));
    side.bind_local_stream(&info(AUDIO, 48_000, false, None));
    side
}

fn rtp(ssrc: u32, seq: u16, timestamp: u32, payload: &[u8]) -> rtc::rtp::Packet {
    rtc::rtp::Packet {
        header: rtc::rtp::header::Header {
            version: 2,
            payload_type: 96,
            sequence_number: seq,
            timestamp,
            ssrc,
            ..Default::default()
        },
        payload: bytes::Bytes::copy_from_slice(payload),
    }
}

fn tagged(now: Instant, packet: Packet) -> TaggedPacket {
    TaggedPacket {
        now,
        transport: TransportContext::default(),
        message: AttributedPacket::new(packet),
    }
}

fn send(side: &mut SubscriberSide, now: Instant, pkt: rtc::rtp::Packet) {
    side.handle_write(tagged(now, Packet::Rtp(pkt)))
        .expect("written");
}

fn out(side: &mut SubscriberSide) -> Vec<TaggedPacket> {
    std::iter::from_fn(|| side.poll_write()).collect()
}

fn nack(ssrc: u32, seqs: &[u16]) -> Box<dyn rtc::rtcp::Packet> {
    Box::new(TransportLayerNack {
        sender_ssrc: 1,
        media_ssrc: ssrc,
        nacks: seqs
            .iter()
            .map(|s| NackPair {
                packet_id: *s,
                lost_packets: 0,
            })
            .collect(),
    })
}

fn twcc_number(pkt: &rtc::rtp::Packet) -> Option<u16> {
    let e = pkt.header.get_extension(TWCC_ID)?;
    Some(u16::from_be_bytes([*e.first()?, *e.get(1)?]))
}

fn rtp_of(t: &TaggedPacket) -> Option<&rtc::rtp::Packet> {
    match &t.message.packet {
        Packet::Rtp(p) => Some(p),
        _ => None,
    }
}

#[test]
fn a_sent_packet_is_kept_in_24_bytes() {
    assert_eq!(std::mem::size_of::<Sent>(), 24);
}

#[test]
fn the_sequence_number_table_holds_every_number() {
    for seq in [0u16, 1, 255, 256, 0x1234, u16::MAX] {
        assert_eq!(sequence_bytes(seq).as_ref(), seq.to_be_bytes());
    }
}

#[test]
fn every_packet_of_every_stream_is_numbered_in_the_order_it_leaves() {
    let t0 = Instant::now();
    let mut side = leg(false);
    send(&mut side, t0, rtp(VIDEO, 10, 0, b"v1"));
    send(&mut side, t0, rtp(AUDIO, 500, 0, b"a1"));
    send(&mut side, t0, rtp(VIDEO, 11, 0, b"v2"));
    send(&mut side, t0, rtp(4_242, 1, 0, b"an unknown stream"));
    let sent = out(&mut side);
    let numbers: Vec<Option<u16>> = sent.iter().filter_map(rtp_of).map(twcc_number).collect();
    assert_eq!(numbers, vec![Some(0), Some(1), Some(2), None]);
    // The payload is untouched.
    assert_eq!(
        rtp_of(&sent[2]).map(|p| p.payload.as_ref()),
        Some(&b"v2"[..])
    );
}

#[test]
fn a_nacked_picture_packet_is_resent_on_the_retransmission_stream() {
    let t0 = Instant::now();
    let mut side = leg(true);
    for seq in 10..20u16 {
        send(&mut side, t0, rtp(VIDEO, seq, 9_000, &[seq as u8; 4]));
    }
    assert_eq!(out(&mut side).len(), 10);
    let t1 = t0 + Duration::from_millis(50);
    side.handle_read(tagged(
        t1,
        Packet::Rtcp(vec![nack(VIDEO, &[12, 30]), nack(VIDEO, &[13])]),
    ))
    .expect("read");
    let resent = out(&mut side);
    // 30 was never sent: only 12 and 13 come back.
    assert_eq!(resent.len(), 2);
    for (r, (asked, rtx_seq)) in resent.iter().zip([(12u16, 0u16), (13, 1)]) {
        assert!(r.message.has(&Attribute::Retransmission));
        let p = rtp_of(r).expect("RTP");
        assert_eq!(p.header.ssrc, VIDEO_RTX);
        assert_eq!(p.header.payload_type, 97);
        assert_eq!(
            p.header.sequence_number, rtx_seq,
            "the RTX stream's own numbering"
        );
        assert_eq!(p.header.timestamp, 9_000);
        let mut want = asked.to_be_bytes().to_vec();
        want.extend_from_slice(&[asked as u8; 4]);
        assert_eq!(
            p.payload.as_ref(),
            &want[..],
            "the original number, then the payload"
        );
        assert!(twcc_number(p).is_some(), "a resend is numbered too");
    }
    assert_eq!(
        resent
            .iter()
            .filter_map(rtp_of)
            .map(twcc_number)
            .collect::<Vec<_>>(),
        vec![Some(10), Some(11)],
        "after the ten packets sent"
    );
    // The NACKs themselves are not for the application.
    let read = side.poll_read().expect("passed on");
    assert!(!read.message.has(&Attribute::DeliverToApplication));
}

#[test]
fn without_rtx_the_packet_is_resent_as_it_was_and_sound_is_not_resent() {
    let t0 = Instant::now();
    let mut side = leg(false);
    send(&mut side, t0, rtp(VIDEO, 7, 3_000, b"picture"));
    send(&mut side, t0, rtp(AUDIO, 70, 960, b"sound"));
    out(&mut side);
    side.handle_read(tagged(
        t0,
        Packet::Rtcp(vec![nack(VIDEO, &[7]), nack(AUDIO, &[70])]),
    ))
    .expect("read");
    let resent = out(&mut side);
    assert_eq!(resent.len(), 1, "the sound stream negotiated no NACK");
    let p = rtp_of(&resent[0]).expect("RTP");
    assert_eq!((p.header.ssrc, p.header.sequence_number), (VIDEO, 7));
    assert_eq!(p.payload.as_ref(), b"picture");
    assert_eq!(
        twcc_number(p),
        Some(2),
        "a new number, not the first send's"
    );
}

#[test]
fn a_packet_overwritten_in_the_buffer_is_not_resent_as_another() {
    let t0 = Instant::now();
    let mut side = leg(false);
    for seq in 0..=(SEND_BUFFER as u16) {
        send(&mut side, t0, rtp(VIDEO, seq, 0, b"x"));
    }
    out(&mut side);
    side.handle_read(tagged(t0, Packet::Rtcp(vec![nack(VIDEO, &[0])])))
        .expect("read");
    assert!(out(&mut side).is_empty(), "0's slot holds {}", SEND_BUFFER);
}

#[test]
fn each_stream_reports_what_it_sent_every_second() {
    let t0 = Instant::now();
    let mut side = leg(false);
    assert_eq!(side.poll_timeout(), None, "nothing sent, nothing to report");
    send(&mut side, t0, rtp(VIDEO, 1, 90_000, &[0; 100]));
    send(
        &mut side,
        t0 + Duration::from_millis(100),
        rtp(VIDEO, 2, 99_000, &[0; 50]),
    );
    // Late, out of order: counted, but it does not move the media clock back.
    send(
        &mut side,
        t0 + Duration::from_millis(200),
        rtp(VIDEO, 1, 90_000, &[0; 10]),
    );
    out(&mut side);
    let due = side.poll_timeout().expect("a report is due");
    assert_eq!(due, t0 + REPORT_EVERY);
    side.handle_timeout(due - Duration::from_millis(1))
        .expect("timeout");
    assert!(out(&mut side).is_empty(), "not yet");
    side.handle_timeout(due).expect("timeout");
    let reports: Vec<SenderReport> = out(&mut side)
        .into_iter()
        .filter_map(|t| match t.message.packet {
            Packet::Rtcp(p) => p
                .first()
                .and_then(|r| r.as_any().downcast_ref::<SenderReport>().cloned()),
            _ => None,
        })
        .collect();
    assert_eq!(reports.len(), 1, "the sound stream sent nothing: no report");
    let r = &reports[0];
    assert_eq!((r.ssrc, r.packet_count, r.octet_count), (VIDEO, 3, 160));
    // 900 ms after the packet with media time 99,000, at 90 kHz.
    assert_eq!(r.rtp_time, 99_000 + 81_000);
    assert_ne!(r.ntp_time, 0);
    assert_eq!(side.poll_timeout(), Some(due + REPORT_EVERY));
}

#[test]
fn only_the_requests_the_driver_acts_on_are_passed_to_it() {
    let t0 = Instant::now();
    let mut side = leg(false);
    let pli: Box<dyn rtc::rtcp::Packet> = Box::new(PictureLossIndication {
        sender_ssrc: 1,
        media_ssrc: VIDEO,
    });
    side.handle_read(tagged(
        t0,
        Packet::Rtcp(vec![Box::new(ReceiverReport::default()), pli]),
    ))
    .expect("read");
    let read = side.poll_read().expect("passed on");
    assert!(read.message.has(&Attribute::DeliverToApplication));
    let Packet::Rtcp(left) = &read.message.packet else {
        panic!("RTCP expected");
    };
    assert_eq!(left.len(), 1);
    assert!(left[0].as_any().is::<PictureLossIndication>());
}
