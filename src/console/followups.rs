//! The follow-ups view's state (跟踪回访): every case's scheduled
//! check-ins as the relay's `case_updated` events give them, and the rows
//! the view shows for my role: overdue, due today, due this week. A
//! check-in is recorded with `Enter` (outcome, then an optional note) and
//! goes out through the same outbox as steps, so it is kept offline.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

use super::action::Effect;
use super::app::App;
use super::cases::{CaseView, PendingCheckin, Slot};
use super::followup_filter::{self, FollowupFilter};
use super::i18n::Strings;
use super::keymap::Cmd;
use super::list::FollowupSort;
use super::nav::Ask;
use crate::followup::{CaseChange, CheckinOutcome};
use crate::protocol::{CaseStatus, CommandOp, Level, Role};

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

/// The level sort's rank of a case: imminent first.
fn level_rank(view: &CaseView) -> u8 {
    if view.case.imminent {
        0
    } else {
        match view.case.level {
            Level::High => 1,
            Level::Key => 2,
            Level::General => 3,
        }
    }
}

/// How far ahead the view looks.
const HORIZON: Duration = Duration::days(7);

/// Applies a follow-up change to the case's pending check-ins: a new
/// plan replaces them; a recorded one leaves.
pub fn apply_change(view: &mut CaseView, change: &CaseChange) {
    match change {
        CaseChange::Monitoring { planned, .. }
        | CaseChange::LevelChanged {
            planned: Some(planned),
            ..
        } => {
            view.checkins = planned
                .iter()
                .filter(|k| k.done_at.is_none())
                .map(PendingCheckin::from)
                .collect();
            view.checkins.sort_by_key(|k| k.num);
        }
        CaseChange::CheckinRecorded { checkin } => view.checkins.retain(|k| k.num != checkin.num),
        _ => {}
    }
}

impl Strings {
    fn tr(&self, zh: &'static str, en: &'static str) -> &'static str {
        if self.is_zh() { zh } else { en }
    }

    pub fn followups_title(&self) -> &'static str {
        self.tr("跟踪回访", "Follow-ups")
    }

    pub fn no_followups(&self) -> &'static str {
        self.tr("本周没有待做的回访", "No check-ins due this week")
    }

    pub fn bucket(&self, b: Bucket) -> &'static str {
        match b {
            Bucket::Overdue => self.tr("已逾期", "Overdue"),
            Bucket::Today => self.tr("今天", "Due today"),
            Bucket::ThisWeek => self.tr("本周", "This week"),
        }
    }

    pub fn col_checkin(&self) -> &'static str {
        self.tr("回访", "Check-in")
    }

    pub fn ask_checkin_outcome(&self) -> &'static str {
        self.tr(
            "回访结果：1 状态良好 · 2 有担忧 · 3 需升级处置 · 4 未见到",
            "Outcome: 1 seen, well · 2 concern · 3 escalate · 4 not reached",
        )
    }

    pub fn ask_checkin_note(&self) -> &'static str {
        self.tr("回访记录（可留空）", "Note (may be empty)")
    }

    pub fn checkin_outcome(&self, o: CheckinOutcome) -> &'static str {
        match o {
            CheckinOutcome::SeenWell => self.tr("良好", "well"),
            CheckinOutcome::Concern => self.tr("有担忧", "concern"),
            CheckinOutcome::Escalate => self.tr("需升级", "escalate"),
            CheckinOutcome::NotReached => self.tr("未见到", "not reached"),
        }
    }
}

/// The rows the view shows, built once per change rather than per key or
/// frame: with 40,000 students followed up, a build walks half a million
/// check-ins. Stale after a follow-up event, a closed case, a new session,
/// and when the clock passes `valid_until` (a due time or midnight moves a
/// row between headings).
#[derive(Debug, Default)]
pub struct FollowupList {
    rows: Vec<FollowupRow>,
    stale: bool,
    valid_until: Option<DateTime<Utc>>,
    /// What `w`, `h`, `i` and `O` chose (`followup_filter.rs`).
    pub filter: FollowupFilter,
    pub sort: FollowupSort,
    /// The rows as shown when a filter or sort is set; None shows `rows`.
    view: Option<Vec<FollowupRow>>,
    /// `view` must be redone (rows changed, or the filter).
    view_stale: bool,
    /// The 三个一 cadence: the relay's count when this console connected,
    /// kept up to date by the events since (`cadence.rs`).
    pub cadence: super::cadence::CadenceFigures,
    /// The rows' schools by number.
    pub schools: SchoolIds,
    /// When a missed check-in last rang (see `followup_filter.rs`).
    pub(super) last_missed_alarm: Option<DateTime<Utc>>,
}

impl FollowupList {
    pub fn invalidate(&mut self) {
        self.stale = true;
    }

    /// The rows as shown: filtered and sorted when asked.
    pub fn rows(&self) -> &[FollowupRow] {
        self.view.as_deref().unwrap_or(&self.rows)
    }

    /// Every row for my role before the filter, in heading and due order.
    pub fn all_rows(&self) -> &[FollowupRow] {
        &self.rows
    }
}

/// The moment rows are placed against.
struct Window {
    me: Option<Role>,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    today_end: DateTime<Utc>,
}

/// The order of the view: overdue first, then by due time.
fn row_order(r: &FollowupRow) -> (Bucket, DateTime<Utc>, Slot, u32) {
    (r.bucket, r.checkin.due_at, r.slot, r.checkin.num)
}

/// One case's rows for my role (none for a closed case), and the soonest
/// moment one of them changes heading.
fn case_rows(
    w: &Window,
    slot: Slot,
    view: &CaseView,
    schools: &mut SchoolIds,
    rows: &mut Vec<FollowupRow>,
    next_change: &mut DateTime<Utc>,
) {
    if view.case.status == CaseStatus::Closed || view.checkins.is_empty() {
        return;
    }
    let level = level_rank(view);
    let school = schools.id(view.student.school.as_deref());
    for k in &view.checkins {
        if k.due_at > w.until {
            // It enters the week when `until` reaches it.
            *next_change = (*next_change).min(k.due_at - HORIZON);
            continue;
        }
        let overdue = k.due_at < w.now;
        if !overdue {
            *next_change = (*next_change).min(k.due_at);
        }
        let mine =
            w.me.is_none_or(|r| r == k.role || (overdue && r == k.escalate_to));
        if !mine {
            continue;
        }
        let bucket = if overdue {
            Bucket::Overdue
        } else if k.due_at < w.today_end {
            Bucket::Today
        } else {
            Bucket::ThisWeek
        };
        rows.push(FollowupRow {
            slot,
            checkin: *k,
            bucket,
            level,
            school,
        });
    }
}

impl App {
    /// The check-ins my role should make (or, once overdue, hears about),
    /// due within a week or already overdue, on cases not closed: overdue
    /// first, then by due time. Every role's when the relay has not said
    /// who I am yet. Built afresh; the view uses the cached
    /// [`App::followups`].
    pub fn followup_rows(&self) -> Vec<FollowupRow> {
        let mut schools = self.followups.schools.clone();
        self.build_followups(&mut schools).0
    }

    /// The rows, and the moment they next need rebuilding.
    fn build_followups(
        &self,
        schools: &mut SchoolIds,
    ) -> (Vec<FollowupRow>, Option<DateTime<Utc>>) {
        let w = self.followup_window();
        let mut next_change = w.today_end;
        let mut rows: Vec<FollowupRow> = Vec::new();
        for (slot, view) in self.cases.iter() {
            case_rows(&w, slot, view, schools, &mut rows, &mut next_change);
        }
        rows.sort_unstable_by_key(row_order);
        (rows, Some(next_change))
    }

    /// What decides a row's place as of now: my role, today's end, the
    /// week ahead.
    fn followup_window(&self) -> Window {
        let now = self.now;
        let until = now + HORIZON;
        // The end of today, local to the terminal, as an instant.
        let today_end = (now.with_timezone(&self.display_offset).date_naive() + Duration::days(1))
            .and_hms_opt(0, 0, 0)
            .and_then(|t| t.and_local_timezone(self.display_offset).single())
            .map_or(until, |t| t.with_timezone(&Utc));
        Window {
            me: self.me.as_ref().map(|m| m.role),
            now,
            until,
            today_end,
        }
    }

    /// Brings the cached rows up to date after one case's follow-up change
    /// (or its close) without walking every case: its old rows leave, its
    /// new ones go in at their place. With 40,000 students followed a full
    /// rebuild took ~30 ms, two frames; this is one pass over the rows. A
    /// cache that is stale, or that the clock has outrun, is left to the
    /// next full rebuild.
    pub(super) fn followups_changed(&mut self, slot: Slot) {
        let list = &self.followups;
        let Some(valid_until) = list.valid_until.filter(|t| !list.stale && self.now < *t) else {
            self.followups.stale = true;
            return;
        };
        let w = self.followup_window();
        let mut next_change = valid_until;
        let mut fresh = Vec::new();
        case_rows(
            &w,
            slot,
            self.cases.at(slot),
            &mut self.followups.schools,
            &mut fresh,
            &mut next_change,
        );
        let rows = &mut self.followups.rows;
        rows.retain(|r| r.slot != slot);
        for row in fresh {
            let at = rows.partition_point(|r| row_order(r) < row_order(&row));
            rows.insert(at, row);
        }
        self.followups.valid_until = Some(next_change);
        // A filtered view is redone once per batch, in `refresh`: a storm
        // of events must not redo it per event.
        self.followups.view_stale = true;
        if self.followups.view.is_none() {
            self.nav.keep_step_within(self.followups.rows.len());
        }
    }

    /// Rebuilds the cached rows when they are stale or the clock moved
    /// past what they were built for.
    pub(super) fn refresh_followups(&mut self) {
        let expired = self.followups.valid_until.is_none_or(|t| self.now >= t);
        if self.followups.stale || expired {
            let mut schools = std::mem::take(&mut self.followups.schools);
            let (rows, valid_until) = self.build_followups(&mut schools);
            self.followups.schools = schools;
            let list = &mut self.followups;
            list.rows = rows;
            list.stale = false;
            list.valid_until = valid_until;
            list.view_stale = true;
        }
        self.refresh_followup_view();
    }

    /// Redoes the filtered and sorted rows if the rows or the filter
    /// changed; keeps the cursor on the rows.
    fn refresh_followup_view(&mut self) {
        let list = &self.followups;
        if list.view_stale {
            let view = (list.filter.is_active() || list.sort != FollowupSort::Due).then(|| {
                followup_filter::shown(
                    &list.rows,
                    &self.cases,
                    &list.schools,
                    self.me.as_ref(),
                    &list.filter,
                    list.sort,
                )
            });
            self.followups.view = view;
            self.followups.view_stale = false;
        }
        self.nav.keep_step_within(self.followups.rows().len());
    }

    /// The case id of a row.
    pub fn followup_case_id(&self, row: &FollowupRow) -> &str {
        &self.cases.at(row.slot).case.id
    }

    pub(super) fn on_followups_cmd(&mut self, cmd: Cmd) -> Vec<Effect> {
        self.refresh_followups();
        let len = self.followups.rows().len();
        let current = self
            .followups
            .rows()
            .get(self.nav.step_cursor)
            .map(|r| (self.followup_case_id(r).to_string(), r.checkin.num));
        match cmd {
            Cmd::Back => self.nav.back_to_list(),
            Cmd::Down => self.nav.step_down(len),
            Cmd::Up => self.nav.step_up(),
            Cmd::RecordCheckin => {
                if let Some((case_id, num)) = current {
                    self.nav.ask(Ask::CheckinOutcome(case_id, num));
                }
            }
            Cmd::OpenStepCase => {
                if let Some((case_id, _)) = current {
                    return self.open_case(case_id);
                }
            }
            Cmd::FilterWhen
            | Cmd::FilterSchool
            | Cmd::FilterMine
            | Cmd::ClearFilters
            | Cmd::Sort => {
                let list = &mut self.followups;
                match cmd {
                    Cmd::FilterWhen => list.filter.when = list.filter.when.next(),
                    Cmd::FilterSchool => {
                        list.filter.school = followup_filter::next_school(
                            &list.rows,
                            &list.schools,
                            list.filter.school.as_deref(),
                        )
                    }
                    Cmd::FilterMine => list.filter.mine = !list.filter.mine,
                    Cmd::Sort => list.sort = list.sort.next(),
                    _ => {
                        list.filter = FollowupFilter::default();
                        list.sort = FollowupSort::Due;
                    }
                }
                self.followups.view_stale = true;
                self.nav.step_cursor = 0;
                self.refresh_followup_view();
            }
            _ => {}
        }
        Vec::new()
    }

    /// The case under the cursor (for `a`, acknowledge).
    pub(super) fn followup_case(&self) -> Option<String> {
        self.followups
            .rows()
            .get(self.nav.step_cursor)
            .map(|r| self.followup_case_id(r).to_string())
    }

    /// The outcome is a number; the note comes next and may be empty.
    pub(super) fn submit_checkin(
        &mut self,
        ask: &Ask,
        input: &str,
    ) -> Result<Vec<Effect>, &'static str> {
        match ask {
            Ask::CheckinOutcome(case_id, num) => {
                let outcome = input
                    .parse::<usize>()
                    .ok()
                    .and_then(|n| n.checked_sub(1))
                    .and_then(|i| CheckinOutcome::ALL.get(i).copied())
                    .ok_or(self.strings.prompt_pick_number)?;
                self.nav
                    .ask(Ask::CheckinNote(case_id.clone(), *num, outcome));
                Ok(Vec::new())
            }
            Ask::CheckinNote(case_id, num, outcome) => Ok(self.send(CommandOp::Checkin {
                case_id: case_id.clone(),
                checkin: *num,
                outcome: *outcome,
                note: (!input.is_empty()).then(|| input.to_string()),
                raise: None,
            })),
            _ => Ok(Vec::new()),
        }
    }
}
