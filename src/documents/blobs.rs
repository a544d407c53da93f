//! Content-addressed blob storage behind one interface (`object_store`): a folder by default,
//! an S3-compatible bucket in production. A blob lives at `blobs/<first two hex>/<sha256>`,
//! so the same bytes are stored once; every read checks the bytes against the hash they are
//! named by, and a mismatch is an error, never served.

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use sha2::{Digest, Sha256};
use std::ops::Range;
use std::sync::Arc;
use tokio::io::AsyncReadExt;

/// Blobs at most this large are read once into memory, checked and served from there;
/// larger ones are read twice (checked, then streamed).
const READ_IN_MEMORY: u64 = 8 * 1024 * 1024;
/// Size of each part written to the store.
const PART: usize = 5 * 1024 * 1024;

/// What went wrong with the blob store.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The store failed (I/O, network, permissions).
    #[error("blob store: {0}")]
    Store(#[from] object_store::Error),
    /// A local file failed.
    #[error("blob file: {0}")]
    Io(#[from] std::io::Error),
    /// No blob with that hash.
    #[error("no blob {0}")]
    Missing(String),
    /// The stored bytes do not hash to the name they are stored under.
    #[error("blob {0} does not match its hash: refused")]
    Tampered(String),
    /// The location could not be understood.
    #[error("blob store location: {0}")]
    Location(String),
}

/// The bytes of a blob, checked against its hash.
pub enum Checked {
    /// The whole blob, read once.
    InMemory(Bytes),
    /// A blob too large to hold: checked by one read, served by another.
    Large {
        /// Its size.
        size: u64,
    },
}

/// The blob store.
#[derive(Clone, Debug)]
pub struct BlobStore {
    inner: Arc<dyn ObjectStore>,
    description: String,
}

/// Whether `s` is a SHA-256 in lowercase hex.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn location(sha256: &str) -> StorePath {
    StorePath::from(format!("blobs/{}/{sha256}", &sha256[..2]))
}

impl BlobStore {
    /// A store over a local folder (made if missing).
    pub fn folder(dir: &std::path::Path) -> Result<BlobStore, BlobError> {
        std::fs::create_dir_all(dir)?;
        let fs = object_store::local::LocalFileSystem::new_with_prefix(dir)?;
        Ok(BlobStore {
            inner: Arc::new(fs),
            description: format!("folder {}", dir.display()),
        })
    }

    /// A store at a URL (`file:///…`, `s3://bucket/prefix`, …), with options such as
    /// `aws_endpoint`, `aws_access_key_id`, `aws_allow_http`.
    pub fn at_url(url: &str, options: &[(String, String)]) -> Result<BlobStore, BlobError> {
        let parsed = url::Url::parse(url).map_err(|e| BlobError::Location(e.to_string()))?;
        if parsed.scheme() == "file" {
            let dir = parsed
                .to_file_path()
                .map_err(|()| BlobError::Location(format!("{url} is not a local path")))?;
            return Self::folder(&dir);
        }
        // The S3 client's TLS (rustls, through reqwest) uses the process's provider: ring, as
        // everywhere else in the server (a no-op when one is installed already).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (store, prefix) = object_store::parse_url_opts(&parsed, options.iter().cloned())?;
        let store: Arc<dyn ObjectStore> = if prefix.as_ref().is_empty() {
            Arc::from(store)
        } else {
            Arc::new(object_store::prefix::PrefixStore::new(store, prefix))
        };
        Ok(BlobStore {
            inner: store,
            description: format!("{}://{}", parsed.scheme(), parsed.host_str().unwrap_or("")),
        })
    }

    /// What the store is, for the log (no secrets).
    pub fn describe(&self) -> &str {
        &self.description
    }

    /// Whether a blob is stored, and its size.
    pub async fn size(&self, sha256: &str) -> Result<Option<u64>, BlobError> {
        match self.inner.head(&location(sha256)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Stores a local file, whose hash the caller computed, under that hash (nothing is
    /// written if the same bytes are stored already).
    pub async fn put_file(&self, sha256: &str, file: &std::path::Path) -> Result<(), BlobError> {
        if self.size(sha256).await?.is_some() {
            return Ok(());
        }
        let upload = self.inner.put_multipart(&location(sha256)).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
        let mut f = tokio::fs::File::open(file).await?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match f.read(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    writer.abort().await.ok();
                    return Err(e.into());
                }
            };
            if n == 0 {
                break;
            }
            writer.wait_for_capacity(4).await?;
            writer.write(&buf[..n]);
        }
        writer.finish().await?;
        Ok(())
    }

    /// Reads a whole blob and checks it against its hash.
    pub async fn check(&self, sha256: &str) -> Result<Checked, BlobError> {
        let got = match self.inner.get(&location(sha256)).await {
            Ok(g) => g,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(BlobError::Missing(sha256.to_owned()));
            }
            Err(e) => return Err(e.into()),
        };
        let size = got.meta.size;
        let keep = size <= READ_IN_MEMORY;
        let mut kept = Vec::with_capacity(if keep { size as usize } else { 0 });
        let mut hasher = Sha256::new();
        let mut stream = got.into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            hasher.update(&chunk);
            if keep {
                kept.extend_from_slice(&chunk);
            }
        }
        if hex::encode(hasher.finalize()) != sha256 {
            tracing::error!(blob = sha256, "stored blob does not match its hash");
            return Err(BlobError::Tampered(sha256.to_owned()));
        }
        Ok(if keep {
            Checked::InMemory(Bytes::from(kept))
        } else {
            Checked::Large { size }
        })
    }

    /// Streams a range of a blob (after [`BlobStore::check`]).
    pub async fn stream(
        &self,
        sha256: &str,
        range: Range<u64>,
    ) -> Result<
        impl futures_util::Stream<Item = Result<Bytes, object_store::Error>> + use<>,
        BlobError,
    > {
        let options = object_store::GetOptions {
            range: Some(object_store::GetRange::Bounded(range)),
            ..Default::default()
        };
        Ok(self
            .inner
            .get_opts(&location(sha256), options)
            .await?
            .into_stream())
    }

    /// Every stored blob's hash, with when it was written (milliseconds since the epoch).
    pub async fn list(&self) -> Result<Vec<(String, i64)>, BlobError> {
        let mut out = Vec::new();
        let prefix = StorePath::from("blobs");
        let mut listing = self.inner.list(Some(&prefix));
        while let Some(meta) = listing.next().await {
            let meta = meta?;
            if let Some(name) = meta.location.filename()
                && is_sha256_hex(name)
            {
                out.push((name.to_owned(), meta.last_modified.timestamp_millis()));
            }
        }
        Ok(out)
    }

    /// Removes a blob (missing is fine).
    pub async fn delete(&self, sha256: &str) -> Result<(), BlobError> {
        match self.inner.delete(&location(sha256)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
