//! The student's history tab: earlier cases, alerts and the score chart.

use chrono::{TimeZone, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, Paragraph};

use crate::console::app::App;
use crate::console::cases::CaseView;
use crate::text::fit;

use super::widgets::{DAY, MINUTE, fitted, level_mark, local, number};

/// The student's history: other cases seen for the same student id, this
/// case's alerts, and scale scores over time as a chart, so a responder
/// sees a trend and not a context-free snippet.
pub(super) fn draw_history(app: &App, c: &CaseView, frame: &mut Frame, area: Rect) {
    let s = app.strings;
    let t = &app.theme;
    let w = area.width as usize;
    let mut lines: Vec<Line> = Vec::new();
    let student = c.student.list_name();
    lines.push(Line::styled(
        fit(
            &format!(
                "{} {} · {} {student} ({})",
                s.col_case,
                c.case.id,
                s.detail_student,
                c.student_id()
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
        let head = format!("  {} {} ", o.case.id, local(app, o.case.opened_at, DAY));
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
    // The student's results across screenings, from the student's
    // record (read from the relay when the tab opens).
    lines.extend(super::student::screening_lines(
        app,
        &c.case.student_id,
        app.student.waiting_for(&c.case.id),
        w,
    ));
    lines.push(Line::styled(
        format!("{} ({})", s.history_alerts, c.alerts.len()),
        t.title,
    ));
    for a in c.alerts.iter().rev() {
        let (level, style) = level_mark(s, t, a.level);
        let head = format!(
            "  {} ",
            local(app, a.observed_at.with_timezone(&Utc), MINUTE)
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
    frame.render_widget(
        Paragraph::new(lines).scroll((app.nav.detail_scroll, 0)),
        facts,
    );
    draw_scores(app, &series, frame, chart);
}

/// The usual maximum of a scale, so charts of one instrument compare across
/// students; unknown instruments scale to their own data.
pub(super) fn scale_max(instrument: &str, data_max: f64) -> f64 {
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

pub(super) fn draw_scores(
    app: &App,
    series: &[crate::console::cases::ScoreSeries],
    frame: &mut Frame,
    area: Rect,
) {
    let s = app.strings;
    let t = &app.theme;
    if area.height == 0 {
        return;
    }
    let w = area.width as usize;
    let Some(pick) = (!series.is_empty()).then(|| &series[app.nav.chart_pick % series.len()])
    else {
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
