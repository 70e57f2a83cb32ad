//! Small pieces every region uses: fitted lines, level marks, ages,
//! countdowns and the one local-time formatter.

use chrono::{DateTime, TimeZone, Utc};
use ratatui::style::Style;
use ratatui::text::{Line, Span};

use crate::console::app::App;
use crate::console::i18n::Strings;
use crate::console::theme::Theme;
use crate::protocol::Level;
use crate::text::fit;

/// Spans that fit in `width` cells, dropping from the end what does not.
pub(super) fn fitted<'a>(spans: Vec<Span<'a>>, width: usize) -> Line<'a> {
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

/// Symbol + text + colour, so a level reads without colour too.
pub fn level_mark(s: &Strings, t: &Theme, level: Level) -> (String, Style) {
    let symbol = match level {
        Level::High => "▲",
        Level::Key => "◆",
        Level::General => "●",
    };
    (format!("{symbol} {}", s.level(level)), t.level(level))
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

/// A time as `2026-11-20 21:30:05`, in the duty terminal's local time.
pub(super) const SECOND: &str = "%Y-%m-%d %H:%M:%S";
/// A time as `2026-11-20 21:30`.
pub(super) const MINUTE: &str = "%Y-%m-%d %H:%M";
/// A day as `2026-11-20`.
pub(super) const DAY: &str = "%Y-%m-%d";

/// A time in the duty terminal's local time (the offset it started with),
/// in one of the patterns above.
pub(super) fn local(app: &App, t: DateTime<Utc>, pattern: &str) -> String {
    app.display_offset
        .from_utc_datetime(&t.naive_utc())
        .format(pattern)
        .to_string()
}

/// A score as charts and records show it: whole numbers without a point.
pub(super) fn number(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}
