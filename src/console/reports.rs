//! Incident reports on the duty console: the header's countdown to the
//! soonest report stage still to be sent (like an overdue step, it turns
//! to an alarm once the deadline passes), and for the district the number
//! of stages waiting for its review.

use chrono::{DateTime, Utc};

use super::app::App;
use super::i18n::Lang;
use crate::protocol::Role;
use crate::reporting::{Stage, StageStatus};

/// What the header shows about reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportNotice {
    pub text: String,
    /// Past its deadline: drawn as an alarm.
    pub overdue: bool,
}

/// `1:05` for an hour and five minutes, `12m` under an hour, `3d4h` past a day.
pub fn countdown(secs: i64) -> String {
    let secs = secs.abs();
    let (d, h, m) = (secs / 86_400, (secs % 86_400) / 3600, (secs % 3600) / 60);
    match (d, h) {
        (0, 0) => format!("{m}m"),
        (0, _) => format!("{h}:{m:02}"),
        _ => format!("{d}d{h}h"),
    }
}

fn stage_label(stage: Stage, lang: Lang) -> &'static str {
    match lang {
        Lang::Zh => stage.label_zh(),
        Lang::En => stage.as_str(),
    }
}

impl App {
    /// The soonest report stage not yet with the district (never sent, or
    /// returned), as (report id, stage, due).
    pub fn next_report_due(&self) -> Option<(&str, Stage, DateTime<Utc>)> {
        self.reports
            .values()
            .flat_map(|r| {
                r.stages
                    .iter()
                    .filter(|s| matches!(s.status, StageStatus::Pending | StageStatus::Returned))
                    .map(move |s| (r.id.as_str(), s.stage, s.due))
            })
            .min_by_key(|(_, _, due)| *due)
    }

    pub fn report_notice(&self) -> Option<ReportNotice> {
        if self.me.as_ref().is_some_and(|m| m.role == Role::District) {
            let waiting: usize = self.reports.values().map(|r| r.awaiting_review()).sum();
            return (waiting > 0).then(|| ReportNotice {
                text: match self.lang {
                    Lang::Zh => format!("待审报告 {waiting}"),
                    Lang::En => format!("reports to review {waiting}"),
                },
                overdue: false,
            });
        }
        let (id, stage, due) = self.next_report_due()?;
        let left = (due - self.now).num_seconds();
        let label = stage_label(stage, self.lang);
        let text = match (self.lang, left >= 0) {
            (Lang::Zh, true) => format!("上报 {id} {label} 剩 {}", countdown(left)),
            (Lang::Zh, false) => format!("⚠上报逾期 {id} {label} +{}", countdown(left)),
            (Lang::En, true) => format!("report {id} {label} due in {}", countdown(left)),
            (Lang::En, false) => format!("⚠report {id} {label} overdue +{}", countdown(left)),
        };
        Some(ReportNotice {
            text,
            overdue: left < 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::countdown;

    #[test]
    fn countdowns_read_at_a_glance() {
        assert_eq!(countdown(59), "0m");
        assert_eq!(countdown(12 * 60), "12m");
        assert_eq!(countdown(3900), "1:05");
        assert_eq!(countdown(-3900), "1:05");
        assert_eq!(countdown(3 * 86_400 + 4 * 3600), "3d4h");
    }
}
