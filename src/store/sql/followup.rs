//! The follow-up phase in SQLite: level changes and their sign-off,
//! monitoring with planned check-ins, re-opening, check-ins and their
//! escalation, school calendars, and the reads `student show` needs. The
//! decisions are [`crate::lifecycle`]'s and [`crate::followup`]'s; this
//! file loads the facts and writes what they decide (tables from
//! `migrations/sqlite/0011_followup.sql`).

use std::collections::HashMap;
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::engine;

use super::{
    Applied, CommandTx, DbRow, EngineStore, Logs, StoreError, StoredEvent, StudentCase, Tx,
    attach_checklist, case_from_row, has_checklist, parse_ts, progress_from, refresh_deadline,
    refuse, ts,
};
use crate::audit::{AuditKind, NewEntry};
use crate::followup::calendar::Calendar;
use crate::followup::schedule::Schedule;
use crate::followup::{CaseChange, Checkin, CheckinOutcome, MAX_NOTE_CHARS, Raise};
use crate::lifecycle::{self, Grade, LevelChange, LevelProposal, Proposed, Reassessment};
use crate::playbook::{Playbook, Progress};
use crate::protocol::{
    Actor, CaseSnapshot, CaseStatus, CloseOutcome, ErrorDetail, EventBody, Level, Role,
};

/// The shipped follow-up schedule, parsed once.
fn schedule() -> Result<&'static Schedule, StoreError> {
    static SHIPPED: OnceLock<Result<Schedule, Vec<String>>> = OnceLock::new();
    SHIPPED
        .get_or_init(Schedule::shipped)
        .as_ref()
        .map_err(|p| {
            StoreError::Corrupt(format!(
                "the shipped follow-up schedule is invalid: {}",
                p.join("; ")
            ))
        })
}

fn lifecycle_refusal(r: &lifecycle::Refusal) -> ErrorDetail {
    ErrorDetail::new(r.code(), r.to_string())
}

fn actor_from(name: Option<String>, role: Option<String>) -> Result<Option<Actor>, StoreError> {
    match (name, role) {
        (Some(name), Some(role)) => Ok(Some(Actor {
            name,
            role: Role::parse(&role)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown role `{role}` in checkins")))?,
        })),
        _ => Ok(None),
    }
}

fn role_col(row: &DbRow, col: &str) -> Result<Role, StoreError> {
    let text: String = row.try_get(col)?;
    Role::parse(&text).ok_or_else(|| StoreError::Corrupt(format!("unknown role `{text}` in {col}")))
}

fn level_col(row: &DbRow, col: &str) -> Result<Level, StoreError> {
    let text: String = row.try_get(col)?;
    Level::parse(&text)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown level `{text}` in {col}")))
}

/// Columns of `checkins` under a `k_` prefix, so a join with `cases` keeps
/// the case's own `id` and `num`.
const CHECKIN_COLUMNS: &str = "k.id AS k_id, k.num AS k_num, k.role AS k_role, \
    k.escalate_to AS k_escalate_to, k.due_at AS k_due_at, k.done_at AS k_done_at, \
    k.outcome AS k_outcome, k.note AS k_note, k.recorded_by_name AS k_by_name, \
    k.recorded_by_role AS k_by_role";

fn checkin_from_row(row: &DbRow) -> Result<Checkin, StoreError> {
    let outcome: Option<String> = row.try_get("k_outcome")?;
    Ok(Checkin {
        id: row.try_get("k_id")?,
        num: u32::try_from(row.try_get::<i64, _>("k_num")?)
            .map_err(|_| StoreError::Corrupt("a check-in number is out of range".into()))?,
        role: role_col(row, "k_role")?,
        escalate_to: role_col(row, "k_escalate_to")?,
        due_at: parse_ts(&row.try_get::<String, _>("k_due_at")?)?,
        done_at: row
            .try_get::<Option<String>, _>("k_done_at")?
            .as_deref()
            .map(parse_ts)
            .transpose()?,
        outcome: outcome
            .map(|o| {
                CheckinOutcome::parse(&o)
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown check-in outcome `{o}`")))
            })
            .transpose()?,
        note: row.try_get("k_note")?,
        by: actor_from(row.try_get("k_by_name")?, row.try_get("k_by_role")?)?,
    })
}

fn level_change_from_row(row: &DbRow) -> Result<(LevelChange, Option<DateTime<Utc>>), StoreError> {
    let applied: Option<String> = row.try_get("applied_at")?;
    let proposed_at = parse_ts(&row.try_get::<String, _>("proposed_at")?)?;
    let applied = applied.as_deref().map(parse_ts).transpose()?;
    Ok((
        LevelChange {
            from: Grade {
                level: level_col(row, "from_level")?,
                imminent: row.try_get("from_imminent")?,
            },
            to: Grade {
                level: level_col(row, "to_level")?,
                imminent: row.try_get("to_imminent")?,
            },
            reason: row.try_get("reason")?,
            proposed_by: Actor {
                name: row.try_get("proposed_by_name")?,
                role: role_col(row, "proposed_by_role")?,
            },
            confirmed_by: actor_from(
                row.try_get("confirmed_by_name")?,
                row.try_get("confirmed_by_role")?,
            )?,
            at: applied.unwrap_or(proposed_at),
        },
        applied,
    ))
}

async fn save_grade(tx: &mut Tx<'_>, case: &CaseSnapshot) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE cases SET level = $1, imminent = $2, status = $3, updated_at = $4 WHERE id = $5",
    )
    .bind(case.level.as_str())
    .bind(case.imminent)
    .bind(case.status.as_str())
    .bind(ts(case.updated_at))
    .bind(&case.id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn record_change(
    tx: &mut Tx<'_>,
    case_id: &str,
    change: &LevelChange,
    proposed_at: DateTime<Utc>,
    evidence: &[Reassessment],
    applied: bool,
    seq: Option<i64>,
) -> Result<(), StoreError> {
    let evidence = (!evidence.is_empty())
        .then(|| serde_json::to_string(evidence))
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("evidence does not encode: {e}")))?;
    sqlx::query(
        "INSERT INTO level_changes (case_id, from_level, from_imminent, to_level, to_imminent, reason, \
         proposed_by_name, proposed_by_role, proposed_at, evidence, confirmed_by_name, confirmed_by_role, \
         applied_at, seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(case_id)
    .bind(change.from.level.as_str())
    .bind(change.from.imminent)
    .bind(change.to.level.as_str())
    .bind(change.to.imminent)
    .bind(&change.reason)
    .bind(&change.proposed_by.name)
    .bind(change.proposed_by.role.as_str())
    .bind(ts(proposed_at))
    .bind(evidence)
    .bind(change.confirmed_by.as_ref().map(|a| a.name.clone()))
    .bind(change.confirmed_by.as_ref().map(|a| a.role.as_str()))
    .bind(applied.then(|| ts(change.at)))
    .bind(seq)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Ends any pending proposal on the case (a raise, a newer proposal, or
/// its confirmation replaces it).
async fn supersede_pending(
    tx: &mut Tx<'_>,
    case_id: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE level_changes SET superseded_at = $1 WHERE case_id = $2 AND applied_at IS NULL AND superseded_at IS NULL",
    )
    .bind(ts(now))
    .bind(case_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn pending_proposal(
    tx: &mut Tx<'_>,
    case_id: &str,
) -> Result<Option<(i64, LevelProposal)>, StoreError> {
    let Some(row) = sqlx::query(
        "SELECT * FROM level_changes WHERE case_id = $1 AND applied_at IS NULL AND superseded_at IS NULL \
         ORDER BY id DESC LIMIT 1",
    )
    .bind(case_id)
    .fetch_optional(&mut **tx)
    .await?
    else {
        return Ok(None);
    };
    let (change, _) = level_change_from_row(&row)?;
    let evidence: Option<String> = row.try_get("evidence")?;
    let evidence = evidence
        .map(|e| serde_json::from_str(&e))
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("stored evidence: {e}")))?
        .unwrap_or_default();
    Ok(Some((
        row.try_get("id")?,
        LevelProposal {
            from: change.from,
            to: change.to,
            reason: change.reason,
            proposed_by: change.proposed_by,
            at: change.at,
            evidence,
        },
    )))
}

/// Screening results for the student answered since the case opened: the
/// re-assessments a downgrade may rest on.
async fn reassessments(
    tx: &mut Tx<'_>,
    case: &CaseSnapshot,
) -> Result<Vec<Reassessment>, StoreError> {
    let rows = sqlx::query(
        "SELECT plan_id, level, imminent, valid, answered_at FROM screening_results \
         WHERE student_id = $1 AND graded_at >= $2 ORDER BY answered_at, plan_id",
    )
    .bind(&case.student_id)
    .bind(ts(case.opened_at))
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| {
            let level: Option<String> = r.try_get("level")?;
            Ok(Reassessment {
                plan_id: r.try_get("plan_id")?,
                level: level.as_deref().and_then(Level::parse),
                imminent: r.try_get("imminent")?,
                valid: r.try_get("valid")?,
                answered_at: r.try_get("answered_at")?,
            })
        })
        .collect()
}

/// The school a case's student is at: as the latest alert on the case
/// names it, else as a screening export does.
async fn school_of(
    tx: &mut Tx<'_>,
    case_id: &str,
    student_id: Option<&str>,
) -> Result<Option<String>, StoreError> {
    let sql = format!(
        "SELECT s FROM (SELECT {} AS s, seq FROM alerts WHERE case_id = $1) t \
         WHERE s IS NOT NULL ORDER BY seq DESC LIMIT 1",
        engine::alert_school("body")
    );
    let school: Option<String> = sqlx::query_scalar(&sql)
        .bind(case_id)
        .fetch_optional(&mut **tx)
        .await?
        .flatten();
    match school {
        Some(s) => Ok(Some(s)),
        None => Ok(sqlx::query_scalar(
            "SELECT school FROM screening_results \
             WHERE student_id = COALESCE($1, (SELECT student_id FROM cases WHERE id = $2)) \
             ORDER BY answered_at DESC LIMIT 1",
        )
        .bind(student_id)
        .bind(case_id)
        .fetch_optional(&mut **tx)
        .await?),
    }
}

/// A school's calendar as loaded with `calendar load`; the Mon–Fri
/// fallback when there is none (or no school is known).
async fn school_calendar(tx: &mut Tx<'_>, school: Option<&str>) -> Result<Calendar, StoreError> {
    let Some(school) = school else {
        return Ok(Calendar::fallback());
    };
    let body: Option<String> =
        sqlx::query_scalar("SELECT body FROM school_calendars WHERE school = $1")
            .bind(school)
            .fetch_optional(&mut **tx)
            .await?;
    match body {
        // Checked when loaded; a calendar that no longer parses (a newer
        // format) is reported rather than silently replaced.
        Some(body) => Calendar::parse(&body).map_err(|p| {
            StoreError::Corrupt(format!("stored calendar of {school}: {}", p.join("; ")))
        }),
        None => Ok(Calendar::fallback()),
    }
}

/// The school calendar for a case's student: by the school the alerts (or
/// else a screening export) name, as loaded with `calendar load`; the
/// Mon–Fri fallback when there is none.
async fn calendar_for(tx: &mut Tx<'_>, case: &CaseSnapshot) -> Result<Calendar, StoreError> {
    let school = school_of(tx, &case.id, Some(&case.student_id)).await?;
    school_calendar(tx, school.as_deref()).await
}

/// School calendars read during one write, by school, so a run of alerts
/// reads each school's calendar once.
#[derive(Default)]
pub(super) struct Calendars(HashMap<Option<String>, Calendar>);

impl Calendars {
    /// Counts the checklist's school-day limits whose clock has started
    /// ([`Progress::count_school_days`]) on the calendar of the case's
    /// school: `named` when the alert at hand names it, else found as
    /// follow-up schedules find it. Reads nothing when there is nothing to
    /// count.
    pub(super) async fn count(
        &mut self,
        tx: &mut Tx<'_>,
        case: (&str, Option<&str>),
        named: Option<&str>,
        playbook: &Playbook,
        progress: &mut Progress,
    ) -> Result<(), StoreError> {
        if !progress.needs_school_count(playbook) {
            return Ok(());
        }
        let school = match named {
            Some(s) => Some(s.to_string()),
            None => school_of(tx, case.0, case.1).await?,
        };
        if !self.0.contains_key(&school) {
            let calendar = school_calendar(tx, school.as_deref()).await?;
            self.0.insert(school.clone(), calendar);
        }
        if let Some(calendar) = self.0.get(&school) {
            progress.count_school_days(playbook, calendar);
        }
        Ok(())
    }
}

impl CommandTx<'_, '_> {
    fn followup_event(
        &mut self,
        case: &CaseSnapshot,
        change: CaseChange,
    ) -> Result<StoredEvent, StoreError> {
        self.logs.event(
            self.now,
            EventBody::CaseUpdated {
                case_id: case.id.clone(),
                change,
                case: case.clone(),
                origin: Some(self.origin.clone()),
            },
        )
    }

    /// Cancels the case's check-ins not yet due and plans new ones for its
    /// current grade, counting from now. One already missed stays missed:
    /// it is history, and the on-time rate counts it.
    async fn plan_checkins(
        &mut self,
        case: &CaseSnapshot,
    ) -> Result<(Vec<Checkin>, Option<String>), StoreError> {
        sqlx::query(
            "UPDATE checkins SET cancelled_at = $1 WHERE case_id = $2 AND done_at IS NULL AND cancelled_at IS NULL \
             AND due_at > $3",
        )
        .bind(ts(self.now))
        .bind(&case.id)
        .bind(ts(self.now))
        .execute(&mut **self.tx)
        .await?;
        let calendar = calendar_for(self.tx, case).await?;
        let last: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(num), 0) FROM checkins WHERE case_id = $1")
                .bind(&case.id)
                .fetch_one(&mut **self.tx)
                .await?;
        let first = u32::try_from(last).unwrap_or(u32::MAX).saturating_add(1);
        let mut planned = Vec::new();
        for (i, p) in schedule()?
            .plan(Grade::of(case), self.now, &calendar)
            .into_iter()
            .enumerate()
        {
            let num = first.saturating_add(u32::try_from(i).unwrap_or(u32::MAX));
            let checkin = Checkin {
                id: Checkin::id_of(&case.id, num),
                num,
                role: p.role,
                escalate_to: p.escalate_to,
                due_at: p.due_at,
                done_at: None,
                outcome: None,
                note: None,
                by: None,
            };
            sqlx::query(
                "INSERT INTO checkins (id, case_id, num, role, escalate_to, due_at, planned_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&checkin.id)
            .bind(&case.id)
            .bind(i64::from(num))
            .bind(checkin.role.as_str())
            .bind(checkin.escalate_to.as_str())
            .bind(ts(checkin.due_at))
            .bind(ts(self.now))
            .execute(&mut **self.tx)
            .await?;
            planned.push(checkin);
        }
        Ok((planned, calendar.school))
    }

    /// Applies a level change to the case and records it, re-planning the
    /// check-ins of a case in monitoring.
    async fn apply_level_change(
        &mut self,
        case: &CaseSnapshot,
        change: LevelChange,
        proposed_at: DateTime<Utc>,
        evidence: &[Reassessment],
    ) -> Result<StoredEvent, StoreError> {
        save_grade(self.tx, case).await?;
        supersede_pending(self.tx, &case.id, self.now).await?;
        let planned = if case.status == CaseStatus::Monitoring {
            Some(self.plan_checkins(case).await?.0)
        } else {
            None
        };
        let event = self.followup_event(
            case,
            CaseChange::LevelChanged {
                change: change.clone(),
                planned,
            },
        )?;
        record_change(
            self.tx,
            &case.id,
            &change,
            proposed_at,
            evidence,
            true,
            Some(event.seq),
        )
        .await?;
        Ok(event)
    }

    pub(super) async fn propose_level(
        &mut self,
        mut case: CaseSnapshot,
        to: Grade,
        reason: &str,
    ) -> Result<Applied, StoreError> {
        let evidence = reassessments(self.tx, &case).await?;
        let by = self.origin.by.clone();
        match lifecycle::propose(&mut case, &by, to, reason, evidence.clone(), self.now) {
            Err(r) => Ok(Err(lifecycle_refusal(&r).with_field(match r {
                lifecycle::Refusal::ReasonRequired => "reason",
                _ => "level",
            }))),
            Ok(Proposed::Raised(change)) => {
                let event = self
                    .apply_level_change(&case, change, self.now, &evidence)
                    .await?;
                Ok(Ok((vec![event], None)))
            }
            Ok(Proposed::Pending(proposal)) => {
                supersede_pending(self.tx, &case.id, self.now).await?;
                let change = LevelChange {
                    from: proposal.from,
                    to: proposal.to,
                    reason: proposal.reason.clone(),
                    proposed_by: proposal.proposed_by.clone(),
                    confirmed_by: None,
                    at: self.now,
                };
                record_change(
                    self.tx,
                    &case.id,
                    &change,
                    self.now,
                    &proposal.evidence,
                    false,
                    None,
                )
                .await?;
                super::touch_case(self.tx, &case.id, self.now).await?;
                let event = self.followup_event(&case, CaseChange::LevelProposed { proposal })?;
                Ok(Ok((vec![event], None)))
            }
        }
    }

    pub(super) async fn confirm_level(
        &mut self,
        mut case: CaseSnapshot,
    ) -> Result<Applied, StoreError> {
        let pending = pending_proposal(self.tx, &case.id).await?;
        let by = self.origin.by.clone();
        let proposal = pending.as_ref().map(|(_, p)| p);
        match lifecycle::confirm(&mut case, proposal, &by, self.now) {
            Err(r) => Ok(Err(lifecycle_refusal(&r))),
            Ok(change) => {
                // `confirm` succeeded, so there was a pending proposal.
                let Some((id, _)) = pending else {
                    return Ok(refuse(
                        "no_proposal",
                        "there is no pending level proposal on this case",
                    ));
                };
                save_grade(self.tx, &case).await?;
                let planned = if case.status == CaseStatus::Monitoring {
                    Some(self.plan_checkins(&case).await?.0)
                } else {
                    None
                };
                let event = self.followup_event(
                    &case,
                    CaseChange::LevelChanged {
                        change: change.clone(),
                        planned,
                    },
                )?;
                sqlx::query(
                    "UPDATE level_changes SET confirmed_by_name = $1, confirmed_by_role = $2, applied_at = $3, seq = $4 WHERE id = $5",
                )
                .bind(&by.name)
                .bind(by.role.as_str())
                .bind(ts(self.now))
                .bind(event.seq)
                .bind(id)
                .execute(&mut **self.tx)
                .await?;
                Ok(Ok((vec![event], None)))
            }
        }
    }

    pub(super) async fn monitor(&mut self, mut case: CaseSnapshot) -> Result<Applied, StoreError> {
        if let Err(r) = lifecycle::monitor(&mut case, self.origin.by.role, self.now) {
            return Ok(Err(lifecycle_refusal(&r)));
        }
        save_grade(self.tx, &case).await?;
        let (planned, calendar) = self.plan_checkins(&case).await?;
        let event = self.followup_event(&case, CaseChange::Monitoring { planned, calendar })?;
        Ok(Ok((vec![event], None)))
    }

    pub(super) async fn reopen(
        &mut self,
        mut case: CaseSnapshot,
        reason: &str,
    ) -> Result<Applied, StoreError> {
        let reason = match lifecycle::reopen(&mut case, self.origin.by.role, reason, self.now) {
            Ok(reason) => reason,
            Err(r) => {
                let field = matches!(r, lifecycle::Refusal::ReasonRequired).then_some("reason");
                let mut detail = lifecycle_refusal(&r);
                detail.field = field.map(str::to_string);
                return Ok(Err(detail));
            }
        };
        // One open case per student and mode: a newer one takes the record.
        let other: Option<String> = sqlx::query_scalar(
            "SELECT o.id FROM cases o JOIN cases c ON c.id = $1 \
             WHERE o.student_id = c.student_id AND o.mode = c.mode AND o.status != 'closed' AND o.id != c.id",
        )
        .bind(&case.id)
        .fetch_optional(&mut **self.tx)
        .await?;
        if let Some(other) = other {
            return Ok(refuse(
                "student_has_open_case",
                format!(
                    "the student has an open case {other}; work there instead of re-opening {}",
                    case.id
                ),
            ));
        }
        sqlx::query("UPDATE cases SET status = $1, outcome = NULL, closed_at = NULL, updated_at = $2 WHERE id = $3")
            .bind(case.status.as_str())
            .bind(ts(self.now))
            .bind(&case.id)
            .execute(&mut **self.tx)
            .await?;
        // The checklists can escalate again.
        let rows = sqlx::query("SELECT playbook, progress FROM checklists WHERE case_id = $1")
            .bind(&case.id)
            .fetch_all(&mut **self.tx)
            .await?;
        for row in rows {
            let playbook_id: String = row.try_get("playbook")?;
            if let Some(playbook) = self.library.get(&playbook_id) {
                let progress = progress_from(&row.try_get::<String, _>("progress")?)?;
                refresh_deadline(self.tx, &case.id, playbook, &progress, self.now).await?;
            }
        }
        let event = self.followup_event(&case, CaseChange::Reopened { reason })?;
        Ok(Ok((vec![event], None)))
    }

    pub(super) async fn checkin(
        &mut self,
        mut case: CaseSnapshot,
        num: u32,
        outcome: CheckinOutcome,
        note: Option<&str>,
        raise: Option<&Raise>,
    ) -> Result<Applied, StoreError> {
        let role = self.origin.by.role;
        let Some(row) = sqlx::query(&format!(
            "SELECT {CHECKIN_COLUMNS}, k.cancelled_at AS k_cancelled_at FROM checkins k WHERE k.case_id = $1 AND k.num = $2"
        ))
        .bind(&case.id)
        .bind(i64::from(num))
        .fetch_optional(&mut **self.tx)
        .await?
        else {
            return Ok(Err(ErrorDetail::new(
                "unknown_checkin",
                format!("case {} has no check-in number {num}", case.id),
            )
            .with_field("checkin")));
        };
        let mut checkin = checkin_from_row(&row)?;
        if let (Some(done), Some(by)) = (checkin.done_at, &checkin.by) {
            return Ok(refuse(
                "already_recorded",
                format!(
                    "check-in {} was already recorded by {} ({}) at {}",
                    checkin.id,
                    by.name,
                    by.role,
                    ts(done)
                ),
            ));
        }
        if row
            .try_get::<Option<String>, _>("k_cancelled_at")?
            .is_some()
        {
            return Ok(refuse(
                "checkin_cancelled",
                format!(
                    "check-in {} was re-planned after a level change; record a current one",
                    checkin.id
                ),
            ));
        }
        if !(role == checkin.role || role == checkin.escalate_to || lifecycle::may_decide(role)) {
            return Ok(refuse(
                "forbidden",
                format!(
                    "check-in {} is the {}'s (or the {}'s), not a {role}'s",
                    checkin.id, checkin.role, checkin.escalate_to
                ),
            ));
        }
        if note.is_some_and(|n| n.chars().count() > MAX_NOTE_CHARS) {
            return Ok(Err(ErrorDetail::new(
                "text_too_long",
                format!("`note` is longer than {MAX_NOTE_CHARS} characters"),
            )
            .with_field("note")));
        }
        if raise.is_some() && !outcome.may_raise() {
            return Ok(Err(ErrorDetail::new(
                "raise_needs_concern",
                format!(
                    "only a concern or escalate check-in raises the level, not {}",
                    outcome.as_str()
                ),
            )
            .with_field("raise")));
        }
        let playbook = match raise.and_then(|r| r.playbook.as_deref()) {
            Some(id) => match self.library.get(id) {
                Some(pb) => Some(pb),
                None => {
                    return Ok(Err(ErrorDetail::new(
                        "unknown_playbook",
                        format!("no playbook `{id}`"),
                    )
                    .with_field("raise.playbook")));
                }
            },
            None => None,
        };
        // The raise is decided before anything is written, so a refused
        // one leaves the check-in unrecorded too.
        let before = case.clone();
        let raised = match raise {
            Some(r) => {
                let reason = format!("check-in {}: {}", checkin.id, outcome.as_str());
                let by = self.origin.by.clone();
                match lifecycle::propose(&mut case, &by, r.grade(), &reason, Vec::new(), self.now) {
                    Ok(Proposed::Raised(change)) => Some(change),
                    Ok(Proposed::Pending(_)) => {
                        return Ok(Err(ErrorDetail::new(
                            "not_a_raise",
                            format!(
                                "{} is lower than the case's {}; a check-in only raises, propose a lowering with propose_level",
                                r.grade().label(),
                                Grade::of(&before).label()
                            ),
                        )
                        .with_field("raise")));
                    }
                    Err(lifecycle::Refusal::NoChange(_)) => None,
                    Err(r) => return Ok(Err(lifecycle_refusal(&r).with_field("raise"))),
                }
            }
            None => None,
        };
        // "Escalate": the case needs the acute response again.
        if outcome == CheckinOutcome::Escalate && case.status == CaseStatus::Monitoring {
            case.status = CaseStatus::Acknowledged;
        }
        case.updated_at = self.now;
        checkin.done_at = Some(self.now);
        checkin.outcome = Some(outcome);
        checkin.note = note.map(str::to_string);
        checkin.by = Some(self.origin.by.clone());
        sqlx::query(
            "UPDATE checkins SET done_at = $1, outcome = $2, note = $3, recorded_by_name = $4, recorded_by_role = $5, \
             command_id = $6 WHERE case_id = $7 AND num = $8",
        )
        .bind(ts(self.now))
        .bind(outcome.as_str())
        .bind(note)
        .bind(&self.origin.by.name)
        .bind(role.as_str())
        .bind(&self.origin.command_id)
        .bind(&case.id)
        .bind(i64::from(num))
        .execute(&mut **self.tx)
        .await?;
        save_grade(self.tx, &case).await?;
        let mut events = vec![self.followup_event(&case, CaseChange::CheckinRecorded { checkin })?];
        if let Some(change) = raised {
            events.push(
                self.apply_level_change(&case, change, self.now, &[])
                    .await?,
            );
        }
        if let Some(playbook) = playbook
            && !has_checklist(self.tx, &case.id, &playbook.id).await?
        {
            events.push(
                attach_checklist(
                    self.tx,
                    self.logs,
                    &case.id,
                    playbook,
                    self.now,
                    Some(self.origin.clone()),
                )
                .await?,
            );
        }
        Ok(Ok((events, None)))
    }

    /// Why closing `case` as `outcome` is refused for want of a last
    /// review, if it is (see [`lifecycle::last_review_permit`]).
    pub(super) async fn last_review_refusal(
        &mut self,
        case: &CaseSnapshot,
        outcome: CloseOutcome,
        leader_override: bool,
    ) -> Result<Option<ErrorDetail>, StoreError> {
        let last: Option<String> = sqlx::query_scalar(
            "SELECT MAX(done_at) FROM checkins WHERE case_id = $1 AND recorded_by_role = 'counselor' \
             AND outcome IS NOT NULL AND outcome != 'not_reached'",
        )
        .bind(&case.id)
        .fetch_one(&mut **self.tx)
        .await?;
        let last = last.as_deref().map(parse_ts).transpose()?;
        Ok(
            lifecycle::last_review_permit(case, outcome, last, leader_override, self.now)
                .err()
                .map(|r| lifecycle_refusal(&r)),
        )
    }

    /// A closed case's check-ins not yet due are cancelled; missed ones stay
    /// missed. Nothing on a closed case escalates (the scanner skips it).
    pub(super) async fn end_checkins(&mut self, case_id: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE checkins SET cancelled_at = $1 WHERE case_id = $2 AND done_at IS NULL AND cancelled_at IS NULL \
             AND due_at > $3",
        )
            .bind(ts(self.now))
            .bind(case_id)
            .bind(ts(self.now))
            .execute(&mut **self.tx)
            .await?;
        Ok(())
    }
}

/// Raises a `checkin_missed` event for at most `limit` check-ins past
/// their due time, soonest first; says whether more are waiting. Like a
/// step's escalation: once per check-in, audited, addressed to the role
/// the schedule names.
pub(super) async fn escalate_checkins(
    tx: &mut Tx<'_>,
    logs: &mut Logs,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<(Vec<StoredEvent>, bool), StoreError> {
    let fetch = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
    let mut rows = sqlx::query(&format!(
        "SELECT c.*, {CHECKIN_COLUMNS} FROM checkins k JOIN cases c ON c.id = k.case_id \
         WHERE k.done_at IS NULL AND k.escalated_seq IS NULL AND k.cancelled_at IS NULL AND k.due_at <= $1 \
         AND c.status != 'closed' ORDER BY k.due_at, k.id LIMIT $2"
    ))
    .bind(ts(now))
    .bind(fetch)
    .fetch_all(&mut **tx)
    .await?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let mut events = Vec::new();
    for row in rows {
        let case = case_from_row(&row)?;
        let checkin = checkin_from_row(&row)?;
        let to = checkin.escalate_to;
        let owner = checkin.role;
        let id = checkin.id.clone();
        let drill = case.alert_status != crate::protocol::AlertStatus::Actual;
        let event = logs.event(
            now,
            EventBody::CaseUpdated {
                case_id: case.id.clone(),
                change: CaseChange::CheckinMissed { checkin, to },
                case: case.clone(),
                origin: None,
            },
        )?;
        logs.audit(
            now,
            &NewEntry::new(
                AuditKind::EscalationRaised,
                serde_json::json!({"checkin": id, "seq": event.seq, "to": to.as_str(), "owner": owner.as_str()}),
            )
            .on_case(&case.id, drill),
        );
        sqlx::query("UPDATE checkins SET escalated_seq = $1 WHERE id = $2")
            .bind(event.seq)
            .bind(&id)
            .execute(&mut **tx)
            .await?;
        events.push(event);
    }
    Ok((events, more))
}

impl EngineStore {
    /// Scheduled check-ins past due and not recorded, per case (for the
    /// district view's counts).
    pub async fn overdue_checkins_by_case(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, usize)>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT case_id, COUNT(*) FROM checkins
             WHERE done_at IS NULL AND cancelled_at IS NULL AND due_at <= $1
             GROUP BY case_id",
        )
        .bind(ts(now))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(case, n)| (case, usize::try_from(n).unwrap_or(0)))
            .collect())
    }

    /// The soonest pending check-in's due time (for the escalation scanner).
    pub(super) async fn next_checkin_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        // Walks the pending index in due order and stops at the first
        // check-in of a case still open (missed ones of closed cases stay
        // pending, as history, but never escalate).
        let next: Option<String> = sqlx::query_scalar(
            "SELECT k.due_at FROM checkins k JOIN cases c ON c.id = k.case_id \
             WHERE k.done_at IS NULL AND k.escalated_seq IS NULL AND k.cancelled_at IS NULL \
             AND c.status != 'closed' ORDER BY k.due_at LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        next.as_deref().map(parse_ts).transpose()
    }

    /// A case's check-ins, in order, current and past (cancelled ones left out).
    pub async fn checkins(&self, case_id: &str) -> Result<Vec<Checkin>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {CHECKIN_COLUMNS} FROM checkins k WHERE k.case_id = $1 AND k.cancelled_at IS NULL ORDER BY k.num"
        ))
        .bind(case_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(checkin_from_row).collect()
    }

    /// A case's applied level changes, oldest first.
    pub async fn level_changes(&self, case_id: &str) -> Result<Vec<LevelChange>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM level_changes WHERE case_id = $1 AND applied_at IS NOT NULL ORDER BY id",
        )
        .bind(case_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| level_change_from_row(r).map(|(c, _)| c))
            .collect()
    }

    /// Every case of one student (all modes), oldest first, with its
    /// check-ins and level changes.
    pub async fn student_cases(
        &self,
        student_id: &str,
        include_drills: bool,
    ) -> Result<Vec<StudentCase>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM cases WHERE student_id = $1 AND ($2 OR alert_status = 'actual') ORDER BY opened_at, num",
        )
        .bind(student_id)
        .bind(include_drills)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let case = case_from_row(&row)?;
            let closed_at: Option<String> = row.try_get("closed_at")?;
            out.push(StudentCase {
                outcome: row.try_get("outcome")?,
                closed_at: closed_at.as_deref().map(parse_ts).transpose()?,
                checkins: self.checkins(&case.id).await?,
                level_changes: self.level_changes(&case.id).await?,
                case,
            });
        }
        Ok(out)
    }

    /// When the student's next real case after `after` opened, if one did
    /// (干预有效率: a new case undoes "stayed down").
    pub async fn next_case_opened(
        &self,
        student_id: &str,
        after: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let next: Option<String> = sqlx::query_scalar(
            "SELECT MIN(opened_at) FROM cases WHERE student_id = $1 AND alert_status = 'actual' AND opened_at > $2",
        )
        .bind(student_id)
        .bind(ts(after))
        .fetch_one(&self.pool)
        .await?;
        next.as_deref().map(parse_ts).transpose()
    }

    /// Stores (or replaces) a school's calendar after checking it.
    pub async fn load_calendar(
        &self,
        text: &str,
    ) -> Result<Result<String, Vec<String>>, StoreError> {
        let calendar = match Calendar::parse(text) {
            Ok(c) => c,
            Err(problems) => return Ok(Err(problems)),
        };
        let school = calendar.school.unwrap_or_default();
        sqlx::query(
            "INSERT INTO school_calendars (school, body, loaded_at) VALUES ($1, $2, $3) \
             ON CONFLICT(school) DO UPDATE SET body = excluded.body, loaded_at = excluded.loaded_at",
        )
        .bind(&school)
        .bind(text)
        .bind(ts(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(Ok(school))
    }
}

impl EngineStore {
    /// The 三个一 cadence as of `now` ([`crate::followup::cadence`]): the
    /// next term screening and census from the loaded calendars, and this
    /// month's 特别关注 review count: one counting query (the open cases
    /// once, this month's recorded check-ins once) and one read of the
    /// calendars (a district has a few hundred).
    pub async fn followup_cadence(
        &self,
        now: DateTime<Utc>,
    ) -> Result<crate::followup::cadence::Cadence, StoreError> {
        use crate::followup::cadence;
        let bodies: Vec<String> = sqlx::query_scalar("SELECT body FROM school_calendars")
            .fetch_all(&self.pool)
            .await?;
        // A calendar that no longer parses is left out here: a date shown
        // a little late is better than no console.
        let calendars: Vec<Calendar> = bodies
            .iter()
            .filter_map(|b| Calendar::parse(b).ok())
            .collect();
        let fallback = Calendar::fallback();
        let (month_start, month) = cadence::month_start(now, &fallback);
        let today = now.with_timezone(&fallback.offset).date_naive();
        let (next_term_screening, next_census) = cadence::next_dates(&calendars, today);
        // The roster once, the students reviewed this month once (a range
        // of `checkins_done_at`, migration 0013), then a set difference:
        // no per-case subquery over 40,000 cases.
        let row = sqlx::query(
            "WITH roster AS ( \
                 SELECT DISTINCT student_id FROM cases \
                  WHERE status != 'closed' AND alert_status = 'actual' \
                    AND (level IN ('key', 'high') OR imminent)), \
             reviewed AS ( \
                 SELECT DISTINCT o.student_id FROM checkins k JOIN cases o ON o.id = k.case_id \
                  WHERE k.done_at >= $1) \
             SELECT (SELECT COUNT(*) FROM roster) AS students, \
                    (SELECT COUNT(*) FROM roster WHERE student_id NOT IN (SELECT student_id FROM reviewed)) AS due",
        )
        .bind(ts(month_start))
        .fetch_one(&self.pool)
        .await?;
        let count = |name: &str| -> Result<u32, StoreError> {
            let n: i64 = row.try_get(name)?;
            Ok(u32::try_from(n).unwrap_or(u32::MAX))
        };
        Ok(cadence::Cadence {
            as_of: now,
            month,
            review_students: count("students")?,
            review_due: count("due")?,
            next_term_screening,
            next_census,
            calendars: u32::try_from(calendars.len()).unwrap_or(u32::MAX),
        })
    }
}
