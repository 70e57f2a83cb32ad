//! `screening import`: read a file, map and check its rows, grade them,
//! store the graded results, and send the ones at or above the plan's
//! threshold as alerts through the batch endpoint (or straight into the
//! store with `--db` alone). Every file-level failure comes before
//! anything is stored or sent.
//!
//! Re-imports and interrupted imports: a result is keyed by plan and
//! student, with a digest of its row. An unchanged row whose alert the
//! relay already confirmed is skipped; one not yet confirmed is sent again
//! with the same alert id and body, which the relay answers `duplicate` if
//! it had it. A corrected row (different digest) gets a new revision and
//! a new alert id, so the correction reaches the student's case.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{FixedOffset, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::grade::{self, Outcome};
use super::map::{self, MappingFile, RowError, RowRules, StudentRow};
use super::read;
use super::rules::{Flag, Route, RuleSet, Scale};
use super::send::{Batch, Outbox};
use super::store::{self as sstore, Plan, StoredResult};
use crate::protocol::ErrorDetail;
use crate::store::Store;

/// Most alerts per batch request (the endpoint's limit).
pub const BATCH: usize = 1000;

/// Graded results stored per transaction while grading.
const SAVE_SLICE: usize = 10_000;

pub enum Destination {
    /// Grade and report; store and send nothing.
    DryRun,
    /// POST /v1/alerts/batch with a producer token.
    Relay { url: String, token: String },
    /// Straight into the store's ingest path (no relay running).
    Store,
}

pub struct ImportOptions {
    pub file: PathBuf,
    pub plan: String,
    pub mapping: Option<PathBuf>,
    pub errors_out: Option<PathBuf>,
    pub destination: Destination,
    /// Offset of times written without one.
    pub offset: FixedOffset,
    /// Print progress to stderr.
    pub progress: bool,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub encoding: &'static str,
    pub rows: usize,
    pub bad_rows: usize,
    pub valid: usize,
    pub invalid: usize,
    pub general: usize,
    pub key: usize,
    pub high: usize,
    pub imminent: usize,
    pub crisis: usize,
    pub over_threshold: usize,
    pub unchanged: usize,
    pub revised: usize,
    pub created: usize,
    pub duplicate: usize,
    pub refused: usize,
    pub already_confirmed: usize,
    /// True when item answers were absent, so item triggers were not checked.
    pub totals_only: bool,
    pub timings: Vec<(&'static str, Duration)>,
}

impl Summary {
    pub fn render(&self, plan: &Plan, scale: &Scale, rules: &RuleSet, dry_run: bool) -> String {
        let mut s = String::new();
        let head = if dry_run {
            "试运行（未保存、未发送）/ dry run (nothing stored or sent)\n"
        } else {
            ""
        };
        s.push_str(head);
        s.push_str(&format!(
            "计划 / plan: {} · 量表 / scale: {} v{} · 风险规则 / risk rule: {} v{}\n",
            crate::text::inert(&plan.id),
            scale.id,
            scale.version,
            rules.risk.id,
            rules.risk.version
        ));
        s.push_str(&format!(
            "行数 / rows: {} ({}) · 有效 / valid: {} · 无效需重测 / invalid, re-test: {} · 错误行 / bad rows: {}\n",
            self.rows, self.encoding, self.valid, self.invalid, self.bad_rows
        ));
        s.push_str(&format!(
            "预警 / flagged: 高危关注 high {} (危机队列 crisis {}, 紧急 imminent {}) · 重点关注 key {} · 一般关注 general {}\n",
            self.high, self.crisis, self.imminent, self.key, self.general
        ));
        if self.totals_only {
            s.push_str("注意：文件只有分数没有题目作答，未检查单题触发项 / note: no item answers in the file, item-level triggers were not checked\n");
        }
        if !dry_run {
            s.push_str(&format!(
                "预警推送 / alerts (at or above {}): 新建 created {} · 已存在 duplicate {} · 拒绝 refused {} · 此前已确认 confirmed before {}\n",
                plan.threshold.as_str(),
                self.created,
                self.duplicate,
                self.refused,
                self.already_confirmed
            ));
            s.push_str(&format!(
                "结果 / results: 未变 unchanged {} · 更正 revised {}\n",
                self.unchanged, self.revised
            ));
        } else {
            s.push_str(&format!(
                "将推送预警 / would alert (at or above {}): {}\n",
                plan.threshold.as_str(),
                self.over_threshold
            ));
        }
        s
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    File(#[from] read::FileError),
    #[error("{0}")]
    Header(String),
    #[error("{0}")]
    Plan(String),
    #[error("{0}")]
    Rules(String),
    #[error("数据库错误 / database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    #[error(
        "发送中断 / sending stopped: {0}. 已确认的预警已记录；原样重新运行同一命令即可完成，不会重复 / confirmed alerts are recorded; re-run the same command to finish, nothing will be duplicated"
    )]
    Send(String),
    #[error("无法写错误文件 / cannot write the error file {0}: {1}")]
    ErrorFile(String, std::io::Error),
    #[error(
        "无法读取本计划已存的结果 / could not read the plan's stored results: {0}. 未保存、未发送任何内容；原样重新运行同一命令即可 / nothing was stored or sent; run the same command again"
    )]
    Standings(String),
    /// This build lacks the part the options ask for (a cargo feature);
    /// checked before anything is stored.
    #[error("{0}")]
    NotBuilt(&'static str),
}

/// A digest of everything the row says except the name, so a re-import of
/// the same file is recognised without keeping names.
fn row_hash(row: &StudentRow) -> String {
    let mut h = Sha256::new();
    let mut put = |s: &str| {
        h.update((s.len() as u32).to_le_bytes());
        h.update(s.as_bytes());
    };
    put(&row.student_id);
    put(&row.school);
    put(row.grade.as_deref().unwrap_or("\u{0}"));
    put(row.class.as_deref().unwrap_or("\u{0}"));
    put(&row.answered_at.to_rfc3339());
    let sheet = &row.sheet;
    match &sheet.answers {
        Some(a) => h.update(a),
        None => h.update([0xff]),
    }
    for v in &sheet.given_scores {
        h.update(v.map_or(f64::NAN, |v| v).to_le_bytes());
    }
    for v in &sheet.extras {
        h.update([v.map_or(0xff, |v| v)]);
    }
    h.update(sheet.seconds.map_or(u64::MAX, u64::from).to_le_bytes());
    crate::store::hex(&h.finalize()[..16])
}

pub fn alert_id(plan: &str, student: &str, revision: i64) -> String {
    if revision == 0 {
        format!("scr-{plan}-{student}")
    } else {
        format!("scr-{plan}-{student}-r{revision}")
    }
}

/// The alert for a stored result. Built from the stored result only (plus
/// the name from the file), so a re-run builds the same body.
pub fn build_alert(plan: &Plan, scale: &Scale, r: &StoredResult, name: Option<&str>) -> Value {
    let contributions: Value = r
        .contributions
        .as_deref()
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or(Value::Array(Vec::new()));
    let short = grade::scale_short(scale);
    let mut student = json!({"id": r.student_id, "school": r.school});
    if let Some(g) = &r.grade {
        student["grade"] = json!(g);
    }
    if let Some(c) = &r.class {
        student["class"] = json!(c);
    }
    if let Some(n) = name {
        student["name"] = json!(n);
    }
    let mut alert = json!({
        "id": r.alert_id.clone().unwrap_or_else(|| alert_id(&plan.id, &r.student_id, r.revision)),
        "source": "screening",
        "category": r.category.clone().unwrap_or_else(|| "other".into()),
        "level": r.level.clone().unwrap_or_else(|| "general".into()),
        "imminent": r.imminent,
        "student": student,
        "summary": format!(
            "心理筛查 {short}（计划 {}）：{} / Screening {short} (plan {}): {}",
            plan.id,
            r.class_zh.as_deref().unwrap_or(""),
            plan.id,
            r.class_en.as_deref().unwrap_or("")
        ),
        "signals": [{
            "kind": "risk",
            "rule": r.scale_rule,
            "rule_version": r.scale_rule_version,
            "level": r.level,
            "risk_rule": r.risk_rule,
            "risk_rule_version": r.risk_rule_version,
            "points": r.points,
            "plan": plan.id,
            "contributions": contributions,
        }],
        "observed_at": r.answered_at,
    });
    if r.route.as_deref() != Some("crisis") {
        alert["route"] = json!("followup");
    }
    alert
}

pub async fn run(
    store: &Store,
    rules: &RuleSet,
    opts: &ImportOptions,
) -> Result<(Summary, Plan), ImportError> {
    let mut summary = Summary::default();
    let t0 = Instant::now();
    let plan = store.screening_plan(&opts.plan).await?.ok_or_else(|| {
        ImportError::Plan(format!(
            "筛查计划不存在 / no screening plan `{}` (create it with `crisisdesk screening plan create`)",
            crate::text::inert(&opts.plan)
        ))
    })?;
    let scale = rules.scales.get(&plan.scale).ok_or_else(|| {
        ImportError::Rules(format!(
            "计划所用量表无规则文件 / no rule file for the plan's scale `{}`",
            plan.scale
        ))
    })?;
    let custom = opts
        .mapping
        .as_deref()
        .map(MappingFile::load)
        .transpose()
        .map_err(ImportError::Header)?;
    // What the store holds for this plan is read on the store's thread
    // while this one reads the file: on a re-import both take about as
    // long, and they need nothing of each other.
    let standings = {
        let (store, plan_id) = (store.clone(), plan.id.clone());
        tokio::spawn(async move { store.screening_standings_of_plan(&plan_id).await })
    };
    let mut table = read::read_file(&opts.file)?;
    summary.encoding = table.encoding;
    let mapping = map::map_headers(&table, scale, custom.as_ref()).map_err(ImportError::Header)?;
    summary.totals_only = !mapping.has_items;
    let row_rules = RowRules {
        schools: &plan.schools,
        from: plan.starts_on,
        to: plan.ends_on,
        offset: opts.offset,
    };
    let (rows, errors, read_rows) = map::parse_rows(&mut table, &mapping, scale, &row_rules)?;
    summary.rows = read_rows;
    summary.bad_rows = errors.len();
    drop(table);
    summary.timings.push(("read", t0.elapsed()));
    if opts.progress {
        eprintln!(
            "已读取 / read {} 行 rows, {} 行有错 / bad",
            summary.rows, summary.bad_rows
        );
    }

    if let Some(out) = &opts.errors_out {
        write_error_file(out, &errors)
            .map_err(|e| ImportError::ErrorFile(out.display().to_string(), e))?;
    }

    // Which rows are new or changed (their digest differs from the stored
    // result's); only those are graded and stored again.
    let t1 = Instant::now();
    let prior = standings
        .await
        .map_err(|e| ImportError::Standings(e.to_string()))?
        .map_err(|e| ImportError::Standings(e.to_string()))?;
    let hashes: Vec<String> = rows.iter().map(row_hash).collect();
    let times: HashMap<String, String> = rows
        .iter()
        .zip(&hashes)
        .filter(|(row, hash)| {
            prior
                .get(&row.student_id)
                .is_none_or(|old| &old.row_hash != *hash)
        })
        .map(|(row, _)| (row.student_id.clone(), row.answered_at.to_rfc3339()))
        .collect();
    let histories = if times.is_empty() {
        HashMap::new()
    } else {
        store.screening_histories(&plan.id, &times).await?
    };
    drop(times);

    // Where the alerts go. Built before anything is stored, so a missing
    // playbook set fails the import before it starts.
    let mut outbox = match &opts.destination {
        Destination::DryRun => None,
        #[cfg(feature = "drill-client")]
        Destination::Relay { url, token } => Some(Outbox::relay(store, &plan.id, url, token)),
        #[cfg(not(feature = "drill-client"))]
        Destination::Relay { .. } => {
            return Err(ImportError::NotBuilt(
                "--relay needs the HTTP client (cargo feature `drill-client`); import with --db alone, or use a build with it",
            ));
        }
        #[cfg(feature = "relay")]
        Destination::Store => Some(Outbox::store(store, &plan.id).await?),
        #[cfg(not(feature = "relay"))]
        Destination::Store => {
            return Err(ImportError::NotBuilt(
                "sending without --relay needs the relay's ingest (cargo feature `relay`); pass --relay URL --token T, or --dry-run",
            ));
        }
    }
    .map(|o: Outbox<'_>| o.with_progress(opts.progress));

    // Grade, count and store a slice at a time, and hand each stored
    // slice's alerts to the outbox, which sends them while the next slice
    // is graded. Results are stored before their alert is sent, and a
    // stored result whose alert is not confirmed is sent again by the next
    // import, so an interruption anywhere loses nothing.
    let graded_at = crate::store::ts(Utc::now());
    let empty = super::risk::History::default();
    // The slice being graded: results and the file row each came from.
    let mut unsaved: Vec<StoredResult> = Vec::with_capacity(SAVE_SLICE);
    let mut unsaved_rows: Vec<usize> = Vec::with_capacity(SAVE_SLICE);
    // A batch of alerts for stored results (those that alert), each with
    // the name from its file row; bodies are built a slice at a time, so
    // only a few batches of JSON are held at once.
    let alerts_of = |results: &[StoredResult], at: &[usize]| -> Batch {
        let mut batch = Batch {
            students: Vec::new(),
            rows: Vec::new(),
            bodies: Vec::new(),
        };
        for (r, &i) in results.iter().zip(at) {
            if r.alert_id.is_none() {
                continue;
            }
            batch.students.push(r.student_id.clone());
            batch.rows.push(rows[i].row.clone());
            batch
                .bodies
                .push(build_alert(&plan, scale, r, rows[i].name.as_deref()));
        }
        batch
    };
    let mut resend: std::collections::HashSet<&str> = std::collections::HashSet::new();
    let mut store_time = Duration::ZERO;
    let mut send_time = Duration::ZERO;
    for (i, (row, hash)) in rows.iter().zip(hashes).enumerate() {
        let tally = match prior.get(&row.student_id) {
            Some(old) if old.row_hash == hash => {
                summary.unchanged += 1;
                if old.tally.alerting && !old.tally.confirmed {
                    resend.insert(row.student_id.as_str());
                }
                old.tally
            }
            old => {
                let revision = old.map_or(0, |old| old.revision + 1);
                summary.revised += usize::from(old.is_some());
                let r = grade_row(
                    &plan, scale, rules, row, hash, revision, &graded_at, &histories, &empty,
                );
                let tally = tally_of(&r);
                if let Some(outbox) = outbox.as_mut() {
                    unsaved.push(r);
                    unsaved_rows.push(i);
                    if unsaved.len() == SAVE_SLICE {
                        store_and_hand_over(
                            store,
                            outbox,
                            (&mut unsaved, &mut unsaved_rows),
                            &alerts_of,
                            (&mut store_time, &mut send_time),
                        )
                        .await?;
                    }
                }
                tally
            }
        };
        if !tally.valid {
            summary.invalid += 1;
            continue;
        }
        summary.valid += 1;
        match tally.level {
            Some(Flag::General) => summary.general += 1,
            Some(Flag::Key) => summary.key += 1,
            Some(Flag::High) => summary.high += 1,
            _ => {}
        }
        summary.imminent += usize::from(tally.imminent);
        summary.crisis += usize::from(tally.crisis);
        if tally.alerting {
            summary.over_threshold += 1;
            summary.already_confirmed += usize::from(tally.confirmed);
        }
    }
    drop(prior);
    drop(histories);
    let Some(mut outbox) = outbox else {
        summary.timings.push(("grade", t1.elapsed()));
        return Ok((summary, plan));
    };
    store_and_hand_over(
        store,
        &mut outbox,
        (&mut unsaved, &mut unsaved_rows),
        &alerts_of,
        (&mut store_time, &mut send_time),
    )
    .await?;
    summary
        .timings
        .push(("grade", t1.elapsed().saturating_sub(store_time + send_time)));
    summary.timings.push(("store", store_time));

    let t3 = Instant::now();
    // Unconfirmed results of unchanged rows (an earlier import stopped
    // before their answer) are read whole only now, and only those the
    // file still holds.
    if !resend.is_empty() {
        let row_of: HashMap<&str, usize> = rows
            .iter()
            .enumerate()
            .filter(|(_, r)| resend.contains(r.student_id.as_str()))
            .map(|(i, r)| (r.student_id.as_str(), i))
            .collect();
        let (resent, at): (Vec<StoredResult>, Vec<usize>) = store
            .screening_unconfirmed_results(&plan.id)
            .await?
            .into_iter()
            .filter_map(|r| {
                let i = *row_of.get(r.student_id.as_str())?;
                Some((r, i))
            })
            .unzip();
        for (chunk, at) in resent.chunks(BATCH).zip(at.chunks(BATCH)) {
            outbox.push(alerts_of(chunk, at)).await?;
        }
    }
    let sent = outbox.finish().await?;
    summary.created = sent.created;
    summary.duplicate = sent.duplicate;
    summary.refused = sent.refused;
    let refused_rows = sent.refused_rows;
    summary.timings.push(("send", send_time + t3.elapsed()));
    if !refused_rows.is_empty()
        && let Some(out) = &opts.errors_out
    {
        let mut all = errors.clone();
        all.extend(refused_rows);
        write_error_file(out, &all)
            .map_err(|e| ImportError::ErrorFile(out.display().to_string(), e))?;
    }
    Ok((summary, plan))
}

/// Stores a graded slice in one transaction, then hands its alerts to the
/// outbox a batch at a time (never before they are stored). The slice is
/// moved into the store; its alert bodies are built from it first.
async fn store_and_hand_over(
    store: &Store,
    outbox: &mut Outbox<'_>,
    (results, at): (&mut Vec<StoredResult>, &mut Vec<usize>),
    alerts_of: &impl Fn(&[StoredResult], &[usize]) -> Batch,
    (store_time, send_time): (&mut Duration, &mut Duration),
) -> Result<(), ImportError> {
    if results.is_empty() {
        return Ok(());
    }
    let t = Instant::now();
    let batches: Vec<Batch> = results
        .chunks(BATCH)
        .zip(at.chunks(BATCH))
        .map(|(chunk, at)| alerts_of(chunk, at))
        .collect();
    at.clear();
    *send_time += t.elapsed();
    let t = Instant::now();
    let confirmed = outbox.take_confirmed();
    store
        .screening_save_results(std::mem::take(results), (outbox.plan_id(), &confirmed))
        .await?;
    *store_time += t.elapsed();
    let t = Instant::now();
    for batch in batches {
        outbox.push(batch).await?;
    }
    *send_time += t.elapsed();
    Ok(())
}

/// Grades one new or changed row into the result to store.
#[allow(clippy::too_many_arguments)] // the row's whole context; a struct would only rename it
fn grade_row(
    plan: &Plan,
    scale: &Scale,
    rules: &RuleSet,
    row: &StudentRow,
    row_hash: String,
    revision: i64,
    graded_at: &str,
    histories: &HashMap<String, super::risk::History>,
    empty: &super::risk::History,
) -> StoredResult {
    let mut r = StoredResult {
        plan_id: plan.id.clone(),
        student_id: row.student_id.clone(),
        school: row.school.clone(),
        grade: row.grade.clone(),
        class: row.class.clone(),
        answered_at: row.answered_at.to_rfc3339(),
        row_hash,
        revision,
        valid: false,
        invalid_reason: None,
        scale_level: None,
        level: None,
        imminent: false,
        route: None,
        category: None,
        class_zh: None,
        class_en: None,
        scale_rule: scale.id.clone(),
        scale_rule_version: i64::from(scale.version),
        risk_rule: None,
        risk_rule_version: None,
        points: None,
        scores: "{}".into(),
        contributions: None,
        alert_id: None,
        case_id: None,
        graded_at: graded_at.to_string(),
    };
    match grade::grade(scale, &row.sheet) {
        Outcome::Invalid(why) => r.invalid_reason = Some(why.code().into()),
        Outcome::Graded(g) => {
            let history = histories.get(&row.student_id).unwrap_or(empty);
            let risk = rules
                .risk
                .grade(&g, history, row.answered_at.with_timezone(&Utc));
            r.valid = true;
            r.scale_level = Some(g.flag.as_str().into());
            r.level = Some(risk.flag.as_str().into());
            r.imminent = risk.imminent;
            r.route = Some(
                if g.route == Route::Crisis {
                    "crisis"
                } else {
                    "followup"
                }
                .into(),
            );
            r.category = Some(g.category.as_str().into());
            r.class_zh = Some(g.class_zh.clone());
            r.class_en = Some(g.class_en.clone());
            r.risk_rule = Some(rules.risk.id.clone());
            r.risk_rule_version = Some(i64::from(risk.rule_version));
            r.points = Some(risk.points);
            let scores: serde_json::Map<String, Value> = scale
                .scores
                .iter()
                .zip(&g.scores)
                .filter_map(|(s, v)| v.map(|v| (s.id.clone(), json!((v * 100.0).round() / 100.0))))
                .collect();
            r.scores = Value::Object(scores).to_string();
            r.contributions = serde_json::to_string(&risk.contributions).ok();
            if risk.flag >= plan.threshold && risk.flag != Flag::None {
                r.alert_id = Some(alert_id(&plan.id, &r.student_id, revision));
            }
        }
    }
    r
}

/// What a freshly graded result adds to the summary.
fn tally_of(r: &StoredResult) -> sstore::Tally {
    sstore::Tally {
        valid: r.valid,
        level: r.level.as_deref().and_then(Flag::parse),
        imminent: r.imminent,
        crisis: r.route.as_deref() == Some("crisis"),
        alerting: r.alert_id.is_some(),
        confirmed: r.case_id.is_some(),
    }
}

#[cfg_attr(
    not(any(feature = "relay", feature = "drill-client")),
    allow(dead_code, reason = "only the outbox refuses rows")
)]
pub(super) fn refusal(row: &str, student: &str, e: &ErrorDetail) -> RowError {
    RowError {
        row: row.to_string(),
        column: String::new(),
        student_id: student.to_string(),
        code: "alert_refused",
        // The relay's message names a field, never content (docs/protocol.md).
        zh: format!("中继拒收预警（{}）", e.code),
        en: format!(
            "the relay refused the alert: {} {}",
            e.code,
            e.field.as_deref().unwrap_or("")
        ),
    }
}

/// The error file: row, column, student id, code and reason in Chinese and
/// English; never a name or an answer. UTF-8 with a BOM so Excel on a
/// Chinese Windows opens it as Unicode.
pub fn write_error_file(path: &Path, errors: &[RowError]) -> std::io::Result<()> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    file.write_all(b"\xEF\xBB\xBF")?;
    let mut w = csv::Writer::from_writer(file);
    w.write_record([
        "行号/row",
        "列/column",
        "学籍号/student_id",
        "代码/code",
        "原因",
        "reason",
    ])?;
    for e in errors {
        w.write_record([
            e.row.as_str(),
            e.column.as_str(),
            e.student_id.as_str(),
            e.code,
            e.zh.as_str(),
            e.en.as_str(),
        ])?;
    }
    w.flush()?;
    Ok(())
}
