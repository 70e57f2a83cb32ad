//! Console state and its one update path. Keys, clock ticks, frames from the
//! relay, connection changes and the notifier's health all arrive as
//! [`Action`]s; [`App::update`] is the only place state changes, and it
//! returns the [`Effect`]s (commands to send, a bell, a desktop
//! notification) for the I/O side to carry out.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

pub use super::action::{Action, ConnectionState, DesktopNote, Effect, NotifierHealth};
use super::alarms::Alarms;
pub use super::cases::{
    AlertView, CaseStore, CaseView, EscalationView, Labels, OpenStep, ScaleScore, ScoreSeries,
    Slot, StudentCases, StudentView,
};
use super::config::AlertPrefs;
use super::followups::{self, FollowupList, FollowupRow, Window};
use super::frames::{Frame, Route};
use super::i18n::{Lang, Strings};
use super::keymap::{self, Cmd};
use super::ledger::Ledger;
use super::list::MySteps;
pub use super::list::{
    CATEGORIES, DrillFilter, Filter, LevelFilter, ListIndex, RESORT_ABOVE, Rank, SortKey, Stats,
    StatusFilter, rank,
};
pub use super::nav::{Ask, DetailTab, Nav, Prompt, Screen, StepRef};
use super::report_actions::{self, ReportCommand, ReportKey};
use super::theme::Theme;
use crate::followup::CaseChange;
use crate::playbook::{
    ContactOutcome, OverdueReason, Playbook, StepAction, StepKind, StepState, StepView,
};
use crate::protocol::{
    Actor, Alert, CaseSnapshot, CaseStatus, CloseOutcome, Command, CommandOp, CommandResult, Event,
    EventBody, Level, Role,
};
use crate::text::{inert, inert_block};

/// A connected relay that has said nothing for this long is shown as stale
/// (it pings every 15 s, so two pings have been missed).
pub const STALE_AFTER_SECS: i64 = 30;

/// How current the data on screen is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Connected; the relay was last heard `secs` ago.
    Live { secs: i64 },
    /// Connected, but silent for longer than [`STALE_AFTER_SECS`].
    Stale { secs: i64 },
    /// Not connected; the data is `secs` old (None: never had any).
    Offline { secs: Option<i64> },
}

pub struct App {
    pub lang: Lang,
    pub strings: &'static Strings,
    pub theme: Theme,
    pub alert_prefs: AlertPrefs,
    pub now: DateTime<Utc>,
    /// Offset times are shown in (the duty terminal's local time).
    pub display_offset: FixedOffset,
    pub relay_label: String,
    /// Extra banner text from the launcher (e.g. the demo).
    pub banner: Option<String>,
    pub cases: CaseStore,
    /// Cases by student id, in the order the cases opened, and when the
    /// student's last check-in was recorded.
    /// Schools, grades and classes, each kept once (see [`Labels`]).
    labels: Labels,
    /// The list screen's rows and the header's counts, kept up to date by
    /// [`App::refresh`].
    pub list: ListIndex,
    /// Which screen, cursor and question (see [`Nav`]).
    pub nav: Nav,
    pub connection: ConnectionState,
    /// When the relay was last heard from (a frame or a ping).
    pub last_heard: Option<DateTime<Utc>>,
    pub last_seq: i64,
    /// Events up to this seq were history when this console connected;
    /// only later ones are news worth a bell or a notification.
    pub live_after: Option<i64>,
    /// The latest outcome line (a refused command, an acknowledgement).
    pub notice: Option<String>,
    pub should_quit: bool,
    /// New high/imminent cases and escalations to my role, sounding.
    pub alarms: Alarms,
    /// Commands sent and awaiting answers.
    pub ledger: Ledger,
    /// Who the relay says we are (from the session frame).
    pub me: Option<Actor>,
    pub playbooks: HashMap<String, Playbook>,
    /// Incident reports by case id, as the stream last showed them (the
    /// header counts down to the soonest open stage).
    pub reports: super::reports::Reports,
    /// "My steps", kept up to date by [`App::refresh`].
    pub my_steps: MySteps,
    /// The follow-ups view's rows, rebuilt by [`App::refresh`] when stale.
    pub followups: FollowupList,
    /// The district screen's figures, as the relay last answered.
    pub district: super::district::DistrictState,
    /// The report view's chart figures and the period asked for.
    pub charts: super::charts::ChartsState,
    /// Report submissions and reviews sent, and the latest refusal.
    pub report_actions: super::report_actions::ReportActions,
    /// The student view's record (一生一档), see `student.rs`.
    pub student: super::student::StudentPane,
}

impl App {
    pub fn new(lang: Lang, now: DateTime<Utc>, display_offset: FixedOffset) -> App {
        App {
            lang,
            strings: lang.strings(),
            theme: Theme::default(),
            alert_prefs: AlertPrefs::default(),
            now,
            display_offset,
            relay_label: String::new(),
            banner: None,
            cases: CaseStore::default(),
            labels: Labels::default(),
            list: ListIndex::default(),
            nav: Nav::default(),
            connection: ConnectionState::Connecting { attempt: 1 },
            last_heard: None,
            last_seq: 0,
            live_after: None,
            notice: None,
            should_quit: false,
            alarms: Alarms::default(),
            ledger: Ledger::default(),
            me: None,
            playbooks: HashMap::new(),
            reports: std::collections::BTreeMap::new(),
            my_steps: MySteps::default(),
            followups: Default::default(),
            district: Default::default(),
            charts: Default::default(),
            report_actions: Default::default(),
            student: Default::default(),
        }
    }

    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Key(key) => return self.on_key(key),
            Action::Tick(now) => {
                self.now = now;
                // Steps go overdue by the clock alone.
                self.list.counts_changed();
                self.followups.cadence.tick(&self.cases, self.now);
                return self.upward_tick();
            }
            Action::Frame(frame) => {
                self.last_heard = Some(self.now);
                match *frame {
                    Frame::Session(session) => {
                        if self.live_after.is_none() {
                            self.live_after = Some(session.latest_seq);
                        }
                        self.followups
                            .cadence
                            .counted(session.followup_cadence, session.latest_seq);
                        self.me = Some(session.credential);
                        self.playbooks = session
                            .playbooks
                            .into_iter()
                            .map(|p| (p.id.clone(), p))
                            .collect();
                        for slot in 0..self.cases.len() as Slot {
                            self.recount_steps(slot);
                        }
                        self.my_steps.invalidate();
                        self.followups.invalidate();
                        self.list.filter_changed();
                        self.list.counts_changed();
                    }
                    // Folded into the session by the connection; a stray
                    // one (a relay that sent more than it announced) joins
                    // the library.
                    Frame::Playbook(pb) => {
                        self.playbooks.insert(pb.id.clone(), *pb);
                    }
                    Frame::Event(event, route) => return self.apply_event(*event, route),
                    Frame::Result(result) => self.on_result(result, None),
                }
            }
            Action::Connection(state) => {
                if state == ConnectionState::Connected {
                    self.last_heard = Some(self.now);
                }
                self.connection = state;
            }
            Action::Relay(label) => self.relay_label = label,
            Action::Heard(at) => self.last_heard = Some(at.max(self.last_heard.unwrap_or(at))),
            Action::Notifier(health) => {
                if health == NotifierHealth::Unavailable && self.alarms.notifier != health {
                    // Said once; the console carries on with bell and banner.
                    self.notice = Some(self.strings.notify_unavailable.to_string());
                }
                self.alarms.notifier = health;
            }
            Action::Outbox(n) => self.ledger.outbox_waiting = n,
            Action::Sending(n) => self.ledger.sending = n,
            Action::Answered(command, result) => self.on_result(*result, Some(&command)),
            Action::Reset => {
                self.cases.clear();
                self.list.clear();
                self.last_seq = 0;
                self.live_after = None;
                self.nav.restart();
                self.alarms.clear();
                self.my_steps.clear();
                self.followups.invalidate();
                self.followups.cadence.clear();
                self.student.clear();
                self.notice = Some(self.strings.history_reset.to_string());
            }
            Action::Resize => {}
        }
        Vec::new()
    }

    /// Brings derived state up to date: the sorted list, the filtered list
    /// and the header's numbers. Called once per batch of actions, before
    /// drawing, so a replay of thousands of events sorts once, not once per
    /// event; each part is redone only when what it depends on changed.
    pub fn refresh(&mut self) {
        self.list.refresh(
            &self.cases,
            self.me.as_ref(),
            self.now,
            &mut self.nav.selected,
        );
        let role = self.my_role();
        self.my_steps.refresh(&self.cases, role);
        if self.nav.screen == Screen::Followups {
            self.refresh_followups();
        }
    }

    /// Notes that a case's place in the list may have changed.
    fn touch(&mut self, slot: Slot) {
        self.my_steps.touch(slot);
        self.list.touch(slot);
    }

    /// The list's case ids, top to bottom.
    pub fn order_ids(&self) -> Vec<&str> {
        self.list
            .order
            .iter()
            .map(|s| self.cases.at(*s).case.id.as_str())
            .collect()
    }

    /// Every open case id in sort order, whatever the filter.
    pub fn sorted_ids(&self) -> Vec<&str> {
        self.list
            .sorted
            .iter()
            .map(|s| self.cases.at(*s).case.id.as_str())
            .collect()
    }

    pub fn selected_case_id(&self) -> Option<&str> {
        self.list
            .order
            .get(self.nav.selected)
            .map(|s| self.cases.at(*s).case.id.as_str())
    }

    pub fn shows_drill(&self) -> bool {
        match &self.nav.screen {
            Screen::Detail(id) => self.cases.get(id).is_some_and(CaseView::is_drill),
            // Counted in `refresh`: drawing must not walk 40,000 cases.
            Screen::List | Screen::MySteps | Screen::Followups => self.list.stats.drills > 0,
            Screen::Student(id) => self.cases.get(id).is_some_and(CaseView::is_drill),
            Screen::Reports => self.reports.values().any(|r| r.drill),
            Screen::District => false,
            Screen::Charts => self.charts.shows_drills(),
        }
    }

    /// How current the screen is, from the connection and when the relay
    /// was last heard.
    pub fn freshness(&self) -> Freshness {
        let age = self.last_heard.map(|t| (self.now - t).num_seconds().max(0));
        match (&self.connection, age) {
            (ConnectionState::Connected, Some(secs)) if secs > STALE_AFTER_SECS => {
                Freshness::Stale { secs }
            }
            (ConnectionState::Connected, secs) => Freshness::Live {
                secs: secs.unwrap_or(0),
            },
            (_, secs) => Freshness::Offline { secs },
        }
    }

    /// Alarms whose case still waits for someone to acknowledge it.
    pub fn open_alarms(&self) -> impl Iterator<Item = &CaseView> {
        self.alarms
            .case_ids()
            .filter_map(|id| self.cases.get(id))
            .filter(|c| c.case.status == CaseStatus::Open)
    }

    fn is_live(&self, seq: i64) -> bool {
        self.live_after.is_some_and(|after| seq > after)
    }

    /// Projects one event onto the cases. `route` is the alert's route
    /// (see [`Route`]): a follow-up alert never calls for attention.
    fn apply_event(&mut self, event: Event, route: Route) -> Vec<Effect> {
        // The connection drops repeats, but a console must never double an
        // alert even if one slipped through.
        if event.seq <= self.last_seq {
            return Vec::new();
        }
        self.last_seq = event.seq;
        let live = self.is_live(event.seq);
        let mut effects = Vec::new();
        // Where the event's student stood in this month's review, when the
        // relay's count does not hold the event yet (`cadence.rs`).
        let review = self
            .followups
            .cadence
            .before(&self.cases, event.seq, &event.body);
        let initials = event
            .withheld
            .as_ref()
            .and_then(|w| w.initials.as_deref())
            .map(inert);
        match event.body {
            EventBody::Alert {
                alert,
                case,
                opened,
                ..
            } => {
                let before = self
                    .cases
                    .get(&case.id)
                    .map(|c| (c.case.level, c.case.imminent));
                let case_id = case.id.clone();
                let slot = self.apply_alert(event.seq, event.at, *alert, case, route);
                if let Some(initials) = initials
                    && let Some(view) = self.cases.get_mut(&case_id)
                {
                    view.student.initials = Some(initials);
                }
                self.touch(slot);
                // A monitored case's rows carry its level and school.
                if !self.cases.at(slot).checkins.is_empty() {
                    self.followups_changed(slot);
                }
                let view = self.cases.at(slot);
                let alarming = |level: Level, imminent: bool| level == Level::High || imminent;
                let now_alarming = alarming(view.case.level, view.case.imminent);
                let newly = match before {
                    _ if opened => now_alarming,
                    Some((level, imminent)) => now_alarming && !alarming(level, imminent),
                    None => now_alarming,
                };
                if live && newly && route == Route::Crisis && view.case.status == CaseStatus::Open {
                    effects.extend(self.raise_alarm(&case_id));
                }
            }
            EventBody::CaseAcknowledged { case, .. } => {
                if let Some(slot) = self.cases.slot(&case.id) {
                    if let Some(view) = self.cases.get_mut(&case.id) {
                        view.case = case;
                    }
                    self.touch(slot);
                }
            }
            // Follow-up changes carry the case after them, and its
            // check-ins for the follow-ups view (`followups.rs`).
            EventBody::CaseUpdated { case, change, .. } => {
                let case_id = case.id.clone();
                if let CaseChange::CheckinRecorded { checkin } = &change
                    && let Some(done) = checkin.done_at
                    && let Some(student) = self.cases.student_mut(&case.student_id)
                {
                    student.reviewed_at = Some(student.reviewed_at.map_or(done, |t| t.max(done)));
                }
                if let Some(slot) = self.cases.slot(&case.id) {
                    if let Some(view) = self.cases.get_mut(&case.id) {
                        view.case = case;
                        view.outcome = None;
                        followups::apply_change(view, &change);
                    }
                    self.followups_changed(slot);
                    self.touch(slot);
                }
                effects.extend(
                    self.missed_checkin_alarm(&case_id, &change, live, event.seq, event.at),
                );
            }
            EventBody::CaseClosed { case, outcome, .. } => {
                let id = case.id.clone();
                if let Some(slot) = self.cases.slot(&case.id) {
                    if let Some(view) = self.cases.get_mut(&case.id) {
                        view.case = case;
                        view.outcome = Some(outcome);
                    }
                    self.touch(slot);
                    self.followups_changed(slot);
                }
                self.alarms.case_closed(&id);
            }
            EventBody::ChecklistAdded {
                case_id, progress, ..
            }
            | EventBody::StepUpdated {
                case_id, progress, ..
            } => {
                if let Some(view) = self.cases.get_mut(&case_id) {
                    match view
                        .checklists
                        .iter_mut()
                        .find(|p| p.playbook == progress.playbook)
                    {
                        Some(existing) => *existing = progress,
                        None => {
                            view.checklists.push(progress);
                            view.checklists.shrink_to_fit();
                        }
                    }
                }
                if let Some(slot) = self.cases.slot(&case_id) {
                    self.recount_steps(slot);
                }
                self.list.counts_changed();
                if self.list.filter.mine {
                    self.list.filter_changed();
                }
            }
            EventBody::Escalation {
                case_id,
                playbook,
                step,
                to,
                owner,
                reason,
                ..
            } => {
                let esc = EscalationView {
                    seq: event.seq,
                    at: event.at,
                    playbook,
                    step,
                    to,
                    owner,
                    reason,
                };
                let mine = self.me.as_ref().is_some_and(|m| m.role == to);
                let mut tell = false;
                if let Some(view) = self.cases.get_mut(&case_id) {
                    if mine && view.case.status != CaseStatus::Closed {
                        tell = self.alarms.escalate(&case_id, esc.clone(), live);
                    }
                    view.escalations.push(esc);
                }
                if tell {
                    effects.extend(self.call_attention(&case_id));
                }
            }
            EventBody::ReportOpened { report, .. } | EventBody::ReportUpdated { report, .. } => {
                self.reports.insert(report.case_id.clone(), *report);
                effects.extend(self.district_on_report_event());
            }
            // A report stage past its deadline rings for the leader like an
            // escalation; the header already shows it as an alarm.
            EventBody::ReportOverdue { to, .. } => {
                if live && self.alert_prefs.bell && self.me.as_ref().is_some_and(|m| m.role == to) {
                    effects.push(Effect::Bell);
                }
                effects.extend(self.district_on_report_event());
            }
        }
        self.followups.cadence.after(&self.cases, review);
        effects
    }

    /// A new high/imminent case: banner, bell, desktop notification, each
    /// as the config file allows.
    fn raise_alarm(&mut self, case_id: &str) -> Vec<Effect> {
        let mut effects = Vec::new();
        if self.alert_prefs.banner {
            self.alarms.raise_case(case_id);
        }
        if self.alert_prefs.bell {
            effects.push(Effect::Bell);
        }
        if self.alert_prefs.desktop
            && let Some(note) = self.desktop_note(case_id, false)
        {
            effects.push(Effect::Notify(note));
        }
        effects
    }

    /// The notification for a case, from its id, level, imminence, category
    /// and drill mark only. Privacy rule (PIPL §28): a desktop notification
    /// may be read by anyone passing the screen and may be logged by the
    /// desktop, so nothing from the alert's text and no name goes in.
    pub fn desktop_note(&self, case_id: &str, escalation: bool) -> Option<DesktopNote> {
        let c = self.cases.get(case_id)?;
        let s = self.strings;
        let snap = &c.case;
        let mut summary = String::new();
        if c.is_drill() {
            summary.push_str(&format!("[{}] ", s.drill_marker));
        }
        summary.push_str(if escalation {
            s.note_escalation
        } else {
            s.note_new_case
        });
        summary.push_str(&format!(" · {} {}", inert(&snap.id), s.level(snap.level)));
        if snap.imminent {
            summary.push_str(&format!(" ‼{}", s.imminent));
        }
        let body = format!("{} · {}", s.category(snap.category), s.note_open_console);
        Some(DesktopNote {
            case_id: inert(&snap.id),
            summary,
            body,
            critical: snap.level == Level::High || snap.imminent,
        })
    }

    /// An escalation or a missed check-in for my role: the bell and a
    /// desktop notification, each as the config file allows.
    fn call_attention(&self, case_id: &str) -> Vec<Effect> {
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

    /// A check-in missed on an open case and addressed to my role: listed
    /// in the escalation banner, and called out once per storm (see
    /// [`FollowupList::missed_checkin`]).
    fn missed_checkin_alarm(
        &mut self,
        case_id: &str,
        change: &CaseChange,
        live: bool,
        seq: i64,
        at: DateTime<Utc>,
    ) -> Vec<Effect> {
        if !matches!(change, CaseChange::CheckinMissed { .. }) {
            return Vec::new();
        }
        let open = self
            .cases
            .get(case_id)
            .is_some_and(|c| c.case.status != CaseStatus::Closed);
        if !open {
            return Vec::new();
        }
        let role = self.my_role();
        let Some(missed) = self
            .followups
            .missed_checkin(change, role, self.strings, seq, at, live)
        else {
            return Vec::new();
        };
        self.alarms.note_escalation(case_id, missed.escalation);
        if !missed.ring {
            return Vec::new();
        }
        self.call_attention(case_id)
    }

    /// What places a follow-up row as of now.
    fn followup_window(&self) -> Window {
        Window::new(self.my_role(), self.now, self.display_offset)
    }

    /// The check-ins my role should make (or, once overdue, hears about),
    /// due within a week or already overdue, on cases not closed: overdue
    /// first, then by due time. Every role's when the relay has not said
    /// who I am yet. Built afresh; the view uses the cached
    /// [`App::followups`].
    pub fn followup_rows(&self) -> Vec<FollowupRow> {
        self.followups
            .build_now(&self.cases, &self.followup_window())
    }

    /// The case id of a follow-up row.
    pub fn followup_case_id(&self, row: &FollowupRow) -> &str {
        &self.cases.at(row.slot).case.id
    }

    /// One case's follow-ups changed (or it closed): its rows move.
    fn followups_changed(&mut self, slot: Slot) {
        let w = self.followup_window();
        self.followups.changed(slot, &self.cases, &w, &mut self.nav);
    }

    fn refresh_followups(&mut self) {
        let w = self.followup_window();
        self.followups
            .refresh(&self.cases, &w, self.me.as_ref(), &mut self.nav);
    }

    /// Records an alert on its case (new or known); returns the case's slot.
    fn apply_alert(
        &mut self,
        seq: i64,
        at: DateTime<Utc>,
        alert: Alert,
        case: CaseSnapshot,
        route: Route,
    ) -> Slot {
        let strings = self.strings;
        let slot = match self.cases.slot(&case.id) {
            Some(slot) => slot,
            None => self.cases.insert(CaseView {
                case: case.clone(),
                student: StudentView::default(),
                alerts: Vec::new(),
                checklists: Vec::new(),
                escalations: Vec::new(),
                outcome: None,
                open_steps: Vec::new(),
                checkins: Vec::new(),
            }),
        };
        let Some(view) = self.cases.get_mut(&case.id) else {
            return slot;
        };
        view.case = case;
        let s = &alert.student;
        let student = &mut view.student;
        // Later alerts may know more about the student; never forget what
        // an earlier one said.
        if let Some(name) = &s.name {
            student.name = Some(inert(name));
        }
        let labels = &mut self.labels;
        let mut keep = |old: &mut Option<Arc<str>>, new: &Option<String>| {
            if let Some(v) = new {
                *old = Some(labels.get(v));
            }
        };
        keep(&mut student.school, &s.school);
        keep(&mut student.grade, &s.grade);
        keep(&mut student.class, &s.class);
        student.under_14 |= s.under_14.unwrap_or(false);
        view.alerts.push(AlertView {
            seq,
            id: inert(&alert.id),
            received_at: at,
            observed_at: alert.observed_at,
            level: alert.level,
            imminent: alert.imminent,
            category: alert.category,
            source: alert.source,
            summary: alert.summary.as_deref().map(inert_block),
            signals: alert
                .signals
                .iter()
                .filter(|signal| !is_risk(signal))
                .map(describe_signal)
                .collect(),
            scores: alert
                .signals
                .iter()
                .filter_map(|signal| scale_score(signal, labels))
                .collect(),
            why: alert
                .signals
                .iter()
                .find_map(|signal| why_line(strings, signal)),
            route,
        });
        // Most cases have one alert for hours: no room kept for four.
        view.alerts.shrink_to_fit();
        if let Some(latest) = view.alerts.last_mut() {
            latest.signals.shrink_to_fit();
            latest.scores.shrink_to_fit();
        }
        slot
    }

    /// Re-derives a case's open steps after its checklists changed.
    fn recount_steps(&mut self, slot: Slot) {
        let view = self.cases.at(slot);
        let case_id = view.case.id.clone();
        let mut open = Vec::new();
        for (checklist, progress) in view.checklists.iter().enumerate() {
            let Some(pb) = self.playbooks.get(&progress.playbook) else {
                continue;
            };
            // The earliest time there is: nothing is past due, so only an
            // exhausted contact step reads as overdue here.
            for (step, v) in progress
                .view(pb, DateTime::<Utc>::MIN_UTC)
                .iter()
                .enumerate()
            {
                if let (true, Ok(checklist), Ok(step)) = (
                    v.state.is_open(),
                    u16::try_from(checklist),
                    u16::try_from(step),
                ) {
                    open.push(OpenStep::new(
                        v.step.role,
                        v.due,
                        v.act_by(),
                        v.overdue == Some(OverdueReason::AttemptsExhausted),
                        checklist,
                        step,
                    ));
                }
            }
        }
        open.shrink_to_fit();
        if let Some(view) = self.cases.get_mut(&case_id) {
            view.open_steps = open;
        }
        self.my_steps.touch(slot);
    }

    /// Other cases of the same student seen on the stream (real with real,
    /// drills with drills), newest first.
    pub fn student_history(&self, case: &CaseView) -> Vec<&CaseView> {
        let mut earlier: Vec<&CaseView> = self
            .cases
            .student(&case.case.student_id)
            .into_iter()
            .flat_map(|s| &s.slots)
            .map(|slot| self.cases.at(*slot))
            .filter(|c| c.case.id != case.case.id)
            .filter(|c| c.is_drill() == case.is_drill())
            .collect();
        earlier.sort_by_key(|c| std::cmp::Reverse(c.case.opened_at));
        earlier
    }

    /// Scale scores over every case of the student (this one included), one
    /// series per instrument, the instrument with most results first.
    pub fn score_series(&self, case: &CaseView) -> Vec<ScoreSeries> {
        let mut series: Vec<ScoreSeries> = Vec::new();
        let cases = std::iter::once(case).chain(self.student_history(case));
        for c in cases {
            for a in &c.alerts {
                for s in &a.scores {
                    match series.iter_mut().find(|x| *x.instrument == *s.instrument) {
                        Some(x) => x.points.push((a.observed_at, s.score)),
                        None => series.push(ScoreSeries {
                            instrument: s.instrument.to_string(),
                            points: vec![(a.observed_at, s.score)],
                        }),
                    }
                }
            }
        }
        for s in &mut series {
            s.points.sort_by_key(|(at, _)| *at);
        }
        series.sort_by(|a, b| {
            b.points
                .len()
                .cmp(&a.points.len())
                .then_with(|| a.instrument.cmp(&b.instrument))
        });
        series
    }

    fn on_result(&mut self, result: CommandResult, command: Option<&Command>) {
        // Answers to questions (district view, charts) and the fate of a
        // report submission or review.
        if self.take_upward_result(&result, command) {
            return;
        }
        if self.student.take_result(&result, self.strings, self.now) {
            return;
        }
        if let Some(case_id) = self.ledger.take_reveal(&result.id)
            && result.ok
            && let Some(student) = result.data.as_ref().and_then(|d| d.get("student"))
            && let Some(case) = self.cases.get_mut(&case_id)
        {
            let text = |key: &str| student.get(key).and_then(|v| v.as_str()).map(inert);
            let view = &mut case.student;
            view.name = text("name");
            for (field, key) in [
                (&mut view.school, "school"),
                (&mut view.grade, "grade"),
                (&mut view.class, "class"),
            ] {
                if let Some(v) = text(key) {
                    *field = Some(v.into());
                }
            }
        }
        // A command this run did not send (it waited in the outbox across a
        // restart) is named from the command itself.
        let earlier = command
            .filter(|c| !matches!(c.op, CommandOp::View { .. } | CommandOp::Student { .. }))
            .map(|c| format!("{} {}", c.op.case_id(), self.strings.op_name(&c.op)));
        let Some(what) = self.ledger.take_label(&result.id).or(earlier) else {
            if let (false, Some(e)) = (result.ok, &result.error) {
                tracing::warn!(code = %e.code, "a quiet command was refused");
            }
            return;
        };
        let s = self.strings;
        self.notice = Some(match (result.ok, result.error) {
            (true, _) => format!("{what} ✓ {}", s.done),
            (false, Some(e)) => format!("{what} {}: {}", s.refused, s.refusal_of(&e)),
            (false, None) => format!("{what} {}", s.refused),
        });
    }

    fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if key.kind == KeyEventKind::Release {
            return Vec::new();
        }
        if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
            self.should_quit = true;
            return Vec::new();
        }
        // Over SSH or tmux, Esc and the next key can reach the terminal
        // parser in one read, and it reports them as Alt+key. No binding
        // uses Alt, so this is what the responder typed: Esc, then the key.
        // Dropping the Esc would leave them on the wrong screen.
        if key.modifiers.contains(KeyModifiers::ALT) && key.code != KeyCode::Esc {
            let mut effects = self.on_key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
            let rest = KeyEvent {
                modifiers: key.modifiers.difference(KeyModifiers::ALT),
                ..key
            };
            effects.extend(self.on_key(rest));
            return effects;
        }
        if self.nav.prompt.is_some() {
            return self.on_prompt_key(key.code);
        }
        if self.nav.searching {
            self.on_search_key(key.code);
            return Vec::new();
        }
        if self.nav.show_help {
            // Any key closes the overlay; q still quits.
            self.nav.show_help = false;
            if key.code == KeyCode::Char('q') {
                self.should_quit = true;
            }
            return Vec::new();
        }
        self.refresh();
        match keymap::lookup_for(&self.nav.screen, key.code, self.my_role()) {
            Some(cmd) => self.run(cmd),
            None => Vec::new(),
        }
    }

    fn run(&mut self, cmd: Cmd) -> Vec<Effect> {
        match cmd {
            Cmd::Quit => self.should_quit = true,
            Cmd::Help => self.nav.show_help = true,
            Cmd::Acknowledge => return self.acknowledge_current(),
            Cmd::DismissEscalations => self.alarms.dismiss_escalations(),
            Cmd::MySteps => self.nav.open(Screen::MySteps),
            Cmd::Reports => self.nav.open(Screen::Reports),
            Cmd::Followups => {
                self.nav.open(Screen::Followups);
                // Rebuilt only if something changed since (see FollowupList).
                self.refresh_followups();
            }
            Cmd::District => return self.open_district(),
            Cmd::Charts => return self.open_charts(),
            Cmd::OpenAlarm => {
                if let Some(id) = self.open_alarms().last().map(|c| c.case.id.clone()) {
                    return self.open_case(id);
                }
            }
            _ => match self.nav.screen.clone() {
                Screen::List => return self.on_list_cmd(cmd),
                Screen::Detail(case_id) => return self.on_detail_cmd(&case_id, cmd),
                Screen::MySteps => return self.on_my_steps_cmd(cmd),
                Screen::Reports => {
                    let key = report_actions::on_cmd(
                        cmd,
                        &self.reports,
                        self.lang,
                        self.strings,
                        self.now,
                        &mut self.nav,
                    );
                    return match key {
                        ReportKey::Nothing => Vec::new(),
                        ReportKey::Notice(text) => {
                            self.notice = Some(text);
                            Vec::new()
                        }
                        ReportKey::Send(command) => self.send_report(command),
                    };
                }
                Screen::Followups => {
                    let w = self.followup_window();
                    let open = self.followups.on_cmd(
                        cmd,
                        &self.cases,
                        &w,
                        self.me.as_ref(),
                        &mut self.nav,
                    );
                    if let Some(case_id) = open {
                        return self.open_case(case_id);
                    }
                }
                Screen::District => {
                    let op = self.district.on_cmd(cmd, &mut self.nav);
                    return self.ask_district(op);
                }
                Screen::Charts => {
                    let op = self
                        .charts
                        .on_cmd(cmd, &mut self.nav, self.now, self.display_offset);
                    return self.ask_charts(op);
                }
                Screen::Student(case_id) => {
                    let op = self.student.on_cmd(&case_id, cmd, &mut self.nav);
                    return self.read_student(&case_id, op);
                }
            },
        }
        Vec::new()
    }

    fn on_search_key(&mut self, code: KeyCode) {
        match code {
            KeyCode::Enter => self.nav.searching = false,
            KeyCode::Esc => {
                self.nav.searching = false;
                self.list.filter.search.clear();
                self.list.filter_changed();
            }
            KeyCode::Backspace => self.list.search_pop(),
            KeyCode::Down => return self.move_selection(1),
            KeyCode::Up => return self.move_selection(-1),
            KeyCode::Char(c) if !c.is_control() && self.list.filter.search.chars().count() < 64 => {
                self.list.search_push(c);
            }
            _ => return,
        }
        self.refresh();
    }

    fn move_selection(&mut self, by: isize) {
        self.nav.move_selection(by, self.list.order.len());
    }

    fn on_list_cmd(&mut self, cmd: Cmd) -> Vec<Effect> {
        let last = self.list.order.len().saturating_sub(1);
        match cmd {
            Cmd::Down => self.move_selection(1),
            Cmd::Up => self.move_selection(-1),
            Cmd::PageDown => self.move_selection(10),
            Cmd::PageUp => self.move_selection(-10),
            Cmd::First => self.nav.selected = 0,
            Cmd::Last => self.nav.selected = last,
            Cmd::Open => {
                if let Some(id) = self.selected_case_id() {
                    return self.open_case(id.to_string());
                }
            }
            Cmd::Search => self.nav.searching = true,
            Cmd::FilterLevel => {
                self.list.filter.level = match self.list.filter.level {
                    LevelFilter::Any => LevelFilter::KeyOrHigher,
                    LevelFilter::KeyOrHigher => LevelFilter::High,
                    LevelFilter::High => LevelFilter::Imminent,
                    LevelFilter::Imminent => LevelFilter::Any,
                };
            }
            Cmd::FilterStatus => {
                self.list.filter.status = match self.list.filter.status {
                    StatusFilter::Any => StatusFilter::Unacknowledged,
                    StatusFilter::Unacknowledged => StatusFilter::Acknowledged,
                    StatusFilter::Acknowledged => StatusFilter::Any,
                };
            }
            Cmd::FilterCategory => {
                self.list.filter.category = match self.list.filter.category {
                    None => Some(CATEGORIES[0]),
                    Some(c) => CATEGORIES
                        .iter()
                        .position(|x| *x == c)
                        .and_then(|i| CATEGORIES.get(i + 1))
                        .copied(),
                };
            }
            Cmd::FilterSchool => self.list.filter.school = self.next_school(),
            Cmd::FilterMine => self.list.filter.mine = !self.list.filter.mine,
            Cmd::FilterDrills => {
                self.list.filter.drills = match self.list.filter.drills {
                    DrillFilter::Any => DrillFilter::RealOnly,
                    DrillFilter::RealOnly => DrillFilter::DrillsOnly,
                    DrillFilter::DrillsOnly => DrillFilter::Any,
                };
            }
            Cmd::ClearFilters => self.list.filter = Filter::default(),
            Cmd::Sort => {
                self.list.sort = self.list.sort.next();
                self.list.resort();
            }
            _ => return Vec::new(),
        }
        self.list.filter_changed();
        self.refresh();
        Vec::new()
    }

    /// The school after the current one, in name order, among open cases;
    /// after the last, no school filter.
    fn next_school(&self) -> Option<String> {
        // One pass for the smallest name after the current one: no sorting
        // of 40,000 names on a key press.
        let current = self.list.filter.school.as_deref();
        self.cases
            .iter()
            .filter(|(_, c)| c.case.status != CaseStatus::Closed)
            .filter_map(|(_, c)| c.student.school.as_deref())
            .filter(|s| current.is_none_or(|cur| *s > cur))
            .min()
            .map(str::to_string)
    }

    /// Opens the student view from a case and asks the relay for the
    /// record (the relay audits the read on every case it shows).
    fn open_student(&mut self, case_id: &str) -> Vec<Effect> {
        self.nav.screen = Screen::Student(case_id.to_string());
        self.student.open();
        let op = self.student.request(case_id);
        self.read_student(case_id, op)
    }

    /// The history tab lists the student's screenings from the record.
    fn history_record(&mut self, case_id: &str) -> Vec<Effect> {
        let Some(student_id) = self.cases.get(case_id).map(|c| &c.case.student_id) else {
            return Vec::new();
        };
        if !self.student.wants_record(student_id, self.now) {
            return Vec::new();
        }
        let op = self.student.request(case_id);
        self.read_student(case_id, op)
    }

    /// Sends the `student` read the view wants, if any, and tells the view
    /// which command id will answer it.
    fn read_student(&mut self, case_id: &str, op: Option<CommandOp>) -> Vec<Effect> {
        let Some(op) = op else {
            return Vec::new();
        };
        let effects = self.send(op);
        self.student.sent(sent_id(&effects), case_id);
        effects
    }

    fn open_district(&mut self) -> Vec<Effect> {
        self.nav.screen = Screen::District;
        let op = self.district.open();
        self.ask_district(op)
    }

    /// Sends the district question the screen wants, if any, and tells the
    /// screen which command id will answer it.
    fn ask_district(&mut self, op: Option<CommandOp>) -> Vec<Effect> {
        let Some(op) = op else {
            return Vec::new();
        };
        let effects = self.send(op);
        self.district.sent(sent_id(&effects));
        effects
    }

    /// A report changed: the district's figures did too.
    fn district_on_report_event(&mut self) -> Vec<Effect> {
        if self.nav.screen != Screen::District {
            return Vec::new();
        }
        let op = self.district.ask();
        self.ask_district(op)
    }

    /// Each clock tick: what the open district screen or report view asks
    /// again (a question deferred while one was in flight, the periodic
    /// refresh).
    fn upward_tick(&mut self) -> Vec<Effect> {
        match self.nav.screen {
            Screen::District => {
                let op = self.district.tick(self.now);
                self.ask_district(op)
            }
            Screen::Charts => {
                let op = self.charts.tick(self.now, self.display_offset);
                self.ask_charts(op)
            }
            _ => Vec::new(),
        }
    }

    /// Routes an answer the reporting screens wait for. True when it was
    /// a question's answer (nothing more to say about it); a report
    /// command's answer is noted and then told like any other.
    fn take_upward_result(&mut self, result: &CommandResult, command: Option<&Command>) -> bool {
        let op = command.map(|c| &c.op);
        if self.district.answers(result, op) {
            self.district.on_answer(result, self.strings, self.now);
            return true;
        }
        if self.charts.answers(result, op) {
            self.charts.on_answer(result, self.strings);
            return true;
        }
        self.report_actions.note_result(
            result,
            command,
            &self.reports,
            self.strings,
            &mut self.nav,
        );
        false
    }

    fn send_report(&mut self, command: ReportCommand) -> Vec<Effect> {
        let ReportCommand {
            case_id,
            narrative,
            op,
        } = command;
        let effects = self.send(op);
        self.report_actions
            .sent(sent_id(&effects), case_id, narrative);
        effects
    }

    fn open_charts(&mut self) -> Vec<Effect> {
        self.nav.screen = Screen::Charts;
        let op = self.charts.ask(self.now, self.display_offset);
        self.ask_charts(op)
    }

    /// Sends the chart question the report view wants, if any, and tells
    /// the view which command id will answer it.
    fn ask_charts(&mut self, op: Option<CommandOp>) -> Vec<Effect> {
        let Some(op) = op else {
            return Vec::new();
        };
        let effects = self.send(op);
        self.charts.sent(sent_id(&effects));
        effects
    }

    /// Opens a case's screen, where the student's name shows in full: a
    /// deliberate reveal, so the relay records who looked (a `view`
    /// command, audited; DOMAIN.md privacy).
    fn open_case(&mut self, case_id: String) -> Vec<Effect> {
        self.nav.open_case(case_id.clone());
        self.send(CommandOp::View { case_id })
    }

    fn on_detail_cmd(&mut self, case_id: &str, cmd: Cmd) -> Vec<Effect> {
        match cmd {
            Cmd::Back => self.nav.back_to_list(),
            Cmd::ToggleRoles => {
                self.nav.all_roles = !self.nav.all_roles;
                self.nav.step_cursor = 0;
            }
            Cmd::ToggleHistory => {
                self.nav.detail_tab = match self.nav.detail_tab {
                    DetailTab::Checklist => DetailTab::History,
                    DetailTab::History => DetailTab::Checklist,
                };
                // The tab lists the student's screenings from the record.
                if self.nav.detail_tab == DetailTab::History {
                    return self.history_record(case_id);
                }
            }
            Cmd::StudentRecord => return self.open_student(case_id),
            Cmd::NextScale => self.nav.chart_pick = self.nav.chart_pick.wrapping_add(1),
            Cmd::ScrollDown => self.nav.detail_scroll = self.nav.detail_scroll.saturating_add(1),
            Cmd::ScrollUp => self.nav.detail_scroll = self.nav.detail_scroll.saturating_sub(1),
            Cmd::AddPlaybook => self.nav.ask(Ask::AddPlaybook(case_id.to_string())),
            Cmd::CloseCase => self.nav.ask(Ask::CloseOutcome(case_id.to_string())),
            Cmd::Reveal => self.nav.ask(Ask::RevealReason(case_id.to_string())),
            _ => {
                let mut rows = self.case_step_rows(case_id);
                let len = rows.len();
                let current =
                    (self.nav.step_cursor < len).then(|| rows.swap_remove(self.nav.step_cursor));
                return self.on_step_list_cmd(len, current, cmd);
            }
        }
        Vec::new()
    }

    fn on_my_steps_cmd(&mut self, cmd: Cmd) -> Vec<Effect> {
        let current = self.my_step_row(self.nav.step_cursor);
        match cmd {
            Cmd::Back => self.nav.back_to_list(),
            Cmd::OpenStepCase => {
                if let Some(row) = current {
                    return self.open_case(row.target.case_id);
                }
            }
            _ => return self.on_step_list_cmd(self.my_steps.len(), current, cmd),
        }
        Vec::new()
    }

    /// Commands shared by every list of steps: move, do, skip. `len` rows,
    /// `current` the one under the cursor.
    fn on_step_list_cmd(&mut self, len: usize, current: Option<StepRow>, cmd: Cmd) -> Vec<Effect> {
        match cmd {
            Cmd::Down => self.nav.step_down(len),
            Cmd::Up => self.nav.step_up(),
            Cmd::DoStep => {
                if let Some(row) = current {
                    return self.do_step(row.target, &row.kind);
                }
            }
            Cmd::SkipStep => {
                if let Some(row) = current {
                    self.nav.ask(Ask::SkipReason(row.target));
                }
            }
            _ => {}
        }
        Vec::new()
    }

    /// Enter on a step: a tick sends at once; other kinds ask first.
    fn do_step(&mut self, target: StepRef, kind: &StepKind) -> Vec<Effect> {
        match kind {
            StepKind::Check => return self.send_step(target, StepAction::Complete),
            StepKind::Note => self.nav.ask(Ask::NoteText(target)),
            StepKind::Choice { .. } => self.nav.ask(Ask::Choice(target)),
            StepKind::Contact { .. } => self.nav.ask(Ask::ContactOutcome(target)),
            StepKind::Referral => self.nav.ask(Ask::ReferralInstitution(target)),
        }
        Vec::new()
    }

    fn on_prompt_key(&mut self, code: KeyCode) -> Vec<Effect> {
        let Some(prompt) = self.nav.prompt.as_mut() else {
            return Vec::new();
        };
        match code {
            KeyCode::Esc => self.nav.prompt = None,
            KeyCode::Backspace => {
                prompt.input.pop();
            }
            KeyCode::Char(c) if !c.is_control() && prompt.input.chars().count() < 500 => {
                prompt.input.push(c)
            }
            KeyCode::Enter => {
                let Some(prompt) = self.nav.prompt.take() else {
                    return Vec::new();
                };
                return match self.submit(&prompt.ask, prompt.input.trim()) {
                    Ok(effects) => effects,
                    Err(error) => {
                        self.nav.prompt = Some(Prompt {
                            error: Some(error.to_string()),
                            ..prompt
                        });
                        Vec::new()
                    }
                };
            }
            _ => {}
        }
        Vec::new()
    }

    /// Turns a prompt's answer into a command, or says what is wrong.
    fn submit(&mut self, ask: &Ask, input: &str) -> Result<Vec<Effect>, &'static str> {
        let s = self.strings;
        let nonempty = |text: &str| {
            if text.is_empty() {
                Err(s.prompt_empty)
            } else {
                Ok(text.to_string())
            }
        };
        let pick = |max: usize| -> Result<usize, &'static str> {
            input
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .map(|n| n - 1)
                .ok_or(s.prompt_pick_number)
        };
        match ask {
            Ask::SkipReason(t) => {
                let reason = nonempty(input)?;
                Ok(self.send_step(t.clone(), StepAction::Skip { reason }))
            }
            Ask::NoteText(t) => {
                let text = nonempty(input)?;
                Ok(self.send_step(t.clone(), StepAction::Note { text }))
            }
            Ask::Choice(t) => {
                let options = self.step_options(t);
                let i = pick(options.len())?;
                let option = options[i].clone();
                Ok(self.send_step(t.clone(), StepAction::Choose { option }))
            }
            Ask::ContactOutcome(t) => {
                let outcome = [
                    ContactOutcome::Reached,
                    ContactOutcome::NoAnswer,
                    ContactOutcome::Refused,
                ][pick(3)?];
                Ok(self.send_step(
                    t.clone(),
                    StepAction::Contact {
                        outcome,
                        remark: None,
                    },
                ))
            }
            Ask::ReferralInstitution(t) => {
                let institution = nonempty(input)?;
                self.nav.ask(Ask::ReferralTime(t.clone(), institution));
                Ok(Vec::new())
            }
            Ask::ReferralTime(t, institution) => {
                let appointment =
                    parse_when(input, self.now, self.display_offset).ok_or(s.prompt_bad_time)?;
                Ok(self.send_step(
                    t.clone(),
                    StepAction::Referral {
                        institution: institution.clone(),
                        appointment,
                    },
                ))
            }
            Ask::AddPlaybook(case_id) => {
                let ids = self.playbook_ids();
                let playbook = ids[pick(ids.len())?].clone();
                Ok(self.send(CommandOp::AddPlaybook {
                    case_id: case_id.clone(),
                    playbook,
                }))
            }
            Ask::CloseOutcome(case_id) => {
                let outcome = CloseOutcome::ALL[pick(CloseOutcome::ALL.len())?];
                if self.me.as_ref().is_some_and(|m| m.role == Role::Leader) {
                    self.nav.ask(Ask::CloseReason(case_id.clone(), outcome));
                    return Ok(Vec::new());
                }
                Ok(self.send(CommandOp::Close {
                    case_id: case_id.clone(),
                    outcome,
                    note: None,
                    override_reason: None,
                }))
            }
            Ask::RevealReason(case_id) => {
                let reason = nonempty(input)?;
                let effects = self.send(CommandOp::Reveal {
                    case_id: case_id.clone(),
                    reason,
                });
                for effect in &effects {
                    if let Effect::Send(cmd) = effect {
                        self.ledger.reveal(&cmd.id, case_id);
                    }
                }
                Ok(effects)
            }
            Ask::CheckinOutcome(..) | Ask::CheckinNote(..) => {
                Ok(
                    match followups::submit_checkin(ask, input, s, &mut self.nav)? {
                        Some(op) => self.send(op),
                        None => Vec::new(),
                    },
                )
            }
            Ask::ReportNarrative(..) | Ask::ReturnReason(..) => {
                Ok(match report_actions::submit_prompt(ask, input, s)? {
                    Some(command) => self.send_report(command),
                    None => Vec::new(),
                })
            }
            Ask::CloseReason(case_id, outcome) => Ok(self.send(CommandOp::Close {
                case_id: case_id.clone(),
                outcome: *outcome,
                note: None,
                override_reason: (!input.is_empty()).then(|| input.to_string()),
            })),
        }
    }

    /// Option ids of a choice step, in order.
    pub fn step_options(&self, t: &StepRef) -> Vec<String> {
        self.playbooks
            .get(&t.playbook)
            .and_then(|pb| pb.step(&t.step))
            .map(|step| step.kind.options().iter().map(|o| o.id.clone()).collect())
            .unwrap_or_default()
    }

    /// Playbook ids in a stable order (for the add-playbook prompt).
    pub fn playbook_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.playbooks.keys().cloned().collect();
        ids.sort();
        ids
    }

    fn send_step(&mut self, target: StepRef, action: StepAction) -> Vec<Effect> {
        self.send(CommandOp::Step {
            case_id: target.case_id,
            playbook: target.playbook,
            step: target.step,
            action,
        })
    }

    fn send(&mut self, op: CommandOp) -> Vec<Effect> {
        let id = self.ledger.next_id();
        // Opening a case is not news to the one who opened it: a view is
        // sent quietly, and a refusal of it goes to the log.
        if !matches!(op, CommandOp::View { .. } | CommandOp::Student { .. }) && !op.is_query() {
            let label = format!("{} {}", op.case_id(), self.strings.op_name(&op));
            self.notice = Some(format!("{label} {}", self.strings.sent));
            self.ledger.label(&id, label);
        }
        vec![Effect::Send(Command {
            id,
            client_at: Some(self.now.with_timezone(&self.display_offset)),
            terminal: None,
            op,
        })]
    }

    fn acknowledge_current(&mut self) -> Vec<Effect> {
        let case_id = match &self.nav.screen {
            Screen::Detail(id) => Some(id.clone()),
            Screen::List => self.selected_case_id().map(str::to_string),
            Screen::MySteps => self
                .my_step_row(self.nav.step_cursor)
                .map(|r| r.target.case_id),
            Screen::Reports => None,
            Screen::Followups => self
                .followups
                .selected_case(&self.cases, self.nav.step_cursor),
            Screen::District | Screen::Charts => None,
            Screen::Student(id) => Some(id.clone()),
        };
        match case_id {
            Some(case_id) => self.send(CommandOp::Acknowledge { case_id }),
            None => Vec::new(),
        }
    }

    pub fn my_role(&self) -> Option<Role> {
        self.me.as_ref().map(|m| m.role)
    }

    /// The steps shown on a case screen: every checklist's applicable steps
    /// for my role (all roles when toggled), in playbook order.
    pub fn case_step_rows(&self, case_id: &str) -> Vec<StepRow> {
        let Some(case) = self.cases.get(case_id) else {
            return Vec::new();
        };
        let role = self.my_role();
        let mut rows = Vec::new();
        for progress in &case.checklists {
            let Some(pb) = self.playbooks.get(&progress.playbook) else {
                continue;
            };
            for v in progress.view(pb, self.now) {
                if v.state == StepState::Inactive {
                    continue;
                }
                // My steps include those my role may work beside their
                // owner (`also`): at night the guard on the roof records
                // "stay with the student".
                let mine = role.is_some_and(|r| v.step.role == r || v.step.also.contains(&r));
                if !self.nav.all_roles && !mine {
                    continue;
                }
                rows.push(StepRow::new(case_id, pb, &v));
            }
        }
        rows
    }

    /// Row `i` of "my steps" (every open step for my role across all open
    /// cases, soonest due first), built against the clock now. Only the
    /// rows on screen and the one a key acts on are ever built: the order
    /// itself is kept by [`MySteps`].
    pub fn my_step_row(&self, i: usize) -> Option<StepRow> {
        let key = self.my_steps.get(i)?;
        let case = self.cases.at(key.slot());
        let open = case.open_steps.get(usize::from(key.open_step))?;
        let progress = case.checklists.get(usize::from(open.checklist))?;
        let pb = self.playbooks.get(&progress.playbook)?;
        let views = progress.view(pb, self.now);
        let view = views.get(usize::from(open.step))?;
        Some(StepRow::new(&case.case.id, pb, view))
    }
}

/// One row of a step list, owned so key handling can keep it.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRow {
    pub target: StepRef,
    pub kind: StepKind,
    pub role: Role,
    pub required: bool,
    pub state: StepState,
    pub act_by: Option<DateTime<Utc>>,
    pub overdue: Option<OverdueReason>,
    pub failed_attempts: u32,
}

impl StepRow {
    fn new(case_id: &str, pb: &Playbook, v: &StepView) -> StepRow {
        StepRow {
            target: StepRef {
                case_id: case_id.to_string(),
                playbook: pb.id.clone(),
                step: v.step.id.clone(),
            },
            kind: v.step.kind.clone(),
            role: v.step.role,
            required: v.step.required,
            state: v.state,
            act_by: v.act_by(),
            overdue: v.overdue,
            failed_attempts: v.failed_attempts,
        }
    }
}

/// The id of the command among `effects` (a question waits for its answer
/// by it).
fn sent_id(effects: &[Effect]) -> Option<String> {
    effects.iter().find_map(|e| match e {
        Effect::Send(cmd) => Some(cmd.id.clone()),
        _ => None,
    })
}

/// A time typed by a responder: `+30m`, `+2h`, `+1d`, or local
/// `YYYY-MM-DD HH:MM`.
pub fn parse_when(input: &str, now: DateTime<Utc>, offset: FixedOffset) -> Option<DateTime<Utc>> {
    if let Some(rel) = input.strip_prefix('+') {
        let interval = crate::playbook::Interval::parse(rel).ok()?;
        return Some(now + interval.to_chrono());
    }
    let naive = chrono::NaiveDateTime::parse_from_str(input, "%Y-%m-%d %H:%M").ok()?;
    naive
        .and_local_timezone(offset)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

/// One line per signal: its kind and the fields a responder needs, inert.
fn describe_signal(signal: &serde_json::Value) -> String {
    let Some(obj) = signal.as_object() else {
        return String::new();
    };
    let mut parts = Vec::new();
    if let Some(kind) = obj.get("kind").and_then(|v| v.as_str()) {
        parts.push(kind.to_string());
    }
    for (key, value) in obj.iter().filter(|(k, _)| k.as_str() != "kind") {
        let value = match value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        parts.push(format!("{key}={value}"));
    }
    crate::text::fit(&inert(&parts.join(" ")), 200)
}

fn is_risk(signal: &serde_json::Value) -> bool {
    signal.get("kind").and_then(serde_json::Value::as_str) == Some("risk")
}

/// The "why" line of a `risk` signal: each contribution as label and
/// value, with the level it decides (`→ 高危`) or the weight it adds
/// (`(+2)`), then the rule and its version:
/// `UPI 第25题 = 是 → 高危 · PHQ-9 总分 17 (+2) · 规则 upi v3`.
/// Labels follow the console's language (the other one if missing). Every
/// piece is untrusted text and made inert.
fn why_line(s: &Strings, signal: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    if !is_risk(signal) {
        return None;
    }
    let text = |v: Option<&Value>| -> Option<String> {
        match v? {
            Value::String(t) => Some(inert(t.trim())),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    };
    let (mine, other) = if s.lang_is_zh() {
        ("label_zh", "label_en")
    } else {
        ("label_en", "label_zh")
    };
    let mut parts = Vec::new();
    for c in signal.get("contributions")?.as_array()? {
        let Some(label) = text(c.get(mine))
            .filter(|l| !l.is_empty())
            .or_else(|| text(c.get(other)))
        else {
            continue;
        };
        let value = text(c.get("value")).unwrap_or_default();
        let effect =
            c.get("effect").filter(|e| !e.is_null()).map(|e| {
                match serde_json::from_value::<Level>(e.clone()) {
                    Ok(level) => s.level(level).to_string(),
                    Err(_) => text(Some(e)).unwrap_or_default(),
                }
            });
        let weight = c
            .get("weight")
            .and_then(Value::as_f64)
            .filter(|w| *w != 0.0);
        parts.push(match (effect, weight) {
            (Some(effect), _) => format!("{label} = {value} → {effect}"),
            (None, Some(w)) if w.fract() == 0.0 => format!("{label} {value} ({w:+.0})"),
            (None, Some(w)) => format!("{label} {value} ({w:+})"),
            (None, None) => format!("{label} {value}"),
        });
    }
    if let Some(rule) = text(signal.get("rule")) {
        match text(signal.get("rule_version")) {
            Some(version) => parts.push(format!("{} {rule} v{version}", s.why_rule)),
            None => parts.push(format!("{} {rule}", s.why_rule)),
        }
    }
    (!parts.is_empty()).then(|| crate::text::fit(&parts.join(" · "), 300))
}

/// A scale result from a signal, if it is one: `kind` "scale", a text
/// `instrument` and a numeric `score`. Anything else is not charted.
fn scale_score(signal: &serde_json::Value, labels: &mut Labels) -> Option<ScaleScore> {
    let obj = signal.as_object()?;
    if obj.get("kind")?.as_str()? != "scale" {
        return None;
    }
    let instrument = obj.get("instrument")?.as_str()?.trim();
    let score = obj.get("score")?.as_f64()?;
    if instrument.is_empty() || !score.is_finite() {
        return None;
    }
    Some(ScaleScore {
        instrument: labels.get(&crate::text::fit(&inert(instrument), 16)),
        score,
    })
}
