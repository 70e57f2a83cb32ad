//! The statistics export a bureau asks for (统计报表): per school and in
//! total, screening (心理问题发现率), cases and their outcomes, steps and
//! follow-ups on time, referrals, incidents per 10,000 students (危机事件
//! 发生率) and drills held. The case figures are the period report's
//! ([`crate::review::report::summarise`]) over each school's cases, so the
//! two never disagree. Drills never count as incidents.

pub mod cli;
pub mod template;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::playbook::Library;
use crate::review::report::{PeriodReport, summarise};
use crate::review::{CaseReview, ReviewError, build_story};
use crate::store::{ScreeningTally, Store};
use crate::text::inert;

pub use template::{Column, Template};

const UNKNOWN_SCHOOL: &str = "(未填学校)";
pub const TOTAL_ROW: &str = "合计";

/// One school's figures (or the total's).
#[derive(Debug, Clone, Serialize)]
pub struct SchoolStats {
    pub school: String,
    pub screened: i64,
    pub valid: i64,
    pub flagged_general: i64,
    pub flagged_key: i64,
    pub flagged_high: i64,
    /// Cases of the period at this school, as the period report counts them.
    pub cases: PeriodReport,
    pub incidents: usize,
    pub drills: usize,
}

impl SchoolStats {
    /// Flagged (any level) per valid result, in percent.
    pub fn detection_rate(&self) -> Option<f64> {
        (self.valid > 0).then(|| {
            (self.flagged_general + self.flagged_key + self.flagged_high) as f64 * 100.0
                / self.valid as f64
        })
    }

    /// Incidents per 10,000 students screened. The denominator is the
    /// students screened in the period: the one head count the relay has.
    pub fn incident_rate(&self) -> Option<f64> {
        (self.screened > 0).then(|| self.incidents as f64 * 10_000.0 / self.screened as f64)
    }

    fn closed(&self, outcome: &str) -> usize {
        self.cases.by_outcome.get(outcome).copied().unwrap_or(0)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DrillRow {
    pub exercise_id: String,
    pub held_at: DateTime<Utc>,
    pub scenarios: Vec<String>,
    pub schools: Vec<String>,
    pub score: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub schools: Vec<SchoolStats>,
    pub total: SchoolStats,
    pub drills: Vec<DrillRow>,
}

/// A cell as the writers need it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Int(i64),
    /// A rate, rounded to two places when written; empty when undefined.
    Rate(Option<f64>),
}

impl Cell {
    pub fn to_text(&self) -> String {
        match self {
            Cell::Text(t) => t.clone(),
            Cell::Int(n) => n.to_string(),
            Cell::Rate(Some(r)) => format!("{r:.2}"),
            Cell::Rate(None) => String::new(),
        }
    }
}

fn int(n: usize) -> Cell {
    Cell::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

impl SchoolStats {
    /// The value of a template column.
    pub fn cell(&self, key: Column) -> Cell {
        let c = &self.cases;
        match key {
            Column::School => Cell::Text(self.school.clone()),
            Column::Screened => Cell::Int(self.screened),
            Column::Valid => Cell::Int(self.valid),
            Column::FlaggedGeneral => Cell::Int(self.flagged_general),
            Column::FlaggedKey => Cell::Int(self.flagged_key),
            Column::FlaggedHigh => Cell::Int(self.flagged_high),
            Column::DetectionRate => Cell::Rate(self.detection_rate()),
            Column::CasesOpened => int(c.cases),
            Column::CasesClosed => int(c.cases.saturating_sub(self.closed("open"))),
            Column::ClosedStabilized => int(self.closed("stabilized")),
            Column::ClosedReferredOut => int(self.closed("referred_out")),
            Column::ClosedTransferred => int(self.closed("transferred")),
            Column::ClosedNoRisk => int(self.closed("no_risk")),
            Column::ClosedError => int(self.closed("error")),
            Column::StepsWithDeadline => int(c.steps_with_deadline),
            Column::StepsOnTime => int(c.steps_on_time),
            Column::StepsOnTimeRate => Cell::Rate(c.on_time_share.map(|s| s * 100.0)),
            Column::FollowUpsDone => int(c.follow_ups_done),
            Column::FollowUpsOverdue => int(c.follow_ups_overdue),
            Column::FollowUpsOpen => int(c.follow_ups_open),
            Column::FollowUpOnTimeRate => Cell::Rate(c.followup_on_time_rate.map(|r| r * 100.0)),
            Column::InterventionEffectiveRate => {
                Cell::Rate(c.intervention_effective_rate.map(|r| r * 100.0))
            }
            Column::Referrals => int(c.referrals),
            Column::Incidents => int(self.incidents),
            Column::IncidentRate => Cell::Rate(self.incident_rate()),
            Column::Drills => int(self.drills),
        }
    }
}

#[derive(Default)]
struct Gather {
    screening: ScreeningTally,
    stories: Vec<CaseReview>,
    /// Each case's check-ins and level history, for the follow-up rates.
    facts: Vec<crate::followup::effect::CaseFacts>,
    incidents: usize,
    drills: usize,
}

pub async fn build(
    store: &Store,
    library: &Library,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Stats, ReviewError> {
    let as_of = to.min(Utc::now());
    let mut schools: BTreeMap<String, Gather> = BTreeMap::new();
    for (school, tally) in store.screening_by_school(from, to).await? {
        schools.entry(inert(&school)).or_default().screening = tally;
    }
    // Real cases only: drills are scored on their own sheet.
    for id in store.case_ids_opened(from, to, false).await? {
        let story = build_story(store, library, &id, Some(as_of)).await?;
        let facts = crate::review::report::followup_facts(store, &id).await?;
        let school = story
            .student
            .school
            .as_deref()
            .map_or(UNKNOWN_SCHOOL.to_string(), inert);
        let g = schools.entry(school).or_default();
        g.stories.push(story);
        g.facts.push(facts);
    }
    for report in store.incident_reports(false).await? {
        if report.drill || report.opened_at < from || report.opened_at >= to {
            continue;
        }
        let school = report
            .form
            .school
            .as_deref()
            .map_or(UNKNOWN_SCHOOL.to_string(), inert);
        schools.entry(school).or_default().incidents += 1;
    }
    let mut drills = Vec::new();
    for (exercise, held_at) in store.exercises_between(from, to).await? {
        let score = crate::review::drill::score(store, library, &exercise, Some(as_of)).await?;
        let mut scenarios: Vec<String> = score
            .scenario_expectations
            .iter()
            .map(|e| inert(&e.scenario))
            .collect();
        scenarios.sort();
        scenarios.dedup();
        let mut drill_schools = Vec::new();
        for case in &score.cases {
            let story = build_story(store, library, &case.case_id, Some(as_of)).await?;
            let school = story
                .student
                .school
                .as_deref()
                .map_or(UNKNOWN_SCHOOL.to_string(), inert);
            if !drill_schools.contains(&school) {
                drill_schools.push(school);
            }
        }
        for school in &drill_schools {
            schools.entry(school.clone()).or_default().drills += 1;
        }
        drills.push(DrillRow {
            exercise_id: inert(&exercise),
            held_at,
            scenarios,
            schools: drill_schools,
            score: score.score,
        });
    }
    let mut all_stories = Vec::new();
    let mut all_facts = Vec::new();
    let mut rows = Vec::new();
    let mut total = Gather::default();
    for (school, g) in schools {
        total.screening.screened += g.screening.screened;
        total.screening.valid += g.screening.valid;
        total.screening.general += g.screening.general;
        total.screening.key += g.screening.key;
        total.screening.high += g.screening.high;
        total.incidents += g.incidents;
        rows.push(school_stats(school, &g, from, to, as_of));
        all_stories.extend(g.stories);
        all_facts.extend(g.facts);
    }
    total.stories = all_stories;
    total.facts = all_facts;
    // A drill across two schools is one drill held in the district.
    total.drills = drills.len();
    Ok(Stats {
        from,
        to,
        schools: rows,
        total: school_stats(TOTAL_ROW.to_string(), &total, from, to, as_of),
        drills,
    })
}

fn school_stats(
    school: String,
    g: &Gather,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    as_of: DateTime<Utc>,
) -> SchoolStats {
    // The same figures as the period report, check-ins and 干预有效率 included.
    let mut cases = summarise(&g.stories, from, to, false);
    crate::review::report::add_followup(&mut cases, &g.facts, as_of);
    SchoolStats {
        school,
        screened: g.screening.screened,
        valid: g.screening.valid,
        flagged_general: g.screening.general,
        flagged_key: g.screening.key,
        flagged_high: g.screening.high,
        cases,
        incidents: g.incidents,
        drills: g.drills,
    }
}

/// The drill sheet's headers.
pub const DRILL_HEADERS: [&str; 5] = ["演练日期", "演练编号", "演练场景", "参演学校", "得分"];

impl Stats {
    /// Rows of the main table: one per school, then the total.
    pub fn table(&self, template: &Template) -> Vec<Vec<Cell>> {
        self.schools
            .iter()
            .chain([&self.total])
            .map(|s| template.columns.iter().map(|c| s.cell(c.key)).collect())
            .collect()
    }

    pub fn drill_rows(&self, offset: chrono::FixedOffset) -> Vec<Vec<Cell>> {
        self.drills
            .iter()
            .map(|d| {
                vec![
                    Cell::Text(
                        d.held_at
                            .with_timezone(&offset)
                            .format("%Y-%m-%d")
                            .to_string(),
                    ),
                    Cell::Text(d.exercise_id.clone()),
                    Cell::Text(d.scenarios.join("、")),
                    Cell::Text(d.schools.join("、")),
                    Cell::Int(i64::from(d.score)),
                ]
            })
            .collect()
    }
}

/// CSV in UTF-8 with a byte-order mark (so Excel reads the Chinese
/// headers), the school table first, then a blank row and the drills.
pub fn to_csv(
    stats: &Stats,
    template: &Template,
    offset: chrono::FixedOffset,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::from("\u{feff}".as_bytes());
    {
        let mut w = csv::WriterBuilder::new()
            .flexible(true)
            .from_writer(&mut out);
        let err = |e: csv::Error| e.to_string();
        w.write_record(template.columns.iter().map(|c| c.header.as_str()))
            .map_err(err)?;
        for row in stats.table(template) {
            w.write_record(row.iter().map(Cell::to_text)).map_err(err)?;
        }
        w.write_record([""]).map_err(err)?;
        w.write_record(DRILL_HEADERS).map_err(err)?;
        for row in stats.drill_rows(offset) {
            w.write_record(row.iter().map(Cell::to_text)).map_err(err)?;
        }
        w.flush().map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// XLSX: the school table on the template's sheet, drills on 应急演练.
pub fn to_xlsx(
    stats: &Stats,
    template: &Template,
    offset: chrono::FixedOffset,
) -> Result<Vec<u8>, String> {
    use rust_xlsxwriter::{Format, Workbook};
    let err = |e: rust_xlsxwriter::XlsxError| e.to_string();
    let mut book = Workbook::new();
    let bold = Format::new().set_bold();
    let write_sheet = |book: &mut Workbook,
                       name: &str,
                       headers: Vec<&str>,
                       rows: Vec<Vec<Cell>>|
     -> Result<(), String> {
        let sheet = book.add_worksheet();
        sheet.set_name(name).map_err(err)?;
        for (c, h) in headers.iter().enumerate() {
            let col = u16::try_from(c).map_err(|_| "too many columns".to_string())?;
            sheet
                .write_string_with_format(0, col, *h, &bold)
                .map_err(err)?;
            sheet
                .set_column_width(col, (crate::text::width(h) as f64 + 2.0).max(8.0))
                .map_err(err)?;
        }
        for (r, row) in rows.iter().enumerate() {
            let r = u32::try_from(r + 1).map_err(|_| "too many rows".to_string())?;
            for (c, cell) in row.iter().enumerate() {
                let col = u16::try_from(c).map_err(|_| "too many columns".to_string())?;
                match cell {
                    Cell::Text(t) => sheet.write_string(r, col, t).map(|_| ()),
                    Cell::Int(n) => sheet.write_number(r, col, *n as f64).map(|_| ()),
                    Cell::Rate(Some(x)) => sheet
                        .write_number(r, col, (x * 100.0).round() / 100.0)
                        .map(|_| ()),
                    Cell::Rate(None) => Ok(()),
                }
                .map_err(err)?;
            }
        }
        Ok(())
    };
    write_sheet(
        &mut book,
        &template.sheet,
        template.columns.iter().map(|c| c.header.as_str()).collect(),
        stats.table(template),
    )?;
    write_sheet(
        &mut book,
        "应急演练",
        DRILL_HEADERS.to_vec(),
        stats.drill_rows(offset),
    )?;
    book.save_to_buffer().map_err(err)
}
