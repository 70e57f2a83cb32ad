//! The student's record (一生一档): one timeline per student across every
//! case, screening, check-in, level change and note, for one role. What a
//! role sees follows [`crate::privacy`] (summaries) and the table below
//! (notes and screenings); the name only on a deliberate, audited reveal,
//! as on a case. Reading a record leaves a `case_viewed` audit entry on
//! every case it shows.
//!
//! | item                          | counselor, leader, reviewer | other roles            |
//! |-------------------------------|-----------------------------|------------------------|
//! | cases, levels, statuses       | yes                         | yes                    |
//! | alert summaries               | as [`crate::privacy`]       | as [`crate::privacy`]  |
//! | step and check-in notes       | yes                         | their own role's only  |
//! | level-change reasons          | yes                         | no                     |
//! | screening results (levels)    | yes                         | no                     |

use std::borrow::Cow;

use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};

use super::{CaseChange, Checkin};
use crate::audit::{AuditKind, NewEntry};
use crate::playbook::Effect;
use crate::protocol::{EventBody, Level, Role, Student};
use crate::store::{Store, StoreError};
use crate::text::{inert, inert_block, masked_name};

/// Roles that read the whole record (notes, reasons, screenings).
pub fn reads_everything(role: Role) -> bool {
    matches!(role, Role::Counselor | Role::Leader | Role::Reviewer)
}

/// Roles that may read a student's record at all: those that act on cases,
/// and the reviewer (read-only). A producer, an admin and the district are
/// refused: none of them works with a student.
pub fn may_read_record(role: Role) -> bool {
    role.can_act() || role == Role::Reviewer
}

/// Whether `viewer` may read a note written by (or for) `author`.
pub fn may_read_note(viewer: Role, author: Role) -> bool {
    reads_everything(viewer) || viewer == author
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StudentRecord {
    pub student_id: String,
    pub role: Role,
    /// Initials in place of the name unless revealed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initials: Option<String>,
    /// The full identity, only after `--reveal REASON` (audited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<Student>,
    pub school: Option<String>,
    pub grade: Option<String>,
    pub class: Option<String>,
    pub cases: Vec<CaseLine>,
    pub screenings: Vec<ScreeningLine>,
    /// Check-ins still due, soonest first.
    pub upcoming: Vec<Checkin>,
    pub timeline: Vec<RecordItem>,
    /// What this role does not see here.
    pub withheld: Vec<Cow<'static, str>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseLine {
    pub case_id: String,
    pub status: String,
    pub level: Level,
    pub imminent: bool,
    pub category: String,
    pub opened_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
    pub drill: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScreeningLine {
    pub plan_id: String,
    pub answered_at: String,
    pub valid: bool,
    pub level: Option<String>,
    pub imminent: bool,
    pub class_en: Option<String>,
    /// The scale rule that graded it and its version (`upi`, 3).
    #[serde(default)]
    pub scale: String,
    #[serde(default)]
    pub scale_version: i64,
    /// The scale's own level, before the multi-source rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_level: Option<String>,
    /// The scale's scores by id (`total`, a factor, an item), as graded.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub scores: serde_json::Map<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_zh: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordItem {
    pub at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case_id: Option<String>,
    pub kind: Cow<'static, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub who: Option<String>,
    pub what: String,
}

/// Builds `student_id`'s record for `role`; `None` when the store knows
/// nothing of the student. `reveal` (a reason) asks for the name: only a
/// role that may reveal on a case gets it, and the reveal is audited.
pub async fn build(
    store: &Store,
    student_id: &str,
    role: Role,
    operator: &str,
    reveal: Option<&str>,
    include_drills: bool,
) -> Result<Option<StudentRecord>, StudentError> {
    let via = serde_json::json!({"via": "student show"});
    build_via(
        store,
        student_id,
        role,
        operator,
        reveal,
        include_drills,
        &via,
    )
    .await
}

/// As [`build`], with what the `case_viewed` (and any reveal) audit
/// entries say about how the record was read: `{"via": "student show"}`
/// from the command line, `{"via": "console", "command_id": …}` for the
/// console's `student` command. The one place the record is put together.
pub async fn build_via(
    store: &Store,
    student_id: &str,
    role: Role,
    operator: &str,
    reveal: Option<&str>,
    include_drills: bool,
    via: &serde_json::Value,
) -> Result<Option<StudentRecord>, StudentError> {
    if !may_read_record(role) {
        return Err(StudentError::Forbidden(role));
    }
    let reveal = reveal.map(str::trim).filter(|r| !r.is_empty());
    if reveal.is_some() && !crate::privacy::may_reveal(role) {
        return Err(StudentError::RevealForbidden(role));
    }
    let cases = store.student_cases(student_id, include_drills).await?;
    let screenings = store.screening_results_of_student(student_id).await?;
    if cases.is_empty() && screenings.is_empty() {
        return Ok(None);
    }
    let everything = reads_everything(role);
    let mut record = StudentRecord {
        student_id: inert(student_id),
        role,
        initials: None,
        identity: None,
        school: None,
        grade: None,
        class: None,
        cases: Vec::new(),
        screenings: Vec::new(),
        upcoming: Vec::new(),
        timeline: Vec::new(),
        withheld: Vec::new(),
    };
    if !everything {
        record.withheld = [
            "other roles' notes",
            "level-change reasons",
            "screening results",
        ]
        .into_iter()
        .map(Cow::Borrowed)
        .collect();
    }
    let mut identity: Option<Student> = None;
    let now = Utc::now();
    for sc in &cases {
        let case = &sc.case;
        let drill = case.alert_status != crate::protocol::AlertStatus::Actual;
        record.cases.push(CaseLine {
            case_id: case.id.clone(),
            status: case.status.as_str().into(),
            level: case.level,
            imminent: case.imminent,
            category: case.category.as_str().into(),
            opened_at: case.opened_at,
            closed_at: sc.closed_at,
            outcome: sc.outcome.clone(),
            drill,
        });
        record.upcoming.extend(
            sc.checkins
                .iter()
                .filter(|k| k.done_at.is_none())
                .cloned()
                .map(|mut k| {
                    k.note = None;
                    k
                }),
        );
        for event in store.events_for_case(&case.id).await? {
            let at = event.at;
            let item = |kind: &'static str, who: Option<String>, what: String| RecordItem {
                at,
                case_id: Some(case.id.clone()),
                kind: Cow::Borrowed(kind),
                who,
                what,
            };
            match &event.body {
                EventBody::Alert { alert, opened, .. } => {
                    match &mut identity {
                        Some(known) => crate::case::merge_identity(known, &alert.student),
                        None => identity = Some(alert.student.clone()),
                    }
                    let summary = alert
                        .summary
                        .as_deref()
                        .filter(|_| {
                            crate::privacy::may_read_summary(role, alert.source, alert.category)
                        })
                        .map(|s| format!(": {}", inert_block(s)))
                        .unwrap_or_default();
                    record.timeline.push(item(
                        "alert",
                        None,
                        format!(
                            "{} alert ({}{}, {}, {}){summary}",
                            if *opened { "opening" } else { "further" },
                            alert.level.as_str(),
                            if alert.imminent { ", imminent" } else { "" },
                            alert.category.as_str(),
                            alert.source.as_str()
                        ),
                    ));
                }
                EventBody::CaseAcknowledged { by, .. } => record.timeline.push(item(
                    "case",
                    Some(format!("{} ({})", inert(&by.name), by.role)),
                    "acknowledged the case".into(),
                )),
                EventBody::ChecklistAdded { playbook, .. } => record.timeline.push(item(
                    "case",
                    None,
                    format!("playbook {playbook} attached"),
                )),
                EventBody::StepUpdated { change, origin, .. } => {
                    let noted = matches!(
                        change.effect,
                        Effect::Noted { .. }
                            | Effect::Skipped { .. }
                            | Effect::ContactAttempt {
                                remark: Some(_),
                                ..
                            }
                    );
                    let what = if noted && !may_read_note(role, origin.by.role) {
                        "note withheld for your role".to_string()
                    } else {
                        crate::review::describe_effect(&change.effect)
                    };
                    let kind = if matches!(change.effect, Effect::Referred { .. }) {
                        "referral"
                    } else {
                        "step"
                    };
                    record.timeline.push(item(
                        kind,
                        Some(format!("{} ({})", inert(&origin.by.name), origin.by.role)),
                        format!("{}/{}: {what}", change.playbook, change.step),
                    ));
                }
                EventBody::Escalation {
                    playbook, step, to, ..
                } => record.timeline.push(item(
                    "escalation",
                    None,
                    format!("{playbook}/{step} overdue, escalated to {to}"),
                )),
                EventBody::CaseClosed {
                    outcome, origin, ..
                } => record.timeline.push(item(
                    "case",
                    Some(format!("{} ({})", inert(&origin.by.name), origin.by.role)),
                    format!("closed: {}", outcome.as_str()),
                )),
                EventBody::CaseUpdated { change, origin, .. } => {
                    let who = origin
                        .as_ref()
                        .map(|o| format!("{} ({})", inert(&o.by.name), o.by.role));
                    let (kind, what) = match change {
                        CaseChange::CheckinRecorded { checkin } => {
                            let note = checkin
                                .note
                                .as_deref()
                                .filter(|_| may_read_note(role, checkin.role))
                                .map(|n| format!(" — {}", inert_block(n)))
                                .unwrap_or_default();
                            ("checkin", format!("{}{note}", super::describe(change)))
                        }
                        CaseChange::CheckinMissed { .. } => ("checkin", super::describe(change)),
                        CaseChange::LevelChanged { change: lc, .. } if !everything => (
                            "level",
                            format!("level {} → {}", lc.from.label(), lc.to.label()),
                        ),
                        CaseChange::LevelProposed { proposal } if !everything => (
                            "level",
                            format!(
                                "proposed lowering {} → {}",
                                proposal.from.label(),
                                proposal.to.label()
                            ),
                        ),
                        CaseChange::LevelChanged { .. } | CaseChange::LevelProposed { .. } => {
                            ("level", super::describe(change))
                        }
                        CaseChange::Monitoring { .. } | CaseChange::Reopened { .. } => {
                            ("case", super::describe(change))
                        }
                    };
                    record.timeline.push(item(kind, who, what));
                }
                // That a report went upward belongs in the record; its
                // narrative stays with the report (reporting.md).
                EventBody::ReportOpened { report, .. } => record.timeline.push(item(
                    "report",
                    None,
                    format!(
                        "incident report {} opened ({})",
                        report.id,
                        report.rules.join(", ")
                    ),
                )),
                EventBody::ReportUpdated { change, origin, .. } => {
                    let who = origin
                        .as_ref()
                        .map(|o| format!("{} ({})", inert(&o.by.name), o.by.role));
                    let what = match change {
                        crate::reporting::ReportChange::RulesAdded { rules } => {
                            format!("report rules added: {}", rules.join(", "))
                        }
                        crate::reporting::ReportChange::Submitted { stage, late } => format!(
                            "report {} submitted{}",
                            stage.as_str(),
                            if *late { " (late)" } else { "" }
                        ),
                        crate::reporting::ReportChange::Accepted { stage } => {
                            format!("report {} accepted by the district", stage.as_str())
                        }
                        crate::reporting::ReportChange::Returned { stage, .. } => {
                            format!("report {} returned by the district", stage.as_str())
                        }
                    };
                    record.timeline.push(item("report", who, what));
                }
                EventBody::ReportOverdue { stage, .. } => record.timeline.push(item(
                    "report",
                    None,
                    format!("report {} overdue", stage.as_str()),
                )),
            }
        }
        // Every case this record shows counts as looked at.
        store
            .audit(
                &NewEntry::new(AuditKind::CaseViewed, via.clone())
                    .by(operator, role.as_str())
                    .on_case(&case.id, drill),
                now,
            )
            .await?;
    }
    if everything {
        for r in &screenings {
            record.screenings.push(ScreeningLine {
                plan_id: inert(&r.plan_id),
                answered_at: inert(&r.answered_at),
                valid: r.valid,
                level: r.level.clone(),
                imminent: r.imminent,
                class_en: r.class_en.as_deref().map(inert),
                scale: inert(&r.scale_rule),
                scale_version: r.scale_rule_version,
                scale_level: r.scale_level.as_deref().map(inert),
                scores: scores_of(&r.scores),
                class_zh: r.class_zh.as_deref().map(inert),
            });
            if let Ok(at) = DateTime::parse_from_rfc3339(&r.answered_at) {
                record.timeline.push(RecordItem {
                    at: at.with_timezone(&Utc),
                    case_id: r.case_id.clone(),
                    kind: Cow::Borrowed("screening"),
                    who: None,
                    what: format!(
                        "screening {}: {}{}",
                        inert(&r.plan_id),
                        if r.valid {
                            r.level.as_deref().unwrap_or("none")
                        } else {
                            "invalid"
                        },
                        if r.imminent { ", imminent" } else { "" }
                    ),
                });
            }
        }
    }
    let school_from_screening = screenings.last().map(|r| r.school.clone());
    if let Some(who) = &identity {
        record.initials = who.name.as_deref().map(masked_name);
        record.school = who.school.as_deref().map(inert);
        record.grade = who.grade.as_deref().map(inert);
        record.class = who.class.as_deref().map(inert);
    }
    if record.school.is_none() {
        record.school = school_from_screening.as_deref().map(inert);
    }
    if let Some(reason) = reveal {
        let first_case = cases.first().map(|c| c.case.id.clone());
        let mut detail = via.clone();
        detail["reason"] = reason.into();
        detail["student_id"] = student_id.into();
        let mut entry =
            NewEntry::new(AuditKind::IdentityRevealed, detail).by(operator, role.as_str());
        if let Some(case_id) = &first_case {
            entry = entry.on_case(case_id, false);
        }
        store.audit(&entry, now).await?;
        record.identity = identity.map(|mut s| {
            s.name = s.name.as_deref().map(inert);
            s
        });
    }
    record.upcoming.sort_by_key(|k| k.due_at);
    record.timeline.sort_by_key(|i| i.at);
    Ok(Some(record))
}

/// A stored result's scores (a JSON object of numbers by score id), ids
/// made inert; anything else in it is dropped.
fn scores_of(stored: &str) -> serde_json::Map<String, serde_json::Value> {
    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(stored)
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, v)| v.is_number())
        .map(|(k, v)| (inert(&k), v))
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum StudentError {
    #[error("a {0} credential does not read student records")]
    Forbidden(Role),
    #[error("a {0} may not reveal a student's identity")]
    RevealForbidden(Role),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The record as Markdown, times at `offset`.
pub fn markdown(r: &StudentRecord, offset: FixedOffset) -> String {
    use std::fmt::Write;
    let local = |t: DateTime<Utc>| crate::review::local(t, offset);
    let mut out = String::new();
    let _ = writeln!(out, "# Student record 一生一档 — {}", r.student_id);
    let _ = writeln!(out);
    let _ = writeln!(out, "Shown for role **{}**.", r.role);
    match &r.identity {
        Some(who) => {
            let _ = writeln!(
                out,
                "Name (revealed, audited): {}",
                who.name.as_deref().unwrap_or("(not given)")
            );
        }
        None => {
            let _ = writeln!(out, "Initials: {}", r.initials.as_deref().unwrap_or("—"));
        }
    }
    let _ = writeln!(
        out,
        "School: {} · grade: {} · class: {}",
        r.school.as_deref().unwrap_or("—"),
        r.grade.as_deref().unwrap_or("—"),
        r.class.as_deref().unwrap_or("—")
    );
    if !r.withheld.is_empty() {
        let _ = writeln!(out, "Withheld for this role: {}.", r.withheld.join(", "));
    }
    let _ = writeln!(out, "\n## Cases\n");
    let _ = writeln!(out, "| case | opened | level | status | outcome |");
    let _ = writeln!(out, "|---|---|---|---|---|");
    for c in &r.cases {
        let _ = writeln!(
            out,
            "| {}{} | {} | {}{} | {} | {} |",
            c.case_id,
            if c.drill { " (drill)" } else { "" },
            local(c.opened_at),
            c.level.as_str(),
            if c.imminent { "+imminent" } else { "" },
            c.status,
            c.outcome.as_deref().unwrap_or("—")
        );
    }
    if !r.screenings.is_empty() {
        let _ = writeln!(out, "\n## Screenings\n");
        let _ = writeln!(out, "| plan | answered | scale | scores | level | valid |");
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        for s in &r.screenings {
            let scores: Vec<String> = s.scores.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} v{} | {} | {}{} | {} |",
                s.plan_id,
                s.answered_at,
                s.scale,
                s.scale_version,
                if scores.is_empty() {
                    "—".to_string()
                } else {
                    scores.join(", ")
                },
                s.level.as_deref().unwrap_or("none"),
                if s.imminent { "+imminent" } else { "" },
                if s.valid { "yes" } else { "no" }
            );
        }
    }
    if !r.upcoming.is_empty() {
        let _ = writeln!(out, "\n## Check-ins due\n");
        for k in &r.upcoming {
            let _ = writeln!(out, "- {} {} — {}", k.id, k.role, local(k.due_at));
        }
    }
    let _ = writeln!(out, "\n## Timeline\n");
    for i in &r.timeline {
        let _ = writeln!(
            out,
            "- {} {}[{}] {}{}",
            local(i.at),
            i.case_id
                .as_deref()
                .map(|c| format!("{c} "))
                .unwrap_or_default(),
            i.kind,
            i.who
                .as_deref()
                .map(|w| format!("{w}: "))
                .unwrap_or_default(),
            i.what
        );
    }
    out
}
