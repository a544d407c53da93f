//! Overload, with real peers: a receiver beyond the measured capacity is refused at once
//! (never the chair's console, a presiding deputy or a publisher), and when the governor
//! sheds, an ordinary receiver loses the picture but keeps the sound while the console
//! keeps both. The governor is tuned so that the idle test machine counts as overloaded
//! (its thresholds at zero): what is tested is the path from the measurement to the
//! packets, not the thresholds (those are table-tested in `load`).

#[path = "../benches/common/mod.rs"]
mod common;

use common::{log_packets, publish, speaking_site, subscribe_as, subscribe_from};
use dienhong_sfu::driver::{Driver, DriverError, OPUS_PT, VP8_PT};
use dienhong_sfu::load::LoadTuning;
use dienhong_sfu::routing::{Kind, ParticipantId, Tuning};
use std::sync::Arc;
use std::time::{Duration, Instant};
use webrtc::runtime::Runtime;

fn start(load: LoadTuning) -> Driver {
    Driver::start_with(
        "127.0.0.1:0".parse().expect("addr"),
        None,
        Tuning::default(),
        load,
    )
    .expect("driver")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_beyond_capacity_is_refused_at_once_but_never_the_chair_or_a_publisher() {
    // No room for anyone ordinary.
    let sfu = start(LoadTuning {
        admit_ceiling: 0.0,
        ..LoadTuning::default()
    });
    let rt: Arc<dyn Runtime> = webrtc::runtime::default_runtime().expect("runtime");
    let _site = speaking_site(&sfu, &rt).await;
    let refused = sfu
        .subscribe(ParticipantId("TV".into()), Kind::Display, false)
        .await;
    assert!(
        matches!(refused, Err(DriverError::Overloaded { retry_after_s: 5 })),
        "{refused:?}"
    );
    let refused = sfu
        .subscribe(ParticipantId("D7".into()), Kind::RemoteDeputy, false)
        .await;
    assert!(matches!(refused, Err(DriverError::Overloaded { .. })));
    // The chair's console, a presiding deputy and the floor holder's own site are admitted.
    sfu.subscribe(ParticipantId("CONSOLE".into()), Kind::ChairConsole, false)
        .await
        .expect("the console is never refused");
    sfu.subscribe(ParticipantId("CHAIR".into()), Kind::RemoteDeputy, true)
        .await
        .expect("the chair is never refused");
    sfu.subscribe(ParticipantId("S01".into()), Kind::Site, false)
        .await
        .expect("the floor holder is never refused");
    let stats = sfu.stats().await.expect("stats");
    assert_eq!(stats.tracks.len(), 1, "the publisher was not refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_overload_an_ordinary_receiver_keeps_the_sound_and_loses_the_picture_not_the_console()
{
    // Every sample counts as overload: shed a step every 100 ms.
    let sfu = start(LoadTuning {
        high: 0.0,
        low: 0.0,
        sustain: 0,
        settle: 100,
        ..LoadTuning::default()
    });
    let rt: Arc<dyn Runtime> = webrtc::runtime::default_runtime().expect("runtime");
    let (_site, tracks) = speaking_site(&sfu, &rt).await;
    let mut tv = subscribe_from(&sfu, &rt, "TV", Kind::Display).await;
    let mut console = subscribe_as(
        &sfu,
        common::peer(rt.clone()).await,
        "CONSOLE",
        Kind::ChairConsole,
    )
    .await;
    for p in [&mut tv, &mut console] {
        tokio::time::timeout(Duration::from_secs(10), p.connected.recv())
            .await
            .expect("connected");
    }
    let tv_log = log_packets(&mut tv);
    let console_log = log_packets(&mut console);
    let sending = {
        let (v, a) = (tracks[0].clone(), tracks[1].clone());
        tokio::spawn(async move { publish(&v, 1111, &a, 2222, 4, Instant::now()).await })
    };
    // Let the governor reach the TV (a step each 100 ms), then look at a clean second.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let from = Instant::now();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let to = Instant::now();
    sending.abort();
    let count = |log: &common::PacketLog, pt: u8| {
        log.lock()
            .expect("log")
            .iter()
            .filter(|a| a.payload_type == pt && a.at > from && a.at <= to)
            .count()
    };
    let load = sfu.load();
    assert!(load.shed.low_layers && load.shed.video_off >= 1, "{load:?}");
    assert!(
        count(&tv_log, OPUS_PT) > 20,
        "the TV still hears the speaker"
    );
    assert_eq!(count(&tv_log, VP8_PT), 0, "the TV's picture is shed");
    assert!(count(&console_log, OPUS_PT) > 20, "the console hears");
    assert!(count(&console_log, VP8_PT) > 50, "the console still sees");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishers_and_the_protected_are_on_the_socket_read_first_and_others_are_not() {
    let sfu = Driver::start("127.0.0.1:0".parse().expect("addr")).expect("driver");
    assert_ne!(sfu.priority_addr(), sfu.local_addr());
    let on = |sdp: &str, port: u16| sdp.contains(&format!(" {port} typ host"));
    let (priority, general) = (sfu.priority_addr().port(), sfu.local_addr().port());
    let rt: Arc<dyn Runtime> = webrtc::runtime::default_runtime().expect("runtime");
    // The publisher connects (to the priority socket, or it would not).
    let _site = speaking_site(&sfu, &rt).await;
    for (who, kind, presiding, first) in [
        ("CONSOLE", Kind::ChairConsole, false, true),
        ("CHAIR", Kind::RemoteDeputy, true, true),
        ("S01", Kind::Site, false, true),
        ("TV", Kind::Display, false, false),
        ("D7", Kind::RemoteDeputy, false, false),
    ] {
        let (_, offer) = sfu
            .subscribe(ParticipantId(who.into()), kind, presiding)
            .await
            .expect("subscribe");
        let (want, other) = if first {
            (priority, general)
        } else {
            (general, priority)
        };
        assert!(
            on(&offer.sdp, want) && !on(&offer.sdp, other),
            "{who}:\n{}",
            offer.sdp
        );
    }
}
