//! The server: starts a writer per sitting from the replayed log, serves HTTP (health,
//! readiness, the status page, sitting summaries), and shuts down gracefully: stop
//! accepting, let every writer finish the commands already queued, close the store.
//!
//! `App::start` + `run(listener, app, shutdown)` keep the binary thin and let tests start a
//! real server on port 0.

mod assets;
mod documents;
mod http;
mod minutes;
mod openapi;
mod passkeys;
mod registry;
mod rest;
mod sittings;
pub mod tls;
mod webhooks;
mod whip;

use crate::audit::{AuditEntry, Auditor};
use crate::auth::authority::Authority;
use crate::auth::passkey::Passkeys;
use crate::auth::ticket::Tickets;
use crate::checkpoint::Signer;
use crate::config::Config;
use crate::control::Limits;
use crate::demo;
use crate::sitting::{self, ActorId, SittingId, SittingState};
use crate::store::{Store, StoreError};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clock::now_millis;
use crate::writer::{self, SittingHandle};
pub use openapi::description as openapi_description;
pub use registry::Sittings;
pub use tls::{Tls, TlsError};

/// Most WebSocket tickets outstanding at once (a burst of 10,000 reconnecting pages fits).
const MAX_TICKETS: usize = 100_000;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The demo roster is invalid.
    #[error("demo roster: {0}")]
    Roster(#[from] sitting::RosterError),
    /// Creating a sitting was refused.
    #[error("creating the sitting: {0}")]
    Demo(sitting::Rejection),
    /// The media plane could not start.
    #[error(transparent)]
    Media(#[from] crate::media::MediaStartError),
    /// The checkpoint signing key cannot be read or made.
    #[error(transparent)]
    Key(#[from] crate::checkpoint::KeyError),
    /// The passkey (WebAuthn) settings are unusable.
    #[error(transparent)]
    Passkeys(#[from] crate::auth::passkey::PasskeyError),
    /// The documents' spool folder cannot be made.
    #[error("documents spool: {0}")]
    Spool(std::io::Error),
    /// The search index cannot be opened.
    #[error(transparent)]
    Search(#[from] crate::documents::search::SearchError),
    /// Webhooks cannot be set up.
    #[error(transparent)]
    Webhooks(#[from] crate::webhooks::WebhookError),
}

/// The running application: the store and one writer per sitting.
pub struct App {
    store: Store,
    authority: Authority,
    auditor: Auditor,
    signer: Arc<Signer>,
    tickets: Tickets,
    passkeys: Arc<Passkeys>,
    documents: Arc<crate::documents::Documents>,
    search: Arc<crate::documents::search::SearchIndex>,
    webhooks: Arc<crate::webhooks::Webhooks>,
    link_key: [u8; 32],
    link_millis: i64,
    limits: Limits,
    command_limiter: rest::CommandLimiter,
    allowed_origins: Vec<String>,
    sittings: Arc<Sittings>,
    /// The delegations and rules a sitting created while the server runs gets.
    delegations: Vec<sitting::Delegation>,
    rules: sitting::Rules,
    /// What a sitting added while the server runs is started with.
    spawn: Spawn,
    media: Option<Arc<crate::media::Media>>,
    max_sdp_bytes: usize,
    writers: std::sync::Mutex<Vec<JoinHandle<()>>>,
    stop: watch::Sender<bool>,
    ready: AtomicBool,
    grace: Duration,
}

impl App {
    /// Opens the store, seeds the demo sitting if asked (once), replays every sitting and
    /// starts its writer.
    pub async fn start(config: &Config, seed_demo: bool) -> Result<Arc<App>, StartError> {
        // Metrics are recorded from the start (once per process).
        crate::telemetry::handle();
        let store = Store::open(&config.database.url).await?;
        tracing::info!(backend = store.backend_name(), "store open");
        if seed_demo {
            seed_demo_sitting(&store, config).await?;
        }
        let key_path = config.checkpoint_key_path();
        let (signer, made) = Signer::load_or_create(&key_path)?;
        if made {
            tracing::info!(path = %key_path.display(), "made a new checkpoint signing key; keep a copy apart from the database");
        }
        tracing::info!(
            public_key = signer.public_key(),
            "checkpoint signing key (ed25519)"
        );
        let signer = Arc::new(signer);
        let (stop, stop_rx) = watch::channel(false);
        let settings = writer::WriterSettings {
            max_batch: config.writer.max_batch,
            tick: Duration::from_millis(config.writer.tick_ms),
            fanout_buffer: config.control.fanout_buffer,
        };
        let mut sittings = BTreeMap::new();
        let mut writers = Vec::new();
        for meta in store.sittings().await? {
            let (handle, task) = writer::start(
                store.clone(),
                meta.sitting.clone(),
                settings,
                Some(signer.clone()),
                stop_rx.clone(),
            )
            .await?;
            tracing::info!(sitting = %meta.sitting, events = handle.summary().seq, "replayed");
            sittings.insert(meta.sitting, handle);
            writers.push(task);
        }
        let (auditor, audit_task) = Auditor::start(store.clone(), stop_rx.clone()).await?;
        writers.push(audit_task);
        let sittings = Arc::new(Sittings::new(sittings));
        let media = crate::media::Media::start(
            &config.media,
            media_sittings(&sittings),
            sittings.changes(),
            stop_rx.clone(),
        )?;
        let authority = Authority::load(
            store.clone(),
            Duration::from_secs(config.control.token_ttl_secs),
            config.control.login_concurrency,
            now_millis(),
        )
        .await?;
        let passkeys = Arc::new(Passkeys::new(
            store.clone(),
            &config.trust.passkey_rp_id,
            &config.trust.passkey_origins,
            i64::try_from(config.trust.step_up_secs.saturating_mul(1000)).unwrap_or(120_000),
        )?);
        let blobs = config.blob_store()?;
        tracing::info!(store = blobs.describe(), "document store");
        let documents = Arc::new(
            crate::documents::Documents::new(
                blobs,
                store.clone(),
                config.spool_dir(),
                crate::documents::Limits::from(&config.documents),
            )
            .map_err(StartError::Spool)?,
        );
        let search = Arc::new(crate::documents::search::SearchIndex::open(
            &config.index_dir(&config.database.url),
        )?);
        writers.push(tokio::spawn(keep_indexing(
            documents.clone(),
            search.clone(),
            sittings.clone(),
            stop_rx.clone(),
        )));
        writers.push(tokio::spawn(collect_orphans(
            documents.clone(),
            sittings.clone(),
            Duration::from_secs(config.documents.orphan_grace_secs),
            stop_rx.clone(),
        )));
        let sources = sittings.clone();
        let webhooks = crate::webhooks::Webhooks::new(
            &config.webhooks,
            store.clone(),
            Arc::new(move || sources.all().iter().map(webhook_source).collect()),
        )?;
        writers.extend(webhooks.start(&stop_rx));
        for handle in sittings.all() {
            if let Some(task) = wake_webhooks(&handle, &webhooks, &stop_rx) {
                writers.push(task);
            }
        }
        Ok(Arc::new(App {
            webhooks,
            auditor,
            passkeys,
            documents,
            search,
            link_key: rand::random(),
            link_millis: i64::try_from(config.documents.link_secs.saturating_mul(1000))
                .unwrap_or(1_800_000),
            signer,
            authority,
            tickets: Tickets::new(
                i64::try_from(config.control.ws_ticket_secs.saturating_mul(1000)).unwrap_or(10_000),
                MAX_TICKETS,
            ),
            limits: Limits::from(&config.control),
            command_limiter: rest::CommandLimiter::new(
                config.control.commands_per_sec,
                config.control.command_burst,
            ),
            allowed_origins: config.control.allowed_origins.clone(),
            store,
            sittings,
            delegations: config.delegations()?,
            rules: config.rules.clone(),
            spawn: Spawn {
                settings,
                stop: stop_rx,
                creating: tokio::sync::Mutex::new(()),
            },
            media,
            max_sdp_bytes: config.media.max_sdp_bytes,
            writers: std::sync::Mutex::new(writers),
            stop,
            ready: AtomicBool::new(true),
            grace: Duration::from_secs(config.server.shutdown_grace_secs),
        }))
    }

    /// The handle of a sitting.
    pub fn sitting(&self, id: &SittingId) -> Option<SittingHandle> {
        self.sittings.get(id)
    }

    /// Every sitting, by id.
    pub fn sittings(&self) -> Vec<SittingHandle> {
        self.sittings.all()
    }

    /// The delegations a new sitting's roster is checked against.
    pub fn delegations(&self) -> &[sitting::Delegation] {
        &self.delegations
    }

    /// The procedure rules in force, recorded with each new sitting.
    pub fn rules(&self) -> &sitting::Rules {
        &self.rules
    }

    /// Creates a sitting from a `CreateSitting` command (checked by the core like any
    /// command) and starts it at once: its writer, and everything that follows the list of
    /// sittings (the media plane, the search index, webhooks) takes it up.
    pub async fn add_sitting(
        &self,
        command: &sitting::Command,
    ) -> Result<SittingHandle, StartError> {
        let sitting::Command::CreateSitting { sitting: id, .. } = command else {
            return Err(StartError::Demo(sitting::Rejection::new(
                sitting::Code::Invalid,
                "not a create_sitting command",
            )));
        };
        // One at a time: two requests for the same id must not both pass the check.
        let _one = self.spawn.creating.lock().await;
        if self.sittings.contains(id)
            || self
                .store
                .sittings()
                .await?
                .iter()
                .any(|m| &m.sitting == id)
        {
            return Err(StartError::Demo(sitting::Rejection::new(
                sitting::Code::AlreadyCreated,
                format!("a sitting {id} exists already"),
            )));
        }
        create_sitting(&self.store, command).await?;
        let (handle, task) = writer::start(
            self.store.clone(),
            id.clone(),
            self.spawn.settings,
            Some(self.signer.clone()),
            self.spawn.stop.clone(),
        )
        .await?;
        if let Ok(mut w) = self.writers.lock() {
            w.push(task);
            if let Some(t) = wake_webhooks(&handle, &self.webhooks, &self.spawn.stop) {
                w.push(t);
            }
        }
        self.sittings.insert(handle.clone());
        self.webhooks.wake();
        tracing::info!(sitting = %id, members = handle.roster().members(), "sitting created and started");
        Ok(handle)
    }

    /// The media plane, when it runs.
    pub fn media(&self) -> Option<&Arc<crate::media::Media>> {
        self.media.as_ref()
    }

    /// Largest SDP accepted.
    fn max_sdp_bytes(&self) -> usize {
        self.max_sdp_bytes
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Uploaded documents.
    pub fn documents(&self) -> &crate::documents::Documents {
        &self.documents
    }

    /// Webhook endpoints and their deliveries.
    pub fn webhooks(&self) -> &crate::webhooks::Webhooks {
        &self.webhooks
    }

    /// The documents' search index.
    pub fn search_index(&self) -> &crate::documents::search::SearchIndex {
        &self.search
    }

    /// The key that signs links to documents (made at start: links end with the process).
    fn link_key(&self) -> &[u8; 32] {
        &self.link_key
    }

    /// How long a link to a document works, in milliseconds.
    fn link_millis(&self) -> i64 {
        self.link_millis
    }

    /// The authority that issues and checks tokens.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// Records an audit entry now.
    pub fn audit(&self, entry: AuditEntry) {
        self.auditor.record(now_millis(), entry);
    }

    /// The checkpoint signing key.
    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// Passkey registration and the step-up of ballots.
    pub fn passkeys(&self) -> &Arc<Passkeys> {
        &self.passkeys
    }

    /// The WebSocket tickets outstanding.
    pub fn tickets(&self) -> &Tickets {
        &self.tickets
    }

    /// Connection limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The rate of commands over REST, per account.
    fn command_limiter(&self) -> &rest::CommandLimiter {
        &self.command_limiter
    }

    /// Whether a browser origin may open the WebSocket.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.allowed_origins.iter().any(|o| o == origin)
    }

    /// The roles an actor holds in any sitting.
    pub fn roles_of(&self, actor: &ActorId) -> Vec<sitting::Role> {
        let mut roles: Vec<sitting::Role> = self
            .sittings
            .all()
            .iter()
            .filter_map(|h| h.roster().actor(actor))
            .flat_map(|a| a.roles.iter().copied())
            .collect();
        roles.sort_unstable();
        roles.dedup();
        roles
    }

    /// Whether the server takes traffic.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
            && self
                .writers
                .lock()
                .map(|w| w.iter().all(|t| !t.is_finished()))
                .unwrap_or(false)
    }

    /// Stops the writers after they finish queued commands, then closes the store.
    pub async fn shutdown(&self) {
        self.ready.store(false, Ordering::Relaxed);
        self.stop.send_replace(true);
        let tasks: Vec<JoinHandle<()>> = self
            .writers
            .lock()
            .map(|mut w| w.drain(..).collect())
            .unwrap_or_default();
        for t in tasks {
            if tokio::time::timeout(self.grace, t).await.is_err() {
                tracing::warn!("a writer did not finish within the grace period");
            }
        }
        self.store.close().await;
        tracing::info!("shut down");
    }
}

/// What the control plane uses of the app, handed to it (see [`crate::control::Host`]).
impl crate::control::Host for App {
    fn sitting(&self, id: &SittingId) -> Option<SittingHandle> {
        App::sitting(self, id)
    }

    fn store(&self) -> &Store {
        App::store(self)
    }

    fn kicked(&self, actor: &ActorId) -> watch::Receiver<u64> {
        self.authority.kicked(actor)
    }

    fn media(&self) -> Option<&Arc<crate::media::Media>> {
        App::media(self)
    }

    fn documents(&self) -> &crate::documents::Documents {
        App::documents(self)
    }

    fn passkeys(&self) -> &Passkeys {
        &self.passkeys
    }

    fn audit(&self, entry: AuditEntry) {
        App::audit(self, entry)
    }
}

async fn seed_demo_sitting(store: &Store, config: &Config) -> Result<(), StartError> {
    let id = SittingId::new(&config.demo.sitting);
    if store.sittings().await?.iter().any(|m| m.sitting == id) {
        tracing::info!(sitting = %id, "demo sitting already exists");
        return Ok(());
    }
    let delegations = config.delegations()?;
    let mut rules = config.rules.clone();
    if config.demo.vote_without_quorum {
        rules.vote_needs_quorum = false;
    }
    let command = demo::create_command(
        &id,
        &delegations,
        config.demo.deputies,
        config.demo.seed,
        rules,
    )?;
    let state = create_sitting(store, &command).await?;
    // Every demo account gets the demo password. One hash serves all (hashing 570 times
    // with production argon2 settings would take minutes); real deployments set each
    // password with `dienhong passwd`.
    let phc = crate::auth::hash_password(&config.demo.password).map_err(|e| {
        StartError::Demo(sitting::Rejection::new(
            sitting::Code::Invalid,
            e.to_string(),
        ))
    })?;
    let entries: Vec<(ActorId, String)> = state
        .roster
        .actors
        .keys()
        .map(|a| (a.clone(), phc.clone()))
        .collect();
    store.set_credentials(&entries).await?;
    tracing::info!(
        sitting = %id,
        deputies = config.demo.deputies,
        "demo sitting seeded (synthetic roster); every account's password is the demo password"
    );
    Ok(())
}

/// Creates a sitting in the store from a `CreateSitting` command (checked by the core like
/// any command) and returns its initial state. The server picks it up at its next start.
pub async fn create_sitting(
    store: &Store,
    command: &sitting::Command,
) -> Result<SittingState, StartError> {
    let sitting::Command::CreateSitting { sitting: id, .. } = command else {
        return Err(StartError::Demo(sitting::Rejection::new(
            sitting::Code::Invalid,
            "not a create_sitting command",
        )));
    };
    let now = now_millis();
    let system = ActorId::system();
    let events = sitting::decide(&SittingState::default(), &system, command, now)
        .map_err(StartError::Demo)?;
    store.create_sitting(id, now).await?;
    let head = store.head(id).await?;
    store
        .append(
            id,
            &head,
            &[crate::store::Recorded {
                at: now,
                actor: &system,
                command_id: None,
                events: &events,
            }],
        )
        .await?;
    let mut state = SittingState::default();
    for e in &events {
        sitting::apply(&mut state, e);
    }
    Ok(state)
}

/// What a sitting added while the server runs is started with.
struct Spawn {
    settings: writer::WriterSettings,
    stop: watch::Receiver<bool>,
    creating: tokio::sync::Mutex<()>,
}

/// The sittings as the media plane reads them.
fn media_sittings(sittings: &Arc<Sittings>) -> crate::media::SittingList {
    let sittings = sittings.clone();
    Arc::new(move || sittings.all())
}

/// What the webhooks read of a sitting.
fn webhook_source(handle: &SittingHandle) -> crate::webhooks::Source {
    let h = handle.clone();
    crate::webhooks::Source {
        id: handle.id().clone(),
        epoch: handle.epoch().to_owned(),
        access: Arc::new(move || h.document_access()),
    }
}

/// Wakes the webhook deliveries on each of a sitting's commits (none without endpoints).
fn wake_webhooks(
    handle: &SittingHandle,
    webhooks: &Arc<crate::webhooks::Webhooks>,
    stop: &watch::Receiver<bool>,
) -> Option<JoinHandle<()>> {
    webhooks.ids().next()?;
    let mut commits = handle.subscribe();
    let (webhooks, mut stop) = (webhooks.clone(), stop.clone());
    Some(tokio::spawn(async move {
        loop {
            tokio::select! {
                got = commits.recv() => match got {
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => webhooks.wake(),
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
                _ = stop.changed() => return,
            }
        }
    }))
}

/// Keeps the search index up with every sitting's log: what was published since the last
/// look, every second (and everything not yet indexed at start).
async fn keep_indexing(
    documents: Arc<crate::documents::Documents>,
    search: Arc<crate::documents::search::SearchIndex>,
    sittings: Arc<Sittings>,
    mut stop: watch::Receiver<bool>,
) {
    let mut read: BTreeMap<SittingId, u64> = BTreeMap::new();
    loop {
        for h in sittings.all() {
            read.entry(h.id().clone()).or_insert(0);
        }
        for (sitting, after) in &mut read {
            match documents.index_sitting(&search, sitting, *after).await {
                Ok(last) => *after = last,
                Err(e) => {
                    tracing::warn!(sitting = %sitting, error = %e, "indexing documents failed; trying again")
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Every hour (and once at start), removes uploads that no document of any sitting names and
/// that are older than `grace`.
async fn collect_orphans(
    documents: Arc<crate::documents::Documents>,
    sittings: Arc<Sittings>,
    grace: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let mut referenced = std::collections::BTreeSet::new();
        let mut complete = true;
        for h in &sittings.all() {
            match h.snapshot().await {
                Ok(snap) => referenced.extend(
                    snap.state
                        .documents
                        .values()
                        .flat_map(|d| d.versions.iter().map(|v| v.sha256.clone())),
                ),
                Err(_) => complete = false,
            }
        }
        // Without every sitting's documents, nothing can be called unreferenced.
        if complete {
            let grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
            let before = sitting::Millis(now_millis().0.saturating_sub(grace_ms));
            if let Err(e) = documents.collect_orphans(&referenced, before).await {
                tracing::warn!(error = %e, "collecting unused uploads failed");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Serves plain HTTP on `listener` until `shutdown` resolves, then shuts the app down.
pub async fn run(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    run_with(listener, app, None, shutdown).await
}

/// Serves on `listener`, over TLS when `tls` is given (its files read again on SIGHUP),
/// until `shutdown` resolves, then shuts the app down.
pub async fn run_with(
    listener: TcpListener,
    app: Arc<App>,
    tls: Option<Tls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = http::router(app.clone(), tls.is_some());
    let result = match tls {
        None => {
            use axum::serve::ListenerExt;
            axum::serve(listener.tap_io(no_delay), router)
                .with_graceful_shutdown(shutdown)
                .await
        }
        Some(tls) => {
            let handle = axum_server::Handle::<std::net::SocketAddr>::new();
            let stopping = handle.clone();
            let grace = app.grace;
            tokio::spawn(async move {
                shutdown.await;
                stopping.graceful_shutdown(Some(grace));
            });
            let reloads = tokio::spawn(reload_on_hangup(tls.clone()));
            let served = match listener.into_std() {
                Ok(std_listener) => {
                    match axum_server::from_tcp_rustls(std_listener, tls.rustls()) {
                        Ok(server) => {
                            server
                                .map(|tls| tls.acceptor(axum_server::accept::NoDelayAcceptor))
                                .handle(handle)
                                .serve(router.into_make_service())
                                .await
                        }
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            };
            reloads.abort();
            served
        }
    };
    app.shutdown().await;
    result
}

/// Sends what is written to an accepted connection at once (`TCP_NODELAY`). With Nagle's
/// algorithm on, a small message written while an earlier one is not yet acknowledged (an
/// `ack` right after a commit's events, the tail of a large `events` frame) waits for the
/// peer's acknowledgement, which a peer delaying its ACKs sends up to 40 ms later.
/// Browsers set the same option on their side.
fn no_delay(tcp: &mut tokio::net::TcpStream) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY on an accepted connection");
    }
}

/// Reads the certificate and key again on each SIGHUP; a failed read keeps the old ones.
async fn reload_on_hangup(tls: Tls) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGHUP: the certificate will not be reloaded");
                return;
            }
        };
        while hangups.recv().await.is_some() {
            match tls.reload() {
                Ok(()) => tracing::info!("SIGHUP: TLS certificate and key read again"),
                Err(e) => {
                    tracing::error!(error = %e, "SIGHUP: the TLS files could not be used; the certificate in use stays")
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tls;
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT: shutting down"),
        _ = term => tracing::info!("SIGTERM: shutting down"),
    }
}

#[cfg(test)]
mod tests {
    use super::no_delay;

    #[tokio::test]
    async fn an_accepted_connection_sends_without_waiting_for_acknowledgements() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let _client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (mut accepted, _) = listener.accept().await.expect("accept");
        assert!(!accepted.nodelay().expect("read the option"));
        no_delay(&mut accepted);
        assert!(accepted.nodelay().expect("read the option"));
    }
}
