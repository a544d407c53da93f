//! Authentication: argon2 password hashes and short-lived signed bearer tokens.
//!
//! Tokens are `base64url(claims JSON) "." base64url(HMAC-SHA256(key, claims JSON))`. The
//! key is generated once and kept in the store, so tokens survive a restart; a token names
//! its actor, roles, expiry and a unique id (`jti`) that logout revokes. Everything here
//! takes `now` as an argument; nothing reads a clock.

use crate::sitting::{ActorId, Millis, Role};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Longest token accepted, in bytes (anything longer is refused before decoding).
pub const MAX_TOKEN_BYTES: usize = 4096;

/// Why a token is not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token of ours.
    #[error("malformed token")]
    Malformed,
    /// Signed with another key or altered.
    #[error("bad token signature")]
    BadSignature,
    /// Past its expiry.
    #[error("token expired")]
    Expired,
    /// Revoked by logout.
    #[error("token revoked")]
    Revoked,
}

/// Why a password operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Hashing failed (bad parameters).
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// The stored hash is not a valid PHC string.
    #[error("stored password hash is invalid")]
    InvalidStoredHash,
}

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The actor.
    pub sub: ActorId,
    /// The actor's roles when the token was issued.
    pub roles: Vec<Role>,
    /// Issued at.
    pub iat: Millis,
    /// Expires at.
    pub exp: Millis,
    /// Unique token id, for revocation.
    pub jti: String,
}

/// The HMAC key that signs tokens.
#[derive(Clone)]
pub struct TokenKey([u8; 32]);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(…)")
    }
}

impl TokenKey {
    /// A key from 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> TokenKey {
        TokenKey(bytes)
    }

    /// A fresh random key.
    pub fn generate() -> TokenKey {
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes);
        TokenKey(bytes)
    }

    /// The key's bytes, for storing.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn mac(&self, data: &[u8]) -> Hmac<Sha256> {
        // HMAC accepts keys of any length, so this cannot fail for 32 bytes.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(data);
        mac
    }

    /// Signs claims into a token.
    pub fn sign(&self, claims: &Claims) -> String {
        let body = serde_json::to_vec(claims).unwrap_or_default();
        let tag = self.mac(&body).finalize().into_bytes();
        format!("{}.{}", B64.encode(&body), B64.encode(tag))
    }

    /// Checks a token's form, signature and expiry at `now`.
    pub fn verify(&self, token: &str, now: Millis) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Malformed);
        }
        let (body, tag) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let body = B64.decode(body).map_err(|_| TokenError::Malformed)?;
        let tag = B64.decode(tag).map_err(|_| TokenError::Malformed)?;
        self.mac(&body)
            .verify_slice(&tag)
            .map_err(|_| TokenError::BadSignature)?;
        let claims: Claims = serde_json::from_slice(&body).map_err(|_| TokenError::Malformed)?;
        if now >= claims.exp {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

/// A new random token id.
pub fn new_jti() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn argon2(fast: bool) -> Result<Argon2<'static>, PasswordError> {
    // OWASP's recommended argon2id setting (19 MiB, 2 passes); `fast` is for tests only.
    let params = if fast {
        Params::new(1024, 1, 1, None)
    } else {
        Params::new(19 * 1024, 2, 1, None)
    }
    .map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a password into a PHC string (argon2id, random salt).
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    hash_with(password, false)
}

/// Hashes with cheap parameters, for test fixtures only.
#[cfg(test)]
fn hash_password_for_tests(password: &str) -> Result<String, PasswordError> {
    hash_with(password, true)
}

fn hash_with(password: &str, fast: bool) -> Result<String, PasswordError> {
    let mut salt = [0u8; 16];
    rand::fill(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    argon2(fast)?
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Checks a password against a stored PHC string (parameters are read from the string).
pub fn verify_password(password: &str, phc: &str) -> Result<bool, PasswordError> {
    let parsed = PasswordHash::new(phc).map_err(|_| PasswordError::InvalidStoredHash)?;
    Ok(Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: ActorId::new("DB001"),
            roles: vec![Role::Deputy],
            iat: Millis(0),
            exp: Millis(exp),
            jti: new_jti(),
        }
    }

    #[test]
    fn a_signed_token_verifies_until_it_expires() {
        let key = TokenKey::generate();
        let c = claims(1000);
        let t = key.sign(&c);
        assert_eq!(key.verify(&t, Millis(999)), Ok(c));
        assert_eq!(key.verify(&t, Millis(1000)), Err(TokenError::Expired));
    }

    #[test]
    fn a_token_from_another_key_or_altered_is_refused() {
        let key = TokenKey::generate();
        let t = key.sign(&claims(1000));
        assert_eq!(
            TokenKey::generate().verify(&t, Millis(0)),
            Err(TokenError::BadSignature)
        );
        let (body, tag) = t.split_once('.').expect("dot");
        let mut forged: Claims =
            serde_json::from_slice(&B64.decode(body).expect("b64")).expect("json");
        forged.roles = vec![Role::Chair];
        let forged = format!(
            "{}.{tag}",
            B64.encode(serde_json::to_vec(&forged).expect("json"))
        );
        assert_eq!(
            key.verify(&forged, Millis(0)),
            Err(TokenError::BadSignature)
        );
        for junk in [
            "",
            ".",
            "abc",
            "a.b.c",
            "!!!.???",
            &"x".repeat(MAX_TOKEN_BYTES + 1),
        ] {
            assert!(key.verify(junk, Millis(0)).is_err(), "{junk:?} accepted");
        }
    }

    #[test]
    fn passwords_hash_with_a_salt_and_verify() {
        let a = hash_password_for_tests("mật khẩu").expect("hash");
        let b = hash_password_for_tests("mật khẩu").expect("hash");
        assert_ne!(a, b, "salted");
        assert!(verify_password("mật khẩu", &a).expect("valid phc"));
        assert!(!verify_password("mat khau", &a).expect("valid phc"));
        assert!(verify_password("x", "not a phc").is_err());
    }
}

pub mod authority;
pub mod passkey;
pub mod ticket;
