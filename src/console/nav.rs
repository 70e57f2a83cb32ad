//! Where the responder is: which screen, which tab, which question is
//! open. A leaf (the key tables and the view read it).

use crate::protocol::CloseOutcome;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screen {
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
