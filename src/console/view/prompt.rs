//! The one-line question box (a reason, a note, a choice).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use crate::console::app::App;
use crate::console::nav::{Ask, Prompt};
use crate::text::fit;

pub(super) fn draw_prompt(app: &App, prompt: &Prompt, frame: &mut Frame, area: Rect) {
    let s = app.strings;
    let question = match &prompt.ask {
        Ask::SkipReason(_) => s.ask_skip.to_string(),
        Ask::NoteText(_) => s.ask_note.to_string(),
        Ask::Choice(t) => {
            let options: Vec<String> = app
                .playbooks
                .get(&t.playbook)
                .and_then(|pb| pb.step(&t.step))
                .map(|st| {
                    st.kind
                        .options()
                        .iter()
                        .enumerate()
                        .map(|(i, o)| format!("{} {}", i + 1, s.text(&o.label)))
                        .collect()
                })
                .unwrap_or_default();
            format!("{}: {}", s.ask_choice, options.join(" · "))
        }
        Ask::ContactOutcome(_) => s.ask_contact.to_string(),
        Ask::ReferralInstitution(_) => s.ask_referral_institution.to_string(),
        Ask::ReferralTime(..) => s.ask_referral_time.to_string(),
        Ask::AddPlaybook(_) => {
            let books: Vec<String> = app
                .playbook_ids()
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    let title = app
                        .playbooks
                        .get(id)
                        .map(|p| s.text(&p.title))
                        .unwrap_or(id);
                    format!("{} {title}", i + 1)
                })
                .collect();
            format!("{}: {}", s.ask_add_playbook, books.join(" · "))
        }
        Ask::CloseOutcome(_) => {
            let outcomes: Vec<String> = crate::protocol::CloseOutcome::ALL
                .iter()
                .enumerate()
                .map(|(i, o)| format!("{} {}", i + 1, s.outcome(*o)))
                .collect();
            format!("{}: {}", s.ask_close_outcome, outcomes.join(" · "))
        }
        Ask::CloseReason(..) => s.ask_close_reason.to_string(),
        Ask::RevealReason(_) => s.ask_reveal.to_string(),
        Ask::CheckinOutcome(case_id, num) => {
            format!("{case_id}/{num} · {}", s.ask_checkin_outcome())
        }
        Ask::CheckinNote(case_id, num, outcome) => format!(
            "{case_id}/{num} · {} · {}",
            s.checkin_outcome(*outcome),
            s.ask_checkin_note()
        ),
        Ask::ReportNarrative(case_id, stage) => format!(
            "{} {} · {}",
            crate::reporting::report_id(case_id),
            stage_words(app, *stage),
            s.upward().ask_narrative
        ),
        Ask::ReturnReason(case_id, stage) => format!(
            "{} {} · {}",
            crate::reporting::report_id(case_id),
            stage_words(app, *stage),
            s.upward().ask_return_reason
        ),
    };
    let mut lines = vec![
        Line::styled(fit(&question, area.width as usize), app.theme.title),
        Line::raw(format!("> {}▏", crate::text::inert(&prompt.input))),
    ];
    match &prompt.error {
        Some(e) => lines.push(Line::styled(
            fit(&format!("⚠ {e}"), area.width as usize),
            app.theme.alarm,
        )),
        None => lines.push(Line::raw(fit(s.prompt_hint, area.width as usize))),
    }
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines).block(Block::new().borders(Borders::TOP)),
        area,
    );
}

fn stage_words(app: &App, stage: crate::reporting::Stage) -> &'static str {
    if app.strings.lang_is_zh() {
        stage.label_zh()
    } else {
        stage.label_en()
    }
}
