//! A receiver with fixed m-lines (a WHEP pull: one audio line) hears the programme: the
//! chamber's hall audio, the speaker's microphone while someone holds the floor, and the
//! hall again after, as one continuous stream.
//! One that offers two audio lines (a TV system that mixes for itself) gets the hall on the
//! first and the speaker on the second, side by side.

#[path = "../benches/common/mod.rs"]
mod common;

use common::{hall_and_site_talk, heard, publish_to};
use dienhong_sfu::driver::Driver;
use dienhong_sfu::routing::{Kind, ParticipantId};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use std::sync::Arc;
use std::time::{Duration, Instant};
use webrtc::runtime::Runtime;

/// A receiver offering `audio_lines` receive-only audio lines, as a TV system's WHEP pull.
async fn pull(sfu: &Driver, rt: &Arc<dyn Runtime>, audio_lines: usize) -> common::Peer {
    common::pull_as(sfu, rt, "TV", audio_lines).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_audio_line_carries_the_hall_then_the_speaker_then_the_hall() {
    let sfu = Driver::start("127.0.0.1:0".parse().expect("addr")).expect("driver");
    let rt: Arc<dyn Runtime> = webrtc::runtime::default_runtime().expect("runtime");
    let (_hall_peer, hall) = publish_to(
        &sfu,
        &rt,
        "HALL",
        Kind::Chamber,
        &[(RtpCodecKind::Audio, 11)],
    )
    .await;
    let (_site_peer, site) =
        publish_to(&sfu, &rt, "S01", Kind::Site, &[(RtpCodecKind::Audio, 31)]).await;

    // The pull offers one receive-only audio line, as a WHEP client does.
    let mut pull = pull(&sfu, &rt, 1).await;
    let log = common::log_arrivals(&mut pull);

    let mut seq = 0u16;
    let t0 = Instant::now();
    hall_and_site_talk(&hall[0], &site[0], &mut seq, Duration::from_millis(800)).await;
    let t1 = Instant::now();
    let before = heard(&log, t0, t1);
    assert!(!before.is_empty(), "the pull hears the programme");
    assert!(before.iter().all(|m| *m == b'H'), "the hall: {before:?}");

    sfu.set_floor(Some(ParticipantId("S01".into())))
        .await
        .expect("floor");
    hall_and_site_talk(&hall[0], &site[0], &mut seq, Duration::from_millis(800)).await;
    let t2 = Instant::now();
    let during = heard(&log, t1 + Duration::from_millis(150), t2);
    assert!(!during.is_empty());
    assert!(during.iter().all(|m| *m == b'S'), "the speaker: {during:?}");

    sfu.set_floor(None).await.expect("floor");
    hall_and_site_talk(&hall[0], &site[0], &mut seq, Duration::from_millis(800)).await;
    let t3 = Instant::now();
    let after = heard(&log, t2 + Duration::from_millis(150), t3);
    assert!(!after.is_empty());
    assert!(
        after.iter().all(|m| *m == b'H'),
        "the hall again: {after:?}"
    );

    // One stream for the pull: no duplicate, no jump between the microphones' numbering.
    let seqs: Vec<u16> = log
        .lock()
        .expect("log")
        .iter()
        .map(|(_, s, _)| *s)
        .collect();
    assert!(
        seqs.windows(2)
            .all(|w| (1..20).contains(&w[1].wrapping_sub(w[0]))),
        "{seqs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_audio_lines_carry_the_hall_and_the_speaker_side_by_side() {
    let sfu = Driver::start("127.0.0.1:0".parse().expect("addr")).expect("driver");
    let rt: Arc<dyn Runtime> = webrtc::runtime::default_runtime().expect("runtime");
    let (_hall_peer, hall) = publish_to(
        &sfu,
        &rt,
        "HALL",
        Kind::Chamber,
        &[(RtpCodecKind::Audio, 11)],
    )
    .await;
    let (_site_peer, site) =
        publish_to(&sfu, &rt, "S01", Kind::Site, &[(RtpCodecKind::Audio, 31)]).await;

    // A TV system that mixes for itself offers two receive-only audio lines.
    let mut pull = pull(&sfu, &rt, 2).await;
    let log = common::log_packets(&mut pull);
    let lines = |from: Instant, to: Instant| {
        let mut by_line: std::collections::BTreeMap<u32, Vec<u8>> = Default::default();
        for a in log.lock().expect("log").iter() {
            if a.at > from && a.at <= to {
                by_line.entry(a.ssrc).or_default().push(a.first);
            }
        }
        by_line
    };

    let mut seq = 0u16;
    let t0 = Instant::now();
    hall_and_site_talk(&hall[0], &site[0], &mut seq, Duration::from_millis(800)).await;
    let t1 = Instant::now();
    let before = lines(t0, t1);
    assert_eq!(
        before.len(),
        1,
        "nobody speaks: one line, the hall: {before:?}"
    );
    let hall_line = *before.keys().next().expect("a line");
    assert!(before[&hall_line].iter().all(|m| *m == b'H'));

    sfu.set_floor(Some(ParticipantId("S01".into())))
        .await
        .expect("floor");
    hall_and_site_talk(&hall[0], &site[0], &mut seq, Duration::from_millis(800)).await;
    let t2 = Instant::now();
    let during = lines(t1 + Duration::from_millis(150), t2);
    assert_eq!(during.len(), 2, "the hall and the speaker: {during:?}");
    assert!(
        during[&hall_line].iter().all(|m| *m == b'H'),
        "the first line stays the hall: {during:?}"
    );
    let speaker_line = *during
        .keys()
        .find(|k| **k != hall_line)
        .expect("a second line");
    assert!(
        during[&speaker_line].iter().all(|m| *m == b'S'),
        "the second line is the speaker: {during:?}"
    );

    sfu.set_floor(None).await.expect("floor");
    hall_and_site_talk(&hall[0], &site[0], &mut seq, Duration::from_millis(800)).await;
    let t3 = Instant::now();
    let after = lines(t2 + Duration::from_millis(150), t3);
    assert_eq!(
        after.keys().copied().collect::<Vec<_>>(),
        vec![hall_line],
        "the speaker's line falls silent: {after:?}"
    );
}
