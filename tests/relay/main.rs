//! The relay on a real socket: the API, batches, checklists, the stream and its
//! delivery, durability across kill -9 and a full disk, TLS, security, metrics,
//! privacy, the audit trail, several relays on one database.
//!
//! One test binary for the group (issue 10: fewer binaries, less linking);
//! each module was a test file of its own.

#[path = "../backends/mod.rs"]
mod backends;
#[path = "../common/mod.rs"]
mod common;
#[path = "../console_support/mod.rs"]
mod console_support;

mod audit_tamper;
mod crash;
mod delivery;
mod disk_full;
mod durability;
mod metrics;
mod offline;
mod privacy;
mod relay_api;
mod relay_backends;
mod relay_batch;
mod relay_checklists;
mod relay_cluster;
mod relay_student;
mod security;
mod tls;
