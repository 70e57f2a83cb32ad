//! The follow-ups view: my role's check-ins, overdue first, then due today
//! and this week, each under its heading.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph};

use crate::console::app::App;
use crate::console::followup_filter::When;
use crate::console::followups::FollowupRow;
use crate::console::list::FollowupSort;
use crate::text::{fit, pad};

use super::list::W_CASE;
use super::widgets::{MINUTE, countdown, local};

const W_WHEN: usize = 16;
const W_LEFT: usize = 14;
const W_NUM: usize = 6;
const W_WHO: usize = 10;

fn row_line(app: &App, row: &FollowupRow, selected: bool, width: usize) -> Line<'static> {
    let s = app.strings;
    let (left, overdue) = countdown(s, app.now, row.checkin.due_at);
    let case = app.cases.at(row.slot);
    let who = match case.student.list_name() {
        name if name.is_empty() => case.student_id(),
        name => name,
    };
    let text = format!(
        "{}{} {} {} {} {} {}",
        if selected { "▸" } else { " " },
        pad(&local(app, row.checkin.due_at, MINUTE), W_WHEN),
        pad(&fit(&left, W_LEFT), W_LEFT),
        pad(&case.case.id, W_CASE),
        pad(&format!("#{}", row.checkin.num), W_NUM),
        pad(&fit(&who, W_WHO), W_WHO),
        s.role(row.checkin.role),
    );
    let mut style = Style::new();
    if overdue {
        style = style.patch(app.theme.alarm);
    }
    if selected {
        style = style.patch(app.theme.selected);
    }
    Line::styled(fit(&text, width), style)
}

pub(super) fn draw_followups(app: &App, frame: &mut Frame, area: Rect) {
    let s = app.strings;
    let rows = app.followups.rows();
    let who = app
        .me
        .as_ref()
        .map(|m| s.role(m.role).to_string())
        .unwrap_or_else(|| s.unknown_who.to_string());
    let list = &app.followups;
    let mut title = format!(" {} · {who} · {} ", s.followups_title(), rows.len());
    let mut chosen: Vec<String> = Vec::new();
    if let When::Only(b) = list.filter.when {
        chosen.push(s.bucket(b).to_string());
    }
    if let Some(school) = &list.filter.school {
        chosen.push(school.clone());
    }
    if list.filter.mine {
        chosen.push(s.followup_mine().to_string());
    }
    if !chosen.is_empty() {
        title.push_str(&format!(
            "· {}: {} ",
            s.followup_filter(),
            chosen.join(" · ")
        ));
    }
    if list.sort != FollowupSort::Due {
        title.push_str(&format!("· {} ", s.followup_sort(list.sort)));
    }
    let block = Block::new()
        .borders(Borders::TOP)
        .title(fit(&title, area.width as usize));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let width = inner.width as usize;
    // The 三个一 cadence on top, when the relay gave it.
    let cadence = list.cadence.shown.as_ref().map(|c| {
        let day = |d: Option<chrono::NaiveDate>| d.map(|d| d.format("%Y-%m-%d").to_string());
        vec![
            Line::styled(
                fit(
                    &s.cadence_review(&c.month, c.review_due, c.review_students),
                    width,
                ),
                app.theme.title,
            ),
            Line::raw(fit(
                &s.cadence_dates(
                    day(c.next_term_screening).as_deref(),
                    day(c.next_census).as_deref(),
                    c.calendars,
                ),
                width,
            )),
        ]
    });
    let [top, inner] = Layout::vertical([
        Constraint::Length(if cadence.is_some() { 2 } else { 0 }),
        Constraint::Min(0),
    ])
    .areas(inner);
    if let Some(lines) = cadence {
        frame.render_widget(Paragraph::new(lines), top);
    }
    if rows.is_empty() {
        let empty = if list.filter.is_active() {
            s.followup_no_match()
        } else {
            s.no_followups()
        };
        frame.render_widget(Paragraph::new(fit(empty, width)), inner);
        return;
    }
    // Only the lines on screen are formatted: a district's overdue list
    // may hold a hundred thousand rows. A heading precedes each bucket.
    let heading_before = |i: usize| {
        rows[..=i]
            .windows(2)
            .filter(|w| w[0].bucket != w[1].bucket)
            .count()
            + 1
    };
    let cursor = app.nav.step_cursor.min(rows.len() - 1);
    let cursor_line = cursor + heading_before(cursor);
    let visible = inner.height as usize;
    let first = cursor_line.saturating_sub(visible.saturating_sub(1));
    let mut shown: Vec<Line> = Vec::with_capacity(visible);
    let mut line = 0;
    for (i, row) in rows.iter().enumerate() {
        if line >= first + visible {
            break;
        }
        if i == 0 || rows[i - 1].bucket != row.bucket {
            if line >= first {
                let n = rows[i..]
                    .iter()
                    .take_while(|r| r.bucket == row.bucket)
                    .count();
                shown.push(Line::styled(
                    fit(&format!("{} ({n})", s.bucket(row.bucket)), width),
                    app.theme.header_row,
                ));
            }
            line += 1;
            if line >= first + visible {
                break;
            }
        }
        if line >= first {
            shown.push(row_line(app, row, i == app.nav.step_cursor, width));
        }
        line += 1;
    }
    frame.render_widget(Paragraph::new(shown), inner);
}
