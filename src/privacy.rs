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
use serde_json::value::RawValue;

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
///
/// Every alert event a console replays goes through here once per role, so
/// the usual path copies the JSON it keeps as it is and decodes only what
/// the rule reads (`RawObject`); an event it cannot walk that way (an
/// escaped key, say) takes the slower, general path over a `Value`. Both
/// give the same JSON value (tested below).
pub fn redact_event(role: Role, json: &str) -> String {
    redact_alert_raw(role, json).unwrap_or_else(|| redact_alert_value(role, json))
}

/// The fast path of `redact_event`, or None to take the general one.
fn redact_alert_raw(role: Role, json: &str) -> Option<String> {
    let mut event: RawObject = serde_json::from_str(json).ok()?;
    if event.get("type").map(RawValue::get) != Some(r#""alert""#) {
        return None;
    }
    let mut alert: RawObject = serde_json::from_str(event.get("alert")?.get()).ok()?;
    let source: Option<Source> = alert.decode("source");
    let category: Option<Category> = alert.decode("category");
    let mut withheld = Vec::new();
    let mut initials = None;
    if let Some(raw) = alert.get("student")
        && raw.get().starts_with('{')
    {
        let mut student: RawObject = serde_json::from_str(raw.get()).ok()?;
        if let Some(name) = student.remove("name")
            && let Ok(name) = serde_json::from_str::<String>(name.get())
        {
            initials = Some(masked_name(&name));
            withheld.push("student.name");
        }
        alert.replace("student", student.to_json());
    }
    withhold_unread(role, source, category, &mut withheld, |key| {
        alert.remove(key).is_some()
    });
    event.replace("alert", alert.to_json());
    event.remove(WITHHELD);
    let note = serde_json::json!({ "fields": withheld, "initials": initials });
    event.push(WITHHELD, note.to_string());
    Some(event.to_json())
}

/// Removes the alert's free text and signals where `role` may not read
/// them (`remove` says whether the field was there), naming each one
/// removed in `withheld`. The one rule both paths of `redact_event` apply.
fn withhold_unread(
    role: Role,
    source: Option<Source>,
    category: Option<Category>,
    withheld: &mut Vec<&'static str>,
    mut remove: impl FnMut(&str) -> bool,
) {
    let summary_ok = match (source, category) {
        (Some(s), Some(c)) => may_read_summary(role, s, c),
        _ => false,
    };
    if !summary_ok && remove("summary") {
        withheld.push("summary");
    }
    if !may_read_signals(role) && remove("signals") {
        withheld.push("signals");
    }
}

/// The general path of `redact_event`, over a whole `Value`.
fn redact_alert_value(role: Role, json: &str) -> String {
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
    withhold_unread(role, source, category, &mut withheld, |key| {
        alert.remove(key).is_some()
    });
    event[WITHHELD] = serde_json::json!({
        "fields": withheld,
        "initials": initials,
    });
    event.to_string()
}

/// A JSON object as its members' unparsed text, in the order written.
/// Keys must be unescaped (the relay's own encoder writes them so);
/// anything else fails to parse and the caller takes the general path.
struct RawObject<'a> {
    members: Vec<(&'a str, Member<'a>)>,
}

/// A member's value: as it was read, or text put in its place.
enum Member<'a> {
    Read(&'a RawValue),
    Put(String),
}

impl Member<'_> {
    fn text(&self) -> &str {
        match self {
            Member::Read(raw) => raw.get(),
            Member::Put(text) => text.as_str(),
        }
    }
}

impl<'a> RawObject<'a> {
    fn get(&self, key: &str) -> Option<&'a RawValue> {
        // The last copy of a key, as a `Value` would keep.
        self.members.iter().rev().find_map(|(k, v)| match v {
            Member::Read(raw) if *k == key => Some(*raw),
            _ => None,
        })
    }

    fn decode<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        serde_json::from_str(self.get(key)?.get()).ok()
    }

    /// Removes `key` (every copy, as a `Value` keeps only the last), and
    /// returns the last value read for it.
    fn remove(&mut self, key: &str) -> Option<&'a RawValue> {
        let mut last = None;
        self.members.retain(|(k, v)| {
            if *k != key {
                return true;
            }
            if let Member::Read(raw) = v {
                last = Some(*raw);
            }
            false
        });
        last
    }

    fn replace(&mut self, key: &str, text: String) {
        if let Some((_, v)) = self.members.iter_mut().rev().find(|(k, _)| *k == key) {
            *v = Member::Put(text);
        }
    }

    fn push(&mut self, key: &'a str, text: String) {
        self.members.push((key, Member::Put(text)));
    }

    fn to_json(&self) -> String {
        let size = self
            .members
            .iter()
            .map(|(k, v)| k.len() + v.text().len() + 4);
        let mut out = String::with_capacity(size.sum::<usize>() + 2);
        out.push('{');
        for (n, (key, value)) in self.members.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            // Keys were read unescaped, so they are written back as they were.
            out.push('"');
            out.push_str(key);
            out.push_str("\":");
            out.push_str(value.text());
        }
        out.push('}');
        out
    }
}

impl<'de> serde::Deserialize<'de> for RawObject<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = RawObject<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some((key, value)) = map.next_entry::<&'de str, &'de RawValue>()? {
                    members.push((key, Member::Read(value)));
                }
                Ok(RawObject { members })
            }
        }
        deserializer.deserialize_map(Members)
    }
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

    /// Events the fast path walks and ones it must hand to the general
    /// path: each role must get the same JSON value from both.
    fn awkward_events() -> Vec<String> {
        let mut events = vec![
            event("screening", "suicide_risk"),
            event("treehole", "self_harm"),
            event("teacher_report", "violence_threat"),
        ];
        let mut v: Value = serde_json::from_str(&event("hotline", "bullying")).unwrap();
        v["alert"]["student"]["name"] = Value::Null;
        v["withheld"] = serde_json::json!({"fields": ["old"]});
        events.push(v.to_string());
        let mut v: Value = serde_json::from_str(&event("screening", "other")).unwrap();
        v["alert"]["summary"] = "引号\"、反斜杠\\、换行\n、\u{1b}[31m".into();
        v["alert"]["student"] = "not an object".into();
        events.push(v.to_string());
        let mut v: Value = serde_json::from_str(&event("screening", "other")).unwrap();
        v["alert"].as_object_mut().unwrap().remove("source");
        v["alert"].as_object_mut().unwrap().remove("student");
        events.push(v.to_string());
        // Written by hand: whitespace, a repeated key, an escaped key, an
        // alert that is not an object, an unknown category.
        events.push(
            r#"{ "seq" : 3 , "type" : "alert", "alert" : { "source": "teacher_report",
                "category": "self_harm", "summary": "a", "summary": "b",
                "student": { "name": "王小明", "name": "李四", "id": "S9" } } }"#
                .to_string(),
        );
        events.push(
            r#"{"type":"alert","alert":{"student":{"na\u006de":"王小明"}},"case":{}}"#.to_string(),
        );
        events.push(r#"{"type":"alert","alert":[1,2]}"#.to_string());
        events.push(
            r#"{"type":"alert","alert":{"source":"sms","category":"x","signals":[]}}"#.to_string(),
        );
        events.push(r#"{"type":"alert"}"#.to_string());
        events
    }

    #[test]
    fn the_fast_path_gives_what_the_general_path_gives() {
        let mut walked = 0;
        for json in awkward_events() {
            walked += usize::from(redact_alert_raw(Role::Nurse, &json).is_some());
            for &role in Role::ALL {
                let fast: Value = serde_json::from_str(&redact_event(role, &json)).unwrap();
                let general: Value =
                    serde_json::from_str(&redact_alert_value(role, &json)).unwrap();
                assert_eq!(fast, general, "{role}: {json}");
                assert!(!fast.to_string().contains("王小明"), "{role}: {json}");
            }
        }
        assert!(
            walked >= 8,
            "the fast path took only {walked} of the events"
        );
    }

    #[test]
    fn other_events_pass_unchanged_and_garbage_is_withheld() {
        let ack = r#"{"seq":2,"type":"case_acknowledged"}"#;
        assert_eq!(redact_event(Role::Nurse, ack), ack);
        assert_eq!(redact_event(Role::Nurse, "{not json"), "");
    }
}
