//! Every case the console has seen, in a slab: a `Vec` in arrival order
//! plus an id index. The list's sorted and filtered orders are `u32` slots
//! into it, so a pass over 40,000 cases is a walk over integers with no
//! hashing and no string copies (see `benches/console.rs`).

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use hashbrown::HashTable;

use chrono::{DateTime, FixedOffset, Utc};

use super::frames::Route;
use crate::followup::Checkin;
use crate::playbook::{OverdueReason, Progress};
use crate::protocol::{
    Actor, AlertStatus, CaseSnapshot, Category, CloseOutcome, Level, Role, Source,
};

/// A case's place in the slab; stable for the life of the console (until a
/// reset).
pub type Slot = u32;

/// A student's cases on this console, and their last check-in.
#[derive(Debug, Clone, Default)]
pub struct StudentCases {
    /// In the order the cases opened; never empty (the first case names
    /// the student, see [`CaseStore`]).
    pub slots: Vec<Slot>,
    /// When the latest check-in on any of them was recorded (the 三个一
    /// review, `cadence.rs`).
    pub reviewed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Default)]
pub struct CaseStore {
    /// Boxed: a `Vec` of 40,000 inline cases doubles to room for 65,536,
    /// a quarter of it never used; boxes cost a pointer each.
    #[allow(
        clippy::vec_box,
        reason = "the point: boxes do not double with the Vec (see above)"
    )]
    slots: Vec<Box<CaseView>>,
    /// Slots by case id. The tables hold no keys of their own: each entry
    /// is found by the id in the case it points to, so 40,000 case ids and
    /// student ids are not copied into maps (issue 10).
    index: HashTable<Slot>,
    /// Each student's cases, found by the student id of the first.
    students: HashTable<StudentCases>,
    hasher: RandomState,
}

impl CaseStore {
    fn hash(&self, id: &str) -> u64 {
        self.hasher.hash_one(id)
    }

    pub fn get(&self, id: &str) -> Option<&CaseView> {
        self.slot(id).map(|s| self.slots[s as usize].as_ref())
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut CaseView> {
        let slot = self.slot(id)?;
        Some(self.slots[slot as usize].as_mut())
    }

    pub fn slot(&self, id: &str) -> Option<Slot> {
        let slots = &self.slots;
        self.index
            .find(self.hash(id), |s| slots[*s as usize].case.id == id)
            .copied()
    }

    /// The case in `slot`. Slots come only from this store, so one is
    /// always valid.
    pub fn at(&self, slot: Slot) -> &CaseView {
        &self.slots[slot as usize]
    }

    pub fn contains(&self, id: &str) -> bool {
        self.slot(id).is_some()
    }

    /// Adds a case, and it to its student's; its slot is the next one.
    /// A case keeps its id and its student for life.
    pub fn insert(&mut self, case: CaseView) -> Slot {
        let slot = self.slots.len() as Slot;
        let case_hash = self.hash(&case.case.id);
        let student_hash = self.hash(&case.case.student_id);
        self.slots.push(Box::new(case));
        let slots = &self.slots;
        let hasher = &self.hasher;
        let new = &slots[slot as usize].case;
        self.index.insert_unique(case_hash, slot, |s| {
            hasher.hash_one(slots[*s as usize].case.id.as_str())
        });
        let student = self.students.find_mut(student_hash, |e| {
            slots[e.slots[0] as usize].case.student_id == new.student_id
        });
        match student {
            Some(entry) => entry.slots.push(slot),
            None => {
                self.students.insert_unique(
                    student_hash,
                    StudentCases {
                        slots: vec![slot],
                        reviewed_at: None,
                    },
                    |e| hasher.hash_one(slots[e.slots[0] as usize].case.student_id.as_str()),
                );
            }
        }
        slot
    }

    /// A student's cases, by student id.
    pub fn student(&self, id: &str) -> Option<&StudentCases> {
        let slots = &self.slots;
        self.students.find(self.hash(id), |e| {
            slots[e.slots[0] as usize].case.student_id == id
        })
    }

    pub fn student_mut(&mut self, id: &str) -> Option<&mut StudentCases> {
        let hash = self.hash(id);
        let slots = &self.slots;
        self.students
            .find_mut(hash, |e| slots[e.slots[0] as usize].case.student_id == id)
    }

    /// Every student with their cases, in no particular order.
    pub fn students(&self) -> impl Iterator<Item = (&str, &StudentCases)> {
        self.students
            .iter()
            .map(|e| (self.slots[e.slots[0] as usize].case.student_id.as_str(), e))
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Every case with its slot, in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = (Slot, &CaseView)> {
        self.slots
            .iter()
            .enumerate()
            .map(|(i, c)| (i as Slot, c.as_ref()))
    }

    pub fn clear(&mut self) {
        self.slots.clear();
        self.index.clear();
        self.students.clear();
    }
}

impl std::ops::Index<&str> for CaseStore {
    type Output = CaseView;

    #[allow(
        clippy::panic,
        reason = "indexing by an id not in the store is a caller's bug, as with HashMap; \
                  the console itself uses `get`"
    )]
    fn index(&self, id: &str) -> &CaseView {
        self.get(id)
            .unwrap_or_else(|| panic!("no case {}", crate::text::inert(id)))
    }
}

impl std::ops::Index<&String> for CaseStore {
    type Output = CaseView;

    fn index(&self, id: &String) -> &CaseView {
        &self[id.as_str()]
    }
}

/// An overdue step the relay escalated.
#[derive(Debug, Clone, PartialEq)]
pub struct EscalationView {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub playbook: String,
    pub step: String,
    pub to: Role,
    pub owner: Role,
    pub reason: OverdueReason,
}

/// Text many cases share (school, grade, class), kept once: 40,000 cases
/// name 178 schools, a few grades and a few dozen classes, and a string
/// per case per field was megabytes of copies (issue 10).
#[derive(Debug, Default)]
pub struct Labels(HashSet<Arc<str>>);

impl Labels {
    /// The shared copy of `text`, made inert first.
    pub fn get(&mut self, text: &str) -> Arc<str> {
        let text = crate::text::inert(text);
        if let Some(known) = self.0.get(text.as_str()) {
            return known.clone();
        }
        let label: Arc<str> = text.into();
        self.0.insert(label.clone());
        label
    }
}

/// A student as a responder sees them, from the latest alert that named
/// them. All text is already made inert. The student's id is the case's
/// (`CaseSnapshot::student_id`), not kept twice.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StudentView {
    /// Only after this console asked the relay to reveal it (`r`, with a
    /// reason, audited); the stream itself never carries names.
    pub name: Option<String>,
    /// What the relay sends instead of the name (`王**`).
    pub initials: Option<String>,
    pub school: Option<Arc<str>>,
    pub grade: Option<Arc<str>>,
    pub class: Option<Arc<str>>,
    pub under_14: bool,
}

impl StudentView {
    /// The student as lists, banners and notices may show them.
    pub fn list_name(&self) -> String {
        match (&self.name, &self.initials) {
            (Some(name), _) => crate::text::masked_name(name),
            (None, Some(initials)) => initials.clone(),
            (None, None) => String::new(),
        }
    }
}

/// One scale result from an alert's signals (`{"kind": "scale",
/// "instrument": "PHQ-9", "score": 17}`).
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleScore {
    /// Inert and at most 16 cells; shared (see [`Labels`]).
    pub instrument: Arc<str>,
    pub score: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlertView {
    pub seq: i64,
    pub id: String,
    pub received_at: DateTime<Utc>,
    pub observed_at: DateTime<FixedOffset>,
    pub level: Level,
    pub imminent: bool,
    pub category: Category,
    pub source: Source,
    pub summary: Option<String>,
    /// Each signal as one readable line (the `risk` signal excepted: it
    /// is `why`).
    pub signals: Vec<String>,
    pub scores: Vec<ScaleScore>,
    /// Why a screening rule flagged the student, one line in the console's
    /// language, from the alert's `risk` signal (SHARED_CONTRACTS.md).
    pub why: Option<String>,
    /// A follow-up alert is listed but never calls for attention.
    pub route: Route,
}

/// An open step as the header and the "mine" filter need it, kept per case
/// so neither has to walk every checklist of 40,000 cases. The times are
/// kept as microseconds: 24 bytes a step, not 32, for some 300,000 open
/// steps on a district console (issue 10).
#[derive(Debug, Clone, PartialEq)]
pub struct OpenStep {
    pub role: Role,
    /// A contact step out of attempts: overdue whatever the clock says.
    pub exhausted: bool,
    /// Which checklist of the case (index into `checklists`) and which
    /// step of its playbook (index into `steps`).
    pub checklist: u16,
    pub step: u16,
    /// The due time, in microseconds since the epoch; [`NO_TIME`]: none.
    due: i64,
    /// When to act next: the sooner of the due time and the next contact
    /// retry ("my steps" sorts by it); as `due`.
    act_by: i64,
}

/// An open step's time that is not set: after every real one, so it sorts
/// last.
pub const NO_TIME: i64 = i64::MAX;

fn micros(t: Option<DateTime<Utc>>) -> i64 {
    t.map_or(NO_TIME, |t| t.timestamp_micros())
}

impl OpenStep {
    pub fn new(
        role: Role,
        due: Option<DateTime<Utc>>,
        act_by: Option<DateTime<Utc>>,
        exhausted: bool,
        checklist: u16,
        step: u16,
    ) -> OpenStep {
        OpenStep {
            role,
            exhausted,
            checklist,
            step,
            due: micros(due),
            act_by: micros(act_by),
        }
    }

    pub fn due(&self) -> Option<DateTime<Utc>> {
        (self.due != NO_TIME)
            .then(|| DateTime::from_timestamp_micros(self.due))
            .flatten()
    }

    /// When to act next, in microseconds ([`NO_TIME`]: no time set).
    pub fn act_by_micros(&self) -> i64 {
        self.act_by
    }

    pub fn overdue_at(&self, now: DateTime<Utc>) -> bool {
        self.exhausted || (self.due != NO_TIME && now.timestamp_micros() > self.due)
    }
}

/// A check-in still to make, as small as the view needs: a district
/// follows 40,000 students with a dozen check-ins each, so no ids, notes
/// or names are kept per row (about 20 bytes each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingCheckin {
    pub num: u32,
    pub role: Role,
    pub escalate_to: Role,
    pub due_at: DateTime<Utc>,
}

impl From<&Checkin> for PendingCheckin {
    fn from(k: &Checkin) -> Self {
        PendingCheckin {
            num: k.num,
            role: k.role,
            escalate_to: k.escalate_to,
            due_at: k.due_at,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CaseView {
    pub case: CaseSnapshot,
    pub student: StudentView,
    pub alerts: Vec<AlertView>,
    /// Checklists in the order they were attached.
    pub checklists: Vec<Progress>,
    pub escalations: Vec<EscalationView>,
    /// How the case was closed, once it is.
    pub outcome: Option<CloseOutcome>,
    /// Open steps of every checklist (see [`OpenStep`]).
    pub open_steps: Vec<OpenStep>,
    /// Scheduled check-ins not yet recorded, by number (see
    /// `followups.rs`); recorded ones live in the relay's record.
    pub checkins: Vec<PendingCheckin>,
}

impl CaseView {
    pub fn is_drill(&self) -> bool {
        self.case.alert_status != AlertStatus::Actual
    }

    /// Mine: I acknowledged it, or my role has an open step on it.
    pub fn is_mine(&self, me: Option<&Actor>) -> bool {
        let Some(me) = me else { return false };
        self.case.acknowledged_by.as_ref() == Some(me)
            || self.open_steps.iter().any(|s| s.role == me.role)
    }

    /// The student's grade and class as one label: `初二 (3)班`.
    pub fn class_label(&self) -> String {
        [self.student.grade.as_deref(), self.student.class.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The student's id as screens may show it.
    pub fn student_id(&self) -> String {
        crate::text::inert(&self.case.student_id)
    }

    /// `/` search: whether `needle` (lower-case) occurs in the lower-case
    /// of "case id, tab, student id, tab, class label". Matched in place:
    /// a key kept per case for this was 40,000 more strings.
    pub fn matches_search(&self, needle: &str) -> bool {
        let grade = self.student.grade.as_deref();
        let class = self.student.class.as_deref();
        let between = if grade.is_some() && class.is_some() {
            " "
        } else {
            ""
        };
        folded_contains(
            &[
                &self.case.id,
                "\t",
                &self.case.student_id,
                "\t",
                grade.unwrap_or_default(),
                between,
                class.unwrap_or_default(),
            ],
            needle,
        )
    }
}

/// Whether `needle` (already lower-case) occurs in the lower-case of the
/// text `pieces` make one after another. The folded text is written into a
/// buffer on the stack and searched as bytes (a UTF-8 needle can only
/// match at a character boundary): a search keystroke runs this for every
/// one of 40,000 cases, and stepping a cloned chain of lower-casing
/// iterators at every position took 30 ms a keystroke
/// (`benches/console.rs`). ASCII pieces (ids, digits) are copied and
/// folded a slice at a time; only the others go character by character.
/// Text too long for the buffer, which no id or class name reaches, is
/// searched that slow way.
fn folded_contains(pieces: &[&str], needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    let mut buf = [0u8; 1024];
    let mut len = 0;
    for piece in pieces {
        if piece.is_ascii() {
            let Some(to) = buf.get_mut(len..len + piece.len()) else {
                return folded_contains_slowly(pieces.iter().flat_map(|p| p.chars()), needle);
            };
            to.copy_from_slice(piece.as_bytes());
            to.make_ascii_lowercase();
            len += piece.len();
            continue;
        }
        for c in piece.chars().flat_map(char::to_lowercase) {
            let need = c.len_utf8();
            let Some(to) = buf.get_mut(len..len + need) else {
                return folded_contains_slowly(pieces.iter().flat_map(|p| p.chars()), needle);
            };
            c.encode_utf8(to);
            len += need;
        }
    }
    buf[..len]
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn folded_contains_slowly<I: Iterator<Item = char> + Clone>(hay: I, needle: &str) -> bool {
    let mut rest = hay.flat_map(char::to_lowercase);
    loop {
        let mut probe = rest.clone();
        if needle.chars().all(|n| probe.next() == Some(n)) {
            return true;
        }
        if rest.next().is_none() {
            return false;
        }
    }
}

#[cfg(test)]
mod search_tests {
    use super::{folded_contains, folded_contains_slowly};

    #[test]
    fn the_fast_search_answers_as_the_slow_one() {
        let long = "高".repeat(400);
        let hays = [
            "C000012\tS-77\t高一 3班",
            "ÄBC\tx",
            "abc",
            "",
            long.as_str(),
        ];
        let needles = [
            "c0000",
            "s-77",
            "高一 3",
            "3班",
            "äb",
            "x",
            "zz",
            "高高",
            "c000012\ts",
        ];
        for hay in hays {
            // Whole, and cut into pieces at every tab as a case's key is.
            let pieces: Vec<&str> = hay.split_inclusive('\t').collect();
            for needle in needles {
                let slow = folded_contains_slowly(hay.chars(), needle);
                assert_eq!(
                    folded_contains(&[hay], needle),
                    slow,
                    "{hay:?} / {needle:?}"
                );
                assert_eq!(
                    folded_contains(&pieces, needle),
                    slow,
                    "{pieces:?} / {needle:?}"
                );
            }
        }
        assert!(folded_contains(&["C000012"], "c0000"));
        assert!(folded_contains(&[&long], "高高"), "past the buffer");
        assert!(folded_contains(&["ab", &long], "b高"), "past the buffer");
        assert!(!folded_contains(&["abc"], "abcd"));
        assert!(
            folded_contains(&["C1", "\t", "S-77"], "1\ts-"),
            "across pieces"
        );
    }
}

/// One instrument's results over time, for the history chart.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreSeries {
    pub instrument: String,
    /// (when observed, score), oldest first.
    pub points: Vec<(DateTime<FixedOffset>, f64)>,
}
