//! A publisher that comes back (a site's room app reloaded, a network change) gets its old
//! m-lines on every subscriber's connection: no new offer, no growing SDP, the same stream
//! and SSRCs, the numbering continued. Without that, a chair console open all day would
//! stop receiving new tracks once its connection reached its m-line limit. And a
//! subscriber's streams are named by their publisher, audio and video in one stream.

#[path = "../benches/common/mod.rs"]
mod common;

use common::{log_packets, publish_to, subscribe_from};
use dienhong_sfu::driver::{Driver, LegEvent, OPUS_PT, VP8_PT};
use dienhong_sfu::routing::{Kind, ParticipantId};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use std::sync::Arc;
use std::time::Duration;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::runtime::Runtime;

fn packet(pt: u8, ssrc: u32, seq: u16) -> rtc::rtp::Packet {
    rtc::rtp::Packet {
        header: rtc::rtp::header::Header {
            version: 2,
            payload_type: pt,
            sequence_number: seq,
            timestamp: u32::from(seq) * 960,
            ssrc,
            ..Default::default()
        },
        // A VP8 keyframe's first packet (or Opus bytes).
        payload: bytes::Bytes::from_static(&[0x10, 0x00, 0x9d, 0x01, 0x2a, 0, 0, 0, 0]),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_that_comes_back_takes_its_old_m_lines() {
    let sfu = Driver::start("127.0.0.1:0".parse().expect("addr")).expect("driver");
    let rt: Arc<dyn Runtime> = webrtc::runtime::default_runtime().expect("runtime");
    let site = ParticipantId("S01".into());
    sfu.set_floor(Some(site.clone())).await.expect("floor");
    let tracks = [(RtpCodecKind::Audio, 11), (RtpCodecKind::Video, 12)];
    let (mut publisher, mut locals) = publish_to(&sfu, &rt, "S01", Kind::Site, &tracks).await;

    let mut sub = subscribe_from(&sfu, &rt, "D1", Kind::Display).await;
    tokio::time::timeout(Duration::from_secs(10), sub.connected.recv())
        .await
        .expect("connected");
    let offer = sub.pc.remote_description().await.expect("offer").sdp;
    assert_eq!(offer.matches("\r\nm=").count(), 2, "{offer}");
    assert_eq!(
        offer.matches("a=msid:S01 ").count(),
        2,
        "both tracks in the publisher's stream:\n{offer}"
    );
    let log = log_packets(&mut sub);
    let mut offers = sfu.events();

    for round in 0..4u16 {
        // The publisher talks and shows: 30 packets of each, its own numbering each time.
        let before = log.lock().expect("log").len();
        for n in 0..30u16 {
            let seq = 1000 * (round + 1) + n;
            for (local, (kind, ssrc)) in locals.iter().zip(tracks) {
                let pt = if kind == RtpCodecKind::Audio {
                    OPUS_PT
                } else {
                    VP8_PT
                };
                local.write_rtp(packet(pt, ssrc, seq)).await.expect("write");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let got = log.lock().expect("log").len() - before;
        assert!(
            got >= 50,
            "round {round}: the subscriber received {got} of 60"
        );

        // It goes away and comes back with new tracks.
        let _ = publisher.pc.close().await;
        sfu.leave(site.clone()).await.expect("leave");
        (publisher, locals) = publish_to(&sfu, &rt, "S01", Kind::Site, &tracks).await;
        sfu.set_floor(Some(site.clone())).await.expect("floor");
    }

    // No new offer was needed at any return.
    tokio::time::sleep(Duration::from_millis(200)).await;
    while let Ok(event) = offers.try_recv() {
        assert!(
            !matches!(event, LegEvent::Offer(_)),
            "a returning publisher made the SFU offer again"
        );
    }
    // One stream per m-line throughout, each numbered without a step back.
    let log = log.lock().expect("log");
    let ssrcs: std::collections::BTreeSet<u32> = log.iter().map(|a| a.ssrc).collect();
    assert_eq!(ssrcs.len(), 2, "the same two SSRCs: {ssrcs:?}");
    for ssrc in ssrcs {
        let seqs: Vec<u16> = log
            .iter()
            .filter(|a| a.ssrc == ssrc)
            .map(|a| a.seq)
            .collect();
        assert!(
            seqs.windows(2)
                .all(|w| (1..=100).contains(&w[1].wrapping_sub(w[0]))),
            "numbering of {ssrc} continues across returns: {seqs:?}"
        );
        assert!(seqs.len() >= 4 * 25, "{ssrc}: {} packets", seqs.len());
    }
}
