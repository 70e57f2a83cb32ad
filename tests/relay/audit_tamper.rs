//! The audit trail against a real SQLite file: every accepted or refused
//! action lands in it, and `crisisdesk audit verify` catches each way of
//! tampering with the file (modify, delete, insert, reorder, truncate).

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::*;
use crisisdesk::audit::{Entry, GENESIS};
use crisisdesk::protocol::Role;
use serde_json::json;
use sqlx::{Connection, SqliteConnection};

/// A relay run that leaves a realistic trail: credentials, connections,
/// alerts, commands accepted and refused, a view.
async fn populated() -> (tempfile::TempDir, String) {
    let relay = TestRelay::start().await;
    let producer = relay.token("feed", Role::Producer).await;
    let wang = relay.token("wang", Role::Counselor).await;
    let mut a = alert("t-1", "S1", "high");
    a["imminent"] = json!(true);
    let case_id = post_alert(&relay, &producer, &a).await.body["case_id"]
        .as_str()
        .unwrap()
        .to_string();
    post_alert(&relay, &producer, &alert("t-2", "S2", "key")).await;
    let mut ws = connect(relay.addr, Some(&wang), 0).await.unwrap();
    until_quiet(&mut ws).await;
    for (id, op) in [
        ("c1", json!({"op": "view", "case_id": case_id})),
        ("c2", json!({"op": "acknowledge", "case_id": case_id})),
        (
            "c3",
            json!({"op": "step", "case_id": case_id, "playbook": "imminent_suicide_risk", "step": "counselor_arrives", "action": "complete"}),
        ),
        (
            "c4",
            json!({"op": "step", "case_id": case_id, "playbook": "imminent_suicide_risk", "step": "stay_with_student", "action": "complete"}),
        ),
    ] {
        let mut cmd = op;
        cmd["type"] = json!("command");
        cmd["id"] = json!(id);
        cmd["terminal"] = json!("duty-1");
        send_command(&mut ws, cmd).await;
        result_for(&mut ws, id).await;
    }
    drop(ws);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let db = relay.db_url.clone();
    let TestRelay { dir, .. } = relay;
    (dir, db)
}

fn verify(db: &str, checkpoints: Option<&std::path::Path>) -> (i32, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(["audit", "verify", "--db", db]);
    if let Some(c) = checkpoints {
        cmd.arg("--checkpoints").arg(c);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Opens the file as an attacker would: straight SQL, triggers dropped.
async fn tamper(db: &str, sql: &[&str]) {
    let mut conn = SqliteConnection::connect(db).await.unwrap();
    sqlx::query("DROP TRIGGER IF EXISTS audit_no_update")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("DROP TRIGGER IF EXISTS audit_no_delete")
        .execute(&mut conn)
        .await
        .unwrap();
    for stmt in sql {
        sqlx::query(stmt).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();
}

async fn entries(db: &str) -> Vec<Entry> {
    let store = crisisdesk::store::Store::open(db).await.unwrap();
    let all = store.audit_after(0, 10_000).await.unwrap();
    store.close().await;
    all
}

#[tokio::test(flavor = "multi_thread")]
async fn the_trail_records_every_kind_of_action_without_free_text() {
    let (_dir, db) = populated().await;
    let all = entries(&db).await;
    let kinds: Vec<&str> = all.iter().map(|e| e.kind.as_str()).collect();
    for kind in [
        "credential_created",
        "alert_ingested",
        "connection_opened",
        "case_viewed",
        "command_accepted",
        "command_refused",
        "connection_closed",
    ] {
        assert!(kinds.contains(&kind), "missing {kind} in {kinds:?}");
    }
    let refused = all.iter().find(|e| e.kind == "command_refused").unwrap();
    assert_eq!(refused.actor_role.as_deref(), Some("counselor"));
    assert_eq!(refused.terminal.as_deref(), Some("duty-1"));
    assert!(refused.detail.contains("wrong_role"), "{}", refused.detail);
    for e in &all {
        assert!(
            !e.detail.contains("王小明"),
            "no student name in the audit: {}",
            e.detail
        );
        assert!(
            !e.detail.contains("PHQ-9 第9题阳性"),
            "no free text in the audit"
        );
    }
    let (code, out) = verify(&db, None);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("{} entries", all.len())), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_product_itself_cannot_update_or_delete_entries() {
    let (_dir, db) = populated().await;
    let mut conn = SqliteConnection::connect(&db).await.unwrap();
    let update = sqlx::query("UPDATE audit SET kind = 'x' WHERE seq = 1")
        .execute(&mut conn)
        .await;
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = sqlx::query("DELETE FROM audit WHERE seq = 1")
        .execute(&mut conn)
        .await;
    assert!(delete.unwrap_err().to_string().contains("append-only"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_modified_entry_is_named() {
    let (_dir, db) = populated().await;
    tamper(
        &db,
        &["UPDATE audit SET actor_name = 'mallory' WHERE seq = 4"],
    )
    .await;
    let (code, out) = verify(&db, None);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("audit entry 4: its contents were changed"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_entry_is_named() {
    let (_dir, db) = populated().await;
    tamper(&db, &["DELETE FROM audit WHERE seq = 5"]).await;
    let (code, out) = verify(&db, None);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("audit entry 5 is missing"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_inserted_entry_is_named() {
    let (_dir, db) = populated().await;
    let n = entries(&db).await.len() as i64;
    // Make room after entry 3 and slip a forged entry in.
    let mut shift = Vec::new();
    for seq in (4..=n).rev() {
        shift.push(format!(
            "UPDATE audit SET seq = {} WHERE seq = {seq}",
            seq + 1
        ));
    }
    let forged = format!(
        "INSERT INTO audit (seq, at, kind, actor_name, actor_role, terminal, case_id, drill, detail, prev_hash, hash) \
         VALUES (4, '2026-11-20T13:00:00.000000Z', 'command_accepted', 'mallory', 'leader', NULL, 'C000001', 0, '{{}}', '{GENESIS}', '{GENESIS}')"
    );
    shift.push(forged);
    let stmts: Vec<&str> = shift.iter().map(String::as_str).collect();
    tamper(&db, &stmts).await;
    let (code, out) = verify(&db, None);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("audit entry 4"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn reordered_entries_are_caught() {
    let (_dir, db) = populated().await;
    tamper(
        &db,
        &[
            "UPDATE audit SET seq = -1 WHERE seq = 3",
            "UPDATE audit SET seq = 3 WHERE seq = 4",
            "UPDATE audit SET seq = 4 WHERE seq = -1",
        ],
    )
    .await;
    let (code, out) = verify(&db, None);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("audit entry 3"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn truncation_is_caught_by_a_checkpoint_kept_elsewhere() {
    let (dir, db) = populated().await;
    // The operator's routine: record the head somewhere else.
    let head = Command::new(BIN)
        .args(["audit", "head", "--db", &db])
        .output()
        .unwrap();
    let checkpoints = dir.path().join("offsite.checkpoints");
    std::fs::write(&checkpoints, &head.stdout).unwrap();
    assert_eq!(verify(&db, Some(&checkpoints)).0, 0);

    let n = entries(&db).await.len();
    tamper(&db, &[&format!("DELETE FROM audit WHERE seq > {}", n - 3)]).await;
    let (code, out) = verify(&db, None);
    assert_eq!(code, 0, "a cut chain alone still links: {out}");
    assert!(
        out.contains("truncation"),
        "it warns that it cannot rule this out: {out}"
    );
    let (code, out) = verify(&db, Some(&checkpoints));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("cut off the end"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rewritten_chain_is_caught_by_the_checkpoint() {
    let (dir, db) = populated().await;
    let head = Command::new(BIN)
        .args(["audit", "head", "--db", &db])
        .output()
        .unwrap();
    let checkpoints = dir.path().join("offsite.checkpoints");
    std::fs::write(&checkpoints, &head.stdout).unwrap();

    // An attacker who knows the algorithm changes entry 2 and recomputes
    // every hash after it: the chain links again, but not to the head
    // recorded elsewhere.
    let mut all = entries(&db).await;
    all[1].actor_name = Some("mallory".into());
    let mut prev = all[0].hash.clone();
    let mut stmts = Vec::new();
    for e in all.iter_mut().skip(1) {
        e.prev_hash = prev.clone();
        e.hash = e.compute_hash();
        prev = e.hash.clone();
        stmts.push(format!(
            "UPDATE audit SET actor_name = {}, prev_hash = '{}', hash = '{}' WHERE seq = {}",
            e.actor_name
                .as_ref()
                .map_or("NULL".to_string(), |n| format!("'{n}'")),
            e.prev_hash,
            e.hash,
            e.seq
        ));
    }
    let refs: Vec<&str> = stmts.iter().map(String::as_str).collect();
    tamper(&db, &refs).await;
    assert_eq!(
        verify(&db, None).0,
        0,
        "without the checkpoint the forgery links"
    );
    let (code, out) = verify(&db, Some(&checkpoints));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("differs from the checkpoint"), "{out}");
}

#[test]
fn a_damaged_checkpoint_file_is_an_error_not_a_smaller_check() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("a.sqlite").display());
    token(&db, "x", "counselor");
    let bad = dir.path().join("bad.checkpoints");
    std::fs::write(&bad, "1 notahash\n").unwrap();
    let (code, out) = verify(&db, Some(&bad));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("line 1"), "{out}");
}

#[test]
fn verify_on_a_mistyped_path_is_an_error_not_an_empty_intact_trail() {
    let dir = tempfile::tempdir().unwrap();
    let missing = format!("sqlite:{}", dir.path().join("typo.sqlite").display());
    let (code, out) = verify(&missing, None);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("no database at"), "{out}");
    assert!(
        !dir.path().join("typo.sqlite").exists(),
        "nothing was created"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_head_recorded_on_an_empty_trail_is_a_valid_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("a.sqlite").display());
    crisisdesk::store::Store::open(&db)
        .await
        .unwrap()
        .close()
        .await;
    let head = Command::new(BIN)
        .args(["audit", "head", "--db", &db])
        .output()
        .unwrap();
    let file = dir.path().join("c.checkpoints");
    std::fs::write(&file, &head.stdout).unwrap();
    token(&db, "x", "counselor");
    let (code, out) = verify(&db, Some(&file));
    assert_eq!(code, 0, "{out}");
}
