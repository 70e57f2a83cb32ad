//! Playbooks and drills: the checker, the library, progress properties,
//! the safeguards, walks through every playbook, drill checks, runs and scores.
//!
//! One test binary for the group (issue 10: fewer binaries, less linking);
//! each module was a test file of its own.

#[path = "../common/mod.rs"]
mod common;

mod drill_check;
mod drill_run;
mod drill_score;
mod playbook_check;
mod playbook_library;
mod playbook_progress;
mod playbook_safeguards;
mod playbook_walks;
