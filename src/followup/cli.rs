//! `crisisdesk calendar check|load`, `schedule check` and `student show`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};

use super::calendar::Calendar;
use super::schedule::Schedule;
use crate::protocol::Role;
use crate::store::Store;

#[derive(Subcommand, Debug)]
pub enum CalendarCommand {
    /// Check school calendar files (terms, holidays, make-up days); prints
    /// `file: problem` for each.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Check a calendar and store it in the relay's database; follow-up
    /// check-ins planned from then on count that school's days.
    Load {
        file: PathBuf,
        #[arg(long)]
        db: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ScheduleCommand {
    /// Check a follow-up schedule file (default: the shipped one).
    Check {
        #[arg(default_value = "schedules/followup.toml")]
        file: PathBuf,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum RecordFormat {
    Md,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum StudentCommand {
    /// One student's record (一生一档): cases, screenings, check-ins,
    /// level changes and notes on one timeline, as one role sees it.
    Show {
        /// The student id as alerts and screening exports give it.
        id: String,
        #[arg(long)]
        db: String,
        /// The role to show the record for (default counselor).
        #[arg(long, default_value = "counselor")]
        role: Role,
        /// Who is reading, for the audit trail (staff name).
        #[arg(long, default_value = "operator")]
        by: String,
        /// Show the student's name: a reason, audited like a reveal on a case.
        #[arg(long)]
        reveal: Option<String>,
        /// Include drill and test cases.
        #[arg(long)]
        drills: bool,
        #[arg(long, value_enum, default_value = "md")]
        format: RecordFormat,
        /// Show times at this UTC offset (default +08:00).
        #[arg(long, default_value = "+08:00")]
        utc_offset: String,
    },
}

fn read(path: &PathBuf) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

pub fn run_calendar(command: CalendarCommand) -> anyhow::Result<ExitCode> {
    match command {
        CalendarCommand::Check { files } => {
            let mut bad = 0;
            for file in &files {
                match read(file).map(|t| Calendar::parse(&t)) {
                    Err(e) => {
                        println!("{e}");
                        bad += 1;
                    }
                    Ok(Err(problems)) => {
                        for p in &problems {
                            println!("{}: {p}", file.display());
                        }
                        bad += 1;
                    }
                    Ok(Ok(c)) => println!(
                        "{}: calendar of {} is valid ({} terms)",
                        file.display(),
                        c.school
                            .as_deref()
                            .map(crate::text::inert)
                            .unwrap_or_default(),
                        c.terms.len()
                    ),
                }
            }
            Ok(if bad == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        CalendarCommand::Load { file, db } => {
            let text = read(&file).map_err(anyhow::Error::msg)?;
            let loaded = runtime()?.block_on(async {
                let store = Store::open(&db).await?;
                let loaded = store.load_calendar(&text).await;
                store.close().await;
                loaded
            })?;
            match loaded {
                Ok(school) => {
                    println!("loaded the calendar of {}", crate::text::inert(&school));
                    Ok(ExitCode::SUCCESS)
                }
                Err(problems) => {
                    for p in &problems {
                        println!("{}: {p}", file.display());
                    }
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}

pub fn run_schedule(command: ScheduleCommand) -> anyhow::Result<ExitCode> {
    let ScheduleCommand::Check { file } = command;
    match read(&file).map(|t| Schedule::parse(&t)) {
        Err(e) => {
            println!("{e}");
            Ok(ExitCode::from(1))
        }
        Ok(Err(problems)) => {
            for p in &problems {
                println!("{}: {p}", file.display());
            }
            Ok(ExitCode::from(1))
        }
        Ok(Ok(_)) => {
            println!("{}: the follow-up schedule is valid", file.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub fn run_student(command: StudentCommand) -> anyhow::Result<ExitCode> {
    let StudentCommand::Show {
        id,
        db,
        role,
        by,
        reveal,
        drills,
        format,
        utc_offset,
    } = command;
    let offset = crate::period::parse_offset(&utc_offset)
        .ok_or_else(|| anyhow::anyhow!("--utc-offset: expected like +08:00, got `{utc_offset}`"))?;
    let record = runtime()?.block_on(async {
        let store = Store::open_existing(&db).await?;
        let record = super::student::build(&store, &id, role, &by, reveal.as_deref(), drills).await;
        store.close().await;
        anyhow::Ok(record?)
    })?;
    let Some(record) = record else {
        eprintln!(
            "crisisdesk: no cases or screenings for student `{}`",
            crate::text::inert(&id)
        );
        return Ok(ExitCode::from(1));
    };
    match format {
        RecordFormat::Md => print!("{}", super::student::markdown(&record, offset)),
        RecordFormat::Json => println!("{}", serde_json::to_string_pretty(&record)?),
    }
    Ok(ExitCode::SUCCESS)
}
