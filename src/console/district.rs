//! The district screen's state (区级总览): per school, open high and
//! imminent cases, overdue steps and check-ins, report stages awaiting
//! review — counts only, never a student. The console asks the relay with
//! a `district_view` question on its stream; the answer is the relay's
//! district view, built by the same function as `GET /v1/district`
//! (`reporting::district::build`). Asked when the screen opens, on `r`,
//! when a report event arrives while the screen is shown, and once a
//! minute while it stays open (steps go overdue by the clock). One
//! question in flight at a time: what arrives meanwhile asks once more
//! after the answer.

use chrono::{DateTime, TimeDelta, Utc};

use super::i18n::Strings;
use super::keymap::Cmd;
use super::nav::Nav;
use crate::protocol::{CommandOp, CommandResult};
use crate::reporting::district::DistrictView;

/// While the district screen is open, ask again this often.
const REFRESH_EVERY: TimeDelta = TimeDelta::seconds(60);

#[derive(Debug, Default)]
pub struct DistrictState {
    pub view: Option<DistrictView>,
    /// When this console received `view`.
    pub received_at: Option<DateTime<Utc>>,
    /// The question in flight (its command id).
    pub pending: Option<String>,
    /// Something changed while a question was in flight: ask again.
    pub again: bool,
    /// The relay's refusal of the last question, in words.
    pub error: Option<String>,
    pub cursor: usize,
}

impl DistrictState {
    /// The screen opens at the top, with figures asked afresh.
    pub fn open(&mut self) -> Option<CommandOp> {
        self.cursor = 0;
        self.ask()
    }

    /// The question to send, or None while one is in flight (it is asked
    /// once more after that answer). The caller sends it and hands back
    /// its id with [`DistrictState::sent`].
    pub fn ask(&mut self) -> Option<CommandOp> {
        if self.pending.is_some() {
            self.again = true;
            return None;
        }
        self.again = false;
        Some(CommandOp::DistrictView {})
    }

    /// The command id the question went out under.
    pub fn sent(&mut self, id: Option<String>) {
        self.pending = id;
    }

    /// A key on the district screen; Some when it asks for new figures.
    pub fn on_cmd(&mut self, cmd: Cmd, nav: &mut Nav) -> Option<CommandOp> {
        let rows = self.view.as_ref().map_or(0, |v| v.schools.len());
        match cmd {
            Cmd::Back => nav.back_to_list(),
            Cmd::Down => self.cursor = (self.cursor + 1).min(rows.saturating_sub(1)),
            Cmd::Up => self.cursor = self.cursor.saturating_sub(1),
            Cmd::Refresh => return self.ask(),
            _ => {}
        }
        None
    }

    /// Each clock tick with the screen open: a question deferred while
    /// one was in flight, or the periodic refresh.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Option<CommandOp> {
        if self.pending.is_some() {
            return None;
        }
        let old = self.received_at.is_none_or(|at| now - at >= REFRESH_EVERY);
        if self.again || (old && self.view.is_some()) {
            return self.ask();
        }
        None
    }

    /// Whether `result` answers a district question: the one in flight, or
    /// one sent before a restart (`op`, the command it answers, if known).
    pub fn answers(&self, result: &CommandResult, op: Option<&CommandOp>) -> bool {
        self.pending.as_deref() == Some(result.id.as_str())
            || matches!(op, Some(CommandOp::DistrictView {}))
    }

    pub fn on_answer(&mut self, result: &CommandResult, strings: &Strings, now: DateTime<Utc>) {
        if self.pending.as_deref() == Some(result.id.as_str()) {
            self.pending = None;
        }
        if !result.ok {
            self.error = Some(strings.refusal_words(result));
            return;
        }
        let Some(view) = result
            .data
            .clone()
            .and_then(|d| serde_json::from_value::<DistrictView>(d).ok())
        else {
            tracing::warn!("district view answer not understood");
            return;
        };
        let rows = view.schools.len();
        self.view = Some(inert_view(view));
        self.received_at = Some(now);
        self.error = None;
        self.cursor = self.cursor.min(rows.saturating_sub(1));
    }
}

/// School names and report lines come from alerts: made inert on arrival.
fn inert_view(mut v: DistrictView) -> DistrictView {
    use crate::text::inert;
    for row in v.schools.iter_mut().chain([&mut v.total]) {
        row.school = inert(&row.school);
    }
    for line in &mut v.reports {
        line.report_id = inert(&line.report_id);
        line.school = inert(&line.school);
        line.rules = line.rules.iter().map(|r| inert(r)).collect();
        line.stages = line.stages.iter().map(|s| inert(s)).collect();
    }
    v
}
