//! Configuration: the embedded defaults (`configs/*.toml`, `configs/delegations.tsv`), an
//! optional file given on the command line, and `DIENHONG__SECTION__KEY` environment
//! overrides, merged and validated once at start.

use crate::sitting::{Delegation, DelegationCode, DelegationKind, Rules};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

const DEFAULT_TOML: &str = include_str!("../configs/default.toml");
const RULES_TOML: &str = include_str!("../configs/rules.toml");
const DELEGATIONS_TSV: &str = include_str!("../configs/delegations.tsv");

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The files or environment could not be read or merged.
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    /// A value is out of range.
    #[error("configuration: {0}")]
    Invalid(String),
    /// The delegations file could not be read.
    #[error("delegations file {path}: {source}")]
    DelegationsFile {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A line of a roster file is malformed.
    #[error("roster line {line}: {reason}")]
    Roster {
        /// Line number, from 1.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A line of the delegations file is malformed.
    #[error("delegations line {line}: {reason}")]
    Delegations {
        /// Line number, from 1.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// Server settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// Grace period on shutdown, in seconds.
    pub shutdown_grace_secs: u64,
    /// PEM certificate chain for TLS; empty for plain HTTP.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS; empty for plain HTTP.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// A TLS proxy terminates connections in front of this server, so plain HTTP on a
    /// non-loopback address is allowed.
    #[serde(default)]
    pub behind_tls_proxy: bool,
}

impl ServerConfig {
    /// The certificate and key files, when TLS is configured.
    pub fn tls_files(&self) -> Option<(&Path, &Path)> {
        fn set(p: &Option<PathBuf>) -> Option<&Path> {
            p.as_deref().filter(|p| !p.as_os_str().is_empty())
        }
        set(&self.tls_cert).zip(set(&self.tls_key))
    }

    /// Refuses plain HTTP on an address other machines reach, unless a TLS proxy is in front
    /// or this is the demo: tokens, passwords and ballots must not cross a network in clear.
    pub fn check_transport(&self, demo: bool) -> Result<(), ConfigError> {
        if self.tls_files().is_some() || self.behind_tls_proxy || demo {
            return Ok(());
        }
        if self.listen.ip().is_loopback() {
            return Ok(());
        }
        Err(ConfigError::Invalid(format!(
            "refusing plain HTTP on {}, which other machines can reach: set server.tls_cert and server.tls_key, or server.behind_tls_proxy = true when a TLS proxy is in front",
            self.listen
        )))
    }
}

/// Database settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite:PATH` or `postgres://…`.
    pub url: String,
}

/// Log settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// tracing filter.
    pub filter: String,
    /// JSON lines.
    pub json: bool,
}

/// Writer settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriterConfig {
    /// Group commit size.
    pub max_batch: usize,
    /// Clock check period, ms.
    pub tick_ms: u64,
}

/// WebSocket control plane settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    /// Allowed browser origins.
    pub allowed_origins: Vec<String>,
    /// Largest client message, bytes.
    pub max_message_bytes: usize,
    /// Sustained commands per second per connection.
    pub commands_per_sec: u32,
    /// Burst above the rate.
    pub command_burst: u32,
    /// Rate-limit errors before closing.
    pub max_rate_violations: u32,
    /// Commands awaiting durability per connection.
    pub max_in_flight: usize,
    /// Ping period, seconds.
    pub ping_secs: u64,
    /// Idle timeout, seconds.
    pub idle_timeout_secs: u64,
    /// Token lifetime, seconds.
    pub token_ttl_secs: u64,
    /// Fan-out buffer, batches.
    pub fanout_buffer: usize,
    /// Largest resume gap served from the log.
    pub max_resume_gap: u64,
    /// Tasks writing each sitting's commits to its connections (0: one per core).
    pub fanout_tasks: usize,
    /// Messages queued in memory for a connection whose socket is full.
    pub fanout_queue: usize,
    /// Concurrent password checks.
    pub login_concurrency: usize,
    /// Lifetime of a WebSocket ticket, seconds.
    pub ws_ticket_secs: u64,
}

/// Media plane (SFU) settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaConfig {
    /// Whether the server runs the SFU.
    pub enabled: bool,
    /// Address the media socket binds to (`0.0.0.0`: every interface).
    pub bind_ip: std::net::IpAddr,
    /// UDP ports the media socket may take: the first free one from `udp_port_min` to
    /// `udp_port_max` (both 0: any free port).
    pub udp_port_min: u16,
    /// Last port of the range.
    pub udp_port_max: u16,
    /// The address peers are told to reach (the public address of a NAT 1:1); empty: the
    /// bound address.
    pub public_ip: String,
    /// The sitting whose floor the SFU follows; empty: the first sitting not closed.
    pub sitting: String,
    /// Largest SDP accepted, bytes.
    pub max_sdp_bytes: usize,
    /// Media connections one account may hold at once.
    pub max_legs_per_actor: usize,
    /// Media I/O threads, each with a UDP port of its own; 0: one per core available.
    pub io_threads: usize,
    /// Measured utilisation of a media I/O thread (0–1) from which load is shed.
    pub shed_above: f64,
    /// Utilisation under which shed load is given back.
    pub restore_below: f64,
    /// Projected utilisation from which new ordinary receivers are refused (503).
    pub admit_ceiling: f64,
    /// STUN/TURN servers handed to clients.
    pub ice_servers: Vec<IceServerConfig>,
}

/// A STUN or TURN server for clients.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IceServerConfig {
    /// `stun:` / `turn:` / `turns:` URLs.
    pub urls: Vec<String>,
    /// TURN user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

impl MediaConfig {
    /// The advertised address, if one is set.
    pub fn public_ip(&self) -> Result<Option<std::net::IpAddr>, ConfigError> {
        let t = self.public_ip.trim();
        if t.is_empty() {
            return Ok(None);
        }
        t.parse().map(Some).map_err(|_| {
            ConfigError::Invalid(format!("media.public_ip {t:?} is not an IP address"))
        })
    }
}

/// Demo sitting settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoConfig {
    /// Sitting id.
    pub sitting: String,
    /// Number of deputies.
    pub deputies: u32,
    /// Seed of the synthetic roster.
    pub seed: u64,
    /// Password of every demo account.
    pub password: String,
    /// The demo sitting lets a vote open below the quorum.
    pub vote_without_quorum: bool,
}

/// Where the list of delegations comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelegationsConfig {
    /// A TSV file (`code name kind region`); the embedded list of 63 if absent.
    pub file: Option<PathBuf>,
    /// The chamber's code.
    #[serde(default = "chamber_code")]
    pub chamber_code: String,
    /// The chamber's name.
    #[serde(default = "chamber_name")]
    pub chamber_name: String,
}

impl Default for DelegationsConfig {
    fn default() -> Self {
        DelegationsConfig {
            file: None,
            chamber_code: chamber_code(),
            chamber_name: chamber_name(),
        }
    }
}

fn chamber_code() -> String {
    "00".to_owned()
}
fn chamber_name() -> String {
    "Hội trường Diên Hồng".to_owned()
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Server.
    pub server: ServerConfig,
    /// Database.
    pub database: DatabaseConfig,
    /// Logs.
    pub log: LogConfig,
    /// Writer.
    pub writer: WriterConfig,
    /// Control plane.
    pub control: ControlConfig,
    /// Demo.
    pub demo: DemoConfig,
    /// Media plane.
    pub media: MediaConfig,
    /// Procedure rules.
    pub rules: Rules,
    /// Delegations.
    #[serde(default)]
    pub delegations: DelegationsConfig,
    /// The record's integrity.
    #[serde(default)]
    pub trust: TrustConfig,
    /// Uploaded documents.
    pub documents: DocumentsConfig,
    /// Outside systems told of what happens.
    pub webhooks: WebhooksConfig,
}

/// Webhooks: outside systems (the Government portal, the broadcaster's captions, the
/// archive) told of every event they asked for, signed, in order, at least once.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    /// The first wait after a failed delivery, in seconds (it doubles on each failure).
    pub retry_min_secs: u64,
    /// The longest wait between tries, in seconds.
    pub retry_max_secs: u64,
    /// How long a receiver may take to answer, in seconds.
    pub timeout_secs: u64,
    /// A PEM file of the certificate authorities receivers' certificates are checked
    /// against, beside the public ones (empty: the public ones only).
    pub ca_file: String,
    /// How long attempts are kept in the delivery log, in days (0: for ever).
    pub keep_attempts_days: u64,
    /// The endpoints.
    pub endpoints: Vec<WebhookEndpoint>,
}

/// One receiver of webhooks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpoint {
    /// A short name, unique, used in the delivery log and the API (`archive`).
    pub id: String,
    /// Where deliveries are POSTed (`https://…`; `http://` only to this machine).
    pub url: String,
    /// The shared secret deliveries are signed with (at least 16 bytes).
    pub secret: String,
    /// The event kinds it receives (`vote_closed`, `sitting_opened`, …), or `["*"]`.
    #[serde(default = "every_kind")]
    pub events: Vec<String>,
    /// Whose view of the sitting it gets: events about documents this role may not read are
    /// not sent (`observer` by default: what the public may see).
    #[serde(default = "observer")]
    pub view: crate::sitting::Role,
}

fn every_kind() -> Vec<String> {
    vec!["*".to_owned()]
}

fn observer() -> crate::sitting::Role {
    crate::sitting::Role::Observer
}

/// Uploaded documents: where they are kept and the limits on them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentsConfig {
    /// Where blobs are kept: empty (beside the database), `file:///…` or `s3://bucket/…`.
    pub store: String,
    /// Settings of an object store (`aws_endpoint`, `aws_region`, …).
    #[serde(default)]
    pub store_options: std::collections::BTreeMap<String, String>,
    /// Largest upload, in bytes.
    pub max_upload_bytes: u64,
    /// Where uploads are spooled while they arrive; empty: the system's temporary folder.
    pub spool_dir: String,
    /// How long an upload no document took is kept, in seconds.
    pub orphan_grace_secs: u64,
    /// How long a link to open a document works, in seconds.
    pub link_secs: u64,
    /// The search index's folder; empty: beside the database.
    pub index_dir: String,
    /// Most text indexed from one file, in bytes.
    pub index_text_bytes: usize,
    /// Longest search, in characters.
    pub search_query_chars: usize,
    /// Most hits answered to one search.
    pub search_max_hits: usize,
}

/// Integrity of the record.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustConfig {
    /// The checkpoint signing key (ed25519, PKCS#8); empty: beside the SQLite file, or
    /// `dienhong-checkpoint.key` in the working directory for PostgreSQL.
    #[serde(default)]
    pub checkpoint_key: Option<PathBuf>,
    /// The WebAuthn relying party id: the host name passkeys are bound to.
    pub passkey_rp_id: String,
    /// The origins pages are served from (any port); empty: http(s):// of the rp id.
    #[serde(default)]
    pub passkey_origins: Vec<String>,
    /// How long a step-up challenge may be answered, in seconds.
    pub step_up_secs: u64,
}

impl Config {
    fn validate_webhooks(&self) -> Result<(), ConfigError> {
        let w = &self.webhooks;
        if w.retry_min_secs == 0 || w.retry_max_secs < w.retry_min_secs || w.timeout_secs == 0 {
            return Err(ConfigError::Invalid(
                "webhooks: retry_min_secs and timeout_secs must be positive, retry_max_secs at least retry_min_secs".into(),
            ));
        }
        let mut ids = std::collections::BTreeSet::new();
        for e in &w.endpoints {
            let id_ok = !e.id.is_empty()
                && e.id.len() <= 64
                && e.id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !id_ok || !ids.insert(e.id.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "webhooks: endpoint id {:?} must be unique, 1 to 64 letters, digits, - or _",
                    e.id
                )));
            }
            let url = url::Url::parse(&e.url)
                .map_err(|err| ConfigError::Invalid(format!("webhooks.{}: url: {err}", e.id)))?;
            let local = matches!(
                url.host_str(),
                Some("127.0.0.1" | "localhost" | "[::1]" | "::1")
            );
            if !(url.scheme() == "https" || url.scheme() == "http" && local) {
                return Err(ConfigError::Invalid(format!(
                    "webhooks.{}: url must be https:// (http:// only to this machine)",
                    e.id
                )));
            }
            if e.secret.len() < 16 {
                return Err(ConfigError::Invalid(format!(
                    "webhooks.{}: secret must be at least 16 bytes",
                    e.id
                )));
            }
            if e.events.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "webhooks.{}: events must name at least one kind, or \"*\"",
                    e.id
                )));
            }
        }
        Ok(())
    }

    /// Loads the embedded defaults, then `file` if given, then the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with_env(file, std::env::vars())
    }

    /// As [`Config::load`], with the environment given explicitly (for tests).
    pub fn load_with_env(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        use config::{File, FileFormat};
        let mut builder = config::Config::builder()
            .add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml))
            .add_source(File::from_str(RULES_TOML, FileFormat::Toml));
        if let Some(path) = file {
            builder = builder.add_source(File::from(path).format(FileFormat::Toml));
        }
        let env: std::collections::HashMap<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("DIENHONG__"))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("DIENHONG")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(env)),
        );
        let cfg: Config = builder.build()?.try_deserialize()?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.rules.validate().map_err(ConfigError::Invalid)?;
        self.validate_webhooks()?;
        if self.writer.max_batch == 0 || self.writer.max_batch > 10_000 {
            return Err(ConfigError::Invalid(
                "writer.max_batch must be 1 to 10000".into(),
            ));
        }
        if self.control.fanout_queue > 65_536 {
            return Err(ConfigError::Invalid(
                "control.fanout_queue must be at most 65536".into(),
            ));
        }
        if self.writer.tick_ms == 0 {
            return Err(ConfigError::Invalid(
                "writer.tick_ms must be positive".into(),
            ));
        }
        let c = &self.control;
        if c.max_message_bytes < 1024 || c.max_message_bytes > 16 * 1024 * 1024 {
            return Err(ConfigError::Invalid(
                "control.max_message_bytes must be 1 KiB to 16 MiB".into(),
            ));
        }
        if c.commands_per_sec == 0 || c.ping_secs == 0 || c.idle_timeout_secs <= c.ping_secs {
            return Err(ConfigError::Invalid(
                "control: commands_per_sec and ping_secs must be positive and idle_timeout_secs > ping_secs".into(),
            ));
        }
        if c.token_ttl_secs < 60 || c.max_in_flight == 0 || c.login_concurrency == 0 {
            return Err(ConfigError::Invalid(
                "control: token_ttl_secs >= 60, max_in_flight and login_concurrency > 0".into(),
            ));
        }
        if c.ws_ticket_secs == 0 || c.ws_ticket_secs > 300 {
            return Err(ConfigError::Invalid(
                "control.ws_ticket_secs must be 1 to 300".into(),
            ));
        }
        let t = &self.trust;
        let rp = t.passkey_rp_id.as_str();
        if rp.is_empty() || rp.contains(['/', ':', ' ']) || rp.parse::<std::net::IpAddr>().is_ok() {
            return Err(ConfigError::Invalid(
                "trust.passkey_rp_id must be a host name (no scheme, port or IP address)".into(),
            ));
        }
        if !(10..=600).contains(&t.step_up_secs) {
            return Err(ConfigError::Invalid(
                "trust.step_up_secs must be 10 to 600".into(),
            ));
        }
        let s = &self.server;
        let empty = |p: &Option<PathBuf>| p.as_ref().is_none_or(|p| p.as_os_str().is_empty());
        if empty(&s.tls_cert) != empty(&s.tls_key) {
            return Err(ConfigError::Invalid(
                "server.tls_cert and server.tls_key go together: set both or neither".into(),
            ));
        }
        let m = &self.media;
        m.public_ip()?;
        if m.udp_port_min > m.udp_port_max {
            return Err(ConfigError::Invalid(
                "media.udp_port_min must not exceed media.udp_port_max".into(),
            ));
        }
        if m.max_sdp_bytes < 1024 || m.max_sdp_bytes > 1024 * 1024 || m.max_legs_per_actor == 0 {
            return Err(ConfigError::Invalid(
                "media: max_sdp_bytes must be 1 KiB to 1 MiB and max_legs_per_actor positive"
                    .into(),
            ));
        }
        if m.io_threads > dienhong_sfu::driver::MAX_THREADS {
            return Err(ConfigError::Invalid(format!(
                "media.io_threads must be at most {} (0: one per core)",
                dienhong_sfu::driver::MAX_THREADS
            )));
        }
        let share = |x: f64| (0.0..=1.0).contains(&x);
        if !share(m.shed_above)
            || !share(m.restore_below)
            || !share(m.admit_ceiling)
            || m.restore_below >= m.shed_above
        {
            return Err(ConfigError::Invalid(
                "media: shed_above, restore_below and admit_ceiling must be 0 to 1, restore_below under shed_above"
                    .into(),
            ));
        }
        for server in &m.ice_servers {
            let ok = !server.urls.is_empty()
                && server.urls.iter().all(|u| {
                    ["stun:", "turn:", "turns:"]
                        .iter()
                        .any(|p| u.starts_with(p))
                });
            if !ok {
                return Err(ConfigError::Invalid(
                    "media.ice_servers: every url must start with stun:, turn: or turns:".into(),
                ));
            }
        }
        let d = &self.documents;
        if d.max_upload_bytes == 0 || d.max_upload_bytes > crate::sitting::MAX_DOCUMENT_BYTES {
            return Err(ConfigError::Invalid(
                "documents.max_upload_bytes must be 1 byte to 10 GiB".into(),
            ));
        }
        if d.index_text_bytes == 0
            || !(1..=10_000).contains(&d.search_query_chars)
            || !(1..=1_000).contains(&d.search_max_hits)
        {
            return Err(ConfigError::Invalid(
                "documents: index_text_bytes positive, search_query_chars 1 to 10000, search_max_hits 1 to 1000".into(),
            ));
        }
        if !(60..=86_400).contains(&d.link_secs) {
            return Err(ConfigError::Invalid(
                "documents.link_secs must be 60 to 86400".into(),
            ));
        }
        if self.demo.deputies < 10 {
            return Err(ConfigError::Invalid(
                "demo.deputies must be at least 10".into(),
            ));
        }
        Ok(())
    }

    /// Where the checkpoint signing key is kept: `trust.checkpoint_key`, or by default a file
    /// beside the SQLite database (`<db>-checkpoint.key`), or `dienhong-checkpoint.key` in
    /// the working directory for PostgreSQL.
    pub fn checkpoint_key_path(&self) -> PathBuf {
        if let Some(p) = self
            .trust
            .checkpoint_key
            .as_ref()
            .filter(|p| !p.as_os_str().is_empty())
        {
            return p.clone();
        }
        beside_database(&self.database.url, "checkpoint.key")
    }

    /// The blob store of uploaded documents, as configured.
    pub fn blob_store(&self) -> Result<crate::documents::blobs::BlobStore, ConfigError> {
        let d = &self.documents;
        let made = if d.store.trim().is_empty() {
            crate::documents::blobs::BlobStore::folder(&beside_database(
                &self.database.url,
                "blobs",
            ))
        } else {
            let options: Vec<(String, String)> = d
                .store_options
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            crate::documents::blobs::BlobStore::at_url(d.store.trim(), &options)
        };
        made.map_err(|e| ConfigError::Invalid(format!("documents.store: {e}")))
    }

    /// The folder of the documents' search index.
    pub fn index_dir(&self, database_url: &str) -> PathBuf {
        let d = self.documents.index_dir.trim();
        if d.is_empty() {
            beside_database(database_url, "index")
        } else {
            PathBuf::from(d)
        }
    }

    /// Where uploads are spooled while they arrive.
    pub fn spool_dir(&self) -> PathBuf {
        let d = self.documents.spool_dir.trim();
        if d.is_empty() {
            std::env::temp_dir().join(format!("dienhong-spool-{}", std::process::id()))
        } else {
            PathBuf::from(d)
        }
    }

    /// The delegations: the chamber, then the configured list (or the embedded 63).
    pub fn delegations(&self) -> Result<Vec<Delegation>, ConfigError> {
        let text = match &self.delegations.file {
            Some(path) => {
                std::fs::read_to_string(path).map_err(|source| ConfigError::DelegationsFile {
                    path: path.clone(),
                    source,
                })?
            }
            None => DELEGATIONS_TSV.to_owned(),
        };
        let mut list = vec![Delegation {
            code: DelegationCode::new(&self.delegations.chamber_code),
            name: self.delegations.chamber_name.clone(),
            kind: DelegationKind::Chamber,
            region: String::new(),
        }];
        list.extend(parse_delegations(&text)?);
        Ok(list)
    }
}

/// Parses a delegations TSV: a header line, then `code<TAB>name<TAB>kind<TAB>region`.
pub fn parse_delegations(text: &str) -> Result<Vec<Delegation>, ConfigError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        let line_no = n + 1;
        if line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let [code, name, kind, region] = cols[..] else {
            return Err(ConfigError::Delegations {
                line: line_no,
                reason: format!("expected 4 tab-separated columns, found {}", cols.len()),
            });
        };
        let kind = match kind.trim() {
            "province" => DelegationKind::Province,
            "municipality" => DelegationKind::Municipality,
            other => {
                return Err(ConfigError::Delegations {
                    line: line_no,
                    reason: format!("unknown kind {other:?}"),
                });
            }
        };
        if code.trim().is_empty() || name.trim().is_empty() {
            return Err(ConfigError::Delegations {
                line: line_no,
                reason: "code and name are required".into(),
            });
        }
        out.push(Delegation {
            code: DelegationCode::new(code.trim()),
            name: name.trim().to_owned(),
            kind,
            region: region.trim().to_owned(),
        });
    }
    Ok(out)
}

/// Parses an agenda file: one item title per line, trimmed, blank lines skipped.
pub fn parse_agenda(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Parses a roster TSV: a header line, then `code<TAB>name<TAB>delegation<TAB>roles`, where
/// `delegation` may be empty for staff and `roles` is a comma-separated list of `chair`,
/// `vice_chair`, `clerk`, `deputy`, `site_operator`, `observer`.
pub fn parse_roster(text: &str) -> Result<Vec<crate::sitting::Actor>, ConfigError> {
    use crate::sitting::{Actor, ActorId, Role};
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        let line_no = n + 1;
        if line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let [code, name, delegation, roles] = cols[..] else {
            return Err(ConfigError::Roster {
                line: line_no,
                reason: format!("expected 4 tab-separated columns, found {}", cols.len()),
            });
        };
        let mut set = std::collections::BTreeSet::new();
        for r in roles.split(',').map(str::trim).filter(|r| !r.is_empty()) {
            let role = match r {
                "chair" => Role::Chair,
                "vice_chair" => Role::ViceChair,
                "clerk" => Role::Clerk,
                "deputy" => Role::Deputy,
                "site_operator" => Role::SiteOperator,
                "observer" => Role::Observer,
                other => {
                    return Err(ConfigError::Roster {
                        line: line_no,
                        reason: format!("unknown role {other:?}"),
                    });
                }
            };
            set.insert(role);
        }
        let delegation = delegation.trim();
        out.push(Actor {
            id: ActorId::new(code.trim()),
            name: name.trim().to_owned(),
            delegation: (!delegation.is_empty()).then(|| DelegationCode::new(delegation)),
            roles: set,
        });
    }
    Ok(out)
}

/// A path beside a SQLite database file (`<db>-<suffix>`), or `dienhong-<suffix>` in the
/// working directory for PostgreSQL or an in-memory database.
pub fn beside_database(database_url: &str, suffix: &str) -> PathBuf {
    let file = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
        .map(|rest| rest.split('?').next().unwrap_or(rest))
        .filter(|f| !f.is_empty() && !f.contains(":memory:"));
    match file {
        Some(f) => PathBuf::from(format!("{f}-{suffix}")),
        None => PathBuf::from(format!("dienhong-{suffix}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_env(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::load_with_env(
            None,
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    }

    #[test]
    fn plain_http_is_refused_on_a_reachable_address_unless_tls_a_proxy_or_the_demo() {
        let loopback = with_env(&[]).expect("defaults");
        assert!(loopback.server.check_transport(false).is_ok());
        let open = with_env(&[("DIENHONG__SERVER__LISTEN", "0.0.0.0:8080")]).expect("config");
        let err = open.server.check_transport(false).expect_err("refused");
        assert!(err.to_string().contains("tls_cert"), "{err}");
        assert!(open.server.check_transport(true).is_ok(), "the demo may");
        let proxied = with_env(&[
            ("DIENHONG__SERVER__LISTEN", "10.0.0.5:8080"),
            ("DIENHONG__SERVER__BEHIND_TLS_PROXY", "true"),
        ])
        .expect("config");
        assert!(proxied.server.check_transport(false).is_ok());
        let tls = with_env(&[
            ("DIENHONG__SERVER__LISTEN", "[::]:8443"),
            ("DIENHONG__SERVER__TLS_CERT", "/etc/dienhong/cert.pem"),
            ("DIENHONG__SERVER__TLS_KEY", "/etc/dienhong/key.pem"),
        ])
        .expect("config");
        assert!(tls.server.tls_files().is_some());
        assert!(tls.server.check_transport(false).is_ok());
    }

    #[test]
    fn the_checkpoint_key_lives_beside_the_sqlite_file_unless_configured() {
        let at = |url: &str, key: Option<&str>| {
            let mut env = vec![("DIENHONG__DATABASE__URL", url)];
            if let Some(k) = key {
                env.push(("DIENHONG__TRUST__CHECKPOINT_KEY", k));
            }
            with_env(&env).expect("config").checkpoint_key_path()
        };
        assert_eq!(
            at("sqlite:/var/lib/dienhong/d.db", None),
            PathBuf::from("/var/lib/dienhong/d.db-checkpoint.key")
        );
        assert_eq!(
            at("sqlite:///tmp/x.sqlite?mode=rwc", None),
            PathBuf::from("/tmp/x.sqlite-checkpoint.key")
        );
        assert_eq!(
            at("postgres://db/dienhong", None),
            PathBuf::from("dienhong-checkpoint.key")
        );
        assert_eq!(
            at("postgres://db/dienhong", Some("/etc/dienhong/cp.key")),
            PathBuf::from("/etc/dienhong/cp.key")
        );
    }

    #[test]
    fn a_certificate_without_its_key_is_a_configuration_error() {
        let err = with_env(&[("DIENHONG__SERVER__TLS_CERT", "/etc/dienhong/cert.pem")])
            .expect_err("refused");
        assert!(err.to_string().contains("go together"), "{err}");
        assert!(with_env(&[("DIENHONG__CONTROL__WS_TICKET_SECS", "0")]).is_err());
    }

    #[test]
    fn embedded_defaults_load_and_list_the_chamber_and_63_delegations() {
        let cfg = Config::load_with_env(None, Vec::new()).expect("defaults load");
        let list = cfg.delegations().expect("embedded list parses");
        assert_eq!(list.len(), 64);
        assert_eq!(list[0].kind, DelegationKind::Chamber);
        assert!(
            list.iter()
                .any(|d| d.code.as_str() == "01" && d.name == "Hà Nội")
        );
        assert!(list.iter().any(|d| d.code.as_str() == "79"));
        assert_eq!(cfg.rules.speaking.discussion_secs, 420);
    }

    #[test]
    fn environment_overrides_the_files() {
        let env = vec![
            (
                "DIENHONG__SERVER__LISTEN".to_owned(),
                "127.0.0.1:9999".to_owned(),
            ),
            (
                "DIENHONG__RULES__SPEAKING__DEBATE_SECS".to_owned(),
                "240".to_owned(),
            ),
            ("UNRELATED".to_owned(), "x".to_owned()),
        ];
        let cfg = Config::load_with_env(None, env).expect("loads");
        assert_eq!(cfg.server.listen.port(), 9999);
        assert_eq!(cfg.rules.speaking.debate_secs, 240);
    }

    #[test]
    fn invalid_values_are_refused_at_start() {
        let env = vec![(
            "DIENHONG__RULES__QUORUM__DENOMINATOR".to_owned(),
            "0".to_owned(),
        )];
        assert!(matches!(
            Config::load_with_env(None, env),
            Err(ConfigError::Invalid(_))
        ));
        let env = vec![(
            "DIENHONG__SERVER__LISTEN".to_owned(),
            "not an address".to_owned(),
        )];
        assert!(Config::load_with_env(None, env).is_err());
        let env = vec![("DIENHONG__MEDIA__IO_THREADS".to_owned(), "65".to_owned())];
        match Config::load_with_env(None, env) {
            Err(ConfigError::Invalid(m)) => assert!(m.contains("io_threads"), "{m}"),
            other => panic!("65 media threads were accepted: {other:?}"),
        }
        let env = vec![("DIENHONG__MEDIA__IO_THREADS".to_owned(), "4".to_owned())];
        let c = Config::load_with_env(None, env).expect("4 threads");
        assert_eq!(c.media.io_threads, 4);
        let env = vec![(
            "DIENHONG__CONTROL__FANOUT_QUEUE".to_owned(),
            "70000".to_owned(),
        )];
        match Config::load_with_env(None, env) {
            Err(ConfigError::Invalid(m)) => assert!(m.contains("fanout_queue"), "{m}"),
            other => panic!("a queue of 70,000 was accepted: {other:?}"),
        }
        let env = vec![("DIENHONG__CONTROL__FANOUT_QUEUE".to_owned(), "0".to_owned())];
        let c = Config::load_with_env(None, env).expect("no queue");
        assert_eq!(c.control.fanout_queue, 0);
    }

    #[test]
    fn a_roster_file_parses_roles_and_optional_delegations() {
        let text =
            "code\tname\tdelegation\troles\nCT\tChủ tịch\t01\tchair, deputy\nTK\tThư ký\t\tclerk\n";
        let actors = parse_roster(text).expect("parses");
        assert_eq!(actors.len(), 2);
        assert!(
            actors[0].has(crate::sitting::Role::Chair)
                && actors[0].has(crate::sitting::Role::Deputy)
        );
        assert_eq!(actors[1].delegation, None);
        let bad = "code\tname\tdelegation\troles\nX\tY\t01\tking\n";
        assert!(matches!(
            parse_roster(bad),
            Err(ConfigError::Roster { line: 2, .. })
        ));
    }

    #[test]
    fn a_malformed_delegations_line_names_its_line() {
        let text = "code\tname\tkind\tregion\n01\tHà Nội\tmunicipality\tX\n02\tbroken\n";
        match parse_delegations(text) {
            Err(ConfigError::Delegations { line, .. }) => assert_eq!(line, 3),
            other => panic!("expected a line error, got {other:?}"),
        }
    }
}
