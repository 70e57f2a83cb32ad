//! The store's promises on every backend, from one set of tests: a fresh
//! SQLite file always, and a fresh PostgreSQL database per test when
//! `CRISISDESK_TEST_PG` names a server (`.ci/run` starts one). Several
//! `Store::open` of one URL are several pools, as several processes or
//! relays would be.

use crate::backends;

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use crisisdesk::audit::{AuditKind, NewEntry};
use crisisdesk::playbook::Library;
use crisisdesk::protocol::{Alert, Command, Role};
use crisisdesk::store::{
    Backend, CommandOutcome, Credential, IngestOutcome, Limits, Store, StoreError,
};
use serde_json::json;
use sqlx::Connection;

use backends::{TestDb, databases};

fn library() -> Library {
    crisisdesk::playbook::shipped::load(None).unwrap()
}

fn at(minutes: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-20T13:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
        + Duration::minutes(minutes)
}

fn alert(id: &str, student: &str, level: &str, imminent: bool) -> Alert {
    serde_json::from_value(json!({
        "id": id,
        "source": "screening",
        "category": "suicide_risk",
        "level": level,
        "imminent": imminent,
        "student": {"id": student, "name": "王小明", "school": "第一中学"},
        "observed_at": "2026-11-20T21:04:00+08:00"
    }))
    .unwrap()
}

fn command(id: &str, op: serde_json::Value) -> Command {
    let mut v = op;
    v["id"] = json!(id);
    serde_json::from_value(v).unwrap()
}

async fn credential(store: &Store, name: &str, role: Role) -> Credential {
    let token = store.create_credential(name, role).await.unwrap();
    store.authenticate(&token).await.unwrap().unwrap()
}

fn created(outcome: &IngestOutcome) -> (i64, String) {
    match outcome {
        IngestOutcome::Created { seq, case_id, .. } => (*seq, case_id.clone()),
        other => panic!("expected created, got {other:?}"),
    }
}

async fn stream_seqs(store: &Store) -> Vec<i64> {
    store
        .events_after(0, 1_000_000)
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect()
}

fn dense(seqs: &[i64]) -> bool {
    seqs.iter().zip(1..).all(|(s, n)| *s == n)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_backend_is_chosen_by_the_url() {
    for db in databases().await {
        let store = db.open().await;
        let want = if db.label == "sqlite" {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        assert_eq!(store.backend(), want, "{}", db.label);
    }
    match Store::open("mysql://x").await {
        Err(StoreError::UnsupportedUrl(url)) => assert_eq!(url, "mysql://x"),
        other => panic!("expected an unsupported URL, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_is_idempotent_and_a_reused_id_with_another_body_is_refused() {
    let lib = library();
    for db in databases().await {
        let store = db.open().await;
        let feed = credential(&store, "feed", Role::Producer).await;
        let first = store
            .ingest_alert(&alert("a-1", "S1", "high", false), &feed, at(0), &lib)
            .await
            .unwrap();
        let (seq, case_id) = created(&first);
        let IngestOutcome::Created { events, .. } = &first else {
            unreachable!()
        };
        assert!(
            events.len() >= 2,
            "{}: a high case gets its checklist",
            db.label
        );
        match store
            .ingest_alert(&alert("a-1", "S1", "high", false), &feed, at(1), &lib)
            .await
            .unwrap()
        {
            IngestOutcome::Duplicate { seq: s, case_id: c } => {
                assert_eq!((s, c), (seq, case_id.clone()), "{}", db.label);
            }
            other => panic!("{}: expected a duplicate, got {other:?}", db.label),
        }
        assert!(
            matches!(
                store
                    .ingest_alert(&alert("a-1", "S1", "key", false), &feed, at(2), &lib)
                    .await
                    .unwrap(),
                IngestOutcome::Conflict
            ),
            "{}",
            db.label
        );
        // A second alert for the same student joins the open case.
        let (_, joined) = created(
            &store
                .ingest_alert(&alert("a-2", "S1", "key", false), &feed, at(3), &lib)
                .await
                .unwrap(),
        );
        assert_eq!(joined, case_id, "{}", db.label);
        assert_eq!(store.alert_count().await.unwrap(), 2, "{}", db.label);
        let seqs = stream_seqs(&store).await;
        assert!(dense(&seqs), "{}: {seqs:?}", db.label);
        assert_eq!(
            store.latest_seq().await.unwrap(),
            *seqs.last().unwrap(),
            "{}",
            db.label
        );
        let case = store.case(&case_id).await.unwrap().unwrap();
        assert_eq!(case.alert_count, 2, "{}", db.label);
        assert_eq!(
            store.events_for_case(&case_id).await.unwrap().len(),
            seqs.len(),
            "{}",
            db.label
        );
    }
}

/// Four pools (as four processes or relays) post and audit at once while a
/// reader follows the stream: every event's seq is taken once, the stream
/// is 1..=N with no gap, the reader never sees a later seq before an
/// earlier one commits, and the audit chain verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn seq_stays_dense_across_concurrent_writers_and_a_reader_never_skips() {
    let lib = library();
    for db in databases().await {
        let first = db.open().await;
        let feed = credential(&first, "feed", Role::Producer).await;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let store = db.open().await;
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut last = 0;
                let mut pages = 0;
                loop {
                    let done = stop.load(std::sync::atomic::Ordering::SeqCst);
                    for e in store.events_after(last, 1000).await.unwrap() {
                        assert_eq!(e.seq, last + 1, "the reader skipped an event");
                        last = e.seq;
                    }
                    pages += 1;
                    if done {
                        return (last, pages);
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                }
            })
        };
        let mut writers = Vec::new();
        for w in 0..4 {
            let store = db.open().await;
            let feed = feed.clone();
            let lib = lib.clone();
            writers.push(tokio::spawn(async move {
                let mut seqs = Vec::new();
                for n in 0..20 {
                    // Students shared between writers: joins race too.
                    let a = alert(&format!("w{w}-{n}"), &format!("S{}", n % 7), "key", false);
                    match store.ingest_alert(&a, &feed, at(n), &lib).await.unwrap() {
                        IngestOutcome::Created { events, .. } => {
                            seqs.extend(events.iter().map(|e| e.seq));
                        }
                        other => panic!("expected created, got {other:?}"),
                    }
                    if n % 5 == 0 {
                        store
                            .audit(
                                &NewEntry::new(AuditKind::ConnectionOpened, json!({"writer": w})),
                                at(n),
                            )
                            .await
                            .unwrap();
                    }
                }
                seqs
            }));
        }
        let mut taken = Vec::new();
        for w in writers {
            taken.extend(w.await.unwrap());
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let (read_to, _) = reader.await.unwrap();
        taken.sort_unstable();
        let unique: HashSet<i64> = taken.iter().copied().collect();
        assert_eq!(unique.len(), taken.len(), "{}: a seq given twice", db.label);
        let seqs = stream_seqs(&first).await;
        assert!(dense(&seqs), "{}: {seqs:?}", db.label);
        assert_eq!(seqs, taken, "{}", db.label);
        assert_eq!(read_to, *seqs.last().unwrap(), "{}", db.label);
        assert_eq!(first.alert_count().await.unwrap(), 80, "{}", db.label);
        let entries = first.audit_after(0, 1_000_000).await.unwrap();
        let verified = crisisdesk::audit::verify(entries, &[]).unwrap();
        // 1 credential + 80 alerts + 16 stream entries.
        assert_eq!(verified.entries, 97, "{}", db.label);
        assert_eq!(
            first.audit_head().await.unwrap().unwrap().seq,
            97,
            "{}",
            db.label
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_applies_once_and_a_resend_gets_the_first_answer() {
    let lib = library();
    for db in databases().await {
        let store = db.open().await;
        let feed = credential(&store, "feed", Role::Producer).await;
        let wang = credential(&store, "wang", Role::Counselor).await;
        let zhou = credential(&store, "zhou", Role::Counselor).await;
        let (_, case_id) = created(
            &store
                .ingest_alert(&alert("a-1", "S1", "high", false), &feed, at(0), &lib)
                .await
                .unwrap(),
        );
        let ack = command("c1", json!({"op": "acknowledge", "case_id": case_id}));
        let before = store.latest_seq().await.unwrap();
        match store.apply_command(&wang, &ack, at(1), &lib).await.unwrap() {
            CommandOutcome::Applied { events, .. } => {
                assert_eq!(events.len(), 1, "{}", db.label);
                assert_eq!(events[0].seq, before + 1, "{}", db.label);
            }
            other => panic!("{}: {other:?}", db.label),
        }
        assert!(
            matches!(
                store.apply_command(&wang, &ack, at(2), &lib).await.unwrap(),
                CommandOutcome::Repeated {
                    ok: true,
                    error: None
                }
            ),
            "{}",
            db.label
        );
        // The same command id from another credential is another command.
        match store.apply_command(&zhou, &ack, at(2), &lib).await.unwrap() {
            CommandOutcome::Refused(e) => assert_eq!(e.code, "already_acknowledged"),
            other => panic!("{}: {other:?}", db.label),
        }
        assert_eq!(
            store.latest_seq().await.unwrap(),
            before + 1,
            "{}",
            db.label
        );
        let case = store.case(&case_id).await.unwrap().unwrap();
        assert_eq!(case.acknowledged_by.unwrap().name, "wang", "{}", db.label);
        // A refusal is remembered too.
        let unknown = command("c2", json!({"op": "acknowledge", "case_id": "C999999"}));
        assert!(matches!(
            store
                .apply_command(&wang, &unknown, at(3), &lib)
                .await
                .unwrap(),
            CommandOutcome::Refused(_)
        ));
        match store
            .apply_command(&wang, &unknown, at(4), &lib)
            .await
            .unwrap()
        {
            CommandOutcome::Repeated {
                ok: false,
                error: Some(e),
            } => assert_eq!(e.code, "unknown_case"),
            other => panic!("{}: {other:?}", db.label),
        }
    }
}

/// Two counselors on two pools tick the same step at the same moment,
/// several times over: exactly one wins each race, the other is told the
/// step is already done, and the checklist records one outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_racing_step_commands_have_one_winner() {
    let lib = library();
    for db in databases().await {
        let a = db.open().await;
        let b = db.open().await;
        let feed = credential(&a, "feed", Role::Producer).await;
        let wang = credential(&a, "wang", Role::Counselor).await;
        let zhou = credential(&a, "zhou", Role::Counselor).await;
        for round in 0..5 {
            let (_, case_id) = created(
                &a.ingest_alert(
                    &alert(&format!("i-{round}"), &format!("S{round}"), "high", true),
                    &feed,
                    at(0),
                    &lib,
                )
                .await
                .unwrap(),
            );
            let step = |id: &str| {
                command(
                    id,
                    json!({
                        "op": "step", "case_id": case_id, "playbook": "imminent_suicide_risk",
                        "step": "counselor_arrives", "action": "complete"
                    }),
                )
            };
            let (ca, cb) = (step(&format!("a{round}")), step(&format!("b{round}")));
            let (ra, rb) = tokio::join!(
                a.apply_command(&wang, &ca, at(1), &lib),
                b.apply_command(&zhou, &cb, at(1), &lib)
            );
            let outcomes = [ra.unwrap(), rb.unwrap()];
            let wins = outcomes
                .iter()
                .filter(|o| matches!(o, CommandOutcome::Applied { .. }))
                .count();
            assert_eq!(wins, 1, "{} round {round}: {outcomes:?}", db.label);
            let loser = outcomes
                .iter()
                .find_map(|o| match o {
                    CommandOutcome::Refused(e) => Some(e.code.clone()),
                    _ => None,
                })
                .unwrap();
            assert_eq!(loser, "already_done", "{}", db.label);
            let checklists = a.checklists(&case_id).await.unwrap();
            let (_, progress) = checklists
                .iter()
                .find(|(p, _)| p == "imminent_suicide_risk")
                .unwrap();
            assert!(
                progress
                    .steps
                    .get("counselor_arrives")
                    .unwrap()
                    .outcome
                    .is_some(),
                "{}",
                db.label
            );
        }
        assert!(dense(&stream_seqs(&a).await), "{}", db.label);
    }
}

async fn exec(db: &TestDb, sql: &str) -> Result<u64, String> {
    if db.label == "sqlite" {
        let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        sqlx::query(sql)
            .execute(&mut c)
            .await
            .map(|r| r.rows_affected())
            .map_err(|e| e.to_string())
    } else {
        let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query(sql)
            .execute(&mut c)
            .await
            .map(|r| r.rows_affected())
            .map_err(|e| e.to_string())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_rows_refuse_update_and_delete_in_the_database_itself() {
    for db in databases().await {
        let store = db.open().await;
        credential(&store, "wang", Role::Counselor).await;
        store
            .audit(
                &NewEntry::new(AuditKind::ConnectionOpened, json!({})),
                at(0),
            )
            .await
            .unwrap();
        store.close().await;
        let mut statements = vec![
            "UPDATE audit SET detail = '{}' WHERE seq = 1",
            "DELETE FROM audit WHERE seq = 2",
            "DELETE FROM audit",
        ];
        if db.label == "postgres" {
            statements.push("TRUNCATE audit");
        }
        for sql in statements {
            let err = exec(&db, sql)
                .await
                .expect_err(&format!("{}: `{sql}` must be refused", db.label));
            assert!(err.contains("append-only"), "{}: {sql}: {err}", db.label);
        }
        // Nothing was changed, and appending still works.
        let store = db.open().await;
        store
            .audit(
                &NewEntry::new(AuditKind::ConnectionClosed, json!({})),
                at(1),
            )
            .await
            .unwrap();
        let entries = store.audit_after(0, 100).await.unwrap();
        assert_eq!(entries.len(), 3, "{}", db.label);
        crisisdesk::audit::verify(entries, &[]).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_overdue_step_escalates_once_and_the_scanner_knows_when_to_look() {
    let lib = library();
    for db in databases().await {
        let store = db.open().await;
        let feed = credential(&store, "feed", Role::Producer).await;
        assert_eq!(store.next_deadline().await.unwrap(), None, "{}", db.label);
        let (_, case_id) = created(
            &store
                .ingest_alert(&alert("i-1", "S1", "high", true), &feed, at(0), &lib)
                .await
                .unwrap(),
        );
        let next = store.next_deadline().await.unwrap().expect("a deadline");
        assert!(next > at(0), "{}", db.label);
        assert!(
            store
                .escalate_overdue(at(0), &lib)
                .await
                .unwrap()
                .is_empty(),
            "{}: nothing is overdue at once",
            db.label
        );
        let raised = store.escalate_overdue(at(600), &lib).await.unwrap();
        assert!(!raised.is_empty(), "{}", db.label);
        assert!(
            raised
                .iter()
                .all(|e| e.json.contains(r#""type":"escalation""#)),
            "{}",
            db.label
        );
        assert_eq!(
            store.overdue_steps().await.unwrap(),
            i64::try_from(raised.len()).unwrap(),
            "{}",
            db.label
        );
        assert!(
            store
                .escalate_overdue(at(601), &lib)
                .await
                .unwrap()
                .is_empty(),
            "{}: once",
            db.label
        );
        let audit = store.audit_for_case(&case_id).await.unwrap();
        assert_eq!(
            audit
                .iter()
                .filter(|e| e.kind == "escalation_raised")
                .count(),
            raised.len(),
            "{}",
            db.label
        );
        // Closing the case ends its escalations.
        let leader = credential(&store, "liu", Role::Leader).await;
        let close = command(
            "close-1",
            json!({"op": "close", "case_id": case_id, "outcome": "stabilized",
                   "override_reason": "演练结束"}),
        );
        match store
            .apply_command(&leader, &close, at(602), &lib)
            .await
            .unwrap()
        {
            CommandOutcome::Applied { .. } => {}
            other => panic!("{}: {other:?}", db.label),
        }
        assert_eq!(store.overdue_steps().await.unwrap(), 0, "{}", db.label);
        assert!(dense(&stream_seqs(&store).await), "{}", db.label);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_carry_their_limits_and_a_revoked_one_no_longer_authenticates() {
    for db in databases().await {
        let store = db.open().await;
        let limits = Limits {
            rate_per_sec: Some(500.0),
            burst: Some(1000.0),
            max_connections: Some(40),
        };
        let token = store
            .create_credential_with("screening", Role::Producer, "ops", limits)
            .await
            .unwrap();
        let plain = store
            .create_credential("wang", Role::Counselor)
            .await
            .unwrap();
        let cred = store.authenticate(&token).await.unwrap().unwrap();
        assert_eq!(cred.limits, limits, "{}", db.label);
        assert_eq!(cred.role, Role::Producer);
        let list = store.list_credentials().await.unwrap();
        assert_eq!(list.len(), 2, "{}", db.label);
        assert_eq!(list[1].limits, Limits::default(), "{}", db.label);
        assert!(store.authenticate("cdk_wrong").await.unwrap().is_none());
        assert!(store.revoke_credential(cred.id, "ops").await.unwrap());
        assert!(!store.revoke_credential(cred.id, "ops").await.unwrap());
        assert!(store.authenticate(&token).await.unwrap().is_none());
        assert!(store.authenticate(&plain).await.unwrap().is_some());
        assert_eq!(
            store.revoked_ids().await.unwrap(),
            HashSet::from([cred.id]),
            "{}",
            db.label
        );
        let kinds: Vec<String> = store
            .audit_after(0, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            kinds,
            [
                "credential_created",
                "credential_created",
                "credential_revoked"
            ],
            "{}",
            db.label
        );
    }
}

/// The follow-up phase (跟踪) on every backend: monitoring plans the
/// check-ins, a check-in is recorded once, a lowering needs a second role
/// and then shows in the student's record.
#[tokio::test(flavor = "multi_thread")]
async fn the_follow_up_phase_works_on_every_backend() {
    let lib = library();
    for db in databases().await {
        let store = db.open().await;
        let label = db.label;
        let feed = credential(&store, "feed", Role::Producer).await;
        let wang = credential(&store, "wang", Role::Counselor).await;
        let zhang = credential(&store, "zhang", Role::Leader).await;
        let (_, case_id) = created(
            &store
                .ingest_alert(&alert("a-1", "S1", "high", false), &feed, at(0), &lib)
                .await
                .unwrap(),
        );
        let apply = |credential: &Credential, id: &str, op: serde_json::Value, minute: i64| {
            let store = store.clone();
            let lib = lib.clone();
            let credential = credential.clone();
            let command = command(id, op);
            async move {
                store
                    .apply_command(&credential, &command, at(minute), &lib)
                    .await
                    .unwrap()
            }
        };
        let refused = |outcome: CommandOutcome| match outcome {
            CommandOutcome::Refused(e) => e.code,
            other => panic!("{label}: expected a refusal, got {other:?}"),
        };
        assert!(matches!(
            apply(
                &wang,
                "k-1",
                json!({"op": "acknowledge", "case_id": case_id}),
                1
            )
            .await,
            CommandOutcome::Applied { .. }
        ));
        assert!(matches!(
            apply(
                &wang,
                "m-1",
                json!({"op": "monitor", "case_id": case_id}),
                2
            )
            .await,
            CommandOutcome::Applied { .. }
        ));
        let planned = store.checkins(&case_id).await.unwrap();
        assert!(planned.len() >= 9, "{label}: {planned:?}");
        assert!(planned.iter().all(|c| c.done_at.is_none()), "{label}");

        let checkin =
            json!({"op": "checkin", "case_id": case_id, "checkin": 1, "outcome": "seen_well"});
        assert!(matches!(
            apply(&wang, "c-1", checkin.clone(), 3).await,
            CommandOutcome::Applied { .. }
        ));
        // The same check-in from another command: refused, nothing doubled.
        assert_eq!(
            refused(apply(&zhang, "c-2", checkin, 4).await),
            "already_recorded"
        );
        let recorded: Vec<_> = store
            .checkins(&case_id)
            .await
            .unwrap()
            .into_iter()
            .filter(|c| c.done_at.is_some())
            .collect();
        assert_eq!(recorded.len(), 1, "{label}");
        assert_eq!(recorded[0].by.as_ref().unwrap().name, "wang", "{label}");

        let lower = json!({"op": "propose_level", "case_id": case_id, "level": "key", "reason": "复评稳定"});
        assert!(matches!(
            apply(&wang, "p-1", lower, 5).await,
            CommandOutcome::Applied { .. }
        ));
        assert_eq!(
            store.case(&case_id).await.unwrap().unwrap().level.as_str(),
            "high",
            "{label}: not lowered before the sign-off"
        );
        let confirm = json!({"op": "confirm_level", "case_id": case_id});
        assert_eq!(
            refused(apply(&wang, "f-1", confirm.clone(), 6).await),
            "own_proposal"
        );
        assert!(matches!(
            apply(&zhang, "f-2", confirm, 7).await,
            CommandOutcome::Applied { .. }
        ));
        assert_eq!(
            store.case(&case_id).await.unwrap().unwrap().level.as_str(),
            "key",
            "{label}"
        );
        let changes = store.level_changes(&case_id).await.unwrap();
        assert_eq!(changes.len(), 1, "{label}: {changes:?}");
        let record = store.student_cases("S1", true).await.unwrap();
        assert_eq!(record.len(), 1, "{label}");
        assert_eq!(record[0].level_changes.len(), 1, "{label}");
        assert!(
            record[0].checkins.iter().any(|c| c.done_at.is_some()),
            "{label}"
        );

        // The statistics' screening figures read on both (none imported).
        let tallies = store.screening_by_school(at(0), at(60)).await.unwrap();
        assert!(tallies.is_empty(), "{label}: {tallies:?}");
    }
}

/// A fresh PostgreSQL database for a test of what only PostgreSQL has, or
/// None (said on stderr) when no server is configured.
async fn pg_only() -> Option<TestDb> {
    let Some(server) = backends::pg_server() else {
        eprintln!("CRISISDESK_TEST_PG is not set: PostgreSQL not tested");
        return None;
    };
    Some(backends::pg_db(&server).await)
}

/// A writer holding the writers' lock elsewhere (a stuck process) makes a
/// write fail after the lock timeout, as SQLite's busy timeout does; it
/// never hangs the relay, and nothing is half written.
#[tokio::test(flavor = "multi_thread")]
async fn a_stuck_writer_elsewhere_costs_an_error_after_the_lock_timeout_not_a_hang() {
    let Some(db) = pg_only().await else {
        return;
    };
    let store = db.open().await;
    credential(&store, "wang", Role::Counselor).await;
    let mut stuck = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut stuck).await.unwrap();
    sqlx::query("SELECT * FROM log_heads WHERE id = 1 FOR UPDATE")
        .execute(&mut stuck)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let err = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        store.audit(
            &NewEntry::new(AuditKind::ConnectionOpened, json!({})),
            at(0),
        ),
    )
    .await
    .expect("no hang")
    .unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(9));
    sqlx::query("ROLLBACK").execute(&mut stuck).await.unwrap();
    // Once the other writer is gone, writes go through again.
    store
        .audit(
            &NewEntry::new(AuditKind::ConnectionOpened, json!({})),
            at(1),
        )
        .await
        .unwrap();
    assert_eq!(store.audit_head().await.unwrap().unwrap().seq, 2);
}

/// Every commit that appends to the stream announces itself to the relays
/// of the database (a NOTIFY from the trigger of migrations/postgres/0003),
/// whoever commits: here a store with no relay at all, as `token revoke`
/// or `screening import --db` are. A write that appends no event (an audit
/// entry alone) announces nothing; the announcement carries the new head.
#[tokio::test(flavor = "multi_thread")]
async fn a_commit_that_appends_events_announces_its_head_whoever_commits() {
    use crisisdesk::store::Wake;
    let Some(db) = pg_only().await else {
        return;
    };
    let store = db.open().await;
    let feed = credential(&store, "feed", Role::Producer).await;
    let mut listener = store.event_listener().expect("PostgreSQL has a listener");
    let wait = std::time::Duration::from_secs(10);
    let first = tokio::time::timeout(wait, listener.next()).await;
    assert_eq!(first.expect("listening").unwrap(), Wake::Listening);

    store
        .audit(
            &NewEntry::new(AuditKind::ConnectionOpened, json!({})),
            at(0),
        )
        .await
        .unwrap();
    let outcome = store
        .ingest_alert(&alert("n-1", "S1", "high", false), &feed, at(1), &library())
        .await
        .unwrap();
    let IngestOutcome::Created { events, .. } = &outcome else {
        panic!("expected a new alert, got {outcome:?}");
    };
    let head = events.last().expect("the alert's events").seq;
    // The first announcement is the ingest's: the audit entry before it
    // moved no head and said nothing.
    let announced = tokio::time::timeout(wait, listener.next()).await;
    assert_eq!(
        announced.expect("announced").unwrap(),
        Wake::Announced(head)
    );
}

/// The cadence a console is greeted with, and the calendars it reads,
/// count the same on both backends.
#[tokio::test(flavor = "multi_thread")]
async fn calendars_load_and_the_cadence_counts_the_same_on_every_backend() {
    let lib = library();
    let calendar = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/calendars/example.toml"
    ))
    .unwrap();
    let mut seen = Vec::new();
    for db in databases().await {
        let store = db.open().await;
        let school = store.load_calendar(&calendar).await.unwrap().unwrap();
        // Loading it again replaces it.
        assert_eq!(
            store.load_calendar(&calendar).await.unwrap().unwrap(),
            school
        );
        assert!(
            store
                .load_calendar("not = [a calendar")
                .await
                .unwrap()
                .is_err()
        );
        let feed = credential(&store, "feed", Role::Producer).await;
        for (n, level) in ["key", "general", "high"].iter().enumerate() {
            store
                .ingest_alert(
                    &alert(&format!("a-{n}"), &format!("S{n}"), level, false),
                    &feed,
                    at(0),
                    &lib,
                )
                .await
                .unwrap();
        }
        let cadence = store.followup_cadence(at(1)).await.unwrap();
        assert_eq!(cadence.calendars, 1, "{}", db.label);
        assert_eq!(cadence.review_students, 2, "{}", db.label);
        seen.push(format!("{cadence:?}"));
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");
}
