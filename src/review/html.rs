//! The review as one self-contained HTML page: inline CSS, an inline SVG
//! swimlane chart (a lane per role), no scripts, no external resources, so
//! it opens offline and carries nothing that could phone home.

use std::fmt::Write;

use chrono::FixedOffset;

use super::{CaseReview, Lane, Verdict, local, render_markdown, span};

/// Escapes text for HTML element content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,'Noto Sans CJK SC',sans-serif;margin:2em;max-width:70em;color:#111}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #999;padding:.25em .5em;text-align:left;vertical-align:top}\
.alarm{font-weight:bold;color:#a00}.drill{background:#fd0;padding:.2em .6em;font-weight:bold}\
.note{color:#555;font-style:italic}svg text{font-size:11px}";

pub fn render_html(r: &CaseReview, offset: FixedOffset) -> String {
    let t = |at| local(at, offset);
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>Case review {id}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        id = esc(&r.case_id)
    );
    let _ = writeln!(out, "<h1>Case review 个案复盘 {}</h1>", esc(&r.case_id));
    if r.drill {
        let _ = writeln!(
            out,
            "<p class=\"drill\">DRILL 演练 {}</p>",
            esc(r.exercise_id.as_deref().unwrap_or_default())
        );
    }
    let _ = writeln!(
        out,
        "<p class=\"note\">Confidential: minors' mental-health data (PIPL §28). Names are masked.</p>"
    );
    let _ = writeln!(
        out,
        "<p>Opened {} · acknowledged {} · {}</p>",
        esc(&t(r.opened_at)),
        esc(&r
            .time_to_ack_secs
            .map(|s| format!("{} after opening", span(s)))
            .unwrap_or_else(|| "never".into())),
        esc(&match (r.closed_at, r.outcome) {
            (Some(at), Some(o)) => format!("closed {} ({})", t(at), o.as_str()),
            _ => "still open".into(),
        })
    );
    out.push_str(&swimlanes(r, offset));

    let _ = writeln!(
        out,
        "<h2>Steps against their deadlines 步骤与时限</h2>\n<table>\n<tr><th>step</th><th>role</th><th>required</th><th>due</th><th>done</th><th>verdict</th><th>how</th></tr>"
    );
    for s in r
        .steps
        .iter()
        .filter(|s| s.verdict != Verdict::NotApplicable)
    {
        let class = if matches!(s.verdict, Verdict::Late | Verdict::Missed) {
            " class=\"alarm\""
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "<tr><td>{} / {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td{class}>{}</td><td>{}</td></tr>",
            esc(&s.title_zh),
            esc(&s.title_en),
            s.role,
            if s.required { "yes" } else { "" },
            esc(&match (s.due.map(t), &s.due_basis_zh) {
                (Some(due), Some(basis)) => format!("{due} ({basis})"),
                (due, _) => due.unwrap_or_default(),
            }),
            esc(&s.done_at.map(t).unwrap_or_default()),
            s.verdict.label(),
            esc(s.how.as_deref().unwrap_or(""))
        );
    }
    out.push_str("</table>\n");

    // The rest of the story reads best as the Markdown report's sections;
    // each line is escaped, never interpreted.
    let md = render_markdown(r, offset);
    let rest = md
        .split("\n## ")
        .skip_while(|s| !s.starts_with("Contact attempts"))
        .collect::<Vec<_>>();
    for sec in rest {
        let mut lines = sec.lines();
        let title = lines.next().unwrap_or_default();
        let _ = writeln!(out, "<h2>{}</h2>\n<ul>", esc(title));
        for line in lines.filter(|l| !l.trim().is_empty()) {
            let _ = writeln!(out, "<li>{}</li>", esc(line.trim_start_matches("- ")));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// One lane per role with a dot per timeline item, placed by time.
fn swimlanes(r: &CaseReview, offset: FixedOffset) -> String {
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
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<h2>Timeline 时间线</h2>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" role=\"img\" aria-label=\"swimlane timeline\">",
        left + width + 20.0
    );
    for (row, lane) in lanes.iter().enumerate() {
        let y = 10.0 + lane_h * row as f64;
        let _ = writeln!(
            svg,
            "<rect x=\"0\" y=\"{y}\" width=\"{}\" height=\"{lane_h}\" fill=\"{}\"/><text x=\"6\" y=\"{}\">{}</text>",
            left + width,
            if row % 2 == 0 { "#f4f4f4" } else { "#ffffff" },
            y + lane_h / 2.0 + 4.0,
            esc(lane.label())
        );
    }
    for item in &r.timeline {
        let Some(row) = lanes.iter().position(|l| *l == item.lane) else {
            continue;
        };
        let x = left + width * (item.at - start).num_seconds() as f64 / total;
        let y = 10.0 + lane_h * row as f64 + lane_h / 2.0;
        let (fill, shape) = if item.alarm {
            (
                "#c00000",
                format!(
                    "<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\"",
                    x - 5.0,
                    y - 5.0
                ),
            )
        } else {
            (
                "#1f5fa8",
                format!("<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"5\""),
            )
        };
        let _ = writeln!(
            svg,
            "{shape} fill=\"{fill}\"><title>{} {}{}</title></{}>",
            esc(&local(item.at, offset)),
            item.who
                .as_deref()
                .map(|w| format!("{} — ", esc(w)))
                .unwrap_or_default(),
            esc(&item.what),
            if item.alarm { "rect" } else { "circle" }
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{left}\" y=\"{}\">{}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n</svg>",
        height - 4.0,
        esc(&local(start, offset)),
        left + width,
        height - 4.0,
        esc(&local(end, offset))
    );
    // The same items as a table, for screen readers and printing.
    let _ = writeln!(
        svg,
        "<table>\n<tr><th>time</th><th>lane</th><th>who</th><th>what</th></tr>"
    );
    for item in &r.timeline {
        let _ = writeln!(
            svg,
            "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if item.alarm { " class=\"alarm\"" } else { "" },
            esc(&local(item.at, offset)),
            esc(item.lane.label()),
            esc(item.who.as_deref().unwrap_or("")),
            esc(&item.what)
        );
    }
    svg.push_str("</table>\n");
    svg
}
