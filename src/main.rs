//! The `crisisdesk` command line: one binary for the relay, the console, the
//! demo and the operator tools. Exit codes: 0 success, 1 a failed check or
//! operation, 2 bad usage.

// No unwrap and no panic on any path of the relay or the console; tests
// may (see Cargo.toml [lints] for the rest).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::panic))]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[cfg(feature = "console")]
use crisisdesk::console::{self, ConsoleOptions, Lang};
#[cfg(all(feature = "relay", feature = "console"))]
use crisisdesk::demo;
#[cfg(any(feature = "relay", feature = "console"))]
use crisisdesk::logging;
use crisisdesk::protocol::Role;
#[cfg(feature = "relay")]
use crisisdesk::relay;
use crisisdesk::review::{self, Format};
use crisisdesk::store::{self, Store};
use crisisdesk::{audit, drill, playbook};

#[derive(Parser, Debug)]
#[command(
    name = "crisisdesk",
    version,
    about = "Alert relay and duty console for school mental-health crisis teams (心理危机干预)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Everything in one process, no set-up: relay, drill feed and console.
    #[cfg(all(feature = "relay", feature = "console"))]
    Demo {
        /// Where the demo keeps its SQLite file (default: the per-user data
        /// directory, e.g. ~/.local/share/crisisdesk/demo).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Console language.
        #[arg(long, value_enum)]
        lang: Option<Lang>,
    },
    /// The alert relay: HTTP ingest and websocket stream.
    #[cfg(feature = "relay")]
    Relay {
        /// Address to listen on, e.g. 127.0.0.1:7710.
        #[arg(long, default_value = "127.0.0.1:7710")]
        listen: String,
        /// Database URL: sqlite:PATH (created if missing), or
        /// postgres://USER@HOST/DATABASE (which must exist; see
        /// docs/operations.md for what runs on PostgreSQL so far).
        #[arg(long)]
        db: String,
        /// Playbook directory (default: the playbooks built into this
        /// binary). The relay refuses to start if any playbook is invalid.
        #[arg(long)]
        playbooks: Option<PathBuf>,
        /// File the relay appends audit-chain checkpoints to (default:
        /// the database path + `.checkpoints`; none on PostgreSQL unless
        /// given). Copy it off the machine.
        #[arg(long)]
        audit_checkpoints: Option<PathBuf>,
        /// A browser origin allowed to open the stream (repeatable). Without
        /// any, requests carrying an Origin header are refused.
        #[arg(long = "allow-origin")]
        allow_origins: Vec<String>,
        /// Alert posts and commands per second per credential.
        #[arg(long, default_value_t = 50.0)]
        rate_limit: f64,
        /// Requests a credential may make in a burst above the rate.
        #[arg(long, default_value_t = 500.0)]
        rate_burst: f64,
        /// Live stream connections per credential.
        #[arg(long, default_value_t = 8)]
        max_connections: usize,
        /// PEM certificate chain: serve https:// and wss:// (with --tls-key).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key for --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Allow plain HTTP on a non-loopback address (never do this on a
        /// network students or the public can reach).
        #[arg(long)]
        insecure: bool,
        /// Incident reporting rules file (default: the built-in
        /// reporting/rules.toml). The relay refuses to start if it is invalid.
        #[arg(long)]
        reporting_rules: Option<PathBuf>,
    },
    /// The tamper-evident audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Post-incident review of one case, or the score of a drill.
    Review {
        /// Case id (e.g. C000012); omit with --drill.
        #[arg(required_unless_present = "drill")]
        case: Option<String>,
        /// Score a drill by its exercise id instead.
        #[arg(long, conflicts_with = "case")]
        drill: Option<String>,
        #[arg(long)]
        db: String,
        #[arg(long, value_enum, default_value = "md")]
        format: Format,
        #[command(flatten)]
        common: ReviewOptions,
    },
    /// Period summary (工作总结) of cases opened between two dates.
    Report {
        #[arg(long)]
        db: String,
        /// First day, YYYY-MM-DD (local to --utc-offset) or RFC 3339.
        #[arg(long)]
        from: String,
        /// Day after the last, YYYY-MM-DD or RFC 3339 (exclusive).
        #[arg(long)]
        to: String,
        #[arg(long, value_enum, default_value = "md")]
        format: Format,
        /// Count drill and test cases too (left out by default).
        #[arg(long)]
        drills: bool,
        #[command(flatten)]
        common: ReviewOptions,
    },
    /// Manage credentials.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// The duty console (TUI).
    #[cfg(feature = "console")]
    #[command(after_help = console::config::help_footer())]
    Console {
        /// Relay URL, e.g. ws://127.0.0.1:7710 or http://127.0.0.1:7710
        /// (default: `relay` in the config file). Repeat it for relays on
        /// one database: they are tried in turn, resuming where the last
        /// left off.
        #[arg(long)]
        relay: Vec<String>,
        /// Config file to use instead of the per-user one.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Credential token (or set CRISISDESK_TOKEN).
        #[arg(long, env = "CRISISDESK_TOKEN", hide_env_values = true)]
        token: String,
        /// PEM file of the CA that signed a wss:// relay's certificate.
        #[arg(long)]
        ca: Option<PathBuf>,
        /// Allow plain ws:// to a relay that is not on this machine.
        #[arg(long)]
        insecure: bool,
        /// Console language.
        #[arg(long, value_enum)]
        lang: Option<Lang>,
    },
    /// Playbook tools.
    Playbook {
        #[command(subcommand)]
        command: PlaybookCommand,
    },
    /// Drill scenarios (应急演练): check them, list them, play one into a relay.
    Drill {
        #[command(subcommand)]
        command: drill::cli::DrillCommand,
    },
    /// Screening (心理普查/测评): plans and imports of platform exports.
    Screening {
        #[command(subcommand)]
        command: crisisdesk::screening::cli::ScreeningCommand,
    },
    /// Scale and risk rule files: check them; explain a student's grades.
    Rules {
        #[command(subcommand)]
        command: crisisdesk::screening::cli::RulesCommand,
    },
    /// Incident reports upward (事件信息报告): check the rules, list, export.
    Incident {
        #[command(subcommand)]
        command: crisisdesk::reporting::cli::IncidentCommand,
    },
    /// The district view (教育局/区心理中心): counts across schools, no
    /// student identity.
    District {
        #[arg(long)]
        db: String,
        /// JSON instead of a text table.
        #[arg(long)]
        json: bool,
    },
    /// Statistics export for the bureau (XLSX or CSV, Chinese headers).
    Stats(crisisdesk::stats::cli::StatsArgs),
    /// School calendars (校历): check them, load one into the database.
    Calendar {
        #[command(subcommand)]
        command: crisisdesk::followup::cli::CalendarCommand,
    },
    /// Follow-up schedules (跟踪回访): check one.
    Schedule {
        #[command(subcommand)]
        command: crisisdesk::followup::cli::ScheduleCommand,
    },
    /// The student's record (一生一档) across cases and screenings.
    Student {
        #[command(subcommand)]
        command: crisisdesk::followup::cli::StudentCommand,
    },
}

#[derive(Subcommand, Debug)]
enum TokenCommand {
    /// Create a credential; prints the token alone on stdout.
    Create {
        #[arg(long)]
        db: String,
        /// Who holds it, e.g. "wang-counselor" (staff name, not a student's).
        #[arg(long)]
        name: String,
        /// producer, counselor, head_teacher, leader, nurse, security,
        /// reviewer, admin or district.
        #[arg(long)]
        role: Role,
        /// This credential's own request rate per second (alert posts,
        /// batches and commands), instead of the relay's --rate default.
        #[arg(long, value_parser = positive_f64)]
        rate: Option<f64>,
        /// Requests allowed at once above the rate (with --rate).
        #[arg(long, value_parser = positive_f64)]
        burst: Option<f64>,
        /// Live stream connections this credential may hold at once, e.g.
        /// a district console wall.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        max_connections: Option<u32>,
    },
    /// List credentials (id, name, role, created, revoked); never tokens.
    List {
        #[arg(long)]
        db: String,
    },
    /// Revoke a credential by id; a running relay ends its connections
    /// within a second.
    Revoke {
        #[arg(long)]
        db: String,
        #[arg(long)]
        id: i64,
    },
}

#[derive(clap::Args, Debug)]
struct ReviewOptions {
    /// Playbook directory the cases ran under (default: built-in).
    #[arg(long)]
    playbooks: Option<PathBuf>,
    /// Show times at this UTC offset, e.g. +08:00 (default: this machine's).
    #[arg(long)]
    utc_offset: Option<String>,
    /// Describe the case as of this RFC 3339 time (default: its closing
    /// time, or now).
    #[arg(long)]
    as_of: Option<String>,
    /// Write to this file instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

impl ReviewOptions {
    fn offset(&self) -> anyhow::Result<chrono::FixedOffset> {
        crisisdesk::period::utc_offset(self.utc_offset.as_deref())
    }

    fn as_of(&self) -> anyhow::Result<Option<chrono::DateTime<chrono::Utc>>> {
        self.as_of
            .as_deref()
            .map(|t| {
                chrono::DateTime::parse_from_rfc3339(t)
                    .map(|t| t.with_timezone(&chrono::Utc))
                    .map_err(|e| anyhow::anyhow!("--as-of: `{t}` is not an RFC 3339 time: {e}"))
            })
            .transpose()
    }

    fn library(&self) -> anyhow::Result<playbook::Library> {
        playbook::shipped::load(self.playbooks.as_deref()).map_err(|problems| {
            let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
            anyhow::anyhow!("invalid playbooks:\n{}", lines.join("\n"))
        })
    }

    fn emit(&self, text: &str) -> anyhow::Result<()> {
        match &self.out {
            Some(path) => std::fs::write(path, text)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display())),
            None => {
                print!("{text}");
                Ok(())
            }
        }
    }
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Check the whole chain (and checkpoints); exit 1 naming the first bad
    /// entry.
    Verify {
        #[arg(long)]
        db: String,
        /// Checkpoint file kept off the machine (default: the one beside
        /// the database, if present).
        #[arg(long)]
        checkpoints: Option<PathBuf>,
    },
    /// Print the chain's head (`SEQ HASH`) to record elsewhere.
    Head {
        #[arg(long)]
        db: String,
    },
}

#[derive(Subcommand, Debug)]
enum PlaybookCommand {
    /// Validate playbooks; prints `file:line: problem` for each error.
    Check {
        #[arg(default_value = "playbooks")]
        dir: PathBuf,
    },
}

/// Every subcommand allocates many small, short-lived strings and JSON
/// values (see the `mimalloc` note in Cargo.toml).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("crisisdesk: {err:#}");
            ExitCode::from(1)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// The duty console's runtime: one thread. Its work is one UI loop and one
/// connection, each mostly waiting; on worker threads the connection
/// decoded every frame on one thread and the UI kept the result on
/// another, and the allocator's per-thread pages held both, the frames'
/// temporaries interleaved with the cases kept (issue 10).
#[cfg(feature = "console")]
fn console_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        #[cfg(all(feature = "relay", feature = "console"))]
        Command::Demo { data_dir, lang } => {
            let dir = match data_dir {
                Some(dir) => dir,
                None => demo::default_data_dir()?,
            };
            let _log = logging::to_file(&dir.join("crisisdesk.log"))?;
            runtime()?.block_on(demo::run(&dir, Lang::resolve(lang)))?;
        }
        #[cfg(feature = "relay")]
        Command::Relay {
            listen,
            db,
            playbooks,
            audit_checkpoints,
            allow_origins,
            rate_limit,
            rate_burst,
            max_connections,
            tls_cert,
            tls_key,
            insecure,
            reporting_rules,
        } => {
            if rate_limit <= 0.0 || rate_burst < 1.0 || max_connections == 0 {
                eprintln!(
                    "crisisdesk: --rate-limit must be above 0, --rate-burst at least 1 and --max-connections at least 1"
                );
                return Ok(ExitCode::from(2));
            }
            logging::to_stderr();
            let library = match playbook::shipped::load(playbooks.as_deref()) {
                Ok(library) => library,
                Err(problems) => {
                    for p in &problems {
                        eprintln!("{p}");
                    }
                    eprintln!("crisisdesk: the relay will not start with invalid playbooks");
                    return Ok(ExitCode::from(1));
                }
            };
            let reporting = match crisisdesk::reporting::cli::load_checked(
                reporting_rules.as_deref(),
                &library,
            ) {
                Ok(rules) => rules,
                Err(problems) => {
                    for p in &problems {
                        eprintln!("{p}");
                    }
                    eprintln!("crisisdesk: the relay will not start with invalid reporting rules");
                    return Ok(ExitCode::from(1));
                }
            };
            let tls = match (&tls_cert, &tls_key) {
                (Some(cert), Some(key)) => Some(crisisdesk::tls::server_config(cert, key)?),
                _ => None,
            };
            let host = listen.rsplit_once(':').map_or(listen.as_str(), |(h, _)| h);
            if tls.is_none() && !insecure && !crisisdesk::tls::is_loopback(host) {
                eprintln!(
                    "crisisdesk: refusing plain HTTP on {listen}: give --tls-cert and --tls-key, \
                     listen on 127.0.0.1, or pass --insecure on a trusted network"
                );
                return Ok(ExitCode::from(2));
            }
            runtime()?.block_on(async {
                let store = Store::open(&db).await?.with_reporting_rules(reporting);
                let listener = tokio::net::TcpListener::bind(&listen)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
                let addr = listener.local_addr()?;
                tracing::info!(%addr, "relay listening");
                // On stdout for whoever started us (scripts, tests) to read,
                // e.g. after `--listen 127.0.0.1:0`.
                let scheme = if tls.is_some() { "https" } else { "http" };
                println!("crisisdesk relay listening on {scheme}://{addr}");
                let checkpoint_file =
                    audit_checkpoints.or_else(|| store::default_checkpoint_file(&db));
                if let Some(file) = &checkpoint_file {
                    tracing::info!(file = %file.display(), "audit checkpoints");
                }
                let relay = relay::Relay::with_config(
                    store,
                    library,
                    relay::RelayConfig {
                        checkpoint_file,
                        allowed_origins: allow_origins,
                        requests_per_sec: rate_limit,
                        request_burst: rate_burst,
                        max_connections_per_credential: max_connections,
                    },
                );
                match tls {
                    Some(tls) => relay::serve_tls(listener, relay, shutdown_signal(), tls).await?,
                    None => relay::serve(listener, relay, shutdown_signal()).await?,
                }
                anyhow::Ok(())
            })?;
        }
        Command::Token {
            command:
                TokenCommand::Create {
                    db,
                    name,
                    role,
                    rate,
                    burst,
                    max_connections,
                },
        } => {
            let name = name.trim().to_string();
            if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
                eprintln!("crisisdesk: --name must be 1 to 64 printable characters");
                return Ok(ExitCode::from(2));
            }
            let token = runtime()?.block_on(async {
                let store = Store::open(&db).await?;
                let operator = std::env::var("USER").unwrap_or_else(|_| "local".to_string());
                let limits = crisisdesk::store::Limits {
                    rate_per_sec: rate,
                    burst,
                    max_connections,
                };
                let token = store
                    .create_credential_with(&name, role, &operator, limits)
                    .await?;
                store.close().await;
                anyhow::Ok(token)
            })?;
            println!("{token}");
        }
        Command::Token {
            command: TokenCommand::List { db },
        } => {
            let list =
                runtime()?.block_on(async { Store::open(&db).await?.list_credentials().await })?;
            println!(
                "{:>5}  {:<12}  {:<24}  {:<20}  revoked",
                "id", "role", "name", "created"
            );
            for c in list {
                // Padded by display width: a Chinese name takes two cells a glyph.
                println!(
                    "{:>5}  {:<12}  {}  {:<20}  {}",
                    c.id,
                    c.role.as_str(),
                    crisisdesk::text::pad(&crisisdesk::text::inert(&c.name), 24),
                    c.created_at.format("%Y-%m-%d %H:%M:%S"),
                    c.revoked_at
                        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                        .unwrap_or_else(|| "-".into())
                );
            }
        }
        Command::Token {
            command: TokenCommand::Revoke { db, id },
        } => {
            let operator = std::env::var("USER").unwrap_or_else(|_| "local".to_string());
            let revoked = runtime()?.block_on(async {
                Store::open(&db)
                    .await?
                    .revoke_credential(id, &operator)
                    .await
            })?;
            if !revoked {
                eprintln!("crisisdesk: no live credential with id {id} (see `token list`)");
                return Ok(ExitCode::from(1));
            }
            println!("revoked credential {id}");
        }
        #[cfg(feature = "console")]
        Command::Console {
            relay,
            config,
            token,
            lang,
            ca,
            insecure,
        } => {
            purge_freed_pages_promptly();
            let config = console::config::load(config.as_deref())?;
            let relays = if relay.is_empty() {
                config.relays.clone()
            } else {
                relay
            };
            if relays.is_empty() {
                anyhow::bail!(
                    "no relay to follow: pass --relay ws://HOST:PORT or set `relay` in {}",
                    console::config::default_path()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| "the config file".into())
                );
            }
            let urls = relays
                .iter()
                .map(|r| console::stream_url(r))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let _log = logging::to_file(&logging::default_dir()?.join("console.log"))?;
            // Every relay's transport is checked before any connects; one
            // TLS set-up (the same --ca) serves each wss:// relay.
            let mut tls = None;
            for url in &urls {
                tls = console::transport(url, ca.as_deref(), insecure)?.or(tls);
            }
            let outbox = Some(console::outbox_path(&urls, &token)?);
            console_runtime()?.block_on(console::run_with(
                ConsoleOptions {
                    stream_urls: urls,
                    token,
                    lang: Lang::resolve(lang.or(config.language)),
                    banner: None,
                    tls,
                    outbox,
                },
                console::Settings::from(&config),
            ))?;
        }
        Command::Audit {
            command: AuditCommand::Verify { db, checkpoints },
        } => return runtime()?.block_on(audit_verify(&db, checkpoints)),
        Command::Review {
            case,
            drill,
            db,
            format,
            common,
        } => {
            let (offset, as_of, library) = (common.offset()?, common.as_of()?, common.library()?);
            let text = runtime()?.block_on(async {
                let store = Store::open_existing(&db).await?;
                let text = match (&drill, &case) {
                    (Some(exercise), _) => {
                        let score = review::drill::score(&store, &library, exercise, as_of).await?;
                        review::drill::render(&score, format, offset)
                    }
                    (None, Some(case)) => {
                        let story = review::build(&store, &library, case, as_of).await?;
                        review::render(&story, format, offset)
                    }
                    (None, None) => unreachable!("clap requires a case or --drill"),
                };
                store.close().await;
                anyhow::Ok(text)
            });
            match text {
                Ok(text) => common.emit(&text)?,
                Err(err) => {
                    eprintln!("crisisdesk: {err:#}");
                    return Ok(ExitCode::from(1));
                }
            }
        }
        Command::Report {
            db,
            from,
            to,
            format,
            drills,
            common,
        } => {
            let offset = common.offset()?;
            let (from, to) = (
                crisisdesk::period::boundary(&from, offset, "--from")?,
                crisisdesk::period::boundary(&to, offset, "--to")?,
            );
            if from >= to {
                eprintln!("crisisdesk: --from must be before --to");
                return Ok(ExitCode::from(2));
            }
            let (library, as_of) = (common.library()?, common.as_of()?);
            let text = runtime()?.block_on(async {
                let store = Store::open_existing(&db).await?;
                let report =
                    review::report::build(&store, &library, from, to, drills, as_of).await?;
                store.close().await;
                anyhow::Ok(review::report::render(&report, format, offset))
            })?;
            common.emit(&text)?;
        }
        Command::Audit {
            command: AuditCommand::Head { db },
        } => {
            let head = runtime()?
                .block_on(async { Store::open_existing(&db).await?.audit_head().await })?;
            match head {
                Some(head) => println!("{}", head.to_line()),
                None => println!("0 {}", crisisdesk::audit::GENESIS),
            }
        }
        Command::Playbook {
            command: PlaybookCommand::Check { dir },
        } => {
            let problems = playbook::check_dir(&dir);
            for p in &problems {
                println!("{p}");
            }
            if !problems.is_empty() {
                eprintln!("{} problem(s) in {}", problems.len(), dir.display());
                return Ok(ExitCode::from(1));
            }
            println!("{}: all playbooks are valid", dir.display());
        }
        Command::Drill { command } => return drill_command(command),
        Command::Screening { command } => {
            return crisisdesk::screening::cli::run_screening(command);
        }
        Command::Rules { command } => return crisisdesk::screening::cli::run_rules(command),
        Command::Incident { command } => return crisisdesk::reporting::cli::run_incident(command),
        Command::District { db, json } => {
            return crisisdesk::reporting::cli::run_district(&db, json);
        }
        Command::Stats(args) => return crisisdesk::stats::cli::run(args),
        Command::Calendar { command } => return crisisdesk::followup::cli::run_calendar(command),
        Command::Schedule { command } => return crisisdesk::followup::cli::run_schedule(command),
        Command::Student { command } => return crisisdesk::followup::cli::run_student(command),
    }
    Ok(ExitCode::SUCCESS)
}

/// `drill check | list | run`; all of it lives in `crisisdesk::drill::cli`.
fn drill_command(command: drill::cli::DrillCommand) -> anyhow::Result<ExitCode> {
    drill::cli::run(command)
}

/// Pages through the trail; prints the verdict; exit 0 intact, 1 broken.
async fn audit_verify(db: &str, checkpoints: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let file = checkpoints.or_else(|| store::default_checkpoint_file(db).filter(|f| f.exists()));
    let recorded = match &file {
        Some(f) => {
            let text = std::fs::read_to_string(f)
                .map_err(|e| anyhow::anyhow!("cannot read checkpoints {}: {e}", f.display()))?;
            audit::parse_checkpoints(&text)
                .map_err(|e| anyhow::anyhow!("checkpoints {}: {e}", f.display()))?
        }
        None => Vec::new(),
    };
    let store = Store::open_existing(db).await?;
    let mut verifier = audit::ChainVerifier::new(&recorded);
    let mut after = 0;
    let verdict = loop {
        let page = store.audit_after(after, 2000).await?;
        let Some(last) = page.last() else {
            break verifier.finish();
        };
        after = last.seq;
        if let Err(err) = page.into_iter().try_for_each(|e| verifier.feed(e)) {
            break Err(err);
        }
    };
    match verdict {
        Ok(v) => {
            let head = v
                .head
                .map(|h| h.to_line())
                .unwrap_or_else(|| "empty".into());
            println!(
                "audit trail intact: {} entries, head {head}, {} checkpoint(s) matched",
                v.entries, v.checkpoints_checked
            );
            if file.is_none() {
                println!(
                    "note: no checkpoint file given; truncation of the newest entries cannot be ruled out"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            println!("audit trail BROKEN: {err}");
            Ok(ExitCode::from(1))
        }
    }
}

/// Runs the console again with mimalloc's purge delay at zero, unless the
/// environment already sets one. mimalloc returns freed pages to the
/// kernel only on a later allocator call past the delay, and a duty
/// console sits idle after its replay: the 10-13 MB the replay's frames
/// freed at 40,000 cases stayed resident (83-89 MB against 76 MB with the
/// delay at zero, issue 10). mimalloc reads its options from the
/// environment before `main`, hence the `exec`; it keeps the process id,
/// the arguments and the terminal. If it fails the console runs as it is.
#[cfg(all(feature = "console", feature = "mimalloc", unix))]
fn purge_freed_pages_promptly() {
    use std::os::unix::process::CommandExt;
    const PURGE_DELAY: &str = "MIMALLOC_PURGE_DELAY";
    if std::env::var_os(PURGE_DELAY).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    // `exec` returns only when it failed.
    let _failed = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(PURGE_DELAY, "0")
        .exec();
}

#[cfg(all(feature = "console", not(all(feature = "mimalloc", unix))))]
fn purge_freed_pages_promptly() {}

#[cfg(feature = "relay")]
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return ctrl_c.await.unwrap_or(()),
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// A strictly positive, finite number (a rate or a burst).
fn positive_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("`{s}` is not a positive number")),
    }
}
