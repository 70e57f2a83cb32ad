//! Incident reports upward (事件信息报告): the school tells the education
//! bureau about a case that meets a reporting rule, in stages (first
//! report, follow-up, final), each with a deadline; the district accepts or
//! returns (退回) each stage. Pure model here — rules in [`rules`], the
//! lifecycle as plain functions over plain data with `now` passed in — so
//! it is tested without a database; the store keeps it and the relay
//! streams every transition.

pub mod cli;
pub mod district;
pub mod export;
pub mod rules;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::protocol::{Actor, CaseStatus, Category, CloseOutcome, ErrorDetail, Level, Role};
pub use rules::{CaseSigns, Rule, Rules};

/// The three stages local rules ask for, in order.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    First,
    FollowUp,
    Final,
}

impl Stage {
    /// Every one, in declaration order.
    pub const ALL: &[Stage] = <Stage as strum::VariantArray>::VARIANTS;

    pub fn label_zh(self) -> &'static str {
        match self {
            Stage::First => "首报",
            Stage::FollowUp => "续报",
            Stage::Final => "终报",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            Stage::First => "first report",
            Stage::FollowUp => "follow-up report",
            Stage::Final => "final report",
        }
    }

    fn deadline(self, rule: &Rule) -> &rules::Deadline {
        match self {
            Stage::First => &rule.first_report,
            Stage::FollowUp => &rule.follow_up,
            Stage::Final => &rule.final_report,
        }
    }
}
crate::protocol::wire_names!(Stage);

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum StageStatus {
    /// Not yet sent to the district.
    Pending,
    /// Sent; awaiting the district's review.
    Submitted,
    Accepted,
    /// Sent back with a reason; the school corrects and submits again.
    Returned,
}

impl StageStatus {
    pub fn label_zh(self) -> &'static str {
        match self {
            StageStatus::Pending => "待报",
            StageStatus::Submitted => "已报待审",
            StageStatus::Accepted => "已接收",
            StageStatus::Returned => "已退回",
        }
    }
}
crate::protocol::wire_names!(StageStatus);

/// A return (退回) by the district, with its reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Returned {
    pub at: DateTime<Utc>,
    pub by: Actor,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageState {
    pub stage: Stage,
    pub due: DateTime<Utc>,
    /// `default` or the source id the limit rests on.
    pub basis: String,
    pub status: StageStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_by: Option<Actor>,
    /// The first submission came after the deadline. A late report is
    /// accepted like any other, never refused; this says it was late.
    #[serde(default)]
    pub late: bool,
    #[serde(default)]
    pub submissions: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_by: Option<Actor>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub returns: Vec<Returned>,
    /// The form as last submitted for this stage (what the district read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form: Option<ReportForm>,
}

/// One thing the school did, as the form lists it: the step's title and
/// how it ended, never the free text written on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionLine {
    pub at: DateTime<Utc>,
    pub by: Role,
    pub playbook: String,
    pub step: String,
    pub title_zh: String,
    pub title_en: String,
    /// `done`, `chose:<option>`, `reached`, `referred`, `refused`.
    pub how: String,
}

/// The report's content, pre-filled from the case. No student id, and no
/// name unless a rule on the report requires it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportForm {
    /// When the case opened (the school's first knowledge).
    pub incident_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub school: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grade: Option<String>,
    pub category: Category,
    pub level: Level,
    pub imminent: bool,
    pub case_status: CaseStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<CloseOutcome>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emergency_calls: Vec<String>,
    pub actions: Vec<ActionLine>,
    /// The leader's own account, given with a submission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub narrative: Option<String>,
    /// Only when a rule on the report requires the name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student_name: Option<String>,
}

/// An incident report on one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentReport {
    pub id: String,
    pub case_id: String,
    /// A drill's report: practised end to end, never counted as an incident.
    #[serde(default)]
    pub drill: bool,
    /// The rules the case meets, in the order they were met.
    pub rules: Vec<String>,
    pub opened_at: DateTime<Utc>,
    /// The leader who declared it; `None` when the relay opened it because
    /// a rule's sign was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened_by: Option<Actor>,
    pub name_required: bool,
    pub stages: Vec<StageState>,
    /// The pre-filled form as of the latest change.
    pub form: ReportForm,
}

/// What a change did, as the `report_updated` event names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum ReportChange {
    RulesAdded { rules: Vec<String> },
    Submitted { stage: Stage, late: bool },
    Accepted { stage: Stage },
    Returned { stage: Stage, reason: String },
}

/// Longest narrative a leader may submit, and longest return reason.
pub const MAX_NARRATIVE_CHARS: usize = 4000;
pub const MAX_REASON_CHARS: usize = 500;

/// The report id of a case's report (one report per case).
pub fn report_id(case_id: &str) -> String {
    format!("IR-{case_id}")
}

impl IncidentReport {
    /// A new report under `rules` (at least one), with deadlines from `now`.
    pub fn open(
        case_id: &str,
        drill: bool,
        rules: &[&Rule],
        opened_by: Option<Actor>,
        form: ReportForm,
        now: DateTime<Utc>,
    ) -> IncidentReport {
        let mut report = IncidentReport {
            id: report_id(case_id),
            case_id: case_id.to_string(),
            drill,
            rules: Vec::new(),
            opened_at: now,
            opened_by,
            name_required: false,
            stages: Stage::ALL
                .iter()
                .map(|&stage| StageState {
                    stage,
                    due: DateTime::<Utc>::MAX_UTC,
                    basis: "default".into(),
                    status: StageStatus::Pending,
                    submitted_at: None,
                    submitted_by: None,
                    late: false,
                    submissions: 0,
                    accepted_at: None,
                    accepted_by: None,
                    returns: Vec::new(),
                    form: None,
                })
                .collect(),
            form,
        };
        report.add_rules(rules);
        report
    }

    /// Adds rules the case now meets; stages not yet submitted take the
    /// strictest deadline (counted from the report's opening). Returns the
    /// ids added.
    pub fn add_rules(&mut self, rules: &[&Rule]) -> Vec<String> {
        let mut added = Vec::new();
        for rule in rules {
            if self.rules.contains(&rule.id) {
                continue;
            }
            self.rules.push(rule.id.clone());
            added.push(rule.id.clone());
            self.name_required |= rule.name_required;
            for state in &mut self.stages {
                let deadline = state.stage.deadline(rule);
                let due = self.opened_at + deadline.within.to_chrono();
                if state.status == StageStatus::Pending && due < state.due {
                    state.due = due;
                    state.basis.clone_from(&deadline.basis);
                }
            }
        }
        added
    }

    pub fn stage(&self, stage: Stage) -> Option<&StageState> {
        self.stages.iter().find(|s| s.stage == stage)
    }

    fn stage_mut(&mut self, stage: Stage) -> Option<&mut StageState> {
        self.stages.iter_mut().find(|s| s.stage == stage)
    }

    /// The school leader submits a stage (again, after a return). After
    /// the deadline it is accepted and marked late.
    pub fn submit(
        &mut self,
        stage: Stage,
        by: &Actor,
        form: ReportForm,
        now: DateTime<Utc>,
    ) -> Result<ReportChange, ErrorDetail> {
        if by.role != Role::Leader {
            return Err(ErrorDetail::new(
                "submit_forbidden",
                format!(
                    "a report is submitted by the school leader (校领导), not by {}",
                    by.role
                ),
            ));
        }
        let previous = Stage::ALL
            .iter()
            .position(|s| *s == stage)
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| self.stage(Stage::ALL[i]));
        if let Some(prev) = previous
            && prev.status == StageStatus::Pending
        {
            return Err(ErrorDetail::new(
                "stage_out_of_order",
                format!(
                    "submit the {} before the {}",
                    prev.stage.label_en(),
                    stage.label_en()
                ),
            )
            .with_field("stage"));
        }
        let report_id = self.id.clone();
        let Some(state) = self.stage_mut(stage) else {
            return Err(ErrorDetail::new("unknown_stage", "no such stage").with_field("stage"));
        };
        match state.status {
            StageStatus::Pending | StageStatus::Returned => {}
            StageStatus::Submitted => {
                return Err(ErrorDetail::new(
                    "already_submitted",
                    format!(
                        "the {} of {report_id} is already with the district; wait for its answer",
                        stage.label_en()
                    ),
                ));
            }
            StageStatus::Accepted => {
                return Err(ErrorDetail::new(
                    "already_accepted",
                    format!(
                        "the district already accepted the {} of {report_id}",
                        stage.label_en()
                    ),
                ));
            }
        }
        if state.submissions == 0 && now > state.due {
            state.late = true;
        }
        state.status = StageStatus::Submitted;
        state.submitted_at = Some(now);
        state.submitted_by = Some(by.clone());
        state.submissions += 1;
        state.form = Some(form.clone());
        let late = state.late;
        self.form = form;
        Ok(ReportChange::Submitted { stage, late })
    }

    fn reviewable(&mut self, stage: Stage, by: &Actor) -> Result<&mut StageState, ErrorDetail> {
        if by.role != Role::District {
            return Err(ErrorDetail::new(
                "approval_forbidden",
                format!(
                    "a report is accepted or returned by the district (教育局/区心理中心), not by {}",
                    by.role
                ),
            ));
        }
        let report_id = self.id.clone();
        let state = self.stage_mut(stage).ok_or_else(|| {
            ErrorDetail::new("unknown_stage", "no such stage").with_field("stage")
        })?;
        if state.status != StageStatus::Submitted {
            return Err(ErrorDetail::new(
                "not_submitted",
                format!(
                    "the {} of {report_id} is {}, not awaiting review",
                    stage.label_en(),
                    state.status.as_str()
                ),
            )
            .with_field("stage"));
        }
        Ok(state)
    }

    /// The district accepts a submitted stage.
    pub fn accept(
        &mut self,
        stage: Stage,
        by: &Actor,
        now: DateTime<Utc>,
    ) -> Result<ReportChange, ErrorDetail> {
        let state = self.reviewable(stage, by)?;
        state.status = StageStatus::Accepted;
        state.accepted_at = Some(now);
        state.accepted_by = Some(by.clone());
        Ok(ReportChange::Accepted { stage })
    }

    /// The district returns a submitted stage; the reason is required.
    pub fn return_stage(
        &mut self,
        stage: Stage,
        by: &Actor,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<ReportChange, ErrorDetail> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
            return Err(ErrorDetail::new(
                "reason_required",
                format!(
                    "a return (退回) says why, so the school can correct it: give a reason of 1 to {MAX_REASON_CHARS} characters"
                ),
            )
            .with_field("reason"));
        }
        let state = self.reviewable(stage, by)?;
        state.status = StageStatus::Returned;
        state.returns.push(Returned {
            at: now,
            by: by.clone(),
            reason: reason.to_string(),
        });
        Ok(ReportChange::Returned {
            stage,
            reason: reason.to_string(),
        })
    }

    /// The soonest deadline of a stage never submitted that has not
    /// escalated yet: when the relay's scanner must look again.
    pub fn next_due(&self, escalated: &[Stage]) -> Option<DateTime<Utc>> {
        self.stages
            .iter()
            .filter(|s| s.status == StageStatus::Pending && !escalated.contains(&s.stage))
            .map(|s| s.due)
            .min()
    }

    /// Stages past their deadline at `now`, never submitted, not yet
    /// escalated.
    pub fn overdue(&self, escalated: &[Stage], now: DateTime<Utc>) -> Vec<&StageState> {
        self.stages
            .iter()
            .filter(|s| {
                s.status == StageStatus::Pending && !escalated.contains(&s.stage) && s.due <= now
            })
            .collect()
    }

    /// Stages the district has yet to review.
    pub fn awaiting_review(&self) -> usize {
        self.stages
            .iter()
            .filter(|s| s.status == StageStatus::Submitted)
            .count()
    }
}

/// Whether `text` carries `name` (or its given name alone, the way a
/// colleague writes it): a narrative must not carry a name the rules do not
/// require, so such a submission is refused rather than sent upward.
pub fn mentions_name(text: &str, name: &str) -> bool {
    let name = name.trim();
    if name.is_empty() {
        return false;
    }
    if text.contains(name) {
        return true;
    }
    // Chinese names: surname + given name; the given name alone (two
    // characters or more) identifies the student just as well.
    let chars: Vec<char> = name.chars().collect();
    if chars.len() >= 3 {
        let given: String = chars[1..].iter().collect();
        return text.contains(&given);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn form() -> ReportForm {
        ReportForm {
            incident_at: Utc::now(),
            school: Some("第一中学".into()),
            grade: Some("初二".into()),
            category: Category::SuicideRisk,
            level: Level::High,
            imminent: true,
            case_status: CaseStatus::Acknowledged,
            outcome: None,
            emergency_calls: vec!["120".into()],
            actions: Vec::new(),
            narrative: None,
            student_name: None,
        }
    }

    fn actor(role: Role) -> Actor {
        Actor {
            name: format!("{role}-1"),
            role,
        }
    }

    fn report(ids: &[&str], now: DateTime<Utc>) -> IncidentReport {
        let rules = Rules::embedded().unwrap();
        let picked: Vec<&Rule> = ids.iter().map(|id| rules.get(id).unwrap()).collect();
        IncidentReport::open("C000001", false, &picked, None, form(), now)
    }

    #[test]
    fn deadlines_follow_the_strictest_rule() {
        let now = Utc::now();
        let r = report(&["emergency_services"], now);
        assert_eq!(
            r.stage(Stage::First).unwrap().due,
            now + TimeDelta::hours(24)
        );
        let mut r = r;
        let rules = Rules::embedded().unwrap();
        let added = r.add_rules(&[
            rules.get("death").unwrap(),
            rules.get("emergency_services").unwrap(),
        ]);
        assert_eq!(added, ["death"]);
        assert_eq!(
            r.stage(Stage::First).unwrap().due,
            now + TimeDelta::hours(1)
        );
        assert_eq!(
            r.stage(Stage::FollowUp).unwrap().basis,
            "incident_reporting"
        );
        assert_eq!(r.next_due(&[]), Some(now + TimeDelta::hours(1)));
        assert_eq!(
            r.next_due(&[Stage::First]),
            Some(now + TimeDelta::hours(24))
        );
    }

    #[test]
    fn lifecycle_submit_return_resubmit_accept() {
        let now = Utc::now();
        let mut r = report(&["death"], now);
        let leader = actor(Role::Leader);
        let district = actor(Role::District);
        assert_eq!(
            r.submit(Stage::FollowUp, &leader, form(), now)
                .unwrap_err()
                .code,
            "stage_out_of_order"
        );
        assert_eq!(
            r.submit(Stage::First, &actor(Role::Counselor), form(), now)
                .unwrap_err()
                .code,
            "submit_forbidden"
        );
        assert_eq!(
            r.accept(Stage::First, &district, now).unwrap_err().code,
            "not_submitted"
        );
        r.submit(Stage::First, &leader, form(), now).unwrap();
        assert_eq!(r.awaiting_review(), 1);
        assert_eq!(
            r.accept(Stage::First, &leader, now).unwrap_err().code,
            "approval_forbidden"
        );
        assert_eq!(
            r.return_stage(Stage::First, &district, "  ", now)
                .unwrap_err()
                .code,
            "reason_required"
        );
        r.return_stage(Stage::First, &district, "缺少送医时间", now)
            .unwrap();
        assert_eq!(r.stage(Stage::First).unwrap().status, StageStatus::Returned);
        assert_eq!(
            r.next_due(&[]),
            Some(now + TimeDelta::hours(24)),
            "returned is not pending"
        );
        r.submit(Stage::First, &leader, form(), now).unwrap();
        assert_eq!(r.stage(Stage::First).unwrap().submissions, 2);
        r.accept(Stage::First, &district, now).unwrap();
        assert_eq!(
            r.submit(Stage::First, &leader, form(), now)
                .unwrap_err()
                .code,
            "already_accepted"
        );
        assert!(!r.stage(Stage::First).unwrap().late);
    }

    #[test]
    fn late_submission_is_accepted_and_marked_late() {
        let now = Utc::now();
        let mut r = report(&["death"], now);
        let later = now + TimeDelta::hours(3);
        assert_eq!(r.overdue(&[], later).len(), 1);
        let change = r
            .submit(Stage::First, &actor(Role::Leader), form(), later)
            .unwrap();
        assert_eq!(
            change,
            ReportChange::Submitted {
                stage: Stage::First,
                late: true
            }
        );
        r.accept(Stage::First, &actor(Role::District), later)
            .unwrap();
        assert!(r.stage(Stage::First).unwrap().late);
    }

    proptest::proptest! {
        /// Any sequence of submits, accepts and returns by any role keeps
        /// the lifecycle's promises: a refusal changes nothing, an accepted
        /// stage stays accepted, late is never unset, submissions count the
        /// accepted submits, and no stage is with the district before the
        /// stage before it was sent.
        #[test]
        fn the_lifecycle_keeps_its_promises(
            steps in proptest::collection::vec((0u8..3, 0usize..3, 0u8..3, 0i64..200, proptest::bool::ANY), 0..40)
        ) {
            let start = Utc::now();
            let mut r = report(&["death"], start);
            let mut submits = [0u32; 3];
            let mut now = start;
            for (action, stage_i, role_i, minutes, blank) in steps {
                now += TimeDelta::minutes(minutes);
                let stage = Stage::ALL[stage_i];
                let who = actor([Role::Leader, Role::District, Role::Counselor][role_i as usize]);
                let before = r.clone();
                let result = match action {
                    0 => r.submit(stage, &who, form(), now),
                    1 => r.accept(stage, &who, now),
                    _ => r.return_stage(stage, &who, if blank { " " } else { "补充" }, now),
                };
                match result {
                    Err(_) => proptest::prop_assert_eq!(&r, &before),
                    Ok(ReportChange::Submitted { .. }) => submits[stage_i] += 1,
                    Ok(_) => {}
                }
                for (i, (old, new)) in before.stages.iter().zip(&r.stages).enumerate() {
                    if old.status == StageStatus::Accepted {
                        proptest::prop_assert_eq!(new.status, StageStatus::Accepted);
                    }
                    proptest::prop_assert!(!old.late || new.late);
                    proptest::prop_assert_eq!(new.submissions, submits[i]);
                    if new.status != StageStatus::Pending && i > 0 {
                        proptest::prop_assert!(r.stages[i - 1].status != StageStatus::Pending);
                    }
                }
            }
        }
    }

    #[test]
    fn names_in_text_are_found_whole_or_given_name_alone() {
        assert!(mentions_name("王小明在教学楼", "王小明"));
        assert!(mentions_name("小明情绪稳定", "王小明"));
        assert!(!mentions_name("该生情绪稳定", "王小明"));
        assert!(!mentions_name("anything", " "));
    }
}
