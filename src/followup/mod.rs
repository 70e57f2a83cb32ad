//! The follow-up phase (跟踪回访): school calendars, follow-up schedules,
//! check-ins, and the student's record across cases (一生一档). The wire
//! shapes here travel in `case_updated` events and `checkin` commands
//! (docs/protocol.md); the lifecycle rules are in [`crate::lifecycle`].

pub mod cadence;
pub mod calendar;
pub mod cli;
pub mod effect;
pub mod schedule;
pub mod student;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::lifecycle::{Grade, LevelChange, LevelProposal};
use crate::protocol::{Actor, Level, Role};

/// What a check-in found.
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
pub enum CheckinOutcome {
    /// Seen, and well.
    SeenWell,
    /// Seen, with a concern worth noting (may raise the level).
    Concern,
    /// Seen, and the case needs the acute response again.
    Escalate,
    /// Not reached (absent, no answer): counts as done, not as seen.
    NotReached,
}

impl CheckinOutcome {
    /// Every one, in declaration order.
    pub const ALL: &[CheckinOutcome] = <CheckinOutcome as strum::VariantArray>::VARIANTS;

    /// Whether this outcome may carry a raise of the level.
    pub fn may_raise(self) -> bool {
        matches!(self, CheckinOutcome::Concern | CheckinOutcome::Escalate)
    }
}
crate::protocol::wire_names!(CheckinOutcome);

/// Longest check-in note (as a step note).
pub const MAX_NOTE_CHARS: usize = crate::protocol::MAX_SUMMARY_CHARS;

/// One scheduled check-in and, once done, what it found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkin {
    /// `case id/number`, e.g. `C000012/3`.
    pub id: String,
    pub num: u32,
    pub role: Role,
    pub escalate_to: Role,
    pub due_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<CheckinOutcome>,
    /// Free text, kept like a step note: in the event, never in the audit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<Actor>,
}

impl Checkin {
    pub fn id_of(case_id: &str, num: u32) -> String {
        format!("{case_id}/{num}")
    }

    /// Done by its due time.
    pub fn on_time(&self) -> bool {
        self.done_at.is_some_and(|d| d <= self.due_at)
    }
}

/// A raise carried by a `concern` or `escalate` check-in: the new grade
/// and, optionally, a playbook to attach in the same command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Raise {
    pub level: Level,
    #[serde(default)]
    pub imminent: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playbook: Option<String>,
}

impl Raise {
    pub fn grade(&self) -> Grade {
        Grade {
            level: self.level,
            imminent: self.imminent,
        }
    }
}

/// What a `case_updated` event changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CaseChange {
    /// A lowering was proposed; it waits for another role.
    LevelProposed { proposal: LevelProposal },
    /// The level changed (a raise, or a confirmed lowering). When the case
    /// is in monitoring its open check-ins were re-planned for the new
    /// level: `planned` replaces them.
    LevelChanged {
        change: LevelChange,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        planned: Option<Vec<Checkin>>,
    },
    /// The case moved to monitoring with this schedule.
    Monitoring {
        planned: Vec<Checkin>,
        /// The school calendar the dates were counted on (`None`: the
        /// Mon–Fri fallback).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        calendar: Option<String>,
    },
    /// A closed case was re-opened.
    Reopened { reason: String },
    /// A check-in was recorded.
    CheckinRecorded { checkin: Checkin },
    /// A check-in passed its due time unrecorded; addressed to `to`.
    CheckinMissed { checkin: Checkin, to: Role },
}

/// One line for a review timeline or a student's record. Reasons are
/// shown made inert; check-in notes are left to the record that shows
/// notes, never summarised here.
pub fn describe(change: &CaseChange) -> String {
    use crate::text::inert;
    match change {
        CaseChange::LevelProposed { proposal } => format!(
            "proposed lowering {} → {}: {}",
            proposal.from.label(),
            proposal.to.label(),
            inert(&proposal.reason)
        ),
        CaseChange::LevelChanged { change, .. } => format!(
            "level {} → {}{}: {}",
            change.from.label(),
            change.to.label(),
            change
                .confirmed_by
                .as_ref()
                .map(|a| format!(" (confirmed by {} {})", inert(&a.name), a.role))
                .unwrap_or_default(),
            inert(&change.reason)
        ),
        CaseChange::Monitoring { planned, calendar } => format!(
            "monitoring: {} check-ins planned on {}",
            planned.len(),
            calendar.as_deref().map_or_else(
                || "the Mon–Fri fallback calendar".to_string(),
                |c| format!("the {} calendar", inert(c))
            )
        ),
        CaseChange::Reopened { reason } => format!("re-opened: {}", inert(reason)),
        CaseChange::CheckinRecorded { checkin } => format!(
            "check-in {} ({}): {}{}",
            checkin.num,
            checkin.role,
            checkin.outcome.map_or("recorded", CheckinOutcome::as_str),
            if checkin.on_time() { "" } else { " (late)" }
        ),
        CaseChange::CheckinMissed { checkin, to } => format!(
            "MISSED check-in {} ({}) — escalated to {to}",
            checkin.num, checkin.role
        ),
    }
}
