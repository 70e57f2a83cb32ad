//! Durable storage. Everything the relay promises ("answered 201 means
//! stored", "seq never reused", "a command applies once") is kept here, in one
//! transaction per change.
//!
//! SQLite is the only backend today (`sqlite.rs`, migrations in
//! `migrations/sqlite/`). A Postgres backend is planned as a sibling module
//! with its own migrations; callers use [`Store`] and never SQL directly.

mod sqlite;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

pub use sqlite::Store;

use crate::protocol::{ErrorDetail, Role};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL `{0}`: use sqlite:PATH (postgres:// is not supported yet)")]
    UnsupportedUrl(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("there is no database at {0} (check --db)")]
    Missing(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// An authenticated credential (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub id: i64,
    pub name: String,
    pub role: Role,
}

/// A credential as `token list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CredentialInfo {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// An event as stored and streamed: its position and its wire JSON, encoded
/// once and shared by every connection that sends it.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub seq: i64,
    pub json: std::sync::Arc<str>,
}

impl StoredEvent {
    /// Whether this event carries student data that [`crate::privacy`]
    /// must redact per role. Checked on the raw text: the tag is written
    /// unescaped only by the encoder, never by alert content.
    pub fn carries_alert(&self) -> bool {
        self.json.contains(r#""type":"alert""#)
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
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
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
