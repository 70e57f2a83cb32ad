//! The period report's chart figures as data: what the HTML report draws
//! as SVG (`html::period_charts`), counted by the same functions, for a
//! reader that draws its own charts (the console's report view, which asks
//! the relay for them with `period_charts`). Counts and school names only:
//! no case, no student.

use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};

use super::report::PeriodReport;

/// Cases at each level in one school.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchoolLevels {
    pub school: String,
    pub general: usize,
    pub key: usize,
    pub high: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartFigures {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub drills_included: bool,
    pub cases: usize,
    /// Per school, by name.
    pub school_levels: Vec<SchoolLevels>,
    /// `("2026-11", 12)`: every month from the first case to the last, at
    /// the offset asked for.
    pub monthly: Vec<(String, usize)>,
    /// The histogram's buckets in order (`<1分` … `≥4时`, the labels of
    /// the HTML chart) with their counts; empty when nothing was
    /// acknowledged.
    pub time_to_ack: Vec<(String, usize)>,
    pub time_to_ack_p50_secs: Option<i64>,
    pub time_to_ack_p90_secs: Option<i64>,
}

impl ChartFigures {
    pub fn of(report: &PeriodReport, offset: FixedOffset) -> ChartFigures {
        let c = &report.charts;
        ChartFigures {
            from: report.from,
            to: report.to,
            drills_included: report.drills_included,
            cases: report.cases,
            school_levels: c
                .school_levels
                .iter()
                .map(|(school, [general, key, high])| SchoolLevels {
                    school: school.clone(),
                    general: *general,
                    key: *key,
                    high: *high,
                })
                .collect(),
            monthly: c.monthly(offset),
            time_to_ack: if c.time_to_ack_secs.is_empty() {
                Vec::new()
            } else {
                super::svg::ack_histogram(&c.time_to_ack_secs)
            },
            time_to_ack_p50_secs: report.time_to_ack_p50_secs,
            time_to_ack_p90_secs: report.time_to_ack_p90_secs,
        }
    }
}

/// How many buckets the time-to-acknowledge histogram has (the console
/// names them in its own language by position).
pub const ACK_BUCKETS: usize = super::svg::ACK_BUCKETS.len();

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::html::ChartData;

    #[test]
    fn figures_are_the_html_charts_numbers() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let mut charts = ChartData::default();
        charts.school_levels.insert("一中".into(), [2, 1, 1]);
        charts.opened = vec![t("2026-09-03T01:00:00Z"), t("2026-11-02T01:00:00Z")];
        charts.time_to_ack_secs = vec![30, 200, 7200];
        let report = crate::review::report::summarise(
            &[],
            t("2026-09-01T00:00:00Z"),
            t("2026-12-01T00:00:00Z"),
            false,
        );
        let report = PeriodReport { charts, ..report };
        let f = ChartFigures::of(&report, FixedOffset::east_opt(8 * 3600).unwrap());
        assert_eq!(f.school_levels[0].high, 1);
        assert_eq!(
            f.monthly.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
            [1, 0, 1]
        );
        let counts: Vec<usize> = f.time_to_ack.iter().map(|(_, n)| *n).collect();
        assert_eq!(counts, [1, 1, 0, 0, 0, 1, 0]);
        assert_eq!(f.time_to_ack.len(), ACK_BUCKETS);
    }
}
