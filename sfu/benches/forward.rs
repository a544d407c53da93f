//! Forwarding benchmark: one publisher (VP8 ~2.5 Mbit/s at ~260 packets/s + Opus at 50
//! packets/s, synthetic payloads) → the SFU → N subscribers, all real webrtc-rs 0.21 peer
//! connections over DTLS-SRTP on loopback, in one process.
//!
//! The SFU's peer connections and its forwarding loop run on their own single-threaded
//! runtime on a dedicated thread, so the CPU time of that thread is the SFU's cost; the
//! publisher and the subscribers run on another runtime. The forwarding is the thinnest
//! path on webrtc-rs's async layer: for each received packet, `write_rtp` to every
//! subscriber's local track, awaited in turn.
//!
//! Run: `cargo bench -p dienhong-sfu --bench forward` (env `SUBSCRIBERS=64,200,600`,
//! `SECONDS=10`). Prints, per N: packets sent, forwarded packets/s, loss, SFU CPU per
//! forwarded packet, added latency p50/p99 (publisher write → subscriber read), and memory
//! per subscriber (whole process: SFU and client side together).

mod common;

use common::{Peer, Received, Report, peer, publish, rss_kib, thread_cpu, track};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{RwLock, mpsc};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::TrackRemoteEvent;
use webrtc::runtime::Runtime;

/// Offer from `a`, answer from `b`, both without trickle.
async fn negotiate(a: &mut Peer, b: &mut Peer) {
    let offer = a.pc.create_offer(None).await.expect("offer");
    a.pc.set_local_description(offer)
        .await
        .expect("local offer");
    let _ = tokio::time::timeout(Duration::from_secs(5), a.gathered.recv()).await;
    let offer = a.pc.local_description().await.expect("offer sdp");
    b.pc.set_remote_description(offer)
        .await
        .expect("remote offer");
    let answer = b.pc.create_answer(None).await.expect("answer");
    b.pc.set_local_description(answer)
        .await
        .expect("local answer");
    let _ = tokio::time::timeout(Duration::from_secs(5), b.gathered.recv()).await;
    let answer = b.pc.local_description().await.expect("answer sdp");
    a.pc.set_remote_description(answer)
        .await
        .expect("remote answer");
}

type Outputs = Arc<RwLock<Vec<(u32, Arc<TrackLocalStaticRTP>)>>>;

fn run(n: usize, seconds: u64) -> Report {
    // The SFU's own single-threaded runtime on a dedicated thread.
    let sfu_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("sfu runtime");
    let sfu = sfu_rt.handle().clone();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let sfu_thread = std::thread::spawn(move || {
        sfu_rt.block_on(async move {
            while stop_rx.try_recv().is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
    });
    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("client runtime");
    let t0 = Instant::now();
    let report = clients.block_on(async move {
        let rt: Arc<dyn Runtime> = webrtc::runtime::default_runtime().expect("tokio runtime");
        let outputs: [Outputs; 2] = [Arc::default(), Arc::default()];
        // SFU side of the publisher.
        let rt2 = rt.clone();
        let mut sfu_in = sfu
            .spawn(async move { peer(rt2).await })
            .await
            .expect("sfu peer");
        let mut publisher = peer(rt.clone()).await;
        let pub_video = Arc::new(TrackLocalStaticRTP::new(track(
            RtpCodecKind::Video,
            1111,
            "pub",
        )));
        let pub_audio = Arc::new(TrackLocalStaticRTP::new(track(
            RtpCodecKind::Audio,
            2222,
            "pub",
        )));
        publisher
            .pc
            .add_track(pub_video.clone())
            .await
            .expect("add video");
        publisher
            .pc
            .add_track(pub_audio.clone())
            .await
            .expect("add audio");
        negotiate(&mut publisher, &mut sfu_in).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), publisher.connected.recv()).await;

        // The forwarding loop: on the SFU runtime, one task per incoming track.
        let outs = outputs.clone();
        let mut tracks = std::mem::replace(&mut sfu_in.tracks, mpsc::unbounded_channel().1);
        sfu.spawn(async move {
            while let Some(track) = tracks.recv().await {
                let kind = track.kind().await;
                let out = if kind == RtpCodecKind::Audio {
                    outs[0].clone()
                } else {
                    outs[1].clone()
                };
                tokio::spawn(async move {
                    while let Some(evt) = track.poll().await {
                        if let TrackRemoteEvent::OnRtpPacket(pkt) = evt {
                            for (ssrc, t) in out.read().await.iter() {
                                let mut p = pkt.clone();
                                p.header.ssrc = *ssrc;
                                let _ = t.write_rtp(p).await;
                            }
                        }
                    }
                });
            }
        });

        // Subscribers.
        let rss0 = rss_kib();
        let received = Received::default();
        let mut subs = Vec::new();
        for i in 0..n {
            let rt2 = rt.clone();
            let outs = outputs.clone();
            let ssrc_base = 10_000 + 2 * i as u32;
            let mut sfu_out = sfu
                .spawn(async move {
                    let p = peer(rt2).await;
                    let a = Arc::new(TrackLocalStaticRTP::new(track(
                        RtpCodecKind::Audio,
                        ssrc_base,
                        &format!("s{i}"),
                    )));
                    let v = Arc::new(TrackLocalStaticRTP::new(track(
                        RtpCodecKind::Video,
                        ssrc_base + 1,
                        &format!("s{i}"),
                    )));
                    p.pc.add_track(a.clone()).await.expect("add");
                    p.pc.add_track(v.clone()).await.expect("add");
                    outs[0].write().await.push((ssrc_base, a));
                    outs[1].write().await.push((ssrc_base + 1, v));
                    p
                })
                .await
                .expect("sfu out");
            let mut sub = peer(rt.clone()).await;
            // Negotiation calls on the SFU peer run on the SFU runtime.
            let pc = sfu_out.pc.clone();
            sfu.spawn(async move {
                let o = pc.create_offer(None).await.expect("offer");
                pc.set_local_description(o).await.expect("local");
            })
            .await
            .expect("join");
            let _ = tokio::time::timeout(Duration::from_secs(5), sfu_out.gathered.recv()).await;
            let offer = sfu_out.pc.local_description().await.expect("sdp");
            sub.pc.set_remote_description(offer).await.expect("remote");
            let answer = sub.pc.create_answer(None).await.expect("answer");
            sub.pc.set_local_description(answer).await.expect("local");
            let _ = tokio::time::timeout(Duration::from_secs(5), sub.gathered.recv()).await;
            let answer = sub.pc.local_description().await.expect("sdp");
            let pc = sfu_out.pc.clone();
            sfu.spawn(async move { pc.set_remote_description(answer).await.expect("remote") })
                .await
                .expect("join");
            received.follow(
                std::mem::replace(&mut sub.tracks, mpsc::unbounded_channel().1),
                t0,
            );
            subs.push((sub, sfu_out));
        }
        for (sub, _) in subs.iter_mut() {
            let _ = tokio::time::timeout(Duration::from_secs(20), sub.connected.recv()).await;
        }
        let mem_per_sub_kib = (rss_kib().saturating_sub(rss0)) as f64 / n.max(1) as f64;
        tokio::time::sleep(Duration::from_millis(500)).await;

        let cpu0 = sfu.spawn(async { thread_cpu() }).await.expect("cpu");
        let received0 = received.count.load(std::sync::atomic::Ordering::Relaxed);
        received.latency_us.lock().expect("lat").clear();
        let start = Instant::now();
        let sent = publish(&pub_video, 1111, &pub_audio, 2222, seconds, t0).await;
        let seconds_run = start.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let cpu1 = sfu.spawn(async { thread_cpu() }).await.expect("cpu");
        let got = received.count.load(std::sync::atomic::Ordering::Relaxed) - received0;
        let lat = std::mem::take(&mut *received.latency_us.lock().expect("lat"));
        for (sub, out) in subs {
            let _ = sub.pc.close().await;
            let pc = out.pc.clone();
            let _ = sfu.spawn(async move { pc.close().await }).await;
        }
        let _ = publisher.pc.close().await;
        let pc = sfu_in.pc.clone();
        let _ = sfu.spawn(async move { pc.close().await }).await;
        Report {
            n,
            sent,
            received: got,
            seconds: seconds_run,
            sfu_cpu: cpu1.saturating_sub(cpu0),
            lat,
            mem_per_sub_kib,
        }
    });
    let _ = stop_tx.send(());
    let _ = sfu_thread.join();
    report
}

fn main() {
    let (counts, seconds) = common::plan();
    for n in counts {
        run(n, seconds).print();
    }
}
