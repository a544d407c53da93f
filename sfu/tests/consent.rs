//! Peers gone without a goodbye (a laptop closed, a network cut) are released when their
//! ICE consent lapses: the SFU reports the leg closed, a publisher's tracks stop everywhere,
//! and the leg is gone. Both peers reach the SFU through relays that then go silent.

#[path = "../benches/common/mod.rs"]
mod common;

use common::{build_peer, media_engine, relay, track};
use dienhong_sfu::driver::{Driver, DriverError, LegEvent, LegId, RTCSessionDescription};
use dienhong_sfu::routing::{Kind, ParticipantId};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::runtime::Runtime;

/// A peer's SDP without its candidates: the SFU learns where it is from its checks, which
/// come through the relay, and never reaches it another way.
fn hidden(sdp: &str) -> String {
    sdp.split("\r\n")
        .filter(|l| !l.starts_with("a=candidate"))
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// An SDP whose SFU candidate is replaced by the relay's port.
fn through(sdp: &str, sfu_port: u16, relay_port: u16) -> String {
    sdp.replace(
        &format!(" {sfu_port} typ host"),
        &format!(" {relay_port} typ host"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_gone_without_a_goodbye_are_released_when_their_consent_lapses() {
    let sfu = Driver::start("127.0.0.1:0".parse().expect("addr")).expect("driver");
    let rt: Arc<dyn Runtime> = webrtc::runtime::default_runtime().expect("runtime");
    let port = sfu.local_addr().port();
    let mut events = sfu.events();

    // A site publishes a microphone through one relay (to the publishers' socket).
    let to_site = relay(sfu.priority_addr(), None).await;
    let mut site = build_peer(rt.clone(), media_engine(), None).await;
    let mic = Arc::new(TrackLocalStaticRTP::new(track(
        RtpCodecKind::Audio,
        31,
        "S01",
    )));
    site.pc.add_track(mic).await.expect("add track");
    let offer = site.pc.create_offer(None).await.expect("offer");
    site.pc.set_local_description(offer).await.expect("local");
    let _ = tokio::time::timeout(Duration::from_secs(5), site.gathered.recv()).await;
    let offer = site.pc.local_description().await.expect("sdp");
    let offer = RTCSessionDescription::offer(hidden(&offer.sdp)).expect("offer");
    let (site_leg, answer) = sfu
        .publish(ParticipantId("S01".into()), Kind::Site, false, offer)
        .await
        .expect("publish");
    let answer = RTCSessionDescription::answer(through(
        &answer.sdp,
        sfu.priority_addr().port(),
        to_site.addr.port(),
    ))
    .expect("answer");
    site.pc
        .set_remote_description(answer)
        .await
        .expect("remote");

    // A display subscribes through another.
    let to_display = relay(sfu.local_addr(), None).await;
    let (display_leg, offer) = sfu
        .subscribe(ParticipantId("TV".into()), Kind::Display, false)
        .await
        .expect("subscribe");
    let mut display = build_peer(rt.clone(), media_engine(), None).await;
    let offer = RTCSessionDescription::offer(through(&offer.sdp, port, to_display.addr.port()))
        .expect("offer");
    display
        .pc
        .set_remote_description(offer)
        .await
        .expect("remote");
    let answer = display.pc.create_answer(None).await.expect("answer");
    display
        .pc
        .set_local_description(answer)
        .await
        .expect("local");
    let _ = tokio::time::timeout(Duration::from_secs(5), display.gathered.recv()).await;
    let answer = display.pc.local_description().await.expect("sdp");
    let answer = RTCSessionDescription::answer(hidden(&answer.sdp)).expect("answer");
    sfu.answer(display_leg, answer).await.expect("answer");
    for (who, peer) in [("site", &mut site), ("display", &mut display)] {
        tokio::time::timeout(Duration::from_secs(10), peer.connected.recv())
            .await
            .unwrap_or_else(|_| panic!("the {who} connects through its relay"));
    }
    let stats = sfu.stats().await.expect("stats");
    assert!(
        stats.tracks.contains_key(&ParticipantId("S01".into())),
        "{stats:?}"
    );

    // Both go silent: no goodbye, nothing more from either.
    to_site.cut.store(true, Ordering::Relaxed);
    to_display.cut.store(true, Ordering::Relaxed);
    let cut = Instant::now();
    let mut closed: HashMap<LegId, Duration> = HashMap::new();
    while closed.len() < 2 {
        let event = tokio::time::timeout(Duration::from_secs(60), events.recv())
            .await
            .expect("the legs are released within a minute")
            .expect("events");
        if let LegEvent::Closed { leg, .. } = event {
            closed.insert(leg, cut.elapsed());
        }
    }
    assert!(closed.contains_key(&site_leg) && closed.contains_key(&display_leg));
    // Not at the first lost packet: ICE consent allows some seconds of silence.
    assert!(
        closed.values().all(|d| *d >= Duration::from_secs(4)),
        "released too early: {closed:?}"
    );

    // Released: the site's tracks stopped everywhere, the legs are gone.
    let stats = sfu.stats().await.expect("stats");
    assert!(
        !stats.tracks.contains_key(&ParticipantId("S01".into())),
        "{stats:?}"
    );
    for leg in [site_leg, display_leg] {
        assert!(matches!(
            sfu.close_leg(leg).await,
            Err(DriverError::NoSuchPeer)
        ));
    }
    drop((site, display));
}
