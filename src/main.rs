//! The `dienhong` command: `serve`, `demo` (serve with the demo sitting seeded), `verify`,
//! `passwd`, `create-sitting`, `export`, `reindex`, `openapi` and `dev-cert`.

use anyhow::Context;
use clap::{Parser, Subcommand};
use dienhong::config::Config;
use dienhong::server::{self, App};
use dienhong::store::{Store, Verification};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "dienhong",
    version,
    about = "Hybrid parliament sittings: procedure, voting, durable log"
)]
struct Cli {
    /// A TOML file layered over the embedded defaults (configs/default.toml, rules.toml).
    #[arg(long, global = true, env = "DIENHONG_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the server.
    Serve {
        /// Seed the demo sitting (synthetic roster) if it does not exist yet.
        #[arg(long)]
        demo: bool,
        /// Listen address (overrides server.listen).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Database URL (overrides database.url).
        #[arg(long)]
        database: Option<String>,
    },
    /// Run the server with the demo sitting seeded: `serve --demo`.
    Demo {
        /// Listen address (overrides server.listen).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Database URL (overrides database.url).
        #[arg(long)]
        database: Option<String>,
        /// Serve HTTPS for the machines of the local network with a development certificate
        /// (made in --cert-dir by `dev-cert` unless there): listens on 0.0.0.0:8443 unless
        /// --listen says otherwise, and media on this machine's network address.
        #[arg(long)]
        tls: bool,
        /// Where the development certificate is kept.
        #[arg(long, default_value = ".")]
        cert_dir: PathBuf,
    },
    /// Write a development certificate authority (dev-ca.pem) and a server certificate
    /// signed by it (dev-cert.pem, dev-key.pem) for this machine's names and addresses.
    DevCert {
        /// Directory to write into.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// A further host name or address the certificate must be valid for (repeatable).
        #[arg(long = "name")]
        names: Vec<String>,
    },
    /// Create a sitting from a roster file and an agenda file (the server loads it at start).
    CreateSitting {
        /// Sitting id, e.g. "kh10-phien-12".
        #[arg(long)]
        id: String,
        /// Title shown to users.
        #[arg(long)]
        title: String,
        /// Roster TSV: header, then `code<TAB>name<TAB>delegation<TAB>roles` (roles comma-separated).
        #[arg(long)]
        roster: PathBuf,
        /// Agenda: one item title per line.
        #[arg(long)]
        agenda: PathBuf,
        /// Database URL (overrides database.url).
        #[arg(long)]
        database: Option<String>,
    },
    /// Set an account's password, read from the first line of standard input.
    Passwd {
        /// The login code (deputy or staff code).
        code: String,
        /// Database URL (overrides database.url).
        #[arg(long)]
        database: Option<String>,
    },
    /// Write the minutes of a sitting, made from its log, to a file or standard output.
    Export {
        /// The sitting.
        #[arg(long)]
        sitting: String,
        /// html, json, csv or pdf.
        #[arg(long, default_value = "html", value_parser = ["html", "json", "csv", "pdf"])]
        format: String,
        /// For csv: attendance, speeches or roll_call.
        #[arg(long, default_value = "roll_call", value_parser = ["attendance", "speeches", "roll_call"])]
        table: String,
        /// vi or en.
        #[arg(long, default_value = "vi", value_parser = ["vi", "en"])]
        lang: String,
        /// The file to write; standard output if absent.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Database URL (overrides database.url).
        #[arg(long)]
        database: Option<String>,
    },
    /// Rebuild the documents' search index from every sitting's log and the stored files
    /// (with the server stopped: the index is the server's while it runs).
    Reindex {
        /// Database URL (overrides database.url).
        #[arg(long)]
        database: Option<String>,
    },
    /// Print the OpenAPI description of the HTTP API (as served at `/api/openapi.json`).
    Openapi,
    /// Walk every sitting's hash chain and the audit trail's; print `ok N events` or the first
    /// broken sequence number.
    /// With --checkpoint, also check the log against signed checkpoints kept elsewhere.
    Verify {
        /// Database URL (overrides database.url).
        #[arg(long)]
        database: Option<String>,
        /// Only this sitting.
        #[arg(long)]
        sitting: Option<String>,
        /// A file with one checkpoint, a list of them (as `GET
        /// /api/sittings/{id}/checkpoints` gives), or the minutes exported as JSON: the log
        /// must still hold each head.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// The signing key the checkpoints must carry (base64 ed25519, as printed at start).
        #[arg(long, requires = "checkpoint")]
        public_key: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("dienhong: {e}");
            return ExitCode::from(2);
        }
    };
    init_tracing(&config);
    // Every connection is a file descriptor; lift the soft limit to the hard one.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!(nofile = n, "file descriptor limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the file descriptor limit"),
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("dienhong: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Cmd::Serve {
                demo,
                listen,
                database,
            } => serve(config, demo, listen, database).await,
            Cmd::Demo {
                listen,
                database,
                tls,
                cert_dir,
            } => {
                if tls {
                    demo_tls(config, listen, database, &cert_dir).await
                } else {
                    serve(config, true, listen, database).await
                }
            }
            Cmd::DevCert { out, names } => dev_cert(&out, &names),
            Cmd::Verify {
                database,
                sitting,
                checkpoint: Some(file),
                public_key,
            } => verify_checkpoints(config, database, sitting, &file, public_key).await,
            Cmd::Verify {
                database, sitting, ..
            } => verify(config, database, sitting).await,
            Cmd::Passwd { code, database } => passwd(config, code, database).await,
            Cmd::Reindex { database } => reindex(config, database).await,
            Cmd::Openapi => {
                println!("{}", dienhong::server::openapi_description());
                Ok(ExitCode::SUCCESS)
            }
            Cmd::Export {
                sitting,
                format,
                table,
                lang,
                out,
                database,
            } => export(config, database, &sitting, &format, &table, &lang, out).await,
            Cmd::CreateSitting {
                id,
                title,
                roster,
                agenda,
                database,
            } => create_sitting(config, id, title, roster, agenda, database).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "fatal");
            eprintln!("dienhong: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&config.log.filter))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.log.json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn serve(
    mut config: Config,
    demo: bool,
    listen: Option<std::net::SocketAddr>,
    database: Option<String>,
) -> anyhow::Result<ExitCode> {
    if let Some(l) = listen {
        config.server.listen = l;
    }
    if let Some(d) = database {
        config.database.url = d;
    }
    config.server.check_transport(demo)?;
    let tls = match config.server.tls_files() {
        Some((cert, key)) => Some(server::Tls::load(cert, key)?),
        None => None,
    };
    let app = App::start(&config, demo).await.context("starting")?;
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("binding {}", config.server.listen))?;
    let addr = listener.local_addr().context("local address")?;
    if tls.is_some() {
        tracing::info!("listening on https://{addr}");
    } else {
        tracing::info!("listening on {addr}");
    }
    server::run_with(listener, app, tls, server::shutdown_signal())
        .await
        .context("serving")?;
    Ok(ExitCode::SUCCESS)
}

/// `demo --tls`: the demo over HTTPS for the local network, with a development certificate.
async fn demo_tls(
    mut config: Config,
    listen: Option<std::net::SocketAddr>,
    database: Option<String>,
    cert_dir: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    use dienhong::devcert::{self, DevCertFiles};
    let files = DevCertFiles::in_dir(cert_dir);
    if !files.exist() {
        dev_cert(cert_dir, &[])?;
    }
    // The first address of this machine on a network, for the SFU's media and the URLs.
    let lan = devcert::machine_names(&[])
        .into_iter()
        .filter_map(|n| n.parse::<std::net::IpAddr>().ok())
        .find(|ip| ip.is_ipv4() && !ip.is_loopback());
    config.server.listen = listen.unwrap_or_else(|| ([0, 0, 0, 0], 8443).into());
    config.server.tls_cert = Some(files.cert.clone());
    config.server.tls_key = Some(files.key.clone());
    if let Some(ip) = lan
        && config.media.bind_ip.is_loopback()
    {
        config.media.bind_ip = ip;
    }
    let port = config.server.listen.port();
    println!("dienhong demo over HTTPS, port {port}:");
    println!("  https://localhost:{port}/");
    if let Some(ip) = lan {
        println!("  https://{ip}:{port}/   (from a phone or laptop on the same network)");
    }
    println!(
        "Trust {} once on each device first (README: \"Trying it from a phone\").",
        files.ca.display()
    );
    serve(config, true, None, database).await
}

/// `dev-cert`: writes the development authority, certificate and key into `out`.
fn dev_cert(out: &std::path::Path, extra: &[String]) -> anyhow::Result<ExitCode> {
    use dienhong::devcert;
    let names = devcert::machine_names(extra);
    let now = dienhong::clock::now_millis().0 / 1000;
    let cert = devcert::generate(&names, now)?;
    let files = devcert::write(&cert, out)?;
    let mut o = std::io::stdout().lock();
    writeln!(o, "wrote {}", files.ca.display())?;
    writeln!(o, "wrote {}", files.cert.display())?;
    writeln!(o, "wrote {} (keep it private)", files.key.display())?;
    writeln!(o, "valid for: {}", cert.names.join(", "))?;
    writeln!(
        o,
        "authority fingerprint (SHA-256): {}",
        cert.ca_fingerprint
    )?;
    writeln!(o, "server key SPKI (SHA-256, base64): {}", cert.spki_sha256)?;
    writeln!(
        o,
        "serve with: DIENHONG__SERVER__TLS_CERT={} DIENHONG__SERVER__TLS_KEY={} dienhong serve",
        files.cert.display(),
        files.key.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `verify --checkpoint FILE`: each checkpoint's signature, then the log against it.
async fn verify_checkpoints(
    mut config: Config,
    database: Option<String>,
    only: Option<String>,
    file: &std::path::Path,
    public_key: Option<String>,
) -> anyhow::Result<ExitCode> {
    use dienhong::checkpoint::{Checkpoint, judge};
    if let Some(d) = database {
        config.database.url = d;
    }
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
    let checkpoints: Vec<Checkpoint> = if value.is_array() {
        serde_json::from_value(value)
    } else if let Some(list) = value.get("checkpoints") {
        // The minutes as exported in JSON.
        serde_json::from_value(list.clone())
    } else {
        serde_json::from_value(value).map(|c| vec![c])
    }
    .with_context(|| format!("{} does not hold checkpoints", file.display()))?;
    let store = Store::open(&config.database.url)
        .await
        .context("opening the store")?;
    let mut out = std::io::stdout().lock();
    let mut failed = false;
    for cp in checkpoints
        .iter()
        .filter(|c| only.as_ref().is_none_or(|s| c.sitting.as_str() == s))
    {
        let facts = store.log_facts(&cp.sitting, cp.seq).await?;
        match judge(cp, public_key.as_deref(), &facts) {
            Ok(()) => writeln!(
                out,
                "{}: ok, the log holds the checkpoint at seq {} ({:?})",
                cp.sitting, cp.seq, cp.reason
            )?,
            Err(failure) => {
                failed = true;
                writeln!(out, "{}: FAILED at seq {}: {failure}", cp.sitting, cp.seq)?;
            }
        }
    }
    store.close().await;
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn create_sitting(
    config: Config,
    id: String,
    title: String,
    roster: PathBuf,
    agenda: PathBuf,
    database: Option<String>,
) -> anyhow::Result<ExitCode> {
    let roster_text = std::fs::read_to_string(&roster)
        .with_context(|| format!("reading {}", roster.display()))?;
    let agenda_text = std::fs::read_to_string(&agenda)
        .with_context(|| format!("reading {}", agenda.display()))?;
    let actors = dienhong::config::parse_roster(&roster_text)?;
    let roster = dienhong::sitting::Roster::new(config.delegations()?, actors)?;
    let command = dienhong::sitting::Command::CreateSitting {
        sitting: dienhong::sitting::SittingId::new(&id),
        title,
        roster,
        rules: config.rules.clone(),
        agenda: dienhong::config::parse_agenda(&agenda_text),
    };
    let url = database.unwrap_or(config.database.url);
    let store = Store::open(&url).await.context("opening the store")?;
    let state = server::create_sitting(&store, &command).await?;
    store.close().await;
    tracing::info!(sitting = %id, members = state.roster.members(), "sitting created; set passwords with `dienhong passwd`");
    Ok(ExitCode::SUCCESS)
}

async fn passwd(
    config: Config,
    code: String,
    database: Option<String>,
) -> anyhow::Result<ExitCode> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.chars().count() < 8 {
        anyhow::bail!("the password must have at least 8 characters");
    }
    let url = database.unwrap_or(config.database.url);
    let store = Store::open(&url).await.context("opening the store")?;
    let phc = dienhong::auth::hash_password(password).context("hashing")?;
    store
        .set_credentials(&[(dienhong::sitting::ActorId::new(&code), phc)])
        .await
        .context("storing")?;
    store.close().await;
    tracing::info!(code = %code, "password set");
    Ok(ExitCode::SUCCESS)
}

/// Renders the minutes of one sitting as `dienhong export` asks.
async fn reindex(mut config: Config, database: Option<String>) -> anyhow::Result<ExitCode> {
    use dienhong::documents::{Documents, search::SearchIndex};
    if let Some(url) = database {
        config.database.url = url;
    }
    let url = config.database.url.clone();
    let store = Store::open(&url).await.context("opening the store")?;
    let blobs = config.blob_store().context("the document store")?;
    let spool = std::env::temp_dir().join(format!("dienhong-reindex-{}", std::process::id()));
    let documents = Documents::new(
        blobs,
        store.clone(),
        spool.clone(),
        dienhong::documents::Limits::from(&config.documents),
    )
    .context("the spool folder")?;
    let dir = config.index_dir(&url);
    let index = SearchIndex::open(&dir).context("opening the search index")?;
    index.clear().context("emptying the search index")?;
    for meta in store.sittings().await.context("listing the sittings")? {
        documents
            .index_sitting(&index, &meta.sitting, 0)
            .await
            .with_context(|| format!("indexing {}", meta.sitting))?;
    }
    let _ = std::fs::remove_dir_all(&spool);
    println!(
        "indexed {} document versions in {}",
        index.len(),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

async fn export(
    config: Config,
    database: Option<String>,
    sitting: &str,
    format: &str,
    table: &str,
    lang: &str,
    out: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    use dienhong::minutes::render::{self, Lang, Table};
    let url = database.unwrap_or(config.database.url);
    let store = Store::open(&url).await.context("opening the store")?;
    let now = dienhong::clock::now_millis();
    let minutes =
        dienhong::minutes::load::load(&store, &dienhong::sitting::SittingId::new(sitting), now)
            .await
            .context("reading the sitting's log")?;
    let lang = if lang == "en" { Lang::En } else { Lang::Vi };
    let table = match table {
        "attendance" => Table::Attendance,
        "speeches" => Table::Speeches,
        _ => Table::RollCall,
    };
    let bytes = match format {
        "json" => render::json(&minutes)?,
        "csv" => render::csv(&minutes, table, lang)?,
        "pdf" => dienhong::minutes::pdf::pdf(&minutes, lang)?,
        _ => render::html(&minutes, lang),
    };
    match out {
        Some(path) => {
            std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?
        }
        None => std::io::stdout().write_all(&bytes)?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn verify(
    config: Config,
    database: Option<String>,
    only: Option<String>,
) -> anyhow::Result<ExitCode> {
    let url = database.unwrap_or(config.database.url);
    let store = Store::open(&url).await.context("opening the store")?;
    let mut broken = false;
    let sittings = store.sittings().await.context("listing sittings")?;
    if sittings.is_empty() {
        eprintln!("no sittings in {url}");
    }
    for meta in sittings {
        if only.as_deref().is_some_and(|s| s != meta.sitting.as_str()) {
            continue;
        }
        match store.verify(&meta.sitting).await.context("verifying")? {
            Verification::Ok { events } => {
                eprintln!("sitting {}:", meta.sitting);
                writeln!(std::io::stdout(), "ok {events} events")?;
            }
            Verification::Broken { seq, reason } => {
                eprintln!("sitting {}:", meta.sitting);
                writeln!(std::io::stdout(), "broken at seq {seq}: {reason}")?;
                broken = true;
            }
        }
    }
    if only.is_none() {
        match store
            .verify_audit()
            .await
            .context("verifying the audit trail")?
        {
            Verification::Ok { events } => {
                writeln!(std::io::stdout(), "audit trail ok {events} entries")?;
            }
            Verification::Broken { seq, reason } => {
                writeln!(
                    std::io::stdout(),
                    "audit trail broken at seq {seq}: {reason}"
                )?;
                broken = true;
            }
        }
    }
    store.close().await;
    Ok(if broken {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
