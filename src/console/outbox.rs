//! The duty terminal's outbox: every action a responder takes is written
//! here (a local SQLite file, `synchronous=FULL`) before it is sent, and
//! leaves only when the relay has answered it. A relay that is down, a cut
//! network or a console that crashes mid-shift loses nothing: on the next
//! connection the actions go out in the order they were taken, with the
//! console's own time in them. The relay applies each command id once, so
//! sending again is always safe.

use std::collections::VecDeque;
use std::path::Path;
use std::str::FromStr;

use chrono::Utc;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous};

use crate::protocol::{Command, CommandOp};

pub struct Outbox {
    /// None: kept in memory only (tests, or a disk that failed to open).
    pool: Option<SqlitePool>,
    queue: VecDeque<Command>,
}

impl Outbox {
    pub fn in_memory() -> Outbox {
        Outbox {
            pool: None,
            queue: VecDeque::new(),
        }
    }

    /// Opens (creating) the outbox at `path` and loads what is waiting.
    pub async fn open(path: &Path) -> anyhow::Result<Outbox> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full);
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS outbox (
                 seq       INTEGER PRIMARY KEY AUTOINCREMENT,
                 id        TEXT    NOT NULL UNIQUE,
                 command   TEXT    NOT NULL,
                 queued_at TEXT    NOT NULL
             )",
        )
        .execute(&pool)
        .await?;
        let mut queue = VecDeque::new();
        for row in sqlx::query("SELECT command FROM outbox ORDER BY seq")
            .fetch_all(&pool)
            .await?
        {
            let text: String = row.try_get("command")?;
            match serde_json::from_str(&text) {
                Ok(cmd) => queue.push_back(cmd),
                // An unreadable row is kept on disk for inspection, not
                // sent and not silently deleted.
                Err(err) => tracing::error!(
                    error = %crate::logging::json_error(&err),
                    "unreadable outbox entry kept aside"
                ),
            }
        }
        Ok(Outbox {
            pool: Some(pool),
            queue,
        })
    }

    /// Records an action before it is sent.
    pub async fn push(&mut self, cmd: Command) {
        if let Some(pool) = &self.pool {
            let stored = match serde_json::to_string(&cmd) {
                Ok(text) => sqlx::query(
                    "INSERT OR IGNORE INTO outbox (id, command, queued_at) VALUES (?, ?, ?)",
                )
                .bind(&cmd.id)
                .bind(text)
                .bind(Utc::now().to_rfc3339())
                .execute(pool)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            if let Err(err) = stored {
                // Still queued in memory: it goes out while this console runs.
                tracing::error!(error = %err, "outbox write failed; action kept in memory only");
            }
        }
        self.queue.push_back(cmd);
    }

    /// The relay answered `id` (accepted or refused): it leaves the outbox.
    pub async fn answered(&mut self, id: &str) {
        self.queue.retain(|c| c.id != id);
        if let Some(pool) = &self.pool
            && let Err(err) = sqlx::query("DELETE FROM outbox WHERE id = ?")
                .bind(id)
                .execute(pool)
                .await
        {
            tracing::error!(error = %err, "outbox delete failed");
        }
    }

    /// Waiting actions, oldest first.
    pub fn waiting(&self) -> impl Iterator<Item = &Command> {
        self.queue.iter()
    }

    /// The responder's own actions waiting (quiet `view` records also wait,
    /// for the audit, but are not counted as actions).
    pub fn len(&self) -> usize {
        self.queue
            .iter()
            .filter(|c| !matches!(c.op, CommandOp::View { .. }) && !c.op.is_query())
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(id: &str) -> Command {
        Command {
            id: id.into(),
            client_at: None,
            terminal: None,
            op: CommandOp::Acknowledge {
                case_id: "C000001".into(),
            },
        }
    }

    #[tokio::test]
    async fn waiting_actions_survive_a_restart_in_order_until_answered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.sqlite");
        let mut outbox = Outbox::open(&path).await.unwrap();
        for id in ["a", "b", "c"] {
            outbox.push(cmd(id)).await;
        }
        outbox.answered("b").await;
        drop(outbox);
        let reopened = Outbox::open(&path).await.unwrap();
        let ids: Vec<&str> = reopened.waiting().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["a", "c"]);
    }
}
