//! The console's tests in one binary (one link of sqlx, axum, ratatui and
//! zbus instead of five): view snapshots, noticing, the real binary in
//! tmux, and desktop notifications over a real D-Bus.

#[path = "../common/mod.rs"]
mod common;
#[path = "../console_support/mod.rs"]
mod console_support;

mod alerts;
mod cadence_live;
mod district;
mod e2e_filter_search;
mod e2e_tmux;
mod failover;
mod followups;
mod live_reports;
mod notify_dbus;
mod report_actions;
mod reports;
mod search;
mod student;
mod view;
