//! The SQL both engines run, written once.
//!
//! This directory is compiled twice: as `store::sqlite::sql` and as
//! `store::postgres::sql` (each engine declares it with `#[path]`). Inside,
//! `engine` is the module that included it, and it names the concrete
//! types - `Db` (sqlx's database), `DbRow`, `Tx` (a write transaction) and
//! `EngineStore` (the engine's store handle) - and the few things the two
//! databases do differently: how a write transaction starts and holds
//! other writers off, where the logs' heads live, and two JSON lookups.
//!
//! Why not code generic over `sqlx::Database`: every bind, every column
//! read and every executor would need its own bound (`for<'q> &str:
//! Encode<'q, DB> + Type<DB>`, `for<'c> &'c mut DB::Connection:
//! Executor<'c>`, ...), repeated on every function because Rust does not
//! carry a trait's where-clauses to its users - more noise than the logic.
//! Compiled per engine, the code stays plain and both copies are
//! monomorphic, as hand-written ones were.
//!
//! So SQL here must mean the same on SQLite and PostgreSQL: numbered
//! placeholders (`$1`; sqlx binds them by number on SQLite too), booleans
//! compared as booleans (`NOT drill`, never `drill = 0`), no engine's own
//! functions (those live in the engine as `engine::...`). The store tests
//! run against both engines, and `tests/store/store_groups.rs` compares their
//! streams byte for byte.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::{QueryBuilder, Row};

use super as engine;
use engine::{Db, DbRow, EngineStore, Tx};

use super::super::{
    CommandOutcome, Credential, CredentialInfo, IngestOutcome, Limits, OpenCaseRow, ScreeningTally,
    StoreError, StoredEvent, StudentCase, Write, WriteOutcome, hash_token, hex, new_token,
    parse_ts, ts,
};
use crate::audit::{AuditKind, Checkpoint, Entry, NewEntry};
use crate::case;
use crate::logging::json_error;
use crate::playbook::{Library, Playbook, Progress, StepAction};
use crate::protocol::{
    Actor, Alert, AlertStatus, CaseSnapshot, CaseStatus, Category, CloseOutcome, Command,
    CommandOp, ErrorDetail, Event, EventBody, Level, Origin, Role,
};

pub(super) mod followup;
pub(super) mod reports;
pub(super) mod screening;

impl EngineStore {
    /// Creates a credential and returns its token. Only the hash is stored,
    /// so the token cannot be shown again.
    pub async fn create_credential(&self, name: &str, role: Role) -> Result<String, StoreError> {
        self.create_credential_by(name, role, "local").await
    }

    /// Creates a credential on behalf of `operator` (who ran the command),
    /// recorded in the audit trail.
    pub async fn create_credential_by(
        &self,
        name: &str,
        role: Role,
        operator: &str,
    ) -> Result<String, StoreError> {
        self.create_credential_with(name, role, operator, Limits::default())
            .await
    }

    /// [`Store::create_credential_by`] with the credential's own limits.
    pub async fn create_credential_with(
        &self,
        name: &str,
        role: Role,
        operator: &str,
        limits: Limits,
    ) -> Result<String, StoreError> {
        let token = new_token().map_err(|e| StoreError::Corrupt(format!("no randomness: {e}")))?;
        let now = Utc::now();
        let mut tx = self.write_tx().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO credentials (name, role, token_hash, created_at, rate_per_sec, burst, \
             max_connections) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(name)
        .bind(role.as_str())
        .bind(hash_token(&token))
        .bind(ts(now))
        .bind(limits.rate_per_sec)
        .bind(limits.burst)
        .bind(limits.max_connections.map(i64::from))
        .fetch_one(&mut *tx)
        .await?;
        let mut detail =
            serde_json::json!({"credential_id": id, "name": name, "role": role.as_str()});
        if limits != Limits::default() {
            detail["limits"] = serde_json::json!(limits);
        }
        let mut logs = Logs::load(&mut tx).await?;
        logs.audit(
            now,
            &NewEntry::new(AuditKind::CredentialCreated, detail).by(operator, "operator"),
        );
        logs.flush(&mut tx).await?;
        tx.commit().await?;
        Ok(token)
    }

    /// Every credential, oldest first (never the token: only its hash is
    /// kept, and that is not shown either).
    pub async fn list_credentials(&self) -> Result<Vec<CredentialInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, role, created_at, revoked_at, rate_per_sec, burst, max_connections \
             FROM credentials ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let role: String = r.try_get("role")?;
                Ok(CredentialInfo {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    limits: limits_from(r)?,
                    role: Role::parse(&role)
                        .ok_or_else(|| StoreError::Corrupt(format!("unknown role `{role}`")))?,
                    created_at: parse_ts(&r.try_get::<String, _>("created_at")?)?,
                    revoked_at: r
                        .try_get::<Option<String>, _>("revoked_at")?
                        .as_deref()
                        .map(parse_ts)
                        .transpose()?,
                })
            })
            .collect()
    }

    /// Revokes credential `id`; returns false if there is no live one.
    /// The relay ends its connections within a second (it polls
    /// [`Store::revoked_ids`]).
    pub async fn revoke_credential(&self, id: i64, operator: &str) -> Result<bool, StoreError> {
        let now = Utc::now();
        let mut tx = self.write_tx().await?;
        let revoked = sqlx::query(
            "UPDATE credentials SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL RETURNING name, role",
        )
        .bind(ts(now))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = revoked else {
            return Ok(false);
        };
        let (name, role): (String, String) = (row.try_get("name")?, row.try_get("role")?);
        let mut logs = Logs::load(&mut tx).await?;
        logs.audit(
            now,
            &NewEntry::new(
                AuditKind::CredentialRevoked,
                serde_json::json!({"credential_id": id, "name": name, "role": role}),
            )
            .by(operator, "operator"),
        );
        logs.flush(&mut tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Ids of every revoked credential.
    pub async fn revoked_ids(&self) -> Result<HashSet<i64>, StoreError> {
        let ids: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM credentials WHERE revoked_at IS NOT NULL")
                .fetch_all(&self.pool)
                .await?;
        Ok(ids.into_iter().collect())
    }

    /// Appends one audit entry in its own transaction (connections opened
    /// and closed, cases viewed outside a command).
    pub async fn audit(&self, entry: &NewEntry, now: DateTime<Utc>) -> Result<Entry, StoreError> {
        let mut tx = self.write_tx().await?;
        let mut logs = Logs::load(&mut tx).await?;
        let stored = logs.audit(now, entry);
        logs.flush(&mut tx).await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// Audit entries with `seq > after`, oldest first, at most `limit`.
    pub async fn audit_after(&self, after: i64, limit: i64) -> Result<Vec<Entry>, StoreError> {
        let rows = sqlx::query("SELECT * FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// Audit entries about one case, oldest first.
    pub async fn audit_for_case(&self, case_id: &str) -> Result<Vec<Entry>, StoreError> {
        let rows = sqlx::query("SELECT * FROM audit WHERE case_id = $1 ORDER BY seq")
            .bind(case_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// The chain's current head, for checkpoints kept elsewhere.
    pub async fn audit_head(&self) -> Result<Option<Checkpoint>, StoreError> {
        let row = sqlx::query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(Checkpoint {
                seq: r.try_get("seq")?,
                hash: r.try_get("hash")?,
            })
        })
        .transpose()
    }

    /// Finds the live credential a token belongs to. The lookup is by hash,
    /// so the secret itself is never compared byte by byte.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Credential>, StoreError> {
        let row = sqlx::query(
            "SELECT id, name, role, rate_per_sec, burst, max_connections FROM credentials \
             WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(hash_token(token))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let role: String = r.try_get("role")?;
            Ok(Credential {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                role: Role::parse(&role)
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown role `{role}`")))?,
                limits: limits_from(&r)?,
            })
        })
        .transpose()
    }

    /// The highest `seq` stored (0 when empty).
    pub async fn latest_seq(&self) -> Result<i64, StoreError> {
        let seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(seq)
    }

    /// Events with `seq > since`, oldest first, at most `limit`.
    pub async fn events_after(
        &self,
        since: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query("SELECT seq, body FROM events WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(since)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|r| {
                let body: String = r.try_get("body")?;
                Ok(StoredEvent::new(r.try_get("seq")?, Arc::from(body)))
            })
            .collect()
    }

    /// Stores an alert: dedup by id, open a case or join the student's open
    /// case, append the event. All in one transaction: when this returns
    /// `Created`, the alert, the case change and the event are on disk.
    pub async fn ingest_alert(
        &self,
        alert: &Alert,
        credential: &Credential,
        now: DateTime<Utc>,
        library: &Library,
    ) -> Result<IngestOutcome, StoreError> {
        let write = Write::Ingest {
            alerts: vec![alert.clone()],
            credential: credential.clone(),
        };
        match self
            .apply_group(std::slice::from_ref(&write), now, library)
            .await?
            .pop()
        {
            Some(WriteOutcome::Ingested(mut outcomes)) if outcomes.len() == 1 => {
                Ok(outcomes.remove(0))
            }
            _ => Err(StoreError::Corrupt("ingest gave no outcome".into())),
        }
    }

    /// Applies a group of writes in one transaction with one commit (one
    /// fsync), each write's outcome its own: a refused command or a
    /// conflicting alert changes nothing and spoils nothing for the rest.
    /// Writes apply in order, exactly as if each were applied alone, so the
    /// stream is the same. If the commit fails, nothing of the group is
    /// stored and the error is every write's answer.
    pub async fn apply_group(
        &self,
        writes: &[Write],
        now: DateTime<Utc>,
        library: &Library,
    ) -> Result<Vec<WriteOutcome>, StoreError> {
        let started = std::time::Instant::now();
        let mut tx = self.write_tx().await?;
        let mut logs = Logs::load(&mut tx).await?;
        let mut outcomes = Vec::with_capacity(writes.len());
        let mut i = 0;
        while i < writes.len() {
            match &writes[i] {
                Write::Ingest { .. } => {
                    // Consecutive ingests are one run: one load, one insert
                    // per table, however many producers they came from.
                    let run_end = writes[i..]
                        .iter()
                        .position(|w| !matches!(w, Write::Ingest { .. }))
                        .map_or(writes.len(), |n| i + n);
                    let mut items = Vec::new();
                    let mut sizes = Vec::new();
                    for write in &writes[i..run_end] {
                        if let Write::Ingest { alerts, credential } = write {
                            sizes.push(alerts.len());
                            items.extend(alerts.iter().map(|a| (a, credential)));
                        }
                    }
                    let mut all = ingest_run(&mut tx, &mut logs, &items, now, library)
                        .await?
                        .into_iter();
                    for n in sizes {
                        outcomes.push(WriteOutcome::Ingested(all.by_ref().take(n).collect()));
                    }
                    i = run_end;
                    continue;
                }
                Write::Command {
                    credential,
                    command,
                } => outcomes.push(WriteOutcome::Command(
                    command_in(
                        &mut tx,
                        &mut logs,
                        credential,
                        command,
                        now,
                        (library, &self.reporting),
                    )
                    .await?,
                )),
                Write::Escalate { now, limit } => {
                    let (mut events, more) =
                        escalate_in(&mut tx, &mut logs, *now, *limit, library).await?;
                    events.extend(reports::escalate_reports_in(&mut tx, &mut logs, *now).await?);
                    let (missed, more_missed) =
                        followup::escalate_checkins(&mut tx, &mut logs, *now, *limit).await?;
                    events.extend(missed);
                    outcomes.push(WriteOutcome::Escalated {
                        events,
                        more: more || more_missed,
                    });
                }
                Write::Audit(entry) => {
                    logs.audit(now, entry);
                    outcomes.push(WriteOutcome::Audited);
                }
            }
            i += 1;
        }
        logs.flush(&mut tx).await?;
        let applied = started.elapsed();
        tx.commit().await?;
        tracing::debug!(
            apply_us = u64::try_from(applied.as_micros()).unwrap_or(u64::MAX),
            commit_us = u64::try_from(started.elapsed().saturating_sub(applied).as_micros())
                .unwrap_or(u64::MAX),
            "group transaction"
        );
        Ok(outcomes)
    }

    /// Applies a console command once. A command id seen before from the
    /// same credential returns the answer given then and changes nothing.
    /// A refused command changes nothing but is remembered, so a re-send
    /// gets the same answer.
    pub async fn apply_command(
        &self,
        credential: &Credential,
        command: &Command,
        now: DateTime<Utc>,
        library: &Library,
    ) -> Result<CommandOutcome, StoreError> {
        let write = Write::Command {
            credential: credential.clone(),
            command: command.clone(),
        };
        match self
            .apply_group(std::slice::from_ref(&write), now, library)
            .await?
            .pop()
        {
            Some(WriteOutcome::Command(outcome)) => Ok(outcome),
            _ => Err(StoreError::Corrupt("command gave no outcome".into())),
        }
    }

    /// Appends an escalation event for each step of an open case that is
    /// overdue at `now` and has not escalated before, all in one
    /// transaction. The relay's scanner uses [`Write::Escalate`] in bounded
    /// slices instead, so a storm never holds the writer for long.
    pub async fn escalate_overdue(
        &self,
        now: DateTime<Utc>,
        library: &Library,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let write = Write::Escalate {
            now,
            limit: usize::MAX,
        };
        match self
            .apply_group(std::slice::from_ref(&write), now, library)
            .await?
            .pop()
        {
            Some(WriteOutcome::Escalated { events, .. }) => Ok(events),
            _ => Err(StoreError::Corrupt("escalation gave no outcome".into())),
        }
    }

    /// The soonest moment a checklist of an open case may go overdue, or a
    /// scheduled check-in falls due: the escalation scanner sleeps until then.
    pub async fn next_deadline(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let next: Option<String> = sqlx::query_scalar(
            "SELECT MIN(next_due_at) FROM checklists WHERE next_due_at IS NOT NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        // Report stages go overdue like steps (see reports.rs), and
        // scheduled check-ins fall due (see followup.rs).
        let report: Option<String> = sqlx::query_scalar(reports::NEXT_REPORT_DUE)
            .fetch_one(&self.pool)
            .await?;
        let step = next.as_deref().map(parse_ts).transpose()?;
        let report = report.as_deref().map(parse_ts).transpose()?;
        let checkin = self.next_checkin_due().await?;
        Ok(step.into_iter().chain(report).chain(checkin).min())
    }

    /// Steps escalated as overdue that are still open, on open real
    /// cases: the overdue count an operator graphs (`/metrics`). Read from
    /// the escalation rows and each step's record, not by evaluating
    /// every checklist.
    pub async fn overdue_steps(&self) -> Result<i64, StoreError> {
        let sql = format!(
            "SELECT COUNT(*) FROM escalations e
             JOIN cases c ON c.id = e.case_id
             JOIN checklists k ON k.case_id = e.case_id AND k.playbook = e.playbook
             WHERE c.status <> 'closed' AND c.mode = 'actual'
               AND {} IS NULL",
            engine::step_outcome("k.progress", "e.step")
        );
        Ok(sqlx::query_scalar(&sql).fetch_one(&self.pool).await?)
    }

    /// The checklists on a case, as (playbook id, progress).
    pub async fn checklists(&self, case_id: &str) -> Result<Vec<(String, Progress)>, StoreError> {
        let rows = sqlx::query(
            "SELECT playbook, progress FROM checklists WHERE case_id = $1 ORDER BY added_at, playbook",
        )
        .bind(case_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("playbook")?,
                    progress_from(&r.try_get::<String, _>("progress")?)?,
                ))
            })
            .collect()
    }

    /// One case's current state, if it exists.
    pub async fn case(&self, case_id: &str) -> Result<Option<CaseSnapshot>, StoreError> {
        let row = sqlx::query("SELECT * FROM cases WHERE id = $1")
            .bind(case_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(case_from_row).transpose()
    }

    /// Every event about one case, oldest first.
    pub async fn events_for_case(&self, case_id: &str) -> Result<Vec<Event>, StoreError> {
        let rows = sqlx::query("SELECT body FROM events WHERE case_id = $1 ORDER BY seq")
            .bind(case_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let body: String = r.try_get("body")?;
                serde_json::from_str(&body)
                    .map_err(|e| StoreError::Corrupt(format!("stored event: {}", json_error(&e))))
            })
            .collect()
    }

    /// Ids of cases opened in `[from, to)`, oldest first; drills and tests
    /// only when asked for.
    pub async fn case_ids_opened(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        include_drills: bool,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT id FROM cases WHERE opened_at >= $1 AND opened_at < $2 \
             AND ($3 OR alert_status = 'actual') ORDER BY opened_at, num",
        )
        .bind(ts(from))
        .bind(ts(to))
        .bind(include_drills)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>("id")?))
            .collect()
    }

    /// Ids of the cases of one drill.
    pub async fn case_ids_of_exercise(&self, exercise_id: &str) -> Result<Vec<String>, StoreError> {
        let rows =
            sqlx::query("SELECT id FROM cases WHERE exercise_id = $1 ORDER BY opened_at, num")
                .bind(exercise_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>("id")?))
            .collect()
    }

    /// How many alerts are stored (for checks and tests).
    pub async fn alert_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM alerts")
            .fetch_one(&self.pool)
            .await?)
    }
}

/// [`Store::apply_command`] inside a group's transaction.
async fn command_in(
    tx: &mut Tx<'_>,
    logs: &mut Logs,
    credential: &Credential,
    command: &Command,
    now: DateTime<Utc>,
    (library, reporting): (&Library, &crate::reporting::Rules),
) -> Result<CommandOutcome, StoreError> {
    if let Some(row) =
        sqlx::query("SELECT result FROM commands WHERE credential_id = $1 AND id = $2")
            .bind(credential.id)
            .bind(&command.id)
            .fetch_optional(&mut **tx)
            .await?
    {
        let stored: String = row.try_get("result")?;
        let error: Option<ErrorDetail> = serde_json::from_str(&stored).map_err(|e| {
            StoreError::Corrupt(format!("stored command result: {}", json_error(&e)))
        })?;
        return Ok(CommandOutcome::Repeated {
            ok: error.is_none(),
            error,
        });
    }

    let origin = Origin {
        by: Actor {
            name: credential.name.clone(),
            role: credential.role,
        },
        command_id: command.id.clone(),
        terminal: command.terminal.clone(),
        client_at: command.client_at,
    };
    let mut work = CommandTx {
        tx: &mut *tx,
        logs: &mut *logs,
        now,
        library,
        reporting,
        origin,
    };
    let (applied, drill) = work.apply(&command.op).await?;
    // A reveal's answer (the identity) goes back to the sender only; it
    // is never written to the command record or the audit.
    let (applied, data) = match applied {
        Ok((events, data)) => (Ok(events), data),
        Err(refusal) => (Err(refusal), None),
    };
    let mut detail = command.op.audit_detail();
    detail["command_id"] = command.id.clone().into();
    detail["op"] = command.op.name().into();
    if let Some(at) = command.client_at {
        detail["client_at"] = at.to_rfc3339().into();
    }
    let kind = match &applied {
        Ok(events) => {
            detail["events"] = events.iter().map(|e| e.seq).collect::<Vec<_>>().into();
            AuditKind::CommandAccepted
        }
        Err(refusal) => {
            detail["refused"] = refusal.code.clone().into();
            AuditKind::CommandRefused
        }
    };
    if matches!(command.op, CommandOp::View { .. }) && applied.is_ok() {
        detail.as_object_mut().map(|d| d.remove("events"));
    }
    let kind = match (&command.op, kind) {
        (CommandOp::View { .. }, AuditKind::CommandAccepted) => AuditKind::CaseViewed,
        (CommandOp::Student { .. }, AuditKind::CommandAccepted) => AuditKind::CaseViewed,
        (CommandOp::Reveal { .. }, AuditKind::CommandAccepted) => AuditKind::IdentityRevealed,
        (_, kind) => kind,
    };
    logs.audit(
        now,
        &NewEntry::new(kind, detail)
            .by(&credential.name, credential.role.as_str())
            .on_case(command.op.case_id(), drill)
            .from_terminal(command.terminal.as_deref()),
    );
    let outcome = match applied {
        Ok(events) => CommandOutcome::Applied { events, data },
        Err(refusal) => CommandOutcome::Refused(refusal),
    };
    let error = match &outcome {
        CommandOutcome::Refused(e) => Some(e.clone()),
        _ => None,
    };
    let result = serde_json::to_string(&error)
        .map_err(|e| StoreError::Corrupt(format!("command result does not encode: {e}")))?;
    sqlx::query(
        "INSERT INTO commands (credential_id, id, received_at, client_at, terminal, op, \
         case_id, result) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(credential.id)
    .bind(&command.id)
    .bind(ts(now))
    .bind(command.client_at.map(|t| t.to_rfc3339()))
    .bind(&command.terminal)
    .bind(command.op.name())
    .bind(command.op.case_id())
    .bind(result)
    .execute(&mut **tx)
    .await?;
    Ok(outcome)
}

/// Raises escalations for at most `limit` checklists whose next deadline
/// has passed, soonest first; says whether more are waiting. Only checklists
/// with a deadline at or before `now` are read (an indexed range), never
/// every open case, and each gets its next deadline recomputed.
async fn escalate_in(
    tx: &mut Tx<'_>,
    logs: &mut Logs,
    now: DateTime<Utc>,
    limit: usize,
    library: &Library,
) -> Result<(Vec<StoredEvent>, bool), StoreError> {
    let fetch = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
    let mut rows = sqlx::query(
        "SELECT k.case_id, k.playbook, k.progress, c.alert_status, c.status FROM checklists k \
         JOIN cases c ON c.id = k.case_id \
         WHERE k.next_due_at IS NOT NULL AND k.next_due_at <= $1 \
         ORDER BY k.next_due_at, k.case_id, k.playbook LIMIT $2",
    )
    .bind(ts(now))
    .bind(fetch)
    .fetch_all(&mut **tx)
    .await?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let mut raised: HashMap<(String, String), HashSet<String>> = HashMap::new();
    let case_ids: HashSet<String> = rows
        .iter()
        .map(|r| r.try_get::<String, _>("case_id"))
        .collect::<Result<_, _>>()?;
    let case_ids: Vec<String> = case_ids.into_iter().collect();
    for chunk in case_ids.chunks(MAX_BINDS) {
        let mut q = QueryBuilder::<Db>::new(
            "SELECT case_id, playbook, step FROM escalations WHERE case_id IN (",
        );
        let mut list = q.separated(", ");
        for id in chunk {
            list.push_bind(id);
        }
        list.push_unseparated(")");
        for r in q.build().fetch_all(&mut **tx).await? {
            raised
                .entry((r.try_get(0)?, r.try_get(1)?))
                .or_default()
                .insert(r.try_get(2)?);
        }
    }
    let mut events = Vec::new();
    let mut new_rows: Vec<(String, String, String, i64)> = Vec::new();
    let mut deadlines: Vec<(String, String, Option<String>)> = Vec::new();
    for row in rows {
        let case_id: String = row.try_get("case_id")?;
        let playbook_id: String = row.try_get("playbook")?;
        let drill = row.try_get::<String, _>("alert_status")? != "actual";
        let closed = row.try_get::<String, _>("status")? == "closed";
        let playbook = match library.get(&playbook_id) {
            Some(pb) if !closed => pb,
            // A closed case, or a playbook this relay no longer runs: nothing
            // on it can escalate any more.
            _ => {
                deadlines.push((case_id, playbook_id, None));
                continue;
            }
        };
        let progress = progress_from(&row.try_get::<String, _>("progress")?)?;
        let done = raised
            .entry((case_id.clone(), playbook_id.clone()))
            .or_default();
        for overdue in progress.overdue(playbook, now) {
            if !done.insert(overdue.step.id.clone()) {
                continue;
            }
            let to = overdue.escalate_to.unwrap_or(overdue.step.role);
            let event = logs.event(
                now,
                EventBody::Escalation {
                    case_id: case_id.clone(),
                    playbook: playbook_id.clone(),
                    step: overdue.step.id.clone(),
                    to,
                    owner: overdue.step.role,
                    due: overdue.due,
                    reason: overdue.reason,
                },
            )?;
            logs.audit(
                now,
                &NewEntry::new(
                    AuditKind::EscalationRaised,
                    serde_json::json!({
                        "playbook": playbook_id, "step": overdue.step.id, "seq": event.seq,
                        "to": to.as_str(),
                        "owner": overdue.step.role.as_str(),
                    }),
                )
                .on_case(&case_id, drill),
            );
            new_rows.push((
                case_id.clone(),
                playbook_id.clone(),
                overdue.step.id.clone(),
                event.seq,
            ));
            events.push(event);
        }
        let next = next_deadline(&progress, playbook, done, now);
        // A step due exactly now is not overdue yet: look again just after.
        let next = next.map(|t| {
            if t <= now {
                now + chrono::Duration::milliseconds(1)
            } else {
                t
            }
        });
        deadlines.push((case_id, playbook_id, next.map(ts)));
    }
    logs.flush_events(tx).await?;
    let at = ts(now);
    for chunk in new_rows.chunks(MAX_BINDS / 5) {
        let mut insert =
            QueryBuilder::<Db>::new("INSERT INTO escalations (case_id, playbook, step, at, seq) ");
        insert.push_values(chunk, |mut row, (case_id, playbook, step, seq)| {
            row.push_bind(case_id)
                .push_bind(playbook)
                .push_bind(step)
                .push_bind(&at)
                .push_bind(*seq);
        });
        insert.build().execute(&mut **tx).await?;
    }
    set_deadlines(tx, &deadlines).await?;
    Ok((events, more))
}

/// Stores each checklist's next deadline with one statement per chunk.
async fn set_deadlines(
    tx: &mut Tx<'_>,
    deadlines: &[(String, String, Option<String>)],
) -> Result<(), StoreError> {
    for chunk in deadlines.chunks(MAX_BINDS / 3) {
        let mut update = QueryBuilder::<Db>::new("WITH v(case_id, playbook, next_due_at) AS (");
        update.push_values(chunk, |mut row, (case_id, playbook, next)| {
            row.push_bind(case_id).push_bind(playbook).push_bind(next);
        });
        update.push(
            ") UPDATE checklists SET next_due_at = v.next_due_at FROM v \
             WHERE checklists.case_id = v.case_id AND checklists.playbook = v.playbook",
        );
        update.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// Recomputes one checklist's next deadline after a change to it.
async fn refresh_deadline(
    tx: &mut Tx<'_>,
    case_id: &str,
    playbook: &Playbook,
    progress: &Progress,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let escalated: HashSet<String> =
        sqlx::query_scalar("SELECT step FROM escalations WHERE case_id = $1 AND playbook = $2")
            .bind(case_id)
            .bind(&playbook.id)
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .collect();
    let next = next_deadline(progress, playbook, &escalated, now).map(ts);
    sqlx::query("UPDATE checklists SET next_due_at = $1 WHERE case_id = $2 AND playbook = $3")
        .bind(next)
        .bind(case_id)
        .bind(&playbook.id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// One command being applied inside its transaction. Each operation
/// returns `Ok(Ok(events))` when applied, `Ok(Err(refusal))` when refused
/// (nothing written), and `Err` only for storage failures.
struct CommandTx<'t, 'c> {
    tx: &'t mut Tx<'c>,
    logs: &'t mut Logs,
    now: DateTime<Utc>,
    library: &'t Library,
    reporting: &'t crate::reporting::Rules,
    origin: Origin,
}

/// Events to broadcast, and data for the sender alone.
type Applied = Result<(Vec<StoredEvent>, Option<serde_json::Value>), ErrorDetail>;

fn refuse(code: &str, message: impl Into<String>) -> Applied {
    Err(ErrorDetail::new(code, message))
}

/// Longest close note or override reason.
const MAX_CLOSE_TEXT: usize = crate::protocol::MAX_SUMMARY_CHARS;

impl CommandTx<'_, '_> {
    /// Applies `op`; also says whether the case is a drill (for the audit).
    async fn apply(&mut self, op: &CommandOp) -> Result<(Applied, bool), StoreError> {
        let case_id = op.case_id();
        let Some(row) = sqlx::query("SELECT * FROM cases WHERE id = $1")
            .bind(case_id)
            .fetch_optional(&mut **self.tx)
            .await?
        else {
            return Ok((
                Err(
                    ErrorDetail::new("unknown_case", format!("there is no case `{case_id}`"))
                        .with_field("case_id"),
                ),
                false,
            ));
        };
        let case = case_from_row(&row)?;
        let drill = case.alert_status != AlertStatus::Actual;
        // Looking at a closed case is allowed (and audited), and so is
        // re-opening it with a reason; changing it otherwise not. Its
        // incident report goes on: the final report often comes after.
        if case.status == CaseStatus::Closed
            && !matches!(
                op,
                CommandOp::View { .. }
                    | CommandOp::Student { .. }
                    | CommandOp::Reopen { .. }
                    | CommandOp::OpenReport { .. }
                    | CommandOp::SubmitReport { .. }
                    | CommandOp::AcceptReport { .. }
                    | CommandOp::ReturnReport { .. }
            )
        {
            return Ok((
                refuse(
                    "case_closed",
                    format!("case {case_id} is closed; nothing more can be recorded on it"),
                ),
                drill,
            ));
        }
        let snapshot = case.clone();
        let applied = match op {
            CommandOp::View { .. } => Ok((Vec::new(), None)),
            // The relay answers `student` itself (relay/student.rs); one
            // that reaches the store is a look at the case, like `view`.
            CommandOp::Student { .. } => Ok((Vec::new(), None)),
            CommandOp::Reveal { reason, .. } => self.reveal(&case, reason).await?,
            CommandOp::Acknowledge { .. } => self.acknowledge(case).await?,
            CommandOp::Step {
                playbook,
                step,
                action,
                ..
            } => self.step(&case, playbook, step, action).await?,
            CommandOp::AddPlaybook { playbook, .. } => self.add_playbook(&case, playbook).await?,
            CommandOp::Close {
                outcome,
                note,
                override_reason,
                ..
            } => {
                self.close(case, *outcome, note.as_deref(), override_reason.as_deref())
                    .await?
            }
            CommandOp::OpenReport { rule, .. } => self.open_report(&case, rule).await?,
            CommandOp::SubmitReport {
                stage, narrative, ..
            } => {
                self.submit_report(&case, *stage, narrative.as_deref())
                    .await?
            }
            CommandOp::AcceptReport { stage, .. } => {
                self.review_report(&case, *stage, None).await?
            }
            CommandOp::ReturnReport { stage, reason, .. } => {
                self.review_report(&case, *stage, Some(reason)).await?
            }
            CommandOp::ProposeLevel {
                level,
                imminent,
                reason,
                ..
            } => {
                let to = crate::lifecycle::Grade {
                    level: *level,
                    imminent: *imminent,
                };
                self.propose_level(case, to, reason).await?
            }
            CommandOp::ConfirmLevel { .. } => self.confirm_level(case).await?,
            CommandOp::Monitor { .. } => self.monitor(case).await?,
            CommandOp::Reopen { reason, .. } => self.reopen(case, reason).await?,
            CommandOp::Checkin {
                checkin,
                outcome,
                note,
                raise,
                ..
            } => {
                self.checkin(case, *checkin, *outcome, note.as_deref(), raise.as_ref())
                    .await?
            }
            // Questions are answered by the stream (`relay::queries`),
            // never stored.
            CommandOp::DistrictView {} | CommandOp::PeriodCharts { .. } => refuse(
                "invalid_command",
                format!("`{}` is a question, not a change", op.name()),
            ),
        };
        // A recorded step may be the sign a reporting rule waits for.
        let applied = match (applied, op) {
            (Ok((mut events, data)), CommandOp::Step { .. }) => {
                events.extend(self.report_after_step(&snapshot).await?);
                Ok((events, data))
            }
            (applied, _) => applied,
        };
        Ok((applied, drill))
    }

    /// The student's identity as the latest alerts gave it.
    async fn reveal(&mut self, case: &CaseSnapshot, reason: &str) -> Result<Applied, StoreError> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 200 {
            return Ok(Err(ErrorDetail::new(
                "reason_required",
                "say briefly why you need the student's identity (1 to 200 characters)",
            )
            .with_field("reason")));
        }
        let rows = sqlx::query("SELECT body FROM alerts WHERE case_id = $1 ORDER BY seq")
            .bind(&case.id)
            .fetch_all(&mut **self.tx)
            .await?;
        let mut identity: Option<crate::protocol::Student> = None;
        for row in rows {
            let body: String = row.try_get("body")?;
            let alert: Alert = serde_json::from_str(&body)
                .map_err(|e| StoreError::Corrupt(format!("stored alert: {}", json_error(&e))))?;
            match &mut identity {
                Some(known) => case::merge_identity(known, &alert.student),
                None => identity = Some(alert.student),
            }
        }
        Ok(Ok((
            Vec::new(),
            Some(
                serde_json::json!({ "student": identity.unwrap_or_else(|| crate::protocol::Student {
                id: case.student_id.clone(),
                name: None,
                school: None,
                grade: None,
                class: None,
                under_14: None,
            }) }),
            ),
        )))
    }

    async fn acknowledge(&mut self, mut case: CaseSnapshot) -> Result<Applied, StoreError> {
        let actor = self.origin.by.clone();
        if let Err(case::AckRefusal::AlreadyAcknowledged { by }) =
            case::acknowledge(&mut case, &actor, self.now)
        {
            let by = by
                .map(|a| format!("{} ({})", a.name, a.role))
                .unwrap_or_default();
            return Ok(refuse(
                "already_acknowledged",
                format!("case {} was already acknowledged by {by}", case.id),
            ));
        }
        sqlx::query(
            "UPDATE cases SET status = 'acknowledged', acknowledged_by_name = $1, \
             acknowledged_by_role = $2, acknowledged_at = $3, updated_at = $4 WHERE id = $5",
        )
        .bind(&actor.name)
        .bind(actor.role.as_str())
        .bind(ts(self.now))
        .bind(ts(self.now))
        .bind(&case.id)
        .execute(&mut **self.tx)
        .await?;
        let event = self.logs.event(
            self.now,
            EventBody::CaseAcknowledged {
                case_id: case.id.clone(),
                by: actor,
                case,
                origin: Some(self.origin.clone()),
            },
        )?;
        Ok(Ok((vec![event], None)))
    }

    async fn step(
        &mut self,
        case: &CaseSnapshot,
        playbook_id: &str,
        step: &str,
        action: &StepAction,
    ) -> Result<Applied, StoreError> {
        let Some(row) =
            sqlx::query("SELECT progress FROM checklists WHERE case_id = $1 AND playbook = $2")
                .bind(&case.id)
                .bind(playbook_id)
                .fetch_optional(&mut **self.tx)
                .await?
        else {
            return Ok(Err(ErrorDetail::new(
                "no_such_checklist",
                format!("case {} has no `{playbook_id}` checklist", case.id),
            )
            .with_field("playbook")));
        };
        let Some(playbook) = self.library.get(playbook_id) else {
            return Ok(refuse(
                "unknown_playbook",
                format!("this relay no longer runs playbook `{playbook_id}`"),
            ));
        };
        let mut progress = progress_from(&row.try_get::<String, _>("progress")?)?;
        let change = match progress.apply(playbook, step, self.origin.by.role, self.now, action) {
            Ok(change) => change,
            Err(refusal) => {
                return Ok(Err(
                    ErrorDetail::new(refusal.code(), refusal.to_string()).with_field("step")
                ));
            }
        };
        let case_ref = (case.id.as_str(), Some(case.student_id.as_str()));
        followup::Calendars::default()
            .count(self.tx, case_ref, None, playbook, &mut progress)
            .await?;
        sqlx::query("UPDATE checklists SET progress = $1 WHERE case_id = $2 AND playbook = $3")
            .bind(progress_json(&progress)?)
            .bind(&case.id)
            .bind(playbook_id)
            .execute(&mut **self.tx)
            .await?;
        refresh_deadline(self.tx, &case.id, playbook, &progress, self.now).await?;
        touch_case(self.tx, &case.id, self.now).await?;
        let event = self.logs.event(
            self.now,
            EventBody::StepUpdated {
                case_id: case.id.clone(),
                change,
                progress,
                origin: self.origin.clone(),
            },
        )?;
        Ok(Ok((vec![event], None)))
    }

    async fn add_playbook(
        &mut self,
        case: &CaseSnapshot,
        playbook_id: &str,
    ) -> Result<Applied, StoreError> {
        if !self.origin.by.role.can_act() {
            return Ok(refuse("forbidden", "only responders may add playbooks"));
        }
        let Some(playbook) = self.library.get(playbook_id) else {
            let known: Vec<&str> = self
                .library
                .playbooks()
                .iter()
                .map(|p| p.id.as_str())
                .collect();
            return Ok(Err(ErrorDetail::new(
                "unknown_playbook",
                format!(
                    "no playbook `{playbook_id}`; this relay runs {}",
                    known.join(", ")
                ),
            )
            .with_field("playbook")));
        };
        if has_checklist(self.tx, &case.id, playbook_id).await? {
            return Ok(refuse(
                "already_attached",
                format!("case {} already has the `{playbook_id}` checklist", case.id),
            ));
        }
        let event = attach_checklist(
            self.tx,
            self.logs,
            &case.id,
            playbook,
            self.now,
            Some(self.origin.clone()),
        )
        .await?;
        touch_case(self.tx, &case.id, self.now).await?;
        Ok(Ok((vec![event], None)))
    }

    async fn close(
        &mut self,
        mut case: CaseSnapshot,
        outcome: CloseOutcome,
        note: Option<&str>,
        override_reason: Option<&str>,
    ) -> Result<Applied, StoreError> {
        let role = self.origin.by.role;
        if let Err(case::CloseRefusal::Forbidden(role)) = case::close_permit(role, Vec::new(), None)
        {
            return Ok(refuse(
                "forbidden",
                format!("a case is closed by a counselor or a leader, not by {role}"),
            ));
        }
        for (field, text) in [("note", note), ("override_reason", override_reason)] {
            if text.is_some_and(|t| t.chars().count() > MAX_CLOSE_TEXT) {
                return Ok(Err(ErrorDetail::new(
                    "text_too_long",
                    format!("`{field}` is longer than {MAX_CLOSE_TEXT} characters"),
                )
                .with_field(field)));
            }
        }
        let override_reason = override_reason.map(str::trim).filter(|r| !r.is_empty());
        let rows = sqlx::query("SELECT playbook, progress FROM checklists WHERE case_id = $1")
            .bind(&case.id)
            .fetch_all(&mut **self.tx)
            .await?;
        let mut open_required = Vec::new();
        for row in rows {
            let playbook_id: String = row.try_get("playbook")?;
            let progress = progress_from(&row.try_get::<String, _>("progress")?)?;
            if let Some(playbook) = self.library.get(&playbook_id) {
                open_required.extend(
                    progress
                        .open_required(playbook)
                        .into_iter()
                        .map(|s| format!("{playbook_id}/{}", s.id)),
                );
            }
        }
        let overridden = match case::close_permit(role, open_required, override_reason) {
            Ok(overridden) => overridden,
            Err(case::CloseRefusal::RequiredStepsOpen {
                steps,
                leader_may_override,
            }) => {
                let next = if leader_may_override {
                    "give an override reason to close anyway"
                } else {
                    "finish them, or ask a leader to close with an override"
                };
                return Ok(refuse(
                    "required_steps_open",
                    format!(
                        "required steps are still open: {}; {next}",
                        steps.join(", ")
                    ),
                ));
            }
            Err(case::CloseRefusal::Forbidden(role)) => {
                return Ok(refuse(
                    "forbidden",
                    format!("a case is closed by a counselor or a leader, not by {role}"),
                ));
            }
        };
        // After the checklist: a high case that is "over" needs a last
        // review too (or a leader's override, as for open required steps).
        let leader_override = role == Role::Leader && override_reason.is_some();
        if let Some(refusal) = self
            .last_review_refusal(&case, outcome, leader_override)
            .await?
        {
            return Ok(Err(refusal));
        }
        self.end_checkins(&case.id).await?;
        case.status = CaseStatus::Closed;
        case.updated_at = self.now;
        sqlx::query(
            "UPDATE cases SET status = 'closed', outcome = $1, closed_at = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(outcome.as_str())
        .bind(ts(self.now))
        .bind(ts(self.now))
        .bind(&case.id)
        .execute(&mut **self.tx)
        .await?;
        // Nothing on a closed case escalates: the scanner forgets it.
        sqlx::query("UPDATE checklists SET next_due_at = NULL WHERE case_id = $1")
            .bind(&case.id)
            .execute(&mut **self.tx)
            .await?;
        let event = self.logs.event(
            self.now,
            EventBody::CaseClosed {
                case_id: case.id.clone(),
                outcome,
                note: note.map(str::to_string),
                overridden,
                override_reason: override_reason.map(str::to_string),
                case,
                origin: self.origin.clone(),
            },
        )?;
        Ok(Ok((vec![event], None)))
    }
}

async fn has_checklist(tx: &mut Tx<'_>, case_id: &str, playbook: &str) -> Result<bool, StoreError> {
    Ok(
        sqlx::query("SELECT 1 FROM checklists WHERE case_id = $1 AND playbook = $2")
            .bind(case_id)
            .bind(playbook)
            .fetch_optional(&mut **tx)
            .await?
            .is_some(),
    )
}

/// Attaches a fresh checklist whose due times count from `now`.
async fn attach_checklist(
    tx: &mut Tx<'_>,
    logs: &mut Logs,
    case_id: &str,
    playbook: &Playbook,
    now: DateTime<Utc>,
    origin: Option<Origin>,
) -> Result<StoredEvent, StoreError> {
    let mut progress = Progress::new(playbook, now);
    followup::Calendars::default()
        .count(tx, (case_id, None), None, playbook, &mut progress)
        .await?;
    let next_due = next_deadline(&progress, playbook, &HashSet::new(), now).map(ts);
    sqlx::query(
        "INSERT INTO checklists (case_id, playbook, progress, added_at, next_due_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(case_id)
    .bind(&playbook.id)
    .bind(progress_json(&progress)?)
    .bind(ts(now))
    .bind(next_due)
    .execute(&mut **tx)
    .await?;
    logs.event(
        now,
        EventBody::ChecklistAdded {
            case_id: case_id.to_string(),
            playbook: playbook.id.clone(),
            progress,
            origin,
        },
    )
}

async fn touch_case(tx: &mut Tx<'_>, case_id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
    sqlx::query("UPDATE cases SET updated_at = $1 WHERE id = $2")
        .bind(ts(now))
        .bind(case_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Largest number of bound values in one statement. SQLite allows 32,766;
/// staying well below leaves room and keeps each statement's parse short.
const MAX_BINDS: usize = 30_000;

/// Rows per multi-row insert of the writer's logs and an ingest's tables.
/// A fixed size, so a busy relay prepares each full statement once per
/// connection and binds it again and again: with one statement per group
/// sized to the group, every group of a batch load parsed a new statement
/// of thousands of parameters (4% of the writer's time) and pushed the
/// statement cache's useful entries out.
const ROWS_PER_INSERT: usize = 256;

/// Remainder statements up to this many rows are kept prepared too: a lone
/// producer's groups are one or a few rows and recur constantly. Larger
/// remainders are one-off shapes, prepared, run and finalised.
const CACHED_REMAINDER: usize = 32;

/// `INSERT` of `rows` after `head` (`"INSERT INTO t (a, b) "`) in
/// statements of [`ROWS_PER_INSERT`], each row's values bound by `bind`.
/// Text is bound as `&str`, which saves a clone of each `String` at
/// bind time; sqlx-sqlite still copies every argument once more when it
/// hands the statement to its worker thread (`SqliteArguments::into_static`).
async fn insert_rows<'r, T>(
    tx: &mut Tx<'_>,
    head: &str,
    rows: &'r [T],
    mut bind: impl FnMut(sqlx::query_builder::Separated<'_, 'r, Db, &'static str>, &'r T),
) -> Result<(), StoreError> {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut insert = QueryBuilder::<Db>::new(head);
        insert.push_values(chunk, &mut bind);
        let keep = chunk.len() == ROWS_PER_INSERT || chunk.len() <= CACHED_REMAINDER;
        insert.build().persistent(keep).execute(&mut **tx).await?;
    }
    Ok(())
}

/// The two append-only logs of one write transaction: stream events and
/// audit entries. Their heads are read once when the transaction starts
/// (under SQLite's write lock, so no other process can append meanwhile);
/// appends are numbered and chained in memory and written with a few
/// multi-row inserts. That keeps a group of a thousand alerts to a handful
/// of statements instead of thousands of round trips to the sqlx worker.
struct Logs {
    next_seq: i64,
    audit_seq: i64,
    audit_hash: String,
    events: Vec<PendingEvent>,
    audit: Vec<Entry>,
}

struct PendingEvent {
    seq: i64,
    at: String,
    kind: &'static str,
    case_id: String,
    json: Arc<str>,
}

impl Logs {
    /// Reads both logs' heads; the engine's write transaction already
    /// keeps every other writer out until it ends.
    async fn load(tx: &mut Tx<'_>) -> Result<Logs, StoreError> {
        let (last_seq, audit_seq, audit_hash) = engine::log_heads(tx).await?;
        Ok(Logs {
            next_seq: last_seq + 1,
            audit_seq,
            audit_hash,
            events: Vec::new(),
            audit: Vec::new(),
        })
    }

    /// Appends an event at the next `seq`. Events are never deleted and
    /// numbers are taken under the write lock, so the stream has no gaps: a
    /// client can see a missing number.
    fn event(&mut self, at: DateTime<Utc>, body: EventBody) -> Result<StoredEvent, StoreError> {
        let seq = self.next_seq;
        let kind = body.kind();
        let case_id = body.case_id().to_string();
        let event = Event {
            seq,
            at,
            body,
            withheld: None,
        };
        let json: Arc<str> = serde_json::to_string(&event)
            .map_err(|e| StoreError::Corrupt(format!("event does not encode: {e}")))?
            .into();
        self.next_seq += 1;
        self.events.push(PendingEvent {
            seq,
            at: ts(at),
            kind,
            case_id,
            json: json.clone(),
        });
        Ok(StoredEvent::new(seq, json))
    }

    /// Chains `entry` after the current head; it commits or rolls back with
    /// what it records.
    fn audit(&mut self, now: DateTime<Utc>, entry: &NewEntry) -> Entry {
        let stored = Entry::chain(self.audit_seq + 1, now, entry, &self.audit_hash);
        self.audit_seq = stored.seq;
        self.audit_hash.clone_from(&stored.hash);
        self.audit.push(stored.clone());
        stored
    }

    /// Writes the events appended so far (rows that reference an event's
    /// `seq` may be inserted after this).
    async fn flush_events(&mut self, tx: &mut Tx<'_>) -> Result<(), StoreError> {
        insert_rows(
            tx,
            "INSERT INTO events (seq, at, type, case_id, body) ",
            &self.events,
            |mut row, e| {
                row.push_bind(e.seq)
                    .push_bind(e.at.as_str())
                    .push_bind(e.kind)
                    .push_bind(e.case_id.as_str())
                    .push_bind(&*e.json);
            },
        )
        .await?;
        if let Some(last) = self.events.last() {
            engine::event_head_moved(tx, last.seq).await?;
        }
        self.events.clear();
        Ok(())
    }

    /// Writes everything appended so far.
    async fn flush(&mut self, tx: &mut Tx<'_>) -> Result<(), StoreError> {
        self.flush_events(tx).await?;
        insert_rows(
            tx,
            "INSERT INTO audit (seq, at, kind, actor_name, actor_role, terminal, case_id, \
             drill, detail, prev_hash, hash) ",
            &self.audit,
            |mut row, e| {
                row.push_bind(e.seq)
                    .push_bind(ts(e.at))
                    .push_bind(e.kind.as_str())
                    .push_bind(e.actor_name.as_deref())
                    .push_bind(e.actor_role.as_deref())
                    .push_bind(e.terminal.as_deref())
                    .push_bind(e.case_id.as_deref())
                    .push_bind(e.drill)
                    .push_bind(e.detail.as_str())
                    .push_bind(e.prev_hash.as_str())
                    .push_bind(e.hash.as_str());
            },
        )
        .await?;
        if !self.audit.is_empty() {
            engine::audit_head_moved(tx, self.audit_seq).await?;
        }
        self.audit.clear();
        Ok(())
    }
}

/// What the store knows, before a run of alerts is applied, about the ids,
/// students and cases the run touches: loaded with one query each.
struct IngestFacts {
    /// Stored alerts by id: (body hash, seq, case id).
    stored: HashMap<String, (String, i64, String)>,
    /// Open cases by (student id, mode), with their number.
    open: HashMap<(String, String), CaseSnapshot>,
    /// Checklists already on those cases: (case id, playbook).
    checklists: HashSet<(String, String)>,
    next_num: i64,
}

impl IngestFacts {
    async fn load(tx: &mut Tx<'_>, alerts: &[(&Alert, &Credential)]) -> Result<Self, StoreError> {
        let ids: HashSet<&str> = alerts.iter().map(|(a, _)| a.id.as_str()).collect();
        let students: HashSet<&str> = alerts.iter().map(|(a, _)| a.student.id.as_str()).collect();
        let mut stored = HashMap::new();
        for chunk in ids.iter().collect::<Vec<_>>().chunks(MAX_BINDS) {
            let mut q = QueryBuilder::<Db>::new(
                "SELECT id, body_hash, seq, case_id FROM alerts WHERE id IN (",
            );
            let mut list = q.separated(", ");
            for id in chunk {
                list.push_bind(**id);
            }
            list.push_unseparated(")");
            for r in q.build().fetch_all(&mut **tx).await? {
                stored.insert(
                    r.try_get("id")?,
                    (
                        r.try_get("body_hash")?,
                        r.try_get("seq")?,
                        r.try_get("case_id")?,
                    ),
                );
            }
        }
        let mut open = HashMap::new();
        for chunk in students.iter().collect::<Vec<_>>().chunks(MAX_BINDS) {
            let mut q = QueryBuilder::<Db>::new(
                "SELECT * FROM cases WHERE status != 'closed' AND student_id IN (",
            );
            let mut list = q.separated(", ");
            for id in chunk {
                list.push_bind(**id);
            }
            list.push_unseparated(")");
            for r in q.build().fetch_all(&mut **tx).await? {
                let mode: String = r.try_get("mode")?;
                let case = case_from_row(&r)?;
                open.insert((case.student_id.clone(), mode), case);
            }
        }
        let mut checklists = HashSet::new();
        let case_ids: Vec<&str> = open.values().map(|c| c.id.as_str()).collect();
        for chunk in case_ids.chunks(MAX_BINDS) {
            let mut q = QueryBuilder::<Db>::new(
                "SELECT case_id, playbook FROM checklists WHERE case_id IN (",
            );
            let mut list = q.separated(", ");
            for id in chunk {
                list.push_bind(*id);
            }
            list.push_unseparated(")");
            for r in q.build().fetch_all(&mut **tx).await? {
                checklists.insert((r.try_get(0)?, r.try_get(1)?));
            }
        }
        let next_num: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(num), 0) + 1 FROM cases")
            .fetch_one(&mut **tx)
            .await?;
        Ok(IngestFacts {
            stored,
            open,
            checklists,
            next_num,
        })
    }
}

/// Rows a run of alerts writes, gathered so each table gets one insert.
#[derive(Default)]
struct IngestRows {
    /// Cases opened in this run, by id (their final state, after any later
    /// alert of the same run joined them).
    new_cases: Vec<String>,
    /// Cases that existed before this run and were joined.
    joined: Vec<String>,
    checklists: Vec<(String, String, String, Option<String>)>,
    alerts: Vec<(String, String, String, i64, i64, String)>,
}

/// Applies a run of alerts in order, as if each were posted alone: the
/// case rules of [`crate::case`] decide over facts loaded once, and the
/// result is written in bulk. An alert refused as a conflict writes nothing
/// and spoils nothing for the others.
async fn ingest_run(
    tx: &mut Tx<'_>,
    logs: &mut Logs,
    alerts: &[(&Alert, &Credential)],
    now: DateTime<Utc>,
    library: &Library,
) -> Result<Vec<IngestOutcome>, StoreError> {
    let mut facts = IngestFacts::load(tx, alerts).await?;
    let mut rows = IngestRows::default();
    // Case state as this run leaves it, by case id (new and joined).
    let mut touched: HashMap<String, (i64, String, CaseSnapshot)> = HashMap::new();
    let mut outcomes = Vec::with_capacity(alerts.len());
    let mut calendars = followup::Calendars::default();
    let at = ts(now);
    for (alert, credential) in alerts {
        let body = serde_json::to_string(alert)
            .map_err(|e| StoreError::Corrupt(format!("alert does not encode: {e}")))?;
        let body_hash = hex(&Sha256::digest(body.as_bytes()));
        if let Some((stored_hash, seq, case_id)) = facts.stored.get(&alert.id) {
            outcomes.push(match case::repost(stored_hash, &body_hash, *seq, case_id) {
                case::Repost::Duplicate { seq, case_id } => {
                    IngestOutcome::Duplicate { seq, case_id }
                }
                case::Repost::Conflict => IngestOutcome::Conflict,
            });
            continue;
        }
        let mode = case::mode(alert);
        let key = (alert.student.id.clone(), mode.clone());
        let (case, opened) = match facts.open.get_mut(&key) {
            Some(case) => {
                case::join(case, alert, now);
                if !touched.contains_key(&case.id) {
                    rows.joined.push(case.id.clone());
                }
                (case.clone(), false)
            }
            None => {
                let num = facts.next_num;
                facts.next_num += 1;
                let case = case::open(num, alert, now);
                rows.new_cases.push(case.id.clone());
                facts.open.insert(key, case.clone());
                (case, true)
            }
        };
        let case_id = case.id.clone();
        let num = case_num(&case_id)?;
        touched.insert(case_id.clone(), (num, mode, case.clone()));
        let wanted = library.select(case.category, case.level, case.imminent);
        let event = logs.event(
            now,
            EventBody::Alert {
                case_id: case_id.clone(),
                opened,
                alert: Box::new((*alert).clone()),
                case,
            },
        )?;
        let mut events = vec![event.clone()];
        // The case gets the playbook its category, level and imminence call
        // for; a later alert that raises it may call for another one.
        if let Some(playbook) = wanted
            && facts
                .checklists
                .insert((case_id.clone(), playbook.id.clone()))
        {
            let mut progress = Progress::new(playbook, now);
            let case_ref = (case_id.as_str(), Some(alert.student.id.as_str()));
            calendars
                .count(
                    tx,
                    case_ref,
                    alert.student.school.as_deref(),
                    playbook,
                    &mut progress,
                )
                .await?;
            let next_due = next_deadline(&progress, playbook, &HashSet::new(), now).map(ts);
            rows.checklists.push((
                case_id.clone(),
                playbook.id.clone(),
                progress_json(&progress)?,
                next_due,
            ));
            events.push(logs.event(
                now,
                EventBody::ChecklistAdded {
                    case_id: case_id.clone(),
                    playbook: playbook.id.clone(),
                    progress,
                    origin: None,
                },
            )?);
        }
        let drill = alert.status != AlertStatus::Actual;
        logs.audit(
            now,
            &NewEntry::new(
                AuditKind::AlertIngested,
                serde_json::json!({
                    "alert_id": alert.id,
                    "seq": event.seq,
                    "opened": opened,
                    "level": alert.level.as_str(),
                    "imminent": alert.imminent,
                    "category": alert.category.as_str(),
                    "source": alert.source.as_str(),
                    "status": alert.status.as_str(),
                    "exercise_id": alert.exercise_id,
                    "events": events.iter().map(|e| e.seq).collect::<Vec<_>>(),
                }),
            )
            .by(&credential.name, credential.role.as_str())
            .on_case(&case_id, drill),
        );
        facts.stored.insert(
            alert.id.clone(),
            (body_hash.clone(), event.seq, case_id.clone()),
        );
        rows.alerts.push((
            alert.id.clone(),
            body_hash,
            case_id.clone(),
            event.seq,
            credential.id,
            body,
        ));
        outcomes.push(IngestOutcome::Created {
            seq: event.seq,
            case_id,
            events,
        });
    }

    // Foreign keys are checked per statement: cases, then events, then the
    // rows that point at them.
    let new_cases: Vec<&(i64, String, CaseSnapshot)> =
        rows.new_cases.iter().map(|id| &touched[id]).collect();
    insert_rows(
        tx,
        "INSERT INTO cases (num, id, student_id, mode, status, level, imminent, category, \
         alert_status, exercise_id, opened_at, updated_at, alert_count) ",
        &new_cases,
        |mut row, (num, mode, case)| {
            row.push_bind(*num)
                .push_bind(case.id.as_str())
                .push_bind(case.student_id.as_str())
                .push_bind(mode.as_str())
                .push_bind(case.status.as_str())
                .push_bind(case.level.as_str())
                .push_bind(case.imminent)
                .push_bind(case.category.as_str())
                .push_bind(case.alert_status.as_str())
                .push_bind(case.exercise_id.as_deref())
                .push_bind(ts(case.opened_at))
                .push_bind(ts(case.updated_at))
                .push_bind(i64::from(case.alert_count));
        },
    )
    .await?;
    for id in &rows.joined {
        let (_, _, case) = &touched[id];
        sqlx::query(
            "UPDATE cases SET status = $1, level = $2, category = $3, imminent = $4, alert_count = $5, \
             updated_at = $6 WHERE id = $7",
        )
        .bind(case.status.as_str())
        .bind(case.level.as_str())
        .bind(case.category.as_str())
        .bind(case.imminent)
        .bind(i64::from(case.alert_count))
        .bind(ts(case.updated_at))
        .bind(&case.id)
        .execute(&mut **tx)
        .await?;
    }
    logs.flush_events(tx).await?;
    insert_rows(
        tx,
        "INSERT INTO checklists (case_id, playbook, progress, added_at, next_due_at) ",
        &rows.checklists,
        |mut row, (case_id, playbook, progress, next_due)| {
            row.push_bind(case_id.as_str())
                .push_bind(playbook.as_str())
                .push_bind(progress.as_str())
                .push_bind(at.as_str())
                .push_bind(next_due.as_deref());
        },
    )
    .await?;
    insert_rows(
        tx,
        "INSERT INTO alerts (id, body_hash, case_id, seq, received_at, credential_id, body) ",
        &rows.alerts,
        |mut row, (id, hash, case_id, seq, credential, body)| {
            row.push_bind(id.as_str())
                .push_bind(hash.as_str())
                .push_bind(case_id.as_str())
                .push_bind(*seq)
                .push_bind(at.as_str())
                .push_bind(*credential)
                .push_bind(body.as_str());
        },
    )
    .await?;
    Ok(outcomes)
}

/// The number inside a case id made by [`case::case_id`].
fn case_num(case_id: &str) -> Result<i64, StoreError> {
    case_id
        .strip_prefix('C')
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("case id `{case_id}` is not C and a number")))
}

/// When the escalation scanner must next look at a checklist: the soonest
/// due time of an open step that has not escalated yet (now, when one is
/// already overdue, e.g. a contact that ran out of attempts). `None` when
/// nothing on it can go overdue.
fn next_deadline(
    progress: &Progress,
    playbook: &Playbook,
    escalated: &HashSet<String>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    progress
        .view(playbook, now)
        .into_iter()
        .filter(|v| v.state.is_open() && !escalated.contains(&v.step.id))
        .filter_map(|v| {
            if v.overdue.is_some() {
                Some(now)
            } else {
                v.due
            }
        })
        .min()
}

fn limits_from(row: &DbRow) -> Result<Limits, StoreError> {
    Ok(Limits {
        rate_per_sec: row.try_get("rate_per_sec")?,
        burst: row.try_get("burst")?,
        max_connections: row
            .try_get::<Option<i32>, _>("max_connections")?
            .map(|n| {
                u32::try_from(n)
                    .map_err(|_| StoreError::Corrupt(format!("credential max_connections {n}")))
            })
            .transpose()?,
    })
}

fn entry_from_row(row: &DbRow) -> Result<Entry, StoreError> {
    Ok(Entry {
        seq: row.try_get("seq")?,
        at: parse_ts(&row.try_get::<String, _>("at")?)?,
        kind: row.try_get("kind")?,
        actor_name: row.try_get("actor_name")?,
        actor_role: row.try_get("actor_role")?,
        terminal: row.try_get("terminal")?,
        case_id: row.try_get("case_id")?,
        drill: row.try_get("drill")?,
        detail: row.try_get("detail")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

fn progress_from(json: &str) -> Result<Progress, StoreError> {
    serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt(format!("checklist progress: {}", json_error(&e))))
}

fn progress_json(progress: &Progress) -> Result<String, StoreError> {
    serde_json::to_string(progress)
        .map_err(|e| StoreError::Corrupt(format!("checklist does not encode: {e}")))
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("unknown {what} `{value}` in cases"))
}

fn case_from_row(row: &DbRow) -> Result<CaseSnapshot, StoreError> {
    let status: String = row.try_get("status")?;
    let level: String = row.try_get("level")?;
    let category: String = row.try_get("category")?;
    let alert_status: String = row.try_get("alert_status")?;
    let ack_name: Option<String> = row.try_get("acknowledged_by_name")?;
    let ack_role: Option<String> = row.try_get("acknowledged_by_role")?;
    let ack_at: Option<String> = row.try_get("acknowledged_at")?;
    let acknowledged_by = match (ack_name, ack_role) {
        (Some(name), Some(role)) => Some(Actor {
            name,
            role: Role::parse(&role).ok_or_else(|| corrupt("role", &role))?,
        }),
        _ => None,
    };
    Ok(CaseSnapshot {
        id: row.try_get("id")?,
        status: CaseStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        level: Level::parse(&level).ok_or_else(|| corrupt("level", &level))?,
        imminent: row.try_get("imminent")?,
        category: serde_json::from_value::<Category>(serde_json::Value::String(category.clone()))
            .map_err(|_| corrupt("category", &category))?,
        alert_status: AlertStatus::parse(&alert_status)
            .ok_or_else(|| corrupt("alert status", &alert_status))?,
        exercise_id: row.try_get("exercise_id")?,
        student_id: row.try_get("student_id")?,
        opened_at: parse_ts(&row.try_get::<String, _>("opened_at")?)?,
        updated_at: parse_ts(&row.try_get::<String, _>("updated_at")?)?,
        alert_count: u32::try_from(row.try_get::<i64, _>("alert_count")?)
            .map_err(|_| StoreError::Corrupt("a case's alert_count is out of range".into()))?,
        acknowledged_by,
        acknowledged_at: ack_at.as_deref().map(parse_ts).transpose()?,
    })
}
