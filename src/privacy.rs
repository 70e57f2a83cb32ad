//! Who may see what about a student. Minors' mental-health data is
//! sensitive personal information (PIPL §28): each role gets the least its
//! duties need, and the relay — never the console — removes the rest before
//! an event leaves. Pure policy and redaction, tested without sockets.
//!
//! | field                  | who receives it                                   |
//! |------------------------|---------------------------------------------------|
//! | student name           | nobody by default; a deliberate, audited `reveal` |
//! | initials, id, class    | every streaming role                              |
//! | summary (free text)    | counselor, leader; head teacher except tree-hole  |
//! |                        | posts; nurse for self-harm; security for threats  |
//! | signals (scale items)  | counselor, leader                                 |

use serde_json::Value;

use crate::protocol::{Category, Role, Source};
use crate::text::masked_name;

/// Whether `role` may read an alert's free-text summary.
pub fn may_read_summary(role: Role, source: Source, category: Category) -> bool {
    match role {
        Role::Counselor | Role::Leader => true,
        // Tree-hole posts are anonymous confidences: only the clinical lead
        // and the responsible leader read them.
        Role::HeadTeacher => source != Source::Treehole,
        Role::Nurse => category == Category::SelfHarm,
        Role::Security => matches!(category, Category::ViolenceThreat | Category::Bullying),
        Role::Reviewer | Role::Admin | Role::Producer | Role::District => false,
    }
}

/// Whether `role` may read an alert's signals (scale items, behaviour data).
pub fn may_read_signals(role: Role) -> bool {
    matches!(role, Role::Counselor | Role::Leader)
}

/// Who may ask to reveal a student's identity on a case.
pub fn may_reveal(role: Role) -> bool {
    role.can_act()
}

/// Who receives the student's name on an incident report whose rule
/// requires it: the leader who files it and the district that receives
/// it. Everyone else on the stream gets the report without it.
pub fn may_read_report_name(role: Role) -> bool {
    matches!(role, Role::Leader | Role::District)
}

/// Removes `student_name` from a report event's forms (the current one and
/// each stage's submitted copy) for a role that may not read it, and the
/// leader's narrative with it: on a report that may name the student, the
/// narrative may too. Other events pass unchanged; unparseable input is
/// withheld entirely.
pub fn redact_report_event(role: Role, json: &str) -> String {
    if may_read_report_name(role) {
        return json.to_string();
    }
    let Ok(mut event) = serde_json::from_str::<Value>(json) else {
        return String::new();
    };
    let Some(report) = event.get_mut("report") else {
        return json.to_string();
    };
    let mut removed = false;
    let mut strip = |form: Option<&mut serde_json::Map<String, Value>>| {
        if let Some(form) = form {
            removed |= form.remove("student_name").is_some();
            removed |= form.remove("narrative").is_some();
        }
    };
    strip(report.get_mut("form").and_then(Value::as_object_mut));
    if let Some(stages) = report.get_mut("stages").and_then(Value::as_array_mut) {
        for stage in stages {
            strip(stage.get_mut("form").and_then(Value::as_object_mut));
        }
    }
    if removed {
        event[WITHHELD] = serde_json::json!({
            "fields": ["report.form.student_name", "report.form.narrative"]
        });
    }
    event.to_string()
}

/// The fields withheld from an alert event, named so a console can say
/// "withheld for your role" rather than show nothing.
pub const WITHHELD: &str = "withheld";

/// Rewrites an `alert` event's JSON for `role`: the name becomes initials,
/// and the summary and signals are removed where the role may not read
/// them. Other events pass through unchanged. Unparseable input is
/// withheld entirely rather than sent raw.
pub fn redact_event(role: Role, json: &str) -> String {
    let Ok(mut event) = serde_json::from_str::<Value>(json) else {
        return String::new();
    };
    if event.get("type").and_then(Value::as_str) != Some("alert") {
        return json.to_string();
    }
    let Some(alert) = event.get_mut("alert").and_then(Value::as_object_mut) else {
        return json.to_string();
    };
    let source: Option<Source> = field(alert, "source");
    let category: Option<Category> = field(alert, "category");
    let mut withheld = Vec::new();
    let mut initials = None;
    if let Some(student) = alert.get_mut("student").and_then(Value::as_object_mut)
        && let Some(Value::String(name)) = student.remove("name")
    {
        initials = Some(masked_name(&name));
        withheld.push("student.name");
    }
    let summary_ok = match (source, category) {
        (Some(s), Some(c)) => may_read_summary(role, s, c),
        _ => false,
    };
    if !summary_ok && alert.remove("summary").is_some() {
        withheld.push("summary");
    }
    if !may_read_signals(role) && alert.remove("signals").is_some() {
        withheld.push("signals");
    }
    event[WITHHELD] = serde_json::json!({
        "fields": withheld,
        "initials": initials,
    });
    event.to_string()
}

fn field<T: serde::de::DeserializeOwned>(
    object: &serde_json::Map<String, Value>,
    key: &str,
) -> Option<T> {
    object
        .get(key)
        .cloned()
        .and_then(|v| serde_json::from_value(v).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(source: &str, category: &str) -> String {
        serde_json::json!({
            "seq": 1, "at": "2026-11-20T13:00:00Z", "type": "alert", "case_id": "C000001",
            "opened": true,
            "alert": {
                "id": "a", "status": "actual", "source": source, "category": category,
                "level": "high", "imminent": false,
                "student": {"id": "S1", "name": "欧阳若曦", "class": "(3)班"},
                "summary": "树洞：今晚就结束吧",
                "signals": [{"kind": "scale", "instrument": "PHQ-9", "score": 21}],
                "observed_at": "2026-11-20T21:00:00+08:00"
            },
            "case": {}
        })
        .to_string()
    }

    #[test]
    fn nobody_receives_the_name_everyone_receives_initials() {
        for &role in Role::ALL {
            let out = redact_event(role, &event("screening", "suicide_risk"));
            assert!(!out.contains("欧阳若曦"), "{role}");
            let v: Value = serde_json::from_str(&out).unwrap();
            assert_eq!(v["withheld"]["initials"], "欧***");
            assert_eq!(v["alert"]["student"]["class"], "(3)班", "{role}");
        }
    }

    #[test]
    fn tree_hole_text_reaches_only_counselor_and_leader() {
        for &role in Role::ALL {
            let out = redact_event(role, &event("treehole", "suicide_risk"));
            let shows = out.contains("今晚就结束吧");
            assert_eq!(
                shows,
                matches!(role, Role::Counselor | Role::Leader),
                "{role}"
            );
        }
        let teacher = redact_event(Role::HeadTeacher, &event("teacher_report", "suicide_risk"));
        assert!(teacher.contains("今晚就结束吧"));
    }

    #[test]
    fn signals_only_for_counselor_and_leader_and_withheld_fields_are_named() {
        let nurse: Value =
            serde_json::from_str(&redact_event(Role::Nurse, &event("screening", "self_harm")))
                .unwrap();
        assert!(nurse["alert"].get("signals").is_none());
        assert!(
            nurse["alert"].get("summary").is_some(),
            "nurse reads self-harm"
        );
        assert_eq!(
            nurse["withheld"]["fields"],
            serde_json::json!(["student.name", "signals"])
        );
        let counselor = redact_event(Role::Counselor, &event("screening", "self_harm"));
        assert!(counselor.contains("PHQ-9"));
    }

    #[test]
    fn a_required_name_on_a_report_reaches_only_the_leader_and_the_district() {
        let event = serde_json::json!({
            "seq": 9, "at": "2026-11-20T13:00:00Z", "type": "report_updated", "case_id": "C000001",
            "report": {"name_required": true, "form": {"student_name": "欧阳若曦", "school": "一中", "narrative": "若曦离校"},
                       "stages": [{"stage": "first", "form": {"student_name": "欧阳若曦"}}, {"stage": "final"}]}
        })
        .to_string();
        for &role in Role::ALL {
            let out = redact_report_event(role, &event);
            assert_eq!(
                out.contains("欧阳若曦"),
                may_read_report_name(role),
                "{role}"
            );
            assert_eq!(
                out.contains("若曦离校"),
                may_read_report_name(role),
                "{role}"
            );
            assert!(out.contains("一中"), "{role}");
        }
        let nurse: Value = serde_json::from_str(&redact_report_event(Role::Nurse, &event)).unwrap();
        assert_eq!(nurse["withheld"]["fields"][0], "report.form.student_name");
    }

    #[test]
    fn other_events_pass_unchanged_and_garbage_is_withheld() {
        let ack = r#"{"seq":2,"type":"case_acknowledged"}"#;
        assert_eq!(redact_event(Role::Nurse, ack), ack);
        assert_eq!(redact_event(Role::Nurse, "{not json"), "");
    }
}
