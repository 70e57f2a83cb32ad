//! The follow-ups view's filters and sort, like the list's: when a
//! check-in is due (overdue / today / this week), the school, "mine", and
//! the order within each heading. Also the bell for a missed check-in
//! addressed to my role, rung as an overdue step's escalation is.
//!
//! The view's rows stay grouped under their headings (overdue first); a
//! filter keeps some of them and the sort orders them within a heading.
//! Both work on the cached rows (`FollowupList`), never on every case:
//! with 40,000 students followed, a change is one pass over the rows and
//! a sort of the kept ones by a precomputed key (`benches/console.rs`,
//! `followups_40000/filter_change`).

use chrono::{DateTime, TimeDelta, Utc};

use super::action::Effect;
use super::app::App;
use super::cases::{CaseStore, EscalationView};
use super::followups::{Bucket, FollowupRow, SchoolIds};
use super::list::FollowupSort;
use crate::followup::CaseChange;
use crate::playbook::OverdueReason;
use crate::protocol::{Actor, CaseStatus};

/// Which headings are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum When {
    #[default]
    Any,
    Only(Bucket),
}

impl When {
    /// The next setting of `w`: all → overdue → today → this week → all.
    pub fn next(self) -> When {
        match self {
            When::Any => When::Only(Bucket::Overdue),
            When::Only(Bucket::Overdue) => When::Only(Bucket::Today),
            When::Only(Bucket::Today) => When::Only(Bucket::ThisWeek),
            When::Only(Bucket::ThisWeek) => When::Any,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FollowupFilter {
    pub when: When,
    /// Only check-ins of students of this school.
    pub school: Option<String>,
    /// Only cases I acknowledged or with an open step for my role (as the
    /// list's "mine").
    pub mine: bool,
}

impl FollowupFilter {
    pub fn is_active(&self) -> bool {
        *self != FollowupFilter::default()
    }
}

/// The rows `filter` keeps, ordered by `sort` within their headings.
/// `rows` are in the view's base order (heading, due time). Only "mine"
/// looks at the cases; the school and the level are on the rows.
pub fn shown(
    rows: &[FollowupRow],
    cases: &CaseStore,
    schools: &SchoolIds,
    me: Option<&Actor>,
    filter: &FollowupFilter,
    sort: FollowupSort,
) -> Vec<FollowupRow> {
    // A school no row has keeps nothing.
    let school = filter
        .school
        .as_deref()
        .map(|name| schools.find(name).unwrap_or(u32::MAX));
    let kept: Vec<FollowupRow> = rows
        .iter()
        .filter(|r| match filter.when {
            When::Any => true,
            When::Only(b) => r.bucket == b,
        })
        .filter(|r| school.is_none_or(|s| r.school == s))
        .filter(|r| !filter.mine || cases.at(r.slot).is_mine(me))
        .copied()
        .collect();
    // The rows are already in heading and due order, and ranks are few
    // (four levels, a few hundred schools): a stable counting sort by
    // (heading, rank) keeps due order within each and costs two passes.
    // Each row's rank: its level's, or its school's place in name order.
    let school_place: Option<Vec<usize>> = match sort {
        FollowupSort::Due => return kept,
        FollowupSort::Level => None,
        FollowupSort::School => {
            // Each school's place in name order, once per key (a few
            // hundred names), then a table look-up per row.
            let mut by_name: Vec<u32> = (0..schools.len() as u32).collect();
            by_name.sort_unstable_by_key(|i| schools.name(*i));
            let mut place = vec![0usize; schools.len()];
            for (at, i) in by_name.iter().enumerate() {
                place[*i as usize] = at;
            }
            Some(place)
        }
    };
    let ranks = school_place.as_ref().map_or(4, |p| p.len().max(1));
    let rank = |r: &FollowupRow| match &school_place {
        Some(place) => place.get(r.school as usize).copied().unwrap_or(0),
        None => usize::from(r.level.min(3)),
    };
    let place = |r: &FollowupRow| r.bucket as usize * ranks + rank(r);
    let mut next = vec![0usize; 3 * ranks];
    for r in &kept {
        next[place(r)] += 1;
    }
    let mut at = 0;
    for n in next.iter_mut() {
        let count = *n;
        *n = at;
        at += count;
    }
    let mut out = kept.clone();
    for r in &kept {
        let p = place(r);
        out[next[p]] = *r;
        next[p] += 1;
    }
    out
}

/// The school after `current` in name order among the rows' students;
/// after the last, none. One pass over the rows' school numbers.
pub fn next_school(
    rows: &[FollowupRow],
    schools: &SchoolIds,
    current: Option<&str>,
) -> Option<String> {
    let mut present = vec![false; schools.len()];
    for r in rows {
        if let Some(p) = present.get_mut(r.school as usize) {
            *p = true;
        }
    }
    present
        .iter()
        .enumerate()
        .filter(|(_, p)| **p)
        .map(|(i, _)| schools.name(i as u32))
        // No school named: not a school to filter by.
        .filter(|s| !s.is_empty())
        .filter(|s| current.is_none_or(|cur| *s > cur))
        .min()
        .map(str::to_string)
}

/// After one missed check-in rings, later ones within this long only add
/// to the banner's count (a morning's missed check-ins arrive together).
const MISSED_ALARM_QUIET: TimeDelta = TimeDelta::seconds(30);

impl App {
    /// A check-in missed and addressed to my role: the escalation banner
    /// lists it (`e` dismisses), and the bell and a desktop notification
    /// call once per storm, as for an overdue step. History replayed on
    /// connect is listed but does not ring.
    pub(super) fn missed_checkin_alarm(
        &mut self,
        case_id: &str,
        change: &CaseChange,
        live: bool,
        seq: i64,
        at: DateTime<Utc>,
    ) -> Vec<Effect> {
        let CaseChange::CheckinMissed { checkin, to } = change else {
            return Vec::new();
        };
        let mine = self.me.as_ref().is_some_and(|m| m.role == *to);
        let open = self
            .cases
            .get(case_id)
            .is_some_and(|c| c.case.status != CaseStatus::Closed);
        if !mine || !open {
            return Vec::new();
        }
        self.alarms.note_escalation(
            case_id,
            EscalationView {
                seq,
                at,
                // No playbook: the banner shows the step's text as given.
                playbook: String::new(),
                step: self.strings.checkin_number(checkin.num),
                to: *to,
                owner: checkin.role,
                reason: OverdueReason::PastDue,
            },
        );
        let quiet = self
            .followups
            .last_missed_alarm
            .is_none_or(|last| at.signed_duration_since(last) >= MISSED_ALARM_QUIET);
        if !live || !quiet {
            return Vec::new();
        }
        self.followups.last_missed_alarm = Some(at);
        let mut effects = Vec::new();
        if self.alert_prefs.bell {
            effects.push(Effect::Bell);
        }
        if self.alert_prefs.desktop
            && let Some(note) = self.desktop_note(case_id, true)
        {
            effects.push(Effect::Notify(note));
        }
        effects
    }
}
