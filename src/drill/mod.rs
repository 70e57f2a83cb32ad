//! Drills (应急演练): scripted scenarios played into a relay as alerts
//! marked `status: exercise`, so a team rehearses on the real system without
//! touching real records.
//!
//! - [`scenario`]: what a checked scenario is, and the alerts it becomes.
//! - [`format`]: the TOML format drill authors write, and its checks.
//! - [`check`]: `file:line: problem` diagnostics and the directory checker.
//! - [`run`]: playing a timeline into a relay, with retries.
//! - `http`: the relay over HTTP (feature `drill-client`).
//! - [`cli`]: `crisisdesk drill check | list | run`.
//!
//! `docs/drills.md` documents the format for drill authors. The shipped
//! scenarios (`playbooks/drills/*.toml`) are embedded in the binary by
//! `build.rs`, so the demo and `drill run <id>` need no files on disk.

pub mod check;
pub mod cli;
pub mod format;
#[cfg(feature = "drill-client")]
pub mod http;
pub mod run;
pub mod scenario;

use std::path::{Path, PathBuf};

pub use check::{Diagnostic, Problem, check_dir, check_str, load_dir, load_file, load_texts};
pub use format::parse;
pub use scenario::{
    DRILL_SIGNAL_KIND, DRILL_STUDENT_PREFIX, DrillMark, Expect, Inject, Offset, Scenario, alert_id,
    default_exercise_id,
};

use crate::playbook::Library;

/// Where the shipped scenarios live in the source tree.
pub const DEFAULT_DIR: &str = "playbooks/drills";

/// The shipped scenarios as (file name, text), embedded by `build.rs`.
pub const EMBEDDED: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/embedded_drills.rs"));

/// Every shipped scenario, checked against `library`, in file-name order.
pub fn shipped(library: &Library) -> Result<Vec<Scenario>, Vec<Diagnostic>> {
    load_texts(EMBEDDED, library)
}

/// One scenario by id: `dir/<id>.toml` when `dir` is given, else the
/// shipped copy built into the binary. This is how a review finds a drill's
/// `[[expect]]` entries: every drill alert names its scenario (see
/// [`DrillMark::of`]).
pub fn find(id: &str, dir: Option<&Path>, library: &Library) -> Result<Scenario, Vec<Diagnostic>> {
    let file = PathBuf::from(format!("{id}.toml"));
    if let Some(dir) = dir {
        return load_file(&dir.join(file), library);
    }
    let name = format!("{DEFAULT_DIR}/{id}.toml");
    match EMBEDDED.iter().find(|(n, _)| *n == name) {
        Some((name, text)) => parse(Path::new(name), text, library),
        None => Err(vec![Diagnostic {
            file: PathBuf::from(name),
            line: None,
            problem: Problem::UnknownScenario(id.to_string()),
        }]),
    }
}
