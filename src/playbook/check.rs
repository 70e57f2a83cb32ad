//! Diagnostics and the directory-level checker behind
//! `crisisdesk playbook check`. Per-file rules live in `format`; this module
//! adds what needs the whole library (duplicate ids, ambiguous selection).

use std::path::{Path, PathBuf};

use thiserror::Error;

use super::format;
use super::library::Library;
use super::model::Playbook;
use crate::protocol::{Category, Level};

/// One problem in one file, shown as `file:line: problem`.
pub type Diagnostic = crate::diagnostic::Diagnostic<Problem>;

/// What is wrong. Messages name the key or step and, where it is not
/// obvious, the fix.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Problem {
    #[error("cannot read: {0}")]
    Io(String),
    #[error("no playbooks (*.toml) in this directory")]
    NoPlaybooks,
    #[error("invalid TOML: {0}")]
    Toml(String),
    #[error("missing `{0}`")]
    Missing(String),
    #[error("`{field}` has no {lang} text; every text needs both `zh` and `en`")]
    MissingLanguage { field: String, lang: &'static str },
    #[error("`{field}.zh` has no Chinese characters; is the English text in the wrong place?")]
    ZhNotChinese { field: String },
    #[error("`{key}` must be {why}")]
    BadValue { key: String, why: String },
    #[error("id `{0}` must use only lowercase letters, digits, `_` and `-`")]
    BadId(String),
    #[error("playbook id `{id}` must match the file name `{stem}.toml`")]
    IdNotFileName { id: String, stem: String },
    #[error("unknown role `{0}`; use counselor, head_teacher, leader, nurse or security")]
    UnknownRole(String),
    #[error("role `{0}` cannot act on cases, so it cannot own or receive steps")]
    RoleCannotAct(String),
    #[error("role `{0}` is listed twice in `roles`")]
    DuplicateRole(String),
    #[error("role `{0}` is used here but not listed in `roles`")]
    RoleNotListed(String),
    #[error("role `{0}` is listed in `roles` but no step or escalation uses it")]
    RoleUnused(String),
    #[error("no steps; add at least one [[steps]] table")]
    NoSteps,
    #[error("cites no sources; add [[sources]] naming the protocols this rests on")]
    NoSources,
    #[error("duplicate source id `{0}`")]
    DuplicateSource(String),
    #[error("unknown source `{0}`; cite an id from this playbook's [[sources]]")]
    UnknownSource(String),
    #[error("duplicate step id `{id}` (first defined on line {first_line})")]
    DuplicateStep { id: String, first_line: usize },
    #[error("`{key}` names unknown step `{id}`")]
    UnknownStep { key: &'static str, id: String },
    #[error("step `{0}` lists itself in `needs`")]
    NeedsItself(String),
    #[error("dependency cycle: {}", .0.join(" → "))]
    Cycle(Vec<String>),
    #[error("unknown step kind `{0}`; use check, note, choice, contact or referral")]
    UnknownKind(String),
    #[error("`{key}` only applies to {applies_to} steps, and this is a {kind} step")]
    NotForKind {
        key: &'static str,
        applies_to: &'static str,
        kind: &'static str,
    },
    #[error("choice step `{0}` has no options; add [[steps.options]] tables")]
    NoOptions(String),
    #[error("choice step `{0}` has only one option; a choice needs at least two")]
    OneOption(String),
    #[error("duplicate option id `{option}` in step `{step}`")]
    DuplicateOption { step: String, option: String },
    #[error("option `{option}` of `{choice}` branches to itself")]
    BranchToSelf { choice: String, option: String },
    #[error(
        "step `{step}` is a branch of both `{first}` and `{second}`; a step may follow one choice only"
    )]
    GatedTwice {
        step: String,
        first: String,
        second: String,
    },
    #[error("duration `{value}` {why}")]
    BadDuration { value: String, why: String },
    #[error("`due_after` needs a `due` saying how long after")]
    DueAfterWithoutDue,
    #[error(
        "required step `{0}` has a due time but no `escalate_to`; name who hears when it slips"
    )]
    NoEscalation(String),
    #[error("step `{step}` can never become active: {why}")]
    Unreachable { step: String, why: String },
    #[error(
        "step `{step}` is due after `{after}`, which may never happen when `{step}` does ({why}); its deadline would be lost"
    )]
    DueAfterMayNotHappen {
        step: String,
        after: String,
        why: String,
    },
    #[error(
        "unknown category `{0}`; use suicide_risk, self_harm, violence_threat, bullying, trauma_bereavement, acute_distress or other"
    )]
    UnknownCategory(String),
    #[error("unknown level `{0}`; use general, key or high")]
    UnknownLevel(String),
    #[error(
        "step `{0}` has a `due` but no `due_basis`; write `due_basis = \"default\"` or the id of the source that states this limit"
    )]
    NoDueBasis(String),
    #[error("`due_basis` needs a `due`; only a time limit has a basis")]
    DueBasisWithoutDue,
    #[error(
        "`due_basis` names `{0}`, which is not in this playbook's [[sources]]; list that source or write `default`"
    )]
    UnknownDueBasis(String),
    #[error(
        "`{field}` asks for a forbidden practice (`{term}`); never write it into a step: `harm_notice = true` shows the shared line that forbids it"
    )]
    ForbiddenPractice { field: String, term: &'static str },
    #[error(
        "contact step `{0}` calls the guardian with no safeguarding gate before it; list it in the `next` of a safe option of a `safeguarding = true` choice"
    )]
    UngatedGuardianContact(String),
    #[error("safeguarding gate `{0}` needs at least one safe option and one with `unsafe = true`")]
    GateNeedsBothAnswers(String),
    #[error(
        "unsafe answer `{option}` of gate `{gate}` must open a `mandatory_report = true` step in its `next`"
    )]
    UnsafeWithoutReport { gate: String, option: String },
    #[error("`unsafe` only applies to options of a `safeguarding = true` choice")]
    UnsafeOutsideGate,
    #[error("`safeguarding` only applies to choice steps, and this is a {0} step")]
    GateNotChoice(&'static str),
    #[error("mandatory report step `{step}` must be {why}")]
    MandatoryReportShape { step: String, why: &'static str },
    #[error("anytime step `{step}` {why}")]
    AnytimeShape { step: String, why: &'static str },
    #[error("`{0}` only applies to `anytime = true` steps")]
    OnlyAnytime(&'static str),
    #[error("unknown emergency number `{0}`; use 120, 110 or 119")]
    UnknownNumber(String),
    #[error("emergency call step `{0}` must name its `triggers`, the situations that call for it")]
    NoTriggers(String),
    #[error(
        "unknown trigger `{0}`; use weapon, height, missing, violence, ingestion, attempt, injury, trapped or agitation"
    )]
    UnknownTrigger(String),
    #[error(
        "a playbook for imminent cases must offer an anytime step with `calls = \"{0}\"`, so the call can be made at any moment"
    )]
    NoEmergencyCall(&'static str),
    #[error("role `{0}` owns this step; `also` lists the other roles that may work it")]
    AlsoIsOwner(String),
    #[error("unknown contact `{0}`; use guardian, family, emergency_services or other")]
    UnknownContactee(String),
    #[error("`if_unreached` needs `max_attempts`: it opens once that many calls went unanswered")]
    UnreachedWithoutAttempts,
    #[error("playbook id `{id}` is also used by {other}")]
    DuplicatePlaybook { id: String, other: String },
    #[error(
        "playbooks `{first}` and `{second}` both match {case} with equal rank; set `priority` in one of them"
    )]
    AmbiguousMatch {
        first: String,
        second: String,
        case: String,
    },
}

pub(crate) const CATEGORY_NAMES: [&str; 7] = [
    "suicide_risk",
    "self_harm",
    "violence_threat",
    "bullying",
    "trauma_bereavement",
    "acute_distress",
    "other",
];

/// Checks one playbook given as text; `file` names it in diagnostics and its
/// stem must equal the playbook id.
pub fn check_str(file: &Path, text: &str) -> Vec<Diagnostic> {
    match format::parse(file, text) {
        Ok(_) => Vec::new(),
        Err(diags) => diags,
    }
}

/// Parses and checks one playbook file.
pub fn load_file(path: &Path) -> Result<Playbook, Vec<Diagnostic>> {
    load_located(path).map(|l| l.playbook)
}

fn load_located(path: &Path) -> Result<Located, Vec<Diagnostic>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![Diagnostic {
            file: path.to_path_buf(),
            line: None,
            problem: Problem::Io(e.to_string()),
        }]
    })?;
    format::parse_located(path, &text)
}

pub fn check_file(path: &Path) -> Vec<Diagnostic> {
    load_file(path).err().unwrap_or_default()
}

/// Checks every `*.toml` directly in `dir` (subdirectories such as
/// `drills/` hold other formats and are skipped) and the library they form.
pub fn check_dir(dir: &Path) -> Vec<Diagnostic> {
    match load_dir(dir) {
        Ok(_) => Vec::new(),
        Err(diags) => diags,
    }
}

/// Loads a library; any diagnostic at all refuses the whole library, because
/// a relay running half a playbook set would silently give some cases none.
pub fn load_dir(dir: &Path) -> Result<Library, Vec<Diagnostic>> {
    let whole_dir = |problem| Diagnostic {
        file: dir.to_path_buf(),
        line: None,
        problem,
    };
    let (files, unreadable) = crate::diagnostic::toml_files(dir)
        .map_err(|e| vec![whole_dir(Problem::Io(e.to_string()))])?;
    let mut diags: Vec<Diagnostic> = unreadable
        .into_iter()
        .map(|e| whole_dir(Problem::Io(e.to_string())))
        .collect();
    if files.is_empty() && diags.is_empty() {
        return Err(vec![whole_dir(Problem::NoPlaybooks)]);
    }
    let mut loaded: Vec<Located> = Vec::new();
    for path in files {
        match load_located(&path) {
            Ok(located) => loaded.push(located),
            Err(mut d) => diags.append(&mut d),
        }
    }
    diags.extend(library_problems(&loaded));
    if !diags.is_empty() {
        return Err(diags);
    }
    Ok(Library::new(
        loaded.into_iter().map(|l| l.playbook).collect(),
    ))
}

/// Loads a library from `(file name, text)` pairs, such as playbooks
/// embedded in the binary, with every check `load_dir` makes.
pub fn load_texts(files: &[(&str, &str)]) -> Result<Library, Vec<Diagnostic>> {
    let mut loaded = Vec::new();
    let mut diags = Vec::new();
    for (name, text) in files {
        match format::parse_located(Path::new(name), text) {
            Ok(located) => loaded.push(located),
            Err(mut d) => diags.append(&mut d),
        }
    }
    if files.is_empty() {
        diags.push(Diagnostic {
            file: PathBuf::from("(embedded)"),
            line: None,
            problem: Problem::NoPlaybooks,
        });
    }
    diags.extend(library_problems(&loaded));
    if !diags.is_empty() {
        return Err(diags);
    }
    Ok(Library::new(
        loaded.into_iter().map(|l| l.playbook).collect(),
    ))
}

/// A checked playbook with the lines library-level problems point at.
pub(crate) struct Located {
    pub file: PathBuf,
    pub playbook: Playbook,
    pub id_line: usize,
    pub match_line: usize,
}

/// Problems only visible across files. Ids must match file names, so
/// duplicates can only come from callers that check texts under the same
/// name; ambiguous selection is the one that matters in practice.
pub(crate) fn library_problems(loaded: &[Located]) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    for (i, l) in loaded.iter().enumerate() {
        if let Some(other) = loaded[..i].iter().find(|o| o.playbook.id == l.playbook.id) {
            diags.push(Diagnostic {
                file: l.file.clone(),
                line: Some(l.id_line),
                problem: Problem::DuplicatePlaybook {
                    id: l.playbook.id.clone(),
                    other: other.file.display().to_string(),
                },
            });
        }
    }
    let playbooks: Vec<&Playbook> = loaded.iter().map(|l| &l.playbook).collect();
    let mut reported = std::collections::BTreeSet::new();
    for name in CATEGORY_NAMES {
        let Some(category) = super::format::parse_category(name) else {
            continue;
        };
        for level in [Level::General, Level::Key, Level::High] {
            for imminent in [false, true] {
                let Some((first, second)) = Library::tie(&playbooks, category, level, imminent)
                else {
                    continue;
                };
                if !reported.insert((first.id.clone(), second.id.clone())) {
                    continue;
                }
                let Some(at) = loaded.iter().find(|l| l.playbook.id == second.id) else {
                    continue;
                };
                diags.push(Diagnostic {
                    file: at.file.clone(),
                    line: Some(at.match_line),
                    problem: Problem::AmbiguousMatch {
                        first: first.id.clone(),
                        second: second.id.clone(),
                        case: describe_case(category, level, imminent),
                    },
                });
            }
        }
    }
    diags
}

fn describe_case(category: Category, level: Level, imminent: bool) -> String {
    format!(
        "{} at level {}{}",
        category.as_str(),
        level.as_str(),
        if imminent {
            ", imminent"
        } else {
            ", not imminent"
        }
    )
}
