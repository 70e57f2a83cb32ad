//! One playbook's checklist on one case: what has been done, by which role
//! and when, and what that means now. Pure: no clock (every operation and
//! query takes `now`), no I/O. The relay owns storage, idempotency and the
//! audit record; this decides whether a command is allowed and what it
//! changes.
//!
//! `Progress` stores only what happened (sparse, per step); states, due
//! times and overdue steps are always computed from it and the playbook, so
//! there is nothing derived to fall out of step. The one exception is a
//! limit in school days: the school calendar it is counted on lives outside
//! the checklist, so the relay's count is kept with it (`school_due`) and
//! checked against the step each time it is used.

use std::collections::BTreeMap;

use litemap::LiteMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::model::{CONTACT_NOT_REACHED, CONTACT_REFUSED, Limit, Playbook, Step, StepKind};
use crate::followup::calendar::Calendar;
use crate::protocol::{MAX_SHORT_TEXT_CHARS, MAX_SUMMARY_CHARS, Role};

/// Longest note, skip reason or contact remark.
pub const MAX_TEXT_CHARS: usize = MAX_SUMMARY_CHARS;
/// Longest referral institution name.
pub const MAX_INSTITUTION_CHARS: usize = MAX_SHORT_TEXT_CHARS;

/// The checklist state of one playbook instance on one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub playbook: String,
    pub opened_at: DateTime<Utc>,
    /// Only steps something happened to. Steps of a newer playbook version
    /// simply have no record yet; records of removed steps are ignored.
    ///
    /// Sorted vectors, not B-trees: a checklist has a handful of records,
    /// and a B-tree's first node holds room for eleven. With 40,000 open
    /// cases on a console that was 15 MB of empty slots (issue 10). They
    /// serialize as the same sorted JSON object.
    #[serde(default, skip_serializing_if = "LiteMap::is_empty")]
    pub steps: LiteMap<String, StepRecord>,
    /// Due times of school-day limits, counted by the relay on the school's
    /// calendar when each limit's clock started (see [`SchoolDue`]).
    #[serde(default, skip_serializing_if = "LiteMap::is_empty")]
    pub school_due: LiteMap<String, SchoolDue>,
}

/// A school-day limit as counted when its clock started: from when, how
/// many school days, the due time, and on whose calendar. The calendar is
/// outside the checklist (the relay's `school_calendars`), so the count is
/// kept here: every console, the escalation scanner and a later review
/// see the same due time, and loading a calendar later does not move a
/// limit already running. A stamp whose `from` or `days` no longer match
/// the step (a newer playbook version) is ignored and the limit counted on
/// Monday to Friday.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchoolDue {
    pub from: DateTime<Utc>,
    pub days: u32,
    pub at: DateTime<Utc>,
    /// The school whose calendar counted; `None`: Monday to Friday, the
    /// school having no calendar (or being unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// Contact attempts, the successful one included.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<Attempt>,
    /// Notes written on steps whose kind is not `note`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remarks: Vec<Remark>,
}

/// How and when a step was resolved. Resolution is final: nothing undoes
/// it, so a choice once made cannot switch branches under other roles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub at: DateTime<Utc>,
    pub by: Role,
    #[serde(flatten)]
    pub how: Resolution,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "how", rename_all = "snake_case")]
pub enum Resolution {
    Checked,
    Noted {
        text: String,
    },
    Chose {
        option: String,
    },
    Reached,
    Referred {
        institution: String,
        appointment: DateTime<Utc>,
    },
    Skipped {
        reason: String,
    },
    /// The person was reached and refused (to come, to consent to care).
    /// The call is done; the step's `if_refused` path takes over.
    Refused,
}

impl Outcome {
    pub fn is_skip(&self) -> bool {
        matches!(self.how, Resolution::Skipped { .. })
    }
}

/// How one call went. `refused` is not "not reached": the person answered
/// and said no, which ends the calling and opens the refusal path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactOutcome {
    Reached,
    NoAnswer,
    Refused,
}

impl ContactOutcome {
    pub const ALL: [ContactOutcome; 3] = [
        ContactOutcome::Reached,
        ContactOutcome::NoAnswer,
        ContactOutcome::Refused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ContactOutcome::Reached => "reached",
            ContactOutcome::NoAnswer => "no_answer",
            ContactOutcome::Refused => "refused",
        }
    }

    /// The label the console offers for this outcome.
    pub fn label(self, lang: super::model::Lang) -> &'static str {
        use super::model::Lang;
        match (self, lang) {
            (ContactOutcome::Reached, Lang::Zh) => "已联系上",
            (ContactOutcome::Reached, Lang::En) => "reached",
            (ContactOutcome::NoAnswer, Lang::Zh) => "未接通（无人接听、关机、空号）",
            (ContactOutcome::NoAnswer, Lang::En) => "not reached (no answer, phone off)",
            (ContactOutcome::Refused, Lang::Zh) => "已接通但拒绝",
            (ContactOutcome::Refused, Lang::En) => "reached, but refused",
        }
    }

    /// Whether this outcome ends the calling.
    pub fn resolves(self) -> bool {
        self != ContactOutcome::NoAnswer
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub at: DateTime<Utc>,
    pub by: Role,
    pub outcome: ContactOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remark: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Remark {
    pub at: DateTime<Utc>,
    pub by: Role,
    pub text: String,
}

/// What a responder asks to do to a step; the relay deserializes it from
/// the command JSON (`{"action": "choose", "option": "high"}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum StepAction {
    Complete,
    Skip {
        reason: String,
    },
    Note {
        text: String,
    },
    Choose {
        option: String,
    },
    Contact {
        outcome: ContactOutcome,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        remark: Option<String>,
    },
    Referral {
        institution: String,
        appointment: DateTime<Utc>,
    },
}

/// An accepted command's effect, for the event the relay broadcasts and the
/// audit record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub playbook: String,
    pub step: String,
    pub by: Role,
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub effect: Effect,
    /// Steps that became ready to act on because of this change (their
    /// dependencies or branch are now satisfied): worth a nudge to their
    /// role.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub now_ready: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    Completed,
    Skipped {
        reason: String,
    },
    /// `completes` is true for a note step, false for a remark on another
    /// kind of step.
    Noted {
        text: String,
        completes: bool,
    },
    Chose {
        option: String,
        /// Branch steps this option switched on.
        activated: Vec<String>,
    },
    ContactAttempt {
        outcome: ContactOutcome,
        /// 1 for the first attempt on this step.
        attempt: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        remark: Option<String>,
    },
    Referred {
        institution: String,
        appointment: DateTime<Utc>,
    },
}

/// Why a command changed nothing. Messages are shown to the responder as
/// they are, so they say what to do instead where there is something.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Refusal {
    #[error("this checklist belongs to playbook `{progress}`, not `{playbook}`")]
    WrongPlaybook { progress: String, playbook: String },
    #[error("playbook `{playbook}` has no step `{step}`")]
    UnknownStep { playbook: String, step: String },
    #[error("step `{step}` is for the {owner} role; you are signed in as {actor}")]
    WrongRole {
        step: String,
        owner: Role,
        actor: Role,
    },
    #[error("step `{step}` was already done by {by} at {at}")]
    AlreadyDone {
        step: String,
        by: Role,
        at: DateTime<Utc>,
    },
    #[error("step `{step}` was already skipped by {by} at {at}")]
    AlreadySkipped {
        step: String,
        by: Role,
        at: DateTime<Utc>,
    },
    #[error("step `{step}` does not apply: {why}")]
    InactiveBranch { step: String, why: String },
    #[error("step `{step}` waits for {}", .waiting.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", "))]
    Blocked { step: String, waiting: Vec<String> },
    #[error("step `{step}` is a {kind} step: {hint}")]
    WrongKind {
        step: String,
        kind: &'static str,
        hint: &'static str,
    },
    #[error("step `{step}` has no option `{option}`; choose one of {}", .expected.join(", "))]
    UnknownOption {
        step: String,
        option: String,
        expected: Vec<String>,
    },
    #[error("skipping step `{step}` needs a reason")]
    ReasonRequired { step: String },
    #[error("{what} for step `{step}` is empty")]
    Empty { step: String, what: &'static str },
    #[error("{what} for step `{step}` is longer than {max} characters")]
    TooLong {
        step: String,
        what: &'static str,
        max: usize,
    },
}

impl Refusal {
    /// A stable code for the relay's error body.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::WrongPlaybook { .. } => "wrong_playbook",
            Refusal::UnknownStep { .. } => "unknown_step",
            Refusal::WrongRole { .. } => "wrong_role",
            Refusal::AlreadyDone { .. } => "already_done",
            Refusal::AlreadySkipped { .. } => "already_skipped",
            Refusal::InactiveBranch { .. } => "inactive_branch",
            Refusal::Blocked { .. } => "blocked",
            Refusal::WrongKind { .. } => "wrong_kind",
            Refusal::UnknownOption { .. } => "unknown_option",
            Refusal::ReasonRequired { .. } => "reason_required",
            Refusal::Empty { .. } => "empty_text",
            Refusal::TooLong { .. } => "text_too_long",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// Active and ready to act on.
    Pending,
    /// Active, but some `needs` are neither done nor skipped.
    Blocked,
    Done,
    Skipped,
    /// In a branch that has not been chosen (or will not be).
    Inactive,
}

impl StepState {
    pub fn is_open(self) -> bool {
        matches!(self, StepState::Pending | StepState::Blocked)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverdueReason {
    /// Its due time has passed.
    PastDue,
    /// A contact step used up `max_attempts` without reaching anyone.
    AttemptsExhausted,
}

/// One step as a responder sees it at `now`.
#[derive(Debug, Clone, PartialEq)]
pub struct StepView<'a> {
    pub step: &'a Step,
    pub state: StepState,
    /// `None` when the step has no limit, is inactive, or waits for the step
    /// its limit counts from.
    pub due: Option<DateTime<Utc>>,
    pub overdue: Option<OverdueReason>,
    /// Unsuccessful contact attempts so far.
    pub failed_attempts: u32,
    /// When to try a contact again, after an unsuccessful attempt.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The `needs` still open, for blocked steps.
    pub waiting_on: Vec<&'a str>,
}

impl StepView<'_> {
    /// When the responder should act next: the sooner of the due time and
    /// the next contact retry. "My steps" sorts by this.
    pub fn act_by(&self) -> Option<DateTime<Utc>> {
        match (self.due, self.next_attempt_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// An open step past its limit, and who must hear about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Overdue<'a> {
    pub step: &'a Step,
    pub due: Option<DateTime<Utc>>,
    pub reason: OverdueReason,
    /// `None` only for optional steps written without `escalate_to`.
    pub escalate_to: Option<Role>,
}

/// Monday to Friday, for school-day limits the relay has not counted.
fn fallback_calendar() -> &'static Calendar {
    static FALLBACK: std::sync::OnceLock<Calendar> = std::sync::OnceLock::new();
    FALLBACK.get_or_init(Calendar::fallback)
}

/// Per-step facts computed once per query.
struct Snapshot {
    active: Vec<bool>,
}

impl Progress {
    pub fn new(playbook: &Playbook, opened_at: DateTime<Utc>) -> Progress {
        Progress {
            playbook: playbook.id.clone(),
            opened_at,
            steps: LiteMap::new(),
            school_due: LiteMap::new(),
        }
    }

    /// Counts the school-day limits whose clock has started (the case
    /// opened, or the step they count from is resolved) and that are not
    /// counted yet, on `calendar`: the calendar of the case's school, or
    /// [`Calendar::fallback`] when it has none. Says whether anything was
    /// added. The relay calls this whenever a checklist is created or
    /// changed, before storing it.
    pub fn count_school_days(&mut self, pb: &Playbook, calendar: &Calendar) -> bool {
        let mut added = false;
        for step in &pb.steps {
            let Some((from, days)) = self.school_clock(step) else {
                continue;
            };
            if self.stamp(step).is_some() {
                continue;
            }
            let Some(at) = calendar.school_days_due(from, days) else {
                continue;
            };
            self.school_due.insert(
                step.id.clone(),
                SchoolDue {
                    from,
                    days,
                    at,
                    calendar: calendar.school.clone(),
                },
            );
            added = true;
        }
        added
    }

    /// Whether some school-day limit has started and is not counted yet:
    /// then the relay must read the school's calendar and
    /// [`Progress::count_school_days`].
    pub fn needs_school_count(&self, pb: &Playbook) -> bool {
        pb.steps
            .iter()
            .any(|s| self.school_clock(s).is_some() && self.stamp(s).is_none())
    }

    /// When a school-day step's clock started and how many school days it
    /// runs; `None` for other steps or while the step it counts from is open.
    fn school_clock(&self, step: &Step) -> Option<(DateTime<Utc>, u32)> {
        let due = step.due.as_ref()?;
        let days = due.within.school_days()?;
        let from = match &due.after {
            Some(after) => self.resolved_at(after)?,
            None => self.opened_at,
        };
        Some((from, days))
    }

    /// The stamp of a school-day step, if it matches the step as it is now.
    fn stamp(&self, step: &Step) -> Option<&SchoolDue> {
        let (from, days) = self.school_clock(step)?;
        self.school_due
            .get(&step.id)
            .filter(|s| s.from == from && s.days == days)
    }

    /// For a school-day step whose clock has started: the school whose
    /// calendar counted its limit, or `Some(None)` when it was counted on
    /// Monday to Friday (no calendar) and is shown with
    /// [`super::model::weekdays_fallback_note`]. `None` for other steps.
    pub fn school_calendar(&self, pb: &Playbook, step: &str) -> Option<Option<&str>> {
        let step = pb.step(step)?;
        self.school_clock(step)?;
        Some(self.stamp(step).and_then(|s| s.calendar.as_deref()))
    }

    pub fn record(&self, step: &str) -> Option<&StepRecord> {
        self.steps.get(step)
    }

    pub fn outcome(&self, step: &str) -> Option<&Outcome> {
        self.steps.get(step).and_then(|r| r.outcome.as_ref())
    }

    fn resolved_at(&self, step: &str) -> Option<DateTime<Utc>> {
        self.outcome(step).map(|o| o.at)
    }

    fn chosen(&self, choice: &str) -> Option<&str> {
        match self.outcome(choice).map(|o| &o.how) {
            Some(Resolution::Chose { option }) => Some(option),
            _ => None,
        }
    }

    /// Whether a branch of `step` is switched on: its option was chosen,
    /// or, for a contact step, the person refused (`refused`) or every
    /// allowed call went unanswered with nobody reached (`not_reached`).
    fn branch_open(&self, step: &Step, branch: &str) -> bool {
        match &step.kind {
            StepKind::Choice { .. } => self.chosen(&step.id) == Some(branch),
            StepKind::Contact { max_attempts, .. } => {
                let outcome = self.outcome(&step.id).map(|o| &o.how);
                match branch {
                    CONTACT_REFUSED => matches!(outcome, Some(Resolution::Refused)),
                    CONTACT_NOT_REACHED => {
                        outcome.is_none()
                            && max_attempts.is_some_and(|max| self.failed_attempts(&step.id) >= max)
                    }
                    _ => false,
                }
            }
            _ => false,
        }
    }

    /// Which steps are active: a step is active when every step it needs is
    /// active and, if it sits in a branch, one of its branch options has been
    /// chosen. Computed as a fixed point from "nothing active" so that even
    /// a playbook that skipped the checker cannot loop forever: steps on a
    /// cycle simply stay inactive.
    fn snapshot(&self, pb: &Playbook) -> Snapshot {
        let index: BTreeMap<&str, usize> = pb
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.as_str(), i))
            .collect();
        // None: not in any branch; Some(open): in a branch, and whether one
        // of its options has been chosen. One pass over all branch edges
        // keeps this linear: "my steps" runs it for every open case.
        let mut gated: Vec<Option<bool>> = vec![None; pb.steps.len()];
        for choice in &pb.steps {
            for option in choice.kind.branches() {
                let open = self.branch_open(choice, option.id);
                for target in option.next {
                    if let Some(&t) = index.get(target.as_str()) {
                        gated[t] = Some(gated[t].unwrap_or(false) || open);
                    }
                }
            }
        }
        let mut active = vec![false; pb.steps.len()];
        loop {
            let mut changed = false;
            for (i, step) in pb.steps.iter().enumerate() {
                if active[i] || gated[i] == Some(false) {
                    continue;
                }
                let needs_active = step
                    .needs
                    .iter()
                    .all(|n| index.get(n.as_str()).is_some_and(|&j| active[j]));
                if needs_active {
                    active[i] = true;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        Snapshot { active }
    }

    fn state_in(&self, pb: &Playbook, snap: &Snapshot, i: usize) -> StepState {
        let step = &pb.steps[i];
        match self.outcome(&step.id) {
            Some(o) if o.is_skip() => StepState::Skipped,
            Some(_) => StepState::Done,
            None if !snap.active[i] => StepState::Inactive,
            None if step.needs.iter().any(|n| self.outcome(n).is_none()) => StepState::Blocked,
            None => StepState::Pending,
        }
    }

    fn due_in(&self, pb: &Playbook, snap: &Snapshot, i: usize) -> Option<DateTime<Utc>> {
        if !snap.active[i] {
            return None;
        }
        let step = &pb.steps[i];
        let due = step.due.as_ref()?;
        let base = match &due.after {
            Some(after) => self.resolved_at(after)?,
            None => self.opened_at,
        };
        match due.within {
            Limit::Wall(within) => base.checked_add_signed(within.to_chrono()),
            Limit::SchoolDays(days) => match self.stamp(step) {
                Some(stamp) => Some(stamp.at),
                None => fallback_calendar().school_days_due(base, days),
            },
        }
    }

    fn failed_attempts(&self, step: &str) -> u32 {
        self.record(step).map_or(0, |r| {
            let n = r
                .attempts
                .iter()
                .filter(|a| a.outcome == ContactOutcome::NoAnswer)
                .count();
            u32::try_from(n).unwrap_or(u32::MAX)
        })
    }

    fn view_in<'a>(
        &self,
        pb: &'a Playbook,
        snap: &Snapshot,
        i: usize,
        now: DateTime<Utc>,
    ) -> StepView<'a> {
        let step = &pb.steps[i];
        let state = self.state_in(pb, snap, i);
        let due = self.due_in(pb, snap, i);
        let failed = self.failed_attempts(&step.id);
        let (overdue, next_attempt_at) = if state.is_open() {
            let exhausted = match step.kind {
                StepKind::Contact {
                    max_attempts: Some(max),
                    ..
                } => failed >= max,
                _ => false,
            };
            let overdue = if due.is_some_and(|d| now > d) {
                Some(OverdueReason::PastDue)
            } else if exhausted {
                Some(OverdueReason::AttemptsExhausted)
            } else {
                None
            };
            let retry = match step.kind {
                StepKind::Contact {
                    retry_after: Some(wait),
                    ..
                } => self
                    .record(&step.id)
                    .and_then(|r| r.attempts.last())
                    .and_then(|last| last.at.checked_add_signed(wait.to_chrono())),
                _ => None,
            };
            (overdue, retry)
        } else {
            (None, None)
        };
        let waiting_on = if state == StepState::Blocked {
            step.needs
                .iter()
                .filter(|n| self.outcome(n).is_none())
                .map(String::as_str)
                .collect()
        } else {
            Vec::new()
        };
        StepView {
            step,
            state,
            due,
            overdue,
            failed_attempts: failed,
            next_attempt_at,
            waiting_on,
        }
    }

    /// Every step in playbook order: the case's checklist.
    pub fn view<'a>(&self, pb: &'a Playbook, now: DateTime<Utc>) -> Vec<StepView<'a>> {
        let snap = self.snapshot(pb);
        (0..pb.steps.len())
            .map(|i| self.view_in(pb, &snap, i, now))
            .collect()
    }

    pub fn state(&self, pb: &Playbook, step: &str) -> Option<StepState> {
        let i = pb.steps.iter().position(|s| s.id == step)?;
        Some(self.state_in(pb, &self.snapshot(pb), i))
    }

    /// The absolute due time: case opening (or the completion of the step
    /// named in `due_after`) plus the step's limit.
    pub fn due_at(&self, pb: &Playbook, step: &str) -> Option<DateTime<Utc>> {
        let i = pb.steps.iter().position(|s| s.id == step)?;
        self.due_in(pb, &self.snapshot(pb), i)
    }

    /// Open steps past their limit at `now`, soonest due first, each with
    /// the role to escalate to.
    pub fn overdue<'a>(&self, pb: &'a Playbook, now: DateTime<Utc>) -> Vec<Overdue<'a>> {
        let mut out: Vec<Overdue<'a>> = self
            .view(pb, now)
            .into_iter()
            .filter_map(|v| {
                Some(Overdue {
                    reason: v.overdue?,
                    due: v.due,
                    escalate_to: v.step.escalate_to,
                    step: v.step,
                })
            })
            .collect();
        out.sort_by_key(|o| o.due.unwrap_or(DateTime::<Utc>::MAX_UTC));
        out
    }

    /// "My steps": the open steps of `role`, the one to act on soonest
    /// first; steps with no time limit come last, in playbook order.
    pub fn steps_for<'a>(
        &self,
        pb: &'a Playbook,
        role: Role,
        now: DateTime<Utc>,
    ) -> Vec<StepView<'a>> {
        let mut mine: Vec<StepView<'a>> = self
            .view(pb, now)
            .into_iter()
            .filter(|v| v.step.may_act(role) && v.state.is_open())
            .collect();
        // Stable sort keeps playbook order among equal times.
        mine.sort_by_key(|v| v.act_by().unwrap_or(DateTime::<Utc>::MAX_UTC));
        mine
    }

    /// Required steps that are active and neither done nor skipped. These
    /// block closing the case; overriding that is a leader's decision the
    /// relay records.
    pub fn open_required<'a>(&self, pb: &'a Playbook) -> Vec<&'a Step> {
        let snap = self.snapshot(pb);
        pb.steps
            .iter()
            .enumerate()
            .filter(|(i, s)| s.required && self.state_in(pb, &snap, *i).is_open())
            .map(|(_, s)| s)
            .collect()
    }

    pub fn can_close(&self, pb: &Playbook) -> bool {
        self.open_required(pb).is_empty()
    }

    /// Why an inactive step is inactive, in words for the refusal.
    fn inactive_why(&self, pb: &Playbook, snap: &Snapshot, i: usize) -> String {
        let step = &pb.steps[i];
        let gates: Vec<(&Step, &str)> = pb
            .steps
            .iter()
            .flat_map(|s| {
                s.kind
                    .branches()
                    .into_iter()
                    .filter(|b| b.next.iter().any(|n| n == &step.id))
                    .map(move |b| (s, b.id))
            })
            .collect();
        if let Some((choice, _)) = gates.first() {
            let options = gates
                .iter()
                .map(|(_, o)| format!("`{o}`"))
                .collect::<Vec<_>>()
                .join(" or ");
            let status = match self.outcome(&choice.id).map(|o| &o.how) {
                Some(Resolution::Chose { option }) => format!("`{option}` was chosen"),
                Some(Resolution::Skipped { .. }) => "it was skipped".to_string(),
                Some(Resolution::Reached) => "the call reached them".to_string(),
                Some(Resolution::Refused) => "they refused".to_string(),
                _ => "it has not been answered yet".to_string(),
            };
            return format!("it follows {options} of `{}`, and {status}", choice.id);
        }
        let index: BTreeMap<&str, usize> = pb
            .steps
            .iter()
            .enumerate()
            .map(|(j, s)| (s.id.as_str(), j))
            .collect();
        match step
            .needs
            .iter()
            .find(|n| index.get(n.as_str()).is_some_and(|&j| !snap.active[j]))
        {
            Some(n) => format!("it needs `{n}`, which does not apply"),
            None => "it is not part of the chosen branches".to_string(),
        }
    }

    /// Applies one command. On refusal nothing changes.
    pub fn apply(
        &mut self,
        pb: &Playbook,
        step_id: &str,
        role: Role,
        now: DateTime<Utc>,
        action: &StepAction,
    ) -> Result<Change, Refusal> {
        if pb.id != self.playbook {
            return Err(Refusal::WrongPlaybook {
                progress: self.playbook.clone(),
                playbook: pb.id.clone(),
            });
        }
        let Some(i) = pb.steps.iter().position(|s| s.id == step_id) else {
            return Err(Refusal::UnknownStep {
                playbook: pb.id.clone(),
                step: step_id.to_string(),
            });
        };
        let step = &pb.steps[i];
        let sid = || step.id.clone();
        // A leader may skip any step: not every school has a nurse or a
        // security officer on duty, and the team leader is who decides a
        // step cannot be done. Everything else is the owning role's.
        let leader_skip = role == Role::Leader && matches!(action, StepAction::Skip { .. });
        if !step.may_act(role) && !leader_skip {
            return Err(Refusal::WrongRole {
                step: sid(),
                owner: step.role,
                actor: role,
            });
        }
        if let Some(o) = self.outcome(&step.id) {
            return Err(if o.is_skip() {
                Refusal::AlreadySkipped {
                    step: sid(),
                    by: o.by,
                    at: o.at,
                }
            } else {
                Refusal::AlreadyDone {
                    step: sid(),
                    by: o.by,
                    at: o.at,
                }
            });
        }
        let before = self.snapshot(pb);
        match self.state_in(pb, &before, i) {
            StepState::Inactive => {
                return Err(Refusal::InactiveBranch {
                    step: sid(),
                    why: self.inactive_why(pb, &before, i),
                });
            }
            StepState::Blocked => {
                return Err(Refusal::Blocked {
                    step: sid(),
                    waiting: step
                        .needs
                        .iter()
                        .filter(|n| self.outcome(n).is_none())
                        .cloned()
                        .collect(),
                });
            }
            _ => {}
        }

        let text = |what: &'static str, value: &str, max: usize| -> Result<String, Refusal> {
            let value = value.trim();
            if value.is_empty() {
                return Err(if what == "the reason" {
                    Refusal::ReasonRequired { step: sid() }
                } else {
                    Refusal::Empty { step: sid(), what }
                });
            }
            if value.chars().count() > max {
                return Err(Refusal::TooLong {
                    step: sid(),
                    what,
                    max,
                });
            }
            Ok(value.to_string())
        };
        let wrong_kind = |hint: &'static str| Refusal::WrongKind {
            step: sid(),
            kind: step.kind.name(),
            hint,
        };
        let hint = match step.kind {
            StepKind::Check => "mark it done",
            StepKind::Note => "write a note to complete it",
            StepKind::Choice { .. } => "choose one of its options",
            StepKind::Contact { .. } => "record a contact attempt and its outcome",
            StepKind::Referral => "record the institution and appointment time",
        };

        // Validate everything first, then mutate: a refusal must leave the
        // progress untouched.
        let (record_outcome, attempt, remark, effect) = match action {
            StepAction::Complete => {
                if !matches!(step.kind, StepKind::Check) {
                    return Err(wrong_kind(hint));
                }
                (Some(Resolution::Checked), None, None, Effect::Completed)
            }
            StepAction::Skip { reason } => {
                let reason = text("the reason", reason, MAX_TEXT_CHARS)?;
                (
                    Some(Resolution::Skipped {
                        reason: reason.clone(),
                    }),
                    None,
                    None,
                    Effect::Skipped { reason },
                )
            }
            StepAction::Note { text: note } => {
                let note = text("the note", note, MAX_TEXT_CHARS)?;
                if matches!(step.kind, StepKind::Note) {
                    (
                        Some(Resolution::Noted { text: note.clone() }),
                        None,
                        None,
                        Effect::Noted {
                            text: note,
                            completes: true,
                        },
                    )
                } else {
                    let remark = Remark {
                        at: now,
                        by: role,
                        text: note.clone(),
                    };
                    (
                        None,
                        None,
                        Some(remark),
                        Effect::Noted {
                            text: note,
                            completes: false,
                        },
                    )
                }
            }
            StepAction::Choose { option } => {
                let StepKind::Choice { options } = &step.kind else {
                    return Err(wrong_kind(hint));
                };
                let Some(chosen) = options.iter().find(|o| &o.id == option) else {
                    return Err(Refusal::UnknownOption {
                        step: sid(),
                        option: option.clone(),
                        expected: options.iter().map(|o| o.id.clone()).collect(),
                    });
                };
                (
                    Some(Resolution::Chose {
                        option: chosen.id.clone(),
                    }),
                    None,
                    None,
                    Effect::Chose {
                        option: chosen.id.clone(),
                        // Filled in below, once the new state is known.
                        activated: Vec::new(),
                    },
                )
            }
            StepAction::Contact { outcome, remark } => {
                if !matches!(step.kind, StepKind::Contact { .. }) {
                    return Err(wrong_kind(hint));
                }
                let remark = match remark.as_deref().map(str::trim) {
                    None | Some("") => None,
                    Some(r) => Some(text("the remark", r, MAX_TEXT_CHARS)?),
                };
                let tries = self.record(&step.id).map_or(0, |r| r.attempts.len());
                let attempt_no = u32::try_from(tries + 1).unwrap_or(u32::MAX);
                let done = match outcome {
                    ContactOutcome::Reached => Some(Resolution::Reached),
                    ContactOutcome::Refused => Some(Resolution::Refused),
                    ContactOutcome::NoAnswer => None,
                };
                (
                    done,
                    Some(Attempt {
                        at: now,
                        by: role,
                        outcome: *outcome,
                        remark: remark.clone(),
                    }),
                    None,
                    Effect::ContactAttempt {
                        outcome: *outcome,
                        attempt: attempt_no,
                        remark,
                    },
                )
            }
            StepAction::Referral {
                institution,
                appointment,
            } => {
                if !matches!(step.kind, StepKind::Referral) {
                    return Err(wrong_kind(hint));
                }
                let institution = text("the institution", institution, MAX_INSTITUTION_CHARS)?;
                (
                    Some(Resolution::Referred {
                        institution: institution.clone(),
                        appointment: *appointment,
                    }),
                    None,
                    None,
                    Effect::Referred {
                        institution,
                        appointment: *appointment,
                    },
                )
            }
        };

        let before_states: Vec<StepState> = (0..pb.steps.len())
            .map(|j| self.state_in(pb, &before, j))
            .collect();
        let record = self.steps.entry(step.id.clone()).or_default();
        if let Some(how) = record_outcome {
            record.outcome = Some(Outcome {
                at: now,
                by: role,
                how,
            });
        }
        record.attempts.extend(attempt);
        record.remarks.extend(remark);

        let after = self.snapshot(pb);
        let mut effect = effect;
        if let Effect::Chose { activated, .. } = &mut effect {
            *activated = (0..pb.steps.len())
                .filter(|&j| after.active[j] && !before.active[j])
                .map(|j| pb.steps[j].id.clone())
                .collect();
        }
        let now_ready = (0..pb.steps.len())
            .filter(|&j| {
                j != i
                    && before_states[j] != StepState::Pending
                    && self.state_in(pb, &after, j) == StepState::Pending
            })
            .map(|j| pb.steps[j].id.clone())
            .collect();
        Ok(Change {
            playbook: pb.id.clone(),
            step: step.id.clone(),
            by: role,
            at: now,
            effect,
            now_ready,
        })
    }

    pub fn complete(
        &mut self,
        pb: &Playbook,
        step: &str,
        role: Role,
        now: DateTime<Utc>,
    ) -> Result<Change, Refusal> {
        self.apply(pb, step, role, now, &StepAction::Complete)
    }

    pub fn skip(
        &mut self,
        pb: &Playbook,
        step: &str,
        role: Role,
        now: DateTime<Utc>,
        reason: &str,
    ) -> Result<Change, Refusal> {
        let reason = reason.to_string();
        self.apply(pb, step, role, now, &StepAction::Skip { reason })
    }

    pub fn note(
        &mut self,
        pb: &Playbook,
        step: &str,
        role: Role,
        now: DateTime<Utc>,
        text: &str,
    ) -> Result<Change, Refusal> {
        let text = text.to_string();
        self.apply(pb, step, role, now, &StepAction::Note { text })
    }

    pub fn choose(
        &mut self,
        pb: &Playbook,
        step: &str,
        role: Role,
        now: DateTime<Utc>,
        option: &str,
    ) -> Result<Change, Refusal> {
        let option = option.to_string();
        self.apply(pb, step, role, now, &StepAction::Choose { option })
    }

    pub fn contact(
        &mut self,
        pb: &Playbook,
        step: &str,
        role: Role,
        now: DateTime<Utc>,
        outcome: ContactOutcome,
    ) -> Result<Change, Refusal> {
        let action = StepAction::Contact {
            outcome,
            remark: None,
        };
        self.apply(pb, step, role, now, &action)
    }

    pub fn referral(
        &mut self,
        pb: &Playbook,
        step: &str,
        role: Role,
        now: DateTime<Utc>,
        institution: &str,
        appointment: DateTime<Utc>,
    ) -> Result<Change, Refusal> {
        let action = StepAction::Referral {
            institution: institution.to_string(),
            appointment,
        };
        self.apply(pb, step, role, now, &action)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use chrono::TimeDelta;

    use super::*;
    use crate::playbook::format;

    const FIXTURE: &str = include_str!("testdata/fixture.toml");

    fn fixture() -> Playbook {
        match format::parse(Path::new("fixture.toml"), FIXTURE) {
            Ok(pb) => pb,
            Err(d) => panic!("fixture does not check: {d:?}"),
        }
    }

    fn t(minutes: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_790_000_000, 0).unwrap_or_default()
            + TimeDelta::minutes(minutes)
    }

    fn ok<T>(r: Result<T, Refusal>) -> T {
        r.unwrap_or_else(|e| panic!("refused: {e}"))
    }

    fn states(p: &Progress, pb: &Playbook) -> Vec<(String, StepState)> {
        p.view(pb, t(0))
            .iter()
            .map(|v| (v.step.id.clone(), v.state))
            .collect()
    }

    /// Runs `f` and asserts that it was refused and changed nothing.
    fn refused(
        p: &mut Progress,
        f: impl FnOnce(&mut Progress) -> Result<Change, Refusal>,
    ) -> Refusal {
        let before = p.clone();
        let err = match f(p) {
            Ok(c) => panic!("accepted: {c:?}"),
            Err(e) => e,
        };
        assert_eq!(*p, before, "a refusal changed the progress");
        err
    }

    #[test]
    fn a_new_checklist_shows_what_can_start() {
        let pb = fixture();
        let p = Progress::new(&pb, t(0));
        use StepState::*;
        let expected = [
            ("stay", Pending),
            ("assess", Pending),
            ("level", Blocked),
            ("call", Inactive),
            ("plan", Inactive),
            ("after_plan", Inactive),
            ("refer", Blocked),
            ("optional", Pending),
        ];
        let expected: Vec<(String, StepState)> = expected
            .iter()
            .map(|(s, st)| (s.to_string(), *st))
            .collect();
        assert_eq!(states(&p, &pb), expected);
    }

    #[test]
    fn another_roles_step_is_refused() {
        let pb = fixture();
        let mut p = Progress::new(&pb, t(0));
        let e = refused(&mut p, |p| p.complete(&pb, "stay", Role::Counselor, t(1)));
        assert_eq!(
            e.to_string(),
            "step `stay` is for the head_teacher role; you are signed in as counselor"
        );
        assert_eq!(e.code(), "wrong_role");
        let e = refused(&mut p, |p| p.complete(&pb, "stay", Role::Reviewer, t(1)));
        assert_eq!(e.code(), "wrong_role");
    }

    #[test]
    fn unknown_step_and_wrong_playbook_are_refused() {
        let pb = fixture();
        let mut p = Progress::new(&pb, t(0));
        let e = refused(&mut p, |p| p.complete(&pb, "nope", Role::Counselor, t(1)));
        assert_eq!(e.to_string(), "playbook `fixture` has no step `nope`");
        let mut other = pb.clone();
        other.id = "other".into();
        let e = refused(&mut p, |p| {
            p.complete(&other, "stay", Role::HeadTeacher, t(1))
        });
        assert_eq!(e.code(), "wrong_playbook");
    }

    #[test]
    fn dependencies_must_be_done_first() {
        let pb = fixture();
        let mut p = Progress::new(&pb, t(0));
        let e = refused(&mut p, |p| {
            p.choose(&pb, "level", Role::Counselor, t(1), "low")
        });
        assert_eq!(e.to_string(), "step `level` waits for `assess`");
        let change = ok(p.note(
            &pb,
            "assess",
            Role::Counselor,
            t(2),
            "  thoughts, no plan  ",
        ));
        assert_eq!(
            change.effect,
            Effect::Noted {
                text: "thoughts, no plan".into(),
                completes: true
            }
        );
        assert_eq!(change.now_ready, ["level", "refer"]);
        assert_eq!(p.state(&pb, "level"), Some(StepState::Pending));
        ok(p.choose(&pb, "level", Role::Counselor, t(3), "low"));
    }

    #[test]
    fn a_skipped_dependency_unblocks_too() {
        let pb = fixture();
        let mut p = Progress::new(&pb, t(0));
        ok(p.skip(&pb, "assess", Role::Counselor, t(1), "assessed by hospital"));
        assert_eq!(p.state(&pb, "assess"), Some(StepState::Skipped));
        assert_eq!(p.state(&pb, "level"), Some(StepState::Pending));
    }

    #[test]
    fn choosing_a_branch_activates_only_its_steps() {
        let pb = fixture();
        let mut p = Progress::new(&pb, t(0));
        ok(p.note(&pb, "assess", Role::Counselor, t(1), "plan, no intent"));
        let change = ok(p.choose(&pb, "level", Role::Counselor, t(2), "mid"));
        assert_eq!(
            change.effect,
            Effect::Chose {
                option: "mid".into(),
                activated: vec!["plan".into(), "after_plan".into()],
            }
        );
        assert_eq!(p.state(&pb, "plan"), Some(StepState::Pending));
        // Inherits the branch through `needs`, and waits for it.
        assert_eq!(p.state(&pb, "after_plan"), Some(StepState::Blocked));
        assert_eq!(p.state(&pb, "call"), Some(StepState::Inactive));
        let e = refused(&mut p, |p| {
            p.contact(
                &pb,
                "call",
                Role::HeadTeacher,
                t(3),
                ContactOutcome::Reached,
            )
        });
        assert_eq!(
            e.to_string(),
            "step `call` does not apply: it follows `high` of `level`, and `mid` was chosen"
        );
        // A choice is final.
        let e = refused(&mut p, |p| {
            p.choose(&pb, "level", Role::Counselor, t(4), "high")
        });
        assert_eq!(e.code(), "already_done");
    }

    #[test]
    fn branch_steps_are_inactive_before_the_choice() {
        let pb = fixture();
        let mut p = Progress::new(&pb, t(0));
        let e = refused(&mut p, |p| p.note(&pb, "plan", Role::Counselor, t(1), "x"));
        assert_eq!(
            e.to_string(),
            "step `plan` does not apply: it follows `mid` or `high` of `level`, and it has not been answered yet"
        );
        let e = refused(&mut p, |p| p.complete(&pb, "after_plan", Role::Nurse, t(1)));
        assert_eq!(
            e.to_string(),
            "step `after_plan` does not apply: it needs `plan`, which does not apply"
        );
        // Skipping the choice leaves its branches off for good.
        ok(p.note(&pb, "assess", Role::Counselor, t(1), "seen"));
        ok(p.skip(&pb, "level", Role::Leader, t(2), "referred out"));
        let e = refused(&mut p, |p| p.note(&pb, "plan", Role::Counselor, t(3), "x"));
        assert!(e.to_string().ends_with("and it was skipped"), "{e}");
    }

    #[test]
    fn bad_options_kinds_and_texts_are_refused() {
        let pb = fixture();
        let mut p = Progress::new(&pb, t(0));
        ok(p.note(&pb, "assess", Role::Counselor, t(1), "seen"));
        let e = refused(&mut p, |p| {
            p.choose(&pb, "level", Role::Counselor, t(2), "severe")
        });
        assert_eq!(
            e.to_string(),
            "step `level` has no option `severe`; choose one of low, mid, high"
        );
        let e = refused(&mut p, |p| p.complete(&pb, "level", Role::Counselor, t(2)));
        assert_eq!(
            e.to_string(),
            "step `level` is a choice step: choose one of its options"
        );
        let e = refused(&mut p, |p| {
            p.note(&pb, "level", Role::Counselor, t(2), " \n ")
        });
        assert_eq!(e.code(), "empty_text");
        let e = refused(&mut p, |p| {
            p.skip(&pb, "level", Role::Counselor, t(2), "   ")
        });
        assert_eq!(e.to_string(), "skipping step `level` needs a reason");
        let long = "字".repeat(MAX_TEXT_CHARS + 1);
        let e = refused(&mut p, |p| {
            p.skip(&pb, "level", Role::Counselor, t(2), &long)
        });
        assert_eq!(e.code(), "text_too_long");
        let e = refused(&mut p, |p| {
            p.referral(&pb, "refer", Role::Counselor, t(2), "  ", t(60))
        });
        assert_eq!(e.code(), "empty_text");
    }

    #[test]
    fn done_steps_cannot_be_done_again() {
        let pb = fixture();
        let mut p = Progress::new(&pb, t(0));
        ok(p.complete(&pb, "stay", Role::HeadTeacher, t(1)));
        let e = refused(&mut p, |p| p.complete(&pb, "stay", Role::HeadTeacher, t(2)));
        assert!(
            e.to_string()
                .starts_with("step `stay` was already done by head_teacher at")
        );
        let e = refused(&mut p, |p| p.skip(&pb, "stay", Role::Leader, t(2), "dup"));
        assert_eq!(e.code(), "already_done");
    }

    #[test]
    fn leaders_may_skip_any_step_others_only_their_own() {
        let pb = fixture();
        let mut p = Progress::new(&pb, t(0));
        let e = refused(&mut p, |p| {
            p.skip(&pb, "optional", Role::Counselor, t(1), "n/a")
        });
        assert_eq!(e.code(), "wrong_role");
        let change = ok(p.skip(
            &pb,
            "optional",
            Role::Leader,
            t(1),
            "no nurse on duty today",
        ));
        assert_eq!(change.by, Role::Leader);
        // The override is for skipping only.
        let e = refused(&mut p, |p| p.complete(&pb, "stay", Role::Leader, t(2)));
        assert_eq!(e.code(), "wrong_role");
    }

    #[test]
    fn due_times_count_from_opening_or_from_the_step_before() {
        let pb = fixture();
        let mut p = Progress::new(&pb, t(0));
        assert_eq!(p.due_at(&pb, "stay"), Some(t(5)));
        assert_eq!(p.due_at(&pb, "refer"), Some(t(24 * 60)));
        // `level` counts from `assess`, which is not done yet.
        assert_eq!(p.due_at(&pb, "level"), None);
        assert_eq!(p.due_at(&pb, "after_plan"), None);
        ok(p.note(&pb, "assess", Role::Counselor, t(7), "seen"));
        assert_eq!(p.due_at(&pb, "level"), Some(t(17)));
        ok(p.choose(&pb, "level", Role::Counselor, t(12), "high"));
        assert_eq!(p.due_at(&pb, "plan"), Some(t(72)));
        assert_eq!(p.due_at(&pb, "call"), Some(t(42)));
    }

    #[test]
    fn overdue_means_open_and_strictly_past_due() {
        let pb = fixture();
        let mut p = Progress::new(&pb, t(0));
        let ids = |p: &Progress, now| -> Vec<(String, Option<Role>)> {
            p.overdue(&pb, now)
                .iter()
                .map(|o| (o.step.id.clone(), o.escalate_to))
                .collect()
        };
        assert!(ids(&p, t(5)).is_empty(), "due at 5m is not late at 5m");
        assert_eq!(ids(&p, t(6)), [("stay".to_string(), Some(Role::Leader))]);
        ok(p.complete(&pb, "stay", Role::HeadTeacher, t(6)));
        assert!(ids(&p, t(6)).is_empty());
        assert_eq!(
            ids(&p, t(61)),
            [
                ("assess".to_string(), Some(Role::Leader)),
                ("optional".to_string(), None)
            ]
        );
        // Branch steps never go overdue while inactive, however late.
        assert!(
            ids(&p, t(10_000))
                .iter()
                .all(|(s, _)| s != "plan" && s != "call")
        );
        let o = &p.overdue(&pb, t(61))[0];
        assert_eq!(o.reason, OverdueReason::PastDue);
        assert_eq!(o.due, Some(t(20)));
    }

    #[test]
    fn contact_attempts_count_until_reached() {
        let pb = fixture();
        let mut p = Progress::new(&pb, t(0));
        ok(p.note(&pb, "assess", Role::Counselor, t(1), "seen"));
        ok(p.choose(&pb, "level", Role::Counselor, t(2), "high"));
        let c = ok(p.apply(
            &pb,
            "call",
            Role::HeadTeacher,
            t(3),
            &StepAction::Contact {
                outcome: ContactOutcome::NoAnswer,
                remark: Some("mother's mobile off".into()),
            },
        ));
        assert_eq!(
            c.effect,
            Effect::ContactAttempt {
                outcome: ContactOutcome::NoAnswer,
                attempt: 1,
                remark: Some("mother's mobile off".into()),
            }
        );
        assert_eq!(p.state(&pb, "call"), Some(StepState::Pending));
        let view = p.steps_for(&pb, Role::HeadTeacher, t(4));
        let call = view.iter().find(|v| v.step.id == "call").expect("listed");
        assert_eq!(call.failed_attempts, 1);
        assert_eq!(call.next_attempt_at, Some(t(8)));
        assert_eq!(call.act_by(), Some(t(8)));
        assert!(p.overdue(&pb, t(4)).iter().all(|o| o.step.id != "call"));
        // Two unanswered calls exhaust max_attempts: escalate before the due.
        ok(p.contact(
            &pb,
            "call",
            Role::HeadTeacher,
            t(9),
            ContactOutcome::NoAnswer,
        ));
        let o = p.overdue(&pb, t(10));
        let call = o.iter().find(|o| o.step.id == "call").expect("escalated");
        assert_eq!(call.reason, OverdueReason::AttemptsExhausted);
        assert_eq!(call.escalate_to, Some(Role::Leader));
        // Attempts stay possible; reaching someone completes the step.
        let c = ok(p.contact(
            &pb,
            "call",
            Role::HeadTeacher,
            t(12),
            ContactOutcome::Reached,
        ));
        assert!(matches!(
            c.effect,
            Effect::ContactAttempt { attempt: 3, .. }
        ));
        assert_eq!(p.state(&pb, "call"), Some(StepState::Done));
        assert_eq!(p.record("call").map(|r| r.attempts.len()), Some(3));
        assert!(p.overdue(&pb, t(100)).iter().all(|o| o.step.id != "call"));
    }

    /// A guardian call behind a safeguarding gate, with a refusal path and
    /// an unreachable path, and a stay step any on-scene role may do.
    const SAFEGUARDING: &str = r#"
id = "sg"
version = 1
roles = ["head_teacher", "counselor", "leader", "security"]
title = { zh = "测试", en = "Test" }
summary = { zh = "测试", en = "Test" }
[[sources]]
id = "law"
name = "未成年人保护法"
[[steps]]
id = "stay"
role = "head_teacher"
also = ["security"]
title = { zh = "陪伴", en = "Stay" }
instruction = { zh = "陪伴", en = "Stay" }
[[steps]]
id = "gate"
role = "counselor"
kind = "choice"
safeguarding = true
title = { zh = "是否安全", en = "Safe?" }
instruction = { zh = "判断", en = "Judge" }
[[steps.options]]
id = "safe"
label = { zh = "安全", en = "Safe" }
next = ["call"]
[[steps.options]]
id = "source_of_harm"
unsafe = true
label = { zh = "监护人可能是伤害来源", en = "Guardian may be the source of harm" }
next = ["report"]
[[steps]]
id = "call"
role = "head_teacher"
kind = "contact"
contacts = "guardian"
max_attempts = 2
if_refused = ["hospital"]
if_unreached = ["other_contact"]
title = { zh = "联系监护人", en = "Call guardian" }
instruction = { zh = "拨打", en = "Call" }
[[steps]]
id = "hospital"
role = "leader"
due = "30m"
due_after = "call"
due_basis = "law"
required = true
escalate_to = "leader"
title = { zh = "送医", en = "Hospital" }
instruction = { zh = "送医", en = "Hospital" }
[[steps]]
id = "other_contact"
role = "head_teacher"
title = { zh = "其他联系人", en = "Other contact" }
instruction = { zh = "联系", en = "Call" }
[[steps]]
id = "report"
role = "leader"
kind = "note"
mandatory_report = true
required = true
due = "1h"
due_basis = "law"
escalate_to = "leader"
title = { zh = "强制报告", en = "Mandatory report" }
instruction = { zh = "报告", en = "Report" }
"#;

    const SCHOOL_DAYS: &str = r#"
id = "sd"
version = 1
roles = ["counselor", "leader"]
title = { zh = "上学日", en = "School days" }
summary = { zh = "上学日", en = "School days" }
[[sources]]
id = "moe"
name = "MOE"
[[steps]]
id = "meet"
role = "counselor"
kind = "note"
due = "1 school_day"
due_basis = "default"
required = true
escalate_to = "leader"
title = { zh = "会谈", en = "Meet" }
instruction = { zh = "会谈", en = "Meet" }
[[steps]]
id = "plan"
role = "counselor"
needs = ["meet"]
due = "3 school_days"
due_after = "meet"
due_basis = "moe"
required = true
escalate_to = "leader"
title = { zh = "计划", en = "Plan" }
instruction = { zh = "计划", en = "Plan" }
"#;

    /// `day`T`hm`:00 at +08:00.
    fn cst(day: &str, hm: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("{day}T{hm}:00+08:00"))
            .unwrap()
            .with_timezone(&Utc)
    }

    fn school_calendar() -> Calendar {
        Calendar::parse(include_str!("../../calendars/example.toml")).unwrap()
    }

    #[test]
    fn school_day_limits_are_counted_on_the_schools_calendar_once() {
        let pb = format::parse(Path::new("sd.toml"), SCHOOL_DAYS).unwrap();
        // Tuesday 29 September, before the National Day week.
        let mut p = Progress::new(&pb, cst("2026-09-29", "10:00"));
        // Not counted by the relay yet: Monday to Friday, so Wednesday.
        assert!(p.needs_school_count(&pb));
        assert_eq!(p.due_at(&pb, "meet"), Some(cst("2026-09-30", "18:00")));
        assert_eq!(p.school_calendar(&pb, "meet"), Some(None));
        assert!(p.count_school_days(&pb, &school_calendar()));
        assert!(!p.needs_school_count(&pb));
        assert!(
            !p.count_school_days(&pb, &school_calendar()),
            "counted once"
        );
        assert_eq!(p.due_at(&pb, "meet"), Some(cst("2026-09-30", "18:00")));
        assert_eq!(p.school_calendar(&pb, "meet"), Some(Some("示例一中")));
        // `plan` waits for `meet`; its clock has not started.
        assert_eq!(p.due_at(&pb, "plan"), None);
        assert_eq!(p.school_calendar(&pb, "plan"), None);
        // Met on the Wednesday evening: three school days from then skip
        // the holiday (1–7 October): Thu 8, Fri 9 and the make-up Sat 10.
        ok(p.note(
            &pb,
            "meet",
            Role::Counselor,
            cst("2026-09-30", "19:00"),
            "met",
        ));
        assert!(p.needs_school_count(&pb));
        assert_eq!(
            p.due_at(&pb, "plan"),
            Some(cst("2026-10-05", "18:00")),
            "uncounted: Mon–Fri, into the holiday"
        );
        p.count_school_days(&pb, &school_calendar());
        assert_eq!(p.due_at(&pb, "plan"), Some(cst("2026-10-10", "18:00")));
        assert!(p.overdue(&pb, cst("2026-10-07", "23:00")).is_empty());
        assert!(p.overdue(&pb, cst("2026-10-10", "18:00")).is_empty());
        let late = p.overdue(&pb, cst("2026-10-10", "18:01"));
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].step.id, "plan");
        // The count survives the wire (the console and reviews see it).
        let json = serde_json::to_string(&p).unwrap();
        let back: Progress = serde_json::from_str(&json).unwrap();
        assert_eq!(back.due_at(&pb, "plan"), Some(cst("2026-10-10", "18:00")));
    }

    #[test]
    fn a_stale_count_is_not_trusted() {
        let pb = format::parse(Path::new("sd.toml"), SCHOOL_DAYS).unwrap();
        let mut p = Progress::new(&pb, cst("2026-09-29", "10:00"));
        p.count_school_days(&pb, &school_calendar());
        // A newer playbook version gives `meet` two school days: the old
        // count is ignored, Monday to Friday answers until it is recounted.
        let longer = SCHOOL_DAYS.replacen("\"1 school_day\"", "\"2 school_days\"", 1);
        let pb2 = format::parse(Path::new("sd.toml"), &longer).unwrap();
        assert_eq!(p.due_at(&pb2, "meet"), Some(cst("2026-10-01", "18:00")));
        assert_eq!(p.school_calendar(&pb2, "meet"), Some(None));
        assert!(p.count_school_days(&pb2, &school_calendar()));
        assert_eq!(p.due_at(&pb2, "meet"), Some(cst("2026-10-08", "18:00")));
    }

    fn safeguarding() -> Playbook {
        match format::parse(Path::new("sg.toml"), SAFEGUARDING) {
            Ok(pb) => pb,
            Err(d) => panic!("{d:?}"),
        }
    }

    #[test]
    fn an_unsafe_gate_answer_drops_the_call_and_opens_the_report() {
        let pb = safeguarding();
        let mut p = Progress::new(&pb, t(0));
        assert_eq!(p.state(&pb, "call"), Some(StepState::Inactive));
        let c = ok(p.choose(&pb, "gate", Role::Counselor, t(1), "source_of_harm"));
        assert_eq!(
            c.effect,
            Effect::Chose {
                option: "source_of_harm".into(),
                activated: vec!["report".into()],
            }
        );
        assert_eq!(p.state(&pb, "call"), Some(StepState::Inactive));
        let why = refused_contact(
            &mut p,
            &pb,
            "call",
            Role::HeadTeacher,
            2,
            ContactOutcome::Reached,
        );
        assert!(why.contains("`source_of_harm` was chosen"), "{why}");
        assert_eq!(p.state(&pb, "report"), Some(StepState::Pending));
        assert_eq!(p.due_at(&pb, "report"), Some(t(60)));
        assert_eq!(
            p.open_required(&pb)
                .iter()
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>(),
            ["report"]
        );
    }

    fn refused_contact(
        p: &mut Progress,
        pb: &Playbook,
        step: &str,
        role: Role,
        at: i64,
        outcome: ContactOutcome,
    ) -> String {
        let before = p.clone();
        let r = p.contact(pb, step, role, t(at), outcome);
        assert_eq!(*p, before, "a refusal changes nothing");
        r.expect_err("refused").to_string()
    }

    #[test]
    fn a_refusal_is_not_a_missed_call_it_opens_the_refusal_path() {
        let pb = safeguarding();
        let mut p = Progress::new(&pb, t(0));
        ok(p.choose(&pb, "gate", Role::Counselor, t(1), "safe"));
        ok(p.contact(
            &pb,
            "call",
            Role::HeadTeacher,
            t(2),
            ContactOutcome::NoAnswer,
        ));
        let c = ok(p.contact(
            &pb,
            "call",
            Role::HeadTeacher,
            t(5),
            ContactOutcome::Refused,
        ));
        assert!(c.now_ready.contains(&"hospital".to_string()), "{c:?}");
        assert_eq!(p.state(&pb, "call"), Some(StepState::Done));
        assert_eq!(
            p.outcome("call").map(|o| &o.how),
            Some(&Resolution::Refused)
        );
        assert_eq!(p.state(&pb, "hospital"), Some(StepState::Pending));
        // Counted from the refusal.
        assert_eq!(p.due_at(&pb, "hospital"), Some(t(35)));
        // One unanswered call is not "unreachable".
        assert_eq!(p.state(&pb, "other_contact"), Some(StepState::Inactive));
        assert!(!p.can_close(&pb));
    }

    #[test]
    fn unanswered_calls_open_the_unreachable_path_until_someone_answers() {
        let pb = safeguarding();
        let mut p = Progress::new(&pb, t(0));
        ok(p.choose(&pb, "gate", Role::Counselor, t(1), "safe"));
        ok(p.contact(
            &pb,
            "call",
            Role::HeadTeacher,
            t(2),
            ContactOutcome::NoAnswer,
        ));
        assert_eq!(p.state(&pb, "other_contact"), Some(StepState::Inactive));
        let c = ok(p.contact(
            &pb,
            "call",
            Role::HeadTeacher,
            t(3),
            ContactOutcome::NoAnswer,
        ));
        assert_eq!(c.now_ready, ["other_contact"]);
        assert_eq!(p.state(&pb, "other_contact"), Some(StepState::Pending));
        assert_eq!(p.state(&pb, "hospital"), Some(StepState::Inactive));
        ok(p.contact(
            &pb,
            "call",
            Role::HeadTeacher,
            t(9),
            ContactOutcome::Reached,
        ));
        assert_eq!(p.state(&pb, "other_contact"), Some(StepState::Inactive));
        assert!(p.can_close(&pb));
    }

    #[test]
    fn an_on_scene_role_may_do_a_step_beside_its_owner() {
        let pb = safeguarding();
        let mut p = Progress::new(&pb, t(0));
        let mine: Vec<_> = p
            .steps_for(&pb, Role::Security, t(0))
            .iter()
            .map(|v| v.step.id.clone())
            .collect();
        assert_eq!(mine, ["stay"]);
        let before = p.clone();
        let err = p
            .complete(&pb, "stay", Role::Counselor, t(1))
            .expect_err("counselor is not listed");
        assert_eq!(err.code(), "wrong_role");
        assert_eq!(p, before);
        let c = ok(p.complete(&pb, "stay", Role::Security, t(1)));
        assert_eq!(c.by, Role::Security);
        let err = p
            .complete(&pb, "stay", Role::HeadTeacher, t(2))
            .expect_err("done once");
        assert_eq!(err.code(), "already_done");
    }

    #[test]
    fn notes_on_other_kinds_are_remarks() {
        let pb = fixture();
        let mut p = Progress::new(&pb, t(0));
        let c = ok(p.note(&pb, "stay", Role::HeadTeacher, t(1), "moved to room 204"));
        assert_eq!(
            c.effect,
            Effect::Noted {
                text: "moved to room 204".into(),
                completes: false
            }
        );
        assert_eq!(p.state(&pb, "stay"), Some(StepState::Pending));
        assert_eq!(p.record("stay").map(|r| r.remarks.len()), Some(1));
    }

    #[test]
    fn referral_records_institution_and_time() {
        let pb = fixture();
        let mut p = Progress::new(&pb, t(0));
        ok(p.note(&pb, "assess", Role::Counselor, t(1), "seen"));
        ok(p.referral(
            &pb,
            "refer",
            Role::Counselor,
            t(2),
            "市精神卫生中心",
            t(3000),
        ));
        assert_eq!(
            p.outcome("refer").map(|o| &o.how),
            Some(&Resolution::Referred {
                institution: "市精神卫生中心".into(),
                appointment: t(3000)
            })
        );
    }

    #[test]
    fn required_steps_block_closing_only_when_they_apply() {
        let pb = fixture();
        let mut p = Progress::new(&pb, t(0));
        let open = |p: &Progress| -> Vec<String> {
            p.open_required(&pb).iter().map(|s| s.id.clone()).collect()
        };
        assert_eq!(open(&p), ["stay", "assess", "level", "refer"]);
        ok(p.complete(&pb, "stay", Role::HeadTeacher, t(1)));
        ok(p.note(&pb, "assess", Role::Counselor, t(2), "seen"));
        ok(p.choose(&pb, "level", Role::Counselor, t(3), "mid"));
        // `plan` now applies; `call` (high only) never will.
        assert_eq!(open(&p), ["plan", "refer"]);
        ok(p.note(&pb, "plan", Role::Counselor, t(4), "six steps done"));
        assert!(!p.can_close(&pb));
        ok(p.skip(&pb, "refer", Role::Counselor, t(5), "already in treatment"));
        // Optional and not-yet-done optional steps do not block.
        assert!(p.can_close(&pb), "{:?}", open(&p));
    }

    #[test]
    fn my_steps_are_mine_open_and_soonest_first() {
        let pb = fixture();
        let mut p = Progress::new(&pb, t(0));
        let mine = |p: &Progress, role| -> Vec<String> {
            p.steps_for(&pb, role, t(0))
                .iter()
                .map(|v| v.step.id.clone())
                .collect()
        };
        // assess (20m) before refer (1d, blocked); level has no due yet.
        assert_eq!(mine(&p, Role::Counselor), ["assess", "refer", "level"]);
        assert_eq!(mine(&p, Role::Nurse), ["optional"]);
        ok(p.note(&pb, "assess", Role::Counselor, t(1), "seen"));
        assert_eq!(mine(&p, Role::Counselor), ["level", "refer"]);
        assert!(mine(&p, Role::Reviewer).is_empty());
    }

    #[test]
    fn progress_and_actions_round_trip_as_json() {
        let pb = fixture();
        let mut p = Progress::new(&pb, t(0));
        ok(p.note(&pb, "assess", Role::Counselor, t(1), "seen"));
        ok(p.choose(&pb, "level", Role::Counselor, t(2), "high"));
        ok(p.contact(
            &pb,
            "call",
            Role::HeadTeacher,
            t(3),
            ContactOutcome::NoAnswer,
        ));
        ok(p.skip(&pb, "optional", Role::Leader, t(4), "no nurse today"));
        let json = serde_json::to_string(&p).expect("serializes");
        let back: Progress = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, p);

        let action: StepAction =
            serde_json::from_str(r#"{"action": "choose", "option": "high"}"#).expect("parses");
        assert_eq!(
            action,
            StepAction::Choose {
                option: "high".into()
            }
        );
        let action: StepAction =
            serde_json::from_str(r#"{"action": "contact", "outcome": "no_answer"}"#)
                .expect("parses");
        assert_eq!(
            action,
            StepAction::Contact {
                outcome: ContactOutcome::NoAnswer,
                remark: None
            }
        );
        let change = ok(p.complete(&pb, "stay", Role::HeadTeacher, t(5)));
        let v = serde_json::to_value(&change).expect("serializes");
        assert_eq!(v["effect"], "completed");
        assert_eq!(v["step"], "stay");
        assert_eq!(v["by"], "head_teacher");
    }
}
