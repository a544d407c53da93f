//! The event log against real databases: SQLite files always, PostgreSQL where a server
//! answers (required in CI). Each case runs the same suite on both.

mod support;

use dienhong::checkpoint::{Failure, Reason, Signer, judge};
use dienhong::sitting::{
    Access, ActorId, Choice, Command, Event, ItemId, Method, Millis, SpeechKind, VoteId,
};
use dienhong::store::{Head, Recorded, Store, StoreError, Verification};
use support::{CHAIR, CLERK, Log, TestDb, deputy, raw_dump, raw_execute};

/// A sitting with attendance, the floor, a named vote (with a changed ballot and one
/// recorded on behalf), a secret vote and a document.
async fn scripted(store: Store) -> Log {
    let mut log = Log::new(store, "s1", 10).await;
    log.ok(CHAIR, Command::OpenSitting).await;
    for n in 1..=9 {
        log.ok(
            deputy(n).as_str(),
            Command::CheckIn {
                deputy: deputy(n),
                location: None,
            },
        )
        .await;
    }
    log.ok(
        CLERK,
        Command::CheckIn {
            deputy: deputy(10),
            location: None,
        },
    )
    .await;
    log.ok(
        CHAIR,
        Command::CheckIn {
            deputy: ActorId::new(CHAIR),
            location: None,
        },
    )
    .await;
    log.ok(CHAIR, Command::SetCurrentItem { item: ItemId(2) })
        .await;
    log.ok(
        deputy(3).as_str(),
        Command::RequestFloor {
            kind: SpeechKind::Discussion,
        },
    )
    .await;
    log.ok(
        CHAIR,
        Command::GrantFloor {
            request: dienhong::sitting::RequestId(1),
        },
    )
    .await;
    log.now = Millis(log.now.0 + 500_000);
    log.ok("system", Command::Tick).await;
    log.ok(
        CLERK,
        Command::PublishDocument {
            item: ItemId(2),
            title: "Tờ trình".into(),
            media_type: "application/pdf".into(),
            size: 1234,
            sha256: "ab".repeat(32),
            file_name: None,
            access: Access::Deputies,
        },
    )
    .await;
    log.ok(
        CHAIR,
        Command::OpenVote {
            question: "Thông qua?".into(),
            method: Method::Named,
            rule: None,
            window_secs: Some(120),
            allow_change: None,
            rerun_of: None,
            step_up: None,
        },
    )
    .await;
    for n in 1..=8 {
        let choice = if n <= 6 { Choice::Yes } else { Choice::No };
        log.ok(
            deputy(n).as_str(),
            Command::CastBallot {
                vote: VoteId(1),
                choice,
            },
        )
        .await;
    }
    log.ok(
        deputy(7).as_str(),
        Command::CastBallot {
            vote: VoteId(1),
            choice: Choice::Yes,
        },
    )
    .await;
    log.ok(
        CLERK,
        Command::RecordBallot {
            vote: VoteId(1),
            deputy: deputy(9),
            choice: Choice::Abstain,
            reason: "thiết bị hỏng".into(),
        },
    )
    .await;
    log.ok(CHAIR, Command::CloseVote { vote: VoteId(1) }).await;
    log.ok(
        CHAIR,
        Command::OpenVote {
            question: "Bầu".into(),
            method: Method::Secret,
            rule: None,
            window_secs: Some(120),
            allow_change: None,
            rerun_of: None,
            step_up: None,
        },
    )
    .await;
    for n in 1..=9 {
        let choice = [Choice::Yes, Choice::No, Choice::Abstain][(n % 3) as usize];
        log.ok(
            deputy(n).as_str(),
            Command::CastBallot {
                vote: VoteId(2),
                choice,
            },
        )
        .await;
    }
    log.now = Millis(log.now.0 + 200_000);
    log.ok("system", Command::Tick).await;
    log
}

async fn replay_reproduces_the_state_and_the_chain_verifies(db: &TestDb) {
    let store = Store::open(&db.url).await.expect("open");
    let log = scripted(store.clone()).await;
    let (state, head) = store.replay(&log.sitting).await.expect("replay");
    assert_eq!(state, log.state);
    assert_eq!(head, log.head);
    assert_eq!(
        store.verify(&log.sitting).await.expect("verify"),
        Verification::Ok { events: head.seq }
    );
    // A second store instance (a restart) sees exactly the same.
    store.close().await;
    let again = Store::open(&db.url).await.expect("reopen");
    let (state2, head2) = again.replay(&log.sitting).await.expect("replay");
    assert_eq!(state2, log.state);
    assert_eq!(head2, head);
    let vote2 = &state2.votes[&VoteId(2)];
    assert_eq!(vote2.participants.len(), 9);
    assert_eq!(
        (vote2.tally.yes, vote2.tally.no, vote2.tally.abstain),
        (3, 3, 3)
    );
    again.close().await;
}

async fn a_stale_head_is_a_conflict_and_writes_nothing(db: &TestDb) {
    let store = Store::open(&db.url).await.expect("open");
    let log = scripted(store.clone()).await;
    let stale = Head {
        seq: log.head.seq - 1,
        hash: [7; 32],
    };
    let events = vec![Event::SittingClosed];
    let who = ActorId::new(CHAIR);
    let err = store
        .append(
            &log.sitting,
            &stale,
            &[Recorded {
                at: log.now,
                actor: &who,
                command_id: None,
                events: &events,
            }],
        )
        .await
        .expect_err("stale head refused");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert_eq!(store.head(&log.sitting).await.expect("head"), log.head);
    store.close().await;
}

async fn group_commit_returns_each_commands_last_sequence_number(db: &TestDb) {
    let store = Store::open(&db.url).await.expect("open");
    let log = scripted(store.clone()).await;
    let (a, b) = (ActorId::new(CHAIR), ActorId::new(CLERK));
    let one = vec![Event::SittingSuspended {
        reason: "nghỉ".into(),
    }];
    let none: Vec<Event> = Vec::new();
    let two = vec![
        Event::SittingResumed,
        Event::CurrentItemSet { item: ItemId(3) },
    ];
    let (head, seqs) = store
        .append(
            &log.sitting,
            &log.head,
            &[
                Recorded {
                    at: log.now,
                    actor: &a,
                    command_id: Some("c1"),
                    events: &one,
                },
                Recorded {
                    at: log.now,
                    actor: &b,
                    command_id: Some("c2"),
                    events: &none,
                },
                Recorded {
                    at: log.now,
                    actor: &a,
                    command_id: Some("c3"),
                    events: &two,
                },
            ],
        )
        .await
        .expect("group append");
    let s = log.head.seq;
    assert_eq!(seqs, vec![s + 1, s + 1, s + 3]);
    assert_eq!(head.seq, s + 3);
    let tail = store.events_after(&log.sitting, s, 10).await.expect("tail");
    assert_eq!(
        tail.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![s + 1, s + 2, s + 3]
    );
    assert_eq!(tail[0].command_id.as_deref(), Some("c1"));
    assert_eq!(tail[2].event, Event::CurrentItemSet { item: ItemId(3) });
    assert_eq!(
        store.verify(&log.sitting).await.expect("verify"),
        Verification::Ok { events: s + 3 }
    );
    store.close().await;
}

async fn an_edited_row_is_named_by_verify(db: &TestDb) {
    let store = Store::open(&db.url).await.expect("open");
    let log = scripted(store.clone()).await;
    let target = store
        .events_after(&log.sitting, 0, 1000)
        .await
        .expect("events")
        .into_iter()
        .find(|e| {
            matches!(
                &e.event,
                Event::BallotCast {
                    choice: Choice::No,
                    ..
                }
            )
        })
        .expect("a no ballot")
        .seq;
    store.close().await;
    let changed = raw_execute(
        &db.url,
        &format!("UPDATE events SET body = replace(body, '\"choice\":\"no\"', '\"choice\":\"yes\"') WHERE sitting = $1 AND seq = {target}"),
        &["s1"],
    )
    .await;
    assert_eq!(changed, 1);
    let store = Store::open(&db.url).await.expect("reopen");
    match store.verify(&log.sitting).await.expect("verify") {
        Verification::Broken { seq, .. } => assert_eq!(seq, target),
        ok => panic!("tampering not detected: {ok:?}"),
    }
    assert!(matches!(
        store.replay(&log.sitting).await,
        Err(StoreError::Corrupt { seq, .. }) if seq == target
    ));
    store.close().await;
}

async fn a_changed_secret_ballot_is_caught_by_verify(db: &TestDb) {
    let store = Store::open(&db.url).await.expect("open");
    let log = scripted(store.clone()).await;
    store.close().await;
    let closed_at = log.head.seq; // the last event is the secret vote's close
    let n = raw_execute(
        &db.url,
        "UPDATE ballot_box SET choice = 'yes' WHERE choice = 'no'",
        &[],
    )
    .await;
    assert!(n > 0);
    let store = Store::open(&db.url).await.expect("reopen");
    match store.verify(&log.sitting).await.expect("verify") {
        Verification::Broken { seq, reason } => {
            assert_eq!(seq, closed_at, "{reason}");
        }
        ok => panic!("ballot box tampering not detected: {ok:?}"),
    }
    store.close().await;
}

async fn no_stored_byte_links_a_deputy_to_a_secret_choice(db: &TestDb) {
    let store = Store::open(&db.url).await.expect("open");
    let log = scripted(store.clone()).await;
    store.close().await;
    let (bodies, box_rows, box_cols) = raw_dump(&db.url).await;
    assert_eq!(box_cols, vec!["sitting", "token", "vote", "choice"]);
    assert_eq!(box_rows.len(), 9);
    let actors: Vec<String> = log
        .state
        .roster
        .actors
        .keys()
        .map(|a| a.0.clone())
        .collect();
    for row in &box_rows {
        for cell in row {
            assert!(
                !actors.iter().any(|a| cell.contains(a.as_str())),
                "box row names an actor: {row:?}"
            );
        }
    }
    for body in &bodies {
        let v: serde_json::Value = serde_json::from_str(body).expect("json");
        let event = &v["event"];
        assert_ne!(
            event["type"], "secret_choice",
            "a secret choice is in the chain"
        );
        if event["type"] == "secret_ballot_taken" {
            let keys: Vec<&String> = event.as_object().expect("object").keys().collect();
            assert_eq!(keys, vec!["deputy", "type", "vote"]);
        }
        // No chain event of the secret vote carries both a deputy and a choice.
        if event["vote"] == 2 && event.get("choice").is_some() {
            panic!("chain row ties a choice to vote 2: {body}");
        }
    }
}

/// Rewrites the chain from the first ballot of "yes" on, as someone with write access to
/// the database would: that ballot becomes "no" and every hash after it is recomputed, so
/// the chain is valid again. Returns the seq of the changed ballot.
async fn rewrite_a_ballot_with_a_valid_chain(url: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let (mut bodies, _, _) = raw_dump(url).await;
    let k = bodies
        .iter()
        .position(|b| b.contains("ballot_cast") && b.contains("\"choice\":\"yes\""))
        .expect("a yes ballot");
    bodies[k] = bodies[k].replacen("\"choice\":\"yes\"", "\"choice\":\"no\"", 1);
    let bytes = |h: &[u8; 32]| {
        if url.starts_with("sqlite:") {
            format!("X'{}'", hex::encode(h))
        } else {
            format!("decode('{}', 'hex')", hex::encode(h))
        }
    };
    let mut prev = [0u8; 32];
    for (i, body) in bodies.iter().enumerate() {
        let mut h = Sha256::new();
        h.update(prev);
        h.update(body.as_bytes());
        let hash: [u8; 32] = h.finalize().into();
        if i >= k {
            let sql = format!(
                "UPDATE events SET body = $1, prev_hash = {}, hash = {} WHERE sitting = 's1' AND seq = {}",
                bytes(&prev),
                bytes(&hash),
                i + 1
            );
            assert_eq!(raw_execute(url, &sql, &[body.as_str()]).await, 1);
        }
        prev = hash;
    }
    (k + 1) as u64
}

async fn a_checkpoint_catches_a_log_cut_short_or_rewritten_with_a_valid_chain(db: &TestDb) {
    let store = Store::open(&db.url).await.expect("open");
    let mut log = scripted(store.clone()).await;
    let (signer, _) = Signer::generate().expect("key");
    let epoch = store.sitting(&log.sitting).await.expect("meta").epoch;
    let sitting = log.sitting.clone();
    let sign = |head: Head| {
        signer.sign(
            &sitting,
            &epoch,
            head.seq,
            &head.hash,
            Millis(9_000_000),
            Reason::OnDemand,
        )
    };
    let after_votes = sign(log.head);
    log.ok(
        CHAIR,
        Command::AddAgendaItem {
            title: "Mục bổ sung".into(),
            position: None,
        },
    )
    .await;
    let at_end = sign(log.head);
    let judged = |cp: &dienhong::checkpoint::Checkpoint, facts: &dienhong::checkpoint::LogFacts| {
        judge(cp, Some(signer.public_key()), facts)
    };
    for cp in [&after_votes, &at_end] {
        let facts = store.log_facts(&log.sitting, cp.seq).await.expect("facts");
        assert_eq!(judged(cp, &facts), Ok(()));
    }

    // Cut short: the last event deleted. The chain that is left verifies; the checkpoint of
    // the end says what is missing, the earlier one still holds.
    let last = log.head.seq;
    let sql = format!("DELETE FROM events WHERE sitting = 's1' AND seq = {last}");
    assert_eq!(raw_execute(&db.url, &sql, &[]).await, 1);
    assert_eq!(
        store.verify(&log.sitting).await.expect("verify"),
        Verification::Ok { events: last - 1 }
    );
    let facts = store
        .log_facts(&log.sitting, at_end.seq)
        .await
        .expect("facts");
    assert_eq!(
        judged(&at_end, &facts),
        Err(Failure::Truncated {
            last: last - 1,
            seq: last
        })
    );
    let facts = store
        .log_facts(&log.sitting, after_votes.seq)
        .await
        .expect("facts");
    assert_eq!(judged(&after_votes, &facts), Ok(()));

    // Rewritten with another ballot and a valid chain: verify passes, the checkpoint does not.
    let changed = rewrite_a_ballot_with_a_valid_chain(&db.url).await;
    assert!(changed < after_votes.seq);
    assert!(matches!(
        store.verify(&log.sitting).await.expect("verify"),
        Verification::Ok { .. }
    ));
    let facts = store
        .log_facts(&log.sitting, after_votes.seq)
        .await
        .expect("facts");
    let failure = judged(&after_votes, &facts).expect_err("caught");
    assert!(
        matches!(failure, Failure::Rewritten { seq, .. } if seq == after_votes.seq),
        "{failure}"
    );
    // Another sitting's name, or a replaced log, is named as such.
    let mut elsewhere = after_votes.clone();
    elsewhere.sitting = dienhong::sitting::SittingId::new("s2");
    let facts = store.log_facts(&elsewhere.sitting, 1).await.expect("facts");
    assert_eq!(facts.epoch, None);
    store.close().await;
}

/// The audit trail and a sitting write to the same database at once: neither write fails
/// (on SQLite a transaction that reads before it writes must wait for the other writer, not
/// fail because the other committed after its read began).
async fn audit_and_sitting_writes_at_once_both_succeed(db: &TestDb) {
    use dienhong::audit::AuditEntry;
    let store = Store::open(&db.url).await.expect("open");
    let mut log = Log::new(store.clone(), "s1", 10).await;
    let audit = store.clone();
    let writing = tokio::spawn(async move {
        let mut head = audit.audit_head().await.expect("head");
        for i in 0..300 {
            head = audit
                .append_audit(&head, &[(Millis(i), AuditEntry::login_failed("DB001"))])
                .await
                .expect("audit append");
        }
        head
    });
    for i in 0..150 {
        log.ok(
            CHAIR,
            Command::AddAgendaItem {
                title: format!("Mục {i}"),
                position: None,
            },
        )
        .await;
    }
    let head = writing.await.expect("join");
    assert_eq!(head.seq, 300);
    assert_eq!(
        store.verify_audit().await.expect("verify"),
        Verification::Ok { events: 300 }
    );
    store.close().await;
}

async fn unsupported_urls_are_refused_clearly() {
    let err = Store::open("mysql://x").await.expect_err("refused");
    assert!(matches!(err, StoreError::InvalidUrl(_)));
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let db = super::TestDb::sqlite();
                    super::$name(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(db) = super::TestDb::postgres().await else { return };
                    super::$name(&db).await;
                    db.drop_db().await;
                }
            )*
        }
    };
}

on_both!(
    replay_reproduces_the_state_and_the_chain_verifies,
    a_stale_head_is_a_conflict_and_writes_nothing,
    group_commit_returns_each_commands_last_sequence_number,
    an_edited_row_is_named_by_verify,
    a_changed_secret_ballot_is_caught_by_verify,
    no_stored_byte_links_a_deputy_to_a_secret_choice,
    a_checkpoint_catches_a_log_cut_short_or_rewritten_with_a_valid_chain,
    audit_and_sitting_writes_at_once_both_succeed,
);

#[tokio::test]
async fn an_unsupported_url_is_refused() {
    unsupported_urls_are_refused_clearly().await;
}

#[tokio::test]
async fn the_verify_command_names_the_edited_sequence_number() {
    let db = TestDb::sqlite();
    let store = Store::open(&db.url).await.expect("open");
    let log = scripted(store.clone()).await;
    store.close().await;
    let bin = env!("CARGO_BIN_EXE_dienhong");
    let run = || {
        std::process::Command::new(bin)
            .args(["verify", "--database", &db.url])
            .output()
            .expect("verify runs")
    };
    let out = run();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().next(),
        Some(format!("ok {} events", log.head.seq).as_str())
    );
    let target = 7u64;
    let n = raw_execute(
        &db.url,
        "UPDATE events SET at_ms = at_ms + 1, body = replace(body, '\"at\":', '\"at\": ') WHERE sitting = 's1' AND seq = 7",
        &[],
    )
    .await;
    assert_eq!(n, 1);
    let out = run();
    assert!(
        !out.status.success(),
        "verify must exit non-zero on a broken chain"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with(&format!("broken at seq {target}:")),
        "{stdout}"
    );
}
