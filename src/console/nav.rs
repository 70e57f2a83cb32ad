//! Where the responder is: which screen, which tab, which question is
//! open. A leaf (the key tables and the view read it).

use crate::protocol::CloseOutcome;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Screen {
    #[default]
    List,
    Detail(String),
    /// Every open step for my role across all cases, soonest due first.
    MySteps,
    /// Incident reports (事件信息报告), soonest open deadline first.
    Reports,
    /// Scheduled check-ins for my role: overdue, due today, this week.
    Followups,
    /// The district view (区级总览): per school, what needs attention.
    District,
    /// The period report's figures as text charts.
    Charts,
    /// The record (一生一档) of the student of this case, all cases.
    Student(String),
}

/// The lower part of the case screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DetailTab {
    #[default]
    Checklist,
    /// The student's earlier cases and alerts, and scale scores over time.
    History,
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
    /// Why this responder needs the student's identity (audited).
    RevealReason(String),
    /// A check-in's outcome by number: case id, check-in number.
    CheckinOutcome(String, u32),
    /// The check-in's note (may be empty).
    CheckinNote(String, u32, crate::followup::CheckinOutcome),
    /// The leader's narrative for a report stage (may be empty): case id.
    ReportNarrative(String, crate::reporting::Stage),
    /// The district's reason for returning a stage (required): case id.
    ReturnReason(String, crate::reporting::Stage),
}

/// Where the responder is and what has the keyboard, as `App::nav`: the
/// screen, the list's cursor, the case screen's tab, scroll and step
/// cursor, the open question. The moves below are the ones several
/// screens share; what a key means on a screen is `App`'s to decide.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Nav {
    pub screen: Screen,
    /// The search line has the keyboard.
    pub searching: bool,
    /// The list's cursor, a row of `ListIndex::order`.
    pub selected: usize,
    pub detail_tab: DetailTab,
    /// Which instrument the history chart shows (index into the series).
    pub chart_pick: usize,
    pub detail_scroll: u16,
    pub show_help: bool,
    /// Cursor over the steps shown on the case screen or in "my steps"
    /// (and the rows of the reports and follow-ups views).
    pub step_cursor: usize,
    /// Show every role's steps on the case screen, not only mine.
    pub all_roles: bool,
    pub prompt: Option<Prompt>,
}

impl Nav {
    /// Another screen, its cursor at the top.
    pub fn open(&mut self, screen: Screen) {
        self.screen = screen;
        self.step_cursor = 0;
    }

    /// The case screen of `case_id`, from its top.
    pub fn open_case(&mut self, case_id: String) {
        self.open(Screen::Detail(case_id));
        self.detail_scroll = 0;
        self.chart_pick = 0;
    }

    /// Back to the list, where the list's cursor still is.
    pub fn back_to_list(&mut self) {
        self.screen = Screen::List;
    }

    /// The list's cursor `by` rows on, within `rows` rows.
    pub fn move_selection(&mut self, by: isize, rows: usize) {
        let last = rows.saturating_sub(1);
        self.selected = self.selected.saturating_add_signed(by).min(last);
    }

    /// The step cursor one row down, within `rows` rows.
    pub fn step_down(&mut self, rows: usize) {
        self.step_cursor = self
            .step_cursor
            .saturating_add(1)
            .min(rows.saturating_sub(1));
    }

    /// The step cursor one row up.
    pub fn step_up(&mut self) {
        self.step_cursor = self.step_cursor.saturating_sub(1);
    }

    /// The step cursor on a row of `rows`, after rows went away.
    pub fn keep_step_within(&mut self, rows: usize) {
        self.step_cursor = self.step_cursor.min(rows.saturating_sub(1));
    }

    /// Asks a question, its input empty.
    pub fn ask(&mut self, ask: Ask) {
        self.prompt = Some(Prompt {
            ask,
            input: String::new(),
            error: None,
        });
    }

    /// A new connection replays every case: the list from its top.
    pub fn restart(&mut self) {
        self.selected = 0;
        self.open(Screen::List);
    }
}
