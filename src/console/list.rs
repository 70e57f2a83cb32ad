//! Derived rows kept up to date as cases change, never rebuilt per frame:
//! the case list ([`ListIndex`]: sorted, filtered, counted) and "my steps", every open step for my role across all open cases, soonest
//! first. At 40,000 cases a rebuild walks every checklist, so the index is
//! changed case by case (the live stream) and rebuilt only when most of it
//! changes at once (a replay, a new session). See `benches/console.rs`.

use chrono::{DateTime, Utc};

use super::cases::{CaseStore, CaseView, Slot};
use crate::protocol::{Actor, CaseStatus, Category, Level, Role};

/// Past this many changed cases in one batch, rebuilding the whole index
/// is cheaper than moving each one.
pub const REBUILD_ABOVE: usize = 64;

/// One open step of one case, as its place in "my steps": soonest due
/// first, steps with no deadline after every dated one; ties in the list's
/// urgency order (imminent, level, oldest), then in checklist order. 24
/// bytes: a district has over 100,000 of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MyStepKey {
    /// Microseconds since the epoch; `i64::MAX` when undated.
    act_by: i64,
    /// Imminent first, then the highest level (as in [`rank`]).
    band: u8,
    /// When the case opened, microseconds since the epoch.
    opened: i64,
    slot: Slot,
    /// Index into the case's `open_steps`.
    pub open_step: u16,
}

impl MyStepKey {
    pub fn slot(&self) -> Slot {
        self.slot
    }
}

/// The "my steps" index: sorted keys into the case slab.
#[derive(Debug, Default)]
pub struct MySteps {
    keys: Vec<MyStepKey>,
    /// Cases whose steps (or place) may have changed since the last
    /// refresh.
    dirty: Vec<Slot>,
    rebuild: bool,
}

impl MySteps {
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&MyStepKey> {
        self.keys.get(i)
    }

    pub fn iter(&self) -> impl Iterator<Item = &MyStepKey> {
        self.keys.iter()
    }

    /// Notes that a case's steps or urgency may have changed.
    pub fn touch(&mut self, slot: Slot) {
        if self.dirty.len() >= REBUILD_ABOVE {
            self.rebuild = true;
        } else {
            self.dirty.push(slot);
        }
    }

    /// Everything changed (a new role or new playbooks, a reset).
    pub fn invalidate(&mut self) {
        self.rebuild = true;
    }

    pub fn clear(&mut self) {
        *self = MySteps::default();
    }

    /// Brings the index up to date with the cases.
    pub fn refresh(&mut self, cases: &CaseStore, role: Option<Role>) {
        let Some(role) = role else {
            self.keys.clear();
            self.dirty.clear();
            self.rebuild = false;
            return;
        };
        if self.rebuild {
            self.keys.clear();
            for (slot, case) in cases.iter() {
                push_keys(&mut self.keys, slot, case, role);
            }
            self.keys.sort_unstable();
            // Built by pushing: up to half of it would be spare room.
            self.keys.shrink_to_fit();
            self.rebuild = false;
            self.dirty.clear();
            return;
        }
        if self.dirty.is_empty() {
            return;
        }
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        self.keys
            .retain(|k| dirty.binary_search(&k.slot()).is_err());
        let mut fresh = Vec::new();
        for slot in dirty {
            push_keys(&mut fresh, slot, cases.at(slot), role);
        }
        for key in fresh {
            let at = self.keys.partition_point(|k| *k < key);
            self.keys.insert(at, key);
        }
    }
}

/// The keys of one case's open steps for `role` (none when it is closed).
fn push_keys(out: &mut Vec<MyStepKey>, slot: Slot, case: &CaseView, role: Role) {
    if case.case.status == CaseStatus::Closed {
        return;
    }
    let (imminent, level, opened, _, _) = rank(case, slot, SortKey::Urgency);
    let band = imminent * 3 + level;
    for (i, step) in case.open_steps.iter().enumerate() {
        if step.role != role {
            continue;
        }
        let Ok(open_step) = u16::try_from(i) else {
            break;
        };
        out.push(MyStepKey {
            act_by: step.act_by_micros(),
            band,
            opened,
            slot,
            open_step,
        });
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LevelFilter {
    #[default]
    Any,
    KeyOrHigher,
    High,
    Imminent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatusFilter {
    #[default]
    Any,
    Unacknowledged,
    Acknowledged,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DrillFilter {
    #[default]
    Any,
    RealOnly,
    DrillsOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    /// Imminent first, then highest level, then oldest.
    #[default]
    Urgency,
    Newest,
    RecentlyUpdated,
    CaseId,
}

impl SortKey {
    pub fn next(self) -> SortKey {
        match self {
            SortKey::Urgency => SortKey::Newest,
            SortKey::Newest => SortKey::RecentlyUpdated,
            SortKey::RecentlyUpdated => SortKey::CaseId,
            SortKey::CaseId => SortKey::Urgency,
        }
    }
}

pub const CATEGORIES: [Category; 7] = [
    Category::SuicideRisk,
    Category::SelfHarm,
    Category::ViolenceThreat,
    Category::Bullying,
    Category::TraumaBereavement,
    Category::AcuteDistress,
    Category::Other,
];

/// The order within a heading of the follow-ups view; kept with the
/// list's sort keys so the strings can name it without the view's state.
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

/// Which open cases the list shows. Everything here is a cheap test on
/// data kept per case, so filtering 40,000 cases is one pass.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub level: LevelFilter,
    pub status: StatusFilter,
    pub category: Option<Category>,
    pub school: Option<String>,
    /// Cases I acknowledged or that have an open step for my role.
    pub mine: bool,
    pub drills: DrillFilter,
    /// Lower-case text matched against case id, student id and class.
    pub search: String,
}

impl Filter {
    pub fn is_active(&self) -> bool {
        *self != Filter::default()
    }

    /// Whether `case` passes. `me` is who I am (for "mine").
    pub fn admits(&self, c: &CaseView, me: Option<&Actor>) -> bool {
        let snap = &c.case;
        let level_ok = match self.level {
            LevelFilter::Any => true,
            LevelFilter::KeyOrHigher => snap.level >= Level::Key || snap.imminent,
            LevelFilter::High => snap.level == Level::High || snap.imminent,
            LevelFilter::Imminent => snap.imminent,
        };
        let status_ok = match self.status {
            StatusFilter::Any => true,
            StatusFilter::Unacknowledged => snap.status == CaseStatus::Open,
            StatusFilter::Acknowledged => snap.status == CaseStatus::Acknowledged,
        };
        let drill_ok = match self.drills {
            DrillFilter::Any => true,
            DrillFilter::RealOnly => !c.is_drill(),
            DrillFilter::DrillsOnly => c.is_drill(),
        };
        level_ok
            && status_ok
            && drill_ok
            && self.category.is_none_or(|cat| snap.category == cat)
            && self
                .school
                .as_deref()
                .is_none_or(|s| c.student.school.as_deref() == Some(s))
            && (!self.mine || c.is_mine(me))
            && c.matches_search(&self.search)
    }
}

/// A case's place in a sort as plain numbers, computed once per case per
/// sort: (imminent last?, level from the top, time, case number, slot).
pub type Rank = (u8, u8, i64, u64, Slot);

pub fn rank(c: &CaseView, slot: Slot, by: SortKey) -> Rank {
    let s = &c.case;
    // Relay case ids are `C` and digits; anything else sorts after them.
    let number =
        s.id.strip_prefix('C')
            .and_then(|d| d.parse::<u64>().ok())
            .unwrap_or(u64::MAX);
    match by {
        SortKey::Urgency => (
            u8::from(!s.imminent),
            2 - s.level as u8,
            s.opened_at.timestamp_micros(),
            number,
            slot,
        ),
        SortKey::Newest => (0, 0, -s.opened_at.timestamp_micros(), number, slot),
        SortKey::RecentlyUpdated => (0, 0, -s.updated_at.timestamp_micros(), number, slot),
        SortKey::CaseId => (0, 0, 0, number, slot),
    }
}

/// Past this many changed cases in one batch, re-sorting everything is
/// cheaper than moving each one.
pub const RESORT_ABOVE: usize = 64;

/// The header's numbers, over every open case (not only the filtered ones):
/// the header answers "how bad is it right now".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Indexed by `Level as usize`.
    pub by_level: [usize; 3],
    pub imminent: usize,
    pub unacknowledged: usize,
    /// Open steps for my role past their time, across open cases.
    pub my_overdue: usize,
    pub open: usize,
    pub drills: usize,
}

/// The case list as the list screen shows it: every open case in sort
/// order, that order through the filter, and the header's counts. Each is
/// redone by [`ListIndex::refresh`] only when what it depends on changed,
/// and a few changed cases move to their places instead of sorting 40,000
/// again.
#[derive(Debug, Default)]
pub struct ListIndex {
    /// Every open case in sort order.
    pub sorted: Vec<Slot>,
    /// The list as shown: `sorted` through `filter`.
    pub order: Vec<Slot>,
    pub filter: Filter,
    pub sort: SortKey,
    pub stats: Stats,
    /// Cases whose place in the sort may have changed since the last refresh.
    dirty: Vec<Slot>,
    /// Re-sort everything (a new sort key, a replay).
    resort: bool,
    filter_stale: bool,
    /// The filter only got stricter (a character added to the search) and
    /// no case changed: filter what is shown instead of everything. Holds
    /// the search text the shown rows are for.
    narrowing: Option<String>,
    /// A backspace took the search back to the text on top of `earlier`
    /// and no case changed: show those rows again instead of filtering.
    restoring: bool,
    /// The rows shown before each narrowing, with the search text they
    /// were for, innermost last. A backspace after typing is then no
    /// filter pass over 40,000 cases (`benches/console.rs`, `search_40000`).
    /// Each is a subset of the one below it, and the search line holds 64
    /// characters at most. Emptied whenever rows are filtered afresh: a
    /// case changed, so the rows kept for earlier texts may be wrong.
    earlier: Vec<(String, Vec<Slot>)>,
    stats_stale: bool,
}

impl ListIndex {
    /// A case's place in the sort may have changed.
    pub fn touch(&mut self, slot: Slot) {
        if self.dirty.len() >= RESORT_ABOVE {
            self.resort = true;
        } else {
            self.dirty.push(slot);
        }
    }

    /// Sort everything again (the sort key changed).
    pub fn resort(&mut self) {
        self.resort = true;
    }

    /// The filter, or what it reads (my role, a case's steps), changed.
    pub fn filter_changed(&mut self) {
        self.filter_stale = true;
        self.narrowing = None;
        self.restoring = false;
    }

    /// Types `c` into the search. Every case the longer text admits is
    /// among those shown now, so unless something else is pending only
    /// those are filtered again.
    pub fn search_push(&mut self, c: char) {
        let before = self.filter.search.clone();
        self.filter.search.extend(c.to_lowercase());
        let was_stale = self.filter_stale;
        self.filter_changed();
        if !was_stale {
            self.narrowing = Some(before);
        }
    }

    /// Takes the last character off the search. Back to a text typed
    /// before, the rows shown for it then are shown again.
    pub fn search_pop(&mut self) {
        self.filter.search.pop();
        let was_stale = self.filter_stale;
        self.filter_changed();
        self.restoring = !was_stale
            && self
                .earlier
                .last()
                .is_some_and(|(text, _)| *text == self.filter.search);
    }

    /// The header's counts may be out of date (the clock moved, a step).
    pub fn counts_changed(&mut self) {
        self.stats_stale = true;
    }

    /// No cases any more (a new connection replays them).
    pub fn clear(&mut self) {
        self.sorted.clear();
        self.order.clear();
        self.dirty.clear();
        self.earlier.clear();
        self.stats = Stats::default();
    }

    /// Brings the sorted list, the filtered list and the counts up to date;
    /// `selected` (a row of `order`) stays on its case where it can.
    pub fn refresh(
        &mut self,
        cases: &CaseStore,
        me: Option<&Actor>,
        now: DateTime<Utc>,
        selected: &mut usize,
    ) {
        let by = self.sort;
        if self.resort || !self.dirty.is_empty() {
            self.narrowing = None;
            self.restoring = false;
        }
        if self.resort {
            let mut ranked: Vec<Rank> = cases
                .iter()
                .filter(|(_, c)| c.case.status != CaseStatus::Closed)
                .map(|(slot, c)| rank(c, slot, by))
                .collect();
            ranked.sort_unstable();
            self.sorted = ranked.into_iter().map(|r| r.4).collect();
            self.resort = false;
            self.dirty.clear();
            self.filter_stale = true;
            self.stats_stale = true;
        } else if !self.dirty.is_empty() {
            let mut dirty = std::mem::take(&mut self.dirty);
            dirty.sort_unstable();
            dirty.dedup();
            // All changed cases out first: the rest keep their keys, so the
            // list stays sorted for the binary searches that follow.
            self.sorted.retain(|s| dirty.binary_search(s).is_err());
            for slot in dirty {
                let c = cases.at(slot);
                if c.case.status != CaseStatus::Closed {
                    let key = rank(c, slot, by);
                    let at = self
                        .sorted
                        .partition_point(|s| rank(cases.at(*s), *s, by) < key);
                    self.sorted.insert(at, slot);
                }
            }
            self.filter_stale = true;
            self.stats_stale = true;
        }
        if self.filter_stale {
            self.apply_filter(cases, me, selected);
        }
        if self.stats_stale {
            self.stats = count(cases, me.map(|m| m.role), now);
            self.stats_stale = false;
        }
    }

    fn apply_filter(&mut self, cases: &CaseStore, me: Option<&Actor>, selected: &mut usize) {
        let keep = self.order.get(*selected).copied();
        let admits = |s: &Slot| self.filter.admits(cases.at(*s), me);
        let earlier = if std::mem::take(&mut self.restoring) {
            self.earlier.pop().map(|(_, rows)| rows)
        } else {
            None
        };
        self.order = if let Some(rows) = earlier {
            rows
        } else if let Some(text) = self.narrowing.take() {
            let kept = self.order.iter().copied().filter(admits).collect();
            self.earlier.push((text, std::mem::take(&mut self.order)));
            kept
        } else {
            self.earlier.clear();
            if self.filter.is_active() {
                self.sorted.iter().copied().filter(admits).collect()
            } else {
                self.sorted.clone()
            }
        };
        self.filter_stale = false;
        if let Some(slot) = keep
            && let Some(i) = self.order.iter().position(|x| *x == slot)
        {
            *selected = i;
        }
        *selected = (*selected).min(self.order.len().saturating_sub(1));
    }
}

/// The header's numbers over every open case, in slab order (a straight
/// walk through memory).
fn count(cases: &CaseStore, my_role: Option<Role>, now: DateTime<Utc>) -> Stats {
    let mut stats = Stats::default();
    for (_, c) in cases
        .iter()
        .filter(|(_, c)| c.case.status != CaseStatus::Closed)
    {
        stats.open += 1;
        stats.by_level[c.case.level as usize] += 1;
        stats.imminent += usize::from(c.case.imminent);
        stats.unacknowledged += usize::from(c.case.status == CaseStatus::Open);
        stats.drills += usize::from(c.is_drill());
        if let Some(role) = my_role {
            stats.my_overdue += c
                .open_steps
                .iter()
                .filter(|s| s.role == role && s.overdue_at(now))
                .count();
        }
    }
    stats
}
