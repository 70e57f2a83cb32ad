//! The backend seam: [`Store`] is what every caller holds, and it hands
//! each call to the engine the database URL chose - `sqlite:PATH` to
//! [`SqliteStore`], `postgres://` or `postgresql://` to [`PgStore`].
//!
//! Enum dispatch, not a trait object, on purpose:
//! - the engines are a closed set of two, both in this crate;
//! - every method is an `async fn`. Behind `dyn Trait` each call would
//!   box its future (async fns in traits are not object safe), and the
//!   relay's writer and stream call the store on every alert and every
//!   replay page. A `match` on two concrete types costs a branch, and the
//!   compiler still sees (and can inline) the engine's future;
//! - the callers did not change: `Store` keeps its inherent methods,
//!   signatures and `Clone`.
//!
//! A generic `Store<E: Engine>` would have spread a type parameter through
//! the relay, the console tools and the tests for a choice made at run
//! time from a URL.
//!
//! Both engines do every operation: their SQL is one source (`sql/`).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::postgres::{PgStore, is_postgres_url};
use super::sqlite::SqliteStore;
use super::{
    CommandOutcome, Credential, CredentialInfo, IngestOutcome, Limits, OpenCaseRow, ScreeningTally,
    StoreError, StoredEvent, StudentCase, Write, WriteOutcome,
};
use crate::audit::{Checkpoint, Entry, NewEntry};
use crate::followup::Checkin;
use crate::lifecycle::LevelChange;
use crate::playbook::{Library, Progress};
use crate::protocol::{CaseSnapshot, Command, Event, Role};
use crate::reporting::{IncidentReport, Rules};
use crate::screening::risk::History;
use crate::screening::store::{Counts, Plan, Standing, StoredResult};

/// Handle to the database, whichever engine. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    engine: Engine,
}

#[derive(Clone, Debug)]
enum Engine {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// Which engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The same call on either engine.
macro_rules! both {
    ($self:ident, $e:ident => $call:expr) => {
        match &$self.engine {
            Engine::Sqlite($e) => $call,
            Engine::Postgres($e) => $call,
        }
    };
}

impl Store {
    /// Opens the database at `url` and brings its schema up to date: a
    /// SQLite file (created if missing) or a PostgreSQL database (which
    /// must exist).
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let engine = if is_postgres_url(url) {
            Engine::Postgres(PgStore::open(url).await?)
        } else {
            Engine::Sqlite(SqliteStore::open(url).await?)
        };
        Ok(Store { engine })
    }

    /// Opens a database that must already exist (tools that only read: a
    /// mistyped path must be an error, not an empty new database). A
    /// PostgreSQL database always must: connecting never creates one.
    pub async fn open_existing(url: &str) -> Result<Store, StoreError> {
        let engine = if is_postgres_url(url) {
            Engine::Postgres(PgStore::open(url).await?)
        } else {
            Engine::Sqlite(SqliteStore::open_existing(url).await?)
        };
        Ok(Store { engine })
    }

    pub fn backend(&self) -> Backend {
        match &self.engine {
            Engine::Sqlite(_) => Backend::Sqlite,
            Engine::Postgres(_) => Backend::Postgres,
        }
    }

    pub async fn close(&self) {
        both!(self, s => s.close().await)
    }

    /// Runs these reporting rules instead of the shipped ones.
    pub fn with_reporting_rules(self, rules: Rules) -> Store {
        let engine = match self.engine {
            Engine::Sqlite(s) => Engine::Sqlite(s.with_reporting_rules(rules)),
            Engine::Postgres(p) => Engine::Postgres(p.with_reporting_rules(rules)),
        };
        Store { engine }
    }

    pub fn reporting_rules(&self) -> &Rules {
        both!(self, s => s.reporting_rules())
    }

    /// Creates a credential and returns its token. Only the hash is stored,
    /// so the token cannot be shown again.
    pub async fn create_credential(&self, name: &str, role: Role) -> Result<String, StoreError> {
        both!(self, s => s.create_credential(name, role).await)
    }

    /// Creates a credential on behalf of `operator` (who ran the command),
    /// recorded in the audit trail.
    pub async fn create_credential_by(
        &self,
        name: &str,
        role: Role,
        operator: &str,
    ) -> Result<String, StoreError> {
        both!(self, s => s.create_credential_by(name, role, operator).await)
    }

    /// [`Store::create_credential_by`] with the credential's own limits.
    pub async fn create_credential_with(
        &self,
        name: &str,
        role: Role,
        operator: &str,
        limits: Limits,
    ) -> Result<String, StoreError> {
        both!(self, s => s.create_credential_with(name, role, operator, limits).await)
    }

    /// Every credential, oldest first (never the token).
    pub async fn list_credentials(&self) -> Result<Vec<CredentialInfo>, StoreError> {
        both!(self, s => s.list_credentials().await)
    }

    /// Revokes credential `id`; returns false if there is no live one.
    /// The relay ends its connections within a second (it polls
    /// [`Store::revoked_ids`]).
    pub async fn revoke_credential(&self, id: i64, operator: &str) -> Result<bool, StoreError> {
        both!(self, s => s.revoke_credential(id, operator).await)
    }

    /// Ids of every revoked credential.
    pub async fn revoked_ids(&self) -> Result<HashSet<i64>, StoreError> {
        both!(self, s => s.revoked_ids().await)
    }

    /// Appends one audit entry in its own transaction (connections opened
    /// and closed, cases viewed outside a command).
    pub async fn audit(&self, entry: &NewEntry, now: DateTime<Utc>) -> Result<Entry, StoreError> {
        both!(self, s => s.audit(entry, now).await)
    }

    /// Audit entries with `seq > after`, oldest first, at most `limit`.
    pub async fn audit_after(&self, after: i64, limit: i64) -> Result<Vec<Entry>, StoreError> {
        both!(self, s => s.audit_after(after, limit).await)
    }

    /// Audit entries about one case, oldest first.
    pub async fn audit_for_case(&self, case_id: &str) -> Result<Vec<Entry>, StoreError> {
        both!(self, s => s.audit_for_case(case_id).await)
    }

    /// The chain's current head, for checkpoints kept elsewhere.
    pub async fn audit_head(&self) -> Result<Option<Checkpoint>, StoreError> {
        both!(self, s => s.audit_head().await)
    }

    /// Finds the live credential a token belongs to (by hash).
    pub async fn authenticate(&self, token: &str) -> Result<Option<Credential>, StoreError> {
        both!(self, s => s.authenticate(token).await)
    }

    /// The highest `seq` stored (0 when empty).
    pub async fn latest_seq(&self) -> Result<i64, StoreError> {
        both!(self, s => s.latest_seq().await)
    }

    /// Events with `seq > since`, oldest first, at most `limit`.
    pub async fn events_after(
        &self,
        since: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        both!(self, s => s.events_after(since, limit).await)
    }

    /// Stores an alert: dedup by id, open a case or join the student's open
    /// case, append the event, in one transaction.
    pub async fn ingest_alert(
        &self,
        alert: &crate::protocol::Alert,
        credential: &Credential,
        now: DateTime<Utc>,
        library: &Library,
    ) -> Result<IngestOutcome, StoreError> {
        both!(self, s => s.ingest_alert(alert, credential, now, library).await)
    }

    /// Applies a group of writes in one transaction with one commit, each
    /// write's outcome its own (see the engines).
    pub async fn apply_group(
        &self,
        writes: &[Write],
        now: DateTime<Utc>,
        library: &Library,
    ) -> Result<Vec<WriteOutcome>, StoreError> {
        both!(self, s => s.apply_group(writes, now, library).await)
    }

    /// Applies a console command once.
    pub async fn apply_command(
        &self,
        credential: &Credential,
        command: &Command,
        now: DateTime<Utc>,
        library: &Library,
    ) -> Result<CommandOutcome, StoreError> {
        both!(self, s => s.apply_command(credential, command, now, library).await)
    }

    /// Escalates every overdue step (and report stage) as of `now` in one
    /// transaction.
    pub async fn escalate_overdue(
        &self,
        now: DateTime<Utc>,
        library: &Library,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        both!(self, s => s.escalate_overdue(now, library).await)
    }

    /// The soonest moment something may go overdue or fall due.
    pub async fn next_deadline(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        both!(self, s => s.next_deadline().await)
    }

    /// Steps escalated as overdue that are still open, on open real cases.
    pub async fn overdue_steps(&self) -> Result<i64, StoreError> {
        both!(self, s => s.overdue_steps().await)
    }

    /// The checklists on a case, as (playbook id, progress).
    pub async fn checklists(&self, case_id: &str) -> Result<Vec<(String, Progress)>, StoreError> {
        both!(self, s => s.checklists(case_id).await)
    }

    /// One case's current state, if it exists.
    pub async fn case(&self, case_id: &str) -> Result<Option<CaseSnapshot>, StoreError> {
        both!(self, s => s.case(case_id).await)
    }

    /// Every event about one case, oldest first.
    pub async fn events_for_case(&self, case_id: &str) -> Result<Vec<Event>, StoreError> {
        both!(self, s => s.events_for_case(case_id).await)
    }

    /// Ids of cases opened in `[from, to)`, oldest first.
    pub async fn case_ids_opened(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        include_drills: bool,
    ) -> Result<Vec<String>, StoreError> {
        both!(self, s => s.case_ids_opened(from, to, include_drills).await)
    }

    /// Ids of the cases of one drill.
    pub async fn case_ids_of_exercise(&self, exercise_id: &str) -> Result<Vec<String>, StoreError> {
        both!(self, s => s.case_ids_of_exercise(exercise_id).await)
    }

    /// How many alerts are stored (for checks and tests).
    pub async fn alert_count(&self) -> Result<i64, StoreError> {
        both!(self, s => s.alert_count().await)
    }

    /// The report on a case, if one was opened.
    pub async fn incident_report(
        &self,
        case_id: &str,
    ) -> Result<Option<IncidentReport>, StoreError> {
        both!(self, s => s.incident_report(case_id).await)
    }

    /// A report by its id (`IR-C000012`) or its case's id.
    pub async fn incident_report_by_id(
        &self,
        id: &str,
    ) -> Result<Option<IncidentReport>, StoreError> {
        both!(self, s => s.incident_report_by_id(id).await)
    }

    /// Every report, oldest first; drills only when asked for.
    pub async fn incident_reports(
        &self,
        include_drills: bool,
    ) -> Result<Vec<IncidentReport>, StoreError> {
        both!(self, s => s.incident_reports(include_drills).await)
    }

    pub async fn overdue_checkins_by_case(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, usize)>, StoreError> {
        both!(self, s => s.overdue_checkins_by_case(now).await)
    }

    pub async fn open_cases_by_school(&self) -> Result<Vec<OpenCaseRow>, StoreError> {
        both!(self, s => s.open_cases_by_school().await)
    }

    pub async fn open_checklists(&self) -> Result<Vec<(String, String, Progress)>, StoreError> {
        both!(self, s => s.open_checklists().await)
    }

    pub async fn exercises_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        both!(self, s => s.exercises_between(from, to).await)
    }

    // --- several relays on one database (PostgreSQL only) ---------------

    /// A listener for commits announced by every relay of the database, or
    /// None on SQLite, where one relay owns the file and its own writer
    /// publishes every event.
    pub fn event_listener(&self) -> Option<super::EventListener> {
        match &self.engine {
            Engine::Sqlite(_) => None,
            Engine::Postgres(p) => Some(p.event_listener()),
        }
    }

    /// The lock that makes one relay of the database its leader, or None
    /// on SQLite, where the one relay always leads.
    pub fn leader_lock(&self) -> Option<super::LeaderLock> {
        match &self.engine {
            Engine::Sqlite(_) => None,
            Engine::Postgres(p) => Some(p.leader_lock()),
        }
    }

    // --- follow-up, student records and statistics -----------------------

    pub async fn checkins(&self, case_id: &str) -> Result<Vec<Checkin>, StoreError> {
        both!(self, s => s.checkins(case_id).await)
    }

    pub async fn level_changes(&self, case_id: &str) -> Result<Vec<LevelChange>, StoreError> {
        both!(self, s => s.level_changes(case_id).await)
    }

    pub async fn student_cases(
        &self,
        student_id: &str,
        include_drills: bool,
    ) -> Result<Vec<StudentCase>, StoreError> {
        both!(self, s => s.student_cases(student_id, include_drills).await)
    }

    pub async fn next_case_opened(
        &self,
        student_id: &str,
        after: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        both!(self, s => s.next_case_opened(student_id, after).await)
    }

    pub async fn load_calendar(
        &self,
        text: &str,
    ) -> Result<Result<String, Vec<String>>, StoreError> {
        both!(self, s => s.load_calendar(text).await)
    }

    pub async fn followup_cadence(
        &self,
        now: DateTime<Utc>,
    ) -> Result<crate::followup::cadence::Cadence, StoreError> {
        both!(self, s => s.followup_cadence(now).await)
    }

    pub async fn screening_by_school(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(String, ScreeningTally)>, StoreError> {
        both!(self, s => s.screening_by_school(from, to).await)
    }

    // --- screening: plans and graded results (crate::screening) ----------

    pub async fn screening_create_plan(&self, plan: &Plan) -> Result<bool, StoreError> {
        both!(self, s => Ok(s.screening_create_plan(plan).await?))
    }

    pub async fn screening_plan(&self, id: &str) -> Result<Option<Plan>, StoreError> {
        both!(self, s => Ok(s.screening_plan(id).await?))
    }

    pub async fn screening_plans(&self) -> Result<Vec<Plan>, StoreError> {
        both!(self, s => Ok(s.screening_plans().await?))
    }

    pub async fn screening_counts(
        &self,
        plan_id: &str,
    ) -> Result<Vec<(String, Counts)>, StoreError> {
        both!(self, s => Ok(s.screening_counts(plan_id).await?))
    }

    pub async fn screening_results_of_plan(
        &self,
        plan_id: &str,
    ) -> Result<HashMap<String, StoredResult>, StoreError> {
        both!(self, s => Ok(s.screening_results_of_plan(plan_id).await?))
    }

    pub async fn screening_standings_of_plan(
        &self,
        plan_id: &str,
    ) -> Result<HashMap<String, Standing>, StoreError> {
        both!(self, s => Ok(s.screening_standings_of_plan(plan_id).await?))
    }

    pub async fn screening_unconfirmed_results(
        &self,
        plan_id: &str,
    ) -> Result<Vec<StoredResult>, StoreError> {
        both!(self, s => Ok(s.screening_unconfirmed_results(plan_id).await?))
    }

    pub async fn screening_results_of_student(
        &self,
        student_id: &str,
    ) -> Result<Vec<StoredResult>, StoreError> {
        both!(self, s => Ok(s.screening_results_of_student(student_id).await?))
    }

    pub async fn screening_save_results(
        &self,
        results: Vec<StoredResult>,
        confirmed: (&str, &[(String, String)]),
    ) -> Result<(), StoreError> {
        both!(self, s => Ok(s.screening_save_results(results, confirmed).await?))
    }

    pub async fn screening_confirm_alerts(
        &self,
        plan_id: &str,
        confirmed: &[(String, String)],
    ) -> Result<(), StoreError> {
        both!(self, s => Ok(s.screening_confirm_alerts(plan_id, confirmed).await?))
    }

    pub async fn screening_histories(
        &self,
        plan_id: &str,
        before: &HashMap<String, String>,
    ) -> Result<HashMap<String, History>, StoreError> {
        both!(self, s => Ok(s.screening_histories(plan_id, before).await?))
    }

    pub async fn screening_import_credential(&self) -> Result<Option<i64>, StoreError> {
        both!(self, s => Ok(s.screening_import_credential().await?))
    }
}
