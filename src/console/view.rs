//! Drawing. A pure function of [`App`]: takes `&App`, never awaits, never
//! mutates. Every piece of alert text it draws was made inert on arrival
//! (see `app.rs`); widths are display widths.

use chrono::{DateTime, TimeZone, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Row, Table, Wrap};

use super::app::{App, Ask, CaseView, ConnectionState, Prompt, Screen, StepRow};
use super::i18n::Strings;
use crate::protocol::{CaseStatus, Level};
use crate::text::{fit, fit_exact, masked_name, width};

pub fn draw(app: &App, frame: &mut Frame) {
    let area = frame.area();
    let drill = app.shows_drill() || app.banner.is_some();
    let escalated = !app.unseen_escalations.is_empty();
    let prompt_height = if app.prompt.is_some() { 4 } else { 0 };
    let [header, banner, alarm, body, prompt, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(u16::from(drill)),
        Constraint::Length(u16::from(escalated)),
        Constraint::Min(1),
        Constraint::Length(prompt_height),
        Constraint::Length(1),
    ])
    .areas(area);

    draw_header(app, frame, header);
    if drill {
        draw_drill_banner(app, frame, banner);
    }
    if escalated {
        draw_escalation_banner(app, frame, alarm);
    }
    match &app.screen {
        Screen::List => draw_list(app, frame, body),
        Screen::Detail(id) => match app.cases.get(id) {
            Some(case) => draw_detail(app, case, frame, body),
            None => draw_list(app, frame, body),
        },
        Screen::MySteps => draw_my_steps(app, frame, body),
    }
    if let Some(p) = &app.prompt {
        draw_prompt(app, p, frame, prompt);
    }
    draw_status(app, frame, status);
    if app.show_help {
        draw_help(app.strings, frame, area);
    }
}

/// Overdue is told by a word and a symbol, not by colour alone.
fn alarm_style() -> Style {
    Style::new()
        .fg(Color::White)
        .bg(Color::Red)
        .add_modifier(Modifier::BOLD)
}

fn draw_escalation_banner(app: &App, frame: &mut Frame, area: Rect) {
    let s = app.strings;
    let latest = app.unseen_escalations.last().map(|(case_id, e)| {
        let title = app
            .playbooks
            .get(&e.playbook)
            .and_then(|pb| pb.step(&e.step))
            .map(|st| s.text(&st.title).to_string())
            .unwrap_or_else(|| e.step.clone());
        format!("{case_id} {title} ({})", s.role(e.owner))
    });
    let text = format!(
        " ⚠ {} {} · {} · {} ",
        s.escalated,
        app.unseen_escalations.len(),
        latest.unwrap_or_default(),
        s.escalation_dismiss
    );
    frame.render_widget(
        Paragraph::new(fit(&text, area.width as usize)).style(alarm_style()),
        area,
    );
}

/// Time left until `due` (`04:32`, `2h05m`, `3d`), or time past it with
/// the overdue word: `⚠超时 12:03`.
pub fn countdown(s: &Strings, now: DateTime<Utc>, due: DateTime<Utc>) -> (String, bool) {
    let secs = (due - now).num_seconds();
    let span = |secs: i64| {
        let secs = secs.abs();
        match secs {
            s if s < 3600 => format!("{:02}:{:02}", s / 60, s % 60),
            s if s < 86_400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
            s => format!("{}d", s / 86_400),
        }
    };
    if secs < 0 {
        (format!("⚠{} {}", s.overdue, span(secs)), true)
    } else {
        (span(secs), false)
    }
}

fn step_title(app: &App, row: &StepRow) -> String {
    app.playbooks
        .get(&row.target.playbook)
        .and_then(|pb| pb.step(&row.target.step))
        .map(|st| app.strings.text(&st.title).to_string())
        .unwrap_or_else(|| row.target.step.clone())
}

/// One step as a table row: cursor, deadline, state, title, role.
fn step_row<'a>(app: &App, row: &StepRow, selected: bool, title_width: usize) -> Row<'a> {
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
        style = style.add_modifier(Modifier::DIM);
    }
    if selected {
        style = style.add_modifier(Modifier::REVERSED);
    }
    Row::new(vec![
        Line::raw(if selected { "▸" } else { " " }),
        Line::raw(mark),
        if overdue || exhausted {
            Line::styled(fit(&due, W_DUE), alarm_style())
        } else {
            Line::raw(fit(&due, W_DUE))
        },
        Line::raw(fit(&state, W_STATE)),
        Line::raw(fit(&step_title(app, row), title_width)),
        Line::raw(fit(s.role(row.role), W_ROLE)),
    ])
    .style(style)
}

const W_DUE: usize = 15;
const W_STATE: usize = 8;
const W_ROLE: usize = 12;

fn step_table<'a>(app: &App, rows: &[StepRow], area: Rect, lead: usize) -> Table<'a> {
    let title_width =
        (area.width as usize).saturating_sub(1 + 1 + W_DUE + W_STATE + W_ROLE + 5 + lead);
    let visible = area.height.saturating_sub(1) as usize;
    let first = app.step_cursor.saturating_sub(visible.saturating_sub(1));
    let body: Vec<Row> = rows
        .iter()
        .enumerate()
        .skip(first)
        .take(visible)
        .map(|(i, r)| step_row(app, r, i == app.step_cursor, title_width))
        .collect();
    let widths = [1, 1, W_DUE, W_STATE, title_width, W_ROLE].map(|w| Constraint::Length(w as u16));
    let s = app.strings;
    Table::new(body, widths).header(
        Row::new(["", "", s.col_due, "", s.col_step, s.col_role])
            .style(Style::new().add_modifier(Modifier::UNDERLINED)),
    )
}

fn draw_my_steps(app: &App, frame: &mut Frame, area: Rect) {
    let s = app.strings;
    let rows = app.my_step_rows();
    let who = app
        .me
        .as_ref()
        .map(|m| s.role(m.role).to_string())
        .unwrap_or_else(|| s.unknown_who.to_string());
    let block = Block::new().borders(Borders::TOP).title(format!(
        " {} · {who} · {} ",
        s.my_steps_title,
        rows.len()
    ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if rows.is_empty() {
        frame.render_widget(Paragraph::new(s.no_steps), inner);
        return;
    }
    // Case id first: in "my steps" the case is part of what a row means.
    let [cases, steps] =
        Layout::horizontal([Constraint::Length(W_CASE as u16 + 1), Constraint::Min(10)])
            .areas(inner);
    let visible = inner.height.saturating_sub(1) as usize;
    let first = app.step_cursor.saturating_sub(visible.saturating_sub(1));
    let mut ids = vec![Line::styled(
        s.col_case,
        Style::new().add_modifier(Modifier::UNDERLINED),
    )];
    ids.extend(rows.iter().skip(first).take(visible).map(|r| {
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
    frame.render_widget(step_table(app, &rows, steps, 0), steps);
}

fn draw_prompt(app: &App, prompt: &Prompt, frame: &mut Frame, area: Rect) {
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
    };
    let mut lines = vec![
        Line::styled(
            fit(&question, area.width as usize),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Line::raw(format!("> {}▏", crate::text::inert(&prompt.input))),
    ];
    match &prompt.error {
        Some(e) => lines.push(Line::styled(format!("⚠ {e}"), alarm_style())),
        None => lines.push(Line::raw(s.prompt_hint)),
    }
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines).block(Block::new().borders(Borders::TOP)),
        area,
    );
}

/// Symbol + text + colour, so a level reads without colour too.
pub fn level_mark(s: &Strings, level: Level) -> (String, Style) {
    let (symbol, style) = match level {
        Level::High => (
            "▲",
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        ),
        Level::Key => ("◆", Style::new().fg(Color::Yellow)),
        Level::General => ("●", Style::new()),
    };
    (format!("{symbol} {}", s.level(level)), style)
}

fn draw_header(app: &App, frame: &mut Frame, area: Rect) {
    let s = app.strings;
    let mut counts = [0usize; 3];
    let mut imminent = 0;
    let mut unacked = 0;
    for id in &app.order {
        if let Some(c) = app.cases.get(id) {
            counts[c.case.level as usize] += 1;
            imminent += usize::from(c.case.imminent);
            unacked += usize::from(c.case.status == CaseStatus::Open);
        }
    }
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let mut spans = vec![Span::styled(s.app_title, bold), Span::raw("  ")];
    if imminent > 0 {
        spans.push(Span::styled(
            format!("‼ {} {imminent}", s.imminent),
            bold.fg(Color::Red).add_modifier(Modifier::REVERSED),
        ));
        spans.push(Span::raw(" "));
    }
    for level in [Level::High, Level::Key, Level::General] {
        let (mark, style) = level_mark(s, level);
        spans.push(Span::styled(
            format!("{mark} {}", counts[level as usize]),
            style,
        ));
        spans.push(Span::raw(" "));
    }
    spans.push(Span::raw(format!("· {} {unacked}", s.unacknowledged)));
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_drill_banner(app: &App, frame: &mut Frame, area: Rect) {
    let text = match &app.banner {
        Some(extra) => format!(" {} · {extra} ", app.strings.drill_banner),
        None => format!(" {} ", app.strings.drill_banner),
    };
    frame.render_widget(
        Paragraph::new(fit(&text, area.width as usize)).style(
            Style::new()
                .fg(Color::Black)
                .bg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
        ),
        area,
    );
}

/// Column widths in cells; the category column takes what is left.
const W_MARK: usize = 2;
const W_LEVEL: usize = 9;
const W_CASE: usize = 8;
const W_DRILL: usize = 7;
const W_STUDENT: usize = 8;
const W_CLASS: usize = 12;
const W_AGE: usize = 6;
const W_STATUS: usize = 8;

fn draw_list(app: &App, frame: &mut Frame, area: Rect) {
    let s = app.strings;
    let block = Block::new().borders(Borders::TOP).title(format!(
        " {} {} · {} ",
        app.order.len(),
        s.open_count,
        s.sorted_by
    ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if app.order.is_empty() {
        frame.render_widget(Paragraph::new(s.no_cases), inner);
        return;
    }
    let fixed = W_MARK + W_LEVEL + W_CASE + W_DRILL + W_STUDENT + W_CLASS + W_AGE + W_STATUS + 8;
    let w_category = (inner.width as usize).saturating_sub(fixed).max(4);

    // Only the rows that fit are built: a district can have tens of
    // thousands of open cases.
    let visible = inner.height.saturating_sub(1) as usize;
    let first = app.selected.saturating_sub(visible.saturating_sub(1));
    let rows = app
        .order
        .iter()
        .enumerate()
        .skip(first)
        .take(visible)
        .filter_map(|(i, id)| app.cases.get(id).map(|c| (i, c)))
        .map(|(i, c)| case_row(app, c, i == app.selected, w_category));

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
    .style(Style::new().add_modifier(Modifier::UNDERLINED));
    let widths = [
        W_MARK, W_LEVEL, W_CASE, W_DRILL, W_STUDENT, W_CLASS, w_category, W_AGE, W_STATUS,
    ]
    .map(|w| Constraint::Length(w as u16));
    frame.render_widget(Table::new(rows, widths).header(header), inner);
}

fn case_row<'a>(app: &App, c: &'a CaseView, selected: bool, w_category: usize) -> Row<'a> {
    let s = app.strings;
    let (level, level_style) = level_mark(s, c.case.level);
    let mark = if c.case.imminent { "‼" } else { "" };
    let drill = if c.is_drill() { s.drill_marker } else { "" };
    let student = c
        .student
        .name
        .as_deref()
        .map(masked_name)
        .unwrap_or_default();
    let class = [c.student.grade.as_deref(), c.student.class.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let mut style = Style::new();
    if c.case.imminent {
        style = style.add_modifier(Modifier::BOLD);
    }
    if selected {
        style = style.add_modifier(Modifier::REVERSED);
    }
    Row::new(vec![
        Line::styled(
            mark,
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        ),
        Line::styled(fit_exact(&level, W_LEVEL), level_style),
        Line::raw(c.case.id.clone()),
        Line::styled(
            if drill.is_empty() {
                String::new()
            } else {
                format!("[{drill}]")
            },
            Style::new().fg(Color::Black).bg(Color::Yellow),
        ),
        Line::raw(fit(&student, W_STUDENT)),
        Line::raw(fit(&class, W_CLASS)),
        Line::raw(fit(s.category(c.case.category), w_category)),
        Line::raw(age(s, app.now, c.case.opened_at)),
        Line::raw(fit(s.status(c.case.status), W_STATUS)),
    ])
    .style(style)
}

/// Time since `then`, short: `刚刚`, `12分钟`, `3小时`, `2天` / `now`, `12m`.
pub fn age(s: &Strings, now: DateTime<Utc>, then: DateTime<Utc>) -> String {
    let minutes = (now - then).num_minutes().max(0);
    match minutes {
        0 => s.ago_now.to_string(),
        m if m < 60 => format!("{m}{}", s.ago_minutes),
        m if m < 60 * 24 => format!("{}{}", m / 60, s.ago_hours),
        m => format!("{}{}", m / (60 * 24), s.ago_days),
    }
}

fn local(app: &App, t: DateTime<Utc>) -> String {
    app.display_offset
        .from_utc_datetime(&t.naive_utc())
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn draw_detail(app: &App, c: &CaseView, frame: &mut Frame, area: Rect) {
    let s = app.strings;
    let bold = Style::new().add_modifier(Modifier::BOLD);
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
            Style::new().fg(Color::Black).bg(Color::Yellow),
        ));
    }
    lines.push(Line::from(title));

    let st = &c.student;
    let mut who: Vec<String> = vec![st.name.clone().unwrap_or_default(), format!("({})", st.id)];
    who.extend(
        [&st.school, &st.grade, &st.class]
            .into_iter()
            .flatten()
            .cloned(),
    );
    if st.under_14 {
        who.push(s.under_14.to_string());
    }
    lines.push(Line::from(vec![
        label(s.detail_student),
        Span::raw(who.join(" · ")),
    ]));

    let (level, level_style) = level_mark(s, c.case.level);
    let mut level_line = vec![label(s.detail_level), Span::styled(level, level_style)];
    if c.case.imminent {
        level_line.push(Span::raw(" "));
        level_line.push(Span::styled(
            format!("‼ {}", s.imminent),
            bold.fg(Color::Red).add_modifier(Modifier::REVERSED),
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
            by.role,
            local(app, at)
        )));
    }
    lines.push(Line::from(status));
    lines.push(Line::from(vec![
        label(s.detail_opened),
        Span::raw(format!(
            "{} ({})   ",
            local(app, c.case.opened_at),
            age(s, app.now, c.case.opened_at)
        )),
        label(s.detail_updated),
        Span::raw(local(app, c.case.updated_at)),
    ]));

    if let Some(latest) = c.alerts.last() {
        lines.push(Line::from(vec![
            label(s.detail_source),
            Span::raw(s.source(latest.source)),
        ]));
        lines.push(Line::from(label(s.detail_summary)));
        match &latest.summary {
            Some(text) => lines.extend(text.lines().map(|l| Line::raw(format!("  {l}")))),
            None => lines.push(Line::raw(format!("  {}", s.none))),
        }
        lines.push(Line::from(label(s.detail_signals)));
        if latest.signals.is_empty() {
            lines.push(Line::raw(format!("  {}", s.none)));
        }
        lines.extend(
            latest
                .signals
                .iter()
                .map(|sig| Line::raw(format!("  - {sig}"))),
        );
    }

    lines.push(Line::from(label(&format!(
        "{} ({})",
        s.detail_alerts,
        c.alerts.len()
    ))));
    for a in c.alerts.iter().rev() {
        let (level, style) = level_mark(s, a.level);
        let summary = a
            .summary
            .as_deref()
            .map(|t| t.replace('\n', " "))
            .unwrap_or_default();
        let head = format!("  #{} {} ", a.seq, local(app, a.received_at));
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
fn draw_checklist(app: &App, c: &CaseView, frame: &mut Frame, area: Rect) {
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
        frame.render_widget(Paragraph::new(s.no_checklist), inner);
        return;
    }
    let rows = app.case_step_rows(&c.case.id);
    if rows.is_empty() {
        frame.render_widget(Paragraph::new(s.no_steps), inner);
        return;
    }
    frame.render_widget(step_table(app, &rows, inner, 0), inner);
}

fn draw_status(app: &App, frame: &mut Frame, area: Rect) {
    let s = app.strings;
    let (text, style) = match &app.connection {
        ConnectionState::Connecting { attempt } => (
            format!("◌ {} ({})", s.conn_connecting, s.attempt(*attempt)),
            Style::new().fg(Color::Yellow),
        ),
        ConnectionState::Connected => (
            format!("● {}", s.conn_connected),
            Style::new().fg(Color::Green),
        ),
        ConnectionState::Retrying {
            attempt,
            retry_in_secs,
        } => (
            format!(
                "○ {} {retry_in_secs}s ({})",
                s.conn_retry,
                s.attempt(*attempt)
            ),
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        ),
        ConnectionState::Refused {
            status,
            retry_in_secs,
        } => (
            format!("✕ {} (HTTP {status}) · {retry_in_secs}s", s.conn_refused),
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        ),
    };
    // What matters most comes first: connection state, then the latest
    // outcome; the relay address and the key hint only where room is left.
    let total = area.width as usize;
    let mut spans = vec![Span::styled(text, style)];
    if let Some(notice) = &app.notice {
        let room = total.saturating_sub(spans.iter().map(Span::width).sum());
        spans.push(Span::styled(
            fit(&format!(" · {notice}"), room),
            Style::new().add_modifier(Modifier::BOLD),
        ));
    }
    let address = format!(" · {} · seq {}", app.relay_label, app.last_seq);
    if spans.iter().map(Span::width).sum::<usize>() + width(&address) <= total {
        spans.push(Span::raw(address));
    }
    let used: usize = spans.iter().map(Span::width).sum();
    let hint_width = width(s.help_hint);
    if used + hint_width < total {
        spans.push(Span::raw(" ".repeat(total - used - hint_width)));
        spans.push(Span::raw(s.help_hint));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_help(s: &Strings, frame: &mut Frame, area: Rect) {
    let key_width = s.help_keys.iter().map(|(k, _)| width(k)).max().unwrap_or(0);
    let lines: Vec<Line> = s
        .help_keys
        .iter()
        .map(|(k, what)| Line::raw(format!(" {} {what}", fit_exact(k, key_width))))
        .collect();
    let height = (lines.len() as u16 + 2).min(area.height);
    let width = 44.min(area.width);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::new()
                .borders(Borders::ALL)
                .title(format!(" {} ", s.help_title)),
        ),
        popup,
    );
}
