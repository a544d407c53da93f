//! The audit chain in the store: appended in order by one task, read by the chair and the
//! clerks, checked by `verify`. Same hashing as a sitting's log
//! (`hash = sha256(previous hash ‖ body)`), in its own table.

use super::{
    Backend, Head, Row0, Store, StoreError, Verification, check_link, hash_of, parse_bodies,
    to_i64, to_u64,
};
use crate::audit::{AuditEntry, AuditRecord};
use crate::sitting::Millis;

impl Store {
    /// The head of the audit chain.
    pub async fn audit_head(&self) -> Result<Head, StoreError> {
        let row: Option<(i64, Vec<u8>)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
        )
        .fetch_optional(pool)
        .await?);
        Ok(match row {
            Some((seq, hash)) => Head {
                seq: to_u64(seq),
                hash: hash.as_slice().try_into().unwrap_or([0; 32]),
            },
            None => Head::EMPTY,
        })
    }

    /// Appends entries after `head` in one transaction; returns the new head. A head that
    /// moved makes the insert fail on the sequence number, and nothing is written.
    pub async fn append_audit(
        &self,
        head: &Head,
        entries: &[(Millis, AuditEntry)],
    ) -> Result<Head, StoreError> {
        let mut rows = Vec::with_capacity(entries.len());
        let mut prev = head.hash;
        let mut seq = head.seq;
        for (at, entry) in entries {
            seq += 1;
            let body = serde_json::to_string(&AuditRecord {
                seq,
                at: *at,
                entry: entry.clone(),
            })?;
            let hash = hash_of(&prev, body.as_bytes());
            rows.push((seq, at.0, body, prev, hash));
            prev = hash;
        }
        with_pool!(self, pool => {
            let mut tx = super::begin_write(pool).await?;
            for (seq, at, body, prev, hash) in &rows {
                sqlx::query(
                    "INSERT INTO audit (seq, at_ms, body, prev_hash, hash) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(to_i64(*seq))
                .bind(*at)
                .bind(body)
                .bind(prev.as_slice())
                .bind(hash.as_slice())
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(Head { seq, hash: prev })
    }

    /// Audit entries after `after`, at most `limit`.
    pub async fn audit_after(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let rows: Vec<(i64, String)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT seq, body FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(to_i64(after))
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?);
        parse_bodies(rows, "audit entry")
    }

    /// Walks the audit chain: every row's links, hash and body.
    pub async fn verify_audit(&self) -> Result<Verification, StoreError> {
        const PAGE: i64 = 2000;
        let mut head = Head::EMPTY;
        loop {
            let rows: Vec<(i64, String, Vec<u8>, Vec<u8>)> = with_pool!(self, pool => sqlx::query_as(
                "SELECT seq, body, prev_hash, hash FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2",
            )
            .bind(to_i64(head.seq))
            .bind(PAGE)
            .fetch_all(pool)
            .await?);
            let n = rows.len();
            for (seq, body, prev_hash, hash) in rows {
                let expect = head.seq + 1;
                let row = Row0 {
                    seq,
                    body,
                    prev_hash,
                    hash,
                };
                let checked =
                    check_link(&row, expect, &head.hash).and_then(
                        |()| match serde_json::from_str::<AuditRecord>(&row.body) {
                            Ok(r) if r.seq == expect => Ok(()),
                            Ok(r) => Err(format!("body names seq {}", r.seq)),
                            Err(e) => Err(format!("body does not parse: {e}")),
                        },
                    );
                if let Err(reason) = checked {
                    return Ok(Verification::Broken {
                        seq: expect,
                        reason,
                    });
                }
                head = Head {
                    seq: expect,
                    hash: row.hash.as_slice().try_into().unwrap_or([0; 32]),
                };
            }
            if (n as i64) < PAGE {
                return Ok(Verification::Ok { events: head.seq });
            }
        }
    }
}
