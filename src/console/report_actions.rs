//! Submitting and reviewing incident reports from the reports screen: the
//! school leader submits the selected report's next stage (`s`, with an
//! optional narrative), the district accepts (`y`) or returns (`x`, with
//! a required reason) the stage awaiting its review. Each goes out as a
//! command through the outbox like a step; the relay's answer is shown as
//! every command's is, and a refusal also stays on the reports screen
//! beside the report (a narrative naming the student reopens the prompt
//! with the text, so the leader can reword it).

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::frames::RefusalCode;
use super::i18n::{Lang, Strings};
use super::keymap::Cmd;
use super::nav::{Ask, Nav, Prompt, Screen};
use super::reports::{self, Reports};
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

/// A report command to send: the op, and what to keep beside its id
/// until the relay answers (see [`ReportActions::sent`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ReportCommand {
    pub case_id: String,
    pub narrative: Option<String>,
    pub op: CommandOp,
}

/// What a key on the reports screen comes to, beyond moving the cursor or
/// opening a prompt (done on the [`Nav`] it is given).
#[derive(Debug, Clone, PartialEq)]
pub enum ReportKey {
    Nothing,
    /// Nothing to do for this report, in words for the notice line.
    Notice(String),
    Send(ReportCommand),
}

/// The report under the cursor on the reports screen (case id).
pub fn selected_case(
    reports: &Reports,
    lang: Lang,
    now: DateTime<Utc>,
    cursor: usize,
) -> Option<String> {
    let rows = reports::rows(reports, lang, now);
    let i = cursor.min(rows.len().checked_sub(1)?);
    rows.into_iter().nth(i).map(|r| r.case_id)
}

/// Keys on the reports screen: move, go back to the list, or submit and
/// review the report under the cursor (`s`, `y`, `x`).
pub fn on_cmd(
    cmd: Cmd,
    reports: &Reports,
    lang: Lang,
    strings: &Strings,
    now: DateTime<Utc>,
    nav: &mut Nav,
) -> ReportKey {
    match cmd {
        Cmd::Back => nav.back_to_list(),
        Cmd::Down => nav.step_down(reports.len()),
        Cmd::Up => nav.step_up(),
        Cmd::SubmitReport | Cmd::AcceptReport | Cmd::ReturnReport => {
            return on_action(cmd, reports, lang, strings, now, nav);
        }
        _ => {}
    }
    ReportKey::Nothing
}

fn on_action(
    cmd: Cmd,
    reports: &Reports,
    lang: Lang,
    strings: &Strings,
    now: DateTime<Utc>,
    nav: &mut Nav,
) -> ReportKey {
    let Some(case_id) = selected_case(reports, lang, now, nav.step_cursor) else {
        return ReportKey::Nothing;
    };
    let Some(report) = reports.get(&case_id) else {
        return ReportKey::Nothing;
    };
    let w = strings.upward();
    match cmd {
        Cmd::SubmitReport => match stage_to_submit(report) {
            Some(stage) => nav.ask(Ask::ReportNarrative(case_id, stage)),
            None => return ReportKey::Notice(format!("{} {}", report.id, w.nothing_to_submit)),
        },
        Cmd::AcceptReport => match stage_to_review(report) {
            Some(stage) => {
                return ReportKey::Send(ReportCommand {
                    op: CommandOp::AcceptReport {
                        case_id: report.case_id.clone(),
                        stage,
                    },
                    case_id,
                    narrative: None,
                });
            }
            None => return ReportKey::Notice(format!("{} {}", report.id, w.nothing_to_review)),
        },
        Cmd::ReturnReport => match stage_to_review(report) {
            Some(stage) => nav.ask(Ask::ReturnReason(case_id, stage)),
            None => return ReportKey::Notice(format!("{} {}", report.id, w.nothing_to_review)),
        },
        _ => {}
    }
    ReportKey::Nothing
}

/// The answer typed into a report prompt: the command it makes (None for
/// a prompt that is not a report's), or what is wrong with it.
pub fn submit_prompt(
    ask: &Ask,
    input: &str,
    strings: &Strings,
) -> Result<Option<ReportCommand>, &'static str> {
    let w = strings.upward();
    match ask {
        Ask::ReportNarrative(case_id, stage) => {
            let narrative = (!input.is_empty()).then(|| input.to_string());
            Ok(Some(ReportCommand {
                case_id: case_id.clone(),
                narrative: narrative.clone(),
                op: CommandOp::SubmitReport {
                    case_id: case_id.clone(),
                    stage: *stage,
                    narrative,
                },
            }))
        }
        Ask::ReturnReason(case_id, stage) => {
            if input.is_empty() {
                return Err(w.reason_required);
            }
            if input.chars().count() > MAX_REASON_CHARS {
                return Err(w.reason_too_long);
            }
            Ok(Some(ReportCommand {
                case_id: case_id.clone(),
                narrative: None,
                op: CommandOp::ReturnReport {
                    case_id: case_id.clone(),
                    stage: *stage,
                    reason: input.to_string(),
                },
            }))
        }
        _ => Ok(None),
    }
}

impl ReportActions {
    /// A report command for `case_id` went out under `id`: its answer will
    /// be matched to the report, and an older refusal beside that report
    /// is answered.
    pub fn sent(&mut self, id: Option<String>, case_id: String, narrative: Option<String>) {
        if self.refusal.as_ref().is_some_and(|(c, _)| *c == case_id) {
            self.refusal = None;
        }
        if let Some(id) = id {
            self.sent.insert(id, Sent { case_id, narrative });
        }
    }

    /// Keeps a report command's refusal beside its report; a narrative
    /// refused for naming the student comes back in the prompt. The
    /// notice line is left to the common path.
    pub fn note_result(
        &mut self,
        result: &CommandResult,
        command: Option<&Command>,
        reports: &Reports,
        strings: &Strings,
        nav: &mut Nav,
    ) {
        let sent = self.sent.remove(&result.id).or_else(|| {
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
        let words = strings.refusal_of(error);
        if RefusalCode::parse(&error.code) == RefusalCode::NameNotAllowed
            && nav.prompt.is_none()
            && nav.screen == Screen::Reports
            && let Some(report) = reports.get(&sent.case_id)
            && let Some(stage) = stage_to_submit(report)
        {
            nav.prompt = Some(Prompt {
                ask: Ask::ReportNarrative(sent.case_id.clone(), stage),
                input: sent.narrative.clone().unwrap_or_default(),
                error: Some(words.clone()),
            });
        }
        self.refusal = Some((sent.case_id, words));
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
