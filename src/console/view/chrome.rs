//! The frame around every view: the header (how bad, how fresh), the
//! drill, alarm and escalation banners, and the status line.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Span;
use ratatui::widgets::Paragraph;

use crate::console::action::ConnectionState;
use crate::console::app::{App, Freshness};
use crate::console::cases::CaseView;
use crate::console::reports;
use crate::protocol::Level;
use crate::text::{fit, width};

use super::widgets::{fitted, level_mark};

/// Row 1: how bad it is (imminent, levels, unacknowledged, my overdue).
/// Row 2: how fresh it is (connection, time since the relay was heard).
pub(super) fn draw_header(app: &App, frame: &mut Frame, area: Rect) {
    let s = app.strings;
    let t = &app.theme;
    let st = &app.list.stats;
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
    // An incident report's deadline counts down beside the overdue steps.
    if let Some(notice) = reports::notice(&app.reports, app.my_role(), app.lang, app.now) {
        counts.push(Span::raw(" · "));
        counts.push(Span::styled(
            notice.text,
            if notice.overdue { t.alarm } else { t.warn },
        ));
    }
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
    if app.ledger.sending > 0 {
        row2.push(Span::raw(" · "));
        row2.push(Span::styled(s.sending, t.warn));
    }
    if app.ledger.outbox_waiting > 0 {
        row2.push(Span::raw(" · "));
        row2.push(Span::styled(
            s.actions_waiting(app.ledger.outbox_waiting),
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

pub(super) fn connection_text(app: &App) -> (String, Style) {
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
pub(super) fn freshness_text(app: &App) -> (String, Style) {
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

pub(super) fn draw_drill_banner(app: &App, frame: &mut Frame, area: Rect) {
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
pub(super) fn draw_alarm_banner(app: &App, frame: &mut Frame, area: Rect) {
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

pub(super) fn draw_escalation_banner(app: &App, frame: &mut Frame, area: Rect) {
    let s = app.strings;
    let latest = app.alarms.escalations().last().map(|(case_id, e)| {
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
        app.alarms.escalations().len(),
        s.escalation_dismiss,
        latest.unwrap_or_default(),
    );
    frame.render_widget(
        Paragraph::new(fit(&text, area.width as usize)).style(app.theme.alarm),
        area,
    );
}

/// The bottom line: the latest outcome, then the key hint.
pub(super) fn draw_status(app: &App, frame: &mut Frame, area: Rect) {
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
