//! Retransmission to subscribers: what a subscriber asks for again (NACK) is resent from the
//! SFU's send buffer, on a retransmission stream of its own (RTX, RFC 4588) when the
//! subscriber negotiated one. Real peers: a webrtc-rs publisher and a webrtc-rs subscriber
//! that negotiates NACK and RTX, as browsers do.

#[path = "../benches/common/mod.rs"]
mod common;

use common::{build_peer, publish, publish_to, subscribe_as};
use dienhong_sfu::driver::{Driver, VP8_PT, VP8_RTX_PT, subscribing_media_engine};
use dienhong_sfu::routing::{Kind, ParticipantId};
use rtc::peer_connection::configuration::interceptor_registry::configure_nack;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{NackPair, TransportLayerNack};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::runtime::Runtime;

/// (ssrc, payload type, sequence number) of every RTP packet the subscriber's track gave.
type Log = Arc<Mutex<Vec<(u32, u8, u16)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_packet_a_subscriber_asks_for_again_is_resent_on_its_retransmission_stream() {
    let sfu = Driver::start("127.0.0.1:0".parse().expect("addr")).expect("driver");
    let rt: Arc<dyn Runtime> = webrtc::runtime::default_runtime().expect("runtime");
    let (_publisher, tracks) = publish_to(
        &sfu,
        &rt,
        "S01",
        Kind::Site,
        &[(RtpCodecKind::Video, 1111), (RtpCodecKind::Audio, 2222)],
    )
    .await;
    sfu.set_floor(Some(ParticipantId("S01".into())))
        .await
        .expect("floor");

    // The subscriber: VP8 with RTX, and NACK.
    let mut media = subscribing_media_engine().expect("media");
    let registry = configure_nack(rtc::interceptor::Registry::new(), &mut media);
    let peer = build_peer(rt.clone(), media, Some(registry)).await;
    let mut sub = subscribe_as(&sfu, peer, "D1", Kind::Display).await;
    let offer = sub.pc.remote_description().await.expect("the SFU's offer");
    assert!(
        offer
            .sdp
            .contains(&format!("a=rtpmap:{VP8_RTX_PT} rtx/90000"))
            && offer.sdp.contains(&format!("apt={VP8_PT}"))
            && offer.sdp.contains("a=ssrc-group:FID"),
        "the SFU offers RTX for pictures:\n{}",
        offer.sdp
    );
    tokio::time::timeout(Duration::from_secs(10), sub.connected.recv())
        .await
        .expect("connected");

    let log: Log = Arc::default();
    let video: Arc<Mutex<Option<Arc<dyn TrackRemote>>>> = Arc::default();
    let mut remote = std::mem::replace(&mut sub.tracks, tokio::sync::mpsc::unbounded_channel().1);
    let (l, v) = (log.clone(), video.clone());
    tokio::spawn(async move {
        while let Some(track) = remote.recv().await {
            let (l, v) = (l.clone(), v.clone());
            tokio::spawn(async move {
                while let Some(event) = track.poll().await {
                    if let TrackRemoteEvent::OnRtpPacket(pkt) = event {
                        if pkt.header.payload_type == VP8_PT {
                            *v.lock().expect("video") = Some(track.clone());
                        }
                        l.lock().expect("log").push((
                            pkt.header.ssrc,
                            pkt.header.payload_type,
                            pkt.header.sequence_number,
                        ));
                    }
                }
            });
        }
    });
    let sending = {
        let (v, a) = (tracks[0].clone(), tracks[1].clone());
        tokio::spawn(async move { publish(&v, 1111, &a, 2222, 3, Instant::now()).await })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Ask again for a picture packet that arrived a moment ago.
    let (media_ssrc, asked) = {
        let log = log.lock().expect("log");
        let video: Vec<&(u32, u8, u16)> = log.iter().filter(|(_, pt, _)| *pt == VP8_PT).collect();
        assert!(video.len() > 50, "pictures arrive: {}", video.len());
        let (ssrc, _, seq) = video[video.len() - 20];
        (*ssrc, *seq)
    };
    let before = log.lock().expect("log").len();
    let track = video
        .lock()
        .expect("video")
        .clone()
        .expect("the picture track");
    track
        .write_rtcp(vec![Box::new(TransportLayerNack {
            sender_ssrc: 0,
            media_ssrc,
            nacks: vec![NackPair {
                packet_id: asked,
                lost_packets: 0,
            }],
        })])
        .await
        .expect("NACK sent");
    tokio::time::sleep(Duration::from_millis(500)).await;
    sending.abort();

    // The subscriber's receiver took it as a retransmission (it came on the RTX stream and
    // was restored to the media stream's numbering), not as media.
    let stats = sub
        .pc
        .get_stats(Instant::now(), rtc::statistics::StatsSelector::None)
        .await;
    let retransmitted: u64 = stats
        .inbound_rtp_streams()
        .map(|s| s.retransmitted_packets_received)
        .sum();
    let log = log.lock().expect("log");
    let again = log[before..]
        .iter()
        .filter(|(ssrc, pt, seq)| *ssrc == media_ssrc && *pt == VP8_PT && *seq == asked)
        .count();
    assert!(again >= 1, "packet {asked} was not resent");
    assert!(
        retransmitted >= 1,
        "packet {asked} came again, but not on the retransmission stream"
    );
}
