//! The report view: the period report's three charts as text — cases by
//! level per school (stacked bars), cases opened per month (ratatui's
//! `BarChart`), and the time-to-acknowledge histogram (bars) — with the
//! same figures as the HTML report's SVG (the relay counts them with the
//! same code, `review::figures`). Bars read without colour: each level has
//! its own shade (░ general, ▒ key, █ high).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Bar, BarChart, BarGroup, Block, Borders, Paragraph};

use super::widgets::{DAY, fitted, local};
use crate::console::app::App;
use crate::review::figures::ChartFigures;
use crate::text::{fit_exact, width};

/// Rows for the monthly trend and the histogram beside it.
const LOWER_ROWS: u16 = 14;
const SHADES: [char; 3] = ['░', '▒', '█'];
/// Eighths of a cell, for bar ends.
const EIGHTHS: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];

/// A bar of `value` out of `max` in `cells` cells, to the eighth of a
/// cell; a value above zero always shows at least a sliver.
pub fn bar(value: usize, max: usize, cells: usize) -> String {
    if max == 0 || cells == 0 {
        return String::new();
    }
    let eighths = (value * cells * 8).div_ceil(max).min(cells * 8);
    let mut s: String = std::iter::repeat_n('█', eighths / 8).collect();
    if !eighths.is_multiple_of(8) {
        s.push(EIGHTHS[eighths % 8]);
    }
    s
}

/// Cells per segment of a stacked bar: `counts` out of `max` in `cells`
/// cells, each non-zero segment at least one cell, never wider than
/// `cells` in all.
pub fn segments(counts: &[usize], max: usize, cells: usize) -> Vec<usize> {
    if max == 0 {
        return vec![0; counts.len()];
    }
    let mut out: Vec<usize> = counts
        .iter()
        .map(|&n| match n {
            0 => 0,
            n => ((n * cells + max / 2) / max).max(1),
        })
        .collect();
    while out.iter().sum::<usize>() > cells {
        // Trim the widest segment: rounding up slivers can overflow.
        if let Some(widest) = out.iter_mut().max() {
            *widest -= 1;
        }
    }
    out
}

pub(super) fn draw_charts(app: &App, frame: &mut Frame, area: Rect) {
    let w = app.strings.upward();
    let c = &app.charts;
    let mut title = format!(" {} ({}{}) ", w.charts_title, c.months(), w.months);
    if c.pending.is_some() {
        title.push_str(&format!("· {} ", w.asking));
    }
    let block = Block::new().borders(Borders::TOP).title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(f) = &c.figures else {
        let line = match &c.error {
            Some(e) => Line::styled(format!("⚠ {e}"), app.theme.alarm),
            None => Line::raw(w.asking),
        };
        frame.render_widget(Paragraph::new(line), inner);
        return;
    };
    let schools_height = if f.cases == 0 {
        0
    } else {
        (f.school_levels.len() as u16 + 1).min(inner.height.saturating_sub(2) / 2)
    };
    // The trend and the histogram need a dozen rows; more makes the bars
    // taller, not clearer.
    let [stats, schools, lower, _] = Layout::vertical([
        Constraint::Length(1 + u16::from(c.error.is_some())),
        Constraint::Length(schools_height),
        Constraint::Max(LOWER_ROWS),
        Constraint::Min(0),
    ])
    .areas(inner);
    draw_stats(app, f, frame, stats);
    if f.cases == 0 {
        frame.render_widget(Paragraph::new(w.no_cases), lower);
        return;
    }
    draw_schools(app, f, frame, schools);
    let [monthly, ack] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(lower);
    draw_monthly(app, f, frame, monthly);
    draw_ack(app, f, frame, ack);
}

fn draw_stats(app: &App, f: &ChartFigures, frame: &mut Frame, area: Rect) {
    let w = app.strings.upward();
    let s = app.strings;
    let secs = |v: Option<i64>| v.map_or_else(|| "—".to_string(), |v| s.secs(v));
    let mut spans = vec![
        Span::raw(format!(
            "{} – {} · ",
            local(app, f.from, DAY),
            local(app, f.to, DAY)
        )),
        Span::styled(format!("{} {}", w.cases, f.cases), app.theme.title),
        Span::raw(format!(
            " · {} {}/{} · {}",
            w.ack_median,
            secs(f.time_to_ack_p50_secs),
            secs(f.time_to_ack_p90_secs),
            if f.drills_included {
                w.drills_in
            } else {
                w.drills_out
            }
        )),
    ];
    if f.drills_included {
        spans[2].style = app.theme.drill;
    }
    let mut lines = vec![fitted(spans, area.width as usize)];
    if let Some(e) = &app.charts.error {
        lines.push(Line::styled(format!("⚠ {e}"), app.theme.alarm));
    }
    frame.render_widget(Paragraph::new(lines), area);
}

fn draw_schools(app: &App, f: &ChartFigures, frame: &mut Frame, area: Rect) {
    if area.height == 0 {
        return;
    }
    let w = app.strings.upward();
    let t = &app.theme;
    let styles: [Style; 3] = [t.general, t.key, t.high];
    let mut head = vec![Span::styled(format!("{}  ", w.by_school), t.title)];
    for (i, level) in w.levels.iter().enumerate() {
        head.push(Span::styled(format!("{}", SHADES[i]), styles[i]));
        head.push(Span::raw(format!(" {level}  ")));
    }
    let mut lines = vec![fitted(head, area.width as usize)];
    let label_w = f
        .school_levels
        .iter()
        .map(|s| width(&s.school))
        .max()
        .unwrap_or(0)
        .clamp(4, (area.width as usize / 4).max(4));
    let max = f
        .school_levels
        .iter()
        .map(|s| s.general + s.key + s.high)
        .max()
        .unwrap_or(0);
    let count_w = max.to_string().len();
    let cells = (area.width as usize).saturating_sub(label_w + count_w + 3);
    let room = area.height as usize - 1;
    let shown = if f.school_levels.len() > room {
        room.saturating_sub(1)
    } else {
        room
    };
    for s in f.school_levels.iter().take(shown) {
        let counts = [s.general, s.key, s.high];
        let mut spans = vec![Span::raw(format!("{} ", fit_exact(&s.school, label_w)))];
        for (i, n) in segments(&counts, max, cells).into_iter().enumerate() {
            if n > 0 {
                spans.push(Span::styled(
                    std::iter::repeat_n(SHADES[i], n).collect::<String>(),
                    styles[i],
                ));
            }
        }
        spans.push(Span::raw(format!(" {}", counts.iter().sum::<usize>())));
        lines.push(fitted(spans, area.width as usize));
    }
    if shown < f.school_levels.len() {
        lines.push(Line::raw(format!("… +{}", f.school_levels.len() - shown)));
    }
    frame.render_widget(Paragraph::new(lines), area);
}

fn draw_monthly(app: &App, f: &ChartFigures, frame: &mut Frame, area: Rect) {
    let w = app.strings.upward();
    let n = f.monthly.len().max(1);
    let inner_w = area.width.saturating_sub(1) as usize;
    let bar_w = ((inner_w + 1) / n).saturating_sub(1).clamp(1, 7);
    let bars: Vec<Bar> = f
        .monthly
        .iter()
        .map(|(month, count)| {
            // `2026-11`: the month alone where a bar is narrow (the period
            // above says the years).
            let label = if bar_w >= month.len() {
                month.clone()
            } else {
                month.rsplit('-').next().unwrap_or(month).to_string()
            };
            Bar::default()
                .value(*count as u64)
                .label(Line::raw(label))
                .text_value(count.to_string())
        })
        .collect();
    let chart = BarChart::default()
        .block(
            Block::new()
                .borders(Borders::RIGHT)
                .title(Line::styled(w.monthly, app.theme.title)),
        )
        .bar_width(bar_w as u16)
        .bar_gap(1)
        .bar_style(app.theme.title)
        .value_style(app.theme.selected)
        .data(BarGroup::default().bars(&bars));
    frame.render_widget(chart, area);
}

fn draw_ack(app: &App, f: &ChartFigures, frame: &mut Frame, area: Rect) {
    let w = app.strings.upward();
    let mut lines = vec![Line::styled(format!(" {}", w.time_to_ack), app.theme.title)];
    if f.time_to_ack.is_empty() {
        lines.push(Line::raw(format!(" {}", w.no_acks)));
        frame.render_widget(Paragraph::new(lines), area);
        return;
    }
    // Bucket names in the console's language, by position; the relay's
    // own label if the histogram ever has other buckets.
    let label = |i: usize, relay: &str| -> String {
        if f.time_to_ack.len() == crate::review::figures::ACK_BUCKETS {
            w.ack_buckets[i].to_string()
        } else {
            relay.to_string()
        }
    };
    let labels: Vec<String> = f
        .time_to_ack
        .iter()
        .enumerate()
        .map(|(i, (l, _))| label(i, l))
        .collect();
    let label_w = labels.iter().map(|l| width(l)).max().unwrap_or(0);
    let max = f.time_to_ack.iter().map(|(_, n)| *n).max().unwrap_or(0);
    let count_w = max.to_string().len();
    let cells = (area.width as usize).saturating_sub(label_w + count_w + 4);
    for ((_, n), l) in f.time_to_ack.iter().zip(&labels) {
        lines.push(fitted(
            vec![
                Span::raw(format!(" {} ", fit_exact(l, label_w))),
                Span::styled(bar(*n, max, cells), app.theme.title),
                Span::raw(format!(" {n}")),
            ],
            area.width as usize,
        ));
    }
    frame.render_widget(Paragraph::new(lines), area);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_eighth_and_never_vanish() {
        assert_eq!(bar(10, 10, 4), "████");
        assert_eq!(bar(5, 10, 4), "██");
        assert_eq!(bar(1, 100, 4), "▏", "a small count still shows");
        assert_eq!(bar(0, 10, 4), "");
        assert_eq!(bar(3, 8, 1), "▍");
        assert_eq!(bar(1, 0, 4), "");
    }

    #[test]
    fn stacked_segments_fit_and_keep_every_level_seen() {
        assert_eq!(segments(&[2, 1, 1], 4, 8), [4, 2, 2]);
        // One high case among a hundred general ones still shows.
        let s = segments(&[100, 0, 1], 101, 10);
        assert_eq!(s[2], 1);
        assert!(s.iter().sum::<usize>() <= 10);
        assert_eq!(segments(&[0, 0, 0], 0, 10), [0, 0, 0]);
        assert_eq!(segments(&[1, 1, 1], 3, 2).iter().sum::<usize>(), 2);
    }
}
