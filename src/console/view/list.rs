//! The case list and its filter bar.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table};

use crate::console::app::App;
use crate::console::cases::CaseView;
use crate::console::i18n::Strings;
use crate::console::list::{DrillFilter, LevelFilter, SortKey, StatusFilter};
use crate::text::{fit, fit_exact};

use super::widgets::{age, fitted, level_mark};

pub(super) fn sort_name(s: &Strings, sort: SortKey) -> &'static str {
    match sort {
        SortKey::Urgency => s.sort_urgency,
        SortKey::Newest => s.sort_newest,
        SortKey::RecentlyUpdated => s.sort_updated,
        SortKey::CaseId => s.sort_case_id,
    }
}

/// The active filters in words, or `None` when nothing filters.
pub(super) fn filter_words(app: &App) -> Vec<String> {
    let s = app.strings;
    let f = &app.list.filter;
    let mut words = Vec::new();
    match f.level {
        LevelFilter::Any => {}
        LevelFilter::KeyOrHigher => words.push(format!("{} {}", s.col_level, s.filter_level_key)),
        LevelFilter::High => words.push(format!("{} {}", s.col_level, s.filter_level_high)),
        LevelFilter::Imminent => words.push(s.filter_level_imminent.to_string()),
    }
    match f.status {
        StatusFilter::Any => {}
        StatusFilter::Unacknowledged => words.push(s.filter_unacked.to_string()),
        StatusFilter::Acknowledged => words.push(s.filter_acked.to_string()),
    }
    if let Some(c) = f.category {
        words.push(s.category(c).to_string());
    }
    if let Some(school) = &f.school {
        words.push(school.clone());
    }
    if f.mine {
        words.push(s.filter_mine.to_string());
    }
    match f.drills {
        DrillFilter::Any => {}
        DrillFilter::RealOnly => words.push(s.filter_real_only.to_string()),
        DrillFilter::DrillsOnly => words.push(s.filter_drills_only.to_string()),
    }
    if !f.search.is_empty() && !app.nav.searching {
        words.push(format!("/{}", f.search));
    }
    words
}

/// Column widths in cells; the category column takes what is left.
pub(super) const W_MARK: usize = 2;

pub(super) const W_LEVEL: usize = 9;

pub(super) const W_CASE: usize = 8;

pub(super) const W_DRILL: usize = 7;

pub(super) const W_STUDENT: usize = 8;

pub(super) const W_CLASS: usize = 12;

pub(super) const W_AGE: usize = 6;

pub(super) const W_STATUS: usize = 8;

pub(super) fn draw_list(app: &App, frame: &mut Frame, area: Rect) {
    let s = app.strings;
    let t = &app.theme;
    let shown = if app.list.filter.is_active() {
        format!(
            "{}/{} {}",
            app.list.order.len(),
            app.list.sorted.len(),
            s.open_count
        )
    } else {
        format!("{} {}", app.list.sorted.len(), s.open_count)
    };
    let title = format!(
        " {shown} · {}: {} ",
        s.sort_label,
        sort_name(s, app.list.sort)
    );
    let block = Block::new()
        .borders(Borders::TOP)
        .title(fit(&title, area.width as usize));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [bar, table] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);

    // The filter bar: what filters now, or how to filter.
    let bar_line = if app.nav.searching {
        Line::from(vec![
            Span::styled(
                format!("/ {}▏", crate::text::inert(&app.list.filter.search)),
                t.title,
            ),
            Span::raw(format!("  {}", s.search_hint)),
        ])
    } else {
        let words = filter_words(app);
        if words.is_empty() {
            Line::raw(s.filter_hint)
        } else {
            Line::from(vec![
                Span::styled(format!("{}: {}", s.filter_title, words.join(" · ")), t.warn),
                Span::raw(format!(" · {}", s.filter_hint)),
            ])
        }
    };
    frame.render_widget(
        Paragraph::new(fitted(bar_line.spans, bar.width as usize)),
        bar,
    );

    if app.list.order.is_empty() {
        let empty = if app.list.sorted.is_empty() {
            s.no_cases
        } else {
            s.no_match
        };
        frame.render_widget(Paragraph::new(fit(empty, table.width as usize)), table);
        return;
    }
    let fixed = W_MARK + W_LEVEL + W_CASE + W_DRILL + W_STUDENT + W_CLASS + W_AGE + W_STATUS + 8;
    let w_category = (table.width as usize).saturating_sub(fixed).max(4);

    // Only the rows that fit are built: a district can have tens of
    // thousands of open cases.
    let visible = table.height.saturating_sub(1) as usize;
    let first = app.nav.selected.saturating_sub(visible.saturating_sub(1));
    let rows = app
        .list
        .order
        .iter()
        .enumerate()
        .skip(first)
        .take(visible)
        .map(|(i, slot)| (i, app.cases.at(*slot)))
        .map(|(i, c)| case_row(app, c, i == app.nav.selected, w_category));

    let header = Row::new([
        "",
        s.col_level,
        s.col_case,
        "",
        s.col_student,
        s.col_class,
        s.col_category,
        s.col_age,
        s.col_status,
    ])
    .style(t.header_row);
    let widths = [
        W_MARK, W_LEVEL, W_CASE, W_DRILL, W_STUDENT, W_CLASS, w_category, W_AGE, W_STATUS,
    ]
    .map(|w| Constraint::Length(w as u16));
    frame.render_widget(Table::new(rows, widths).header(header), table);
}

pub(super) fn case_row<'a>(
    app: &App,
    c: &'a CaseView,
    selected: bool,
    w_category: usize,
) -> Row<'a> {
    let s = app.strings;
    let t = &app.theme;
    let (level, level_style) = level_mark(s, t, c.case.level);
    let mark = if c.case.imminent { "‼" } else { "" };
    let drill = if c.is_drill() { s.drill_marker } else { "" };
    let student = c.student.list_name();
    let mut style = Style::new();
    if c.case.imminent {
        style = style.add_modifier(Modifier::BOLD);
    }
    if selected {
        style = style.patch(t.selected);
    }
    Row::new(vec![
        Line::styled(mark, t.imminent),
        Line::styled(fit_exact(&level, W_LEVEL), level_style),
        Line::raw(fit(&c.case.id, W_CASE)),
        Line::styled(
            if drill.is_empty() {
                String::new()
            } else {
                fit(&format!("[{drill}]"), W_DRILL)
            },
            t.drill,
        ),
        Line::raw(fit(&student, W_STUDENT)),
        Line::raw(fit(&c.class_label(), W_CLASS)),
        Line::raw(fit(s.category(c.case.category), w_category)),
        Line::raw(fit(&age(s, app.now, c.case.opened_at), W_AGE)),
        Line::raw(fit(s.status(c.case.status), W_STATUS)),
    ])
    .style(style)
}
