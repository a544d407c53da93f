//! Uploaded blobs in the store: one row per distinct content (its SHA-256 hex), with its size
//! and the media type found in its bytes. The bytes themselves live in the blob store
//! ([`crate::documents`]).

use super::{Backend, Store, StoreError};
use crate::sitting::Millis;

/// One uploaded blob as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRecord {
    /// SHA-256 of the content, lowercase hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Media type found in the content.
    pub media_type: String,
    /// When it was first uploaded.
    pub created_at: Millis,
}

impl Store {
    /// Records a blob; `false` if it was recorded already (the same bytes uploaded again).
    pub async fn add_blob(&self, b: &BlobRecord) -> Result<bool, StoreError> {
        let size = i64::try_from(b.size).unwrap_or(i64::MAX);
        let inserted = with_pool!(self, pool => sqlx::query(
            "INSERT INTO blobs (sha256, size, media_type, created_at_ms) VALUES ($1, $2, $3, $4) ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(&b.sha256)
        .bind(size)
        .bind(&b.media_type)
        .bind(b.created_at.0)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(inserted == 1)
    }

    /// The blob with this hash, if one was uploaded.
    pub async fn blob(&self, sha256: &str) -> Result<Option<BlobRecord>, StoreError> {
        let row: Option<(i64, String, i64)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT size, media_type, created_at_ms FROM blobs WHERE sha256 = $1",
        )
        .bind(sha256)
        .fetch_optional(pool)
        .await?);
        Ok(row.map(|(size, media_type, at)| BlobRecord {
            sha256: sha256.to_owned(),
            size: u64::try_from(size).unwrap_or(0),
            media_type,
            created_at: Millis(at),
        }))
    }

    /// Every blob recorded, oldest first.
    pub async fn blobs(&self) -> Result<Vec<BlobRecord>, StoreError> {
        let rows: Vec<(String, i64, String, i64)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT sha256, size, media_type, created_at_ms FROM blobs ORDER BY created_at_ms, sha256",
        )
        .fetch_all(pool)
        .await?);
        Ok(rows
            .into_iter()
            .map(|(sha256, size, media_type, at)| BlobRecord {
                sha256,
                size: u64::try_from(size).unwrap_or(0),
                media_type,
                created_at: Millis(at),
            })
            .collect())
    }

    /// Forgets a blob (after its bytes were collected).
    pub async fn remove_blob(&self, sha256: &str) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query("DELETE FROM blobs WHERE sha256 = $1")
                .bind(sha256)
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}
