//! Signalling with the server under test: login (`POST /api/login`), a sitting's commands
//! (`POST /api/sittings/{id}/commands`), WHIP and WHEP offers (`POST /whip`, `/whep`) and
//! ending a session (`DELETE` its `Location`). A WHEP answered 503 is admission control
//! saying no (refused, with its `Retry-After`), anything else that is not 201 a failure
//! with its reason.

use crate::http;
use anyhow::{Context, bail};
use std::time::Duration;

/// The server under test.
#[derive(Debug, Clone)]
pub struct Server {
    /// `host:port`.
    pub addr: String,
    pub timeout: Duration,
}

/// What became of an offer.
#[derive(Debug, Clone)]
pub enum Posted {
    /// 201: the answer and the session's `Location`.
    Created { answer: String, location: String },
    /// 503: no room now; `Retry-After` as sent.
    Refused {
        retry_after: Option<String>,
        reason: String,
    },
    /// Anything else: the status (0: no HTTP answer) and why.
    Failed { status: u16, reason: String },
}

/// A command the server refused (or did not answer: status 0).
#[derive(Debug, Clone)]
pub struct Refusal {
    pub status: u16,
    /// The server's error code (`wrong_phase`, `not_permitted`, …).
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {} {}: {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for Refusal {}

fn short(s: &str) -> String {
    let s = s.trim();
    if s.len() > 160 {
        let mut end = 160;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    } else {
        s.to_owned()
    }
}

impl Server {
    /// From a base URL such as `http://127.0.0.1:8080` (plain HTTP only).
    pub fn from_url(url: &str, timeout: Duration) -> anyhow::Result<Server> {
        let Some(rest) = url.strip_prefix("http://") else {
            bail!("only http:// URLs are supported: {url}");
        };
        let addr = rest.split('/').next().unwrap_or_default();
        if addr.is_empty() {
            bail!("no host in {url}");
        }
        Ok(Server {
            addr: addr.to_owned(),
            timeout,
        })
    }

    /// Logs in; returns the bearer token.
    pub fn login(&self, code: &str, password: &str) -> anyhow::Result<String> {
        let body = serde_json::json!({ "code": code, "password": password }).to_string();
        let r = http::request(
            &self.addr,
            "POST",
            "/api/login",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
            self.timeout,
        )
        .with_context(|| format!("login {code}: no answer"))?;
        if r.status != 200 {
            bail!("login {code}: HTTP {}: {}", r.status, short(&r.text()));
        }
        let v: serde_json::Value = serde_json::from_slice(&r.body)
            .with_context(|| format!("login {code}: the answer is not JSON"))?;
        v.get("token")
            .and_then(|t| t.as_str())
            .map(str::to_owned)
            .with_context(|| format!("login {code}: no token in the answer"))
    }

    /// Sends one command of a sitting as `token`'s account, under the idempotency key
    /// `key`; `Err` with the server's code and message when it is refused.
    pub fn command(
        &self,
        sitting: &str,
        token: &str,
        key: &str,
        command: &serde_json::Value,
    ) -> Result<(), Refusal> {
        let auth = format!("Bearer {token}");
        let body = serde_json::json!({ "command": command }).to_string();
        let path = format!("/api/sittings/{sitting}/commands");
        let r = http::request(
            &self.addr,
            "POST",
            &path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
                ("Idempotency-Key", key),
            ],
            body.as_bytes(),
            self.timeout,
        )
        .map_err(|e| Refusal {
            status: 0,
            code: String::new(),
            message: format!("no answer: {e}"),
        })?;
        if r.status == 200 {
            return Ok(());
        }
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        let text = |k: &str| v.get(k).and_then(|c| c.as_str()).map(str::to_owned);
        Err(Refusal {
            status: r.status,
            code: text("code").unwrap_or_default(),
            message: text("message").unwrap_or_else(|| short(&r.text())),
        })
    }

    /// Posts an SDP offer to `path` (`/whip` or `/whep`).
    pub fn offer(&self, path: &str, token: &str, offer: &str) -> Posted {
        let auth = format!("Bearer {token}");
        let r = match http::request(
            &self.addr,
            "POST",
            path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/sdp"),
            ],
            offer.as_bytes(),
            self.timeout,
        ) {
            Ok(r) => r,
            Err(e) => {
                return Posted::Failed {
                    status: 0,
                    reason: format!("no answer: {e}"),
                };
            }
        };
        match r.status {
            201 => match r.header("location") {
                Some(location) => Posted::Created {
                    answer: r.text(),
                    location: location.to_owned(),
                },
                None => Posted::Failed {
                    status: 201,
                    reason: "201 without a Location".into(),
                },
            },
            503 => Posted::Refused {
                retry_after: r.header("retry-after").map(str::to_owned),
                reason: short(&r.text()),
            },
            status => Posted::Failed {
                status,
                reason: short(&r.text()),
            },
        }
    }

    /// Ends a session: the status of `DELETE location` (0: no answer).
    pub fn delete(&self, location: &str, token: &str) -> u16 {
        let auth = format!("Bearer {token}");
        http::request(
            &self.addr,
            "DELETE",
            location,
            &[("Authorization", &auth)],
            &[],
            self.timeout,
        )
        .map(|r| r.status)
        .unwrap_or(0)
    }
}

/// The payload type an SDP maps to `codec` (e.g. `opus/48000`, `VP8/90000`), in its
/// first m-section of `kind`.
pub fn payload_type(sdp: &str, kind: &str, codec: &str) -> Option<u8> {
    let mut in_kind = false;
    for line in sdp.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("m=") {
            if in_kind {
                return None;
            }
            in_kind = m.starts_with(kind);
        } else if in_kind && let Some(map) = line.strip_prefix("a=rtpmap:") {
            let (pt, name) = map.split_once(' ')?;
            if name
                .to_ascii_lowercase()
                .starts_with(&codec.to_ascii_lowercase())
            {
                return pt.parse().ok();
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn payload_types_are_read_per_kind() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\n";
        assert_eq!(super::payload_type(sdp, "audio", "opus/48000"), Some(111));
        assert_eq!(super::payload_type(sdp, "video", "VP8/90000"), Some(96));
        assert_eq!(super::payload_type(sdp, "video", "opus/48000"), None);
    }

    #[test]
    fn urls_give_the_address() {
        let s = super::Server::from_url("http://127.0.0.1:8080/x", Default::default());
        assert_eq!(s.map(|s| s.addr).ok().as_deref(), Some("127.0.0.1:8080"));
        assert!(super::Server::from_url("https://x", Default::default()).is_err());
    }
}
