//! Webhooks: outside systems (the Government portal, the broadcaster's captions, the
//! archive) told of the events they asked for, one signed `POST` per event.
//!
//! Each endpoint has one task. It follows every sitting's log from its cursor (kept in the
//! store, moved only after the receiver answered 2xx), so deliveries are in order per
//! sitting and at least once: a receiver that is down holds its endpoint back, with
//! retries doubling from `retry_min_secs` to `retry_max_secs`, and a server restart resumes
//! from the cursor. Ranges an operator asks for again are delivered first, marked as
//! replays. Every attempt goes in the delivery log.
//!
//! The module is handed what it reads ([`Sources`]: each sitting's id, epoch and document
//! access, asked again as sittings are added) and the store, and is woken on commits
//! ([`Webhooks::wake`]); it knows nothing of the server.

pub mod backoff;
pub mod sign;

use crate::config::{WebhookEndpoint, WebhooksConfig};
use crate::sitting::{self, Access, DocumentId, Event, Role, SittingId};
use crate::store::{Attempt, Replay, Store, StoreError, StoredEvent};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// Events read from the log at a time.
const PAGE: u32 = 200;

/// A sitting as the webhooks see it.
#[derive(Clone)]
pub struct Source {
    /// The sitting.
    pub id: SittingId,
    /// Its log's epoch.
    pub epoch: String,
    /// Every document's access level now (to hold back what the endpoint's view may not
    /// read).
    pub access: Arc<dyn Fn() -> Arc<BTreeMap<DocumentId, Access>> + Send + Sync>,
}

/// The sittings now (sittings are added while the server runs).
pub type Sources = Arc<dyn Fn() -> Vec<Source> + Send + Sync>;

/// Why webhooks could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The CA file cannot be read.
    #[error("webhooks.ca_file: {0}")]
    CaFile(String),
    /// The HTTP client cannot be built.
    #[error("webhooks: HTTP client: {0}")]
    Client(String),
}

/// How one endpoint is doing, for operators.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Health {
    /// Deliveries answered 2xx since start.
    pub delivered: u64,
    /// Attempts that failed since start.
    pub failed: u64,
    /// The last failure, while the endpoint is failing.
    pub last_error: Option<String>,
    /// Since when it has been failing (milliseconds since 1970).
    pub failing_since: Option<i64>,
}

/// One endpoint as configured, with how it is doing.
struct Endpoint {
    config: WebhookEndpoint,
    /// None: every kind.
    kinds: Option<BTreeSet<String>>,
    health: Mutex<Health>,
}

impl Endpoint {
    fn wants(&self, event: &Event) -> bool {
        self.kinds.as_ref().is_none_or(|k| k.contains(event.kind()))
    }

    fn note(&self, error: Option<&str>, now: i64) {
        if let Ok(mut h) = self.health.lock() {
            match error {
                None => {
                    h.delivered += 1;
                    h.last_error = None;
                    h.failing_since = None;
                }
                Some(e) => {
                    h.failed += 1;
                    h.last_error = Some(e.to_owned());
                    h.failing_since.get_or_insert(now);
                }
            }
        }
    }
}

/// An endpoint's state for the API.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointStatus {
    /// Its id.
    pub id: String,
    /// Where it receives.
    pub url: String,
    /// What it receives.
    pub events: Vec<String>,
    /// Whose view.
    pub view: Role,
    /// Per sitting, the last sequence number it was told of (or skipped as not for it).
    pub delivered: BTreeMap<String, u64>,
    /// Ranges still to be delivered again.
    pub replays: Vec<Replay>,
    /// How it is doing.
    pub health: Health,
}

/// Every endpoint, and what the delivery tasks share.
pub struct Webhooks {
    endpoints: Vec<Arc<Endpoint>>,
    sources: Sources,
    store: Store,
    client: reqwest::Client,
    retry_min: Duration,
    retry_max: Duration,
    keep_attempts: Option<Duration>,
    wake: Arc<Notify>,
}

/// The JSON body of a delivery.
#[derive(Serialize)]
struct Payload<'a> {
    endpoint: &'a str,
    sitting: &'a str,
    epoch: &'a str,
    seq: u64,
    at: i64,
    actor: &'a str,
    /// Asked for again by an operator (it may have been delivered before).
    replay: bool,
    event: &'a Event,
}

/// The delivery task was asked to stop.
struct Stopped;

impl Webhooks {
    /// Sets up the endpoints of `config` over `sources`; [`Webhooks::start`] runs them.
    pub fn new(
        config: &WebhooksConfig,
        store: Store,
        sources: Sources,
    ) -> Result<Arc<Webhooks>, WebhookError> {
        let endpoints = config
            .endpoints
            .iter()
            .map(|e| {
                Arc::new(Endpoint {
                    kinds: (!e.events.iter().any(|k| k == "*"))
                        .then(|| e.events.iter().cloned().collect()),
                    config: e.clone(),
                    health: Mutex::new(Health::default()),
                })
            })
            .collect();
        Ok(Arc::new(Webhooks {
            endpoints,
            sources,
            store,
            client: client(config)?,
            retry_min: Duration::from_secs(config.retry_min_secs),
            retry_max: Duration::from_secs(config.retry_max_secs),
            keep_attempts: (config.keep_attempts_days > 0)
                .then(|| Duration::from_secs(config.keep_attempts_days.saturating_mul(86_400))),
            wake: Arc::new(Notify::new()),
        }))
    }

    /// Starts one delivery task per endpoint, and the pruning of the delivery log.
    pub fn start(self: &Arc<Self>, stop: &watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
        let mut tasks: Vec<JoinHandle<()>> = self
            .endpoints
            .iter()
            .map(|e| tokio::spawn(self.clone().run(e.clone(), stop.clone())))
            .collect();
        if let Some(keep) = self.keep_attempts.filter(|_| !self.endpoints.is_empty()) {
            tasks.push(tokio::spawn(self.clone().prune(keep, stop.clone())));
        }
        tasks
    }

    /// Every hour (and at start), drops attempts older than `keep` from the delivery log.
    async fn prune(self: Arc<Self>, keep: Duration, mut stop: watch::Receiver<bool>) {
        loop {
            let keep_ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
            let before =
                crate::sitting::Millis(crate::clock::now_millis().0.saturating_sub(keep_ms));
            match self.store.prune_webhook_attempts(before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    removed = n,
                    "webhooks: old attempts pruned from the delivery log"
                ),
                Err(e) => tracing::warn!(error = %e, "webhooks: pruning the delivery log failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Tells the delivery tasks that a sitting committed something.
    pub fn wake(&self) {
        self.wake.notify_waiters();
    }

    /// The endpoints' ids.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.endpoints.iter().map(|e| e.config.id.as_str())
    }

    /// The state of endpoint `id`, if there is one.
    pub async fn status(&self, id: &str) -> Result<Option<EndpointStatus>, StoreError> {
        let Some(e) = self.endpoint(id) else {
            return Ok(None);
        };
        let mut delivered = BTreeMap::new();
        for s in &(self.sources)() {
            let at = self.store.webhook_cursor(id, &s.id).await?.unwrap_or(0);
            delivered.insert(s.id.as_str().to_owned(), at);
        }
        Ok(Some(EndpointStatus {
            id: e.config.id.clone(),
            url: e.config.url.clone(),
            events: e.config.events.clone(),
            view: e.config.view,
            delivered,
            replays: self.store.webhook_replays(id).await?,
            health: e.health.lock().map(|h| h.clone()).unwrap_or_default(),
        }))
    }

    /// Asks for `first..=last` of `sitting` to be delivered to endpoint `id` again.
    pub async fn replay(
        &self,
        id: &str,
        sitting: &SittingId,
        first: u64,
        last: u64,
        asked_by: &str,
    ) -> Result<i64, StoreError> {
        let n = self
            .store
            .add_webhook_replay(
                id,
                sitting,
                first,
                last,
                asked_by,
                crate::clock::now_millis(),
            )
            .await?;
        self.wake();
        Ok(n)
    }

    /// Whether `sitting` is one the webhooks follow.
    pub fn follows(&self, sitting: &SittingId) -> bool {
        (self.sources)().iter().any(|s| &s.id == sitting)
    }

    fn endpoint(&self, id: &str) -> Option<&Arc<Endpoint>> {
        self.endpoints.iter().find(|e| e.config.id == id)
    }

    async fn run(self: Arc<Self>, endpoint: Arc<Endpoint>, mut stop: watch::Receiver<bool>) {
        tracing::info!(endpoint = %endpoint.config.id, url = %endpoint.config.url, "webhook deliveries start");
        loop {
            if *stop.borrow() {
                return;
            }
            // Registered before the work, so a commit during it is not missed.
            let woken = self.wake.notified();
            match self.step(&endpoint, &mut stop).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(Ok(Stopped)) => return,
                Err(Err(e)) => {
                    tracing::warn!(endpoint = %endpoint.config.id, error = %e, "webhooks: the store failed; trying again");
                }
            }
            tokio::select! {
                _ = woken => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Delivers what is due: a page of the oldest replay, else a page of each sitting.
    /// `Ok(true)` if anything was read.
    async fn step(
        &self,
        endpoint: &Endpoint,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<bool, Result<Stopped, StoreError>> {
        let id = endpoint.config.id.as_str();
        if let Some(replay) = self.store.next_webhook_replay(id).await.map_err(Err)? {
            let sources = (self.sources)();
            let Some(source) = sources.iter().find(|s| s.id == replay.sitting) else {
                self.store
                    .advance_webhook_replay(&replay, u64::MAX)
                    .await
                    .map_err(Err)?;
                return Ok(true);
            };
            let page = self
                .store
                .events_after(&replay.sitting, replay.next_seq.saturating_sub(1), PAGE)
                .await
                .map_err(Err)?;
            let page: Vec<StoredEvent> = page
                .into_iter()
                .filter(|e| e.seq <= replay.last_seq)
                .collect();
            if page.is_empty() {
                self.store
                    .advance_webhook_replay(&replay, u64::MAX)
                    .await
                    .map_err(Err)?;
                return Ok(true);
            }
            for e in &page {
                self.deliver_if_wanted(endpoint, source, e, true, stop)
                    .await?;
                self.store
                    .advance_webhook_replay(&replay, e.seq + 1)
                    .await
                    .map_err(Err)?;
            }
            return Ok(true);
        }
        let mut read = false;
        for source in &(self.sources)() {
            let from = self
                .store
                .webhook_cursor(id, &source.id)
                .await
                .map_err(Err)?
                .unwrap_or(0);
            let page = self
                .store
                .events_after(&source.id, from, PAGE)
                .await
                .map_err(Err)?;
            let Some(last) = page.last().map(|e| e.seq) else {
                continue;
            };
            read = true;
            for e in &page {
                if self
                    .deliver_if_wanted(endpoint, source, e, false, stop)
                    .await?
                {
                    self.store
                        .set_webhook_cursor(id, &source.id, e.seq)
                        .await
                        .map_err(Err)?;
                }
            }
            // Events not for this endpoint move the cursor once per page.
            self.store
                .set_webhook_cursor(id, &source.id, last)
                .await
                .map_err(Err)?;
        }
        Ok(read)
    }

    /// Delivers `e` if the endpoint wants it and its view may see it, retrying until the
    /// receiver answers 2xx. `Ok(true)` if it was delivered.
    async fn deliver_if_wanted(
        &self,
        endpoint: &Endpoint,
        source: &Source,
        e: &StoredEvent,
        replay: bool,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<bool, Result<Stopped, StoreError>> {
        let view = [endpoint.config.view];
        if !endpoint.wants(&e.event) || !sitting::visible(&e.event, &view, &(source.access)()) {
            return Ok(false);
        }
        let body = serde_json::to_vec(&Payload {
            endpoint: &endpoint.config.id,
            sitting: source.id.as_str(),
            epoch: &source.epoch,
            seq: e.seq,
            at: e.at.0,
            actor: e.actor.as_str(),
            replay,
            event: &e.event,
        })
        .unwrap_or_default();
        let mut attempt = 0u32;
        loop {
            attempt = attempt.saturating_add(1);
            let error = self.post(endpoint, source, e, replay, attempt, &body).await;
            let Some(error) = error else {
                return Ok(true);
            };
            let wait = backoff::delay(
                attempt,
                self.retry_min,
                self.retry_max,
                0.8 + rand::random::<f64>() * 0.4,
            );
            tracing::warn!(
                endpoint = %endpoint.config.id, sitting = %source.id, seq = e.seq, attempt,
                error = %error, retry_in_ms = wait.as_millis() as u64,
                "webhook delivery failed"
            );
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return Err(Ok(Stopped)),
            }
        }
    }

    /// One attempt; `None` if the receiver answered 2xx, else what went wrong. Recorded in
    /// the delivery log either way.
    async fn post(
        &self,
        endpoint: &Endpoint,
        source: &Source,
        e: &StoredEvent,
        replay: bool,
        attempt: u32,
        body: &[u8],
    ) -> Option<String> {
        let now = crate::clock::now_millis();
        let started = Instant::now();
        let sent = self
            .client
            .post(&endpoint.config.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(
                sign::HEADER,
                sign::header(endpoint.config.secret.as_bytes(), now.0 / 1000, body),
            )
            .header("dienhong-event", e.event.kind())
            .header(
                "dienhong-delivery",
                format!("{}/{}/{}", endpoint.config.id, source.id, e.seq),
            )
            .body(body.to_vec())
            .send()
            .await;
        let (status, error) = match sent {
            Ok(r) if r.status().is_success() => (Some(r.status().as_u16()), None),
            Ok(r) => (
                Some(r.status().as_u16()),
                Some(format!("answered {}", r.status())),
            ),
            Err(err) => (None, Some(describe(&err))),
        };
        endpoint.note(error.as_deref(), now.0);
        crate::telemetry::webhook(&endpoint.config.id, error.is_none());
        let logged = self
            .store
            .add_webhook_attempt(&Attempt {
                id: 0,
                endpoint: endpoint.config.id.clone(),
                sitting: source.id.as_str().to_owned(),
                seq: e.seq,
                kind: e.event.kind().to_owned(),
                replay,
                attempt,
                at: now,
                status,
                error: error.clone(),
                millis: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            })
            .await;
        if let Err(err) = logged {
            tracing::warn!(error = %err, "webhooks: the delivery log could not be written");
        }
        error
    }
}

/// A transport error in a few words (no URL with a query, no secrets).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else if e.is_request() || e.is_body() {
        "the request failed".to_owned()
    } else {
        "no answer".to_owned()
    }
}

/// The HTTP client: rustls with the public roots and the configured CA, no redirects.
fn client(config: &WebhooksConfig) -> Result<reqwest::Client, WebhookError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if !config.ca_file.is_empty() {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&config.ca_file)
            .and_then(|i| i.collect::<Result<_, _>>())
            .map_err(|e| WebhookError::CaFile(e.to_string()))?;
        for c in certs {
            roots
                .add(c)
                .map_err(|e| WebhookError::CaFile(e.to_string()))?;
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| WebhookError::Client(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(config.timeout_secs.min(10)))
        .timeout(Duration::from_secs(config.timeout_secs))
        .user_agent(concat!("dienhong/", env!("CARGO_PKG_VERSION"), " webhooks"))
        .build()
        .map_err(|e| WebhookError::Client(e.to_string()))
}
