//! Development certificates (`dienhong dev-cert`, `dienhong demo --tls`): a small local
//! certificate authority and a server certificate it signs for this machine's names and
//! addresses, so that a phone on the same network can open the deputy app over HTTPS (a
//! browser allows the camera and microphone only in a secure context).
//!
//! The phone trusts the authority (`dev-ca.pem`) once; the server certificate can then be
//! made again for new addresses without touching the phone. Made with rcgen; nothing here is
//! meant for production, where the certificate comes from the parliament's own CA.

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData,
};
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Lifetime of a development certificate: within what phones accept for a server
/// certificate trusted by hand (825 days).
const VALID_DAYS: i64 = 397;

/// Why a development certificate could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum DevCertError {
    /// rcgen refused a name or failed to sign.
    #[error("making the certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// A file could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// A development authority and the server certificate it signed.
pub struct DevCert {
    /// The authority's certificate, PEM: what a phone or browser is told to trust.
    pub ca_pem: String,
    /// The server's certificate chain (server certificate, then the authority), PEM.
    pub chain_pem: String,
    /// The server's private key, PEM.
    pub key_pem: String,
    /// The names and addresses the server certificate is valid for.
    pub names: Vec<String>,
    /// SHA-256 of the server key's SubjectPublicKeyInfo, base64: what Chromium's
    /// `--ignore-certificate-errors-spki-list` takes to trust this server in one profile.
    pub spki_sha256: String,
    /// SHA-256 fingerprint of the authority's certificate, hex with colons, to compare on
    /// the phone before trusting it.
    pub ca_fingerprint: String,
}

/// Where `dev-cert` writes in `dir`: the authority, the chain and the key.
pub struct DevCertFiles {
    /// The authority's certificate.
    pub ca: PathBuf,
    /// The server's chain.
    pub cert: PathBuf,
    /// The server's key.
    pub key: PathBuf,
}

impl DevCertFiles {
    /// The files in `dir`.
    pub fn in_dir(dir: &Path) -> DevCertFiles {
        DevCertFiles {
            ca: dir.join("dev-ca.pem"),
            cert: dir.join("dev-cert.pem"),
            key: dir.join("dev-key.pem"),
        }
    }

    /// Whether the chain and key are both there.
    pub fn exist(&self) -> bool {
        self.cert.is_file() && self.key.is_file()
    }
}

/// The names this machine is reached by: `localhost`, its host name, loopback, and every
/// address of an interface that is up, plus `extra`. Sorted, without duplicates.
pub fn machine_names(extra: &[String]) -> Vec<String> {
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let host = host.trim();
        if !host.is_empty() {
            names.push(host.to_owned());
        }
    }
    if let Ok(ifaces) = if_addrs::get_if_addrs() {
        for i in ifaces {
            let ip = i.ip();
            let link_local_v6 = matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local());
            if !i.is_loopback() && !link_local_v6 {
                names.push(ip.to_string());
            }
        }
    }
    names.extend(extra.iter().cloned());
    names.sort();
    names.dedup();
    names
}

/// Makes an authority and a server certificate for `names`, valid from `now_unix` seconds.
pub fn generate(names: &[String], now_unix: i64) -> Result<DevCert, DevCertError> {
    let now = time::OffsetDateTime::from_unix_timestamp(now_unix)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let not_before = now - time::Duration::days(1);
    let not_after = now + time::Duration::days(VALID_DAYS);

    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.distinguished_name = name_of("dienhong development CA");
    ca.not_before = not_before;
    ca.not_after = not_after;
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, &ca_key);

    let key = KeyPair::generate()?;
    let mut server = CertificateParams::new(names.to_vec())?;
    server.distinguished_name = name_of("dienhong development server");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server.not_before = not_before;
    server.not_after = not_after;
    let server_cert = server.signed_by(&key, &issuer)?;

    let b64 = base64::engine::general_purpose::STANDARD;
    let ca_fingerprint = Sha256::digest(ca_cert.der())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    Ok(DevCert {
        ca_pem: ca_cert.pem(),
        chain_pem: format!("{}{}", server_cert.pem(), ca_cert.pem()),
        key_pem: key.serialize_pem(),
        names: names.to_vec(),
        spki_sha256: b64.encode(Sha256::digest(key.subject_public_key_info())),
        ca_fingerprint,
    })
}

fn name_of(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "dienhong");
    dn
}

/// Writes the authority, chain and key into `dir` (made if missing); the key readable by
/// its owner only.
pub fn write(cert: &DevCert, dir: &Path) -> Result<DevCertFiles, DevCertError> {
    let files = DevCertFiles::in_dir(dir);
    let write = |path: &Path, text: &str, private: bool| -> Result<(), DevCertError> {
        let fail = |source| DevCertError::Write {
            path: path.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(fail)?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        if private {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        #[cfg(not(unix))]
        let _ = private;
        use std::io::Write;
        options
            .open(path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(fail)
    };
    write(&files.key, &cert.key_pem, true)?;
    write(&files.cert, &cert.chain_pem, false)?;
    write(&files.ca, &cert.ca_pem, false)?;
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_holds_the_server_then_the_authority_and_the_names_are_kept() {
        let names = vec!["localhost".to_owned(), "192.168.1.20".to_owned()];
        let c = generate(&names, 1_796_000_000).expect("generated");
        assert_eq!(c.chain_pem.matches("BEGIN CERTIFICATE").count(), 2);
        assert!(c.chain_pem.ends_with(&c.ca_pem));
        assert!(c.key_pem.contains("PRIVATE KEY"));
        assert_eq!(c.names, names);
        assert_eq!(c.ca_fingerprint.split(':').count(), 32);
        // Two runs make two different keys.
        let d = generate(&names, 1_796_000_000).expect("generated");
        assert_ne!(c.spki_sha256, d.spki_sha256);
    }

    #[test]
    fn a_name_that_is_not_a_host_name_is_refused() {
        assert!(generate(&["máy-chủ.vn".to_owned()], 0).is_err());
    }

    #[test]
    fn the_machine_is_reached_by_localhost_and_loopback_at_least() {
        let names = machine_names(&["dienhong.test".to_owned()]);
        for n in ["localhost", "127.0.0.1", "::1", "dienhong.test"] {
            assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
        }
        let mut sorted = names.clone();
        sorted.dedup();
        assert_eq!(sorted, names);
    }
}
