//! The `dienhong` command: `serve`, `demo` (serve with the demo sitting seeded) and `verify`.

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
    /// Walk every sitting's hash chain; print `ok N events` or the first broken sequence number.
    Verify {
        /// Database URL (overrides database.url).
        #[arg(long)]
        database: Option<String>,
        /// Only this sitting.
        #[arg(long)]
        sitting: Option<String>,
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
            Cmd::Demo { listen, database } => serve(config, true, listen, database).await,
            Cmd::Verify { database, sitting } => verify(config, database, sitting).await,
            Cmd::Passwd { code, database } => passwd(config, code, database).await,
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
    let app = App::start(&config, demo).await.context("starting")?;
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("binding {}", config.server.listen))?;
    let addr = listener.local_addr().context("local address")?;
    tracing::info!("listening on {addr}");
    server::run(listener, app, server::shutdown_signal())
        .await
        .context("serving")?;
    Ok(ExitCode::SUCCESS)
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
        agenda: agenda_text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
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
    store.close().await;
    Ok(if broken {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
