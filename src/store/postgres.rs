//! The PostgreSQL engine. It runs the same queries and command logic as
//! the SQLite engine (`sql/`, compiled once per engine); this file holds
//! only what PostgreSQL does its own way: connecting, the writers' lock
//! and the logs' heads, and a few JSON and time expressions.
//!
//! Every write transaction first locks the one row of `log_heads`
//! (`SELECT ... FOR UPDATE`), the counterpart of SQLite's `BEGIN
//! IMMEDIATE`: writers from any connection, process or relay apply one
//! after the other, every statement after the lock sees everything
//! committed before it (READ COMMITTED takes a fresh snapshot per
//! statement), and the stream's `seq` is taken from that row inside the
//! committing transaction, so numbers commit in order and the stream stays
//! dense (a SEQUENCE could commit 8 before 7 and let a reader skip 7).
//! A 201 means committed with the server's `synchronous_commit` (on by
//! default; docs/operations.md says to keep it on).

use std::str::FromStr;
use std::sync::Arc;

use sqlx::Postgres;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::StoreError;
use crate::audit::GENESIS;

// The queries and the command logic, shared with the SQLite engine.
#[path = "sql/mod.rs"]
#[allow(clippy::duplicate_mod)] // on purpose: once per engine, see sql/mod.rs
mod sql;

/// The names the shared SQL (`sql/`) compiles against.
type Db = Postgres;
type DbRow = sqlx::postgres::PgRow;
type EngineStore = PgStore;

// Several relays on one database: LISTEN/NOTIFY and leadership.
pub(crate) mod cluster;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Handle to a PostgreSQL database. Cheap to clone (the pool is shared).
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    /// The incident reporting rules commands and steps are judged by.
    reporting: Arc<crate::reporting::Rules>,
}

/// A write transaction; it holds the `log_heads` lock from its first
/// statement ([`log_heads`]) until it commits or rolls back. Dropped
/// without a commit (an error on the way), sqlx rolls it back.
type Tx<'a> = sqlx::Transaction<'a, Postgres>;

/// Whether `url` names a PostgreSQL database.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://` or
    /// `postgresql://`; the database must exist, PostgreSQL does not make
    /// one on connect) and brings its schema up to date.
    pub async fn open(url: &str) -> Result<PgStore, StoreError> {
        if !is_postgres_url(url) {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        }
        // A writer waits for the `log_heads` lock at most 10 s (SQLite's
        // busy timeout): a stuck writer elsewhere then costs a 503, which
        // the client retries, not a relay that hangs.
        let options = PgConnectOptions::from_str(url)?.options([("lock_timeout", "10s")]);
        // A request waits at most 5 s for a connection: when the server is
        // gone, producers hear 503 (and retry) after that, not after
        // sqlx's default 30 s; under load the writer holds one connection
        // and reads share the rest, so a longer wait means trouble anyway.
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect_with(options)
            .await?;
        // sqlx holds an advisory lock while it migrates, so two relays
        // starting at once do not both apply a step.
        MIGRATOR.run(&pool).await?;
        let reporting = crate::reporting::Rules::embedded().map_err(|problems| {
            let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
            StoreError::Corrupt(format!("built-in reporting rules: {}", lines.join("; ")))
        })?;
        Ok(PgStore {
            pool,
            reporting: Arc::new(reporting),
        })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A write transaction. Its first statement must be [`log_heads`]
    /// (through `Logs::load`), which takes the writers' lock, so two
    /// processes (the relay and `token create`, or two relays) never
    /// interleave appends to the stream or the audit chain.
    async fn write_tx(&self) -> Result<Tx<'static>, StoreError> {
        Ok(self.pool.begin().await?)
    }
}

/// Takes the writers' lock (the `log_heads` row) and reads both heads: the
/// last event `seq`, the last audit `seq` and its hash. Must be the
/// transaction's first statement: what it reads after the lock includes
/// every write committed before (READ COMMITTED takes a fresh snapshot per
/// statement).
async fn log_heads(tx: &mut Tx<'_>) -> Result<(i64, i64, String), StoreError> {
    use sqlx::Row;
    let heads = sqlx::query("SELECT event_seq, audit_seq FROM log_heads WHERE id = 1 FOR UPDATE")
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| StoreError::Corrupt("the log_heads row is missing".into()))?;
    let event_seq: i64 = heads.try_get("event_seq")?;
    let audit_seq: i64 = heads.try_get("audit_seq")?;
    let audit_hash = if audit_seq == 0 {
        GENESIS.to_string()
    } else {
        sqlx::query_scalar("SELECT hash FROM audit WHERE seq = $1")
            .bind(audit_seq)
            .fetch_optional(&mut **tx)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("audit head {audit_seq} has no entry")))?
    };
    Ok((event_seq, audit_seq, audit_hash))
}

/// Moves the event head after events up to `seq` were inserted.
async fn event_head_moved(tx: &mut Tx<'_>, seq: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE log_heads SET event_seq = $1 WHERE id = 1")
        .bind(seq)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Moves the audit head after entries up to `seq` were inserted.
async fn audit_head_moved(tx: &mut Tx<'_>, seq: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE log_heads SET audit_seq = $1 WHERE id = 1")
        .bind(seq)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// SQL for the school an alert's JSON `body` (a column) names. Bodies are
/// stored as text (streamed byte for byte), so they are cast to look in.
fn alert_school(body: &str) -> String {
    format!("({body}::jsonb -> 'student' ->> 'school')")
}

/// SQL for the outcome recorded for step `step` (a column) in the
/// checklist JSON `progress` (a column); NULL while the step is open.
fn step_outcome(progress: &str, step: &str) -> String {
    format!("({progress}::jsonb -> 'steps' -> {step} ->> 'outcome')")
}

/// SQL that turns a timestamp text column into an instant that compares
/// across offsets (screening answer times keep the file's offset).
fn instant(col: &str) -> String {
    format!("({col})::timestamptz")
}

/// SQL for a top-level text field of an alert's JSON `body` (a column).
fn alert_field(body: &str, field: &str) -> String {
    format!("({body}::jsonb ->> '{field}')")
}

/// Before a bulk write: nothing to set up (the server's buffers are shared
/// by every connection).
#[allow(clippy::unused_async)]
async fn bulk_write_begin(_conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    Ok(())
}

/// Placeholder number `n` (see the SQLite engine's note on why this is an
/// engine's own: there it is a plain `?`, so the `n`s a statement uses
/// must appear in its text in the order they are bound).
fn placeholder(n: usize) -> String {
    format!("${n}")
}

/// Insert `rows` rows of `width` columns, replacing a row whose `key` is
/// taken (`updates`: `col = excluded.col, ...` for the other columns).
fn replace_rows(
    table: &str,
    columns: &str,
    (width, rows): (usize, usize),
    key: &str,
    updates: &str,
) -> String {
    let values: Vec<String> = (0..rows)
        .map(|row| {
            let cols: Vec<String> = (1..=width)
                .map(|c| format!("${}", row * width + c))
                .collect();
            format!("({})", cols.join(","))
        })
        .collect();
    format!(
        "INSERT INTO {table} ({columns}) VALUES {} ON CONFLICT ({key}) DO UPDATE SET {updates}",
        values.join(",")
    )
}
