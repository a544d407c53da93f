//! Simulcast through the driver with real WebRTC peers: a publisher sends three layers
//! (rids q/h/f, told apart by the mid/rid header extensions), a display receives one of
//! them, and the bandwidth estimates it reports (REMB) switch its layer up and down at
//! keyframes, with the numbering it sees continuous throughout. A display that reports only
//! REMB, held low by it, is tried one layer up and kept there when its estimate follows.

#[path = "../benches/common/mod.rs"]
mod common;

use bytes::{BufMut, Bytes, BytesMut};
use common::{peer, subscribe_as, twcc_peer};
use dienhong_sfu::driver::{Driver, VP8_PT, codec};
use dienhong_sfu::routing::{Kind, ParticipantId, Tuning};
use rtc::media_stream::MediaStreamTrack;
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::runtime::Runtime;

const LAYERS: [(&str, u32); 3] = [("q", 501), ("h", 502), ("f", 503)];

/// The id an SDP gives a header extension.
fn extmap_id(sdp: &str, uri: &str) -> u8 {
    sdp.lines()
        .find_map(|l| {
            let rest = l.trim().strip_prefix("a=extmap:")?;
            let (id, u) = rest.split_once(' ')?;
            (u.trim() == uri).then(|| id.split('/').next()?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("{uri} not negotiated:\n{sdp}"))
}

/// The display's picture track and the SSRC it arrives with, once it does.
type Received = Arc<Mutex<Option<(Arc<dyn TrackRemote>, u32)>>>;

/// (layer marker, sequence number, VP8 PictureID, arrival) of every packet the display
/// received.
type Log = Arc<Mutex<Vec<(u8, u16, u16, Instant)>>>;

fn markers_between(log: &Log, from: Instant, to: Instant) -> Vec<u8> {
    log.lock()
        .expect("log")
        .iter()
        .filter(|(_, _, _, at)| *at > from && *at <= to)
        .map(|(m, _, _, _)| *m)
        .collect()
}

/// A simulcast publisher (three layers, 30 frames/s each, a keyframe every tenth frame)
/// and a display receiving it through a driver with this tuning.
struct Setup {
    sfu: Driver,
    log: Log,
    received: Received,
    sender: tokio::task::JoinHandle<()>,
    _peers: (common::Peer, common::Peer),
}

/// The display's estimate, as a browser reports it (REMB).
async fn remb(received: &Received, bps: f32) {
    let (track, ssrc) = received.lock().expect("track").clone().expect("a track");
    track
        .write_rtcp(vec![Box::new(ReceiverEstimatedMaximumBitrate {
            sender_ssrc: 0,
            bitrate: bps,
            ssrcs: vec![ssrc],
        })])
        .await
        .expect("REMB sent");
}

async fn simulcast(tuning: Tuning, twcc: bool) -> Setup {
    let sfu =
        Driver::start_tuned("127.0.0.1:0".parse().expect("addr"), None, tuning).expect("driver");
    let rt: Arc<dyn Runtime> = webrtc::runtime::default_runtime().expect("runtime");

    // The publisher: one camera in three encodings.
    let mut publisher = peer(rt.clone()).await;
    let encodings = LAYERS
        .iter()
        .map(|(rid, ssrc)| RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                rid: (*rid).to_owned(),
                ssrc: Some(*ssrc),
                ..Default::default()
            },
            codec: codec(RtpCodecKind::Video).rtp_codec,
            ..Default::default()
        })
        .collect();
    let camera = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        "site-stream".into(),
        "site-camera".into(),
        "site-camera".into(),
        RtpCodecKind::Video,
        encodings,
    )));
    publisher
        .pc
        .add_track(camera.clone())
        .await
        .expect("add track");
    let offer = publisher.pc.create_offer(None).await.expect("offer");
    publisher
        .pc
        .set_local_description(offer)
        .await
        .expect("local");
    let _ = tokio::time::timeout(Duration::from_secs(5), publisher.gathered.recv()).await;
    let offer = publisher.pc.local_description().await.expect("sdp");
    assert!(offer.sdp.contains("a=simulcast:send"), "{}", offer.sdp);
    let (_, answer) = sfu
        .publish(ParticipantId("S01".into()), Kind::Chamber, false, offer)
        .await
        .expect("publish");
    let mid_id = extmap_id(&answer.sdp, "urn:ietf:params:rtp-hdrext:sdes:mid");
    let rid_id = extmap_id(&answer.sdp, "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id");
    let mid: String = answer
        .sdp
        .lines()
        .find_map(|l| l.trim().strip_prefix("a=mid:").map(str::to_owned))
        .expect("mid");
    publisher
        .pc
        .set_remote_description(answer)
        .await
        .expect("remote");
    tokio::time::timeout(Duration::from_secs(10), publisher.connected.recv())
        .await
        .expect("publisher connects");

    // The display subscribes.
    // A display that also reports transport-wide feedback, as browsers do: the SFU's own
    // estimate (high on this clean path) and the display's REMB both count, the lower wins.
    let display_peer = if twcc {
        twcc_peer(rt.clone()).await
    } else {
        peer(rt.clone()).await
    };
    let mut display = subscribe_as(&sfu, display_peer, "TV", Kind::Display).await;
    tokio::time::timeout(Duration::from_secs(10), display.connected.recv())
        .await
        .expect("display connects");
    let log: Log = Arc::default();
    // The display's picture track and its SSRC, to send REMB about.
    let received: Received = Arc::default();
    let mut tracks = std::mem::replace(
        &mut display.tracks,
        tokio::sync::mpsc::unbounded_channel().1,
    );
    let (l, r) = (log.clone(), received.clone());
    tokio::spawn(async move {
        while let Some(track) = tracks.recv().await {
            let (l, r) = (l.clone(), r.clone());
            tokio::spawn(async move {
                while let Some(evt) = track.poll().await {
                    if let TrackRemoteEvent::OnRtpPacket(pkt) = evt
                        && let Some(m) = pkt.payload.get(5)
                    {
                        let picture = u16::from_be_bytes([pkt.payload[2], pkt.payload[3]]);
                        l.lock().expect("log").push((
                            *m,
                            pkt.header.sequence_number,
                            picture & 0x7fff,
                            Instant::now(),
                        ));
                        *r.lock().expect("track") = Some((track.clone(), pkt.header.ssrc));
                    }
                }
            });
        }
    });
    // Every layer sends 30 frames/s, a keyframe every tenth.
    let sender = {
        let camera = camera.clone();
        let mid = mid.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(33));
            for n in 0u32..400 {
                tick.tick().await;
                for (k, (rid, ssrc)) in LAYERS.iter().enumerate() {
                    let mut b = BytesMut::with_capacity(200);
                    b.put_u8(0x90); // X=1, S=1, partition 0
                    b.put_u8(0x80); // I: a PictureID follows
                    // 15 bits, each layer numbering its own pictures.
                    b.put_u16(0x8000 | ((n as u16).wrapping_add(5000 * k as u16) & 0x7fff));
                    b.put_u8(if n % 10 == 0 { 0x00 } else { 0x01 }); // keyframe or not
                    b.put_u8(rid.as_bytes()[0]);
                    b.put_bytes(0, 194);
                    let mut header = rtc::rtp::header::Header {
                        version: 2,
                        payload_type: VP8_PT,
                        // Each layer has its own numbering and clock.
                        sequence_number: (n as u16).wrapping_add(1000 * k as u16),
                        timestamp: n * 3000 + 77_777 * k as u32,
                        ssrc: *ssrc,
                        ..Default::default()
                    };
                    header
                        .set_extension(mid_id, Bytes::from(mid.clone()))
                        .expect("mid");
                    header
                        .set_extension(rid_id, Bytes::from(rid.to_string()))
                        .expect("rid");
                    let _ = camera
                        .write_rtp(rtc::rtp::Packet {
                            header,
                            payload: b.freeze(),
                        })
                        .await;
                }
            }
        })
    };

    Setup {
        sfu,
        log,
        received,
        sender,
        _peers: (publisher, display),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_displays_bandwidth_reports_switch_the_layer_at_keyframes_without_a_seam() {
    let Setup {
        sfu: _sfu,
        log,
        received,
        sender,
        _peers,
    } = simulcast(Tuning::default(), true).await;
    let remb = |bps: f32| {
        let received = received.clone();
        async move { remb(&received, bps).await }
    };

    // Without an estimate the display gets the best layer.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let t1 = Instant::now();
    let first = markers_between(&log, t1 - Duration::from_millis(800), t1);
    assert!(!first.is_empty(), "the display receives the picture");
    assert!(first.iter().all(|m| *m == b'f'), "starts high: {first:?}");

    // The bandwidth drops: down to the lowest layer, from its next keyframe on.
    remb(400_000.0).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let t2 = Instant::now();
    let low = markers_between(&log, t1 + Duration::from_millis(700), t2);
    assert!(!low.is_empty());
    assert!(low.iter().all(|m| *m == b'q'), "switched down: {low:?}");

    // Plenty of bandwidth again: back to the full layer at its next keyframe.
    remb(5_000_000.0).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let t3 = Instant::now();
    let high = markers_between(&log, t2 + Duration::from_millis(700), t3);
    assert!(!high.is_empty());
    assert!(high.iter().all(|m| *m == b'f'), "switched up: {high:?}");
    sender.abort();

    // One continuous stream for the display: each packet numbered after the one before.
    let seqs: Vec<u16> = log
        .lock()
        .expect("log")
        .iter()
        .map(|(_, s, _, _)| *s)
        .collect();
    let steps = seqs
        .windows(2)
        .filter(|w| w[1] == w[0].wrapping_add(1))
        .count();
    assert!(
        seqs.windows(2)
            .all(|w| (1..100).contains(&w[1].wrapping_sub(w[0]))),
        "no duplicate, no jump back or across layers' numbering: {seqs:?}"
    );
    assert!(
        steps * 100 >= (seqs.len() - 1) * 99,
        "{steps} consecutive of {}",
        seqs.len()
    );
    let markers: Vec<u8> = log
        .lock()
        .expect("log")
        .iter()
        .map(|(m, _, _, _)| *m)
        .collect();
    assert!(markers.contains(&b'f') && markers.contains(&b'q'));
    // And one picture numbering: every picture (one packet each here) numbered after the
    // one before, across both switches, though each layer numbers its own.
    let pictures: Vec<u16> = log
        .lock()
        .expect("log")
        .iter()
        .map(|(_, _, p, _)| *p)
        .collect();
    assert!(
        pictures
            .windows(2)
            .all(|w| w[1] == w[0].wrapping_add(1) & 0x7fff),
        "picture numbers continue across layer switches: {pictures:?}"
    );
    assert!(!markers.contains(&b'h'), "never the middle layer here");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_display_held_low_by_its_own_estimate_is_tried_one_layer_up_and_kept_when_it_follows() {
    // Tries after 1.5 s held low, for 3 s (a sitting uses 10 s and 12 s).
    let tuning = Tuning {
        probe_after: 1_500,
        probe_window: 3_000,
        ..Tuning::default()
    };
    // A display that reports only REMB: its estimate grows only with what it receives.
    let Setup {
        sfu: _sfu,
        log,
        received,
        sender,
        _peers,
    } = simulcast(tuning, false).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    remb(&received, 400_000.0).await;
    let lowered = Instant::now();
    tokio::time::sleep(Duration::from_millis(900)).await;
    let low = markers_between(&log, lowered + Duration::from_millis(400), Instant::now());
    assert!(
        !low.is_empty() && low.iter().all(|m| *m == b'q'),
        "lowered: {low:?}"
    );

    // Held low for 1.5 s: tried at the middle layer, not the top.
    let at = |ms: u64| lowered + Duration::from_millis(ms);
    tokio::time::sleep(at(2_500).saturating_duration_since(Instant::now())).await;
    let tried = markers_between(&log, at(2_000), at(2_500));
    assert!(
        !tried.is_empty() && tried.iter().all(|m| *m == b'h'),
        "tried one layer up: {tried:?}"
    );
    // The display's estimate grows into the layer during the try: kept after it ends
    // (4.5 s after it was lowered), until the next try, at the top (6 s).
    remb(&received, 800_000.0).await;
    tokio::time::sleep(at(5_800).saturating_duration_since(Instant::now())).await;
    let kept = markers_between(&log, at(4_800), at(5_800));
    assert!(
        !kept.is_empty() && kept.iter().all(|m| *m == b'h'),
        "kept at the middle layer: {kept:?}"
    );
    tokio::time::sleep(at(7_300).saturating_duration_since(Instant::now())).await;
    sender.abort();
    let next = markers_between(&log, at(6_700), at(7_300));
    assert!(
        !next.is_empty() && next.iter().all(|m| *m == b'f'),
        "then tried at the top: {next:?}"
    );
}
