//! Screening: golden grading of every scale, the import through a real relay,
//! the risk rules.
//!
//! One test binary for the group (issue 10: fewer binaries, less linking);
//! each module was a test file of its own.

mod screening_golden;
mod screening_import;
mod screening_risk;
