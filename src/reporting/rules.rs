//! The reporting rules file (`reporting/rules.toml`): which cases must be
//! reported upward and by when. Parsed and checked here, purely; the relay
//! refuses to start with a rule it cannot honour.

use std::collections::{BTreeSet, HashSet};

use serde::Deserialize;

use crate::playbook::{Interval, Library, Resolution};
use crate::protocol::Category;

/// The rules shipped with the binary.
pub const EMBEDDED: (&str, &str) = (
    "reporting/rules.toml",
    include_str!("../../reporting/rules.toml"),
);

/// A checked set of rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    pub version: u32,
    pub sources: Vec<Source>,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Title {
    pub zh: String,
    pub en: String,
}

/// One reporting rule, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: String,
    pub title: Title,
    pub first_report: Deadline,
    pub follow_up: Deadline,
    pub final_report: Deadline,
    pub name_required: bool,
    pub when: When,
}

/// A stage's time limit, counted from the report's opening, and what it
/// rests on (`default` or a source id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadline {
    pub within: Interval,
    pub basis: String,
}

/// How the relay recognises a rule from what responders recorded.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct When {
    #[serde(default)]
    pub calls: Vec<String>,
    #[serde(default)]
    pub choices: Vec<String>,
    #[serde(default)]
    pub completed: Vec<String>,
    #[serde(default)]
    pub categories: Vec<Category>,
}

impl When {
    /// A rule with no recorded sign is opened only by a leader's word.
    pub fn is_declared_only(&self) -> bool {
        self.calls.is_empty() && self.choices.is_empty() && self.completed.is_empty()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    version: u32,
    #[serde(default)]
    sources: Vec<Source>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: String,
    title: Title,
    first_report: String,
    first_report_basis: String,
    follow_up: String,
    follow_up_basis: String,
    final_report: String,
    final_report_basis: String,
    #[serde(default)]
    name_required: bool,
    #[serde(default)]
    when: When,
}

/// What is wrong with a rules file, each naming the rule and key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {problem}")]
pub struct Problem {
    pub file: String,
    pub problem: String,
}

impl Rules {
    /// The shipped rules. They are checked by tests; a broken embedded file
    /// is a build defect, reported like any other file's problems.
    pub fn embedded() -> Result<Rules, Vec<Problem>> {
        Rules::parse(EMBEDDED.0, EMBEDDED.1)
    }

    pub fn load(path: &std::path::Path) -> Result<Rules, Vec<Problem>> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![Problem {
                file: name.clone(),
                problem: format!("cannot read: {e}"),
            }]
        })?;
        Rules::parse(&name, &text)
    }

    /// Parses and checks a rules file on its own (ids, durations, bases,
    /// emergency numbers). [`Rules::check_against`] then checks the
    /// playbook references.
    pub fn parse(file: &str, text: &str) -> Result<Rules, Vec<Problem>> {
        let problem = |p: String| Problem {
            file: file.to_string(),
            problem: p,
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            vec![problem(
                e.to_string()
                    .lines()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .trim()
                    .to_string(),
            )]
        })?;
        let mut problems = Vec::new();
        if raw.version == 0 {
            problems.push(problem("`version` must be 1 or more".into()));
        }
        let source_ids: HashSet<&str> = raw.sources.iter().map(|s| s.id.as_str()).collect();
        let mut seen = HashSet::new();
        let mut rules = Vec::new();
        for r in &raw.rules {
            let at = format!("rule `{}`", r.id);
            if r.id.is_empty()
                || !r
                    .id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                problems.push(problem(format!(
                    "{at}: `id` must be lowercase letters, digits and `_`"
                )));
            }
            if !seen.insert(r.id.as_str()) {
                problems.push(problem(format!("{at}: the id is used twice")));
            }
            if r.title.zh.trim().is_empty() || r.title.en.trim().is_empty() {
                problems.push(problem(format!(
                    "{at}: `title.zh` and `title.en` are both required"
                )));
            }
            let mut deadline = |key: &str, within: &str, basis: &str| -> Option<Deadline> {
                let within = match Interval::parse(within) {
                    Ok(i) => i,
                    Err(e) => {
                        problems.push(problem(format!("{at}: `{key}` = \"{within}\" {e}")));
                        return None;
                    }
                };
                if basis != "default" && !source_ids.contains(basis) {
                    problems.push(problem(format!(
                        "{at}: `{key}_basis` = \"{basis}\" is neither `default` nor the id of a [[sources]] entry"
                    )));
                    return None;
                }
                Some(Deadline {
                    within,
                    basis: basis.to_string(),
                })
            };
            let first = deadline("first_report", &r.first_report, &r.first_report_basis);
            let follow = deadline("follow_up", &r.follow_up, &r.follow_up_basis);
            let last = deadline("final_report", &r.final_report, &r.final_report_basis);
            for number in &r.when.calls {
                if !crate::playbook::EMERGENCY_NUMBERS.contains(&number.as_str()) {
                    problems.push(problem(format!(
                        "{at}: `when.calls` has `{number}`; use 120, 110 or 119"
                    )));
                }
            }
            for path in &r.when.choices {
                if path.split('/').count() != 3 {
                    problems.push(problem(format!(
                        "{at}: `when.choices` entry `{path}` must be playbook/step/option"
                    )));
                }
            }
            for path in &r.when.completed {
                if path.split('/').count() != 2 {
                    problems.push(problem(format!(
                        "{at}: `when.completed` entry `{path}` must be playbook/step"
                    )));
                }
            }
            if let (Some(first), Some(follow), Some(last)) = (first, follow, last) {
                if !(first.within <= follow.within && follow.within <= last.within) {
                    problems.push(problem(format!(
                        "{at}: deadlines must not shrink: first_report ≤ follow_up ≤ final_report"
                    )));
                }
                rules.push(Rule {
                    id: r.id.clone(),
                    title: r.title.clone(),
                    first_report: first,
                    follow_up: follow,
                    final_report: last,
                    name_required: r.name_required,
                    when: r.when.clone(),
                });
            }
        }
        if raw.rules.is_empty() {
            problems.push(problem(
                "no [[rules]]: a relay must know what to report".into(),
            ));
        }
        if problems.is_empty() {
            Ok(Rules {
                version: raw.version,
                sources: raw.sources,
                rules,
            })
        } else {
            Err(problems)
        }
    }

    /// Every playbook step and option a rule names must exist in the
    /// library the relay runs; otherwise the rule could never fire.
    pub fn check_against(&self, file: &str, library: &Library) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut push = |p: String| {
            problems.push(Problem {
                file: file.to_string(),
                problem: p,
            })
        };
        for rule in &self.rules {
            let at = format!("rule `{}`", rule.id);
            let mut step_exists = |key: &str, pb: &str, step: &str, option: Option<&str>| {
                let playbooks: Vec<_> = library
                    .playbooks()
                    .iter()
                    .filter(|p| pb == "*" || p.id == pb)
                    .collect();
                if playbooks.is_empty() {
                    push(format!(
                        "{at}: `{key}` names playbook `{pb}`, which this relay does not run"
                    ));
                    return;
                }
                let found = playbooks.iter().any(|p| {
                    p.step(step).is_some_and(|s| {
                        option.is_none_or(|o| s.kind.options().iter().any(|opt| opt.id == o))
                    })
                });
                if !found {
                    let what = match option {
                        Some(o) => format!("step `{step}` with option `{o}`"),
                        None => format!("step `{step}`"),
                    };
                    push(format!("{at}: `{key}`: playbook `{pb}` has no {what}"));
                }
            };
            for path in &rule.when.choices {
                let parts: Vec<&str> = path.split('/').collect();
                if let [pb, step, option] = parts[..] {
                    step_exists("when.choices", pb, step, Some(option));
                }
            }
            for path in &rule.when.completed {
                let parts: Vec<&str> = path.split('/').collect();
                if let [pb, step] = parts[..] {
                    step_exists("when.completed", pb, step, None);
                }
            }
        }
        problems
    }

    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    pub fn ids(&self) -> Vec<&str> {
        self.rules.iter().map(|r| r.id.as_str()).collect()
    }

    pub fn source_name<'a>(&'a self, basis: &'a str) -> &'a str {
        self.sources
            .iter()
            .find(|s| s.id == basis)
            .map_or(basis, |s| s.name.as_str())
    }
}

/// What responders recorded on a case that rules can see: emergency
/// numbers called, options chosen and steps done, each as written in a
/// rule (`120`, `pb/step/option`, `pb/step`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseSigns {
    pub category: Option<Category>,
    pub calls: BTreeSet<String>,
    pub choices: BTreeSet<String>,
    pub completed: BTreeSet<String>,
}

impl CaseSigns {
    /// Reads the signs off a case's checklists.
    pub fn from_checklists(
        category: Category,
        checklists: &[(String, crate::playbook::Progress)],
        library: &Library,
    ) -> CaseSigns {
        let mut signs = CaseSigns {
            category: Some(category),
            ..CaseSigns::default()
        };
        for (playbook_id, progress) in checklists {
            let playbook = library.get(playbook_id);
            for (step_id, record) in &progress.steps {
                let Some(outcome) = &record.outcome else {
                    continue;
                };
                if outcome.is_skip() {
                    continue;
                }
                if let Resolution::Chose { option } = &outcome.how {
                    signs
                        .choices
                        .insert(format!("{playbook_id}/{step_id}/{option}"));
                }
                signs.completed.insert(format!("{playbook_id}/{step_id}"));
                if let Some(number) = playbook
                    .and_then(|p| p.step(step_id))
                    .and_then(|s| s.calls.clone())
                {
                    signs.calls.insert(number);
                }
            }
        }
        signs
    }

    fn has(set: &BTreeSet<String>, pattern: &str) -> bool {
        match pattern.strip_prefix("*/") {
            Some(rest) => set
                .iter()
                .any(|s| s.split_once('/').is_some_and(|(_, tail)| tail == rest)),
            None => set.contains(pattern),
        }
    }

    /// Whether the recorded signs meet `rule` (declared-only rules never do).
    pub fn meets(&self, rule: &Rule) -> bool {
        let w = &rule.when;
        if w.is_declared_only() {
            return false;
        }
        if !w.categories.is_empty() && !self.category.is_some_and(|c| w.categories.contains(&c)) {
            return false;
        }
        w.calls.iter().any(|n| self.calls.contains(n))
            || w.choices.iter().any(|c| Self::has(&self.choices, c))
            || w.completed.iter().any(|c| Self::has(&self.completed, c))
    }

    /// Ids of every rule the signs meet, in file order.
    pub fn matching<'r>(&self, rules: &'r Rules) -> Vec<&'r Rule> {
        rules.rules.iter().filter(|r| self.meets(r)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn library() -> Library {
        crate::playbook::shipped::load(None).unwrap()
    }

    #[test]
    fn shipped_rules_parse_and_name_real_steps() {
        let rules = Rules::embedded().unwrap();
        assert!(rules.check_against("embedded", &library()).is_empty());
        for id in [
            "death",
            "attempt_with_injury",
            "serious_injury",
            "missing_student",
            "emergency_services",
            "several_students",
        ] {
            assert!(rules.get(id).is_some(), "{id}");
        }
        let death = rules.get("death").unwrap();
        assert_eq!(death.first_report.within.seconds(), 3600);
        assert_eq!(death.first_report.basis, "default");
        assert_eq!(
            rules
                .get("missing_student")
                .unwrap()
                .first_report
                .within
                .seconds(),
            86_400
        );
    }

    #[test]
    fn bad_files_name_the_rule_and_key() {
        let text = EMBEDDED
            .1
            .replacen("first_report = \"1h\"", "first_report = \"1x\"", 1);
        let e = Rules::parse("r.toml", &text).unwrap_err();
        assert!(
            e[0].to_string().contains("rule `death`: `first_report`"),
            "{e:?}"
        );
        let text = EMBEDDED.1.replacen(
            "follow_up_basis = \"incident_reporting\"",
            "follow_up_basis = \"nowhere\"",
            1,
        );
        let e = Rules::parse("r.toml", &text).unwrap_err();
        assert!(
            e[0].problem.contains("`follow_up_basis` = \"nowhere\""),
            "{e:?}"
        );
        let text = EMBEDDED.1.replacen(
            "when.calls = [\"110\", \"120\"]",
            "when.calls = [\"999\"]",
            1,
        );
        let e = Rules::parse("r.toml", &text).unwrap_err();
        assert!(e[0].problem.contains("`999`"), "{e:?}");
        let text = EMBEDDED
            .1
            .replacen("death_type/suicide", "death_type/accident", 1);
        let rules = Rules::parse("r.toml", &text).unwrap();
        let p = rules.check_against("r.toml", &library());
        assert!(p[0].problem.contains("option `accident`"), "{p:?}");
        let text = EMBEDDED
            .1
            .replacen("name_required = false", "name_requird = false", 1);
        let e = Rules::parse("r.toml", &text).unwrap_err();
        assert!(e[0].problem.contains("name_requird"), "{e:?}");
    }

    #[test]
    fn signs_meet_rules_by_call_choice_and_completion() {
        let rules = Rules::embedded().unwrap();
        let mut signs = CaseSigns {
            category: Some(Category::SuicideRisk),
            ..CaseSigns::default()
        };
        assert!(signs.matching(&rules).is_empty());
        signs.calls.insert("119".into());
        assert!(
            signs.matching(&rules).is_empty(),
            "119 alone is not reportable"
        );
        signs.calls.insert("120".into());
        let ids: Vec<_> = signs
            .matching(&rules)
            .iter()
            .map(|r| r.id.as_str())
            .collect();
        assert_eq!(ids, ["emergency_services"]);
        signs
            .completed
            .insert("imminent_suicide_risk/first_aid".into());
        let ids: Vec<_> = signs
            .matching(&rules)
            .iter()
            .map(|r| r.id.as_str())
            .collect();
        assert_eq!(ids, ["attempt_with_injury", "emergency_services"]);
        signs.category = Some(Category::Bullying);
        let ids: Vec<_> = signs
            .matching(&rules)
            .iter()
            .map(|r| r.id.as_str())
            .collect();
        assert_eq!(
            ids,
            ["emergency_services"],
            "attempt rule is for suicide/self-harm"
        );
        let mut other = CaseSigns::default();
        other
            .completed
            .insert("bullying_violence_threat/mandatory_report".into());
        assert_eq!(
            other.matching(&rules)[0].id,
            "emergency_services",
            "wildcard playbook"
        );
        other
            .choices
            .insert("sudden_death_trauma/death_type/other".into());
        assert_eq!(other.matching(&rules)[0].id, "death");
    }
}
