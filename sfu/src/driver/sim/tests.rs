//! The sans-IO core on the simulated network: what the socket tests cannot control (loss,
//! a peer that goes silent, load) made exact, on a virtual clock.

use super::{Link, Net};
use crate::load::LoadTuning;
use crate::routing::{Kind, Tuning};
use std::collections::HashMap;
use std::time::Duration;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Picture and sound packets each peer gets over the next `d`.
fn received_over(net: &mut Net, d: Duration) -> Vec<(u64, u64)> {
    let before: Vec<(u64, u64)> = net
        .peers
        .iter()
        .map(|p| (p.video_packets(), p.audio_packets()))
        .collect();
    net.run(d);
    net.peers
        .iter()
        .zip(before)
        .map(|(p, (v, a))| (p.video_packets() - v, p.audio_packets() - a))
        .collect()
}

#[test]
fn pictures_lost_on_the_way_to_a_subscriber_are_asked_for_and_resent() {
    let mut net = Net::new(Tuning::default(), LoadTuning::unlimited());
    net.publisher("HALL", Kind::Chamber);
    let tv = net.subscriber("TV", Kind::Display);
    net.connect_all(secs(5));
    // 5 % of what the SFU sends the display is lost, 20 ms away with up to 10 ms of jitter.
    net.set_down(
        tv,
        Link {
            loss: 0.05,
            delay: Duration::from_millis(20),
            jitter: Duration::from_millis(10),
            ..Link::default()
        },
    );
    net.run(secs(10));
    let p = &net.peers[tv];
    let (_, lost) = p.lost();
    let picture = p
        .got
        .iter()
        .filter(|(ssrc, _)| p.video.contains(ssrc))
        .map(|(_, g)| g)
        .max_by_key(|g| g.seqs.len())
        .expect("pictures received");
    // Every sequence number from the first to the last, but the last 200 ms (still being
    // repaired), arrived: the SFU resent what was lost. (Unrepaired, the pictures' share of
    // what the link lost would be dozens of holes.)
    let first = *picture.seqs.first().expect("a first");
    let last = *picture.seqs.last().expect("a last");
    let settled = last.wrapping_sub(first).saturating_sub(18);
    let missing: Vec<u16> = (0..settled)
        .map(|k| first.wrapping_add(k))
        .filter(|s| !picture.seqs.contains(s))
        .collect();
    assert!(
        lost > 50,
        "the link lost {lost}: the test would prove nothing"
    );
    assert!(
        missing.len() * 1000 <= settled as usize,
        "{} of {settled} pictures' packets never arrived ({lost} lost): {missing:?}",
        missing.len(),
    );
}

#[test]
fn a_peer_that_goes_silent_loses_its_leg_and_nobody_else_notices() {
    let mut net = Net::new(Tuning::default(), LoadTuning::unlimited());
    net.publisher("HALL", Kind::Chamber);
    let gone = net.subscriber("TV1", Kind::Display);
    let stays = net.subscriber("TV2", Kind::Display);
    net.connect_all(secs(5));
    net.run(secs(2));
    let leg = net.peers[gone].leg;
    // TV1's machine vanishes: nothing from it, nothing to it, no goodbye.
    net.set_up(
        gone,
        Link {
            cut: true,
            ..Link::default()
        },
    );
    net.set_down(
        gone,
        Link {
            cut: true,
            ..Link::default()
        },
    );
    net.run(secs(5));
    assert!(net.closed.is_empty(), "consent is not lost in 5 s");
    net.run(secs(40));
    assert_eq!(net.closed, vec![leg], "only the silent leg is released");
    let got = received_over(&mut net, secs(2));
    assert!(got[stays].0 > 100 && got[stays].1 > 90, "{got:?}");
    assert!(net.peers[0].connected, "the chamber is still connected");
}

#[test]
fn overload_takes_pictures_from_displays_then_deputies_then_rooms_never_the_console() {
    let mut net = Net::new(Tuning::default(), LoadTuning::default());
    net.publisher("HALL", Kind::Chamber);
    let console = net.subscriber("CHAIR", Kind::ChairConsole);
    let room = net.subscriber("HN", Kind::Site);
    let deputy = net.subscriber("DB001", Kind::RemoteDeputy);
    let tv = net.subscriber("TV", Kind::Display);
    net.connect_all(secs(5));
    net.run(secs(2));
    let all = received_over(&mut net, secs(1));
    for p in [console, room, deputy, tv] {
        assert!(
            all[p].0 > 60 && all[p].1 > 40,
            "everyone sees and hears: {all:?}"
        );
    }
    // The thread is made fully busy: one more receiver loses its picture every half second,
    // in the router's order; sound stays.
    net.busy = 1.0;
    let mut order = Vec::new();
    for _ in 0..12 {
        let got = received_over(&mut net, Duration::from_millis(500));
        for p in [room, deputy, tv] {
            if got[p].0 == 0 && !order.contains(&p) {
                order.push(p);
            }
        }
        for p in [console, room, deputy, tv] {
            assert!(got[p].1 >= 20, "sound is never shed: {got:?}");
        }
        assert!(
            got[console].0 > 30,
            "the console keeps its picture: {got:?}"
        );
    }
    assert_eq!(order, vec![tv, deputy, room]);
    assert_eq!(net.load().shed.video_off, 3);
    // The load passes: the pictures come back, a step per calm period.
    net.busy = 0.0;
    net.run(secs(20));
    assert_eq!(net.load().shed.video_off, 0);
    let got = received_over(&mut net, secs(1));
    for p in [console, room, deputy, tv] {
        assert!(got[p].0 > 60, "every picture is back: {got:?}");
    }
}

#[test]
fn a_bandwidth_drop_moves_a_display_to_a_lower_layer_and_it_keeps_the_picture() {
    let mut net = Net::new(Tuning::default(), LoadTuning::unlimited());
    net.simulcast_publisher("HALL", Kind::Chamber);
    let tv = net.subscriber("TV", Kind::Display);
    net.connect_all(secs(5));
    let path = |rate_bps| Link {
        delay: Duration::from_millis(20),
        rate_bps: Some(rate_bps),
        ..Link::default()
    };
    // Which layers the display got over the next `d` (packets by tag, 1 lowest).
    let layers_over = |net: &mut Net, d| {
        let before: HashMap<u8, u64> = net.peers[tv]
            .got
            .values()
            .flat_map(|g| g.tags.iter().map(|(t, n)| (*t, *n)))
            .fold(HashMap::new(), |mut m, (t, n)| {
                *m.entry(t).or_default() += n;
                m
            });
        net.run(d);
        let mut after: HashMap<u8, u64> = HashMap::new();
        for g in net.peers[tv].got.values() {
            for (t, n) in &g.tags {
                *after.entry(*t).or_default() += n;
            }
        }
        for (t, n) in before {
            *after.entry(t).or_default() -= n;
        }
        after.retain(|t, n| *n > 0 && *t != 0xAA);
        after
    };
    // A good path (3 Mbit/s): the display climbs to the top layer.
    net.set_down(tv, path(3_000_000));
    net.run(secs(15));
    let good = layers_over(&mut net, secs(2));
    assert!(
        good.get(&3).is_some_and(|n| *n > 100),
        "the top layer: {good:?}"
    );
    // The path drops to 300 kbit/s: the SFU's estimate follows within seconds, it moves
    // the display to the lowest layer (about 70 kbit/s), which then gets through: losses
    // stop, and resends never flood the path (they are rationed to the estimate).
    net.set_down(tv, path(300_000));
    let mut windows = Vec::new();
    for _ in 0..6 {
        windows.push(layers_over(&mut net, Duration::from_millis(500)));
    }
    let (_, lost_before) = net.peers[tv].lost();
    let low = layers_over(&mut net, secs(2));
    let (_, lost_after) = net.peers[tv].lost();
    assert!(
        low.get(&1).is_some_and(|n| *n > 40) && low.len() == 1,
        "only the lowest layer: {low:?}"
    );
    assert!(
        lost_after - lost_before < 5,
        "the lower layer fits the path: {} lost",
        lost_after - lost_before
    );
    // The display had a picture all along: some in every half second.
    windows.push(low);
    for _ in 0..10 {
        windows.push(layers_over(&mut net, Duration::from_millis(500)));
    }
    assert!(
        windows.iter().all(|w| w.values().sum::<u64>() >= 5),
        "{windows:?}"
    );
}

#[test]
fn a_publisher_is_connected_as_soon_as_its_checks_succeed_not_on_the_next_ice_round() {
    // 1 ms each way. The SFU answers the publisher's offer, so it starts DTLS: it used to
    // wait for its ICE agent's next 200 ms round after the checks had succeeded.
    let mut net = Net::new(Tuning::default(), LoadTuning::unlimited());
    let start = net.now;
    let hall = net.publisher("HALL", Kind::Chamber);
    let path = Link {
        delay: Duration::from_millis(1),
        ..Link::default()
    };
    net.set_up(hall, path);
    net.set_down(hall, path);
    net.connect_all(secs(5));
    let took = net.now - start;
    assert!(
        took < Duration::from_millis(100),
        "connected after {took:?}"
    );
}

#[test]
fn on_two_shards_every_receiver_gets_the_programme_and_keyframes_reach_the_publisher() {
    let mut net = Net::sharded(Tuning::default(), LoadTuning::unlimited(), 2);
    net.publisher("HALL", Kind::Chamber);
    net.publisher("S01", Kind::Site);
    let near = net.subscriber_on(0, "D1", Kind::Display);
    let far = net.subscriber_on(1, "D2", Kind::Display);
    net.connect_all(secs(5));
    net.run(secs(1));
    let got = received_over(&mut net, secs(2));
    // A display gets the programme: 2 s of the hall's sound (50 packets a second) and
    // picture (90), on either shard.
    for who in [near, far] {
        let (video, audio) = got[who];
        assert!(
            audio >= 95,
            "{}: {audio} sound packets",
            net.peers[who].name.0
        );
        assert!(
            video >= 170,
            "{}: {video} picture packets",
            net.peers[who].name.0
        );
    }
    assert_eq!(got[near], got[far], "the same packets on both shards");

    // A display that joins on the other shard gets a first picture: its keyframe request
    // crosses to the publishers' shard, which sends the hall a PLI.
    let asked = net.cores[0].stats.keyframe_requests_total;
    let late = net.subscriber_on(1, "D3", Kind::Display);
    net.connect_all(secs(5));
    net.run(Duration::from_millis(500));
    assert!(
        net.cores[0].stats.keyframe_requests_total > asked,
        "no keyframe was asked of the hall"
    );
    assert_eq!(
        net.cores[1].stats.keyframe_requests_total, 0,
        "only the home shard asks"
    );
    let got = received_over(&mut net, secs(1));
    assert!(
        got[late].0 >= 80,
        "the late display's pictures: {:?}",
        got[late]
    );

    // The floor, given on every shard, moves every display to the speaker: a keyframe is
    // asked for, and every display keeps its sound and picture.
    let asked = net.cores[0].stats.keyframe_requests_total;
    net.set_floor(Some("S01"));
    net.run(Duration::from_millis(500));
    assert!(net.cores[0].stats.keyframe_requests_total > asked);
    let got = received_over(&mut net, secs(1));
    for who in [near, far, late] {
        assert!(
            got[who].0 >= 80 && got[who].1 >= 45,
            "{who}: {:?}",
            got[who]
        );
    }
    assert_eq!(
        net.cores[1].stats.received_total, 0,
        "received once, at home"
    );
    assert!(net.cores[0].stats.received_total > 0);
    assert!(net.cores[1].stats.forwarded_total > 0);
}

#[test]
fn a_publisher_whose_receiving_leg_on_another_shard_closes_is_still_forwarded_there() {
    let mut net = Net::sharded(Tuning::default(), LoadTuning::unlimited(), 2);
    net.publisher("HALL", Kind::Chamber);
    net.publisher("S01", Kind::Site);
    let far = net.subscriber_on(1, "D2", Kind::Display);
    // The site's room also receives, on the other shard; it has the floor.
    let own = net.subscriber_on(1, "S01", Kind::Site);
    net.connect_all(secs(5));
    net.set_floor(Some("S01"));
    net.run(secs(1));
    let site = crate::routing::ParticipantId("S01".into());
    let tracks: Vec<_> = net.cores[0].stats.tracks[&site]
        .iter()
        .map(|(t, _)| *t)
        .collect();
    let forwarded_there = |net: &Net| tracks.iter().all(|t| net.cores[1].fanout.contains_key(t));
    assert!(
        forwarded_there(&net),
        "the speaker's tracks go to the display"
    );
    let before = received_over(&mut net, secs(2))[far];
    let leg = net.peers[own].leg;
    net.command_on(1, |r| super::Cmd::CloseLeg(leg, r));
    net.run(secs(1));
    assert!(
        forwarded_there(&net),
        "the speaker's tracks are still forwarded on the shard where its receiving leg closed"
    );
    let after = received_over(&mut net, secs(2))[far];
    assert!(
        after.0 * 10 >= before.0 * 9 && after.1 * 10 >= before.1 * 9,
        "the display got {before:?} before the site's receiving leg closed, {after:?} after"
    );
}

/// The chamber publishing and `n` hall displays, all connected.
fn chamber_with_displays(n: usize) -> Net {
    let mut net = Net::new(Tuning::default(), LoadTuning::unlimited());
    net.publisher("HALL", Kind::Chamber);
    for i in 0..n {
        net.subscriber(&format!("TV{i}"), Kind::Display);
    }
    net.connect_all(secs(10));
    net
}

#[test]
fn the_packets_of_a_picture_read_together_leave_together() {
    let mut net = chamber_with_displays(12);
    let got = received_over(&mut net, secs(2));
    assert!(
        got.iter().skip(1).all(|(v, a)| *v > 100 && *a > 50),
        "{got:?}"
    );
    // A picture is three packets arriving at once (one read of the socket): each receiver's
    // three go out in one call, each leg's pipeline emptied once, not once per packet.
    assert!(net.most_rtp_in_one_send(0) >= 3);
}

/// Also the workload of the per-packet profile in `docs/benchmarks.md` (callgrind on this
/// test in a release build).
#[test]
fn a_hundred_displays_each_get_all_of_the_programme() {
    let mut net = chamber_with_displays(100);
    let got = received_over(&mut net, secs(3));
    // 3 s of sound (a packet every 20 ms) and pictures (three packets 30 times a second),
    // the same to every display, give or take what was on the way at the window's edges.
    let displays = &got[1..];
    assert_eq!(displays.len(), 100);
    for &(v, a) in displays {
        assert!((145..=155).contains(&a), "sound packets: {a}");
        assert!((264..=282).contains(&v), "picture packets: {v}");
    }
}
