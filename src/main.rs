//! The `crisisdesk` command line: one binary for the relay, the console, the
//! demo and the operator tools. Exit codes: 0 success, 1 a failed check or
//! operation, 2 bad usage.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crisisdesk::console::{self, ConsoleOptions, Lang};
use crisisdesk::protocol::Role;
use crisisdesk::store::{self, Store};
use crisisdesk::{audit, demo, drill, logging, playbook, relay};

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
    Relay {
        /// Address to listen on, e.g. 127.0.0.1:7710.
        #[arg(long, default_value = "127.0.0.1:7710")]
        listen: String,
        /// Database URL: sqlite:PATH (created if missing).
        #[arg(long)]
        db: String,
        /// Playbook directory (default: the playbooks built into this
        /// binary). The relay refuses to start if any playbook is invalid.
        #[arg(long)]
        playbooks: Option<PathBuf>,
        /// File the relay appends audit-chain checkpoints to (default:
        /// the database path + `.checkpoints`). Copy it off the machine.
        #[arg(long)]
        audit_checkpoints: Option<PathBuf>,
    },
    /// The tamper-evident audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Manage credentials.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// The duty console (TUI).
    Console {
        /// Relay URL, e.g. ws://127.0.0.1:7710 or http://127.0.0.1:7710.
        #[arg(long)]
        relay: String,
        /// Credential token (or set CRISISDESK_TOKEN).
        #[arg(long, env = "CRISISDESK_TOKEN", hide_env_values = true)]
        token: String,
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
        /// reviewer or admin.
        #[arg(long)]
        role: Role,
    },
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

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Demo { data_dir, lang } => {
            let dir = match data_dir {
                Some(dir) => dir,
                None => demo::default_data_dir()?,
            };
            let _log = logging::to_file(&dir.join("crisisdesk.log"))?;
            runtime()?.block_on(demo::run(&dir, Lang::resolve(lang)))?;
        }
        Command::Relay {
            listen,
            db,
            playbooks,
            audit_checkpoints,
        } => {
            logging::to_stderr();
            let library = match relay::playbooks::load(playbooks.as_deref()) {
                Ok(library) => library,
                Err(problems) => {
                    for p in &problems {
                        eprintln!("{p}");
                    }
                    eprintln!("crisisdesk: the relay will not start with invalid playbooks");
                    return Ok(ExitCode::from(1));
                }
            };
            runtime()?.block_on(async {
                let store = Store::open(&db).await?;
                let listener = tokio::net::TcpListener::bind(&listen)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
                let addr = listener.local_addr()?;
                tracing::info!(%addr, "relay listening");
                // On stdout for whoever started us (scripts, tests) to read,
                // e.g. after `--listen 127.0.0.1:0`.
                println!("crisisdesk relay listening on http://{addr}");
                let relay = match audit_checkpoints.or_else(|| store::default_checkpoint_file(&db))
                {
                    Some(file) => {
                        tracing::info!(file = %file.display(), "audit checkpoints");
                        relay::Relay::with_checkpoint_file(store, library, file)
                    }
                    None => relay::Relay::new(store, library),
                };
                relay::serve(listener, relay, shutdown_signal()).await?;
                anyhow::Ok(())
            })?;
        }
        Command::Token {
            command: TokenCommand::Create { db, name, role },
        } => {
            let name = name.trim().to_string();
            if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
                eprintln!("crisisdesk: --name must be 1 to 64 printable characters");
                return Ok(ExitCode::from(2));
            }
            let token = runtime()?.block_on(async {
                let store = Store::open(&db).await?;
                let operator = std::env::var("USER").unwrap_or_else(|_| "local".to_string());
                let token = store.create_credential_by(&name, role, &operator).await?;
                store.close().await;
                anyhow::Ok(token)
            })?;
            println!("{token}");
        }
        Command::Console { relay, token, lang } => {
            let url = console::stream_url(&relay)?;
            let _log = logging::to_file(&logging::default_dir()?.join("console.log"))?;
            runtime()?.block_on(console::run(ConsoleOptions {
                stream_url: url,
                token,
                lang: Lang::resolve(lang),
                banner: None,
            }))?;
        }
        Command::Audit {
            command: AuditCommand::Verify { db, checkpoints },
        } => return runtime()?.block_on(audit_verify(&db, checkpoints)),
        Command::Audit {
            command: AuditCommand::Head { db },
        } => {
            let head = runtime()?.block_on(async { Store::open(&db).await?.audit_head().await })?;
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
    let store = Store::open(db).await?;
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
