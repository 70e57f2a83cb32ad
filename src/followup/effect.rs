//! How well follow-up works, as the period report shows it: 干预有效率
//! (intervention effectiveness) and the follow-up on-time rate. Pure over
//! facts the report loads; definitions in docs/followup.md.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::Checkin;
use crate::lifecycle::Grade;
use crate::protocol::{CloseOutcome, Event, EventBody, Level};

/// How long a lowered level must hold for the intervention to count as
/// effective.
pub const STAYS_DOWN: Duration = Duration::weeks(8);

/// What the report knows of one case for these figures.
#[derive(Debug, Clone, Default)]
pub struct CaseFacts {
    pub opened_at: Option<DateTime<Utc>>,
    /// The worst grade the case reached.
    pub peak: Option<Grade>,
    /// Moments the case went down: a confirmed lowering, or a close as
    /// stabilized or no risk.
    pub downs: Vec<DateTime<Utc>>,
    /// Moments it went back up: a raise (command or alert) or a re-open.
    pub ups: Vec<DateTime<Utc>>,
    /// When the same student's next case opened, if one did.
    pub next_case_at: Option<DateTime<Utc>>,
    pub checkins: Vec<Checkin>,
}

impl CaseFacts {
    /// Reads the downs and ups out of a case's events.
    pub fn from_events(events: &[Event]) -> CaseFacts {
        let mut facts = CaseFacts::default();
        let mut grade: Option<Grade> = None;
        let raise_to = |facts: &mut CaseFacts, grade: &mut Option<Grade>, to: Grade, at| {
            if let Some(before) = *grade
                && to != before
                && to.covers(before)
            {
                facts.ups.push(at);
            }
            *grade = Some(to);
            let peak = facts.peak.get_or_insert(to);
            *peak = Grade {
                level: peak.level.max(to.level),
                imminent: peak.imminent || to.imminent,
            };
        };
        for event in events {
            match &event.body {
                EventBody::Alert { case, opened, .. } => {
                    if *opened {
                        facts.opened_at = Some(event.at);
                    }
                    raise_to(&mut facts, &mut grade, Grade::of(case), event.at);
                }
                EventBody::CaseClosed { outcome, .. } => {
                    if matches!(outcome, CloseOutcome::Stabilized | CloseOutcome::NoRisk) {
                        facts.downs.push(event.at);
                    }
                }
                EventBody::CaseUpdated { change, case, .. } => match change {
                    super::CaseChange::LevelChanged { change, .. } => {
                        if change.to.covers(change.from) {
                            raise_to(&mut facts, &mut grade, Grade::of(case), event.at);
                        } else {
                            facts.downs.push(event.at);
                            grade = Some(Grade::of(case));
                        }
                    }
                    super::CaseChange::Reopened { .. } => facts.ups.push(event.at),
                    _ => {}
                },
                _ => {}
            }
        }
        facts
    }
}

/// One case's 干预有效率 verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Went down and stayed down for [`STAYS_DOWN`].
    Effective,
    /// Went back up within the window, or never went down in its first
    /// [`STAYS_DOWN`].
    NotEffective,
    /// Too early to tell as of the report.
    Pending,
    /// A general-level case with nothing to lower: not counted.
    NotCounted,
}

pub fn effect(facts: &CaseFacts, as_of: DateTime<Utc>) -> Effect {
    let Some(peak) = facts.peak else {
        return Effect::NotCounted;
    };
    if peak.level == Level::General && !peak.imminent {
        return Effect::NotCounted;
    }
    let Some(down) = facts.downs.iter().copied().filter(|d| *d <= as_of).min() else {
        return match facts.opened_at {
            Some(opened) if opened + STAYS_DOWN <= as_of => Effect::NotEffective,
            _ => Effect::Pending,
        };
    };
    let end = down + STAYS_DOWN;
    let back_up = facts
        .ups
        .iter()
        .chain(facts.next_case_at.iter())
        .any(|t| *t > down && *t <= end.min(as_of));
    if back_up {
        Effect::NotEffective
    } else if end <= as_of {
        Effect::Effective
    } else {
        Effect::Pending
    }
}

/// Check-in figures as of a moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckinCounts {
    /// Recorded by `as_of` (on time or late).
    pub done: usize,
    /// Due by `as_of` and not recorded by then.
    pub overdue: usize,
    /// Not yet due and not recorded.
    pub open: usize,
    /// Due by `as_of` (the on-time rate's denominator).
    pub due: usize,
    /// Due by `as_of` and recorded by their due time.
    pub on_time: usize,
}

pub fn checkin_counts<'a>(
    checkins: impl IntoIterator<Item = &'a Checkin>,
    as_of: DateTime<Utc>,
) -> CheckinCounts {
    let mut c = CheckinCounts::default();
    for k in checkins {
        let done = k.done_at.filter(|d| *d <= as_of);
        match (done, k.due_at <= as_of) {
            (Some(_), _) => c.done += 1,
            (None, true) => c.overdue += 1,
            (None, false) => c.open += 1,
        }
        if k.due_at <= as_of {
            c.due += 1;
            c.on_time += usize::from(done.is_some_and(|d| d <= k.due_at));
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Role;

    fn day(n: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::days(n)
    }

    fn high_case() -> CaseFacts {
        CaseFacts {
            opened_at: Some(day(0)),
            peak: Some(Grade {
                level: Level::High,
                imminent: false,
            }),
            ..CaseFacts::default()
        }
    }

    #[test]
    fn a_lowering_that_holds_eight_weeks_is_effective() {
        let mut c = high_case();
        c.downs.push(day(10));
        assert_eq!(effect(&c, day(10 + 55)), Effect::Pending);
        assert_eq!(effect(&c, day(10 + 56)), Effect::Effective);
        c.ups.push(day(30));
        assert_eq!(
            effect(&c, day(100)),
            Effect::NotEffective,
            "raised again within the window"
        );
        let mut later = high_case();
        later.downs.push(day(10));
        later.ups.push(day(80));
        assert_eq!(
            effect(&later, day(100)),
            Effect::Effective,
            "a raise after the window does not undo it"
        );
        later.next_case_at = Some(day(20));
        assert_eq!(
            effect(&later, day(100)),
            Effect::NotEffective,
            "a new case for the student counts as back up"
        );
    }

    #[test]
    fn never_lowered_in_eight_weeks_is_not_effective_and_general_is_not_counted() {
        let c = high_case();
        assert_eq!(effect(&c, day(30)), Effect::Pending);
        assert_eq!(effect(&c, day(56)), Effect::NotEffective);
        let mut g = high_case();
        g.peak = Some(Grade {
            level: Level::General,
            imminent: false,
        });
        assert_eq!(effect(&g, day(100)), Effect::NotCounted);
    }

    #[test]
    fn check_ins_count_as_of_the_report() {
        let k = |due: i64, done: Option<i64>| Checkin {
            id: "C1/1".into(),
            num: 1,
            role: Role::HeadTeacher,
            escalate_to: Role::Counselor,
            due_at: day(due),
            done_at: done.map(day),
            outcome: None,
            note: None,
            by: None,
        };
        let all = [
            k(1, Some(1)),
            k(2, Some(3)),
            k(3, None),
            k(10, None),
            k(4, Some(20)),
        ];
        let c = checkin_counts(&all, day(5));
        assert_eq!(
            c,
            CheckinCounts {
                done: 2,
                overdue: 2,
                open: 1,
                due: 4,
                on_time: 1
            }
        );
    }
}
