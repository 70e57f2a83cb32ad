//! Derived rows kept up to date as cases change, never rebuilt per frame:
//! "my steps", every open step for my role across all open cases, soonest
//! first. At 40,000 cases a rebuild walks every checklist, so the index is
//! changed case by case (the live stream) and rebuilt only when most of it
//! changes at once (a replay, a new session). See `benches/console.rs`.

use chrono::{DateTime, Utc};

use super::cases::{CaseStore, Slot};
use crate::protocol::{CaseStatus, Role};

/// Past this many changed cases in one batch, rebuilding the whole index
/// is cheaper than moving each one.
pub const REBUILD_ABOVE: usize = 64;

/// One open step of one case, as its place in "my steps": soonest due
/// first, steps with no deadline after every dated one; ties in the order
/// of the list's urgency sort, then in checklist order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MyStepKey {
    /// No deadline sorts after every dated step.
    undated: bool,
    /// Microseconds since the epoch (0 when undated).
    act_by: i64,
    /// The case's place in the urgency sort.
    urgency: super::app::Rank,
    /// Index into the case's `open_steps`.
    pub open_step: u16,
}

impl MyStepKey {
    pub fn slot(&self) -> Slot {
        self.urgency.4
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
fn push_keys(out: &mut Vec<MyStepKey>, slot: Slot, case: &super::app::CaseView, role: Role) {
    if case.case.status == CaseStatus::Closed {
        return;
    }
    let urgency = super::app::rank(case, slot, super::app::SortKey::Urgency);
    for (i, step) in case.open_steps.iter().enumerate() {
        if step.role != role {
            continue;
        }
        let Ok(open_step) = u16::try_from(i) else {
            break;
        };
        out.push(MyStepKey {
            undated: step.act_by.is_none(),
            act_by: step
                .act_by
                .map_or(0, |t: DateTime<Utc>| t.timestamp_micros()),
            urgency,
            open_step,
        });
    }
}
