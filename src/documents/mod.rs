//! Documents as files: receiving an upload (streamed to a spool file while it is hashed and
//! checked, never held whole in memory), keeping it in the content-addressed blob store,
//! checking that a document names content that was really uploaded, reading it back
//! checked against its hash, and collecting uploads no document took.
//!
//! The routes are in `server/documents.rs`; the procedure (who may publish, who may read)
//! stays in [`crate::sitting`].

pub mod blobs;
pub mod extract;
pub mod fold;
pub mod link;
pub mod range;
pub mod search;
pub mod sniff;

use crate::sitting::{Code, Command, Millis, Rejection};
use crate::store::{BlobRecord, Store, StoreError};
use blobs::{BlobError, BlobStore};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use sniff::{Head, Kind, TextCheck};
use std::collections::BTreeSet;
use std::path::PathBuf;
use tokio::io::AsyncWriteExt;

/// Why an upload was not kept.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// Over the configured limit; nothing was kept.
    #[error("the file is larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// Empty.
    #[error("the file is empty")]
    Empty,
    /// Its content is not one of the allowed types.
    #[error("the content is not an allowed type (PDF, DOCX, ODT, XLSX, plain text, PNG, JPEG)")]
    Unsupported,
    /// The upload broke off before its end; nothing was kept.
    #[error("the upload broke off: {0}")]
    Interrupted(String),
    /// The spool file failed.
    #[error("spool: {0}")]
    Spool(#[from] std::io::Error),
    /// The blob store failed.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Uploaded files and their storage.
#[derive(Debug)]
pub struct Documents {
    blobs: BlobStore,
    store: Store,
    spool: PathBuf,
    limits: Limits,
}

/// The limits on documents (from the `[documents]` settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest upload, in bytes.
    pub max_upload_bytes: u64,
    /// Most text indexed from one file, in bytes.
    pub index_text_bytes: usize,
    /// Longest search, in characters.
    pub search_query_chars: usize,
    /// Most hits answered to one search.
    pub search_max_hits: usize,
}

impl From<&crate::config::DocumentsConfig> for Limits {
    fn from(c: &crate::config::DocumentsConfig) -> Limits {
        Limits {
            max_upload_bytes: c.max_upload_bytes,
            index_text_bytes: c.index_text_bytes,
            search_query_chars: c.search_query_chars,
            search_max_hits: c.search_max_hits,
        }
    }
}

/// Removes a spool file when dropped (an upload that failed or was cancelled halfway).
struct SpoolFile(PathBuf);

impl Drop for SpoolFile {
    fn drop(&mut self) {
        // Already gone after a successful upload; a failure here leaves a file in the spool
        // folder, which start-up clears.
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Documents {
    /// Documents kept in `blobs`, recorded in `store`, spooled under `spool` (cleared now),
    /// within `limits`.
    pub fn new(
        blobs: BlobStore,
        store: Store,
        spool: PathBuf,
        limits: Limits,
    ) -> Result<Documents, std::io::Error> {
        if spool.exists() {
            std::fs::remove_dir_all(&spool)?;
        }
        std::fs::create_dir_all(&spool)?;
        Ok(Documents {
            blobs,
            store,
            spool,
            limits,
        })
    }

    /// The blob store.
    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// The limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Receives an upload: spools it while hashing it and counting its bytes (cut off past
    /// the limit), checks its type by content, stores it under its hash and records it.
    /// On any error nothing is kept.
    pub async fn receive<S, E>(&self, mut body: S, now: Millis) -> Result<BlobRecord, UploadError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let path = self.spool.join(uuid::Uuid::new_v4().to_string());
        let guard = SpoolFile(path.clone());
        let mut file = tokio::fs::File::create(&path).await?;
        let mut hasher = Sha256::new();
        let mut text = TextCheck::default();
        let mut first = Vec::with_capacity(16);
        let mut size: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| UploadError::Interrupted(e.to_string()))?;
            size += chunk.len() as u64;
            if size > self.limits.max_upload_bytes {
                return Err(UploadError::TooLarge {
                    limit: self.limits.max_upload_bytes,
                });
            }
            if first.len() < 16 {
                let take = (16 - first.len()).min(chunk.len());
                first.extend_from_slice(&chunk[..take]);
            }
            hasher.update(&chunk);
            text.feed(&chunk);
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        file.sync_all().await?;
        drop(file);
        if size == 0 {
            return Err(UploadError::Empty);
        }
        let kind = match sniff::head(&first) {
            Head::Known(k) => k,
            Head::MaybeText if text.is_text() => Kind::Text,
            Head::Zip => {
                let p = path.clone();
                tokio::task::spawn_blocking(move || {
                    std::fs::File::open(&p).ok().and_then(sniff::zip_kind)
                })
                .await
                .ok()
                .flatten()
                .ok_or(UploadError::Unsupported)?
            }
            Head::MaybeText | Head::Refused => return Err(UploadError::Unsupported),
        };
        let sha256 = hex::encode(hasher.finalize());
        self.blobs.put_file(&sha256, &path).await?;
        drop(guard);
        let record = BlobRecord {
            sha256,
            size,
            media_type: kind.media_type().to_owned(),
            created_at: now,
        };
        if !self.store.add_blob(&record).await? {
            // The same bytes were uploaded before: answer with the first record.
            if let Some(first) = self.store.blob(&record.sha256).await? {
                return Ok(first);
            }
        }
        tracing::info!(blob = %record.sha256, size, media_type = %record.media_type, "upload stored");
        Ok(record)
    }

    /// Checks that a document command names content that was uploaded, with its real size
    /// and media type. Other commands pass. `Err(Ok(_))` is the refusal, `Err(Err(_))` a
    /// store failure.
    pub async fn check_command(
        &self,
        command: &Command,
    ) -> Result<(), Result<Rejection, StoreError>> {
        let (size, media_type, sha256) = match command {
            Command::PublishDocument {
                size,
                media_type,
                sha256,
                ..
            }
            | Command::SupersedeDocument {
                size,
                media_type,
                sha256,
                ..
            } => (*size, media_type, sha256),
            _ => return Ok(()),
        };
        if !blobs::is_sha256_hex(sha256) {
            // The rules give the precise refusal.
            return Ok(());
        }
        let Some(blob) = self.store.blob(sha256).await.map_err(Err)? else {
            return Err(Ok(Rejection::new(
                Code::NoSuchBlob,
                format!("no uploaded file has the hash {sha256}; upload it first"),
            )));
        };
        if blob.size != size || blob.media_type != *media_type {
            return Err(Ok(Rejection::new(
                Code::BlobMismatch,
                format!(
                    "the uploaded file {sha256} is {} bytes of {}, not {size} bytes of {media_type}",
                    blob.size, blob.media_type
                ),
            )));
        }
        Ok(())
    }

    /// Removes uploads that no document names (`referenced`) and that are older than
    /// `grace_before` (so an upload waiting for its `publish_document` is kept). Returns how
    /// many were removed.
    pub async fn collect_orphans(
        &self,
        referenced: &BTreeSet<String>,
        grace_before: Millis,
    ) -> Result<usize, UploadError> {
        let mut removed = 0;
        for b in self.store.blobs().await? {
            if referenced.contains(&b.sha256) || b.created_at >= grace_before {
                continue;
            }
            self.blobs.delete(&b.sha256).await?;
            self.store.remove_blob(&b.sha256).await?;
            tracing::info!(blob = %b.sha256, "collected an upload no document took");
            removed += 1;
        }
        // Bytes stored without a record (a crash between storing and recording), once they
        // are as old as the grace period (an upload may be between the two right now).
        let recorded: BTreeSet<String> = self
            .store
            .blobs()
            .await?
            .into_iter()
            .map(|b| b.sha256)
            .collect();
        for (sha, written) in self.blobs.list().await? {
            if !recorded.contains(&sha) && !referenced.contains(&sha) && written < grace_before.0 {
                self.blobs.delete(&sha).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// Why indexing stopped.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The log could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The index failed.
    #[error(transparent)]
    Search(#[from] search::SearchError),
}

impl Documents {
    /// Indexes the document versions a sitting's log published after `after` that are not
    /// indexed yet, with the text of their files; returns the last sequence number read.
    /// A file that cannot be read (missing, or not matching its hash) is indexed by its title
    /// alone, and said in the log.
    pub async fn index_sitting(
        &self,
        index: &search::SearchIndex,
        sitting: &crate::sitting::SittingId,
        after: u64,
    ) -> Result<u64, IndexError> {
        let mut last = after;
        loop {
            let page = self.store.events_after(sitting, last, 1_000).await?;
            let Some(end) = page.last().map(|e| e.seq) else {
                return Ok(last);
            };
            let mut entries = Vec::new();
            for e in &page {
                let crate::sitting::Event::DocumentPublished {
                    document,
                    version,
                    item,
                    title,
                    media_type,
                    sha256,
                    ..
                } = &e.event
                else {
                    continue;
                };
                if index.has(sitting.as_str(), document.0, *version) {
                    continue;
                }
                let text = self.text_of(sitting, sha256, media_type).await;
                entries.push(search::Entry {
                    sitting: sitting.as_str().to_owned(),
                    document: document.0,
                    version: *version,
                    item: item.0,
                    media_type: media_type.clone(),
                    published_at: e.at.0,
                    title: title.clone(),
                    text,
                });
            }
            if !entries.is_empty() {
                tracing::info!(sitting = %sitting, versions = entries.len(), "indexed documents");
                index.add(&entries)?;
            }
            last = end;
        }
    }

    /// The text of a stored file for the index ("" when it cannot be read).
    async fn text_of(
        &self,
        sitting: &crate::sitting::SittingId,
        sha256: &str,
        media_type: &str,
    ) -> String {
        let Some(kind) = Kind::from_media_type(media_type) else {
            return String::new();
        };
        let bytes = match self.blobs.check(sha256).await {
            Ok(blobs::Checked::InMemory(b)) => b,
            Ok(blobs::Checked::Large { size }) => {
                let mut all = Vec::new();
                match self.blobs.stream(sha256, 0..size).await {
                    Ok(mut s) => {
                        while let Some(chunk) = s.next().await {
                            match chunk {
                                Ok(c) => all.extend_from_slice(&c),
                                Err(_) => return String::new(),
                            }
                        }
                    }
                    Err(_) => return String::new(),
                }
                Bytes::from(all)
            }
            Err(e) => {
                tracing::warn!(sitting = %sitting, blob = sha256, error = %e, "a document's file cannot be read for the index: its title only");
                return String::new();
            }
        };
        let max = self.limits.index_text_bytes;
        tokio::task::spawn_blocking(move || extract::text(kind, &bytes, max))
            .await
            .unwrap_or_default()
    }
}
