//! A real server on port 0 with the demo sitting, and WebSocket clients that log in,
//! subscribe, send commands and keep every sequence number they see.

use super::InProcess;
use dienhong::server::App;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The WebSocket request of a native client: the token in the `Authorization` header.
pub fn bearer_request(
    addr: std::net::SocketAddr,
    token: &str,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{addr}/ws")
        .into_client_request()
        .expect("request");
    req.headers_mut().insert(
        "Authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    req
}

pub struct Server {
    pub inner: InProcess,
    pub app: Arc<App>,
    pub addr: std::net::SocketAddr,
    _dir: tempfile::TempDir,
}

pub async fn start() -> Server {
    start_with(&[]).await
}

pub async fn start_with(extra: &[(&str, &str)]) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = super::config_for(&dir.path().join("c.db"), extra);
    let inner = InProcess::start(&config).await;
    Server {
        app: inner.app.clone(),
        addr: inner.addr,
        inner,
        _dir: dir,
    }
}

impl Server {
    /// The URL of the server's SQLite database.
    pub fn database_url(&self) -> String {
        format!("sqlite:{}", self._dir.path().join("c.db").display())
    }

    pub async fn stop(self) {
        self.inner.stop().await;
    }

    pub async fn login(&self, code: &str) -> String {
        super::rest::Rest::new(self.addr, "").login(code).await
    }

    pub async fn connect_with(&self, token: &str) -> Ws {
        let (ws, _) = tokio_tungstenite::connect_async(bearer_request(self.addr, token))
            .await
            .expect("connect");
        ws
    }

    /// Logs in, connects, reads the welcome, subscribes (protocol version 1) and returns the
    /// client.
    pub async fn client(&self, code: &str) -> Client {
        self.client_speaking(code, 1).await
    }

    /// As [`Server::client`], speaking protocol version `version`.
    pub async fn client_speaking(&self, code: &str, version: u32) -> Client {
        let token = self.login(code).await;
        let ws = self.connect_with(&token).await;
        let mut c = Client {
            ws,
            seen: Vec::new(),
            token,
            epoch: String::new(),
            n: 0,
            version,
            frames: 0,
            batches: Vec::new(),
        };
        let welcome = c.next().await;
        assert_eq!(welcome["type"], "welcome");
        assert_eq!(welcome["actor"], code);
        c.subscribe(None).await;
        c
    }

    /// Uploads `bytes` to the demo sitting as the clerk `code`; the server's answer.
    pub async fn upload(&self, code: &str, bytes: Vec<u8>) -> Value {
        let token = self.login(code).await;
        let r = reqwest::Client::new()
            .post(format!(
                "http://{}/api/sittings/{}/uploads",
                self.addr,
                self.sitting()
            ))
            .bearer_auth(token)
            .body(bytes)
            .send()
            .await
            .expect("upload");
        assert_eq!(r.status(), 201, "upload refused");
        r.json().await.expect("json")
    }

    /// Uploads a small PDF made unique by `tag`; its `(sha256, size)`, as a command names them.
    pub async fn upload_pdf(&self, code: &str, tag: &str) -> (String, u64) {
        let up = self
            .upload(code, format!("%PDF-1.4\n% {tag}\n%%EOF\n").into_bytes())
            .await;
        assert_eq!(up["media_type"], "application/pdf");
        (
            up["sha256"].as_str().expect("sha256").to_owned(),
            up["size"].as_u64().expect("size"),
        )
    }

    pub fn sitting(&self) -> String {
        self.app
            .sittings()
            .into_iter()
            .next()
            .expect("demo sitting")
            .id()
            .0
            .clone()
    }
}

pub struct Client {
    pub ws: Ws,
    /// Sequence numbers of every event received, in order.
    pub seen: Vec<u64>,
    pub token: String,
    pub epoch: String,
    pub n: u32,
    /// The protocol version it speaks (2: events in batches).
    pub version: u32,
    /// `event` and `events` messages received.
    pub frames: u32,
    /// The first and last sequence number of each `events` message received.
    pub batches: Vec<(u64, u64)>,
}

impl Client {
    pub async fn send(&mut self, v: Value) {
        self.ws
            .send(Message::text(v.to_string()))
            .await
            .expect("send");
    }

    pub async fn next(&mut self) -> Value {
        loop {
            let m = tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await
                .expect("a message within 10 s")
                .expect("stream open")
                .expect("frame");
            match m {
                Message::Text(t) => {
                    let v: Value = serde_json::from_str(&t).expect("server sends JSON");
                    if v["type"] == "event" {
                        assert_eq!(self.version, 1, "a version-2 client gets batches: {v}");
                        let seq = v["seq"].as_u64().expect("seq");
                        self.seen.push(seq);
                        self.frames += 1;
                    }
                    if v["type"] == "events" {
                        assert!(self.version >= 2, "a version-1 client got a batch: {v}");
                        let events = v["events"].as_array().expect("events");
                        assert!(!events.is_empty(), "an empty batch");
                        for e in events {
                            assert!(e["event"].is_object(), "{e}");
                            self.seen.push(e["seq"].as_u64().expect("seq"));
                        }
                        let seq_of = |e: Option<&Value>| e.and_then(|e| e["seq"].as_u64());
                        if let (Some(first), Some(last)) =
                            (seq_of(events.first()), seq_of(events.last()))
                        {
                            self.batches.push((first, last));
                        }
                        self.frames += 1;
                    }
                    return v;
                }
                Message::Close(f) => {
                    return json!({"type": "closed", "code": f.map(|f| u16::from(f.code))});
                }
                _ => continue,
            }
        }
    }

    pub async fn subscribe(&mut self, resume: Option<u64>) -> Value {
        self.subscribe_to("demo-2026-11", resume).await
    }

    /// Subscribes to `sitting`; without `resume`, returns its snapshot.
    pub async fn subscribe_to(&mut self, sitting: &str, resume: Option<u64>) -> Value {
        let mut msg = json!({"type": "subscribe", "v": self.version, "sitting": sitting});
        if let Some(n) = resume {
            msg["resume_from"] = json!(n);
            msg["epoch"] = json!(self.epoch);
        }
        self.send(msg).await;
        if resume.is_some() {
            return Value::Null;
        }
        let mut snap = self.next().await;
        while snap["type"] == "event" || snap["type"] == "events" {
            // Events of an earlier subscription still on the way.
            snap = self.next().await;
        }
        assert_eq!(snap["type"], "snapshot", "{snap}");
        self.epoch = snap["epoch"].as_str().expect("epoch").to_owned();
        self.seen.push(snap["seq"].as_u64().expect("seq"));
        snap
    }

    /// Sends a command and waits for its ack or error, collecting events meanwhile.
    pub async fn command(&mut self, command: Value) -> Value {
        self.n += 1;
        let id = format!("c{}", self.n);
        self.command_with_id(&id, command).await
    }

    pub async fn command_with_id(&mut self, id: &str, command: Value) -> Value {
        self.send(
            json!({"type": "command", "v": self.version, "command_id": id, "command": command}),
        )
        .await;
        loop {
            let m = self.next().await;
            if (m["type"] == "ack" || m["type"] == "error") && m["command_id"] == id {
                return m;
            }
            assert_ne!(m["type"], "closed", "closed while waiting for {id}: {m}");
        }
    }

    pub async fn ok(&mut self, command: Value) -> u64 {
        let r = self.command(command.clone()).await;
        assert_eq!(r["type"], "ack", "{command} → {r}");
        r["seq"].as_u64().expect("seq")
    }

    /// Reads until the event with `seq` arrived.
    pub async fn until_seq(&mut self, seq: u64) {
        while self.seen.last().copied().unwrap_or(0) < seq {
            let m = self.next().await;
            assert_ne!(m["type"], "closed", "{m}");
        }
    }

    pub fn assert_in_order_without_gaps(&self) {
        for w in self.seen.windows(2) {
            assert_eq!(w[1], w[0] + 1, "gap or duplicate in {:?}", self.seen);
        }
    }
}
