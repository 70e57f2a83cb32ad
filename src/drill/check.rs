//! Diagnostics and the directory checker behind `crisisdesk drill check`.
//! Per-file rules live in `format`; this module reads directories and
//! embedded texts and refuses a set with any problem at all.

use std::path::{Path, PathBuf};

use thiserror::Error;

use super::format;
use super::scenario::Scenario;
use crate::playbook::Library;

/// One problem in one scenario file, shown as `file:line: problem` (the
/// same shape as the playbook checker's, so editors and CI read both).
pub type Diagnostic = crate::diagnostic::Diagnostic<Problem>;

/// What is wrong, in words a drill author can act on.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Problem {
    #[error("cannot read: {0}")]
    Io(String),
    #[error("no drill scenarios (*.toml) in this directory")]
    NoScenarios,
    #[error("no shipped drill scenario has id `{0}`; see `crisisdesk drill list`")]
    UnknownScenario(String),
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
    #[error("`{key}` `{value}` must use only lowercase letters, digits, `_` and `-`")]
    BadName { key: &'static str, value: String },
    #[error("scenario id `{id}` must match the file name `{stem}.toml`")]
    IdNotFileName { id: String, stem: String },
    #[error("scenario id `{id}` is also used by {other}")]
    DuplicateScenario { id: String, other: String },
    #[error("duration `{value}` {why}")]
    BadDuration { value: String, why: String },
    #[error("no injects; add at least one [[injects]] table")]
    NoInjects,
    #[error("duplicate inject name `{name}` (first defined on line {first_line})")]
    DuplicateInject { name: String, first_line: usize },
    #[error(
        "unknown source `{0}`; use screening, behavior, treehole, teacher_report, parent_report, self_referral, peer_tip, hotline or manual"
    )]
    UnknownSource(String),
    #[error(
        "unknown category `{0}`; use suicide_risk, self_harm, violence_threat, bullying, trauma_bereavement, acute_distress or other"
    )]
    UnknownCategory(String),
    #[error("unknown level `{0}`; use general, key or high")]
    UnknownLevel(String),
    #[error(
        "student id `{0}` must start with `DRILL-` so a drill can never be mistaken for a real student"
    )]
    NotDrillStudent(String),
    #[error("student `{0}` is not declared; add it to [[students]] or write the student inline")]
    UnknownStudent(String),
    #[error("duplicate student `{id}` (first declared on line {first_line})")]
    DuplicateStudent { id: String, first_line: usize },
    #[error("`{0}`: a student is a [[students]] id or an inline table with an `id`")]
    BadStudent(String),
    #[error("signal {0} needs a `kind`, e.g. kind = \"scale\"")]
    SignalWithoutKind(usize),
    #[error("signal {0}: kind `drill` is reserved for the mark `drill run` adds itself")]
    ReservedSignal(usize),
    #[error("`{key}` cannot hold {what} in an alert")]
    NotJson { key: String, what: &'static str },
    #[error("the alert this inject makes would be refused: {0}")]
    InvalidAlert(String),
    #[error(
        "`step` `{0}` must name `playbook_id/step_id`, e.g. `imminent_suicide_risk/counselor_arrives`"
    )]
    BadStepRef(String),
    #[error("unknown playbook `{0}` in `step`; use an id from the playbook library")]
    UnknownPlaybook(String),
    #[error("playbook `{playbook}` has no step `{step}`")]
    UnknownStep { playbook: String, step: String },
    #[error("`inject` names unknown inject `{0}`")]
    UnknownInject(String),
}

/// Checks one scenario given as text against `library`; `file` names it in
/// diagnostics and its stem must equal the scenario id.
pub fn check_str(file: &Path, text: &str, library: &Library) -> Vec<Diagnostic> {
    format::parse(file, text, library).err().unwrap_or_default()
}

/// Parses and checks one scenario file.
pub fn load_file(path: &Path, library: &Library) -> Result<Scenario, Vec<Diagnostic>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![Diagnostic {
            file: path.to_path_buf(),
            line: None,
            problem: Problem::Io(e.to_string()),
        }]
    })?;
    format::parse(path, &text, library)
}

/// Checks every `*.toml` directly in `dir`.
pub fn check_dir(dir: &Path, library: &Library) -> Vec<Diagnostic> {
    load_dir(dir, library).err().unwrap_or_default()
}

/// Loads every scenario in `dir`, sorted by file name; any problem refuses
/// the set (a drill run from half a set would surprise whoever planned it).
pub fn load_dir(dir: &Path, library: &Library) -> Result<Vec<Scenario>, Vec<Diagnostic>> {
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
        return Err(vec![whole_dir(Problem::NoScenarios)]);
    }
    let mut texts = Vec::new();
    for path in files {
        match std::fs::read_to_string(&path) {
            Ok(text) => texts.push((path, text)),
            Err(e) => diags.push(Diagnostic {
                file: path,
                line: None,
                problem: Problem::Io(e.to_string()),
            }),
        }
    }
    let pairs: Vec<(&Path, &str)> = texts
        .iter()
        .map(|(p, t)| (p.as_path(), t.as_str()))
        .collect();
    match load_pairs(&pairs, library) {
        Ok(scenarios) if diags.is_empty() => Ok(scenarios),
        Ok(_) => Err(diags),
        Err(mut more) => {
            diags.append(&mut more);
            Err(diags)
        }
    }
}

/// Loads scenarios from `(file name, text)` pairs, such as those embedded
/// in the binary, with every check `load_dir` makes.
pub fn load_texts(
    files: &[(&str, &str)],
    library: &Library,
) -> Result<Vec<Scenario>, Vec<Diagnostic>> {
    let pairs: Vec<(&Path, &str)> = files.iter().map(|(n, t)| (Path::new(*n), *t)).collect();
    load_pairs(&pairs, library)
}

fn load_pairs(
    files: &[(&Path, &str)],
    library: &Library,
) -> Result<Vec<Scenario>, Vec<Diagnostic>> {
    let mut scenarios: Vec<(PathBuf, Scenario)> = Vec::new();
    let mut diags = Vec::new();
    for (file, text) in files {
        match format::parse(file, text, library) {
            Ok(s) => {
                if let Some((other, _)) = scenarios.iter().find(|(_, o)| o.id == s.id) {
                    diags.push(Diagnostic {
                        file: file.to_path_buf(),
                        line: None,
                        problem: Problem::DuplicateScenario {
                            id: s.id.clone(),
                            other: other.display().to_string(),
                        },
                    });
                }
                scenarios.push((file.to_path_buf(), s));
            }
            Err(mut d) => diags.append(&mut d),
        }
    }
    if diags.is_empty() {
        Ok(scenarios.into_iter().map(|(_, s)| s).collect())
    } else {
        Err(diags)
    }
}
