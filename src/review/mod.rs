//! Post-incident review (复盘): one case's whole story rebuilt from the
//! relay's record — its events, its checklists and the audit trail — and
//! rendered as JSON ([`CaseReview`] serialised), Markdown or one
//! self-contained HTML page with a swimlane chart per role.
//!
//! Building is separate from rendering so the same story feeds all three
//! formats and the period report.

pub mod drill;
pub mod figures;
mod html;
mod markdown;
pub mod report;
mod svg;

use chrono::{DateTime, FixedOffset, Utc};
use serde::Serialize;

use crate::audit::{self, ChainVerifier};
use crate::playbook::{Library, Resolution, StepState};
use crate::protocol::{
    Actor, AlertStatus, CaseStatus, Category, CloseOutcome, EventBody, Level, Role, Source,
};
use crate::store::{Store, StoreError};
use crate::text::{inert, inert_block, masked_name};

pub use html::{page, render_html};
pub use markdown::render_markdown;

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("there is no case `{0}` in this database")]
    UnknownCase(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The output formats of `review` and `report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Md,
    Html,
    Json,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaseReview {
    pub case_id: String,
    pub drill: bool,
    pub exercise_id: Option<String>,
    pub student: StudentLine,
    pub level: Level,
    pub imminent: bool,
    pub category: Category,
    pub status: CaseStatus,
    pub outcome: Option<CloseOutcome>,
    pub override_reason: Option<String>,
    pub overridden: Vec<String>,
    pub opened_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<Actor>,
    pub closed_at: Option<DateTime<Utc>>,
    pub time_to_ack_secs: Option<i64>,
    /// The moment the review describes: closing time, or when it was made.
    pub as_of: DateTime<Utc>,
    pub alerts: Vec<AlertLine>,
    pub timeline: Vec<TimelineItem>,
    pub steps: Vec<StepLine>,
    pub contacts: Vec<ContactLine>,
    pub referrals: Vec<ReferralLine>,
    pub escalations: Vec<EscalationLine>,
    pub notes: Vec<NoteLine>,
    pub viewers: Vec<ViewLine>,
    pub audit: AuditCheck,
}

/// The student as a review shows them: id and masked name only.
#[derive(Debug, Clone, Serialize)]
pub struct StudentLine {
    pub id: String,
    pub masked_name: Option<String>,
    pub school: Option<String>,
    pub grade: Option<String>,
    pub class: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AlertLine {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub alert_id: String,
    pub source: Source,
    pub level: Level,
    pub imminent: bool,
    pub category: Category,
    pub summary: Option<String>,
}

/// Where an item sits in the swimlane chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    Alerts,
    Role(Role),
    Relay,
}

impl Lane {
    pub fn label(self) -> &'static str {
        match self {
            Lane::Alerts => "alerts 预警",
            Lane::Relay => "relay 系统",
            Lane::Role(Role::Counselor) => "counselor 心理教师",
            Lane::Role(Role::HeadTeacher) => "head teacher 班主任",
            Lane::Role(Role::Leader) => "leader 校领导",
            Lane::Role(Role::Nurse) => "nurse 校医",
            Lane::Role(Role::Security) => "security 保卫",
            Lane::Role(Role::Reviewer) => "reviewer 督导",
            Lane::Role(Role::Admin) => "admin 管理员",
            Lane::Role(Role::Producer) => "producer 信息源",
            Lane::Role(Role::District) => "district 教育局",
        }
    }

    /// Lanes in the order a chart shows them.
    pub const ORDER: [Lane; 9] = [
        Lane::Alerts,
        Lane::Role(Role::Counselor),
        Lane::Role(Role::HeadTeacher),
        Lane::Role(Role::Leader),
        Lane::Role(Role::Nurse),
        Lane::Role(Role::Security),
        Lane::Role(Role::Reviewer),
        Lane::Role(Role::District),
        Lane::Relay,
    ];
}

#[derive(Debug, Clone, Serialize)]
pub struct TimelineItem {
    pub at: DateTime<Utc>,
    pub lane: Lane,
    pub who: Option<String>,
    pub what: String,
    /// Marks escalations and late or missed work in the chart.
    pub alarm: bool,
}

/// How a step went against its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    OnTime,
    Late,
    Missed,
    Open,
    Skipped,
    NotApplicable,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::OnTime => "on time 按时",
            Verdict::Late => "LATE 超时完成",
            Verdict::Missed => "MISSED 未完成",
            Verdict::Open => "open 进行中",
            Verdict::Skipped => "skipped 跳过",
            Verdict::NotApplicable => "n/a 不适用",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StepLine {
    pub playbook: String,
    pub step: String,
    pub title_zh: String,
    pub title_en: String,
    pub role: Role,
    pub required: bool,
    pub due: Option<DateTime<Utc>>,
    /// What the limit rests on, as the playbook states it: "默认时限" or
    /// "时限依据：<source>" (zh), and the English label; `None` when the
    /// step has no limit.
    pub due_basis_zh: Option<String>,
    pub due_basis_en: Option<String>,
    pub done_at: Option<DateTime<Utc>>,
    pub done_by: Option<Role>,
    pub how: Option<String>,
    pub verdict: Verdict,
    /// A limit in school days, as the console shows it: "1 个上学日" and,
    /// when it was counted without the school's calendar, "按工作日计（未配置
    /// 校历）" (zh), and the English; `None` for a wall-clock limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_zh: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_en: Option<String>,
    /// The limit's count of school days, for a step timed in school days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub school_days: Option<u32>,
}

/// A school-day limit in words with, when it was counted on weekdays for
/// want of the school's calendar, the note that says so.
fn school_day_limit(
    pb: &crate::playbook::Playbook,
    progress: &crate::playbook::Progress,
    step: &crate::playbook::Step,
    lang: crate::playbook::Lang,
) -> Option<String> {
    let limit = step.due.as_ref()?.within;
    limit.school_days()?;
    let mut out = limit.label(lang);
    if progress.school_calendar(pb, &step.id) == Some(None) {
        out.push_str(" · ");
        out.push_str(crate::playbook::weekdays_fallback_note(lang));
    }
    Some(out)
}

#[derive(Debug, Clone, Serialize)]
pub struct ContactLine {
    pub step: String,
    pub at: DateTime<Utc>,
    pub by: Role,
    pub outcome: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReferralLine {
    pub step: String,
    pub at: DateTime<Utc>,
    pub by: Role,
    pub institution: String,
    pub appointment: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EscalationLine {
    pub at: DateTime<Utc>,
    pub step: String,
    pub owner: Role,
    pub to: Role,
}

#[derive(Debug, Clone, Serialize)]
pub struct NoteLine {
    pub at: DateTime<Utc>,
    pub by: Role,
    pub step: String,
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ViewLine {
    pub at: DateTime<Utc>,
    pub name: String,
    pub role: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditCheck {
    pub chain_intact: bool,
    pub message: String,
    pub entries_for_case: usize,
}

/// Rebuilds one case's story as of `as_of` (default: its closing time, or
/// now for an open case), and checks the audit chain that covers it.
pub async fn build(
    store: &Store,
    library: &Library,
    case_id: &str,
    as_of: Option<DateTime<Utc>>,
) -> Result<CaseReview, ReviewError> {
    let mut review = build_story(store, library, case_id, as_of).await?;
    review.audit = check_chain(store, review.audit.entries_for_case).await?;
    Ok(review)
}

/// The story without the chain check (the period report builds many).
pub async fn build_story(
    store: &Store,
    library: &Library,
    case_id: &str,
    as_of: Option<DateTime<Utc>>,
) -> Result<CaseReview, ReviewError> {
    let case = store
        .case(case_id)
        .await?
        .ok_or_else(|| ReviewError::UnknownCase(case_id.to_string()))?;
    let events = store.events_for_case(case_id).await?;
    let checklists = store.checklists(case_id).await?;
    let audit_entries = store.audit_for_case(case_id).await?;

    let mut review = CaseReview {
        case_id: case.id.clone(),
        drill: case.alert_status != AlertStatus::Actual,
        exercise_id: case.exercise_id.clone(),
        student: StudentLine {
            id: inert(&case.student_id),
            masked_name: None,
            school: None,
            grade: None,
            class: None,
        },
        level: case.level,
        imminent: case.imminent,
        category: case.category,
        status: case.status,
        outcome: None,
        override_reason: None,
        overridden: Vec::new(),
        opened_at: case.opened_at,
        acknowledged_at: case.acknowledged_at,
        acknowledged_by: case.acknowledged_by.clone(),
        closed_at: None,
        time_to_ack_secs: case
            .acknowledged_at
            .map(|t| (t - case.opened_at).num_seconds()),
        as_of: Utc::now(),
        alerts: Vec::new(),
        timeline: Vec::new(),
        steps: Vec::new(),
        contacts: Vec::new(),
        referrals: Vec::new(),
        escalations: Vec::new(),
        notes: Vec::new(),
        viewers: Vec::new(),
        audit: AuditCheck {
            chain_intact: false,
            message: String::new(),
            entries_for_case: audit_entries.len(),
        },
    };

    let step_title = |playbook: &str, step: &str| {
        library
            .get(playbook)
            .and_then(|pb| pb.step(step))
            .map(|s| format!("{} / {}", s.title.zh, s.title.en))
            .unwrap_or_else(|| format!("{playbook}/{step}"))
    };
    for event in &events {
        let at = event.at;
        let item = |lane, who: Option<String>, what: String, alarm| TimelineItem {
            at,
            lane,
            who,
            what,
            alarm,
        };
        match &event.body {
            EventBody::Alert { alert, opened, .. } => {
                let st = &alert.student;
                if let Some(name) = &st.name {
                    review.student.masked_name = Some(masked_name(name));
                }
                for (slot, value) in [
                    (&mut review.student.school, &st.school),
                    (&mut review.student.grade, &st.grade),
                    (&mut review.student.class, &st.class),
                ] {
                    if let Some(v) = value {
                        *slot = Some(inert(v));
                    }
                }
                review.alerts.push(AlertLine {
                    seq: event.seq,
                    at,
                    alert_id: inert(&alert.id),
                    source: alert.source,
                    level: alert.level,
                    imminent: alert.imminent,
                    category: alert.category,
                    summary: alert.summary.as_deref().map(inert_block),
                });
                let what = format!(
                    "{} alert {} ({}{}, {}){}",
                    if *opened { "opening" } else { "follow-up" },
                    inert(&alert.id),
                    alert.level.as_str(),
                    if alert.imminent { ", imminent" } else { "" },
                    alert.source.as_str(),
                    if *opened { " — case opened" } else { "" },
                );
                review
                    .timeline
                    .push(item(Lane::Alerts, None, what, alert.imminent));
            }
            EventBody::ChecklistAdded {
                playbook, origin, ..
            } => {
                let (lane, who) = match origin {
                    Some(o) => (Lane::Role(o.by.role), Some(inert(&o.by.name))),
                    None => (Lane::Relay, None),
                };
                review.timeline.push(item(
                    lane,
                    who,
                    format!("playbook {playbook} attached"),
                    false,
                ));
            }
            EventBody::CaseAcknowledged { by, .. } => {
                review.timeline.push(item(
                    Lane::Role(by.role),
                    Some(inert(&by.name)),
                    "acknowledged the case".into(),
                    false,
                ));
            }
            EventBody::StepUpdated { change, origin, .. } => {
                let title = step_title(&change.playbook, &change.step);
                let what = describe_effect(&change.effect);
                review.timeline.push(item(
                    Lane::Role(origin.by.role),
                    Some(inert(&origin.by.name)),
                    format!("{title}: {what}"),
                    false,
                ));
            }
            EventBody::Escalation {
                playbook,
                step,
                to,
                owner,
                ..
            } => {
                review.escalations.push(EscalationLine {
                    at,
                    step: format!("{playbook}/{step}"),
                    owner: *owner,
                    to: *to,
                });
                review.timeline.push(item(
                    Lane::Role(*to),
                    None,
                    format!(
                        "ESCALATED to {to}: {} overdue (owner {owner})",
                        step_title(playbook, step)
                    ),
                    true,
                ));
            }
            EventBody::CaseClosed {
                outcome,
                override_reason,
                overridden,
                origin,
                ..
            } => {
                review.outcome = Some(*outcome);
                review.closed_at = Some(at);
                review.override_reason = override_reason.as_deref().map(inert_block);
                review.overridden.clone_from(overridden);
                review.timeline.push(item(
                    Lane::Role(origin.by.role),
                    Some(inert(&origin.by.name)),
                    format!(
                        "closed: {}{}",
                        outcome.as_str(),
                        if overridden.is_empty() {
                            String::new()
                        } else {
                            format!(" (leader override over {} open steps)", overridden.len())
                        }
                    ),
                    !overridden.is_empty(),
                ));
            }
            EventBody::ReportOpened { report, origin, .. } => {
                let (lane, who) = match origin {
                    Some(o) => (Lane::Role(o.by.role), Some(inert(&o.by.name))),
                    None => (Lane::Relay, None),
                };
                review.timeline.push(item(
                    lane,
                    who,
                    format!(
                        "incident report opened 事件报告: {}",
                        report.rules.join(", ")
                    ),
                    false,
                ));
            }
            EventBody::ReportUpdated { change, origin, .. } => {
                let (lane, who) = match origin {
                    Some(o) => (Lane::Role(o.by.role), Some(inert(&o.by.name))),
                    None => (Lane::Relay, None),
                };
                let (what, alarm) = match change {
                    crate::reporting::ReportChange::RulesAdded { rules } => {
                        (format!("report rules added: {}", rules.join(", ")), false)
                    }
                    crate::reporting::ReportChange::Submitted { stage, late } => (
                        format!(
                            "report {} submitted 上报{}",
                            stage.as_str(),
                            if *late { " (late 逾期)" } else { "" }
                        ),
                        *late,
                    ),
                    crate::reporting::ReportChange::Accepted { stage } => {
                        (format!("report {} accepted 已接收", stage.as_str()), false)
                    }
                    crate::reporting::ReportChange::Returned { stage, .. } => {
                        (format!("report {} returned 退回", stage.as_str()), true)
                    }
                };
                review.timeline.push(item(lane, who, what, alarm));
            }
            EventBody::ReportOverdue { stage, .. } => {
                review.timeline.push(item(
                    Lane::Relay,
                    None,
                    format!("report {} overdue 上报逾期 → leader", stage.as_str()),
                    true,
                ));
            }
            EventBody::CaseUpdated { change, origin, .. } => {
                if matches!(change, crate::followup::CaseChange::Reopened { .. }) {
                    review.outcome = None;
                    review.closed_at = None;
                }
                let (lane, who) = match (origin, change) {
                    (Some(o), _) => (Lane::Role(o.by.role), Some(inert(&o.by.name))),
                    (None, crate::followup::CaseChange::CheckinMissed { to, .. }) => {
                        (Lane::Role(*to), None)
                    }
                    (None, _) => (Lane::Relay, None),
                };
                let alarm = matches!(change, crate::followup::CaseChange::CheckinMissed { .. });
                review
                    .timeline
                    .push(item(lane, who, crate::followup::describe(change), alarm));
            }
        }
    }
    review.as_of = as_of.or(review.closed_at).unwrap_or_else(Utc::now);

    for entry in &audit_entries {
        if entry.kind == audit::AuditKind::CaseViewed.as_str() {
            let name = entry.actor_name.clone().unwrap_or_default();
            let role = entry.actor_role.clone().unwrap_or_default();
            review.viewers.push(ViewLine {
                at: entry.at,
                name: inert(&name),
                role: role.clone(),
            });
            review.timeline.push(TimelineItem {
                at: entry.at,
                lane: Role::parse(&role).map_or(Lane::Relay, Lane::Role),
                who: Some(inert(&name)),
                what: "viewed the case".into(),
                alarm: false,
            });
        }
    }
    review.timeline.sort_by_key(|i| i.at);

    for (playbook_id, progress) in &checklists {
        let Some(pb) = library.get(playbook_id) else {
            continue;
        };
        for view in progress.view(pb, review.as_of) {
            let record = progress.record(&view.step.id);
            let outcome = record.and_then(|r| r.outcome.as_ref());
            let verdict = match (view.state, outcome, view.due) {
                (StepState::Inactive, ..) => Verdict::NotApplicable,
                (StepState::Skipped, ..) => Verdict::Skipped,
                (StepState::Done, Some(o), Some(due)) if o.at > due => Verdict::Late,
                (StepState::Done, ..) => Verdict::OnTime,
                (_, _, Some(due)) if due < review.as_of => Verdict::Missed,
                _ if review.closed_at.is_some() => Verdict::Missed,
                _ => Verdict::Open,
            };
            let step_ref = format!("{playbook_id}/{}", view.step.id);
            if let Some(r) = record {
                for a in &r.attempts {
                    review.contacts.push(ContactLine {
                        step: step_ref.clone(),
                        at: a.at,
                        by: a.by,
                        outcome: a.outcome.as_str().to_string(),
                    });
                }
                for remark in &r.remarks {
                    review.notes.push(NoteLine {
                        at: remark.at,
                        by: remark.by,
                        step: step_ref.clone(),
                        text: inert_block(&remark.text),
                    });
                }
            }
            if let Some(o) = outcome {
                match &o.how {
                    Resolution::Referred {
                        institution,
                        appointment,
                    } => review.referrals.push(ReferralLine {
                        step: step_ref.clone(),
                        at: o.at,
                        by: o.by,
                        institution: inert(institution),
                        appointment: *appointment,
                    }),
                    Resolution::Noted { text } => review.notes.push(NoteLine {
                        at: o.at,
                        by: o.by,
                        step: step_ref.clone(),
                        text: inert_block(text),
                    }),
                    _ => {}
                }
            }
            review.steps.push(StepLine {
                playbook: playbook_id.clone(),
                step: view.step.id.clone(),
                title_zh: view.step.title.zh.clone(),
                title_en: view.step.title.en.clone(),
                role: view.step.role,
                required: view.step.required,
                due: view.due,
                due_basis_zh: pb.due_basis_label(view.step, crate::playbook::Lang::Zh),
                due_basis_en: pb.due_basis_label(view.step, crate::playbook::Lang::En),
                done_at: outcome.map(|o| o.at),
                done_by: outcome.map(|o| o.by),
                how: outcome.map(|o| describe_resolution(&o.how)),
                verdict,
                limit_zh: school_day_limit(pb, progress, view.step, crate::playbook::Lang::Zh),
                limit_en: school_day_limit(pb, progress, view.step, crate::playbook::Lang::En),
                school_days: view.step.due.as_ref().and_then(|d| d.within.school_days()),
            });
        }
    }
    review.contacts.sort_by_key(|c| c.at);
    review.notes.sort_by_key(|n| n.at);
    review.audit.message = "not checked".into();
    Ok(review)
}

pub(crate) fn describe_effect(effect: &crate::playbook::Effect) -> String {
    use crate::playbook::Effect;
    match effect {
        Effect::Completed => "done".into(),
        Effect::Skipped { reason } => format!("skipped ({})", inert(reason)),
        Effect::Noted { text, .. } => format!("note: {}", inert(text)),
        Effect::Chose { option, .. } => format!("chose `{}`", inert(option)),
        Effect::ContactAttempt {
            outcome, attempt, ..
        } => format!("contact attempt {attempt}: {}", outcome.as_str()),
        Effect::Referred {
            institution,
            appointment,
        } => format!(
            "referred to {} for {}",
            inert(institution),
            appointment.format("%Y-%m-%d %H:%M UTC")
        ),
    }
}

fn describe_resolution(how: &Resolution) -> String {
    match how {
        Resolution::Checked => "checked".into(),
        Resolution::Noted { .. } => "noted".into(),
        Resolution::Chose { option } => format!("chose `{}`", inert(option)),
        Resolution::Reached => "reached".into(),
        Resolution::Refused => "reached, refused".into(),
        Resolution::Referred { institution, .. } => format!("referred to {}", inert(institution)),
        Resolution::Skipped { reason } => format!("skipped: {}", inert(reason)),
    }
}

/// Verifies the whole chain (the entries for this case are only
/// trustworthy if everything before them is).
async fn check_chain(store: &Store, for_case: usize) -> Result<AuditCheck, StoreError> {
    let mut verifier = ChainVerifier::new(&[]);
    let mut after = 0;
    loop {
        let page = store.audit_after(after, 2000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for entry in page {
            if let Err(err) = verifier.feed(entry) {
                return Ok(AuditCheck {
                    chain_intact: false,
                    message: err.to_string(),
                    entries_for_case: for_case,
                });
            }
        }
    }
    Ok(match verifier.finish() {
        Ok(v) => AuditCheck {
            chain_intact: true,
            message: format!(
                "audit chain intact ({} entries; run `audit verify` with the off-site checkpoints to rule out truncation)",
                v.entries
            ),
            entries_for_case: for_case,
        },
        Err(err) => AuditCheck {
            chain_intact: false,
            message: err.to_string(),
            entries_for_case: for_case,
        },
    })
}

/// Renders a review in one of the formats.
pub fn render(review: &CaseReview, format: Format, offset: FixedOffset) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(review).unwrap_or_default(),
        Format::Md => render_markdown(review, offset),
        Format::Html => render_html(review, offset),
    }
}

/// A time in the reader's offset, to the second.
pub fn local(t: DateTime<Utc>, offset: FixedOffset) -> String {
    t.with_timezone(&offset)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// A duration as `1h02m03s` / `4m05s` / `6s`.
pub fn span(secs: i64) -> String {
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s:02}s"),
        _ => format!("{h}h{m:02}m{s:02}s"),
    }
}
