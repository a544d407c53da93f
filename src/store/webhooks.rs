//! What the store keeps for webhooks: each endpoint's cursor per sitting (the last sequence
//! number it was told of, advanced only after a 2xx), the ranges asked to be delivered
//! again, and the log of every attempt.

use super::{Backend, Store, StoreError, to_i64};
use crate::sitting::{Millis, SittingId};
use serde::Serialize;

/// A range of a sitting's log to deliver again to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replay {
    /// Its number.
    pub id: i64,
    /// The sitting.
    pub sitting: SittingId,
    /// The next sequence number to deliver.
    pub next_seq: u64,
    /// The last one.
    pub last_seq: u64,
}

/// One attempt to deliver an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    /// Its number in the log (0 before it is recorded).
    pub id: i64,
    /// The endpoint.
    pub endpoint: String,
    /// The sitting.
    pub sitting: String,
    /// The event's sequence number.
    pub seq: u64,
    /// The event's kind.
    pub kind: String,
    /// Asked for again by an operator.
    pub replay: bool,
    /// 1 for the first try of this delivery.
    pub attempt: u32,
    /// When it was made.
    pub at: Millis,
    /// The HTTP status answered, if any.
    pub status: Option<u16>,
    /// What went wrong; none for a 2xx.
    pub error: Option<String>,
    /// How long it took, in milliseconds.
    pub millis: u64,
}

type AttemptRow = (
    i64,
    String,
    String,
    i64,
    String,
    bool,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    i64,
);

impl Store {
    /// The last sequence number `endpoint` was told of in `sitting`, if it has started.
    pub async fn webhook_cursor(
        &self,
        endpoint: &str,
        sitting: &SittingId,
    ) -> Result<Option<u64>, StoreError> {
        let row: Option<(i64,)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT delivered_seq FROM webhook_cursors WHERE endpoint = $1 AND sitting = $2",
        )
        .bind(endpoint)
        .bind(sitting.as_str())
        .fetch_optional(pool)
        .await?);
        Ok(row.map(|(s,)| u64::try_from(s).unwrap_or(0)))
    }

    /// Moves the cursor of `endpoint` in `sitting` to `seq`.
    pub async fn set_webhook_cursor(
        &self,
        endpoint: &str,
        sitting: &SittingId,
        seq: u64,
    ) -> Result<(), StoreError> {
        with_pool!(self, pool => sqlx::query(
            "INSERT INTO webhook_cursors (endpoint, sitting, delivered_seq) VALUES ($1, $2, $3) \
             ON CONFLICT (endpoint, sitting) DO UPDATE SET delivered_seq = excluded.delivered_seq",
        )
        .bind(endpoint)
        .bind(sitting.as_str())
        .bind(to_i64(seq))
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Asks for `first..=last` of `sitting` to be delivered to `endpoint` again; its number.
    pub async fn add_webhook_replay(
        &self,
        endpoint: &str,
        sitting: &SittingId,
        first: u64,
        last: u64,
        asked_by: &str,
        at: Millis,
    ) -> Result<i64, StoreError> {
        let (id,): (i64,) = with_pool!(self, pool => sqlx::query_as(
            "INSERT INTO webhook_replays (endpoint, sitting, next_seq, last_seq, asked_by, asked_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(endpoint)
        .bind(sitting.as_str())
        .bind(to_i64(first))
        .bind(to_i64(last))
        .bind(asked_by)
        .bind(at.0)
        .fetch_one(pool)
        .await?);
        Ok(id)
    }

    /// The oldest replay still to finish for `endpoint`.
    pub async fn next_webhook_replay(&self, endpoint: &str) -> Result<Option<Replay>, StoreError> {
        let row: Option<(i64, String, i64, i64)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT id, sitting, next_seq, last_seq FROM webhook_replays WHERE endpoint = $1 ORDER BY id LIMIT 1",
        )
        .bind(endpoint)
        .fetch_optional(pool)
        .await?);
        Ok(row.map(|(id, sitting, next, last)| Replay {
            id,
            sitting: SittingId::new(sitting),
            next_seq: u64::try_from(next).unwrap_or(0),
            last_seq: u64::try_from(last).unwrap_or(0),
        }))
    }

    /// Records that a replay has delivered everything before `next_seq`; past its last, it
    /// is finished and removed.
    pub async fn advance_webhook_replay(
        &self,
        replay: &Replay,
        next_seq: u64,
    ) -> Result<(), StoreError> {
        if next_seq > replay.last_seq {
            with_pool!(self, pool => sqlx::query("DELETE FROM webhook_replays WHERE id = $1")
                .bind(replay.id)
                .execute(pool)
                .await?
                .rows_affected());
        } else {
            with_pool!(self, pool => sqlx::query("UPDATE webhook_replays SET next_seq = $1 WHERE id = $2")
                .bind(to_i64(next_seq))
                .bind(replay.id)
                .execute(pool)
                .await?
                .rows_affected());
        }
        Ok(())
    }

    /// Replays still to finish, per endpoint.
    pub async fn webhook_replays(&self, endpoint: &str) -> Result<Vec<Replay>, StoreError> {
        let rows: Vec<(i64, String, i64, i64)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT id, sitting, next_seq, last_seq FROM webhook_replays WHERE endpoint = $1 ORDER BY id",
        )
        .bind(endpoint)
        .fetch_all(pool)
        .await?);
        Ok(rows
            .into_iter()
            .map(|(id, sitting, next, last)| Replay {
                id,
                sitting: SittingId::new(sitting),
                next_seq: u64::try_from(next).unwrap_or(0),
                last_seq: u64::try_from(last).unwrap_or(0),
            })
            .collect())
    }

    /// Records an attempt in the delivery log.
    pub async fn add_webhook_attempt(&self, a: &Attempt) -> Result<(), StoreError> {
        with_pool!(self, pool => sqlx::query(
            "INSERT INTO webhook_attempts (endpoint, sitting, seq, kind, replay, attempt, at_ms, status, error, millis) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&a.endpoint)
        .bind(&a.sitting)
        .bind(to_i64(a.seq))
        .bind(&a.kind)
        .bind(a.replay)
        .bind(i64::from(a.attempt))
        .bind(a.at.0)
        .bind(a.status.map(i64::from))
        .bind(&a.error)
        .bind(to_i64(a.millis))
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Removes attempts made before `before` from the delivery log; how many.
    pub async fn prune_webhook_attempts(&self, before: Millis) -> Result<u64, StoreError> {
        Ok(
            with_pool!(self, pool => sqlx::query("DELETE FROM webhook_attempts WHERE at_ms < $1")
            .bind(before.0)
            .execute(pool)
            .await?
            .rows_affected()),
        )
    }

    /// The delivery log of `endpoint`: attempts after number `after`, oldest first.
    pub async fn webhook_attempts(
        &self,
        endpoint: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Attempt>, StoreError> {
        let rows: Vec<AttemptRow> = with_pool!(self, pool => sqlx::query_as(
            "SELECT id, endpoint, sitting, seq, kind, replay, attempt, at_ms, status, error, millis \
             FROM webhook_attempts WHERE endpoint = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(endpoint)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?);
        Ok(rows
            .into_iter()
            .map(
                |(id, endpoint, sitting, seq, kind, replay, attempt, at, status, error, millis)| {
                    Attempt {
                        id,
                        endpoint,
                        sitting,
                        seq: u64::try_from(seq).unwrap_or(0),
                        kind,
                        replay,
                        attempt: u32::try_from(attempt).unwrap_or(u32::MAX),
                        at: Millis(at),
                        status: status.and_then(|s| u16::try_from(s).ok()),
                        error,
                        millis: u64::try_from(millis).unwrap_or(0),
                    }
                },
            )
            .collect())
    }
}
