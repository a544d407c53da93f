//! A REST client of a running server (in-process or the binary): logs in, sends commands
//! with an `Idempotency-Key`, and reads JSON.

use reqwest::StatusCode;
use serde_json::{Value, json};

/// The server at `addr`, and the sitting commands go to.
pub struct Rest {
    pub http: reqwest::Client,
    pub addr: String,
    pub sitting: String,
}

impl Rest {
    pub fn new(addr: impl ToString, sitting: &str) -> Rest {
        Rest {
            http: reqwest::Client::new(),
            addr: addr.to_string(),
            sitting: sitting.to_owned(),
        }
    }

    /// The same server, commands to another sitting.
    pub fn to(&self, sitting: &str) -> Rest {
        Rest {
            http: self.http.clone(),
            addr: self.addr.clone(),
            sitting: sitting.to_owned(),
        }
    }

    /// Logs in with the demo password; the token.
    pub async fn login(&self, code: &str) -> String {
        let r: Value = self
            .http
            .post(format!("http://{}/api/login", self.addr))
            .json(&json!({"code": code, "password": "demo"}))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("json");
        r["token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token: {r}"))
            .to_owned()
    }

    /// Opens the sitting as `chair`, checks deputies `DB001`… `DB{deputies}` in as `clerk`
    /// and moves to agenda item `item`.
    pub async fn open_with(&self, chair: &str, clerk: &str, deputies: u32, item: u32) {
        self.ok(chair, "open", json!({"command": "open_sitting"}))
            .await;
        for n in 1..=deputies {
            let d = format!("DB{n:03}");
            self.ok(
                clerk,
                &format!("in-{d}"),
                json!({"command": "check_in", "deputy": d}),
            )
            .await;
        }
        self.ok(
            chair,
            "item",
            json!({"command": "set_current_item", "item": item}),
        )
        .await;
    }

    /// Sends `body` (`{"command": {...}}`) as `token`, with `key` if given; the status and
    /// the answer.
    pub async fn command(
        &self,
        token: &str,
        key: Option<&str>,
        body: Value,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .post(format!(
                "http://{}/api/sittings/{}/commands",
                self.addr, self.sitting
            ))
            .bearer_auth(token)
            .json(&body);
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        let r = req.send().await.expect("command sent");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Sends `cmd` and expects it durable; its sequence number.
    pub async fn ok(&self, token: &str, key: &str, cmd: Value) -> u64 {
        let (status, body) = self
            .command(token, Some(key), json!({ "command": cmd }))
            .await;
        assert_eq!(status, StatusCode::OK, "{key}: {body}");
        assert_eq!(body["command_id"], key);
        body["seq"].as_u64().expect("seq")
    }

    /// Opens a named vote on the current item (an hour, ballots final).
    pub async fn open_named_vote(&self, chair: &str, question: &str) -> u64 {
        self.ok(
            chair,
            "vote",
            json!({"command": "open_vote", "question": question, "method": "named", "rule": null,
                   "window_secs": 3600, "allow_change": false, "rerun_of": null}),
        )
        .await
    }

    /// `GET path` as `token` (none: anonymous), as JSON.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Value {
        let mut req = self.http.get(format!("http://{}{path}", self.addr));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
            .await
            .expect("get")
            .json()
            .await
            .unwrap_or(Value::Null)
    }
}
