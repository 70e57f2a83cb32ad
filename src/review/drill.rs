//! Scoring a drill (`review --drill EXERCISE_ID`): every required step with
//! a deadline on the drill's cases is an expectation; the score is the
//! share met on time.

use std::fmt::Write;

use chrono::{DateTime, FixedOffset, Utc};
use serde::Serialize;

use super::{Format, ReviewError, Verdict, build_story, esc, local, span};
use crate::playbook::Library;
use crate::protocol::Role;
use crate::store::Store;

#[derive(Debug, Clone, Serialize)]
pub struct DrillScore {
    pub exercise_id: String,
    pub cases: Vec<DrillCase>,
    pub expected: usize,
    pub on_time: usize,
    pub late: usize,
    pub missed: usize,
    pub open: usize,
    /// On-time share of expected steps, 0–100.
    pub score: u32,
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
        expected: 0,
        on_time: 0,
        late: 0,
        missed: 0,
        open: 0,
        score: 0,
    };
    for id in ids {
        let story = build_story(store, library, &id, as_of).await?;
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
    out.score = (100 * out.on_time).checked_div(out.expected).unwrap_or(0) as u32;
    Ok(out)
}

pub fn render(s: &DrillScore, format: Format, offset: FixedOffset) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(s).unwrap_or_default(),
        Format::Md => markdown(s, offset),
        Format::Html => {
            let md = markdown(s, offset);
            let mut out = format!(
                "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n<title>Drill {}</title>\n</head>\n<body>\n",
                esc(&s.exercise_id)
            );
            for line in md.lines().filter(|l| !l.trim().is_empty()) {
                let _ = writeln!(out, "<p>{}</p>", esc(line));
            }
            out.push_str("</body>\n</html>\n");
            out
        }
    }
}

fn markdown(s: &DrillScore, offset: FixedOffset) -> String {
    let mut out = format!(
        "# Drill score 演练评分 `{}`: {}/100\n\n{} expected steps: {} on time, {} late, {} missed, {} still open.\n",
        s.exercise_id, s.score, s.expected, s.on_time, s.late, s.missed, s.open
    );
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
