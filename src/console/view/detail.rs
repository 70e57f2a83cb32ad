//! The case screen: facts on top, the checklist below, and the tabs.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use crate::console::app::App;
use crate::console::cases::CaseView;
use crate::console::nav::DetailTab;
use crate::text::{fit, width};

use super::history::draw_history;
use super::steps::step_table;
use super::widgets::{MINUTE, SECOND, age, fitted, level_mark, local};

pub(super) fn draw_detail(app: &App, c: &CaseView, frame: &mut Frame, area: Rect) {
    let [tabs, area] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    draw_tabs(app, frame, tabs);
    if app.nav.detail_tab == DetailTab::History {
        draw_history(app, c, frame, area);
        return;
    }
    let s = app.strings;
    let bold = app.theme.title;
    let label = |text: &str| Span::styled(format!("{text}: "), bold);
    let mut lines: Vec<Line> = Vec::new();

    let mut title = vec![Span::styled(format!("{} {}", s.col_case, c.case.id), bold)];
    if c.is_drill() {
        title.push(Span::raw(" "));
        title.push(Span::styled(
            format!(
                "[{} {}]",
                s.drill_marker,
                c.case.exercise_id.as_deref().unwrap_or("")
            ),
            app.theme.drill,
        ));
    }
    lines.push(Line::from(title));

    let st = &c.student;
    let id = c.student_id();
    let mut who: Vec<String> = match &st.name {
        Some(name) => vec![name.clone(), format!("({id})")],
        None => vec![
            st.initials.clone().unwrap_or_default(),
            format!("({id})"),
            format!("[{}]", s.identity_hidden),
        ],
    };
    who.extend(
        [&st.school, &st.grade, &st.class]
            .into_iter()
            .flatten()
            .map(|label| label.to_string()),
    );
    if st.under_14 {
        who.push(s.under_14.to_string());
    }
    // One line, cut to the width: the hidden-identity hint is long.
    let room = (area.width as usize).saturating_sub(width(s.detail_student) + 2);
    lines.push(Line::from(vec![
        label(s.detail_student),
        Span::raw(fit(&who.join(" · "), room)),
    ]));

    let (level, level_style) = level_mark(s, &app.theme, c.case.level);
    let mut level_line = vec![label(s.detail_level), Span::styled(level, level_style)];
    if c.case.imminent {
        level_line.push(Span::raw(" "));
        level_line.push(Span::styled(
            format!("‼ {}", s.imminent),
            app.theme.imminent,
        ));
    }
    level_line.push(Span::raw("   "));
    level_line.push(label(s.detail_category));
    level_line.push(Span::raw(s.category(c.case.category)));
    lines.push(Line::from(level_line));

    let mut status = vec![label(s.detail_status), Span::raw(s.status(c.case.status))];
    if let (Some(by), Some(at)) = (&c.case.acknowledged_by, c.case.acknowledged_at) {
        status.push(Span::raw(format!(
            " · {} {} ({}) {}",
            s.detail_by,
            crate::text::inert(&by.name),
            s.role(by.role),
            local(app, at, SECOND)
        )));
    }
    if let Some(latest) = c.alerts.last() {
        status.push(Span::raw("   "));
        status.push(label(s.detail_source));
        status.push(Span::raw(s.source(latest.source)));
    }
    lines.push(Line::from(status));
    lines.push(Line::from(vec![
        label(s.detail_opened),
        Span::raw(format!(
            "{} ({})   ",
            local(app, c.case.opened_at, SECOND),
            age(s, app.now, c.case.opened_at)
        )),
        label(s.detail_updated),
        Span::raw(local(app, c.case.updated_at, SECOND)),
    ]));

    // The summary starts on its label's line: on 24 rows every row counts.
    if let Some(latest) = c.alerts.last() {
        let mut summary = latest
            .summary
            .as_deref()
            .unwrap_or(s.none)
            .lines()
            .map(str::to_string);
        lines.push(Line::from(vec![
            label(s.detail_summary),
            Span::raw(summary.next().unwrap_or_default()),
        ]));
        lines.extend(summary.map(|l| Line::raw(format!("  {l}"))));
        // A rule's reasons replace the raw signal they come from; other
        // signals are still listed.
        if !(latest.signals.is_empty() && latest.why.is_some()) {
            let signals = if latest.signals.is_empty() {
                s.none.to_string()
            } else {
                latest.signals.join(" | ")
            };
            lines.push(Line::from(vec![
                label(s.detail_signals),
                Span::raw(signals),
            ]));
        }
        if let Some(why) = &latest.why {
            lines.push(Line::from(vec![
                label(s.detail_why),
                Span::raw(why.clone()),
            ]));
        }
    }

    lines.push(Line::from(label(&format!(
        "{} ({})",
        s.detail_alerts,
        c.alerts.len()
    ))));
    for a in c.alerts.iter().rev() {
        let (level, style) = level_mark(s, &app.theme, a.level);
        let summary = a
            .summary
            .as_deref()
            .map(|t| t.replace('\n', " "))
            .unwrap_or_default();
        let head = format!("  #{} {} ", a.seq, local(app, a.received_at, SECOND));
        let tail = format!(
            "{} {} · ",
            if a.imminent { " ‼" } else { "" },
            s.source(a.source)
        );
        // One line per alert: the summary gets whatever width is left.
        let room =
            (area.width as usize).saturating_sub(width(&head) + width(&level) + width(&tail));
        lines.push(Line::from(vec![
            Span::raw(head),
            Span::styled(level, style),
            Span::raw(format!("{tail}{}", fit(&summary, room))),
        ]));
    }

    // Case facts on top (J/K scroll them), the checklist below: the
    // checklist is what a responder works from, so it gets the most room.
    let info_height = (lines.len() as u16 + 1).min(area.height / 2).max(4);
    let [info, checklist] =
        Layout::vertical([Constraint::Length(info_height), Constraint::Min(3)]).areas(area);
    frame.render_widget(
        Paragraph::new(lines)
            .block(Block::new().borders(Borders::TOP))
            .wrap(Wrap { trim: false })
            .scroll((app.nav.detail_scroll, 0)),
        info,
    );
    draw_checklist(app, c, frame, checklist);
}

/// The case's checklists: my role's steps (or all), with the other roles'
/// progress in the title so everyone sees where the team stands.
pub(super) fn draw_checklist(app: &App, c: &CaseView, frame: &mut Frame, area: Rect) {
    let s = app.strings;
    let my_role = app.me.as_ref().map(|m| m.role);
    let mut done_by_role: Vec<(crate::protocol::Role, usize, usize)> = Vec::new();
    let mut titles = Vec::new();
    for progress in &c.checklists {
        let Some(pb) = app.playbooks.get(&progress.playbook) else {
            continue;
        };
        titles.push(s.text(&pb.title).to_string());
        for v in progress.view(pb, app.now) {
            if v.state == crate::playbook::StepState::Inactive {
                continue;
            }
            let finished = usize::from(!v.state.is_open());
            match done_by_role.iter_mut().find(|(r, _, _)| *r == v.step.role) {
                Some(entry) => {
                    entry.1 += finished;
                    entry.2 += 1;
                }
                None => done_by_role.push((v.step.role, finished, 1)),
            }
        }
    }
    let team: Vec<String> = done_by_role
        .iter()
        .map(|(role, done, total)| {
            let me = if Some(*role) == my_role { "▸" } else { "" };
            format!("{me}{} {done}/{total}", s.role(*role))
        })
        .collect();
    let title = format!(
        " {} · {} · {} · {} ",
        s.checklist_title,
        titles.join(" + "),
        team.join(" "),
        s.all_roles_hint
    );
    let block = Block::new()
        .borders(Borders::TOP)
        .title(fit(&title, area.width as usize));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if c.checklists.is_empty() {
        frame.render_widget(
            Paragraph::new(fit(s.no_checklist, inner.width as usize)),
            inner,
        );
        return;
    }
    let rows = app.case_step_rows(&c.case.id);
    if rows.is_empty() {
        frame.render_widget(Paragraph::new(fit(s.no_steps, inner.width as usize)), inner);
        return;
    }
    // Under the table: what the selected step's limit rests on (a default
    // must never pass for a rule) or, for an emergency call, that it can be
    // done at any moment and when; then the notice of forbidden practices
    // when a playbook carries it. Only when there is room for the table.
    let mut notes: Vec<Line> = Vec::new();
    if inner.height >= 6
        && let Some(line) = rows
            .get(app.nav.step_cursor)
            .and_then(|row| step_basis(app, row))
    {
        for part in footnote_lines(&line, inner.width as usize) {
            notes.push(Line::styled(part, app.theme.finished));
        }
    }
    let harm_notice = c.checklists.iter().any(|p| {
        app.playbooks
            .get(&p.playbook)
            .is_some_and(|pb| pb.harm_notice)
    });
    // The full notice when it fits in three lines beside a usable table,
    // else its one-line short form: it is never cut mid-sentence.
    let mut notice = String::new();
    if harm_notice && inner.height >= 8 {
        let full = format!("⚠{}", crate::playbook::forbidden_notice(s.lang()));
        notice = if wrapped_height(&full, inner.width as usize) <= 3 && inner.height >= 12 {
            full
        } else {
            fit(s.harm_notice_short(), inner.width as usize)
        };
    }
    let notice_height = wrapped_height(&notice, inner.width as usize) as u16;
    let [table, basis, notice_area] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(notes.len() as u16),
        Constraint::Length(notice_height),
    ])
    .areas(inner);
    frame.render_widget(step_table(app, &rows, 0, table), table);
    frame.render_widget(Paragraph::new(notes), basis);
    if notice_height > 0 {
        frame.render_widget(
            Paragraph::new(notice)
                .style(app.theme.alarm)
                .wrap(Wrap { trim: true }),
            notice_area,
        );
    }
}

/// A footnote of " · "-separated parts on at most two lines of `columns`,
/// broken between parts (a school-day limit with its due time, the
/// weekdays note and the basis does not fit 80 columns), each line cut to fit.
fn footnote_lines(text: &str, columns: usize) -> Vec<String> {
    const SEP: &str = " · ";
    if width(text) <= columns {
        return vec![text.to_string()];
    }
    let mut first = String::new();
    let mut parts = text.split(SEP).peekable();
    while let Some(part) = parts.peek() {
        let joined = if first.is_empty() {
            part.to_string()
        } else {
            format!("{first}{SEP}{part}")
        };
        if width(&joined) > columns && !first.is_empty() {
            break;
        }
        first = joined;
        parts.next();
    }
    let rest: Vec<&str> = parts.collect();
    let mut lines = vec![fit(&first, columns)];
    if !rest.is_empty() {
        lines.push(fit(&rest.join(SEP), columns));
    }
    lines
}

/// Lines `text` takes at `columns`, wrapped greedily at spaces as the
/// paragraph does (a run wider than a line, like Chinese text, is broken
/// anywhere). Empty text takes none.
fn wrapped_height(text: &str, columns: usize) -> usize {
    if text.is_empty() || columns == 0 {
        return 0;
    }
    let mut lines = 1;
    let mut used = 0;
    for word in text.split(' ') {
        let w = width(word);
        let need = if used == 0 { w } else { used + 1 + w };
        if need <= columns {
            used = need;
        } else if w <= columns {
            lines += 1;
            used = w;
        } else {
            // Wider than a line: it starts on a fresh line and is broken
            // anywhere.
            lines += usize::from(used > 0) + (w - 1) / columns;
            used = match w % columns {
                0 => columns,
                rest => rest,
            };
        }
    }
    lines
}

/// The selected step's footnote: "默认时限" or "时限依据：<source>", or for
/// an anytime emergency step "随时可做 · 120 · <triggers>".
fn step_basis(app: &App, row: &crate::console::app::StepRow) -> Option<String> {
    let s = app.strings;
    let pb = app.playbooks.get(&row.target.playbook)?;
    let step = pb.step(&row.target.step)?;
    if step.anytime {
        let mut parts = vec![s.any_time().to_string()];
        parts.extend(step.calls.clone());
        parts.extend(step.triggers.iter().map(|t| t.label(s.lang()).to_string()));
        return Some(parts.join(" · "));
    }
    let basis = pb.due_basis_label(step, s.lang());
    match step.due.as_ref().map(|d| d.within) {
        Some(limit @ crate::playbook::Limit::SchoolDays(_)) => {
            Some(school_day_limit(app, row, pb, limit, basis))
        }
        _ => basis,
    }
}

/// A school-day limit in words, its due time and, when it was counted
/// without the school's calendar, that it was counted on weekdays:
/// "1 个上学日 · 截止 2026-11-24 18:00 · 按工作日计（未配置校历） · 默认时限".
fn school_day_limit(
    app: &App,
    row: &crate::console::app::StepRow,
    pb: &crate::playbook::Playbook,
    limit: crate::playbook::Limit,
    basis: Option<String>,
) -> String {
    let s = app.strings;
    let mut parts = vec![limit.label(s.lang())];
    let progress = app
        .cases
        .get(&row.target.case_id)
        .and_then(|c| c.checklists.iter().find(|p| p.playbook == pb.id));
    if let Some(progress) = progress {
        if let Some(due) = progress.due_at(pb, &row.target.step) {
            parts.push(format!("{} {}", s.due_by(), local(app, due, MINUTE)));
        }
        if progress.school_calendar(pb, &row.target.step) == Some(None) {
            parts.push(crate::playbook::weekdays_fallback_note(s.lang()).to_string());
        }
    }
    parts.extend(basis);
    parts.join(" · ")
}

pub(super) fn draw_tabs(app: &App, frame: &mut Frame, area: Rect) {
    let s = app.strings;
    let t = &app.theme;
    let tab = |name: &str, on: bool| {
        if on {
            Span::styled(format!("[{name}]"), t.selected.patch(t.title))
        } else {
            Span::raw(format!(" {name} "))
        }
    };
    let line = vec![
        tab(s.tab_checklist, app.nav.detail_tab == DetailTab::Checklist),
        Span::raw(" "),
        tab(s.tab_history, app.nav.detail_tab == DetailTab::History),
        Span::raw(format!("  {}", s.tab_hint)),
    ];
    frame.render_widget(Paragraph::new(fitted(line, area.width as usize)), area);
}

#[cfg(test)]
mod tests {
    use super::{footnote_lines, wrapped_height};

    #[test]
    fn a_long_footnote_breaks_between_its_parts() {
        let text = "1 school day · due 2026-11-23 18:00 · counted as weekdays (no school calendar) · default limit";
        assert_eq!(
            footnote_lines(text, 80),
            [
                "1 school day · due 2026-11-23 18:00 · counted as weekdays (no school calendar)",
                "default limit"
            ]
        );
        assert_eq!(footnote_lines(text, 120), [text]);
        assert_eq!(footnote_lines("默认时限", 80), ["默认时限"]);
    }

    #[test]
    fn wrapped_height_counts_lines_as_the_paragraph_wraps_them() {
        assert_eq!(wrapped_height("", 10), 0);
        assert_eq!(wrapped_height("aa bb", 5), 1);
        assert_eq!(wrapped_height("aa bb", 4), 2);
        assert_eq!(wrapped_height("aa bbb cc", 6), 2);
        // A run of 10 CJK characters (20 columns) at 8 columns: 3 lines.
        assert_eq!(wrapped_height("一二三四五六七八九十", 8), 3);
        // A short word, then a long run: the run starts on a new line.
        assert_eq!(wrapped_height("⚠ 一二三四五六七八九十", 10), 3);
    }
}
