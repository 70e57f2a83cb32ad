//! Incident reports on the duty console: the header's countdown to the
//! soonest report stage still to be sent (like an overdue step, it turns
//! to an alarm once the deadline passes), and for the district the number
//! of stages waiting for its review.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::i18n::Lang;
use crate::protocol::Role;
use crate::reporting::{IncidentReport, Stage, StageStatus};

/// Incident reports by case id, as the stream last showed them.
pub type Reports = BTreeMap<String, IncidentReport>;

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

/// The soonest report stage not yet with the district (never sent, or
/// returned), as (report id, stage, due).
pub fn next_due(reports: &Reports) -> Option<(&str, Stage, DateTime<Utc>)> {
    reports
        .values()
        .flat_map(|r| {
            r.stages
                .iter()
                .filter(|s| matches!(s.status, StageStatus::Pending | StageStatus::Returned))
                .map(move |s| (r.id.as_str(), s.stage, s.due))
        })
        .min_by_key(|(_, _, due)| *due)
}

/// The header's line about reports for `role`: the district counts what
/// waits for its review, a school counts down to its next stage.
pub fn notice(
    reports: &Reports,
    role: Option<Role>,
    lang: Lang,
    now: DateTime<Utc>,
) -> Option<ReportNotice> {
    if role == Some(Role::District) {
        let waiting: usize = reports.values().map(|r| r.awaiting_review()).sum();
        return (waiting > 0).then(|| ReportNotice {
            text: match lang {
                Lang::Zh => format!("待审报告 {waiting}"),
                Lang::En => format!("reports to review {waiting}"),
            },
            overdue: false,
        });
    }
    let (id, stage, due) = next_due(reports)?;
    let left = (due - now).num_seconds();
    let label = stage_label(stage, lang);
    let text = match (lang, left >= 0) {
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

/// One report as the reports screen lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRow {
    pub id: String,
    pub drill: bool,
    pub school: String,
    pub rules: String,
    /// Per stage: label, status word, and `late` / countdown.
    pub stages: Vec<String>,
    pub next_due: Option<DateTime<Utc>>,
    pub overdue: bool,
    /// The district's latest reason for a return still to be answered.
    pub returned_reason: Option<String>,
    pub case_id: String,
    /// A stage was submitted after its deadline (accepted, marked late).
    pub late: bool,
}

fn status_word(status: StageStatus, lang: Lang) -> &'static str {
    match lang {
        Lang::Zh => status.label_zh(),
        Lang::En => status.as_str(),
    }
}

/// Reports, soonest open deadline first (fully accepted ones last).
/// Text from the record (school, reasons) is made inert here.
pub fn rows(reports: &Reports, lang: Lang, now: DateTime<Utc>) -> Vec<ReportRow> {
    let mut rows: Vec<ReportRow> = reports
        .values()
        .map(|r| {
            let open = r
                .stages
                .iter()
                .filter(|s| matches!(s.status, StageStatus::Pending | StageStatus::Returned))
                .min_by_key(|s| s.due);
            ReportRow {
                id: r.id.clone(),
                drill: r.drill,
                school: r
                    .form
                    .school
                    .as_deref()
                    .map(crate::text::inert)
                    .unwrap_or_default(),
                rules: r.rules.join(","),
                stages: r
                    .stages
                    .iter()
                    .map(|s| {
                        format!(
                            "{} {}{}",
                            stage_label(s.stage, lang),
                            status_word(s.status, lang),
                            if s.late { "!" } else { "" }
                        )
                    })
                    .collect(),
                next_due: open.map(|s| s.due),
                overdue: open.is_some_and(|s| s.due < now),
                returned_reason: r
                    .stages
                    .iter()
                    .filter(|s| s.status == StageStatus::Returned)
                    .filter_map(|s| s.returns.last())
                    .map(|ret| crate::text::inert(&ret.reason))
                    .next(),
                case_id: r.case_id.clone(),
                late: r.stages.iter().any(|s| s.late),
            }
        })
        .collect();
    rows.sort_by(|a, b| match (a.next_due, b.next_due) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.id.cmp(&b.id),
    });
    rows
}

/// The reports screen's words, in the console's language.
pub fn words(lang: Lang) -> ReportWords {
    match lang {
        Lang::Zh => ReportWords {
            title: "事件信息报告",
            empty: "暂无事件信息报告",
            due: "时限",
            report: "报告",
            school: "学校",
            rules: "事由",
            stages: "首报 / 续报 / 终报",
            returned: "退回原因",
            drill: "演练",
        },
        Lang::En => ReportWords {
            title: "Incident reports",
            empty: "No incident reports",
            due: "due",
            report: "report",
            school: "school",
            rules: "rules",
            stages: "first / follow-up / final",
            returned: "returned because",
            drill: "drill",
        },
    }
}

/// Words of the reports screen.
#[derive(Debug, Clone, Copy)]
pub struct ReportWords {
    pub title: &'static str,
    pub empty: &'static str,
    pub due: &'static str,
    pub report: &'static str,
    pub school: &'static str,
    pub rules: &'static str,
    pub stages: &'static str,
    pub returned: &'static str,
    pub drill: &'static str,
}
