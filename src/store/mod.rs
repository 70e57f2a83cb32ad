//! Durable storage. Everything the relay promises ("answered 201 means
//! stored", "seq never reused", "a command applies once") is kept here, in one
//! transaction per change.
//!
//! Two engines, chosen by the database URL: SQLite (`sqlite.rs`,
//! migrations in `migrations/sqlite/`) and PostgreSQL (`postgres.rs`,
//! `migrations/postgres/`). Both run the same queries and command logic,
//! written once in `sql/` and compiled once per engine; each engine file
//! holds only what its database does its own way. Callers use [`Store`]
//! (`backend.rs`, which dispatches) and never SQL directly.

mod backend;
mod postgres;
mod sqlite;

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

pub use backend::{Backend, Store};
pub use postgres::cluster::{EventListener, LeaderLock, Wake};
pub use postgres::is_postgres_url;

use crate::protocol::{ErrorDetail, Role};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL `{0}`: use sqlite:PATH or postgres://USER@HOST/DATABASE")]
    UnsupportedUrl(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("there is no database at {0} (check --db)")]
    Missing(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The write did not happen (its group's commit failed, or the writer
    /// has stopped); the client may retry.
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

/// An authenticated credential (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub limits: Limits,
}

/// A credential's own request rate, burst and connection cap; `None` means
/// the relay's protective default. Given to a screening system that posts
/// a district's results, or a console wall with many screens.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Limits {
    pub rate_per_sec: Option<f64>,
    pub burst: Option<f64>,
    pub max_connections: Option<u32>,
}

impl Eq for Limits {}

/// A credential as `token list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CredentialInfo {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub limits: Limits,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// An event as stored and streamed: its position and its wire JSON, encoded
/// once and shared by every connection that sends it.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub seq: i64,
    pub json: Arc<str>,
    /// The event as each role may see it, made by the first connection of
    /// that role that sends it and shared by all the others: fan-out to a
    /// thousand consoles redacts an alert at most once per role.
    per_role: Arc<[OnceLock<Arc<str>>; Role::ALL.len()]>,
    /// When the writer published it live (after its commit); `None` for
    /// events read back from the store. Timed to each console's socket
    /// for the relay's delivery-latency metric.
    published: Option<std::time::Instant>,
}

impl StoredEvent {
    pub fn new(seq: i64, json: Arc<str>) -> StoredEvent {
        StoredEvent {
            seq,
            json,
            per_role: Arc::new(std::array::from_fn(|_| OnceLock::new())),
            published: None,
        }
    }

    /// This event, stamped as published now.
    pub fn published_now(mut self) -> StoredEvent {
        self.published = Some(std::time::Instant::now());
        self
    }

    /// When it was published live, if it was.
    pub fn published_at(&self) -> Option<std::time::Instant> {
        self.published
    }

    /// Whether this event carries student data that [`crate::privacy`]
    /// must redact per role. Checked on the raw text: the tag is written
    /// unescaped only by the encoder, never by alert content.
    pub fn carries_alert(&self) -> bool {
        self.json.contains(r#""type":"alert""#)
    }

    /// Whether `role` receives this event at all. The district follows
    /// incident reports only: alerts, checklists and steps carry a school's
    /// casework, which the district sees aggregated, never event by event.
    /// Checked on the raw text: the event's own `type` is the first one in
    /// it (only `seq` and `at` come before).
    pub fn visible_to(&self, role: Role) -> bool {
        if role != Role::District {
            return true;
        }
        self.json
            .split_once(r#""type":""#)
            .is_some_and(|(_, rest)| rest.starts_with("report_"))
    }

    /// Whether this is a report event that may carry a student's name (a
    /// rule on the report requires it), which only some roles receive. The
    /// key is written unescaped only by the encoder.
    pub fn carries_report_name(&self) -> bool {
        self.json.contains(r#""name_required":true"#)
            && self
                .json
                .split_once(r#""type":""#)
                .is_some_and(|(_, rest)| rest.starts_with("report_"))
    }

    /// The text `role` receives: redacted once per role, then shared.
    pub fn for_role(&self, role: Role) -> Arc<str> {
        let redact: fn(Role, &str) -> String = if self.carries_alert() {
            crate::privacy::redact_event
        } else if self.carries_report_name() {
            crate::privacy::redact_report_event
        } else {
            return self.json.clone();
        };
        let slot = Role::ALL.iter().position(|r| *r == role).unwrap_or(0);
        self.per_role[slot]
            .get_or_init(|| redact(role, &self.json).into())
            .clone()
    }
}

/// What ingesting an alert did.
#[derive(Debug, Clone)]
pub enum IngestOutcome {
    /// A new alert: stored, with the events to broadcast (the alert's, and
    /// a checklist the case now calls for).
    Created {
        events: Vec<StoredEvent>,
        seq: i64,
        case_id: String,
    },
    /// The same alert was already stored; nothing new happened.
    Duplicate { seq: i64, case_id: String },
    /// The id is taken by a different alert. Refused so nothing is silently
    /// dropped under a colliding id.
    Conflict,
}

/// What applying a console command did.
#[derive(Debug, Clone)]
pub enum CommandOutcome {
    Applied {
        events: Vec<StoredEvent>,
        /// Returned to the sender only (a revealed identity).
        data: Option<serde_json::Value>,
    },
    Refused(ErrorDetail),
    /// The command id was seen before; this is the answer given then.
    Repeated {
        ok: bool,
        error: Option<ErrorDetail>,
    },
}

/// One write for the store to apply inside a group (see
/// [`Store::apply_group`]). The relay's single writer gathers whatever is
/// waiting into one group, so many producers share one commit.
#[derive(Debug, Clone)]
pub enum Write {
    /// Alerts from one request (one, or a batch), applied in order.
    Ingest {
        alerts: Vec<crate::protocol::Alert>,
        credential: Credential,
    },
    Command {
        credential: Credential,
        command: crate::protocol::Command,
    },
    /// Escalate overdue steps on at most `limit` checklists, as of `now`.
    Escalate { now: DateTime<Utc>, limit: usize },
    /// An audit entry no store change carries (a stream opened or closed).
    Audit(crate::audit::NewEntry),
}

/// What one [`Write`] did, in the order of the group.
#[derive(Debug, Clone)]
pub enum WriteOutcome {
    Ingested(Vec<IngestOutcome>),
    Command(CommandOutcome),
    /// Escalation events raised; `more` when checklists were left for the
    /// next slice.
    Escalated {
        events: Vec<StoredEvent>,
        more: bool,
    },
    Audited,
}

impl WriteOutcome {
    /// The events this write appended, in `seq` order, to publish.
    pub fn events(&self) -> Vec<&StoredEvent> {
        match self {
            WriteOutcome::Ingested(outcomes) => outcomes
                .iter()
                .flat_map(|o| match o {
                    IngestOutcome::Created { events, .. } => events.iter(),
                    _ => [].iter(),
                })
                .collect(),
            WriteOutcome::Command(CommandOutcome::Applied { events, .. })
            | WriteOutcome::Escalated { events, .. } => events.iter().collect(),
            WriteOutcome::Command(_) | WriteOutcome::Audited => Vec::new(),
        }
    }
}

/// The file behind a `sqlite:PATH` URL.
pub fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = path.split('?').next().unwrap_or(path);
    (!path.is_empty()).then(|| std::path::PathBuf::from(path))
}

/// Where the relay writes audit checkpoints by default: beside the
/// database. Operators copy this file off the machine (docs/security.md).
pub fn default_checkpoint_file(url: &str) -> Option<std::path::PathBuf> {
    sqlite_path(url).map(|p| {
        let mut name = p.as_os_str().to_owned();
        name.push(".checkpoints");
        std::path::PathBuf::from(name)
    })
}

/// Tokens are 256 random bits, shown once; the store keeps SHA-256 of them.
/// A fast hash is right here: the input is a random key, not a password.
pub fn hash_token(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

pub fn new_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(format!("cdk_{}", hex(&bytes)))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

pub(crate) fn parse_ts(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("bad timestamp `{s}`: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_hash_stably() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 64);
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_ne!(hash_token(&a), hash_token(&b));
        assert_ne!(hash_token(&a), a);
    }
}

// Rows both engines return (defined here, outside `sql/`, so that the two
// engines return one type).

/// One case's place in a student's record.
#[derive(Debug, Clone)]
pub struct StudentCase {
    pub case: crate::protocol::CaseSnapshot,
    pub outcome: Option<String>,
    pub closed_at: Option<chrono::DateTime<chrono::Utc>>,
    pub checkins: Vec<crate::followup::Checkin>,
    /// Applied changes, oldest first.
    pub level_changes: Vec<crate::lifecycle::LevelChange>,
}

/// An open real case as the district view counts it: no student data
/// beyond the school the alerts named.
#[derive(Debug, Clone)]
pub struct OpenCaseRow {
    pub case_id: String,
    pub level: crate::protocol::Level,
    pub imminent: bool,
    pub school: Option<String>,
}

/// Screening figures of one school over a period (statistics export).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScreeningTally {
    pub screened: i64,
    pub valid: i64,
    pub general: i64,
    pub key: i64,
    pub high: i64,
}
