//! What comes out for people to read: reviews, reports and the drill score
//! (golden files, snapshots, real Chromium for the HTML), incident reports,
//! the statistics export, the student record and follow-ups.
//!
//! One test binary for the group (issue 10: fewer binaries, less linking);
//! each module was a test file of its own.

#[path = "../common/mod.rs"]
mod common;

mod followup;
mod html_in_chromium;
mod incident_reports;
mod review_golden;
mod stats_export;
mod student_record;
