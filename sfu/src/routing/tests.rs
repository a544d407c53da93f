//! Table tests of the routing rules, on a virtual clock.

use super::*;
use proptest::prelude::*;

fn p(s: &str) -> ParticipantId {
    ParticipantId(s.to_owned())
}

const HALL_VIDEO: TrackId = TrackId(1);
const HALL_AUDIO: TrackId = TrackId(2);
const S01_VIDEO: TrackId = TrackId(3);
const S01_MIC: TrackId = TrackId(4);
const S79_VIDEO: TrackId = TrackId(5);
const S79_MIC: TrackId = TrackId(6);
const DEP_MIC: TrackId = TrackId(7);
const CHAIR_MIC: TrackId = TrackId(8);

fn simulcast(owner: &str) -> Track {
    Track {
        owner: p(owner),
        media: Media::Video,
        layers: vec![
            (Layer::Low, 150_000),
            (Layer::Mid, 500_000),
            (Layer::High, 1_500_000),
        ],
    }
}

fn mic(owner: &str) -> Track {
    Track {
        owner: p(owner),
        media: Media::Audio,
        layers: vec![(Layer::High, 40_000)],
    }
}

/// The chamber, two sites, a remote deputy, a remote presiding chair, a chair console and a
/// hall display, with their tracks.
fn sitting() -> Router {
    let mut r = Router::new(Tuning::default());
    for (id, kind, presiding) in [
        ("HALL", Kind::Chamber, false),
        ("S01", Kind::Site, false),
        ("S79", Kind::Site, false),
        ("DEP", Kind::RemoteDeputy, false),
        ("CHAIR", Kind::RemoteDeputy, true),
        ("CONSOLE", Kind::ChairConsole, false),
        ("TV", Kind::Display, false),
    ] {
        r.join(p(id), kind, presiding, 0);
    }
    r.publish(
        HALL_VIDEO,
        Track {
            owner: p("HALL"),
            media: Media::Video,
            layers: vec![(Layer::High, 2_500_000)],
        },
        0,
    );
    r.publish(HALL_AUDIO, mic("HALL"), 0);
    r.publish(S01_VIDEO, simulcast("S01"), 0);
    r.publish(S01_MIC, mic("S01"), 0);
    r.publish(S79_VIDEO, simulcast("S79"), 0);
    r.publish(S79_MIC, mic("S79"), 0);
    r.publish(DEP_MIC, mic("DEP"), 0);
    r.publish(CHAIR_MIC, mic("CHAIR"), 0);
    r
}

const EVERYONE: [&str; 7] = ["HALL", "S01", "S79", "DEP", "CHAIR", "CONSOLE", "TV"];

/// Who receives `track`, in `EVERYONE` order.
fn receivers(r: &Router, track: TrackId) -> Vec<&'static str> {
    EVERYONE
        .iter()
        .copied()
        .filter(|s| r.forwarding(track, &p(s)).is_some())
        .collect()
}

#[test]
fn without_the_floor_each_track_reaches_exactly_these_subscribers() {
    let r = sitting();
    let table: [(TrackId, &[&str]); 8] = [
        (HALL_VIDEO, &["S01", "S79", "DEP", "CHAIR", "CONSOLE", "TV"]),
        (HALL_AUDIO, &["S01", "S79", "DEP", "CHAIR", "CONSOLE", "TV"]),
        (S01_VIDEO, &["CONSOLE"]),
        (S01_MIC, &["CONSOLE"]),
        (S79_VIDEO, &["CONSOLE"]),
        (S79_MIC, &["CONSOLE"]),
        (DEP_MIC, &["CONSOLE"]),
        (CHAIR_MIC, &["HALL", "S01", "S79", "DEP", "CONSOLE", "TV"]),
    ];
    for (track, expected) in table {
        assert_eq!(receivers(&r, track), expected, "{track:?}");
    }
}

#[test]
fn the_floor_holder_is_heard_and_seen_by_everyone_else_and_the_hall() {
    let mut r = sitting();
    r.set_floor(Some(p("S01")), 10);
    assert_eq!(
        receivers(&r, S01_MIC),
        ["HALL", "S79", "DEP", "CHAIR", "CONSOLE", "TV"]
    );
    assert_eq!(
        receivers(&r, S01_VIDEO),
        ["HALL", "S79", "DEP", "CHAIR", "CONSOLE", "TV"]
    );
    assert_eq!(
        receivers(&r, S79_MIC),
        ["CONSOLE"],
        "other sites stay private"
    );
    assert_eq!(
        receivers(&r, DEP_MIC),
        ["CONSOLE"],
        "a deputy without the floor is never forwarded"
    );
}

#[test]
fn a_deputy_at_a_site_is_carried_by_the_room_until_they_publish_a_microphone_of_their_own() {
    let mut r = sitting();
    r.join(p("D79"), Kind::RemoteDeputy, false, 0);
    r.set_speaker(Some(p("D79")), Some(p("S79")), 10);
    assert_eq!(r.speaker(), Some(&p("S79")));
    assert_eq!(
        receivers(&r, S79_MIC),
        ["HALL", "S01", "DEP", "CHAIR", "CONSOLE", "TV"],
        "the room microphone carries the speaker"
    );
    assert_eq!(receivers(&r, S79_VIDEO).len(), 6);
    // The deputy opens their own device: it takes over from the room.
    const D79_MIC: TrackId = TrackId(9);
    r.publish(D79_MIC, mic("D79"), 20);
    assert_eq!(r.speaker(), Some(&p("D79")));
    assert_eq!(receivers(&r, S79_MIC), ["CONSOLE"]);
    assert_eq!(
        receivers(&r, D79_MIC),
        ["HALL", "S01", "S79", "DEP", "CHAIR", "CONSOLE", "TV"]
    );
    // Their device goes away: back to the room.
    r.unpublish(D79_MIC, 30);
    assert_eq!(receivers(&r, S79_MIC).len(), 6);
    // The floor ends: the room is private again.
    r.set_speaker(None, Some(p("S79")), 40);
    assert_eq!(r.speaker(), None);
    assert_eq!(receivers(&r, S79_MIC), ["CONSOLE"]);
}

#[test]
fn moving_the_floor_stops_the_old_speaker_and_starts_the_new_one_in_one_step() {
    let mut r = sitting();
    r.set_floor(Some(p("S01")), 10);
    let actions = r.set_floor(Some(p("DEP")), 20);
    let stops: BTreeSet<&str> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Stop { track, to } if *track == S01_MIC => Some(to.0.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        stops,
        BTreeSet::from(["HALL", "S79", "DEP", "CHAIR", "TV"]),
        "the console keeps its preview"
    );
    let starts: BTreeSet<&str> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Start { track, to, .. } if *track == DEP_MIC => Some(to.0.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        starts,
        BTreeSet::from(["HALL", "S01", "S79", "CHAIR", "TV"])
    );
    let actions = r.set_floor(None, 30);
    assert!(actions.iter().all(|a| matches!(a, Action::Stop { .. })));
    assert_eq!(receivers(&r, DEP_MIC), ["CONSOLE"]);
}

#[test]
fn a_muted_microphone_does_not_even_reach_the_console_unless_it_has_the_floor() {
    let mut r = sitting();
    let actions = r.set_muted(&p("S79"), true, 5);
    assert_eq!(
        actions,
        vec![Action::Stop {
            track: S79_MIC,
            to: p("CONSOLE")
        }]
    );
    assert!(receivers(&r, S79_MIC).is_empty());
    r.set_floor(Some(p("S79")), 6);
    assert!(receivers(&r, S79_MIC).contains(&"CONSOLE"));
    r.set_floor(None, 7);
    assert!(receivers(&r, S79_MIC).is_empty());
    r.set_muted(&p("S79"), false, 8);
    assert_eq!(receivers(&r, S79_MIC), ["CONSOLE"]);
}

#[test]
fn the_console_sees_every_site_as_a_thumbnail_whatever_its_bandwidth() {
    let mut r = sitting();
    r.set_estimate(&p("CONSOLE"), 50_000_000, 1);
    assert_eq!(
        r.forwarding(S01_VIDEO, &p("CONSOLE")),
        Some(Forward::Video(Layer::Low))
    );
    assert_eq!(
        r.forwarding(S79_VIDEO, &p("CONSOLE")),
        Some(Forward::Video(Layer::Low))
    );
    // Once a site speaks, the console gets it as a main picture.
    r.set_floor(Some(p("S01")), 2);
    assert_eq!(
        r.forwarding(S01_VIDEO, &p("CONSOLE")),
        Some(Forward::Video(Layer::High))
    );
}

#[test]
fn the_layer_follows_the_bandwidth_estimate_with_headroom_to_go_up() {
    let mut r = sitting();
    r.set_floor(Some(p("S01")), 0);
    let tv = p("TV");
    // No estimate yet: the best layer (an estimate only lowers it).
    assert_eq!(
        r.forwarding(S01_VIDEO, &tv),
        Some(Forward::Video(Layer::High))
    );
    // (estimate, expected layer): budget is 85% of the estimate; going up needs 1.25×.
    let table = [
        (3_000_000, Layer::High), // 2.55 M ≥ 1.875 M
        (2_000_000, Layer::High), // 1.7 M ≥ 1.5 M: stays
        (1_700_000, Layer::Mid),  // 1.445 M < 1.5 M: down at once
        (2_000_000, Layer::Mid),  // 1.7 M < 1.875 M: not enough headroom to go back up
        (2_300_000, Layer::High), // 1.955 M ≥ 1.875 M
        (400_000, Layer::Low),    // 340 k < 500 k
        (100_000, Layer::Low),    // never below the lowest
    ];
    let mut now = 0;
    for (estimate, expected) in table {
        now += 1000;
        r.set_estimate(&tv, estimate, now);
        assert_eq!(
            r.forwarding(S01_VIDEO, &tv),
            Some(Forward::Video(expected)),
            "estimate {estimate}"
        );
    }
}

/// The TV watches S01 (floor) with REMB only; its estimate has held it at Low since `t`.
fn held_low_from(t: Millis) -> Router {
    let mut r = sitting();
    r.set_floor(Some(p("S01")), 0);
    r.set_probing(&p("TV"), true, t);
    r.set_estimate(&p("TV"), 400_000, t); // 340 k budget: Low
    assert_eq!(
        r.forwarding(S01_VIDEO, &p("TV")),
        Some(Forward::Video(Layer::Low))
    );
    r
}

fn tv_layer(r: &Router) -> Option<Forward> {
    r.forwarding(S01_VIDEO, &p("TV"))
}

#[test]
fn a_receiver_held_low_by_its_own_estimate_is_tried_one_layer_up_and_kept_when_it_follows() {
    let mut r = held_low_from(0);
    // Quiet for less than 10 s: no try.
    r.tick(9_999);
    assert_eq!(tv_layer(&r), Some(Forward::Video(Layer::Low)));
    // At 10 s: one layer up (Mid), asking for its keyframe; not two.
    let actions = r.tick(10_000);
    assert_eq!(tv_layer(&r), Some(Forward::Video(Layer::Mid)));
    assert!(actions.contains(&Action::RequestKeyframe {
        track: S01_VIDEO,
        layer: Layer::Mid
    }));
    // Estimates that do not fall keep the try going, though they do not carry Mid yet.
    r.set_estimate(&p("TV"), 450_000, 12_000);
    r.tick(13_000);
    assert_eq!(tv_layer(&r), Some(Forward::Video(Layer::Mid)));
    // The receiver's estimate grows into the layer before the window ends: kept.
    r.set_estimate(&p("TV"), 700_000, 20_000); // 595 k ≥ 500 k
    let end = r.tick(22_000);
    assert!(
        !end.iter().any(|a| matches!(a, Action::Switch { .. })),
        "{end:?}"
    );
    assert_eq!(tv_layer(&r), Some(Forward::Video(Layer::Mid)));
    // Held at Mid now: the next try, after the first wait again, is High.
    r.tick(31_999);
    assert_eq!(tv_layer(&r), Some(Forward::Video(Layer::Mid)));
    r.tick(32_000);
    assert_eq!(tv_layer(&r), Some(Forward::Video(Layer::High)));
}

#[test]
fn a_try_that_the_estimate_does_not_follow_ends_and_the_next_waits_twice_as_long() {
    let mut r = held_low_from(0);
    r.tick(10_000);
    assert_eq!(tv_layer(&r), Some(Forward::Video(Layer::Mid)));
    // Flat estimate through the window: back to Low at its end.
    r.set_estimate(&p("TV"), 400_000, 15_000);
    r.tick(22_000);
    assert_eq!(tv_layer(&r), Some(Forward::Video(Layer::Low)));
    // The next try waits 20 s, not 10.
    r.tick(41_999);
    assert_eq!(tv_layer(&r), Some(Forward::Video(Layer::Low)));
    r.tick(42_000);
    assert_eq!(tv_layer(&r), Some(Forward::Video(Layer::Mid)));
    // A try whose estimate falls ends at once, and the wait doubles again (40 s).
    r.set_estimate(&p("TV"), 300_000, 43_000);
    assert_eq!(tv_layer(&r), Some(Forward::Video(Layer::Low)));
    r.tick(82_999);
    assert_eq!(tv_layer(&r), Some(Forward::Video(Layer::Low)));
    r.tick(83_000);
    assert_eq!(tv_layer(&r), Some(Forward::Video(Layer::Mid)));
}

#[test]
fn an_estimate_that_climbs_by_itself_is_never_tried_and_thumbnails_never_are() {
    let mut r = sitting();
    r.set_floor(Some(p("S01")), 0);
    // The SFU's own estimate (transport-wide feedback): no tries.
    r.set_estimate(&p("TV"), 400_000, 0);
    for t in (0..200_000).step_by(1_000) {
        r.tick(t);
        assert_eq!(tv_layer(&r), Some(Forward::Video(Layer::Low)));
    }
    // A console's thumbnails are at the lowest layer by design, not held by its estimate.
    r.set_probing(&p("CONSOLE"), true, 0);
    r.set_estimate(&p("CONSOLE"), 50_000_000, 0);
    for t in (0..60_000).step_by(1_000) {
        r.tick(t);
        assert_eq!(
            r.forwarding(S79_VIDEO, &p("CONSOLE")),
            Some(Forward::Video(Layer::Low))
        );
    }
}

#[test]
fn a_bandwidth_drop_switches_the_layer_and_asks_for_a_keyframe_of_it() {
    let mut r = sitting();
    r.set_floor(Some(p("S01")), 0);
    r.set_estimate(&p("TV"), 3_000_000, 1000);
    let actions = r.set_estimate(&p("TV"), 400_000, 2000);
    assert_eq!(
        actions,
        vec![
            Action::Switch {
                track: S01_VIDEO,
                to: p("TV"),
                layer: Layer::Low
            },
            Action::RequestKeyframe {
                track: S01_VIDEO,
                layer: Layer::Low
            },
        ]
    );
}

#[test]
fn keyframe_requests_are_throttled_per_track_and_layer_and_sent_when_allowed() {
    let mut r = sitting();
    r.set_floor(Some(p("S01")), 0);
    r.set_estimate(&p("TV"), 3_000_000, 1000);
    r.set_estimate(&p("TV"), 400_000, 2000); // keyframe Low at 2000
    r.set_estimate(&p("S79"), 3_000_000, 2100);
    let again = r.set_estimate(&p("S79"), 400_000, 2200);
    assert!(
        !again
            .iter()
            .any(|a| matches!(a, Action::RequestKeyframe { .. })),
        "a second Low keyframe within 500 ms waits: {again:?}"
    );
    assert!(r.tick(2400).is_empty());
    assert_eq!(
        r.tick(2500),
        vec![Action::RequestKeyframe {
            track: S01_VIDEO,
            layer: Layer::Low
        }]
    );
    assert!(r.tick(3100).is_empty(), "sent once");
}

#[test]
fn a_subscribers_keyframe_request_goes_upstream_only_for_what_it_receives_and_is_throttled() {
    let mut r = sitting();
    r.set_floor(Some(p("S01")), 0);
    // Whatever the floor change held back goes out first.
    r.tick(5_000);
    assert_eq!(
        r.request_keyframe(S01_VIDEO, &p("TV"), 10_000),
        [Action::RequestKeyframe {
            track: S01_VIDEO,
            layer: Layer::High
        }]
    );
    assert!(
        r.request_keyframe(S01_VIDEO, &p("DEP"), 10_100).is_empty(),
        "throttled"
    );
    assert!(
        r.request_keyframe(S79_VIDEO, &p("TV"), 20_000).is_empty(),
        "the display does not receive that picture"
    );
    assert!(r.request_keyframe(S01_MIC, &p("TV"), 20_000).is_empty());
}

#[test]
fn a_new_subscriber_starts_with_a_keyframe_of_each_picture() {
    let mut r = sitting();
    let actions = r.join(p("TV2"), Kind::Display, false, 10_000);
    assert!(actions.contains(&Action::Start {
        track: HALL_VIDEO,
        to: p("TV2"),
        forward: Forward::Video(Layer::High)
    }));
    assert!(actions.contains(&Action::Start {
        track: HALL_AUDIO,
        to: p("TV2"),
        forward: Forward::Audio
    }));
    assert!(actions.contains(&Action::RequestKeyframe {
        track: HALL_VIDEO,
        layer: Layer::High
    }));
}

#[test]
fn a_participant_that_leaves_stops_everything_it_sent_and_received() {
    let mut r = sitting();
    r.set_floor(Some(p("S01")), 0);
    let actions = r.leave(&p("S01"), 5);
    assert!(actions.iter().all(|a| matches!(a, Action::Stop { .. })));
    assert!(
        r.forwarded()
            .all(|((t, to), _)| *t != S01_MIC && *t != S01_VIDEO && to != &p("S01"))
    );
    // The floor may still name it; nothing is forwarded for a track that no longer exists.
    assert!(receivers(&r, S01_MIC).is_empty());
}

#[test]
fn overload_lowers_ordinary_receivers_to_the_lowest_layer_first_and_never_the_protected() {
    let mut r = sitting();
    r.set_floor(Some(p("S01")), 0);
    let actions = r.set_shed(
        Shed {
            low_layers: true,
            video_off: 0,
        },
        1_000,
    );
    let layer = |r: &Router, who: &str| r.forwarding(S01_VIDEO, &p(who));
    for who in ["S79", "DEP", "TV"] {
        assert_eq!(layer(&r, who), Some(Forward::Video(Layer::Low)), "{who}");
    }
    for who in ["HALL", "CHAIR"] {
        assert_eq!(layer(&r, who), Some(Forward::Video(Layer::High)), "{who}");
    }
    assert!(actions.contains(&Action::RequestKeyframe {
        track: S01_VIDEO,
        layer: Layer::Low
    }));
    // Nothing else changes: every sound still reaches the same receivers.
    assert_eq!(
        receivers(&r, S01_MIC),
        ["HALL", "S79", "DEP", "CHAIR", "CONSOLE", "TV"]
    );
}

#[test]
fn overload_takes_the_picture_from_displays_then_remote_deputies_then_rooms_latest_first() {
    let mut r = sitting();
    assert_eq!(r.shedding_order(), [p("TV"), p("DEP"), p("S79"), p("S01")]);
    // (shed, who still sees the hall, who still hears it)
    let table: [(usize, &[&str]); 5] = [
        (0, &["S01", "S79", "DEP", "CHAIR", "CONSOLE", "TV"]),
        (1, &["S01", "S79", "DEP", "CHAIR", "CONSOLE"]),
        (2, &["S01", "S79", "CHAIR", "CONSOLE"]),
        (3, &["S01", "CHAIR", "CONSOLE"]),
        (99, &["CHAIR", "CONSOLE"]),
    ];
    for (n, sees) in table {
        r.set_shed(
            Shed {
                low_layers: true,
                video_off: n,
            },
            10,
        );
        assert_eq!(receivers(&r, HALL_VIDEO), sees, "video_off {n}");
        assert_eq!(
            receivers(&r, HALL_AUDIO),
            ["S01", "S79", "DEP", "CHAIR", "CONSOLE", "TV"],
            "sound is never shed (video_off {n})"
        );
    }
}

#[test]
fn the_floor_holder_and_the_site_carrying_them_are_never_shed() {
    let mut r = sitting();
    r.set_speaker(Some(p("DEP")), Some(p("S79")), 0);
    // DEP publishes a microphone: it is the speaker; S79 is still protected as their site.
    assert!(r.protected(&p("DEP")) && r.protected(&p("S79")));
    assert_eq!(r.shedding_order(), [p("TV"), p("S01")]);
    r.set_shed(
        Shed {
            low_layers: true,
            video_off: 99,
        },
        10,
    );
    assert_eq!(
        receivers(&r, HALL_VIDEO),
        ["S79", "DEP", "CHAIR", "CONSOLE"]
    );
    // The floor moves on: DEP becomes ordinary and is shed at once.
    r.set_floor(None, 20);
    assert_eq!(receivers(&r, HALL_VIDEO), ["CHAIR", "CONSOLE"]);
}

#[test]
fn ending_the_overload_restores_exactly_what_was_forwarded() {
    let mut r = sitting();
    r.set_floor(Some(p("S01")), 0);
    let before: BTreeMap<_, _> = r.forwarded().map(|(k, f)| (k.clone(), *f)).collect();
    r.set_shed(
        Shed {
            low_layers: true,
            video_off: 3,
        },
        10,
    );
    assert_ne!(
        before,
        r.forwarded().map(|(k, f)| (k.clone(), *f)).collect()
    );
    r.set_shed(Shed::default(), 20);
    let after: BTreeMap<_, _> = r.forwarded().map(|(k, f)| (k.clone(), *f)).collect();
    assert_eq!(before, after);
}

#[derive(Debug, Clone)]
enum Op {
    Floor(Option<usize>),
    Speaker(usize, usize),
    Mute(usize, bool),
    Estimate(usize, u64),
    Leave(usize),
    Join(usize),
    Shed(bool, usize),
    Tick,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (prop::option::of(0usize..7)).prop_map(Op::Floor),
        (0usize..7, 0usize..7).prop_map(|(d, s)| Op::Speaker(d, s)),
        (0usize..7, any::<bool>()).prop_map(|(i, m)| Op::Mute(i, m)),
        (0usize..7, 50_000u64..5_000_000).prop_map(|(i, e)| Op::Estimate(i, e)),
        (0usize..7).prop_map(Op::Leave),
        (0usize..7).prop_map(Op::Join),
        (any::<bool>(), 0usize..8).prop_map(|(l, n)| Op::Shed(l, n)),
        Just(Op::Tick),
    ]
}

proptest! {
    #[test]
    fn the_floor_is_always_enforced_and_incremental_state_matches_a_fresh_derivation(ops in prop::collection::vec(op(), 1..60)) {
        let mut r = sitting();
        let kinds = [Kind::Chamber, Kind::Site, Kind::Site, Kind::RemoteDeputy, Kind::RemoteDeputy, Kind::ChairConsole, Kind::Display];
        let mut now = 0;
        for o in ops {
            now += 37;
            match o {
                Op::Floor(i) => { r.set_floor(i.map(|i| p(EVERYONE[i])), now); }
                Op::Speaker(d, s) => { r.set_speaker(Some(p(EVERYONE[d])), Some(p(EVERYONE[s])), now); }
                Op::Mute(i, m) => { r.set_muted(&p(EVERYONE[i]), m, now); }
                Op::Estimate(i, e) => { r.set_estimate(&p(EVERYONE[i]), e, now); }
                Op::Leave(i) => { r.leave(&p(EVERYONE[i]), now); }
                Op::Join(i) => { r.join(p(EVERYONE[i]), kinds[i], EVERYONE[i] == "CHAIR", now); }
                Op::Shed(l, n) => { r.set_shed(Shed { low_layers: l, video_off: n }, now); }
                Op::Tick => { r.tick(now); }
            }
            // Shedding never takes sound, nor anything from a protected receiver.
            let mut unshed = r.clone();
            unshed.set_shed(Shed::default(), now);
            let kept = |r: &Router| -> BTreeSet<(TrackId, ParticipantId)> {
                r.current.keys().filter(|(t, to)| r.tracks[t].media == Media::Audio || r.protected(to)).cloned().collect()
            };
            prop_assert_eq!(kept(&r), kept(&unshed));
            for ((track, to), _) in r.forwarded() {
                let t = &r.tracks[track];
                prop_assert_ne!(&t.owner, to, "a track is never sent back to its owner");
                let owner = &r.participants[&t.owner];
                let sub = &r.participants[to];
                // The floor is carried by the deputy, or by their site while they publish no
                // microphone of their own.
                let deputy = r.floor.as_ref();
                let deputy_mic = r.tracks.values().any(|x| Some(&x.owner) == deputy && x.media == Media::Audio);
                let carries = deputy == Some(&t.owner) || (!deputy_mic && r.floor_site.as_ref() == Some(&t.owner));
                let may_be_heard = owner.kind == Kind::Chamber || owner.presiding || carries;
                if t.media == Media::Audio && !may_be_heard {
                    prop_assert_eq!(sub.kind, Kind::ChairConsole, "a microphone without the floor reached {:?}", to);
                    prop_assert!(!r.muted.contains(&t.owner));
                }
            }
            // Layers may legitimately differ with history (hysteresis), but the set of
            // forwarded pairs must equal a fresh derivation.
            let mut fresh = r.clone();
            fresh.current.clear();
            fresh.reconcile(now);
            let a: BTreeSet<_> = r.current.keys().collect();
            let b: BTreeSet<_> = fresh.current.keys().collect();
            prop_assert_eq!(a, b);
        }
    }
}

#[test]
fn a_programme_line_carries_the_speaker_or_the_chamber_and_two_lines_carry_both() {
    use ProgrammeLine::{First, Only, Second};
    let mut r = sitting();
    let tv = p("TV");
    let source = |r: &Router, media, line| r.programme_source(&tv, media, line).map(|(t, _)| t);
    // Nobody has the floor: the chamber, on one line or on the first of two.
    for (media, line, expected) in [
        (Media::Audio, Only, Some(HALL_AUDIO)),
        (Media::Video, Only, Some(HALL_VIDEO)),
        (Media::Audio, First, Some(HALL_AUDIO)),
        (Media::Video, First, Some(HALL_VIDEO)),
        (Media::Audio, Second, None),
        (Media::Video, Second, None),
    ] {
        assert_eq!(source(&r, media, line), expected, "{media:?} {line:?}");
    }
    // A site has the floor: one line follows it, two lines keep the chamber on the first.
    r.set_floor(Some(p("S01")), 10);
    for (media, line, expected) in [
        (Media::Audio, Only, Some(S01_MIC)),
        (Media::Video, Only, Some(S01_VIDEO)),
        (Media::Audio, First, Some(HALL_AUDIO)),
        (Media::Video, First, Some(HALL_VIDEO)),
        (Media::Audio, Second, Some(S01_MIC)),
        (Media::Video, Second, Some(S01_VIDEO)),
    ] {
        assert_eq!(source(&r, media, line), expected, "{media:?} {line:?}");
    }
    // A remote deputy with a microphone but no camera: sound from them, the picture from
    // the chamber on a single line; the second picture line stays empty.
    r.set_floor(Some(p("DEP")), 20);
    for (media, line, expected) in [
        (Media::Audio, Only, Some(DEP_MIC)),
        (Media::Video, Only, Some(HALL_VIDEO)),
        (Media::Audio, Second, Some(DEP_MIC)),
        (Media::Video, Second, None),
    ] {
        assert_eq!(source(&r, media, line), expected, "{media:?} {line:?}");
    }
    // The chamber itself speaking is the first line's, never the second's.
    r.set_floor(Some(p("HALL")), 30);
    assert_eq!(source(&r, Media::Audio, Only), Some(HALL_AUDIO));
    assert_eq!(source(&r, Media::Audio, First), Some(HALL_AUDIO));
    assert_eq!(source(&r, Media::Audio, Second), None);
    // Nothing is forwarded to a receiver that is not there.
    assert_eq!(r.programme_source(&p("NOBODY"), Media::Audio, Only), None);
}
