//! The student view (一生一档): who, as which role, what is withheld, then
//! the cases, the screenings, the check-ins due and the timeline, newest
//! first. Everything drawn was made inert when the record arrived
//! (`console/student.rs`); the name only after a reveal on the case.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use crate::console::action::ConnectionState;
use crate::console::app::App;
use crate::console::student::Loaded;
use crate::followup::student::{CaseLine, ScreeningLine};
use crate::protocol::{CaseStatus, Category, CloseOutcome, Level};
use crate::text::fit;

use super::widgets::{DAY, MINUTE, fitted, level_mark, local, number};

/// A wire name read back as the console's type (`"key"` → `Level::Key`).
fn parse<T: serde::de::DeserializeOwned>(name: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
}

/// One screening: date, plan, scale and version, the main score, the
/// level it graded to and the scale's class.
fn screening_line(app: &App, r: &ScreeningLine, w: usize) -> Line<'static> {
    let s = app.strings;
    let t = &app.theme;
    let day: String = r.answered_at.chars().take(10).collect();
    let score = r
        .scores
        .get("total")
        .map(|v| ("total", v))
        .or_else(|| r.scores.iter().next().map(|(k, v)| (k.as_str(), v)))
        .and_then(|(k, v)| v.as_f64().map(|v| (k, v)))
        .map(|(k, v)| {
            let k = if k == "total" { s.score_total() } else { k };
            format!(" · {k} {}", number(v))
        })
        .unwrap_or_default();
    let head = format!(
        "  {day} · {} {} · {} v{}{score} · ",
        s.screening_plan(),
        r.plan_id,
        r.scale.to_uppercase(),
        r.scale_version
    );
    let mut spans = vec![Span::raw(head)];
    if !r.valid {
        spans.push(Span::styled(s.screening_invalid(), t.alarm));
    } else {
        match r.level.as_deref().and_then(parse::<Level>) {
            Some(level) => {
                let (mark, style) = level_mark(s, t, level);
                spans.push(Span::styled(mark, style));
            }
            None => spans.push(Span::raw(s.screening_not_flagged())),
        }
        if r.imminent {
            spans.push(Span::styled(format!(" ‼{}", s.imminent), t.imminent));
        }
        let class = if s.lang_is_zh() {
            r.class_zh.as_deref().or(r.class_en.as_deref())
        } else {
            r.class_en.as_deref().or(r.class_zh.as_deref())
        };
        if let Some(class) = class.filter(|c| !c.is_empty()) {
            spans.push(Span::raw(format!(" · {class}")));
        }
    }
    fitted(spans, w)
}

/// The student's screenings, oldest first, for the history tab and the
/// student view: a heading, then a line each, or why there are none.
pub(super) fn screening_lines(
    app: &App,
    student_id: &str,
    waiting: bool,
    w: usize,
) -> Vec<Line<'static>> {
    let s = app.strings;
    let loaded = app.student.of_student(student_id);
    let count = loaded.map_or(0, |l| l.record.screenings.len());
    let mut lines = vec![Line::styled(
        format!("{} ({count})", s.student_screenings()),
        app.theme.title,
    )];
    let Some(l) = loaded else {
        let why = if waiting {
            s.screenings_loading()
        } else {
            s.screenings_none()
        };
        lines.push(Line::raw(fit(&format!("  {why}"), w)));
        return lines;
    };
    if l.record.screenings.is_empty() {
        let withheld = l.record.withheld.iter().any(|x| x == "screening results");
        let why = if withheld {
            format!(
                "  {}: {}",
                s.student_withheld(),
                s.withheld_item("screening results")
            )
        } else {
            format!("  {}", s.screenings_none())
        };
        lines.push(Line::raw(fit(&why, w)));
    }
    lines.extend(
        l.record
            .screenings
            .iter()
            .map(|r| screening_line(app, r, w)),
    );
    lines
}

fn case_line(app: &App, c: &CaseLine, w: usize) -> Line<'static> {
    let s = app.strings;
    let t = &app.theme;
    let mut spans = vec![Span::raw(format!(
        "  {} {} ",
        c.case_id,
        local(app, c.opened_at, DAY)
    ))];
    let (mark, style) = level_mark(s, t, c.level);
    spans.push(Span::styled(mark, style));
    if c.imminent {
        spans.push(Span::styled(format!(" ‼{}", s.imminent), t.imminent));
    }
    let category = parse::<Category>(&c.category).map_or(c.category.as_str(), |k| s.category(k));
    let state = match (c.outcome.as_deref(), parse::<CaseStatus>(&c.status)) {
        (Some(o), _) => match parse::<CloseOutcome>(o) {
            Some(o) => format!("{} {}", s.closed_as, s.outcome(o)),
            None => format!("{} {o}", s.closed_as),
        },
        (None, Some(status)) => s.status(status).to_string(),
        (None, None) => c.status.clone(),
    };
    spans.push(Span::raw(format!(" · {category} · {state}")));
    if c.drill {
        spans.push(Span::styled(format!(" [{}]", s.drill_marker), t.drill));
    }
    fitted(spans, w)
}

/// Every line of the record, top to bottom.
fn record_lines(
    app: &App,
    case_id: &str,
    l: &Loaded,
    waiting: bool,
    w: usize,
) -> Vec<Line<'static>> {
    let s = app.strings;
    let t = &app.theme;
    let r = &l.record;
    let mut lines: Vec<Line> = Vec::new();
    // The name only as revealed on the case (`r`, audited).
    let revealed = app.cases.get(case_id).and_then(|c| c.student.name.clone());
    let who = match revealed {
        Some(name) => name,
        None => format!(
            "{} [{}]",
            r.initials.as_deref().unwrap_or(""),
            s.identity_hidden
        ),
    };
    let place: Vec<&str> = [r.school.as_deref(), r.grade.as_deref(), r.class.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    lines.push(Line::styled(
        fit(
            &format!(
                "{} · {} · {who} · {}",
                s.student_title(),
                r.student_id,
                place.join(" ")
            ),
            w,
        ),
        t.title,
    ));
    let mut role = format!(
        "{} · {} {}",
        s.student_as_role(r.role),
        s.student_read_at(),
        local(app, l.received_at, MINUTE)
    );
    if waiting {
        role.push_str(&format!(" · {}", s.screenings_loading()));
    }
    if !r.withheld.is_empty() {
        let items: Vec<&str> = r.withheld.iter().map(|x| s.withheld_item(x)).collect();
        role.push_str(&format!(
            " · {}: {}",
            s.student_withheld(),
            items.join("、")
        ));
    }
    lines.push(Line::raw(fit(&role, w)));

    lines.push(Line::styled(
        format!("{} ({})", s.student_cases(), r.cases.len()),
        t.title,
    ));
    lines.extend(r.cases.iter().rev().map(|c| case_line(app, c, w)));
    lines.extend(screening_lines(app, &r.student_id, false, w));
    lines.push(Line::styled(
        format!("{} ({})", s.student_upcoming(), r.upcoming.len()),
        t.title,
    ));
    for k in &r.upcoming {
        let case = k.id.split('/').next().unwrap_or_default();
        lines.push(Line::raw(fit(
            &format!(
                "  {} {case} #{} {}",
                local(app, k.due_at, MINUTE),
                k.num,
                s.role(k.role)
            ),
            w,
        )));
    }
    lines.push(Line::styled(
        format!("{} ({})", s.student_timeline(), r.timeline.len()),
        t.title,
    ));
    for i in r.timeline.iter().rev() {
        let mut what = i.what.lines();
        let who = i
            .who
            .as_deref()
            .map(|w| format!("{w}: "))
            .unwrap_or_default();
        let head = format!(
            "  {} {}[{}] {who}{}",
            local(app, i.at, MINUTE),
            i.case_id
                .as_deref()
                .map(|c| format!("{c} "))
                .unwrap_or_default(),
            s.record_kind(&i.kind),
            what.next().unwrap_or_default()
        );
        lines.push(Line::raw(fit(&head, w)));
        lines.extend(what.map(|more| Line::raw(fit(&format!("      {more}"), w))));
    }
    lines
}

pub(super) fn draw_student(app: &App, case_id: &str, frame: &mut Frame, area: Rect) {
    let s = app.strings;
    let w = area.width as usize;
    let student_id = app
        .cases
        .get(case_id)
        .map(|c| c.case.student_id.as_str())
        .unwrap_or_default();
    let waiting = app.student.waiting_for(case_id);
    let Some(loaded) = app.student.of_student(student_id) else {
        let block = Block::new()
            .borders(Borders::TOP)
            .title(fit(&format!(" {} · {case_id} ", s.student_title()), w));
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let why = match (&app.student.refused, &app.connection) {
            (Some(refused), _) => refused.clone(),
            (None, ConnectionState::Connected) => s.student_loading().to_string(),
            (None, _) => s.student_offline().to_string(),
        };
        frame.render_widget(Paragraph::new(fit(&why, w)), inner);
        return;
    };
    let lines = record_lines(app, case_id, loaded, waiting, w);
    frame.render_widget(Paragraph::new(lines).scroll((app.student.scroll, 0)), area);
}
