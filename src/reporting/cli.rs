//! `crisisdesk incident check | list | export` and `crisisdesk district`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use super::export::{self, ExportFormat};
use super::{Rules, district};
use crate::store::Store;

#[derive(Subcommand, Debug)]
pub enum IncidentCommand {
    /// Check a reporting rules file (default: the built-in one) against
    /// the playbooks; prints `file: problem` for each error, exit 1.
    Check {
        file: Option<PathBuf>,
        /// Playbook directory the rules refer to (default: built-in).
        #[arg(long)]
        playbooks: Option<PathBuf>,
    },
    /// List incident reports: id, case, rules, stage states.
    List {
        #[arg(long)]
        db: String,
        /// Drill reports too.
        #[arg(long)]
        drills: bool,
    },
    /// Export one report (by report id IR-C… or case id) for filing.
    Export {
        id: String,
        #[arg(long)]
        db: String,
        #[arg(long, value_enum, default_value = "html")]
        format: ExportFormat,
        /// Write here instead of stdout (required for docx).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Times at this UTC offset, e.g. +08:00 (default: this machine's).
        #[arg(long)]
        utc_offset: Option<String>,
        /// Reporting rules file the relay ran (default: built-in).
        #[arg(long)]
        rules: Option<PathBuf>,
    },
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Loads rules from `file` or the built-in copy, checked against the
/// playbooks; every problem on its own line.
pub fn load_checked(
    file: Option<&Path>,
    library: &crate::playbook::Library,
) -> Result<Rules, Vec<String>> {
    let (name, rules) = match file {
        Some(f) => (f.display().to_string(), Rules::load(f)),
        None => (super::rules::EMBEDDED.0.to_string(), Rules::embedded()),
    };
    let rules = rules.map_err(|ps| ps.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    let problems = rules.check_against(&name, library);
    if problems.is_empty() {
        Ok(rules)
    } else {
        Err(problems.iter().map(ToString::to_string).collect())
    }
}

pub fn run_incident(command: IncidentCommand) -> anyhow::Result<ExitCode> {
    match command {
        IncidentCommand::Check { file, playbooks } => {
            let library = library(playbooks.as_deref())?;
            match load_checked(file.as_deref(), &library) {
                Ok(rules) => {
                    println!(
                        "{}: {} reporting rules are valid",
                        file.as_deref()
                            .map_or(super::rules::EMBEDDED.0.to_string(), |f| f
                                .display()
                                .to_string()),
                        rules.rules.len()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(problems) => {
                    for p in &problems {
                        println!("{p}");
                    }
                    eprintln!("{} problem(s)", problems.len());
                    Ok(ExitCode::from(1))
                }
            }
        }
        IncidentCommand::List { db, drills } => {
            let reports = runtime()?.block_on(async {
                let store = Store::open_existing(&db).await?;
                let r = store.incident_reports(drills).await?;
                store.close().await;
                anyhow::Ok(r)
            })?;
            for r in reports {
                let stages: Vec<String> = r
                    .stages
                    .iter()
                    .map(|s| {
                        format!(
                            "{}={}{}",
                            s.stage.as_str(),
                            s.status.as_str(),
                            if s.late { "(late)" } else { "" }
                        )
                    })
                    .collect();
                println!(
                    "{}  {}  {}  {}{}",
                    r.id,
                    r.case_id,
                    r.rules.join(","),
                    stages.join(" "),
                    if r.drill { "  [drill]" } else { "" }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        IncidentCommand::Export {
            id,
            db,
            format,
            out,
            utc_offset,
            rules,
        } => {
            let offset = crate::period::utc_offset(utc_offset.as_deref())?;
            let library = library(None)?;
            let rules = load_checked(rules.as_deref(), &library)
                .map_err(|ps| anyhow::anyhow!("invalid reporting rules:\n{}", ps.join("\n")))?;
            let report = runtime()?.block_on(async {
                let store = Store::open_existing(&db).await?;
                let r = store.incident_report_by_id(&id).await?;
                store.close().await;
                anyhow::Ok(r)
            })?;
            let Some(report) = report else {
                eprintln!(
                    "crisisdesk: no incident report `{}` (see `incident list`)",
                    crate::text::inert(&id)
                );
                return Ok(ExitCode::from(1));
            };
            let bytes = match format {
                ExportFormat::Json => export::to_json(&report, &rules).into_bytes(),
                ExportFormat::Html => {
                    export::to_html(&export::document(&report, &rules, offset)).into_bytes()
                }
                ExportFormat::Docx => {
                    if out.is_none() {
                        eprintln!("crisisdesk: --format docx needs --out FILE.docx");
                        return Ok(ExitCode::from(2));
                    }
                    export::to_docx(&export::document(&report, &rules, offset))
                        .map_err(|e| anyhow::anyhow!("cannot write the DOCX: {e}"))?
                }
            };
            emit(out.as_deref(), &bytes)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `crisisdesk district --db URL`: the district view as text.
pub fn run_district(db: &str, json: bool) -> anyhow::Result<ExitCode> {
    let view = runtime()?.block_on(async {
        let store = Store::open_existing(db).await?;
        let library = library(None)?;
        let v = district::build(&store, &library, chrono::Utc::now()).await?;
        store.close().await;
        anyhow::Ok(v)
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        print!("{}", district::render_text(&view));
    }
    Ok(ExitCode::SUCCESS)
}

fn library(dir: Option<&Path>) -> anyhow::Result<crate::playbook::Library> {
    crate::playbook::shipped::load(dir).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("invalid playbooks:\n{}", lines.join("\n"))
    })
}

pub fn emit(out: Option<&Path>, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    match out {
        Some(path) => std::fs::write(path, bytes)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display())),
        None => {
            std::io::stdout().write_all(bytes)?;
            Ok(())
        }
    }
}
