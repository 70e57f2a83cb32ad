//! Step tables (a case's checklist and "my steps") and the "my steps" view.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table};

use crate::console::app::{App, CaseView, StepRow};
use crate::text::fit;

use super::list::W_CASE;
use super::widgets::countdown;

pub(super) fn step_title(app: &App, row: &StepRow) -> String {
    app.playbooks
        .get(&row.target.playbook)
        .and_then(|pb| pb.step(&row.target.step))
        .map(|st| app.strings.text(&st.title).to_string())
        .unwrap_or_else(|| row.target.step.clone())
}

/// One step as a table row: cursor, deadline, state, title, role.
pub(super) fn step_row<'a>(
    app: &App,
    row: &StepRow,
    selected: bool,
    title_width: usize,
) -> Row<'a> {
    let s = app.strings;
    let (due, overdue) = match (row.state.is_open(), row.act_by) {
        (true, Some(at)) => countdown(s, app.now, at),
        _ => (String::new(), false),
    };
    let exhausted = row.overdue == Some(crate::playbook::OverdueReason::AttemptsExhausted);
    let due = if exhausted && due.is_empty() {
        format!("⚠{}", s.attempts_exhausted)
    } else {
        due
    };
    let mut state = s.step_state(row.state).to_string();
    if row.failed_attempts > 0 && row.state.is_open() {
        state = format!("{state}×{}", row.failed_attempts);
    }
    let mark = match row.state {
        crate::playbook::StepState::Done => "✓",
        crate::playbook::StepState::Skipped => "–",
        _ if row.required => "■",
        _ => "□",
    };
    let mut style = Style::new();
    if !row.state.is_open() {
        style = style.patch(app.theme.finished);
    }
    if selected {
        style = style.patch(app.theme.selected);
    }
    Row::new(vec![
        Line::raw(if selected { "▸" } else { " " }),
        Line::raw(mark),
        if overdue || exhausted {
            Line::styled(fit(&due, W_DUE), app.theme.alarm)
        } else {
            Line::raw(fit(&due, W_DUE))
        },
        Line::raw(fit(&state, W_STATE)),
        Line::raw(fit(&step_title(app, row), title_width)),
        Line::raw(fit(s.role(row.role), W_ROLE)),
    ])
    .style(style)
}

pub(super) const W_DUE: usize = 15;

pub(super) const W_STATE: usize = 8;

pub(super) const W_ROLE: usize = 12;

/// A table of step rows; `rows[0]` is row `offset` of the whole list (the
/// caller passes only what is on screen or all of a short list).
pub(super) fn step_table<'a>(app: &App, rows: &[StepRow], offset: usize, area: Rect) -> Table<'a> {
    let title_width = (area.width as usize).saturating_sub(1 + 1 + W_DUE + W_STATE + W_ROLE + 5);
    let visible = area.height.saturating_sub(1) as usize;
    let first = app
        .nav
        .step_cursor
        .saturating_sub(visible.saturating_sub(1))
        .saturating_sub(offset);
    let body: Vec<Row> = rows
        .iter()
        .enumerate()
        .skip(first)
        .take(visible)
        .map(|(i, r)| step_row(app, r, i + offset == app.nav.step_cursor, title_width))
        .collect();
    let widths = [1, 1, W_DUE, W_STATE, title_width, W_ROLE].map(|w| Constraint::Length(w as u16));
    let s = app.strings;
    Table::new(body, widths).header(
        Row::new(["", "", s.col_due, "", s.col_step, s.col_role]).style(app.theme.header_row),
    )
}

pub(super) fn draw_my_steps(app: &App, frame: &mut Frame, area: Rect) {
    let s = app.strings;
    let total = app.my_steps.len();
    let who = app
        .me
        .as_ref()
        .map(|m| s.role(m.role).to_string())
        .unwrap_or_else(|| s.unknown_who.to_string());
    let title = format!(" {} · {who} · {total} ", s.my_steps_title);
    let block = Block::new()
        .borders(Borders::TOP)
        .title(fit(&title, area.width as usize));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if total == 0 {
        frame.render_widget(Paragraph::new(fit(s.no_steps, inner.width as usize)), inner);
        return;
    }
    // Case id first: in "my steps" the case is part of what a row means.
    let [cases, steps] =
        Layout::horizontal([Constraint::Length(W_CASE as u16 + 1), Constraint::Min(10)])
            .areas(inner);
    let visible = inner.height.saturating_sub(1) as usize;
    let first = app
        .nav
        .step_cursor
        .saturating_sub(visible.saturating_sub(1));
    // Only the rows on screen are built (the order is kept in `my_steps`).
    let rows: Vec<StepRow> = (first..total.min(first.saturating_add(visible)))
        .filter_map(|i| app.my_step_row(i))
        .collect();
    let mut ids = vec![Line::styled(s.col_case, app.theme.header_row)];
    ids.extend(rows.iter().map(|r| {
        let drill = app
            .cases
            .get(&r.target.case_id)
            .is_some_and(CaseView::is_drill);
        Line::raw(format!(
            "{}{}",
            r.target.case_id,
            if drill { "*" } else { "" }
        ))
    }));
    frame.render_widget(Paragraph::new(ids), cases);
    frame.render_widget(step_table(app, &rows, first, steps), steps);
}
