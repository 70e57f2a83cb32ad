//! `crisisdesk stats --db URL --from --to --format xlsx|csv [--template FILE]`.

use std::path::PathBuf;
use std::process::ExitCode;

use super::Template;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatsFormat {
    Xlsx,
    Csv,
}

#[derive(clap::Args, Debug)]
#[command(after_help = after_help())]
pub struct StatsArgs {
    #[arg(long)]
    db: String,
    /// First day, YYYY-MM-DD (local to --utc-offset) or RFC 3339.
    #[arg(long)]
    from: String,
    /// Day after the last, YYYY-MM-DD or RFC 3339 (exclusive).
    #[arg(long)]
    to: String,
    #[arg(long, value_enum, default_value = "xlsx")]
    format: StatsFormat,
    /// Column template (default: reporting/stats_template.toml, built in).
    #[arg(long)]
    template: Option<PathBuf>,
    /// Write here (required for xlsx; CSV goes to stdout without it).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Day boundaries and drill dates at this UTC offset (default: this machine's).
    #[arg(long)]
    utc_offset: Option<String>,
}

fn after_help() -> String {
    format!(
        "Template column keys: {}",
        super::template::Column::keys().join(", ")
    )
}

pub fn run(args: StatsArgs) -> anyhow::Result<ExitCode> {
    let offset = crate::period::utc_offset(args.utc_offset.as_deref())?;
    let (from, to) = (
        crate::period::boundary(&args.from, offset, "--from")?,
        crate::period::boundary(&args.to, offset, "--to")?,
    );
    if from >= to {
        eprintln!("crisisdesk: --from must be before --to");
        return Ok(ExitCode::from(2));
    }
    let template = match &args.template {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            Template::parse(&path.display().to_string(), &text)
        }
        None => Template::default_template(),
    };
    let template = match template {
        Ok(t) => t,
        Err(problem) => {
            eprintln!("crisisdesk: {problem}");
            return Ok(ExitCode::from(1));
        }
    };
    if args.format == StatsFormat::Xlsx && args.out.is_none() {
        eprintln!("crisisdesk: --format xlsx needs --out FILE.xlsx");
        return Ok(ExitCode::from(2));
    }
    let library = crate::playbook::shipped::load(None).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("invalid playbooks:\n{}", lines.join("\n"))
    })?;
    let stats = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let store = crate::store::Store::open_existing(&args.db).await?;
            let stats = super::build(&store, &library, from, to).await?;
            store.close().await;
            anyhow::Ok(stats)
        })?;
    let bytes = match args.format {
        StatsFormat::Csv => super::to_csv(&stats, &template, offset),
        StatsFormat::Xlsx => super::to_xlsx(&stats, &template, offset),
    }
    .map_err(|e| anyhow::anyhow!("cannot write the export: {e}"))?;
    crate::reporting::cli::emit(args.out.as_deref(), &bytes)?;
    Ok(ExitCode::SUCCESS)
}
