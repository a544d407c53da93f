//! Table tests of the load governor, on a virtual clock.

use super::*;

/// One 250 ms interval at utilisation `u`, all of it forwarding `pps` packets/s, with
/// `sheddable` receivers getting 300 packets/s each (250 of them picture).
fn at(t: Millis, u: f64, pps: f64, sheddable: usize) -> Sample {
    Sample {
        at: t,
        busy_us: (u * 250_000.0) as u64,
        forwarding_us: (u * 250_000.0) as u64,
        elapsed_us: 250_000,
        forwarded: (pps / 4.0) as u64,
        receiver_pps: 300.0,
        receiver_video_pps: 250.0,
        sheddable,
    }
}

/// Feeds the same load for `ms`, every 250 ms from `from`; returns the time after.
fn hold(g: &mut Governor, from: Millis, ms: Millis, u: f64, pps: f64, n: usize) -> Millis {
    let mut t = from;
    while t < from + ms {
        t += 250;
        g.sample(&at(t, u, pps, n));
    }
    t
}

#[test]
fn capacity_is_estimated_from_measured_load_not_a_fixed_count() {
    let mut g = Governor::new(LoadTuning::default());
    assert!(!g.report().measured);
    assert_eq!(g.report().capacity_pps, 30_000.0, "the starting guess");
    // Half busy forwarding 20k/s: about 40k/s at full load.
    hold(&mut g, 0, 5_000, 0.5, 20_000.0, 64);
    let r = g.report();
    assert!(r.measured);
    assert!((r.capacity_pps - 40_000.0).abs() < 1_000.0, "{r:?}");
    assert!((r.utilisation - 0.5).abs() < 0.01);
    // 0.75 × 40k / 300 per receiver.
    assert_eq!(r.capacity_receivers, Some(100));
    // An idle thread says nothing about capacity: the estimate stays.
    hold(&mut g, 5_000, 5_000, 0.01, 100.0, 64);
    assert!((g.report().capacity_pps - 40_000.0).abs() < 1_000.0);
}

#[test]
fn overload_sheds_lower_layers_first_then_pictures_one_step_per_settling_period() {
    let mut g = Governor::new(LoadTuning::default());
    let n = 400;
    // The smoothed utilisation crosses the mark on the third 250 ms sample (750 ms); held
    // there for a second, the first step is taken, then a step each 500 ms, 1/8 of the
    // receivers each.
    let mut steps = Vec::new();
    let mut t = 0;
    for _ in 0..20 {
        t += 250;
        if let Some(s) = g.sample(&at(t, 1.0, 37_000.0, n)) {
            steps.push((t, s));
        }
    }
    let shed = |video_off| Shed {
        low_layers: true,
        video_off,
    };
    assert_eq!(
        steps[..6],
        [
            (1_750, shed(0)),
            (2_250, shed(50)),
            (2_750, shed(100)),
            (3_250, shed(150)),
            (3_750, shed(200)),
            (4_250, shed(250)),
        ]
    );
    // Never more than there are receivers to shed.
    let t = hold(&mut g, t, 10_000, 1.0, 37_000.0, n);
    assert_eq!(g.shed().video_off, n);
    // Receivers leave: the count follows.
    g.sample(&at(t + 250, 1.0, 37_000.0, 10));
    assert_eq!(g.shed().video_off, 10);
}

#[test]
fn a_burst_shorter_than_the_sustain_period_sheds_nothing() {
    let mut g = Governor::new(LoadTuning::default());
    // Saturated for 1.5 s (over the mark from 750 ms: 750 ms of it), then half busy.
    let t = hold(&mut g, 0, 1_500, 1.0, 37_000.0, 100);
    assert!(g.report().utilisation > 0.85);
    hold(&mut g, t, 10_000, 0.5, 18_000.0, 100);
    assert_eq!(g.shed(), Shed::default());
    // Two such bursts with a dip under the mark between them: the wait starts again.
    let mut g = Governor::new(LoadTuning::default());
    let t = hold(&mut g, 0, 1_500, 1.0, 37_000.0, 100);
    let t = hold(&mut g, t, 500, 0.3, 10_000.0, 100);
    assert!(g.report().utilisation < 0.85);
    hold(&mut g, t, 1_000, 1.0, 37_000.0, 100);
    assert_eq!(g.shed(), Shed::default());
}

#[test]
fn load_between_the_marks_changes_nothing() {
    let mut g = Governor::new(LoadTuning::default());
    let t = hold(&mut g, 0, 2_000, 1.0, 37_000.0, 100);
    // Once the smoothed load is down to 0.8.
    let t = hold(&mut g, t, 1_000, 0.8, 30_000.0, 100);
    let shed = g.shed();
    assert!(shed.active());
    hold(&mut g, t, 60_000, 0.8, 30_000.0, 100);
    assert_eq!(g.shed(), shed, "0.8 is neither over 0.85 nor under 0.75");
}

#[test]
fn after_a_long_burst_pictures_come_back_as_many_as_fit_under_the_mark() {
    // 100 receivers; sound and the rest cost 0.25 of the thread, each picture 0.0055 (220
    // packets/s of a 40k/s capacity): all pictures on is 0.8, under the 0.85 mark.
    let mut g = Governor::new(LoadTuning::default());
    let model = |t: Millis, video_off: usize| {
        let u = 0.25 + 0.0055 * (100 - video_off) as f64;
        let mut s = at(t, u, u * 40_000.0, 100);
        s.receiver_video_pps = 220.0;
        s
    };
    // The thread saturated for 3 s: pictures are shed.
    let mut t = hold(&mut g, 0, 3_000, 1.0, 40_000.0, 100);
    let worst = g.shed().video_off;
    assert_eq!(worst, 24);
    // Then the load is what the pictures cost. Pictures come back at most a step (12) at a
    // time, only as many as keep the load under 0.75, and the shedding never rises again.
    let mut seen = vec![worst];
    for _ in 0..(120_000 / 250) {
        t += 250;
        g.sample(&model(t, g.shed().video_off));
        if seen.last() != Some(&g.shed().video_off) {
            seen.push(g.shed().video_off);
        }
    }
    assert!(seen.windows(2).all(|w| w[1] < w[0]), "{seen:?}");
    // 24 off (0.668): a step of 12 fits; 12 off (0.734): 2 fit; 10 off: 0.745, and one more
    // would make 0.7505.
    assert_eq!(seen, [24, 12, 10]);
    assert!(g.report().utilisation < 0.75);
}

#[test]
fn calm_gives_back_one_step_per_calm_period_and_only_when_it_will_not_overload_again() {
    let mut g = Governor::new(LoadTuning::default());
    let t = hold(&mut g, 0, 2_600, 1.0, 40_000.0, 80);
    assert_eq!(
        g.shed(),
        Shed {
            low_layers: true,
            video_off: 20
        }
    );
    // Calm at 0.3 (capacity ≈ 40k/s): giving back 10 pictures adds 2.5k/s (≈ 0.06).
    let t1 = hold(&mut g, t, 4_750, 0.3, 12_000.0, 80);
    assert_eq!(g.shed().video_off, 20, "not calm for long enough yet");
    let t2 = hold(&mut g, t1, 750, 0.3, 12_000.0, 80);
    assert_eq!(g.shed().video_off, 10);
    let t3 = hold(&mut g, t2, 5_000, 0.3, 12_000.0, 80);
    assert_eq!(g.shed().video_off, 0);
    let _ = hold(&mut g, t3, 5_000, 0.3, 12_000.0, 80);
    assert_eq!(g.shed(), Shed::default(), "the layers come back last");

    // Calm at 0.54, but giving back a step of 10 pictures of 2,000 packets/s each would add
    // 0.5 of the 40k/s capacity: only the 4 that fit under 0.75 come back.
    let mut g = Governor::new(LoadTuning::default());
    let t = hold(&mut g, 0, 2_600, 1.0, 40_000.0, 80);
    assert_eq!(g.shed().video_off, 20);
    let mut heavy = at(t, 0.54, 21_600.0, 80);
    heavy.receiver_video_pps = 2_000.0;
    for k in 1..=24 {
        heavy.at = t + k * 250;
        g.sample(&heavy);
    }
    assert_eq!(g.shed().video_off, 16, "4 fit, 10 would overload again");
    // At 0.74 not even one fits: nothing comes back.
    let mut g = Governor::new(LoadTuning::default());
    let t = hold(&mut g, 0, 2_600, 1.0, 40_000.0, 80);
    heavy.forwarding_us = (0.74 * 250_000.0) as u64;
    heavy.busy_us = heavy.forwarding_us;
    for k in 1..60 {
        heavy.at = t + k * 250;
        g.sample(&heavy);
    }
    assert_eq!(g.shed().video_off, 20, "giving back would overload again");
}

#[test]
fn handshakes_cost_time_but_do_not_lower_the_capacity_estimate() {
    let mut g = Governor::new(LoadTuning::default());
    hold(&mut g, 0, 5_000, 0.5, 20_000.0, 64);
    // A burst of handshakes: the thread is 90 % busy, but still forwards 20k/s in the
    // same 50 % of its time.
    let mut burst = at(5_000, 0.9, 20_000.0, 64);
    burst.forwarding_us = 125_000;
    for k in 1..=20 {
        burst.at = 5_000 + k * 250;
        g.sample(&burst);
    }
    let r = g.report();
    assert!((r.capacity_pps - 40_000.0).abs() < 1_000.0, "{r:?}");
    assert!(
        r.utilisation > 0.85,
        "the busy time itself is what the thread can do"
    );
}

#[test]
fn new_receivers_are_admitted_while_there_is_room_counting_those_not_yet_measured() {
    let mut g = Governor::new(LoadTuning::default());
    // Capacity ≈ 40k/s at 0.25 busy: room for (0.75 − 0.25) × 40k / 300 ≈ 66 more now.
    let t = hold(&mut g, 0, 5_000, 0.25, 10_000.0, 30);
    let admitted = (0..200)
        .take_while(|k| g.admit(t, *k, false, 300.0) == Admission::Admit)
        .count() as u64;
    assert!((60..=70).contains(&admitted), "{admitted}");
    assert_eq!(g.report().pending_receivers, admitted as usize);
    assert_eq!(
        g.admit(t, 1_000, false, 300.0),
        Admission::Refuse { retry_after_s: 5 }
    );
    // One that leaves at once makes room for one more.
    g.release(0);
    assert_eq!(g.admit(t, 1_001, false, 300.0), Admission::Admit);
    assert!(matches!(
        g.admit(t, 1_002, false, 300.0),
        Admission::Refuse { .. }
    ));
    // The chamber, the chair and the floor holder are never refused.
    assert_eq!(g.admit(t, 1_003, true, 300.0), Admission::Admit);
    // Still handshaking after 10 s (a loaded server is slow to answer): still load to come.
    let t = hold(&mut g, t, 10_000, 0.25, 10_000.0, 30);
    assert!(matches!(
        g.admit(t, 1_004, false, 300.0),
        Admission::Refuse { .. }
    ));
    // They connect: once the samples can show them, room is judged on the samples again.
    for k in (1..admitted).chain([1_001, 1_003]) {
        g.connected(k, t);
    }
    let t = hold(&mut g, t, 1_500, 0.25, 10_000.0, 30);
    assert!(matches!(
        g.admit(t, 1_005, false, 300.0),
        Admission::Refuse { .. }
    ));
    let t = hold(&mut g, t, 750, 0.25, 10_000.0, 30);
    assert_eq!(g.report().pending_receivers, 0);
    assert_eq!(g.admit(t, 1_006, false, 300.0), Admission::Admit);
}

#[test]
fn a_receiver_that_never_connects_stops_counting_after_the_handshake_timeout() {
    let mut g = Governor::new(LoadTuning::default());
    let t = hold(&mut g, 0, 5_000, 0.25, 10_000.0, 30);
    let admitted = (0..200)
        .take_while(|k| g.admit(t, *k, false, 300.0) == Admission::Admit)
        .count();
    assert!(admitted > 0);
    let t = hold(&mut g, t, 14_750, 0.25, 10_000.0, 30);
    assert_eq!(g.report().pending_receivers, admitted);
    let t = hold(&mut g, t, 500, 0.25, 10_000.0, 30);
    assert_eq!(g.report().pending_receivers, 0);
    assert_eq!(g.admit(t, 500, false, 300.0), Admission::Admit);
}

#[test]
fn nobody_ordinary_is_admitted_while_pictures_are_shed() {
    let mut g = Governor::new(LoadTuning::default());
    let t = hold(&mut g, 0, 2_250, 1.0, 37_000.0, 100);
    assert!(g.shed().video_off > 0);
    assert!(matches!(
        g.admit(t, 1, false, 50.0),
        Admission::Refuse { .. }
    ));
    assert_eq!(g.admit(t, 2, true, 300.0), Admission::Admit);
}

#[test]
fn threads_reports_combine_as_the_busiest_thread_and_the_sums() {
    use crate::routing::Shed;
    let a = LoadReport {
        utilisation: 0.4,
        forwarded_pps: 10_000.0,
        capacity_pps: 25_000.0,
        admission_capacity_pps: 20_000.0,
        measured: true,
        capacity_receivers: Some(30),
        pending_receivers: 2,
        shed: Shed::default(),
    };
    let b = LoadReport {
        utilisation: 0.9,
        forwarded_pps: 20_000.0,
        capacity_pps: 22_000.0,
        admission_capacity_pps: 18_000.0,
        measured: false,
        capacity_receivers: None,
        pending_receivers: 1,
        shed: Shed {
            low_layers: true,
            video_off: 4,
        },
    };
    let all = LoadReport::combine(&[a, b]);
    assert!((all.utilisation - 0.9).abs() < 1e-9);
    assert!((all.forwarded_pps - 30_000.0).abs() < 1e-9);
    assert!((all.capacity_pps - 47_000.0).abs() < 1e-9);
    assert!((all.admission_capacity_pps - 38_000.0).abs() < 1e-9);
    assert!(!all.measured);
    assert_eq!(all.capacity_receivers, Some(30));
    assert_eq!(all.pending_receivers, 3);
    assert_eq!(
        all.shed,
        Shed {
            low_layers: true,
            video_off: 4
        }
    );
    assert_eq!(LoadReport::combine(&[a]), a);
    assert_eq!(LoadReport::combine(&[]), LoadReport::default());
}

#[test]
fn a_new_receiver_is_costed_at_the_programmes_recent_peak_not_a_short_sample() {
    let mut g = Governor::new(LoadTuning::default());
    assert_eq!(
        g.receiver_cost(),
        LoadTuning::default().unmeasured_receiver_pps,
        "nothing measured yet"
    );
    // A second of the programme at 300 packets/s per receiver.
    let t = hold(&mut g, 0, 1_000, 0.5, 20_000.0, 64);
    assert_eq!(g.receiver_cost(), 300.0);
    // A thread behind on its reading counts a fifth of it for one interval: a receiver
    // still costs the whole programme, and is refused where the short sample would let it
    // in.
    let mut low = at(t + 250, 0.74, 20_000.0, 64);
    low.receiver_pps = 60.0;
    g.sample(&low);
    assert_eq!(g.receiver_cost(), 300.0);
    let mut cheap = g.clone();
    let cost = g.receiver_cost();
    let admitted = (0..1_000)
        .take_while(|k| g.admit(t + 250, *k, false, cost) == Admission::Admit)
        .count();
    let admitted_cheap = (0..1_000)
        .take_while(|k| cheap.admit(t + 250, *k, false, 60.0) == Admission::Admit)
        .count();
    assert!(admitted > 0);
    assert!(
        admitted_cheap > 2 * admitted,
        "{admitted} against {admitted_cheap}"
    );
    // A programme that really became lighter is costed lighter once the window has passed.
    let mut t = t + 250;
    for _ in 0..RECEIVER_PEAK_INTERVALS {
        t += 250;
        let mut s = at(t, 0.5, 20_000.0, 64);
        s.receiver_pps = 60.0;
        g.sample(&s);
    }
    assert_eq!(g.receiver_cost(), 60.0);
}

#[test]
fn receivers_arriving_before_the_programme_is_measured_are_not_all_admitted() {
    // 400 ask at once, the moment the server starts: nothing published, nothing measured.
    let tuning = LoadTuning {
        unmeasured_receiver_pps: UNMEASURED_RECEIVER_PPS,
        ..LoadTuning::default()
    };
    let mut g = Governor::new(tuning);
    let cost = g.receiver_cost();
    let admitted = (0..400)
        .take_while(|k| g.admit(0, *k, false, cost) == Admission::Admit)
        .count();
    // The starting guess (30k packets/s) under the ceiling, at 300 packets/s each: 75.
    assert_eq!(admitted, 74, "cost {cost}");
    // The same once a sound-only programme (50 packets/s) is measured: more fit.
    let mut g = Governor::new(tuning);
    let mut t = 0;
    for _ in 0..4 {
        t += 250;
        let mut s = at(t, 0.05, 1_000.0, 0);
        s.receiver_pps = 50.0;
        g.sample(&s);
    }
    assert_eq!(g.receiver_cost(), 50.0);
    let cost = g.receiver_cost();
    let admitted = (0..1_000)
        .take_while(|k| g.admit(t, *k, false, cost) == Admission::Admit)
        .count();
    assert!(admitted > 300, "{admitted}");
}

#[test]
fn admission_costs_a_receiver_at_the_whole_busy_time_not_the_forwarding_alone() {
    // Forwarding 30k/s takes 0.4 of the thread, everything else the receivers bring
    // another 0.2: 75k/s by the forwarding time, 50k/s by the busy time.
    let mut g = Governor::new(LoadTuning::default());
    let mut s = at(0, 0.6, 30_000.0, 100);
    s.forwarding_us = 100_000;
    for k in 1..=20 {
        s.at = k * 250;
        g.sample(&s);
    }
    let r = g.report();
    assert!((r.capacity_pps - 75_000.0).abs() < 500.0, "{r:?}");
    assert!((r.admission_capacity_pps - 50_000.0).abs() < 500.0, "{r:?}");
    // Room under 0.75: 0.15 × 50k = 7,500 packets/s, 25 receivers of 300 (at 75k/s it
    // would have been 37).
    let admitted = (0..100)
        .take_while(|k| g.admit(s.at, *k, false, 300.0) == Admission::Admit)
        .count();
    assert!((24..=25).contains(&admitted), "{admitted}");
    assert_eq!(r.capacity_receivers, Some(125), "0.75 × 50k / 300");
}

#[test]
fn admission_starts_from_the_utilisation_of_the_last_two_seconds_not_a_passing_peak() {
    let mut g = Governor::new(LoadTuning::default());
    // Steady at 0.5 forwarding 20k/s (40k/s at full load), then one interval at 0.9.
    let t = hold(&mut g, 0, 5_000, 0.5, 20_000.0, 64);
    let mut peak = at(t + 250, 0.9, 20_000.0, 64);
    peak.forwarding_us = 125_000;
    g.sample(&peak);
    assert!(g.report().utilisation > 0.69, "the smoothed load jumps");
    // Averaged over 2 s it is 0.55: room for (0.75 − 0.55) × ~36k / 300 ≈ 24 (the busy
    // capacity dipped with the peak), not none.
    let admitted = (0..100)
        .take_while(|k| g.admit(peak.at, *k, false, 300.0) == Admission::Admit)
        .count();
    assert!((18..=26).contains(&admitted), "{admitted}");
}
