//! The case screen: facts on top, the checklist below, and the tabs.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use crate::console::app::{App, CaseView, DetailTab};
use crate::text::{fit, width};

use super::history::draw_history;
use super::steps::step_table;
use super::widgets::{SECOND, age, fitted, level_mark, local};

pub(super) fn draw_detail(app: &App, c: &CaseView, frame: &mut Frame, area: Rect) {
    let [tabs, area] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    draw_tabs(app, frame, tabs);
    if app.detail_tab == DetailTab::History {
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
    let mut who: Vec<String> = match &st.name {
        Some(name) => vec![name.clone(), format!("({})", st.id)],
        None => vec![
            st.initials.clone().unwrap_or_default(),
            format!("({})", st.id),
            format!("[{}]", s.identity_hidden),
        ],
    };
    who.extend(
        [&st.school, &st.grade, &st.class]
            .into_iter()
            .flatten()
            .cloned(),
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
            .scroll((app.detail_scroll, 0)),
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
    frame.render_widget(step_table(app, &rows, 0, inner), inner);
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
        tab(s.tab_checklist, app.detail_tab == DetailTab::Checklist),
        Span::raw(" "),
        tab(s.tab_history, app.detail_tab == DetailTab::History),
        Span::raw(format!("  {}", s.tab_hint)),
    ];
    frame.render_widget(Paragraph::new(fitted(line, area.width as usize)), area);
}
