//! Drawing. A pure function of [`App`]: takes `&App`, never awaits, never
//! mutates. Every piece of alert text it draws was made inert on arrival
//! (see `app.rs`); widths are display widths, and every word comes from the
//! language catalogue (`i18n.rs`) — what is written here is symbols only.

use chrono::{DateTime, TimeZone, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Borders, Chart, Clear, Dataset, GraphType, Paragraph, Row, Table, Wrap,
};

use super::app::{
    App, Ask, CaseView, ConnectionState, DetailTab, DrillFilter, Freshness, LevelFilter, Prompt,
    Screen, SortKey, StatusFilter, StepRow,
};
use super::i18n::Strings;
use super::keymap;
use super::theme::Theme;
use crate::protocol::Level;
use crate::text::{fit, fit_exact, width};

pub fn draw(app: &App, frame: &mut Frame) {
    let area = frame.area();
    frame.render_widget(Block::new().style(app.theme.base), area);
    let drill = app.shows_drill() || app.banner.is_some();
    let alarmed = app.alert_prefs.banner && app.open_alarms().next().is_some();
    let escalated = !app.unseen_escalations.is_empty();
    let prompt_height = if app.prompt.is_some() { 4 } else { 0 };
    let [header, banner, alarm, escalation, body, prompt, status] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(u16::from(drill)),
        Constraint::Length(u16::from(alarmed)),
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
    if alarmed {
        draw_alarm_banner(app, frame, alarm);
    }
    if escalated {
        draw_escalation_banner(app, frame, escalation);
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
        draw_help(app, frame, area);
    }
}

/// Spans that fit in `width` cells, dropping from the end what does not.
fn fitted<'a>(spans: Vec<Span<'a>>, width: usize) -> Line<'a> {
    let mut used = 0;
    let mut out = Vec::new();
    for span in spans {
        let w = span.width();
        if used + w > width {
            let room = width - used;
            if room > 1 {
                out.push(Span::styled(fit(&span.content, room), span.style));
            }
            break;
        }
        used += w;
        out.push(span);
    }
    Line::from(out)
}

/// Row 1: how bad it is (imminent, levels, unacknowledged, my overdue).
/// Row 2: how fresh it is (connection, time since the relay was heard).
fn draw_header(app: &App, frame: &mut Frame, area: Rect) {
    let s = app.strings;
    let t = &app.theme;
    let st = &app.stats;
    let total = area.width as usize;
    let mut counts: Vec<Span> = Vec::new();
    if st.imminent > 0 {
        counts.push(Span::styled(
            format!("‼{} {}", s.imminent, st.imminent),
            t.imminent,
        ));
        counts.push(Span::raw(" "));
    }
    for level in [Level::High, Level::Key, Level::General] {
        let (mark, style) = level_mark(s, t, level);
        counts.push(Span::styled(
            format!("{} {}", mark.replace(' ', ""), st.by_level[level as usize]),
            style,
        ));
        counts.push(Span::raw(" "));
    }
    counts.push(Span::raw(format!(
        "· {} {} ",
        s.unacknowledged, st.unacknowledged
    )));
    counts.push(Span::raw("· "));
    counts.push(if st.my_overdue > 0 {
        Span::styled(format!("⚠{} {}", s.my_overdue, st.my_overdue), t.alarm)
    } else {
        Span::raw(format!("{} 0", s.my_overdue))
    });
    let counts_width: usize = counts.iter().map(Span::width).sum();
    // The title gives way first: the numbers are what the header is for.
    let title = [s.app_title, "crisisdesk"]
        .into_iter()
        .find(|title| width(title) + 2 + counts_width <= total);
    let mut row1 = Vec::new();
    if let Some(title) = title {
        row1.push(Span::styled(title, t.title));
        row1.push(Span::raw("  "));
    }
    row1.extend(counts);

    let (state, state_style) = connection_text(app);
    let (fresh, fresh_style) = freshness_text(app);
    let mut row2 = vec![Span::styled(state, state_style)];
    // Unsent actions come right after the connection state: a responder
    // working offline must see that their actions have not reached anyone.
    if app.sending > 0 {
        row2.push(Span::raw(" · "));
        row2.push(Span::styled(s.sending, t.warn));
    }
    if app.outbox_waiting > 0 {
        row2.push(Span::raw(" · "));
        row2.push(Span::styled(
            s.actions_waiting(app.outbox_waiting),
            if app.connection == ConnectionState::Connected {
                t.warn
            } else {
                t.bad
            },
        ));
    }
    row2.push(Span::raw(" · "));
    row2.push(Span::styled(fresh, fresh_style));
    let address = format!(" · {} · {} {}", app.relay_label, s.seq_label, app.last_seq);
    if row2.iter().map(Span::width).sum::<usize>() + width(&address) <= total {
        row2.push(Span::raw(address));
    }
    frame.render_widget(
        Paragraph::new(vec![fitted(row1, total), fitted(row2, total)]),
        area,
    );
}

fn connection_text(app: &App) -> (String, Style) {
    let s = app.strings;
    let t = &app.theme;
    match &app.connection {
        ConnectionState::Connecting { attempt } => (
            format!("◌ {} ({})", s.conn_connecting, s.attempt(*attempt)),
            t.warn,
        ),
        ConnectionState::Connected => match app.freshness() {
            Freshness::Stale { .. } => (format!("◐ {}", s.conn_stale), t.warn),
            _ => (format!("● {}", s.conn_connected), t.ok),
        },
        ConnectionState::Retrying {
            attempt,
            retry_in_secs,
        } => (
            format!(
                "○ {} · {} {retry_in_secs}s ({})",
                s.conn_offline,
                s.conn_retry,
                s.attempt(*attempt)
            ),
            t.bad,
        ),
        ConnectionState::Refused {
            status,
            retry_in_secs,
        } => (
            format!("✕ {} (HTTP {status}) · {retry_in_secs}s", s.conn_refused),
            t.bad,
        ),
    }
}

/// How old the data on screen is. Stale and offline are said in words and
/// marked, never hidden behind an old "connected".
fn freshness_text(app: &App) -> (String, Style) {
    let s = app.strings;
    let t = &app.theme;
    match app.freshness() {
        Freshness::Live { secs } => (format!("{} {}", s.data_age, s.ago(secs)), Style::new()),
        Freshness::Stale { secs } => (format!("⚠{} {}", s.data_age, s.ago(secs)), t.alarm),
        Freshness::Offline { secs: Some(secs) } => {
            (format!("⚠{} {}", s.data_age, s.ago(secs)), t.bad)
        }
        Freshness::Offline { secs: None } => (s.data_never.to_string(), t.warn),
    }
}

fn draw_drill_banner(app: &App, frame: &mut Frame, area: Rect) {
    let text = match &app.banner {
        Some(extra) => format!(" {} · {extra} ", app.strings.drill_banner),
        None => format!(" {} ", app.strings.drill_banner),
    };
    frame.render_widget(
        Paragraph::new(fit(&text, area.width as usize)).style(app.theme.drill),
        area,
    );
}

/// New high/imminent cases, until someone acknowledges them. Pseudonymous
/// like the list: id, level, category.
fn draw_alarm_banner(app: &App, frame: &mut Frame, area: Rect) {
    let s = app.strings;
    let open: Vec<&CaseView> = app.open_alarms().collect();
    let Some(newest) = open.last() else { return };
    let c = &newest.case;
    let drill = if newest.is_drill() {
        format!(" [{}]", s.drill_marker)
    } else {
        String::new()
    };
    let imminent = if c.imminent {
        format!(" ‼{}", s.imminent)
    } else {
        String::new()
    };
    let (level, _) = level_mark(s, &app.theme, c.level);
    let text = format!(
        " ‼ {} {} · {}{drill} {level}{imminent} {} · {} ",
        s.alarm_new,
        open.len(),
        c.id,
        s.category(c.category),
        s.alarm_keys
    );
    frame.render_widget(
        Paragraph::new(fit(&text, area.width as usize)).style(app.theme.alarm),
        area,
    );
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
    // The key first: the step title may be long and is what gets cut.
    let text = format!(
        " ⚠ {} {} · {} · {} ",
        s.escalated,
        app.unseen_escalations.len(),
        s.escalation_dismiss,
        latest.unwrap_or_default(),
    );
    frame.render_widget(
        Paragraph::new(fit(&text, area.width as usize)).style(app.theme.alarm),
        area,
    );
}

/// Symbol + text + colour, so a level reads without colour too.
pub fn level_mark(s: &Strings, t: &Theme, level: Level) -> (String, Style) {
    let symbol = match level {
        Level::High => "▲",
        Level::Key => "◆",
        Level::General => "●",
    };
    (format!("{symbol} {}", s.level(level)), t.level(level))
}

fn sort_name(s: &Strings, sort: SortKey) -> &'static str {
    match sort {
        SortKey::Urgency => s.sort_urgency,
        SortKey::Newest => s.sort_newest,
        SortKey::RecentlyUpdated => s.sort_updated,
        SortKey::CaseId => s.sort_case_id,
    }
}

/// The active filters in words, or `None` when nothing filters.
fn filter_words(app: &App) -> Vec<String> {
    let s = app.strings;
    let f = &app.filter;
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
    if !f.search.is_empty() && !app.searching {
        words.push(format!("/{}", f.search));
    }
    words
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
    let t = &app.theme;
    let shown = if app.filter.is_active() {
        format!("{}/{} {}", app.order.len(), app.sorted.len(), s.open_count)
    } else {
        format!("{} {}", app.sorted.len(), s.open_count)
    };
    let title = format!(" {shown} · {}: {} ", s.sort_label, sort_name(s, app.sort));
    let block = Block::new()
        .borders(Borders::TOP)
        .title(fit(&title, area.width as usize));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [bar, table] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);

    // The filter bar: what filters now, or how to filter.
    let bar_line = if app.searching {
        Line::from(vec![
            Span::styled(
                format!("/ {}▏", crate::text::inert(&app.filter.search)),
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

    if app.order.is_empty() {
        let empty = if app.sorted.is_empty() {
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
    let first = app.selected.saturating_sub(visible.saturating_sub(1));
    let rows = app
        .order
        .iter()
        .enumerate()
        .skip(first)
        .take(visible)
        .map(|(i, slot)| (i, app.cases.at(*slot)))
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
    .style(t.header_row);
    let widths = [
        W_MARK, W_LEVEL, W_CASE, W_DRILL, W_STUDENT, W_CLASS, w_category, W_AGE, W_STATUS,
    ]
    .map(|w| Constraint::Length(w as u16));
    frame.render_widget(Table::new(rows, widths).header(header), table);
}

fn case_row<'a>(app: &App, c: &'a CaseView, selected: bool, w_category: usize) -> Row<'a> {
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

const W_DUE: usize = 15;
const W_STATE: usize = 8;
const W_ROLE: usize = 12;

/// A table of step rows; `rows[0]` is row `offset` of the whole list (the
/// caller passes only what is on screen or all of a short list).
fn step_table<'a>(app: &App, rows: &[StepRow], offset: usize, area: Rect) -> Table<'a> {
    let title_width = (area.width as usize).saturating_sub(1 + 1 + W_DUE + W_STATE + W_ROLE + 5);
    let visible = area.height.saturating_sub(1) as usize;
    let first = app
        .step_cursor
        .saturating_sub(visible.saturating_sub(1))
        .saturating_sub(offset);
    let body: Vec<Row> = rows
        .iter()
        .enumerate()
        .skip(first)
        .take(visible)
        .map(|(i, r)| step_row(app, r, i + offset == app.step_cursor, title_width))
        .collect();
    let widths = [1, 1, W_DUE, W_STATE, title_width, W_ROLE].map(|w| Constraint::Length(w as u16));
    let s = app.strings;
    Table::new(body, widths).header(
        Row::new(["", "", s.col_due, "", s.col_step, s.col_role]).style(app.theme.header_row),
    )
}

fn draw_my_steps(app: &App, frame: &mut Frame, area: Rect) {
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
    let first = app.step_cursor.saturating_sub(visible.saturating_sub(1));
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
        Ask::RevealReason(_) => s.ask_reveal.to_string(),
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
            local(app, at)
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
            local(app, c.case.opened_at),
            age(s, app.now, c.case.opened_at)
        )),
        label(s.detail_updated),
        Span::raw(local(app, c.case.updated_at)),
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

fn draw_tabs(app: &App, frame: &mut Frame, area: Rect) {
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

/// The student's history: other cases seen for the same student id, this
/// case's alerts, and scale scores over time as a chart, so a responder
/// sees a trend and not a context-free snippet.
fn draw_history(app: &App, c: &CaseView, frame: &mut Frame, area: Rect) {
    let s = app.strings;
    let t = &app.theme;
    let w = area.width as usize;
    let mut lines: Vec<Line> = Vec::new();
    let student = c.student.list_name();
    lines.push(Line::styled(
        fit(
            &format!(
                "{} {} · {} {student} ({})",
                s.col_case, c.case.id, s.detail_student, c.student.id
            ),
            w,
        ),
        t.title,
    ));
    let others = app.student_history(c);
    lines.push(Line::styled(
        format!("{} ({})", s.history_cases, others.len()),
        t.title,
    ));
    if others.is_empty() {
        lines.push(Line::raw(fit(&format!("  {}", s.history_none), w)));
    }
    for o in &others {
        let (level, style) = level_mark(s, t, o.case.level);
        let state = match o.outcome {
            Some(outcome) => format!("{} {}", s.closed_as, s.outcome(outcome)),
            None => s.status(o.case.status).to_string(),
        };
        let head = format!("  {} {} ", o.case.id, local_date(app, o.case.opened_at));
        let tail = format!(
            " {} · {} · {} {}",
            s.category(o.case.category),
            state,
            o.case.alert_count,
            s.alerts_n
        );
        lines.push(fitted(
            vec![Span::raw(head), Span::styled(level, style), Span::raw(tail)],
            w,
        ));
    }
    lines.push(Line::styled(
        format!("{} ({})", s.history_alerts, c.alerts.len()),
        t.title,
    ));
    for a in c.alerts.iter().rev() {
        let (level, style) = level_mark(s, t, a.level);
        let head = format!(
            "  {} ",
            local_minute(app, a.observed_at.with_timezone(&Utc))
        );
        let tail = format!(
            "{} {}",
            if a.imminent { " ‼" } else { "" },
            s.source(a.source)
        );
        lines.push(fitted(
            vec![Span::raw(head), Span::styled(level, style), Span::raw(tail)],
            w,
        ));
    }

    let series = app.score_series(c);
    // The facts take what they need up to half the screen; the chart the rest.
    let facts_height = (lines.len() as u16).min(area.height / 2);
    let [facts, chart] =
        Layout::vertical([Constraint::Length(facts_height), Constraint::Min(0)]).areas(area);
    frame.render_widget(Paragraph::new(lines).scroll((app.detail_scroll, 0)), facts);
    draw_scores(app, &series, frame, chart);
}

/// The usual maximum of a scale, so charts of one instrument compare across
/// students; unknown instruments scale to their own data.
fn scale_max(instrument: &str, data_max: f64) -> f64 {
    let key: String = instrument
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_uppercase();
    let known: f64 = match key.as_str() {
        "PHQ9" => 27.0,
        "GAD7" => 21.0,
        "UPI" => 60.0,
        "SCL90" => 450.0,
        "PHQA" => 27.0,
        _ => 0.0,
    };
    known.max(data_max).max(1.0)
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn draw_scores(app: &App, series: &[super::app::ScoreSeries], frame: &mut Frame, area: Rect) {
    let s = app.strings;
    let t = &app.theme;
    if area.height == 0 {
        return;
    }
    let w = area.width as usize;
    let Some(pick) = (!series.is_empty()).then(|| &series[app.chart_pick % series.len()]) else {
        let block = Block::new()
            .borders(Borders::TOP)
            .title(fit(&format!(" {} ", s.scores_title), w));
        let inner = block.inner(area);
        frame.render_widget(block, area);
        frame.render_widget(Paragraph::new(fit(s.scores_none, w)), inner);
        return;
    };
    let others: Vec<String> = series
        .iter()
        .map(|x| format!("{} ({})", x.instrument, x.points.len()))
        .collect();
    let title = format!(
        " {} · {} · {} ",
        s.scores_title,
        others.join(" "),
        s.scores_next
    );
    let block = Block::new().borders(Borders::TOP).title(fit(&title, w));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    // The trend in numbers first: readable without the chart, and without
    // colour.
    let values: Vec<String> = pick.points.iter().map(|(_, v)| number(*v)).collect();
    let arrow = match (pick.points.first(), pick.points.last()) {
        (Some((_, a)), Some((_, b))) if b > a => " ↑",
        (Some((_, a)), Some((_, b))) if b < a => " ↓",
        _ => "",
    };
    let trend = format!("{}: {}{arrow}", pick.instrument, values.join(" → "));
    let [trend_area, chart_area] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
    frame.render_widget(
        Paragraph::new(Line::styled(fit(&trend, w), t.title)),
        trend_area,
    );
    if chart_area.height < 3 || chart_area.width < 20 {
        return;
    }
    let Some((first, _)) = pick.points.first() else {
        return;
    };
    let Some((last, _)) = pick.points.last() else {
        return;
    };
    let days =
        |at: &chrono::DateTime<chrono::FixedOffset>| (*at - *first).num_seconds() as f64 / 86_400.0;
    let data: Vec<(f64, f64)> = pick.points.iter().map(|(at, v)| (days(at), *v)).collect();
    let span = days(last).max(1.0);
    let data_max = pick.points.iter().map(|(_, v)| *v).fold(0.0, f64::max);
    let y_max = scale_max(&pick.instrument, data_max);
    let date = |at: &chrono::DateTime<chrono::FixedOffset>| {
        app.display_offset
            .from_utc_datetime(&at.naive_utc())
            .format("%m-%d")
            .to_string()
    };
    let datasets = vec![
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(t.chart[0])
            .data(&data),
        Dataset::default()
            .marker(Marker::Dot)
            .graph_type(GraphType::Scatter)
            .style(t.chart[1])
            .data(&data),
    ];
    let chart = Chart::new(datasets)
        .x_axis(
            Axis::default()
                .bounds([0.0, span])
                .labels([date(first), date(last)]),
        )
        .y_axis(Axis::default().bounds([0.0, y_max]).labels([
            "0".to_string(),
            number((y_max / 2.0).round()),
            number(y_max),
        ]));
    frame.render_widget(chart, chart_area);
}

fn local_date(app: &App, t: DateTime<Utc>) -> String {
    app.display_offset
        .from_utc_datetime(&t.naive_utc())
        .format("%Y-%m-%d")
        .to_string()
}

fn local_minute(app: &App, t: DateTime<Utc>) -> String {
    app.display_offset
        .from_utc_datetime(&t.naive_utc())
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// The bottom line: the latest outcome, then the key hint.
fn draw_status(app: &App, frame: &mut Frame, area: Rect) {
    let s = app.strings;
    let total = area.width as usize;
    let hint_width = width(s.help_hint);
    let mut spans = Vec::new();
    if let Some(notice) = &app.notice {
        let room = total.saturating_sub(hint_width + 2);
        spans.push(Span::styled(fit(notice, room), app.theme.title));
    }
    let used: usize = spans.iter().map(Span::width).sum();
    if used + hint_width < total {
        spans.push(Span::raw(" ".repeat(total - used - hint_width)));
        spans.push(Span::raw(s.help_hint));
    }
    frame.render_widget(Paragraph::new(fitted(spans, total)), area);
}

/// Every key of the current view, then the keys that work everywhere, from
/// the same tables key handling uses. Laid out in as many columns as the
/// screen needs.
fn draw_help(app: &App, frame: &mut Frame, area: Rect) {
    let s = app.strings;
    let t = &app.theme;
    let view = keymap::for_screen(&app.screen);
    let key_width = view
        .iter()
        .chain(keymap::GLOBAL)
        .map(|b| width(b.label))
        .max()
        .unwrap_or(0);
    let mut entries: Vec<Line> = vec![Line::styled(s.help_view_keys, t.header_row)];
    let row = |b: &keymap::Binding| {
        Line::raw(format!(
            " {} {}",
            fit_exact(b.label, key_width),
            s.cmd(b.cmd)
        ))
    };
    entries.extend(view.iter().map(row));
    entries.push(Line::styled(s.help_global_keys, t.header_row));
    entries.extend(keymap::GLOBAL.iter().map(row));

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
