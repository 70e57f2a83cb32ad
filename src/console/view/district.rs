//! The district screen (区级总览): per school, open high and imminent
//! cases, overdue steps and check-ins, report stages awaiting review or
//! overdue, then the total; below, the reports not yet accepted. Counts
//! only: the relay's district view carries no student identity.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::widgets::{MINUTE, age, fitted, local};
use crate::console::app::App;
use crate::reporting::district::SchoolRow;
use crate::text::{fit_exact, pad_left, width};

pub(super) fn draw_district(app: &App, frame: &mut Frame, area: Rect) {
    let w = app.strings.upward();
    let d = &app.district;
    let mut title = format!(" {} ", w.district_title);
    if let (Some(view), Some(at)) = (&d.view, d.received_at) {
        title.push_str(&format!(
            "· {} {} ({}) ",
            w.as_of,
            local(app, view.as_of, MINUTE),
            age(app.strings, app.now, at)
        ));
    }
    if d.pending.is_some() {
        title.push_str(&format!("· {} ", w.asking));
    }
    let block = Block::new().borders(Borders::TOP).title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(view) = &d.view else {
        let mut lines = vec![Line::raw(w.asking)];
        if let Some(e) = &d.error {
            lines = vec![Line::styled(format!("⚠ {e}"), app.theme.alarm)];
        }
        frame.render_widget(Paragraph::new(lines), inner);
        return;
    };
    let reports_height = if view.reports.is_empty() {
        0
    } else {
        (view.reports.len() as u16 + 1).min(inner.height / 3)
    };
    let [table, reports, foot] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(reports_height),
        Constraint::Length(1),
    ])
    .areas(inner);

    // Columns: the numbers at their headers' widths, the school takes
    // what is left.
    let heads = [
        w.open_high,
        w.open_imminent,
        w.overdue_steps,
        w.overdue_checkins,
        w.awaiting_review,
        w.reports_overdue,
    ];
    let cols: Vec<usize> = heads.iter().map(|h| width(h).max(4)).collect();
    let numbers: usize = cols.iter().map(|c| c + 1).sum();
    let school_w = (table.width as usize).saturating_sub(numbers + 2).max(6);
    let cell = |text: &str, cells: usize| format!("{text:>cells$}", cells = cells);
    let row_line = |row: &SchoolRow, mark: &str, style: Style| -> Line {
        let values = [
            row.open_high,
            row.open_imminent,
            row.overdue_steps,
            row.overdue_checkins,
            row.reports_awaiting_review,
            row.reports_overdue,
        ];
        let mut spans = vec![Span::styled(
            format!("{mark}{}", fit_exact(&row.school, school_w)),
            style,
        )];
        for (i, (v, c)) in values.iter().zip(&cols).enumerate() {
            let look = match (i, *v) {
                (_, 0) => style,
                // High or imminent, late steps, late check-ins, late reports.
                (0 | 1 | 2 | 3 | 5, _) => app.theme.alarm,
                _ => app.theme.warn,
            };
            spans.push(Span::styled(format!(" {}", cell(&v.to_string(), *c)), look));
        }
        fitted(spans, table.width as usize)
    };
    let mut lines = Vec::new();
    let mut head = vec![Span::raw(format!(" {}", fit_exact(w.school, school_w)))];
    for (h, c) in heads.iter().zip(&cols) {
        head.push(Span::raw(format!(" {}", pad_left(h, *c))));
    }
    lines.push(fitted(head, table.width as usize).style(app.theme.header_row));
    if view.schools.is_empty() {
        lines.push(Line::raw(w.no_schools));
    }
    // Only the window around the cursor is built (a district has a few
    // hundred schools at most, but the screen may be small).
    let room = (table.height as usize).saturating_sub(2).max(1);
    let cursor = d.cursor.min(view.schools.len().saturating_sub(1));
    let start = cursor.saturating_sub(room.saturating_sub(1));
    for (i, row) in view.schools.iter().enumerate().skip(start).take(room) {
        let (mark, style) = if i == cursor {
            ("▸", app.theme.selected)
        } else {
            (" ", app.theme.base)
        };
        lines.push(row_line(row, mark, style));
    }
    let total = SchoolRow {
        school: w.total.to_string(),
        ..view.total.clone()
    };
    lines.push(row_line(&total, " ", app.theme.title));
    frame.render_widget(Paragraph::new(lines), table);

    if reports_height > 0 {
        let mut lines = vec![Line::styled(
            format!("{} ({})", w.open_reports, view.reports.len()),
            app.theme.title,
        )];
        for r in view.reports.iter().take(reports_height as usize - 1) {
            let mut spans = vec![
                Span::raw(format!("{} ", r.report_id)),
                Span::raw(format!("{} ", r.school)),
                Span::raw(format!("{} ", r.rules.join(","))),
                Span::raw(
                    r.stages
                        .iter()
                        .map(|s| stage_words(app, s))
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
            ];
            if r.awaiting_review {
                spans.insert(
                    0,
                    Span::styled(format!("{} ", w.awaiting_mark), app.theme.warn),
                );
            }
            lines.push(fitted(spans, reports.width as usize));
        }
        frame.render_widget(Paragraph::new(lines), reports);
    }
    let mut foot_spans = vec![Span::styled(w.no_identity, app.theme.finished)];
    if let Some(e) = &d.error {
        foot_spans.insert(0, Span::styled(format!("⚠ {e} · "), app.theme.alarm));
    }
    frame.render_widget(
        Paragraph::new(fitted(foot_spans, foot.width as usize)),
        foot,
    );
}

/// `first=submitted(late)` as the reports screen writes it: `首报
/// 已报待审!` / `first submitted!`; anything else as it came.
fn stage_words(app: &App, text: &str) -> String {
    use crate::reporting::{Stage, StageStatus};
    let (stage, rest) = text.split_once('=').unwrap_or((text, ""));
    let (status, late) = match rest.strip_suffix("(late)") {
        Some(s) => (s, true),
        None => (rest, false),
    };
    let parse_stage = serde_json::from_value::<Stage>(serde_json::Value::from(stage));
    let parse_status = serde_json::from_value::<StageStatus>(serde_json::Value::from(status));
    let (Ok(stage), Ok(status)) = (parse_stage, parse_status) else {
        return text.to_string();
    };
    let late = if late { "!" } else { "" };
    if app.strings.lang_is_zh() {
        format!("{} {}{late}", stage.label_zh(), status.label_zh())
    } else {
        format!("{} {}{late}", stage.as_str(), status.as_str())
    }
}
