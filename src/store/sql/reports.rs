//! Incident reports in the SQLite store: the report commands, the relay
//! opening a report when a rule's sign is recorded, and overdue stages
//! escalating like overdue steps. The lifecycle itself is the pure model in
//! [`crate::reporting`]; this file only loads, saves and streams it.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::engine;

use super::{
    Applied, CommandTx, EngineStore, Logs, OpenCaseRow, ScreeningTally, StoreError, StoredEvent,
    Tx, refuse, ts,
};
use crate::audit::{AuditKind, NewEntry};
use crate::logging::json_error;
use crate::playbook::{Library, Resolution};
use crate::protocol::{
    Alert, AlertStatus, CaseSnapshot, CloseOutcome, ErrorDetail, EventBody, Role,
};
use crate::reporting::{
    self, ActionLine, CaseSigns, IncidentReport, ReportChange, ReportForm, Rule, Rules, Stage,
};

impl EngineStore {
    /// Runs these reporting rules instead of the shipped ones.
    pub fn with_reporting_rules(mut self, rules: Rules) -> EngineStore {
        self.reporting = std::sync::Arc::new(rules);
        self
    }

    pub fn reporting_rules(&self) -> &Rules {
        &self.reporting
    }

    /// The report on a case, if one was opened. Report ids (`IR-…`) and
    /// case ids (`C…`) never collide, so this is the id lookup.
    pub async fn incident_report(
        &self,
        case_id: &str,
    ) -> Result<Option<IncidentReport>, StoreError> {
        self.incident_report_by_id(case_id).await
    }

    /// A report by its id (`IR-C000012`) or its case's id.
    pub async fn incident_report_by_id(
        &self,
        id: &str,
    ) -> Result<Option<IncidentReport>, StoreError> {
        let body: Option<String> =
            sqlx::query_scalar("SELECT body FROM incident_reports WHERE id = $1 OR case_id = $2")
                .bind(id)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        body.as_deref().map(report_from).transpose()
    }

    /// Every report, oldest first; drills only when asked for.
    pub async fn incident_reports(
        &self,
        include_drills: bool,
    ) -> Result<Vec<IncidentReport>, StoreError> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT body FROM incident_reports WHERE ($1 OR NOT drill) ORDER BY opened_at, id",
        )
        .bind(include_drills)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|b| report_from(b)).collect()
    }
}

fn report_from(body: &str) -> Result<IncidentReport, StoreError> {
    serde_json::from_str(body)
        .map_err(|e| StoreError::Corrupt(format!("stored incident report: {}", json_error(&e))))
}

fn report_json(report: &IncidentReport) -> Result<String, StoreError> {
    serde_json::to_string(report)
        .map_err(|e| StoreError::Corrupt(format!("incident report does not encode: {e}")))
}

async fn load_report(tx: &mut Tx<'_>, case_id: &str) -> Result<Option<IncidentReport>, StoreError> {
    let body: Option<String> =
        sqlx::query_scalar("SELECT body FROM incident_reports WHERE case_id = $1")
            .bind(case_id)
            .fetch_optional(&mut **tx)
            .await?;
    body.as_deref().map(report_from).transpose()
}

async fn escalated_stages(tx: &mut Tx<'_>, report_id: &str) -> Result<Vec<Stage>, StoreError> {
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT stage FROM report_escalations WHERE report_id = $1")
            .bind(report_id)
            .fetch_all(&mut **tx)
            .await?;
    Ok(Stage::ALL
        .iter()
        .copied()
        .filter(|s| rows.iter().any(|r| r == s.as_str()))
        .collect())
}

/// Writes the report and its next deadline (insert or replace).
async fn save_report(
    tx: &mut Tx<'_>,
    report: &IncidentReport,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let escalated = escalated_stages(tx, &report.id).await?;
    let next = report.next_due(&escalated);
    sqlx::query(
        "INSERT INTO incident_reports (id, case_id, drill, opened_at, updated_at, awaiting_review, \
         next_due_at, body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT(id) DO UPDATE SET updated_at = excluded.updated_at, \
         awaiting_review = excluded.awaiting_review, next_due_at = excluded.next_due_at, \
         body = excluded.body",
    )
    .bind(&report.id)
    .bind(&report.case_id)
    .bind(report.drill)
    .bind(ts(report.opened_at))
    .bind(ts(now))
    .bind(i64::try_from(report.awaiting_review()).unwrap_or(0))
    .bind(next.map(ts))
    .bind(report_json(report)?)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The case's report form as of now: pre-filled from the record, never
/// carrying the student id, nor the name unless `with_name`.
async fn build_form(
    tx: &mut Tx<'_>,
    case: &CaseSnapshot,
    library: &Library,
    with_name: bool,
) -> Result<ReportForm, StoreError> {
    let rows = sqlx::query("SELECT body FROM alerts WHERE case_id = $1 ORDER BY seq")
        .bind(&case.id)
        .fetch_all(&mut **tx)
        .await?;
    let mut identity: Option<crate::protocol::Student> = None;
    for row in rows {
        let body: String = row.try_get("body")?;
        let alert: Alert = serde_json::from_str(&body)
            .map_err(|e| StoreError::Corrupt(format!("stored alert: {}", json_error(&e))))?;
        match &mut identity {
            Some(known) => crate::case::merge_identity(known, &alert.student),
            None => identity = Some(alert.student),
        }
    }
    let outcome: Option<String> = sqlx::query_scalar("SELECT outcome FROM cases WHERE id = $1")
        .bind(&case.id)
        .fetch_one(&mut **tx)
        .await?;
    let outcome = outcome.as_deref().and_then(CloseOutcome::parse);
    let checklists = checklists_in(tx, &case.id).await?;
    let mut actions = Vec::new();
    let mut calls = Vec::new();
    for (playbook_id, progress) in &checklists {
        let playbook = library.get(playbook_id);
        for (step_id, record) in &progress.steps {
            let Some(outcome) = &record.outcome else {
                continue;
            };
            let how = match &outcome.how {
                Resolution::Skipped { .. } => continue,
                Resolution::Checked | Resolution::Noted { .. } => "done".to_string(),
                Resolution::Chose { option } => format!("chose:{option}"),
                Resolution::Reached => "reached".into(),
                Resolution::Referred { .. } => "referred".into(),
                Resolution::Refused => "refused".into(),
            };
            let step = playbook.and_then(|p| p.step(step_id));
            if let Some(number) = step.and_then(|s| s.calls.clone())
                && !calls.contains(&number)
            {
                calls.push(number);
            }
            actions.push(ActionLine {
                at: outcome.at,
                by: outcome.by,
                playbook: playbook_id.clone(),
                step: step_id.clone(),
                title_zh: step.map_or_else(|| step_id.clone(), |s| s.title.zh.clone()),
                title_en: step.map_or_else(|| step_id.clone(), |s| s.title.en.clone()),
                how,
            });
        }
    }
    actions.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.step.cmp(&b.step)));
    let student = identity.unwrap_or_else(|| crate::protocol::Student {
        id: case.student_id.clone(),
        name: None,
        school: None,
        grade: None,
        class: None,
        under_14: None,
    });
    Ok(ReportForm {
        incident_at: case.opened_at,
        school: student.school,
        grade: student.grade,
        category: case.category,
        level: case.level,
        imminent: case.imminent,
        case_status: case.status,
        outcome,
        emergency_calls: calls,
        actions,
        narrative: None,
        student_name: if with_name { student.name } else { None },
    })
}

async fn checklists_in(
    tx: &mut Tx<'_>,
    case_id: &str,
) -> Result<Vec<(String, crate::playbook::Progress)>, StoreError> {
    let rows = sqlx::query(
        "SELECT playbook, progress FROM checklists WHERE case_id = $1 ORDER BY added_at, playbook",
    )
    .bind(case_id)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("playbook")?,
                super::progress_from(&r.try_get::<String, _>("progress")?)?,
            ))
        })
        .collect()
}

/// The student's name as the alerts gave it (to keep it out of text).
async fn student_name(
    tx: &mut Tx<'_>,
    case: &CaseSnapshot,
    library: &Library,
) -> Result<Option<String>, StoreError> {
    Ok(build_form(tx, case, library, true).await?.student_name)
}

impl CommandTx<'_, '_> {
    fn rules(&self) -> &Rules {
        self.reporting
    }

    async fn publish_report(
        &mut self,
        report: &IncidentReport,
        change: Option<ReportChange>,
        origin: bool,
    ) -> Result<StoredEvent, StoreError> {
        save_report(self.tx, report, self.now).await?;
        let origin = origin.then(|| self.origin.clone());
        let body = match change {
            None => EventBody::ReportOpened {
                case_id: report.case_id.clone(),
                report: Box::new(report.clone()),
                origin,
            },
            Some(change) => EventBody::ReportUpdated {
                case_id: report.case_id.clone(),
                change,
                report: Box::new(report.clone()),
                origin,
            },
        };
        self.logs.event(self.now, body)
    }

    /// A leader opens a report under a rule (or adds the rule to the
    /// case's open report).
    pub(super) async fn open_report(
        &mut self,
        case: &CaseSnapshot,
        rule_id: &str,
    ) -> Result<Applied, StoreError> {
        if self.origin.by.role != Role::Leader {
            return Ok(refuse(
                "submit_forbidden",
                format!(
                    "a report is opened by the school leader (校领导), not by {}",
                    self.origin.by.role
                ),
            ));
        }
        let Some(rule) = self.rules().get(rule_id).cloned() else {
            return Ok(Err(ErrorDetail::new(
                "unknown_rule",
                format!(
                    "no reporting rule `{rule_id}`; this relay knows {}",
                    self.rules().ids().join(", ")
                ),
            )
            .with_field("rule")));
        };
        let event = match load_report(self.tx, &case.id).await? {
            Some(mut report) => {
                let added = report.add_rules(&[&rule]);
                if added.is_empty() {
                    return Ok(refuse(
                        "already_reported",
                        format!("{} already reports rule `{rule_id}`", report.id),
                    ));
                }
                self.publish_report(
                    &report,
                    Some(ReportChange::RulesAdded { rules: added }),
                    true,
                )
                .await?
            }
            None => {
                let form = build_form(self.tx, case, self.library, rule.name_required).await?;
                let report = IncidentReport::open(
                    &case.id,
                    case.alert_status != AlertStatus::Actual,
                    &[&rule],
                    Some(self.origin.by.clone()),
                    form,
                    self.now,
                );
                self.publish_report(&report, None, true).await?
            }
        };
        Ok(Ok((vec![event], None)))
    }

    async fn report_for_command(
        &mut self,
        case: &CaseSnapshot,
    ) -> Result<Result<IncidentReport, ErrorDetail>, StoreError> {
        Ok(load_report(self.tx, &case.id).await?.ok_or_else(|| {
            ErrorDetail::new(
                "no_report",
                format!(
                    "case {} has no incident report (a leader opens one with open_report)",
                    case.id
                ),
            )
            .with_field("case_id")
        }))
    }

    pub(super) async fn submit_report(
        &mut self,
        case: &CaseSnapshot,
        stage: Stage,
        narrative: Option<&str>,
    ) -> Result<Applied, StoreError> {
        let mut report = match self.report_for_command(case).await? {
            Ok(r) => r,
            Err(e) => return Ok(Err(e)),
        };
        let narrative = narrative.map(str::trim).filter(|t| !t.is_empty());
        if let Some(text) = narrative {
            if text.chars().count() > reporting::MAX_NARRATIVE_CHARS {
                return Ok(Err(ErrorDetail::new(
                    "text_too_long",
                    format!(
                        "`narrative` is longer than {} characters",
                        reporting::MAX_NARRATIVE_CHARS
                    ),
                )
                .with_field("narrative")));
            }
            if !report.name_required
                && let Some(name) = student_name(self.tx, case, self.library).await?
                && reporting::mentions_name(text, &name)
            {
                return Ok(Err(ErrorDetail::new(
                    "name_not_allowed",
                    "the narrative names the student, and no rule on this report requires a name; \
                     write 该生 or the case id instead",
                )
                .with_field("narrative")));
            }
        }
        let mut form = build_form(self.tx, case, self.library, report.name_required).await?;
        form.narrative = narrative.map(str::to_string);
        match report.submit(stage, &self.origin.by, form, self.now) {
            Ok(change) => {
                let event = self.publish_report(&report, Some(change), true).await?;
                Ok(Ok((vec![event], None)))
            }
            Err(e) => Ok(Err(e)),
        }
    }

    pub(super) async fn review_report(
        &mut self,
        case: &CaseSnapshot,
        stage: Stage,
        return_reason: Option<&str>,
    ) -> Result<Applied, StoreError> {
        let mut report = match self.report_for_command(case).await? {
            Ok(r) => r,
            Err(e) => return Ok(Err(e)),
        };
        let by = self.origin.by.clone();
        let changed = match return_reason {
            None => report.accept(stage, &by, self.now),
            Some(reason) => report.return_stage(stage, &by, reason, self.now),
        };
        match changed {
            Ok(change) => {
                let event = self.publish_report(&report, Some(change), true).await?;
                Ok(Ok((vec![event], None)))
            }
            Err(e) => Ok(Err(e)),
        }
    }

    /// After a step: if the case now meets a rule it did not, open its
    /// report (or add the rule). The relay does this, not a person, so the
    /// event has no origin; the step's audit entry lists its seq.
    pub(super) async fn report_after_step(
        &mut self,
        case: &CaseSnapshot,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let checklists = checklists_in(self.tx, &case.id).await?;
        let signs = CaseSigns::from_checklists(case.category, &checklists, self.library);
        let met: Vec<Rule> = signs.matching(self.rules()).into_iter().cloned().collect();
        if met.is_empty() {
            return Ok(Vec::new());
        }
        let met_refs: Vec<&Rule> = met.iter().collect();
        let event = match load_report(self.tx, &case.id).await? {
            Some(mut report) => {
                let added = report.add_rules(&met_refs);
                if added.is_empty() {
                    return Ok(Vec::new());
                }
                self.publish_report(
                    &report,
                    Some(ReportChange::RulesAdded { rules: added }),
                    false,
                )
                .await?
            }
            None => {
                let with_name = met.iter().any(|r| r.name_required);
                let form = build_form(self.tx, case, self.library, with_name).await?;
                let report = IncidentReport::open(
                    &case.id,
                    case.alert_status != AlertStatus::Actual,
                    &met_refs,
                    None,
                    form,
                    self.now,
                );
                self.publish_report(&report, None, false).await?
            }
        };
        Ok(vec![event])
    }
}

/// Raises a `report_overdue` event for each stage past its deadline, once,
/// addressed to the school leader; recomputes each report's next deadline.
pub(super) async fn escalate_reports_in(
    tx: &mut Tx<'_>,
    logs: &mut Logs,
    now: DateTime<Utc>,
) -> Result<Vec<StoredEvent>, StoreError> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT body FROM incident_reports WHERE next_due_at IS NOT NULL AND next_due_at <= $1 \
         ORDER BY next_due_at, id",
    )
    .bind(ts(now))
    .fetch_all(&mut **tx)
    .await?;
    let mut events = Vec::new();
    for body in rows {
        let report = report_from(&body)?;
        let mut escalated = escalated_stages(tx, &report.id).await?;
        let overdue: Vec<(Stage, DateTime<Utc>)> = report
            .overdue(&escalated, now)
            .iter()
            .map(|s| (s.stage, s.due))
            .collect();
        for (stage, due) in overdue {
            let event = logs.event(
                now,
                EventBody::ReportOverdue {
                    case_id: report.case_id.clone(),
                    report_id: report.id.clone(),
                    stage,
                    due,
                    to: Role::Leader,
                },
            )?;
            logs.audit(
                now,
                &NewEntry::new(
                    AuditKind::EscalationRaised,
                    serde_json::json!({
                        "report": report.id, "stage": stage.as_str(), "seq": event.seq,
                        "to": Role::Leader.as_str(),
                    }),
                )
                .on_case(&report.case_id, report.drill),
            );
            sqlx::query(
                "INSERT INTO report_escalations (report_id, stage, at, seq) VALUES ($1, $2, $3, $4)",
            )
            .bind(&report.id)
            .bind(stage.as_str())
            .bind(ts(now))
            .bind(event.seq)
            .execute(&mut **tx)
            .await?;
            escalated.push(stage);
            events.push(event);
        }
        sqlx::query("UPDATE incident_reports SET next_due_at = $1 WHERE id = $2")
            .bind(report.next_due(&escalated).map(ts))
            .bind(&report.id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(events)
}

/// The soonest deadline of any report stage (for the scanner).
pub(super) const NEXT_REPORT_DUE: &str =
    "SELECT MIN(next_due_at) FROM incident_reports WHERE next_due_at IS NOT NULL";

impl EngineStore {
    /// Every open real case with its school (drills and tests left out).
    pub async fn open_cases_by_school(&self) -> Result<Vec<OpenCaseRow>, StoreError> {
        let school = engine::alert_school("a.body");
        let sql = format!(
            "SELECT c.id, c.level, c.imminent, \
             (SELECT {school} FROM alerts a \
              WHERE a.case_id = c.id AND {school} IS NOT NULL \
              ORDER BY a.seq DESC LIMIT 1) AS school \
             FROM cases c WHERE c.status <> 'closed' AND c.alert_status = 'actual' ORDER BY c.num"
        );
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let level: String = r.try_get("level")?;
                Ok(OpenCaseRow {
                    case_id: r.try_get("id")?,
                    level: crate::protocol::Level::parse(&level)
                        .ok_or_else(|| super::corrupt("level", &level))?,
                    imminent: r.try_get("imminent")?,
                    school: r.try_get("school")?,
                })
            })
            .collect()
    }

    /// The checklists of every open real case, as (case id, playbook,
    /// progress), in one query.
    pub async fn open_checklists(
        &self,
    ) -> Result<Vec<(String, String, crate::playbook::Progress)>, StoreError> {
        let rows = sqlx::query(
            "SELECT k.case_id, k.playbook, k.progress FROM checklists k JOIN cases c \
             ON c.id = k.case_id WHERE c.status != 'closed' AND c.alert_status = 'actual'",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("case_id")?,
                    r.try_get("playbook")?,
                    super::progress_from(&r.try_get::<String, _>("progress")?)?,
                ))
            })
            .collect()
    }
}

impl EngineStore {
    /// Drills (exercise ids) whose first case opened in `[from, to)`, with
    /// that moment, oldest first.
    pub async fn exercises_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT exercise_id, MIN(opened_at) AS first FROM cases \
             WHERE exercise_id IS NOT NULL GROUP BY exercise_id \
             HAVING MIN(opened_at) >= $1 AND MIN(opened_at) < $2 ORDER BY first",
        )
        .bind(ts(from))
        .bind(ts(to))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("exercise_id")?,
                    super::parse_ts(&r.try_get::<String, _>("first")?)?,
                ))
            })
            .collect()
    }
}

impl EngineStore {
    /// Screening results answered in `[from, to)`, per school. Answer times
    /// carry the file's offset, so they are compared as instants.
    pub async fn screening_by_school(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(String, ScreeningTally)>, StoreError> {
        let count = |cond: &str| format!("SUM(CASE WHEN {cond} THEN 1 ELSE 0 END)");
        let answered = engine::instant("answered_at");
        let sql = format!(
            "SELECT school, COUNT(*) AS screened, {} AS valid, {} AS general, {} AS key, \
             {} AS high FROM screening_results \
             WHERE {answered} >= {} AND {answered} < {} \
             GROUP BY school ORDER BY school",
            count("valid"),
            count("valid AND level = 'general'"),
            count("valid AND level = 'key'"),
            count("valid AND level = 'high'"),
            engine::instant("$1"),
            engine::instant("$2"),
        );
        let rows = sqlx::query(&sql)
            .bind(ts(from))
            .bind(ts(to))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("school")?,
                    ScreeningTally {
                        screened: r.try_get("screened")?,
                        valid: r.try_get("valid")?,
                        general: r.try_get("general")?,
                        key: r.try_get("key")?,
                        high: r.try_get("high")?,
                    },
                ))
            })
            .collect()
    }
}
