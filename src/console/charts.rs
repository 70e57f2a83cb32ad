//! The report view's state: the period report's chart figures (cases by
//! level per school, cases opened per month, time to acknowledge) for the
//! last 1, 3, 6 or 12 months, asked of the relay with a `period_charts`
//! question. The relay builds them with the period report's own builder
//! (`review::report::build`, the figures of `review::figures`), so the
//! console shows the same numbers as the HTML report's SVG charts.

use chrono::{DateTime, Datelike, Months, TimeZone, Utc};

use super::action::Effect;
use super::app::App;
use super::keymap::Cmd;
use super::nav::Screen;
use crate::protocol::{CommandOp, CommandResult};
use crate::review::figures::ChartFigures;

/// The periods `p` cycles through, in months back from now.
pub const PERIODS: [u32; 4] = [1, 3, 6, 12];

#[derive(Debug)]
pub struct ChartsState {
    pub figures: Option<ChartFigures>,
    pub pending: Option<String>,
    /// The period or drills changed while a question was in flight.
    pub again: bool,
    pub error: Option<String>,
    /// Index into [`PERIODS`].
    pub period: usize,
    pub drills: bool,
}

impl Default for ChartsState {
    fn default() -> Self {
        ChartsState {
            figures: None,
            pending: None,
            again: false,
            error: None,
            // Six months: a school term and a little.
            period: 2,
            drills: false,
        }
    }
}

impl ChartsState {
    pub fn months(&self) -> u32 {
        PERIODS[self.period % PERIODS.len()]
    }

    pub fn shows_drills(&self) -> bool {
        self.figures.as_ref().is_some_and(|f| f.drills_included)
    }
}

impl App {
    pub(super) fn open_charts(&mut self) -> Vec<Effect> {
        self.nav.screen = Screen::Charts;
        self.ask_charts()
    }

    /// The period asked for: from local midnight on the first of the month
    /// `months - 1` before this one, to now.
    pub fn chart_period(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        let local = self.now.with_timezone(&self.display_offset);
        let first = local
            .date_naive()
            .with_day(1)
            .and_then(|d| d.checked_sub_months(Months::new(self.charts.months() - 1)))
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .and_then(|t| self.display_offset.from_local_datetime(&t).single())
            .map_or(self.now, |t| t.with_timezone(&Utc));
        (first, self.now)
    }

    pub(super) fn ask_charts(&mut self) -> Vec<Effect> {
        if self.charts.pending.is_some() {
            self.charts.again = true;
            return Vec::new();
        }
        self.charts.again = false;
        let (from, to) = self.chart_period();
        let effects = self.send(CommandOp::PeriodCharts {
            from,
            to,
            utc_offset: Some(self.display_offset.to_string()),
            drills: self.charts.drills,
        });
        self.charts.pending = effects.iter().find_map(|e| match e {
            Effect::Send(cmd) => Some(cmd.id.clone()),
            _ => None,
        });
        effects
    }

    pub(super) fn on_charts_cmd(&mut self, cmd: Cmd) -> Vec<Effect> {
        match cmd {
            Cmd::Back => self.nav.back_to_list(),
            Cmd::ChartPeriod => {
                self.charts.period = (self.charts.period + 1) % PERIODS.len();
                return self.ask_charts();
            }
            Cmd::ChartDrills => {
                self.charts.drills = !self.charts.drills;
                return self.ask_charts();
            }
            Cmd::Refresh => return self.ask_charts(),
            _ => {}
        }
        Vec::new()
    }

    pub(super) fn on_charts_answer(&mut self, result: &CommandResult) {
        let mine = self.charts.pending.as_deref() == Some(result.id.as_str());
        if mine {
            self.charts.pending = None;
        } else if self.charts.figures.is_some() || self.charts.pending.is_some() {
            // An answer to an older question (sent before a restart): the
            // one asked since is what the screen waits for.
            return;
        }
        if !result.ok {
            self.charts.error = Some(self.refusal_words(result));
            return;
        }
        let Some(mut figures) = result
            .data
            .clone()
            .and_then(|d| serde_json::from_value::<ChartFigures>(d).ok())
        else {
            tracing::warn!("chart figures answer not understood");
            return;
        };
        for s in &mut figures.school_levels {
            s.school = crate::text::inert(&s.school);
        }
        for (label, _) in figures
            .monthly
            .iter_mut()
            .chain(figures.time_to_ack.iter_mut())
        {
            *label = crate::text::inert(label);
        }
        self.charts.figures = Some(figures);
        self.charts.error = None;
    }
}
