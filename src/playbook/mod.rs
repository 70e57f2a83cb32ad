//! Playbooks: the pure model of role checklists.
//!
//! - [`model`]: what a checked playbook is (steps, roles, branches, limits).
//! - [`format`]: the TOML format counselors edit, and its per-file checks.
//! - [`check`]: `file:line: problem` diagnostics and the directory checker.
//! - [`library`]: the loaded set and which playbook a case gets.
//! - [`progress`]: one playbook's checklist on one case, with `now` passed in.
//!
//! `docs/playbooks.md` documents the format and every rule for counselors.

pub mod check;
pub mod format;
pub mod library;
pub mod model;
pub mod progress;
pub mod shipped;

pub use check::{
    Diagnostic, Problem, check_dir, check_file, check_str, load_dir, load_file, load_texts,
};
pub use format::parse;
pub use library::Library;
pub use model::{
    Branch, CONTACT_NOT_REACHED, CONTACT_REFUSED, ChoiceOption, Citation, Contactee, Due, DueBasis,
    EMERGENCY_NUMBERS, FORBIDDEN_TERMS, Interval, Lang, Limit, MAX_SCHOOL_DAYS, Match, Playbook,
    Step, StepKind, Text, Trigger, forbidden_notice, weekdays_fallback_note,
};
pub use progress::{
    Attempt, Change, ContactOutcome, Effect, Outcome, Overdue, OverdueReason, Progress, Refusal,
    Remark, Resolution, SchoolDue, StepAction, StepRecord, StepState, StepView,
};
