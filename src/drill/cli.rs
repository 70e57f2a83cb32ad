//! `crisisdesk drill …`: the command-line edge of the drill module. Kept
//! here rather than in `main.rs` so the binary only routes to it.
//! Exit codes as everywhere: 0 success, 1 a failed check or operation,
//! 2 bad usage (clap's own errors, a bad `--speed` or `--exercise-id`).

#[cfg(feature = "drill-client")]
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

#[cfg(feature = "drill-client")]
use super::Scenario;
#[cfg(feature = "drill-client")]
use super::http::HttpRelay;
#[cfg(feature = "drill-client")]
use super::run::{self, RunOptions};
use super::{DEFAULT_DIR, Diagnostic};
use crate::playbook::Library;

#[derive(Subcommand, Debug)]
pub enum DrillCommand {
    /// Validate drill scenarios; prints `file:line: problem` for each error.
    Check {
        #[arg(default_value = DEFAULT_DIR)]
        dir: PathBuf,
        /// Playbook directory `[[expect]]` steps are checked against
        /// (default: the playbooks built into this binary).
        #[arg(long)]
        playbooks: Option<PathBuf>,
    },
    /// List the scenarios built into this binary.
    List,
    /// Play a scenario into a relay over HTTP, every alert marked as a
    /// drill (`status: exercise`). Nothing is sent if the file has a problem.
    #[cfg(feature = "drill-client")]
    Run {
        /// A scenario file, or the id of a built-in scenario (`drill list`).
        file: String,
        /// Relay URL, e.g. http://127.0.0.1:7710 (plain HTTP only for now).
        #[arg(long)]
        relay: String,
        /// A producer token (or set CRISISDESK_TOKEN).
        #[arg(long, env = "CRISISDESK_TOKEN", hide_env_values = true)]
        token: String,
        /// The drill's id on every alert (default: <scenario id>-<UTC time>).
        #[arg(long, value_parser = parse_exercise_id)]
        exercise_id: Option<String>,
        /// Play N times faster than real time (60: a minute per second).
        #[arg(long, default_value_t = 1.0, value_parser = parse_speed)]
        speed: f64,
        /// Further attempts at a post that failed (backoff from 0.5 s,
        /// doubling, at most 30 s apart).
        #[arg(long, default_value_t = 5)]
        retries: u32,
        /// Playbook directory `[[expect]]` steps are checked against
        /// (default: the playbooks built into this binary).
        #[arg(long)]
        playbooks: Option<PathBuf>,
    },
}

#[cfg(feature = "drill-client")]
fn parse_speed(s: &str) -> Result<f64, String> {
    let speed: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number (60: a minute per second)"))?;
    run::check_speed(speed).map(|()| speed)
}

#[cfg(feature = "drill-client")]
fn parse_exercise_id(s: &str) -> Result<String, String> {
    run::check_exercise_id(s).map(|()| s.to_string())
}

pub fn run(command: DrillCommand) -> anyhow::Result<ExitCode> {
    match command {
        DrillCommand::Check { dir, playbooks } => {
            let Some(library) = library(playbooks.as_deref()) else {
                return Ok(ExitCode::from(1));
            };
            let problems = super::check_dir(&dir, &library);
            for p in &problems {
                println!("{p}");
            }
            if !problems.is_empty() {
                eprintln!("{} problem(s) in {}", problems.len(), dir.display());
                return Ok(ExitCode::from(1));
            }
            println!("{}: all drill scenarios are valid", dir.display());
        }
        DrillCommand::List => {
            let Some(library) = library(None) else {
                return Ok(ExitCode::from(1));
            };
            match super::shipped(&library) {
                Ok(scenarios) => {
                    for s in scenarios {
                        println!(
                            "{:<32} {:>2} inject(s) over {:<4} {} / {}",
                            s.id,
                            s.injects.len(),
                            s.duration().to_string(),
                            s.title.zh,
                            s.title.en
                        );
                    }
                }
                Err(problems) => {
                    print_problems(&problems);
                    return Ok(ExitCode::from(1));
                }
            }
        }
        #[cfg(feature = "drill-client")]
        DrillCommand::Run {
            file,
            relay,
            token,
            exercise_id,
            speed,
            retries,
            playbooks,
        } => {
            let Some(library) = library(playbooks.as_deref()) else {
                return Ok(ExitCode::from(1));
            };
            let scenario = match load(&file, &library) {
                Ok(s) => s,
                Err(problems) => {
                    print_problems(&problems);
                    eprintln!(
                        "crisisdesk: `{file}` is not a valid drill scenario; nothing was sent"
                    );
                    return Ok(ExitCode::from(1));
                }
            };
            let mut relay = HttpRelay::new(&relay, &token).map_err(anyhow::Error::msg)?;
            let exercise_id = exercise_id
                .unwrap_or_else(|| super::default_exercise_id(&scenario.id, chrono::Utc::now()));
            let options = RunOptions {
                speed,
                retries,
                ..RunOptions::new(exercise_id)
            };
            let mut stdout = std::io::stdout().lock();
            run::play(
                &scenario,
                &options,
                &mut relay,
                &mut stdout,
                &mut std::thread::sleep,
            )?;
            stdout.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A scenario from a file, or a built-in one by id when no such file
/// exists (so an installed binary can run the shipped drills).
#[cfg(feature = "drill-client")]
fn load(file: &str, library: &Library) -> Result<Scenario, Vec<Diagnostic>> {
    let path = Path::new(file);
    let looks_like_id = !file.is_empty()
        && file
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !path.exists() && looks_like_id {
        return super::find(file, None, library);
    }
    super::load_file(path, library)
}

/// The playbook library `[[expect]]` is checked against; its problems are
/// printed and `None` returned when it is broken.
fn library(dir: Option<&Path>) -> Option<Library> {
    match crate::playbook::shipped::load(dir) {
        Ok(library) => Some(library),
        Err(problems) => {
            for p in &problems {
                eprintln!("{p}");
            }
            eprintln!("crisisdesk: the playbook library is invalid, so drills cannot be checked");
            None
        }
    }
}

fn print_problems(problems: &[Diagnostic]) {
    for p in problems {
        eprintln!("{p}");
    }
}
