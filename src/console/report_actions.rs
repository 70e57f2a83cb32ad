//! Submitting and reviewing incident reports from the reports screen: the
//! school leader submits the selected report's next stage (`s`, with an
//! optional narrative), the district accepts (`y`) or returns (`x`, with
//! a required reason) the stage awaiting its review. Each goes out as a
//! command through the outbox like a step; the relay's answer is shown as
//! every command's is, and a refusal also stays on the reports screen
//! beside the report (a narrative naming the student reopens the prompt
//! with the text, so the leader can reword it).

use std::collections::HashMap;

use super::action::Effect;
use super::app::App;
use super::frames::RefusalCode;
use super::keymap::Cmd;
use super::nav::{Ask, Prompt, Screen};
use crate::protocol::{Command, CommandOp, CommandResult};
use crate::reporting::{IncidentReport, MAX_REASON_CHARS, Stage, StageStatus};

/// A report command this console sent: which report, and the narrative
/// typed (kept in memory only, to give it back if the relay refuses it).
#[derive(Debug, Clone, PartialEq)]
struct Sent {
    case_id: String,
    narrative: Option<String>,
}

#[derive(Debug, Default)]
pub struct ReportActions {
    sent: HashMap<String, Sent>,
    /// The latest refusal of a report command: case id and the words shown.
    pub refusal: Option<(String, String)>,
}

/// The stage the school sends next: the first not yet with the district
/// (never sent, or returned) whose previous stage has been sent.
pub fn stage_to_submit(report: &IncidentReport) -> Option<Stage> {
    let mut previous_sent = true;
    for s in &report.stages {
        let open = matches!(s.status, StageStatus::Pending | StageStatus::Returned);
        if open {
            return previous_sent.then_some(s.stage);
        }
        previous_sent = s.status != StageStatus::Pending;
    }
    None
}

/// The stage awaiting the district's review (the earliest).
pub fn stage_to_review(report: &IncidentReport) -> Option<Stage> {
    report
        .stages
        .iter()
        .find(|s| s.status == StageStatus::Submitted)
        .map(|s| s.stage)
}

impl App {
    /// The report under the cursor on the reports screen (case id).
    pub fn selected_report_case(&self) -> Option<String> {
        let rows = self.report_rows();
        let i = self.nav.step_cursor.min(rows.len().checked_sub(1)?);
        rows.into_iter().nth(i).map(|r| r.case_id)
    }

    /// `s`, `y`, `x` on the reports screen.
    pub(super) fn on_report_action(&mut self, cmd: Cmd) -> Vec<Effect> {
        let Some(case_id) = self.selected_report_case() else {
            return Vec::new();
        };
        let Some(report) = self.reports.get(&case_id) else {
            return Vec::new();
        };
        let w = self.strings.upward();
        match cmd {
            Cmd::SubmitReport => match stage_to_submit(report) {
                Some(stage) => self.nav.ask(Ask::ReportNarrative(case_id, stage)),
                None => self.notice = Some(format!("{} {}", report.id, w.nothing_to_submit)),
            },
            Cmd::AcceptReport => match stage_to_review(report) {
                Some(stage) => {
                    return self.send_report(
                        case_id,
                        None,
                        CommandOp::AcceptReport {
                            case_id: report.case_id.clone(),
                            stage,
                        },
                    );
                }
                None => self.notice = Some(format!("{} {}", report.id, w.nothing_to_review)),
            },
            Cmd::ReturnReport => match stage_to_review(report) {
                Some(stage) => self.nav.ask(Ask::ReturnReason(case_id, stage)),
                None => self.notice = Some(format!("{} {}", report.id, w.nothing_to_review)),
            },
            _ => {}
        }
        Vec::new()
    }

    /// The answer typed into a report prompt.
    pub(super) fn submit_report_prompt(
        &mut self,
        ask: &Ask,
        input: &str,
    ) -> Result<Vec<Effect>, &'static str> {
        let w = self.strings.upward();
        match ask {
            Ask::ReportNarrative(case_id, stage) => {
                let narrative = (!input.is_empty()).then(|| input.to_string());
                Ok(self.send_report(
                    case_id.clone(),
                    narrative.clone(),
                    CommandOp::SubmitReport {
                        case_id: case_id.clone(),
                        stage: *stage,
                        narrative,
                    },
                ))
            }
            Ask::ReturnReason(case_id, stage) => {
                if input.is_empty() {
                    return Err(w.reason_required);
                }
                if input.chars().count() > MAX_REASON_CHARS {
                    return Err(w.reason_too_long);
                }
                Ok(self.send_report(
                    case_id.clone(),
                    None,
                    CommandOp::ReturnReport {
                        case_id: case_id.clone(),
                        stage: *stage,
                        reason: input.to_string(),
                    },
                ))
            }
            _ => Ok(Vec::new()),
        }
    }

    fn send_report(
        &mut self,
        case_id: String,
        narrative: Option<String>,
        op: CommandOp,
    ) -> Vec<Effect> {
        let effects = self.send(op);
        for effect in &effects {
            if let Effect::Send(cmd) = effect {
                self.report_actions.sent.insert(
                    cmd.id.clone(),
                    Sent {
                        case_id: case_id.clone(),
                        narrative: narrative.clone(),
                    },
                );
            }
        }
        if self
            .report_actions
            .refusal
            .as_ref()
            .is_some_and(|(c, _)| *c == case_id)
        {
            self.report_actions.refusal = None;
        }
        effects
    }

    /// Keeps a report command's refusal beside its report; a narrative
    /// refused for naming the student comes back in the prompt. The
    /// notice line is left to the common path.
    pub(super) fn note_report_result(&mut self, result: &CommandResult, command: Option<&Command>) {
        let sent = self.report_actions.sent.remove(&result.id).or_else(|| {
            command.and_then(|c| match &c.op {
                CommandOp::SubmitReport {
                    case_id, narrative, ..
                } => Some(Sent {
                    case_id: case_id.clone(),
                    narrative: narrative.clone(),
                }),
                CommandOp::AcceptReport { case_id, .. }
                | CommandOp::ReturnReport { case_id, .. } => Some(Sent {
                    case_id: case_id.clone(),
                    narrative: None,
                }),
                _ => None,
            })
        });
        let Some(sent) = sent else {
            return;
        };
        let Some(error) = result.error.as_ref().filter(|_| !result.ok) else {
            return;
        };
        let code = RefusalCode::parse(&error.code);
        let words = self
            .strings
            .refusal(code)
            .map(str::to_string)
            .unwrap_or_else(|| crate::text::inert(&error.message));
        if code == RefusalCode::NameNotAllowed
            && self.nav.prompt.is_none()
            && self.nav.screen == Screen::Reports
            && let Some(report) = self.reports.get(&sent.case_id)
            && let Some(stage) = stage_to_submit(report)
        {
            self.nav.prompt = Some(Prompt {
                ask: Ask::ReportNarrative(sent.case_id.clone(), stage),
                input: sent.narrative.clone().unwrap_or_default(),
                error: Some(words.clone()),
            });
        }
        self.report_actions.refusal = Some((sent.case_id, words));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Actor, CaseStatus, Category, Level, Role};
    use crate::reporting::{ReportForm, Rules};

    fn report() -> IncidentReport {
        let rules = Rules::embedded().unwrap();
        let form = ReportForm {
            incident_at: chrono::Utc::now(),
            school: None,
            grade: None,
            category: Category::SuicideRisk,
            level: Level::High,
            imminent: true,
            case_status: CaseStatus::Acknowledged,
            outcome: None,
            emergency_calls: Vec::new(),
            actions: Vec::new(),
            narrative: None,
            student_name: None,
        };
        IncidentReport::open(
            "C1",
            false,
            &[rules.get("death").unwrap()],
            None,
            form,
            chrono::Utc::now(),
        )
    }

    #[test]
    fn the_next_stage_follows_the_lifecycle() {
        let leader = Actor {
            name: "li".into(),
            role: Role::Leader,
        };
        let district = Actor {
            name: "bureau".into(),
            role: Role::District,
        };
        let now = chrono::Utc::now();
        let mut r = report();
        assert_eq!(stage_to_submit(&r), Some(Stage::First));
        assert_eq!(stage_to_review(&r), None);
        r.submit(Stage::First, &leader, r.form.clone(), now)
            .unwrap();
        assert_eq!(
            stage_to_submit(&r),
            Some(Stage::FollowUp),
            "the follow-up may go before the first is reviewed"
        );
        assert_eq!(stage_to_review(&r), Some(Stage::First));
        r.return_stage(Stage::First, &district, "补充", now)
            .unwrap();
        assert_eq!(
            stage_to_submit(&r),
            Some(Stage::First),
            "a returned stage goes again first"
        );
        r.submit(Stage::First, &leader, r.form.clone(), now)
            .unwrap();
        r.accept(Stage::First, &district, now).unwrap();
        assert_eq!(stage_to_submit(&r), Some(Stage::FollowUp));
    }
}
