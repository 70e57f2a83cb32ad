//! `crisisdesk screening …` and `crisisdesk rules …`.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{NaiveDate, Utc};
use clap::Subcommand;

use super::import::{self, Destination, ImportOptions};
use super::rules::{self, Flag};
use super::store::{self as sstore, Plan};
use crate::store::Store;

#[derive(Subcommand, Debug)]
pub enum ScreeningCommand {
    /// Screening plans (测评计划): create one before importing its results.
    Plan {
        #[command(subcommand)]
        command: PlanCommand,
    },
    /// Import a platform's export (CSV or XLSX), grade it, and send the
    /// flagged results as alerts.
    Import {
        /// The export: .csv (UTF-8 or GBK/GB18030) or .xlsx.
        file: PathBuf,
        /// The plan these results belong to.
        #[arg(long)]
        plan: String,
        /// Database URL (sqlite:PATH): the plan, the graded results and the
        /// students' history live here. Without --relay, alerts also go
        /// straight into it (only when no relay is running on it).
        #[arg(long)]
        db: String,
        /// Relay URL (http://HOST:PORT): send alerts through its batch
        /// endpoint, so the duty consoles see them live.
        #[arg(long, requires = "token")]
        relay: Option<String>,
        /// Producer token for --relay (or set CRISISDESK_TOKEN).
        #[arg(long, env = "CRISISDESK_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Grade and report only: store nothing, send nothing.
        #[arg(long)]
        dry_run: bool,
        /// Write bad rows here (row, column, student id, reason zh/en).
        #[arg(long)]
        errors: Option<PathBuf>,
        /// Column mapping for a platform's own export (TOML).
        #[arg(long)]
        mapping: Option<PathBuf>,
        /// Rule directory (default: the rules built into this binary).
        #[arg(long)]
        rules: Option<PathBuf>,
        /// UTC offset of times written without one.
        #[arg(long, default_value = "+08:00")]
        utc_offset: String,
        /// No progress lines on stderr.
        #[arg(long)]
        quiet: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum PlanCommand {
    /// Create a plan.
    Create {
        #[arg(long)]
        db: String,
        /// Short id, e.g. 2026-autumn-upi (letters, digits, - and _).
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        /// Scale id: upi, phq9, gad7, scl90, mht.
        #[arg(long)]
        scale: String,
        /// Schools taking part, comma-separated, as the export writes them.
        #[arg(long, value_delimiter = ',', required = true)]
        schools: Vec<String>,
        /// First day, YYYY-MM-DD.
        #[arg(long)]
        from: String,
        /// Last day, YYYY-MM-DD (inclusive).
        #[arg(long)]
        to: String,
        /// Lowest level that becomes an alert: general, key or high.
        #[arg(long, default_value = "general")]
        threshold: String,
        #[arg(long)]
        rules: Option<PathBuf>,
    },
    /// List plans with their counts.
    List {
        #[arg(long)]
        db: String,
    },
    /// One plan per school: screened, valid, invalid, flagged per level.
    Show {
        id: String,
        #[arg(long)]
        db: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum RulesCommand {
    /// Check scale and risk rule files; prints `file:line: problem`.
    Check {
        #[arg(default_value = "rules")]
        dir: PathBuf,
    },
    /// A student's graded results across screenings, with every signal's
    /// contribution and the rule versions.
    Explain {
        student: String,
        #[arg(long)]
        db: String,
        /// en or zh (default zh).
        #[arg(long, default_value = "zh")]
        lang: String,
    },
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn valid_plan_id(id: &str) -> bool {
    (1..=40).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub fn run_screening(command: ScreeningCommand) -> anyhow::Result<ExitCode> {
    match command {
        ScreeningCommand::Plan {
            command:
                PlanCommand::Create {
                    db,
                    id,
                    name,
                    scale,
                    schools,
                    from,
                    to,
                    threshold,
                    rules,
                },
        } => {
            if !valid_plan_id(&id) {
                eprintln!("crisisdesk: --id must be 1 to 40 letters, digits, - or _");
                return Ok(ExitCode::from(2));
            }
            let name = name.trim().to_string();
            if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
                eprintln!("crisisdesk: --name must be 1 to 100 printable characters");
                return Ok(ExitCode::from(2));
            }
            let (Ok(starts_on), Ok(ends_on)) = (from.parse::<NaiveDate>(), to.parse::<NaiveDate>())
            else {
                eprintln!("crisisdesk: --from and --to must be dates, YYYY-MM-DD");
                return Ok(ExitCode::from(2));
            };
            if ends_on < starts_on {
                eprintln!("crisisdesk: --to must not be before --from");
                return Ok(ExitCode::from(2));
            }
            let Some(threshold) = Flag::parse(&threshold).filter(|f| *f != Flag::None) else {
                eprintln!("crisisdesk: --threshold must be general, key or high");
                return Ok(ExitCode::from(2));
            };
            let set = match rules::load(rules.as_deref()) {
                Ok(s) => s,
                Err(p) => {
                    eprintln!("{p}");
                    return Ok(ExitCode::from(1));
                }
            };
            if !set.scales.contains_key(&scale) {
                let known: Vec<&str> = set.scales.keys().map(String::as_str).collect();
                eprintln!(
                    "crisisdesk: unknown scale `{scale}`; known: {}",
                    known.join(", ")
                );
                return Ok(ExitCode::from(2));
            }
            let schools: Vec<String> = schools
                .iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            let plan = Plan {
                id: id.clone(),
                name,
                scale,
                schools,
                starts_on,
                ends_on,
                threshold,
                created_at: Utc::now(),
            };
            let created = runtime()?.block_on(async {
                let store = Store::open(&db).await?;
                let created = store.screening_create_plan(&plan).await?;
                store.close().await;
                anyhow::Ok(created)
            })?;
            if !created {
                eprintln!(
                    "crisisdesk: a plan `{}` already exists",
                    crate::text::inert(&id)
                );
                return Ok(ExitCode::from(1));
            }
            println!("已创建筛查计划 / created screening plan {id}");
        }
        ScreeningCommand::Plan {
            command: PlanCommand::List { db },
        } => {
            let rows = runtime()?.block_on(async {
                let store = Store::open_existing(&db).await?;
                let mut out = Vec::new();
                for p in store.screening_plans().await? {
                    let counts = store.screening_counts(&p.id).await?;
                    out.push((p, total(&counts)));
                }
                anyhow::Ok(out)
            })?;
            println!(
                "{:<20} {:<6} {:<10} {:<10} {:>7} {:>8} {:>7} {:>7} {:>5} {:>5} {:>5}  name",
                "plan",
                "scale",
                "from",
                "to",
                "schools",
                "screened",
                "valid",
                "invalid",
                "gen",
                "key",
                "high"
            );
            for (p, c) in rows {
                println!(
                    "{:<20} {:<6} {:<10} {:<10} {:>7} {:>8} {:>7} {:>7} {:>5} {:>5} {:>5}  {}",
                    p.id,
                    p.scale,
                    p.starts_on,
                    p.ends_on,
                    p.schools.len(),
                    c.screened,
                    c.valid,
                    c.invalid,
                    c.general,
                    c.key,
                    c.high,
                    crate::text::inert(&p.name)
                );
            }
        }
        ScreeningCommand::Plan {
            command: PlanCommand::Show { id, db },
        } => {
            let (plan, counts) = runtime()?.block_on(async {
                let store = Store::open_existing(&db).await?;
                let plan = store.screening_plan(&id).await?;
                let counts = store.screening_counts(&id).await?;
                anyhow::Ok((plan, counts))
            })?;
            let Some(plan) = plan else {
                eprintln!(
                    "crisisdesk: no screening plan `{}`",
                    crate::text::inert(&id)
                );
                return Ok(ExitCode::from(1));
            };
            println!(
                "{} · {} · {} … {} · 阈值/threshold {}",
                crate::text::inert(&plan.id),
                crate::text::inert(&plan.name),
                plan.starts_on,
                plan.ends_on,
                plan.threshold.as_str()
            );
            println!(
                "{} {:>8} {:>7} {:>7} {:>8} {:>6} {:>6} {:>8} {:>6}",
                crate::text::pad("学校/school", 24),
                "screened",
                "valid",
                "invalid",
                "general",
                "key",
                "high",
                "imminent",
                "sent"
            );
            let mut seen: Vec<String> = Vec::new();
            for (school, c) in &counts {
                seen.push(school.clone());
                print_counts(school, c);
            }
            for school in plan.schools.iter().filter(|s| !seen.contains(s)) {
                print_counts(school, &sstore::Counts::default());
            }
            print_counts("合计/total", &total(&counts));
        }
        ScreeningCommand::Import {
            file,
            plan,
            db,
            relay,
            token,
            dry_run,
            errors,
            mapping,
            rules,
            utc_offset,
            quiet,
        } => {
            let Some(offset) = crate::period::parse_offset(&utc_offset) else {
                eprintln!("crisisdesk: --utc-offset: expected like +08:00");
                return Ok(ExitCode::from(2));
            };
            let set = match rules::load(rules.as_deref()) {
                Ok(s) => s,
                Err(p) => {
                    eprintln!("{p}");
                    eprintln!(
                        "crisisdesk: 规则文件未通过检查，未发送任何内容 / the rule files do not check; nothing was sent"
                    );
                    return Ok(ExitCode::from(1));
                }
            };
            let destination = match (dry_run, relay, token) {
                (true, _, _) => Destination::DryRun,
                (false, Some(url), Some(token)) => Destination::Relay { url, token },
                (false, Some(_), None) => {
                    eprintln!("crisisdesk: --relay needs --token");
                    return Ok(ExitCode::from(2));
                }
                (false, None, _) => Destination::Store,
            };
            let opts = ImportOptions {
                file,
                plan,
                mapping,
                errors_out: errors,
                destination,
                offset,
                progress: !quiet,
            };
            let outcome = runtime()?.block_on(async {
                let store = Store::open_existing(&db).await?;
                let r = import::run(&store, &set, &opts).await;
                store.close().await;
                anyhow::Ok(r)
            })?;
            match outcome {
                Ok((summary, plan)) => {
                    let scale = &set.scales[&plan.scale];
                    print!("{}", summary.render(&plan, scale, &set, dry_run));
                    let times: Vec<String> = summary
                        .timings
                        .iter()
                        .map(|(n, d)| format!("{n} {:.2} s", d.as_secs_f64()))
                        .collect();
                    if !quiet {
                        eprintln!("用时 / timings: {}", times.join(", "));
                    }
                    if summary.bad_rows > 0 || summary.refused > 0 {
                        if let Some(out) = &opts.errors_out {
                            println!("错误行见 / bad rows written to {}", out.display());
                        } else {
                            println!(
                                "用 --errors OUT.csv 导出错误行 / pass --errors OUT.csv to export the bad rows"
                            );
                        }
                    }
                    if summary.refused > 0 {
                        return Ok(ExitCode::from(1));
                    }
                }
                Err(e) => {
                    eprintln!("crisisdesk: {e}");
                    return Ok(ExitCode::from(1));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn total(counts: &[(String, sstore::Counts)]) -> sstore::Counts {
    counts
        .iter()
        .fold(sstore::Counts::default(), |mut t, (_, c)| {
            t.screened += c.screened;
            t.valid += c.valid;
            t.invalid += c.invalid;
            t.general += c.general;
            t.key += c.key;
            t.high += c.high;
            t.imminent += c.imminent;
            t.alerts_sent += c.alerts_sent;
            t
        })
}

/// Left-aligns to a display width (a Chinese character is two columns).
fn print_counts(school: &str, c: &sstore::Counts) {
    println!(
        "{} {:>8} {:>7} {:>7} {:>8} {:>6} {:>6} {:>8} {:>6}",
        crate::text::pad(&crate::text::inert(school), 24),
        c.screened,
        c.valid,
        c.invalid,
        c.general,
        c.key,
        c.high,
        c.imminent,
        c.alerts_sent
    );
}

pub fn run_rules(command: RulesCommand) -> anyhow::Result<ExitCode> {
    match command {
        RulesCommand::Check { dir } => match rules::check_dir(&dir) {
            Ok(set) => {
                let scales: Vec<String> = set
                    .scales
                    .values()
                    .map(|s| format!("{} v{}", s.id, s.version))
                    .collect();
                println!(
                    "{}: all rule files are valid ({}; {} v{})",
                    dir.display(),
                    scales.join(", "),
                    set.risk.id,
                    set.risk.version
                );
            }
            Err(problems) => {
                for d in &problems.0 {
                    println!("{d}");
                }
                eprintln!("{} problem(s) in {}", problems.0.len(), dir.display());
                return Ok(ExitCode::from(1));
            }
        },
        RulesCommand::Explain { student, db, lang } => {
            let zh = lang != "en";
            let results = runtime()?.block_on(async {
                let store = Store::open_existing(&db).await?;
                anyhow::Ok(store.screening_results_of_student(&student).await?)
            })?;
            if results.is_empty() {
                eprintln!(
                    "crisisdesk: no screening results for student `{}`",
                    crate::text::inert(&student)
                );
                return Ok(ExitCode::from(1));
            }
            print!("{}", explain(&student, &results, zh));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The text of `rules explain`: each screening, oldest first.
pub fn explain(student: &str, results: &[sstore::StoredResult], zh: bool) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} {}",
        if zh { "学生" } else { "student" },
        crate::text::inert(student)
    );
    for r in results {
        let _ = writeln!(
            s,
            "\n{} {} · {} · {} {} v{}",
            if zh { "计划" } else { "plan" },
            crate::text::inert(&r.plan_id),
            r.answered_at,
            if zh { "量表" } else { "scale" },
            r.scale_rule,
            r.scale_rule_version
        );
        if !r.valid {
            let why = r.invalid_reason.as_deref().unwrap_or("invalid");
            let _ = writeln!(
                s,
                "  {}: {why}",
                if zh {
                    "无效，需重测"
                } else {
                    "invalid, re-test"
                }
            );
            continue;
        }
        let level = r
            .level
            .as_deref()
            .and_then(Flag::parse)
            .unwrap_or(Flag::None);
        let class = if zh {
            r.class_zh.as_deref()
        } else {
            r.class_en.as_deref()
        }
        .unwrap_or("");
        let _ = writeln!(
            s,
            "  {}: {} ({}) · {}: {} · {} {} v{} · {} {}",
            if zh { "等级" } else { "level" },
            if zh { level.zh() } else { level.as_str() },
            crate::text::inert(class),
            if zh { "分数" } else { "scores" },
            r.scores,
            if zh { "风险规则" } else { "risk rule" },
            r.risk_rule.as_deref().unwrap_or("-"),
            r.risk_rule_version.unwrap_or(0),
            if zh { "积分" } else { "points" },
            r.points.unwrap_or(0),
        );
        if r.imminent {
            let _ = writeln!(
                s,
                "  {}",
                if zh {
                    "紧急（imminent）"
                } else {
                    "imminent"
                }
            );
        }
        let contributions: Vec<super::grade::Contribution> = r
            .contributions
            .as_deref()
            .and_then(|c| serde_json::from_str::<Vec<ContributionRow>>(c).ok())
            .unwrap_or_default()
            .into_iter()
            .map(Into::into)
            .collect();
        for c in &contributions {
            let label = if zh { &c.label_zh } else { &c.label_en };
            let effect = c
                .effect
                .map(|e| if zh { e.zh() } else { e.as_str() })
                .unwrap_or("");
            let weight = c.weight.map(|w| format!("+{w}")).unwrap_or_default();
            let _ = writeln!(
                s,
                "  - {} = {} {} {}{}",
                crate::text::inert(label),
                crate::text::inert(&c.value),
                effect,
                weight,
                if c.decisive {
                    if zh { "（决定性）" } else { " (decisive)" }
                } else {
                    ""
                }
            );
        }
        let _ = writeln!(
            s,
            "  {}",
            super::why_line(&contributions, &r.scale_rule, r.scale_rule_version, zh)
        );
        if let Some(case) = &r.case_id {
            let _ = writeln!(s, "  {} {case}", if zh { "个案" } else { "case" });
        }
    }
    s
}

#[derive(serde::Deserialize)]
struct ContributionRow {
    label_zh: String,
    label_en: String,
    value: String,
    effect: Option<String>,
    weight: Option<i64>,
    decisive: bool,
}

impl From<ContributionRow> for super::grade::Contribution {
    fn from(c: ContributionRow) -> Self {
        super::grade::Contribution {
            label_zh: c.label_zh,
            label_en: c.label_en,
            value: c.value,
            effect: c.effect.as_deref().and_then(Flag::parse),
            weight: c.weight,
            decisive: c.decisive,
        }
    }
}
