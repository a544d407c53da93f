//! The floor is enforced by the SFU, with real WebRTC peers (webrtc-rs clients over
//! DTLS-SRTP on loopback): a site publishing VP8 + Opus reaches all 63 other sites while it
//! holds the floor; once the floor is revoked, none of its microphone's packets reaches
//! anyone after 100 ms; a deputy without the floor is never forwarded at all.

#[path = "../benches/common/mod.rs"]
mod common;

use bytes::{BufMut, Bytes, BytesMut};
use common::{publish_to, subscribe_from};
use dienhong_sfu::driver::{Driver, OPUS_PT, VP8_PT};
use dienhong_sfu::routing::{Kind, Media, ParticipantId};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use std::sync::Arc;
use std::time::{Duration, Instant};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::runtime::Runtime;

const SITE_AUDIO: u8 = 0xA1;
const SITE_VIDEO: u8 = 0xB1;
const DEPUTY_AUDIO: u8 = 0xA2;

fn p(s: &str) -> ParticipantId {
    ParticipantId(s.to_owned())
}

fn packet(pt: u8, ssrc: u32, seq: u16, marker: u8, size: usize) -> rtc::rtp::Packet {
    let mut b = BytesMut::with_capacity(size);
    b.put_u8(marker);
    b.put_bytes(0, size - 1);
    rtc::rtp::Packet {
        header: rtc::rtp::header::Header {
            version: 2,
            payload_type: pt,
            sequence_number: seq,
            timestamp: u32::from(seq) * 960,
            ssrc,
            ..Default::default()
        },
        payload: Bytes::from(b),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_floor_decides_whose_microphone_is_heard() {
    let sfu = Driver::start("127.0.0.1:0".parse().expect("addr")).expect("driver");
    let rt: Arc<dyn Runtime> = webrtc::runtime::default_runtime().expect("runtime");

    // A delegation site publishes camera and microphone; a remote deputy a microphone.
    let (site, site_tracks) = publish_to(
        &sfu,
        &rt,
        "S01",
        Kind::Site,
        &[(RtpCodecKind::Audio, 11), (RtpCodecKind::Video, 12)],
    )
    .await;
    let (site_audio, site_video) = (site_tracks[0].clone(), site_tracks[1].clone());
    let (deputy, deputy_tracks) = publish_to(
        &sfu,
        &rt,
        "DEP",
        Kind::RemoteDeputy,
        &[(RtpCodecKind::Audio, 21)],
    )
    .await;
    let deputy_audio = deputy_tracks[0].clone();

    // 63 other sites subscribe.
    let mut logs: Vec<common::Arrivals> = Vec::new();
    let mut subscribers = Vec::new();
    for n in 2..=64 {
        let mut sub = subscribe_from(&sfu, &rt, &format!("S{n:02}"), Kind::Site).await;
        let log = common::log_arrivals(&mut sub);
        logs.push(log);
        subscribers.push(sub);
    }
    for sub in subscribers.iter_mut() {
        tokio::time::timeout(Duration::from_secs(20), sub.connected.recv())
            .await
            .expect("subscriber connects");
    }

    // The site has the floor; both publishers talk, 50 packets/s each.
    sfu.set_floor(Some(p("S01"))).await.expect("floor");
    let send = |from: Instant, until: Duration| {
        let (sa, sv, da) = (site_audio.clone(), site_video.clone(), deputy_audio.clone());
        async move {
            let mut seq = 0u16;
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            while from.elapsed() < until {
                tick.tick().await;
                seq = seq.wrapping_add(1);
                let _ = sa
                    .write_rtp(packet(OPUS_PT, 11, seq, SITE_AUDIO, 120))
                    .await;
                let _ = sv
                    .write_rtp(packet(VP8_PT, 12, seq, SITE_VIDEO, 1000))
                    .await;
                let _ = da
                    .write_rtp(packet(OPUS_PT, 21, seq, DEPUTY_AUDIO, 120))
                    .await;
            }
        }
    };
    let start = Instant::now();
    let talking = tokio::spawn(send(start, Duration::from_millis(3000)));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    sfu.set_floor(None).await.expect("revoke");
    let revoked = Instant::now();
    talking.await.expect("publisher");
    tokio::time::sleep(Duration::from_millis(300)).await;

    for (n, log) in logs.iter().enumerate() {
        let log = log.lock().expect("log");
        let site = format!("S{:02}", n + 2);
        let heard = log
            .iter()
            .filter(|(m, _, t)| *m == SITE_AUDIO && *t < revoked)
            .count();
        let seen = log
            .iter()
            .filter(|(m, _, t)| *m == SITE_VIDEO && *t < revoked)
            .count();
        assert!(heard > 10, "{site} heard the speaker {heard} times");
        assert!(seen > 10, "{site} saw the speaker {seen} times");
        let late: Vec<Duration> = log
            .iter()
            .filter(|(m, _, t)| *m == SITE_AUDIO && *t > revoked)
            .map(|(_, _, t)| *t - revoked)
            .collect();
        assert!(
            late.iter().all(|d| *d <= Duration::from_millis(100)),
            "{site} still heard the revoked microphone after {late:?}"
        );
        assert!(
            !log.iter().any(|(m, _, _)| *m == DEPUTY_AUDIO),
            "{site} heard a deputy who never had the floor"
        );
    }
    let stats = sfu.stats().await.expect("stats");
    let deputy_track = stats.tracks[&p("DEP")][0];
    assert_eq!(deputy_track.1, Media::Audio);
    assert!(
        stats.received.get(&deputy_track.0).copied().unwrap_or(0) > 50,
        "the deputy did send"
    );
    assert_eq!(
        stats.forwarded.get(&deputy_track.0).copied().unwrap_or(0),
        0,
        "and nothing was forwarded"
    );
    for sub in subscribers {
        let _ = sub.pc.close().await;
    }
    let _ = site.pc.close().await;
    let _ = deputy.pc.close().await;
}
