//! Peers that come and go leave nothing behind: 1,000 subscribe → receive → leave cycles
//! against a live publisher, then the process's file descriptors are back at their baseline
//! and its memory has stopped growing after the first cycles (`LEAK_CYCLES` overrides the
//! count).

#[path = "../benches/common/mod.rs"]
mod common;

use common::{publish_to, rss_kib, subscribe_from};
use dienhong_sfu::driver::{Driver, OPUS_PT};
use dienhong_sfu::load::LoadTuning;
use dienhong_sfu::routing::{Kind, ParticipantId, Tuning};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use std::sync::Arc;
use std::time::Duration;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::TrackRemoteEvent;
use webrtc::runtime::Runtime;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

async fn cycle(sfu: &Driver, rt: &Arc<dyn Runtime>, n: usize) {
    let who = format!("V{n}");
    let mut sub = subscribe_from(sfu, rt, &who, Kind::Display).await;
    // Wait for real media, so every cycle exercises the whole path.
    let track = tokio::time::timeout(Duration::from_secs(10), sub.tracks.recv())
        .await
        .expect("a track within 10 s")
        .expect("track");
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(evt) = track.poll().await {
            if let TrackRemoteEvent::OnRtpPacket(_) = evt {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(got, Ok(true), "cycle {n} received media");
    sub.pc.close().await.expect("close");
    sfu.leave(ParticipantId(who)).await.expect("leave");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_subscribers_come_and_go_without_leaking() {
    let cycles: usize = std::env::var("LEAK_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    // Handshaking ten at a time keeps a debug build's thread busy: the governor would refuse
    // some (as it should); what is measured here is what stays behind, so it never does.
    let sfu = Driver::start_with(
        "127.0.0.1:0".parse().expect("addr"),
        None,
        Tuning::default(),
        LoadTuning::unlimited(),
    )
    .expect("driver");
    let rt: Arc<dyn Runtime> = webrtc::runtime::default_runtime().expect("runtime");
    let (site, tracks) = publish_to(
        &sfu,
        &rt,
        "HALL",
        Kind::Chamber,
        &[(RtpCodecKind::Audio, 31)],
    )
    .await;
    let audio = tracks[0].clone();
    let talking = tokio::spawn(async move {
        let mut seq = 0u16;
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        loop {
            tick.tick().await;
            seq = seq.wrapping_add(1);
            let pkt = rtc::rtp::Packet {
                header: rtc::rtp::header::Header {
                    version: 2,
                    payload_type: OPUS_PT,
                    sequence_number: seq,
                    timestamp: u32::from(seq) * 960,
                    ssrc: 31,
                    ..Default::default()
                },
                payload: bytes::Bytes::from_static(&[7u8; 100]),
            };
            if audio.write_rtp(pkt).await.is_err() {
                break;
            }
        }
    });

    // Ten at a time: what is measured is what stays behind, not how fast one cycle is.
    let run = |from: usize, to: usize| {
        let (sfu, rt) = (&sfu, &rt);
        async move {
            for start in (from..to).step_by(10) {
                let batch = (start..(start + 10).min(to)).map(|n| cycle(sfu, rt, n));
                futures::future::join_all(batch).await;
            }
        }
    };
    let warmup = (cycles / 10).max(10);
    run(0, warmup).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (fds0, rss0) = (open_fds(), rss_kib());
    run(warmup, cycles).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (fds1, rss1) = (open_fds(), rss_kib());
    eprintln!(
        "{cycles} cycles: fds {fds0} -> {fds1}; RSS {rss0} KiB -> {rss1} KiB ({:.1} KiB per cycle after warm-up)",
        (rss1 as f64 - rss0 as f64) / (cycles - warmup) as f64
    );
    assert_eq!(fds1, fds0, "file descriptors back at baseline");
    let per_cycle = (rss1 as f64 - rss0 as f64) / (cycles - warmup) as f64;
    assert!(per_cycle < 8.0, "memory grows {per_cycle:.1} KiB per cycle");
    talking.abort();
    let _ = site.pc.close().await;
}
