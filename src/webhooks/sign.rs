//! The signature on a delivery: HMAC-SHA256 over the timestamp, a dot and the body, sent as
//! `Dienhong-Signature: t=<unix seconds>,v1=<hex>`. A receiver recomputes it with the
//! shared secret and refuses a delivery whose timestamp is too old (a replayed capture).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header that carries the signature.
pub const HEADER: &str = "dienhong-signature";

/// The header value for `body` sent at `unix_secs`.
pub fn header(secret: &[u8], unix_secs: i64, body: &[u8]) -> String {
    format!(
        "t={unix_secs},v1={}",
        hex::encode(mac(secret, unix_secs, body))
    )
}

fn mac(secret: &[u8], unix_secs: i64, body: &[u8]) -> [u8; 32] {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mut m = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return [0; 32],
    };
    m.update(unix_secs.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m.finalize().into_bytes().into()
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The header is not `t=…,v1=…`.
    #[error("malformed signature header")]
    Malformed,
    /// The timestamp is further from now than the tolerance.
    #[error("timestamp outside the tolerance")]
    Stale,
    /// The MAC does not match.
    #[error("signature does not match")]
    Mismatch,
}

/// Checks a signature header as a receiver would: the MAC over the body and a timestamp
/// within `tolerance_secs` of `now_secs`.
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now_secs: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1 = hex::decode(v).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return Err(SignatureError::Malformed);
    };
    if (now_secs - t).abs() > tolerance_secs {
        return Err(SignatureError::Stale);
    }
    let expected = mac(secret, t, body);
    if subtle::ConstantTimeEq::ct_eq(&expected[..], &v1[..]).into() {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_checks_out_only_with_its_secret_body_and_a_recent_time() {
        let h = header(b"s3cret-s3cret-s3cret", 1_000, br#"{"seq":1}"#);
        assert!(h.starts_with("t=1000,v1="));
        assert_eq!(
            verify(b"s3cret-s3cret-s3cret", &h, br#"{"seq":1}"#, 1_100, 300),
            Ok(())
        );
        assert_eq!(
            verify(b"s3cret-s3cret-s3cret", &h, br#"{"seq":2}"#, 1_100, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"another-secret-here!", &h, br#"{"seq":1}"#, 1_100, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"s3cret-s3cret-s3cret", &h, br#"{"seq":1}"#, 2_000, 300),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(b"s3cret-s3cret-s3cret", "v1=00", b"", 1_000, 300),
            Err(SignatureError::Malformed)
        );
        // The timestamp is signed too: moving it breaks the MAC.
        let moved = h.replacen("t=1000", "t=1001", 1);
        assert_eq!(
            verify(b"s3cret-s3cret-s3cret", &moved, br#"{"seq":1}"#, 1_000, 300),
            Err(SignatureError::Mismatch)
        );
    }
}
