//! The review as one self-contained HTML page: inline CSS, an inline SVG
//! swimlane chart (a lane per role), no scripts, no external resources, so
//! it opens offline and carries nothing that could phone home.
//!
//! Every page is a maud template: text spliced in is escaped by maud, and
//! the only markup let through unescaped is this crate's own CSS.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, FixedOffset, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::markdown::{audit_summary, story_lists};
use super::svg;
use super::{CaseReview, Lane, Verdict, local, span};

pub const STYLE: &str = "body{font-family:system-ui,'Noto Sans CJK SC',sans-serif;margin:2em;max-width:70em;color:#111}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #999;padding:.25em .5em;text-align:left;vertical-align:top}\
.alarm{font-weight:bold;color:#a00}.drill{background:#fd0;padding:.2em .6em;font-weight:bold}\
.note{color:#555;font-style:italic}svg text{font-size:11px}";

/// Print rules shared by the review and the period report: A4 pages with
/// margins; tables wrap long text instead of running off the page; charts
/// and table rows are not split across pages.
pub const PRINT_STYLE: &str = "@page{size:A4;margin:15mm 12mm}\
svg{max-width:100%;height:auto}figure.chart{margin:1em 0;max-width:100%}figcaption{font-size:10px;color:#555}\
table{max-width:100%}td,th{overflow-wrap:anywhere}\
@media print{body{margin:0;max-width:none}h2{break-after:avoid}tr,figure,svg{break-inside:avoid}}";

/// A whole page: `lang="zh-CN"`, UTF-8, the title, the given style sheets
/// inline (this crate's own constants, the one thing not escaped) and the
/// body. Block elements end their line, so the source reads and diffs
/// line by line.
pub fn page(title: &str, css: &[&'static str], body: Markup) -> String {
    html! {
        (DOCTYPE) "\n"
        html lang="zh-CN" {
            "\n"
            head {
                "\n"
                meta charset="utf-8"; "\n"
                title { (title) } "\n"
                style { @for sheet in css { (PreEscaped(*sheet)) } } "\n"
            }
            "\n"
            body { "\n" (body) }
            "\n"
        }
        "\n"
    }
    .into_string()
}

pub fn render_html(r: &CaseReview, offset: FixedOffset) -> String {
    let t = |at| local(at, offset);
    let acknowledged = r
        .time_to_ack_secs
        .map(|s| format!("{} after opening", span(s)))
        .unwrap_or_else(|| "never".into());
    let closed = match (r.closed_at, r.outcome) {
        (Some(at), Some(o)) => format!("closed {} ({})", t(at), o.as_str()),
        _ => "still open".into(),
    };
    let steps = r
        .steps
        .iter()
        .filter(|s| s.verdict != Verdict::NotApplicable);
    let body = html! {
        h1 { "Case review 个案复盘 " (r.case_id) } "\n"
        @if r.drill {
            p class="drill" { "DRILL 演练 " (r.exercise_id.as_deref().unwrap_or_default()) } "\n"
        }
        p class="note" { "Confidential: minors' mental-health data (PIPL §28). Names are masked." } "\n"
        p { "Opened " (t(r.opened_at)) " · acknowledged " (acknowledged) " · " (closed) } "\n"
        (swimlanes(r, offset))
        (step_times_chart(r))
        h2 { "Steps against their deadlines 步骤与时限" } "\n"
        table {
            "\n"
            tr { th { "step" } th { "role" } th { "required" } th { "due" } th { "done" } th { "verdict" } th { "how" } } "\n"
            @for s in steps {
                @let due = match (s.due.map(t), &s.limit_zh, &s.due_basis_zh) {
                    (Some(due), Some(limit), Some(basis)) => format!("{due} ({limit} · {basis})"),
                    (Some(due), Some(why), None) | (Some(due), None, Some(why)) => format!("{due} ({why})"),
                    (due, _, _) => due.unwrap_or_default(),
                };
                @let alarm = matches!(s.verdict, Verdict::Late | Verdict::Missed);
                tr {
                    td { (s.title_zh) " / " (s.title_en) }
                    td { (s.role) }
                    td { @if s.required { "yes" } }
                    td { (due) }
                    td { (s.done_at.map(t).unwrap_or_default()) }
                    td class=[alarm.then_some("alarm")] { (s.verdict.label()) }
                    td { (s.how.as_deref().unwrap_or("")) }
                }
                "\n"
            }
        }
        "\n"
        // The rest of the story: the same lists the Markdown report has,
        // from the review's data.
        @for (title, items) in story_lists(r, offset) {
            h2 { (title) } "\n"
            ul {
                "\n"
                @for item in &items { li { (item) } "\n" }
                @if items.is_empty() { li { "none 无" } "\n" }
            }
            "\n"
        }
        h2 { "Audit 审计" } "\n"
        ul {
            "\n"
            li {
                @if r.audit.chain_intact { "✓ " } @else { "✗ " strong class="alarm" { "BROKEN" } " " }
                (audit_summary(r))
            }
            "\n"
        }
        "\n"
    };
    page(
        &format!("Case review {}", r.case_id),
        &[STYLE, PRINT_STYLE],
        body,
    )
}

/// One lane per role with a dot per timeline item, placed by time.
fn swimlanes(r: &CaseReview, offset: FixedOffset) -> Markup {
    let lanes: Vec<Lane> = Lane::ORDER
        .into_iter()
        .filter(|l| *l == Lane::Alerts || r.timeline.iter().any(|i| i.lane == *l))
        .collect();
    let start = r.opened_at;
    let end = r
        .timeline
        .iter()
        .map(|i| i.at)
        .chain([r.as_of])
        .max()
        .unwrap_or(start);
    let total = (end - start).num_seconds().max(60) as f64;
    let (left, width, lane_h) = (170.0, 760.0, 34.0);
    let height = lane_h * lanes.len() as f64 + 30.0;
    let w = left + width + 20.0;
    html! {
        h2 { "Timeline 时间线" } "\n"
        svg xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {w} {height}")) width=(w) height=(height) role="img" aria-label="swimlane timeline" {
            "\n"
            @for (row, lane) in lanes.iter().enumerate() {
                @let y = 10.0 + lane_h * row as f64;
                rect x="0" y=(y) width=(left + width) height=(lane_h) fill=(if row % 2 == 0 { "#f4f4f4" } else { "#ffffff" }) {}
                text x="6" y=(y + lane_h / 2.0 + 4.0) { (lane.label()) }
                "\n"
            }
            @for item in &r.timeline {
                @if let Some(row) = lanes.iter().position(|l| *l == item.lane) {
                    @let x = left + width * (item.at - start).num_seconds() as f64 / total;
                    @let y = 10.0 + lane_h * row as f64 + lane_h / 2.0;
                    @let tip = html! {
                        title {
                            (local(item.at, offset)) " "
                            @if let Some(who) = &item.who { (who) " — " }
                            (item.what)
                        }
                    };
                    @if item.alarm {
                        rect x=(x - 5.0) y=(y - 5.0) width="10" height="10" fill="#c00000" { (tip) }
                    } @else {
                        circle cx=(format!("{x:.1}")) cy=(format!("{y:.1}")) r="5" fill="#1f5fa8" { (tip) }
                    }
                    "\n"
                }
            }
            text x=(left) y=(height - 4.0) { (local(start, offset)) }
            text x=(left + width) y=(height - 4.0) text-anchor="end" { (local(end, offset)) }
            "\n"
        }
        "\n"
        // The same items as a table, for screen readers and printing.
        table {
            "\n"
            tr { th { "time" } th { "lane" } th { "who" } th { "what" } } "\n"
            @for item in &r.timeline {
                tr class=[item.alarm.then_some("alarm")] {
                    td { (local(item.at, offset)) }
                    td { (item.lane.label()) }
                    td { (item.who.as_deref().unwrap_or("")) }
                    td { (item.what) }
                }
                "\n"
            }
        }
        "\n"
    }
}

/// How long each done step with a limit took from the case's opening, in
/// minutes: the part within its limit and the part over it.
fn step_times_chart(r: &CaseReview) -> Markup {
    let rows: Vec<(String, Vec<usize>)> = r
        .steps
        .iter()
        .filter_map(|s| {
            let (due, done) = (s.due?, s.done_at?);
            let minutes =
                |d: chrono::TimeDelta| usize::try_from(d.num_minutes().max(0)).unwrap_or(0);
            let taken = minutes(done - r.opened_at);
            let limit = minutes(due - r.opened_at);
            Some((
                s.title_zh.clone(),
                vec![taken.min(limit), taken.saturating_sub(limit)],
            ))
        })
        .collect();
    if rows.is_empty() {
        return html! {};
    }
    svg::stacked_bars(
        "步骤用时（分钟，自开案起）Minutes to each step",
        &rows,
        &["时限内 within limit", "超时 over limit"],
        &["#1f5fa8", "#c00000"],
    )
}

/// What the period report's charts are drawn from, gathered from the
/// cases the report counts.
#[derive(Debug, Clone, Default)]
pub struct ChartData {
    /// Per school: cases at general, key, high.
    pub school_levels: BTreeMap<String, [usize; 3]>,
    pub opened: Vec<DateTime<Utc>>,
    pub time_to_ack_secs: Vec<i64>,
}

impl ChartData {
    pub fn from_stories(stories: &[CaseReview]) -> ChartData {
        let mut c = ChartData::default();
        for s in stories {
            let school = s
                .student
                .school
                .as_deref()
                .map_or_else(|| "(unknown)".to_string(), crate::text::inert);
            let slot = match s.level {
                crate::protocol::Level::General => 0,
                crate::protocol::Level::Key => 1,
                crate::protocol::Level::High => 2,
            };
            c.school_levels.entry(school).or_default()[slot] += 1;
            c.opened.push(s.opened_at);
            c.time_to_ack_secs.extend(s.time_to_ack_secs);
        }
        c
    }

    /// Cases per calendar month at `offset`, every month from the first
    /// to the last shown (empty months as zero).
    pub fn monthly(&self, offset: FixedOffset) -> Vec<(String, usize)> {
        let months: Vec<(i32, u32)> = self
            .opened
            .iter()
            .map(|t| {
                let l = t.with_timezone(&offset);
                (l.year(), l.month())
            })
            .collect();
        let (Some(first), Some(last)) = (months.iter().min(), months.iter().max()) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let (mut y, mut m) = *first;
        while (y, m) <= *last {
            let n = months.iter().filter(|k| **k == (y, m)).count();
            out.push((format!("{y}-{m:02}"), n));
            (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
        }
        out
    }
}

/// The period report's charts: level distribution per school, the monthly
/// trend and the time-to-acknowledge histogram.
pub fn period_charts(c: &ChartData, offset: FixedOffset) -> Markup {
    if c.opened.is_empty() {
        return html! {};
    }
    let rows: Vec<(String, Vec<usize>)> = c
        .school_levels
        .iter()
        .map(|(k, v)| (k.clone(), v.to_vec()))
        .collect();
    html! {
        h2 { "Charts 图表" } "\n"
        (svg::stacked_bars(
            "各校个案级别分布 Cases by level per school",
            &rows,
            &["一般 general", "重点 key", "高危 high"],
            &svg::LEVEL_COLOURS,
        ))
        (svg::columns("月度趋势 Cases opened per month", &c.monthly(offset), "#1f5fa8"))
        @if !c.time_to_ack_secs.is_empty() {
            (svg::columns(
                "确认用时分布 Time to acknowledge",
                &svg::ack_histogram(&c.time_to_ack_secs),
                "#6a51a3",
            ))
        }
    }
}

#[cfg(test)]
mod chart_tests {
    use super::*;

    #[test]
    fn months_are_continuous_at_the_readers_offset() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let c = ChartData {
            // 2026-01-31 20:00 UTC is already February in Beijing.
            opened: vec![t("2026-01-31T20:00:00Z"), t("2026-04-02T00:00:00Z")],
            ..ChartData::default()
        };
        let beijing = FixedOffset::east_opt(8 * 3600).unwrap();
        let m = c.monthly(beijing);
        assert_eq!(
            m,
            [
                ("2026-02".to_string(), 1),
                ("2026-03".to_string(), 0),
                ("2026-04".to_string(), 1)
            ]
        );
        assert_eq!(c.monthly(FixedOffset::east_opt(0).unwrap())[0].0, "2026-01");
    }
}
