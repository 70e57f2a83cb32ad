//! Scoring a drill (`review --drill EXERCISE_ID`): every required step with
//! a deadline on the drill's cases is an expectation; the score is the
//! share met on time.

use std::fmt::Write;

use chrono::{DateTime, FixedOffset, Utc};
use serde::Serialize;

use super::{Format, ReviewError, Verdict, build_story, local, span};
use std::collections::HashMap;

use crate::drill::scenario::{DrillMark, Received};
use crate::playbook::Library;
use crate::protocol::Role;
use crate::protocol::{Alert, EventBody};
use crate::store::Store;

#[derive(Debug, Clone, Serialize)]
pub struct DrillScore {
    pub exercise_id: String,
    pub cases: Vec<DrillCase>,
    /// What the scenario file itself expected (`[[expect]]`), with
    /// deadlines counted from when each inject reached the relay.
    pub scenario_expectations: Vec<ScenarioExpectation>,
    pub expected: usize,
    pub on_time: usize,
    pub late: usize,
    pub missed: usize,
    pub open: usize,
    /// On-time share of expected steps, 0–100.
    pub score: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioExpectation {
    pub scenario: String,
    pub inject: String,
    pub step: String,
    pub case_id: Option<String>,
    pub due: Option<DateTime<Utc>>,
    pub done_at: Option<DateTime<Utc>>,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Serialize)]
pub struct DrillCase {
    pub case_id: String,
    pub student_id: String,
    pub time_to_ack_secs: Option<i64>,
    pub expectations: Vec<Expectation>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Expectation {
    pub step: String,
    pub title: String,
    pub role: Role,
    pub due: DateTime<Utc>,
    pub done_at: Option<DateTime<Utc>>,
    pub verdict: Verdict,
}

pub async fn score(
    store: &Store,
    library: &Library,
    exercise_id: &str,
    as_of: Option<DateTime<Utc>>,
) -> Result<DrillScore, ReviewError> {
    let ids = store.case_ids_of_exercise(exercise_id).await?;
    if ids.is_empty() {
        return Err(ReviewError::UnknownCase(format!(
            "(no cases for drill {exercise_id})"
        )));
    }
    let mut out = DrillScore {
        exercise_id: exercise_id.to_string(),
        cases: Vec::new(),
        scenario_expectations: Vec::new(),
        expected: 0,
        on_time: 0,
        late: 0,
        missed: 0,
        open: 0,
        score: 0,
    };
    let mut received: Vec<(Alert, String, DateTime<Utc>)> = Vec::new();
    let mut done: StepTimes = HashMap::new();
    let mut closing = as_of.unwrap_or_else(Utc::now);
    for id in ids {
        for event in store.events_for_case(&id).await? {
            if let EventBody::Alert { alert, .. } = event.body {
                received.push((*alert, id.clone(), event.at));
            }
        }
        let story = build_story(store, library, &id, as_of).await?;
        closing = story.as_of;
        for s in &story.steps {
            done.insert(
                (id.clone(), format!("{}/{}", s.playbook, s.step)),
                (s.done_at, s.verdict),
            );
        }
        let expectations: Vec<Expectation> = story
            .steps
            .iter()
            .filter(|s| s.required && s.verdict != Verdict::NotApplicable)
            .filter_map(|s| {
                Some(Expectation {
                    step: format!("{}/{}", s.playbook, s.step),
                    title: s.title_zh.clone(),
                    role: s.role,
                    due: s.due?,
                    done_at: s.done_at,
                    verdict: s.verdict,
                })
            })
            .collect();
        for e in &expectations {
            out.expected += 1;
            match e.verdict {
                Verdict::OnTime | Verdict::Skipped => out.on_time += 1,
                Verdict::Late => out.late += 1,
                Verdict::Missed => out.missed += 1,
                _ => out.open += 1,
            }
        }
        out.cases.push(DrillCase {
            case_id: story.case_id,
            student_id: story.student.id,
            time_to_ack_secs: story.time_to_ack_secs,
            expectations,
        });
    }
    score_scenarios(&mut out, library, &received, &done, closing);
    out.score = (100 * out.on_time).checked_div(out.expected).unwrap_or(0) as u32;
    Ok(out)
}

/// When each (case, `playbook/step`) was done, and how it went.
type StepTimes = HashMap<(String, String), (Option<DateTime<Utc>>, Verdict)>;

/// Adds each scenario's own `[[expect]]` entries, found through the drill
/// mark on the alerts `drill run` posted, to the score.
fn score_scenarios(
    out: &mut DrillScore,
    library: &Library,
    received: &[(Alert, String, DateTime<Utc>)],
    done: &StepTimes,
    as_of: DateTime<Utc>,
) {
    let mut scenarios: Vec<String> = received
        .iter()
        .filter_map(|(a, ..)| DrillMark::of(a).map(|m| m.scenario))
        .collect();
    scenarios.sort();
    scenarios.dedup();
    let arrivals: Vec<Received> = received
        .iter()
        .map(|(alert, case_id, received_at)| Received {
            alert,
            case_id,
            received_at: *received_at,
        })
        .collect();
    for id in scenarios {
        let Ok(scenario) = crate::drill::find(&id, None, library) else {
            // A scenario this binary does not ship: its expectations are
            // unknown here; the playbook deadlines above still count.
            continue;
        };
        for target in scenario.targets(&arrivals) {
            let step = format!("{}/{}", target.expect.playbook, target.expect.step);
            let done_at = target
                .case_id
                .as_ref()
                .and_then(|c| done.get(&(c.clone(), step.clone())))
                .and_then(|(at, _)| *at);
            let skipped = target
                .case_id
                .as_ref()
                .and_then(|c| done.get(&(c.clone(), step.clone())))
                .is_some_and(|(_, v)| *v == Verdict::Skipped);
            let verdict = match (done_at, target.due) {
                // A skip (always with a reason) is a decision, not a miss:
                // counted as met, listed as skipped for the debrief.
                _ if skipped => Verdict::Skipped,
                (Some(at), Some(due)) if at <= due => Verdict::OnTime,
                (Some(_), Some(_)) => Verdict::Late,
                (None, Some(due)) if due < as_of => Verdict::Missed,
                (None, None) => Verdict::Missed,
                _ => Verdict::Open,
            };
            out.expected += 1;
            match verdict {
                Verdict::OnTime | Verdict::Skipped => out.on_time += 1,
                Verdict::Late => out.late += 1,
                Verdict::Missed => out.missed += 1,
                _ => out.open += 1,
            }
            out.scenario_expectations.push(ScenarioExpectation {
                scenario: scenario.id.clone(),
                inject: target.expect.inject.clone(),
                step,
                case_id: target.case_id,
                due: target.due,
                done_at,
                verdict,
            });
        }
    }
}

pub fn render(s: &DrillScore, format: Format, offset: FixedOffset) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(s).unwrap_or_default(),
        Format::Md => markdown(s, offset),
        Format::Html => html(s, offset),
    }
}

/// The score as a page: the Markdown's sections, with real tables.
fn html(s: &DrillScore, offset: FixedOffset) -> String {
    let t = |at| local(at, offset);
    let alarm = |v: Verdict| matches!(v, Verdict::Late | Verdict::Missed).then_some("alarm");
    let body = maud::html! {
        h1 { "Drill score 演练评分 " code { (s.exercise_id) } ": " (s.score) "/100" } "\n"
        p {
            (s.expected) " expected steps: " (s.on_time) " on time, " (s.late) " late, "
            (s.missed) " missed, " (s.open) " still open."
        }
        "\n"
        @if !s.scenario_expectations.is_empty() {
            h2 { "Scenario expectations 情境要求" } "\n"
            table {
                "\n"
                tr { th { "scenario" } th { "inject" } th { "step" } th { "case" } th { "due" } th { "done" } th { "verdict" } }
                "\n"
                @for e in &s.scenario_expectations {
                    tr {
                        td { (e.scenario) }
                        td { (e.inject) }
                        td { (e.step) }
                        td { (e.case_id.as_deref().unwrap_or("(never arrived)")) }
                        td { (e.due.map(t).unwrap_or_default()) }
                        td { (e.done_at.map(t).unwrap_or_default()) }
                        td class=[alarm(e.verdict)] { (e.verdict.label()) }
                    }
                    "\n"
                }
            }
            "\n"
        }
        @for c in &s.cases {
            h2 {
                (c.case_id) " (student " (c.student_id) ") — acknowledged "
                (c.time_to_ack_secs.map(|secs| format!("after {}", span(secs))).unwrap_or_else(|| "never".into()))
            }
            "\n"
            table {
                "\n"
                tr { th { "step" } th { "role" } th { "due" } th { "done" } th { "verdict" } }
                "\n"
                @for e in &c.expectations {
                    tr {
                        td { (e.title) " (" (e.step) ")" }
                        td { (e.role) }
                        td { (t(e.due)) }
                        td { (e.done_at.map(t).unwrap_or_default()) }
                        td class=[alarm(e.verdict)] { (e.verdict.label()) }
                    }
                    "\n"
                }
            }
            "\n"
        }
    };
    super::html::page(
        &format!("Drill {}", s.exercise_id),
        &[super::html::STYLE, super::html::PRINT_STYLE],
        body,
    )
}

fn markdown(s: &DrillScore, offset: FixedOffset) -> String {
    let mut out = format!(
        "# Drill score 演练评分 `{}`: {}/100\n\n{} expected steps: {} on time, {} late, {} missed, {} still open.\n",
        s.exercise_id, s.score, s.expected, s.on_time, s.late, s.missed, s.open
    );
    if !s.scenario_expectations.is_empty() {
        let _ = writeln!(
            out,
            "\n## Scenario expectations 情境要求\n\n| scenario | inject | step | case | due | done | verdict |\n|---|---|---|---|---|---|---|"
        );
        for e in &s.scenario_expectations {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                e.scenario,
                e.inject,
                e.step,
                e.case_id.as_deref().unwrap_or("(never arrived)"),
                e.due.map(|t| local(t, offset)).unwrap_or_default(),
                e.done_at.map(|t| local(t, offset)).unwrap_or_default(),
                e.verdict.label()
            );
        }
    }
    for c in &s.cases {
        let _ = writeln!(
            out,
            "\n## {} (student {}) — acknowledged {}\n\n| step | role | due | done | verdict |\n|---|---|---|---|---|",
            c.case_id,
            c.student_id,
            c.time_to_ack_secs
                .map(|t| format!("after {}", span(t)))
                .unwrap_or_else(|| "never".into())
        );
        for e in &c.expectations {
            let _ = writeln!(
                out,
                "| {} ({}) | {} | {} | {} | {} |",
                e.title.replace('|', "\\|"),
                e.step,
                e.role,
                local(e.due, offset),
                e.done_at.map(|t| local(t, offset)).unwrap_or_default(),
                e.verdict.label()
            );
        }
    }
    out
}
