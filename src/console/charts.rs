//! The report view's state: the period report's chart figures (cases by
//! level per school, cases opened per month, time to acknowledge) for the
//! last 1, 3, 6 or 12 months, asked of the relay with a `period_charts`
//! question. The relay builds them with the period report's own builder
//! (`review::report::build`, the figures of `review::figures`), so the
//! console shows the same numbers as the HTML report's SVG charts.

use chrono::{DateTime, Datelike, FixedOffset, Months, TimeZone, Utc};

use super::i18n::Strings;
use super::keymap::Cmd;
use super::nav::Nav;
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

    /// The period asked for: from local midnight on the first of the month
    /// `months - 1` before this one, to now.
    pub fn period_at(
        &self,
        now: DateTime<Utc>,
        offset: FixedOffset,
    ) -> (DateTime<Utc>, DateTime<Utc>) {
        let local = now.with_timezone(&offset);
        let first = local
            .date_naive()
            .with_day(1)
            .and_then(|d| d.checked_sub_months(Months::new(self.months() - 1)))
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .and_then(|t| offset.from_local_datetime(&t).single())
            .map_or(now, |t| t.with_timezone(&Utc));
        (first, now)
    }

    /// The question to send for the figures now wanted, or None while one
    /// is in flight: one question at a time, and the latest wish is asked
    /// once its answer is in. The caller sends it and hands back its id
    /// with [`ChartsState::sent`].
    pub fn ask(&mut self, now: DateTime<Utc>, offset: FixedOffset) -> Option<CommandOp> {
        if self.pending.is_some() {
            self.again = true;
            return None;
        }
        self.again = false;
        let (from, to) = self.period_at(now, offset);
        Some(CommandOp::PeriodCharts {
            from,
            to,
            utc_offset: Some(offset.to_string()),
            drills: self.drills,
        })
    }

    /// The command id the question went out under.
    pub fn sent(&mut self, id: Option<String>) {
        self.pending = id;
    }

    /// A key on the report view; Some when it calls for new figures.
    pub fn on_cmd(
        &mut self,
        cmd: Cmd,
        nav: &mut Nav,
        now: DateTime<Utc>,
        offset: FixedOffset,
    ) -> Option<CommandOp> {
        match cmd {
            Cmd::Back => nav.back_to_list(),
            Cmd::ChartPeriod => {
                self.period = (self.period + 1) % PERIODS.len();
                return self.ask(now, offset);
            }
            Cmd::ChartDrills => {
                self.drills = !self.drills;
                return self.ask(now, offset);
            }
            Cmd::Refresh => return self.ask(now, offset),
            _ => {}
        }
        None
    }

    /// Each clock tick with the view open: the question deferred while
    /// another was in flight.
    pub fn tick(&mut self, now: DateTime<Utc>, offset: FixedOffset) -> Option<CommandOp> {
        if self.pending.is_none() && self.again {
            return self.ask(now, offset);
        }
        None
    }

    /// Whether `result` answers a chart question: the one in flight, or
    /// one sent before a restart (`op`, the command it answers, if known).
    pub fn answers(&self, result: &CommandResult, op: Option<&CommandOp>) -> bool {
        self.pending.as_deref() == Some(result.id.as_str())
            || matches!(op, Some(CommandOp::PeriodCharts { .. }))
    }

    pub fn on_answer(&mut self, result: &CommandResult, strings: &Strings) {
        let mine = self.pending.as_deref() == Some(result.id.as_str());
        if mine {
            self.pending = None;
        } else if self.figures.is_some() || self.pending.is_some() {
            // An answer to an older question (sent before a restart): the
            // one asked since is what the screen waits for.
            return;
        }
        if !result.ok {
            self.error = Some(strings.refusal_words(result));
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
        self.figures = Some(figures);
        self.error = None;
    }
}
