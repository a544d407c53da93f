//! The SFU's own bandwidth estimate for a subscriber, from the subscriber's transport-wide
//! feedback (TWCC), through the subscriber leg's real interceptor chain on a virtual clock:
//! packets leave the chain stamped with transport-wide sequence numbers, cross a "network"
//! that can lose them, reach a TWCC receiver (what a browser runs), and its feedback comes
//! back into the chain. Loss lowers the estimate; a clean path raises it again. And with real
//! peers through the driver: a subscriber that reports transport-wide feedback gets an
//! estimate, one that reports nothing gets none.

#[path = "../benches/common/mod.rs"]
mod common;

use bytes::Bytes;
use common::{publish, subscribe_as, subscribe_from, twcc_peer};
use dienhong_sfu::driver::Driver;
use dienhong_sfu::feedback::{INITIAL_ESTIMATE, SenderEstimate, subscriber_chain};
use dienhong_sfu::routing::{Kind, ParticipantId};
use rtc::interceptor::{
    AttributedPacket, Interceptor, Packet, RTPHeaderExtension, Registry, Slot, StreamInfo,
    TaggedPacket, TwccReceiverBuilder,
};
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::sansio::Protocol;
use rtc::shared::{TransportContext, TransportMessage};
use std::sync::Arc;
use std::time::{Duration, Instant};
use webrtc::runtime::Runtime;

const SSRC: u32 = 0x5EED;
const TWCC_ID: u8 = 3;

fn stream() -> StreamInfo {
    StreamInfo {
        ssrc: SSRC,
        payload_type: 96,
        mime_type: "video/VP8".into(),
        clock_rate: 90_000,
        rtp_header_extensions: vec![RTPHeaderExtension {
            uri: rtc::sdp::extmap::TRANSPORT_CC_URI.into(),
            id: u16::from(TWCC_ID),
        }],
        ..Default::default()
    }
}

fn tagged(now: Instant, packet: Packet) -> TaggedPacket {
    TransportMessage {
        now,
        transport: TransportContext::default(),
        message: AttributedPacket::new(packet),
    }
}

/// The subscriber leg's chain and a receiver, joined by a path that drops every packet for
/// which `lose` says so; 2.5 Mbit/s of 1,200-byte packets for `seconds`. Returns the lowest
/// and the last estimate seen.
struct Path {
    sender: Box<dyn Interceptor>,
    receiver: Box<dyn Interceptor>,
    estimate: SenderEstimate,
    now: Instant,
    seq: u16,
    sent: u64,
}

impl Path {
    fn new() -> Path {
        let mut media = MediaEngine::default();
        let (registry, estimate) = subscriber_chain(&mut media).expect("chain");
        let mut sender: Box<dyn Interceptor> = Box::new(registry.build());
        sender.bind_local_stream(&stream());
        let mut receiver: Box<dyn Interceptor> = Box::new(
            Registry::new()
                .with(Slot::TwccReceiver, TwccReceiverBuilder::new().build())
                .build(),
        );
        receiver.bind_remote_stream(&stream());
        Path {
            sender,
            receiver,
            estimate,
            now: Instant::now(),
            seq: 0,
            sent: 0,
        }
    }

    fn run(&mut self, seconds: u64, lose: impl Fn(u64) -> bool) -> (Option<u64>, Option<u64>) {
        let step = Duration::from_micros(3_840); // 260 packets/s of 1,200 bytes
        let end = self.now + Duration::from_secs(seconds);
        let (mut lowest, mut last) = (None::<u64>, None::<u64>);
        while self.now < end {
            self.now += step;
            let now = self.now;
            self.seq = self.seq.wrapping_add(1);
            let mut pkt = rtc::rtp::Packet::default();
            pkt.header.version = 2;
            pkt.header.ssrc = SSRC;
            pkt.header.payload_type = 96;
            pkt.header.sequence_number = self.seq;
            pkt.payload = Bytes::from(vec![0u8; 1_200]);
            self.sender
                .handle_write(tagged(now, Packet::Rtp(pkt)))
                .expect("write");
            while let Some(out) = self.sender.poll_write() {
                if let Packet::Rtp(_) = &out.message.packet {
                    self.sent += 1;
                    if lose(self.sent) {
                        continue;
                    }
                    // 10 ms of one-way delay, steady.
                    let mut arrived = out;
                    arrived.now = now + Duration::from_millis(10);
                    self.receiver.handle_read(arrived).expect("read");
                    while self.receiver.poll_read().is_some() {}
                }
            }
            self.receiver.handle_timeout(now).expect("timeout");
            self.sender.handle_timeout(now).expect("timeout");
            while let Some(feedback) = self.receiver.poll_write() {
                let mut back = feedback;
                back.now = now + Duration::from_millis(10);
                self.sender.handle_read(back).expect("feedback");
                while self.sender.poll_read().is_some() {}
            }
            if let Some(bps) = self.estimate.take() {
                lowest = Some(lowest.map_or(bps, |l: u64| l.min(bps)));
                last = Some(bps);
            }
        }
        (lowest, last)
    }
}

#[test]
fn loss_on_the_way_to_a_subscriber_lowers_the_estimate_and_a_clean_path_raises_it_again() {
    let mut path = Path::new();
    let initial = INITIAL_ESTIMATE as u64;

    // A clean path: the estimate never falls.
    let (lowest, _) = path.run(5, |_| false);
    if let Some(lowest) = lowest {
        assert!(lowest >= initial, "fell to {lowest} on a clean path");
    }

    // 30 % loss: down, well below what the best layer (1.5 Mbit/s) needs.
    let (lowest, last) = path.run(5, |n| n % 10 < 3);
    let (lowest, last) = (lowest.expect("an estimate under loss"), last.expect("last"));
    assert!(
        lowest < 1_000_000,
        "30 % loss left the estimate at {lowest}"
    );
    assert!(
        last <= lowest * 2,
        "still low at the end of the loss: {last}"
    );

    // Clean again: it climbs back above what the best layer needs, with headroom.
    let (_, last) = path.run(20, |_| false);
    let last = last.expect("an estimate after the loss");
    assert!(
        last > 2_500_000,
        "a clean path did not raise the estimate again: {last}"
    );
}

#[test]
fn the_chain_stamps_a_transport_wide_sequence_number_on_every_packet() {
    let mut path = Path::new();
    let mut stamped = Vec::new();
    for n in 0..5u16 {
        let mut pkt = rtc::rtp::Packet::default();
        pkt.header.version = 2;
        pkt.header.ssrc = SSRC;
        pkt.header.sequence_number = 100 + n;
        pkt.payload = Bytes::from_static(&[0u8; 100]);
        path.sender
            .handle_write(tagged(path.now, Packet::Rtp(pkt)))
            .expect("write");
        while let Some(out) = path.sender.poll_write() {
            if let Packet::Rtp(p) = &out.message.packet {
                stamped.push(p.header.get_extension(TWCC_ID).map(|e| e.to_vec()));
            }
        }
    }
    assert_eq!(stamped.len(), 5);
    let numbers: Vec<u16> = stamped
        .iter()
        .map(|e| {
            let e = e.as_ref().expect("transport-wide sequence number");
            u16::from_be_bytes([e[0], e[1]])
        })
        .collect();
    for w in numbers.windows(2) {
        assert_eq!(w[1], w[0].wrapping_add(1), "{numbers:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_reporting_transport_wide_feedback_gets_an_estimate_from_the_sfu() {
    let sfu = Driver::start("127.0.0.1:0".parse().expect("addr")).expect("driver");
    let rt: Arc<dyn Runtime> = webrtc::runtime::default_runtime().expect("runtime");
    let (_publisher, tracks) = common::speaking_site(&sfu, &rt).await;
    let mut reporting = subscribe_as(&sfu, twcc_peer(rt.clone()).await, "D1", Kind::Display).await;
    let mut silent = subscribe_from(&sfu, &rt, "D2", Kind::Display).await;
    for sub in [&mut reporting, &mut silent] {
        tokio::time::timeout(Duration::from_secs(10), sub.connected.recv())
            .await
            .expect("connected");
    }
    // Log what arrives (the receivers keep reading, and reporting).
    let logs = [
        common::log_packets(&mut reporting),
        common::log_packets(&mut silent),
    ];
    publish(&tracks[0], 1111, &tracks[1], 2222, 3, Instant::now()).await;

    tokio::time::sleep(Duration::from_millis(300)).await;
    // Both received the stream: the sequence number added for the reporting one is carried
    // intact through SRTP.
    for (who, log) in ["D1", "D2"].iter().zip(&logs) {
        let n = log.lock().expect("log").len();
        assert!(n > 500, "{who} received {n} packets in 3 s");
    }
    let stats = sfu.stats().await.expect("stats");
    let estimate = stats
        .estimates
        .get(&ParticipantId("D1".into()))
        .copied()
        .unwrap_or_else(|| panic!("no estimate for the reporting subscriber: {stats:?}"));
    // A clean loopback path: the estimate starts high and is not lowered.
    assert!(
        estimate >= INITIAL_ESTIMATE as u64,
        "a clean path lowered the estimate to {estimate}"
    );
    assert_eq!(
        stats.estimates.get(&ParticipantId("D2".into())),
        None,
        "a subscriber that reports nothing has no estimate"
    );
    assert!(
        stats.forwarded.values().sum::<u64>() > 0,
        "nothing was forwarded: {stats:?}"
    );
}
