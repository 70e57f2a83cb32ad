//! TOML → [`Playbook`], with every per-file rule of `docs/playbooks.md`.
//!
//! The TOML is first read into loose "raw" structs whose fields are all
//! optional and spanned, so one pass can report every problem with its
//! line instead of stopping at the first missing key. Unknown keys are still
//! refused by serde (`deny_unknown_fields`): a misspelt `requried = true`
//! must not silently make a step optional.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::check::{Diagnostic, Located, Problem};
use super::model::{
    self, ChoiceOption, Citation, Condition, Contactee, Due, DueBasis, EMERGENCY_NUMBERS,
    FORBIDDEN_TERMS, Interval, Limit, Match, Playbook, Step, StepKind, Text, Trigger,
};
use crate::protocol::{Category, Level, Role};

type S<T> = Spanned<T>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlaybook {
    id: Option<S<String>>,
    version: Option<S<i64>>,
    title: Option<S<RawText>>,
    summary: Option<S<RawText>>,
    roles: Option<S<Vec<S<String>>>>,
    #[serde(rename = "match")]
    matches: Option<S<RawMatch>>,
    sources: Option<Vec<S<RawSource>>>,
    steps: Option<Vec<S<RawStep>>>,
    harm_notice: Option<S<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawText {
    zh: Option<S<String>>,
    en: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatch {
    categories: Option<S<Vec<S<String>>>>,
    min_level: Option<S<String>>,
    imminent: Option<S<bool>>,
    priority: Option<S<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    id: Option<S<String>>,
    name: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    id: Option<S<String>>,
    role: Option<S<String>>,
    kind: Option<S<String>>,
    title: Option<S<RawText>>,
    instruction: Option<S<RawText>>,
    due: Option<S<String>>,
    due_after: Option<S<String>>,
    needs: Option<S<Vec<S<String>>>>,
    required: Option<S<bool>>,
    escalate_to: Option<S<String>>,
    sources: Option<S<Vec<S<String>>>>,
    options: Option<Vec<S<RawOption>>>,
    max_attempts: Option<S<i64>>,
    retry_after: Option<S<String>>,
    due_basis: Option<S<String>>,
    also: Option<S<Vec<S<String>>>>,
    anytime: Option<S<bool>>,
    calls: Option<S<String>>,
    triggers: Option<S<Vec<S<String>>>>,
    safeguarding: Option<S<bool>>,
    mandatory_report: Option<S<bool>>,
    contacts: Option<S<String>>,
    if_refused: Option<S<Vec<S<String>>>>,
    if_unreached: Option<S<Vec<S<String>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOption {
    id: Option<S<String>>,
    label: Option<S<RawText>>,
    next: Option<S<Vec<S<String>>>>,
    #[serde(rename = "unsafe")]
    unsafe_answer: Option<S<bool>>,
}

/// Parses and checks one playbook. `file` names it in diagnostics; its stem
/// must equal the playbook id so `Library::get` and the file agree.
pub fn parse(file: &Path, text: &str) -> Result<Playbook, Vec<Diagnostic>> {
    parse_located(file, text).map(|l| l.playbook)
}

pub(crate) fn parse_located(file: &Path, text: &str) -> Result<Located, Vec<Diagnostic>> {
    let mut cx = Cx::new(file, text);
    let raw: RawPlaybook = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let line = e.span().map_or(1, |s| cx.line(&s));
            // toml's messages can span lines; a diagnostic is one line.
            let message = e
                .message()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("; ");
            cx.push(line, Problem::Toml(message));
            return Err(cx.diags);
        }
    };
    let playbook = cx.playbook(raw);
    match playbook {
        Some(located) if cx.diags.is_empty() => Ok(located),
        _ => {
            cx.diags.sort_by_key(|d| d.line);
            Err(cx.diags)
        }
    }
}

pub(crate) fn parse_category(name: &str) -> Option<Category> {
    use serde::de::IntoDeserializer;
    let de: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
        name.into_deserializer();
    Category::deserialize(de).ok()
}

pub(crate) fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// The first forbidden practice a text names, if any. English is matched
/// without regard to case; TOML line joins (`\`) cannot split a term
/// because the text is checked after TOML has joined it.
pub fn forbidden_term(text: &str) -> Option<&'static str> {
    let lower = text.to_lowercase();
    FORBIDDEN_TERMS.into_iter().find(|t| lower.contains(t))
}

pub(crate) fn has_cjk(s: &str) -> bool {
    s.chars().any(|c| {
        matches!(c as u32,
            0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
    })
}

/// A step as far as it could be read, with the lines its references sit on.
/// Kept even when some field is broken so graph checks can still run.
struct Draft {
    step: Step,
    line: usize,
    refs_ok: bool,
}

/// Problems of the file being parsed, with TOML spans mapped to lines.
type Cx = crate::diagnostic::Sink<Problem>;

impl Cx {
    fn text(&mut self, field: &str, raw: Option<&S<RawText>>, fallback: usize) -> Text {
        let Some(raw) = raw else {
            self.push(fallback, Problem::Missing(field.to_string()));
            return Text {
                zh: String::new(),
                en: String::new(),
            };
        };
        let table_line = self.at(raw);
        let lang = |cx: &mut Cx, value: &Option<S<String>>, name: &'static str| match value {
            Some(v) if !v.get_ref().trim().is_empty() => {
                if let Some(term) = forbidden_term(v.get_ref()) {
                    let line = cx.at(v);
                    cx.push(
                        line,
                        Problem::ForbiddenPractice {
                            field: format!("{field}.{name}"),
                            term,
                        },
                    );
                }
                if name == "zh" && !has_cjk(v.get_ref()) {
                    let line = cx.at(v);
                    cx.push(
                        line,
                        Problem::ZhNotChinese {
                            field: field.to_string(),
                        },
                    );
                }
                v.get_ref().trim().to_string()
            }
            Some(v) => {
                let line = cx.at(v);
                cx.push(
                    line,
                    Problem::MissingLanguage {
                        field: field.to_string(),
                        lang: name,
                    },
                );
                String::new()
            }
            None => {
                cx.push(
                    table_line,
                    Problem::MissingLanguage {
                        field: field.to_string(),
                        lang: name,
                    },
                );
                String::new()
            }
        };
        let raw = raw.get_ref();
        let zh = lang(self, &raw.zh, "zh");
        let en = lang(self, &raw.en, "en");
        Text { zh, en }
    }

    fn id(&mut self, key: &str, raw: Option<&S<String>>, fallback: usize) -> Option<String> {
        let Some(raw) = raw else {
            self.push(fallback, Problem::Missing(key.to_string()));
            return None;
        };
        if !is_id(raw.get_ref()) {
            let line = self.at(raw);
            self.push(line, Problem::BadId(raw.get_ref().clone()));
            return None;
        }
        Some(raw.get_ref().clone())
    }

    /// A role that may own or receive steps.
    fn role(&mut self, raw: &S<String>) -> Option<Role> {
        let line = self.at(raw);
        match Role::parse(raw.get_ref()) {
            None => {
                self.push(line, Problem::UnknownRole(raw.get_ref().clone()));
                None
            }
            Some(role) if !role.can_act() => {
                self.push(line, Problem::RoleCannotAct(raw.get_ref().clone()));
                None
            }
            Some(role) => Some(role),
        }
    }

    fn interval(&mut self, raw: &S<String>) -> Option<Interval> {
        match Interval::parse(raw.get_ref()) {
            Ok(i) => Some(i),
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

    /// A step's `due`: an interval or a count of school days.
    fn limit(&mut self, raw: &S<String>) -> Option<Limit> {
        match Limit::parse(raw.get_ref()) {
            Ok(l) => Some(l),
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

    fn playbook(&mut self, raw: RawPlaybook) -> Option<Located> {
        let id = self.id("id", raw.id.as_ref(), 1);
        let id_line = raw.id.as_ref().map_or(1, |s| self.at(s));
        if let (Some(id), Some(stem)) = (&id, self.file.file_stem().and_then(|s| s.to_str()))
            && id != stem
        {
            let problem = Problem::IdNotFileName {
                id: id.clone(),
                stem: stem.to_string(),
            };
            self.push(id_line, problem);
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
        let title = self.text("title", raw.title.as_ref(), 1);
        let summary = self.text("summary", raw.summary.as_ref(), 1);

        let mut roles: Vec<Role> = Vec::new();
        let mut role_lines: BTreeMap<Role, usize> = BTreeMap::new();
        match &raw.roles {
            None => self.push(1, Problem::Missing("roles".into())),
            Some(list) if list.get_ref().is_empty() => {
                let line = self.at(list);
                self.push(line, Problem::Missing("roles".into()));
            }
            Some(list) => {
                for r in list.get_ref() {
                    if let Some(role) = self.role(r) {
                        if roles.contains(&role) {
                            let line = self.at(r);
                            self.push(line, Problem::DuplicateRole(role.to_string()));
                        } else {
                            roles.push(role);
                            role_lines.insert(role, self.at(r));
                        }
                    }
                }
            }
        }
        // An unreadable `roles` list is already reported; checking steps
        // against it would only add "not listed" noise.
        let roles_known = raw.roles.as_ref().is_some_and(|list| {
            !list.get_ref().is_empty()
                && list
                    .get_ref()
                    .iter()
                    .all(|r| Role::parse(r.get_ref()).is_some_and(Role::can_act))
        });

        let matches = raw.matches.as_ref().and_then(|m| self.matcher(m));
        let match_line = raw.matches.as_ref().map_or(1, |m| self.at(m));

        let mut sources: Vec<Citation> = Vec::new();
        match &raw.sources {
            None => self.push(1, Problem::NoSources),
            Some(list) if list.is_empty() => self.push(1, Problem::NoSources),
            Some(list) => {
                for s in list {
                    let line = self.at(s);
                    let sid = self.id("sources.id", s.get_ref().id.as_ref(), line);
                    let name = match &s.get_ref().name {
                        Some(n) if !n.get_ref().trim().is_empty() => n.get_ref().trim().to_string(),
                        Some(n) => {
                            let l = self.at(n);
                            self.push(l, Problem::Missing("sources.name".into()));
                            String::new()
                        }
                        None => {
                            self.push(line, Problem::Missing("sources.name".into()));
                            String::new()
                        }
                    };
                    if let Some(sid) = sid {
                        if sources.iter().any(|c| c.id == sid) {
                            let l = s.get_ref().id.as_ref().map_or(line, |i| self.at(i));
                            self.push(l, Problem::DuplicateSource(sid));
                        } else {
                            sources.push(Citation { id: sid, name });
                        }
                    }
                }
            }
        }

        let raw_steps = raw.steps.unwrap_or_default();
        if raw_steps.is_empty() {
            self.push(1, Problem::NoSteps);
        }
        // First pass: ids and where each is first defined, so references
        // can be checked whatever order the steps come in.
        let mut first_line: BTreeMap<String, usize> = BTreeMap::new();
        let mut duplicate_ids = false;
        for s in &raw_steps {
            if let Some(id) = &s.get_ref().id {
                let line = self.at(id);
                if let Some(&first) = first_line.get(id.get_ref()) {
                    duplicate_ids = true;
                    self.push(
                        line,
                        Problem::DuplicateStep {
                            id: id.get_ref().clone(),
                            first_line: first,
                        },
                    );
                } else {
                    first_line.insert(id.get_ref().clone(), line);
                }
            }
        }
        let source_ids: BTreeSet<String> = sources.iter().map(|c| c.id.clone()).collect();
        let listed = roles_known.then_some(roles.as_slice());
        let mut used_roles: BTreeSet<Role> = BTreeSet::new();
        let mut drafts: Vec<Draft> = Vec::new();
        for s in &raw_steps {
            if let Some(d) = self.step(s, &first_line, &source_ids, listed, &mut used_roles) {
                drafts.push(d);
            }
        }
        // A step whose role did not parse may be the one meant to use a
        // listed role; "unused" would then be noise on top of the real error.
        let step_roles_ok = raw_steps.iter().all(|s| {
            let r = s.get_ref();
            [&r.role, &r.escalate_to]
                .into_iter()
                .flatten()
                .all(|name| Role::parse(name.get_ref()).is_some_and(Role::can_act))
        });
        for role in roles.iter().filter(|_| step_roles_ok) {
            if !used_roles.contains(role) {
                let line = role_lines.get(role).copied().unwrap_or(1);
                self.push(line, Problem::RoleUnused(role.to_string()));
            }
        }
        if !duplicate_ids && drafts.len() == raw_steps.len() && drafts.iter().all(|d| d.refs_ok) {
            self.graph(&drafts);
        }

        if matches.as_ref().is_some_and(|m| m.imminent == Some(true)) {
            for number in EMERGENCY_NUMBERS {
                let offered = drafts
                    .iter()
                    .any(|d| d.step.anytime && d.step.calls.as_deref() == Some(number));
                if !offered {
                    self.push(match_line, Problem::NoEmergencyCall(number));
                }
            }
        }
        let harm_notice = raw.harm_notice.as_ref().is_some_and(|b| *b.get_ref());

        let playbook = Playbook {
            harm_notice,
            id: id?,
            version,
            title,
            summary,
            roles,
            sources,
            matches,
            steps: drafts.into_iter().map(|d| d.step).collect(),
        };
        Some(Located {
            file: self.file.clone(),
            playbook,
            id_line,
            match_line,
        })
    }

    fn matcher(&mut self, raw: &S<RawMatch>) -> Option<Match> {
        let line = self.at(raw);
        let m = raw.get_ref();
        let mut categories = Vec::new();
        match &m.categories {
            None => self.push(line, Problem::Missing("match.categories".into())),
            Some(list) if list.get_ref().is_empty() => {
                let l = self.at(list);
                self.push(l, Problem::Missing("match.categories".into()));
            }
            Some(list) => {
                for c in list.get_ref() {
                    match parse_category(c.get_ref()) {
                        Some(cat) => categories.push(cat),
                        None => {
                            let l = self.at(c);
                            self.push(l, Problem::UnknownCategory(c.get_ref().clone()));
                        }
                    }
                }
            }
        }
        let min_level = match &m.min_level {
            None => Level::General,
            Some(l) => match Level::parse(l.get_ref()) {
                Some(level) => level,
                None => {
                    let line = self.at(l);
                    self.push(line, Problem::UnknownLevel(l.get_ref().clone()));
                    Level::General
                }
            },
        };
        Some(Match {
            categories,
            min_level,
            imminent: m.imminent.as_ref().map(|b| *b.get_ref()),
            priority: m.priority.as_ref().map_or(0, |p| *p.get_ref()),
        })
    }

    fn step_refs(
        &mut self,
        key: &'static str,
        list: &[S<String>],
        known: &BTreeMap<String, usize>,
    ) -> (Vec<String>, bool) {
        let mut ok = true;
        let mut out = Vec::new();
        for r in list {
            if !known.contains_key(r.get_ref()) {
                ok = false;
                let line = self.at(r);
                self.push(
                    line,
                    Problem::UnknownStep {
                        key,
                        id: r.get_ref().clone(),
                    },
                );
            }
            if !out.contains(r.get_ref()) {
                out.push(r.get_ref().clone());
            }
        }
        (out, ok)
    }

    fn step(
        &mut self,
        raw: &S<RawStep>,
        known: &BTreeMap<String, usize>,
        source_ids: &BTreeSet<String>,
        listed_roles: Option<&[Role]>,
        used_roles: &mut BTreeSet<Role>,
    ) -> Option<Draft> {
        let line = self.at(raw);
        let r = raw.get_ref();
        let id = self.id("id", r.id.as_ref(), line);
        let name = id.clone().unwrap_or_else(|| "?".into());
        let mut refs_ok = id.is_some();

        let mut use_role = |cx: &mut Cx, raw: &S<String>| -> Option<Role> {
            let role = cx.role(raw)?;
            used_roles.insert(role);
            if listed_roles.is_some_and(|l| !l.contains(&role)) {
                let l = cx.at(raw);
                cx.push(l, Problem::RoleNotListed(role.to_string()));
            }
            Some(role)
        };
        let role = match &r.role {
            Some(raw) => use_role(self, raw),
            None => {
                self.push(line, Problem::Missing("role".into()));
                None
            }
        };
        let escalate_to = r.escalate_to.as_ref().and_then(|raw| use_role(self, raw));

        let title = self.text(&format!("{name}.title"), r.title.as_ref(), line);
        let instruction = self.text(&format!("{name}.instruction"), r.instruction.as_ref(), line);

        let kind_name = r.kind.as_ref().map_or("check", |k| k.get_ref().as_str());
        let kind_known = matches!(
            kind_name,
            "check" | "note" | "choice" | "contact" | "referral"
        );
        if !kind_known && let Some(k) = &r.kind {
            let l = self.at(k);
            self.push(l, Problem::UnknownKind(k.get_ref().clone()));
        }
        let not_for = |cx: &mut Cx, key: &'static str, at: usize, applies_to: &'static str| {
            if kind_known {
                let kind = match kind_name {
                    "note" => "note",
                    "choice" => "choice",
                    "contact" => "contact",
                    "referral" => "referral",
                    _ => "check",
                };
                cx.push(
                    at,
                    Problem::NotForKind {
                        key,
                        applies_to,
                        kind,
                    },
                );
            }
        };
        if kind_name != "choice"
            && let Some(first) = r.options.as_ref().and_then(|o| o.first())
        {
            let l = self.at(first);
            not_for(self, "options", l, "choice");
        }
        if kind_name != "contact" {
            if let Some(m) = &r.max_attempts {
                let l = self.at(m);
                not_for(self, "max_attempts", l, "contact");
            }
            if let Some(m) = &r.retry_after {
                let l = self.at(m);
                not_for(self, "retry_after", l, "contact");
            }
            if let Some(m) = &r.contacts {
                let l = self.at(m);
                not_for(self, "contacts", l, "contact");
            }
            if let Some(m) = &r.if_refused {
                let l = self.at(m);
                not_for(self, "if_refused", l, "contact");
            }
            if let Some(m) = &r.if_unreached {
                let l = self.at(m);
                not_for(self, "if_unreached", l, "contact");
            }
        }
        let safeguarding = r.safeguarding.as_ref().is_some_and(|b| *b.get_ref());
        if safeguarding && kind_known && kind_name != "choice" {
            let l = r.safeguarding.as_ref().map_or(line, |b| self.at(b));
            let kind = match kind_name {
                "note" => "note",
                "contact" => "contact",
                "referral" => "referral",
                _ => "check",
            };
            self.push(l, Problem::GateNotChoice(kind));
        }

        let kind = match kind_name {
            "note" => StepKind::Note,
            "referral" => StepKind::Referral,
            "choice" => {
                let options = self.options(
                    &name,
                    line,
                    r.options.as_deref().unwrap_or(&[]),
                    known,
                    safeguarding,
                );
                if options.iter().any(|o| !o.1) {
                    refs_ok = false;
                }
                if safeguarding {
                    let unsafe_count = options.iter().filter(|o| o.0.unsafe_answer).count();
                    if unsafe_count == 0 || unsafe_count == options.len() {
                        self.push(line, Problem::GateNeedsBothAnswers(name.clone()));
                    }
                }
                StepKind::Choice {
                    options: options.into_iter().map(|o| o.0).collect(),
                }
            }
            "contact" => {
                let max_attempts =
                    r.max_attempts
                        .as_ref()
                        .and_then(|m| match u32::try_from(*m.get_ref()) {
                            Ok(n) if (1..=100).contains(&n) => Some(n),
                            _ => {
                                let l = self.at(m);
                                self.push(
                                    l,
                                    Problem::BadValue {
                                        key: "max_attempts".into(),
                                        why: "a whole number from 1 to 100".into(),
                                    },
                                );
                                None
                            }
                        });
                let retry_after = r.retry_after.as_ref().and_then(|d| self.interval(d));
                let contacts = match &r.contacts {
                    None => {
                        self.push(line, Problem::Missing("contacts".into()));
                        Contactee::Other
                    }
                    Some(c) => Contactee::parse(c.get_ref()).unwrap_or_else(|| {
                        let l = self.at(c);
                        self.push(l, Problem::UnknownContactee(c.get_ref().clone()));
                        Contactee::Other
                    }),
                };
                let mut branch =
                    |cx: &mut Cx, key: &'static str, raw: &Option<S<Vec<S<String>>>>| {
                        let Some(list) = raw else {
                            return Vec::new();
                        };
                        let (out, ok) = cx.step_refs(key, list.get_ref(), known);
                        refs_ok &= ok;
                        if let Some(own) = list
                            .get_ref()
                            .iter()
                            .find(|n| Some(n.get_ref()) == id.as_ref())
                        {
                            refs_ok = false;
                            let l = cx.at(own);
                            cx.push(
                                l,
                                Problem::BranchToSelf {
                                    choice: name.clone(),
                                    option: key.to_string(),
                                },
                            );
                        }
                        out
                    };
                let if_refused = branch(self, "if_refused", &r.if_refused);
                let if_unreached = branch(self, "if_unreached", &r.if_unreached);
                if let (Some(u), None) = (&r.if_unreached, &r.max_attempts) {
                    let l = self.at(u);
                    self.push(l, Problem::UnreachedWithoutAttempts);
                }
                StepKind::Contact {
                    contacts,
                    if_refused,
                    if_unreached,
                    max_attempts,
                    retry_after,
                }
            }
            _ => StepKind::Check,
        };

        let within = r.due.as_ref().and_then(|d| self.limit(d));
        let after = match &r.due_after {
            Some(a) => {
                let (list, ok) = self.step_refs("due_after", std::slice::from_ref(a), known);
                refs_ok &= ok;
                if r.due.is_none() {
                    let l = self.at(a);
                    self.push(l, Problem::DueAfterWithoutDue);
                }
                list.into_iter().next()
            }
            None => None,
        };
        let basis = match (&r.due_basis, &r.due) {
            (Some(b), Some(_)) => {
                let basis = DueBasis::parse(b.get_ref());
                if let DueBasis::Source(id) = &basis
                    && !source_ids.contains(id)
                {
                    let l = self.at(b);
                    self.push(l, Problem::UnknownDueBasis(id.clone()));
                }
                basis
            }
            (Some(b), None) => {
                let l = self.at(b);
                self.push(l, Problem::DueBasisWithoutDue);
                DueBasis::Default
            }
            (None, Some(d)) => {
                let l = self.at(d);
                self.push(l, Problem::NoDueBasis(name.clone()));
                DueBasis::Default
            }
            (None, None) => DueBasis::Default,
        };
        let due = within.map(|within| Due {
            within,
            after,
            basis,
        });

        let needs = match &r.needs {
            Some(list) => {
                let (needs, ok) = self.step_refs("needs", list.get_ref(), known);
                refs_ok &= ok;
                if let Some(own) = list
                    .get_ref()
                    .iter()
                    .find(|n| Some(n.get_ref()) == id.as_ref())
                {
                    refs_ok = false;
                    let l = self.at(own);
                    self.push(l, Problem::NeedsItself(name.clone()));
                }
                needs
            }
            None => Vec::new(),
        };
        let required = r.required.as_ref().is_some_and(|b| *b.get_ref());
        if required && r.due.is_some() && r.escalate_to.is_none() {
            self.push(line, Problem::NoEscalation(name.clone()));
        }
        let can_fire = r.due.is_some() || (kind_name == "contact" && r.max_attempts.is_some());
        if let (Some(e), false) = (&r.escalate_to, can_fire) {
            let l = self.at(e);
            self.push(
                l,
                Problem::BadValue {
                    key: "escalate_to".into(),
                    why: "paired with `due` (or a contact step's `max_attempts`); alone it never fires".into(),
                },
            );
        }

        let mut step_sources = Vec::new();
        if let Some(list) = &r.sources {
            for s in list.get_ref() {
                if source_ids.contains(s.get_ref()) {
                    step_sources.push(s.get_ref().clone());
                } else {
                    let l = self.at(s);
                    self.push(l, Problem::UnknownSource(s.get_ref().clone()));
                }
            }
        }

        let mut also = Vec::new();
        if let Some(list) = &r.also {
            for raw in list.get_ref() {
                let Some(extra) = use_role(self, raw) else {
                    continue;
                };
                let l = self.at(raw);
                if Some(extra) == role {
                    self.push(l, Problem::AlsoIsOwner(extra.to_string()));
                } else if also.contains(&extra) {
                    self.push(l, Problem::DuplicateRole(extra.to_string()));
                } else {
                    also.push(extra);
                }
            }
        }

        let anytime = r.anytime.as_ref().is_some_and(|b| *b.get_ref());
        let flag = |b: &Option<S<bool>>| b.as_ref().is_some_and(|b| *b.get_ref());
        let anytime_line = r.anytime.as_ref().map_or(line, |b| self.at(b));
        if anytime {
            let shape = |cx: &mut Cx, why: &'static str| {
                cx.push(
                    anytime_line,
                    Problem::AnytimeShape {
                        step: name.clone(),
                        why,
                    },
                );
            };
            if r.needs.as_ref().is_some_and(|n| !n.get_ref().is_empty()) {
                shape(
                    self,
                    "cannot wait for other steps (`needs`); it must be possible at any moment",
                );
            }
            if r.due.is_some() {
                shape(
                    self,
                    "has no time limit (`due`): it is done the moment it is needed",
                );
            }
            if required {
                shape(
                    self,
                    "cannot be required: it is done only when a trigger happens",
                );
            }
            if !kind_known || kind_name != "check" {
                shape(self, "must be a check step, marked done when it is done");
            }
        }
        let calls = match &r.calls {
            None => None,
            Some(c) => {
                let l = self.at(c);
                if !anytime {
                    self.push(l, Problem::OnlyAnytime("calls"));
                }
                if EMERGENCY_NUMBERS.contains(&c.get_ref().as_str()) {
                    Some(c.get_ref().clone())
                } else {
                    self.push(l, Problem::UnknownNumber(c.get_ref().clone()));
                    None
                }
            }
        };
        let mut triggers = Vec::new();
        if let Some(list) = &r.triggers {
            let l = self.at(list);
            if !anytime {
                self.push(l, Problem::OnlyAnytime("triggers"));
            }
            for t in list.get_ref() {
                match Trigger::parse(t.get_ref()) {
                    Some(trigger) if !triggers.contains(&trigger) => triggers.push(trigger),
                    Some(_) => {}
                    None => {
                        let l = self.at(t);
                        self.push(l, Problem::UnknownTrigger(t.get_ref().clone()));
                    }
                }
            }
        }
        if r.calls.is_some() && r.triggers.as_ref().is_none_or(|t| t.get_ref().is_empty()) {
            self.push(anytime_line, Problem::NoTriggers(name.clone()));
        }
        let mandatory_report = flag(&r.mandatory_report);
        if mandatory_report {
            let l = r.mandatory_report.as_ref().map_or(line, |b| self.at(b));
            let why = if role.is_some_and(|r| r != Role::Leader) {
                Some("the leader's: the school reports, not one teacher")
            } else if kind_name != "note" {
                Some("a note step: write when, to whom and the receipt number")
            } else if !required {
                Some("required: a report cannot be left undone")
            } else if r.due.is_none() {
                Some("timed (`due`): the law says at once")
            } else {
                None
            };
            if let Some(why) = why {
                self.push(
                    l,
                    Problem::MandatoryReportShape {
                        step: name.clone(),
                        why,
                    },
                );
            }
        }

        Some(Draft {
            step: Step {
                also,
                anytime,
                calls,
                triggers,
                safeguarding,
                mandatory_report,
                id: id?,
                role: role.unwrap_or(Role::Counselor),
                title,
                instruction,
                kind,
                due,
                needs,
                required,
                escalate_to,
                sources: step_sources,
            },
            line,
            refs_ok,
        })
    }

    fn options(
        &mut self,
        step: &str,
        step_line: usize,
        raw: &[S<RawOption>],
        known: &BTreeMap<String, usize>,
        gate: bool,
    ) -> Vec<(ChoiceOption, bool)> {
        match raw.len() {
            0 => self.push(step_line, Problem::NoOptions(step.to_string())),
            1 => self.push(step_line, Problem::OneOption(step.to_string())),
            _ => {}
        }
        let mut out: Vec<(ChoiceOption, bool)> = Vec::new();
        for o in raw {
            let line = self.at(o);
            let r = o.get_ref();
            let Some(id) = self.id("options.id", r.id.as_ref(), line) else {
                continue;
            };
            if out.iter().any(|(existing, _)| existing.id == id) {
                let l = r.id.as_ref().map_or(line, |i| self.at(i));
                self.push(
                    l,
                    Problem::DuplicateOption {
                        step: step.to_string(),
                        option: id.clone(),
                    },
                );
            }
            let label = self.text(
                &format!("{step}.options.{id}.label"),
                r.label.as_ref(),
                line,
            );
            let (next, mut ok) = match &r.next {
                Some(list) => self.step_refs("next", list.get_ref(), known),
                None => (Vec::new(), true),
            };
            if let Some(list) = &r.next
                && let Some(own) = list.get_ref().iter().find(|n| n.get_ref() == step)
            {
                ok = false;
                let l = self.at(own);
                self.push(
                    l,
                    Problem::BranchToSelf {
                        choice: step.to_string(),
                        option: id.clone(),
                    },
                );
            }
            let unsafe_answer = match &r.unsafe_answer {
                Some(u) if !gate => {
                    let l = self.at(u);
                    self.push(l, Problem::UnsafeOutsideGate);
                    false
                }
                Some(u) => *u.get_ref(),
                None => false,
            };
            out.push((
                ChoiceOption {
                    id,
                    label,
                    next,
                    unsafe_answer,
                },
                ok,
            ));
        }
        out
    }

    /// Cycles, branch gates, reachability and due_after safety. Runs only
    /// when every reference resolves, so indices below are sound.
    fn graph(&mut self, drafts: &[Draft]) {
        let steps: Vec<Step> = drafts.iter().map(|d| d.step.clone()).collect();
        let line_of = |i: usize| drafts[i].line;

        // A step may follow one choice only: activation is "any of my
        // gates chosen", and across two choices that would need an OR the
        // checker cannot reason about.
        let mut gate_choice: Vec<Option<usize>> = vec![None; steps.len()];
        let index: BTreeMap<&str, usize> = steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.as_str(), i))
            .collect();
        let mut gated_twice = false;
        for (ci, choice) in steps.iter().enumerate() {
            for option in choice.kind.branches() {
                for target in option.next {
                    let Some(&ti) = index.get(target.as_str()) else {
                        continue;
                    };
                    match gate_choice[ti] {
                        None => gate_choice[ti] = Some(ci),
                        Some(first) if first != ci => {
                            gated_twice = true;
                            self.push(
                                line_of(ti),
                                Problem::GatedTwice {
                                    step: steps[ti].id.clone(),
                                    first: steps[first].id.clone(),
                                    second: choice.id.clone(),
                                },
                            );
                        }
                        Some(_) => {}
                    }
                }
            }
        }

        if model::topological_order(&steps).is_none() {
            for cycle in cycles(&steps) {
                let first = cycle[0];
                let mut names: Vec<String> = cycle.iter().map(|&i| steps[i].id.clone()).collect();
                names.push(steps[first].id.clone());
                self.push(line_of(first), Problem::Cycle(names));
            }
            return;
        }
        if gated_twice {
            return;
        }
        let Some(conds) = model::conditions(&steps) else {
            return;
        };
        for (i, step) in steps.iter().enumerate() {
            if step.anytime && gate_choice[i].is_some() {
                self.push(
                    line_of(i),
                    Problem::AnytimeShape {
                        step: step.id.clone(),
                        why: "cannot sit in a branch; it must be possible at any moment",
                    },
                );
            }
            if !step.safeguarding {
                continue;
            }
            for option in step.kind.options().iter().filter(|o| o.unsafe_answer) {
                let reports = option
                    .next
                    .iter()
                    .filter_map(|n| index.get(n.as_str()))
                    .any(|&t| steps[t].mandatory_report);
                if !reports {
                    self.push(
                        line_of(i),
                        Problem::UnsafeWithoutReport {
                            gate: step.id.clone(),
                            option: option.id.clone(),
                        },
                    );
                }
            }
        }
        let option_names = |choice: usize, options: &BTreeSet<usize>| -> String {
            let opts = steps[choice].kind.branches();
            options
                .iter()
                .filter_map(|&o| opts.get(o))
                .map(|o| format!("`{}`", o.id))
                .collect::<Vec<_>>()
                .join(" or ")
        };
        let unreachable = |c: &Condition| c.values().any(BTreeSet::is_empty);
        for (i, step) in steps.iter().enumerate() {
            if !unreachable(&conds[i]) {
                continue;
            }
            let dead_need = step
                .needs
                .iter()
                .filter_map(|n| index.get(n.as_str()))
                .find(|&&n| unreachable(&conds[n]));
            let why = match dead_need {
                Some(&n) => format!("it needs `{}`, which can never become active", steps[n].id),
                None => {
                    let choice = conds[i]
                        .iter()
                        .find(|(_, o)| o.is_empty())
                        .map_or("?", |(&c, _)| steps[c].id.as_str());
                    format!(
                        "its branch and its `needs` call for different options of `{choice}`, and only one can be chosen"
                    )
                }
            };
            self.push(
                line_of(i),
                Problem::Unreachable {
                    step: step.id.clone(),
                    why,
                },
            );
        }
        // A guardian call must be switched on only by safe answers of some
        // safeguarding gate: then no way through the checklist reaches the
        // call without someone having asked whether it is safe.
        for (i, step) in steps.iter().enumerate() {
            let StepKind::Contact {
                contacts: Contactee::Guardian,
                ..
            } = step.kind
            else {
                continue;
            };
            if unreachable(&conds[i]) {
                continue;
            }
            let gated = conds[i].iter().any(|(&g, allowed)| {
                steps[g].safeguarding
                    && allowed.iter().all(|&o| {
                        steps[g]
                            .kind
                            .options()
                            .get(o)
                            .is_some_and(|o| !o.unsafe_answer)
                    })
            });
            if !gated {
                self.push(line_of(i), Problem::UngatedGuardianContact(step.id.clone()));
            }
        }
        for (i, step) in steps.iter().enumerate() {
            let Some(after) = step.due.as_ref().and_then(|d| d.after.as_deref()) else {
                continue;
            };
            let Some(&ai) = index.get(after) else {
                continue;
            };
            if unreachable(&conds[i]) || model::implies(&conds[i], &conds[ai]) {
                continue;
            }
            let why = conds[ai]
                .iter()
                .find(|(c, allowed)| !conds[i].get(c).is_some_and(|have| have.is_subset(allowed)))
                .map_or_else(String::new, |(&c, allowed)| {
                    format!(
                        "`{after}` only follows {} of `{}`",
                        option_names(c, allowed),
                        steps[c].id
                    )
                });
            self.push(
                line_of(i),
                Problem::DueAfterMayNotHappen {
                    step: step.id.clone(),
                    after: after.to_string(),
                    why,
                },
            );
        }
    }
}

/// One simple cycle per strongly connected component (Tarjan), each as step
/// indices in "waits for" order starting at its earliest step in the file.
fn cycles(steps: &[Step]) -> Vec<Vec<usize>> {
    let preds = model::predecessors(steps);
    let n = steps.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut next = 0;
    let mut sccs: Vec<Vec<usize>> = Vec::new();

    // Iterative Tarjan: playbooks are small, but recursion depth should not
    // depend on input a counselor typed.
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut work: Vec<(usize, usize)> = vec![(root, 0)];
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut edge)) = work.last_mut() {
            if let Some(&w) = preds[v].get(*edge) {
                *edge += 1;
                if index[w] == usize::MAX {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut scc = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    scc.push(w);
                    if w == v {
                        break;
                    }
                }
                let self_loop = preds[v].contains(&v);
                if scc.len() > 1 || self_loop {
                    sccs.push(scc);
                }
            }
        }
    }

    let mut out: Vec<Vec<usize>> = sccs
        .into_iter()
        .map(|scc| {
            let members: BTreeSet<usize> = scc.iter().copied().collect();
            let start = *members.iter().next().unwrap_or(&0);
            // Walk "waits for" edges inside the component until a step
            // repeats; the repeat closes a simple cycle.
            let mut path = vec![start];
            let mut seen = BTreeMap::from([(start, 0usize)]);
            let mut at = start;
            loop {
                let Some(&w) = preds[at].iter().find(|w| members.contains(w)) else {
                    break path;
                };
                if let Some(&pos) = seen.get(&w) {
                    let mut cycle = path.split_off(pos);
                    let min_pos = cycle
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, s)| **s)
                        .map_or(0, |(p, _)| p);
                    cycle.rotate_left(min_pos);
                    break cycle;
                }
                seen.insert(w, path.len());
                path.push(w);
                at = w;
            }
        })
        .collect();
    out.sort();
    out
}
