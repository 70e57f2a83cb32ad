//! The period summary a school's 工作总结 needs: cases by level, category,
//! school and outcome; time to acknowledgement; steps on time; follow-ups;
//! referrals; escalations. Drills are left out unless asked for.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, FixedOffset, Utc};
use serde::Serialize;

use super::{CaseReview, Format, ReviewError, Verdict, build_story, local, span};
use crate::followup::effect::{CaseFacts, Effect, checkin_counts, effect};
use crate::playbook::Library;
use crate::store::Store;

/// A step due more than this long after the case opened belongs to the
/// follow-up (跟踪) part of the loop rather than the acute response.
const FOLLOW_UP_AFTER: chrono::TimeDelta = chrono::TimeDelta::hours(24);

#[derive(Debug, Clone, Serialize)]
pub struct PeriodReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub drills_included: bool,
    pub cases: usize,
    pub by_level: BTreeMap<String, usize>,
    pub by_category: BTreeMap<String, usize>,
    pub by_school: BTreeMap<String, usize>,
    pub by_outcome: BTreeMap<String, usize>,
    pub acknowledged: usize,
    pub time_to_ack_p50_secs: Option<i64>,
    pub time_to_ack_p90_secs: Option<i64>,
    pub steps_with_deadline: usize,
    pub steps_on_time: usize,
    pub on_time_share: Option<f64>,
    /// Follow-ups (跟踪): scheduled check-ins plus checklist steps due
    /// more than a day after opening; done / overdue / still open as of
    /// the report.
    pub follow_ups_done: usize,
    pub follow_ups_overdue: usize,
    pub follow_ups_open: usize,
    pub referrals: usize,
    pub escalations: usize,
    /// What the HTML charts are drawn from (not part of the JSON).
    #[serde(skip)]
    pub charts: super::html::ChartData,
    /// Scheduled check-ins due by the report's moment, and of those the
    /// ones recorded by their due time: the follow-up on-time rate
    /// (跟踪回访按时率, docs/followup.md).
    pub checkins_due: usize,
    pub checkins_on_time: usize,
    pub followup_on_time_rate: Option<f64>,
    /// 干预有效率 (docs/followup.md): cases at key or above whose level went
    /// down and stayed down for 8 weeks, of those that can be judged;
    /// `pending` are too recent to judge and left out of the rate.
    pub effectiveness_judged: usize,
    pub effectiveness_effective: usize,
    pub effectiveness_pending: usize,
    pub intervention_effective_rate: Option<f64>,
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

pub async fn build(
    store: &Store,
    library: &Library,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    include_drills: bool,
    as_of: Option<DateTime<Utc>>,
) -> Result<PeriodReport, ReviewError> {
    let ids = store.case_ids_opened(from, to, include_drills).await?;
    // Deadlines are judged as of the end of the period (or now, if that is
    // still to come), unless the reader asks for another moment.
    let as_of = as_of.unwrap_or_else(|| to.min(Utc::now()));
    let mut stories = Vec::with_capacity(ids.len());
    let mut facts = Vec::with_capacity(ids.len());
    for id in &ids {
        stories.push(build_story(store, library, id, Some(as_of)).await?);
        facts.push(followup_facts(store, id).await?);
    }
    let mut report = summarise(&stories, from, to, include_drills);
    add_followup(&mut report, &facts, as_of);
    Ok(report)
}

/// What the follow-up figures need of one case: its ups and downs, its
/// check-ins and the student's next case.
pub(crate) async fn followup_facts(store: &Store, case_id: &str) -> Result<CaseFacts, ReviewError> {
    let events = store.events_for_case(case_id).await?;
    let mut facts = CaseFacts::from_events(&events);
    facts.checkins = store.checkins(case_id).await?;
    if let Some(case) = store.case(case_id).await? {
        facts.next_case_at = store
            .next_case_opened(&case.student_id, case.opened_at)
            .await?;
    }
    Ok(facts)
}

/// Adds scheduled check-ins to the follow-up counts and the two rates.
pub fn add_followup(r: &mut PeriodReport, facts: &[CaseFacts], as_of: DateTime<Utc>) {
    for f in facts {
        let c = checkin_counts(&f.checkins, as_of);
        r.follow_ups_done += c.done;
        r.follow_ups_overdue += c.overdue;
        r.follow_ups_open += c.open;
        r.checkins_due += c.due;
        r.checkins_on_time += c.on_time;
        match effect(f, as_of) {
            Effect::Effective => {
                r.effectiveness_judged += 1;
                r.effectiveness_effective += 1;
            }
            Effect::NotEffective => r.effectiveness_judged += 1,
            Effect::Pending => r.effectiveness_pending += 1,
            Effect::NotCounted => {}
        }
    }
    r.followup_on_time_rate =
        (r.checkins_due > 0).then(|| r.checkins_on_time as f64 / r.checkins_due as f64);
    r.intervention_effective_rate = (r.effectiveness_judged > 0)
        .then(|| r.effectiveness_effective as f64 / r.effectiveness_judged as f64);
}

/// The arithmetic of the report, separate from the database.
pub fn summarise(
    stories: &[CaseReview],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    include_drills: bool,
) -> PeriodReport {
    let mut r = PeriodReport {
        from,
        to,
        drills_included: include_drills,
        cases: stories.len(),
        by_level: BTreeMap::new(),
        by_category: BTreeMap::new(),
        by_school: BTreeMap::new(),
        by_outcome: BTreeMap::new(),
        acknowledged: 0,
        time_to_ack_p50_secs: None,
        time_to_ack_p90_secs: None,
        steps_with_deadline: 0,
        steps_on_time: 0,
        on_time_share: None,
        follow_ups_done: 0,
        follow_ups_overdue: 0,
        follow_ups_open: 0,
        referrals: 0,
        escalations: 0,
        charts: super::html::ChartData::from_stories(stories),
        checkins_due: 0,
        checkins_on_time: 0,
        followup_on_time_rate: None,
        effectiveness_judged: 0,
        effectiveness_effective: 0,
        effectiveness_pending: 0,
        intervention_effective_rate: None,
    };
    let mut tta = Vec::new();
    for s in stories {
        *r.by_level.entry(s.level.as_str().into()).or_default() += 1;
        *r.by_category.entry(s.category.as_str().into()).or_default() += 1;
        let school = s
            .student
            .school
            .clone()
            .unwrap_or_else(|| "(unknown)".into());
        *r.by_school.entry(school).or_default() += 1;
        let outcome = s.outcome.map_or("open", |o| o.as_str());
        *r.by_outcome.entry(outcome.into()).or_default() += 1;
        if let Some(secs) = s.time_to_ack_secs {
            r.acknowledged += 1;
            tta.push(secs);
        }
        for step in &s.steps {
            if step.due.is_some()
                && matches!(
                    step.verdict,
                    Verdict::OnTime | Verdict::Late | Verdict::Missed
                )
            {
                r.steps_with_deadline += 1;
                r.steps_on_time += usize::from(step.verdict == Verdict::OnTime);
            }
            // A limit in school days is follow-up beyond one school day,
            // however long a weekend or holiday makes it in hours.
            let follow_up = match step.school_days {
                Some(days) => days > 1 && step.due.is_some(),
                None => step.due.is_some_and(|d| d - s.opened_at > FOLLOW_UP_AFTER),
            };
            if follow_up {
                match step.verdict {
                    Verdict::OnTime | Verdict::Late => r.follow_ups_done += 1,
                    Verdict::Missed => r.follow_ups_overdue += 1,
                    Verdict::Open => r.follow_ups_open += 1,
                    _ => {}
                }
            }
        }
        r.referrals += s.referrals.len();
        r.escalations += s.escalations.len();
    }
    tta.sort_unstable();
    r.time_to_ack_p50_secs = percentile(&tta, 50.0);
    r.time_to_ack_p90_secs = percentile(&tta, 90.0);
    r.on_time_share =
        (r.steps_with_deadline > 0).then(|| r.steps_on_time as f64 / r.steps_with_deadline as f64);
    r
}

pub fn render(r: &PeriodReport, format: Format, offset: FixedOffset) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(r).unwrap_or_default(),
        Format::Md => markdown(r, offset),
        Format::Html => html(r, offset),
    }
}

fn rows(r: &PeriodReport) -> Vec<(&'static str, String)> {
    let opt_span = |s: Option<i64>| s.map(span).unwrap_or_else(|| "—".into());
    vec![
        ("Cases opened 开案数", r.cases.to_string()),
        ("Acknowledged 已确认", r.acknowledged.to_string()),
        (
            "Time to acknowledge p50 确认用时中位数",
            opt_span(r.time_to_ack_p50_secs),
        ),
        ("Time to acknowledge p90", opt_span(r.time_to_ack_p90_secs)),
        (
            "Steps done on time 按时完成步骤",
            match r.on_time_share {
                Some(share) => format!(
                    "{} of {} ({:.0}%)",
                    r.steps_on_time,
                    r.steps_with_deadline,
                    share * 100.0
                ),
                None => "—".into(),
            },
        ),
        (
            "Follow-ups 跟踪 (done / overdue / open)",
            format!(
                "{} / {} / {}",
                r.follow_ups_done, r.follow_ups_overdue, r.follow_ups_open
            ),
        ),
        (
            "Follow-up check-ins on time 回访按时率",
            match r.followup_on_time_rate {
                Some(rate) => format!(
                    "{} of {} ({:.0}%)",
                    r.checkins_on_time,
                    r.checkins_due,
                    rate * 100.0
                ),
                None => "—".into(),
            },
        ),
        (
            "Intervention effective 干预有效率 (down 8 weeks)",
            match r.intervention_effective_rate {
                Some(rate) => format!(
                    "{} of {} ({:.0}%), {} too recent",
                    r.effectiveness_effective,
                    r.effectiveness_judged,
                    rate * 100.0,
                    r.effectiveness_pending
                ),
                None => format!("—, {} too recent", r.effectiveness_pending),
            },
        ),
        ("Referrals 转介", r.referrals.to_string()),
        ("Escalations 升级", r.escalations.to_string()),
    ]
}

fn groups(r: &PeriodReport) -> [(&'static str, &BTreeMap<String, usize>); 4] {
    [
        ("By level 按级别", &r.by_level),
        ("By category 按类别", &r.by_category),
        ("By school 按学校", &r.by_school),
        ("By outcome 按结果", &r.by_outcome),
    ]
}

fn title(r: &PeriodReport, offset: FixedOffset) -> String {
    format!(
        "Period report 工作总结 {} — {}{}",
        local(r.from, offset),
        local(r.to, offset),
        if r.drills_included {
            " (drills included 含演练)"
        } else {
            ""
        }
    )
}

fn markdown(r: &PeriodReport, offset: FixedOffset) -> String {
    let mut out = format!("# {}\n\n| | |\n|---|---|\n", title(r, offset));
    for (k, v) in rows(r) {
        let _ = writeln!(out, "| {k} | {v} |");
    }
    for (name, map) in groups(r) {
        let _ = writeln!(out, "\n## {name}\n\n| | cases |\n|---|---|");
        for (k, v) in map {
            let _ = writeln!(out, "| {} | {v} |", k.replace('|', "\\|"));
        }
    }
    out
}

/// The period report's own style sheet (plainer than the review's).
const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #999;padding:.25em .5em}";

fn html(r: &PeriodReport, offset: FixedOffset) -> String {
    let title = title(r, offset);
    let body = maud::html! {
        h1 { (title) } "\n"
        table {
            "\n"
            @for (k, v) in rows(r) { tr { th { (k) } td { (v) } } "\n" }
        }
        "\n"
        (super::html::period_charts(&r.charts, offset))
        @for (name, map) in groups(r) {
            h2 { (name) } "\n"
            table {
                "\n"
                @for (k, v) in map { tr { td { (k) } td { (v) } } "\n" }
            }
            "\n"
        }
    };
    super::html::page(&title, &[STYLE, super::html::PRINT_STYLE], body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100];
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 90.0), Some(90));
        assert_eq!(percentile(&[7], 90.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn html_escapes_school_names_in_tables_and_charts() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let mut r = summarise(
            &[],
            t("2026-09-01T00:00:00Z"),
            t("2026-12-01T00:00:00Z"),
            false,
        );
        let school = "<script>alert(1)</script>一中 & \"二中\"";
        r.cases = 1;
        r.by_school.insert(school.into(), 1);
        r.charts.school_levels.insert(school.into(), [1, 0, 0]);
        r.charts.opened.push(t("2026-10-08T01:00:00Z"));
        let html = render(&r, Format::Html, FixedOffset::east_opt(8 * 3600).unwrap());
        assert!(!html.contains("<script"), "{html}");
        let escaped = "&lt;script&gt;alert(1)&lt;/script&gt;一中 &amp; &quot;二中&quot;";
        // The by-school table, and in the chart the mark's tooltip (the
        // row label is cut to fit).
        assert_eq!(html.matches(escaped).count(), 2, "{html}");
        assert!(html.contains("<h2>Charts 图表</h2>") && html.contains("<svg"));
    }
}
