//! The store on every backend (SQLite always, PostgreSQL when
//! `CRISISDESK_TEST_PG` names one): commands, groups and their properties.
//!
//! One test binary for the group (issue 10: fewer binaries, less linking);
//! each module was a test file of its own.

#[path = "../backends/mod.rs"]
mod backends;

mod store_backends;
mod store_groups;
