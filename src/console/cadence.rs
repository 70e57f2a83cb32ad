//! The 三个一 cadence kept up to date by the stream (docs/followup.md §8).
//!
//! The relay counts this month's 特别关注 review when a console connects:
//! the session's `followup_cadence`, which holds every event up to the
//! session's `latest_seq`. Every later event that touches a student moves
//! the figures by the difference it makes to that one student — on the
//! review list or not (an open real case at `key` or `high`, or imminent),
//! still due or not (a check-in recorded since the month began, school
//! time) — so a level change, a case opening, closing or re-opening, or a
//! check-in shows at once, without recounting 40,000 cases per event and
//! without asking the relay. The console has every event from seq 1, so
//! it knows each student's cases and last check-in. When the month turns,
//! every student on the list is due again except those already seen in
//! the new month.

use chrono::{DateTime, NaiveDate, Utc};

use super::cases::{CaseStore, CaseView};
use crate::followup::cadence::{self, Cadence};
use crate::followup::calendar::Calendar;
use crate::protocol::{AlertStatus, CaseStatus, EventBody, Level};

/// A student as the relay's count sees them (`followup_cadence` in the
/// stores): on the list when a case of theirs is open, real, and at key
/// or high or imminent; due when on the list and not reviewed this month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Standing {
    pub listed: bool,
    pub due: bool,
}

/// What the relay counted and how far, and the month it is for.
#[derive(Debug, Default)]
pub struct CadenceFigures {
    /// The figures as shown: the relay's count, moved by the events since.
    pub shown: Option<Cadence>,
    /// Events up to this seq are in the relay's count already.
    counted_through: i64,
    /// The first instant of `shown.month`, school time.
    month_start: Option<DateTime<Utc>>,
}

impl CadenceFigures {
    /// A new count from the relay (a new connection); `None` (a role that
    /// gets none, a store that could not count) keeps the last one, still
    /// kept up to date by the events.
    pub fn counted(&mut self, cadence: Option<Cadence>, latest_seq: i64) {
        let Some(cadence) = cadence else { return };
        self.month_start = month_start_of(&cadence.month);
        self.shown = Some(cadence);
        self.counted_through = latest_seq;
    }

    /// A reset history: these figures were of another one.
    pub fn clear(&mut self) {
        *self = CadenceFigures::default();
    }

    /// Whether an event at `seq` is news to the relay's count.
    fn counts(&self, seq: i64) -> bool {
        self.shown.is_some() && seq > self.counted_through
    }
}

/// `2026-12` → 2026-12-01 00:00 at the fallback calendar's offset (+08:00),
/// the month start the relay counts from.
fn month_start_of(month: &str) -> Option<DateTime<Utc>> {
    let first = NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").ok()?;
    let (start, _) = cadence::month_start(
        first.and_hms_opt(12, 0, 0)?.and_utc(),
        &Calendar::fallback(),
    );
    Some(start)
}

/// Under 特别关注, as the relay's count has it: open, real, key or higher
/// or imminent.
fn under_special_attention(c: &CaseView) -> bool {
    c.case.status != CaseStatus::Closed
        && c.case.alert_status == AlertStatus::Actual
        && (matches!(c.case.level, Level::Key | Level::High) || c.case.imminent)
}

/// The student an event may move on the review list: the student of the
/// case it carries.
fn touched_student(body: &EventBody) -> Option<&str> {
    match body {
        EventBody::Alert { case, .. }
        | EventBody::CaseUpdated { case, .. }
        | EventBody::CaseClosed { case, .. } => Some(&case.student_id),
        _ => None,
    }
}

/// `n` after one student joins or leaves.
fn shift(n: u32, was: bool, is: bool) -> u32 {
    match (was, is) {
        (false, true) => n.saturating_add(1),
        (true, false) => n.saturating_sub(1),
        _ => n,
    }
}

/// Where `student` stands now, for the month starting at `month_start`.
fn standing(cases: &CaseStore, student: &str, month_start: Option<DateTime<Utc>>) -> Standing {
    let Some(entry) = cases.student(student) else {
        return Standing::default();
    };
    let listed = entry
        .slots
        .iter()
        .any(|s| under_special_attention(cases.at(*s)));
    let reviewed = entry
        .reviewed_at
        .zip(month_start)
        .is_some_and(|(at, start)| at >= start);
    Standing {
        listed,
        due: listed && !reviewed,
    }
}

impl CadenceFigures {
    /// Before an event at `seq` is applied: where its student stands, if
    /// the event is news to the relay's count.
    pub fn before(
        &self,
        cases: &CaseStore,
        seq: i64,
        body: &EventBody,
    ) -> Option<(String, Standing)> {
        if !self.counts(seq) {
            return None;
        }
        let student = touched_student(body)?;
        Some((
            student.to_string(),
            standing(cases, student, self.month_start),
        ))
    }

    /// After the event: the figures move by the student's difference.
    pub fn after(&mut self, cases: &CaseStore, before: Option<(String, Standing)>) {
        let Some((student, before)) = before else {
            return;
        };
        let after = standing(cases, &student, self.month_start);
        if let Some(shown) = self.shown.as_mut() {
            shown.review_students = shift(shown.review_students, before.listed, after.listed);
            shown.review_due = shift(shown.review_due, before.due, after.due);
        }
    }

    /// A new month (school time) by this console's clock: everyone on the
    /// list is due again, except those already seen since it began.
    pub fn tick(&mut self, cases: &CaseStore, now: DateTime<Utc>) {
        let Some(shown) = self.shown.as_ref() else {
            return;
        };
        let (start, month) = cadence::month_start(now, &Calendar::fallback());
        // "YYYY-MM" orders as the months do; a console whose clock is
        // behind the relay's never turns the month back.
        if month <= shown.month {
            return;
        }
        let reviewed = cases
            .students()
            .map(|(id, _)| id)
            .filter(|s| {
                let st = standing(cases, s, Some(start));
                st.listed && !st.due
            })
            .count();
        self.month_start = Some(start);
        if let Some(shown) = self.shown.as_mut() {
            shown.month = month;
            shown.review_due = shown
                .review_students
                .saturating_sub(u32::try_from(reviewed).unwrap_or(u32::MAX));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_starts_at_midnight_school_time() {
        let start = month_start_of("2026-12").unwrap();
        assert_eq!(start.to_rfc3339(), "2026-11-30T16:00:00+00:00");
        assert_eq!(month_start_of("December"), None);
    }

    #[test]
    fn a_student_moves_a_figure_by_one_at_most() {
        assert_eq!(shift(5, false, true), 6);
        assert_eq!(shift(5, true, false), 4);
        assert_eq!(shift(5, true, true), 5);
        assert_eq!(shift(0, true, false), 0);
    }
}
