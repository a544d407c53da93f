//! TLS for every route (HTTP, the WebSocket, WHIP/WHEP): the certificate chain and key
//! read from PEM files into a rustls configuration, and read again on demand (SIGHUP)
//! without dropping a connection: connections already open keep the keys they agreed, new
//! ones get the new certificate.

use axum_server::tls_rustls::RustlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why the certificate or key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or holds no usable PEM block.
    #[error("{what} {path}: {reason}")]
    File {
        /// "certificate" or "private key".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the pair (for example, a key that does not match the certificate).
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The server's TLS settings, reloadable.
#[derive(Clone)]
pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    config: RustlsConfig,
}

impl Tls {
    /// Reads the certificate chain and key.
    pub fn load(cert: &Path, key: &Path) -> Result<Tls, TlsError> {
        let config = RustlsConfig::from_config(Arc::new(server_config(cert, key)?));
        Ok(Tls {
            cert: cert.to_owned(),
            key: key.to_owned(),
            config,
        })
    }

    /// Reads the files again; on error the certificate in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = server_config(&self.cert, &self.key)?;
        self.config.reload_from_config(Arc::new(fresh));
        Ok(())
    }

    /// The configuration the acceptor uses.
    pub(super) fn rustls(&self) -> RustlsConfig {
        self.config.clone()
    }
}

fn server_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, TlsError> {
    let file_error = |what: &'static str, path: &Path, reason: String| TlsError::File {
        what,
        path: path.to_owned(),
        reason,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| file_error("certificate", cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error("certificate", cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(file_error(
            "certificate",
            cert,
            "no CERTIFICATE block".into(),
        ));
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| file_error("private key", key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)?;
    // HTTP/1.1 only: browsers then open the WebSocket on an ordinary upgrade.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
