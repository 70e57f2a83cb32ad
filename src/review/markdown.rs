//! The review as Markdown, for a school's written 总结 or an upward report.

use std::fmt::Write;

use chrono::FixedOffset;

use super::{CaseReview, Verdict, local, span};

/// Table cells must stay on one line and not open new columns.
fn cell(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

pub fn render_markdown(r: &CaseReview, offset: FixedOffset) -> String {
    let t = |at| local(at, offset);
    let mut out = String::new();
    let drill = if r.drill {
        format!(
            " — DRILL 演练 `{}`",
            r.exercise_id.as_deref().unwrap_or_default()
        )
    } else {
        String::new()
    };
    let _ = writeln!(out, "# Case review 个案复盘 {}{drill}\n", r.case_id);
    let _ = writeln!(
        out,
        "_Confidential: minors' mental-health data (PIPL §28). Names are masked; share only with the crisis team and supervisors._\n"
    );
    let _ = writeln!(out, "| | |\n|---|---|");
    let student = [
        Some(r.student.id.clone()),
        r.student.masked_name.clone(),
        r.student.school.clone(),
        r.student.grade.clone(),
        r.student.class.clone(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" · ");
    let rows = [
        ("Student 学生", student),
        (
            "Level 级别",
            format!(
                "{}{}",
                r.level.as_str(),
                if r.imminent { " (imminent 紧急)" } else { "" }
            ),
        ),
        ("Category 类别", r.category.as_str().to_string()),
        ("Status 状态", r.status.as_str().to_string()),
        ("Opened 开案", t(r.opened_at)),
        (
            "Acknowledged 确认",
            match (&r.acknowledged_at, &r.acknowledged_by) {
                (Some(at), Some(by)) => format!(
                    "{} by {} ({}) — {} after opening",
                    t(*at),
                    by.name,
                    by.role,
                    span(r.time_to_ack_secs.unwrap_or(0))
                ),
                _ => "not acknowledged 未确认".into(),
            },
        ),
        (
            "Closed 结案",
            match (r.closed_at, r.outcome) {
                (Some(at), Some(o)) => format!("{} — {}", t(at), o.as_str()),
                _ => "open 未结案".into(),
            },
        ),
        ("Review as of 截至", t(r.as_of)),
    ];
    for (k, v) in rows {
        let _ = writeln!(out, "| {k} | {} |", cell(&v));
    }
    if let Some(reason) = &r.override_reason {
        let _ = writeln!(
            out,
            "\n**Closed by leader override** over {} open required step(s): {}",
            r.overridden.len(),
            cell(reason)
        );
    }

    let _ = writeln!(out, "\n## Timeline 时间线\n");
    let _ = writeln!(out, "| time | lane | who | what |\n|---|---|---|---|");
    for i in &r.timeline {
        let mark = if i.alarm { "⚠ " } else { "" };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {mark}{} |",
            t(i.at),
            i.lane.label(),
            cell(i.who.as_deref().unwrap_or("")),
            cell(&i.what)
        );
    }

    let _ = writeln!(out, "\n## Steps against their deadlines 步骤与时限\n");
    let _ = writeln!(
        out,
        "| step | role | req | due | done | verdict | how |\n|---|---|---|---|---|---|---|"
    );
    for s in r
        .steps
        .iter()
        .filter(|s| s.verdict != Verdict::NotApplicable)
    {
        let verdict = match s.verdict {
            Verdict::Late | Verdict::Missed => format!("**{}**", s.verdict.label()),
            v => v.label().to_string(),
        };
        let _ = writeln!(
            out,
            "| {} ({}) | {} | {} | {} | {} | {verdict} | {} |",
            cell(&s.title_zh),
            cell(&s.step),
            s.role,
            if s.required { "✓" } else { "" },
            due_with_basis(
                s.due.map(t),
                s.limit_zh.as_deref(),
                s.due_basis_zh.as_deref()
            ),
            s.done_at.map(t).unwrap_or_default(),
            cell(s.how.as_deref().unwrap_or(""))
        );
    }
    let counted: Vec<_> = r
        .steps
        .iter()
        .filter(|s| s.required && s.due.is_some())
        .collect();
    let on_time = counted
        .iter()
        .filter(|s| s.verdict == Verdict::OnTime)
        .count();
    let _ = writeln!(
        out,
        "\nRequired steps with a deadline done on time: {on_time} of {}.",
        counted.len()
    );

    for (title, items) in story_lists(r, offset) {
        let _ = writeln!(out, "\n## {title}\n");
        if items.is_empty() {
            let _ = writeln!(out, "none 无");
        }
        for item in items {
            let _ = writeln!(out, "- {item}");
        }
    }

    let _ = writeln!(out, "\n## Audit 审计\n");
    let _ = writeln!(
        out,
        "{} {}",
        if r.audit.chain_intact {
            "✓"
        } else {
            "✗ **BROKEN**"
        },
        audit_summary(r)
    );
    out
}

/// The story after the steps, as titled lists of one-line entries (line
/// breaks in notes and alert text become spaces): the Markdown report's
/// bullet sections and the HTML page's lists, from the same data.
pub(super) fn story_lists(r: &CaseReview, offset: FixedOffset) -> [(&'static str, Vec<String>); 6] {
    let t = |at| local(at, offset);
    fn lines<T>(items: &[T], line: impl Fn(&T) -> String) -> Vec<String> {
        items
            .iter()
            .map(|item| line(item).replace(['\n', '\r'], " "))
            .collect()
    }
    [
        (
            "Contact attempts 联系记录",
            lines(&r.contacts, |c| {
                format!("{} — {} by {}: {}", t(c.at), c.step, c.by, c.outcome)
            }),
        ),
        (
            "Referrals 转介",
            lines(&r.referrals, |f| {
                format!(
                    "{} — {} by {}: {} (appointment {})",
                    t(f.at),
                    f.step,
                    f.by,
                    f.institution,
                    t(f.appointment)
                )
            }),
        ),
        (
            "Escalations 升级",
            lines(&r.escalations, |e| {
                format!(
                    "{} — {} (owner {}) escalated to {}",
                    t(e.at),
                    e.step,
                    e.owner,
                    e.to
                )
            }),
        ),
        (
            "Notes 记录",
            lines(&r.notes, |n| {
                format!("{} — {} ({}): {}", t(n.at), n.step, n.by, n.text)
            }),
        ),
        (
            "Alerts 预警",
            lines(&r.alerts, |a| {
                format!(
                    "#{} {} — {} {}{} via {}: {}",
                    a.seq,
                    t(a.at),
                    a.level.as_str(),
                    a.category.as_str(),
                    if a.imminent { " imminent" } else { "" },
                    a.source.as_str(),
                    a.summary.as_deref().unwrap_or("")
                )
            }),
        ),
        (
            "Viewed by 查看记录",
            lines(&r.viewers, |v| {
                format!("{} — {} ({})", t(v.at), v.name, v.role)
            }),
        ),
    ]
}

/// What the audit check found, after its mark (✓, or ✗ BROKEN).
pub(super) fn audit_summary(r: &CaseReview) -> String {
    format!(
        "{} — {} entries about this case.",
        r.audit.message, r.audit.entries_for_case
    )
}

/// The due time with what it rests on, so a default is never read as a rule.
fn due_with_basis(due: Option<String>, limit: Option<&str>, basis: Option<&str>) -> String {
    let why: Vec<&str> = limit.into_iter().chain(basis).collect();
    match due {
        Some(due) if why.is_empty() => due,
        Some(due) => format!("{due} ({})", cell(&why.join(" · "))),
        None => String::new(),
    }
}
