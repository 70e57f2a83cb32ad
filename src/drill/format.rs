//! TOML → [`Scenario`], with every rule of `docs/drills.md`.
//!
//! As with playbooks, the TOML is first read into loose, spanned "raw"
//! structs so one pass reports every problem with its line; unknown keys are
//! refused by serde so a misspelt `imminet = true` is an error, not a quiet
//! non-imminent drill.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::DateTime;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use toml::Spanned;

use super::check::{Diagnostic, Problem};
use super::scenario::{DRILL_SIGNAL_KIND, DRILL_STUDENT_PREFIX, Expect, Inject, Offset, Scenario};
use crate::playbook::format::{has_cjk, is_id};
use crate::playbook::{Interval, Library, Text};
use crate::protocol::{
    Alert, AlertStatus, Category, Level, MAX_SHORT_TEXT_CHARS, MAX_SUMMARY_CHARS, Source, Student,
    validate_alert,
};

type S<T> = Spanned<T>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    id: Option<S<String>>,
    version: Option<S<i64>>,
    title: Option<S<RawText>>,
    briefing: Option<S<RawText>>,
    students: Option<Vec<S<RawStudent>>>,
    injects: Option<Vec<S<RawInject>>>,
    expect: Option<Vec<S<RawExpect>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawText {
    zh: Option<S<String>>,
    en: Option<S<String>>,
}

/// A student's fields, in `[[students]]` or inline in an inject.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStudent {
    id: Option<String>,
    name: Option<String>,
    school: Option<String>,
    grade: Option<String>,
    class: Option<String>,
    under_14: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInject {
    name: Option<S<String>>,
    at: Option<S<String>>,
    observed_before: Option<S<String>>,
    source: Option<S<String>>,
    category: Option<S<String>>,
    level: Option<S<String>>,
    imminent: Option<S<bool>>,
    /// A `[[students]]` id, or an inline table with the student's fields.
    student: Option<S<toml::Value>>,
    summary: Option<S<String>>,
    signals: Option<Vec<S<toml::Table>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    inject: Option<S<String>>,
    step: Option<S<String>>,
    within: Option<S<String>>,
}

/// Parses and checks one scenario. `file` names it in diagnostics; its stem
/// must equal the scenario id so a scenario can be found by id. `library`
/// is the playbook set `[[expect]]` steps are checked against.
pub fn parse(file: &Path, text: &str, library: &Library) -> Result<Scenario, Vec<Diagnostic>> {
    let mut cx = Cx::new(file, text);
    let raw: RawScenario = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let line = e.span().map_or(1, |s| cx.line(&s));
            cx.push(line, Problem::Toml(one_line(e.message())));
            return Err(cx.diags);
        }
    };
    let scenario = cx.scenario(raw, library);
    match scenario {
        Some(s) if cx.diags.is_empty() => Ok(s),
        _ => {
            cx.diags.sort_by_key(|d| d.line);
            Err(cx.diags)
        }
    }
}

/// toml's messages can span lines; a diagnostic is one line.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// A protocol enum from its wire name (`peer_tip` → `Source::PeerTip`).
fn wire<T: DeserializeOwned>(name: &str) -> Option<T> {
    serde_json::from_value(Value::String(name.to_string())).ok()
}

/// `[[students]]`: those that passed their checks (with their line), and
/// every id written, so a reference to a broken one is not also "unknown".
#[derive(Default)]
struct Students {
    valid: BTreeMap<String, (Student, usize)>,
    declared: BTreeSet<String>,
}

/// Problems of the file being parsed, with TOML spans mapped to lines.
type Cx = crate::diagnostic::Sink<Problem>;

impl Cx {
    fn text(&mut self, field: &str, raw: Option<&S<RawText>>) -> Text {
        let Some(raw) = raw else {
            self.push(1, Problem::Missing(field.to_string()));
            return Text {
                zh: String::new(),
                en: String::new(),
            };
        };
        let table_line = self.at(raw);
        let mut lang = |value: &Option<S<String>>, name: &'static str| -> String {
            let missing = Problem::MissingLanguage {
                field: field.to_string(),
                lang: name,
            };
            match value {
                Some(v) if !v.get_ref().trim().is_empty() => {
                    if name == "zh" && !has_cjk(v.get_ref()) {
                        let line = self.at(v);
                        self.push(
                            line,
                            Problem::ZhNotChinese {
                                field: field.to_string(),
                            },
                        );
                    }
                    v.get_ref().trim().to_string()
                }
                Some(v) => {
                    let line = self.at(v);
                    self.push(line, missing);
                    String::new()
                }
                None => {
                    self.push(table_line, missing);
                    String::new()
                }
            }
        };
        let raw = raw.get_ref();
        let zh = lang(&raw.zh, "zh");
        let en = lang(&raw.en, "en");
        Text { zh, en }
    }

    fn name(
        &mut self,
        key: &'static str,
        raw: Option<&S<String>>,
        fallback: usize,
    ) -> Option<String> {
        let Some(raw) = raw else {
            self.push(fallback, Problem::Missing(key.to_string()));
            return None;
        };
        if !is_id(raw.get_ref()) {
            let line = self.at(raw);
            self.push(
                line,
                Problem::BadName {
                    key,
                    value: raw.get_ref().clone(),
                },
            );
            return None;
        }
        Some(raw.get_ref().clone())
    }

    fn scenario(&mut self, raw: RawScenario, library: &Library) -> Option<Scenario> {
        let id = self.name("id", raw.id.as_ref(), 1);
        if let (Some(id), Some(stem)) = (&id, self.file.file_stem().and_then(|s| s.to_str()))
            && id != stem
        {
            let line = raw.id.as_ref().map_or(1, |s| self.at(s));
            let problem = Problem::IdNotFileName {
                id: id.clone(),
                stem: stem.to_string(),
            };
            self.push(line, problem);
        }
        let version = match &raw.version {
            None => {
                self.push(1, Problem::Missing("version".into()));
                0
            }
            Some(v) => match u32::try_from(*v.get_ref()) {
                Ok(n) if n >= 1 => n,
                _ => {
                    let line = self.at(v);
                    self.push(
                        line,
                        Problem::BadValue {
                            key: "version".into(),
                            why: "a whole number from 1 up".into(),
                        },
                    );
                    0
                }
            },
        };
        let title = self.text("title", raw.title.as_ref());
        let briefing = self.text("briefing", raw.briefing.as_ref());

        let mut students = Students::default();
        for s in raw.students.iter().flatten() {
            if let Some(id) = &s.get_ref().id {
                students.declared.insert(id.clone());
            }
            let line = self.at(s);
            if let Some(student) = self.student(s.get_ref(), "students", line) {
                if let Some((_, first_line)) = students.valid.get(&student.id) {
                    let problem = Problem::DuplicateStudent {
                        id: student.id.clone(),
                        first_line: *first_line,
                    };
                    self.push(line, problem);
                } else {
                    students.valid.insert(student.id.clone(), (student, line));
                }
            }
        }

        let raw_injects = raw.injects.unwrap_or_default();
        if raw_injects.is_empty() {
            self.push(1, Problem::NoInjects);
        }
        // Names first, from the raw tables, so a duplicate or an `expect`
        // naming an inject is judged even when the inject itself is broken.
        let mut first_line: BTreeMap<String, usize> = BTreeMap::new();
        for raw in &raw_injects {
            let Some(name) = &raw.get_ref().name else {
                continue;
            };
            let line = self.at(name);
            match first_line.get(name.get_ref()) {
                Some(&first) => self.push(
                    line,
                    Problem::DuplicateInject {
                        name: name.get_ref().clone(),
                        first_line: first,
                    },
                ),
                None => {
                    first_line.insert(name.get_ref().clone(), line);
                }
            }
        }
        let mut injects: Vec<Inject> = raw_injects
            .iter()
            .filter_map(|raw| self.inject(raw, &students))
            .collect();
        // Out-of-order offsets are fine: the timeline is the sorted order
        // (stable, so injects at the same moment keep their file order).
        injects.sort_by_key(|i| i.at);

        let mut expects = Vec::new();
        for raw in raw.expect.iter().flatten() {
            if let Some(e) = self.expect(raw, &injects, &first_line, library) {
                expects.push(e);
            }
        }

        Some(Scenario {
            id: id?,
            version,
            title,
            briefing,
            injects,
            expects,
        })
    }

    /// A student's fields, checked; `key` names where they were written.
    fn student(&mut self, raw: &RawStudent, key: &str, line: usize) -> Option<Student> {
        let Some(id) = raw.id.as_ref() else {
            self.push(line, Problem::Missing(format!("{key}.id")));
            return None;
        };
        let mut ok = true;
        if !id.starts_with(DRILL_STUDENT_PREFIX) {
            self.push(line, Problem::NotDrillStudent(id.clone()));
            ok = false;
        }
        for (field, value) in [
            ("id", Some(id)),
            ("name", raw.name.as_ref()),
            ("school", raw.school.as_ref()),
            ("grade", raw.grade.as_ref()),
            ("class", raw.class.as_ref()),
        ] {
            let Some(value) = value else { continue };
            let n = value.chars().count();
            if value.trim().is_empty()
                || n > MAX_SHORT_TEXT_CHARS
                || value.chars().any(char::is_control)
            {
                ok = false;
                self.push(
                    line,
                    Problem::BadValue {
                        key: format!("{key}.{field}"),
                        why: format!("1 to {MAX_SHORT_TEXT_CHARS} printable characters, got {n}"),
                    },
                );
            }
        }
        ok.then(|| Student {
            id: id.clone(),
            name: raw.name.clone(),
            school: raw.school.clone(),
            grade: raw.grade.clone(),
            class: raw.class.clone(),
            under_14: raw.under_14,
        })
    }

    fn inject_student(
        &mut self,
        raw: Option<&S<toml::Value>>,
        students: &Students,
        line: usize,
    ) -> Option<Student> {
        let Some(raw) = raw else {
            self.push(line, Problem::Missing("student".into()));
            return None;
        };
        let at = self.at(raw);
        match raw.get_ref() {
            toml::Value::String(id) => match students.valid.get(id) {
                Some((student, _)) => Some(student.clone()),
                // Declared but broken: its own problem is already reported.
                None if students.declared.contains(id) => None,
                None => {
                    self.push(at, Problem::UnknownStudent(id.clone()));
                    None
                }
            },
            table @ toml::Value::Table(_) => match RawStudent::deserialize(table.clone()) {
                Ok(fields) => self.student(&fields, "student", at),
                Err(e) => {
                    self.push(
                        at,
                        Problem::Toml(format!("in `student`: {}", one_line(e.message()))),
                    );
                    None
                }
            },
            _ => {
                self.push(at, Problem::BadStudent("student".into()));
                None
            }
        }
    }

    fn parsed<T: DeserializeOwned>(
        &mut self,
        key: &'static str,
        raw: Option<&S<String>>,
        line: usize,
        unknown: fn(String) -> Problem,
    ) -> Option<T> {
        let Some(raw) = raw else {
            self.push(line, Problem::Missing(key.into()));
            return None;
        };
        let value = wire(raw.get_ref());
        if value.is_none() {
            let at = self.at(raw);
            self.push(at, unknown(raw.get_ref().clone()));
        }
        value
    }

    fn duration<T>(&mut self, raw: &S<String>, parse: fn(&str) -> Result<T, String>) -> Option<T> {
        match parse(raw.get_ref()) {
            Ok(v) => Some(v),
            Err(why) => {
                let line = self.at(raw);
                self.push(
                    line,
                    Problem::BadDuration {
                        value: raw.get_ref().clone(),
                        why,
                    },
                );
                None
            }
        }
    }

    /// One inject, or `None` when any of it is broken (every problem is
    /// reported either way).
    fn inject(&mut self, raw: &S<RawInject>, students: &Students) -> Option<Inject> {
        let line = self.at(raw);
        let r = raw.get_ref();
        let name = self.name("name", r.name.as_ref(), line);
        let at = match &r.at {
            None => {
                self.push(line, Problem::Missing("at".into()));
                None
            }
            Some(at) => self.duration(at, Offset::parse),
        };
        let observed_before = match &r.observed_before {
            None => Some(None),
            Some(raw) => self.duration(raw, observed_before),
        };
        let source: Option<Source> =
            self.parsed("source", r.source.as_ref(), line, Problem::UnknownSource);
        let category: Option<Category> = self.parsed(
            "category",
            r.category.as_ref(),
            line,
            Problem::UnknownCategory,
        );
        let level: Option<Level> =
            self.parsed("level", r.level.as_ref(), line, Problem::UnknownLevel);
        let student = self.inject_student(r.student.as_ref(), students, line);

        let summary = match &r.summary {
            None => Some(None),
            Some(s) => {
                let n = s.get_ref().chars().count();
                if s.get_ref().trim().is_empty() || n > MAX_SUMMARY_CHARS {
                    let at = self.at(s);
                    self.push(
                        at,
                        Problem::BadValue {
                            key: "summary".into(),
                            why: format!("1 to {MAX_SUMMARY_CHARS} characters, got {n}"),
                        },
                    );
                    None
                } else {
                    Some(Some(s.get_ref().trim().to_string()))
                }
            }
        };

        let mut signals = Vec::new();
        let mut signals_ok = true;
        for (i, table) in r.signals.iter().flatten().enumerate() {
            let at = self.at(table);
            if !matches!(table.get_ref().get("kind"), Some(toml::Value::String(k)) if !k.trim().is_empty())
            {
                self.push(at, Problem::SignalWithoutKind(i + 1));
                signals_ok = false;
                continue;
            }
            if matches!(table.get_ref().get("kind"), Some(toml::Value::String(k)) if k == DRILL_SIGNAL_KIND)
            {
                self.push(at, Problem::ReservedSignal(i + 1));
                signals_ok = false;
                continue;
            }
            match json(&toml::Value::Table(table.get_ref().clone()), "signals") {
                Ok(v) => signals.push(v),
                Err(problem) => {
                    self.push(at, problem);
                    signals_ok = false;
                }
            }
        }

        let inject = Inject {
            name: name?,
            at: at?,
            observed_before: observed_before?,
            source: source?,
            category: category?,
            level: level?,
            imminent: r.imminent.as_ref().is_some_and(|b| *b.get_ref()),
            student: student?,
            summary: summary?,
            signals: signals_ok.then_some(signals)?,
            line,
        };
        // The relay's own rules are the last word: an inject it would refuse
        // must be caught here, before a drill starts, not halfway through.
        let probe = Alert {
            id: "probe".into(),
            status: AlertStatus::Exercise,
            exercise_id: Some("probe".into()),
            source: inject.source,
            category: inject.category,
            level: inject.level,
            imminent: inject.imminent,
            student: inject.student.clone(),
            summary: inject.summary.clone(),
            signals: inject.signals.clone(),
            observed_at: DateTime::UNIX_EPOCH.fixed_offset(),
            route: Default::default(),
        };
        if let Err(e) = validate_alert(&probe) {
            self.push(line, Problem::InvalidAlert(e.message));
            return None;
        }
        Some(inject)
    }

    fn expect(
        &mut self,
        raw: &S<RawExpect>,
        injects: &[Inject],
        names: &BTreeMap<String, usize>,
        library: &Library,
    ) -> Option<Expect> {
        let line = self.at(raw);
        let r = raw.get_ref();
        let inject = match &r.inject {
            Some(name) if !names.contains_key(name.get_ref()) => {
                let at = self.at(name);
                self.push(at, Problem::UnknownInject(name.get_ref().clone()));
                None
            }
            Some(name) => Some(name.get_ref().clone()),
            None => injects.first().map(|i| i.name.clone()),
        };
        let step = match &r.step {
            None => {
                self.push(line, Problem::Missing("step".into()));
                None
            }
            Some(step) => self.step_ref(step, library),
        };
        let within = match &r.within {
            None => {
                self.push(line, Problem::Missing("within".into()));
                None
            }
            Some(w) => self.duration(w, Interval::parse),
        };
        let (playbook, step) = step?;
        Some(Expect {
            inject: inject?,
            playbook,
            step,
            within: within?,
            line,
        })
    }

    fn step_ref(&mut self, raw: &S<String>, library: &Library) -> Option<(String, String)> {
        let line = self.at(raw);
        let Some((playbook, step)) = raw.get_ref().split_once('/') else {
            self.push(line, Problem::BadStepRef(raw.get_ref().clone()));
            return None;
        };
        let Some(pb) = library.get(playbook) else {
            self.push(line, Problem::UnknownPlaybook(playbook.to_string()));
            return None;
        };
        if pb.step(step).is_none() {
            self.push(
                line,
                Problem::UnknownStep {
                    playbook: playbook.to_string(),
                    step: step.to_string(),
                },
            );
            return None;
        }
        Some((playbook.to_string(), step.to_string()))
    }
}

/// `observed_before`: how long ago, up to a year; `0m` means "as posted".
fn observed_before(text: &str) -> Result<Option<Interval>, String> {
    if Offset::parse(text) == Ok(Offset::ZERO) {
        return Ok(None);
    }
    Interval::parse(text).map(Some)
}

/// A TOML value as the JSON an alert carries. Dates have no JSON form; a
/// signal holds them as RFC 3339 strings instead, which is spelled out.
fn json(value: &toml::Value, key: &str) -> Result<Value, Problem> {
    Ok(match value {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .ok_or_else(|| Problem::NotJson {
                key: key.to_string(),
                what: "nan or inf",
            })?,
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(_) => {
            return Err(Problem::NotJson {
                key: key.to_string(),
                what: "a bare TOML date (quote it as a string)",
            });
        }
        toml::Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| json(v, key))
                .collect::<Result<_, _>>()?,
        ),
        toml::Value::Table(t) => Value::Object(
            t.iter()
                .map(|(k, v)| Ok((k.clone(), json(v, &format!("{key}.{k}"))?)))
                .collect::<Result<_, Problem>>()?,
        ),
    })
}
