//! The `crisisdesk` command line: one binary for the relay, the console, the
//! demo and the operator tools. Exit codes: 0 success, 1 a failed check or
//! operation, 2 bad usage.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crisisdesk::console::{self, ConsoleOptions, Lang};
use crisisdesk::protocol::Role;
use crisisdesk::store::Store;
use crisisdesk::{demo, logging, playbook, relay};

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
    },
    /// Manage credentials.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// The duty console (TUI).
    #[command(after_help = console::config::help_footer())]
    Console {
        /// Relay URL, e.g. ws://127.0.0.1:7710 or http://127.0.0.1:7710
        /// (default: `relay` in the config file).
        #[arg(long)]
        relay: Option<String>,
        /// Config file to use instead of the per-user one.
        #[arg(long)]
        config: Option<PathBuf>,
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
                relay::serve(
                    listener,
                    relay::Relay::new(store, library),
                    shutdown_signal(),
                )
                .await?;
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
                let token = store.create_credential(&name, role).await?;
                store.close().await;
                anyhow::Ok(token)
            })?;
            println!("{token}");
        }
        Command::Console {
            relay,
            config,
            token,
            lang,
        } => {
            let config = console::config::load(config.as_deref())?;
            let Some(relay) = relay.or_else(|| config.relay.clone()) else {
                anyhow::bail!(
                    "no relay to follow: pass --relay ws://HOST:PORT or set `relay` in {}",
                    console::config::default_path()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| "the config file".into())
                );
            };
            let url = console::stream_url(&relay)?;
            let _log = logging::to_file(&logging::default_dir()?.join("console.log"))?;
            runtime()?.block_on(console::run_with(
                ConsoleOptions {
                    stream_url: url,
                    token,
                    lang: Lang::resolve(lang.or(config.language)),
                    banner: None,
                },
                console::Settings::from(&config),
            ))?;
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
    }
    Ok(ExitCode::SUCCESS)
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
