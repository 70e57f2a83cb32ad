//! The follow-ups view's filters and sort, like the list's: when a
//! check-in is due (overdue / today / this week), the school, "mine", and
//! the order within each heading.
//!
//! The view's rows stay grouped under their headings (overdue first); a
//! filter keeps some of them and the sort orders them within a heading.
//! Both work on the cached rows (`FollowupList`), never on every case:
//! with 40,000 students followed, a change is one pass over the rows and
//! a sort of the kept ones by a precomputed key (`benches/console.rs`,
//! `followups_40000/filter_change`).

use super::cases::CaseStore;
use super::followup_rows::{Bucket, FollowupRow, SchoolIds};
use super::list::FollowupSort;
use crate::protocol::Actor;

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
