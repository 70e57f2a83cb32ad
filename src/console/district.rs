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
//!
//! This module also routes every answer the reporting screens wait for
//! (see [`App::take_upward_result`]).

use chrono::{DateTime, TimeDelta, Utc};

use super::action::Effect;
use super::app::App;
use super::keymap::Cmd;
use super::nav::Screen;
use crate::protocol::{Command, CommandOp, CommandResult};
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

impl App {
    pub(super) fn open_district(&mut self) -> Vec<Effect> {
        self.nav.screen = Screen::District;
        self.district.cursor = 0;
        self.ask_district()
    }

    fn ask_district(&mut self) -> Vec<Effect> {
        if self.district.pending.is_some() {
            self.district.again = true;
            return Vec::new();
        }
        self.district.again = false;
        let effects = self.send(CommandOp::DistrictView {});
        self.district.pending = effects.iter().find_map(|e| match e {
            Effect::Send(cmd) => Some(cmd.id.clone()),
            _ => None,
        });
        effects
    }

    pub(super) fn on_district_cmd(&mut self, cmd: Cmd) -> Vec<Effect> {
        let rows = self.district.view.as_ref().map_or(0, |v| v.schools.len());
        match cmd {
            Cmd::Back => self.nav.back_to_list(),
            Cmd::Down => {
                self.district.cursor = (self.district.cursor + 1).min(rows.saturating_sub(1))
            }
            Cmd::Up => self.district.cursor = self.district.cursor.saturating_sub(1),
            Cmd::Refresh => return self.ask_district(),
            _ => {}
        }
        Vec::new()
    }

    /// A report changed: the district's figures did too.
    pub(super) fn district_on_report_event(&mut self) -> Vec<Effect> {
        if self.nav.screen == Screen::District {
            self.ask_district()
        } else {
            Vec::new()
        }
    }

    /// Each clock tick: a question deferred while one was in flight, and
    /// the periodic refresh of an open district screen or chart request.
    pub(super) fn upward_tick(&mut self) -> Vec<Effect> {
        let mut effects = Vec::new();
        if self.nav.screen == Screen::District && self.district.pending.is_none() {
            let old = self
                .district
                .received_at
                .is_none_or(|at| self.now - at >= REFRESH_EVERY);
            if self.district.again || (old && self.district.view.is_some()) {
                effects.extend(self.ask_district());
            }
        }
        if self.nav.screen == Screen::Charts && self.charts.pending.is_none() && self.charts.again {
            effects.extend(self.ask_charts());
        }
        effects
    }

    /// Routes an answer the reporting screens wait for. True when it was
    /// a question's answer (nothing more to say about it); a report
    /// command's answer is noted and then told like any other.
    pub(super) fn take_upward_result(
        &mut self,
        result: &CommandResult,
        command: Option<&Command>,
    ) -> bool {
        let op = command.map(|c| &c.op);
        if self.district.pending.as_deref() == Some(result.id.as_str())
            || matches!(op, Some(CommandOp::DistrictView {}))
        {
            if self.district.pending.as_deref() == Some(result.id.as_str()) {
                self.district.pending = None;
            }
            self.on_district_answer(result);
            return true;
        }
        if self.charts.pending.as_deref() == Some(result.id.as_str())
            || matches!(op, Some(CommandOp::PeriodCharts { .. }))
        {
            self.on_charts_answer(result);
            return true;
        }
        self.note_report_result(result, command);
        false
    }

    fn on_district_answer(&mut self, result: &CommandResult) {
        if !result.ok {
            self.district.error = Some(self.refusal_words(result));
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
        self.district.view = Some(inert_view(view));
        self.district.received_at = Some(self.now);
        self.district.error = None;
        let rows = self.district.view.as_ref().map_or(0, |v| v.schools.len());
        self.district.cursor = self.district.cursor.min(rows.saturating_sub(1));
    }

    /// A refusal in words, as the notice line gives them.
    pub(super) fn refusal_words(&self, result: &CommandResult) -> String {
        match &result.error {
            Some(e) => self
                .strings
                .refusal(super::frames::RefusalCode::parse(&e.code))
                .map(str::to_string)
                .unwrap_or_else(|| crate::text::inert(&e.message)),
            None => self.strings.refused.to_string(),
        }
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
