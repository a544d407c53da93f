//! Signed checkpoints of a sitting's log: a record nobody can quietly rewrite.
//!
//! `verify` catches an edited row, because every row's hash covers the one before; it
//! cannot catch a log rewritten from the top with a fresh, valid chain, nor one cut short at
//! the end. A checkpoint closes both: the server signs (ed25519) the head of the chain, that
//! is the sitting, its epoch, a sequence number and the hash there, at every vote close and
//! sitting close and on demand. Kept anywhere else (a clerk's copy, the minutes, a
//! newspaper), a checkpoint later proves the log still holds exactly those events up to it.
//!
//! The signing key is made at first start and kept in a file apart from the database, so a
//! database administrator can rewrite rows but cannot sign. This module owns the checkpoint,
//! its signing and checking, and the judgement of a log against one ([`judge`], pure); the
//! store supplies the facts, the writer and the HTTP routes decide when to sign.

use crate::sitting::{Millis, SittingId, VoteId};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What a checkpoint's signature covers, as a version tag at the start of the message.
const DOMAIN: &str = "dienhong-checkpoint-v1";

/// Why a checkpoint was signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// A vote closed (its result is in the log up to here).
    VoteClosed {
        /// The vote.
        vote: VoteId,
    },
    /// The sitting closed.
    SittingClosed,
    /// Someone asked (a clerk or the chair, or an operator).
    OnDemand,
}

impl Reason {
    /// The reason as signed: `vote_closed:N`, `sitting_closed` or `on_demand`.
    pub fn text(&self) -> String {
        match self {
            Reason::VoteClosed { vote } => format!("vote_closed:{vote}"),
            Reason::SittingClosed => "sitting_closed".into(),
            Reason::OnDemand => "on_demand".into(),
        }
    }
}

/// A signed statement: this sitting's log, in this epoch, had this hash at this sequence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The sitting.
    pub sitting: SittingId,
    /// The log's epoch (a log made anew has another).
    pub epoch: String,
    /// The sequence number of the head.
    pub seq: u64,
    /// The chain hash at `seq`, hex.
    pub head: String,
    /// When it was signed.
    pub at: Millis,
    /// Why.
    pub reason: Reason,
    /// The signer's ed25519 public key, base64.
    pub public_key: String,
    /// The signature over all of the above, base64.
    pub signature: String,
}

impl Checkpoint {
    fn message(&self) -> Vec<u8> {
        format!(
            "{DOMAIN}\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
            self.sitting,
            self.epoch,
            self.seq,
            self.head,
            self.at.0,
            self.reason.text(),
            self.public_key
        )
        .into_bytes()
    }

    /// Checks the signature against the public key the checkpoint names.
    pub fn signature_holds(&self) -> bool {
        let (Ok(key), Ok(sig)) = (B64.decode(&self.public_key), B64.decode(&self.signature)) else {
            return false;
        };
        UnparsedPublicKey::new(&ED25519, key)
            .verify(&self.message(), &sig)
            .is_ok()
    }
}

/// Why the signing key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read or written.
    #[error("checkpoint key {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file does not hold an ed25519 key of ours.
    #[error("checkpoint key {0}: not an ed25519 PKCS#8 key")]
    Invalid(PathBuf),
    /// The system's random number generator failed.
    #[error("making a checkpoint key: no randomness")]
    Random,
}

/// The server's checkpoint signing key.
pub struct Signer {
    key: Ed25519KeyPair,
    public_key: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("public_key", &self.public_key)
            .finish()
    }
}

impl Signer {
    /// A signer from a PKCS#8 document.
    pub fn from_pkcs8(der: &[u8]) -> Option<Signer> {
        let key = Ed25519KeyPair::from_pkcs8(der).ok()?;
        let public_key = B64.encode(key.public_key().as_ref());
        Some(Signer { key, public_key })
    }

    /// A new key, as a signer and its PKCS#8 document.
    pub fn generate() -> Result<(Signer, Vec<u8>), KeyError> {
        let der = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
            .map_err(|_| KeyError::Random)?
            .as_ref()
            .to_vec();
        let signer = Signer::from_pkcs8(&der).ok_or(KeyError::Random)?;
        Ok((signer, der))
    }

    /// Reads the key at `path`, or makes one there (readable by its owner only) if there is
    /// none. Returns the signer and whether it was made now.
    pub fn load_or_create(path: &Path) -> Result<(Signer, bool), KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_owned(),
            source,
        };
        match std::fs::read(path) {
            Ok(der) => Signer::from_pkcs8(&der)
                .map(|s| (s, false))
                .ok_or_else(|| KeyError::Invalid(path.to_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (signer, der) = Signer::generate()?;
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                use std::io::Write;
                options
                    .open(path)
                    .and_then(|mut f| f.write_all(&der).and_then(|()| f.sync_all()))
                    .map_err(io)?;
                Ok((signer, true))
            }
            Err(e) => Err(io(e)),
        }
    }

    /// The public key, base64: what anyone checks a checkpoint with.
    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    /// Signs the head `seq`/`hash` of `sitting` in `epoch`.
    pub fn sign(
        &self,
        sitting: &SittingId,
        epoch: &str,
        seq: u64,
        hash: &[u8; 32],
        at: Millis,
        reason: Reason,
    ) -> Checkpoint {
        let mut cp = Checkpoint {
            sitting: sitting.clone(),
            epoch: epoch.to_owned(),
            seq,
            head: hex::encode(hash),
            at,
            reason,
            public_key: self.public_key.clone(),
            signature: String::new(),
        };
        cp.signature = B64.encode(self.key.sign(&cp.message()).as_ref());
        cp
    }
}

/// What the store says about a sitting's log, for judging it against a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFacts {
    /// The log's epoch, if the sitting exists.
    pub epoch: Option<String>,
    /// The first broken row of the chain, if any: its seq and what is wrong.
    pub broken: Option<(u64, String)>,
    /// The last sequence number.
    pub last_seq: u64,
    /// The stored hash at the checkpoint's seq, hex, if the log reaches it.
    pub hash_at_checkpoint: Option<String>,
}

/// Which check failed, in the order they are made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The signature does not verify: the checkpoint was altered or not signed by its key.
    #[error("the checkpoint's signature does not verify: it was altered or not made by that key")]
    BadSignature,
    /// Signed by another key than the one expected.
    #[error("the checkpoint was signed by {found}, not by the expected key {expected}")]
    OtherKey {
        /// The key expected.
        expected: String,
        /// The key that signed.
        found: String,
    },
    /// The log has no such sitting.
    #[error("the log has no sitting {0}")]
    NoSitting(SittingId),
    /// Another epoch: the log was made anew.
    #[error("the log's epoch is {found}, the checkpoint's {expected}: the log was replaced")]
    OtherEpoch {
        /// The checkpoint's epoch.
        expected: String,
        /// The log's.
        found: String,
    },
    /// The chain itself is broken.
    #[error("the chain is broken at seq {seq}: {reason}")]
    Broken {
        /// The first bad row.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
    /// Events the checkpoint covers are gone from the end.
    #[error("the log ends at seq {last}, before the checkpoint's seq {seq}: events were cut off")]
    Truncated {
        /// The log's last seq.
        last: u64,
        /// The checkpoint's.
        seq: u64,
    },
    /// The hash at the checkpoint's seq differs: the log up to there was rewritten.
    #[error(
        "the hash at seq {seq} is {found}, the checkpoint's {expected}: the log up to seq {seq} was rewritten"
    )]
    Rewritten {
        /// The checkpoint's seq.
        seq: u64,
        /// The checkpoint's hash.
        expected: String,
        /// The log's.
        found: String,
    },
}

/// Judges a log against a checkpoint (and, if given, the public key it must be signed with).
pub fn judge(cp: &Checkpoint, expected_key: Option<&str>, facts: &LogFacts) -> Result<(), Failure> {
    if !cp.signature_holds() {
        return Err(Failure::BadSignature);
    }
    if let Some(expected) = expected_key
        && expected != cp.public_key
    {
        return Err(Failure::OtherKey {
            expected: expected.to_owned(),
            found: cp.public_key.clone(),
        });
    }
    let Some(epoch) = &facts.epoch else {
        return Err(Failure::NoSitting(cp.sitting.clone()));
    };
    if *epoch != cp.epoch {
        return Err(Failure::OtherEpoch {
            expected: cp.epoch.clone(),
            found: epoch.clone(),
        });
    }
    if let Some((seq, reason)) = &facts.broken {
        return Err(Failure::Broken {
            seq: *seq,
            reason: reason.clone(),
        });
    }
    if facts.last_seq < cp.seq {
        return Err(Failure::Truncated {
            last: facts.last_seq,
            seq: cp.seq,
        });
    }
    match &facts.hash_at_checkpoint {
        Some(found) if *found == cp.head => Ok(()),
        found => Err(Failure::Rewritten {
            seq: cp.seq,
            expected: cp.head.clone(),
            found: found.clone().unwrap_or_default(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed() -> (Signer, Checkpoint) {
        let (signer, _) = Signer::generate().expect("key");
        let cp = signer.sign(
            &SittingId::new("kh15-ky10-phien-1"),
            "epoch-a",
            42,
            &[7; 32],
            Millis(1_796_000_000_000),
            Reason::VoteClosed { vote: VoteId(3) },
        );
        (signer, cp)
    }

    fn facts_of(cp: &Checkpoint) -> LogFacts {
        LogFacts {
            epoch: Some(cp.epoch.clone()),
            broken: None,
            last_seq: 50,
            hash_at_checkpoint: Some(cp.head.clone()),
        }
    }

    #[test]
    fn a_log_that_still_holds_the_checkpointed_head_passes() {
        let (signer, cp) = signed();
        assert!(cp.signature_holds());
        assert_eq!(
            judge(&cp, Some(signer.public_key()), &facts_of(&cp)),
            Ok(())
        );
        // Exactly at the checkpoint is enough.
        let mut at = facts_of(&cp);
        at.last_seq = 42;
        assert_eq!(judge(&cp, None, &at), Ok(()));
    }

    #[test]
    fn any_altered_field_breaks_the_signature() {
        let (_, cp) = signed();
        let alter: [fn(&mut Checkpoint); 6] = [
            |c| c.seq += 1,
            |c| c.head = hex::encode([8u8; 32]),
            |c| c.epoch.push('x'),
            |c| c.at = Millis(c.at.0 + 1),
            |c| c.reason = Reason::OnDemand,
            |c| c.sitting = SittingId::new("another"),
        ];
        for f in alter {
            let mut bad = cp.clone();
            f(&mut bad);
            assert_eq!(
                judge(&bad, None, &facts_of(&bad)),
                Err(Failure::BadSignature)
            );
        }
    }

    #[test]
    fn a_checkpoint_signed_by_another_key_is_refused_when_the_key_is_given() {
        let (_, cp) = signed();
        let (other, _) = Signer::generate().expect("key");
        assert!(matches!(
            judge(&cp, Some(other.public_key()), &facts_of(&cp)),
            Err(Failure::OtherKey { .. })
        ));
        // Re-signed by another key with the public key swapped in: the signature holds, so
        // only the expected key tells.
        let forged = other.sign(
            &cp.sitting,
            &cp.epoch,
            cp.seq,
            &[9; 32],
            cp.at,
            cp.reason.clone(),
        );
        assert!(forged.signature_holds());
        assert_ne!(forged.public_key, cp.public_key);
    }

    #[test]
    fn each_way_a_log_can_differ_names_its_own_failure() {
        let (_, cp) = signed();
        let mut f = facts_of(&cp);
        f.epoch = None;
        assert!(matches!(judge(&cp, None, &f), Err(Failure::NoSitting(_))));
        let mut f = facts_of(&cp);
        f.epoch = Some("epoch-b".into());
        assert!(matches!(
            judge(&cp, None, &f),
            Err(Failure::OtherEpoch { .. })
        ));
        let mut f = facts_of(&cp);
        f.broken = Some((17, "hash mismatch".into()));
        assert!(matches!(
            judge(&cp, None, &f),
            Err(Failure::Broken { seq: 17, .. })
        ));
        let mut f = facts_of(&cp);
        f.last_seq = 41;
        f.hash_at_checkpoint = None;
        assert_eq!(
            judge(&cp, None, &f),
            Err(Failure::Truncated { last: 41, seq: 42 })
        );
        let mut f = facts_of(&cp);
        f.hash_at_checkpoint = Some(hex::encode([1u8; 32]));
        let failure = judge(&cp, None, &f).expect_err("rewritten");
        assert!(matches!(failure, Failure::Rewritten { seq: 42, .. }));
        assert!(failure.to_string().contains("rewritten"));
    }

    #[test]
    fn the_key_is_made_once_and_read_back_the_same() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keys/checkpoint.key");
        let (a, made) = Signer::load_or_create(&path).expect("made");
        assert!(made);
        let (b, made) = Signer::load_or_create(&path).expect("read");
        assert!(!made);
        assert_eq!(a.public_key(), b.public_key());
        std::fs::write(&path, b"not a key").expect("write");
        assert!(matches!(
            Signer::load_or_create(&path),
            Err(KeyError::Invalid(_))
        ));
    }
}
