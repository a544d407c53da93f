//! Retransmission, both ways. What a subscriber asks for again (NACK) is resent from the
//! SFU's send buffer on a retransmission stream of its own (RTX, RFC 4588); a packet lost
//! on its way from a publisher is asked for by the SFU, comes back on the publisher's RTX
//! stream and is forwarded as the packet it repairs. Real peers: webrtc-rs publishers and
//! subscribers that negotiate NACK and RTX, as browsers do, and a relay that loses a packet.

#[path = "../benches/common/mod.rs"]
mod common;

use common::{build_peer, publish, subscribe_as};
use dienhong_sfu::driver::{Driver, VP8_PT, VP8_RTX_PT, subscribing_media_engine};
use dienhong_sfu::routing::{Kind, ParticipantId};
use rtc::peer_connection::configuration::interceptor_registry::configure_nack;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{NackPair, TransportLayerNack};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::runtime::Runtime;

/// (ssrc, payload type, sequence number) of every RTP packet the subscriber's track gave.
type Log = Arc<Mutex<Vec<(u32, u8, u16)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_packet_a_subscriber_asks_for_again_is_resent_on_its_retransmission_stream() {
    let sfu = Driver::start("127.0.0.1:0".parse().expect("addr")).expect("driver");
    let rt: Arc<dyn Runtime> = webrtc::runtime::default_runtime().expect("runtime");
    let (_publisher, tracks) = common::speaking_site(&sfu, &rt).await;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_picture_packet_lost_on_the_way_from_a_publisher_is_asked_for_and_forwarded() {
    use std::sync::atomic::Ordering;
    let sfu = Driver::start("127.0.0.1:0".parse().expect("addr")).expect("driver");
    let rt: Arc<dyn Runtime> = webrtc::runtime::default_runtime().expect("runtime");
    let path = common::relay(sfu.priority_addr(), Some(150)).await;

    // The publisher: RTX and NACK (as browsers), reaching the SFU only through the relay.
    let mut media = dienhong_sfu::driver::publishing_media_engine().expect("media");
    let registry = configure_nack(rtc::interceptor::Registry::new(), &mut media);
    let mut publisher = build_peer(rt.clone(), media, Some(registry)).await;
    let camera = Arc::new(TrackLocalStaticRTP::new(common::track(
        RtpCodecKind::Video,
        1111,
        "S01",
    )));
    let microphone = Arc::new(TrackLocalStaticRTP::new(common::track(
        RtpCodecKind::Audio,
        2222,
        "S01",
    )));
    for t in [camera.clone(), microphone.clone()] {
        publisher.pc.add_track(t).await.expect("add track");
    }
    let offer = publisher.pc.create_offer(None).await.expect("offer");
    publisher
        .pc
        .set_local_description(offer)
        .await
        .expect("local");
    let _ = tokio::time::timeout(Duration::from_secs(5), publisher.gathered.recv()).await;
    let offer = publisher.pc.local_description().await.expect("sdp");
    let (_, mut answer) = sfu
        .publish(ParticipantId("S01".into()), Kind::Site, false, offer)
        .await
        .expect("publish");
    assert!(
        answer
            .sdp
            .contains(&format!("a=rtpmap:{VP8_RTX_PT} rtx/90000")),
        "the SFU accepts the publisher's RTX:\n{}",
        answer.sdp
    );
    // The SFU's candidate becomes the relay's.
    answer.sdp = answer.sdp.replace(
        &format!(" {} typ host", sfu.priority_addr().port()),
        &format!(" {} typ host", path.addr.port()),
    );
    publisher
        .pc
        .set_remote_description(answer)
        .await
        .expect("remote");
    tokio::time::timeout(Duration::from_secs(10), publisher.connected.recv())
        .await
        .expect("publisher connects through the relay");

    // A subscriber, before the publisher sends anything.
    sfu.set_floor(Some(ParticipantId("S01".into())))
        .await
        .expect("floor");
    let mut sub = common::subscribe_from(&sfu, &rt, "D1", Kind::Display).await;
    tokio::time::timeout(Duration::from_secs(10), sub.connected.recv())
        .await
        .expect("subscriber connected");
    let log = common::log_packets(&mut sub);

    publish(&camera, 1111, &microphone, 2222, 3, Instant::now()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let lost = path
        .lost
        .lock()
        .expect("lost")
        .expect("the relay lost a picture packet");
    assert!(
        path.rtx.load(Ordering::Relaxed) >= 1,
        "the publisher resent nothing on its RTX stream: the SFU did not ask"
    );
    let log = log.lock().expect("log");
    let pictures: Vec<u16> = log
        .iter()
        .filter(|a| a.payload_type == VP8_PT)
        .map(|a| a.seq)
        .collect();
    assert!(pictures.len() > 300, "pictures arrive: {}", pictures.len());
    assert!(
        pictures.contains(&lost),
        "packet {lost} lost on the way in never reached the subscriber"
    );
}
