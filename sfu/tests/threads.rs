//! Two I/O threads: receivers are spread over both threads' sockets, and every one of them
//! hears the programme as one thread would give it: the hall, the speaker while someone
//! holds the floor, the hall again after. A publisher who leaves is gone from both threads
//! (the floor left to them falls back to the hall everywhere). The counters add up over the
//! threads.

#[path = "../benches/common/mod.rs"]
mod common;

use common::{hall_and_site_talk, publish_to};
use dienhong_sfu::driver::{Driver, Options};
use dienhong_sfu::routing::{Kind, ParticipantId};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use webrtc::runtime::Runtime;

/// A WHEP-style pull (one receive-only audio line) as `who`, connected; with the port of
/// the SFU's candidate in its answer: the thread it was placed on.
async fn pull(sfu: &Driver, rt: &Arc<dyn Runtime>, who: &str) -> (common::Peer, u16) {
    let (pull, answer) = common::pull_as(sfu, rt, who, 1).await;
    let port = answer
        .lines()
        .find(|l| l.starts_with("a=candidate:") && l.contains(" typ host"))
        .and_then(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(5)?.parse::<u16>().ok()
        })
        .expect("a host candidate in the answer");
    (pull, port)
}

/// What each receiver heard between `from` and `to`: the first byte of each packet.
fn heard(logs: &[common::Arrivals], from: Instant, to: Instant) -> Vec<Vec<u8>> {
    logs.iter()
        .map(|log| common::heard(log, from, to))
        .collect()
}

fn all_hear(what: &[Vec<u8>], marker: u8, when: &str) {
    for (i, got) in what.iter().enumerate() {
        assert!(
            got.len() >= 10,
            "{when}: receiver {i} heard {} packets",
            got.len()
        );
        assert!(
            got.iter().all(|m| *m == marker),
            "{when}: receiver {i} heard {:?}",
            String::from_utf8_lossy(got)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receivers_on_two_threads_hear_the_programme_follow_the_floor() {
    let sfu = Driver::open(
        "127.0.0.1:0".parse().expect("addr"),
        Options {
            threads: 2,
            ..Options::default()
        },
    )
    .expect("driver");
    assert_eq!(sfu.threads(), 2);
    let sockets: BTreeSet<u16> = sfu.receiver_addrs().iter().map(|a| a.port()).collect();
    assert_eq!(sockets.len(), 2, "a socket per thread");
    assert!(!sockets.contains(&sfu.priority_addr().port()));

    let rt: Arc<dyn Runtime> = webrtc::runtime::default_runtime().expect("runtime");
    let (_hall_peer, hall) = publish_to(
        &sfu,
        &rt,
        "HALL",
        Kind::Chamber,
        &[(RtpCodecKind::Audio, 11)],
    )
    .await;
    let (site_peer, site) =
        publish_to(&sfu, &rt, "S01", Kind::Site, &[(RtpCodecKind::Audio, 31)]).await;

    let mut pulls = Vec::new();
    let mut logs = Vec::new();
    let mut used = BTreeSet::new();
    for k in 0..4 {
        let (mut p, port) = pull(&sfu, &rt, &format!("TV{k}")).await;
        used.insert(port);
        logs.push(common::log_arrivals(&mut p));
        pulls.push(p);
    }
    assert_eq!(used, sockets, "the receivers are spread over both threads");

    let mut seq = 0u16;
    let t0 = Instant::now();
    hall_and_site_talk(&hall[0], &site[0], &mut seq, Duration::from_millis(800)).await;
    let t1 = Instant::now();
    all_hear(&heard(&logs, t0, t1), b'H', "before the floor");

    sfu.set_floor(Some(ParticipantId("S01".into())))
        .await
        .expect("floor");
    hall_and_site_talk(&hall[0], &site[0], &mut seq, Duration::from_millis(800)).await;
    let t2 = Instant::now();
    all_hear(
        &heard(&logs, t1 + Duration::from_millis(150), t2),
        b'S',
        "the speaker",
    );

    sfu.set_floor(None).await.expect("floor");
    hall_and_site_talk(&hall[0], &site[0], &mut seq, Duration::from_millis(800)).await;
    let t3 = Instant::now();
    all_hear(
        &heard(&logs, t2 + Duration::from_millis(150), t3),
        b'H',
        "after the floor",
    );

    // The site leaves with the floor given to it again: no thread keeps its track, every
    // receiver is given the hall.
    sfu.leave(ParticipantId("S01".into())).await.expect("leave");
    drop(site_peer);
    sfu.set_floor(Some(ParticipantId("S01".into())))
        .await
        .expect("floor");
    hall_and_site_talk(&hall[0], &site[0], &mut seq, Duration::from_millis(800)).await;
    let t4 = Instant::now();
    all_hear(
        &heard(&logs, t3 + Duration::from_millis(150), t4),
        b'H',
        "after the speaker left",
    );

    // What was in flight lands; then everything that arrived must have been forwarded
    // (counted before the counters are read, which only grow).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let arrived: usize = logs.iter().map(|l| l.lock().expect("log").len()).sum();
    let stats = sfu.stats().await.expect("stats");
    assert!(
        stats.forwarded_total >= arrived as u64,
        "forwarded {} (both threads) for {arrived} arrivals",
        stats.forwarded_total
    );
    // Each packet is received once, on the home thread, however many threads write it.
    assert!(stats.received_total > 0);
    assert!(stats.received_total < stats.forwarded_total);
    assert_eq!(stats.relay_dropped_total, 0);
    assert_eq!(sfu.loads().len(), 2);
}
