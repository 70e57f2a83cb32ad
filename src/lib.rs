//! crisisdesk: an alert relay and terminal console for school mental-health
//! crisis teams. Where things live:
//!
//! - [`audit`]: the hash-chained audit trail (pure).
//! - [`case`]: the case rules (open or join, worst level, acknowledge,
//!   close), pure.
//! - [`protocol`]: wire types shared by relay and console (alerts, events,
//!   commands, errors).
//! - [`store`]: durable storage (SQLite today) behind one API.
//! - `relay`: the HTTP ingest and websocket stream server.
//! - `console`: the ratatui terminal console.
//! - [`playbook`]: the pure model of role checklists.
//! - [`drill`]: drill scenarios (应急演练), their checker and `drill run`.
//! - `demo`: the one-command demo (relay + drill feed + console).
//! - [`reporting`]: incident reports upward (事件信息报告) and their rules.
//! - [`screening`]: screening plans, import, scale rules and risk grading.
//! - [`lifecycle`]: acute → monitoring → closed, re-open, level changes
//!   with a second sign-off, pure.
//! - [`followup`]: school calendars, follow-up schedules, check-ins and the
//!   student's record (一生一档).
//! - [`vocabulary`]: the protocol's words in Chinese and English.
//!
//! Cargo features (default: all): `relay` (the server), `console` (the
//! TUI; `demo` needs both) and `drill-client` (the HTTP client of
//! `drill run` and `screening import --relay`). The store, playbooks,
//! reviews, reports and the other operator tools are in every build; a
//! relay-only build (`--no-default-features --features relay`) compiles
//! no ratatui, crossterm or notifier (`.ci/run` checks it).

// No unwrap and no panic on any path of the relay or the console; tests
// may (see Cargo.toml [lints] for the rest).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::panic))]

pub mod audit;
pub mod case;
#[cfg(feature = "console")]
pub mod console;
#[cfg(all(feature = "relay", feature = "console"))]
pub mod demo;
pub mod diagnostic;
pub mod drill;
pub mod followup;
pub mod lifecycle;
pub mod logging;
pub mod period;
pub mod playbook;
pub mod privacy;
pub mod protocol;
#[cfg(feature = "relay")]
pub mod relay;
pub mod reporting;
pub mod review;
pub mod screening;
pub mod stats;
pub mod store;
pub mod text;
pub mod tls;
pub mod vocabulary;
