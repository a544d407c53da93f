//! Forwarding benchmark of the product path: `dienhong_sfu::driver` (webrtc-rs's sans-IO
//! `rtc` core, every peer on one UDP socket, one I/O thread, routing applied per packet).
//! The publisher holds the floor; N displays subscribe. Publisher and subscribers are
//! ordinary webrtc-rs 0.21 async peers on another runtime (the other core), exactly as in
//! `forward.rs`, so the two benchmarks compare the SFU side only.
//!
//! Run: `cargo bench -p dienhong-sfu --bench forward_driver` (env `SUBSCRIBERS=64,200,600`,
//! `SECONDS=10`). The SFU's CPU is that of the driver's thread (`sfu-io`).

mod common;

use common::{Received, Report, publish, publish_to, rss_kib, subscribe_from};
use dienhong_sfu::driver::Driver;
use dienhong_sfu::routing::{Kind, ParticipantId};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use webrtc::runtime::Runtime;

/// CPU time of the driver's I/O thread, found by name under /proc/self/task.
fn driver_cpu() -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    for t in tasks.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.trim() == "sfu-io" {
            let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
            let after = stat.rsplit(')').next().unwrap_or_default();
            let f: Vec<u64> = after
                .split_whitespace()
                .map(|x| x.parse().unwrap_or(0))
                .collect();
            let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
            return Duration::from_millis(ticks * 10);
        }
    }
    Duration::ZERO
}

fn run(n: usize, seconds: u64) -> Report {
    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("client runtime");
    let t0 = Instant::now();
    clients.block_on(async move {
        let sfu = Driver::start("127.0.0.1:0".parse().expect("addr")).expect("driver");
        let rt: Arc<dyn Runtime> = webrtc::runtime::default_runtime().expect("tokio runtime");
        let (publisher, tracks) = publish_to(
            &sfu,
            &rt,
            "S01",
            Kind::Site,
            &[(RtpCodecKind::Video, 1111), (RtpCodecKind::Audio, 2222)],
        )
        .await;
        let (video, audio) = (tracks[0].clone(), tracks[1].clone());
        let speaker = ParticipantId("S01".into());
        sfu.set_floor(Some(speaker)).await.expect("floor");

        let rss0 = rss_kib();
        let received = Received::default();
        let mut subs = Vec::new();
        for i in 0..n {
            let mut sub = subscribe_from(&sfu, &rt, &format!("D{i}"), Kind::Display).await;
            received.follow(
                std::mem::replace(&mut sub.tracks, tokio::sync::mpsc::unbounded_channel().1),
                t0,
            );
            subs.push(sub);
        }
        let mut connected = 0;
        for sub in subs.iter_mut() {
            if tokio::time::timeout(Duration::from_secs(20), sub.connected.recv())
                .await
                .is_ok()
            {
                connected += 1;
            }
        }
        eprintln!("{connected}/{n} subscribers connected");
        let mem_per_sub_kib = (rss_kib().saturating_sub(rss0)) as f64 / n.max(1) as f64;
        tokio::time::sleep(Duration::from_millis(500)).await;

        let cpu0 = driver_cpu();
        let received0 = received.count.load(Ordering::Relaxed);
        received.latency_us.lock().expect("lat").clear();
        let start = Instant::now();
        let sent = publish(&video, 1111, &audio, 2222, seconds, t0).await;
        let seconds_run = start.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let cpu1 = driver_cpu();
        let got = received.count.load(Ordering::Relaxed) - received0;
        let lat = std::mem::take(&mut *received.latency_us.lock().expect("lat"));
        for sub in subs {
            let _ = sub.pc.close().await;
        }
        let _ = publisher.pc.close().await;
        Report {
            n,
            sent,
            received: got,
            seconds: seconds_run,
            sfu_cpu: cpu1.saturating_sub(cpu0),
            lat,
            mem_per_sub_kib,
        }
    })
}

fn main() {
    let (counts, seconds) = common::plan();
    for n in counts {
        run(n, seconds).print();
    }
}
