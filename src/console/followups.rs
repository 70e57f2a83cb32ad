//! The follow-ups view's state (跟踪回访): every case's scheduled
//! check-ins as the relay's `case_updated` events give them, and the rows
//! the view shows for my role: overdue, due today, due this week. A
//! check-in is recorded with `Enter` (outcome, then an optional note) and
//! goes out through the same outbox as steps, so it is kept offline.

use chrono::{DateTime, Duration, FixedOffset, TimeDelta, Utc};

use super::cases::{CaseStore, CaseView, EscalationView, PendingCheckin, Slot};
use super::followup_filter::{self, FollowupFilter};
pub use super::followup_rows::{Bucket, FollowupRow, SchoolIds};
use super::i18n::Strings;
use super::keymap::Cmd;
use super::list::FollowupSort;
use super::nav::{Ask, Nav};
use crate::followup::{CaseChange, CheckinOutcome};
use crate::playbook::OverdueReason;
use crate::protocol::{Actor, CaseStatus, CommandOp, Level, Role};

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
    /// When a missed check-in last rang (see [`FollowupList::missed_checkin`]).
    last_missed_alarm: Option<DateTime<Utc>>,
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

/// The moment rows are placed against: my role, now, the end of today
/// (local to the terminal) and of the week ahead.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    me: Option<Role>,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    today_end: DateTime<Utc>,
}

impl Window {
    /// Every role's rows when `me` is None (the relay has not said who I
    /// am yet).
    pub fn new(me: Option<Role>, now: DateTime<Utc>, offset: FixedOffset) -> Window {
        let until = now + HORIZON;
        // The end of today, local to the terminal, as an instant.
        let today_end = (now.with_timezone(&offset).date_naive() + Duration::days(1))
            .and_hms_opt(0, 0, 0)
            .and_then(|t| t.and_local_timezone(offset).single())
            .map_or(until, |t| t.with_timezone(&Utc));
        Window {
            me,
            now,
            until,
            today_end,
        }
    }
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

/// The check-ins of `w.me` (or, once overdue, those it hears about),
/// due within a week or already overdue, on cases not closed: overdue
/// first, then by due time. And the moment they next need rebuilding.
fn build(
    cases: &CaseStore,
    w: &Window,
    schools: &mut SchoolIds,
) -> (Vec<FollowupRow>, Option<DateTime<Utc>>) {
    let mut next_change = w.today_end;
    let mut rows: Vec<FollowupRow> = Vec::new();
    for (slot, view) in cases.iter() {
        case_rows(w, slot, view, schools, &mut rows, &mut next_change);
    }
    rows.sort_unstable_by_key(row_order);
    (rows, Some(next_change))
}

/// After one missed check-in rings, later ones within this long only add
/// to the banner's count (a morning's missed check-ins arrive together).
const MISSED_ALARM_QUIET: TimeDelta = TimeDelta::seconds(30);

/// A missed check-in addressed to my role: what the escalation banner
/// lists, and whether it calls for attention (bell, notification).
#[derive(Debug, Clone, PartialEq)]
pub struct MissedCheckin {
    pub escalation: EscalationView,
    pub ring: bool,
}

impl FollowupList {
    /// The rows as of `w`, built afresh (the view shows the cached ones).
    pub fn build_now(&self, cases: &CaseStore, w: &Window) -> Vec<FollowupRow> {
        let mut schools = self.schools.clone();
        build(cases, w, &mut schools).0
    }

    /// Brings the cached rows up to date after one case's follow-up change
    /// (or its close) without walking every case: its old rows leave, its
    /// new ones go in at their place. With 40,000 students followed a full
    /// rebuild took ~30 ms, two frames; this is one pass over the rows. A
    /// cache that is stale, or that the clock has outrun, is left to the
    /// next full rebuild.
    pub fn changed(&mut self, slot: Slot, cases: &CaseStore, w: &Window, nav: &mut Nav) {
        let Some(valid_until) = self.valid_until.filter(|t| !self.stale && w.now < *t) else {
            self.stale = true;
            return;
        };
        let mut next_change = valid_until;
        let mut fresh = Vec::new();
        case_rows(
            w,
            slot,
            cases.at(slot),
            &mut self.schools,
            &mut fresh,
            &mut next_change,
        );
        let rows = &mut self.rows;
        rows.retain(|r| r.slot != slot);
        for row in fresh {
            let at = rows.partition_point(|r| row_order(r) < row_order(&row));
            rows.insert(at, row);
        }
        self.valid_until = Some(next_change);
        // A filtered view is redone once per batch, in `refresh`: a storm
        // of events must not redo it per event.
        self.view_stale = true;
        if self.view.is_none() {
            nav.keep_step_within(self.rows.len());
        }
    }

    /// Rebuilds the cached rows when they are stale or the clock moved
    /// past what they were built for, then the view of them.
    pub fn refresh(&mut self, cases: &CaseStore, w: &Window, me: Option<&Actor>, nav: &mut Nav) {
        let expired = self.valid_until.is_none_or(|t| w.now >= t);
        if self.stale || expired {
            let (rows, valid_until) = build(cases, w, &mut self.schools);
            self.rows = rows;
            self.stale = false;
            self.valid_until = valid_until;
            self.view_stale = true;
        }
        self.refresh_view(cases, me, nav);
    }

    /// Redoes the filtered and sorted rows if the rows or the filter
    /// changed; keeps the cursor on the rows.
    fn refresh_view(&mut self, cases: &CaseStore, me: Option<&Actor>, nav: &mut Nav) {
        if self.view_stale {
            self.view = (self.filter.is_active() || self.sort != FollowupSort::Due).then(|| {
                followup_filter::shown(
                    &self.rows,
                    cases,
                    &self.schools,
                    me,
                    &self.filter,
                    self.sort,
                )
            });
            self.view_stale = false;
        }
        nav.keep_step_within(self.rows().len());
    }

    /// The case under the cursor (for `a`, acknowledge).
    pub fn selected_case(&self, cases: &CaseStore, cursor: usize) -> Option<String> {
        self.rows()
            .get(cursor)
            .map(|r| cases.at(r.slot).case.id.clone())
    }

    /// A key on the follow-ups view, with the rows brought up to date
    /// first; Some(case id) when it opens a case.
    pub fn on_cmd(
        &mut self,
        cmd: Cmd,
        cases: &CaseStore,
        w: &Window,
        me: Option<&Actor>,
        nav: &mut Nav,
    ) -> Option<String> {
        self.refresh(cases, w, me, nav);
        let len = self.rows().len();
        let current = self
            .rows()
            .get(nav.step_cursor)
            .map(|r| (cases.at(r.slot).case.id.clone(), r.checkin.num));
        match cmd {
            Cmd::Back => nav.back_to_list(),
            Cmd::Down => nav.step_down(len),
            Cmd::Up => nav.step_up(),
            Cmd::RecordCheckin => {
                if let Some((case_id, num)) = current {
                    nav.ask(Ask::CheckinOutcome(case_id, num));
                }
            }
            Cmd::OpenStepCase => return current.map(|(case_id, _)| case_id),
            Cmd::FilterWhen
            | Cmd::FilterSchool
            | Cmd::FilterMine
            | Cmd::ClearFilters
            | Cmd::Sort => {
                match cmd {
                    Cmd::FilterWhen => self.filter.when = self.filter.when.next(),
                    Cmd::FilterSchool => {
                        self.filter.school = followup_filter::next_school(
                            &self.rows,
                            &self.schools,
                            self.filter.school.as_deref(),
                        )
                    }
                    Cmd::FilterMine => self.filter.mine = !self.filter.mine,
                    Cmd::Sort => self.sort = self.sort.next(),
                    _ => {
                        self.filter = FollowupFilter::default();
                        self.sort = FollowupSort::Due;
                    }
                }
                self.view_stale = true;
                nav.step_cursor = 0;
                self.refresh_view(cases, me, nav);
            }
            _ => {}
        }
        None
    }

    /// A check-in missed on an open case: None unless it is addressed to
    /// `me`. The banner lists every one (`e` dismisses); the bell and a
    /// desktop notification call once per storm, as for an overdue step.
    /// History replayed on connect (`live` false) is listed but does not
    /// ring.
    pub fn missed_checkin(
        &mut self,
        change: &CaseChange,
        me: Option<Role>,
        strings: &Strings,
        seq: i64,
        at: DateTime<Utc>,
        live: bool,
    ) -> Option<MissedCheckin> {
        let CaseChange::CheckinMissed { checkin, to } = change else {
            return None;
        };
        if me != Some(*to) {
            return None;
        }
        let escalation = EscalationView {
            seq,
            at,
            // No playbook: the banner shows the step's text as given.
            playbook: String::new(),
            step: strings.checkin_number(checkin.num),
            to: *to,
            owner: checkin.role,
            reason: OverdueReason::PastDue,
        };
        let quiet = self
            .last_missed_alarm
            .is_none_or(|last| at.signed_duration_since(last) >= MISSED_ALARM_QUIET);
        let ring = live && quiet;
        if ring {
            self.last_missed_alarm = Some(at);
        }
        Some(MissedCheckin { escalation, ring })
    }
}

/// The outcome is a number; the note comes next and may be empty. Some
/// command once the note is in; what is wrong with a bad outcome.
pub fn submit_checkin(
    ask: &Ask,
    input: &str,
    strings: &Strings,
    nav: &mut Nav,
) -> Result<Option<CommandOp>, &'static str> {
    match ask {
        Ask::CheckinOutcome(case_id, num) => {
            let outcome = input
                .parse::<usize>()
                .ok()
                .and_then(|n| n.checked_sub(1))
                .and_then(|i| CheckinOutcome::ALL.get(i).copied())
                .ok_or(strings.prompt_pick_number)?;
            nav.ask(Ask::CheckinNote(case_id.clone(), *num, outcome));
            Ok(None)
        }
        Ask::CheckinNote(case_id, num, outcome) => Ok(Some(CommandOp::Checkin {
            case_id: case_id.clone(),
            checkin: *num,
            outcome: *outcome,
            note: (!input.is_empty()).then(|| input.to_string()),
            raise: None,
        })),
        _ => Ok(None),
    }
}
