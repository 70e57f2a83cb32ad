//! Console state and its one update path. Keys, clock ticks, frames from the
//! relay and connection changes all arrive as [`Action`]s; [`App::update`]
//! is the only place state changes, and it returns the [`Effect`]s (commands
//! to send) for the I/O tasks to carry out.

use std::collections::HashMap;

use chrono::{DateTime, FixedOffset, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::i18n::{Lang, Strings};
use crate::protocol::{
    Alert, AlertStatus, CaseSnapshot, CaseStatus, Category, Command, CommandOp, CommandResult,
    Event, EventBody, Level, ServerFrame, Source,
};
use crate::text::{inert, inert_block};

/// Everything that can change the console's state.
#[derive(Debug, Clone)]
pub enum Action {
    Key(KeyEvent),
    /// The clock moved (countdowns and ages are drawn against this).
    Tick(DateTime<Utc>),
    Frame(Box<ServerFrame>),
    Connection(ConnectionState),
    Resize,
}

/// What the I/O side must do after an update.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Send(Command),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    Connecting {
        attempt: u32,
    },
    Connected,
    /// Lost; the next attempt is in `retry_in_secs`.
    Retrying {
        attempt: u32,
        retry_in_secs: u64,
    },
    /// The relay refused the credential (HTTP status); retried slowly.
    Refused {
        status: u16,
        retry_in_secs: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screen {
    List,
    Detail(String),
}

/// A student as a responder sees them, from the latest alert that named
/// them. All text is already made inert.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StudentView {
    pub id: String,
    pub name: Option<String>,
    pub school: Option<String>,
    pub grade: Option<String>,
    pub class: Option<String>,
    pub under_14: bool,
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
    /// Each signal as one readable line.
    pub signals: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CaseView {
    pub case: CaseSnapshot,
    pub student: StudentView,
    pub alerts: Vec<AlertView>,
}

impl CaseView {
    pub fn is_drill(&self) -> bool {
        self.case.alert_status != AlertStatus::Actual
    }

    /// The list order: imminent first, then highest level, then oldest.
    fn rank(&self) -> (bool, std::cmp::Reverse<Level>, DateTime<Utc>, &str) {
        (
            !self.case.imminent,
            std::cmp::Reverse(self.case.level),
            self.case.opened_at,
            &self.case.id,
        )
    }
}

pub struct App {
    pub lang: Lang,
    pub strings: &'static Strings,
    pub now: DateTime<Utc>,
    /// Offset times are shown in (the duty terminal's local time).
    pub display_offset: FixedOffset,
    pub relay_label: String,
    /// Extra banner text from the launcher (e.g. the demo).
    pub banner: Option<String>,
    pub cases: HashMap<String, CaseView>,
    /// Open case ids in list order; rebuilt lazily by [`App::refresh`].
    pub order: Vec<String>,
    order_stale: bool,
    pub selected: usize,
    pub screen: Screen,
    pub detail_scroll: u16,
    pub show_help: bool,
    pub connection: ConnectionState,
    pub last_seq: i64,
    /// The latest outcome line (a refused command, an acknowledgement).
    pub notice: Option<String>,
    pub should_quit: bool,
    next_command: u64,
    /// Identifies this console run in command ids.
    session_tag: String,
    pending: HashMap<String, String>,
}

impl App {
    pub fn new(lang: Lang, now: DateTime<Utc>, display_offset: FixedOffset) -> App {
        App {
            lang,
            strings: lang.strings(),
            now,
            display_offset,
            relay_label: String::new(),
            banner: None,
            cases: HashMap::new(),
            order: Vec::new(),
            order_stale: false,
            selected: 0,
            screen: Screen::List,
            detail_scroll: 0,
            show_help: false,
            connection: ConnectionState::Connecting { attempt: 1 },
            last_seq: 0,
            notice: None,
            should_quit: false,
            next_command: 0,
            session_tag: format!("{:x}", fastrand::u64(..)),
            pending: HashMap::new(),
        }
    }

    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Key(key) => return self.on_key(key),
            Action::Tick(now) => self.now = now,
            Action::Frame(frame) => match *frame {
                ServerFrame::Event(event) => self.apply_event(event),
                ServerFrame::Result(result) => self.on_result(result),
            },
            Action::Connection(state) => self.connection = state,
            Action::Resize => {}
        }
        Vec::new()
    }

    /// Brings derived state (the sorted list) up to date. Called once per
    /// batch of actions, before drawing, so a replay of thousands of events
    /// sorts once, not once per event.
    pub fn refresh(&mut self) {
        if !self.order_stale {
            return;
        }
        let keep = self.selected_case_id().map(str::to_string);
        let mut open: Vec<&CaseView> = self
            .cases
            .values()
            .filter(|c| c.case.status != CaseStatus::Closed)
            .collect();
        open.sort_by(|a, b| a.rank().cmp(&b.rank()));
        self.order = open.into_iter().map(|c| c.case.id.clone()).collect();
        self.order_stale = false;
        if let Some(id) = keep
            && let Some(i) = self.order.iter().position(|x| *x == id)
        {
            self.selected = i;
        }
        self.selected = self.selected.min(self.order.len().saturating_sub(1));
    }

    pub fn selected_case_id(&self) -> Option<&str> {
        self.order.get(self.selected).map(String::as_str)
    }

    pub fn shows_drill(&self) -> bool {
        match &self.screen {
            Screen::Detail(id) => self.cases.get(id).is_some_and(CaseView::is_drill),
            Screen::List => self
                .order
                .iter()
                .any(|id| self.cases.get(id).is_some_and(CaseView::is_drill)),
        }
    }

    fn apply_event(&mut self, event: Event) {
        // The connection drops repeats, but a console must never double an
        // alert even if one slipped through.
        if event.seq <= self.last_seq {
            return;
        }
        self.last_seq = event.seq;
        match event.body {
            EventBody::Alert { alert, case, .. } => {
                self.apply_alert(event.seq, event.at, *alert, case)
            }
            EventBody::CaseAcknowledged { case, .. } => {
                if let Some(view) = self.cases.get_mut(&case.id) {
                    view.case = case;
                }
            }
        }
        self.order_stale = true;
    }

    fn apply_alert(&mut self, seq: i64, at: DateTime<Utc>, alert: Alert, case: CaseSnapshot) {
        let view = self
            .cases
            .entry(case.id.clone())
            .or_insert_with(|| CaseView {
                case: case.clone(),
                student: StudentView::default(),
                alerts: Vec::new(),
            });
        view.case = case;
        let s = &alert.student;
        let student = &mut view.student;
        student.id = inert(&s.id);
        // Later alerts may know more about the student; never forget what
        // an earlier one said.
        let keep = |old: &mut Option<String>, new: &Option<String>| {
            if let Some(v) = new {
                *old = Some(inert(v));
            }
        };
        keep(&mut student.name, &s.name);
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
            signals: alert.signals.iter().map(describe_signal).collect(),
        });
    }

    fn on_result(&mut self, result: CommandResult) {
        let what = self.pending.remove(&result.id).unwrap_or_default();
        self.notice = Some(match (result.ok, result.error) {
            (true, _) => format!("{what} {}", self.strings.ack_done),
            (false, Some(e)) => format!("{what} {}: {}", self.strings.refused, inert(&e.message)),
            (false, None) => format!("{what} {}", self.strings.refused),
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
        if self.show_help {
            // Any key closes the overlay; q still quits.
            self.show_help = false;
            if key.code == KeyCode::Char('q') {
                self.should_quit = true;
            }
            return Vec::new();
        }
        self.refresh();
        match key.code {
            KeyCode::Char('q') => self.should_quit = true,
            KeyCode::Char('?') => self.show_help = true,
            KeyCode::Char('a') => return self.acknowledge_current(),
            _ => match self.screen.clone() {
                Screen::List => self.on_list_key(key.code),
                Screen::Detail(_) => self.on_detail_key(key.code),
            },
        }
        Vec::new()
    }

    fn on_list_key(&mut self, code: KeyCode) {
        let last = self.order.len().saturating_sub(1);
        match code {
            KeyCode::Down | KeyCode::Char('j') => self.selected = (self.selected + 1).min(last),
            KeyCode::Up | KeyCode::Char('k') => self.selected = self.selected.saturating_sub(1),
            KeyCode::PageDown => self.selected = (self.selected + 10).min(last),
            KeyCode::PageUp => self.selected = self.selected.saturating_sub(10),
            KeyCode::Home | KeyCode::Char('g') => self.selected = 0,
            KeyCode::End | KeyCode::Char('G') => self.selected = last,
            KeyCode::Enter => {
                if let Some(id) = self.selected_case_id() {
                    self.screen = Screen::Detail(id.to_string());
                    self.detail_scroll = 0;
                }
            }
            _ => {}
        }
    }

    fn on_detail_key(&mut self, code: KeyCode) {
        match code {
            KeyCode::Esc | KeyCode::Backspace | KeyCode::Left => self.screen = Screen::List,
            KeyCode::Down | KeyCode::Char('j') => {
                self.detail_scroll = self.detail_scroll.saturating_add(1)
            }
            KeyCode::Up | KeyCode::Char('k') => {
                self.detail_scroll = self.detail_scroll.saturating_sub(1)
            }
            KeyCode::PageDown => self.detail_scroll = self.detail_scroll.saturating_add(10),
            KeyCode::PageUp => self.detail_scroll = self.detail_scroll.saturating_sub(10),
            _ => {}
        }
    }

    fn acknowledge_current(&mut self) -> Vec<Effect> {
        let case_id = match &self.screen {
            Screen::Detail(id) => Some(id.clone()),
            Screen::List => self.selected_case_id().map(str::to_string),
        };
        let Some(case_id) = case_id else {
            return Vec::new();
        };
        self.next_command += 1;
        let id = format!("{}-{}", self.session_tag, self.next_command);
        self.pending.insert(id.clone(), case_id.clone());
        self.notice = Some(format!("{case_id} {}", self.strings.ack_sent));
        vec![Effect::Send(Command {
            id,
            client_at: Some(self.now.fixed_offset()),
            terminal: None,
            op: CommandOp::Acknowledge { case_id },
        })]
    }
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
