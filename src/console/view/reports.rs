//! The reports screen: every incident report the stream has shown, soonest
//! open deadline first, each stage's state, and the reason of a return.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table};

use crate::console::app::App;
use crate::console::reports::{self, countdown};
use crate::text::fit;

const W_DUE: usize = 10;
const W_ID: usize = 11;
const W_SCHOOL: usize = 14;

pub(super) fn draw_reports(app: &App, frame: &mut Frame, area: Rect) {
    let w = reports::words(app.lang);
    let rows = reports::rows(&app.reports, app.lang, app.now);
    let block = Block::new()
        .borders(Borders::TOP)
        .title(format!(" {} ({}) ", w.title, rows.len()));
    if rows.is_empty() {
        frame.render_widget(Paragraph::new(w.empty).block(block), area);
        return;
    }
    let [table_area, reason_area] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(3)]).areas(area);
    let rest = (area.width as usize).saturating_sub(2 + W_DUE + W_ID + W_SCHOOL + 4);
    let (w_rules, w_stages) = (rest / 3, rest - rest / 3);
    let header = Row::new(vec![
        Line::raw(""),
        Line::raw(fit(w.due, W_DUE)),
        Line::raw(fit(w.report, W_ID)),
        Line::raw(fit(w.school, W_SCHOOL)),
        Line::raw(fit(w.rules, w_rules)),
        Line::raw(fit(w.stages, w_stages)),
    ])
    .style(app.theme.title);
    let selected = app.nav.step_cursor.min(rows.len() - 1);
    let body: Vec<Row> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let due = match r.next_due {
                Some(at) if r.overdue => format!("⚠+{}", countdown((at - app.now).num_seconds())),
                Some(at) => countdown((at - app.now).num_seconds()),
                None => "✓".into(),
            };
            let id = if r.drill {
                format!("{}*", r.id)
            } else {
                r.id.clone()
            };
            let row = Row::new(vec![
                Line::raw(if i == selected { "▸" } else { " " }),
                if r.overdue {
                    Line::styled(fit(&due, W_DUE), app.theme.alarm)
                } else {
                    Line::raw(fit(&due, W_DUE))
                },
                Line::raw(fit(&id, W_ID)),
                Line::raw(fit(&r.school, W_SCHOOL)),
                Line::raw(fit(&r.rules, w_rules)),
                Line::raw(fit(&r.stages.join(" · "), w_stages)),
            ]);
            if i == selected {
                row.style(app.theme.selected)
            } else {
                row
            }
        })
        .collect();
    let widths = [
        Constraint::Length(1),
        Constraint::Length(W_DUE as u16),
        Constraint::Length(W_ID as u16),
        Constraint::Length(W_SCHOOL as u16),
        Constraint::Length(w_rules as u16),
        Constraint::Min(1),
    ];
    frame.render_widget(
        Table::new(body, widths).header(header).block(block),
        table_area,
    );
    let current = &rows[selected];
    let mut lines = Vec::new();
    let up = app.strings.upward();
    // A refusal of this report's last submission or review, in the words
    // the notice line used (a narrative naming the student, a late role).
    if let Some((case_id, why)) = &app.report_actions.refusal
        && *case_id == current.case_id
    {
        lines.push(Line::styled(
            fit(
                &format!("⚠ {} {}: {why}", current.id, up.refused),
                area.width as usize,
            ),
            app.theme.alarm,
        ));
    }
    if let Some(reason) = &current.returned_reason {
        lines.push(Line::styled(
            fit(&format!("{}: {reason}", w.returned), area.width as usize),
            app.theme.warn,
        ));
    }
    let mut foot = Vec::new();
    match app.me.as_ref().map(|m| m.role) {
        Some(crate::protocol::Role::Leader) => foot.push(up.keys_leader.to_string()),
        Some(crate::protocol::Role::District) => foot.push(up.keys_district.to_string()),
        _ => {}
    }
    if rows.iter().any(|r| r.late) {
        foot.push(up.late_legend.to_string());
    }
    if current.drill {
        foot.push(format!("* {}", w.drill));
    }
    if !foot.is_empty() {
        lines.push(Line::styled(
            fit(&foot.join(" · "), area.width as usize),
            app.theme.finished,
        ));
    }
    lines.truncate(reason_area.height as usize);
    frame.render_widget(Paragraph::new(lines), reason_area);
}
