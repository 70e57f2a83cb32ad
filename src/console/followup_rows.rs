//! The follow-ups view's rows, as small as the view, its filters and its
//! sort need them: a leaf that `followups` (which builds the rows) and
//! `followup_filter` (which picks and orders them) both read.

use std::collections::HashMap;

use super::cases::{PendingCheckin, Slot};

/// Which part of the view a check-in is listed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Bucket {
    Overdue,
    Today,
    ThisWeek,
}

/// One check-in on the follow-ups view: the case by its slot, so a build
/// copies no strings; and what the sort and the school filter need of the
/// case, so a key never goes back to 40,000 cases for it (`O` did: a walk
/// of every case's level or school name per key was most of its 15 ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowupRow {
    pub slot: Slot,
    pub checkin: PendingCheckin,
    pub bucket: Bucket,
    /// 0 imminent, 1 high, 2 key, 3 general: the level sort's rank.
    pub level: u8,
    /// The student's school (see [`SchoolIds`]).
    pub school: u32,
}

/// The school names of the follow-up rows, each once, by a small number.
#[derive(Debug, Clone, Default)]
pub struct SchoolIds {
    names: Vec<Box<str>>,
    index: HashMap<Box<str>, u32>,
}

impl SchoolIds {
    /// The number of `name` (no school: the empty name), given on first
    /// sight.
    pub fn id(&mut self, name: Option<&str>) -> u32 {
        let name = name.unwrap_or("");
        if let Some(id) = self.index.get(name) {
            return *id;
        }
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push(name.into());
        self.index.insert(name.into(), id);
        id
    }

    /// The number of a school already seen.
    pub fn find(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }

    pub fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |n| n)
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}
