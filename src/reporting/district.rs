//! The district view (教育局 / 区心理中心): across schools, what needs
//! attention — open high and imminent cases, overdue steps, incident
//! reports awaiting review or overdue. Counts per school only: no student
//! id, no name, no case list (a report line names its pseudonymous case id,
//! as the report itself does).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{IncidentReport, StageStatus};
use crate::playbook::Library;
use crate::protocol::Level;
use crate::store::{Store, StoreError};
use crate::text::{inert, pad, pad_left};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchoolRow {
    pub school: String,
    pub open_high: usize,
    pub open_imminent: usize,
    pub overdue_steps: usize,
    /// Scheduled follow-up check-ins past their due time, not recorded.
    pub overdue_checkins: usize,
    pub reports_awaiting_review: usize,
    pub reports_overdue: usize,
}

impl SchoolRow {
    fn add(&mut self, other: &SchoolRow) {
        self.open_high += other.open_high;
        self.open_imminent += other.open_imminent;
        self.overdue_steps += other.overdue_steps;
        self.overdue_checkins += other.overdue_checkins;
        self.reports_awaiting_review += other.reports_awaiting_review;
        self.reports_overdue += other.reports_overdue;
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportLine {
    pub report_id: String,
    pub school: String,
    pub rules: Vec<String>,
    /// `first=submitted` and so on.
    pub stages: Vec<String>,
    pub awaiting_review: bool,
    pub next_due: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DistrictView {
    pub as_of: DateTime<Utc>,
    pub schools: Vec<SchoolRow>,
    pub total: SchoolRow,
    /// Reports with a stage awaiting review or not yet accepted.
    pub reports: Vec<ReportLine>,
}

/// Who may read the district view (`GET /v1/district`, the stream's
/// `district_view`): aggregates across schools, no student identity.
pub fn may_see(role: crate::protocol::Role) -> bool {
    use crate::protocol::Role;
    matches!(role, Role::District | Role::Reviewer | Role::Admin)
}

/// Who may ask the stream for the period report's chart figures: the
/// people who write the term summary (工作总结) and the district.
pub fn may_see_charts(role: crate::protocol::Role) -> bool {
    use crate::protocol::Role;
    matches!(
        role,
        Role::District | Role::Reviewer | Role::Admin | Role::Leader | Role::Counselor
    )
}

const UNKNOWN_SCHOOL: &str = "(未填学校 unknown)";

pub async fn build(
    store: &Store,
    library: &Library,
    now: DateTime<Utc>,
) -> Result<DistrictView, StoreError> {
    let cases = store.open_cases_by_school().await?;
    let checklists = store.open_checklists().await?;
    let reports = store.incident_reports(false).await?;
    let checkins = store.overdue_checkins_by_case(now).await?;
    Ok(summarise(
        &cases,
        &checklists,
        &checkins,
        &reports,
        library,
        now,
    ))
}

/// The arithmetic, apart from the database.
pub fn summarise(
    cases: &[crate::store::OpenCaseRow],
    checklists: &[(String, String, crate::playbook::Progress)],
    overdue_checkins: &[(String, usize)],
    reports: &[IncidentReport],
    library: &Library,
    now: DateTime<Utc>,
) -> DistrictView {
    let mut by_school: BTreeMap<String, SchoolRow> = BTreeMap::new();
    let mut school_of: BTreeMap<&str, String> = BTreeMap::new();
    for c in cases {
        let school = c
            .school
            .as_deref()
            .map_or(UNKNOWN_SCHOOL.to_string(), inert);
        school_of.insert(&c.case_id, school.clone());
        let row = by_school
            .entry(school.clone())
            .or_insert_with(|| SchoolRow {
                school,
                ..SchoolRow::default()
            });
        row.open_high += usize::from(c.level == Level::High);
        row.open_imminent += usize::from(c.imminent);
    }
    for (case_id, playbook_id, progress) in checklists {
        let (Some(school), Some(playbook)) =
            (school_of.get(case_id.as_str()), library.get(playbook_id))
        else {
            continue;
        };
        if let Some(row) = by_school.get_mut(school) {
            row.overdue_steps += progress.overdue(playbook, now).len();
        }
    }
    for (case_id, n) in overdue_checkins {
        if let Some(row) = school_of
            .get(case_id.as_str())
            .and_then(|school| by_school.get_mut(school))
        {
            row.overdue_checkins += n;
        }
    }
    let mut lines = Vec::new();
    for r in reports {
        let school = r
            .form
            .school
            .as_deref()
            .map_or(UNKNOWN_SCHOOL.to_string(), inert);
        let row = by_school
            .entry(school.clone())
            .or_insert_with(|| SchoolRow {
                school: school.clone(),
                ..SchoolRow::default()
            });
        let awaiting = r.awaiting_review();
        row.reports_awaiting_review += awaiting;
        row.reports_overdue += r.overdue(&[], now).len();
        if r.stages.iter().all(|s| s.status == StageStatus::Accepted) {
            continue;
        }
        lines.push(ReportLine {
            report_id: r.id.clone(),
            school,
            rules: r.rules.clone(),
            stages: r
                .stages
                .iter()
                .map(|s| {
                    format!(
                        "{}={}{}",
                        s.stage.as_str(),
                        s.status.as_str(),
                        if s.late { "(late)" } else { "" }
                    )
                })
                .collect(),
            awaiting_review: awaiting > 0,
            next_due: r.next_due(&[]),
        });
    }
    let mut total = SchoolRow {
        school: "合计 total".into(),
        ..SchoolRow::default()
    };
    for row in by_school.values() {
        total.add(row);
    }
    DistrictView {
        as_of: now,
        schools: by_school.into_values().collect(),
        total,
        reports: lines,
    }
}

pub fn render_text(v: &DistrictView) -> String {
    let mut out = format!(
        "District view 区级总览  as of {}\n\n{}  {} {} {} {} {} {}\n",
        v.as_of.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        pad("学校 school", 28),
        // Headers right-aligned by display width over the numbers below
        // (`{:>6}` would count the two characters of 高危 as two cells).
        pad_left("高危", 6),
        pad_left("紧迫", 6),
        pad_left("逾期步骤", 8),
        pad_left("逾期回访", 8),
        pad_left("待审报告", 8),
        pad_left("逾期报告", 8)
    );
    for row in v.schools.iter().chain([&v.total]) {
        let _ = writeln!(
            out,
            "{}  {:>6} {:>6} {:>8} {:>8} {:>8} {:>8}",
            pad(&crate::text::fit(&row.school, 28), 28),
            row.open_high,
            row.open_imminent,
            row.overdue_steps,
            row.overdue_checkins,
            row.reports_awaiting_review,
            row.reports_overdue
        );
    }
    if !v.reports.is_empty() {
        out.push_str("\nOpen reports 未办结报告\n");
        for r in &v.reports {
            let _ = writeln!(
                out,
                "{}  {}  {}  {}{}",
                r.report_id,
                crate::text::fit(&r.school, 20),
                r.rules.join(","),
                r.stages.join(" "),
                if r.awaiting_review {
                    "  ← 待审 awaiting review"
                } else {
                    ""
                }
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::width;

    /// Every line of the table is as wide as the header, measured in
    /// display cells: the Chinese headers sit over their numbers.
    #[test]
    fn the_text_table_lines_up_by_display_width() {
        let row = |school: &str, n: usize| SchoolRow {
            school: school.into(),
            open_high: n,
            open_imminent: n,
            overdue_steps: n,
            overdue_checkins: n,
            reports_awaiting_review: n,
            reports_overdue: n,
        };
        let view = DistrictView {
            as_of: DateTime::from_timestamp(1_790_000_000, 0).unwrap(),
            schools: vec![row("第一中学", 3), row("Riverside High", 12)],
            total: row("合计 total", 15),
            reports: Vec::new(),
        };
        let text = render_text(&view);
        let table: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("学校"))
            .take(4)
            .collect();
        assert_eq!(table.len(), 4, "{text}");
        let header = width(table[0]);
        for line in &table {
            assert_eq!(width(line), header, "{line:?} in\n{text}");
        }
        // And the last column's number ends where its header does.
        assert!(table[0].ends_with("逾期报告"), "{text}");
        assert!(table[1].ends_with(" 3"), "{text}");
    }
}
