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

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};

use super::app::{App, CaseStore, Effect, EscalationView};
use super::followups::{Bucket, FollowupRow};
use crate::followup::CaseChange;
use crate::playbook::OverdueReason;
use crate::protocol::{Actor, CaseStatus, Level};

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

/// The order within a heading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FollowupSort {
    /// Soonest due first (the default).
    #[default]
    Due,
    /// Imminent, then high, key, general; soonest due first within.
    Level,
    /// By school name, then soonest due.
    School,
}

impl FollowupSort {
    pub fn next(self) -> FollowupSort {
        match self {
            FollowupSort::Due => FollowupSort::Level,
            FollowupSort::Level => FollowupSort::School,
            FollowupSort::School => FollowupSort::Due,
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
/// `rows` are in the view's base order (heading, due time).
pub fn shown(
    rows: &[FollowupRow],
    cases: &CaseStore,
    me: Option<&Actor>,
    filter: &FollowupFilter,
    sort: FollowupSort,
) -> Vec<FollowupRow> {
    let school = filter.school.as_deref();
    let kept: Vec<FollowupRow> = rows
        .iter()
        .filter(|r| match filter.when {
            When::Any => true,
            When::Only(b) => r.bucket == b,
        })
        .filter(|r| {
            if school.is_none() && !filter.mine {
                return true;
            }
            let c = cases.at(r.slot);
            school.is_none_or(|s| c.student.school.as_deref() == Some(s))
                && (!filter.mine || c.is_mine(me))
        })
        .copied()
        .collect();
    // One small rank per row for the sort (below).
    let rank: Vec<u32> = match sort {
        // The base order already is by heading, then due time.
        FollowupSort::Due => return kept,
        FollowupSort::Level => {
            // Per case once, walking the slab in order (40,000 looks), then
            // per row from that table: not 150,000 jumps into the cases.
            let by_slot: Vec<u8> = cases
                .iter()
                .map(|(_, c)| {
                    if c.case.imminent {
                        0
                    } else {
                        match c.case.level {
                            Level::High => 1,
                            Level::Key => 2,
                            Level::General => 3,
                        }
                    }
                })
                .collect();
            kept.iter()
                .map(|r| u32::from(by_slot.get(r.slot as usize).copied().unwrap_or(3)))
                .collect()
        }
        FollowupSort::School => {
            // Name each school once: a few hundred names, not a sort of
            // 150,000 strings.
            let mut index: HashMap<&str, u32> = HashMap::new();
            let mut names: Vec<&str> = Vec::new();
            // Per case once, in slab order, as for the level.
            let by_slot: Vec<u32> = cases
                .iter()
                .map(|(_, c)| {
                    let name = c.student.school.as_deref().unwrap_or("");
                    *index.entry(name).or_insert_with(|| {
                        names.push(name);
                        (names.len() - 1) as u32
                    })
                })
                .collect();
            let first_seen: Vec<u32> = kept
                .iter()
                .map(|r| by_slot.get(r.slot as usize).copied().unwrap_or(0))
                .collect();
            let mut by_name: Vec<u32> = (0..names.len() as u32).collect();
            by_name.sort_unstable_by_key(|i| names[*i as usize]);
            let mut place = vec![0u32; names.len()];
            for (rank, i) in by_name.iter().enumerate() {
                place[*i as usize] = rank as u32;
            }
            first_seen.iter().map(|i| place[*i as usize]).collect()
        }
    };
    // The rows are already in heading and due order, and ranks are few
    // (four levels, a few hundred schools): a stable counting sort by
    // (heading, rank) keeps due order within each and costs two passes.
    let ranks = rank.iter().max().map_or(1, |m| *m as usize + 1);
    let place = |r: &FollowupRow, k: u32| r.bucket as usize * ranks + k as usize;
    let mut next = vec![0usize; 3 * ranks];
    for (r, k) in kept.iter().zip(&rank) {
        next[place(r, *k)] += 1;
    }
    let mut at = 0;
    for n in next.iter_mut() {
        let count = *n;
        *n = at;
        at += count;
    }
    let mut out = kept.clone();
    for (r, k) in kept.iter().zip(&rank) {
        let p = place(r, *k);
        out[next[p]] = *r;
        next[p] += 1;
    }
    out
}

/// The school after `current` in name order among the rows' students;
/// after the last, none.
pub fn next_school(
    rows: &[FollowupRow],
    cases: &CaseStore,
    current: Option<&str>,
) -> Option<String> {
    rows.iter()
        .filter_map(|r| cases.at(r.slot).student.school.as_deref())
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
        self.unseen_escalations.push((
            case_id.to_string(),
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
        ));
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
