//! Console state and its one update path. Keys, clock ticks, frames from the
//! relay and connection changes all arrive as [`Action`]s; [`App::update`]
//! is the only place state changes, and it returns the [`Effect`]s (commands
//! to send) for the I/O tasks to carry out.

use std::collections::HashMap;

use chrono::{DateTime, FixedOffset, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::i18n::{Lang, Strings};
use crate::playbook::{
    ContactOutcome, OverdueReason, Playbook, Progress, StepAction, StepKind, StepState, StepView,
};
use crate::protocol::{
    Actor, Alert, AlertStatus, CaseSnapshot, CaseStatus, Category, CloseOutcome, Command,
    CommandOp, CommandResult, Event, EventBody, Level, Role, ServerFrame, Source,
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
    /// The relay's history is not the one this console followed: drop
    /// everything and rebuild from its stream.
    Reset,
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
    /// Every open step for my role across all cases, soonest due first.
    MySteps,
}

/// A step a key can act on: which case, which checklist, which step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRef {
    pub case_id: String,
    pub playbook: String,
    pub step: String,
}

/// A one-line question the console is asking (a reason, a note, a choice).
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    pub ask: Ask,
    pub input: String,
    /// Why the last submission was not accepted, shown under the input.
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Ask {
    SkipReason(StepRef),
    NoteText(StepRef),
    /// Pick an option by its number.
    Choice(StepRef),
    /// 1 reached, 2 no answer, 3 refused.
    ContactOutcome(StepRef),
    ReferralInstitution(StepRef),
    ReferralTime(StepRef, String),
    AddPlaybook(String),
    CloseOutcome(String),
    /// Why a leader closes over open required steps (empty when none).
    CloseReason(String, CloseOutcome),
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
    /// Checklists in the order they were attached.
    pub checklists: Vec<Progress>,
    pub escalations: Vec<EscalationView>,
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
    /// Who the relay says we are (from the session frame).
    pub me: Option<Actor>,
    pub playbooks: HashMap<String, Playbook>,
    /// Cursor over the steps shown on the case screen or in "my steps".
    pub step_cursor: usize,
    /// Show every role's steps on the case screen, not only mine.
    pub all_roles: bool,
    pub prompt: Option<Prompt>,
    /// Escalations addressed to my role not yet dismissed on this console.
    pub unseen_escalations: Vec<(String, EscalationView)>,
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
            me: None,
            playbooks: HashMap::new(),
            step_cursor: 0,
            all_roles: false,
            prompt: None,
            unseen_escalations: Vec::new(),
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
                ServerFrame::Session(session) => {
                    self.me = Some(session.credential);
                    self.playbooks = session
                        .playbooks
                        .into_iter()
                        .map(|p| (p.id.clone(), p))
                        .collect();
                }
                ServerFrame::Event(event) => self.apply_event(*event),
                ServerFrame::Result(result) => self.on_result(result),
            },
            Action::Connection(state) => self.connection = state,
            Action::Reset => {
                self.cases.clear();
                self.order.clear();
                self.last_seq = 0;
                self.selected = 0;
                self.step_cursor = 0;
                self.screen = Screen::List;
                self.unseen_escalations.clear();
                self.notice = Some(self.strings.history_reset.to_string());
            }
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
            Screen::List | Screen::MySteps => self
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
            EventBody::CaseAcknowledged { case, .. } | EventBody::CaseClosed { case, .. } => {
                if let Some(view) = self.cases.get_mut(&case.id) {
                    view.case = case;
                }
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
                        None => view.checklists.push(progress),
                    }
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
                if let Some(view) = self.cases.get_mut(&case_id) {
                    if mine && view.case.status != CaseStatus::Closed {
                        self.unseen_escalations.push((case_id.clone(), esc.clone()));
                    }
                    view.escalations.push(esc);
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
                checklists: Vec::new(),
                escalations: Vec::new(),
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
            (true, _) => format!("{what} ✓ {}", self.strings.done),
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
        if self.prompt.is_some() {
            return self.on_prompt_key(key.code);
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
            KeyCode::Char('e') => self.unseen_escalations.clear(),
            KeyCode::Char('m') => {
                self.screen = Screen::MySteps;
                self.step_cursor = 0;
            }
            _ => match self.screen.clone() {
                Screen::List => self.on_list_key(key.code),
                Screen::Detail(case_id) => return self.on_detail_key(&case_id, key.code),
                Screen::MySteps => return self.on_my_steps_key(key.code),
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
                    self.open_case(id.to_string());
                }
            }
            _ => {}
        }
    }

    fn open_case(&mut self, case_id: String) {
        self.screen = Screen::Detail(case_id);
        self.detail_scroll = 0;
        self.step_cursor = 0;
    }

    fn on_detail_key(&mut self, case_id: &str, code: KeyCode) -> Vec<Effect> {
        let rows = self.case_step_rows(case_id);
        match code {
            KeyCode::Esc | KeyCode::Backspace | KeyCode::Left => self.screen = Screen::List,
            KeyCode::Char('t') => {
                self.all_roles = !self.all_roles;
                self.step_cursor = 0;
            }
            KeyCode::Char('J') => self.detail_scroll = self.detail_scroll.saturating_add(1),
            KeyCode::Char('K') => self.detail_scroll = self.detail_scroll.saturating_sub(1),
            KeyCode::Char('p') => self.ask(Ask::AddPlaybook(case_id.to_string())),
            KeyCode::Char('C') => self.ask(Ask::CloseOutcome(case_id.to_string())),
            _ => return self.on_step_list_key(rows, code),
        }
        Vec::new()
    }

    fn on_my_steps_key(&mut self, code: KeyCode) -> Vec<Effect> {
        let rows = self.my_step_rows();
        match code {
            KeyCode::Esc | KeyCode::Backspace | KeyCode::Left => self.screen = Screen::List,
            KeyCode::Char('o') => {
                if let Some(row) = rows.get(self.step_cursor) {
                    self.open_case(row.target.case_id.clone());
                }
            }
            _ => return self.on_step_list_key(rows, code),
        }
        Vec::new()
    }

    /// Keys shared by every list of steps: move, do, skip.
    fn on_step_list_key(&mut self, rows: Vec<StepRow>, code: KeyCode) -> Vec<Effect> {
        let last = rows.len().saturating_sub(1);
        match code {
            KeyCode::Down | KeyCode::Char('j') => {
                self.step_cursor = (self.step_cursor + 1).min(last)
            }
            KeyCode::Up | KeyCode::Char('k') => {
                self.step_cursor = self.step_cursor.saturating_sub(1)
            }
            KeyCode::Enter | KeyCode::Char(' ') => {
                if let Some((target, kind)) = rows
                    .get(self.step_cursor)
                    .map(|r| (r.target.clone(), r.kind.clone()))
                {
                    return self.do_step(target, &kind);
                }
            }
            KeyCode::Char('s') => {
                if let Some(row) = rows.get(self.step_cursor) {
                    self.ask(Ask::SkipReason(row.target.clone()));
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
            StepKind::Note => self.ask(Ask::NoteText(target)),
            StepKind::Choice { .. } => self.ask(Ask::Choice(target)),
            StepKind::Contact { .. } => self.ask(Ask::ContactOutcome(target)),
            StepKind::Referral => self.ask(Ask::ReferralInstitution(target)),
        }
        Vec::new()
    }

    fn ask(&mut self, ask: Ask) {
        self.prompt = Some(Prompt {
            ask,
            input: String::new(),
            error: None,
        });
    }

    fn on_prompt_key(&mut self, code: KeyCode) -> Vec<Effect> {
        let Some(prompt) = self.prompt.as_mut() else {
            return Vec::new();
        };
        match code {
            KeyCode::Esc => self.prompt = None,
            KeyCode::Backspace => {
                prompt.input.pop();
            }
            KeyCode::Char(c) if !c.is_control() && prompt.input.chars().count() < 500 => {
                prompt.input.push(c)
            }
            KeyCode::Enter => {
                let prompt = self.prompt.take().expect("prompt checked above");
                return match self.submit(&prompt.ask, prompt.input.trim()) {
                    Ok(effects) => effects,
                    Err(error) => {
                        self.prompt = Some(Prompt {
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
                self.ask(Ask::ReferralTime(t.clone(), institution));
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
                    self.ask(Ask::CloseReason(case_id.clone(), outcome));
                    return Ok(Vec::new());
                }
                Ok(self.send(CommandOp::Close {
                    case_id: case_id.clone(),
                    outcome,
                    note: None,
                    override_reason: None,
                }))
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
        self.next_command += 1;
        let id = format!("{}-{}", self.session_tag, self.next_command);
        let label = format!("{} {}", op.case_id(), op.name());
        self.notice = Some(format!("{label} {}", self.strings.sent));
        self.pending.insert(id.clone(), label);
        vec![Effect::Send(Command {
            id,
            client_at: Some(self.now.with_timezone(&self.display_offset)),
            terminal: None,
            op,
        })]
    }

    fn acknowledge_current(&mut self) -> Vec<Effect> {
        let case_id = match &self.screen {
            Screen::Detail(id) => Some(id.clone()),
            Screen::List => self.selected_case_id().map(str::to_string),
            Screen::MySteps => self
                .my_step_rows()
                .get(self.step_cursor)
                .map(|r| r.target.case_id.clone()),
        };
        match case_id {
            Some(case_id) => self.send(CommandOp::Acknowledge { case_id }),
            None => Vec::new(),
        }
    }

    fn my_role(&self) -> Option<Role> {
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
                if !self.all_roles && Some(v.step.role) != role {
                    continue;
                }
                rows.push(StepRow::new(case_id, pb, &v));
            }
        }
        rows
    }

    /// My open steps across all open cases, soonest due first.
    pub fn my_step_rows(&self) -> Vec<StepRow> {
        let Some(role) = self.my_role() else {
            return Vec::new();
        };
        let mut rows = Vec::new();
        for case_id in &self.order {
            let Some(case) = self.cases.get(case_id) else {
                continue;
            };
            for progress in &case.checklists {
                let Some(pb) = self.playbooks.get(&progress.playbook) else {
                    continue;
                };
                rows.extend(
                    progress
                        .view(pb, self.now)
                        .iter()
                        .filter(|v| v.step.role == role && v.state.is_open())
                        .map(|v| StepRow::new(case_id, pb, v)),
                );
            }
        }
        // Soonest first; steps with no deadline after all dated ones.
        rows.sort_by_key(|r| (r.act_by.is_none(), r.act_by));
        rows
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
