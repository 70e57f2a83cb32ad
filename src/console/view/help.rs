//! The help overlay, from the same key tables key handling uses.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use crate::console::app::App;
use crate::console::keymap;
use crate::text::{fit, fit_exact, width};

use super::widgets::fitted;

/// Every key of the current view, then the keys that work everywhere, from
/// the same tables key handling uses. Laid out in as many columns as the
/// screen needs.
pub(super) fn draw_help(app: &App, frame: &mut Frame, area: Rect) {
    let s = app.strings;
    let t = &app.theme;
    // Only the keys this role may use (`keymap::permits`).
    let role = app.me.as_ref().map(|m| m.role);
    let allowed = |b: &&keymap::Binding| keymap::permits(b.cmd, role);
    let view: Vec<&keymap::Binding> = keymap::for_screen(&app.nav.screen)
        .iter()
        .filter(allowed)
        .collect();
    let global: Vec<&keymap::Binding> = keymap::GLOBAL.iter().filter(allowed).collect();
    let key_width = view
        .iter()
        .chain(&global)
        .map(|b| width(b.label))
        .max()
        .unwrap_or(0);
    let mut entries: Vec<Line> = vec![Line::styled(s.help_view_keys, t.header_row)];
    let row = |b: &&keymap::Binding| {
        Line::raw(format!(
            " {} {}",
            fit_exact(b.label, key_width),
            s.cmd(b.cmd)
        ))
    };
    entries.extend(view.iter().map(row));
    entries.push(Line::styled(s.help_global_keys, t.header_row));
    entries.extend(global.iter().map(row));

    let rows_fit = area.height.saturating_sub(2).max(1) as usize;
    let columns = entries.len().div_ceil(rows_fit).max(1);
    let col_width = entries.iter().map(Line::width).max().unwrap_or(0) + 1;
    let rows = entries.len().div_ceil(columns);
    let width = ((col_width * columns + 2) as u16).min(area.width);
    let height = (rows as u16 + 2).min(area.height);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    frame.render_widget(Clear, popup);
    let block = Block::new().borders(Borders::ALL).style(t.base).title(fit(
        &format!(" {} · {} ", s.help_title, s.help_close),
        width as usize,
    ));
    let inner = block.inner(popup);
    frame.render_widget(block, popup);
    let areas =
        Layout::horizontal(vec![Constraint::Ratio(1, columns as u32); columns]).split(inner);
    for (i, chunk) in entries.chunks(rows).enumerate() {
        if let Some(col) = areas.get(i) {
            let lines: Vec<Line> = chunk
                .iter()
                .map(|l| fitted(l.spans.clone(), col.width as usize))
                .collect();
            frame.render_widget(Paragraph::new(lines), *col);
        }
    }
}
