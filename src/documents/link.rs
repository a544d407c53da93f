//! Links that open one document version for one reader for a while: what the browser's own
//! PDF viewer follows (it cannot send a bearer token). A link names the sitting, document,
//! version and reader, and when it ends, signed with a key the server holds; the reader's
//! right to read is checked again on every request made with it. Pure: the key and the clock
//! come from the caller.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// What a link grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Sitting.
    pub s: String,
    /// Document.
    pub d: u32,
    /// Version.
    pub v: u32,
    /// Reader (actor id).
    pub a: String,
    /// Ends at (milliseconds since the epoch).
    pub exp: i64,
}

/// Why a link does not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Not a link this server made (or altered).
    #[error("not a valid link")]
    Invalid,
    /// It ran out.
    #[error("the link has expired")]
    Expired,
}

fn mac(key: &[u8; 32], body: &str) -> Vec<u8> {
    // HMAC takes a key of any length.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key");
    m.update(body.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// The token of a link.
pub fn sign(key: &[u8; 32], grant: &Grant) -> String {
    let body = B64.encode(serde_json::to_vec(grant).unwrap_or_default());
    let tag = B64.encode(mac(key, &body));
    format!("{body}.{tag}")
}

/// What a token grants, if this key signed it and it has not run out at `now`.
pub fn verify(key: &[u8; 32], token: &str, now: i64) -> Result<Grant, LinkError> {
    let (body, tag) = token.split_once('.').ok_or(LinkError::Invalid)?;
    let tag = B64.decode(tag).map_err(|_| LinkError::Invalid)?;
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).map_err(|_| LinkError::Invalid)?;
    m.update(body.as_bytes());
    m.verify_slice(&tag).map_err(|_| LinkError::Invalid)?;
    let bytes = B64.decode(body).map_err(|_| LinkError::Invalid)?;
    let grant: Grant = serde_json::from_slice(&bytes).map_err(|_| LinkError::Invalid)?;
    if now >= grant.exp {
        return Err(LinkError::Expired);
    }
    Ok(grant)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> Grant {
        Grant {
            s: "ky-hop-1".into(),
            d: 3,
            v: 2,
            a: "DB001".into(),
            exp: 1_000,
        }
    }

    #[test]
    fn a_link_opens_until_it_runs_out() {
        let key = [7u8; 32];
        let token = sign(&key, &grant());
        assert_eq!(verify(&key, &token, 999), Ok(grant()));
        assert_eq!(verify(&key, &token, 1_000), Err(LinkError::Expired));
    }

    #[test]
    fn another_key_or_an_altered_link_does_not_open() {
        let key = [7u8; 32];
        let token = sign(&key, &grant());
        assert_eq!(verify(&[8u8; 32], &token, 0), Err(LinkError::Invalid));
        let mut other = grant();
        other.d = 4;
        let forged_body = sign(&[8u8; 32], &other);
        let (body, _) = forged_body.split_once('.').unwrap_or_default();
        let (_, tag) = token.split_once('.').unwrap_or_default();
        assert_eq!(
            verify(&key, &format!("{body}.{tag}"), 0),
            Err(LinkError::Invalid)
        );
        for junk in ["", ".", "abc", "a.b", "{}.{}"] {
            assert_eq!(verify(&key, junk, 0), Err(LinkError::Invalid), "{junk}");
        }
    }
}
